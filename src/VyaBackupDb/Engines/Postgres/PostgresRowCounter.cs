using System.Globalization;
using System.Runtime.CompilerServices;
using System.Text;
using System.Text.RegularExpressions;
using VyaBackupDb.Pipeline;

namespace VyaBackupDb.Engines.Postgres;

/// <summary>
/// Passes a plain pg_dump stream through and counts the rows of each table as they go by: the
/// lines of each <c>COPY "schema"."table" (...) FROM stdin;</c> block, up to its <c>\.</c> line.
/// These are the rows in the backup, read in the dump's own snapshot; no extra read of the database.
/// It also reads each <c>SELECT pg_catalog.setval('schema.sequence', n, called);</c> line: the
/// value the backup restores (sequences are in no snapshot, so only the dump itself can say it).
/// </summary>
/// <remarks>
/// In COPY's text format a row is one line (newlines in values are written as \n) and a backslash
/// in data is doubled, so a line that is exactly <c>\.</c> can only be the end of the block. Inside
/// a block the counter looks for that end and counts newlines, both vectorised. A COPY line is
/// recognised at the start of a line; its quoted names may hold anything, newlines included.
/// Something the counter misreads can only make a count differ from the restored table's, which
/// the restore reports as a mismatch: it never hides a missing row.
/// </remarks>
public sealed partial class PostgresRowCounter(Stream inner) : ObservingStream(inner)
{
    private enum State { LineStart, SkipLine, Header, CopyLineStart, CopyBackslash, CopyDot, CopyInLine }

    private static readonly byte[] Copy = "COPY "u8.ToArray();
    private static readonly byte[] SetVal = "SELECT pg_catalog.setval("u8.ToArray();
    private const int MaxHeaderBytes = 1 << 20;

    private readonly Dictionary<(string Schema, string Table), long> _rows = [];
    private readonly Dictionary<(string Schema, string Sequence), long> _sequences = [];
    private readonly List<byte> _header = [];
    private byte[] _prefix = Copy;
    private State _state = State.LineStart;
    private int _headLength;
    private bool _headerQuoted;
    private (string, string) _table;
    private long _count;

    /// <summary>Every table whose data the dump holds, by (schema, table) as the server names them, with its row count.</summary>
    public IReadOnlyDictionary<(string Schema, string Table), long> Rows => _rows;

    /// <summary>
    /// Every sequence the dump sets, by (schema, sequence), with the value pg_sequences.last_value
    /// will show once restored (0 for one set as never called, where it shows null).
    /// </summary>
    public IReadOnlyDictionary<(string Schema, string Sequence), long> Sequences => _sequences;

    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // hot from the first chunk: no tier-0 code
    protected override void Observe(ReadOnlySpan<byte> data)
    {
        var i = 0;
        while (i < data.Length)
        {
            switch (_state)
            {
                case State.CopyLineStart:
                {
                    var rest = data[i..];
                    if (rest[0] == (byte)'\\')
                    {
                        if (rest.StartsWith("\\.\n"u8))
                        {
                            EndCopy();
                            i += 3;
                            break;
                        }
                        if (rest.Length < 3)
                        {
                            i++;
                            _state = State.CopyBackslash;
                            break;
                        }
                    }
                    var end = rest.IndexOf("\n\\.\n"u8);
                    if (end >= 0)
                    {
                        // Every line up to the end marker is a row; the marker is then at the line start.
                        _count += rest[..(end + 1)].Count((byte)'\n');
                        i += end + 1;
                        break;
                    }
                    var last = rest.LastIndexOf((byte)'\n');
                    if (last < 0)
                    {
                        i = data.Length;
                        _state = State.CopyInLine;
                        break;
                    }
                    _count += rest[..(last + 1)].Count((byte)'\n');
                    i += last + 1;
                    break;
                }
                case State.CopyInLine:
                {
                    var at = data[i..].IndexOf((byte)'\n');
                    if (at < 0)
                    {
                        return;
                    }
                    _count++;
                    i += at + 1;
                    _state = State.CopyLineStart;
                    break;
                }
                case State.CopyBackslash:
                    _state = data[i++] switch
                    {
                        (byte)'.' => State.CopyDot,
                        (byte)'\n' => Row(),
                        _ => State.CopyInLine,
                    };
                    break;
                case State.CopyDot:
                    if (data[i++] == (byte)'\n')
                    {
                        EndCopy();
                    }
                    else
                    {
                        _state = State.CopyInLine;
                    }
                    break;
                case State.SkipLine:
                {
                    var at = data[i..].IndexOf((byte)'\n');
                    if (at < 0)
                    {
                        return;
                    }
                    i += at + 1;
                    _state = State.LineStart;
                    _headLength = 0;
                    break;
                }
                case State.LineStart:
                {
                    var b = data[i++];
                    if (b == (byte)'\n')
                    {
                        _headLength = 0;
                        break;
                    }
                    if (_headLength == 0)
                    {
                        _prefix = b == SetVal[0] ? SetVal : Copy;
                    }
                    if (b != _prefix[_headLength])
                    {
                        _state = State.SkipLine;
                    }
                    else if (++_headLength == _prefix.Length)
                    {
                        _header.Clear();
                        _headerQuoted = false;
                        _state = State.Header;
                    }
                    break;
                }
                case State.Header:
                {
                    var b = data[i++];
                    if (b == (byte)'\n' && !_headerQuoted)
                    {
                        _headLength = 0;
                        _state = State.LineStart;
                        if (_prefix == SetVal)
                        {
                            if (ParseSetVal(_header) is { } set)
                            {
                                _sequences[(set.Schema, set.Sequence)] = set.Value;
                            }
                        }
                        else if (ParseHeader(_header) is { } table)
                        {
                            _table = table;
                            _count = 0;
                            _state = State.CopyLineStart;
                        }
                        break;
                    }
                    if (b == (byte)'"')
                    {
                        _headerQuoted = !_headerQuoted;
                    }
                    if (_header.Count < MaxHeaderBytes)
                    {
                        _header.Add(b);
                    }
                    break;
                }
            }
        }
    }

