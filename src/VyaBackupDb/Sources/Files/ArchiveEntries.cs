using System.Formats.Tar;
using System.Globalization;
using VyaBackupDb.Catalog;

namespace VyaBackupDb.Sources.Files;

/// <summary>An entry a restore will not write: its name (or link) would leave the target, or it is not a kind we restore.</summary>
internal sealed class RefusedEntryException(string message) : Exception(message);

/// <summary>Entries of an archive by type, as counted while reading it (compared with the manifest's).</summary>
public sealed class EntryCounts
{
    public long Files { get; set; }

    public long Directories { get; set; }

    public long Symlinks { get; set; }

    public long HardLinks { get; set; }

    public long TotalBytes { get; set; }

    /// <summary>Entries of other kinds (devices, FIFOs, sparse files) that were left out.</summary>
    public long Skipped { get; set; }

    internal void Count(TarEntry entry)
    {
        switch (Kind(entry))
        {
            case EntryKind.File:
                Files++;
                TotalBytes += entry.Length;
                break;
            case EntryKind.Directory:
                Directories++;
                break;
            case EntryKind.Symlink:
                Symlinks++;
                break;
            case EntryKind.HardLink:
                HardLinks++;
                break;
            case EntryKind.Other:
                Skipped++;
                break;
        }
    }

    /// <summary>What differs from the manifest's counts; empty when everything matches.</summary>
    public IReadOnlyList<string> CompareWith(FilesSummary manifest)
    {
        var problems = new List<string>();
        void Check(string what, long found, long recorded)
        {
            if (found != recorded)
            {
                problems.Add($"{found} {what} in the archive, the manifest recorded {recorded}");
            }
        }
        Check("files", Files, manifest.Files);
        Check("directories", Directories, manifest.Directories);
        Check("symlinks", Symlinks, manifest.Symlinks);
        Check("hard links", HardLinks, manifest.HardLinks);
        Check("bytes of file content", TotalBytes, manifest.TotalBytes);
        return problems;
    }

    public override string ToString() =>
        $"{Files} files ({TotalBytes} bytes), {Directories} directories, {Symlinks} symlinks, {HardLinks} hard links";

    internal static EntryKind Kind(TarEntry entry) => entry.EntryType switch
    {
        TarEntryType.RegularFile or TarEntryType.V7RegularFile or TarEntryType.ContiguousFile => EntryKind.File,
        TarEntryType.Directory => EntryKind.Directory,
        TarEntryType.SymbolicLink => EntryKind.Symlink,
        TarEntryType.HardLink => EntryKind.HardLink,
        TarEntryType.GlobalExtendedAttributes => EntryKind.Ignored,
        _ => EntryKind.Other,
    };
}

internal enum EntryKind
{
    File,
    Directory,
    Symlink,
    HardLink,

    /// <summary>Carries no file (a pax global header).</summary>
    Ignored,

    /// <summary>A device, FIFO, GNU sparse file or other kind a restore leaves out.</summary>
    Other,
}

/// <summary>How a restore reads entry names: only relative paths that stay inside the target.</summary>
internal static class ArchiveEntries
{
    /// <summary>
    /// The entry's path relative to the target, '.' segments and repeated '/' removed (empty for
    /// the target itself). Refuses absolute names and '..' components: such a name is never
    /// written, whatever the archive.
    /// </summary>
    public static string RelativePath(string name, string what = "entry")
    {
        if (name.Length == 0)
        {
            throw new RefusedEntryException($"an {what} has an empty name");
        }
        if (name.StartsWith('/'))
        {
            throw new RefusedEntryException($"{what} '{name}' has an absolute path");
        }
        if (name.Contains('\0', StringComparison.Ordinal))
        {
            throw new RefusedEntryException($"{what} '{name}' has a NUL in its name");
        }
        var segments = name.Split('/', StringSplitOptions.RemoveEmptyEntries).Where(s => s != ".").ToArray();
        if (segments.Contains(".."))
        {
            throw new RefusedEntryException($"{what} '{name}' has a '..' component");
        }
        return string.Join('/', segments);
    }

    /// <summary>The modification time to nanoseconds: the pax record when there is one (TarEntry rounds to 100 ns).</summary>
    public static (long Seconds, uint Nanos) ModificationTime(TarEntry entry)
    {
        if (entry is PaxTarEntry pax && pax.ExtendedAttributes.TryGetValue("mtime", out var text) && TryParsePaxTime(text, out var exact))
        {
            return exact;
        }
        var time = entry.ModificationTime;
        var seconds = time.ToUnixTimeSeconds();
        var ticks = (time - DateTimeOffset.FromUnixTimeSeconds(seconds)).Ticks;
        return (seconds, (uint)(ticks * 100));
    }

    /// <summary>Parses "1700000000.123456789" or "-1.25" (1.25 s before the epoch).</summary>
    internal static bool TryParsePaxTime(string text, out (long Seconds, uint Nanos) time)
    {
        time = default;
        var negative = text.StartsWith('-');
        var body = negative ? text[1..] : text;
        var dot = body.IndexOf('.', StringComparison.Ordinal);
        var whole = dot < 0 ? body : body[..dot];
        var fraction = dot < 0 ? "" : body[(dot + 1)..];
        if (!long.TryParse(whole, NumberStyles.None, CultureInfo.InvariantCulture, out var seconds)
            || (fraction.Length > 0 && !fraction.All(char.IsAsciiDigit)))
        {
            return false;
        }
        var nanos = fraction.Length == 0 ? 0u : uint.Parse(fraction.PadRight(9, '0')[..9], CultureInfo.InvariantCulture);
        time = !negative ? (seconds, nanos)
            : nanos == 0 ? (-seconds, 0u)
            : (-seconds - 1, 1_000_000_000 - nanos);
        return true;
    }
}
