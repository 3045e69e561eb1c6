using System.Text;
using System.Text.Unicode;
using VyaBackupDb.Catalog;
using VyaBackupDb.Errors;

namespace VyaBackupDb.Sources.Files;

/// <summary>
/// Writes the tar of a files instance: each root depth first, names in byte order; entry names
/// are the absolute paths without their leading '/' (as GNU tar writes them). Symlinks are stored
/// as links, never followed; a file with several names is stored once, then as hard links. Each
/// name is looked up in the descriptor of the directory it was listed from, so a directory swapped
/// for a symlink meanwhile never leads elsewhere (and is reported), and depth has no limit. A file
/// is read through the descriptor it was opened with (no symlink followed, no FIFO waited for),
/// and exactly the size its header gives is stored: a file that changes, grows, shrinks or
/// vanishes meanwhile is noted (and reported), never presented as good.
/// </summary>
internal sealed class FilesArchiver
{
    private readonly FileSelection _selection;
    private readonly bool _skipUnreadable;
    private readonly TarArchiveWriter _tar;
    private readonly CancellationToken _cancellationToken;
    private readonly Dictionary<(ulong Device, ulong Inode), (string Name, FileStat Stat)> _firstNames = [];
    private readonly List<(string Name, TarMeta Meta)> _pending = [];
    private readonly List<string> _segments = [];
    private readonly List<FileNote> _changed = [];
    private readonly List<FileNote> _skipped = [];
    private readonly List<string> _warnings = [];
    private readonly List<string> _withAttributes = [];
    private long _files, _directories, _symlinks, _hardLinks, _bytes, _changedCount, _skippedCount, _withAttributesCount;

    /// <summary>Entries written so far, of every kind.</summary>
    private long Stored => _files + _directories + _symlinks + _hardLinks;

    private FilesArchiver(FileSelection selection, bool skipUnreadable, TarArchiveWriter tar, CancellationToken cancellationToken)
    {
        _selection = selection;
        _skipUnreadable = skipUnreadable;
        _tar = tar;
        _cancellationToken = cancellationToken;
    }

    /// <summary>
    /// Archives <paramref name="roots"/> (absolute, normalised) into <paramref name="output"/>.
    /// Throws <see cref="OperationFailedException"/> for a missing root or an unreadable file
    /// (unless <paramref name="skipUnreadable"/>).
    /// </summary>
    public static (FilesSummary Summary, IReadOnlyList<string> Warnings) Write(
        IReadOnlyList<string> roots, FileSelection selection, bool skipUnreadable, Stream output, CancellationToken cancellationToken)
    {
        using var tar = new TarArchiveWriter(output);
        var archiver = new FilesArchiver(selection, skipUnreadable, tar, cancellationToken);
        foreach (var root in roots)
        {
            archiver.Root(root);
        }
        if (archiver.Stored == 0)
        {
            // An archive of nothing would be stored and listed as a good backup of the instance.
            var reasons = archiver._warnings.Concat(archiver._skipped.Take(3).Select(n => $"{n.Path} ({n.Reason})"));
            throw new OperationFailedException("nothing to back up: " + string.Join("; ", reasons.DefaultIfEmpty("paths: hold nothing")));
        }
        tar.Finish();
        if (archiver._withAttributesCount > 0)
        {
            archiver._warnings.Add($"{archiver._withAttributesCount} file(s) or directories have ACLs or extended attributes, which a backup does not keep: "
                + string.Join(", ", archiver._withAttributes) + (archiver._withAttributesCount > archiver._withAttributes.Count ? ", ..." : ""));
        }
        var summary = new FilesSummary
        {
            Paths = roots,
            Files = archiver._files,
            Directories = archiver._directories,
            Symlinks = archiver._symlinks,
            HardLinks = archiver._hardLinks,
            TotalBytes = archiver._bytes,
            ChangedCount = archiver._changedCount,
            Changed = archiver._changed,
            SkippedCount = archiver._skippedCount,
            Skipped = archiver._skipped,
            XattrsNotKept = archiver._withAttributesCount,
        };
        return (summary, archiver._warnings);
    }

