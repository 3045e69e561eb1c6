using System.CommandLine;
using System.CommandLine.Parsing;
using System.Runtime.CompilerServices;
using System.Text;
using Microsoft.Win32.SafeHandles;
using VyaBackupDb.Cli;
using VyaBackupDb.Cli.Commands;
using VyaBackupDb.Errors;

// With a low open files limit (the runtime alone holds ~60 files) every first use of an assembly or a file can fail,
// the handlers of such a failure included: what they need is loaded first, and this method names nothing outside
// the runtime's core library and this assembly, so that it can always say one line.
try
{
    StartUp();
}
catch (Exception e)
{
    return StartUpFailed(e);
}
return await RunAsync(args);

// Loads what the out-of-resources handlers use (our library, Win32Exception's assembly, libc) and notes the limits;
// takes the signals (Interruption); opens stdout and stderr and sets up the console (its first write loads an
// assembly) and Output (its JSON setup loads another), while files can still be opened.
[MethodImpl(MethodImplOptions.NoInlining)]
static void StartUp()
{
    IoErrors.ReadLimits();
    // Out of open files or memory (ulimit -n, ulimit -v), wherever it shows: one line and exit 1, no stack trace. Also on
    // a thread of its own (a timer, the thread pool), where the runtime would print the trace and abort (exit 134).
    AppDomain.CurrentDomain.UnhandledException += (_, e) =>
    {
        if (e.ExceptionObject is Exception exception && IoErrors.IsOutOfResources(exception))
        {
            Environment.Exit(OutOfResources(exception));
        }
    };
    Interruption.Register();
    Console.SetOut(new StandardOutput(Console.Out));
    Console.SetError(new StandardError(Console.Error));
    using (var stderr = Console.OpenStandardError())
    {
        stderr.Write([]);
    }
    _ = Output.IsTerminal;
}

// What fails at startup is a limit (see StartUp), said without a trace; the library may be what could not be loaded.
static int StartUpFailed(Exception e)
{
    try
    {
        return OutOfResourcesOrBug(e);
    }
    catch (Exception)
    {
        return Say("too many open files or out of memory (ulimit -n, ulimit -v): raise the limits");
    }
}

[MethodImpl(MethodImplOptions.NoInlining)]
static int OutOfResourcesOrBug(Exception e) =>
    IoErrors.IsOutOfResources(e) ? OutOfResources(e) : Say($"Unhandled exception: {e}");

static async Task<int> RunAsync(string[] args)
{
    try
    {
        return await RunCommandAsync(args);
    }
    catch (Exception e) when (IoErrors.IsOutOfResources(e))
    {
        return OutOfResources(e);
    }
}

static async Task<int> RunCommandAsync(string[] args)
{
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

    // No response files: "@file" would be replaced by the file's words (a password file's line shown in an error).
    var parseResult = root.Parse(args, new ParserConfiguration { ResponseFileTokenReplacer = null });
    if (parseResult.Errors.Count == 0 && OptionTakenAsValue(parseResult, root) is { } taken)
    {
        Output.Error($"{taken} (see vya-backupdb --help)");
        return (int)ExitCode.UsageOrConfig;
    }
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
    // and credential files, and may drop a half-restored database (see Interruption).
    // `schedule` handles its signals itself (a grace period for the running backup, SIGHUP reloads).
    Interruption.CommandHandlesSignals = parseResult.CommandResult.Command.Name == "schedule";
    var invocation = new InvocationConfiguration
    {
        ProcessTerminationTimeout = null,
        // What escapes a command comes here: out of resources is one line (above); anything else (a bug) keeps its trace.
        EnableDefaultExceptionHandler = false,
    };
    try
    {
        return await parseResult.InvokeAsync(invocation, Interruption.Token);
    }
    catch (Exception e) when (!IoErrors.IsOutOfResources(e))
    {
        await Console.Error.WriteLineAsync($"Unhandled exception: {e}");
        return (int)ExitCode.Failed;
    }
}

