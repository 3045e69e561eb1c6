using System.Globalization;
using System.Text.RegularExpressions;
using VyaBackupDb.Catalog;
using VyaBackupDb.Config;
using VyaBackupDb.Retention;

namespace VyaBackupDb.Tests.Unit;

/// <summary>
/// Golden tests of the retention planner. Each case: a policy (as the config's retention: mapping),
/// now (UTC), backups, and the expected plan, one line per backup in plan order (instance, then
/// database, newest first): "&lt;backup&gt; -> keep|remove: reasons".
/// A backup is written "[instance/][database ]YYYYMMDD_HHMMSS[ incomplete|bad|size]" (defaults:
/// instance i1, database db; incomplete = no manifest, bad = unreadable manifest, size = the
/// stored size differs from the manifest).
/// </summary>
public sealed partial class RetentionPlannerTests
{
    private sealed record Case(string Policy, string Now, string[] Backups, string[] Expected);

    private static readonly Dictionary<string, Case> Cases = new()
    {
        ["keep_last keeps the N newest"] = new(
            "keep_last: 3", "20260120_000000",
            ["20260113_155440", "20260112_155440", "20260111_155440", "20260110_155440", "20260109_155440"],
            [
                "20260113_155440 -> keep: last #1",
                "20260112_155440 -> keep: last #2",
                "20260111_155440 -> keep: last #3",
                "20260110_155440 -> remove: beyond every keep rule",
                "20260109_155440 -> remove: beyond every keep rule",
            ]),
        ["several backups on one day: daily keeps the newest of each day"] = new(
            "keep_daily: 2", "20260120_000000",
            ["20260113_000000", "20260113_235959", "20260113_120000", "20260112_080000", "20260112_230000", "20260110_120000"],
            [
                "20260113_235959 -> keep: daily 2026-01-13",
                "20260113_120000 -> remove: beyond every keep rule",
                "20260113_000000 -> remove: beyond every keep rule",
                "20260112_230000 -> keep: daily 2026-01-12",
                "20260112_080000 -> remove: beyond every keep rule",
                "20260110_120000 -> remove: beyond every keep rule",
            ]),
        ["days without a backup are not counted"] = new(
            "keep_daily: 3", "20260120_000000",
            ["20260119_010000", "20260115_010000", "20260101_010000", "20251231_010000"],
            [
                "20260119_010000 -> keep: daily 2026-01-19",
                "20260115_010000 -> keep: daily 2026-01-15",
                "20260101_010000 -> keep: daily 2026-01-01",
                "20251231_010000 -> remove: beyond every keep rule",
            ]),
        ["hourly keeps the newest of each hour"] = new(
            "keep_hourly: 2", "20260113_160000",
            ["20260113_151000", "20260113_155000", "20260113_145959", "20260113_140000", "20260113_130000"],
            [
                "20260113_155000 -> keep: hourly 2026-01-13 15:00",
                "20260113_151000 -> remove: beyond every keep rule",
                "20260113_145959 -> keep: hourly 2026-01-13 14:00",
                "20260113_140000 -> remove: beyond every keep rule",
                "20260113_130000 -> remove: beyond every keep rule",
            ]),
        ["month boundary: Jan 31 23:59:59 and Feb 1 00:00:00 are different months and days"] = new(
            "keep_monthly: 2, keep_daily: 1", "20260301_000000",
            ["20260201_000000", "20260131_235959", "20260131_120000", "20260115_000000"],
            [
                "20260201_000000 -> keep: daily 2026-02-01, monthly 2026-02",
                "20260131_235959 -> keep: monthly 2026-01",
                "20260131_120000 -> remove: beyond every keep rule",
                "20260115_000000 -> remove: beyond every keep rule",
            ]),
        ["a month with no backup is not counted"] = new(
            "keep_monthly: 3", "20260501_000000",
            ["20260420_020000", "20260405_020000", "20260315_020000", "20260131_020000", "20251215_020000"],
            [
                "20260420_020000 -> keep: monthly 2026-04",
                "20260405_020000 -> remove: beyond every keep rule",
                "20260315_020000 -> keep: monthly 2026-03",
                "20260131_020000 -> keep: monthly 2026-01",
                "20251215_020000 -> remove: beyond every keep rule",
            ]),
        ["Dec 31 to Jan 1: new day, month and year"] = new(
            "keep_yearly: 2, keep_monthly: 1", "20260105_000000",
            ["20260101_000001", "20251231_235959", "20251231_000000", "20250601_000000", "20241231_235959"],
            [
                "20260101_000001 -> keep: monthly 2026-01, yearly 2026",
                "20251231_235959 -> keep: yearly 2025",
                "20251231_000000 -> remove: beyond every keep rule",
                "20250601_000000 -> remove: beyond every keep rule",
                "20241231_235959 -> remove: beyond every keep rule",
            ]),
        ["ISO week 53: Dec 28 2026 to Jan 3 2027 is 2026-W53; Jan 4 2027 is 2027-W01"] = new(
            "keep_weekly: 3", "20270110_000000",
            ["20270104_010000", "20270103_230000", "20261231_120000", "20261228_000000", "20261227_235959", "20261221_000000"],
            [
                "20270104_010000 -> keep: weekly 2027-W01",
                "20270103_230000 -> keep: weekly 2026-W53",
                "20261231_120000 -> remove: beyond every keep rule",
                "20261228_000000 -> remove: beyond every keep rule",
                "20261227_235959 -> keep: weekly 2026-W52",
                "20261221_000000 -> remove: beyond every keep rule",
            ]),
        ["ISO week 1 of 2026 starts on Mon Dec 29 2025; Sun Dec 28 2025 is 2025-W52"] = new(
            "keep_weekly: 2", "20260110_000000",
            ["20260101_010000", "20251229_010000", "20251228_230000"],
            [
                "20260101_010000 -> keep: weekly 2026-W01",
                "20251229_010000 -> remove: beyond every keep rule",
                "20251228_230000 -> keep: weekly 2025-W52",
            ]),
        ["leap day: Feb 29 is its own day and the newest of February"] = new(
            "keep_daily: 2, keep_monthly: 2", "20240305_000000",
            ["20240301_000000", "20240229_120000", "20240228_120000", "20240131_120000"],
            [
                "20240301_000000 -> keep: daily 2024-03-01, monthly 2024-03",
                "20240229_120000 -> keep: daily 2024-02-29, monthly 2024-02",
                "20240228_120000 -> remove: beyond every keep rule",
                "20240131_120000 -> remove: beyond every keep rule",
            ]),
        ["keep_within 1y from a leap day reaches back to Feb 28 of the year before"] = new(
            "keep_within: 1y", "20280229_120000",
            ["20280229_110000", "20270228_120000", "20270228_115959", "20270101_000000"],
            [
                "20280229_110000 -> keep: within 1y",
                "20270228_120000 -> keep: within 1y",
                "20270228_115959 -> remove: beyond every keep rule",
                "20270101_000000 -> remove: beyond every keep rule",
            ]),
        ["keep_within keeps everything at or after now minus the duration"] = new(
            "keep_within: 2w", "20260131_120000",
            ["20260131_110000", "20260117_120000", "20260117_115959", "20260101_000000"],
            [
                "20260131_110000 -> keep: within 2w",
                "20260117_120000 -> keep: within 2w",
                "20260117_115959 -> remove: beyond every keep rule",
                "20260101_000000 -> remove: beyond every keep rule",
            ]),
        ["keep_within in hours, combined with keep_last"] = new(
            "keep_within: 12h, keep_last: 1", "20260113_120000",
            ["20260113_110000", "20260113_000000", "20260112_235959"],
            [
                "20260113_110000 -> keep: last #1, within 12h",
                "20260113_000000 -> keep: within 12h",
                "20260112_235959 -> remove: beyond every keep rule",
            ]),
        ["every rule that keeps a backup is named"] = new(
            "keep_last: 1, keep_daily: 2, keep_weekly: 2, keep_monthly: 2, keep_yearly: 1", "20260120_000000",
            ["20260113_020000", "20260112_020000", "20260105_020000", "20251220_020000", "20251210_020000"],
            [
                "20260113_020000 -> keep: last #1, daily 2026-01-13, weekly 2026-W03, monthly 2026-01, yearly 2026",
                "20260112_020000 -> keep: daily 2026-01-12",
                "20260105_020000 -> keep: weekly 2026-W02",
                "20251220_020000 -> keep: monthly 2025-12",
                "20251210_020000 -> remove: beyond every keep rule",
            ]),
        ["UTC times in names: 23:30 and 00:30 UTC are different days, whatever the local zone"] = new(
            "keep_daily: 1", "20260114_013000",
            ["20260114_003000", "20260113_233000"],
            [
                "20260114_003000 -> keep: daily 2026-01-14",
                "20260113_233000 -> remove: beyond every keep rule",
            ]),
        ["all keep_* = 0: the newest complete backup is still kept"] = new(
            "keep_last: 0, keep_hourly: 0, keep_daily: 0, keep_weekly: 0, keep_monthly: 0, keep_yearly: 0, keep_within: 0h", "20260120_000000",
            ["20260113_155440", "20260112_155440", "20260111_155440"],
            [
                "20260113_155440 -> keep: newest complete backup",
                "20260112_155440 -> remove: beyond every keep rule",
                "20260111_155440 -> remove: beyond every keep rule",
            ]),
        ["incomplete backups are never removed nor counted; the newest complete one is protected"] = new(
            "keep_last: 1", "20260120_000000",
            ["20260114_000000 incomplete", "20260113_000000", "20260112_000000 incomplete", "20260111_000000", "20200101_000000 incomplete"],
            [
                "20260114_000000 -> keep: incomplete (no manifest): not counted, never removed by prune",
                "20260113_000000 -> keep: last #1",
                "20260112_000000 -> keep: incomplete (no manifest): not counted, never removed by prune",
                "20260111_000000 -> remove: beyond every keep rule",
                "20200101_000000 -> keep: incomplete (no manifest): not counted, never removed by prune",
            ]),
        ["only incomplete backups: nothing is removed"] = new(
            "keep_last: 0", "20260120_000000",
            ["20260113_000000 incomplete", "20260112_000000 incomplete"],
            [
                "20260113_000000 -> keep: incomplete (no manifest): not counted, never removed by prune",
                "20260112_000000 -> keep: incomplete (no manifest): not counted, never removed by prune",
            ]),
        ["an unreadable manifest: never removed nor counted"] = new(
            "keep_last: 1", "20260120_000000",
            ["20260113_000000 bad", "20260112_000000", "20260111_000000"],
            [
                "20260113_000000 -> keep: manifest unreadable or not this file's: not counted, never removed by prune",
                "20260112_000000 -> keep: last #1",
                "20260111_000000 -> remove: beyond every keep rule",
            ]),
        // Found by a tester: truncated backups took keep_last's slots and the intact ones were removed.
        ["backups whose size differs from their manifest: never removed nor counted"] = new(
            "keep_last: 1", "20260120_000000",
            ["20260113_000000 size", "20260112_000000 size", "20260111_000000", "20260110_000000"],
            [
                "20260113_000000 -> keep: stored size differs from its manifest (damaged): not counted, never removed by prune",
                "20260112_000000 -> keep: stored size differs from its manifest (damaged): not counted, never removed by prune",
                "20260111_000000 -> keep: last #1",
                "20260110_000000 -> remove: beyond every keep rule",
            ]),
        ["a day's newest backup has the wrong size: the day's intact one keeps the daily slot"] = new(
            "keep_daily: 1", "20260121_000000",
            ["20260120_140000 size", "20260120_020000", "20260119_020000"],
            [
                "20260120_140000 -> keep: stored size differs from its manifest (damaged): not counted, never removed by prune",
                "20260120_020000 -> keep: daily 2026-01-20",
                "20260119_020000 -> remove: beyond every keep rule",
            ]),
        ["clock went back: backups after now are kept and not counted; rules apply to the rest"] = new(
            "keep_last: 1", "20260110_000000",
            ["20260112_000000", "20260111_000000", "20260110_000000", "20260109_000000", "20260108_000000"],
            [
                "20260112_000000 -> keep: dated after now (clock went back?): never removed",
                "20260111_000000 -> keep: dated after now (clock went back?): never removed",
                "20260110_000000 -> keep: last #1",
                "20260109_000000 -> remove: beyond every keep rule",
                "20260108_000000 -> remove: beyond every keep rule",
            ]),
        ["clock went back before every backup: nothing is removed"] = new(
            "keep_last: 0", "20250101_000000",
            ["20260113_000000", "20260112_000000"],
            [
                "20260113_000000 -> keep: dated after now (clock went back?): never removed",
                "20260112_000000 -> keep: dated after now (clock went back?): never removed",
            ]),
        ["clock went back: the newest complete backup not in the future is protected"] = new(
            "keep_within: 1d", "20260110_000000",
            ["20270101_000000", "20260105_000000", "20260104_000000"],
            [
                "20270101_000000 -> keep: dated after now (clock went back?): never removed",
                "20260105_000000 -> keep: newest complete backup",
                "20260104_000000 -> remove: beyond every keep rule",
            ]),
        ["databases are counted independently, also a similar name"] = new(
            "keep_last: 1", "20260120_000000",
            ["dns_db 20260113_000000", "dns_db2 20260114_000000", "dns_db 20260112_000000", "dns_db2 20260111_000000", "dns_db2 20260110_000000"],
            [
                "dns_db 20260113_000000 -> keep: last #1",
                "dns_db 20260112_000000 -> remove: beyond every keep rule",
                "dns_db2 20260114_000000 -> keep: last #1",
                "dns_db2 20260111_000000 -> remove: beyond every keep rule",
                "dns_db2 20260110_000000 -> remove: beyond every keep rule",
            ]),
        ["instances are counted independently"] = new(
            "keep_daily: 1", "20260120_000000",
            ["a/db 20260113_000000", "b/db 20260112_000000", "a/db 20260112_000000", "b/db 20260111_000000"],
            [
                "a/db 20260113_000000 -> keep: daily 2026-01-13",
                "a/db 20260112_000000 -> remove: beyond every keep rule",
                "b/db 20260112_000000 -> keep: daily 2026-01-12",
                "b/db 20260111_000000 -> remove: beyond every keep rule",
            ]),
        ["no rule configured: everything is kept"] = new(
            "", "20260120_000000",
            ["20260113_000000", "20200101_000000", "20190101_000000 incomplete"],
            [
                "20260113_000000 -> keep: no retention policy configured",
                "20200101_000000 -> keep: no retention policy configured",
                "20190101_000000 -> keep: no retention policy configured",
            ]),
        ["no backups: an empty plan"] = new("keep_last: 1", "20260120_000000", [], []),
    };

