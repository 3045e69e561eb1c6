using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using Spectre.Console;
using Spectre.Console.Rendering;
using VyaBackupDb.Config;
using VyaBackupDb.Errors;
using VyaBackupDb.Operations;

namespace VyaBackupDb.Cli.Commands;

/// <summary>
/// `backup --json`: the whole run as one document. Snake_case names, stable (scripts and
/// monitoring read them); sizes in bytes, durations in seconds, times in UTC.
/// </summary>
/// <param name="Status">ok | partial_failure | failed | locked | vault_error (the exit code's meaning).</param>
internal sealed record BackupRunJson(
    string Status,
    int ExitCode,
    DateTime StartedUtc,
    DateTime FinishedUtc,
    double DurationSeconds,
    int Parallel,
    int Succeeded,
    int Failed,
    long Bytes,
    string? Error,
    List<BackupResultJson> Results);

/// <param name="Status">ok | failed | locked | not_copied (backed up, but not to every destination) | planned (--dry-run).</param>
/// <param name="File">Where the backup is (its first destination), or where it would go (--dry-run); null when it failed.</param>
/// <param name="Bytes">Stored (compressed, encrypted) size.</param>
internal sealed record BackupResultJson(
    int InstanceId,
    string Instance,
    string Dbms,
    string Database,
    string Status,
    string? Error,
    long Bytes,
    long PlainBytes,
    double DurationSeconds,
    DateTime? StartedUtc,
    DateTime? FinishedUtc,
    string? File,
    List<string> Destinations,
    List<string> FailedDestinations,
    List<string> Copies);

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower, WriteIndented = true)]
[JsonSerializable(typeof(BackupRunJson))]
internal sealed partial class BackupJson : JsonSerializerContext;

/// <summary>
/// What `backup` shows as it goes: a live line per running job on a terminal (percentage and
/// time left against the size the server reports, redrawn twice a second), else log lines (one
/// per job every 30 s). Called from several threads at once with --parallel.
/// </summary>
internal sealed class ConsoleBackupObserver : IBackupObserver, IDisposable
{
    private readonly Lock _lock = new();
    private readonly List<Job> _running = [];
    private readonly List<BackupItem> _planned = [];
    private readonly Timer _timer;
    private bool _done;

    public ConsoleBackupObserver()
    {
        var period = Output.IsLive ? TimeSpan.FromMilliseconds(500) : TimeSpan.FromSeconds(30);
        _timer = new Timer(_ => Tick(), null, period, period);
    }

    /// <summary>What a dry run would back up, in order (for --json).</summary>
    public IReadOnlyList<BackupItem> Planned
    {
        get
        {
            lock (_lock)
            {
                return [.. _planned];
            }
        }
    }

    /// <summary>--json: the plan goes into the document, not onto stdout line by line.</summary>
    public bool Json { get; init; }

    void IBackupObserver.Planned(BackupItem item)
    {
        lock (_lock)
        {
            _planned.Add(item);
        }
        if (!Json)
        {
            Output.Line($"would back up instance {item.Instance.Id} ({item.Instance.Name}) {What(item.Instance, item.Database)} to {item.Location}"
                + (item.Copies is { Count: > 0 } copies ? $", then copy it to {string.Join(", ", copies)}" : ""));
        }
    }

    public void Started(BackupItem item, Func<long> storedBytesSoFar, Func<long> plainBytesSoFar)
    {
        if (!Output.IsLive)
        {
            Output.Log($"backing up {Label(item.Instance, item.Database)} to {item.Location}"
                + (item.ExpectedBytes is { } size ? $" (the server reports {Output.Size(size)})" : ""), item.Instance, item.Database);
        }
        lock (_lock)
        {
            _running.Add(new Job(item, storedBytesSoFar, plainBytesSoFar, Stopwatch.StartNew()));
        }
        Redraw();
    }

