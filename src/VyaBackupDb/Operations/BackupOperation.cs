using System.Diagnostics;
using VyaBackupDb.Catalog;
using VyaBackupDb.Config;
using VyaBackupDb.Engines;
using VyaBackupDb.Errors;
using VyaBackupDb.Pipeline;
using VyaBackupDb.Storage;
using VyaBackupDb.Storage.Local;

namespace VyaBackupDb.Operations;

public sealed record BackupRequest(IReadOnlyList<InstanceConfig> Instances, string? Database, Compression Compression, bool DryRun);

/// <summary>One database to back up, and where its backup goes.</summary>
public sealed record BackupItem(InstanceConfig Instance, string Database, string Key, string Location);

public sealed record BackupItemResult(
    InstanceConfig Instance,
    string Database,
    string? Location,
    string? Error,
    long PlainBytes,
    long StoredBytes,
    TimeSpan Duration,
    bool Locked = false,
    bool VaultFailed = false)
{
    public bool Succeeded => Error is null;
}

public sealed record BackupReport(IReadOnlyList<BackupItemResult> Results, TimeSpan Duration)
{
    public ExitCode ExitCode =>
        Results.Count > 0 && Results.All(r => r.Locked) ? ExitCode.Locked
        : Results.Count > 0 && Results.All(r => r.VaultFailed) ? ExitCode.VaultError
        : Results.Count == 0 || Results.All(r => !r.Succeeded) ? ExitCode.Failed
        : Results.Any(r => !r.Succeeded) ? ExitCode.PartialFailure
        : ExitCode.Success;
}

/// <summary>What a backup run tells its user as it goes.</summary>
public interface IBackupObserver
{
    void Planned(BackupItem item);

    void Started(BackupItem item, Func<long> storedBytesSoFar);

    void Finished(BackupItemResult result);

    void Warning(string message);
}

/// <summary>
/// Backs up databases: dump → digest(plain) → compress → digest(stored) → storage, committed only
/// when the dump tool exited 0 and the dump ends with its completion trailer. One database
/// failing does not stop the others.
/// </summary>
public sealed class BackupOperation(AppConfig config, IStorage storage, TimeProvider time, IBackupObserver observer)
{
    /// <summary>A temp file this old belongs to no running backup (no dump runs for a day).</summary>
    private static readonly TimeSpan AbandonedAfter = TimeSpan.FromDays(1);

    public async Task<BackupReport> RunAsync(BackupRequest request, CancellationToken cancellationToken)
    {
        var clock = Stopwatch.StartNew();
        var results = new List<BackupItemResult>();
        foreach (var instance in request.Instances)
        {
            var engine = DumpEngines.For(instance);
            IReadOnlyList<string> databases;
            ServerInfo server;
            try
            {
                server = await engine.ProbeAsync(cancellationToken).ConfigureAwait(false);
                databases = ChooseDatabases(instance, server, request.Database);
            }
            catch (VyaException e)
            {
                results.Add(new BackupItemResult(instance, request.Database ?? "*", null, e.Message, 0, 0, TimeSpan.Zero, VaultFailed: e is VaultException));
                observer.Finished(results[^1]);
                continue;
            }
            if (!request.DryRun)
            {
                // Temp files of runs that were killed (a crash cannot clean up after itself).
                await storage.SweepAbandonedAsync(BackupCatalog.InstancePrefix(instance), time.GetUtcNow() - AbandonedAfter, cancellationToken)
                    .ConfigureAwait(false);
            }
            if (databases.Count == 0)
            {
                observer.Warning($"instance {instance.Id} ({instance.Name}): no database matches include/exclude");
            }
            foreach (var database in databases)
            {
                var item = PlanItem(instance, database, request.Compression);
                if (request.DryRun)
                {
                    observer.Planned(item);
                    continue;
                }
                results.Add(await BackupOneAsync(engine, server, item, request.Compression, cancellationToken).ConfigureAwait(false));
                observer.Finished(results[^1]);
            }
        }
        return new BackupReport(results, clock.Elapsed);
    }

    private static List<string> ChooseDatabases(InstanceConfig instance, ServerInfo server, string? database)
    {
        if (database is null)
        {
            return [.. DatabaseSelector.Select(instance, server.Databases)];
        }
        // An explicit --database is taken as asked, filters or not; it only has to exist.
        if (!server.Databases.Contains(database, StringComparer.Ordinal))
        {
            throw new OperationFailedException($"database '{database}' does not exist on instance {instance.Id} ({instance.Name})");
        }
        return [database];
    }

    private BackupItem PlanItem(InstanceConfig instance, string database, Compression compression)
    {
        var name = new BackupName(time.GetUtcNow().UtcDateTime, instance.Dbms, database, compression);
        var key = $"{BackupName.Encode(instance.Name)}/{name.FileName}";
        return new BackupItem(instance, database, key, storage.Describe(key));
    }

