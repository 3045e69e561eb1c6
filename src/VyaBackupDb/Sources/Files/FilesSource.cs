using VyaBackupDb.Catalog;
using VyaBackupDb.Config;
using VyaBackupDb.Engines;
using VyaBackupDb.Errors;

namespace VyaBackupDb.Sources.Files;

/// <summary>
/// A files instance (<c>dbms: files</c>): its <c>paths</c> are one item, written as one tar
/// (<see cref="FilesArchiver"/>). The archive is produced on its own thread while the backup
/// chain compresses it, as <c>tar -c | zstd</c> would.
/// </summary>
public sealed class FilesSource(InstanceConfig instance) : IBackupSource
{
    /// <summary>What the manifest records as the format of a files backup.</summary>
    public const string Format = "tar";

    private const int NamesInWarning = 10;

    private static readonly DatabaseInventory NoInventory = new([], [], new ObjectCounts(0, 0, 0, 0));

    /// <summary>tar's end of archive: two zero blocks (then zeros up to the record size).</summary>
    public string CompletionTrailer => FilesArchiveCheck.EndOfArchive;

    public bool WritesSet(string item) => false;

    public Task<ServerInfo> ProbeAsync(CancellationToken cancellationToken) =>
        Task.FromResult(new ServerInfo("files", Environment.MachineName, [instance.Name]));

    public IReadOnlyList<string> Select(ServerInfo server, string? requested) =>
        requested is null
            ? [instance.Name]
            : throw new UsageException($"instance {instance.Id} ({instance.Name}) backs up files: --database does not apply to it");

    /// <summary>Unknown without walking the trees twice: progress shows bytes only.</summary>
    public Task<long?> SizeAsync(string item, CancellationToken cancellationToken) => Task.FromResult<long?>(null);

    public async Task<DumpDetails> DumpAsync(string item, Stream output, CancellationToken cancellationToken)
    {
        var selection = new FileSelection(instance.Include, instance.Exclude);
        var ((summary, warnings), _) = await Pipelined.RunAsync(
            (tar, token) => Pipelined.OnOwnThread(() => FilesArchiver.Write(instance.Paths, selection, instance.SkipUnreadable, tar, token), token),
            async (tar, token) =>
            {
                await tar.CopyToAsync(output, 1 << 20, token).ConfigureAwait(false);
                return true;
            },
            cancellationToken).ConfigureAwait(false);
        return new DumpDetails("vya-backupdb", ToolInfo.Version, NoInventory, Warning(summary, warnings)) { Format = Format, Files = summary };
    }

    private string? Warning(FilesSummary summary, IReadOnlyList<string> warnings)
    {
        var parts = new List<string>(warnings);
        if (summary.ChangedCount > 0)
        {
            parts.Add($"{summary.ChangedCount} file(s) changed or vanished while being read (the manifest flags this backup): "
                + Names(summary.Changed, summary.ChangedCount));
        }
        if (summary.SkippedCount > 0)
        {
            parts.Add($"{summary.SkippedCount} not backed up: " + Names(summary.Skipped, summary.SkippedCount));
        }
        return parts.Count == 0 ? null : string.Join("; ", parts);
    }

    private static string Names(IReadOnlyList<FileNote> notes, long count) =>
        string.Join(", ", notes.Take(NamesInWarning).Select(n => $"{n.Path} ({n.Reason})"))
        + (count > NamesInWarning ? $", and {count - NamesInWarning} more (listed in the manifest)" : "");
}
