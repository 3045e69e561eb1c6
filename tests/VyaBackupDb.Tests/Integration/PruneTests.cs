using VyaBackupDb.Catalog;
using VyaBackupDb.Config;
using VyaBackupDb.Errors;
using VyaBackupDb.Operations;
using VyaBackupDb.Pipeline;
using VyaBackupDb.Retention;
using VyaBackupDb.Storage;
using static VyaBackupDb.Tests.Integration.FabricatedBackups;

namespace VyaBackupDb.Tests.Integration;

/// <summary>Records what a prune reports.</summary>
public sealed class TestPruneObserver : IPruneObserver
{
    public List<InstanceConfig> NoPolicy { get; } = [];

    public List<PruneResult> Planned { get; } = [];

    public List<PruneDeletion> Deleted { get; } = [];

    void IPruneObserver.NoPolicy(InstanceConfig instance) => NoPolicy.Add(instance);

    void IPruneObserver.Planned(PruneResult planned, Func<string, string> describe) => Planned.Add(planned);

    void IPruneObserver.Deleted(PruneDeletion deletion, Func<string, string> describe) => Deleted.Add(deletion);

    public List<PruneResult> Unreachable { get; } = [];

    void IPruneObserver.Unreachable(PruneResult result) => Unreachable.Add(result);
}

/// <summary>
/// Prune over fabricated backups (files and manifests in a temp backup_dir, times in their names):
/// exactly the planned backups are deleted, each manifest before its data, and nothing else:
/// not other folders, not files that do not parse as this instance's backups of that database.
/// </summary>
[Trait("Category", "Integration")]
public sealed class PruneTests : IAsyncLifetime
{
    private static readonly DateTimeOffset Now = new(2026, 1, 20, 12, 0, 0, TimeSpan.Zero);

    private readonly Scratch _scratch = new();
    private readonly InstanceConfig _mysql = TestServers.MySql(name: "it-mysql") with { Retention = new RetentionPolicy { KeepLast = 2 } };

    public Task InitializeAsync() => _scratch.InitializeAsync();

    public Task DisposeAsync() => _scratch.DisposeAsync();

    /// <summary>
    /// dns_db: five complete backups (Jan 9..13), one incomplete (Jan 1), one of the old tool's
    /// (legacy name, no manifest); dns_db2: three; plus decoys that must survive whatever happens.
    /// </summary>
    private (string BackupDir, List<string> DnsDb, List<string> DnsDb2, List<string> Untouchable) Fabricate(InstanceConfig instance)
    {
        var dir = _scratch.TempDir("prune");
        var dnsDb = new List<string>();
        for (var day = 13; day >= 9; day--)
        {
            dnsDb.Add(Create(dir, instance, "dns_db", Utc($"202601{day:00}_155440"), day % 2 == 0 ? Compression.Zstd : Compression.Gzip));
        }
        var dnsDb2 = new List<string>();
        for (var day = 12; day >= 10; day--)
        {
            dnsDb2.Add(Create(dir, instance, "dns_db2", Utc($"202601{day:00}_020000")));
        }
        var incomplete = Create(dir, instance, "dns_db", Utc("20260101_000000"), manifest: false);
        var other = TestServers.MySql(name: "it-mysql2", id: 7);
        var untouchable = new List<string>
        {
            incomplete, incomplete + BackupManifest.ChecksumSuffix,
            Decoy(dir, "it-mysql/dns_db_20250101_000000.sql.gz", "-- old tool's backup\n"),
            Decoy(dir, "it-mysql/notes.txt"),
            Decoy(dir, "it-mysql/20260113_155440_mysql_dns_db.zip.bak"),
            Decoy(dir, "it-mysql/20260108_155440_mysql_dns_db.sql.orig"),
            Decoy(dir, "it-mysql/x20260108_155440_mysql_dns_db.sql"),
            Decoy(dir, "it-mysql/.hidden"),
            // The same names one folder down, in another instance's folder, and under another dbms.
            Create(dir, instance with { Name = "it-mysql/old" }, "dns_db", Utc("20260102_000000")),
            Create(dir, other, "dns_db", Utc("20260102_000000")),
            Create(dir, other with { Name = "it-mysql-2" }, "dns_db", Utc("20260102_000000")),
            Create(dir, TestServers.Postgres(name: "it-mysql"), "dns_db", Utc("20260102_000000")),
        };
        untouchable.AddRange(Ops.FilesUnder(dir).Where(f => !f.StartsWith("it-mysql/", StringComparison.Ordinal) || f.StartsWith("it-mysql/old/", StringComparison.Ordinal)
            || f.Contains("postgresql", StringComparison.Ordinal)));
        return (dir, dnsDb, dnsDb2, [.. untouchable.Distinct().Order(StringComparer.Ordinal)]);
    }

