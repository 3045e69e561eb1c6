using System.Security.Cryptography;

namespace VyaBackupDb.Pipeline;

/// <summary>
/// Passes bytes through (in either direction) while counting them, hashing them with SHA-256 and
/// keeping the last few KiB, which is where a dump's completion trailer lives.
/// </summary>
public sealed class MeasuringStream(Stream inner, bool leaveOpen = false) : ObservingStream(inner)
{
    private const int TailSize = 4096;

    private readonly IncrementalHash _sha256 = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
    private readonly byte[] _tail = new byte[TailSize];
    private int _tailLength;
    private long _bytes;

    /// <summary>Bytes passed so far; safe to read from another thread for progress.</summary>
    public long Bytes => Interlocked.Read(ref _bytes);

    /// <summary>Whether the bytes are hashed (<see cref="Sha256Hex"/>); on by default.</summary>
    public bool Hashing { get; init; } = true;

    /// <summary>Hex SHA-256 of everything that passed. Call once, at the end.</summary>
    public string Sha256Hex() => Hashing
        ? Convert.ToHexStringLower(_sha256.GetHashAndReset())
        : throw new InvalidOperationException("this stream was not hashed");

    /// <summary>The last bytes that passed (at most 4 KiB).</summary>
    public ReadOnlySpan<byte> Tail => _tail.AsSpan(0, _tailLength);

    /// <summary>
    /// Called when a read reaches the end of the input, before the reader learns of it: a check
    /// that throws here stops a consumer (psql) before it takes the input as complete.
    /// </summary>
    public Action<MeasuringStream>? AtEndOfInput { get; init; }

    /// <summary>
    /// A byte count the input may not pass (a manifest's plain_bytes): a read past it throws what
    /// <see cref="BeyondExpected"/> makes, before the reader gets those bytes. A planted file that decodes to far more
    /// than its manifest says (a compression bomb) fails there, not after filling the server's or the host's disk.
    /// </summary>
    public long? ExpectedBytes { get; init; }

    /// <summary>The exception for a read past <see cref="ExpectedBytes"/>.</summary>
    public Func<MeasuringStream, Exception>? BeyondExpected { get; init; }

    /// <summary>True when <paramref name="marker"/> occurs in <see cref="Tail"/>.</summary>
    public bool TailContains(string marker) => Tail.IndexOf(System.Text.Encoding.ASCII.GetBytes(marker)) >= 0;

    /// <summary>
    /// True when the data ends with <paramref name="trailer"/>'s line, followed only by what a dump tool writes after
    /// its completion trailer: blank lines, <c>--</c> comments and psql's <c>\unrestrict</c> (pg_dump's last line). A
    /// statement added after the trailer makes it false, as the restore's statement filter refuses such a dump.
    /// </summary>
    public bool EndsWithTrailer(string trailer)
    {
        var at = Tail.LastIndexOf(System.Text.Encoding.ASCII.GetBytes(trailer));
        if (at < 0)
        {
            return false;
        }
        var rest = Tail[(at + trailer.Length)..];
        var end = rest.IndexOf((byte)'\n');
        for (rest = end < 0 ? [] : rest[(end + 1)..]; rest.Length > 0;)
        {
            end = rest.IndexOf((byte)'\n');
            var line = (end < 0 ? rest : rest[..end]).Trim(" \t\r"u8);
            if (line.Length > 0 && !line.StartsWith("--"u8) && !line.StartsWith("\\unrestrict "u8))
            {
                return false;
            }
            rest = end < 0 ? [] : rest[(end + 1)..];
        }
        return true;
    }

    public override int Read(Span<byte> buffer)
    {
        var n = Inner.Read(buffer);
        Observe(buffer[..n]);
        if (Bytes > ExpectedBytes && BeyondExpected is not null)
        {
            throw BeyondExpected(this);
        }
        if (n == 0 && buffer.Length > 0)
        {
            AtEndOfInput?.Invoke(this);
        }
        return n;
    }

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        var n = await Inner.ReadAsync(buffer, cancellationToken).ConfigureAwait(false);
        Observe(buffer.Span[..n]);
        if (Bytes > ExpectedBytes && BeyondExpected is not null)
        {
            throw BeyondExpected(this);
        }
        if (n == 0 && buffer.Length > 0)
        {
            AtEndOfInput?.Invoke(this);
        }
        return n;
    }

    protected override void Observe(ReadOnlySpan<byte> data)
    {
        if (data.IsEmpty)
        {
            return;
        }
        if (Hashing)
        {
            _sha256.AppendData(data);
        }
        Interlocked.Add(ref _bytes, data.Length);
        if (data.Length >= TailSize)
        {
            data[^TailSize..].CopyTo(_tail);
            _tailLength = TailSize;
            return;
        }
        var keep = Math.Min(_tailLength, TailSize - data.Length);
        _tail.AsSpan(_tailLength - keep, keep).CopyTo(_tail);
        data.CopyTo(_tail.AsSpan(keep));
        _tailLength = keep + data.Length;
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _sha256.Dispose();
            if (!leaveOpen)
            {
                Inner.Dispose();
            }
        }
    }

    public override async ValueTask DisposeAsync()
    {
        _sha256.Dispose();
        if (!leaveOpen)
        {
            await Inner.DisposeAsync().ConfigureAwait(false);
        }
        GC.SuppressFinalize(this);
    }
}
