using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace VyaBackupDb.Retention;

/// <summary>
/// Which backups of a database to keep, like restic's <c>forget</c> policy. A rule that is not
/// given (null) keeps nothing by itself; a policy with no rule at all is "no policy": keep
/// everything. A backup is kept if any rule keeps it.
/// </summary>
public sealed record RetentionPolicy
{
    /// <summary>The N newest complete backups.</summary>
    public int? KeepLast { get; init; }

    /// <summary>The newest backup of each of the N most recent hours (UTC) that have backups.</summary>
    public int? KeepHourly { get; init; }

    /// <summary>The newest backup of each of the N most recent days (UTC calendar) that have backups.</summary>
    public int? KeepDaily { get; init; }

    /// <summary>The newest backup of each of the N most recent ISO weeks (Monday to Sunday, UTC) that have backups.</summary>
    public int? KeepWeekly { get; init; }

    /// <summary>The newest backup of each of the N most recent calendar months (UTC) that have backups.</summary>
    public int? KeepMonthly { get; init; }

    /// <summary>The newest backup of each of the N most recent calendar years (UTC) that have backups.</summary>
    public int? KeepYearly { get; init; }

    /// <summary>Every backup taken at or after now minus this duration.</summary>
    public RetentionDuration? KeepWithin { get; init; }

    /// <summary>No rule given: retention is off, prune keeps everything.</summary>
    public bool IsEmpty =>
        KeepLast is null && KeepHourly is null && KeepDaily is null && KeepWeekly is null
        && KeepMonthly is null && KeepYearly is null && KeepWithin is null;

    /// <summary>The rules as the config spells them, e.g. "keep_last=3, keep_daily=7, keep_within=30d".</summary>
    public string Describe()
    {
        var parts = new List<string>();
        void Add(string key, int? value)
        {
            if (value is { } n)
            {
                parts.Add(string.Create(CultureInfo.InvariantCulture, $"{key}={n}"));
            }
        }
        Add("keep_last", KeepLast);
        Add("keep_hourly", KeepHourly);
        Add("keep_daily", KeepDaily);
        Add("keep_weekly", KeepWeekly);
        Add("keep_monthly", KeepMonthly);
        Add("keep_yearly", KeepYearly);
        if (KeepWithin is { } within)
        {
            parts.Add($"keep_within={within}");
        }
        return parts.Count == 0 ? "no rule (keep everything)" : string.Join(", ", parts);
    }
}

/// <summary>
/// A duration for <c>keep_within</c>: one or more of a number and a unit, h (hours), d (days),
/// w (weeks), y (calendar years), e.g. <c>30d</c>, <c>12h</c>, <c>2w</c>, <c>1y</c>, <c>1y2w</c>.
/// </summary>
public sealed partial record RetentionDuration(int Years, int Weeks, int Days, int Hours)
{
    public const string Syntax = "a duration like 30d, 12h, 2w, 1y (units h, d, w, y; combined like 1y2w)";

    [GeneratedRegex(@"^(?:\d+[hdwy])+$", RegexOptions.CultureInvariant)]
    private static partial Regex Shape();

    [GeneratedRegex(@"(\d+)([hdwy])", RegexOptions.CultureInvariant)]
    private static partial Regex Part();

    public static bool TryParse(string text, out RetentionDuration duration)
    {
        duration = new RetentionDuration(0, 0, 0, 0);
        if (!Shape().IsMatch(text))
        {
            return false;
        }
        int years = 0, weeks = 0, days = 0, hours = 0;
        foreach (Match match in Part().Matches(text))
        {
            if (!int.TryParse(match.Groups[1].Value, NumberStyles.None, CultureInfo.InvariantCulture, out var n))
            {
                return false;
            }
            try
            {
                checked
                {
                    switch (match.Groups[2].Value)
                    {
                        case "y": years += n; break;
                        case "w": weeks += n; break;
                        case "d": days += n; break;
                        default: hours += n; break;
                    }
                }
            }
            catch (OverflowException)
            {
                return false;
            }
        }
        duration = new RetentionDuration(years, weeks, days, hours);
        return true;
    }

    /// <summary>now minus this duration (calendar years); the earliest time there is, if that is before year 1.</summary>
    public DateTime Before(DateTime nowUtc)
    {
        try
        {
            return nowUtc.AddYears(-Years).AddDays(-7.0 * Weeks - Days).AddHours(-Hours);
        }
        catch (ArgumentOutOfRangeException)
        {
            return DateTime.MinValue;
        }
    }

    public override string ToString()
    {
        var text = new StringBuilder();
        void Add(int n, char unit)
        {
            if (n != 0)
            {
                text.Append(n.ToString(CultureInfo.InvariantCulture)).Append(unit);
            }
        }
        Add(Years, 'y');
        Add(Weeks, 'w');
        Add(Days, 'd');
        Add(Hours, 'h');
        return text.Length == 0 ? "0h" : text.ToString();
    }
}
