using System.Formats.Tar;
using VyaBackupDb.Catalog;
using VyaBackupDb.Pipeline;

namespace VyaBackupDb.Sources.Files;

/// <summary>
/// verify's read of a files backup: every entry parsed (header checksums) and its data read, the
/// names checked as a restore would check them, tar's end-of-archive blocks present, and the
/// entries counted against the manifest.
/// </summary>
public static class FilesArchiveCheck
{
    /// <summary>Reads <paramref name="plain"/> to its end; returns the problems found (none: the archive is good).</summary>
    public static async Task<IReadOnlyList<string>> ReadAsync(MeasuringStream plain, FilesSummary? recorded, CancellationToken cancellationToken)
    {
        var problems = new List<string>();
        var counts = new EntryCounts();
        var refused = 0;
        var tree = new ArchiveTree(); // the restore's own check of the names
        await using (var reader = new FilesArchiveReader(plain))
        {
            while (await NextEntryAsync(reader, problems, cancellationToken).ConfigureAwait(false) is { } entry)
            {
                if (EntryCounts.Kind(entry) == EntryKind.Ignored)
                {
                    continue;
                }
                counts.Count(entry);
                try
                {
                    tree.Admit(entry, EntryCounts.Kind(entry));
                }
                catch (RefusedEntryException e) when (refused++ < 10)
                {
                    problems.Add($"a restore would refuse it: {e.Message}");
                }
                catch (RefusedEntryException)
                {
                }
            }
        }
        await plain.CopyToAsync(Stream.Null, cancellationToken).ConfigureAwait(false);
        if (!plain.TailContains(EndOfArchive))
        {
            problems.Add("truncated: the archive ends without tar's end-of-archive blocks");
        }
        if (recorded is not null)
        {
            problems.AddRange(counts.CompareWith(recorded));
        }
        return problems;
    }

    /// <summary>The next entry; null at the end, or (named in <paramref name="problems"/>) at a header a restore refuses or cannot read.</summary>
    private static async Task<TarEntry?> NextEntryAsync(FilesArchiveReader reader, List<string> problems, CancellationToken cancellationToken)
    {
        try
        {
            return await reader.NextAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (RefusedEntryException e)
        {
            problems.Add($"a restore would refuse it: {e.Message}");
            return null;
        }
        catch (UnreadableArchiveException e)
        {
            problems.Add($"a restore cannot read it: {e.Message}");
            return null;
        }
    }

    /// <summary>Two zero blocks: what every complete tar ends with (then zeros to its record size).</summary>
    internal static string EndOfArchive { get; } = new('\0', 2 * TarArchiveWriter.BlockSize);
}
