using VyaBackupDb.Storage;
using VyaBackupDb.Storage.Local;
using VyaBackupDb.Storage.S3;
using VyaBackupDb.Storage.Sftp;
using VyaBackupDb.Tests.Integration;

namespace VyaBackupDb.Tests.StorageContract;

public sealed class LocalStorageContractTests : StorageContractTests
{
    private readonly string _root = Directory.CreateTempSubdirectory("vya-contract-local-").FullName;

    protected override Task<IStorage> OpenAsync() => Task.FromResult<IStorage>(new LocalStorage(Path.Combine(_root, "store")));

    protected override Task<IReadOnlyList<string>> LeftoversAsync(IStorage storage, string prefix)
    {
        var dir = Path.Combine(_root, "store", prefix);
        IReadOnlyList<string> temps = Directory.Exists(dir)
            ? [.. Directory.EnumerateFiles(dir, LocalStorage.TempMarker + "*", SearchOption.AllDirectories)]
            : [];
        return Task.FromResult(temps);
    }

    protected override Task CleanupAsync(IStorage storage)
    {
        Directory.Delete(_root, recursive: true);
        return Task.CompletedTask;
    }
}

public sealed class MemoryStorageContractTests : StorageContractTests
{
    protected override Task<IStorage> OpenAsync() => Task.FromResult<IStorage>(new MemoryStorage());

    protected override Task<IReadOnlyList<string>> LeftoversAsync(IStorage storage, string prefix)
    {
        var folder = StorageKey.Folder(prefix);
        IReadOnlyList<string> pending = [.. ((MemoryStorage)storage).PendingKeys.Where(k => k.StartsWith(folder, StringComparison.Ordinal))];
        return Task.FromResult(pending);
    }
}

/// <summary>Against the Ceph RADOS Gateway (scripts/servers), each test under a prefix of its own.</summary>
[Trait("Category", "Integration")]
public sealed class S3StorageContractTests : StorageContractTests
{
    private readonly string _prefix = $"contract/{Guid.NewGuid():N}/";

    protected override async Task<IStorage> OpenAsync()
    {
        await TestServers.RequireS3Async();
        return new S3Storage(TestServers.S3(_prefix));
    }

    protected override async Task<IReadOnlyList<string>> LeftoversAsync(IStorage storage, string prefix) =>
        [.. (await ((S3Storage)storage).ListUploadsAsync(prefix, CancellationToken.None)).Select(u => $"{u.Key} (upload {u.UploadId})")];

    protected override void AssertLargeWrite(IStorageWrite write, long bytes)
    {
        var s3 = Assert.IsType<S3Storage.S3Write>(write);
        // A streamed multipart upload, one part buffered at a time.
        Assert.Equal((int)((bytes + TestServers.S3TestPartSize - 1) / TestServers.S3TestPartSize), s3.PartsUploaded);
        Assert.Equal(TestServers.S3TestPartSize, s3.PeakBufferSize);
    }

    protected override async Task CleanupAsync(IStorage storage)
    {
        var keys = new List<string>();
        await foreach (var entry in storage.ListAsync("", CancellationToken.None))
        {
            keys.Add(entry.Key);
        }
        foreach (var key in keys)
        {
            await storage.DeleteAsync(key, CancellationToken.None);
        }
        await storage.SweepAbandonedAsync("", DateTimeOffset.UtcNow.AddDays(1), CancellationToken.None);
    }
}

/// <summary>Against the test sshd (scripts/servers), each test in a folder of its own, logged in by key.</summary>
[Trait("Category", "Integration")]
public sealed class SftpStorageContractTests : StorageContractTests
{
    private readonly string _folder = $"contract-{Guid.NewGuid():N}";

    protected override async Task<IStorage> OpenAsync()
    {
        await TestServers.RequireSftpAsync();
        return new SftpStorage(TestServers.Sftp(_folder));
    }

    protected override async Task<IReadOnlyList<string>> LeftoversAsync(IStorage storage, string prefix) =>
        await ((SftpStorage)storage).ListTempFilesAsync(prefix, CancellationToken.None);

    protected override Task CleanupAsync(IStorage storage)
    {
        var dir = Path.Combine(TestServers.SftpHome, _folder);
        if (Directory.Exists(dir))
        {
            Directory.Delete(dir, recursive: true);
        }
        return Task.CompletedTask;
    }
}
