using System.Diagnostics;
using System.Text;

namespace VyaBackupDb.Reporting;

/// <summary>A report written for others to read (the metrics file, the status page).</summary>
public static class ReportFile
{
    /// <summary>
    /// Writes the text atomically: a temp file in the same directory (which a textfile collector ignores: it reads
    /// *.prom only), flushed to disk, then renamed over the file; a reader never gets half of it, and a full disk
    /// keeps the previous one. A symbolic link there is followed, not replaced. 0644: a collector or a web server
    /// reads it as its own user; nothing in it is secret.
    /// </summary>
    public static async Task WriteAsync(string path, string text, CancellationToken cancellationToken)
    {
        var full = Resolve(path);
        var dir = Path.GetDirectoryName(full) ?? ".";
        var temp = Path.Combine(dir, $".{Path.GetFileName(full)}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp");
        try
        {
            await using (var stream = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 4096, FileOptions.Asynchronous))
            {
                await stream.WriteAsync(Encoding.UTF8.GetBytes(text), cancellationToken).ConfigureAwait(false);
                await stream.FlushAsync(cancellationToken).ConfigureAwait(false);
                stream.Flush(flushToDisk: true);
            }
            if (!OperatingSystem.IsWindows())
            {
                File.SetUnixFileMode(temp, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead);
            }
            File.Move(temp, full, overwrite: true);
        }
        catch
        {
            File.Delete(temp);
            throw;
        }
    }

    /// <summary>
    /// Takes the lock of the report at <paramref name="path"/>: an flock on <c>.NAME.lock</c> beside it (beside the file a
    /// link leads to), which the kernel frees if this process dies. Held from reading the report to its rename, it keeps
    /// two runs that update one file from each dropping what the other wrote since it read it. Another holder is waited
    /// for up to <paramref name="limit"/> (it reads the storage meanwhile); then an <see cref="IOException"/> says so.
    /// The lock file stays: deleting it while held would let two runs lock two different files.
    /// </summary>
    public static async Task<IDisposable> LockAsync(string path, TimeSpan limit, CancellationToken cancellationToken)
    {
        var full = Resolve(path);
        var lockPath = Path.Combine(Path.GetDirectoryName(full) ?? ".", $".{Path.GetFileName(full)}.lock");
        var waited = Stopwatch.StartNew();
        while (true)
        {
            try
            {
                // 0600, as a backup's lock: any user who could open it could flock it and hold every run's update back.
                return Operations.BackupLock.OpenLockFile(lockPath);
            }
            catch (IOException e) when (Operations.BackupLock.IsLockedByOther(e) && waited.Elapsed < limit)
            {
                await Task.Delay(50, cancellationToken).ConfigureAwait(false);
            }
            catch (IOException e) when (Operations.BackupLock.IsLockedByOther(e))
            {
                throw new IOException($"another run has held its lock {lockPath} for {limit.TotalMinutes:0} min", e);
            }
        }
    }

    /// <summary>The file the report goes to: a symbolic link's target.</summary>
    private static string Resolve(string path) =>
        new FileInfo(path).LinkTarget is not null ? File.ResolveLinkTarget(path, returnFinalTarget: true)!.FullName : Path.GetFullPath(path);
}
