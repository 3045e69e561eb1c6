using VyaBackupDb.Catalog;
using VyaBackupDb.Config;
using VyaBackupDb.Pipeline;
using VyaBackupDb.Retention;
using VyaBackupDb.Storage.Local;
using Xunit;
using static VyaBackupDb.Tests.Integration.FabricatedBackups;

namespace VyaBackupDb.Tests.Integration;

/// <summary>
/// Two backups of one database in the same second under different names (the compression, encryption or engine
/// changed between the runs) were told apart by name alone: prune kept the older and removed the newer, and
/// verify --latest checked the older (tr98). A backup now waits for a second no backup of its database has.
/// </summary>
public sealed class SameSecondBackupTests : IAsyncLifetime
{
    private readonly Scratch _scratch = new();

    public Task InitializeAsync() => _scratch.InitializeAsync();

    public Task DisposeAsync() => _scratch.DisposeAsync();

    /// <summary>The system clock set back to <paramref name="start"/> when it is made; it moves as the system's does.</summary>
    private sealed class ClockFrom(DateTimeOffset start) : TimeProvider
    {
        private readonly TimeSpan _offset = start - System.GetUtcNow();

        public override DateTimeOffset GetUtcNow() => System.GetUtcNow() + _offset;
    }

    [SkippableFact]
    public async Task A_backup_in_the_second_of_another_backup_of_its_database_takes_the_next_free_second_and_prune_keeps_it()
    {
        await TestServers.RequireMySqlAsync();
        var database = await _scratch.NewMySqlDatabaseAsync();
        await MySqlTestDb.ExecAsync(database, "CREATE TABLE t (id int PRIMARY KEY)", "INSERT INTO t VALUES (1)");
        var instance = TestServers.MySql();
        var backupDir = _scratch.TempDir("backups");
        // Yesterday, to the second: backups of the first two seconds there, uncompressed (.sql sorts before .sql.zst).
        var start = DateTime.UtcNow.AddDays(-1);
        start = new DateTime(start.Year, start.Month, start.Day, start.Hour, start.Minute, start.Second, DateTimeKind.Utc);
        var earlier = new[] { Create(backupDir, instance, database, start), Create(backupDir, instance, database, start.AddSeconds(1)) };

        var result = await Ops.BackupAsync(instance, database, Compression.Zstd, backupDir, new ClockFrom(start));

        Assert.True(result.Succeeded, result.Error);
        var stems = Directory.GetFiles(Path.Combine(backupDir, BackupName.Encode(instance.Name)), "*.manifest.json")
            .Select(f => BackupName.KeyStem(Path.GetFileName(f))).ToList();
        Assert.Equal(3, stems.Distinct().Count());
        var catalog = await BackupCatalog.InspectAsync(new LocalStorage(backupDir), instance, CancellationToken.None);
        var plan = RetentionPlanner.Plan(
            [.. catalog.Select(b => new BackupRef(b.Entry.Key, instance.Name, database, b.Entry.Name.TimestampUtc, b.Status))],
            new RetentionPolicy { KeepLast = 1 }, DateTimeOffset.UtcNow);
        var kept = Assert.Single(plan.Decisions, d => d.Keep);
        Assert.DoesNotContain(kept.Backup.Key, earlier);
    }
}
