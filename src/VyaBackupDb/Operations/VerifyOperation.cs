using VyaBackupDb.Catalog;
using VyaBackupDb.Config;
using VyaBackupDb.Engines;
using VyaBackupDb.Errors;
using VyaBackupDb.Pipeline;
using VyaBackupDb.Storage;

namespace VyaBackupDb.Operations;

/// <param name="IdentityFile">An age identity file for encrypted backups (--identity), besides the config's.</param>
/// <param name="Definer">MySQL: DEFINER clauses of the test restore (--definer); null: the instance's setting.</param>
/// <param name="AllowDataDirectory">MySQL: the test restore creates tables with the DATA / INDEX DIRECTORY they were dumped with.</param>
/// <param name="TrustBackup">PostgreSQL: the test restore loads as the instance's account even when it is a superuser.</param>
public sealed record VerifyRequest(
    string? File, InstanceConfig? Instance, string? Database, bool Latest, bool Restore, string? IdentityFile = null,
    Engines.MySql.DefinerMode? Definer = null, bool AllowDataDirectory = false, bool TrustBackup = false);

public sealed record VerifyResult(FileCheck Check, InventoryComparison? Comparison);

public interface IVerifyObserver : IRestoreObserver
{
    void Checked(VerifyResult result);

    void Skipped(string file, string reason);
}

/// <summary>
/// Checks backups: digests and sizes against the manifest, the whole chain decoded, the
/// completion trailer; with --restore also a test restore into a scratch database (always
/// dropped afterwards) compared against the manifest's counts.
/// </summary>
public sealed class VerifyOperation(AppConfig config, IVerifyObserver observer, TimeProvider? timeProvider = null)
{
    private readonly TimeProvider time = timeProvider ?? TimeProvider.System;

    public async Task<IReadOnlyList<VerifyResult>> RunAsync(VerifyRequest request, CancellationToken cancellationToken)
    {
        var results = new List<VerifyResult>();
        using var storages = new StorageSet(config);
        var keys = config.Encryption.KeysFor(request.IdentityFile);
        foreach (var file in await FilesAsync(request, storages, results, cancellationToken).ConfigureAwait(false))
        {
            FileCheck check;
            StorageEntry? before;
            try
            {
                before = await file.Storage.StatAsync(file.Key, cancellationToken).ConfigureAwait(false);
                if (before is null && request.File is null)
                {
                    observer.Skipped(file.Description, "removed since it was listed (pruned by another run?): not checked");
                    continue;
                }
                check = await BackupFileChecker.CheckAsync(file, keys, cancellationToken).ConfigureAwait(false);
            }
            catch (HostFaultException e)
            {
                Unchecked(file, e, results);
                continue;
            }
            catch (Exception e) when (StorageSet.IsStorageFault(e, cancellationToken) && e is not (UsageException or ConfigException or VaultException))
            {
                // Its storage failed (down, refused): that file is unchecked, the others go on. A config or vault
                // error (the decryption passphrase's variable unset) is the run's, with its own exit code.
                results.Add(new VerifyResult(new FileCheck(file.Description, null, [$"cannot be read: {e.Message}"], [], file) { Unreachable = true }, null));
                observer.Checked(results[^1]);
                continue;
            }
            InventoryComparison? comparison = null;
            if (check.Manifest?.Files?.ChangedNote is { } changed)
            {
                check = check with { Notes = [.. check.Notes, changed] };
            }
            var fileCheck = check;
            if (request.Restore && check.Ok && check.Manifest?.Files is not null)
            {
                check = check with { Notes = [.. check.Notes, "a files backup has no test restore: every entry was read and checked instead"] };
            }
            else if (request.Restore && check.Ok && check.Manifest?.Database == Engines.Globals.ItemName)
            {
                // Restoring roles into a scratch database is not a thing: they are server-wide.
                check = check with { Notes = [.. check.Notes, "a users/roles/grants backup has no test restore: it was read and checked instead"] };
            }
            else if (request.Restore && check.Ok)
            {
                try
                {
                    (check, comparison) = await TestRestoreAsync(check, request, keys, cancellationToken).ConfigureAwait(false);
                }
                catch (HostFaultException e)
                {
                    Unchecked(file, e, results);
                    continue;
                }
            }
            // One look at the file after its check: gone, or as it was when it was read.
            var (gone, unchanged) = await LookAgainAsync(file, before, cancellationToken).ConfigureAwait(false);
            if (gone)
            {
                // Removed while it was checked (another run's prune, tr104): not a damaged backup (exit 4), an unchecked one;
                // nor a good one, though S3 may serve an object it is sending after its delete (tr106).
                results.Add(new VerifyResult(new FileCheck(file.Description, null,
                    ["not checked: it was removed while it was checked (by another run's prune?)"], [], file) { Unreachable = true }, null));
                observer.Checked(results[^1]);
                continue;
            }
            if (unchanged)
            {
                await RecordAsync(file, check, fileCheck, cancellationToken).ConfigureAwait(false);
            }
            else
            {
                // What was read is not the file as it is now: a record would vouch for (or condemn) bytes nobody read.
                check = check with { Notes = [.. check.Notes, "the file changed while it was checked: the check is not recorded (check it again)"] };
            }
            results.Add(new VerifyResult(check, comparison));
            observer.Checked(results[^1]);
        }
        return results;
    }

