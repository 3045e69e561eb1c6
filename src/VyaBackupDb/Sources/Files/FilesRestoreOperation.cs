using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using VyaBackupDb.Catalog;
using VyaBackupDb.Config;
using VyaBackupDb.Errors;
using VyaBackupDb.Operations;
using VyaBackupDb.Pipeline;
using VyaBackupDb.Pipeline.Age;
using VyaBackupDb.Storage;
using VyaBackupDb.Storage.Local;

namespace VyaBackupDb.Sources.Files;

/// <param name="File">What the user gave: a path, a bare file name, NAME:KEY, s3://... or sftp://... (see <see cref="BackupLocations"/>).</param>
/// <param name="Target">The directory to rebuild the tree in; must be missing or empty unless <paramref name="Force"/>.</param>
public sealed record FilesRestoreRequest(
    string File, InstanceConfig Instance, string Target, bool DryRun, bool Force, bool Verify = true, DecryptionKeys? Keys = null);

public enum TargetDirectoryState
{
    Missing,
    Empty,
    HoldsFiles,
}

public sealed record FilesRestorePlan(
    string File, long FileBytes, StoredFormat Format, BackupManifest? Manifest, DateTime? TakenUtc, string Target, TargetDirectoryState TargetState);

public sealed record FilesRestoreResult(FilesRestorePlan Plan, EntryCounts Restored, long PlainBytes, TimeSpan Duration);

/// <summary>What a files restore tells its user, and how it asks before replacing a directory's content.</summary>
public interface IFilesRestoreObserver
{
    void Planned(FilesRestorePlan plan);

    /// <summary>Asks the user; false when there is nobody to ask.</summary>
    bool Confirm(string question);

    void Started(long fileBytes, Func<long> fileBytesRead);

    void Warning(string message);
}

