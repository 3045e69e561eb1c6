using System.Formats.Tar;
using System.Text;
using VyaBackupDb.Sources.Files;

namespace VyaBackupDb.Tests.Integration;

/// <summary>
/// Files restores and verify against archives and hosts built to hurt them: a huge pax header
/// (memory), a target another user can rename under (writes outside it), a commit killed half way
/// (old data lost), names verify passed but restore refused.
/// </summary>
[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
public sealed class FilesRestoreSafetyTests : IAsyncLifetime
{
    private readonly Scratch _scratch = new();

    public Task InitializeAsync() => _scratch.InitializeAsync();

    public Task DisposeAsync() => _scratch.DisposeAsync();

    [Theory]
    [InlineData(TarEntryFormat.Pax)]
    [InlineData(TarEntryFormat.Gnu)]
    public async Task An_archive_with_an_oversized_extended_header_is_refused_by_restore_and_verify(TarEntryFormat format)
    {
        var dir = _scratch.TempDir("bigheader");
        var work = Path.Combine(dir, "work");
        Directory.CreateDirectory(work);
        var target = Path.Combine(work, "target");
        var archive = Path.Combine(dir, "20260101_000000_files_restore-here.tar"); // a files backup by its name: verify reads its entries
        // 2 MiB of name: a pax "path" record, or a GNU long name ('L'); System.Formats.Tar reads either whole into memory.
        await using (var file = File.Create(archive))
        await using (var tar = new TarWriter(file, format))
        {
            var name = string.Concat(Enumerable.Repeat("d/", 1 << 20)) + "f";
            TarEntry entry = format == TarEntryFormat.Pax ? new PaxTarEntry(TarEntryType.RegularFile, name) : new GnuTarEntry(TarEntryType.RegularFile, name);
            entry.DataStream = new MemoryStream("x"u8.ToArray());
            await tar.WriteEntryAsync(entry);
        }
        var config = await FileTrees.WriteConfigAsync(dir, Path.Combine(dir, "backups"), """
            - {id: 1, name: restore-here, dbms: files, paths: [/nonexistent]}
            """);

        var restore = await Run.CliAsync("restore", "--file", archive, "--instance", "1", "--target", target, "--config", config);
        var verify = await Run.CliAsync("verify", "--file", archive, "--config", config);

        Assert.True(restore.ExitCode == 1, restore.ToString());
        var error = Assert.Single(Cli.ErrorLines(restore));
        Assert.Contains("over the limit of 1 MiB", error, StringComparison.Ordinal);
        Assert.Empty(Directory.EnumerateFileSystemEntries(work));
        Assert.True(verify.ExitCode == 4, verify.ToString());
        Assert.Contains("over the limit of 1 MiB", verify.Stdout + verify.Stderr, StringComparison.Ordinal);
    }

    [SkippableTheory]
    [InlineData("writable by others")]
    [InlineData("owned by another user")]
    [InlineData("sticky and writable by others")]
    public async Task A_target_another_user_can_rename_under_is_refused_before_anything_is_written(string parent)
    {
        Skip.If(parent == "owned by another user" && Environment.UserName != "root", "chown needs root");
        var dir = _scratch.TempDir("unsafe");
        var shared = Path.Combine(dir, "shared");
        Directory.CreateDirectory(shared);
        var target = Path.Combine(shared, "restored");
        var archive = await SmallArchiveAsync(dir);
        var config = await FileTrees.WriteConfigAsync(dir, Path.Combine(dir, "backups"), """
            - {id: 1, name: restore-here, dbms: files, paths: [/nonexistent]}
            """);
        switch (parent)
        {
            case "writable by others":
                File.SetUnixFileMode(shared, (UnixFileMode)0x1FF); // 0777
                break;
            case "owned by another user":
                await Run.ProgramAsync("chown", ["1234:1234", shared]);
                break;
            default:
                File.SetUnixFileMode(shared, (UnixFileMode)0x3FF); // 1777, as /tmp: others cannot rename what is not theirs
                break;
        }

        var restore = await Run.CliAsync("restore", "--file", archive, "--instance", "1", "--target", target, "--config", config);

        if (parent == "sticky and writable by others")
        {
            Assert.True(restore.ExitCode == 0, restore.ToString());
            Assert.Equal("hello\n", await File.ReadAllTextAsync(Path.Combine(target, "fine", "ok.txt")));
            return;
        }
        Assert.True(restore.ExitCode == 2, restore.ToString());
        var error = Assert.Single(Cli.ErrorLines(restore));
        Assert.Contains($"unsafe target {target}: {shared} is ", error, StringComparison.Ordinal);
        Assert.Empty(Directory.EnumerateFileSystemEntries(shared));
    }

    /// <summary>
    /// What a restore --force into a mount point leaves when killed while it moves entries (old
    /// ones out into .vya-replaced-S, or the new ones in from .vya-committing-S): the next run
    /// puts the target back in one whole state before anything else, and never deletes the only
    /// copy of the old data. (Planted by hand: the kill itself needs a mount and strace.)
    /// </summary>
    [Theory]
    [InlineData("moving the old entries out")]
    [InlineData("moving the new entries in")]
    public async Task A_commit_killed_half_way_is_recovered_by_the_next_run(string killedWhile)
    {
        var dir = _scratch.TempDir("killed-commit");
        var target = Path.Combine(dir, "target");
        Directory.CreateDirectory(target);
        var archive = await SmallArchiveAsync(dir);
        var config = await FileTrees.WriteConfigAsync(dir, Path.Combine(dir, "backups"), """
            - {id: 1, name: restore-here, dbms: files, paths: [/nonexistent]}
            """);
        var replaced = Directory.CreateDirectory(Path.Combine(target, ".vya-replaced-0123456789ab")).FullName;
        string[] expected;
        if (killedWhile == "moving the old entries out")
        {
            await File.WriteAllTextAsync(Path.Combine(target, "old1"), "OLD1");
            await File.WriteAllTextAsync(Path.Combine(replaced, "old2"), "OLD2");
            Directory.CreateDirectory(Path.Combine(replaced, "olddir"));
            await File.WriteAllTextAsync(Path.Combine(replaced, "olddir", "old3"), "OLD3");
            var staging = Directory.CreateDirectory(Path.Combine(target, ".vya-restore-0123456789ab")).FullName;
            await File.WriteAllTextAsync(Path.Combine(staging, "new1"), "NEW1");
            expected = ["old1", "old2", "olddir", "olddir/old3"];
        }
        else
        {
            await File.WriteAllTextAsync(Path.Combine(replaced, "old1"), "OLD1");
            await File.WriteAllTextAsync(Path.Combine(target, "new1"), "NEW1");
            var committing = Directory.CreateDirectory(Path.Combine(target, ".vya-committing-0123456789ab")).FullName;
            await File.WriteAllTextAsync(Path.Combine(committing, "new2"), "NEW2");
            expected = ["new1", "new2"];
        }

        // Without --force and nobody to ask: refused, after the recovery.
        var restore = await Run.CliAsync("restore", "--file", archive, "--instance", "1", "--target", target, "--config", config);

        Assert.True(restore.ExitCode == 2, restore.ToString());
        Assert.Contains("was interrupted: ", restore.Stderr, StringComparison.Ordinal);
        Assert.Equal(expected, (string[])[.. Directory.EnumerateFileSystemEntries(target, "*", SearchOption.AllDirectories)
            .Select(e => Path.GetRelativePath(target, e)).Order(StringComparer.Ordinal)]);
    }

    /// <summary>
    /// A symlink in the target named like the old content of an interrupted commit (leading out
    /// of the target) is not taken for it: the next run moves nothing in from where it points.
    /// </summary>
    [Fact]
    public async Task A_symlink_named_like_an_interrupted_commit_is_not_followed()
    {
        var dir = _scratch.TempDir("fake-commit");
        var target = Directory.CreateDirectory(Path.Combine(dir, "target")).FullName;
        var outside = Directory.CreateDirectory(Path.Combine(dir, "outside")).FullName;
        await File.WriteAllTextAsync(Path.Combine(outside, "host-file"), "stays");
        File.CreateSymbolicLink(Path.Combine(target, ".vya-replaced-0123456789ab"), outside);
        var archive = await SmallArchiveAsync(dir);
        var config = await FileTrees.WriteConfigAsync(dir, Path.Combine(dir, "backups"), """
            - {id: 1, name: restore-here, dbms: files, paths: [/nonexistent]}
            """);

        var restore = await Run.CliAsync("restore", "--file", archive, "--instance", "1", "--target", target, "--force", "--config", config);

        Assert.True(restore.ExitCode == 0, restore.ToString());
        Assert.True(File.Exists(Path.Combine(outside, "host-file")), "the restore moved a file in from outside the target");
        Assert.False(File.Exists(Path.Combine(target, "host-file")));
        Assert.True(File.Exists(Path.Combine(target, "fine", "ok.txt")));
    }

    /// <summary>verify checks the names with the restore's own check: what restore refuses, verify fails (exit 4).</summary>
    [Theory]
    [InlineData("symlink-then-file")]
    [InlineData("hard-link-through-symlink")]
    [InlineData("file-replacing-directory")]
    [InlineData("name-over-255-bytes")]
    [InlineData("a-name-of-the-restores-own")]
    [InlineData("hard-link-to-itself")]
    [InlineData("nul-in-symlink-target")]
    public async Task Verify_fails_an_archive_restore_refuses(string attack)
    {
        var dir = _scratch.TempDir("verify-refused");
        var archive = Path.Combine(dir, "20260101_000000_files_restore-here.tar");
        await using (var file = File.Create(archive))
        await using (var tar = new TarWriter(file, TarEntryFormat.Pax))
        {
            PaxTarEntry Data(string name) => new(TarEntryType.RegularFile, name) { DataStream = new MemoryStream("x"u8.ToArray()) };
            switch (attack)
            {
                case "symlink-then-file":
                    await tar.WriteEntryAsync(new PaxTarEntry(TarEntryType.SymbolicLink, "d") { LinkName = "/etc" });
                    await tar.WriteEntryAsync(Data("d/planted"));
                    break;
                case "hard-link-through-symlink":
                    await tar.WriteEntryAsync(new PaxTarEntry(TarEntryType.SymbolicLink, "d") { LinkName = "/etc" });
                    await tar.WriteEntryAsync(new PaxTarEntry(TarEntryType.HardLink, "h") { LinkName = "d/passwd" });
                    break;
                case "hard-link-to-itself":
                    // Found by a tester: verify said OK, restore failed on link(h, h) after removing h.
                    await tar.WriteEntryAsync(Data("h"));
                    await tar.WriteEntryAsync(new PaxTarEntry(TarEntryType.HardLink, "h") { LinkName = "h" });
                    break;
                case "a-name-of-the-restores-own":
                    // Restored, it would be taken by the next run for an interrupted commit's old content.
                    await tar.WriteEntryAsync(new PaxTarEntry(TarEntryType.Directory, ".vya-replaced-0123456789ab"));
                    await tar.WriteEntryAsync(Data(".vya-replaced-0123456789ab/planted"));
                    break;
                case "nul-in-symlink-target":
                    // Was an unhandled ArgumentException; written through a descriptor it would be cut at the NUL.
                    await tar.WriteEntryAsync(new PaxTarEntry(TarEntryType.SymbolicLink, "l") { LinkName = "a\0/etc/passwd" });
                    break;
                case "file-replacing-directory":
                    await tar.WriteEntryAsync(new PaxTarEntry(TarEntryType.Directory, "dd"));
                    await tar.WriteEntryAsync(Data("dd"));
                    break;
                default:
                    await tar.WriteEntryAsync(Data(new string('a', 300)));
                    break;
            }
        }
        var config = await FileTrees.WriteConfigAsync(dir, Path.Combine(dir, "backups"), """
            - {id: 1, name: restore-here, dbms: files, paths: [/nonexistent]}
            """);

        var restore = await Run.CliAsync("restore", "--file", archive, "--instance", "1", "--target", Path.Combine(dir, "target"), "--config", config);
        var verify = await Run.CliAsync("verify", "--file", archive, "--config", config);

        Assert.True(restore.ExitCode == 1, restore.ToString());
        var refusal = Assert.Single(Cli.ErrorLines(restore));
        var reason = refusal[(refusal.IndexOf("refused: ", StringComparison.Ordinal) + 9)..refusal.IndexOf(" (nothing is ever", StringComparison.Ordinal)];
        Assert.True(verify.ExitCode == 4, verify.ToString());
        Assert.Contains($"a restore would refuse it: {reason}", verify.Stdout, StringComparison.Ordinal);
    }

    [SkippableFact]
    public async Task A_full_target_file_system_is_named_as_such_not_as_the_backup_file()
    {
        Skip.IfNot(OperatingSystem.IsLinux() && Environment.IsPrivilegedProcess, "mounting a tmpfs needs root");
        var dir = _scratch.TempDir("target-full");
        var small = Directory.CreateDirectory(Path.Combine(dir, "small")).FullName;
        var archive = Path.Combine(dir, "20260101_000000_files_restore-here.tar");
        await using (var file = File.Create(archive))
        await using (var tar = new TarWriter(file, TarEntryFormat.Pax))
        {
            await tar.WriteEntryAsync(new PaxTarEntry(TarEntryType.RegularFile, "big") { DataStream = new MemoryStream(Enumerable.Repeat((byte)'x', 4 << 20).ToArray()) }); // zeros would be a hole
        }
        var config = await FileTrees.WriteConfigAsync(dir, Path.Combine(dir, "backups"), """
            - {id: 1, name: restore-here, dbms: files, paths: [/nonexistent]}
            """);
        var mount = await Run.ProgramAsync("mount", ["-t", "tmpfs", "-o", "size=2m", "tmpfs", small]);
        Skip.If(mount.ExitCode != 0, $"mount -t tmpfs failed: {mount.Stderr}");
        try
        {
            var restore = await Run.CliAsync("restore", "--file", archive, "--instance", "1", "--target", Path.Combine(small, "t"), "--config", config);

            Assert.True(restore.ExitCode == 1, restore.ToString());
            var error = Assert.Single(Cli.ErrorLines(restore));
            Assert.Contains($"the file system of {small}/t is full", error, StringComparison.Ordinal);
            Assert.DoesNotContain("cannot read", error, StringComparison.Ordinal);
            Assert.Empty(Directory.EnumerateFileSystemEntries(small));
        }
        finally
        {
            await Run.ProgramAsync("umount", ["-l", small]);
        }
    }

    /// <summary>
    /// Found by a tester: --force into a directory holding a mount point moved the old content,
    /// mount included, aside and removed it recursively: the files on the mounted file system were
    /// deleted (exit 0). Now refused before anything is touched, into a plain directory or a mount point.
    /// </summary>
    [SkippableTheory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_target_holding_a_mount_point_is_refused_before_anything_is_touched(bool targetIsMountPoint)
    {
        Skip.IfNot(OperatingSystem.IsLinux() && Environment.IsPrivilegedProcess, "mounting a tmpfs needs root");
        var dir = _scratch.TempDir("nested-mount");
        var target = Directory.CreateDirectory(Path.Combine(dir, "target")).FullName;
        var archive = await SmallArchiveAsync(dir);
        var config = await FileTrees.WriteConfigAsync(dir, Path.Combine(dir, "backups"), """
            - {id: 1, name: restore-here, dbms: files, paths: [/nonexistent]}
            """);
        var uploads = Path.Combine(target, "uploads");
        try
        {
            foreach (var point in targetIsMountPoint ? [target, uploads] : new[] { uploads })
            {
                Directory.CreateDirectory(point);
                var mount = await Run.ProgramAsync("mount", ["-t", "tmpfs", "-o", "size=1m", "tmpfs", point]);
                Skip.If(mount.ExitCode != 0, $"mount -t tmpfs failed: {mount.Stderr}");
            }
            await File.WriteAllTextAsync(Path.Combine(target, "old"), "OLD");
            await File.WriteAllTextAsync(Path.Combine(uploads, "user_data"), "precious");

            var restore = await Run.CliAsync("restore", "--file", archive, "--instance", "1", "--target", target, "--force", "--config", config);

            Assert.True(restore.ExitCode == 2, restore.ToString());
            var error = Assert.Single(Cli.ErrorLines(restore));
            Assert.Contains($"--target {target} holds a mount point ({uploads}): unmount it first, or restore elsewhere", error, StringComparison.Ordinal);
            Assert.Equal("precious", await File.ReadAllTextAsync(Path.Combine(uploads, "user_data")));
            Assert.Equal(["old", "uploads", "uploads/user_data"], (string[])[.. Directory.EnumerateFileSystemEntries(target, "*", SearchOption.AllDirectories)
                .Select(e => Path.GetRelativePath(target, e)).Order(StringComparer.Ordinal)]);
            Assert.Empty(Directory.EnumerateFileSystemEntries(dir, ".vya-*"));
        }
        finally
        {
            await UnmountAllUnderAsync(dir);
        }
    }

    /// <summary>Defense in depth behind the refusal above: removing a restore's own tree never crosses into another file system.</summary>
    [SkippableFact]
    public async Task Removing_a_tree_stops_at_a_mount_point_and_touches_nothing_on_it()
    {
        Skip.IfNot(OperatingSystem.IsLinux() && Environment.IsPrivilegedProcess, "mounting a tmpfs needs root");
        var dir = _scratch.TempDir("remove-mount");
        var tree = Directory.CreateDirectory(Path.Combine(dir, "tree")).FullName;
        var mountPoint = Directory.CreateDirectory(Path.Combine(tree, "a", "mnt")).FullName;
        var mount = await Run.ProgramAsync("mount", ["-t", "tmpfs", "-o", "size=1m,mode=0555", "tmpfs", mountPoint]);
        Skip.If(mount.ExitCode != 0, $"mount -t tmpfs failed: {mount.Stderr}");
        try
        {
            File.SetUnixFileMode(mountPoint, (UnixFileMode)0x1FF);
            await File.WriteAllTextAsync(Path.Combine(mountPoint, "user_data"), "precious");
            File.SetUnixFileMode(mountPoint, (UnixFileMode)0x16D); // 0555: a removal would chmod it to get in

            var e = Assert.Throws<PosixException>(() => Posix.RemoveTree(tree));

            Assert.Contains($"{tree}/a/mnt is a mount point (another file system): not removed", e.Message, StringComparison.Ordinal);
            Assert.Equal("precious", await File.ReadAllTextAsync(Path.Combine(mountPoint, "user_data")));
            Assert.Equal(0x16D, Posix.LStat(mountPoint).Permissions);
        }
        finally
        {
            await UnmountAllUnderAsync(dir);
        }
    }

    /// <summary>Whatever is mounted below <paramref name="dir"/>, also where a faulty restore moved a mount, deepest first.</summary>
    private static async Task UnmountAllUnderAsync(string dir)
    {
        var points = (await File.ReadAllLinesAsync("/proc/self/mounts")).Select(line => line.Split(' ')[1])
            .Where(point => point.StartsWith(dir + "/", StringComparison.Ordinal)).OrderByDescending(point => point.Length, Comparer<int>.Default);
        foreach (var point in points)
        {
            await Run.ProgramAsync("umount", ["-l", point]);
        }
    }

    /// <summary>A tar with a directory and a file, named as a files backup.</summary>
    private static async Task<string> SmallArchiveAsync(string dir)
    {
        var archive = Path.Combine(dir, "20260101_000000_files_restore-here.tar");
        await using var file = File.Create(archive);
        await using var tar = new TarWriter(file, TarEntryFormat.Pax);
        await tar.WriteEntryAsync(new PaxTarEntry(TarEntryType.Directory, "fine/") { Mode = (UnixFileMode)0x1ED });
        await tar.WriteEntryAsync(new PaxTarEntry(TarEntryType.RegularFile, "fine/ok.txt") { DataStream = new MemoryStream("hello\n"u8.ToArray()) });
        return archive;
    }
}
