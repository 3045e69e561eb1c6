using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using VyaBackupDb.Config.Vault;

namespace VyaBackupDb.Tests.Integration;

/// <summary>
/// Notifiers as an operator meets them: the real CLI backs up real databases and tells a local
/// webhook and a local SMTP server about the run, once per run; a notifier that fails is a warning
/// and never changes the exit code; no secret reaches a message.
/// </summary>
[Trait("Category", "Integration")]
public sealed class NotifyTests : IAsyncLifetime
{
    private const string HookToken = "Bearer hook-t0ken-from-the-vault";
    private const string UrlToken = "T0kenInTheUrlPath";
    private const string SmtpPassword = "smtp-pa55word-from-the-vault";

    private readonly Scratch _scratch = new();

    public Task InitializeAsync() => _scratch.InitializeAsync();

    public Task DisposeAsync() => _scratch.DisposeAsync();

    /// <summary>A config with the MariaDB test server as instance 1 (only <paramref name="database"/>), an extra instance and notify: section; a vault beside it.</summary>
    private async Task<string> ConfigAsync(string database, string extraInstances, string notify)
    {
        var dir = _scratch.TempDir("notify-cfg");
        var vault = new CredentialVault(Path.Combine(dir, "vault.enc"), Path.Combine(dir, "vault.key")) { Kdf = new ScryptParameters(4, 1, 1) };
        await File.WriteAllTextAsync(Path.Combine(dir, "vault.key"), "vault passphrase for tests\n");
        vault.Update(entries =>
        {
            entries["hook"] = new VaultEntry(null, HookToken);
            entries["smtp"] = new VaultEntry("mailer", SmtpPassword);
        });
        var config = Path.Combine(dir, "config.yaml");
        await File.WriteAllTextAsync(config, string.Create(CultureInfo.InvariantCulture, $"""
            backup_dir: {Path.Combine(_scratch.TempDir("notify-store"), "store")}
            timeout_seconds: 120
            vault_key_file: vault.key
            instances:
              - id: 1
                name: it-mysql
                dbms: mysql
                host: {TestServers.MySqlHost}
                port: {TestServers.MySqlPort}
                user: {TestServers.MySqlUser}
                password_env: IT_MYSQL_PASSWORD
                include: ['{database}']
                globals: false
            {extraInstances}
            notify:
            {notify}
            """));
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(config, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        }
        return config;
    }

    private static Dictionary<string, string> Env(params (string Name, string Value)[] extra)
    {
        var env = new Dictionary<string, string> { ["IT_MYSQL_PASSWORD"] = TestServers.MySqlPassword };
        foreach (var (name, value) in extra)
        {
            env[name] = value;
        }
        return env;
    }

    private static void AssertNoSecret(string text, string where)
    {
        foreach (var secret in new[] { HookToken, "hook-t0ken", UrlToken, SmtpPassword, TestServers.MySqlPassword })
        {
            Assert.False(text.Contains(secret, StringComparison.Ordinal), $"{where} holds a secret ({secret}):\n{text}");
        }
    }