    private void Root(string root)
    {
        var rootName = Posix.NameBytes(root);
        FileStat stat;
        try
        {
            stat = Posix.StatAt(Posix.CurrentDirectory, rootName, root);
        }
        catch (PosixException e)
        {
            throw new OperationFailedException($"cannot back up {root} (paths:): {Reason(e)}");
        }
        if (stat.IsSymlink)
        {
            _warnings.Add($"{root} (paths:) is a symlink: the link is stored, not what it points to; list its target in paths to back that up");
        }
        _segments.Clear();
        var storedBefore = Stored;
        Visit(Posix.CurrentDirectory, rootName, root, root.TrimStart('/'), stat, ancestorIncluded: false);
        if (_selection.HasInclude && Stored == storedBefore)
        {
            // include applies below every path: one whose tree matches none of it is left out whole.
            _warnings.Add($"{root} (paths:): nothing in it matches include: it is not in the backup");
        }
    }

    /// <summary>
    /// Stores <paramref name="fileName"/> (NUL-terminated bytes) of the open directory
    /// <paramref name="parent"/>: <paramref name="path"/> is for messages, <paramref name="name"/>
    /// the entry's name in the archive.
    /// </summary>
    private void Visit(int parent, byte[] fileName, string path, string name, FileStat stat, bool ancestorIncluded)
    {
        _cancellationToken.ThrowIfCancellationRequested();
        var included = ancestorIncluded || _selection.Included(_segments);
        if (stat.IsDirectory)
        {
            VisitDirectory(parent, fileName, path, name, included);
        }
        else if (!included)
        {
        }
        else if (stat.IsRegular)
        {
            WriteRegular(parent, fileName, path, name);
        }
        else if (stat.IsSymlink)
        {
            WriteSymlink(parent, fileName, path, name, stat);
        }
        else
        {
            Skip(path, (stat.Type switch { 0xC000 => "a socket", 0x1000 => "a FIFO", 0x2000 => "a character device", 0x6000 => "a block device", _ => "a special file" })
                + ": not backed up");
        }
    }

    private void VisitDirectory(int parent, byte[] fileName, string path, string name, bool included)
    {
        if (!included && !_selection.MayIncludeBelow(_segments))
        {
            return;
        }
        if (_segments.Count >= Posix.MaxOpenLevels)
        {
            throw new OperationFailedException(Posix.TooDeep(path).Message);
        }
        DirectoryHandle directory;
        try
        {
            directory = Posix.OpenDirectoryAt(parent, fileName, path);
        }
        catch (PosixException e) when (e.Errno is PosixException.ELOOP or PosixException.ENOTDIR)
        {
            Changed(path, "replaced by a symlink or file while being read: not stored");
            return;
        }
        catch (PosixException e) when (e.IsMissing)
        {
            Changed(path, "vanished while being read");
            return;
        }
        catch (PosixException e)
        {
            Unreadable(path, Reason(e));
            return;
        }
        using (directory)
        {
            var stat = Posix.FStat(directory, path);
            if (Kept(() => Posix.ExtendedAttributesOf(directory, path), stat, path) is not { } kept)
            {
                return;
            }
            List<byte[]> children;
            try
            {
                children = Posix.ReadNames(directory, path);
            }
            catch (PosixException e)
            {
                Unreadable(path, Reason(e));
                return;
            }
            children.Sort(static (a, b) => a.AsSpan().SequenceCompareTo(b));
            VisitChildren(directory, children, path, name, kept, included);

            // Still the directory that was listed, and as listed? One swapped for another (or a symlink)
            // meanwhile was not followed, but what is stored under its name is what it held before; and
            // an entry moved into it after its listing is in no backup (GNU tar's "file changed as we read it").
            FileStat? now;
            try
            {
                now = Posix.TryStatAt(parent, fileName, path);
            }
            catch (PosixException)
            {
                now = null;
            }
            if (now is not { } still || still.Device != stat.Device || still.Inode != stat.Inode)
            {
                Changed(path, "moved or replaced while being read: stored as it was when listed");
            }
            else if (!still.SameVersionAs(stat))
            {
                Changed(path, "changed while being read: what was moved or added into it meanwhile is not in the backup");
            }
        }
    }

