using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using VyaBackupDb.Config;
using VyaBackupDb.Operations;

namespace VyaBackupDb.Reporting;

/// <summary>One database of a run, as a notification tells it.</summary>
/// <param name="Status">"ok", "failed" or "locked".</param>
/// <param name="File">Where the backup went (a path, or s3://..., sftp://...); null when it failed before.</param>
public sealed record RunItem(
    int InstanceId,
    string Instance,
    string Database,
    string Status,
    string? Error,
    long SizeBytes,
    long PlainBytes,
    double DurationSeconds,
    string? File);

/// <summary>
/// What a backup run sends to its notifiers: one message per run. Also the webhook's JSON body
/// (snake_case names, stable: receivers parse them; null fields are written as null).
/// </summary>
/// <param name="Status">"success", "partial_failure" or "failure".</param>
/// <param name="Text">A one-line summary (chat webhooks, e.g. Slack's and Mattermost's, show the <c>text</c> field).</param>
public sealed record RunNotification(
    string Tool,
    string ToolVersion,
    string Host,
    string Status,
    int ExitCode,
    DateTimeOffset StartedUtc,
    DateTimeOffset FinishedUtc,
    double DurationSeconds,
    int Succeeded,
    int Failed,
    long SizeBytes,
    string Text,
    IReadOnlyList<RunItem> Results)
{
    public bool HasFailures => Failed > 0 || Results.Count == 0;

    /// <summary>The message for a finished run.</summary>
    public static RunNotification From(BackupReport report, DateTimeOffset finishedUtc, string? host = null)
    {
        var items = report.Results.Select(r => new RunItem(
            r.Instance.Id,
            r.Instance.Name,
            r.Database,
            r.Succeeded ? "ok" : r.Locked ? "locked" : "failed",
            r.Error,
            r.StoredBytes,
            r.PlainBytes,
            Math.Round(r.Duration.TotalSeconds, 3),
            r.Location)).ToList();
        var succeeded = items.Count(i => i.Status == "ok");
        var failed = items.Count - succeeded;
        var status = failed == 0 && items.Count > 0 ? "success" : succeeded > 0 ? "partial_failure" : "failure";
        host ??= Environment.MachineName;
        var failedNames = items.Where(i => i.Status != "ok").Select(i => Label(i)).ToList();
        var text = string.Create(CultureInfo.InvariantCulture,
            $"vya-backupdb on {host}: {succeeded} backed up, {failed} failed")
            + (failedNames.Count == 0 ? "" : " (" + string.Join(", ", failedNames.Take(10)) + (failedNames.Count > 10 ? ", ..." : "") + ")");
        return new RunNotification(
            "vya-backupdb",
            ToolInfo.Version,
            host,
            status,
            (int)report.ExitCode,
            finishedUtc - report.Duration,
            finishedUtc,
            Math.Round(report.Duration.TotalSeconds, 3),
            succeeded,
            failed,
            items.Sum(i => i.SizeBytes),
            text,
            items);
    }

    /// <summary>instance/database ("*" when the instance failed before its databases were known).</summary>
    public static string Label(RunItem item) => $"{item.Instance}/{item.Database}";

    public byte[] ToJson() => JsonSerializer.SerializeToUtf8Bytes(this, NotificationJson.Default.RunNotification);

    public static RunNotification? FromJson(ReadOnlySpan<byte> json) => JsonSerializer.Deserialize(json, NotificationJson.Default.RunNotification);

    /// <summary>Whether <paramref name="on"/> asks for this run's message.</summary>
    public bool Wanted(NotifyOn on) => on == NotifyOn.Always || HasFailures;
}

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower)]
[JsonSerializable(typeof(RunNotification))]
internal sealed partial class NotificationJson : JsonSerializerContext;