    public void Finished(BackupItemResult result)
    {
        lock (_lock)
        {
            _running.RemoveAll(j => j.Item.Instance == result.Instance && j.Item.Database == result.Database);
        }
        Redraw();
        var what = Label(result.Instance, result.Database);
        if (result.Succeeded)
        {
            Output.Log($"ok     {what}: {Output.Size(result.StoredBytes)} ({Output.Size(result.PlainBytes)} of {(result.Instance.Dbms == Dbms.Files ? "tar" : "SQL")}) in {Output.Duration(result.Duration)} -> {result.Location}"
                + (result.Copies is { Count: > 0 } copies ? $", copied to {string.Join(", ", copies)}" : ""), result.Instance, result.Database);
        }
        else
        {
            Output.Log($"FAILED {what}: {result.Error}", result.Instance, result.Database == "*" ? null : result.Database, failure: true);
        }
    }

    public void Warning(string message) => Output.Warning(message);

    /// <summary>Stops the progress display (also on Ctrl+C, before the error line).</summary>
    public void Dispose()
    {
        _timer.Dispose();
        lock (_lock)
        {
            _done = true;
            _running.Clear();
            Output.SetLive([]);
        }
    }

    private void Tick()
    {
        if (Output.IsLive)
        {
            Redraw();
            return;
        }
        List<(Job Job, string Text)> lines;
        lock (_lock)
        {
            lines = [.. _running.Select(j => (j, Describe(j)))];
        }
        foreach (var (job, text) in lines)
        {
            Output.Log(text, job.Item.Instance, job.Item.Database);
        }
    }

    /// <summary>Under the lock, so that a late timer tick cannot draw lines again after <see cref="Dispose"/> (Output never calls back here).</summary>
    private void Redraw()
    {
        lock (_lock)
        {
            if (!_done)
            {
                Output.SetLive([.. _running.Select(Describe)]);
            }
        }
    }

    /// <summary>"it-pg/shop: 42% 1.2 GiB of ~2.9 GiB (310.4 MiB stored), 25.3 MiB/s, 0:48, ~1:07 left".</summary>
    private static string Describe(Job job)
    {
        long plain;
        long stored;
        try
        {
            plain = job.PlainBytes();
            stored = job.StoredBytes();
        }
        catch (Exception e) when (e is ObjectDisposedException or NotSupportedException or InvalidOperationException or IOException)
        {
            // The streams it measures are gone (the job is ending): a timer callback must never throw.
            return $"{Label(job.Item.Instance, job.Item.Database)}: finishing";
        }
        var elapsed = job.Clock.Elapsed;
        var rate = plain / Math.Max(elapsed.TotalSeconds, 0.001);
        var done = Output.Size(plain);
        var left = "";
        if (job.Item.ExpectedBytes is > 0 and var expected)
        {
            // The server's figure is an estimate (indexes, free space, TOAST): never 100% before the end.
            var percent = Math.Min(99, (int)(100.0 * plain / expected));
            done = $"{percent.ToString(CultureInfo.InvariantCulture),2}% {Output.Size(plain)} of ~{Output.Size(expected)}";
            if (plain < expected && rate > 0 && elapsed > TimeSpan.FromSeconds(2))
            {
                left = $", ~{Output.Duration(TimeSpan.FromSeconds((expected - plain) / rate))} left";
            }
        }
        return $"{Label(job.Item.Instance, job.Item.Database)}: {done} ({Output.Size(stored)} stored), "
            + $"{Output.Size((long)rate)}/s, {Output.Duration(elapsed)}{left}";
    }

    /// <summary>instance/database, or a files instance's name.</summary>
    internal static string Label(InstanceConfig instance, string database) =>
        instance.Dbms == Dbms.Files ? instance.Name : $"{instance.Name}/{database}";

    /// <summary>A database, or a files instance's paths.</summary>
    private static string What(InstanceConfig instance, string database) =>
        instance.Dbms == Dbms.Files ? $"paths {string.Join(", ", instance.Paths)}" : $"database '{database}'";

    private sealed record Job(BackupItem Item, Func<long> StoredBytes, Func<long> PlainBytes, Stopwatch Clock);
}

/// <summary>The end of a run: a results table (terminal) or aligned lines (pipes), the summary line, or the --json document.</summary>
internal static class BackupResults
{
    /// <summary>Error messages quote names ('db'): kept readable, not \u0027-escaped.</summary>
    private static readonly BackupJson JsonContext = new(new JsonSerializerOptions(BackupJson.Default.Options)
    {
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    });

