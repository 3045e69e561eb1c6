using VyaBackupDb.Catalog;
using VyaBackupDb.Config;
using VyaBackupDb.Errors;
using VyaBackupDb.Storage;

namespace VyaBackupDb.Operations;

/// <param name="To">The destination (a storage name of the config, or local) the backups go to.</param>
/// <param name="From">Where they are copied from; null: each of the instance's other destinations, in order.</param>
public sealed record CopyRequest(
    IReadOnlyList<InstanceConfig> Instances, string To, string? From, string? Database, bool Latest, bool DryRun);

/// <summary>
/// One backup: copied (or would be), already there, or failed. <paramref name="Error"/> null: fine.
/// <paramref name="Mismatch"/>: the source did not match its manifest (a verification failure).
/// <paramref name="LeftToAnother"/>: not copied, and no failure: another run was writing it there (why).
/// </summary>
public sealed record CopyResult(
    InstanceConfig Instance, string Source, string Target, bool Copied, string? Error, bool Mismatch = false, string? LeftToAnother = null);

public sealed record CopyReport(IReadOnlyList<CopyResult> Results, IReadOnlyList<string> Unreachable)
{
    public ExitCode ExitCode =>
        Results.Any(r => r.Mismatch) ? ExitCode.VerificationFailed
        : Results.Any(r => r.Error is not null) || Unreachable.Count > 0 ? ExitCode.Failed
        : ExitCode.Success;
}

public interface ICopyObserver
{
    void Copied(CopyResult result, bool dryRun);

    /// <summary>A storage that could not be reached or listed: what needs it is skipped, the rest goes on.</summary>
    void Unreachable(string message);

    /// <summary>Said, and the copy goes on (a dead run's lock taken over).</summary>
    void Warning(string message);
}

/// <summary>
/// Copies existing backups to a destination later (e.g. when the offsite server is back): every
/// complete backup of the instance that the destination lacks, streamed from a source and checked
/// against the manifest's SHA-256 as it is read, read back from the destination and checked again,
/// then its .sha256 and manifest written last, exactly as the copies made at backup time.
/// </summary>
public sealed class CopyOperation(AppConfig config, StorageSet storages, ICopyObserver observer)
{
    public async Task<CopyReport> RunAsync(CopyRequest request, CancellationToken cancellationToken)
    {
        config.GetStorage(request.To); // an unknown name is a usage error
        if (request.From is { } from)
        {
            config.GetStorage(from);
            if (from == request.To)
            {
                throw new UsageException("--from and --to name the same destination");
            }
        }
        if (request.Instances.FirstOrDefault(i => !i.StorageNames.Contains(request.To)) is { } outside)
        {
            // A copy there would be a backup that list, verify, prune and status never look at.
            throw new UsageException(
                $"'{request.To}' is not a destination of instance {outside.Id} ({outside.Name}) (storage: {string.Join(", ", outside.StorageNames)}): "
                + "add it to the instance's storage: to copy there");
        }
        var results = new List<CopyResult>();
        var unreachable = new List<string>();
        var down = new HashSet<string>(StringComparer.Ordinal);
        foreach (var instance in request.Instances)
        {
            var sources = request.From is { } only ? [only] : instance.StorageNames.Where(n => n != request.To).ToList();
            if (sources.Count == 0)
            {
                throw new UsageException($"instance {instance.Id} ({instance.Name}) has no destination but '{request.To}' to copy from: give --from");
            }
            var to = storages.Get(request.To);
            Dictionary<string, CatalogBackup> present;
            try
            {
                if (down.Contains(request.To))
                {
                    continue;
                }
                if (!request.DryRun)
                {
                    // Leftovers of an interrupted copy, as a backup run would remove them.
                    await to.SweepAbandonedAsync(BackupCatalog.InstancePrefix(instance), DateTimeOffset.UtcNow.AddDays(-1), cancellationToken)
                        .ConfigureAwait(false);
                }
                present = (await BackupCatalog.InspectAsync(to, instance, cancellationToken).ConfigureAwait(false))
                    .ToDictionary(b => b.Entry.Key, StringComparer.Ordinal);
            }
            catch (Exception e) when (StorageSet.IsStorageFault(e, cancellationToken))
            {
                down.Add(request.To);
                unreachable.Add(request.To);
                observer.Unreachable($"storage '{request.To}' cannot be reached: {e.Message}; nothing was copied to it");
                continue;
            }
            // Anything else there under a backup's name (damaged, a manifest alone) is a leftover: named, never overwritten.
            var done = new HashSet<string>(present.Where(p => p.Value.Status == BackupStatus.Verified).Select(p => p.Key), StringComparer.Ordinal);
            // Backups a source holds damaged: named unless another source had them whole.
            var damaged = new Dictionary<string, CopyResult>(StringComparer.Ordinal);
            foreach (var sourceName in sources.Where(s => !down.Contains(s)))
            {
                var source = storages.Get(sourceName);
                IEnumerable<CatalogBackup> backups;
                try
                {
                    backups = (await BackupCatalog.InspectAsync(source, instance, cancellationToken).ConfigureAwait(false))
                        .Where(b => b.Status != BackupStatus.Incomplete && (request.Database is null || b.Entry.Name.Database == request.Database));
                }
                catch (Exception e) when (StorageSet.IsStorageFault(e, cancellationToken))
                {
                    down.Add(sourceName);
                    unreachable.Add(sourceName);
                    observer.Unreachable($"storage '{sourceName}' cannot be reached: {e.Message}; nothing was copied from it");
                    continue;
                }
                if (request.Latest)
                {
                    // The newest whole backup of each database, and any damaged one newer than it.
                    backups = backups.GroupBy(b => b.Entry.Name.Database, StringComparer.Ordinal)
                        .SelectMany(g => g.TakeWhile(b => b.Status != BackupStatus.Verified).Concat(g.Where(b => b.Status == BackupStatus.Verified).Take(1)));
                }
                foreach (var backup in backups.ToList())
                {
                    if (backup.Status != BackupStatus.Verified)
                    {
                        damaged.TryAdd(backup.Entry.Key, new CopyResult(instance, source.Describe(backup.Entry.Key), to.Describe(backup.Entry.Key), false,
                            $"it is damaged there ({backup.Problem}), and no other destination holds it whole", Mismatch: true));
                        continue;
                    }
                    if (!done.Add(backup.Entry.Key))
                    {
                        continue;
                    }
                    var result = await CopyOneAsync(instance, source, to, backup, present.GetValueOrDefault(backup.Entry.Key), request.DryRun, cancellationToken)
                        .ConfigureAwait(false);
                    results.Add(result);
                    observer.Copied(result, request.DryRun);
                }
            }
            foreach (var result in damaged.Where(d => !done.Contains(d.Key)).Select(d => d.Value))
            {
                results.Add(result);
                observer.Copied(result, request.DryRun);
            }
        }
        return new CopyReport(results, unreachable);
    }

