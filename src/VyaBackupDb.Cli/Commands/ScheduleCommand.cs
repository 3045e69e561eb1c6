using System.CommandLine;
using System.Globalization;
using System.Runtime.InteropServices;
using VyaBackupDb.Config;
using VyaBackupDb.Errors;
using VyaBackupDb.Operations;
using VyaBackupDb.Storage;

namespace VyaBackupDb.Cli.Commands;

/// <summary>
/// `schedule`: a foreground service. Backs each scheduled instance up when its cron expression comes due
/// (then verify / prune as configured). SIGHUP reloads the config (a bad one is refused and the old one
/// kept); SIGTERM or SIGINT stops: no new run, a running backup gets the grace period to finish, then is
/// cancelled (nothing partial kept); a second signal cancels at once. Exit 0 after a clean stop, 130 when
/// a backup had to be cancelled.
/// </summary>
internal static class ScheduleCommand
{
    public static Command Create()
    {
        var instances = new Option<int[]>("--instance", "-i")
        {
            Description = "Run only the schedules of these instances (repeatable; default: every enabled instance with a schedule:)",
            AllowMultipleArgumentsPerToken = true,
        };
        var grace = new Option<int?>("--grace-seconds")
        {
            Description = "After SIGTERM/SIGINT, how long a running backup may go on before it is cancelled (default: the config's stop_grace_seconds, 60)",
        };
        CommonOptions.RequireWholeNumber(grace, 0, 86400);
        var metricsFile = new Option<string?>("--metrics-file")
        {
            Description = "After each run, write Prometheus metrics to this file (textfile collector format, replaced atomically)",
        };
        var metricsListen = new Option<string?>("--metrics-listen")
        {
            Description = "Serve the same metrics at http://HOST:PORT/metrics: PORT alone listens on 127.0.0.1, *:PORT on every address",
        };
        var command = new Command("schedule", "Run as a service: back up each instance when its schedule: comes due; SIGHUP reloads the config, SIGTERM stops")
        {
            instances, grace, metricsFile, metricsListen,
        };
        command.SetAction((parseResult, cancellationToken) => CommonOptions.RunAsync(
            () => new Service(parseResult, parseResult.GetValue(instances) ?? [], parseResult.GetValue(grace),
                parseResult.GetValue(metricsFile), parseResult.GetValue(metricsListen)).RunAsync(), cancellationToken));
        return command;
    }

    private sealed class Service(ParseResult parseResult, int[] chosen, int? graceSeconds, string? metricsFile, string? metricsListen)
    {
        private readonly Lock _reloading = new();
        private readonly SemaphoreSlim _reporting = new(1, 1);
        private Reporting.MetricsSnapshot? _metrics;
        private readonly CancellationTokenSource _stopping = new();
        private AppConfig _config = null!;
        private BackupScheduler _scheduler = null!;
        private int _signals;

        private string? _cancelledBy;

        /// <summary>1 once a run was cancelled while it worked (not while it reported): the service then exits 130.</summary>
        private int _cancelled;

