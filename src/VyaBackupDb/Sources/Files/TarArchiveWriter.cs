using System.Buffers;
using System.Globalization;
using System.Text;

namespace VyaBackupDb.Sources.Files;

/// <summary>An entry's metadata as tar records it.</summary>
internal readonly record struct TarMeta(int Mode, uint Uid, uint Gid, string? UserName, string? GroupName, long MtimeSeconds, uint MtimeNanos)
{
    public static TarMeta Of(FileStat stat) =>
        new(stat.Permissions, stat.Uid, stat.Gid, Posix.UserName(stat.Uid), Posix.GroupName(stat.Gid), stat.MtimeSeconds, stat.MtimeNanos);
}

/// <summary>
/// Writes a POSIX.1-2001 (pax) tar as GNU tar's --format=posix does: ustar headers, with an
/// extended header ('x') before an entry only for what ustar cannot hold (names over 100/155
/// bytes or not ASCII, sub-second or out-of-range times, large ids and sizes, long or non-ASCII
/// owner names). Output goes through one buffer, in 512-byte blocks, and ends with two zero
/// blocks padded to GNU tar's 10 KiB record.
/// </summary>
internal sealed class TarArchiveWriter : IDisposable
{
    public const int BlockSize = 512;
    private const int RecordSize = 20 * BlockSize;
    private const int BufferSize = 1 << 20;
    private const long MaxOctal7 = 0x1FFFFF; // 7 octal digits
    private const long MaxOctal11 = 0x1FFFFFFFF; // 11 octal digits

    private readonly Stream _output;
    private readonly byte[] _buffer = ArrayPool<byte>.Shared.Rent(BufferSize);
    private int _used;
    private long _written;
    private bool _finished;

    public TarArchiveWriter(Stream output)
    {
        _output = output;
    }

    /// <summary>Bytes of archive produced so far (written or buffered).</summary>
    public long Position => _written + _used;

    public void WriteDirectory(string name, TarMeta meta) =>
        WriteHeader(name.EndsWith('/') ? name : name + "/", (byte)'5', meta, size: 0, linkName: null);

    public void WriteSymlink(string name, string target, TarMeta meta) => WriteHeader(name, (byte)'2', meta, size: 0, linkName: target);

    public void WriteHardLink(string name, string target, TarMeta meta) => WriteHeader(name, (byte)'1', meta, size: 0, linkName: target);

