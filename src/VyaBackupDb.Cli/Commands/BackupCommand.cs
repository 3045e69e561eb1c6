using System.CommandLine;
using VyaBackupDb.Config;
using VyaBackupDb.Errors;
using VyaBackupDb.Operations;
using VyaBackupDb.Pipeline;

namespace VyaBackupDb.Cli.Commands;

internal static class BackupCommand
{
    public static Command Create()
    {
        var instance = new Option<int?>("--instance", "-i") { Description = "Back up this instance (its id in the config)" };
        var all = new Option<bool>("--all", "-a") { Description = "Back up every enabled instance" };
        var database = new Option<string?>("--database", "-d") { Description = "Back up only this database (needs --instance)" };
        var compression = new Option<string?>("--compression", "-c")
        {
            Description = "none | gzip | zstd | zip (default: the config's, zstd). Bare --compression: compress with the config's codec, or zstd",
            Arity = ArgumentArity.ZeroOrOne,
        };
        compression.AcceptOnlyFromAmong("none", "gzip", "zstd", "zip");
        var dryRun = new Option<bool>("--dry-run") { Description = "Print what would be backed up; touch nothing" };
        var prune = new Option<bool>("--prune")
        {
            Description = "Then apply the retention policy to the databases backed up (not to those whose backup failed, nor where a copy failed)",
        };

        var encrypt = new Option<bool>("--encrypt")
        {
            Description = "Encrypt with age to the config's encryption: recipients or passphrase (instances with encrypt: true always are)",
        };

        var jobs = CommonOptions.JobsOption();

        var command = new Command("backup", "Back up databases, each into its own file") { instance, all, database, compression, encrypt, dryRun, prune, jobs };
        command.SetAction((parseResult, cancellationToken) => CommonOptions.RunAsync(async () =>
        {
            var config = CommonOptions.LoadConfig(parseResult);
            var databaseName = parseResult.GetValue(database);
            var instances = CommonOptions.ChooseInstances(config, parseResult.GetValue(instance), parseResult.GetValue(all), databaseName);

            var codec = ChooseCompression(parseResult, compression, config);
            var request = new BackupRequest(instances, databaseName, codec, parseResult.GetValue(dryRun), parseResult.GetValue(encrypt),
                parseResult.GetValue(jobs));
            if ((request.Encrypt || instances.Any(i => i.Encrypt)) && !config.Encryption.CanEncrypt)
            {
                throw new UsageException($"encryption asked for, but {config.SourcePath} has no encryption: recipients or passphrase");
            }
            var observer = new ConsoleBackupObserver();
            using var storages = new Storage.StorageSet(config);
            var operation = new BackupOperation(config, storages, TimeProvider.System, observer);
            BackupReport report;
            try
            {
                report = await operation.RunAsync(request, cancellationToken).ConfigureAwait(false);
            }
            finally
            {
                // Also on Ctrl+C: the progress line stops before the error is printed.
                observer.Done();
            }
            if (request.DryRun)
            {
                if (parseResult.GetValue(prune))
                {
                    Output.Line("--prune: a dry run backs nothing up, so it prunes nothing; 'vya-backupdb prune --dry-run' shows the plan");
                }
                // A dry run reports only failures (an instance it could not reach): they still fail it.
                return report.Results.Count == 0 ? ExitCode.Success : report.ExitCode;
            }
            observer.Summary(report);
            if (!parseResult.GetValue(prune))
            {
                return report.ExitCode;
            }
            // What failed is not pruned (its newest backup may be the one that failed); the rest is.
            var (targets, skipped) = PruneOperation.TargetsAfter(report);
            foreach (var what in skipped)
            {
                Output.Warning($"not pruning {what}");
            }
            if (targets.Count == 0)
            {
                return report.ExitCode;
            }
            var pruned = await PruneCommand.RunAsync(config, targets, dryRun: false, cancellationToken).ConfigureAwait(false);
            if (pruned != ExitCode.Success)
            {
                Output.Error("pruning failed (see above)");
            }
            // A backup failure outranks a pruning one.
            return report.ExitCode != ExitCode.Success ? report.ExitCode : pruned;
        }, cancellationToken));
        return command;
    }

    /// <summary>--compression X wins; bare --compression (the old tool's flag) means "compressed": the config's codec, or zstd.</summary>
    private static Compression ChooseCompression(ParseResult parseResult, Option<string?> option, AppConfig config)
    {
        if (parseResult.GetResult(option) is null)
        {
            return config.Compression;
        }
        var value = parseResult.GetValue(option);
        if (value is null)
        {
            return config.Compression == Compression.None ? Compression.Zstd : config.Compression;
        }
        CompressionNames.TryParse(value, out var chosen);
        return chosen;
    }

    private sealed class ConsoleBackupObserver : IBackupObserver
    {
        private ProgressLine? _progress;

        public void Planned(BackupItem item) =>
            Output.Line($"would back up instance {item.Instance.Id} ({item.Instance.Name}) {What(item.Instance, item.Database)} to {item.Location}"
                + (item.Copies is { Count: > 0 } copies ? $", then copy it to {string.Join(", ", copies)}" : ""));

        public void Started(BackupItem item, Func<long> storedBytesSoFar)
        {
            if (!Output.IsTerminal)
            {
                Output.Log($"backing up {Label(item.Instance, item.Database)} to {item.Location}");
            }
            _progress = new ProgressLine(Label(item.Instance, item.Database), storedBytesSoFar);
        }

        public void Finished(BackupItemResult result)
        {
            _progress?.Dispose();
            _progress = null;
            var what = Label(result.Instance, result.Database);
            if (result.Succeeded)
            {
                Output.Log($"ok     {what}: {Output.Size(result.StoredBytes)} ({Output.Size(result.PlainBytes)} of {(result.Instance.Dbms == Dbms.Files ? "tar" : "SQL")}) in {Output.Duration(result.Duration)} -> {result.Location}"
                    + (result.Copies is { Count: > 0 } copies ? $", copied to {string.Join(", ", copies)}" : ""));
            }
            else
            {
                Output.Log($"FAILED {what}: {result.Error}");
            }
        }

        public void Warning(string message) => Output.Warning(message);

        public void Done() => _progress?.Dispose();

        /// <summary>instance/database, or a files instance's name.</summary>
        private static string Label(InstanceConfig instance, string database) =>
            instance.Dbms == Dbms.Files ? instance.Name : $"{instance.Name}/{database}";

        /// <summary>A database, or a files instance's paths.</summary>
        private static string What(InstanceConfig instance, string database) =>
            instance.Dbms == Dbms.Files ? $"paths {string.Join(", ", instance.Paths)}" : $"database '{database}'";

        public void Summary(BackupReport report)
        {
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
    }
}
