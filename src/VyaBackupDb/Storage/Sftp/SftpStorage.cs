using System.Net.Sockets;
using System.Runtime.CompilerServices;
using Renci.SshNet;
using Renci.SshNet.Common;
using Renci.SshNet.Sftp;
using VyaBackupDb.Config;

namespace VyaBackupDb.Storage.Sftp;

/// <summary>
/// A directory on an SFTP server. The server's host key must match the configured SHA256
/// fingerprint, or nothing is sent (not even the password). A write goes to a hidden temp file
/// in the target's directory and is renamed into place on commit (the posix-rename extension
/// where the server has it); disposing without commit deletes the temp file.
/// </summary>
public sealed class SftpStorage : IStorage, IDisposable
{
    public const string TempMarker = Local.LocalStorage.TempMarker;

    private readonly SftpStorageConfig _config;
    private readonly string _root;
    private readonly TimeSpan _connectTimeout = TimeSpan.FromSeconds(30);
    private readonly SemaphoreSlim _connectLock = new(1, 1);
    private readonly HashSet<string> _knownDirectories = new(StringComparer.Ordinal);
    private SftpClient? _client;

    /// <param name="connectTimeout">How long connecting and logging in may wait for the server (default 30 s).</param>
    public SftpStorage(SftpStorageConfig config, TimeSpan? connectTimeout = null)
    {
        _config = config;
        _connectTimeout = connectTimeout ?? _connectTimeout;
        _root = config.Root;
    }

    public string Describe(string key) => Url(PathOf(key));

    /// <summary>sftp://USER@HOST[:PORT]/PATH for an absolute path, sftp://USER@HOST[:PORT]/~/PATH for one in the login folder.</summary>
    private string Url(string path) => $"sftp://{_config.User}@{HostPort}/{(_config.IsRelative ? "~/" : "")}{path.TrimStart('/')}";

    private string HostPort => _config.Port == 22 ? _config.Host : $"{_config.Host}:{_config.Port}";

    /// <summary>The remote path of a key.</summary>
    public string PathOf(string key) => Join(_root, StorageKey.Validate(key));

    private static string Join(string root, string relative) =>
        root.Length == 0 ? relative : root == "/" ? "/" + relative : root + "/" + relative;

    private string FolderPath(string prefix)
    {
        var folder = StorageKey.Folder(prefix).TrimEnd('/');
        return folder.Length == 0 ? (_root.Length == 0 ? "." : _root) : Join(_root, folder);
    }

    public async Task<Stream> OpenReadAsync(string key, CancellationToken cancellationToken)
    {
        var client = await ConnectAsync(cancellationToken).ConfigureAwait(false);
        var path = PathOf(key);
        var stream = await CallAsync("read", key, () => client.OpenAsync(path, FileMode.Open, FileAccess.Read, cancellationToken), missingIsNotFound: true)
            .ConfigureAwait(false);
        return new GuardedStream(stream, Describe(key), _connectTimeout, Abandon);
    }

    public async Task<StorageEntry?> StatAsync(string key, CancellationToken cancellationToken)
    {
        var client = await ConnectAsync(cancellationToken).ConfigureAwait(false);
        var path = PathOf(key);
        try
        {
            var attributes = await CallAsync("stat", key, () => client.GetAttributesAsync(path, cancellationToken), missingIsNotFound: true)
                .ConfigureAwait(false);
            return attributes.IsRegularFile ? new StorageEntry(key, attributes.Size, attributes.LastWriteTimeUtc) : null;
        }
        catch (FileNotFoundException)
        {
            return null;
        }
    }

    public async IAsyncEnumerable<StorageEntry> ListAsync(string prefix, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var folder = StorageKey.Folder(prefix);
        await foreach (var (relative, file) in WalkAsync(folder, cancellationToken).ConfigureAwait(false))
        {
            if (!file.Name.StartsWith(TempMarker, StringComparison.Ordinal))
            {
                yield return new StorageEntry(relative, file.Length, file.LastWriteTimeUtc);
            }
        }
    }

