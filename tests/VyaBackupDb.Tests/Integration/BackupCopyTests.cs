using VyaBackupDb.Catalog;
using VyaBackupDb.Config;
using VyaBackupDb.Operations;
using VyaBackupDb.Pipeline;
using VyaBackupDb.Storage;
using VyaBackupDb.Storage.Local;
using VyaBackupDb.Tests.StorageContract;

namespace VyaBackupDb.Tests.Integration;

/// <summary>
/// Copies to further destinations are checked against the manifest: a copy that reads back
/// differently, or cannot be written, is removed and fails the backup, while the backup in the
/// first destination stays complete. Backup and restore work on any IStorage (here: in memory).
/// </summary>
[Trait("Category", "Integration")]
public sealed class BackupCopyTests : IAsyncLifetime
{
    private readonly Scratch _scratch = new();

    public Task InitializeAsync() => _scratch.InitializeAsync();

    public Task DisposeAsync() => _scratch.DisposeAsync();

    private static async Task<BackupItemResult> BackupAsync(InstanceConfig instance, string database, params NamedStorage[] destinations)
    {
        var config = TestServers.Config(Directory.CreateTempSubdirectory("vya-itest-locks-").FullName, instance);
        var operation = new BackupOperation(config, _ => destinations, TimeProvider.System, new TestBackupObserver());
        var report = await operation.RunAsync(new BackupRequest([instance], database, Compression.Zstd, DryRun: false), CancellationToken.None);
        Directory.Delete(config.BackupDir, recursive: true);
        return Assert.Single(report.Results);
    }

    private async Task<string> DatabaseAsync()
    {
        await TestServers.RequireMySqlAsync();
        var db = await _scratch.NewMySqlDatabaseAsync();
        await MySqlTestDb.ExecAsync(db, "CREATE TABLE t (id INT PRIMARY KEY, v TEXT)", "INSERT INTO t VALUES (1, 'copy me'), (2, NULL)");
        return db;
    }

    private static async Task<List<string>> KeysAsync(IStorage storage)
    {
        var keys = new List<string>();
        await foreach (var entry in storage.ListAsync("", CancellationToken.None))
        {
            keys.Add(entry.Key);
        }
        keys.Sort(StringComparer.Ordinal);
        return keys;
    }

    [SkippableFact]
    public async Task A_copy_that_reads_back_differently_is_removed_and_fails_the_backup()
    {
        var db = await DatabaseAsync();
        var first = new LocalStorage(_scratch.TempDir("first"));
        var damaging = new DamagingStorage(new MemoryStorage());

        var result = await BackupAsync(TestServers.MySql(), db, new NamedStorage("first", first), new NamedStorage("bad", damaging));

        Assert.False(result.Succeeded);
        Assert.NotNull(result.Location);
        Assert.Contains("the copy to 'bad' failed", result.Error, StringComparison.Ordinal);
        Assert.Contains("does not match the manifest", result.Error, StringComparison.Ordinal);
        Assert.Empty(await KeysAsync(damaging));
        // The first destination holds the whole backup, and it checks out.
        var key = Assert.Single(await KeysAsync(first), k => k.EndsWith(".sql.zst", StringComparison.Ordinal));
        var check = await BackupFileChecker.CheckAsync(new BackupLocation(first, key), Pipeline.DecryptionKeys.None, CancellationToken.None);
        Assert.True(check.Ok, string.Join("; ", check.Problems));
        Assert.Equal(Errors.ExitCode.Failed, ExitCodeOf(result));
    }

    [SkippableFact]
    public async Task A_copy_that_cannot_be_written_fails_the_backup_and_leaves_nothing_there()
    {
        var db = await DatabaseAsync();
        var first = new MemoryStorage();
        var full = new DamagingStorage(new MemoryStorage()) { FailCommits = true };
        var good = new MemoryStorage();

        var result = await BackupAsync(TestServers.MySql(), db,
            new NamedStorage("first", first), new NamedStorage("full", full), new NamedStorage("good", good));

        Assert.False(result.Succeeded);
        Assert.Contains("the copy to 'full' failed: No space left", result.Error, StringComparison.Ordinal);
        Assert.Empty(await KeysAsync(full));
        Assert.Equal(3, (await KeysAsync(first)).Count);
        // The other copy is made all the same.
        Assert.Equal(await KeysAsync(first), await KeysAsync(good));
        Assert.Single(result.Copies ?? []);
    }

