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
            Description = "Verify this backup: a path, STORAGE:KEY (a storage named in the config; local = backup_dir), s3://BUCKET/KEY or sftp://HOST/PATH",
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
        var command = new Command("verify", "Check backups: digests, decoding, completion trailer; optionally a test restore")
        {
            file, instance, database, latest, restore, identity, definer,
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
                RestoreCommand.DefinerValue(parseResult, definer));
            var observer = new ConsoleVerifyObserver();
            var results = await new VerifyOperation(config, observer).RunAsync(request, cancellationToken).ConfigureAwait(false);
            var failed = results.Count(r => !r.Check.Ok);
            Output.Line($"verify summary: {results.Count - failed} OK, {failed} failed");
            return failed == 0 ? ExitCode.Success
                : results.Any(r => r.Check.DecryptionFailed) ? ExitCode.DecryptionFailed
                : ExitCode.VerificationFailed;
        }));
        return command;
    }

    private sealed class ConsoleVerifyObserver : IVerifyObserver
    {
        private ProgressLine? _progress;

        public void Checked(VerifyResult result)
        {
            _progress?.Dispose();
            var check = result.Check;
            if (check.Ok)
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

        public void Planned(RestorePlan plan)
        {
        }

        public bool Confirm(string question) => false;

        public void Started(long fileBytes, Func<long> fileBytesRead) =>
            _progress = new ProgressLine("test restore", fileBytesRead, fileBytes);

        public void Compared(InventoryComparison comparison)
        {
            _progress?.Dispose();
            foreach (var mismatch in comparison.Mismatches)
            {
                Output.Line($"  MISMATCH {mismatch}");
            }
            foreach (var warning in comparison.Warnings)
            {
                Output.Warning($"{warning} (the count was an estimate: the source was written during the backup?)");
            }
        }

        public void Warning(string message) => Output.Warning(message);
    }
}
