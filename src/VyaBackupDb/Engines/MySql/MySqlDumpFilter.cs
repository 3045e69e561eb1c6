using System.Buffers;
using System.Text;

namespace VyaBackupDb.Engines.MySql;

/// <summary>What a <see cref="MySqlDumpFilter"/> does besides pointing the dump at its target.</summary>
/// <param name="SourceDatabase">The database the dump was taken from (from the manifest or the file name), if
/// known; the dump's own USE / CREATE DATABASE name counts too. Qualifiers naming it in views, triggers,
/// routines and events are pointed at the target.</param>
/// <param name="Definer">What becomes of DEFINER clauses.</param>
/// <param name="KeepEventsEnabled">Leave events enabled as dumped; otherwise they are created DISABLED
/// (<see cref="MySqlDumpFilter.EnabledEvents"/> lists them).</param>
public sealed record MySqlFilterOptions(string? SourceDatabase = null, DefinerMode Definer = DefinerMode.Keep, bool KeepEventsEnabled = false);

/// <summary>
/// Filters a plain mysqldump / mariadb-dump file on its way into the <c>mysql</c>/<c>mariadb</c>
/// client (run with <c>--database=TARGET --binary-mode</c>) so that only the target database is
/// touched: <c>CREATE/DROP DATABASE|SCHEMA</c> and <c>USE</c> statements are dropped (also inside
/// <c>/*!...*/</c> conditional comments), and the database name of <c>ALTER DATABASE|SCHEMA name</c>
/// is replaced by the target. In <c>CREATE TRIGGER / VIEW / PROCEDURE / FUNCTION / EVENT</c>
/// statements (also in mysqldump's conditional-comment forms) a name used as a qualifier
/// (<c>`shop`.`audit`</c>, <c>shop.audit</c>) that names the source database is pointed at the target,
/// DEFINER clauses are kept, stripped or made CURRENT_USER, and events are created DISABLED unless
/// asked otherwise. Identifiers only: strings, comments and data never change. Every other byte
/// passes through unchanged.
/// </summary>
/// <remarks>
/// Statements are split the way the client splits them: at the current delimiter (changed by
/// <c>DELIMITER</c> lines) outside quotes and comments; a delimiter inside a conditional comment
/// ends the statement, as in the client. Backslash escapes inside strings follow the session's
/// <c>NO_BACKSLASH_ESCAPES</c> mode, tracked from <c>SET sql_mode</c> statements as mysqldump
/// writes them around routines. The filter streams: it holds only the beginning of a statement
/// until it is classified (at most 64 KiB) and needs no more memory for multi-GB dumps. Object
/// statements are followed token by token to their end (slower, but they are a small part of a
/// dump); only a name of the source database until the next token, or a DEFINER clause being
/// rewritten, is held. A name used as a qualifier is taken as a database name, so a table or
/// alias named exactly like the source database (<c>shop.id</c> with a table <c>shop</c>) is
/// rewritten too.
/// </remarks>
public sealed class MySqlDumpFilter
{
    private const int HoldCap = 64 * 1024;
    private const int TokenCap = 1024;
    private const int SetTokenLimit = 128;
    private const int MaxVersionDigits = 10;
    private const int MaxDelimiterLine = 255;
    private const int MaxDelimiterLength = 15;
    private const int MaxUserVariables = 256;
    private const int MaxReported = 1000;
    private const int MaxRewind = 256;

    private static readonly SearchValues<byte> Spaces = SearchValues.Create(" \t\n\r\v\f"u8);
    private static readonly bool[] WordBytes = BuildWordBytes();

    private readonly byte[] targetIdentifier;
    private readonly MySqlFilterOptions options;
    private readonly HashSet<string> otherQualifiers = new(StringComparer.Ordinal);
    private readonly List<string> enabledEvents = [];
    private readonly ByteBuffer candidateText = new(64);
    private readonly byte[] targetBytes;
    private readonly byte[]? sourceBytes;
    private string? learnedSource;
    private byte[]? learnedSourceBytes;
    private readonly DatabaseNames names = new();
    private readonly FilterSink sink = new();
    private readonly ByteBuffer delimiterLine = new(MaxDelimiterLine);
    private readonly ByteBuffer token = new(64);
    private readonly Dictionary<string, bool> userVariables = new(StringComparer.OrdinalIgnoreCase);

    private byte[] delimiter = [(byte)';'];
    private SearchValues<byte> codeStops = BuildCodeStops((byte)';');
    private SearchValues<byte> rowStops = BuildRowStops((byte)';');
    private readonly HashSet<string> triggerTables = new(StringComparer.OrdinalIgnoreCase);
    private bool endedWithTrailer;
    private bool rocksDbPrepared;
    private bool noBackslashEscapes;
    private bool started;

    // Scanner position; buf/segment/bufferBase describe the chunk being scanned.
    private State state;
    private byte[] buf = [];
    private int segment;
    private long bufferBase;
    private long consumedTotal;
    private bool needMore;
    private long unitStart;
    private bool inConditional;
    private bool skipVersionDigits;

    // Classification of the current statement.
    private byte[] verb = [];
    private bool nameList;
    private Step afterName;
    private int columnDepth;
    private bool watching;
    private Step step = Step.Done;
    private int tokenCount;
    private TokenKind tokenKind;
    private long tokenStart;
    private bool tokenOverflow;
    private bool tokenDoubleQuoted;
    private bool tokenHasAt;

    // The rows of an INSERT/REPLACE ... VALUES, checked by the fast path: literals only.
    private bool rowData;
    private int rowDepth;
    private bool rowOpenNext;

    // An object statement (CREATE TRIGGER/VIEW/PROCEDURE/FUNCTION/EVENT), followed to its end.
    private bool objectMode;
    private bool objectIsTrigger;
    private bool objectIsFunction;
    private bool triggerTableNext;
    private bool objectNameNext;
    private byte[] objectWord = [];
    private bool candidateIsObjectName;
    private bool objectHeader;
    private long holdStart = -1;
    private bool afterDot;
    private bool candidatePending;
    private bool candidateIsSource;
    private long candidateStart;
    private long candidateEnd;
    private bool tokenAfterDot;
    private long lastTokenStart = -1;
    private DefinerPhase definerPhase;
    private long definerStart;
    private long definerEnd;
    private EventPhase eventPhase;
    private string? eventName;
    private bool? eventEnabled;

    // SET statement tracking (sql_mode and user variables saving it).
    private bool setFlags;
    private bool setBroken;
    private bool setInValue;
    private int setDepth;
    private int setTargetWords;
    private SetTarget setTarget;
    private string? setVariable;
    private int setValueTokens;
    private bool? setValueFlags;

    /// <param name="targetDatabase">The database the dump is restored into.</param>
    public MySqlDumpFilter(string targetDatabase)
        : this(targetDatabase, new MySqlFilterOptions())
    {
    }

    /// <param name="targetDatabase">The database the dump is restored into.</param>
    /// <param name="options">Source database, DEFINER mode, events.</param>
    public MySqlDumpFilter(string targetDatabase, MySqlFilterOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentException.ThrowIfNullOrEmpty(targetDatabase);
        this.options = options;
        targetBytes = Encoding.UTF8.GetBytes(targetDatabase);
        sourceBytes = options.SourceDatabase is { Length: > 0 } source ? Encoding.UTF8.GetBytes(source) : null;
        if (targetDatabase.Contains('\0', StringComparison.Ordinal))
        {
            throw new ArgumentException("a database name cannot contain NUL", nameof(targetDatabase));
        }

        targetIdentifier = Encoding.UTF8.GetBytes(
            "`" + targetDatabase.Replace("`", "``", StringComparison.Ordinal) + "`");
    }

    private enum State : byte
    {
        Gap,
        GapLineComment,
        GapBlockComment,
        DelimiterLine,
        Code,
        SingleQuote,
        DoubleQuote,
        Backtick,
        LineComment,
        BlockComment,
    }

    private enum TokenKind : byte
    {
        None,
        Word,
        Ident,
        String,
        Punct,
    }

    private enum Step : byte
    {
        Start,
        AfterCreate,
        AfterCreateOr,
        AfterCreateOrReplace,
        AfterDrop,
        DropName,
        UseName,
        AfterAlter,
        AlterName,
        Set,
        Object,
        TableName,
        AfterTableName,
        AlterTableClause,
        InsertHead,
        InsertColumns,
        InsertValues,
        LockTables,
        StartStopChange,
        AnalyzeTable,
        Setval,
        SetvalOpen,
        RocksDbProbe,
        RocksDbPrepare,
        RocksDbPrepareSource,
        Done,
    }

