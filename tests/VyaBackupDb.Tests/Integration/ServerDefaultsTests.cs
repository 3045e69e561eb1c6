using System.Globalization;
using MySqlConnector;

namespace VyaBackupDb.Tests.Integration;

/// <summary>
/// A server whose defaults are not the usual ones: its sessions start with them, ours too unless
/// we set what we rely on. The second MariaDB server's defaults are changed for the test (alone,
/// in the runbook's collection, under the second servers' lock) and put back after.
/// </summary>
[Trait("Category", "Integration")]
[Collection(nameof(RunbookTests))]
public sealed class ServerDefaultsTests : IAsyncLifetime
{
    private readonly Scratch _scratch = new();

    public Task InitializeAsync() => _scratch.InitializeAsync();

    public Task DisposeAsync() => _scratch.DisposeAsync();

    /// <summary>
    /// autocommit 0 (a tester: a parallel restore's loads were never committed, so the restored
    /// tables were empty after the swap, the old rows gone, exit 0) and sql_select_limit 2
    /// (listings cut: a database or a table missing; mariadb-dump wrote 2 rows of each table and
    /// left tables out, and the backup said OK).
    /// </summary>
    [SkippableFact]
    public async Task MySql_backups_and_restores_are_whole_on_a_server_defaulting_to_no_autocommit_and_a_select_limit()
    {
        await TestServers.RequireSecondMySqlAsync();
        using var second = await SecondServers.LockAsync();
        var (source, other, target) = (_scratch.MySqlName(), _scratch.MySqlName(), _scratch.MySqlName());
        var dir = _scratch.TempDir("server-defaults");
        var backups = Path.Combine(dir, "backups");
        var config = await ConfigAsync(dir, source, other);
        try
        {
            await ExecAsync(null, $"CREATE DATABASE `{source}`", $"CREATE DATABASE `{other}`", $"CREATE DATABASE `{target}`");
            foreach (var table in new[] { "a", "b", "c" })
            {
                await ExecAsync(source, $"CREATE TABLE {table} (id int PRIMARY KEY)", $"INSERT INTO {table} VALUES (1), (2), (3)");
            }
            await ExecAsync(other, "CREATE TABLE t (id int PRIMARY KEY)", "INSERT INTO t VALUES (1), (2), (3)");
            await ExecAsync(target, "CREATE TABLE old (id int PRIMARY KEY)", "INSERT INTO old VALUES (1)");
            try
            {
                await ExecAsync(null, "SET GLOBAL autocommit = 0");
                foreach (var instance in new[] { "1", "2" })
                {
                    var backup = await Run.CliAsync("--config", config, "backup", "--instance", instance);
                    Assert.True(backup.ExitCode == 0, backup.ToString());
                    await RestoreAsync(instance);
                }
                // The dump tool cannot set its own limit: backups are refused, naming it; restores set theirs.
                await ExecAsync(null, "SET GLOBAL sql_select_limit = 2");
                var limited = await Run.CliAsync("--config", config, "backup", "--instance", "2");
                Assert.True(limited.ExitCode == 3, limited.ToString()); // the database failed, the server's accounts (no dump tool) did not
                Assert.Contains("sql_select_limit = 2", limited.Stdout, StringComparison.Ordinal);
                foreach (var instance in new[] { "1", "2" })
                {
                    await RestoreAsync(instance);
                }
            }
            finally
            {
                await ExecAsync(null, "SET GLOBAL autocommit = 1", "SET GLOBAL sql_select_limit = DEFAULT");
            }
            Assert.Single(Ops.DataFilesUnder(Path.Combine(backups, "mysql-1")), f => f.Contains($"_mysql_{other}.", StringComparison.Ordinal));
        }
        finally
        {
            await ExecAsync(null, $"DROP DATABASE IF EXISTS `{source}`", $"DROP DATABASE IF EXISTS `{other}`", $"DROP DATABASE IF EXISTS `{target}`");
        }

        async Task RestoreAsync(string instance)
        {
            var file = Assert.Single(Ops.DataFilesUnder(Path.Combine(backups, $"mysql-{instance}")), f => f.Contains($"_mysql_{source}.", StringComparison.Ordinal));
            var restore = await Run.CliAsync("--config", config, "restore", "--file", file, "--instance", instance, "--target", target, "--force");
            Assert.True(restore.ExitCode == 0, restore.ToString());
            await CountsAsync(instance);
        }

        async Task CountsAsync(string instance)
        {
            foreach (var table in new[] { "a", "b", "c" })
            {
                // A fresh session (the server's defaults meanwhile): only committed rows, counted in one row.
                Assert.True(3L == Convert.ToInt64(await ScalarAsync(target, $"SELECT count(*) FROM {table}"), CultureInfo.InvariantCulture),
                    $"instance {instance}: table {table} of the restored database does not hold the backup's 3 rows");
            }
        }
    }

