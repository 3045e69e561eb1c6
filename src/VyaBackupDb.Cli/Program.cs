using System.CommandLine;
using VyaBackupDb.Cli;
using VyaBackupDb.Cli.Commands;
using VyaBackupDb.Errors;

// With a low open files limit (the runtime alone holds ~60 files), an error must still be said in one line:
// open stdout and stderr, and set up the console (its first write loads an assembly), and note the limit,
// while files can still be opened.
Console.SetOut(new StandardOutput(Console.Out));
_ = Console.Error;
using (var stderr = Console.OpenStandardError())
{
    stderr.Write([]);
}
IoErrors.ReadOpenFilesLimit();

var root = new RootCommand("vya-backupdb: back up and restore MySQL/MariaDB and PostgreSQL databases.");
root.Add(CommonOptions.Config);
root.Add(CommonOptions.LogFormat);
root.Add(CommonOptions.LogFile);
root.Add(BackupCommand.Create());
root.Add(RestoreCommand.Create());
root.Add(VerifyCommand.Create());
root.Add(ListCommand.Create());
root.Add(PruneCommand.Create());
root.Add(CopyCommand.Create());
root.Add(KeygenCommand.Create());
root.Add(VaultCommand.Create());
root.Add(ScheduleCommand.Create());
root.Add(StatusCommand.Create());

var parseResult = root.Parse(args);
if (parseResult.Errors.Count > 0)
{
    // One line, usage exit code; --help shows the rest.
    await Console.Error.WriteLineAsync($"vya-backupdb: error: {CommonOptions.DescribeParseErrors(parseResult, root)} (see vya-backupdb --help)");
    return (int)ExitCode.UsageOrConfig;
}
try
{
    CommonOptions.ConfigureLogging(parseResult);
    VyaBackupDb.Storage.StorageKey.PassedOverWarning = Output.Warning;
}
catch (UsageException e)
{
    await Console.Error.WriteLineAsync($"vya-backupdb: error: {e.Message}");
    return (int)ExitCode.UsageOrConfig;
}
// On Ctrl+C / SIGTERM the running command is cancelled: it kills its child, removes temp files
// and credential files, and may drop a half-restored database. Give that time to finish.
// `schedule` handles its signals itself (a grace period for the running backup, SIGHUP reloads).
var service = parseResult.CommandResult.Command.Name == "schedule";
return await parseResult.InvokeAsync(new InvocationConfiguration { ProcessTerminationTimeout = service ? null : TimeSpan.FromSeconds(30) });
