using System.Text;
using VyaBackupDb.Engines;

namespace VyaBackupDb.Tests.Unit;

/// <summary>A read-only stream that hands out its data in reads of the given sizes (cycled).</summary>
internal sealed class ChunkedStream(byte[] data, IReadOnlyList<int> sizes) : Stream
{
    private int position;
    private int next;

    public override bool CanRead => true;

    public override bool CanSeek => false;

    public override bool CanWrite => false;

    public override long Length => data.Length;

    public override long Position
    {
        get => position;
        set => throw new NotSupportedException();
    }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        var size = sizes[next];
        next = (next + 1) % sizes.Count;
        var n = Math.Min(Math.Min(size, buffer.Length), data.Length - position);
        data.AsSpan(position, n).CopyTo(buffer);
        position += n;
        return n;
    }

    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
        ValueTask.FromResult(Read(buffer.Span));

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        Task.FromResult(Read(buffer.AsSpan(offset, count)));

    public override void Flush()
    {
    }

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
}

/// <summary>
/// A read-only stream of pieces, each repeated a number of times, made as it is read: a dump of hundreds
/// of MiB (a statement just over a size cap) without holding it in memory.
/// </summary>
internal sealed class RepeatedPiecesStream(params (string Piece, long Times)[] pieces) : VyaBackupDb.Pipeline.ReadOnlyStream
{
    private readonly (byte[] Piece, long Times)[] parts = [.. pieces.Select(p => (Encoding.UTF8.GetBytes(p.Piece), p.Times))];
    private int part;
    private long repeat;
    private int offset;

    /// <summary>All bytes the stream gives.</summary>
    public long Total => parts.Sum(p => p.Piece.LongLength * p.Times);

    public override int Read(Span<byte> buffer)
    {
        var n = 0;
        while (n < buffer.Length && part < parts.Length)
        {
            var (piece, times) = parts[part];
            if (repeat >= times || piece.Length == 0)
            {
                part++;
                repeat = 0;
                continue;
            }

            if (piece.Length == 1)
            {
                var run = (int)Math.Min(times - repeat, buffer.Length - n);
                buffer.Slice(n, run).Fill(piece[0]);
                n += run;
                repeat += run;
                continue;
            }

            var take = Math.Min(piece.Length - offset, buffer.Length - n);
            piece.AsSpan(offset, take).CopyTo(buffer[n..]);
            n += take;
            offset += take;
            if (offset == piece.Length)
            {
                offset = 0;
                repeat++;
            }
        }

        return n;
    }

    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
        ValueTask.FromResult(Read(buffer.Span));
}

/// <summary>A write-only stream that counts what it is given and keeps only its last bytes.</summary>
internal sealed class TailStream : VyaBackupDb.Pipeline.WriteOnlyStream
{
    private const int Keep = 256;
    private readonly List<byte> tail = [];

    /// <summary>Bytes written.</summary>
    public long Written { get; private set; }

    /// <summary>The last bytes written (at most 256), as Latin-1 text.</summary>
    public string Tail => Encoding.Latin1.GetString(tail.ToArray());

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        Written += buffer.Length;
        var last = buffer[Math.Max(0, buffer.Length - Keep)..];
        tail.AddRange(last);
        if (tail.Count > Keep)
        {
            tail.RemoveRange(0, tail.Count - Keep);
        }
    }

    public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        Write(buffer.Span);
        return ValueTask.CompletedTask;
    }

    public override void Flush()
    {
    }
}

/// <summary>One piece of a test dump: what goes in and what must come out for it.</summary>
internal sealed record DumpPart(byte[] Input, byte[] Output)
{
    /// <summary>Passes through unchanged.</summary>
    public static DumpPart Keep(string text) => new(Utf8(text), Utf8(text));

    public static DumpPart Keep(byte[] bytes) => new(bytes, bytes);

    /// <summary>Dropped entirely.</summary>
    public static DumpPart Drop(string text) => new(Utf8(text), []);

    /// <summary>Comes out as <paramref name="output"/>.</summary>
    public static DumpPart Rewrite(string input, string output) => new(Utf8(input), Utf8(output));

    public static byte[] Utf8(string text) => Encoding.UTF8.GetBytes(text);

    public static (byte[] Input, byte[] Expected) Join(IEnumerable<DumpPart> parts)
    {
        var input = new List<byte>();
        var output = new List<byte>();
        foreach (var part in parts)
        {
            input.AddRange(part.Input);
            output.AddRange(part.Output);
        }

        return (input.ToArray(), output.ToArray());
    }
}

internal static class DumpFilterRunner
{
    /// <summary>Read patterns that put buffer boundaries everywhere.</summary>
    public static IEnumerable<int[]> ReadPatterns(int length)
    {
        for (var size = 1; size <= 17; size++)
        {
            yield return [size];
        }

        yield return [1, 2, 3, 7];
        yield return [7, 3, 2, 1, 1];
        yield return [31];
        yield return [64];
        yield return [127];
        yield return [1000];
        yield return [4096, 1];
        yield return [Math.Max(1, length)];
    }

    public static byte[] Run(Func<Stream, Stream, CancellationToken, Task> copy, byte[] input, IReadOnlyList<int> sizes)
    {
        using var source = new ChunkedStream(input, sizes);
        using var output = new MemoryStream();
        copy(source, output, CancellationToken.None).GetAwaiter().GetResult();
        return output.ToArray();
    }

    /// <summary>Runs until the end or a refusal: what was written to the output by then, and the refusal.</summary>
    public static (byte[] Written, DumpFilterException? Refusal) RunUntilRefused(
        Func<Stream, Stream, CancellationToken, Task> copy, byte[] input, IReadOnlyList<int> sizes)
    {
        using var source = new ChunkedStream(input, sizes);
        using var output = new MemoryStream();
        try
        {
            copy(source, output, CancellationToken.None).GetAwaiter().GetResult();
            return (output.ToArray(), null);
        }
        catch (DumpFilterException e)
        {
            return (output.ToArray(), e);
        }
    }

    /// <summary>Runs a generated dump until the end or a refusal: what was written by then (counted, its last bytes kept), and the refusal.</summary>
    public static (TailStream Output, DumpFilterException? Refusal) RunGenerated(
        Func<Stream, Stream, CancellationToken, Task> copy, params (string Piece, long Times)[] pieces)
    {
        using var source = new RepeatedPiecesStream(pieces);
        var output = new TailStream();
        try
        {
            copy(source, output, CancellationToken.None).GetAwaiter().GetResult();
            return (output, null);
        }
        catch (DumpFilterException e)
        {
            return (output, e);
        }
    }

    /// <summary>The outcome of one run: the bytes written, or the exception message.</summary>
    public static string Outcome(Func<Stream, Stream, CancellationToken, Task> copy, byte[] input, IReadOnlyList<int> sizes)
    {
        try
        {
            return "ok:" + Convert.ToHexString(Run(copy, input, sizes));
        }
        catch (DumpFilterException e)
        {
            return e.GetType().Name + ":" + e.Message;
        }
    }

    /// <summary>Shows bytes readably in assertion messages.</summary>
    public static string Show(byte[] bytes) => Encoding.Latin1.GetString(bytes);
}
