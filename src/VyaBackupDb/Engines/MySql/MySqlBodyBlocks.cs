using System.Text;

namespace VyaBackupDb.Engines.MySql;

/// <summary>
/// Where the server ends a CREATE TRIGGER / PROCEDURE / FUNCTION / EVENT / VIEW statement that the
/// client sends whole (under a DELIMITER other than ';'): at the first ';' outside every block of its
/// body. The server runs what follows such a ';' in the same send as statements of their own, which
/// the dump filter never looked at: such a ';' is refused. Blocks are followed as the server's grammar
/// opens them: BEGIN, IF, CASE, LOOP, REPEAT, WHILE, FOR at the start of a statement (after a label
/// too), a CASE expression anywhere; END [IF|CASE|LOOP|REPEAT|WHILE|FOR] [label] closes them. An
/// opener is only counted where nothing else can stand, so a word like <c>begin</c> used as a name
/// never keeps a ';' inside a block the server has closed; a count that comes out lower than the
/// server's refuses a real dump, never passes a planted one.
/// </summary>
internal sealed class MySqlBodyBlocks
{
    private const int MaxDepth = 256;

    /// <summary>Open blocks: B BEGIN, I IF, C CASE statement, c CASE expression, L LOOP, R REPEAT,
    /// W/F WHILE/FOR before their DO, w/f after it.</summary>
    private readonly Stack<char> blocks = new();
    private readonly bool routine;
    private readonly bool function;
    private readonly bool trigger;
    private readonly bool eventObject;
    private Header header;
    private int parenDepth;
    private int headerParens;
    private bool statementStart;
    private string? pendingWord;
    private bool pendingEnd;
    private bool midEnd;
    private bool labelMayFollow;
    private int skipWords;
    private Handler handler;
    private int triggerRow;
    private string? problem;

    /// <param name="objectWord">TRIGGER, PROCEDURE, FUNCTION, EVENT or VIEW.</param>
    public MySqlBodyBlocks(ReadOnlySpan<byte> objectWord)
    {
        routine = Is(objectWord, "PROCEDURE"u8) || Is(objectWord, "FUNCTION"u8);
        function = Is(objectWord, "FUNCTION"u8);
        trigger = Is(objectWord, "TRIGGER"u8);
        eventObject = Is(objectWord, "EVENT"u8);
        // A view has no body: any ';' in it ends it.
        header = routine || trigger || eventObject ? Header.Name : Header.Done;
    }

    private enum Header
    {
        Name,
        Parameters,
        ReturnsType,
        TypeOptions,
        Characteristics,
        TriggerOrder,
        Done,
    }

    private enum Handler
    {
        None,
        Declare,
        For,
        Item,
        Sqlstate,
        ItemDone,
    }

    /// <summary>The kind of token fed: a bare word, a quoted name, a literal (string, number) or punctuation.</summary>
    public enum Token
    {
        Word,
        Name,
        Literal,
        Punct,
    }

    /// <summary>
    /// Takes the statement's next token. Returns what is wrong (for a refusal), or null: a ';' at which the
    /// server would end the statement, or an END that closes no block where the server reads one.
    /// </summary>
    public string? Accept(Token kind, ReadOnlySpan<byte> text)
    {
        if (!Take(kind, text))
        {
            problem ??= "a ';' at which the server ends the CREATE statement before the delimiter the client sends it up to";
        }

        return problem;
    }

    /// <summary>At the end of the statement: the last word (an END) closes its block; every block must be closed.</summary>
    public string? Finish()
    {
        if (midEnd && blocks.TryPeek(out var open) && open == 'c')
        {
            blocks.Pop(); // a CASE expression's END, last
        }

        if (pendingWord is not null)
        {
            StartStatement(pendingWord); // the body's last word: its END
            pendingWord = null;
        }

        if (pendingEnd)
        {
            pendingEnd = false;
            Pop('B', "END"u8);
        }

        if (blocks.Count > 0)
        {
            problem ??= "a routine body whose blocks are not all closed where the statement ends";
        }

        return problem;
    }

