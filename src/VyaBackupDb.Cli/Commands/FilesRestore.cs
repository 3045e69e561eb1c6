using System.Globalization;
using Spectre.Console;
using VyaBackupDb.Config;
using VyaBackupDb.Errors;
using VyaBackupDb.Pipeline;
using VyaBackupDb.Sources.Files;

namespace VyaBackupDb.Cli.Commands;

/// <summary>restore --instance ID of a files instance: the backup's tree rebuilt under --target DIR.</summary>
[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
internal static class FilesRestore
{
    public static async Task<ExitCode> RunAsync(
        AppConfig config, InstanceConfig instance, string file, string? target, bool dryRun, bool force, bool verify, DecryptionKeys keys,
        CancellationToken cancellationToken)
    {
        if (target is null)
        {
            throw new UsageException($"instance {instance.Id} ({instance.Name}) backs up files: give --target DIR, the directory to rebuild the tree in");
        }
        var request = new FilesRestoreRequest(file, instance, target, dryRun, force, verify, keys);
        var observer = new Observer(request);
        var result = await new FilesRestoreOperation(config, observer).RunAsync(request, cancellationToken).ConfigureAwait(false);
        observer.Done();
        if (result is not null)
        {
            var restored = result.Restored;
            Output.Line($"restore summary: {result.Plan.Target}: {restored.Files} files ({Output.Size(restored.TotalBytes)}), "
                + $"{restored.Directories} directories, {restored.Symlinks} symlinks, {restored.HardLinks} hard links, {Output.Duration(result.Duration)}");
        }
        return ExitCode.Success;
    }

    private sealed class Observer(FilesRestoreRequest request) : IFilesRestoreObserver
    {
        private readonly PlanLine _planLine = new();
        private ProgressLine? _progress;

        public void Planned(FilesRestorePlan plan)
        {
            var source = "files backup";
            if (plan.Manifest?.Files is { } files)
            {
                source += $" of {string.Join(", ", files.Paths)} ({files.Files} files, {Output.Size(files.TotalBytes)})";
            }
            if (plan.TakenUtc is { } taken)
            {
                source += $" taken {taken.ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture)} UTC";
            }
            var state = plan.TargetState switch
            {
                TargetDirectoryState.Missing => "will be created",
                TargetDirectoryState.Empty => "exists, empty",
                _ => request.Force ? "not empty, its content will be replaced" : "not empty",
            };
            var verb = request.DryRun ? "would restore" : "restoring";
            _planLine.Set($"{verb} {plan.File} ({Output.Size(plan.FileBytes)}, {plan.Format.Compression.ToName()}, {source}) into {plan.Target}; target {state}");
        }

        public bool Confirm(string question) => _planLine.Confirm(question);

        public void Started(long fileBytes, Func<long> fileBytesRead)
        {
            _planLine.Say();
            _progress = new ProgressLine("restoring", fileBytesRead, fileBytes);
        }

        public void Warning(string message) => Output.Warning(message);

        /// <summary>After a run that was not refused: a dry run's plan line is said here.</summary>
        public void Done()
        {
            _planLine.Say();
            _progress?.Dispose();
        }
    }
}