    private enum DefinerPhase : byte
    {
        None,
        Equals,
        User,
        AfterUser,
        Host,
        AfterCurrentUser,
        Parenthesis,
        Done,
    }

    private enum EventPhase : byte
    {
        None,
        Name,
        AfterName,
        Header,
    }

    private enum SetTarget : byte
    {
        None,
        SqlMode,
        UserVariable,
        Other,
    }

    /// <summary>First database named by a CREATE/DROP DATABASE|SCHEMA or USE statement in the dump, or null.</summary>
    public string? SourceDatabase => names.Source;

    /// <summary>
    /// After <see cref="CopyAsync"/>: whether the dump ended with mysqldump's completion trailer
    /// (<c>-- Dump completed</c>) with no statement after it.
    /// </summary>
    public bool EndedWithCompletionTrailer => endedWithTrailer;

    /// <summary>Statements dropped (for the restore summary / tests).</summary>
    public int DroppedStatements { get; private set; }

    /// <summary>Qualifiers naming the source database that were pointed at the target.</summary>
    public int RewrittenQualifiers { get; private set; }

    /// <summary>
    /// After <see cref="CopyAsync"/>: other names used as qualifiers (<c>name.x</c>) in views, triggers,
    /// routines and events: databases the restored objects still use (system schemas, NEW and OLD
    /// left out). A table or alias used as a column qualifier is listed too, so a caller that
    /// warns keeps only the names of databases its server has.
    /// </summary>
    public IReadOnlyCollection<string> OtherDatabaseQualifiers => otherQualifiers;

    /// <summary>
    /// After <see cref="CopyAsync"/>: events that were enabled in the dump, in dump order. They are
    /// created DISABLED unless <see cref="MySqlFilterOptions.KeepEventsEnabled"/>.
    /// </summary>
    public IReadOnlyList<string> EnabledEvents => enabledEvents;

    /// <summary>Copies <paramref name="input"/> to <paramref name="output"/> through the filter. One dump per instance.</summary>
    /// <exception cref="DumpFilterException">The dump holds more than one database, or a statement the filter will not guess about.</exception>
    public Task CopyAsync(Stream input, Stream output, CancellationToken cancellationToken)
    {
        if (started)
        {
            throw new InvalidOperationException("a dump filter instance filters one dump only");
        }

        started = true;
        return DumpFilterDriver.RunAsync(Scan, sink, input, output, cancellationToken);
    }

    private int Scan(byte[] buffer, int start, int end, bool final)
    {
        buf = buffer;
        segment = start;
        bufferBase = consumedTotal - start;
        needMore = false;
        var i = start;
        while (i < end && !needMore)
        {
            i = state switch
            {
                State.Gap => Gap(i, end, final),
                State.Code => watching ? CodeWatching(i, end, final) : Code(i, end, final),
                State.SingleQuote or State.DoubleQuote or State.Backtick => Quoted(i, end, final),
                State.LineComment or State.GapLineComment => LineComment(i, end),
                State.BlockComment or State.GapBlockComment => BlockComment(i, end, final),
                State.DelimiterLine => DelimiterLineState(i, end),
                _ => throw new InvalidOperationException("unknown scanner state"),
            };
        }

        if (final)
        {
            EndOfInput(end);
            i = end;
        }
        else if (objectMode)
        {
            i = RewindSplitName(i);
        }

        Commit(i);
        consumedTotal = bufferBase + i;
        return i;
    }

    private int NeedMore(int i)
    {
        needMore = true;
        return i;
    }

    private int At(int index, int end) => index < end ? buf[index] : -1;

    private static ReadOnlySpan<byte> CompletionTrailer => "-- Dump completed"u8;

    private static bool IsSpace(int c) => c is ' ' or '\t' or '\n' or '\r' or '\v' or '\f';

    private static bool IsDigit(int c) => c is >= '0' and <= '9';

    /// <summary>Passes, holds or drops <c>buf[segment..i)</c> according to the current disposition.</summary>
    private void Commit(int i)
    {
        if (i <= segment)
        {
            return;
        }

        sink.Write(buf.AsSpan(segment, i - segment));
        segment = i;
        if (sink.Mode == Disposition.Hold && sink.Pending.Length > HoldCap)
        {
            HoldOverflow();
        }
    }

    private void HoldOverflow()
    {
        if (objectMode)
        {
            throw new DumpFilterException(
                $"the object statement at byte {unitStart} of the dump has more than {HoldCap / 1024} KiB of comments " +
                "inside a DEFINER clause or after a name of the source database; refusing to guess");
        }

        if (step == Step.Done)
        {
            return;
        }

        throw new DumpFilterException(
            $"the statement at byte {unitStart} of the dump runs past {HoldCap / 1024} KiB before it can be told "
            + "what it is and which database it writes to; refusing to guess");
    }

    // ---- between statements ------------------------------------------------------------------

    private int Gap(int i, int end, bool final)
    {
        var k = buf.AsSpan(i, end - i).IndexOfAnyExcept(Spaces);
        if (k < 0)
        {
            return end;
        }

        i += k;
        switch (buf[i])
        {
            case (byte)'#':
                state = State.GapLineComment;
                return i + 1;
            case (byte)'-':
                if (end - i < CompletionTrailer.Length && !final)
                {
                    return NeedMore(i);
                }

                if (At(i + 1, end) == '-' && IsSpaceOrEnd(At(i + 2, end)))
                {
                    endedWithTrailer |= buf.AsSpan(i, end - i).StartsWith(CompletionTrailer);
                    state = State.GapLineComment;
                    return i + 2;
                }

                break;
            case (byte)'/':
                if (end - i < 6 + MaxVersionDigits && !final)
                {
                    return NeedMore(i);
                }

                if (At(i + 1, end) == '*')
                {
                    var marker = ConditionalMarkerLength(i, end);
                    if (marker == 0)
                    {
                        // A plain comment or an optimizer hint: not executable here.
                        state = State.GapBlockComment;
                        return i + 2;
                    }

                    var j = i + marker;
                    for (var digits = 0; digits < MaxVersionDigits && IsDigit(At(j, end)); digits++)
                    {
                        j++;
                    }

                    if (At(j, end) == '\\')
                    {
                        // "/*M!999999\- enable the sandbox mode */": a client command in a
                        // conditional comment, not SQL; pass it through and keep looking for the
                        // statement that follows. Any other command there would run too.
                        if (At(j + 1, end) != '-')
                        {
                            throw ClientCommand(j, end);
                        }

                        state = State.GapBlockComment;
                        return j;
                    }
                }

                break;
            case (byte)'d' or (byte)'D':
                if (end - i < 9 && !final)
                {
                    return NeedMore(i);
                }

                if (end - i >= 9 && Ascii.EqualsIgnoreCase(buf.AsSpan(i, 9), "delimiter"u8))
                {
                    delimiterLine.Clear();
                    state = State.DelimiterLine;
                    return i;
                }

                break;
            default:
                break;
        }

        return StartStatement(i);
    }

    private static bool IsSpaceOrEnd(int c) => c == -1 || IsSpace(c);

    /// <summary>3 for <c>/*!</c>, 4 for <c>/*M!</c>, 0 for any other comment start (buf[i..] is <c>/*</c>).</summary>
    private int ConditionalMarkerLength(int i, int end)
    {
        var c = At(i + 2, end);
        if (c == '!')
        {
            return 3;
        }

        return c == 'M' && At(i + 3, end) == '!' ? 4 : 0;
    }

    private int DelimiterLineState(int i, int end)
    {
        var span = buf.AsSpan(i, end - i);
        var k = span.IndexOf((byte)'\n');
        var line = k < 0 ? span : span[..k];
        var room = MaxDelimiterLine - delimiterLine.Length;
        if (room > 0)
        {
            delimiterLine.Append(line[..Math.Min(room, line.Length)]);
        }

        if (k < 0)
        {
            return end;
        }

        ApplyDelimiterLine();
        state = State.Gap;
        return i + k;
    }

