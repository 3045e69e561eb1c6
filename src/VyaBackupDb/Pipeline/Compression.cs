using System.IO.Compression;
using ZstdSharp;

namespace VyaBackupDb.Pipeline;

public enum Compression
{
    None,
    Gzip,
    Zstd,
    Zip,
}

public static class CompressionNames
{
    public static string ToName(this Compression compression) => compression.ToString().ToLowerInvariant();

    public static bool TryParse(string text, out Compression compression)
    {
        compression = default;
        return text.ToLowerInvariant() switch
        {
            "none" => Set(Compression.None, out compression),
            "gzip" or "gz" => Set(Compression.Gzip, out compression),
            "zstd" or "zst" => Set(Compression.Zstd, out compression),
            "zip" => Set(Compression.Zip, out compression),
            _ => false,
        };
    }

    private static bool Set(Compression value, out Compression compression)
    {
        compression = value;
        return true;
    }

    /// <summary>File extension, as the old tool wrote them: .sql, .sql.gz, .zip; and .sql.zst.</summary>
    public static string Extension(this Compression compression) => compression switch
    {
        Compression.None => ".sql",
        Compression.Gzip => ".sql.gz",
        Compression.Zstd => ".sql.zst",
        Compression.Zip => ".zip",
        _ => throw new ArgumentOutOfRangeException(nameof(compression)),
    };

    /// <summary>File extension of a files backup (a tar): .tar, .tar.gz, .tar.zst, .tar.zip (a zip holding one .tar).</summary>
    public static string TarExtension(this Compression compression) => compression switch
    {
        Compression.None => ".tar",
        Compression.Gzip => ".tar.gz",
        Compression.Zstd => ".tar.zst",
        Compression.Zip => ".tar.zip",
        _ => throw new ArgumentOutOfRangeException(nameof(compression)),
    };

    /// <summary>The compression a file name's extension says, or null if it is not a backup file.</summary>
    public static Compression? FromFileName(string fileName)
    {
        foreach (var c in new[] { Compression.Gzip, Compression.Zstd, Compression.Zip, Compression.None })
        {
            if (fileName.EndsWith(c.TarExtension(), StringComparison.OrdinalIgnoreCase))
            {
                return c;
            }
        }
        // Longest suffix first: ".sql.gz" before ".sql".
        foreach (var c in new[] { Compression.Gzip, Compression.Zstd, Compression.Zip, Compression.None })
        {
            if (fileName.EndsWith(c.Extension(), StringComparison.OrdinalIgnoreCase))
            {
                return c;
            }
        }
        return null;
    }
}

/// <summary>In-process compression on the stream: no `| gzip`, no temp copies, flat memory.</summary>
public static class Codec
{
    private const int ZstdLevel = 3;
    // At the default level, matches shorter than 7 bytes are left to the literal coder: on SQL
    // dumps they rarely pay for themselves. Measured with zstd 1.5.4 (bench/README.md, "zstd's
    // level"): 15 % smaller and 15 % less CPU on sysbench rows, 4 % smaller and 20 % less CPU on
    // the text set, within 1 % of level 3 alone on real text. A configured level is zstd's own.
    private const int ZstdDefaultMinMatch = 7;
    private const int MaxZstdWorkers = 4;
    private const int ZstdJobBytes = 4 << 20;

    /// <summary>The levels <c>compression_level:</c> accepts for a codec, or null when it has none to choose.</summary>
    public static (int Min, int Max)? LevelRange(Compression compression) => compression switch
    {
        Compression.Gzip => (1, 9),
        Compression.Zstd => (1, 19),
        _ => null,
    };

    /// <summary>
    /// Wraps <paramref name="stored"/> so that what is written is compressed into it.
    /// Disposing the result finishes the compressed format (zstd frame end, gzip trailer,
    /// zip central directory) but leaves <paramref name="stored"/> open.
    /// <paramref name="level"/> (in <see cref="LevelRange"/>) overrides the codec's fast default.
    /// </summary>
    public static Stream Compress(Compression compression, Stream stored, string zipEntryName, int? level = null) => compression switch
    {
        Compression.None => new NonClosingStream(stored),
        Compression.Gzip => level is { } gzipLevel
            ? new GZipStream(stored, new ZLibCompressionOptions { CompressionLevel = gzipLevel }, leaveOpen: true)
            : new GZipStream(stored, CompressionLevel.Fastest, leaveOpen: true),
        Compression.Zstd => level is { } zstdLevel
            ? ZstdWithChecksum(stored, zstdLevel, NativeZstd.IsAvailable)
            : ZstdWithChecksum(stored, ZstdLevel, NativeZstd.IsAvailable, ZstdDefaultMinMatch),
        Compression.Zip => new ZipEntryWriteStream(stored, zipEntryName),
        _ => throw new ArgumentOutOfRangeException(nameof(compression)),
    };

