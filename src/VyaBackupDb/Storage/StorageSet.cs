using VyaBackupDb.Config;
using VyaBackupDb.Storage.Local;
using VyaBackupDb.Storage.S3;
using VyaBackupDb.Storage.Sftp;

namespace VyaBackupDb.Storage;

/// <summary>
/// The destinations of one config, each opened once on first use (an SFTP connection, an S3
/// client) and closed when the set is disposed.
/// </summary>
public sealed class StorageSet(AppConfig config) : IDisposable
{
    private readonly Dictionary<string, IStorage> _open = new(StringComparer.Ordinal);

    public AppConfig Config => config;

    public IStorage Get(string name)
    {
        if (!_open.TryGetValue(name, out var storage))
        {
            storage = Create(config.GetStorage(name), config.ConnectTimeout);
            _open[name] = storage;
        }
        return storage;
    }

    /// <summary>An instance's destinations in order: the first gets the dump, the others copies.</summary>
    public IReadOnlyList<NamedStorage> For(InstanceConfig instance) =>
        [.. instance.StorageNames.Select(name => new NamedStorage(name, Get(name)))];

    /// <param name="answerLimit">How long a remote destination may take to answer a request that sends no data (connect_timeout_seconds).</param>
    public static IStorage Create(StorageConfig storage, TimeSpan? answerLimit = null) => storage switch
    {
        LocalStorageConfig local => new LocalStorage(local.Path),
        S3StorageConfig s3 => new S3Storage(s3, answerLimit),
        SftpStorageConfig sftp => new SftpStorage(sftp, answerLimit),
        _ => throw new ArgumentOutOfRangeException(nameof(storage)),
    };

    /// <summary>
    /// A failure of one storage (unreachable, refused, misconfigured credentials), as opposed to an
    /// interruption or a bug: it fails what needs that storage, and the others go on.
    /// </summary>
    public static bool IsStorageFault(Exception e, CancellationToken cancellationToken) =>
        !cancellationToken.IsCancellationRequested
        && e is IOException or UnauthorizedAccessException or TimeoutException or (Errors.VyaException and not Errors.LockedException);

    /// <summary>
    /// A storage fault of the destination as a whole (cannot connect, login refused, no such bucket,
    /// its credentials unusable), which every instance there would meet again: a run tries such a
    /// destination once. Any other fault (permission denied on a folder, not a directory) is the
    /// folder's, and fails only the instance it belongs to.
    /// </summary>
    public static bool IsDestinationDown(Exception e) =>
        e is StorageException { WholeDestination: true } or TimeoutException or Errors.ConfigException or Errors.VaultException;

    public void Dispose()
    {
        foreach (var storage in _open.Values)
        {
            (storage as IDisposable)?.Dispose();
        }
        _open.Clear();
    }
}