    public static TheoryData<string> CaseNames() => [.. Cases.Keys];

    [Theory]
    [MemberData(nameof(CaseNames))]
    public void Golden(string name)
    {
        var c = Cases[name];
        var backups = c.Backups.Select(Backup).ToList();

        var plan = RetentionPlanner.Plan(backups, Policy(c.Policy), Time(c.Now));

        Assert.Equal(c.Expected, plan.Decisions.Select(Line).ToArray());
        AssertInvariants(backups, plan, Time(c.Now));
    }

    [Fact]
    public void Now_with_an_offset_plans_like_the_same_instant_in_UTC()
    {
        var backups = new[] { "20260114_003000", "20260113_233000", "20260113_120000" }.Select(Backup).ToList();
        var policy = Policy("keep_daily: 1, keep_within: 1h");
        var utc = RetentionPlanner.Plan(backups, policy, Time("20260114_010000"));
        foreach (var offset in new[] { 5, -10, 14 })
        {
            var local = Time("20260114_010000").ToOffset(TimeSpan.FromHours(offset));
            Assert.Equal(utc.Decisions.Select(Line), RetentionPlanner.Plan(backups, policy, local).Decisions.Select(Line));
        }
        Assert.Equal(["20260114_003000 -> keep: daily 2026-01-14, within 1h", "20260113_233000 -> remove: beyond every keep rule",
            "20260113_120000 -> remove: beyond every keep rule"], utc.Decisions.Select(Line));
    }

