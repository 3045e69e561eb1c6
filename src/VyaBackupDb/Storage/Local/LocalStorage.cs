using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace VyaBackupDb.Storage.Local;

/// <summary>
/// A directory. Writes go to a hidden temp file beside the target, are fsynced, renamed into place
/// and the directory fsynced, so a crash leaves either the old state or the whole new file.
/// </summary>
public sealed partial class LocalStorage(string root) : IStorage
{
    public const string TempMarker = ".vya-tmp-";

    /// <summary>The directory, without a trailing separator (a configured "/backups/" is "/backups").</summary>
    public string Root { get; } = Path.TrimEndingDirectorySeparator(Path.GetFullPath(root));

    /// <summary>
    /// Files under a folder, in its subfolders too, but never through a symlink (another tool's link
    /// in a backup folder leads out of it: nothing there is ours to list or sweep), and regular files
    /// only (a FIFO named like a manifest would block its reader forever).
    /// </summary>
    private static IEnumerable<string> FilesUnder(string directory, string pattern) =>
        Directory.EnumerateFiles(directory, pattern, new EnumerationOptions
            {
                RecurseSubdirectories = true,
                AttributesToSkip = FileAttributes.ReparsePoint,
                IgnoreInaccessible = false,
            })
            .Where(file => Sources.Files.Posix.TryLStat(file) is { IsRegular: true });

    public string Describe(string key) => FullPath(key);

