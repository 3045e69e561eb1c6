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

    /// <summary>The results so far, and the databases whose backup was under way.</summary>
    public (IReadOnlyList<BackupItemResult> Finished, IReadOnlyList<BackupItem> Running) Snapshot()
    {
        lock (_lock)
        {
            return ([.. _finished], [.. _running]);
        }
    }
}
