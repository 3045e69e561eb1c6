using VyaBackupDb.Catalog;
using VyaBackupDb.Config;
using VyaBackupDb.Engines;
using VyaBackupDb.Errors;
using VyaBackupDb.Storage.Local;

namespace VyaBackupDb.Operations;

public sealed record VerifyRequest(string? File, InstanceConfig? Instance, string? Database, bool Latest, bool Restore);

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
public sealed class VerifyOperation(AppConfig config, IVerifyObserver observer)
{
    public async Task<IReadOnlyList<VerifyResult>> RunAsync(VerifyRequest request, CancellationToken cancellationToken)
    {
        var results = new List<VerifyResult>();
        foreach (var file in await FilesAsync(request, cancellationToken).ConfigureAwait(false))
        {
            var check = await BackupFileChecker.CheckAsync(file, cancellationToken).ConfigureAwait(false);
            InventoryComparison? comparison = null;
            if (request.Restore && check.Ok)
            {
                (check, comparison) = await TestRestoreAsync(check, request.Instance, cancellationToken).ConfigureAwait(false);
            }
            results.Add(new VerifyResult(check, comparison));
            observer.Checked(results[^1]);
        }
        return results;
    }

    private async Task<IReadOnlyList<string>> FilesAsync(VerifyRequest request, CancellationToken cancellationToken)
    {
        if (request.File is not null)
        {
            return [request.File];
        }
        var instance = request.Instance!;
        var storage = new LocalStorage(config.BackupDir);
        var entries = (await BackupCatalog.ListAsync(storage, instance, cancellationToken).ConfigureAwait(false))
            .Where(e => request.Database is null || e.Name.Database == request.Database)
            .ToList();
        foreach (var incomplete in entries.Where(e => !e.HasManifest))
        {
            observer.Skipped(storage.Describe(incomplete.Key), "incomplete: no manifest, not a backup");
        }
        var complete = entries.Where(e => e.HasManifest);
        if (request.Latest)
        {
            complete = complete.GroupBy(e => e.Name.Database, StringComparer.Ordinal).Select(g => g.First());
        }
        var files = complete.Select(e => storage.Describe(e.Key)).ToList();
        if (files.Count == 0)
        {
            throw new OperationFailedException(
                $"no backup with a manifest found for instance {instance.Id} ({instance.Name})"
                + (request.Database is null ? "" : $" database '{request.Database}'") + $" in {config.BackupDir}");
        }
        return files;
    }

    private async Task<(FileCheck, InventoryComparison?)> TestRestoreAsync(
        FileCheck check, InstanceConfig? instance, CancellationToken cancellationToken)
    {
        instance ??= check.Manifest is { } manifest
            ? config.GetInstance(manifest.InstanceId)
            : throw new UsageException($"{check.File} has no manifest: give --instance to test-restore it");
        var scratch = $"vya_verify_{DateTime.UtcNow:yyyyMMddHHmmss}_{Guid.NewGuid().ToString("N")[..8]}";
        var engine = DumpEngines.For(instance);
        try
        {
            var result = await new RestoreOperation(config, observer)
                .RunAsync(new RestoreRequest(check.File, instance, scratch, DryRun: false, Force: false), cancellationToken)
                .ConfigureAwait(false);
            return (check, result?.Comparison);
        }
        catch (VyaException e) when (e is not UsageException)
        {
            return (check with { Problems = [.. check.Problems, $"test restore failed: {e.Message}"] }, null);
        }
        finally
        {
            if ((await engine.GetTargetStateAsync(scratch, CancellationToken.None).ConfigureAwait(false)).Exists)
            {
                await engine.DropDatabaseAsync(scratch, CancellationToken.None).ConfigureAwait(false);
            }
        }
    }
}