    /// <summary>
    /// A target server whose max_allowed_packet is below a row of the backup closes the load's
    /// session: the driver said "Failed to read the result set", the client "Server has gone away"
    /// (a tester); the message now names the setting and its value.
    /// </summary>
    [SkippableFact]
    public async Task MySql_a_restore_onto_a_server_whose_max_allowed_packet_is_below_a_row_names_it()
    {
        await TestServers.RequireSecondMySqlAsync();
        using var second = await SecondServers.LockAsync();
        var (source, target) = (_scratch.MySqlName(), _scratch.MySqlName());
        var dir = _scratch.TempDir("server-defaults");
        var config = await ConfigAsync(dir, source);
        try
        {
            await ExecAsync(null, $"CREATE DATABASE `{source}`");
            await ExecAsync(source, "CREATE TABLE t (id int PRIMARY KEY, b longblob)", "INSERT INTO t VALUES (1, REPEAT('x', 3000000)), (2, 'small')");
            var failures = new List<ProcessResult>();
            foreach (var instance in new[] { "1", "2" })
            {
                var backup = await Run.CliAsync("--config", config, "backup", "--instance", instance, "--database", source);
                Assert.True(backup.ExitCode == 0, backup.ToString());
            }
            try
            {
                await ExecAsync(null, "SET GLOBAL max_allowed_packet = 1048576");
                foreach (var instance in new[] { "1", "2" })
                {
                    var file = Assert.Single(Ops.DataFilesUnder(Path.Combine(dir, "backups", $"mysql-{instance}")));
                    failures.Add(await Run.CliAsync("--config", config, "restore", "--file", file, "--instance", instance, "--target", target));
                }
            }
            finally
            {
                await ExecAsync(null, "SET GLOBAL max_allowed_packet = DEFAULT");
            }
            Assert.All(failures, run =>
            {
                Assert.True(run.ExitCode == 1, run.ToString());
                // The dump engine's INSERT is refused before the client holds it (tr105); the parallel engine's row by the server.
                Assert.Matches(@"(over its max_allowed_packet, 1048576 bytes here|longer than the server's max_allowed_packet \(1048576 bytes\))", run.Stderr);
            });
        }
        finally
        {
            await ExecAsync(null, $"DROP DATABASE IF EXISTS `{source}`", $"DROP DATABASE IF EXISTS `{target}`");
        }
    }

