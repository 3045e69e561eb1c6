using System.Globalization;
using VyaBackupDb.Catalog;
using VyaBackupDb.Config;
using VyaBackupDb.Errors;
using VyaBackupDb.Retention;
using VyaBackupDb.Storage;

namespace VyaBackupDb.Operations;

/// <summary>
/// An instance to prune; <paramref name="Databases"/> null means all of its databases,
/// <paramref name="Storages"/> null all of its destinations.
/// </summary>
public sealed record PruneTarget(InstanceConfig Instance, IReadOnlySet<string>? Databases = null, IReadOnlySet<string>? Storages = null);

public sealed record PruneRequest(IReadOnlyList<PruneTarget> Targets, bool DryRun);

/// <summary>A backup the plan removes, and what happened when deleting it (null error: all its files are gone).</summary>
public sealed record PruneDeletion(RetentionDecision Decision, long Bytes, string? Error);

/// <summary>One instance in one storage: the policy applied, the plan, and the deletions done.</summary>
public sealed record PruneResult(
    InstanceConfig Instance,
    string Storage,
    RetentionPolicy? Policy,
    RetentionPlan Plan,
    IReadOnlyList<PruneDeletion> Deletions,
    bool DryRun)
{
    /// <summary>Why this storage could not be pruned at all (it cannot be reached or listed); null when it was.</summary>
    public string? Error { get; init; }

    /// <summary>For each database with something to remove, the check of the backup that makes it safe.</summary>
    public IReadOnlyList<PruneCheck> Checks { get; init; } = [];

    public bool Succeeded => Error is null && Deletions.All(d => d.Error is null) && Checks.All(c => !c.Holds);
}

/// <summary>
/// The check of a database's newest kept backup before older ones are deleted.
/// <paramref name="Holds"/>: it did not pass, so nothing of that database is deleted (<paramref name="Outcome"/> says why).
/// </summary>
public sealed record PruneCheck(string Database, string? Key, string Outcome, bool Holds, bool DigestMismatch = false);

public sealed record PruneReport(IReadOnlyList<PruneResult> Results)
{
    /// <summary>A backup found not to match its manifest outranks everything else (exit 4); then any failure (1).</summary>
    public ExitCode ExitCode =>
        Results.Any(r => r.Checks.Any(c => c.DigestMismatch)) ? ExitCode.VerificationFailed
        : Results.All(r => r.Succeeded) ? ExitCode.Success
        : ExitCode.Failed;
}

/// <summary>What a prune run tells its user as it goes.</summary>
public interface IPruneObserver
{
    /// <summary>No policy applies to the instance: nothing of it is touched.</summary>
    void NoPolicy(InstanceConfig instance);

    /// <summary>The plan for one instance in one storage, before anything is deleted.</summary>
    void Planned(PruneResult planned, Func<string, string> describe);

    void Deleted(PruneDeletion deletion, Func<string, string> describe);

    /// <summary>A storage that could not be pruned (cannot be reached or listed); the others go on.</summary>
    void Unreachable(PruneResult result);
}

