using System.Data.Common;
using System.Diagnostics;
using System.Net.Sockets;
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
/// <param name="TerminateConnections">End other clients' sessions on the target when they keep it from being replaced.</param>
/// <param name="Definer">MySQL: DEFINER clauses (--definer); null: the instance's <c>definer:</c> setting.</param>
/// <param name="EnableEvents">MySQL: events stay enabled as dumped (--enable-events); otherwise they are restored disabled.</param>
/// <param name="AllowDataDirectory">MySQL: tables keep the DATA / INDEX DIRECTORY they were dumped with (--allow-data-directory).</param>
/// <param name="Jobs">Connections loading a backup set (--jobs); null: the instance's <c>jobs:</c>, else the number of cores.</param>
/// <param name="TrustBackup">PostgreSQL: load as the instance's account even when it is a superuser (--trust-backup).</param>
/// <param name="VerifyScratch">verify --restore: the target is its own scratch database, a name no user's target may take.</param>
public sealed record RestoreRequest(
    string File, InstanceConfig Instance, string? Target, bool DryRun, bool Force, bool Verify = true, BackupLocation? Location = null,
    DecryptionKeys? Keys = null, bool TerminateConnections = false, Engines.MySql.DefinerMode? Definer = null, bool EnableEvents = false,
    int? Jobs = null, bool AllowDataDirectory = false, bool TrustBackup = false, bool VerifyScratch = false)
{
    /// <summary>The backup is trusted: --trust-backup, or the instance's <c>trust_backups: true</c>.</summary>
    public bool Trusted => TrustBackup || Instance.TrustBackups;
}

