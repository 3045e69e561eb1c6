using System.Globalization;
using System.Text;

namespace VyaBackupDb.Sources.Files;

/// <summary>
/// A tar stream passed through unchanged to a TarReader, whose 512-byte headers it follows on the
/// way: a pax extended header or a GNU long name/link over <see cref="MaxMetadataBytes"/> is
/// refused before the reader sees it (System.Formats.Tar reads such a block whole into memory,
/// so a 1.5 GB one in a 48 KB compressed file took 1.6 GB). It follows the headers as the reader
/// does: data rounded up to 512 bytes, and a pax 'size' record giving the next entry's size.
/// </summary>
internal sealed class TarMetadataLimit(Stream inner) : Stream
{
    public const int MaxMetadataBytes = 1 << 20;
    private const int Block = 512;

    private readonly byte[] _header = new byte[Block];
    private int _headerFill;
    private long _dataLeft;          // the current entry's data and padding still to pass
    private MemoryStream? _pax;      // an 'x' header's records as they pass (at most MaxMetadataBytes)
    private long _paxLeft;
    private long? _nextSize;         // the size an 'x' header gives the entry after it
    private int _gnuMetadata;        // L/K headers just read: an 'x' right after them is read as an entry, its 'size' not applied

    public override bool CanRead => true;

    public override bool CanSeek => false;

    public override bool CanWrite => false;

    public override long Length => throw new NotSupportedException();

    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    /// <summary>The stream under this one failed (decoding, decryption, storage): not the archive's own fault.</summary>
    public bool StreamFailed { get; private set; }

