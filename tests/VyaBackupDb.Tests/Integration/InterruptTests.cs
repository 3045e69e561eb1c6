using System.Diagnostics;
using System.Globalization;
using System.Text;

namespace VyaBackupDb.Tests.Integration;

/// <summary>A PostgreSQL database big enough to be interrupted midway (~1M rows), and one backup of it.</summary>
public sealed class BigPostgresFixture : IAsyncLifetime
{
    public Scratch Scratch { get; } = new();

    public string Database { get; private set; } = "";

    public string BackupDir { get; private set; } = "";

    public string Config { get; private set; } = "";

    /// <summary>The same, with client tools that pause midway (<see cref="StallingTools"/>): runs that are sure to be interruptible.</summary>
    public string StallingConfig { get; private set; } = "";

    /// <summary>Relative path (under <see cref="BackupDir"/>) of the backup of <see cref="Database"/>.</summary>
    public string Backup { get; private set; } = "";

    public string? Problem { get; private set; }

    public async Task InitializeAsync()
    {
        try
        {
            await TestServers.RequirePostgresAsync();
        }
        catch (Exception e) when (e is not InvalidOperationException)
        {
            Problem = e.Message;
            return;
        }
        Database = await Scratch.NewPostgresDatabaseAsync();
        await PgTestDb.ExecAsync(Database,
            "CREATE TABLE t AS SELECT g AS id, md5(g::text) AS h, repeat('x', 100) AS pad FROM generate_series(1, 1000000) g");
        BackupDir = Scratch.TempDir("backups");
        Config = Path.Combine(Scratch.TempDir("cfg"), "config.yaml");
        await File.WriteAllTextAsync(Config, string.Create(CultureInfo.InvariantCulture, $"""
            backup_dir: '{BackupDir}'
            instances:
              - id: 2
                name: it-pg
                dbms: postgresql
                host: {TestServers.PgHost}
                port: {TestServers.PgPort}
                user: {TestServers.PgUser}
                password: '{TestServers.PgPassword}'

            """));
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(Config, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        }
        StallingConfig = Path.Combine(Scratch.TempDir("cfg-stalling"), "config.yaml");
        await File.WriteAllTextAsync(StallingConfig, (await File.ReadAllTextAsync(Config))
            + $"    tools_dir: '{StallingTools.Create(Scratch.TempDir("stalling-tools"), postgres: true)}'\n");
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(StallingConfig, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        }
        var run = await Run.CliAsync("backup", "-i", "2", "-d", Database, "--config", Config);
        Assert.True(run.ExitCode == 0, run.ToString());
        Backup = Assert.Single(Ops.DataFilesUnder(BackupDir));
    }

    public Task DisposeAsync() => Scratch.DisposeAsync();
}

/// <summary>
/// Ctrl+C during backup, restore and verify --restore, on a terminal (a pty through `script`: the
/// terminal signals the whole process group, the dump tool or psql too, while the progress line is
/// redrawn) and off it (SIGINT to the CLI alone): exit 130, one "interrupted" line, nothing
/// partial left (no backup file, no restored target, no scratch database), the earlier backup byte
/// for byte, nothing left in TMPDIR.
/// </summary>
[Trait("Category", "Integration")]
[Collection(VerifyScratch.Name)]
public sealed class InterruptTests(BigPostgresFixture big) : IClassFixture<BigPostgresFixture>, IAsyncLifetime
{
    private const int Interrupted = 130;

    private readonly Scratch _scratch = new();

    public Task InitializeAsync() => _scratch.InitializeAsync();

    public Task DisposeAsync() => _scratch.DisposeAsync();

    public enum Operation
    {
        Backup,
        Restore,
        Verify,
    }

