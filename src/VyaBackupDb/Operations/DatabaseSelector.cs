using System.Text;
using System.Text.RegularExpressions;
using VyaBackupDb.Config;
using VyaBackupDb.Engines;

namespace VyaBackupDb.Operations;

/// <summary>
/// Which databases of an instance a backup without --database takes: include/exclude globs, never system databases,
/// nor the ones a restore or a verify --restore is loading while it runs (half loaded, and gone when it ends).
/// </summary>
public static class DatabaseSelector
{
    public static IReadOnlyList<string> Select(InstanceConfig instance, IEnumerable<string> databases) =>
        databases
            .Where(db => !DumpEngines.IsSystemDatabase(instance.Dbms, db))
            .Where(db => !db.StartsWith(RestoreStaging.StagingPrefix, StringComparison.Ordinal)
                && !db.StartsWith(RestoreStaging.VerifyScratchPrefix, StringComparison.Ordinal))
            .Where(db => instance.Include.Any(p => GlobMatches(p, db)))
            .Where(db => !instance.Exclude.Any(p => GlobMatches(p, db)))
            .ToList();

    /// <summary>
    /// The include entries that name one database (no wildcard) the server does not list, and exclude does not leave
    /// out: a database dropped, renamed or mistyped, or one the account may no longer see, which would otherwise drop
    /// out of every night's backup without a word.
    /// </summary>
    public static IReadOnlyList<string> Missing(InstanceConfig instance, IReadOnlyList<string> databases) =>
        [.. Named(instance).Where(name => !databases.Contains(name, StringComparer.Ordinal))];

    /// <summary>The databases include names one by one (no wildcard) and exclude does not leave out.</summary>
    public static IReadOnlyList<string> Named(InstanceConfig instance) =>
        instance.Dbms == Dbms.Files ? [] : instance.Include
            .Where(p => p.IndexOfAny(['*', '?', '[']) < 0 && p != Globals.ItemName)
            .Where(p => !instance.Exclude.Any(e => GlobMatches(e, p)))
            .Distinct(StringComparer.Ordinal)
            .ToList();

    /// <summary>Why a database asked for by name is not backed up.</summary>
    public static string NotFound(InstanceConfig instance, ServerInfo server, string database) =>
        server.Closed.Contains(database, StringComparer.Ordinal) ? Closed(database) : DoesNotExist(instance, database);

    /// <summary>Why a database the server has is not backed up: pg_dump cannot connect to it either.</summary>
    public static string Closed(string database) =>
        $"database '{database}' does not accept connections (ALLOW_CONNECTIONS false): it cannot be backed up; "
        + "ALTER DATABASE ... ALLOW_CONNECTIONS true to back it up, or exclude it";

    private static string DoesNotExist(InstanceConfig instance, string database) =>
        // MySQL lists to an account without SHOW DATABASES only the databases it holds a privilege on.
        $"database '{database}' does not exist on instance {instance.Id} ({instance.Name})"
        + (instance.Dbms == Dbms.MySql ? $", or its account {instance.User} may not see it" : "");

    /// <summary>Shell-style glob: * any run, ? one character, [abc] a set; the whole name must match.</summary>
    public static bool GlobMatches(string pattern, string name) => Regex.IsMatch(name, GlobRegex(pattern), GlobOptions);

    /// <summary>Why the pattern cannot be used (a reversed range, an empty set), or null: the config's check.</summary>
    public static string? GlobProblem(string pattern)
    {
        try
        {
            _ = new Regex(GlobRegex(pattern), GlobOptions);
            return null;
        }
        catch (RegexParseException e)
        {
            return e.Error == RegexParseError.ReversedCharacterRange ? "a range in its [...] set is reversed" : "its [...] set is not valid";
        }
    }

    private const RegexOptions GlobOptions = RegexOptions.Singleline | RegexOptions.CultureInvariant;

    private static string GlobRegex(string pattern)
    {
        var regex = new StringBuilder("^");
        for (var i = 0; i < pattern.Length; i++)
        {
            var c = pattern[i];
            switch (c)
            {
                case '*':
                    regex.Append(".*");
                    break;
                case '?':
                    // One character, also one outside the BMP (two UTF-16 units).
                    regex.Append(@"(?:[\uD800-\uDBFF][\uDC00-\uDFFF]|.)");
                    break;
                case '[' when pattern.IndexOf(']', i + 1) is var end and > 0:
                    var set = pattern[(i + 1)..end];
                    regex.Append('[').Append(set.StartsWith('!') ? "^" + Regex.Escape(set[1..]) : Regex.Escape(set)).Append(']');
                    i = end;
                    break;
                default:
                    regex.Append(Regex.Escape(c.ToString()));
                    break;
            }
        }
        // \z, not $: $ also matches before a final newline, and a name may end in one.
        regex.Append(@"\z");
        return regex.ToString();
    }
}
