using System.CommandLine;
using System.Text;
using Microsoft.Win32.SafeHandles;
using VyaBackupDb.Cli;
using VyaBackupDb.Cli.Commands;
using VyaBackupDb.Errors;

// Out of open files or memory (ulimit -n, ulimit -v), wherever it shows: one line and exit 1, no stack trace. Also on a
// thread of its own (a timer, the thread pool), where the runtime would print the trace and abort (exit 134).
AppDomain.CurrentDomain.UnhandledException += (_, e) =>
{
    if (e.ExceptionObject is Exception exception && IoErrors.IsOutOfResources(exception))
    {
        Environment.Exit(OutOfResources(exception));
    }
};
try
{
    return await RunAsync(args);
}
catch (Exception e) when (IoErrors.IsOutOfResources(e))
{
    return OutOfResources(e);
}

static async Task<int> RunAsync(string[] args)
{
    // With a low open files limit (the runtime alone holds ~60 files), an error must still be said in one line:
    // open stdout and stderr, set up the console (its first write loads an assembly) and Output (its JSON setup
    // loads another), and note the limits, while files can still be opened.
    IoErrors.ReadLimits();
    Console.SetOut(new StandardOutput(Console.Out));
    _ = Console.Error;
    using (var stderr = Console.OpenStandardError())
    {
        stderr.Write([]);
    }
    _ = Output.IsTerminal;

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
        // One line, usage exit code; --help shows the rest. In the log's format when that much could be read.
        try
        {
            CommonOptions.ConfigureLogging(parseResult);
        }
        catch (Exception e) when (e is UsageException or InvalidOperationException)
        {
            // The log options are among what is wrong: plain text.
        }
        Output.Error($"{CommonOptions.DescribeParseErrors(parseResult, root)} (see vya-backupdb --help)");
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
    var invocation = new InvocationConfiguration
    {
        ProcessTerminationTimeout = service ? null : TimeSpan.FromSeconds(30),
        // What escapes a command comes here: out of resources is one line (above); anything else (a bug) keeps its trace.
        EnableDefaultExceptionHandler = false,
    };
    try
    {
        return await parseResult.InvokeAsync(invocation);
    }
    catch (Exception e) when (!IoErrors.IsOutOfResources(e))
    {
        await Console.Error.WriteLineAsync($"Unhandled exception: {e}");
        return (int)ExitCode.Failed;
    }
}

// Straight to file descriptor 2: Console.Error, Output (its type may have failed to set up) or a dup of the
// descriptor may be what ran out.
static int OutOfResources(Exception e)
{
    var line = Encoding.UTF8.GetBytes($"vya-backupdb: error: {IoErrors.OutOfResources(e)}\n");
    try
    {
        using var stderr = new FileStream(new SafeFileHandle(2, ownsHandle: false), FileAccess.Write, bufferSize: 0);
        stderr.Write(line);
    }
    catch (Exception)
    {
        // Nowhere left to say it: the exit code still does.
    }
    return (int)ExitCode.Failed;
}
