using System.Globalization;
using VyaBackupDb.Catalog;

namespace VyaBackupDb.Retention;

/// <summary>A backup as the planner sees it: where it is, what it is of, when it was taken, and whether it is whole.</summary>
/// <param name="Key">The data file's storage key (identity only; the planner never touches storage).</param>
/// <param name="Instance">The instance (its folder name); backups are counted per instance and database.</param>
/// <param name="TimestampUtc">The time in the backup's name (UTC).</param>
public sealed record BackupRef(string Key, string Instance, string Database, DateTime TimestampUtc, BackupStatus Status);

/// <summary>Keep or remove one backup, and why (every rule that keeps it, or why none does).</summary>
public sealed record RetentionDecision(BackupRef Backup, bool Keep, IReadOnlyList<string> Reasons)
{
    /// <summary>E.g. "keep: daily 2026-01-13, weekly 2026-W03" or "remove: beyond every keep rule".</summary>
    public string Reason => (Keep ? "keep: " : "remove: ") + string.Join(", ", Reasons);
}

/// <summary>The decisions for every backup given, grouped by instance and database (ordinal), newest first within a group.</summary>
public sealed record RetentionPlan(IReadOnlyList<RetentionDecision> Decisions)
{
    public IEnumerable<RetentionDecision> Kept => Decisions.Where(d => d.Keep);

    public IEnumerable<RetentionDecision> Removed => Decisions.Where(d => !d.Keep);
}

/// <summary>
/// Decides which backups retention removes. Pure: no storage, no clock (now is a parameter).
/// <list type="bullet">
/// <item>Backups are counted per instance and database. Only complete backups (a readable
/// manifest that the stored size matches) are counted by the rules and can be removed.</item>
/// <item>Rules (restic's <c>forget</c> semantics): keep_last N keeps the N newest; keep_hourly/
/// daily/weekly/monthly/yearly N keep the newest backup of each of the N most recent hours/UTC
/// days/ISO weeks/months/years that have a backup (periods without one are not counted);
/// keep_within keeps every backup at or after now minus the duration. Kept if any rule keeps it.</item>
/// <item>The newest complete backup of each database is never removed, whatever the rules say
/// (also with every keep_* = 0).</item>
/// <item>Incomplete backups (no manifest: a crash before the manifest, or the old tool's files),
/// backups with an unreadable manifest and those whose stored size differs from their manifest
/// (truncated or appended to: a damaged file must not take the slot of a good one) are never
/// removed and not counted.</item>
/// <item>Backups dated after now (the clock went back, or was wrong when they were taken) are
/// kept, and neither counted nor taken as the newest: rules and protections apply to the rest.</item>
/// <item>An empty policy (no rule configured) keeps everything.</item>
/// </list>
/// </summary>
public static class RetentionPlanner
{
    public const string NoPolicy = "no retention policy configured";
    public const string NewestComplete = "newest complete backup";
    public const string Beyond = "beyond every keep rule";
    public const string InFuture = "dated after now (clock went back?): never removed";
    public const string Incomplete = "incomplete (no manifest): not counted, never removed by prune";
    public const string BadManifest = "manifest unreadable or not this file's: not counted, never removed by prune";
    public const string SizeMismatch = "stored size differs from its manifest (damaged): not counted, never removed by prune";
    public const string VerifyFailed = "verify found its file damaged: not counted, never removed by prune";
    public const string MissingData = "data file missing, only its manifest is there: not counted, never removed by prune";

    public static RetentionPlan Plan(IReadOnlyList<BackupRef> backups, RetentionPolicy policy, DateTimeOffset now)
    {
        ArgumentNullException.ThrowIfNull(backups);
        ArgumentNullException.ThrowIfNull(policy);
        var nowUtc = now.UtcDateTime;
        var decisions = new List<RetentionDecision>(backups.Count);
        var groups = backups
            .GroupBy(b => (b.Instance, b.Database))
            .OrderBy(g => g.Key.Instance, StringComparer.Ordinal)
            .ThenBy(g => g.Key.Database, StringComparer.Ordinal);
        foreach (var group in groups)
        {
            var newestFirst = group
                .OrderByDescending(b => b.TimestampUtc)
                .ThenBy(b => b.Key, StringComparer.Ordinal)
                .ToList();
            decisions.AddRange(PlanDatabase(newestFirst, policy, nowUtc));
        }
        return new RetentionPlan(decisions);
    }