    private async Task<CopyResult> CopyOneAsync(
        InstanceConfig instance, IStorage from, IStorage to, CatalogBackup backup, CatalogBackup? leftover, bool dryRun,
        CancellationToken cancellationToken)
    {
        var (source, target) = (from.Describe(backup.Entry.Key), to.Describe(backup.Entry.Key));
        var knownLeftover = LeftoverProblem(to, target, leftover) is not null;
        try
        {
            // A backup run holds its database's lock in each of its destinations while it writes and copies there: two
            // writers of one key on an S3 server that completes an upload over an object (Ceph) lost the backup's data.
            if (!knownLeftover && to is not Storage.Local.LocalStorage
                && await StorageLock.HolderAsync(to, instance.Name, backup.Entry.Name.Database, config.LockLease, DateTimeOffset.UtcNow, cancellationToken)
                    .ConfigureAwait(false) is { } holder
                && (dryRun || !await TakeOverAsync(instance, to, backup.Entry.Name.Database, cancellationToken).ConfigureAwait(false)))
            {
                return new CopyResult(instance, source, target, false, null,
                    LeftToAnother: $"another run is writing this database's backups there now ({holder}); copy again once it ends");
            }
        }
        catch (Exception e) when (StorageSet.IsStorageFault(e, cancellationToken))
        {
            return new CopyResult(instance, source, target, false, e.Message);
        }
        var result = await CopyOrRefuseAsync(instance, from, to, backup, leftover, dryRun, cancellationToken).ConfigureAwait(false);
        if (result.Error is null || result.Mismatch || knownLeftover || cancellationToken.IsCancellationRequested)
        {
            return result;
        }
        // What blocked it may be another run's copy there, finished since the listing: not a leftover to remove by hand.
        try
        {
            var key = backup.Entry.Key;
            if (await to.StatAsync(BackupManifest.KeyFor(key), cancellationToken).ConfigureAwait(false) is not null
                && (await new BackupLocation(to, key).LoadManifestAsync(cancellationToken).ConfigureAwait(false))?.StoredSha256 == backup.Manifest!.StoredSha256
                && (await to.StatAsync(key, cancellationToken).ConfigureAwait(false))?.Size == backup.Manifest.StoredBytes)
            {
                return result with { Error = null, LeftToAnother = "another run copied it there meanwhile" };
            }
        }
        catch (Exception e) when (StorageSet.IsStorageFault(e, cancellationToken) || e is VerificationFailedException)
        {
        }
        return result;
    }

