using VyaBackupDb.Config;

namespace VyaBackupDb.Operations;

/// <summary>What the scheduler tells its user as it goes.</summary>
public interface IScheduleObserver
{
    /// <summary>The next run of an instance is due at <paramref name="due"/>.</summary>
    void Next(InstanceConfig instance, DateTimeOffset due);

    /// <summary>A run was due while the previous run of the same instance, started at <paramref name="runningSince"/>, was still going.</summary>
    void Skipped(InstanceConfig instance, DateTimeOffset due, DateTimeOffset runningSince);

    /// <summary>A run ended with an error of its own (a bug, not a failed backup: the run reports those).</summary>
    void RunFailed(InstanceConfig instance, Exception error);

    /// <summary>The clock went back from <paramref name="from"/> to <paramref name="to"/>: the due times are computed again from it.</summary>
    void ClockWentBack(DateTimeOffset from, DateTimeOffset to);
}

/// <summary>
/// Runs each scheduled instance's job when its cron expression comes due, on a <see cref="TimeProvider"/>
/// (tests drive a fake clock). Jobs of different instances may run at the same time; a job never overlaps
/// itself: a due time that comes while the job is still running is skipped and reported. Missed due times
/// (the machine was asleep) give one run, not one each. <see cref="Load"/> replaces the jobs (a reload)
/// without touching runs in progress. Stopping is in two steps: cancel <see cref="RunAsync"/>'s token (no
/// new runs), wait for <see cref="Idle"/> as long as the grace lasts, then <see cref="Abort"/> what still runs.
/// </summary>
public sealed class BackupScheduler(TimeProvider time, Func<InstanceConfig, CancellationToken, Task> run, IScheduleObserver observer) : IDisposable
{
    /// <summary>The longest single wait, so that a clock change is noticed within it.</summary>
    private static readonly TimeSpan MaxWait = TimeSpan.FromMinutes(1);

    private readonly Lock _gate = new();
    private DateTimeOffset? _lastLook;
    private readonly CancellationTokenSource _abort = new();
    private readonly Dictionary<int, Job> _jobs = [];
    private readonly Dictionary<int, (Task Task, DateTimeOffset Since)> _running = [];
    private CancellationTokenSource _wake = new();

    /// <summary>The instances with a schedule, in the order loaded.</summary>
    public IReadOnlyList<InstanceConfig> Jobs
    {
        get
        {
            lock (_gate)
            {
                return [.. _jobs.Values.Select(j => j.Instance)];
            }
        }
    }

    /// <summary>Instances whose run is in progress.</summary>
    public int RunningCount
    {
        get
        {
            lock (_gate)
            {
                return _running.Count;
            }
        }
    }

    /// <summary>Completes when no run is in progress.</summary>
    public Task Idle
    {
        get
        {
            lock (_gate)
            {
                return Task.WhenAll(_running.Values.Select(r => r.Task));
            }
        }
    }

    /// <summary>Sets the jobs: every instance with a schedule. Runs in progress go on; the next due times are computed from now.</summary>
    public void Load(IEnumerable<InstanceConfig> instances)
    {
        var now = time.GetUtcNow();
        lock (_gate)
        {
            _jobs.Clear();
            foreach (var instance in instances.Where(i => i.Schedule is not null))
            {
                var due = instance.Schedule!.NextAfter(now);
                _jobs[instance.Id] = new Job(instance, due);
                if (due is { } next)
                {
                    observer.Next(instance, next);
                }
            }
            _wake.Cancel();
            _wake = new CancellationTokenSource();
        }
    }

    /// <summary>Starts jobs as they come due, until <paramref name="stopping"/> is cancelled (runs in progress are not).</summary>
    public async Task RunAsync(CancellationToken stopping)
    {
        while (!stopping.IsCancellationRequested)
        {
            CancellationToken wake;
            TimeSpan wait;
            lock (_gate)
            {
                var now = time.GetUtcNow();
                if (_lastLook is { } last && now < last - MaxWait)
                {
                    // Due times computed before the clock was set back would come only once it catches up (days, months).
                    observer.ClockWentBack(last, now);
                    foreach (var job in _jobs.Values)
                    {
                        job.Due = job.Instance.Schedule!.NextAfter(now);
                        if (job.Due is { } next)
                        {
                            observer.Next(job.Instance, next);
                        }
                    }
                }
                _lastLook = now;
                foreach (var job in _jobs.Values)
                {
                    if (job.Due is not { } due || due > now)
                    {
                        continue;
                    }
                    if (_running.TryGetValue(job.Instance.Id, out var running))
                    {
                        observer.Skipped(job.Instance, due, running.Since);
                    }
                    else
                    {
                        Start(job.Instance, now);
                    }
                    job.Due = job.Instance.Schedule!.NextAfter(now);
                    if (job.Due is { } next)
                    {
                        observer.Next(job.Instance, next);
                    }
                }
                var earliest = _jobs.Values.Select(j => j.Due).Where(d => d is not null).Min();
                wait = earliest is { } at ? at - now : MaxWait;
                wait = wait < TimeSpan.Zero ? TimeSpan.Zero : wait > MaxWait ? MaxWait : wait;
                wake = _wake.Token;
            }
            using var either = CancellationTokenSource.CreateLinkedTokenSource(stopping, wake);
            try
            {
                await Task.Delay(wait, time, either.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                // Stopping, or the jobs were reloaded: look again.
            }
        }
    }

    /// <summary>Cancels the runs in progress (the grace period is over); they clean up and end.</summary>
    public void Abort() => _abort.Cancel();

    private void Start(InstanceConfig instance, DateTimeOffset now)
    {
        var task = Task.Run(async () =>
        {
            try
            {
                await run(instance, _abort.Token).ConfigureAwait(false);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                observer.RunFailed(instance, e);
            }
            catch (OperationCanceledException)
            {
            }
            finally
            {
                lock (_gate)
                {
                    _running.Remove(instance.Id);
                }
            }
        });
        // Called under the lock, which the run's own removal waits for: it is added before it can be removed.
        _running[instance.Id] = (task, now);
    }

    public void Dispose()
    {
        _abort.Dispose();
        _wake.Dispose();
    }

    private sealed class Job(InstanceConfig instance, DateTimeOffset? due)
    {
        public InstanceConfig Instance { get; } = instance;

        public DateTimeOffset? Due { get; set; } = due;
    }
}