    private State Row()
    {
        _count++;
        return State.CopyLineStart;
    }

    private void EndCopy()
    {
        _rows[_table] = _rows.GetValueOrDefault(_table) + _count;
        _headLength = 0;
        _state = State.LineStart;
    }

    /// <summary>
    /// The table of <c>"schema"."table" ["(cols)"] FROM stdin;</c> (what follows "COPY "), or null
    /// when the line is not the start of a COPY block.
    /// </summary>
    internal static (string Schema, string Table)? ParseHeader(List<byte> header)
    {
        var text = Encoding.UTF8.GetString([.. header]);
        if (!text.EndsWith(" FROM stdin;", StringComparison.Ordinal))
        {
            return null;
        }
        var at = 0;
        if (Identifier(text, ref at) is not { } schema || at >= text.Length || text[at] != '.')
        {
            return null;
        }
        at++;
        if (Identifier(text, ref at) is not { } table || at >= text.Length || text[at] != ' ')
        {
            return null;
        }
        return (schema, table);
    }

    /// <summary>
    /// The sequence and value of <c>'schema.sequence', n, true|false);</c> (what follows
    /// "SELECT pg_catalog.setval(" in pg_dump's output), or null for anything else.
    /// </summary>
    internal static (string Schema, string Sequence, long Value)? ParseSetVal(List<byte> header)
    {
        var text = Encoding.UTF8.GetString([.. header]);
        var match = SetValArguments().Match(text);
        if (!match.Success)
        {
            return null;
        }
        // The literal holds the name as pg_dump quotes it; '' is a quote inside it.
        var name = match.Groups["name"].Value.Replace("''", "'", StringComparison.Ordinal);
        var at = 0;
        if (Identifier(name, ref at) is not { } schema || at >= name.Length || name[at] != '.')
        {
            return null;
        }
        at++;
        if (Identifier(name, ref at) is not { } sequence || at != name.Length
            || !long.TryParse(match.Groups["value"].Value, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var value))
        {
            return null;
        }
        return (schema, sequence, match.Groups["called"].Value == "true" ? value : 0);
    }

    [GeneratedRegex(@"\A'(?<name>(?:[^']|'')*)', (?<value>-?[0-9]+), (?<called>true|false)\);\z")]
    private static partial Regex SetValArguments();

    /// <summary>A double-quoted name ("" for a quote) or a bare one, as pg_dump writes them.</summary>
    private static string? Identifier(string text, ref int at)
    {
        if (at < text.Length && text[at] == '"')
        {
            var name = new StringBuilder();
            for (var i = at + 1; i < text.Length; i++)
            {
                if (text[i] != '"')
                {
                    name.Append(text[i]);
                }
                else if (i + 1 < text.Length && text[i + 1] == '"')
                {
                    name.Append('"');
                    i++;
                }
                else
                {
                    at = i + 1;
                    return name.ToString();
                }
            }
            return null;
        }
        var start = at;
        while (at < text.Length && text[at] is not ('.' or ' ' or '('))
        {
            at++;
        }
        return at > start ? text[start..at] : null;
    }
}