    /// <summary>
    /// A testers' round on the source server's defaults: init_connect (run for accounts without
    /// SUPER) setting sql_select_limit had mariadb-dump write 2 rows and 2 columns of a table, the
    /// backup and verify saying OK; ANSI_QUOTES in the server's sql_mode had SHOW GRANTS name
    /// everything in double quotes, and every backup failed saying the account lacked SELECT.
    /// </summary>
    [SkippableFact]
    public async Task MySql_backups_see_init_connect_and_read_grants_under_ANSI_QUOTES()
    {
        await TestServers.RequireSecondMySqlAsync();
        using var second = await SecondServers.LockAsync();
        var (source, account) = (_scratch.MySqlName(), _scratch.MySqlName("vt_bk_"));
        var dir = _scratch.TempDir("server-defaults");
        var config = await ConfigAsync(dir, source);
        await File.AppendAllTextAsync(config, string.Create(CultureInfo.InvariantCulture, $"""
              - id: 3
                dbms: mysql
                host: '{TestServers.MySqlHost}'
                port: {TestServers.MySql2Port}
                user: '{account}'
                password: 'vt-bk-pw'

            """));
        var sqlMode = (string)(await ScalarAsync("mysql", "SELECT @@global.sql_mode"))!;
        try
        {
            await ExecAsync(null, $"CREATE DATABASE `{source}`", $"CREATE USER '{account}'@'%' IDENTIFIED BY 'vt-bk-pw'",
                $"GRANT SELECT, SHOW VIEW, TRIGGER, EVENT, LOCK TABLES ON `{source}`.* TO '{account}'@'%'", $"GRANT SELECT ON mysql.proc TO '{account}'@'%'");
            await ExecAsync(source, "CREATE TABLE t (id int PRIMARY KEY, a int, b int, c int)", "INSERT INTO t VALUES (1, 1, 1, 1), (2, 2, 2, 2), (3, 3, 3, 3)");
            ProcessResult limited, quoted, globals;
            try
            {
                await ExecAsync(null, "SET GLOBAL init_connect = 'SET sql_select_limit = 2'");
                limited = await Run.CliAsync("--config", config, "backup", "--instance", "3", "--database", source);
                await ExecAsync(null, "SET GLOBAL init_connect = ''", $"SET GLOBAL sql_mode = CONCAT(@@global.sql_mode, ',ANSI_QUOTES')");
                quoted = await Run.CliAsync("--config", config, "backup", "--instance", "3", "--database", source);
                globals = await Run.CliAsync("--config", config, "backup", "--instance", "1", "--database", "_globals");
            }
            finally
            {
                await ExecAsync(null, "SET GLOBAL init_connect = ''", $"SET GLOBAL sql_mode = '{sqlMode}'");
            }
            Assert.True(limited.ExitCode == 1, limited.ToString());
            Assert.Contains("sql_select_limit = 2", limited.Stdout, StringComparison.Ordinal);
            Assert.True(quoted.ExitCode == 0, quoted.ToString());
            Assert.True(globals.ExitCode == 0, globals.ToString());
            var file = Path.Combine(dir, "backups", "mysql-3", Assert.Single(Ops.DataFilesUnder(Path.Combine(dir, "backups", "mysql-3"))));
            var restore = await Run.CliAsync("--config", config, "restore", "--file", file, "--instance", "1", "--target", _scratch.MySqlName());
            Assert.True(restore.ExitCode == 0, restore.ToString());
            var dryRun = await Run.CliAsync("--config", config, "restore", "--globals", "--dry-run", "--file",
                Assert.Single(Ops.DataFilesUnder(Path.Combine(dir, "backups", "mysql-1"))), "--instance", "1");
            Assert.True(dryRun.ExitCode == 0, dryRun.ToString());
            Assert.Contains($"`{account}`@`%`", dryRun.Stdout + dryRun.Stderr, StringComparison.Ordinal); // read back, in backquotes
        }
        finally
        {
            await ExecAsync(null, $"DROP DATABASE IF EXISTS `{source}`", $"DROP USER IF EXISTS '{account}'@'%'");
        }
    }

    /// <summary>
    /// A testers' round on server settings: EMPTY_STRING_IS_NULL in the server's sql_mode crashed the parallel backup
    /// and restore with a .NET stack trace (a catalog query's '' read as NULL), and sql_quote_show_create = OFF had
    /// SHOW GRANTS name everything unquoted, so both engines refused saying the account lacked privileges it held.
    /// </summary>
    [SkippableFact]
    public async Task MySql_backups_and_restores_work_under_EMPTY_STRING_IS_NULL_and_sql_quote_show_create_off()
    {
        await TestServers.RequireSecondMySqlAsync();
        using var second = await SecondServers.LockAsync();
        var source = _scratch.MySqlName();
        var dir = _scratch.TempDir("server-defaults");
        var config = await ConfigAsync(dir, source);
        var targets = new List<string>();
        var sqlMode = (string)(await ScalarAsync("mysql", "SELECT @@global.sql_mode"))!;
        try
        {
            await ExecAsync(null, $"CREATE DATABASE `{source}`");
            await ExecAsync(source, "CREATE TABLE t (id int PRIMARY KEY, v varchar(10) NULL, w varchar(10) NOT NULL DEFAULT '')",
                "INSERT INTO t VALUES (1, '', ''), (2, NULL, 'x'), (3, 'y', '')");
            foreach (var setting in new[] { "SET GLOBAL sql_mode = CONCAT(@@global.sql_mode, ',EMPTY_STRING_IS_NULL')", "SET GLOBAL sql_quote_show_create = 0" })
            {
                try
                {
                    await ExecAsync(null, setting);
                    foreach (var instance in new[] { "1", "2" })
                    {
                        var backups = Path.Combine(dir, "backups", $"mysql-{instance}");
                        if (Directory.Exists(backups))
                        {
                            Directory.Delete(backups, recursive: true);
                        }
                        var backup = await Run.CliAsync("--config", config, "backup", "--instance", instance, "--database", source);
                        Assert.True(backup.ExitCode == 0, $"{setting}: {backup}");
                        var target = _scratch.MySqlName();
                        targets.Add(target);
                        var restore = await Run.CliAsync("--config", config, "restore", "--file", Assert.Single(Ops.DataFilesUnder(backups)),
                            "--instance", instance, "--target", target);
                        Assert.True(restore.ExitCode == 0, $"{setting}: {restore}");
                        Assert.Equal("1:[] 2:NULL 3:[y]|1:[] 2:[x] 3:[]", await ScalarAsync(target,
                            "SELECT CONCAT(GROUP_CONCAT(id, ':', IFNULL(CONCAT('[', v, ']'), 'NULL') ORDER BY id SEPARATOR ' '), '|', "
                            + "GROUP_CONCAT(id, ':', CONCAT('[', w, ']') ORDER BY id SEPARATOR ' ')) FROM t"));
                    }
                }
                finally
                {
                    await ExecAsync(null, $"SET GLOBAL sql_mode = '{sqlMode}'", "SET GLOBAL sql_quote_show_create = 1");
                }
            }
        }
        finally
        {
            await ExecAsync(null, [$"DROP DATABASE IF EXISTS `{source}`", .. targets.Select(t => $"DROP DATABASE IF EXISTS `{t}`")]);
        }
    }

