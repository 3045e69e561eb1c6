using System.Globalization;
using MySqlConnector;
using Npgsql;
using VyaBackupDb.Engines;

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
        var extra = _scratch.PostgresName("vt_x_");
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
            // A membership the backup does not record is kept, and said so.
            await PgTestDb.ExecAsync("postgres", $"ALTER ROLE {app} SET work_mem = '16MB'", $"CREATE ROLE {extra} NOLOGIN", $"GRANT {extra} TO {app}");
            var replaced = await CliOkAsync(["--config", config, "restore", "--globals", "--file", globals, "--instance", "2", "--replace-existing", .. Mine(app, group)]);
            Assert.Contains("work_mem=8MB", (string[])(await PgTestDb.ScalarAsync("postgres", "SELECT rolconfig FROM pg_roles WHERE rolname = $1", app))!);
            Assert.Contains($"{app} restored, but it is still a member of {extra}, which the backup does not record", replaced.Stderr, StringComparison.Ordinal);
            Assert.DoesNotContain($"{group} restored, but", replaced.Stderr, StringComparison.Ordinal);
        }
        finally
        {
            await PgTestDb.DropIfExistsAsync(database);
            await PgTestDb.ExecAsync("postgres", $"DROP ROLE IF EXISTS {app}", $"DROP ROLE IF EXISTS {group}", $"DROP ROLE IF EXISTS {extra}");
        }
    }

    [Fact]
    public async Task Postgres_a_restores_temporary_role_caught_by_the_globals_backup_is_left_out()
    {
        var database = await _scratch.NewPostgresDatabaseAsync();
        var app = _scratch.PostgresName("vt_app_");
        // Named and made as a restore makes its load role (named after its staging database), and granted to app,
        // as a _globals backup taken while that restore ran records it.
        var loadRole = _scratch.PostgresName(RestoreStaging.StagingPrefix);
        try
        {
            await PgTestDb.ExecAsync("postgres",
                $"CREATE ROLE {app} LOGIN PASSWORD 'app-pw-1'",
                $"CREATE ROLE {loadRole} LOGIN PASSWORD 'load-pw' VALID UNTIL '-infinity'",
                $"GRANT {loadRole} TO {app}");
            var (config, backupDir) = await ConfigAsync(database);
            await CliOkAsync("--config", config, "backup", "--instance", "2");
            var globals = Only(backupDir, "_postgresql__globals.sql.zst");
            await PgTestDb.ExecAsync("postgres", $"DROP ROLE {app}", $"DROP ROLE {loadRole}");

            var dry = await CliOkAsync("--config", config, "restore", "--globals", "--file", globals, "--instance", "2", "--dry-run");
            Assert.Contains($"CREATE ROLE \"{app}\";", dry.Stdout, StringComparison.Ordinal);
            Assert.DoesNotContain(loadRole, dry.Stdout, StringComparison.Ordinal);
            Assert.Contains($"left out {loadRole}: a restore's temporary role", dry.Stderr, StringComparison.Ordinal);

            // app comes back whole, without the grant of the role that is left out.
            await CliOkAsync(["--config", config, "restore", "--globals", "--file", globals, "--instance", "2", .. Mine(app)]);
            Assert.True(await PgRoleExistsAsync(app));
            Assert.False(await PgRoleExistsAsync(loadRole));
        }
        finally
        {
            await PgTestDb.DropIfExistsAsync(database);
            await PgTestDb.ExecAsync("postgres", $"DROP ROLE IF EXISTS {app}", $"DROP ROLE IF EXISTS {loadRole}");
        }
    }

    /// <summary>
    /// Found by a tester: MariaDB gives a role to the account that creates it WITH ADMIN OPTION, and restore --globals took
    /// it back, so that no account could grant the role any more (nor restore an account holding it). Where the backup
    /// shows the instance's account holding it so, it keeps it.
    /// </summary>
    [Fact]
    public async Task MySql_a_role_the_instance_account_administered_can_still_be_granted_after_the_restore()
    {
        var database = await _scratch.NewMySqlDatabaseAsync();
        var (role, user) = (_scratch.MySqlName("vt_r_"), _scratch.MySqlName("vt_u_"));
        try
        {
            await MySqlTestDb.ExecAsync(null, $"CREATE ROLE {role}", $"CREATE USER '{user}'@'%' IDENTIFIED BY 'app-pw-5'");
            var (config, backupDir) = await ConfigAsync(database);
            await CliOkAsync("--config", config, "backup", "--instance", "1");
            await MySqlTestDb.ExecAsync(null, $"DROP ROLE {role}");

            await CliOkAsync(["--config", config, "restore", "--globals", "--file", Only(backupDir, "_mysql__globals.sql.zst"), "--instance", "1", .. Mine(role)]);

            // As on the server backed up, the instance's account grants the role.
            await MySqlTestDb.ExecAsync(null, $"GRANT {role} TO '{user}'@'%'");
        }
        finally
        {
            await MySqlTestDb.ExecAsync(null, $"DROP USER IF EXISTS '{user}'@'%'", $"DROP ROLE IF EXISTS {role}");
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

    /// <summary>A hand-made (tampered) globals file, as a backup names it, without a manifest.</summary>
    private string Plant(string dbms, string content)
    {
        var path = Path.Combine(_scratch.TempDir("planted"), $"20260101_000000_{dbms}__globals.sql");
        File.WriteAllText(path, content);
        return path;
    }

    /// <summary>A refused file: exit 1, one error line naming the offending line, and (checked by the caller) nothing changed.</summary>
    private static async Task AssertRefusedAsync(string config, string instance, string file, int line, params string[] extra)
    {
        foreach (var dryRun in new[] { true, false })
        {
            var run = await Run.CliAsync(["--config", config, "restore", "--globals", "--file", file, "--instance", instance, .. extra, .. (dryRun ? new[] { "--dry-run" } : [])]);
            Assert.True(run.ExitCode == 1, run.ToString());
            var lines = run.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
            Assert.True(lines.Length == 1, run.ToString());
            Assert.Contains($"line {line}:", lines[0], StringComparison.Ordinal);
            Assert.Contains("refused", lines[0], StringComparison.Ordinal);
            Assert.DoesNotContain("CREATE", run.Stdout, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task MySql_a_planted_statement_refuses_the_whole_file_before_anything_runs()
    {
        var database = await _scratch.NewMySqlDatabaseAsync();
        var (user, side, bystander) = (_scratch.MySqlName("vt_u_"), _scratch.MySqlName("vt_s_"), _scratch.MySqlName("vt_b_"));
        try
        {
            await MySqlTestDb.ExecAsync(database, "CREATE TABLE t (i int)", "INSERT INTO t VALUES (1)");
            await MySqlTestDb.ExecAsync(null, $"CREATE USER '{bystander}'@'%'");
            var ownHash = (string)(await MySqlTestDb.ScalarAsync(null, "SELECT Password FROM mysql.user WHERE User = @p0 AND Host = '%'", TestServers.MySqlUser))!;
            var (config, _) = await ConfigAsync(database);
            string[] planted =
            [
                $"DROP TABLE `{database}`.`t`;",
                $"CREATE TABLE `{database}`.`pwn` (i int);",
                $"GRANT USAGE ON *.* TO `{user}`@`%`; CREATE USER `{side}`@`%`;",
                $"GRANT SELECT ON `{database}`.* TO `{bystander}`@`%`;",
                $"GRANT SELECT ON `{database}`.* TO `{user}`@`%`, `{bystander}`@`%`;",
                $"SET DEFAULT ROLE NONE FOR `{bystander}`@`%`;",
                $"ALTER USER `{TestServers.MySqlUser}`@`%` WITH MAX_QUERIES_PER_HOUR 0;",
                $"SET PASSWORD FOR `{TestServers.MySqlUser}`@`%` = '{ownHash}';",
                $"GRANT SELECT ON `{database}`.* TO `{user}`@`%` /* hidden */;",
            ];
            foreach (var statement in planted)
            {
                var file = Plant("mysql", $"-- vya-backupdb: accounts and grants of planted\n-- account: `{user}`@`%`\nCREATE USER `{user}`@`%`;\n{statement}\n-- Dump completed\n");
                await AssertRefusedAsync(config, "1", file, 4);
                Assert.False(await MySqlAccountExistsAsync(user), statement);
                Assert.False(await MySqlAccountExistsAsync(side), statement);
                Assert.Equal(1L, Convert.ToInt64(await MySqlTestDb.ScalarAsync(database, "SELECT count(*) FROM t"), CultureInfo.InvariantCulture));
                Assert.Equal(0L, Convert.ToInt64(await MySqlTestDb.ScalarAsync(null,
                    "SELECT count(*) FROM information_schema.tables WHERE table_schema = @p0 AND table_name = 'pwn'", database), CultureInfo.InvariantCulture));
                Assert.Equal(0L, Convert.ToInt64(await MySqlTestDb.ScalarAsync(null, "SELECT count(*) FROM mysql.db WHERE User = @p0", bystander), CultureInfo.InvariantCulture));
            }
        }
        finally
        {
            await MySqlTestDb.ExecAsync(null, $"DROP USER IF EXISTS '{user}'@'%'", $"DROP USER IF EXISTS '{side}'@'%'", $"DROP USER IF EXISTS '{bystander}'@'%'");
        }
    }

    [Fact]
    public async Task Postgres_a_planted_statement_refuses_the_whole_file_before_anything_runs()
    {
        var database = await _scratch.NewPostgresDatabaseAsync();
        var (role, side, bystander) = (_scratch.PostgresName("vt_r_"), _scratch.PostgresName("vt_s_"), _scratch.PostgresName("vt_b_"));
        var marker = Path.Combine(_scratch.TempDir("marker"), "ran");
        try
        {
            await PgTestDb.ExecAsync("postgres", $"CREATE ROLE {bystander} NOLOGIN");
            var (config, _) = await ConfigAsync(database);
            string[] planted =
            [
                $"COPY (SELECT 1) TO PROGRAM 'touch {marker}';",
                $"ALTER DATABASE \"{database}\" RENAME TO \"{database}_x\";",
                $"GRANT ALL ON DATABASE \"{database}\" TO \"{role}\";",
                $"ALTER ROLE \"{role}\" WITH LOGIN; CREATE ROLE \"{side}\";",
                $"ALTER ROLE \"{bystander}\" WITH SUPERUSER;",
                $"GRANT \"{bystander}\" TO \"{role}\", \"{bystander}\";",
                $"ALTER ROLE \"{role}\" RENAME TO \"{side}\";",
                $"ALTER ROLE \"{TestServers.PgUser}\" WITH NOSUPERUSER;",
            ];
            foreach (var statement in planted)
            {
                var file = Plant("postgresql", $"--\n-- PostgreSQL database cluster dump\n--\nSET default_transaction_read_only = off;\nCREATE ROLE \"{role}\";\n"
                    + $"ALTER ROLE \"{role}\" WITH NOSUPERUSER INHERIT NOCREATEROLE NOCREATEDB NOLOGIN NOREPLICATION NOBYPASSRLS;\n{statement}\n"
                    + "--\n-- PostgreSQL database cluster dump complete\n--\n\n-- PostgreSQL database dump complete\n");
                await AssertRefusedAsync(config, "2", file, 7, "--replace-existing");
                Assert.False(File.Exists(marker), statement);
                Assert.True(await PgTestDb.ExistsAsync(database), statement);
                Assert.False(await PgRoleExistsAsync(role), statement);
                Assert.False(await PgRoleExistsAsync(side), statement);
                Assert.False((bool)(await PgTestDb.ScalarAsync("postgres", "SELECT rolsuper FROM pg_roles WHERE rolname = $1", bystander))!, statement);
                Assert.True((bool)(await PgTestDb.ScalarAsync("postgres", "SELECT rolsuper FROM pg_roles WHERE rolname = $1", TestServers.PgUser))!, statement);
            }
        }
        finally
        {
            await PgTestDb.ExecAsync("postgres", $"DROP ROLE IF EXISTS {role}", $"DROP ROLE IF EXISTS {side}", $"DROP ROLE IF EXISTS {bystander}");
            await PgTestDb.DropIfExistsAsync(database + "_x");
        }
    }

    [Fact]
    public async Task MySql_replacing_a_role_leaves_the_accounts_that_hold_it_alone()
    {
        var database = await _scratch.NewMySqlDatabaseAsync();
        var (role, inner, holder) = (_scratch.MySqlName("vt_r_"), _scratch.MySqlName("vt_i_"), _scratch.MySqlName("vt_h_"));
        try
        {
            await MySqlTestDb.ExecAsync(database, "CREATE TABLE items (id int PRIMARY KEY)");
            // The role holds another role: MariaDB lists that role's grants with the role's (they are left out).
            await MySqlTestDb.ExecAsync(null,
                $"CREATE ROLE {inner}", $"GRANT DELETE ON `{database}`.* TO {inner}",
                $"CREATE ROLE {role}", $"GRANT SELECT ON `{database}`.* TO {role}", $"GRANT {inner} TO {role}",
                $"CREATE USER '{holder}'@'%'", $"GRANT {role} TO '{holder}'@'%'", $"SET DEFAULT ROLE {role} FOR '{holder}'@'%'");
            var (config, backupDir) = await ConfigAsync(database);
            await CliOkAsync("--config", config, "backup", "--instance", "1");
            var globals = Only(backupDir, "_mysql__globals.sql.zst");

            // The role drifted: a privilege the backup does not have. So did the role it holds, which is not restored here.
            await MySqlTestDb.ExecAsync(null, $"GRANT INSERT ON `{database}`.* TO {role}", $"GRANT UPDATE ON `{database}`.* TO {inner}");
            await CliOkAsync(["--config", config, "restore", "--globals", "--file", globals, "--instance", "1", "--replace-existing", .. Mine(role)]);
            var roleGrants = await GrantsAsync($"`{role}`");
            Assert.Contains(roleGrants, g => g.Contains("GRANT SELECT ON", StringComparison.Ordinal));
            Assert.Contains($"GRANT `{inner}` TO `{role}`", roleGrants);
            Assert.DoesNotContain(roleGrants, g => g.Contains("INSERT", StringComparison.Ordinal));
            Assert.Contains($"GRANT UPDATE, DELETE ON `{database}`.* TO `{inner}`", await GrantsAsync($"`{inner}`"));
            // The holder (not named by --account) still has the role, as its default.
            var holderGrants = await GrantsAsync($"'{holder}'@'%'");
            Assert.Contains($"GRANT `{role}` TO `{holder}`@`%`", holderGrants);
            Assert.Contains($"SET DEFAULT ROLE `{role}` FOR `{holder}`@`%`", holderGrants);

            // Created afresh, the role is granted to the restoring account as the backup records it: its creator, WITH ADMIN
            // OPTION (MariaDB's CREATE ROLE gives it so), once, not twice.
            await MySqlTestDb.ExecAsync(null, $"DROP USER '{holder}'@'%'", $"DROP ROLE {role}");
            await CliOkAsync(["--config", config, "restore", "--globals", "--file", globals, "--instance", "1", .. Mine(role, holder)]);
            Assert.Contains($"GRANT `{role}` TO `{holder}`@`%`", await GrantsAsync($"'{holder}'@'%'"));
            Assert.Equal(1L, Convert.ToInt64(await MySqlTestDb.ScalarAsync(null,
                "SELECT count(*) FROM mysql.roles_mapping WHERE Role = @p0 AND User = @p1 AND Admin_option = 'Y'", role, TestServers.MySqlUser),
                CultureInfo.InvariantCulture));
        }
        finally
        {
            await MySqlTestDb.ExecAsync(null, $"DROP USER IF EXISTS '{holder}'@'%'", $"DROP ROLE IF EXISTS {role}", $"DROP ROLE IF EXISTS {inner}");
        }
    }

    [Fact]
    public async Task MySql_a_replaced_role_whose_recorded_grants_fail_gets_the_grants_it_had_back()
    {
        var database = await _scratch.NewMySqlDatabaseAsync();
        var (role, inner) = (_scratch.MySqlName("vt_r_"), _scratch.MySqlName("vt_i_"));
        try
        {
            // The role holds a role with a table grant: MariaDB's REVOKE ALL fails for it unless that role is revoked first (a tester).
            await MySqlTestDb.ExecAsync(database, "CREATE TABLE items (id int PRIMARY KEY)", "CREATE TABLE gone (id int PRIMARY KEY)");
            await MySqlTestDb.ExecAsync(null, $"CREATE ROLE {inner}", $"GRANT INSERT ON `{database}`.`items` TO {inner}",
                $"CREATE ROLE {role}", $"GRANT SELECT ON `{database}`.`items` TO {role}", $"GRANT {inner} TO {role}");
            var (config, backupDir) = await ConfigAsync(database);
            await CliOkAsync("--config", config, "backup", "--instance", "1");
            var globals = Only(backupDir, "_mysql__globals.sql.zst");
            var recorded = await GrantsAsync($"`{role}`");
            await MySqlTestDb.ExecAsync(null, $"GRANT DELETE ON `{database}`.* TO {role}");
            await CliOkAsync(["--config", config, "restore", "--globals", "--file", globals, "--instance", "1", "--replace-existing", .. Mine(role)]);
            Assert.Equal(recorded.Order(StringComparer.Ordinal), (await GrantsAsync($"`{role}`")).Order(StringComparer.Ordinal));

            // A grant on a table needs the table: dropped after the backup, the recorded grant fails, and
            // the role gets back what it had, but for a grant on a table dropped since (named).
            await MySqlTestDb.ExecAsync(null, $"GRANT UPDATE ON `{database}`.* TO {role} WITH GRANT OPTION", $"GRANT SELECT ON `{database}`.`gone` TO {role}");
            await MySqlTestDb.ExecAsync(database, "DROP TABLE gone", "DROP TABLE items");
            var before = await GrantsAsync($"`{role}`");

            var replaced = await Run.CliAsync(["--config", config, "restore", "--globals", "--file", globals, "--instance", "1", "--replace-existing", .. Mine(role)]);

            Assert.True(replaced.ExitCode == 1, replaced.ToString());
            Assert.Contains("putting it back as it was, these failed:", replaced.Stderr, StringComparison.Ordinal);
            Assert.Contains($"GRANT SELECT ON `{database}`.`gone` TO `{role}`", replaced.Stderr, StringComparison.Ordinal);
            Assert.Equal(before.Where(g => !(g.Contains("`gone`", StringComparison.Ordinal) || g.Contains("`items`", StringComparison.Ordinal))
                || !g.EndsWith($"TO `{role}`", StringComparison.Ordinal)).Order(StringComparer.Ordinal), (await GrantsAsync($"`{role}`")).Order(StringComparer.Ordinal));
        }
        finally
        {
            await MySqlTestDb.ExecAsync(null, $"DROP ROLE IF EXISTS {role}", $"DROP ROLE IF EXISTS {inner}");
        }
    }

    [Fact]
    public async Task An_account_whose_grants_fail_is_not_left_half_made_or_changed_and_comes_back_whole_once_the_cause_is_fixed()
    {
        var (myDatabase, pgDatabase) = (await _scratch.NewMySqlDatabaseAsync(), await _scratch.NewPostgresDatabaseAsync());
        var (user, app, group) = (_scratch.MySqlName("vt_u_"), _scratch.PostgresName("vt_app_"), _scratch.PostgresName("vt_grp_"));
        try
        {
            // MySQL: a grant on one table needs the table; PostgreSQL: a membership needs the group.
            await MySqlTestDb.ExecAsync(myDatabase, "CREATE TABLE items (id int PRIMARY KEY)");
            await MySqlTestDb.ExecAsync(null, $"CREATE USER '{user}'@'%'", $"GRANT SELECT ON `{myDatabase}`.`items` TO '{user}'@'%'");
            await PgTestDb.ExecAsync("postgres", $"CREATE ROLE {group} NOLOGIN", $"CREATE ROLE {app} LOGIN", $"GRANT {group} TO {app}");
            var (config, backupDir) = await ConfigAsync(myDatabase);
            var (pgConfig, pgBackupDir) = await ConfigAsync(pgDatabase);
            await CliOkAsync("--config", config, "backup", "--instance", "1");
            await CliOkAsync("--config", pgConfig, "backup", "--instance", "2");
            var (myGlobals, pgGlobals) = (Only(backupDir, "_mysql__globals.sql.zst"), Only(pgBackupDir, "_postgresql__globals.sql.zst"));
            await MySqlTestDb.ExecAsync(null, $"DROP USER '{user}'@'%'");
            await MySqlTestDb.ExecAsync(myDatabase, "DROP TABLE items");
            await PgTestDb.ExecAsync("postgres", $"DROP ROLE {app}", $"DROP ROLE {group}");

            var myFailed = await Run.CliAsync(["--config", config, "restore", "--globals", "--file", myGlobals, "--instance", "1", .. Mine(user)]);
            var pgFailed = await Run.CliAsync(["--config", pgConfig, "restore", "--globals", "--file", pgGlobals, "--instance", "2", .. Mine(app)]);
            Assert.True(myFailed.ExitCode == 1, myFailed.ToString());
            Assert.True(pgFailed.ExitCode == 1, pgFailed.ToString());
            Assert.False(await MySqlAccountExistsAsync(user));
            Assert.False(await PgRoleExistsAsync(app));

            await MySqlTestDb.ExecAsync(myDatabase, "CREATE TABLE items (id int PRIMARY KEY)");
            await PgTestDb.ExecAsync("postgres", $"CREATE ROLE {group} NOLOGIN");
            var myAgain = await CliOkAsync(["--config", config, "restore", "--globals", "--file", myGlobals, "--instance", "1", .. Mine(user)]);
            var pgAgain = await CliOkAsync(["--config", pgConfig, "restore", "--globals", "--file", pgGlobals, "--instance", "2", .. Mine(app)]);
            Assert.Contains("1 restored, 0 skipped", myAgain.Stdout, StringComparison.Ordinal);
            Assert.Contains("1 restored, 0 skipped", pgAgain.Stdout, StringComparison.Ordinal);
            Assert.Contains(await GrantsAsync($"'{user}'@'%'"), g => g.Contains("`items`", StringComparison.Ordinal));
            Assert.Equal(1L, Convert.ToInt64(await PgTestDb.ScalarAsync("postgres",
                "SELECT count(*) FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.roleid JOIN pg_roles u ON u.oid = m.member "
                + "WHERE r.rolname = $1 AND u.rolname = $2", group, app), CultureInfo.InvariantCulture));

            // Replacing an existing account whose grants fail again leaves it exactly as it was: its password, grants, attributes.
            await MySqlTestDb.ExecAsync(null, $"ALTER USER '{user}'@'%' IDENTIFIED BY 'vt-kept-pw-7'");
            await MySqlTestDb.ExecAsync(myDatabase, "DROP TABLE items");
            await PgTestDb.ExecAsync("postgres", $"ALTER ROLE {app} CREATEDB", $"DROP ROLE {group}");
            var myReplace = await Run.CliAsync(["--config", config, "restore", "--globals", "--file", myGlobals, "--instance", "1", "--replace-existing", .. Mine(user)]);
            var pgReplace = await Run.CliAsync(["--config", pgConfig, "restore", "--globals", "--file", pgGlobals, "--instance", "2", "--replace-existing", .. Mine(app)]);
            Assert.True(myReplace.ExitCode == 1, myReplace.ToString());
            Assert.True(pgReplace.ExitCode == 1, pgReplace.ToString());
            Assert.True((bool)(await PgTestDb.ScalarAsync("postgres", "SELECT rolcreatedb FROM pg_roles WHERE rolname = $1", app))!);
            await OpenAsync(new MySqlConnection(new MySqlConnectionStringBuilder(TestServers.MySqlConnectionString()) { UserID = user, Password = "vt-kept-pw-7" }.ConnectionString));
            Assert.Contains(await GrantsAsync($"'{user}'@'%'"), g => g.Contains("`items`", StringComparison.Ordinal));
            // The old account waited under another name while the recorded one was tried: no such copy is left.
            Assert.Equal(0L, Convert.ToInt64(await MySqlTestDb.ScalarAsync(null,
                "SELECT count(*) FROM mysql.user WHERE User <> @p0 AND authentication_string = (SELECT authentication_string FROM mysql.user WHERE User = @p0)", user),
                CultureInfo.InvariantCulture));
            Assert.Contains("(it is left as it was)", myReplace.Stderr, StringComparison.Ordinal);
        }
        finally
        {
            await MySqlTestDb.ExecAsync(null, $"DROP USER IF EXISTS '{user}'@'%'");
            await PgTestDb.ExecAsync("postgres", $"DROP ROLE IF EXISTS {app}", $"DROP ROLE IF EXISTS {group}");
        }
    }

    [Fact]
    public async Task MySql_an_account_named_with_its_host_in_other_case_is_the_existing_one_and_is_kept()
    {
        var database = await _scratch.NewMySqlDatabaseAsync();
        var user = _scratch.MySqlName("vt_u_");
        try
        {
            await MySqlTestDb.ExecAsync(null, $"CREATE USER '{user}'@'localhost' IDENTIFIED BY 'vt-kept-pw-8'", $"GRANT SELECT ON `{database}`.* TO '{user}'@'localhost'");
            var (config, _) = await ConfigAsync(database);
            var file = Plant("mysql", $"-- vya-backupdb: accounts and grants of planted\n-- account: `{user}`@`LocalHost`\nCREATE USER `{user}`@`LocalHost` ACCOUNT LOCK;\n"
                + $"GRANT USAGE ON *.* TO `{user}`@`LocalHost`;\n-- Dump completed\n");
            var run = await CliOkAsync(["--config", config, "restore", "--globals", "--file", file, "--instance", "1", .. Mine(user)]);
            Assert.Contains("skipped", run.Stderr, StringComparison.Ordinal);
            Assert.Contains(await GrantsAsync($"'{user}'@'localhost'"), g => g.Contains($"`{database}`", StringComparison.Ordinal));
        }
        finally
        {
            await MySqlTestDb.ExecAsync(null, $"DROP USER IF EXISTS '{user}'@'localhost'");
        }
    }

    [Fact]
    public async Task The_servers_own_accounts_are_refused_and_an_existing_superuser_is_left_unchanged()
    {
        var (myDatabase, pgDatabase) = (await _scratch.NewMySqlDatabaseAsync(), await _scratch.NewPostgresDatabaseAsync());
        var (builtIn, super) = ($"mysql.{_scratch.MySqlName("vt_")}", _scratch.PostgresName("vt_su_"));
        try
        {
            // An account of the built-in mysql.* kind that this test owns: the refusal is by name, not by what the server has.
            await MySqlTestDb.ExecAsync(null, $"CREATE USER `{builtIn}`@`localhost` ACCOUNT LOCK");
            await PgTestDb.ExecAsync("postgres", $"CREATE ROLE {super} SUPERUSER NOLOGIN");
            var (config, _) = await ConfigAsync(myDatabase);
            var (pgConfig, _) = await ConfigAsync(pgDatabase);
            foreach (var account in new[] { "`root`@`LocalHost`", $"`{builtIn}`@`localhost`" })
            {
                var file = Plant("mysql", $"-- vya-backupdb: accounts and grants of planted\n-- account: {account}\nCREATE USER {account};\nGRANT USAGE ON *.* TO {account};\n-- Dump completed\n");
                await AssertRefusedAsync(config, "1", file, 2, "--replace-existing");
            }
            Assert.Contains("ACCOUNT LOCK", (string)(await MySqlTestDb.ScalarAsync(null, $"SHOW CREATE USER `{builtIn}`@`localhost`"))!, StringComparison.Ordinal);
            const string PgHead = "--\n-- PostgreSQL database cluster dump\n--\n";
            const string PgTail = "--\n-- PostgreSQL database cluster dump complete\n--\n\n-- PostgreSQL database dump complete\n";
            await AssertRefusedAsync(pgConfig, "2", Plant("postgresql", $"{PgHead}CREATE ROLE \"pg_vt_x\";\n{PgTail}"), 4, "--replace-existing");

            var run = await CliOkAsync("--config", pgConfig, "restore", "--globals", "--replace-existing", "--instance", "2", "--file", Plant("postgresql",
                $"{PgHead}CREATE ROLE \"{super}\";\nALTER ROLE \"{super}\" WITH NOSUPERUSER INHERIT NOCREATEROLE NOCREATEDB LOGIN PASSWORD 'vt-pw-9' NOREPLICATION NOBYPASSRLS;\n{PgTail}"));
            Assert.Contains($"{super} is a superuser on this server: left unchanged", run.Stderr, StringComparison.Ordinal);
            Assert.True((bool)(await PgTestDb.ScalarAsync("postgres", "SELECT rolsuper AND NOT rolcanlogin FROM pg_roles WHERE rolname = $1", super))!);
        }
        finally
        {
            await MySqlTestDb.ExecAsync(null, $"DROP USER IF EXISTS `{builtIn}`@`localhost`");
            await PgTestDb.ExecAsync("postgres", $"DROP ROLE IF EXISTS {super}");
        }
    }

    [Fact]
    public async Task MySql_replacing_users_sets_aside_one_at_a_time_and_a_copy_an_interrupted_run_left_is_named()
    {
        var database = await _scratch.NewMySqlDatabaseAsync();
        // Their own host: other tests' accounts, set aside or not, do not count here.
        var (host, users) = (_scratch.MySqlName("vt_h_"), Enumerable.Range(0, 30).Select(_ => _scratch.MySqlName("vt_u_")).ToList());
        try
        {
            await MySqlTestDb.ExecAsync(null, [.. users.Select(u => $"CREATE USER `{u}`@`{host}` IDENTIFIED BY 'vt-old-pw'")]);
            var (config, _) = await ConfigAsync(database);
            var file = Plant("mysql", "-- vya-backupdb: accounts and grants of planted\n"
                + string.Concat(users.Select(u => $"-- account: `{u}`@`{host}`\nCREATE USER `{u}`@`{host}` ACCOUNT LOCK;\nGRANT USAGE ON *.* TO `{u}`@`{host}`;\n"))
                + "-- Dump completed\n");
            async Task<long> AsideAsync() => Convert.ToInt64(await MySqlTestDb.ScalarAsync(null,
                "SELECT count(*) FROM mysql.user WHERE Host = @p0 AND User LIKE 'vya\\_old\\_%'", host), CultureInfo.InvariantCulture);
            var restore = CliOkAsync(["--config", config, "restore", "--globals", "--replace-existing", "--file", file, "--instance", "1"]);
            // What a kill at any moment would leave set aside (old password, grants, unlocked): one account at most.
            var most = 0L;
            while (!restore.IsCompleted)
            {
                most = Math.Max(most, await AsideAsync());
            }
            await restore;
            Assert.InRange(most, 0L, 1L);
            Assert.Equal(0L, await AsideAsync());

            // As a killed run leaves it: the first user renamed aside, the recorded one not created yet.
            var hash = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes($"`{users[0]}`@`{host}`")))[..16];
            await MySqlTestDb.ExecAsync(null, $"ALTER USER `{users[0]}`@`{host}` IDENTIFIED BY 'vt-old-pw'", $"RENAME USER `{users[0]}`@`{host}` TO `vya_old_{hash}`@`{host}`");
            var dry = await CliOkAsync(["--config", config, "restore", "--globals", "--file", file, "--instance", "1", "--dry-run", .. Mine(users[0])]);
            var warning = Assert.Single(dry.Stderr.Split('\n'), l => l.Contains("vya_old_", StringComparison.Ordinal));
            Assert.Contains($"`vya_old_{hash}`@`{host}` (was `{users[0]}`@`{host}`)", warning, StringComparison.Ordinal);
            // The next run restoring that account puts it back as it was (its old password), then skips it as existing.
            var next = await CliOkAsync(["--config", config, "restore", "--globals", "--file", file, "--instance", "1", .. Mine(users[0])]);
            Assert.Contains("put back", next.Stderr, StringComparison.Ordinal);
            Assert.Contains("0 restored, 1 skipped", next.Stdout, StringComparison.Ordinal);
            Assert.Equal(0L, await AsideAsync());
            Assert.Equal("vt-old-pw-check", await MySqlTestDb.ScalarAsync(null,
                "SELECT IF(authentication_string = PASSWORD('vt-old-pw'), 'vt-old-pw-check', authentication_string) FROM mysql.user WHERE User = @p0 AND Host = @p1", users[0], host));
        }
        finally
        {
            await MySqlTestDb.ExecAsync(null, [.. users.Select(u => $"DROP USER IF EXISTS `{u}`@`{host}`"),
                $"DROP USER IF EXISTS `vya_old_{Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes($"`{users[0]}`@`{host}`")))[..16]}`@`{host}`"]);
        }
    }

    [Fact]
    public async Task An_account_name_that_matches_nothing_in_the_backup_is_a_usage_error()
    {
        var database = await _scratch.NewPostgresDatabaseAsync();
        var (config, backupDir) = await ConfigAsync(database);
        await CliOkAsync("--config", config, "backup", "--instance", "2");
        var run = await Run.CliAsync("--config", config, "restore", "--globals", "--file", Only(backupDir, "_postgresql__globals.sql.zst"), "--instance", "2",
            "--account", TestServers.PgUser, "--account", "vt_no_such_role");
        Assert.True(run.ExitCode == 2, run.ToString());
        // One error line (a warning may come before it: another test's restore running meanwhile leaves out its load role).
        var line = Assert.Single(Cli.ErrorLines(run));
        Assert.Contains("vt_no_such_role", line, StringComparison.Ordinal);
        Assert.DoesNotContain(TestServers.PgUser, line, StringComparison.Ordinal);
    }

    private static async Task<List<string>> GrantsAsync(string account)
    {
        await using var connection = await MySqlTestDb.OpenAsync();
        await using var command = new MySqlCommand($"SHOW GRANTS FOR {account}", connection);
        await using var reader = await command.ExecuteReaderAsync();
        var grants = new List<string>();
        while (await reader.ReadAsync())
        {
            grants.Add(reader.GetString(0));
        }
        return grants;
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
