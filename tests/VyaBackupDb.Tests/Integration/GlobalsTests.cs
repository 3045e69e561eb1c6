using System.Globalization;
using MySqlConnector;
using Npgsql;

namespace VyaBackupDb.Tests.Integration;

/// <summary>
/// Users, roles and grants (the _globals item): backed up with the instance, dropped, restored with
/// restore --globals, and an application user reads its table after database + globals restores.
/// </summary>
[Trait("Category", "Integration")]
public sealed class GlobalsTests : IAsyncLifetime
{
    private readonly Scratch _scratch = new();

    public Task InitializeAsync() => _scratch.InitializeAsync();

    public Task DisposeAsync() => _scratch.DisposeAsync();

    private async Task<(string Config, string BackupDir)> ConfigAsync(string database, bool passwords = true)
    {
        var dir = _scratch.TempDir("globals");
        var backupDir = Path.Combine(dir, "backups");
        Directory.CreateDirectory(backupDir);
        var path = Path.Combine(dir, "config.yaml");
        await File.WriteAllTextAsync(path, string.Create(CultureInfo.InvariantCulture, $"""
            backup_dir: {backupDir}
            timeout_seconds: 300
            instances:
              - id: 1
                name: it-mysql
                dbms: mysql
                host: '{TestServers.MySqlHost}'
                port: {TestServers.MySqlPort}
                user: '{TestServers.MySqlUser}'
                password: '{TestServers.MySqlPassword}'
                include: ['{database}']
                globals_passwords: {(passwords ? "true" : "false")}
              - id: 2
                name: it-pg
                dbms: postgresql
                host: '{TestServers.PgHost}'
                port: {TestServers.PgPort}
                user: '{TestServers.PgUser}'
                password: '{TestServers.PgPassword}'
                include: ['{database}']
                owners: true
                globals_passwords: {(passwords ? "true" : "false")}

            """));
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        }
        return (path, backupDir);
    }

    private static string Only(string backupDir, string suffix) =>
        Path.Combine(backupDir, Assert.Single(Ops.DataFilesUnder(backupDir), f => f.EndsWith(suffix, StringComparison.Ordinal)));

    /// <summary>
    /// --account for each: the shared test servers hold other tests' roles, which a full restore
    /// would bring back after their tests dropped them. The restoring account is named too, to
    /// show that it is left alone even when asked for.
    /// </summary>
    private static string[] Mine(params string[] names) => [.. names.SelectMany(n => new[] { "--account", n })];

    private static async Task<ProcessResult> CliOkAsync(params string[] arguments)
    {
        var run = await Run.CliAsync(arguments);
        Assert.True(run.ExitCode == 0, run.ToString());
        return run;
    }

    [Fact]
    public async Task Postgres_roles_grants_and_membership_come_back_and_the_app_reads_its_table()
    {
        var database = await _scratch.NewPostgresDatabaseAsync();
        var app = _scratch.PostgresName("vt_app_");
        var group = _scratch.PostgresName("vt_grp_");
        try
        {
            await PgTestDb.ExecAsync("postgres",
                $"CREATE ROLE {group} NOLOGIN",
                $"CREATE ROLE {app} LOGIN PASSWORD 'app-pw-1'",
                $"GRANT {group} TO {app}",
                $"ALTER ROLE {app} SET work_mem = '8MB'");
            await PgTestDb.ExecAsync(database,
                "CREATE TABLE items (id int PRIMARY KEY)", "INSERT INTO items VALUES (1), (2)",
                $"GRANT SELECT ON items TO {group}");
            var (config, backupDir) = await ConfigAsync(database);
            await CliOkAsync("--config", config, "backup", "--instance", "2");
            var globals = Only(backupDir, "_postgresql__globals.sql.zst");
            var dump = Only(backupDir, $"_postgresql_{database}.sql.zst");

            await PgTestDb.DropIfExistsAsync(database);
            await PgTestDb.ExecAsync("postgres", $"DROP ROLE {app}", $"DROP ROLE {group}");

            // --dry-run prints the statements and changes nothing.
            var dry = await CliOkAsync("--config", config, "restore", "--globals", "--file", globals, "--instance", "2", "--dry-run");
            Assert.Contains($"CREATE ROLE \"{app}\";", dry.Stdout, StringComparison.Ordinal);
            Assert.False(await PgRoleExistsAsync(app));

            var run = await CliOkAsync(["--config", config, "restore", "--globals", "--file", globals, "--instance", "2", .. Mine(app, group, TestServers.PgUser)]);
            Assert.Contains($"{TestServers.PgUser} is the account this restore logs in as", run.Stderr, StringComparison.Ordinal);
            Assert.True(await PgRoleExistsAsync(app));
            Assert.True(await PgRoleExistsAsync(group));
            Assert.Equal(1L, Convert.ToInt64(await PgTestDb.ScalarAsync("postgres",
                "SELECT count(*) FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.roleid JOIN pg_roles u ON u.oid = m.member "
                + "WHERE r.rolname = $1 AND u.rolname = $2", group, app), CultureInfo.InvariantCulture));
            Assert.Contains("work_mem=8MB", (string[])(await PgTestDb.ScalarAsync("postgres", "SELECT rolconfig FROM pg_roles WHERE rolname = $1", app))!);
            // The restoring account is untouched: still a superuser.
            Assert.True((bool)(await PgTestDb.ScalarAsync("postgres", "SELECT rolsuper FROM pg_roles WHERE rolname = $1", TestServers.PgUser))!);

            await CliOkAsync("--config", config, "restore", "--file", dump, "--instance", "2");
            var builder = new NpgsqlConnectionStringBuilder(TestServers.PgConnectionString(database)) { Username = app, Password = "app-pw-1" };
            await using (var connection = new NpgsqlConnection(builder.ConnectionString))
            {
                await connection.OpenAsync();
                await using var command = new NpgsqlCommand("SELECT count(*) FROM items", connection);
                Assert.Equal(2L, await command.ExecuteScalarAsync());
            }

            // Again: they exist now, and are skipped by name.
            var again = await CliOkAsync(["--config", config, "restore", "--globals", "--file", globals, "--instance", "2", .. Mine(app, group, TestServers.PgUser)]);
            Assert.Contains("skipped", again.Stderr, StringComparison.Ordinal);
            Assert.Contains(app, again.Stderr, StringComparison.Ordinal);

            // --replace-existing sets the recorded settings again on a role that drifted.
            await PgTestDb.ExecAsync("postgres", $"ALTER ROLE {app} SET work_mem = '16MB'");
            await CliOkAsync(["--config", config, "restore", "--globals", "--file", globals, "--instance", "2", "--replace-existing", .. Mine(app, group)]);
            Assert.Contains("work_mem=8MB", (string[])(await PgTestDb.ScalarAsync("postgres", "SELECT rolconfig FROM pg_roles WHERE rolname = $1", app))!);
        }
        finally
        {
            await PgTestDb.DropIfExistsAsync(database);
            await PgTestDb.ExecAsync("postgres", $"DROP ROLE IF EXISTS {app}", $"DROP ROLE IF EXISTS {group}");
        }
    }

    [Fact]
    public async Task MySql_accounts_roles_and_grants_come_back_and_the_app_reads_its_table()
    {
        var database = await _scratch.NewMySqlDatabaseAsync();
        var user = _scratch.MySqlName("vt_u_");
        var role = _scratch.MySqlName("vt_r_");
        try
        {
            await MySqlTestDb.ExecAsync(database, "CREATE TABLE items (id int PRIMARY KEY)", "INSERT INTO items VALUES (1), (2), (3)");
            await MySqlTestDb.ExecAsync(null,
                $"CREATE ROLE {role}",
                $"GRANT SELECT ON `{database}`.* TO {role}",
                $"CREATE USER '{user}'@'%' IDENTIFIED BY 'app-pw-2'",
                $"GRANT {role} TO '{user}'@'%'",
                $"SET DEFAULT ROLE {role} FOR '{user}'@'%'");
            var (config, backupDir) = await ConfigAsync(database);
            await CliOkAsync("--config", config, "backup", "--instance", "1");
            var globals = Only(backupDir, "_mysql__globals.sql.zst");
            var dump = Only(backupDir, $"_mysql_{database}.sql.zst");

            await MySqlTestDb.DropIfExistsAsync(database);
            await MySqlTestDb.ExecAsync(null, $"DROP USER '{user}'@'%'", $"DROP ROLE {role}");

            var dry = await CliOkAsync("--config", config, "restore", "--globals", "--file", globals, "--instance", "1", "--dry-run");
            Assert.Contains($"CREATE ROLE `{role}`", dry.Stdout, StringComparison.Ordinal);
            Assert.False(await MySqlAccountExistsAsync(user));

            var run = await CliOkAsync(["--config", config, "restore", "--globals", "--file", globals, "--instance", "1", .. Mine(user, role, TestServers.MySqlUser)]);
            Assert.Contains("is the account this restore logs in as", run.Stderr, StringComparison.Ordinal);
            Assert.True(await MySqlAccountExistsAsync(user));
            Assert.True(await MySqlAccountExistsAsync(role));

            await CliOkAsync("--config", config, "restore", "--file", dump, "--instance", "1");
            var builder = new MySqlConnectionStringBuilder(TestServers.MySqlConnectionString(database)) { UserID = user, Password = "app-pw-2" };
            await using (var connection = new MySqlConnection(builder.ConnectionString))
            {
                await connection.OpenAsync();
                await using var command = new MySqlCommand("SELECT count(*) FROM items", connection);
                Assert.Equal(3L, Convert.ToInt64(await command.ExecuteScalarAsync(), CultureInfo.InvariantCulture));
            }

            var again = await CliOkAsync(["--config", config, "restore", "--globals", "--file", globals, "--instance", "1", .. Mine(user, role, TestServers.MySqlUser)]);
            Assert.Contains("skipped", again.Stderr, StringComparison.Ordinal);
            Assert.Contains(user, again.Stderr, StringComparison.Ordinal);
        }
        finally
        {
            await MySqlTestDb.ExecAsync(null, $"DROP USER IF EXISTS '{user}'@'%'", $"DROP ROLE IF EXISTS {role}");
        }
    }

    [Fact]
    public async Task Without_their_passwords_restored_accounts_cannot_log_in_until_a_password_is_set()
    {
        var (myDatabase, pgDatabase) = (await _scratch.NewMySqlDatabaseAsync(), await _scratch.NewPostgresDatabaseAsync());
        var (user, app) = (_scratch.MySqlName("vt_u_"), _scratch.PostgresName("vt_app_"));
        try
        {
            await MySqlTestDb.ExecAsync(null, $"CREATE USER '{user}'@'%' IDENTIFIED BY 'app-pw-5'", $"GRANT SELECT ON `{myDatabase}`.* TO '{user}'@'%'");
            await PgTestDb.ExecAsync("postgres", $"CREATE ROLE {app} LOGIN PASSWORD 'app-pw-6'");
            var (config, backupDir) = await ConfigAsync(myDatabase, passwords: false);
            var (pgConfig, pgBackupDir) = await ConfigAsync(pgDatabase, passwords: false);
            await CliOkAsync("--config", config, "backup", "--instance", "1");
            await CliOkAsync("--config", pgConfig, "backup", "--instance", "2");
            await MySqlTestDb.ExecAsync(null, $"DROP USER '{user}'@'%'");
            await PgTestDb.ExecAsync("postgres", $"DROP ROLE {app}");

            await CliOkAsync(["--config", config, "restore", "--globals", "--file", Only(backupDir, "_mysql__globals.sql.zst"), "--instance", "1", .. Mine(user)]);
            await CliOkAsync(["--config", pgConfig, "restore", "--globals", "--file", Only(pgBackupDir, "_postgresql__globals.sql.zst"), "--instance", "2", .. Mine(app)]);

            // MySQL: locked (an account without its password would take an empty one); PostgreSQL: no password, no login.
            var myLogin = new MySqlConnectionStringBuilder(TestServers.MySqlConnectionString(myDatabase)) { UserID = user, Password = "" };
            await Assert.ThrowsAsync<MySqlException>(() => OpenAsync(new MySqlConnection(myLogin.ConnectionString)));
            var pgLogin = new NpgsqlConnectionStringBuilder(TestServers.PgConnectionString(pgDatabase)) { Username = app, Password = "app-pw-6" };
            Assert.Equal(PostgresErrorCodes.InvalidPassword,
                (await Assert.ThrowsAsync<PostgresException>(() => OpenAsync(new NpgsqlConnection(pgLogin.ConnectionString)))).SqlState);

            // What the runbook says to do then.
            await MySqlTestDb.ExecAsync(null, $"ALTER USER '{user}'@'%' IDENTIFIED BY 'new-pw-5' ACCOUNT UNLOCK");
            await PgTestDb.ExecAsync("postgres", $"ALTER ROLE {app} PASSWORD 'new-pw-6'");
            await OpenAsync(new MySqlConnection(new MySqlConnectionStringBuilder(myLogin.ConnectionString) { Password = "new-pw-5" }.ConnectionString));
            await OpenAsync(new NpgsqlConnection(new NpgsqlConnectionStringBuilder(pgLogin.ConnectionString) { Password = "new-pw-6" }.ConnectionString));
        }
        finally
        {
            await MySqlTestDb.ExecAsync(null, $"DROP USER IF EXISTS '{user}'@'%'");
            await PgTestDb.ExecAsync("postgres", $"DROP ROLE IF EXISTS {app}");
        }
    }

    private static async Task OpenAsync(System.Data.Common.DbConnection connection)
    {
        await using (connection)
        {
            await connection.OpenAsync();
        }
    }

    private static async Task<bool> PgRoleExistsAsync(string name) =>
        Convert.ToInt64(await PgTestDb.ScalarAsync("postgres", "SELECT count(*) FROM pg_roles WHERE rolname = $1", name), CultureInfo.InvariantCulture) == 1;

    private static async Task<bool> MySqlAccountExistsAsync(string name) =>
        Convert.ToInt64(await MySqlTestDb.ScalarAsync(null, "SELECT count(*) FROM mysql.user WHERE User = @p0", name), CultureInfo.InvariantCulture) == 1;
}
