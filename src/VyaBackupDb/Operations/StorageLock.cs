using System.Globalization;
using System.Text;
using VyaBackupDb.Catalog;
using VyaBackupDb.Errors;
using VyaBackupDb.Storage;
using VyaBackupDb.Storage.Local;

namespace VyaBackupDb.Operations;

/// <summary>
/// One backup of an instance and database at a time, also across runners (hosts, pods) that share
/// a destination. Taken before anything is written, released at the end:
/// <list type="bullet">
/// <item>backup_dir and every local destination: <see cref="BackupLock"/> (an flock the kernel releases when its holder dies);</item>
/// <item>every other destination (S3, SFTP): a lease object under <c>.locks/INSTANCE/DATABASE/</c>, created with
/// <see cref="IStorage.TryCreateExclusiveAsync"/> and holding its owner (host, pid, run id) and an expiry.</item>
/// </list>
/// A lease is a numbered object (a generation). To take the lock, a runner creates the next number
/// exclusively, then lists again and backs off if anyone else holds a live lease. Every third of the lease it renews by creating
/// the next number again and deleting its old one, so renewals and
/// take-overs need nothing but exclusive create: two runners taking over the same expired lease race for
/// one number, and only one gets it. A lease whose expiry has passed belongs to a dead (or cut off)
/// runner and is taken over with a warning. So is, at once, a live lease of the run whose local lock
/// (<see cref="BackupLock"/>, same run id) this run just took over: the kernel freed that flock, so that run
/// is dead, and nobody else may take a lease it holds (nor one of the runs it knew had ended: <see cref="BackupLock.EndedRuns"/>). A runner that cannot renew (its number was taken, or the
/// storage stayed unreachable until expiry) has lost the lock: <see cref="Lost"/> says why and the backup is
/// cancelled (nothing half-written: the manifest is still written last). Hosts' clocks must agree to well
/// within a lease (NTP), since each compares the expiry written by another with its own clock.
/// </summary>
public sealed class StorageLock : IAsyncDisposable
{
    /// <summary>Default lease: long enough to ride out a storage hiccup, short enough that a dead runner's lock clears soon.</summary>
    public static readonly TimeSpan DefaultLease = TimeSpan.FromMinutes(10);

    /// <summary>The longest lease lock_lease_seconds may give.</summary>
    public static readonly TimeSpan MaxLease = TimeSpan.FromDays(1);

    private const string Suffix = ".lease";

    private const int MaxLeaseBytes = 64 * 1024;

    private readonly List<BackupLock> _local = [];
    private readonly List<Lease> _leases = [];
    private readonly TimeProvider _time;
    private readonly TimeSpan _duration;
    private readonly string _run = Guid.NewGuid().ToString("N")[..16];
    private readonly DateTimeOffset _started;
    private readonly CancellationTokenSource _stop = new();
    private Task _renewal = Task.CompletedTask;

    /// <summary>A lease this run created (or may have) and could not delete: this host's next run must take it over at once.</summary>
    private bool _leaseLeftBehind;

    /// <summary>Where a lease left behind is said.</summary>
    private Action<string> _warn = _ => { };

    /// <summary>Every lock taken: the leases of the dead runs this one took over are gone.</summary>
    private bool _acquired;

    /// <summary>The run's stop (SIGTERM, Ctrl+C): cleanup after it is kept short.</summary>
    private CancellationToken _stopping;

    private StorageLock(TimeProvider time, TimeSpan duration)
    {
        _time = time;
        _duration = duration;
        _started = time.GetUtcNow();
    }

    /// <summary>Why the lock was lost while held (the backup was then cancelled); null while it is held.</summary>
    public string? Lost { get; private set; }

    /// <summary>The folder of a database's lease objects in a storage.</summary>
    public static string FolderFor(string instanceName, string database) =>
        $".locks/{BackupName.Encode(instanceName)}/{BackupName.Encode(database)}";

