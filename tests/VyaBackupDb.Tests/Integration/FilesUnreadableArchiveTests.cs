using System.Text;

namespace VyaBackupDb.Tests.Integration;

/// <summary>
/// Archives whose headers System.Formats.Tar and the 1 MiB metadata limit could read differently,
/// or that make the tar reader throw what a caller does not expect (an overflow, an entry kind it
/// does not read). Restore and verify each say it in one line with their documented exit codes,
/// leave no staging directory, and never read a header over the limit into memory.
/// </summary>
[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
public sealed class FilesUnreadableArchiveTests : IAsyncLifetime
{
    private readonly Scratch _scratch = new();

    public Task InitializeAsync() => _scratch.InitializeAsync();

    public Task DisposeAsync() => _scratch.DisposeAsync();

    [Theory]
    // The size "\0" + "00000004000": the reader stops at the NUL (0); read as 2048 the limit skipped the next header, a 2 MiB pax one.
    [InlineData("nul-before-size", "over the limit of 1 MiB")]
    [InlineData("pax-size-long-max", "truncated")]
    [InlineData("base-256-mode", "number out of range or malformed")]
    [InlineData("old-gnu-sparse", "sparse files are not supported")]
    [InlineData("pax-gnu-sparse", "sparse files are not supported")]
    // As vya-backupdb wrote a long name holding a newline before 2026-11-28 (and GNU tar --format=posix does).
    // GNU tar takes the pax header's name, System.Formats.Tar the long name (and the pax header for an entry).
    [InlineData("gnu-long-name-then-pax", "is followed by a pax header, which GNU tar and this restore read as different names")]
    [InlineData("pax-newline", "a pax record's value holds a newline ('path'), which this tar reader cannot read; GNU tar can")]
    public async Task An_archive_the_tar_reader_cannot_read_fails_in_one_line_and_leaves_nothing(string archiveKind, string said)
    {
        var dir = _scratch.TempDir("unreadable");
        var archive = Path.Combine(dir, "20260101_000000_files_restore-here.tar");
        await File.WriteAllBytesAsync(archive, Archive(archiveKind));

        var (restore, verify, work) = await RestoreAndVerifyAsync(dir, archive);

        Assert.True(restore.ExitCode == 1, restore.ToString());
        var error = Assert.Single(Cli.ErrorLines(restore));
        Assert.Contains(said, error, StringComparison.Ordinal);
        Assert.DoesNotContain("Exception", restore.Stderr, StringComparison.Ordinal);
        Assert.Empty(Directory.EnumerateFileSystemEntries(work)); // no target, no staging directory
        Assert.True(verify.ExitCode == 4, verify.ToString());
        Assert.Contains(said, verify.Stdout + verify.Stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("Exception", verify.Stdout + verify.Stderr, StringComparison.Ordinal);
    }

    [SkippableFact]
    public async Task A_gnu_tar_sparse_archive_is_said_to_be_unsupported()
    {
        var dir = _scratch.TempDir("sparse");
        var source = Path.Combine(dir, "source");
        Directory.CreateDirectory(source);
        await using (var holes = File.Create(Path.Combine(source, "holes")))
        {
            holes.SetLength(10 << 20);
            holes.Seek(0, SeekOrigin.End);
            holes.Write("data\n"u8);
        }
        var archive = Path.Combine(dir, "20260101_000000_files_restore-here.tar");
        var tar = await Run.ProgramAsync("tar", ["--format=gnu", "--sparse", "-cf", archive, "-C", source, "holes"]);
        Skip.If(tar.ExitCode != 0, $"no GNU tar here: {tar}");

        var (restore, verify, work) = await RestoreAndVerifyAsync(dir, archive);

        Assert.True(restore.ExitCode == 1, restore.ToString());
        Assert.Contains("'holes' is a GNU sparse file", Assert.Single(Cli.ErrorLines(restore)), StringComparison.Ordinal);
        Assert.Empty(Directory.EnumerateFileSystemEntries(work));
        Assert.True(verify.ExitCode == 4, verify.ToString());
        Assert.Contains("sparse files are not supported", verify.Stdout, StringComparison.Ordinal);
    }

    private async Task<(ProcessResult Restore, ProcessResult Verify, string Work)> RestoreAndVerifyAsync(string dir, string archive)
    {
        var work = Path.Combine(dir, "work");
        Directory.CreateDirectory(work);
        var config = await FileTrees.WriteConfigAsync(dir, Path.Combine(dir, "backups"), """
            - {id: 1, name: restore-here, dbms: files, paths: [/nonexistent]}
            """);
        var restore = await Run.CliAsync("restore", "--file", archive, "--instance", "1", "--target", Path.Combine(work, "target"), "--config", config);
        var verify = await Run.CliAsync("verify", "--file", archive, "--config", config);
        return (restore, verify, work);
    }

    /// <summary>A tar written header by header, so that its fields can hold what no tar writer writes.</summary>
    private static byte[] Archive(string kind)
    {
        var tar = new MemoryStream();
        switch (kind)
        {
            case "nul-before-size":
                tar.Write(Header("a", '0', size: "\0" + "00000004000"));
                Entry(tar, Header("PaxHeaders/f", 'x', 2 << 20), PaxRecord("comment", new string('z', (2 << 20) - 17))); // one record of 2 MiB
                Entry(tar, Header("f", '0', 1), "x");
                break;
            case "pax-size-long-max":
                var record = PaxRecord("size", long.MaxValue.ToString(System.Globalization.CultureInfo.InvariantCulture));
                Entry(tar, Header("PaxHeaders/f", 'x', record.Length), record);
                tar.Write(Header("f", '0', 0));
                break;
            case "base-256-mode":
                tar.Write(Header("f", '0', 0, mode: [0x80, 1, 0, 0, 0, 0, 0, 0])); // 2^56: over an int
                break;
            case "old-gnu-sparse":
                // After a plain GNU entry: System.Formats.Tar then reads an 'S' as an entry whose content is the packed data.
                Entry(tar, Header("f", '0', 1, gnu: true), "x");
                tar.Write(Header("s", 'S', 0, gnu: true));
                break;
            case "pax-gnu-sparse":
                var sparse = PaxRecord("GNU.sparse.major", "1") + PaxRecord("GNU.sparse.minor", "0") + PaxRecord("GNU.sparse.realsize", "4096");
                Entry(tar, Header("PaxHeaders/s", 'x', sparse.Length), sparse);
                Entry(tar, Header("GNUSparseFile.0/s", '0', 1), "x");
                break;
            case "gnu-long-name-then-pax":
                var longName = new string('l', 120) + "\0";
                Entry(tar, Header("././@LongLink", 'L', longName.Length, gnu: true), longName);
                var pax = PaxRecord("path", "from_pax_header");
                Entry(tar, Header("PaxHeaders/plain", 'x', pax.Length), pax);
                Entry(tar, Header("plain", '0', 1), "x");
                break;
            case "pax-newline":
                var path = PaxRecord("path", "line\nbreak-" + new string('x', 100));
                Entry(tar, Header("PaxHeaders/line_break", 'x', path.Length), path);
                Entry(tar, Header("line_break", '0', 1), "x");
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(kind));
        }
        tar.Write(new byte[1024]);
        return tar.ToArray();
    }

    private static void Entry(MemoryStream tar, byte[] header, string data)
    {
        tar.Write(header);
        tar.Write(Encoding.ASCII.GetBytes(data));
        tar.Write(new byte[(512 - (data.Length % 512)) % 512]);
    }

    private static byte[] Header(string name, char type, long size, byte[]? mode = null, bool gnu = false) =>
        Header(name, type, Convert.ToString(size, 8).PadLeft(11, '0') + "\0", mode, gnu);

    private static byte[] Header(string name, char type, string size, byte[]? mode = null, bool gnu = false)
    {
        var header = new byte[512];
        Encoding.ASCII.GetBytes(name).CopyTo(header, 0);
        (mode ?? "0000644\0"u8.ToArray()).CopyTo(header, 100);
        "0000000\0"u8.CopyTo(header.AsSpan(108));
        "0000000\0"u8.CopyTo(header.AsSpan(116));
        Encoding.ASCII.GetBytes(size).CopyTo(header, 124);
        "14530000000\0"u8.CopyTo(header.AsSpan(136));
        header[156] = (byte)type;
        (gnu ? "ustar  \0"u8 : "ustar\000"u8).CopyTo(header.AsSpan(257));
        "        "u8.CopyTo(header.AsSpan(148));
        var sum = header.Sum(b => b);
        Encoding.ASCII.GetBytes(Convert.ToString(sum, 8).PadLeft(6, '0') + "\0 ").CopyTo(header, 148);
        return header;
    }

    /// <summary>"LEN key=value\n", LEN counting itself.</summary>
    private static string PaxRecord(string key, string value)
    {
        var body = $" {key}={value}\n";
        var length = body.Length + 1;
        while ((length.ToString(System.Globalization.CultureInfo.InvariantCulture) + body).Length != length)
        {
            length++;
        }
        return length.ToString(System.Globalization.CultureInfo.InvariantCulture) + body;
    }
}