    private static IEnumerable<string> FilesOf(string key) => [BackupManifest.KeyFor(key), key + BackupManifest.ChecksumSuffix, key];

    /// <summary>What prune deletes of a backup, in order: its verify record last, whether there or not (another run's verify may write one meanwhile).</summary>
    private static IEnumerable<string> DeletedOf(string key) => [.. FilesOf(key), VerifyRecord.KeyFor(key)];

    private static async Task<(PruneReport Report, TestPruneObserver Observer)> PruneAsync(
        string backupDir, IStorage storage, bool dryRun, params PruneTarget[] targets)
    {
        var observer = new TestPruneObserver();
        var config = TestServers.Config(backupDir, [.. targets.Select(t => t.Instance)]);
        var operation = new PruneOperation(config, _ => [new NamedStorage("local", storage)], new FixedTime(Now), observer);
        return (await operation.RunAsync(new PruneRequest(targets, dryRun), CancellationToken.None), observer);
    }

    [Fact]
    public async Task Prune_deletes_exactly_the_planned_backups_manifest_first_and_nothing_else()
    {
        var (dir, dnsDb, dnsDb2, untouchable) = Fabricate(_mysql);
        var before = Snapshot(dir);
        var storage = RecordingStorage.Local(dir);

        var (report, observer) = await PruneAsync(dir, storage, dryRun: false, new PruneTarget(_mysql));

        Assert.Equal(ExitCode.Success, report.ExitCode);
        // keep_last 2 per database: dns_db Jan 11..9 and dns_db2 Jan 10 go, in plan order, each manifest first.
        string[] removed = [dnsDb[2], dnsDb[3], dnsDb[4], dnsDb2[2]];
        Assert.Equal(removed.SelectMany(DeletedOf), storage.Deleted);
        var after = Snapshot(dir);
        // Besides: the record of the digest check of each database's newest backup, made before anything was deleted.
        Assert.Equal(new[] { VerifyRecord.KeyFor(dnsDb[0]), VerifyRecord.KeyFor(dnsDb2[0]) }.Order(StringComparer.Ordinal),
            after.Keys.Where(k => k.EndsWith(VerifyRecord.Suffix, StringComparison.Ordinal)).Order(StringComparer.Ordinal));
        after = after.Where(f => !f.Key.EndsWith(VerifyRecord.Suffix, StringComparison.Ordinal)).ToDictionary();
        Assert.Equal(before.Keys.Except(removed.SelectMany(DeletedOf)).Order(StringComparer.Ordinal), after.Keys);
        Assert.All(after, f => Assert.Equal(before[f.Key], f.Value));
        Assert.All(untouchable, f => Assert.True(after.ContainsKey(f), $"prune touched {f}"));

        var result = Assert.Single(report.Results);
        Assert.Equal(removed, result.Deletions.Select(d => d.Decision.Backup.Key));
        Assert.All(result.Deletions, d => Assert.Null(d.Error));
        Assert.Equal(removed, observer.Deleted.Select(d => d.Decision.Backup.Key));
        var plan = Assert.Single(observer.Planned).Plan;
        // The incomplete one and the old tool's file are in the plan, kept, with their reason.
        Assert.Equal(RetentionPlanner.Incomplete,
            Assert.Single(plan.Decisions, d => d.Backup.TimestampUtc == Utc("20260101_000000")).Reasons.Single());
        Assert.Contains(plan.Decisions, d => d.Backup.Key == "it-mysql/dns_db_20250101_000000.sql.gz" && d.Keep);
        Assert.Equal(10, plan.Decisions.Count);
        Assert.All(plan.Decisions, d => Assert.NotEmpty(d.Reasons));
    }

    [Fact]
    public async Task Dry_run_deletes_nothing_and_reports_the_same_plan()
    {
        var (dir, _, _, _) = Fabricate(_mysql);
        var before = Snapshot(dir);
        var storage = RecordingStorage.Local(dir);

        var (report, observer) = await PruneAsync(dir, storage, dryRun: true, new PruneTarget(_mysql));

        Assert.Equal(ExitCode.Success, report.ExitCode);
        Assert.Empty(storage.Deleted);
        Assert.Equal(before, Snapshot(dir));
        var planned = Assert.Single(observer.Planned);
        Assert.True(planned.DryRun);
        Assert.Equal(4, planned.Plan.Removed.Count());
        Assert.Empty(observer.Deleted);
    }

