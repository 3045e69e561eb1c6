using System.CommandLine;
using System.Globalization;
using Spectre.Console;
using VyaBackupDb.Config;
using VyaBackupDb.Engines.MySql;
using VyaBackupDb.Errors;
using VyaBackupDb.Operations;

namespace VyaBackupDb.Cli.Commands;

internal static class RestoreCommand
{
    public static Command Create()
    {
        var file = new Option<string>("--file", "-f")
        {
            Description = "The backup to restore: a path, STORAGE:KEY (a storage named in the config; local = backup_dir), s3://BUCKET/KEY or sftp://[USER@]HOST[:PORT]/PATH (port 22 unless given)",
            Required = true,
        };
        var instance = new Option<int>("--instance", "-i") { Description = "Restore into this instance (its id in the config)", Required = true };
        var target = new Option<string?>("--target", "-t") { Description = "Target database (default: the database named in the file name); for a files instance, the directory to rebuild the tree in" };
        var dryRun = new Option<bool>("--dry-run") { Description = "Print what would be done; touch nothing" };
        var force = new Option<bool>("--force") { Description = "Replace the target database even if it holds tables (a files instance: replace the target directory's content)" };
        var noVerify = new Option<bool>("--no-verify")
        {
            Description = "Skip the checks against the manifest (digests, row and object counts) and the completion trailer",
        };

        var identity = new Option<string?>("--identity") { Description = "age identity file for an encrypted backup (besides the config's identity_files)" };
        var terminate = new Option<bool>("--terminate-connections")
        {
            Description = "End other clients' sessions on the target when they keep it from being replaced (default: fail, target unchanged)",
        };
        var definer = DefinerOption();
        var allowDataDirectory = AllowDataDirectoryOption();
        var trustBackup = TrustBackupOption();
        var enableEvents = new Option<bool>("--enable-events")
        {
            Description = "MySQL: leave events enabled as dumped (by default they are restored disabled, so a copy runs no scheduled jobs)",
        };

        var globals = new Option<bool>("--globals")
        {
            Description = "Restore a users/roles/grants backup (the _globals item) into the instance's server; --dry-run prints the statements",
        };
        var replaceExisting = new Option<bool>("--replace-existing")
        {
            Description = "With --globals: replace roles/accounts that already exist (default: skip them, with a warning)",
        };

        var account = new Option<string[]>("--account")
        {
            Description = "With --globals: restore only this role/account (PostgreSQL role; MySQL user or role name, any host); repeatable",
        };

        var jobs = CommonOptions.JobsOption();

        var command = new Command("restore", "Restore a backup file into one database")
        {
            file, instance, target, dryRun, force, noVerify, identity, terminate, definer, allowDataDirectory, trustBackup, enableEvents, globals, replaceExisting, account, jobs,
        };
        command.SetAction((parseResult, cancellationToken) => CommonOptions.RunAsync(async () =>
        {
            var config = CommonOptions.LoadConfig(parseResult);
            if (!OperatingSystem.IsWindows() && config.GetInstance(parseResult.GetValue(instance)) is { Dbms: Dbms.Files } files)
            {
                CommonOptions.RefuseGiven(parseResult, "does not apply to a files instance",
                    terminate, definer, allowDataDirectory, trustBackup, enableEvents, globals, replaceExisting, account, jobs);
                return await FilesRestore.RunAsync(config, files, parseResult.GetRequiredValue(file), parseResult.GetValue(target),
                    parseResult.GetValue(dryRun), parseResult.GetValue(force), !parseResult.GetValue(noVerify),
                    config.Encryption.KeysFor(parseResult.GetValue(identity)), cancellationToken).ConfigureAwait(false);
            }
            var into = config.GetInstance(parseResult.GetValue(instance));
            if (parseResult.GetValue(globals))
            {
                CommonOptions.RefuseGiven(parseResult, "does not apply with --globals (a users/roles/grants restore has no target database; --replace-existing replaces accounts)",
                    target, force, terminate, definer, allowDataDirectory, trustBackup, enableEvents, jobs);
                return await GlobalsRestore.RunAsync(config, into, parseResult.GetRequiredValue(file), parseResult.GetValue(dryRun),
                    parseResult.GetValue(replaceExisting), parseResult.GetValue(account) ?? [], !parseResult.GetValue(noVerify), config.Encryption.KeysFor(parseResult.GetValue(identity)),
                    cancellationToken).ConfigureAwait(false);
            }
            CommonOptions.RefuseGiven(parseResult, "needs --globals", replaceExisting, account);
            if (Catalog.BackupName.TryParse(Path.GetFileName(parseResult.GetRequiredValue(file))) is { Database: Engines.Globals.ItemName })
            {
                throw new UsageException("this is a backup of users, roles and grants: restore it with --globals");
            }
            // A bare file name (as list shows it) is looked up in the instance's destinations.
            using var storages = new Storage.StorageSet(config);
            var location = await BackupLocations.FindAsync(parseResult.GetRequiredValue(file), into, config, storages, cancellationToken)
                .ConfigureAwait(false);
            var request = new RestoreRequest(
                location.Description,
                into,
                parseResult.GetValue(target),
                parseResult.GetValue(dryRun),
                parseResult.GetValue(force),
                !parseResult.GetValue(noVerify),
                Location: location,
                Keys: config.Encryption.KeysFor(parseResult.GetValue(identity)),
                TerminateConnections: parseResult.GetValue(terminate),
                Definer: DefinerValue(parseResult, definer),
                EnableEvents: parseResult.GetValue(enableEvents),
                Jobs: parseResult.GetValue(jobs),
                AllowDataDirectory: parseResult.GetValue(allowDataDirectory),
                TrustBackup: parseResult.GetValue(trustBackup));
            var observer = new ConsoleRestoreObserver(request);
            RestoreResult? result;
            try
            {
                result = await new RestoreOperation(config, observer).RunAsync(request, cancellationToken).ConfigureAwait(false);
            }
            finally
            {
                // Also on failure and Ctrl+C: the progress line stops before the error is printed.
                observer.Done();
            }
            if (request.DryRun)
            {
                observer.SayPlan();
            }
            if (result is not null)
            {
                Output.Line($"restore summary: '{result.Plan.Target}' on instance {request.Instance.Id} ({request.Instance.Name}): "
                    + $"{result.TablesRestored} tables, {Output.Size(result.PlainBytes)} of SQL, {Output.Duration(result.Duration)}");
            }
            return ExitCode.Success;
        }, cancellationToken));
        return command;
    }

