using System.Collections.Concurrent;
using System.Data.Common;
using System.Diagnostics;
using System.Text;
using VyaBackupDb.Catalog;
using VyaBackupDb.Config;
using VyaBackupDb.Engines;
using VyaBackupDb.Errors;
using VyaBackupDb.Pipeline;
using VyaBackupDb.Storage;
using VyaBackupDb.Storage.Local;

namespace VyaBackupDb.Operations;

/// <param name="Encrypt">Encrypt every backup of this run (backup --encrypt); instances with <c>encrypt: true</c> are encrypted anyway.</param>
/// <param name="Jobs">Connections of a parallel backup (--jobs); null: each instance's <c>jobs:</c>, else the number of cores.</param>
/// <param name="Parallel">How many instances are backed up at once (backup --parallel); the databases of one instance go one after another.</param>
public sealed record BackupRequest(
    IReadOnlyList<InstanceConfig> Instances, string? Database, Compression Compression, bool DryRun, bool Encrypt = false, int? Jobs = null,
    int Parallel = 1);

/// <summary>One database to back up, and where its backup goes (<paramref name="Copies"/>: where it is copied after).</summary>
public sealed record BackupItem(InstanceConfig Instance, string Database, string Key, string Location, IReadOnlyList<string>? Copies = null)
{
    /// <summary>The database's size as its server reports it, when known: what progress estimates the dump's size by.</summary>
    public long? ExpectedBytes { get; init; }
}

/// <param name="SetupFailure">Failed for this host's setup, not the server: a config error (2: a password_env not set, a
/// password_file missing) or the vault (7). A run whose databases all failed so exits with that code.</param>
public sealed record BackupItemResult(
    InstanceConfig Instance,
    string Database,
    string? Location,
    string? Error,
    long PlainBytes,
    long StoredBytes,
    TimeSpan Duration,
    bool Locked = false,
    ExitCode? SetupFailure = null,
    IReadOnlyList<string>? Copies = null)
{
    public bool Succeeded => Error is null;

    /// <summary>"ok", "failed", "locked" or "not_copied" (backed up, but not to every destination): as `backup --json` and the notifications name it.</summary>
    public string Status => Succeeded ? "ok" : Locked ? "locked" : Location is not null ? "not_copied" : "failed";

    /// <summary>The destinations (storage names) that hold this backup, complete with its manifest.</summary>
    public IReadOnlyList<string> Destinations { get; init; } = [];

    /// <summary>The destinations it should have gone to but did not (unreachable, or the copy failed).</summary>
    public IReadOnlyList<string> FailedDestinations { get; init; } = [];

    /// <summary>When this database's backup (or its instance's failed probe) started and ended.</summary>
    public DateTimeOffset? StartedUtc { get; init; }

    public DateTimeOffset? FinishedUtc { get; init; }
}

public sealed record BackupReport(IReadOnlyList<BackupItemResult> Results, TimeSpan Duration)
{
    public ExitCode ExitCode =>
        Results.Count > 0 && Results.All(r => r.Locked) ? ExitCode.Locked
        : Results.Count > 0 && Results[0].SetupFailure is { } setup && Results.All(r => r.SetupFailure == setup) ? setup
        : Results.Count == 0 || Results.All(r => !r.Succeeded) ? ExitCode.Failed
        : Results.Any(r => !r.Succeeded) ? ExitCode.PartialFailure
        : ExitCode.Success;

    /// <summary>A run's exit code as `backup --json` and the notifications name it.</summary>
    public static string StatusName(ExitCode code) => code switch
    {
        ExitCode.Success => "ok",
        ExitCode.PartialFailure => "partial_failure",
        ExitCode.Locked => "locked",
        ExitCode.VaultError => "vault_error",
        ExitCode.Interrupted => "interrupted",
        _ => "failed",
    };
}

/// <summary>What a backup run tells its user as it goes; with several instances at once (--parallel), from several threads at once.</summary>
public interface IBackupObserver
{
    void Planned(BackupItem item);

    void Started(BackupItem item, Func<long> storedBytesSoFar, Func<long> plainBytesSoFar);

    void Finished(BackupItemResult result);

    void Warning(string message);
}

