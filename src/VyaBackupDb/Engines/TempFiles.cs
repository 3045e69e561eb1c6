using System.Globalization;
using System.Text.RegularExpressions;
using VyaBackupDb.Errors;

namespace VyaBackupDb.Engines;

/// <summary>
/// Names of this tool's private temp files in $TMPDIR (credential directories, spools), which
/// carry the creating process's id, and the removal of those left by a process that is gone
/// (SIGKILL, power loss): they may hold a password or a decrypted dump.
/// </summary>
public static partial class TempFiles
{
    /// <summary>Kinds of temp entries: a credential directory, a spooled zip.</summary>
    public const string Secret = "secret";
    public const string Spool = "spool";

    /// <summary>
    /// The failure to make or write a temp file (<see cref="IoErrors.IsWriteFault"/>), worded as the temp directory's (missing, not
    /// writable, full), so that it is not taken for a fault of the backup being read or written.
    /// </summary>
    public static HostFaultException Fault(Exception e)
    {
        var directory = Path.TrimEndingDirectorySeparator(Path.GetTempPath());
        var cause = File.Exists(directory) ? $"the temporary directory {directory} is a file, not a directory"
            : !Directory.Exists(directory) ? $"the temporary directory {directory} does not exist"
            : IoErrors.IsDiskFull(e) ? $"no space left in the temporary directory {directory}"
            : e is UnauthorizedAccessException ? $"the temporary directory {directory} is not writable"
            // EFBIG comes from .NET as an ArgumentOutOfRangeException.
            : e is ArgumentOutOfRangeException ? $"a temporary file in {directory} would be larger than the file size limit (ulimit -f) allows"
            : $"cannot write in the temporary directory {directory}: {IoErrors.Tidy(e.Message)}";
        return new HostFaultException($"{cause} (TMPDIR)", e);
    }

    /// <summary>What older versions created without a pid: removed once a day old.</summary>
    private static readonly TimeSpan LegacyAge = TimeSpan.FromDays(1);

    /// <summary>The name prefix for a new temp entry of <paramref name="kind"/>: vya-backupdb-KIND-PID-.</summary>
    public static string PrefixFor(string kind) =>
        string.Create(CultureInfo.InvariantCulture, $"vya-backupdb-{kind}-{Environment.ProcessId}-");

    // A spool may carry a suffix (TempSpool.CreateFile: .zip, .dump, .list).
    [GeneratedRegex(@"^vya-backupdb-(secret|spool)-(?<pid>\d{1,10})-[A-Za-z0-9]+(\.[a-z]{1,8})?$", RegexOptions.CultureInvariant)]
    private static partial Regex Current();

    // Before the pid was in the name: vya-backupdb-XXXXXX (mkdtemp's six characters; credentials)
    // and vya-backupdb-spool-<32 hex>.zip.
    [GeneratedRegex(@"^vya-backupdb-([A-Za-z0-9]{6}|spool-[0-9a-f]{32}\.zip)$", RegexOptions.CultureInvariant)]
    private static partial Regex Legacy();

    // The .NET runtime's own per-process debugger pipes and diagnostics socket, which a process killed (SIGKILL) leaves:
    // a dead process's are of no use to anyone (a live one with the same pid, reused, has another key in the name).
    [GeneratedRegex(@"^(clr-debug-pipe-(?<pid>\d{1,10})-\d+-(in|out)|dotnet-diagnostic-(?<pid>\d{1,10})-\d+-socket)$", RegexOptions.CultureInvariant)]
    private static partial Regex Runtime();

    /// <summary>What a credential directory holds (the engines' option file and PGPASSFILE): nothing else is ours to delete.</summary>
    private static readonly string[] SecretFileNames = ["client.cnf", "pgpass"];

    private static bool IsLegacyStale(FileSystemInfo entry, DateTimeOffset cutoff)
    {
        if (!Legacy().IsMatch(entry.Name) || entry.LastWriteTimeUtc >= cutoff.UtcDateTime)
        {
            return false;
        }
        try
        {
            return entry is not DirectoryInfo dir || dir.EnumerateFileSystemInfos().All(f => f is FileInfo && SecretFileNames.Contains(f.Name));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }

    /// <summary>
    /// Removes the temp entries of processes that no longer run (and those of older versions once
    /// a day old), and the .NET runtime's pipes and socket a killed process left, from <paramref name="tempDirectory"/> (default: $TMPDIR). Never follows a
    /// symlink; an entry it may not remove (another user's) is left. Returns how many it removed.
    /// </summary>
    public static int RemoveStale(string? tempDirectory = null, DateTimeOffset? now = null)
    {
        var directory = tempDirectory ?? Path.GetTempPath();
        var cutoff = (now ?? DateTimeOffset.UtcNow) - LegacyAge;
        var removed = 0;
        IEnumerable<FileSystemInfo> entries;
        try
        {
            var folder = new DirectoryInfo(directory);
            entries = [.. folder.EnumerateFileSystemInfos("vya-backupdb-*"), .. folder.EnumerateFileSystemInfos("clr-debug-pipe-*"),
                .. folder.EnumerateFileSystemInfos("dotnet-diagnostic-*")];
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return 0;
        }
        foreach (var entry in entries)
        {
            var current = Current().Match(entry.Name) is { Success: true } ours ? ours : Runtime().Match(entry.Name);
            var stale = current.Success
                ? int.TryParse(current.Groups["pid"].Value, NumberStyles.None, CultureInfo.InvariantCulture, out var pid) && !IsRunning(pid)
                : IsLegacyStale(entry, cutoff);
            if (!stale || entry.LinkTarget is not null)
            {
                continue;
            }
            try
            {
                if (entry is DirectoryInfo dir)
                {
                    dir.Delete(recursive: true);
                }
                else
                {
                    entry.Delete();
                }
                removed++;
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // Another user's, or gone meanwhile.
            }
        }
        return removed;
    }

    private static bool IsRunning(int pid)
    {
        if (pid == Environment.ProcessId)
        {
            return true;
        }
        if (OperatingSystem.IsLinux())
        {
            return Directory.Exists($"/proc/{pid}");
        }
        try
        {
            using var process = System.Diagnostics.Process.GetProcessById(pid);
            return !process.HasExited;
        }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException)
        {
            return false;
        }
    }
}
