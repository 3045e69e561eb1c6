using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using VyaBackupDb.Catalog;
using VyaBackupDb.Config;
using VyaBackupDb.Operations;
using VyaBackupDb.Pipeline;
using VyaBackupDb.Storage;
using VyaBackupDb.Storage.S3;
using VyaBackupDb.Storage.Sftp;

namespace VyaBackupDb.Tests.Integration;

/// <summary>
/// Backups to S3 (Ceph RADOS Gateway) and SFTP (OpenSSH) and back: restore from each under a new name and
/// compare the databases; copies to several destinations, each verified; an upload cut off
/// midway (cancelled, or the whole CLI killed) leaves nothing that looks like a backup, and the
/// earlier backups stay byte for byte.
/// </summary>
[Trait("Category", "Integration")]
public sealed class RemoteStorageTests : IAsyncLifetime
{
    private static readonly DateTimeOffset GoodTime = new(2026, 1, 13, 15, 54, 40, TimeSpan.Zero);
    private static readonly DateTimeOffset LaterTime = GoodTime.AddHours(1);

    private const int StallLimitSeconds = 3;

    private readonly Scratch _scratch = new();
    private readonly RemoteScratch _remote = new();

    public Task InitializeAsync() => _scratch.InitializeAsync();

    public async Task DisposeAsync()
    {
        await _remote.DisposeAsync();
        await _scratch.DisposeAsync();
    }

    public enum Backend
    {
        S3,
        Sftp,
    }

    private S3StorageConfig S3Config => TestServers.S3(_remote.S3Prefix, "offsite");

    private SftpStorageConfig SftpConfig => TestServers.Sftp(_remote.SftpFolder, "box", usePassword: true);

    private static Task RequireAsync(Backend backend) => backend == Backend.S3 ? TestServers.RequireS3Async() : TestServers.RequireSftpAsync();

    private string StorageName(Backend backend) => backend == Backend.S3 ? "offsite" : "box";

    /// <summary>A config whose instance writes to <paramref name="destinations"/>, with both remote storages defined.</summary>
    private (AppConfig Config, InstanceConfig Instance) Setup(InstanceConfig instance, params string[] destinations)
    {
        var chosen = instance with { Storage = destinations };
        var config = TestServers.Config(_scratch.TempDir("backups"), chosen) with { Storages = [S3Config, SftpConfig] };
        return (config, chosen);
    }

    /// <summary>A storage opened apart from the code under test, to look at what it left.</summary>
    private IStorage Open(Backend backend) => _remote.Track(backend == Backend.S3 ? new S3Storage(S3Config) : new SftpStorage(SftpConfig));

    private static async Task<BackupItemResult> BackupAsync(
        AppConfig config, InstanceConfig instance, string database, Compression compression, DateTimeOffset? at = null,
        CancellationToken cancellationToken = default)
    {
        using var storages = new StorageSet(config);
        var operation = new BackupOperation(config, storages, at is { } t ? new FixedTime(t) : TimeProvider.System, new TestBackupObserver());
        var report = await operation.RunAsync(new BackupRequest([instance], database, compression, DryRun: false), cancellationToken);
        return Assert.Single(report.Results);
    }

    /// <summary>Every object and its digest, but the leases of the storage lock (.locks/: a killed run's stays until it expires).</summary>
    private static async Task<Dictionary<string, string>> ContentsAsync(IStorage storage)
    {
        var contents = new Dictionary<string, string>(StringComparer.Ordinal);
        await foreach (var entry in storage.ListAsync("", CancellationToken.None))
        {
            if (entry.Key.StartsWith(".locks/", StringComparison.Ordinal))
            {
                continue;
            }
            await using var stream = await storage.OpenReadAsync(entry.Key, CancellationToken.None);
            contents[entry.Key] = Convert.ToHexStringLower(await SHA256.HashDataAsync(stream));
        }
        return contents;
    }

    private static async Task<IReadOnlyList<string>> LeftoversAsync(IStorage storage) => storage switch
    {
        S3Storage s3 => [.. (await s3.ListUploadsAsync("", CancellationToken.None)).Select(u => u.Key)],
        SftpStorage sftp => await sftp.ListTempFilesAsync("", CancellationToken.None),
        _ => throw new ArgumentOutOfRangeException(nameof(storage)),
    };

