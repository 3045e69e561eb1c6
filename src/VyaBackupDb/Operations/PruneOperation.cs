using VyaBackupDb.Catalog;
using VyaBackupDb.Config;
using VyaBackupDb.Errors;
using VyaBackupDb.Retention;
using VyaBackupDb.Storage;

namespace VyaBackupDb.Operations;

/// <summary>An instance to prune; <paramref name="Databases"/> null means all of its databases.</summary>
public sealed record PruneTarget(InstanceConfig Instance, IReadOnlySet<string>? Databases = null);

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

    public bool Succeeded => Error is null && Deletions.All(d => d.Error is null);
}

public sealed record PruneReport(IReadOnlyList<PruneResult> Results)
{
    public ExitCode ExitCode => Results.All(r => r.Succeeded) ? ExitCode.Success : ExitCode.Failed;
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
    private readonly Dictionary<IStorage, string> _unreachable = new(ReferenceEqualityComparer.Instance);

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
            foreach (var storage in storages(target.Instance))
            {
                if (_unreachable.TryGetValue(storage.Storage, out var known))
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
                    var failed = new PruneResult(target.Instance, storage.Name, policy, RetentionPlanner.Plan([], policy, time.GetUtcNow()), [], request.DryRun)
                    {
                        Error = $"storage '{storage.Name}' cannot be pruned: {e.Message}; nothing was deleted there",
                    };
                    _unreachable[storage.Storage] = failed.Error;
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
        var backups = (await BackupCatalog.InspectAsync(storage, target.Instance, cancellationToken).ConfigureAwait(false))
            .Where(b => target.Databases is null || target.Databases.Contains(b.Entry.Name.Database))
            .ToDictionary(b => b.Entry.Key, StringComparer.Ordinal);
        var refs = backups.Values
            .Select(b => new BackupRef(b.Entry.Key, target.Instance.Name, b.Entry.Name.Database, b.Entry.Name.TimestampUtc, b.Status))
            .ToList();
        var plan = RetentionPlanner.Plan(refs, policy, time.GetUtcNow());
        var planned = new PruneResult(target.Instance, named.Name, policy, plan, [], dryRun);
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

    /// <summary>Manifest first, then .sha256, then data; not cancelled halfway (a half-deleted backup helps nobody).</summary>
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
            return new PruneDeletion(decision, 0, $"cannot delete {storage.Describe(manifestKey)}: {e.Message}; the backup is unchanged");
        }
        try
        {
            if (backup.Entry.HasChecksum)
            {
                await storage.DeleteAsync(key + BackupManifest.ChecksumSuffix, CancellationToken.None).ConfigureAwait(false);
            }
            await storage.DeleteAsync(key, CancellationToken.None).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return new PruneDeletion(decision, 0,
                $"deleted the manifest of {storage.Describe(key)} but not the rest: {e.Message}; the file is now incomplete "
                + "(no manifest), which prune never deletes: remove it and its .sha256 by hand");
        }
        return new PruneDeletion(decision, backup.Entry.Size, null);
    }

    /// <summary>
    /// What `backup --prune` prunes after a backup run: the instances and databases of that run,
    /// and only when every backup of the run succeeded. Null when the run had any failure.
    /// </summary>
    public static IReadOnlyList<PruneTarget>? TargetsAfter(BackupReport report)
    {
        if (report.ExitCode != ExitCode.Success)
        {
            return null;
        }
        return [.. report.Results
            .GroupBy(r => r.Instance.Id)
            .Select(g => new PruneTarget(g.First().Instance, g.Select(r => r.Database).ToHashSet(StringComparer.Ordinal)))];
    }
}