    /// <summary>False when the token is a ';' at which the server would end the statement.</summary>
    private bool Take(Token kind, ReadOnlySpan<byte> text)
    {
        if (header != Header.Done)
        {
            return HeaderToken(kind, text);
        }

        if (midEnd)
        {
            midEnd = false;
            if (blocks.TryPeek(out var open) && ((open == 'R' && kind == Token.Word && Is(text, "REPEAT"u8)) || open == 'c'))
            {
                blocks.Pop();
                if (open == 'R')
                {
                    labelMayFollow = true;
                    return true;
                }
            }
        }

        if (pendingEnd)
        {
            pendingEnd = false;
            if (kind == Token.Word && KindOf(text) is { } closed)
            {
                Pop(closed, text);
                labelMayFollow = true;
                return true;
            }

            Pop('B', "END"u8);
            labelMayFollow = true;
        }

        if (labelMayFollow)
        {
            labelMayFollow = false;
            if (kind is Token.Word or Token.Name)
            {
                return true; // END label
            }
        }

        if (pendingWord is not null)
        {
            var word = pendingWord;
            pendingWord = null;
            if (kind == Token.Punct && text[0] == ':')
            {
                statementStart = true; // a label: the statement starts after it
                return true;
            }

            StartStatement(word);
            if (pendingEnd)
            {
                return Take(kind, text); // this token is the one after END
            }
        }

        if (skipWords > 0 && kind == Token.Word && (Is(text, "NOT"u8) || Is(text, "ATOMIC"u8)))
        {
            skipWords--;
            return true; // BEGIN NOT ATOMIC
        }

        skipWords = 0;
        if (kind == Token.Punct)
        {
            switch (text[0])
            {
                case (byte)'(':
                    parenDepth++;
                    statementStart = false;
                    return true;
                case (byte)')':
                    parenDepth = Math.Max(0, parenDepth - 1);
                    return true;
                case (byte)';' when parenDepth == 0:
                    if (blocks.Count == 0 || blocks.Peek() == 'c')
                    {
                        return false;
                    }

                    statementStart = true;
                    handler = Handler.None;
                    return true;
                default:
                    break;
            }
        }

        if (handler is not (Handler.None or Handler.Declare) && parenDepth == 0 && HandlerToken(kind, text))
        {
            return true;
        }

        if (statementStart && parenDepth == 0 && kind is Token.Word or Token.Name)
        {
            // Decided at the next token: a label (word ':') or the statement's first word.
            pendingWord = kind == Token.Word ? Encoding.ASCII.GetString(text) : "";
            statementStart = false;
            return true;
        }

        statementStart = false;
        if (kind != Token.Word || parenDepth > 0)
        {
            return true;
        }

        if (Is(text, "CASE"u8))
        {
            Push('c');
        }
        else if (Is(text, "END"u8))
        {
            // A CASE expression's END, or REPEAT's (UNTIL condition END REPEAT). Any other END here is
            // a name (`end` is not reserved): the server's other blocks end only at a statement's start.
            midEnd = true;
        }
        else if ((Is(text, "THEN"u8) || Is(text, "ELSE"u8)) && blocks.TryPeek(out var top) && top is 'I' or 'C')
        {
            statementStart = true;
        }
        else if (Is(text, "DO"u8) && blocks.TryPeek(out var loop) && loop is 'W' or 'F')
        {
            // The DO after WHILE's or FOR's condition, once: `do` is not reserved (an alias may be named so).
            blocks.Pop();
            blocks.Push(loop == 'W' ? 'w' : 'f');
            statementStart = true;
        }
        else if (handler == Handler.Declare && Is(text, "HANDLER"u8))
        {
            handler = Handler.For;
        }

        return true;
    }

