using System.Globalization;

namespace VyaBackupDb.Tests.Integration;

/// <summary>The working directory deleted under the tool (a cron job's cd into a folder since removed).</summary>
[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
public sealed class DeletedWorkingDirectoryTests : IAsyncLifetime
{
    private readonly Scratch _scratch = new();

    public Task InitializeAsync() => _scratch.InitializeAsync();

    public Task DisposeAsync() => _scratch.DisposeAsync();

    /// <summary>
    /// Found by a tester: pg_dumpall failed the _globals backup ("could not identify current directory"), and a files
    /// restore into a relative --target said only "Unable to find the specified file.".
    /// </summary>
    [SkippableFact]
    public async Task Dump_tools_run_and_a_relative_restore_target_is_named_when_the_working_directory_is_gone()
    {
        await TestServers.RequirePostgresAsync();
        var database = await _scratch.NewPostgresDatabaseAsync();
        var dir = _scratch.TempDir("cwd");
        var source = Path.Combine(dir, "tree");
        Directory.CreateDirectory(source);
        await File.WriteAllTextAsync(Path.Combine(source, "a"), "hi");
        var backups = Path.Combine(dir, "backups");
        var config = Path.Combine(dir, "config.yaml");
        await File.WriteAllTextAsync(config, string.Create(CultureInfo.InvariantCulture, $"""
            backup_dir: {FileTrees.Yaml(backups)}
            instances:
              - id: 2
                name: it-pg
                dbms: postgresql
                host: '{TestServers.PgHost}'
                port: {TestServers.PgPort}
                user: '{TestServers.PgUser}'
                password: '{TestServers.PgPassword}'
                include: ['{database}']
              - id: 3
                name: app
                dbms: files
                paths: [{FileTrees.Yaml(source)}]

            """));
        File.SetUnixFileMode(config, UnixFileMode.UserRead | UnixFileMode.UserWrite);

        var backup = await InDeletedDirectoryAsync(dir, "--config", config, "backup", "--instance", "2");

        Assert.True(backup.ExitCode == 0, backup.ToString());
        Assert.Single(Ops.DataFilesUnder(backups), f => f.EndsWith("_postgresql__globals.sql.zst", StringComparison.Ordinal));

        Assert.True((await Run.CliAsync("--config", config, "backup", "--instance", "3")).ExitCode == 0);
        var file = Path.Combine(backups, Assert.Single(Ops.DataFilesUnder(backups), f => f.EndsWith(".tar.zst", StringComparison.Ordinal)));
        var restore = await InDeletedDirectoryAsync(dir, "--config", config, "restore", "--file", file, "--instance", "3", "--target", "relative_target");

        Assert.True(restore.ExitCode == 2, restore.ToString());
        Assert.Equal(
            "vya-backupdb: error: --target relative_target is relative to the working directory, which no longer exists: give an absolute path",
            Assert.Single(Cli.ErrorLines(restore)));
    }

    /// <summary>The CLI started in a directory under <paramref name="dir"/> that is deleted before it starts.</summary>
    private static Task<ProcessResult> InDeletedDirectoryAsync(string dir, params string[] arguments)
    {
        var gone = Path.Combine(dir, "gone-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(gone);
        var (dotnet, args, env) = Run.CliCommand(null, arguments);
        return Run.ProgramAsync("sh", ["-c", "cd \"$1\" && rmdir \"$1\" && shift && exec \"$@\"", "sh", gone, dotnet, .. args], env);
    }
}