    /// <summary>Parses a DELIMITER line the way the client's <c>com_delimiter</c>/<c>get_arg</c> do.</summary>
    private void ApplyDelimiterLine()
    {
        var line = delimiterLine.Span;
        var p = 0;
        while (p < line.Length && IsSpace(line[p]))
        {
            p++;
        }

        while (p < line.Length && !IsSpace(line[p]))
        {
            p++;
        }

        while (p < line.Length && IsSpace(line[p]))
        {
            p++;
        }

        if (p >= line.Length)
        {
            return;
        }

        byte quote = 0;
        if (line[p] is (byte)'\'' or (byte)'"' or (byte)'`')
        {
            quote = line[p];
            p++;
        }

        Span<byte> value = stackalloc byte[MaxDelimiterLine];
        var n = 0;
        var closed = quote == 0;
        for (; p < line.Length; p++)
        {
            var c = line[p];
            if (quote != 0 && c == '\\' && p + 1 < line.Length && line[p + 1] == quote)
            {
                value[n++] = quote;
                p++;
                continue;
            }

            if (c == (quote != 0 ? quote : (byte)' '))
            {
                closed = true;
                break;
            }

            value[n++] = c;
        }

        if (n == 0 || !closed || value[..n].Contains((byte)'\\'))
        {
            return; // the client rejects it and keeps the delimiter
        }

        delimiter = value[..Math.Min(n, MaxDelimiterLength)].ToArray();
        codeStops = BuildCodeStops(delimiter[0]);
        rowStops = BuildRowStops(delimiter[0]);
    }

    // ---- inside a statement ------------------------------------------------------------------

    private int StartStatement(int i)
    {
        Commit(i);
        sink.BeginHold();
        unitStart = bufferBase + i;
        state = State.Code;
        watching = true;
        step = Step.Start;
        endedWithTrailer = false;
        nameList = false;
        afterName = Step.Done;
        rowData = false;
        tokenCount = 0;
        tokenKind = TokenKind.None;
        inConditional = false;
        skipVersionDigits = false;
        return i;
    }

    private int EndStatement(int after)
    {
        Commit(after);
        if (objectMode)
        {
            FinishObject();
        }

        if (sink.Mode == Disposition.Hold)
        {
            sink.Release();
        }

        if (step == Step.Set)
        {
            FinishSet();
        }

        sink.EndUnit();
        state = State.Gap;
        watching = false;
        rowData = false;
        step = Step.Done;
        tokenKind = TokenKind.None;
        inConditional = false;
        skipVersionDigits = false;
        return after;
    }

    private void EndOfInput(int end)
    {
        if (state == State.Code && tokenKind == TokenKind.Word)
        {
            EmitToken(end);
        }

        if (state == State.DelimiterLine)
        {
            ApplyDelimiterLine();
        }

        Commit(end);
        if (objectMode)
        {
            FinishObject();
        }

        if (sink.Mode == Disposition.Hold)
        {
            sink.Release();
        }

        sink.EndUnit();
    }

    private bool MatchesDelimiter(int i, int end) =>
        end - i >= delimiter.Length && buf.AsSpan(i, delimiter.Length).SequenceEqual(delimiter);

    /// <summary>Fast path: code of a statement already classified.</summary>
    private int Code(int i, int end, bool final)
    {
        if (rowData && rowDepth == 0)
        {
            // Between rows: "(" opens the next one, "," separates them; nothing else but blanks.
            var next = buf.AsSpan(i, end - i).IndexOfAnyExcept(Spaces);
            if (next < 0)
            {
                return end;
            }

            i += next;
            switch (buf[i])
            {
                case (byte)'(' when rowOpenNext:
                    rowDepth = 1;
                    rowOpenNext = false;
                    return i + 1;
                case (byte)',' when !rowOpenNext:
                    rowOpenNext = true;
                    return i + 1;
                default:
                    if (buf[i] != delimiter[0] && buf[i] is not ((byte)'/' or (byte)'-' or (byte)'#'))
                    {
                        throw Refuse("an INSERT whose rows are not lists of values");
                    }

                    break;
            }
        }

        var k = buf.AsSpan(i, end - i).IndexOfAny(rowData ? rowStops : codeStops);
        if (k < 0)
        {
            return end;
        }

        i += k;
        var b = buf[i];
        if (rowData && b is (byte)'(' or (byte)')')
        {
            // A "(" inside a row is a function call or a subquery: mysqldump writes literals.
            if (b == '(')
            {
                throw Refuse("a function call or subquery in an INSERT's rows");
            }

            rowDepth = 0;
            return i + 1;
        }
        if (b == delimiter[0])
        {
            if (end - i < delimiter.Length && !final)
            {
                return NeedMore(i);
            }

            if (MatchesDelimiter(i, end))
            {
                return EndStatement(i + delimiter.Length);
            }
        }

        switch (b)
        {
            case (byte)'\'':
                state = State.SingleQuote;
                return i + 1;
            case (byte)'"':
                state = State.DoubleQuote;
                return i + 1;
            case (byte)'`':
                state = State.Backtick;
                return i + 1;
            case (byte)'\\':
                if (end - i < 2 && !final)
                {
                    return NeedMore(i);
                }

                throw ClientCommand(i, end);
            case (byte)'#':
                state = State.LineComment;
                return i + 1;
            case (byte)'-':
                if (end - i < 3 && !final)
                {
                    return NeedMore(i);
                }

                if (At(i + 1, end) == '-' && IsSpaceOrEnd(At(i + 2, end)))
                {
                    state = State.LineComment;
                    return i + 2;
                }

                return i + 1;
            case (byte)'/':
                if (end - i < 4 && !final)
                {
                    return NeedMore(i);
                }

                if (At(i + 1, end) == '*')
                {
                    var marker = ConditionalMarkerLength(i, end);
                    if (marker > 0)
                    {
                        inConditional = true;
                        return i + marker;
                    }

                    state = State.BlockComment;
                    return i + 2;
                }

                return i + 1;
            default:
                return i + 1;
        }
    }

    /// <summary>Slow path: code of a statement being classified, byte by byte, building tokens.</summary>
    private int CodeWatching(int i, int end, bool final)
    {
        while (i < end)
        {
            if (!watching)
            {
                return i;
            }

            var b = buf[i];
            if (b == delimiter[0])
            {
                if (end - i < delimiter.Length && !final)
                {
                    return NeedMore(i);
                }

                if (MatchesDelimiter(i, end))
                {
                    if (tokenKind == TokenKind.Word)
                    {
                        EmitToken(i);
                    }

                    return EndStatement(i + delimiter.Length);
                }
            }

            if (b == '.' && objectMode && !(tokenKind == TokenKind.Word && tokenHasAt))
            {
                // In object statements a dot separates a qualifier from a name (not in @var.names).
                if (tokenKind == TokenKind.Word)
                {
                    EmitToken(i);
                    continue;
                }

                skipVersionDigits = false;
                StartToken(TokenKind.Punct, i);
                AppendToken(b);
                EmitToken(i + 1);
                i++;
                continue;
            }

            if (WordBytes[b])
            {
                if (skipVersionDigits && IsDigit(b))
                {
                    i++;
                    continue;
                }

                skipVersionDigits = false;
                if (tokenKind != TokenKind.Word)
                {
                    StartToken(TokenKind.Word, i);
                }

                // The rest of the word at once (up to a possible delimiter, or a dot in an object statement).
                var j = i;
                do
                {
                    tokenHasAt |= buf[j] == '@';
                    j++;
                }
                while (j < end && WordBytes[buf[j]] && buf[j] != delimiter[0] && !(buf[j] == '.' && objectMode && !tokenHasAt));

                AppendToken(buf.AsSpan(i, j - i));
                i = j;
                continue;
            }

            skipVersionDigits = false;
            if (tokenKind == TokenKind.Word)
            {
                EmitToken(i);
                continue;
            }

            switch (b)
            {
                case (byte)' ' or (byte)'\t' or (byte)'\n' or (byte)'\r' or (byte)'\v' or (byte)'\f':
                    {
                        var blank = buf.AsSpan(i + 1, end - i - 1).IndexOfAnyExcept(Spaces);
                        i = blank < 0 ? end : i + 1 + blank;
                        continue;
                    }

                case (byte)'\'':
                    StartToken(TokenKind.String, i);
                    state = State.SingleQuote;
                    return i + 1;
                case (byte)'"':
                    StartToken(TokenKind.String, i);
                    state = State.DoubleQuote;
                    return i + 1;
                case (byte)'`':
                    StartToken(TokenKind.Ident, i);
                    state = State.Backtick;
                    return i + 1;
                case (byte)'\\':
                    if (end - i < 2 && !final)
                    {
                        return NeedMore(i);
                    }

                    throw ClientCommand(i, end);
                case (byte)'#':
                    state = State.LineComment;
                    return i + 1;
                case (byte)'-':
                    if (end - i < 3 && !final)
                    {
                        return NeedMore(i);
                    }

                    if (At(i + 1, end) == '-' && IsSpaceOrEnd(At(i + 2, end)))
                    {
                        state = State.LineComment;
                        return i + 2;
                    }

                    break;
                case (byte)'/':
                    if (end - i < 4 && !final)
                    {
                        return NeedMore(i);
                    }

                    if (At(i + 1, end) == '*')
                    {
                        var marker = ConditionalMarkerLength(i, end);
                        if (marker > 0)
                        {
                            // Executable comment: its content is code; skip the marker and version.
                            inConditional = true;
                            skipVersionDigits = true;
                            i += marker;
                            continue;
                        }

                        state = State.BlockComment;
                        return i + 2;
                    }

                    break;
                case (byte)'*':
                    if (inConditional)
                    {
                        if (end - i < 2 && !final)
                        {
                            return NeedMore(i);
                        }

                        if (At(i + 1, end) == '/')
                        {
                            inConditional = false;
                            i += 2;
                            continue;
                        }
                    }

                    break;
                default:
                    break;
            }

            StartToken(TokenKind.Punct, i);
            AppendToken(b);
            EmitToken(i + 1);
            i++;
        }

        return i;
    }