    [Fact]
    public async Task Without_a_policy_nothing_is_touched()
    {
        var instance = _mysql with { Retention = null };
        var (dir, _, _, _) = Fabricate(instance);
        var before = Snapshot(dir);
        var storage = RecordingStorage.Local(dir);

        var (report, observer) = await PruneAsync(dir, storage, dryRun: false, new PruneTarget(instance));

        Assert.Equal(ExitCode.Success, report.ExitCode);
        Assert.Equal(instance, Assert.Single(observer.NoPolicy));
        Assert.Empty(observer.Planned);
        Assert.Empty(storage.Deleted);
        Assert.Equal(before, Snapshot(dir));
    }

    [Fact]
    public async Task The_newest_complete_backup_survives_a_policy_of_zeros()
    {
        var instance = _mysql with
        {
            Retention = new RetentionPolicy { KeepLast = 0, KeepDaily = 0, KeepWeekly = 0, KeepMonthly = 0, KeepYearly = 0, KeepHourly = 0 },
        };
        var (dir, dnsDb, dnsDb2, _) = Fabricate(instance);
        var storage = RecordingStorage.Local(dir);

        await PruneAsync(dir, storage, dryRun: false, new PruneTarget(instance));

        var left = Ops.FilesUnder(dir);
        Assert.Contains(dnsDb[0], left);
        Assert.Contains(BackupManifest.KeyFor(dnsDb[0]), left);
        Assert.Contains(dnsDb2[0], left);
        Assert.All(dnsDb.Skip(1).Concat(dnsDb2.Skip(1)), k => Assert.DoesNotContain(k, left));
    }

    [Fact]
    public async Task Only_the_databases_asked_for_are_pruned()
    {
        var (dir, dnsDb, dnsDb2, _) = Fabricate(_mysql);
        var storage = RecordingStorage.Local(dir);

        await PruneAsync(dir, storage, dryRun: false, new PruneTarget(_mysql, new HashSet<string>(StringComparer.Ordinal) { "dns_db2" }));

        Assert.Equal(DeletedOf(dnsDb2[2]), storage.Deleted);
        Assert.All(dnsDb, k => Assert.Contains(k, Ops.FilesUnder(dir)));
    }

    [Fact]
    public async Task A_manifest_that_cannot_be_deleted_leaves_that_backup_whole_and_fails_the_run()
    {
        var (dir, dnsDb, _, _) = Fabricate(_mysql);
        var storage = RecordingStorage.Local(dir);
        storage.FailingDeletes.Add(BackupManifest.KeyFor(dnsDb[3]));

        var (report, _) = await PruneAsync(dir, storage, dryRun: false, new PruneTarget(_mysql, new HashSet<string>(StringComparer.Ordinal) { "dns_db" }));

        Assert.Equal(ExitCode.Failed, report.ExitCode);
        var failed = Assert.Single(report.Results.Single().Deletions, d => d.Error is not null);
        Assert.Equal(dnsDb[3], failed.Decision.Backup.Key);
        Assert.Contains("the backup is unchanged", failed.Error, StringComparison.Ordinal);
        Assert.Equal(DeletedOf(dnsDb[2]).Concat(DeletedOf(dnsDb[4])), storage.Deleted);
        Assert.All(FilesOf(dnsDb[3]), f => Assert.Contains(f, Ops.FilesUnder(dir)));
    }

    [Fact]
    public async Task A_data_file_that_cannot_be_deleted_after_its_manifest_is_reported_for_removal_by_hand()
    {
        var (dir, dnsDb, _, _) = Fabricate(_mysql);
        var storage = RecordingStorage.Local(dir);
        storage.FailingDeletes.Add(dnsDb[2]);

        var (report, _) = await PruneAsync(dir, storage, dryRun: false, new PruneTarget(_mysql, new HashSet<string>(StringComparer.Ordinal) { "dns_db" }));

        Assert.Equal(ExitCode.Failed, report.ExitCode);
        var failed = Assert.Single(report.Results.Single().Deletions, d => d.Error is not null);
        Assert.Contains("by hand", failed.Error, StringComparison.Ordinal);
        Assert.Equal([BackupManifest.KeyFor(dnsDb[2]), dnsDb[2] + BackupManifest.ChecksumSuffix], storage.Deleted.Take(2));
        Assert.Contains(dnsDb[2], Ops.FilesUnder(dir));
        // Now incomplete: a second prune leaves it alone.
        var again = RecordingStorage.Local(dir);
        await PruneAsync(dir, again, dryRun: false, new PruneTarget(_mysql));
        Assert.DoesNotContain(dnsDb[2], again.Deleted);
        Assert.Contains(dnsDb[2], Ops.FilesUnder(dir));
    }