    /// <summary>
    /// Takes the database's lock as a backup run does and lets it go at once: true when the live lease found there was
    /// of a run that ended on this host (taken over, with backup's warning), false when another run holds it. Not
    /// held for the copy: that would lock out the database's next backups, which write other keys.
    /// </summary>
    private async Task<bool> TakeOverAsync(InstanceConfig instance, IStorage to, string database, CancellationToken cancellationToken)
    {
        using var onLost = new CancellationTokenSource();
        try
        {
            var held = await StorageLock.AcquireAsync(config.BackupDir, instance.Name, database, [to], config.LockLease, TimeProvider.System,
                observer.Warning, onLost, cancellationToken).ConfigureAwait(false);
            await held.DisposeAsync().ConfigureAwait(false);
            return true;
        }
        catch (LockedException)
        {
            return false;
        }
    }

    private async Task<CopyResult> CopyOrRefuseAsync(
        InstanceConfig instance, IStorage from, IStorage to, CatalogBackup backup, CatalogBackup? leftover, bool dryRun,
        CancellationToken cancellationToken)
    {
        var key = backup.Entry.Key;
        var manifest = backup.Manifest!;
        var (source, target) = (from.Describe(key), to.Describe(key));
        if (LeftoverProblem(to, target, leftover) is { } known)
        {
            return new CopyResult(instance, source, target, false, known);
        }
        // A dry run reads what a copy would (a leftover, a .sha256 there), to name the same refusals.
        var wouldCopy = new CopyResult(instance, source, target, Copied: false, null);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(config.Timeout);
        try
        {
            if (leftover is not null)
            {
                // A data file without its manifest (a copy cut off before its manifest, maybe after its .sha256):
                // complete it if it is this backup, byte for byte; never overwrite anything.
                if (await BackupFileChecker.CheckStoredAsync(new BackupLocation(to, key), manifest, timeout.Token).ConfigureAwait(false) is { } problem)
                {
                    return new CopyResult(instance, source, target, false,
                        $"{target} is already there without a manifest, and is not this backup ({problem}): remove it by hand, then copy again");
                }
                if (leftover.Entry.HasChecksum
                    && await BackupFileChecker.ChecksumFileProblemAsync(to, key, manifest, timeout.Token).ConfigureAwait(false) is { } checksumProblem)
                {
                    return new CopyResult(instance, source, target, false, $"{checksumProblem}: remove it by hand, then copy again");
                }
                if (dryRun)
                {
                    return wouldCopy;
                }
                await BackupOperation.WriteManifestAsync(to, key, manifest, timeout.Token, checksumWritten: leftover.Entry.HasChecksum).ConfigureAwait(false);
                return new CopyResult(instance, source, target, Copied: true, null);
            }
            var checksum = key + BackupManifest.ChecksumSuffix;
            if (await to.StatAsync(checksum, timeout.Token).ConfigureAwait(false) is not null)
            {
                // Checked before the upload: the copy could not be completed beside it.
                return new CopyResult(instance, source, target, false,
                    $"{to.Describe(checksum)} is already there without its data file: remove it by hand, then copy again");
            }
            if (dryRun)
            {
                return wouldCopy;
            }
            await BackupOperation.CopyAsync(from, to, key, manifest, timeout.Token).ConfigureAwait(false);
            return new CopyResult(instance, source, target, Copied: true, null);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return new CopyResult(instance, source, target, false, $"timed out after {config.Timeout.TotalSeconds:0} s (timeout_seconds)");
        }
        catch (VerificationFailedException e)
        {
            return new CopyResult(instance, source, target, false, e.Message, Mismatch: true);
        }
        catch (Exception e) when (StorageSet.IsStorageFault(e, cancellationToken))
        {
            return new CopyResult(instance, source, target, false, e.Message);
        }
    }

    /// <summary>
    /// What the catalog already tells about a leftover in --to that blocks the copy (no read needed), or null:
    /// each is named for removal by hand, since copy never overwrites or deletes what it did not write.
    /// </summary>
    private static string? LeftoverProblem(IStorage to, string target, CatalogBackup? leftover) => leftover?.Status switch
    {
        BackupStatus.MissingData =>
            $"{to.Describe(BackupManifest.KeyFor(leftover.Entry.Key))} is there without its data file: remove it"
            + (leftover.Entry.HasChecksum ? " and its .sha256" : "") + " by hand, then copy again",
        BackupStatus.SizeMismatch or BackupStatus.VerifyFailed =>
            $"{target} is already there and damaged ({leftover.Problem}): remove it, its manifest and .sha256 by hand, then copy again",
        BackupStatus.BadManifest =>
            $"{target} is already there with a manifest that is not this backup's ({leftover.Problem}): remove both by hand, then copy again",
        _ => null,
    };
}