/// <summary>
/// Backs up databases: dump → digest(plain) → compress → digest(stored) → storage, committed only
/// when the dump tool exited 0 and the dump ends with its completion trailer. One database
/// failing does not stop the others. With several destinations the dump goes to the first and is
/// then copied from it to each other one; each copy is read back and checked against the
/// manifest's digest before its own .sha256 and manifest are written.
/// </summary>
public sealed class BackupOperation
{
    /// <summary>A temp file this old belongs to no running backup (no dump runs for a day).</summary>
    private static readonly TimeSpan AbandonedAfter = TimeSpan.FromDays(1);

    private readonly AppConfig config;
    private readonly Func<InstanceConfig, IReadOnlyList<NamedStorage>> destinations;
    private readonly TimeProvider time;
    private readonly IBackupObserver observer;
    private readonly ConcurrentDictionary<IStorage, string> _unreachable = new(ReferenceEqualityComparer.Instance);

    /// <summary>Destinations are opened on first use (<see cref="StorageSet"/>): one instance at a time.</summary>
    private readonly Lock _destinationsLock = new();

    /// <summary>Every instance's backups go to <paramref name="storage"/> (its storage settings are ignored).</summary>
    public BackupOperation(AppConfig config, IStorage storage, TimeProvider time, IBackupObserver observer)
        : this(config, _ => [new NamedStorage(StorageConfig.LocalName, storage)], time, observer)
    {
    }

    /// <summary>Each instance's backups go to the destinations its <c>storage:</c> names (default: backup_dir).</summary>
    public BackupOperation(AppConfig config, StorageSet storages, TimeProvider time, IBackupObserver observer)
        : this(config, storages.For, time, observer)
    {
    }

    /// <summary>Each instance's backups go to the destinations <paramref name="destinations"/> gives (tests).</summary>
    internal BackupOperation(
        AppConfig config, Func<InstanceConfig, IReadOnlyList<NamedStorage>> destinations, TimeProvider time, IBackupObserver observer)
    {
        this.config = config;
        this.destinations = destinations;
        this.time = time;
        this.observer = observer;
    }

    /// <summary>
    /// Backs up the request's instances, up to <see cref="BackupRequest.Parallel"/> at once, taken in
    /// the request's order; the results come back in that order (instance, then database), whichever
    /// finished first.
    /// </summary>
    public async Task<BackupReport> RunAsync(BackupRequest request, CancellationToken cancellationToken)
    {
        var clock = Stopwatch.StartNew();
        var instances = request.Instances;
        var results = new List<BackupItemResult>[instances.Count];
        var planned = new List<BackupItem>[instances.Count];
        var next = -1;
        var stop = false;
        async Task WorkAsync()
        {
            int index;
            while (!Volatile.Read(ref stop) && (index = Interlocked.Increment(ref next)) < instances.Count)
            {
                planned[index] = [];
                try
                {
                    results[index] = await BackupInstanceAsync(instances[index], request, planned[index], cancellationToken).ConfigureAwait(false);
                }
                catch
                {
                    // Interrupted (or a bug): no further instance starts; those running finish or stop on the same token.
                    Volatile.Write(ref stop, true);
                    throw;
                }
            }
        }
        var workers = Math.Clamp(request.Parallel, 1, Math.Max(1, instances.Count));
        await Task.WhenAll(Enumerable.Range(0, workers).Select(_ => Task.Run(WorkAsync, CancellationToken.None))).ConfigureAwait(false);
        // A dry run says what it would do in the config's order, not in the order probes answered.
        foreach (var item in planned.Where(p => p is not null).SelectMany(p => p))
        {
            observer.Planned(item);
        }
        return new BackupReport([.. results.Where(r => r is not null).SelectMany(r => r)], clock.Elapsed);
    }

