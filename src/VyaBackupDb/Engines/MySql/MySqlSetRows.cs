using System.Buffers;
using System.Globalization;
using System.Runtime.CompilerServices;
using System.Text;
using MySqlConnector;
using VyaBackupDb.Errors;

namespace VyaBackupDb.Engines.MySql;

/// <summary>How a column's value is read and written as a SQL literal.</summary>
internal enum ColumnKind
{
    /// <summary>Integers, DECIMAL, DOUBLE, YEAR: the server's text, unquoted (exact for all of them).</summary>
    Number,

    /// <summary>FLOAT: read as the DOUBLE it converts to exactly (its own text has 6 digits and does not round-trip).</summary>
    Float,

    /// <summary>Character data, ENUM, SET, JSON, temporal and other text-shaped types: utf8mb4 bytes, quoted and escaped.</summary>
    Text,

    /// <summary>BINARY, VARBINARY, BLOBs, geometry: X'hex' (empty values included).</summary>
    Binary,

    /// <summary>BIT: b'0101'.</summary>
    Bit,
}

/// <summary>
/// One column of a table's data, as the parallel dump reads it. <paramref name="Utf8"/>: its text is
/// UTF-8 as the server has it, read without conversion.
/// </summary>
internal sealed record SetColumn(string Name, ColumnKind Kind, bool Invisible, bool Utf8 = false)
{
    /// <summary>A character column stored in UTF-8 (or its ASCII subset), or a date or time (digits and punctuation).</summary>
    public static bool IsUtf8(string dataType, string characterSet) =>
        characterSet is "utf8mb4" or "utf8mb3" or "utf8" or "ascii"
        || dataType.ToLowerInvariant() is "date" or "datetime" or "timestamp" or "time";
}

/// <summary>
/// Reads a table's rows on a connection inside the dump's snapshot and writes them as
/// <c>INSERT INTO `t` VALUES (...),(...);</c> statements.
/// </summary>
/// <remarks>
/// Every select-list item is a binary string: the driver hands back the bytes the server
/// formatted (the same text the text protocol gives mysqldump), never a parsed .NET value, and
/// character columns come as utf8mb4 whatever their own character set (the restore converts back,
/// as it does for mysqldump's output). Quoting is done here, not with the server's QUOTE()/HEX()
/// in a CONCAT per row: that costs the server more than SELECT * does, on the same two cores as
/// this loop, and a QUOTE() or HEX() longer than max_allowed_packet is NULL, so a blob over half
/// of it could not be dumped at all. Server CPU for a 1,000,000-row sysbench table (MariaDB
/// 10.11): SELECT * 0.8-1.0 s, this select 0.8-1.0 s, with CAST(CONVERT(c USING utf8mb4) AS
/// BINARY) for its utf8mb4 columns 1.2-1.6 s; for a table of four date and time columns, 0.3-0.5,
/// 0.6 and 1.0-1.3 s.
/// </remarks>
internal sealed class MySqlTableReader
{
    /// <summary>The fixed header of every data chunk (docs/backup-format.md): what mysqldump's header sets for its data.</summary>
    public static readonly byte[] ChunkHeader =
        "SET NAMES utf8mb4;\nSET time_zone = '+00:00';\nSET sql_mode = 'NO_AUTO_VALUE_ON_ZERO';\nSET foreign_key_checks = 0, unique_checks = 0;\n"u8.ToArray();

    /// <summary>The line a chunk of a system-versioned table's history adds to the header: its rows carry their own row start and end.</summary>
    public static readonly byte[] HistoryHeader = "SET system_versioning_insert_history = 1;\n"u8.ToArray();

    /// <summary>One INSERT statement grows to about this much (a row may be larger): what mysqldump's extended inserts are.</summary>
    public const int StatementBytes = 1 << 20;

    private static readonly SearchValues<byte> Escaped = SearchValues.Create("\0\n\r\u001a'\\"u8);