    [Fact]
    public void The_order_of_the_input_does_not_matter()
    {
        var backups = Cases["several backups on one day: daily keeps the newest of each day"].Backups.Select(Backup).ToList();
        var policy = Policy("keep_daily: 2, keep_last: 1");
        var expected = RetentionPlanner.Plan(backups, policy, Time("20260120_000000")).Decisions.Select(Line).ToList();
        var random = new Random(7);
        for (var i = 0; i < 20; i++)
        {
            var shuffled = backups.OrderBy(_ => random.Next()).ToList();
            Assert.Equal(expected, RetentionPlanner.Plan(shuffled, policy, Time("20260120_000000")).Decisions.Select(Line));
        }
    }

    /// <summary>Random histories and policies: the safety rules hold whatever the rules say.</summary>
    [Fact]
    public void Random_histories_never_break_the_safety_rules()
    {
        var random = new Random(20260113);
        var statuses = new[] { BackupStatus.Verified, BackupStatus.Verified, BackupStatus.Verified, BackupStatus.SizeMismatch, BackupStatus.Incomplete, BackupStatus.BadManifest };
        for (var round = 0; round < 500; round++)
        {
            var now = new DateTime(2026, 1, 1, 0, 0, 0, DateTimeKind.Utc).AddMinutes(random.Next(0, 3 * 365 * 24 * 60));
            var backups = Enumerable.Range(0, random.Next(0, 40)).Select(i =>
            {
                var time = now.AddMinutes(-random.Next(-3 * 24 * 60, 800 * 24 * 60));
                time = time.AddTicks(-(time.Ticks % TimeSpan.TicksPerSecond));
                return new BackupRef($"k{i}", random.Next(2) == 0 ? "i1" : "i2", random.Next(3) == 0 ? "db2" : "db",
                    time, statuses[random.Next(statuses.Length)]);
            }).ToList();
            int? Maybe() => random.Next(3) == 0 ? null : random.Next(0, 5);
            var policy = new RetentionPolicy
            {
                KeepLast = Maybe(), KeepHourly = Maybe(), KeepDaily = Maybe(), KeepWeekly = Maybe(),
                KeepMonthly = Maybe(), KeepYearly = Maybe(),
                KeepWithin = random.Next(3) == 0 ? new RetentionDuration(0, 0, random.Next(0, 60), 0) : null,
            };
            AssertInvariants(backups, RetentionPlanner.Plan(backups, policy, now), now);
        }
    }