    private void VisitChildren(DirectoryHandle directory, List<byte[]> children, string path, string name, FileStat stat, bool included)
    {
        // The root "/" has no entry of its own (its name would be empty).
        var pending = name.Length > 0;
        if (pending)
        {
            _pending.Add((name, TarMeta.Of(stat)));
        }
        var depth = _pending.Count;
        if (pending && included)
        {
            WritePending();
        }
        foreach (var child in children)
        {
            var bytes = child.AsSpan(0, child.Length - 1);
            var text = Encoding.UTF8.GetString(bytes); // not valid UTF-8: U+FFFD in place of bad bytes, for patterns and messages
            _segments.Add(text);
            try
            {
                var childPath = path == "/" ? "/" + text : path + "/" + text;
                var childName = name.Length == 0 ? text : name + "/" + text;
                if (_selection.Excluded(_segments))
                {
                    continue;
                }
                if (!Utf8.IsValid(bytes))
                {
                    Unreadable(childPath, "its name is not valid UTF-8");
                    continue;
                }
                FileStat childStat;
                try
                {
                    childStat = Posix.StatAt(directory.Fd, child, childPath);
                }
                catch (PosixException e) when (e.IsMissing)
                {
                    Changed(childPath, "vanished while being read");
                    continue;
                }
                catch (PosixException e)
                {
                    Unreadable(childPath, Reason(e));
                    continue;
                }
                Visit(directory.Fd, child, childPath, childName, childStat, included);
            }
            finally
            {
                _segments.RemoveAt(_segments.Count - 1);
            }
        }
        if (pending && _pending.Count == depth && depth > 0)
        {
            // Nothing below was included: the directory is left out too.
            _pending.RemoveAt(_pending.Count - 1);
        }
    }

    private void WriteRegular(int parent, byte[] fileName, string path, string name)
    {
        Microsoft.Win32.SafeHandles.SafeFileHandle handle;
        try
        {
            handle = Posix.OpenReadAt(parent, fileName, path);
        }
        catch (PosixException e) when (e.IsMissing)
        {
            Changed(path, "vanished while being read");
            return;
        }
        catch (PosixException e) when (e.Errno is PosixException.ELOOP or PosixException.ENXIO)
        {
            Changed(path, "replaced by a symlink or special file while being read: not stored");
            return;
        }
        catch (PosixException e)
        {
            Unreadable(path, Reason(e));
            return;
        }
        using (handle)
        {
            var before = Posix.FStat(handle, path);
            if (!before.IsRegular)
            {
                Changed(path, "replaced by something other than a file while being read: not stored");
                return;
            }
            if (Kept(() => Posix.ExtendedAttributesOf(handle, path), before, path) is not { } kept)
            {
                return;
            }
            var meta = TarMeta.Of(kept);
            if (before.Links > 1)
            {
                var inode = (before.Device, before.Inode);
                // An inode number names the stored file only while that file is unchanged: one deleted during the
                // walk frees its number for a new file, which was stored as a link to the old name (its content lost).
                if (_firstNames.TryGetValue(inode, out var first) && first.Stat.SameVersionAs(before))
                {
                    WritePending();
                    _tar.WriteHardLink(name, first.Name, meta);
                    _hardLinks++;
                    return;
                }
                if (first.Name is not null)
                {
                    Changed(path, $"shares its inode number with /{first.Name}, which changed or was replaced meanwhile: stored as a file of its own, not a hard link to it");
                }
                _firstNames[inode] = (name, before);
            }
            WritePending();
            long read;
            try
            {
                read = _tar.WriteFile(name, meta, before.Size, (buffer, offset) => RandomAccess.Read(handle, buffer.Span, offset), _cancellationToken);
            }
            catch (IOException e) when (e is not PosixException)
            {
                // The header is written: the file cannot be left out any more.
                throw new OperationFailedException($"cannot read {path}: {e.Message}", e);
            }
            _files++;
            _bytes += before.Size;
            var after = Posix.FStat(handle, path);
            if (read < before.Size)
            {
                Changed(path, $"shrank while being read: stored with its last {before.Size - read} bytes as zeros");
            }
            else if (after.Size > before.Size)
            {
                Changed(path, $"grew while being read: stored its first {before.Size} bytes");
            }
            else if (!after.SameVersionAs(before))
            {
                Changed(path, "changed while being read: the stored copy may mix old and new content");
            }
        }
    }

