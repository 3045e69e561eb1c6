using System.Text.Json;
using VyaBackupDb.Catalog;
using VyaBackupDb.Config;
using VyaBackupDb.Operations;
using VyaBackupDb.Pipeline;
using VyaBackupDb.Sources.Files;
using VyaBackupDb.Storage.Local;
using VyaBackupDb.Storage.S3;

namespace VyaBackupDb.Tests.Integration;

/// <summary>
/// Files backups end to end, through the CLI: a tree with every case round-trips exactly (also
/// through GNU tar and zstd alone), changing and unreadable files are reported, and restores
/// write only into their target, which they leave as it was when anything fails.
/// </summary>
[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
public sealed class FilesBackupTests : IAsyncLifetime
{
    private readonly Scratch _scratch = new();

    public Task InitializeAsync() => _scratch.InitializeAsync();

    public Task DisposeAsync() => _scratch.DisposeAsync();

    [Fact]
    public async Task A_tree_with_every_case_round_trips_exactly_and_GNU_tar_reads_the_archive_the_same()
    {
        var dir = _scratch.TempDir("files");
        var source = Path.Combine(dir, "srv", "app");
        var fifo = await FileTrees.BuildAllCasesAsync(source);
        var before = FileTrees.Listing(source, fifo);
        var backups = Path.Combine(dir, "backups");
        var config = await FileTrees.WriteConfigAsync(dir, backups, $"""
            - id: 7
              name: app files
              dbms: files
              paths: [{FileTrees.Yaml(source)}]
            """);

        var backup = await Run.CliAsync("backup", "--instance", "7", "--config", config);

        Assert.True(backup.ExitCode == 0, backup.ToString());
        Assert.Contains($"{fifo} (a FIFO: not backed up)", backup.Stderr, StringComparison.Ordinal);
        var file = Path.Combine(backups, Assert.Single(Ops.DataFilesUnder(backups)));
        Assert.Matches(@"/app%20files/\d{8}_\d{6}_files_app%20files\.tar\.zst$", file);
        var manifest = BackupManifest.FromJson(await File.ReadAllBytesAsync(file + BackupManifest.Suffix));
        Assert.Equal("tar", manifest.Format);
        Assert.Equal("files", manifest.Dbms);
        var files = Assert.IsType<FilesSummary>(manifest.Files);
        Assert.Equal([source], files.Paths);
        Assert.Equal(2, files.HardLinks);
        Assert.Equal(6, files.Symlinks);
        Assert.False(files.ChangedDuringBackup);
        Assert.Equal(fifo, Assert.Single(files.Skipped).Path);
        Assert.Equal(before.Count(l => l.Contains(" file ", StringComparison.Ordinal)) - 2, files.Files);
        var sha = await Run.ProgramAsync("sh", ["-c", "cd \"$(dirname \"$1\")\" && sha256sum -c \"$(basename \"$1\").sha256\"", "sh", file]);
        Assert.True(sha.ExitCode == 0, sha.ToString());

        // Our restore rebuilds the tree under the target, as the absolute path without its '/'.
        var target = Path.Combine(dir, "restored");
        var restore = await Run.CliAsync("restore", "--file", file, "--instance", "7", "--target", target, "--config", config);
        Assert.True(restore.ExitCode == 0, restore.ToString());
        Assert.Equal(before, FileTrees.Listing(target + source));
        Assert.DoesNotContain(Directory.EnumerateFileSystemEntries(dir), e => Path.GetFileName(e).StartsWith(".vya-", StringComparison.Ordinal));

        // The standard tools alone give the same tree.
        var gnu = Path.Combine(dir, "gnu");
        Directory.CreateDirectory(gnu);
        var tar = await Run.ProgramAsync("sh", ["-c", "zstd -dc \"$1\" | tar -x -C \"$2\"", "sh", file, gnu]);
        Assert.True(tar.ExitCode == 0, tar.ToString());
        Assert.Equal(before, FileTrees.Listing(gnu + source));

        // And GNU tar finds the archive identical to the source (content, modes, owners, times, links).
        var compare = await Run.ProgramAsync("sh", ["-c", "zstd -dc \"$1\" | tar --compare -C /", "sh", file]);
        Assert.True(compare.ExitCode == 0, compare.ToString());

        var verify = await Run.CliAsync("verify", "--instance", "7", "--config", config);
        Assert.True(verify.ExitCode == 0, verify.ToString());
        var list = await Run.CliAsync("list", "--instance", "7", "--json", "--config", config);
        Assert.True(list.ExitCode == 0, list.ToString());
        var listed = Assert.Single(JsonDocument.Parse(list.Stdout).RootElement.EnumerateArray());
        Assert.Equal("app files", listed.GetProperty("database").GetString());
        Assert.True(listed.GetProperty("verified").GetBoolean());
    }

    [SkippableTheory]
    [InlineData("gzip", false)]
    [InlineData("zip", false)]
    [InlineData("zip", true)] // found by a tester: backup and verify OK, restore failed on a disposed digest
    [InlineData("none", true)]
    public async Task Other_codecs_and_encryption_round_trip(string compression, bool encrypt)
    {
        if (encrypt)
        {
            AgeTool.Require();
        }
        var dir = _scratch.TempDir("files");
        var source = Path.Combine(dir, "data");
        var fifo = await FileTrees.BuildAllCasesAsync(source);
        var before = FileTrees.Listing(source, fifo);
        var keyFile = Path.Combine(dir, "key.txt");
        var extra = "";
        if (encrypt)
        {
            var keygen = await AgeTool.RunAsync("age-keygen", ["-o", keyFile]);
            Assert.True(keygen.ExitCode == 0, keygen.ToString());
            var publicKey = (await File.ReadAllLinesAsync(keyFile)).First(l => l.StartsWith("# public key: ", StringComparison.Ordinal))["# public key: ".Length..];
            extra = $"encryption: {{recipients: [{publicKey}]}}";
        }
        var backups = Path.Combine(dir, "backups");
        var config = await FileTrees.WriteConfigAsync(dir, backups, $$"""
            - {id: 3, name: data, dbms: files, encrypt: {{(encrypt ? "true" : "false")}}, paths: [{{FileTrees.Yaml(source)}}]}
            """, compression, extra);

        var backup = await Run.CliAsync("backup", "--instance", "3", "--config", config);

        Assert.True(backup.ExitCode == 0, backup.ToString());
        var file = Path.Combine(backups, Assert.Single(Ops.DataFilesUnder(backups)));
        var extension = compression switch { "gzip" => ".tar.gz", "zip" => ".tar.zip", _ => ".tar" } + (encrypt ? ".age" : "");
        Assert.EndsWith(extension, file, StringComparison.Ordinal);
        var target = Path.Combine(dir, "restored");
        var restore = await Run.CliAsync(["restore", "--file", file, "--instance", "3", "--target", target, "--config", config,
            .. encrypt ? new[] { "--identity", keyFile } : []]);
        Assert.True(restore.ExitCode == 0, restore.ToString());
        Assert.Equal(before, FileTrees.Listing(target + source));
        var verify = await Run.CliAsync(["verify", "--file", file, "--config", config, .. encrypt ? new[] { "--identity", keyFile } : []]);
        Assert.True(verify.ExitCode == 0, verify.ToString());
    }

    [Fact]
    public async Task A_file_growing_during_the_backup_is_named_in_a_warning_and_flagged_in_the_manifest()
    {
        var dir = _scratch.TempDir("files");
        var source = Path.Combine(dir, "logs");
        Directory.CreateDirectory(source);
        var growing = Path.Combine(source, "app.log");
        // Large enough that reading it takes a while; appended to all the time.
        await File.WriteAllBytesAsync(growing, new byte[48 << 20]);
        await File.WriteAllTextAsync(Path.Combine(source, "steady.txt"), "steady\n");
        var backups = Path.Combine(dir, "backups");
        var config = await FileTrees.WriteConfigAsync(dir, backups, $$"""
            - {id: 4, name: logs, dbms: files, paths: [{{FileTrees.Yaml(source)}}]}
            """);

        using var stop = new CancellationTokenSource();
        // A thread of its own, writing synchronously: appending must not wait for the thread pool
        // (busy with the CLI's output) during the few milliseconds the file is read.
        var writer = new Thread(() =>
        {
            using var log = new FileStream(growing, FileMode.Append, FileAccess.Write, FileShare.ReadWrite, 1);
            var line = "a line of the log\n"u8.ToArray();
            while (!stop.IsCancellationRequested)
            {
                log.Write(line);
            }
        });
        writer.Start();
        ProcessResult backup;
        try
        {
            backup = await Run.CliAsync("backup", "--instance", "4", "--config", config);
        }
        finally
        {
            await stop.CancelAsync();
            writer.Join();
        }

        Assert.True(backup.ExitCode == 0, backup.ToString());
        var warning = Assert.Single(backup.Stderr.Split('\n'), l => l.Contains("warning", StringComparison.Ordinal));
        Assert.Contains($"{growing} (grew while being read", warning, StringComparison.Ordinal);
        var file = Path.Combine(backups, Assert.Single(Ops.DataFilesUnder(backups)));
        var files = BackupManifest.FromJson(await File.ReadAllBytesAsync(file + BackupManifest.Suffix)).Files!;
        Assert.True(files.ChangedDuringBackup);
        Assert.Equal(growing, Assert.Single(files.Changed).Path);
        Assert.Contains("\"changed_during_backup\": true", await File.ReadAllTextAsync(file + BackupManifest.Suffix), StringComparison.Ordinal);

        // Found by a tester: only the backup's warning said so; verify and restore now say it too.
        var note = $"1 file(s) changed or vanished while the backup read them, so it is not one moment of the tree ({growing}; ";
        var verify = await Run.CliAsync("verify", "--instance", "4", "--config", config);
        Assert.True(verify.ExitCode == 0, verify.ToString());
        Assert.Contains(note, verify.Stdout + verify.Stderr, StringComparison.Ordinal);
        var restore = await Run.CliAsync("restore", "--file", file, "--instance", "4", "--target", Path.Combine(dir, "restored"), "--config", config);
        Assert.True(restore.ExitCode == 0, restore.ToString());
        Assert.Contains(note, restore.Stderr, StringComparison.Ordinal);
    }

    /// <summary>
    /// Found by a tester: a sparse file (a VM image, lastlog) came back fully allocated, and a restore could fill the
    /// disk that held it. Runs of zeros come back as holes; the content and length are the same.
    /// </summary>
    [Fact]
    public async Task A_sparse_file_comes_back_sparse_with_the_same_content()
    {
        var dir = _scratch.TempDir("files");
        var source = Path.Combine(dir, "images");
        Directory.CreateDirectory(source);
        var image = Path.Combine(source, "disk.img");
        await using (var file = new FileStream(image, FileMode.CreateNew))
        {
            await file.WriteAsync("head"u8.ToArray());
            // Blocks of data far apart, wherever the archive's reads happen to cut them (a tester: 17 times the room).
            for (var block = 1; block < 64; block++)
            {
                file.Seek(block * (128L << 10), SeekOrigin.Begin);
                await file.WriteAsync(Enumerable.Range(0, 4096).Select(i => (byte)((i + block) % 251 + 1)).ToArray());
            }
            file.Seek(200L << 20, SeekOrigin.Begin);
            await file.WriteAsync(Enumerable.Range(0, 3000).Select(i => (byte)(i % 251 + 1)).ToArray());
            file.SetLength(400L << 20); // ends in a hole too
        }
        var backups = Path.Combine(dir, "backups");
        var config = await FileTrees.WriteConfigAsync(dir, backups, $$"""
            - {id: 4, name: images, dbms: files, paths: [{{FileTrees.Yaml(source)}}]}
            """);
        var target = Path.Combine(dir, "restored");

        var backup = await Run.CliAsync("backup", "--instance", "4", "--config", config);
        var restore = await Run.CliAsync("restore", "--file", Path.Combine(backups, Assert.Single(Ops.DataFilesUnder(backups))),
            "--instance", "4", "--target", target, "--config", config);

        Assert.True(backup.ExitCode == 0, backup.ToString());
        Assert.True(restore.ExitCode == 0, restore.ToString());
        var restored = target + image;
        Assert.Equal(400L << 20, new FileInfo(restored).Length);
        Assert.Equal(Ops.Sha256(image), Ops.Sha256(restored));
        var allocated = await Run.ProgramAsync("stat", ["-c", "%b", image, restored]);
        var blocks = allocated.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(b => long.Parse(b, System.Globalization.CultureInfo.InvariantCulture)).ToList();
        Assert.True(blocks[1] <= blocks[0], $"allocated: {blocks[0]} blocks in the source, {blocks[1]} restored");
    }

    [SkippableFact]
    public async Task ACLs_and_extended_attributes_are_named_in_one_warning_and_an_ACL_mask_never_widens_the_owning_group_on_restore()
    {
        Skip.IfNot(File.Exists("/usr/bin/setfacl") && File.Exists("/usr/bin/setfattr"), "no setfacl or setfattr");
        var dir = _scratch.TempDir("files");
        var source = Path.Combine(dir, "src");
        var acl = Path.Combine(source, "acl");
        var shared = Path.Combine(source, "shared");
        var xattr = Path.Combine(source, "xattr");
        Directory.CreateDirectory(shared);
        await File.WriteAllTextAsync(acl, "secret\n");
        await File.WriteAllTextAsync(xattr, "noted\n");
        await File.WriteAllTextAsync(Path.Combine(source, "plain"), "plain\n");
        File.SetUnixFileMode(acl, (UnixFileMode)0x1A0); // 0640: the owning group reads only
        File.SetUnixFileMode(shared, (UnixFileMode)0x1E8); // 0750
        // Another user may write: the ACL's mask becomes rw(x), and the mode's group bits show the mask.
        var set = await Run.ProgramAsync("sh", ["-c", "setfacl -m u:12345:rw \"$1\" && setfacl -m u:12345:rwx \"$2\" && setfattr -n user.note -v hello \"$3\"", "sh", acl, shared, xattr]);
        Skip.IfNot(set.ExitCode == 0, "this file system keeps no ACLs or user extended attributes: " + set.Stderr);
        Assert.Equal((UnixFileMode)0x1B0, File.GetUnixFileMode(acl)); // 0660
        var backups = Path.Combine(dir, "backups");
        var config = await FileTrees.WriteConfigAsync(dir, backups, $$"""
            - {id: 5, name: acl, dbms: files, paths: [{{FileTrees.Yaml(source)}}]}
            """);

        var backup = await Run.CliAsync("backup", "--instance", "5", "--config", config);

        Assert.True(backup.ExitCode == 0, backup.ToString());
        Assert.Contains($"3 file(s) or directories have ACLs or extended attributes, which a backup does not keep: {acl}, {shared}, {xattr}", backup.Stderr, StringComparison.Ordinal);
        var file = Path.Combine(backups, Assert.Single(Ops.DataFilesUnder(backups)));
        Assert.Equal(3, BackupManifest.FromJson(await File.ReadAllBytesAsync(file + BackupManifest.Suffix)).Files!.XattrsNotKept);
        var target = Path.Combine(dir, "restored");
        var restore = await Run.CliAsync("restore", "--file", file, "--instance", "5", "--target", target, "--config", config);
        Assert.True(restore.ExitCode == 0, restore.ToString());
        Assert.Equal((UnixFileMode)0x1A0, File.GetUnixFileMode(target + acl));
        Assert.Equal((UnixFileMode)0x1E8, File.GetUnixFileMode(target + shared));
    }

    [Fact]
    public async Task An_unreadable_file_fails_the_backup_naming_it_and_skip_unreadable_skips_it_and_says_so()
    {
        var dir = _scratch.TempDir("files");
        var source = Path.Combine(dir, "etc");
        Directory.CreateDirectory(source);
        await File.WriteAllTextAsync(Path.Combine(source, "public.conf"), "ok\n");
        var secret = Path.Combine(source, "secret.key");
        await File.WriteAllTextAsync(secret, "secret\n");
        File.SetUnixFileMode(secret, UnixFileMode.None);
        var backups = Path.Combine(dir, "backups");
        var config = await FileTrees.WriteConfigAsync(dir, backups, $$"""
            - {id: 5, name: strict, dbms: files, paths: [{{FileTrees.Yaml(source)}}]}
            - {id: 6, name: lenient, dbms: files, skip_unreadable: true, paths: [{{FileTrees.Yaml(source)}}]}
            """);

        var strict = await Run.CliWithoutReadOverrideAsync("backup", "--instance", "5", "--config", config);

        Assert.True(strict.ExitCode == 1, strict.ToString());
        Assert.Contains($"cannot read {secret}: Permission denied", strict.Stderr, StringComparison.Ordinal);
        Assert.Empty(Ops.FilesUnder(Path.Combine(backups, "strict")));

        var lenient = await Run.CliWithoutReadOverrideAsync("backup", "--instance", "6", "--config", config);

        Assert.True(lenient.ExitCode == 0, lenient.ToString());
        Assert.Contains($"{secret} (unreadable (Permission denied): skipped)", lenient.Stderr, StringComparison.Ordinal);
        var file = Path.Combine(backups, Assert.Single(Ops.DataFilesUnder(backups)));
        var files = BackupManifest.FromJson(await File.ReadAllBytesAsync(file + BackupManifest.Suffix)).Files!;
        Assert.Equal(1, files.Files);
        Assert.Equal(secret, Assert.Single(files.Skipped).Path);
    }

    [Fact]
    public async Task Include_and_exclude_match_paths_relative_to_each_root()
    {
        var dir = _scratch.TempDir("files");
        var first = Path.Combine(dir, "one");
        var second = Path.Combine(dir, "two");
        foreach (var path in new[] { "conf/app.conf", "conf/app.conf.tmp", "logs/a.log", "logs/old/b.log", "cache/x", "data/keep.txt", "data/cache/y" })
        {
            foreach (var root in new[] { first, second })
            {
                Directory.CreateDirectory(Path.GetDirectoryName(Path.Combine(root, path))!);
                await File.WriteAllTextAsync(Path.Combine(root, path), path);
            }
        }
        // A third path with nothing include names: left out, and said so (include applies below every path).
        var third = Path.Combine(dir, "three");
        Directory.CreateDirectory(Path.Combine(third, "sites"));
        await File.WriteAllTextAsync(Path.Combine(third, "sites", "default"), "x");
        var backups = Path.Combine(dir, "backups");
        var config = await FileTrees.WriteConfigAsync(dir, backups, $"""
            - id: 8
              name: selected
              dbms: files
              paths: [{FileTrees.Yaml(first)}, {FileTrees.Yaml(second)}, {FileTrees.Yaml(third)}]
              include: ["conf/**", "logs", "data/**"]
              exclude: ["**/*.tmp", "data/cache"]
            """);

        var backup = await Run.CliAsync("backup", "--instance", "8", "--config", config);

        Assert.True(backup.ExitCode == 0, backup.ToString());
        Assert.Contains($"{third} (paths:): nothing in it matches include: it is not in the backup", backup.Stderr, StringComparison.Ordinal);
        Assert.DoesNotContain($"{first} (paths:)", backup.Stderr, StringComparison.Ordinal);
        var target = Path.Combine(dir, "restored");
        var restore = await Run.CliAsync("restore", "--file", Path.Combine(backups, Ops.DataFilesUnder(backups)[0]), "--instance", "8",
            "--target", target, "--config", config);
        Assert.True(restore.ExitCode == 0, restore.ToString());
        foreach (var root in new[] { first, second })
        {
            var restored = Directory.EnumerateFiles(target + root, "*", SearchOption.AllDirectories)
                .Select(f => Path.GetRelativePath(target + root, f)).Order(StringComparer.Ordinal);
            Assert.Equal(["conf/app.conf", "data/keep.txt", "logs/a.log", "logs/old/b.log"], restored);
        }
    }

    [Fact]
    public async Task A_selection_that_leaves_nothing_fails_the_backup_instead_of_storing_an_empty_archive()
    {
        var dir = _scratch.TempDir("files");
        var source = Path.Combine(dir, "app");
        Directory.CreateDirectory(Path.Combine(source, "conf"));
        await File.WriteAllTextAsync(Path.Combine(source, "conf", "app.conf"), "x");
        var backups = Path.Combine(dir, "backups");
        var config = await FileTrees.WriteConfigAsync(dir, backups, $$"""
            - {id: 9, name: mistyped, dbms: files, include: ["config/**"], paths: [{{FileTrees.Yaml(source)}}]}
            """);

        var backup = await Run.CliAsync("backup", "--instance", "9", "--config", config);

        Assert.True(backup.ExitCode == 1, backup.ToString());
        Assert.Contains($"nothing to back up: {source} (paths:): nothing in it matches include", backup.Stderr, StringComparison.Ordinal);
        Assert.Empty(Directory.Exists(backups) ? Ops.DataFilesUnder(backups) : []);
    }

    [Fact]
    public async Task Restore_refuses_a_directory_that_is_not_empty_and_with_force_replaces_its_content()
    {
        var (dir, config, file, before, source) = await BackedUpTreeAsync();
        var target = Path.Combine(dir, "target");
        Directory.CreateDirectory(target);
        await File.WriteAllTextAsync(Path.Combine(target, "old.txt"), "old content\n");

        var refused = await Run.CliAsync("restore", "--file", file, "--instance", "2", "--target", target, "--config", config);

        Assert.True(refused.ExitCode == 2, refused.ToString());
        Assert.Single(Cli.ErrorLines(refused));
        Assert.DoesNotContain("restoring", refused.Stdout, StringComparison.Ordinal);
        Assert.Equal(["old.txt"], Directory.EnumerateFileSystemEntries(target).Select(Path.GetFileName));

        // The bare file name, as list shows it, is found in the instance's folder.
        var forced = await Run.CliAsync("restore", "--file", Path.GetFileName(file), "--instance", "2", "--target", target, "--force", "--config", config);

        Assert.True(forced.ExitCode == 0, forced.ToString());
        Assert.False(File.Exists(Path.Combine(target, "old.txt")));
        Assert.Equal(before, FileTrees.Listing(target + source));
        Assert.DoesNotContain(Directory.EnumerateFileSystemEntries(dir), e => Path.GetFileName(e).StartsWith(".vya-", StringComparison.Ordinal));
    }

    /// <summary>
    /// A bare file name held by two destinations is taken from the first that has its manifest beside it (tr103: the
    /// first destination's copy without one was restored, checked by its end-of-archive blocks alone).
    /// </summary>
    [Fact]
    public async Task A_bare_file_name_is_restored_from_the_copy_that_has_its_manifest()
    {
        var dir = _scratch.TempDir("files");
        var source = Path.Combine(dir, "src");
        Directory.CreateDirectory(source);
        await File.WriteAllTextAsync(Path.Combine(source, "a.txt"), "a\n");
        var backups = Path.Combine(dir, "backups");
        var nas = Path.Combine(dir, "nas");
        var config = await FileTrees.WriteConfigAsync(dir, backups,
            $"- {{id: 1, name: tree, dbms: files, paths: [{FileTrees.Yaml(source)}], storage: [local, nas]}}",
            extra: $"storage:\n  - {{name: nas, type: local, path: {FileTrees.Yaml(nas)}}}");
        var backup = await Run.CliAsync("backup", "--instance", "1", "--config", config);
        Assert.True(backup.ExitCode == 0, backup.ToString());
        var file = Path.Combine(backups, Assert.Single(Ops.DataFilesUnder(backups)));
        File.Delete(file + VyaBackupDb.Catalog.BackupManifest.Suffix);

        var plan = await Run.CliAsync("restore", "--file", Path.GetFileName(file), "--instance", "1", "--target", Path.Combine(dir, "target"), "--dry-run", "--config", config);

        Assert.True(plan.ExitCode == 0, plan.ToString());
        Assert.Contains($"would restore {Path.Combine(nas, "tree", Path.GetFileName(file))} (", plan.Stdout, StringComparison.Ordinal);
        Assert.DoesNotContain("no manifest", plan.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_tree_deeper_than_PATH_MAX_round_trips_through_backup_and_restore()
    {
        var dir = _scratch.TempDir("files");
        try
        {
            var source = Path.Combine(dir, "src");
            await FileTrees.BuildDeeperThanPathMaxAsync(source);
            var before = await FileTrees.DeepListingAsync(source);
            var backups = Path.Combine(dir, "backups");
            var config = await FileTrees.WriteConfigAsync(dir, backups, $$"""
                - {id: 8, name: deep, dbms: files, paths: [{{FileTrees.Yaml(source)}}]}
                """);
            var backup = await Run.CliAsync("backup", "--instance", "8", "--config", config);
            Assert.True(backup.ExitCode == 0, backup.ToString());
            var file = Path.Combine(backups, Assert.Single(Ops.DataFilesUnder(backups)));
            var target = Path.Combine(dir, "restored");

            var restore = await Run.CliAsync("restore", "--file", file, "--instance", "8", "--target", target, "--config", config);

            Assert.True(restore.ExitCode == 0, restore.ToString());
            Assert.Contains("1 files (5 B), ", restore.Stdout, StringComparison.Ordinal);
            Assert.Contains(" 1 symlinks, 1 hard links", restore.Stdout, StringComparison.Ordinal);
            Assert.Equal(before, await FileTrees.DeepListingAsync(target + source));
            Assert.DoesNotContain(Directory.EnumerateFileSystemEntries(dir), e => Path.GetFileName(e).StartsWith(".vya-", StringComparison.Ordinal));
        }
        finally
        {
            await FileTrees.RemoveDeepAsync(dir);
        }
    }

    /// <summary>
    /// The backup's walk recurses once per level: at 10,000 levels it overflowed its thread's stack
    /// and killed the process (restoring such a tree takes the path of the test above, slowly: 13 s).
    /// </summary>
    [Fact]
    public async Task A_tree_ten_thousand_levels_deep_backs_up_and_verifies()
    {
        var dir = _scratch.TempDir("files");
        try
        {
            var source = Path.Combine(dir, "src");
            FileTrees.BuildChain(source, 10_000);
            var backups = Path.Combine(dir, "backups");
            var config = await FileTrees.WriteConfigAsync(dir, backups, $$"""
                - {id: 8, name: deeper, dbms: files, paths: [{{FileTrees.Yaml(source)}}]}
                """);

            var backup = await Run.CliAsync("backup", "--instance", "8", "--config", config);

            Assert.True(backup.ExitCode == 0, backup.ToString());
            var file = Path.Combine(backups, Assert.Single(Ops.DataFilesUnder(backups)));
            var manifest = BackupManifest.FromJson(await File.ReadAllBytesAsync(file + BackupManifest.Suffix));
            Assert.Equal((10_001L, 1L), (manifest.Files!.Directories, manifest.Files.Files));
            var verify = await Run.CliAsync("verify", "--instance", "8", "--config", config); // reads every name back
            Assert.True(verify.ExitCode == 0, verify.ToString());
        }
        finally
        {
            await FileTrees.RemoveDeepAsync(dir);
        }
    }

    /// <summary>
    /// The old tree is removed by descriptors, one directory open at a time: deeper than PATH_MAX it
    /// could not be removed by path, deeper than the open files limit not with one open file per level.
    /// </summary>
    [Fact]
    public async Task Restore_force_over_a_target_deeper_than_PATH_MAX_removes_the_old_tree_and_leaves_nothing_beside()
    {
        var (dir, config, file, before, source) = await BackedUpTreeAsync();
        var target = Path.Combine(dir, "target");
        try
        {
            await FileTrees.BuildDeeperThanPathMaxAsync(target);
            FileTrees.BuildChain(Path.Combine(target, "chain"), 2_000);

            var forced = await Run.CliUnderOpenFilesLimitAsync(512, "restore", "--file", file, "--instance", "2", "--target", target, "--force", "--config", config);

            Assert.True(forced.ExitCode == 0, forced.ToString());
            Assert.DoesNotContain("could not be removed", forced.Stderr, StringComparison.Ordinal);
            Assert.Equal([source.Split('/')[1]], Directory.EnumerateFileSystemEntries(target).Select(Path.GetFileName));
            Assert.Equal(before, FileTrees.Listing(target + source));
            Assert.DoesNotContain(Directory.EnumerateFileSystemEntries(dir), e => Path.GetFileName(e).StartsWith(".vya-", StringComparison.Ordinal));
        }
        finally
        {
            await FileTrees.RemoveDeepAsync(dir);
        }
    }

    /// <summary>A name is quoted in a message as one line: a newline in it forged a log line of its own, an escape sequence reached the terminal.</summary>
    [Fact]
    public async Task A_name_with_a_newline_or_an_escape_sequence_is_quoted_on_one_line()
    {
        var dir = _scratch.TempDir("files");
        var source = Path.Combine(dir, "src");
        Directory.CreateDirectory(source);
        var fifo = Path.Combine(source, "fifo\n2026-11-28T11:00:00Z ok     FAKE: forged\u001b]0;title\u0007");
        var mkfifo = await Run.ProgramAsync("mkfifo", [fifo]);
        Assert.True(mkfifo.ExitCode == 0, mkfifo.ToString());
        var log = Path.Combine(dir, "backup.log");
        var config = await FileTrees.WriteConfigAsync(dir, Path.Combine(dir, "backups"), $$"""
            - {id: 8, name: names, dbms: files, paths: [{{FileTrees.Yaml(source)}}]}
            """);

        var backup = await Run.CliAsync("--log-file", log, "backup", "--instance", "8", "--config", config);

        Assert.True(backup.ExitCode == 0, backup.ToString());
        foreach (var output in new[] { backup.Stderr, await File.ReadAllTextAsync(log) })
        {
            var line = Assert.Single(output.Split('\n'), l => l.Contains("FAKE", StringComparison.Ordinal));
            Assert.Contains("fifo\\n2026-11-28T11:00:00Z ok     FAKE: forged\\x1b]0;title\\x07 (a FIFO: not backed up)", line, StringComparison.Ordinal);
            Assert.DoesNotContain('\u001b', output);
        }
    }

    /// <summary>
    /// Backup and restore hold one open file per directory level: a tree deeper than the open files
    /// limit allows fails in one line (a restore that took every file aborted in the runtime, "Out of
    /// memory.", exit 134, its staging directory left).
    /// </summary>
    [Fact]
    public async Task A_tree_deeper_than_the_open_files_limit_allows_fails_in_one_line_and_leaves_nothing()
    {
        var dir = _scratch.TempDir("files");
        try
        {
            var source = Path.Combine(dir, "src");
            FileTrees.BuildChain(source, 1_000);
            var backups = Path.Combine(dir, "backups");
            var config = await FileTrees.WriteConfigAsync(dir, backups, $$"""
                - {id: 8, name: chain, dbms: files, paths: [{{FileTrees.Yaml(source)}}]}
                """);
            var limited = await Run.CliUnderOpenFilesLimitAsync(512, "backup", "--instance", "8", "--config", config);
            Assert.True(limited.ExitCode == 1, limited.ToString());
            Assert.Contains("the tree is deeper than the open files limit allows (one open file per directory level; ulimit -n 512)",
                limited.Stderr, StringComparison.Ordinal);
            Assert.Empty(Ops.DataFilesUnder(backups));
            var backup = await Run.CliAsync("backup", "--instance", "8", "--config", config);
            Assert.True(backup.ExitCode == 0, backup.ToString());
            var file = Path.Combine(backups, Assert.Single(Ops.DataFilesUnder(backups)));

            var restore = await Run.CliUnderOpenFilesLimitAsync(512, "restore", "--file", file, "--instance", "8", "--target", Path.Combine(dir, "t"), "--config", config);

            Assert.True(restore.ExitCode == 1, restore.ToString());
            var error = Assert.Single(Cli.ErrorLines(restore));
            Assert.Contains("the tree is deeper than the open files limit allows", error, StringComparison.Ordinal);
            Assert.DoesNotContain(Directory.EnumerateFileSystemEntries(dir), e => Path.GetFileName(e) is "t" or ['.', 'v', 'y', 'a', ..]);
        }
        finally
        {
            await FileTrees.RemoveDeepAsync(dir);
        }
    }

    /// <summary>
    /// A restore into a mount point stages inside it: killed then, it left its staging directory
    /// there, which a later --force restore kept beside the new content (exit 0).
    /// </summary>
    [Fact]
    public async Task A_staging_directory_a_killed_restore_left_in_the_target_is_removed_by_the_next_restore()
    {
        var (dir, config, file, before, source) = await BackedUpTreeAsync();
        var target = Path.Combine(dir, "target");
        var stale = Path.Combine(target, ".vya-restore-0123456789ab");
        Directory.CreateDirectory(Path.Combine(stale, "half"));
        await File.WriteAllTextAsync(Path.Combine(stale, "half", "partial"), "partial\n");

        var restore = await Run.CliAsync("restore", "--file", file, "--instance", "2", "--target", target, "--force", "--config", config);

        Assert.True(restore.ExitCode == 0, restore.ToString());
        Assert.Contains("was interrupted: removed what it had staged", restore.Stderr, StringComparison.Ordinal);
        Assert.Equal([source.Split('/')[1]], Directory.EnumerateFileSystemEntries(target).Select(Path.GetFileName));
        Assert.Equal(before, FileTrees.Listing(target + source));
    }

    /// <summary>
    /// Found by a tester: a files backup copied under another name without its manifest was called "truncated: the dump
    /// ends without its completion trailer" (read as a dump). What it can be told is that it cannot be told what it is.
    /// </summary>
    [Fact]
    public async Task A_renamed_backup_without_its_manifest_is_named_as_such_not_as_truncated()
    {
        var (dir, config, file, _, _) = await BackedUpTreeAsync();
        var renamed = Path.Combine(dir, "app-files-monday.tar.zst");
        File.Copy(file, renamed);

        var verify = await Run.CliAsync("verify", "--file", renamed, "--config", config);

        Assert.True(verify.ExitCode == 4, verify.ToString());
        Assert.Contains("a name that is no backup's", verify.Stdout, StringComparison.Ordinal);
        Assert.DoesNotContain("truncated", verify.Stdout, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("truncated")]
    [InlineData("corrupted")]
    public async Task A_damaged_backup_leaves_the_target_as_it_was(string damage)
    {
        var (dir, config, file, _, _) = await BackedUpTreeAsync();
        var bytes = await File.ReadAllBytesAsync(file);
        if (damage == "truncated")
        {
            await File.WriteAllBytesAsync(file, bytes[..(bytes.Length * 2 / 3)]);
        }
        else
        {
            bytes[bytes.Length / 2] ^= 0x55;
            await File.WriteAllBytesAsync(file, bytes);
        }
        var target = Path.Combine(dir, "target");
        Directory.CreateDirectory(target);
        await File.WriteAllTextAsync(Path.Combine(target, "old.txt"), "old content\n");
        var missing = Path.Combine(dir, "missing");

        var replace = await Run.CliAsync("restore", "--file", file, "--instance", "2", "--target", target, "--force", "--config", config);
        var create = await Run.CliAsync("restore", "--file", file, "--instance", "2", "--target", missing, "--config", config);

        // Found by a tester: a byte changed said only the decoder's "Data corruption detected", exit 1. The file does
        // not match its manifest: that is the failure, as verify says it.
        Assert.True(replace.ExitCode == 4, replace.ToString());
        Assert.Contains(damage == "truncated" ? ": truncated: " : ": digest mismatch: ", Assert.Single(Cli.ErrorLines(replace)), StringComparison.Ordinal);
        Assert.Equal(["old.txt"], Directory.EnumerateFileSystemEntries(target).Select(Path.GetFileName));
        Assert.Equal("old content\n", await File.ReadAllTextAsync(Path.Combine(target, "old.txt")));
        Assert.True(create.ExitCode == 4, create.ToString());
        Assert.False(Path.Exists(missing));
        Assert.DoesNotContain(Directory.EnumerateFileSystemEntries(dir), e => Path.GetFileName(e).StartsWith(".vya-", StringComparison.Ordinal));
        var verify = await Run.CliAsync("verify", "--file", file, "--config", config);
        Assert.True(verify.ExitCode == 4, verify.ToString());
    }

    [Fact]
    public async Task Backup_all_takes_files_instances_and_prune_applies_their_retention()
    {
        var dir = _scratch.TempDir("files");
        var one = Path.Combine(dir, "one");
        var two = Path.Combine(dir, "two");
        Directory.CreateDirectory(one);
        Directory.CreateDirectory(two);
        await File.WriteAllTextAsync(Path.Combine(one, "f"), "1");
        await File.WriteAllTextAsync(Path.Combine(two, "f"), "2");
        var backups = Path.Combine(dir, "backups");
        var config = await FileTrees.WriteConfigAsync(dir, backups, $$"""
            - {id: 1, name: one, dbms: files, paths: [{{FileTrees.Yaml(one)}}], retention: {keep_last: 1} }
            - {id: 2, name: two, dbms: files, paths: [{{FileTrees.Yaml(two)}}]}
            """);

        var first = await Run.CliAsync("backup", "--all", "--config", config);
        await Task.Delay(1100); // the next backup gets another second in its name
        var second = await Run.CliAsync("backup", "--all", "--prune", "--config", config);

        Assert.True(first.ExitCode == 0, first.ToString());
        Assert.True(second.ExitCode == 0, second.ToString());
        Assert.Single(Ops.DataFilesUnder(Path.Combine(backups, "one")));
        Assert.Equal(2, Ops.DataFilesUnder(Path.Combine(backups, "two")).Count);
    }

    [SkippableFact]
    public async Task A_files_backup_is_copied_to_S3_and_restored_from_there()
    {
        await TestServers.RequireS3Async();
        var dir = _scratch.TempDir("files");
        var source = Path.Combine(dir, "data");
        var fifo = await FileTrees.BuildAllCasesAsync(source);
        var before = FileTrees.Listing(source, fifo);
        var s3 = TestServers.S3($"itest/{Guid.NewGuid():N}/", "offsite");
        var config = await FileTrees.WriteConfigAsync(dir, Path.Combine(dir, "backups"), $$"""
            - {id: 3, name: data, dbms: files, storage: [local, offsite], paths: [{{FileTrees.Yaml(source)}}]}
            """, extra: $$"""
            storage:
              - {name: offsite, type: s3, endpoint: '{{s3.Endpoint}}', bucket: {{s3.Bucket}}, prefix: '{{s3.Prefix}}', access_key_id: {{TestServers.S3AccessKey}}, secret_access_key: {{TestServers.S3SecretKey}}, part_size_mb: 5}
            """);
        using var storage = new S3Storage(s3);
        try
        {
            var backup = await Run.CliAsync("backup", "--instance", "3", "--config", config);
            Assert.True(backup.ExitCode == 0, backup.ToString());
            var list = await Run.CliAsync("list", "--instance", "3", "--storage", "offsite", "--json", "--config", config);
            var id = Assert.Single(JsonDocument.Parse(list.Stdout).RootElement.EnumerateArray()).GetProperty("id").GetString()!;
            Assert.StartsWith("offsite:data/", id, StringComparison.Ordinal);

            var target = Path.Combine(dir, "restored");
            var restore = await Run.CliAsync("restore", "--file", id, "--instance", "3", "--target", target, "--config", config);

            Assert.True(restore.ExitCode == 0, restore.ToString());
            Assert.Equal(before, FileTrees.Listing(target + source));
            var verify = await Run.CliAsync("verify", "--file", id, "--config", config);
            Assert.True(verify.ExitCode == 0, verify.ToString());
        }
        finally
        {
            await foreach (var entry in storage.ListAsync("", CancellationToken.None))
            {
                await storage.DeleteAsync(entry.Key, CancellationToken.None);
            }
        }
    }

    [SkippableFact]
    public async Task A_target_that_is_a_mount_point_is_filled_in_place()
    {
        Skip.IfNot(FileTrees.IsRoot, "mounting a tmpfs needs root");
        var (dir, config, file, before, source) = await BackedUpTreeAsync();
        var target = Path.Combine(dir, "mounted");
        Directory.CreateDirectory(target);
        var mount = await Run.ProgramAsync("mount", ["-t", "tmpfs", "-o", "size=64m", "vya-test", target]);
        Skip.If(mount.ExitCode != 0, $"cannot mount a tmpfs here: {mount.Stderr.Trim()}");
        try
        {
            await File.WriteAllTextAsync(Path.Combine(target, "old.txt"), "old\n");

            var restore = await Run.CliAsync("restore", "--file", file, "--instance", "2", "--target", target, "--force", "--config", config);

            Assert.True(restore.ExitCode == 0, restore.ToString());
            Assert.Equal(before, FileTrees.Listing(target + source));
            Assert.False(File.Exists(Path.Combine(target, "old.txt")));
            Assert.DoesNotContain(Directory.EnumerateFileSystemEntries(target), e => Path.GetFileName(e).StartsWith(".vya-", StringComparison.Ordinal));
            Assert.DoesNotContain(Directory.EnumerateFileSystemEntries(dir), e => Path.GetFileName(e).StartsWith(".vya-", StringComparison.Ordinal));
        }
        finally
        {
            var umount = await Run.ProgramAsync("umount", [target]);
            Assert.True(umount.ExitCode == 0, umount.ToString());
        }
    }

    [Fact]
    public async Task An_interrupted_backup_or_restore_leaves_nothing_behind()
    {
        var (dir, _, file, _, source) = await BackedUpTreeAsync();
        var instance = new InstanceConfig(2, "src", Dbms.Files, "", 0, "", PasswordSource.None, true, [], [], null) { Paths = [source] };
        var backups = Path.Combine(dir, "interrupted");
        var config = TestServers.Config(backups, instance);
        using var stopBackup = new CancellationTokenSource();
        var backupObserver = new CancellingObserver(stopBackup);

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() =>
            new BackupOperation(config, new LocalStorage(backups), TimeProvider.System, backupObserver)
                .RunAsync(new BackupRequest([instance], null, Compression.Zstd, DryRun: false), stopBackup.Token));

        Assert.Empty(Ops.FilesUnder(backups));

        var target = Path.Combine(dir, "target");
        Directory.CreateDirectory(target);
        await File.WriteAllTextAsync(Path.Combine(target, "old.txt"), "old\n");
        using var stopRestore = new CancellationTokenSource();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() =>
            new FilesRestoreOperation(config, new CancellingObserver(stopRestore))
                .RunAsync(new FilesRestoreRequest(file, instance, target, DryRun: false, Force: true), stopRestore.Token));

        Assert.Equal(["old.txt"], Directory.EnumerateFileSystemEntries(target).Select(Path.GetFileName));
        Assert.DoesNotContain(Directory.EnumerateFileSystemEntries(dir), e => Path.GetFileName(e).StartsWith(".vya-", StringComparison.Ordinal));
    }

    /// <summary>Cancels its run (as Ctrl+C would) when the backup or the restore has started writing.</summary>
    private sealed class CancellingObserver(CancellationTokenSource stop) : IBackupObserver, IFilesRestoreObserver
    {
        public void Planned(BackupItem item)
        {
        }

        public void Started(BackupItem item, Func<long> storedBytesSoFar, Func<long> plainBytesSoFar) => stop.Cancel();

        public void Finished(BackupItemResult result)
        {
        }

        public void Warning(string message)
        {
        }

        public void Planned(FilesRestorePlan plan)
        {
        }

        public bool Confirm(string question) => false;

        public void Started(long fileBytes, Func<long> fileBytesRead) => stop.Cancel();
    }

    /// <summary>A small tree backed up by instance 2 (zstd); its listing, and where it came from.</summary>
    private async Task<(string Dir, string Config, string File, List<string> Before, string Source)> BackedUpTreeAsync()
    {
        var dir = _scratch.TempDir("files");
        var source = Path.Combine(dir, "src");
        Directory.CreateDirectory(Path.Combine(source, "sub"));
        var random = new byte[2 << 20];
        new Random(7).NextBytes(random);
        await File.WriteAllBytesAsync(Path.Combine(source, "random.bin"), random);
        await File.WriteAllTextAsync(Path.Combine(source, "sub", "text.txt"), string.Concat(Enumerable.Repeat("some text\n", 50_000)));
        File.CreateSymbolicLink(Path.Combine(source, "link"), "sub/text.txt");
        var backups = Path.Combine(dir, "backups");
        var config = await FileTrees.WriteConfigAsync(dir, backups, $$"""
            - {id: 2, name: src, dbms: files, paths: [{{FileTrees.Yaml(source)}}]}
            """);
        var backup = await Run.CliAsync("backup", "--instance", "2", "--config", config);
        Assert.True(backup.ExitCode == 0, backup.ToString());
        return (dir, config, Path.Combine(backups, Assert.Single(Ops.DataFilesUnder(backups))), FileTrees.Listing(source), source);
    }
}
