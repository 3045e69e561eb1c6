using System.CommandLine;
using VyaBackupDb.Config;
using VyaBackupDb.Errors;

namespace VyaBackupDb.Cli;

internal static class CommonOptions
{
    public static readonly Option<string?> Config = new("--config")
    {
        Description = $"Config file (default: ${ConfigLoader.EnvVar}, else ./{ConfigLoader.DefaultPath})",
        Recursive = true,
    };

    public static AppConfig LoadConfig(ParseResult parseResult) =>
        ConfigLoader.Load(ConfigLoader.ResolvePath(parseResult.GetValue(Config)));

    /// <summary>
    /// Runs a command body and turns its outcome into an exit code and at most one error line.
    /// Messages of our exceptions are written to be shown (they never hold a secret).
    /// </summary>
    public static async Task<int> RunAsync(Func<Task<ExitCode>> body)
    {
        try
        {
            return (int)await body().ConfigureAwait(false);
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
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or InvalidOperationException)
        {
            Output.Error($"{e.GetType().Name}: {e.Message}");
            return (int)ExitCode.Failed;
        }
    }
}