    [SkippableFact]
    public async Task Backup_into_memory_restores_from_memory()
    {
        var db = await DatabaseAsync();
        var memory = new MemoryStorage();

        var result = await BackupAsync(TestServers.MySql(), db, new NamedStorage("mem", memory));

        Assert.True(result.Succeeded, result.Error);
        var key = Assert.Single(await KeysAsync(memory), k => k.EndsWith(".sql.zst", StringComparison.Ordinal));
        Assert.Contains(BackupManifest.KeyFor(key), await KeysAsync(memory));
        var target = _scratch.MySqlName();
        var config = TestServers.Config(_scratch.TempDir("unused"), TestServers.MySql());
        var restored = await new RestoreOperation(config, new TestRestoreObserver()).RunAsync(
            new RestoreRequest(memory.Describe(key), TestServers.MySql(), target, DryRun: false, Force: false, Location: new BackupLocation(memory, key)),
            CancellationToken.None);
        Assert.True(restored?.Comparison?.Matches);
        DbFingerprint.AssertSame(await MySqlTestDb.FingerprintAsync(db), await MySqlTestDb.FingerprintAsync(target), "restored from memory");
    }

    private static Errors.ExitCode ExitCodeOf(BackupItemResult result) => new BackupReport([result], TimeSpan.Zero).ExitCode;

    /// <summary>A storage that flips one bit of what is written (bad RAM, a broken proxy) or whose commits fail (a full disk).</summary>
    private sealed class DamagingStorage(IStorage inner) : IStorage
    {
        public bool FailCommits { get; init; }

        public string Describe(string key) => inner.Describe(key);

        public Task<Stream> OpenReadAsync(string key, CancellationToken cancellationToken) => inner.OpenReadAsync(key, cancellationToken);

        public IAsyncEnumerable<StorageEntry> ListAsync(string prefix, CancellationToken cancellationToken) => inner.ListAsync(prefix, cancellationToken);

        public Task<StorageEntry?> StatAsync(string key, CancellationToken cancellationToken) => inner.StatAsync(key, cancellationToken);

        public async Task<IStorageWrite> CreateAsync(string key, CancellationToken cancellationToken) =>
            new Write(await inner.CreateAsync(key, cancellationToken), FailCommits);

        public Task DeleteAsync(string key, CancellationToken cancellationToken) => inner.DeleteAsync(key, cancellationToken);

        public Task<int> SweepAbandonedAsync(string prefix, DateTimeOffset olderThan, CancellationToken cancellationToken) =>
            inner.SweepAbandonedAsync(prefix, olderThan, cancellationToken);

        private sealed class Write(IStorageWrite inner, bool failCommit) : IStorageWrite
        {
            private readonly FlipFirstBit _content = new(inner.Content);

            public Stream Content => _content;

            public Task CommitAsync(CancellationToken cancellationToken) =>
                failCommit ? throw new IOException("No space left on device") : inner.CommitAsync(cancellationToken);

            public ValueTask DisposeAsync() => inner.DisposeAsync();
        }

        private sealed class FlipFirstBit(Stream inner) : WrapperStream(inner)
        {
            private bool _flipped;

            public override void Write(ReadOnlySpan<byte> buffer) => WriteAsync(buffer.ToArray()).AsTask().GetAwaiter().GetResult();

            public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
            {
                if (_flipped || buffer.IsEmpty)
                {
                    return Inner.WriteAsync(buffer, cancellationToken);
                }
                _flipped = true;
                var copy = buffer.ToArray();
                copy[0] ^= 1;
                return Inner.WriteAsync(copy, cancellationToken);
            }
        }
    }
}
