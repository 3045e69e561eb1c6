using System.Buffers;

namespace VyaBackupDb.Pipeline;

/// <summary>
/// zstd compression by the system's libzstd (<see cref="NativeZstd"/>), on worker threads.
/// Writes compress into <c>stored</c>; disposing ends the frame and leaves <c>stored</c> open.
/// </summary>
internal sealed class NativeZstdEncodeStream : WriteOnlyStream
{
    private readonly Stream _stored;
    private readonly byte[] _output = ArrayPool<byte>.Shared.Rent((int)NativeZstd.ZSTD_CStreamOutSize());
    private IntPtr _context;

    public NativeZstdEncodeStream(Stream stored, int level, int workers, int jobBytes, int? minMatch = null)
    {
        _stored = stored;
        _context = NativeZstd.ZSTD_createCCtx();
        if (_context == IntPtr.Zero)
        {
            throw new OutOfMemoryException("zstd could not allocate its compression state");
        }
        Check(NativeZstd.ZSTD_CCtx_setParameter(_context, NativeZstd.LevelParameter, level));
        Check(NativeZstd.ZSTD_CCtx_setParameter(_context, NativeZstd.ChecksumParameter, 1));
        if (minMatch is { } bytes)
        {
            Check(NativeZstd.ZSTD_CCtx_setParameter(_context, NativeZstd.MinMatchParameter, bytes));
        }
        // A library built without threads refuses workers and compresses on the writing thread.
        if (!NativeZstd.IsError(NativeZstd.ZSTD_CCtx_setParameter(_context, NativeZstd.WorkersParameter, workers)))
        {
            Check(NativeZstd.ZSTD_CCtx_setParameter(_context, NativeZstd.JobSizeParameter, jobBytes));
        }
    }

    public override unsafe void Write(ReadOnlySpan<byte> buffer)
    {
        fixed (byte* source = buffer)
        {
            var input = new NativeZstd.InBuffer { Source = (IntPtr)source, Size = (nuint)buffer.Length };
            while (input.Position < input.Size)
            {
                _stored.Write(_output, 0, Step(ref input, NativeZstd.Continue, out _));
            }
        }
    }

    public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        using var pinned = buffer.Pin();
        var input = new NativeZstd.InBuffer { Source = Address(pinned), Size = (nuint)buffer.Length };
        while (input.Position < input.Size)
        {
            var produced = Step(ref input, NativeZstd.Continue, out _);
            await _stored.WriteAsync(_output.AsMemory(0, produced), cancellationToken).ConfigureAwait(false);
        }
    }

    public override void Flush()
    {
        Drain(NativeZstd.FlushBlock);
        _stored.Flush();
    }

    public override async Task FlushAsync(CancellationToken cancellationToken)
    {
        await DrainAsync(NativeZstd.FlushBlock, cancellationToken).ConfigureAwait(false);
        await _stored.FlushAsync(cancellationToken).ConfigureAwait(false);
    }

    protected override void Dispose(bool disposing)
    {
        try
        {
            if (disposing && _context != IntPtr.Zero)
            {
                Drain(NativeZstd.End);
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
            if (_context != IntPtr.Zero)
            {
                await DrainAsync(NativeZstd.End, CancellationToken.None).ConfigureAwait(false);
            }
        }
        finally
        {
            Free();
            GC.SuppressFinalize(this);
        }
    }

    ~NativeZstdEncodeStream() => Free();

    /// <summary>Flushes (a block end) or ends the frame: until the library has nothing left to write (below, the same asynchronously).</summary>
    private void Drain(int directive)
    {
        var input = default(NativeZstd.InBuffer);
        nuint left;
        do
        {
            _stored.Write(_output, 0, Step(ref input, directive, out left));
        }
        while (left != 0);
    }

    private async Task DrainAsync(int directive, CancellationToken cancellationToken)
    {
        var input = default(NativeZstd.InBuffer);
        nuint left;
        do
        {
            var produced = Step(ref input, directive, out left);
            await _stored.WriteAsync(_output.AsMemory(0, produced), cancellationToken).ConfigureAwait(false);
        }
        while (left != 0);
    }

    /// <summary>One call into the library: consumes some of <paramref name="input"/>, returns how much it wrote into the output buffer.</summary>
    private unsafe int Step(ref NativeZstd.InBuffer input, int directive, out nuint left)
    {
        ObjectDisposedException.ThrowIf(_context == IntPtr.Zero, this);
        fixed (byte* destination = _output)
        {
            var output = new NativeZstd.OutBuffer { Destination = (IntPtr)destination, Size = (nuint)_output.Length };
            left = Check(NativeZstd.ZSTD_compressStream2(_context, ref output, ref input, directive));
            return (int)output.Position;
        }
    }

    private void Free()
    {
        if (_context != IntPtr.Zero)
        {
            NativeZstd.ZSTD_freeCCtx(_context);
            _context = IntPtr.Zero;
            ArrayPool<byte>.Shared.Return(_output);
        }
    }

    private static unsafe IntPtr Address(MemoryHandle pinned) => (IntPtr)pinned.Pointer;

    private static nuint Check(nuint code) =>
        NativeZstd.IsError(code) ? throw new IOException($"zstd compression failed: {NativeZstd.ErrorName(code)}") : code;
}
