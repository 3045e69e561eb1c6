using System.Text.Json;
using VyaBackupDb.Config;
using VyaBackupDb.Storage;

namespace VyaBackupDb.Catalog;

/// <summary>A data file found in storage; complete only when its manifest is there too.</summary>
/// <param name="Modified">When the storage last saw the data file change (its own clock).</param>
/// <param name="VerifyRecordModified">When its <see cref="VerifyRecord"/> was written (storage clock); null when there is none.</param>
/// <param name="HasData">False for a manifest whose data file is gone (<see cref="Key"/> names the missing file; its size is 0).</param>
public sealed record CatalogEntry(
    string Key, BackupName Name, long Size, bool HasManifest, bool HasChecksum = false,
    DateTimeOffset Modified = default, DateTimeOffset? VerifyRecordModified = null, bool HasData = true);

/// <summary>What a data file is, judged by its manifest (read) and its size (no digest: that is verify's job).</summary>
public enum BackupStatus
{
    /// <summary>A readable manifest that describes this file, and the stored size matches it.</summary>
    Verified,

    /// <summary>A readable manifest, but the stored size differs from it (truncated or appended to).</summary>
    SizeMismatch,

    /// <summary>As <see cref="Verified"/> by its size, but verify read the file as it is now and found it damaged (a <see cref="VerifyRecord"/> of a failed check).</summary>
    VerifyFailed,

    /// <summary>No manifest: a crash before the manifest was written, or a file of the old tool. Not a backup.</summary>
    Incomplete,

    /// <summary>A manifest that is not valid, or that describes another file.</summary>
    BadManifest,

    /// <summary>A manifest whose data file is gone (deleted by hand, by a lifecycle rule): a lost backup.</summary>
    MissingData,
}

/// <summary>A data file with what its manifest says.</summary>
public sealed record CatalogBackup(InstanceConfig Instance, CatalogEntry Entry, BackupManifest? Manifest, BackupStatus Status, string? Problem)
{
    /// <summary>Has a readable manifest of its own: a backup, as far as retention counts.</summary>
    public bool IsComplete => Status is BackupStatus.Verified or BackupStatus.SizeMismatch or BackupStatus.VerifyFailed;

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