    [SkippableFact]
    public async Task Webhook_gets_one_json_body_per_run_retried_after_a_500_and_a_dead_notifier_is_only_a_warning()
    {
        await TestServers.RequireMySqlAsync();
        var database = await _scratch.NewMySqlDatabaseAsync();
        await MySqlTestDb.ExecAsync(database, "CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(20))", "INSERT INTO t VALUES (1, 'one'), (2, 'two')");
        using var hook = new WebhookSink(UrlToken, 500);
        var deadPort = WebhookSink.FreePort();
        var config = await ConfigAsync(database, string.Create(CultureInfo.InvariantCulture, $"""
              - id: 2
                name: it-dead-pg
                dbms: postgresql
                host: 127.0.0.1
                port: {WebhookSink.FreePort()}
                user: nobody
            """), string.Create(CultureInfo.InvariantCulture, $"""
              - type: webhook
                url_env: IT_HOOK_URL
                on: always
                retries: 2
                timeout_seconds: 5
                headers:
                  - name: Authorization
                    value: vault:hook
              - type: webhook
                name: dead-hook
                url: http://127.0.0.1:{deadPort}/nobody-listens
                retries: 0
                timeout_seconds: 2
            """));

        var run = await Run.CliWithEnvAsync(Env(("IT_HOOK_URL", hook.Url)), "backup", "--all", "--config", config);

        // One database backed up, one instance down: the backup's own exit code, whatever the notifiers did.
        Assert.True(run.ExitCode == 3, run.ToString());
        Assert.Equal(2, hook.Requests.Count);
        Assert.Equal(hook.Requests[0].Body, hook.Requests[1].Body);
        // The retry waited (backoff: 1 s before the first retry).
        Assert.True(hook.Requests[1].At - hook.Requests[0].At >= TimeSpan.FromSeconds(0.9), $"{hook.Requests[1].At - hook.Requests[0].At}");
        var request = hook.Requests[1];
        Assert.Equal("POST", request.Method);
        Assert.Equal($"/hooks/{UrlToken}", request.Path);
        Assert.StartsWith("application/json", request.ContentType, StringComparison.Ordinal);
        Assert.Equal(HookToken, request.Headers["Authorization"]);

        using var json = JsonDocument.Parse(request.Body);
        var root = json.RootElement;
        Assert.Equal("partial_failure", root.GetProperty("status").GetString());
        Assert.Equal(3, root.GetProperty("exit_code").GetInt32());
        Assert.Equal(Environment.MachineName, root.GetProperty("host").GetString());
        Assert.Equal(1, root.GetProperty("succeeded").GetInt32());
        Assert.Equal(1, root.GetProperty("failed").GetInt32());
        Assert.Contains("1 failed", root.GetProperty("text").GetString(), StringComparison.Ordinal);
        var results = root.GetProperty("results").EnumerateArray().ToList();
        Assert.Equal(2, results.Count);
        string[] fields = ["instance_id", "instance", "dbms", "database", "status", "error", "bytes", "plain_bytes", "duration_seconds", "file"];
        Assert.All(results, r => Assert.Equal(fields, r.EnumerateObject().Select(p => p.Name)));
        var ok = results.Single(r => r.GetProperty("instance").GetString() == "it-mysql");
        Assert.Equal(database, ok.GetProperty("database").GetString());
        Assert.Equal("ok", ok.GetProperty("status").GetString());
        Assert.Equal(JsonValueKind.Null, ok.GetProperty("error").ValueKind);
        Assert.True(ok.GetProperty("bytes").GetInt64() > 0);
        Assert.True(File.Exists(ok.GetProperty("file").GetString()), "the file the message names is the backup");
        Assert.Equal(new FileInfo(ok.GetProperty("file").GetString()!).Length, ok.GetProperty("bytes").GetInt64());
        var failed = results.Single(r => r.GetProperty("instance").GetString() == "it-dead-pg");
        Assert.Equal("failed", failed.GetProperty("status").GetString());
        Assert.Contains("cannot connect", failed.GetProperty("error").GetString(), StringComparison.Ordinal);
        Assert.Equal(JsonValueKind.Null, failed.GetProperty("file").ValueKind);

        // The dead notifier: one warning that names it; the retried one: none.
        var warnings = run.Stderr.Split('\n').Where(l => l.Contains("notifier", StringComparison.Ordinal)).ToList();
        var warning = Assert.Single(warnings);
        Assert.StartsWith("vya-backupdb: warning: notifier 'dead-hook' (webhook)", warning, StringComparison.Ordinal);
        Assert.DoesNotContain("nobody-listens", warning, StringComparison.Ordinal);
        AssertNoSecret(Encoding.UTF8.GetString(request.Body), "the webhook's body");
        AssertNoSecret(run.Stdout + run.Stderr, "the CLI's output");
    }

    /// <summary>
    /// A header value with a line break (a token file edited on Windows, a planted environment
    /// variable) would end the header and start another: nothing is sent, and the warning says why.
    /// </summary>
    [SkippableFact]
    public async Task A_webhook_header_value_with_a_line_break_is_not_sent()
    {
        await TestServers.RequireMySqlAsync();
        var database = await _scratch.NewMySqlDatabaseAsync();
        await MySqlTestDb.ExecAsync(database, "CREATE TABLE t (id INT PRIMARY KEY)", "INSERT INTO t VALUES (1)");
        using var hook = new WebhookSink(UrlToken);
        var config = await ConfigAsync(database, "", """
              - type: webhook
                name: injected
                url_env: IT_HOOK_URL
                on: always
                retries: 0
                headers:
                  - name: Authorization
                    value_env: IT_HOOK_HEADER
            """);

        var run = await Run.CliWithEnvAsync(Env(("IT_HOOK_URL", hook.Url), ("IT_HOOK_HEADER", "Bearer x\r\nX-Injected: yes")),
            "backup", "--all", "--config", config);

        Assert.True(run.ExitCode == 0, run.ToString());
        Assert.Empty(hook.Requests);
        var warning = Assert.Single(run.Stderr.Split('\n'), l => l.Contains("notifier 'injected'", StringComparison.Ordinal));
        Assert.Contains("the value of header Authorization holds a line break", warning, StringComparison.Ordinal);
        Assert.DoesNotContain("Bearer", run.Stdout + run.Stderr, StringComparison.Ordinal);
    }

