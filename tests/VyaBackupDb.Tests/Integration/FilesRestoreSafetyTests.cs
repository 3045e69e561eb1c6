using System.Formats.Tar;
using System.Text;

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
}