    /// <summary>
    /// Every backup gets exactly one decision with a reason; never removed: a backup after now, an
    /// incomplete one, one with a bad manifest or the wrong size, the newest complete backup (not
    /// after now) of each instance and database.
    /// </summary>
    private static void AssertInvariants(IReadOnlyList<BackupRef> backups, RetentionPlan plan, DateTimeOffset now)
    {
        Assert.Equal(backups.OrderBy(b => b.Key, StringComparer.Ordinal), plan.Decisions.Select(d => d.Backup).OrderBy(b => b.Key, StringComparer.Ordinal));
        foreach (var decision in plan.Decisions)
        {
            Assert.NotEmpty(decision.Reasons);
            Assert.All(decision.Reasons, r => Assert.False(string.IsNullOrWhiteSpace(r)));
            Assert.Matches("^(keep|remove): ", decision.Reason);
            if (!decision.Keep)
            {
                Assert.Equal([RetentionPlanner.Beyond], decision.Reasons);
                Assert.True(decision.Backup.TimestampUtc <= now.UtcDateTime, $"removed a backup after now: {decision.Backup}");
                Assert.True(decision.Backup.Status is BackupStatus.Verified, $"removed a backup that is not complete and intact: {decision.Backup}");
            }
        }
        foreach (var group in backups.Where(b => b.TimestampUtc <= now.UtcDateTime).GroupBy(b => (b.Instance, b.Database)))
        {
            var newestFirst = group.OrderByDescending(b => b.TimestampUtc).ThenBy(b => b.Key, StringComparer.Ordinal).ToList();
            if (newestFirst.FirstOrDefault(b => b.Status is BackupStatus.Verified) is { } newest)
            {
                Assert.True(plan.Decisions.Single(d => d.Backup == newest).Keep, $"removed the newest complete backup {newest}");
            }
        }
    }