    [SkippableFact]
    public async Task A_run_stopped_by_SIGTERM_sends_one_interrupted_message_and_exits_130()
    {
        await TestServers.RequireMySqlAsync();
        var database = await _scratch.NewMySqlDatabaseAsync();
        await MySqlTestDb.ExecAsync(database, "CREATE TABLE t (id INT PRIMARY KEY)", "INSERT INTO t VALUES (1)");
        using var hook = new WebhookSink(UrlToken);
        // mariadb-dump that stalls before its end: the backup is under way when the stop comes.
        var tools = StallingTools.Create(_scratch.TempDir("stalling"), postgres: false);
        var config = await ConfigAsync(database, $"    tools_dir: '{tools}'", """
              - type: webhook
                url_env: IT_HOOK_URL
                timeout_seconds: 5
            """);
        var (file, arguments, env) = Run.CliCommand(Env(("IT_HOOK_URL", hook.Url)), "backup", "--instance", "1", "--config", config);
        var start = new ProcessStartInfo(file, arguments) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var (name, value) in env)
        {
            start.Environment[name] = value;
        }
        using var process = Process.Start(start)!;
        var output = new StringBuilder();
        var pumps = new[] { process.StandardOutput, process.StandardError }.Select(reader => Task.Run(async () =>
        {
            while (await reader.ReadLineAsync() is { } line)
            {
                lock (output)
                {
                    output.AppendLine(line);
                }
            }
        })).ToList();
        string Text()
        {
            lock (output)
            {
                return output.ToString();
            }
        }
        var clock = Stopwatch.StartNew();
        while (!Text().Contains("backing up", StringComparison.Ordinal))
        {
            Assert.True(!process.HasExited && clock.Elapsed < TimeSpan.FromMinutes(1), $"the backup never started:\n{Text()}");
            await Task.Delay(50);
        }
        await Task.Delay(500);

        using (var kill = Process.Start("kill", ["-TERM", process.Id.ToString(CultureInfo.InvariantCulture)]))
        {
            await kill.WaitForExitAsync();
        }
        using var limit = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await process.WaitForExitAsync(limit.Token);
        await Task.WhenAll(pumps);

