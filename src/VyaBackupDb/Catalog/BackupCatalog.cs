using System.Text.Json;
using VyaBackupDb.Config;
using VyaBackupDb.Storage;

namespace VyaBackupDb.Catalog;

/// <summary>A data file found in storage; complete only when its manifest is there too.</summary>
/// <param name="Modified">When the storage last saw the data file change (its own clock).</param>
/// <param name="VerifyRecordModified">When its <see cref="VerifyRecord"/> was written (storage clock); null when there is none.</param>
public sealed record CatalogEntry(
    string Key, BackupName Name, long Size, bool HasManifest, bool HasChecksum = false,
    DateTimeOffset Modified = default, DateTimeOffset? VerifyRecordModified = null);

/// <summary>What a data file is, judged by its manifest (read) and its size (no digest: that is verify's job).</summary>
public enum BackupStatus
{
    /// <summary>A readable manifest that describes this file, and the stored size matches it.</summary>
    Verified,

    /// <summary>A readable manifest, but the stored size differs from it (truncated or appended to).</summary>
    SizeMismatch,

    /// <summary>No manifest: a crash before the manifest was written, or a file of the old tool. Not a backup.</summary>
    Incomplete,

    /// <summary>A manifest that cannot be read, or that describes another file.</summary>
    BadManifest,
}

/// <summary>A data file with what its manifest says.</summary>
public sealed record CatalogBackup(InstanceConfig Instance, CatalogEntry Entry, BackupManifest? Manifest, BackupStatus Status, string? Problem)
{
    /// <summary>Has a readable manifest of its own: a backup, as far as retention counts.</summary>
    public bool IsComplete => Status is BackupStatus.Verified or BackupStatus.SizeMismatch;

    /// <summary>
    /// When its stored SHA-256 was last found to match the manifest (a <see cref="VerifyRecord"/>
    /// newer than the file); null when only the size is known to match.
    /// </summary>
    public DateTimeOffset? DigestCheckedUtc { get; init; }
}

/// <summary>Finds an instance's backups: files in its folder whose names parse as backup names.</summary>
public static class BackupCatalog
{
    public static string InstancePrefix(InstanceConfig instance) => BackupName.Encode(instance.Name) + "/";

    /// <summary>Newest first. Only exact names of this instance's folder; anything else there is left alone.</summary>
    public static async Task<IReadOnlyList<CatalogEntry>> ListAsync(
        IReadOnlyStorage storage, InstanceConfig instance, CancellationToken cancellationToken)
    {
        var prefix = InstancePrefix(instance);
        var keys = new Dictionary<string, StorageEntry>(StringComparer.Ordinal);
        await foreach (var entry in storage.ListAsync(prefix, cancellationToken).ConfigureAwait(false))
        {
            keys[entry.Key] = entry;
        }
        var entries = new List<CatalogEntry>();
        foreach (var (key, entry) in keys)
        {
            if (!key.StartsWith(prefix, StringComparison.Ordinal))
            {
                continue;
            }
            var fileName = key[prefix.Length..];
            if (fileName.Contains('/', StringComparison.Ordinal) || BackupName.TryParse(fileName) is not { } name
                || (name.Dbms is { } dbms && dbms != instance.Dbms))
            {
                continue;
            }
            entries.Add(new CatalogEntry(key, name, entry.Size,
                keys.ContainsKey(BackupManifest.KeyFor(key)), keys.ContainsKey(key + BackupManifest.ChecksumSuffix),
                entry.LastModified, keys.TryGetValue(VerifyRecord.KeyFor(key), out var record) ? record.LastModified : null));
        }
        return [.. entries.OrderByDescending(e => e.Name.TimestampUtc).ThenBy(e => e.Key, StringComparer.Ordinal)];
    }

    /// <summary>
    /// <see cref="ListAsync"/> with each manifest read and checked against its file: that it parses,
    /// names this file, database and dbms, and that the stored size matches; and its verify record,
    /// if any (<see cref="CatalogBackup.DigestCheckedUtc"/>). Reads no data file.
    /// </summary>
    public static async Task<IReadOnlyList<CatalogBackup>> InspectAsync(
        IReadOnlyStorage storage, InstanceConfig instance, CancellationToken cancellationToken)
    {
        var result = new List<CatalogBackup>();
        foreach (var entry in await ListAsync(storage, instance, cancellationToken).ConfigureAwait(false))
        {
            if (!entry.HasManifest)
            {
                result.Add(new CatalogBackup(instance, entry, null, BackupStatus.Incomplete, "no manifest"));
                continue;
            }
            BackupManifest manifest;
            try
            {
                manifest = await BackupManifest.ReadAsync(storage, BackupManifest.KeyFor(entry.Key), cancellationToken).ConfigureAwait(false);
            }
            catch (Exception e) when (e is JsonException or IOException or InvalidDataException or UnauthorizedAccessException)
            {
                result.Add(new CatalogBackup(instance, entry, null, BackupStatus.BadManifest, $"manifest unreadable: {e.Message}"));
                continue;
            }
            var fileName = StorageKey.FileName(entry.Key);
            string? mismatch =
                manifest.DataFile != fileName ? $"the manifest describes {manifest.DataFile}"
                : manifest.Database != entry.Name.Database ? $"the manifest is of database '{manifest.Database}'"
                : !DbmsNames.TryParse(manifest.Dbms, out var dbms) || dbms != instance.Dbms ? $"the manifest is of dbms '{manifest.Dbms}'"
                : null;
            if (mismatch is not null)
            {
                result.Add(new CatalogBackup(instance, entry, manifest, BackupStatus.BadManifest, mismatch));
            }
            else if (manifest.StoredBytes != entry.Size)
            {
                result.Add(new CatalogBackup(instance, entry, manifest, BackupStatus.SizeMismatch,
                    $"{entry.Size} bytes stored, the manifest recorded {manifest.StoredBytes}"));
            }
            else
            {
                var record = entry.VerifyRecordModified is not null
                    ? await VerifyRecord.ReadAsync(storage, entry.Key, cancellationToken).ConfigureAwait(false) : null;
                result.Add(new CatalogBackup(instance, entry, manifest, BackupStatus.Verified, null)
                {
                    DigestCheckedUtc = record is not null && record.Covers(manifest, entry.VerifyRecordModified!.Value, entry.Modified)
                        ? record.CheckedUtc : null,
                });
            }
        }
        return result;
    }
}
