using System.Text.RegularExpressions;

namespace VyaBackupDb.Tests.Integration;

/// <summary>
/// The real CLI as an operator (or cron) runs it: no terminal, stdin closed. Checks exit codes,
/// that an error is one line on stderr, and that refusals and dry runs change nothing.
/// </summary>
[Trait("Category", "Integration")]
public sealed class CliTests : IAsyncLifetime
{
    private const int Success = 0;
    private const int Failed = 1;
    private const int UsageOrConfig = 2;

    private readonly Scratch _scratch = new();

    public Task InitializeAsync() => _scratch.InitializeAsync();

    public Task DisposeAsync() => _scratch.DisposeAsync();

    private static void AssertOneErrorLine(ProcessResult run, params string[] mentions)
    {
        var lines = run.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.True(lines.Length == 1, $"expected exactly one line on stderr:\n{run}");
        Assert.StartsWith("vya-backupdb: ", lines[0], StringComparison.Ordinal);
        foreach (var mention in mentions)
        {
            Assert.Contains(mention, lines[0], StringComparison.Ordinal);
        }
    }

    private async Task<(string Config, string BackupDir)> ConfigAsync(string? mySqlPassword = null, string? pgPassword = null)
    {
        var backupDir = Path.Combine(_scratch.TempDir("backups"), "store");
        return (await Cli.WriteConfigAsync(_scratch.TempDir("cfg"), backupDir, mySqlPassword, pgPassword), backupDir);
    }

    /// <summary>
    /// Values a script passes wrong (tr99): each is one line and exit 2, nothing created. Were: `--target --dry-run` a real
    /// restore into a database named --dry-run; `--jobs 1.5` and an empty --log-file a .NET trace, exit 134; `_globals`
    /// a database in no backup; /dev/zero as --config 4 GB of memory, then "out of memory"; --target with --globals and
    /// --account without it ignored; a folder as --file "not found"; a missing globals file .NET's "No such file or directory", exit 1.
    /// </summary>
    [Theory]
    [InlineData("restore --file {backup} -i 2 --target --dry-run", "--target needs a value: '--dry-run' is an option")]
    [InlineData("restore --file {backup} -i 2 --target _globals", "'_globals' is the name of an instance's users, roles and grants")]
    [InlineData("restore --file {backup} -i 2 --globals --target x", "--target does not apply with --globals")]
    [InlineData("restore --file {backup} -i 2 --account app", "--account needs --globals")]
    [InlineData("restore --file {folder} -i 2", "is a folder: --file names one backup file")]
    [InlineData("restore --file local:it-pg/20260101_000000_postgresql__globals.sql.zst -i 2 --globals", "backup file not found: ")]
    [InlineData("backup -i 1 --jobs 1.5", "--jobs must be a whole number between 1 and 64")]
    [InlineData("schedule --grace-seconds -5", "--grace-seconds must be a whole number between 0 and 86400")]
    [InlineData("--log-file {empty} list --all", "--log-file: an empty file name")]
    [InlineData("status --html {fifo}", "is a FIFO, not a regular file")]
    [InlineData("list --all --config /dev/zero", "it is larger than 4096 KiB: not a config file")]
    [InlineData("list --all --config {empty}", "--config: an empty file name")]
    [InlineData("verify --file {backup} --identity {empty}", "--identity: an empty file name")]
    public async Task A_wrong_value_is_one_line_and_exit_2_and_creates_nothing(string arguments, string expected)
    {
        var (config, _) = await ConfigAsync();
        var dir = _scratch.TempDir("args");
        var backup = Path.Combine(dir, "20260113_155440_postgresql_x.sql");
        await File.WriteAllTextAsync(backup, "-- PostgreSQL database dump complete\n");
        var fifo = Path.Combine(dir, "fifo");
        Assert.Equal(0, (await Run.ProgramAsync("mkfifo", [fifo])).ExitCode);
        var words = arguments.Replace("{backup}", backup, StringComparison.Ordinal).Replace("{fifo}", fifo, StringComparison.Ordinal).Replace("{folder}", dir, StringComparison.Ordinal).Split(' ')
            .Select(w => w == "{empty}" ? "" : w).ToArray();

        var run = await Run.CliAsync([.. words, .. words.Contains("--config") ? Array.Empty<string>() : ["--config", config]]);

        Assert.True(run.ExitCode == UsageOrConfig, run.ToString());
        AssertOneErrorLine(run, expected);
        Assert.Equal(["args.fifo", "x.sql"], Directory.GetFileSystemEntries(dir).Select(e => e == fifo ? "args.fifo" : Path.GetFileName(e)[^5..]).Order());
    }