        public async Task<ExitCode> RunAsync()
        {
            var path = ConfigLoader.ResolvePath(parseResult.GetValue(CommonOptions.Config));
            _config = CommonOptions.LoadConfig(parseResult);
            var jobs = Select(_config);
            if (jobs.Count == 0)
            {
                throw new UsageException($"no enabled instance{(chosen.Length > 0 ? " of those chosen" : "")} has a schedule: in {_config.SourcePath}");
            }
            CommonOptions.RequireOutputFile("--metrics-file", metricsFile);
            if (metricsFile is not null || metricsListen is not null)
            {
                // What the storage holds now (every runner's backups), and this runner's counters from the previous file.
                var previous = metricsFile is null ? null : Reporting.Metrics.ReadFile(metricsFile);
                using var storages = new StorageSet(_config);
                _metrics = await new Reporting.RunReporter(_config, storages.For, TimeProvider.System, Output.Warning)
                    .CollectMetricsAsync(null, previous, CancellationToken.None).ConfigureAwait(false);
            }
            using var endpoint = metricsListen is null ? null : MetricsEndpoint.Start(metricsListen, () => Reporting.Metrics.Render(Volatile.Read(ref _metrics)!));
            using var scheduler = _scheduler = new BackupScheduler(TimeProvider.System, RunJobAsync, new LogObserver());
            using var term = PosixSignalRegistration.Create(PosixSignal.SIGTERM, Stop);
            using var interrupt = PosixSignalRegistration.Create(PosixSignal.SIGINT, Stop);
            using var hangup = PosixSignalRegistration.Create(PosixSignal.SIGHUP, context =>
            {
                context.Cancel = true;
                _ = Task.Run(() => Reload(path));
            });
            Output.Log($"schedule: {jobs.Count} scheduled instance(s) from {path}; SIGHUP reloads it, SIGTERM stops (grace {Grace.TotalSeconds:0} s)");
            scheduler.Load(jobs);
            await scheduler.RunAsync(_stopping.Token).ConfigureAwait(false);

            var idle = scheduler.Idle;
            if (!idle.IsCompleted)
            {
                Output.Log($"schedule: stopping; waiting up to {Grace.TotalSeconds:0} s for {scheduler.RunningCount} running backup(s) to finish");
                if (await Task.WhenAny(idle, Task.Delay(Grace)).ConfigureAwait(false) != idle)
                {
                    Output.Log("schedule: the grace period is over: cancelling the running backup(s)");
                    Cancel("at the end of the grace period");
                }
                await idle.ConfigureAwait(false);
            }
            if (Volatile.Read(ref _cancelled) != 0)
            {
                Output.Error($"interrupted: the running backup was cancelled {Volatile.Read(ref _cancelledBy) ?? "as the schedule stopped"}; nothing partial was kept");
                return ExitCode.Interrupted;
            }
            Output.Log("schedule: stopped");
            return ExitCode.Success;
        }

        private TimeSpan Grace => graceSeconds is { } seconds ? TimeSpan.FromSeconds(seconds) : _config.StopGrace;

        private void Stop(PosixSignalContext context)
        {
            context.Cancel = true;
            if (Interlocked.Increment(ref _signals) == 1)
            {
                Output.Log($"schedule: {context.Signal}: no new runs; stopping");
                _stopping.Cancel();
            }
            else
            {
                Output.Log($"schedule: {context.Signal} again: cancelling the running backup(s) now");
                Cancel($"by a second {context.Signal}");
            }
        }

        /// <summary>Cancels the running runs: one still backing up (or verifying, pruning) is interrupted, one reporting gives its message up.</summary>
        /// <param name="how">What cancelled them, for the last line (the first cause counts).</param>
        private void Cancel(string how)
        {
            Interlocked.CompareExchange(ref _cancelledBy, how, null);
            _scheduler.Abort();
        }

        /// <summary>SIGHUP: the new config replaces the old one only if it loads and schedules something; runs in progress go on.</summary>
        private void Reload(string path)
        {
            lock (_reloading)
            {
                try
                {
                    // No prompt: a service has no terminal (the vault passphrase comes from the environment or a key file).
                    var fresh = ConfigLoader.Load(path);
                    var jobs = Select(fresh);
                    if (jobs.Count == 0)
                    {
                        throw new UsageException($"no enabled instance has a schedule: in {path}");
                    }
                    foreach (var warning in fresh.Warnings)
                    {
                        Output.Warning(warning);
                    }
                    Volatile.Write(ref _config, fresh);
                    _scheduler.Load(jobs);
                    Output.Log($"schedule: reloaded {path}: {jobs.Count} scheduled instance(s)");
                }
                catch (VyaException e)
                {
                    Output.Error($"reload of {path} refused, the previous config stays in force: {e.Message}");
                }
            }
        }

        /// <summary>The enabled instances with a schedule (those chosen with --instance, if any).</summary>
        private List<InstanceConfig> Select(AppConfig config)
        {
            foreach (var id in chosen)
            {
                var instance = config.GetInstance(id);
                if (instance.Schedule is null)
                {
                    throw new UsageException($"instance {id} ({instance.Name}) has no schedule: in {config.SourcePath}");
                }
            }
            return [.. config.Instances.Where(i => i.Enabled && i.Schedule is not null && (chosen.Length == 0 || chosen.Contains(i.Id)))];
        }

