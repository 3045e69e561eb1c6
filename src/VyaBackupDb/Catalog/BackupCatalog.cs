using VyaBackupDb.Config;
using VyaBackupDb.Storage;

namespace VyaBackupDb.Catalog;

/// <summary>A data file found in storage; complete only when its manifest is there too.</summary>
public sealed record CatalogEntry(string Key, BackupName Name, long Size, bool HasManifest);

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
            var fileName = key[prefix.Length..];
            if (fileName.Contains('/', StringComparison.Ordinal) || BackupName.TryParse(fileName) is not { } name
                || (name.Dbms is { } dbms && dbms != instance.Dbms))
            {
                continue;
            }
            entries.Add(new CatalogEntry(key, name, entry.Size, keys.ContainsKey(BackupManifest.KeyFor(key))));
        }
        return [.. entries.OrderByDescending(e => e.Name.TimestampUtc).ThenBy(e => e.Key, StringComparer.Ordinal)];
    }
}
