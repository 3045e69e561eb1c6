using System.Globalization;
using System.Text.Json;
using VyaBackupDb.Catalog;
using VyaBackupDb.Config;
using VyaBackupDb.Pipeline;
using static VyaBackupDb.Tests.Integration.FabricatedBackups;

namespace VyaBackupDb.Tests.Integration;

/// <summary>`list`, `prune` and `backup --prune` as an operator (or cron) runs them: no terminal.</summary>
[Trait("Category", "Integration")]
public sealed class ListPruneCliTests : IAsyncLifetime
{
    private const int Success = 0;
    private const int Failed = 1;
    private const int UsageOrConfig = 2;
    private const int PartialFailure = 3;

    private readonly Scratch _scratch = new();

    private readonly InstanceConfig _mysql = TestServers.MySql(name: "it-mysql", id: 1);
    private readonly InstanceConfig _pg = TestServers.Postgres(name: "it-pg", id: 2);

    public Task InitializeAsync() => _scratch.InitializeAsync();

    public Task DisposeAsync() => _scratch.DisposeAsync();

    /// <summary>A config with instance 1 (MariaDB test server) and 2 (PostgreSQL), and the given retention: lines.</summary>
    private async Task<(string Config, string BackupDir)> ConfigAsync(string retention = "", string mySqlRetention = "", string include = "vt_*")
    {
        var dir = _scratch.TempDir("cfg");
        var backupDir = Path.Combine(dir, "backups");
        Directory.CreateDirectory(backupDir);
        var path = Path.Combine(dir, "config.yaml");
        await File.WriteAllTextAsync(path, string.Create(CultureInfo.InvariantCulture, $"""
            backup_dir: {backupDir}
            timeout_seconds: 300
            {retention}
            instances:
              - id: 1
                name: it-mysql
                dbms: mysql
                host: '{TestServers.MySqlHost}'
                port: {TestServers.MySqlPort}
                user: '{TestServers.MySqlUser}'
                password: '{TestServers.MySqlPassword}'
                include: ['{include}']
                globals: false
                {mySqlRetention}
              - id: 2
                name: it-pg
                dbms: postgresql
                host: '{TestServers.PgHost}'
                port: {TestServers.PgPort}
                user: '{TestServers.PgUser}'
                password: '{TestServers.PgPassword}'
                globals: false

            """));
        if (!OperatingSystem.IsWindows())
        {
            // It holds passwords: readable by all, it would draw a warning on every run.
            File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        }
        return (path, backupDir);
    }

    private static void AssertOneErrorLine(ProcessResult run, params string[] mentions)
    {
        var lines = run.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.True(lines.Length == 1, $"expected exactly one line on stderr:\n{run}");
        Assert.StartsWith("vya-backupdb: error: ", lines[0], StringComparison.Ordinal);
        foreach (var mention in mentions)
        {
            Assert.Contains(mention, lines[0], StringComparison.Ordinal);
        }
    }

    private static List<JsonElement> Json(ProcessResult run)
    {
        Assert.True(run.ExitCode == Success, run.ToString());
        using var document = JsonDocument.Parse(run.Stdout);
        return [.. document.RootElement.EnumerateArray().Select(e => e.Clone())];
    }

