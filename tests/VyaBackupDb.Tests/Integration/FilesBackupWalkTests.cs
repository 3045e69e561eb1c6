using System.Formats.Tar;
using System.Text;
using VyaBackupDb.Catalog;
using VyaBackupDb.Sources.Files;

namespace VyaBackupDb.Tests.Integration;

/// <summary>
/// How a files backup walks its trees: through directory descriptors, so a directory swapped for
/// a symlink mid-walk never leads the backup outside its paths, and trees deeper than PATH_MAX
/// back up; names and symlink targets are stored only when they are valid UTF-8.
/// </summary>
[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
public sealed class FilesBackupWalkTests : IAsyncLifetime
{
    private readonly Scratch _scratch = new();

    public Task InitializeAsync() => _scratch.InitializeAsync();

    public Task DisposeAsync() => _scratch.DisposeAsync();

    [Fact]
    public async Task A_directory_swapped_for_a_symlink_while_being_read_is_reported_and_nothing_beyond_the_link_is_read()
    {
        var dir = _scratch.TempDir("files");
        var source = Path.Combine(dir, "src");
        var sub = Path.Combine(source, "sub");
        var secretDir = Path.Combine(dir, "secretdir");
        Directory.CreateDirectory(sub);
        Directory.CreateDirectory(secretDir);
        await File.WriteAllTextAsync(Path.Combine(secretDir, "shadow"), "HOST SECRET\n");
        // Larger than the tar writer's buffer: the output is first written while "big" is read.
        await File.WriteAllBytesAsync(Path.Combine(sub, "big"), new byte[3 << 20]);
        await File.WriteAllTextAsync(Path.Combine(sub, "shadow"), "harmless\n");
        var output = new ActOnFirstWrite(() =>
        {
            Directory.Move(sub, sub + ".old");
            File.CreateSymbolicLink(sub, secretDir);
        });

        var (summary, _) = FilesArchiver.Write([source], new FileSelection([], []), skipUnreadable: false, output, CancellationToken.None);

        var entries = Entries(output.ToArray());
        var shadow = source.TrimStart('/') + "/sub/shadow";
        Assert.Equal("harmless\n", entries[shadow]);
        Assert.DoesNotContain(entries.Values, v => v.Contains("SECRET", StringComparison.Ordinal));
        Assert.True(summary.ChangedDuringBackup);
        Assert.Contains(summary.Changed, n => n.Path == sub);
    }

    [Fact]
    public async Task A_directory_moved_into_one_already_listed_is_missing_but_that_directory_is_named_as_changed()
    {
        var dir = _scratch.TempDir("files");
        var tree = Path.Combine(dir, "tree");
        var a = Path.Combine(tree, "a");
        var sub = Path.Combine(tree, "z", "sub");
        Directory.CreateDirectory(a);
        Directory.CreateDirectory(sub);
        await File.WriteAllBytesAsync(Path.Combine(a, "big"), new byte[3 << 20]);
        await File.WriteAllTextAsync(Path.Combine(sub, "precious"), "precious\n");
        // While a/big is read (a listed, z not yet): z/sub is moved into a, where the walk will not look again.
        var output = new ActOnFirstWrite(() =>
        {
            Thread.Sleep(20); // a later clock tick than a's listing: older kernels stamp times at the tick
            Directory.Move(sub, Path.Combine(a, "sub"));
        });

        var (summary, _) = FilesArchiver.Write([tree], new FileSelection([], []), skipUnreadable: false, output, CancellationToken.None);

        Assert.DoesNotContain(Entries(output.ToArray()).Keys, n => n.EndsWith("/precious", StringComparison.Ordinal));
        Assert.True(summary.ChangedDuringBackup);
        Assert.Contains(summary.Changed, n => n.Path == a && n.Reason.StartsWith("changed while being read", StringComparison.Ordinal));
    }

    [SkippableFact]
    public async Task Entries_swapped_while_their_directory_is_walked_name_it_as_changed()
    {
        var dir = _scratch.TempDir("files");
        var source = Path.Combine(dir, "src");
        Directory.CreateDirectory(Path.Combine(source, "d"));
        await File.WriteAllBytesAsync(Path.Combine(source, "a_big"), new byte[3 << 20]);
        await File.WriteAllTextAsync(Path.Combine(source, "e"), "E\n");
        await File.WriteAllTextAsync(Path.Combine(source, "d", "inside"), "inside\n");
        File.CreateSymbolicLink(Path.Combine(source, "l"), "/etc");
        var mkfifo = await Run.ProgramAsync("mkfifo", [Path.Combine(source, "s")]);
        Assert.True(mkfifo.ExitCode == 0, mkfifo.ToString());
        var exchanged = false;
        // While a_big is read: the file and the FIFO swap names, and so do the directory and the symlink.
        var output = new ActOnFirstWrite(() =>
        {
            Thread.Sleep(20); // a later clock tick than the listing: older kernels stamp times at the tick
            exchanged = Posix.TryExchange(Path.Combine(source, "e"), Path.Combine(source, "s"))
                && Posix.TryExchange(Path.Combine(source, "d"), Path.Combine(source, "l"));
        });

        var (summary, _) = FilesArchiver.Write([source], new FileSelection([], []), skipUnreadable: false, output, CancellationToken.None);

        Skip.IfNot(exchanged, "this file system cannot swap names (RENAME_EXCHANGE)");
        Assert.Contains(summary.Changed, n => n.Path == source && n.Reason.StartsWith("changed while being read", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_tree_deeper_than_PATH_MAX_backs_up_and_GNU_tar_reads_it()
    {
        var dir = _scratch.TempDir("files");
        var source = Path.Combine(dir, "src");
        Directory.CreateDirectory(source);
        var segment = new string('d', 200);
        // 25 levels of 200 bytes: over 5000 bytes, past what one path given to the kernel may hold.
        var build = await Run.ProgramAsync("bash", ["-c", $"cd \"$1\" && for i in $(seq 25); do mkdir {segment} && cd {segment} || exit 1; done && echo deep > f", "bash", source]);
        Assert.True(build.ExitCode == 0, build.ToString());
        try
        {
            var backups = Path.Combine(dir, "backups");
            var config = await FileTrees.WriteConfigAsync(dir, backups, $$"""
                - {id: 7, name: deep, dbms: files, paths: [{{FileTrees.Yaml(source)}}]}
                """);

            var backup = await Run.CliAsync("backup", "--instance", "7", "--config", config);

            Assert.True(backup.ExitCode == 0, backup.ToString());
            var file = Path.Combine(backups, Assert.Single(Ops.DataFilesUnder(backups)));
            var deepName = source.TrimStart('/') + string.Concat(Enumerable.Repeat("/" + segment, 25)) + "/f";
            var tar = await Run.ProgramAsync("sh", ["-c", "zstd -dc \"$1\" | tar -xOf - \"$2\"", "sh", file, deepName]);
            Assert.True(tar.ExitCode == 0, tar.ToString());
            Assert.Equal("deep\n", tar.Stdout);
        }
        finally
        {
            // Directory.Delete cannot reach that deep; rm works through descriptors.
            await Run.ProgramAsync("rm", ["-rf", source]);
        }
    }

    [Fact]
    public async Task A_symlink_whose_target_is_not_UTF8_fails_the_backup_naming_it_and_skip_unreadable_skips_it()
    {
        var dir = _scratch.TempDir("files");
        var source = Path.Combine(dir, "src");
        Directory.CreateDirectory(source);
        await File.WriteAllTextAsync(Path.Combine(source, "plain.txt"), "plain\n");
        var link = Path.Combine(source, "link");
        var ln = await Run.ProgramAsync("sh", ["-c", "ln -s \"$(printf 'caf\\351.txt')\" \"$1\"", "sh", link]);
        Assert.True(ln.ExitCode == 0, ln.ToString());
        var backups = Path.Combine(dir, "backups");
        var config = await FileTrees.WriteConfigAsync(dir, backups, $$"""
            - {id: 5, name: strict, dbms: files, paths: [{{FileTrees.Yaml(source)}}]}
            - {id: 6, name: lenient, dbms: files, skip_unreadable: true, paths: [{{FileTrees.Yaml(source)}}]}
            """);

        var strict = await Run.CliAsync("backup", "--instance", "5", "--config", config);

        Assert.True(strict.ExitCode == 1, strict.ToString());
        Assert.Contains($"FAILED strict: cannot read {link}: its target is not valid UTF-8", strict.Stderr, StringComparison.Ordinal);
        Assert.Empty(Ops.FilesUnder(Path.Combine(backups, "strict")));

        var lenient = await Run.CliAsync("backup", "--instance", "6", "--config", config);

        Assert.True(lenient.ExitCode == 0, lenient.ToString());
        Assert.Contains($"{link} (unreadable (its target is not valid UTF-8): skipped)", lenient.Stderr, StringComparison.Ordinal);
        var file = Path.Combine(backups, Assert.Single(Ops.DataFilesUnder(backups)));
        var files = BackupManifest.FromJson(await File.ReadAllBytesAsync(file + BackupManifest.Suffix)).Files!;
        Assert.Equal(0, files.Symlinks);
        Assert.Equal(link, Assert.Single(files.Skipped).Path);
    }

    [Fact]
    public async Task A_name_holding_U_FFFD_is_valid_UTF8_and_backs_up_while_a_Latin1_name_still_fails()
    {
        var dir = _scratch.TempDir("files");
        var source = Path.Combine(dir, "src");
        Directory.CreateDirectory(source);
        var replacement = Path.Combine(source, "a\uFFFDb.txt"); // bytes EF BF BD: valid UTF-8
        await File.WriteAllTextAsync(replacement, "replacement character\n");
        var backups = Path.Combine(dir, "backups");
        var config = await FileTrees.WriteConfigAsync(dir, backups, $$"""
            - {id: 5, name: names, dbms: files, paths: [{{FileTrees.Yaml(source)}}]}
            """);

        var backup = await Run.CliAsync("backup", "--instance", "5", "--config", config);

        Assert.True(backup.ExitCode == 0, backup.ToString());
        var file = Path.Combine(backups, Assert.Single(Ops.DataFilesUnder(backups)));
        var tar = await Run.ProgramAsync("sh", ["-c", "zstd -dc \"$1\" | tar -xOf - \"$2\"", "sh", file, replacement.TrimStart('/')]);
        Assert.True(tar.ExitCode == 0, tar.ToString());
        Assert.Equal("replacement character\n", tar.Stdout);

        var latin1 = await Run.ProgramAsync("sh", ["-c", "echo x > \"$1/$(printf 'caf\\351.txt')\"", "sh", source]);
        Assert.True(latin1.ExitCode == 0, latin1.ToString());
        ProcessResult refused;
        try
        {
            refused = await Run.CliAsync("backup", "--instance", "5", "--config", config);
        }
        finally
        {
            // .NET cannot name that file to delete it.
            await Run.ProgramAsync("rm", ["-rf", source]);
        }

        Assert.True(refused.ExitCode == 1, refused.ToString());
        Assert.Contains($"FAILED names: cannot read {source}/caf\uFFFD.txt: its name is not valid UTF-8", refused.Stderr, StringComparison.Ordinal);
    }

    [SkippableFact]
    public async Task A_new_file_given_the_inode_number_of_a_file_deleted_during_the_walk_is_stored_with_its_own_content()
    {
        var dir = _scratch.TempDir("files");
        var source = Path.Combine(dir, "src");
        Directory.CreateDirectory(source);
        var a = Path.Combine(source, "a");
        await File.WriteAllTextAsync(a, "OLD-A\n");
        FileTrees.HardLink(a, a + "_link2"); // two links: its inode number is remembered for the links to come
        await File.WriteAllBytesAsync(Path.Combine(source, "b_big"), new byte[3 << 20]);
        var c = Path.Combine(source, "c");
        await File.WriteAllTextAsync(c, "OLD-C\n");
        var freed = Posix.TryLStat(a)!.Value.Inode;
        var reused = false;
        // While b_big is read (a and a_link2 are stored): a is deleted, and c replaced by a new file with two links
        // that got a's inode number (the file system hands out the lowest free one: the others are kept until it does).
        var output = new ActOnFirstWrite(() =>
        {
            File.Delete(a);
            File.Delete(a + "_link2");
            for (var i = 0; i < 1000 && !reused; i++)
            {
                var created = Path.Combine(source, $".new{i}");
                File.WriteAllText(created, "NEW-C\n");
                reused = Posix.TryLStat(created)!.Value.Inode == freed;
                if (reused)
                {
                    FileTrees.HardLink(created, Path.Combine(dir, "other-link"));
                    File.Move(created, c, overwrite: true);
                }
            }
        });

        var (summary, _) = FilesArchiver.Write([source], new FileSelection([], []), skipUnreadable: false, output, CancellationToken.None);

        Skip.IfNot(reused, "this file system did not give the freed inode number to a new file");
        var entries = Entries(output.ToArray());
        Assert.Equal("NEW-C\n", entries[c.TrimStart('/')]);
        Assert.Contains(summary.Changed, n => n.Path == c);
    }

    /// <summary>Each entry's name and, for a regular file, its content (others: the empty string).</summary>
    private static Dictionary<string, string> Entries(byte[] archive)
    {
        var entries = new Dictionary<string, string>(StringComparer.Ordinal);
        using var reader = new TarReader(new MemoryStream(archive));
        while (reader.GetNextEntry() is { } entry)
        {
            using var content = new MemoryStream();
            entry.DataStream?.CopyTo(content);
            entries[entry.Name] = Encoding.UTF8.GetString(content.ToArray());
        }
        return entries;
    }

    /// <summary>An in-memory output that runs an action (a change to the tree) when it is first written to.</summary>
    private sealed class ActOnFirstWrite(Action action) : MemoryStream
    {
        private Action? _action = action;

        public override void Write(byte[] buffer, int offset, int count)
        {
            Interlocked.Exchange(ref _action, null)?.Invoke();
            base.Write(buffer, offset, count);
        }

        public override void Write(ReadOnlySpan<byte> buffer)
        {
            Interlocked.Exchange(ref _action, null)?.Invoke();
            base.Write(buffer);
        }
    }
}
