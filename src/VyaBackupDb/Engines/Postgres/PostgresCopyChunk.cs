using System.Text;

namespace VyaBackupDb.Engines.Postgres;

/// <summary>
/// A backup set's PostgreSQL data chunk: <c>COPY "schema"."table" ("col", ...) FROM stdin;</c> on
/// its first line (every name double-quoted, as pg_dump --quote-all-identifiers writes it; no column
/// list for a table without columns), then rows in COPY's text format, then the line <c>\.</c> and
/// nothing after it. Concatenated after schema.sql it is what pg_dump itself writes, so psql loads it.
/// </summary>
public static class PostgresCopyChunk
{
    /// <summary>The longest header line accepted (1600 columns of 63-byte names, quoted, fit).</summary>
    public const int MaxHeaderBytes = 512 * 1024;

    /// <summary>What ends a chunk: the end-of-data line.</summary>
    public static ReadOnlySpan<byte> EndLine => "\\.\n"u8;

    private const string Prefix = "COPY ";
    private const string Suffix = " FROM stdin;";

    /// <summary>The header line (with its newline) for rows of <paramref name="columns"/> of schema.table.</summary>
    public static byte[] Header(string schema, string table, IReadOnlyList<string> columns) =>
        Encoding.UTF8.GetBytes(Prefix + PostgresEngine.QuoteIdentifier(schema) + "." + PostgresEngine.QuoteIdentifier(table)
            + (columns.Count == 0 ? "" : " (" + string.Join(", ", columns.Select(PostgresEngine.QuoteIdentifier)) + ")")
            + Suffix + "\n");

    /// <summary>
    /// Where the header line ends: the first newline outside double quotes (a quoted name may hold
    /// one). <paramref name="quoted"/> carries the state across buffers. -1 when not in <paramref name="data"/>.
    /// </summary>
    public static int HeaderEnd(ReadOnlySpan<byte> data, ref bool quoted)
    {
        for (var i = 0; i < data.Length; i++)
        {
            if (data[i] == (byte)'"')
            {
                quoted = !quoted;
            }
            else if (data[i] == (byte)'\n' && !quoted)
            {
                return i;
            }
        }
        return -1;
    }

    /// <summary>A parsed header: the table and the columns the rows hold, in order (empty: a table without columns).</summary>
    public sealed record Target(string Schema, string Table, IReadOnlyList<string> Columns);

    /// <summary>
    /// Parses a header line (without its newline) exactly as <see cref="Header"/> writes it; null for
    /// anything else (another statement, FROM PROGRAM or a file, options, bare or empty names, a NUL,
    /// names repeated, bytes that are not UTF-8).
    /// </summary>
    public static Target? Parse(ReadOnlySpan<byte> line)
    {
        if (StrictUtf8.Decode(line) is not { } text)
        {
            return null;
        }
        if (!text.StartsWith(Prefix, StringComparison.Ordinal) || !text.EndsWith(Suffix, StringComparison.Ordinal))
        {
            return null;
        }
        var at = Prefix.Length;
        var end = text.Length - Suffix.Length;
        if (Quoted(text, ref at, end) is not { } schema || at >= end || text[at++] != '.' || Quoted(text, ref at, end) is not { } table)
        {
            return null;
        }
        var columns = new List<string>();
        if (at < end)
        {
            if (!text.AsSpan(at).StartsWith(" (") || text[end - 1] != ')')
            {
                return null;
            }
            at += 2;
            while (true)
            {
                if (Quoted(text, ref at, end - 1) is not { } column)
                {
                    return null;
                }
                columns.Add(column);
                if (at == end - 1)
                {
                    break;
                }
                if (!text.AsSpan(at).StartsWith(", "))
                {
                    return null;
                }
                at += 2;
            }
            if (columns.Distinct(StringComparer.Ordinal).Count() != columns.Count)
            {
                return null;
            }
        }
        return new Target(schema, table, columns);
    }

    /// <summary>A non-empty double-quoted name ("" for a quote, no NUL) starting at <paramref name="at"/>, ending before <paramref name="end"/>.</summary>
    private static string? Quoted(string text, ref int at, int end)
    {
        if (at >= end || text[at] != '"')
        {
            return null;
        }
        var name = new StringBuilder();
        for (var i = at + 1; i < end; i++)
        {
            if (text[i] == '\0')
            {
                return null;
            }
            if (text[i] != '"')
            {
                name.Append(text[i]);
            }
            else if (i + 1 < end && text[i + 1] == '"')
            {
                name.Append('"');
                i++;
            }
            else
            {
                at = i + 1;
                return name.Length == 0 ? null : name.ToString();
            }
        }
        return null;
    }

    /// <summary>
    /// Whether a line of <paramref name="data"/> starts with <c>\.</c> (the span starts with the
    /// newline before its first line, the header's or the previous buffer's last bytes). COPY's text
    /// format never writes one in data (a backslash there is doubled): it ends the data, and only the
    /// chunk's last line may be one. Anything after it would be something planted after the data.
    /// </summary>
    public static bool HasEndMarker(ReadOnlySpan<byte> data) => data.IndexOf("\n\\."u8) >= 0;
}