    public override int Read(Span<byte> buffer)
    {
        int n;
        try
        {
            n = inner.Read(buffer);
        }
        catch
        {
            StreamFailed = true;
            throw;
        }
        Follow(buffer[..n]);
        return n;
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        int n;
        try
        {
            n = await inner.ReadAsync(buffer, cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            StreamFailed = true;
            throw;
        }
        Follow(buffer.Span[..n]);
        return n;
    }

    public override void Flush()
    {
    }

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    private void Follow(ReadOnlySpan<byte> bytes)
    {
        while (bytes.Length > 0)
        {
            if (_dataLeft > 0)
            {
                var n = (int)Math.Min(_dataLeft, bytes.Length);
                if (_pax is not null)
                {
                    var take = (int)Math.Min(_paxLeft, n);
                    _pax.Write(bytes[..take]);
                    _paxLeft -= take;
                    if (_paxLeft == 0)
                    {
                        _nextSize = PaxSize(_pax.ToArray());
                        _pax = null;
                    }
                }
                _dataLeft -= n;
                bytes = bytes[n..];
                continue;
            }
            var m = Math.Min(Block - _headerFill, bytes.Length);
            bytes[..m].CopyTo(_header.AsSpan(_headerFill));
            _headerFill += m;
            bytes = bytes[m..];
            if (_headerFill == Block)
            {
                _headerFill = 0;
                OnHeader(_header);
            }
        }
    }

    private void OnHeader(ReadOnlySpan<byte> header)
    {
        var checksum = header.Slice(148, 8);
        if (!checksum.ContainsAnyExcept((byte)0) || Octal(checksum) == 0)
        {
            return; // an end block: the reader stops here
        }
        var type = (char)header[156];
        if (type == 'S')
        {
            var name = header[..100];
            throw Sparse($"'{Encoding.UTF8.GetString(name[..(name.IndexOf((byte)0) is var end and >= 0 ? end : name.Length)])}'");
        }
        var metadata = type is 'x' or 'g' or 'L' or 'K';
        var size = Number(header.Slice(124, 12));
        if (_nextSize is { } overridden && !metadata)
        {
            size = overridden;
        }
        _nextSize = null;
        if (metadata && size > MaxMetadataBytes)
        {
            var what = type is 'x' or 'g' ? "pax extended header" : "GNU long name";
            throw new RefusedEntryException($"the archive has a {what} of {size} bytes (over the limit of {MaxMetadataBytes / 1024 / 1024} MiB)");
        }
        // Rounded up to whole blocks; a size near long.MaxValue (a pax record may say so) runs to the stream's end.
        _dataLeft = size > long.MaxValue - Block ? long.MaxValue : (size + Block - 1) / Block * Block;
        if (type == 'x' && _gnuMetadata == 0 && size > 0)
        {
            _pax = new MemoryStream((int)size);
            _paxLeft = size;
        }
        _gnuMetadata = type is 'L' or 'K' ? _gnuMetadata + 1 : 0;
    }

    /// <summary>
    /// The size field, read exactly as System.Formats.Tar reads it (TarHelpers.ParseNumeric):
    /// GNU base-256 after a first byte 0x80 (0xff: negative), else octal up to the first NUL,
    /// spaces trimmed. Read any other way ("\0" + "4000" as 2048 where the reader sees 0) the two
    /// would lose step, and a header this stream skipped could be read whole by the reader.
    /// </summary>
    private static long Number(ReadOnlySpan<byte> field)
    {
        if (field[0] is 0x80 or 0xff)
        {
            if (field[0] == 0xff || field[1..^8].ContainsAnyExcept((byte)0) || (field[^8] & 0x80) != 0)
            {
                throw Malformed(); // negative or over a long: the reader refuses it too
            }
            return System.Buffers.Binary.BinaryPrimitives.ReadInt64BigEndian(field[^8..]);
        }
        return Octal(field);
    }

    /// <summary>Octal up to the first NUL, spaces trimmed (TarHelpers.ParseOctal).</summary>
    private static long Octal(ReadOnlySpan<byte> field)
    {
        var end = field.IndexOf((byte)0);
        var digits = (end < 0 ? field : field[..end]).Trim((byte)' ');
        long value = 0;
        foreach (var b in digits)
        {
            if (b is < (byte)'0' or > (byte)'7' || value > long.MaxValue >> 3)
            {
                throw Malformed();
            }
            value = (value << 3) | (long)(b - '0');
        }
        return value;
    }

    /// <summary>GNU sparse entries: System.Formats.Tar reads the first as an error, later ones with their packed data as the content.</summary>
    private static UnreadableArchiveException Sparse(string what) =>
        new($"{what} is a GNU sparse file (tar --sparse): sparse files are not supported; make the archive without --sparse");

    private static InvalidDataException Malformed() => new("a tar header has a malformed number field");

    /// <summary>The 'size' record of pax extended header data ("LEN size=VALUE\n" records), or null.</summary>
    private static long? PaxSize(byte[] records)
    {
        long? size = null;
        var at = 0;
        while (at < records.Length)
        {
            var space = Array.IndexOf(records, (byte)' ', at);
            if (space < 0 || !int.TryParse(Encoding.ASCII.GetString(records, at, space - at), NumberStyles.None, CultureInfo.InvariantCulture, out var length)
                || length <= space - at || at + length > records.Length)
            {
                break; // malformed: the reader refuses it
            }
            var record = Encoding.UTF8.GetString(records, space + 1, at + length - space - 2);
            if (record.Contains('\n', StringComparison.Ordinal))
            {
                // Valid pax, but System.Formats.Tar splits records at newlines and refuses the archive as damaged.
                throw new UnreadableArchiveException($"a pax record's value holds a newline ('{record.Split('=')[0]}'), which this tar reader cannot "
                    + "read; GNU tar can: extract the decoded archive with tar -x (docs/backup-format.md)");
            }
            if (record.StartsWith("GNU.sparse.", StringComparison.Ordinal))
            {
                throw Sparse("an entry"); // GNU tar's pax sparse formats: the reader would restore the packed data as the file
            }
            if (record.StartsWith("size=", StringComparison.Ordinal) && record.Length > 5)
            {
                size = long.TryParse(record.AsSpan(5), NumberStyles.Integer, CultureInfo.InvariantCulture, out var value) && value >= 0
                    ? value
                    : throw new InvalidDataException("a pax header has a malformed 'size' record");
            }
            at += length;
        }
        return size;
    }
}
