using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using VyaBackupDb.Config;
using VyaBackupDb.Operations;
using VyaBackupDb.Storage;

namespace VyaBackupDb.Reporting;

/// <summary>The metrics of one database (label values: instance id and name, database).</summary>
/// <param name="LastSuccessUtc">From the newest complete backup in storage (any runner's).</param>
/// <param name="Backups">Intact backups in storage (as list and prune judge them).</param>
/// <param name="LastStatus">1 when the last run (of this runner) that backed it up succeeded, 0 when it failed; null: not known here.</param>
/// <param name="Failures">Failed backups counted by this runner, since its metrics file (or process) began.</param>
/// <param name="OverdueFromUtc">From when it is overdue, as status judges it (the Unix epoch: no backup); null: never (disabled, no longer selected).</param>
public sealed record DatabaseMetrics(
    int InstanceId,
    string Instance,
    string Database,
    DateTimeOffset? LastSuccessUtc = null,
    double? LastSuccessDurationSeconds = null,
    long? LastSuccessSizeBytes = null,
    int? Backups = null,
    int? LastStatus = null,
    DateTimeOffset? LastRunUtc = null,
    long Failures = 0,
    DateTimeOffset? OverdueFromUtc = null);

/// <summary>The totals of the last run.</summary>
public sealed record RunMetrics(DateTimeOffset FinishedUtc, double DurationSeconds, int Succeeded, int Failed, long SizeBytes, int ExitCode, long Runs);

public sealed record MetricsSnapshot(IReadOnlyList<DatabaseMetrics> Databases, RunMetrics? LastRun)
{
    public static MetricsSnapshot Empty { get; } = new([], null);
}

/// <summary>
/// Prometheus metrics in the text exposition format (as node_exporter's textfile collector reads
/// them, and as an HTTP /metrics endpoint serves them).
/// <para>
/// Where the values come from: the last success, its duration and size, and the backup count are
/// read from the manifests in the storage (<see cref="BackupHistory"/>), so they cover every
/// instance of the config and every runner that shares the storage, whichever instances this run
/// backed up. The last status and the failure counter are what this runner saw: carried over from
/// the previous snapshot (the previous metrics file, or the scheduler's memory) and updated with the run.
/// </para>
/// Labels are <c>instance_id</c>, <c>instance_name</c> and <c>database</c>: not <c>instance</c>,
/// which Prometheus sets to the scraped target.
/// </summary>
public static partial class Metrics
{
    public const string Prefix = "vya_backupdb_";