    /// <summary>Every regular file under a folder (temp files included), with its key.</summary>
    private async IAsyncEnumerable<(string Key, ISftpFile File)> WalkAsync(string folder, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var client = await ConnectAsync(cancellationToken).ConfigureAwait(false);
        var pending = new Stack<string>();
        pending.Push(folder);
        while (pending.Count > 0)
        {
            var current = pending.Pop();
            var path = FolderPath(current);
            List<ISftpFile> entries;
            try
            {
                entries = await CallAsync("list", current, async () =>
                {
                    var list = new List<ISftpFile>();
                    await foreach (var entry in client.ListDirectoryAsync(path, cancellationToken).ConfigureAwait(false))
                    {
                        list.Add(entry);
                    }
                    return list;
                }, missingIsNotFound: true).ConfigureAwait(false);
            }
            catch (FileNotFoundException)
            {
                continue;
            }
            foreach (var entry in entries.OrderBy(e => e.Name, StringComparer.Ordinal))
            {
                if (entry.Name is "." or ".." || !StorageKey.IsListable(current + entry.Name, DescribeSafe("")))
                {
                    continue;
                }
                if (entry.IsDirectory)
                {
                    pending.Push(current + entry.Name + "/");
                }
                else if (entry.IsRegularFile)
                {
                    yield return (current + entry.Name, entry);
                }
            }
        }
    }

    public async Task<IStorageWrite> CreateAsync(string key, CancellationToken cancellationToken)
    {
        var client = await ConnectAsync(cancellationToken).ConfigureAwait(false);
        var target = PathOf(key);
        await CreateDirectoriesAsync(client, target[..Math.Max(0, target.LastIndexOf('/'))], cancellationToken).ConfigureAwait(false);
        var directory = target[..(target.LastIndexOf('/') + 1)];
        var temp = directory + TempMarker + Guid.NewGuid().ToString("N")[..12] + "-" + StorageKey.FileName(key);
        SftpFileStream opened;
        try
        {
            opened = await CallAsync("create a temp file for", key, () => client.OpenAsync(temp, FileMode.CreateNew, FileAccess.Write, cancellationToken))
                .ConfigureAwait(false);
        }
        catch (StorageException e) when (e.InnerException is SshException lost && IsConnectionLost(lost))
        {
            // The server may have created it before the answer was lost.
            await DeleteTempQuietlyAsync(temp).ConfigureAwait(false);
            throw;
        }
        var stream = new GuardedStream(opened, Describe(key), _connectTimeout, Abandon);
        var write = new SftpWrite(this, key, temp, target, stream);
        try
        {
            // A backup holds a whole database: 0600 before any byte is written (the server's
            // default is its umask, usually 0644), kept by the rename.
            await CallAsync("restrict the mode of", key, () =>
            {
                client.ChangePermissions(temp, 600);
                return Task.FromResult(true);
            }).ConfigureAwait(false);
        }
        catch
        {
            await write.DisposeAsync().ConfigureAwait(false);
            throw;
        }
        return write;
    }

    /// <summary>
    /// SSH_FXF_CREAT|SSH_FXF_EXCL (FileMode.CreateNew): the server's O_EXCL lets one creator win. A
    /// reader may see the file before its bytes (StorageLock allows for that).
    /// </summary>
    public async Task<bool> TryCreateExclusiveAsync(string key, byte[] content, CancellationToken cancellationToken)
    {
        var client = await ConnectAsync(cancellationToken).ConfigureAwait(false);
        var target = PathOf(key);
        await CreateDirectoriesAsync(client, target[..Math.Max(0, target.LastIndexOf('/'))], cancellationToken).ConfigureAwait(false);
        Stream stream;
        try
        {
            stream = await client.OpenAsync(target, FileMode.CreateNew, FileAccess.Write, cancellationToken).ConfigureAwait(false);
        }
        catch (SshException e)
        {
            // The server says only "failure" when the file exists: look.
            if (await StatAsync(key, cancellationToken).ConfigureAwait(false) is not null)
            {
                return false;
            }
            throw new StorageException($"sftp: cannot create {DescribeSafe(key)}: {e.Message}", e);
        }
        await using (var guarded = new GuardedStream(stream, Describe(key), _connectTimeout, Abandon))
        {
            await guarded.WriteAsync(content, cancellationToken).ConfigureAwait(false);
        }
        return true;
    }

