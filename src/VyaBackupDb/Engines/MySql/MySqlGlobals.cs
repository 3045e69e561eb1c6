using System.Text;
using System.Text.RegularExpressions;
using MySqlConnector;

namespace VyaBackupDb.Engines.MySql;

/// <summary>
/// Accounts, roles and grants as SQL: SHOW CREATE USER / CREATE ROLE and SHOW GRANTS FOR each
/// account but the built-in ones, one "-- account:" block each.
/// </summary>
public sealed partial class MySqlEngine : IGlobalsEngine
{
    private const string AccountMarker = "-- account: ";

    public async Task<DumpDetails> DumpGlobalsAsync(Stream output, CancellationToken cancellationToken)
    {
        await using var connection = await OpenAsync(cancellationToken, allowUserVariables: true).ConfigureAwait(false);
        var version = (string?)await Scalar(connection, "SELECT VERSION()", cancellationToken).ConfigureAwait(false) ?? "";
        var mariaDb = version.Contains("MariaDB", StringComparison.OrdinalIgnoreCase);
        // ACCOUNT LOCK came with MariaDB 10.4.2 and MySQL 5.7.6.
        var canLock = Version.TryParse(version.Split('-')[0], out var number) && number >= (mariaDb ? new Version(10, 4, 2) : new Version(5, 7, 6));
        var accounts = new List<(string User, string Host, bool Role)>();
        await using (var command = new MySqlCommand(
            mariaDb ? "SELECT User, Host, is_role = 'Y' FROM mysql.user ORDER BY is_role DESC, User, Host" : "SELECT User, Host, 0 FROM mysql.user ORDER BY User, Host",
            connection))
        await using (var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false))
        {
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                accounts.Add((reader.GetString(0), reader.GetString(1), Convert.ToBoolean(reader.GetValue(2), System.Globalization.CultureInfo.InvariantCulture)));
            }
        }
        var text = new StringBuilder($"-- vya-backupdb: accounts and grants of {version}\n");
        foreach (var (user, host, role) in accounts.Where(a => !IsBuiltIn(a.User, a.Host)))
        {
            var account = role ? Quote(user) : $"{Quote(user)}@{Quote(host)}";
            try
            {
                text.Append(await AccountBlockAsync(connection, account, role ? $"CREATE ROLE {account}" : null, canLock, cancellationToken).ConfigureAwait(false));
            }
            catch (MySqlException e) when (e.ErrorCode is MySqlErrorCode.PasswordNoMatch or MySqlErrorCode.CannotUser or MySqlErrorCode.NonExistingGrant)
            {
                // Dropped since the list was read: not on the server any more, so not in its backup either.
            }
        }
        text.Append(CompletionTrailer).Append('\n');
        await output.WriteAsync(Encoding.UTF8.GetBytes(text.ToString()), cancellationToken).ConfigureAwait(false);
        return Globals.Details("SHOW GRANTS", version);
    }

    /// <summary>One account's "-- account:" block: how to create it (<paramref name="createRole"/> for a role), then its grants.</summary>
    private async Task<string> AccountBlockAsync(MySqlConnection connection, string account, string? createRole, bool canLock, CancellationToken cancellationToken)
    {
        var block = new StringBuilder().Append(AccountMarker).Append(account).Append('\n');
        var create = createRole ?? CreateUser((string)(await RowAsync(connection, $"SHOW CREATE USER {account}", cancellationToken).ConfigureAwait(false))[0], canLock);
        block.Append(create).Append(";\n");
        await using var command = new MySqlCommand($"SHOW GRANTS FOR {account}", connection);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            block.Append(Passwords(reader.GetString(0))).Append(";\n");
        }
        return block.ToString();
    }

    /// <summary>Password hashes stay only when the instance asks for them (globals_passwords: true).</summary>
    private string Passwords(string statement) => Instance.GlobalsPasswords ? statement : PasswordClause().Replace(statement, "");

    /// <summary>
    /// An account whose password (or other authentication) is left out is created locked: without
    /// it, anyone could log in to the restored account with an empty password (servers too old to
    /// lock an account: as it is, without its password).
    /// </summary>
    private string CreateUser(string statement, bool canLock)
    {
        var stripped = Passwords(statement);
        if (stripped == statement || !canLock)
        {
            return stripped;
        }
        return AccountLockOption().IsMatch(stripped) ? AccountLockOption().Replace(stripped, "ACCOUNT LOCK") : stripped + " ACCOUNT LOCK";
    }

    /// <summary>Accounts every server creates itself.</summary>
    private static bool IsBuiltIn(string user, string host) =>
        user is "mariadb.sys" or "PUBLIC" || user.StartsWith("mysql.", StringComparison.Ordinal) || (user == "root" && host == "localhost");

    private static string Quote(string name) => "`" + name.Replace("`", "``", StringComparison.Ordinal) + "`";

    private static async Task<object[]> RowAsync(MySqlConnection connection, string sql, CancellationToken cancellationToken)
    {
        await using var command = new MySqlCommand(sql, connection);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
        var row = new object[reader.FieldCount];
        reader.GetValues(row);
        return row;
    }

    public IReadOnlyList<GlobalsAccount> ParseGlobals(string script)
    {
        var accounts = new List<GlobalsAccount>();
        var blocks = script.Split("\n" + AccountMarker);
        foreach (var block in blocks.Skip(1))
        {
            var newline = block.IndexOf('\n', StringComparison.Ordinal);
            var account = new GlobalsAccount(block[..newline], [], []);
            foreach (var statement in Globals.Statements(block[(newline + 1)..]))
            {
                var sql = statement.TrimEnd(';');
                (sql.StartsWith("CREATE ", StringComparison.Ordinal) ? account.Create : account.Grants).Add(sql);
            }
            accounts.Add(account);
        }
        return accounts;
    }

    public async Task<HashSet<string>> ExistingAccountsAsync(CancellationToken cancellationToken)
    {
        await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        var existing = new HashSet<string>(StringComparer.Ordinal);
        await using var command = new MySqlCommand("SELECT User, Host FROM mysql.user", connection);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            // MariaDB roles have an empty host and are named without one.
            existing.Add(reader.GetString(1).Length == 0 ? Quote(reader.GetString(0)) : $"{Quote(reader.GetString(0))}@{Quote(reader.GetString(1))}");
        }
        return existing;
    }

    /// <summary>Any account with the instance's user name, whatever its host: the login may match more than one.</summary>
    public bool IsRestoringAccount(GlobalsAccount account) => account.Key.StartsWith(Quote(Instance.User) + "@", StringComparison.Ordinal)
        || account.Key == Quote(Instance.User);

    public string AccountName(GlobalsAccount account)
    {
        // `user`@`host` or `role`: the first backquoted name, `` an escaped backquote.
        var name = new StringBuilder();
        for (var i = 1; i < account.Key.Length; i++)
        {
            if (account.Key[i] == '`')
            {
                if (i + 1 < account.Key.Length && account.Key[i + 1] == '`')
                {
                    name.Append('`');
                    i++;
                    continue;
                }
                break;
            }
            name.Append(account.Key[i]);
        }
        return name.ToString();
    }

    /// <summary>Dropped and created again, so that it has the recorded grants and no others.</summary>
    public IReadOnlyList<string> ReplaceStatements(GlobalsAccount account) =>
        [account.Create.Any(s => s.StartsWith("CREATE ROLE ", StringComparison.Ordinal)) ? $"DROP ROLE IF EXISTS {account.Key}" : $"DROP USER IF EXISTS {account.Key}",
            .. account.Create];

    public async Task ExecuteAsync(IReadOnlyList<string> statements, CancellationToken cancellationToken)
    {
        await using var connection = await OpenAsync(cancellationToken, allowUserVariables: true).ConfigureAwait(false);
        foreach (var statement in statements)
        {
            await Execute(connection, statement, cancellationToken).ConfigureAwait(false);
        }
    }

    [GeneratedRegex(@"\s+IDENTIFIED\s+(?:BY\s+PASSWORD\s+'[^']*'|VIA\s+\S+(?:\s+(?:USING|AS)\s+'[^']*')?(?:\s+OR\s+\S+(?:\s+(?:USING|AS)\s+'[^']*')?)*|WITH\s+'?\S+?'?(?:\s+AS\s+'[^']*')?)(?=\s|$)")]
    private static partial Regex PasswordClause();

    [GeneratedRegex(@"\bACCOUNT\s+(?:UN)?LOCK\b")]
    private static partial Regex AccountLockOption();
}
