using System.ComponentModel;
using System.Runtime.InteropServices;
using System.Text.RegularExpressions;

namespace VyaBackupDb.Errors;

/// <summary>How I/O errors of this host are told apart and worded.</summary>
public static partial class IoErrors
{
    /// <summary>ENOSPC on Linux; ERROR_DISK_FULL / ERROR_HANDLE_DISK_FULL on Windows (an HRESULT's low word).</summary>
    public static bool IsDiskFull(Exception e) =>
        e is IOException io && (OperatingSystem.IsWindows() ? (io.HResult & 0xFFFF) is 112 or 39 : io.HResult == 28);

    /// <summary>A failure to create or write a file: EFBIG (the file size limit) comes from .NET as an ArgumentOutOfRangeException.</summary>
    public static bool IsWriteFault(Exception e) => e is IOException or UnauthorizedAccessException or ArgumentOutOfRangeException;

    /// <summary>What the path (or what a link there names) is when it is neither a regular file nor a directory ("a FIFO"), else null.</summary>
    public static string? SpecialFileKind(string path) => Sources.Files.Posix.TryStat(path)?.Type switch
    {
        0x1000 => "a FIFO",
        0x2000 or 0x6000 => "a device",
        0xC000 => "a socket",
        _ => null,
    };

    /// <summary>
    /// Why <paramref name="path"/> could not be opened, in words: .NET says "Access to the path is denied" for a
    /// directory (EISDIR) too.
    /// </summary>
    public static string OpenFailureReason(Exception e, string path) => Directory.Exists(path) ? "it is a directory" : e.Message;

    /// <summary>EFBIG, which .NET reports as an <see cref="ArgumentOutOfRangeException"/> from a write.</summary>
    public const string FileTooLarge = "the file would be larger than the file system or the file size limit (ulimit -f) allows";

    /// <summary>Why a write (<see cref="IsWriteFault"/>) failed, in words.</summary>
    public static string WriteFaultReason(Exception e) => e switch
    {
        ArgumentOutOfRangeException => "the file size limit (ulimit -f) is reached",
        // .NET's text names the path again, which the caller's line names already.
        UnauthorizedAccessException => "permission denied",
        _ => e.Message,
    };

    /// <summary>
    /// EMFILE (this process is at its open files limit) or ENFILE (the system's), here or under a wrapper:
    /// .NET gives the errno as the HResult of an IOException, the NativeErrorCode of a Win32Exception (a child
    /// not started). A runtime assembly it cannot open then is a FileNotFoundException ("cannot find the file").
    /// </summary>
    public static bool IsTooManyOpenFiles(Exception? e)
    {
        for (; e is not null && !OperatingSystem.IsWindows(); e = e.InnerException)
        {
            if (e is IOException { HResult: 24 or 23 } or Win32Exception { NativeErrorCode: 24 or 23 } || IsAssemblyNotLoaded(e))
            {
                return true;
            }
        }
        return false;
    }

    // Its FileName is an assembly's name ("System.IO.Pipes, Version=..."), not a path: the runtime's own files are
    // where they were at startup, and failing to open one is what a low limit does.
    private static bool IsAssemblyNotLoaded(Exception e) =>
        ((e as FileNotFoundException)?.FileName ?? (e as FileLoadException)?.FileName)?.Contains(", PublicKeyToken=", StringComparison.Ordinal) == true;

    /// <summary>The one line for <see cref="IsTooManyOpenFiles"/>.</summary>
    /// <remarks>
    /// Under a virtual memory limit (ulimit -v) the runtime fails to map an assembly as it fails to open one: the line
    /// then names both limits.
    /// </remarks>
    public static string TooManyOpenFiles() =>
        _memoryLimit is not (null or ulong.MaxValue) ? OutOfMemoryOrFiles()
        : _openFilesLimit is { } limit ? $"too many open files (limit {limit})" : "too many open files";

    /// <summary>An error's text as shown: <see cref="TooManyOpenFiles"/> for what it says, <see cref="NotUtf8"/>, else its message.</summary>
    public static string Describe(Exception e) =>
        IsTooManyOpenFiles(e) ? TooManyOpenFiles() : e is System.Text.DecoderFallbackException text ? NotUtf8(text) : e.Message;

