namespace VyaBackupDb.Storage;

public sealed record StorageEntry(string Key, long Size, DateTimeOffset LastModified);

public interface IReadOnlyStorage
{
    /// <summary>Human-readable location of a key (a path or URL), for messages.</summary>
    string Describe(string key);

    Task<Stream> OpenReadAsync(string key, CancellationToken cancellationToken);

    IAsyncEnumerable<StorageEntry> ListAsync(string prefix, CancellationToken cancellationToken);
}

public interface IStorage : IReadOnlyStorage
{
    /// <summary>Starts a write that becomes visible under <paramref name="key"/> only on commit.</summary>
    Task<IStorageWrite> CreateAsync(string key, CancellationToken cancellationToken);

    Task DeleteAsync(string key, CancellationToken cancellationToken);

    /// <summary>Removes the leftovers of writes that were never committed nor aborted (a killed run), older than a point in time.</summary>
    Task<int> SweepAbandonedAsync(string prefix, DateTimeOffset olderThan, CancellationToken cancellationToken);
}

/// <summary>A write in progress. Disposing it without <see cref="CommitAsync"/> aborts it and leaves nothing.</summary>
public interface IStorageWrite : IAsyncDisposable
{
    Stream Content { get; }

    Task CommitAsync(CancellationToken cancellationToken);
}
