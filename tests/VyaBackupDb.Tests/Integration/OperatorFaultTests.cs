using System.Globalization;
using System.Text.RegularExpressions;
using VyaBackupDb.Catalog;
using VyaBackupDb.Config;
using static VyaBackupDb.Tests.Integration.FabricatedBackups;

namespace VyaBackupDb.Tests.Integration;

/// <summary>
/// Faults an operator meets (issue 12), injected on the real servers through the real CLI: each
/// test checks the exit code, one clear line about the fault, that earlier backups stay byte for
/// byte, and that the run leaves nothing in its own TMPDIR.
/// </summary>
[Trait("Category", "Integration")]
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class OperatorFaultTests : IAsyncLifetime
{
    private const int Success = 0;
    private const int Failed = 1;
    private const int PartialFailure = 3;

    private readonly Scratch _scratch = new();
    private string _tmp = "";

    public Task InitializeAsync()
    {
        _tmp = _scratch.TempDir("tmpdir");
        return _scratch.InitializeAsync();
    }

    public Task DisposeAsync() => _scratch.DisposeAsync();

    /// <summary>The CLI with its own TMPDIR, so that anything it leaves there is seen.</summary>
    private Task<ProcessResult> CliAsync(params string[] arguments) =>
        Run.CliWithEnvAsync(new Dictionary<string, string> { ["TMPDIR"] = _tmp }, arguments);

    private void AssertNothingLeftInTmp() =>
        Assert.True(Directory.GetFileSystemEntries(_tmp).Length == 0,
            $"left in TMPDIR: {string.Join(", ", Directory.GetFileSystemEntries(_tmp).Select(Path.GetFileName))}");

    private static List<string> StderrLines(ProcessResult run) => [.. run.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries)];

    /// <summary>Asserts that exactly one stderr line mentions <paramref name="what"/>, and returns it.</summary>
    private static string OneLineAbout(ProcessResult run, string what)
    {
        var lines = StderrLines(run).Where(l => l.Contains(what, StringComparison.Ordinal)).ToList();
        Assert.True(lines.Count == 1, $"expected one stderr line about {what}:\n{run}");
        return lines[0];
    }

    /// <summary>
    /// A config: instance 1 = MariaDB (it-mysql), 2 = PostgreSQL (it-pg), each with its own
    /// storage: and retention: lines; storage 'vault' is SFTP on a port where nothing listens.
    /// </summary>
    private async Task<string> ConfigAsync(
        string backupDir, string mysqlDatabase, string pgDatabase, string mysqlExtra = "", string pgExtra = "", string topLevel = "")
    {
        var path = Path.Combine(_scratch.TempDir("cfg"), "config.yaml");
        var yaml = string.Create(CultureInfo.InvariantCulture, $"""
            backup_dir: '{backupDir}'
            compression: zstd
            timeout_seconds: 300
            storage:
              - name: vault
                type: sftp
                host: 127.0.0.1
                port: {Ops.DeadPort()}
                user: nobody
                password: unused-sftp-pw
                host_fingerprint: SHA256:T1xBiwSzij0MU+GuugxdpklHowP/H4tDAN5It89LR20
                path: backups
            {topLevel}
            instances:
              - id: 1
                name: it-mysql
                dbms: mysql
                host: {TestServers.MySqlHost}
                port: {TestServers.MySqlPort}
                user: {TestServers.MySqlUser}
                password: '{TestServers.MySqlPassword}'
                include: ['{mysqlDatabase}']
                globals: false
                {mysqlExtra}
              - id: 2
                name: it-pg
                dbms: postgresql
                host: {TestServers.PgHost}
                port: {TestServers.PgPort}
                user: {TestServers.PgUser}
                password: '{TestServers.PgPassword}'
                include: ['{pgDatabase}']
                globals: false
                {pgExtra}

            """);
        await File.WriteAllTextAsync(path, yaml);
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        }
        return path;
    }

    [SkippableFact]
    public async Task A_destination_that_is_down_fails_only_what_needs_it()
    {
        await TestServers.RequireMySqlAsync();
        await TestServers.RequirePostgresAsync();
        var mysqlDb = await _scratch.NewMySqlDatabaseAsync();
        await MySqlTestDb.ExecAsync(mysqlDb, "CREATE TABLE t (id INT PRIMARY KEY)", "INSERT INTO t VALUES (1), (2)");
        var pgDb = await _scratch.NewPostgresDatabaseAsync();
        var backupDir = _scratch.TempDir("backups");
        var mysql = TestServers.MySql(name: "it-mysql");
        var pg = TestServers.Postgres(name: "it-pg");
        Create(backupDir, mysql, mysqlDb, Utc("20260101_010000"));
        var oldestPg = Create(backupDir, pg, pgDb, Utc("20260101_010000"));
        Create(backupDir, pg, pgDb, Utc("20260102_010000"));
        // The dead SFTP server is instance 1's first destination: the dump goes to the next one.
        var config = await ConfigAsync(backupDir, mysqlDb, pgDb,
            mysqlExtra: "storage: [vault, local]\n    retention: {keep_last: 5}", pgExtra: "retention: {keep_last: 2}");
        var before = Snapshot(backupDir);

        var backup = await CliAsync("backup", "--all", "--config", config);

        Assert.True(backup.ExitCode == PartialFailure, backup.ToString());
        Assert.Contains("not copied to 'vault'", OneLineAbout(backup, "vault"), StringComparison.Ordinal);
        Assert.DoesNotContain("Exception", backup.Stderr, StringComparison.Ordinal);
        var local = Ops.DataFilesUnder(backupDir);
        var newMysql = Assert.Single(local, f => f.StartsWith("it-mysql/", StringComparison.Ordinal) && !before.ContainsKey(f));
        Assert.Single(local, f => f.StartsWith("it-pg/", StringComparison.Ordinal) && !before.ContainsKey(f));
        foreach (var (file, sha) in before)
        {
            Assert.Equal(sha, Ops.Sha256(Path.Combine(backupDir, file)));
        }

        var list = await CliAsync("list", "--config", config);

        Assert.True(list.ExitCode == Failed, list.ToString());
        Assert.Contains("cannot be listed", OneLineAbout(list, "'vault'"), StringComparison.Ordinal);
        Assert.Single(StderrLines(list));
        Assert.Contains(mysqlDb, list.Stdout, StringComparison.Ordinal);
        Assert.Equal(5, list.Stdout.Split('\n').Count(l => l.Contains(mysqlDb, StringComparison.Ordinal) || l.Contains(pgDb, StringComparison.Ordinal)));

        var verify = await CliAsync("verify", "--instance", "1", "--config", config);

        Assert.True(verify.ExitCode == Failed, verify.ToString());
        Assert.Single(StderrLines(verify));
        Assert.Contains("'vault'", verify.Stderr, StringComparison.Ordinal);
        Assert.Contains($"OK     {Path.Combine(backupDir, newMysql)}", verify.Stdout, StringComparison.Ordinal);

        var prune = await CliAsync("prune", "--all", "--config", config);

        // Instance 1's 'vault' cannot be pruned; its local backups are planned, and instance 2 is pruned after it.
        Assert.True(prune.ExitCode == Failed, prune.ToString());
        Assert.Contains("cannot be pruned", OneLineAbout(prune, "'vault'"), StringComparison.Ordinal);
        Assert.False(File.Exists(Path.Combine(backupDir, oldestPg)), prune.ToString());
        AssertNothingLeftInTmp();
    }

    /// <summary>
    /// One instance's folder that cannot be listed (no read permission, as any user but root meets it)
    /// fails that instance's backup only: the destination is not taken for down, the next instance is backed up there.
    /// </summary>
    [SkippableFact]
    public async Task A_folder_that_cannot_be_listed_fails_only_its_instance_s_backup()
    {
        await TestServers.RequireMySqlAsync();
        await TestServers.RequirePostgresAsync();
        var mysqlDb = await _scratch.NewMySqlDatabaseAsync();
        var pgDb = await _scratch.NewPostgresDatabaseAsync();
        var backupDir = _scratch.TempDir("backups");
        var config = await ConfigAsync(backupDir, mysqlDb, pgDb);
        var locked = Path.Combine(backupDir, Create(backupDir, TestServers.MySql(name: "it-mysql"), mysqlDb, Utc("20260101_010000")));
        var folder = Path.GetDirectoryName(locked)!;
        File.SetUnixFileMode(folder, UnixFileMode.None);
        try
        {
            var backup = await Run.CliWithoutReadOverrideAsync("backup", "--all", "--config", config);

            Assert.True(backup.ExitCode == PartialFailure, backup.ToString());
            var failed = OneLineAbout(backup, "FAILED");
            Assert.Contains("it-mysql/", failed, StringComparison.Ordinal);
            Assert.Contains(folder, failed, StringComparison.Ordinal);
            Assert.DoesNotContain("Exception", backup.Stderr, StringComparison.Ordinal);
            Assert.Single(Ops.DataFilesUnder(Path.Combine(backupDir, "it-pg")));
        }
        finally
        {
            File.SetUnixFileMode(folder, (UnixFileMode)Convert.ToInt32("755", 8));
        }
        Assert.Equal([Path.GetFileName(locked)], Ops.DataFilesUnder(folder));
    }

    /// <summary>
    /// Found by a tester: an instance folder that is a file, not a directory, was found only when the dump was written
    /// (.NET's "The file ... already exists"), and the backup failed though the next destination was fine. It is found
    /// when the folder is listed, and the next destination takes the dump.
    /// </summary>
    [SkippableFact]
    public async Task An_instance_folder_that_is_a_file_fails_that_destination_and_the_next_takes_the_dump()
    {
        await TestServers.RequireMySqlAsync();
        await TestServers.RequirePostgresAsync();
        var mysqlDb = await _scratch.NewMySqlDatabaseAsync();
        var pgDb = await _scratch.NewPostgresDatabaseAsync();
        var backupDir = _scratch.TempDir("backups");
        var nas = _scratch.TempDir("nas");
        var config = await ConfigAsync(backupDir, mysqlDb, pgDb, pgExtra: "storage: [local, nas]",
            topLevel: $"  - name: nas\n    type: local\n    path: '{nas}'");
        var inTheWay = Path.Combine(backupDir, "it-pg");
        await File.WriteAllTextAsync(inTheWay, "not a folder");

        var backup = await CliAsync("backup", "-i", "2", "--config", config);

        Assert.True(backup.ExitCode == Failed, backup.ToString()); // its one database is not on every destination
        Assert.Contains($"{inTheWay} is not a directory", OneLineAbout(backup, "not copied"), StringComparison.Ordinal);
        Assert.DoesNotContain("already exists", backup.Stderr + backup.Stdout, StringComparison.Ordinal);
        Assert.Single(Ops.DataFilesUnder(Path.Combine(nas, "it-pg")));
        Assert.Equal("not a folder", await File.ReadAllTextAsync(inTheWay));
    }

    [SkippableFact]
    public async Task With_every_destination_down_the_backup_fails_in_one_line_and_writes_nothing()
    {
        await TestServers.RequireMySqlAsync();
        var db = await _scratch.NewMySqlDatabaseAsync();
        var backupDir = _scratch.TempDir("backups");
        var config = await ConfigAsync(backupDir, db, "none", mysqlExtra: "storage: [vault]");

        var run = await CliAsync("backup", "-i", "1", "-d", db, "--config", config);

        Assert.True(run.ExitCode == Failed, run.ToString());
        Assert.Contains("no destination can be reached", OneLineAbout(run, "'vault'"), StringComparison.Ordinal);
        Assert.Empty(Ops.DataFilesUnder(backupDir));
        AssertNothingLeftInTmp();
    }

    /// <summary>
    /// Destinations that are there but refuse writes, even to root: a path under /sys (EPERM: permission
    /// denied) and a path under a regular file (not a directory). Each fails what needs it; the run goes on.
    /// </summary>
    [SkippableFact]
    public async Task A_destination_that_refuses_writes_fails_only_what_needs_it_and_the_run_goes_on()
    {
        await TestServers.RequireMySqlAsync();
        await TestServers.RequirePostgresAsync();
        var mysqlDb = await _scratch.NewMySqlDatabaseAsync();
        var pgDb = await _scratch.NewPostgresDatabaseAsync();
        var backupDir = _scratch.TempDir("backups");
        var denied = $"/sys/vya-test-{Guid.NewGuid():N}";
        var regularFile = Path.Combine(_scratch.TempDir("file"), "not-a-dir");
        File.WriteAllText(regularFile, "x");
        var underFile = Path.Combine(regularFile, "backups");
        var config = await ConfigAsync(backupDir, mysqlDb, pgDb,
            mysqlExtra: "storage: [denied]", pgExtra: "storage: [local, denied, underfile]", topLevel: $$"""
              - {name: denied, type: local, path: '{{denied}}'}
              - {name: underfile, type: local, path: '{{underFile}}'}
            """);

        var run = await CliAsync("backup", "--all", "--parallel", "2", "--json", "--config", config);

        // No database went everywhere it should: exit 1 (a not_copied counts as failed, as documented).
        Assert.True(run.ExitCode == Failed, run.ToString());
        Assert.DoesNotContain("Exception", run.ToString(), StringComparison.Ordinal);
        var results = System.Text.Json.JsonDocument.Parse(run.Stdout).RootElement.GetProperty("results").EnumerateArray().ToList();
        Assert.Equal(2, results.Count);
        var mysql = results[0];
        Assert.Equal("failed", mysql.GetProperty("status").GetString());
        Assert.Contains(denied, mysql.GetProperty("error").GetString(), StringComparison.Ordinal);
        var pg = results[1];
        Assert.True(pg.GetProperty("status").GetString() == "not_copied", pg.ToString());
        Assert.Equal(["local"], pg.GetProperty("destinations").EnumerateArray().Select(d => d.GetString()));
        Assert.Equal(["denied", "underfile"], pg.GetProperty("failed_destinations").EnumerateArray().Select(d => d.GetString()));
        var error = pg.GetProperty("error").GetString()!;
        Assert.Contains(denied, error, StringComparison.Ordinal);
        Assert.True(error.Contains(underFile, StringComparison.Ordinal), error);
        Assert.DoesNotContain(backupDir, error[error.IndexOf("but", StringComparison.Ordinal)..], StringComparison.Ordinal);
        var kept = Assert.Single(Ops.DataFilesUnder(backupDir));
        Assert.Equal(Path.Combine(backupDir, kept), pg.GetProperty("file").GetString());
        Assert.True(File.Exists(Path.Combine(backupDir, kept + BackupManifest.Suffix)));
        AssertNothingLeftInTmp();
    }

    private const int VerificationFailed = 4;

    /// <summary>Flips one bit in the middle of a file: same size, other digest.</summary>
    private static void FlipByte(string path)
    {
        var bytes = File.ReadAllBytes(path);
        bytes[bytes.Length / 2] ^= 0x20;
        File.WriteAllBytes(path, bytes);
    }

    [Fact]
    public async Task Prune_deletes_nothing_of_a_database_whose_newest_kept_backup_fails_its_digest_check()
    {
        var backupDir = _scratch.TempDir("backups");
        var mysql = TestServers.MySql(name: "it-mysql");
        var oldest = Create(backupDir, mysql, "dns_db", Utc("20260101_010000"));
        var middle = Create(backupDir, mysql, "dns_db", Utc("20260102_010000"));
        var newest = Create(backupDir, mysql, "dns_db", Utc("20260103_010000"));
        FlipByte(Path.Combine(backupDir, middle));
        FlipByte(Path.Combine(backupDir, newest));
        var config = await ConfigAsync(backupDir, "dns_db", "none", mysqlExtra: "retention: {keep_last: 2}");
        var before = Snapshot(backupDir);

        // list compares sizes only, and says so.
        var list = await CliAsync("list", "--instance", "1", "--config", config);
        Assert.True(list.ExitCode == Success, list.ToString());
        Assert.Equal(3, list.Stdout.Split('\n').Count(l => l.Contains("size ok", StringComparison.Ordinal)));

        var prune = await CliAsync("prune", "--instance", "1", "--config", config);

        Assert.True(prune.ExitCode == VerificationFailed, prune.ToString());
        var line = OneLineAbout(prune, "dns_db");
        Assert.Contains("does not match its manifest", line, StringComparison.Ordinal);
        Assert.Contains("nothing of it was deleted", line, StringComparison.Ordinal);
        Assert.Equal(before, Snapshot(backupDir));
        Assert.True(File.Exists(Path.Combine(backupDir, oldest)));
        AssertNothingLeftInTmp();
    }

    /// <summary>
    /// verify --restore by an account that may not create a database: the backup could not be checked (exit 1, "could
    /// not be checked"), which is not a bad backup (exit 4), and the record of the verify that passed before it stays.
    /// The decryption passphrase's variable unset is a config error, exit 2, as for restore. Before: both exit 4 or 1,
    /// the first deleting the record.
    /// </summary>
    [SkippableFact]
    public async Task Verify_that_this_host_or_server_keeps_from_checking_a_backup_says_so_and_keeps_its_record()
    {
        await TestServers.RequirePostgresAsync();
        var db = await _scratch.NewPostgresDatabaseAsync();
        await PgTestDb.ExecAsync(db, "CREATE TABLE t (id int)", "INSERT INTO t VALUES (1)");
        var role = _scratch.PostgresName("vt_nocreate_");
        await PgTestDb.ExecAsync("postgres", $"CREATE ROLE {role} LOGIN NOCREATEDB PASSWORD 'vt-nocreate-pw'");
        try
        {
            var backups = _scratch.TempDir("backups");
            string Config(string user, string password) => $"""
                backup_dir: '{backups}'
                encryption:
                  passphrase_env: VT_VERIFY_PASSPHRASE
                instances:
                  - id: 2
                    name: it-pg
                    dbms: postgresql
                    host: '{TestServers.PgHost}'
                    port: {TestServers.PgPort}
                    user: '{user}'
                    password: '{password}'
                    globals: false
                    encrypt: true
                """;
            var config = Path.Combine(_scratch.TempDir("cfg"), "config.yaml");
            await File.WriteAllTextAsync(config, Config(TestServers.PgUser, TestServers.PgPassword));
            var limited = Path.Combine(_scratch.TempDir("cfg-nocreate"), "config.yaml");
            await File.WriteAllTextAsync(limited, Config(role, "vt-nocreate-pw"));
            var passphrase = new Dictionary<string, string> { ["TMPDIR"] = _tmp, ["VT_VERIFY_PASSPHRASE"] = "vt verify passphrase" };
            var backup = await Run.CliWithEnvAsync(passphrase, "backup", "-i", "2", "-d", db, "--config", config);
            Assert.True(backup.ExitCode == Success, backup.ToString());
            var file = Path.Combine(backups, Assert.Single(Ops.DataFilesUnder(backups)));
            var passed = await Run.CliWithEnvAsync(passphrase, "verify", "--file", file, "--config", config);
            Assert.True(passed.ExitCode == Success, passed.ToString());
            var record = await File.ReadAllBytesAsync(file + VerifyRecord.Suffix);

            var notChecked = await Run.CliWithEnvAsync(passphrase, "verify", "--file", file, "--restore", "--config", limited);

            Assert.True(notChecked.ExitCode == Failed, notChecked.ToString());
            Assert.Contains("not checked: ", notChecked.Stderr, StringComparison.Ordinal);
            Assert.Contains("permission denied to create database", notChecked.Stderr, StringComparison.Ordinal);
            Assert.Contains("0 OK, 0 failed, 1 could not be checked", notChecked.ToString(), StringComparison.Ordinal);
            Assert.Equal(record, await File.ReadAllBytesAsync(file + VerifyRecord.Suffix));

            var noPassphrase = await CliAsync("verify", "--file", file, "--config", config);

            Assert.True(noPassphrase.ExitCode == 2, noPassphrase.ToString());
            Assert.Contains("encryption.passphrase_env: environment variable VT_VERIFY_PASSPHRASE is not set", noPassphrase.Stderr, StringComparison.Ordinal);
            Assert.Equal(record, await File.ReadAllBytesAsync(file + VerifyRecord.Suffix));
            AssertNothingLeftInTmp();
        }
        finally
        {
            await PgTestDb.ExecAsync("postgres", $"DROP ROLE IF EXISTS {role}");
        }
    }

    /// <summary>A system database asked for by name is refused as one (it was "does not exist, or its account may not see it").</summary>
    [SkippableTheory]
    [InlineData("1", "mysql")]
    [InlineData("2", "template1")]
    public async Task A_system_database_asked_for_by_name_is_refused_as_one(string instance, string database)
    {
        await (instance == "1" ? TestServers.RequireMySqlAsync() : TestServers.RequirePostgresAsync());
        var backups = _scratch.TempDir("backups");
        var config = await Cli.WriteConfigAsync(_scratch.TempDir("cfg"), backups);

        var run = await CliAsync("backup", "-i", instance, "-d", database, "--config", config);

        Assert.True(run.ExitCode == Failed, run.ToString());
        Assert.Contains($"'{database}' is a system database of the server, which vya-backupdb never backs up", run.Stderr, StringComparison.Ordinal);
        Assert.Empty(Ops.DataFilesUnder(backups));
    }

    /// <summary>
    /// Found by a tester: a database named in include (no wildcard) that is not there (dropped, renamed, mistyped, or
    /// no longer visible to the account) dropped out of the night's backup with exit 0 and no word. It now fails as
    /// that database's backup, the others are taken, and a dry run warns.
    /// </summary>
    [SkippableTheory]
    [InlineData("1")]
    [InlineData("2")]
    public async Task A_database_named_in_include_that_is_not_there_fails_as_its_backup(string instance)
    {
        await (instance == "1" ? TestServers.RequireMySqlAsync() : TestServers.RequirePostgresAsync());
        var db = instance == "1" ? await _scratch.NewMySqlDatabaseAsync() : await _scratch.NewPostgresDatabaseAsync();
        var missing = db + "_gone";
        var backups = _scratch.TempDir("backups");
        var config = await Cli.WriteConfigAsync(_scratch.TempDir("cfg"), backups);
        await File.WriteAllTextAsync(config, (await File.ReadAllTextAsync(config))
            .Replace("include: [\"vt_*\"]", $"include: ['{db}', '{missing}', 'vt_none_*']", StringComparison.Ordinal));

        var dryRun = await CliAsync("backup", "-i", instance, "--dry-run", "--config", config);
        var run = await CliAsync("backup", "-i", instance, "--config", config);

        var why = $"named in include: database '{missing}' does not exist on instance {instance}";
        Assert.True(dryRun.ExitCode == 0, dryRun.ToString());
        Assert.Contains(why, dryRun.Stderr, StringComparison.Ordinal);
        Assert.True(run.ExitCode == 3, run.ToString()); // partial: the other database was backed up
        Assert.Contains(why, run.Stderr, StringComparison.Ordinal);
        var written = Assert.Single(Ops.DataFilesUnder(backups));
        Assert.EndsWith($"_{db}.sql.zst", written, StringComparison.Ordinal);
    }

    /// <summary>
    /// Found by a tester: a PostgreSQL database that does not accept connections (ALLOW_CONNECTIONS false) dropped out
    /// of a wildcard's backup without a word, and one named was said not to exist; a template of the operator's own
    /// was left out too. The closed one is named every run (a warning for a wildcard, a failure when named); the
    /// template is backed up like any database.
    /// </summary>
    [SkippableFact]
    public async Task A_postgres_database_closed_to_connections_is_named_and_a_template_is_backed_up()
    {
        await TestServers.RequirePostgresAsync();
        // Not vt_*: other tests' wildcard backups would see the closed database while it exists.
        var prefix = _scratch.PostgresName("vx_");
        var (open, closed, template) = (_scratch.PostgresName(prefix + "_open_"), _scratch.PostgresName(prefix + "_closed_"),
            _scratch.PostgresName(prefix + "_tpl_"));
        foreach (var db in new[] { open, closed, template })
        {
            await PgTestDb.CreateAsync(db);
        }
        await PgTestDb.ExecAsync(template, "CREATE TABLE t (id int PRIMARY KEY)", "INSERT INTO t VALUES (1), (2)");
        await PgTestDb.ExecAsync("postgres", $"ALTER DATABASE {closed} ALLOW_CONNECTIONS false", $"ALTER DATABASE {template} IS_TEMPLATE true");
        try
        {
            var backups = _scratch.TempDir("backups");
            var config = await Cli.WriteConfigAsync(_scratch.TempDir("cfg"), backups);
            await File.WriteAllTextAsync(config, (await File.ReadAllTextAsync(config))
                .Replace("include: [\"vt_*\"]", $"include: ['{prefix}_*']", StringComparison.Ordinal));

            var all = await CliAsync("backup", "-i", "2", "--config", config);
            var named = await CliAsync("backup", "-i", "2", "-d", closed, "--config", config);

            var why = $"database '{closed}' does not accept connections (ALLOW_CONNECTIONS false): it cannot be backed up";
            Assert.True(all.ExitCode == 0, all.ToString());
            Assert.Contains(why, all.Stderr, StringComparison.Ordinal);
            Assert.Equal([$"_{open}.sql.zst", $"_{template}.sql.zst"],
                Ops.DataFilesUnder(backups).Select(f => f[f.IndexOf("_vx_", StringComparison.Ordinal)..]).Order(StringComparer.Ordinal));
            Assert.True(named.ExitCode == Failed, named.ToString());
            Assert.Contains(why, named.Stderr, StringComparison.Ordinal);
            var target = _scratch.PostgresName();
            var restore = await CliAsync("restore", "--file", Path.Combine(backups, Ops.DataFilesUnder(backups).Single(f => f.Contains(template, StringComparison.Ordinal))),
                "-i", "2", "--target", target, "--config", config);
            Assert.True(restore.ExitCode == 0, restore.ToString());
            Assert.Equal(2L, await PgTestDb.ScalarAsync(target, "SELECT count(*) FROM t"));
        }
        finally
        {
            await PgTestDb.ExecAsync("postgres", $"ALTER DATABASE {closed} ALLOW_CONNECTIONS true", $"ALTER DATABASE {template} IS_TEMPLATE false");
        }
    }

    /// <summary>
    /// Found by a tester: a database comment written from a LATIN1 database (PostgreSQL keeps the bytes of the session's
    /// database in its shared catalog) is not UTF-8: the whole run ended in a .NET stack trace, the databases after it
    /// not backed up. That database fails, in one line; the others are backed up.
    /// </summary>
    [SkippableFact]
    public async Task A_postgres_comment_that_is_not_utf8_fails_its_database_only()
    {
        await TestServers.RequirePostgresAsync();
        // Not vt_*: other tests' wildcard backups would read the comment while it exists.
        var prefix = _scratch.PostgresName("vx_");
        var (bad, good, latin1) = (_scratch.PostgresName(prefix + "_a_"), _scratch.PostgresName(prefix + "_b_"), _scratch.PostgresName(prefix + "_l1_"));
        await PgTestDb.CreateAsync(bad);
        await PgTestDb.CreateAsync(good);
        await PgTestDb.ExecAsync("postgres", $"CREATE DATABASE {latin1} ENCODING 'LATIN1' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0");
        await PgTestDb.ExecAsync(latin1, $"COMMENT ON DATABASE {bad} IS 'café'");
        var backups = _scratch.TempDir("backups");
        var config = await Cli.WriteConfigAsync(_scratch.TempDir("cfg"), backups);
        await File.WriteAllTextAsync(config, (await File.ReadAllTextAsync(config))
            .Replace("include: [\"vt_*\"]", $"include: ['{bad}', '{good}']", StringComparison.Ordinal));

        var run = await CliAsync("backup", "-i", "2", "--config", config);

        Assert.True(run.ExitCode == 3, run.ToString()); // partial
        Assert.Contains("the server sent text that is not valid UTF-8 (bytes E9)", run.Stdout, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", run.ToString(), StringComparison.Ordinal);
        Assert.EndsWith($"_{good}.sql.zst", Assert.Single(Ops.DataFilesUnder(backups)), StringComparison.Ordinal);
    }

    /// <summary>
    /// Found by a tester: an EUC_JP database's NEC extension codes came back as their JIS equivalents (through UTF-8, as
    /// pg_dump -E UTF8 does), backup and verify OK. A backup of a database in such an encoding says so on every run.
    /// </summary>
    [SkippableFact]
    public async Task A_postgres_backup_of_an_euc_jp_database_warns_that_some_codes_come_back_as_others()
    {
        await TestServers.RequirePostgresAsync();
        var db = _scratch.PostgresName();
        await PgTestDb.ExecAsync("postgres", $"CREATE DATABASE {db} ENCODING 'EUC_JP' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0");
        await PgTestDb.ExecAsync(db, "CREATE TABLE t (id int PRIMARY KEY, v text)", "INSERT INTO t VALUES (1, '≒')");
        var config = await Cli.WriteConfigAsync(_scratch.TempDir("cfg"), _scratch.TempDir("backups"));

        var run = await CliAsync("backup", "-i", "2", "-d", db, "--config", config);

        Assert.True(run.ExitCode == 0, run.ToString());
        Assert.Contains($"/{db}: the database's encoding EUC_JP is backed up through UTF-8, and NEC and IBM extension codes", run.Stderr, StringComparison.Ordinal);
    }

    /// <summary>
    /// Found by a tester: --metrics-file or --html naming a directory said .NET's "Access to the path ... is denied"
    /// (as root), and the backup's metrics went stale at exit 0. Refused before anything runs, saying what it is.
    /// </summary>
    [Theory]
    [InlineData("status", "--html")]
    [InlineData("backup", "--metrics-file")]
    public async Task An_output_file_option_naming_a_directory_is_refused_as_one(string command, string option)
    {
        var directory = _scratch.TempDir("out");
        var config = await Cli.WriteConfigAsync(_scratch.TempDir("cfg"), _scratch.TempDir("backups"));

        var run = await CliAsync(command == "backup" ? ["backup", "--all", "--dry-run", option, directory, "--config", config]
            : [command, option, directory, "--config", config]);

        Assert.True(run.ExitCode == UsageOrConfig, run.ToString());
        Assert.Contains($"{option} {directory}: is a directory", Assert.Single(StderrLines(run)), StringComparison.Ordinal);
    }

    /// <summary>A tools_dir that does not exist is named as such (it said "none found; install ... or set tools_dir").</summary>
    [SkippableTheory]
    [InlineData("1")]
    [InlineData("2")]
    public async Task A_tools_dir_that_does_not_exist_is_named_in_the_error(string instance)
    {
        await (instance == "1" ? TestServers.RequireMySqlAsync() : TestServers.RequirePostgresAsync());
        var db = instance == "1" ? await _scratch.NewMySqlDatabaseAsync() : await _scratch.NewPostgresDatabaseAsync();
        var missing = Path.Combine(_scratch.TempDir("tools"), "not-there");
        var config = await Cli.WriteConfigAsync(_scratch.TempDir("cfg"), _scratch.TempDir("backups"), toolsDir: missing);

        var run = await CliAsync("backup", "-i", instance, "-d", db, "--config", config);

        Assert.True(run.ExitCode == Failed, run.ToString());
        Assert.Contains($"tools_dir {missing}, which does not exist", run.Stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("set tools_dir", run.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Prune_trusts_a_verify_only_while_the_file_is_unchanged_since()
    {
        var backupDir = _scratch.TempDir("backups");
        var mysql = TestServers.MySql(name: "it-mysql");
        var oldest = Create(backupDir, mysql, "dns_db", Utc("20260101_010000"));
        Create(backupDir, mysql, "dns_db", Utc("20260102_010000"));
        var newest = Create(backupDir, mysql, "dns_db", Utc("20260103_010000"));
        var config = await ConfigAsync(backupDir, "dns_db", "none", mysqlExtra: "retention: {keep_last: 1}");

        var verify = await CliAsync("verify", "--instance", "1", "--latest", "--config", config);
        Assert.True(verify.ExitCode == Success, verify.ToString());
        Assert.True(File.Exists(Path.Combine(backupDir, VerifyRecord.KeyFor(newest))), "verify records its check beside the manifest");
        var list = await CliAsync("list", "--instance", "1", "--json", "--config", config);
        Assert.Contains("\"digest_checked_utc\": \"", list.Stdout, StringComparison.Ordinal);

        // The newest backup changed after it was verified: the record no longer counts, prune reads it again.
        await Task.Delay(20);
        FlipByte(Path.Combine(backupDir, newest));
        var before = Snapshot(backupDir);

        var held = await CliAsync("prune", "--instance", "1", "--config", config);

        Assert.True(held.ExitCode == VerificationFailed, held.ToString());
        Assert.Contains("does not match its manifest", OneLineAbout(held, "dns_db"), StringComparison.Ordinal);
        Assert.Equal(before, Snapshot(backupDir));

        // Put right, verified again: prune takes verify's word (no second read) and deletes the older ones.
        FlipByte(Path.Combine(backupDir, newest));
        Assert.True((await CliAsync("verify", "--instance", "1", "--latest", "--config", config)).ExitCode == Success);

        var pruned = await CliAsync("prune", "--instance", "1", "--config", config);

        Assert.True(pruned.ExitCode == Success, pruned.ToString());
        Assert.Contains("digest checked by verify", pruned.Stdout, StringComparison.Ordinal);
        Assert.False(File.Exists(Path.Combine(backupDir, oldest)));
        Assert.Equal([newest], Ops.DataFilesUnder(backupDir));
        AssertNothingLeftInTmp();
    }

    private const int Interrupted = 130;

    [SkippableFact]
    public async Task Restore_and_verify_of_encrypted_zips_and_of_a_zip_on_s3_leave_no_spool_in_tmp()
    {
        await TestServers.RequirePostgresAsync();
        await TestServers.RequireS3Async();
        var db = await _scratch.NewPostgresDatabaseAsync();
        await PgTestDb.ExecAsync(db, "CREATE TABLE t (id int PRIMARY KEY, v text)", "INSERT INTO t SELECT g, md5(g::text) FROM generate_series(1, 1000) g");
        var backupDir = _scratch.TempDir("backups");
        var keyFile = Path.Combine(_scratch.TempDir("key"), "key.txt");
        var keygen = await CliAsync("keygen", "--output", keyFile);
        Assert.True(keygen.ExitCode == Success, keygen.ToString());
        var s3 = TestServers.S3($"itest/{Guid.NewGuid():N}/", "offsite");
        var config = await ConfigAsync(backupDir, "none", db, pgExtra: "storage: [local, offsite]", topLevel: string.Create(CultureInfo.InvariantCulture, $"""
              - name: offsite
                type: s3
                endpoint: {s3.Endpoint}
                region: {s3.Region}
                bucket: {s3.Bucket}
                prefix: {s3.Prefix}
                force_path_style: true
                access_key_id_env: VYA_TEST_S3_KEY
                secret_access_key_env: VYA_TEST_S3_SECRET
            encryption:
              recipients: ['{keygen.Stdout.Trim()}']
              identity_files: ['{keyFile}']
            """));
        var env = new Dictionary<string, string>
        {
            ["TMPDIR"] = _tmp, ["VYA_TEST_S3_KEY"] = TestServers.S3AccessKey, ["VYA_TEST_S3_SECRET"] = TestServers.S3SecretKey,
        };
        Task<ProcessResult> Cli(params string[] arguments) => Run.CliWithEnvAsync(env, arguments);
        try
        {
            foreach (var encrypt in new[] { true, false })
            {
                var backup = await Cli(["backup", "-i", "2", "-d", db, "--compression", "zip", "--config", config, .. encrypt ? new[] { "--encrypt" } : []]);
                Assert.True(backup.ExitCode == Success, backup.ToString());
                AssertNothingLeftInTmp();
                await Task.Delay(1100); // the next backup's name is one second later
            }
            var files = Ops.DataFilesUnder(backupDir);
            var encrypted = Path.Combine(backupDir, Assert.Single(files, f => f.EndsWith(".zip.age", StringComparison.Ordinal)));
            var plainKey = Assert.Single(files, f => f.EndsWith(".zip", StringComparison.Ordinal));

            foreach (var file in new[] { encrypted, $"offsite:{encrypted[(backupDir.Length + 1)..]}", $"offsite:{plainKey}" })
            {
                var verify = await Cli("verify", "--file", file, "--config", config);
                Assert.True(verify.ExitCode == Success, verify.ToString());
                AssertNothingLeftInTmp();

                var target = _scratch.PostgresName();
                var restore = await Cli("restore", "--file", file, "-i", "2", "--target", target, "--config", config);
                Assert.True(restore.ExitCode == Success, restore.ToString());
                AssertNothingLeftInTmp();
            }
        }
        finally
        {
            using var storage = new Storage.S3.S3Storage(s3);
            await foreach (var entry in storage.ListAsync("", CancellationToken.None))
            {
                await storage.DeleteAsync(entry.Key, CancellationToken.None);
            }
        }
    }

    [SkippableFact]
    public async Task Credential_files_of_a_run_killed_by_sigkill_are_removed_by_the_next_run()
    {
        await TestServers.RequireMySqlAsync();
        var db = await _scratch.NewMySqlDatabaseAsync();
        var tools = FakeTools.Create(_scratch.TempDir("fake"), FakeDump.Hangs, postgres: false);
        var backupDir = _scratch.TempDir("backups");
        var config = await ConfigAsync(backupDir, db, "none", mysqlExtra: $"tools_dir: '{tools}'");
        // Somebody else's, alive (this test's own process): never touched.
        var alive = Directory.CreateDirectory(Path.Combine(_tmp, $"vya-backupdb-secret-{Environment.ProcessId}-abc123"));
        File.WriteAllText(Path.Combine(alive.FullName, "client.cnf"), "[client]\n");

        var (file, args, env) = Run.CliCommand(new Dictionary<string, string> { ["TMPDIR"] = _tmp }, "backup", "-i", "1", "-d", db, "--config", config);
        var startInfo = new System.Diagnostics.ProcessStartInfo(file, args) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var (name, value) in env)
        {
            startInfo.Environment[name] = value;
        }
        using (var process = System.Diagnostics.Process.Start(startInfo)!)
        {
            var pids = Path.Combine(tools, "pids");
            var clock = System.Diagnostics.Stopwatch.StartNew();
            while (!File.Exists(pids) || File.ReadAllText(pids).Split(' ').Length < 2)
            {
                Assert.True(clock.Elapsed < TimeSpan.FromSeconds(60) && !process.HasExited, "the fake dump tool never started");
                await Task.Delay(50);
            }
            process.Kill(entireProcessTree: true); // SIGKILL: no cleanup can run
            await process.WaitForExitAsync();
        }
        // (The .NET runtime's own diagnostic pipes of the killed process stay too: not ours.)
        var left = Directory.GetFileSystemEntries(_tmp, "vya-backupdb-*").Where(d => d != alive.FullName).ToList();
        Assert.True(left.Count == 1, $"expected the killed run's credential directory in TMPDIR: {string.Join(", ", Directory.GetFileSystemEntries(_tmp))}");
        var secret = left[0];
        Assert.True(File.Exists(Path.Combine(secret, "client.cnf")), "the killed run's credential file should be there before the next run");

        var list = await CliAsync("list", "--config", config);

        Assert.True(list.ExitCode == Success, list.ToString());
        Assert.False(Directory.Exists(secret), "the next run did not remove the credential directory of the killed one");
        Assert.True(Directory.Exists(alive.FullName), "a live process's credential directory was removed");
        // The killed backup's temp file is not a backup (the sweep removes it once a day old).
        Assert.Contains("no backups found", list.Stdout, StringComparison.Ordinal);
    }

    [SkippableFact]
    public async Task Two_backups_of_a_database_in_the_same_second_both_succeed_and_nothing_is_overwritten()
    {
        await TestServers.RequireMySqlAsync();
        var db = await _scratch.NewMySqlDatabaseAsync();
        await MySqlTestDb.ExecAsync(db, "CREATE TABLE t (id INT PRIMARY KEY)", "INSERT INTO t VALUES (1)");
        var backupDir = _scratch.TempDir("backups");
        // A clock at the very start of a second: two quick backups fall in it.
        var clock = new StartOfSecondClock();

        var first = await Ops.BackupAsync(TestServers.MySql(), db, Pipeline.Compression.Zstd, backupDir, clock);
        var firstBytes = Ops.Sha256(first.Location!);
        var second = await Ops.BackupAsync(TestServers.MySql(), db, Pipeline.Compression.Zstd, backupDir, clock);

        Assert.True(first.Succeeded && second.Succeeded, $"{first.Error} / {second.Error}");
        Assert.NotEqual(first.Location, second.Location);
        Assert.Equal(2, Ops.DataFilesUnder(backupDir).Count);
        Assert.Equal(firstBytes, Ops.Sha256(first.Location!));
    }

    /// <summary>Real time, shifted so that it was exactly on a second when created.</summary>
    private sealed class StartOfSecondClock : TimeProvider
    {
        private readonly TimeSpan _shift = -TimeSpan.FromMilliseconds(DateTimeOffset.UtcNow.Millisecond);

        public override DateTimeOffset GetUtcNow() => base.GetUtcNow() + _shift;
    }

    [SkippableFact]
    public async Task A_password_that_is_a_common_word_is_not_revealed_by_masking_our_own_words()
    {
        await TestServers.RequireMySqlAsync();
        var user = "vya_ow_" + Guid.NewGuid().ToString("N")[..10];
        await MySqlTestDb.ExecAsync(null, $"CREATE USER '{user}'@'127.0.0.1' IDENTIFIED BY 'database'", $"GRANT ALL PRIVILEGES ON *.* TO '{user}'@'127.0.0.1'");
        try
        {
            var config = await ConfigAsync(_scratch.TempDir("backups"), "none", "none");
            await File.WriteAllTextAsync(config, (await File.ReadAllTextAsync(config))
                .Replace($"user: {TestServers.MySqlUser}\n    password: '{TestServers.MySqlPassword}'", $"user: {user}\n    password: 'database'", StringComparison.Ordinal));
            var missing = "vt_missing_" + Guid.NewGuid().ToString("N")[..6];

            var run = await CliAsync("backup", "-i", "1", "-d", missing, "--config", config);

            Assert.True(run.ExitCode == Failed, run.ToString());
            Assert.Contains($"database '{missing}' does not exist", OneLineAbout(run, missing), StringComparison.Ordinal);
            Assert.DoesNotContain("***", run.Stderr, StringComparison.Ordinal);
        }
        finally
        {
            await MySqlTestDb.ExecAsync(null, $"DROP USER IF EXISTS '{user}'@'127.0.0.1'");
        }
    }

    /// <summary>A tester: an account whose password expired failed with the server's words alone, naming neither instance nor account.</summary>
    [SkippableFact]
    public async Task An_expired_mysql_password_is_named_as_such_with_the_instance_and_account()
    {
        await TestServers.RequireMySqlAsync();
        var user = "vya_ex_" + Guid.NewGuid().ToString("N")[..10];
        await MySqlTestDb.ExecAsync(null, $"CREATE USER '{user}'@'127.0.0.1' IDENTIFIED BY 'vt-ex-pw' PASSWORD EXPIRE", $"GRANT ALL PRIVILEGES ON *.* TO '{user}'@'127.0.0.1'");
        try
        {
            var config = await ConfigAsync(_scratch.TempDir("backups"), "none", "none");
            await File.WriteAllTextAsync(config, (await File.ReadAllTextAsync(config))
                .Replace($"user: {TestServers.MySqlUser}\n    password: '{TestServers.MySqlPassword}'", $"user: {user}\n    password: 'vt-ex-pw'", StringComparison.Ordinal));

            var run = await CliAsync("backup", "-i", "1", "--config", config);

            Assert.True(run.ExitCode == Failed, run.ToString());
            Assert.Contains($"as {user}: You must SET PASSWORD before executing this statement (its password has expired", run.Stderr, StringComparison.Ordinal);
        }
        finally
        {
            await MySqlTestDb.ExecAsync(null, $"DROP USER IF EXISTS '{user}'@'127.0.0.1'");
        }
    }

    [SkippableFact]
    public async Task Dump_tools_get_only_the_environment_they_need()
    {
        await TestServers.RequireMySqlAsync();
        var db = await _scratch.NewMySqlDatabaseAsync();
        var tools = Path.Combine(_scratch.TempDir("fake"), "tools");
        Directory.CreateDirectory(tools);
        // A dump tool that records what it was given, then writes a small complete dump.
        var script = """
            #!/bin/sh
            if [ "$1" = "--version" ]; then echo "mariadb-dump  Ver 10.19 Distrib 10.11.19-MariaDB, for debian-linux-gnu (x86_64)"; exit 0; fi
            env > "$(dirname "$0")/env.log"
            printf -- '-- MariaDB dump 10.19\nCREATE TABLE t (id INT);\n-- Dump completed on 2026-01-13 15:54:40\n'

            """;
        foreach (var name in new[] { "mariadb-dump", "mysqldump" })
        {
            await File.WriteAllTextAsync(Path.Combine(tools, name), script);
            File.SetUnixFileMode(Path.Combine(tools, name), UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }
        var config = await ConfigAsync(_scratch.TempDir("backups"), db, "none", mysqlExtra: $"tools_dir: '{tools}'");
        await File.WriteAllTextAsync(config, (await File.ReadAllTextAsync(config))
            .Replace($"password: '{TestServers.MySqlPassword}'", "password_env: VYA_T_DB_PASSWORD", StringComparison.Ordinal));
        var markers = new Dictionary<string, string>
        {
            ["VYA_T_DB_PASSWORD"] = TestServers.MySqlPassword,
            ["AWS_SECRET_ACCESS_KEY"] = "aws-secret-" + Guid.NewGuid().ToString("N"),
            ["VYA_T_OTHER_SECRET"] = "other-secret-" + Guid.NewGuid().ToString("N"),
            ["VYA_BACKUPDB_VAULT_KEY"] = "vault-key-" + Guid.NewGuid().ToString("N"),
        };

        var run = await Run.CliWithEnvAsync(new Dictionary<string, string>(markers) { ["TMPDIR"] = _tmp, ["LANG"] = "C.UTF-8" },
            "backup", "-i", "1", "-d", db, "--config", config);

        Assert.True(run.ExitCode == Success, run.ToString());
        var env = await File.ReadAllTextAsync(Path.Combine(tools, "env.log"));
        foreach (var (name, value) in markers)
        {
            Assert.DoesNotContain(name + "=", env, StringComparison.Ordinal);
            Assert.DoesNotContain(value, env, StringComparison.Ordinal);
        }
        Assert.Contains("PATH=", env, StringComparison.Ordinal);
        Assert.Contains("LANG=C.UTF-8", env, StringComparison.Ordinal);
        Assert.DoesNotContain("DOTNET_", env, StringComparison.Ordinal);
        AssertNothingLeftInTmp();
    }

    [SkippableFact]
    public async Task Sftp_uploads_are_created_0600()
    {
        await TestServers.RequireMySqlAsync();
        await TestServers.RequireSftpAsync();
        var db = await _scratch.NewMySqlDatabaseAsync();
        var folder = $"itest-{Guid.NewGuid():N}";
        var config = await ConfigAsync(_scratch.TempDir("backups"), db, "none", mysqlExtra: "storage: [box]", topLevel: $"""
              - name: box
                type: sftp
                host: 127.0.0.1
                port: {TestServers.SftpPort}
                user: {TestServers.SftpUser}
                private_key_file: '{TestServers.SftpKeyFile}'
                host_fingerprint: '{TestServers.SftpFingerprint}'
                path: {folder}
            """);
        var home = Path.Combine(TestServers.SftpHome, folder);
        try
        {
            var run = await CliAsync("backup", "-i", "1", "-d", db, "--config", config);

            Assert.True(run.ExitCode == Success, run.ToString());
            var files = Directory.GetFiles(home, "*", SearchOption.AllDirectories);
            Assert.Equal(3, files.Length);
            Assert.All(files, f => Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(f)));
        }
        finally
        {
            if (Directory.Exists(home))
            {
                Directory.Delete(home, recursive: true);
            }
        }
    }

    [Fact]
    public async Task A_world_readable_config_with_storage_secrets_gets_a_warning_naming_them()
    {
        var config = await ConfigAsync(_scratch.TempDir("backups"), "none", "none", topLevel: """
              - name: offsite
                type: s3
                endpoint: http://127.0.0.1:1
                bucket: b
                access_key_id: AKIDEXAMPLE
                secret_access_key: plain-s3-secret-in-config
            """);
        await File.WriteAllTextAsync(config, (await File.ReadAllTextAsync(config))
            .Replace($"password: '{TestServers.MySqlPassword}'", "password_env: NOT_SET_ANYWHERE", StringComparison.Ordinal)
            .Replace($"password: '{TestServers.PgPassword}'", "password_env: NOT_SET_ANYWHERE", StringComparison.Ordinal));
        File.SetUnixFileMode(config, (UnixFileMode)Convert.ToInt32("644", 8));

        var run = await CliAsync("list", "--storage", "local", "--config", config);

        var warning = OneLineAbout(run, "readable by every user");
        Assert.Contains("storage 'offsite' secret_access_key", warning, StringComparison.Ordinal);
        Assert.Contains("storage 'vault' password", warning, StringComparison.Ordinal);
        Assert.DoesNotContain("instance", warning, StringComparison.Ordinal);
        Assert.DoesNotContain("plain-s3-secret-in-config", run.Stderr + run.Stdout, StringComparison.Ordinal);
    }

    private const int UsageOrConfig = 2;

    [Theory]
    [InlineData("list --instance abc", "--instance: 'abc' is not a whole number")]
    [InlineData("list --instance 99999999999", "--instance: '99999999999' is out of range")]
    [InlineData("frobnicate", "Unrecognized command or argument 'frobnicate'")]
    [InlineData("", "no command given")]
    [InlineData("vault", "'vault' needs a subcommand")]
    public async Task Command_line_errors_are_one_plain_line_without_dotnet_internals(string arguments, string expected)
    {
        var run = await CliAsync(arguments.Split(' ', StringSplitOptions.RemoveEmptyEntries));

        Assert.True(run.ExitCode == UsageOrConfig, run.ToString());
        var line = Assert.Single(StderrLines(run));
        Assert.StartsWith("vya-backupdb: error: ", line, StringComparison.Ordinal);
        Assert.Contains(expected, line, StringComparison.Ordinal);
        Assert.DoesNotContain("System.", line, StringComparison.Ordinal);
        Assert.DoesNotContain("Required command", line, StringComparison.Ordinal);
    }

    [SkippableFact]
    public async Task Restore_takes_the_bare_file_name_list_shows_and_announces_only_what_it_does()
    {
        await TestServers.RequireMySqlAsync();
        var db = await _scratch.NewMySqlDatabaseAsync();
        await MySqlTestDb.ExecAsync(db, "CREATE TABLE t (id INT PRIMARY KEY)", "INSERT INTO t VALUES (1), (2)");
        var backupDir = _scratch.TempDir("backups");
        var config = await ConfigAsync(backupDir, db, "none");
        Assert.Equal(Success, (await CliAsync("backup", "-i", "1", "-d", db, "--config", config)).ExitCode);
        var name = Path.GetFileName(Assert.Single(Ops.DataFilesUnder(backupDir)));
        var before = Snapshot(backupDir);

        // Not a file in the current directory: found in instance 1's destinations.
        var target = _scratch.MySqlName();
        var restore = await CliAsync("restore", "--file", name, "-i", "1", "--target", target, "--config", config);
        Assert.True(restore.ExitCode == Success, restore.ToString());
        Assert.Equal(2L, Convert.ToInt64(await MySqlTestDb.ScalarAsync(target, "SELECT COUNT(*) FROM t"), CultureInfo.InvariantCulture));

        // A dry run onto a target that holds data says that --force would be needed.
        var dryRun = await CliAsync("restore", "--file", name, "-i", "1", "--target", target, "--dry-run", "--config", config);
        Assert.True(dryRun.ExitCode == Success, dryRun.ToString());
        Assert.Contains("needs --force", dryRun.Stdout, StringComparison.Ordinal);

        // A file that is not a backup is refused without first being announced as restored.
        var notes = Path.Combine(_scratch.TempDir("files"), "notes.sql");
        await File.WriteAllTextAsync(notes, "hello\n");
        var other = _scratch.MySqlName();
        var refused = await CliAsync("restore", "--file", notes, "-i", "1", "--target", other, "--config", config);
        Assert.True(refused.ExitCode == UsageOrConfig, refused.ToString());
        Assert.DoesNotContain("restoring", refused.Stdout, StringComparison.Ordinal);
        Assert.Contains("does not look like a backup", Assert.Single(StderrLines(refused)), StringComparison.Ordinal);
        Assert.False(await MySqlTestDb.ExistsAsync(other));

        // A name that is nowhere: one line saying where it looked.
        var missing = await CliAsync("restore", "--file", "20200101_000000_mysql_nowhere.sql.zst", "-i", "1", "--config", config);
        Assert.True(missing.ExitCode == UsageOrConfig, missing.ToString());
        Assert.Contains(Path.Combine(backupDir, "it-mysql"), Assert.Single(StderrLines(missing)), StringComparison.Ordinal);
        Assert.Equal(before, Snapshot(backupDir));
        AssertNothingLeftInTmp();
    }

    [SkippableFact]
    public async Task Backup_all_prune_with_one_server_down_prunes_the_others_and_names_what_it_skipped()
    {
        await TestServers.RequireMySqlAsync();
        var db = await _scratch.NewMySqlDatabaseAsync();
        var backupDir = _scratch.TempDir("backups");
        var mysql = TestServers.MySql(name: "it-mysql");
        var pg = TestServers.Postgres(name: "it-pg");
        var oldMysql = Create(backupDir, mysql, db, Utc("20260101_010000"));
        var oldPg = Create(backupDir, pg, "pgdb", Utc("20260101_010000"));
        Create(backupDir, pg, "pgdb", Utc("20260102_010000"));
        var config = await ConfigAsync(backupDir, db, "pgdb", mysqlExtra: "retention: {keep_last: 1}", pgExtra: "retention: {keep_last: 1}");
        // The PostgreSQL server of instance 2 is down for good.
        await File.WriteAllTextAsync(config, (await File.ReadAllTextAsync(config))
            .Replace($"port: {TestServers.PgPort}", $"port: {Ops.DeadPort()}", StringComparison.Ordinal));
        var pgBefore = Snapshot(backupDir).Where(f => f.Key.StartsWith("it-pg/", StringComparison.Ordinal)).ToDictionary();

        var run = await CliAsync("backup", "--all", "--prune", "--config", config);

        Assert.True(run.ExitCode == PartialFailure, run.ToString());
        Assert.Contains("its backup failed", OneLineAbout(run, "not pruning instance 2 (it-pg)"), StringComparison.Ordinal);
        Assert.False(File.Exists(Path.Combine(backupDir, oldMysql)), "instance 1 was not pruned");
        Assert.Single(Ops.DataFilesUnder(backupDir), f => f.StartsWith("it-mysql/", StringComparison.Ordinal));
        Assert.Equal(pgBefore, Snapshot(backupDir).Where(f => f.Key.StartsWith("it-pg/", StringComparison.Ordinal)).ToDictionary());
        Assert.True(File.Exists(Path.Combine(backupDir, oldPg)));
        AssertNothingLeftInTmp();
    }

    [SkippableFact]
    public async Task Copy_brings_a_destination_that_was_down_up_to_date_checking_each_backup_against_its_manifest()
    {
        await TestServers.RequireMySqlAsync();
        await TestServers.RequireSftpAsync();
        var db = await _scratch.NewMySqlDatabaseAsync();
        await MySqlTestDb.ExecAsync(db, "CREATE TABLE t (id INT PRIMARY KEY)", "INSERT INTO t VALUES (1), (2)");
        var backupDir = _scratch.TempDir("backups");
        var mysql = TestServers.MySql(name: "it-mysql");
        var damaged = Create(backupDir, mysql, db, Utc("20260101_010000"));
        FlipByte(Path.Combine(backupDir, damaged));
        var folder = $"itest-{Guid.NewGuid():N}";
        var box = $"""
              - name: box
                type: sftp
                host: 127.0.0.1
                port: {TestServers.SftpPort}
                user: {TestServers.SftpUser}
                private_key_file: '{TestServers.SftpKeyFile}'
                host_fingerprint: '{TestServers.SftpFingerprint}'
                path: {folder}
            """;
        var config = await ConfigAsync(backupDir, db, "none", mysqlExtra: "storage: [local, box]", topLevel: box);
        var down = await ConfigAsync(backupDir, db, "none", mysqlExtra: "storage: [local, box]",
            topLevel: box.Replace($"port: {TestServers.SftpPort}", $"port: {Ops.DeadPort()}", StringComparison.Ordinal));
        var home = Path.Combine(TestServers.SftpHome, folder);
        try
        {
            // The offsite server is down during the backup: the local one is complete, the copy missing.
            var backup = await CliAsync("backup", "-i", "1", "-d", db, "--config", down);
            Assert.True(backup.ExitCode == Failed, backup.ToString());
            var fresh = Assert.Single(Ops.DataFilesUnder(backupDir), f => f != damaged);
            var before = Snapshot(backupDir);

            var dryRun = await CliAsync("copy", "--to", "box", "-i", "1", "--dry-run", "--config", config);
            Assert.True(dryRun.ExitCode == Success, dryRun.ToString());
            Assert.Contains($"would copy {Path.Combine(backupDir, fresh)}", dryRun.Stdout, StringComparison.Ordinal);
            Assert.False(Directory.Exists(home) && Directory.EnumerateFiles(home, "*", SearchOption.AllDirectories).Any());

            // Back up: copy what it lacks. The damaged old backup is refused (its digest), the good one copied.
            var copy = await CliAsync("copy", "--to", "box", "-i", "1", "--config", config);

            Assert.True(copy.ExitCode == VerificationFailed, copy.ToString());
            Assert.Contains("differ from its manifest's digest", OneLineAbout(copy, Path.GetFileName(damaged)), StringComparison.Ordinal);
            Assert.Contains("copy summary: 1 copied to 'box', 1 failed", copy.Stdout, StringComparison.Ordinal);
            var remote = Directory.GetFiles(home, "*", SearchOption.AllDirectories).Select(f => Path.GetRelativePath(home, f)).Order(StringComparer.Ordinal).ToList();
            Assert.Equal(new[] { fresh, fresh + BackupManifest.Suffix, fresh + BackupManifest.ChecksumSuffix }.Order(StringComparer.Ordinal), remote);
            Assert.Equal(Ops.Sha256(Path.Combine(backupDir, fresh)), Ops.Sha256(Path.Combine(home, fresh)));
            Assert.Equal(before, Snapshot(backupDir));
            var verify = await CliAsync("verify", "--file", $"box:{fresh}", "--config", config);
            Assert.True(verify.ExitCode == Success, verify.ToString());

            // The newest backup of each database (--latest) is there now: nothing to do.
            var again = await CliAsync("copy", "--to", "box", "-i", "1", "--latest", "--config", config);
            Assert.True(again.ExitCode == Success, again.ToString());
            Assert.Contains("copy summary: 0 copied", again.Stdout, StringComparison.Ordinal);
            AssertNothingLeftInTmp();
        }
        finally
        {
            if (Directory.Exists(home))
            {
                Directory.Delete(home, recursive: true);
            }
        }
    }

    /// <summary>
    /// A copy cut off after its data file and .sha256, before its manifest: the next copy completes it
    /// (the data checked byte for byte against the manifest); a .sha256 there that is not this backup's is
    /// named for removal by hand, and nothing is overwritten.
    /// </summary>
    [SkippableTheory]
    [InlineData("local", true)]
    [InlineData("local", false)]
    [InlineData("sftp", true)]
    [InlineData("s3", true)]
    public async Task Copy_completes_a_copy_cut_off_before_its_manifest(string backend, bool rightChecksum)
    {
        await TestServers.RequireMySqlAsync();
        await RequireAsync(backend);
        var db = await _scratch.NewMySqlDatabaseAsync();
        await MySqlTestDb.ExecAsync(db, "CREATE TABLE t (id INT PRIMARY KEY)", "INSERT INTO t VALUES (1), (2)");
        var backupDir = _scratch.TempDir("backups");
        var (box, boxYaml) = Box(backend);
        // The backup goes to local only (box was down); copy then brings box, one of the instance's destinations, up to date.
        var localOnly = await ConfigAsync(backupDir, db, "none", topLevel: boxYaml);
        var config = await ConfigAsync(backupDir, db, "none", mysqlExtra: "storage: [local, box]", topLevel: boxYaml);
        var storage = Storage.StorageSet.Create(box);
        try
        {
            var backup = await CliAsync("backup", "-i", "1", "-d", db, "--config", localOnly);
            Assert.True(backup.ExitCode == Success, backup.ToString());
            var key = Assert.Single(Ops.DataFilesUnder(backupDir));
            // What a copy cut off between its .sha256 and its manifest leaves.
            var checksum = rightChecksum
                ? File.ReadAllBytes(Path.Combine(backupDir, key + BackupManifest.ChecksumSuffix))
                : System.Text.Encoding.UTF8.GetBytes($"{new string('0', 64)}  {Path.GetFileName(key)}\n");
            foreach (var (name, content) in new[] { (key, File.ReadAllBytes(Path.Combine(backupDir, key))), (key + BackupManifest.ChecksumSuffix, checksum) })
            {
                await using var write = await storage.CreateAsync(name, CancellationToken.None);
                await write.Content.WriteAsync(content);
                await write.CommitAsync(CancellationToken.None);
            }

            var copy = await CliAsync("copy", "--to", "box", "-i", "1", "--config", config);

            if (!rightChecksum)
            {
                Assert.True(copy.ExitCode == Failed, copy.ToString());
                Assert.Contains("remove it by hand", OneLineAbout(copy, key + BackupManifest.ChecksumSuffix), StringComparison.Ordinal);
                Assert.Null(await storage.StatAsync(key + BackupManifest.Suffix, CancellationToken.None));
                return;
            }
            Assert.True(copy.ExitCode == Success, copy.ToString());
            Assert.Contains("copy summary: 1 copied to 'box'", copy.Stdout, StringComparison.Ordinal);
            var verify = await CliAsync("verify", "--file", $"box:{key}", "--config", config);
            Assert.True(verify.ExitCode == Success, verify.ToString());
            var again = await CliAsync("copy", "--to", "box", "-i", "1", "--config", config);
            Assert.True(again.ExitCode == Success, again.ToString());
            Assert.Contains("copy summary: 0 copied", again.Stdout, StringComparison.Ordinal);
            AssertNothingLeftInTmp();
        }
        finally
        {
            await EmptyAsync(storage, box);
        }
    }

    [Theory]
    [InlineData("stored_bytes as a string")]
    [InlineData("a missing field")]
    [InlineData("schema_version 99")]
    public async Task Verify_fails_a_backup_whose_manifest_is_damaged_with_exit_4(string damage)
    {
        var backupDir = _scratch.TempDir("backups");
        var key = Create(backupDir, TestServers.MySql(name: "it-mysql"), "dns_db", Utc("20260101_010000"));
        var manifestPath = Path.Combine(backupDir, key + BackupManifest.Suffix);
        var json = await File.ReadAllTextAsync(manifestPath);
        var damaged = damage switch
        {
            "stored_bytes as a string" => Regex.Replace(json, "\"stored_bytes\": ([0-9]+)", "\"stored_bytes\": \"$1\""),
            "a missing field" => Regex.Replace(json, "\"plain_sha256\": \"[0-9a-f]+\",\\s*", ""),
            _ => Regex.Replace(json, "\"schema_version\": [0-9]+", "\"schema_version\": 99"),
        };
        Assert.NotEqual(json, damaged);
        await File.WriteAllTextAsync(manifestPath, damaged);
        var config = await ConfigAsync(backupDir, "dns_db", "none");

        // A manifest that was read and is damaged is a failed backup (exit 4), not one that could not be checked (1).
        foreach (var how in new[] { new[] { "--file", Path.Combine(backupDir, key) }, ["--instance", "1"] })
        {
            var verify = await CliAsync(["verify", .. how, "--config", config]);
            Assert.True(verify.ExitCode == VerificationFailed, verify.ToString());
            Assert.Contains($"FAILED {Path.Combine(backupDir, key)}: manifest", verify.Stdout, StringComparison.Ordinal);
            Assert.Contains("1 failed", verify.Stdout, StringComparison.Ordinal);
            Assert.DoesNotContain("VyaBackupDb.", verify.ToString(), StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task Verify_fails_as_list_does_a_backup_whose_manifest_describes_another_file_or_database()
    {
        var backupDir = _scratch.TempDir("backups");
        var key = Create(backupDir, TestServers.MySql(name: "it-mysql"), "dns_db", Utc("20260101_010000"));
        var folder = Path.Combine(backupDir, Path.GetDirectoryName(key)!);
        var manifest = BackupManifest.FromJson(await File.ReadAllBytesAsync(Path.Combine(backupDir, key + BackupManifest.Suffix)));
        // An old backup copied under a newer name with its manifest; and one whose manifest says another database.
        var otherFile = new BackupName(Utc("20261231_235959"), Dbms.MySql, "dns_db", Pipeline.Compression.None).FileName;
        var otherDatabase = new BackupName(Utc("20261231_235958"), Dbms.MySql, "dns_db", Pipeline.Compression.None).FileName;
        foreach (var (name, written) in new[] { (otherFile, manifest), (otherDatabase, manifest with { DataFile = otherDatabase, Database = "other_db" }) })
        {
            File.Copy(Path.Combine(backupDir, key), Path.Combine(folder, name));
            await File.WriteAllBytesAsync(Path.Combine(folder, name + BackupManifest.Suffix), written.ToJson());
        }
        var config = await ConfigAsync(backupDir, "dns_db", "none");

        var byFile = await CliAsync("verify", "--file", Path.Combine(folder, otherFile), "--config", config);
        Assert.True(byFile.ExitCode == VerificationFailed, byFile.ToString());
        Assert.Contains($"the manifest describes another file, {Path.GetFileName(key)}", byFile.Stdout, StringComparison.Ordinal);
        var byDatabase = await CliAsync("verify", "--file", Path.Combine(folder, otherDatabase), "--config", config);
        Assert.True(byDatabase.ExitCode == VerificationFailed, byDatabase.ToString());
        Assert.Contains("the manifest describes another database, 'other_db'", byDatabase.Stdout, StringComparison.Ordinal);
        var all = await CliAsync("verify", "--instance", "1", "--config", config);
        Assert.True(all.ExitCode == VerificationFailed, all.ToString());
        Assert.Contains("verify summary: 1 OK, 2 failed", all.Stdout, StringComparison.Ordinal);

        // list says what is wrong, as verify does, not "unreadable".
        var list = await CliAsync("list", "--instance", "1", "--config", config);
        Assert.True(list.ExitCode == Success, list.ToString());
        Assert.Contains("NO: the manifest describes another file", list.Stdout, StringComparison.Ordinal);
        Assert.Contains("NO: the manifest describes another database", list.Stdout, StringComparison.Ordinal);
        Assert.DoesNotContain("unreadable", list.Stdout, StringComparison.Ordinal);
    }

    [SkippableFact]
    public async Task Restore_refuses_as_verify_does_a_backup_whose_manifest_describes_another_file_or_database()
    {
        await TestServers.RequireMySqlAsync();
        var db = await _scratch.NewMySqlDatabaseAsync();
        await MySqlTestDb.ExecAsync(db, "CREATE TABLE t (id INT PRIMARY KEY)", "INSERT INTO t VALUES (1)");
        var backupDir = _scratch.TempDir("backups");
        var config = await ConfigAsync(backupDir, db, "none");
        Assert.Equal(Success, (await CliAsync("backup", "-i", "1", "-d", db, "--config", config)).ExitCode);
        var key = Assert.Single(Ops.DataFilesUnder(backupDir));
        var folder = Path.Combine(backupDir, Path.GetDirectoryName(key)!);
        var manifest = BackupManifest.FromJson(await File.ReadAllBytesAsync(Path.Combine(backupDir, key + BackupManifest.Suffix)));
        var name = BackupName.TryParse(Path.GetFileName(key))!;
        // An old backup copied under a newer name with its manifest; and one whose manifest says another database.
        var otherFile = (name with { TimestampUtc = name.TimestampUtc.AddDays(1) }).FileName;
        var otherDatabase = (name with { TimestampUtc = name.TimestampUtc.AddDays(2) }).FileName;
        foreach (var (copy, written) in new[] { (otherFile, manifest), (otherDatabase, manifest with { DataFile = otherDatabase, Database = "other_db" }) })
        {
            File.Copy(Path.Combine(backupDir, key), Path.Combine(folder, copy));
            await File.WriteAllBytesAsync(Path.Combine(folder, copy + BackupManifest.Suffix), written.ToJson());
        }
        var before = Snapshot(backupDir);

        // Refused before any database is touched, with verify's exit code; --no-verify does not let the manifest steer a restore either.
        foreach (var (file, problem) in new[]
        {
            (otherFile, $"the manifest describes another file, {Path.GetFileName(key)}"),
            (otherDatabase, "the manifest describes another database, 'other_db'"),
        })
        {
            foreach (var extra in new[] { Array.Empty<string>(), ["--no-verify"] })
            {
                var target = _scratch.MySqlName();
                var restore = await CliAsync(["restore", "--file", Path.Combine(folder, file), "-i", "1", "--target", target, .. extra, "--config", config]);
                Assert.True(restore.ExitCode == VerificationFailed, restore.ToString());
                var line = Assert.Single(StderrLines(restore));
                Assert.StartsWith("vya-backupdb: error: ", line, StringComparison.Ordinal);
                Assert.Contains(file, line, StringComparison.Ordinal);
                Assert.Contains(problem, line, StringComparison.Ordinal);
                Assert.DoesNotContain("VyaBackupDb.", line, StringComparison.Ordinal);
                Assert.DoesNotContain("restoring", restore.Stdout, StringComparison.Ordinal);
                Assert.False(await MySqlTestDb.ExistsAsync(target), $"{file}: '{target}' was created");
            }
        }
        Assert.Equal(before, Snapshot(backupDir));
        AssertNothingLeftInTmp();
    }

    /// <summary>Two backups of dns_db (2026-01-01 and -02) in backup_dir, and an empty local destination 'box' beside it.</summary>
    private async Task<(string BackupDir, string BoxDir, string First, string Second, string Config)> TwoBackupsAndABoxAsync()
    {
        var backupDir = _scratch.TempDir("backups");
        var boxDir = _scratch.TempDir("box");
        var mysql = TestServers.MySql(name: "it-mysql");
        var first = Create(backupDir, mysql, "dns_db", Utc("20260101_010000"));
        var second = Create(backupDir, mysql, "dns_db", Utc("20260102_010000"));
        var config = await ConfigAsync(backupDir, "dns_db", "none", mysqlExtra: "storage: [local, box]",
            topLevel: $"  - {{name: box, type: local, path: '{boxDir}'}}");
        return (backupDir, boxDir, first, second, config);
    }

    /// <summary>
    /// A copy whose data file was lost (its manifest and .sha256 left) or truncated: list shows it, verify fails it,
    /// and copy names it for removal by hand, run after run, without uploading or deleting anything.
    /// </summary>
    [Fact]
    public async Task A_lost_or_damaged_copy_is_listed_fails_verify_and_copy_names_it_touching_nothing()
    {
        var (_, boxDir, lost, damaged, config) = await TwoBackupsAndABoxAsync();
        var copied = await CliAsync("copy", "--to", "box", "-i", "1", "--config", config);
        Assert.True(copied.ExitCode == Success, copied.ToString());
        File.Delete(Path.Combine(boxDir, lost));
        var truncated = Path.Combine(boxDir, damaged);
        await File.WriteAllBytesAsync(truncated, (await File.ReadAllBytesAsync(truncated))[..10]);

        var list = await CliAsync("list", "--instance", "1", "--json", "--config", config);
        Assert.True(list.ExitCode == Success, list.ToString());
        Assert.Contains("\"status\": \"missing_data\"", list.Stdout, StringComparison.Ordinal);
        var text = await CliAsync("list", "--instance", "1", "--config", config);
        Assert.Single(text.Stdout.Split('\n'), l => l.Contains("NO: data file missing", StringComparison.Ordinal) && l.EndsWith("box", StringComparison.Ordinal));
        var verify = await CliAsync("verify", "--instance", "1", "--config", config);
        Assert.True(verify.ExitCode == VerificationFailed, verify.ToString());
        Assert.Contains($"FAILED {Path.Combine(boxDir, lost)}: the data file is missing", verify.Stdout, StringComparison.Ordinal);
        Assert.Contains($"FAILED {truncated}: truncated", verify.Stdout, StringComparison.Ordinal);
        var box = Snapshot(boxDir);

        // A dry run names the same refusals and counts neither as one it would copy.
        var dryRun = await CliAsync("copy", "--to", "box", "-i", "1", "--dry-run", "--config", config);
        Assert.True(dryRun.ExitCode == Failed, dryRun.ToString());
        Assert.Contains("remove it and its .sha256 by hand", OneLineAbout(dryRun, lost + BackupManifest.Suffix), StringComparison.Ordinal);
        Assert.Contains("copy summary (dry run): 0 would be copied to 'box', 2 refused", dryRun.Stdout, StringComparison.Ordinal);
        Assert.Equal(box, Snapshot(boxDir));

        for (var run = 0; run < 2; run++)
        {
            var copy = await CliAsync("copy", "--to", "box", "-i", "1", "--config", config);
            Assert.True(copy.ExitCode == Failed, copy.ToString());
            Assert.Contains("remove it and its .sha256 by hand", OneLineAbout(copy, lost + BackupManifest.Suffix), StringComparison.Ordinal);
            Assert.Contains("damaged (", OneLineAbout(copy, $"{truncated} is already there"), StringComparison.Ordinal);
            Assert.Contains("copy summary: 0 copied to 'box', 2 failed", copy.Stdout, StringComparison.Ordinal);
            Assert.Equal(box, Snapshot(boxDir));
        }
        AssertNothingLeftInTmp();
    }

    /// <summary>
    /// A backup damaged in the source (truncated there) is not copied, and says so with exit code 4, as verify would;
    /// the whole one beside it is copied (tr95: copy skipped it without a word, exit 0). With --latest, the damaged
    /// newest is named and the newest whole one copied.
    /// </summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_backup_damaged_in_the_source_is_named_and_not_copied(bool latest)
    {
        var (backupDir, boxDir, whole, damaged, config) = await TwoBackupsAndABoxAsync();
        var truncated = Path.Combine(backupDir, damaged);
        await File.WriteAllBytesAsync(truncated, (await File.ReadAllBytesAsync(truncated))[..10]);

        var copy = await CliAsync([.. new[] { "copy", "--to", "box", "-i", "1", "--config", config }, .. latest ? ["--latest"] : Array.Empty<string>()]);

        Assert.True(copy.ExitCode == VerificationFailed, copy.ToString());
        Assert.Contains($"{truncated} was not copied: it is damaged there (", copy.Stderr, StringComparison.Ordinal);
        Assert.Contains("copy summary: 1 copied to 'box', 1 failed", copy.Stdout, StringComparison.Ordinal);
        Assert.True(File.Exists(Path.Combine(boxDir, whole + BackupManifest.Suffix)), copy.ToString());
        Assert.False(File.Exists(Path.Combine(boxDir, damaged)), copy.ToString());
    }

    /// <summary>
    /// In --to, a data file under a backup's name that is not that backup (no manifest), and a .sha256 without its data
    /// file: the dry run names both refusals, as the copy does (tr75: "2 would be copied", exit 0; the copy refused both).
    /// </summary>
    [Fact]
    public async Task A_copy_dry_run_names_a_foreign_data_file_and_a_lone_sha256_as_the_copy_does()
    {
        var (backupDir, boxDir, foreign, lone, config) = await TwoBackupsAndABoxAsync();
        Directory.CreateDirectory(Path.GetDirectoryName(Path.Combine(boxDir, foreign))!);
        await File.WriteAllTextAsync(Path.Combine(boxDir, foreign), "not it");
        File.Copy(Path.Combine(backupDir, lone + BackupManifest.ChecksumSuffix), Path.Combine(boxDir, lone + BackupManifest.ChecksumSuffix));
        var box = Snapshot(boxDir);

        var dryRun = await CliAsync("copy", "--to", "box", "-i", "1", "--dry-run", "--config", config);
        var copy = await CliAsync("copy", "--to", "box", "-i", "1", "--config", config);

        Assert.True(dryRun.ExitCode == Failed, dryRun.ToString());
        Assert.Contains("copy summary (dry run): 0 would be copied to 'box', 2 refused", dryRun.Stdout, StringComparison.Ordinal);
        Assert.True(copy.ExitCode == Failed, copy.ToString());
        foreach (var run in new[] { dryRun, copy })
        {
            Assert.Contains("without a manifest, and is not this backup", OneLineAbout(run, $"{Path.Combine(boxDir, foreign)} is already there"),
                StringComparison.Ordinal);
            Assert.Contains("without its data file: remove it by hand", OneLineAbout(run, lone + BackupManifest.ChecksumSuffix), StringComparison.Ordinal);
        }
        Assert.Equal(box, Snapshot(boxDir));
    }

    /// <summary>
    /// The .sha256 beside a backup is what `sha256sum -c` checks in a recovery: one overwritten (zeros, another file's
    /// name, garbage) fails verify (exit 4, one line naming it), which removes its verify record, so list no longer
    /// says "sha256 ok".
    /// </summary>
    [Fact]
    public async Task A_sha256_file_that_is_not_the_backup_s_own_fails_verify_and_list()
    {
        var backupDir = _scratch.TempDir("backups");
        var key = Create(backupDir, TestServers.MySql(name: "it-mysql"), "dns_db", Utc("20260101_010000"));
        var config = await ConfigAsync(backupDir, "dns_db", "none");
        var path = Path.Combine(backupDir, key);
        var checksum = path + BackupManifest.ChecksumSuffix;
        var own = await File.ReadAllTextAsync(checksum);
        var verified = await CliAsync("verify", "--file", path, "--config", config);
        Assert.True(verified.ExitCode == Success, verified.ToString());
        Assert.Contains("sha256 ok", (await CliAsync("list", "-i", "1", "--config", config)).Stdout, StringComparison.Ordinal);

        var fileName = Path.GetFileName(key);
        foreach (var wrong in new[] { $"{new string('0', 64)}  {fileName}\n", own.Replace(fileName, "other.sql", StringComparison.Ordinal), "garbage\n" })
        {
            await File.WriteAllTextAsync(checksum, wrong);
            foreach (var how in new[] { new[] { "--file", path }, ["--instance", "1"] })
            {
                var verify = await CliAsync(["verify", .. how, "--config", config]);
                Assert.True(verify.ExitCode == VerificationFailed, verify.ToString());
                Assert.Single(verify.Stdout.Split('\n'), l => l.StartsWith("FAILED", StringComparison.Ordinal)
                    && l.Contains($"{checksum} is not this backup's checksum line", StringComparison.Ordinal));
            }
            var list = await CliAsync("list", "-i", "1", "--config", config);
            Assert.DoesNotContain("sha256 ok", list.Stdout, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task Copy_refuses_a_destination_that_is_not_the_instance_s()
    {
        var backupDir = _scratch.TempDir("backups");
        var boxDir = _scratch.TempDir("box");
        Create(backupDir, TestServers.MySql(name: "it-mysql"), "dns_db", Utc("20260101_010000"));
        var config = await ConfigAsync(backupDir, "dns_db", "none", topLevel: $"  - {{name: box, type: local, path: '{boxDir}'}}");

        // Nothing would ever list, verify or prune a copy there.
        var copy = await CliAsync("copy", "--to", "box", "-i", "1", "--config", config);

        Assert.True(copy.ExitCode == UsageOrConfig, copy.ToString());
        Assert.Contains("'box' is not a destination of instance 1 (it-mysql)", OneLineAbout(copy, "box"), StringComparison.Ordinal);
        Assert.Empty(Directory.GetFileSystemEntries(boxDir));

        // With --all, the instances that have it are copied (instance 2 has not): no refusal.
        var withBox = await ConfigAsync(backupDir, "dns_db", "none", mysqlExtra: "storage: [local, box]", topLevel: $"  - {{name: box, type: local, path: '{boxDir}'}}");
        var all = await CliAsync("copy", "--to", "box", "--all", "--config", withBox);
        Assert.True(all.ExitCode == Success, all.ToString());
        Assert.Contains("copy summary: 1 copied to 'box'", all.Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_copy_refused_by_a_sha256_already_there_removes_only_what_it_wrote()
    {
        var backupDir = _scratch.TempDir("backups");
        var boxDir = _scratch.TempDir("box");
        var key = Create(backupDir, TestServers.MySql(name: "it-mysql"), "dns_db", Utc("20260101_010000"));
        var manifest = BackupManifest.FromJson(await File.ReadAllBytesAsync(Path.Combine(backupDir, key + BackupManifest.Suffix)));
        // A .sha256 someone else left (or wrote meanwhile) where the copy's own would go.
        var stray = Path.Combine(boxDir, key + BackupManifest.ChecksumSuffix);
        Directory.CreateDirectory(Path.GetDirectoryName(stray)!);
        await File.WriteAllTextAsync(stray, "not this copy's\n");
        var from = new Storage.Local.LocalStorage(backupDir);
        var to = new Storage.Local.LocalStorage(boxDir);

        await Assert.ThrowsAnyAsync<Exception>(() => Operations.BackupOperation.CopyAsync(from, to, key, manifest, CancellationToken.None));

        Assert.Equal("not this copy's\n", await File.ReadAllTextAsync(stray));
        Assert.False(File.Exists(Path.Combine(boxDir, key)), "the data file it uploaded is removed");
    }

    private static async Task RequireAsync(string backend)
    {
        if (backend == "sftp")
        {
            await TestServers.RequireSftpAsync();
        }
        if (backend == "s3")
        {
            await TestServers.RequireS3Async();
        }
    }

    /// <summary>A storage 'box' of the given backend ("local", "sftp", "s3") in a folder of its own, and its config lines.</summary>
    private (StorageConfig Box, string Yaml) Box(string backend)
    {
        var folder = $"itest-{Guid.NewGuid():N}";
        StorageConfig box = backend switch
        {
            "local" => new LocalStorageConfig("box", _scratch.TempDir("box")),
            "sftp" => TestServers.Sftp(folder, "box"),
            _ => TestServers.S3($"itest/{folder}/", "box"),
        };
        var yaml = box switch
        {
            LocalStorageConfig local => $"  - {{name: box, type: local, path: '{local.Path}'}}",
            SftpStorageConfig => $"""
                  - name: box
                    type: sftp
                    host: 127.0.0.1
                    port: {TestServers.SftpPort}
                    user: {TestServers.SftpUser}
                    private_key_file: '{TestServers.SftpKeyFile}'
                    host_fingerprint: '{TestServers.SftpFingerprint}'
                    path: {folder}
                """,
            S3StorageConfig s3 => $"  - {{name: box, type: s3, endpoint: '{s3.Endpoint}', bucket: {s3.Bucket}, prefix: '{s3.Prefix}', "
                + $"access_key_id: {TestServers.S3AccessKey}, secret_access_key: {TestServers.S3SecretKey}}}",
            _ => throw new InvalidOperationException(),
        };
        return (box, yaml);
    }

    /// <summary>Removes what a test left in its 'box' (planted names too, which the storage itself passes over) and closes it.</summary>
    private static async Task EmptyAsync(Storage.IStorage storage, StorageConfig box)
    {
        (storage as IDisposable)?.Dispose();
        switch (box)
        {
            case LocalStorageConfig local:
                Directory.Delete(local.Path, recursive: true);
                break;
            case SftpStorageConfig sftp:
                // rm: .NET cannot name a file whose name is not UTF-8, to delete it.
                var rm = await Run.ProgramAsync("rm", ["-rf", Path.Combine(TestServers.SftpHome, sftp.Path)]);
                Assert.True(rm.ExitCode == 0, rm.ToString());
                break;
            case S3StorageConfig s3:
                using (var client = Storage.S3.S3Storage.CreateClient(s3))
                {
                    var listed = await client.ListObjectsV2Async(new Amazon.S3.Model.ListObjectsV2Request { BucketName = s3.Bucket, Prefix = s3.Prefix });
                    foreach (var entry in listed.S3Objects ?? [])
                    {
                        await client.DeleteObjectAsync(s3.Bucket, entry.Key);
                    }
                }
                break;
        }
    }

    /// <summary>
    /// A file another tool put in an instance's folder, named with a backslash (and on SFTP, one whose name is not
    /// UTF-8), a manifest beside it: list, status and verify pass over it with one warning naming it escaped,
    /// and carry on with the real backups.
    /// </summary>
    [SkippableTheory]
    [InlineData("local")]
    [InlineData("sftp")]
    [InlineData("s3")]
    public async Task A_file_whose_name_no_key_can_hold_is_passed_over_with_one_warning(string backend)
    {
        await TestServers.RequireMySqlAsync();
        await RequireAsync(backend);
        var db = await _scratch.NewMySqlDatabaseAsync();
        await MySqlTestDb.ExecAsync(db, "CREATE TABLE t (id INT PRIMARY KEY)", "INSERT INTO t VALUES (1)");
        var (box, boxYaml) = Box(backend);
        var config = await ConfigAsync(_scratch.TempDir("backups"), db, "none", mysqlExtra: "storage: [box]", topLevel: boxYaml);
        var storage = Storage.StorageSet.Create(box);
        const string planted = @"20260101_000000_mysql_x\a.sql.zst";
        try
        {
            var backup = await CliAsync("backup", "-i", "1", "-d", db, "--config", config);
            Assert.True(backup.ExitCode == Success, backup.ToString());
            foreach (var name in new[] { planted, planted + BackupManifest.Suffix })
            {
                await PlantAsync(box, "it-mysql/" + name);
            }
            if (box is SftpStorageConfig sftp)
            {
                // Bytes that are not UTF-8 (0xFF) in the name: it cannot be named back.
                var name = "20260102_000000_mysql_y\\377.sql.zst";
                var touch = await Run.ProgramAsync("sh", ["-c", $"""cd "$1" && touch "$(printf '{name}')" "$(printf '{name}.manifest.json')" """,
                    "sh", Path.Combine(TestServers.SftpHome, sftp.Path, "it-mysql")]);
                Assert.True(touch.ExitCode == 0, touch.ToString());
            }

            foreach (var command in new[] { "list -i 1 --all", "status -i 1", "verify -i 1" })
            {
                var run = await CliAsync([.. command.Split(' '), "--config", config]);

                Assert.True(run.ExitCode == Success, $"{command}: {run}");
                Assert.DoesNotContain("Exception", run.Stdout + run.Stderr, StringComparison.Ordinal);
                var warning = OneLineAbout(run, @"x\\a.sql.zst ");
                Assert.StartsWith("vya-backupdb: warning: ", warning, StringComparison.Ordinal);
                if (box is SftpStorageConfig)
                {
                    Assert.Contains(@"y\uFFFD.sql.zst", OneLineAbout(run, @"y\uFFFD.sql.zst "), StringComparison.Ordinal);
                }
            }
            var list = await CliAsync("list", "-i", "1", "--config", config);
            Assert.Contains(db, list.Stdout, StringComparison.Ordinal);
        }
        finally
        {
            await EmptyAsync(storage, box);
        }
    }

    /// <summary>Writes a small file under a key the tool itself would refuse, as another tool could.</summary>
    private static async Task PlantAsync(StorageConfig box, string key)
    {
        switch (box)
        {
            case LocalStorageConfig local:
                var path = Path.Combine(local.Path, key);
                Directory.CreateDirectory(Path.GetDirectoryName(path)!);
                await File.WriteAllTextAsync(path, "junk");
                break;
            case SftpStorageConfig sftp:
                await File.WriteAllTextAsync(Path.Combine(TestServers.SftpHome, sftp.Path, key), "junk");
                break;
            case S3StorageConfig s3:
                using (var client = Storage.S3.S3Storage.CreateClient(s3))
                {
                    await client.PutObjectAsync(new Amazon.S3.Model.PutObjectRequest { BucketName = s3.Bucket, Key = s3.Prefix + key, ContentBody = "junk" });
                }
                break;
        }
    }

    /// <summary>
    /// A planted 400 MiB "lease" in an SFTP destination's lock folder, expired: the backup reads no more of it than
    /// a lease can hold, takes it over as a damaged lease, and succeeds in little memory.
    /// </summary>
    [SkippableFact]
    public async Task An_oversized_planted_lease_is_not_read_whole()
    {
        Skip.IfNot(File.Exists("/usr/bin/time"), "/usr/bin/time measures the run's memory");
        await TestServers.RequireMySqlAsync();
        await TestServers.RequireSftpAsync();
        var db = await _scratch.NewMySqlDatabaseAsync();
        await MySqlTestDb.ExecAsync(db, "CREATE TABLE t (id INT PRIMARY KEY)", "INSERT INTO t VALUES (1)");
        var (box, boxYaml) = Box("sftp");
        var config = await ConfigAsync(_scratch.TempDir("backups"), db, "none", mysqlExtra: "storage: [box]", topLevel: boxYaml);
        var storage = Storage.StorageSet.Create(box);
        var home = Path.Combine(TestServers.SftpHome, ((SftpStorageConfig)box).Path);
        try
        {
            var lease = Path.Combine(home, Operations.StorageLock.KeyFor("it-mysql", db, 7));
            Directory.CreateDirectory(Path.GetDirectoryName(lease)!);
            await using (var file = File.Create(lease))
            {
                file.SetLength(400L << 20);
            }
            File.SetLastWriteTimeUtc(lease, DateTime.UtcNow.AddDays(-1));
            var chown = await Run.ProgramAsync("chown", ["-R", TestServers.SftpUser, home]);
            Assert.True(chown.ExitCode == 0, chown.ToString());

            var (cli, arguments, environment) = Run.CliCommand(new Dictionary<string, string> { ["TMPDIR"] = _tmp },
                "backup", "-i", "1", "-d", db, "--config", config);
            var run = await Run.ProgramAsync("/usr/bin/time", ["-f", "maxrss_kib=%M", cli, .. arguments], environment);

            Assert.True(run.ExitCode == Success, run.ToString());
            var maxRss = long.Parse(run.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries).Last()["maxrss_kib=".Length..], CultureInfo.InvariantCulture);
            Assert.True(maxRss < 300 << 10, $"the backup peaked at {maxRss >> 10} MiB:\n{run}");
        }
        finally
        {
            await EmptyAsync(storage, box);
        }
    }

    /// <summary>A legal database name whose encoded file name would not fit a file system's 255 bytes: refused in one line before the dump.</summary>
    [SkippableFact]
    public async Task A_database_name_too_long_for_a_file_name_fails_before_the_dump_in_one_line()
    {
        await TestServers.RequireMySqlAsync();
        var db = _scratch.TrackMySql(_scratch.MySqlName() + new string('é', 35));
        await MySqlTestDb.CreateAsync(db);
        var backupDir = _scratch.TempDir("backups");
        var config = await ConfigAsync(backupDir, db, "none");

        var run = await CliAsync("backup", "-i", "1", "-d", db, "--config", config);

        Assert.True(run.ExitCode == Failed, run.ToString());
        Assert.Contains("is too long for a backup file", OneLineAbout(run, db), StringComparison.Ordinal);
        Assert.DoesNotContain("backing up", run.Stderr, StringComparison.Ordinal);
        Assert.Empty(Ops.DataFilesUnder(backupDir));
    }

    /// <summary>
    /// A password source that cannot be used (password_env not set, password_file missing) is a config error (exit 2)
    /// for `backup` as for `restore`, with -i and with --all when every instance failed so (were 1 and 3); with another
    /// instance backed up, --all is a partial failure (3).
    /// </summary>
    [SkippableFact]
    public async Task An_unusable_password_source_is_a_config_error_for_backup_too()
    {
        await TestServers.RequirePostgresAsync();
        var pgDatabase = await _scratch.NewPostgresDatabaseAsync();
        var backupDir = _scratch.TempDir("backups");
        var config = await ConfigAsync(backupDir, "none", pgDatabase);
        var missingFile = Path.Combine(_scratch.TempDir("pw"), "missing");
        var instances = (await File.ReadAllTextAsync(config)).Split("- id: 2");
        await File.WriteAllTextAsync(config,
            instances[0].Replace($"password: '{TestServers.MySqlPassword}'", "password_env: NOT_SET_ANYWHERE", StringComparison.Ordinal)
            + "- id: 2" + instances[1].Replace($"password: '{TestServers.PgPassword}'", $"password_file: '{missingFile}'", StringComparison.Ordinal));

        var unsetEnv = await CliAsync("backup", "-i", "1", "--config", config);
        var noFile = await CliAsync("backup", "-i", "2", "--config", config);
        var all = await CliAsync("backup", "--all", "--config", config);

        Assert.True(unsetEnv.ExitCode == UsageOrConfig, unsetEnv.ToString());
        Assert.EndsWith("instances[0].password_env: environment variable NOT_SET_ANYWHERE is not set", OneLineAbout(unsetEnv, "FAILED"), StringComparison.Ordinal);
        Assert.True(noFile.ExitCode == UsageOrConfig, noFile.ToString());
        Assert.Contains($"instances[1].password_file: cannot read {missingFile}", OneLineAbout(noFile, "FAILED"), StringComparison.Ordinal);
        Assert.True(all.ExitCode == UsageOrConfig, all.ToString());
        Assert.Empty(Ops.DataFilesUnder(backupDir));

        await File.WriteAllTextAsync(missingFile, TestServers.PgPassword);
        var partial = await CliAsync("backup", "--all", "--config", config);

        Assert.True(partial.ExitCode == PartialFailure, partial.ToString());
        Assert.Single(Ops.DataFilesUnder(backupDir));
    }
}
