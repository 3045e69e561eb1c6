using System.Text;

namespace VyaBackupDb.Engines;

public enum GlobalsTokenKind
{
    /// <summary>A keyword or unquoted name or number: letters, digits, '_', '$'.</summary>
    Word,
    /// <summary>A quoted identifier (MySQL `...`, PostgreSQL "..."); Text is its value.</summary>
    Identifier,
    /// <summary>A '...' string; Text is its value.</summary>
    String,
    /// <summary>One of @ , ( ) . * = - +</summary>
    Symbol,
}

public readonly record struct GlobalsToken(GlobalsTokenKind Kind, string Text)
{
    public bool Is(string word) => Kind == GlobalsTokenKind.Word && Text.Equals(word, StringComparison.OrdinalIgnoreCase);

    public bool IsSymbol(char symbol) => Kind == GlobalsTokenKind.Symbol && Text[0] == symbol;

    public bool IsName => Kind is GlobalsTokenKind.Identifier or GlobalsTokenKind.String;
}

/// <summary>
/// The tokens of one statement of a globals file, read strictly: a globals file is untrusted
/// input, so whatever could make the server read a statement differently from this reader (a
/// ';' or a comment, a backslash in a string, a prefixed string like E'..' or _utf8'..', any
/// other character outside quotes) is a <see cref="FormatException"/>.
/// </summary>
public static class GlobalsSql
{
    private const string Symbols = "@,().*=-+";

    public static List<GlobalsToken> Tokens(string statement, char identifierQuote)
    {
        var tokens = new List<GlobalsToken>();
        var i = 0;
        while (i < statement.Length)
        {
            var c = statement[i];
            if (c is ' ' or '\t' or '\n' or '\r')
            {
                i++;
            }
            else if (c == identifierQuote || c == '\'')
            {
                var value = new StringBuilder();
                var j = i + 1;
                while (true)
                {
                    if (j >= statement.Length)
                    {
                        throw new FormatException("an unterminated quoted name or string");
                    }
                    if (statement[j] == c)
                    {
                        if (j + 1 < statement.Length && statement[j + 1] == c)
                        {
                            value.Append(c);
                            j += 2;
                            continue;
                        }
                        break;
                    }
                    if (c == '\'' && statement[j] == '\\')
                    {
                        // How a server reads it depends on its settings (sql_mode, standard_conforming_strings).
                        throw new FormatException("a backslash in a string");
                    }
                    value.Append(statement[j++]);
                }
                tokens.Add(new(c == '\'' ? GlobalsTokenKind.String : GlobalsTokenKind.Identifier, value.ToString()));
                i = j + 1;
            }
            else if (char.IsAsciiLetterOrDigit(c) || c is '_' or '$')
            {
                var j = i;
                while (j < statement.Length && (char.IsAsciiLetterOrDigit(statement[j]) || statement[j] is '_' or '$'))
                {
                    j++;
                }
                if (j < statement.Length && (statement[j] == '\'' || statement[j] == identifierQuote))
                {
                    throw new FormatException("a prefixed string or name");
                }
                tokens.Add(new(GlobalsTokenKind.Word, statement[i..j]));
                i = j;
            }
            else if (Symbols.Contains(c, StringComparison.Ordinal) && !(c == '-' && i + 1 < statement.Length && statement[i + 1] == '-'))
            {
                tokens.Add(new(GlobalsTokenKind.Symbol, c.ToString()));
                i++;
            }
            else
            {
                throw new FormatException(c switch
                {
                    ';' => "a second statement on the line",
                    '-' or '/' or '#' => "a comment inside a statement",
                    _ => $"the character {Show(c.ToString())} outside quotes",
                });
            }
        }
        return tokens;
    }

    /// <summary>The first word or two of a statement, to name its kind in an error.</summary>
    public static string Kind(IReadOnlyList<GlobalsToken> tokens) =>
        string.Join(' ', tokens.Take(2).TakeWhile(t => t.Kind == GlobalsTokenKind.Word).Select(t => Show(t.Text.ToUpperInvariant())));

    /// <summary>Text from the file as an error may show it: control characters escaped, at most 64 characters.</summary>
    public static string Show(string text)
    {
        var shown = new StringBuilder();
        foreach (var c in text.Length > 64 ? text[..64] : text)
        {
            shown.Append(char.IsControl(c) ? $"\\u{(int)c:x4}" : c);
        }
        return text.Length > 64 ? shown.Append("...").ToString() : shown.ToString();
    }
}