    /// <summary>
    /// A planted globals backup that decodes to more than its manifest's plain_bytes stops there, exit 4 (tr106: it was
    /// read whole into memory, a 27 KB file decoding to 300 MB took 1.3 GB, before the digest refused it).
    /// </summary>
    [Fact]
    public async Task A_globals_backup_decoding_past_its_manifests_size_is_refused_there()
    {
        var (config, backupDir) = await ConfigAsync();
        var key = FabricatedBackups.Create(backupDir, TestServers.Postgres(name: "it-pg"), "_globals", FabricatedBackups.Utc("20260101_000000"));
        var file = Path.Combine(backupDir, key);
        var recorded = new FileInfo(file).Length;
        await File.WriteAllTextAsync(file, string.Concat(Enumerable.Repeat("-- " + new string('x', 1020) + "\n", 8192)));
        var manifest = System.Text.Json.Nodes.JsonNode.Parse(await File.ReadAllTextAsync(file + VyaBackupDb.Catalog.BackupManifest.Suffix))!;
        manifest["stored_bytes"] = new FileInfo(file).Length;
        manifest["stored_sha256"] = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(await File.ReadAllBytesAsync(file)));
        await File.WriteAllTextAsync(file + VyaBackupDb.Catalog.BackupManifest.Suffix, manifest.ToJsonString());

        var run = await Run.CliAsync("restore", "--globals", "--file", "local:" + key, "-i", "2", "--dry-run", "--config", config);

