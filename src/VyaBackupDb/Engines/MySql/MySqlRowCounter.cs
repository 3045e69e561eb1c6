using System.Buffers;
using System.Globalization;
using System.Runtime.CompilerServices;
using System.Text;
using VyaBackupDb.Pipeline;

namespace VyaBackupDb.Engines.MySql;

/// <summary>
/// Passes a mysqldump/mariadb-dump stream through and counts, as it goes, what the dump holds:
/// the tuples of each table's <c>INSERT INTO `t` [(cols)] VALUES (...),(...);</c> statements, the
/// tables it creates (<c>CREATE TABLE `t`</c>, counted 0 until rows come) and the value each
/// <c>SETVAL(`s`, n, 0)</c> gives a MariaDB sequence. These are the counts of the data in the
/// backup, whatever the server did meanwhile; no extra read of the database.
/// </summary>
/// <remarks>
/// Statements are recognised at the start of a line, outside <c>DELIMITER ;;</c> blocks (where the
/// dump puts trigger, routine and event bodies). In VALUES, quotes and backslash escapes are
/// followed byte by byte (binary data is hex, --hex-blob), scanning vectorised for the few bytes
/// that matter. The dump tools set their own session's sql_mode to '' when they connect, so
/// strings are always escaped with backslashes, whatever the server's sql_mode.
/// Something the counter misreads can only make a count differ from the restored table's, which
/// the restore reports as a mismatch: it never hides a missing row.
/// </remarks>
public sealed class MySqlRowCounter(Stream inner) : ObservingStream(inner)
{
    private enum State
    {
        LineStart, SkipLine, DelimiterValue, Name, NameTick, AfterName, ColumnList, ColumnQuoted, BeforeValues,
        Values, Tuple, String, StringEscape, SetvalValue,
    }

    private enum Statement { None, Insert, CreateTable, Setval }

    private static readonly byte[] Insert = "INSERT INTO `"u8.ToArray();
    private static readonly byte[] CreateTable = "CREATE TABLE `"u8.ToArray();
    private static readonly byte[] DoSetval = "DO SETVAL(`"u8.ToArray();
    private static readonly byte[] SelectSetval = "SELECT SETVAL(`"u8.ToArray();
    private static readonly byte[] Delimiter = "DELIMITER "u8.ToArray();
    private static readonly byte[][] Prefixes = [Insert, CreateTable, DoSetval, SelectSetval, Delimiter];
    private const int HeadSize = 15;
    private const int MaxNameBytes = 4096;

    private static readonly SearchValues<byte> TupleBytes = SearchValues.Create("'()"u8);
    private static readonly SearchValues<byte> StringBytes = SearchValues.Create("'\\"u8);

    private readonly Dictionary<string, long> _rows = new(StringComparer.Ordinal);
    private readonly Dictionary<string, long> _sequences = new(StringComparer.Ordinal);
    private readonly byte[] _head = new byte[HeadSize];
    private readonly List<byte> _name = [];
    private State _state = State.LineStart;
    private Statement _statement;
    private int _headLength;
    private bool _compound;
    private int _depth;
    private long _tuples;
    private string _table = "";

    /// <summary>Every table the dump creates or fills, with the rows it holds (0 for a table created without any).</summary>
    public IReadOnlyDictionary<string, long> Rows => _rows;

    /// <summary>The value each MariaDB sequence is set to (its next value, as SETVAL(s, n, 0) gives it).</summary>
    public IReadOnlyDictionary<string, long> Sequences => _sequences;

    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // hot from the first chunk: no tier-0 code
    protected override void Observe(ReadOnlySpan<byte> data)
    {
        var i = 0;
        while (i < data.Length)
        {
            switch (_state)
            {
                case State.Values or State.Tuple or State.String or State.StringEscape:
                    i = ScanValues(data, i);
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
                    i = LineStart(data, i);
                    break;
                case State.DelimiterValue:
                {
                    var b = data[i++];
                    if (b == (byte)'\n')
                    {
                        // "DELIMITER ;" ends a block of trigger/routine/event bodies; anything else starts one.
                        _compound = !_head.AsSpan(0, _headLength).TrimEnd("\r \t"u8).SequenceEqual(";"u8);
                        _state = State.LineStart;
                        _headLength = 0;
                    }
                    else if (_headLength < HeadSize)
                    {
                        _head[_headLength++] = b;
                    }
                    break;
                }
                case State.Name:
                {
                    var b = data[i++];
                    if (b == (byte)'`')
                    {
                        _state = State.NameTick;
                    }
                    else if (_name.Count < MaxNameBytes)
                    {
                        _name.Add(b);
                    }
                    break;
                }
                case State.NameTick:
                    if (data[i] == (byte)'`')
                    {
                        // `` inside a quoted name is one backtick.
                        _name.Add((byte)'`');
                        _state = State.Name;
                        i++;
                    }
                    else
                    {
                        // The byte after the name is looked at again by the next state.
                        EndName();
                    }
                    break;
                case State.AfterName:
                    switch (data[i])
                    {
                        case (byte)' ' or (byte)'\n' or (byte)'\r' or (byte)'\t':
                            i++;
                            break;
                        case (byte)'(':
                            i++;
                            _state = State.ColumnList;
                            break;
                        default:
                            _state = State.BeforeValues;
                            break;
                    }
                    break;
                case State.ColumnList:
                    switch (data[i++])
                    {
                        case (byte)'`':
                            _state = State.ColumnQuoted;
                            break;
                        case (byte)')':
                            _state = State.BeforeValues;
                            break;
                    }
                    break;
                case State.ColumnQuoted:
                    if (data[i++] == (byte)'`')
                    {
                        _state = State.ColumnList;
                    }
                    break;
                case State.BeforeValues:
                {
                    var at = data[i..].IndexOf((byte)'(');
                    if (at < 0)
                    {
                        return;
                    }
                    i += at + 1;
                    _tuples = 1;
                    _depth = 1;
                    _state = State.Tuple;
                    break;
                }
                case State.SetvalValue:
                {
                    var b = data[i];
                    if (b is (byte)'-' or (>= (byte)'0' and <= (byte)'9'))
                    {
                        if (_headLength < HeadSize + 5)
                        {
                            _name.Add(b);
                            _headLength++;
                        }
                        i++;
                    }
                    else if (_headLength == 0)
                    {
                        i++; // ", " before the value
                    }
                    else
                    {
                        if (long.TryParse(Encoding.ASCII.GetString([.. _name]), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var value))
                        {
                            _sequences[_table] = value;
                        }
                        _state = State.SkipLine;
                    }
                    break;
                }
            }
        }
    }