    /// <summary>
    /// The snapshot after <paramref name="run"/> (null: no run, just the storage's view):
    /// <paramref name="previous"/> updated from the storage and the run. A destination that cannot
    /// be listed is a warning; its databases keep their previous values.
    /// </summary>
    public static async Task<MetricsSnapshot> CollectAsync(
        IReadOnlyList<InstanceConfig> instances, Func<InstanceConfig, IReadOnlyList<NamedStorage>> destinations, RunOutcome? run,
        MetricsSnapshot? previous, DateTimeOffset now, Action<string> warning, CancellationToken cancellationToken)
    {
        previous ??= MetricsSnapshot.Empty;
        var byKey = new Dictionary<(string Instance, string Database), DatabaseMetrics>();
        foreach (var old in previous.Databases)
        {
            // An instance gone from the config (or renamed) takes its series with it.
            if (instances.FirstOrDefault(i => i.Name == old.Instance) is { } instance)
            {
                byKey[(old.Instance, old.Database)] = old with { InstanceId = instance.Id };
            }
        }
        foreach (var instance in instances)
        {
            // A few: the newest not dated after now is the last success (as status takes it).
            var history = await BackupHistory.ReadAsync(instance, destinations(instance), depth: 3, cancellationToken).ConfigureAwait(false);
            foreach (var error in history.Errors)
            {
                warning($"metrics: instance {instance.Id} ({instance.Name}): {error}; its backups there are not counted (each count keeps its last value where that is higher)");
            }
            foreach (var database in history.Databases)
            {
                var current = byKey.GetValueOrDefault((instance.Name, database.Database)) ?? new DatabaseMetrics(instance.Id, instance.Name, database.Database);
                // With a destination not read, the count is of the others only: the last one stands where it is higher.
                var backups = history.Errors.Count > 0 ? Math.Max(current.Backups ?? 0, database.Intact) : database.Intact;
                foreach (var future in StatusReport.FutureBackups(database, now))
                {
                    warning($"metrics: instance {instance.Id} ({instance.Name}): {StatusReport.FromTheFuture(future)}");
                }
                var last = StatusReport.LastBackup(database, now);
                byKey[(instance.Name, database.Database)] = last is not null
                    ? current with
                    {
                        LastSuccessUtc = last.FinishedUtc,
                        LastSuccessDurationSeconds = Math.Round(last.Duration.TotalSeconds, 3),
                        LastSuccessSizeBytes = last.StoredBytes,
                        Backups = backups,
                        OverdueFromUtc = StatusReport.OverdueFrom(instance, database.Database, last),
                    }
                    // Only damaged or incomplete copies: no last success (tr107: a damaged backup's stood), as in status.
                    : history.Errors.Count == 0 ? NoBackup(current, instance)
                    : current with { Backups = backups };
            }
            if (history.Errors.Count == 0)
            {
                // Every destination was read: what is not there any more has no last success, and a database include
                // names, or a files instance, that has never been backed up has its series too, overdue (tr107: an
                // instance no run ever backed up had none, and no alert could fire).
                IReadOnlyList<string> expected = !instance.Enabled ? []
                    : instance.Dbms == Dbms.Files ? [instance.Name]
                    : DatabaseSelector.Named(instance) is { Count: > 0 } named ? named
                    : byKey.Keys.Any(k => k.Instance == instance.Name) ? [] : ["*"];
                foreach (var name in expected.Where(n => !byKey.ContainsKey((instance.Name, n))))
                {
                    byKey[(instance.Name, name)] = new DatabaseMetrics(instance.Id, instance.Name, name);
                }
                foreach (var key in byKey.Keys.Where(k => k.Instance == instance.Name && history.Databases.All(d => d.Database != k.Database)).ToList())
                {
                    byKey[key] = NoBackup(byKey[key], instance);
                }
            }
        }
        var lastRun = previous.LastRun;

        // "*" stands for an instance's databases before any is known: overdue only while none is.
        DatabaseMetrics NoBackup(DatabaseMetrics current, InstanceConfig instance) => current with
        {
            LastSuccessUtc = null,
            LastSuccessDurationSeconds = null,
            LastSuccessSizeBytes = null,
            Backups = 0,
            OverdueFromUtc = current.Database == "*" && byKey.Keys.Any(k => k.Instance == instance.Name && k.Database != "*")
                ? null
                : StatusReport.OverdueFrom(instance, current.Database == "*" ? null : current.Database, last: null),
        };

        if (run?.Backup is { } report)
        {
            // A database another runner was backing up (locked) is that runner's to report: no failure of this one.
            foreach (var result in report.Results.Where(r => !r.Locked))
            {
                var name = result.Instance.Name;
                List<(string, string)> keys = result.Database == "*"
                    // The instance failed before its databases were known: each known one failed.
                    ? [.. byKey.Keys.Where(k => k.Instance == name && k.Database != "*")]
                    : [(name, result.Database)];
                if (keys.Count == 0)
                {
                    keys.Add((name, "*"));
                }
                foreach (var key in keys)
                {
                    var current = byKey.GetValueOrDefault(key) ?? new DatabaseMetrics(result.Instance.Id, name, key.Item2);
                    byKey[key] = current with
                    {
                        LastStatus = result.Succeeded ? 1 : 0,
                        LastRunUtc = now,
                        Failures = current.Failures + (result.Succeeded ? 0 : 1),
                    };
                }
                if (result.Database != "*")
                {
                    // The instance answered: its placeholder series of an earlier failure goes.
                    byKey.Remove((name, "*"));
                }
            }
            var succeeded = report.Results.Count(r => r.Succeeded);
            lastRun = new RunMetrics(now, Math.Round(report.Duration.TotalSeconds, 3), succeeded, report.Results.Count - succeeded,
                report.Results.Sum(r => r.StoredBytes), (int)run.ExitCode, (previous.LastRun?.Runs ?? 0) + 1);
        }
        var order = instances.Select((instance, index) => (instance.Name, index)).ToDictionary(x => x.Name, x => x.index, StringComparer.Ordinal);
        return new MetricsSnapshot(
            [.. byKey.Values.OrderBy(d => order.GetValueOrDefault(d.Instance, int.MaxValue)).ThenBy(d => d.Database, StringComparer.Ordinal)],
            lastRun);
    }

