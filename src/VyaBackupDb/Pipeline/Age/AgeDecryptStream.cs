using System.Buffers.Binary;
using System.Security.Cryptography;
using static VyaBackupDb.Pipeline.Age.AgeFormat;

namespace VyaBackupDb.Pipeline.Age;

/// <summary>
/// Read side of age v1. Opening reads and authenticates the header (a wrong key or a changed
/// header fails here); reads then return a chunk's plaintext only after its Poly1305 tag has been
/// verified. A chunk is the last one exactly when the input ends after it, and it must carry the
/// last-chunk flag, so a file cut anywhere (also at a 64 KiB boundary) or with bytes appended
/// fails. Every failure is an <see cref="AgeException"/>, and every read after one fails again.
/// Memory: one encrypted and one plain chunk.
/// </summary>
public sealed class AgeDecryptStream : ReadOnlyStream
{
    private readonly Stream _inner;
    private readonly bool _leaveOpen;
    private readonly ChaCha20Poly1305 _aead;
    private readonly byte[] _input; // one sealed chunk and one byte more: that byte says "not the last"
    private readonly byte[] _plain = new byte[ChunkSize];
    private int _inputLength;
    private int _plainStart;
    private int _plainEnd;
    private ulong _counter;
    private bool _done;
    private bool _disposed;
    private string? _failure;

    private AgeDecryptStream(Stream inner, bool leaveOpen, byte[] payloadKey, byte[] input, int inputLength)
    {
        _inner = inner;
        _leaveOpen = leaveOpen;
        _aead = new ChaCha20Poly1305(payloadKey);
        _input = input;
        _inputLength = inputLength;
    }

