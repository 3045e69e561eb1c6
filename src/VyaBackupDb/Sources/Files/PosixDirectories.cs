using System.Runtime.InteropServices;
using System.Text;
using Microsoft.Win32.SafeHandles;

namespace VyaBackupDb.Sources.Files;

/// <summary>
/// The calls a backup walks its trees with, and a restore builds and removes them with: each name
/// is looked up in the directory descriptor it was listed from or is made in (statx, openat,
/// readlinkat, mkdirat, unlinkat, ... on one component), so a directory swapped for a symlink
/// mid-walk can never lead a read elsewhere, and no path has to fit in PATH_MAX. Names are the
/// raw bytes the kernel gives, NUL-terminated.
/// </summary>
internal static partial class Posix
{
    /// <summary>AT_FDCWD: a name looked up from the working directory (or an absolute path).</summary>
    public const int CurrentDirectory = AtFdCwd;

    // O_DIRECTORY is 040000 on ARM and POWER, 0200000 elsewhere.
    private static readonly int ODirectory =
        RuntimeInformation.ProcessArchitecture is Architecture.Arm or Architecture.Arm64 or Architecture.Ppc64le ? 0x4000 : 0x10000;

    // The same on every Linux architecture .NET runs on.
    private const int OWriteOnly = 0x1;
    private const int OCreate = 0x40;
    private const int OExclusive = 0x80;
    private const int AtRemoveDir = 0x200;

    /// <summary>struct dirent's d_name: after d_ino, d_off (both 64-bit on 64-bit systems), d_reclen and d_type.</summary>
    private static readonly int DirentNameOffset = IntPtr.Size == 8 ? 19 : 11;

    /// <summary>A path or name as the kernel takes it: UTF-8, NUL-terminated.</summary>
    public static byte[] NameBytes(string name) => Encoding.UTF8.GetBytes(name + "\0");

    /// <summary>lstat of <paramref name="name"/> in the directory <paramref name="directory"/> (never a symlink's target).</summary>
    public static FileStat StatAt(int directory, byte[] name, string path)
    {
        if (StatxAt(directory, name, AtSymlinkNoFollow, StatxBasicStats, out var buffer) != 0)
        {
            throw Error(path);
        }
        return buffer.ToStat();
    }

    /// <summary><see cref="StatAt"/>, or null when the name is gone.</summary>
    public static FileStat? TryStatAt(int directory, byte[] name, string path)
    {
        if (StatxAt(directory, name, AtSymlinkNoFollow, StatxBasicStats, out var buffer) == 0)
        {
            return buffer.ToStat();
        }
        var error = Error(path);
        return error.IsMissing ? null : throw error;
    }

    /// <summary>Opens a directory to list it; ELOOP or ENOTDIR when the name is not (any more) a directory.</summary>
    public static DirectoryHandle OpenDirectoryAt(int directory, byte[] name, string path)
    {
        var fd = OpenAt(directory, name, ODirectory | ONoFollow | OCloExec);
        if (fd < 0)
        {
            throw Error(path);
        }
        var dir = FdOpenDir(fd);
        if (dir == IntPtr.Zero)
        {
            var error = Error(path);
            Close(fd);
            throw error;
        }
        return new DirectoryHandle(dir, fd);
    }

    /// <summary>
    /// Opens a file in <paramref name="directory"/> to read, without following a symlink and without
    /// blocking on a FIFO (the name may have been replaced since it was listed).
    /// </summary>
    public static SafeFileHandle OpenReadAt(int directory, byte[] name, string path)
    {
        var fd = OpenAt(directory, name, ONoFollow | ONonBlock | OCloExec);
        if (fd < 0)
        {
            throw Error(path);
        }
        return new SafeFileHandle(fd, ownsHandle: true);
    }

    /// <summary>A symlink's target, as its bytes; EINVAL when the name is not (any more) a symlink.</summary>
    public static byte[] ReadLinkAt(int directory, byte[] name, string path)
    {
        for (var size = 4096; ; size *= 4)
        {
            var buffer = new byte[size];
            var length = ReadLinkAtC(directory, name, buffer, size);
            if (length < 0)
            {
                throw Error(path);
            }
            if (length < size)
            {
                return buffer[..(int)length];
            }
        }
    }

