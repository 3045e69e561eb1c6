using System.CommandLine;
using VyaBackupDb.Errors;
using VyaBackupDb.Operations;

namespace VyaBackupDb.Cli.Commands;

internal static class VerifyCommand
{
    public static Command Create()
    {
        var file = new Option<string?>("--file", "-f")
        {
            Description = "Verify this backup: a path, STORAGE:KEY (a storage named in the config; local = backup_dir), s3://BUCKET/KEY or sftp://[USER@]HOST[:PORT]/PATH (port 22 unless given)",
        };
        var instance = new Option<int?>("--instance", "-i")
        {
            Description = "Verify the backups of this instance in each of its destinations (or: restore --file into it)",
        };
        var database = new Option<string?>("--database", "-d") { Description = "Only the backups of this database" };
        var latest = new Option<bool>("--latest") { Description = "Only the newest backup of each database" };
        var restore = new Option<bool>("--restore")
        {
            Description = "Also restore into a scratch database (dropped afterwards) and compare row and object counts with the manifest",
        };

        var identity = new Option<string?>("--identity") { Description = "age identity file for encrypted backups (besides the config's identity_files)" };

        var definer = RestoreCommand.DefinerOption();
        var allowDataDirectory = RestoreCommand.AllowDataDirectoryOption();
        var trustBackup = RestoreCommand.TrustBackupOption();
        var command = new Command("verify", "Check backups: digests, decoding, completion trailer; optionally a test restore")
        {
            file, instance, database, latest, restore, identity, definer, allowDataDirectory, trustBackup,
        };
        command.SetAction((parseResult, cancellationToken) => CommonOptions.RunAsync(async () =>
        {
            var config = CommonOptions.LoadConfig(parseResult);
            var filePath = parseResult.GetValue(file);
            var instanceId = parseResult.GetValue(instance);
            if (filePath is null && instanceId is null)
            {
                throw new UsageException("give --file PATH or --instance ID");
            }
            if (filePath is not null && instanceId is not null && !parseResult.GetValue(restore))
            {
                throw new UsageException("--file and --instance go together only with --restore (the instance to restore into)");
            }
            if (filePath is not null && (parseResult.GetValue(database) is not null || parseResult.GetValue(latest)))
            {
                throw new UsageException("--database and --latest go with --instance, not --file");
            }
            var request = new VerifyRequest(
                filePath,
                instanceId is { } id ? config.GetInstance(id) : null,
                parseResult.GetValue(database),
                parseResult.GetValue(latest),
                parseResult.GetValue(restore),
                parseResult.GetValue(identity),
                RestoreCommand.DefinerValue(parseResult, definer),
                parseResult.GetValue(allowDataDirectory),
                parseResult.GetValue(trustBackup));
            var observer = new ConsoleVerifyObserver();
            IReadOnlyList<VerifyResult> results;
            try
            {
                results = await new VerifyOperation(config, observer).RunAsync(request, cancellationToken).ConfigureAwait(false);
            }
            finally
            {
                // Also on failure and Ctrl+C: the progress line stops before the error is printed.
                observer.Done();
            }
            var unreachable = results.Count(r => r.Check.Unreachable);
            var failed = results.Count(r => !r.Check.Ok) - unreachable;
            Output.Line($"verify summary: {results.Count - failed - unreachable} OK, {failed} failed"
                + (unreachable == 0 ? "" : $", {unreachable} could not be checked"));
            // A backup found bad outranks one that could not be read: that needs a look first.
            return results.Any(r => r.Check.DecryptionFailed) ? ExitCode.DecryptionFailed
                : failed > 0 ? ExitCode.VerificationFailed
                : unreachable > 0 ? ExitCode.Failed
                : ExitCode.Success;
        }, cancellationToken));
        return command;
    }

    private sealed class ConsoleVerifyObserver : IVerifyObserver
    {
        private ProgressLine? _progress;

        public void Checked(VerifyResult result)
        {
            _progress?.Dispose();
            var check = result.Check;
            if (check.Unreachable)
            {
                Output.Error($"{check.File}: {string.Join("; ", check.Problems)}");
            }
            else if (check.Ok)
            {
                var restored = result.Comparison is null ? "" : ", test restore matches the manifest";
                Output.Line($"OK     {check.File}{restored}");
            }
            else
            {
                Output.Line($"FAILED {check.File}: {string.Join("; ", check.Problems)}");
            }
            foreach (var note in check.Notes)
            {
                Output.Line($"       {note}");
            }
        }

        public void Skipped(string file, string reason) => Output.Line($"SKIP   {file}: {reason}");

        private RestorePlan? _plan;

        public void Planned(RestorePlan plan) => _plan = plan;

        public bool Confirm(string question) => false;

        public void Started(long fileBytes, Func<long> fileBytesRead)
        {
            if (!Output.IsTerminal && _plan is { } plan)
            {
                Output.Log($"test restore of {plan.File} into the scratch database '{plan.Target}'");
            }
            _progress = new ProgressLine("test restore", fileBytesRead, fileBytes);
        }

        public void Compared(InventoryComparison comparison)
        {
            _progress?.Dispose();
            foreach (var mismatch in comparison.Mismatches)
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
