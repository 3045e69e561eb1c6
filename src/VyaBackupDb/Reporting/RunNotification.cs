using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using VyaBackupDb.Config;
using VyaBackupDb.Operations;

namespace VyaBackupDb.Reporting;

/// <summary>One database of a run, as a notification tells it.</summary>
/// <param name="Status">"ok", "failed", "locked" or "not_copied" (backed up, but not to every destination), as in `backup --json`; "interrupted" (under way when the run was stopped).</param>
/// <param name="Bytes">Stored (compressed, encrypted) size.</param>
/// <param name="File">Where the backup went (a path, or s3://..., sftp://...); null when it failed before.</param>
public sealed record RunItem(
    int InstanceId,
    string Instance,
    string Dbms,
    string Database,
    string Status,
    string? Error,
    long Bytes,
    long PlainBytes,
    double DurationSeconds,
    string? File);

/// <summary>
/// A finished run as its report (notification, metrics) tells it: the backups, what its later steps
/// (verify, prune) found wrong, and the run's exit code: a backup failure outranks theirs.
/// </summary>
public sealed record RunOutcome(BackupReport Backup, Errors.ExitCode ExitCode, IReadOnlyList<string> Problems)
{
    public RunOutcome(BackupReport backup)
        : this(backup, backup.ExitCode, [])
    {
    }

    /// <summary>This outcome after a later step failed: <paramref name="problem"/> says what (e.g. "pruning failed: ...").</summary>
    public RunOutcome Failed(Errors.ExitCode code, string problem) =>
        new(Backup, ExitCode == Errors.ExitCode.Success ? code : ExitCode, [.. Problems, problem]);
}

/// <summary>
/// What a backup run sends to its notifiers: one message per run. Also the webhook's JSON body
/// (snake_case names, stable: receivers parse them; null fields are written as null).
/// </summary>
/// <param name="Status">"ok", "partial_failure", "failed", "locked" or "vault_error": the exit code's meaning, as in `backup --json`; "interrupted" (Ctrl+C, SIGTERM: exit code 130).</param>
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
    long Bytes,
    string Text,
    IReadOnlyList<RunItem> Results)
{
    public bool HasFailures => Status != "ok";

    /// <summary>The message for a finished run (its duration is the backups').</summary>
    public static RunNotification From(BackupReport report, DateTimeOffset finishedUtc, string? host = null) => From(new RunOutcome(report), finishedUtc, host);

    /// <summary>The message for a finished run: its backups, and what its verify or prune steps found wrong.</summary>
    public static RunNotification From(RunOutcome outcome, DateTimeOffset finishedUtc, string? host = null) =>
        Create(outcome.ExitCode, [.. outcome.Backup.Results.Select(Item)], finishedUtc - outcome.Backup.Duration, finishedUtc, host, "", outcome.Problems);

    /// <summary>
    /// The message for a run stopped by Ctrl+C or SIGTERM: what finished, and the databases whose
    /// backup was under way (status "interrupted": nothing of theirs was kept).
    /// </summary>
    public static RunNotification Interrupted(
        IReadOnlyList<BackupItemResult> finished, IReadOnlyList<BackupItem> running, DateTimeOffset startedUtc, DateTimeOffset finishedUtc, string? host = null)
    {
        var items = finished.Select(Item)
            .Concat(running.Select(i => new RunItem(
                i.Instance.Id, i.Instance.Name, i.Instance.Dbms.ToName(), i.Database, "interrupted", RunTracker.InterruptedError, 0, 0, 0, null)))
            .ToList();
        return Create(Errors.ExitCode.Interrupted, items, startedUtc, finishedUtc, host, "interrupted: ", []);
    }

    private static RunItem Item(BackupItemResult r) => new(
        r.Instance.Id,
        r.Instance.Name,
        r.Instance.Dbms.ToName(),
        r.Database,
        r.Status,
        r.Error,
        r.StoredBytes,
        r.PlainBytes,
        Math.Round(r.Duration.TotalSeconds, 3),
        r.Location);

    private static RunNotification Create(
        Errors.ExitCode exitCode, List<RunItem> items, DateTimeOffset startedUtc, DateTimeOffset finishedUtc, string? host, string prefix,
        IReadOnlyList<string> problems)
    {
        var succeeded = items.Count(i => i.Status == "ok");
        var failed = items.Count - succeeded;
        host ??= Environment.MachineName;
        var failedNames = items.Where(i => i.Status != "ok").Select(i => Label(i)).ToList();
        var text = OneLine(string.Create(CultureInfo.InvariantCulture,
            $"vya-backupdb on {host}: {prefix}{succeeded} backed up, {failed} failed")
            + (failedNames.Count == 0 ? "" : " (" + string.Join(", ", failedNames.Take(10)) + (failedNames.Count > 10 ? ", ..." : "") + ")")
            + string.Concat(problems.Select(p => "; " + p)));
        return new RunNotification(
            "vya-backupdb",
            ToolInfo.Version,
            host,
            BackupReport.StatusName(exitCode),
            (int)exitCode,
            startedUtc,
            finishedUtc,
            Math.Round((finishedUtc - startedUtc).TotalSeconds, 3),
            succeeded,
            failed,
            items.Sum(i => i.Bytes),
            text,
            items);
    }

    /// <summary>
    /// The summary on one line, its control characters escaped (\n): a database named with a line break would otherwise
    /// add a line of its own choosing to what a chat shows ("ALL BACKED UP").
    /// </summary>
    private static string OneLine(string text)
    {
        var line = new System.Text.StringBuilder(text.Length);
        foreach (var c in text)
        {
            _ = c switch
            {
                '\n' => line.Append("\\n"),
                '\r' => line.Append("\\r"),
                '\t' => line.Append("\\t"),
                _ when char.IsControl(c) => line.Append(CultureInfo.InvariantCulture, $"\\u{(int)c:x4}"),
                _ => line.Append(c),
            };
        }
        return line.ToString();
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