    /// <summary>
    /// The hot loop: the tuples of a VALUES list, up to the statement's ';'. State lives in locals
    /// (registers) while it runs; strings are skipped with vectorised searches.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // hot from the first chunk: no tier-0 code
    private int ScanValues(ReadOnlySpan<byte> data, int i)
    {
        var state = _state;
        var depth = _depth;
        var tuples = _tuples;
        while (i < data.Length)
        {
            if (state == State.String)
            {
                var at = data[i..].IndexOfAny(StringBytes);
                if (at < 0)
                {
                    i = data.Length;
                    break;
                }
                i += at;
                if (data[i] == (byte)'\'')
                {
                    // A doubled quote ('') closes the string and opens the next: the same thing.
                    state = State.Tuple;
                    i++;
                }
                else if (i + 1 < data.Length)
                {
                    i += 2; // a backslash and the byte it escapes
                }
                else
                {
                    state = State.StringEscape;
                    i++;
                }
            }
            else if (state == State.Tuple)
            {
                var at = data[i..].IndexOfAny(TupleBytes);
                if (at < 0)
                {
                    i = data.Length;
                    break;
                }
                i += at;
                var b = data[i++];
                if (b == (byte)'\'')
                {
                    state = State.String;
                }
                else if (b == (byte)'(')
                {
                    depth++;
                }
                else if (--depth == 0)
                {
                    state = State.Values;
                }
            }
            else if (state == State.StringEscape)
            {
                i++;
                state = State.String;
            }
            else
            {
                var b = data[i++];
                if (b == (byte)'(')
                {
                    tuples++;
                    depth = 1;
                    state = State.Tuple;
                }
                else if (b == (byte)';')
                {
                    _rows[_table] = _rows.GetValueOrDefault(_table) + tuples;
                    state = State.SkipLine;
                    break;
                }
            }
        }
        _state = state;
        _depth = depth;
        _tuples = tuples;
        return i;
    }

    /// <summary>Collects the first bytes of a line until they match one of the statements we follow, or none.</summary>
    private int LineStart(ReadOnlySpan<byte> data, int i)
    {
        while (i < data.Length)
        {
            var b = data[i++];
            if (b == (byte)'\n')
            {
                _headLength = 0;
                return i;
            }
            _head[_headLength++] = b;
            var head = _head.AsSpan(0, _headLength);
            var partial = false;
            foreach (var prefix in Prefixes)
            {
                if (_compound && prefix != Delimiter)
                {
                    continue;
                }
                if (head.Length <= prefix.Length && prefix.AsSpan().StartsWith(head))
                {
                    if (head.Length < prefix.Length)
                    {
                        partial = true;
                        continue;
                    }
                    Start(prefix);
                    return i;
                }
            }
            if (!partial)
            {
                _state = State.SkipLine;
                return i;
            }
        }
        return i;
    }

    private void Start(byte[] prefix)
    {
        _headLength = 0;
        _name.Clear();
        if (prefix == Delimiter)
        {
            _state = State.DelimiterValue;
            return;
        }
        _statement = prefix == Insert ? Statement.Insert : prefix == CreateTable ? Statement.CreateTable : Statement.Setval;
        _state = State.Name;
    }

    private void EndName()
    {
        _table = Encoding.UTF8.GetString([.. _name]);
        _name.Clear();
        switch (_statement)
        {
            case Statement.Insert:
                _state = State.AfterName;
                break;
            case Statement.CreateTable:
                _rows.TryAdd(_table, 0);
                _state = State.SkipLine;
                break;
            default:
                _headLength = 0;
                _state = State.SetvalValue;
                break;
        }
    }
}