    /// <summary>The names in an open directory (without "." and ".."), NUL-terminated, in the order the file system gives.</summary>
    public static unsafe List<byte[]> ReadNames(DirectoryHandle directory, string path)
    {
        var names = new List<byte[]>();
        var added = false;
        directory.DangerousAddRef(ref added);
        try
        {
            while (true)
            {
                var entry = ReadDir(directory.DangerousGetHandle());
                if (entry == IntPtr.Zero)
                {
                    // End of the directory, or an error: readdir tells them apart by errno only.
                    if (Marshal.GetLastPInvokeError() != 0)
                    {
                        throw Error(path);
                    }
                    return names;
                }
                var name = MemoryMarshal.CreateReadOnlySpanFromNullTerminated((byte*)entry + DirentNameOffset);
                if (name is not ([(byte)'.'] or [(byte)'.', (byte)'.']))
                {
                    names.Add([.. name, 0]);
                }
            }
        }
        finally
        {
            if (added)
            {
                directory.DangerousRelease();
            }
        }
    }

    public static FileStat FStat(DirectoryHandle directory, string path)
    {
        if (StatxAt(directory.Fd, [0], AtEmptyPath, StatxBasicStats, out var buffer) != 0)
        {
            throw Error(path);
        }
        return buffer.ToStat();
    }

    /// <summary>
    /// Opens a directory as a descriptor to look names up from (not to list), never through a
    /// symlink: ELOOP or ENOTDIR when the name is not a directory.
    /// </summary>
    public static int OpenDirectoryFdAt(int directory, byte[] name, string path)
    {
        var fd = OpenAt(directory, name, ODirectory | ONoFollow | OCloExec);
        return fd >= 0 ? fd : throw Error(path);
    }

    /// <summary><see cref="OpenDirectoryFdAt"/>, or null when there is no such name.</summary>
    public static int? TryOpenDirectoryFdAt(int directory, byte[] name, string path)
    {
        var fd = OpenAt(directory, name, ODirectory | ONoFollow | OCloExec);
        if (fd >= 0)
        {
            return fd;
        }
        var error = Error(path);
        return error.Errno == PosixException.ENOENT ? null : throw error;
    }

    public static void CloseFd(int fd) => Close(fd);

    /// <summary>
    /// mkdir 0700: a directory of the archive gets its recorded mode once filled; one it does not hold
    /// (a parent of a restored path) stays private, not the umask's 0777 under umask 000.
    /// </summary>
    public static void MakeDirectoryAt(int directory, byte[] name, string path)
    {
        if (MkdirAt(directory, name, 0x1C0) != 0)
        {
            throw Error(path);
        }
    }

    /// <summary>Creates a file 0600 to write, exclusively (O_EXCL: never through a symlink or into an existing file).</summary>
    public static SafeFileHandle CreateFileAt(int directory, byte[] name, string path)
    {
        var fd = OpenAtCreating(directory, name, OWriteOnly | OCreate | OExclusive | ONoFollow | OCloExec, 0x180);
        if (fd < 0)
        {
            throw Error(path);
        }
        return new SafeFileHandle(fd, ownsHandle: true);
    }

    /// <summary>Removes a name that is not a directory (a symlink itself, not its target).</summary>
    public static void UnlinkAt(int directory, byte[] name, string path)
    {
        if (UnlinkAtC(directory, name, 0) != 0)
        {
            throw Error(path);
        }
    }

    public static void SymlinkAt(string target, int directory, byte[] name, string path)
    {
        if (SymlinkAtC(NameBytes(target), directory, name) != 0)
        {
            throw Error(path);
        }
    }

    /// <summary>linkat without AT_SYMLINK_FOLLOW: a symlink as <paramref name="existingName"/> is linked itself.</summary>
    public static void HardLinkAt(int existingDirectory, byte[] existingName, int directory, byte[] name, string path)
    {
        if (LinkAt(existingDirectory, existingName, directory, name, 0) != 0)
        {
            throw Error(path);
        }
    }

    /// <summary>The owner of the name itself (on a symlink the link).</summary>
    public static void ChownAtNoFollow(int directory, byte[] name, uint uid, uint gid, string path)
    {
        if (FChownAt(directory, name, uid, gid, AtSymlinkNoFollow) != 0)
        {
            throw Error(path);
        }
    }

    /// <summary>Sets the name's modification time (and access time to the same), on a symlink the link itself.</summary>
    public static void SetTimesAtNoFollow(int directory, byte[] name, long seconds, uint nanos, string path)
    {
        var times = new Timespec[] { new(seconds, nanos), new(seconds, nanos) };
        if (UtimensAtName(directory, name, times, AtSymlinkNoFollow) != 0)
        {
            throw Error(path);
        }
    }

