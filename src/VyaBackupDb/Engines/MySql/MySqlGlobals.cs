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
        await using var connection = await OpenGrantsReaderAsync(cancellationToken).ConfigureAwait(false);
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

    /// <summary>
    /// A session for SHOW CREATE USER and SHOW GRANTS, whose names come in backquotes as the globals
    /// file has them (under ANSI_QUOTES or ORACLE in the server's sql_mode they came in double quotes).
    /// </summary>
    private async Task<MySqlConnection> OpenGrantsReaderAsync(CancellationToken cancellationToken)
    {
        var connection = await OpenAsync(cancellationToken, allowUserVariables: true).ConfigureAwait(false);
        try
        {
            await Execute(connection, "SET SESSION sql_mode = ''", cancellationToken).ConfigureAwait(false);
            return connection;
        }
        catch
        {
            await connection.DisposeAsync().ConfigureAwait(false);
            throw;
        }
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
        user is "mariadb.sys" or "PUBLIC" || user.StartsWith("mysql.", StringComparison.Ordinal)
        || (user == "root" && string.Equals(host, "localhost", StringComparison.OrdinalIgnoreCase));

    /// <summary>
    /// How an account is named as a <see cref="GlobalsAccount.Key"/>: `user`@`host`, or `role`. The
    /// server compares host names without case (MariaDB stores them lower case), so the key does too:
    /// `u`@`LocalHost` is the existing `u`@`localhost`.
    /// </summary>
    private static string Key(string user, string? host) => host is null ? Quote(user) : $"{Quote(user)}@{Quote(host.ToLowerInvariant())}";

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

    /// <summary>
    /// Each "-- account:" block: its CREATE USER (one account) or CREATE ROLE first, then what
    /// SHOW GRANTS writes: GRANT ... TO, REVOKE ... FROM (MySQL's partial revokes) and SET DEFAULT
    /// ROLE ... FOR, each naming the block's account as the one it changes.
    /// </summary>
    public IReadOnlyList<GlobalsAccount> ParseGlobals(string script, Action<string> warn)
    {
        var accounts = new List<GlobalsAccount>();
        (GlobalsAccount Account, string User, string? Host, int Line, HashSet<string> HeldRoles)? block = null;
        void EndBlock()
        {
            if (block is { } ended && ended.Account.Create.Count == 0)
            {
                throw new DumpFilterException($"line {ended.Line}: {GlobalsSql.Show(ended.Account.Key)} has no CREATE USER or CREATE ROLE; refused");
            }
        }
        foreach (var (line, text) in Globals.Statements(script, AccountMarker))
        {
            try
            {
                if (text.StartsWith(AccountMarker, StringComparison.Ordinal))
                {
                    EndBlock();
                    var tokens = GlobalsSql.Tokens(text[AccountMarker.Length..], '`');
                    if (ReadAccount(tokens, 0) is not { } named || named.Next != tokens.Count)
                    {
                        throw new FormatException("an \"-- account:\" line that names no account");
                    }
                    var key = Key(named.User, named.Host);
                    if (IsBuiltIn(named.User, named.Host ?? ""))
                    {
                        // The backup leaves these out (IsBuiltIn): only a tampered file names them.
                        throw new FormatException($"{GlobalsSql.Show(key)} is an account of the server itself, which the globals backup never holds");
                    }
                    if (accounts.Any(a => a.Key == key))
                    {
                        throw new FormatException($"{GlobalsSql.Show(key)} a second time");
                    }
                    block = (new GlobalsAccount(key, [], []), named.User, named.Host, line, new HashSet<string>(StringComparer.Ordinal));
                    accounts.Add(block.Value.Account);
                    continue;
                }
                if (block is not { } current)
                {
                    throw new FormatException("a statement before the first \"-- account:\" line");
                }
                var kind = CheckStatement(GlobalsSql.Tokens(text, '`'), current.User, current.Host, current.HeldRoles);
                if ((kind == StatementKind.Create) != (current.Account.Create.Count == 0))
                {
                    throw new FormatException(kind == StatementKind.Create ? "a second CREATE in one account's block" : "a grant before the account's CREATE");
                }
                if (kind != StatementKind.HeldRoleGrant)
                {
                    (kind == StatementKind.Create ? current.Account.Create : current.Account.Grants).Add(text);
                }
            }
            catch (FormatException e)
            {
                throw new DumpFilterException($"line {line}: {e.Message}; refused");
            }
        }
        EndBlock();
        // The roles the instance's account administers on the server backed up (MariaDB gives its creator a role WITH
        // ADMIN OPTION): taken back after creating one, no account could grant it any more.
        var administered = accounts.Where(IsRestoringAccount)
            .SelectMany(a => a.Grants.Select(g => GlobalsSql.Tokens(g, '`')))
            .Where(tokens => tokens.Any(t => t.Is("ADMIN")))
            .Select(HeldRole).OfType<string>().Select(Quote).ToHashSet(StringComparer.Ordinal);
        return [.. accounts.Select(a => administered.Contains(a.Key) ? a with { AdministeredByRestorer = true } : a)];
    }

    private enum StatementKind
    {
        /// <summary>The block's CREATE USER or CREATE ROLE.</summary>
        Create,
        /// <summary>A grant (or revoke, or default role) of the block's account.</summary>
        Grant,
        /// <summary>A grant of a role the block's account holds: MariaDB lists them with the role's; they come from that role's own block.</summary>
        HeldRoleGrant,
    }

    /// <summary>What a statement of a block is; one that changes another account (but a held role's grant, left out) throws.</summary>
    private static StatementKind CheckStatement(List<GlobalsToken> tokens, string user, string? host, HashSet<string> heldRoles)
    {
        bool At(int index, string word) => index < tokens.Count && tokens[index].Is(word);
        var heldRoleGrant = false;
        void Names(int index)
        {
            if (ReadAccount(tokens, index) is { } named && named.User == user && string.Equals(named.Host, host, StringComparison.OrdinalIgnoreCase))
            {
                return;
            }
            if (At(0, "GRANT") && ReadAccount(tokens, index) is { Host: null } role && heldRoles.Contains(role.User))
            {
                heldRoleGrant = true;
                return;
            }
            throw new FormatException($"{GlobalsSql.Kind(tokens)} names another account than its block's");
        }
        int NextAfter(int index) => ReadAccount(tokens, index)!.Value.Next;
        int First(string word) => tokens.FindIndex(1, t => t.Is(word));
        if (At(0, "CREATE") && At(1, "USER") && host is not null)
        {
            Names(2);
            // More accounts would follow as a list; the list after DEFAULT ROLE (MySQL 8) is of roles.
            var rest = tokens.Skip(NextAfter(2)).ToList();
            var roles = rest.FindIndex(t => t.Is("ROLE"));
            if (rest.Take(roles > 0 && rest[roles - 1].Is("DEFAULT") ? roles : rest.Count).Any(t => t.IsSymbol(',')))
            {
                throw new FormatException("CREATE USER of more than one account");
            }
            return StatementKind.Create;
        }
        if (At(0, "CREATE") && At(1, "ROLE") && host is null)
        {
            Names(2);
            return NextAfter(2) == tokens.Count ? StatementKind.Create : throw new FormatException("CREATE ROLE with options");
        }
        if (At(0, "GRANT") && First("TO") is > 1 and var to)
        {
            Names(to + 1);
            if (tokens.Skip(NextAfter(to + 1)).Any(t => t.IsSymbol(',')))
            {
                throw new FormatException("GRANT to more than one account");
            }
            if (HeldRole(tokens) is { } held)
            {
                heldRoles.Add(held); // GRANT `role` TO ...: the holder's block lists the role's grants next
            }
            return heldRoleGrant ? StatementKind.HeldRoleGrant : StatementKind.Grant;
        }
        if (At(0, "REVOKE") && First("FROM") is > 1 and var from)
        {
            Names(from + 1);
            return NextAfter(from + 1) == tokens.Count ? StatementKind.Grant : throw new FormatException("REVOKE from more than one account");
        }
        if (At(0, "SET") && At(1, "DEFAULT") && At(2, "ROLE") && tokens.Count > 4 && (tokens[3].IsName || tokens[3].Is("NONE")) && At(4, "FOR"))
        {
            Names(5);
            return NextAfter(5) == tokens.Count ? StatementKind.Grant : throw new FormatException("SET DEFAULT ROLE for more than one account");
        }
        throw new FormatException($"{(GlobalsSql.Kind(tokens) is { Length: > 0 } kind ? kind : "this statement")} is not something the globals backup writes");
    }

    /// <summary>`user`@`host` (or 'user'@'host'), or a role's `name`, at <paramref name="index"/>; null if there is none.</summary>
    private static (string User, string? Host, int Next)? ReadAccount(List<GlobalsToken> tokens, int index)
    {
        if (index >= tokens.Count || !tokens[index].IsName)
        {
            return null;
        }
        if (index + 2 < tokens.Count && tokens[index + 1].IsSymbol('@') && tokens[index + 2].IsName)
        {
            return (tokens[index].Text, tokens[index + 2].Text, index + 3);
        }
        return index + 1 < tokens.Count && tokens[index + 1].IsSymbol('@') ? null : (tokens[index].Text, null, index + 1);
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
            existing.Add(Key(reader.GetString(0), reader.GetString(1) is { Length: > 0 } host ? host : null));
        }
        return existing;
    }

    /// <summary>A replaced user is created anew and a replaced role's privileges revoked first: nothing beyond the record is known to stay.</summary>
    public Task<string?> KeptBeyondRecordAsync(GlobalsAccount account, CancellationToken cancellationToken) => Task.FromResult<string?>(null);

    /// <summary>MySQL has no superuser flag; the server's own accounts are refused in the file (<see cref="IsBuiltIn"/>).</summary>
    public Task<HashSet<string>> SuperusersAsync(CancellationToken cancellationToken) => Task.FromResult(new HashSet<string>(StringComparer.Ordinal));

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

    /// <summary>
    /// A replaced user is renamed aside (password, grants and roles with it) while the recorded
    /// one is created and granted: a failure drops the new one and renames the old one back, so
    /// it is left exactly as it was. A replaced role loses its own privileges (and roles) and gets
    /// the recorded ones instead: dropping or renaming it would take it from every account that
    /// holds it (and MariaDB cannot rename a role). Its grants as they are now are read first, so
    /// that a failure can give them back.
    /// </summary>
    public async Task<GlobalsPlan> PlanAsync(GlobalsAccount account, bool exists, CancellationToken cancellationToken)
    {
        if (IsRole(account))
        {
            if (!exists)
            {
                // MariaDB's CREATE ROLE grants the role to its creator, which the restore needs to grant it on: taken back at the end,
                // unless the instance's account held it so on the server backed up.
                return new([], account.Create, account.Grants, account.AdministeredByRestorer ? [] : [$"REVOKE {account.Key} FROM CURRENT_USER"],
                    [$"DROP ROLE {account.Key}"]);
            }
            // The roles it holds are revoked first: MariaDB's REVOKE ALL fails for a role holding
            // a role that has a table grant. The recorded ones are granted first, so that a failure
            // after them knows what to take back.
            var now = await GrantsNowAsync(account, cancellationToken).ConfigureAwait(false);
            string? Membership(string grant) => HeldRole(GlobalsSql.Tokens(grant, '`')) is { } role ? Quote(role) : null;
            var recorded = account.Grants.Where(g => Membership(g) is not null).ToList();
            List<string> RevokeAll(IEnumerable<string> memberships) =>
                [.. memberships.Select(g => $"REVOKE {Membership(g)} FROM {account.Key}"), $"REVOKE ALL PRIVILEGES, GRANT OPTION FROM {account.Key}"];
            return new([], RevokeAll(now.Where(g => Membership(g) is not null)), [.. recorded, .. account.Grants.Except(recorded)], [],
                [.. RevokeAll(recorded), .. now]);
        }
        if (!exists)
        {
            return new([], account.Create, account.Grants, [], [$"DROP USER {account.Key}"]);
        }
        var aside = AsideKey(account);
        return new([$"RENAME USER {account.Key} TO {aside}"], account.Create, account.Grants, [$"DROP USER {aside}"],
            [$"DROP USER IF EXISTS {account.Key}", $"RENAME USER {aside} TO {account.Key}"]);
    }

    /// <summary>
    /// An account's own grants as the server has them now (SHOW GRANTS, read as a globals backup
    /// reads it: the grants of roles it holds, which MariaDB lists with its own, left out).
    /// </summary>
    private async Task<List<string>> GrantsNowAsync(GlobalsAccount account, CancellationToken cancellationToken)
    {
        await using var connection = await OpenGrantsReaderAsync(cancellationToken).ConfigureAwait(false);
        var block = await AccountBlockAsync(connection, account.Key, account.Create[0], canLock: false, cancellationToken).ConfigureAwait(false);
        return ParseGlobals(block, _ => { })[0].Grants;
    }

    /// <summary>The role a grant gives (GRANT `role` TO ...); null for a grant of privileges.</summary>
    private static string? HeldRole(List<GlobalsToken> tokens) =>
        tokens.Count > 3 && tokens[0].Is("GRANT") && tokens[1].IsName && tokens[2].Is("TO") ? tokens[1].Text : null;

    private const string AsidePrefix = "vya_old_";

    /// <summary>
    /// Where a replaced user waits (same host): named from a hash of the account, so that a copy an
    /// interrupted run left can be told to be that account's.
    /// </summary>
    private static string AsideKey(GlobalsAccount account)
    {
        var hash = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(Encoding.UTF8.GetBytes(account.Key)))[..16];
        return Key(AsidePrefix + hash, ReadAccount(GlobalsSql.Tokens(account.Key, '`'), 0)!.Value.Host);
    }

    public IReadOnlyList<string> LeftAside(HashSet<string> existing, IReadOnlyList<GlobalsAccount> accounts) =>
        [.. existing.Where(key => key.StartsWith(Quote(AsidePrefix)[..^1], StringComparison.Ordinal)).Order(StringComparer.Ordinal)
            .Select(key => accounts.FirstOrDefault(a => a.Create.Count > 0 && !IsRole(a) && AsideKey(a) == key) is { } was ? $"{key} (was {was.Key})" : key)];

    public string? PutBack(GlobalsAccount account, HashSet<string> existing) =>
        !IsRole(account) && !existing.Contains(account.Key) && existing.Contains(AsideKey(account)) ? $"RENAME USER {AsideKey(account)} TO {account.Key}" : null;

    private static bool IsRole(GlobalsAccount account) => GlobalsSql.Tokens(account.Create[0], '`')[1].Is("ROLE");

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
