using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using Npgsql;
using VyaBackupDb.Catalog;
using VyaBackupDb.Config;
using VyaBackupDb.Errors;

namespace VyaBackupDb.Engines.Postgres;

/// <summary>PostgreSQL: pg_dump (plain SQL) to back up, psql with ON_ERROR_STOP to restore.</summary>
public sealed partial class PostgresEngine(InstanceConfig instance) : IDumpEngine
{
    private int? _serverMajor;

    public InstanceConfig Instance { get; } = instance;

    public string CompletionTrailer => DumpEngines.CompletionTrailer(Dbms.PostgreSql);

    /// <summary>Set when the chosen client is newer than the server (allowed, but worth saying).</summary>
    private string? _toolWarning;
    private (string BinDir, string Version)? _client;

    public async Task<ServerInfo> ProbeAsync(CancellationToken cancellationToken)
    {
        await using var connection = await OpenAsync("postgres", cancellationToken).ConfigureAwait(false);
        var versionNumber = Convert.ToInt32(
            await Scalar(connection, "SHOW server_version_num", cancellationToken).ConfigureAwait(false), CultureInfo.InvariantCulture);
        _serverMajor = versionNumber / 10000;
        var version = (string?)await Scalar(connection, "SHOW server_version", cancellationToken).ConfigureAwait(false) ?? "";
        var databases = new List<string>();
        await using (var command = new NpgsqlCommand(
            "SELECT datname FROM pg_database WHERE datallowconn AND NOT datistemplate ORDER BY datname", connection))
        await using (var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false))
        {
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                var name = reader.GetString(0);
                if (!DumpEngines.IsSystemDatabase(Dbms.PostgreSql, name))
                {
                    databases.Add(name);
                }
            }
        }
        return new ServerInfo("PostgreSQL", version.Split(' ')[0], databases);
    }

    public async Task<DumpDetails> DumpAsync(string database, Stream output, CancellationToken cancellationToken)
    {
        var client = await ChooseClientAsync(cancellationToken).ConfigureAwait(false);
        var pgDump = Path.Combine(client.BinDir, "pg_dump");

        // Count rows in a snapshot that pg_dump then dumps (--snapshot): the counts are exact.
        await using var connection = await OpenAsync(database, cancellationToken).ConfigureAwait(false);
        await using var transaction = await connection.BeginTransactionAsync(System.Data.IsolationLevel.RepeatableRead, cancellationToken)
            .ConfigureAwait(false);
        var snapshot = (string)(await Scalar(connection, "SELECT pg_export_snapshot()", cancellationToken).ConfigureAwait(false))!;
        var inventory = await InventoryAsync(connection, exact: true, cancellationToken).ConfigureAwait(false);

        using var passFile = PassFile();
        string[] arguments =
        [
            "--format=plain", "--no-owner", "--no-privileges", "--no-password", "--encoding=UTF8",
            "--quote-all-identifiers", $"--snapshot={snapshot}",
            $"--dbname={ConnInfo(database)}",
        ];
        await ChildProcess.RunAsync(pgDump, arguments, Environment(passFile), null, output, cancellationToken).ConfigureAwait(false);
        await transaction.RollbackAsync(cancellationToken).ConfigureAwait(false);
        return new DumpDetails("pg_dump", client.Version, inventory, _toolWarning);
    }

    public async Task<DatabaseInventory> InventoryAsync(string database, CancellationToken cancellationToken)
    {
        await using var connection = await OpenAsync(database, cancellationToken).ConfigureAwait(false);
        return await InventoryAsync(connection, exact: true, cancellationToken).ConfigureAwait(false);
    }

    private const string UserSchemas = "NOT IN ('pg_catalog', 'information_schema') AND {0} NOT LIKE 'pg\\_toast%' AND {0} NOT LIKE 'pg\\_temp%'";

    private static async Task<DatabaseInventory> InventoryAsync(NpgsqlConnection connection, bool exact, CancellationToken cancellationToken)
    {
        var tables = await ListAsync(connection,
            "SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname), 0 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            + "WHERE c.relkind IN ('r', 'p') AND n.nspname " + string.Format(CultureInfo.InvariantCulture, UserSchemas, "n.nspname") + " ORDER BY 1",
            cancellationToken).ConfigureAwait(false);
        var rows = new List<TableRows>();
        foreach (var (table, _) in tables)
        {
            // The name comes from quote_ident: already quoted by the server's own rules.
            var count = await Scalar(connection, $"SELECT count(*) FROM {table}", cancellationToken).ConfigureAwait(false);
            rows.Add(new TableRows(table, Convert.ToInt64(count, CultureInfo.InvariantCulture), exact));
        }
        var sequences = await ListAsync(connection,
            "SELECT quote_ident(schemaname) || '.' || quote_ident(sequencename), coalesce(last_value, 0) FROM pg_sequences ORDER BY 1",
            cancellationToken).ConfigureAwait(false);
        var objects = new ObjectCounts(
            Views: await CountAsync("SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind IN ('v', 'm') AND n.nspname "
                + string.Format(CultureInfo.InvariantCulture, UserSchemas, "n.nspname")).ConfigureAwait(false),
            Routines: await CountAsync("SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname "
                + string.Format(CultureInfo.InvariantCulture, UserSchemas, "n.nspname")).ConfigureAwait(false),
            Triggers: await CountAsync("SELECT count(*) FROM pg_trigger WHERE NOT tgisinternal").ConfigureAwait(false),
            Events: 0);
        return new DatabaseInventory(rows, [.. sequences.Select(s => new SequenceValue(s.Name, s.Value))], objects);

        async Task<int> CountAsync(string sql) =>
            Convert.ToInt32(await Scalar(connection, sql, cancellationToken).ConfigureAwait(false), CultureInfo.InvariantCulture);
    }

    private static async Task<List<(string Name, long Value)>> ListAsync(NpgsqlConnection connection, string sql, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand(sql, connection);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        var list = new List<(string, long)>();
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            list.Add((reader.GetString(0), Convert.ToInt64(reader.GetValue(1), CultureInfo.InvariantCulture)));
        }
        return list;
    }

    public async Task<TargetState> GetTargetStateAsync(string database, CancellationToken cancellationToken)
    {
        await using (var connection = await OpenAsync("postgres", cancellationToken).ConfigureAwait(false))
        {
            var exists = await Scalar(connection, "SELECT COUNT(*) FROM pg_database WHERE datname = @db", cancellationToken, database)
                .ConfigureAwait(false);
            if (Convert.ToInt64(exists, CultureInfo.InvariantCulture) == 0)
            {
                return new TargetState(false, 0);
            }
        }
        await using var target = await OpenAsync(database, cancellationToken).ConfigureAwait(false);
        var tables = await Scalar(target,
            "SELECT COUNT(*) FROM information_schema.tables WHERE table_type = 'BASE TABLE' "
            + "AND table_schema NOT IN ('pg_catalog', 'information_schema')", cancellationToken).ConfigureAwait(false);
        var others = await Scalar(target,
            "SELECT (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind IN ('v', 'm', 'S') AND n.nspname "
            + string.Format(CultureInfo.InvariantCulture, UserSchemas, "n.nspname") + ")"
            + " + (SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname "
            + string.Format(CultureInfo.InvariantCulture, UserSchemas, "n.nspname") + ")", cancellationToken).ConfigureAwait(false);
        return new TargetState(true, Convert.ToInt32(tables, CultureInfo.InvariantCulture), Convert.ToInt32(others, CultureInfo.InvariantCulture));
    }

    public async Task CreateDatabaseAsync(string database, CancellationToken cancellationToken)
    {
        await using var connection = await OpenAsync("postgres", cancellationToken).ConfigureAwait(false);
        // template0: a clean database, whatever was added to template1.
        await Execute(connection, $"CREATE DATABASE {QuoteIdentifier(database)} TEMPLATE template0 ENCODING 'UTF8'", cancellationToken)
            .ConfigureAwait(false);
    }

    public async Task DropDatabaseAsync(string database, CancellationToken cancellationToken)
    {
        await using var connection = await OpenAsync("postgres", cancellationToken).ConfigureAwait(false);
        await Execute(connection, $"DROP DATABASE {QuoteIdentifier(database)} WITH (FORCE)", cancellationToken).ConfigureAwait(false);
    }

    public async Task RestoreAsync(string targetDatabase, Stream input, CancellationToken cancellationToken)
    {
        var binDir = (await ChooseClientAsync(cancellationToken).ConfigureAwait(false)).BinDir;
        var knownSettings = await KnownSettingsAsync(targetDatabase, cancellationToken).ConfigureAwait(false);
        using var passFile = PassFile();
        string[] arguments =
        [
            "--no-psqlrc", "--quiet", "--no-password", "--set=ON_ERROR_STOP=1", "--single-transaction",
            $"--dbname={ConnInfo(targetDatabase)}",
        ];
        // A custom setting ("ext.name") is accepted by any server; others must exist on this one.
        var filter = new PostgresDumpFilter(targetDatabase, name => name.Contains('.', StringComparison.Ordinal) || knownSettings.Contains(name), new PostgresFilterOptions(RestrictMetaCommands: PostgresDumpFilter.ClientSupportsRestrict(_client!.Value.Version)));
        await ChildProcess.RunAsync(Path.Combine(binDir, "psql"), arguments, Environment(passFile),
            (stdin, ct) => filter.CopyAsync(input, stdin, ct), null, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Double-quote quoting, quotes doubled: the server's rule for identifiers.</summary>
    public static string QuoteIdentifier(string name) => "\"" + name.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"";

    /// <summary>
    /// The bin directory (and pg_dump's version line) of the client tools matching the server's
    /// major version; a newer client (pg_dump supports older servers) with a warning; else an
    /// error naming both versions. Chosen once per engine: every database of the run uses it.
    /// </summary>
    private async Task<(string BinDir, string Version)> ChooseClientAsync(CancellationToken cancellationToken) =>
        _client ??= await FindClientAsync(cancellationToken).ConfigureAwait(false);

    private async Task<(string BinDir, string Version)> FindClientAsync(CancellationToken cancellationToken)
    {
        if (_serverMajor is null)
        {
            await ProbeAsync(cancellationToken).ConfigureAwait(false);
        }
        var server = _serverMajor!.Value;
        var candidates = new List<(int Major, string BinDir, string Version)>();
        foreach (var dir in CandidateBinDirs())
        {
            var pgDump = Path.Combine(dir, "pg_dump");
            if (!File.Exists(pgDump) || !File.Exists(Path.Combine(dir, "psql")))
            {
                continue;
            }
            var versionText = await ChildProcess.CaptureAsync(pgDump, ["--version"], cancellationToken).ConfigureAwait(false);
            var match = VersionPattern().Match(versionText);
            if (match.Success)
            {
                candidates.Add((int.Parse(match.Groups[1].Value, CultureInfo.InvariantCulture), dir, versionText.Trim().Split('\n')[0]));
            }
        }
        var exact = candidates.FirstOrDefault(c => c.Major == server);
        if (exact.BinDir is not null)
        {
            return (exact.BinDir, exact.Version);
        }
        var newer = candidates.Where(c => c.Major > server).OrderBy(c => c.Major).FirstOrDefault();
        if (newer.BinDir is not null)
        {
            _toolWarning = $"no PostgreSQL {server} client found; using pg_dump {newer.Major} from {newer.BinDir}";
            return (newer.BinDir, newer.Version);
        }
        var found = candidates.Count == 0 ? "none found" : "found " + string.Join(", ", candidates.Select(c => c.Major).Distinct());
        throw new OperationFailedException(
            $"server {Instance.Name} runs PostgreSQL {server} but pg_dump {server} or newer is needed ({found}); "
            + $"install postgresql-client-{server} or set tools_dir");
    }

    private IEnumerable<string> CandidateBinDirs()
    {
        if (Instance.ToolsDir is not null)
        {
            yield return Instance.ToolsDir;
            yield break;
        }
        const string debianRoot = "/usr/lib/postgresql";
        if (Directory.Exists(debianRoot))
        {
            foreach (var dir in Directory.GetDirectories(debianRoot))
            {
                yield return Path.Combine(dir, "bin");
            }
        }
        if (ToolLocator.Find(null, "pg_dump") is { } onPath)
        {
            yield return Path.GetDirectoryName(onPath)!;
        }
    }

    [GeneratedRegex(@"\(PostgreSQL\)\s+(\d+)")]
    private static partial Regex VersionPattern();

    private async Task<HashSet<string>> KnownSettingsAsync(string database, CancellationToken cancellationToken)
    {
        await using var connection = await OpenAsync(database, cancellationToken).ConfigureAwait(false);
        await using var command = new NpgsqlCommand("SELECT name FROM pg_settings", connection);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        var names = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            names.Add(reader.GetString(0));
        }
        return names;
    }

    /// <summary>A libpq connection string; values single-quoted so any database name is taken literally.</summary>
    private string ConnInfo(string database) =>
        $"host={ConnValue(Instance.Host)} port={Instance.Port} user={ConnValue(Instance.User)} dbname={ConnValue(database)} application_name=vya-backupdb";

    private static string ConnValue(string value) =>
        "'" + value.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("'", "\\'", StringComparison.Ordinal) + "'";

    /// <summary>A PGPASSFILE matching any host, port, database and user of this connection.</summary>
    private SecretFile PassFile()
    {
        var password = Instance.Password.Resolve() ?? "";
        var escaped = password.Replace("\\", "\\\\", StringComparison.Ordinal).Replace(":", "\\:", StringComparison.Ordinal);
        return new SecretFile("pgpass", $"*:*:*:*:{escaped}\n");
    }

    private static Dictionary<string, string> Environment(SecretFile passFile) => new()
    {
        ["PGPASSFILE"] = passFile.Path,
        // Plain, stable messages whatever the operator's locale.
        ["LC_MESSAGES"] = "C",
        ["PGCONNECT_TIMEOUT"] = "15",
    };

    private async Task<NpgsqlConnection> OpenAsync(string database, CancellationToken cancellationToken)
    {
        var builder = new NpgsqlConnectionStringBuilder
        {
            Host = Instance.Host,
            Port = Instance.Port,
            Username = Instance.User,
            Password = Instance.Password.Resolve(),
            Database = database,
            Timeout = 15,
            Pooling = false,
        };
        var connection = new NpgsqlConnection(builder.ConnectionString);
        try
        {
            await connection.OpenAsync(cancellationToken).ConfigureAwait(false);
            return connection;
        }
        catch (Exception e) when (e is NpgsqlException or PostgresException)
        {
            await connection.DisposeAsync().ConfigureAwait(false);
            throw new OperationFailedException(
                $"cannot connect to {Instance.Name} ({Instance.Host}:{Instance.Port}) database {database} as {Instance.User}: {e.Message}", e);
        }
    }

    private static async Task<object?> Scalar(NpgsqlConnection connection, string sql, CancellationToken cancellationToken, string? database = null)
    {
        await using var command = new NpgsqlCommand(sql, connection);
        if (database is not null)
        {
            command.Parameters.AddWithValue("db", database);
        }
        return await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false);
    }

    private static async Task Execute(NpgsqlConnection connection, string sql, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand(sql, connection);
        try
        {
            await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (PostgresException e)
        {
            throw new OperationFailedException(e.MessageText, e);
        }
    }
}
