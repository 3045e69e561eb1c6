using System.Text.Json;
using System.Text.Json.Serialization;
using VyaBackupDb.Config;
using VyaBackupDb.Storage;

namespace VyaBackupDb.Reporting;

/// <summary>One backup in a database's trend.</summary>
public sealed record StatusPoint(DateTimeOffset TimeUtc, long SizeBytes, double DurationSeconds);

/// <summary>
/// One database in `status` (its --json shape: snake_case names, stable). <see cref="Database"/> is
/// null for an instance that has no backup at all.
/// </summary>
/// <param name="ExpectedEverySeconds">The interval its backups are expected at (expect_every:, else the schedule's period, else a day).</param>
/// <param name="DueUtc">When the next backup is due; overdue from a quarter of the interval, plus the last backup's duration, after that.</param>
/// <param name="History">The last backups, oldest first (the charts' points).</param>
public sealed record DatabaseStatus(
    int InstanceId,
    string Instance,
    string Dbms,
    bool Enabled,
    string? Database,
    DateTimeOffset? LastBackupUtc,
    double? AgeSeconds,
    double ExpectedEverySeconds,
    DateTimeOffset? DueUtc,
    bool Overdue,
    long? LastSizeBytes,
    double? LastDurationSeconds,
    int Backups,
    int Incomplete,
    int Damaged,
    DateTimeOffset? LastVerifiedUtc,
    string? LastVerifiedFile,
    bool NewestVerified,
    IReadOnlyList<StatusPoint> History);

/// <param name="Errors">Destinations that could not be listed: what they hold is missing above.</param>
public sealed record StatusReport(DateTimeOffset GeneratedUtc, string Host, IReadOnlyList<DatabaseStatus> Databases, IReadOnlyList<string> Errors)
{
    /// <summary>The default expected interval when an instance says nothing (no expect_every:).</summary>
    public static readonly TimeSpan DefaultExpectEvery = TimeSpan.FromDays(1);

    public int OverdueCount => Databases.Count(d => d.Overdue);

    /// <summary>
    /// The status of every instance given: per database, from the manifests in its destinations
    /// (the last <paramref name="depth"/> backups for the trend). Reads no data file and asks no server.
    /// </summary>
    public static async Task<StatusReport> BuildAsync(
        IReadOnlyList<InstanceConfig> instances, Func<InstanceConfig, IReadOnlyList<NamedStorage>> destinations, int depth, DateTimeOffset now,
        CancellationToken cancellationToken)
    {
        var rows = new List<DatabaseStatus>();
        var errors = new List<string>();
        foreach (var instance in instances)
        {
            var targets = destinations(instance);
            var history = await BackupHistory.ReadAsync(instance, targets, depth, cancellationToken).ConfigureAwait(false);
            errors.AddRange(history.Errors.Select(e => $"instance {instance.Id} ({instance.Name}): {e.TrimEnd('.')}; its backups there are not counted"));
            if (history.Errors.Count == targets.Count)
            {
                // Nothing could be read: not "no backup", but unknown (the error says why).
                continue;
            }
            var databases = history.Databases.Where(d => d.Intact > 0 || d.Incomplete > 0 || d.Damaged > 0).ToList();
            // A database include names that has no backup yet (mistyped, never there): its own row, overdue.
            var neverBackedUp = Operations.DatabaseSelector.Named(instance).Except(databases.Select(d => d.Database), StringComparer.Ordinal).ToList();
            if (databases.Count == 0 && neverBackedUp.Count == 0)
            {
                rows.Add(Row(instance, null, null, now));
            }
            foreach (var future in databases.SelectMany(d => FutureBackups(d, now)))
            {
                errors.Add($"instance {instance.Id} ({instance.Name}): {FromTheFuture(future)}");
            }
            rows.AddRange(databases.Select(d => Row(instance, d.Database, d, now)));
            rows.AddRange(neverBackedUp.Select(name => Row(instance, name, null, now)));
        }
        return new StatusReport(now, Environment.MachineName, rows, errors);
    }

    /// <summary>How far a backup's time may be ahead of this host's clock (another runner's clock) and still count.</summary>
    private static readonly TimeSpan ClockSkew = TimeSpan.FromMinutes(5);

    /// <summary>
    /// The newest backup of <paramref name="history"/> not dated after now (status and metrics alike): one dated after
    /// now would hide, for as long, that none was taken since.
    /// </summary>
    public static HistoryPoint? LastBackup(DatabaseHistory? history, DateTimeOffset now) =>
        history?.Recent.FirstOrDefault(p => p.FinishedUtc <= now + ClockSkew);

