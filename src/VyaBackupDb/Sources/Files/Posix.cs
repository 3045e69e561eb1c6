using System.Collections.Concurrent;
using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;
using VyaBackupDb.Errors;

namespace VyaBackupDb.Sources.Files;

/// <summary>What lstat/fstat says about a file.</summary>
internal readonly record struct FileStat(
    uint Mode, uint Uid, uint Gid, uint Links, ulong Inode, ulong Device, long Size,
    long MtimeSeconds, uint MtimeNanos, long CtimeSeconds, uint CtimeNanos)
{
    private const uint TypeMask = 0xF000;

    public uint Type => Mode & TypeMask;

    public bool IsRegular => Type == 0x8000;

    public bool IsDirectory => Type == 0x4000;

    public bool IsSymlink => Type == 0xA000;

    /// <summary>Permission bits with setuid, setgid and sticky.</summary>
    public int Permissions => (int)(Mode & 0xFFF);

    /// <summary>Same content as far as tar can tell (GNU tar's "file changed as we read it" test).</summary>
    public bool SameVersionAs(FileStat other) =>
        Size == other.Size && MtimeSeconds == other.MtimeSeconds && MtimeNanos == other.MtimeNanos
        && CtimeSeconds == other.CtimeSeconds && CtimeNanos == other.CtimeNanos;
}

/// <summary>A failed system call: errno and the C library's text for it.</summary>
internal sealed class PosixException(int errno, string message) : IOException(message)
{
    public const int ENOENT = 2;
    public const int EACCES = 13;
    public const int EPERM = 1;
    public const int EEXIST = 17;
    public const int EXDEV = 18;
    public const int ENOTDIR = 20;
    public const int EINVAL = 22;
    public const int ELOOP = 40;
    public const int ENOTEMPTY = 39;
    public const int ENXIO = 6;
    public const int EBUSY = 16;
    public const int ENOSYS = 38;
    public const int ERANGE = 34;
    public const int ENODATA = 61;
    public const int ENOTSUP = 95;

    public int Errno { get; } = errno;

    public bool IsPermission => Errno is EACCES or EPERM;

    public bool IsMissing => Errno is ENOENT or ENOTDIR;
}

/// <summary>
/// The few Linux calls .NET does not offer: lstat with owner, inode and nanoseconds (statx: one
/// layout on every architecture), open without following a symlink, hard links, times and owners
/// set on a link itself, user and group names, an atomic directory swap.
/// </summary>
internal static partial class Posix
{
    private const int AtFdCwd = -100;
    private const int AtSymlinkNoFollow = 0x100;
    private const int AtEmptyPath = 0x1000;
    private const uint StatxBasicStats = 0x7ff;
    private const int ONonBlock = 0x800;
    private const int OCloExec = 0x80000;
    private const uint RenameExchange = 2;

    // O_NOFOLLOW is 0100000 on ARM and POWER, 0400000 elsewhere.
    private static readonly int ONoFollow =
        RuntimeInformation.ProcessArchitecture is Architecture.Arm or Architecture.Arm64 or Architecture.Ppc64le ? 0x8000 : 0x20000;

    private static readonly ConcurrentDictionary<uint, string?> UserNames = new();
    private static readonly ConcurrentDictionary<uint, string?> GroupNames = new();
    private static readonly ConcurrentDictionary<string, uint?> UserIds = new(StringComparer.Ordinal);
    private static readonly ConcurrentDictionary<string, uint?> GroupIds = new(StringComparer.Ordinal);

    public static bool IsRoot => GetEuid() == 0;

    /// <summary>lstat: the path itself, never what a symlink points to.</summary>
    public static FileStat LStat(string path)
    {
        if (Statx(AtFdCwd, path, AtSymlinkNoFollow, StatxBasicStats, out var buffer) != 0)
        {
            throw Error(path);
        }
        return buffer.ToStat();
    }

    /// <summary>lstat, or null when the path does not exist.</summary>
    public static FileStat? TryLStat(string path) => TryStatx(path, AtSymlinkNoFollow);

    /// <summary>stat (through symlinks), or null when the path does not exist.</summary>
    public static FileStat? TryStat(string path) => TryStatx(path, 0);

    private static FileStat? TryStatx(string path, int flags)
    {
        if (Statx(AtFdCwd, path, flags, StatxBasicStats, out var buffer) == 0)
        {
            return buffer.ToStat();
        }
        var error = Error(path);
        return error.IsMissing ? null : throw error;
    }