    /// <summary>
    /// Reads the header of <paramref name="input"/> and unwraps the file key with one of
    /// <paramref name="identities"/> (X25519 recipients) or with <paramref name="passphrase"/>
    /// (an scrypt stanza). Throws <see cref="AgeException"/> if it is not an age file, no key
    /// fits or the header MAC does not match. Unless <paramref name="leaveOpen"/>, the input is
    /// the stream's from this call on (also disposed when opening fails).
    /// </summary>
    public static async Task<AgeDecryptStream> OpenAsync(
        Stream input, IReadOnlyList<AgeIdentity> identities, AgePassphrase? passphrase = null, bool leaveOpen = false,
        CancellationToken cancellationToken = default)
    {
        try
        {
            return await OpenCoreAsync(input, identities, passphrase, leaveOpen, useAsync: true, cancellationToken).ConfigureAwait(false);
        }
        catch when (!leaveOpen)
        {
            await input.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>Synchronous <see cref="OpenAsync"/>.</summary>
    public static AgeDecryptStream Open(
        Stream input, IReadOnlyList<AgeIdentity> identities, AgePassphrase? passphrase = null, bool leaveOpen = false)
    {
        try
        {
            var open = OpenCoreAsync(input, identities, passphrase, leaveOpen, useAsync: false, CancellationToken.None);
            return open.IsCompleted ? open.Result : throw new InvalidOperationException("synchronous open did not complete");
        }
        catch when (!leaveOpen)
        {
            input.Dispose();
            throw;
        }
    }

    private static async ValueTask<AgeDecryptStream> OpenCoreAsync(
        Stream input, IReadOnlyList<AgeIdentity> identities, AgePassphrase? passphrase, bool leaveOpen, bool useAsync,
        CancellationToken cancellationToken)
    {
        RequireChaCha20Poly1305();
        var buffer = new byte[EncryptedChunkSize + 1];
        int start = 0, end = 0;

        // The header: lines up to and including the one starting with "---". What follows it in
        // the buffer is the start of the payload.
        using var header = new MemoryStream();
        var lineStart = 0;
        var version = System.Text.Encoding.ASCII.GetBytes(VersionLine + "\n");
        while (true)
        {
            if (start == end)
            {
                (start, end) = (0, await ReadAsync(input, buffer, useAsync, cancellationToken).ConfigureAwait(false));
                if (end == 0)
                {
                    throw new AgeException(header.Length == 0 ? "not an age file: it is empty" : "the age file is truncated in its header");
                }
            }
            var available = buffer.AsSpan(start, end - start);
            var newline = available.IndexOf((byte)'\n');
            var take = newline < 0 ? available.Length : newline + 1;
            header.Write(available[..take]);
            start += take;
            var text = header.GetBuffer().AsSpan(0, (int)header.Length);
            if (lineStart == 0 && !(text.Length <= version.Length ? version.AsSpan().StartsWith(text) : text.StartsWith(version)))
            {
                throw new AgeException(text.StartsWith("-----BEGIN AGE ENCRYPTED FILE-----"u8)
                    ? "ASCII-armored age files are not supported; use binary age files"
                    : "not an age file (it does not start with the age-encryption.org/v1 header)");
            }
            if (header.Length > MaxHeaderSize)
            {
                throw new AgeException("not a valid age file: the header is larger than 1 MiB");
            }
            if (newline < 0)
            {
                continue;
            }
            if (text[lineStart..].StartsWith("---"u8))
            {
                break;
            }
            lineStart = (int)header.Length;
        }
        var parsed = AgeHeader.Parse(header.GetBuffer().AsSpan(0, (int)header.Length));
        var fileKey = UnwrapFileKey(parsed.Stanzas, identities, passphrase);
        byte[] payloadKey;
        try
        {
            parsed.VerifyMac(fileKey);

            // The payload nonce, then the first chunk (read on the first Read).
            buffer.AsSpan(start, end - start).CopyTo(buffer);
            end -= start;
            while (end < NonceSize)
            {
                var n = await ReadAsync(input, buffer.AsMemory(end), useAsync, cancellationToken).ConfigureAwait(false);
                if (n == 0)
                {
                    throw new AgeException("the age file is truncated: it ends before the payload");
                }
                end += n;
            }
            payloadKey = Hkdf(fileKey, buffer.AsSpan(0, NonceSize), "payload");
        }
        finally
        {
            CryptographicOperations.ZeroMemory(fileKey);
        }
        buffer.AsSpan(NonceSize, end - NonceSize).CopyTo(buffer);
        return new AgeDecryptStream(input, leaveOpen, payloadKey, buffer, end - NonceSize);
    }

    private static byte[] UnwrapFileKey(IReadOnlyList<AgeStanza> stanzas, IReadOnlyList<AgeIdentity> identities, AgePassphrase? passphrase)
    {
        if (stanzas.Any(s => s.Type == AgePassphrase.StanzaType))
        {
            if (stanzas.Count != 1)
            {
                throw new AgeException("not a valid age file: an scrypt stanza must be the only one");
            }
            if (passphrase is null)
            {
                throw new AgeException("this file is encrypted with a passphrase, and no passphrase was given");
            }
            return passphrase.Unwrap(stanzas[0])
                ?? throw new AgeException("wrong passphrase (or the file's header is damaged)");
        }
        if (identities.Count == 0)
        {
            throw new AgeException("this file is encrypted to age recipients (age1…), and no identity file was given");
        }
        foreach (var stanza in stanzas.Where(s => s.Type == AgeRecipient.StanzaType))
        {
            foreach (var identity in identities)
            {
                if (identity.Unwrap(stanza) is { } fileKey)
                {
                    return fileKey;
                }
            }
        }
        var keys = identities.Count == 1 ? "the given identity" : $"any of the {identities.Count} given identities";
        throw new AgeException($"the file is not encrypted to {keys} (wrong key, or the file's header is damaged)");
    }

    public override bool CanRead => _failure is null && !_disposed;

    public override int Read(Span<byte> buffer)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (buffer.IsEmpty)
        {
            return 0;
        }
        if (_plainStart == _plainEnd && !_done)
        {
            ThrowIfFailed();
            while (_inputLength < _input.Length)
            {
                var n = _inner.Read(_input, _inputLength, _input.Length - _inputLength);
                if (n == 0)
                {
                    break;
                }
                _inputLength += n;
            }
            OpenChunk();
        }
        return TakePlain(buffer);
    }

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (buffer.IsEmpty)
        {
            return 0;
        }
        if (_plainStart == _plainEnd && !_done)
        {
            ThrowIfFailed();
            while (_inputLength < _input.Length)
            {
                var n = await _inner.ReadAsync(_input.AsMemory(_inputLength), cancellationToken).ConfigureAwait(false);
                if (n == 0)
                {
                    break;
                }
                _inputLength += n;
            }
            OpenChunk();
        }
        return TakePlain(buffer.Span);
    }