    /// <summary>One instance: probe it (within connect_timeout_seconds), then back up its databases one after another.</summary>
    private async Task<List<BackupItemResult>> BackupInstanceAsync(
        InstanceConfig instance, BackupRequest request, List<BackupItem> planned, CancellationToken cancellationToken)
    {
        var results = new List<BackupItemResult>();
        var engine = Sources.BackupSources.For(instance, request.Jobs);
        IReadOnlyList<string> databases;
        ServerInfo server;
        IReadOnlyList<NamedStorage> targets;
        var down = new List<(string Name, string Reason)>();
        var started = time.GetUtcNow();
        var probeClock = Stopwatch.StartNew();
        try
        {
            lock (_destinationsLock)
            {
                targets = destinations(instance);
            }
            server = await WithinConnectTimeoutAsync(instance, engine.ProbeAsync, cancellationToken).ConfigureAwait(false);
            databases = engine.Select(server, request.Database);
            if (!request.DryRun)
            {
                (targets, down) = await ReachAsync(instance, targets, cancellationToken).ConfigureAwait(false);
            }
        }
        catch (Exception e) when (e is VyaException or IOException or UnauthorizedAccessException or DbException or DecoderFallbackException)
        {
            // Ours are scrubbed already; a driver's message (DbException) is outside text.
            var message = e is VyaException or StorageException ? IoErrors.Describe(e) : Redaction.Redact(IoErrors.Describe(e));
            Add(new BackupItemResult(instance, request.Database ?? "*", null, message, 0, 0, probeClock.Elapsed, SetupFailure: SetupFailureOf(e)));
            return results;
        }
        if (targets.Count == 0)
        {
            // Every destination is down: nothing of this instance can be written anywhere.
            Add(new BackupItemResult(instance, request.Database ?? "*", null,
                $"no destination can be reached: {string.Join("; ", down.Select(d => d.Reason))}",
                0, 0, probeClock.Elapsed) { FailedDestinations = [.. down.Select(d => d.Name)] });
            return results;
        }
        if (request.Database is null)
        {
            var missing = DatabaseSelector.Missing(instance, server.Databases);
            foreach (var database in missing)
            {
                // A failure, not a warning: the database named is not backed up.
                var why = $"named in include: {DatabaseSelector.NotFound(instance, server, database)}";
                if (request.DryRun)
                {
                    observer.Warning($"instance {instance.Id} ({instance.Name}): {why}");
                    continue;
                }
                Add(new BackupItemResult(instance, database, null, why, 0, 0, TimeSpan.Zero));
            }
            foreach (var closed in DatabaseSelector.Select(instance, server.Closed).Except(missing, StringComparer.Ordinal))
            {
                // Matched by a wildcard: said every run, as the operator may have closed it on purpose.
                observer.Warning($"instance {instance.Id} ({instance.Name}): {DatabaseSelector.Closed(closed)}");
            }
            foreach (var unreadable in server.Unreadable)
            {
                observer.Warning($"instance {instance.Id} ({instance.Name}): database '{unreadable}' has a name that is not UTF-8 (created from a "
                    + "database in another encoding): it cannot be backed up; rename it (ALTER DATABASE ... RENAME TO, from a database of that encoding)");
            }
        }
        if (databases.Count == 0)
        {
            observer.Warning($"instance {instance.Id} ({instance.Name}): no database matches include/exclude");
        }
        foreach (var database in databases)
        {
            var encrypt = request.Encrypt || instance.Encrypt;
            if (request.DryRun)
            {
                planned.Add(PlanItem(instance, database, request.Compression, encrypt, engine.WritesSet(database), targets));
                continue;
            }
            cancellationToken.ThrowIfCancellationRequested();
            var expected = await SizeQuietlyAsync(engine, instance, database, cancellationToken).ConfigureAwait(false);
            var item = PlanItem(instance, database, request.Compression, encrypt, engine.WritesSet(database), targets) with { ExpectedBytes = expected };
            started = time.GetUtcNow();
            var result = await BackupOneAsync(engine, server, item, request.Compression, encrypt, targets, down, cancellationToken).ConfigureAwait(false);
            Add(result with { StartedUtc = started, FinishedUtc = time.GetUtcNow() });
        }
        return results;

        void Add(BackupItemResult result)
        {
            result = result.StartedUtc is null ? result with { StartedUtc = started, FinishedUtc = time.GetUtcNow() } : result;
            results.Add(result);
            observer.Finished(result);
        }
    }