    public static FileStat FStat(SafeFileHandle handle, string path)
    {
        var added = false;
        handle.DangerousAddRef(ref added);
        try
        {
            if (StatxFd((int)handle.DangerousGetHandle(), "", AtEmptyPath, StatxBasicStats, out var buffer) != 0)
            {
                throw Error(path);
            }
            return buffer.ToStat();
        }
        finally
        {
            if (added)
            {
                handle.DangerousRelease();
            }
        }
    }

    public static void SetTimes(SafeFileHandle handle, string path, long seconds, uint nanos)
    {
        var times = new Timespec[] { new(seconds, nanos), new(seconds, nanos) };
        WithFd(handle, fd => Futimens(fd, times), path);
    }

    public static void ChownNoFollow(string path, uint uid, uint gid)
    {
        if (LChown(path, uid, gid) != 0)
        {
            throw Error(path);
        }
    }

    public static void Chown(SafeFileHandle handle, string path, uint uid, uint gid) => WithFd(handle, fd => FChown(fd, uid, gid), path);

    /// <summary>rename(2): replaces an empty directory at <paramref name="to"/> atomically.</summary>
    public static void Rename(string from, string to)
    {
        if (RenameC(from, to) != 0)
        {
            throw Error(to);
        }
    }

    /// <summary>Swaps two paths atomically; false when the file system cannot (then nothing changed).</summary>
    public static bool TryExchange(string a, string b)
    {
        if (RenameAt2(AtFdCwd, a, AtFdCwd, b, RenameExchange) == 0)
        {
            return true;
        }
        var error = Error(b);
        return error.Errno is PosixException.EINVAL or PosixException.ENOSYS ? false : throw error;
    }

    public static string? UserName(uint uid) => UserNames.GetOrAdd(uid, static id => LookUpName(id, user: true));

    public static string? GroupName(uint gid) => GroupNames.GetOrAdd(gid, static id => LookUpName(id, user: false));

    public static uint? UserId(string name) => UserIds.GetOrAdd(name, static n => LookUpId(n, user: true));

    public static uint? GroupId(string name) => GroupIds.GetOrAdd(name, static n => LookUpId(n, user: false));

    private static string? LookUpName(uint id, bool user) =>
        WithEntry((entry, buffer, size) =>
        {
            var rc = user ? GetPwUidR(id, entry, buffer, size, out var result) : GetGrGidR(id, entry, buffer, size, out result);
            return (rc, result);
        }, entry => Marshal.PtrToStringUTF8(Marshal.ReadIntPtr(entry)));

    private static uint? LookUpId(string name, bool user) =>
        WithEntry<uint?>((entry, buffer, size) =>
        {
            var rc = user ? GetPwNamR(name, entry, buffer, size, out var result) : GetGrNamR(name, entry, buffer, size, out result);
            return (rc, result);
        }, entry => (uint)Marshal.ReadInt32(entry, 2 * IntPtr.Size)); // pw_uid / gr_gid follow two pointers

    /// <summary>Calls a get*_r function with a growing buffer; null when there is no such entry.</summary>
    private static T? WithEntry<T>(Func<IntPtr, IntPtr, nuint, (int Rc, IntPtr Result)> call, Func<IntPtr, T> read)
    {
        var entry = Marshal.AllocHGlobal(128); // struct passwd / struct group are smaller
        try
        {
            for (var size = 16384; size <= 1 << 20; size *= 4)
            {
                var buffer = Marshal.AllocHGlobal(size);
                try
                {
                    var (rc, result) = call(entry, buffer, (nuint)size);
                    if (rc == PosixException.ERANGE)
                    {
                        continue;
                    }
                    return rc == 0 && result != IntPtr.Zero ? read(entry) : default;
                }
                finally
                {
                    Marshal.FreeHGlobal(buffer);
                }
            }
            return default;
        }
        finally
        {
            Marshal.FreeHGlobal(entry);
        }
    }

    private static void WithFd(SafeFileHandle handle, Func<int, int> call, string path)
    {
        var added = false;
        handle.DangerousAddRef(ref added);
        try
        {
            if (call((int)handle.DangerousGetHandle()) != 0)
            {
                throw Error(path);
            }
        }
        finally
        {
            if (added)
            {
                handle.DangerousRelease();
            }
        }
    }

    private static PosixException Error(string path)
    {
        var errno = Marshal.GetLastPInvokeError();
        return new PosixException(errno, $"{Shortened(path)}: {Marshal.GetPInvokeErrorMessage(errno)}");
    }

    /// <summary><paramref name="e"/> said of <paramref name="path"/> (where the call was given one name of it).</summary>
    public static PosixException Error(PosixException e, string path) =>
        new(e.Errno, $"{Shortened(path)}: {Marshal.GetPInvokeErrorMessage(e.Errno)}");