    private void WriteSymlink(int parent, byte[] fileName, string path, string name, FileStat stat)
    {
        byte[] target;
        try
        {
            target = Posix.ReadLinkAt(parent, fileName, path);
        }
        catch (PosixException e) when (e.IsMissing)
        {
            Changed(path, "vanished while being read");
            return;
        }
        catch (PosixException e) when (e.Errno == PosixException.EINVAL)
        {
            Changed(path, "replaced by something other than a symlink while being read: not stored");
            return;
        }
        catch (PosixException e)
        {
            Unreadable(path, Reason(e));
            return;
        }
        // A pax archive holds UTF-8 text: other bytes would come back as another target.
        if (!Utf8.IsValid(target))
        {
            Unreadable(path, "its target is not valid UTF-8");
            return;
        }
        WritePending();
        _tar.WriteSymlink(name, Encoding.UTF8.GetString(target), TarMeta.Of(stat));
        _symlinks++;
    }

    /// <summary>Writes the directories on the way to an entry that are not written yet.</summary>
    private void WritePending()
    {
        foreach (var (name, meta) in _pending)
        {
            _tar.WriteDirectory(name, meta);
            _directories++;
        }
        _pending.Clear();
    }

    /// <summary>
    /// <paramref name="stat"/> as stored, or null when its extended attributes cannot be read (then
    /// skipped as unreadable). tar keeps no ACL or extended attribute: they are counted for a warning.
    /// With an access ACL the mode's group bits are the ACL's mask, which may exceed what the owning
    /// group has (group::): they are narrowed to it, so a restore never gives that group more.
    /// </summary>
    private FileStat? Kept(Func<ExtendedAttributes> read, FileStat stat, string path)
    {
        ExtendedAttributes attributes;
        try
        {
            attributes = read();
        }
        catch (PosixException e)
        {
            Unreadable(path, Reason(e));
            return null;
        }
        if (!attributes.Any)
        {
            return stat;
        }
        _withAttributesCount++;
        if (_withAttributes.Count < 3)
        {
            _withAttributes.Add(path);
        }
        return attributes.AclGroup is { } group ? stat with { Mode = stat.Mode & ~((~(uint)group & 7) << 3) } : stat;
    }

    private void Unreadable(string path, string reason)
    {
        if (!_skipUnreadable)
        {
            throw new OperationFailedException(
                $"cannot read {path}: {reason}; nothing was backed up (skip_unreadable: true in the instance skips such files, and says so)");
        }
        Skip(path, $"unreadable ({reason}): skipped");
    }

    private void Changed(string path, string reason)
    {
        _changedCount++;
        if (_changed.Count < FilesSummary.MaxNotes)
        {
            _changed.Add(new FileNote(path, reason));
        }
    }

    private void Skip(string path, string reason)
    {
        _skippedCount++;
        if (_skipped.Count < FilesSummary.MaxNotes)
        {
            _skipped.Add(new FileNote(path, reason));
        }
    }

    /// <summary>The C library's text without the path prefix ("Permission denied").</summary>
    private static string Reason(PosixException e)
    {
        var colon = e.Message.LastIndexOf(": ", StringComparison.Ordinal);
        return colon < 0 ? e.Message : e.Message[(colon + 2)..];
    }
}