    /// <summary>
    /// zstd frames carry their content checksum (XXH64; `zstd -lv` shows "Check: XXH64"), so a
    /// damaged file fails to decode also where the manifest is gone or `zstd -d` reads it.
    /// Compression runs on worker threads while this thread feeds it, so that it is not what bounds a
    /// backup; the output is an ordinary zstd stream. Each worker holds about two jobs' worth of
    /// buffers: at most 4 workers of 4 MiB jobs keep that near 40 MB on any machine (one per core
    /// and the default 8 MiB job took 20 MB per core; 4 MiB jobs cost 2% in size, no speed here).
    /// </summary>
    internal static Stream ZstdWithChecksum(Stream stored, int level, bool native, int? minMatch = null)
    {
        var workers = Math.Min(Environment.ProcessorCount, MaxZstdWorkers);
        if (native)
        {
            return new NativeZstdEncodeStream(stored, level, workers, ZstdJobBytes, minMatch);
        }
        var stream = new CompressionStream(stored, level, leaveOpen: true);
        if (minMatch is { } bytes)
        {
            stream.SetParameter(ZstdSharp.Unsafe.ZSTD_cParameter.ZSTD_c_minMatch, bytes);
        }
        stream.SetParameter(ZstdSharp.Unsafe.ZSTD_cParameter.ZSTD_c_checksumFlag, 1);
        stream.SetParameter(ZstdSharp.Unsafe.ZSTD_cParameter.ZSTD_c_nbWorkers, workers);
        stream.SetParameter(ZstdSharp.Unsafe.ZSTD_cParameter.ZSTD_c_jobSize, ZstdJobBytes);
        return stream;
    }

    /// <summary>Wraps <paramref name="stored"/> (disposed with the result) to read the plain dump out of it.</summary>
    public static Stream Decompress(Compression compression, Stream stored) => compression switch
    {
        Compression.None => stored,
        Compression.Gzip => new GzipDecodeStream(new GZipStream(stored, CompressionMode.Decompress)),
        Compression.Zstd => ZstdDecoder(stored, NativeZstd.IsAvailable),
        Compression.Zip => ZipEntryReadStream.Open(stored),
        _ => throw new ArgumentOutOfRangeException(nameof(compression)),
    };

    /// <summary>libzstd where the host has it (<see cref="NativeZstd"/>), else the managed port.</summary>
    internal static Stream ZstdDecoder(Stream stored, bool native) =>
        native ? new NativeZstdDecodeStream(stored) : new DecompressionStream(stored, leaveOpen: false);

    /// <summary>Sniffs the compression from the first bytes of a file (for files whose name says nothing).</summary>
    public static Compression Sniff(ReadOnlySpan<byte> head) => head switch
    {
        [0x1f, 0x8b, ..] => Compression.Gzip,
        [0x28, 0xb5, 0x2f, 0xfd, ..] => Compression.Zstd,
        [>= 0x50 and <= 0x5f, 0x2a, 0x4d, 0x18, ..] => Compression.Zstd, // a skippable frame first, as pzstd writes
        [0x50, 0x4b, 0x03, 0x04, ..] or [0x50, 0x4b, 0x05, 0x06, ..] => Compression.Zip, // an entry, or an empty archive
        _ => Compression.None,
    };

    /// <summary>The bytes to read for <see cref="Describe"/> (a tar's magic is at 257).</summary>
    public const int DescribeBytes = 512;

    /// <summary>
    /// Why a stored file's first bytes are not what its name's codec says, e.g. "not gzip data, as
    /// its name says, but plain text (an uncompressed dump?)"; null when they are. Said instead of a
    /// decoder's own complaint ("unsupported compression method").
    /// </summary>
    public static string? NotAsNamed(Compression named, ReadOnlySpan<byte> head) =>
        Sniff(head) == named ? null : $"not {DataName(named)}, as its name says, but {Describe(head)}";

    private static string DataName(Compression compression) => compression switch
    {
        Compression.Gzip => "gzip data",
        Compression.Zstd => "zstd data",
        Compression.Zip => "a zip archive",
        _ => "uncompressed data",
    };

    /// <summary>What a file's first bytes look like, in words.</summary>
    private static string Describe(ReadOnlySpan<byte> head)
    {
        if (Sniff(head) is not Compression.None and var compression)
        {
            return DataName(compression);
        }
        if (head.IsEmpty)
        {
            return "an empty file";
        }
        if (head.Length > 262 && head[257..262].SequenceEqual("ustar"u8))
        {
            return "a tar archive";
        }
        if (head.StartsWith("-----BEGIN AGE ENCRYPTED FILE-----"u8))
        {
            return "an ASCII-armored age file (use binary age files)";
        }
        // Text: no control bytes but whitespace (any 8-bit encoding, as old dumps may be latin1).
        foreach (var b in head)
        {
            if (b < 0x20 && b is not ((byte)'\t' or (byte)'\n' or (byte)'\r' or (byte)'\f'))
            {
                return "data of an unknown kind";
            }
        }
        return "plain text (an uncompressed dump?)";
    }
}

/// <summary>
/// Reads a gzip stream, saying a damaged one is damaged: .NET reports any bad deflate data, a CRC or length
/// mismatch at the end too, as "compressed using an unsupported compression method".
/// </summary>
internal sealed class GzipDecodeStream(GZipStream inner) : WrapperStream(inner)
{
    private const string Damaged = "the data is damaged (a CRC mismatch or a corrupt block)";

    public override int Read(Span<byte> buffer)
    {
        try
        {
            return Inner.Read(buffer);
        }
        catch (InvalidDataException e)
        {
            throw new InvalidDataException(Damaged, e);
        }
    }

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        try
        {
            return await Inner.ReadAsync(buffer, cancellationToken).ConfigureAwait(false);
        }
        catch (InvalidDataException e)
        {
            throw new InvalidDataException(Damaged, e);
        }
    }
}
