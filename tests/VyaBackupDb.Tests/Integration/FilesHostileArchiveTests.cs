using System.Formats.Tar;
using System.Text;
using VyaBackupDb.Sources.Files;

namespace VyaBackupDb.Tests.Integration;

/// <summary>
/// Archives vya-backupdb did not write, built to escape the target: '..' and absolute names, a
/// symlink and then a file through it, hard links to paths outside. A restore refuses each with
/// one error line, writes nothing outside the target, and leaves the target as it was (missing,
/// or empty) with no staging directory behind.
/// </summary>
[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
public sealed class FilesHostileArchiveTests : IAsyncLifetime
{
    private readonly Scratch _scratch = new();

    public Task InitializeAsync() => _scratch.InitializeAsync();

    public Task DisposeAsync() => _scratch.DisposeAsync();

    public static TheoryData<string, bool> Cases() => new()
    {
        { "dot-dot", false },
        { "dot-dot-deep", true },
        { "absolute", false },
        { "symlink-then-file", false },
        { "symlink-relative-then-file", true },
        { "hard-link-outside", false },
        { "hard-link-absolute", true },
        { "hard-link-through-symlink", false },
        { "symlink-replacing-directory", true },
        { "gnu-long-name-dot-dot", false },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task A_hostile_archive_writes_nothing_outside_the_target(string attack, bool targetExists)
    {
        var dir = _scratch.TempDir("hostile");
        var work = Path.Combine(dir, "work");           // the target's parent: staging goes here
        var target = Path.Combine(work, "target");
        var outside = Path.Combine(dir, "outside");     // what an attack aims at
        Directory.CreateDirectory(work);
        Directory.CreateDirectory(outside);
        var secret = Path.Combine(outside, "secret.txt");
        await File.WriteAllTextAsync(secret, "secret\n");
        var absolute = Path.Combine(dir, "absolute-planted.txt");
        if (targetExists)
        {
            Directory.CreateDirectory(target);
        }
        var archive = Path.Combine(dir, "hostile.tar");
        await WriteArchiveAsync(archive, attack, outside, absolute);
        var config = await FileTrees.WriteConfigAsync(dir, Path.Combine(dir, "backups"), $$"""
            - {id: 1, name: restore-here, dbms: files, paths: [/nonexistent]}
            """);
        var outsideBefore = FileTrees.Listing(outside);
        var dirBefore = Names(dir);

        var restore = await Run.CliAsync("restore", "--file", archive, "--instance", "1", "--target", target, "--config", config);

        Assert.True(restore.ExitCode == 1, restore.ToString());
        var error = Assert.Single(Cli.ErrorLines(restore));
        Assert.Contains("refused", error, StringComparison.Ordinal);
        Assert.Contains("was not changed", error, StringComparison.Ordinal);
        Assert.Equal(outsideBefore, FileTrees.Listing(outside));
        Assert.Equal(dirBefore, Names(dir));
        Assert.Equal(targetExists ? ["target"] : [], Names(work));
        if (targetExists)
        {
            Assert.Empty(Directory.EnumerateFileSystemEntries(target));
        }
        Assert.False(File.Exists(absolute));
        Assert.Equal("secret\n", await File.ReadAllTextAsync(secret));
    }

    [Fact]
    public async Task A_hard_link_to_a_symlink_is_a_second_symlink_that_nothing_is_written_through()
    {
        var dir = _scratch.TempDir("hostile");
        var target = Path.Combine(dir, "target");
        var outside = Path.Combine(dir, "outside");
        Directory.CreateDirectory(outside);
        var archive = Path.Combine(dir, "links.tar");
        await using (var file = File.Create(archive))
        await using (var tar = new TarWriter(file, TarEntryFormat.Pax))
        {
            await tar.WriteEntryAsync(new PaxTarEntry(TarEntryType.SymbolicLink, "s") { LinkName = Path.Combine(outside, "victim") });
            await tar.WriteEntryAsync(new PaxTarEntry(TarEntryType.HardLink, "h") { LinkName = "s" });
        }
        var config = await FileTrees.WriteConfigAsync(dir, Path.Combine(dir, "backups"), $$"""
            - {id: 1, name: restore-here, dbms: files, paths: [/nonexistent]}
            """);

        var restore = await Run.CliAsync("restore", "--file", archive, "--instance", "1", "--target", target, "--config", config);

        Assert.True(restore.ExitCode == 0, restore.ToString());
        Assert.Equal(Path.Combine(outside, "victim"), new FileInfo(Path.Combine(target, "h")).LinkTarget);
        Assert.Equal(Posix.LStat(Path.Combine(target, "s")).Inode, Posix.LStat(Path.Combine(target, "h")).Inode);
        Assert.Empty(Directory.EnumerateFileSystemEntries(outside));
    }

    /// <summary>
    /// A planted archive whose manifest was rewritten to match its stored bytes but that decodes to far more than the
    /// manifest's plain_bytes (a compression bomb: 64 MiB of zeros in a few KiB) stops there, not once the whole file is
    /// written (tr105: 500 MB written into the staging directory from 16 KB, then refused at the end).
    /// </summary>
    [Fact]
    public async Task An_archive_decoding_past_its_manifests_size_stops_there_and_changes_nothing()
    {
        var dir = _scratch.TempDir("bomb");
        var tree = Path.Combine(dir, "tree");
        Directory.CreateDirectory(tree);
        await File.WriteAllTextAsync(Path.Combine(tree, "small.txt"), "small\n");
        var backupDir = Path.Combine(dir, "backups");
        var config = await FileTrees.WriteConfigAsync(dir, backupDir, $"- {{id: 1, name: tree, dbms: files, paths: [{FileTrees.Yaml(tree)}]}}");
        var backup = await Run.CliAsync("backup", "--instance", "1", "--config", config);
        Assert.True(backup.ExitCode == 0, backup.ToString());
        var file = Path.Combine(backupDir, Assert.Single(Ops.DataFilesUnder(backupDir)));
        await using (var stored = File.Create(file))
        await using (var zstd = VyaBackupDb.Pipeline.Codec.Compress(VyaBackupDb.Pipeline.Compression.Zstd, stored, "", null))
        await using (var tar = new TarWriter(zstd, TarEntryFormat.Pax))
        {
            await tar.WriteEntryAsync(new PaxTarEntry(TarEntryType.RegularFile, tree.TrimStart('/') + "/small.txt") { DataStream = new MemoryStream(new byte[64 << 20]) });
        }
        var manifestPath = file + VyaBackupDb.Catalog.BackupManifest.Suffix;
        var manifest = System.Text.Json.Nodes.JsonNode.Parse(await File.ReadAllTextAsync(manifestPath))!;
        manifest["stored_bytes"] = new FileInfo(file).Length;
        manifest["stored_sha256"] = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(await File.ReadAllBytesAsync(file)));
        await File.WriteAllTextAsync(manifestPath, manifest.ToJsonString());
        var target = Path.Combine(dir, "work", "target");
        Directory.CreateDirectory(Path.GetDirectoryName(target)!);

        var restore = await Run.CliAsync("restore", "--file", file, "--instance", "1", "--target", target, "--config", config);

        Assert.True(restore.ExitCode == 4, restore.ToString());
        Assert.Contains($"the decoded archive runs past the {manifest["plain_bytes"]} bytes its manifest records", Assert.Single(Cli.ErrorLines(restore)), StringComparison.Ordinal);
        Assert.Empty(Names(Path.GetDirectoryName(target)!));
    }

    private static List<string> Names(string dir) => [.. Directory.EnumerateFileSystemEntries(dir).Select(e => Path.GetFileName(e)).Order(StringComparer.Ordinal)];

    /// <summary>Each attack after a harmless directory and file, so that extraction is under way when it comes.</summary>
    private static async Task WriteArchiveAsync(string path, string attack, string outside, string absolute)
    {
        await using var file = File.Create(path);
        await using var tar = new TarWriter(file, attack.StartsWith("gnu", StringComparison.Ordinal) ? TarEntryFormat.Gnu : TarEntryFormat.Pax);
        await tar.WriteEntryAsync(new PaxTarEntry(TarEntryType.Directory, "fine/"));
        await tar.WriteEntryAsync(FileEntry("fine/ok.txt"));
        switch (attack)
        {
            case "dot-dot":
                await tar.WriteEntryAsync(FileEntry("../planted.txt"));
                break;
            case "dot-dot-deep":
                await tar.WriteEntryAsync(FileEntry("fine/../../../outside/planted.txt"));
                break;
            case "absolute":
                await tar.WriteEntryAsync(FileEntry(absolute));
                break;
            case "symlink-then-file":
                await tar.WriteEntryAsync(new PaxTarEntry(TarEntryType.SymbolicLink, "escape") { LinkName = outside });
                await tar.WriteEntryAsync(FileEntry("escape/planted.txt"));
                break;
            case "symlink-relative-then-file":
                await tar.WriteEntryAsync(new PaxTarEntry(TarEntryType.SymbolicLink, "fine/escape") { LinkName = "../../../outside" });
                await tar.WriteEntryAsync(FileEntry("fine/escape/planted.txt"));
                break;
            case "hard-link-outside":
                await tar.WriteEntryAsync(new PaxTarEntry(TarEntryType.HardLink, "stolen") { LinkName = "../../outside/secret.txt" });
                break;
            case "hard-link-absolute":
                await tar.WriteEntryAsync(new PaxTarEntry(TarEntryType.HardLink, "stolen") { LinkName = Path.Combine(outside, "secret.txt") });
                break;
            case "hard-link-through-symlink":
                await tar.WriteEntryAsync(new PaxTarEntry(TarEntryType.SymbolicLink, "escape") { LinkName = outside });
                await tar.WriteEntryAsync(new PaxTarEntry(TarEntryType.HardLink, "stolen") { LinkName = "escape/secret.txt" });
                break;
            case "symlink-replacing-directory":
                await tar.WriteEntryAsync(new PaxTarEntry(TarEntryType.SymbolicLink, "fine") { LinkName = outside });
                await tar.WriteEntryAsync(FileEntry("fine/planted.txt"));
                break;
            case "gnu-long-name-dot-dot":
                await tar.WriteEntryAsync(new GnuTarEntry(TarEntryType.RegularFile, string.Concat(Enumerable.Repeat("../", 40)) + "planted.txt")
                {
                    DataStream = new MemoryStream(Encoding.UTF8.GetBytes("planted\n")),
                });
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(attack));
        }
        await tar.WriteEntryAsync(FileEntry("fine/after.txt"));
    }

    private static PaxTarEntry FileEntry(string name) =>
        new(TarEntryType.RegularFile, name) { DataStream = new MemoryStream(Encoding.UTF8.GetBytes("planted\n")) };
}