/// <param name="IsSet">The file is a backup set (a tar of schema, data chunks and post-data), not one dump.</param>
public sealed record RestorePlan(
    string File, long FileBytes, StoredFormat Format, Dbms? FileDbms, string? SourceDatabase, DateTime? TakenUtc,
    string Target, TargetState TargetState, BackupManifest? Manifest, bool IsSet = false)
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
        if (OtherServersBackup(location, plan.Manifest, instance) is { } otherServers)
        {
            observer.Warning(otherServers);
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

        var untouched = plan.TargetState.Exists ? $"; '{plan.Target}' was not changed" : $"; '{plan.Target}' was not created";

        // The steps before the load change nothing the operator has: their failures say so (and stay this host's, not
        // the backup's, when they were: a verify then did not check the backup).
        async Task<T> BeforeLoadAsync<T>(Task<T> step)
        {
            try
            {
                return await step.ConfigureAwait(false);
            }
            catch (Exception e) when (e is OperationFailedException or HostFaultException or DbException)
            {
                var message = $"restore of {location.FileName} into '{plan.Target}' failed: " + (e is DbException ? "server error: " : "") + e.Message + untouched;
                throw e is HostFaultException ? new HostFaultException(message, e) : new OperationFailedException(message, e);
            }
        }

        // One restore per target at a time; the lock is the server's, so a killed run releases it.
        await using var targetLock = await BeforeLoadAsync(engine.LockRestoreAsync(plan.Target, cancellationToken)).ConfigureAwait(false);
        var replaced = await BeforeLoadAsync(HandleLeftoversAsync(engine, plan.Target, cancellationToken)).ConfigureAwait(false);
        if (plan.TargetState.Exists)
        {
            var sessions = await BeforeLoadAsync(engine.CountBlockingSessionsAsync(plan.Target, cancellationToken)).ConfigureAwait(false);
            if (!request.TerminateConnections && sessions.Count > 0)
            {
                throw new UsageException(
                    $"database '{plan.Target}' has {sessions.Count} open session(s) of other clients; a restore replaces it only when they are "
                    + "closed (--terminate-connections ends them)");
            }
            if (request.TerminateConnections && sessions.NotEndable > 0)
            {
                throw new UsageException(
                    $"database '{plan.Target}' has {sessions.NotEndable} open session(s) of other roles that this account may not end "
                    + "(it needs to be a member of their role or of pg_signal_backend; a superuser's, a superuser); close them first");
            }
        }

        // The backup goes into a staging database beside the target; the target is replaced only
        // once the staging database is complete and checked.
        var staging = RestoreStaging.StagingName(plan.Target);
        foreach (var warning in await BeforeLoadAsync(engine.CreateDatabaseAsync(staging, plan.Manifest?.Settings, request.Trusted, cancellationToken)).ConfigureAwait(false))
        {
            observer.Warning(warning);
        }
        long plainBytes;
        InventoryComparison? comparison = null;
        IReadOnlyList<string> eventsToEnable;
        try
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(config.Timeout);
            var load = await LoadAsync(location, plan, request, engine, staging, timeout.Token).ConfigureAwait(false);
            plainBytes = load.PlainBytes;
            if (request.Verify && plan.Manifest is not null)
            {
                var restored = await engine.InventoryAsync(staging, load.Result.LoadedRows, timeout.Token).ConfigureAwait(false);
                comparison = InventoryComparison.Compare(plan.Manifest.Inventory, restored);
                observer.Compared(comparison);
                if (!comparison.Matches)
                {
                    throw new VerificationFailedException(
                        $"the restored data differs from the backup's manifest: {string.Join("; ", comparison.Mismatches)}");
                }
            }
            if (load.Result.OtherDatabases.Contains(plan.Target, StringComparer.Ordinal))
            {
                // They would use the restored tables, not that database's (MySQL), the target missing too: refused while nothing has changed.
                throw new OperationFailedException(
                    $"the backup's views, triggers, routines, events or foreign keys name the target database '{plan.Target}' itself, "
                    + $"whose tables the restore {(plan.TargetState.Exists ? "replaces" : "creates")}; refused");
            }
            foreach (var warning in load.Result.Warnings ?? [])
            {
                observer.Warning(warning);
            }
            foreach (var other in load.Result.OtherDatabases)
            {
                observer.Warning($"the restored views, triggers, routines, events or foreign keys still name the database '{other}'");
            }
            eventsToEnable = request.EnableEvents ? load.Result.EventsToEnable : [];
            if (!request.EnableEvents && load.Result.EventsToEnable.Count > 0)
            {
                // Said, so that a server rebuilt from its backups does not go without its scheduled jobs unnoticed.
                observer.Warning($"{load.Result.EventsToEnable.Count} event(s) enabled in the backup are restored disabled "
                    + $"({string.Join(", ", load.Result.EventsToEnable.Take(5))}{(load.Result.EventsToEnable.Count > 5 ? ", ..." : "")}): "
                    + "restore with --enable-events to run them, or ALTER DEFINER = <its definer> EVENT ... ENABLE (without DEFINER, whoever runs it becomes the definer)");
            }
        }
        // InvalidOperationException, SocketException: a driver's connection that broke ("Connection is not open", a reset).
        catch (Exception error) when (error is VyaException or IOException or InvalidDataException or OperationCanceledException or DbException
            or InvalidOperationException or System.Net.Sockets.SocketException || BackupFileChecker.IsDecodeError(error))
        {
            var e = error;
            var reason = e switch
            {
                OperationCanceledException when !cancellationToken.IsCancellationRequested =>
                    $"timed out after {config.Timeout.TotalSeconds:0} s (timeout_seconds)",
                OperationCanceledException => "interrupted",
                VyaException => e.Message,
                DbException or InvalidOperationException or System.Net.Sockets.SocketException => $"server error: {e.Message}",
                _ => $"cannot read {plan.File}: {e.Message}",
            };
            if (request.Verify && plan.IsSet && e is InvalidDataException)
            {
                // A set's entries held to its manifest's list (order, sizes, digests): a mismatch is the backup's, as a dump's digest is (tr106).
                e = new VerificationFailedException(e.Message, e);
                reason = $"{plan.File}: {e.Message}";
            }
            if (request.Verify && plan.Manifest is not null && e is not (OperationCanceledException or LockedException)
                && await BackupFileChecker.DamageAsync(location, plan.Manifest).ConfigureAwait(false) is { } problem)
            {
                // The file is damaged: that, not what it made the client or decoder say, is the failure.
                e = new VerificationFailedException(problem, e);
                reason = $"{plan.File}: {problem}";
            }
            reason += untouched;
            if (await TryDropAsync(engine, staging).ConfigureAwait(false) is { } dropError)
            {
                reason += $"; the staging database '{staging}' could not be removed ({dropError}): the next restore into '{plan.Target}' removes it";
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
                LockedException => new LockedException(message),
                // This host's temp directory or tools, not the backup: a verify must not call the backup bad for it.
                HostFaultException => new HostFaultException(message, e),
                _ => new OperationFailedException(message, e),
            };
        }

        // The swap is not under the load's timeout: it is short, and bounded by the engine. A stop
        // (Ctrl+C, SIGTERM) fails it only while the target is unchanged: past that point each
        // engine's swap ignores the token and finishes.
        try
        {
            foreach (var warning in await engine.SwapAsync(staging, plan.Target, new SwapOptions(request.TerminateConnections, eventsToEnable, replaced,
                KeepTargetAccess: plan.Manifest?.Settings?.Owners != true, ReplaceData: request.Force || replacing),
                cancellationToken).ConfigureAwait(false))
            {
                observer.Warning(warning);
            }
        }
        catch (Exception e) when (e is VyaException or DbException or OperationCanceledException or InvalidOperationException or IOException
            or System.Net.Sockets.SocketException)
        {
            await TryDropAsync(engine, staging).ConfigureAwait(false);
            if (e is OperationCanceledException)
            {
                throw;
            }
            // The engine's message says what state the target is in.
            throw new OperationFailedException($"restore of {location.FileName} into '{plan.Target}' failed: {e.Message}", e);
        }

        // The target holds the restored data: a stop that came meanwhile is too late to keep the old one.
        if (cancellationToken.IsCancellationRequested)
        {
            observer.Warning($"stopped (Ctrl+C, SIGTERM) while '{plan.Target}' was being replaced: the swap was finished, "
                + $"and '{plan.Target}' holds the restored data");
        }
        int tables;
        try
        {
            tables = (await engine.GetTargetStateAsync(plan.Target, CancellationToken.None).ConfigureAwait(false)).TableCount;
        }
        catch (Exception e) when (e is VyaException or DbException or InvalidOperationException or IOException or System.Net.Sockets.SocketException)
        {
            // Only the summary's count: the restore itself is done.
            observer.Warning($"'{plan.Target}' holds the restored data, but its tables could not be counted afterwards: {e.Message}");
            tables = plan.Manifest?.Inventory.Tables.Count ?? 0;
        }
        return new RestoreResult(plan, tables, plainBytes, clock.Elapsed, comparison);
    }

    /// <summary>Streams the backup into the staging database, checking the trailer and the digests on the way.</summary>
    private async Task<(long PlainBytes, LoadResult Result)> LoadAsync(
        BackupLocation location, RestorePlan plan, RestoreRequest request, IDumpEngine engine, string staging, CancellationToken cancellationToken)
    {
        await using var opened = await BackupFileChecker.OpenStoredAsync(location, plan.Format, cancellationToken).ConfigureAwait(false);
        // A zip reads a seekable file (its position is the progress); a stream is counted as it passes.
        var file = opened.CanSeek ? opened : new MeasuringStream(opened, leaveOpen: true);
        observer.Started(plan.FileBytes, opened.CanSeek ? () => opened.Position : () => ((MeasuringStream)file).Bytes);
        var decoded = await BackupChain.OpenReadAsync(file, plan.Compression, plan.Format.Encrypted, Keys(request), cancellationToken)
            .ConfigureAwait(false);
        var trailer = plan.IsSet ? Sources.Sets.BackupSet.EndOfArchive : engine.CompletionTrailer;
        await using var plain = new MeasuringStream(decoded)
        {
            // A set's entries are each held to their digest as they are read, before any of them is
            // used (and the stored file to its own at the end): a digest of the whole plain stream,
            // known only after the last entry ran, would check the same bytes again.
            Hashing = !(plan.IsSet && request.Verify && plan.Manifest?.Entries is not null),
            ExpectedBytes = request.Verify ? plan.Manifest?.PlainBytes : null,
            BeyondExpected = m => new VerificationFailedException(
                $"{plan.File}: the decoded dump runs past the {plan.Manifest!.PlainBytes} bytes its manifest records"),
            // Runs before the client sees the end of its input, so that a truncated dump is
            // reported as such rather than by the client's complaint about a cut statement.
            AtEndOfInput = m =>
            {
                if (request.Verify)
                {
                    CheckCompleteDump(m, plan.IsSet ? m.TailContains(trailer) : m.EndsWithTrailer(trailer), trailer, plan);
                }
            },
        };
        var options = new RestoreOptions(plan.Manifest?.Database ?? plan.SourceDatabase, request.Definer ?? request.Instance.Definer, request.AllowDataDirectory,
            request.Trusted, plan.Target);
        // Only an error reading the backup is the file's: another I/O error of the load is the client's or the load's own.
        await using var reading = new ReadWatchStream(plain);
        LoadResult result;
        try
        {
            if (plan.IsSet)
            {
                // Without --no-verify every entry is held against the manifest's list as it is read.
                await using var set = new Sources.Sets.BackupSetReader(reading, request.Verify ? plan.Manifest?.Entries : null);
                var jobs = request.Jobs ?? request.Instance.Jobs ?? Config.ConfigLoader.DefaultJobs;
                result = await engine.RestoreSetAsync(staging, set, options, jobs, cancellationToken).ConfigureAwait(false);
                await set.CheckEndAsync(cancellationToken).ConfigureAwait(false);
            }
            else
            {
                result = await engine.RestoreAsync(staging, reading, options, cancellationToken).ConfigureAwait(false);
            }
        }
        catch (IOException e) when (!reading.Failed)
        {
            throw new OperationFailedException(IsClientGone(e)
                ? $"the database client quit before the end of the backup ({e.Message}): it, or its connection to the server, ended"
                : $"loading failed: {e.Message}", e);
        }
        if (request.Verify && result.EndedWithTrailer == false)
        {
            // The filter parsed the dump: the trailer seen at the end was inside data, or statements followed it.
            CheckCompleteDump(plain, endsWithTrailer: false, trailer, plan);
        }
        if (request.Verify && plan.Manifest is { } manifest
            && await StoredProblemAsync(plan.Compression == Compression.Zip ? null : file as MeasuringStream, location, manifest, cancellationToken)
                .ConfigureAwait(false) is { } problem)
        {
            throw new VerificationFailedException(problem);
        }
        return (plain.Bytes, result);
    }

    /// <summary>
    /// Writing into the client's stdin failed: .NET writes into a pipe through a socket, whose error (EPIPE:
    /// the client had quit) comes inside; the client's own error, when the engine has it, comes instead.
    /// </summary>
    private static bool IsClientGone(IOException e) => e.InnerException is SocketException;

    /// <summary>Forwards reads, noting whether one failed (not cancelled: the load may stop its reading); leaves the stream it reads open.</summary>
    private sealed class ReadWatchStream(Stream inner) : WrapperStream(inner)
    {
        private volatile bool _failed;

        public bool Failed => _failed;

        public override int Read(Span<byte> buffer)
        {
            try
            {
                return base.Read(buffer);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                _failed = true;
                throw;
            }
        }

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            try
            {
                return await base.ReadAsync(buffer, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                _failed = true;
                throw;
            }
        }

        protected override void Dispose(bool disposing)
        {
        }

        public override ValueTask DisposeAsync()
        {
            GC.SuppressFinalize(this);
            return ValueTask.CompletedTask;
        }
    }

    /// <summary>
    /// The stored bytes against the manifest, from the digest taken while they streamed (the rest,
    /// e.g. bytes appended after the compressed data that the decoder ignored, is read to the end);
    /// without one (a zip, which is spooled to a seekable file first) the file is read once more.
    /// </summary>
    private static Task<string?> StoredProblemAsync(
        MeasuringStream? measured, BackupLocation location, BackupManifest manifest, CancellationToken cancellationToken) =>
        measured is null
            ? BackupFileChecker.CheckStoredAsync(location, manifest, cancellationToken)
            : BackupFileChecker.StoredProblemAsync(measured, manifest, cancellationToken);

    /// <summary>Drops the staging database after a failure; returns why it could not, or null.</summary>
    private static async Task<string?> TryDropAsync(IDumpEngine engine, string staging)
    {
        try
        {
            await engine.DropDatabaseAsync(staging, CancellationToken.None).ConfigureAwait(false);
            return null;
        }
        catch (Exception e) when (e is VyaException or DbException or IOException or InvalidOperationException)
        {
            return e.Message;
        }
    }

    /// <summary>
    /// What a killed or failed restore into the same target left (this run holds the target's
    /// lock): the staging database is removed, and so is an empty replaced database. One holding
    /// anything is the only copy of what a failed swap replaced: it is kept, said each time, and
    /// this restore's swap moves what it replaces to the first replaced name not taken.
    /// </summary>
    /// <returns>The replaced database this restore's swap uses.</returns>
    private async Task<string> HandleLeftoversAsync(IDumpEngine engine, string target, CancellationToken cancellationToken)
    {
        var staging = RestoreStaging.StagingName(target);
        if ((await engine.GetTargetStateAsync(staging, cancellationToken).ConfigureAwait(false)).Exists)
        {
            observer.Warning($"removing '{staging}', left by an interrupted restore into '{target}'");
            await engine.DropDatabaseAsync(staging, cancellationToken).ConfigureAwait(false);
        }
        var kept = new HashSet<string>(StringComparer.Ordinal);
        // The plain name is looked up by itself too: a probe lists no template database (an older run's leftover may be one).
        var candidates = (await engine.ProbeAsync(cancellationToken).ConfigureAwait(false)).Databases
            .Where(d => RestoreStaging.IsReplacedName(d, target)).Append(RestoreStaging.ReplacedName(target)).Distinct(StringComparer.Ordinal);
        foreach (var leftover in candidates)
        {
            var state = await engine.GetTargetStateAsync(leftover, cancellationToken).ConfigureAwait(false);
            if (!state.Exists)
            {
                continue;
            }

            if (state.HoldsData)
            {
                observer.Warning($"'{leftover}' holds the tables a failed restore into '{target}' replaced; drop it once you no longer need them");
                kept.Add(leftover);
            }
            else
            {
                observer.Warning($"removing '{leftover}', left by an interrupted restore into '{target}'");
                await engine.DropDatabaseAsync(leftover, cancellationToken).ConfigureAwait(false);
            }
        }
        var number = 1;
        while (kept.Contains(RestoreStaging.ReplacedName(target, number)))
        {
            number++;
        }
        return RestoreStaging.ReplacedName(target, number);
    }

    /// <summary>
    /// A backup in this instance's own folder that another instance made, of another server: after two instances swapped
    /// names (the folder is the name), each lists the other's backups as its own (tr98). Another id on the same server is
    /// a renumbering; the same id on another server a move: neither is said.
    /// </summary>
    private static string? OtherServersBackup(BackupLocation location, BackupManifest? manifest, InstanceConfig instance) =>
        manifest is { Server: { } server } && manifest.InstanceId != instance.Id && server != instance.Server
            && location.Key.StartsWith(BackupCatalog.InstancePrefix(instance), StringComparison.Ordinal)
            ? $"{location.FileName} is in the folder of instance {instance.Id} ({instance.Name}) but was made by instance {manifest.InstanceId} "
                + $"({manifest.InstanceName}) of {server}, not of {instance.Server}: it holds that server's data (were instance names swapped?)"
            : null;

    private static void CheckCompleteDump(MeasuringStream plain, bool endsWithTrailer, string trailer, RestorePlan plan)
    {
        if (!endsWithTrailer)
        {
            throw new OperationFailedException(
                $"{plan.File} does not end with the dump's completion trailer ('{trailer}'): it is truncated, or something was added after it");
        }
        if (plan.Manifest is { } manifest && (plain.Bytes != manifest.PlainBytes || (plain.Hashing && plain.Sha256Hex() != manifest.PlainSha256)))
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

        var format = await BackupFileChecker.RestorableFormatAsync(location, cancellationToken).ConfigureAwait(false);

        var target = request.Target ?? name?.Database
            ?? throw new UsageException($"cannot tell the database from the file name '{fileName}'; give --target");
        // Before any connection: a system database, one of the tool's own, or a name the server would refuse or cut.
        if (RestoreTarget.Problem(request.Instance, target, request.VerifyScratch) is { } targetProblem)
        {
            throw new UsageException(targetProblem);
        }

        // Which DBMS made the file: its manifest, else its name, else its header (old files).
        var manifest = await location.LoadManifestAsync(cancellationToken).ConfigureAwait(false);
        var fileDbms = BackupFileChecker.DbmsOf(manifest, name)
            ?? DbmsFromContent(await ReadHeadAsync(location, format, Keys(request), cancellationToken).ConfigureAwait(false));
        // An old file's name is all that says which DBMS made it: its header, where it has one, must agree.
        if (manifest is null && !format.Encrypted && name is { Dbms: { } named and not Dbms.Files, Set: false }
            && DbmsFromContent(await ReadHeadAsync(location, format, Keys(request), cancellationToken).ConfigureAwait(false)) is { } headed && headed != named)
        {
            throw new UsageException($"{fileName}: its name says {named.ToName()}, but it holds a {headed.ToName()} dump");
        }
        if (format.Encrypted)
        {
            // A wrong or missing key fails here, before the target is touched.
            try
            {
                await BackupChain.CheckKeysAsync(await location.OpenReadAsync(cancellationToken).ConfigureAwait(false), Keys(request), cancellationToken)
                    .ConfigureAwait(false);
            }
            catch (AgeException e) when (manifest is not null)
            {
                throw new AgeException(e.Message + manifest.DecryptionHint, e.ExitCode);
            }
        }
        var instance = request.Instance;
        if (fileDbms is { } dbms && dbms != instance.Dbms)
        {
            throw new UsageException(
                $"{fileName} is a {dbms.ToName()} backup but instance {instance.Id} ({instance.Name}) is {instance.Dbms.ToName()}");
        }

        // A set says so in its manifest, else its name (.tar.zst), else its first entry's name.
        var isSet = manifest is not null ? manifest.Format == Sources.Sets.BackupSet.Format
            : name?.Dbms is not null ? name.Set
            : IsSetHead(await ReadHeadAsync(location, format, Keys(request), cancellationToken).ConfigureAwait(false));
        var state = await DumpEngines.For(instance).GetTargetStateAsync(target, cancellationToken).ConfigureAwait(false);
        return new RestorePlan(location.Description, fileBytes, format, fileDbms, name?.Database, name?.TimestampUtc, target, state, manifest, isSet);
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

    /// <summary>A tar whose first entry is a backup set's schema.sql.</summary>
    private static bool IsSetHead(string head) =>
        head.StartsWith(Sources.Sets.BackupSet.SchemaEntry + "\0", StringComparison.Ordinal) && head.Length > 262
        && head.AsSpan(257, 5).SequenceEqual("ustar");

    /// <summary>Which DBMS wrote a dump, from its header comment; null when it does not say.</summary>
    public static Dbms? DbmsFromContent(string head)
    {
        // The tools' header lines only: a row further down may hold any of these texts.
        var lines = head.Split('\n');
        head = string.Join('\n', lines.Take(4));
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
