using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using VyaBackupDb.Storage;

namespace VyaBackupDb.Tests.StorageContract;

/// <summary>
/// An <see cref="IStorage"/> in memory, keeping the same contract as the real backends (it runs the
/// same contract tests): for tests of operations that should not need a disk or a server.
/// Writes in progress are tracked so that abandoned ones can be swept.
/// </summary>
public sealed class MemoryStorage(TimeProvider? time = null) : IStorage
{
    private readonly TimeProvider _time = time ?? TimeProvider.System;
    private readonly ConcurrentDictionary<string, (byte[] Data, DateTimeOffset Modified)> _objects = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<Guid, (string Key, DateTimeOffset Started)> _pending = new();

    /// <summary>Keys of writes started and neither committed nor disposed.</summary>
    public IReadOnlyList<string> PendingKeys => [.. _pending.Values.Select(p => p.Key).Order(StringComparer.Ordinal)];

    public string Describe(string key) => "memory:" + StorageKey.Validate(key);

    public Task<Stream> OpenReadAsync(string key, CancellationToken cancellationToken) =>
        _objects.TryGetValue(StorageKey.Validate(key), out var entry)
            ? Task.FromResult<Stream>(new MemoryStream(entry.Data, writable: false))
            : throw new FileNotFoundException($"{Describe(key)} does not exist", key);

    public Task<StorageEntry?> StatAsync(string key, CancellationToken cancellationToken) =>
        Task.FromResult(_objects.TryGetValue(StorageKey.Validate(key), out var entry)
            ? new StorageEntry(key, entry.Data.Length, entry.Modified)
            : null);

    public async IAsyncEnumerable<StorageEntry> ListAsync(string prefix, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        await Task.CompletedTask.ConfigureAwait(false);
        var folder = StorageKey.Folder(prefix);
        foreach (var (key, entry) in _objects.OrderBy(o => o.Key, StringComparer.Ordinal))
        {
            if (key.StartsWith(folder, StringComparison.Ordinal))
            {
                yield return new StorageEntry(key, entry.Data.Length, entry.Modified);
            }
        }
    }

    public Task<IStorageWrite> CreateAsync(string key, CancellationToken cancellationToken)
    {
        StorageKey.Validate(key);
        var id = Guid.NewGuid();
        _pending[id] = (key, _time.GetUtcNow());
        return Task.FromResult<IStorageWrite>(new Write(this, id, key));
    }

    public Task DeleteAsync(string key, CancellationToken cancellationToken)
    {
        _objects.TryRemove(StorageKey.Validate(key), out _);
        return Task.CompletedTask;
    }

    public Task<bool> TryCreateExclusiveAsync(string key, byte[] content, CancellationToken cancellationToken) =>
        Task.FromResult(_objects.TryAdd(StorageKey.Validate(key), ([.. content], _time.GetUtcNow())));

    public Task<int> SweepAbandonedAsync(string prefix, DateTimeOffset olderThan, CancellationToken cancellationToken)
    {
        var folder = StorageKey.Folder(prefix);
        var removed = 0;
        foreach (var (id, pending) in _pending)
        {
            if (pending.Key.StartsWith(folder, StringComparison.Ordinal) && pending.Started < olderThan && _pending.TryRemove(id, out _))
            {
                removed++;
            }
        }
        return Task.FromResult(removed);
    }

    private sealed class Write(MemoryStorage owner, Guid id, string key) : IStorageWrite
    {
        private readonly MemoryStream _buffer = new();
        private bool _done;

        public Stream Content => _buffer;

        public Task CommitAsync(CancellationToken cancellationToken)
        {
            ObjectDisposedException.ThrowIf(_done, this);
            if (!owner._objects.TryAdd(key, (_buffer.ToArray(), owner._time.GetUtcNow())))
            {
                throw new StorageException($"{owner.Describe(key)} already exists; not overwritten");
            }
            _done = true;
            owner._pending.TryRemove(id, out _);
            return Task.CompletedTask;
        }

        public ValueTask DisposeAsync()
        {
            _done = true;
            owner._pending.TryRemove(id, out _);
            _buffer.Dispose();
            return ValueTask.CompletedTask;
        }
    }
}