    private int Quoted(int i, int end, bool final)
    {
        var quote = state switch
        {
            State.SingleQuote => (byte)'\'',
            State.DoubleQuote => (byte)'"',
            _ => (byte)'`',
        };
        var escapes = state != State.Backtick && !noBackslashEscapes;
        var span = buf.AsSpan(i, end - i);
        var k = escapes ? span.IndexOfAny(quote, (byte)'\\') : span.IndexOf(quote);
        if (k < 0)
        {
            AppendToken(span);
            return end;
        }

        AppendToken(span[..k]);
        i += k;
        if (buf[i] == '\\')
        {
            if (end - i < 2)
            {
                if (!final)
                {
                    return NeedMore(i);
                }

                AppendToken(buf.AsSpan(i, 1));
                return end;
            }

            AppendToken(buf.AsSpan(i, 2));
            return i + 2;
        }

        if (end - i < 2 && !final)
        {
            return NeedMore(i);
        }

        if (At(i + 1, end) == quote)
        {
            // A doubled quote stands for one quote character; the client sees the same split.
            AppendToken(quote);
            return i + 2;
        }

        state = State.Code;
        if (tokenKind is TokenKind.String or TokenKind.Ident)
        {
            EmitToken(i + 1);
        }

        return i + 1;
    }

    private int LineComment(int i, int end)
    {
        var k = buf.AsSpan(i, end - i).IndexOf((byte)'\n');
        if (k < 0)
        {
            return end;
        }

        state = state == State.GapLineComment ? State.Gap : State.Code;
        return i + k;
    }

    private int BlockComment(int i, int end, bool final)
    {
        var span = buf.AsSpan(i, end - i);
        var k = span.IndexOf("*/"u8);
        if (k >= 0)
        {
            state = state == State.GapBlockComment ? State.Gap : State.Code;
            return i + k + 2;
        }

        if (!final && span[^1] == '*')
        {
            return NeedMore(end - 1);
        }

        return end;
    }

    // ---- tokens and classification -----------------------------------------------------------

    private void StartToken(TokenKind kind, int i)
    {
        if (objectMode)
        {
            ObjectTokenStart(kind, i);
        }

        tokenHasAt = false;
        tokenKind = kind;
        tokenStart = bufferBase + i;
        token.Clear();
        tokenOverflow = false;
        tokenDoubleQuoted = kind == TokenKind.String && buf[i] == '"';
    }

    private void AppendToken(ReadOnlySpan<byte> bytes)
    {
        if (tokenKind == TokenKind.None || tokenOverflow)
        {
            return;
        }

        if (token.Length + bytes.Length > TokenCap)
        {
            tokenOverflow = true;
            return;
        }

        token.Append(bytes);
    }

    private void AppendToken(byte value)
    {
        if (tokenKind == TokenKind.None || tokenOverflow)
        {
            return;
        }

        if (token.Length >= TokenCap)
        {
            tokenOverflow = true;
            return;
        }

        token.Append(value);
    }

    private void EmitToken(int end)
    {
        var kind = tokenKind;
        tokenKind = TokenKind.None;
        if (objectMode)
        {
            // Its bytes go out after it is looked at: it may be held or replaced.
            OnToken(kind, token.Span, tokenStart - unitStart, bufferBase + end - unitStart);
            Commit(end);
            return;
        }

        Commit(end);
        if (step != Step.Done)
        {
            OnToken(kind, token.Span, tokenStart - unitStart, bufferBase + end - unitStart);
        }
    }

    private static bool Is(ReadOnlySpan<byte> text, ReadOnlySpan<byte> keyword) => Ascii.EqualsIgnoreCase(text, keyword);

    private static bool IsDatabaseKeyword(TokenKind kind, ReadOnlySpan<byte> text) =>
        kind == TokenKind.Word && (Is(text, "DATABASE"u8) || Is(text, "SCHEMA"u8));

