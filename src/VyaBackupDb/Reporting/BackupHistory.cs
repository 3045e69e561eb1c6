using System.Text.Json;
using VyaBackupDb.Catalog;
using VyaBackupDb.Config;
using VyaBackupDb.Errors;
using VyaBackupDb.Storage;

namespace VyaBackupDb.Reporting;

/// <summary>One complete backup, as its manifest tells it.</summary>
public sealed record HistoryPoint(string DataFile, DateTimeOffset StartedUtc, DateTimeOffset FinishedUtc, long StoredBytes, long PlainBytes)
{
    public TimeSpan Duration => FinishedUtc - StartedUtc;
}

/// <summary>What the storage says about one database's backups.</summary>
/// <param name="Recent">The newest complete backups (readable manifest that matches its file), newest first.</param>
/// <param name="Complete">How many backups have a manifest (all of them, not only <paramref name="Recent"/>).</param>
/// <param name="Incomplete">Data files without a manifest (failed or killed runs, or the old tool's files).</param>
/// <param name="LastVerifiedUtc">When a backup's stored bytes were last found to match its manifest (a .verify.json record that covers it).</param>
/// <param name="LastVerifiedFile">The backup that check was of.</param>
public sealed record DatabaseHistory(
    InstanceConfig Instance,
    string Database,
    IReadOnlyList<HistoryPoint> Recent,
    int Complete,
    int Incomplete,
    DateTimeOffset? LastVerifiedUtc,
    string? LastVerifiedFile)
{
    public HistoryPoint? Last => Recent.Count > 0 ? Recent[0] : null;

    /// <summary>The newest backup has a verify record that covers it.</summary>
    public bool NewestVerified => Last is { } last && LastVerifiedFile == last.DataFile;
}

/// <param name="Errors">Destinations that could not be listed (one line each); their backups are missing from the history.</param>
public sealed record InstanceHistory(InstanceConfig Instance, IReadOnlyList<DatabaseHistory> Databases, IReadOnlyList<string> Errors);

/// <summary>
/// Reads an instance's backup history from the manifests in its destinations: what `status` and the
/// metrics show. Derived from the storage alone, so every runner that shares a destination sees the
/// same. Reads at most <c>depth</c> manifests per database (a copy in a later destination is not
/// read again), and no data file.
/// </summary>
public static class BackupHistory
{
    public static async Task<InstanceHistory> ReadAsync(
        InstanceConfig instance, IReadOnlyList<NamedStorage> destinations, int depth, CancellationToken cancellationToken)
    {
        var points = new Dictionary<string, Dictionary<string, HistoryPoint>>(StringComparer.Ordinal);
        var complete = new Dictionary<string, HashSet<string>>(StringComparer.Ordinal);
        var incomplete = new Dictionary<string, HashSet<string>>(StringComparer.Ordinal);
        var verified = new Dictionary<string, (DateTimeOffset At, string File)>(StringComparer.Ordinal);
        var errors = new List<string>();
        foreach (var destination in destinations)
        {
            IReadOnlyList<CatalogEntry> entries;
            try
            {
                // A manifest whose data file is gone is no backup to count on (list and verify name it).
                entries = [.. (await BackupCatalog.ListAsync(destination.Storage, instance, cancellationToken).ConfigureAwait(false)).Where(e => e.HasData)];
            }
            catch (Exception e) when (StorageSet.IsStorageFault(e, cancellationToken))
            {
                errors.Add($"storage '{destination.Name}' cannot be listed: {IoErrors.Describe(e)}");
                continue;
            }
            foreach (var byDatabase in entries.GroupBy(e => e.Name.Database, StringComparer.Ordinal))
            {
                var database = byDatabase.Key;
                var seen = Get(points, database);
                Get(complete, database).UnionWith(byDatabase.Where(e => e.HasManifest).Select(e => StorageKey.FileName(e.Key)));
                Get(incomplete, database).UnionWith(byDatabase.Where(e => !e.HasManifest).Select(e => StorageKey.FileName(e.Key)));
                // Newest first (ListAsync's order): the newest few of each destination.
                foreach (var entry in byDatabase.Where(e => e.HasManifest).Take(depth))
                {
                    var file = StorageKey.FileName(entry.Key);
                    if (seen.ContainsKey(file))
                    {
                        continue;
                    }
                    if (await ReadPointAsync(destination.Storage, entry, cancellationToken).ConfigureAwait(false) is { } point)
                    {
                        seen[file] = point.Point;
                        if (point.VerifiedUtc is { } at && (!verified.TryGetValue(database, out var known) || known.At < at))
                        {
                            verified[database] = (at, file);
                        }
                    }
                }
                // The last check may be of an older backup than those read above.
                if (!verified.ContainsKey(database)
                    && byDatabase.FirstOrDefault(e => e.HasManifest && e.VerifyRecordModified is not null && !seen.ContainsKey(StorageKey.FileName(e.Key))) is { } older
                    && await ReadPointAsync(destination.Storage, older, cancellationToken).ConfigureAwait(false) is { VerifiedUtc: { } olderAt })
                {
                    verified[database] = (olderAt, StorageKey.FileName(older.Key));
                }
            }
        }
        var databases = points.Keys.Union(incomplete.Keys).Order(StringComparer.Ordinal).Select(database =>
        {
            var recent = Get(points, database).Values.OrderByDescending(p => p.StartedUtc).ThenByDescending(p => p.DataFile, StringComparer.Ordinal)
                .Take(depth).ToList();
            var check = verified.TryGetValue(database, out var v) ? v : ((DateTimeOffset At, string File)?)null;
            return new DatabaseHistory(instance, database, recent, Get(complete, database).Count,
                Get(incomplete, database).Except(Get(complete, database)).Count(), check?.At, check?.File);
        }).ToList();
        return new InstanceHistory(instance, databases, errors);
    }

    private static TValue Get<TValue>(Dictionary<string, TValue> map, string key)
        where TValue : new()
    {
        if (!map.TryGetValue(key, out var value))
        {
            value = new TValue();
            map[key] = value;
        }
        return value;
    }

    /// <summary>The backup's point and, when a verify record covers it, when it was checked; null when its manifest is unreadable or not its own.</summary>
    private static async Task<(HistoryPoint Point, DateTimeOffset? VerifiedUtc)?> ReadPointAsync(
        IReadOnlyStorage storage, CatalogEntry entry, CancellationToken cancellationToken)
    {
        BackupManifest manifest;
        try
        {
            manifest = await BackupManifest.ReadAsync(storage, BackupManifest.KeyFor(entry.Key), cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is JsonException or IOException or InvalidDataException or UnauthorizedAccessException)
        {
            return null;
        }
        if (manifest.DataFile != StorageKey.FileName(entry.Key) || manifest.Database != entry.Name.Database || manifest.StoredBytes != entry.Size)
        {
            return null;
        }
        DateTimeOffset? verifiedUtc = null;
        if (entry.VerifyRecordModified is { } recordModified
            && await VerifyRecord.ReadAsync(storage, entry.Key, cancellationToken).ConfigureAwait(false) is { } record
            && record.Covers(manifest, recordModified, entry.Modified))
        {
            verifiedUtc = record.CheckedUtc;
        }
        return (new HistoryPoint(manifest.DataFile, manifest.StartedUtc, manifest.FinishedUtc, manifest.StoredBytes, manifest.PlainBytes), verifiedUtc);
    }
}
