namespace VyaBackupDb.Storage;

public sealed record StorageEntry(string Key, long Size, DateTimeOffset LastModified);

/// <summary>
/// Read access to a storage. The contract every backend keeps (tests/…/StorageContractTests.cs):
/// <list type="bullet">
/// <item>A key is a relative path of '/'-separated segments (see <see cref="StorageKey"/>).</item>
/// <item><see cref="ListAsync"/> takes a folder: "" (everything) or "a/b" (a trailing '/' is implied).
/// It lists every committed key under that folder, recursively, and nothing else: "a/b" never
/// lists "a/bc/x" nor the key "a/b" itself. Writes in progress and their leftovers are never listed.</item>
/// <item>Reading a key that does not exist throws <see cref="FileNotFoundException"/>.</item>
/// </list>
/// </summary>
public interface IReadOnlyStorage
{
    /// <summary>Human-readable location of a key (a path or URL), for messages. Never holds a secret.</summary>
    string Describe(string key);

    /// <summary>Opens a committed key for reading; <see cref="FileNotFoundException"/> when it does not exist.</summary>
    Task<Stream> OpenReadAsync(string key, CancellationToken cancellationToken);

    IAsyncEnumerable<StorageEntry> ListAsync(string prefix, CancellationToken cancellationToken);

    /// <summary>The entry of one committed key, or null when there is none.</summary>
    async Task<StorageEntry?> StatAsync(string key, CancellationToken cancellationToken)
    {
        StorageKey.Validate(key);
        var slash = key.LastIndexOf('/');
        var folder = slash < 0 ? "" : key[..slash];
        await foreach (var entry in ListAsync(folder, cancellationToken).ConfigureAwait(false))
        {
            if (entry.Key == key)
            {
                return entry;
            }
        }
        return null;
    }
}

/// <summary>
/// A writable storage. Writes become visible only on commit; a commit onto a key that already
/// exists fails with <see cref="IOException"/> and leaves the existing object as it was (backups
/// are never overwritten); deleting a key that does not exist is not an error.
/// </summary>
public interface IStorage : IReadOnlyStorage
{
    /// <summary>Starts a write that becomes visible under <paramref name="key"/> only on commit.</summary>
    Task<IStorageWrite> CreateAsync(string key, CancellationToken cancellationToken);

    Task DeleteAsync(string key, CancellationToken cancellationToken);

    /// <summary>
    /// Removes the leftovers of writes that were never committed nor aborted (a killed run) in the
    /// folder <paramref name="prefix"/> (recursively), started before <paramref name="olderThan"/>.
    /// Returns how many were removed.
    /// </summary>
    Task<int> SweepAbandonedAsync(string prefix, DateTimeOffset olderThan, CancellationToken cancellationToken);

    /// <summary>
    /// Creates a small object only if no object has that key, atomically where the backend can
    /// (S3 If-None-Match: *, SFTP and local O_EXCL): of two runners creating the same key at once,
    /// exactly one gets true. What <see cref="Operations.StorageLock"/> is built on. The default
    /// (a commit that refuses to overwrite) is only as atomic as the backend's commit.
    /// </summary>
    async Task<bool> TryCreateExclusiveAsync(string key, byte[] content, CancellationToken cancellationToken)
    {
        try
        {
            await using var write = await CreateAsync(key, cancellationToken).ConfigureAwait(false);
            await write.Content.WriteAsync(content, cancellationToken).ConfigureAwait(false);
            await write.CommitAsync(cancellationToken).ConfigureAwait(false);
            return true;
        }
        catch (IOException)
        {
            if (await StatAsync(key, cancellationToken).ConfigureAwait(false) is null)
            {
                throw;
            }
            return false;
        }
    }
}

/// <summary>A write in progress. Disposing it without <see cref="CommitAsync"/> aborts it and leaves nothing.</summary>
public interface IStorageWrite : IAsyncDisposable
{
    Stream Content { get; }

    Task CommitAsync(CancellationToken cancellationToken);
}

/// <summary>The rules for keys and prefixes, the same for every backend.</summary>
public static class StorageKey
{
    /// <summary>
    /// A key: non-empty '/'-separated segments, none empty, "." or "..", no backslash, no control
    /// character. Throws <see cref="ArgumentException"/> otherwise, so no key can leave its storage.
    /// </summary>
    public static string Validate(string key)
    {
        ArgumentNullException.ThrowIfNull(key);
        if (key.Length == 0)
        {
            throw new ArgumentException("a storage key must not be empty", nameof(key));
        }
        foreach (var segment in key.Split('/'))
        {
            if (segment is "" or "." or "..")
            {
                throw new ArgumentException($"storage key '{key}' has an empty, '.' or '..' segment", nameof(key));
            }
        }
        if (key.Any(c => c == '\\' || char.IsControl(c)))
        {
            throw new ArgumentException($"storage key '{key}' holds a backslash or a control character", nameof(key));
        }
        return key;
    }

    /// <summary>A list prefix as a folder: "" stays "", "a/b" and "a/b/" become "a/b/".</summary>
    public static string Folder(string prefix)
    {
        ArgumentNullException.ThrowIfNull(prefix);
        var trimmed = prefix.TrimEnd('/');
        if (trimmed.Length == 0)
        {
            return "";
        }
        Validate(trimmed);
        return trimmed + "/";
    }

    /// <summary>The last segment of a key.</summary>
    public static string FileName(string key) => key[(key.LastIndexOf('/') + 1)..];
}
