using System.Diagnostics;
using System.Globalization;
using System.Text;
using VyaBackupDb.Catalog;
using VyaBackupDb.Config;
using VyaBackupDb.Operations;
using VyaBackupDb.Pipeline;
using VyaBackupDb.Storage;
using VyaBackupDb.Storage.S3;
using VyaBackupDb.Storage.Sftp;

namespace VyaBackupDb.Tests.Integration;

/// <summary>
/// Several runners (hosts, pods) sharing one destination: the lock held in the storage lets one back a
/// database up while the other reports it locked (exit 5) and goes on with the other databases; the
/// lease of a runner that died is taken over with a warning; a runner whose lease was taken stops its
/// backup without leaving anything that looks like a backup. Against the Ceph RADOS Gateway and OpenSSH.
/// </summary>
[Trait("Category", "Integration")]
public sealed class ScaleOutTests : IAsyncLifetime
{
    private const string InstanceName = "it-pg";

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

    private StorageConfig StorageConfig(Backend backend) =>
        backend == Backend.S3 ? TestServers.S3(_remote.S3Prefix, "shared") : TestServers.Sftp(_remote.SftpFolder, "shared", usePassword: true);

    private static Task RequireAsync(Backend backend) => backend == Backend.S3 ? TestServers.RequireS3Async() : TestServers.RequireSftpAsync();

    private IStorage Open(Backend backend) => _remote.Track(StorageSet.Create(StorageConfig(backend)));

    /// <summary>A runner of its own (its own backup_dir, as on another host) whose instance writes only to the shared destination.</summary>
    private (AppConfig Config, InstanceConfig Instance) Runner(Backend backend, string[] databases, TimeSpan? lease = null, string? toolsDir = null)
    {
        var instance = TestServers.Postgres(toolsDir, name: InstanceName) with { Include = databases, Storage = ["shared"] };
        var config = TestServers.Config(_scratch.TempDir("runner"), instance) with { Storages = [StorageConfig(backend)] };
        return (lease is { } l ? config with { LockLease = l } : config, instance);
    }

    private static async Task<BackupReport> BackupAsync(AppConfig config, InstanceConfig instance, TestBackupObserver observer)
    {
        using var storages = new StorageSet(config);
        var operation = new BackupOperation(config, storages, TimeProvider.System, observer);
        return await operation.RunAsync(new BackupRequest([instance], null, Compression.Zstd, DryRun: false), CancellationToken.None);
    }

    private static async Task<List<string>> KeysAsync(IStorage storage, string prefix)
    {
        var keys = new List<string>();
        await foreach (var entry in storage.ListAsync(prefix, CancellationToken.None))
        {
            keys.Add(entry.Key);
        }
        return keys;
    }

    /// <summary>What a runner that died (SIGKILL, a pod evicted) leaves: its lease object, as it wrote it.</summary>
    private static async Task PlantLeaseAsync(IStorage storage, string database, long generation, DateTimeOffset expires)
    {
        var text = $"host=dead-host\npid=4242\nrun=0123456789abcdef\nstarted={expires.AddMinutes(-30):yyyy-MM-dd'T'HH:mm:ss'Z'}\n"
            + $"expires={expires.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture)}\n";
        Assert.True(await storage.TryCreateExclusiveAsync(StorageLock.KeyFor(InstanceName, database, generation), Encoding.UTF8.GetBytes(text), CancellationToken.None));
    }

