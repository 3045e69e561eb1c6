using System.Buffers;
using System.Runtime.CompilerServices;
using System.Text;

namespace VyaBackupDb.Engines.MySql;

/// <summary>
/// Checks a data chunk of a MySQL backup set before any of it reaches the server: it must be
/// exactly what the parallel dump writes, the fixed header and then only
/// <c>INSERT INTO `t` [(`c`,...)] VALUES (...),(...);</c> statements into one table the schema
/// created, whose values are literals (NULL, numbers, quoted strings, X'hex', b'bits'). Anything
/// else (another statement, a second table, a qualified name, an expression, a comment) refuses
/// the whole chunk: a file from storage is untrusted, and a literal is all a row needs.
/// </summary>
internal static class MySqlChunkCheck
{
    private static readonly SearchValues<byte> StringEnd = SearchValues.Create("'\\"u8);
    private static readonly SearchValues<byte> NotHex = SearchValues.Create("0123456789ABCDEF"u8);
    private static readonly SearchValues<byte> NotBits = SearchValues.Create("01"u8);
    private static readonly SearchValues<byte> NotNumber = SearchValues.Create("0123456789.eE+-"u8);

    /// <summary>The table the chunk fills and the rows it holds; <see cref="DumpFilterException"/> when it is anything else.</summary>
    public static (string Table, long Rows) Check(ReadOnlySpan<byte> chunk, IReadOnlySet<string> tables, string entry)
    {
        var header = MySqlTableReader.ChunkHeader;
        if (!chunk.StartsWith(header))
        {
            throw Refused(entry, "it does not start with the set's header", 0);
        }
        var i = header.Length;
        if (chunk[i..].StartsWith(MySqlTableReader.HistoryHeader))
        {
            // Rows of a system-versioned table's history: allowed to set their own row start and end.
            i += MySqlTableReader.HistoryHeader.Length;
        }
        string? table = null;
        long rows = 0;
        while (i < chunk.Length)
        {
            Expect(chunk, ref i, "INSERT INTO "u8, entry);
            var name = Identifier(chunk, ref i, entry);
            if (table is null)
            {
                if (!tables.Contains(name))
                {
                    throw Refused(entry, $"it names table '{Shown(name)}', which the backup's schema does not create", i);
                }
                table = name;
            }
            else if (name != table)
            {
                throw Refused(entry, "it names a second table", i);
            }
            if (chunk[i..].StartsWith(" ("u8))
            {
                i += 2;
                while (true)
                {
                    Identifier(chunk, ref i, entry);
                    if (At(chunk, i) == ')')
                    {
                        i++;
                        break;
                    }
                    Expect(chunk, ref i, ","u8, entry);
                }
            }
            Expect(chunk, ref i, " VALUES "u8, entry);
            while (true)
            {
                Tuple(chunk, ref i, entry);
                rows++;
                if (At(chunk, i) == ',')
                {
                    i++;
                    continue;
                }
                Expect(chunk, ref i, ";\n"u8, entry);
                break;
            }
        }
        return (table ?? throw Refused(entry, "it holds no rows", i), rows);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Tuple(ReadOnlySpan<byte> chunk, ref int i, string entry)
    {
        Expect(chunk, ref i, "("u8, entry);
        while (true)
        {
            switch (At(chunk, i))
            {
                case 'N':
                    Expect(chunk, ref i, "NULL"u8, entry);
                    break;
                case '\'':
                {
                    i++;
                    while (true)
                    {
                        var at = chunk[i..].IndexOfAny(StringEnd);
                        if (at < 0)
                        {
                            throw Refused(entry, "a string does not end", i);
                        }
                        i += at;
                        if (chunk[i] == '\'')
                        {
                            i++;
                            break;
                        }
                        // Only the escapes the dump writes: the server and LOAD DATA read others apart
                        // ('\%' is 2 bytes to the server, '%' to LOAD DATA; '\N' is 'N' to one, NULL to the other).
                        if (i + 1 >= chunk.Length)
                        {
                            throw Refused(entry, "a string does not end", i);
                        }
                        if (chunk[i + 1] is not ((byte)'0' or (byte)'n' or (byte)'r' or (byte)'Z' or (byte)'\'' or (byte)'\\'))
                        {
                            throw Refused(entry, "a string holds an escape the dump does not write", i);
                        }
                        i += 2;
                    }
                    break;
                }
                case 'X':
                    Quoted(chunk, ref i, NotHex, entry);
                    break;
                case 'b':
                    Quoted(chunk, ref i, NotBits, entry);
                    break;
                case (>= '0' and <= '9') or '-':
                {
                    var end = chunk[i..].IndexOfAnyExcept(NotNumber);
                    var number = end < 0 ? chunk[i..] : chunk.Slice(i, end);
                    // Beyond a DOUBLE's range (1e400): an INSERT refuses it, LOAD DATA would store the largest DOUBLE.
                    if (!double.TryParse(number, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out var value)
                        || double.IsInfinity(value))
                    {
                        throw Refused(entry, "a number is not one the dump writes", i);
                    }
                    i += number.Length;
                    break;
                }
                default:
                    throw Refused(entry, "a value is not a literal", i);
            }
            var next = At(chunk, i);
            i++;
            if (next == ')')
            {
                return;
            }
            if (next != ',')
            {
                throw Refused(entry, "a row is not a list of literals", i - 1);
            }
        }
    }

    /// <summary>X'..' or b'..': the prefix, a quote, only the allowed digits, a quote.</summary>
    private static void Quoted(ReadOnlySpan<byte> chunk, ref int i, SearchValues<byte> digits, string entry)
    {
        i++;
        Expect(chunk, ref i, "'"u8, entry);
        var end = chunk[i..].IndexOfAnyExcept(digits);
        if (end < 0)
        {
            throw Refused(entry, "a literal does not end", i);
        }
        i += end;
        Expect(chunk, ref i, "'"u8, entry);
    }

    /// <summary>A backtick-quoted name (backticks doubled inside), as valid UTF-8.</summary>
    private static string Identifier(ReadOnlySpan<byte> chunk, ref int i, string entry)
    {
        Expect(chunk, ref i, "`"u8, entry);
        var name = new List<byte>();
        while (true)
        {
            var at = chunk[i..].IndexOf((byte)'`');
            if (at < 0)
            {
                throw Refused(entry, "a name does not end", i);
            }
            name.AddRange(chunk.Slice(i, at));
            i += at + 1;
            if (At(chunk, i) != '`')
            {
                break;
            }
            name.Add((byte)'`');
            i++;
        }
        if (name.Count == 0 || name.Count > 256)
        {
            throw Refused(entry, "a name is empty or too long", i);
        }
        return StrictUtf8.Decode([.. name]) ?? throw Refused(entry, "a name is not UTF-8", i);
    }

    private static int At(ReadOnlySpan<byte> chunk, int i) => i < chunk.Length ? chunk[i] : -1;

    private static void Expect(ReadOnlySpan<byte> chunk, ref int i, ReadOnlySpan<byte> expected, string entry)
    {
        if (!chunk[Math.Min(i, chunk.Length)..].StartsWith(expected))
        {
            throw Refused(entry, $"'{Encoding.UTF8.GetString(expected).Replace("\n", "\\n", StringComparison.Ordinal)}' expected", i);
        }
        i += expected.Length;
    }

    private static string Shown(string name) => name.Length > 64 ? name[..64] + "..." : name;

    private static DumpFilterException Refused(string entry, string why, int at) =>
        new($"backup entry {entry} is not a data chunk this tool writes ({why}, at byte {at}): refused, nothing of it was run");
}