    [Fact]
    public async Task List_shows_backups_newest_first_with_their_manifests_facts()
    {
        var (config, dir) = await ConfigAsync();
        Create(dir, _mysql, "dns_db", Utc("20260110_020000"), Compression.Gzip);
        var newest = Create(dir, _mysql, "dns_db", Utc("20260113_155440"), Compression.Zstd, encryption: "age");
        Create(dir, _mysql, "dns_db2", Utc("20260112_020000"), recordedSize: 5);
        Create(dir, _mysql, "dns_db", Utc("20260114_000000"), Compression.Zstd, manifest: false);
        Create(dir, _pg, "app db", Utc("20260111_020000"));
        Decoy(dir, "it-mysql/notes.txt");
        Decoy(dir, "it-mysql/20260113_155440_mysql_dns_db.zip.bak");
        Create(dir, _mysql with { Name = "it-mysql/old" }, "dns_db", Utc("20260115_000000"));

        var rows = Json(await Run.CliAsync("list", "--json", "--config", config));

        Assert.Equal(["dns_db 2026-01-13T15:54:40Z", "dns_db2 2026-01-12T02:00:00Z", "app db 2026-01-11T02:00:00Z", "dns_db 2026-01-10T02:00:00Z"],
            rows.Select(r => $"{r.GetProperty("database").GetString()} {r.GetProperty("time_utc").GetString()}"));
        var top = rows[0];
        Assert.Equal(1, top.GetProperty("instance_id").GetInt32());
        Assert.Equal("it-mysql", top.GetProperty("instance").GetString());
        Assert.Equal(new FileInfo(Path.Combine(dir, newest)).Length, top.GetProperty("size_bytes").GetInt64());
        Assert.Equal("zstd", top.GetProperty("compression").GetString());
        Assert.Equal("age", top.GetProperty("encryption").GetString());
        Assert.True(top.GetProperty("complete").GetBoolean());
        Assert.False(top.GetProperty("verified").GetBoolean());
        Assert.Equal("size_ok", top.GetProperty("status").GetString());
        Assert.Equal("local", top.GetProperty("storage").GetString());
        Assert.Equal(newest, top.GetProperty("key").GetString());
        Assert.Equal(Path.Combine(dir, newest), top.GetProperty("location").GetString());
        Assert.Equal("local:" + newest, top.GetProperty("id").GetString()); // what restore/verify --file take
        Assert.Equal(JsonValueKind.Null, rows[1].GetProperty("encryption").ValueKind);
        Assert.False(rows[1].GetProperty("verified").GetBoolean());
        Assert.Equal("size_mismatch", rows[1].GetProperty("status").GetString());
        Assert.Equal(2, rows[2].GetProperty("instance_id").GetInt32());

        var all = Json(await Run.CliAsync("list", "--json", "--all", "--config", config));
        Assert.Equal(5, all.Count);
        Assert.Equal("incomplete", all[0].GetProperty("status").GetString());
        Assert.False(all[0].GetProperty("complete").GetBoolean());

        Assert.Equal(["2026-01-13T15:54:40Z", "2026-01-10T02:00:00Z"],
            Json(await Run.CliAsync("list", "--json", "-i", "1", "-d", "dns_db", "--config", config)).Select(r => r.GetProperty("time_utc").GetString()));
        Assert.Equal(["app db"], Json(await Run.CliAsync("list", "--json", "--instance", "2", "--config", config)).Select(r => r.GetProperty("database").GetString()));

        Assert.Equal(4, Json(await Run.CliAsync("list", "--json", "--storage", "local", "--config", config)).Count);
        var unknown = await Run.CliAsync("list", "--storage", "offsite", "--config", config);
        Assert.Equal(2, unknown.ExitCode);
        Assert.Contains("storage 'offsite' is not defined", Assert.Single(Cli.ErrorLines(unknown)), StringComparison.Ordinal);
    }

    [Fact]
    public async Task List_json_says_verified_only_once_verify_has_checked_the_digest()
    {
        var (config, dir) = await ConfigAsync();
        var key = Create(dir, _mysql, "dns_db", Utc("20260113_155440"));

        var fresh = Assert.Single(Json(await Run.CliAsync("list", "--json", "--config", config)));
        var verify = await Run.CliAsync("verify", "--file", "local:" + key, "--config", config);
        var checkedRow = Assert.Single(Json(await Run.CliAsync("list", "--json", "--config", config)));

        // Only the manifest and the size were looked at: complete, not verified.
        Assert.Equal((true, false, "size_ok", JsonValueKind.Null),
            (fresh.GetProperty("complete").GetBoolean(), fresh.GetProperty("verified").GetBoolean(), fresh.GetProperty("status").GetString(),
                fresh.GetProperty("digest_checked_utc").ValueKind));
        Assert.True(verify.ExitCode == Success, verify.ToString());
        Assert.Equal((true, true, "verified", JsonValueKind.String),
            (checkedRow.GetProperty("complete").GetBoolean(), checkedRow.GetProperty("verified").GetBoolean(), checkedRow.GetProperty("status").GetString(),
                checkedRow.GetProperty("digest_checked_utc").ValueKind));
    }