/// <summary>
/// Restores a files backup into a directory. The tree is built in a private staging directory
/// beside the target (inside it when the target is a mount point), checked against the
/// manifest (digests, entry counts), and only then renamed into place: a failure, a refused
/// entry or an interruption leaves the target as it was. With --force the target's old content
/// is swapped out (atomically where the file system allows) and removed afterwards.
/// </summary>
[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
public sealed class FilesRestoreOperation(AppConfig config, IFilesRestoreObserver observer)
{
    private const string StagingPrefix = ArchiveEntries.StagingPrefix;
    private const int NoSpaceLeft = 28; // ENOSPC: .NET's IOException carries the errno
    private const string ReplacedPrefix = ArchiveEntries.ReplacedPrefix;
    private const string CommittingPrefix = ArchiveEntries.CommittingPrefix;
    private const string RemovingPrefix = ArchiveEntries.RemovingPrefix;

    public async Task<FilesRestoreResult?> RunAsync(FilesRestoreRequest request, CancellationToken cancellationToken)
    {
        var clock = Stopwatch.StartNew();
        using var storages = new StorageSet(config);
        // A bare file name (as list shows it) is looked up in the instance's destinations.
        var location = await BackupLocations.FindAsync(request.File, request.Instance, config, storages, cancellationToken).ConfigureAwait(false);
        var target = TargetPath(request.Target);
        CheckNobodyElseCanMoveIt(target);
        // Its content would be moved aside and removed: what is mounted below is another file system's, never the restore's.
        if (Posix.TryLStat(target) is { IsDirectory: true } && Posix.FindOtherFileSystem(target) is { } mount)
        {
            throw new UsageException($"--target {target} holds a mount point ({mount}): unmount it first, or restore elsewhere");
        }
        if (!request.DryRun && Staging.RecoverInterruptedCommit(target) is { } recovered)
        {
            observer.Warning(recovered);
        }
        var plan = await PlanAsync(location, target, request, cancellationToken).ConfigureAwait(false);
        observer.Planned(plan);
        if (!request.Verify)
        {
            observer.Warning("--no-verify: digests and entry counts are not checked against the manifest");
        }
        else if (plan.Manifest is null)
        {
            observer.Warning($"no manifest beside {location.FileName}: no digest was recorded; the archive is read but not checked against one");
        }
        if (plan.Manifest?.Files?.ChangedNote is { } changed)
        {
            observer.Warning(changed);
        }
        if (plan.TargetState == TargetDirectoryState.HoldsFiles && !request.Force && !request.DryRun
            && !observer.Confirm($"{plan.Target} is not empty. Replace its content with the backup's?"))
        {
            throw new UsageException($"{plan.Target} is not empty; not replaced (use --force to replace its content)");
        }
        if (request.DryRun)
        {
            return null;
        }
        var keys = request.Keys ?? DecryptionKeys.None;
        // A zip is read by seeking (an encrypted one is decrypted into a spool first, which ends the stored stream): its
        // stored digest cannot be taken on the way, so it is checked first.
        var zipped = plan.Format.Compression == Compression.Zip;
        if (zipped && request.Verify && plan.Manifest is { } zipManifest
            && await BackupFileChecker.CheckStoredAsync(location, zipManifest, cancellationToken).ConfigureAwait(false) is { } problem)
        {
            throw new VerificationFailedException($"{plan.File}: {problem}; nothing was restored");
        }

        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(config.Timeout);
        Staging staging;
        try
        {
            staging = Staging.Create(plan.Target, plan.TargetState);
        }
        catch (OperationFailedException e)
        {
            throw new OperationFailedException($"restore of {location.FileName} into {plan.Target} failed: {e.Message}; {plan.Target} was not changed", e);
        }
        try
        {
            await using var opened = await BackupFileChecker.OpenStoredAsync(location, plan.Format, timeout.Token).ConfigureAwait(false);
            var stored = new MeasuringStream(opened, leaveOpen: true);
            observer.Started(plan.FileBytes, zipped && opened.CanSeek ? () => opened.Position : () => stored.Bytes);
            var decoded = await BackupChain.OpenReadAsync(zipped ? opened : stored, plan.Format.Compression, plan.Format.Encrypted, keys, timeout.Token)
                .ConfigureAwait(false);
            await using var plain = new MeasuringStream(decoded)
            {
                ExpectedBytes = request.Verify ? plan.Manifest?.PlainBytes : null,
                BeyondExpected = m => new VerificationFailedException(
                    $"{plan.File}: the decoded archive runs past the {plan.Manifest!.PlainBytes} bytes its manifest records"),
            };
            // Decoding (and its digests) on one side, writing files on the other, at the same time.
            var (_, restored) = await Pipelined.RunAsync(
                async (tar, token) =>
                {
                    // All of it, also what follows tar's end blocks (its record padding) and the codec's end.
                    await plain.CopyToAsync(tar, 1 << 20, token).ConfigureAwait(false);
                    if (!zipped)
                    {
                        await stored.CopyToAsync(Stream.Null, token).ConfigureAwait(false);
                    }
                    return true;
                },
                (tar, token) => Pipelined.OnOwnThread(() =>
                {
                    var counts = FilesExtractor.Extract(tar, staging.Path, observer.Warning, token);
                    tar.CopyTo(Stream.Null); // the rest, so that the decoding side runs to its end
                    return counts;
                }, token),
                timeout.Token).ConfigureAwait(false);
            if (!plain.TailContains(FilesArchiveCheck.EndOfArchive))
            {
                const string truncated = "the archive ends without tar's end-of-archive blocks: it is truncated";
                if (request.Verify)
                {
                    throw new OperationFailedException($"{plan.File}: {truncated}");
                }
                observer.Warning($"{truncated}; restored anyway (--no-verify)");
            }
            if (request.Verify && plan.Manifest is { } manifest)
            {
                var problems = new List<string>();
                if (!zipped && (stored.Bytes != manifest.StoredBytes || stored.Sha256Hex() != manifest.StoredSha256))
                {
                    problems.Add($"the stored file ({stored.Bytes} bytes) differs from its manifest's digest");
                }
                if (plain.Bytes != manifest.PlainBytes || plain.Sha256Hex() != manifest.PlainSha256)
                {
                    problems.Add($"the decoded archive ({plain.Bytes} bytes) differs from its manifest's digest");
                }
                if (manifest.Files is { } files)
                {
                    problems.AddRange(restored.CompareWith(files));
                }
                if (problems.Count > 0)
                {
                    throw new VerificationFailedException($"{plan.File}: {string.Join("; ", problems)}");
                }
            }
            var leftOver = staging.Commit();
            if (leftOver is not null)
            {
                observer.Warning(leftOver);
            }
            return new FilesRestoreResult(plan, restored, plain.Bytes, clock.Elapsed);
        }
        catch (NotRolledBackException e)
        {
            // The target is part way: what is where is in the message, and the names there are the next run's to recover.
            throw new OperationFailedException($"restore of {location.FileName} into {plan.Target} failed: {e.Message}", e);
        }
        catch (Exception e)
        {
            // Whatever went wrong, the staging directory goes (a failure we do not expect is still rethrown as it is).
            var cleanup = staging.Abandon();
            if ((e is OperationCanceledException && cancellationToken.IsCancellationRequested)
                || !(e is VyaException or IOException or InvalidDataException or OperationCanceledException
                    or UnauthorizedAccessException or RefusedEntryException or UnreadableArchiveException || BackupFileChecker.IsDecodeError(e)))
            {
                throw;
            }
            var reason = e switch
            {
                OperationCanceledException => $"timed out after {config.Timeout.TotalSeconds:0} s (timeout_seconds)",
                RefusedEntryException => $"refused: {e.Message} (nothing is ever written outside the target)",
                EndOfStreamException => $"{plan.File} is truncated (it ends inside an entry)",
                IOException { HResult: NoSpaceLeft } => $"the file system of {plan.Target} is full ({e.Message})",
                VyaException or PosixException or UnauthorizedAccessException => e.Message,
                _ => $"cannot read {plan.File}: {e.Message}",
            };
            var failure = e;
            if (request.Verify && plan.Manifest is { } manifest && BackupFileChecker.IsDecodeError(e)
                && await BackupFileChecker.DamageAsync(location, manifest).ConfigureAwait(false) is { } damage)
            {
                failure = new VerificationFailedException(damage, e);
                reason = $"{plan.File}: {damage}";
            }
            var message = $"restore of {location.FileName} into {plan.Target} failed: {reason}; {plan.Target} was not changed{cleanup}";
            throw failure switch
            {
                VerificationFailedException => new VerificationFailedException(message, e),
                AgeException age => new AgeException(message, age.ExitCode),
                _ => new OperationFailedException(message, e),
            };
        }
    }

    /// <summary>Reads what the file is and the target's state; changes nothing.</summary>
    private static async Task<FilesRestorePlan> PlanAsync(BackupLocation location, string target, FilesRestoreRequest request, CancellationToken cancellationToken)
    {
        var entry = await location.StatAsync(cancellationToken).ConfigureAwait(false)
            ?? throw new UsageException($"backup file not found: {location.Description}");
        var format = await BackupFileChecker.RestorableFormatAsync(location, cancellationToken).ConfigureAwait(false);
        var manifest = await location.LoadManifestAsync(cancellationToken).ConfigureAwait(false);
        var name = BackupName.TryParse(location.FileName);
        var keys = request.Keys ?? DecryptionKeys.None;
        var instance = request.Instance;
        if (BackupFileChecker.DbmsOf(manifest, name) is { } dbms && dbms != Dbms.Files)
        {
            throw new UsageException($"{location.FileName} is a {dbms.ToName()} backup but instance {instance.Id} ({instance.Name}) backs up files");
        }
        if (format.Encrypted)
        {
            // A wrong or missing key fails here, before anything is written.
            await BackupChain.CheckKeysAsync(await location.OpenReadAsync(cancellationToken).ConfigureAwait(false), keys, cancellationToken)
                .ConfigureAwait(false);
        }
        if (manifest is null && name is null && request.Verify && !await LooksLikeTarAsync(location, format, keys, cancellationToken).ConfigureAwait(false))
        {
            throw new UsageException(
                $"{location.FileName} does not look like a files backup (no manifest, not a backup file name, not a tar archive); "
                + "use --no-verify to restore it anyway");
        }
        return new FilesRestorePlan(location.Description, entry.Size, format, manifest, name?.TimestampUtc, target, StateOf(target));
    }

    private static string TargetPath(string target)
    {
        if (target.Length == 0)
        {
            throw new UsageException("the target directory is empty");
        }
        string full;
        try
        {
            full = Path.GetFullPath(target).TrimEnd('/');
        }
        // getcwd fails once the working directory is deleted, and .NET's text names no path.
        catch (IOException) when (!Path.IsPathRooted(target))
        {
            throw new UsageException($"--target {target} is relative to the working directory, which no longer exists: give an absolute path");
        }
        return full.Length == 0 ? throw new UsageException("the target directory cannot be / (restore into a directory, then move what you need)") : full;
    }

    /// <summary>
    /// Refuses a target under a directory another user could rename things in while the restore
    /// writes (as systemd refuses an "unsafe path transition"): the target and each existing
    /// directory above it, as given and with symlinks resolved, must be owned by root or this
    /// user and not writable by group or others (unless sticky). Otherwise that user could swap
    /// the staging directory for a symlink and the restore would write where it points.
    /// </summary>
    private static void CheckNobodyElseCanMoveIt(string target)
    {
        var existing = target;
        while (Posix.TryLStat(existing) is null)
        {
            existing = Path.GetDirectoryName(existing)!; // "/" exists
        }
        foreach (var path in new[] { existing, Posix.RealPath(existing) })
        {
            for (var dir = path; dir is not null; dir = Path.GetDirectoryName(dir))
            {
                var stat = Posix.LStat(dir);
                var problem = stat.IsSymlink ? null // its directory is checked, and where it leads with the resolved path
                    : stat.Uid != 0 && stat.Uid != Posix.EffectiveUid ? $"is owned by {Posix.UserName(stat.Uid) ?? "uid " + stat.Uid}"
                    : (stat.Permissions & 0x12) != 0 && (stat.Permissions & 0x200) == 0 ? "is writable by other users (and not sticky)"
                    : null;
                if (problem is not null)
                {
                    throw new UsageException(
                        $"unsafe target {target}: {dir} {problem}, who could move the restore's directories and make it write elsewhere; "
                        + "restore under directories only root or you can change");
                }
            }
        }
    }

    private static TargetDirectoryState StateOf(string target)
    {
        if (Posix.TryLStat(target) is not { } stat)
        {
            return TargetDirectoryState.Missing;
        }
        if (stat.IsSymlink)
        {
            throw new UsageException($"{target} is a symlink; give the directory itself as --target");
        }
        if (!stat.IsDirectory)
        {
            throw new UsageException($"{target} exists and is not a directory");
        }
        return Directory.EnumerateFileSystemEntries(target).Any() ? TargetDirectoryState.HoldsFiles : TargetDirectoryState.Empty;
    }

    /// <summary>A ustar/pax/GNU header: "ustar" at offset 257 of the first block.</summary>
    private static async Task<bool> LooksLikeTarAsync(BackupLocation location, StoredFormat format, DecryptionKeys keys, CancellationToken cancellationToken)
    {
        try
        {
            await using var plain = await BackupFileChecker.OpenPlainAsync(location, format, keys, cancellationToken).ConfigureAwait(false);
            var head = new byte[TarArchiveWriter.BlockSize];
            var n = await plain.ReadAtLeastAsync(head, head.Length, throwOnEndOfStream: false, cancellationToken).ConfigureAwait(false);
            return n == head.Length && head.AsSpan(257, 5).SequenceEqual("ustar"u8);
        }
        catch (Exception e) when (BackupFileChecker.IsDecodeError(e))
        {
            throw new OperationFailedException($"cannot read {location.Description} as {format.Compression.ToName()}: {e.Message}", e);
        }
    }

    /// <summary>A mount-point commit failed and could not be undone: the target is not as it was.</summary>
    private sealed class NotRolledBackException(string message, Exception inner) : IOException(message, inner);

    /// <summary>
    /// The private directory a restore builds its tree in: beside the target (same file system, so
    /// a rename puts it in place), or inside the target when the target is a mount point.
    /// </summary>
    private sealed class Staging
    {
        private readonly string _target;
        private readonly TargetDirectoryState _state;
        private readonly bool _inside;

        private Staging(string target, TargetDirectoryState state, bool inside, string path)
        {
            _target = target;
            _state = state;
            _inside = inside;
            Path = path;
        }

        public string Path { get; }

        private string Parent => System.IO.Path.GetDirectoryName(_target)!;

        public static Staging Create(string target, TargetDirectoryState state)
        {
            var parent = System.IO.Path.GetDirectoryName(target)!;
            var inside = state != TargetDirectoryState.Missing && Posix.LStat(target).Device != Posix.LStat(parent).Device;
            var home = inside ? target : parent;
            var path = System.IO.Path.Combine(home, StagingPrefix + RandomSuffix());
            try
            {
                LocalStorage.CreatePrivateFolder(parent);
                // Private while it is built: nobody else can enter it or change it under the restore.
                Directory.CreateDirectory(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // .NET's text names only the staging directory, which the user never asked for.
                throw new OperationFailedException(
                    $"cannot create its staging directory in {home} ({IoErrors.WriteFaultReason(e)}): a restore is built "
                    + $"{(inside ? "inside the target, as it is a mount point" : "beside the target")}, so {home} must be writable by you", e);
            }
            return new Staging(target, state, inside, path);
        }

        /// <summary>Puts the tree in place of the target; returns a warning when the replaced content could not be removed.</summary>
        public string? Commit()
        {
            if (_inside)
            {
                return CommitInside();
            }
            if (_state == TargetDirectoryState.Missing || _state == TargetDirectoryState.Empty)
            {
                SetRootMetadata();
                // rename(2) replaces an empty directory atomically, and fails on one that is not.
                Posix.Rename(Path, _target);
                LocalStorage.SyncDirectory(Parent);
                return null;
            }
            SetRootMetadata();
            string replaced;
            if (Posix.TryExchange(Path, _target))
            {
                replaced = Path;
            }
            else
            {
                replaced = System.IO.Path.Combine(Parent, ReplacedPrefix + RandomSuffix());
                Posix.Rename(_target, replaced);
                try
                {
                    Posix.Rename(Path, _target);
                }
                catch
                {
                    Posix.Rename(replaced, _target);
                    throw;
                }
            }
            LocalStorage.SyncDirectory(Parent);
            return RemoveTree(replaced) is { } error
                ? $"the replaced content of {_target} could not be removed ({error}): it is in {replaced}"
                : null;
        }

        /// <summary>
        /// The target is a mount point: its entries are moved (renames within it), old out into
        /// .vya-replaced-S, then the staging directory renamed .vya-committing-S and the new ones
        /// moved in, then .vya-replaced-S renamed .vya-removing-S (the old content is no longer
        /// needed) and removed. Each step leaves names <see cref="RecoverInterruptedCommit"/> reads
        /// after a SIGKILL: old entries put back, or the verified new tree's move finished. A move
        /// that fails is undone (<see cref="RollBack"/>): the target is as it was.
        /// </summary>
        private string? CommitInside()
        {
            var suffix = System.IO.Path.GetFileName(Path)[StagingPrefix.Length..];
            var replaced = System.IO.Path.Combine(_target, ReplacedPrefix + suffix);
            var committing = System.IO.Path.Combine(_target, CommittingPrefix + suffix);
            try
            {
                if (_state == TargetDirectoryState.HoldsFiles)
                {
                    Directory.CreateDirectory(replaced, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
                    MoveEntries(_target, replaced, name => !ArchiveEntries.IsReservedName(name));
                }
                Posix.Rename(Path, committing);
                MoveEntries(committing, _target, _ => true);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                RollBack(committing, replaced, e);
                throw;
            }
            string? removing;
            try
            {
                removing = FinishCommit(_target, committing, _state == TargetDirectoryState.HoldsFiles ? replaced : null);
                LocalStorage.SyncDirectory(_target);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // The new tree is in place: only the commit's own names are left, which the next run tidies up.
                return $"the restored tree is in place, but {_target} could not be tidied up ({e.Message}); the next restore into it does that";
            }
            return removing is not null && RemoveTree(removing) is { } error
                ? $"the replaced content of {_target} could not be removed ({error}): it is in {removing}"
                : null;
        }

        /// <summary>
        /// Undoes a mount-point commit that failed half way: the new entries moved in go back into the
        /// staging directory (its name again, for <see cref="Abandon"/>), the old ones back in place.
        /// Each is a move just made the other way. If that fails too, says where the old entries are.
        /// </summary>
        private void RollBack(string committing, string replaced, Exception failure)
        {
            try
            {
                if (Posix.TryLStat(committing) is { IsDirectory: true })
                {
                    MoveEntries(_target, committing, name => !ArchiveEntries.IsReservedName(name));
                    // Named a staging directory again: after a kill from here on, the next run puts the old entries back.
                    Posix.Rename(committing, Path);
                }
                if (Posix.TryLStat(replaced) is { IsDirectory: true })
                {
                    MoveEntries(replaced, _target, _ => true);
                    Directory.Delete(replaced);
                }
                LocalStorage.SyncDirectory(_target);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                var where = _state == TargetDirectoryState.HoldsFiles ? $" (what is missing of its old entries is in {replaced})" : "";
                throw new NotRolledBackException(
                    $"{failure.Message}; undoing it failed too ({e.Message}): {_target} is part way{where}, "
                    + "and the next restore into it (not --dry-run) puts it back in one state",
                    failure);
            }
        }

        /// <summary>Moves the new entries in, then marks the old content as no longer needed; returns where it is.</summary>
        private static string? FinishCommit(string target, string committing, string? replaced)
        {
            MoveEntries(committing, target, _ => true);
            string? removing = null;
            if (replaced is not null)
            {
                removing = System.IO.Path.Combine(target, RemovingPrefix + System.IO.Path.GetFileName(replaced)[ReplacedPrefix.Length..]);
                Posix.Rename(replaced, removing);
            }
            Directory.Delete(committing);
            return removing;
        }

        /// <summary>
        /// Puts a mount-point target back in one state after a commit was killed half way (see
        /// <see cref="CommitInside"/>): with .vya-committing-S the new tree is complete and
        /// verified, so its move is finished; with only .vya-replaced-S the old entries are put
        /// back. Old data is only removed once the new tree is wholly in place. A staging
        /// directory of a restore killed before its commit is removed. Returns what was done, or null.
        /// </summary>
        public static string? RecoverInterruptedCommit(string target)
        {
            if (Posix.TryLStat(target) is not { IsDirectory: true })
            {
                return null;
            }
            var done = new List<string>();
            // Real directories only: a symlink named like ours would lead the moves out of the target.
            List<string> Ours(string prefix) =>
                [.. Directory.EnumerateFileSystemEntries(target, prefix + "*").Where(p => Posix.TryLStat(p) is { IsDirectory: true })];
            foreach (var committing in Ours(CommittingPrefix))
            {
                var replaced = System.IO.Path.Combine(target, ReplacedPrefix + System.IO.Path.GetFileName(committing)[CommittingPrefix.Length..]);
                FinishCommit(target, committing, Directory.Exists(replaced) ? replaced : null);
                done.Add("finished putting the restored tree in place");
            }
            foreach (var replaced in Ours(ReplacedPrefix))
            {
                MoveEntries(replaced, target, _ => true);
                Directory.Delete(replaced);
                RemoveTree(System.IO.Path.Combine(target, StagingPrefix + System.IO.Path.GetFileName(replaced)[ReplacedPrefix.Length..]));
                done.Add("put its old content back");
            }
            foreach (var removing in Ours(RemovingPrefix))
            {
                RemoveTree(removing);
            }
            // A staging directory still here was never committed (a commit renames it first): a restore killed while it staged.
            foreach (var staging in Ours(StagingPrefix))
            {
                RemoveTree(staging);
                done.Add("removed what it had staged");
            }
            if (done.Count == 0)
            {
                return null;
            }
            LocalStorage.SyncDirectory(target);
            return $"a restore into {target} was interrupted: {string.Join(", ", done.Distinct())}";
        }


        /// <summary>
        /// Renames the entries of <paramref name="from"/> that <paramref name="which"/> accepts into
        /// <paramref name="to"/>. A directory moves to another parent only when writable (its ".."
        /// changes): one of this user's that is not (a restored 0555 one) is made so for the move.
        /// </summary>
        private static void MoveEntries(string from, string to, Func<string, bool> which)
        {
            foreach (var entry in Directory.EnumerateFileSystemEntries(from).ToList())
            {
                var name = System.IO.Path.GetFileName(entry);
                if (!which(name))
                {
                    continue;
                }
                var moved = System.IO.Path.Combine(to, name);
                var stat = Posix.LStat(entry);
                var readOnly = stat.IsDirectory && stat.Uid == Posix.EffectiveUid && (stat.Permissions & 0x80) == 0;
                if (readOnly)
                {
                    File.SetUnixFileMode(entry, (UnixFileMode)(stat.Permissions | 0x80));
                }
                try
                {
                    Posix.Rename(entry, moved);
                }
                catch (PosixException e)
                {
                    if (readOnly)
                    {
                        File.SetUnixFileMode(entry, (UnixFileMode)stat.Permissions);
                    }
                    throw new PosixException(e.Errno, $"cannot move {entry} to {to}: {Marshal.GetPInvokeErrorMessage(e.Errno)}");
                }
                if (readOnly)
                {
                    File.SetUnixFileMode(moved, (UnixFileMode)stat.Permissions);
                }
            }
        }

        /// <summary>The new directory takes the old one's mode and owner; a new one is made as mkdir would (0755).</summary>
        private void SetRootMetadata()
        {
            if (_state == TargetDirectoryState.Missing)
            {
                File.SetUnixFileMode(Path, (UnixFileMode)0x1ED); // 0755
                return;
            }
            var old = Posix.LStat(_target);
            if (Posix.IsRoot)
            {
                Posix.ChownNoFollow(Path, old.Uid, old.Gid);
            }
            File.SetUnixFileMode(Path, (UnixFileMode)old.Permissions);
        }

        /// <summary>Removes the staging directory after a failure; returns text for the error message.</summary>
        public string Abandon() =>
            RemoveTree(Path) is { } error ? $" (its staging directory {Path} could not be removed: {error})" : "";

        private static string RandomSuffix() => Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(6));

        /// <summary>Deletes a tree (<see cref="Posix.RemoveTree"/>); null on success, else why not.</summary>
        private static string? RemoveTree(string path)
        {
            try
            {
                Posix.RemoveTree(path);
                return null;
            }
            catch (PosixException e)
            {
                return e.Message;
            }
        }
    }
}
