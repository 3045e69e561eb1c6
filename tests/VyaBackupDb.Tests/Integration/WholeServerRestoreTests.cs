using System.Globalization;
using MySqlConnector;
using Npgsql;

namespace VyaBackupDb.Tests.Integration;

/// <summary>
/// A whole server onto a new machine, as the runbook does it: the first test server's accounts,
/// roles, grants and a database are backed up with the CLI, then restored with the CLI onto the
/// second, fresh server (the config's instance pointed at it), and the application logs in there
/// with its password and can do what it was granted, and nothing else.
/// </summary>
[Trait("Category", "Integration")]
[Collection(nameof(RunbookTests))]
public sealed class WholeServerRestoreTests : IAsyncLifetime
{
    private readonly Scratch _scratch = new();

    public Task InitializeAsync() => _scratch.InitializeAsync();

    public Task DisposeAsync() => _scratch.DisposeAsync();

    [SkippableFact]
    public async Task A_PostgreSQL_server_comes_back_on_a_fresh_server_with_its_roles_owners_and_grants()
    {
        await TestServers.RequirePostgresAsync();
        await TestServers.RequireSecondPostgresAsync();
        using var second = await SecondServers.LockAsync();
        await SecondServers.ResetPostgresAsync();
        var database = _scratch.PostgresName();
        var (owner, group, app) = (_scratch.PostgresName("vt_own_"), _scratch.PostgresName("vt_grp_"), _scratch.PostgresName("vt_app_"));
        try
        {
            await PgTestDb.ExecAsync("postgres",
                $"CREATE ROLE {owner} NOLOGIN",
                $"CREATE ROLE {group} NOLOGIN",
                $"CREATE ROLE {app} LOGIN PASSWORD 'app-pw-3'",
                $"GRANT {group} TO {app}",
                $"ALTER ROLE {app} SET work_mem = '8MB'",
                $"CREATE DATABASE {database} OWNER {owner} TEMPLATE template0");
            await PgTestDb.ExecAsync(database,
                "CREATE TABLE items (id int PRIMARY KEY)", "INSERT INTO items VALUES (1), (2)",
                "CREATE TABLE secret (id int)", "INSERT INTO secret VALUES (1)",
                $"ALTER TABLE items OWNER TO {owner}", $"ALTER TABLE secret OWNER TO {owner}",
                $"GRANT SELECT ON items TO {group}");
            var (oldServer, newServer, backupDir) = await ConfigsAsync(database);
            await CliOkAsync("--config", oldServer, "backup", "--instance", "2");

            // The runbook's order on PostgreSQL: the roles first, so that owners and grants have someone to point at.
            await CliOkAsync("--config", newServer, "restore", "--globals", "--file", Only(backupDir, "_postgresql__globals.sql.zst"), "--instance", "2");
            await CliOkAsync("--config", newServer, "restore", "--file", Only(backupDir, $"_postgresql_{database}.sql.zst"), "--instance", "2");

            var login = new NpgsqlConnectionStringBuilder(TestServers.PgConnectionString(database, TestServers.Pg2Port)) { Username = app, Password = "app-pw-3" };
            await using (var connection = new NpgsqlConnection(login.ConnectionString))
            {
                await connection.OpenAsync();
                Assert.Equal(2L, await ScalarAsync(connection, "SELECT count(*) FROM items"));
                Assert.Equal("8MB", await ScalarAsync(connection, "SHOW work_mem"));
                Assert.Equal(PostgresErrorCodes.InsufficientPrivilege,
                    (await Assert.ThrowsAsync<PostgresException>(() => ScalarAsync(connection, "SELECT count(*) FROM secret"))).SqlState);
                Assert.Equal(PostgresErrorCodes.InsufficientPrivilege,
                    (await Assert.ThrowsAsync<PostgresException>(() => ScalarAsync(connection, "INSERT INTO items VALUES (3)"))).SqlState);
            }
            await using (var connection = new NpgsqlConnection(TestServers.PgConnectionString(database, TestServers.Pg2Port)))
            {
                await connection.OpenAsync();
                Assert.Equal(owner, await ScalarAsync(connection, "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = current_database()"));
                Assert.Equal($"{owner} {owner}", await ScalarAsync(connection,
                    "SELECT string_agg(tableowner, ' ' ORDER BY tablename) FROM pg_tables WHERE schemaname = 'public'"));
            }
        }
        finally
        {
            await SecondServers.ResetPostgresAsync();
            await PgTestDb.DropIfExistsAsync(database);
            await PgTestDb.ExecAsync("postgres", $"DROP ROLE IF EXISTS {app}", $"DROP ROLE IF EXISTS {group}", $"DROP ROLE IF EXISTS {owner}");
        }
    }