// `--target --dry-run`: the option given no value took the next option for it (a real restore ran, into a database
// named --dry-run). A value that is one of the command's options is refused.
static string? OptionTakenAsValue(ParseResult parseResult, RootCommand root)
{
    var options = parseResult.CommandResult.Command.Options.Concat(root.Options).SelectMany(o => o.Aliases.Append(o.Name)).ToHashSet(StringComparer.Ordinal);
    return parseResult.CommandResult.Children.OfType<OptionResult>()
        .SelectMany(option => option.Tokens.Where(t => t.Type == TokenType.Argument && options.Contains(t.Value))
            .Select(t => $"{option.Option.Name} needs a value: '{t.Value}' is an option"))
        .FirstOrDefault();
}

static int OutOfResources(Exception e) => Say(IoErrors.OutOfResources(e));

// One error line and exit 1, straight to file descriptor 2: Console.Error, Output (its type may have failed to set up)
// or a dup of the descriptor may be what ran out.
static int Say(string error)
{
    var line = Encoding.UTF8.GetBytes($"vya-backupdb: error: {error}\n");
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

/// <summary>
/// SIGTERM and SIGINT, from the start of the process. Before a command has begun (<see cref="CommonOptions.RunAsync"/>)
/// nothing is done yet: one "interrupted" line and exit 130, as a stop later gives (the runtime's default is a silent
/// 143). Then the command's token (<see cref="Token"/>) is cancelled: it kills its children, removes its temp and
/// credential files, drops what it half made, and exits 130; if that takes longer than <see cref="Cleanup"/>, the process
/// ends with 128 + the signal. A command that handles signals itself (schedule) is left to.
/// </summary>
internal static class Interruption
{
    private static readonly TimeSpan Cleanup = TimeSpan.FromSeconds(30);

    private static readonly CancellationTokenSource Stopping = new();

    // Held for the process's life: a registration collected is unregistered.
    private static readonly List<System.Runtime.InteropServices.PosixSignalRegistration> Registrations = [];

    private static int _begun;

    public static CancellationToken Token => Stopping.Token;

    public static bool CommandHandlesSignals { get; set; }

    /// <summary>SIGXFSZ (Linux's number): a write past `ulimit -f`.</summary>
    private const System.Runtime.InteropServices.PosixSignal FileSizeLimit = (System.Runtime.InteropServices.PosixSignal)25;

    public static void Register()
    {
        foreach (var signal in new[] { System.Runtime.InteropServices.PosixSignal.SIGTERM, System.Runtime.InteropServices.PosixSignal.SIGINT })
        {
            Registrations.Add(System.Runtime.InteropServices.PosixSignalRegistration.Create(signal, Stop));
        }
        // Its default kills the process at once (no line, files and locks left behind); taken, the write fails
        // instead (EFBIG, "File too large") and is reported and cleaned up as a full disk is.
        if (OperatingSystem.IsLinux())
        {
            Registrations.Add(System.Runtime.InteropServices.PosixSignalRegistration.Create(FileSizeLimit, context => context.Cancel = true));
        }
    }

    /// <summary>A command begins: from now on a stop cancels it.</summary>
    public static void Begin() => Interlocked.Exchange(ref _begun, 1);

    private static void Stop(System.Runtime.InteropServices.PosixSignalContext context)
    {
        if (Volatile.Read(ref _begun) == 0)
        {
            context.Cancel = true;
            Console.Error.WriteLine("vya-backupdb: error: interrupted before it began; nothing was done");
            Environment.Exit((int)ExitCode.Interrupted);
        }
        if (CommandHandlesSignals)
        {
            return;
        }
        context.Cancel = true;
        if (Stopping.IsCancellationRequested)
        {
            return;
        }
        var status = context.Signal == System.Runtime.InteropServices.PosixSignal.SIGTERM ? 128 + 15 : 128 + 2;
        _ = Task.Delay(Cleanup).ContinueWith(_ => Environment.Exit(status), TaskScheduler.Default);
        Stopping.Cancel();
    }
}