    /// <summary>The first word of a statement inside the body (or of the body itself).</summary>
    private void StartStatement(string word)
    {
        switch (word.ToUpperInvariant())
        {
            case "BEGIN":
                Push('B');
                statementStart = true;
                skipWords = 2;
                break;
            case "IF":
                Push('I');
                break;
            case "CASE":
                Push('C');
                break;
            case "LOOP":
                Push('L');
                statementStart = true;
                break;
            case "REPEAT":
                Push('R');
                statementStart = true;
                break;
            case "WHILE":
                Push('W');
                break;
            case "FOR":
                Push('F');
                break;
            case "ELSE":
                statementStart = blocks.TryPeek(out var top) && top is 'I' or 'C';
                break;
            case "END":
                pendingEnd = true; // closes the block of the kind that follows it, or a BEGIN
                break;
            case "DECLARE":
                handler = Handler.Declare;
                break;
            default:
                break;
        }
    }

    /// <summary>DECLARE ... HANDLER FOR condition [, condition] statement: the statement starts after the last condition.</summary>
    private bool HandlerToken(Token kind, ReadOnlySpan<byte> text)
    {
        switch (handler)
        {
            case Handler.For:
                handler = kind == Token.Word && Is(text, "FOR"u8) ? Handler.Item : Handler.None;
                return true;
            case Handler.Item:
                handler = kind == Token.Word && Is(text, "SQLSTATE"u8) ? Handler.Sqlstate
                    : kind == Token.Word && Is(text, "NOT"u8) ? Handler.Item // NOT FOUND
                    : Handler.ItemDone;
                return true;
            case Handler.Sqlstate:
                if (kind == Token.Word && Is(text, "VALUE"u8))
                {
                    return true;
                }

                handler = Handler.ItemDone;
                return true;
            case Handler.ItemDone:
                if (kind == Token.Punct && text[0] == ',')
                {
                    handler = Handler.Item;
                    return true;
                }

                handler = Handler.None;
                statementStart = true;
                return false; // not taken: this token starts the handler's statement
            default:
                return false;
        }
    }