    [SkippableFact]
    public async Task A_MariaDB_server_comes_back_on_a_fresh_server_with_its_accounts_roles_and_grants()
    {
        await TestServers.RequireMySqlAsync();
        await TestServers.RequireSecondMySqlAsync();
        using var second = await SecondServers.LockAsync();
        await SecondServers.ResetMySqlAsync();
        var database = await _scratch.NewMySqlDatabaseAsync();
        var (role, user) = (_scratch.MySqlName("vt_r_"), _scratch.MySqlName("vt_u_"));
        try
        {
            await MySqlTestDb.ExecAsync(database,
                "CREATE TABLE items (id int PRIMARY KEY)", "INSERT INTO items VALUES (1), (2), (3)",
                "CREATE TABLE secret (id int)", "INSERT INTO secret VALUES (1)");
            await MySqlTestDb.ExecAsync(null,
                $"CREATE ROLE {role}",
                $"GRANT SELECT ON `{database}`.* TO {role}",
                $"CREATE USER '{user}'@'%' IDENTIFIED BY 'app-pw-4'",
                $"GRANT {role} TO '{user}'@'%'",
                $"SET DEFAULT ROLE {role} FOR '{user}'@'%'",
                $"GRANT SELECT, INSERT ON `{database}`.items TO '{user}'@'%'");
            // A view whose definer is the application: restored before its definer exists, it works once the account is back
            // (with the account's own grants: MariaDB does not use a definer's default role).
            await MySqlTestDb.ExecAsync(database, $"CREATE DEFINER = '{user}'@'%' SQL SECURITY DEFINER VIEW item_ids AS SELECT id FROM items");
            var (oldServer, newServer, backupDir) = await ConfigsAsync(database);
            await CliOkAsync("--config", oldServer, "backup", "--instance", "1");

            // The runbook's order on MySQL/MariaDB: the databases first, as a grant on one table needs its table.
            await CliOkAsync("--config", newServer, "restore", "--file", Only(backupDir, $"_mysql_{database}.sql.zst"), "--instance", "1");
            // --account: the shared test server holds other tests' accounts meanwhile, whose grants name databases not restored here.
            await CliOkAsync("--config", newServer, "restore", "--globals", "--file", Only(backupDir, "_mysql__globals.sql.zst"), "--instance", "1",
                "--account", user, "--account", role);

            var login = new MySqlConnectionStringBuilder(TestServers.MySqlConnectionString(database, TestServers.MySql2Port)) { UserID = user, Password = "app-pw-4" };
            await using var connection = new MySqlConnection(login.ConnectionString);
            await connection.OpenAsync();
            Assert.Equal(3L, Convert.ToInt64(await ScalarAsync(connection, "SELECT count(*) FROM items"), CultureInfo.InvariantCulture));
            Assert.Equal(1L, Convert.ToInt64(await ScalarAsync(connection, "SELECT count(*) FROM secret"), CultureInfo.InvariantCulture));
            Assert.Equal(3L, Convert.ToInt64(await ScalarAsync(connection, "SELECT count(*) FROM item_ids"), CultureInfo.InvariantCulture));
            await ScalarAsync(connection, "INSERT INTO items VALUES (4)");
            Assert.Equal(MySqlErrorCode.TableAccessDenied,
                (await Assert.ThrowsAsync<MySqlException>(() => ScalarAsync(connection, "INSERT INTO secret VALUES (2)"))).ErrorCode);
            Assert.Equal(MySqlErrorCode.TableAccessDenied,
                (await Assert.ThrowsAsync<MySqlException>(() => ScalarAsync(connection, "DROP TABLE items"))).ErrorCode);
        }
        finally
        {
            await MySqlTestDb.ExecAsync(null, $"DROP USER IF EXISTS '{user}'@'%'", $"DROP ROLE IF EXISTS {role}");
            await SecondServers.ResetMySqlAsync();
        }
    }

    /// <summary>
    /// The old server's config and the new one's: the same instances and backup directory, the
    /// instances pointed at the second servers (as the runbook says: point the config at the new host).
    /// </summary>
    private async Task<(string OldServer, string NewServer, string BackupDir)> ConfigsAsync(string database)
    {
        var dir = _scratch.TempDir("whole-server");
        var backupDir = Path.Combine(dir, "backups");
        Directory.CreateDirectory(backupDir);
        async Task<string> WriteAsync(string file, int mySqlPort, int pgPort)
        {
            var path = Path.Combine(dir, file);
            await File.WriteAllTextAsync(path, string.Create(CultureInfo.InvariantCulture, $"""
                backup_dir: {backupDir}
                timeout_seconds: 300
                instances:
                  - id: 1
                    name: it-mysql
                    dbms: mysql
                    host: '{TestServers.MySqlHost}'
                    port: {mySqlPort}
                    user: '{TestServers.MySqlUser}'
                    password: '{TestServers.MySqlPassword}'
                    include: ['{database}']
                    globals_passwords: true
                  - id: 2
                    name: it-pg
                    dbms: postgresql
                    host: '{TestServers.PgHost}'
                    port: {pgPort}
                    user: '{TestServers.PgUser}'
                    password: '{TestServers.PgPassword}'
                    include: ['{database}']
                    owners: true
                    globals_passwords: true

                """));
            if (!OperatingSystem.IsWindows())
            {
                File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
            }
            return path;
        }
        return (await WriteAsync("old.yaml", TestServers.MySqlPort, TestServers.PgPort),
            await WriteAsync("new.yaml", TestServers.MySql2Port, TestServers.Pg2Port), backupDir);
    }

    private static string Only(string backupDir, string suffix) =>
        Path.Combine(backupDir, Assert.Single(Ops.DataFilesUnder(backupDir), f => f.EndsWith(suffix, StringComparison.Ordinal)));

    private static async Task CliOkAsync(params string[] arguments)
    {
        var run = await Run.CliAsync(arguments);
        Assert.True(run.ExitCode == 0, run.ToString());
    }

    private static async Task<object?> ScalarAsync(NpgsqlConnection connection, string sql)
    {
        await using var command = new NpgsqlCommand(sql, connection);
        return await command.ExecuteScalarAsync();
    }

    private static async Task<object?> ScalarAsync(MySqlConnection connection, string sql)
    {
        await using var command = new MySqlCommand(sql, connection);
        return await command.ExecuteScalarAsync();
    }
}
