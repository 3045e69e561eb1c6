using System.CommandLine;
using VyaBackupDb.Config;
using VyaBackupDb.Engines;
using VyaBackupDb.Errors;
using VyaBackupDb.Storage;

namespace VyaBackupDb.Cli;

internal static partial class CommonOptions
{
    public static readonly Option<string?> Config = new("--config")
    {
        Description = $"Config file (default: ${ConfigLoader.EnvVar}, else ./{ConfigLoader.DefaultPath})",
        Recursive = true,
    };

    public static readonly Option<string> LogFormat = CreateLogFormat();

    public static readonly Option<string?> LogFile = new("--log-file")
    {
        Description = "Also append every log, warning and error line to this file (created 0600; same format and redaction as the console)",
        Recursive = true,
    };

    private static Option<string> CreateLogFormat()
    {
        var option = new Option<string>("--log-format")
        {
            Description = "Log lines on stderr (and --log-file): text, or json (one object per line: time, level, message, instance, database)",
            DefaultValueFactory = _ => "text",
            Recursive = true,
        };
        option.AcceptOnlyFromAmong("text", "json");
        return option;
    }

    /// <summary>Sets up logging from --log-format and --log-file, before any command runs.</summary>
    public static void ConfigureLogging(ParseResult parseResult)
    {
        RequireOutputFile("--log-file", parseResult.GetValue(LogFile), appended: true);
        Output.Configure(parseResult.GetValue(LogFormat) == "json" ? Cli.LogFormat.Json : Cli.LogFormat.Text, parseResult.GetValue(LogFile));
    }

    /// <summary>--jobs N (backup and restore): connections of a parallel engine (engine: parallel).</summary>
    public static Option<int?> JobsOption()
    {
        var option = new Option<int?>("--jobs", "-j")
        {
            Description = $"Connections a parallel backup or restore uses (engine: parallel; default: the instance's jobs:, else one per core up to 8, here {ConfigLoader.DefaultJobs})",
        };
        RequireWholeNumber(option, 1, ConfigLoader.MaxJobs);
        return option;
    }

    /// <summary>
    /// An option's value a whole number in [min, max], said in one line: read from its token, since the typed value of
    /// one that did not parse ("1.5", "abc") cannot be asked for (that threw, a .NET trace and exit 134).
    /// </summary>
    public static void RequireWholeNumber(Option option, int min, int max) => option.Validators.Add(result =>
    {
        if (result.Tokens.Count > 0 && !(int.TryParse(result.Tokens[^1].Value, System.Globalization.NumberStyles.AllowLeadingSign,
                System.Globalization.CultureInfo.InvariantCulture, out var value) && value >= min && value <= max))
        {
            result.AddError($"{option.Name} must be a whole number between {min} and {max}");
        }
    });

    /// <summary>
    /// Options given on the command line that this run would ignore are a usage error: `--target` with `--globals`
    /// restored into nothing the user named, without a word.
    /// </summary>
    /// <param name="why">The rest of the line after the option's name, e.g. "does not apply with --globals".</param>
    public static void RefuseGiven(ParseResult parseResult, string why, params Option[] options)
    {
        if (options.FirstOrDefault(o => parseResult.GetResult(o) is { Implicit: false }) is { } given)
        {
            throw new UsageException($"{given.Name} {why}");
        }
    }

    /// <summary>
    /// The instances a command acts on: --instance ID (even if disabled, with a warning) or
    /// --all (every enabled one); exactly one of them, and --database only with --instance.
    /// </summary>
    public static List<InstanceConfig> ChooseInstances(AppConfig config, int? instanceId, bool all, string? database)
    {
        if (instanceId is not null && all)
        {
            throw new UsageException("--instance and --all exclude each other");
        }
        if (instanceId is null && !all)
        {
            throw new UsageException("give --instance ID or --all");
        }
        if (database is not null && instanceId is null)
        {
            throw new UsageException("--database needs --instance");
        }
        if (instanceId is { } id)
        {
            var chosen = config.GetInstance(id);
            if (!chosen.Enabled)
            {
                Output.Warning($"instance {id} ({chosen.Name}) is disabled in the config; using it as asked");
            }
            return [chosen];
        }
        var enabled = config.Instances.Where(i => i.Enabled).ToList();
        return enabled.Count > 0 ? enabled : throw new UsageException($"no enabled instance in {config.SourcePath}");
    }

