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
}