    /// <summary>The key of one generation of a lease.</summary>
    public static string KeyFor(string instanceName, string database, long generation) =>
        $"{FolderFor(instanceName, database)}/{generation.ToString("D12", CultureInfo.InvariantCulture)}{Suffix}";

    /// <summary>
    /// Takes the lock of <paramref name="instanceName"/>/<paramref name="database"/> in backup_dir and in
    /// every destination; throws <see cref="LockedException"/> (naming the holder) when any is held.
    /// <paramref name="onLost"/> is cancelled if a lease is lost while held.
    /// </summary>
    public static async Task<StorageLock> AcquireAsync(
        string backupDir, string instanceName, string database, IReadOnlyList<IStorage> destinations, TimeSpan lease, TimeProvider time,
        Action<string> warn, CancellationTokenSource onLost, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(lease, TimeSpan.FromSeconds(3));
        var held = new StorageLock(time, lease) { _stopping = cancellationToken, _warn = warn };
        try
        {
            var backupDirRoot = Path.GetFullPath(backupDir);
            held._local.Add(BackupLock.Acquire(backupDirRoot, instanceName, database, held._run, time, warn));
            var lockedRoots = new HashSet<string>([backupDirRoot], StringComparer.Ordinal);
            // Local destinations first (as backup_dir), then the others.
            foreach (var storage in destinations.OrderBy(s => s is LocalStorage ? 0 : 1).Distinct())
            {
                try
                {
                    if (storage is LocalStorage local)
                    {
                        if (lockedRoots.Add(local.Root))
                        {
                            held._local.Add(BackupLock.Acquire(local.Root, instanceName, database, held._run, time, warn));
                        }
                    }
                    else
                    {
                        held._leases.Add(await held.TakeAsync(storage, instanceName, database, warn, cancellationToken).ConfigureAwait(false));
                    }
                }
                // A local lock file that cannot be written comes as a line of its own: BackupLock's OperationFailedException.
                catch (Exception e) when ((e is IOException or UnauthorizedAccessException
                        || e is OperationFailedException { InnerException: IOException or UnauthorizedAccessException })
                    && storage != destinations[0] && !cancellationToken.IsCancellationRequested)
                {
                    // A copy's destination failing now fails its copy (reported there), not the backup; the copy never overwrites.
                    warn($"could not take the lock of instance {instanceName} database '{database}' in {storage.Describe(FolderFor(instanceName, database))}: "
                        + $"{e.Message}; going on without it there");
                }
            }
        }
        catch
        {
            await held.DisposeAsync().ConfigureAwait(false);
            throw;
        }
        held._acquired = true;
        if (held._leases.Count > 0)
        {
            held._renewal = held.RenewAsync(onLost);
        }
        return held;
    }