    /// <summary>
    /// Found by a tester following the runbook: after verify found a file damaged, list went on saying "size ok"
    /// (nobody read it), and the runbook's newest-first choice took it. What verify found is shown until the file
    /// changes (or a later check passes).
    /// </summary>
    [Fact]
    public async Task List_shows_what_verify_found_wrong_with_a_file_until_it_changes()
    {
        var (config, dir) = await ConfigAsync();
        var key = Create(dir, _mysql, "dns_db", Utc("20260113_155440"));
        var path = Path.Combine(dir, key);
        var original = await File.ReadAllBytesAsync(path);
        var damaged = original.ToArray();
        damaged[damaged.Length / 2] ^= 0x55;
        await File.WriteAllBytesAsync(path, damaged);

        var verify = await Run.CliAsync("verify", "--file", "local:" + key, "--config", config);
        var row = Assert.Single(Json(await Run.CliAsync("list", "--json", "--config", config)));
        var text = await Run.CliAsync("list", "--config", config);

        Assert.True(verify.ExitCode == 4, verify.ToString());
        Assert.Equal((false, "verify_failed"), (row.GetProperty("verified").GetBoolean(), row.GetProperty("status").GetString()));
        Assert.StartsWith("verify found: ", row.GetProperty("problem").GetString(), StringComparison.Ordinal);
        Assert.Contains("SHA-256", row.GetProperty("problem").GetString(), StringComparison.OrdinalIgnoreCase);
        Assert.Contains("NO: verify found: ", text.Stdout, StringComparison.Ordinal);

        // Put right (fetched again from another copy): nothing is known of it any more, only its size.
        await File.WriteAllBytesAsync(path, original);
        File.SetLastWriteTimeUtc(path, DateTime.UtcNow.AddSeconds(1));
        Assert.Equal("size_ok", Assert.Single(Json(await Run.CliAsync("list", "--json", "--config", config))).GetProperty("status").GetString());
    }

    [Fact]
    public async Task List_prints_aligned_plain_text_when_not_on_a_terminal()
    {
        var (config, dir) = await ConfigAsync();
        Create(dir, _mysql, "dns_db", Utc("20260113_155440"), Compression.Zstd);
        Create(dir, _mysql, "a_much_longer_database_name", Utc("20260112_020000"), recordedSize: 5);
        Create(dir, _mysql, "dns_db", Utc("20260114_000000"), manifest: false);

        var run = await Run.CliAsync("list", "--all", "--config", config);

        Assert.True(run.ExitCode == Success, run.ToString());
        var lines = run.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(4, lines.Length);
        Assert.StartsWith("INSTANCE", lines[0], StringComparison.Ordinal);
        var timeColumn = lines[0].IndexOf("TIME (UTC)", StringComparison.Ordinal);
        Assert.Equal(["2026-01-14 00:00:00", "2026-01-13 15:54:40", "2026-01-12 02:00:00"], lines[1..].Select(l => l.Substring(timeColumn, 19)));
        Assert.Contains("incomplete (no manifest)", lines[1], StringComparison.Ordinal);
        // Only the size is known to match: list reads no data file (verify does, and then says "sha256 ok").
        Assert.Contains("  size ok  ", lines[2], StringComparison.Ordinal);
        Assert.Contains("NO: size differs", lines[3], StringComparison.Ordinal);
        Assert.All(lines[1..], l => Assert.EndsWith("local", l, StringComparison.Ordinal));
        Assert.Contains("it-mysql (1)", lines[1], StringComparison.Ordinal);

        var complete = await Run.CliAsync("list", "--config", config);
        Assert.Equal(3, complete.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length);
        Assert.DoesNotContain("incomplete", complete.Stdout, StringComparison.Ordinal);
    }

    /// <summary>
    /// Found by testers: a database named with a newline, an escape sequence or U+202E (which shows the rest of
    /// the line reversed) was printed raw in list, the prune plan and status, forging lines of their own. They
    /// are shown escaped, as the log lines show them.
    /// </summary>
    [Fact]
    public async Task Names_with_control_characters_are_shown_escaped_in_list_prune_and_status()
    {
        var (config, dir) = await ConfigAsync(retention: "retention: {keep_last: 1}");
        const string name = "x\nOK  \u001b[2Jy\u202ez";
        Create(dir, _mysql, name, Utc("20260113_155440"));
        Create(dir, _mysql, name, Utc("20260112_155440"));

        foreach (var command in new[] { new[] { "list" }, ["prune", "--instance", "1", "--dry-run"], ["status"] })
        {
            var run = await Run.CliAsync([.. command, "--config", config]);

            // status: 8, the backups are old.
            Assert.True(run.ExitCode is Success or 8, run.ToString());
            Assert.Contains("x\\nOK  \\x1b[2Jy\\u202ez", run.Stdout, StringComparison.Ordinal);
            Assert.DoesNotContain(run.Stdout.Split('\n'), line => line.StartsWith("OK", StringComparison.Ordinal));
            Assert.DoesNotContain('\u001b', run.Stdout);
            Assert.DoesNotContain('\u202e', run.Stdout);
        }
    }