    private void OnToken(TokenKind kind, ReadOnlySpan<byte> text, long start, long end)
    {
        tokenCount++;
        switch (step)
        {
            case Step.Start:
                if (kind == TokenKind.Word)
                {
                    verb = text.Length <= 32 ? text.ToArray() : [];
                    if (Is(text, "CREATE"u8))
                    {
                        step = Step.AfterCreate;
                        return;
                    }

                    if (Is(text, "DROP"u8))
                    {
                        step = Step.AfterDrop;
                        return;
                    }

                    if (Is(text, "ALTER"u8))
                    {
                        step = Step.AfterAlter;
                        return;
                    }

                    if (Is(text, "USE"u8))
                    {
                        DropStatement(Step.UseName);
                        return;
                    }

                    if (Is(text, "SET"u8))
                    {
                        // Held until its first word says it is not one that changes the server or an account.
                        step = Step.Set;
                        BeginSet();
                        return;
                    }

                    if (Is(text, "INSERT"u8) || Is(text, "REPLACE"u8))
                    {
                        step = Step.InsertHead;
                        return;
                    }

                    if (Is(text, "LOCK"u8) || Is(text, "UNLOCK"u8))
                    {
                        step = Step.LockTables;
                        return;
                    }

                    if (Is(text, "START"u8) || Is(text, "STOP"u8) || Is(text, "CHANGE"u8))
                    {
                        step = Step.StartStopChange;
                        return;
                    }

                    if (Is(text, "ANALYZE"u8))
                    {
                        step = Step.AnalyzeTable;
                        return;
                    }

                    if (Is(text, "SELECT"u8) || Is(text, "DO"u8))
                    {
                        step = Step.Setval;
                        return;
                    }

                    if (Is(text, "COMMIT"u8))
                    {
                        PassStatement();
                        return;
                    }

                    if (Is(text, "PREPARE"u8))
                    {
                        step = Step.RocksDbPrepare;
                        return;
                    }

                    if ((Is(text, "EXECUTE"u8) || Is(text, "DEALLOCATE"u8)) && rocksDbPrepared)
                    {
                        LeaveOut();
                        return;
                    }
                }

                throw Refuse(kind == TokenKind.Word ? $"{A(text)} statement" : "a statement that does not start with a keyword");
            case Step.AfterCreate:
                if (kind == TokenKind.Word && Is(text, "OR"u8))
                {
                    step = Step.AfterCreateOr;
                    return;
                }

                goto case Step.AfterCreateOrReplace;
            case Step.AfterCreateOr:
                if (kind == TokenKind.Word && Is(text, "REPLACE"u8))
                {
                    step = Step.AfterCreateOrReplace;
                    return;
                }

                throw Refuse("a CREATE OR statement without REPLACE");
            case Step.AfterCreateOrReplace:
                if (kind == TokenKind.Word && IsObjectHeaderWord(text))
                {
                    BeginObject(kind, text, unitStart + start, unitStart + end);
                    return;
                }

                if (IsDatabaseKeyword(kind, text))
                {
                    DropStatement(Step.DropName);
                    return;
                }

                if (kind == TokenKind.Word && (Is(text, "TABLE"u8) || Is(text, "SEQUENCE"u8)))
                {
                    ExpectTableName(list: false, Step.Done);
                    return;
                }

                throw Refuse($"a CREATE {Words(text)} statement");
            case Step.AfterDrop:
                if (IsDatabaseKeyword(kind, text))
                {
                    DropStatement(Step.DropName);
                    return;
                }

                if (kind == TokenKind.Word && (Is(text, "TABLE"u8) || Is(text, "VIEW"u8) || Is(text, "SEQUENCE"u8)))
                {
                    ExpectTableName(list: true, Step.Done);
                    return;
                }

                if (kind == TokenKind.Word && IsObjectWord(text) && !Is(text, "VIEW"u8))
                {
                    ExpectTableName(list: false, Step.Done);
                    return;
                }

                throw Refuse($"a DROP {Words(text)} statement");
            case Step.Object:
                ObjectToken(kind, text, unitStart + start, unitStart + end);
                return;
            case Step.DropName:
                if (kind == TokenKind.Word && (Is(text, "IF"u8) || Is(text, "NOT"u8) || Is(text, "EXISTS"u8)))
                {
                    return;
                }

                goto case Step.UseName;
            case Step.UseName:
                if (IsName(kind))
                {
                    ObserveName(text);
                }

                StopWatching();
                return;
            case Step.AfterAlter:
                if (IsDatabaseKeyword(kind, text))
                {
                    step = Step.AlterName;
                    return;
                }

                if (kind == TokenKind.Word && Is(text, "TABLE"u8))
                {
                    ExpectTableName(list: false, Step.AlterTableClause);
                    return;
                }

                throw Refuse($"an ALTER {Words(text)} statement");
            case Step.AlterName:
                if (IsName(kind) && !(kind == TokenKind.Word && IsAlterDatabaseOption(text)))
                {
                    ObserveName(text);
                    sink.ReleaseReplacing(checked((int)start), checked((int)end), targetIdentifier);
                    StopWatching();
                    return;
                }

                PassStatement(); // ALTER DATABASE without a name applies to the current (target) database
                return;
            case Step.Set:
                SetToken(kind, text);
                return;
            case Step.TableName:
                if (kind == TokenKind.Word && (Is(text, "IF"u8) || Is(text, "NOT"u8) || Is(text, "EXISTS"u8) || Is(text, "BODY"u8)))
                {
                    return;
                }

                if (!IsName(kind) || tokenOverflow)
                {
                    throw Refuse($"{A(verb)} statement without a plain name");
                }

                if (kind == TokenKind.Word && text.Contains((byte)'.'))
                {
                    throw OtherDatabase(text);
                }

                if (afterName == Step.InsertColumns && triggerTables.Contains(DatabaseNames.Decode(text)))
                {
                    // mysqldump creates a table's triggers after its rows: none fires during a restore.
                    throw Refuse($"an INSERT into a table whose trigger the dump created first ({DatabaseNames.Decode(text)})");
                }

                step = Step.AfterTableName;
                return;
            case Step.AfterTableName:
                if (kind == TokenKind.Word && text[0] == '.')
                {
                    throw OtherDatabase(text);
                }

                if (nameList && kind == TokenKind.Punct && text[0] == ',')
                {
                    step = Step.TableName;
                    return;
                }

                if (afterName == Step.AlterTableClause)
                {
                    step = Step.AlterTableClause;
                    goto case Step.AlterTableClause;
                }

                if (afterName != Step.InsertColumns)
                {
                    PassStatement();
                    return;
                }

                if (kind == TokenKind.Punct && text[0] == '(')
                {
                    step = Step.InsertColumns;
                    columnDepth = 1;
                    return;
                }

                goto case Step.InsertValues;
            case Step.AlterTableClause:
                // mysqldump's DISABLE/ENABLE KEYS, and the AUTO_INCREMENT = n a backup set appends.
                if ((kind == TokenKind.Word && (Is(text, "DISABLE"u8) || Is(text, "ENABLE"u8) || Is(text, "KEYS"u8)
                        || Is(text, "AUTO_INCREMENT"u8) || IsNumber(text)))
                    || (kind == TokenKind.Punct && text[0] == '='))
                {
                    return;
                }

                throw Refuse($"an ALTER TABLE ... {Words(text)} statement");
            case Step.InsertHead:
                if (kind == TokenKind.Word && (Is(text, "INTO"u8) || Is(text, "IGNORE"u8)
                    || Is(text, "LOW_PRIORITY"u8) || Is(text, "HIGH_PRIORITY"u8) || Is(text, "DELAYED"u8)))
                {
                    return;
                }

                ExpectTableName(list: false, Step.InsertColumns);
                goto case Step.TableName;
            case Step.InsertColumns:
                if (kind == TokenKind.Punct)
                {
                    columnDepth += text[0] == '(' ? 1 : text[0] == ')' ? -1 : 0;
                    step = columnDepth == 0 ? Step.InsertValues : Step.InsertColumns;
                }

                return;
            case Step.InsertValues:
                if (kind == TokenKind.Word && (Is(text, "VALUES"u8) || Is(text, "VALUE"u8)))
                {
                    PassStatement();
                    rowData = true;
                    rowDepth = 0;
                    rowOpenNext = true;
                    return;
                }

                throw Refuse("an INSERT that is not of VALUES");
            case Step.LockTables:
                if (kind == TokenKind.Word && (Is(text, "TABLES"u8) || Is(text, "TABLE"u8)))
                {
                    PassStatement();
                    return;
                }

                throw Refuse($"{A(verb)} {Words(text)} statement");
            case Step.StartStopChange:
                if (kind == TokenKind.Word && Is(text, "TRANSACTION"u8) && Is(verb, "START"u8))
                {
                    PassStatement();
                    return;
                }

                if (kind == TokenKind.Word && (Is(text, "SLAVE"u8) || Is(text, "REPLICA"u8) || Is(text, "MASTER"u8) || Is(text, "REPLICATION"u8)))
                {
                    LeaveOut();
                    return;
                }

                throw Refuse($"{A(verb)} {Words(text)} statement");
            case Step.AnalyzeTable:
                if (kind == TokenKind.Word && Is(text, "TABLE"u8))
                {
                    ExpectTableName(list: true, Step.Done);
                    return;
                }

                throw Refuse($"an ANALYZE {Words(text)} statement");
            case Step.Setval:
                // MariaDB's dump sets a sequence with SELECT SETVAL(`s`, ...), a backup set with DO SETVAL.
                if (kind == TokenKind.Word && Is(text, "SETVAL"u8))
                {
                    step = Step.SetvalOpen;
                    return;
                }

                if (kind == TokenKind.Word && Is(text, "COUNT"u8) && Is(verb, "SELECT"u8))
                {
                    step = Step.RocksDbProbe;
                    return;
                }

                throw Refuse($"{A(verb)} statement other than SETVAL");
            case Step.SetvalOpen:
                if (kind == TokenKind.Punct && text[0] == '(')
                {
                    ExpectTableName(list: false, Step.Done);
                    return;
                }

                throw Refuse($"{A(verb)} statement other than SETVAL");
            case Step.RocksDbProbe:
                // Percona Server's dump asks whether the server has RocksDB's bulk load:
                // SELECT COUNT(*) INTO @rocksdb_has_p_s_session_variables FROM INFORMATION_SCHEMA.TABLES ...
                if ((kind == TokenKind.Punct && text[0] is (byte)'(' or (byte)'*' or (byte)')') || (kind == TokenKind.Word && Is(text, "INTO"u8)))
                {
                    return;
                }

                if (kind == TokenKind.Word && StartsWithIgnoreCase(text, "@rocksdb_"u8))
                {
                    LeaveOut();
                    return;
                }

                throw Refuse("a SELECT statement other than SETVAL");
            case Step.RocksDbPrepare:
                if (kind == TokenKind.Word && Is(text, "FROM"u8))
                {
                    step = Step.RocksDbPrepareSource;
                    return;
                }

                if (tokenCount == 2 && IsName(kind))
                {
                    return;
                }

                throw Refuse("a PREPARE statement");
            case Step.RocksDbPrepareSource:
                // ... and turns it on and off with PREPARE s FROM @rocksdb_enable_bulk_load / @disable_bulk_load.
                if (kind == TokenKind.Word && (StartsWithIgnoreCase(text, "@rocksdb_"u8) || Is(text, "@disable_bulk_load"u8)))
                {
                    rocksDbPrepared = true;
                    LeaveOut();
                    return;
                }

                throw Refuse("a PREPARE statement");
            default:
                return;
        }
    }

