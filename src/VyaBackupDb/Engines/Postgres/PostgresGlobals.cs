using Npgsql;
using VyaBackupDb.Config;

namespace VyaBackupDb.Engines.Postgres;

/// <summary>Roles, memberships and role settings: pg_dumpall --globals-only, applied one role at a time.</summary>
public sealed partial class PostgresEngine : IGlobalsEngine
{
    public async Task<DumpDetails> DumpGlobalsAsync(Stream output, CancellationToken cancellationToken)
    {
        var client = await ChooseClientAsync(cancellationToken).ConfigureAwait(false);
        using var passFile = PassFile();
        string[] passwords = Instance.GlobalsPasswords ? [] : ["--no-role-passwords"];
        string[] tablespaces = Instance.GlobalsTablespaces ? [] : ["--no-tablespaces"];
        string[] arguments =
        [
            "--globals-only", .. passwords, .. tablespaces, "--no-password", "--encoding=UTF8", "--quote-all-identifiers",
            $"--dbname={ConnInfo(Instance.MaintenanceDatabase)}",
        ];
        await ChildProcess.RunAsync(Path.Combine(client.BinDir, "pg_dumpall"), arguments, Environment(passFile), null, output, cancellationToken)
            .ConfigureAwait(false);
        // pg_dumpall ends with its own "cluster dump complete"; the backup chain checks for the database dumps' trailer.
        await output.WriteAsync(System.Text.Encoding.UTF8.GetBytes($"\n{CompletionTrailer}\n"), cancellationToken).ConfigureAwait(false);
        return Globals.Details("pg_dumpall", client.Version.Replace("pg_dump", "pg_dumpall", StringComparison.Ordinal), _toolWarning);
    }