    /// <summary>
    /// A server's text the driver cannot read as UTF-8: PostgreSQL keeps names, comments and settings of its shared
    /// catalog in the bytes of the database they were written from, and a LATIN1 or SQL_ASCII database writes others.
    /// </summary>
    public static string NotUtf8(System.Text.DecoderFallbackException e) =>
        "the server sent text that is not valid UTF-8"
        + (e.BytesUnknown is { Length: > 0 } bytes ? $" (bytes {Convert.ToHexString(bytes)})" : "")
        + ": a name, comment or setting written from a database in another encoding (LATIN1, SQL_ASCII); rename or rewrite it in UTF-8";

    /// <summary>
    /// Out of open files or memory, however the runtime says it: EMFILE (<see cref="IsTooManyOpenFiles"/>, or the socket
    /// engine's "EMFILE"), an <see cref="OutOfMemoryException"/> (also what the socket engine throws when it cannot set
    /// up under a low open files limit), a native library that cannot be loaded; wrapped in a type initializer's or a
    /// task's exception.
    /// </summary>
    public static bool IsOutOfResources(Exception? e)
    {
        if (IsTooManyOpenFiles(e))
        {
            return true;
        }
        for (; e is not null; e = e.InnerException)
        {
            if (e is OutOfMemoryException or DllNotFoundException || e.Message.Contains("EMFILE", StringComparison.Ordinal))
            {
                return true;
            }
        }
        return false;
    }

    /// <summary>The one line for <see cref="IsOutOfResources"/>: which it was when that is known, else both limits.</summary>
    public static string OutOfResources(Exception e) => IsTooManyOpenFiles(e) ? TooManyOpenFiles() : OutOfMemoryOrFiles();

    private static string OutOfMemoryOrFiles()
    {
        static string Shown(ulong? limit) => limit is null ? "?" : limit == ulong.MaxValue ? "unlimited" : limit.Value.ToString(System.Globalization.CultureInfo.InvariantCulture);
        var memory = _memoryLimit is null or ulong.MaxValue ? _memoryLimit : _memoryLimit / 1024; // ulimit -v counts KiB
        return $"out of memory or open files (ulimit -n {Shown(_openFilesLimit)}, ulimit -v {Shown(memory)}): raise the limits";
    }

    /// <summary>The open files limit read at startup (<see cref="ReadLimits"/>); null when not read.</summary>
    public static ulong? OpenFilesLimit => _openFilesLimit;

    private static ulong? _openFilesLimit;
    private static ulong? _memoryLimit;

    /// <summary>
    /// Notes the open files limit (the soft RLIMIT_NOFILE: the .NET runtime raises it to the hard limit at startup
    /// itself) and the virtual memory limit (RLIMIT_AS) for <see cref="TooManyOpenFiles"/> and <see cref="OutOfResources"/>.
    /// Called at startup: once the files are all taken, even loading libc to ask would fail.
    /// </summary>
    public static void ReadLimits()
    {
        if (OperatingSystem.IsLinux() || OperatingSystem.IsMacOS())
        {
            var (files, memory) = OperatingSystem.IsLinux() ? (7, 9) : (8, 5); // RLIMIT_NOFILE, RLIMIT_AS
            _openFilesLimit = GetRLimit(files, out var limit) == 0 ? limit.Current : null;
            _memoryLimit = GetRLimit(memory, out limit) == 0 ? limit.Current : null;
        }
        // Loads what telling them apart needs (Win32Exception's assembly) now: later, loading it could be what fails.
        _ = IsOutOfResources(new IOException());
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct RLimit
    {
        public ulong Current;
        public ulong Maximum;
    }

    [LibraryImport("libc", EntryPoint = "getrlimit")]
    private static partial int GetRLimit(int resource, out RLimit limit);

    // .NET appends the path to an errno's text as "TEXT : 'PATH'".
    [GeneratedRegex(@" : '(?<path>[^'\n]*)'", RegexOptions.CultureInvariant)]
    private static partial Regex DotNetPathSuffix();

    // .NET's own text for ENOENT, which it gives on a read and on a create refused (a folder that takes no new files, /proc).
    [GeneratedRegex(@"Could not find (?:file|a part of the path) '(?<path>[^'\n]*)'\.?", RegexOptions.CultureInvariant)]
    private static partial Regex DotNetNotFound();

    /// <summary>
    /// A message as it is printed: .NET's "No space left on device : '/x'" reads
    /// "No space left on device (/x)", its "Could not find file '/x'." the system's "No such file or
    /// directory (/x)". The one place this is done: where lines go out (Output).
    /// </summary>
    public static string Tidy(string message) =>
        DotNetNotFound().Replace(DotNetPathSuffix().Replace(message, " (${path})"), "No such file or directory (${path})");
}
