using System.CommandLine;
using VyaBackupDb.Config;
using VyaBackupDb.Errors;
using VyaBackupDb.Operations;
using VyaBackupDb.Storage;
using VyaBackupDb.Retention;

namespace VyaBackupDb.Cli.Commands;

internal static class PruneCommand
{
    public static Command Create()
    {
        var instance = new Option<int?>("--instance", "-i") { Description = "Prune the backups of this instance (its id in the config)" };
        var all = new Option<bool>("--all", "-a") { Description = "Prune the backups of every enabled instance" };
        var database = new Option<string?>("--database", "-d") { Description = "Only the backups of this database (needs --instance)" };
        var dryRun = new Option<bool>("--dry-run") { Description = "Print the plan (keep or remove, and why, for each backup); delete nothing" };

        var command = new Command("prune", "Apply the retention policy: delete the backups no keep rule keeps")
        {
            instance, all, database, dryRun,
        };
        command.SetAction((parseResult, cancellationToken) => CommonOptions.RunAsync(async () =>
        {
            var config = CommonOptions.LoadConfig(parseResult);
            var databaseName = parseResult.GetValue(database);
            var databases = databaseName is null ? null : new HashSet<string>(StringComparer.Ordinal) { databaseName };
            List<PruneTarget> targets =
            [
                .. CommonOptions.ChooseInstances(config, parseResult.GetValue(instance), parseResult.GetValue(all), databaseName)
                    .Select(i => new PruneTarget(i, databases)),
            ];
            return (await RunAsync(config, targets, parseResult.GetValue(dryRun), cancellationToken).ConfigureAwait(false)).ExitCode;
        }, cancellationToken));
        return command;
    }

    /// <summary>
    /// `backup --prune` and `schedule_prune`: retention applied to what the run backed up (not to what
    /// failed). A prune that fails makes the run fail: <paramref name="failedLine"/> is printed, and the
    /// outcome (the run's report) says what failed.
    /// </summary>
    public static async Task<Reporting.RunOutcome> AfterBackupAsync(
        AppConfig config, Reporting.RunOutcome outcome, string failedLine, CancellationToken cancellationToken)
    {
        var (targets, skipped) = PruneOperation.TargetsAfter(outcome.Backup);
        foreach (var what in skipped)
        {
            Output.Warning($"not pruning {what}");
        }
        if (targets.Count == 0)
        {
            return outcome;
        }
        var report = await RunAsync(config, targets, dryRun: false, cancellationToken).ConfigureAwait(false);
        if (report.ExitCode == ExitCode.Success)
        {
            return outcome;
        }
        Output.Error(failedLine);
        List<string> problems =
        [
            .. report.Results.SelectMany(r => (string?[])[r.Error, .. r.Checks.Where(c => c.Holds).Select(c => $"database '{c.Database}': {c.Outcome}"),
                .. r.Deletions.Select(d => d.Error)]).OfType<string>(),
        ];
        return outcome.Failed(report.ExitCode,
            "pruning failed" + (problems.Count == 0 ? "" : $": {problems[0]}" + (problems.Count > 1 ? $" (and {problems.Count - 1} more)" : "")));
    }

    /// <summary>Prunes and prints the plan, the deletions and a summary.</summary>
    private static async Task<PruneReport> RunAsync(AppConfig config, IReadOnlyList<PruneTarget> targets, bool dryRun, CancellationToken cancellationToken)
    {
        using var storages = new StorageSet(config);
        var operation = new PruneOperation(config, storages.For, TimeProvider.System, new ConsolePruneObserver());
        var report = await operation.RunAsync(new PruneRequest(targets, dryRun), cancellationToken).ConfigureAwait(false);
        var kept = report.Results.Sum(r => r.Plan.Kept.Count());
        var removed = report.Results.Sum(r => r.Plan.Removed.Count());
        if (dryRun)
        {
            Output.Line($"prune summary (dry run): {kept} kept, {removed} would be removed; nothing was deleted");
        }
        else
        {
            var deletions = report.Results.SelectMany(r => r.Deletions).ToList();
            var failed = deletions.Count(d => d.Error is not null);
            Output.Line($"prune summary: {kept} kept, {deletions.Count - failed} removed ({Output.Size(deletions.Sum(d => d.Bytes))} freed), {failed} failed");
        }
        if (report.Results.Where(r => r.Error is not null).ToList() is { Count: > 0 } skipped)
        {
            Output.Line("not pruned (cannot be reached or listed): "
                + string.Join(", ", skipped.Select(r => $"instance {r.Instance.Id} ({r.Instance.Name}) in '{r.Storage}'")));
        }
        return report;
    }

    private sealed class ConsolePruneObserver : IPruneObserver
    {
        public void NoPolicy(InstanceConfig instance) =>
            Output.Line($"instance {instance.Id} ({instance.Name}): no retention policy configured; keeping everything, deleting nothing");

        public void Planned(PruneResult planned, Func<string, string> describe)
        {
            var instance = planned.Instance;
            Output.Line($"instance {instance.Id} ({instance.Name}), storage {planned.Storage}: {planned.Policy?.Describe()}");
            if (planned.Plan.Decisions.Count == 0)
            {
                Output.Line("  no backups");
            }
            string? database = null;
            foreach (var decision in planned.Plan.Decisions)
            {
                if (decision.Backup.Database != database)
                {
                    database = decision.Backup.Database;
                    Output.Line($"  database '{database}':");
                    if (planned.Checks.FirstOrDefault(c => c.Database == database) is { } check)
                    {
                        if (check.Holds)
                        {
                            Output.Error($"not pruning instance {instance.Id} ({instance.Name}) database '{database}' in storage {planned.Storage}: {check.Outcome}");
                        }
                        else
                        {
                            Output.Line($"    {"check",-12} {check.Key}  ({check.Outcome})");
                        }
                    }
                }
                var verb = decision.Keep ? "keep" : planned.DryRun ? "would remove" : "remove";
                Output.Line($"    {verb,-12} {decision.Backup.Key}  ({string.Join(", ", decision.Reasons)})");
            }
        }

        public void Unreachable(PruneResult result) => Output.Error(result.Error!);

        public void Deleted(PruneDeletion deletion, Func<string, string> describe)
        {
            if (deletion.Error is null)
            {
                Output.Log($"deleted {describe(deletion.Decision.Backup.Key)} (manifest first, then .sha256 and data)");
            }
            else
            {
                Output.Error(deletion.Error);
            }
        }
    }
}
