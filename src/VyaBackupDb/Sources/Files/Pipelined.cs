using System.IO.Pipelines;
using System.Runtime.ExceptionServices;

namespace VyaBackupDb.Sources.Files;

/// <summary>
/// A producer and a consumer of one byte stream running at the same time with a bounded buffer
/// between them, as <c>tar -c | zstd</c> runs as two processes: reading files overlaps
/// compressing them (backup), decompressing overlaps writing files (restore). Memory stays at
/// the buffer's bound. A failure on either side stops the other; the error reported is the one
/// that caused it, not the cancellation it led to.
/// </summary>
internal static class Pipelined
{
    private static readonly PipeOptions Options = new(
        pauseWriterThreshold: 16 << 20, resumeWriterThreshold: 8 << 20, minimumSegmentSize: 256 << 10, useSynchronizationContext: false);

    public static async Task<(TProduced Produced, TConsumed Consumed)> RunAsync<TProduced, TConsumed>(
        Func<Stream, CancellationToken, Task<TProduced>> produce,
        Func<Stream, CancellationToken, Task<TConsumed>> consume,
        CancellationToken cancellationToken)
    {
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var pipe = new Pipe(Options);

        async Task<TProduced> Produce()
        {
            var stream = pipe.Writer.AsStream(leaveOpen: true);
            try
            {
                var result = await produce(stream, linked.Token).ConfigureAwait(false);
                await stream.FlushAsync(linked.Token).ConfigureAwait(false);
                await pipe.Writer.CompleteAsync().ConfigureAwait(false);
                return result;
            }
            catch (Exception e)
            {
                // The reader sees the failure, never a clean (short) end of the stream.
                await pipe.Writer.CompleteAsync(e).ConfigureAwait(false);
                await linked.CancelAsync().ConfigureAwait(false);
                throw;
            }
        }

        async Task<TConsumed> Consume()
        {
            var stream = pipe.Reader.AsStream(leaveOpen: true);
            try
            {
                var result = await consume(stream, linked.Token).ConfigureAwait(false);
                await pipe.Reader.CompleteAsync().ConfigureAwait(false);
                return result;
            }
            catch (Exception e)
            {
                await pipe.Reader.CompleteAsync(e).ConfigureAwait(false);
                await linked.CancelAsync().ConfigureAwait(false);
                throw;
            }
        }

        var producer = Produce();
        var consumer = Consume();
        try
        {
            await Task.WhenAll(producer, consumer).ConfigureAwait(false);
        }
        catch (Exception)
        {
            var cause = new Task[] { producer, consumer }
                .Where(t => t.IsFaulted)
                .Select(t => t.Exception!.InnerException!)
                .FirstOrDefault(e => e is not OperationCanceledException);
            if (cause is not null)
            {
                ExceptionDispatchInfo.Throw(cause);
            }
            cancellationToken.ThrowIfCancellationRequested();
            throw;
        }
        return (producer.Result, consumer.Result);
    }

    /// <summary>
    /// Runs synchronous work on a thread of its own: it blocks on the pipe, and a backup's walk
    /// recurses once per directory level (a 20,000-level tree overflowed a default stack and
    /// killed the process); the stack is reserved, not committed, so it costs what is used.
    /// </summary>
    public static Task<T> OnOwnThread<T>(Func<T> work, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        var done = new TaskCompletionSource<T>(TaskCreationOptions.RunContinuationsAsynchronously);
        var thread = new Thread(() =>
        {
            try
            {
                done.SetResult(work());
            }
            catch (Exception e)
            {
                done.SetException(e);
            }
        }, maxStackSize: 512 << 20)
        {
            IsBackground = true,
            Name = "vya-files",
        };
        thread.Start();
        return done.Task;
    }
}
