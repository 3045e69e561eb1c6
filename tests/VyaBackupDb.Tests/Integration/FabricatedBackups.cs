using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using VyaBackupDb.Catalog;
using VyaBackupDb.Config;
using VyaBackupDb.Pipeline;
using VyaBackupDb.Storage;
using VyaBackupDb.Storage.Local;

namespace VyaBackupDb.Tests.Integration;

/// <summary>Backups made by hand in a backup_dir: a data file, its .sha256 and (optionally) its manifest, as a backup writes them.</summary>
public static class FabricatedBackups
{
    /// <summary>Writes one backup; returns its data file's key (instance folder/file name).</summary>
    /// <param name="size">The data file's size (zeros); null: a small fabricated dump.</param>
    /// <param name="duration">How long the manifest says the backup took (from <paramref name="timestampUtc"/>); null: a second.</param>
    public static string Create(
        string backupDir, InstanceConfig instance, string database, DateTime timestampUtc,
        Compression compression = Compression.None, bool manifest = true, long? recordedSize = null, string? encryption = null,
        int? size = null, TimeSpan? duration = null)
    {
        var name = new BackupName(timestampUtc, instance.Dbms, database, compression);
        var key = $"{BackupName.Encode(instance.Name)}/{name.FileName}";
        var path = Path.Combine(backupDir, key);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        var content = size is { } bytes
            ? new byte[bytes]
            : Encoding.UTF8.GetBytes($"-- fabricated dump of {database} at {timestampUtc:O}\n-- Dump completed\n");
        File.WriteAllBytes(path, content);
        var sha = Convert.ToHexStringLower(SHA256.HashData(content));
        File.WriteAllText(path + BackupManifest.ChecksumSuffix, $"{sha}  {name.FileName}\n");
        if (manifest)
        {
            File.WriteAllBytes(path + BackupManifest.Suffix, new BackupManifest
            {
                ToolVersion = "test",
                DataFile = name.FileName,
                InstanceId = instance.Id,
                InstanceName = instance.Name,
                Dbms = instance.Dbms.ToName(),
                ServerFlavor = "fabricated",
                ServerVersion = "0",
                Database = database,
                DumpTool = "none",
                DumpToolVersion = "0",
                Compression = compression.ToName(),
                Encryption = encryption,
                StartedUtc = new DateTimeOffset(timestampUtc, TimeSpan.Zero),
                FinishedUtc = new DateTimeOffset(timestampUtc, TimeSpan.Zero) + (duration ?? TimeSpan.FromSeconds(1)),
                PlainBytes = content.Length,
                StoredBytes = recordedSize ?? content.Length,
                PlainSha256 = sha,
                StoredSha256 = sha,
                Inventory = new DatabaseInventory([], [], new ObjectCounts(0, 0, 0, 0)),
            }.ToJson());
        }
        return key;
    }

    /// <summary>A file with the given content at a path relative to backup_dir (a decoy prune must not touch).</summary>
    public static string Decoy(string backupDir, string relativePath, string content = "not a backup\n")
    {
        var path = Path.Combine(backupDir, relativePath);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllText(path, content);
        return relativePath;
    }

    public static DateTime Utc(string yyyyMMddHHmmss) =>
        DateTime.ParseExact(yyyyMMddHHmmss, "yyyyMMdd_HHmmss", CultureInfo.InvariantCulture,
            DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal);

    /// <summary>Every file under the directory with its SHA-256, to show that nothing else changed.</summary>
    public static Dictionary<string, string> Snapshot(string dir) =>
        Ops.FilesUnder(dir).ToDictionary(f => f, f => Ops.Sha256(Path.Combine(dir, f)), StringComparer.Ordinal);
}

/// <summary>A storage that records every delete (in order) and every read, and can fail chosen deletes.</summary>
public sealed class RecordingStorage(IStorage inner) : IStorage
{
    public List<string> Deleted { get; } = [];

    /// <summary>Every stream opened, by key, with the bytes read from it.</summary>
    public List<(string Key, Pipeline.MeasuringStream Stream)> Reads { get; } = [];

    /// <summary>Keys whose delete throws an IOException (nothing is deleted then).</summary>
    public HashSet<string> FailingDeletes { get; } = new(StringComparer.Ordinal);

    public string Describe(string key) => inner.Describe(key);

    public async Task<Stream> OpenReadAsync(string key, CancellationToken cancellationToken)
    {
        var measured = new Pipeline.MeasuringStream(await inner.OpenReadAsync(key, cancellationToken)) { Hashing = false };
        lock (Reads)
        {
            Reads.Add((key, measured));
        }
        return measured;
    }

    public IAsyncEnumerable<StorageEntry> ListAsync(string prefix, CancellationToken cancellationToken) => inner.ListAsync(prefix, cancellationToken);

    public Task<IStorageWrite> CreateAsync(string key, CancellationToken cancellationToken) => inner.CreateAsync(key, cancellationToken);

    public Task DeleteAsync(string key, CancellationToken cancellationToken)
    {
        if (FailingDeletes.Contains(key))
        {
            throw new IOException($"injected failure deleting {key}");
        }
        Deleted.Add(key);
        return inner.DeleteAsync(key, cancellationToken);
    }

    public Task<int> SweepAbandonedAsync(string prefix, DateTimeOffset olderThan, CancellationToken cancellationToken) =>
        inner.SweepAbandonedAsync(prefix, olderThan, cancellationToken);

    public static RecordingStorage Local(string backupDir) => new(new LocalStorage(backupDir));
}
