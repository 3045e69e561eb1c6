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
        var full = new FileInfo(path).LinkTarget is not null ? File.ResolveLinkTarget(path, returnFinalTarget: true)!.FullName : Path.GetFullPath(path);
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
}
