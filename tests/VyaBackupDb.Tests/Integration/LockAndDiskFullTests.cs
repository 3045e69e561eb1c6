using System.Diagnostics;
using System.Globalization;
using VyaBackupDb.Catalog;
using VyaBackupDb.Config;
using VyaBackupDb.Operations;
using VyaBackupDb.Pipeline;

using static VyaBackupDb.Tests.Integration.FabricatedBackups;

namespace VyaBackupDb.Tests.Integration;

/// <summary>
/// A full disk fails the backup cleanly (no temp file, no manifest, the earlier backup intact),
/// and two runs for one database never write at once: the second exits "locked" naming the
/// holder, and a lock left by a dead run is taken over with a warning.
/// </summary>
[Trait("Category", "Integration")]
public sealed class LockAndDiskFullTests : IAsyncLifetime
{
    private const int Success = 0;
    private const int Failed = 1;
    private const int Locked = 5;

    private static readonly DateTimeOffset EarlierTime = new(2026, 1, 13, 15, 54, 40, TimeSpan.Zero);

    private readonly Scratch _scratch = new();

    public Task InitializeAsync() => _scratch.InitializeAsync();

    public Task DisposeAsync() => _scratch.DisposeAsync();

    // ---------------------------------------------------------------- 5. disk full

    [SkippableTheory]
    [InlineData(Dbms.MySql)]
    [InlineData(Dbms.PostgreSql)]
    public async Task Disk_full_fails_the_backup_leaves_no_file_and_keeps_the_earlier_backup(Dbms dbms)
    {
        var instance = dbms == Dbms.MySql ? TestServers.MySql(name: "it-mysql") : TestServers.Postgres(name: "it-pg");
        string db;
        if (dbms == Dbms.MySql)
        {
            await TestServers.RequireMySqlAsync();
            db = await _scratch.NewMySqlDatabaseAsync();
            await MySqlTestDb.ExecAsync(db, "CREATE TABLE b (id INT PRIMARY KEY, data LONGBLOB)");
        }
        else
        {
            await TestServers.RequirePostgresAsync();
            db = await _scratch.NewPostgresDatabaseAsync();
            await PgTestDb.ExecAsync(db, "CREATE TABLE b (id int PRIMARY KEY, data bytea)");
        }
        var backupDir = _scratch.TempDir("tmpfs");
        await MountSmallTmpfsAsync(backupDir);
        try
        {
            var config = await Cli.WriteConfigAsync(_scratch.TempDir("cfg"), backupDir);
            var earlier = await Ops.BackupAsync(instance, db, Compression.None, backupDir, new FixedTime(EarlierTime));
            Assert.True(earlier.Succeeded, earlier.Error);
            var filesBefore = Ops.FilesUnder(backupDir);
            var hashesBefore = filesBefore.ToDictionary(f => f, f => Ops.Sha256(Path.Combine(backupDir, f)));

            // ~5 MB of random bytes: a dump (hex) of ~10 MB, compression none, into 2 MB.
            for (var i = 0; i < 5; i++)
            {
                var data = System.Security.Cryptography.RandomNumberGenerator.GetBytes(1 << 20);
                await (dbms == Dbms.MySql
                    ? MySqlTestDb.ExecWithAsync(db, "INSERT INTO b VALUES (@p0, @p1)", i, data)
                    : PgTestDb.ExecWithAsync(db, "INSERT INTO b VALUES ($1, $2)", i, data));
            }

            var run = await Run.CliAsync("backup", "--instance", dbms == Dbms.MySql ? "1" : "2", "--database", db,
                "--compression", "none", "--config", config);

            Assert.True(run.ExitCode == Failed, run.ToString());
            var failed = Assert.Single(run.Stderr.Split('\n'), l => l.Contains("FAILED", StringComparison.Ordinal));
            Assert.Contains("No space left on device", failed, StringComparison.Ordinal);
            Assert.Contains($"{instance.Name}/{db}", failed, StringComparison.Ordinal);
            Assert.Contains("0 succeeded, 1 failed", run.Stdout, StringComparison.Ordinal);
            // Nothing new: no temp file, no data file, no manifest, no lock; the earlier backup byte for byte.
            Assert.Equal(filesBefore, Ops.FilesUnder(backupDir));
            Assert.Equal(hashesBefore, filesBefore.ToDictionary(f => f, f => Ops.Sha256(Path.Combine(backupDir, f))));
            Assert.True((await BackupFileChecker.CheckAsync(BackupLocation.LocalFile(earlier.Location!), Pipeline.DecryptionKeys.None, CancellationToken.None)).Ok, "the earlier backup no longer verifies");
        }
        finally
        {
            await UnmountAsync(backupDir);
        }
    }