    /// <summary>
    /// A server's first answer (connect, log in, list databases), bounded by connect_timeout_seconds:
    /// a server that is down or does not speak fails its instance fast instead of holding the run.
    /// </summary>
    private async Task<T> WithinConnectTimeoutAsync<T>(
        InstanceConfig instance, Func<CancellationToken, Task<T>> step, CancellationToken cancellationToken)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(config.ConnectTimeout);
        var task = step(timeout.Token);
        try
        {
            // WaitAsync: the run goes on even if a driver is slow to notice the cancellation.
            return await task.WaitAsync(timeout.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (timeout.IsCancellationRequested && !cancellationToken.IsCancellationRequested
            && e is OperationCanceledException or VyaException or DbException or IOException or TimeoutException)
        {
            // Whatever the abandoned call ends with has been reported as this timeout.
            _ = task.ContinueWith(t => t.Exception, CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted, TaskScheduler.Default);
            var where = instance.Dbms == Dbms.Files ? $"its paths ({string.Join(", ", instance.Paths)})" : $"{instance.Host}:{instance.Port}";
            throw new OperationFailedException(
                $"no answer from {where} within {config.ConnectTimeout.TotalSeconds:0} s (connect_timeout_seconds)", e);
        }
    }

    /// <summary>The database's size for progress estimates; unknown (null) rather than a failure when the server cannot say.</summary>
    private async Task<long?> SizeQuietlyAsync(Sources.IBackupSource engine, InstanceConfig instance, string database, CancellationToken cancellationToken)
    {
        try
        {
            return await WithinConnectTimeoutAsync(instance, token => engine.SizeAsync(database, token), cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (!cancellationToken.IsCancellationRequested
            && e is VyaException or DbException or IOException or InvalidOperationException or OverflowException or FormatException)
        {
            return null;
        }
    }

    /// <summary>
    /// Sweeps each destination of leftovers of killed runs, which also shows whether it can be
    /// reached. One that cannot is left out of this run (said once, with why): the backup goes to
    /// the others, and each database's result names the copy that was not made.
    /// </summary>
    private async Task<(IReadOnlyList<NamedStorage> Usable, List<(string Name, string Reason)> Down)> ReachAsync(
        InstanceConfig instance, IReadOnlyList<NamedStorage> targets, CancellationToken cancellationToken)
    {
        var usable = new List<NamedStorage>();
        var down = new List<(string Name, string Reason)>();
        foreach (var target in targets)
        {
            // A destination already found down in this run is not tried again (a dead host costs a connect timeout each time);
            // one whose instance folder failed is tried again for the next instance.
            if (!_unreachable.TryGetValue(target.Storage, out var reason))
            {
                try
                {
                    await target.Storage.SweepAbandonedAsync(BackupCatalog.InstancePrefix(instance), time.GetUtcNow() - AbandonedAfter, cancellationToken)
                        .ConfigureAwait(false);
                    usable.Add(target);
                    continue;
                }
                catch (Exception e) when (StorageSet.IsStorageFault(e, cancellationToken))
                {
                    // Not said here: each database's result names it (one line each, not one more).
                    reason = e.Message;
                    if (StorageSet.IsDestinationDown(e))
                    {
                        _unreachable[target.Storage] = reason;
                    }
                }
            }
            down.Add((target.Name, reason));
        }
        return (usable, down);
    }

    private BackupItem PlanItem(
        InstanceConfig instance, string database, Compression compression, bool encrypt, bool set, IReadOnlyList<NamedStorage> targets)
    {
        var name = new BackupName(time.GetUtcNow().UtcDateTime, instance.Dbms, database, compression, encrypt, set);
        var key = $"{BackupName.Encode(instance.Name)}/{name.FileName}";
        var copies = targets.Skip(1).Select(t => t.Storage.Describe(key)).ToList();
        return new BackupItem(instance, database, key, targets[0].Storage.Describe(key), copies.Count == 0 ? null : copies);
    }

    private async Task<BackupItemResult> BackupOneAsync(
        Sources.IBackupSource engine, ServerInfo server, BackupItem item, Compression compression, bool encrypt, IReadOnlyList<NamedStorage> targets,
        IReadOnlyList<(string Name, string Reason)> down, CancellationToken cancellationToken)
    {
        var storage = targets[0].Storage;
        var clock = Stopwatch.StartNew();
        var started = time.GetUtcNow();
        var fileNameLength = StorageKey.FileName(item.Key).Length;
        if (fileNameLength > BackupName.MaxFileNameLength)
        {
            // Said before the dump: a local or SFTP write would fail only at its end, and an S3 backup could never be copied.
            return Failed(item, $"the name of database '{item.Database}' is too long for a backup file: its file name would be {fileNameLength} bytes, "
                + $"at most {BackupName.MaxFileNameLength} fit (each UTF-8 byte of the name other than a-z, A-Z, 0-9, '_' and '-' is written as 3: %XX)",
                clock.Elapsed);
        }
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(config.Timeout);
        StorageLock? held = null;
        try
        {
            // In backup_dir and in each destination, so that runners sharing a destination back up a database one at a time.
            held = await StorageLock.AcquireAsync(config.BackupDir, item.Instance.Name, item.Database, [.. targets.Select(t => t.Storage)],
                config.LockLease, time, observer.Warning, timeout, timeout.Token).ConfigureAwait(false);
            await using var release = held;
            item = await UnusedNameAsync(item, storage, () => PlanItem(item.Instance, item.Database, compression, encrypt, engine.WritesSet(item.Database), targets), timeout.Token)
                .ConfigureAwait(false);
            await using var write = await storage.CreateAsync(item.Key, timeout.Token).ConfigureAwait(false);
            var stored = new MeasuringStream(write.Content, leaveOpen: true);
            var fileName = StorageKey.FileName(item.Key);
            var entryName = BackupName.TryParse(fileName)!.PlainFileName;
            var plain = new MeasuringStream(BackupChain.OpenWrite(stored, compression,
                compression == config.Compression ? config.CompressionLevel : null, entryName, encrypt ? config.Encryption : null));
            observer.Started(item, () => stored.Bytes, () => plain.Bytes);
            DumpDetails details;
            try
            {
                details = await engine.DumpAsync(item.Database, plain, timeout.Token).ConfigureAwait(false);
                if (details.Warning is { } warning)
                {
                    observer.Warning($"{item.Instance.Name}/{item.Database}: {warning}");
                }
                var set = engine.WritesSet(item.Database);
                if (!plain.TailContains(set ? Sources.Sets.BackupSet.EndOfArchive : engine.CompletionTrailer))
                {
                    throw new OperationFailedException(set
                        ? $"the backup set of {item.Database} ended before its post.sql: it is incomplete"
                        : $"the dump of {item.Database} ended without its completion trailer ('{engine.CompletionTrailer}'): it is incomplete");
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
                DataFile = StorageKey.FileName(item.Key),
                InstanceId = item.Instance.Id,
                InstanceName = item.Instance.Name,
                Server = item.Instance.Server,
                Dbms = item.Instance.Dbms.ToName(),
                ServerFlavor = server.Flavor,
                ServerVersion = server.Version,
                Database = item.Database,
                DumpTool = details.Tool,
                DumpToolVersion = details.ToolVersion,
                Compression = compression.ToName(),
                Encryption = encrypt ? EncryptionSettings.AgeName : null,
                EncryptedTo = !encrypt ? null : config.Encryption.Recipients.Count > 0 ? [.. config.Encryption.Recipients.Select(r => r.ToString())] : ["passphrase"],
                StartedUtc = started,
                FinishedUtc = time.GetUtcNow(),
                PlainBytes = plain.Bytes,
                StoredBytes = stored.Bytes,
                PlainSha256 = plainSha256,
                StoredSha256 = stored.Sha256Hex(),
                Inventory = details.Inventory,
                Format = details.Format,
                Files = details.Files,
                Settings = details.Settings,
                SchemaVersion = details.Entries is null ? BackupManifest.SqlSchemaVersion : BackupManifest.CurrentSchemaVersion,
                Entries = details.Entries,
                Jobs = details.Jobs,
                SourcePosition = details.SourcePosition,
            };
            // The manifest goes last: until it exists, the data file is not a backup.
            await WriteManifestOrRemoveAsync(storage, item.Key, manifest, timeout.Token).ConfigureAwait(false);

            // The backup is complete in the first destination; now the copies.
            var copies = new List<string>();
            var copyErrors = down.Select(d => $"not copied to '{d.Name}': {d.Reason}").ToList();
            var failedDestinations = down.Select(d => d.Name).ToList();
            BackupItemResult Result() => new(item.Instance, item.Database, item.Location,
                copyErrors.Count == 0 ? null : $"backed up to {item.Location}, but {string.Join("; ", copyErrors)}", plain.Bytes, stored.Bytes, clock.Elapsed,
                Copies: copies.Count == 0 ? null : copies)
            {
                FailedDestinations = failedDestinations,
                Destinations = [targets[0].Name, .. targets.Skip(1).Select(t => t.Name).Where(n => !failedDestinations.Contains(n))],
            };
            foreach (var (target, index) in targets.Skip(1).Select((t, i) => (t, i)))
            {
                try
                {
                    await CopyAsync(storage, target.Storage, item.Key, manifest, timeout.Token).ConfigureAwait(false);
                    copies.Add(target.Storage.Describe(item.Key));
                }
                catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
                {
                    copyErrors.Add($"the copy to '{target.Name}' timed out after {config.Timeout.TotalSeconds:0} s (timeout_seconds)");
                    failedDestinations.Add(target.Name);
                }
                catch (Exception e) when (StorageSet.IsStorageFault(e, cancellationToken) || cancellationToken.IsCancellationRequested)
                {
                    if (cancellationToken.IsCancellationRequested)
                    {
                        // Stopped while copying: the backup is complete where it was written, and is kept; the run
                        // says so (and which copies were not made) before it ends as interrupted.
                        var notMade = targets.Skip(1 + index).Select(t => t.Name).ToList();
                        copyErrors.Add($"interrupted before the copies to {string.Join(", ", notMade.Select(n => $"'{n}'"))} were made");
                        failedDestinations.AddRange(notMade);
                        observer.Finished(Result());
                        throw;
                    }
                    copyErrors.Add($"the copy to '{target.Name}' failed: {e.Message}");
                    failedDestinations.Add(target.Name);
                }
            }
            return Result();
        }
        catch (Exception e) when (cancellationToken.IsCancellationRequested && e is not OperationCanceledException)
        {
            // Ctrl+C also reaches the dump tool (same process group on a terminal): its death is the interruption.
            throw new OperationCanceledException($"interrupted: {e.Message}", e, cancellationToken);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return Failed(item, held?.Lost is { } lost ? $"stopped: {lost}" : $"timed out after {config.Timeout.TotalSeconds:0} s (timeout_seconds)",
                clock.Elapsed);
        }
        catch (Exception e) when (IoErrors.IsTooManyOpenFiles(e))
        {
            return Failed(item, IoErrors.TooManyOpenFiles(), clock.Elapsed);
        }
        catch (LockedException e)
        {
            return Failed(item, e.Message, clock.Elapsed) with { Locked = true };
        }
        catch (VyaException e)
        {
            return Failed(item, e.Message, clock.Elapsed) with { SetupFailure = SetupFailureOf(e) };
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return Failed(item, $"cannot write {item.Location}: {e.Message}", clock.Elapsed);
        }
        catch (DbException e)
        {
            // The server failed a query of ours (counting rows, probing): this database only.
            return Failed(item, $"server error: {Redaction.Redact(e.Message)}", clock.Elapsed);
        }
        catch (DecoderFallbackException e)
        {
            return Failed(item, IoErrors.NotUtf8(e), clock.Elapsed);
        }
    }

    /// <summary>
    /// Names are to the second: a backup of the same database taken in the same second as the
    /// previous one (both run one after the other, under the lock), whatever its compression or
    /// encryption, waits for the next second rather than share its time: list, prune and the
    /// --latest options would take either for the newer (prune once kept the older). A clock that
    /// does not move gives up after a few tries, and the commit then refuses to overwrite.
    /// </summary>
    private async Task<BackupItem> UnusedNameAsync(BackupItem item, IStorage storage, Func<BackupItem> replan, CancellationToken cancellationToken)
    {
        for (var attempt = 0; attempt < 3; attempt++)
        {
            if (!await storage.AnyKeyStartingWithAsync(BackupName.KeyStem(item.Key), cancellationToken).ConfigureAwait(false))
            {
                return item;
            }
            var now = time.GetUtcNow();
            await Task.Delay(TimeSpan.FromMilliseconds(1000 - now.Millisecond + 10), cancellationToken).ConfigureAwait(false);
            item = replan() with { ExpectedBytes = item.ExpectedBytes };
        }
        return item;
    }

    /// <summary>
    /// The .sha256 line (unless <paramref name="checksumWritten"/>: a cut-off copy's, checked), then the manifest:
    /// last, since a data file without its manifest is not a backup.
    /// </summary>
    internal static async Task WriteManifestAsync(
        IStorage storage, string key, BackupManifest manifest, CancellationToken cancellationToken, bool checksumWritten = false,
        Action? onChecksumWritten = null)
    {
        if (!checksumWritten)
        {
            await WriteSmallAsync(storage, key + BackupManifest.ChecksumSuffix, System.Text.Encoding.UTF8.GetBytes(manifest.ChecksumLine), cancellationToken)
                .ConfigureAwait(false);
            onChecksumWritten?.Invoke();
        }
        await WriteSmallAsync(storage, BackupManifest.KeyFor(key), manifest.ToJson(), cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Streams a committed backup from one storage into another, checking the bytes read against
    /// the manifest; reads the copy back and checks it again; then writes its .sha256 and manifest.
    /// A copy that fails any check is removed.
    /// </summary>
    internal static async Task CopyAsync(IStorage from, IStorage to, string key, BackupManifest manifest, CancellationToken cancellationToken)
    {
        await using (var write = await to.CreateAsync(key, cancellationToken).ConfigureAwait(false))
        {
            await using (var source = await from.OpenReadAsync(key, cancellationToken).ConfigureAwait(false))
            {
                var copied = new MeasuringStream(write.Content, leaveOpen: true);
                await source.CopyToAsync(copied, 1 << 20, cancellationToken).ConfigureAwait(false);
                await copied.FlushAsync(cancellationToken).ConfigureAwait(false);
                if (copied.Bytes != manifest.StoredBytes || copied.Sha256Hex() != manifest.StoredSha256)
                {
                    throw new VerificationFailedException(
                        $"{from.Describe(key)} read back {copied.Bytes} bytes that differ from its manifest's digest; not copied");
                }
                await copied.DisposeAsync().ConfigureAwait(false);
            }
            await write.CommitAsync(cancellationToken).ConfigureAwait(false);
        }
        try
        {
            if (await BackupFileChecker.CheckStoredAsync(new BackupLocation(to, key), manifest, cancellationToken).ConfigureAwait(false) is { } problem)
            {
                throw new VerificationFailedException($"the copy {to.Describe(key)} does not match the manifest ({problem}); the copy was removed");
            }
        }
        catch
        {
            await DeleteQuietlyAsync(to, [key]).ConfigureAwait(false);
            throw;
        }
        await WriteManifestOrRemoveAsync(to, key, manifest, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// <see cref="WriteManifestAsync"/> after a data file this run wrote; on failure that data file is removed, and the
    /// .sha256 only if this run wrote it (one that was there before, whose write was refused, stays).
    /// </summary>
    private static async Task WriteManifestOrRemoveAsync(IStorage storage, string key, BackupManifest manifest, CancellationToken cancellationToken)
    {
        var checksumWritten = false;
        try
        {
            await WriteManifestAsync(storage, key, manifest, cancellationToken, onChecksumWritten: () => checksumWritten = true).ConfigureAwait(false);
        }
        catch
        {
            await DeleteQuietlyAsync(storage, checksumWritten ? [key + BackupManifest.ChecksumSuffix, key] : [key]).ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>Removes what a failed write left; a cleanup error would hide the real one.</summary>
    private static async Task DeleteQuietlyAsync(IStorage storage, string[] keys)
    {
        foreach (var file in keys)
        {
            try
            {
                await storage.DeleteAsync(file, CancellationToken.None).ConfigureAwait(false);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
            }
        }
    }

    private static async Task WriteSmallAsync(IStorage storage, string key, byte[] content, CancellationToken cancellationToken)
    {
        await using var write = await storage.CreateAsync(key, cancellationToken).ConfigureAwait(false);
        await write.Content.WriteAsync(content, cancellationToken).ConfigureAwait(false);
        await write.CommitAsync(cancellationToken).ConfigureAwait(false);
    }

    private static ExitCode? SetupFailureOf(Exception e) => e is ConfigException or VaultException ? ((VyaException)e).ExitCode : null;

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
}
