using System.Threading.Channels;

namespace VyaBackupDb.Sources.Sets;

/// <summary>
/// Runs a piece of work on tables (build their indexes, analyze them) as soon as the last of their
/// chunks, by the manifest's list, is loaded: on one side task beside the loaders, on the tables
/// completed since its last run, as pg_restore builds one table's indexes while the next ones load.
/// What is not done by the end of the load (a table without chunks, or without a list to count by,
/// or completed too late to be started) is left to the caller, which can share it among connections.
/// </summary>
public sealed class TableCompletion
{
    private readonly Dictionary<string, int> _chunksLeft;
    private readonly HashSet<string> _wanted;
    private readonly Channel<string> _ready = Channel.CreateUnbounded<string>();
    // The tables handed to the work so far, and whether it may take more (both under this lock).
    private readonly HashSet<string> _taken = new(StringComparer.Ordinal);
    private bool _stopped;

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
        IReadOnlyList<SetEntry>? entries, IEnumerable<string> tables, Func<IReadOnlyList<string>, CancellationToken, Task> work,
        CancellationTokenSource failed)
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
                var ready = completion._ready.Reader;
                while (await ready.WaitToReadAsync(failed.Token).ConfigureAwait(false))
                {
                    var batch = new List<string>();
                    lock (completion._taken)
                    {
                        if (completion._stopped)
                        {
                            break;
                        }
                        while (ready.TryRead(out var table))
                        {
                            batch.Add(table);
                        }
                        completion._taken.UnionWith(batch);
                    }
                    await work(batch, failed.Token).ConfigureAwait(false);
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

    /// <summary>
    /// The load is over: the work takes no more tables. Returns those it has taken (done, or under
    /// way in <see cref="Worker"/>): the caller can do the rest beside it.
    /// </summary>
    public IReadOnlySet<string> Stop()
    {
        lock (_taken)
        {
            _stopped = true;
            _ready.Writer.TryComplete();
            return _taken.ToHashSet(StringComparer.Ordinal);
        }
    }

    /// <summary>Stops (<see cref="Stop"/>) and waits for the work under way; returns the tables it was done for.</summary>
    public async Task<IReadOnlyCollection<string>> FinishAsync()
    {
        var taken = Stop();
        // The work fails the worker, so a worker that ended well did it for every table it took.
        await Worker.ConfigureAwait(false);
        return taken;
    }
}