        Assert.True(process.ExitCode == 130, $"exit {process.ExitCode}:\n{Text()}");
        var request = Assert.Single(hook.Requests);
        using var json = JsonDocument.Parse(request.Body);
        var root = json.RootElement;
        Assert.Equal("interrupted", root.GetProperty("status").GetString());
        Assert.Equal(130, root.GetProperty("exit_code").GetInt32());
        Assert.Contains("interrupted", root.GetProperty("text").GetString(), StringComparison.Ordinal);
        var item = Assert.Single(root.GetProperty("results").EnumerateArray());
        Assert.Equal(database, item.GetProperty("database").GetString());
        Assert.Equal("interrupted", item.GetProperty("status").GetString());
        AssertNoSecret(Encoding.UTF8.GetString(request.Body), "the message");
    }

    /// <summary>
    /// backup --prune: the message and the metrics come once the prune is done, and carry its outcome.
    /// A prune that removed a backup leaves the backups gauge at what is left; one that could not
    /// delete a backup makes the run a failure (exit 1) that an on: failure notifier hears of, saying what failed.
    /// </summary>
    [SkippableFact]
    public async Task A_prune_that_fails_after_the_backup_is_the_runs_failure_in_the_message_and_the_metrics()
    {
        await TestServers.RequireMySqlAsync();
        var database = await _scratch.NewMySqlDatabaseAsync();
        await MySqlTestDb.ExecAsync(database, "CREATE TABLE t (id INT PRIMARY KEY)", "INSERT INTO t VALUES (1)");
        using var hook = new WebhookSink(UrlToken);
        var config = await ConfigAsync(database, "    retention: {keep_last: 1}", """
              - type: webhook
                name: on-failure
                url_env: IT_HOOK_URL
                retries: 0
            """);
        var env = Env(("IT_HOOK_URL", hook.Url));
        var metrics = Path.Combine(_scratch.TempDir("notify-metrics"), "vya.prom");
        var labels = $"{{database=\"{database}\",instance_id=\"1\",instance_name=\"it-mysql\"}}";
        Assert.True((await Run.CliWithEnvAsync(env, "backup", "--all", "--config", config)).ExitCode == 0);

        var pruned = await Run.CliWithEnvAsync(env, "backup", "--all", "--prune", "--metrics-file", metrics, "--config", config);

        Assert.True(pruned.ExitCode == 0, pruned.ToString());
        Assert.Empty(hook.Requests);
        var afterPrune = PromText.Parse(await File.ReadAllTextAsync(metrics));
        Assert.Equal(1, afterPrune.Value("vya_backupdb_backups", labels));
        Assert.Equal(0, afterPrune.Value("vya_backupdb_run_exit_code", ""));

        // The backup kept by that prune cannot be deleted by the next one.
        var store = File.ReadAllText(config).Split('\n').Single(l => l.StartsWith("backup_dir: ", StringComparison.Ordinal))["backup_dir: ".Length..].Trim();
        var manifest = Assert.Single(Directory.GetFiles(store, "*.manifest.json", SearchOption.AllDirectories));
        Skip.If(!await ChattrAsync("+i", manifest), "chattr +i is not available here");
        try
        {
            var failed = await Run.CliWithEnvAsync(env, "backup", "--all", "--prune", "--metrics-file", metrics, "--config", config);

            Assert.True(failed.ExitCode == 1, failed.ToString());
            Assert.Contains("pruning failed", failed.Stderr, StringComparison.Ordinal);
            Assert.DoesNotContain(".;", failed.Stderr, StringComparison.Ordinal);
            var request = Assert.Single(hook.Requests);
            using var json = JsonDocument.Parse(request.Body);
            var root = json.RootElement;
            Assert.Equal("failed", root.GetProperty("status").GetString());
            Assert.Equal(1, root.GetProperty("exit_code").GetInt32());
            var text = root.GetProperty("text").GetString()!;
            Assert.Contains("1 backed up, 0 failed", text, StringComparison.Ordinal);
            Assert.Contains("pruning failed", text, StringComparison.Ordinal);
            Assert.Contains("cannot delete", text, StringComparison.Ordinal);
            Assert.Equal("ok", Assert.Single(root.GetProperty("results").EnumerateArray()).GetProperty("status").GetString());
            var afterFailure = PromText.Parse(await File.ReadAllTextAsync(metrics));
            Assert.Equal(1, afterFailure.Value("vya_backupdb_run_exit_code", ""));
            Assert.Equal(2, afterFailure.Value("vya_backupdb_backups", labels));
        }
        finally
        {
            await ChattrAsync("-i", manifest);
        }
    }

    /// <summary>Sets or clears a file attribute (root, on a file system that has them); false when it cannot.</summary>
    internal static async Task<bool> ChattrAsync(string change, string path)
    {
        try
        {
            return (await Run.ProgramAsync("chattr", [change, path])).ExitCode == 0;
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return false;
        }
    }

    /// <summary>
    /// SIGTERM while a notifier is still sending, after the backups are done: the message is given up
    /// (a warning naming the notifier), the run keeps its outcome: its summary, its metrics file, exit 0.
    /// </summary>
    [SkippableFact]
    public async Task SIGTERM_while_a_notifier_sends_gives_up_the_message_but_keeps_the_runs_outcome_and_metrics()
    {
        await TestServers.RequireMySqlAsync();
        var database = await _scratch.NewMySqlDatabaseAsync();
        await MySqlTestDb.ExecAsync(database, "CREATE TABLE t (id INT PRIMARY KEY)", "INSERT INTO t VALUES (1)");
        using var hook = new WebhookSink(UrlToken) { AnswerAfter = TimeSpan.FromMinutes(2) };
        var config = await ConfigAsync(database, "", """
              - type: webhook
                name: hanging
                url_env: IT_HOOK_URL
                on: always
                retries: 0
                timeout_seconds: 60
            """);
        var metrics = Path.Combine(_scratch.TempDir("notify-metrics"), "vya.prom");
        var (file, arguments, env) = Run.CliCommand(Env(("IT_HOOK_URL", hook.Url)), "backup", "--instance", "1", "--metrics-file", metrics, "--config", config);
        var start = new ProcessStartInfo(file, arguments) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var (name, value) in env)
        {
            start.Environment[name] = value;
        }
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        var clock = Stopwatch.StartNew();
        while (hook.Requests.Count == 0)
        {
            Assert.True(!process.HasExited && clock.Elapsed < TimeSpan.FromMinutes(1), "no message came");
            await Task.Delay(50);
        }
        await Task.Delay(500);

        using (var kill = Process.Start("kill", ["-TERM", process.Id.ToString(CultureInfo.InvariantCulture)])!)
        {
            await kill.WaitForExitAsync();
            Assert.Equal(0, kill.ExitCode);
        }
        using var limit = new CancellationTokenSource(TimeSpan.FromSeconds(90));
        await process.WaitForExitAsync(limit.Token);
        var output = $"--- stdout:\n{await stdout}\n--- stderr:\n{await stderr}";

        Assert.True(process.ExitCode == 0, $"exit {process.ExitCode}:\n{output}");
        Assert.DoesNotContain("interrupted", output, StringComparison.Ordinal);
        Assert.Contains($"ok     it-mysql/{database}", output, StringComparison.Ordinal);
        Assert.Contains("backup summary: 1 succeeded, 0 failed", await stdout, StringComparison.Ordinal);
        var warning = Assert.Single((await stderr).Split('\n'), l => l.Contains("notifier 'hanging'", StringComparison.Ordinal));
        Assert.True(warning.Contains("stopped", StringComparison.Ordinal), output);
        var prom = PromText.Parse(await File.ReadAllTextAsync(metrics));
        Assert.Equal(0, prom.Value("vya_backupdb_run_exit_code", ""));
        Assert.Single(hook.Requests);
    }

    /// <summary>
    /// A webhook that cannot be reached: the warning says why in our words, with no part of its URL
    /// (host, port, path, query) and no library's "see inner exception".
    /// </summary>
    [SkippableFact]
    public async Task A_webhook_that_cannot_be_reached_is_a_warning_without_any_part_of_its_url()
    {
        await TestServers.RequireMySqlAsync();
        var database = await _scratch.NewMySqlDatabaseAsync();
        await MySqlTestDb.ExecAsync(database, "CREATE TABLE t (id INT PRIMARY KEY)", "INSERT INTO t VALUES (1)");
        // A plain-HTTP receiver asked for TLS, a host name that does not resolve, a port nobody listens on.
        using var plain = new WebhookSink(UrlToken);
        var plainPort = new Uri(plain.Url).Port.ToString(CultureInfo.InvariantCulture);
        var deadPort = WebhookSink.FreePort().ToString(CultureInfo.InvariantCulture);
        var config = await ConfigAsync(database, "", string.Create(CultureInfo.InvariantCulture, $"""
              - type: webhook
                name: tls
                url: 'https://127.0.0.1:{plainPort}/hooks/{UrlToken}?key=q5ecret'
                on: always
                retries: 0
              - type: webhook
                name: unresolved
                url: 'http://team-acme-9f8e7d.invalid/hooks/{UrlToken}'
                on: always
                retries: 0
              - type: webhook
                name: refused
                url: 'http://127.0.0.1:{deadPort}/hooks/{UrlToken}'
                on: always
                retries: 0
            """));

        var run = await Run.CliWithEnvAsync(Env(), "backup", "--instance", "1", "--config", config);

        Assert.True(run.ExitCode == 0, run.ToString());
        var warnings = run.Stderr.Split('\n').Where(l => l.Contains("could not send", StringComparison.Ordinal)).ToList();
        Assert.Equal(3, warnings.Count);
        foreach (var warning in warnings)
        {
            foreach (var part in new[] { "team-acme", "9f8e7d", ".invalid", "127.0.0.1", plainPort, deadPort, "hooks", UrlToken, "q5ecret", "inner exception" })
            {
                Assert.False(warning.Contains(part, StringComparison.OrdinalIgnoreCase), $"'{part}' in: {warning}");
            }
        }
        Assert.Contains(warnings, w => w.Contains("notifier 'unresolved'", StringComparison.Ordinal) && w.Contains("host name", StringComparison.Ordinal));
        Assert.Contains(warnings, w => w.Contains("notifier 'refused'", StringComparison.Ordinal) && w.Contains("refused", StringComparison.Ordinal));
        Assert.Contains(warnings, w => w.Contains("notifier 'tls'", StringComparison.Ordinal) && w.Contains("TLS", StringComparison.Ordinal));
    }

    [SkippableFact]
    public async Task Failure_mail_arrives_over_starttls_with_the_database_and_its_error_and_no_password()
    {
        await TestServers.RequireMySqlAsync();
        var database = await _scratch.NewMySqlDatabaseAsync();
        await MySqlTestDb.ExecAsync(database, "CREATE TABLE t (id INT PRIMARY KEY)", "INSERT INTO t VALUES (1)");
        using var smtp = new SmtpSink();
        using var untrusted = new SmtpSink();
        // Colons and lower case, as openssl prints it.
        var pinned = string.Join(':', smtp.Fingerprint.ToLowerInvariant().Chunk(2).Select(c => new string(c)));
        var config = await ConfigAsync(database, "", string.Create(CultureInfo.InvariantCulture, $"""
              - type: email
                name: ops-mail
                host: 127.0.0.1
                port: {smtp.Port}
                starttls: required
                tls_fingerprint: '{pinned}'
                from: backups@example.test
                to: [ops@example.test, dba@example.test]
                user: mailer
                password: vault:smtp
                timeout_seconds: 20
              - type: email
                name: untrusted
                host: 127.0.0.1
                port: {untrusted.Port}
                from: backups@example.test
                to: ops@example.test
                user: mailer
                password: vault:smtp
                timeout_seconds: 20
            """));
        var missing = _scratch.MySqlName("vt_missing_");

        var run = await Run.CliWithEnvAsync(Env(), "backup", "--instance", "1", "--database", missing, "--config", config);

        Assert.True(run.ExitCode == 1, run.ToString());
        var raw = Assert.Single(smtp.Messages);
        AssertNoSecret(raw, "the mail");
        using var mail = MimeKit.MimeMessage.Load(new MemoryStream(Encoding.UTF8.GetBytes(raw)));
        Assert.StartsWith("[vya-backupdb] ", mail.Subject, StringComparison.Ordinal);
        Assert.Contains("1 backup FAILED", mail.Subject, StringComparison.Ordinal);
        Assert.Contains($"it-mysql/{missing}", mail.Subject, StringComparison.Ordinal);
        Assert.Equal(new[] { "ops@example.test", "dba@example.test" }, mail.To.Mailboxes.Select(m => m.Address));
        Assert.Contains($"FAILED  it-mysql/{missing}: database '{missing}' does not exist", mail.TextBody, StringComparison.Ordinal);
        Assert.Contains(Environment.MachineName, mail.TextBody, StringComparison.Ordinal);
        Assert.Equal(new[] { ("mailer", SmtpPassword) }, smtp.Logins);
        Assert.True(smtp.AuthOnlyUnderTls, string.Join("\n", smtp.Commands));
        Assert.True(smtp.Commands.IndexOf("STARTTLS") < smtp.Commands.FindIndex(c => c.StartsWith("AUTH", StringComparison.Ordinal)));

        // The server whose certificate is not pinned (and not trusted by the system) gets no login and no mail.
        Assert.Empty(untrusted.Logins);
        Assert.Empty(untrusted.Messages);
        var warning = Assert.Single(run.Stderr.Split('\n'), l => l.Contains("notifier", StringComparison.Ordinal));
        Assert.StartsWith("vya-backupdb: warning: notifier 'untrusted' (email)", warning, StringComparison.Ordinal);
        Assert.Contains("not trusted", warning, StringComparison.Ordinal);
        AssertNoSecret(run.Stdout + run.Stderr, "the CLI's output");

        // on: failure (the default): a run that succeeds sends nothing.
        var success = await Run.CliWithEnvAsync(Env(), "backup", "--instance", "1", "--database", database, "--config", config);

        Assert.True(success.ExitCode == 0, success.ToString());
        Assert.Single(smtp.Messages);
        Assert.Empty(untrusted.Messages);
    }
}