    private async Task<BackupItemResult> BackupOneAsync(
        IDumpEngine engine, ServerInfo server, BackupItem item, Compression compression, CancellationToken cancellationToken)
    {
        var clock = Stopwatch.StartNew();
        var started = time.GetUtcNow();
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(config.Timeout);
        try
        {
            using var held = BackupLock.Acquire(config.BackupDir, item.Instance.Name, item.Database, time, observer.Warning);
            await using var write = await storage.CreateAsync(item.Key, timeout.Token).ConfigureAwait(false);
            var stored = new MeasuringStream(write.Content, leaveOpen: true);
            observer.Started(item, () => stored.Bytes);
            var entryName = Path.GetFileName(item.Key)[..^compression.Extension().Length] + ".sql";
            var plain = new MeasuringStream(Codec.Compress(compression, stored, entryName));
            DumpDetails details;
            try
            {
                details = await engine.DumpAsync(item.Database, plain, timeout.Token).ConfigureAwait(false);
                if (!plain.TailContains(engine.CompletionTrailer))
                {
                    throw new OperationFailedException(
                        $"the dump of {item.Database} ended without its completion trailer ('{engine.CompletionTrailer}'): it is incomplete");
                }
            }
            catch
            {
                await DisposeQuietlyAsync(plain).ConfigureAwait(false);
                throw;
            }
            var plainSha256 = plain.Sha256Hex();
            // Finishes the compressed format (zstd frame end, gzip trailer, zip directory).
            await plain.DisposeAsync().ConfigureAwait(false);
            await stored.FlushAsync(timeout.Token).ConfigureAwait(false);
            await write.CommitAsync(timeout.Token).ConfigureAwait(false);

            var manifest = new BackupManifest
            {
                ToolVersion = ToolInfo.Version,
                DataFile = Path.GetFileName(item.Key),
                InstanceId = item.Instance.Id,
                InstanceName = item.Instance.Name,
                Dbms = item.Instance.Dbms.ToName(),
                ServerFlavor = server.Flavor,
                ServerVersion = server.Version,
                Database = item.Database,
                DumpTool = details.Tool,
                DumpToolVersion = details.ToolVersion,
                Compression = compression.ToName(),
                StartedUtc = started,
                FinishedUtc = time.GetUtcNow(),
                PlainBytes = plain.Bytes,
                StoredBytes = stored.Bytes,
                PlainSha256 = plainSha256,
                StoredSha256 = stored.Sha256Hex(),
                Inventory = details.Inventory,
            };
            // The manifest goes last: until it exists, the data file is not a backup.
            try
            {
                await WriteSmallAsync(item.Key + BackupManifest.ChecksumSuffix, System.Text.Encoding.UTF8.GetBytes(manifest.ChecksumLine), timeout.Token)
                    .ConfigureAwait(false);
                await WriteSmallAsync(BackupManifest.KeyFor(item.Key), manifest.ToJson(), timeout.Token).ConfigureAwait(false);
            }
            catch
            {
                await storage.DeleteAsync(item.Key + BackupManifest.ChecksumSuffix, CancellationToken.None).ConfigureAwait(false);
                await storage.DeleteAsync(item.Key, CancellationToken.None).ConfigureAwait(false);
                throw;
            }
            return new BackupItemResult(item.Instance, item.Database, item.Location, null, plain.Bytes, stored.Bytes, clock.Elapsed);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return Failed(item, $"timed out after {config.Timeout.TotalSeconds:0} s (timeout_seconds)", clock.Elapsed);
        }
        catch (LockedException e)
        {
            return Failed(item, e.Message, clock.Elapsed) with { Locked = true };
        }
        catch (VyaException e)
        {
            return Failed(item, e.Message, clock.Elapsed);
        }
        catch (IOException e)
        {
            return Failed(item, $"cannot write {item.Location}: {e.Message}", clock.Elapsed);
        }
    }

    private async Task WriteSmallAsync(string key, byte[] content, CancellationToken cancellationToken)
    {
        await using var write = await storage.CreateAsync(key, cancellationToken).ConfigureAwait(false);
        await write.Content.WriteAsync(content, cancellationToken).ConfigureAwait(false);
        await write.CommitAsync(cancellationToken).ConfigureAwait(false);
    }

    private static BackupItemResult Failed(BackupItem item, string error, TimeSpan duration) =>
        new(item.Instance, item.Database, null, error, 0, 0, duration);

    /// <summary>Releases a half-written codec after a failure; its own error would hide the real one.</summary>
    private static async Task DisposeQuietlyAsync(Stream stream)
    {
        try
        {
            await stream.DisposeAsync().ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or InvalidOperationException or NotSupportedException)
        {
        }
    }

    /// <summary>The storage a config's backups go to (local backup_dir for now).</summary>
    public static IStorage DefaultStorage(AppConfig config) => new LocalStorage(config.BackupDir);

    /// <summary>
    /// Where an instance's backups are, for list and prune: the one place that chooses, so that
    /// configured destinations can replace it. For now: <see cref="DefaultStorage"/>, named "local".
    /// </summary>
    public static IReadOnlyList<NamedStorage> StoragesFor(AppConfig config, InstanceConfig instance) =>
        [new NamedStorage("local", DefaultStorage(config))];
}
