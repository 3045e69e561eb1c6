using System.CommandLine;
using VyaBackupDb.Cli;
using VyaBackupDb.Cli.Commands;
using VyaBackupDb.Errors;

var root = new RootCommand("vya-backupdb: back up and restore MySQL/MariaDB and PostgreSQL databases.");
root.Add(CommonOptions.Config);
root.Add(BackupCommand.Create());
root.Add(RestoreCommand.Create());
root.Add(VerifyCommand.Create());
root.Add(VaultCommand.Create());

var parseResult = root.Parse(args);
if (parseResult.Errors.Count > 0)
{
    // One line, usage exit code; --help shows the rest.
    await Console.Error.WriteLineAsync($"vya-backupdb: {parseResult.Errors[0].Message} (see vya-backupdb --help)");
    return (int)ExitCode.UsageOrConfig;
}
return await parseResult.InvokeAsync();