    /// <summary>--definer keep|strip|current-user (restore and verify --restore).</summary>
    internal static Option<string?> DefinerOption()
    {
        var option = new Option<string?>("--definer")
        {
            Description = "MySQL: DEFINER of views, triggers, routines and events: keep (as dumped), strip (the restoring account "
                + "becomes the definer) or current-user; default: the instance's definer setting, else keep",
        };
        option.AcceptOnlyFromAmong("keep", "strip", "current-user");
        return option;
    }

    /// <summary>--allow-data-directory (restore and verify --restore).</summary>
    internal static Option<bool> AllowDataDirectoryOption() => new("--allow-data-directory")
    {
        Description = "MySQL: create tables with the DATA DIRECTORY / INDEX DIRECTORY they were dumped with (by default such a "
            + "backup is refused: its table files would be written outside the server's data directory)",
    };

    /// <summary>--trust-backup (restore and verify --restore).</summary>
    internal static Option<bool> TrustBackupOption() => new("--trust-backup")
    {
        Description = "PostgreSQL: load as the instance's account even when it is a superuser (by default a superuser's restore loads "
            + "as a temporary unprivileged role, so that code the backup defines cannot act as the superuser); for a backup "
            + "you trust that needs a superuser to load (an untrusted extension or language, an event trigger)",
    };

    /// <summary>The --definer given, or null (the instance's setting applies).</summary>
    internal static DefinerMode? DefinerValue(ParseResult parseResult, Option<string?> option) =>
        DefinerModes.TryParse(parseResult.GetValue(option), out var mode) ? mode : null;

    private sealed class ConsoleRestoreObserver(RestoreRequest request) : IRestoreObserver
    {
        private readonly PlanLine _planLine = new();
        private ProgressLine? _progress;

        public void Planned(RestorePlan plan)
        {
            var source = plan.FileDbms is { } dbms ? $"{dbms.ToName()} backup" : "SQL dump";
            if (plan.SourceDatabase is not null)
            {
                source += $" of '{plan.SourceDatabase}'";
            }
            if (plan.TakenUtc is { } taken)
            {
                source += $" taken {taken.ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture)} UTC";
            }
            var target = plan.TargetState switch
            {
                { Exists: false } => "will be created",
                { HoldsData: false } => "exists, empty",
                var state => request.Force ? $"holds {state.Contents}, will be replaced"
                    : request.DryRun ? $"holds {state.Contents}: replacing it needs --force (or a yes on a terminal)"
                    : $"holds {state.Contents}",
            };
            var verb = request.DryRun ? "would restore" : "restoring";
            _planLine.Set($"{verb} {plan.File} ({Output.Size(plan.FileBytes)}, {plan.Compression.ToString().ToLowerInvariant()}, {source}) "
                + $"into '{plan.Target}' on instance {request.Instance.Id} ({request.Instance.Name}); target {target}");
        }

        /// <summary>A dry run's plan line, at its end.</summary>
        public void SayPlan() => _planLine.Say();

        public bool Confirm(string question) => _planLine.Confirm(question);

        public void Started(long fileBytes, Func<long> fileBytesRead)
        {
            _planLine.Say();
            _progress = new ProgressLine("restoring", fileBytesRead, fileBytes);
        }

        public void Compared(InventoryComparison comparison)
        {
            _progress?.Dispose();
            foreach (var line in comparison.Lines)
            {
                var mark = comparison.Mismatches.Contains(line) ? "MISMATCH" : comparison.Warnings.Contains(line) ? "differs " : "ok      ";
                Output.Line($"  {mark} {line}");
            }
            foreach (var mismatch in comparison.Mismatches.Except(comparison.Lines))
            {
                Output.Line($"  MISMATCH {mismatch}");
            }
            foreach (var warning in comparison.Warnings)
            {
                Output.Warning(warning);
            }
        }

        public void Warning(string message) => Output.Warning(message);

        public void Done() => _progress?.Dispose();
    }
}
