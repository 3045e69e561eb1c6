using VyaBackupDb.Engines;
using VyaBackupDb.Errors;

namespace VyaBackupDb.Tests.Unit;

/// <summary>Failures of this host's own files (TMPDIR, a full disk) are worded as such.</summary>
public sealed class TempFileFaultTests
{
    [Fact]
    public void A_credential_file_that_cannot_be_made_leaves_no_private_directory_behind()
    {
        var prefix = TempFiles.PrefixFor(TempFiles.Secret);
        // An empty credential directory of this process: what a failed constructor left.
        List<string> Empty() => [.. Directory.EnumerateDirectories(Path.GetTempPath(), prefix + "*")
            .Where(d => !Directory.EnumerateFileSystemEntries(d).Any())];
        var before = Empty();

        // The folder is made, then the file in it fails (here: a name inside a folder that does not exist).
        Assert.ThrowsAny<Exception>(() => new SecretFile(Path.Combine("no-such-folder", "pgpass"), "*:*:*:*:secret\n"));

        Assert.Empty(Empty().Except(before));
    }

    /// <summary>
    /// The .NET runtime's debugger pipes (FIFOs) and diagnostics socket that a killed run (SIGKILL) leaves in TMPDIR go
    /// in the next run; a live process's stay, and so do names that only look alike. Found by a tester: they piled up.
    /// </summary>
    [SkippableFact]
    public void The_runtime_pipes_of_a_killed_process_are_removed()
    {
        Skip.IfNot(File.Exists("/usr/bin/mkfifo"), "no mkfifo");
        var directory = Directory.CreateTempSubdirectory("vt-tempfiles-").FullName;
        try
        {
            using var gone = System.Diagnostics.Process.Start("true")!;
            gone.WaitForExit();
            string[] dead = [.. new[] { $"clr-debug-pipe-{gone.Id}-12345-in", $"clr-debug-pipe-{gone.Id}-12345-out", $"dotnet-diagnostic-{gone.Id}-12345-socket" }
                .Select(name => Path.Combine(directory, name))];
            string[] kept = [.. new[] { $"clr-debug-pipe-{Environment.ProcessId}-12345-in", $"clr-debug-pipe-{gone.Id}-notes.txt", $"dotnet-diagnostic-{gone.Id}" }
                .Select(name => Path.Combine(directory, name))];
            using (var mkfifo = System.Diagnostics.Process.Start("/usr/bin/mkfifo", [.. dead.Take(2), kept[0]])!)
            {
                mkfifo.WaitForExit();
            }
            foreach (var path in dead.Skip(2).Concat(kept.Skip(1)))
            {
                File.WriteAllText(path, "x");
            }

            Assert.Equal(dead.Length, TempFiles.RemoveStale(directory));

            Assert.All(dead, path => Assert.False(Path.Exists(path), path));
            Assert.All(kept, path => Assert.True(Path.Exists(path), path));
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    /// <summary>
    /// Every spool a killed run leaves (the zip spool, the PostgreSQL set's post-data `.dump` and its
    /// `.list`, plain spools) goes in the next run; a live process's stays. Found by a tester: the
    /// `.dump` and `.list` spools of killed PostgreSQL backups, holding the schema's definitions,
    /// piled up in TMPDIR.
    /// </summary>
    [Fact]
    public void The_spools_of_a_killed_run_are_removed_whatever_their_suffix()
    {
        var directory = Directory.CreateTempSubdirectory("vt-tempfiles-").FullName;
        try
        {
            using var gone = System.Diagnostics.Process.Start("true")!;
            gone.WaitForExit();
            string[] dead = [.. new[] { "", ".zip", ".dump", ".list" }.Select(suffix => Path.Combine(directory, $"vya-backupdb-spool-{gone.Id}-a1b2c3{suffix}"))];
            var alive = Path.Combine(directory, $"vya-backupdb-spool-{Environment.ProcessId}-a1b2c3.dump");
            foreach (var path in dead.Append(alive))
            {
                File.WriteAllText(path, "x");
            }

            Assert.Equal(dead.Length, TempFiles.RemoveStale(directory));

            Assert.All(dead, path => Assert.False(File.Exists(path), path));
            Assert.True(File.Exists(alive));
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    [Theory]
    [InlineData("No space left on device : '/tmp/x/pgpass'", "No space left on device (/tmp/x/pgpass)")]
    [InlineData("cannot write /b/x.sql.zst: No space left on device : '/b/.x.tmp'", "cannot write /b/x.sql.zst: No space left on device (/b/.x.tmp)")]
    [InlineData("cannot read config file c.yaml: Could not find a part of the path '/x/c.yaml'.", "cannot read config file c.yaml: No such file or directory (/x/c.yaml)")]
    [InlineData("Could not find file '/proc/k.txt'.", "No such file or directory (/proc/k.txt)")]
    [InlineData("disk full", "disk full")]
    public void Dotnet_path_suffixes_read_as_a_path_in_parentheses(string message, string printed) =>
        Assert.Equal(printed, IoErrors.Tidy(message));

    [SkippableFact]
    public void A_write_to_a_full_device_is_a_full_disk()
    {
        Skip.IfNot(File.Exists("/dev/full"), "no /dev/full");
        var e = Assert.ThrowsAny<IOException>(() =>
        {
            using var full = new FileStream("/dev/full", FileMode.Open, FileAccess.Write, FileShare.ReadWrite, bufferSize: 0);
            full.Write(new byte[16]);
        });
        Assert.True(IoErrors.IsDiskFull(e), e.ToString());
        Assert.False(IoErrors.IsDiskFull(new FileNotFoundException("gone")));
    }
}
