using System.Formats.Tar;

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
/// </summary>
[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
internal sealed class FilesExtractor
{
    private readonly byte[] _buffer = new byte[1 << 20];
    private readonly string _root;
    private readonly bool _setOwners = Posix.IsRoot;
    private readonly List<(string Path, int Depth, TarEntry Entry)> _directories = [];
    private readonly Action<string> _warning;
    private readonly ArchiveTree _tree = new();
    private string? _createdParent;

    private FilesExtractor(string root, Action<string> warning)
    {
        _root = root.TrimEnd('/');
        _warning = warning;
    }

    public EntryCounts Counts { get; } = new();

    /// <summary>
    /// Extracts every entry of <paramref name="plain"/> under <paramref name="root"/>. Throws
    /// <see cref="RefusedEntryException"/> for an entry that would leave it.
    /// </summary>
    public static EntryCounts Extract(Stream plain, string root, Action<string> warning, CancellationToken cancellationToken)
    {
        var extractor = new FilesExtractor(root, warning);
        using var reader = new FilesArchiveReader(plain);
        while (reader.Next() is { } entry)
        {
            cancellationToken.ThrowIfCancellationRequested();
            extractor.Extract(entry);
        }
        extractor.FinishDirectories();
        return extractor.Counts;
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
            _warning($"'{entry.Name}' is a {entry.EntryType} entry: not restored");
            return;
        }
        if (relative.Length == 0)
        {
            return; // the target itself ("./"): it exists; its own metadata stays the target's
        }
        var path = _root + "/" + relative;
        CreateParent(relative);
        switch (kind)
        {
            case EntryKind.Directory:
                if (!Clear(path))
                {
                    Directory.CreateDirectory(path);
                }
                _directories.Add((path, relative.Count(c => c == '/'), entry));
                break;
            case EntryKind.File:
                Clear(path);
                WriteFile(entry, path);
                break;
            case EntryKind.Symlink:
                Clear(path);
                File.CreateSymbolicLink(path, entry.LinkName);
                SetOwner(entry, path, handle: null);
                var (seconds, nanos) = ArchiveEntries.ModificationTime(entry);
                Posix.SetTimesNoFollow(path, seconds, nanos);
                break;
            case EntryKind.HardLink:
                Clear(path);
                Posix.HardLink(_root + "/" + ArchiveEntries.RelativePath(entry.LinkName), path); // link(2) links a symlink itself
                break;
        }
    }

    private void WriteFile(TarEntry entry, string path)
    {
        var options = new FileStreamOptions
        {
            Mode = FileMode.CreateNew, // O_EXCL: never through a symlink or into an existing file
            Access = FileAccess.Write,
            Share = FileShare.None,
            BufferSize = 0,
            UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
        };
        using var file = new FileStream(path, options);
        if (entry.DataStream is { } data)
        {
            int n;
            while ((n = data.Read(_buffer)) > 0)
            {
                file.Write(_buffer, 0, n);
            }
        }
        // Owner before mode: chown clears setuid and setgid.
        SetOwner(entry, path, file.SafeFileHandle);
        File.SetUnixFileMode(file.SafeFileHandle, (UnixFileMode)((int)entry.Mode & 0xFFF));
        var (seconds, nanos) = ArchiveEntries.ModificationTime(entry);
        Posix.SetTimes(file.SafeFileHandle, path, seconds, nanos);
    }

    /// <summary>Directories get their mode, owner and time after their content, deepest first (writing into one changes its time).</summary>
    private void FinishDirectories()
    {
        foreach (var (path, _, entry) in _directories.OrderByDescending(d => d.Depth))
        {
            SetOwner(entry, path, handle: null);
            File.SetUnixFileMode(path, (UnixFileMode)((int)entry.Mode & 0xFFF));
            var (seconds, nanos) = ArchiveEntries.ModificationTime(entry);
            Posix.SetTimesNoFollow(path, seconds, nanos);
        }
    }

    /// <summary>Creates the directories on the way to an entry that the archive did not list before it.</summary>
    private void CreateParent(string relative)
    {
        var slash = relative.LastIndexOf('/');
        if (slash > 0 && relative[..slash] != _createdParent)
        {
            _createdParent = relative[..slash];
            Directory.CreateDirectory(_root + "/" + _createdParent);
        }
    }

    /// <summary>
    /// Removes what an earlier entry put at <paramref name="path"/> (a later entry wins, as in
    /// tar), never following a symlink. True when a directory is there and is kept.
    /// </summary>
    private static bool Clear(string path)
    {
        if (Posix.TryLStat(path) is not { } stat)
        {
            return false;
        }
        if (stat.IsDirectory)
        {
            return true; // only a directory replaces one (ArchiveTree)
        }
        File.Delete(path); // unlink: a symlink itself, not its target
        return false;
    }

    private void SetOwner(TarEntry entry, string path, Microsoft.Win32.SafeHandles.SafeFileHandle? handle)
    {
        if (!_setOwners)
        {
            return;
        }
        var posix = entry as PosixTarEntry;
        var uid = posix is { UserName.Length: > 0 } && Posix.UserId(posix.UserName) is { } byName ? byName : (uint)entry.Uid;
        var gid = posix is { GroupName.Length: > 0 } && Posix.GroupId(posix.GroupName) is { } groupByName ? groupByName : (uint)entry.Gid;
        if (handle is null)
        {
            Posix.ChownNoFollow(path, uid, gid);
        }
        else
        {
            Posix.Chown(handle, path, uid, gid);
        }
    }
}
