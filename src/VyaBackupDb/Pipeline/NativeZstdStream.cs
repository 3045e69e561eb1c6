using System.Buffers;
using System.Runtime.InteropServices;

namespace VyaBackupDb.Pipeline;

/// <summary>
/// zstd compression by the system's libzstd (libzstd.so.1: dpkg, rpm and systemd depend on it, so
/// every Debian, Ubuntu and RHEL-family host has it). On the same threads it compresses about 1.5
/// times as fast as the managed port, which, precompiled and not yet rejitted, is slower still
/// (bench/README.md). The output is the same zstd format; hosts without the library use the port.
/// Writes compress into <c>stored</c>; disposing ends the frame and leaves <c>stored</c> open.
/// </summary>
internal sealed partial class NativeZstdStream : WriteOnlyStream
{
    private const string Library = "libzstd.so.1";

    // zstd.h: ZSTD_cParameter and ZSTD_EndDirective.
    private const int LevelParameter = 100;
    private const int ChecksumParameter = 201;
    private const int WorkersParameter = 400;
    private const int JobSizeParameter = 401;
    private const int Continue = 0;
    private const int FlushBlock = 1;
    private const int End = 2;

    /// <summary>libzstd 1.4 or later (ZSTD_compressStream2) can be loaded.</summary>
    public static bool IsAvailable => Loadable.Value;

    private static readonly Lazy<bool> Loadable = new(() =>
    {
        try
        {
            return NativeLibrary.TryLoad(Library, out _) && ZSTD_versionNumber() >= 10400;
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException or BadImageFormatException)
        {
            return false;
        }
    });

    private readonly Stream _stored;
    private readonly byte[] _output = ArrayPool<byte>.Shared.Rent((int)ZSTD_CStreamOutSize());
    private IntPtr _context;

    public NativeZstdStream(Stream stored, int level, int workers, int jobBytes)
    {
        _stored = stored;
        _context = ZSTD_createCCtx();
        if (_context == IntPtr.Zero)
        {
            throw new OutOfMemoryException("zstd could not allocate its compression state");
        }
        Check(ZSTD_CCtx_setParameter(_context, LevelParameter, level));
        Check(ZSTD_CCtx_setParameter(_context, ChecksumParameter, 1));
        // A library built without threads refuses workers and compresses on the writing thread.
        if (ZSTD_isError(ZSTD_CCtx_setParameter(_context, WorkersParameter, workers)) == 0)
        {
            Check(ZSTD_CCtx_setParameter(_context, JobSizeParameter, jobBytes));
        }
    }

    public override unsafe void Write(ReadOnlySpan<byte> buffer)
    {
        fixed (byte* source = buffer)
        {
            var input = new InBuffer { Source = (IntPtr)source, Size = (nuint)buffer.Length };
            while (input.Position < input.Size)
            {
                _stored.Write(_output, 0, Step(ref input, Continue, out _));
            }
        }
    }

    public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        using var pinned = buffer.Pin();
        var input = new InBuffer { Source = Address(pinned), Size = (nuint)buffer.Length };
        while (input.Position < input.Size)
        {
            var produced = Step(ref input, Continue, out _);
            await _stored.WriteAsync(_output.AsMemory(0, produced), cancellationToken).ConfigureAwait(false);
        }
    }

    public override void Flush()
    {
        Drain(FlushBlock);
        _stored.Flush();
    }

    public override async Task FlushAsync(CancellationToken cancellationToken)
    {
        await DrainAsync(FlushBlock, cancellationToken).ConfigureAwait(false);
        await _stored.FlushAsync(cancellationToken).ConfigureAwait(false);
    }

    protected override void Dispose(bool disposing)
    {
        try
        {
            if (disposing && _context != IntPtr.Zero)
            {
                Drain(End);
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
                await DrainAsync(End, CancellationToken.None).ConfigureAwait(false);
            }
        }
        finally
        {
            Free();
            GC.SuppressFinalize(this);
        }
    }

    ~NativeZstdStream() => Free();

    /// <summary>Flushes (a block end) or ends the frame: until the library has nothing left to write (below, the same asynchronously).</summary>
    private void Drain(int directive)
    {
        var input = default(InBuffer);
        nuint left;
        do
        {
            _stored.Write(_output, 0, Step(ref input, directive, out left));
        }
        while (left != 0);
    }

    private async Task DrainAsync(int directive, CancellationToken cancellationToken)
    {
        var input = default(InBuffer);
        nuint left;
        do
        {
            var produced = Step(ref input, directive, out left);
            await _stored.WriteAsync(_output.AsMemory(0, produced), cancellationToken).ConfigureAwait(false);
        }
        while (left != 0);
    }

    /// <summary>One call into the library: consumes some of <paramref name="input"/>, returns how much it wrote into the output buffer.</summary>
    private unsafe int Step(ref InBuffer input, int directive, out nuint left)
    {
        ObjectDisposedException.ThrowIf(_context == IntPtr.Zero, this);
        fixed (byte* destination = _output)
        {
            var output = new OutBuffer { Destination = (IntPtr)destination, Size = (nuint)_output.Length };
            left = Check(ZSTD_compressStream2(_context, ref output, ref input, directive));
            return (int)output.Position;
        }
    }

    private void Free()
    {
        if (_context != IntPtr.Zero)
        {
            ZSTD_freeCCtx(_context);
            _context = IntPtr.Zero;
            ArrayPool<byte>.Shared.Return(_output);
        }
    }

    private static unsafe IntPtr Address(MemoryHandle pinned) => (IntPtr)pinned.Pointer;

    private static nuint Check(nuint code) =>
        ZSTD_isError(code) != 0 ? throw new IOException($"zstd compression failed: {Marshal.PtrToStringUTF8(ZSTD_getErrorName(code))}") : code;

    [StructLayout(LayoutKind.Sequential)]
    private struct InBuffer
    {
        public IntPtr Source;
        public nuint Size;
        public nuint Position;
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct OutBuffer
    {
        public IntPtr Destination;
        public nuint Size;
        public nuint Position;
    }

    [LibraryImport(Library)]
    private static partial uint ZSTD_versionNumber();

    [LibraryImport(Library)]
    private static partial nuint ZSTD_CStreamOutSize();

    [LibraryImport(Library)]
    private static partial IntPtr ZSTD_createCCtx();

    [LibraryImport(Library)]
    private static partial nuint ZSTD_freeCCtx(IntPtr context);

    [LibraryImport(Library)]
    private static partial nuint ZSTD_CCtx_setParameter(IntPtr context, int parameter, int value);

    [LibraryImport(Library)]
    private static partial nuint ZSTD_compressStream2(IntPtr context, ref OutBuffer output, ref InBuffer input, int directive);

    [LibraryImport(Library)]
    private static partial uint ZSTD_isError(nuint code);

    [LibraryImport(Library)]
    private static partial IntPtr ZSTD_getErrorName(nuint code);
}