    private readonly string _table;
    private readonly byte[] _insert;
    private readonly byte[] _header;
    private readonly IReadOnlyList<SetColumn> _columns;
    private readonly bool _history;

    /// <param name="history">A system-versioned table read with every row version (the last two columns are its row start and end).</param>
    public MySqlTableReader(string table, IReadOnlyList<SetColumn> columns, bool columnList, bool history = false)
    {
        _table = table;
        _columns = columns;
        _history = history;
        _header = history ? [.. ChunkHeader, .. HistoryHeader] : ChunkHeader;
        var insert = new StringBuilder("INSERT INTO ").Append(MySqlEngine.QuoteIdentifier(table));
        if (columnList)
        {
            insert.Append(" (").AppendJoin(",", columns.Select(c => MySqlEngine.QuoteIdentifier(c.Name))).Append(')');
        }
        _insert = Encoding.UTF8.GetBytes(insert.Append(" VALUES ").ToString());
    }

    /// <summary>The SELECT that reads the rows of the table in <paramref name="database"/> (within <paramref name="where"/>, when given).</summary>
    public string Select(string database, string? where)
    {
        var sql = new StringBuilder("SELECT ");
        for (var i = 0; i < _columns.Count; i++)
        {
            var name = MySqlEngine.QuoteIdentifier(_columns[i].Name);
            sql.Append(i == 0 ? "" : ", ").Append(_columns[i].Kind switch
            {
                ColumnKind.Float => $"CAST(CAST({name} AS DOUBLE) AS BINARY)",
                // CONVERT ... USING binary hands the server's text over as it is; a conversion to utf8mb4 that
                // changes nothing, then a CAST to BINARY, cost the server half as much again as SELECT * (or twice).
                ColumnKind.Text when _columns[i].Utf8 => $"CONVERT({name} USING binary)",
                ColumnKind.Text => $"CAST(CONVERT({name} USING utf8mb4) AS BINARY)",
                ColumnKind.Bit => $"CAST(BIN({name}) AS BINARY)",
                _ => $"CAST({name} AS BINARY)",
            });
        }
        sql.Append(" FROM ").Append(MySqlEngine.QuoteIdentifier(database)).Append('.').Append(MySqlEngine.QuoteIdentifier(_table));
        if (_history)
        {
            sql.Append(" FOR SYSTEM_TIME ALL");
        }
        if (where is not null)
        {
            sql.Append(" WHERE ").Append(where);
        }
        return sql.ToString();
    }

    /// <summary>
    /// Streams the rows of <paramref name="select"/> into chunks of about <paramref name="chunkBytes"/>,
    /// handing each full one (and the last) to <paramref name="emit"/> with its row count.
    /// </summary>
    public async Task ReadAsync(
        MySqlConnection connection,
        string select,
        ChunkBuffer chunk,
        Func<ChunkBuffer, long, CancellationToken, Task> emit,
        int chunkBytes,
        CancellationToken cancellationToken)
    {
        await using var command = new MySqlCommand(select, connection) { CommandTimeout = 0 };
        var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        // Cancelled as the driver would on a cancelled read (KILL QUERY), but registered once for the query
        // rather than once per row (the backup took 7 % more CPU so).
        await using var cancel = cancellationToken.UnsafeRegister(state => ((MySqlCommand)state!).Cancel(), command);
        var scratch = ArrayPool<byte>.Shared.Rent(1 << 16);
        try
        {
            long rows = 0;
            var statementStart = -1L;
            while (await reader.ReadAsync(CancellationToken.None).ConfigureAwait(false))
            {
                if (statementStart < 0 || chunk.Length - statementStart >= StatementBytes)
                {
                    if (statementStart >= 0)
                    {
                        chunk.Append(";\n"u8);
                        if (chunk.Length >= chunkBytes)
                        {
                            await emit(chunk, rows, cancellationToken).ConfigureAwait(false);
                            rows = 0;
                        }
                    }
                    if (chunk.Length == 0)
                    {
                        chunk.Append(_header);
                    }
                    statementStart = chunk.Length;
                    chunk.Append(_insert);
                }
                else
                {
                    chunk.Append((byte)',');
                }
                AppendRow(reader, chunk, ref scratch);
                rows++;
            }
            await reader.DisposeAsync().ConfigureAwait(false);
            await RequireNothingCutAsync(connection, cancellationToken).ConfigureAwait(false);
            if (statementStart >= 0)
            {
                chunk.Append(";\n"u8);
                await emit(chunk, rows, cancellationToken).ConfigureAwait(false);
            }
        }
        catch (MySqlException e) when (cancellationToken.IsCancellationRequested)
        {
            throw new OperationCanceledException("the read was cancelled", e, cancellationToken);
        }
        finally
        {
            await reader.DisposeAsync().ConfigureAwait(false);
            ArrayPool<byte>.Shared.Return(scratch);
        }
    }

