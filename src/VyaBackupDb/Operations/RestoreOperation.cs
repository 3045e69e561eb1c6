using System.Data.Common;
using System.Diagnostics;
using System.Text;
using VyaBackupDb.Catalog;
using VyaBackupDb.Config;
using VyaBackupDb.Engines;
using VyaBackupDb.Errors;
using VyaBackupDb.Pipeline;
using VyaBackupDb.Pipeline.Age;
using VyaBackupDb.Storage;

namespace VyaBackupDb.Operations;

/// <param name="File">What the user gave: a path, NAME:KEY, s3://... or sftp://... (see <see cref="BackupLocations"/>).</param>
/// <param name="Location">The backup, already resolved (verify passes it); <paramref name="File"/> is then only for messages.</param>
/// <param name="Keys">What decrypts an encrypted backup (--identity and the config's encryption: section).</param>
/// <param name="Definer">MySQL: DEFINER clauses (--definer); null: the instance's <c>definer:</c> setting.</param>
/// <param name="EnableEvents">MySQL: events stay enabled as dumped (--enable-events); otherwise they are restored disabled.</param>
public sealed record RestoreRequest(
    string File, InstanceConfig Instance, string? Target, bool DryRun, bool Force, bool Verify = true, BackupLocation? Location = null,
    DecryptionKeys? Keys = null, Engines.MySql.DefinerMode? Definer = null, bool EnableEvents = false);

public sealed record RestorePlan(
    string File, long FileBytes, StoredFormat Format, Dbms? FileDbms, string? SourceDatabase, DateTime? TakenUtc,
    string Target, TargetState TargetState, BackupManifest? Manifest)
{
    public Compression Compression => Format.Compression;
}

public sealed record RestoreResult(RestorePlan Plan, int TablesRestored, long PlainBytes, TimeSpan Duration, InventoryComparison? Comparison);

/// <summary>What a restore tells its user, and how it asks before replacing data.</summary>
public interface IRestoreObserver
{
    void Planned(RestorePlan plan);

    /// <summary>Asks the user; false when there is nobody to ask.</summary>
    bool Confirm(string question);

    void Started(long fileBytes, Func<long> fileBytesRead);

    void Compared(InventoryComparison comparison);

    void Warning(string message);
}

/// <summary>
/// Restores a backup file into one target database: only the target is created, replaced or
/// written; a dump that ends without its completion trailer fails the restore.
/// </summary>
public sealed class RestoreOperation(AppConfig config, IRestoreObserver observer)
{
    private const int HeadBytes = 64 * 1024;

