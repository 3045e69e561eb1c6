using System.Text;

namespace VyaBackupDb.Engines;

/// <summary>A growable byte buffer; callers keep it bounded.</summary>
internal sealed class ByteBuffer(int capacity)
{
    private byte[] data = new byte[capacity];

    public int Length { get; private set; }

    public ReadOnlySpan<byte> Span => data.AsSpan(0, Length);

    public ReadOnlyMemory<byte> Memory => data.AsMemory(0, Length);

    public void Append(ReadOnlySpan<byte> bytes)
    {
        if (bytes.IsEmpty)
        {
            return;
        }

        Reserve(bytes.Length);
        bytes.CopyTo(data.AsSpan(Length));
        Length += bytes.Length;
    }

    public void Append(byte value)
    {
        Reserve(1);
        data[Length++] = value;
    }

    public void Clear() => Length = 0;

    /// <summary>Inserts <paramref name="bytes"/> at <paramref name="index"/>.</summary>
    public void Insert(int index, ReadOnlySpan<byte> bytes)
    {
        Reserve(bytes.Length);
        data.AsSpan(index, Length - index).CopyTo(data.AsSpan(index + bytes.Length));
        bytes.CopyTo(data.AsSpan(index));
        Length += bytes.Length;
    }

    /// <summary>Drops the first <paramref name="count"/> bytes.</summary>
    public void RemoveFront(int count)
    {
        data.AsSpan(count, Length - count).CopyTo(data);
        Length -= count;
    }

    private void Reserve(int extra)
    {
        if (Length + extra > data.Length)
        {
            Array.Resize(ref data, Math.Max(data.Length * 2, Length + extra));
        }
    }
}

/// <summary>What happens to the bytes of the unit (statement or meta-command) being scanned.</summary>
internal enum Disposition : byte
{
    /// <summary>Written to the output as they come.</summary>
    Pass,

    /// <summary>Kept in <see cref="FilterSink.Pending"/> until the unit is classified.</summary>
    Hold,

    /// <summary>Discarded.</summary>
    Drop,
}

/// <summary>
/// Output side of a dump filter: the output buffer, the pending bytes of a unit not yet
/// classified, and the disposition of the bytes being scanned.
/// </summary>
/// <param name="holdOutput">Whether output is written only up to <see cref="MarkReleasable"/> (the
/// scanner marks points where nothing written so far can still be refused), so a refused line
/// or statement never reaches the client; at most <see cref="OutputHoldCap"/> bytes are held.</param>
internal sealed class FilterSink(bool holdOutput = false)
{
    public const int OutputHoldCap = 64 * 1024;

    private int releasable;

    public ByteBuffer Output { get; } = new(DumpFilterDriver.ChunkSize + (DumpFilterDriver.ChunkSize / 2));

    public ByteBuffer Pending { get; } = new(4096);

    public Disposition Mode { get; private set; }

    public void Write(ReadOnlySpan<byte> bytes)
    {
        switch (Mode)
        {
            case Disposition.Pass:
                Output.Append(bytes);
                break;
            case Disposition.Hold:
                Pending.Append(bytes);
                break;
            default:
                break;
        }
    }

    /// <summary>Starts holding the bytes of a new unit.</summary>
    public void BeginHold()
    {
        Pending.Clear();
        Mode = Disposition.Hold;
    }

    /// <summary>Releases the held bytes unchanged; the rest of the unit passes.</summary>
    public void Release()
    {
        if (Mode == Disposition.Hold)
        {
            Output.Append(Pending.Span);
            Pending.Clear();
        }

        Mode = Disposition.Pass;
    }

    /// <summary>Discards the held bytes; the rest of the unit is discarded too.</summary>
    public void Discard()
    {
        Pending.Clear();
        Mode = Disposition.Drop;
    }

    /// <summary>Releases the held bytes with <c>[start, end)</c> replaced; the rest of the unit passes.</summary>
    public void ReleaseReplacing(int start, int end, ReadOnlySpan<byte> replacement)
    {
        var held = Pending.Span;
        Output.Append(held[..start]);
        Output.Append(replacement);
        Output.Append(held[end..]);
        Pending.Clear();
        Mode = Disposition.Pass;
    }

    /// <summary>Replaces <c>[start, end)</c> of the held bytes; they stay held.</summary>
    public void ReplaceHeld(int start, int end, ReadOnlySpan<byte> replacement)
    {
        var held = Pending.Span;
        var replaced = new byte[start + replacement.Length + (held.Length - end)];
        held[..start].CopyTo(replaced);
        replacement.CopyTo(replaced.AsSpan(start));
        held[end..].CopyTo(replaced.AsSpan(start + replacement.Length));
        Pending.Clear();
        Pending.Append(replaced);
    }

    /// <summary>Back to passing bytes through (between units).</summary>
    public void EndUnit()
    {
        Pending.Clear();
        Mode = Disposition.Pass;
    }

    /// <summary>Whether the hold was released at the cap since the last <see cref="MarkReleasable"/>.</summary>
    public bool ForcedSinceMark { get; private set; }