    private async Task<Lease> TakeAsync(IStorage storage, string instanceName, string database, Action<string> warn, CancellationToken cancellationToken)
    {
        var folder = FolderFor(instanceName, database);
        var what = $"instance {instanceName} database '{database}'";
        // A lease of a run that died holding this host's lock: nobody else may take it, so it is dead too.
        bool DiedHere(Lease lease) => _local.Any(local => local.EndedRuns.Contains(lease.Run));
        for (var attempt = 0; attempt < 4; attempt++)
        {
            var now = _time.GetUtcNow();
            var found = await ReadAsync(storage, folder, cancellationToken).ConfigureAwait(false);
            if (found.FirstOrDefault(l => !l.ExpiredAt(now) && !DiedHere(l)) is { } live)
            {
                throw Locked(storage, what, live);
            }
            var generation = found.Count == 0 ? 1 : found.Max(l => l.Generation) + 1;
            var mine = new Lease(storage, KeyFor(instanceName, database, generation), generation, _run, "this run", now + _duration);
            bool created;
            try
            {
                created = await storage.TryCreateExclusiveAsync(mine.Key, Owner(mine.Expires), cancellationToken).ConfigureAwait(false);
            }
            catch
            {
                // Unanswered: the lease may have been created. Another run's lease of that number must not be
                // deleted, so it is left to expire, and this host's next run told to take it over at once.
                _leaseLeftBehind = true;
                throw;
            }
            if (!created)
            {
                continue;
            }
            // Another runner may have created a different number meanwhile: whoever sees another live lease backs off.
            List<Lease> after;
            try
            {
                after = await ReadAsync(storage, folder, cancellationToken).ConfigureAwait(false);
            }
            catch
            {
                _leaseLeftBehind |= !await DeleteQuietlyAsync(storage, mine.Key).ConfigureAwait(false);
                throw;
            }
            if (after.FirstOrDefault(l => l.Run != _run && !DiedHere(l) && !l.ExpiredAt(_time.GetUtcNow())) is { } rival)
            {
                // Only if it is still ours: on a server that ignored If-None-Match the key may now hold the rival's lease.
                if (after.Any(l => l.Key == mine.Key && l.Run == _run))
                {
                    await DeleteQuietlyAsync(storage, mine.Key).ConfigureAwait(false);
                }
                throw Locked(storage, what, rival);
            }
            foreach (var dead in found)
            {
                warn(dead.ExpiredAt(now)
                    ? $"took over the lock of {what} in {storage.Describe(dead.Key)}: its lease expired at {Time(dead.Expires)} "
                        + $"({dead.Holder}); that run ended without releasing it"
                    : $"took over the lock of {what} in {storage.Describe(dead.Key)} at once, its lease being until {Time(dead.Expires)} "
                        + $"({dead.Holder}): that run ended on this host without releasing it (its local lock was free)");
                await DeleteQuietlyAsync(storage, dead.Key).ConfigureAwait(false);
            }
            return mine;
        }
        throw new LockedException($"{what} is being locked by other runs at the same time in {storage.Describe(folder)}; try again");
    }

    private static LockedException Locked(IStorage storage, string what, Lease holder) =>
        new($"{what} is being backed up by another run ({holder.Holder}); the lock frees when that run ends, or at {Time(holder.Expires)} "
            + $"if it died (its lease expires); lock {storage.Describe(holder.Key)}");

    /// <summary>Renews each lease a third of the way before it ends; on a lease lost, says why and cancels <paramref name="onLost"/>.</summary>
    private async Task RenewAsync(CancellationTokenSource onLost)
    {
        var every = _duration / 3;
        try
        {
            while (true)
            {
                await Task.Delay(every, _time, _stop.Token).ConfigureAwait(false);
                for (var i = 0; i < _leases.Count; i++)
                {
                    var old = _leases[i];
                    var now = _time.GetUtcNow();
                    var next = old with
                    {
                        Generation = old.Generation + 1,
                        Key = old.Key[..(old.Key.LastIndexOf('/') + 1)] + (old.Generation + 1).ToString("D12", CultureInfo.InvariantCulture) + Suffix,
                        Expires = now + _duration,
                    };
                    bool created;
                    try
                    {
                        // Not cancelled by the release: a create cut off midway could leave a lease nobody deletes. Waited
                        // for no longer than the lease lasts (a storage that stops answering may not heed the token).
                        var left = old.Expires - now;
                        using var limit = new CancellationTokenSource(left < TimeSpan.FromSeconds(30) ? left.Duration() : TimeSpan.FromSeconds(30));
                        created = await old.Storage.TryCreateExclusiveAsync(next.Key, Owner(next.Expires), limit.Token).WaitAsync(limit.Token)
                            .ConfigureAwait(false);
                    }
                    catch (Exception e) when (e is IOException or TimeoutException or OperationCanceledException)
                    {
                        // The create may have been made and left: this host's next run takes it over.
                        _leaseLeftBehind = true;
                        if (_time.GetUtcNow() < old.Expires)
                        {
                            continue;  // Tried again at the next round, while the lease lasts.
                        }
                        LoseLock($"the lock's lease in {old.Storage.Describe(old.Key)} could not be renewed before it expired: "
                            + (e is OperationCanceledException ? "the storage did not answer in time" : e.Message), onLost);
                        return;
                    }
                    if (!created)
                    {
                        LoseLock($"another run took over the lock in {old.Storage.Describe(old.Key)} (this run's lease was thought expired)", onLost);
                        return;
                    }
                    _leases[i] = next;
                    if (!await DeleteQuietlyAsync(old.Storage, old.Key).ConfigureAwait(false))
                    {
                        LeftBehind(old);
                    }
                }
            }
        }
        catch (OperationCanceledException) when (_stop.IsCancellationRequested)
        {
        }
    }