    private bool HeaderToken(Token kind, ReadOnlySpan<byte> text)
    {
        var word = kind == Token.Word;
        var punct = kind == Token.Punct ? text[0] : (byte)0;
        if (punct == ';' && headerParens == 0)
        {
            return false; // the server ends a statement whose body this never found
        }

        switch (header)
        {
            case Header.Name:
                if (routine && punct == '(')
                {
                    header = Header.Parameters;
                    headerParens = 1;
                }
                else if (routine && word && (Is(text, "AS"u8) || Is(text, "IS"u8)))
                {
                    header = Header.Characteristics; // sql_mode=ORACLE: no parameter list
                }
                else if (trigger)
                {
                    // FOR EACH ROW, word after word (a table named `row` does not end the header).
                    triggerRow = word && Is(text, "FOR"u8) ? 1
                        : word && Is(text, "EACH"u8) && triggerRow == 1 ? 2
                        : word && Is(text, "ROW"u8) && triggerRow == 2 ? 3 : 0;
                    if (triggerRow == 3)
                    {
                        header = Header.TriggerOrder;
                    }
                }
                else if (eventObject && word && Is(text, "DO"u8))
                {
                    BeginBody();
                }

                return true;
            case Header.Parameters:
                headerParens += punct == '(' ? 1 : punct == ')' ? -1 : 0;
                if (headerParens == 0)
                {
                    header = function ? Header.ReturnsType : Header.Characteristics;
                }

                return true;
            case Header.ReturnsType:
                // RETURNS, then the type's name.
                if (!(word && Is(text, "RETURNS"u8)))
                {
                    header = Header.TypeOptions;
                }

                return true;
            case Header.TypeOptions:
                if (headerParens > 0 || punct == '(')
                {
                    headerParens += punct == '(' ? 1 : punct == ')' ? -1 : 0;
                    return true;
                }

                if (skipWords > 0)
                {
                    skipWords--;
                    return true;
                }

                // The rest of a type of several words (NATIONAL CHAR, DOUBLE PRECISION, LONG VARCHAR,
                // CHAR VARYING) and its attributes; no statement starts with one of them.
                if (word && (Is(text, "UNSIGNED"u8) || Is(text, "SIGNED"u8) || Is(text, "ZEROFILL"u8) || Is(text, "BINARY"u8)
                    || Is(text, "ASCII"u8) || Is(text, "UNICODE"u8) || Is(text, "BYTE"u8) || Is(text, "CHAR"u8)
                    || Is(text, "CHARACTER"u8) || Is(text, "VARCHAR"u8) || Is(text, "VARCHARACTER"u8) || Is(text, "VARYING"u8)
                    || Is(text, "PRECISION"u8) || Is(text, "VARBINARY"u8)))
                {
                    return true;
                }

                if (word && (Is(text, "CHARSET"u8) || Is(text, "SET"u8) || Is(text, "COLLATE"u8)))
                {
                    skipWords = 1; // its name
                    return true;
                }

                header = Header.Characteristics;
                goto case Header.Characteristics;
            case Header.Characteristics:
                if (kind == Token.Literal || (word && (Is(text, "COMMENT"u8) || Is(text, "LANGUAGE"u8) || Is(text, "SQL"u8)
                    || Is(text, "AS"u8) || Is(text, "IS"u8)
                    || Is(text, "NOT"u8) || Is(text, "DETERMINISTIC"u8) || Is(text, "CONTAINS"u8) || Is(text, "NO"u8)
                    || Is(text, "READS"u8) || Is(text, "MODIFIES"u8) || Is(text, "DATA"u8) || Is(text, "SECURITY"u8)
                    || Is(text, "DEFINER"u8) || Is(text, "INVOKER"u8))))
                {
                    return true;
                }

                BeginBody();
                return Take(kind, text);
            case Header.TriggerOrder:
                // FOR EACH ROW [FOLLOWS | PRECEDES other_trigger]
                if (word && (Is(text, "FOLLOWS"u8) || Is(text, "PRECEDES"u8)))
                {
                    skipWords = 1;
                    return true;
                }

                if (skipWords > 0)
                {
                    skipWords--;
                    return true;
                }

                if (punct == '.')
                {
                    skipWords = 1; // FOLLOWS db.other_trigger
                    return true;
                }

                BeginBody();
                return Take(kind, text);
            default:
                return true;
        }
    }

    private void BeginBody()
    {
        header = Header.Done;
        skipWords = 0;
        statementStart = true;
    }

    private void Push(char block)
    {
        if (blocks.Count >= MaxDepth)
        {
            problem ??= $"a routine body nesting blocks more than {MaxDepth} deep";
            return;
        }

        blocks.Push(block);
    }

    /// <summary>Closes the innermost block, which must be of the kind its END names.</summary>
    private void Pop(char block, ReadOnlySpan<byte> closer)
    {
        if (!blocks.TryPeek(out var top) || top != block)
        {
            problem ??= $"an END{(closer.SequenceEqual("END"u8) ? "" : " " + Encoding.ASCII.GetString(closer).ToUpperInvariant())} "
                + "that closes no block of its kind in a routine body";
            return;
        }

        blocks.Pop();
    }

    /// <summary>IF, CASE, LOOP, REPEAT, WHILE, FOR after an END: the block kind it closes.</summary>
    private static char? KindOf(ReadOnlySpan<byte> word) =>
        Is(word, "IF"u8) ? 'I' : Is(word, "CASE"u8) ? 'C' : Is(word, "LOOP"u8) ? 'L' : Is(word, "REPEAT"u8) ? 'R'
        : Is(word, "WHILE"u8) ? 'w' : Is(word, "FOR"u8) ? 'f' : null; // a loop is closed after its DO

    private static bool Is(ReadOnlySpan<byte> text, ReadOnlySpan<byte> keyword) => Ascii.EqualsIgnoreCase(text, keyword);
}
