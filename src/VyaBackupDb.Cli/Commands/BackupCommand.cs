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
        var instance = new Option<int[]>("--instance", "-i") { Description = "Back up this instance (its id in the config); repeat it for several" };
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
        var parallel = new Option<int>("--parallel")
        {
            Description = "Back up this many instances at once (the databases of one instance go one after another)",
            DefaultValueFactory = _ => 1,
        };
        var json = new Option<bool>("--json") { Description = "Print the run's results as one JSON document on stdout (for scripts)" };

        var metricsFile = new Option<string?>("--metrics-file")
        {
            Description = "After the run, write Prometheus metrics to this file (textfile collector format, replaced atomically)",
        };

        var command = new Command("backup", "Back up databases, each into its own file")
        {
            instance, all, database, compression, encrypt, dryRun, prune, jobs, parallel, json,
        };
        command.Add(metricsFile);
        command.SetAction((parseResult, cancellationToken) =>
        {
            // A stop (Ctrl+C, SIGTERM) interrupts the run while it works (backup, prune): exit 130. It is
            // cancelled by the stop only until that work is done: a later stop cuts the report short
            // (the notifiers still sending give up, with a warning) and the run keeps its exit code.
            var interrupted = new CancellationTokenSource();
            var workingRegistration = cancellationToken.Register(interrupted.Cancel);
            return CommonOptions.RunAsync(async () =>
            {
                using var disposeAfter = interrupted;
                using var working = workingRegistration;
                var asJson = parseResult.GetValue(json);
                var startedUtc = DateTime.UtcNow;
                (AppConfig, List<InstanceConfig>, BackupRequest, string?) Prepare()
                {
                    if (parseResult.GetValue(parallel) < 1)
                    {
                        throw new UsageException("--parallel: give 1 or more");
                    }
                    if (asJson && parseResult.GetValue(prune))
                    {
                        throw new UsageException("--json and --prune: the JSON document is the backup's alone; run 'vya-backupdb prune' after it");
                    }
                    var config = CommonOptions.LoadConfig(parseResult);
                    var databaseName = parseResult.GetValue(database);
                    var instances = ChooseInstances(config, parseResult.GetValue(instance) ?? [], parseResult.GetValue(all), databaseName);
                    if (databaseName is not null && instances.FirstOrDefault(i => i.Dbms == Dbms.Files) is { } files)
                    {
                        // Said before anything runs, as a usage error: not a failed backup in the report, metrics and notifications.
                        throw new UsageException($"instance {files.Id} ({files.Name}) backs up files: --database does not apply to it");
                    }

                    var codec = ChooseCompression(parseResult, compression, config);
                    var request = new BackupRequest(instances, databaseName, codec, parseResult.GetValue(dryRun), parseResult.GetValue(encrypt),
                        parseResult.GetValue(jobs), parseResult.GetValue(parallel));
                    if ((request.Encrypt || instances.Any(i => i.Encrypt)) && !config.Encryption.CanEncrypt)
                    {
                        throw new UsageException($"encryption asked for, but {config.SourcePath} has no encryption: recipients or passphrase");
                    }
                    var metricsPath = parseResult.GetValue(metricsFile);
                    CommonOptions.RequireOutputFile("--metrics-file", metricsPath);
                    return (config, instances, request, metricsPath);
                }

                AppConfig config;
                List<InstanceConfig> instances;
                BackupRequest request;
                string? metricsPath;
                try
                {
                    (config, instances, request, metricsPath) = Prepare();
                }
                catch (VyaException e) when (asJson)
                {
                    // A script reading stdout gets a document for a run that did not start too.
                    BackupResults.PrintJsonNotStarted(e, parseResult.GetValue(parallel), startedUtc);
                    throw;
                }
                var observer = new ConsoleBackupObserver { Json = asJson };
                var tracker = new Reporting.RunTracker(observer);
                using var storages = new Storage.StorageSet(config);
                var operation = new BackupOperation(config, storages, TimeProvider.System, tracker);
                var reporter = new Reporting.RunReporter(config, storages.For, TimeProvider.System, Output.Warning);
                Reporting.RunOutcome outcome;
                try
                {
                    var report = await operation.RunAsync(request, cancellationToken).ConfigureAwait(false);
                    // The progress lines go before anything else is printed.
                    observer.Dispose();
                    if (request.DryRun)
                    {
                        if (asJson)
                        {
                            BackupResults.PrintJson(report, observer.Planned, instances, request.Parallel, startedUtc);
                        }
                        else if (parseResult.GetValue(prune))
                        {
                            Output.Line("--prune: a dry run backs nothing up, so it prunes nothing; 'vya-backupdb prune --dry-run' shows the plan");
                        }
                        // A dry run reports only failures (an instance it could not reach): they still fail it.
                        return report.Results.Count == 0 ? ExitCode.Success : report.ExitCode;
                    }
                    if (asJson)
                    {
                        BackupResults.PrintJson(report, observer.Planned, instances, request.Parallel, startedUtc);
                    }
                    else
                    {
                        BackupResults.Print(report);
                    }
                    outcome = new Reporting.RunOutcome(report);
                    if (parseResult.GetValue(prune))
                    {
                        // What failed is not pruned (its newest backup may be the one that failed); the rest is.
                        outcome = await PruneCommand.AfterBackupAsync(config, outcome, "pruning failed (see above)", cancellationToken).ConfigureAwait(false);
                    }
                    // The work is done: from here a stop no longer interrupts the run.
                    working.Dispose();
                    interrupted.Token.ThrowIfCancellationRequested();
                }
                catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested && !request.DryRun)
                {
                    // Stopped (Ctrl+C, SIGTERM): the metrics count what finished and the database under way as failed,
                    // an unattended run's notifiers hear of it, then the run ends with 130.
                    observer.Dispose();
                    var stopped = tracker.Interrupted(DateTime.UtcNow - startedUtc);
                    if (asJson)
                    {
                        // A script reading the document gets one, saying what finished (it got nothing).
                        BackupResults.PrintJson(stopped.Backup, [], instances, request.Parallel, startedUtc, stopped.ExitCode);
                    }
                    if (metricsPath is not null)
                    {
                        await reporter.WriteMetricsFileAsync(metricsPath, stopped, CancellationToken.None).ConfigureAwait(false);
                    }
                    await reporter.NotifyInterruptedAsync(tracker, startedUtc).ConfigureAwait(false);
                    throw;
                }
                finally
                {
                    // Also on Ctrl+C: the progress lines go before the error is printed.
                    observer.Dispose();
                }
                // The run's report, once all it does is done (whatever the output's form). The metrics file is
                // written even after a stop (it is quick, and says what the run did); a failure of either is a warning.
                if (metricsPath is not null)
                {
                    await reporter.WriteMetricsFileAsync(metricsPath, outcome, CancellationToken.None).ConfigureAwait(false);
                }
                await reporter.NotifyAsync(outcome, cancellationToken).ConfigureAwait(false);
                return outcome.ExitCode;
            }, interrupted.Token);
        });
        return command;
    }

    /// <summary>
    /// --all, or one or more --instance (backup takes several: a fleet's subset); --database only
    /// with a single --instance. One instance: the rule every command shares.
    /// </summary>
    private static List<InstanceConfig> ChooseInstances(AppConfig config, int[] ids, bool all, string? database)
    {
        if (ids.Length <= 1)
        {
            return CommonOptions.ChooseInstances(config, ids.Length == 1 ? ids[0] : null, all, database);
        }
        if (all)
        {
            throw new UsageException("--instance and --all exclude each other");
        }
        if (database is not null)
        {
            throw new UsageException("--database needs a single --instance");
        }
        return [.. ids.Distinct().Select(id => CommonOptions.ChooseInstances(config, id, all: false, database: null)[0])];
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
}
