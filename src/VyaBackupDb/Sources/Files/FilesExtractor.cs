using System.Formats.Tar;
using Microsoft.Win32.SafeHandles;

namespace VyaBackupDb.Sources.Files;

/// <summary>
/// Writes the entries of a tar under one directory (the restore's private staging directory),
/// and nowhere else: names are made relative and refused when absolute or holding '..'
/// (<see cref="ArchiveEntries.RelativePath"/>); every directory on the way to an entry must be a
/// real directory, never a symlink (a symlink entry followed by an entry through it is refused);
/// a hard link must point at an earlier entry, by a path that passes the same checks. Files are
/// created exclusively (O_EXCL: an existing name, a symlink included, is unlinked first, never
/// written through). Modes, times (to the nanosecond) and, when running as root, owners (by
/// name when the name exists here, else by number) are restored; a directory's are set last.
/// Every entry is made by its own name in its parent directory's descriptor (a
/// <see cref="DirectoryChain"/>), so no path has to fit in PATH_MAX.
/// </summary>
[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
internal sealed class FilesExtractor : IDisposable
{
    private readonly byte[] _buffer = new byte[1 << 20];
    private readonly string _root;
    private readonly bool _setOwners = Posix.IsRoot;
    /// <summary>The directories made, with what is set on them at the end: not their entries (about 1 KB each).</summary>
    private readonly List<(string Relative, Metadata Metadata)> _directories = [];
    private readonly Action<string> _warning;
    private readonly ArchiveTree _tree = new();

    /// <summary>Down to the current entry's parent.</summary>
    private readonly DirectoryChain _parents;

    /// <summary>Down to a hard link's target's parent (opened at the first hard link).</summary>
    private DirectoryChain? _linkParents;

    private FilesExtractor(string root, Action<string> warning)
    {
        _root = root.TrimEnd('/');
        _warning = warning;
        _parents = new DirectoryChain(_root);
    }

    public EntryCounts Counts { get; } = new();

    /// <summary>
    /// Extracts every entry of <paramref name="plain"/> under <paramref name="root"/>. Throws
    /// <see cref="RefusedEntryException"/> for an entry that would leave it.
    /// </summary>
    public static EntryCounts Extract(Stream plain, string root, Action<string> warning, CancellationToken cancellationToken)
    {
        using var extractor = new FilesExtractor(root, warning);
        using var reader = new FilesArchiveReader(plain);
        while (reader.Next() is { } entry)
        {
            cancellationToken.ThrowIfCancellationRequested();
            extractor.Extract(entry);
        }
        extractor.FinishDirectories();
        return extractor.Counts;
    }

    public void Dispose()
    {
        _parents.Dispose();
        _linkParents?.Dispose();
    }

    private void Extract(TarEntry entry)
    {
        var kind = EntryCounts.Kind(entry);
        if (kind == EntryKind.Ignored)
        {
            return;
        }
        // The names checked as verify checks them; the staging directory is private, so what is on disk is what they say.
        var relative = _tree.Admit(entry, kind);
        Counts.Count(entry);
        if (kind == EntryKind.Other)
        {
            _warning($"'{entry.Name}' is {EntryCounts.Describe(entry.EntryType)}: not restored");
            return;
        }
        if (relative.Length == 0)
        {
            return; // the target itself ("./"): it exists; its own metadata stays the target's
        }
        var path = _root + "/" + relative;
        var segments = relative.Split('/');
        var parent = _parents.MoveTo(segments.AsSpan(0, segments.Length - 1)); // creates the directories the archive did not list before
        var name = Posix.NameBytes(segments[^1]);
        switch (kind)
        {
            case EntryKind.Directory:
                if (!Clear(parent, name, path))
                {
                    Posix.MakeDirectoryAt(parent, name, path);
                }
                _directories.Add((relative, MetadataOf(entry)));
                break;
            case EntryKind.File:
                Clear(parent, name, path);
                WriteFile(entry, parent, name, path);
                break;
            case EntryKind.Symlink:
                Clear(parent, name, path);
                Posix.SymlinkAt(entry.LinkName, parent, name, path);
                if (_setOwners)
                {
                    var (uid, gid) = Owner(entry);
                    Posix.ChownAtNoFollow(parent, name, uid, gid, path);
                }
                var (seconds, nanos) = ArchiveEntries.ModificationTime(entry);
                Posix.SetTimesAtNoFollow(parent, name, seconds, nanos, path);
                break;
            case EntryKind.HardLink:
                Clear(parent, name, path);
                var target = ArchiveEntries.RelativePath(entry.LinkName).Split('/');
                _linkParents ??= new DirectoryChain(_root);
                var targetParent = _linkParents.MoveTo(target.AsSpan(0, target.Length - 1));
                Posix.HardLinkAt(targetParent, Posix.NameBytes(target[^1]), parent, name, path);
                break;
        }
    }

    /// <summary>A file system block: a block of the file (at a multiple of this offset) that is all zeros is left as a hole.</summary>
    private const int HoleBlock = 4096;

    /// <summary>
    /// Writes the content, leaving its blocks of zeros as holes (as <c>cp --sparse=auto</c>): a sparse file (a VM image,
    /// lastlog) takes no more room than it did, where written whole it could fill the disk. The content is the same.
    /// </summary>
    private void WriteFile(TarEntry entry, int parent, byte[] name, string path)
    {
        using var file = Posix.CreateFileAt(parent, name, path);
        if (entry.DataStream is { } data)
        {
            long written = 0;
            int n;
            try
            {
                while ((n = data.Read(_buffer)) > 0)
                {
                    WriteLeavingHoles(file, _buffer.AsSpan(0, n), written);
                    written += n;
                }
                // A file that ends in a hole still has its length.
                RandomAccess.SetLength(file, written);
            }
            catch (ArgumentOutOfRangeException e)
            {
                throw new Errors.OperationFailedException($"cannot write {path}: {Errors.IoErrors.FileTooLarge}", e);
            }
        }
        SetMetadata(MetadataOf(entry), file, path);
    }

    /// <summary>
    /// Writes <paramref name="chunk"/> at <paramref name="offset"/>, each run of its blocks that are not all zeros at once;
    /// blocks are the file's (from multiples of <see cref="HoleBlock"/>), wherever the chunk starts.
    /// </summary>
    private static void WriteLeavingHoles(SafeFileHandle file, ReadOnlySpan<byte> chunk, long offset)
    {
        var run = -1; // where the run of blocks to write starts
        var at = 0;
        while (true)
        {
            var length = at < chunk.Length ? Math.Min(HoleBlock - (int)((offset + at) % HoleBlock), chunk.Length - at) : 0;
            var zeros = length > 0 && !chunk.Slice(at, length).ContainsAnyExcept((byte)0);
            if (length == 0 || zeros)
            {
                if (run >= 0)
                {
                    RandomAccess.Write(file, chunk[run..at], offset + run);
                    run = -1;
                }
                if (length == 0)
                {
                    return;
                }
            }
            else if (run < 0)
            {
                run = at;
            }
            at += length;
        }
    }

    /// <summary>
    /// Directories get their mode, owner and time after their content (writing into one changes
    /// its time), each after everything below it: in descending order of their names a directory
    /// comes after every one under it, and neighbours stay close, so the chain's common part is reused.
    /// </summary>
    private void FinishDirectories()
    {
        foreach (var (relative, metadata) in _directories.OrderByDescending(d => d.Relative, StringComparer.Ordinal))
        {
            var fd = _parents.MoveTo(relative.Split('/'));
            using var directory = new SafeFileHandle(fd, ownsHandle: false); // the chain closes it
            SetMetadata(metadata, directory, _root + "/" + relative);
        }
    }

    /// <summary>What is restored of an entry besides its content; the owner only when running as root.</summary>
    private readonly record struct Metadata(UnixFileMode Mode, long Seconds, uint Nanos, (uint Uid, uint Gid)? Owner);

    private Metadata MetadataOf(TarEntry entry)
    {
        var (seconds, nanos) = ArchiveEntries.ModificationTime(entry);
        return new Metadata((UnixFileMode)((int)entry.Mode & 0xFFF), seconds, nanos, _setOwners ? Owner(entry) : null);
    }

    /// <summary>Owner before mode: chown clears setuid and setgid.</summary>
    private static void SetMetadata(Metadata metadata, SafeFileHandle handle, string path)
    {
        if (metadata.Owner is var (uid, gid))
        {
            Posix.Chown(handle, path, uid, gid);
        }
        File.SetUnixFileMode(handle, metadata.Mode);
        Posix.SetTimes(handle, path, metadata.Seconds, metadata.Nanos);
    }

    /// <summary>
    /// Removes what an earlier entry put at <paramref name="name"/> (a later entry wins, as in
    /// tar), never following a symlink. True when a directory is there and is kept.
    /// </summary>
    private static bool Clear(int parent, byte[] name, string path)
    {
        if (Posix.TryStatAt(parent, name, path) is not { } stat)
        {
            return false;
        }
        if (stat.IsDirectory)
        {
            return true; // only a directory replaces one (ArchiveTree)
        }
        Posix.UnlinkAt(parent, name, path); // a symlink itself, not its target
        return false;
    }

    /// <summary>By name when the name exists here, else by number (as GNU tar does).</summary>
    private static (uint Uid, uint Gid) Owner(TarEntry entry)
    {
        var posix = entry as PosixTarEntry;
        var uid = posix is { UserName.Length: > 0 } && Posix.UserId(posix.UserName) is { } byName ? byName : (uint)entry.Uid;
        var gid = posix is { GroupName.Length: > 0 } && Posix.GroupId(posix.GroupName) is { } groupByName ? groupByName : (uint)entry.Gid;
        return (uid, gid);
    }
}

/// <summary>
/// The open directories from a root down to one under it, each opened by its name in the one
/// above (O_NOFOLLOW: a symlink on the way is never followed), so that no path given to the
/// kernel is longer than one name. Moving to another directory keeps the part in common open
/// (archives list their entries mostly depth-first) and creates the directories that are missing.
/// </summary>
[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
internal sealed class DirectoryChain : IDisposable
{
    private readonly string _rootPath;
    private readonly int _root;
    private readonly List<(string Name, int Fd)> _open = [];

    public DirectoryChain(string root)
    {
        _rootPath = root;
        _root = Posix.OpenDirectoryFdAt(Posix.CurrentDirectory, Posix.NameBytes(root), root);
    }

    /// <summary>The descriptor of the directory <paramref name="segments"/> (names from the root); open until the next move.</summary>
    public int MoveTo(ReadOnlySpan<string> segments)
    {
        var common = 0;
        while (common < _open.Count && common < segments.Length && _open[common].Name == segments[common])
        {
            common++;
        }
        CloseFrom(common);
        for (var i = common; i < segments.Length; i++)
        {
            var parent = i == 0 ? _root : _open[i - 1].Fd;
            var name = Posix.NameBytes(segments[i]);
            if (i >= Posix.MaxOpenLevels)
            {
                throw Posix.TooDeep(PathTo(segments, i));
            }
            try
            {
                if (Posix.TryOpenDirectoryFdAt(parent, name, segments[i]) is not { } fd)
                {
                    Posix.MakeDirectoryAt(parent, name, segments[i]);
                    fd = Posix.OpenDirectoryFdAt(parent, name, segments[i]);
                }
                _open.Add((segments[i], fd));
            }
            catch (PosixException e)
            {
                // The whole path only for the message: built for every level, a planted name of 100,000 levels ran out of memory.
                throw Posix.Error(e, PathTo(segments, i));
            }
        }
        return segments.Length == 0 ? _root : _open[^1].Fd;
    }

    /// <summary>The path down to <paramref name="level"/>, for an error message only.</summary>
    private string PathTo(ReadOnlySpan<string> segments, int level) => _rootPath + "/" + string.Join('/', segments[..(level + 1)]);

    public void Dispose()
    {
        CloseFrom(0);
        Posix.CloseFd(_root);
    }

    private void CloseFrom(int depth)
    {
        for (var i = _open.Count - 1; i >= depth; i--)
        {
            Posix.CloseFd(_open[i].Fd);
            _open.RemoveAt(i);
        }
    }
}