    private static List<RetentionDecision> PlanDatabase(List<BackupRef> newestFirst, RetentionPolicy policy, DateTime nowUtc)
    {
        // Indexes into newestFirst: a fixed reason (not up to the rules), or the rules' reasons.
        var fixedReason = new string?[newestFirst.Count];
        var reasons = newestFirst.Select(_ => new List<string>()).ToArray();
        var candidates = new List<int>();
        for (var i = 0; i < newestFirst.Count; i++)
        {
            var backup = newestFirst[i];
            fixedReason[i] =
                policy.IsEmpty ? NoPolicy
                : backup.TimestampUtc > nowUtc ? InFuture
                : backup.Status == BackupStatus.Incomplete ? Incomplete
                : backup.Status == BackupStatus.BadManifest ? BadManifest
                : backup.Status == BackupStatus.SizeMismatch ? SizeMismatch
                : backup.Status == BackupStatus.VerifyFailed ? VerifyFailed
                : backup.Status == BackupStatus.MissingData ? MissingData
                : null;
            if (fixedReason[i] is null)
            {
                candidates.Add(i);
            }
        }

        if (policy.KeepLast is { } last)
        {
            for (var n = 0; n < Math.Min(last, candidates.Count); n++)
            {
                reasons[candidates[n]].Add(string.Create(CultureInfo.InvariantCulture, $"last #{n + 1}"));
            }
        }
        var times = candidates.Select(i => newestFirst[i].TimestampUtc).ToList();
        void KeepNewestPer(int? count, Func<DateTime, string> period)
        {
            // Newest first: each backup whose period differs from the last kept one's, until N periods are used.
            var left = count ?? 0;
            string? lastPeriod = null;
            for (var n = 0; n < candidates.Count && left > 0; n++)
            {
                var current = period(times[n]);
                if (current != lastPeriod)
                {
                    reasons[candidates[n]].Add(current);
                    lastPeriod = current;
                    left--;
                }
            }
        }
        KeepNewestPer(policy.KeepHourly, t => "hourly " + t.ToString("yyyy-MM-dd HH':00'", CultureInfo.InvariantCulture));
        KeepNewestPer(policy.KeepDaily, t => "daily " + t.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture));
        KeepNewestPer(policy.KeepWeekly,
            t => string.Create(CultureInfo.InvariantCulture, $"weekly {ISOWeek.GetYear(t)}-W{ISOWeek.GetWeekOfYear(t):00}"));
        KeepNewestPer(policy.KeepMonthly, t => "monthly " + t.ToString("yyyy-MM", CultureInfo.InvariantCulture));
        KeepNewestPer(policy.KeepYearly, t => "yearly " + t.ToString("yyyy", CultureInfo.InvariantCulture));
        if (policy.KeepWithin is { } within)
        {
            var cutoff = within.Before(nowUtc);
            for (var n = 0; n < candidates.Count; n++)
            {
                if (times[n] >= cutoff)
                {
                    reasons[candidates[n]].Add($"within {within}");
                }
            }
        }

        // Whatever the rules say: the newest complete backup.
        if (candidates.Count > 0 && reasons[candidates[0]].Count == 0)
        {
            reasons[candidates[0]].Add(NewestComplete);
        }

        return [.. newestFirst.Select((backup, i) =>
            fixedReason[i] is { } why ? new RetentionDecision(backup, true, [why])
            : reasons[i].Count > 0 ? new RetentionDecision(backup, true, reasons[i])
            : new RetentionDecision(backup, false, [Beyond]))];
    }
}