    /// <summary>
    /// What pg_dumpall --globals-only writes, grouped by role: CREATE ROLE first, then ALTER ROLE
    /// ... WITH / SET / IN DATABASE ... SET, COMMENT ON ROLE, SECURITY LABEL ON ROLE; GRANT of
    /// roles or of a parameter's privileges TO the role. The dump's own SET statements are left
    /// out; so are tablespaces (globals_tablespaces), named in a warning.
    /// </summary>
    public IReadOnlyList<GlobalsAccount> ParseGlobals(string script, Action<string> warn)
    {
        var accounts = new Dictionary<string, GlobalsAccount>(StringComparer.Ordinal);
        var tablespaces = new List<string>();
        var loadRoles = new List<string>();
        foreach (var (line, text) in Globals.Statements(script))
        {
            try
            {
                var tokens = GlobalsSql.Tokens(text, '"');
                bool At(int index, string word) => index < tokens.Count && tokens[index].Is(word);
                bool NameAt(int index) => index < tokens.Count && tokens[index].Kind == GlobalsTokenKind.Identifier;
                GlobalsAccount Of(int index) =>
                    NameAt(index) && accounts.TryGetValue(tokens[index].Text, out var account) ? account
                    : throw new FormatException($"{GlobalsSql.Kind(tokens)} about a role not created before it");
                int First(string word) => tokens.FindIndex(t => t.Is(word));
                if (At(0, "SET") || (At(0, "SELECT") && tokens.Count > 3 && tokens[1].Is("pg_catalog") && tokens[3].Is("set_config")))
                {
                    continue; // session settings of the dump itself
                }
                if (TablespaceOf(tokens) is { } tablespace)
                {
                    tablespaces.Add(tablespace);
                    continue;
                }
                if (At(0, "CREATE") && At(1, "ROLE") && NameAt(2) && tokens.Count == 3)
                {
                    if (tokens[2].Text.StartsWith("pg_", StringComparison.Ordinal))
                    {
                        // pg_dumpall leaves the server's predefined roles out: only a tampered file names one.
                        throw new FormatException($"{GlobalsSql.Show(tokens[2].Text)} is a role of the server itself, which pg_dumpall --globals-only never writes");
                    }
                    if (!accounts.TryAdd(tokens[2].Text, new GlobalsAccount(tokens[2].Text, [text], [])))
                    {
                        throw new FormatException($"CREATE ROLE {GlobalsSql.Show(tokens[2].Text)} a second time");
                    }
                    if (IsLoadRole(tokens[2].Text))
                    {
                        loadRoles.Add(tokens[2].Text);
                    }
                }
                else if (At(0, "ALTER") && At(1, "ROLE") && (At(3, "WITH") || At(3, "SET") || (At(3, "IN") && At(4, "DATABASE") && NameAt(5) && At(6, "SET"))))
                {
                    Of(2).Create.Add(text);
                }
                else if (At(0, "COMMENT") && At(1, "ON") && At(2, "ROLE") && At(4, "IS") && tokens.Count == 6 && tokens[5].Kind == GlobalsTokenKind.String)
                {
                    Of(3).Create.Add(text);
                }
                else if (At(0, "SECURITY") && At(1, "LABEL") && First("ON") is var on and (2 or 4) && At(on + 1, "ROLE") && At(on + 3, "IS")
                    && tokens.Count == on + 5 && tokens[^1].Kind == GlobalsTokenKind.String)
                {
                    Of(on + 2).Create.Add(text);
                }
                else if (At(0, "GRANT") && First("TO") is > 1 and var to && IsGrantOf(tokens[1..to]))
                {
                    // Options (PostgreSQL 16: WITH ADMIN OPTION, INHERIT FALSE) and GRANTED BY follow the one grantee; a ',' would add one.
                    if (to + 2 < tokens.Count && !At(to + 2, "WITH") && !At(to + 2, "GRANTED"))
                    {
                        throw new FormatException("GRANT to more than one role");
                    }
                    var grantee = Of(to + 1);
                    if (!tokens[1..to].Any(t => t.Kind == GlobalsTokenKind.Identifier && IsLoadRole(t.Text)))
                    {
                        grantee.Grants.Add(text);
                    }
                }
                else
                {
                    throw new FormatException($"{(GlobalsSql.Kind(tokens) is { Length: > 0 } kind ? kind : "this statement")} is not something pg_dumpall --globals-only writes");
                }
            }
            catch (FormatException e)
            {
                throw new DumpFilterException($"line {line}: {e.Message}; refused");
            }
        }
        foreach (var role in loadRoles)
        {
            accounts.Remove(role);
        }
        if (loadRoles.Count > 0)
        {
            warn($"left out {string.Join(", ", loadRoles.Select(GlobalsSql.Show))}: a restore's temporary role, which this backup caught while that restore ran");
        }
        if (tablespaces.Count > 0)
        {
            warn($"tablespaces are not restored (create them by hand): {string.Join(", ", tablespaces.Distinct(StringComparer.Ordinal).Select(GlobalsSql.Show))}");
        }
        return [.. accounts.Values];
    }

    /// <summary>A restore's temporary role, named as its staging database (see CreateLoadRoleAsync): never an account to restore.</summary>
    private static bool IsLoadRole(string role) => role.StartsWith(RestoreStaging.StagingPrefix, StringComparison.Ordinal);

    /// <summary>What a GRANT gives: roles ("a", "b") or privileges on a parameter (PostgreSQL 15+).</summary>
    private static bool IsGrantOf(List<GlobalsToken> granted)
    {
        var on = granted.FindIndex(t => t.Is("ON"));
        if (on >= 0)
        {
            return on + 2 < granted.Count && granted[on + 1].Is("PARAMETER");
        }
        return granted.Count % 2 == 1 && granted.Select((t, i) => i % 2 == 0 ? t.Kind == GlobalsTokenKind.Identifier : t.IsSymbol(',')).All(ok => ok);
    }

    /// <summary>The tablespace a statement of pg_dumpall's tablespace section is about; null for any other statement.</summary>
    private static string? TablespaceOf(List<GlobalsToken> tokens)
    {
        var at = tokens.FindIndex(t => t.Is("TABLESPACE"));
        var isTablespaceStatement = at >= 0 && at + 1 < tokens.Count && tokens[at + 1].Kind == GlobalsTokenKind.Identifier && (
            (at == 1 && (tokens[0].Is("CREATE") || tokens[0].Is("ALTER")))
            || (tokens[0].Is("COMMENT") && at == 2)
            || (tokens[0].Is("SECURITY") && tokens[at - 1].Is("ON"))
            || ((tokens[0].Is("GRANT") || tokens[0].Is("REVOKE")) && tokens[at - 1].Is("ON")));
        return isTablespaceStatement ? tokens[at + 1].Text : null;
    }