    /// <summary>
    /// A tester: engine: parallel reads every value through a CAST, which the server gives as NULL (a warning only) when
    /// it is longer than max_allowed_packet: a blob over 16 MiB at the default was backed up as NULL, and the backup,
    /// verify and restore said OK. The backup fails now, naming the setting.
    /// </summary>
    [SkippableFact]
    public async Task MySql_a_parallel_backup_of_a_value_over_max_allowed_packet_fails_naming_it()
    {
        await TestServers.RequireSecondMySqlAsync();
        using var second = await SecondServers.LockAsync();
        var source = _scratch.MySqlName();
        var dir = _scratch.TempDir("server-defaults");
        var config = await ConfigAsync(dir, source);
        try
        {
            await ExecAsync(null, $"CREATE DATABASE `{source}`");
            await ExecAsync(source, "CREATE TABLE t (id int PRIMARY KEY, b longblob, c longtext CHARACTER SET latin1)",
                "INSERT INTO t VALUES (1, REPEAT('x', 3000000), 'small'), (2, 'small', REPEAT('y', 3000000))");
            ProcessResult backup;
            try
            {
                await ExecAsync(null, "SET GLOBAL max_allowed_packet = 2097152");
                backup = await Run.CliAsync("--config", config, "backup", "--instance", "2", "--database", source);
            }
            finally
            {
                await ExecAsync(null, "SET GLOBAL max_allowed_packet = DEFAULT");
            }
            Assert.True(backup.ExitCode == 1, backup.ToString());
            Assert.Contains("is larger than the server's max_allowed_packet (2097152 bytes)", backup.ToString(), StringComparison.Ordinal);
            Assert.Empty(Ops.DataFilesUnder(Path.Combine(dir, "backups")));
        }
        finally
        {
            await ExecAsync(null, $"DROP DATABASE IF EXISTS `{source}`");
        }
    }