    [GeneratedRegex(@"^(?:(?:(?<instance>[^/ ]+)/)?(?<db>[^ ]+) )?(?<time>\d{8}_\d{6})(?: (?<status>incomplete|bad|size))?$")]
    private static partial Regex BackupSpec();

    private static BackupRef Backup(string spec)
    {
        var m = BackupSpec().Match(spec);
        Assert.True(m.Success, $"bad backup spec '{spec}'");
        var status = m.Groups["status"].Value switch
        {
            "incomplete" => BackupStatus.Incomplete,
            "bad" => BackupStatus.BadManifest,
            "size" => BackupStatus.SizeMismatch,
            _ => BackupStatus.Verified,
        };
        var instance = m.Groups["instance"].Success ? m.Groups["instance"].Value : "i1";
        var database = m.Groups["db"].Success ? m.Groups["db"].Value : "db";
        // The key carries the spec (minus the status), so a decision prints as the backup was written.
        var key = spec.Split(' ') is var parts && parts[^1] is "incomplete" or "bad" or "size" ? string.Join(' ', parts[..^1]) : spec;
        return new BackupRef(key, instance, database, Time(m.Groups["time"].Value).UtcDateTime, status);
    }

    private static DateTimeOffset Time(string text) =>
        DateTimeOffset.ParseExact(text, "yyyyMMdd_HHmmss", CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal);

    /// <summary>The policy as the config file gives it (so the config's spelling is tested too).</summary>
    private static RetentionPolicy Policy(string mapping) =>
        ConfigLoader.Parse($"backup_dir: /b\nretention: {{{mapping}}}\n", "test.yaml").Retention!;

    private static string Line(RetentionDecision decision) => $"{decision.Backup.Key} -> {decision.Reason}";
}
