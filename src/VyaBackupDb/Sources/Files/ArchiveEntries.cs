using System.Formats.Tar;
using System.Globalization;
using System.Text;
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

    /// <summary>An entry kind a restore leaves out, in words (not .NET's enum names).</summary>
    internal static string Describe(TarEntryType type) => type switch
    {
        TarEntryType.CharacterDevice => "a character device",
        TarEntryType.BlockDevice => "a block device",
        TarEntryType.Fifo => "a FIFO",
        TarEntryType.SparseFile => "a GNU sparse file",
        _ => $"an entry of tar type '{(char)type}'",
    };

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
    /// <summary>Names of the restore's own directories in the target: staging, the old content, a commit under way.</summary>
    public const string StagingPrefix = ".vya-restore-";
    public const string ReplacedPrefix = ".vya-replaced-";
    public const string CommittingPrefix = ".vya-committing-";
    public const string RemovingPrefix = ".vya-removing-";

    /// <summary>
    /// A name the restore gives its own directories: never an archive's (<see cref="ArchiveTree"/>
    /// refuses it), so that a later run's recovery of an interrupted commit acts on its own only.
    /// </summary>
    public static bool IsReservedName(string name) =>
        name.StartsWith(StagingPrefix, StringComparison.Ordinal) || name.StartsWith(ReplacedPrefix, StringComparison.Ordinal)
        || name.StartsWith(CommittingPrefix, StringComparison.Ordinal) || name.StartsWith(RemovingPrefix, StringComparison.Ordinal);

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

/// <summary>
/// The one check of an archive's names, shared by restore (before it writes an entry) and
/// verify: the names the archive has put so far, as a restore lays them out. An entry is refused
/// when its name leaves the target (<see cref="ArchiveEntries.RelativePath"/>), has a component
/// over 255 bytes, goes through an earlier symlink or file, or would replace a directory with
/// something else; a hard link must point at an earlier file or symlink (not through a symlink:
/// link(2) on a symlink makes a second symlink, which the restore never follows); a symlink's
/// target must not hold a NUL.
/// </summary>
internal sealed class ArchiveTree
{
    private const int MaxNameBytes = 255;

    /// <summary>
    /// The names put so far, one node per name component: checking and recording an entry takes
    /// time and memory in proportion to its name (a planted name of 500,000 levels made a table of
    /// every prefix quadratic in both).
    /// </summary>
    private readonly Node _target = new(EntryKind.Directory);

    /// <summary>
    /// How many more directories the names may imply than the archive lists entries: tar lists a
    /// directory before what it holds, so a real archive implies few; a planted one of 100,000 empty
    /// files, each 200 levels down a chain of its own, took 6 GB to check.
    /// </summary>
    private const long MaxImpliedSurplus = 100_000;

    private long _entries;
    private long _implied;

    /// <summary>Checks an entry and records it; returns its path relative to the target (empty: the target itself).</summary>
    public string Admit(TarEntry entry, EntryKind kind)
    {
        var relative = ArchiveEntries.RelativePath(entry.Name);
        if (kind == EntryKind.Other)
        {
            return relative; // not restored: it takes no name
        }
        var segments = relative.Split('/');
        if (segments.Any(segment => Encoding.UTF8.GetByteCount(segment) > MaxNameBytes))
        {
            throw new RefusedEntryException($"'{entry.Name}' has a name component over {MaxNameBytes} bytes, more than a file system takes");
        }
        if (ArchiveEntries.IsReservedName(segments[0]))
        {
            throw new RefusedEntryException($"'{entry.Name}' takes a name the restore keeps for its own directories (.vya-restore-..., .vya-replaced-...)");
        }
        if (relative.Length == 0)
        {
            return kind == EntryKind.Directory ? relative
                : throw new RefusedEntryException($"entry '{entry.Name}' would replace the target directory itself");
        }
        var parent = Way(segments, relative);
        if (kind == EntryKind.Symlink && string.IsNullOrEmpty(entry.LinkName))
        {
            throw new RefusedEntryException($"symlink '{entry.Name}' has no target");
        }
        if (kind == EntryKind.Symlink && entry.LinkName.Contains('\0', StringComparison.Ordinal))
        {
            throw new RefusedEntryException($"symlink '{entry.Name}' has a NUL in its target"); // the kernel would take the part before it
        }
        if (kind == EntryKind.HardLink)
        {
            var target = ArchiveEntries.RelativePath(entry.LinkName, $"hard link '{entry.Name}' to");
            var targetSegments = target.Split('/');
            var linked = Way(targetSegments, target)?.Child(targetSegments[^1]);
            if (target == relative)
            {
                throw new RefusedEntryException($"hard link '{entry.Name}' points to itself");
            }
            if (linked is null || linked.Kind == EntryKind.Directory)
            {
                throw new RefusedEntryException(
                    $"hard link '{entry.Name}' points to '{entry.LinkName}', which is not a file or symlink restored before it");
            }
        }
        var existing = parent?.Child(segments[^1]);
        if (existing is { Kind: EntryKind.Directory } && kind != EntryKind.Directory)
        {
            throw new RefusedEntryException($"'{relative}' would replace a directory");
        }
        var node = _target;
        _entries++;
        foreach (var segment in segments.AsSpan(0, segments.Length - 1))
        {
            if (node.Child(segment) is not { } child)
            {
                if (++_implied > _entries + MaxImpliedSurplus)
                {
                    throw new RefusedEntryException(
                        $"the archive's names imply over {MaxImpliedSurplus} more directories than it lists entries (at '{entry.Name[..Math.Min(entry.Name.Length, 200)]}'): "
                        + "tar lists a directory before its content; such an archive is refused");
                }
                child = node.Add(segment, EntryKind.Directory); // created on the way
            }
            node = child;
        }
        if (existing is not null)
        {
            existing.Kind = kind; // a later entry wins, as in tar
        }
        else
        {
            node.Add(segments[^1], kind);
        }
        return relative;
    }

    /// <summary>
    /// Checks that every directory on the way to an entry is one, or not there yet (never a symlink
    /// or a file); returns the node of its parent, or null when part of the way is not there yet.
    /// </summary>
    private Node? Way(string[] segments, string relative)
    {
        var node = _target;
        for (var i = 0; i < segments.Length - 1; i++)
        {
            if (node.Child(segments[i]) is not { } child)
            {
                return null;
            }
            if (child.Kind != EntryKind.Directory)
            {
                var parent = string.Join('/', segments[..(i + 1)]);
                throw new RefusedEntryException(child.Kind == EntryKind.Symlink
                    ? $"'{relative}' goes through the symlink '{parent}'"
                    : $"'{relative}' goes through '{parent}', which is not a directory");
            }
            node = child;
        }
        return node;
    }

    private sealed class Node(EntryKind kind)
    {
        private Dictionary<string, Node>? _children;

        public EntryKind Kind { get; set; } = kind;

        public Node? Child(string name) => _children?.GetValueOrDefault(name);

        public Node Add(string name, EntryKind kind)
        {
            var node = new Node(kind);
            (_children ??= new(StringComparer.Ordinal))[name] = node;
            return node;
        }
    }
}