    /// <summary>Everything in <see cref="Output"/> so far may be written.</summary>
    public void MarkReleasable()
    {
        releasable = Output.Length;
        ForcedSinceMark = false;
    }

    /// <summary>Inserts bytes at the last <see cref="MarkReleasable"/> point (before everything held since).</summary>
    public void InsertAtMark(ReadOnlySpan<byte> bytes) => Output.Insert(releasable, bytes);

    /// <summary>How many bytes of <see cref="Output"/> may be written now (a hold past the cap is released).</summary>
    public int Writable()
    {
        if (holdOutput && Output.Length - releasable > OutputHoldCap)
        {
            ForcedSinceMark = true;
        }

        if (!holdOutput || ForcedSinceMark)
        {
            releasable = Output.Length;
        }

        return releasable;
    }

    /// <summary>Forgets the first <paramref name="count"/> bytes of <see cref="Output"/> (written).</summary>
    public void Written(int count)
    {
        if (count == Output.Length)
        {
            Output.Clear();
        }
        else
        {
            Output.RemoveFront(count);
        }

        releasable -= count;
    }
}

/// <summary>Counts lines (<c>\n</c>) of the input as a scanner moves forward, for messages.</summary>
internal struct LineCounter
{
    private long newlines;
    private long countedTo;

    /// <summary>The 1-based line of absolute input position <paramref name="position"/> (<c>buffer[index]</c>).</summary>
    public long LineAt(byte[] buffer, int index, long position)
    {
        if (position >= countedTo)
        {
            var from = index - (int)(position - countedTo);
            newlines += buffer.AsSpan(from, index - from).Count((byte)'\n');
            countedTo = position;
            return newlines + 1;
        }

        // Earlier in the current buffer: count back.
        var back = buffer.AsSpan(index, (int)(countedTo - position)).Count((byte)'\n');
        return newlines - back + 1;
    }

    /// <summary>The scanner counted the <paramref name="count"/> line breaks up to <paramref name="position"/> itself.</summary>
    public void Counted(long position, long count)
    {
        newlines += count;
        countedTo = position;
    }
}

/// <summary>Remembers the source database of a dump and refuses a second one.</summary>
internal sealed class DatabaseNames
{
    public string? Source { get; private set; }

    public void Observe(string name)
    {
        if (Source is null)
        {
            Source = name;
        }
        else if (!string.Equals(Source, name, StringComparison.Ordinal))
        {
            throw new DumpFilterException(
                $"the dump holds more than one database ({Source}, {name}); restore them one at a time");
        }
    }

    public static string Decode(ReadOnlySpan<byte> name) => Encoding.UTF8.GetString(name);
}

/// <summary>
/// Runs a scanner over a stream: reads large chunks, lets the scanner consume what it can (it may
/// leave a short tail when it needs to look ahead past the end of the data read so far), carries
/// the tail over, and writes the filtered bytes.
/// </summary>
internal static class DumpFilterDriver
{
    public const int ChunkSize = 128 * 1024;

    /// <summary>Most bytes a scanner may need beyond the current position to decide.</summary>
    public const int MaxLookahead = 512;

    /// <summary>Bytes kept before the scan start so scanners can look four bytes behind.</summary>
    public const int History = 4;

    private const int FlushThreshold = 64 * 1024;

    /// <summary>
    /// Scans <c>buffer[start..end)</c> and returns how far it consumed. It must consume everything
    /// when <paramref name="final"/> is set, and must make progress when at least
    /// <see cref="MaxLookahead"/> bytes are available. <c>buffer[start - History..start)</c> holds the
    /// bytes that preceded <c>start</c> in the input (newlines at the very beginning).
    /// </summary>
    public delegate int Scanner(byte[] buffer, int start, int end, bool final);

    public static async Task RunAsync(
        Scanner scan, FilterSink sink, Stream input, Stream output, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(input);
        ArgumentNullException.ThrowIfNull(output);

        var buffer = new byte[History + MaxLookahead + ChunkSize];
        buffer.AsSpan(0, History).Fill((byte)'\n');
        var end = History;
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var read = await input.ReadAsync(buffer.AsMemory(end), cancellationToken).ConfigureAwait(false);
            var final = read == 0;
            end += read;
            var consumed = scan(buffer, History, end, final);
            if (final)
            {
                sink.MarkReleasable(); // nothing left that could be refused
            }

            if (sink.Output.Length >= FlushThreshold || (final && sink.Output.Length > 0))
            {
                var writable = sink.Writable();
                if (writable > 0)
                {
                    await output.WriteAsync(sink.Output.Memory[..writable], cancellationToken).ConfigureAwait(false);
                    sink.Written(writable);
                }
            }

            if (final)
            {
                if (consumed != end)
                {
                    throw new InvalidOperationException("dump filter scanner did not consume its final input");
                }

                break;
            }

            if (consumed > History)
            {
                Buffer.BlockCopy(buffer, consumed - History, buffer, 0, History + (end - consumed));
                end = History + (end - consumed);
            }

            if (end == buffer.Length)
            {
                throw new InvalidOperationException("dump filter scanner made no progress on a full buffer");
            }
        }

        await output.FlushAsync(cancellationToken).ConfigureAwait(false);
    }
}
