using System.Diagnostics;
using Microsoft.Extensions.Time.Testing;
using VyaBackupDb.Errors;
using VyaBackupDb.Operations;
using VyaBackupDb.Storage;
using VyaBackupDb.Tests.StorageContract;

namespace VyaBackupDb.Tests.Unit;

/// <summary>
/// The lease protocol on a storage in memory (the real servers: ScaleOutTests): runners on separate hosts
/// racing for one database get one lock between them; the holder renews its lease (a new generation, the
/// old one deleted) as the clock moves; the release leaves nothing.
/// </summary>
public sealed class StorageLockTests : IDisposable
{
    private readonly List<string> _dirs = [];

    /// <summary>A backup_dir of its own: as on another host (the local flock is not what is under test).</summary>
    private string HostDir()
    {
        var dir = Directory.CreateTempSubdirectory("vya-lock-host-").FullName;
        _dirs.Add(dir);
        return dir;
    }

    public void Dispose()
    {
        foreach (var dir in _dirs)
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    private static async Task<List<string>> KeysAsync(IStorage storage)
    {
        var keys = new List<string>();
        await foreach (var entry in storage.ListAsync(".locks", CancellationToken.None))
        {
            keys.Add(entry.Key);
        }
        return keys;
    }

    [Fact]
    public async Task Of_runners_racing_for_one_database_exactly_one_holds_it_and_the_others_are_told_locked()
    {
        var storage = new MemoryStorage();
        using var lost = new CancellationTokenSource();
        var attempts = Enumerable.Range(0, 8).Select(_ => HostDir()).Select(dir => Task.Run(async () =>
        {
            try
            {
                return await StorageLock.AcquireAsync(dir, "main", "shop", [storage], TimeSpan.FromMinutes(10), TimeProvider.System, _ => { }, lost,
                    CancellationToken.None);
            }
            catch (LockedException)
            {
                return null;
            }
        })).ToList();

        var held = Assert.Single(await Task.WhenAll(attempts), l => l is not null)!;
        Assert.Single(await KeysAsync(storage));
        await held.DisposeAsync();
        Assert.Empty(await KeysAsync(storage));
        Assert.False(lost.IsCancellationRequested);
    }

    [Fact]
    public async Task The_holder_renews_its_lease_as_time_passes_and_a_second_runner_stays_locked_out()
    {
        var storage = new MemoryStorage();
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        using var lost = new CancellationTokenSource();
        var lease = TimeSpan.FromSeconds(30);
        await using var held = await StorageLock.AcquireAsync(HostDir(), "main", "shop", [storage], lease, time, _ => { }, lost, CancellationToken.None);
        Assert.Equal([StorageLock.KeyFor("main", "shop", 1)], await KeysAsync(storage));

        // Past the first lease: renewed twice meanwhile, so still held.
        for (var generation = 2; generation <= 4; generation++)
        {
            time.Advance(lease / 3);
            var expected = StorageLock.KeyFor("main", "shop", generation);
            var clock = Stopwatch.StartNew();
            while (!(await KeysAsync(storage)).SequenceEqual([expected]))
            {
                Assert.True(clock.Elapsed < TimeSpan.FromSeconds(10), $"not renewed to generation {generation}: {string.Join(", ", await KeysAsync(storage))}");
                await Task.Delay(10);
            }
        }
        var second = await Assert.ThrowsAsync<LockedException>(() =>
            StorageLock.AcquireAsync(HostDir(), "main", "shop", [storage], lease, time, _ => { }, lost, CancellationToken.None));
        Assert.Contains($"pid {Environment.ProcessId} on {Environment.MachineName}", second.Message, StringComparison.Ordinal);
        Assert.Null(held.Lost);
        Assert.False(lost.IsCancellationRequested);
    }
    /// <summary>
    /// A lease that claims to run until 2099 (planted, or written by a clock far ahead) holds the database for the longest
    /// lease there can be from when it was written, not until then (tr71: locked out until 2099).
    /// </summary>
    [Fact]
    public async Task A_lease_expiring_in_2099_holds_for_a_day_from_when_it_was_written()
    {
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 11, 29, 10, 0, 0, TimeSpan.Zero));
        var storage = new MemoryStorage(time);
        await storage.TryCreateExclusiveAsync(StorageLock.KeyFor("main", "shop", 1),
            "host=elsewhere\npid=7\nrun=planted\nstarted=2026-11-29T10:00:00Z\nexpires=2099-01-01T00:00:00Z\n"u8.ToArray(), CancellationToken.None);
        using var lost = new CancellationTokenSource();

        time.Advance(TimeSpan.FromHours(23));
        var locked = await Assert.ThrowsAsync<LockedException>(() =>
            StorageLock.AcquireAsync(HostDir(), "main", "shop", [storage], StorageLock.DefaultLease, time, _ => { }, lost, CancellationToken.None));
        Assert.Contains("or at 2026-11-30T10:00:00Z if it died", locked.Message, StringComparison.Ordinal);

        time.Advance(TimeSpan.FromHours(1));
        var warnings = new List<string>();
        await using var held = await StorageLock.AcquireAsync(HostDir(), "main", "shop", [storage], StorageLock.DefaultLease, time, warnings.Add, lost,
            CancellationToken.None);
        Assert.Contains("took over the lock", Assert.Single(warnings), StringComparison.Ordinal);
        Assert.Equal([StorageLock.KeyFor("main", "shop", 2)], await KeysAsync(storage));
    }

    /// <summary>A lease that cannot be read as one is named as such (a tester: "another run (pid ? on ?, run ?, since ?)").</summary>
    [Fact]
    public async Task A_lease_that_cannot_be_read_is_named_as_such_while_it_holds()
    {
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 11, 29, 10, 0, 0, TimeSpan.Zero));
        var storage = new MemoryStorage(time);
        await storage.TryCreateExclusiveAsync(StorageLock.KeyFor("main", "shop", 1), "garbage"u8.ToArray(), CancellationToken.None);
        using var lost = new CancellationTokenSource();

        var locked = await Assert.ThrowsAsync<LockedException>(() =>
            StorageLock.AcquireAsync(HostDir(), "main", "shop", [storage], StorageLock.DefaultLease, time, _ => { }, lost, CancellationToken.None));

        Assert.Contains("(a lease that cannot be read as one (empty, damaged or over 65536 bytes), written 2026-11-29T10:00:00Z: held for a lease from then)",
            locked.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("pid ?", locked.Message, StringComparison.Ordinal);
    }
}