    private sealed record Family(string Name, string Type, string Help);

    private static readonly Family LastSuccess = new("last_success_timestamp_seconds", "gauge", "When the newest complete backup of the database finished (Unix time), from the manifests in storage.");
    private static readonly Family LastDuration = new("last_success_duration_seconds", "gauge", "How long the newest complete backup took.");
    private static readonly Family LastSize = new("last_success_size_bytes", "gauge", "Stored size of the newest complete backup.");
    private static readonly Family BackupsCount = new("backups", "gauge", "Intact backups of the database in storage.");
    private static readonly Family LastStatus = new("last_status", "gauge", "1 if the last backup of the database by this runner succeeded, 0 if it failed.");
    private static readonly Family LastRun = new("last_run_timestamp_seconds", "gauge", "When this runner last backed up the database (Unix time), whatever the outcome.");
    private static readonly Family Failures = new("failures_total", "counter", "Failed backups of the database counted by this runner.");
    private static readonly Family OverdueFrom = new("overdue_timestamp_seconds", "gauge", "From when the database is overdue, as status judges it (Unix time; 0: it has no backup). None for a disabled instance.");
    private static readonly Family RunTime = new("run_timestamp_seconds", "gauge", "When the last backup run finished (Unix time).");
    private static readonly Family RunDuration = new("run_duration_seconds", "gauge", "How long the last backup run took.");
    private static readonly Family RunDatabases = new("run_databases", "gauge", "Databases of the last backup run, by result (ok, failed).");
    private static readonly Family RunSize = new("run_size_bytes", "gauge", "Bytes stored by the last backup run.");
    private static readonly Family RunExitCode = new("run_exit_code", "gauge", "Exit code of the last backup run (0 success, 3 partial failure, see README).");
    private static readonly Family Runs = new("runs_total", "counter", "Backup runs counted by this runner.");