    /// <summary>
    /// Leaves the whole statement out, unread. Real dumps carry two kinds a restore must not run:
    /// the source server's replication state (--master-data, --dump-slave, GTID positions: CHANGE
    /// MASTER / REPLICATION SOURCE, START / STOP SLAVE, SET GLOBAL gtid_slave_pos / GTID_PURGED),
    /// as a restore changes its target database, not how the server replicates; and Percona
    /// Server's switches of RocksDB's bulk load around the data (SELECT ... INTO, PREPARE, EXECUTE
    /// and DEALLOCATE of its own variables), which concern RocksDB tables only (nothing of them
    /// runs, whatever the variables were set to).
    /// </summary>
    private void LeaveOut()
    {
        DropStatement(Step.Done);
        watching = false;
    }

    /// <summary>The next token is a table (or routine, sequence...) name of the target; <paramref name="then"/> follows it.</summary>
    private void ExpectTableName(bool list, Step then)
    {
        nameList = list;
        afterName = then;
        step = Step.TableName;
    }

    private DumpFilterException OtherDatabase(ReadOnlySpan<byte> name) =>
        Refuse($"{A(verb)} statement on a table of another database ({Printable(name)}…)");

    private DumpFilterException ClientCommand(int i, int end) =>
        Refuse(At(i + 1, end) is > ' ' and < 127 and var c ? $"a client command (\\{(char)c})" : "a client command (\\)", bufferBase + i);

    private DumpFilterException Refuse(string what) => Refuse(what, unitStart);

    /// <summary>A statement (or client command) that is not something mysqldump writes: the file is refused before it runs.</summary>
    private static DumpFilterException Refuse(string what, long at) =>
        new($"the dump holds {what} at byte {at}, which mysqldump does not write; refused");

    /// <summary>"a PREPARE", "an INSERT": a keyword with its article.</summary>
    private static string A(ReadOnlySpan<byte> word)
    {
        var shown = Words(word);
        return (shown.Length > 0 && "AEIOU".Contains(shown[0], StringComparison.Ordinal) ? "an " : "a ") + shown;
    }

    /// <summary>A keyword for a message: upper case, printable ASCII only.</summary>
    private static string Words(ReadOnlySpan<byte> word) => Printable(word).ToUpperInvariant();

    private static string Printable(ReadOnlySpan<byte> text)
    {
        var shown = new StringBuilder();
        foreach (var b in text[..Math.Min(text.Length, 32)])
        {
            shown.Append(b is > (byte)' ' and < 127 ? (char)b : '?');
        }

        return shown.ToString();
    }

    /// <summary>
    /// A token that can be a database name: a bare word, a backtick identifier, or a "double-quoted"
    /// one (an identifier under ANSI_QUOTES, which mysqldump --compatible=ansi writes; a syntax
    /// error otherwise, so taking it for a name is harmless).
    /// </summary>
    private bool IsName(TokenKind kind) =>
        kind is TokenKind.Word or TokenKind.Ident || (kind == TokenKind.String && tokenDoubleQuoted);

    /// <summary>Words that can follow <c>ALTER DATABASE</c> when the name is left out.</summary>
    private static bool IsAlterDatabaseOption(ReadOnlySpan<byte> word) =>
        Is(word, "DEFAULT"u8) || Is(word, "CHARACTER"u8) || Is(word, "CHARSET"u8) || Is(word, "COLLATE"u8)
        || Is(word, "ENCRYPTION"u8) || Is(word, "READ"u8) || Is(word, "COMMENT"u8);

    private void ObserveName(ReadOnlySpan<byte> name)
    {
        if (tokenOverflow)
        {
            throw new DumpFilterException(
                $"the statement at byte {unitStart} of the dump names a database longer than {TokenCap} bytes");
        }

        names.Observe(DatabaseNames.Decode(name));
    }

    private void PassStatement()
    {
        sink.Release();
        StopWatching();
    }

    private void DropStatement(Step next)
    {
        sink.Discard();
        DroppedStatements++;
        step = next;
    }

    private void StopWatching()
    {
        watching = false;
        step = Step.Done;
    }

    // ---- CREATE TRIGGER / VIEW / PROCEDURE / FUNCTION / EVENT ----------------------------------------
    //
    // These statements are followed token by token to the end. A name followed by '.' is a
    // qualifier: if it names the source database it is pointed at the target. A token is only
    // looked at when whole (one split across reads is scanned again from its start), so the sink
    // holds only what may still change: a name of the source until the token after it, a DEFINER
    // clause being stripped or rewritten until its end.

    private static bool IsObjectWord(ReadOnlySpan<byte> word) =>
        Is(word, "VIEW"u8) || Is(word, "TRIGGER"u8) || Is(word, "PROCEDURE"u8) || Is(word, "FUNCTION"u8)
        || Is(word, "EVENT"u8) || Is(word, "PACKAGE"u8);

    /// <summary>Words that may come between CREATE [OR REPLACE] and the object keyword.</summary>
    private static bool IsObjectHeaderWord(ReadOnlySpan<byte> word) =>
        IsObjectWord(word) || Is(word, "DEFINER"u8) || Is(word, "ALGORITHM"u8) || Is(word, "SQL"u8) || Is(word, "AGGREGATE"u8);

    /// <summary>The statement is an object definition; the sink holds it from its start until this token is seen.</summary>
    private void BeginObject(TokenKind kind, ReadOnlySpan<byte> text, long start, long end)
    {
        objectMode = true;
        objectHeader = true;
        step = Step.Object;
        holdStart = unitStart;
        afterDot = false;
        tokenAfterDot = false;
        lastTokenStart = start;
        ObjectToken(kind, text, start, end);
        if (holdStart >= 0 && (definerPhase == DefinerPhase.None || options.Definer == DefinerMode.Keep))
        {
            ReleaseHold();
        }
    }

    /// <summary>At the first byte of a token in an object statement: decides what waited for it.</summary>
    private void ObjectTokenStart(TokenKind kind, int i)
    {
        var position = bufferBase + i;
        if (position == lastTokenStart)
        {
            return; // the same token again, scanned from its start after a read ended inside it
        }

        lastTokenStart = position;
        var dot = kind == TokenKind.Punct && buf[i] == '.';
        if (definerPhase != DefinerPhase.None)
        {
            if (DefinerContinues(kind, i))
            {
                return;
            }

            FinishDefiner();
        }

        if (candidatePending)
        {
            DecideCandidate(dot);
        }

        tokenAfterDot = afterDot;
        afterDot = dot;
    }

    /// <summary>
    /// At the end of a read inside an object statement: a name token split by it is scanned again
    /// from its start with the next read, so that it is whole when looked at.
    /// </summary>
    private int RewindSplitName(int i)
    {
        if (tokenKind is not (TokenKind.Word or TokenKind.Ident or TokenKind.String) || (tokenKind == TokenKind.String && !tokenDoubleQuoted))
        {
            return i;
        }

        var start = (int)(tokenStart - bufferBase);
        if (start < segment || i - start > MaxRewind)
        {
            return i; // too long to be a database name
        }

        tokenKind = TokenKind.None;
        if (state is State.Backtick or State.DoubleQuote)
        {
            state = State.Code;
        }

        return start;
    }

    /// <summary>A whole token of an object statement.</summary>
    private void ObjectToken(TokenKind kind, ReadOnlySpan<byte> text, long start, long end)
    {
        if (definerPhase != DefinerPhase.None)
        {
            DefinerToken(kind, text, end);
            return;
        }

        if (objectHeader && kind == TokenKind.Word)
        {
            if (Is(text, "DEFINER"u8))
            {
                definerPhase = DefinerPhase.Equals;
                definerStart = start;
                definerEnd = end;
                if (options.Definer != DefinerMode.Keep)
                {
                    HoldFrom(start);
                }

                return;
            }

            if (IsObjectWord(text))
            {
                objectHeader = false;
                objectIsTrigger = Is(text, "TRIGGER"u8);
                objectIsFunction = Is(text, "FUNCTION"u8);
                objectNameNext = true;
                objectWord = text.ToArray();
                eventPhase = Is(text, "EVENT"u8) ? EventPhase.Name : EventPhase.None;
                return;
            }
        }

        if (objectIsFunction && kind == TokenKind.Word && Is(text, "SONAME"u8))
        {
            throw Refuse("a CREATE FUNCTION ... SONAME statement (a server plugin)");
        }

        if (objectIsTrigger)
        {
            // The table after ON (possibly qualified): an INSERT into it later in the dump would fire the trigger.
            if (kind == TokenKind.Word && (Is(text, "ON"u8) || Is(text, "FOR"u8)))
            {
                triggerTableNext = Is(text, "ON"u8);
            }
            else if (triggerTableNext && IsName(kind))
            {
                triggerTables.Add(DatabaseNames.Decode(text));
            }
        }

        if (eventPhase != EventPhase.None && EventToken(kind, text, start, end))
        {
            return;
        }

        var name = kind == TokenKind.Ident || (kind == TokenKind.String && tokenDoubleQuoted)
            || (kind == TokenKind.Word && text[0] != '@' && !IsNumber(text));
        if (!name || tokenAfterDot || tokenOverflow)
        {
            return;
        }

        candidatePending = true;
        candidateIsObjectName = objectNameNext && !(kind == TokenKind.Word && (Is(text, "IF"u8) || Is(text, "NOT"u8) || Is(text, "EXISTS"u8)));
        objectNameNext &= !candidateIsObjectName;
        candidateStart = start;
        candidateEnd = end;
        candidateText.Clear();
        candidateText.Append(text);
        candidateIsSource = IsSource(text);
        if (candidateIsSource)
        {
            HoldFrom(start);
        }
    }