    public async Task<RestoreResult?> RunAsync(RestoreRequest request, CancellationToken cancellationToken)
    {
        var clock = Stopwatch.StartNew();
        using var storages = new StorageSet(config);
        var location = request.Location ?? BackupLocations.Resolve(request.File, config, storages);
        var plan = await PlanAsync(location, request, cancellationToken).ConfigureAwait(false);
        observer.Planned(plan);
        var instance = request.Instance;
        var engine = DumpEngines.For(instance);

        if (plan.FileDbms is null && request.Verify)
        {
            // Not our name, no manifest, no mysqldump/pg_dump header: likely the wrong file (a
            // manifest, a log). Refuse before the target is dropped or created.
            throw new UsageException(
                $"{location.FileName} does not look like a backup (no manifest, not a backup file name, no mysqldump/pg_dump header); "
                + "use --no-verify to restore it anyway");
        }
        if (!request.Verify)
        {
            observer.Warning("--no-verify: digests, the completion trailer and row counts are not checked");
        }
        else if (plan.Manifest is null)
        {
            observer.Warning($"no manifest beside {location.FileName}: no digest was recorded; checking the completion trailer only");
        }
        else if (!request.DryRun
            && await BackupFileChecker.CheckStoredAsync(location, plan.Manifest, cancellationToken).ConfigureAwait(false) is { } problem)
        {
            throw new VerificationFailedException($"{plan.File}: {problem}; nothing was restored");
        }

        var replacing = plan.TargetState.HoldsData;
        if (replacing && !request.Force && !request.DryRun
            && !observer.Confirm($"Database '{plan.Target}' on instance {instance.Id} ({instance.Name}) holds {plan.TargetState.Contents}. Replace it?"))
        {
            throw new UsageException(
                $"database '{plan.Target}' on instance {instance.Id} holds {plan.TargetState.Contents}; not replaced (use --force to replace it)");
        }
        if (request.DryRun)
        {
            return null;
        }

        if (replacing)
        {
            await engine.DropDatabaseAsync(plan.Target, cancellationToken).ConfigureAwait(false);
        }
        var createdHere = !plan.TargetState.Exists || replacing;
        if (createdHere)
        {
            await engine.CreateDatabaseAsync(plan.Target, cancellationToken).ConfigureAwait(false);
        }

        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(config.Timeout);
        long plainBytes;
        try
        {
            await using var opened = await BackupFileChecker.OpenStoredAsync(location, plan.Format, timeout.Token).ConfigureAwait(false);
            // A zip reads a seekable file (its position is the progress); a stream is counted as it passes.
            var file = opened.CanSeek ? opened : new MeasuringStream(opened, leaveOpen: true);
            observer.Started(plan.FileBytes, opened.CanSeek ? () => opened.Position : () => ((MeasuringStream)file).Bytes);
            var decoded = await BackupChain.OpenReadAsync(file, plan.Compression, plan.Format.Encrypted, Keys(request), timeout.Token)
                .ConfigureAwait(false);
            await using var plain = new MeasuringStream(decoded)
            {
                // Runs before the client sees the end of its input: psql has not committed yet.
                AtEndOfInput = m =>
                {
                    if (request.Verify)
                    {
                        CheckCompleteDump(m, engine.CompletionTrailer, plan);
                    }
                },
            };
            await engine.RestoreAsync(plan.Target, plain, timeout.Token).ConfigureAwait(false);
            plainBytes = plain.Bytes;
        }
        catch (Exception e) when (e is VyaException or IOException or InvalidDataException or OperationCanceledException or DbException
            || BackupFileChecker.IsDecodeError(e))
        {
            var reason = e switch
            {
                OperationCanceledException when !cancellationToken.IsCancellationRequested =>
                    $"timed out after {config.Timeout.TotalSeconds:0} s (timeout_seconds)",
                OperationCanceledException => "interrupted",
                VyaException => e.Message,
                DbException => $"server error: {e.Message}",
                _ => $"cannot read {plan.File}: {e.Message}",
            };
            if (createdHere)
            {
                // The target did not exist (or was emptied on request) before: leave no half of it.
                try
                {
                    await engine.DropDatabaseAsync(plan.Target, CancellationToken.None).ConfigureAwait(false);
                    reason += $"; the incomplete database '{plan.Target}' was removed";
                }
                catch (VyaException dropError)
                {
                    reason += $"; the incomplete database '{plan.Target}' could not be removed: {dropError.Message}";
                }
            }
            if (e is OperationCanceledException && cancellationToken.IsCancellationRequested)
            {
                throw;
            }
            var message = $"restore of {location.FileName} into '{plan.Target}' failed: {reason}";
            throw e switch
            {
                VerificationFailedException => new VerificationFailedException(message, e),
                AgeException age => new AgeException(message, age.ExitCode),
                _ => new OperationFailedException(message, e),
            };
        }

        var after = await engine.GetTargetStateAsync(plan.Target, cancellationToken).ConfigureAwait(false);
        InventoryComparison? comparison = null;
        if (request.Verify && plan.Manifest is not null)
        {
            var restored = await engine.InventoryAsync(plan.Target, cancellationToken).ConfigureAwait(false);
            comparison = InventoryComparison.Compare(plan.Manifest.Inventory, restored);
            observer.Compared(comparison);
            if (!comparison.Matches)
            {
                throw new VerificationFailedException(
                    $"'{plan.Target}' was restored but differs from the backup's manifest: {string.Join("; ", comparison.Mismatches)}");
            }
        }
        return new RestoreResult(plan, after.TableCount, plainBytes, clock.Elapsed, comparison);
    }