    private static void SetMode(string path, UnixFileMode mode)
    {
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(path, mode);
        }
    }

    private async Task<string> SmallDatabaseAsync()
    {
        var database = await _scratch.NewPostgresDatabaseAsync();
        await PgTestDb.ExecAsync(database, "CREATE TABLE t AS SELECT g AS id, md5(g::text) AS h FROM generate_series(1, 1000) g");
        return database;
    }

    /// <summary>The YAML of a runner's config, for runs of the CLI; runners given the same <paramref name="backupDir"/> are on one host.</summary>
    private async Task<string> WriteConfigAsync(
        string database, string? toolsDir, Backend backend = Backend.S3, string? backupDir = null, string destinations = "shared")
    {
        var dir = _scratch.TempDir("cfg");
        var path = Path.Combine(dir, "config.yaml");
        var tools = toolsDir is null ? "" : $"\n    tools_dir: '{toolsDir}'";
        var storage = backend == Backend.S3
            ? $"""
                  - name: shared
                    type: s3
                    endpoint: {TestServers.S3Endpoint}
                    bucket: {TestServers.S3Bucket}
                    prefix: '{_remote.S3Prefix}'
                    access_key_id: {TestServers.S3AccessKey}
                    secret_access_key: {TestServers.S3SecretKey}
                """
            : $"""
                  - name: shared
                    type: sftp
                    host: 127.0.0.1
                    port: {TestServers.SftpPort}
                    user: {TestServers.SftpUser}
                    private_key_file: '{TestServers.SftpKeyFile}'
                    host_fingerprint: {TestServers.SftpFingerprint}
                    path: '{_remote.SftpFolder}'
                """;
        await File.WriteAllTextAsync(path, string.Create(CultureInfo.InvariantCulture, $"""
            backup_dir: '{backupDir ?? _scratch.TempDir("runner-backups")}'
            storage:
            {storage}
            instances:
              - id: 2
                name: {InstanceName}
                dbms: postgresql
                host: {TestServers.PgHost}
                port: {TestServers.PgPort}
                user: {TestServers.PgUser}
                password: '{TestServers.PgPassword}'
                include: ['{database}']
                globals: false
                storage: [{destinations}]{tools}

            """));
        SetMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        return path;
    }

    [SkippableFact]
    public async Task Two_runners_sharing_an_s3_bucket_one_backs_up_and_the_other_reports_locked()
    {
        await TestServers.RequirePostgresAsync();
        await TestServers.RequireS3Async();
        var database = await SmallDatabaseAsync();
        var slow = await WriteConfigAsync(database, SlowDumpTools.Create(_scratch.TempDir("slow-tools"), 6));
        var quick = await WriteConfigAsync(database, toolsDir: null);
        var s3 = Open(Backend.S3);
        var locks = StorageLock.FolderFor(InstanceName, database);

        using var first = Run.StartCli("backup", "-i", "2", "-d", database, "--config", slow);
        var stderr = first.StandardError.ReadToEndAsync();
        var clock = Stopwatch.StartNew();
        while ((await KeysAsync(s3, locks)).Count == 0)
        {
            if (first.HasExited || clock.Elapsed > TimeSpan.FromSeconds(60))
            {
                Assert.Fail($"the first runner never took the lock: {await stderr}");
            }
            await Task.Delay(100);
        }

        var second = await Run.CliAsync("backup", "-i", "2", "-d", database, "--config", quick);
        Assert.True(second.ExitCode == 5, second.ToString());
        Assert.Contains("is being backed up by another run", second.Stderr, StringComparison.Ordinal);
        Assert.Contains($"pid {first.Id} on {Environment.MachineName}", second.Stderr, StringComparison.Ordinal);

        await first.WaitForExitAsync().WaitAsync(TimeSpan.FromMinutes(2));
        Assert.True(first.ExitCode == 0, await stderr);
        var backups = (await KeysAsync(s3, InstanceName)).Where(k => k.EndsWith(BackupManifest.Suffix, StringComparison.Ordinal)).ToList();
        Assert.Single(backups);
        Assert.Empty(await KeysAsync(s3, ".locks"));
    }

    [SkippableTheory]
    [InlineData(Backend.S3)]
    [InlineData(Backend.Sftp)]
    public async Task A_dead_runners_expired_lease_is_taken_over_and_a_live_one_locks_only_its_database(Backend backend)
    {
        await TestServers.RequirePostgresAsync();
        await RequireAsync(backend);
        var expired = await SmallDatabaseAsync();
        var held = await SmallDatabaseAsync();
        var storage = Open(backend);
        await PlantLeaseAsync(storage, expired, 41, DateTimeOffset.UtcNow.AddMinutes(-1));
        await PlantLeaseAsync(storage, held, 7, DateTimeOffset.UtcNow.AddMinutes(10));
        var (config, instance) = Runner(backend, [expired, held]);
        var observer = new TestBackupObserver();

        var report = await BackupAsync(config, instance, observer);

        var taken = Assert.Single(report.Results, r => r.Database == expired);
        Assert.True(taken.Succeeded, taken.Error);
        var warning = Assert.Single(observer.Warnings, w => w.Contains("took over the lock", StringComparison.Ordinal));
        Assert.Contains("pid 4242 on dead-host", warning, StringComparison.Ordinal);
        Assert.Empty(await KeysAsync(storage, StorageLock.FolderFor(InstanceName, expired)));

        var locked = Assert.Single(report.Results, r => r.Database == held);
        Assert.True(locked.Locked, locked.Error);
        Assert.Contains("pid 4242 on dead-host", locked.Error, StringComparison.Ordinal);
        Assert.Equal(Errors.ExitCode.PartialFailure, report.ExitCode);
        // The other runner's lease is left as it was; nothing of the locked database was written.
        Assert.Equal([StorageLock.KeyFor(InstanceName, held, 7)], await KeysAsync(storage, StorageLock.FolderFor(InstanceName, held)));
        var written = await KeysAsync(storage, InstanceName);
        Assert.DoesNotContain(written, k => k.Contains(held, StringComparison.Ordinal));
        Assert.Contains(written, k => k.Contains(expired, StringComparison.Ordinal) && k.EndsWith(BackupManifest.Suffix, StringComparison.Ordinal));
    }

    [SkippableTheory]
    [InlineData(Backend.S3)]
    [InlineData(Backend.Sftp)]
    public async Task A_runner_whose_lease_is_taken_stops_its_backup_and_leaves_nothing_that_looks_like_a_backup(Backend backend)
    {
        await TestServers.RequirePostgresAsync();
        await RequireAsync(backend);
        var database = await SmallDatabaseAsync();
        var storage = Open(backend);
        // A short lease, renewed every 2 s, and a dump that takes 8 s: the renewal meets the rival's generation.
        var tools = SlowDumpTools.Create(_scratch.TempDir("slow-tools"), 8);
        var (config, instance) = Runner(backend, [database], lease: TimeSpan.FromSeconds(6), toolsDir: tools);
        var observer = new TestBackupObserver();
        var folder = StorageLock.FolderFor(InstanceName, database);

        var backup = BackupAsync(config, instance, observer);
        var clock = Stopwatch.StartNew();
        // Once the dump runs, the lock is taken (a rival planted while it was being taken made it say "is locked").
        while (!File.Exists(Path.Combine(tools, "started")))
        {
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(30), "the backup never started its dump");
            await Task.Delay(50);
        }
        var leases = await KeysAsync(storage, folder);
        // Another runner thought the lease expired (a clock off, a stalled network) and took the next generation.
        var generation = long.Parse(Path.GetFileName(leases.Max(StringComparer.Ordinal))!.Split('.')[0], CultureInfo.InvariantCulture);
        await PlantLeaseAsync(storage, database, generation + 1, DateTimeOffset.UtcNow.AddMinutes(10));

        var report = await backup.WaitAsync(TimeSpan.FromMinutes(1));

        var result = Assert.Single(report.Results);
        Assert.False(result.Succeeded);
        Assert.Contains("another run took over the lock", result.Error, StringComparison.Ordinal);
        Assert.Empty(await KeysAsync(storage, InstanceName));
        Assert.Equal([StorageLock.KeyFor(InstanceName, database, generation + 1)], await KeysAsync(storage, folder));
    }
    /// <summary>
    /// A run SIGKILLed while it holds the lease: the next run on its host takes the local lock over (the
    /// kernel released the dead run's flock, and its holder file names its run) and, the lease being that
    /// same run's, the lease too, at once, rather than failing the database until the lease expires. A live
    /// lease of any other run is still waited out (exit 5), saying when it frees.
    /// </summary>
    [SkippableTheory]
    [InlineData(Backend.S3)]
    [InlineData(Backend.Sftp)]
    public async Task The_lease_of_a_run_killed_on_this_host_is_taken_over_at_once_but_another_runs_is_waited_out(Backend backend)
    {
        await TestServers.RequirePostgresAsync();
        await RequireAsync(backend);
        var database = await SmallDatabaseAsync();
        var backupDir = _scratch.TempDir("runner-backups");
        var slow = await WriteConfigAsync(database, SlowDumpTools.Create(_scratch.TempDir("slow-tools"), 60), backend, backupDir);
        var quick = await WriteConfigAsync(database, toolsDir: null, backend, backupDir);
        var storage = Open(backend);
        var folder = StorageLock.FolderFor(InstanceName, database);

        // Killed; in place of its lease, the live lease of a run elsewhere: that one is waited out.
        await KillWhileItHoldsTheLeaseAsync(slow, database, storage, folder);
        foreach (var key in await KeysAsync(storage, folder))
        {
            await storage.DeleteAsync(key, CancellationToken.None);
        }
        var expires = DateTimeOffset.UtcNow.AddMinutes(10);
        await PlantLeaseAsync(storage, database, 1, expires);
        var refused = await Run.CliAsync("backup", "-i", "2", "-d", database, "--config", quick);
        Assert.True(refused.ExitCode == 5, refused.ToString());
        var locked = Assert.Single(refused.Stderr.Split('\n'), l => l.Contains("is being backed up by another run", StringComparison.Ordinal));
        Assert.Contains("pid 4242 on dead-host", locked, StringComparison.Ordinal);
        Assert.Contains($"the lock frees when that run ends, or at {expires.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture)} if it died", locked, StringComparison.Ordinal);
        Assert.Equal([StorageLock.KeyFor(InstanceName, database, 1)], await KeysAsync(storage, folder));
        await storage.DeleteAsync(StorageLock.KeyFor(InstanceName, database, 1), CancellationToken.None);

        // Killed, its lease left as it was: the next run takes it over at once, and says whose it was. Also when a run
        // in between took the local lock over and ended before the lease (here locked out by a run elsewhere, which
        // then ends): it forgot the dead run, whose lease was then waited out (exit 5 for up to its 10 minutes).
        var dead = await KillWhileItHoldsTheLeaseAsync(slow, database, storage, folder);
        var deadLease = Assert.Single(await KeysAsync(storage, folder));
        var elsewhere = StorageLock.KeyFor(InstanceName, database, 7);
        await PlantLeaseAsync(storage, database, 7, DateTimeOffset.UtcNow.AddMinutes(10));
        var between = await Run.CliAsync("backup", "-i", "2", "-d", database, "--config", quick);
        Assert.True(between.ExitCode == 5, between.ToString());
        Assert.Contains("pid 4242 on dead-host", between.Stderr, StringComparison.Ordinal);
        await storage.DeleteAsync(elsewhere, CancellationToken.None);
        Assert.Equal([deadLease], await KeysAsync(storage, folder));
        var next = await Run.CliAsync("backup", "-i", "2", "-d", database, "--config", quick);
        Assert.True(next.ExitCode == 0, next.ToString());
        var warning = Assert.Single(next.Stderr.Split('\n'), l => l.Contains("warning:", StringComparison.Ordinal)
            && l.Contains(storage.Describe(folder), StringComparison.Ordinal));
        Assert.Contains($"pid {dead} on {Environment.MachineName}", warning, StringComparison.Ordinal);
        Assert.Contains("at once", warning, StringComparison.Ordinal);
        Assert.Contains("ended on this host without releasing it", warning, StringComparison.Ordinal);
        Assert.Empty(await KeysAsync(storage, folder));
        Assert.Single(await KeysAsync(storage, InstanceName), k => k.EndsWith(BackupManifest.Suffix, StringComparison.Ordinal));
    }

    /// <summary>
    /// A tester (tr104): a backup to [local, s3] SIGKILLed before its S3 copy left its lease live there, and `copy --to s3`
    /// right after said another run was writing there (naming the dead pid), copied nothing and exited 0, for the whole
    /// lease. The lease of a run that ended on this host is taken over at once, as by a backup, and the copy made.
    /// </summary>
    [SkippableFact]
    public async Task A_copy_takes_over_at_once_the_lease_of_a_run_killed_on_this_host_and_copies()
    {
        await TestServers.RequirePostgresAsync();
        await RequireAsync(Backend.S3);
        var database = await SmallDatabaseAsync();
        var backupDir = _scratch.TempDir("runner-backups");
        var local = await WriteConfigAsync(database, toolsDir: null, Backend.S3, backupDir, "local");
        var slow = await WriteConfigAsync(database, SlowDumpTools.Create(_scratch.TempDir("slow-tools"), 60), Backend.S3, backupDir, "local, shared");
        var both = await WriteConfigAsync(database, toolsDir: null, Backend.S3, backupDir, "local, shared");
        var storage = Open(Backend.S3);
        var folder = StorageLock.FolderFor(InstanceName, database);
        var backup = await Run.CliAsync("backup", "-i", "2", "-d", database, "--config", local);
        Assert.True(backup.ExitCode == 0, backup.ToString());
        var dead = await KillWhileItHoldsTheLeaseAsync(slow, database, storage, folder);

        var copy = await Run.CliAsync("copy", "--to", "shared", "-i", "2", "--config", both);

        Assert.True(copy.ExitCode == 0, copy.ToString());
        Assert.True(copy.Stdout.Contains("copy summary: 1 copied to 'shared', 0 failed", StringComparison.Ordinal), copy.ToString());
        var warning = Assert.Single(copy.Stderr.Split('\n'), l => l.Contains("warning:", StringComparison.Ordinal)
            && l.Contains(storage.Describe(folder), StringComparison.Ordinal));
        Assert.Contains($"pid {dead} on {Environment.MachineName}", warning, StringComparison.Ordinal);
        Assert.Contains("ended on this host without releasing it", warning, StringComparison.Ordinal);
        Assert.Empty(await KeysAsync(storage, folder));
        Assert.Single(await KeysAsync(storage, InstanceName), k => k.EndsWith(BackupManifest.Suffix, StringComparison.Ordinal));
    }

    /// <summary>Starts a backup whose dump stalls, SIGKILLs it (and its dump) once its lease is in the storage; returns its pid.</summary>
    private static async Task<int> KillWhileItHoldsTheLeaseAsync(string config, string database, IStorage storage, string folder)
    {
        using var cli = Run.StartCli("backup", "-i", "2", "-d", database, "--config", config);
        var stderr = cli.StandardError.ReadToEndAsync();
        try
        {
            var clock = Stopwatch.StartNew();
            while ((await KeysAsync(storage, folder)).Count == 0)
            {
                if (cli.HasExited || clock.Elapsed > TimeSpan.FromSeconds(60))
                {
                    Assert.Fail($"the backup never took the lock: {await stderr}");
                }
                await Task.Delay(50);
            }
        }
        finally
        {
            cli.Kill(entireProcessTree: true);
            await cli.WaitForExitAsync();
        }
        return cli.Id;
    }
}