    /// <summary>
    /// The server gives NULL, with no more than a warning, for a CAST or CONVERT longer than its max_allowed_packet
    /// (a blob over 16 MiB at the default): that NULL would be backed up in place of the value.
    /// </summary>
    private async Task RequireNothingCutAsync(MySqlConnection connection, CancellationToken cancellationToken)
    {
        var cut = false;
        await using (var warnings = new MySqlCommand("SHOW WARNINGS", connection))
        await using (var reader = await warnings.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false))
        {
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                cut |= Convert.ToInt32(reader.GetValue(1), CultureInfo.InvariantCulture) == PacketTooSmall;
            }
        }
        if (cut)
        {
            var limit = await MySqlEngine.Scalar(connection, "SELECT @@max_allowed_packet", cancellationToken).ConfigureAwait(false);
            throw new OperationFailedException($"a value of table {MySqlEngine.QuoteIdentifier(_table)} is larger than the server's "
                + $"max_allowed_packet ({limit} bytes), which the parallel engine reads every value through: raise it "
                + "(SET GLOBAL max_allowed_packet, at most 1 GB) or back this database up with engine: dump");
        }
    }

    /// <summary>ER_WARN_ALLOWED_PACKET_OVERFLOWED: "Result of ... was larger than max_allowed_packet - truncated".</summary>
    private const int PacketTooSmall = 1301;

    /// <summary>One row as a tuple: hot from the first row (no tier-0 code), so not in the async method.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void AppendRow(MySqlDataReader reader, ChunkBuffer chunk, ref byte[] scratch)
    {
        chunk.Append((byte)'(');
        for (var i = 0; i < _columns.Count; i++)
        {
            if (i > 0)
            {
                chunk.Append((byte)',');
            }
            if (reader.IsDBNull(i))
            {
                chunk.Append("NULL"u8);
                continue;
            }
            // One copy for a value that fits the scratch buffer (nearly all); the driver checks the column on every call.
            var length = (int)reader.GetBytes(i, 0, scratch, 0, scratch.Length);
            if (length == scratch.Length)
            {
                length = (int)reader.GetBytes(i, 0, null, 0, 0);
                if (length > scratch.Length)
                {
                    ArrayPool<byte>.Shared.Return(scratch);
                    scratch = ArrayPool<byte>.Shared.Rent(length);
                    reader.GetBytes(i, 0, scratch, 0, length);
                }
            }
            WriteValue(chunk, _columns[i].Kind, scratch.AsSpan(0, length));
        }
        chunk.Append((byte)')');
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void WriteValue(ChunkBuffer chunk, ColumnKind kind, ReadOnlySpan<byte> value)
    {
        switch (kind)
        {
            case ColumnKind.Number or ColumnKind.Float:
                chunk.Append(value);
                break;
            case ColumnKind.Binary:
            {
                var span = chunk.GetSpan(3 + (value.Length * 2));
                span[0] = (byte)'X';
                span[1] = (byte)'\'';
                Convert.TryToHexString(value, span[2..], out var written);
                span[2 + written] = (byte)'\'';
                chunk.Advance(3 + written);
                break;
            }
            case ColumnKind.Bit:
                chunk.Append("b'"u8);
                chunk.Append(value);
                chunk.Append("'"u8);
                break;
            default:
            {
                // mysql_real_escape_string's set: the text stays safe for any client, even without --binary-mode.
                var span = chunk.GetSpan(2 + (value.Length * 2));
                var n = 0;
                span[n++] = (byte)'\'';
                while (true)
                {
                    var at = value.IndexOfAny(Escaped);
                    if (at < 0)
                    {
                        value.CopyTo(span[n..]);
                        n += value.Length;
                        break;
                    }
                    value[..at].CopyTo(span[n..]);
                    n += at;
                    span[n++] = (byte)'\\';
                    span[n++] = value[at] switch
                    {
                        0 => (byte)'0',
                        (byte)'\n' => (byte)'n',
                        (byte)'\r' => (byte)'r',
                        0x1a => (byte)'Z',
                        var b => b,
                    };
                    value = value[(at + 1)..];
                }
                span[n++] = (byte)'\'';
                chunk.Advance(n);
                break;
            }
        }
    }

    /// <summary>The kind of a column from information_schema.COLUMNS.DATA_TYPE.</summary>
    public static ColumnKind KindOf(string dataType) => dataType.ToLowerInvariant() switch
    {
        "tinyint" or "smallint" or "mediumint" or "int" or "integer" or "bigint" or "decimal" or "numeric" or "double" or "real" or "year" => ColumnKind.Number,
        "float" => ColumnKind.Float,
        "bit" => ColumnKind.Bit,
        "binary" or "varbinary" or "tinyblob" or "blob" or "mediumblob" or "longblob"
            or "geometry" or "point" or "linestring" or "polygon" or "multipoint" or "multilinestring" or "multipolygon"
            or "geometrycollection" or "geomcollection" => ColumnKind.Binary,
        _ => ColumnKind.Text,
    };
}

