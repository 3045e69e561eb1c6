using System.CommandLine;
using VyaBackupDb.Errors;
using VyaBackupDb.Pipeline.Age;

namespace VyaBackupDb.Cli.Commands;

internal static class KeygenCommand
{
    public static Command Create()
    {
        var output = new Option<string?>("--output", "-o")
        {
            Description = "Write the identity file here (mode 0600; an existing file is never overwritten). Default: print it on stdout",
        };
        var command = new Command("keygen", "Generate an age X25519 identity for encrypted backups (age-keygen's file format) and print its public key")
        {
            output,
        };
        command.SetAction((parseResult, cancellationToken) => CommonOptions.RunAsync(async () =>
        {
            var identity = AgeIdentity.Generate();
            var keyFile = identity.ToKeyFile(TimeProvider.System.GetLocalNow());
            var path = parseResult.GetValue(output);
            if (path is null)
            {
                // Like age-keygen: the file on stdout, the public key on stderr.
                await Console.Out.WriteAsync(keyFile).ConfigureAwait(false);
                await Console.Error.WriteLineAsync($"Public key: {identity.Recipient}").ConfigureAwait(false);
                return ExitCode.Success;
            }
            if (path.Length == 0)
            {
                throw new UsageException("--output: an empty file name");
            }
            if (File.Exists(path) || Directory.Exists(path))
            {
                throw new UsageException($"{path} already exists; keygen never overwrites a key file");
            }
            // 0600 from the start: the secret key is never readable by others, not even briefly.
            var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write };
            if (!OperatingSystem.IsWindows())
            {
                options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
            }
            FileStream file;
            try
            {
                file = new FileStream(path, options);
            }
            catch (IOException) when (File.Exists(path))
            {
                throw new UsageException($"{path} already exists; keygen never overwrites a key file");
            }
            catch (DirectoryNotFoundException)
            {
                throw new UsageException($"cannot write {path}: its folder does not exist");
            }
            catch (UnauthorizedAccessException)
            {
                throw new UsageException($"cannot write {path}: permission denied");
            }
            try
            {
                await using (file.ConfigureAwait(false))
                {
                    await file.WriteAsync(System.Text.Encoding.ASCII.GetBytes(keyFile), cancellationToken).ConfigureAwait(false);
                    file.Flush(flushToDisk: true);
                }
            }
            catch
            {
                File.Delete(path); // no half-written key file
                throw;
            }
            Output.Line(identity.Recipient.ToString());
            return ExitCode.Success;
        }));
        return command;
    }
}