    /// <summary>The backups of <paramref name="history"/> dated after now, newest first.</summary>
    public static IEnumerable<HistoryPoint> FutureBackups(DatabaseHistory history, DateTimeOffset now) =>
        history.Recent.Where(p => p.FinishedUtc > now + ClockSkew);

    /// <summary>
    /// Whether the instance still backs up <paramref name="database"/>: one its include/exclude now leave out (dropped
    /// and excluded, say) shows its old backups but is never overdue (it was, for as long as prune kept its newest).
    /// </summary>
    private static bool Expected(InstanceConfig instance, string? database) =>
        database is null || instance.Dbms == Dbms.Files
        || (database == Engines.Globals.ItemName ? instance.Globals : Operations.DatabaseSelector.Select(instance, [database]).Count > 0);

    public static string FromTheFuture(HistoryPoint backup) =>
        $"{backup.DataFile} is dated {backup.FinishedUtc:yyyy-MM-dd HH:mm} UTC, after now (a clock that was ahead?): not taken as the last backup";

    /// <summary>
    /// From when the database is overdue (the Unix epoch: it has no backup, so it is already); null when it never is
    /// (its instance disabled, or it is no longer selected). Status and the metrics alike.
    /// </summary>
    public static DateTimeOffset? OverdueFrom(InstanceConfig instance, string? database, HistoryPoint? last)
    {
        if (!instance.Enabled || !Expected(instance, database))
        {
            return null;
        }
        if (last is null)
        {
            return DateTimeOffset.UnixEpoch;
        }
        var due = NextDue(instance, last.FinishedUtc);
        var every = Interval(instance, due);
        // A schedule drifts and the due run takes time (as long as the last one, say): overdue only a quarter of the
        // interval, plus that, after it was due.
        // The last one's duration at most an interval: a start stamped by a clock that was behind made it a month long.
        return due + every / 4 + (last.Duration < every ? last.Duration : every);
    }

    private static DatabaseStatus Row(InstanceConfig instance, string? database, DatabaseHistory? history, DateTimeOffset now)
    {
        var last = LastBackup(history, now);
        DateTimeOffset? due = last is null ? null : NextDue(instance, last.FinishedUtc);
        // The schedule's period from when the next one is due (not the time left since the last one ended); without a
        // backup, from the next run (tr107: it was the time left until then, changing with each call).
        var every = Interval(instance, due ?? NextDue(instance, now));
        var overdue = now > OverdueFrom(instance, database, last);
        return new DatabaseStatus(
            instance.Id,
            instance.Name,
            instance.Dbms.ToName(),
            instance.Enabled,
            database,
            last?.FinishedUtc,
            last is null ? null : Math.Round((now - last.FinishedUtc).TotalSeconds),
            every.TotalSeconds,
            due,
            overdue,
            last?.StoredBytes,
            last is null ? null : Math.Round(last.Duration.TotalSeconds, 3),
            history?.Intact ?? 0,
            history?.Incomplete ?? 0,
            history?.Damaged ?? 0,
            history?.LastVerifiedUtc,
            history?.LastVerifiedFile,
            history?.NewestVerified ?? false,
            [.. (history?.Recent ?? []).Reverse().Select(p => new StatusPoint(p.FinishedUtc, p.StoredBytes, Math.Round(p.Duration.TotalSeconds, 3)))]);
    }

    /// <summary>
    /// When the backup after one that finished at <paramref name="last"/> is due: expect_every
    /// after it, else the instance's schedule's next time, else a day after it.
    /// </summary>
    private static DateTimeOffset NextDue(InstanceConfig instance, DateTimeOffset last) =>
        instance.ExpectEvery is { } every ? last + every
        : instance.Schedule?.NextAfter(last) ?? last + DefaultExpectEvery;

    /// <summary>The expected interval from <paramref name="from"/>: expect_every, or the schedule's next period.</summary>
    private static TimeSpan Interval(InstanceConfig instance, DateTimeOffset from) => NextDue(instance, from) - from;

    public byte[] ToJson() => JsonSerializer.SerializeToUtf8Bytes(this, StatusJson.Default.StatusReport);
}

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower, WriteIndented = true)]
[JsonSerializable(typeof(StatusReport))]
internal sealed partial class StatusJson : JsonSerializerContext;
