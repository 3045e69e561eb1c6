using System.Collections.Concurrent;
using System.Diagnostics;
using Microsoft.Extensions.Time.Testing;
using VyaBackupDb.Config;
using VyaBackupDb.Errors;
using VyaBackupDb.Operations;

namespace VyaBackupDb.Tests.Unit;

/// <summary>
/// The scheduler under a fake clock: a job runs when due and not before, a due time that comes while
/// the job still runs is skipped and reported, a reload takes the new schedule; and the schedule keys
/// of the config (cron, time zones) with their one-line errors.
/// </summary>
public sealed class ScheduleTests
{
    private const string Path = "/etc/vya/config.yaml";

    private static readonly DateTimeOffset Start = new(2026, 3, 28, 23, 30, 0, TimeSpan.Zero);

    private static AppConfig Config(string scheduleKeys, string topKeys = "") => ConfigLoader.Parse($"""
        backup_dir: /var/backups/vya
        {topKeys}
        instances:
          - id: 1
            name: main
            dbms: postgresql
            user: vya
            {scheduleKeys}
        """, Path);

    private sealed class Recorder : IScheduleObserver
    {
        public ConcurrentQueue<(int Id, DateTimeOffset Due)> Nexts { get; } = new();

        public ConcurrentQueue<(int Id, DateTimeOffset Due, DateTimeOffset Since)> Skips { get; } = new();

        public void Next(InstanceConfig instance, DateTimeOffset due) => Nexts.Enqueue((instance.Id, due));

        public void Skipped(InstanceConfig instance, DateTimeOffset due, DateTimeOffset runningSince) => Skips.Enqueue((instance.Id, due, runningSince));

        public void RunFailed(InstanceConfig instance, Exception error) => throw new InvalidOperationException("a run failed", error);

        public ConcurrentQueue<(DateTimeOffset From, DateTimeOffset To)> ClockSteps { get; } = new();

        public void ClockWentBack(DateTimeOffset from, DateTimeOffset to) => ClockSteps.Enqueue((from, to));
    }

    /// <summary>A fake clock whose wall time can be set back (NTP stepping it, a VM restored) while its timers go on.</summary>
    private sealed class SteppingClock(DateTimeOffset start) : FakeTimeProvider(start)
    {
        private TimeSpan _back;

        public void StepBack(TimeSpan by) => _back += by;

        public override DateTimeOffset GetUtcNow() => base.GetUtcNow() - _back;
    }