    /// <summary>Whether the file is gone now, or the same as <paramref name="before"/>; neither when it cannot be looked at.</summary>
    private static async Task<(bool Gone, bool Unchanged)> LookAgainAsync(BackupLocation file, StorageEntry? before, CancellationToken cancellationToken)
    {
        try
        {
            var now = await file.StatAsync(cancellationToken).ConfigureAwait(false);
            return (now is null, before is not null && now == before);
        }
        catch (Exception e) when (StorageSet.IsStorageFault(e, cancellationToken))
        {
            return (false, false);
        }
    }

    /// <summary>
    /// A file this host could not check (its temp directory missing or full): not a bad backup, so
    /// the file's earlier verify record stays.
    /// </summary>
    private void Unchecked(BackupLocation file, HostFaultException e, List<VerifyResult> results)
    {
        results.Add(new VerifyResult(new FileCheck(file.Description, null, [$"not checked: {e.Message}"], [], file) { Unreachable = true }, null));
        observer.Checked(results[^1]);
    }

    /// <summary>
    /// Records a passed digest check beside the manifest (what prune trusts instead of reading the
    /// file again), and what a failed check of the file itself (<paramref name="fileCheck"/>: digests, decoding,
    /// trailer) found, for list to show; any other failure (a test restore's, a decryption's: the key may be
    /// the wrong one) removes an earlier record. Not being able to write it is a warning.
    /// </summary>
    private async Task RecordAsync(BackupLocation file, FileCheck check, FileCheck fileCheck, CancellationToken cancellationToken)
    {
        if (file.Storage is not IStorage storage || (check.Ok && check.Manifest is null))
        {
            return;
        }
        try
        {
            if (check.Ok && check.Manifest is { } manifest)
            {
                await VerifyRecord.WriteAsync(storage, file.Key, manifest, "verify", time.GetUtcNow(), replace: null, cancellationToken).ConfigureAwait(false);
            }
            else if (!fileCheck.Ok && !fileCheck.DecryptionFailed && fileCheck.Manifest is { } checkedAgainst)
            {
                await VerifyRecord.WriteAsync(storage, file.Key, checkedAgainst, "verify", time.GetUtcNow(), replace: null, cancellationToken,
                    failure: string.Join("; ", fileCheck.Problems)).ConfigureAwait(false);
            }
            else
            {
                await storage.DeleteAsync(VerifyRecord.KeyFor(file.Key), cancellationToken).ConfigureAwait(false);
                return;
            }
            if (await storage.StatAsync(file.Key, cancellationToken).ConfigureAwait(false) is null)
            {
                // Pruned (by another run) while it was checked: a record without its backup would stay for ever.
                await storage.DeleteAsync(VerifyRecord.KeyFor(file.Key), cancellationToken).ConfigureAwait(false);
            }
        }
        catch (Exception e) when (StorageSet.IsStorageFault(e, cancellationToken))
        {
            observer.Warning($"the check of {file.Description} could not be recorded beside it: {e.Message}");
        }
    }

    /// <summary>The file given, or the backups of the instance in each of its destinations (copies are checked too).</summary>
    private async Task<IReadOnlyList<BackupLocation>> FilesAsync(
        VerifyRequest request, StorageSet storages, List<VerifyResult> results, CancellationToken cancellationToken)
    {
        if (request.File is not null)
        {
            return [await BackupLocations.FindAsync(request.File, request.Instance, config, storages, cancellationToken).ConfigureAwait(false)];
        }
        var instance = request.Instance!;
        var files = new List<BackupLocation>();
        var places = new List<string>();
        foreach (var (name, storage) in storages.For(instance))
        {
            var place = name == StorageConfig.LocalName ? config.BackupDir : storage.Describe(BackupCatalog.InstancePrefix(instance).TrimEnd('/'));
            places.Add(place);
            List<CatalogEntry> entries;
            try
            {
                entries = [.. (await BackupCatalog.ListAsync(storage, instance, cancellationToken).ConfigureAwait(false))
                    .Where(e => request.Database is null || e.Name.Database == request.Database)];
            }
            catch (Exception e) when (StorageSet.IsStorageFault(e, cancellationToken))
            {
                // One destination down: its backups are unchecked (and said so), the others are checked.
                results.Add(new VerifyResult(
                    new FileCheck($"storage '{name}' ({place})", null, [$"cannot be listed, its backups were not checked: {IoErrors.Describe(e)}"], []) { Unreachable = true },
                    null));
                observer.Checked(results[^1]);
                continue;
            }
            var complete = entries.Where(e => e.HasManifest);
            if (request.Latest)
            {
                complete = complete.GroupBy(e => e.Name.Database, StringComparer.Ordinal).Select(g => g.First());
            }
            // With --latest, only what is newer than a database's latest backup is worth a word (a run under way or failed).
            var latest = request.Latest ? complete.ToDictionary(e => e.Name.Database, e => e.Name.TimestampUtc, StringComparer.Ordinal) : null;
            foreach (var incomplete in entries.Where(e => !e.HasManifest
                && (latest is null || !latest.TryGetValue(e.Name.Database, out var newest) || e.Name.TimestampUtc > newest)))
            {
                observer.Skipped(storage.Describe(incomplete.Key), "incomplete: no manifest, not a backup");
            }
            foreach (var lost in complete.Where(e => !e.HasData))
            {
                // A backup whose data file is gone: a failed check, not a skip (an alert on exit 4 must see it).
                results.Add(new VerifyResult(new FileCheck(storage.Describe(lost.Key), null, [BackupCatalog.MissingDataProblem], []), null));
                observer.Checked(results[^1]);
            }
            files.AddRange(complete.Where(e => e.HasData).Select(e => new BackupLocation(storage, e.Key)));
        }
        if (files.Count == 0 && results.Count == 0)
        {
            throw new OperationFailedException(
                $"no backup with a manifest found for instance {instance.Id} ({instance.Name})"
                + (request.Database is null ? "" : $" database '{request.Database}'") + $" in {string.Join(", ", places)}");
        }
        return files;
    }

