using System.Globalization;
using System.Net;
using System.Text;

namespace VyaBackupDb.Reporting;

/// <summary>
/// `status --html`: one self-contained page (inline CSS, inline SVG charts, no script, nothing
/// fetched), so it can be mailed, archived or opened from a file share.
/// </summary>
public static class StatusHtml
{
    private const int ChartWidth = 360;
    private const int ChartHeight = 140;
    private const int Left = 58;
    private const int Right = 12;
    private const int Top = 12;
    private const int Bottom = 26;

    private const string Style = """
        body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:1.5rem;color:#1f2328;background:#fff}
        h1{font-size:1.4rem;margin:0 0 .3rem}h2{font-size:1.05rem;margin:0 0 .5rem}
        .meta{color:#59636e;margin-bottom:1rem}
        table{border-collapse:collapse;margin-bottom:1.5rem;font-size:.9rem}
        th,td{border:1px solid #d1d9e0;padding:.3rem .55rem;text-align:left;white-space:nowrap}
        th{background:#f6f8fa}td.num{text-align:right;font-variant-numeric:tabular-nums}
        .badge{display:inline-block;padding:0 .45rem;border-radius:.6rem;font-size:.8rem;font-weight:600}
        .ok{background:#dafbe1;color:#116329}.overdue{background:#ffebe9;color:#a40e26}.off{background:#eaeef2;color:#59636e}
        .errors{background:#fff8c5;border:1px solid #d4a72c;padding:.5rem .8rem;margin-bottom:1rem}
        .cards{display:flex;flex-wrap:wrap;gap:1rem}
        .card{border:1px solid #d1d9e0;border-radius:.4rem;padding:.8rem}
        .charts{display:flex;gap:.8rem;flex-wrap:wrap}
        svg.chart{background:#fbfcfd;border:1px solid #eaeef2}
        svg.chart text{font-size:10px;fill:#59636e}
        svg.chart text.caption{font-size:11px;font-weight:600;fill:#1f2328}
        svg.chart .axis{stroke:#afb8c1;stroke-width:1}
        svg.chart .line{fill:none;stroke-width:2}
        svg.size-chart .line{stroke:#0969da}svg.size-chart circle{fill:#0969da}
        svg.duration-chart .line{stroke:#8250df}svg.duration-chart circle{fill:#8250df}
        """;

    public static string Render(StatusReport report)
    {
        var html = new StringBuilder();
        html.Append("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n")
            .Append("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n")
            .Append("<title>vya-backupdb status: ").Append(E(report.Host)).Append("</title>\n<style>\n").Append(Style).Append("</style>\n</head>\n<body>\n");
        html.Append("<h1>Backup status</h1>\n<p class=\"meta\">")
            .Append(E(report.Host)).Append(", ").Append(E(Time(report.GeneratedUtc))).Append(" UTC: ")
            .Append(Count(report.Databases.Count, "database")).Append(", ")
            .Append(report.OverdueCount == 0 ? "none overdue" : $"<strong>{report.OverdueCount} overdue</strong>").Append("</p>\n");
        if (report.Errors.Count > 0)
        {
            html.Append("<div class=\"errors\">");
            foreach (var error in report.Errors)
            {
                html.Append(E(error)).Append("<br>");
            }
            html.Append("</div>\n");
        }
        html.Append("<table>\n<thead><tr><th>Instance</th><th>Database</th><th>State</th><th>Last backup (UTC)</th><th>Age</th>")
            .Append("<th>Expected every</th><th>Size</th><th>Duration</th><th>Backups</th><th>Last verified</th></tr></thead>\n<tbody>\n");
        foreach (var row in report.Databases)
        {
            html.Append("<tr><td>").Append(E(row.Instance)).Append("</td><td>").Append(E(row.Database ?? "(no backup)")).Append("</td><td>")
                .Append(Badge(row)).Append("</td><td>").Append(E(row.LastBackupUtc is { } at ? Time(at) : "never")).Append("</td><td class=\"num\">")
                .Append(E(row.AgeSeconds is { } age ? Age(age) : "")).Append("</td><td class=\"num\">").Append(E(Age(row.ExpectedEverySeconds)))
                .Append("</td><td class=\"num\">").Append(E(row.LastSizeBytes is { } size ? Size(size) : "")).Append("</td><td class=\"num\">")
                .Append(E(row.LastDurationSeconds is { } seconds ? Age(seconds) : "")).Append("</td><td class=\"num\">")
                .Append(E(Backups(row))).Append("</td><td>")
                .Append(E(row.LastVerifiedUtc is { } verified ? Time(verified) + (row.NewestVerified ? " (newest)" : "") : "never")).Append("</td></tr>\n");
        }
        html.Append("</tbody>\n</table>\n<div class=\"cards\">\n");
        foreach (var row in report.Databases.Where(r => r.History.Count > 0))
        {
            var label = $"{row.Instance}/{row.Database}";
            html.Append("<section class=\"card\" data-database=\"").Append(E(label)).Append("\">\n<h2>").Append(E(label)).Append("</h2>\n<div class=\"charts\">\n");
            Chart(html, "size-chart", "stored size", $"Stored size of {label}", row.History, p => p.SizeBytes, v => Size((long)v));
            Chart(html, "duration-chart", "duration", $"Backup duration of {label}", row.History, p => p.DurationSeconds, Age);
            html.Append("</div>\n</section>\n");
        }
        html.Append("</div>\n</body>\n</html>\n");
        return html.ToString();
    }