    public async Task<HashSet<string>> ExistingAccountsAsync(CancellationToken cancellationToken)
    {
        await using var connection = await OpenAsync(Instance.MaintenanceDatabase, cancellationToken).ConfigureAwait(false);
        return [.. (await ListAsync(connection, "SELECT rolname, 0 FROM pg_roles", cancellationToken).ConfigureAwait(false)).Select(r => r.Name)];
    }

    public async Task<HashSet<string>> SuperusersAsync(CancellationToken cancellationToken)
    {
        await using var connection = await OpenAsync(Instance.MaintenanceDatabase, cancellationToken).ConfigureAwait(false);
        return [.. (await ListAsync(connection, "SELECT rolname, 0 FROM pg_roles WHERE rolsuper", cancellationToken).ConfigureAwait(false)).Select(r => r.Name)];
    }

    /// <summary>
    /// The memberships a replaced role holds that its recorded grants do not give: setting the role
    /// as recorded adds memberships but revokes none (a revoke would take more than the backup says).
    /// </summary>
    public async Task<string?> KeptBeyondRecordAsync(GlobalsAccount account, CancellationToken cancellationToken)
    {
        var recorded = account.Grants.Select(g => GlobalsSql.Tokens(g, '"'))
            .Where(tokens => !tokens.Any(t => t.Is("ON")))
            .SelectMany(tokens => tokens.Skip(1).TakeWhile(t => !t.Is("TO")).Where(t => t.Kind == GlobalsTokenKind.Identifier).Select(t => t.Text))
            .ToHashSet(StringComparer.Ordinal);
        await using var connection = await OpenAsync(Instance.MaintenanceDatabase, cancellationToken).ConfigureAwait(false);
        await using var command = new NpgsqlCommand(
            "SELECT DISTINCT g.rolname FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid JOIN pg_roles u ON u.oid = m.member WHERE u.rolname = @role ORDER BY 1",
            connection);
        command.Parameters.AddWithValue("role", account.Key);
        var kept = new List<string>();
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            if (!recorded.Contains(reader.GetString(0)))
            {
                kept.Add(GlobalsSql.Show(reader.GetString(0)));
            }
        }
        return kept.Count == 0 ? null : $"it is still a member of {string.Join(", ", kept)}, which the backup does not record (revoke by hand if it should not be)";
    }

    /// <summary>A replaced role is never set aside: it is changed in one transaction.</summary>
    public IReadOnlyList<string> LeftAside(HashSet<string> existing, IReadOnlyList<GlobalsAccount> accounts) => [];

    public string? PutBack(GlobalsAccount account, HashSet<string> existing) => null;

    public bool IsRestoringAccount(GlobalsAccount account) => account.Key == Instance.User;

    public string AccountName(GlobalsAccount account) => account.Key;

    /// <summary>
    /// A created role is dropped again if its grants fail. A replaced role keeps its identity
    /// (objects it owns): its attributes, settings and grants are set as recorded in one
    /// transaction, so that a failure leaves it as it was.
    /// </summary>
    public Task<GlobalsPlan> PlanAsync(GlobalsAccount account, bool exists, CancellationToken cancellationToken) => Task.FromResult<GlobalsPlan>(exists
        ? new([], [], [.. account.Create[1..], .. account.Grants], [], [])
        : new([], account.Create, account.Grants, [], [$"DROP ROLE {QuoteIdentifier(account.Key)}"]));

    public async Task ExecuteAsync(IReadOnlyList<string> statements, CancellationToken cancellationToken)
    {
        await using var connection = await OpenAsync(Instance.MaintenanceDatabase, cancellationToken).ConfigureAwait(false);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
        foreach (var statement in statements)
        {
            await Execute(connection, statement, cancellationToken).ConfigureAwait(false);
        }
        await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
    }
}
