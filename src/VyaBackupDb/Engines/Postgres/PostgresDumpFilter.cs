using System.Buffers;
using System.Text;

namespace VyaBackupDb.Engines.Postgres;

/// <summary>
/// Filters a plain pg_dump file on its way into <c>psql</c> (already connected to the target, with
/// ON_ERROR_STOP and --single-transaction) so that only the target database is touched:
/// <c>CREATE/DROP DATABASE</c> and <c>\connect</c> are dropped; the database name of
/// <c>ALTER DATABASE</c>, <c>ALTER ROLE ... IN DATABASE</c>, <c>COMMENT ON DATABASE</c>,
/// <c>GRANT/REVOKE ... ON DATABASE</c> and <c>SECURITY LABEL ... ON DATABASE</c> is replaced by the
/// target; <c>SET name = ...</c> and
/// <c>SELECT pg_catalog.set_config('name', ...)</c> of settings the target server does not know are
/// dropped. Every other byte passes through unchanged, COPY data included.
/// </summary>
/// <remarks>
/// Statements are split the way psql splits them: at <c>;</c> outside quotes, comments, dollar
/// quotes, parentheses and <c>BEGIN ... END</c> bodies of SQL-standard functions; a backslash
/// outside quotes starts a meta-command that runs to the end of the line; after
/// <c>COPY ... FROM stdin;</c> the lines up to <c>\.</c> are data. <c>standard_conforming_strings</c>
/// is tracked from <c>SET</c> statements. The filter streams and holds at most 64 KiB of a statement's
/// beginning.
/// </remarks>
public sealed class PostgresDumpFilter
{
    private const int HoldCap = 64 * 1024;
    private const int TokenCap = 1024;
    private const int MaxDollarTag = 256;
    private const int GrantTokenLimit = 64;
    private const int CopyTokenLimit = 8192;

    private static readonly SearchValues<byte> Spaces = SearchValues.Create(" \t\n\r\v\f"u8);
    private static readonly SearchValues<byte> CodeStops = SearchValues.Create("'\"$-/;()\\"u8);
    private static readonly bool[] IdentStart = BuildTable(digits: false, dollar: false);
    private static readonly bool[] IdentCont = BuildTable(digits: true, dollar: true);
    private static readonly bool[] DollarTagCont = BuildTable(digits: true, dollar: false);

    private readonly byte[] targetIdentifier;
    private readonly Func<string, bool> isKnownSetting;
    private readonly DatabaseNames names = new();
    private readonly FilterSink sink = new();
    private readonly ByteBuffer token = new(64);
    private readonly ByteBuffer dollarTag = new(16);
    private readonly byte[] psqlIdentifiers = new byte[4];
    private bool started;

    // Scanner position; buf/segment/bufferBase describe the chunk being scanned.
    private State state;
    private byte[] buf = [];
    private int segment;
    private long bufferBase;
    private long consumedTotal;
    private bool needMore;
    private long unitStart;
    private bool standardStrings = true;
    private int commentDepth;
    private int parenDepth;
    private int beginDepth;
    private long dollarCloseEnd = -1;
    private bool copyFromStdin;
    private bool copyLineStart;
    private bool copyRestComment;

    // psql's own heuristic for CREATE FUNCTION ... BEGIN ATOMIC ... END bodies.
    private bool psqlTracking;
    private int psqlIdentifierCount;

    // Classification of the current statement.
    private bool classifying;
    private Step step = Step.Done;
    private int tokenCount;
    private TokenKind tokenKind;
    private long tokenStart;
    private bool tokenOverflow;
    private bool rewritingGrant;
    private string settingName = string.Empty;
    private bool? pendingStandardStrings;