    [SkippableFact]
    public async Task MySql_backup_to_s3_as_zip_restores_under_a_new_name_from_its_s3_url()
    {
        await TestServers.RequireMySqlAsync();
        await TestServers.RequireS3Async();
        var source = await _scratch.NewMySqlDatabaseAsync();
        await MySqlRoundTripTests.CreateHostileAsync(source, bigRow: false);
        var (config, instance) = Setup(TestServers.MySql(), "offsite");
        var before = await MySqlTestDb.FingerprintAsync(source);

        var result = await BackupAsync(config, instance, source, Compression.Zip);

        Assert.True(result.Succeeded, result.Error);
        Assert.StartsWith($"s3://{TestServers.S3Bucket}/{_remote.S3Prefix}test-mysql/", result.Location, StringComparison.Ordinal);
        Assert.EndsWith($"_mysql_{source}.zip", result.Location, StringComparison.Ordinal);
        var stored = await ContentsAsync(Open(Backend.S3));
        var key = Assert.Single(stored.Keys, k => k.EndsWith(".zip", StringComparison.Ordinal));
        Assert.Contains(key + BackupManifest.Suffix, stored.Keys);
        Assert.Contains(key + BackupManifest.ChecksumSuffix, stored.Keys);
        Assert.DoesNotContain(Ops.FilesUnder(config.BackupDir), f => !f.StartsWith(".locks", StringComparison.Ordinal));

        // A zip is read from a seekable copy: the S3 stream is spooled to a temp file first.
        var target = _scratch.MySqlName();
        var restored = await new RestoreOperation(config, new TestRestoreObserver())
            .RunAsync(new RestoreRequest(result.Location!, instance, target, DryRun: false, Force: false), CancellationToken.None);

        Assert.NotNull(restored);
        Assert.True(restored.Comparison?.Matches, "the restored counts differ from the manifest");
        DbFingerprint.AssertSame(before, await MySqlTestDb.FingerprintAsync(target), "restored from S3");
        DbFingerprint.AssertSame(before, await MySqlTestDb.FingerprintAsync(source), "the source after the round trip");
    }

    [SkippableFact]
    public async Task Postgres_backup_to_sftp_restores_under_a_new_name_from_name_and_key()
    {
        await TestServers.RequirePostgresAsync();
        await TestServers.RequireSftpAsync();
        var source = await _scratch.NewPostgresDatabaseAsync();
        await PostgresRoundTripTests.CreateHostileAsync(source, bigRow: true);
        var (config, instance) = Setup(TestServers.Postgres(), "box");
        var before = await PgTestDb.FingerprintAsync(source);

        var result = await BackupAsync(config, instance, source, Compression.Gzip);

        Assert.True(result.Succeeded, result.Error);
        Assert.StartsWith($"sftp://{TestServers.SftpUser}@127.0.0.1:{TestServers.SftpPort}/~/{_remote.SftpFolder}/test-pg/", result.Location, StringComparison.Ordinal);
        var onServer = Ops.FilesUnder(Path.Combine(TestServers.SftpHome, _remote.SftpFolder));
        var file = Assert.Single(Ops.DataFilesUnder(Path.Combine(TestServers.SftpHome, _remote.SftpFolder)));
        Assert.Equal(3, onServer.Count);
        Assert.Matches($@"^test-pg/\d{{8}}_\d{{6}}_postgresql_{source}\.sql\.gz$", file);

        var target = _scratch.PostgresName();
        var restored = await new RestoreOperation(config, new TestRestoreObserver())
            .RunAsync(new RestoreRequest($"box:{file}", instance, target, DryRun: false, Force: false), CancellationToken.None);

        Assert.NotNull(restored);
        DbFingerprint.AssertSame(before, await PgTestDb.FingerprintAsync(target), "restored from SFTP");

        // verify reads it there too, by the URL the backup reported.
        var checks = await new VerifyOperation(config, new TestVerifyObserver())
            .RunAsync(new VerifyRequest(result.Location, null, null, Latest: false, Restore: false), CancellationToken.None);
        Assert.True(Assert.Single(checks).Check.Ok, string.Join("; ", checks[0].Check.Problems));
    }

    [SkippableFact]
    public async Task Backup_to_three_destinations_is_written_once_and_copied_and_each_copy_verifies()
    {
        await TestServers.RequireMySqlAsync();
        await TestServers.RequireS3Async();
        await TestServers.RequireSftpAsync();
        var source = await _scratch.NewMySqlDatabaseAsync();
        await MySqlTestDb.ExecAsync(source, "CREATE TABLE t (id INT PRIMARY KEY, v LONGBLOB)", "INSERT INTO t VALUES (1, REPEAT('x', 100000)), (2, NULL)");
        var (config, instance) = Setup(TestServers.MySql(), "local", "offsite", "box");

        var result = await BackupAsync(config, instance, source, Compression.Zstd);

        Assert.True(result.Succeeded, result.Error);
        Assert.StartsWith(config.BackupDir, result.Location, StringComparison.Ordinal);
        Assert.Equal(2, result.Copies?.Count);
        var local = await ContentsAsync(new Storage.Local.LocalStorage(config.BackupDir));
        var s3 = await ContentsAsync(Open(Backend.S3));
        var sftp = await ContentsAsync(Open(Backend.Sftp));
        Assert.Equal(3, s3.Count);
        Assert.Equal(s3, sftp);
        Assert.Equal(s3, local.Where(e => !e.Key.StartsWith(".locks/", StringComparison.Ordinal)).ToDictionary());

        // verify --instance checks the backup in each destination.
        var checks = await new VerifyOperation(config, new TestVerifyObserver())
            .RunAsync(new VerifyRequest(null, instance, source, Latest: true, Restore: false), CancellationToken.None);
        Assert.Equal(3, checks.Count);
        Assert.All(checks, c => Assert.True(c.Check.Ok, string.Join("; ", c.Check.Problems)));
        Assert.Equal(3, checks.Select(c => c.Check.File).Distinct().Count());
    }