    /// <summary>
    /// The first name below <paramref name="path"/> (a directory) on another file system than it (a
    /// mount point), or null. Never follows a symlink nor enters another file system; a directory
    /// this user may not read or search is passed over (<see cref="RemoveTree"/> still stops at a
    /// boundary there). As <see cref="RemoveTree"/>, only one directory is open (the way back up is
    /// its ".."), so a tree of any depth is checked.
    /// </summary>
    public static string? FindOtherFileSystem(string path)
    {
        var top = NameBytes(path);
        var device = StatAt(CurrentDirectory, top, path).Device;
        var levels = new List<(byte[] Name, List<byte[]> Children)>();
        var current = OpenDirectoryAt(CurrentDirectory, top, path);
        try
        {
            levels.Add((top, ReadNames(current, path)));
            while (true)
            {
                var children = levels[^1].Children;
                if (children.Count == 0)
                {
                    levels.RemoveAt(levels.Count - 1);
                    if (levels.Count == 0)
                    {
                        return null;
                    }
                    var above = OpenDirectoryAt(current.Fd, NameBytes(".."), path);
                    current.Dispose();
                    current = above;
                    continue;
                }
                var child = children[^1];
                children.RemoveAt(children.Count - 1);
                var stat = TryStatAt(current.Fd, child, path);
                if (stat is { } found && found.Device != device)
                {
                    // Built only here: at every level, a deep tree's paths would take memory by the square.
                    return string.Join('/', levels.Skip(1).Select(l => l.Name).Append(child)
                        .Select(n => Encoding.UTF8.GetString(n.AsSpan(0, n.Length - 1))).Prepend(path));
                }
                if (stat is not { IsDirectory: true } || TryEnter(current.Fd, child) is not { } below)
                {
                    continue;
                }
                current.Dispose();
                current = below;
                levels.Add((child, ReadNames(current, path)));
            }
        }
        finally
        {
            current.Dispose();
        }
    }

    /// <summary>A directory opened to walk it, or null when this user may not read it or search it (then it cannot be left by its "..").</summary>
    private static DirectoryHandle? TryEnter(int directory, byte[] name)
    {
        DirectoryHandle handle;
        try
        {
            handle = OpenDirectoryAt(directory, name, "");
        }
        catch (PosixException e) when (e.IsPermission || e.IsMissing)
        {
            return null;
        }
        if (StatxAt(handle.Fd, NameBytes(".."), AtSymlinkNoFollow, StatxBasicStats, out _) == 0)
        {
            return handle;
        }
        handle.Dispose();
        return null;
    }

    /// <summary>
    /// Removes a tree by descriptors, never following a symlink and with no path longer than one
    /// name given to the kernel (so trees of any depth go). Each directory lacking rwx for its
    /// owner is made 0700 first (a restored one may be 0555). Only the directory being emptied is
    /// open (the way back up is its ".."), so a tree deeper than the open-files limit goes too;
    /// iterative, so a deep tree cannot overflow the stack. The trees removed are the restore's
    /// own, where nobody else can move a directory (the target's parents are checked). Nothing on
    /// another file system than <paramref name="path"/> is touched (a mount point in the tree):
    /// the removal stops there, naming it.
    /// </summary>
    public static void RemoveTree(string path)
    {
        var top = NameBytes(path);
        var device = StatAt(CurrentDirectory, top, path).Device;
        if (!MakeWritableIfDirectory(CurrentDirectory, top, path))
        {
            UnlinkAt(CurrentDirectory, top, path);
            return;
        }
        var levels = new List<(byte[] Name, List<byte[]> Children)>();
        var current = OpenDirectoryAt(CurrentDirectory, top, path);
        try
        {
            levels.Add((top, ReadNames(current, path)));
            while (levels.Count > 0)
            {
                var children = levels[^1].Children;
                try
                {
                    if (children.Count > 0)
                    {
                        var child = children[^1];
                        children.RemoveAt(children.Count - 1);
                        if (StatAt(current.Fd, child, "").Device != device)
                        {
                            // Checked before any chmod, unlink or descent: another file system's files are not the restore's to remove.
                            var where = string.Join('/', levels.Select(l => l.Name).Append(child).Select(n => Encoding.UTF8.GetString(n.AsSpan(0, n.Length - 1))));
                            throw new PosixException(PosixException.EXDEV, $"{Shortened(where)} is a mount point (another file system): not removed, nor anything on it");
                        }
                        if (MakeWritableIfDirectory(current.Fd, child, ""))
                        {
                            var below = OpenDirectoryAt(current.Fd, child, "");
                            current.Dispose();
                            current = below;
                            levels.Add((child, ReadNames(current, "")));
                        }
                        else
                        {
                            UnlinkAt(current.Fd, child, "");
                        }
                        continue;
                    }
                    var name = levels[^1].Name;
                    if (levels.Count == 1)
                    {
                        current.Dispose(); // again in finally: a SafeHandle closes once
                        UnlinkDirectoryAt(CurrentDirectory, name, path);
                        return;
                    }
                    var above = OpenDirectoryAt(current.Fd, NameBytes(".."), "");
                    current.Dispose();
                    current = above;
                    levels.RemoveAt(levels.Count - 1);
                    UnlinkDirectoryAt(current.Fd, name, "");
                }
                catch (PosixException e) when (levels.Count > 0 && e.Errno != PosixException.EXDEV)
                {
                    // The path only for the message: built at every level, a deep tree's paths take memory by the square.
                    throw Error(e, string.Join('/', levels.Select(l => Encoding.UTF8.GetString(l.Name.AsSpan(0, l.Name.Length - 1)))));
                }
            }
        }
        finally
        {
            current.Dispose();
        }
    }