        Assert.True(run.ExitCode == 4, run.ToString());
        AssertOneErrorLine(run, $"decodes past the {recorded} bytes its manifest records; nothing was applied");
    }

    /// <summary>A metrics file that is a symbolic link is written where it points; the link stays (tr102: it became a file).</summary>
    [Fact]
    public async Task A_metrics_file_that_is_a_link_is_written_through_it()
    {
        var (config, _) = await ConfigAsync();
        var dir = _scratch.TempDir("metrics");
        var target = Path.Combine(dir, "real.prom");
        await File.WriteAllTextAsync(target, "");
        var link = Path.Combine(dir, "link.prom");
        File.CreateSymbolicLink(link, target);

        var run = await Run.CliAsync("backup", "-i", "1", "-d", "vt_none", "--metrics-file", link, "--config", config);

        Assert.True(run.ExitCode == Failed, run.ToString());
        Assert.Equal(target, new FileInfo(link).LinkTarget);
        Assert.Contains("vya_backupdb_", await File.ReadAllTextAsync(target), StringComparison.Ordinal);
    }

    /// <summary>
    /// `@file` is a value like any other, not a response file whose words replace it (tr99: `list -d @password-file`
    /// showed the password in an error line, and `-d @/etc/shadow` a line of it).
    /// </summary>
    [Fact]
    public async Task An_argument_starting_with_at_is_taken_as_it_is()
    {
        var (config, _) = await ConfigAsync();
        var secret = Path.Combine(_scratch.TempDir("args"), "pw");
        await File.WriteAllTextAsync(secret, "S3cret-in-a-file\n");

        var run = await Run.CliAsync("list", "@" + secret, "--config", config);

        Assert.True(run.ExitCode == UsageOrConfig, run.ToString());
        AssertOneErrorLine(run, $"'@{secret}'");
        Assert.DoesNotContain("S3cret-in-a-file", run.ToString(), StringComparison.Ordinal);
    }

    /// <summary>
    /// A metrics file that is a device is refused before anything runs (tr99: as root, `--metrics-file /dev/null` would
    /// have replaced the host's /dev/null with a file; shown here on a device node of the test's own).
    /// </summary>
    [SkippableFact]
    public async Task A_device_given_as_the_metrics_file_is_refused_and_left_as_it_is()
    {
        var (config, _) = await ConfigAsync();
        var device = Path.Combine(_scratch.TempDir("dev"), "null");
        Skip.If((await Run.ProgramAsync("mknod", [device, "c", "1", "3"])).ExitCode != 0, "mknod needs root");

        var run = await Run.CliAsync("backup", "-i", "1", "-d", "vt_none", "--metrics-file", device, "--config", config);

        Assert.True(run.ExitCode == UsageOrConfig, run.ToString());
        AssertOneErrorLine(run, $"--metrics-file {device}: is a device, not a regular file");
        Assert.Equal(0x2000, Convert.ToInt32((await Run.ProgramAsync("stat", ["-c", "%f", device])).Stdout.Trim(), 16) & 0xF000);
    }

    [Fact]
    public async Task Backup_with_both_instance_and_all_is_a_usage_error()
    {
        var (config, backupDir) = await ConfigAsync();

        var run = await Run.CliAsync("backup", "--instance", "1", "--all", "--config", config);

        Assert.True(run.ExitCode == UsageOrConfig, run.ToString());
        AssertOneErrorLine(run, "--instance", "--all");
        Assert.Empty(Ops.FilesUnder(backupDir));
    }

    [Fact]
    public async Task Unknown_instance_is_a_usage_error_for_backup_and_restore()
    {
        var (config, backupDir) = await ConfigAsync();
        var file = Path.Combine(_scratch.TempDir("files"), "20260113_155440_mysql_x.sql");
        await File.WriteAllTextAsync(file, "-- MariaDB dump\n-- Dump completed\n");

        var backup = await Run.CliAsync("backup", "--instance", "42", "--config", config);
        var restore = await Run.CliAsync("restore", "--file", file, "--instance", "42", "--config", config);

        Assert.True(backup.ExitCode == UsageOrConfig, backup.ToString());
        AssertOneErrorLine(backup, "instance 42");
        Assert.True(restore.ExitCode == UsageOrConfig, restore.ToString());
        AssertOneErrorLine(restore, "instance 42");
        Assert.Empty(Ops.FilesUnder(backupDir));
    }

    [SkippableFact]
    public async Task Backup_dry_run_names_the_target_file_and_writes_nothing()
    {
        await TestServers.RequireMySqlAsync();
        var db = await _scratch.NewMySqlDatabaseAsync();
        await MySqlTestDb.ExecAsync(db, "CREATE TABLE t (id INT PRIMARY KEY)");
        var (config, backupDir) = await ConfigAsync();

        var run = await Run.CliAsync("backup", "--instance", "1", "--database", db, "--dry-run", "--config", config);

        Assert.True(run.ExitCode == Success, run.ToString());
        var expected = new Regex($@"would back up instance 1 \(it-mysql\) database '{db}' to {Regex.Escape(backupDir)}/it-mysql/\d{{8}}_\d{{6}}_mysql_{db}\.sql\.zst");
        Assert.Matches(expected, run.Stdout);
        Assert.False(Directory.Exists(backupDir) && Ops.FilesUnder(backupDir).Count > 0, $"a dry run wrote files: {string.Join(", ", Ops.FilesUnder(backupDir))}");
    }

    [SkippableFact]
    public async Task Backup_then_restore_refuses_a_target_with_tables_unless_forced()
    {
        await TestServers.RequireMySqlAsync();
        var source = await _scratch.NewMySqlDatabaseAsync();
        await MySqlTestDb.ExecAsync(source, "CREATE TABLE t (id INT PRIMARY KEY, v TEXT)", "INSERT INTO t VALUES (1, 'from the backup')");
        var target = await _scratch.NewMySqlDatabaseAsync();
        await MySqlTestDb.ExecAsync(target, "CREATE TABLE precious (id INT PRIMARY KEY)", "INSERT INTO precious VALUES (7)");
        var targetBefore = await MySqlTestDb.FingerprintAsync(target);
        var (config, backupDir) = await ConfigAsync();

        var backup = await Run.CliAsync("backup", "-i", "1", "-d", source, "--config", config);
        Assert.True(backup.ExitCode == Success, backup.ToString());
        var file = Assert.Single(Ops.DataFilesUnder(backupDir));
        Assert.Matches($@"^it-mysql/\d{{8}}_\d{{6}}_mysql_{source}\.sql\.zst$", file);
        Assert.Contains("1 succeeded, 0 failed", backup.Stdout, StringComparison.Ordinal);
        file = Path.Combine(backupDir, file);

        var refused = await Run.CliAsync("restore", "-f", file, "-i", "1", "-t", target, "--config", config);

        Assert.True(refused.ExitCode == UsageOrConfig, refused.ToString());
        AssertOneErrorLine(refused, target, "--force");
        Assert.DoesNotContain("restoring", refused.Stdout, StringComparison.Ordinal);
        DbFingerprint.AssertSame(targetBefore, await MySqlTestDb.FingerprintAsync(target), "the target after a refused restore");

        var forced = await Run.CliAsync("restore", "-f", file, "-i", "1", "-t", target, "--force", "--config", config);

        Assert.True(forced.ExitCode == Success, forced.ToString());
        Assert.Contains($"restore summary: '{target}'", forced.Stdout, StringComparison.Ordinal);
        DbFingerprint.AssertSame(await MySqlTestDb.FingerprintAsync(source), await MySqlTestDb.FingerprintAsync(target), "the target after a forced restore");
    }

    [SkippableFact]
    public async Task Restore_dry_run_prints_the_plan_and_creates_nothing()
    {
        await TestServers.RequirePostgresAsync();
        var source = await _scratch.NewPostgresDatabaseAsync();
        await PgTestDb.ExecAsync(source, "CREATE TABLE t (id int PRIMARY KEY)", "INSERT INTO t VALUES (1)");
        var (config, backupDir) = await ConfigAsync();
        var backup = await Run.CliAsync("backup", "-i", "2", "-d", source, "-c", "gzip", "--config", config);
        Assert.True(backup.ExitCode == Success, backup.ToString());
        var file = Path.Combine(backupDir, Assert.Single(Ops.DataFilesUnder(backupDir)));
        Assert.EndsWith($"_postgresql_{source}.sql.gz", file, StringComparison.Ordinal);
        var target = _scratch.PostgresName();

        var run = await Run.CliAsync("restore", "-f", file, "-i", "2", "-t", target, "--dry-run", "--config", config);

        Assert.True(run.ExitCode == Success, run.ToString());
        Assert.Contains($"would restore {file}", run.Stdout, StringComparison.Ordinal);
        Assert.Contains($"postgresql backup of '{source}'", run.Stdout, StringComparison.Ordinal);
        Assert.Contains($"into '{target}' on instance 2 (it-pg); target will be created", run.Stdout, StringComparison.Ordinal);
        Assert.False(await PgTestDb.ExistsAsync(target), "a dry run created the target database");

        // A link to the backup is the backup (tr99: the plan showed the link's size, and no manifest was found beside it).
        var link = Path.Combine(_scratch.TempDir("links"), "latest.sql.gz");
        File.CreateSymbolicLink(link, file);
        var viaLink = await Run.CliAsync("restore", "-f", link, "-i", "2", "-t", target, "--dry-run", "--config", config);
        Assert.True(viaLink.ExitCode == Success, viaLink.ToString());
        Assert.Contains($"would restore {file} (", viaLink.Stdout, StringComparison.Ordinal);
        Assert.DoesNotContain("no manifest", viaLink.Stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("instance names swapped", run.Stderr + viaLink.Stderr, StringComparison.Ordinal);

        // Another server's instance now has the name, so the folder, that instance 2 had (tr98: names swapped; a
        // restore of "its" latest backup took the other server's data without a word).
        var yaml = (await File.ReadAllTextAsync(config)).Replace("name: it-pg", "name: it-pg-was", StringComparison.Ordinal);
        await File.WriteAllTextAsync(config, yaml + $"  - {{id: 3, name: it-pg, dbms: postgresql, host: localhost, port: {TestServers.PgPort}, "
            + $"user: {TestServers.PgUser}, password: '{TestServers.PgPassword}'}}\n");
        var swapped = await Run.CliAsync("restore", "-f", Path.GetFileName(file), "-i", "3", "-t", target, "--dry-run", "--config", config);
        Assert.True(swapped.ExitCode == Success, swapped.ToString());
        Assert.Contains($"is in the folder of instance 3 (it-pg) but was made by instance 2 (it-pg) of {TestServers.PgHost}:{TestServers.PgPort}, "
            + $"not of localhost:{TestServers.PgPort}: it holds that server's data (were instance names swapped?)", swapped.Stderr, StringComparison.Ordinal);
    }

    [SkippableFact]
    public async Task Wrong_password_fails_with_exit_1_and_never_prints_the_password()
    {
        await TestServers.RequireMySqlAsync();
        await TestServers.RequirePostgresAsync();
        const string WrongMySql = "Wr0ng-MySql-Secret-7Qz";
        const string WrongPg = "Wr0ng-Pg-Secret-4Kx";
        var (config, backupDir) = await ConfigAsync(WrongMySql, WrongPg);
        var target = _scratch.MySqlName();
        var file = Path.Combine(_scratch.TempDir("files"), "20260113_155440_mysql_vt_nothing.sql");
        await File.WriteAllTextAsync(file, "-- MariaDB dump 10.19\nSELECT 1;\n-- Dump completed\n");

        var runs = new[]
        {
            await Run.CliAsync("backup", "--instance", "1", "--config", config),
            await Run.CliAsync("backup", "--instance", "2", "--config", config),
            await Run.CliAsync("backup", "--all", "--config", config),
            await Run.CliAsync("restore", "-f", file, "-i", "1", "-t", target, "--config", config),
        };

        foreach (var run in runs)
        {
            Assert.True(run.ExitCode == Failed, run.ToString());
            Assert.DoesNotContain(WrongMySql, run.Stdout + run.Stderr, StringComparison.Ordinal);
            Assert.DoesNotContain(WrongPg, run.Stdout + run.Stderr, StringComparison.Ordinal);
            Assert.Contains("vya_test", run.Stderr, StringComparison.Ordinal);
        }
        Assert.Empty(Ops.FilesUnder(backupDir));
        Assert.False(await MySqlTestDb.ExistsAsync(target));
    }

    [SkippableFact]
    public async Task Postgres_backup_into_a_mysql_instance_is_refused_naming_both()
    {
        await TestServers.RequirePostgresAsync();
        await TestServers.RequireMySqlAsync();
        var source = await _scratch.NewPostgresDatabaseAsync();
        await PgTestDb.ExecAsync(source, "CREATE TABLE t (id int PRIMARY KEY)");
        var (config, backupDir) = await ConfigAsync();
        var backup = await Run.CliAsync("backup", "-i", "2", "-d", source, "--config", config);
        Assert.True(backup.ExitCode == Success, backup.ToString());
        var file = Path.Combine(backupDir, Assert.Single(Ops.DataFilesUnder(backupDir)));
        var target = _scratch.MySqlName();

        var run = await Run.CliAsync("restore", "-f", file, "-i", "1", "-t", target, "--config", config);

        Assert.True(run.ExitCode == UsageOrConfig, run.ToString());
        AssertOneErrorLine(run, "postgresql", "mysql", "instance 1");
        Assert.False(await MySqlTestDb.ExistsAsync(target), "the refused restore created the target");
    }
}