    /// <summary>Creates a remote directory and its parents where missing (the base path too).</summary>
    private async Task CreateDirectoriesAsync(SftpClient client, string directory, CancellationToken cancellationToken)
    {
        if (directory.Length == 0 || _knownDirectories.Contains(directory))
        {
            return;
        }
        var path = directory.StartsWith('/') ? "/" : "";
        foreach (var segment in directory.Split('/', StringSplitOptions.RemoveEmptyEntries))
        {
            path = path.Length == 0 ? segment : path.EndsWith('/') ? path + segment : path + "/" + segment;
            if (_knownDirectories.Contains(path))
            {
                continue;
            }
            var current = path;
            try
            {
                if (!await client.ExistsAsync(current, cancellationToken).ConfigureAwait(false))
                {
                    await client.CreateDirectoryAsync(current, cancellationToken).ConfigureAwait(false);
                }
            }
            catch (SshException e) when (!IsConnectionLost(e) && client.Exists(current))
            {
                // Created meanwhile by another run.
            }
            catch (SshException e)
            {
                throw Fail($"sftp: cannot create directory {current} on {HostPort}", e);
            }
            _knownDirectories.Add(current);
        }
    }

    public async Task DeleteAsync(string key, CancellationToken cancellationToken)
    {
        var client = await ConnectAsync(cancellationToken).ConfigureAwait(false);
        var path = PathOf(key);
        try
        {
            await CallAsync("delete", key, async () =>
            {
                await client.DeleteFileAsync(path, cancellationToken).ConfigureAwait(false);
                return true;
            }, missingIsNotFound: true).ConfigureAwait(false);
        }
        catch (FileNotFoundException)
        {
        }
    }

    public async Task<int> SweepAbandonedAsync(string prefix, DateTimeOffset olderThan, CancellationToken cancellationToken)
    {
        var client = await ConnectAsync(cancellationToken).ConfigureAwait(false);
        var removed = 0;
        var stale = new List<string>();
        await foreach (var (_, file) in WalkAsync(StorageKey.Folder(prefix), cancellationToken).ConfigureAwait(false))
        {
            if (file.Name.StartsWith(TempMarker, StringComparison.Ordinal) && file.LastWriteTimeUtc < olderThan.UtcDateTime)
            {
                stale.Add(file.FullName);
            }
        }
        foreach (var path in stale)
        {
            try
            {
                await client.DeleteFileAsync(path, cancellationToken).ConfigureAwait(false);
                removed++;
            }
            catch (SftpPathNotFoundException)
            {
            }
            catch (SshException e)
            {
                throw new StorageException($"sftp: cannot delete the abandoned temp file {path} on {HostPort} (storage '{_config.Name}'): {e.Message}", e);
            }
        }
        return removed;
    }

    /// <summary>Temp files (writes in progress or abandoned) under a folder: for tests and diagnostics.</summary>
    public async Task<IReadOnlyList<string>> ListTempFilesAsync(string prefix, CancellationToken cancellationToken)
    {
        var temps = new List<string>();
        await foreach (var (key, file) in WalkAsync(StorageKey.Folder(prefix), cancellationToken).ConfigureAwait(false))
        {
            if (file.Name.StartsWith(TempMarker, StringComparison.Ordinal))
            {
                temps.Add(key);
            }
        }
        return temps;
    }

