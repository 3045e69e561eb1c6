using System.Buffers;
using System.Security.Cryptography;
using System.Text;

namespace VyaBackupDb.Engines.Postgres;

/// <summary>What a <see cref="PostgresDumpFilter"/> does besides pointing the dump at its target.</summary>
/// <param name="RestrictMetaCommands">Start the output with <c>\restrict KEY</c> (a random key; the dump's own
/// <c>\restrict</c>/<c>\unrestrict</c> lines are dropped), so psql itself refuses every meta-command
/// that could get past the filter. Only for a psql that knows <c>\restrict</c>
/// (<see cref="PostgresDumpFilter.ClientSupportsRestrict"/>).</param>
/// <param name="Facts">What earlier files of the same restore created (a backup set's schema.sql
/// for its post.sql): this filter refuses by them too and adds what its dump creates. Null: a dump alone.</param>
/// <param name="DatabaseOwner">Pass <c>ALTER DATABASE ... OWNER TO</c> (the instance keeps owners, <c>owners: true</c>);
/// otherwise it is left out, as every other owner is by <c>--no-owner</c>.</param>
/// <param name="HoldBackOwnerStatements">Leave out, and keep in <see cref="PostgresDumpFilter.HeldBack"/>, the statements
/// that only a superuser (or a member of the roles they name) may run and that run no code:
/// <c>ALTER ... OWNER TO role</c>, <c>ALTER DEFAULT PRIVILEGES FOR ROLE ...</c>, <c>ALTER DATABASE ... SET/OWNER TO</c>,
/// <c>ALTER ROLE ... IN DATABASE ... SET</c>, a grant under <c>SET SESSION AUTHORIZATION</c>, <c>CREATE PUBLICATION ...
/// FOR ALL TABLES</c>, <c>COMMENT ON EXTENSION</c>. For a load as an unprivileged account, which the instance's
/// account follows with them.</param>
public sealed record PostgresFilterOptions(bool RestrictMetaCommands = false, PostgresDumpFacts? Facts = null, bool DatabaseOwner = false,
    bool HoldBackOwnerStatements = false);

/// <summary>
/// A statement a <see cref="PostgresDumpFilter"/> held back, with what the dump had set when it
/// came: how psql reads it (the filter read it so; read otherwise, a string could end elsewhere).
/// </summary>
/// <param name="Sql">The statement's bytes, its <c>;</c> included.</param>
/// <param name="ClientEncoding">The dump's last <c>SET client_encoding</c> value before it (null: none).</param>
/// <param name="StandardConformingStrings">standard_conforming_strings as the dump had set it.</param>
/// <param name="SearchPath">The dump's last statement setting search_path before it, with what it was read under (null: none).</param>
/// <param name="SessionAuthorization">The <c>SET SESSION AUTHORIZATION</c> it came under (pg_dump's grants by a grantee), or null.</param>
/// <param name="ActsAs">The role it acts as or for, as the filter decoded it: a <c>SET SESSION AUTHORIZATION</c>'s, an
/// <c>ALTER ROLE ... IN DATABASE</c>'s, an <c>ALTER DEFAULT PRIVILEGES FOR ROLE</c>'s (null: none). The replay refuses
/// a superuser, or a name it cannot find.</param>
public sealed record HeldBackStatement(byte[] Sql, string? ClientEncoding, bool StandardConformingStrings, HeldBackStatement? SearchPath,
    HeldBackStatement? SessionAuthorization = null, string? ActsAs = null);

/// <summary>
/// What a dump created that later statements are refused by: the relations rows must not be
/// written into (foreign tables, partitioned tables routing to one, views), the partitions
/// attached, the subscriptions created. Facts are only ever added: more of them only refuse more.
/// A backup set's files share them, so that post.sql cannot write into a foreign table schema.sql created.
/// </summary>
public sealed class PostgresDumpFacts
{
    /// <summary>By relation name (see <see cref="PostgresDumpFilter.RelationKind"/>): the schemas it was created in (null: unqualified) and why.</summary>
    internal Dictionary<string, List<(string? Schema, PostgresDumpFilter.RelationKind Kind)>> NoRows { get; } = new(StringComparer.Ordinal);

    internal HashSet<(PostgresDumpFilter.RelationName Child, PostgresDumpFilter.RelationName Parent)> Partitions { get; } = [];

    internal HashSet<string> Subscriptions { get; } = new(StringComparer.Ordinal);

    /// <summary>A copy to give a filter that runs beside others (a filter adds to its facts as it reads).</summary>
    public PostgresDumpFacts Copy()
    {
        var copy = new PostgresDumpFacts();
        foreach (var (name, entries) in NoRows)
        {
            copy.NoRows[name] = [.. entries];
        }

        copy.Partitions.UnionWith(Partitions);
        copy.Subscriptions.UnionWith(Subscriptions);
        return copy;
    }
}

/// <summary>
/// Filters a plain pg_dump file on its way into <c>psql</c> (already connected to the target, with
/// ON_ERROR_STOP) so that only the target database is touched and nothing runs on the restore host:
/// <c>CREATE/DROP DATABASE</c> and <c>\connect</c> are dropped; the database name of
/// <c>ALTER DATABASE</c>, <c>ALTER ROLE ... IN DATABASE</c>, <c>COMMENT ON DATABASE</c>,
/// <c>GRANT/REVOKE ... ON DATABASE</c> and <c>SECURITY LABEL ... ON DATABASE</c> is replaced by the
/// target; <c>SET name = ...</c> and
/// <c>SELECT pg_catalog.set_config('name', ...)</c> of settings the target server does not know are
/// dropped. Every other byte passes through unchanged, COPY data included.
/// </summary>
/// <remarks>
/// <para>Only what pg_dump writes is accepted. psql runs a backslash meta-command wherever it sees a
/// backslash outside quotes, comments and COPY data (<c>\!</c> runs a shell command), so any
/// meta-command other than <c>\connect</c>, <c>\restrict KEY</c> and <c>\unrestrict KEY</c> on a line
/// of its own refuses the dump (<see cref="DumpFilterException"/>), as do a backslash inside a
/// statement, COPY other than <c>COPY ... FROM stdin</c>, psql's own variables (<c>:DBNAME</c>),
/// NUL bytes outside COPY data, and the few spellings psql versions lex differently (a dollar quote
/// right after a word, a string continued across a carriage return, a string whose end depends on
/// standard_conforming_strings, unless pinned by a SET put before its statement). The refused line
/// or statement never reaches psql: output is held back to the start of the last statement that
/// began a line (at most 64 KiB).</para>
/// <para>Statements too: one passes only if it starts the way a statement of pg_dump's does
/// (CREATE/ALTER/DROP/COMMENT/GRANT of an object of one database, SET of pg_dump's settings,
/// pg_dump's own SELECTs, INSERT INTO ... VALUES, COPY ... FROM stdin, ...); SELECT and INSERT are
/// checked to their end for anything but plain values. Nor a query run as the dump loads, with no
/// function of its own: CREATE TABLE ... AS, a materialized view not WITH NO DATA, ALTER COLUMN ...
/// TYPE ... USING, a partition bound other than plain values, CREATE SCHEMA's own CREATE and GRANT
/// (CREATE TABLE, ALTER TABLE and CREATE MATERIALIZED VIEW are read to their end). Nor rows into what the dump created as a
/// foreign table (postgres_fdw writes them into any database), a partitioned table with a foreign
/// partition or a view, nor a RENAME/SET SCHEMA that could hide one; a subscription only created
/// with connect = false and never enabled, refreshed or dropped (each connects to its publisher).
/// Code the dump defines (functions, view queries, rules, triggers) is not looked into: it runs as
/// the restoring account when the load calls it.</para>
/// <para>Statements are split the way psql splits them: at <c>;</c> outside quotes, comments, dollar
/// quotes, parentheses and <c>BEGIN ... END</c> bodies of SQL-standard functions (psql counts
/// BEGIN/CASE/END words; the server, which runs every statement of what psql sends, ends a body at
/// its END: a CREATE FUNCTION they would end at different <c>;</c> is refused); after
/// <c>COPY ... FROM stdin;</c> the lines up to <c>\.</c> are data. <c>standard_conforming_strings</c>
/// is tracked from <c>SET</c> statements; it and <c>client_encoding</c> (which change how psql lexes
/// what follows) pass only as pg_dump sets them: <c>SET</c> to on/off, to a server encoding, each a
/// plain word or '...' string (never SET LOCAL, DEFAULT, set_config of the former, nor anything
/// else the filter could read otherwise than psql). The filter streams and holds at most 64 KiB of a statement's
/// beginning. psql holds a statement whole: one over 64 MiB (COPY data aside, which it streams), or more than
/// 64 MiB of comments and blank lines between two, is refused before its end reaches psql.</para>
/// </remarks>
public sealed class PostgresDumpFilter
{
    private const int HoldCap = 64 * 1024;

    /// <summary>
    /// A statement, and the comments and blanks between two: psql holds a statement whole before it sends
    /// it (a block comment before one with it, and a line whole), several times its size (a 900 MB string
    /// took it 5 GB). A dump's are small: COPY data, which psql streams, may be any size, and pg_dump
    /// writes a large object as many small lowrite() calls.
    /// </summary>
    private const int StatementCap = 64 * 1024 * 1024;
    private const int TokenCap = 1024;
    private const int MaxDollarTag = 256;
    private const int GrantTokenLimit = 64;
    private const int CopyTokenLimit = 8192;
    private const int MaxShownName = 32;
    private const int MaxVariableName = 64;

    private static readonly SearchValues<byte> Spaces = SearchValues.Create(" \t\n\r\v\f"u8);
    private static readonly SearchValues<byte> CodeStops = SearchValues.Create("'\"$-/;()\\:\0"u8);
    private static readonly SearchValues<byte> QuoteStops = SearchValues.Create("'\\\0"u8);
    private static readonly SearchValues<byte> LineEnds = SearchValues.Create("\n\r\0"u8);
    private static readonly bool[] IdentStart = BuildTable(digits: false, dollar: false);
    private static readonly bool[] IdentCont = BuildTable(digits: true, dollar: true);
    private static readonly bool[] DollarTagCont = BuildTable(digits: true, dollar: false);

    /// <summary>
    /// The server encodings, as pg_dump names them (pg_encoding_to_char) and the server compares them
    /// (lower case, letters and digits only). Each keeps every ASCII byte ASCII, as the filter reads
    /// the dump; the client-only ones (SJIS, BIG5, GBK, UHC, GB18030, JOHAB) are not among them: psql
    /// hides the byte after each of their lead bytes (a quote, a backslash) from its lexer.
    /// </summary>
    private static readonly HashSet<string> ServerEncodings = new(StringComparer.Ordinal)
    {
        "sqlascii", "utf8", "eucjp", "euccn", "euckr", "euctw", "eucjis2004", "muleinternal", "latin1", "latin2",
        "latin3", "latin4", "latin5", "latin6", "latin7", "latin8", "latin9", "latin10", "iso88595", "iso88596",
        "iso88597", "iso88598", "koi8r", "koi8u", "win866", "win874", "win1250", "win1251", "win1252", "win1253",
        "win1254", "win1255", "win1256", "win1257", "win1258",
    };

    private readonly byte[] targetIdentifier;
    private readonly Func<string, bool> isKnownSetting;
    private readonly byte[]? restrictLine;
    private readonly DatabaseNames names = new();
    private readonly FilterSink sink = new(holdOutput: true);
    private readonly ByteBuffer token = new(64);
    private readonly ByteBuffer dollarTag = new(16);
    private readonly ByteBuffer trailerText = new(64);
    private readonly byte[] psqlIdentifiers = new byte[4];
    private LineCounter lines;
    private bool started;

    // Scanner position; buf/segment/bufferBase describe the chunk being scanned.
    private State state;
    private byte[] buf = [];
    private int segment;
    private long bufferBase;
    private long consumedTotal;
    private bool needMore;
    private long unitStart;
    private long gapStart; // where the comments and blanks since the last statement (or COPY data) started
    private long unitLineKnown; // 0 until counted (lazily: counting every statement's start costs)
    private bool standardStrings = true;
    private int commentDepth;
    private int parenDepth;
    private int beginDepth;
    private long dollarCloseEnd = -1;
    private bool copyFromStdin;
    private bool isCopy;
    private bool copyLineStart;
    private bool copyRestComment;

    // The string literal being scanned: whether psql reads it the same way whatever its settings,
    // the backslashes just seen, and the quote-continuation lookahead after its closing quote.
    private bool quoteCertain;
    private bool quotePlain;
    private bool pinnedStatement;
    private int statementsSinceMark;
    private bool lineBreakSinceStatement = true;
    private int backslashRun;
    private byte quoteStopPhase;

    // The completion trailer: a top-level "-- PostgreSQL database dump complete" line, followed by
    // nothing but comments, blank lines and \unrestrict.
    private bool capturingTrailer;
    private bool trailerSeen;

    // psql's own heuristic for CREATE FUNCTION ... BEGIN ATOMIC ... END bodies.
    private bool psqlTracking;
    private int psqlIdentifierCount;

    // The server's grammar for the same statement: a BEGIN ATOMIC body ends at the END that starts
    // one of its statements (inside a body, END cannot start one; CASE ... END is inside one).
    private bool atomicBody;
    private bool bodyStatementStart;
    private bool lastWasBegin;

    // Classification of the current statement.
    private bool classifying;
    private Step step = Step.Done;
    private int tokenCount;
    private TokenKind tokenKind;
    private long tokenStart;
    private bool tokenOverflow;
    private bool tokenPrefixed; // a string token written E'...', B'...', X'...' or N'...'
    private bool setLocal;
    private bool rewritingGrant;
    private bool alteringDatabase;
    private int databaseNameStart;
    private int databaseNameEnd;
    private readonly bool passDatabaseOwner;
    private string settingName = string.Empty;
    private bool? pendingStandardStrings;
    private WordCheck wordCheck;
    private bool lastWasWord;
    private bool lastWordCalls;
    private int selectCalls;
    private bool selectSetsConfig;
    private readonly List<string> objectWords = [];
    private readonly StringBuilder leading = new();

    // The relation statements: what the statement does, and the relation name being read.
    private Verb verb;
    private NameUse nameUse;
    private readonly List<string> nameParts = [];
    private byte nameIfClause; // 1 right after IF, 2 inside IF [NOT] EXISTS
    private bool nameLastWasU;
    private RelationName statementRelation;
    private string statementType = string.Empty; // the object type of CREATE/ALTER, e.g. "TABLE"

    // A partition bound being read: its parenthesized groups left (FROM (...) TO (...): two), and
    // whether the CREATE TABLE goes on after it (ATTACH PARTITION ends with it).
    private int boundGroupsLeft;
    private bool boundInCreate;

    // ALTER TABLE's subcommands: whether the next top-level token starts one, and whether the one
    // being read is ALTER [COLUMN] (whose TYPE ... USING would run an expression on every row).
    private bool alterSubcommandStart;
    private bool alterColumnSubcommand;

    // What the dump (and the files restored before it) created that later statements are refused by.
    private readonly PostgresDumpFacts facts;

    // Statements held back for the instance's account (null: none are): the shape of the one being
    // read, and what the dump set that the held-back ones are read under.
    private readonly List<HeldBackStatement>? heldBack;
    private HoldBack holdBack;
    private int holdBackTokens;
    private OwnerPart ownerPart; // where an ALTER ... OWNER TO being held back is
    private int ownerTypeEnd; // the token index ending its object type
    private string ownerType = string.Empty;
    private bool holdBackMatched;
    private bool capturingSearchPath;
    private HeldBackStatement? searchPathStatement;
    private HeldBackStatement? sessionAuthorization; // while the dump's SET SESSION AUTHORIZATION holds
    private string? actsAs;
    private string? clientEncoding;
    private string? pendingClientEncoding;

    /// <param name="targetDatabase">The database the dump is restored into.</param>
    /// <param name="isKnownSetting">Returns true if the target server knows a run-time parameter name
    /// (e.g. "statement_timeout"); false for e.g. "transaction_timeout" on PostgreSQL 15. It gets the
    /// name as the server would see it: unquoted names folded to lower case, quoted ones as written,
    /// custom names with their dot ("plpgsql.variable_conflict"). Called once per SET/set_config.</param>
    /// <param name="options">Null: the defaults.</param>
    public PostgresDumpFilter(string targetDatabase, Func<string, bool> isKnownSetting, PostgresFilterOptions? options = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(targetDatabase);
        ArgumentNullException.ThrowIfNull(isKnownSetting);
        if (targetDatabase.Contains('\0', StringComparison.Ordinal))
        {
            throw new ArgumentException("a database name cannot contain NUL", nameof(targetDatabase));
        }

        targetIdentifier = Encoding.UTF8.GetBytes(
            "\"" + targetDatabase.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"");
        this.isKnownSetting = isKnownSetting;
        facts = options?.Facts ?? new PostgresDumpFacts();
        passDatabaseOwner = options?.DatabaseOwner == true;
        heldBack = options?.HoldBackOwnerStatements == true ? [] : null;
        if (options?.RestrictMetaCommands == true)
        {
            // Letters and digits only: the key is a psql argument (no quoting, no backticks).
            restrictLine = Encoding.ASCII.GetBytes(
                "\\restrict " + RandomNumberGenerator.GetString("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789", 32) + "\n");
        }
    }

