using System.Buffers.Binary;
using System.Security.Cryptography;
using VyaBackupDb.Errors;
using static VyaBackupDb.Pipeline.Age.AgeFormat;

namespace VyaBackupDb.Pipeline.Age;

/// <summary>
/// Write side of age v1: what is written comes out encrypted into the inner stream as the header,
/// a 16-byte nonce and ChaCha20-Poly1305 chunks of 64 KiB (STREAM: 11-byte big-endian counter and
/// a last-chunk flag as the nonce). One chunk is held back until more data or disposal decides
/// whether it is the last; disposing writes the final chunk, so dispose only on success (a
/// storage write that is not committed is thrown away anyway). Memory: one chunk.
/// </summary>
public sealed class AgeEncryptStream : WriteOnlyStream
{
    private readonly Stream _inner;
    private readonly bool _leaveOpen;
    private readonly ChaCha20Poly1305 _aead;
    private readonly byte[] _plain = new byte[ChunkSize];
    private readonly byte[] _sealed = new byte[EncryptedChunkSize];
    private byte[]? _prefix; // header and nonce, written with the first chunk
    private int _plainLength;
    private ulong _counter;
    private bool _faulted;
    private bool _disposed;

    /// <summary>Encrypts to one or more X25519 recipients (one stanza each).</summary>
    public AgeEncryptStream(Stream output, IReadOnlyCollection<AgeRecipient> recipients, bool leaveOpen = false)
        : this(output, fileKey => [.. NotEmpty(recipients).Select(r => r.Wrap(fileKey))], leaveOpen)
    {
    }

    /// <summary>Encrypts with a passphrase (a single scrypt stanza, as age requires).</summary>
    public AgeEncryptStream(Stream output, AgePassphrase passphrase, bool leaveOpen = false)
        : this(output, fileKey => [passphrase.Wrap(fileKey)], leaveOpen)
    {
    }

    private AgeEncryptStream(Stream output, Func<byte[], IReadOnlyList<AgeStanza>> wrap, bool leaveOpen)
    {
        RequireChaCha20Poly1305();
        _inner = output;
        _leaveOpen = leaveOpen;
        var fileKey = RandomNumberGenerator.GetBytes(FileKeySize);
        var nonce = RandomNumberGenerator.GetBytes(NonceSize);
        _prefix = [.. AgeHeader.Encode(wrap(fileKey), fileKey), .. nonce];
        _aead = new ChaCha20Poly1305(Hkdf(fileKey, nonce, "payload"));
        CryptographicOperations.ZeroMemory(fileKey);
    }

    public override bool CanWrite => !_disposed;

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        while (!buffer.IsEmpty)
        {
            if (_plainLength == ChunkSize)
            {
                Emit(last: false); // more data follows, so the buffered chunk is not the last one
            }
            buffer = buffer[Buffer(buffer)..];
        }
    }

    public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        while (!buffer.IsEmpty)
        {
            if (_plainLength == ChunkSize)
            {
                await EmitAsync(last: false, cancellationToken).ConfigureAwait(false);
            }
            buffer = buffer[Buffer(buffer.Span)..];
        }
    }

    /// <summary>
    /// Flushes the chunks written so far; a partly filled chunk stays buffered (it can be sealed
    /// only once it is known whether it is the last).
    /// </summary>
    public override void Flush() => _inner.Flush();

    public override Task FlushAsync(CancellationToken cancellationToken) => _inner.FlushAsync(cancellationToken);

    protected override void Dispose(bool disposing)
    {
        if (disposing && !_disposed)
        {
            _disposed = true;
            try
            {
                if (!_faulted)
                {
                    Emit(last: true);
                    _inner.Flush();
                }
            }
            finally
            {
                _aead.Dispose();
                if (!_leaveOpen)
                {
                    _inner.Dispose();
                }
            }
        }
        base.Dispose(disposing);
    }

    public override async ValueTask DisposeAsync()
    {
        if (!_disposed)
        {
            _disposed = true;
            try
            {
                if (!_faulted)
                {
                    await EmitAsync(last: true, CancellationToken.None).ConfigureAwait(false);
                    await _inner.FlushAsync().ConfigureAwait(false);
                }
            }
            finally
            {
                _aead.Dispose();
                if (!_leaveOpen)
                {
                    await _inner.DisposeAsync().ConfigureAwait(false);
                }
            }
        }
        GC.SuppressFinalize(this);
    }

    private void Emit(bool last)
    {
        var length = Seal(last);
        // An inner write that fails leaves the output unusable: no final chunk is added on dispose.
        _faulted = true;
        if (_prefix is { } prefix)
        {
            _inner.Write(prefix);
            _prefix = null;
        }
        _inner.Write(_sealed, 0, length);
        _faulted = false;
    }

    private async ValueTask EmitAsync(bool last, CancellationToken cancellationToken)
    {
        var length = Seal(last);
        _faulted = true;
        if (_prefix is { } prefix)
        {
            await _inner.WriteAsync(prefix, cancellationToken).ConfigureAwait(false);
            _prefix = null;
        }
        await _inner.WriteAsync(_sealed.AsMemory(0, length), cancellationToken).ConfigureAwait(false);
        _faulted = false;
    }

    /// <summary>Copies as much as fits into the chunk buffer; returns how much was taken.</summary>
    private int Buffer(ReadOnlySpan<byte> data)
    {
        var n = Math.Min(data.Length, ChunkSize - _plainLength);
        data[..n].CopyTo(_plain.AsSpan(_plainLength));
        _plainLength += n;
        return n;
    }

    /// <summary>Encrypts the buffered chunk into <see cref="_sealed"/>; returns its length.</summary>
    private int Seal(bool last)
    {
        Span<byte> nonce = stackalloc byte[12];
        BinaryPrimitives.WriteUInt64BigEndian(nonce[3..], _counter);
        nonce[11] = last ? (byte)1 : (byte)0;
        _aead.Encrypt(nonce, _plain.AsSpan(0, _plainLength), _sealed.AsSpan(0, _plainLength), _sealed.AsSpan(_plainLength, TagSize));
        _counter++;
        var length = _plainLength + TagSize;
        _plainLength = 0;
        return length;
    }

    private static IReadOnlyCollection<AgeRecipient> NotEmpty(IReadOnlyCollection<AgeRecipient> recipients) =>
        recipients.Count > 0 ? recipients : throw new AgeException("no age recipient to encrypt to", ExitCode.UsageOrConfig);
}
