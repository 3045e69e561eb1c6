using VyaBackupDb.Config;
using VyaBackupDb.Errors;
using VyaBackupDb.Operations;
using VyaBackupDb.Reporting;

namespace VyaBackupDb.Tests.Unit;

/// <summary>The notify: section, expect_every:, and the one message a run sends.</summary>
public sealed class NotifyConfigTests
{
    private const string Path = "/etc/vya/config.yaml";

    private static AppConfig Parse(string notify, string instanceExtra = "") => ConfigLoader.Parse($"""
        backup_dir: /var/backups/vya
        instances:
          - id: 1
            dbms: mysql
            user: vya{instanceExtra}
        notify:
        {notify}
        """, Path);

    [Fact]
    public void Reads_webhooks_and_email_with_their_defaults()
    {
        var config = Parse("""
              - type: webhook
                url: https://hooks.example/backup
                headers:
                  - name: X-Token
                    value_env: HOOK_TOKEN
              - type: webhook
                name: chat
                url_file: secrets/chat-url
                on: always
                retries: 0
                timeout_seconds: 3
              - type: email
                host: smtp.example
                from: backup@example.net
                to: ops@example.net
                user: backup
                password: vault:smtp
                tls_fingerprint: "SHA256:ab:CD:ef:01:23:45:67:89:ab:cd:ef:01:23:45:67:89:ab:cd:ef:01:23:45:67:89:ab:cd:ef:01:23:45:67:89"
            """);

        Assert.Equal(3, config.Notifiers.Count);
        var hook = Assert.IsType<WebhookNotifierConfig>(config.Notifiers[0]);
        Assert.Equal(("webhook[0]", NotifyOn.Failure, TimeSpan.FromSeconds(10), 3), (hook.Name, hook.On, hook.Timeout, hook.Retries));
        Assert.Equal("X-Token", Assert.Single(hook.Headers).Name);
        var chat = Assert.IsType<WebhookNotifierConfig>(config.Notifiers[1]);
        Assert.Equal(("chat", NotifyOn.Always, TimeSpan.FromSeconds(3), 0), (chat.Name, chat.On, chat.Timeout, chat.Retries));
        var mail = Assert.IsType<EmailNotifierConfig>(config.Notifiers[2]);
        Assert.Equal(("smtp.example", 587, true, "backup"), (mail.Host, mail.Port, mail.StartTls, mail.User));
        Assert.Equal("ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789", mail.TlsFingerprint);
        Assert.Equal(new[] { "ops@example.net" }, mail.To);
    }

    [Theory]
    [InlineData("  - type: pager\n    url: http://x", "notify[0].type: 'pager' is not one of webhook, email")]
    [InlineData("  - type: webhook", "notify[0].url: is required")]
    [InlineData("  - type: webhook\n    url: ftp://x/y", "notify[0].url: is not an http:// or https:// URL")]
    [InlineData("  - type: webhook\n    url: http://x\n    on: sometimes", "notify[0].on: 'sometimes' is not one of failure, always")]
    [InlineData("  - type: webhook\n    url: http://x\n    retries: 11", "notify[0].retries: must be between 0 and 10")]
    [InlineData("  - type: webhook\n    url: http://x\n    headers:\n      - name: 'Bad Header'\n        value: v", "is not an HTTP header name")]
    [InlineData("  - type: webhook\n    url: http://x\n    headers:\n      - name: X-A\n        value: v\n        value_env: V", "give only one of value, value_env, value_file")]
    [InlineData("  - type: webhook\n    url: http://x\n    urll: http://y", "notify[0].urll: unknown key")]
    [InlineData("  - type: email\n    host: h\n    from: a@b\n    to: c@d\n    user: u\n    password: p\n    starttls: none", "must be required when a user and password are given")]
    [InlineData("  - type: email\n    host: h\n    from: a@b\n    to: c@d\n    tls_fingerprint: abc", "notify[0].tls_fingerprint: is not a SHA-256 fingerprint")]
    [InlineData("  - type: email\n    host: h\n    from: nobody\n    to: c@d", "notify[0].from: 'nobody' is not a mail address")]
    [InlineData("  - type: email\n    host: h\n    from: a@b", "notify[0].to: is required")]
    public void Refuses_a_bad_notifier_naming_its_line_and_key(string notify, string expected)
    {
        var e = Assert.Throws<ConfigException>(() => Parse(notify));

        Assert.StartsWith(Path + ":", e.Message, StringComparison.Ordinal);
        Assert.Contains(expected, e.Message, StringComparison.Ordinal);
    }

