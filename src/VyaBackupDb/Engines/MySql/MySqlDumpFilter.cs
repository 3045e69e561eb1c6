using System.Buffers;
using System.Globalization;
using System.Text;

namespace VyaBackupDb.Engines.MySql;

/// <summary>What a <see cref="MySqlDumpFilter"/> does besides pointing the dump at its target.</summary>
/// <param name="SourceDatabase">The database the dump was taken from (from the manifest or the file name), if
/// known; the dump's own USE / CREATE DATABASE name counts too. Qualifiers naming it in views, triggers,
/// routines and events are pointed at the target.</param>
/// <param name="Definer">What becomes of DEFINER clauses.</param>
/// <param name="KeepEventsEnabled">Leave events enabled as dumped; otherwise they are created DISABLED
/// (<see cref="MySqlDumpFilter.EnabledEvents"/> lists them).</param>
/// <param name="ServerSqlMode">The sql_mode the restoring session starts with (the server's global one): how
/// the server reads the dump's first statements, before it sets its own.</param>
/// <param name="RowsFollow">The dump is a backup set's schema.sql, whose rows load after it: a trigger in it
/// would fire on them (the set's triggers come after the rows, in post.sql), so one is refused.</param>
/// <param name="Server">The server's flavor and version: which <c>/*!NNNNN ... */</c> comments it skips.</param>
/// <param name="AllowDataDirectory">Let <c>CREATE TABLE ... DATA DIRECTORY / INDEX DIRECTORY</c> through: the server
/// then creates the table's files in the directory the dump names, outside its data directory.</param>
/// <param name="MaxAllowedPacket">The server's max_allowed_packet: an INSERT longer than it is refused (the server
/// would refuse it, after the client had held it whole). Null: 1 GiB, the largest there is.</param>
public sealed record MySqlFilterOptions(string? SourceDatabase = null, DefinerMode Definer = DefinerMode.Keep, bool KeepEventsEnabled = false,
    string? ServerSqlMode = null, bool RowsFollow = false, ServerInfo? Server = null, bool AllowDataDirectory = false,
    long? MaxAllowedPacket = null);

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

    /// <summary>
    /// Comments and blanks between two statements: the client (with --comments) keeps some of them in
    /// memory to send with the next statement, so a gap of gigabytes would take the host's memory. A
    /// dump's gaps are a few lines.
    /// </summary>
    private const int GapCap = 4 * 1024 * 1024;

    /// <summary>
    /// A statement other than an INSERT's rows (which hold a table's largest row, however large): the
    /// client holds a statement whole, and a dump's others are small. Blanks or comments inside one
    /// would take the host's memory as the gaps between statements would.
    /// </summary>
    private const int StatementCap = 64 * 1024 * 1024;

    /// <summary>
    /// An INSERT's rows without <see cref="MySqlFilterOptions.MaxAllowedPacket"/>: the largest max_allowed_packet
    /// there is (the client, too, runs with 1G). Longer, the client would hold it whole for the server to refuse.
    /// </summary>
    private const long LargestPacket = 1024L * 1024 * 1024;
    private const int TokenCap = 1024;
    private const int SetTokenLimit = 128;
    private const int MaxVersionDigits = 10;
    private const int MaxDelimiterLine = 255;
    private const int MaxDelimiterLength = 15;
    private const int MaxUserVariables = 256;
    private const int MaxReported = 1000;
    private const int MaxPlainNames = 100_000;
    private const int MaxRewind = 256;
    private const int MaxRowWord = 64;
    private const int MaxNumber = 256;

    /// <summary>How far into a dump its header may name the database (mysqldump: "-- Host: h    Database: db").</summary>
    private const int HeaderBytes = 4096;
    private const int MaxDatabaseName = 64;
    private static ReadOnlySpan<byte> HostHeader => "-- Host: "u8;

    /// <summary>Bytes a scanner needs after a '/' to read a conditional comment's marker and version.</summary>
    private const int ConditionalLookahead = 4 + 7;

    private static readonly SearchValues<byte> Spaces = SearchValues.Create(" \t\n\r\v\f"u8);
    private static readonly bool[] WordBytes = BuildWordBytes();
    private static readonly bool[] RowWordStops = BuildRowWordStops();
    private static readonly SearchValues<byte> HexDigits = SearchValues.Create("0123456789abcdefABCDEF"u8);

    private readonly byte[] targetIdentifier;
    private readonly MySqlFilterOptions options;
    private readonly long rowStatementCap;
    private readonly HashSet<string> otherQualifiers = new(StringComparer.Ordinal);
    private readonly HashSet<string> plainNames = new(StringComparer.Ordinal);
    private readonly HashSet<string> referencedDatabases = new(StringComparer.Ordinal);
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
    private readonly Dictionary<string, SetValue> userVariables = new(StringComparer.OrdinalIgnoreCase);

    private byte[] delimiter = [(byte)';'];
    private SearchValues<byte> codeStops = BuildCodeStops((byte)';');
    private SearchValues<byte> rowStops = BuildRowStops((byte)';');
    private readonly HashSet<string> triggerTables = new(StringComparer.OrdinalIgnoreCase);
    private readonly HashSet<string> viewTables = new(StringComparer.OrdinalIgnoreCase);
    private readonly HashSet<string> remoteTables = new(StringComparer.OrdinalIgnoreCase);
    private string tableName = ""; // the statement's table, once read (a CREATE TABLE's while its body is)
    private bool engineNext;
    private bool directoryNext;
    private bool referenceNext;
    private bool candidateIsReference;
    private int createTableTokens;
    private bool setvalClosed;
    private bool gapLineStart = true;
    private bool endedWithTrailer;
    private bool rocksDbPrepared;
    private readonly SqlModeFlags serverSqlMode;
    private readonly long serverVersion;
    private SqlModeFlags sqlMode;

    // The client character set: names are decoded as UTF-8 (the restore's client starts with utf8mb4).
    private ClientCharset clientCharset = ClientCharset.Utf8;
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
    private bool skippedConditional;
    private readonly bool mariaDbLexer;

    // The client's reading of comments (mariadb's add_line, run with --comments): a /*! on a line makes it
    // take the next */ for that comment's end, even one that ends a plain /* */ inside it; it then reads on
    // as if in that plain comment up to the next */, where the server reads code. clientConditionalAt: where
    // a /*! the client still counts on the current line starts (-1: none); clientCommentSkew: between such
    // a */ and the next one, where the client sees no delimiter and no quote.
    private long clientConditionalAt = -1;
    private bool clientCommentSkew;

    // Between statements the client (with --comments) keeps in its buffer a /* */ comment, a line of blanks or a
    // comment after blanks, and sends them with the next statement; a DELIMITER line is then no command to it.
    // It sends a # or -- comment at the start of a line alone, and blanks or such a comment after a delimiter
    // with that statement.
    private bool clientHoldsText;

    /// <summary>Where the current gap between statements started (see <see cref="GapCap"/>).</summary>
    private long gapStart;
    private bool onDelimiterLine;
    private bool lineHasBlanks;

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
    private bool tokenIsName;
    private bool dotDotNext;

    // Where the last bare word (a name or keyword) ended, and where a name follows a '.' directly: the
    // server reads what starts there as a name, never as a number or keyword (t.1abc, t.5, t.select).
    private long lastWordEnd = -1;
    private long nameAt = -1;

    // The rows of an INSERT/REPLACE ... VALUES, checked by the fast path: literals only.
    private bool rowData;
    private int rowDepth;
    private bool rowOpenNext;
    private bool rowHexDigits;

    // An object statement (CREATE TRIGGER/VIEW/PROCEDURE/FUNCTION/EVENT), followed to its end.
    private bool objectMode;
    private bool objectIsTrigger;
    private bool objectIsFunction;
    private bool viewNameNext;
    private MySqlBodyBlocks? bodyBlocks;
    private bool triggerTableNext;
    private bool objectNameNext;
    private byte[] objectWord = [];
    private bool candidateIsObjectName;
    private bool objectHeader;
    private long holdStart = -1;
    private bool afterDot;
    private bool candidatePending;
    private bool candidateIsSource;
    private bool candidateIsName;
    private long candidateStart;
    private long candidateEnd;
    private bool tokenAfterDot;
    private long lastTokenStart = -1;
    private DefinerPhase definerPhase;
    private long definerStart;
    private long definerEnd;
    private EventPhase eventPhase;
    private bool eventCommentNext;
    private bool eventNameRecoded;
    private string? eventName;
    private bool? eventEnabled;

    // SET statement tracking (sql_mode, the client character set, user variables saving them).
    private SqlModeFlags setMode;
    private bool setInValue;
    private int setDepth;
    private int setTargetWords;
    private SetTarget setTarget;
    private string? setVariable;
    private int setValueTokens;
    private SetValue setValue;
    private string setValueText = "";
    private bool setCollate;
    private bool setCharacterNext;
    private bool setAfterIf;
    private ClientCharset setClientCharset;
    private readonly List<(string Name, SetValue Value)> setUserVariables = [];

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
        rowStatementCap = Math.Min(options.MaxAllowedPacket ?? LargestPacket, LargestPacket);
        serverSqlMode = SqlModeOf(Encoding.UTF8.GetBytes(options.ServerSqlMode ?? ""));
        serverVersion = options.Server is { } server ? VersionNumber(server.Version) : 0;
        mariaDbLexer = options.Server is not { } known || known.Flavor == "MariaDB";
        sqlMode = serverSqlMode;
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
        Number,
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
        CreateTableBody,
        SetvalArguments,
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

    /// <summary>
    /// A client character set as this filter tells them apart: UTF-8, one of the one-byte sets it reads as the server
    /// does (<see cref="SingleByte"/>), or another.
    /// </summary>
    private readonly record struct ClientCharset(bool IsUtf8, MySqlSingleByteCharset? SingleByte)
    {
        public static ClientCharset Utf8 => new(true, null);

        public static ClientCharset Other => default;
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
        Charset,
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
    /// The source database's name stood in a view, trigger, routine or event as a name that is no qualifier
    /// (<c>FROM t AS shop</c>): a table or alias of that name, whose <c>shop.x</c> were pointed at the target too.
    /// </summary>
    public bool SourceNameOfItsOwn { get; private set; }

    /// <summary>
    /// After <see cref="CopyAsync"/>: other names used as qualifiers (<c>name.x</c>) in views, triggers,
    /// routines and events: databases the restored objects still use (system schemas, NEW and OLD
    /// left out). A table or alias used as a column qualifier is listed too, so a caller that
    /// warns keeps only the names of databases its server has.
    /// </summary>
    public IReadOnlyCollection<string> OtherDatabaseQualifiers => otherQualifiers;

    /// <summary>
    /// Of <see cref="OtherDatabaseQualifiers"/>, those used as databases are used: the database of a
    /// foreign key's table, or a name the views, triggers, routines and events use only before a '.'
    /// (a table or alias also stands alone somewhere: FROM t, t AS a, db.t). Databases the server lacks,
    /// or hides from the account, are named by these.
    /// </summary>
    public IReadOnlyCollection<string> DatabaseQualifiers =>
        [.. otherQualifiers.Where(q => referencedDatabases.Contains(q) || !plainNames.Contains(q))];

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
            var from = i;
            var scanned = state;
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
            FollowClientComments(from, i, scanned);
            if (scanned is State.Gap or State.GapLineComment or State.GapBlockComment or State.DelimiterLine)
            {
                if (bufferBase + i - gapStart > GapCap)
                {
                    throw Refuse($"more than {GapCap / (1024 * 1024)} MiB of comments and blank lines between two statements", gapStart);
                }
            }
            else if (!rowData && state is not (State.Gap or State.DelimiterLine) && bufferBase + i - unitStart > StatementCap)
            {
                throw Refuse($"a statement of more than {StatementCap / (1024 * 1024)} MiB that is not the rows of an INSERT");
            }
            else if (rowData && state is not (State.Gap or State.DelimiterLine) && bufferBase + i - unitStart > rowStatementCap)
            {
                throw new DumpFilterException(options.MaxAllowedPacket is { } packet
                    ? $"the dump holds an INSERT longer than the server's max_allowed_packet ({packet} bytes) at byte {unitStart}, "
                        + "which the server would refuse (raise max_allowed_packet above the backup's largest row); refused"
                    : $"the dump holds an INSERT longer than 1 GiB (the largest max_allowed_packet there is) at byte {unitStart}, "
                        + "which no server takes; refused");
            }
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

    /// <summary>
    /// After <c>buf[from..to)</c> was read in <paramref name="scanned"/>: the client forgets a /*! at the end of
    /// its line; a */ it takes for a comment's end inside a string or a # / -- comment would end its comment
    /// where the server's string or comment goes on, so the two would read what follows apart.
    /// </summary>
    private void FollowClientComments(int from, int to, State scanned)
    {
        if (clientConditionalAt >= 0)
        {
            var newline = buf.AsSpan(from, to - from).LastIndexOf((byte)'\n');
            if (newline >= 0 && bufferBase + from + newline > clientConditionalAt)
            {
                clientConditionalAt = -1;
            }
        }

        if (clientCommentSkew && scanned is State.SingleQuote or State.DoubleQuote or State.Backtick or State.LineComment or State.GapLineComment
            && buf.AsSpan(from - 1, to - from + 1).IndexOf("*/"u8) >= 0)
        {
            throw ClientCommentSkew(from);
        }
    }

    private DumpFilterException ClientCommentSkew(int i) =>
        Refuse("a /*!...*/ comment with a /* */ comment inside on its line, after which the client reads a delimiter, quote or "
            + "comment in code as part of that comment", bufferBase + i);

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

    /// <summary>
    /// The database a dump without USE says it was taken of: its names then point at the target, as a USE's
    /// would. A false header can only make more names point at the target.
    /// </summary>
    private void LearnSourceFromHeader(ReadOnlySpan<byte> line)
    {
        var at = line.IndexOf("Database: "u8);
        if (at < 0)
        {
            return;
        }

        var name = line[(at + "Database: ".Length)..].TrimEnd(" \t\r"u8);
        if (name.Length is > 0 and <= MaxDatabaseName * 4 && !name.Contains((byte)'`'))
        {
            names.Observe(DatabaseNames.Decode(name));
        }
    }

    private int Gap(int i, int end, bool final)
    {
        var k = buf.AsSpan(i, end - i).IndexOfAnyExcept(Spaces);
        gapLineStart |= buf.AsSpan(i, k < 0 ? end - i : k).Contains((byte)'\n');
        FollowClientBlanks(buf.AsSpan(i, k < 0 ? end - i : k));
        if (k < 0)
        {
            return end;
        }

        i += k;
        if (clientCommentSkew)
        {
            throw ClientCommentSkew(i);
        }

        switch (buf[i])
        {
            case (byte)'#':
                clientHoldsText |= !onDelimiterLine && lineHasBlanks;
                state = State.GapLineComment;
                return i + 1;
            case (byte)'-':
                if (end - i < CompletionTrailer.Length && !final)
                {
                    return NeedMore(i);
                }

                if (IsDashComment(i, end))
                {
                    clientHoldsText |= !onDelimiterLine && lineHasBlanks;
                    if (bufferBase + i < HeaderBytes && buf.AsSpan(i, end - i).StartsWith(HostHeader))
                    {
                        var line = buf.AsSpan(i, end - i).IndexOf((byte)'\n');
                        if (line < 0 && !final && end - i < DumpFilterDriver.MaxLookahead)
                        {
                            return NeedMore(i);
                        }

                        LearnSourceFromHeader(buf.AsSpan(i, line < 0 ? end - i : line));
                    }

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
                        clientHoldsText = true;
                        state = State.GapBlockComment;
                        gapLineStart = false;
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

                // The client reads a DELIMITER command only at the start of a line; elsewhere it is SQL (refused).
                if (gapLineStart && end - i >= 9 && Ascii.EqualsIgnoreCase(buf.AsSpan(i, 9), "delimiter"u8))
                {
                    if (clientHoldsText)
                    {
                        throw Refuse("a DELIMITER line after a /* */ comment, a line of blanks or an indented comment, which the client "
                            + "(run with --comments) holds and sends with it, so that it takes the line for no command", bufferBase + i);
                    }

                    lineHasBlanks = false; // the client reads the whole line as its command
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

    /// <summary>Blanks between statements: a line of them (not the rest of a delimiter's line) stays in the client's buffer.</summary>
    private void FollowClientBlanks(ReadOnlySpan<byte> blanks)
    {
        while (true)
        {
            var newline = blanks.IndexOf((byte)'\n');
            lineHasBlanks |= !onDelimiterLine && (newline < 0 ? blanks.Length : newline) > 0;
            if (newline < 0)
            {
                return;
            }

            clientHoldsText |= lineHasBlanks;
            onDelimiterLine = false;
            lineHasBlanks = false;
            blanks = blanks[(newline + 1)..];
        }
    }

    /// <summary>
    /// Whether <c>buf[i..]</c> (a '-') starts a <c>-- </c> comment. The server also takes <c>--</c> before a
    /// control character for one, and before a byte above ASCII that is a space in the session's character set
    /// (latin1's 0xA0), where the client and this filter read code: such a dump is refused.
    /// </summary>
    private bool IsDashComment(int i, int end)
    {
        if (At(i + 1, end) != '-')
        {
            return false;
        }

        var c = At(i + 2, end);
        if ((c is (>= 0 and < ' ') or >= 0x7F) && !IsSpace(c))
        {
            throw Refuse(c >= 0x80 ? "a -- comment marker before a byte above ASCII" : "a -- comment marker before a control character", bufferBase + i);
        }

        return IsSpaceOrEnd(c);
    }

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

    /// <summary>
    /// Whether the server skips the conditional comment at <c>buf[i..]</c> (its marker <paramref name="marker"/>
    /// bytes long): a version above its own (MariaDB reads 5 or 6 digits, MySQL 5), or <c>/*M!</c> on MySQL.
    /// Unknown without the server (unit tests): executed.
    /// </summary>
    private bool SkippedByServer(int i, int end, int marker)
    {
        if (options.Server is not { } server)
        {
            return false;
        }

        var mariaDb = server.Flavor == "MariaDB";
        if (marker == 4 && !mariaDb)
        {
            return true;
        }

        var digits = 0;
        while (digits < 6 && IsDigit(At(i + marker + digits, end)))
        {
            digits++;
        }

        var length = mariaDb && digits == 6 ? 6 : digits >= 5 ? 5 : 0;
        if (length == 0)
        {
            return false;
        }

        var version = long.Parse(buf.AsSpan(i + marker, length), System.Globalization.CultureInfo.InvariantCulture);
        // MariaDB also skips MySQL's own versions from 5.7 on (/*!50700 to /*!99999), not /*M!.
        return version > serverVersion || (mariaDb && marker == 3 && length == 5 && version >= 50700);
    }

    /// <summary>"10.11.19" as the server compares it with a comment's version: 101119.</summary>
    private static long VersionNumber(string version)
    {
        var parts = version.Split('.');
        long number = 0;
        for (var k = 0; k < 3; k++)
        {
            number = (number * 100) + (k < parts.Length && int.TryParse(parts[k], out var part) ? part : 0);
        }

        return number;
    }

    /// <summary>
    /// The server reads a conditional comment it skips as a plain comment, where this filter and the
    /// client read code: a quote in one would start a string for them alone.
    /// </summary>
    /// <summary>
    /// Under a DELIMITER of its own the client sends everything up to it as one query, and the server
    /// runs each ';'-ended statement in it: a ';' inside anything but a routine, trigger or event
    /// (whose blocks <see cref="MySqlBodyBlocks"/> follows) would start a statement this filter never saw.
    /// </summary>
    private bool SemicolonInside(int i) =>
        buf[i] == ';' && bodyBlocks is null && sink.Mode != Disposition.Drop && !(delimiter.Length == 1 && delimiter[0] == ';');

    private DumpFilterException SemicolonUnderDelimiter(int i) =>
        Refuse("a ';' inside a statement under a DELIMITER of its own, at which the server would start another statement", bufferBase + i);

    private DumpFilterException QuoteInSkippedComment(int i) =>
        Refuse("a quote inside a /*!...*/ comment whose version this server skips", bufferBase + i);

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
        gapStart = bufferBase + i + k;
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
            if (quote != 0 && (c == '\\' || c == quote) && p + 1 < line.Length && line[p + 1] == quote)
            {
                // \' and '' stand for the quote, as in the client's get_arg.
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
        setvalClosed = false;
        tokenCount = 0;
        tokenKind = TokenKind.None;
        inConditional = false;
        skippedConditional = false;
        return i;
    }

    private int EndStatement(int after)
    {
        if (clientCommentSkew)
        {
            throw ClientCommentSkew(after);
        }

        if (step == Step.Set)
        {
            FinishSet(); // before its delimiter is passed: a refused SET never runs
        }

        Commit(after);
        if (objectMode)
        {
            FinishObject();
        }

        if (sink.Mode == Disposition.Hold)
        {
            sink.Release();
        }

        sink.EndUnit();
        state = State.Gap;
        gapStart = bufferBase + after;
        gapLineStart = false;
        clientHoldsText = false;
        onDelimiterLine = true;
        lineHasBlanks = false;
        watching = false;
        rowData = false;
        step = Step.Done;
        tokenKind = TokenKind.None;
        inConditional = false;
        skippedConditional = false;
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
        if (rowHexDigits)
        {
            var digits = buf.AsSpan(i, end - i).IndexOfAnyExcept(HexDigits);
            if (digits < 0)
            {
                return end;
            }

            rowHexDigits = false;
            i += digits;
        }

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

        if (SemicolonInside(i))
        {
            throw SemicolonUnderDelimiter(i);
        }

        if (rowData && RowWordStops[b])
        {
            return RowWord(i, end, final);
        }

        if (rowData && (b == '`' || (b == '"' && (sqlMode & SqlModeFlags.AnsiQuotes) != 0)))
        {
            throw Refuse("a quoted name in an INSERT's rows");
        }

        // A statement left out never reaches the server: how it reads it does not matter.
        if (skippedConditional && (b is (byte)'\'' or (byte)'"' or (byte)'`') && sink.Mode != Disposition.Drop)
        {
            throw QuoteInSkippedComment(i);
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

                if (IsDashComment(i, end))
                {
                    state = State.LineComment;
                    return i + 2;
                }

                return i + 1;
            case (byte)'/':
                if (end - i < ConditionalLookahead && !final)
                {
                    return NeedMore(i);
                }

                skippedConditional &= buf[i - 1] != '*'; // "*/" ends it
                if (buf[i - 1] == '*')
                {
                    EndClientComment();
                }

                if (At(i + 1, end) == '*')
                {
                    var marker = ConditionalMarkerLength(i, end);
                    if (marker > 0)
                    {
                        OpenClientConditional(i, marker);
                        inConditional = true;
                        skippedConditional = SkippedByServer(i, end, marker);
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

    /// <summary>
    /// Outside the strings of a row, mysqldump writes numbers, NULL, hex (<c>0x4142</c>) and bit
    /// (<c>b'101'</c>) literals and <c>_binary</c>; any other word (<c>NEXT VALUE FOR other.s</c>,
    /// a column), a variable (<c>@v := ...</c>, which would change what a later SET means to the
    /// server but not to this filter) or a byte above ASCII is refused.
    /// </summary>
    private int RowWord(int i, int end, bool final)
    {
        var b = buf[i];
        var before = buf[i - 1]; // DumpFilterDriver keeps the bytes before the scan start
        if (b == 'x' && before == '0' && !IsRowWordByte(buf[i - 2]) && buf[i - 2] != '.')
        {
            rowHexDigits = true;
            return i + 1;
        }

        var j = i;
        while (j < end && j - i <= MaxRowWord && IsRowWordByte(buf[j]))
        {
            j++;
        }

        if (j + 1 >= end && !final && j - i <= MaxRowWord)
        {
            return NeedMore(i);
        }

        var word = buf.AsSpan(i, j - i);
        // An exponent as the server reads one: 1e5, 1.5e-3, 1.e5 (1e alone is a name, 1e5x the number and a name).
        var exponent = (b is (byte)'e' or (byte)'E') && (IsDigit(before) || (before == '.' && IsDigit(buf[i - 2])))
            && (word.Length > 1 ? IsNumber(word[1..]) : At(j, end) is '+' or '-' && IsDigit(At(j + 1, end)));
        var literal = Is(word, "NULL"u8) || Is(word, "_binary"u8)
            || (word.Length == 1 && (b is (byte)'b' or (byte)'B' or (byte)'x' or (byte)'X') && At(j, end) == '\'')
            || exponent;
        if (!literal)
        {
            throw Refuse(b == '@' ? "a variable in an INSERT's rows"
                : b >= 0x80 ? "a byte above ASCII outside the strings of an INSERT's rows"
                : $"a name or keyword in an INSERT's rows ({Printable(word)})");
        }

        return j;
    }

    /// <summary>Letters, digits, '_', '$', '@' and bytes above ASCII: what a word or variable in a row is made of.</summary>
    private static bool IsRowWordByte(byte b) => IsDigit(b) || RowWordStops[b];

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

            if (SemicolonInside(i))
            {
                throw SemicolonUnderDelimiter(i);
            }

            // What the server skips as a comment is no part of the statement it reads: no token there. The
            // bytes the client reads otherwise (quotes, comment markers, backslashes) are still looked at below.
            if (skippedConditional && b is not ((byte)'*' or (byte)'\'' or (byte)'"' or (byte)'`' or (byte)'\\' or (byte)'#' or (byte)'-' or (byte)'/'))
            {
                i++;
                continue;
            }

            if (b == '.' && !(tokenKind == TokenKind.Word && tokenHasAt))
            {
                // A dot is read as the server reads it (not in @var.names, which are one token).
                if (end - i < 2 && !final)
                {
                    return NeedMore(i);
                }

                var next = At(i + 1, end);
                if (tokenKind == TokenKind.Word)
                {
                    // "a.b": a name follows at once. Outside object statements the qualified name stays one word.
                    if (!objectMode && IsNameByte(next))
                    {
                        nameAt = bufferBase + i + 1;
                        AppendToken(b);
                        i++;
                        continue;
                    }

                    EmitToken(i);
                    continue;
                }

                if (IsDigit(next) && bufferBase + i != lastWordEnd)
                {
                    // ".5" is a number, except right after a name ("t.5" names column 5 of t). After a
                    // quoted name MariaDB reads a number (`t`.5abc is `t`, .5 and abc), MySQL may not: refused.
                    if (buf[i - 1] == '`' || (buf[i - 1] == '"' && (sqlMode & SqlModeFlags.AnsiQuotes) != 0))
                    {
                        throw Refuse("a number right after a quoted name", bufferBase + i);
                    }

                    var number = StartNumber(i, end, final);
                    if (number < 0)
                    {
                        return NeedMore(i);
                    }

                    i += number;
                    continue;
                }

                if (mariaDbLexer && next == '.')
                {
                    // MariaDB's "..", as in FOR i IN 1..10: one token, after which a number or keyword may follow.
                    dotDotNext = true;
                    StartToken(TokenKind.Punct, i);
                    dotDotNext = false;
                    AppendToken(".."u8);
                    EmitToken(i + 2);
                    i += 2;
                    continue;
                }

                if (IsNameByte(next))
                {
                    nameAt = bufferBase + i + 1;
                }

                if (!objectMode)
                {
                    // ".name", "." (after a quoted name): a word, as a qualified name is.
                    StartToken(TokenKind.Word, i);
                    AppendToken(b);
                    i++;
                    continue;
                }

                StartToken(TokenKind.Punct, i);
                AppendToken(b);
                EmitToken(i + 1);
                i++;
                continue;
            }

            if (WordBytes[b])
            {
                if (tokenKind != TokenKind.Word)
                {
                    if (IsDigit(b) && bufferBase + i != nameAt)
                    {
                        // A number, or a name that starts with digits (1abc, 0x1g, 1e).
                        var number = StartNumber(i, end, final);
                        if (number < 0)
                        {
                            return NeedMore(i);
                        }

                        if (number > 0)
                        {
                            i += number;
                            continue;
                        }
                    }

                    StartToken(TokenKind.Word, i);
                }

                // The rest of the word at once, up to a possible delimiter or a dot (decided above; in
                // @var.names and user@host names a dot is part of the word).
                var j = i;
                do
                {
                    tokenHasAt |= buf[j] == '@';
                    j++;
                }
                while (j < end && WordBytes[buf[j]] && buf[j] != delimiter[0] && (buf[j] != '.' || tokenHasAt));

                if (!clientCharset.IsUtf8 && buf.AsSpan(i, j - i).ContainsAnyExceptInRange((byte)0, (byte)0x7F))
                {
                    // In latin1 and other one-byte sets the server reads some of them (0xA0, 0xFF) as spaces,
                    // which split what this filter reads as one word.
                    throw Refuse("a byte above ASCII outside a string or quoted name under a client character set other than UTF-8",
                        bufferBase + i);
                }

                AppendToken(buf.AsSpan(i, j - i));
                i = j;
                continue;
            }

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

                case (byte)'\'' or (byte)'"' or (byte)'`' when skippedConditional && sink.Mode != Disposition.Drop:
                    throw QuoteInSkippedComment(i);
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

                    if (IsDashComment(i, end))
                    {
                        state = State.LineComment;
                        return i + 2;
                    }

                    break;
                case (byte)'/':
                    if (end - i < ConditionalLookahead && !final)
                    {
                        return NeedMore(i);
                    }

                    if (buf[i - 1] == '*')
                    {
                        EndClientComment();
                    }

                    if (At(i + 1, end) == '*')
                    {
                        var marker = ConditionalMarkerLength(i, end);
                        if (marker > 0)
                        {
                            // Executable comment: its content is code; skip the marker and the version the server reads.
                            OpenClientConditional(i, marker);
                            inConditional = true;
                            skippedConditional = SkippedByServer(i, end, marker);
                            i += marker + VersionLength(i, end, marker);
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
                            skippedConditional = false;
                            EndClientComment();
                            i += 2;
                            continue;
                        }
                    }

                    break;
                default:
                    break;
            }

            if (!skippedConditional)
            {
                StartToken(TokenKind.Punct, i);
                AppendToken(b);
                EmitToken(i + 1);
            }

            i++;
        }

        return i;
    }

    /// <summary>Letters, digits, '_', '$' and bytes above ASCII: what the server reads a name of (not '@' or '.').</summary>
    private static bool IsNameByte(int c) => c >= 0 && c != '@' && c != '.' && WordBytes[c];

    /// <summary>
    /// At a digit, or a '.' before one, that starts a token: reads the number the server reads there as one
    /// <see cref="TokenKind.Number"/> token and returns its length; 0 when the digits start a name instead
    /// (<c>1abc</c>, <c>0x1g</c>, <c>1e</c>, <c>1e+x</c>); -1 when more input is needed to tell. As in the server's
    /// lexer, whatever follows a number starts a new token: <c>1.SELECT</c> is the number <c>1.</c> and the
    /// keyword SELECT, <c>1e5END</c> the number <c>1e5</c> and END.
    /// </summary>
    private int StartNumber(int i, int end, bool final)
    {
        var length = NumberLength(i, end, final);
        if (length > 0)
        {
            StartToken(TokenKind.Number, i);
            AppendToken(buf.AsSpan(i, length));
            EmitToken(i + length);
        }

        return length;
    }

    private int NumberLength(int i, int end, bool final)
    {
        var more = false;
        var tooLong = false;
        var malformed = false;
        int length;
        if (buf[i] == '.')
        {
            length = Fraction(i + 1);
        }
        else if (buf[i] == '0' && C(i + 1) is 'x' or 'b')
        {
            // 0x1F, 0b101: at least one digit, and no name byte right after (0x1g is a name).
            var hex = C(i + 1) == 'x';
            var k = i + 2;
            while (hex ? IsHexDigit(C(k)) : C(k) is '0' or '1')
            {
                k++;
            }

            length = k - i >= 3 && !IsNameByte(C(k)) ? k - i : 0;
        }
        else
        {
            var k = Digits(i);
            var c = C(k);
            if (!IsNameByte(c))
            {
                // 12, or 12. / 12.5 / 12.5e-3 (MariaDB reads "1..9" as 1 and "..").
                length = c == '.' && !(mariaDbLexer && C(k + 1) == '.') ? Fraction(k + 1) : k - i;
            }
            else if (c is 'e' or 'E' && IsDigit(C(k + 1)))
            {
                length = Digits(k + 1) - i; // 1e5
            }
            else if (c is 'e' or 'E' && C(k + 1) is '+' or '-' && IsDigit(C(k + 2)))
            {
                length = Digits(k + 2) - i; // 1e+5
            }
            else
            {
                length = 0; // a name: 1abc, 1e, 1ex
            }
        }

        if (tooLong)
        {
            throw Refuse($"a number longer than {MaxNumber} bytes", bufferBase + i);
        }

        if (more)
        {
            return -1;
        }

        if (malformed)
        {
            // 1.e or 1.5e+ : the server stops with a syntax error; this check does not guess what it runs first.
            throw Refuse("a number with an exponent but no digits", bufferBase + i);
        }

        return length;

        int C(int k)
        {
            if (k - i > MaxNumber + 2)
            {
                tooLong = true;
                return -1;
            }

            if (k < end)
            {
                return buf[k];
            }

            more |= !final;
            return -1;
        }

        int Digits(int k)
        {
            while (IsDigit(C(k)))
            {
                k++;
            }

            return k;
        }

        int Fraction(int k)
        {
            k = Digits(k);
            if (C(k) is not ('e' or 'E'))
            {
                return k - i;
            }

            k++;
            if (C(k) is '+' or '-')
            {
                k++;
            }

            malformed = !IsDigit(C(k));
            return Digits(k) - i;
        }
    }

    private static bool IsHexDigit(int c) => c is (>= '0' and <= '9') or (>= 'a' and <= 'f') or (>= 'A' and <= 'F');

    /// <summary>
    /// How many digits after a <c>/*!</c> or <c>/*M!</c> marker the server reads as the version: 5, or 6 on MariaDB when a
    /// sixth digit follows; none when fewer than 5 digits follow (then they are code). More digits than the server reads
    /// would start a number right after the version: refused, as no dump writes one.
    /// </summary>
    private int VersionLength(int i, int end, int marker)
    {
        var digits = 0;
        while (digits < 7 && IsDigit(At(i + marker + digits, end)))
        {
            digits++;
        }

        if (digits < 5)
        {
            return 0;
        }

        var length = mariaDbLexer && digits >= 6 ? 6 : 5;
        if (digits > length && !skippedConditional)
        {
            throw Refuse("a /*!...*/ version number that runs into more digits", bufferBase + i);
        }

        return length;
    }

    private int Quoted(int i, int end, bool final)
    {
        var quote = state switch
        {
            State.SingleQuote => (byte)'\'',
            State.DoubleQuote => (byte)'"',
            _ => (byte)'`',
        };
        // Under ANSI_QUOTES "..." is a name, read without escapes; one holding a backslash is refused,
        // since a client that does not know ANSI_QUOTES would read it as a string with an escape.
        var ansiName = state == State.DoubleQuote && (sqlMode & SqlModeFlags.AnsiQuotes) != 0;
        var escapes = state != State.Backtick && !ansiName && (sqlMode & SqlModeFlags.NoBackslashEscapes) == 0;
        var span = buf.AsSpan(i, end - i);
        var k = escapes || ansiName ? span.IndexOfAny(quote, (byte)'\\') : span.IndexOf(quote);
        if (k < 0)
        {
            AppendToken(span);
            return end;
        }

        AppendToken(span[..k]);
        i += k;
        if (buf[i] == '\\')
        {
            if (ansiName)
            {
                throw Refuse("a backslash in a double-quoted name under ANSI_QUOTES", bufferBase + i);
            }

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
        var read = k >= 0 ? k : !final && span[^1] == '*' ? span.Length - 1 : span.Length;
        FollowClientConditionalInComment(i, read);
        if (k >= 0)
        {
            state = state == State.GapBlockComment ? State.Gap : State.Code;
            // The client ends its comment here only if no /*! is open on the line; else it reads on as in a comment.
            clientCommentSkew = clientConditionalAt >= 0;
            clientConditionalAt = -1;
            return i + k + 2;
        }

        return read < span.Length ? NeedMore(i + read) : end;
    }

    /// <summary>The client also counts a /*! inside a plain comment (from two bytes back: one split over reads).</summary>
    private void FollowClientConditionalInComment(int i, int read)
    {
        var text = buf.AsSpan(i - 2, read + 2);
        var newline = text.LastIndexOf((byte)'\n');
        var opened = text.LastIndexOf("/*!"u8);
        if (newline >= 0)
        {
            clientConditionalAt = -1;
        }

        if (opened > newline)
        {
            clientConditionalAt = bufferBase + i - 2 + opened;
        }
    }

    /// <summary>A /*! (not /*M!, which the client reads as code) the client counts until its line ends or a */.</summary>
    private void OpenClientConditional(int i, int marker)
    {
        if (clientCommentSkew)
        {
            throw ClientCommentSkew(i);
        }

        if (marker == 3)
        {
            clientConditionalAt = bufferBase + i;
        }
    }

    /// <summary>A */ read as code: the client's /*! comment, or the comment it read on in, ends there too.</summary>
    private void EndClientComment()
    {
        clientConditionalAt = -1;
        clientCommentSkew = false;
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
        tokenIsName = kind == TokenKind.Word && tokenStart == nameAt;
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
        if (kind == TokenKind.Word)
        {
            lastWordEnd = bufferBase + end;
        }

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
                    // A sequence takes table options too (ENGINE, DATA DIRECTORY).
                    ExpectTableName(list: false, Step.CreateTableBody);
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

                tableName = afterName is Step.InsertColumns or Step.CreateTableBody ? ComparableName(text) : DatabaseNames.Decode(text);

                if (afterName == Step.InsertColumns)
                {
                    RefuseRowsInto(tableName);
                }

                step = Step.AfterTableName;
                return;
            case Step.AfterTableName:
                if (kind == TokenKind.Word && text[0] == '.')
                {
                    // `other`.`t`: the name before the dot was the database's.
                    throw OtherDatabase(Encoding.UTF8.GetBytes(tableName));
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

                if (afterName == Step.SetvalArguments)
                {
                    step = Step.SetvalArguments;
                    goto case Step.SetvalArguments;
                }

                if (afterName == Step.CreateTableBody)
                {
                    sink.Release();
                    step = Step.CreateTableBody;
                    columnDepth = 0;
                    createTableTokens = 0;
                    engineNext = false;
                    directoryNext = false;
                    referenceNext = false;
                    // Its names are followed as an object statement's are: a qualifier naming the source is pointed at the target.
                    objectMode = true;
                    lastTokenStart = unitStart + start;
                    goto case Step.CreateTableBody;
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
                        || Is(text, "AUTO_INCREMENT"u8)))
                    || (kind == TokenKind.Number && IsNumber(text))
                    || (kind == TokenKind.Punct && text[0] == '='))
                {
                    return;
                }

                throw Refuse($"an ALTER TABLE ... {Words(text)} statement");
            case Step.CreateTableBody:
                // Columns, keys and table options, as mysqldump writes them; not ... SELECT (rows read
                // from anywhere) nor ... LIKE. An engine whose rows live elsewhere is remembered.
                createTableTokens++;
                if (kind == TokenKind.Punct)
                {
                    columnDepth += text[0] == '(' ? 1 : text[0] == ')' ? -1 : 0;
                    return;
                }

                if (kind == TokenKind.Word && (Is(text, "SELECT"u8) || (Is(text, "LIKE"u8) && createTableTokens <= 2)))
                {
                    throw Refuse($"a CREATE TABLE ... {Words(text)} statement");
                }

                if (engineNext && IsRemoteEngine(text))
                {
                    remoteTables.Add(tableName);
                }

                if (directoryNext && kind == TokenKind.Word && Is(text, "DIRECTORY"u8) && !options.AllowDataDirectory)
                {
                    throw new DumpFilterException(
                        $"the dump creates table {ShownTable} with a DATA or INDEX DIRECTORY at byte {unitStart}: "
                        + "its files would be written outside the server's data directory; refused (restore with --allow-data-directory "
                        + "to create them in the directory the dump names)");
                }

                engineNext = kind == TokenKind.Word && Is(text, "ENGINE"u8);
                directoryNext = kind == TokenKind.Word && (Is(text, "DATA"u8) || Is(text, "INDEX"u8));
                if (NameToken(kind, text, unitStart + start, unitStart + end))
                {
                    candidateIsReference = referenceNext;
                }

                referenceNext = kind == TokenKind.Word && Is(text, "REFERENCES"u8);
                return;
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
                // Left out: mysqldump's LOCK TABLES ... WRITE around a table's rows only speeds a MyISAM load up,
                // and a table whose default draws from a sequence cannot be written under it (the sequence is not locked).
                if (kind == TokenKind.Word && (Is(text, "TABLES"u8) || Is(text, "TABLE"u8)))
                {
                    LeaveOut();
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
                    ExpectTableName(list: false, Step.SetvalArguments);
                    return;
                }

                throw Refuse($"{A(verb)} statement other than SETVAL");
            case Step.SetvalArguments:
                // SETVAL(`s`, 42, 0): numbers, then nothing after the ')' (no INTO OUTFILE, no other call).
                if (setvalClosed || !((kind == TokenKind.Punct && text[0] is (byte)',' or (byte)'-' or (byte)')')
                    || (kind == TokenKind.Number && IsNumber(text))
                    || (kind == TokenKind.Word && (Is(text, "TRUE"u8) || Is(text, "FALSE"u8)))))
                {
                    throw Refuse($"{A(verb)} SETVAL statement with more than a sequence and numbers");
                }

                setvalClosed = kind == TokenKind.Punct && text[0] == ')';
                return;
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

    /// <summary>
    /// mysqldump writes no rows into a view, or into a table whose trigger it created first (it
    /// creates triggers after the rows), or into a MERGE, FEDERATED, CONNECT or SPIDER table (their
    /// rows live in other tables, files or servers): rows into one could reach beyond the target.
    /// </summary>
    private void RefuseRowsInto(string table)
    {
        if (triggerTables.Contains(table))
        {
            throw Refuse($"an INSERT into a table whose trigger the dump created first ({table})");
        }

        if (viewTables.Contains(table))
        {
            throw Refuse($"an INSERT into a view ({table})");
        }

        if (remoteTables.Contains(table))
        {
            throw Refuse($"an INSERT into a MERGE, FEDERATED, CONNECT or SPIDER table ({table})");
        }
    }

    private static bool IsRemoteEngine(ReadOnlySpan<byte> engine) =>
        Is(engine, "MRG_MyISAM"u8) || Is(engine, "MERGE"u8) || Is(engine, "FEDERATED"u8) || Is(engine, "CONNECT"u8) || Is(engine, "SPIDER"u8);

    /// <summary>The next token is a table (or routine, sequence...) name of the target; <paramref name="then"/> follows it.</summary>
    private void ExpectTableName(bool list, Step then)
    {
        nameList = list;
        afterName = then;
        step = Step.TableName;
    }

    private DumpFilterException OtherDatabase(ReadOnlySpan<byte> name) =>
        Refuse($"{A(verb)} statement on a table or other object of another database ({Printable(name)}…)");

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

    private string ShownTable => Printable(Encoding.UTF8.GetBytes(tableName));

    /// <summary>
    /// Up to 32 characters for a message: UTF-8 letters as they are, any other byte in hex (`\xE9`), and a control
    /// character or space as `?`, so that a line stays one line.
    /// </summary>
    private static string Printable(ReadOnlySpan<byte> text)
    {
        var shown = new StringBuilder();
        for (var (i, characters) = (0, 0); i < text.Length && characters < 32; characters++)
        {
            if (Rune.DecodeFromUtf8(text[i..], out var rune, out var length) != OperationStatus.Done)
            {
                shown.Append(CultureInfo.InvariantCulture, $"\\x{text[i]:X2}");
                i++;
                continue;
            }
            shown.Append(Rune.IsControl(rune) || Rune.IsWhiteSpace(rune) ? "?" : rune.ToString());
            i += length;
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

        RequireComparableName(name);
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
        var dot = kind == TokenKind.Punct && buf[i] == '.' && !dotDotNext;
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
        // An event's comment too: it may be rewritten whole (RecodeUtf8UnderSingleByte).
        if (tokenKind is not (TokenKind.Word or TokenKind.Ident or TokenKind.String)
            || (tokenKind == TokenKind.String && !tokenDoubleQuoted && !eventCommentNext))
        {
            return i;
        }

        var start = (int)(tokenStart - bufferBase);
        if (start < segment || i - start > MaxRewind)
        {
            return i; // too long to be a database name
        }

        tokenKind = TokenKind.None;
        if (state is State.Backtick or State.DoubleQuote or State.SingleQuote)
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
            DefinerToken(kind, text, start, end);
            return;
        }

        // What the server skips (a /*!NNNNN ... */ of another version) is no part of the body it reads.
        if (!skippedConditional && bodyBlocks?.Accept(kind switch
            {
                // A word right after a '.' is a name to the server, even END or BEGIN.
                TokenKind.Word => tokenIsName ? MySqlBodyBlocks.Token.Name : MySqlBodyBlocks.Token.Word,
                TokenKind.Ident => MySqlBodyBlocks.Token.Name,
                TokenKind.Punct => MySqlBodyBlocks.Token.Punct,
                _ => MySqlBodyBlocks.Token.Literal,
            }, text) is { } problem)
        {
            throw Refuse(problem, start);
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
                if (objectIsTrigger && options.RowsFollow)
                {
                    throw Refuse("a trigger before a backup set's rows (the set's own come after them, in post.sql)");
                }

                objectIsFunction = Is(text, "FUNCTION"u8);
                viewNameNext = Is(text, "VIEW"u8);
                // Where the server ends the statement it is sent as: nothing may follow (see MySqlBodyBlocks).
                bodyBlocks = new MySqlBodyBlocks(text);
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
                triggerTables.Add(ComparableName(text));
            }
        }

        if (viewNameNext)
        {
            // The names up to its columns or AS (a qualifier too): rows into the view would go to the tables it reads.
            if ((kind == TokenKind.Word && Is(text, "AS"u8)) || (kind == TokenKind.Punct && text[0] == '('))
            {
                viewNameNext = false;
            }
            else if (IsName(kind))
            {
                viewTables.Add(ComparableName(text));
            }
        }

        if (eventPhase != EventPhase.None && EventToken(kind, text, start, end))
        {
            return;
        }

        NameToken(kind, text, start, end);
    }

    /// <summary>A name that may be a qualifier (the next token tells): one of the source is held to be pointed at the target.</summary>
    /// <returns>Whether it waits for the next token.</returns>
    private bool NameToken(TokenKind kind, ReadOnlySpan<byte> text, long start, long end)
    {
        var name = kind == TokenKind.Ident || (kind == TokenKind.String && tokenDoubleQuoted)
            || (kind == TokenKind.Word && text[0] != '@');
        if (!name || tokenAfterDot || tokenOverflow)
        {
            if (name && tokenAfterDot && !tokenOverflow)
            {
                RecordPlainName(text);
            }

            return false;
        }

        candidatePending = true;
        candidateIsReference = false;
        candidateIsObjectName = objectNameNext && !(kind == TokenKind.Word && (Is(text, "IF"u8) || Is(text, "NOT"u8) || Is(text, "EXISTS"u8)));
        objectNameNext &= !candidateIsObjectName;
        candidateStart = start;
        candidateEnd = end;
        candidateText.Clear();
        candidateText.Append(text);
        candidateIsSource = IsSource(text);
        candidateIsName = kind != TokenKind.String;
        if (candidateIsSource)
        {
            HoldFrom(start);
        }

        return true;
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
        if (dot)
        {
            RequireComparableName(candidateText.Span);
        }

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
                SourceNameOfItsOwn |= candidateIsName && !candidateIsObjectName;
                ReleaseHold();
            }

            return;
        }

        if (dot && candidateIsObjectName)
        {
            throw Refuse($"a CREATE {Words(objectWord)} statement of an object in another database ({Printable(candidateText.Span)})");
        }

        if (!dot)
        {
            RecordPlainName(candidateText.Span);
            return;
        }

        if (!IsOtherDatabase(candidateText.Span))
        {
            return;
        }

        // A table's foreign key may reference another database's table (the server only reads it); its
        // default drawing from another database's sequence, or a MERGE table over its tables, would write there.
        if (step == Step.CreateTableBody && !candidateIsReference)
        {
            throw new DumpFilterException(
                $"the dump creates table {ShownTable} over a sequence or table of another database "
                + $"({Printable(candidateText.Span)}) at byte {unitStart}: the restore and the copy would write there; refused");
        }

        if (otherQualifiers.Count < MaxReported)
        {
            RecordOtherQualifier(candidateText.Span);
            if (candidateIsReference)
            {
                Record(referencedDatabases, candidateText.Span);
            }
        }
    }

    /// <summary>Neither the target, a trigger's rows, nor a system schema.</summary>
    private bool IsOtherDatabase(ReadOnlySpan<byte> name) => !(name.SequenceEqual(targetBytes) || IsRowsOrSystemSchema(name));

    /// <summary>A trigger's rows (NEW., OLD.) or a system schema: a qualifier that names no other database (the backup's check too).</summary>
    internal static bool IsRowsOrSystemSchema(ReadOnlySpan<byte> name) =>
        Is(name, "NEW"u8) || Is(name, "OLD"u8) || Is(name, "information_schema"u8) || Is(name, "performance_schema"u8)
        || name.SequenceEqual("mysql"u8) || name.SequenceEqual("sys"u8);

    private void RecordOtherQualifier(ReadOnlySpan<byte> name) => Record(otherQualifiers, name);

    /// <summary>A name not before a '.' in a view, trigger, routine or event (a table's columns are no such names).</summary>
    private void RecordPlainName(ReadOnlySpan<byte> name)
    {
        // Past the cap, names are no longer told from databases: a warning may name a table too.
        if (step == Step.Object && plainNames.Count < MaxPlainNames)
        {
            Record(plainNames, name);
        }
    }

    private static void Record(HashSet<string> names, ReadOnlySpan<byte> name)
    {
        Span<char> chars = stackalloc char[TokenCap];
        var text = chars[..Encoding.UTF8.GetChars(name, chars)];
        var lookup = names.GetAlternateLookup<ReadOnlySpan<char>>();
        if (!lookup.Contains(text))
        {
            names.Add(text.ToString());
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

    private void DefinerToken(TokenKind kind, ReadOnlySpan<byte> text, long start, long end)
    {
        if (definerPhase is DefinerPhase.User or DefinerPhase.Host && kind is TokenKind.Ident or TokenKind.String && options.Definer == DefinerMode.Keep)
        {
            // A trigger's or event's definer is written in UTF-8 under a one-byte set (a routine's or view's as created,
            // which is not UTF-8 unless its account's name reads as mojibake).
            RecodeUtf8UnderSingleByte(start, end);
        }

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
                    if (kind == TokenKind.Ident && RecodeUtf8UnderSingleByte(start, end))
                    {
                        eventNameRecoded = true;
                        return true;
                    }
                }

                return false; // the name may be a qualifier itself
            case EventPhase.AfterName:
                eventPhase = kind == TokenKind.Punct && text[0] == '.' ? EventPhase.Name : EventPhase.Header;
                if (eventPhase == EventPhase.Name)
                {
                    if (eventNameRecoded)
                    {
                        throw new DumpFilterException($"the dump names {Printable(Encoding.UTF8.GetBytes(eventName!))} at byte {unitStart} as a "
                            + "database under a client character set other than UTF-8: the server reads its bytes above ASCII as other characters "
                            + "than this check does; refused");
                    }

                    return true;
                }

                goto case EventPhase.Header;
            case EventPhase.Header:
                if (eventCommentNext && kind == TokenKind.String)
                {
                    eventCommentNext = false;
                    RecodeUtf8UnderSingleByte(start, end);
                    return true;
                }

                eventCommentNext = kind == TokenKind.Word && Is(text, "COMMENT"u8);
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

    /// <summary>
    /// An event's name or comment, or a trigger's or event's definer, under a one-byte set such as latin1 or cp1251:
    /// SHOW CREATE writes them in UTF-8 but the body as created, and mariadb-dump sets the character set the object was
    /// created under before it, so the server would read them as other letters (`év` would be created as `Ã©v`; cp1251's
    /// `И`, 0xD0 0x98, is no text at all there). Written in that set, they come back as they were.
    /// </summary>
    /// <returns>Whether the token was rewritten (not if it is ASCII, not UTF-8, holds a character the set has not, or
    /// is not whole in this read).</returns>
    private bool RecodeUtf8UnderSingleByte(long start, long end)
    {
        var first = start - bufferBase;
        if (clientCharset.SingleByte is not { } set || first < segment)
        {
            return false;
        }

        var written = buf.AsSpan((int)first, (int)(end - start));
        if (!written.ContainsAnyExceptInRange((byte)0, (byte)0x7F) || set.FromUtf8(written) is not { } recoded)
        {
            return false;
        }

        ReplaceToken(start, end, recoded);
        return true;
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

        if (bodyBlocks?.Finish() is { } problem)
        {
            throw Refuse(problem);
        }

        bodyBlocks = null;

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
        viewNameNext = false;
        triggerTableNext = false;
        objectNameNext = false;
        candidateIsObjectName = false;
        eventPhase = EventPhase.None;
        eventCommentNext = false;
        eventNameRecoded = false;
        eventName = null;
        eventEnabled = null;
        afterDot = false;
        tokenAfterDot = false;
        lastTokenStart = -1;
    }

    // ---- SET: how the server reads the statements that follow ---------------------------------------
    //
    // The server finds a string's end by sql_mode (NO_BACKSLASH_ESCAPES; under ANSI_QUOTES "..." is a
    // name, without escapes) and by the client character set (in big5, cp932, gbk, sjis and gb18030
    // a backslash byte can end a multi-byte character). This filter must read every statement as the
    // server will, or a planted dump could hide a statement inside what the filter takes for a
    // string. So it follows every SET of sql_mode and of the client character set (also through the
    // user variables mysqldump saves them in), and refuses one whose value it cannot know or whose
    // character set it cannot read.

    [Flags]
    private enum SqlModeFlags : byte
    {
        None = 0,
        NoBackslashEscapes = 1,
        AnsiQuotes = 2,
    }

    /// <summary>What a SET value means to the server's reading: the sql_mode flags it gives (null: not
    /// known), whether it names a client character set read as this filter reads (false: not known), and
    /// which one it is (UTF-8, as this filter decodes names, or a one-byte set it reads).</summary>
    private readonly record struct SetValue(SqlModeFlags? SqlMode, bool ReadableCharset, ClientCharset Charset)
    {
        public static SetValue Unknown => new(null, false, ClientCharset.Other);
    }

    /// <remarks>The server reads every value of a SET before it assigns any (<c>SET @c = 'latin1', NAMES @c</c> reads
    /// the @c from before), so values here are read from the state at the statement's start, and applied at its end.</remarks>
    private void BeginSet()
    {
        setMode = sqlMode;
        setClientCharset = clientCharset;
        setUserVariables.Clear();
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
        setValue = SetValue.Unknown;
        setValueText = "";
        setCollate = false;
        setCharacterNext = false;
        setAfterIf = false;
    }

    private void SetToken(TokenKind kind, ReadOnlySpan<byte> text)
    {
        if (tokenCount == 2)
        {
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
            throw Refuse($"a SET statement of more than {SetTokenLimit} words");
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
            else if (kind is TokenKind.Ident or TokenKind.String)
            {
                // `sql_mode`, @`v`, @'v': names mysqldump never quotes, which the server reads as the bare ones.
                throw UnwrittenSetTarget();
            }
            else if (!(kind == TokenKind.Punct && text[0] == ':'))
            {
                throw UnwrittenSetTarget();
            }

            return;
        }

        if (kind == TokenKind.Punct)
        {
            switch (text[0])
            {
                case (byte)'(':
                    // mysqldump's values are literals and variables; Percona's dump adds IF (...).
                    if (!setAfterIf)
                    {
                        throw Refuse("a function call or subquery in a SET statement");
                    }

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
                case (byte)':':
                    // SET @a = @b := 'NO_BACKSLASH_ESCAPES' would change @b unseen.
                    throw Refuse("an assignment inside a SET value");
                default:
                    break;
            }
        }

        setAfterIf = kind == TokenKind.Word && Is(text, "IF"u8);
        setValueTokens++;
        if (setValueTokens == 1)
        {
            setValue = tokenOverflow ? SetValue.Unknown : ValueOf(kind, text);
            setValueText = Printable(text);
        }
        else if (setValueTokens == 2 && setTarget == SetTarget.Charset && kind == TokenKind.Word && Is(text, "COLLATE"u8))
        {
            setCollate = true; // SET NAMES x COLLATE y
        }
    }

    /// <summary>
    /// A word before a SET assignment's '='. Only the targets mysqldump writes pass: <c>name</c>, <c>SESSION name</c>,
    /// <c>LOCAL name</c>, <c>@var</c>, <c>@@name</c>, <c>@@session.name</c>, <c>@@local.name</c>, <c>NAMES x</c>,
    /// <c>CHARACTER SET x</c>, <c>CHARSET x</c>. The server reads more (<c>@@global . x</c>, <c>@@session/**/.sql_mode</c>:
    /// a scope and its variable apart), which this check would take for other variables than the server sets.
    /// </summary>
    private void ClassifySetTargetWord(ReadOnlySpan<byte> word)
    {
        if (setTargetWords == 0 && (Is(word, "GLOBAL"u8) || Is(word, "PERSIST"u8) || Is(word, "PERSIST_ONLY"u8)
            || StartsWithIgnoreCase(word, "@@GLOBAL"u8) || StartsWithIgnoreCase(word, "@@PERSIST"u8)))
        {
            throw Refuse("a SET GLOBAL statement");
        }

        if (setTargetWords == 0 && (Is(word, "PASSWORD"u8) || Is(word, "ROLE"u8) || Is(word, "DEFAULT"u8) || Is(word, "STATEMENT"u8)))
        {
            // An account's password or roles (also after a ',': SET @a = 1, PASSWORD FOR u = '*...'), or
            // (MariaDB) any statement under SET STATEMENT ... FOR.
            throw Refuse($"a SET {Words(word)} statement");
        }

        if (setCharacterNext)
        {
            // SET CHARACTER SET x: the value follows without '='.
            setCharacterNext = false;
            setTarget = Is(word, "SET"u8) ? SetTarget.Charset : throw UnwrittenSetTarget();
            setInValue = true;
            return;
        }

        if (setTarget != SetTarget.None)
        {
            throw UnwrittenSetTarget(); // a second name before the '=' (@@session .sql_mode, SESSION TRANSACTION ...)
        }

        var scoped = setTargetWords == 1; // after SESSION or LOCAL: a plain name only
        if (setTargetWords == 0 && (Is(word, "SESSION"u8) || Is(word, "LOCAL"u8)))
        {
            return;
        }

        if (!scoped && (Is(word, "NAMES"u8) || Is(word, "CHARSET"u8)))
        {
            // SET NAMES x, SET CHARSET x: the value follows without '='.
            setTarget = SetTarget.Charset;
            setInValue = true;
        }
        else if (!scoped && Is(word, "CHARACTER"u8))
        {
            setCharacterNext = true;
        }
        else if (!scoped && word.Length > 1 && word[0] == '@' && word[1] != '@')
        {
            if (!IsPlainName(word[1..], dots: true))
            {
                throw UnwrittenSetTarget();
            }

            setTarget = SetTarget.UserVariable;
            setVariable = DatabaseNames.Decode(word[1..]);
        }
        else if ((scoped || !word.StartsWith("@@"u8)) ? !IsPlainName(word, dots: false) : !IsPlainName(SystemVariableName(word), dots: false))
        {
            throw UnwrittenSetTarget();
        }
        else if (IsSessionVariable(word, "default_storage_engine"u8) || IsSessionVariable(word, "storage_engine"u8)
            || IsSessionVariable(word, "enforce_storage_engine"u8) || IsSessionVariable(word, "default_tmp_storage_engine"u8))
        {
            // A table created without ENGINE= would get it: a MERGE or FEDERATED one unseen.
            throw Refuse($"a SET of {Words(word)}");
        }
        else
        {
            setTarget = IsSessionVariable(word, "sql_mode"u8) ? SetTarget.SqlMode
                : IsSessionVariable(word, "character_set_client"u8) ? SetTarget.Charset
                : SetTarget.Other;
        }
    }

    private DumpFilterException UnwrittenSetTarget() => Refuse("a SET of a variable in another form than name, @var, @@name or @@session.name");

    /// <summary>Letters, digits, '_' and '$' (and '.', in a user variable's name): a name as mysqldump writes a variable's.</summary>
    private static bool IsPlainName(ReadOnlySpan<byte> name, bool dots)
    {
        if (name.IsEmpty)
        {
            return false;
        }

        foreach (var b in name)
        {
            if (!(b is (>= (byte)'a' and <= (byte)'z') or (>= (byte)'A' and <= (byte)'Z') or (>= (byte)'0' and <= (byte)'9') or (byte)'_' or (byte)'$'
                || (dots && b == '.')))
            {
                return false;
            }
        }

        return true;
    }

    private static bool StartsWithIgnoreCase(ReadOnlySpan<byte> word, ReadOnlySpan<byte> prefix) =>
        word.Length >= prefix.Length && Ascii.EqualsIgnoreCase(word[..prefix.Length], prefix);

    /// <summary>The variable of <c>@@name</c>, <c>@@session.name</c> or <c>@@local.name</c> (of a plain <c>name</c>: itself).</summary>
    private static ReadOnlySpan<byte> SystemVariableName(ReadOnlySpan<byte> word)
    {
        if (word.StartsWith("@@"u8))
        {
            word = word[2..];
            if (StartsWithIgnoreCase(word, "session."u8))
            {
                word = word[8..];
            }
            else if (StartsWithIgnoreCase(word, "local."u8))
            {
                word = word[6..];
            }
        }

        return word;
    }

    /// <summary><c>name</c>, <c>@@name</c>, <c>@@session.name</c> or <c>@@local.name</c>.</summary>
    private static bool IsSessionVariable(ReadOnlySpan<byte> word, ReadOnlySpan<byte> name) => Is(SystemVariableName(word), name);

    /// <summary>What the first token of a SET value means (the value is known only if it is the whole value).</summary>
    private SetValue ValueOf(TokenKind kind, ReadOnlySpan<byte> text)
    {
        if (kind is TokenKind.String or TokenKind.Ident)
        {
            // The token holds a quoted value as written ('\gbk' is gbk to the server, which decodes \g as g):
            // an escape or a doubled quote is not decoded here, so such a value is not known.
            return text.IndexOfAny("\\'\"`"u8) >= 0 ? SetValue.Unknown : Named(text);
        }

        if (kind != TokenKind.Word)
        {
            return SetValue.Unknown;
        }

        if (text.StartsWith("@@"u8))
        {
            return IsSessionVariable(text, "sql_mode"u8) ? new SetValue(sqlMode, false, ClientCharset.Other)
                : IsSessionVariable(text, "character_set_client"u8) ? new SetValue(null, true, clientCharset) // never one refused
                : SetValue.Unknown;
        }

        if (text[0] == '@')
        {
            return userVariables.TryGetValue(DatabaseNames.Decode(text[1..]), out var saved) ? saved : SetValue.Unknown;
        }

        if (Is(text, "DEFAULT"u8))
        {
            return new SetValue(serverSqlMode, false, ClientCharset.Other); // the server's global sql_mode, as the session started
        }

        return IsDigit(text[0]) ? SetValue.Unknown : Named(text);
    }

    private static SetValue Named(ReadOnlySpan<byte> text)
    {
        var name = text.Trim((byte)' ');
        return new(SqlModeOf(text), IsReadableCharset(name),
            Is(name, "utf8"u8) || Is(name, "utf8mb3"u8) || Is(name, "utf8mb4"u8) ? ClientCharset.Utf8
            : new ClientCharset(false, MySqlSingleByteCharset.Named(Encoding.UTF8.GetString(name))));
    }

    /// <summary>The flags of an sql_mode list; ANSI and the other combination modes include ANSI_QUOTES.</summary>
    private static SqlModeFlags SqlModeOf(ReadOnlySpan<byte> modes)
    {
        var flags = SqlModeFlags.None;
        foreach (var range in modes.Split((byte)','))
        {
            var mode = modes[range].Trim((byte)' ');
            if (Is(mode, "NO_BACKSLASH_ESCAPES"u8))
            {
                flags |= SqlModeFlags.NoBackslashEscapes;
            }
            else if (Is(mode, "ANSI_QUOTES"u8) || Is(mode, "ANSI"u8) || Is(mode, "DB2"u8) || Is(mode, "MAXDB"u8)
                || Is(mode, "MSSQL"u8) || Is(mode, "ORACLE"u8) || Is(mode, "POSTGRESQL"u8))
            {
                flags |= SqlModeFlags.AnsiQuotes;
            }
        }

        return flags;
    }

    /// <summary>
    /// Not one whose multi-byte characters can end in a backslash, nor swe7, where ASCII bytes are other letters
    /// (<c>`{`</c> is the table ä) (the server also refuses unknown names).
    /// </summary>
    private static bool IsReadableCharset(ReadOnlySpan<byte> name) =>
        name.Length > 0 && !(Is(name, "big5"u8) || Is(name, "cp932"u8) || Is(name, "gbk"u8) || Is(name, "sjis"u8)
            || Is(name, "gb18030"u8) || Is(name, "swe7"u8) || Is(name, "DEFAULT"u8));

    private void ApplyAssignment()
    {
        if (!setInValue)
        {
            return;
        }

        var whole = setValueTokens == 1 || (setCollate && setValueTokens == 3); // x, or NAMES x COLLATE y
        var value = whole ? setValue : SetValue.Unknown;
        switch (setTarget)
        {
            case SetTarget.SqlMode:
                setMode = value.SqlMode ?? throw Refuse("a SET sql_mode to a value this check cannot read");
                break;
            case SetTarget.Charset when !value.ReadableCharset:
                throw new DumpFilterException(
                    $"the dump sets the client character set to {(whole ? setValueText : "a value this check cannot read")} "
                    + $"at byte {unitStart}: in big5, cp932, gbk, sjis and gb18030 a multi-byte character can end in a backslash, "
                    + "which this check would take for an escape where the server does not, and in swe7 ASCII bytes are other letters; refused");
            case SetTarget.Charset:
                setClientCharset = value.Charset;
                break;
            case SetTarget.UserVariable when setVariable is not null:
                setUserVariables.Add((setVariable, value));
                break;
            default:
                break;
        }
    }

    private void FinishSet()
    {
        ApplyAssignment();
        sqlMode = setMode;
        clientCharset = setClientCharset;
        foreach (var (name, value) in setUserVariables)
        {
            if (userVariables.Count < MaxUserVariables || userVariables.ContainsKey(name))
            {
                userVariables[name] = value;
            }
            else
            {
                userVariables.Remove(name);
            }
        }
    }

    /// <summary>
    /// A name this filter compares with others (a table rows go into, a trigger's or view's): read as the server reads
    /// it, in UTF-8 or a one-byte set such as latin1 (the table `\xE4` of latin1 is the `\xC3\xA4` of utf8mb4); under
    /// another client character set, or with a byte that is no character of its one-byte set, one with bytes above
    /// ASCII is refused (this filter would see two tables where the server sees one).
    /// </summary>
    private string ComparableName(ReadOnlySpan<byte> name)
    {
        if (clientCharset.SingleByte?.ToText(name) is { } text)
        {
            return text;
        }

        RequireComparableName(name);
        return DatabaseNames.Decode(name);
    }

    /// <summary>
    /// A name this filter compares as UTF-8 bytes or writes back (a database, a qualifier): under another client
    /// character set one with bytes above ASCII is refused.
    /// </summary>
    private void RequireComparableName(ReadOnlySpan<byte> name)
    {
        if (!clientCharset.IsUtf8 && name.ContainsAnyExceptInRange((byte)0, (byte)0x7F))
        {
            var (shown, set) = clientCharset.SingleByte is { } singleByte && singleByte.ToText(name) is { } text
                ? (Printable(Encoding.UTF8.GetBytes(text)), $"client character set {singleByte.Name}")
                : (Printable(name), "a client character set other than UTF-8");
            throw new DumpFilterException(
                $"the dump names {shown} at byte {unitStart}, as a database or the qualifier of an object, under {set}: "
                + "the server reads such a name's bytes above ASCII as other characters than this check does; refused");
        }
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

    /// <summary>Also ';' under another delimiter: the server ends a statement there (see <see cref="SemicolonInside"/>).</summary>
    private static SearchValues<byte> BuildCodeStops(byte delimiterStart)
    {
        var stops = new HashSet<byte>("'\"`\\#-/;"u8.ToArray()) { delimiterStart };
        return SearchValues.Create(stops.ToArray());
    }

    /// <summary>In an INSERT's rows also the parentheses, which tell a row's end from a call, and the start of any word.</summary>
    private static SearchValues<byte> BuildRowStops(byte delimiterStart)
    {
        var stops = new HashSet<byte>("'\"`\\#-/();"u8.ToArray()) { delimiterStart };
        for (var c = 0; c < 256; c++)
        {
            if (RowWordStops[c])
            {
                stops.Add((byte)c);
            }
        }

        return SearchValues.Create(stops.ToArray());
    }

    private static bool[] BuildRowWordStops()
    {
        var table = new bool[256];
        for (var c = 0; c < 256; c++)
        {
            table[c] = c is (>= 'a' and <= 'z') or (>= 'A' and <= 'Z') or '_' or '$' or '@' or >= 0x80;
        }

        return table;
    }
}
