using System.Diagnostics;
using System.Globalization;
using System.Runtime.Versioning;
using System.Text;
using VyaBackupDb.Config;
using VyaBackupDb.Config.Vault;

namespace VyaBackupDb.Tests.Integration;

/// <summary>
/// No password ever leaves the places it belongs: with a dedicated server user whose password is
/// a unique marker, real backups and restores run through the real CLI while every process's
/// argv (and environment, where readable) is sampled every few milliseconds; the marker must not
/// appear there, nor in any output of successful, failed, dry and wrong-password runs. The
/// private credential files (option files, PGPASSFILEs) are gone after each run, also after a
/// failure and after Ctrl+C. Each CLI run gets its own TMPDIR, so the check sees only its files.
/// </summary>
[Trait("Category", "Integration")]
[UnsupportedOSPlatform("windows")]
public sealed class SecretsHygieneTests : IAsyncLifetime
{
    private const int Success = 0;
    private const int Failed = 1;
    private const int VaultError = 7;
    private const int Interrupted = 130;

    private readonly Scratch _scratch = new();
    private readonly List<Func<Task>> _dropUsers = [];

    public Task InitializeAsync() => _scratch.InitializeAsync();

    public async Task DisposeAsync()
    {
        try
        {
            // The databases first: a PostgreSQL role that owns one cannot be dropped.
            await _scratch.DisposeAsync();
        }
        finally
        {
            foreach (var drop in _dropUsers)
            {
                await drop();
            }
        }
    }

    private static string Marker() => "vya-marker-" + Guid.NewGuid().ToString("N");

