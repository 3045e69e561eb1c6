using VyaBackupDb.Engines;
using VyaBackupDb.Errors;

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
                await spool.DisposeQuietlyAsync().ConfigureAwait(false);
                throw;
            }
        }
    }

    /// <summary>A new private temp file (0600), deleted when closed; <paramref name="suffix"/> ends its name.</summary>
    public static SpoolFile CreateFile(string suffix = "")
    {
        // The pid in the name lets a later run remove it if this process is killed (TempFiles.RemoveStale).
        var path = Path.Combine(Path.GetTempPath(), $"{TempFiles.PrefixFor(TempFiles.Spool)}{Guid.NewGuid():N}{suffix}");
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
        try
        {
            return new SpoolFile(new FileStream(path, options));
        }
        catch (Exception e) when (IoErrors.IsWriteFault(e))
        {
            throw TempFiles.Fault(e);
        }
    }
}

/// <summary>
/// A temp file of <see cref="TempSpool"/>: a seekable file whose write failures (TMPDIR full, the
/// file size limit) are said as the temp directory's (<see cref="TempFiles.Fault"/>), not as the
/// backup's being read or written.
/// </summary>
public sealed class SpoolFile(FileStream file) : Stream
{
    public string Name => file.Name;

    public override bool CanRead => file.CanRead;
    public override bool CanSeek => file.CanSeek;
    public override bool CanWrite => file.CanWrite;
    public override long Length => file.Length;

    public override long Position
    {
        get => file.Position;
        set => Said(() => file.Position = value);
    }

    public override int Read(byte[] buffer, int offset, int count) => file.Read(buffer, offset, count);

    public override int Read(Span<byte> buffer) => file.Read(buffer);

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        file.ReadAsync(buffer, offset, count, cancellationToken);

    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
        file.ReadAsync(buffer, cancellationToken);

    public override long Seek(long offset, SeekOrigin origin) => Said(() => file.Seek(offset, origin));

    public override void SetLength(long value) => Said(() => file.SetLength(value));

    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        try
        {
            file.Write(buffer);
        }
        catch (Exception e) when (IoErrors.IsWriteFault(e))
        {
            throw TempFiles.Fault(e);
        }
    }

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        try
        {
            await file.WriteAsync(buffer, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (IoErrors.IsWriteFault(e))
        {
            throw TempFiles.Fault(e);
        }
    }

    // Seeking and reading flush what is buffered: those write too.
    public override void Flush() => Said(file.Flush);

    public override async Task FlushAsync(CancellationToken cancellationToken)
    {
        try
        {
            await file.FlushAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (IoErrors.IsWriteFault(e))
        {
            throw TempFiles.Fault(e);
        }
    }

    /// <summary>Closes (and so deletes) the file; a last flush that fails is of no interest on a path that already failed.</summary>
    public async ValueTask DisposeQuietlyAsync()
    {
        try
        {
            await file.DisposeAsync().ConfigureAwait(false);
        }
        catch (Exception e) when (IoErrors.IsWriteFault(e))
        {
        }
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            Said(file.Dispose);
        }
        base.Dispose(disposing);
    }

    public override async ValueTask DisposeAsync()
    {
        try
        {
            await file.DisposeAsync().ConfigureAwait(false);
        }
        catch (Exception e) when (IoErrors.IsWriteFault(e))
        {
            throw TempFiles.Fault(e);
        }
        GC.SuppressFinalize(this);
    }

    private static void Said(Action action) => Said<int>(() =>
    {
        action();
        return 0;
    });

    private static T Said<T>(Func<T> action)
    {
        try
        {
            return action();
        }
        catch (Exception e) when (IoErrors.IsWriteFault(e))
        {
            throw TempFiles.Fault(e);
        }
    }
}
