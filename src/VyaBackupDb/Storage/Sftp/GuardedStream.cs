using Renci.SshNet.Common;

namespace VyaBackupDb.Storage.Sftp;

/// <summary>
/// An SFTP file stream whose SSH failures (a dropped connection, a server error) surface as
/// <see cref="StorageException"/>, an <see cref="IOException"/>, like any other I/O failure.
/// Seeking is passed through (a zip is read in place). A connection cut, or a request left unanswered,
/// calls <paramref name="abandonConnection"/>.
/// </summary>
internal sealed class GuardedStream(Stream inner, string location, TimeSpan answerLimit, Action abandonConnection) : Stream
{
    public override bool CanRead => inner.CanRead;
    public override bool CanSeek => inner.CanSeek;
    public override bool CanWrite => inner.CanWrite;
    public override long Length => Guard(() => inner.Length);

    public override long Position
    {
        get => inner.Position;
        set => Guard(() => inner.Position = value);
    }

    public override void Flush() => Guard(() =>
    {
        inner.Flush();
        return 0;
    });

    public override async Task FlushAsync(CancellationToken cancellationToken)
    {
        try
        {
            await inner.FlushAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (SshException e)
        {
            throw Wrap(e);
        }
    }

    public override int Read(byte[] buffer, int offset, int count) => Guard(() => inner.Read(buffer, offset, count));

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        try
        {
            return await inner.ReadAsync(buffer, cancellationToken).ConfigureAwait(false);
        }
        catch (SshException e)
        {
            throw Wrap(e);
        }
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override void Write(byte[] buffer, int offset, int count) => Guard(() =>
    {
        inner.Write(buffer, offset, count);
        return 0;
    });

    public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        try
        {
            await inner.WriteAsync(buffer, cancellationToken).ConfigureAwait(false);
        }
        catch (SshException e)
        {
            throw Wrap(e);
        }
    }

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override long Seek(long offset, SeekOrigin origin) => Guard(() => inner.Seek(offset, origin));

    public override void SetLength(long value) => Guard(() =>
    {
        inner.SetLength(value);
        return 0;
    });

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            Guard(() =>
            {
                inner.Dispose();
                return 0;
            });
        }
        base.Dispose(disposing);
    }

    public override async ValueTask DisposeAsync()
    {
        try
        {
            await inner.DisposeAsync().ConfigureAwait(false);
        }
        catch (SshException e)
        {
            throw Wrap(e);
        }
        await base.DisposeAsync().ConfigureAwait(false);
    }

    private T Guard<T>(Func<T> action)
    {
        try
        {
            return action();
        }
        catch (SshException e)
        {
            throw Wrap(e);
        }
    }

    private StorageException Wrap(SshException e)
    {
        if (SftpStorage.IsConnectionLost(e))
        {
            abandonConnection();
        }
        return SftpStorage.Failure($"sftp: {location}", e, answerLimit);
    }
}
