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
/// <param name="Intact">How many backups are intact in at least one destination (all of them, not only <paramref name="Recent"/>):
/// a readable manifest that describes the file, whose stored size matches it, as list and prune judge it.</param>
/// <param name="Incomplete">Data files without a manifest (failed or killed runs, or the old tool's files).</param>
/// <param name="Damaged">Copies, one per destination, whose manifest is unreadable, describes another file, database or dbms, or
/// records another size, whose data file is missing, or that verify found damaged: also those of a backup intact in another destination.</param>
/// <param name="LastVerifiedUtc">When the newest backup that has been checked was found to match its manifest (a .verify.json record that covers it).</param>
/// <param name="LastVerifiedFile">The backup that check was of.</param>
public sealed record DatabaseHistory(
    InstanceConfig Instance,
    string Database,
    IReadOnlyList<HistoryPoint> Recent,
    int Intact,
    int Incomplete,
    int Damaged,
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
/// same. Reads every manifest (to count only intact backups; a copy of a backup found intact in an
/// earlier destination only where the listing shows it may differ) with its verify record, and no data file.
/// </summary>
public static class BackupHistory
{
    public static async Task<InstanceHistory> ReadAsync(
        InstanceConfig instance, IReadOnlyList<NamedStorage> destinations, int depth, CancellationToken cancellationToken)
    {
        var points = new Dictionary<string, Dictionary<string, HistoryPoint>>(StringComparer.Ordinal);
        // File name → stored size of the backups found intact.
        var intact = new Dictionary<string, Dictionary<string, long>>(StringComparer.Ordinal);
        var incomplete = new Dictionary<string, HashSet<string>>(StringComparer.Ordinal);
        // The file name of each damaged copy (one per destination).
        var damaged = new Dictionary<string, List<string>>(StringComparer.Ordinal);
        var verified = new Dictionary<string, (DateTimeOffset At, string File, DateTimeOffset Started)>(StringComparer.Ordinal);
        var errors = new List<string>();
        foreach (var destination in destinations)
        {
            IReadOnlyList<CatalogEntry> entries;
            try
            {
                entries = await BackupCatalog.ListAsync(destination.Storage, instance, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception e) when (StorageSet.IsStorageFault(e, cancellationToken))
            {
                errors.Add($"storage '{destination.Name}' cannot be listed: {IoErrors.Describe(e)}");
                continue;
            }
            try
            {
                foreach (var byDatabase in entries.GroupBy(e => e.Name.Database, StringComparer.Ordinal))
                {
                    var database = byDatabase.Key;
                    var seen = Get(points, database);
                    var good = Get(intact, database);
                    Get(incomplete, database).UnionWith(byDatabase.Where(e => !e.HasManifest).Select(e => StorageKey.FileName(e.Key)));
                    // Newest first (ListAsync's order), judged as list and prune judge them; a manifest whose data file is gone
                    // is a damaged copy (tr107: it vanished from status, a database whose only backup it was too).
                    var found = new List<CatalogBackup>();
                    foreach (var entry in byDatabase.Where(e => e.HasManifest && !SameAsIntact(e, good)))
                    {
                        var backup = await BackupCatalog.ClassifyAsync(destination.Storage, instance, entry, cancellationToken).ConfigureAwait(false);
                        if (backup.Status == BackupStatus.Verified)
                        {
                            // When it was last checked (read off its record, if it has one); one verify found damaged is no backup either.
                            backup = await BackupCatalog.WithDigestCheckAsync(destination.Storage, backup, cancellationToken).ConfigureAwait(false);
                        }
                        if (backup.Status == BackupStatus.Verified)
                        {
                            found.Add(backup);
                        }
                        else
                        {
                            Get(damaged, database).Add(StorageKey.FileName(entry.Key));
                        }
                    }
                    foreach (var backup in found)
                    {
                        good.TryAdd(StorageKey.FileName(backup.Entry.Key), backup.Manifest!.StoredBytes);
                    }
                    // The newest few of each destination, with when each was last checked.
                    foreach (var backup in found.Take(depth))
                    {
                        var manifest = backup.Manifest!;
                        seen[manifest.DataFile] = new HistoryPoint(manifest.DataFile, manifest.StartedUtc, manifest.FinishedUtc, manifest.StoredBytes, manifest.PlainBytes);
                        // The check of the newest backup checked, not the latest check: verify goes newest first, so an older
                        // backup is checked after the newest one, which is still verified.
                        if (backup.DigestCheckedUtc is { } at
                            && (!verified.TryGetValue(database, out var known) || (known.Started, known.At).CompareTo((manifest.StartedUtc, at)) < 0))
                        {
                            verified[database] = (at, manifest.DataFile, manifest.StartedUtc);
                        }
                    }
                    // The last check may be of an older backup than those read above.
                    if (!verified.ContainsKey(database)
                        && found.Skip(depth).FirstOrDefault(b => b.Entry.VerifyRecordModified is not null) is { } older
                        && older.DigestCheckedUtc is { } olderAt)
                    {
                        verified[database] = (olderAt, older.Manifest!.DataFile, older.Manifest.StartedUtc);
                    }
                }
            }
            catch (Exception e) when (StorageSet.IsStorageFault(e, cancellationToken))
            {
                // A manifest that could not be read (a cut connection): what the destination holds is not known.
                errors.Add($"storage '{destination.Name}' cannot be read: {IoErrors.Describe(e)}");
            }
        }
        var databases = points.Keys.Order(StringComparer.Ordinal).Select(database =>
        {
            var recent = Get(points, database).Values.OrderByDescending(p => p.StartedUtc).ThenByDescending(p => p.DataFile, StringComparer.Ordinal)
                .Take(depth).ToList();
            var check = verified.TryGetValue(database, out var v) ? v : ((DateTimeOffset At, string File, DateTimeOffset Started)?)null;
            var good = Get(intact, database);
            var bad = Get(damaged, database);
            // A damaged copy counts even where another destination holds the backup intact (tr107: verify FAILED two copies
            // of three, status said damaged 0); the backup counts too, so the database has a backup.
            return new DatabaseHistory(instance, database, recent, good.Count,
                Get(incomplete, database).Except(good.Keys).Except(bad).Count(), bad.Count, check?.At, check?.File);
        }).ToList();
        return new InstanceHistory(instance, databases, errors);
    }

    /// <summary>
    /// A copy of a backup found intact in an earlier destination, which the listing shows is the same: not read again.
    /// One of another size, without its data file or with a verify record (a check of this copy, failed or passed) is.
    /// </summary>
    private static bool SameAsIntact(CatalogEntry entry, Dictionary<string, long> intact) =>
        intact.TryGetValue(StorageKey.FileName(entry.Key), out var size) && entry.HasData && entry.Size == size && entry.VerifyRecordModified is null;

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
}