    [Fact]
    public async Task A_damaged_manifest_is_described_by_its_fields_without_dotnet_type_names()
    {
        var (config, dir) = await ConfigAsync();
        void Damage(string key, Action<System.Text.Json.Nodes.JsonObject> change)
        {
            var path = Path.Combine(dir, key + BackupManifest.Suffix);
            var manifest = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(path))!.AsObject();
            change(manifest);
            File.WriteAllText(path, manifest.ToJsonString());
        }
        Damage(Create(dir, _mysql, "wrong_type", Utc("20260113_000000")), m => m["stored_bytes"] = "many");
        Damage(Create(dir, _mysql, "missing", Utc("20260112_000000")), m => { m.Remove("instance_id"); m.Remove("dbms"); });
        Damage(Create(dir, _mysql, "nested", Utc("20260111_000000")), m => m["inventory"]!.AsObject().Remove("tables"));
        File.WriteAllText(Path.Combine(dir, Create(dir, _mysql, "not_json", Utc("20260110_000000")) + BackupManifest.Suffix), "{\"data_file\": ");

        var rows = Json(await Run.CliAsync("list", "--all", "--json", "--config", config));
        var verify = await Run.CliAsync("verify", "-i", "1", "--config", config);

        Assert.Equal(
            [
                "wrong_type: manifest unreadable: field stored_bytes has the wrong type",
                "missing: manifest unreadable: missing field(s) instance_id, dbms",
                "nested: manifest unreadable: missing field(s) inventory.tables",
                "not_json: manifest unreadable: not valid JSON (line 1)",
            ],
            rows.Select(r => $"{r.GetProperty("database").GetString()}: {r.GetProperty("problem").GetString()}"));
        foreach (var text in new[] { verify.Stdout, verify.Stderr })
        {
            Assert.DoesNotContain("VyaBackupDb.", text, StringComparison.Ordinal);
            Assert.DoesNotContain("JSON value", text, StringComparison.Ordinal);
            Assert.DoesNotContain("deserialization", text, StringComparison.Ordinal);
        }
        Assert.Contains("missing field(s) instance_id, dbms", verify.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task List_of_nothing_and_of_an_unknown_instance()
    {
        var (config, _) = await ConfigAsync();

        var empty = await Run.CliAsync("list", "--config", config);
        var json = await Run.CliAsync("list", "--json", "--config", config);
        var unknown = await Run.CliAsync("list", "--instance", "9", "--config", config);

        Assert.True(empty.ExitCode == Success, empty.ToString());
        Assert.Contains("no backups found", empty.Stdout, StringComparison.Ordinal);
        Assert.Empty(Json(json));
        Assert.True(unknown.ExitCode == UsageOrConfig, unknown.ToString());
        AssertOneErrorLine(unknown, "instance 9");
    }

    [Fact]
    public async Task Prune_needs_an_instance_or_all()
    {
        var (config, _) = await ConfigAsync();

        var none = await Run.CliAsync("prune", "--config", config);
        var both = await Run.CliAsync("prune", "--instance", "1", "--all", "--config", config);
        var db = await Run.CliAsync("prune", "--all", "--database", "x", "--config", config);

        Assert.True(none.ExitCode == UsageOrConfig, none.ToString());
        AssertOneErrorLine(none, "--instance", "--all");
        Assert.True(both.ExitCode == UsageOrConfig, both.ToString());
        Assert.True(db.ExitCode == UsageOrConfig, db.ToString());
    }

    [Fact]
    public async Task Prune_dry_run_prints_the_plan_with_reasons_then_prune_deletes_it()
    {
        var (config, dir) = await ConfigAsync(retention: "retention: {keep_last: 1}", mySqlRetention: "retention: {keep_last: 2}");
        var keys = new[] { "20250113_155440", "20250112_155440", "20250111_155440" }.Select(t => Create(dir, _mysql, "dns_db", Utc(t))).ToList();
        var pgKeys = new[] { "20250113_155440", "20250112_155440" }.Select(t => Create(dir, _pg, "app", Utc(t))).ToList();
        var incomplete = Create(dir, _mysql, "dns_db", Utc("20250101_000000"), manifest: false);
        Decoy(dir, "it-mysql/notes.txt");
        var before = Snapshot(dir);

        var dryRun = await Run.CliAsync("prune", "--instance", "1", "--dry-run", "--config", config);

        Assert.True(dryRun.ExitCode == Success, dryRun.ToString());
        Assert.Equal(before, Snapshot(dir));
        Assert.Contains("instance 1 (it-mysql), storage local: keep_last=2", dryRun.Stdout, StringComparison.Ordinal);
        Assert.Contains($"keep         {keys[0]}  (last #1)", dryRun.Stdout, StringComparison.Ordinal);
        Assert.Contains($"would remove {keys[2]}  (beyond every keep rule)", dryRun.Stdout, StringComparison.Ordinal);
        Assert.Contains($"keep         {incomplete}  (incomplete (no manifest)", dryRun.Stdout, StringComparison.Ordinal);
        Assert.Contains("prune summary (dry run): 3 kept, 1 would be removed; nothing was deleted", dryRun.Stdout, StringComparison.Ordinal);

        var prune = await Run.CliAsync("prune", "--all", "--config", config);

        Assert.True(prune.ExitCode == Success, prune.ToString());
        Assert.Contains("prune summary: 4 kept, 2 removed", prune.Stdout, StringComparison.Ordinal);
        var left = Ops.FilesUnder(dir).Where(f => !f.EndsWith(Catalog.VerifyRecord.Suffix, StringComparison.Ordinal));
        Assert.Equal(before.Keys.Except([.. FilesOf(keys[2]), .. FilesOf(pgKeys[1])]).Order(StringComparer.Ordinal), left);
        Assert.Contains($"check        {keys[0]}  (digest checked now)", prune.Stdout, StringComparison.Ordinal);
        Assert.DoesNotContain("error", prune.Stderr, StringComparison.OrdinalIgnoreCase);
    }

    /// <summary>
    /// Found by a tester: two truncated newer backups took keep_last's slots, and prune removed
    /// two of the three intact ones. A backup whose size differs from its manifest is kept and not
    /// counted, as one with a bad manifest.
    /// </summary>
    [Fact]
    public async Task Prune_keeps_intact_backups_in_place_of_truncated_ones()
    {
        var (config, dir) = await ConfigAsync(mySqlRetention: "retention: {keep_last: 3}");
        var intact = new[] { "20251103_020000", "20251102_020000", "20251101_020000" }.Select(t => Create(dir, _mysql, "dns_db", Utc(t))).ToList();
        var truncated = new[] { "20251105_020000", "20251104_020000" }.Select(t => Create(dir, _mysql, "dns_db", Utc(t), recordedSize: 4096)).ToList();
        var before = Snapshot(dir);

        var prune = await Run.CliAsync("prune", "--instance", "1", "--config", config);

        Assert.True(prune.ExitCode == Success, prune.ToString());
        var left = Ops.FilesUnder(dir).Where(f => !f.EndsWith(Catalog.VerifyRecord.Suffix, StringComparison.Ordinal));
        Assert.Equal(before.Keys.Order(StringComparer.Ordinal), left);
        Assert.Contains($"keep         {intact[2]}  (last #3)", prune.Stdout, StringComparison.Ordinal);
        Assert.Contains($"keep         {truncated[0]}  (stored size differs from its manifest", prune.Stdout, StringComparison.Ordinal);
    }

    /// <summary>
    /// Found by a tester: a backup verify had found damaged (same size, other bytes) still took a keep_last slot, and
    /// prune removed an intact one; status counted it as a good backup. It is kept and not counted, as a truncated one.
    /// </summary>
    [Fact]
    public async Task A_backup_verify_found_damaged_takes_no_keep_slot_and_status_counts_it_damaged()
    {
        var (config, dir) = await ConfigAsync(mySqlRetention: "retention: {keep_last: 2}");
        var oldest = Create(dir, _mysql, "dns_db", Utc("20251101_020000"));
        var damaged = Create(dir, _mysql, "dns_db", Utc("20251102_020000"));
        Create(dir, _mysql, "dns_db", Utc("20251103_020000"));
        var path = Path.Combine(dir, damaged);
        var bytes = await File.ReadAllBytesAsync(path);
        bytes[bytes.Length / 2] ^= 0x55;
        await File.WriteAllBytesAsync(path, bytes);
        var verify = await Run.CliAsync("verify", "--file", "local:" + damaged, "--config", config);
        Assert.True(verify.ExitCode == 4, verify.ToString());

        var status = await Run.CliAsync("status", "--json", "--config", config);
        var prune = await Run.CliAsync("prune", "--instance", "1", "--config", config);

        Assert.True(prune.ExitCode == Success, prune.ToString());
        Assert.True(File.Exists(Path.Combine(dir, oldest)), prune.ToString());
        Assert.Contains($"keep         {damaged}  (verify found its file damaged", prune.Stdout, StringComparison.Ordinal);
        Assert.Contains("\"damaged\": 1", status.Stdout, StringComparison.Ordinal);
        Assert.Contains("\"backups\": 2", status.Stdout, StringComparison.Ordinal);
    }

    /// <summary>
    /// Found by a tester: a backup_dir written with a trailing slash failed every command with a
    /// .NET stack trace; a FIFO named like a manifest hung list forever; the sweep of abandoned temp
    /// files at each backup followed a symlink in the instance's folder and deleted another
    /// directory's `.vya-tmp-*` file.
    /// </summary>
    [SkippableFact]
    public async Task A_slash_a_fifo_or_a_symlink_in_the_backup_folder_harms_nothing()
    {
        await TestServers.RequireMySqlAsync();
        var db = await _scratch.NewMySqlDatabaseAsync();
        var (config, dir) = await ConfigAsync(include: db);
        await File.WriteAllTextAsync(config, (await File.ReadAllTextAsync(config)).Replace($"backup_dir: {dir}\n", $"backup_dir: {dir}/\n", StringComparison.Ordinal));
        var instanceFolder = Path.Combine(dir, "it-mysql");
        Directory.CreateDirectory(instanceFolder);
        var outside = _scratch.TempDir("outside");
        var othersTemp = Path.Combine(outside, ".vya-tmp-deadbeef0000-report.sql");
        await File.WriteAllTextAsync(othersTemp, "another tool's");
        File.SetLastWriteTimeUtc(othersTemp, DateTime.UtcNow.AddDays(-3));
        Create(outside, _mysql, db, Utc("20250101_000000"));
        File.CreateSymbolicLink(Path.Combine(instanceFolder, "latest"), Path.Combine(outside, "it-mysql"));
        File.CreateSymbolicLink(Path.Combine(instanceFolder, "elsewhere"), outside);
        var fifo = Path.Combine(instanceFolder, new BackupName(Utc("20250102_000000"), Dbms.MySql, db, Compression.Zstd).FileName);
        await File.WriteAllTextAsync(fifo, "");
        var mkfifo = await Run.ProgramAsync("mkfifo", [fifo + BackupManifest.Suffix]);
        Assert.True(mkfifo.ExitCode == 0, mkfifo.ToString());

        var backup = await Run.CliAsync("backup", "--instance", "1", "--config", config);
        var list = await Run.CliAsync("list", "--json", "--config", config);

        Assert.True(backup.ExitCode == Success, backup.ToString());
        Assert.True(File.Exists(othersTemp), "the backup's sweep deleted a file outside the backup folder");
        var rows = Json(list);
        var row = Assert.Single(rows);
        Assert.Equal(db, row.GetProperty("database").GetString());

        // A FIFO given as the backup file is refused at once (found by a tester: verify and restore
        // waited forever for a writer, deaf to SIGTERM).
        var fifoData = Path.Combine(instanceFolder, new BackupName(Utc("20250103_000000"), Dbms.MySql, db, Compression.Zstd).FileName);
        Assert.True((await Run.ProgramAsync("mkfifo", [fifoData])).ExitCode == 0);
        using var verify = Run.StartCli("verify", "--file", fifoData, "--config", config);
        using var waited = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await verify.WaitForExitAsync(waited.Token);
        var error = await verify.StandardError.ReadToEndAsync();
        Assert.True(verify.ExitCode is not 0, error);
        Assert.Contains("is not a regular file (a FIFO, a socket or a device): not read", error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Prune_without_a_policy_says_so_and_deletes_nothing()
    {
        var (config, dir) = await ConfigAsync();
        Create(dir, _mysql, "dns_db", Utc("20250113_155440"));
        Create(dir, _mysql, "dns_db", Utc("20240113_155440"));
        var before = Snapshot(dir);

        var run = await Run.CliAsync("prune", "--all", "--config", config);

        Assert.True(run.ExitCode == Success, run.ToString());
        Assert.Contains("instance 1 (it-mysql): no retention policy configured; keeping everything", run.Stdout, StringComparison.Ordinal);
        Assert.Contains("instance 2 (it-pg): no retention policy configured", run.Stdout, StringComparison.Ordinal);
        Assert.Equal(before, Snapshot(dir));
    }

    [Fact]
    public async Task A_bad_retention_setting_is_a_config_error_naming_file_line_and_key()
    {
        var (config, _) = await ConfigAsync(retention: "retention: {keep_within: 30x}");

        var run = await Run.CliAsync("prune", "--all", "--dry-run", "--config", config);

        Assert.True(run.ExitCode == UsageOrConfig, run.ToString());
        AssertOneErrorLine(run, $"{config}:3: retention.keep_within: '30x' is not a duration");
    }

    /// <summary>
    /// A run with one failing database prunes nothing (not even the database that succeeded); a
    /// fully successful run prunes the databases it backed up, and only those.
    /// </summary>
    [SkippableFact]
    public async Task Backup_prune_prunes_the_databases_backed_up_and_never_one_whose_backup_failed()
    {
        await TestServers.RequireMySqlAsync();
        var prefix = _scratch.MySqlName("vt_bp") + "_";
        var good = _scratch.TrackMySql(prefix + "good");
        var broken = _scratch.TrackMySql(prefix + "broken");
        await MySqlTestDb.CreateAsync(good);
        await MySqlTestDb.CreateAsync(broken);
        await MySqlTestDb.ExecAsync(good, "CREATE TABLE t (id INT PRIMARY KEY)", "INSERT INTO t VALUES (1)");
        // mariadb-dump fails on a view whose table is gone: one database of the run fails.
        await MySqlTestDb.ExecAsync(broken, "CREATE TABLE t (id INT)", "CREATE VIEW v AS SELECT id FROM t", "DROP TABLE t");
        var (config, dir) = await ConfigAsync(mySqlRetention: "retention: {keep_last: 1}", include: prefix + "*");
        var oldGood = new[] { "20250113_155440", "20250112_155440" }.Select(t => Create(dir, _mysql, good, Utc(t))).ToList();
        var oldBroken = new[] { "20250113_155440", "20250112_155440" }.Select(t => Create(dir, _mysql, broken, Utc(t))).ToList();
        var other = new[] { "20250113_155440", "20250112_155440" }.Select(t => Create(dir, _mysql, prefix + "other", Utc(t))).ToList();
        var before = Snapshot(dir);

        var partial = await Run.CliAsync("backup", "--instance", "1", "--prune", "--config", config);

        // The failed database is not pruned (and said so); the one backed up is.
        Assert.True(partial.ExitCode == PartialFailure, partial.ToString());
        Assert.Contains($"not pruning instance 1 (it-mysql) database '{broken}': its backup failed", partial.Stderr, StringComparison.Ordinal);
        Assert.Contains("prune summary: 1 kept, 2 removed", partial.Stdout, StringComparison.Ordinal);
        var afterPartial = Snapshot(dir);
        Assert.All(before.Where(f => !oldGood.SelectMany(FilesOf).Contains(f.Key)), f => Assert.Equal(f.Value, afterPartial.GetValueOrDefault(f.Key)));
        Assert.All(oldGood.SelectMany(FilesOf), f => Assert.DoesNotContain(f, afterPartial.Keys));
        var firstGood = Assert.Single(afterPartial.Keys.Except(before.Keys), k => k.EndsWith($"_mysql_{good}.sql.zst", StringComparison.Ordinal));

        var missing = await Run.CliAsync("backup", "--instance", "1", "--database", prefix + "missing", "--prune", "--config", config);

        Assert.True(missing.ExitCode == Failed, missing.ToString());
        Assert.Contains("not pruning", missing.Stderr, StringComparison.Ordinal);
        Assert.Equal(afterPartial, Snapshot(dir));

        await Task.Delay(TimeSpan.FromSeconds(1.1)); // a new second: a new file name
        var ok = await Run.CliAsync("backup", "--instance", "1", "--database", good, "--prune", "--config", config);

        Assert.True(ok.ExitCode == Success, ok.ToString());
        Assert.Contains("prune summary: 1 kept, 1 removed", ok.Stdout, StringComparison.Ordinal);
        var left = Ops.FilesUnder(dir);
        Assert.All(oldGood.Append(firstGood).SelectMany(FilesOf), f => Assert.DoesNotContain(f, left));
        Assert.All(oldBroken.Concat(other).SelectMany(FilesOf), f => Assert.Contains(f, left));
        var newest = Assert.Single(Ops.DataFilesUnder(dir), f => f.EndsWith($"_mysql_{good}.sql.zst", StringComparison.Ordinal));
        Assert.NotEqual(firstGood, newest);
    }

    /// <summary>A file where an instance's folder should be fails that instance (tr107: list, verify and status called it empty, exit 0).</summary>
    [Fact]
    public async Task A_file_where_the_instance_folder_should_be_fails_that_instance()
    {
        var (config, dir) = await ConfigAsync();
        Create(dir, _pg, "app", Utc("20250113_155440"));
        await File.WriteAllTextAsync(Path.Combine(dir, "it-mysql"), "not a folder\n");

        var list = await Run.CliAsync("list", "--config", config);

        Assert.True(list.ExitCode == Failed, list.ToString());
        AssertOneErrorLine(list, "instance 1 (it-mysql)", $"{Path.Combine(dir, "it-mysql")} is not a directory");
        Assert.Contains("app", list.Stdout, StringComparison.Ordinal);
    }

    /// <summary>
    /// One instance's folder that cannot be listed (no read permission, as any user but root meets it)
    /// fails that instance only: the other instance's backups on the same destination are listed and pruned.
    /// </summary>
    [Fact]
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    public async Task A_folder_that_cannot_be_listed_fails_only_its_instance_in_list_and_prune()
    {
        var (config, dir) = await ConfigAsync(retention: "retention: {keep_last: 1}");
        Create(dir, _mysql, "dns_db", Utc("20250112_155440"));
        Create(dir, _mysql, "dns_db", Utc("20250111_155440"));
        var pgKeys = new[] { "20250113_155440", "20250112_155440" }.Select(t => Create(dir, _pg, "app", Utc(t))).ToList();
        var locked = Path.Combine(dir, "it-mysql");
        var lockedBefore = Snapshot(locked);
        File.SetUnixFileMode(locked, UnixFileMode.None);
        try
        {
            var list = await Run.CliWithoutReadOverrideAsync("list", "--json", "--config", config);

            Assert.True(list.ExitCode == Failed, list.ToString());
            AssertOneErrorLine(list, "instance 1 (it-mysql)", "storage 'local'", "cannot be listed, its backups there are not shown: ", locked);
            Assert.DoesNotContain(".;", list.Stderr, StringComparison.Ordinal); // .NET's full stop before ours (tr97)
            using (var rows = JsonDocument.Parse(list.Stdout))
            {
                Assert.Equal(pgKeys, rows.RootElement.EnumerateArray().Select(r => r.GetProperty("key").GetString()));
            }

            var prune = await Run.CliWithoutReadOverrideAsync("prune", "--all", "--config", config);

            Assert.True(prune.ExitCode == Failed, prune.ToString());
            var error = Assert.Single(Cli.ErrorLines(prune)); // the other stderr lines log what was deleted
            Assert.StartsWith("vya-backupdb: error: instance 1 (it-mysql): storage 'local' cannot be pruned: ", error, StringComparison.Ordinal);
            Assert.Contains(locked, error, StringComparison.Ordinal);
            Assert.EndsWith("nothing was deleted there", error, StringComparison.Ordinal);
            Assert.Contains("prune summary: 1 kept, 1 removed", prune.Stdout, StringComparison.Ordinal);
            Assert.Contains("not pruned (cannot be reached or listed): instance 1 (it-mysql) in 'local'", prune.Stdout, StringComparison.Ordinal);
            Assert.DoesNotContain("it-pg) in", prune.Stdout, StringComparison.Ordinal);
            Assert.True(File.Exists(Path.Combine(dir, pgKeys[0])));
            Assert.All(FilesOf(pgKeys[1]), f => Assert.False(File.Exists(Path.Combine(dir, f)), f));
        }
        finally
        {
            File.SetUnixFileMode(locked, (UnixFileMode)Convert.ToInt32("755", 8));
        }
        Assert.Equal(lockedBefore, Snapshot(locked));
    }

    private static IEnumerable<string> FilesOf(string key) => [BackupManifest.KeyFor(key), key + BackupManifest.ChecksumSuffix, key];
}