    /// <summary>The text exposition format: each family's HELP and TYPE once, then one sample per series.</summary>
    public static string Render(MetricsSnapshot snapshot)
    {
        var text = new StringBuilder();
        void Write<T>(Family family, IEnumerable<T> items, Func<T, string> labels, Func<T, double?> value)
        {
            var samples = items.Select(i => (Labels: labels(i), Value: value(i))).Where(s => s.Value is not null).ToList();
            if (samples.Count == 0)
            {
                return;
            }
            text.Append("# HELP ").Append(Prefix).Append(family.Name).Append(' ').Append(family.Help).Append('\n');
            text.Append("# TYPE ").Append(Prefix).Append(family.Name).Append(' ').Append(family.Type).Append('\n');
            foreach (var (labelText, sample) in samples)
            {
                text.Append(Prefix).Append(family.Name).Append(labelText).Append(' ').Append(Number(sample!.Value)).Append('\n');
            }
        }
        var databases = snapshot.Databases;
        static string Db(DatabaseMetrics d) => Labels(("instance_id", d.InstanceId.ToString(CultureInfo.InvariantCulture)), ("instance_name", d.Instance), ("database", d.Database));
        Write(LastSuccess, databases, Db, d => d.LastSuccessUtc?.ToUnixTimeMilliseconds() / 1000.0);
        Write(LastDuration, databases, Db, d => d.LastSuccessDurationSeconds);
        Write(LastSize, databases, Db, d => d.LastSuccessSizeBytes);
        Write(BackupsCount, databases, Db, d => d.Backups);
        Write(LastStatus, databases, Db, d => d.LastStatus);
        Write(LastRun, databases, Db, d => d.LastRunUtc?.ToUnixTimeMilliseconds() / 1000.0);
        Write(Failures, databases, Db, d => d.Failures);
        Write(OverdueFrom, databases, Db, d => d.OverdueFromUtc?.ToUnixTimeMilliseconds() / 1000.0);
        if (snapshot.LastRun is { } run)
        {
            RunMetrics[] one = [run];
            Write(RunTime, one, _ => "", r => r.FinishedUtc.ToUnixTimeMilliseconds() / 1000.0);
            Write(RunDuration, one, _ => "", r => r.DurationSeconds);
            Write(RunDatabases, new[] { ("ok", run.Succeeded), ("failed", run.Failed) }, r => Labels(("result", r.Item1)), r => r.Item2);
            Write(RunSize, one, _ => "", r => r.SizeBytes);
            Write(RunExitCode, one, _ => "", r => r.ExitCode);
            Write(Runs, one, _ => "", r => r.Runs);
        }
        return text.ToString();
    }

    private static string Labels(params (string Name, string Value)[] labels) =>
        "{" + string.Join(",", labels.Select(l => $"{l.Name}=\"{Escape(l.Value)}\"")) + "}";

