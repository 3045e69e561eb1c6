namespace VyaBackupDb.Tests.Integration;

/// <summary>
/// Alone: the runbook and <see cref="WholeServerRestoreTests"/> restore a whole instance's roles, which must
/// not race other tests' roles (and, across test runs, share the second servers under <see cref="SecondServers.LockAsync"/>).
/// </summary>
[CollectionDefinition(nameof(RunbookTests), DisableParallelization = true)]
public sealed class RunbookCollection;

/// <summary>
/// docs/disaster-recovery.md cannot go stale: scripts/runbook runs its every sh block against the
/// test servers (backups of every kind, also from S3 and SFTP, restored with vya-backupdb and with
/// the standard tools alone; a whole instance onto the second servers) and checks that what they
/// restored equals the sources.
/// </summary>
[Trait("Category", "Integration")]
[Collection(nameof(RunbookTests))]
public sealed class RunbookTests
{
    [SkippableFact]
    public async Task Every_command_of_the_disaster_recovery_runbook_works()
    {
        await TestServers.RequireMySqlAsync();
        await TestServers.RequirePostgresAsync();
        await TestServers.RequireSecondMySqlAsync();
        await TestServers.RequireSecondPostgresAsync();
        await TestServers.RequireS3Async();
        await TestServers.RequireSftpAsync();
        var root = AppContext.BaseDirectory;
        while (!File.Exists(Path.Combine(root, "VyaBackupDb.slnx")))
        {
            root = Path.GetDirectoryName(root) ?? throw new InvalidOperationException("the repository root was not found above the tests");
        }

        // The CLI these tests run (already built), not the checkout's launcher (which would build its own).
        var cli = Path.Combine(Directory.CreateTempSubdirectory("vya-itest-runbook-").FullName, "vya-backupdb");
        await File.WriteAllTextAsync(cli, $"#!/bin/sh\nexec '{Run.Dotnet}' '{Run.CliDll}' \"$@\"\n");
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(cli, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }

        ProcessResult run;
        try
        {
            // The whole runbook: tens of commands, a few minutes on a busy machine.
            run = await Run.ProgramAsync(Path.Combine(root, "scripts", "runbook"), [], new Dictionary<string, string> { ["VYA_CLI"] = cli },
                limitMinutes: 15);
        }
        finally
        {
            Directory.Delete(Path.GetDirectoryName(cli)!, recursive: true);
        }

        Assert.True(run.ExitCode == 0, run.ToString());
        Assert.Contains("every block of docs/disaster-recovery.md ran and restored the sources", run.Stdout, StringComparison.Ordinal);
    }
}
