using System.Security.Cryptography;
using VyaBackupDb.Storage;

namespace VyaBackupDb.Tests.StorageContract;

/// <summary>
/// What every storage backend promises (IStorage.cs), checked the same way against each one:
/// local directory, in-memory, S3 (Ceph RADOS Gateway) and SFTP (OpenSSH). Each test gets an empty storage
/// of its own. A subclass says how to open one and how to see leftovers of unfinished writes
/// (temp files, multipart uploads), which must never be visible as keys.
/// </summary>
public abstract class StorageContractTests : IAsyncLifetime
{
    private IStorage? _storage;

    /// <summary>Opens an empty storage for one test (skips, or fails under CI, when its server is missing).</summary>
    protected abstract Task<IStorage> OpenAsync();

    /// <summary>Leftovers of writes not committed (temp files, multipart uploads) under a folder.</summary>
    protected abstract Task<IReadOnlyList<string>> LeftoversAsync(IStorage storage, string prefix);

    /// <summary>Checks how a large write travelled (S3: in parts).</summary>
    protected virtual void AssertLargeWrite(IStorageWrite write, long bytes)
    {
    }

    /// <summary>Removes what the test left behind.</summary>
    protected virtual Task CleanupAsync(IStorage storage) => Task.CompletedTask;

    protected async Task<IStorage> StorageAsync() => _storage ??= await OpenAsync();

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        if (_storage is not null)
        {
            await CleanupAsync(_storage);
            (_storage as IDisposable)?.Dispose();
        }
    }

    private static byte[] Bytes(int length, int seed)
    {
        var data = new byte[length];
        new Random(seed).NextBytes(data);
        return data;
    }

    private static async Task PutAsync(IStorage storage, string key, byte[] data)
    {
        await using var write = await storage.CreateAsync(key, CancellationToken.None);
        await write.Content.WriteAsync(data);
        await write.CommitAsync(CancellationToken.None);
    }

    private static async Task<byte[]> ReadAsync(IStorage storage, string key)
    {
        await using var stream = await storage.OpenReadAsync(key, CancellationToken.None);
        using var buffer = new MemoryStream();
        await stream.CopyToAsync(buffer);
        return buffer.ToArray();
    }

    private static async Task<List<string>> KeysAsync(IStorage storage, string prefix)
    {
        var keys = new List<string>();
        await foreach (var entry in storage.ListAsync(prefix, CancellationToken.None))
        {
            keys.Add(entry.Key);
        }
        keys.Sort(StringComparer.Ordinal);
        return keys;
    }

    [SkippableFact]
    public async Task Committed_write_is_visible_with_its_bytes_and_size()
    {
        var storage = await StorageAsync();
        var data = Bytes(300_000, 1);

        await PutAsync(storage, "inst/20260113_155440_mysql_db.sql.zst", data);

        Assert.Equal(data, await ReadAsync(storage, "inst/20260113_155440_mysql_db.sql.zst"));
        var entry = await storage.StatAsync("inst/20260113_155440_mysql_db.sql.zst", CancellationToken.None);
        Assert.NotNull(entry);
        Assert.Equal(data.Length, entry.Size);
        var listed = Assert.Single(await ToListAsync(storage.ListAsync("inst", CancellationToken.None)));
        Assert.Equal(("inst/20260113_155440_mysql_db.sql.zst", (long)data.Length), (listed.Key, listed.Size));
        Assert.Empty(await LeftoversAsync(storage, ""));
    }

    [SkippableFact]
    public async Task Empty_write_commits_an_empty_object()
    {
        var storage = await StorageAsync();

        await PutAsync(storage, "e/empty", []);

        Assert.Empty(await ReadAsync(storage, "e/empty"));
        Assert.Equal(0, (await storage.StatAsync("e/empty", CancellationToken.None))?.Size);
    }

    [SkippableFact]
    public async Task Write_is_invisible_until_commit_and_disposed_without_commit_leaves_nothing()
    {
        var storage = await StorageAsync();
        var small = await storage.CreateAsync("w/small.sql", CancellationToken.None);
        await small.Content.WriteAsync(Bytes(1000, 2));
        // Big enough to be under way on the server (S3: parts uploaded).
        var big = await storage.CreateAsync("w/big.sql", CancellationToken.None);
        var chunk = Bytes(1 << 20, 3);
        for (var i = 0; i < 12; i++)
        {
            await big.Content.WriteAsync(chunk);
        }

        Assert.Empty(await KeysAsync(storage, ""));
        Assert.Null(await storage.StatAsync("w/big.sql", CancellationToken.None));
        await Assert.ThrowsAsync<FileNotFoundException>(() => storage.OpenReadAsync("w/big.sql", CancellationToken.None));

        await small.DisposeAsync();
        await big.DisposeAsync();

        Assert.Empty(await KeysAsync(storage, ""));
        Assert.Empty(await LeftoversAsync(storage, ""));
        await Assert.ThrowsAsync<FileNotFoundException>(() => storage.OpenReadAsync("w/small.sql", CancellationToken.None));
    }

    [SkippableFact]
    public async Task List_takes_a_folder_and_never_matches_a_longer_name()
    {
        var storage = await StorageAsync();
        string[] keys = ["a/b/x", "a/b/c/y", "a/bc/z", "a/b-old/w", "a/b.txt", "ab/q", "top"];
        foreach (var key in keys)
        {
            await PutAsync(storage, key, [1, 2, 3]);
        }

        Assert.Equal(["a/b/c/y", "a/b/x"], await KeysAsync(storage, "a/b"));
        Assert.Equal(["a/b/c/y", "a/b/x"], await KeysAsync(storage, "a/b/"));
        Assert.Equal(["a/b-old/w", "a/b.txt", "a/b/c/y", "a/b/x", "a/bc/z"], await KeysAsync(storage, "a"));
        Assert.Equal(["a/b/c/y"], await KeysAsync(storage, "a/b/c"));
        Assert.Equal(keys.Order(StringComparer.Ordinal), await KeysAsync(storage, ""));
        Assert.Empty(await KeysAsync(storage, "a/b/x"));
        Assert.Empty(await KeysAsync(storage, "nothing/here"));
    }

    /// <summary>What a backup asks before it takes a second: is any backup of its database there at that second.</summary>
    [SkippableFact]
    public async Task A_key_start_is_found_only_in_its_folder_and_only_when_committed()
    {
        var storage = await StorageAsync();
        await PutAsync(storage, "a/b/20260101_000000_mysql_db.sql.gz", [1]);
        await PutAsync(storage, "a/x/20260101_000001_mysql_db.sql", [1]);
        await using var uncommitted = await storage.CreateAsync("a/b/20260101_000001_mysql_db.sql.zst", CancellationToken.None);
        await uncommitted.Content.WriteAsync(new byte[] { 1 });

        Assert.True(await storage.AnyKeyStartingWithAsync("a/b/20260101_000000_mysql_db.", CancellationToken.None));
        Assert.False(await storage.AnyKeyStartingWithAsync("a/b/20260101_000001_mysql_db.", CancellationToken.None));
        Assert.False(await storage.AnyKeyStartingWithAsync("a/b/20260101_000000_mysql_db2.", CancellationToken.None));
        Assert.False(await storage.AnyKeyStartingWithAsync("a/20260101_000000_mysql_db.", CancellationToken.None));
    }

    [SkippableFact]
    public async Task Delete_removes_the_key_and_a_missing_key_is_no_error()
    {
        var storage = await StorageAsync();
        await PutAsync(storage, "d/one", [1]);
        await PutAsync(storage, "d/two", [2]);

        await storage.DeleteAsync("d/one", CancellationToken.None);
        await storage.DeleteAsync("d/one", CancellationToken.None);
        await storage.DeleteAsync("d/never", CancellationToken.None);
        await storage.DeleteAsync("no/such/folder/never", CancellationToken.None);

        Assert.Equal(["d/two"], await KeysAsync(storage, "d"));
        await Assert.ThrowsAsync<FileNotFoundException>(() => storage.OpenReadAsync("d/one", CancellationToken.None));
    }

    [SkippableFact]
    public async Task Reading_a_missing_key_throws_FileNotFoundException()
    {
        var storage = await StorageAsync();
        await PutAsync(storage, "m/present", [1]);

        await Assert.ThrowsAsync<FileNotFoundException>(() => storage.OpenReadAsync("m/absent", CancellationToken.None));
        await Assert.ThrowsAsync<FileNotFoundException>(() => storage.OpenReadAsync("no/such/folder/file", CancellationToken.None));
        Assert.Null(await storage.StatAsync("no/such/folder/file", CancellationToken.None));
    }

    [SkippableFact]
    public async Task Commit_onto_an_existing_key_fails_and_keeps_the_old_object()
    {
        var storage = await StorageAsync();
        var original = Bytes(5000, 4);
        await PutAsync(storage, "o/file", original);

        await using (var second = await storage.CreateAsync("o/file", CancellationToken.None))
        {
            await second.Content.WriteAsync(Bytes(7000, 5));
            var failure = await Assert.ThrowsAnyAsync<IOException>(() => second.CommitAsync(CancellationToken.None));
            Assert.Equal($"{storage.Describe("o/file")} already exists; not overwritten", failure.Message);
        }

        Assert.Equal(original, await ReadAsync(storage, "o/file"));
        Assert.Equal(["o/file"], await KeysAsync(storage, ""));
        Assert.Empty(await LeftoversAsync(storage, ""));
    }

    /// <summary>What the lock of several runners rests on: of creators racing for one key, exactly one wins.</summary>
    [SkippableFact]
    public async Task Exclusive_create_lets_exactly_one_of_racing_creators_win_and_never_replaces()
    {
        var storage = await StorageAsync();
        var contenders = Enumerable.Range(0, 6).Select(i => Bytes(100 + i, 20 + i)).ToList();
        var won = await Task.WhenAll(contenders.Select(c => Task.Run(() => storage.TryCreateExclusiveAsync("x/lock", c, CancellationToken.None))));

        Assert.Single(won, w => w);
        var winner = Array.IndexOf(won, true);
        Assert.Equal(contenders[winner], await ReadAsync(storage, "x/lock"));
        Assert.False(await storage.TryCreateExclusiveAsync("x/lock", Bytes(10, 9), CancellationToken.None));
        Assert.Equal(contenders[winner], await ReadAsync(storage, "x/lock"));
        Assert.Equal(["x/lock"], await KeysAsync(storage, ""));
    }

    [SkippableFact]
    public async Task Large_streamed_write_round_trips_exactly()
    {
        var storage = await StorageAsync();
        const int Total = 40 * 1024 * 1024;
        var random = new Random(6);
        var block = new byte[256 * 1024];
        using var expected = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        long written = 0;
        await using (var write = await storage.CreateAsync("big/40mb.bin", CancellationToken.None))
        {
            while (written < Total)
            {
                // Odd sizes, so writes straddle part boundaries.
                var n = (int)Math.Min(Total - written, random.Next(1, block.Length));
                random.NextBytes(block.AsSpan(0, n));
                expected.AppendData(block.AsSpan(0, n));
                await write.Content.WriteAsync(block.AsMemory(0, n));
                written += n;
            }
            await write.CommitAsync(CancellationToken.None);
            AssertLargeWrite(write, written);
        }

        await using var read = await storage.OpenReadAsync("big/40mb.bin", CancellationToken.None);
        var actual = await SHA256.HashDataAsync(read);
        Assert.Equal(expected.GetHashAndReset(), actual);
        Assert.Equal(Total, (await storage.StatAsync("big/40mb.bin", CancellationToken.None))?.Size);
        Assert.Empty(await LeftoversAsync(storage, ""));
    }

    [SkippableFact]
    public async Task Synchronous_writes_round_trip_too()
    {
        var storage = await StorageAsync();
        var data = Bytes(12 * 1024 * 1024 + 17, 8);
        await using (var write = await storage.CreateAsync("sync/file", CancellationToken.None))
        {
            // As a codec's synchronous Dispose writes: odd-sized blocks through Stream.Write.
            for (var offset = 0; offset < data.Length; offset += 777_777)
            {
                write.Content.Write(data, offset, Math.Min(777_777, data.Length - offset));
            }
            write.Content.Flush();
            await write.CommitAsync(CancellationToken.None);
        }

        Assert.Equal(SHA256.HashData(data), SHA256.HashData(await ReadAsync(storage, "sync/file")));
    }

    [SkippableFact]
    public async Task Sweep_removes_abandoned_writes_older_than_the_cutoff_in_its_folder_only()
    {
        var storage = await StorageAsync();
        await PutAsync(storage, "s/inst/done.sql", [9, 9]);
        // Writes a killed run left: started, never committed nor disposed.
        var abandoned = await storage.CreateAsync("s/inst/killed.sql", CancellationToken.None);
        var other = await storage.CreateAsync("s-other/inst/killed.sql", CancellationToken.None);
        var chunk = Bytes(1 << 20, 7);
        for (var i = 0; i < 6; i++)
        {
            await abandoned.Content.WriteAsync(chunk);
            await other.Content.WriteAsync(chunk);
        }
        await abandoned.Content.FlushAsync();
        await other.Content.FlushAsync();
        Assert.Single(await LeftoversAsync(storage, "s"));

        // Too young: a run may still be writing it.
        Assert.Equal(0, await storage.SweepAbandonedAsync("s", DateTimeOffset.UtcNow.AddHours(-1), CancellationToken.None));
        Assert.Single(await LeftoversAsync(storage, "s"));

        var removed = await storage.SweepAbandonedAsync("s", DateTimeOffset.UtcNow.AddMinutes(1), CancellationToken.None);

        Assert.Equal(1, removed);
        Assert.Empty(await LeftoversAsync(storage, "s"));
        Assert.Single(await LeftoversAsync(storage, "s-other"));
        Assert.Equal([9, 9], await ReadAsync(storage, "s/inst/done.sql"));
        Assert.Equal(["s/inst/done.sql"], await KeysAsync(storage, ""));

        // The killed run's objects, if they ever come back, still leave nothing.
        await DisposeQuietlyAsync(abandoned);
        await other.DisposeAsync();
        Assert.Empty(await LeftoversAsync(storage, ""));
        Assert.Equal(["s/inst/done.sql"], await KeysAsync(storage, ""));
    }

    [SkippableFact]
    public async Task Keys_that_could_leave_the_storage_are_refused()
    {
        var storage = await StorageAsync();
        foreach (var key in new[] { "../x", "a/../../x", "/abs", "a//b", "a/./b", "", "a\\b" })
        {
            await Assert.ThrowsAsync<ArgumentException>(() => storage.CreateAsync(key, CancellationToken.None));
            await Assert.ThrowsAsync<ArgumentException>(() => storage.OpenReadAsync(key, CancellationToken.None));
        }
        Assert.Empty(await KeysAsync(storage, ""));
    }

    private static async Task DisposeQuietlyAsync(IStorageWrite write)
    {
        try
        {
            await write.DisposeAsync();
        }
        catch (IOException)
        {
        }
    }

    private static async Task<List<T>> ToListAsync<T>(IAsyncEnumerable<T> items)
    {
        var list = new List<T>();
        await foreach (var item in items)
        {
            list.Add(item);
        }
        return list;
    }
}