    private static void CheckCompleteDump(MeasuringStream plain, string trailer, RestorePlan plan)
    {
        if (!plain.TailContains(trailer))
        {
            throw new OperationFailedException(
                $"{plan.File} ends without the dump's completion trailer ('{trailer}'): it is truncated or incomplete");
        }
        if (plan.Manifest is { } manifest && (plain.Bytes != manifest.PlainBytes || plain.Sha256Hex() != manifest.PlainSha256))
        {
            throw new VerificationFailedException($"{plan.File}: the decoded dump differs from its manifest's digest");
        }
    }

    /// <summary>Reads what the file is (name, codec, which DBMS made it) and the target's state; changes nothing.</summary>
    public static Task<RestorePlan> PlanAsync(RestoreRequest request, CancellationToken cancellationToken) =>
        PlanAsync(request.Location ?? BackupLocations.Resolve(request.File, null, null), request, cancellationToken);

    public static async Task<RestorePlan> PlanAsync(BackupLocation location, RestoreRequest request, CancellationToken cancellationToken)
    {
        var entry = await location.StatAsync(cancellationToken).ConfigureAwait(false)
            ?? throw new UsageException($"backup file not found: {location.Description}");
        var fileName = location.FileName;
        var name = BackupName.TryParse(fileName);
        var fileBytes = entry.Size;

        var format = await BackupFileChecker.FormatOfAsync(location, cancellationToken).ConfigureAwait(false);

        var target = request.Target ?? name?.Database
            ?? throw new UsageException($"cannot tell the database from the file name '{fileName}'; give --target");
        if (target.Length == 0)
        {
            throw new UsageException("the target database name is empty");
        }

        // Which DBMS made the file: its manifest, else its name, else its header (old files).
        var manifest = await location.LoadManifestAsync(cancellationToken).ConfigureAwait(false);
        var fileDbms = BackupFileChecker.DbmsOf(manifest, name)
            ?? DbmsFromContent(await ReadHeadAsync(location, format, Keys(request), cancellationToken).ConfigureAwait(false));
        if (format.Encrypted)
        {
            // A wrong or missing key fails here, before the target is touched.
            await BackupChain.CheckKeysAsync(await location.OpenReadAsync(cancellationToken).ConfigureAwait(false), Keys(request), cancellationToken)
                .ConfigureAwait(false);
        }
        var instance = request.Instance;
        if (fileDbms is { } dbms && dbms != instance.Dbms)
        {
            throw new UsageException(
                $"{fileName} is a {dbms.ToName()} backup but instance {instance.Id} ({instance.Name}) is {instance.Dbms.ToName()}");
        }

        var state = await DumpEngines.For(instance).GetTargetStateAsync(target, cancellationToken).ConfigureAwait(false);
        return new RestorePlan(location.Description, fileBytes, format, fileDbms, name?.Database, name?.TimestampUtc, target, state, manifest);
    }

    private static async Task<string> ReadHeadAsync(
        BackupLocation location, StoredFormat format, DecryptionKeys keys, CancellationToken cancellationToken)
    {
        try
        {
            await using var plain = await BackupFileChecker.OpenPlainAsync(location, format, keys, cancellationToken).ConfigureAwait(false);
            var head = new byte[HeadBytes];
            var n = await plain.ReadAtLeastAsync(head, head.Length, throwOnEndOfStream: false, cancellationToken).ConfigureAwait(false);
            return Encoding.UTF8.GetString(head, 0, n);
        }
        catch (Exception e) when (e is InvalidDataException or ZstdSharp.ZstdException || (e is IOException && BackupFileChecker.IsDecodeError(e)))
        {
            throw new OperationFailedException($"cannot read {location.Description} as {format.Compression.ToName()}: {e.Message}", e);
        }
    }

    private static DecryptionKeys Keys(RestoreRequest request) => request.Keys ?? DecryptionKeys.None;

    /// <summary>Which DBMS wrote a dump, from its header comment; null when it does not say.</summary>
    public static Dbms? DbmsFromContent(string head)
    {
        if (head.Contains("-- PostgreSQL database dump", StringComparison.Ordinal))
        {
            return Dbms.PostgreSql;
        }
        if (head.Contains("-- MySQL dump", StringComparison.Ordinal) || head.Contains("-- MariaDB dump", StringComparison.Ordinal)
            || head.StartsWith("/*M!999999", StringComparison.Ordinal))
        {
            return Dbms.MySql;
        }
        return null;
    }

}