    /// <summary>
    /// How many directory levels a walk may hold open (backup and restore hold one file per level): all but
    /// 256 of the open files limit, which the runtime needs (a restore that took them all aborted, "Out of memory.").
    /// </summary>
    public static readonly long MaxOpenLevels = IoErrors.OpenFilesLimit is { } limit && limit < long.MaxValue ? (long)limit - 256 : long.MaxValue;

    /// <summary>The error for a tree deeper than <see cref="MaxOpenLevels"/>.</summary>
    public static PosixException TooDeep(string path) =>
        new(24, $"{Shortened(path)}: the tree is deeper than the open files limit allows (one open file per directory level; ulimit -n {IoErrors.OpenFilesLimit})");

    /// <summary>A path as an error line shows it: one thousands of levels deep keeps its two ends.</summary>
    private static string Shortened(string path) => path.Length <= 500 ? path : $"{path[..200]}...({path.Length} characters)...{path[^200..]}";

    [StructLayout(LayoutKind.Sequential)]
    private readonly struct Timespec(long seconds, long nanos)
    {
        public readonly long Seconds = seconds;
        public readonly long Nanos = nanos;
    }

    /// <summary>struct statx (include/uapi/linux/stat.h): the same 256 bytes on every architecture.</summary>
    [StructLayout(LayoutKind.Explicit, Size = 256)]
    private struct StatxBuffer
    {
        [FieldOffset(16)] public uint Nlink;
        [FieldOffset(20)] public uint Uid;
        [FieldOffset(24)] public uint Gid;
        [FieldOffset(28)] public ushort Mode;
        [FieldOffset(32)] public ulong Ino;
        [FieldOffset(40)] public ulong Size;
        [FieldOffset(96)] public long CtimeSeconds;
        [FieldOffset(104)] public uint CtimeNanos;
        [FieldOffset(112)] public long MtimeSeconds;
        [FieldOffset(120)] public uint MtimeNanos;
        [FieldOffset(136)] public uint DevMajor;
        [FieldOffset(140)] public uint DevMinor;

        public readonly FileStat ToStat() => new(
            Mode, Uid, Gid, Nlink, Ino, ((ulong)DevMajor << 32) | DevMinor, (long)Size,
            MtimeSeconds, MtimeNanos, CtimeSeconds, CtimeNanos);
    }