    /// <summary>Holds from <paramref name="start"/> (a whole token in the current buffer) on.</summary>
    private void HoldFrom(long start)
    {
        if (holdStart >= 0)
        {
            return; // already holding from before it
        }

        Commit((int)(start - bufferBase));
        sink.BeginHold();
        holdStart = start;
    }

    private void ReleaseHold()
    {
        sink.Release();
        holdStart = -1;
    }

    /// <summary>Writes <paramref name="replacement"/> instead of <c>[start, end)</c> (a whole token, or empty before one).</summary>
    private void ReplaceToken(long start, long end, ReadOnlySpan<byte> replacement)
    {
        Commit((int)(start - bufferBase));
        sink.Write(replacement);
        segment = (int)(end - bufferBase);
    }

    private static bool IsNumber(ReadOnlySpan<byte> word) => !word.ContainsAnyExceptInRange((byte)'0', (byte)'9');

    private bool IsSource(ReadOnlySpan<byte> name)
    {
        if (names.Source is { } learned && !ReferenceEquals(learned, learnedSource))
        {
            learnedSource = learned;
            learnedSourceBytes = Encoding.UTF8.GetBytes(learned);
        }

        return !name.SequenceEqual(targetBytes)
            && ((sourceBytes is not null && name.SequenceEqual(sourceBytes))
                || (learnedSourceBytes is not null && name.SequenceEqual(learnedSourceBytes)));
    }

    /// <summary>The name before this token: a qualifier if the token is '.'.</summary>
    private void DecideCandidate(bool dot)
    {
        candidatePending = false;
        if (candidateIsSource)
        {
            if (dot)
            {
                sink.ReleaseReplacing(checked((int)(candidateStart - holdStart)), checked((int)(candidateEnd - holdStart)), targetIdentifier);
                holdStart = -1;
                RewrittenQualifiers++;
            }
            else
            {
                ReleaseHold();
            }

            return;
        }

        if (dot && candidateIsObjectName)
        {
            throw Refuse($"a CREATE {Words(objectWord)} statement of an object in another database ({Printable(candidateText.Span)})");
        }

        if (dot && otherQualifiers.Count < MaxReported)
        {
            RecordOtherQualifier(candidateText.Span);
        }
    }

    private void RecordOtherQualifier(ReadOnlySpan<byte> name)
    {
        if (name.SequenceEqual(targetBytes) || Is(name, "NEW"u8) || Is(name, "OLD"u8) || Is(name, "information_schema"u8)
            || Is(name, "performance_schema"u8) || name.SequenceEqual("mysql"u8) || name.SequenceEqual("sys"u8))
        {
            return; // the target, a trigger's rows, a system schema
        }

        Span<char> chars = stackalloc char[TokenCap];
        var text = chars[..Encoding.UTF8.GetChars(name, chars)];
        var lookup = otherQualifiers.GetAlternateLookup<ReadOnlySpan<char>>();
        if (!lookup.Contains(text))
        {
            otherQualifiers.Add(text.ToString());
        }
    }

    // DEFINER = user: 'u'@'h', `u`@`h`, u@h, `u`@h, a role, CURRENT_USER[()].

    private bool DefinerContinues(TokenKind kind, int i) => definerPhase switch
    {
        DefinerPhase.Equals => kind == TokenKind.Punct && buf[i] == '=',
        DefinerPhase.User or DefinerPhase.Host => kind is TokenKind.Word or TokenKind.Ident or TokenKind.String,
        DefinerPhase.AfterUser => kind == TokenKind.Word && buf[i] == '@',
        DefinerPhase.AfterCurrentUser => kind == TokenKind.Punct && buf[i] == '(',
        DefinerPhase.Parenthesis => kind == TokenKind.Punct && buf[i] == ')',
        _ => false,
    };

    private void DefinerToken(TokenKind kind, ReadOnlySpan<byte> text, long end)
    {
        definerEnd = end;
        definerPhase = definerPhase switch
        {
            DefinerPhase.Equals => DefinerPhase.User,
            DefinerPhase.User when kind == TokenKind.Word && (Is(text, "CURRENT_USER"u8) || Is(text, "CURRENT_ROLE"u8)) => DefinerPhase.AfterCurrentUser,
            DefinerPhase.User when kind == TokenKind.Word && text.Contains((byte)'@') => text[^1] == '@' ? DefinerPhase.Host : DefinerPhase.Done,
            DefinerPhase.User => DefinerPhase.AfterUser,
            DefinerPhase.AfterUser => text.Length == 1 ? DefinerPhase.Host : DefinerPhase.Done,
            DefinerPhase.AfterCurrentUser => DefinerPhase.Parenthesis,
            _ => DefinerPhase.Done,
        };
    }

    /// <summary>The DEFINER clause ended: kept, removed, or made CURRENT_USER.</summary>
    private void FinishDefiner()
    {
        var complete = definerPhase is DefinerPhase.Done or DefinerPhase.AfterUser or DefinerPhase.AfterCurrentUser;
        definerPhase = DefinerPhase.None;
        if (holdStart < 0)
        {
            return; // kept as dumped: nothing was held
        }

        if (!complete)
        {
            ReleaseHold(); // SQL SECURITY DEFINER, not a clause
            return;
        }

        sink.ReleaseReplacing(checked((int)(definerStart - holdStart)), checked((int)(definerEnd - holdStart)),
            options.Definer == DefinerMode.Strip ? [] : "DEFINER=CURRENT_USER"u8);
        holdStart = -1;
    }

    /// <summary>CREATE EVENT [IF NOT EXISTS] name ON SCHEDULE ... [ENABLE | DISABLE [ON SLAVE]] ... DO body.</summary>
    /// <returns>Whether the token was dealt with (not a name to look at).</returns>
    private bool EventToken(TokenKind kind, ReadOnlySpan<byte> text, long start, long end)
    {
        switch (eventPhase)
        {
            case EventPhase.Name:
                if (kind == TokenKind.Word && (Is(text, "IF"u8) || Is(text, "NOT"u8) || Is(text, "EXISTS"u8)))
                {
                    return true;
                }

                if (kind is TokenKind.Word or TokenKind.Ident or TokenKind.String)
                {
                    eventName = DatabaseNames.Decode(text);
                    eventPhase = EventPhase.AfterName;
                }

                return false; // the name may be a qualifier itself
            case EventPhase.AfterName:
                eventPhase = kind == TokenKind.Punct && text[0] == '.' ? EventPhase.Name : EventPhase.Header;
                if (eventPhase == EventPhase.Name)
                {
                    return true;
                }

                goto case EventPhase.Header;
            case EventPhase.Header:
                if (kind != TokenKind.Word)
                {
                    return false;
                }

                if (Is(text, "DISABLE"u8))
                {
                    eventEnabled = false;
                    return true;
                }

                if (Is(text, "ENABLE"u8))
                {
                    eventEnabled = true;
                    RecordEnabledEvent();
                    if (!options.KeepEventsEnabled)
                    {
                        ReplaceToken(start, end, "DISABLE"u8);
                    }

                    return true;
                }

                if (Is(text, "DO"u8))
                {
                    eventPhase = EventPhase.None;
                    if (eventEnabled is null)
                    {
                        // No status: the server's default is ENABLE.
                        RecordEnabledEvent();
                        if (!options.KeepEventsEnabled)
                        {
                            ReplaceToken(start, start, "DISABLE "u8);
                        }
                    }

                    return true;
                }

                return false;
            default:
                return false;
        }
    }