    private enum State : byte
    {
        Gap,
        GapLineComment,
        GapBlockComment,
        Meta,
        Code,
        Quote,
        EscapeQuote,
        BitQuote,
        QuoteStop,
        DoubleQuote,
        Dollar,
        LineComment,
        BlockComment,
        CopyLineRest,
        CopyData,
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
        AfterDrop,
        AfterCreate,
        CreateOrReplace,
        ObjectType,
        DatabaseName,
        AfterAlter,
        AlterRoleName,
        AlterRoleIn,
        AlterRoleInWhat,
        RewriteName,
        AfterGrantName,
        AlterDatabaseAction,
        AlterDatabaseSet,
        CommentOn,
        OnWhat,
        GrantScan,
        SecurityLabel,
        SecurityLabelAfter,
        SecurityLabelProvider,
        SecurityLabelAfterProvider,
        SetStart,
        SetSession,
        SetName,
        SetAfterName,
        SetDot,
        SetStandardStringsValue,
        SetEncodingValue,
        ResetName,
        ResetSession,
        Select,
        SelectDot,
        SelectFunction,
        SelectParen,
        SelectName,
        SelectEncodingComma,
        SelectEncodingValue,
        SelectEncodingAfter,
        SetValueEnd,
        CopyScan,
        CopyFrom,
        Bare,
        Refresh,
        RefreshMaterialized,
        InsertInto,
        RelationName,
        RelationNameDot,
        AfterRelation,
        PartitionOf,
        AttachPartition,
        AlterSet,
        TableRest,
        AlterRest,
        SchemaRest,
        MatView,
        MatViewWith,
        MatViewWithNo,
        MatViewNoData,
        BoundFor,
        BoundKind,
        BoundOpen,
        BoundValues,
        BoundTo,
        SubscriptionName,
        SubscriptionScan,
        SubscriptionWith,
        SubscriptionConnect,
        SubscriptionEquals,
        SubscriptionValue,
        AlterSubscriptionName,
        AlterSubscriptionWhat,
        DropSubscription,
        Done,
    }

    /// <summary>The first word of a statement, where the relation statements need it.</summary>
    private enum Verb : byte
    {
        Other,
        Create,
        Alter,
        Drop,
    }

    /// <summary>What the relation name being read is, in its statement.</summary>
    private enum NameUse : byte
    {
        Copy,
        Insert,
        CreateTable,
        CreateForeignTable,
        CreateView,
        AlterRelation,
        AlterSchema,
        PartitionParent,
        AttachedChild,
    }

    /// <summary>Why rows must not be written into a relation of the dump.</summary>
    internal enum RelationKind : byte
    {
        /// <summary>A foreign table: its rows go to the server it names (postgres_fdw: any database).</summary>
        Foreign,

        /// <summary>A partitioned table with a foreign partition: its rows are routed there.</summary>
        ForeignPartition,

        /// <summary>A view: an updatable one passes rows on to its tables.</summary>
        View,
    }

    /// <summary>A relation as a statement names it: schema (null if unqualified) and name, as keys (<see cref="NameKey"/>).</summary>
    internal readonly record struct RelationName(string? Schema, string Name)
    {
        /// <summary>Whether the two names can be the same relation: unqualified, either could be in any schema.</summary>
        public bool Matches(RelationName other) =>
            Name == other.Name && (Schema is null || other.Schema is null || Schema == other.Schema);

        public override string ToString() => Schema is null ? Shown(Name) : Shown(Schema) + "." + Shown(Name);

        private static string Shown(string key) => Show(Encoding.Latin1.GetBytes(key));
    }

    /// <summary>First database named by DROP/CREATE DATABASE, \connect or ALTER DATABASE in the dump, or null.</summary>
    public string? SourceDatabase => names.Source;

    /// <summary>
    /// After <see cref="CopyAsync"/>, with <see cref="PostgresFilterOptions.HoldBackOwnerStatements"/>: the statements
    /// left out for the instance's account to run after the load, in the dump's order (empty otherwise).
    /// </summary>
    public IReadOnlyList<HeldBackStatement> HeldBack => heldBack ?? [];

    /// <summary>Statements and meta-commands dropped (for the restore summary / tests).</summary>
    public int DroppedStatements { get; private set; }

    /// <summary>
    /// After <see cref="CopyAsync"/>: whether the dump ended the way a complete pg_dump file ends: the
    /// line <c>-- PostgreSQL database dump complete</c> between statements (not inside COPY data, a
    /// string or a comment block), followed by nothing but comments, blank lines and <c>\unrestrict</c>.
    /// </summary>
    public bool EndedWithCompletionTrailer => trailerSeen;

    /// <summary>
    /// After <see cref="CopyAsync"/>: whether the input ended between statements (no statement,
    /// string, comment block or COPY data left open), so that psql reads input that follows it from
    /// its start, as a filter of that input alone would (given <see cref="StandardConformingStrings"/>).
    /// </summary>
    internal bool EndedBetweenStatements => state is State.Gap or State.GapLineComment or State.Meta;

    /// <summary>standard_conforming_strings as the filter reads the dump (at its end, after <see cref="CopyAsync"/>).</summary>
    internal bool StandardConformingStrings => standardStrings;

    /// <summary>
    /// Whether the psql of this <c>--version</c> line (or its pg_dump's, same package) knows
    /// <c>\restrict</c>: 13.22, 14.19, 15.14, 16.10, 17.6 and later, and 18 onwards.
    /// </summary>
    public static bool ClientSupportsRestrict(string versionLine)
    {
        ArgumentNullException.ThrowIfNull(versionLine);
        var match = System.Text.RegularExpressions.Regex.Match(versionLine, @"\(PostgreSQL\) (\d+)(?:\.(\d+))?(\S*)");
        if (!match.Success)
        {
            return false;
        }

        var major = int.Parse(match.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
        var minor = match.Groups[2].Success ? int.Parse(match.Groups[2].Value, System.Globalization.CultureInfo.InvariantCulture) : 0;
        if (match.Groups[3].Value.Length > 0)
        {
            return major >= 19; // 18beta/rc may predate \restrict
        }

        return major switch
        {
            >= 18 => true,
            17 => minor >= 6,
            16 => minor >= 10,
            15 => minor >= 14,
            14 => minor >= 19,
            13 => minor >= 22,
            _ => false,
        };
    }

    /// <summary>Copies <paramref name="input"/> to <paramref name="output"/> through the filter. One dump per instance.</summary>
    /// <exception cref="DumpFilterException">The dump holds more than one database, something pg_dump does not
    /// write (a meta-command, COPY to or from a file or program), or a construct the filter will not guess about.</exception>
    public Task CopyAsync(Stream input, Stream output, CancellationToken cancellationToken)
    {
        if (started)
        {
            throw new InvalidOperationException("a dump filter instance filters one dump only");
        }

        started = true;
        if (restrictLine is not null)
        {
            sink.Output.Append(restrictLine);
            sink.MarkReleasable();
        }

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
                State.Code => Watching ? CodeWatching(i, end, final) : Code(i, end, final),
                State.Quote => Quoted(i, end, final),
                State.EscapeQuote => EscapeQuoted(i, end, final),
                State.BitQuote => BitQuoted(i, end),
                State.DoubleQuote => DoubleQuoted(i, end, final),
                State.QuoteStop => QuoteStop(i, end, final),
                State.Dollar => DollarBody(i, end, final),
                State.LineComment or State.GapLineComment => LineComment(i, end),
                State.BlockComment or State.GapBlockComment => BlockComment(i, end, final),
                State.Meta => MetaLine(i, end),
                State.CopyLineRest => CopyLineRest(i, end, final),
                State.CopyData => CopyData(i, end, final),
                _ => throw new InvalidOperationException("unknown scanner state"),
            };
            CheckHeldByPsql(i);
        }

        if (final)
        {
            EndOfInput(end);
            i = end;
        }