    /// <summary>A fake clock's timers fire on Advance, but the loop's continuation runs on the thread pool: wait for what it does.</summary>
    private static async Task EventuallyAsync(Func<bool> condition, string what)
    {
        var clock = Stopwatch.StartNew();
        while (!condition())
        {
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(10), $"never happened: {what}");
            await Task.Delay(10);
        }
    }

    /// <summary>Lets the loop settle after a clock step (it wakes, looks, and sleeps again).</summary>
    private static Task SettleAsync() => Task.Delay(100);

    [Fact]
    public async Task A_job_runs_when_due_and_not_before_and_again_at_the_next_due_time()
    {
        var time = new FakeTimeProvider(Start);
        var runs = new ConcurrentQueue<DateTimeOffset>();
        var recorder = new Recorder();
        using var scheduler = new BackupScheduler(time, (_, _) =>
        {
            runs.Enqueue(time.GetUtcNow());
            return Task.CompletedTask;
        }, recorder);
        scheduler.Load(Config("schedule: \"0 * * * *\"").Instances);
        using var stop = new CancellationTokenSource();
        var loop = scheduler.RunAsync(stop.Token);

        Assert.Equal((1, Start.AddMinutes(30)), Assert.Single(recorder.Nexts));
        time.Advance(TimeSpan.FromMinutes(29));
        await SettleAsync();
        Assert.Empty(runs);

        time.Advance(TimeSpan.FromMinutes(1));
        await EventuallyAsync(() => runs.Count == 1, "the run due at 00:00");
        Assert.Equal(Start.AddMinutes(30), runs.Single());

        time.Advance(TimeSpan.FromMinutes(59));
        await SettleAsync();
        Assert.Single(runs);
        time.Advance(TimeSpan.FromMinutes(1));
        await EventuallyAsync(() => runs.Count == 2, "the run due at 01:00");

        await stop.CancelAsync();
        await loop;
        Assert.Empty(recorder.Skips);
    }

    /// <summary>
    /// The clock set back by 30 days: the due times are computed again from it (and that is logged), so the
    /// hourly job runs within the hour. It ran nothing until the clock caught up with the old due time.
    /// </summary>
    [Fact]
    public async Task A_clock_set_back_gets_the_due_times_computed_again()
    {
        var time = new SteppingClock(Start);
        var runs = new ConcurrentQueue<DateTimeOffset>();
        var recorder = new Recorder();
        using var scheduler = new BackupScheduler(time, (_, _) =>
        {
            runs.Enqueue(time.GetUtcNow());
            return Task.CompletedTask;
        }, recorder);
        scheduler.Load(Config("schedule: \"0 * * * *\"").Instances);
        using var stop = new CancellationTokenSource();
        var loop = scheduler.RunAsync(stop.Token);
        time.Advance(TimeSpan.FromMinutes(30));
        await EventuallyAsync(() => runs.Count == 1, "the run due at 00:00");

        time.StepBack(TimeSpan.FromDays(30));
        time.Advance(TimeSpan.FromMinutes(1));
        await EventuallyAsync(() => !recorder.ClockSteps.IsEmpty, "the clock step noticed");
        time.Advance(TimeSpan.FromMinutes(59));
        await EventuallyAsync(() => runs.Count == 2, "the hourly run after the clock was set back");

        Assert.Equal(Start.AddMinutes(31).AddDays(-30), recorder.ClockSteps.Single().To);
        Assert.Equal(Start.AddMinutes(90).AddDays(-30), runs.Last());
        await stop.CancelAsync();
        await loop;
    }

    [Fact]
    public async Task A_due_time_while_the_job_still_runs_is_skipped_and_reported_and_the_job_runs_again_after()
    {
        var time = new FakeTimeProvider(Start);
        var started = 0;
        var release = new TaskCompletionSource();
        var recorder = new Recorder();
        using var scheduler = new BackupScheduler(time, async (_, _) =>
        {
            if (Interlocked.Increment(ref started) == 1)
            {
                await release.Task;
            }
        }, recorder);
        scheduler.Load(Config("schedule: \"*/10 * * * *\"").Instances);
        using var stop = new CancellationTokenSource();
        var loop = scheduler.RunAsync(stop.Token);

        time.Advance(TimeSpan.FromMinutes(10));
        await EventuallyAsync(() => Volatile.Read(ref started) == 1, "the first run");
        Assert.Equal(1, scheduler.RunningCount);

        // Still running at the next two due times: both skipped, nothing started.
        time.Advance(TimeSpan.FromMinutes(10));
        await EventuallyAsync(() => recorder.Skips.Count == 1, "the first skip");
        time.Advance(TimeSpan.FromMinutes(10));
        await EventuallyAsync(() => recorder.Skips.Count == 2, "the second skip");
        Assert.Equal(1, Volatile.Read(ref started));
        Assert.Equal([(1, Start.AddMinutes(20), Start.AddMinutes(10)), (1, Start.AddMinutes(30), Start.AddMinutes(10))], recorder.Skips);

        release.SetResult();
        await scheduler.Idle;
        time.Advance(TimeSpan.FromMinutes(10));
        await EventuallyAsync(() => Volatile.Read(ref started) == 2, "the run after the long one ended");

        await stop.CancelAsync();
        await loop;
    }

    [Fact]
    public async Task A_reload_takes_the_new_schedule_and_abort_cancels_a_running_job()
    {
        var time = new FakeTimeProvider(Start);
        var runs = new ConcurrentQueue<DateTimeOffset>();
        var recorder = new Recorder();
        using var scheduler = new BackupScheduler(time, async (_, cancellationToken) =>
        {
            runs.Enqueue(time.GetUtcNow());
            await Task.Delay(Timeout.Infinite, cancellationToken);
        }, recorder);
        scheduler.Load(Config("schedule: \"0 2 * * *\"").Instances);
        using var stop = new CancellationTokenSource();
        var loop = scheduler.RunAsync(stop.Token);
        Assert.Equal(Start.AddHours(2).AddMinutes(30), recorder.Nexts.Single().Due);

        scheduler.Load(Config("schedule: \"45 23 * * *\"").Instances);
        Assert.Equal(Start.AddMinutes(15), recorder.Nexts.Last().Due);
        // The loop wakes on the reload and sleeps again: a fake clock advanced before it sleeps moves it on with it.
        await SettleAsync();
        time.Advance(TimeSpan.FromMinutes(15));
        await EventuallyAsync(() => runs.Count == 1, "the run of the reloaded schedule");
        Assert.Equal(Start.AddMinutes(15), runs.Single());

        await stop.CancelAsync();
        await loop;
        Assert.False(scheduler.Idle.IsCompleted);
        scheduler.Abort();
        await scheduler.Idle.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(0, scheduler.RunningCount);
    }

    [Fact]
    public void Schedule_keys_are_read_with_their_time_zones()
    {
        var config = Config("""
            schedule: "0 2 * * *"
                schedule_verify: true
                schedule_prune: yes
            """, "time_zone: Europe/Paris\nlock_lease_seconds: 120\nstop_grace_seconds: 5");
        var schedule = config.GetInstance(1).Schedule!;
        Assert.True(schedule.Verify);
        Assert.True(schedule.Prune);
        Assert.Equal(TimeSpan.FromSeconds(120), config.LockLease);
        Assert.Equal(TimeSpan.FromSeconds(5), config.StopGrace);
        // 02:00 in Paris the night summer time starts (29 March 2026): 01:00 UTC.
        Assert.Equal(new DateTimeOffset(2026, 3, 29, 1, 0, 0, TimeSpan.Zero), schedule.NextAfter(Start));

        var own = Config("schedule: \"0 2 * * *\"\n    schedule_time_zone: America/New_York", "time_zone: Europe/Paris").GetInstance(1).Schedule!;
        Assert.Equal(new DateTimeOffset(2026, 3, 29, 6, 0, 0, TimeSpan.Zero), own.NextAfter(Start));

        var utc = Config("schedule: \"*/30 * * * * *\"").GetInstance(1).Schedule!;
        Assert.Equal(Start.AddSeconds(30), utc.NextAfter(Start));
        Assert.Null(Config("").GetInstance(1).Schedule);
    }

    [Theory]
    [InlineData("schedule: \"0 25 * * *\"", "", "config.yaml:8: instances[0].schedule: '0 25 * * *' is not a cron expression")]
    [InlineData("schedule: \"0 2 * *\"", "", "instances[0].schedule: '0 2 * *' is not a cron expression")]
    [InlineData("schedule: \"0 2 31 2 *\"", "", "instances[0].schedule: '0 2 31 2 *' never fires")]
    [InlineData("schedule: \"0 2 * * *\"\n    schedule_time_zone: Mars/Olympus", "", "instances[0].schedule_time_zone: 'Mars/Olympus' is not a time zone")]
    [InlineData("schedule_prune: true", "", "instances[0].schedule_prune: needs a schedule:")]
    [InlineData("", "time_zone: Europe/Pariss", "config.yaml:2: time_zone: 'Europe/Pariss' is not a time zone")]
    [InlineData("", "lock_lease_seconds: 5", "lock_lease_seconds: 5 is less than 30 seconds")]
    public void A_bad_schedule_is_one_line_naming_file_line_and_key(string scheduleKeys, string topKeys, string expected)
    {
        var error = Assert.Throws<ConfigException>(() => Config(scheduleKeys, topKeys));
        Assert.Contains(expected, error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', error.Message);
        Assert.DoesNotContain("Exception", error.Message, StringComparison.Ordinal);
    }
}
