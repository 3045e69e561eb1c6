using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;

namespace VyaBackupDb.Tests.Integration;

/// <summary>
/// `vya-backupdb schedule` run as a service (a child process, signals sent to it alone): SIGTERM during a
/// backup waits the grace period, then cancels it (exit 130, no backup file, no temp file); a backup that
/// ends within the grace is kept (exit 0), and due times that came while it ran were skipped and said so;
/// SIGHUP reloads a changed schedule, and refuses a broken config keeping the old one.
/// </summary>
[Trait("Category", "Integration")]
public sealed class ScheduleCliTests : IAsyncLifetime
{
    private const int Sigterm = 15;
    private const int Sighup = 1;

    private readonly Scratch _scratch = new();

    public Task InitializeAsync() => _scratch.InitializeAsync();

    public Task DisposeAsync() => _scratch.DisposeAsync();

    [DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static extern int SendSignal(int pid, int signal);

    /// <summary>The schedule service, its output gathered as it comes.</summary>
    private sealed class Service : IDisposable
    {
        private readonly StringBuilder _output = new();
        private readonly Task _pumps;

        public Service(string config, params string[] extra)
        {
            var (file, args, env) = Run.CliCommand(null, ["schedule", "--config", config, .. extra]);
            var startInfo = new ProcessStartInfo(file, args)
            {
                RedirectStandardInput = true,
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                UseShellExecute = false,
            };
            foreach (var (name, value) in env)
            {
                startInfo.Environment[name] = value;
            }
            Process = Process.Start(startInfo)!;
            Process.StandardInput.Close();
            _pumps = Task.WhenAll(PumpAsync(Process.StandardOutput), PumpAsync(Process.StandardError));
        }

        public Process Process { get; }

        public string Output
        {
            get
            {
                lock (_output)
                {
                    return _output.ToString();
                }
            }
        }

        public async Task WaitForAsync(string marker, int occurrences = 1)
        {
            var clock = Stopwatch.StartNew();
            while (Count(marker) < occurrences)
            {
                if (Process.HasExited || clock.Elapsed > TimeSpan.FromSeconds(90))
                {
                    Assert.Fail($"'{marker}' never showed {occurrences} time(s):\n{Output}");
                }
                await Task.Delay(50);
            }
        }

        public int Count(string marker)
        {
            var text = Output;
            var count = 0;
            for (var at = text.IndexOf(marker, StringComparison.Ordinal); at >= 0; at = text.IndexOf(marker, at + marker.Length, StringComparison.Ordinal))
            {
                count++;
            }
            return count;
        }

        public void Signal(int signal) => Assert.Equal(0, SendSignal(Process.Id, signal));

        public async Task<int> ExitAsync()
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(90));
            try
            {
                await Process.WaitForExitAsync(timeout.Token);
            }
            catch (OperationCanceledException)
            {
                Process.Kill(entireProcessTree: true);
                Assert.Fail($"it did not stop:\n{Output}");
            }
            await _pumps;
            return Process.ExitCode;
        }

        private async Task PumpAsync(StreamReader reader)
        {
            var buffer = new char[4096];
            int n;
            while ((n = await reader.ReadAsync(buffer)) > 0)
            {
                lock (_output)
                {
                    _output.Append(buffer, 0, n);
                }
            }
        }

