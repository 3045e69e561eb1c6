using System.CommandLine;
using VyaBackupDb.Operations;
using VyaBackupDb.Storage;

namespace VyaBackupDb.Cli.Commands;

internal static class CopyCommand
{
    public static Command Create()
    {
        var to = new Option<string>("--to") { Description = "The destination to copy to (a name from the config's storage:, or local)", Required = true };
        var from = new Option<string?>("--from") { Description = "Copy from this destination only (default: each of the instance's other destinations, in order)" };
        var instance = new Option<int?>("--instance", "-i") { Description = "Copy the backups of this instance (its id in the config)" };
        var all = new Option<bool>("--all", "-a") { Description = "Copy the backups of every enabled instance" };
        var database = new Option<string?>("--database", "-d") { Description = "Only the backups of this database (needs --instance)" };
        var latest = new Option<bool>("--latest") { Description = "Only the newest backup of each database" };
        var dryRun = new Option<bool>("--dry-run") { Description = "Print what would be copied; copy nothing" };

        var command = new Command("copy", "Copy existing backups to a destination that lacks them (e.g. once it is reachable again), checked against their manifests")
        {
            to, from, instance, all, database, latest, dryRun,
        };
        command.SetAction((parseResult, cancellationToken) => CommonOptions.RunAsync(async () =>
        {
            var config = CommonOptions.LoadConfig(parseResult);
            var databaseName = parseResult.GetValue(database);
            var instances = CommonOptions.ChooseInstances(config, parseResult.GetValue(instance), parseResult.GetValue(all), databaseName);
            var destination = parseResult.GetRequiredValue(to);
            if (parseResult.GetValue(all) && instances.Any(i => i.StorageNames.Contains(destination)))
            {
                // --all: the instances that have that destination (one named with --instance must have it).
                instances = [.. instances.Where(i => i.StorageNames.Contains(destination))];
            }
            var request = new CopyRequest(instances, destination, parseResult.GetValue(from), databaseName,
                parseResult.GetValue(latest), parseResult.GetValue(dryRun));
            using var storages = new StorageSet(config);
            var report = await new CopyOperation(config, storages, new ConsoleCopyObserver()).RunAsync(request, cancellationToken).ConfigureAwait(false);
            var failed = report.Results.Count(r => r.Error is not null);
            var leftToOthers = report.Results.Count(r => r.LeftToAnother is not null);
            var others = leftToOthers == 0 ? "" : $", {leftToOthers} left to another run";
            Output.Line(request.DryRun
                ? $"copy summary (dry run): {report.Results.Count - failed - leftToOthers} would be copied to '{request.To}'{others}, {failed} refused; nothing was copied"
                : $"copy summary: {report.Results.Count - failed - leftToOthers} copied to '{request.To}'{others}, {failed} failed");
            return report.ExitCode;
        }, cancellationToken));
        return command;
    }

    private sealed class ConsoleCopyObserver : ICopyObserver
    {
        public void Copied(CopyResult result, bool dryRun)
        {
            if (result.Error is not null)
            {
                Output.Error($"{result.Source} was not copied: {result.Error}");
            }
            else if (result.LeftToAnother is { } why)
            {
                Output.Line($"not copied {result.Source}: {why}");
            }
            else
            {
                Output.Line($"{(dryRun ? "would copy" : "copied")} {result.Source} -> {result.Target}");
            }
        }

        public void Unreachable(string message) => Output.Error(message);

        public void Warning(string message) => Output.Warning(message);
    }
}