    private void LoseLock(string reason, CancellationTokenSource onLost)
    {
        Lost = reason;
        try
        {
            onLost.Cancel();
        }
        catch (ObjectDisposedException)
        {
            // The backup ended meanwhile.
        }
    }

    /// <summary>Stops renewing and deletes this run's leases; then the local locks.</summary>
    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        await _renewal.ConfigureAwait(false);
        _stop.Dispose();
        // Stopped before it took over a dead run's leases: the next run must still know that run ended.
        var released = !_leaseLeftBehind && (_acquired || _local.All(local => local.EndedRuns.Count == 0));
        foreach (var lease in _leases)
        {
            if (!await DeleteQuietlyAsync(lease.Storage, lease.Key).ConfigureAwait(false))
            {
                LeftBehind(lease);
                released = false;
            }
        }
        foreach (var local in _local)
        {
            // A lease left behind (the storage unreachable), or a dead run's not yet taken over: the holder file tells this
            // host's next run which runs have ended, so that it takes their leases over at once instead of waiting for them to expire.
            if (released)
            {
                local.Dispose();
            }
            else
            {
                local.ReleaseKeepingHolder();
            }
        }
    }

    /// <summary>A lease of this run that could not be deleted: said, and this host's next run told to take it over at once.</summary>
    private void LeftBehind(Lease lease)
    {
        _leaseLeftBehind = true;
        _warn($"the lock's lease {lease.Storage.Describe(lease.Key)} could not be deleted: other hosts' runs wait for it until "
            + $"{Time(lease.Expires)}; this host's next run takes it over at once");
    }

    /// <summary>
    /// Best effort: a lease that cannot be deleted expires on its own (false then; this host's next run takes it
    /// over at once). Once the run is stopped (SIGTERM), only briefly: a server that does not answer must not hold
    /// up the exit (Ceph's RGW was seen to leave a delete unanswered after a listing cut off by the stop).
    /// </summary>
    private async Task<bool> DeleteQuietlyAsync(IStorage storage, string key)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(_stopping.IsCancellationRequested ? 3 : 30));
        try
        {
            await storage.DeleteAsync(key, timeout.Token).ConfigureAwait(false);
            return true;
        }
        catch (Exception e) when (e is IOException or TimeoutException or OperationCanceledException)
        {
            return false;
        }
    }

    /// <summary>What a lease object holds: who, since when, until when.</summary>
    private byte[] Owner(DateTimeOffset expires) => Encoding.UTF8.GetBytes(
        $"host={Environment.MachineName}\npid={Environment.ProcessId.ToString(CultureInfo.InvariantCulture)}\nrun={_run}\n"
        + $"started={Time(_started)}\nexpires={Time(expires)}\n");

    private static string Time(DateTimeOffset time) => time.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);

    /// <summary>Who holds the lock of <paramref name="database"/> in <paramref name="storage"/> now (a live lease), or null.</summary>
    public static async Task<string?> HolderAsync(
        IStorage storage, string instanceName, string database, TimeSpan lease, DateTimeOffset now, CancellationToken cancellationToken) =>
        (await ReadAsync(storage, FolderFor(instanceName, database), lease, cancellationToken).ConfigureAwait(false))
            .FirstOrDefault(l => !l.ExpiredAt(now))?.Holder;

    private Task<List<Lease>> ReadAsync(IStorage storage, string folder, CancellationToken cancellationToken) =>
        ReadAsync(storage, folder, _duration, cancellationToken);

    /// <summary>Every lease object in a folder, read. One that vanished meanwhile is left out.</summary>
    private static async Task<List<Lease>> ReadAsync(IStorage storage, string folder, TimeSpan duration, CancellationToken cancellationToken)
    {
        var leases = new List<Lease>();
        var entries = new List<StorageEntry>();
        await foreach (var entry in storage.ListAsync(folder, cancellationToken).ConfigureAwait(false))
        {
            entries.Add(entry);
        }
        foreach (var entry in entries)
        {
            var name = StorageKey.FileName(entry.Key);
            if (!name.EndsWith(Suffix, StringComparison.Ordinal)
                || !long.TryParse(name[..^Suffix.Length], NumberStyles.None, CultureInfo.InvariantCulture, out var generation))
            {
                continue;
            }
            string text;
            try
            {
                // A lease is a few lines: one larger (planted, damaged) is read no further and counts as unreadable.
                await using var stream = await storage.OpenReadAsync(entry.Key, cancellationToken).ConfigureAwait(false);
                var buffer = new byte[MaxLeaseBytes + 1];
                var n = await stream.ReadAtLeastAsync(buffer, buffer.Length, throwOnEndOfStream: false, cancellationToken).ConfigureAwait(false);
                text = n > MaxLeaseBytes ? "" : Encoding.UTF8.GetString(buffer, 0, n);
            }
            catch (FileNotFoundException)
            {
                continue;
            }
            leases.Add(Lease.Parse(storage, entry, generation, text, duration));
        }
        return leases;
    }

    /// <param name="Holder">Who holds it, for messages (host, pid, run, since).</param>
    private sealed record Lease(IStorage Storage, string Key, long Generation, string Run, string Holder, DateTimeOffset Expires)
    {
        public bool ExpiredAt(DateTimeOffset now) => Expires <= now;

        /// <summary>
        /// A lease as written; one still being written (an empty file on SFTP or a local disk) or unreadable
        /// counts as held for a lease from when it was written.
        /// </summary>
        public static Lease Parse(IStorage storage, StorageEntry entry, long generation, string text, TimeSpan duration)
        {
            var fields = text.Split('\n', StringSplitOptions.RemoveEmptyEntries)
                .Select(line => line.Split('=', 2))
                .Where(parts => parts.Length == 2)
                .GroupBy(parts => parts[0], StringComparer.Ordinal)
                .ToDictionary(g => g.Key, g => g.First()[1], StringComparer.Ordinal);
            var written = new DateTimeOffset(entry.LastModified.UtcDateTime, TimeSpan.Zero);
            // An expiry beyond the longest lease there can be (planted, or a clock far ahead) would lock the database out until then.
            var expires = fields.TryGetValue("expires", out var e)
                && DateTimeOffset.TryParse(e, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var parsed)
                    ? (parsed < written + MaxLease ? parsed : written + MaxLease)
                    : written + duration;
            var holder = fields.ContainsKey("run")
                ? $"pid {fields.GetValueOrDefault("pid", "?")} on {fields.GetValueOrDefault("host", "?")}, run {fields["run"]}, "
                    + $"since {fields.GetValueOrDefault("started", "?")}"
                : $"a lease that cannot be read as one (empty, damaged or over {MaxLeaseBytes} bytes), written {Time(written)}: held for a lease from then";
            return new Lease(storage, entry.Key, generation, fields.GetValueOrDefault("run", ""), holder, expires);
        }
    }
}
