namespace VyaBackupDb.Pipeline;

/// <summary>
/// A zip needs a seekable stream (its directory is at the end): a stream that cannot seek (S3,
/// or decrypted age) is first copied to a private temp file (0600), deleted when closed.
/// </summary>
public static class TempSpool
{
    /// <summary>Copies <paramref name="source"/> (which it disposes) into a temp file and returns it at position 0.</summary>
    public static async Task<Stream> CopyAsync(Stream source, CancellationToken cancellationToken)
    {
        await using (source.ConfigureAwait(false))
        {
            var spool = CreateFile(".zip");
            try
            {
                await source.CopyToAsync(spool, 1 << 20, cancellationToken).ConfigureAwait(false);
                spool.Position = 0;
                return spool;
            }
            catch
            {
                // Deleted now, not at a finalizer that a CLI exiting on this error never runs.
                await spool.DisposeAsync().ConfigureAwait(false);
                throw;
            }
        }
    }

    /// <summary>A new private temp file (0600), deleted when closed; <paramref name="suffix"/> ends its name.</summary>
    public static FileStream CreateFile(string suffix = "")
    {
        // The pid in the name lets a later run remove it if this process is killed (TempFiles.RemoveStale).
        var path = Path.Combine(Path.GetTempPath(), $"{Engines.TempFiles.PrefixFor(Engines.TempFiles.Spool)}{Guid.NewGuid():N}{suffix}");
        var options = new FileStreamOptions
        {
            Mode = FileMode.CreateNew,
            Access = FileAccess.ReadWrite,
            Options = FileOptions.DeleteOnClose,
            BufferSize = 1 << 17,
        };
        if (!OperatingSystem.IsWindows())
        {
            options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        }
        return new FileStream(path, options);
    }
}