    /// <summary>
    /// A server user (MariaDB) or role (PostgreSQL) of its own with a marker password (plus
    /// <paramref name="tail"/>); dropped at the end.
    /// </summary>
    private async Task<(string User, string Password)> MarkerUserAsync(bool postgres, string tail = "")
    {
        var user = "vya_mk_" + Guid.NewGuid().ToString("N")[..10];
        var password = Marker() + tail;
        if (postgres)
        {
            await PgTestDb.ExecAsync("postgres", $"CREATE ROLE {user} LOGIN SUPERUSER PASSWORD '{password.Replace("'", "''", StringComparison.Ordinal)}'");
            _dropUsers.Add(() => PgTestDb.ExecAsync("postgres", $"DROP ROLE IF EXISTS {user}"));
        }
        else
        {
            var literal = password.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("'", "''", StringComparison.Ordinal);
            await MySqlTestDb.ExecAsync(null, $"CREATE USER '{user}'@'127.0.0.1' IDENTIFIED BY '{literal}'",
                $"GRANT ALL PRIVILEGES ON *.* TO '{user}'@'127.0.0.1'");
            _dropUsers.Add(() => MySqlTestDb.ExecAsync(null, $"DROP USER IF EXISTS '{user}'@'127.0.0.1'"));
        }
        return (user, password);
    }

    /// <summary>A source database big enough (a few MB of dump) that the dump and restore tools run long enough to be sampled.</summary>
    private async Task<string> SourceDatabaseAsync(bool postgres)
    {
        if (postgres)
        {
            var db = await _scratch.NewPostgresDatabaseAsync();
            await PgTestDb.ExecAsync(db, "CREATE TABLE t (id int PRIMARY KEY, v text)",
                "INSERT INTO t SELECT g, md5(g::text) || md5((g * 7)::text) FROM generate_series(1, 150000) g");
            return db;
        }
        var name = await _scratch.NewMySqlDatabaseAsync();
        await MySqlTestDb.ExecAsync(name, "CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(100))",
            "INSERT INTO t SELECT seq, CONCAT(MD5(seq), MD5(seq * 7)) FROM seq_1_to_150000");
        return name;
    }

    private static Task<DbFingerprint> FingerprintAsync(bool postgres, string db) =>
        postgres ? PgTestDb.FingerprintAsync(db) : MySqlTestDb.FingerprintAsync(db);

    /// <summary>A 0600 config with one instance (id 1) of the given DBMS; <paramref name="credentials"/> is its YAML credential lines.</summary>
    private async Task<(string Config, string BackupDir)> ConfigAsync(bool postgres, string credentials, string? toolsDir = null)
    {
        var dir = _scratch.TempDir("cfg");
        var backupDir = Path.Combine(dir, "backups");
        var config = Path.Combine(dir, "config.yaml");
        var tools = toolsDir is null ? "" : $"\n    tools_dir: '{toolsDir}'";
        await File.WriteAllTextAsync(config, string.Create(CultureInfo.InvariantCulture, $"""
            backup_dir: '{backupDir}'
            instances:
              - id: 1
                name: hygiene
                dbms: {(postgres ? "postgresql" : "mysql")}
                host: {(postgres ? TestServers.PgHost : TestServers.MySqlHost)}
                port: {(postgres ? TestServers.PgPort : TestServers.MySqlPort)}
            {credentials}{tools}

            """));
        File.SetUnixFileMode(config, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        return (config, backupDir);
    }

    private static string Literal(string user, string password) => $"    user: '{user}'\n    password: '{password}'";

    private static void AssertNoSecretDirs(string tmp, string after)
    {
        var left = Directory.GetFileSystemEntries(tmp, "vya-backupdb-*");
        Assert.True(left.Length == 0, $"credential directories left after {after}: {string.Join(", ", left)}");
    }

    private static void AssertNoMarker(ProcessResult run, string what, params string[] markers)
    {
        foreach (var marker in markers)
        {
            Assert.False(run.Stdout.Contains(marker, StringComparison.Ordinal) || run.Stderr.Contains(marker, StringComparison.Ordinal),
                $"the output of {what} shows a secret:\n{run}");
        }
    }

    [SkippableTheory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Marker_password_never_shows_in_argv_environments_or_output(bool postgres)
    {
        await RequireAsync(postgres);
        var (user, password) = await MarkerUserAsync(postgres);
        var wrongPassword = Marker();
        var source = await SourceDatabaseAsync(postgres);
        var target = postgres ? _scratch.PostgresName() : _scratch.MySqlName();
        var (config, backupDir) = await ConfigAsync(postgres, Literal(user, password));
        var (wrongConfig, _) = await ConfigAsync(postgres, Literal(user, wrongPassword));
        var tmp = _scratch.TempDir("tmp");
        var cli = new HygieneCli(tmp);
        var runs = new List<(string What, ProcessResult Run)>();

        await using (var sampler = new ProcSampler([password, wrongPassword], allowedInCliEnvironment: []))
        {
            var backup = await cli.RunAsync(null, "backup", "-i", "1", "-d", source, "--config", config);
            Assert.True(backup.ExitCode == Success, backup.ToString());
            AssertNoSecretDirs(tmp, "a backup");
            var file = Path.Combine(backupDir, Assert.Single(Ops.DataFilesUnder(backupDir)));

            var restore = await cli.RunAsync(null, "restore", "-f", file, "-i", "1", "-t", target, "--config", config);
            Assert.True(restore.ExitCode == Success, restore.ToString());
            AssertNoSecretDirs(tmp, "a restore");

            var dryRun = await cli.RunAsync(null, "backup", "-i", "1", "-d", source, "--dry-run", "--config", config);
            Assert.True(dryRun.ExitCode == Success, dryRun.ToString());

            var noSuchDatabase = await cli.RunAsync(null, "backup", "-i", "1", "-d", source + "_missing", "--config", config);
            Assert.True(noSuchDatabase.ExitCode == Failed, noSuchDatabase.ToString());

            var restoreDryRun = await cli.RunAsync(null, "restore", "-f", file, "-i", "1", "-t", target, "--force", "--dry-run", "--config", config);
            Assert.True(restoreDryRun.ExitCode == Success, restoreDryRun.ToString());

            var wrong = await cli.RunAsync(null, "backup", "-i", "1", "-d", source, "--config", wrongConfig);
            Assert.True(wrong.ExitCode == Failed, wrong.ToString());
            Assert.Contains(postgres ? "password authentication failed" : "Access denied", wrong.Stderr, StringComparison.Ordinal);
            AssertNoSecretDirs(tmp, "failed runs");

            runs.AddRange([("backup", backup), ("restore", restore), ("backup --dry-run", dryRun),
                ("a backup of a missing database", noSuchDatabase), ("restore --dry-run", restoreDryRun), ("a backup with a wrong password", wrong)]);
            var seen = await sampler.StopAsync();
            Assert.True(seen.Leaks.Count == 0, "a secret showed in /proc:\n" + string.Join("\n", seen.Leaks.Distinct()));
            // The sampling is only evidence if it saw the tools that were given the password.
            string[] tools = postgres ? ["pg_dump", "psql"] : ["mariadb-dump", "mariadb"];
            foreach (var tool in tools)
            {
                Assert.True(seen.Commands.Contains(tool), $"the sampler ({seen.Rounds} rounds) never saw {tool}; saw: {string.Join(", ", seen.Commands.Order())}");
            }
        }
        foreach (var (what, run) in runs)
        {
            AssertNoMarker(run, what, password, wrongPassword);
        }
        DbFingerprint.AssertSame(await FingerprintAsync(postgres, source), await FingerprintAsync(postgres, target), "the restored database");
    }

    [SkippableTheory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Credential_files_are_gone_after_a_failed_dump(bool postgres)
    {
        await RequireAsync(postgres);
        var (user, password) = await MarkerUserAsync(postgres);
        var source = postgres ? await _scratch.NewPostgresDatabaseAsync() : await _scratch.NewMySqlDatabaseAsync();
        var tools = FakeTools.Create(_scratch.TempDir("fake"), FakeDump.FailsMidStream, postgres);
        var (config, _) = await ConfigAsync(postgres, Literal(user, password), tools);
        var tmp = _scratch.TempDir("tmp");

        var run = await new HygieneCli(tmp).RunAsync(null, "backup", "-i", "1", "-d", source, "--config", config);

        Assert.True(run.ExitCode == Failed, run.ToString());
        Assert.Contains("Lost connection", run.Stderr, StringComparison.Ordinal);
        Assert.Contains($"credentials: {tmp}/vya-backupdb-", FakeTools.CallsLog(tools), StringComparison.Ordinal);
        AssertNoSecretDirs(tmp, "a failed dump");
        AssertNoMarker(run, "a failed dump", password);
    }

    /// <summary>Defence in depth: a tool that prints its credentials (its option file's password line) in its error message gets them masked.</summary>
    [SkippableTheory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_tool_that_echoes_its_credentials_has_them_masked_in_the_error(bool postgres)
    {
        await RequireAsync(postgres);
        // MySQL: a line break, which its option file escapes (a PostgreSQL password cannot hold one: refused before the tool).
        var (user, password) = await MarkerUserAsync(postgres, postgres ? " second-part-of-it" : "\nsecond-line-of-it");
        var source = postgres ? await _scratch.NewPostgresDatabaseAsync() : await _scratch.NewMySqlDatabaseAsync();
        var tools = Path.Combine(_scratch.TempDir("fake"), "tools");
        Directory.CreateDirectory(tools);
        var version = postgres ? "pg_dump (PostgreSQL) 15.0" : "mariadb-dump  Ver 10.19 Distrib 10.11.19-MariaDB, for debian-linux-gnu (x86_64)";
        var script = $$"""
            #!/bin/sh
            if [ "$1" = "--version" ]; then echo "{{version}}"; exit 0; fi
            for a in "$@"; do case "$a" in --defaults-file=*) grep '^password=' "${a#--defaults-file=}" >&2;; esac; done
            if [ -n "$PGPASSFILE" ]; then cat "$PGPASSFILE" >&2; fi
            exit 2

            """;
        foreach (var name in postgres ? new[] { "pg_dump", "psql" } : ["mariadb-dump", "mysqldump", "mariadb", "mysql"])
        {
            await File.WriteAllTextAsync(Path.Combine(tools, name), script.Replace("\r\n", "\n", StringComparison.Ordinal));
            File.SetUnixFileMode(Path.Combine(tools, name), UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }
        var (config, _) = await ConfigAsync(postgres, "    credentials: vault:echo", tools);
        var cli = new HygieneCli(_scratch.TempDir("tmp"), new() { [CredentialVault.KeyEnvVar] = Marker() });
        Assert.Equal(Success, (await cli.RunAsync(password, "vault", "set", "echo", "--user", user, "--password-stdin", "--config", config)).ExitCode);

        var run = await cli.RunAsync(null, "backup", "-i", "1", "-d", source, "--config", config);

        Assert.True(run.ExitCode == Failed, run.ToString());
        Assert.Contains("exited with code 2", run.Stderr, StringComparison.Ordinal);
        Assert.Contains("***", run.Stderr, StringComparison.Ordinal);
        AssertNoMarker(run, "a tool's error", password, "vya-marker-", "second-line-of-it");
    }

    [SkippableTheory]
    [InlineData(false, "INT")]
    [InlineData(true, "INT")]
    [InlineData(true, "TERM")]
    public async Task Credential_files_are_gone_after_ctrl_c_during_a_dump(bool postgres, string signal)
    {
        await RequireAsync(postgres);
        var (user, password) = await MarkerUserAsync(postgres);
        var source = postgres ? await _scratch.NewPostgresDatabaseAsync() : await _scratch.NewMySqlDatabaseAsync();
        var fake = _scratch.TempDir("fake");
        var tools = FakeTools.Create(fake, FakeDump.Hangs, postgres);
        var (config, backupDir) = await ConfigAsync(postgres, Literal(user, password), tools);
        var tmp = _scratch.TempDir("tmp");

        using var process = new HygieneCli(tmp).Start("backup", "-i", "1", "-d", source, "--config", config);
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        var pidsFile = Path.Combine(tools, "pids");
        var clock = Stopwatch.StartNew();
        while (!File.Exists(pidsFile) || (await File.ReadAllTextAsync(pidsFile)).Split(' ').Length < 2)
        {
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(60) && !process.HasExited,
                $"the fake dump tool never started hanging: exit {(process.HasExited ? process.ExitCode : "-")}\n{await StderrSoFar(process, stderr)}");
            await Task.Delay(50);
        }
        Assert.NotEmpty(Directory.GetFileSystemEntries(tmp, "vya-backupdb-*"));

        Signal(process.Id, signal);
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await process.WaitForExitAsync(timeout.Token);
        var run = new ProcessResult(process.ExitCode, await stdout, await stderr);

        Assert.True(run.ExitCode == Interrupted, run.ToString());
        AssertNoSecretDirs(tmp, "SIG" + signal);
        AssertNoMarker(run, "an interrupted backup", password);
        Assert.Empty(Ops.DataFilesUnder(backupDir));
        foreach (var pid in (await File.ReadAllTextAsync(pidsFile)).Split(' ', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            Assert.False(Directory.Exists($"/proc/{pid}") && !File.ReadAllText($"/proc/{pid}/stat").Contains(") Z ", StringComparison.Ordinal),
                $"the dump tool's process {pid} outlived the interrupted run");
        }
    }

    /// <summary>
    /// A PostgreSQL password with a line break: the tool logs in with it, but pg_dump's password file cannot hold it
    /// (tr73: "password authentication failed", blaming the password). The backup says why, in one line, without it.
    /// </summary>
    [SkippableFact]
    public async Task A_postgres_password_with_a_line_break_fails_the_backup_saying_why()
    {
        await RequireAsync(postgres: true);
        var (user, password) = await MarkerUserAsync(postgres: true, "\nsecond-line");
        var source = await SourceDatabaseAsync(postgres: true);
        var (config, backupDir) = await ConfigAsync(postgres: true, $"    user: '{user}'\n    password_env: VYA_HYGIENE_PW");
        var cli = new HygieneCli(_scratch.TempDir("tmp"), new() { ["VYA_HYGIENE_PW"] = password });

        var backup = await cli.RunAsync(null, "backup", "-i", "1", "-d", source, "--config", config);

        Assert.True(backup.ExitCode == Failed, backup.ToString());
        var failed = Assert.Single(backup.Stderr.Split('\n'), l => l.Contains("FAILED", StringComparison.Ordinal));
        Assert.Contains("the password of instance hygiene holds a line break", failed, StringComparison.Ordinal);
        AssertNoMarker(backup, "the backup", password.Split('\n'));
        Assert.Empty(Ops.DataFilesUnder(backupDir));
    }

    /// <summary>Six `vault set` at once, each of its own entry (tr73: every one said stored, exit 0, and one entry was kept): all are kept.</summary>
    [Fact]
    public async Task Vault_sets_run_at_the_same_time_keep_every_entry()
    {
        var dir = _scratch.TempDir("vault");
        var config = Path.Combine(dir, "config.yaml");
        await File.WriteAllTextAsync(config, $"backup_dir: '{Path.Combine(dir, "backups")}'\ninstances: []\n");
        var cli = new HygieneCli(_scratch.TempDir("tmp"), new() { [CredentialVault.KeyEnvVar] = Marker() });
        var seed = await cli.RunAsync("seed\n", "vault", "set", "seed", "--password-stdin", "--config", config);
        Assert.True(seed.ExitCode == Success, seed.ToString());

        var sets = await Task.WhenAll(Enumerable.Range(1, 6)
            .Select(i => cli.RunAsync($"pw{i}\n", "vault", "set", $"e{i}", "--password-stdin", "--config", config)));

        Assert.All(sets, set => Assert.True(set.ExitCode == Success, set.ToString()));
        var list = await cli.RunAsync(null, "vault", "list", "--config", config);
        Assert.Equal(["e1", "e2", "e3", "e4", "e5", "e6", "seed"],
            list.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(line => line.Split(' ')[0]).Order(StringComparer.Ordinal));
    }

    [SkippableTheory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Credentials_from_the_vault_back_up_and_restore_through_the_cli(bool postgres)
    {
        await RequireAsync(postgres);
        // Quotes, backslashes, '#' and (MySQL: its option files escape it) a line break reach the tools intact.
        var (user, password) = await MarkerUserAsync(postgres, postgres ? " '\\\"#:*" : "\n'\\\"#;=x");
        var source = await SourceDatabaseAsync(postgres);
        var target = postgres ? _scratch.PostgresName() : _scratch.MySqlName();
        var (config, backupDir) = await ConfigAsync(postgres, "    credentials: vault:server-1");
        var vaultKey = Marker();
        var tmp = _scratch.TempDir("tmp");
        var cli = new HygieneCli(tmp, new() { [CredentialVault.KeyEnvVar] = vaultKey });

        var set = await cli.RunAsync(password + "\n", "vault", "set", "server-1", "--user", user, "--password-stdin", "--config", config);
        Assert.True(set.ExitCode == Success, set.ToString());
        var vaultFile = Path.Combine(Path.GetDirectoryName(config)!, CredentialVault.DefaultFileName);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(vaultFile));
        Assert.DoesNotContain(password, Encoding.Latin1.GetString(await File.ReadAllBytesAsync(vaultFile)), StringComparison.Ordinal);

        var list = await cli.RunAsync(null, "vault", "list", "--config", config);
        Assert.True(list.ExitCode == Success, list.ToString());
        Assert.Matches($@"^server-1\s+{user}\n$", list.Stdout);
        var get = await cli.RunAsync(null, "vault", "get", "server-1", "--config", config);
        Assert.Equal($"user: {user}\n", get.Stdout);
        var show = await cli.RunAsync(null, "vault", "get", "server-1", "--show-password", "--config", config);
        Assert.Equal($"user: {user}\npassword: {password}\n", show.Stdout);

        List<(string What, ProcessResult Run)> runs = [("vault set", set), ("vault list", list), ("vault get", get)];
        await using (var sampler = new ProcSampler([password, vaultKey], allowedInCliEnvironment: [vaultKey]))
        {
            var backup = await cli.RunAsync(null, "backup", "-i", "1", "-d", source, "--config", config);
            Assert.True(backup.ExitCode == Success, backup.ToString());
            var file = Path.Combine(backupDir, Assert.Single(Ops.DataFilesUnder(backupDir)));
            var restore = await cli.RunAsync(null, "restore", "-f", file, "-i", "1", "-t", target, "--config", config);
            Assert.True(restore.ExitCode == Success, restore.ToString());
            runs.AddRange([("backup", backup), ("restore", restore)]);
            var seen = await sampler.StopAsync();
            Assert.True(seen.Leaks.Count == 0, "a secret showed in /proc:\n" + string.Join("\n", seen.Leaks.Distinct()));
        }
        DbFingerprint.AssertSame(await FingerprintAsync(postgres, source), await FingerprintAsync(postgres, target), "the database restored with vault credentials");
        AssertNoSecretDirs(tmp, "vault runs");

        var wrongKey = Marker();
        var locked = await new HygieneCli(tmp, new() { [CredentialVault.KeyEnvVar] = wrongKey })
            .RunAsync(null, "backup", "-i", "1", "-d", source, "--config", config);
        Assert.True(locked.ExitCode == VaultError, locked.ToString());
        Assert.Contains("instances[0].credentials: vault:server-1: cannot open vault", locked.Stderr, StringComparison.Ordinal);
        runs.Add(("a backup with a wrong vault key", locked));
        foreach (var (what, run) in runs)
        {
            AssertNoMarker(run, what, password, vaultKey, wrongKey);
        }
    }

    [SkippableFact]
    public async Task Vault_commands_report_missing_entries_and_wrong_keys_with_their_exit_codes()
    {
        var (config, _) = await ConfigAsync(postgres: false, "    credentials: vault:x");
        var key = Marker();
        var cli = new HygieneCli(_scratch.TempDir("tmp"), new() { [CredentialVault.KeyEnvVar] = key });

        var noVault = await cli.RunAsync(null, "vault", "list", "--config", config);
        Assert.True(noVault.ExitCode == VaultError, noVault.ToString());
        var noPassword = await cli.RunAsync(null, "vault", "set", "a", "--config", config);
        Assert.True(noPassword.ExitCode == 2, noPassword.ToString());
        Assert.Contains("--password-stdin", noPassword.Stderr, StringComparison.Ordinal);
        Assert.Equal(Success, (await cli.RunAsync("pw-a", "vault", "set", "a", "--password-stdin", "--config", config)).ExitCode);
        Assert.Equal(Success, (await cli.RunAsync("pw-b\n", "vault", "set", "b", "--user", "bob", "--password-stdin", "--config", config)).ExitCode);
        // Setting a new password keeps the user.
        Assert.Equal(Success, (await cli.RunAsync("pw-b2\n", "vault", "set", "b", "--password-stdin", "--config", config)).ExitCode);
        Assert.Equal("user: bob\npassword: pw-b2\n", (await cli.RunAsync(null, "vault", "get", "b", "--show-password", "--config", config)).Stdout);
        var list = await cli.RunAsync(null, "vault", "list", "--config", config);
        Assert.Equal("a  (no user)\nb  bob\n", list.Stdout);

        var missing = await cli.RunAsync(null, "vault", "remove", "c", "--config", config);
        Assert.True(missing.ExitCode == 2, missing.ToString());
        Assert.Contains("no entry 'c'", missing.Stderr, StringComparison.Ordinal);
        Assert.Equal(Success, (await cli.RunAsync(null, "vault", "remove", "a", "--config", config)).ExitCode);
        Assert.Equal("b  bob\n", (await cli.RunAsync(null, "vault", "list", "--config", config)).Stdout);

        var wrong = await new HygieneCli(_scratch.TempDir("tmp"), new() { [CredentialVault.KeyEnvVar] = "not " + key })
            .RunAsync(null, "vault", "get", "b", "--show-password", "--config", config);
        Assert.True(wrong.ExitCode == VaultError, wrong.ToString());
        Assert.Single(wrong.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Empty(wrong.Stdout);
        Assert.DoesNotContain("pw-b2", wrong.Stderr, StringComparison.Ordinal);

        var noKey = await new HygieneCli(_scratch.TempDir("tmp")).RunAsync(null, "vault", "list", "--config", config);
        Assert.True(noKey.ExitCode == VaultError, noKey.ToString());
        Assert.Contains(CredentialVault.KeyEnvVar, noKey.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task World_readable_config_with_a_plain_password_gets_a_warning()
    {
        var (config, _) = await ConfigAsync(postgres: false, Literal("u", "plain-pw-in-config"));
        File.SetUnixFileMode(config, (UnixFileMode)Convert.ToInt32("644", 8));

        var run = await new HygieneCli(_scratch.TempDir("tmp")).RunAsync(null, "backup", "-i", "1", "-d", "x", "--dry-run", "--config", config);

        Assert.Contains($"vya-backupdb: warning: {config} is readable by every user (mode 644)", run.Stderr, StringComparison.Ordinal);
        AssertNoMarker(run, "a world-readable config's warning", "plain-pw-in-config");
    }

    private static Task RequireAsync(bool postgres) => postgres ? TestServers.RequirePostgresAsync() : TestServers.RequireMySqlAsync();

    private static void Signal(int pid, string signal)
    {
        var number = signal switch { "INT" => 2, "TERM" => 15, _ => throw new ArgumentOutOfRangeException(nameof(signal)) };
        Assert.True(SendSignal(pid, number) == 0, $"kill({pid}, SIG{signal}) failed");
    }

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static extern int SendSignal(int pid, int signal);

    private static async Task<string> StderrSoFar(Process process, Task<string> stderr)
    {
        if (!process.HasExited)
        {
            return "(still running)";
        }
        return await stderr;
    }

    /// <summary>The built CLI with a private TMPDIR and extra environment; stdin fed (then closed) or closed at once.</summary>
    private sealed class HygieneCli(string tmp, Dictionary<string, string>? environment = null)
    {
        public Process Start(params string[] arguments) => Start(null, arguments);

        public async Task<ProcessResult> RunAsync(string? stdin, params string[] arguments)
        {
            using var process = Start(stdin, arguments);
            var stdout = process.StandardOutput.ReadToEndAsync();
            var stderr = process.StandardError.ReadToEndAsync();
            using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(3));
            try
            {
                await process.WaitForExitAsync(timeout.Token);
            }
            catch (OperationCanceledException)
            {
                process.Kill(entireProcessTree: true);
                throw new TimeoutException($"vya-backupdb {string.Join(' ', arguments)} did not finish in 3 minutes");
            }
            return new ProcessResult(process.ExitCode, await stdout, await stderr);
        }

        private Process Start(string? stdin, string[] arguments)
        {
            var dll = Run.CliDll;
            var startInfo = new ProcessStartInfo(Run.Dotnet)
            {
                RedirectStandardInput = true,
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                UseShellExecute = false,
            };
            startInfo.ArgumentList.Add(dll);
            foreach (var argument in arguments)
            {
                startInfo.ArgumentList.Add(argument);
            }
            startInfo.Environment["VYA_BACKUPDB_CONFIG"] = "";
            startInfo.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
            startInfo.Environment["DOTNET_NOLOGO"] = "1";
            startInfo.Environment["TMPDIR"] = tmp;
            startInfo.Environment.Remove(CredentialVault.KeyEnvVar);
            startInfo.Environment.Remove(CredentialVault.KeyFileEnvVar);
            foreach (var (name, value) in environment ?? [])
            {
                startInfo.Environment[name] = value;
            }
            var process = Process.Start(startInfo) ?? throw new InvalidOperationException("cannot start the CLI");
            if (stdin is not null)
            {
                process.StandardInput.Write(stdin);
            }
            process.StandardInput.Close();
            return process;
        }
    }

    /// <summary>What the sampler saw: markers found (file and text), command names seen, rounds done.</summary>
    private sealed record Sampled(List<string> Leaks, HashSet<string> Commands, int Rounds);

    /// <summary>
    /// Reads /proc/*/cmdline and /proc/*/environ (where readable: our own processes) of every
    /// process in a tight loop until stopped. A marker in <paramref name="allowedInCliEnvironment"/>
    /// may appear in the CLI's own environment (the vault key the test gave it), nowhere else.
    /// </summary>
    private sealed class ProcSampler : IAsyncDisposable
    {
        private readonly string[] _markers;
        private readonly string[] _allowedInCli;
        private readonly CancellationTokenSource _stop = new();
        private readonly Task<Sampled> _loop;

        public ProcSampler(string[] markers, string[] allowedInCliEnvironment)
        {
            _markers = markers;
            _allowedInCli = allowedInCliEnvironment;
            _loop = Task.Factory.StartNew(Loop, TaskCreationOptions.LongRunning);
        }

        public async Task<Sampled> StopAsync()
        {
            await _stop.CancelAsync();
            return await _loop;
        }

        public async ValueTask DisposeAsync()
        {
            await _stop.CancelAsync();
            await _loop.ContinueWith(_ => { }, TaskScheduler.Default);
            _stop.Dispose();
        }

        private Sampled Loop()
        {
            var leaks = new List<string>();
            var commands = new HashSet<string>(StringComparer.Ordinal);
            var rounds = 0;
            while (!_stop.IsCancellationRequested)
            {
                foreach (var dir in Directory.EnumerateDirectories("/proc"))
                {
                    if (!int.TryParse(Path.GetFileName(dir), out _))
                    {
                        continue;
                    }
                    // The environment before the command line: a process in the middle of its exec shows an
                    // empty command line, then (a moment later) the new program's environment; read in this
                    // order, an environment read after the exec goes with the command line it was started with.
                    var environ = ReadOrNull(dir + "/environ");
                    var cmdline = ReadOrNull(dir + "/cmdline");
                    if (cmdline is null)
                    {
                        continue;
                    }
                    var argv = cmdline.Split('\0', StringSplitOptions.RemoveEmptyEntries);
                    if (argv.Length > 0)
                    {
                        commands.Add(Path.GetFileName(argv[0]));
                    }
                    var isCli = argv.Any(a => a.EndsWith("vya-backupdb.dll", StringComparison.Ordinal));
                    foreach (var marker in _markers.Where(m => cmdline.Contains(m, StringComparison.Ordinal)))
                    {
                        leaks.Add($"{dir}/cmdline: {string.Join(' ', argv)}");
                    }
                    // An empty command line with an environment: a child forked by the CLI (its copy of the
                    // CLI's environment) caught in its exec; the program it becomes is read in the next round.
                    if (environ is not null && argv.Length > 0)
                    {
                        foreach (var marker in _markers.Where(m => environ.Contains(m, StringComparison.Ordinal)))
                        {
                            if (!(isCli && _allowedInCli.Contains(marker)))
                            {
                                leaks.Add($"{dir}/environ of {string.Join(' ', argv)}: {marker}");
                            }
                        }
                    }
                }
                rounds++;
                Thread.Sleep(2);
            }
            return new Sampled(leaks, commands, rounds);
        }

        private static string? ReadOrNull(string file)
        {
            try
            {
                return Encoding.UTF8.GetString(File.ReadAllBytes(file));
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                return null;
            }
        }
    }
}
