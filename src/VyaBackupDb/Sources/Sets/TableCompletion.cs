using System.Threading.Channels;

namespace VyaBackupDb.Sources.Sets;

/// <summary>
/// Runs a piece of work on a table (build its indexes, analyze it) as soon as the last of its
/// chunks, by the manifest's list, is loaded: on one side task beside the loaders, a table at a
/// time, as pg_restore builds one table's indexes while the next ones load. What is not done by
/// the end of the load (a table without chunks, or without a list to count by) is left to the caller.
/// </summary>
public sealed class TableCompletion
{
    private readonly Dictionary<string, int> _chunksLeft;
    private readonly HashSet<string> _wanted;
    private readonly List<string> _done = [];
    private readonly Channel<string> _ready = Channel.CreateUnbounded<string>();

    private TableCompletion(Dictionary<string, int> chunksLeft, HashSet<string> wanted)
    {
        _chunksLeft = chunksLeft;
        _wanted = wanted;
    }

    /// <summary>The side task: a failure there (its work's exception) fails the load like a loader's.</summary>
    public Task Worker { get; private set; } = Task.CompletedTask;

    /// <summary>
    /// Starts the side task for <paramref name="tables"/> (named as the manifest's entries name
    /// them); null when there is nothing to do early: no such table, or no list of entries.
    /// <paramref name="work"/> failing cancels <paramref name="failed"/>.
    /// </summary>
    public static TableCompletion? Start(
        IReadOnlyList<SetEntry>? entries, IEnumerable<string> tables, Func<string, CancellationToken, Task> work, CancellationTokenSource failed)
    {
        var wanted = tables.ToHashSet(StringComparer.Ordinal);
        if (entries is null || wanted.Count == 0)
        {
            return null;
        }
        var chunksLeft = entries.Where(e => e.Table is not null && BackupSet.Parse(e.Name)?.Kind == SetEntryKind.Data)
            .GroupBy(e => e.Table!, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.Count(), StringComparer.Ordinal);
        var completion = new TableCompletion(chunksLeft, wanted);
        completion.Worker = Task.Run(async () =>
        {
            try
            {
                await foreach (var table in completion._ready.Reader.ReadAllAsync(failed.Token).ConfigureAwait(false))
                {
                    await work(table, failed.Token).ConfigureAwait(false);
                    lock (completion._done)
                    {
                        completion._done.Add(table);
                    }
                }
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                await failed.CancelAsync().ConfigureAwait(false);
                throw;
            }
        }, failed.Token);
        return completion;
    }

    /// <summary>A loader loaded one chunk of <paramref name="table"/> (committed).</summary>
    public void ChunkLoaded(string table)
    {
        lock (_chunksLeft)
        {
            if (!_chunksLeft.TryGetValue(table, out var left))
            {
                return;
            }
            _chunksLeft[table] = --left;
            if (left == 0 && _wanted.Contains(table))
            {
                _ready.Writer.TryWrite(table);
            }
        }
    }

    /// <summary>Waits for the work under way (the load is over); returns the tables it was done for.</summary>
    public async Task<IReadOnlyCollection<string>> FinishAsync()
    {
        _ready.Writer.TryComplete();
        await Worker.ConfigureAwait(false);
        lock (_done)
        {
            return [.. _done];
        }
    }
}