    private int TakePlain(Span<byte> buffer)
    {
        var n = Math.Min(buffer.Length, _plainEnd - _plainStart);
        _plain.AsSpan(_plainStart, n).CopyTo(buffer);
        _plainStart += n;
        return n;
    }

    private void ThrowIfFailed()
    {
        if (_failure is not null)
        {
            throw new AgeException(_failure);
        }
    }

    /// <summary>
    /// Authenticates and decrypts the chunk at the start of <see cref="_input"/>, which holds a
    /// whole sealed chunk and one byte more, or everything up to the end of the input. Only on
    /// success does the plaintext become readable.
    /// </summary>
    private void OpenChunk()
    {
        try
        {
            var last = _inputLength <= EncryptedChunkSize;
            var length = Math.Min(_inputLength, EncryptedChunkSize);
            if (length < TagSize)
            {
                throw new AgeException(_counter == 0 && length == 0
                    ? "the age file is truncated: it ends before the first chunk"
                    : $"the age file is truncated: chunk {_counter} is incomplete");
            }
            if (!TryDecrypt(length, last))
            {
                // Work out what went wrong, for the message; neither case yields plaintext.
                if (last && length == EncryptedChunkSize && TryDecrypt(length, last: false))
                {
                    throw new AgeException($"the age file is truncated: it ends after chunk {_counter}, at a 64 KiB boundary, without its final chunk");
                }
                if (!last && TryDecrypt(length, last: true))
                {
                    throw new AgeException("the age file has data appended after its final chunk");
                }
                throw new AgeException($"chunk {_counter} of the age file failed authentication: the file is damaged, truncated or has bytes appended");
            }
            if (last && length == TagSize && _counter > 0)
            {
                throw new AgeException("the age file ends with an empty final chunk, which the format forbids (the file was damaged)");
            }
            _plainStart = 0;
            _plainEnd = length - TagSize;
            _counter++;
            _done = last;
            _inputLength -= length;
            _input.AsSpan(length, _inputLength).CopyTo(_input);
        }
        catch (AgeException e)
        {
            _failure = e.Message;
            throw;
        }
    }

    /// <summary>Decrypts into <see cref="_plain"/>; false when the tag does not verify (nothing is then exposed).</summary>
    private bool TryDecrypt(int length, bool last)
    {
        Span<byte> nonce = stackalloc byte[12];
        BinaryPrimitives.WriteUInt64BigEndian(nonce[3..], _counter);
        nonce[11] = last ? (byte)1 : (byte)0;
        try
        {
            var plainLength = length - TagSize;
            _aead.Decrypt(nonce, _input.AsSpan(0, plainLength), _input.AsSpan(plainLength, TagSize), _plain.AsSpan(0, plainLength));
            return true;
        }
        catch (CryptographicException)
        {
            return false;
        }
    }

    private static async ValueTask<int> ReadAsync(Stream input, Memory<byte> buffer, bool useAsync, CancellationToken cancellationToken) =>
        useAsync ? await input.ReadAsync(buffer, cancellationToken).ConfigureAwait(false) : input.Read(buffer.Span);

    protected override void Dispose(bool disposing)
    {
        if (disposing && !_disposed)
        {
            _disposed = true;
            _aead.Dispose();
            if (!_leaveOpen)
            {
                _inner.Dispose();
            }
        }
        base.Dispose(disposing);
    }

    public override async ValueTask DisposeAsync()
    {
        if (!_disposed)
        {
            _disposed = true;
            _aead.Dispose();
            if (!_leaveOpen)
            {
                await _inner.DisposeAsync().ConfigureAwait(false);
            }
        }
        GC.SuppressFinalize(this);
    }
}
