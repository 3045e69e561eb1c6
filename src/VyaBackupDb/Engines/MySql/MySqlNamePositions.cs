using System.Collections.Frozen;
using System.Text;

namespace VyaBackupDb.Engines.MySql;

/// <summary>
/// Whether a two-part name <c>x.y</c> in a view, trigger, routine or event stands where the server reads a
/// column (<c>x</c> is then a table, alias or row variable: <c>SELECT wiki.id FROM wiki</c>) or where it
/// reads a table (<c>x</c> is then a database: <c>FROM wiki.t</c>). Fed the body's tokens in order. A
/// column position is only one after a keyword that starts an expression (SELECT, WHERE, SET, a join's ON,
/// ...) at the same parenthesis depth, or inside parentheses that open one (a call's arguments, a list);
/// anywhere else (a statement's start, after FROM, JOIN, INTO, TABLE, CALL, ON of a trigger or GRANT, a
/// comma in a table list, NEXTVAL(...), ...) the name is a table's. Taking a column position for a table
/// one would leave a database name unreviewed, so every doubt counts as a table position: such a name is
/// then pointed at the target as a database's is.
/// </summary>
internal sealed class MySqlNamePositions
{
    private const int MaxDepth = 256;

    private enum Clause
    {
        /// <summary>A table position (or one not known): a statement's start, INTO, TABLE, CALL, ...</summary>
        Tables,

        /// <summary>A FROM / JOIN / UPDATE table list, where ON or USING starts a join condition.</summary>
        FromList,

        /// <summary>An expression: a select list, WHERE, SET, a call's arguments.</summary>
        Expression,
    }

    private static readonly FrozenSet<string> TableWords = FrozenSet.Create(StringComparer.OrdinalIgnoreCase,
        "INTO", "TABLE", "TABLES", "CALL", "REFERENCES", "DELETE", "INSERT", "REPLACE", "TRUNCATE", "HANDLER", "DESCRIBE", "DESC",
        "EXPLAIN", "UNION", "FOR", "EXISTS", "GRANT", "REVOKE", "BEGIN", "THEN", "ELSE", "DO", "LOOP", "REPEAT");

    private static readonly FrozenSet<string> ExpressionWords = FrozenSet.Create(StringComparer.OrdinalIgnoreCase,
        "SELECT", "WHERE", "SET", "HAVING", "BY", "VALUES", "RETURN", "WHEN", "IF", "ELSEIF", "WHILE", "CASE", "LIMIT",
        "DEFAULT");

    /// <summary>One per open parenthesis: its clause, whether a join's ON/USING condition is being read, whether a JOIN came.</summary>
    private readonly record struct Level(Clause Clause, bool Condition = false, bool Joined = false);

    private readonly List<Level> levels = [new(Clause.Tables)];
    private int overflow;
    private byte[] previous = [];
    private MySqlBodyBlocks.Token previousKind = MySqlBodyBlocks.Token.Punct;

    /// <summary>Whether a two-part name starting at the next token names a table or alias, not a database.</summary>
    public bool ColumnPosition
    {
        get
        {
            if (overflow > 0)
            {
                return false;
            }

            return levels[^1].Clause == Clause.Expression || levels[^1].Condition;
        }
    }

    public void Accept(MySqlBodyBlocks.Token kind, ReadOnlySpan<byte> text)
    {
        if (kind == MySqlBodyBlocks.Token.Punct)
        {
            Punct(text[0]);
        }
        else if (kind == MySqlBodyBlocks.Token.Word && overflow == 0)
        {
            Word(text);
        }

        previousKind = kind;
        previous = kind is MySqlBodyBlocks.Token.Word or MySqlBodyBlocks.Token.Punct ? text.ToArray() : [];
    }

    private void Punct(byte b)
    {
        switch (b)
        {
            case (byte)'(':
                if (overflow > 0 || levels.Count >= MaxDepth)
                {
                    overflow++;
                    return;
                }

                levels.Add(new(OpensTables() ? Clause.Tables : Clause.Expression));
                return;
            case (byte)')':
                if (overflow > 0)
                {
                    overflow--;
                }
                else if (levels.Count > 1)
                {
                    levels.RemoveAt(levels.Count - 1);
                }

                return;
            case (byte)',' when overflow == 0 && levels[^1].Clause != Clause.Expression:
                // The next table of the list (after a join's condition too: FROM a JOIN b ON c, d).
                levels[^1] = levels[^1] with { Condition = false };
                return;
            case (byte)';' when overflow == 0:
                // A statement of the body starts.
                levels.Clear();
                levels.Add(new(Clause.Tables));
                return;
        }
    }

    /// <summary>Whether parentheses opening now hold tables: FROM (a, b), NEXTVAL(db.s), UNION=(a, b).</summary>
    private bool OpensTables()
    {
        if (previousKind == MySqlBodyBlocks.Token.Word && (Is("NEXTVAL"u8) || Is("LASTVAL"u8) || Is("SETVAL"u8)))
        {
            return true;
        }

        if (ColumnPosition)
        {
            return false;
        }

        return previousKind switch
        {
            MySqlBodyBlocks.Token.Punct => previous is [(byte)',' or (byte)'(' or (byte)'='],
            MySqlBodyBlocks.Token.Word => Is("FROM"u8) || Is("JOIN"u8) || Is("STRAIGHT_JOIN"u8) || Is("USING"u8) || Is("UNION"u8)
                || Is("LATERAL"u8),
            _ => false, // after a name: a call's arguments or a column list
        };
    }

    private void Word(ReadOnlySpan<byte> word)
    {
        var level = levels[^1];
        if (IsWord(word, "JOIN"u8) || (IsWord(word, "STRAIGHT_JOIN"u8) && !Is("SELECT"u8)))
        {
            levels[^1] = new(Clause.FromList, Joined: true);
        }
        else if (IsWord(word, "FROM"u8) || IsWord(word, "UPDATE"u8))
        {
            // ON DUPLICATE KEY UPDATE sets columns; UPDATE t1 JOIN t2 is a list as FROM's is.
            levels[^1] = new(IsWord(word, "UPDATE"u8) && Is("KEY"u8) ? Clause.Expression : Clause.FromList);
        }
        else if (IsWord(word, "ON"u8) || IsWord(word, "USING"u8))
        {
            // After a JOIN, its condition; otherwise a table: a trigger's, an index's, a GRANT's, DELETE ... USING's.
            levels[^1] = level.Clause == Clause.FromList && level.Joined ? level with { Condition = true } : new(Clause.FromList);
        }
        else if (IsWord(word, "LIKE"u8))
        {
            // CREATE TABLE t LIKE db.t and (LIKE db.t) name a table; a LIKE b compares.
            if (Is("("u8) || !ColumnPosition)
            {
                levels[^1] = new(Clause.Tables);
            }
        }
        else if (word.Length <= 16 && Ascii.IsValid(word))
        {
            var text = Encoding.ASCII.GetString(word);
            if (TableWords.Contains(text))
            {
                levels[^1] = new(Clause.Tables);
            }
            else if (ExpressionWords.Contains(text))
            {
                levels[^1] = new(Clause.Expression);
            }
        }
    }

    private static bool IsWord(ReadOnlySpan<byte> word, ReadOnlySpan<byte> keyword) => Ascii.EqualsIgnoreCase(word, keyword);

    private bool Is(ReadOnlySpan<byte> keyword) => Ascii.EqualsIgnoreCase(previous, keyword);
}