        Commit(i);
        _ = UnitLine;
        LineAt(i);
        consumedTotal = bufferBase + i;
        return i;
    }

    private int NeedMore(int i)
    {
        needMore = true;
        return i;
    }

    /// <summary>Refuses a statement, or the comments and blanks between two, longer than <see cref="StatementCap"/> (COPY data aside).</summary>
    private void CheckHeldByPsql(int i)
    {
        switch (state)
        {
            case State.CopyData:
                return;
            case State.Gap or State.GapLineComment or State.GapBlockComment or State.Meta or State.CopyLineRest:
                if (bufferBase + i - gapStart > StatementCap)
                {
                    throw Refuse(i, $"more than {StatementCap / (1024 * 1024)} MiB of comments and blank lines between two statements");
                }

                return;
            default:
                if (bufferBase + i - unitStart > StatementCap)
                {
                    throw new DumpFilterException($"line {UnitLine}: a statement of more than {StatementCap / (1024 * 1024)} MiB " +
                        "(psql would hold it whole in memory; only COPY data may be longer); refused");
                }

                return;
        }
    }

    private int At(int index, int end) => index < end ? buf[index] : -1;

    private static bool IsSpace(int c) => c is ' ' or '\t' or '\n' or '\r' or '\v' or '\f';

    /// <summary>psql has nothing pending here: what was held may go, and a SET may be put here.</summary>
    private void MarkLineStart()
    {
        sink.MarkReleasable();
        statementsSinceMark = 0;
        lineBreakSinceStatement = false;
    }

    /// <summary>
    /// A plain string whose end depends on standard_conforming_strings (a quote after an odd run of
    /// backslashes, e.g. 'C:\' as pg_dump writes it): psql reads it by the server's setting at the
    /// start of each line, which code run by the dump could have changed unseen. A
    /// <c>SET standard_conforming_strings</c> put on a line of its own right before the statement
    /// makes psql read it the way the filter does. Possible when the statement is the first since
    /// the last line break between statements and nothing since was released.
    /// </summary>
    private void PinStandardStrings(int i)
    {
        if (pinnedStatement || sink.Mode == Disposition.Drop)
        {
            return;
        }

        if (!quotePlain || statementsSinceMark != 0 || sink.ForcedSinceMark)
        {
            throw Refuse(i, "a string literal whose end depends on standard_conforming_strings " +
                "(a quote after an odd number of backslashes; psql could read it differently)");
        }

        sink.InsertAtMark(state == State.Quote
            ? "SET standard_conforming_strings = on;\n"u8
            : "SET standard_conforming_strings = off;\n"u8);
        pinnedStatement = true;
    }

    /// <summary>The 1-based line of <c>buf[i]</c>.</summary>
    private long LineAt(int i) => lines.LineAt(buf, i, bufferBase + i);

    /// <summary>The line the current statement or meta-command starts on (it starts in the current chunk until counted).</summary>
    private long UnitLine => unitLineKnown != 0 ? unitLineKnown : unitLineKnown = LineAt((int)(unitStart - bufferBase));

    private DumpFilterException Refuse(int i, string what) => new($"line {LineAt(i)}: {what}; refused");

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
        if (state == State.Meta)
        {
            throw new DumpFilterException(
                $"line {UnitLine}: a psql meta-command line longer than {HoldCap / 1024} KiB; refused");
        }

        switch (step)
        {
            case Step.AfterDrop or Step.AfterCreate or Step.DatabaseName or Step.AfterAlter or Step.AlterRoleName
                or Step.AlterRoleIn or Step.AlterRoleInWhat or Step.RewriteName or Step.AfterGrantName or Step.CommentOn
                or Step.OnWhat or Step.GrantScan or Step.SecurityLabel or Step.SecurityLabelAfter
                or Step.SecurityLabelProvider or Step.SecurityLabelAfterProvider:
                throw new DumpFilterException(
                    $"line {UnitLine}: the statement starts like a database statement " +
                    $"but runs past {HoldCap / 1024} KiB before naming the database; refusing to guess");
            default:
                // Not a database statement: it goes on to psql, still classified (psql runs nothing before its ';').
                sink.Release();
                return;
        }
    }

    // ---- between statements ------------------------------------------------------------------

    private int Gap(int i, int end, bool final)
    {
        var span = buf.AsSpan(i, end - i);
        var k = span.IndexOfAnyExcept(Spaces);
        if (!lineBreakSinceStatement)
        {
            // A line break between statements: nothing before it can be refused any more (marked
            // when the next statement starts, to keep this per-statement path short).
            lineBreakSinceStatement = (k < 0 ? span : span[..k]).Contains((byte)'\n');
        }

        if (k < 0)
        {
            return end;
        }

        i += k;
        switch (buf[i])
        {
            case (byte)'-':
                if (end - i < 2 && !final)
                {
                    return NeedMore(i);
                }

                if (At(i + 1, end) == '-')
                {
                    state = State.GapLineComment;
                    capturingTrailer = buf[i - 1] == '\n';
                    trailerText.Clear();
                    return i + 2;
                }

                break;
            case (byte)'/':
                if (end - i < 2 && !final)
                {
                    return NeedMore(i);
                }

                if (At(i + 1, end) == '*')
                {
                    commentDepth = 0;
                    state = State.GapBlockComment;
                    return i + 2;
                }

                break;
            case (byte)'\\':
                Commit(i);
                sink.BeginHold();
                unitStart = bufferBase + i;
                unitLineKnown = 0;
                state = State.Meta;
                return i + 1;
            default:
                break;
        }

        return StartStatement(i);
    }

    private int MetaLine(int i, int end)
    {
        var span = buf.AsSpan(i, end - i);
        var k = span.IndexOfAny((byte)'\n', (byte)'\0');
        if (k < 0)
        {
            return end;
        }

        i += k;
        if (buf[i] == 0)
        {
            throw Refuse(i, "a NUL byte in a psql meta-command line");
        }

        Commit(i);
        FinishMeta();
        state = State.Gap;
        return i;
    }

    private void FinishMeta()
    {
        switch (ClassifyMetaLine(sink.Pending.Span))
        {
            case MetaLineKind.Connect:
                sink.Discard();
                DroppedStatements++;
                trailerSeen = false;
                break;
            case var kind when restrictLine is not null:
                // Ours comes first; psql refuses a second one, and the dump's key would lift ours.
                sink.Discard();
                DroppedStatements++;
                trailerSeen &= kind == MetaLineKind.Unrestrict;
                break;
            case var kind:
                sink.Release();
                trailerSeen &= kind == MetaLineKind.Unrestrict;
                break;
        }

        sink.EndUnit();
    }

    // ---- inside a statement ------------------------------------------------------------------

    private int StartStatement(int i)
    {
        Commit(i);
        if (lineBreakSinceStatement)
        {
            MarkLineStart();
        }

        sink.BeginHold();
        unitStart = bufferBase + i;
        unitLineKnown = 0;
        trailerSeen = false;
        pinnedStatement = false;
        state = State.Code;
        classifying = true;
        step = Step.Start;
        tokenCount = 0;
        tokenKind = TokenKind.None;
        rewritingGrant = false;
        alteringDatabase = false;
        pendingStandardStrings = null;
        setLocal = false;
        wordCheck = WordCheck.None;
        lastWasWord = false;
        lastWordCalls = false;
        selectCalls = 0;
        selectSetsConfig = false;
        objectWords.Clear();
        leading.Clear();
        verb = Verb.Other;
        copyFromStdin = false;
        isCopy = false;
        parenDepth = 0;
        beginDepth = 0;
        psqlTracking = true;
        psqlIdentifierCount = 0;
        Array.Clear(psqlIdentifiers);
        atomicBody = false;
        bodyStatementStart = false;
        lastWasBegin = false;
        holdBack = HoldBack.None;
        holdBackTokens = 0;
        ownerPart = OwnerPart.Type;
        ownerTypeEnd = int.MaxValue;
        holdBackMatched = false;
        capturingSearchPath = false;
        actsAs = null;
        pendingClientEncoding = null;
        return i;
    }

    /// <param name="after">End of the statement (after its <c>;</c>).</param>
    private int EndStatement(int after)
    {
        if (Undecided)
        {
            throw RefuseUndecided();
        }

        statementsSinceMark++;
        lineBreakSinceStatement = false;
        gapStart = bufferBase + after;
        Commit(after);
        if (sink.Mode == Disposition.Hold)
        {
            KeepForInstanceAccount();
        }

        var dropped = sink.Mode == Disposition.Drop;
        if (sink.Mode == Disposition.Hold)
        {
            sink.Release();
        }

        sink.EndUnit();
        if (!dropped)
        {
            CheckCopy();
            if (pendingStandardStrings is { } standard)
            {
                standardStrings = standard;
            }

            clientEncoding = pendingClientEncoding ?? clientEncoding;
        }

        if (copyFromStdin && !dropped)
        {
            state = State.CopyLineRest;
            copyRestComment = false;
        }
        else
        {
            state = State.Gap;
        }

        wordCheck = WordCheck.None;
        StopClassifying();
        psqlTracking = false;
        tokenKind = TokenKind.None;
        pendingStandardStrings = null;
        copyFromStdin = false;
        isCopy = false;
        parenDepth = 0;
        beginDepth = 0;
        return after;
    }

    /// <summary>COPY runs on the server: to or from one of its files, or a program. pg_dump writes only FROM stdin.</summary>
    private void CheckCopy()
    {
        if (isCopy && !copyFromStdin)
        {
            throw new DumpFilterException(
                $"line {UnitLine}: COPY other than COPY ... FROM stdin (a server file or program) is not something pg_dump writes; refused");
        }
    }

    private void EndOfInput(int end)
    {
        if (state == State.Code && tokenKind == TokenKind.Word)
        {
            EmitToken(end);
        }

        if (state is State.Code or State.Quote or State.EscapeQuote or State.BitQuote or State.QuoteStop
            or State.DoubleQuote or State.Dollar or State.LineComment or State.BlockComment && Undecided)
        {
            throw RefuseUndecided(); // psql would send the unterminated statement at the end of its input
        }

        if (beginDepth > 0)
        {
            throw RefuseEndsElsewhere(); // psql would send what it still counts as one function at the end of its input
        }

        Commit(end);
        if (state == State.Meta)
        {
            FinishMeta();
        }
        else if (state == State.GapLineComment)
        {
            FinishGapComment();
        }
        else if (sink.Mode == Disposition.Hold)
        {
            sink.Release();
        }

        if (state is State.Code or State.Quote or State.EscapeQuote or State.BitQuote or State.QuoteStop
            or State.DoubleQuote or State.Dollar or State.LineComment or State.BlockComment)
        {
            // psql sends an unterminated last statement at the end of its input.
            CheckCopy();
        }

        sink.EndUnit();
    }

    /// <summary>Fast path: code of a statement already classified.</summary>
    private int Code(int i, int end, bool final)
    {
        var k = buf.AsSpan(i, end - i).IndexOfAny(CodeStops);
        if (k < 0)
        {
            return end;
        }

        i += k;
        switch (buf[i])
        {
            case (byte)';':
                if (parenDepth == 0 && beginDepth == 0)
                {
                    return EndStatement(i + 1);
                }

                return i + 1;
            case (byte)'(':
                parenDepth++;
                return i + 1;
            case (byte)')':
                if (parenDepth > 0)
                {
                    parenDepth--;
                }

                return i + 1;
            case (byte)'\'':
                StartQuote(i);
                return i + 1;
            case (byte)'"':
                state = State.DoubleQuote;
                return i + 1;
            case (byte)'$':
                return DollarStart(i, end, final);
            case (byte)'-':
                if (end - i < 2 && !final)
                {
                    return NeedMore(i);
                }

                if (At(i + 1, end) == '-')
                {
                    state = State.LineComment;
                    return i + 2;
                }

                return i + 1;
            case (byte)'/':
                if (end - i < 2 && !final)
                {
                    return NeedMore(i);
                }

                if (At(i + 1, end) == '*')
                {
                    commentDepth = 0;
                    state = State.BlockComment;
                    return i + 2;
                }

                return i + 1;
            case (byte)':':
                return Colon(i, end, final);
            case (byte)'\\':
                return RefuseBackslash(i, end, final);
            default:
                throw Refuse(i, "a NUL byte in SQL text");
        }
    }

    /// <summary>A backslash in SQL: psql runs what follows as a meta-command (or, for \; and \:, changes the statement).</summary>
    private int RefuseBackslash(int i, int end, bool final)
    {
        if (end - i <= MaxShownName && !final)
        {
            return NeedMore(i);
        }

        throw Refuse(i, $"psql meta-command {ShowMetaCommand(buf.AsSpan(i, end - i))} inside a statement is not something pg_dump writes");
    }

    /// <summary>
    /// At a <c>:</c> in code: psql replaces <c>:name</c> by the value of its variable <c>name</c> and
    /// lexes the value as SQL, meta-commands included. Its own variables (DBNAME, USER, ...) are
    /// upper case; pg_dump writes <c>:</c> only in casts (<c>::</c>) and array slices.
    /// </summary>
    private int Colon(int i, int end, bool final)
    {
        if (end - i < 2 && !final)
        {
            return NeedMore(i);
        }

        var next = At(i + 1, end);
        if (next is ':' or '=')
        {
            return i + 2; // a cast (psql pairs colons from the left) or :=
        }

        var j = i + 1;
        var upper = false;
        var lower = false;
        while (j < end && j - i <= MaxVariableName && IsVariableChar(buf[j]))
        {
            upper |= buf[j] is >= (byte)'A' and <= (byte)'Z';
            lower |= buf[j] is >= (byte)'a' and <= (byte)'z';
            j++;
        }

        if (j == end && j - i <= MaxVariableName && !final)
        {
            return NeedMore(i);
        }

        if (upper && !lower)
        {
            throw Refuse(i, $"psql variable {Show(buf.AsSpan(i, Math.Min(j - i, MaxShownName)))} is not something pg_dump writes");
        }

        return i + 1;
    }

    private static bool IsVariableChar(byte c) => c is (>= (byte)'a' and <= (byte)'z') or (>= (byte)'A' and <= (byte)'Z')
        or (>= (byte)'0' and <= (byte)'9') or (byte)'_' or >= 0x80;

    /// <summary>
    /// At a <c>'</c> in code: which kind of string starts here, as psql's lexer decides from the
    /// characters before it (E'', B'', X'', N'', U&amp;''). A prefix letter glued to a word is read
    /// differently by psql versions (an identifier's last letter, or a prefix after a number);
    /// such a string, and a plain one (read by the server's standard_conforming_strings), is not
    /// "certain": if its end depends on the reading, it is refused.
    /// </summary>
    private void StartQuote(int i)
    {
        backslashRun = 0;
        quoteCertain = false;
        quotePlain = true;
        var p1 = buf[i - 1];
        var p2 = buf[i - 2];
        if (p1 == '&')
        {
            if ((p2 | 0x20) == 'u' && !IdentCont[buf[i - 3]])
            {
                state = State.Quote; // U&'...': no backslash escapes, whatever the settings
                quoteCertain = true;
                return;
            }

            quotePlain = (p2 | 0x20) != 'u';

            state = standardStrings ? State.Quote : State.EscapeQuote;
            return;
        }

        var letter = p1 | 0x20;
        if (letter is 'e' or 'b' or 'x' or 'n' && IdentCont[p2])
        {
            quotePlain = false; // a prefix, or the end of a word: psql versions differ
        }
        else if (letter is 'e' or 'b' or 'x')
        {
            state = letter == 'e' ? State.EscapeQuote : State.BitQuote;
            quoteCertain = true;
            return;
        }

        state = standardStrings ? State.Quote : State.EscapeQuote;
    }

    /// <summary>At a <c>$</c> in code: starts a dollar quote, or returns the next position.</summary>
    private int DollarStart(int i, int end, bool final)
    {
        var j = i + 1;
        if (j >= end)
        {
            return final ? i + 1 : NeedMore(i);
        }

        var tagEnd = -1;
        if (buf[j] == '$')
        {
            tagEnd = j;
        }
        else if (IdentStart[buf[j]])
        {
            var limit = i + 2 + MaxDollarTag;
            j++;
            while (j < end && j < limit && DollarTagCont[buf[j]])
            {
                j++;
            }

            if (j >= limit)
            {
                throw Refuse(i, $"a dollar-quote tag longer than {MaxDollarTag} bytes");
            }

            if (j >= end)
            {
                return final ? i + 1 : NeedMore(i);
            }

            if (buf[j] == '$')
            {
                tagEnd = j;
            }
        }

        var afterWord = IdentCont[buf[i - 1]] && bufferBase + i != dollarCloseEnd;
        if (tagEnd < 0)
        {
            return i + 1; // a parameter ($1), or part of a word
        }

        if (afterWord)
        {
            // After an identifier the $ is part of it; after a number or $1 it starts a dollar quote
            // (psql versions disagree on which is which).
            throw Refuse(i, "a dollar quote glued to the word before it (psql versions read it differently)");
        }

        dollarTag.Clear();
        dollarTag.Append(buf.AsSpan(i + 1, tagEnd - i - 1));
        state = State.Dollar;
        return tagEnd + 1;
    }

    private int DollarBody(int i, int end, bool final)
    {
        var k = buf.AsSpan(i, end - i).IndexOfAny((byte)'$', (byte)'\0');
        if (k < 0)
        {
            return end;
        }

        i += k;
        if (buf[i] == 0)
        {
            throw Refuse(i, "a NUL byte in SQL text");
        }

        var tag = dollarTag.Span;
        var length = tag.Length + 2;
        if (end - i < length)
        {
            return final ? i + 1 : NeedMore(i);
        }

        if (buf[i + length - 1] == '$' && buf.AsSpan(i + 1, tag.Length).SequenceEqual(tag))
        {
            state = State.Code;
            dollarCloseEnd = bufferBase + i + length;
            return i + length;
        }

        return i + 1;
    }

    /// <summary>Whether the statement's tokens are still read: to classify it, for psql's function bodies, or to hold it back.</summary>
    private bool Watching => classifying || psqlTracking || holdBack != HoldBack.None;

    /// <summary>Slow path: code of a statement being classified, byte by byte, building tokens.</summary>
    private int CodeWatching(int i, int end, bool final)
    {
        while (i < end)
        {
            if (!Watching)
            {
                return i;
            }

            var b = buf[i];
            if (b == '$')
            {
                // After a word: part of it (DollarStart refuses a dollar quote glued to it).
                var next = DollarStart(i, end, final);
                if (needMore)
                {
                    return next;
                }

                if (state == State.Dollar)
                {
                    ServerToken(TokenKind.String, []); // a dollar-quoted string
                    return next;
                }

                if (tokenKind != TokenKind.Word)
                {
                    StartToken(TokenKind.Word, i); // a parameter such as $1
                }

                AppendToken(b);
                i = next;
                continue;
            }

            if (IdentCont[b])
            {
                if (tokenKind != TokenKind.Word)
                {
                    StartToken(TokenKind.Word, i);
                }

                AppendToken(b);
                i++;
                continue;
            }

            if (b == '\'' && tokenKind == TokenKind.Word && token.Length == 1 && (token.Span[0] | 0x20) is (byte)'e' or (byte)'b' or (byte)'x' or (byte)'n')
            {
                // E'...', B'...', X'...', N'...': the letter belongs to the string.
                tokenKind = TokenKind.String;
                tokenPrefixed = true;
                token.Clear();
                StartQuote(i);
                return i + 1;
            }

            if (tokenKind == TokenKind.Word)
            {
                EmitToken(i);
                continue;
            }

            switch (b)
            {
                case (byte)' ' or (byte)'\t' or (byte)'\n' or (byte)'\r' or (byte)'\v' or (byte)'\f':
                    i++;
                    continue;
                case (byte)';':
                    if (parenDepth == 0)
                    {
                        CheckServerEndsHereToo();
                        if (beginDepth == 0)
                        {
                            return EndStatement(i + 1);
                        }
                    }

                    break;
                case (byte)'\'':
                    StartToken(TokenKind.String, i);
                    StartQuote(i);
                    return i + 1;
                case (byte)'"':
                    StartToken(TokenKind.Ident, i);
                    state = State.DoubleQuote;
                    return i + 1;
                case (byte)'-':
                    if (end - i < 2 && !final)
                    {
                        return NeedMore(i);
                    }

                    if (At(i + 1, end) == '-')
                    {
                        state = State.LineComment;
                        return i + 2;
                    }

                    break;
                case (byte)'/':
                    if (end - i < 2 && !final)
                    {
                        return NeedMore(i);
                    }

                    if (At(i + 1, end) == '*')
                    {
                        commentDepth = 0;
                        state = State.BlockComment;
                        return i + 2;
                    }

                    break;
                case (byte)':':
                    {
                        var next = Colon(i, end, final);
                        if (needMore)
                        {
                            return next;
                        }

                        StartToken(TokenKind.Punct, i);
                        AppendToken(b);
                        EmitToken(i + 1);
                        i = next; // past a cast's second colon too
                        continue;
                    }

                case (byte)'\\':
                    return RefuseBackslash(i, end, final);
                case 0:
                    throw Refuse(i, "a NUL byte in SQL text");
                default:
                    break;
            }

            StartToken(TokenKind.Punct, i);
            AppendToken(b);
            EmitToken(i + 1);
            if (b == '(')
            {
                parenDepth++;
            }
            else if (b == ')' && parenDepth > 0)
            {
                parenDepth--;
            }

            i++;
        }

        return i;
    }

    /// <summary>
    /// Inside '...' read without backslash escapes (standard_conforming_strings on, or U&amp;'...').
    /// A quote after an odd run of backslashes would end the string in the other reading; unless
    /// psql is known to read it this way, that is refused. <see cref="backslashRun"/> holds the
    /// backslashes right before <paramref name="i"/>.
    /// </summary>
    private int Quoted(int i, int end, bool final)
    {
        while (true)
        {
            var span = buf.AsSpan(i, end - i);
            var k = span.IndexOfAny((byte)'\'', (byte)'\0');
            if (k < 0)
            {
                AppendToken(span);
                var trailing = span.Length - span.TrimEnd((byte)'\\').Length;
                backslashRun = trailing == span.Length ? backslashRun + trailing : trailing;
                return end;
            }

            AppendToken(span[..k]);
            var before = span[..k];
            var run = before.Length - before.TrimEnd((byte)'\\').Length;
            backslashRun = run == before.Length ? backslashRun + run : run;
            i += k;
            if (buf[i] == 0)
            {
                throw Refuse(i, "a NUL byte in SQL text");
            }

            if ((backslashRun & 1) == 1 && !quoteCertain)
            {
                PinStandardStrings(i);
            }

            if (end - i < 2 && !final)
            {
                return NeedMore(i);
            }

            backslashRun = 0;
            if (At(i + 1, end) != '\'')
            {
                return CloseQuote(i, end);
            }

            AppendToken((byte)'\'');
            i += 2;
        }
    }

    /// <summary>
    /// Inside E'...' (or '...' with standard_conforming_strings off): a backslash escapes the next
    /// byte. <see cref="backslashRun"/> counts an unfinished run of backslashes.
    /// </summary>
    private int EscapeQuoted(int i, int end, bool final)
    {
        while (i < end)
        {
            if (backslashRun > 0)
            {
                var run = buf.AsSpan(i, end - i).IndexOfAnyExcept((byte)'\\');
                if (run < 0)
                {
                    AppendToken(buf.AsSpan(i, end - i));
                    backslashRun += end - i;
                    return end;
                }

                AppendToken(buf.AsSpan(i, run));
                backslashRun += run;
                i += run;
                var odd = (backslashRun & 1) == 1;
                backslashRun = 0;
                if (odd && buf[i] == '\'' && !quoteCertain)
                {
                    PinStandardStrings(i);
                }

                if (odd)
                {
                    if (buf[i] == 0)
                    {
                        throw Refuse(i, "a NUL byte in SQL text");
                    }

                    AppendToken(buf[i]); // escaped
                    i++;
                    continue;
                }
            }

            var span = buf.AsSpan(i, end - i);
            var k = span.IndexOfAny(QuoteStops);
            if (k < 0)
            {
                AppendToken(span);
                return end;
            }

            AppendToken(span[..k]);
            i += k;
            switch (buf[i])
            {
                case (byte)'\\':
                    backslashRun = 1;
                    AppendToken((byte)'\\');
                    i++;
                    continue;
                case 0:
                    throw Refuse(i, "a NUL byte in SQL text");
                default:
                    break;
            }

            if (end - i < 2 && !final)
            {
                return NeedMore(i);
            }

            if (At(i + 1, end) == '\'')
            {
                AppendToken((byte)'\'');
                i += 2;
                continue;
            }

            return CloseQuote(i, end);
        }

        return i;
    }

    /// <summary>Inside B'...' or X'...': psql ends it at the first quote.</summary>
    private int BitQuoted(int i, int end)
    {
        var span = buf.AsSpan(i, end - i);
        var k = span.IndexOfAny((byte)'\'', (byte)'\0');
        if (k < 0)
        {
            AppendToken(span);
            return end;
        }

        AppendToken(span[..k]);
        i += k;
        if (buf[i] == 0)
        {
            throw Refuse(i, "a NUL byte in SQL text");
        }

        return CloseQuote(i, end);
    }

    /// <summary>At the closing quote of a string: psql looks ahead for a continuation ('a'&lt;newline&gt;'b').</summary>
    private int CloseQuote(int i, int end)
    {
        // Usually a comma, parenthesis or semicolon follows: no lookahead needed.
        state = At(i + 1, end) is ' ' or '\t' or '\f' or '\r' or '\n' or '-' or -1 ? State.QuoteStop : State.Code;
        quoteStopPhase = 0;
        if (tokenKind == TokenKind.String)
        {
            EmitToken(i + 1);
        }

        return i + 1;
    }

    /// <summary>
    /// After a closing quote, psql's {quotecontinue}: whitespace with a newline, then a quote,
    /// continues the same string. psql lexes line by line without the \n, so only a \r counts as
    /// that newline, and a quote at the very end of a line carries the lookahead over to the next.
    /// pg_dump never writes a continuation; the filter refuses one rather than follow it.
    /// </summary>
    private int QuoteStop(int i, int end, bool final)
    {
        while (i < end)
        {
            var c = buf[i];
            switch (quoteStopPhase)
            {
                case 0 or 1:
                    if (c is (byte)' ' or (byte)'\t' or (byte)'\f')
                    {
                        quoteStopPhase = 1;
                        i++;
                        continue;
                    }

                    if (c == '\n' && quoteStopPhase == 0)
                    {
                        i++; // psql's next line starts in the same lookahead
                        continue;
                    }

                    if (c == '\r')
                    {
                        quoteStopPhase = 3;
                        i++;
                        continue;
                    }

                    if (c == '-')
                    {
                        if (end - i < 2 && !final)
                        {
                            return NeedMore(i);
                        }

                        if (At(i + 1, end) == '-')
                        {
                            quoteStopPhase = 2;
                            i += 2;
                            continue;
                        }
                    }

                    break;
                case 2 or 4:
                    {
                        var k = buf.AsSpan(i, end - i).IndexOfAny(LineEnds);
                        if (k < 0)
                        {
                            return end;
                        }

                        i += k;
                        if (buf[i] == '\r')
                        {
                            quoteStopPhase = 3;
                            i++;
                            continue;
                        }

                        break;
                    }

                default:
                    if (c is (byte)' ' or (byte)'\t' or (byte)'\f' or (byte)'\r')
                    {
                        i++;
                        continue;
                    }

                    if (c == '\'')
                    {
                        throw Refuse(i, "a string literal continued across a carriage return (psql and the server could read it differently)");
                    }

                    if (c == '-')
                    {
                        if (end - i < 2 && !final)
                        {
                            return NeedMore(i);
                        }

                        if (At(i + 1, end) == '-')
                        {
                            quoteStopPhase = 4;
                            i += 2;
                            continue;
                        }
                    }

                    break;
            }

            // No continuation: the string ended at its quote; what followed is code.
            state = State.Code;
            return i;
        }

        return i;
    }

    private int DoubleQuoted(int i, int end, bool final)
    {
        var span = buf.AsSpan(i, end - i);
        var k = span.IndexOfAny((byte)'"', (byte)'\0');
        if (k < 0)
        {
            AppendToken(span);
            return end;
        }

        AppendToken(span[..k]);
        i += k;
        if (buf[i] == 0)
        {
            throw Refuse(i, "a NUL byte in SQL text");
        }

        if (end - i < 2 && !final)
        {
            return NeedMore(i);
        }

        if (At(i + 1, end) == '"')
        {
            AppendToken((byte)'"');
            return i + 2;
        }

        state = State.Code;
        if (tokenKind == TokenKind.Ident)
        {
            EmitToken(i + 1);
        }

        return i + 1;
    }

    private int LineComment(int i, int end)
    {
        var span = buf.AsSpan(i, end - i);
        var k = span.IndexOfAny(LineEnds);
        if (capturingTrailer)
        {
            var text = k < 0 ? span : span[..k];
            if (trailerText.Length + text.Length <= 64)
            {
                trailerText.Append(text);
            }
            else
            {
                capturingTrailer = false;
            }
        }

        if (k < 0)
        {
            return end;
        }

        i += k;
        if (buf[i] == 0)
        {
            throw Refuse(i, "a NUL byte in SQL text");
        }

        if (state == State.GapLineComment)
        {
            FinishGapComment();
            state = State.Gap;
        }
        else
        {
            state = State.Code;
        }

        return i;
    }

    /// <summary>At the end of a comment line between statements: is it pg_dump's completion trailer?</summary>
    private void FinishGapComment()
    {
        if (capturingTrailer && trailerText.Span.SequenceEqual(" PostgreSQL database dump complete"u8))
        {
            trailerSeen = true;
        }

        capturingTrailer = false;
    }

    /// <summary>Nested <c>/* */</c> comments, as in PostgreSQL.</summary>
    private int BlockComment(int i, int end, bool final)
    {
        while (true)
        {
            var k = buf.AsSpan(i, end - i).IndexOfAny((byte)'*', (byte)'/', (byte)'\0');
            if (k < 0)
            {
                return end;
            }

            i += k;
            if (buf[i] == 0)
            {
                throw Refuse(i, "a NUL byte in SQL text");
            }

            if (end - i < 2)
            {
                return final ? end : NeedMore(i);
            }

            if (buf[i] == '*' && buf[i + 1] == '/')
            {
                i += 2;
                if (commentDepth == 0)
                {
                    state = state == State.GapBlockComment ? State.Gap : State.Code;
                    return i;
                }

                commentDepth--;
            }
            else if (buf[i] == '/' && buf[i + 1] == '*')
            {
                commentDepth++;
                i += 2;
            }
            else
            {
                i++;
            }
        }
    }

    // ---- COPY ... FROM stdin data --------------------------------------------------------------

    /// <summary>
    /// The rest of the <c>COPY ... FROM stdin;</c> line: psql reads the data from the next line and
    /// lexes this rest after the data, so only blanks and a comment may follow.
    /// </summary>
    private int CopyLineRest(int i, int end, bool final)
    {
        while (i < end)
        {
            if (copyRestComment)
            {
                var k = buf.AsSpan(i, end - i).IndexOfAny(LineEnds);
                if (k < 0)
                {
                    return end;
                }

                i += k;
                if (buf[i] == 0)
                {
                    throw Refuse(i, "a NUL byte in SQL text");
                }

                copyRestComment = false;
                if (buf[i] == '\r')
                {
                    i++; // a comment ends at \r too: what follows is code
                }

                continue;
            }

            var b = buf[i];
            if (b is (byte)' ' or (byte)'\t' or (byte)'\r' or (byte)'\f')
            {
                i++;
                continue;
            }

            if (b == '\n')
            {
                Commit(i + 1);
                MarkLineStart();
                state = State.CopyData;
                copyLineStart = true;
                return i + 1;
            }

            if (b == '-')
            {
                if (end - i < 2 && !final)
                {
                    return NeedMore(i);
                }

                if (At(i + 1, end) == '-')
                {
                    copyRestComment = true;
                    i += 2;
                    continue;
                }
            }

            if (b == '\\')
            {
                return RefuseBackslash(i, end, final);
            }

            throw Refuse(i, "text after 'COPY ... FROM stdin;' on its line (psql runs it after the data)");
        }

        return i;
    }

    private int CopyData(int i, int end, bool final)
    {
        _ = UnitLine;
        LineAt(i);
        i = CopyLines(i, end, final, out var newlines);
        lines.Counted(bufferBase + i, newlines); // the data's line breaks, found anyway
        Commit(i);
        MarkLineStart(); // data lines are never refused; after \. a line starts
        return i;
    }

    private int CopyLines(int i, int end, bool final, out long newlines)
    {
        newlines = 0;
        while (i < end)
        {
            if (copyLineStart)
            {
                if (buf[i] == '\\')
                {
                    if (end - i < 4 && !final)
                    {
                        return NeedMore(i);
                    }

                    if (At(i + 1, end) == '.')
                    {
                        var c = At(i + 2, end);
                        var terminator = c switch
                        {
                            -1 => 2,
                            '\n' => 3,
                            '\r' when At(i + 3, end) == '\n' => 4,
                            '\r' when At(i + 3, end) == -1 => 3,
                            _ => 0,
                        };
                        if (terminator > 0)
                        {
                            state = State.Gap;
                            gapStart = bufferBase + i + terminator;
                            newlines += terminator - 2 - (c == '\r' ? 1 : 0);
                            return i + terminator;
                        }
                    }
                }

                copyLineStart = false;
            }

            // psql reads a data line as a C string: after a NUL it would not see the line's end, nor a \. after it.
            var k = buf.AsSpan(i, end - i).IndexOfAny((byte)'\n', (byte)0);
            if (k < 0)
            {
                return end;
            }

            if (buf[i + k] == 0)
            {
                throw Refuse(i + k, "a NUL byte in COPY data");
            }

            i += k + 1;
            newlines++;
            copyLineStart = true;
        }

        return i;
    }

    // ---- tokens and classification -----------------------------------------------------------

    private void StartToken(TokenKind kind, int i)
    {
        tokenKind = kind;
        tokenStart = bufferBase + i;
        token.Clear();
        tokenOverflow = false;
        tokenPrefixed = false;
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
        Commit(end);
        var text = token.Span;
        if (psqlTracking)
        {
            if (kind == TokenKind.Word && IdentStart[text[0]])
            {
                PsqlIdentifier(text);
            }

            ServerToken(kind, text);
        }

        if (classifying)
        {
            OnToken(kind, text, tokenStart - unitStart, bufferBase + end - unitStart);
        }

        if (holdBack != HoldBack.None)
        {
            WatchHoldBack(kind, text);
        }
    }

    /// <summary>psql's BEGIN ... END tracking for CREATE [OR REPLACE] FUNCTION|PROCEDURE (psqlscan.l).</summary>
    private void PsqlIdentifier(ReadOnlySpan<byte> word)
    {
        if (psqlIdentifierCount < psqlIdentifiers.Length
            && (Is(word, "create"u8) || Is(word, "function"u8) || Is(word, "procedure"u8)
                || Is(word, "or"u8) || Is(word, "replace"u8)))
        {
            psqlIdentifiers[psqlIdentifierCount] = (byte)(word[0] | 0x20);
        }

        psqlIdentifierCount++;
        if (PsqlFunction)
        {
            if (parenDepth == 0)
            {
                if (Is(word, "begin"u8))
                {
                    beginDepth++;
                }
                else if (Is(word, "case"u8))
                {
                    if (beginDepth >= 1)
                    {
                        beginDepth++;
                    }
                }
                else if (Is(word, "end"u8) && beginDepth > 0)
                {
                    beginDepth--;
                }
            }

            return;
        }

        var ids = psqlIdentifiers;
        var possible = ids[0] == 'c' && psqlIdentifierCount switch
        {
            1 => true,
            2 => ids[1] == 'o',
            3 => ids[1] == 'o' && ids[2] == 'r',
            _ => false,
        };
        if (!possible)
        {
            psqlTracking = false;
        }
    }

    /// <summary>The statement starts CREATE [OR REPLACE] FUNCTION|PROCEDURE, as psql (and so the server) reads it.</summary>
    private bool PsqlFunction
    {
        get
        {
            var ids = psqlIdentifiers;
            return ids[0] == 'c'
                && (ids[1] is (byte)'f' or (byte)'p'
                    || (ids[1] == 'o' && ids[2] == 'r' && ids[3] is (byte)'f' or (byte)'p'));
        }
    }

    /// <summary>
    /// Follows a CREATE FUNCTION|PROCEDURE token by token as the server's grammar reads it: where a
    /// BEGIN ATOMIC body starts and ends (keywords are unquoted words; any other token is none of them).
    /// </summary>
    private void ServerToken(TokenKind kind, ReadOnlySpan<byte> text)
    {
        if (!PsqlFunction)
        {
            return;
        }

        var keyword = kind == TokenKind.Word ? text : [];
        if (atomicBody)
        {
            if (bodyStatementStart && Is(keyword, "end"u8))
            {
                atomicBody = false;
            }

            bodyStatementStart = kind == TokenKind.Punct && text.SequenceEqual(";"u8);
        }
        else if (lastWasBegin && Is(keyword, "atomic"u8))
        {
            atomicBody = true;
            bodyStatementStart = true;
        }

        lastWasBegin = !atomicBody && parenDepth == 0 && Is(keyword, "begin"u8);
    }

    /// <summary>
    /// At a <c>;</c> outside parentheses: psql sends the whole text to its <c>;</c> as one query, and the
    /// server runs every statement in it. Both must end a CREATE FUNCTION at the same <c>;</c>.
    /// </summary>
    private void CheckServerEndsHereToo()
    {
        if (psqlTracking && PsqlFunction && atomicBody == (beginDepth == 0))
        {
            throw RefuseEndsElsewhere();
        }
    }

    /// <summary>
    /// What an ALTER DATABASE of pg_dump's does to the database (now the target): its settings (SET)
    /// pass; its owner only with <see cref="PostgresFilterOptions.DatabaseOwner"/>; the properties
    /// pg_dump --create writes (CONNECTION LIMIT, IS_TEMPLATE, and ALLOW_CONNECTIONS or WITH ...) are
    /// left out: the restore creates the target, and a template or a connection limit made it one
    /// no later restore can replace or reach. Anything else (RENAME, RESET, REFRESH ...) is refused.
    /// </summary>
    private void OnAlterDatabaseAction(TokenKind kind, ReadOnlySpan<byte> text)
    {
        if (IsWord(kind, text, "SET"u8))
        {
            AddLeading(text);
            step = Step.AlterDatabaseSet;
            return;
        }

        if (IsWord(kind, text, "OWNER"u8) && passDatabaseOwner)
        {
            ReleaseOrHoldBack(databaseNameStart, databaseNameEnd);
            StopClassifying();
            return;
        }

        if (IsWord(kind, text, "OWNER"u8) || IsWord(kind, text, "CONNECTION"u8) || IsWord(kind, text, "IS_TEMPLATE"u8)
            || IsWord(kind, text, "ALLOW_CONNECTIONS"u8) || IsWord(kind, text, "WITH"u8))
        {
            sink.Discard();
            DroppedStatements++;
            StopClassifying();
            return;
        }

        throw NotPgDump(text);
    }

    private DumpFilterException RefuseEndsElsewhere() => new(
        $"line {UnitLine}: a CREATE FUNCTION or PROCEDURE that psql and the server would end at different places is not something pg_dump writes; refused");

    private static bool Is(ReadOnlySpan<byte> text, ReadOnlySpan<byte> keyword) => Ascii.EqualsIgnoreCase(text, keyword);

    private static bool IsWord(TokenKind kind, ReadOnlySpan<byte> text, ReadOnlySpan<byte> keyword) =>
        kind == TokenKind.Word && Is(text, keyword);

    private static bool IsPunct(TokenKind kind, ReadOnlySpan<byte> text, byte value) =>
        kind == TokenKind.Punct && text[0] == value;

    private void OnToken(TokenKind kind, ReadOnlySpan<byte> text, long start, long end)
    {
        tokenCount++;
        if (wordCheck != WordCheck.None)
        {
            CheckWord(kind, text);
        }

        switch (step)
        {
            case Step.Start:
                OnFirstToken(kind, text);
                return;
            case Step.AfterDrop:
            case Step.AfterCreate:
                if (IsWord(kind, text, "DATABASE"u8))
                {
                    RequireHeld();
                    sink.Discard();
                    DroppedStatements++;
                    step = Step.DatabaseName;
                    return;
                }

                if (step == Step.AfterCreate && IsWord(kind, text, "OR"u8))
                {
                    AddLeading(text);
                    step = Step.CreateOrReplace;
                    return;
                }

                StartObjectType(kind, text);
                return;
            case Step.CreateOrReplace:
                if (IsWord(kind, text, "REPLACE"u8))
                {
                    AddLeading(text);
                    step = Step.ObjectType;
                    return;
                }

                throw NotPgDump(text);
            case Step.ObjectType:
                OnObjectTypeWord(kind, text);
                return;
            case Step.DatabaseName:
                if (IsWord(kind, text, "IF"u8) || IsWord(kind, text, "EXISTS"u8))
                {
                    return;
                }

                if (kind is TokenKind.Word or TokenKind.Ident)
                {
                    ObserveName(kind, text);
                }

                StopClassifying();
                return;
            case Step.AfterAlter:
                if (IsWord(kind, text, "DATABASE"u8))
                {
                    AddLeading(text);
                    alteringDatabase = true;
                    step = Step.RewriteName;
                    return;
                }

                if (IsWord(kind, text, "ROLE"u8) || IsWord(kind, text, "USER"u8))
                {
                    // ALTER ROLE name IN DATABASE db SET ...: pg_dump --create writes it for
                    // per-database role settings. Any other ALTER ROLE changes the whole cluster.
                    AddLeading(text);
                    step = Step.AlterRoleName;
                    return;
                }

                StartObjectType(kind, text);
                return;
            case Step.AlterRoleName:
                if (kind is TokenKind.Word or TokenKind.Ident)
                {
                    AddLeading(text);
                    step = Step.AlterRoleIn;
                    return;
                }

                throw NotPgDump();
            case Step.AlterRoleIn:
                ExpectOrRefuse(kind, text, "IN"u8, Step.AlterRoleInWhat);
                return;
            case Step.AlterRoleInWhat:
                ExpectOrRefuse(kind, text, "DATABASE"u8, Step.RewriteName);
                return;
            case Step.RewriteName:
                if (kind is TokenKind.Word or TokenKind.Ident)
                {
                    ObserveName(kind, text);
                    RequireHeld();
                    if (alteringDatabase)
                    {
                        // Held until what it alters is known.
                        databaseNameStart = checked((int)start);
                        databaseNameEnd = checked((int)end);
                        step = Step.AlterDatabaseAction;
                        return;
                    }

                    if (HoldingToEnd)
                    {
                        sink.ReplaceHeld(checked((int)start), checked((int)end), targetIdentifier);
                    }
                    else
                    {
                        sink.ReleaseReplacing(checked((int)start), checked((int)end), targetIdentifier);
                    }

                    if (rewritingGrant)
                    {
                        step = Step.AfterGrantName;
                    }
                    else
                    {
                        StopClassifying();
                    }

                    return;
                }

                PassStatement();
                return;
            case Step.AlterDatabaseAction:
                OnAlterDatabaseAction(kind, text);
                return;
            case Step.AlterDatabaseSet:
                // SET name TO value (pg_dump's); SET TABLESPACE moves the database.
                if (IsWord(kind, text, "TABLESPACE"u8))
                {
                    throw NotPgDump(text);
                }

                ReleaseOrHoldBack(databaseNameStart, databaseNameEnd);
                StopClassifying();
                return;
            case Step.AfterGrantName:
                if (IsPunct(kind, text, (byte)','))
                {
                    throw new DumpFilterException(
                        $"line {UnitLine}: the GRANT/REVOKE names several databases; not supported");
                }

                StopClassifying();
                return;
            case Step.CommentOn:
                ExpectOrRefuse(kind, text, "ON"u8, Step.OnWhat);
                return;
            case Step.OnWhat:
                if (IsWord(kind, text, "DATABASE"u8))
                {
                    step = Step.RewriteName;
                    return;
                }

                StartObjectType(kind, text);
                return;
            case Step.GrantScan:
                if (parenDepth == 0)
                {
                    if (IsWord(kind, text, "ON"u8))
                    {
                        AddLeading("..."u8);
                        AddLeading(text);
                        rewritingGrant = true;
                        step = Step.OnWhat;
                        return;
                    }

                    if (IsWord(kind, text, "TO"u8) || IsWord(kind, text, "FROM"u8) || tokenCount > GrantTokenLimit)
                    {
                        // pg_dump grants privileges on objects; a role granted to a role is pg_dumpall's.
                        AddLeading("..."u8);
                        throw NotPgDump(text);
                    }
                }

                return;
            case Step.SecurityLabel:
                ExpectOrRefuse(kind, text, "LABEL"u8, Step.SecurityLabelAfter);
                return;
            case Step.SecurityLabelAfter:
                if (IsWord(kind, text, "FOR"u8))
                {
                    step = Step.SecurityLabelProvider;
                    return;
                }

                ExpectOrRefuse(kind, text, "ON"u8, Step.OnWhat);
                return;
            case Step.SecurityLabelProvider:
                if (kind is TokenKind.Word or TokenKind.Ident or TokenKind.String)
                {
                    step = Step.SecurityLabelAfterProvider;
                    return;
                }

                throw NotPgDump();
            case Step.SecurityLabelAfterProvider:
                ExpectOrRefuse(kind, text, "ON"u8, Step.OnWhat);
                return;
            case Step.SetStart:
                if (IsWord(kind, text, "SESSION"u8))
                {
                    AddLeading(text);
                    step = Step.SetSession;
                    return;
                }

                if (IsWord(kind, text, "LOCAL"u8))
                {
                    AddLeading(text);
                    setLocal = true;
                    step = Step.SetName;
                    return;
                }

                if (IsWord(kind, text, "NAMES"u8))
                {
                    settingName = "client_encoding"; // SET NAMES x is SET client_encoding TO x
                    step = Step.SetEncodingValue;
                    return;
                }

                goto case Step.SetName;
            case Step.SetSession:
                if (IsWord(kind, text, "AUTHORIZATION"u8))
                {
                    // pg_dump's grants by a grantee (and --use-set-session-authorization): only a superuser may.
                    holdBack = heldBack is null ? HoldBack.None : HoldBack.SessionAuthorization;
                    holdBackTokens = 2; // AUTHORIZATION is the third token, the role the fourth
                    PassStatement();
                    return;
                }

                goto case Step.SetName;
            case Step.SetName:
                if (kind is TokenKind.Word or TokenKind.Ident && !tokenOverflow)
                {
                    AddLeading(text);
                    settingName = SettingPart(kind, text);
                    step = Step.SetAfterName;
                    return;
                }

                throw NotPgDump(text);
            case Step.SetDot:
                if (kind is TokenKind.Word or TokenKind.Ident && !tokenOverflow)
                {
                    settingName = settingName + "." + SettingPart(kind, text);
                    step = Step.SetAfterName;
                    return;
                }

                throw NotPgDump();
            case Step.SetAfterName:
                if (IsPunct(kind, text, (byte)'.'))
                {
                    step = Step.SetDot;
                    return;
                }

                if (IsPunct(kind, text, (byte)'=') || IsWord(kind, text, "TO"u8))
                {
                    DecideSetting(standardStringsValueFollows: true);
                    return;
                }

                throw NotPgDump(); // SET ROLE x, SET TIME ZONE ..., SET TRANSACTION ...
            case Step.SetEncodingValue:
            case Step.SelectEncodingValue:
                if (setLocal || !IsPlainValue(kind))
                {
                    throw RefuseLexerSetting();
                }

                CheckClientEncoding(text);
                step = step == Step.SetEncodingValue ? Step.SetValueEnd : Step.SelectEncodingAfter;
                return;
            case Step.SelectEncodingComma:
                step = IsPunct(kind, text, (byte)',') ? Step.SelectEncodingValue : throw RefuseLexerSetting();
                return;
            case Step.SelectEncodingAfter:
                if (!IsPunct(kind, text, (byte)','))
                {
                    throw RefuseLexerSetting();
                }

                StopClassifying(); // the word check reads the rest (false)
                return;
            case Step.SetStandardStringsValue:
                pendingStandardStrings = IsPlainValue(kind) ? ParseStandardStrings(text) : null;
                step = pendingStandardStrings is null ? throw RefuseLexerSetting() : Step.SetValueEnd;
                return;
            case Step.SetValueEnd:
                throw RefuseLexerSetting();
            case Step.ResetName:
                ExpectOrRefuse(kind, text, "SESSION"u8, Step.ResetSession);
                return;
            case Step.ResetSession:
                if (IsWord(kind, text, "AUTHORIZATION"u8))
                {
                    holdBack = heldBack is null ? HoldBack.None : HoldBack.ResetSessionAuthorization;
                    PassStatement();
                    return;
                }

                throw NotPgDump(text);
            case Step.Select:
                if (IsWord(kind, text, "pg_catalog"u8))
                {
                    step = Step.SelectDot;
                    return;
                }

                if (IsPunct(kind, text, (byte)'*'))
                {
                    PassStatement(); // SELECT * FROM pg_catalog.pg_restore_relation_stats(...): its words are checked
                    return;
                }

                throw NotPgDump(text);
            case Step.SelectDot:
                if (IsPunct(kind, text, (byte)'.'))
                {
                    step = Step.SelectFunction;
                    return;
                }

                throw NotPgDump(text);
            case Step.SelectFunction:
                if (IsWord(kind, text, "set_config"u8))
                {
                    step = Step.SelectParen;
                    return;
                }

                PassStatement(); // setval, lo_create, ...: the word check refused anything else
                return;
            case Step.SelectParen:
                if (IsPunct(kind, text, (byte)'('))
                {
                    step = Step.SelectName;
                    return;
                }

                throw NotPgDump(text);
            case Step.SelectName:
                if (kind == TokenKind.String && !tokenOverflow)
                {
                    settingName = Encoding.UTF8.GetString(text);
                    if (string.Equals(settingName, "client_encoding", StringComparison.OrdinalIgnoreCase))
                    {
                        step = Step.SelectEncodingComma;
                        return;
                    }

                    DecideSetting(standardStringsValueFollows: false);
                    return;
                }

                throw NotPgDump(text);
            case Step.Bare:
                throw NotPgDump(text);
            case Step.Refresh:
                ExpectOrRefuse(kind, text, "MATERIALIZED"u8, Step.RefreshMaterialized);
                return;
            case Step.RefreshMaterialized:
                if (IsWord(kind, text, "VIEW"u8))
                {
                    PassStatement();
                    return;
                }

                throw NotPgDump(text);
            case Step.InsertInto:
                if (IsWord(kind, text, "INTO"u8))
                {
                    // The rows of pg_dump --inserts can be long: released now, their words checked as they come.
                    sink.Release();
                    wordCheck = WordCheck.InsertTarget;
                    StartRelationName(NameUse.Insert);
                    return;
                }

                throw NotPgDump(text);
            case Step.CopyScan:
            case Step.CopyFrom:
                CopyToken(kind, text);
                return;
            default:
                OnRelationToken(kind, text);
                return;
        }
    }

    private void CopyToken(TokenKind kind, ReadOnlySpan<byte> text)
    {
        if (step == Step.CopyFrom && IsWord(kind, text, "STDIN"u8))
        {
            copyFromStdin = true;
            StopClassifying();
            return;
        }

        step = parenDepth == 0 && IsWord(kind, text, "FROM"u8) ? Step.CopyFrom : Step.CopyScan;
        if (tokenCount > CopyTokenLimit)
        {
            throw new DumpFilterException(
                $"line {UnitLine}: the COPY statement is too long to classify; not supported");
        }
    }

    /// <summary>
    /// The first word of a statement: only the statements pg_dump writes (see <see cref="ObjectTypes"/>,
    /// <see cref="PgDumpSettings"/>, <see cref="SelectWords"/>) get further; anything else
    /// (DO, CALL, CREATE ROLE, ALTER SYSTEM, SET ROLE, LOAD, VACUUM, UPDATE, ...) refuses the dump.
    /// </summary>
    private void OnFirstToken(TokenKind kind, ReadOnlySpan<byte> text)
    {
        if (kind != TokenKind.Word)
        {
            throw NotPgDump(text);
        }

        if (sessionAuthorization is not null && !(Is(text, "GRANT"u8) || Is(text, "REVOKE"u8) || Is(text, "RESET"u8)))
        {
            throw new DumpFilterException(
                $"line {UnitLine}: statement {Show(text)} under SET SESSION AUTHORIZATION (pg_dump --use-set-session-authorization) "
                + "sets an owner only a superuser's load can: give --trust-backup; refused");
        }

        AddLeading(text);
        if (Is(text, "DROP"u8))
        {
            verb = Verb.Drop;
            step = Step.AfterDrop;
        }
        else if (Is(text, "CREATE"u8))
        {
            verb = Verb.Create;
            step = Step.AfterCreate;
        }
        else if (Is(text, "ALTER"u8))
        {
            verb = Verb.Alter;
            step = Step.AfterAlter;
            holdBack = heldBack is null ? HoldBack.None : HoldBack.Alter;
        }
        else if (Is(text, "COMMENT"u8))
        {
            step = Step.CommentOn;
            holdBack = heldBack is null ? HoldBack.None : HoldBack.Comment;
        }
        else if (Is(text, "GRANT"u8) || Is(text, "REVOKE"u8))
        {
            step = Step.GrantScan;
            if (sessionAuthorization is not null)
            {
                holdBack = HoldBack.Whole;
                holdBackMatched = true;
            }
        }
        else if (Is(text, "SECURITY"u8))
        {
            step = Step.SecurityLabel;
        }
        else if (Is(text, "SET"u8))
        {
            step = Step.SetStart;
        }
        else if (Is(text, "SELECT"u8))
        {
            wordCheck = WordCheck.Select;
            step = Step.Select;
        }
        else if (Is(text, "RESET"u8))
        {
            step = Step.ResetName;
        }
        else if (Is(text, "COPY"u8))
        {
            sink.Release();
            isCopy = true;
            StartRelationName(NameUse.Copy);
        }
        else if (Is(text, "INSERT"u8))
        {
            step = Step.InsertInto;
        }
        else if (Is(text, "REFRESH"u8))
        {
            step = Step.Refresh;
        }
        else if (Is(text, "BEGIN"u8) || Is(text, "COMMIT"u8))
        {
            step = Step.Bare; // around large objects
        }
        else
        {
            throw NotPgDump();
        }
    }

    private void ExpectOrRefuse(TokenKind kind, ReadOnlySpan<byte> text, ReadOnlySpan<byte> keyword, Step next)
    {
        if (!IsWord(kind, text, keyword))
        {
            throw NotPgDump(text);
        }

        AddLeading(text);
        step = next;
    }

    private void DecideSetting(bool standardStringsValueFollows)
    {
        if (!PgDumpSettings.Contains(settingName))
        {
            throw NotPgDump(standardStringsValueFollows ? default : Encoding.UTF8.GetBytes("pg_catalog.set_config('" + settingName + "')"));
        }

        var standardStrings = string.Equals(settingName, "standard_conforming_strings", StringComparison.OrdinalIgnoreCase);
        var encoding = string.Equals(settingName, "client_encoding", StringComparison.OrdinalIgnoreCase);
        if ((standardStrings && !standardStringsValueFollows) || ((standardStrings || encoding) && setLocal))
        {
            // set_config and SET LOCAL: what the setting is after them depends on the transaction.
            throw RefuseLexerSetting();
        }

        if (!isKnownSetting(settingName))
        {
            RequireHeld();
            sink.Discard();
            DroppedStatements++;
            StopClassifying();
            return;
        }

        if (standardStrings)
        {
            step = Step.SetStandardStringsValue;
            return;
        }

        if (encoding)
        {
            step = Step.SetEncodingValue;
            return;
        }

        capturingSearchPath = heldBack is not null && string.Equals(settingName, "search_path", StringComparison.OrdinalIgnoreCase);
        PassStatement();
    }

    // ---- the statements pg_dump writes -------------------------------------------------------------

    /// <summary>
    /// What follows CREATE [OR REPLACE], ALTER, DROP, COMMENT ON, SECURITY LABEL ... ON and
    /// GRANT/REVOKE ... ON in what pg_dump writes (9.x to 18, plain format, any options): objects of
    /// one database (DATABASE itself is pointed at the target). Never ROLE, USER, GROUP, TABLESPACE,
    /// SYSTEM or PARAMETER: those change the whole cluster (pg_dumpall writes them).
    /// </summary>
    private static readonly string[][] ObjectTypes =
    [
        .. new[]
        {
            "ACCESS METHOD", "AGGREGATE", "CAST", "COLLATION", "COLUMN", "CONSTRAINT", "CONSTRAINT TRIGGER", "CONVERSION",
            "DEFAULT CONVERSION", "DEFAULT PRIVILEGES", "DOMAIN", "EVENT TRIGGER", "EXTENSION", "FOREIGN DATA WRAPPER",
            "FOREIGN SERVER", "FOREIGN TABLE", "FUNCTION", "INDEX", "UNIQUE INDEX", "LANGUAGE", "PROCEDURAL LANGUAGE",
            "TRUSTED LANGUAGE", "TRUSTED PROCEDURAL LANGUAGE", "LARGE OBJECT", "MATERIALIZED VIEW", "OPERATOR",
            "OPERATOR CLASS", "OPERATOR FAMILY", "POLICY", "PROCEDURE", "PUBLICATION", "RULE", "SCHEMA", "SEQUENCE",
            "SERVER", "STATISTICS", "SUBSCRIPTION", "TABLE", "UNLOGGED SEQUENCE", "UNLOGGED TABLE", "TEXT SEARCH CONFIGURATION",
            "TEXT SEARCH DICTIONARY", "TEXT SEARCH PARSER", "TEXT SEARCH TEMPLATE", "TRANSFORM", "TRIGGER", "TYPE",
            "USER MAPPING", "VIEW",
        }.Select(phrase => phrase.Split(' ')),
    ];

    /// <summary>The settings pg_dump sets with SET and set_config (9.x to 18); SET ROLE is pg_restore's, not pg_dump's.</summary>
    private static readonly HashSet<string> PgDumpSettings = new(StringComparer.OrdinalIgnoreCase)
    {
        "statement_timeout", "lock_timeout", "idle_in_transaction_session_timeout", "transaction_timeout",
        "client_encoding", "standard_conforming_strings", "search_path", "check_function_bodies", "xmloption",
        "client_min_messages", "escape_string_warning", "row_security", "default_tablespace",
        "default_table_access_method", "default_with_oids",
    };

    /// <summary>
    /// The words of pg_dump's SELECTs: <c>SELECT pg_catalog.set_config(...)</c>, <c>setval</c>, the
    /// large-object calls (<c>lo_create</c>, <c>lo_open</c>, <c>lowrite</c>, <c>lo_close</c>,
    /// <c>lo_unlink(oid) FROM pg_catalog.pg_largeobject_metadata WHERE oid = '...'</c>) and
    /// pg_dump 18's statistics (<c>SELECT * FROM pg_catalog.pg_restore_relation_stats('version', '180000'::integer, ...)</c>).
    /// Anything else (another function, a subquery) refuses the statement.
    /// </summary>
    private static readonly HashSet<string> SelectWords = new(StringComparer.OrdinalIgnoreCase)
    {
        "pg_catalog", "FROM", "WHERE", "oid", "pg_largeobject_metadata", "true", "false", "NULL",
        "integer", "bigint", "smallint", "real", "boolean", "text", "regclass",
    };

    /// <summary>The functions of <see cref="SelectWords"/>: the only words a <c>(</c> may follow.</summary>
    private static readonly HashSet<string> SelectFunctions = new(StringComparer.OrdinalIgnoreCase)
    {
        "set_config", "setval", "lo_create", "lo_open", "lowrite", "lo_close", "lo_unlink",
        "pg_restore_relation_stats", "pg_restore_attribute_stats",
    };

    /// <summary>The words of pg_dump --inserts' rows after VALUES: literals and ON CONFLICT DO NOTHING.</summary>
    private static readonly byte[][] InsertValueWords =
        [.. new[] { "NULL", "DEFAULT", "true", "false", "ON", "CONFLICT", "DO", "NOTHING" }.Select(Encoding.ASCII.GetBytes)];

    private enum WordCheck : byte
    {
        None,

        /// <summary>SELECT: only <see cref="SelectWords"/> and <see cref="SelectFunctions"/>.</summary>
        Select,

        /// <summary>INSERT INTO name [(columns)] [OVERRIDING ...] before VALUES: no query.</summary>
        InsertTarget,

        /// <summary>After INSERT's VALUES: only literals.</summary>
        InsertValues,
    }

    /// <summary>Checks each word of a SELECT or INSERT to its end: pg_dump writes literals there, never a query or a call.</summary>
    private void CheckWord(TokenKind kind, ReadOnlySpan<byte> text)
    {
        var allowed = wordCheck switch
        {
            WordCheck.Select => kind switch
            {
                // set_config only as the SELECT's one call, which the filter reads (a later one could set
                // client_encoding to SJIS unseen; one after it, unqualified, could be the dump's own
                // function when the load role's held-back statements are replayed under that search_path).
                // pg_dump nests only the large-object calls.
                TokenKind.Word => IsNumber(text) || SelectWords.Contains(FoldIdentifier(text))
                    || (SelectFunctions.Contains(FoldIdentifier(text)) && !selectSetsConfig && (selectCalls == 0 || !Is(text, "set_config"u8))),
                TokenKind.Ident => false,
                TokenKind.Punct when text[0] == '(' => lastWordCalls && ++selectCalls > 0, // counts the calls
                _ => true,
            },
            WordCheck.InsertTarget => kind != TokenKind.Word
                || !(Is(text, "SELECT"u8) || Is(text, "WITH"u8) || Is(text, "TABLE"u8) || Is(text, "RETURNING"u8)),
            _ => kind switch
            {
                TokenKind.Word => IsNumber(text) || IsOneOf(text, InsertValueWords),
                TokenKind.Ident => false,
                TokenKind.Punct when text[0] == '(' => !lastWasWord,
                _ => true,
            },
        };
        if (!allowed)
        {
            AddLeading("..."u8);
            throw NotPgDump(text);
        }

        lastWasWord = kind == TokenKind.Word;
        lastWordCalls = wordCheck == WordCheck.Select && kind == TokenKind.Word && SelectFunctions.Contains(FoldIdentifier(text));
        selectSetsConfig |= wordCheck == WordCheck.Select && kind == TokenKind.Word && Is(text, "set_config"u8);
        if (wordCheck == WordCheck.InsertTarget && kind == TokenKind.Word && parenDepth == 0 && Is(text, "VALUES"u8))
        {
            wordCheck = WordCheck.InsertValues;
            lastWasWord = false; // VALUES (...
        }
    }

    private static bool IsNumber(ReadOnlySpan<byte> word) => word[0] is >= (byte)'0' and <= (byte)'9';

    private static bool IsOneOf(ReadOnlySpan<byte> word, byte[][] keywords)
    {
        foreach (var keyword in keywords)
        {
            if (Is(word, keyword))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>The first words after CREATE, ALTER, DROP, ... ON: an object type of <see cref="ObjectTypes"/>.</summary>
    private void StartObjectType(TokenKind kind, ReadOnlySpan<byte> text)
    {
        step = Step.ObjectType;
        OnObjectTypeWord(kind, text);
    }

    private void OnObjectTypeWord(TokenKind kind, ReadOnlySpan<byte> text)
    {
        if (kind != TokenKind.Word || objectWords.Count >= 4)
        {
            throw NotPgDump(text);
        }

        objectWords.Add(Encoding.ASCII.GetString(text).ToUpperInvariant());
        var complete = false;
        var partial = false;
        foreach (var phrase in ObjectTypes)
        {
            if (phrase.Length >= objectWords.Count && objectWords.SequenceEqual(phrase.Take(objectWords.Count)))
            {
                complete |= phrase.Length == objectWords.Count;
                partial |= phrase.Length > objectWords.Count;
            }
        }

        if (complete)
        {
            var type = string.Join(' ', objectWords);
            objectWords.Clear();
            OnObjectType(type);
        }
        else if (!partial)
        {
            objectWords.RemoveAt(objectWords.Count - 1);
            foreach (var word in objectWords)
            {
                AddLeading(Encoding.ASCII.GetBytes(word));
            }

            throw NotPgDump(objectWords.Count == 0 ? text : default);
        }
    }

    // ---- rows that would go to another database ---------------------------------------------------

    /// <summary>
    /// After the object type of CREATE/ALTER/DROP: the statements that decide where rows go read on.
    /// A foreign table's rows go to the server it names (postgres_fdw: any database, on any host),
    /// and a subscription connects to its publisher: pg_dump writes no rows into foreign tables (nor
    /// partitioned tables routing to one, nor views), never renames or moves a relation (which could
    /// hide a foreign table under another name), and creates subscriptions with connect = false.
    /// </summary>
    private void OnObjectType(string type)
    {
        statementType = type;
        if (holdBack is HoldBack.Alter or HoldBack.AlterOwner) // Alter: a one-word type, read before WatchHoldBack's second token
        {
            ownerTypeEnd = holdBackTokens + 1; // this token's index, given to it next by WatchHoldBack
            ownerType = type;
        }

        switch (verb, type)
        {
            case (Verb.Create, "TABLE" or "UNLOGGED TABLE"):
                StartRelationName(NameUse.CreateTable);
                return;
            case (Verb.Create, "FOREIGN TABLE"):
                StartRelationName(NameUse.CreateForeignTable);
                return;
            case (Verb.Create, "VIEW" or "MATERIALIZED VIEW"):
                StartRelationName(NameUse.CreateView);
                return;
            case (Verb.Alter, "TABLE" or "FOREIGN TABLE" or "VIEW" or "MATERIALIZED VIEW" or "INDEX"):
                StartRelationName(NameUse.AlterRelation);
                return;
            case (Verb.Alter, "SCHEMA"):
                StartRelationName(NameUse.AlterSchema);
                return;
            case (Verb.Create, "SCHEMA"):
                sink.Release();
                step = Step.SchemaRest;
                return;
            case (Verb.Create, "SUBSCRIPTION"):
                sink.Release();
                step = Step.SubscriptionName;
                return;
            case (Verb.Create, "PUBLICATION") when heldBack is not null:
                // FOR ALL TABLES: only a superuser may (publications run no code); FOR TABLE: the tables' owner.
                holdBack = HoldBack.Publication;
                holdBackTokens = 1;
                PassStatement();
                return;
            case (Verb.Alter, "SUBSCRIPTION"):
                AddLeading("SUBSCRIPTION"u8);
                step = Step.AlterSubscriptionName;
                return;
            case (Verb.Drop, "SUBSCRIPTION"):
                sink.Release();
                step = Step.DropSubscription;
                return;
            default:
                PassStatement();
                return;
        }
    }

    private void StartRelationName(NameUse use)
    {
        if (!HoldingToEnd)
        {
            sink.Release(); // psql runs nothing before the ';', and the output is held to the statement's line
        }

        nameUse = use;
        nameParts.Clear();
        nameIfClause = 0;
        nameLastWasU = false;
        boundInCreate = false;
        alterSubcommandStart = false;
        alterColumnSubcommand = false;
        step = Step.RelationName;
    }

    private void OnRelationToken(TokenKind kind, ReadOnlySpan<byte> text)
    {
        switch (step)
        {
            case Step.RelationName:
                if (nameParts.Count == 0 && kind == TokenKind.Word)
                {
                    // IF [NOT] EXISTS, ONLY, COPY's old BINARY: reserved words but IF (a table may be named "if").
                    if (nameIfClause > 0 && (Is(text, "NOT"u8) || Is(text, "EXISTS"u8)))
                    {
                        nameIfClause = 2;
                        return;
                    }

                    if (nameIfClause == 1)
                    {
                        nameIfClause = 0;
                        AddNamePart(TokenKind.Word, "if"u8);
                        OnRelationToken(kind, text); // what followed "if" (its dot, or what comes after the name)
                        return;
                    }

                    if (nameIfClause == 0 && Is(text, "IF"u8))
                    {
                        nameIfClause = 1;
                        return;
                    }

                    if (Is(text, "ONLY"u8) || (nameUse == NameUse.Copy && Is(text, "BINARY"u8)))
                    {
                        return;
                    }
                }

                if (kind is TokenKind.Word or TokenKind.Ident)
                {
                    AddNamePart(kind, text);
                    return;
                }

                if (nameIfClause == 1)
                {
                    nameIfClause = 0;
                    AddNamePart(TokenKind.Word, "if"u8);
                    OnRelationToken(kind, text);
                    return;
                }

                if (nameUse == NameUse.Copy && nameParts.Count == 0)
                {
                    step = Step.CopyScan; // COPY (query) TO ...: refused as not FROM stdin
                    CopyToken(kind, text);
                    return;
                }

                throw NotPgDump(text);
            case Step.RelationNameDot:
                if (IsPunct(kind, text, (byte)'.'))
                {
                    step = Step.RelationName;
                    return;
                }

                if (nameLastWasU && IsPunct(kind, text, (byte)'&'))
                {
                    throw NotPgDump("U&"u8); // U&"..." escapes name another relation than the filter reads
                }

                OnRelationName(kind, text);
                return;
            case Step.AfterRelation:
                OnAfterRelation(kind, text);
                return;
            case Step.PartitionOf:
                if (IsWord(kind, text, "OF"u8))
                {
                    StartRelationName(NameUse.PartitionParent);
                    return;
                }

                OnTableRest(kind, text); // a table named "partition"
                return;
            case Step.AttachPartition:
                if (IsWord(kind, text, "PARTITION"u8))
                {
                    StartRelationName(NameUse.AttachedChild);
                    return;
                }

                OnAlterRest(kind, text);
                return;
            case Step.AlterSet:
                if (IsWord(kind, text, "SCHEMA"u8))
                {
                    AddLeading("..."u8);
                    AddLeading("SET"u8);
                    throw NotPgDump(text);
                }

                step = Step.AlterRest;
                OnAlterRest(kind, text);
                return;
            case Step.TableRest:
                OnTableRest(kind, text);
                return;
            case Step.AlterRest:
                OnAlterRest(kind, text);
                return;
            case Step.SchemaRest:
                if (parenDepth == 0 && (IsWord(kind, text, "CREATE"u8) || IsWord(kind, text, "GRANT"u8)))
                {
                    // CREATE SCHEMA's own CREATE TABLE, VIEW, ... and GRANT: pg_dump writes each on its own.
                    AddLeading("SCHEMA ..."u8);
                    throw NotPgDump(text);
                }

                return;
            case Step.MatView:
            case Step.MatViewWith:
            case Step.MatViewWithNo:
            case Step.MatViewNoData:
                OnMaterializedViewToken(kind, text);
                return;
            case Step.BoundFor:
            case Step.BoundKind:
            case Step.BoundOpen:
            case Step.BoundValues:
            case Step.BoundTo:
                OnBoundToken(kind, text);
                return;
            default:
                OnSubscriptionToken(kind, text);
                return;
        }
    }

    private void AddNamePart(TokenKind kind, ReadOnlySpan<byte> text)
    {
        nameParts.Add(NameKey(kind, text));
        nameLastWasU = kind == TokenKind.Word && text.Length == 1 && (text[0] | 0x20) == 'u';
        step = Step.RelationNameDot;
    }

    /// <summary>
    /// A name part as the server reads it: unquoted names fold to lower case. The server cuts names
    /// at 63 bytes (at a character boundary, by its encoding); a key of the first 60 bytes makes
    /// two spellings of one name the same key. Bytes kept as they are (Latin1).
    /// </summary>
    private static string NameKey(TokenKind kind, ReadOnlySpan<byte> text)
    {
        Span<byte> key = stackalloc byte[Math.Min(text.Length, 60)];
        text[..key.Length].CopyTo(key);
        if (kind == TokenKind.Word)
        {
            for (var k = 0; k < key.Length; k++)
            {
                key[k] = key[k] is >= (byte)'A' and <= (byte)'Z' ? (byte)(key[k] | 0x20) : key[k];
            }
        }

        return Encoding.Latin1.GetString(key);
    }

    /// <summary>The name is read; <paramref name="text"/> is the token after it.</summary>
    private void OnRelationName(TokenKind kind, ReadOnlySpan<byte> text)
    {
        var relation = new RelationName(nameParts.Count > 1 ? nameParts[^2] : null, nameParts[^1]);
        switch (nameUse)
        {
            case NameUse.Copy:
            case NameUse.Insert:
                if (FindNoRows(relation) is { } what)
                {
                    var description = what switch
                    {
                        RelationKind.Foreign => $"foreign table {relation} (its rows go to another server)",
                        RelationKind.ForeignPartition => $"{relation}, a partitioned table with a foreign partition (its rows can go to another server)",
                        _ => $"view {relation} (pg_dump writes no rows into a view)",
                    };
                    throw new DumpFilterException(
                        $"line {UnitLine}: {(nameUse == NameUse.Copy ? "COPY" : "INSERT")} into {description} is not something pg_dump writes; refused");
                }

                if (nameUse == NameUse.Copy)
                {
                    step = Step.CopyScan;
                    CopyToken(kind, text);
                }
                else
                {
                    StopClassifying(); // the word check goes on
                }

                return;
            case NameUse.CreateForeignTable:
                MarkNoRows(relation, RelationKind.Foreign);
                break;
            case NameUse.CreateView:
                MarkNoRows(relation, RelationKind.View);
                if (statementType == "MATERIALIZED VIEW")
                {
                    step = Step.MatView;
                    OnMaterializedViewToken(kind, text);
                    return;
                }

                StopClassifying();
                return;
            case NameUse.PartitionParent:
                AddPartition(statementRelation, relation);
                step = Step.TableRest;
                boundInCreate = true;
                OnTableRest(kind, text);
                return;
            case NameUse.AttachedChild:
                AddPartition(relation, statementRelation);
                if (IsWord(kind, text, "FOR"u8))
                {
                    boundInCreate = false;
                    step = Step.BoundFor;
                    return;
                }

                StopClassifying(); // DEFAULT
                return;
            default:
                break;
        }

        statementRelation = relation;
        step = Step.AfterRelation;
        OnAfterRelation(kind, text);
    }

    private void OnAfterRelation(TokenKind kind, ReadOnlySpan<byte> text)
    {
        if (nameUse is NameUse.CreateTable or NameUse.CreateForeignTable && IsWord(kind, text, "PARTITION"u8))
        {
            step = Step.PartitionOf;
            return;
        }

        if (nameUse is NameUse.AlterRelation or NameUse.AlterSchema)
        {
            if (IsPunct(kind, text, (byte)'*'))
            {
                return; // ALTER TABLE name * (and its children)
            }

            if (IsWord(kind, text, "RENAME"u8))
            {
                AddLeading("..."u8);
                throw NotPgDump(text);
            }

            if (IsWord(kind, text, "SET"u8))
            {
                step = Step.AlterSet;
                return;
            }

            if (nameUse == NameUse.AlterRelation && IsWord(kind, text, "ATTACH"u8))
            {
                step = Step.AttachPartition;
                return;
            }

            if (nameUse == NameUse.AlterRelation)
            {
                step = Step.AlterRest;
                alterSubcommandStart = true;
                OnAlterRest(kind, text);
                return;
            }
        }

        if (nameUse is NameUse.CreateTable or NameUse.CreateForeignTable)
        {
            OnTableRest(kind, text);
            return;
        }

        StopClassifying();
    }

    /// <summary>
    /// The rest of CREATE [UNLOGGED|FOREIGN] TABLE after its name (and PARTITION OF parent):
    /// read to its end. pg_dump never writes CREATE TABLE ... AS, which runs its query at load
    /// time (CREATE TABLE x AS TABLE pg_authid, ... AS SELECT pg_read_file(...)), and writes a
    /// partition's bound (FOR VALUES ...) as plain values only.
    /// </summary>
    private void OnTableRest(TokenKind kind, ReadOnlySpan<byte> text)
    {
        step = Step.TableRest;
        if (parenDepth != 0)
        {
            return;
        }

        if (IsWord(kind, text, "AS"u8))
        {
            AddLeading(Encoding.ASCII.GetBytes(statementType));
            AddLeading("..."u8);
            throw NotPgDump(text);
        }

        if (boundInCreate && IsWord(kind, text, "FOR"u8))
        {
            step = Step.BoundFor;
        }
    }

    /// <summary>
    /// ALTER TABLE's subcommands, to the end of the statement: pg_dump's ALTER [COLUMN] subcommands
    /// (SET DEFAULT, ADD GENERATED ... AS IDENTITY, SET STATISTICS, ...) never have a USING, which
    /// in ALTER COLUMN ... TYPE ... USING runs an expression for every row. (USING in other
    /// subcommands: ADD CONSTRAINT ... EXCLUDE USING gist, REPLICA IDENTITY USING INDEX.)
    /// </summary>
    private void OnAlterRest(TokenKind kind, ReadOnlySpan<byte> text)
    {
        step = Step.AlterRest;
        if (parenDepth != 0)
        {
            return;
        }

        if (IsPunct(kind, text, (byte)','))
        {
            alterSubcommandStart = true;
            return;
        }

        if (alterSubcommandStart)
        {
            alterSubcommandStart = false;
            alterColumnSubcommand = IsWord(kind, text, "ALTER"u8);
            return;
        }

        if (alterColumnSubcommand && IsWord(kind, text, "USING"u8))
        {
            AddLeading(Encoding.ASCII.GetBytes(statementType));
            AddLeading("... ALTER ..."u8);
            throw NotPgDump(text);
        }
    }

    /// <summary>
    /// CREATE MATERIALIZED VIEW, to its end: pg_dump writes it WITH NO DATA (its query runs at
    /// REFRESH MATERIALIZED VIEW, after the data); without, the query runs as it is created.
    /// Only the last top-level words count: WITH NO DATA, then the ';'.
    /// </summary>
    private void OnMaterializedViewToken(TokenKind kind, ReadOnlySpan<byte> text)
    {
        var top = parenDepth == 0;
        step = step switch
        {
            _ when top && IsWord(kind, text, "WITH"u8) => Step.MatViewWith,
            Step.MatViewWith when top && IsWord(kind, text, "NO"u8) => Step.MatViewWithNo,
            Step.MatViewWithNo when top && IsWord(kind, text, "DATA"u8) => Step.MatViewNoData,
            _ => Step.MatView,
        };
    }

    /// <summary>
    /// A partition bound as pg_dump writes it (from pg_get_expr): <c>FOR VALUES IN (...)</c>,
    /// <c>FROM (...) TO (...)</c> or <c>WITH (modulus n, remainder n)</c> of plain values only:
    /// strings, numbers, MINVALUE, MAXVALUE, NULL, true, false. An expression there (a call, a
    /// subquery, a cast) runs as the partition is created or attached.
    /// </summary>
    private void OnBoundToken(TokenKind kind, ReadOnlySpan<byte> text)
    {
        switch (step)
        {
            case Step.BoundFor:
                step = IsWord(kind, text, "VALUES"u8) ? Step.BoundKind : throw NotPgDumpBound(text);
                return;
            case Step.BoundKind:
                boundGroupsLeft = IsWord(kind, text, "FROM"u8) ? 2
                    : IsWord(kind, text, "IN"u8) || IsWord(kind, text, "WITH"u8) ? 1
                    : throw NotPgDumpBound(text);
                step = Step.BoundOpen;
                return;
            case Step.BoundTo:
                step = IsWord(kind, text, "TO"u8) ? Step.BoundOpen : throw NotPgDumpBound(text);
                return;
            case Step.BoundOpen:
                step = IsPunct(kind, text, (byte)'(') ? Step.BoundValues : throw NotPgDumpBound(text);
                return;
            default:
                break;
        }

        if (IsPunct(kind, text, (byte)')') && parenDepth == 1)
        {
            boundGroupsLeft--;
            if (boundGroupsLeft > 0)
            {
                step = Step.BoundTo;
            }
            else if (boundInCreate)
            {
                step = Step.TableRest;
            }
            else
            {
                StopClassifying();
            }

            return;
        }

        var plain = kind switch
        {
            TokenKind.String => true,
            TokenKind.Word => IsNumber(text) || IsOneOf(text, BoundValueWords),
            TokenKind.Punct => text[0] is (byte)',' or (byte)'.',
            _ => false,
        };
        if (!plain)
        {
            throw NotPgDumpBound(text);
        }
    }

    /// <summary>The words of a partition bound's values, as pg_get_expr writes them.</summary>
    private static readonly byte[][] BoundValueWords =
        [.. new[] { "MINVALUE", "MAXVALUE", "NULL", "true", "false", "modulus", "remainder" }.Select(Encoding.ASCII.GetBytes)];

    private DumpFilterException NotPgDumpBound(ReadOnlySpan<byte> offending)
    {
        AddLeading(Encoding.ASCII.GetBytes(statementType));
        AddLeading("... FOR VALUES ..."u8);
        return NotPgDump(offending);
    }

    private void MarkNoRows(RelationName relation, RelationKind kind)
    {
        if (!facts.NoRows.TryGetValue(relation.Name, out var entries))
        {
            facts.NoRows[relation.Name] = entries = [];
        }

        if (entries.Contains((relation.Schema, kind)))
        {
            return;
        }

        entries.Add((relation.Schema, kind));
        if (kind != RelationKind.View)
        {
            // Rows copied into a partitioned table are routed to its partitions, to any depth.
            foreach (var (child, parent) in facts.Partitions.ToArray())
            {
                if (child.Matches(relation))
                {
                    MarkNoRows(parent, RelationKind.ForeignPartition);
                }
            }
        }
    }

    private void AddPartition(RelationName child, RelationName parent)
    {
        facts.Partitions.Add((child, parent));
        if (FindNoRows(child) is RelationKind.Foreign or RelationKind.ForeignPartition)
        {
            MarkNoRows(parent, RelationKind.ForeignPartition);
        }
    }

    /// <summary>Why rows must not go into the relation, or null; foreign before views.</summary>
    private RelationKind? FindNoRows(RelationName relation)
    {
        if (!facts.NoRows.TryGetValue(relation.Name, out var entries))
        {
            return null;
        }

        RelationKind? found = null;
        foreach (var (schema, kind) in entries)
        {
            if (relation.Matches(new RelationName(schema, relation.Name)) && (found is null || kind < found))
            {
                found = kind;
            }
        }

        return found;
    }

    /// <summary>
    /// CREATE SUBSCRIPTION name ... WITH (connect = false, ...) as pg_dump writes it; without
    /// connect = false it connects to the publisher and creates a replication slot there. ALTER
    /// SUBSCRIPTION only OWNER TO (ENABLE, REFRESH, CONNECTION connect); DROP SUBSCRIPTION not of
    /// one the dump created (it connects to drop the slot).
    /// </summary>
    private void OnSubscriptionToken(TokenKind kind, ReadOnlySpan<byte> text)
    {
        switch (step)
        {
            case Step.SubscriptionName:
                if (kind is TokenKind.Word or TokenKind.Ident)
                {
                    facts.Subscriptions.Add(NameKey(kind, text));
                    step = Step.SubscriptionScan;
                    return;
                }

                throw RefuseSubscription();
            case Step.SubscriptionScan:
                if (parenDepth == 0 && IsWord(kind, text, "WITH"u8))
                {
                    step = Step.SubscriptionWith;
                }

                return;
            case Step.SubscriptionWith:
                step = IsPunct(kind, text, (byte)'(') ? Step.SubscriptionConnect : throw RefuseSubscription();
                return;
            case Step.SubscriptionConnect:
                step = IsWord(kind, text, "connect"u8) ? Step.SubscriptionEquals : throw RefuseSubscription();
                return;
            case Step.SubscriptionEquals:
                step = IsPunct(kind, text, (byte)'=') ? Step.SubscriptionValue : throw RefuseSubscription();
                return;
            case Step.SubscriptionValue:
                if (IsWord(kind, text, "false"u8))
                {
                    StopClassifying();
                    return;
                }

                throw RefuseSubscription();
            case Step.AlterSubscriptionName:
                if (kind is TokenKind.Word or TokenKind.Ident)
                {
                    AddLeading(text);
                    step = Step.AlterSubscriptionWhat;
                    return;
                }

                throw NotPgDump(text);
            case Step.AlterSubscriptionWhat:
                if (IsWord(kind, text, "OWNER"u8))
                {
                    PassStatement();
                    return;
                }

                throw NotPgDump(text);
            case Step.DropSubscription:
                if (kind is TokenKind.Word or TokenKind.Ident && facts.Subscriptions.Contains(NameKey(kind, text)))
                {
                    throw new DumpFilterException(
                        $"line {UnitLine}: DROP SUBSCRIPTION of a subscription the dump created is not something pg_dump writes (it connects to another server); refused");
                }

                return;
            default:
                return;
        }
    }

    private DumpFilterException RefuseSubscription() => new(
        $"line {UnitLine}: CREATE SUBSCRIPTION without WITH (connect = false, ...) is not something pg_dump writes (it connects to another server); refused");

    /// <summary>Remembers a word of the statement's start, for the refusal message.</summary>
    private void AddLeading(ReadOnlySpan<byte> word)
    {
        if (leading.Length < 4 * MaxShownName)
        {
            leading.Append(leading.Length == 0 ? "" : " ").Append(Show(word[..Math.Min(word.Length, MaxShownName)]));
        }
    }

    /// <summary>The statement, as far as it was read (and <paramref name="offending"/>), is not one pg_dump writes.</summary>
    private DumpFilterException NotPgDump(ReadOnlySpan<byte> offending = default)
    {
        if (!offending.IsEmpty)
        {
            AddLeading(offending);
        }

        return new DumpFilterException($"line {UnitLine}: statement {leading} is not something pg_dump writes; refused");
    }

    /// <summary>A statement that ended before its start was seen whole (<c>CREATE USER;</c>, <c>INSERT INTO t;</c>).</summary>
    private DumpFilterException RefuseUndecided()
    {
        if (step is Step.SetEncodingValue or Step.SelectEncodingComma or Step.SelectEncodingValue or Step.SelectEncodingAfter
            or Step.SetStandardStringsValue)
        {
            return RefuseLexerSetting();
        }

        if (step is Step.SubscriptionName or Step.SubscriptionScan or Step.SubscriptionWith or Step.SubscriptionConnect
            or Step.SubscriptionEquals or Step.SubscriptionValue)
        {
            return RefuseSubscription();
        }

        if (step is Step.MatView or Step.MatViewWith or Step.MatViewWithNo)
        {
            // Its query would run now, as the restoring account (pg_dump's runs at REFRESH, after the data).
            AddLeading("MATERIALIZED VIEW ..."u8);
            AddLeading("without WITH NO DATA"u8);
            return NotPgDump();
        }

        foreach (var word in objectWords)
        {
            AddLeading(Encoding.ASCII.GetBytes(word));
        }

        return NotPgDump();
    }

    /// <summary>Dropping or rewriting needs the statement still held (a statement held past the cap was released).</summary>
    private void RequireHeld()
    {
        if (sink.Mode != Disposition.Hold)
        {
            throw new DumpFilterException(
                $"line {UnitLine}: the statement runs past {HoldCap / 1024} KiB before it can be classified; refusing to guess");
        }
    }

    /// <summary>At the end of a statement: whether its start was one pg_dump writes, whole.</summary>
    private bool Undecided => classifying && step is not (Step.Start or Step.Done or Step.Bare or Step.DatabaseName
        or Step.AfterGrantName or Step.SetValueEnd or Step.CopyScan or Step.CopyFrom or Step.RelationName or Step.RelationNameDot
        or Step.AfterRelation or Step.PartitionOf or Step.AttachPartition or Step.AlterSet or Step.DropSubscription
        or Step.TableRest or Step.AlterRest or Step.SchemaRest or Step.MatViewNoData)
        || wordCheck == WordCheck.InsertTarget;

    /// <summary>
    /// A client encoding psql lexes the dump in the way the filter does: a server encoding (see
    /// <see cref="ServerEncodings"/>), which is what pg_dump writes.
    /// </summary>
    private void CheckClientEncoding(ReadOnlySpan<byte> value)
    {
        var normalized = new StringBuilder();
        foreach (var c in value)
        {
            if (c is (>= (byte)'a' and <= (byte)'z') or (>= (byte)'0' and <= (byte)'9'))
            {
                normalized.Append((char)c);
            }
            else if (c is >= (byte)'A' and <= (byte)'Z')
            {
                normalized.Append((char)(c | 0x20));
            }
        }

        if (!ServerEncodings.Contains(normalized.ToString()))
        {
            throw RefuseLexerSetting($"client encoding {Show(value)}");
        }

        pendingClientEncoding = normalized.ToString();
    }

    /// <summary>A setting's value the filter reads for certain: a plain word or a plain '...' string, whole.</summary>
    private bool IsPlainValue(TokenKind kind) => (kind == TokenKind.Word || (kind == TokenKind.String && !tokenPrefixed)) && !tokenOverflow;

    /// <summary>
    /// client_encoding and standard_conforming_strings change how psql lexes what follows: set any
    /// other way than pg_dump sets them (a value the filter cannot be sure of, SET LOCAL, set_config,
    /// DEFAULT), the filter could read the rest of the dump differently from psql.
    /// </summary>
    private DumpFilterException RefuseLexerSetting(string? what = null)
    {
        what ??= string.Equals(settingName, "standard_conforming_strings", StringComparison.OrdinalIgnoreCase)
            ? "standard_conforming_strings set other than by SET to on or off"
            : "client_encoding set other than to a plain encoding name";
        return new DumpFilterException(
            $"line {UnitLine}: {what} is not something pg_dump writes (the filter could not know how psql reads what follows); refused");
    }

    private static bool? ParseStandardStrings(ReadOnlySpan<byte> value)
    {
        if (Is(value, "on"u8) || Is(value, "true"u8) || Is(value, "yes"u8) || Is(value, "1"u8))
        {
            return true;
        }

        if (Is(value, "off"u8) || Is(value, "false"u8) || Is(value, "no"u8) || Is(value, "0"u8))
        {
            return false;
        }

        return null;
    }

    /// <summary>A setting name part: unquoted names fold to lower case, quoted ones are taken as written.</summary>
    private static string SettingPart(TokenKind kind, ReadOnlySpan<byte> text) =>
        kind == TokenKind.Ident ? Encoding.UTF8.GetString(text) : FoldIdentifier(text);

    /// <summary>PostgreSQL folds unquoted identifiers to lower case (ASCII letters).</summary>
    private static string FoldIdentifier(ReadOnlySpan<byte> text)
    {
        Span<byte> lower = text.Length <= 256 ? stackalloc byte[text.Length] : new byte[text.Length];
        for (var k = 0; k < text.Length; k++)
        {
            var c = text[k];
            lower[k] = c is >= (byte)'A' and <= (byte)'Z' ? (byte)(c | 0x20) : c;
        }

        return Encoding.UTF8.GetString(lower);
    }

    private void ObserveName(TokenKind kind, ReadOnlySpan<byte> text)
    {
        if (tokenOverflow)
        {
            throw new DumpFilterException(
                $"line {UnitLine}: the statement names a database longer than {TokenCap} bytes");
        }

        names.Observe(kind == TokenKind.Ident ? Encoding.UTF8.GetString(text) : FoldIdentifier(text));
    }

    private void PassStatement()
    {
        if (!HoldingToEnd)
        {
            sink.Release();
        }

        StopClassifying();
    }

    /// <summary>A role name as the server reads it: unquoted folded to lower case, quoted as written.</summary>
    private static string RoleName(TokenKind kind, ReadOnlySpan<byte> text) =>
        kind == TokenKind.Word ? FoldIdentifier(text) : Encoding.UTF8.GetString(text);

    /// <summary>
    /// An ALTER DATABASE pointed at the target: passed on, or with <see cref="PostgresFilterOptions.HoldBackOwnerStatements"/>
    /// held back whole (its settings and owner are the database owner's or a superuser's to set).
    /// </summary>
    private void ReleaseOrHoldBack(int nameStart, int nameEnd)
    {
        if (heldBack is null)
        {
            sink.ReleaseReplacing(nameStart, nameEnd, targetIdentifier);
            return;
        }

        sink.ReplaceHeld(nameStart, nameEnd, targetIdentifier);
        holdBack = HoldBack.Whole;
        holdBackMatched = true;
    }

    /// <summary>The statement may be held back or records a setting the held-back ones need: held whole (up to the cap).</summary>
    private bool HoldingToEnd => holdBack != HoldBack.None || capturingSearchPath;

    // ---- statements held back for the instance's account --------------------------------------------

    private enum HoldBack : byte
    {
        None,
        Alter,
        AlterOwner,
        DefaultPrivileges,
        RoleInDatabase,
        Publication,
        SessionAuthorization,
        ResetSessionAuthorization,

        /// <summary>Held back whole, as the filter decided (ALTER DATABASE ... SET/OWNER TO, a grant under SET SESSION AUTHORIZATION).</summary>
        Whole,
        Comment,
    }

    /// <summary>
    /// Follows an ALTER or COMMENT to its end for the shapes held back: <c>ALTER ... OWNER TO role</c>
    /// and nothing else (<see cref="NextOwnerPart"/>), <c>ALTER DEFAULT PRIVILEGES FOR ROLE|USER ...</c>, <c>ALTER ROLE name IN
    /// DATABASE target SET ...</c> (a role's setting in the target) and <c>COMMENT ON EXTENSION name IS
    /// 'text'|NULL</c>. Each is catalog work only: run by the instance's account after the load, it
    /// calls no function of the dump.
    /// </summary>
    private void WatchHoldBack(TokenKind kind, ReadOnlySpan<byte> text)
    {
        var index = ++holdBackTokens; // 1: ALTER or COMMENT
        switch (holdBack)
        {
            case HoldBack.Alter when index == 2:
                holdBack = IsWord(kind, text, "DEFAULT"u8) ? HoldBack.DefaultPrivileges
                    : IsWord(kind, text, "DATABASE"u8) ? HoldBack.None
                    : IsWord(kind, text, "ROLE"u8) || IsWord(kind, text, "USER"u8) ? HoldBack.RoleInDatabase
                    : HoldBack.AlterOwner;
                // The filter lets through ALTER ROLE only as pg_dump --create writes it: name IN DATABASE (the target) SET ...
                holdBackMatched = holdBack == HoldBack.RoleInDatabase;
                return;
            case HoldBack.DefaultPrivileges:
                if (index == 6)
                {
                    actsAs = RoleName(kind, text); // FOR ROLE name: its future objects' privileges
                }

                holdBackMatched = index switch
                {
                    3 => IsWord(kind, text, "PRIVILEGES"u8),
                    4 => holdBackMatched && IsWord(kind, text, "FOR"u8),
                    5 => holdBackMatched && (IsWord(kind, text, "ROLE"u8) || IsWord(kind, text, "USER"u8)),
                    6 => holdBackMatched && kind is TokenKind.Word or TokenKind.Ident,
                    7 => holdBackMatched && !IsPunct(kind, text, (byte)','), // one role, as pg_dump writes it
                    _ => holdBackMatched,
                };
                return;
            case HoldBack.AlterOwner:
                if (index > ownerTypeEnd)
                {
                    ownerPart = NextOwnerPart(kind, text);
                    holdBackMatched = ownerPart == OwnerPart.Done;
                }

                return;
            case HoldBack.SessionAuthorization when index == 4:
                actsAs = RoleName(kind, text); // SET SESSION AUTHORIZATION name
                return;
            case HoldBack.RoleInDatabase when index == 3:
                actsAs = RoleName(kind, text); // ALTER ROLE name IN DATABASE db SET setting ...
                return;
            case HoldBack.Publication:
                holdBackMatched = index switch
                {
                    3 => kind is TokenKind.Word or TokenKind.Ident,
                    4 => holdBackMatched && IsWord(kind, text, "FOR"u8),
                    5 => holdBackMatched && IsWord(kind, text, "ALL"u8),
                    6 => holdBackMatched && IsWord(kind, text, "TABLES"u8),
                    _ => holdBackMatched,
                };
                return;
            case HoldBack.Comment:
                holdBackMatched = index switch
                {
                    2 => IsWord(kind, text, "ON"u8),
                    3 => holdBackMatched && IsWord(kind, text, "EXTENSION"u8),
                    4 => holdBackMatched && kind is TokenKind.Word or TokenKind.Ident,
                    5 => holdBackMatched && IsWord(kind, text, "IS"u8),
                    6 => holdBackMatched && (kind == TokenKind.String || IsWord(kind, text, "NULL"u8)),
                    _ => false,
                };
                return;
            default:
                return;
        }
    }

    private enum OwnerPart : byte
    {
        Type,
        Name,
        AfterName,
        OperatorName,
        Arguments,
        AfterArguments,
        UsingMethod,
        AfterUsing,
        To,
        Role,
        Done,
        Other,
    }

    /// <summary>
    /// ALTER &lt;type&gt; name[.name...] [(arguments)] [USING method] OWNER TO role, read after the
    /// object type and nothing else: an operator's name may be symbols, an operator class's or
    /// family's takes USING. A clause of another action (SECURITY DEFINER, SET x.owner TO y, a
    /// subcommand list) is Other: such a statement is no owner change and is not held back.
    /// </summary>
    private OwnerPart NextOwnerPart(TokenKind kind, ReadOnlySpan<byte> text)
    {
        if (ownerPart == OwnerPart.Type && ownerType == "OPERATOR" && (IsWord(kind, text, "CLASS"u8) || IsWord(kind, text, "FAMILY"u8)))
        {
            // The object types read OPERATOR whole before its CLASS or FAMILY (an operator's name is symbols, never a word).
            ownerType = "OPERATOR " + Encoding.ASCII.GetString(text).ToUpperInvariant();
            return OwnerPart.Type;
        }

        var name = kind is TokenKind.Word or TokenKind.Ident;
        var open = IsPunct(kind, text, (byte)'(');
        return ownerPart switch
        {
            OwnerPart.Type or OwnerPart.Name when name => OwnerPart.AfterName,
            OwnerPart.Type or OwnerPart.Name or OwnerPart.OperatorName when ownerType == "OPERATOR" && kind == TokenKind.Punct && !open
                && !IsPunct(kind, text, (byte)',') => OwnerPart.OperatorName,
            OwnerPart.OperatorName when open => OwnerPart.Arguments,
            OwnerPart.AfterName when IsPunct(kind, text, (byte)'.') => OwnerPart.Name,
            OwnerPart.AfterName when open => OwnerPart.Arguments,
            OwnerPart.Arguments => IsPunct(kind, text, (byte)')') && parenDepth == 1 ? OwnerPart.AfterArguments : OwnerPart.Arguments,
            OwnerPart.AfterName when IsWord(kind, text, "USING"u8) && ownerType is "OPERATOR CLASS" or "OPERATOR FAMILY" => OwnerPart.UsingMethod,
            OwnerPart.UsingMethod when name => OwnerPart.AfterUsing,
            OwnerPart.AfterName or OwnerPart.AfterArguments or OwnerPart.AfterUsing when IsWord(kind, text, "OWNER"u8) => OwnerPart.To,
            OwnerPart.To when IsWord(kind, text, "TO"u8) => OwnerPart.Role,
            OwnerPart.Role when name => OwnerPart.Done,
            _ => OwnerPart.Other,
        };
    }

    /// <summary>
    /// At the end of a statement still held whole: one of the held-back shapes is kept for the
    /// instance's account (and left out here); a statement setting search_path is remembered for them.
    /// </summary>
    private void KeepForInstanceAccount()
    {
        if (heldBack is null)
        {
            return;
        }

        switch (holdBack)
        {
            case HoldBack.SessionAuthorization:
                sessionAuthorization = new HeldBackStatement(sink.Pending.Span.ToArray(), clientEncoding, standardStrings, null, ActsAs: actsAs);
                sink.Discard();
                return;
            case HoldBack.ResetSessionAuthorization:
                sessionAuthorization = null;
                sink.Discard();
                return;
            case not HoldBack.None when holdBackMatched:
                heldBack.Add(new HeldBackStatement(sink.Pending.Span.ToArray(), clientEncoding, standardStrings, searchPathStatement,
                    sessionAuthorization, actsAs));
                sink.Discard();
                return;
        }

        if (capturingSearchPath)
        {
            searchPathStatement = new HeldBackStatement(sink.Pending.Span.ToArray(), clientEncoding, standardStrings, null);
        }
    }

    /// <summary>Classified; the words of a SELECT or INSERT are still checked to its end.</summary>
    private void StopClassifying()
    {
        classifying = wordCheck != WordCheck.None;
        step = Step.Done;
    }

    // ---- psql meta-commands ----------------------------------------------------------------------

    private enum MetaLineKind : byte
    {
        Connect,
        Restrict,
        Unrestrict,
    }

    /// <summary>
    /// Classifies one meta-command line (from its backslash to the end of the line). pg_dump writes
    /// <c>\connect</c> (dropped: psql is already connected to the target; the database it names is
    /// recorded) and <c>\restrict KEY</c> / <c>\unrestrict KEY</c> on lines of their own; anything
    /// else is refused.
    /// </summary>
    private MetaLineKind ClassifyMetaLine(ReadOnlySpan<byte> line)
    {
        var name = MetaCommandName(line);
        if (name.SequenceEqual("restrict"u8) || name.SequenceEqual("unrestrict"u8))
        {
            // pg_dump's key is letters and digits; psql would expand backticks or :variables in anything else.
            var rest = line[(1 + name.Length)..].TrimEnd(" \t\r\f"u8);
            var key = rest.TrimStart(" \t\f"u8);
            if (key.Length == rest.Length || key.Length == 0 || key.ContainsAnyExcept(KeyBytes))
            {
                throw new DumpFilterException(
                    $"line {UnitLine}: psql meta-command \\{Encoding.ASCII.GetString(name)} is not written the way pg_dump writes it; refused");
            }

            return name[0] == 'r' ? MetaLineKind.Restrict : MetaLineKind.Unrestrict;
        }

        if (!name.SequenceEqual("connect"u8) && !name.SequenceEqual("c"u8))
        {
            throw new DumpFilterException(
                $"line {UnitLine}: psql meta-command {ShowMetaCommand(line)} is not something pg_dump writes; refused");
        }

        List<MetaArgument>? connectArguments = null;
        var p = 0;
        while (p < line.Length)
        {
            if (p > 0)
            {
                // A second command on the \connect line (or the \\ separator): psql would run it.
                throw new DumpFilterException(
                    $"line {UnitLine}: psql meta-command {ShowMetaCommand(line[p..])} is not something pg_dump writes; refused");
            }

            p++; // the backslash
            while (p < line.Length && !IsSpace(line[p]) && line[p] != '\\')
            {
                p++;
            }

            connectArguments = [];
            while (true)
            {
                while (p < line.Length && IsSpace(line[p]))
                {
                    p++;
                }

                if (p >= line.Length || line[p] == '\\')
                {
                    break;
                }

                connectArguments.Add(ReadMetaArgument(line, ref p));
            }
        }

        var database = ConnectDatabase(connectArguments!);
        if (database is not null)
        {
            names.Observe(database);
        }

        return MetaLineKind.Connect;
    }

    private static readonly SearchValues<byte> KeyBytes =
        SearchValues.Create("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"u8);

    /// <summary>The command name after the backslash, as psql reads it: up to a blank or the next backslash.</summary>
    private static ReadOnlySpan<byte> MetaCommandName(ReadOnlySpan<byte> fromBackslash)
    {
        var rest = fromBackslash[1..];
        var length = rest.IndexOfAny(" \t\n\r\f\\"u8);
        return length < 0 ? rest : rest[..length];
    }

    /// <summary>"\name" for a message: at most a few printable characters.</summary>
    private static string ShowMetaCommand(ReadOnlySpan<byte> fromBackslash)
    {
        var name = MetaCommandName(fromBackslash);
        if (name.IsEmpty && fromBackslash.Length > 1 && fromBackslash[1] == '\\')
        {
            name = "\\"u8;
        }

        return "\\" + Show(name[..Math.Min(name.Length, MaxShownName)]);
    }

    /// <summary>Bytes for a one-line message: printable ASCII kept, anything else as '?'.</summary>
    private static string Show(ReadOnlySpan<byte> bytes)
    {
        var text = new StringBuilder(bytes.Length);
        foreach (var c in bytes)
        {
            text.Append(c is >= 0x20 and < 0x7f ? (char)c : '?');
        }

        return text.ToString();
    }

    private readonly record struct MetaArgument(string Value, bool Quoted, bool Unsupported);

    /// <summary>One argument as psql's slash-command lexer (OT_SQLIDHACK) reads it.</summary>
    private static MetaArgument ReadMetaArgument(ReadOnlySpan<byte> line, ref int p)
    {
        var bytes = new List<byte>();
        var quoted = false;
        var unsupported = false;
        while (p < line.Length && !IsSpace(line[p]) && line[p] != '\\')
        {
            var c = line[p];
            if (c == '\'')
            {
                quoted = true;
                p++;
                while (p < line.Length)
                {
                    if (line[p] == '\'')
                    {
                        if (p + 1 < line.Length && line[p + 1] == '\'')
                        {
                            bytes.Add((byte)'\'');
                            p += 2;
                            continue;
                        }

                        p++;
                        break;
                    }

                    if (line[p] == '\\' && p + 1 < line.Length)
                    {
                        bytes.Add(line[p + 1] switch
                        {
                            (byte)'n' => (byte)'\n',
                            (byte)'t' => (byte)'\t',
                            (byte)'r' => (byte)'\r',
                            (byte)'b' => (byte)'\b',
                            (byte)'f' => (byte)'\f',
                            var other => other,
                        });
                        p += 2;
                        continue;
                    }

                    bytes.Add(line[p]);
                    p++;
                }
            }
            else if (c == '"')
            {
                quoted = true;
                p++;
                while (p < line.Length)
                {
                    if (line[p] == '"')
                    {
                        if (p + 1 < line.Length && line[p + 1] == '"')
                        {
                            bytes.Add((byte)'"');
                            p += 2;
                            continue;
                        }

                        p++;
                        break;
                    }

                    bytes.Add(line[p]);
                    p++;
                }
            }
            else if (c == '`')
            {
                // Shell command substitution: we cannot know what it names.
                unsupported = true;
                p++;
                while (p < line.Length && line[p] != '`')
                {
                    p++;
                }

                p = Math.Min(p + 1, line.Length);
            }
            else
            {
                bytes.Add(c);
                p++;
            }
        }

        return new MetaArgument(Encoding.UTF8.GetString(bytes.ToArray()), quoted, unsupported);
    }

    /// <summary>The database a <c>\connect</c> names, or null if it names none (or one we cannot read).</summary>
    private static string? ConnectDatabase(List<MetaArgument> arguments)
    {
        var index = 0;
        if (arguments.Count > 0 && !arguments[0].Quoted
            && arguments[0].Value.StartsWith("-reuse-previous=", StringComparison.Ordinal))
        {
            index = 1;
        }

        if (index >= arguments.Count)
        {
            return null;
        }

        var argument = arguments[index];
        if (argument.Unsupported || (!argument.Quoted && (argument.Value.Length == 0 || argument.Value == "-")))
        {
            return null;
        }

        var value = argument.Value;
        if (value.StartsWith("postgresql://", StringComparison.Ordinal) || value.StartsWith("postgres://", StringComparison.Ordinal))
        {
            return DatabaseFromUri(value);
        }

        return value.Contains('=', StringComparison.Ordinal) ? DatabaseFromConnectionString(value) : value;
    }

    /// <summary>The dbname of a libpq key/value connection string.</summary>
    private static string? DatabaseFromConnectionString(string text)
    {
        string? database = null;
        var p = 0;
        while (true)
        {
            while (p < text.Length && char.IsWhiteSpace(text[p]))
            {
                p++;
            }

            if (p >= text.Length)
            {
                return database;
            }

            var keyStart = p;
            while (p < text.Length && text[p] != '=' && !char.IsWhiteSpace(text[p]))
            {
                p++;
            }

            var key = text[keyStart..p];
            while (p < text.Length && char.IsWhiteSpace(text[p]))
            {
                p++;
            }

            if (p >= text.Length || text[p] != '=')
            {
                return database;
            }

            p++;
            while (p < text.Length && char.IsWhiteSpace(text[p]))
            {
                p++;
            }

            var value = new StringBuilder();
            if (p < text.Length && text[p] == '\'')
            {
                p++;
                while (p < text.Length && text[p] != '\'')
                {
                    if (text[p] == '\\' && p + 1 < text.Length)
                    {
                        p++;
                    }

                    value.Append(text[p]);
                    p++;
                }

                p++;
            }
            else
            {
                while (p < text.Length && !char.IsWhiteSpace(text[p]))
                {
                    if (text[p] == '\\' && p + 1 < text.Length)
                    {
                        p++;
                    }

                    value.Append(text[p]);
                    p++;
                }
            }

            if (key == "dbname")
            {
                database = value.ToString();
            }
        }
    }

    /// <summary>The database of a <c>postgresql://host/dbname?...</c> URI.</summary>
    private static string? DatabaseFromUri(string uri)
    {
        var rest = uri[(uri.IndexOf("://", StringComparison.Ordinal) + 3)..];
        string? database = null;
        var query = rest.IndexOf('?', StringComparison.Ordinal);
        var path = query < 0 ? rest : rest[..query];
        var slash = path.IndexOf('/', StringComparison.Ordinal);
        if (slash >= 0 && slash + 1 < path.Length)
        {
            database = Uri.UnescapeDataString(path[(slash + 1)..]);
        }

        if (query >= 0)
        {
            foreach (var pair in rest[(query + 1)..].Split('&'))
            {
                if (pair.StartsWith("dbname=", StringComparison.Ordinal))
                {
                    database = Uri.UnescapeDataString(pair["dbname=".Length..]);
                }
            }
        }

        return database;
    }

    // ---- tables ------------------------------------------------------------------------------------

    private static bool[] BuildTable(bool digits, bool dollar)
    {
        var table = new bool[256];
        for (var c = 0; c < 256; c++)
        {
            table[c] = c is (>= 'a' and <= 'z') or (>= 'A' and <= 'Z') or '_' or >= 0x80
                || (digits && c is >= '0' and <= '9')
                || (dollar && c == '$');
        }

        return table;
    }
}