    private async Task<SftpClient> ConnectAsync(CancellationToken cancellationToken)
    {
        if (_client is { IsConnected: true } connected)
        {
            return connected;
        }
        await _connectLock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (_client is { IsConnected: true } again)
            {
                return again;
            }
            _client?.Dispose();
            _client = null;
            // Each request (a block read or written, a listing) on a connection that stops answering fails
            // within the limit, as the connect does: a server that hangs mid-file must not hang the run.
            var client = new SftpClient(ConnectionInfo()) { OperationTimeout = _connectTimeout };
            string? presented = null;
            var expected = NormalizeFingerprint(_config.HostFingerprint);
            client.HostKeyReceived += (_, e) =>
            {
                presented = "SHA256:" + e.FingerPrintSHA256.TrimEnd('=');
                e.CanTrust = string.Equals(presented, expected, StringComparison.Ordinal);
            };
            try
            {
                await client.ConnectAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (Exception e) when (e is SshException or SocketException or IOException or InvalidOperationException)
            {
                client.Dispose();
                if (presented is not null && presented != expected)
                {
                    throw new StorageException(
                        $"sftp: the host key of {HostPort} is {presented}, but storage '{_config.Name}' expects {expected} "
                        + "(host_fingerprint): connection refused, nothing was sent", e, wholeDestination: true);
                }
                var what = e is SshAuthenticationException ? $"login as {_config.User} failed" : "cannot connect";
                throw new StorageException($"sftp: {what} to {HostPort} (storage '{_config.Name}'): {e.Message}", e, wholeDestination: true);
            }
            _client = client;
            return client;
        }
        finally
        {
            _connectLock.Release();
        }
    }

    private ConnectionInfo ConnectionInfo()
    {
        var methods = new List<AuthenticationMethod>();
        if (_config.PrivateKeyFile is { } keyFile)
        {
            PrivateKeyFile key;
            try
            {
                var passphrase = _config.PrivateKeyPassphrase.Resolve();
                key = passphrase is null ? new PrivateKeyFile(keyFile) : new PrivateKeyFile(keyFile, passphrase);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or SshException)
            {
                throw new StorageException($"sftp: cannot read the private key {keyFile} of storage '{_config.Name}': {e.Message}", e, wholeDestination: true);
            }
            methods.Add(new PrivateKeyAuthenticationMethod(_config.User, key));
        }
        if (_config.Password.Resolve() is { } password)
        {
            methods.Add(new PasswordAuthenticationMethod(_config.User, password));
        }
        return new ConnectionInfo(_config.Host, _config.Port, _config.User, [.. methods])
        {
            Timeout = _connectTimeout,
        };
    }

    /// <summary>"SHA256:abc" (as ssh-keygen -lf prints it, padding or not) → "SHA256:abc" without padding.</summary>
    public static string NormalizeFingerprint(string fingerprint)
    {
        var text = fingerprint.Trim();
        return text.StartsWith("SHA256:", StringComparison.Ordinal) ? text.TrimEnd('=') : "SHA256:" + text.TrimEnd('=');
    }

    private async Task<T> CallAsync<T>(string what, string key, Func<Task<T>> call, bool missingIsNotFound = false)
    {
        try
        {
            return await call().ConfigureAwait(false);
        }
        catch (SftpPathNotFoundException e) when (missingIsNotFound)
        {
            throw new FileNotFoundException($"{DescribeSafe(key.TrimEnd('/'))} does not exist", key, e);
        }
        catch (SshException e)
        {
            throw Fail($"sftp: cannot {what} {DescribeSafe(key)}", e);
        }
    }

    /// <summary><see cref="Failure"/>, the connection given up first if it is lost (<see cref="Abandon"/>).</summary>
    private StorageException Fail(string context, SshException e)
    {
        if (IsConnectionLost(e))
        {
            Abandon();
        }
        return Failure(context, e, _connectTimeout);
    }

