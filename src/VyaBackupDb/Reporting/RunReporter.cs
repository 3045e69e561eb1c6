using VyaBackupDb.Config;
using VyaBackupDb.Operations;
using VyaBackupDb.Storage;

namespace VyaBackupDb.Reporting;

/// <summary>
/// What follows a backup run (backup, and each run of `schedule`): its message to the notifiers,
/// and the metrics. Neither changes the run's outcome: a failure here is a warning.
/// </summary>
public sealed class RunReporter(AppConfig config, Func<InstanceConfig, IReadOnlyList<NamedStorage>> destinations, TimeProvider time, Action<string> warning)
{
    /// <summary>
    /// Sends the run's one message to each notifier that wants it. Cancelled (a stop once the run's work
    /// is done), the notifiers still sending give up, each with a warning: it never throws for that.
    /// </summary>
    public async Task NotifyAsync(RunOutcome outcome, CancellationToken cancellationToken)
    {
        if (config.Notifiers.Count == 0)
        {
            return;
        }
        var message = RunNotification.From(outcome, time.GetUtcNow());
        await Notifiers.SendAsync(config.Notifiers, message, warning, "the run was stopped (Ctrl+C, SIGTERM) before it was sent", cancellationToken)
            .ConfigureAwait(false);
    }

    /// <summary>
    /// Tells the notifiers that the run was interrupted (Ctrl+C, SIGTERM), with what <paramref name="tracker"/>
    /// saw finish and what was under way. Its own time limit: the run's cancellation has already fired.
    /// </summary>
    public async Task NotifyInterruptedAsync(RunTracker tracker, DateTimeOffset startedUtc)
    {
        if (config.Notifiers.Count == 0)
        {
            return;
        }
        var (finished, running) = tracker.Snapshot();
        var message = RunNotification.Interrupted(finished, running, startedUtc, time.GetUtcNow());
        using var limit = new CancellationTokenSource(InterruptedNotifyLimit);
        await Notifiers.SendAsync(config.Notifiers, message, warning,
            $"the message of the interrupted run was not sent within {InterruptedNotifyLimit.TotalSeconds:0} s", limit.Token).ConfigureAwait(false);
    }

    /// <summary>How long a stopping run waits for its notifiers (systemd gives a stopping unit 90 s by default).</summary>
    private static readonly TimeSpan InterruptedNotifyLimit = TimeSpan.FromSeconds(20);

    /// <summary>
    /// The metrics after <paramref name="outcome"/> (null: none ran), from the storage (read now: after
    /// the run's prune) and <paramref name="previous"/>.
    /// </summary>
    public Task<MetricsSnapshot> CollectMetricsAsync(RunOutcome? outcome, MetricsSnapshot? previous, CancellationToken cancellationToken) =>
        Metrics.CollectAsync(config.Instances, destinations, outcome, previous, time.GetUtcNow(), warning, cancellationToken);

    /// <summary>Updates the metrics file at <paramref name="path"/> (textfile collector) with the run; its previous content carries the counters.</summary>
    public async Task WriteMetricsFileAsync(string path, RunOutcome outcome, CancellationToken cancellationToken)
    {
        try
        {
            await Metrics.UpdateFileAsync(path, previous => CollectMetricsAsync(outcome, previous, cancellationToken), cancellationToken)
                .ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            warning($"the metrics file {path} could not be written: {e.Message}");
        }
    }
}
