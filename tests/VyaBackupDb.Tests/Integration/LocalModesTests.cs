using VyaBackupDb.Operations;

namespace VyaBackupDb.Tests.Integration;

/// <summary>
/// What the tool creates on this host is its owner's alone, whatever the umask: another local user
/// can neither hold a backup's lock (and fail it "locked") nor list or delete backups.
/// </summary>
[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
public sealed class LocalModesTests : IAsyncLifetime
{
    private const UnixFileMode Private = UnixFileMode.UserRead | UnixFileMode.UserWrite;
    private const UnixFileMode PrivateFolder = Private | UnixFileMode.UserExecute;

    private readonly Scratch _scratch = new();

    public Task InitializeAsync() => _scratch.InitializeAsync();

    public Task DisposeAsync() => _scratch.DisposeAsync();

    /// <summary>
    /// Found by a tester: under umask 022 the lock file was 0644, and any user's `flock -s` on it (a read-only
    /// open suffices) failed root's backups with exit 5. One an earlier version left 0644 is made 0600.
    /// </summary>
    [Fact]
    public void Lock_files_and_their_folders_are_private_also_one_left_open_to_all_by_an_earlier_version()
    {
        var backupDir = Path.Combine(_scratch.TempDir("backups"), "missing");
        var path = BackupLock.PathFor(backupDir, "app", "db");

        using (var held = BackupLock.Acquire(backupDir, "app", "db", "run-1", TimeProvider.System, _ => { }))
        {
            Assert.Equal(Private, File.GetUnixFileMode(path));
            Assert.Equal(Private, File.GetUnixFileMode(path + ".holder"));
        }
        Assert.Equal(PrivateFolder, File.GetUnixFileMode(backupDir));
        Assert.Equal(PrivateFolder, File.GetUnixFileMode(Path.Combine(backupDir, ".locks")));
        Assert.Equal(PrivateFolder, File.GetUnixFileMode(Path.GetDirectoryName(path)!));

        File.SetUnixFileMode(path, (UnixFileMode)Convert.ToInt32("644", 8));
        using (BackupLock.Acquire(backupDir, "app", "db", "run-2", TimeProvider.System, _ => { }))
        {
            Assert.Equal(Private, File.GetUnixFileMode(path));
        }
    }

    /// <summary>
    /// Found by a tester: under umask 000 backup_dir, the instance folders and .locks were 0777 (any user could delete
    /// backups) and the status page 0666; a files restore made the folders above its tree 0777. The archive's own
    /// folders keep their recorded modes.
    /// </summary>
    [Fact]
    public async Task Under_umask_000_backup_folders_are_private_the_status_page_0644_and_a_restore_keeps_the_folders_above_its_tree_private()
    {
        var dir = _scratch.TempDir("files");
        var source = Path.Combine(dir, "src", "tree");
        Directory.CreateDirectory(Path.Combine(source, "sub"));
        await File.WriteAllTextAsync(Path.Combine(source, "sub", "a"), "hi");
        File.SetUnixFileMode(source, Mode("755"));
        File.SetUnixFileMode(Path.Combine(source, "sub"), Mode("750"));
        var backups = Path.Combine(dir, "missing", "backups");
        var nas = Path.Combine(dir, "nas");
        var config = await FileTrees.WriteConfigAsync(dir, backups, $"""
            - id: 7
              name: app
              dbms: files
              paths: [{FileTrees.Yaml(source)}]
              storage: [local, nas]
            """, extra: $"storage:\n  - name: nas\n    type: local\n    path: {FileTrees.Yaml(nas)}");

        var backup = await UnderUmask000Async("backup", "--instance", "7", "--config", config);

        Assert.True(backup.ExitCode == 0, backup.ToString());
        foreach (var root in new[] { backups, nas })
        {
            var files = Directory.GetFiles(root, "*", SearchOption.AllDirectories);
            Assert.Contains(files, f => f.EndsWith(".lock", StringComparison.Ordinal));
            Assert.Contains(files, f => f.EndsWith(".tar.zst", StringComparison.Ordinal));
            Assert.All(files, f => Assert.True(File.GetUnixFileMode(f) == Private, f));
            Assert.All([root, .. Directory.GetDirectories(root, "*", SearchOption.AllDirectories)],
                d => Assert.True(File.GetUnixFileMode(d) == PrivateFolder, d));
        }
        Assert.Equal(PrivateFolder, File.GetUnixFileMode(Path.GetDirectoryName(backups)!));

        var page = Path.Combine(dir, "status.html");
        var status = await UnderUmask000Async("status", "--html", page, "--config", config);
        Assert.True(status.ExitCode == 0, status.ToString());
        Assert.Equal(Mode("644"), File.GetUnixFileMode(page));

        var restored = Path.Combine(dir, "restored", "here");
        var file = Path.Combine(backups, Assert.Single(Ops.DataFilesUnder(backups)));
        var restore = await UnderUmask000Async("restore", "--file", file, "--instance", "7", "--target", restored, "--config", config);
        Assert.True(restore.ExitCode == 0, restore.ToString());
        Assert.Equal(PrivateFolder, File.GetUnixFileMode(Path.GetDirectoryName(restored)!));
        var above = restored;
        foreach (var segment in Path.GetDirectoryName(source)!.Split('/', StringSplitOptions.RemoveEmptyEntries))
        {
            above = Path.Combine(above, segment);
            Assert.True(File.GetUnixFileMode(above) == PrivateFolder, above);
        }
        Assert.Equal(Mode("755"), File.GetUnixFileMode(restored + source));
        Assert.Equal(Mode("750"), File.GetUnixFileMode(restored + source + "/sub"));
    }

    private static UnixFileMode Mode(string octal) => (UnixFileMode)Convert.ToInt32(octal, 8);

    private static Task<ProcessResult> UnderUmask000Async(params string[] arguments)
    {
        var (dotnet, args, env) = Run.CliCommand(null, arguments);
        return Run.ProgramAsync("sh", ["-c", "umask 000; exec \"$@\"", "sh", dotnet, .. args], env);
    }
}
