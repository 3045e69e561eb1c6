using VyaBackupDb.Storage;
using VyaBackupDb.Storage.S3;

namespace VyaBackupDb.Tests.Integration;

/// <summary>
/// A private prefix in the test S3 bucket and a private folder on the test SFTP server for one
/// test class; disposing removes what they hold and closes the storages the test opened.
/// </summary>
public sealed class RemoteScratch : IAsyncDisposable
{
    private readonly List<IStorage> _opened = [];

    public string S3Prefix { get; } = $"itest/{Guid.NewGuid():N}/";

    public string SftpFolder { get; } = $"itest-{Guid.NewGuid():N}";

    /// <summary>A storage the test opened: emptied (S3) and closed at the end.</summary>
    public IStorage Track(IStorage storage)
    {
        _opened.Add(storage);
        return storage;
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var storage in _opened)
        {
            if (storage is S3Storage s3)
            {
                await foreach (var entry in s3.ListAsync("", CancellationToken.None))
                {
                    await s3.DeleteAsync(entry.Key, CancellationToken.None);
                }
                await s3.SweepAbandonedAsync("", DateTimeOffset.UtcNow.AddDays(1), CancellationToken.None);
            }
            (storage as IDisposable)?.Dispose();
        }
        var sftpDir = Path.Combine(TestServers.SftpHome, SftpFolder);
        if (Directory.Exists(sftpDir))
        {
            Directory.Delete(sftpDir, recursive: true);
        }
    }
}
