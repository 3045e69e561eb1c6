using System.CommandLine;
using System.Globalization;
using System.Text;
using Spectre.Console;
using Spectre.Console.Rendering;
using VyaBackupDb.Config;
using VyaBackupDb.Errors;
using VyaBackupDb.Reporting;
using VyaBackupDb.Storage;

namespace VyaBackupDb.Cli.Commands;

/// <summary>`status`: per instance and database, the last backup, its age against the expected interval, trends, last verify; what is overdue.</summary>
internal static class StatusCommand
{
    public static Command Create()
    {
        var instance = new Option<int?>("--instance", "-i") { Description = "Only this instance (its id in the config)" };
        var json = new Option<bool>("--json") { Description = "Print the report as JSON (for scripts)" };
        var html = new Option<string?>("--html") { Description = "Also write the report as one self-contained HTML page (charts of size and duration) to this file" };
        var last = new Option<int>("--last") { Description = "How many backups of each database the trends and charts show (default 10)", DefaultValueFactory = _ => 10 };

        var command = new Command("status", "Show the last backup of each database, its age against the expected interval, and what is overdue")
        {
            instance, json, html, last,
        };
        command.SetAction((parseResult, cancellationToken) => CommonOptions.RunAsync(async () =>
        {
            var config = CommonOptions.LoadConfig(parseResult);
            var depth = parseResult.GetValue(last);
            if (depth is < 1 or > 1000)
            {
                throw new UsageException("--last: give a number between 1 and 1000");
            }
            var htmlPath = parseResult.GetValue(html);
            CommonOptions.RequireOutputFile("--html", htmlPath);
            IReadOnlyList<InstanceConfig> instances = parseResult.GetValue(instance) is { } id ? [config.GetInstance(id)] : config.Instances;
            using var storages = new StorageSet(config);
            var report = await StatusReport.BuildAsync(instances, storages.For, depth, TimeProvider.System.GetUtcNow(), cancellationToken)
                .ConfigureAwait(false);
            foreach (var error in report.Errors)
            {
                Output.Error(error);
            }
            if (htmlPath is not null)
            {
                await ReportFile.WriteAsync(htmlPath, StatusHtml.Render(report), cancellationToken).ConfigureAwait(false);
            }
            if (parseResult.GetValue(json))
            {
                Output.Json(Encoding.UTF8.GetString(report.ToJson()));
            }
            else
            {
                // The status column in red for a database overdue.
                Output.Table(Headers, [.. report.Databases.Select(Cells)],
                    (row, column) => column == 2 && report.Databases[row].Overdue ? new Style(Color.Red) : Style.Plain);
            }
            if (!parseResult.GetValue(json))
            {
                Output.Line(report.OverdueCount == 0
                    ? $"nothing overdue ({report.Databases.Count} database{(report.Databases.Count == 1 ? "" : "s")})"
                    : $"{report.OverdueCount} overdue: {string.Join(", ", report.Databases.Where(d => d.Overdue).Select(d => $"{d.Instance}/{d.Database ?? "(no backup)"}"))}");
            }
            // Overdue outranks a destination that could not be read (that one was named above).
            return report.OverdueCount > 0 ? ExitCode.Overdue : report.Errors.Count > 0 ? ExitCode.Failed : ExitCode.Success;
        }, cancellationToken));
        return command;
    }

    private static readonly string[] Headers = ["INSTANCE", "DATABASE", "STATE", "LAST BACKUP (UTC)", "AGE", "EXPECTED", "SIZE", "DURATION", "BACKUPS", "LAST VERIFIED"];

    private static string[] Cells(DatabaseStatus row) =>
    [
        $"{row.Instance} ({row.InstanceId.ToString(CultureInfo.InvariantCulture)})",
        row.Database ?? "(no backup)",
        !row.Enabled ? "disabled" : row.Overdue ? (row.LastBackupUtc is null ? "NO BACKUP" : "OVERDUE") : "ok",
        row.LastBackupUtc?.UtcDateTime.ToString("yyyy-MM-dd HH:mm", CultureInfo.InvariantCulture) ?? "never",
        row.AgeSeconds is { } age ? StatusHtml.Age(age) : "",
        StatusHtml.Age(row.ExpectedEverySeconds),
        row.LastSizeBytes is { } size ? $"{Output.Size(size)} {Trend(row.History.Select(p => (double)p.SizeBytes))}" : "",
        row.LastDurationSeconds is { } seconds ? $"{StatusHtml.Age(seconds)} {Trend(row.History.Select(p => p.DurationSeconds))}" : "",
        StatusHtml.Backups(row),
        row.LastVerifiedUtc is { } verified
            ? verified.UtcDateTime.ToString("yyyy-MM-dd HH:mm", CultureInfo.InvariantCulture) + (row.NewestVerified ? " (newest)" : " (older)")
            : "never",
    ];

    /// <summary>A sparkline of the last backups, oldest first (one block per backup, scaled to the largest).</summary>
    private static string Trend(IEnumerable<double> values)
    {
        var list = values.ToList();
        if (list.Count < 2)
        {
            return "";
        }
        const string blocks = "▁▂▃▄▅▆▇█";
        var max = list.Max();
        return max <= 0 ? new string(blocks[0], list.Count) : new string([.. list.Select(v => blocks[(int)Math.Round(v / max * (blocks.Length - 1))])]);
    }
}