    private void RecordEnabledEvent()
    {
        if (eventName is not null && enabledEvents.Count < MaxReported)
        {
            enabledEvents.Add(eventName);
        }
    }

    /// <summary>At the end of an object statement: what still waited is decided.</summary>
    private void FinishObject()
    {
        if (definerPhase != DefinerPhase.None)
        {
            FinishDefiner();
        }

        if (candidatePending)
        {
            DecideCandidate(dot: false);
        }

        if (holdStart >= 0)
        {
            ReleaseHold();
        }

        objectMode = false;
        objectHeader = false;
        objectIsTrigger = false;
        objectIsFunction = false;
        triggerTableNext = false;
        objectNameNext = false;
        candidateIsObjectName = false;
        eventPhase = EventPhase.None;
        eventName = null;
        eventEnabled = null;
        afterDot = false;
        tokenAfterDot = false;
        lastTokenStart = -1;
    }

    // ---- SET sql_mode tracking -----------------------------------------------------------------

    private void BeginSet()
    {
        setFlags = noBackslashEscapes;
        setBroken = false;
        ResetAssignment();
    }

    private void ResetAssignment()
    {
        setInValue = false;
        setDepth = 0;
        setTargetWords = 0;
        setTarget = SetTarget.None;
        setVariable = null;
        setValueTokens = 0;
        setValueFlags = null;
    }

    private void SetToken(TokenKind kind, ReadOnlySpan<byte> text)
    {
        if (tokenCount == 2)
        {
            if (kind == TokenKind.Word && (Is(text, "PASSWORD"u8) || Is(text, "ROLE"u8) || Is(text, "DEFAULT"u8) || Is(text, "STATEMENT"u8)))
            {
                // An account's password or roles, or (MariaDB) any statement under SET STATEMENT ... FOR.
                throw Refuse($"a SET {Words(text)} statement");
            }

            if (kind == TokenKind.Word && (Is(text, "@@GLOBAL.GTID_PURGED"u8) || Is(text, "@@GLOBAL.gtid_slave_pos"u8)))
            {
                LeaveOut();
                return;
            }

            if (kind == TokenKind.Word && Is(text, "GLOBAL"u8))
            {
                return; // held: SET GLOBAL gtid_slave_pos is left out, any other refused
            }

            sink.Release();
        }

        if (tokenCount == 3 && sink.Mode == Disposition.Hold)
        {
            if (kind == TokenKind.Word && Is(text, "gtid_slave_pos"u8))
            {
                LeaveOut();
                return;
            }

            throw Refuse("a SET GLOBAL statement");
        }

        if (tokenCount > SetTokenLimit)
        {
            // A long SET: not one of the short sql_mode assignments mysqldump writes.
            setBroken = true;
            watching = false;
            return;
        }

        if (!setInValue)
        {
            if (kind == TokenKind.Punct && text[0] == '=')
            {
                setInValue = true;
            }
            else if (kind == TokenKind.Word)
            {
                ClassifySetTargetWord(text);
                setTargetWords++;
            }
            else if (!(kind == TokenKind.Punct && text[0] == ':'))
            {
                setTarget = SetTarget.Other;
            }

            return;
        }

        if (kind == TokenKind.Punct)
        {
            switch (text[0])
            {
                case (byte)'(':
                    setDepth++;
                    break;
                case (byte)')':
                    if (setDepth > 0)
                    {
                        setDepth--;
                    }

                    break;
                case (byte)',' when setDepth == 0:
                    ApplyAssignment();
                    ResetAssignment();
                    return;
                default:
                    break;
            }
        }

        setValueTokens++;
        if (setValueTokens == 1)
        {
            setValueFlags = tokenOverflow ? null : SqlModeValueFlags(kind, text);
        }
    }

    private void ClassifySetTargetWord(ReadOnlySpan<byte> word)
    {
        if (setTargetWords == 0 && (Is(word, "GLOBAL"u8) || Is(word, "PERSIST"u8) || Is(word, "PERSIST_ONLY"u8)
            || StartsWithIgnoreCase(word, "@@GLOBAL."u8) || StartsWithIgnoreCase(word, "@@PERSIST"u8)))
        {
            throw Refuse("a SET GLOBAL statement");
        }

        if (setTargetWords == 0 && (Is(word, "SESSION"u8) || Is(word, "LOCAL"u8)))
        {
            return;
        }

        if (word.StartsWith("@@"u8))
        {
            setTarget = IsSessionSqlModeVariable(word) ? SetTarget.SqlMode : SetTarget.Other;
        }
        else if (word.Length > 1 && word[0] == '@')
        {
            setTarget = SetTarget.UserVariable;
            setVariable = DatabaseNames.Decode(word[1..]);
        }
        else
        {
            setTarget = Is(word, "sql_mode"u8) ? SetTarget.SqlMode : SetTarget.Other;
        }
    }

    private static bool StartsWithIgnoreCase(ReadOnlySpan<byte> word, ReadOnlySpan<byte> prefix) =>
        word.Length >= prefix.Length && Ascii.EqualsIgnoreCase(word[..prefix.Length], prefix);

    /// <summary><c>@@sql_mode</c>, <c>@@session.sql_mode</c> or <c>@@local.sql_mode</c>.</summary>
    private static bool IsSessionSqlModeVariable(ReadOnlySpan<byte> word)
    {
        if (!word.StartsWith("@@"u8))
        {
            return false;
        }

        var rest = word[2..];
        if (rest.Length > 8 && Ascii.EqualsIgnoreCase(rest[..8], "session."u8))
        {
            rest = rest[8..];
        }
        else if (rest.Length > 6 && Ascii.EqualsIgnoreCase(rest[..6], "local."u8))
        {
            rest = rest[6..];
        }

        return Is(rest, "sql_mode"u8);
    }

    /// <summary>Whether sql_mode would hold NO_BACKSLASH_ESCAPES if assigned this value; null if unknown.</summary>
    private bool? SqlModeValueFlags(TokenKind kind, ReadOnlySpan<byte> text)
    {
        if (kind == TokenKind.String)
        {
            return Encoding.Latin1.GetString(text).Contains("NO_BACKSLASH_ESCAPES", StringComparison.OrdinalIgnoreCase);
        }

        if (kind != TokenKind.Word)
        {
            return null;
        }

        if (IsSessionSqlModeVariable(text))
        {
            return setFlags;
        }

        if (text.Length > 1 && text[0] == '@' && text[1] != '@'
            && userVariables.TryGetValue(DatabaseNames.Decode(text[1..]), out var saved))
        {
            return saved;
        }

        return null;
    }

    private void ApplyAssignment()
    {
        if (!setInValue)
        {
            return;
        }

        var known = setValueTokens == 1 ? setValueFlags : null;
        if (setTarget == SetTarget.SqlMode && known is { } flags)
        {
            setFlags = flags;
        }
        else if (setTarget == SetTarget.UserVariable && setVariable is not null)
        {
            if (known is { } value && (userVariables.Count < MaxUserVariables || userVariables.ContainsKey(setVariable)))
            {
                userVariables[setVariable] = value;
            }
            else
            {
                userVariables.Remove(setVariable);
            }
        }
    }

    private void FinishSet()
    {
        if (!setBroken)
        {
            ApplyAssignment();
        }

        noBackslashEscapes = setFlags;
    }

    // ---- tables ------------------------------------------------------------------------------------

    private static bool[] BuildWordBytes()
    {
        var table = new bool[256];
        for (var c = 0; c < 256; c++)
        {
            table[c] = c is (>= 'a' and <= 'z') or (>= 'A' and <= 'Z') or (>= '0' and <= '9')
                or '_' or '$' or '@' or '.' or >= 0x80;
        }

        return table;
    }

    private static SearchValues<byte> BuildCodeStops(byte delimiterStart)
    {
        var stops = new HashSet<byte>("'\"`\\#-/"u8.ToArray()) { delimiterStart };
        return SearchValues.Create(stops.ToArray());
    }

    /// <summary>In an INSERT's rows also the parentheses, which tell a row's end from a call.</summary>
    private static SearchValues<byte> BuildRowStops(byte delimiterStart)
    {
        var stops = new HashSet<byte>("'\"`\\#-/()"u8.ToArray()) { delimiterStart };
        return SearchValues.Create(stops.ToArray());
    }
}