    /// <summary>
    /// The command line's first error as one plain line: no .NET type names ("System.Nullable`1"),
    /// and an unknown command named as such rather than "Required command was not provided".
    /// </summary>
    public static string DescribeParseErrors(ParseResult parseResult, RootCommand root)
    {
        var messages = parseResult.Errors
            .Select(e => string.Join(' ', e.Message.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)))
            .ToList();
        var commands = string.Join(", ", root.Subcommands.Where(c => !c.Hidden).Select(c => c.Name));
        var message = messages.FirstOrDefault(m => m.StartsWith("Unrecognized command or argument", StringComparison.Ordinal)) ?? messages[0];
        if (message.StartsWith("Required command was not provided", StringComparison.Ordinal))
        {
            return parseResult.CommandResult.Command == root
                ? $"no command given (one of: {commands})"
                : $"'{parseResult.CommandResult.Command.Name}' needs a subcommand (one of: {string.Join(", ", parseResult.CommandResult.Command.Subcommands.Select(c => c.Name))})";
        }
        if (message.StartsWith("Unrecognized command or argument", StringComparison.Ordinal) && parseResult.CommandResult.Command == root)
        {
            return $"{message.TrimEnd('.')} (commands: {commands})";
        }
        var typed = ParseFailure().Match(message);
        if (typed.Success)
        {
            var (option, value) = (typed.Groups["option"].Value, typed.Groups["value"].Value);
            if (!typed.Groups["type"].Value.Contains("Int", StringComparison.Ordinal))
            {
                return $"{option}: '{value}' is not a valid value";
            }
            return System.Numerics.BigInteger.TryParse(value, System.Globalization.NumberStyles.Integer, System.Globalization.CultureInfo.InvariantCulture, out _)
                ? $"{option}: '{value}' is out of range" : $"{option}: '{value}' is not a whole number";
        }
        return message;
    }

    [System.Text.RegularExpressions.GeneratedRegex(@"^Cannot parse argument '(?<value>.*)' for option '(?<option>[^']*)' as expected type '(?<type>[^']*)'")]
    private static partial System.Text.RegularExpressions.Regex ParseFailure();

    /// <summary>A file an option names for output (--metrics-file, --html, --log-file): in a directory that exists, and a file.</summary>
    /// <param name="appended">Written to at its end (--log-file), not replaced: a device (/dev/null) will do.</param>
    public static void RequireOutputFile(string option, string? path, bool appended = false)
    {
        if (path is null)
        {
            return;
        }
        if (path.Length == 0)
        {
            throw new UsageException($"{option}: an empty file name");
        }
        if (Directory.Exists(path))
        {
            throw new UsageException($"{option} {path}: is a directory (name a file in it)");
        }
        if (!Directory.Exists(Path.GetDirectoryName(Path.GetFullPath(path))))
        {
            throw new UsageException($"{option} {path}: its directory does not exist");
        }
        // Never a FIFO (the write waits for a reader for ever; /dev/stdout is one under a pipe), and a file replaced whole
        // (renamed over its path) never a device: as root, --metrics-file /dev/null made the host's /dev/null a file.
        if (IoErrors.SpecialFileKind(path) is { } kind && !(appended && kind == "a device"))
        {
            throw new UsageException($"{option} {path}: is {kind}, not a regular file: name a file");
        }
    }

    /// <summary>Loads the config (vault passphrase prompted for on a terminal, if needed) and prints its warnings.</summary>
    public static AppConfig LoadConfig(ParseResult parseResult)
    {
        var config = ConfigLoader.Load(ConfigLoader.ResolvePath(parseResult.GetValue(Config)), ReadSecret);
        foreach (var warning in config.Warnings)
        {
            Output.Warning(warning);
        }
        return config;
    }

    /// <summary>Asks on the terminal without echo; null when stdin is not a terminal (cron, pipes).</summary>
    public static string? ReadSecret(string question)
    {
        if (Console.IsInputRedirected)
        {
            return null;
        }
        Console.Error.Write(question);
        var text = new System.Text.StringBuilder();
        while (true)
        {
            var key = Console.ReadKey(intercept: true);
            if (key.Key == ConsoleKey.Enter)
            {
                break;
            }
            if (key.Key == ConsoleKey.Backspace)
            {
                text.Length = Math.Max(0, text.Length - 1);
            }
            else if (!char.IsControl(key.KeyChar))
            {
                text.Append(key.KeyChar);
            }
        }
        Console.Error.WriteLine();
        return text.ToString();
    }

    /// <summary>
    /// Runs a command body and turns its outcome into an exit code and at most one error line.
    /// Messages of our exceptions are written to be shown (they never hold a secret).
    /// </summary>
    /// <param name="cancellationToken">The command's token: once it is cancelled (Ctrl+C, SIGTERM), whatever
    /// the body ends with is an interruption (exit 130), also a tool's own error about the same signal.</param>
    public static async Task<int> RunAsync(Func<Task<ExitCode>> body, CancellationToken cancellationToken = default)
    {
        Interruption.Begin();
        // Credential files and spools of runs that were killed (SIGKILL) hold secrets: gone at the next run.
        TempFiles.RemoveStale();
        try
        {
            var code = await body().ConfigureAwait(false);
            if (code != ExitCode.Success && cancellationToken.IsCancellationRequested)
            {
                Output.Error("interrupted; nothing partial was kept");
                return (int)ExitCode.Interrupted;
            }
            return (int)code;
        }
        catch (Exception e) when (cancellationToken.IsCancellationRequested && e is not OperationCanceledException)
        {
            // E.g. psql killed by the same Ctrl+C (the terminal signals the whole process group): the
            // cleanup has run (the message says what it did); the cause is the interruption.
            Output.Error($"interrupted: {e.Message}");
            return (int)ExitCode.Interrupted;
        }
        catch (Exception e) when (IoErrors.IsTooManyOpenFiles(e))
        {
            // Whatever it hit first (a config file, a password file, a runtime assembly): this host's limit is the cause.
            Output.Error(IoErrors.TooManyOpenFiles());
            return (int)ExitCode.Failed;
        }
        catch (VyaException e)
        {
            Output.Error(e.Message);
            return (int)e.ExitCode;
        }
        catch (OperationCanceledException)
        {
            Output.Error("interrupted; nothing partial was kept");
            return (int)ExitCode.Interrupted;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or InvalidOperationException or System.Data.Common.DbException
            or System.Net.Sockets.SocketException or System.Text.DecoderFallbackException)
        {
            // The message alone: one plain line, no .NET type names; it is a library's or server's text.
            Output.Error(e is StorageException ? e.Message : Redaction.Redact(IoErrors.Describe(e)));
            return (int)ExitCode.Failed;
        }
    }
}
