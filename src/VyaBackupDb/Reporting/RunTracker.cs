using VyaBackupDb.Operations;

namespace VyaBackupDb.Reporting;

/// <summary>
/// Passes a backup run's events on to <paramref name="inner"/> and remembers what finished and
/// what is still running: what the notification of an interrupted run tells.
/// </summary>
public sealed class RunTracker(IBackupObserver inner) : IBackupObserver
{
    private readonly Lock _lock = new();
    private readonly List<BackupItemResult> _finished = [];
    private readonly List<BackupItem> _running = [];

    public void Planned(BackupItem item) => inner.Planned(item);

    public void Started(BackupItem item, Func<long> storedBytesSoFar, Func<long> plainBytesSoFar)
    {
        lock (_lock)
        {
            _running.Add(item);
        }
        inner.Started(item, storedBytesSoFar, plainBytesSoFar);
    }

    public void Finished(BackupItemResult result)
    {
        lock (_lock)
        {
            _running.RemoveAll(i => i.Instance == result.Instance && i.Database == result.Database);
            _finished.Add(result);
        }
        inner.Finished(result);
    }

    public void Warning(string message) => inner.Warning(message);

    /// <summary>
    /// A run stopped (Ctrl+C, SIGTERM) as its metrics count it: what finished, each database under
    /// way as failed (nothing of it was kept), exit code 130.
    /// </summary>
    public RunOutcome Interrupted(TimeSpan duration)
    {
        var (finished, running) = Snapshot();
        var results = finished.Concat(running.Select(i => new BackupItemResult(i.Instance, i.Database, null, InterruptedError, 0, 0, duration))).ToList();
        return new RunOutcome(new BackupReport(results, duration), Errors.ExitCode.Interrupted, []);
    }

    /// <summary>What a database whose backup was under way when the run was stopped is said to have failed with.</summary>
    public const string InterruptedError = "the run was interrupted";

    /// <summary>The results so far, and the databases whose backup was under way.</summary>
    public (IReadOnlyList<BackupItemResult> Finished, IReadOnlyList<BackupItem> Running) Snapshot()
    {
        lock (_lock)
        {
            return ([.. _finished], [.. _running]);
        }
    }
}