/// <summary>
/// Applies retention: lists an instance's backups (only exact backup names of its own folder),
/// plans with <see cref="RetentionPlanner"/>, and deletes what the plan removes: the manifest
/// first (from then on the file is no longer a backup), then the .sha256, then the data file.
/// Nothing else is ever deleted; a dry run deletes nothing.
/// </summary>
public sealed class PruneOperation(
    AppConfig config, Func<InstanceConfig, IReadOnlyList<NamedStorage>> storages, TimeProvider time, IPruneObserver observer)
{
    /// <summary>Destinations found down in this run (not one folder in them: <see cref="StorageSet.IsDestinationDown"/>), with why.</summary>
    private readonly Dictionary<IStorage, string> _down = new(ReferenceEqualityComparer.Instance);

    public async Task<PruneReport> RunAsync(PruneRequest request, CancellationToken cancellationToken)
    {
        var results = new List<PruneResult>();
        foreach (var target in request.Targets)
        {
            var policy = config.RetentionFor(target.Instance);
            if (policy is null || policy.IsEmpty)
            {
                observer.NoPolicy(target.Instance);
                continue;
            }
            foreach (var storage in storages(target.Instance).Where(s => target.Storages is null || target.Storages.Contains(s.Name)))
            {
                if (_down.TryGetValue(storage.Storage, out var known))
                {
                    // Already said once in this run; a dead host is not tried again for every instance.
                    results.Add(new PruneResult(target.Instance, storage.Name, policy, RetentionPlanner.Plan([], policy, time.GetUtcNow()), [], request.DryRun)
                    {
                        Error = known,
                    });
                    continue;
                }
                try
                {
                    results.Add(await PruneAsync(target, storage, policy, request.DryRun, cancellationToken).ConfigureAwait(false));
                }
                catch (Exception e) when (StorageSet.IsStorageFault(e, cancellationToken))
                {
                    // A destination that is down is said once for all its instances; a folder that cannot be listed is its instance's.
                    var down = StorageSet.IsDestinationDown(e);
                    var failed = new PruneResult(target.Instance, storage.Name, policy, RetentionPlanner.Plan([], policy, time.GetUtcNow()), [], request.DryRun)
                    {
                        Error = (down ? "" : $"instance {target.Instance.Id} ({target.Instance.Name}): ")
                            + $"storage '{storage.Name}' cannot be pruned: {e.Message}; nothing was deleted there",
                    };
                    if (down)
                    {
                        _down[storage.Storage] = failed.Error;
                    }
                    observer.Unreachable(failed);
                    results.Add(failed);
                }
            }
        }
        return new PruneReport(results);
    }

    private async Task<PruneResult> PruneAsync(
        PruneTarget target, NamedStorage named, RetentionPolicy policy, bool dryRun, CancellationToken cancellationToken)
    {
        var storage = named.Storage;
        var now = time.GetUtcNow();
        var backups = (await BackupCatalog.InspectAsync(storage, target.Instance, cancellationToken).ConfigureAwait(false))
            .Where(b => target.Databases is null || target.Databases.Contains(b.Entry.Name.Database))
            .ToDictionary(b => b.Entry.Key, StringComparer.Ordinal);
        var refs = backups.Values
            .Select(b => new BackupRef(b.Entry.Key, target.Instance.Name, b.Entry.Name.Database, b.Entry.Name.TimestampUtc, b.Status))
            .ToList();
        var plan = RetentionPlanner.Plan(refs, policy, now);

        // Nothing of a database is deleted on the word of a backup nobody has read: the newest one
        // kept must match its manifest's digest (checked now, or by a verify since it last changed).
        var checks = new List<PruneCheck>();
        foreach (var database in plan.Removed.Select(d => d.Backup.Database).Distinct(StringComparer.Ordinal).ToList())
        {
            var check = await CheckNewestKeptAsync(storage, plan, backups, database, now, dryRun, cancellationToken).ConfigureAwait(false);
            checks.Add(check);
            if (check.Holds)
            {
                plan = new RetentionPlan([.. plan.Decisions.Select(d => d.Keep || d.Backup.Database != database
                    ? d : d with { Keep = true, Reasons = ["held: the newest kept backup did not pass its check"] })]);
            }
        }

        var planned = new PruneResult(target.Instance, named.Name, policy, plan, [], dryRun) { Checks = checks };
        observer.Planned(planned, storage.Describe);
        if (dryRun)
        {
            return planned;
        }

        var deletions = new List<PruneDeletion>();
        foreach (var decision in plan.Removed)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var backup = backups[decision.Backup.Key];
            var deletion = await DeleteAsync(storage, backup, decision).ConfigureAwait(false);
            deletions.Add(deletion);
            observer.Deleted(deletion, storage.Describe);
        }
        return planned with { Deletions = deletions };
    }

    /// <summary>
    /// The check that makes deleting older backups of <paramref name="database"/> safe: its newest
    /// kept backup whose size matches its manifest, read now and compared with the manifest's
    /// SHA-256 unless a verify record newer than the file says that was done. A check that passes
    /// now is recorded (the next prune need not read the file again).
    /// </summary>
    private async Task<PruneCheck> CheckNewestKeptAsync(
        IStorage storage, RetentionPlan plan, Dictionary<string, CatalogBackup> backups, string database, DateTimeOffset now, bool dryRun,
        CancellationToken cancellationToken)
    {
        var newest = plan.Kept
            .Where(d => d.Backup.Database == database && d.Backup.Status == BackupStatus.Verified && d.Backup.TimestampUtc <= now.UtcDateTime)
            .OrderByDescending(d => d.Backup.TimestampUtc)
            .FirstOrDefault();
        if (newest is null)
        {
            return new PruneCheck(database, null, "no backup it keeps matches its manifest, so none can vouch for deleting older ones", Holds: true);
        }
        var backup = backups[newest.Backup.Key];
        var key = backup.Entry.Key;
        if (backup.DigestCheckedUtc is { } checkedUtc)
        {
            return new PruneCheck(database, key, $"digest checked by verify {checkedUtc.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture)} UTC", Holds: false);
        }
        if (dryRun)
        {
            return new PruneCheck(database, key, "its digest would be checked before anything is deleted", Holds: false);
        }
        string? problem;
        StorageEntry? before;
        var location = new BackupLocation(storage, key);
        try
        {
            before = await storage.StatAsync(key, cancellationToken).ConfigureAwait(false);
            problem = await BackupFileChecker.CheckStoredAsync(location, backup.Manifest!, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (StorageSet.IsStorageFault(e, cancellationToken))
        {
            return new PruneCheck(database, key, $"its newest kept backup could not be read ({e.Message}); nothing of it was deleted", Holds: true);
        }
        if (problem is not null)
        {
            return new PruneCheck(database, key, $"its newest kept backup {storage.Describe(key)} does not match its manifest ({problem}); nothing of it was deleted",
                Holds: true, DigestMismatch: true);
        }
        if (!await BackupFileChecker.UnchangedAsync(location, before, cancellationToken).ConfigureAwait(false))
        {
            return new PruneCheck(database, key, $"its newest kept backup {storage.Describe(key)} changed while it was checked; nothing of it was deleted",
                Holds: true);
        }
        try
        {
            await VerifyRecord.WriteAsync(storage, key, backup.Manifest!, "prune", now, backup.Entry.VerifyRecordModified is not null, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (StorageSet.IsStorageFault(e, cancellationToken))
        {
            // Only saves the next prune a read.
        }
        return new PruneCheck(database, key, "digest checked now", Holds: false);
    }

    /// <summary>Manifest first, then .sha256, data and verify record; not cancelled halfway (a half-deleted backup helps nobody).</summary>
    private static async Task<PruneDeletion> DeleteAsync(IStorage storage, CatalogBackup backup, RetentionDecision decision)
    {
        var key = backup.Entry.Key;
        var manifestKey = BackupManifest.KeyFor(key);
        try
        {
            await storage.DeleteAsync(manifestKey, CancellationToken.None).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return new PruneDeletion(decision, 0, $"cannot delete {storage.Describe(manifestKey)}: {e.Message.TrimEnd('.')}; the backup is unchanged");
        }
        try
        {
            if (backup.Entry.HasChecksum)
            {
                await storage.DeleteAsync(key + BackupManifest.ChecksumSuffix, CancellationToken.None).ConfigureAwait(false);
            }
            await storage.DeleteAsync(key, CancellationToken.None).ConfigureAwait(false);
            // Last, and whether listed or not: a verify of another run may have written it meanwhile (it deletes a
            // record it finds written after its backup was gone).
            await storage.DeleteAsync(VerifyRecord.KeyFor(key), CancellationToken.None).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return new PruneDeletion(decision, 0,
                $"deleted the manifest of {storage.Describe(key)} but not the rest: {e.Message.TrimEnd('.')}; the file is now incomplete "
                + "(no manifest), which prune never deletes: remove it and its .sha256 by hand");
        }
        return new PruneDeletion(decision, backup.Entry.Size, null);
    }

    /// <summary>
    /// What `backup --prune` prunes after a backup run: the instances and databases of that run,
    /// except what failed. A database whose backup failed (or was locked), and an instance that
    /// could not be backed up at all, are not pruned; a database backed up but not copied to
    /// every destination is pruned only where it was. <c>Skipped</c> says what was left out, and why.
    /// </summary>
    public static (IReadOnlyList<PruneTarget> Targets, IReadOnlyList<string> Skipped) TargetsAfter(BackupReport report)
    {
        var targets = new List<PruneTarget>();
        var skipped = new List<string>();
        foreach (var instance in report.Results.GroupBy(r => r.Instance.Id))
        {
            var inst = instance.First().Instance;
            var name = $"instance {inst.Id} ({inst.Name})";
            if (instance.Any(r => r.Database == "*" && r.Location is null))
            {
                skipped.Add($"{name}: its backup failed");
                continue;
            }
            foreach (var failed in instance.Where(r => r.Location is null))
            {
                skipped.Add($"{name} database '{failed.Database}': its backup {(failed.Locked ? "was locked by another run" : "failed")}");
            }
            foreach (var partial in instance.Where(r => r.Location is not null && r.FailedDestinations.Count > 0))
            {
                skipped.Add($"{name} database '{partial.Database}' in {string.Join(", ", partial.FailedDestinations.Select(d => $"'{d}'"))}: not copied there");
            }
            // One target per set of destinations (usually one per instance: all of them).
            foreach (var group in instance.Where(r => r.Location is not null)
                .GroupBy(r => r.FailedDestinations.Count == 0 ? "" : string.Join('\n', r.Destinations), StringComparer.Ordinal))
            {
                targets.Add(new PruneTarget(inst, group.Select(r => r.Database).ToHashSet(StringComparer.Ordinal),
                    group.Key.Length == 0 ? null : group.Key.Split('\n').ToHashSet(StringComparer.Ordinal)));
            }
        }
        return (targets, skipped);
    }
}