    private static void UnlinkDirectoryAt(int directory, byte[] name, string path)
    {
        if (UnlinkAtC(directory, name, AtRemoveDir) != 0)
        {
            throw Error(path);
        }
    }

    /// <summary>True when the name is a directory (then made 0700 if its owner lacks rwx); never follows a symlink.</summary>
    private static bool MakeWritableIfDirectory(int directory, byte[] name, string path)
    {
        var stat = StatAt(directory, name, path);
        if (!stat.IsDirectory)
        {
            return false;
        }
        if ((stat.Permissions & 0x1C0) != 0x1C0 && FChmodAt(directory, name, 0x1C0, AtSymlinkNoFollow) != 0)
        {
            throw Error(path);
        }
        return true;
    }

    [LibraryImport("libc", EntryPoint = "statx", SetLastError = true)]
    private static partial int StatxAt(int dirfd, byte[] name, int flags, uint mask, out StatxBuffer buffer);

    [LibraryImport("libc", EntryPoint = "openat", SetLastError = true)]
    private static partial int OpenAt(int dirfd, byte[] name, int flags);

    [LibraryImport("libc", EntryPoint = "readlinkat", SetLastError = true)]
    private static partial nint ReadLinkAtC(int dirfd, byte[] name, byte[] buffer, nint size);

    [LibraryImport("libc", EntryPoint = "fdopendir", SetLastError = true)]
    private static partial IntPtr FdOpenDir(int fd);

    [LibraryImport("libc", EntryPoint = "readdir", SetLastError = true)]
    private static partial IntPtr ReadDir(IntPtr dir);

    [LibraryImport("libc", EntryPoint = "closedir")]
    internal static partial int CloseDir(IntPtr dir);

    [LibraryImport("libc", EntryPoint = "close")]
    private static partial int Close(int fd);

    [LibraryImport("libc", EntryPoint = "openat", SetLastError = true)]
    private static partial int OpenAtCreating(int dirfd, byte[] name, int flags, uint mode);

    [LibraryImport("libc", EntryPoint = "mkdirat", SetLastError = true)]
    private static partial int MkdirAt(int dirfd, byte[] name, uint mode);

    [LibraryImport("libc", EntryPoint = "unlinkat", SetLastError = true)]
    private static partial int UnlinkAtC(int dirfd, byte[] name, int flags);

    [LibraryImport("libc", EntryPoint = "symlinkat", SetLastError = true)]
    private static partial int SymlinkAtC(byte[] target, int dirfd, byte[] name);

    [LibraryImport("libc", EntryPoint = "linkat", SetLastError = true)]
    private static partial int LinkAt(int existingDirfd, byte[] existingName, int dirfd, byte[] name, int flags);

    [LibraryImport("libc", EntryPoint = "fchownat", SetLastError = true)]
    private static partial int FChownAt(int dirfd, byte[] name, uint uid, uint gid, int flags);

    [LibraryImport("libc", EntryPoint = "fchmodat", SetLastError = true)]
    private static partial int FChmodAt(int dirfd, byte[] name, uint mode, int flags);

    [LibraryImport("libc", EntryPoint = "utimensat", SetLastError = true)]
    private static partial int UtimensAtName(int dirfd, byte[] name, Timespec[] times, int flags);
}

/// <summary>An open directory (a DIR*, and the descriptor it reads, which names inside it are looked up from).</summary>
internal sealed class DirectoryHandle : SafeHandleZeroOrMinusOneIsInvalid
{
    public DirectoryHandle(IntPtr dir, int fd)
        : base(ownsHandle: true)
    {
        SetHandle(dir);
        Fd = fd;
    }

    /// <summary>Valid while the handle is not disposed.</summary>
    public int Fd { get; }

    protected override bool ReleaseHandle() => Posix.CloseDir(handle) == 0;
}