        /// <summary>
        /// One run: back the instance up, then verify and prune as its schedule says; then its report
        /// (message, metrics) with what all of that did. Cancelled (the grace period is over) while it
        /// works, the run is interrupted; while it reports, only its message is given up.
        /// </summary>
        private async Task RunJobAsync(InstanceConfig instance, CancellationToken cancellationToken)
        {
            var config = Volatile.Read(ref _config);
            var label = $"instance {instance.Id} ({instance.Name})";
            Output.Log($"run of {label} started");
            var clock = System.Diagnostics.Stopwatch.StartNew();
            var startedUtc = DateTimeOffset.UtcNow;
            var tracker = new Reporting.RunTracker(new LogObserver());
            using var storages = new StorageSet(config);
            var reporter = new Reporting.RunReporter(config, storages.For, TimeProvider.System, Output.Warning);
            Reporting.RunOutcome? outcome = null;
            try
            {
                var report = await new BackupOperation(config, storages, TimeProvider.System, tracker)
                    .RunAsync(new BackupRequest([instance], null, config.Compression, DryRun: false), cancellationToken).ConfigureAwait(false);
                var failed = report.Results.Count(r => !r.Succeeded);
                var locked = report.Results.Count(r => r.Locked);
                Output.Log($"run of {label}: {report.Results.Count - failed} backed up, {failed} failed"
                    + (locked > 0 ? $" ({locked} locked by another run)" : "") + $", {Output.Duration(clock.Elapsed)}");
                outcome = new Reporting.RunOutcome(report);
                if (instance.Schedule!.Verify)
                {
                    outcome = await VerifyAsync(config, instance, outcome, cancellationToken).ConfigureAwait(false);
                }
                if (instance.Schedule.Prune)
                {
                    outcome = await PruneCommand.AfterBackupAsync(config, outcome, $"pruning after the run of {label} failed (see above)", cancellationToken)
                        .ConfigureAwait(false);
                }
            }
            catch (Exception e) when (cancellationToken.IsCancellationRequested)
            {
                Interlocked.Exchange(ref _cancelled, 1);
                Output.Error(e is OperationCanceledException ? $"run of {label} cancelled; nothing partial was kept" : $"run of {label} cancelled: {e.Message}");
                // The metrics still count the run: what finished, and the database it was backing up as failed.
                await WriteMetricsAsync(reporter, tracker.Interrupted(clock.Elapsed)).ConfigureAwait(false);
                await reporter.NotifyInterruptedAsync(tracker, startedUtc).ConfigureAwait(false);
                return;
            }
            catch (Exception e) when (e is VyaException or IOException or UnauthorizedAccessException)
            {
                // The next run is tried as scheduled. After the backups (its verify or prune failed), the run is still reported.
                Output.Error($"run of {label} failed: {e.Message}");
                if (outcome is null)
                {
                    return;
                }
                outcome = outcome.Failed(e is VyaException v ? v.ExitCode : ExitCode.Failed, e.Message);
            }
            await ReportAsync(reporter, outcome, cancellationToken).ConfigureAwait(false);
        }

        /// <summary>
        /// The run's metrics (file and /metrics), then its message to the notifiers. The metrics are
        /// written even when the service is being stopped; the message is given up then (a warning).
        /// A failure of either is a warning.
        /// </summary>
        private async Task ReportAsync(Reporting.RunReporter reporter, Reporting.RunOutcome outcome, CancellationToken cancellationToken)
        {
            await WriteMetricsAsync(reporter, outcome).ConfigureAwait(false);
            await reporter.NotifyAsync(outcome, cancellationToken).ConfigureAwait(false);
        }

        /// <summary>The metrics (file and /metrics) after a run, when asked for; not cancelled by a stop; a failure is a warning.</summary>
        private async Task WriteMetricsAsync(Reporting.RunReporter reporter, Reporting.RunOutcome outcome)
        {
            if (Volatile.Read(ref _metrics) is not null)
            {
                // One run at a time: each carries the counters of the one before.
                await _reporting.WaitAsync(CancellationToken.None).ConfigureAwait(false);
                try
                {
                    async Task<Reporting.MetricsSnapshot> Collect(Reporting.MetricsSnapshot? previous)
                    {
                        var snapshot = await reporter.CollectMetricsAsync(outcome, previous, CancellationToken.None).ConfigureAwait(false);
                        Volatile.Write(ref _metrics, snapshot);
                        return snapshot;
                    }
                    if (metricsFile is null)
                    {
                        await Collect(_metrics).ConfigureAwait(false);
                    }
                    else
                    {
                        // From the file, under its lock: a `backup` sharing it may have written its runs there since (tr107: they were
                        // dropped). Without a file, from memory.
                        await Reporting.Metrics.UpdateFileAsync(metricsFile, previous => Collect(previous ?? _metrics), CancellationToken.None)
                            .ConfigureAwait(false);
                    }
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    Output.Warning($"the metrics could not be updated: {e.Message}");
                }
                finally
                {
                    _reporting.Release();
                }
            }
        }