    /// <summary>
    /// Writes a regular file of <paramref name="size"/> bytes, filled by <paramref name="read"/>
    /// (buffer, offset in the file → bytes read, 0 at its end). Exactly <paramref name="size"/>
    /// bytes are stored: a file that ends early is padded with zeros, and no more than
    /// <paramref name="size"/> bytes are read. Returns the bytes <paramref name="read"/> gave.
    /// </summary>
    public long WriteFile(string name, TarMeta meta, long size, Func<Memory<byte>, long, int> read, CancellationToken cancellationToken)
    {
        WriteHeader(name, (byte)'0', meta, size, linkName: null);
        long done = 0;
        while (done < size)
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (_used == BufferSize)
            {
                Flush();
            }
            var n = read(_buffer.AsMemory(_used, (int)Math.Min(BufferSize - _used, size - done)), done);
            if (n == 0)
            {
                break;
            }
            _used += n;
            done += n;
        }
        // Shorter than its header says: zeros keep the archive readable; the caller reports it.
        WriteZeros(size - done);
        PadToBlock();
        return done;
    }

    /// <summary>The end of the archive: two zero blocks, then zeros to a whole record.</summary>
    public void Finish()
    {
        if (_finished)
        {
            return;
        }
        var end = Position + 2 * BlockSize;
        var padded = (end + RecordSize - 1) / RecordSize * RecordSize;
        WriteZeros(padded - Position);
        Flush();
        _finished = true;
    }

    public void Flush()
    {
        if (_used > 0)
        {
            _output.Write(_buffer, 0, _used);
            _written += _used;
            _used = 0;
        }
    }

    public void Dispose() => ArrayPool<byte>.Shared.Return(_buffer);

    private void WriteHeader(string name, byte type, TarMeta meta, long size, string? linkName)
    {
        var nameBytes = Encoding.UTF8.GetBytes(name);
        var linkBytes = linkName is null ? [] : Encoding.UTF8.GetBytes(linkName);
        var longName = nameBytes.Length > 100 || !IsAscii(nameBytes);
        var longLink = linkBytes.Length > 100 || !IsAscii(linkBytes);
        // .NET's TarReader reads pax records line by line, so a record whose value holds a newline
        // makes it refuse the whole archive; and it refuses an entry with both pax and GNU headers.
        // Such a name goes in a GNU long-name header (GNU tar and bsdtar read it too), and the entry
        // has no pax header: its numbers in ustar's fields (base-256 when too large), its time to the second.
        if ((longName && name.Contains('\n', StringComparison.Ordinal)) || (longLink && linkName!.Contains('\n', StringComparison.Ordinal)))
        {
            if (longName)
            {
                WriteGnuLongName((byte)'L', nameBytes);
            }
            if (longLink)
            {
                WriteGnuLongName((byte)'K', linkBytes);
            }
            WriteUstar(Fallback(nameBytes, 100), type, meta, size, Fallback(linkBytes, 100),
                Fallback(Encoding.UTF8.GetBytes(meta.UserName ?? ""), 31), Fallback(Encoding.UTF8.GetBytes(meta.GroupName ?? ""), 31), base256: true);
            return;
        }

        var pax = new List<(string Key, string Value)>();
        // A long name goes in a pax record, never in ustar's prefix field (as GNU tar does): .NET's
        // TarReader before dotnet/runtime#125344 ignores the prefix of an entry with a pax header.
        var ustarName = nameBytes;
        if (longName)
        {
            pax.Add(("path", name));
            ustarName = Fallback(nameBytes, 100);
        }
        if (longLink)
        {
            pax.Add(("linkpath", linkName!));
            linkBytes = Fallback(linkBytes, 100);
        }
        if (size > MaxOctal11)
        {
            pax.Add(("size", size.ToString(CultureInfo.InvariantCulture)));
        }
        if (meta.Uid > MaxOctal7)
        {
            pax.Add(("uid", meta.Uid.ToString(CultureInfo.InvariantCulture)));
        }
        if (meta.Gid > MaxOctal7)
        {
            pax.Add(("gid", meta.Gid.ToString(CultureInfo.InvariantCulture)));
        }
        var uname = OwnerName(meta.UserName, "uname", pax);
        var gname = OwnerName(meta.GroupName, "gname", pax);
        if (meta.MtimeNanos != 0 || meta.MtimeSeconds < 0 || meta.MtimeSeconds > MaxOctal11)
        {
            pax.Add(("mtime", PaxTime(meta.MtimeSeconds, meta.MtimeNanos)));
        }

        if (pax.Count > 0)
        {
            var records = PaxRecords(pax);
            var paxName = Fallback(Encoding.UTF8.GetBytes(PaxHeaderName(name)), 100);
            WriteUstar(paxName, (byte)'x', new TarMeta(0x1A4, 0, 0, null, null, Math.Clamp(meta.MtimeSeconds, 0, MaxOctal11), 0),
                records.Length, []);
            WriteBytes(records);
            PadToBlock();
        }
        WriteUstar(ustarName, type, meta, size, linkBytes, uname, gname);
    }

    /// <summary>
    /// One ustar header. A number too large for its octal field is written as 0 (a pax record holds
    /// it), or with <paramref name="base256"/> in GNU's base-256 form (an entry without pax header).
    /// </summary>
    private void WriteUstar(byte[] name, byte type, TarMeta meta, long size, byte[] linkName, byte[]? uname = null, byte[]? gname = null, bool base256 = false)
    {
        EnsureRoom(BlockSize);
        var h = _buffer.AsSpan(_used, BlockSize);
        h.Clear();
        name.CopyTo(h[..100]);
        Octal(h.Slice(100, 8), meta.Mode & 0xFFF);
        Number(h.Slice(108, 8), meta.Uid, MaxOctal7, base256);
        Number(h.Slice(116, 8), meta.Gid, MaxOctal7, base256);
        Number(h.Slice(124, 12), size, MaxOctal11, base256);
        Number(h.Slice(136, 12), meta.MtimeSeconds, MaxOctal11, base256);
        h[156] = type;
        linkName.CopyTo(h.Slice(157, 100));
        "ustar\0"u8.CopyTo(h.Slice(257, 6));
        "00"u8.CopyTo(h.Slice(263, 2));
        uname?.CopyTo(h.Slice(265, 32));
        gname?.CopyTo(h.Slice(297, 32));
        h.Slice(148, 8).Fill((byte)' ');
        var sum = 0;
        foreach (var b in h)
        {
            sum += b;
        }
        // Six octal digits, NUL, space: as GNU tar writes it.
        Octal(h.Slice(148, 7), sum);
        h[155] = (byte)' ';
        _used += BlockSize;
    }

    /// <summary>A name in ustar's 32 bytes, else (too long or not ASCII) in a pax record with a cut copy in ustar.</summary>
    private static byte[]? OwnerName(string? name, string key, List<(string, string)> pax)
    {
        if (name is null)
        {
            return null;
        }
        var bytes = Encoding.UTF8.GetBytes(name);
        if (bytes.Length < 32 && IsAscii(bytes))
        {
            return bytes;
        }
        pax.Add((key, name));
        return Fallback(bytes, 31);
    }

    /// <summary>What stands in a ustar field when the real value is in a pax record: ASCII, cut to fit.</summary>
    private static byte[] Fallback(byte[] value, int max)
    {
        var ascii = value.Select(b => b < 0x80 && b != 0 ? b : (byte)'_').ToArray();
        return ascii.Length <= max ? ascii : ascii[..max];
    }

    private static bool IsAscii(byte[] bytes) => bytes.All(b => b is > 0 and < 0x80);

    /// <summary>GNU tar's default for the extended header's own name: %d/PaxHeaders/%f.</summary>
    private static string PaxHeaderName(string name)
    {
        var trimmed = name.TrimEnd('/');
        var slash = trimmed.LastIndexOf('/');
        return slash < 0 ? "PaxHeaders/" + trimmed : trimmed[..slash] + "/PaxHeaders/" + trimmed[(slash + 1)..];
    }

    private static string PaxTime(long seconds, uint nanos)
    {
        if (nanos == 0)
        {
            return seconds.ToString(CultureInfo.InvariantCulture);
        }
        // A negative time with a fraction: -1.25 is 1.25 s before the epoch, i.e. seconds = -2, nanos = 0.75e9.
        var (whole, fraction) = seconds < 0 ? (seconds + 1, 1_000_000_000 - nanos) : (seconds, nanos);
        var sign = seconds < 0 && whole == 0 ? "-" : "";
        return sign + whole.ToString(CultureInfo.InvariantCulture) + "." + fraction.ToString("D9", CultureInfo.InvariantCulture).TrimEnd('0');
    }

    /// <summary>"LEN KEY=VALUE\n" records; LEN counts the whole record, its own digits included.</summary>
    private static byte[] PaxRecords(List<(string Key, string Value)> records)
    {
        using var buffer = new MemoryStream();
        foreach (var (key, value) in records)
        {
            var body = Encoding.UTF8.GetByteCount(key) + Encoding.UTF8.GetByteCount(value) + 3; // ' ', '=', '\n'
            var length = body + 1;
            while (length != body + length.ToString(CultureInfo.InvariantCulture).Length)
            {
                length = body + length.ToString(CultureInfo.InvariantCulture).Length;
            }
            buffer.Write(Encoding.UTF8.GetBytes($"{length.ToString(CultureInfo.InvariantCulture)} {key}={value}\n"));
        }
        return buffer.ToArray();
    }

    private static void Number(Span<byte> field, long value, long maxOctal, bool base256)
    {
        if (value is >= 0 && value <= maxOctal)
        {
            Octal(field, value);
        }
        else if (base256)
        {
            // Big-endian two's complement; the first byte's high bit marks the form (0x80 or 0xFF).
            for (var i = field.Length - 1; i > 0; i--)
            {
                field[i] = (byte)value;
                value >>= 8;
            }
            field[0] = value < 0 ? (byte)0xFF : (byte)0x80;
        }
        else
        {
            Octal(field, 0);
        }
    }

    /// <summary>A GNU 'L' (name) or 'K' (link) header: the whole name, NUL-terminated, as the next entry's.</summary>
    private void WriteGnuLongName(byte type, byte[] value)
    {
        var data = new byte[value.Length + 1];
        value.CopyTo(data, 0);
        WriteUstar("././@LongLink"u8.ToArray(), type, new TarMeta(0x1A4, 0, 0, null, null, 0, 0), data.Length, []);
        WriteBytes(data);
        PadToBlock();
    }

    private static void Octal(Span<byte> field, long value)
    {
        // Digits fill all but the last byte, zero-padded; the last byte is NUL.
        var digits = field.Length - 1;
        for (var i = digits - 1; i >= 0; i--)
        {
            field[i] = (byte)('0' + (value & 7));
            value >>= 3;
        }
        field[digits] = 0;
    }

    private void WriteBytes(ReadOnlySpan<byte> bytes)
    {
        while (!bytes.IsEmpty)
        {
            if (_used == BufferSize)
            {
                Flush();
            }
            var n = Math.Min(bytes.Length, BufferSize - _used);
            bytes[..n].CopyTo(_buffer.AsSpan(_used));
            _used += n;
            bytes = bytes[n..];
        }
    }

    private void WriteZeros(long count)
    {
        while (count > 0)
        {
            if (_used == BufferSize)
            {
                Flush();
            }
            var n = (int)Math.Min(count, BufferSize - _used);
            _buffer.AsSpan(_used, n).Clear();
            _used += n;
            count -= n;
        }
    }

    private void PadToBlock()
    {
        var rest = (int)(Position % BlockSize);
        if (rest != 0)
        {
            WriteZeros(BlockSize - rest);
        }
    }

    private void EnsureRoom(int bytes)
    {
        if (BufferSize - _used < bytes)
        {
            Flush();
        }
    }
}
