using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;

namespace VyaBackupDb.Tests.Integration;

/// <summary>
/// `backup --all --parallel N` over a fleet where some servers are down: the dead ones fail fast
/// (connect_timeout_seconds), the others are backed up, and the report (--json), the exit code and
/// the logs (--log-format json, --log-file) say which is which.
/// </summary>
[Trait("Category", "Integration")]
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class FleetTests : IAsyncLifetime
{
    private const int Success = 0;
    private const int PartialFailure = 3;
    private const int ConnectTimeoutSeconds = 4;

    /// <summary>The dead instances' password: must never reach a log line, the log file or the report.</summary>
    private const string DeadPassword = "fleet-dead-pw-7c1e";

    private readonly Scratch _scratch = new();

    public Task InitializeAsync() => _scratch.InitializeAsync();

    public Task DisposeAsync() => _scratch.DisposeAsync();

    [SkippableFact]
    public async Task A_fleet_run_fails_mute_and_closed_servers_fast_and_backs_up_the_others()
    {
        await TestServers.RequireMySqlAsync();
        await TestServers.RequirePostgresAsync();
        var mysqlDb = await _scratch.NewMySqlDatabaseAsync();
        await MySqlTestDb.ExecAsync(mysqlDb, "CREATE TABLE t (id INT PRIMARY KEY, v TEXT)", "INSERT INTO t VALUES (1, 'fleet')");
        var pgDb = await _scratch.NewPostgresDatabaseAsync();
        await PgTestDb.ExecAsync(pgDb, "CREATE TABLE t (id int PRIMARY KEY, v text)", "INSERT INTO t VALUES (1, 'fleet')");
        using var mute = new MuteServer();
        var closedPort = ClosedPort();
        var backupDir = _scratch.TempDir("backups");
        var logFile = Path.Combine(_scratch.TempDir("logs"), "fleet.log");
        // Three servers that accept and never speak: one after the other they would cost 3 timeouts.
        var config = await WriteConfigAsync(backupDir, mysqlDb, pgDb,
        [
            Dead(3, "mute-mysql", "mysql", mute.Port), Dead(4, "mute-pg", "postgresql", mute.Port), Dead(5, "mute-mysql-2", "mysql", mute.Port),
            Dead(6, "closed-pg", "postgresql", closedPort),
        ]);

        var run = await Run.CliAsync("backup", "--all", "--parallel", "6", "--json", "--log-format", "json", "--log-file", logFile, "--config", config);

        Assert.True(run.ExitCode == PartialFailure, run.ToString());
        var report = JsonDocument.Parse(run.Stdout).RootElement;
        Assert.Equal("partial_failure", report.GetProperty("status").GetString());
        Assert.Equal(PartialFailure, report.GetProperty("exit_code").GetInt32());
        var results = report.GetProperty("results").EnumerateArray().ToList();
        // In the config's order, whichever finished first.
        Assert.Equal(["it-mysql", "it-pg", "mute-mysql", "mute-pg", "mute-mysql-2", "closed-pg"],
            results.Select(r => r.GetProperty("instance").GetString()));
        Assert.Equal([mysqlDb, pgDb, "*", "*", "*", "*"], results.Select(r => r.GetProperty("database").GetString()));
        Assert.Equal(["ok", "ok", "failed", "failed", "failed", "failed"], results.Select(r => r.GetProperty("status").GetString()));
        foreach (var ok in results.Take(2))
        {
            Assert.Equal(JsonValueKind.Null, ok.GetProperty("error").ValueKind);
            var file = ok.GetProperty("file").GetString()!;
            Assert.True(File.Exists(file), $"{file} is not there");
            Assert.Equal(new FileInfo(file).Length, ok.GetProperty("bytes").GetInt64());
            Assert.True(ok.GetProperty("plain_bytes").GetInt64() > 0);
            Assert.Equal(["local"], ok.GetProperty("destinations").EnumerateArray().Select(d => d.GetString()));
        }
        Assert.Equal(2, Ops.DataFilesUnder(backupDir).Count);
        foreach (var (dead, port) in new[] { (results[2], mute.Port), (results[3], mute.Port), (results[4], mute.Port) })
        {
            Assert.Equal(
                $"no answer from 127.0.0.1:{port} within {ConnectTimeoutSeconds} s (connect_timeout_seconds)",
                dead.GetProperty("error").GetString());
            // It waited its timeout, not the driver's own (15 s) nor forever.
            Assert.InRange(dead.GetProperty("duration_seconds").GetDouble(), ConnectTimeoutSeconds - 0.5, ConnectTimeoutSeconds + 4);
            Assert.Equal(JsonValueKind.Null, dead.GetProperty("file").ValueKind);
        }
        // A closed port is refused at once: no timeout to wait for.
        Assert.Contains($"cannot connect to closed-pg (127.0.0.1:{closedPort})", results[5].GetProperty("error").GetString(), StringComparison.Ordinal);
        Assert.True(results[5].GetProperty("duration_seconds").GetDouble() < ConnectTimeoutSeconds - 1, run.Stdout);
        // The mute servers waited side by side: the whole run took about one timeout, not three.
        Assert.True(report.GetProperty("duration_seconds").GetDouble() < 2 * ConnectTimeoutSeconds, run.Stdout);

        // --log-format json: every stderr line is one object with the stable fields.
        var lines = run.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.NotEmpty(lines);
        var records = lines.Select(l => JsonDocument.Parse(l).RootElement).ToList();
        foreach (var record in records)
        {
            Assert.True(DateTime.TryParse(record.GetProperty("time").GetString(), CultureInfo.InvariantCulture, DateTimeStyles.RoundtripKind, out _));
            Assert.Contains(record.GetProperty("level").GetString(), new[] { "info", "warning", "error" });
            Assert.False(string.IsNullOrEmpty(record.GetProperty("message").GetString()));
        }
        var okLine = Assert.Single(records, r => r.GetProperty("message").GetString()!.StartsWith("ok ", StringComparison.Ordinal)
            && r.GetProperty("instance").GetString() == "it-pg");
        Assert.Equal(("info", 2, pgDb), (okLine.GetProperty("level").GetString(), okLine.GetProperty("instance_id").GetInt32(), okLine.GetProperty("database").GetString()));
        // Progress is measured against the size the server reports for the database.
        var pgStart = Assert.Single(records, r => r.GetProperty("message").GetString()!.StartsWith($"backing up it-pg/{pgDb} ", StringComparison.Ordinal));
        Assert.Contains("(the server reports ", pgStart.GetProperty("message").GetString(), StringComparison.Ordinal);
        var failed = records.Where(r => r.GetProperty("level").GetString() == "error").ToList();
        Assert.Equal(["closed-pg", "mute-mysql", "mute-mysql-2", "mute-pg"],
            failed.Select(r => r.GetProperty("instance").GetString()).Order(StringComparer.Ordinal));
        Assert.All(failed, r => Assert.False(r.TryGetProperty("database", out _), "a failed probe is about no one database"));

        // --log-file: the same lines, private, without a password.
        Assert.Equal(lines, (await File.ReadAllTextAsync(logFile)).Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(logFile));
        foreach (var secret in new[] { DeadPassword, TestServers.MySqlPassword, TestServers.PgPassword })
        {
            Assert.DoesNotContain(secret, await File.ReadAllTextAsync(logFile), StringComparison.Ordinal);
            Assert.DoesNotContain(secret, run.Stdout + run.Stderr, StringComparison.Ordinal);
        }
    }

    [SkippableFact]
    public async Task Parallel_2_backs_up_two_instances_at_the_same_time()
    {
        await TestServers.RequireMySqlAsync();
        await TestServers.RequirePostgresAsync();
        var mysqlDb = await _scratch.NewMySqlDatabaseAsync();
        var pgDb = await _scratch.NewPostgresDatabaseAsync();
        // Dump tools that take 3 s each: one after the other the run takes 6 s or more.
        var mysqlTools = FakeTools.Create(_scratch.TempDir("fake-mysql"), FakeDump.SlowButComplete, postgres: false);
        var pgTools = FakeTools.Create(_scratch.TempDir("fake-pg"), FakeDump.SlowButComplete, postgres: true);
        var backupDir = _scratch.TempDir("backups");
        var logFile = Path.Combine(_scratch.TempDir("logs"), "fleet.log");
        await File.WriteAllTextAsync(logFile, "an earlier line\n");
        var config = await WriteConfigAsync(backupDir, mysqlDb, pgDb, mysqlTools: mysqlTools, pgTools: pgTools);

        var run = await Run.CliAsync("backup", "--all", "--parallel", "2", "--json", "--log-file", logFile, "--config", config);

        Assert.True(run.ExitCode == Success, run.ToString());
        var results = JsonDocument.Parse(run.Stdout).RootElement.GetProperty("results").EnumerateArray().ToList();
        Assert.Equal([mysqlDb, pgDb], results.Select(r => r.GetProperty("database").GetString()));
        Assert.All(results, r => Assert.Equal("ok", r.GetProperty("status").GetString()));
        var spans = results.Select(r => (Start: r.GetProperty("started_utc").GetDateTime(), End: r.GetProperty("finished_utc").GetDateTime())).ToList();
        Assert.True(spans.Max(s => s.Start) < spans.Min(s => s.End), $"the two backups did not overlap: {run.Stdout}");
        // Plain stdout is the report alone; the per-database lines went to stderr and, appended with the time, to the log file.
        var log = await File.ReadAllLinesAsync(logFile);
        Assert.Equal("an earlier line", log[0]);
        Assert.Contains(log, l => l.Contains($"ok     it-mysql/{mysqlDb}", StringComparison.Ordinal));
        Assert.Contains(log, l => l.Contains($"ok     it-pg/{pgDb}", StringComparison.Ordinal));
        Assert.All(log.Skip(1), l => Assert.Matches(@"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ ", l));
    }

    [SkippableFact]
    public async Task On_a_terminal_each_running_backup_has_a_live_line_with_its_percentage_then_a_table()
    {
        await TestServers.RequireMySqlAsync();
        await TestServers.RequirePostgresAsync();
        var mysqlDb = await _scratch.NewMySqlDatabaseAsync();
        var pgDb = await _scratch.NewPostgresDatabaseAsync();
        var mysqlTools = FakeTools.Create(_scratch.TempDir("fake-mysql"), FakeDump.SlowButComplete, postgres: false);
        var pgTools = FakeTools.Create(_scratch.TempDir("fake-pg"), FakeDump.SlowButComplete, postgres: true);
        var config = await WriteConfigAsync(_scratch.TempDir("backups"), mysqlDb, pgDb, mysqlTools: mysqlTools, pgTools: pgTools);
        var (dotnet, arguments, environment) = Run.CliCommand(null, "backup", "--all", "--parallel", "2", "--config", config);

        // script(1) gives the CLI a pseudo-terminal for stdout and stderr, as an operator's shell would.
        var run = await Run.ProgramAsync("script",
            ["-q", "-e", "-c", string.Join(' ', arguments.Prepend(dotnet).Select(a => "'" + a.Replace("'", "'\\''", StringComparison.Ordinal) + "'")), "/dev/null"],
            environment);

        Assert.True(run.ExitCode == Success, run.ToString());
        // Both jobs on screen at once, each with a percentage of the size its server reports (an
        // empty PostgreSQL database is still a few MB), redrawn in place (cursor up, clear).
        Assert.Matches($@"it-pg/{pgDb}: +\d+% [\d.]+ [KMG]?i?B of ~[\d.]+ [KMG]iB", run.Stdout);
        Assert.Contains("\u001b[2A", run.Stdout, StringComparison.Ordinal);
        // Then the results table, framed.
        Assert.Contains("│ INSTANCE", run.Stdout, StringComparison.Ordinal);
        Assert.Contains("backup summary: 2 succeeded, 0 failed", run.Stdout, StringComparison.Ordinal);
    }

    /// <summary>
    /// An S3 endpoint that takes connections and never answers (a hung object store) fails what
    /// needs it within connect_timeout_seconds, in one line, and the other instance is backed up.
    /// Found by a tester: the backup and list hung for 5 minutes and more, printing nothing.
    /// </summary>
    [SkippableFact]
    public async Task A_mute_s3_destination_fails_within_the_connect_timeout_and_the_others_go_on()
    {
        await TestServers.RequireMySqlAsync();
        await TestServers.RequirePostgresAsync();
        var mysqlDb = await _scratch.NewMySqlDatabaseAsync();
        var pgDb = await _scratch.NewPostgresDatabaseAsync();
        using var mute = new MuteServer();
        var backupDir = _scratch.TempDir("backups");
        var config = await WriteConfigAsync(backupDir, mysqlDb, pgDb);
        await File.WriteAllTextAsync(config, (await File.ReadAllTextAsync(config))
            .Replace($"include: ['{mysqlDb}']", $"include: ['{mysqlDb}']\n    storage: [mute]", StringComparison.Ordinal) + string.Create(CultureInfo.InvariantCulture, $"""
            storage:
              - name: mute
                type: s3
                endpoint: http://127.0.0.1:{mute.Port}
                bucket: b
                access_key_id: AKIDEXAMPLE
                secret_access_key: mute-s3-secret

            """));
        var expected = $"no answer within {ConnectTimeoutSeconds} s (connect_timeout_seconds)";

        var backup = await Run.CliAsync("backup", "--all", "--json", "--config", config);
        var list = await Run.CliAsync("list", "--instance", "1", "--config", config);

        Assert.True(backup.ExitCode == PartialFailure, backup.ToString());
        var results = JsonDocument.Parse(backup.Stdout).RootElement.GetProperty("results").EnumerateArray().ToList();
        Assert.Equal(["failed", "ok"], results.Select(r => r.GetProperty("status").GetString()));
        Assert.Contains(expected, results[0].GetProperty("error").GetString(), StringComparison.Ordinal);
        Assert.True(results[0].GetProperty("duration_seconds").GetDouble() < 3 * ConnectTimeoutSeconds, backup.Stdout);
        Assert.True(list.ExitCode != Success, list.ToString());
        Assert.Contains(expected, Assert.Single(list.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries)), StringComparison.Ordinal);
        Assert.DoesNotContain("mute-s3-secret", backup.ToString() + list, StringComparison.Ordinal);
    }

    /// <summary>Also a command line that does not parse (--instance abc): it was plain text.</summary>
    [Theory]
    [InlineData("42", "instance 42")]
    [InlineData("abc", "--instance: 'abc' is not a whole number")]
    public async Task Errors_of_any_command_go_to_the_log_file_in_json(string instance, string expected)
    {
        var logFile = Path.Combine(_scratch.TempDir("logs"), "errors.log");
        var config = await WriteConfigAsync(_scratch.TempDir("backups"), "vt_unused", "vt_unused");

        var run = await Run.CliAsync("list", "--instance", instance, "--config", config, "--log-format", "json", "--log-file", logFile);

        Assert.True(run.ExitCode == 2, run.ToString());
        var line = Assert.Single(await File.ReadAllLinesAsync(logFile));
        Assert.Equal(line, run.Stderr.Trim());
        var record = JsonDocument.Parse(line).RootElement;
        Assert.Equal("error", record.GetProperty("level").GetString());
        Assert.Contains(expected, record.GetProperty("message").GetString(), StringComparison.Ordinal);
    }

    /// <summary>A script reading `backup --json` gets a document when the run cannot start as well (it got nothing).</summary>
    [Theory]
    [InlineData("broken", "invalid YAML")]
    [InlineData("42", "instance 42 is not defined")]
    public async Task Backup_json_prints_a_document_for_a_run_that_cannot_start(string fault, string expected)
    {
        var config = await WriteConfigAsync(_scratch.TempDir("backups"), "vt_unused", "vt_unused");
        if (fault == "broken")
        {
            await File.AppendAllTextAsync(config, "instances: [\n");
        }

        var run = await Run.CliAsync("backup", "--instance", fault == "broken" ? "1" : fault, "--json", "--config", config);

        Assert.True(run.ExitCode == 2, run.ToString());
        var document = JsonDocument.Parse(run.Stdout).RootElement;
        Assert.Equal("failed", document.GetProperty("status").GetString());
        Assert.Equal(2, document.GetProperty("exit_code").GetInt32());
        Assert.Contains(expected, document.GetProperty("error").GetString(), StringComparison.Ordinal);
        Assert.Empty(document.GetProperty("results").EnumerateArray());
        Assert.Contains(expected, Assert.Single(run.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries)), StringComparison.Ordinal);
    }

    /// <summary>A config of the two test servers (each backing up exactly its one database) and the given dead instances.</summary>
    private async Task<string> WriteConfigAsync(
        string backupDir, string mysqlDb, string pgDb, string[]? dead = null, string? mysqlTools = null, string? pgTools = null)
    {
        var path = Path.Combine(_scratch.TempDir("cfg"), "config.yaml");
        var yaml = string.Create(CultureInfo.InvariantCulture, $"""
            backup_dir: '{backupDir}'
            connect_timeout_seconds: {ConnectTimeoutSeconds}
            instances:
              - id: 1
                name: it-mysql
                dbms: mysql
                host: '{TestServers.MySqlHost}'
                port: {TestServers.MySqlPort}
                user: '{TestServers.MySqlUser}'
                password: '{TestServers.MySqlPassword}'
                include: ['{mysqlDb}']
                globals: false{(mysqlTools is null ? "" : $"\n    tools_dir: '{mysqlTools}'")}
              - id: 2
                name: it-pg
                dbms: postgresql
                host: '{TestServers.PgHost}'
                port: {TestServers.PgPort}
                user: '{TestServers.PgUser}'
                password: '{TestServers.PgPassword}'
                include: ['{pgDb}']
                globals: false{(pgTools is null ? "" : $"\n    tools_dir: '{pgTools}'")}

            """) + string.Concat(dead ?? []);
        await File.WriteAllTextAsync(path, yaml);
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        return path;
    }

    private static string Dead(int id, string name, string dbms, int port) => string.Create(CultureInfo.InvariantCulture, $"""
          - id: {id}
            name: {name}
            dbms: {dbms}
            host: 127.0.0.1
            port: {port}
            user: nobody
            password: '{DeadPassword}'

        """);

    /// <summary>A loopback port nothing listens on (bound, then released).</summary>
    private static int ClosedPort()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return port;
    }

    /// <summary>A server that accepts connections and never says a word (a hung database host).</summary>
    private sealed class MuteServer : IDisposable
    {
        private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
        private readonly List<Socket> _accepted = [];
        private readonly CancellationTokenSource _stop = new();

        public MuteServer()
        {
            _listener.Start();
            Port = ((IPEndPoint)_listener.LocalEndpoint).Port;
            _ = Task.Run(async () =>
            {
                try
                {
                    while (true)
                    {
                        var socket = await _listener.AcceptSocketAsync(_stop.Token);
                        lock (_accepted)
                        {
                            _accepted.Add(socket);
                        }
                    }
                }
                catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
                {
                }
            });
        }

        public int Port { get; }

        public void Dispose()
        {
            _stop.Cancel();
            _listener.Stop();
            lock (_accepted)
            {
                _accepted.ForEach(s => s.Dispose());
            }
            _stop.Dispose();
        }
    }
}
