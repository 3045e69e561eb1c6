namespace VyaBackupDb.Storage;

/// <summary>
/// An S3 object's body whose every read must bring data within a limit (connect_timeout_seconds):
/// a server that stops sending mid-file with the connection left open (a wedged server or load
/// balancer) would otherwise hold a restore, verify or copy for as long as the connection lives.
/// Past the limit the connection is aborted (the abort action given), which ends the read, and
/// the read fails as the destination's fault. Only time spent waiting for the server counts: a
/// reader that is itself slow (a restore waiting on its database) is never cut off.
/// </summary>
internal sealed class SilenceLimitStream : Pipeline.WrapperStream
{
    private readonly TimeSpan _limit;
    private readonly string _failure;
    private readonly Timer _timer;
    private int _silent;

    /// <param name="failure">What failed, for the message: "S3 read s3://bucket/key failed".</param>
    public SilenceLimitStream(Stream inner, TimeSpan limit, string failure, Action abort) : base(inner)
    {
        _limit = limit;
        _failure = failure;
        _timer = new Timer(_ =>
        {
            Volatile.Write(ref _silent, 1);
            abort();
        }, null, Timeout.Infinite, Timeout.Infinite);
    }

    public override int Read(Span<byte> buffer)
    {
        Arm();
        try
        {
            return Inner.Read(buffer);
        }
        catch (Exception e) when (Volatile.Read(ref _silent) == 1)
        {
            throw Silent(e);
        }
        finally
        {
            _timer.Change(Timeout.Infinite, Timeout.Infinite);
        }
    }

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        Arm();
        try
        {
            return await Inner.ReadAsync(buffer, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (Volatile.Read(ref _silent) == 1)
        {
            throw Silent(e);
        }
        finally
        {
            _timer.Change(Timeout.Infinite, Timeout.Infinite);
        }
    }

    /// <summary>Starts the limit for one read (a stream already aborted fails at once).</summary>
    private void Arm()
    {
        if (Volatile.Read(ref _silent) == 1)
        {
            throw Silent(null);
        }
        _timer.Change(_limit, Timeout.InfiniteTimeSpan);
    }

    private StorageException Silent(Exception? cause) =>
        new($"{_failure}: no data within {_limit.TotalSeconds:0} s (connect_timeout_seconds)", cause, wholeDestination: true);

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _timer.Dispose();
        }
        base.Dispose(disposing);
    }

    public override async ValueTask DisposeAsync()
    {
        await _timer.DisposeAsync().ConfigureAwait(false);
        await base.DisposeAsync().ConfigureAwait(false);
    }
}