/// <summary>A growable byte buffer from the shared pool: one data chunk being built.</summary>
internal sealed class ChunkBuffer : IDisposable
{
    private byte[] _buffer;

    public ChunkBuffer(int capacity) => _buffer = ArrayPool<byte>.Shared.Rent(capacity);

    public int Length { get; private set; }

    public ReadOnlyMemory<byte> Memory => _buffer.AsMemory(0, Length);

    /// <summary>The buffer itself (its first <see cref="Length"/> bytes are the chunk), valid until the next append.</summary>
    public byte[] Buffer => _buffer;

    public void Clear() => Length = 0;

    public void Append(ReadOnlySpan<byte> bytes)
    {
        bytes.CopyTo(GetSpan(bytes.Length));
        Length += bytes.Length;
    }

    public void Append(byte value)
    {
        GetSpan(1)[0] = value;
        Length++;
    }

    /// <summary>Room for <paramref name="size"/> more bytes; small enough to inline into the rows loop, which calls it for every value.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public Span<byte> GetSpan(int size)
    {
        if (_buffer.Length - Length < size)
        {
            Grow(size);
        }
        return _buffer.AsSpan(Length);
    }

    private void Grow(int size)
    {
        var bigger = ArrayPool<byte>.Shared.Rent((int)Math.Min(Array.MaxLength, Math.Max((long)_buffer.Length * 2, (long)Length + size)));
        _buffer.AsSpan(0, Length).CopyTo(bigger);
        ArrayPool<byte>.Shared.Return(_buffer);
        _buffer = bigger;
    }

    public void Advance(int count) => Length += count;

    public void Dispose()
    {
        ArrayPool<byte>.Shared.Return(_buffer);
        _buffer = [];
    }
}