    [SkippableFact]
    public void A_world_readable_config_with_a_notifier_secret_in_it_gets_a_warning()
    {
        Skip.If(OperatingSystem.IsWindows(), "file modes are POSIX");
        var dir = Directory.CreateTempSubdirectory("vya-notify-cfg-");
        try
        {
            var file = System.IO.Path.Combine(dir.FullName, "config.yaml");
            File.WriteAllText(file, """
                backup_dir: b
                notify:
                  - type: webhook
                    name: hook
                    url_env: HOOK_URL
                    headers:
                      - name: Authorization
                        value: Bearer abc
                  - type: email
                    name: mail
                    host: h
                    from: a@b
                    to: c@d
                    user: u
                    password_env: SMTP_PW
                """);
#pragma warning disable CA1416 // skipped on Windows above
            File.SetUnixFileMode(file, (UnixFileMode)Convert.ToInt32("644", 8));
#pragma warning restore CA1416

            var warning = Assert.Single(ConfigLoader.Load(file).Warnings);

            Assert.Contains("notifier 'hook' header Authorization", warning, StringComparison.Ordinal);
            Assert.DoesNotContain("Bearer abc", warning, StringComparison.Ordinal);
            Assert.DoesNotContain("'mail'", warning, StringComparison.Ordinal);
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    [Fact]
    public void Expect_every_is_a_duration()
    {
        Assert.Equal(TimeSpan.FromHours(26), Parse("  []", "\n    expect_every: 1d2h").Instances[0].ExpectEvery);
        Assert.Null(Parse("  []").Instances[0].ExpectEvery);
        var e = Assert.Throws<ConfigException>(() => Parse("  []", "\n    expect_every: soon"));
        Assert.Contains("instances[0].expect_every: 'soon' is not a duration", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_run_message_has_every_database_and_says_whether_it_failed()
    {
        var instance = new InstanceConfig(1, "main", Dbms.MySql, "h", 3306, "u", PasswordSource.None, true, ["*"], [], null);
        var report = new BackupReport(
        [
            new BackupItemResult(instance, "app", "/b/main/x.sql.zst", null, 100, 40, TimeSpan.FromSeconds(2)),
            new BackupItemResult(instance, "crm", null, "the dump failed", 0, 0, TimeSpan.FromSeconds(1)),
        ], TimeSpan.FromSeconds(3));
        var finished = new DateTimeOffset(2026, 1, 2, 3, 4, 5, TimeSpan.Zero);

        var message = RunNotification.From(report, finished, "db-host");

        Assert.Equal(("partial_failure", 3, 1, 1, 40L), (message.Status, message.ExitCode, message.Succeeded, message.Failed, message.Bytes));
        Assert.Equal(finished.AddSeconds(-3), message.StartedUtc);
        Assert.Equal("vya-backupdb on db-host: 1 backed up, 1 failed (main/crm)", message.Text);
        Assert.True(message.Wanted(NotifyOn.Failure));
        var json = System.Text.Encoding.UTF8.GetString(message.ToJson());
        Assert.Contains("\"finished_utc\":\"2026-01-02T03:04:05+00:00\"", json, StringComparison.Ordinal);
        Assert.Contains("\"error\":\"the dump failed\"", json, StringComparison.Ordinal);
        var back = RunNotification.FromJson(message.ToJson())!;
        Assert.Equal((message.Status, message.Host, message.Text), (back.Status, back.Host, back.Text));
        Assert.Equal(message.Results, back.Results);

        var success = RunNotification.From(report with { Results = [report.Results[0]] }, finished, "db-host");
        Assert.False(success.Wanted(NotifyOn.Failure));
        Assert.True(success.Wanted(NotifyOn.Always));
    }

    /// <summary>Found by a tester: a database named with a line break put a line of its choosing into the chat's summary.</summary>
    [Fact]
    public void A_run_message_summary_stays_on_one_line()
    {
        var instance = new InstanceConfig(1, "main", Dbms.MySql, "h", 3306, "u", PasswordSource.None, true, ["*"], [], null);
        var report = new BackupReport([new BackupItemResult(instance, "ev\nALL 5 BACKED UP, 0 FAILED", null, "failed", 0, 0, TimeSpan.FromSeconds(1))],
            TimeSpan.FromSeconds(1));

        var message = RunNotification.From(report, DateTimeOffset.UnixEpoch, "db-host");

        Assert.Equal("vya-backupdb on db-host: 0 backed up, 1 failed (main/ev\\nALL 5 BACKED UP, 0 FAILED)", message.Text);
        Assert.Equal("ev\nALL 5 BACKED UP, 0 FAILED", Assert.Single(message.Results).Database);
    }
}
