using System.Text;
using MySqlConnector;
using VyaBackupDb.Catalog;
using VyaBackupDb.Config;
using VyaBackupDb.Errors;

namespace VyaBackupDb.Engines.MySql;

/// <summary>MySQL and MariaDB: mysqldump/mariadb-dump to back up, the mysql/mariadb client to restore.</summary>
public sealed class MySqlEngine(InstanceConfig instance) : IDumpEngine
{
    private string? _flavor;

    public InstanceConfig Instance { get; } = instance;

    public string CompletionTrailer => DumpEngines.CompletionTrailer(Dbms.MySql);

    public async Task<ServerInfo> ProbeAsync(CancellationToken cancellationToken)
    {
        await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        var version = (string?)await Scalar(connection, "SELECT VERSION()", cancellationToken).ConfigureAwait(false) ?? "";
        var flavor = version.Contains("MariaDB", StringComparison.OrdinalIgnoreCase) ? "MariaDB" : "MySQL";
        var databases = new List<string>();
        await using (var command = new MySqlCommand("SELECT SCHEMA_NAME FROM information_schema.SCHEMATA ORDER BY SCHEMA_NAME", connection))
        await using (var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false))
        {
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                var name = reader.GetString(0);
                if (!DumpEngines.IsSystemDatabase(Dbms.MySql, name))
                {
                    databases.Add(name);
                }
            }
        }
        return new ServerInfo(flavor, version.Split('-')[0], databases);
    }

    public async Task<DumpDetails> DumpAsync(string database, Stream output, CancellationToken cancellationToken)
    {
        var serverIsMariaDb = (await ProbeFlavorAsync(cancellationToken).ConfigureAwait(false)) == "MariaDB";
        var tool = FindTool(serverIsMariaDb ? ["mariadb-dump", "mysqldump"] : ["mysqldump", "mariadb-dump"]);
        var toolVersion = (await ChildProcess.CaptureAsync(tool, ["--version"], cancellationToken).ConfigureAwait(false)).Trim();
        var toolIsMariaDb = toolVersion.Contains("MariaDB", StringComparison.OrdinalIgnoreCase);

        using var options = OptionFile();
        List<string> arguments =
        [
            $"--defaults-file={options.Path}",
            "--single-transaction", "--routines", "--triggers", "--events", "--hex-blob",
            "--quick", "--no-tablespaces", "--max-allowed-packet=1G", "--default-character-set=utf8mb4",
        ];
        if (!toolIsMariaDb && !serverIsMariaDb)
        {
            arguments.Add("--set-gtid-purged=OFF");
        }
        if (!toolIsMariaDb && serverIsMariaDb)
        {
            // MySQL 8's mysqldump queries COLUMN_STATISTICS, which MariaDB does not have.
            arguments.Add("--column-statistics=0");
        }
        // "--" so that a database named like an option (-f) is taken as a name. No --databases:
        // the dump must not name the database, so it restores under any name.
        arguments.Add("--");
        arguments.Add(database);
        // mysqldump's snapshot cannot be shared, so the counts come from a snapshot of their own
        // taken just before it: estimates, should anything write meanwhile.
        var inventory = await InventoryAsync(database, exact: false, cancellationToken).ConfigureAwait(false);
        await ChildProcess.RunAsync(tool, arguments, null, null, output, cancellationToken).ConfigureAwait(false);
        return new DumpDetails(Path.GetFileName(tool), toolVersion.Split('\n')[0], inventory);
    }

    public Task<DatabaseInventory> InventoryAsync(string database, CancellationToken cancellationToken) =>
        InventoryAsync(database, exact: true, cancellationToken);

    private async Task<DatabaseInventory> InventoryAsync(string database, bool exact, CancellationToken cancellationToken)
    {
        await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await Execute(connection, "START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY", cancellationToken).ConfigureAwait(false);
        var tables = new List<string>();
        await using (var command = new MySqlCommand(
            "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = @db AND TABLE_TYPE = 'BASE TABLE' ORDER BY TABLE_NAME",
            connection))
        {
            command.Parameters.AddWithValue("@db", database);
            await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                tables.Add(reader.GetString(0));
            }
        }
        var rows = new List<TableRows>();
        foreach (var table in tables)
        {
            var count = await Scalar(connection, $"SELECT COUNT(*) FROM {QuoteIdentifier(database)}.{QuoteIdentifier(table)}",
                cancellationToken).ConfigureAwait(false);
            rows.Add(new TableRows(table, Convert.ToInt64(count, System.Globalization.CultureInfo.InvariantCulture), exact));
        }
        var objects = new ObjectCounts(
            Views: await CountAsync("VIEWS", "TABLE_SCHEMA").ConfigureAwait(false),
            Routines: await CountAsync("ROUTINES", "ROUTINE_SCHEMA").ConfigureAwait(false),
            Triggers: await CountAsync("TRIGGERS", "TRIGGER_SCHEMA").ConfigureAwait(false),
            Events: await CountAsync("EVENTS", "EVENT_SCHEMA").ConfigureAwait(false));
        await Execute(connection, "COMMIT", cancellationToken).ConfigureAwait(false);
        return new DatabaseInventory(rows, [], objects);

        async Task<int> CountAsync(string view, string schemaColumn) => Convert.ToInt32(
            await Scalar(connection, $"SELECT COUNT(*) FROM information_schema.{view} WHERE {schemaColumn} = @db", cancellationToken, database)
                .ConfigureAwait(false),
            System.Globalization.CultureInfo.InvariantCulture);
    }

    public async Task<TargetState> GetTargetStateAsync(string database, CancellationToken cancellationToken)
    {
        await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        var exists = await Scalar(connection,
            "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = @db", cancellationToken, database).ConfigureAwait(false);
        if (Convert.ToInt64(exists, System.Globalization.CultureInfo.InvariantCulture) == 0)
        {
            return new TargetState(false, 0);
        }
        var others = await Scalar(connection,
            "SELECT (SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = @db AND TABLE_TYPE <> 'BASE TABLE')"
            + " + (SELECT COUNT(*) FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = @db)"
            + " + (SELECT COUNT(*) FROM information_schema.EVENTS WHERE EVENT_SCHEMA = @db)", cancellationToken, database).ConfigureAwait(false);
        return new TargetState(true, await CountTablesAsync(connection, database, cancellationToken).ConfigureAwait(false),
            Convert.ToInt32(others, System.Globalization.CultureInfo.InvariantCulture));
    }

    public async Task CreateDatabaseAsync(string database, CancellationToken cancellationToken)
    {
        await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await Execute(connection, $"CREATE DATABASE {QuoteIdentifier(database)} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci",
            cancellationToken).ConfigureAwait(false);
    }

    public async Task DropDatabaseAsync(string database, CancellationToken cancellationToken)
    {
        // Only ever a database of ours (staging, scratch): a session still in it is a client whose
        // vya-backupdb was killed, and would hold the DROP up.
        await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await MySqlSwap.KillSessionsAsync(connection, database, cancellationToken).ConfigureAwait(false);
        await Execute(connection, $"DROP DATABASE IF EXISTS {QuoteIdentifier(database)}", cancellationToken).ConfigureAwait(false);
    }

    public async Task<LoadResult> RestoreAsync(string database, Stream input, RestoreOptions options, CancellationToken cancellationToken)
    {
        var serverIsMariaDb = (await ProbeFlavorAsync(cancellationToken).ConfigureAwait(false)) == "MariaDB";
        var tool = FindTool(serverIsMariaDb ? ["mariadb", "mysql"] : ["mysql", "mariadb"]);
        using var optionFile = OptionFile();
        List<string> arguments =
        [
            $"--defaults-file={optionFile.Path}",
            // --binary-mode: NUL bytes and \r\n in old dumps' strings reach the server unchanged,
            // and the client's own commands (system, source, tee, ...) are not interpreted.
            // --local-infile=0: a LOAD DATA LOCAL in a planted file cannot read the host's files.
            "--binary-mode", "--local-infile=0", "--max-allowed-packet=1G", "--default-character-set=utf8mb4",
            $"--database={database}",
        ];
        var filter = new MySqlDumpFilter(database);
        await ChildProcess.RunAsync(tool, arguments, null,
            (stdin, ct) => filter.CopyAsync(input, stdin, ct), null, cancellationToken).ConfigureAwait(false);
        return LoadResult.Unknown;
    }

    public async Task<IAsyncDisposable> LockRestoreAsync(string target, CancellationToken cancellationToken)
    {
        // A named lock lives in its session: the server releases it when this process dies.
        var name = "vya-backupdb restore " + Convert.ToHexStringLower(RestoreStaging.LockKey(target))[..32];
        var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (Convert.ToInt64(await Scalar(connection, "SELECT GET_LOCK(@db, 0)", cancellationToken, name).ConfigureAwait(false),
                System.Globalization.CultureInfo.InvariantCulture) == 1)
            {
                return connection;
            }
            var holder = await Scalar(connection,
                "SELECT CONCAT('server connection ', ID, ' from ', HOST) FROM information_schema.PROCESSLIST WHERE ID = IS_USED_LOCK(@db)",
                cancellationToken, name).ConfigureAwait(false) as string;
            throw new LockedException($"another restore into '{target}' is running on {Instance.Name}" + (holder is null ? "" : $" ({holder})"));
        }
        catch
        {
            await connection.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>Sessions in MySQL block a swap only while they hold table locks; the swap waits for them, bounded.</summary>
    public Task<int> CountBlockingSessionsAsync(string database, CancellationToken cancellationToken) => Task.FromResult(0);

    public async Task<IReadOnlyList<string>> SwapAsync(string staging, string target, SwapOptions options, CancellationToken cancellationToken)
    {
        await using var connection = await OpenAsync(cancellationToken, allowUserVariables: true).ConfigureAwait(false);
        // A swap blocked by another session's open transaction fails after a minute, target unchanged.
        await Execute(connection, "SET SESSION lock_wait_timeout = 60", cancellationToken).ConfigureAwait(false);
        return await new MySqlSwap(connection, staging, target).RunAsync(options, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Backtick quoting, backticks doubled: the server's rule for identifiers.</summary>
    public static string QuoteIdentifier(string name) => "`" + name.Replace("`", "``", StringComparison.Ordinal) + "`";

    private async Task<string> ProbeFlavorAsync(CancellationToken cancellationToken) =>
        _flavor ??= (await ProbeAsync(cancellationToken).ConfigureAwait(false)).Flavor;

    private string FindTool(string[] names) =>
        ToolLocator.Find(Instance.ToolsDir, names)
        ?? throw new OperationFailedException(
            $"none of {string.Join(", ", names)} found in {Instance.ToolsDir ?? "PATH"}; install mariadb-client or mysql-client");

    private SecretFile OptionFile()
    {
        var content = new StringBuilder("[client]\n")
            .Append("host=").Append(Instance.Host).Append('\n')
            .Append("port=").Append(Instance.Port).Append('\n')
            .Append("user=").Append(OptionValue(Instance.User)).Append('\n')
            .Append("protocol=tcp\n");
        if (Instance.Password.Resolve() is { } password)
        {
            content.Append("password=").Append(OptionValue(password)).Append('\n');
        }
        return new SecretFile("client.cnf", content.ToString());
    }

    /// <summary>
    /// Option-file value: double-quoted, backslash and quote escaped, and line breaks as \n and \r
    /// (a raw one would end the value and start a line of options of its own).
    /// </summary>
    private static string OptionValue(string value) =>
        "\"" + value.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal)
            .Replace("\n", "\\n", StringComparison.Ordinal).Replace("\r", "\\r", StringComparison.Ordinal) + "\"";

    private async Task<MySqlConnection> OpenAsync(CancellationToken cancellationToken, bool allowUserVariables = false)
    {
        var builder = new MySqlConnectionStringBuilder
        {
            Server = Instance.Host,
            Port = (uint)Instance.Port,
            UserID = Instance.User,
            Password = Instance.Password.Resolve() ?? "",
            AllowPublicKeyRetrieval = true,
            ConnectionTimeout = 15,
            Pooling = false,
            // Object bodies re-created by a swap may use @variables of their own.
            AllowUserVariables = allowUserVariables,
        };
        var connection = new MySqlConnection(builder.ConnectionString);
        try
        {
            await connection.OpenAsync(cancellationToken).ConfigureAwait(false);
            return connection;
        }
        catch (MySqlException e)
        {
            await connection.DisposeAsync().ConfigureAwait(false);
            throw new OperationFailedException(
                $"cannot connect to {Instance.Name} ({Instance.Host}:{Instance.Port}) as {Instance.User}: {e.Message}", e);
        }
    }

    private static async Task<int> CountTablesAsync(MySqlConnection connection, string database, CancellationToken cancellationToken)
    {
        var count = await Scalar(connection,
            "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = @db AND TABLE_TYPE = 'BASE TABLE'",
            cancellationToken, database).ConfigureAwait(false);
        return Convert.ToInt32(count, System.Globalization.CultureInfo.InvariantCulture);
    }

    internal static async Task<object?> Scalar(MySqlConnection connection, string sql, CancellationToken cancellationToken, string? database = null)
    {
        await using var command = new MySqlCommand(sql, connection);
        if (database is not null)
        {
            command.Parameters.AddWithValue("@db", database);
        }
        return await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false);
    }

    internal static async Task Execute(MySqlConnection connection, string sql, CancellationToken cancellationToken)
    {
        await using var command = new MySqlCommand(sql, connection);
        try
        {
            await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (MySqlException e)
        {
            throw new OperationFailedException(e.Message, e);
        }
    }
}