    /// <param name="targetDatabase">The database the dump is restored into.</param>
    /// <param name="isKnownSetting">Returns true if the target server knows a run-time parameter name
    /// (e.g. "statement_timeout"); false for e.g. "transaction_timeout" on PostgreSQL 15. It gets the
    /// name as the server would see it: unquoted names folded to lower case, quoted ones as written,
    /// custom names with their dot ("plpgsql.variable_conflict"). Called once per SET/set_config.</param>
    public PostgresDumpFilter(string targetDatabase, Func<string, bool> isKnownSetting)
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
        DatabaseName,
        AfterAlter,
        AlterRoleName,
        AlterRoleIn,
        AlterRoleInWhat,
        RewriteName,
        AfterGrantName,
        CommentOn,
        CommentOnWhat,
        GrantScan,
        GrantOnWhat,
        SecurityLabel,
        SecurityLabelAfter,
        SecurityLabelProvider,
        SecurityLabelAfterProvider,
        SecurityLabelOnWhat,
        SetStart,
        SetName,
        SetAfterName,
        SetDot,
        SetStandardStringsValue,
        ResetName,
        Select,
        SelectDot,
        SelectSetConfig,
        SelectParen,
        SelectName,
        CopyScan,
        CopyFrom,
        Done,
    }

    /// <summary>First database named by DROP/CREATE DATABASE, \connect or ALTER DATABASE in the dump, or null.</summary>
    public string? SourceDatabase => names.Source;

    /// <summary>Statements and meta-commands dropped (for the restore summary / tests).</summary>
    public int DroppedStatements { get; private set; }

    /// <summary>Copies <paramref name="input"/> to <paramref name="output"/> through the filter. One dump per instance.</summary>
    /// <exception cref="DumpFilterException">The dump holds more than one database, or a construct the filter will not guess about.</exception>
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
                State.Code => classifying || psqlTracking ? CodeWatching(i, end, final) : Code(i, end, final),
                State.Quote or State.EscapeQuote or State.DoubleQuote => Quoted(i, end, final),
                State.Dollar => DollarBody(i, end, final),
                State.LineComment or State.GapLineComment => LineComment(i, end),
                State.BlockComment or State.GapBlockComment => BlockComment(i, end, final),
                State.Meta => MetaLine(i, end),
                State.CopyLineRest => CopyLineRest(i, end, final),
                State.CopyData => CopyData(i, end, final),
                _ => throw new InvalidOperationException("unknown scanner state"),
            };
        }

        if (final)
        {
            EndOfInput(end);
            i = end;
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

    private static bool IsSpace(int c) => c is ' ' or '\t' or '\n' or '\r' or '\v' or '\f';

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
                $"the psql meta-command at byte {unitStart} of the dump is longer than {HoldCap / 1024} KiB; refusing to guess");
        }

        switch (step)
        {
            case Step.Start or Step.Done or Step.GrantScan or Step.SetStart or Step.SetName or Step.SetAfterName
                or Step.SetDot or Step.Select or Step.SelectDot or Step.SelectSetConfig or Step.SelectParen
                or Step.SelectName:
                // Not a database statement: let it through.
                sink.Release();
                StopClassifying();
                tokenKind = TokenKind.None;
                return;
            default:
                throw new DumpFilterException(
                    $"the statement at byte {unitStart} of the dump starts like a database statement " +
                    $"but runs past {HoldCap / 1024} KiB before naming the database; refusing to guess");
        }
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
            case (byte)'-':
                if (end - i < 2 && !final)
                {
                    return NeedMore(i);
                }

                if (At(i + 1, end) == '-')
                {
                    state = State.GapLineComment;
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
                state = State.Meta;
                return i + 1;
            default:
                break;
        }

        return StartStatement(i);
    }

    private int MetaLine(int i, int end)
    {
        var k = buf.AsSpan(i, end - i).IndexOf((byte)'\n');
        if (k < 0)
        {
            return end;
        }

        i += k;
        Commit(i);
        FinishMeta();
        state = State.Gap;
        return i;
    }

    private void FinishMeta()
    {
        if (ShouldDropMetaLine(sink.Pending.Span))
        {
            sink.Discard();
            DroppedStatements++;
        }
        else
        {
            sink.Release();
        }

        sink.EndUnit();
    }

    // ---- inside a statement ------------------------------------------------------------------

    private int StartStatement(int i)
    {
        Commit(i);
        sink.BeginHold();
        unitStart = bufferBase + i;
        state = State.Code;
        classifying = true;
        step = Step.Start;
        tokenCount = 0;
        tokenKind = TokenKind.None;
        rewritingGrant = false;
        pendingStandardStrings = null;
        copyFromStdin = false;
        parenDepth = 0;
        beginDepth = 0;
        psqlTracking = true;
        psqlIdentifierCount = 0;
        Array.Clear(psqlIdentifiers);
        return i;
    }

    /// <param name="after">End of the statement (after its <c>;</c>, or at the backslash of a meta-command).</param>
    /// <param name="semicolon">Whether a <c>;</c> ended it (psql sends it) rather than a meta-command.</param>
    private int EndStatement(int after, bool semicolon)
    {
        Commit(after);
        var dropped = sink.Mode == Disposition.Drop;
        if (sink.Mode == Disposition.Hold)
        {
            sink.Release();
        }

        sink.EndUnit();
        if (!dropped && pendingStandardStrings is { } standard)
        {
            standardStrings = standard;
        }

        if (copyFromStdin && !dropped)
        {
            if (!semicolon)
            {
                throw new DumpFilterException(
                    $"the COPY ... FROM stdin at byte {unitStart} of the dump is ended by a psql meta-command; not supported");
            }

            state = State.CopyLineRest;
            copyRestComment = false;
        }
        else
        {
            state = State.Gap;
        }

        StopClassifying();
        psqlTracking = false;
        tokenKind = TokenKind.None;
        pendingStandardStrings = null;
        copyFromStdin = false;
        parenDepth = 0;
        beginDepth = 0;
        return after;
    }

    private void EndOfInput(int end)
    {
        if (state == State.Code && tokenKind == TokenKind.Word)
        {
            EmitToken(end);
        }

        Commit(end);
        if (state == State.Meta)
        {
            FinishMeta();
        }
        else if (sink.Mode == Disposition.Hold)
        {
            sink.Release();
        }

        sink.EndUnit();
    }

    /// <summary>Whether the <c>'</c> at <paramref name="i"/> starts an escape string (E'...').</summary>
    private bool IsEscapeStringStart(int i) =>
        !standardStrings || ((buf[i - 1] | 0x20) == 'e' && !IdentCont[buf[i - 2]]);

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
                    return EndStatement(i + 1, semicolon: true);
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
                state = IsEscapeStringStart(i) ? State.EscapeQuote : State.Quote;
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
            case (byte)'\\':
                // A meta-command inside a statement: psql runs it at once. Treat what came before as
                // a statement of its own and the meta-command as a unit of its own.
                return EndStatement(i, semicolon: false);
            default:
                return i + 1;
        }
    }

    /// <summary>At a <c>$</c> in code: starts a dollar quote, or returns the next position.</summary>
    private int DollarStart(int i, int end, bool final)
    {
        if (IdentCont[buf[i - 1]] && bufferBase + i != dollarCloseEnd)
        {
            return i + 1; // inside an identifier or a parameter ($1)
        }

        var j = i + 1;
        if (j >= end)
        {
            return final ? i + 1 : NeedMore(i);
        }

        if (buf[j] == '$')
        {
            dollarTag.Clear();
            state = State.Dollar;
            return j + 1;
        }

        if (!IdentStart[buf[j]])
        {
            return i + 1;
        }

        var limit = i + 2 + MaxDollarTag;
        j++;
        while (j < end && j < limit && DollarTagCont[buf[j]])
        {
            j++;
        }

        if (j >= limit)
        {
            throw new DumpFilterException(
                $"a dollar-quote tag at byte {bufferBase + i} of the dump is longer than {MaxDollarTag} bytes; not supported");
        }

        if (j >= end)
        {
            return final ? i + 1 : NeedMore(i);
        }

        if (buf[j] != '$')
        {
            return i + 1;
        }

        dollarTag.Clear();
        dollarTag.Append(buf.AsSpan(i + 1, j - i - 1));
        state = State.Dollar;
        return j + 1;
    }

    private int DollarBody(int i, int end, bool final)
    {
        var k = buf.AsSpan(i, end - i).IndexOf((byte)'$');
        if (k < 0)
        {
            return end;
        }

        i += k;
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

    /// <summary>Slow path: code of a statement being classified, byte by byte, building tokens.</summary>
    private int CodeWatching(int i, int end, bool final)
    {
        while (i < end)
        {
            if (!classifying && !psqlTracking)
            {
                return i;
            }

            var b = buf[i];
            if (IdentCont[b] && (tokenKind == TokenKind.Word || b != '$'))
            {
                if (tokenKind != TokenKind.Word)
                {
                    StartToken(TokenKind.Word, i);
                }

                AppendToken(b);
                i++;
                continue;
            }

            if (b == '\'' && tokenKind == TokenKind.Word && token.Length == 1 && (token.Span[0] | 0x20) == 'e')
            {
                // E'...': the E belongs to the string.
                StartToken(TokenKind.String, i - 1);
                state = State.EscapeQuote;
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
                    if (parenDepth == 0 && beginDepth == 0)
                    {
                        return EndStatement(i + 1, semicolon: true);
                    }

                    break;
                case (byte)'\'':
                    StartToken(TokenKind.String, i);
                    state = standardStrings ? State.Quote : State.EscapeQuote;
                    return i + 1;
                case (byte)'"':
                    StartToken(TokenKind.Ident, i);
                    state = State.DoubleQuote;
                    return i + 1;
                case (byte)'$':
                    {
                        var next = DollarStart(i, end, final);
                        if (needMore || state == State.Dollar)
                        {
                            return next;
                        }

                        StartToken(TokenKind.Word, i); // a parameter such as $1
                        AppendToken(b);
                        return next;
                    }

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
                case (byte)'\\':
                    return EndStatement(i, semicolon: false);
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

    private int Quoted(int i, int end, bool final)
    {
        var quote = state == State.DoubleQuote ? (byte)'"' : (byte)'\'';
        var span = buf.AsSpan(i, end - i);
        var k = state == State.EscapeQuote ? span.IndexOfAny(quote, (byte)'\\') : span.IndexOf(quote);
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
        var k = buf.AsSpan(i, end - i).IndexOfAny((byte)'\n', (byte)'\r');
        if (k < 0)
        {
            return end;
        }

        state = state == State.GapLineComment ? State.Gap : State.Code;
        return i + k;
    }

    /// <summary>Nested <c>/* */</c> comments, as in PostgreSQL.</summary>
    private int BlockComment(int i, int end, bool final)
    {
        while (true)
        {
            var k = buf.AsSpan(i, end - i).IndexOfAny((byte)'*', (byte)'/');
            if (k < 0)
            {
                return end;
            }

            i += k;
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

    private int CopyLineRest(int i, int end, bool final)
    {
        while (i < end)
        {
            if (copyRestComment)
            {
                var k = buf.AsSpan(i, end - i).IndexOf((byte)'\n');
                if (k < 0)
                {
                    return end;
                }

                i += k;
                copyRestComment = false;
                continue;
            }

            var b = buf[i];
            if (b is (byte)' ' or (byte)'\t' or (byte)'\r')
            {
                i++;
                continue;
            }

            if (b == '\n')
            {
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

            throw new DumpFilterException(
                $"text follows 'COPY ... FROM stdin;' on its line at byte {bufferBase + i} of the dump; not supported");
        }

        return i;
    }

    private int CopyData(int i, int end, bool final)
    {
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
                            return i + terminator;
                        }
                    }
                }

                copyLineStart = false;
            }

            var k = buf.AsSpan(i, end - i).IndexOf((byte)'\n');
            if (k < 0)
            {
                return end;
            }

            i += k + 1;
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
        if (psqlTracking && kind == TokenKind.Word && IdentStart[text[0]])
        {
            PsqlIdentifier(text);
        }

        if (classifying)
        {
            OnToken(kind, text, tokenStart - unitStart, bufferBase + end - unitStart);
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
        var ids = psqlIdentifiers;
        var function = ids[0] == 'c'
            && (ids[1] is (byte)'f' or (byte)'p'
                || (ids[1] == 'o' && ids[2] == 'r' && ids[3] is (byte)'f' or (byte)'p'));
        if (function)
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

    private static bool Is(ReadOnlySpan<byte> text, ReadOnlySpan<byte> keyword) => Ascii.EqualsIgnoreCase(text, keyword);

    private static bool IsWord(TokenKind kind, ReadOnlySpan<byte> text, ReadOnlySpan<byte> keyword) =>
        kind == TokenKind.Word && Is(text, keyword);

    private static bool IsPunct(TokenKind kind, ReadOnlySpan<byte> text, byte value) =>
        kind == TokenKind.Punct && text[0] == value;

    private void OnToken(TokenKind kind, ReadOnlySpan<byte> text, long start, long end)
    {
        tokenCount++;
        switch (step)
        {
            case Step.Start:
                OnFirstToken(kind, text);
                return;
            case Step.AfterDrop:
            case Step.AfterCreate:
                if (IsWord(kind, text, "DATABASE"u8))
                {
                    sink.Discard();
                    DroppedStatements++;
                    step = Step.DatabaseName;
                    return;
                }

                PassStatement();
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
                    step = Step.RewriteName;
                    return;
                }

                if (IsWord(kind, text, "ROLE"u8) || IsWord(kind, text, "USER"u8))
                {
                    // ALTER ROLE name IN DATABASE db SET ...: pg_dump --create writes it for
                    // per-database role settings.
                    step = Step.AlterRoleName;
                    return;
                }

                PassStatement();
                return;
            case Step.AlterRoleName:
                if (kind is TokenKind.Word or TokenKind.Ident)
                {
                    step = Step.AlterRoleIn;
                    return;
                }

                PassStatement();
                return;
            case Step.AlterRoleIn:
                Expect(kind, text, "IN"u8, Step.AlterRoleInWhat);
                return;
            case Step.AlterRoleInWhat:
                Expect(kind, text, "DATABASE"u8, Step.RewriteName);
                return;
            case Step.RewriteName:
                if (kind is TokenKind.Word or TokenKind.Ident)
                {
                    ObserveName(kind, text);
                    sink.ReleaseReplacing(checked((int)start), checked((int)end), targetIdentifier);
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
            case Step.AfterGrantName:
                if (IsPunct(kind, text, (byte)','))
                {
                    throw new DumpFilterException(
                        $"the GRANT/REVOKE at byte {unitStart} of the dump names several databases; not supported");
                }

                StopClassifying();
                return;
            case Step.CommentOn:
                Expect(kind, text, "ON"u8, Step.CommentOnWhat);
                return;
            case Step.CommentOnWhat:
            case Step.GrantOnWhat:
            case Step.SecurityLabelOnWhat:
                Expect(kind, text, "DATABASE"u8, Step.RewriteName);
                return;
            case Step.GrantScan:
                if (parenDepth == 0)
                {
                    if (IsWord(kind, text, "ON"u8))
                    {
                        rewritingGrant = true;
                        step = Step.GrantOnWhat;
                        return;
                    }

                    if (IsWord(kind, text, "TO"u8) || IsWord(kind, text, "FROM"u8) || tokenCount > GrantTokenLimit)
                    {
                        PassStatement();
                    }
                }

                return;
            case Step.SecurityLabel:
                Expect(kind, text, "LABEL"u8, Step.SecurityLabelAfter);
                return;
            case Step.SecurityLabelAfter:
                if (IsWord(kind, text, "FOR"u8))
                {
                    step = Step.SecurityLabelProvider;
                    return;
                }

                Expect(kind, text, "ON"u8, Step.SecurityLabelOnWhat);
                return;
            case Step.SecurityLabelProvider:
                if (kind is TokenKind.Word or TokenKind.Ident or TokenKind.String)
                {
                    step = Step.SecurityLabelAfterProvider;
                    return;
                }

                PassStatement();
                return;
            case Step.SecurityLabelAfterProvider:
                Expect(kind, text, "ON"u8, Step.SecurityLabelOnWhat);
                return;
            case Step.SetStart:
                if (IsWord(kind, text, "SESSION"u8) || IsWord(kind, text, "LOCAL"u8))
                {
                    step = Step.SetName;
                    return;
                }

                goto case Step.SetName;
            case Step.SetName:
                if (kind is TokenKind.Word or TokenKind.Ident && !tokenOverflow)
                {
                    settingName = SettingPart(kind, text);
                    step = Step.SetAfterName;
                    return;
                }

                PassStatement();
                return;
            case Step.SetDot:
                if (kind is TokenKind.Word or TokenKind.Ident && !tokenOverflow)
                {
                    settingName = settingName + "." + SettingPart(kind, text);
                    step = Step.SetAfterName;
                    return;
                }

                PassStatement();
                return;
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

                PassStatement();
                return;
            case Step.SetStandardStringsValue:
                if (kind is TokenKind.Word or TokenKind.String)
                {
                    pendingStandardStrings = ParseStandardStrings(text);
                }

                StopClassifying();
                return;
            case Step.ResetName:
                if (IsWord(kind, text, "standard_conforming_strings"u8) || IsWord(kind, text, "ALL"u8))
                {
                    pendingStandardStrings = true;
                }

                StopClassifying();
                return;
            case Step.Select:
                if (IsWord(kind, text, "pg_catalog"u8))
                {
                    step = Step.SelectDot;
                    return;
                }

                Expect(kind, text, "set_config"u8, Step.SelectParen);
                return;
            case Step.SelectDot:
                if (IsPunct(kind, text, (byte)'.'))
                {
                    step = Step.SelectSetConfig;
                    return;
                }

                PassStatement();
                return;
            case Step.SelectSetConfig:
                Expect(kind, text, "set_config"u8, Step.SelectParen);
                return;
            case Step.SelectParen:
                if (IsPunct(kind, text, (byte)'('))
                {
                    step = Step.SelectName;
                    return;
                }

                PassStatement();
                return;
            case Step.SelectName:
                if (kind == TokenKind.String && !tokenOverflow)
                {
                    settingName = Encoding.UTF8.GetString(text);
                    DecideSetting(standardStringsValueFollows: false);
                    return;
                }

                PassStatement();
                return;
            case Step.CopyScan:
            case Step.CopyFrom:
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
                        $"the COPY statement at byte {unitStart} of the dump is too long to classify; not supported");
                }

                return;
            default:
                return;
        }
    }

    private void OnFirstToken(TokenKind kind, ReadOnlySpan<byte> text)
    {
        if (kind != TokenKind.Word)
        {
            PassStatement();
            return;
        }

        if (Is(text, "DROP"u8))
        {
            step = Step.AfterDrop;
        }
        else if (Is(text, "CREATE"u8))
        {
            step = Step.AfterCreate;
        }
        else if (Is(text, "ALTER"u8))
        {
            step = Step.AfterAlter;
        }
        else if (Is(text, "COMMENT"u8))
        {
            step = Step.CommentOn;
        }
        else if (Is(text, "GRANT"u8) || Is(text, "REVOKE"u8))
        {
            step = Step.GrantScan;
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
            step = Step.Select;
        }
        else if (Is(text, "RESET"u8))
        {
            sink.Release();
            step = Step.ResetName;
        }
        else if (Is(text, "COPY"u8))
        {
            sink.Release();
            step = Step.CopyScan;
        }
        else
        {
            PassStatement();
        }
    }

    private void Expect(TokenKind kind, ReadOnlySpan<byte> text, ReadOnlySpan<byte> keyword, Step next)
    {
        if (IsWord(kind, text, keyword))
        {
            step = next;
        }
        else
        {
            PassStatement();
        }
    }

    private void DecideSetting(bool standardStringsValueFollows)
    {
        if (!isKnownSetting(settingName))
        {
            sink.Discard();
            DroppedStatements++;
            StopClassifying();
            return;
        }

        if (standardStringsValueFollows
            && string.Equals(settingName, "standard_conforming_strings", StringComparison.OrdinalIgnoreCase))
        {
            sink.Release();
            step = Step.SetStandardStringsValue;
            return;
        }

        PassStatement();
    }

    private static bool? ParseStandardStrings(ReadOnlySpan<byte> value)
    {
        if (Is(value, "on"u8) || Is(value, "true"u8) || Is(value, "yes"u8) || Is(value, "1"u8) || Is(value, "DEFAULT"u8))
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
                $"the statement at byte {unitStart} of the dump names a database longer than {TokenCap} bytes");
        }

        names.Observe(kind == TokenKind.Ident ? Encoding.UTF8.GetString(text) : FoldIdentifier(text));
    }

    private void PassStatement()
    {
        sink.Release();
        StopClassifying();
    }

    private void StopClassifying()
    {
        classifying = false;
        step = Step.Done;
    }

    // ---- psql meta-commands ----------------------------------------------------------------------

    /// <summary>
    /// Decides about one meta-command line (from its backslash to the end of the line): every
    /// <c>\connect</c>/<c>\c</c> is dropped (psql is already connected to the target) and the database it
    /// names is recorded; anything else passes.
    /// </summary>
    private bool ShouldDropMetaLine(ReadOnlySpan<byte> line)
    {
        var commands = 0;
        var connect = false;
        var separator = false;
        List<MetaArgument>? connectArguments = null;
        var p = 0;
        while (p < line.Length)
        {
            p++; // the backslash
            if (p < line.Length && line[p] == '\\')
            {
                separator = true;
                break;
            }

            var nameStart = p;
            while (p < line.Length && !IsSpace(line[p]) && line[p] != '\\')
            {
                p++;
            }

            var name = line[nameStart..p];
            var isConnect = name.SequenceEqual("c"u8) || name.SequenceEqual("connect"u8);
            commands++;
            connect |= isConnect;
            var arguments = isConnect ? new List<MetaArgument>() : null;
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

                var argument = ReadMetaArgument(line, ref p);
                arguments?.Add(argument);
            }

            if (isConnect)
            {
                connectArguments = arguments;
            }
        }

        if (separator)
        {
            throw new DumpFilterException(
                $"the psql line at byte {unitStart} of the dump uses the \\\\ separator; not supported");
        }

        if (!connect)
        {
            return false;
        }

        if (commands > 1)
        {
            throw new DumpFilterException(
                $"the psql line at byte {unitStart} of the dump holds \\connect and another meta-command; not supported");
        }

        var database = ConnectDatabase(connectArguments!);
        if (database is not null)
        {
            names.Observe(database);
        }

        return true;
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