    [SkippableTheory]
    [InlineData(Operation.Backup, true)]
    [InlineData(Operation.Backup, false)]
    [InlineData(Operation.Restore, true)]
    [InlineData(Operation.Restore, false)]
    [InlineData(Operation.Verify, true)]
    [InlineData(Operation.Verify, false)]
    public async Task Ctrl_c_exits_130_and_leaves_nothing_partial(Operation operation, bool terminal)
    {
        Skip.If(big.Problem is not null, big.Problem);
        Skip.If(terminal && !File.Exists("/usr/bin/script"), "no script(1) to make a terminal");
        var tmp = _scratch.TempDir("tmpdir");
        var before = FabricatedBackups.Snapshot(big.BackupDir);
        var target = _scratch.PostgresName();
        var backupFile = Path.Combine(big.BackupDir, big.Backup);
        var scratchBefore = await ScratchDatabasesAsync();
        var metricsFile = Path.Combine(_scratch.TempDir("metrics"), "vya.prom");
        string[] arguments = operation switch
        {
            Operation.Backup => ["backup", "-i", "2", "-d", big.Database, "--config", big.StallingConfig, "--metrics-file", metricsFile,
                .. (terminal ? Array.Empty<string>() : ["--json"])],
            Operation.Restore => ["restore", "--file", backupFile, "-i", "2", "--target", target, "--config", big.StallingConfig],
            _ => ["verify", "--file", backupFile, "--restore", "-i", "2", "--config", big.StallingConfig],
        };
        // What shows that the work is under way: the progress line on a terminal, a log line off it.
        var marker = (operation, terminal) switch
        {
            (Operation.Backup, true) => $"it-pg/{big.Database}: ",
            (Operation.Backup, false) => "backing up",
            (Operation.Restore, true) => "restoring: ",
            (Operation.Restore, false) => "restoring ",
            (Operation.Verify, true) => "test restore: ",
            _ => "test restore of",
        };

        var (exitCode, output) = await InterruptAsync(arguments, terminal, output => output.Contains(marker, StringComparison.Ordinal), tmp);

        Assert.True(exitCode == Interrupted, $"exit {exitCode}\n{output}");
        Assert.Equal(1, CountOf(output, "vya-backupdb: error: interrupted"));
        Assert.DoesNotContain("Exception", output, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", output, StringComparison.Ordinal);
        Assert.Equal(before, FabricatedBackups.Snapshot(big.BackupDir));
        Assert.False(await PgTestDb.ExistsAsync(target), $"the half-restored '{target}' was left behind\n{output}");
        await AssertNoNewScratchDatabaseAsync(scratchBefore);
        Assert.True(Directory.GetFileSystemEntries(tmp).Length == 0,
            $"left in TMPDIR: {string.Join(", ", Directory.GetFileSystemEntries(tmp).Select(Path.GetFileName))}");
        if (operation == Operation.Backup)
        {
            // The interrupted run still reaches the metrics: its database failed, exit code 130.
            Assert.True(File.Exists(metricsFile), $"no metrics file\n{output}");
            var metrics = await File.ReadAllTextAsync(metricsFile);
            Assert.Contains($"vya_backupdb_last_status{{instance_id=\"2\",instance_name=\"it-pg\",database=\"{big.Database}\"}} 0", metrics, StringComparison.Ordinal);
            Assert.Contains("vya_backupdb_run_exit_code 130", metrics, StringComparison.Ordinal);
            if (!terminal)
            {
                // Found by a tester: --json printed nothing; a script reading it gets the document, saying so.
                Assert.Matches("\"status\":\\s*\"interrupted\"", output);
                Assert.Matches("\"exit_code\":\\s*130", output);
            }
        }
    }

    private static int CountOf(string text, string what)
    {
        var count = 0;
        for (var i = text.IndexOf(what, StringComparison.Ordinal); i >= 0; i = text.IndexOf(what, i + what.Length, StringComparison.Ordinal))
        {
            count++;
        }
        return count;
    }

    /// <summary>
    /// SIGTERM while a parallel MariaDB backup reads the schema under the backup lock (the schema dump held
    /// up): exit 130 at once with one "interrupted" line, the dump tools stopped and their option files
    /// (the password) gone from TMPDIR by then, the server's DDL no longer held up. Before, the read went on
    /// unwatched: dump tools outlived the tool with their option files, or the exit waited 30 s with the lock held.
    /// </summary>
    [SkippableFact]
    public async Task Sigterm_while_a_parallel_mysql_backup_reads_the_schema_stops_its_dump_tools_and_the_lock()
    {
        await TestServers.RequireMySqlAsync();
        var db = await _scratch.NewMySqlDatabaseAsync();
        await MySqlTestDb.ExecAsync(db, "CREATE TABLE t (id INT PRIMARY KEY)", "INSERT INTO t VALUES (1)");
        var tools = _scratch.TempDir("tools");
        var pids = _scratch.TempDir("pids");
        // Each dump tool notes its pid and holds still, without watching its parent: one left behind lives on.
        WrappedTool.Write(tools, "/usr/bin", "mariadb-dump", $"touch '{pids}'/$$; sleep 30; exec /usr/bin/mariadb-dump \"$@\"");
        WrappedTool.Write(tools, "/usr/bin", "mariadb", "exec /usr/bin/mariadb \"$@\"");
        var config = Path.Combine(_scratch.TempDir("cfg"), "config.yaml");
        await File.WriteAllTextAsync(config, $"""
            backup_dir: '{_scratch.TempDir("backups")}'
            instances:
              - id: 1
                dbms: mysql
                engine: parallel
                host: '{TestServers.MySqlHost}'
                port: {TestServers.MySqlPort}
                user: '{TestServers.MySqlUser}'
                password: '{TestServers.MySqlPassword}'
                tools_dir: '{tools}'
                globals: false
            """);
        var tmp = _scratch.TempDir("tmpdir");

        var clock = Stopwatch.StartNew();
        var (exitCode, output) = await InterruptAsync(["backup", "-i", "1", "-d", db, "--jobs", "2", "--config", config], terminal: false,
            _ => Directory.GetFiles(pids).Length >= 2, tmp, signal: 15);

        Assert.True(exitCode == Interrupted, $"exit {exitCode} after {clock.Elapsed}\n{output}");
        Assert.Equal(1, CountOf(output, "vya-backupdb: error: interrupted"));
        Assert.True(Directory.GetFileSystemEntries(tmp).Length == 0,
            $"left in TMPDIR: {string.Join(", ", Directory.GetFileSystemEntries(tmp).Select(Path.GetFileName))}");
        var alive = Directory.GetFiles(pids).Select(Path.GetFileName).Where(pid => Directory.Exists($"/proc/{pid}")).ToList();
        Assert.True(alive.Count == 0, $"dump tools left running: {string.Join(", ", alive)}");
        await MySqlTestDb.ExecAsync(db, "SET SESSION lock_wait_timeout = 5", "CREATE TABLE after_the_backup (id INT)");
    }

    /// <summary>
    /// Runs the CLI; once <paramref name="ready"/> says so of its output, waits a second and
    /// interrupts it: on a terminal by typing Ctrl+C into script's pty (SIGINT to the foreground
    /// process group), off it by sending <paramref name="signal"/> to the CLI alone. Returns its exit code and all its output.
    /// </summary>
    private static async Task<(int ExitCode, string Output)> InterruptAsync(
        string[] arguments, bool terminal, Func<string, bool> ready, string tmp, int signal = 2)
    {
        var (file, args, env) = Run.CliCommand(new Dictionary<string, string> { ["TMPDIR"] = tmp }, arguments);
        var startInfo = terminal
            ? new ProcessStartInfo("/usr/bin/script", ["-qfec", string.Join(' ', new[] { file }.Concat(args).Select(Quote)), "/dev/null"])
            : new ProcessStartInfo(file, args);
        startInfo.RedirectStandardInput = true;
        startInfo.RedirectStandardOutput = true;
        startInfo.RedirectStandardError = true;
        startInfo.UseShellExecute = false;
        foreach (var (name, value) in env)
        {
            startInfo.Environment[name] = value;
        }
        using var process = Process.Start(startInfo)!;
        var output = new StringBuilder();
        var stdout = PumpAsync(process.StandardOutput, output);
        var stderr = PumpAsync(process.StandardError, output);
        var clock = Stopwatch.StartNew();
        while (!ready(Text(output)))
        {
            Assert.True(!process.HasExited && clock.Elapsed < TimeSpan.FromMinutes(2),
                $"the work never showed it was under way (exit {(process.HasExited ? process.ExitCode : "-")}):\n{Text(output)}");
            await Task.Delay(50);
        }
        await Task.Delay(1000);
        Assert.False(process.HasExited, $"it finished before it could be interrupted:\n{Text(output)}");
        if (terminal)
        {
            await process.StandardInput.WriteAsync('\u0003');
            await process.StandardInput.FlushAsync();
        }
        else
        {
            Assert.Equal(0, SendSignal(process.Id, signal));
        }
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"it did not stop within 60 s of the interruption:\n{Text(output)}");
        }
        await Task.WhenAll(stdout, stderr);
        return (process.ExitCode, Text(output));
    }

    private static async Task PumpAsync(StreamReader reader, StringBuilder into)
    {
        var buffer = new char[4096];
        int n;
        while ((n = await reader.ReadAsync(buffer)) > 0)
        {
            lock (into)
            {
                into.Append(buffer, 0, n);
            }
        }
    }

    private static string Text(StringBuilder output)
    {
        lock (output)
        {
            return output.ToString();
        }
    }

    private static string Quote(string argument) => "'" + argument.Replace("'", "'\\''", StringComparison.Ordinal) + "'";

    private static async Task<HashSet<string>> ScratchDatabasesAsync()
    {
        await using var connection = await PgTestDb.OpenAsync();
        await using var command = new Npgsql.NpgsqlCommand("SELECT datname FROM pg_database WHERE datname LIKE 'vya\\_verify\\_%'", connection);
        await using var reader = await command.ExecuteReaderAsync();
        var names = new HashSet<string>(StringComparer.Ordinal);
        while (await reader.ReadAsync())
        {
            names.Add(reader.GetString(0));
        }
        return names;
    }

    /// <summary>No scratch database of ours is left (another test's may come and go meanwhile: give it a moment).</summary>
    private static async Task AssertNoNewScratchDatabaseAsync(HashSet<string> before)
    {
        var clock = Stopwatch.StartNew();
        while (true)
        {
            var added = (await ScratchDatabasesAsync()).Except(before).ToList();
            if (added.Count == 0)
            {
                return;
            }
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(10), $"scratch databases left: {string.Join(", ", added)}");
            await Task.Delay(200);
        }
    }

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    internal static extern int SendSignal(int pid, int signal);
}