    private static readonly string[] Headers = ["INSTANCE", "DATABASE", "STATUS", "SIZE", "DURATION", "FILE / ERROR"];

    public static void Print(BackupReport report)
    {
        if (report.Results.Count > 0)
        {
            Output.Table(Headers, [.. report.Results.Select(Cells)]);
        }
        var succeeded = report.Results.Count(r => r.Succeeded);
        var failed = report.Results.Count - succeeded;
        var uncopied = report.Results.Count(r => !r.Succeeded && r.Location is not null);
        var size = report.Results.Sum(r => r.StoredBytes);
        Output.Line($"backup summary: {succeeded} succeeded, {failed} failed"
            + (uncopied == 0 ? "" : $" ({uncopied} of them backed up, but not to every destination)")
            + $", {Output.Size(size)} written, {Output.Duration(report.Duration)}");
        if (report.Results.Count == 0)
        {
            Output.Error("nothing was backed up");
        }
    }

    /// <param name="stopped">The run was stopped (Ctrl+C, SIGTERM): its code, whatever its results.</param>
    public static void PrintJson(
        BackupReport report, IReadOnlyList<BackupItem> planned, IReadOnlyList<InstanceConfig> instances, int parallel, DateTime startedUtc,
        ExitCode? stopped = null)
    {
        var results = report.Results.Select(Json)
            .Concat(planned.Select(p => new BackupResultJson(p.Instance.Id, p.Instance.Name, p.Instance.Dbms.ToName(), p.Database, "planned", null,
                0, 0, 0, null, null, p.Location, [], [], [.. p.Copies ?? []])))
            // A dry run's failures (probes) and plans, in the run's order.
            .OrderBy(r => instances.ToList().FindIndex(i => i.Id == r.InstanceId))
            .ToList();
        var code = stopped ?? (planned.Count > 0 && report.Results.Count == 0 ? ExitCode.Success : report.ExitCode);
        var document = new BackupRunJson(
            BackupReport.StatusName(code),
            (int)code,
            startedUtc,
            startedUtc + report.Duration,
            Math.Round(report.Duration.TotalSeconds, 3),
            parallel,
            report.Results.Count(r => r.Succeeded),
            report.Results.Count(r => !r.Succeeded),
            report.Results.Sum(r => r.StoredBytes),
            null,
            results);
        Output.Json(JsonSerializer.Serialize(document, JsonContext.BackupRunJson));
    }

    /// <summary>The document of a run that did not start (a usage or config error): no results, the error.</summary>
    public static void PrintJsonNotStarted(VyaException error, int parallel, DateTime startedUtc)
    {
        var document = new BackupRunJson(BackupReport.StatusName(error.ExitCode), (int)error.ExitCode, startedUtc, DateTime.UtcNow, 0, parallel, 0, 0, 0,
            error.Message, []);
        Output.Json(JsonSerializer.Serialize(document, JsonContext.BackupRunJson));
    }

    private static BackupResultJson Json(BackupItemResult r) => new(
        r.Instance.Id,
        r.Instance.Name,
        r.Instance.Dbms.ToName(),
        r.Database,
        r.Status,
        r.Error,
        r.StoredBytes,
        r.PlainBytes,
        Math.Round(r.Duration.TotalSeconds, 3),
        r.StartedUtc?.UtcDateTime,
        r.FinishedUtc?.UtcDateTime,
        r.Location,
        [.. r.Destinations],
        [.. r.FailedDestinations],
        [.. r.Copies ?? []]);

    private static string[] Cells(BackupItemResult r) =>
    [
        $"{r.Instance.Name} ({r.Instance.Id.ToString(CultureInfo.InvariantCulture)})",
        r.Instance.Dbms == Dbms.Files ? "(files)" : r.Database,
        r.Status,
        r.Succeeded || r.Location is not null ? Output.Size(r.StoredBytes) : "-",
        Output.Duration(r.Duration),
        r.Error is null ? r.Location ?? "" : r.Location is null ? r.Error : $"{r.Location}; {r.Error}",
    ];
}
