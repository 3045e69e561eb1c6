using System.Runtime.InteropServices;
using System.Text;
using Microsoft.Win32.SafeHandles;

namespace VyaBackupDb.Sources.Files;

/// <summary>
/// The calls a backup walks its trees with: each name is looked up in the directory descriptor it
/// was listed from (statx, openat, readlinkat on one component), so a directory swapped for a
/// symlink mid-walk can never lead a read elsewhere, and no path has to fit in PATH_MAX. Names
/// are the raw bytes the kernel gives, NUL-terminated.
/// </summary>
internal static partial class Posix
{
    /// <summary>AT_FDCWD: a name looked up from the working directory (or an absolute path).</summary>
    public const int CurrentDirectory = AtFdCwd;

    // O_DIRECTORY is 040000 on ARM and POWER, 0200000 elsewhere.
    private static readonly int ODirectory =
        RuntimeInformation.ProcessArchitecture is Architecture.Arm or Architecture.Arm64 or Architecture.Ppc64le ? 0x4000 : 0x10000;

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
