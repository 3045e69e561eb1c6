using System.Text.RegularExpressions;
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

    public IReadOnlyList<GlobalsAccount> ParseGlobals(string script)
    {
        var accounts = new Dictionary<string, GlobalsAccount>(StringComparer.Ordinal);
        var other = new GlobalsAccount("(other statements)", [], []);
        GlobalsAccount Of(string quoted)
        {
            var name = Unquote(quoted);
            if (!accounts.TryGetValue(name, out var account))
            {
                accounts[name] = account = new GlobalsAccount(name, [], []);
            }
            return account;
        }
        foreach (var statement in Globals.Statements(script))
        {
            if (statement.StartsWith("SET ", StringComparison.Ordinal) || statement.StartsWith("SELECT pg_catalog.set_config", StringComparison.Ordinal))
            {
                continue; // session settings of the dump itself
            }
            if (RoleStatement().Match(statement) is { Success: true } role)
            {
                Of(role.Groups[1].Value).Create.Add(statement);
            }
            else if (statement.StartsWith("GRANT ", StringComparison.Ordinal) && GrantTo().Match(statement) is { Success: true } grant)
            {
                Of(grant.Groups[1].Value).Grants.Add(statement);
            }
            else
            {
                other.Grants.Add(statement);
            }
        }
        return other.Grants.Count == 0 ? [.. accounts.Values] : [.. accounts.Values, other];
    }

    public async Task<HashSet<string>> ExistingAccountsAsync(CancellationToken cancellationToken)
    {
        await using var connection = await OpenAsync(Instance.MaintenanceDatabase, cancellationToken).ConfigureAwait(false);
        return [.. (await ListAsync(connection, "SELECT rolname, 0 FROM pg_roles", cancellationToken).ConfigureAwait(false)).Select(r => r.Name)];
    }

    public bool IsRestoringAccount(GlobalsAccount account) => account.Key == Instance.User;

    public string AccountName(GlobalsAccount account) => account.Key;

    /// <summary>An existing role keeps its identity (objects it owns); its attributes and settings are set as recorded.</summary>
    public IReadOnlyList<string> ReplaceStatements(GlobalsAccount account) =>
        [.. account.Create.Where(s => !s.StartsWith("CREATE ROLE ", StringComparison.Ordinal))];

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

    private static string Unquote(string identifier) =>
        identifier.StartsWith('"') ? identifier[1..^1].Replace("\"\"", "\"", StringComparison.Ordinal) : identifier;

    [GeneratedRegex("""^(?:CREATE ROLE|ALTER ROLE|COMMENT ON ROLE|SECURITY LABEL (?:FOR \S+ )?ON ROLE) ("(?:[^"]|"")*"|[^\s;]+)""")]
    private static partial Regex RoleStatement();

    [GeneratedRegex("""\sTO ("(?:[^"]|"")*"|[^\s;]+)""")]
    private static partial Regex GrantTo();
}