    /// <summary>
    /// What a run remembers as a destination that is down (tried once for all its instances): a refused
    /// login or a missing bucket; an instance folder the server's user may not read is that folder's problem only.
    /// </summary>
    [SkippableFact]
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    public async Task A_refused_login_or_missing_bucket_is_the_destination_s_fault_and_a_bad_folder_is_not()
    {
        await TestServers.RequireSftpAsync();
        await TestServers.RequireS3Async();
        var instance = TestServers.MySql(name: "it-folder");

        var wrongPassword = _remote.Track(new SftpStorage(SftpConfig with { Password = PasswordSource.Literal("wrong-sftp-pw") }));
        var refused = await Assert.ThrowsAsync<StorageException>(() => BackupCatalog.ListAsync(wrongPassword, instance, CancellationToken.None));
        Assert.True(StorageSet.IsDestinationDown(refused), refused.Message);

        using (var noBucket = new S3Storage(S3Config with { Bucket = "vya-no-such-bucket-" + Guid.NewGuid().ToString("N")[..8] }))
        {
            var missing = await Assert.ThrowsAsync<StorageException>(() => BackupCatalog.ListAsync(noBucket, instance, CancellationToken.None));
            Assert.True(StorageSet.IsDestinationDown(missing), missing.Message);
        }

        // The SFTP server's user may not read this instance's folder (made by root, mode 000).
        var folder = Path.Combine(TestServers.SftpHome, _remote.SftpFolder, "it-folder");
        Directory.CreateDirectory(folder);
        File.SetUnixFileMode(folder, UnixFileMode.None);
        var denied = await Assert.ThrowsAsync<StorageException>(() => BackupCatalog.ListAsync(Open(Backend.Sftp), instance, CancellationToken.None));
        Assert.Contains("denied", denied.Message, StringComparison.OrdinalIgnoreCase);
        Assert.False(StorageSet.IsDestinationDown(denied), denied.Message);
    }

    [SkippableFact]
    public async Task Wrong_sftp_host_key_refuses_the_connection_before_the_password_is_sent_and_nothing_is_written()
    {
        await TestServers.RequireMySqlAsync();
        await TestServers.RequireSftpAsync();
        var source = await _scratch.NewMySqlDatabaseAsync();
        await MySqlTestDb.ExecAsync(source, "CREATE TABLE t (id INT PRIMARY KEY)", "INSERT INTO t VALUES (1)");
        var (config, instance) = Setup(TestServers.MySql(), "local", "box");
        var wrongKey = SftpConfig with { HostFingerprint = "SHA256:" + new string('A', 43), Password = PasswordSource.Literal("Not-Sent-Secret-5") };
        config = config with { Storages = [S3Config, wrongKey] };

        var result = await BackupAsync(config, instance, source, Compression.Zstd);

        // The sweep at the start already meets the wrong host key: nothing is sent to that server;
        // the backup goes to the other destination (a destination that is refused fails only its copy).
        Assert.False(result.Succeeded);
        Assert.Contains("not copied to 'box'", result.Error, StringComparison.Ordinal);
        Assert.Contains("host key", result.Error, StringComparison.Ordinal);
        Assert.Contains("expects SHA256:AAAA", result.Error, StringComparison.Ordinal);
        Assert.Contains("connection refused", result.Error, StringComparison.Ordinal);
        Assert.DoesNotContain("Not-Sent-Secret-5", result.Error, StringComparison.Ordinal);
        Assert.Single(Ops.DataFilesUnder(config.BackupDir));
        Assert.Equal(["local"], result.Destinations);
        Assert.False(Directory.Exists(Path.Combine(TestServers.SftpHome, _remote.SftpFolder)), "something was written to the refused server");
    }