    /// <summary>
    /// Best effort: deletes a temp file of ours, over a new connection if the write's was lost (or is found lost now);
    /// if none can be had, a later run's sweep deletes the file.
    /// </summary>
    private async Task DeleteTempQuietlyAsync(string tempPath)
    {
        using var limit = new CancellationTokenSource(_connectTimeout);
        for (var attempt = 1; attempt <= 2; attempt++)
        {
            try
            {
                var client = await ConnectAsync(limit.Token).ConfigureAwait(false);
                await client.DeleteFileAsync(tempPath, limit.Token).ConfigureAwait(false);
                return;
            }
            catch (SshException e) when (attempt == 1 && IsConnectionLost(e))
            {
                Abandon();
            }
            catch (Exception e) when (e is SshException or IOException or ObjectDisposedException or InvalidOperationException or OperationCanceledException)
            {
                return;
            }
        }
    }

    /// <summary>The connection is gone (cut) or left a request unanswered: it is given up (<see cref="Abandon"/>).</summary>
    internal static bool IsConnectionLost(SshException e) => e is SshConnectionException or SshOperationTimeoutException;

    /// <summary>
    /// Gives up the connection after it was cut or a request went unanswered: the requests after it (closing the
    /// file, deleting the temp file, releasing the lock) connect anew instead of each failing or waiting out the limit.
    /// </summary>
    private void Abandon()
    {
        Interlocked.Exchange(ref _client, null)?.Dispose();
    }

    /// <summary>
    /// An SSH failure as a storage fault: what went wrong in the config's words where it is a limit of
    /// ours; a lost connection or a server that stopped answering is the host's, anything else
    /// (permission denied, not a directory) the path's.
    /// </summary>
    internal static StorageException Failure(string context, SshException e, TimeSpan answerLimit) =>
        new($"{context}: {(e is SshOperationTimeoutException ? $"no answer within {answerLimit.TotalSeconds:0} s (connect_timeout_seconds)" : e.Message)}",
            e, wholeDestination: e is SshConnectionException or SshOperationTimeoutException);

    private string DescribeSafe(string key) => Url(Join(_root, key));

    public void Dispose()
    {
        _client?.Dispose();
        _connectLock.Dispose();
    }

    private sealed class SftpWrite(SftpStorage storage, string key, string tempPath, string targetPath, Stream stream)
        : IStorageWrite
    {
        private bool _closed;
        private bool _committed;

        public Stream Content => stream;

        public async Task CommitAsync(CancellationToken cancellationToken)
        {
            await stream.FlushAsync(cancellationToken).ConfigureAwait(false);
            await stream.DisposeAsync().ConfigureAwait(false);
            _closed = true;
            if (await storage.StatAsync(key, cancellationToken).ConfigureAwait(false) is not null)
            {
                throw new StorageException($"{storage.Describe(key)} already exists; not overwritten");
            }
            var client = await storage.ConnectAsync(cancellationToken).ConfigureAwait(false);
            try
            {
                // posix-rename@openssh.com replaces atomically; plain SFTP rename is the fallback.
                client.RenameFile(tempPath, targetPath, isPosix: true);
            }
            catch (NotSupportedException)
            {
                await client.RenameFileAsync(tempPath, targetPath, cancellationToken).ConfigureAwait(false);
            }
            catch (SshException e)
            {
                throw storage.Fail($"sftp: cannot rename the temp file to {storage.Describe(key)}", e);
            }
            _committed = true;
        }

        public async ValueTask DisposeAsync()
        {
            if (_committed)
            {
                return;
            }
            try
            {
                if (!_closed)
                {
                    _closed = true;
                    await stream.DisposeAsync().ConfigureAwait(false);
                }
            }
            catch (Exception e) when (e is SshException or IOException or ObjectDisposedException or InvalidOperationException)
            {
                // The connection may be gone: the temp file is deleted over a new one.
            }
            await storage.DeleteTempQuietlyAsync(tempPath).ConfigureAwait(false);
        }
    }
}