    /// <summary>A line chart of one value over the backups' times: y from 0 to the largest value, a dot per backup with its value as a tooltip.</summary>
    private static void Chart(StringBuilder html, string kind, string caption, string title, IReadOnlyList<StatusPoint> points, Func<StatusPoint, double> value, Func<double, string> format)
    {
        const int plotWidth = ChartWidth - Left - Right;
        const int plotHeight = ChartHeight - Top - Bottom;
        var max = Math.Max(points.Max(value), 1e-9);
        var first = points[0].TimeUtc;
        var span = Math.Max((points[^1].TimeUtc - first).TotalSeconds, 1);
        double X(StatusPoint p) => points.Count == 1 ? Left + (plotWidth / 2.0) : Left + (plotWidth * (p.TimeUtc - first).TotalSeconds / span);
        double Y(StatusPoint p) => Top + plotHeight - (plotHeight * value(p) / max);
        html.Append(CultureInfo.InvariantCulture,
            $"<svg class=\"chart {kind}\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{ChartWidth}\" height=\"{ChartHeight}\" viewBox=\"0 0 {ChartWidth} {ChartHeight}\" role=\"img\" aria-label=\"{E(title)}\">\n");
        html.Append("<title>").Append(E(title)).Append("</title>\n");
        html.Append(CultureInfo.InvariantCulture, $"<line class=\"axis\" x1=\"{Left}\" y1=\"{Top}\" x2=\"{Left}\" y2=\"{Top + plotHeight}\"/>")
            .Append(CultureInfo.InvariantCulture, $"<line class=\"axis\" x1=\"{Left}\" y1=\"{Top + plotHeight}\" x2=\"{Left + plotWidth}\" y2=\"{Top + plotHeight}\"/>\n");
        html.Append(CultureInfo.InvariantCulture, $"<text x=\"{Left - 4}\" y=\"{Top + 8}\" text-anchor=\"end\">{E(format(max))}</text>")
            .Append(CultureInfo.InvariantCulture, $"<text x=\"{Left - 4}\" y=\"{Top + plotHeight}\" text-anchor=\"end\">0</text>\n");
        html.Append(CultureInfo.InvariantCulture, $"<text class=\"caption\" x=\"{Left + plotWidth}\" y=\"{Top + 8}\" text-anchor=\"end\">{E(caption)}</text>\n");
        html.Append(CultureInfo.InvariantCulture, $"<text x=\"{Left}\" y=\"{ChartHeight - 8}\">{E(Day(first))}</text>");
        if (points.Count > 1)
        {
            html.Append(CultureInfo.InvariantCulture, $"<text x=\"{Left + plotWidth}\" y=\"{ChartHeight - 8}\" text-anchor=\"end\">{E(Day(points[^1].TimeUtc))}</text>");
        }
        html.Append('\n');
        html.Append("<polyline class=\"line\" points=\"")
            .AppendJoin(' ', points.Select(p => string.Create(CultureInfo.InvariantCulture, $"{X(p):0.#},{Y(p):0.#}")))
            .Append("\"/>\n");
        foreach (var p in points)
        {
            html.Append(CultureInfo.InvariantCulture, $"<circle cx=\"{X(p):0.#}\" cy=\"{Y(p):0.#}\" r=\"3\"><title>{E(Time(p.TimeUtc))}: {E(format(value(p)))}</title></circle>\n");
        }
        html.Append("</svg>\n");
    }

    private static string Badge(DatabaseStatus row) =>
        !row.Enabled ? "<span class=\"badge off\">disabled</span>"
        : row.Overdue ? $"<span class=\"badge overdue\">{(row.LastBackupUtc is null ? "no backup" : "overdue")}</span>"
        : "<span class=\"badge ok\">ok</span>";

    /// <summary>The intact backups, and the files that are not (the text table's and the page's alike).</summary>
    public static string Backups(DatabaseStatus row) =>
        row.Backups.ToString(CultureInfo.InvariantCulture) + (row.Incomplete > 0 ? $" (+{row.Incomplete} incomplete)" : "")
        + (row.Damaged > 0 ? $" (+{row.Damaged} damaged)" : "");

    private static string E(string text) => WebUtility.HtmlEncode(text);

    private static string Time(DateTimeOffset time) => time.UtcDateTime.ToString("yyyy-MM-dd HH:mm", CultureInfo.InvariantCulture);

    private static string Day(DateTimeOffset time) => time.UtcDateTime.ToString("MM-dd HH:mm", CultureInfo.InvariantCulture);

    private static string Count(int n, string what) => $"{n} {what}{(n == 1 ? "" : "s")}";

    /// <summary>Seconds as "42 s", "12 min", "5.2 h", "3.1 d".</summary>
    public static string Age(double seconds) =>
        seconds < 60 ? string.Create(CultureInfo.InvariantCulture, $"{seconds:0.#} s")
        : seconds < 3600 ? string.Create(CultureInfo.InvariantCulture, $"{seconds / 60:0} min")
        : seconds < 48 * 3600 ? string.Create(CultureInfo.InvariantCulture, $"{seconds / 3600:0.#} h")
        : string.Create(CultureInfo.InvariantCulture, $"{seconds / 86400:0.#} d");

    public static string Size(long bytes)
    {
        string[] units = ["B", "KiB", "MiB", "GiB", "TiB"];
        double value = bytes;
        var unit = 0;
        while (value >= 1024 && unit < units.Length - 1)
        {
            value /= 1024;
            unit++;
        }
        return unit == 0 ? $"{bytes} B" : value.ToString("0.0", CultureInfo.InvariantCulture) + " " + units[unit];
    }
}