    [SkippableTheory]
    [InlineData(Backend.S3)]
    [InlineData(Backend.Sftp)]
    public async Task Upload_cancelled_midway_leaves_nothing_and_keeps_the_earlier_backup(Backend backend)
    {
        await TestServers.RequireMySqlAsync();
        await RequireAsync(backend);
        var db = await _scratch.NewMySqlDatabaseAsync();
        await MySqlTestDb.ExecAsync(db, "CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(100))", "INSERT INTO t VALUES (1, 'good')");
        var (config, instance) = Setup(TestServers.MySql(), StorageName(backend));
        var good = await BackupAsync(config, instance, db, Compression.None, GoodTime);
        Assert.True(good.Succeeded, good.Error);
        var storage = Open(backend);
        var before = await ContentsAsync(storage);
        Assert.Equal(3, before.Count);

        var tools = FakeTools.Create(_scratch.TempDir("fake"), FakeDump.StallsMidStream, postgres: false);
        using var cancel = new CancellationTokenSource();
        var run = BackupAsync(config, instance with { ToolsDir = tools }, db, Compression.None, LaterTime, cancel.Token);
        // Cancel once the upload is under way on the server (parts sent / temp file written).
        await WaitForAsync(async () => (await LeftoversAsync(storage)).Count > 0, run);
        cancel.Cancel();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => run);
        Assert.Equal(before, await ContentsAsync(storage));
        // Ceph may list an aborted upload for a moment when a part was arriving as it was aborted
        // (once past 10 s in a full suite on a loaded machine; it went by itself).
        var clock = Stopwatch.StartNew();
        while ((await LeftoversAsync(storage)).Count > 0 && clock.Elapsed < TimeSpan.FromSeconds(30))
        {
            await Task.Delay(200);
        }
        Assert.Empty(await LeftoversAsync(storage));
        await AssertFakeToolGoneAsync(tools);
    }

    [SkippableTheory]
    [InlineData(Backend.S3)]
    [InlineData(Backend.Sftp)]
    public async Task Cli_interrupted_mid_upload_exits_130_and_leaves_nothing(Backend backend)
    {
        await TestServers.RequireMySqlAsync();
        await RequireAsync(backend);
        var db = await _scratch.NewMySqlDatabaseAsync();
        await MySqlTestDb.ExecAsync(db, "CREATE TABLE t (id INT PRIMARY KEY)", "INSERT INTO t VALUES (1)");
        var (config, instance) = Setup(TestServers.MySql(), StorageName(backend));
        var good = await BackupAsync(config, instance, db, Compression.Zstd, GoodTime);
        Assert.True(good.Succeeded, good.Error);
        var storage = Open(backend);
        var before = await ContentsAsync(storage);

        var tools = FakeTools.Create(_scratch.TempDir("fake"), FakeDump.StallsMidStream, postgres: false);
        var faked = await WriteConfigAsync(config.BackupDir, tools, StorageName(backend));
        using var cli = StartCli(redirect: true, "backup", "-i", "1", "-d", db, "-c", "none", "--config", faked);
        var stderr = cli.StandardError.ReadToEndAsync();
        var stdout = cli.StandardOutput.ReadToEndAsync();
        try
        {
            await WaitForAsync(async () => (await LeftoversAsync(storage)).Count > 0, cli.WaitForExitAsync());
            var kill = await Run.ProgramAsync("kill", ["-TERM", cli.Id.ToString(CultureInfo.InvariantCulture)]);
            Assert.True(kill.ExitCode == 0, kill.ToString());
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
            await cli.WaitForExitAsync(timeout.Token);
        }
        finally
        {
            if (!cli.HasExited)
            {
                cli.Kill();
            }
            KillFakeTool(tools);
        }

        Assert.Equal(130, cli.ExitCode);
        var errors = (await stderr).Split('\n', StringSplitOptions.RemoveEmptyEntries).Where(l => l.Contains("error", StringComparison.Ordinal)).ToList();
        Assert.True(errors.Count == 1, await stderr);
        Assert.Contains("interrupted", errors[0], StringComparison.Ordinal);
        Assert.DoesNotContain("succeeded", await stdout, StringComparison.Ordinal);
        // The upload was aborted (the temp file deleted): nothing is left at all, and the earlier backup is unchanged.
        Assert.Empty(await LeftoversAsync(storage));
        Assert.Equal(before, await ContentsAsync(storage));
    }

    [SkippableTheory]
    [InlineData(Backend.S3)]
    [InlineData(Backend.Sftp)]
    public async Task Cli_killed_mid_upload_leaves_nothing_visible_and_the_next_sweep_removes_its_leftovers(Backend backend)
    {
        await TestServers.RequireMySqlAsync();
        await RequireAsync(backend);
        var db = await _scratch.NewMySqlDatabaseAsync();
        await MySqlTestDb.ExecAsync(db, "CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(100))", "INSERT INTO t VALUES (1, 'good')");
        var (config, instance) = Setup(TestServers.MySql(), StorageName(backend));
        var good = await BackupAsync(config, instance, db, Compression.Zstd, GoodTime);
        Assert.True(good.Succeeded, good.Error);
        var storage = Open(backend);
        var before = await ContentsAsync(storage);

        var tools = FakeTools.Create(_scratch.TempDir("fake"), FakeDump.StallsMidStream, postgres: false);
        var faked = await WriteConfigAsync(config.BackupDir, tools, StorageName(backend));
        using var cli = StartCli(redirect: false, "backup", "-i", "1", "-d", db, "-c", "none", "--config", faked);
        try
        {
            await WaitForAsync(async () => (await LeftoversAsync(storage)).Count > 0, cli.WaitForExitAsync());
        }
        finally
        {
            cli.Kill(entireProcessTree: false);    // SIGKILL: no cleanup runs
            await cli.WaitForExitAsync();
            KillFakeTool(tools);
        }

        // Nothing new is visible: no data file, no .sha256, no manifest; the earlier backup is byte for byte the same.
        Assert.Equal(before, await ContentsAsync(storage));
        // What the killed run held: its lease in the storage, which expires (lock_lease_seconds) and is then taken over.
        await foreach (var lease in storage.ListAsync(".locks", CancellationToken.None))
        {
            Assert.StartsWith(StorageLock.FolderFor(instance.Name, db) + "/", lease.Key, StringComparison.Ordinal);
        }
        var left = await LeftoversAsync(storage);
        Assert.NotEmpty(left);
        // A later run sweeps what is old enough (a day, in production; here: anything).
        Assert.Equal(left.Count, await storage.SweepAbandonedAsync("", DateTimeOffset.UtcNow.AddMinutes(1), CancellationToken.None));
        Assert.Empty(await LeftoversAsync(storage));
        Assert.Equal(before, await ContentsAsync(storage));

        // The CLI (with the real tools) reads the earlier backup from there: verify, then restore under a new name.
        var yaml = await WriteConfigAsync(config.BackupDir, null, StorageName(backend));
        var verify = await Run.CliAsync("verify", "--instance", "1", "--config", yaml);
        Assert.True(verify.ExitCode == 0, verify.ToString());
        Assert.Contains("verify summary: 1 OK, 0 failed", verify.Stdout, StringComparison.Ordinal);
        var target = _scratch.MySqlName();
        var restore = await Run.CliAsync("restore", "--file", good.Location!, "-i", "1", "-t", target, "--config", yaml);
        Assert.True(restore.ExitCode == 0, restore.ToString());
        DbFingerprint.AssertSame(await MySqlTestDb.FingerprintAsync(db), await MySqlTestDb.FingerprintAsync(target), "restored by the CLI");
    }

    /// <summary>
    /// A destination that stops sending in the middle of a backup's file (the connection open,
    /// nothing arriving) fails verify and restore within connect_timeout_seconds, in one line,
    /// and the restore's target is untouched. Before, both hung for as long as the connection
    /// stayed open (no bound on a body's reads).
    /// </summary>
    [SkippableTheory]
    [InlineData(Backend.S3)]
    [InlineData(Backend.Sftp)]
    public async Task A_destination_that_stops_sending_mid_file_fails_verify_and_restore_within_the_connect_timeout(Backend backend)
    {
        await TestServers.RequireMySqlAsync();
        await RequireAsync(backend);
        var db = await BlobDatabaseAsync(4_000);
        var target = await _scratch.NewMySqlDatabaseAsync();
        await MySqlTestDb.ExecAsync(target, "CREATE TABLE kept (id INT PRIMARY KEY)", "INSERT INTO kept VALUES (7)");
        var targetBefore = await MySqlTestDb.FingerprintAsync(target);
        using var proxy = new StallingProxy(backend == Backend.S3 ? TestServers.S3Port : TestServers.SftpPort);
        var config = await WriteConfigAsync(_scratch.TempDir("backups"), null, StorageName(backend),
            s3Port: backend == Backend.S3 ? proxy.Port : null, sftpPort: backend == Backend.Sftp ? proxy.Port : null);
        var backup = await Run.CliAsync("backup", "-i", "1", "-d", db, "--config", config);
        Assert.True(backup.ExitCode == 0, backup.ToString());
        var location = System.Text.RegularExpressions.Regex.Match(backup.Stdout, @"(s3|sftp)://\S+\.sql\.zst").Value;
        Assert.True(location.Length > 0, backup.ToString());
        var expected = $"within {StallLimitSeconds} s (connect_timeout_seconds)";

        foreach (var command in new[] { new[] { "verify", "-i", "1", "-d", db }, ["restore", "-i", "1", "--file", location, "--target", target, "--force"] })
        {
            proxy.StallAfter(256 * 1024);
            var started = Stopwatch.StartNew();
            var run = await Run.CliAsync([.. command, "--config", config]);

            Assert.True(run.ExitCode == 1, run.ToString());
            Assert.True(run.Stderr.Contains(expected, StringComparison.Ordinal), run.ToString());
            Assert.DoesNotContain("   at ", run.ToString(), StringComparison.Ordinal);
            Assert.InRange(started.Elapsed.TotalSeconds, 0, 8 * StallLimitSeconds + 20);
        }
        DbFingerprint.AssertSame(targetBefore, await MySqlTestDb.FingerprintAsync(target), "the restore's target after the stalled restore");
    }

    /// <summary>
    /// S3 connections cut as a manifest is asked for (a network fault, not a bad backup): `list` and
    /// `copy` fail, exit 1, saying the storage could not be read. Before, list showed the good backup
    /// as "NO: manifest unreadable" (exit 0) and copy skipped it: "0 copied, 0 failed", exit 0.
    /// </summary>
    [SkippableFact]
    public async Task A_manifest_read_cut_by_the_network_fails_list_and_copy_instead_of_calling_the_backup_bad()
    {
        await TestServers.RequireMySqlAsync();
        await RequireAsync(Backend.S3);
        var db = await _scratch.NewMySqlDatabaseAsync();
        await MySqlTestDb.ExecAsync(db, "CREATE TABLE t (id INT PRIMARY KEY)", "INSERT INTO t VALUES (1)");
        var backupDir = _scratch.TempDir("backups");
        var direct = await WriteConfigAsync(backupDir, null, "offsite");
        var backup = await Run.CliAsync("backup", "-i", "1", "-d", db, "--config", direct);
        Assert.True(backup.ExitCode == 0, backup.ToString());
        using var proxy = new CuttingProxy(TestServers.S3Port, after: null, on: ".manifest.json HTTP/1.1", serverGetsIt: false);
        var cut = await WriteConfigAsync(backupDir, null, "offsite, local", s3Port: proxy.Port);

        var list = await Run.CliAsync("list", "-i", "1", "-d", db, "--config", cut);
        var copy = await Run.CliAsync("copy", "-i", "1", "-d", db, "--from", "offsite", "--to", "local", "--config", cut);

        Assert.True(proxy.Cuts > 0);
        Assert.True(list.ExitCode == 1, list.ToString());
        Assert.Contains("storage 'offsite' cannot be listed", Assert.Single(Cli.ErrorLines(list)), StringComparison.Ordinal);
        Assert.DoesNotContain("NO:", list.Stdout, StringComparison.Ordinal);
        Assert.True(copy.ExitCode == 1, copy.ToString());
        Assert.Contains("storage 'offsite' cannot be reached", copy.Stderr, StringComparison.Ordinal);
        Assert.Empty(Directory.GetFiles(backupDir, "*.sql.zst*", SearchOption.AllDirectories));
    }

    /// <summary>
    /// S3 answers lost once (tr71): the server created the lease or the manifest, the answer never came, the SDK sent the
    /// request again and was refused (412, the object exists). The object is this run's own: the backup goes on and
    /// completes, and the lock is released. Before, the run called itself "another run" (exit 5) and left its lease,
    /// locking the next runs out for a lease; or deleted its own data file and left a manifest without it.
    /// </summary>
    [SkippableTheory]
    [InlineData(".lease HTTP/1.1")]
    [InlineData(".manifest.json HTTP/1.1")]
    [InlineData(".sql.zst HTTP/1.1")]
    public async Task An_s3_create_whose_answer_was_lost_is_taken_as_this_runs_own(string request)
    {
        await TestServers.RequireMySqlAsync();
        await RequireAsync(Backend.S3);
        var db = await _scratch.NewMySqlDatabaseAsync();
        await MySqlTestDb.ExecAsync(db, "CREATE TABLE t (id INT PRIMARY KEY, v TEXT)", "INSERT INTO t VALUES (1, 'kept'), (2, 'too')");
        using var proxy = new CuttingProxy(TestServers.S3Port, after: null, on: request, serverGetsIt: true, startingWith: "PUT ", maxCuts: 1);
        var config = await WriteConfigAsync(_scratch.TempDir("backups"), null, "offsite", s3Port: proxy.Port);

        var backup = await Run.CliAsync("backup", "-i", "1", "-d", db, "--config", config);
        var verify = await Run.CliAsync("verify", "-i", "1", "-d", db, "--config", config);
        var again = await Run.CliAsync("backup", "-i", "1", "-d", db, "--config", config);

        Assert.Equal(1, proxy.Cuts);
        Assert.True(backup.ExitCode == 0, backup.ToString());
        Assert.True(verify.ExitCode == 0, verify.ToString());
        Assert.Contains("verify summary: 1 OK, 0 failed", verify.Stdout, StringComparison.Ordinal);
        Assert.True(again.ExitCode == 0, again.ToString());
        var storage = Open(Backend.S3);
        await foreach (var entry in storage.ListAsync("", CancellationToken.None))
        {
            Assert.False(entry.Key.StartsWith(".locks/", StringComparison.Ordinal), $"a lease left behind: {entry.Key}");
        }
    }

    /// <summary>
    /// A link that hangs in the middle of an upload: the backup fails within a few answer limits, leaves no temp file
    /// or upload behind, releases its lease, and the next backup runs. SFTP (tr71): not one limit per request after
    /// the first (the connection is given up and the cleanup connects anew); before, the temp file stayed on the
    /// server and the run took six limits. S3 (tr90: a full store), in parts of 5 MiB (a backup in one PutObject sends
    /// its data the same way): before, a request sending more than 1 MiB had no limit but the SDK's five minutes per
    /// attempt, five attempts; now four limits once its last piece is taken.
    /// </summary>
    [SkippableTheory]
    [InlineData(Backend.Sftp, 4_000, 1 << 20, 3 * StallLimitSeconds + 15)]
    [InlineData(Backend.S3, 12_000, 2 << 20, 4 * StallLimitSeconds + 20)]
    public async Task An_upload_that_hangs_fails_within_the_limit_and_leaves_nothing_behind(Backend backend, int rows, long stallAfter, int withinSeconds)
    {
        await TestServers.RequireMySqlAsync();
        await RequireAsync(backend);
        var db = await BlobDatabaseAsync(rows);
        using var proxy = new StallingProxy(backend == Backend.S3 ? TestServers.S3Port : TestServers.SftpPort);
        proxy.StallEachConnectionAfterUpload(stallAfter);
        var config = await WriteConfigAsync(_scratch.TempDir("backups"), null, StorageName(backend),
            s3Port: backend == Backend.S3 ? proxy.Port : null, sftpPort: backend == Backend.Sftp ? proxy.Port : null);

        var started = Stopwatch.StartNew();
        var backup = await Run.CliAsync("backup", "-i", "1", "-d", db, "--config", config);
        var took = started.Elapsed;
        proxy.StallEachConnectionAfterUpload(long.MaxValue);
        var again = await Run.CliAsync("backup", "-i", "1", "-d", db, "--config", config);

        Assert.True(backup.ExitCode == 1, backup.ToString());
        Assert.Contains($"no answer within {StallLimitSeconds} s (connect_timeout_seconds)", backup.ToString(), StringComparison.Ordinal);
        Assert.InRange(took.TotalSeconds, 0, withinSeconds);
        Assert.Empty(await LeftoversAsync(Open(backend)));
        Assert.True(again.ExitCode == 0, again.ToString());
    }

    /// <summary>
    /// The other side of the limit above: a slow link that keeps taking data (parts of 5 MiB at 1 MiB/s, each
    /// longer than the limit, most of it sent from the sockets' buffers after the last read) is never cut off.
    /// </summary>
    [SkippableFact]
    public async Task A_slow_s3_link_that_keeps_taking_data_is_not_cut_off()
    {
        await TestServers.RequireMySqlAsync();
        await RequireAsync(Backend.S3);
        var db = await BlobDatabaseAsync(8_000);
        using var proxy = new StallingProxy(TestServers.S3Port);
        proxy.ThrottleUploads(1 << 20);
        var config = await WriteConfigAsync(_scratch.TempDir("backups"), null, "offsite", s3Port: proxy.Port);

        var backup = await Run.CliAsync("backup", "-i", "1", "-d", db, "--config", config);

        Assert.True(backup.ExitCode == 0, backup.ToString());
    }

    /// <summary>
    /// A tester: `copy --to` while another run's backup was copying the same backup there found its .sha256 without the
    /// data, and told the operator to remove it by hand (exit 1). With that run's lease live in --to, the backup is left
    /// to it (exit 0); without one, the refusal stands.
    /// </summary>
    [SkippableFact]
    public async Task A_copy_leaves_a_backup_another_run_is_writing_there_to_it()
    {
        await TestServers.RequireMySqlAsync();
        await RequireAsync(Backend.S3);
        var db = await _scratch.NewMySqlDatabaseAsync();
        await MySqlTestDb.ExecAsync(db, "CREATE TABLE t (id INT PRIMARY KEY)", "INSERT INTO t VALUES (1)");
        var backupDir = _scratch.TempDir("backups");
        var backup = await Run.CliAsync("backup", "-i", "1", "-d", db, "--config", await WriteConfigAsync(backupDir, null, "local"));
        Assert.True(backup.ExitCode == 0, backup.ToString());
        var file = Path.GetFileName(Ops.DataFilesUnder(backupDir).Single());
        var s3 = Open(Backend.S3);
        var key = $"test-mysql/{file}";
        Assert.True(await s3.TryCreateExclusiveAsync(key + BackupManifest.ChecksumSuffix,
            await File.ReadAllBytesAsync(Path.Combine(backupDir, "test-mysql", file + BackupManifest.ChecksumSuffix)), CancellationToken.None));
        var lease = StorageLock.KeyFor("test-mysql", db, 1);
        Assert.True(await s3.TryCreateExclusiveAsync(lease, System.Text.Encoding.UTF8.GetBytes(
            $"host=elsewhere\npid=7\nrun=other\nstarted={DateTime.UtcNow:yyyy-MM-dd'T'HH:mm:ss'Z'}\nexpires={DateTime.UtcNow.AddMinutes(10):yyyy-MM-dd'T'HH:mm:ss'Z'}\n"),
            CancellationToken.None));
        var config = await WriteConfigAsync(backupDir, null, "local, offsite");

        var busy = await Run.CliAsync("copy", "--to", "offsite", "-i", "1", "--config", config);
        await s3.DeleteAsync(lease, CancellationToken.None);
        var refused = await Run.CliAsync("copy", "--to", "offsite", "-i", "1", "--config", config);

        Assert.True(busy.ExitCode == 0, busy.ToString());
        Assert.Contains("another run is writing this database's backups there now (pid 7 on elsewhere", busy.Stdout, StringComparison.Ordinal);
        Assert.Contains("copy summary: 0 copied to 'offsite', 1 left to another run, 0 failed", busy.Stdout, StringComparison.Ordinal);
        Assert.True(refused.ExitCode == 1, refused.ToString());
        Assert.Contains("without its data file: remove it by hand", refused.Stderr, StringComparison.Ordinal);
    }

    /// <summary>A MariaDB database of one table of <paramref name="rows"/> rows of 1 KiB of random bytes (as big compressed).</summary>
    private async Task<string> BlobDatabaseAsync(int rows)
    {
        var db = await _scratch.NewMySqlDatabaseAsync();
        await MySqlTestDb.ExecAsync(db, "CREATE TABLE t (id INT PRIMARY KEY, b BLOB)",
            string.Create(CultureInfo.InvariantCulture, $"INSERT INTO t SELECT seq, RANDOM_BYTES(1024) FROM seq_1_to_{rows}"));
        return db;
    }

    /// <summary>
    /// A config.yaml for the CLI: instance 1 (MariaDB, named like the in-process runs' instance) backing up to one remote storage.
    /// <paramref name="s3Port"/> and <paramref name="sftpPort"/> put a proxy between the CLI and the servers (and a short
    /// connect_timeout_seconds, the limit of a silent server).
    /// </summary>
    private async Task<string> WriteConfigAsync(string backupDir, string? toolsDir, string storage, int? s3Port = null, int? sftpPort = null)
    {
        var s3 = S3Config;
        var sftp = SftpConfig;
        var path = Path.Combine(_scratch.TempDir("cfg"), "config.yaml");
        await File.WriteAllTextAsync(path, string.Create(CultureInfo.InvariantCulture, $"""
            backup_dir: '{backupDir}'
            timeout_seconds: 300
            connect_timeout_seconds: {((s3Port ?? sftpPort) is null ? 30 : StallLimitSeconds)}
            storage:
              - name: offsite
                type: s3
                endpoint: {(s3Port is { } proxied ? $"http://127.0.0.1:{proxied}" : s3.Endpoint)}
                bucket: {s3.Bucket}
                prefix: '{s3.Prefix}'
                access_key_id: {TestServers.S3AccessKey}
                secret_access_key: {TestServers.S3SecretKey}
                part_size_mb: 5
              - name: box
                type: sftp
                host: {sftp.Host}
                port: {sftpPort ?? sftp.Port}
                user: {sftp.User}
                private_key_file: '{TestServers.SftpKeyFile}'
                host_fingerprint: {TestServers.SftpFingerprint}
                path: '{sftp.Path}'
            instances:
              - id: 1
                name: test-mysql
                dbms: mysql
                host: '{TestServers.MySqlHost}'
                port: {TestServers.MySqlPort}
                user: '{TestServers.MySqlUser}'
                password: '{TestServers.MySqlPassword}'
                {(toolsDir is null ? "" : $"tools_dir: '{toolsDir}'")}
                storage: [{storage}]

            """));
        return path;
    }

    /// <summary>Starts the CLI without waiting for it (to interrupt or kill it); its output is captured when <paramref name="redirect"/>.</summary>
    private static Process StartCli(bool redirect, params string[] arguments)
    {
        var dll = Run.CliDll;
        var start = new ProcessStartInfo(Run.Dotnet)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = redirect,
            RedirectStandardError = redirect,
            UseShellExecute = false,
        };
        start.ArgumentList.Add(dll);
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }
        start.Environment["VYA_BACKUPDB_CONFIG"] = "";
        return Process.Start(start) ?? throw new InvalidOperationException("cannot start the CLI");
    }

    /// <summary>Polls until <paramref name="condition"/> holds; fails if <paramref name="run"/> ends first or 60 s pass.</summary>
    private static async Task WaitForAsync(Func<Task<bool>> condition, Task run)
    {
        var clock = Stopwatch.StartNew();
        while (!await condition())
        {
            if (run.IsCompleted)
            {
                await run;
                Assert.Fail("the backup ended before its upload was under way");
            }
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(60), "the upload did not start within 60 s");
            await Task.Delay(100);
        }
    }

    private static IEnumerable<int> FakeToolPids(string tools)
    {
        var file = Path.Combine(tools, "pids");
        return File.Exists(file)
            ? File.ReadAllText(file).Split(' ', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
                .Select(p => int.Parse(p, CultureInfo.InvariantCulture))
            : [];
    }

    /// <summary>The fake tool of a killed CLI is an orphan: end it (and its sleep).</summary>
    private static void KillFakeTool(string tools)
    {
        foreach (var pid in FakeToolPids(tools))
        {
            try
            {
                using var process = Process.GetProcessById(pid);
                process.Kill();
            }
            catch (Exception e) when (e is ArgumentException or InvalidOperationException or System.ComponentModel.Win32Exception)
            {
            }
        }
    }

    /// <summary>A cancelled backup kills its dump tool and the tool's children.</summary>
    private static async Task AssertFakeToolGoneAsync(string tools)
    {
        foreach (var pid in FakeToolPids(tools))
        {
            for (var i = 0; i < 100 && IsAlive(pid); i++)
            {
                await Task.Delay(100);
            }
            Assert.False(IsAlive(pid), $"process {pid} of the fake dump tool is still running");
        }
    }

    private static bool IsAlive(int pid)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            return stat[(stat.LastIndexOf(')') + 2)..].Split(' ')[0] is not ("Z" or "X");
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException or IOException)
        {
            return false;
        }
    }
}

/// <summary>Records what verify reports.</summary>
public sealed class TestVerifyObserver : IVerifyObserver
{
    public List<VerifyResult> Checked { get; } = [];

    public List<string> Skipped { get; } = [];

    void IVerifyObserver.Checked(VerifyResult result) => Checked.Add(result);

    void IVerifyObserver.Skipped(string file, string reason) => Skipped.Add($"{file}: {reason}");

    void IRestoreObserver.Planned(RestorePlan plan)
    {
    }

    bool IRestoreObserver.Confirm(string question) => false;

    void IRestoreObserver.Started(long fileBytes, Func<long> fileBytesRead)
    {
    }

    void IRestoreObserver.Compared(InventoryComparison comparison)
    {
    }

    void IRestoreObserver.Warning(string message)
    {
    }
}
