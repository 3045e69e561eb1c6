using System.Text.RegularExpressions;
using MySqlConnector;

namespace VyaBackupDb.Engines.MySql;

/// <summary>
/// The privileges this session holds, as MariaDB's SHOW GRANTS lists them: the account's own and
/// its enabled roles' (nested ones too). The server hides from an account what it holds no
/// privilege on (tables, their triggers), so a backup or a swap asks here first. Read as the
/// server applies them: of one grantee's database rows that match a database (a name is a pattern
/// too: `_` matches any character), the server uses one, not their union.
/// </summary>
internal sealed partial class MariaDbGrants
{
    private sealed record Grant(string Grantee, HashSet<string> Privileges, string? DatabasePattern, string? Table);

    /// <summary>Runs only for an account that may read mysql.proc, where MariaDB keeps the routines (and lists to others only the ones they may use).</summary>
    public const string ReadRoutines = "SELECT 1 FROM mysql.proc LIMIT 0";

    /// <summary>What a grant line ending in WITH GRANT OPTION holds besides its privileges (ALL PRIVILEGES does not hold it).</summary>
    public const string GrantOption = "GRANT OPTION";

    private readonly List<Grant> _grants;

    /// <summary>Grants on one routine: its privileges, its kind (FUNCTION, PROCEDURE), database and name.</summary>
    private readonly List<(HashSet<string> Privileges, string Kind, string Database, string Name)> _routineGrants;

    private MariaDbGrants(List<Grant> grants, List<(HashSet<string>, string, string, string)> routineGrants)
    {
        _grants = grants;
        _routineGrants = routineGrants;
    }

    public static async Task<MariaDbGrants> ReadAsync(MySqlConnection connection, CancellationToken cancellationToken)
    {
        var grants = new List<Grant>();
        var routineGrants = new List<(HashSet<string>, string, string, string)>();
        // Under ANSI_QUOTES (or ORACLE) in the server's sql_mode the names come in double quotes.
        await using var command = new MySqlCommand("SET STATEMENT sql_mode = '' FOR SHOW GRANTS", connection);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            var text = reader.GetString(0);
            if (RoutineGrantLine().Match(text) is { Success: true } routine)
            {
                routineGrants.Add((Privileges(routine.Groups["privileges"].Value), routine.Groups["kind"].Value,
                    Unquote(routine.Groups["db"].Value), Unquote(routine.Groups["name"].Value)));
                continue;
            }
            var line = GrantLine().Match(text);
            if (line.Success)
            {
                var privileges = Privileges(line.Groups["privileges"].Value);
                if (text.EndsWith(" WITH GRANT OPTION", StringComparison.Ordinal))
                {
                    privileges.Add(GrantOption);
                }
                grants.Add(new Grant(line.Groups["grantee"].Value, privileges,
                    line.Groups["all"].Success ? null : Unquote(line.Groups["db"].Value),
                    line.Groups["table"].Success ? Unquote(line.Groups["table"].Value) : null));
            }
        }
        return new MariaDbGrants(grants, routineGrants);
    }

    /// <summary>
    /// Whether <paramref name="privilege"/> (as SHOW GRANTS names it) is held on all of <paramref name="database"/>:
    /// on *.*, or by every one of a grantee's database rows that match it (the server uses one of them).
    /// </summary>
    public bool OnDatabase(string privilege, string database) =>
        _grants.Where(g => g.Table is null).GroupBy(g => g.Grantee).Any(grantee =>
        {
            var rows = grantee.Where(g => g.DatabasePattern is not null && Matches(g.DatabasePattern, database)).ToList();
            return grantee.Any(g => g.DatabasePattern is null && Holds(g, privilege)) || (rows.Count > 0 && rows.All(g => Holds(g, privilege)));
        });

    /// <summary>Whether <paramref name="privilege"/> is held on one routine: on its database (as <see cref="OnDatabase"/>) or on it alone.</summary>
    public bool OnRoutine(string privilege, string database, string kind, string name) =>
        OnDatabase(privilege, database)
        || _routineGrants.Any(g => g.Privileges.Contains(privilege) && g.Kind.Equals(kind, StringComparison.OrdinalIgnoreCase)
            && g.Database == database && g.Name.Equals(name, StringComparison.OrdinalIgnoreCase));

    /// <summary>The tables of <paramref name="database"/> that <paramref name="privilege"/> is held on by a table-level grant.</summary>
    public HashSet<string> OnTables(string privilege, string database) =>
        new(_grants.Where(g => g.Table is not null && g.DatabasePattern == database && Holds(g, privilege)).Select(g => g.Table!), StringComparer.Ordinal);

    private static bool Holds(Grant grant, string privilege) =>
        grant.Privileges.Contains(privilege) || (privilege != GrantOption && grant.Privileges.Contains("ALL PRIVILEGES"));

    /// <summary>The privileges of a grant line, but column-level ones (SELECT (`a`, `b`)), which hold on no whole table.</summary>
    private static HashSet<string> Privileges(string list)
    {
        var privileges = new HashSet<string>(StringComparer.Ordinal);
        var depth = 0;
        var start = 0;
        for (var i = 0; i <= list.Length; i++)
        {
            if (i == list.Length || (depth == 0 && list[i] == ','))
            {
                var privilege = list[start..i].Trim();
                if (!privilege.Contains('(', StringComparison.Ordinal))
                {
                    privileges.Add(privilege);
                }
                start = i + 1;
            }
            else if (list[i] == '(')
            {
                depth++;
            }
            else if (list[i] == ')')
            {
                depth--;
            }
        }
        return privileges;
    }

    private static string Unquote(string quoted) => quoted.Replace("``", "`", StringComparison.Ordinal);

    /// <summary>A database pattern of a grant: % and _ match as in LIKE, a backslash escapes.</summary>
    private static bool Matches(string pattern, string database) =>
        new Regex("^" + Regex.Replace(pattern, @"\\(.)|%|_|[^\\%_]+", m => m.Value switch
        {
            "%" => ".*",
            "_" => ".",
            _ => Regex.Escape(m.Groups[1].Success ? m.Groups[1].Value : m.Value),
        }) + "$", RegexOptions.Singleline).IsMatch(database);

    /// <summary>GRANT privileges ON *.*, `db`.* or `db`.`table` TO grantee (an account, a role, PUBLIC; not a routine's, not a proxy's).</summary>
    [GeneratedRegex(@"^GRANT (?<privileges>.+?) ON (?:(?<all>\*\.\*)|`(?<db>(?:[^`]|``)*)`\.(?:\*|`(?<table>(?:[^`]|``)*)`)) TO (?<grantee>PUBLIC|`(?:[^`]|``)*`(?:@`(?:[^`]|``)*`)?)",
        RegexOptions.Singleline)]
    private static partial Regex GrantLine();

    /// <summary>GRANT privileges ON FUNCTION|PROCEDURE `db`.`name` TO grantee.</summary>
    [GeneratedRegex(@"^GRANT (?<privileges>.+?) ON (?<kind>FUNCTION|PROCEDURE) `(?<db>(?:[^`]|``)*)`\.`(?<name>(?:[^`]|``)*)` TO ", RegexOptions.Singleline)]
    private static partial Regex RoutineGrantLine();
}