    /// <summary>
    /// A tester: a PostgreSQL role whose name is not UTF-8 (created from a LATIN1 database; it owns nothing) failed the
    /// backup of every UTF-8 database, both engines, though pg_dump itself does not mind: the check that no object
    /// changed under the backup read every role's name as text. A database so named failed every backup and restore
    /// of the instance (the listing of databases). Both are read as bytes now; the database is named in a warning.
    /// </summary>
    [SkippableFact]
    public async Task Postgres_backups_and_restores_are_not_failed_by_a_role_or_database_whose_name_is_not_utf8()
    {
        await TestServers.RequireSecondPostgresAsync();
        using var second = await SecondServers.LockAsync();
        var (latin1, source) = (_scratch.PostgresName(), _scratch.PostgresName());
        var role = "vt_r\u00e9_" + Guid.NewGuid().ToString("N")[..6];
        var badName = "vt_d\u00e9_" + Guid.NewGuid().ToString("N")[..6];
        var dir = _scratch.TempDir("server-defaults");
        var config = Path.Combine(dir, "config.yaml");
        await File.WriteAllTextAsync(config, string.Create(CultureInfo.InvariantCulture, $$"""
            backup_dir: {{Path.Combine(dir, "backups")}}
            instances:
              - {id: 1, dbms: postgresql, host: '{{TestServers.PgHost}}', port: {{TestServers.Pg2Port}}, user: '{{TestServers.PgUser}}', password: '{{TestServers.PgPassword}}', globals: false, include: ['{{source}}']}
              - {id: 2, dbms: postgresql, host: '{{TestServers.PgHost}}', port: {{TestServers.Pg2Port}}, user: '{{TestServers.PgUser}}', password: '{{TestServers.PgPassword}}', globals: false, include: ['{{source}}'], engine: parallel}

            """));
        await PgExecAsync("postgres", $"CREATE DATABASE {latin1} ENCODING 'LATIN1' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0", $"CREATE DATABASE {source}");
        try
        {
            await PgExecAsync(source, "CREATE TABLE t (id int PRIMARY KEY)", "INSERT INTO t VALUES (1), (2)");
            // Sent as UTF-8 to a LATIN1 database: stored in LATIN1, é as the byte 0xE9.
            await PgExecAsync(latin1, $"CREATE ROLE \"{role}\" NOLOGIN", $"CREATE DATABASE \"{badName}\"");
            try
            {
                foreach (var instance in new[] { "1", "2" })
                {
                    var backup = await Run.CliAsync("--config", config, "backup", "--instance", instance);
                    Assert.True(backup.ExitCode == 0, backup.ToString());
                    Assert.Contains($"database '{badName.Replace("\u00e9", "\\xE9", StringComparison.Ordinal)}' has a name that is not UTF-8",
                        backup.Stderr, StringComparison.Ordinal);
                    var file = Assert.Single(Ops.DataFilesUnder(Path.Combine(dir, "backups", $"postgresql-{instance}")));
                    var restore = await Run.CliAsync("--config", config, "restore", "--file", file, "--instance", instance, "--target", _scratch.PostgresName());
                    Assert.True(restore.ExitCode == 0, restore.ToString());
                }
            }
            finally
            {
                await PgExecAsync(latin1, $"DROP ROLE \"{role}\"", $"DROP DATABASE \"{badName}\"");
            }
        }
        finally
        {
            await PgExecAsync("postgres", $"DROP DATABASE IF EXISTS {latin1}", $"DROP DATABASE IF EXISTS {source}");
        }
    }

    private static async Task PgExecAsync(string database, params string[] statements)
    {
        await using var connection = new Npgsql.NpgsqlConnection(TestServers.PgConnectionString(database, TestServers.Pg2Port));
        await connection.OpenAsync();
        foreach (var statement in statements)
        {
            await using var command = new Npgsql.NpgsqlCommand(statement, connection);
            await command.ExecuteNonQueryAsync();
        }
    }

    /// <summary>Instance 1 (engine: dump) and 2 (engine: parallel) on the second MariaDB server, backing up <paramref name="databases"/>.</summary>
    private static async Task<string> ConfigAsync(string dir, params string[] databases)
    {
        var config = Path.Combine(dir, "config.yaml");
        var include = string.Join(", ", databases.Select(d => $"'{d}'"));
        await File.WriteAllTextAsync(config, string.Create(CultureInfo.InvariantCulture, $"""
            backup_dir: {Path.Combine(dir, "backups")}
            instances:
              - id: 1
                dbms: mysql
                host: '{TestServers.MySqlHost}'
                port: {TestServers.MySql2Port}
                user: '{TestServers.MySqlUser}'
                password: '{TestServers.MySqlPassword}'
                include: [{include}]
              - id: 2
                dbms: mysql
                host: '{TestServers.MySqlHost}'
                port: {TestServers.MySql2Port}
                user: '{TestServers.MySqlUser}'
                password: '{TestServers.MySqlPassword}'
                include: [{include}]
                engine: parallel
                jobs: 2

            """));
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(config, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        }
        return config;
    }

    private static async Task ExecAsync(string? database, params string[] statements)
    {
        await using var connection = new MySqlConnection(TestServers.MySqlConnectionString(database, TestServers.MySql2Port));
        await connection.OpenAsync();
        foreach (var statement in statements)
        {
            await using var command = new MySqlCommand(statement, connection);
            await command.ExecuteNonQueryAsync();
        }
    }

    private static async Task<object?> ScalarAsync(string database, string sql)
    {
        await using var connection = new MySqlConnection(TestServers.MySqlConnectionString(database, TestServers.MySql2Port));
        await connection.OpenAsync();
        await using var command = new MySqlCommand(sql, connection);
        return await command.ExecuteScalarAsync();
    }
}