    [LibraryImport("libc", EntryPoint = "statx", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int Statx(int dirfd, string path, int flags, uint mask, out StatxBuffer buffer);

    [LibraryImport("libc", EntryPoint = "statx", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int StatxFd(int dirfd, string path, int flags, uint mask, out StatxBuffer buffer);

    [LibraryImport("libc", EntryPoint = "futimens", SetLastError = true)]
    private static partial int Futimens(int fd, Timespec[] times);

    [LibraryImport("libc", EntryPoint = "lchown", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int LChown(string path, uint uid, uint gid);

    [LibraryImport("libc", EntryPoint = "fchown", SetLastError = true)]
    private static partial int FChown(int fd, uint uid, uint gid);

    [LibraryImport("libc", EntryPoint = "rename", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int RenameC(string from, string to);

    [LibraryImport("libc", EntryPoint = "renameat2", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int RenameAt2(int fromDir, string from, int toDir, string to, uint flags);

    [LibraryImport("libc", EntryPoint = "geteuid")]
    private static partial uint GetEuid();

    [LibraryImport("libc", EntryPoint = "getpwuid_r")]
    private static partial int GetPwUidR(uint uid, IntPtr entry, IntPtr buffer, nuint size, out IntPtr result);

    [LibraryImport("libc", EntryPoint = "getgrgid_r")]
    private static partial int GetGrGidR(uint gid, IntPtr entry, IntPtr buffer, nuint size, out IntPtr result);

    [LibraryImport("libc", EntryPoint = "getpwnam_r", StringMarshalling = StringMarshalling.Utf8)]
    private static partial int GetPwNamR(string name, IntPtr entry, IntPtr buffer, nuint size, out IntPtr result);

    [LibraryImport("libc", EntryPoint = "getgrnam_r", StringMarshalling = StringMarshalling.Utf8)]
    private static partial int GetGrNamR(string name, IntPtr entry, IntPtr buffer, nuint size, out IntPtr result);
}

/// <summary>What of a file's extended attributes a tar without them leaves out.</summary>
/// <param name="Any">It has extended attributes (ACLs are kept as system.posix_acl_*) besides its SELinux label.</param>
/// <param name="AclGroup">With an access ACL: the permissions (rwx, 0-7) of its owning-group entry (group::).</param>
internal readonly record struct ExtendedAttributes(bool Any, int? AclGroup)
{
    public static readonly ExtendedAttributes None = new(false, null);
}

/// <summary>Extended attributes and POSIX ACLs, read to say what a backup does not keep.</summary>
internal static partial class Posix
{
    private const string AccessAcl = "system.posix_acl_access";

    // The SELinux label is set again by the policy (restorecon): on such hosts every file has one.
    private const string SelinuxLabel = "security.selinux";

    public static ExtendedAttributes ExtendedAttributesOf(SafeFileHandle handle, string path)
    {
        var added = false;
        handle.DangerousAddRef(ref added);
        try
        {
            return ExtendedAttributesOf((int)handle.DangerousGetHandle(), path);
        }
        finally
        {
            if (added)
            {
                handle.DangerousRelease();
            }
        }
    }

    public static ExtendedAttributes ExtendedAttributesOf(DirectoryHandle directory, string path) => ExtendedAttributesOf(directory.Fd, path);

    private static ExtendedAttributes ExtendedAttributesOf(int fd, string path)
    {
        var names = ReadAttribute(buffer => FListXattr(fd, buffer, (nuint)(buffer?.Length ?? 0)), path);
        if (names is null || names.Length == 0)
        {
            return ExtendedAttributes.None;
        }
        var list = System.Text.Encoding.UTF8.GetString(names).Split('\0', StringSplitOptions.RemoveEmptyEntries);
        if (list.All(n => n == SelinuxLabel))
        {
            return ExtendedAttributes.None;
        }
        if (!list.Contains(AccessAcl))
        {
            return new(true, null);
        }
        var acl = ReadAttribute(buffer => FGetXattr(fd, AccessAcl, buffer, (nuint)(buffer?.Length ?? 0)), path);
        return new(true, acl is null ? null : AclGroupObject(acl));
    }

    /// <summary>
    /// The owning group's permissions in an ACL as the kernel stores it: a 4-byte version, then
    /// 8-byte entries {u16 tag, u16 perm, u32 id}, little-endian; tag 0x04 is GROUP_OBJ.
    /// </summary>
    private static int? AclGroupObject(byte[] acl)
    {
        for (var at = 4; at + 8 <= acl.Length; at += 8)
        {
            if (System.Buffers.Binary.BinaryPrimitives.ReadUInt16LittleEndian(acl.AsSpan(at)) == 0x04)
            {
                return System.Buffers.Binary.BinaryPrimitives.ReadUInt16LittleEndian(acl.AsSpan(at + 2)) & 7;
            }
        }
        return null;
    }

    /// <summary>
    /// Reads a value of variable length: <paramref name="call"/> with null gives its size, with a
    /// buffer fills it (again if it grew meanwhile). Null when the file system keeps no extended
    /// attributes or the attribute is gone.
    /// </summary>
    private static byte[]? ReadAttribute(Func<byte[]?, nint> call, string path)
    {
        while (true)
        {
            var length = call(null);
            if (length == 0)
            {
                return [];
            }
            if (length > 0)
            {
                var buffer = new byte[length];
                length = call(buffer);
                if (length >= 0)
                {
                    return buffer[..(int)length];
                }
            }
            var error = Error(path);
            if (error.Errno != PosixException.ERANGE)
            {
                return error.Errno is PosixException.ENOTSUP or PosixException.ENODATA ? null : throw error;
            }
        }
    }

    [LibraryImport("libc", EntryPoint = "flistxattr", SetLastError = true)]
    private static partial nint FListXattr(int fd, byte[]? list, nuint size);

    [LibraryImport("libc", EntryPoint = "fgetxattr", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial nint FGetXattr(int fd, string name, byte[]? value, nuint size);
}

/// <summary>Calls the files restore's target check needs (kept apart: added later).</summary>
internal static partial class Posix
{
    public static uint EffectiveUid => GetEuid();

    /// <summary>realpath(3): the path with every symlink resolved.</summary>
    public static string RealPath(string path)
    {
        var resolved = RealPathC(path, IntPtr.Zero);
        if (resolved == IntPtr.Zero)
        {
            throw Error(path);
        }
        try
        {
            return Marshal.PtrToStringUTF8(resolved)!;
        }
        finally
        {
            Free(resolved);
        }
    }

    [LibraryImport("libc", EntryPoint = "realpath", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial IntPtr RealPathC(string path, IntPtr resolved);

    [LibraryImport("libc", EntryPoint = "free")]
    private static partial void Free(IntPtr pointer);
}