    /// <summary>
    /// Newest first. Only exact names of this instance's folder; anything else there is left alone.
    /// A manifest without its data file is an entry too (<see cref="CatalogEntry.HasData"/> false): a lost backup must not vanish from view.
    /// </summary>
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
        foreach (var (listed, entry) in keys)
        {
            var orphanManifest = listed.EndsWith(BackupManifest.Suffix, StringComparison.Ordinal)
                && !keys.ContainsKey(listed[..^BackupManifest.Suffix.Length]);
            var key = orphanManifest ? listed[..^BackupManifest.Suffix.Length] : listed;
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
            entries.Add(new CatalogEntry(key, name, orphanManifest ? 0 : entry.Size,
                HasManifest: orphanManifest || keys.ContainsKey(BackupManifest.KeyFor(key)), keys.ContainsKey(key + BackupManifest.ChecksumSuffix),
                orphanManifest ? default : entry.LastModified,
                keys.TryGetValue(VerifyRecord.KeyFor(key), out var record) ? record.LastModified : null, HasData: !orphanManifest));
        }
        return [.. entries.OrderByDescending(e => e.Name.TimestampUtc).ThenBy(e => e.Key, StringComparer.Ordinal)];
    }

    /// <summary>
    /// <see cref="ListAsync"/> with each manifest read and checked against its file (<see cref="ClassifyAsync"/>),
    /// and the verify record of each intact one, if any (<see cref="CatalogBackup.DigestCheckedUtc"/>). Reads no data file.
    /// </summary>
    public static async Task<IReadOnlyList<CatalogBackup>> InspectAsync(
        IReadOnlyStorage storage, InstanceConfig instance, CancellationToken cancellationToken)
    {
        var result = new List<CatalogBackup>();
        foreach (var entry in await ListAsync(storage, instance, cancellationToken).ConfigureAwait(false))
        {
            var backup = await ClassifyAsync(storage, instance, entry, cancellationToken).ConfigureAwait(false);
            result.Add(backup.Status == BackupStatus.Verified
                ? await WithDigestCheckAsync(storage, backup, cancellationToken).ConfigureAwait(false)
                : backup);
        }
        return result;
    }

    /// <summary>
    /// What one listed entry is: its manifest read and checked against its file (that it parses, names this
    /// file, database and dbms, and that the stored size matches). Reads no data file and no verify record.
    /// A manifest the storage fails to read (a cut connection, permission denied) says nothing about the
    /// backup: that is thrown, a storage fault as the listing's would be.
    /// </summary>
    public static async Task<CatalogBackup> ClassifyAsync(
        IReadOnlyStorage storage, InstanceConfig instance, CatalogEntry entry, CancellationToken cancellationToken)
    {
        if (!entry.HasManifest)
        {
            return new CatalogBackup(instance, entry, null, BackupStatus.Incomplete, "no manifest");
        }
        if (!entry.HasData)
        {
            return new CatalogBackup(instance, entry, null, BackupStatus.MissingData, MissingDataProblem);
        }
        BackupManifest manifest;
        try
        {
            manifest = await BackupManifest.ReadAsync(storage, BackupManifest.KeyFor(entry.Key), cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is JsonException or InvalidDataException)
        {
            return new CatalogBackup(instance, entry, null, BackupStatus.BadManifest, $"manifest unreadable: {e.Message}");
        }
        catch (FileNotFoundException)
        {
            // Deleted since it was listed (a prune, a lifecycle rule): its data file alone is left.
            return new CatalogBackup(instance, entry, null, BackupStatus.Incomplete, "no manifest");
        }
        return Mismatch(manifest, StorageKey.FileName(entry.Key), entry.Name, instance.Dbms) is { } mismatch
            ? new CatalogBackup(instance, entry, manifest, BackupStatus.BadManifest, mismatch)
            : manifest.StoredBytes != entry.Size
                ? new CatalogBackup(instance, entry, manifest, BackupStatus.SizeMismatch, $"{entry.Size} bytes stored, the manifest recorded {manifest.StoredBytes}")
                : new CatalogBackup(instance, entry, manifest, BackupStatus.Verified, null);
    }

    /// <summary>
    /// An intact backup with <see cref="CatalogBackup.DigestCheckedUtc"/> from its verify record, when one covers it; or
    /// <see cref="BackupStatus.VerifyFailed"/>, saying what and when, when the record is of a failed check of the file as it is.
    /// </summary>
    public static async Task<CatalogBackup> WithDigestCheckAsync(IReadOnlyStorage storage, CatalogBackup backup, CancellationToken cancellationToken)
    {
        var entry = backup.Entry;
        var record = entry.VerifyRecordModified is not null
            ? await VerifyRecord.ReadAsync(storage, entry.Key, cancellationToken).ConfigureAwait(false) : null;
        if (record is not null && record.Condemns(backup.Manifest!, entry.VerifyRecordModified!.Value, entry.Modified))
        {
            return backup with
            {
                Status = BackupStatus.VerifyFailed,
                Problem = $"verify found: {record.Failure} ({record.CheckedUtc.UtcDateTime.ToString("yyyy-MM-dd HH:mm", System.Globalization.CultureInfo.InvariantCulture)} UTC)",
            };
        }
        return backup with
        {
            DigestCheckedUtc = record is not null && record.Covers(backup.Manifest!, entry.VerifyRecordModified!.Value, entry.Modified)
                ? record.CheckedUtc : null,
        };
    }

    public const string MissingDataProblem = "the data file is missing: only its manifest is there";

    /// <summary>
    /// Why a readable manifest is not this file's (it names another file, database or dbms), or null.
    /// A part not known (no parsed name, no dbms) is not compared.
    /// </summary>
    public static string? Mismatch(BackupManifest manifest, string fileName, BackupName? name, Dbms? dbms) =>
        manifest.DataFile != fileName ? $"the manifest describes another file, {manifest.DataFile}"
        : name is not null && manifest.Database != name.Database ? $"the manifest describes another database, '{manifest.Database}'"
        : dbms is { } expected && (!DbmsNames.TryParse(manifest.Dbms, out var recorded) || recorded != expected)
            ? $"the manifest describes another dbms, '{manifest.Dbms}'"
        : null;
}