    /// <summary>A label value as the format wants it: backslash, double quote and line feed escaped.</summary>
    private static string Escape(string value) =>
        value.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal).Replace("\n", "\\n", StringComparison.Ordinal);

    private static string Number(double value) => value.ToString("R", CultureInfo.InvariantCulture);

    /// <summary>
    /// The series of a metrics file this tool wrote (the previous run's), to carry the last status and
    /// failure counters over; a missing or foreign file gives an empty snapshot, lines it does not know are ignored.
    /// </summary>
    public static MetricsSnapshot Parse(string text)
    {
        var databases = new Dictionary<(string, string), DatabaseMetrics>();
        var run = new Dictionary<string, double>(StringComparer.Ordinal);
        foreach (var line in text.Split('\n'))
        {
            var match = Sample().Match(line);
            if (!match.Success || !double.TryParse(match.Groups["value"].Value, NumberStyles.Float, CultureInfo.InvariantCulture, out var value))
            {
                continue;
            }
            var name = match.Groups["name"].Value;
            var labels = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (Match label in Label().Matches(match.Groups["labels"].Value))
            {
                labels[label.Groups["name"].Value] = Unescape(label.Groups["value"].Value);
            }
            if (labels.TryGetValue("instance_name", out var instance) && labels.TryGetValue("database", out var database)
                && int.TryParse(labels.GetValueOrDefault("instance_id"), NumberStyles.Integer, CultureInfo.InvariantCulture, out var id))
            {
                var current = databases.GetValueOrDefault((instance, database)) ?? new DatabaseMetrics(id, instance, database);
                databases[(instance, database)] = name switch
                {
                    var n when n == Prefix + LastStatus.Name => current with { LastStatus = value == 0 ? 0 : 1 },
                    var n when n == Prefix + LastRun.Name => current with { LastRunUtc = FromUnix(value) },
                    var n when n == Prefix + Failures.Name => current with { Failures = (long)value },
                    // The storage's values are read again; these only fill in for a destination that is down.
                    var n when n == Prefix + LastSuccess.Name => current with { LastSuccessUtc = FromUnix(value) },
                    var n when n == Prefix + LastDuration.Name => current with { LastSuccessDurationSeconds = value },
                    var n when n == Prefix + LastSize.Name => current with { LastSuccessSizeBytes = (long)value },
                    var n when n == Prefix + BackupsCount.Name => current with { Backups = (int)value },
                    var n when n == Prefix + OverdueFrom.Name => current with { OverdueFromUtc = FromUnix(value) },
                    _ => current,
                };
            }
            else if (labels.Count == 0)
            {
                run[name] = value;
            }
            else if (name == Prefix + RunDatabases.Name && labels.TryGetValue("result", out var result))
            {
                run[$"{name}:{result}"] = value;
            }
        }
        RunMetrics? lastRun = run.TryGetValue(Prefix + RunTime.Name, out var finished)
            ? new RunMetrics(FromUnix(finished), run.GetValueOrDefault(Prefix + RunDuration.Name),
                (int)run.GetValueOrDefault(Prefix + RunDatabases.Name + ":ok"), (int)run.GetValueOrDefault(Prefix + RunDatabases.Name + ":failed"),
                (long)run.GetValueOrDefault(Prefix + RunSize.Name), (int)run.GetValueOrDefault(Prefix + RunExitCode.Name),
                (long)run.GetValueOrDefault(Prefix + Runs.Name))
            : null;
        return new MetricsSnapshot([.. databases.Values], lastRun);

        static DateTimeOffset FromUnix(double seconds) => DateTimeOffset.FromUnixTimeMilliseconds((long)Math.Round(seconds * 1000));
    }

    /// <summary>The previous metrics file; null when there is none yet.</summary>
    public static MetricsSnapshot? ReadFile(string path)
    {
        try
        {
            return Parse(BoundedRead.Text(path, "a metrics file"));
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            return null;
        }
    }

    /// <summary>How long an update of the metrics file waits for another run's (which reads the storage meanwhile).</summary>
    private static readonly TimeSpan FileLockWait = TimeSpan.FromMinutes(5);

    /// <summary>
    /// Updates the metrics file: under its lock (<see cref="ReportFile.LockAsync"/>), reads it (null: no file yet), makes
    /// the new snapshot with <paramref name="update"/> and writes it. Runs that share the file (of other instances, a
    /// `backup` beside `schedule`) each keep what the others wrote: without the lock, the last to rename dropped
    /// another's result read before it was written (tr107: a failure's last_status 0 and failures_total).
    /// </summary>
    public static async Task<MetricsSnapshot> UpdateFileAsync(
        string path, Func<MetricsSnapshot?, Task<MetricsSnapshot>> update, CancellationToken cancellationToken)
    {
        using (await ReportFile.LockAsync(path, FileLockWait, cancellationToken).ConfigureAwait(false))
        {
            var snapshot = await update(ReadFile(path)).ConfigureAwait(false);
            await ReportFile.WriteAsync(path, Render(snapshot), cancellationToken).ConfigureAwait(false);
            return snapshot;
        }
    }

    private static string Unescape(string value)
    {
        var text = new StringBuilder(value.Length);
        for (var i = 0; i < value.Length; i++)
        {
            if (value[i] == '\\' && i + 1 < value.Length)
            {
                i++;
                text.Append(value[i] == 'n' ? '\n' : value[i]);
            }
            else
            {
                text.Append(value[i]);
            }
        }
        return text.ToString();
    }

    [GeneratedRegex(@"^(?<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?<labels>\{.*\})? (?<value>\S+)$", RegexOptions.CultureInvariant)]
    private static partial Regex Sample();

    [GeneratedRegex(@"(?<name>[a-zA-Z_][a-zA-Z0-9_]*)=""(?<value>(?:[^""\\]|\\.)*)""", RegexOptions.CultureInvariant)]
    private static partial Regex Label();
}