    public Task<Stream> OpenReadAsync(string key, CancellationToken cancellationToken)
    {
        var path = FullPath(key);
        // A FIFO would block the open until someone writes to it (and no stop could end the run).
        if (Sources.Files.Posix.TryStat(path) is { IsRegular: false, IsDirectory: false })
        {
            throw new StorageException($"{path} is not a regular file (a FIFO, a socket or a device): not read");
        }
        try
        {
            return Task.FromResult<Stream>(new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 17, useAsync: false));
        }
        catch (DirectoryNotFoundException e)
        {
            throw new FileNotFoundException($"Could not find file '{path}'.", path, e);
        }
    }

    public Task<StorageEntry?> StatAsync(string key, CancellationToken cancellationToken)
    {
        var info = new FileInfo(FullPath(key));
        return Task.FromResult(info.Exists ? new StorageEntry(key, info.Length, info.LastWriteTimeUtc) : null);
    }

    public async IAsyncEnumerable<StorageEntry> ListAsync(string prefix, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        await Task.CompletedTask.ConfigureAwait(false);
        var folder = StorageKey.Folder(prefix);
        var directory = folder.Length == 0 ? Root : FullPath(folder.TrimEnd('/'));
        // Missing: nothing there yet, and a key is no folder (as in S3). But a file where a folder asked for with its '/'
        // (an instance's) should be is said (tr107: verify and status called such a destination empty and OK).
        if (prefix.EndsWith('/') ? !IsFolder(directory) : !Directory.Exists(directory))
        {
            yield break;
        }
        foreach (var file in FilesUnder(directory, "*"))
        {
            cancellationToken.ThrowIfCancellationRequested();
            var key = Path.GetRelativePath(Root, file).Replace(Path.DirectorySeparatorChar, '/');
            if (!Path.GetFileName(key).StartsWith(TempMarker, StringComparison.Ordinal) && StorageKey.IsListable(key, Root + "/"))
            {
                var info = new FileInfo(file);
                yield return new StorageEntry(key, info.Length, info.LastWriteTimeUtc);
            }
        }
    }

    /// <summary>
    /// Whether a folder to write in is there; something else in its place (a file, say) is a fault of this destination,
    /// found by the backup's sweep before a dump is written (it said only .NET's "already exists" when the backup was written).
    /// </summary>
    private static bool IsFolder(string directory)
    {
        if (Directory.Exists(directory))
        {
            return true;
        }
        return Sources.Files.Posix.TryLStat(directory) is null
            ? false
            : throw new StorageException($"{directory} is not a directory (a file or something else is there)");
    }

    public Task<IStorageWrite> CreateAsync(string key, CancellationToken cancellationToken)
    {
        var target = FullPath(key);
        var directory = Path.GetDirectoryName(target)!;
        if (!IsFolder(directory))
        {
            CreatePrivateFolder(directory);
        }
        var temp = Path.Combine(directory, TempMarker + Guid.NewGuid().ToString("N")[..12] + "-" + Path.GetFileName(target));
        return Task.FromResult<IStorageWrite>(new LocalWrite(temp, target));
    }

    public Task DeleteAsync(string key, CancellationToken cancellationToken)
    {
        try
        {
            File.Delete(FullPath(key));
        }
        catch (DirectoryNotFoundException)
        {
            // Nothing to delete: not an error (the contract).
        }
        return Task.CompletedTask;
    }

    public Task<int> SweepAbandonedAsync(string prefix, DateTimeOffset olderThan, CancellationToken cancellationToken)
    {
        var folder = StorageKey.Folder(prefix);
        var directory = folder.Length == 0 ? Root : FullPath(folder.TrimEnd('/'));
        var removed = 0;
        if (IsFolder(directory))
        {
            foreach (var temp in FilesUnder(directory, TempMarker + "*"))
            {
                if (File.GetLastWriteTimeUtc(temp) < olderThan.UtcDateTime)
                {
                    File.Delete(temp);
                    removed++;
                }
            }
        }
        return Task.FromResult(removed);
    }

    /// <summary>O_CREAT|O_EXCL: the kernel lets one creator win. A reader may see the file before its bytes (StorageLock allows for that).</summary>
    public async Task<bool> TryCreateExclusiveAsync(string key, byte[] content, CancellationToken cancellationToken)
    {
        var path = FullPath(key);
        CreatePrivateFolder(Path.GetDirectoryName(path)!);
        FileStream file;
        try
        {
            file = new FileStream(path, PrivateFile());
        }
        catch (IOException) when (File.Exists(path))
        {
            return false;
        }
        await using (file.ConfigureAwait(false))
        {
            await file.WriteAsync(content, cancellationToken).ConfigureAwait(false);
            file.Flush(flushToDisk: true);
        }
        return true;
    }

    /// <summary>The path of a key, refusing any key that would leave the root.</summary>
    public string FullPath(string key)
    {
        StorageKey.Validate(key);
        var full = Path.GetFullPath(Path.Combine(Root, key));
        if (!full.StartsWith(Path.EndsInDirectorySeparator(Root) ? Root : Root + Path.DirectorySeparatorChar, StringComparison.Ordinal))
        {
            throw new ArgumentException($"storage key '{key}' leaves {Root}", nameof(key));
        }
        return full;
    }

    /// <summary>
    /// Creates a folder and its missing parents 0700 (less the umask): backups, locks and leases are no other user's
    /// to list, delete or hold (the umask's 0755, or 0777 under umask 000, let them).
    /// </summary>
    public static void CreatePrivateFolder(string path)
    {
        if (OperatingSystem.IsWindows())
        {
            Directory.CreateDirectory(path);
            return;
        }
        // .NET gives the mode to the last folder only, its parents get the umask's.
        // A parent that is a file is left to fail the mkdir below, which names the whole path (ENOTDIR).
        if (Path.GetDirectoryName(Path.TrimEndingDirectorySeparator(path)) is { Length: > 0 } parent && !Path.Exists(parent))
        {
            CreatePrivateFolder(parent);
        }
        Directory.CreateDirectory(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
    }

    /// <summary>A backup holds a whole database: created 0600 (the rename keeps the mode), not at the umask's 0644.</summary>
    private static FileStreamOptions PrivateFile()
    {
        var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, BufferSize = 1 << 17 };
        if (!OperatingSystem.IsWindows())
        {
            options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        }
        return options;
    }

    private sealed class LocalWrite(string tempPath, string targetPath) : IStorageWrite
    {
        private readonly TempFileStream _file = new(new FileStream(tempPath, PrivateFile()));

        private bool _committed;

        public Stream Content => _file;

        public async Task CommitAsync(CancellationToken cancellationToken)
        {
            await _file.FlushAsync(cancellationToken).ConfigureAwait(false);
            _file.Flush(flushToDisk: true);
            await _file.DisposeAsync().ConfigureAwait(false);
            try
            {
                File.Move(tempPath, targetPath, overwrite: false);
            }
            // Two backups under one name: a clock set back onto seconds an earlier backup used.
            catch (IOException e) when (File.Exists(targetPath))
            {
                throw new StorageException($"{targetPath} already exists; not overwritten", e);
            }
            _committed = true;
            SyncDirectory(Path.GetDirectoryName(targetPath)!);
        }

        public async ValueTask DisposeAsync()
        {
            if (_committed)
            {
                return;
            }
            try
            {
                await _file.DisposeAsync().ConfigureAwait(false);
            }
            catch (IOException)
            {
                // Disk full while flushing the last buffer: the file is being removed anyway.
            }
            File.Delete(tempPath);
        }
    }

    /// <summary>
    /// A temp file's stream whose write failures are all <see cref="IOException"/>s: EFBIG (larger than the
    /// file system or the process's file size limit allows) comes from .NET as an ArgumentOutOfRangeException.
    /// </summary>
    private sealed class TempFileStream(FileStream file) : Pipeline.WrapperStream(file)
    {
        public override void Write(ReadOnlySpan<byte> buffer)
        {
            try
            {
                file.Write(buffer);
            }
            catch (ArgumentOutOfRangeException e)
            {
                throw TooLarge(e);
            }
        }

        public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        {
            try
            {
                await file.WriteAsync(buffer, cancellationToken).ConfigureAwait(false);
            }
            catch (ArgumentOutOfRangeException e)
            {
                throw TooLarge(e);
            }
        }

        public override void Flush() => Flush(flushToDisk: false);

        public override async Task FlushAsync(CancellationToken cancellationToken)
        {
            try
            {
                await file.FlushAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (ArgumentOutOfRangeException e)
            {
                throw TooLarge(e);
            }
        }

        public void Flush(bool flushToDisk)
        {
            try
            {
                file.Flush(flushToDisk);
            }
            catch (ArgumentOutOfRangeException e)
            {
                throw TooLarge(e);
            }
        }

        protected override void Dispose(bool disposing)
        {
            try
            {
                base.Dispose(disposing);
            }
            catch (ArgumentOutOfRangeException e)
            {
                throw TooLarge(e);
            }
        }

        public override async ValueTask DisposeAsync()
        {
            try
            {
                await base.DisposeAsync().ConfigureAwait(false);
            }
            catch (ArgumentOutOfRangeException e)
            {
                throw TooLarge(e);
            }
        }

        private static IOException TooLarge(ArgumentOutOfRangeException e) =>
            new(Errors.IoErrors.FileTooLarge, e);
    }

    /// <summary>fsync a directory, so a rename in it survives a crash.</summary>
    internal static void SyncDirectory(string directory)
    {
        if (OperatingSystem.IsWindows())
        {
            return;
        }
        var fd = Open(directory, 0 /* O_RDONLY */);
        if (fd < 0)
        {
            return;
        }
        try
        {
            _ = Fsync(fd);
        }
        finally
        {
            _ = Close(fd);
        }
    }

    [LibraryImport("libc", EntryPoint = "open", StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Open(string path, int flags);

    [LibraryImport("libc", EntryPoint = "fsync")]
    private static partial int Fsync(int fd);

    [LibraryImport("libc", EntryPoint = "close")]
    private static partial int Close(int fd);
}
