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

    /// <summary>
    /// Whether a committed key starts with <paramref name="keyPrefix"/>: a folder and the start of a file name in it
    /// ("main/20260113_155440_mysql_dns_db.").
    /// </summary>
    async Task<bool> AnyKeyStartingWithAsync(string keyPrefix, CancellationToken cancellationToken)
    {
        var slash = keyPrefix.LastIndexOf('/');
        await foreach (var entry in ListAsync(slash < 0 ? "" : keyPrefix[..slash], cancellationToken).ConfigureAwait(false))
        {
            if (entry.Key.StartsWith(keyPrefix, StringComparison.Ordinal))
            {
                return true;
            }
        }
        return false;
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
    private static readonly System.Collections.Concurrent.ConcurrentDictionary<string, bool> PassedOverNames = new(StringComparer.Ordinal);

    /// <summary>
    /// Where a listing's warning about a name it passes over goes (the CLI sets its warning line).
    /// Static: listings happen deep in every operation, and each such name is told once a run.
    /// </summary>
    public static Action<string>? PassedOverWarning { get; set; }

    /// <summary>
    /// A key: non-empty '/'-separated segments, none empty, "." or "..", no backslash, no control
    /// character, no U+FFFD (what a name that is not valid UTF-8 reads as: it names no file).
    /// Throws <see cref="ArgumentException"/> otherwise, so no key can leave its storage.
    /// </summary>
    public static string Validate(string key)
    {
        ArgumentNullException.ThrowIfNull(key);
        return Problem(key) is { } problem ? throw new ArgumentException($"storage key '{Escape(key)}' {problem}", nameof(key)) : key;
    }

    /// <summary>
    /// For listings: true when a name found in a storage is a key. Anything else there (a file
    /// another tool made, named with a backslash, a control character or bytes that are not
    /// UTF-8) is passed over, with one warning a run naming it escaped.
    /// </summary>
    public static bool IsListable(string key, string where)
    {
        if (Problem(key) is not { } problem)
        {
            return true;
        }
        if (PassedOverNames.TryAdd(where + "\n" + key, true))
        {
            PassedOverWarning?.Invoke($"{where}{Escape(key)} {problem}: passed over, it is no name this tool writes or reads");
        }
        return false;
    }

    private static string? Problem(string key)
    {
        if (key.Length == 0)
        {
            return "is empty";
        }
        if (key.Split('/').Any(segment => segment is "" or "." or ".."))
        {
            return "has an empty, '.' or '..' segment";
        }
        if (key.Any(c => c == '\\' || char.IsControl(c)))
        {
            return "holds a backslash or a control character";
        }
        if (key.Contains('\uFFFD', StringComparison.Ordinal))
        {
            return "is not valid UTF-8";
        }
        return null;
    }

    /// <summary>A name as it can be shown on one line: a backslash doubled, control characters and U+FFFD as \uXXXX.</summary>
    public static string Escape(string name)
    {
        var builder = new System.Text.StringBuilder(name.Length);
        foreach (var c in name)
        {
            _ = c == '\\' ? builder.Append(@"\\")
                : char.IsControl(c) || c == '\uFFFD' ? builder.Append(System.Globalization.CultureInfo.InvariantCulture, $"\\u{(int)c:X4}")
                : builder.Append(c);
        }
        return builder.ToString();
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