    private async Task<(FileCheck, InventoryComparison?)> TestRestoreAsync(
        FileCheck check, VerifyRequest request, DecryptionKeys keys, CancellationToken cancellationToken)
    {
        var instance = request.Instance ?? (check.Manifest is { } manifest
            ? config.GetInstance(manifest.InstanceId)
            : throw new UsageException($"{check.File} has no manifest: give --instance to test-restore it"));
        // Short enough that the staging database's name keeps all of it (RestoreStaging keeps 30
        // characters): a killed run's leftover says which scratch database it belongs to.
        var scratch = ScratchPrefix + Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(8));
        var engine = DumpEngines.For(instance);
        await RemoveAbandonedScratchAsync(engine, cancellationToken).ConfigureAwait(false);
        try
        {
            var result = await new RestoreOperation(config, observer)
                .RunAsync(new RestoreRequest(check.File, instance, scratch, DryRun: false, Force: false, Location: check.Location, Keys: keys,
                    Definer: request.Definer, AllowDataDirectory: request.AllowDataDirectory, TrustBackup: request.TrustBackup, VerifyScratch: true),
                    cancellationToken)
                .ConfigureAwait(false);
            return (check, result?.Comparison);
        }
        catch (VyaException e) when (e is not UsageException and not HostFaultException)
        {
            return (check with { Problems = [.. check.Problems, $"test restore failed: {e.Message}"] }, null);
        }
        finally
        {
            try
            {
                if ((await engine.GetTargetStateAsync(scratch, CancellationToken.None).ConfigureAwait(false)).Exists)
                {
                    await engine.DropDatabaseAsync(scratch, CancellationToken.None).ConfigureAwait(false);
                }
            }
            catch (Exception e) when (e is VyaException or System.Data.Common.DbException)
            {
                // Said, not thrown: an exception here would hide the verification's own outcome.
                observer.Warning($"the scratch database '{scratch}' could not be removed: {e.Message}");
            }
        }
    }

    private const string ScratchPrefix = RestoreStaging.VerifyScratchPrefix;

    private static readonly System.Text.RegularExpressions.Regex ScratchOrLeftover = new(
        $"^(?:{RestoreStaging.StagingPrefix}|{RestoreStaging.ReplacedPrefix})?(?:[0-9a-f]{{8}}_)?(?<scratch>{ScratchPrefix}[0-9a-f]{{16}})$",
        System.Text.RegularExpressions.RegexOptions.CultureInvariant);

    /// <summary>
    /// Removes what a killed test restore left: its scratch database, or the staging database it
    /// was loading. One whose restore lock is held belongs to a verify still running and stays.
    /// </summary>
    private async Task RemoveAbandonedScratchAsync(IDumpEngine engine, CancellationToken cancellationToken)
    {
        var server = await engine.ProbeAsync(cancellationToken).ConfigureAwait(false);
        foreach (var database in server.Databases)
        {
            var match = ScratchOrLeftover.Match(database);
            var scratch = match.Groups["scratch"].Value;
            if (!match.Success || (database != scratch && database != RestoreStaging.StagingName(scratch)
                && database != RestoreStaging.ReplacedName(scratch)))
            {
                continue;
            }
            try
            {
                await using var held = await engine.LockRestoreAsync(scratch, cancellationToken).ConfigureAwait(false);
                observer.Warning($"removing '{database}', left by an interrupted verify --restore");
                await engine.DropDatabaseAsync(database, cancellationToken).ConfigureAwait(false);
            }
            catch (LockedException)
            {
                // Another verify is restoring into it right now.
            }
        }
    }
}