    [Fact]
    public async Task A_truncated_newest_backup_does_not_cost_the_newest_good_one()
    {
        var instance = _mysql with { Retention = new RetentionPolicy { KeepLast = 1 } };
        var dir = _scratch.TempDir("prune");
        var good = Create(dir, instance, "db", Utc("20260112_000000"));
        var older = Create(dir, instance, "db", Utc("20260111_000000"));
        var truncated = Create(dir, instance, "db", Utc("20260113_000000"), recordedSize: 1_000_000);
        var storage = RecordingStorage.Local(dir);

        await PruneAsync(dir, storage, dryRun: false, new PruneTarget(instance));

        Assert.Equal(DeletedOf(older), storage.Deleted);
        Assert.Contains(good, Ops.FilesUnder(dir));
        Assert.Contains(truncated, Ops.FilesUnder(dir));
    }

    [Fact]
    public async Task A_manifest_that_is_not_the_files_own_makes_the_file_untouchable()
    {
        var instance = _mysql with { Retention = new RetentionPolicy { KeepLast = 0 } };
        var dir = _scratch.TempDir("prune");
        Create(dir, instance, "db", Utc("20260113_000000"));
        var foreign = Create(dir, instance, "db", Utc("20260112_000000"));
        var garbled = Create(dir, instance, "db", Utc("20260111_000000"));
        var other = Create(dir, instance, "other", Utc("20260110_000000"));
        // The manifest of another database's backup, copied beside this file; and a garbled one.
        File.Copy(Path.Combine(dir, BackupManifest.KeyFor(other)), Path.Combine(dir, BackupManifest.KeyFor(foreign)), overwrite: true);
        await File.WriteAllTextAsync(Path.Combine(dir, BackupManifest.KeyFor(garbled)), "{ not json");
        var storage = RecordingStorage.Local(dir);

        var (_, observer) = await PruneAsync(dir, storage, dryRun: false, new PruneTarget(instance));

        Assert.Empty(storage.Deleted);
        var decisions = observer.Planned.Single().Plan.Decisions;
        Assert.All(decisions.Where(d => d.Backup.Key == foreign || d.Backup.Key == garbled),
            d => Assert.Equal(RetentionPlanner.BadManifest, d.Reasons.Single()));
    }

    [Fact]
    public void Backup_prune_targets_what_was_backed_up_and_leaves_out_what_failed()
    {
        var pg = TestServers.Postgres();
        BackupItemResult Ok(InstanceConfig i, string db) => new(i, db, "x", null, 1, 1, TimeSpan.Zero);
        BackupItemResult Bad(InstanceConfig i, string db) => new(i, db, null, "boom", 0, 0, TimeSpan.Zero);

        var (targets, skipped) = PruneOperation.TargetsAfter(new BackupReport([Ok(_mysql, "a"), Ok(_mysql, "b"), Ok(pg, "c")], TimeSpan.Zero));

        Assert.Equal([(_mysql.Id, new[] { "a", "b" }), (pg.Id, new[] { "c" })],
            targets.Select(t => (t.Instance.Id, t.Databases!.Order(StringComparer.Ordinal).ToArray())));
        Assert.All(targets, t => Assert.Null(t.Storages));
        Assert.Empty(skipped);

        // One server down: the other is still pruned.
        (targets, skipped) = PruneOperation.TargetsAfter(new BackupReport([Ok(_mysql, "a"), Bad(pg, "*")], TimeSpan.Zero));
        Assert.Equal(_mysql.Id, Assert.Single(targets).Instance.Id);
        Assert.Contains("its backup failed", Assert.Single(skipped), StringComparison.Ordinal);

        // A failed or locked database is left out, its siblings are pruned.
        (targets, skipped) = PruneOperation.TargetsAfter(new BackupReport(
            [Ok(_mysql, "a"), Bad(_mysql, "b"), Bad(_mysql, "c") with { Locked = true }], TimeSpan.Zero));
        Assert.Equal(["a"], Assert.Single(targets).Databases!);
        Assert.Equal(2, skipped.Count);

        // Backed up, but a copy failed: pruned only where the backup is.
        (targets, skipped) = PruneOperation.TargetsAfter(new BackupReport(
            [Ok(_mysql, "a") with { Error = "copy failed", Destinations = ["local"], FailedDestinations = ["vault"] }], TimeSpan.Zero));
        Assert.Equal(["local"], Assert.Single(targets).Storages!);
        Assert.Contains("'vault'", Assert.Single(skipped), StringComparison.Ordinal);

        Assert.Empty(PruneOperation.TargetsAfter(new BackupReport([], TimeSpan.Zero)).Targets);
    }
}