        /// <summary>Reads back each new backup and checks it against its manifest (as `verify --file`); one that does not match fails the run.</summary>
        private static async Task<Reporting.RunOutcome> VerifyAsync(
            AppConfig config, InstanceConfig instance, Reporting.RunOutcome outcome, CancellationToken cancellationToken)
        {
            var verify = new VerifyOperation(config, new LogObserver());
            foreach (var result in outcome.Backup.Results.Where(r => r.Location is not null && r.Error is null))
            {
                var checks = await verify.RunAsync(new VerifyRequest(result.Location, null, null, Latest: false, Restore: false), cancellationToken)
                    .ConfigureAwait(false);
                foreach (var check in checks.Select(c => c.Check))
                {
                    if (check.Ok)
                    {
                        Output.Log($"verified {check.File}: OK");
                    }
                    else
                    {
                        var problems = string.Join("; ", check.Problems);
                        Output.Error($"verify of {check.File} (instance {instance.Id}) FAILED: {problems}");
                        outcome = outcome.Failed(ExitCode.VerificationFailed, $"verify of {check.File} FAILED: {problems}");
                    }
                }
            }
            return outcome;
        }
    }

    /// <summary>Plain log lines: a service's output goes to the journal or a pod's log.</summary>
    private sealed class LogObserver : IBackupObserver, IScheduleObserver, IVerifyObserver
    {
        public void Next(InstanceConfig instance, DateTimeOffset due)
        {
            var zone = instance.Schedule!.TimeZone;
            var local = TimeZoneInfo.ConvertTime(due, zone);
            Output.Log($"next run of instance {instance.Id} ({instance.Name}): {local.ToString("yyyy-MM-dd HH:mm:ss zzz", CultureInfo.InvariantCulture)} "
                + $"({instance.Schedule.Expression}, {zone.Id})");
        }

        public void ClockWentBack(DateTimeOffset from, DateTimeOffset to) =>
            Output.Warning($"the clock went back from {Utc(from)} to {Utc(to)}: the next runs are computed again from it");

        public void Skipped(InstanceConfig instance, DateTimeOffset due, DateTimeOffset runningSince) =>
            Output.Warning($"skipped the run of instance {instance.Id} ({instance.Name}) due at {Utc(due)}: "
                + $"its previous run, started at {Utc(runningSince)}, is still going");

        public void RunFailed(InstanceConfig instance, Exception error) =>
            Output.Error($"run of instance {instance.Id} ({instance.Name}) failed: {Redaction.Redact(error.Message)}");

        public void Planned(BackupItem item)
        {
        }

        public void Started(BackupItem item, Func<long> storedBytesSoFar, Func<long> plainBytesSoFar) =>
            Output.Log($"backing up {item.Instance.Name}/{item.Database} to {item.Location}");

        public void Finished(BackupItemResult result) =>
            Output.Log(result.Succeeded
                ? $"ok     {result.Instance.Name}/{result.Database}: {Output.Size(result.StoredBytes)} in {Output.Duration(result.Duration)} -> {result.Location}"
                : $"{(result.Locked ? "LOCKED" : "FAILED")} {result.Instance.Name}/{result.Database}: {result.Error}");

        public void Warning(string message) => Output.Warning(message);

        public void Checked(VerifyResult result)
        {
        }

        public void Skipped(string file, string reason) => Output.Warning($"verify skipped {file}: {reason}");

        public void Planned(RestorePlan plan)
        {
        }

        public bool Confirm(string question) => false;

        public void Started(long fileBytes, Func<long> fileBytesRead)
        {
        }

        public void Compared(InventoryComparison comparison)
        {
        }

        private static string Utc(DateTimeOffset time) => time.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss'Z'", CultureInfo.InvariantCulture);
    }
}
