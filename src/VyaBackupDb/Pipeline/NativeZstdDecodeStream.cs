using System.Buffers;

namespace VyaBackupDb.Pipeline;

/// <summary>
/// zstd decoding by the system's libzstd (<see cref="NativeZstd"/>): reads decode what
/// <c>stored</c> holds, frame after frame, each checked against its content checksum. A stream
/// that ends inside a frame fails (it is truncated); damage fails with the library's reason.
/// Disposing disposes <c>stored</c>.
/// </summary>
internal sealed class NativeZstdDecodeStream : ReadOnlyStream
{
    private readonly Stream _stored;
    private readonly byte[] _input = ArrayPool<byte>.Shared.Rent((int)NativeZstd.ZSTD_DStreamInSize());
    private IntPtr _context;
    private int _inputStart;
    private int _inputEnd;
    private bool _storedEnded;

    /// <summary>The library's last answer: 0 when the frame it was in is complete, so that the input may end there.</summary>
    private nuint _frameLeft;

    /// <summary>The last call filled the caller's buffer inside a frame: the library may hold more output without needing input.</summary>
    private bool _outputPending;

    public NativeZstdDecodeStream(Stream stored)
    {
        _stored = stored;
        _context = NativeZstd.ZSTD_createDCtx();
        if (_context == IntPtr.Zero)
        {
            ArrayPool<byte>.Shared.Return(_input);
            throw new OutOfMemoryException("zstd could not allocate its decoding state");
        }
    }

    public override int Read(Span<byte> buffer)
    {
        while (!buffer.IsEmpty)
        {
            if (NeedsInput)
            {
                Refill(_stored.Read(_input, 0, _input.Length));
                continue;
            }
            var produced = Step(buffer, out var ended);
            if (produced > 0 || ended)
            {
                return produced;
            }
        }
        return 0;
    }

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        while (!buffer.IsEmpty)
        {
            if (NeedsInput)
            {
                Refill(await _stored.ReadAsync(_input.AsMemory(), cancellationToken).ConfigureAwait(false));
                continue;
            }
            var produced = Step(buffer.Span, out var ended);
            if (produced > 0 || ended)
            {
                return produced;
            }
        }
        return 0;
    }

    private bool NeedsInput => _inputStart == _inputEnd && !_storedEnded && !_outputPending;

    private void Refill(int read)
    {
        _inputStart = 0;
        _inputEnd = read;
        _storedEnded = read == 0;
    }

    /// <summary>One call into the library with what input there is; <paramref name="ended"/> when the stored stream is done and so is the last frame.</summary>
    private unsafe int Step(Span<byte> buffer, out bool ended)
    {
        ObjectDisposedException.ThrowIf(_context == IntPtr.Zero, this);
        ended = false;
        if (_inputStart == _inputEnd && _storedEnded && !_outputPending)
        {
            ended = _frameLeft == 0 ? true : throw new InvalidDataException("it ends inside a zstd frame: the file is truncated");
            return 0;
        }
        fixed (byte* source = _input)
        fixed (byte* destination = buffer)
        {
            var input = new NativeZstd.InBuffer { Source = (IntPtr)(source + _inputStart), Size = (nuint)(_inputEnd - _inputStart) };
            var output = new NativeZstd.OutBuffer { Destination = (IntPtr)destination, Size = (nuint)buffer.Length };
            var left = NativeZstd.ZSTD_decompressStream(_context, ref output, ref input);
            if (NativeZstd.IsError(left))
            {
                throw new InvalidDataException(NativeZstd.ErrorName(left));
            }
            _inputStart += (int)input.Position;
            _frameLeft = left;
            _outputPending = left != 0 && output.Position == output.Size;
            return (int)output.Position;
        }
    }

    protected override void Dispose(bool disposing)
    {
        try
        {
            if (disposing)
            {
                _stored.Dispose();
            }
        }
        finally
        {
            Free();
            base.Dispose(disposing);
        }
    }

    public override async ValueTask DisposeAsync()
    {
        try
        {
            await _stored.DisposeAsync().ConfigureAwait(false);
        }
        finally
        {
            Free();
            GC.SuppressFinalize(this);
        }
    }

    ~NativeZstdDecodeStream() => Free();

    private void Free()
    {
        if (_context != IntPtr.Zero)
        {
            NativeZstd.ZSTD_freeDCtx(_context);
            _context = IntPtr.Zero;
            ArrayPool<byte>.Shared.Return(_input);
        }
    }
}