        public void Dispose()
        {
            if (!Process.HasExited)
            {
                Process.Kill(entireProcessTree: true);
            }
            Process.Dispose();
        }
    }

    private async Task<string> SmallDatabaseAsync()
    {
        var database = await _scratch.NewPostgresDatabaseAsync();
        await PgTestDb.ExecAsync(database, "CREATE TABLE t AS SELECT g AS id, md5(g::text) AS h FROM generate_series(1, 1000) g");
        return database;
    }

    private static void SetMode(string path, UnixFileMode mode)
    {
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(path, mode);
        }
    }

    /// <param name="more">Top-level settings (e.g. notify:), as YAML lines.</param>
    /// <param name="moreOfInstance">Settings of the instance, as YAML lines indented by four spaces.</param>
    private static async Task WriteConfigAsync(
        string path, string backupDir, string database, string schedule, string? toolsDir, int graceSeconds, string more = "", string moreOfInstance = "")
    {
        var tools = toolsDir is null ? "" : $"\n    tools_dir: '{toolsDir}'";
        tools += moreOfInstance.Length == 0 ? "" : "\n" + moreOfInstance;
        await File.WriteAllTextAsync(path, string.Create(CultureInfo.InvariantCulture, $"""
            backup_dir: '{backupDir}'
            stop_grace_seconds: {graceSeconds}
            {more}
            instances:
              - id: 2
                name: it-pg
                dbms: postgresql
                host: {TestServers.PgHost}
                port: {TestServers.PgPort}
                user: {TestServers.PgUser}
                password: '{TestServers.PgPassword}'
                include: ['{database}']
                globals: false
                schedule: "{schedule}"{tools}

            """));
        SetMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
    }

    /// <param name="secondSignal">A second SIGTERM within a long grace cancels at once, and the last line says which (it named the grace).</param>
    [SkippableTheory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Sigterm_during_a_backup_waits_the_grace_then_cancels_it_exits_130_and_leaves_no_backup(bool secondSignal)
    {
        var grace = secondSignal ? 60 : 3;
        await TestServers.RequirePostgresAsync();
        // Two databases, backed up in name order: the first is done, the second's dump stalls.
        var stem = _scratch.PostgresName();
        var (done, stalled) = (_scratch.TrackPostgres(stem + "_a"), _scratch.TrackPostgres(stem + "_b"));
        foreach (var database in new[] { done, stalled })
        {
            await PgTestDb.CreateAsync(database);
            await PgTestDb.ExecAsync(database, "CREATE TABLE t AS SELECT g AS id FROM generate_series(1, 10) g");
        }
        var backups = _scratch.TempDir("backups");
        var config = Path.Combine(_scratch.TempDir("cfg"), "config.yaml");
        var metricsFile = Path.Combine(_scratch.TempDir("metrics"), "vya.prom");
        // The stalling tools hold the dump for a minute: far longer than the 3 s grace.
        await WriteConfigAsync(config, backups, stem + "_*", "* * * * * *",
            StallingTools.Create(_scratch.TempDir("stalling"), postgres: true, only: stalled), graceSeconds: grace);
        using var service = new Service(config, "--metrics-file", metricsFile);
        await service.WaitForAsync($"backing up it-pg/{stalled}");
        await Task.Delay(500);

        var clock = Stopwatch.StartNew();
        service.Signal(Sigterm);
        if (secondSignal)
        {
            await service.WaitForAsync("waiting up to 60 s");
            service.Signal(Sigterm);
        }
        var exit = await service.ExitAsync();

        Assert.True(exit == 130, $"exit {exit}:\n{service.Output}");
        Assert.InRange(clock.Elapsed, TimeSpan.FromSeconds(secondSignal ? 0 : 3), TimeSpan.FromSeconds(20));
        Assert.Contains($"waiting up to {grace} s for 1 running backup(s)", service.Output, StringComparison.Ordinal);
        Assert.Contains("vya-backupdb: error: interrupted: the running backup was cancelled "
            + (secondSignal ? "by a second SIGTERM" : "at the end of the grace period"), service.Output, StringComparison.Ordinal);
        Assert.Equal(1, service.Count("run of instance 2 (it-pg) started"));
        // Only the finished backup: nothing of the cancelled one, and no temp file either.
        Assert.Contains(done, Assert.Single(Ops.DataFilesUnder(backups)), StringComparison.Ordinal);
        Assert.All(Ops.FilesUnder(backups), f => Assert.Contains(done, f, StringComparison.Ordinal));
        // The metrics still count the cancelled run: the finished backup, the cancelled one as failed, exit code 130.
        var metrics = await File.ReadAllTextAsync(metricsFile);
        string Series(string name, string database) => $"vya_backupdb_{name}{{instance_id=\"2\",instance_name=\"it-pg\",database=\"{database}\"}}";
        Assert.Contains(Series("last_status", done) + " 1", metrics, StringComparison.Ordinal);
        Assert.Contains(Series("last_status", stalled) + " 0", metrics, StringComparison.Ordinal);
        Assert.Contains(Series("failures_total", stalled) + " 1", metrics, StringComparison.Ordinal);
        Assert.Contains("vya_backupdb_run_databases{result=\"ok\"} 1", metrics, StringComparison.Ordinal);
        Assert.Contains("vya_backupdb_run_databases{result=\"failed\"} 1", metrics, StringComparison.Ordinal);
        Assert.Contains("vya_backupdb_run_exit_code 130", metrics, StringComparison.Ordinal);
    }

    [SkippableFact]
    public async Task Sigterm_during_a_backup_that_ends_within_the_grace_keeps_it_and_exits_0_and_overlapping_runs_were_skipped()
    {
        await TestServers.RequirePostgresAsync();
        var database = await SmallDatabaseAsync();
        var backups = _scratch.TempDir("backups");
        var config = Path.Combine(_scratch.TempDir("cfg"), "config.yaml");
        // Due every second, each run takes 4 s: the due times in between are skipped.
        await WriteConfigAsync(config, backups, database, "* * * * * *", SlowDumpTools.Create(_scratch.TempDir("slow-tools"), 4), graceSeconds: 60);
        using var service = new Service(config);
        await service.WaitForAsync("skipped the run of instance 2 (it-pg) due at");
        Assert.Equal(1, service.Count("run of instance 2 (it-pg) started"));

        service.Signal(Sigterm);
        var exit = await service.ExitAsync();

        Assert.True(exit == 0, $"exit {exit}:\n{service.Output}");
        Assert.Contains("its previous run, started at", service.Output, StringComparison.Ordinal);
        Assert.Contains("schedule: stopped", service.Output, StringComparison.Ordinal);
        Assert.Equal(service.Count("run of instance 2 (it-pg) started"), Ops.DataFilesUnder(backups).Count);
        Assert.Equal(1, service.Count("run of instance 2 (it-pg) started"));
    }

    /// <summary>
    /// --log-file on a full disk (/dev/full: every write fails with ENOSPC): one warning, the log file
    /// is dropped, and the service goes on taking its backups.
    /// </summary>
    [SkippableFact]
    public async Task A_log_file_on_a_full_disk_is_dropped_with_one_warning_and_the_schedule_goes_on()
    {
        await TestServers.RequirePostgresAsync();
        var database = await SmallDatabaseAsync();
        var backups = _scratch.TempDir("backups");
        var config = Path.Combine(_scratch.TempDir("cfg"), "config.yaml");
        await WriteConfigAsync(config, backups, database, "*/2 * * * * *", toolsDir: null, graceSeconds: 60);
        using var service = new Service(config, "--log-file", "/dev/full");

        await service.WaitForAsync("ok     it-pg/", 2);
        service.Signal(Sigterm);

        Assert.True(await service.ExitAsync() == 0, service.Output);
        // A run longer than the 2 s between due times (a busy machine) skips the next one, with its own warning.
        var warnings = service.Output.Split('\n')
            .Where(l => l.Contains("warning:", StringComparison.Ordinal) && !l.Contains("warning: skipped the run of", StringComparison.Ordinal)).ToList();
        Assert.True(warnings.Count == 1, service.Output);
        Assert.Contains("--log-file: No space left on device (/dev/full); no longer writing to it", warnings[0], StringComparison.Ordinal);
        Assert.DoesNotContain("Exception", service.Output, StringComparison.Ordinal);
        Assert.Equal(service.Count("ok     it-pg/"), Ops.DataFilesUnder(backups).Count);
    }

    [SkippableFact]
    public async Task Sighup_reloads_a_changed_schedule_and_refuses_a_broken_config_keeping_the_old_one()
    {
        await TestServers.RequirePostgresAsync();
        var database = await SmallDatabaseAsync();
        var backups = _scratch.TempDir("backups");
        var config = Path.Combine(_scratch.TempDir("cfg"), "config.yaml");
        await WriteConfigAsync(config, backups, database, "0 0 1 1 *", toolsDir: null, graceSeconds: 60);
        using var service = new Service(config);
        await service.WaitForAsync("next run of instance 2 (it-pg)");
        Assert.Empty(Ops.DataFilesUnder(backups));

        await WriteConfigAsync(config, backups, database, "*/2 * * * * *", toolsDir: null, graceSeconds: 60);
        service.Signal(Sighup);
        await service.WaitForAsync("schedule: reloaded");
        await service.WaitForAsync("ok     it-pg/");

        await File.WriteAllTextAsync(config, "backup_dir: [not, a, path\n");
        service.Signal(Sighup);
        await service.WaitForAsync("refused, the previous config stays in force");
        // Still running on the reloaded schedule.
        var done = service.Count("ok     it-pg/");
        await service.WaitForAsync("ok     it-pg/", done + 1);

        service.Signal(Sigterm);
        Assert.Equal(0, await service.ExitAsync());
        Assert.Equal(service.Count("ok     it-pg/"), Ops.DataFilesUnder(backups).Count);
    }

    [SkippableFact]
    public async Task Metrics_are_served_on_loopback_and_written_to_the_file_after_each_run()
    {
        await TestServers.RequirePostgresAsync();
        var database = await SmallDatabaseAsync();
        var backups = _scratch.TempDir("backups");
        var config = Path.Combine(_scratch.TempDir("cfg"), "config.yaml");
        var metricsFile = Path.Combine(_scratch.TempDir("metrics"), "vya.prom");
        await WriteConfigAsync(config, backups, database, "*/2 * * * * *", toolsDir: null, graceSeconds: 60);
        var free = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        free.Start();
        var port = ((System.Net.IPEndPoint)free.LocalEndpoint).Port;
        free.Stop();
        using var service = new Service(config, "--metrics-listen", port.ToString(CultureInfo.InvariantCulture), "--metrics-file", metricsFile);
        await service.WaitForAsync("run of instance 2 (it-pg): 1 backed up");
        // A run starts only when the previous one is over, its metrics included.
        await service.WaitForAsync("run of instance 2 (it-pg) started", 2);

        using var http = new HttpClient();
        var served = await http.GetStringAsync(new Uri($"http://127.0.0.1:{port}/metrics"));
        var series = $"vya_backupdb_last_status{{instance_id=\"2\",instance_name=\"it-pg\",database=\"{database}\"}} 1";
        Assert.Contains(series, served, StringComparison.Ordinal);
        Assert.Contains(series, await File.ReadAllTextAsync(metricsFile), StringComparison.Ordinal);

        service.Signal(Sigterm);
        Assert.Equal(0, await service.ExitAsync());
    }

    /// <summary>
    /// The run's message is sent once its backups are done; a stop that comes while a notifier is still
    /// sending (past the grace period) gives the message up with a warning: the run is not "interrupted",
    /// its metrics are written, and the service exits 0 (no backup had to be cancelled).
    /// </summary>
    [SkippableFact]
    public async Task Sigterm_while_a_notifier_sends_gives_up_the_message_and_is_no_interrupted_run()
    {
        await TestServers.RequirePostgresAsync();
        var database = await SmallDatabaseAsync();
        var backups = _scratch.TempDir("backups");
        var config = Path.Combine(_scratch.TempDir("cfg"), "config.yaml");
        var metricsFile = Path.Combine(_scratch.TempDir("metrics"), "vya.prom");
        using var hook = new WebhookSink("sched") { AnswerAfter = TimeSpan.FromMinutes(5) };
        await WriteConfigAsync(config, backups, database, "*/2 * * * * *", toolsDir: null, graceSeconds: 3, more: $$"""
            notify:
              - {type: webhook, name: hanging, url: '{{hook.Url}}', on: always, retries: 0, timeout_seconds: 300}
            """);
        using var service = new Service(config, "--metrics-file", metricsFile);
        await service.WaitForAsync("run of instance 2 (it-pg): 1 backed up");
        var clock = Stopwatch.StartNew();
        while (hook.Requests.Count == 0)
        {
            Assert.True(clock.Elapsed < TimeSpan.FromMinutes(1), $"no message came:\n{service.Output}");
            await Task.Delay(50);
        }

        service.Signal(Sigterm);
        var exit = await service.ExitAsync();

        Assert.True(exit == 0, $"exit {exit}:\n{service.Output}");
        Assert.DoesNotContain("interrupted", service.Output, StringComparison.Ordinal);
        Assert.DoesNotContain("cancelled", service.Output, StringComparison.Ordinal);
        Assert.Contains("notifier 'hanging' (webhook) could not send the run's message", service.Output, StringComparison.Ordinal);
        Assert.Single(hook.Requests);
        Assert.Single(Ops.DataFilesUnder(backups));
        var series = $"vya_backupdb_last_status{{instance_id=\"2\",instance_name=\"it-pg\",database=\"{database}\"}} 1";
        Assert.Contains(series, await File.ReadAllTextAsync(metricsFile), StringComparison.Ordinal);
    }

    /// <summary>
    /// Found by a tester (tr107): schedule wrote its metrics file from what it held in memory, and dropped what a `backup`
    /// sharing the file had written there (a failed backup's last_status 0 and failures_total). It reads the file, under its lock.
    /// </summary>
    [Fact]
    public async Task Schedule_keeps_what_a_backup_sharing_its_metrics_file_wrote_there()
    {
        var dir = _scratch.TempDir("sched-shared");
        var source = Path.Combine(dir, "src");
        Directory.CreateDirectory(source);
        await File.WriteAllTextAsync(Path.Combine(source, "f"), "x\n");
        // Instance 1, backed up by hand, fails: its include matches nothing.
        var config = Path.Combine(dir, "config.yaml");
        await File.WriteAllTextAsync(config, $$"""
            backup_dir: backups
            instances:
              - {id: 1, name: failing, dbms: files, include: ["nothing/**"], paths: ['{{source}}']}
              - {id: 2, name: other, dbms: files, schedule: "* * * * * *", paths: ['{{source}}']}
            """);
        var metricsFile = Path.Combine(_scratch.TempDir("metrics"), "vya.prom");
        using var service = new Service(config, "--metrics-file", metricsFile);
        // A run starts only when the previous one is over, its metrics included.
        await service.WaitForAsync("run of instance 2 (other) started", 2);

        var backup = await Run.CliAsync("backup", "--instance", "1", "--config", config, "--metrics-file", metricsFile);
        Assert.True(backup.ExitCode == 1, backup.ToString());
        await service.WaitForAsync("run of instance 2 (other) started", service.Count("run of instance 2 (other) started") + 2);

        var metrics = await File.ReadAllTextAsync(metricsFile);
        Assert.Contains("vya_backupdb_last_status{instance_id=\"1\",instance_name=\"failing\",database=\"failing\"} 0", metrics, StringComparison.Ordinal);
        Assert.Contains("vya_backupdb_failures_total{instance_id=\"1\",instance_name=\"failing\",database=\"failing\"} 1", metrics, StringComparison.Ordinal);
        Assert.Contains("vya_backupdb_last_status{instance_id=\"2\",instance_name=\"other\",database=\"other\"} 1", metrics, StringComparison.Ordinal);
        service.Signal(Sigterm);
        Assert.Equal(0, await service.ExitAsync());
    }

    /// <summary>schedule_prune that cannot delete a backup: the run's message (on: failure) and its metrics say the run failed, and why.</summary>
    [SkippableFact]
    public async Task A_scheduled_prune_that_fails_is_in_the_runs_message_and_metrics()
    {
        await TestServers.RequirePostgresAsync();
        var database = await SmallDatabaseAsync();
        var backups = _scratch.TempDir("backups");
        var config = Path.Combine(_scratch.TempDir("cfg"), "config.yaml");
        var metricsFile = Path.Combine(_scratch.TempDir("metrics"), "vya.prom");
        using var hook = new WebhookSink("sched");
        await WriteConfigAsync(config, backups, database, "*/2 * * * * *", toolsDir: null, graceSeconds: 60, more: $$"""
            notify:
              - {type: webhook, name: on-failure, url: '{{hook.Url}}', retries: 0}
            """, moreOfInstance: "    schedule_prune: true\n    retention: {keep_last: 1}");
        var first = await Run.CliAsync("backup", "--instance", "2", "--config", config);
        Assert.True(first.ExitCode == 0, first.ToString());
        var manifest = Assert.Single(Directory.GetFiles(backups, "*.manifest.json", SearchOption.AllDirectories));
        Skip.If(!await NotifyTests.ChattrAsync("+i", manifest), "chattr +i is not available here");
        try
        {
            using var service = new Service(config, "--metrics-file", metricsFile);
            await service.WaitForAsync("pruning after the run of instance 2 (it-pg) failed");
            var clock = Stopwatch.StartNew();
            while (hook.Requests.Count == 0)
            {
                Assert.True(clock.Elapsed < TimeSpan.FromMinutes(1), $"no message came:\n{service.Output}");
                await Task.Delay(50);
            }
            service.Signal(Sigterm);
            Assert.Equal(0, await service.ExitAsync());

            using var json = System.Text.Json.JsonDocument.Parse(hook.Requests[0].Body);
            var root = json.RootElement;
            Assert.Equal("failed", root.GetProperty("status").GetString());
            Assert.Equal(1, root.GetProperty("exit_code").GetInt32());
            Assert.Contains("pruning failed", root.GetProperty("text").GetString(), StringComparison.Ordinal);
            var prom = PromText.Parse(await File.ReadAllTextAsync(metricsFile));
            Assert.Equal(1, prom.Value("vya_backupdb_run_exit_code", ""));
        }
        finally
        {
            await NotifyTests.ChattrAsync("-i", manifest);
        }
    }

    /// <summary>
    /// /metrics answers whatever name the scraper puts in its Host header (localhost for 127.0.0.1
    /// and the other way round), and an IPv6 literal ([::1]:PORT) listens there.
    /// </summary>
    [SkippableFact]
    public async Task Metrics_are_served_whatever_the_Host_header_and_on_an_IPv6_literal()
    {
        await TestServers.RequirePostgresAsync();
        var database = await SmallDatabaseAsync();
        var backups = _scratch.TempDir("backups");
        var config = Path.Combine(_scratch.TempDir("cfg"), "config.yaml");
        await WriteConfigAsync(config, backups, database, "0 0 1 1 *", toolsDir: null, graceSeconds: 60);
        var backup = await Run.CliAsync("backup", "--instance", "2", "--config", config);
        Assert.True(backup.ExitCode == 0, backup.ToString());
        var series = $"vya_backupdb_backups{{instance_id=\"2\",instance_name=\"it-pg\",database=\"{database}\"}} 1";
        using var http = new HttpClient();

        async Task<string> ScrapeAsync(string listen, string url, string? host)
        {
            using var service = new Service(config, "--metrics-listen", listen);
            await service.WaitForAsync("next run of instance 2 (it-pg)");
            using var request = new HttpRequestMessage(HttpMethod.Get, url);
            if (host is not null)
            {
                request.Headers.Host = host;
            }
            using var response = await http.SendAsync(request);
            var body = await response.Content.ReadAsStringAsync();
            Assert.True(response.IsSuccessStatusCode, $"{url} (Host: {host}) with --metrics-listen {listen}: {(int)response.StatusCode}\n{service.Output}");
            Assert.Equal("text/plain; version=0.0.4; charset=utf-8", response.Content.Headers.ContentType?.ToString());
            service.Signal(Sigterm);
            Assert.Equal(0, await service.ExitAsync());
            return body;
        }

        var port = WebhookSink.FreePort().ToString(CultureInfo.InvariantCulture);
        Assert.Contains(series, await ScrapeAsync(port, $"http://127.0.0.1:{port}/metrics", $"localhost:{port}"), StringComparison.Ordinal);
        port = WebhookSink.FreePort().ToString(CultureInfo.InvariantCulture);
        Assert.Contains(series, await ScrapeAsync($"localhost:{port}", $"http://127.0.0.1:{port}/metrics", null), StringComparison.Ordinal);
        if (HasIpv6Loopback())
        {
            port = WebhookSink.FreePort().ToString(CultureInfo.InvariantCulture);
            Assert.Contains(series, await ScrapeAsync($"[::1]:{port}", $"http://[::1]:{port}/metrics", null), StringComparison.Ordinal);
        }
    }

    /// <summary>Whether this host has ::1 (a machine with IPv6 off has none to listen on).</summary>
    private static bool HasIpv6Loopback()
    {
        try
        {
            var probe = new System.Net.Sockets.TcpListener(System.Net.IPAddress.IPv6Loopback, 0);
            probe.Start();
            probe.Stop();
            return true;
        }
        catch (System.Net.Sockets.SocketException)
        {
            return false;
        }
    }
}