    /// <summary>
    /// A file size limit (ulimit -f, SIGXFSZ ignored as a service manager may set it) makes a write fail with
    /// EFBIG, which .NET reports as an ArgumentOutOfRangeException: the backup fails in one line, no trace, no temp file.
    /// </summary>
    [SkippableTheory]
    [InlineData("none")]
    [InlineData("gzip")]
    [InlineData("zstd")]
    public async Task A_file_size_limit_fails_the_backup_in_one_line_and_leaves_no_temp_file(string compression)
    {
        await TestServers.RequireMySqlAsync();
        var db = await _scratch.NewMySqlDatabaseAsync();
        await MySqlTestDb.ExecAsync(db, "CREATE TABLE b (id INT PRIMARY KEY, data LONGBLOB)");
        for (var i = 0; i < 3; i++)
        {
            await MySqlTestDb.ExecWithAsync(db, "INSERT INTO b VALUES (@p0, @p1)", i, System.Security.Cryptography.RandomNumberGenerator.GetBytes(1 << 20));
        }
        var backupDir = _scratch.TempDir("backups");
        var config = await Cli.WriteConfigAsync(_scratch.TempDir("cfg"), backupDir);

        var run = await CliUnderFileSizeLimitAsync(1024, null, "backup", "-i", "1", "-d", db, "--compression", compression, "--config", config);

        Assert.True(run.ExitCode == Failed, run.ToString());
        Assert.DoesNotContain("Exception", run.ToString(), StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", run.Stderr, StringComparison.Ordinal);
        var failed = Assert.Single(run.Stderr.Split('\n'), l => l.Contains("FAILED", StringComparison.Ordinal));
        Assert.Contains("file size limit", failed, StringComparison.Ordinal);
        Assert.Contains("0 succeeded, 1 failed", run.Stdout, StringComparison.Ordinal);
        Assert.Empty(Ops.FilesUnder(backupDir));
    }

    /// <summary>
    /// A files restore under a file size limit smaller than a file it restores (tr72: killed by SIGXFSZ, exit 153, no line,
    /// the staging directory left beside the target): one line naming the limit, exit 1, no target, nothing beside it.
    /// </summary>
    [Fact]
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    public async Task A_file_size_limit_fails_a_files_restore_in_one_line_and_leaves_nothing()
    {
        var dir = _scratch.TempDir("files");
        var source = Path.Combine(dir, "source");
        Directory.CreateDirectory(source);
        await File.WriteAllBytesAsync(Path.Combine(source, "big.bin"), System.Security.Cryptography.RandomNumberGenerator.GetBytes(3 << 20));
        var backups = Path.Combine(dir, "backups");
        var config = await FileTrees.WriteConfigAsync(dir, backups, $$"""
            - {id: 4, name: data, dbms: files, paths: [{{FileTrees.Yaml(source)}}]}
            """);
        var backup = await Run.CliAsync("backup", "--instance", "4", "--config", config);
        Assert.True(backup.ExitCode == 0, backup.ToString());
        var file = Path.Combine(backups, Assert.Single(Ops.DataFilesUnder(backups)));
        var restoreDir = _scratch.TempDir("restore");
        var target = Path.Combine(restoreDir, "restored");

        var run = await CliUnderFileSizeLimitAsync(1024, null, "restore", "--instance", "4", "--file", file, "--target", target, "--config", config);

        Assert.True(run.ExitCode == Failed, run.ToString());
        Assert.DoesNotContain("   at ", run.Stderr, StringComparison.Ordinal);
        Assert.Contains("the file size limit (ulimit -f) allows", Assert.Single(Cli.ErrorLines(run)), StringComparison.Ordinal);
        Assert.Empty(Directory.EnumerateFileSystemEntries(restoreDir));
    }

    /// <summary>`backup` that cannot even write its lock's holder file (ulimit -f 0): the database fails in one line, exit 1, no holder left.</summary>
    [SkippableFact]
    public async Task A_lock_holder_file_that_cannot_be_written_fails_the_backup_in_one_line()
    {
        var (db, instanceName, id) = await NewDatabaseAsync(Dbms.MySql);
        var backupDir = _scratch.TempDir("backups");
        var config = await Cli.WriteConfigAsync(_scratch.TempDir("cfg"), backupDir);

        var run = await CliUnderFileSizeLimitAsync(0, null, "backup", "-i", id, "-d", db, "--config", config);

        Assert.True(run.ExitCode == Failed, run.ToString());
        Assert.DoesNotContain("Exception", run.ToString(), StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", run.Stderr, StringComparison.Ordinal);
        var failed = Assert.Single(run.Stderr.Split('\n'), l => l.Contains("FAILED", StringComparison.Ordinal));
        Assert.Contains($"{instanceName}/{db}: cannot write the lock file", failed, StringComparison.Ordinal);
        Assert.EndsWith("the file size limit (ulimit -f) is reached", failed, StringComparison.Ordinal);
        Assert.False(File.Exists(BackupLock.PathFor(backupDir, instanceName, db) + ".holder"), "an empty holder file was left");
        Assert.Empty(Ops.DataFilesUnder(backupDir));
    }

    /// <summary>
    /// Found by a tester: a user who may not write in backup_dir was told "cannot write BACKUP FILE: Access to the path
    /// 'LOCK FILE' is denied.", naming the backup file though the lock file was refused.
    /// </summary>
    [Fact]
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    public async Task A_lock_file_that_may_not_be_created_is_named_in_the_failure()
    {
        var dir = _scratch.TempDir("files");
        var source = Path.Combine(dir, "tree");
        Directory.CreateDirectory(source);
        await File.WriteAllTextAsync(Path.Combine(source, "a"), "hi");
        var backupDir = Path.Combine(dir, "backups");
        Directory.CreateDirectory(backupDir);
        var config = await FileTrees.WriteConfigAsync(dir, backupDir, $"""
            - id: 7
              name: app
              dbms: files
              paths: [{FileTrees.Yaml(source)}]
            """);
        File.SetUnixFileMode(backupDir, (UnixFileMode)Convert.ToInt32("555", 8));
        try
        {
            var run = await Run.CliWithoutReadOverrideAsync("backup", "--instance", "7", "--config", config);

            Assert.True(run.ExitCode == Failed, run.ToString());
            var failed = Assert.Single(run.Stderr.Split('\n'), l => l.Contains("FAILED", StringComparison.Ordinal));
            Assert.EndsWith($"FAILED app: cannot write the lock file {BackupLock.PathFor(backupDir, "app", "app")}: permission denied", failed, StringComparison.Ordinal);
        }
        finally
        {
            File.SetUnixFileMode(backupDir, (UnixFileMode)Convert.ToInt32("755", 8));
        }
    }

    // ---------------------------------------------------------------- the open files limit

    /// <summary>
    /// A hard open files limit the runtime nearly fills by itself (~60 files): `list` says so in one line, exit 1
    /// (was an unhandled exception, exit 134, or "Could not load file or assembly").
    /// </summary>
    [Fact]
    public async Task List_under_a_low_open_files_limit_says_so_in_one_line()
    {
        var config = await Cli.WriteConfigAsync(_scratch.TempDir("cfg"), _scratch.TempDir("backups"));

        var run = await Run.CliUnderOpenFilesLimitAsync(64, "list", "--all", "--config", config);

        Assert.True(run.ExitCode == Failed, run.ToString());
        Assert.DoesNotContain("Exception", run.ToString(), StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", run.Stderr, StringComparison.Ordinal);
        Assert.Equal("vya-backupdb: error: too many open files (limit 64)", run.Stderr.Trim());
    }

    /// <summary>
    /// Limits at which the startup itself fails (about 22 to 32 files here: loading our library or Win32Exception's
    /// assembly, the signal handlers' pipe, stderr's dup) or the log setup (48: Output's type initializer cannot load an
    /// assembly): still one line and exit 1 (were "Unhandled exception." with a stack trace, exit 134; CI saw it at 32).
    /// Below about 22 the runtime itself cannot start.
    /// </summary>
    [Theory]
    [InlineData(30)]
    [InlineData(32)]
    [InlineData(36)]
    [InlineData(48)]
    public async Task Under_an_open_files_limit_too_low_for_the_console_the_error_is_one_line(int files)
    {
        var config = await Cli.WriteConfigAsync(_scratch.TempDir("cfg"), _scratch.TempDir("backups"));

        var run = await Run.CliUnderOpenFilesLimitAsync(files, "list", "--all", "--config", config);

        Assert.True(run.ExitCode == Failed, run.ToString());
        Assert.DoesNotContain("   at ", run.Stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("Exception", run.ToString(), StringComparison.Ordinal);
        Assert.StartsWith("vya-backupdb: error: too many open files", Assert.Single(run.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries)), StringComparison.Ordinal);
    }

    /// <summary>
    /// A backup (parallel engine, --jobs 4) under a limit too low for it: every error line names the limit, none a
    /// .NET type or "Could not load file or assembly", none a config error (exit 2), no stack trace; exit 1.
    /// </summary>
    [SkippableFact]
    public async Task Backup_under_a_low_open_files_limit_names_the_limit_in_each_error()
    {
        var (db, _, _) = await NewDatabaseAsync(Dbms.MySql);
        var dir = _scratch.TempDir("cfg");
        var backupDir = _scratch.TempDir("backups");
        var passwordFile = Path.Combine(dir, "pw");
        await File.WriteAllTextAsync(passwordFile, TestServers.MySqlPassword);
        var config = Path.Combine(dir, "config.yaml");
        await File.WriteAllTextAsync(config, $"""
            backup_dir: '{backupDir}'
            instances:
              - id: 1
                name: it-mysql
                dbms: mysql
                engine: parallel
                host: '{TestServers.MySqlHost}'
                port: {TestServers.MySqlPort}
                user: '{TestServers.MySqlUser}'
                password_file: '{passwordFile}'
                include: ['{db}']
                globals: false
            """);

        var run = await Run.CliUnderOpenFilesLimitAsync(100, "backup", "--all", "--jobs", "4", "--config", config);

        Assert.True(run.ExitCode == Failed, run.ToString());
        Assert.DoesNotContain("Exception", run.ToString(), StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", run.Stderr, StringComparison.Ordinal);
        var errors = run.Stderr.Split('\n').Where(l => l.Contains("FAILED", StringComparison.Ordinal) || l.Contains("error:", StringComparison.Ordinal)).ToList();
        Assert.NotEmpty(errors);
        Assert.All(errors, l => Assert.EndsWith("too many open files (limit 100)", l, StringComparison.Ordinal));
        Assert.Empty(Ops.DataFilesUnder(backupDir));
    }

    /// <summary>
    /// The CLI under a file size limit of <paramref name="kib"/> KiB (ulimit -f): a write past it fails (EFBIG) as one on a
    /// full disk would, without root or a mount. The CLI takes SIGXFSZ itself: by default it kills the process (tr72:
    /// exit 153, no line, the temp file and credential files left behind).
    /// </summary>
    private static Task<ProcessResult> CliUnderFileSizeLimitAsync(int kib, IDictionary<string, string>? environment, params string[] arguments)
    {
        var (dotnet, args, env) = Run.CliCommand(environment, arguments);
        // W^X maps the runtime's code through a file, which the limit would also stop.
        env["DOTNET_EnableWriteXorExecute"] = "0";
        return Run.ProgramAsync("bash", ["-c", $"ulimit -f {kib}; exec \"$@\"", "bash", dotnet, .. args], env);
    }

    // ---------------------------------------------------------------- this host's own files: the log, TMPDIR, the vault

    /// <summary>--log-file on a full disk (/dev/full: every write fails with ENOSPC): one warning, and the backup is not the worse for it.</summary>
    [SkippableTheory]
    [InlineData("text")]
    [InlineData("json")]
    public async Task A_log_file_on_a_full_disk_is_dropped_with_one_warning_and_the_backup_succeeds(string format)
    {
        var (db, _, id) = await NewDatabaseAsync(Dbms.PostgreSql);
        var backupDir = _scratch.TempDir("backups");
        var config = await Cli.WriteConfigAsync(_scratch.TempDir("cfg"), backupDir);

        var run = await Run.CliAsync("--log-file", "/dev/full", "--log-format", format, "backup", "--instance", id, "--database", db, "--config", config);

        Assert.True(run.ExitCode == Success, run.ToString());
        Assert.DoesNotContain("Exception", run.ToString(), StringComparison.Ordinal);
        var warning = Assert.Single(run.Stderr.Split('\n'), l => l.Contains("--log-file", StringComparison.Ordinal));
        Assert.Contains("--log-file: No space left on device (/dev/full); no longer writing to it", warning, StringComparison.Ordinal);
        Assert.Contains(format == "json" ? "\"level\":\"warning\"" : "vya-backupdb: warning:", warning, StringComparison.Ordinal);
        Assert.Contains("1 succeeded, 0 failed", run.Stdout, StringComparison.Ordinal);
        Assert.Single(Ops.DataFilesUnder(backupDir));
    }

    /// <summary>
    /// verify of a good encrypted zip (decrypted into a spool in TMPDIR) whose spool cannot be written: this host's
    /// problem, not the backup's. Exit 1, the temp directory named, the earlier verify record kept.
    /// </summary>
    [SkippableFact]
    public async Task Verify_that_cannot_spool_in_the_temp_directory_exits_1_naming_it_and_keeps_the_verify_record()
    {
        await TestServers.RequireMySqlAsync();
        var db = await _scratch.NewMySqlDatabaseAsync();
        await MySqlTestDb.ExecAsync(db, "CREATE TABLE b (id INT PRIMARY KEY, data LONGBLOB)");
        for (var i = 0; i < 2; i++)
        {
            await MySqlTestDb.ExecWithAsync(db, "INSERT INTO b VALUES (@p0, @p1)", i, System.Security.Cryptography.RandomNumberGenerator.GetBytes(1 << 20));
        }
        var dir = _scratch.TempDir("enc");
        var keyFile = Path.Combine(dir, "key.txt");
        var keygen = await Run.CliAsync("keygen", "--output", keyFile);
        Assert.True(keygen.ExitCode == Success, keygen.ToString());
        var backupDir = _scratch.TempDir("backups");
        var config = await Cli.WriteConfigAsync(dir, backupDir);
        await File.AppendAllTextAsync(config, $"encryption:\n  recipients: [\"{keygen.Stdout.Trim()}\"]\n  identity_files: ['{keyFile}']\n");
        var backup = await Run.CliAsync("backup", "-i", "1", "-d", db, "--compression", "zip", "--encrypt", "--config", config);
        Assert.True(backup.ExitCode == Success, backup.ToString());
        var file = Path.Combine(backupDir, Assert.Single(Ops.DataFilesUnder(backupDir)));
        Assert.EndsWith(".zip.age", file, StringComparison.Ordinal);
        var verified = await Run.CliAsync("verify", "--file", file, "--config", config);
        Assert.True(verified.ExitCode == Success, verified.ToString());
        var record = VerifyRecord.KeyFor(file);
        var recorded = await File.ReadAllBytesAsync(record);
        var tmp = _scratch.TempDir("tmp");

        // The 2 MiB of decrypted zip do not fit under a 1 MiB limit.
        var run = await CliUnderFileSizeLimitAsync(1024, new Dictionary<string, string> { ["TMPDIR"] = tmp }, "verify", "--file", file, "--config", config);

        Assert.True(run.ExitCode == Failed, run.ToString());
        Assert.DoesNotContain("FAILED", run.ToString(), StringComparison.Ordinal);
        Assert.DoesNotContain("Exception", run.ToString(), StringComparison.Ordinal);
        var error = Assert.Single(run.Stderr.Split('\n'), l => l.Contains("error:", StringComparison.Ordinal));
        Assert.Contains($"not checked: a temporary file in {tmp} would be larger than the file size limit (ulimit -f) allows (TMPDIR)", error, StringComparison.Ordinal);
        Assert.Equal(recorded, await File.ReadAllBytesAsync(record));
        Assert.Empty(Directory.EnumerateFileSystemEntries(tmp));
    }

    /// <summary>
    /// A directory given as --config or --log-file, and a standard output that is closed or full: one line naming the
    /// cause (were .NET's "Access to the path ... is denied" and a bare "No space left on device").
    /// </summary>
    [Fact]
    public async Task A_directory_for_a_file_and_an_unwritable_stdout_are_named_as_such()
    {
        var dir = _scratch.TempDir("cfg");
        var config = await Cli.WriteConfigAsync(dir, _scratch.TempDir("backups"));

        var configDir = await Run.CliAsync("list", "--all", "--config", dir);
        var logDir = await Run.CliAsync("--log-file", dir, "list", "--all", "--config", config);
        var (dotnet, args, env) = Run.CliCommand(null, "keygen");
        var full = await Run.ProgramAsync("bash", ["-c", "exec \"$@\" >/dev/full", "bash", dotnet, .. args], env);
        var closed = await Run.ProgramAsync("bash", ["-c", "exec \"$@\" >&-", "bash", dotnet, .. args], env);

        Assert.True(configDir.ExitCode == 2, configDir.ToString());
        Assert.Equal($"vya-backupdb: error: cannot read config file {dir}: it is a directory", configDir.Stderr.Trim());
        Assert.True(logDir.ExitCode == 2, logDir.ToString());
        Assert.Equal($"vya-backupdb: error: --log-file {dir}: is a directory (name a file in it)", logDir.Stderr.Trim());
        Assert.True(full.ExitCode == Failed, full.ToString());
        Assert.Equal("vya-backupdb: error: cannot write to the standard output: No space left on device", full.Stderr.Trim());
        Assert.True(closed.ExitCode == Failed, closed.ToString());
        Assert.Equal("vya-backupdb: error: cannot write to the standard output: it is closed or not open for writing", closed.Stderr.Trim());
    }

    /// <summary>
    /// A standard error on a full disk (a cron job's `2>>/var/log/...` when /var/log is full): the log lines are lost and
    /// each command does what it would have (tr97: backup, schedule and usage errors ended in a .NET trace, exit 134;
    /// prune deleted one backup, then died at its first "deleted" line; verify --restore called a good backup FAILED,
    /// exit 4, the failed write taken for its file's, and removed its verify record).
    /// </summary>
    [SkippableFact]
    public async Task A_full_standard_error_loses_the_log_lines_and_nothing_else()
    {
        var (db, _, id) = await NewDatabaseAsync(Dbms.PostgreSql);
        var backupDir = _scratch.TempDir("backups");
        var config = await Cli.WriteConfigAsync(_scratch.TempDir("cfg"), backupDir);
        await File.AppendAllTextAsync(config, "retention:\n  keep_last: 1\n");
        var instance = TestServers.Postgres(id: 2, name: "it-pg");
        var old = new[] { Utc("20250101_010000"), Utc("20250102_010000"), Utc("20250103_010000") }.Select(t => Create(backupDir, instance, "vt_old", t)).ToList();
        async Task<ProcessResult> StderrFullAsync(params string[] arguments)
        {
            var (dotnet, args, env) = Run.CliCommand(null, arguments);
            return await Run.ProgramAsync("bash", ["-c", "exec \"$@\" 2>/dev/full", "bash", dotnet, .. args], env);
        }

        var backup = await StderrFullAsync("backup", "-i", id, "-d", db, "--config", config);
        var file = Path.Combine(backupDir, Assert.Single(Ops.DataFilesUnder(backupDir), f => f.Contains(db, StringComparison.Ordinal)));
        var verify = await StderrFullAsync("verify", "--file", file, "--restore", "-i", id, "--config", config);
        var prune = await StderrFullAsync("prune", "-i", id, "--config", config);
        var usage = await StderrFullAsync("copy", "--to", "nowhere", "-i", id, "--config", config);

        Assert.True(backup.ExitCode == Success, backup.ToString());
        Assert.True(verify.ExitCode == Success, verify.ToString());
        Assert.Contains("OK", verify.Stdout, StringComparison.Ordinal);
        Assert.True(File.Exists(file + ".verify.json"), "no verify record");
        Assert.True(prune.ExitCode == Success, prune.ToString());
        Assert.Equal([old[2]], old.Where(key => File.Exists(Path.Combine(backupDir, key))));
        Assert.True(usage.ExitCode == 2, usage.ToString());
    }

    /// <summary>TMPDIR that does not exist (or is a file): backup and restore fail naming it, not the backup file.</summary>
    [SkippableFact]
    public async Task A_missing_temp_directory_is_named_in_the_error_not_the_backup_file()
    {
        var (db, _, id) = await NewDatabaseAsync(Dbms.PostgreSql);
        var backupDir = _scratch.TempDir("backups");
        var config = await Cli.WriteConfigAsync(_scratch.TempDir("cfg"), backupDir);
        var missing = Path.Combine(_scratch.TempDir("tmp"), "missing");
        var environment = new Dictionary<string, string> { ["TMPDIR"] = missing };
        var cause = $"the temporary directory {missing} does not exist (TMPDIR)";

        var backup = await Run.CliWithEnvAsync(environment, "backup", "-i", id, "-d", db, "--config", config);

        Assert.True(backup.ExitCode == Failed, backup.ToString());
        var failed = Assert.Single(backup.Stderr.Split('\n'), l => l.Contains("FAILED", StringComparison.Ordinal));
        Assert.EndsWith($"{db}: {cause}", failed, StringComparison.Ordinal);
        Assert.Empty(Ops.DataFilesUnder(backupDir));

        var good = await Run.CliAsync("backup", "-i", id, "-d", db, "--config", config);
        Assert.True(good.ExitCode == Success, good.ToString());
        var file = Path.Combine(backupDir, Assert.Single(Ops.DataFilesUnder(backupDir)));
        var restore = await Run.CliWithEnvAsync(environment, "restore", "--file", file, "-i", id, "--target", db + "_copy", "--config", config);

        Assert.True(restore.ExitCode == Failed, restore.ToString());
        var error = Assert.Single(restore.Stderr.Split('\n'), l => l.Contains("error:", StringComparison.Ordinal));
        Assert.Contains($"failed: {cause}; '{db}_copy' was not created", error, StringComparison.Ordinal);

        var aFile = Path.Combine(_scratch.TempDir("tmp"), "a-file");
        await File.WriteAllTextAsync(aFile, "");
        var fileAsTmp = await Run.CliWithEnvAsync(new Dictionary<string, string> { ["TMPDIR"] = aFile }, "backup", "-i", id, "-d", db, "--config", config);

        Assert.True(fileAsTmp.ExitCode == Failed, fileAsTmp.ToString());
        var notADirectory = Assert.Single(fileAsTmp.Stderr.Split('\n'), l => l.Contains("FAILED", StringComparison.Ordinal));
        Assert.EndsWith($"{db}: the temporary directory {aFile} is a file, not a directory (TMPDIR)", notADirectory, StringComparison.Ordinal);
    }

    /// <summary>`vault set` that cannot write the vault file (here: the file size limit): an I/O error, exit 1, not a vault problem (7).</summary>
    [Fact]
    public async Task Vault_set_that_cannot_write_the_vault_file_exits_1()
    {
        var dir = _scratch.TempDir("vault");
        var config = Path.Combine(dir, "config.yaml");
        await File.WriteAllTextAsync(config, $"backup_dir: '{dir}'\nvault_file: '{dir}/vault.enc'\ninstances: []\n");
        var (dotnet, args, env) = Run.CliCommand(
            new Dictionary<string, string> { ["VYA_BACKUPDB_VAULT_KEY"] = "vault-test-passphrase" },
            "vault", "set", "some-server", "--user", "u", "--password-stdin", "--config", config);
        env["DOTNET_EnableWriteXorExecute"] = "0";

        var run = await Run.ProgramAsync("bash", ["-c", "ulimit -f 0; echo pw | exec \"$@\"", "bash", dotnet, .. args], env);

        Assert.True(run.ExitCode == Failed, run.ToString());
        Assert.DoesNotContain("Exception", run.ToString(), StringComparison.Ordinal);
        var error = Assert.Single(run.Stderr.Split('\n'), l => l.Contains("error:", StringComparison.Ordinal));
        Assert.Contains($"cannot write vault {dir}/vault.enc: the file size limit (ulimit -f) is reached", error, StringComparison.Ordinal);
        Assert.False(File.Exists(Path.Combine(dir, "vault.enc")));
        // The lock file stays (empty): deleting it would let a waiting command lock a file no longer there.
        Assert.Equal(["config.yaml", "vault.enc.lock"], Directory.EnumerateFileSystemEntries(dir).Select(Path.GetFileName).Order(StringComparer.Ordinal));
    }

    /// <summary>
    /// Mounts a 2 MiB tmpfs on <paramref name="dir"/>. Skips where that is not allowed (not root,
    /// no mount permission), except under CI=true, where the test must run and fails instead.
    /// </summary>
    private static async Task MountSmallTmpfsAsync(string dir)
    {
        string? problem = null;
        if (!OperatingSystem.IsLinux())
        {
            problem = "tmpfs needs Linux";
        }
        else if (!Environment.IsPrivilegedProcess)
        {
            problem = "mounting a tmpfs needs root";
        }
        else
        {
            var mount = await Run.ProgramAsync("mount", ["-t", "tmpfs", "-o", "size=2m", "tmpfs", dir]);
            if (mount.ExitCode != 0)
            {
                problem = $"mount -t tmpfs failed: {mount.Stderr.Trim()}";
            }
        }
        if (problem is null)
        {
            return;
        }
        if (TestServers.IsCi)
        {
            throw new InvalidOperationException($"the disk-full test cannot mount its tmpfs: {problem} (CI=true: it must run as root)");
        }
        Skip.If(true, $"disk-full test skipped: {problem}");
    }

    private static async Task UnmountAsync(string dir)
    {
        var umount = await Run.ProgramAsync("umount", [dir]);
        if (umount.ExitCode != 0)
        {
            // Busy (a file still open): detach it now, the kernel frees it when the last user goes.
            var lazy = await Run.ProgramAsync("umount", ["-l", dir]);
            Assert.True(lazy.ExitCode == 0, $"cannot unmount the test tmpfs {dir}: {umount.Stderr} {lazy.Stderr}");
        }
    }

    // ---------------------------------------------------------------- 6. locks

    [SkippableTheory]
    [InlineData(Dbms.MySql)]
    [InlineData(Dbms.PostgreSql)]
    public async Task Second_concurrent_backup_of_the_same_database_exits_locked_naming_the_holder(Dbms dbms)
    {
        var (db, instanceName, id) = await NewDatabaseAsync(dbms);
        var tools = FakeTools.Create(_scratch.TempDir("fake"), FakeDump.SlowButComplete, postgres: dbms == Dbms.PostgreSql);
        var backupDir = _scratch.TempDir("backups");
        var config = await Cli.WriteConfigAsync(_scratch.TempDir("cfg"), backupDir, toolsDir: tools);
        var holder = BackupLock.PathFor(backupDir, instanceName, db) + ".holder";

        var metrics = Path.Combine(_scratch.TempDir("metrics"), "vya.prom");
        // The first run's dump waits while this file is there: on a busy machine the second run took longer than its 3 s.
        var hold = Path.Combine(tools, "hold");
        await File.WriteAllTextAsync(hold, "");
        var first = Run.CliAsync("backup", "--instance", id, "--database", db, "--config", config);
        var pid = await WaitForHolderPidAsync(holder, first);
        var second = await Run.CliAsync("backup", "--instance", id, "--database", db, "--config", config, "--metrics-file", metrics);
        Assert.False(first.IsCompleted, "the first backup ended before the second one was refused: the fake dump is too fast for this test");
        File.Delete(hold);
        var firstRun = await first;

        Assert.True(second.ExitCode == Locked, second.ToString());
        var failed = Assert.Single(second.Stderr.Split('\n'), l => l.Contains("FAILED", StringComparison.Ordinal));
        Assert.Contains("is being backed up by another run", failed, StringComparison.Ordinal);
        Assert.Contains($"pid {pid} on {Environment.MachineName}", failed, StringComparison.Ordinal);
        // Found by a tester: the other run's backup counted as this runner's failure, and `last_status == 0` alerts fired.
        var text = await File.ReadAllTextAsync(metrics);
        var prom = PromText.Parse(text);
        Assert.DoesNotContain("vya_backupdb_last_status{", text, StringComparison.Ordinal);
        Assert.All(prom.Samples.Where(s => s.Key.StartsWith("vya_backupdb_failures_total{", StringComparison.Ordinal)), s => Assert.Equal(0, s.Value));
        Assert.Equal(5, prom.Value("vya_backupdb_run_exit_code", ""));
        Assert.True(firstRun.ExitCode == Success, firstRun.ToString());
        Assert.Contains("1 succeeded, 0 failed", firstRun.Stdout, StringComparison.Ordinal);
        // One backup (the first's, whole), its manifest and checksum; the lock is gone with its holder.
        var file = Path.Combine(backupDir, Assert.Single(Ops.DataFilesUnder(backupDir)));
        Assert.Equal(3, Ops.FilesUnder(backupDir).Count);
        Assert.True((await BackupFileChecker.CheckAsync(BackupLocation.LocalFile(file), Pipeline.DecryptionKeys.None, CancellationToken.None)).Ok, "the first backup does not verify");
        Assert.Contains("CREATE TABLE slow_t", DecodeText(file), StringComparison.Ordinal);
    }

    [SkippableTheory]
    [InlineData(Dbms.MySql)]
    [InlineData(Dbms.PostgreSql)]
    public async Task Stale_lock_of_a_dead_process_is_taken_over_with_a_warning(Dbms dbms)
    {
        var (db, instanceName, id) = await NewDatabaseAsync(dbms);
        var backupDir = _scratch.TempDir("backups");
        var config = await Cli.WriteConfigAsync(_scratch.TempDir("cfg"), backupDir);
        var deadPid = await DeadPidAsync();
        var lockPath = BackupLock.PathFor(backupDir, instanceName, db);
        Directory.CreateDirectory(Path.GetDirectoryName(lockPath)!);
        await File.WriteAllTextAsync(lockPath, "");
        await File.WriteAllTextAsync(lockPath + ".holder",
            $"pid={deadPid}\nhost={Environment.MachineName}\nstarted={EarlierTime.ToString("O", CultureInfo.InvariantCulture)}\n");

        var run = await Run.CliAsync("backup", "--instance", id, "--database", db, "--config", config);

        Assert.True(run.ExitCode == Success, run.ToString());
        var warning = Assert.Single(run.Stderr.Split('\n'), l => l.Contains("warning:", StringComparison.Ordinal));
        Assert.Contains("took over the lock", warning, StringComparison.Ordinal);
        Assert.Contains($"pid {deadPid} on {Environment.MachineName}", warning, StringComparison.Ordinal);
        Assert.Single(Ops.DataFilesUnder(backupDir));
        Assert.False(File.Exists(lockPath + ".holder"), "the lock's holder file was left after the backup");
        // The (empty) lock file may stay, but nobody holds it any more.
        using (new FileStream(lockPath, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None))
        {
        }
    }

    private async Task<(string Database, string InstanceName, string Id)> NewDatabaseAsync(Dbms dbms)
    {
        if (dbms == Dbms.MySql)
        {
            await TestServers.RequireMySqlAsync();
            var db = await _scratch.NewMySqlDatabaseAsync();
            await MySqlTestDb.ExecAsync(db, "CREATE TABLE t (id INT PRIMARY KEY)", "INSERT INTO t VALUES (1)");
            return (db, "it-mysql", "1");
        }
        await TestServers.RequirePostgresAsync();
        var pg = await _scratch.NewPostgresDatabaseAsync();
        await PgTestDb.ExecAsync(pg, "CREATE TABLE t (id int PRIMARY KEY)", "INSERT INTO t VALUES (1)");
        return (pg, "it-pg", "2");
    }

    /// <summary>Waits until the running backup has written its lock's holder file; returns the pid it names.</summary>
    private static async Task<int> WaitForHolderPidAsync(string holder, Task<ProcessResult> running)
    {
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < TimeSpan.FromSeconds(30))
        {
            if (running.IsCompleted)
            {
                Assert.Fail($"the first backup ended before its lock was seen:\n{await running}");
            }
            if (File.Exists(holder))
            {
                var text = await File.ReadAllTextAsync(holder);
                var line = text.Split('\n').FirstOrDefault(l => l.StartsWith("pid=", StringComparison.Ordinal));
                if (text.Contains("started=", StringComparison.Ordinal) && line is not null)
                {
                    return int.Parse(line["pid=".Length..], CultureInfo.InvariantCulture);
                }
            }
            await Task.Delay(25);
        }
        throw new TimeoutException($"no lock holder file {holder} after 30 s");
    }

    /// <summary>The pid of a process that has exited.</summary>
    private static async Task<int> DeadPidAsync()
    {
        using var process = Process.Start(new ProcessStartInfo("true") { UseShellExecute = false })!;
        await process.WaitForExitAsync();
        var pid = process.Id;
        Assert.False(Directory.Exists($"/proc/{pid}"), $"pid {pid} is alive again");
        return pid;
    }

    private static string DecodeText(string file)
    {
        using var stored = File.OpenRead(file);
        using var plain = Codec.Decompress(CompressionNames.FromFileName(Path.GetFileName(file))!.Value, stored);
        using var reader = new StreamReader(plain);
        return reader.ReadToEnd();
    }
}
