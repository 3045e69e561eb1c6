using System.Globalization;
using System.Text;
using VyaBackupDb.Catalog;
using VyaBackupDb.Errors;
using VyaBackupDb.Storage.Local;

namespace VyaBackupDb.Operations;

/// <summary>
/// One backup per instance and database at a time. The lock is a file in backup_dir/.locks held
/// open with FileShare.None, which .NET implements with flock(): the kernel releases it when the
/// holder dies, so a lock left by a dead process is simply taken over (with a warning naming it).
/// A ".holder" file beside it names the holder (pid, host, run id, start time) for the "locked" message;
/// it is separate because the locked file cannot be read while another process holds it. Found
/// beside a free lock, it names a run that died holding the lock, and the runs it knew had ended
/// (<see cref="EndedRuns"/>).
/// </summary>
public sealed class BackupLock : IDisposable
{
    private readonly FileStream _stream;
    private readonly string _path;

    private BackupLock(FileStream stream, string path, IReadOnlySet<string> endedRuns)
    {
        _stream = stream;
        _path = path;
        EndedRuns = endedRuns;
    }

    /// <summary>
    /// The run ids of this host's runs that held this lock and ended without releasing it (from the holder
    /// file): the dead run, and those it knew of (it may have ended before taking over their leases).
    /// </summary>
    public IReadOnlySet<string> EndedRuns { get; }

    // What .NET reports when the file is locked by another open file: errno EWOULDBLOCK on
    // Linux (flock), ERROR_SHARING_VIOLATION on Windows.
    internal static bool IsLockedByOther(IOException e) => e.HResult is 11 or unchecked((int)0x80070020);

    private static string HolderPath(string lockPath) => lockPath + ".holder";

    public static string PathFor(string backupDir, string instanceName, string database) =>
        Path.Combine(backupDir, ".locks", BackupName.Encode(instanceName), BackupName.Encode(database) + ".lock");

    /// <param name="run">This run's id, written in the holder file: a lease in a storage names the same id.</param>
    public static BackupLock Acquire(string backupDir, string instanceName, string database, string run, TimeProvider time, Action<string> warn)
    {
        var path = PathFor(backupDir, instanceName, database);
        FileStream stream;
        try
        {
            LocalStorage.CreatePrivateFolder(Path.GetDirectoryName(path)!);
            stream = OpenLockFile(path);
        }
        catch (IOException e) when (IsLockedByOther(e))
        {
            var holder = ReadHolder(path);
            throw new LockedException(
                $"instance {instanceName} database '{database}' is being backed up by another run ({holder}); lock {path}");
        }
        // Its own line: the caller's would name the backup file (a user who may not write in backup_dir).
        catch (Exception e) when (IoErrors.IsWriteFault(e) && !IoErrors.IsTooManyOpenFiles(e))
        {
            throw new OperationFailedException($"cannot write the lock file {path}: {WriteFaultReason(e, path)}", e);
        }
        var holderPath = HolderPath(path);
        var ended = new HashSet<string>(StringComparer.Ordinal);
        if (File.Exists(holderPath))
        {
            var dead = Fields(File.ReadAllText(holderPath));
            // Only a holder of this host is known dead by the free flock: a backup_dir shared over NFS with
            // host-local flocks (local_lock=flock) may show another host's live holder.
            if (dead.GetValueOrDefault("host") == Environment.MachineName && dead.GetValueOrDefault("run") is { Length: > 0 } deadRun)
            {
                ended.Add(deadRun);
                ended.UnionWith(dead.GetValueOrDefault("ended", "").Split(',', StringSplitOptions.RemoveEmptyEntries));
            }
            warn($"took over the lock of instance {instanceName} database '{database}' left by a run that ended without releasing it "
                + $"({Describe(dead)})");
        }
        var text = $"pid={Environment.ProcessId}\nhost={Environment.MachineName}\nrun={run}\nstarted={time.GetUtcNow().UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture)}\n"
            + (ended.Count > 0 ? $"ended={string.Join(',', ended)}\n" : "");
        try
        {
            using var holder = new FileStream(holderPath, PrivateFile(FileMode.Create, FileShare.Read));
            holder.Write(Encoding.UTF8.GetBytes(text));
        }
        catch (Exception e) when (IoErrors.IsWriteFault(e))
        {
            // Half written, it would name nobody ("pid ?") in the next run's warning.
            TryDelete(holderPath);
            stream.Dispose();
            if (IoErrors.IsTooManyOpenFiles(e))
            {
                throw;
            }
            throw new OperationFailedException($"cannot write the lock file {holderPath}: {WriteFaultReason(e, holderPath)}", e);
        }
        return new BackupLock(stream, path, ended);
    }

    public void Dispose()
    {
        // The lock file itself stays: deleting it while held would let two runs lock two different files.
        File.Delete(HolderPath(_path));
        _stream.Dispose();
    }

    /// <summary>Frees the lock but leaves the holder file, which then names this run, and those it knew had ended, as ended (<see cref="EndedRuns"/>).</summary>
    public void ReleaseKeepingHolder() => _stream.Dispose();

    /// <summary>
    /// 0600 whatever the umask: any user who can open a lock file can flock it and fail our backups ("locked").
    /// </summary>
    /// <summary>
    /// Opens, creating it if need be, and flocks a lock file (here, and the metrics file's): 0600, an older one made so.
    /// Throws what <see cref="IsLockedByOther"/> recognizes when another process holds it.
    /// </summary>
    internal static FileStream OpenLockFile(string path)
    {
        var stream = new FileStream(path, PrivateFile(FileMode.OpenOrCreate, FileShare.None));
        TightenMode(stream);
        return stream;
    }

    private static FileStreamOptions PrivateFile(FileMode mode, FileShare share)
    {
        var options = new FileStreamOptions { Mode = mode, Access = FileAccess.ReadWrite, Share = share };
        if (!OperatingSystem.IsWindows())
        {
            options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        }
        return options;
    }

    /// <summary>A lock file an earlier version created at the umask's 0644 is made 0600 (if it is ours: another user's stays).</summary>
    private static void TightenMode(FileStream stream)
    {
        const UnixFileMode Private = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        if (OperatingSystem.IsWindows() || File.GetUnixFileMode(stream.SafeFileHandle) == Private)
        {
            return;
        }
        try
        {
            File.SetUnixFileMode(stream.SafeFileHandle, Private);
        }
        catch (UnauthorizedAccessException)
        {
        }
    }

    /// <summary>.NET says "Access to the path is denied" for a directory too.</summary>
    private static string WriteFaultReason(Exception e, string path) =>
        Directory.Exists(path) ? "it is a directory" : IoErrors.WriteFaultReason(e);

    private static void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
        }
    }

    private static string ReadHolder(string path)
    {
        try
        {
            return Describe(Fields(File.ReadAllText(HolderPath(path))));
        }
        catch (IOException)
        {
            return "holder unknown";
        }
    }

    private static Dictionary<string, string> Fields(string holderText) =>
        holderText.Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(line => line.Split('=', 2))
            .Where(parts => parts.Length == 2)
            .GroupBy(parts => parts[0], StringComparer.Ordinal)
            .ToDictionary(g => g.Key, g => g.First()[1], StringComparer.Ordinal);

    private static string Describe(Dictionary<string, string> fields) =>
        $"pid {fields.GetValueOrDefault("pid", "?")} on {fields.GetValueOrDefault("host", "?")}"
        + (fields.TryGetValue("run", out var run) ? $", run {run}," : "") + $" since {fields.GetValueOrDefault("started", "?")}";
}
