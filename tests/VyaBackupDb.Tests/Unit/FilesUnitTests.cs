using System.Formats.Tar;
using System.Text;
using VyaBackupDb.Catalog;
using VyaBackupDb.Config;
using VyaBackupDb.Errors;
using VyaBackupDb.Pipeline;
using VyaBackupDb.Sources.Files;

namespace VyaBackupDb.Tests.Unit;

/// <summary>The pure parts of files backups: path patterns, config, names, the tar writer's headers, entry names and times.</summary>
public sealed class FilesUnitTests
{
    private const string ConfigPath = "/etc/vya/config.yaml";

    [Theory]
    [InlineData("*.log", "a.log", true)]
    [InlineData("*.log", "logs/a.log", false)]
    [InlineData("**/*.log", "a.log", true)]
    [InlineData("**/*.log", "x/y/a.log", true)]
    [InlineData("logs/**", "logs/a/b", true)]
    [InlineData("logs/**", "logs", true)]
    [InlineData("logs/**", "logsx/a", false)]
    [InlineData("logs", "logs", true)]
    [InlineData("logs", "logs/a", false)]
    [InlineData("a/*/c", "a/b/c", true)]
    [InlineData("a/*/c", "a/b/x/c", false)]
    [InlineData("a/**/c", "a/c", true)]
    [InlineData("a/**/c", "a/b/x/c", true)]
    [InlineData("file?.txt", "file1.txt", true)]
    [InlineData("file?.txt", "file10.txt", false)]
    [InlineData("[ab]*.conf", "app.conf", true)]
    [InlineData("[!ab]*.conf", "app.conf", false)]
    [InlineData("[a-c]x", "bx", true)]
    [InlineData("\\*.txt", "*.txt", true)]
    [InlineData("\\*.txt", "a.txt", false)]
    [InlineData("**", "anything/at/all", true)]
    [InlineData("*", "", false)]
    public void Path_patterns_match_whole_relative_paths(string pattern, string path, bool matches) =>
        Assert.Equal(matches, new PathGlob(pattern).Matches(path.Split('/', StringSplitOptions.RemoveEmptyEntries)));

    [Theory]
    [InlineData("logs/**", "logs", true)]
    [InlineData("logs/**", "data", false)]
    [InlineData("a/b/*.txt", "a", true)]
    [InlineData("a/b/*.txt", "a/b", true)]
    [InlineData("a/b/*.txt", "a/c", false)]
    [InlineData("**/x", "deep/down", true)]
    [InlineData("logs", "logs", false)]
    public void A_directory_is_walked_only_when_something_below_it_could_match(string pattern, string directory, bool walk) =>
        Assert.Equal(walk, new PathGlob(pattern).CouldMatchBelow(directory.Split('/')));

    [Fact]
    public void A_files_instance_reads_paths_patterns_and_its_own_keys()
    {
        var config = ConfigLoader.Parse("""
            backup_dir: /var/backups
            encryption: {passphrase_env: BACKUP_PASSPHRASE}
            instances:
              - id: 4
                dbms: files
                paths: [/srv/app/, /etc//nginx]
                include: ["conf/**"]
                exclude: ["**/*.tmp"]
                skip_unreadable: true
                encrypt: true
                retention: {keep_last: 2}
              - id: 5
                dbms: files
                paths: /srv/other
            """, ConfigPath);

        var files = config.GetInstance(4);
        Assert.Equal((Dbms.Files, "files-4", true, true), (files.Dbms, files.Name, files.SkipUnreadable, files.Encrypt));
        Assert.Equal(["/srv/app", "/etc/nginx"], files.Paths);
        Assert.Equal(["conf/**"], files.Include);
        Assert.Equal(["**/*.tmp"], files.Exclude);
        Assert.Equal(2, files.Retention!.KeepLast);
        var other = config.GetInstance(5);
        Assert.Equal(["/srv/other"], other.Paths);
        Assert.Empty(other.Include); // everything
    }

    [Theory]
    [InlineData("paths: [/srv]\n    host: db1", "instances[0].host: unknown key")]
    [InlineData("include: [x]", "instances[0].paths: is required")]
    [InlineData("paths: [srv/app]", "'srv/app' is not an absolute path")]
    [InlineData("paths: [/srv/../etc]", "'/srv/../etc' is not an absolute path")]
    [InlineData("paths: [/srv, /srv/app]", "'/srv/app' and '/srv' overlap")]
    [InlineData("paths: [/srv, /srv/]", "'/srv' is listed twice")]
    [InlineData("paths: []", "instances[0].paths: is empty")]
    [InlineData("paths: [/srv]\n    exclude: [/srv/cache]", "instances[0].exclude: '/srv/cache' must be relative")]
    [InlineData("paths: [/srv]\n    skip_unreadable: maybe", "instances[0].skip_unreadable: 'maybe' is not true or false")]
    public void A_files_instance_config_error_names_the_file_the_line_and_the_key(string keys, string expected)
    {
        var e = Assert.Throws<ConfigException>(() => ConfigLoader.Parse($"""
            backup_dir: /b
            instances:
              - id: 1
                dbms: files
                {keys}
            """, ConfigPath));
        Assert.StartsWith(ConfigPath + ":", e.Message, StringComparison.Ordinal);
        Assert.Contains(expected, e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("20260113_155440_files_etc.tar.zst", Compression.Zstd)]
    [InlineData("20260113_155440_files_etc.tar.gz", Compression.Gzip)]
    [InlineData("20260113_155440_files_etc.tar", Compression.None)]
    [InlineData("20260113_155440_files_etc.tar.zip", Compression.Zip)]
    public void A_files_backup_name_round_trips(string fileName, Compression compression)
    {
        var name = BackupName.TryParse(fileName)!;
        Assert.Equal((Dbms.Files, "etc", compression), (name.Dbms, name.Database, name.Compression));
        Assert.Equal(fileName, name.FileName);
        Assert.Equal("20260113_155440_files_etc.tar", name.PlainFileName);
        Assert.Equal(fileName + ".age", (name with { Encrypted = true }).FileName);
        Assert.Equal(compression, CompressionNames.FromFileName(fileName));
    }

    [Theory]
    [InlineData("20260113_155440_files_etc.sql.zst")]
    [InlineData("backup.tar.gz")]
    [InlineData("etc_20260113_155440.tar.gz")]
    public void A_files_backup_is_a_tar_and_a_tar_without_a_dbms_is_no_backup(string fileName) => Assert.Null(BackupName.TryParse(fileName));

    [Fact]
    public void Headers_hold_what_ustar_cannot_in_pax_records_that_TarReader_reads_back()
    {
        var longName = "srv/" + string.Join('/', Enumerable.Repeat("a-rather-long-directory-name", 8)) + "/ünïcødé 🎉.txt";
        var longTarget = string.Concat(Enumerable.Repeat("../", 50)) + "target";
        var owner = new string('u', 40);
        using var archive = new MemoryStream();
        using (var tar = new TarArchiveWriter(archive))
        {
            var meta = new TarMeta(0x9ED, 3_000_000, 4_000_000, owner, "grüppe", -100_000, 250_000_000);
            var content = Encoding.UTF8.GetBytes("content\n");
            tar.WriteFile(longName, meta, content.Length, (buffer, offset) =>
            {
                var n = Math.Min(buffer.Length, content.Length - (int)offset);
                content.AsSpan((int)offset, n).CopyTo(buffer.Span);
                return n;
            }, CancellationToken.None);
            tar.WriteSymlink("srv/link", longTarget, meta with { MtimeSeconds = 1_700_000_000, MtimeNanos = 0 });
            tar.WriteDirectory("srv/dir", meta with { UserName = null, GroupName = null });
            tar.Finish();
        }
        Assert.Equal(0, archive.Length % (20 * 512));

        archive.Position = 0;
        using var reader = new TarReader(archive);
        var file = Assert.IsType<PaxTarEntry>(reader.GetNextEntry());
        Assert.Equal((longName, 3_000_000, 4_000_000, owner, "grüppe"), (file.Name, file.Uid, file.Gid, file.UserName, file.GroupName));
        Assert.Equal(UnixFileMode.SetUser | (UnixFileMode)0x1ED, file.Mode);
        Assert.Equal((-100_000L, 250_000_000u), ArchiveEntries.ModificationTime(file));
        Assert.Equal("content\n", new StreamReader(file.DataStream!).ReadToEnd());
        var link = reader.GetNextEntry()!;
        Assert.Equal((TarEntryType.SymbolicLink, longTarget), (link.EntryType, link.LinkName));
        Assert.Equal((1_700_000_000L, 0u), ArchiveEntries.ModificationTime(link));
        var dir = reader.GetNextEntry()!;
        Assert.Equal((TarEntryType.Directory, "srv/dir/"), (dir.EntryType, dir.Name));
        Assert.Null(reader.GetNextEntry());
    }

    [Fact]
    public void A_long_name_holding_a_newline_is_written_in_GNU_long_name_headers_that_TarReader_reads_back()
    {
        // TarReader refuses a pax record whose value holds a newline (the whole archive, not just the entry).
        var name = "dir/line\nbreak-" + new string('x', 100) + "-été";
        var target = "target\n" + new string('t', 120);
        using var archive = new MemoryStream();
        using (var tar = new TarArchiveWriter(archive))
        {
            var meta = new TarMeta(0x1A4, 3_000_000, 4_000_000, "owner", "group", -100_000, 250_000_000);
            tar.WriteFile(name, meta, 2, (buffer, offset) =>
            {
                "ok"u8[(int)offset..].CopyTo(buffer.Span);
                return 2 - (int)offset;
            }, CancellationToken.None);
            tar.WriteSymlink(name + "-link", target, meta with { MtimeSeconds = 8_600_000_000 });
            tar.Finish();
        }

        archive.Position = 0;
        using var reader = new TarReader(archive);
        var file = Assert.IsType<GnuTarEntry>(reader.GetNextEntry());
        Assert.Equal((name, 3_000_000, 4_000_000, "owner"), (file.Name, file.Uid, file.Gid, file.UserName));
        Assert.Equal((-100_000L, 0u), ArchiveEntries.ModificationTime(file)); // the nanoseconds are not kept
        Assert.Equal("ok", new StreamReader(file.DataStream!).ReadToEnd());
        var link = reader.GetNextEntry()!;
        Assert.Equal((TarEntryType.SymbolicLink, name + "-link", target), (link.EntryType, link.Name, link.LinkName));
        Assert.Equal((8_600_000_000L, 0u), ArchiveEntries.ModificationTime(link));
        Assert.Null(reader.GetNextEntry());
    }

    [Fact]
    public void Checking_a_planted_name_of_many_levels_takes_memory_in_proportion_to_its_length()
    {
        // 30,000 levels in 60 KB: a table of every prefix took 1.8 GB (a 1 MiB name, 500,000 levels, ran the machine out).
        var name = string.Concat(Enumerable.Repeat("a/", 30_000)) + "f";
        var tree = new ArchiveTree();
        var before = GC.GetAllocatedBytesForCurrentThread();

        Assert.Equal(name, tree.Admit(new PaxTarEntry(TarEntryType.RegularFile, name), EntryKind.File));
        var error = Assert.Throws<RefusedEntryException>(() => tree.Admit(new PaxTarEntry(TarEntryType.RegularFile, name + "/g"), EntryKind.File));

        Assert.Contains("which is not a directory", error.Message, StringComparison.Ordinal);
        Assert.InRange(GC.GetAllocatedBytesForCurrentThread() - before, 0, 50L << 20);
    }

    [Fact]
    public void An_archive_whose_names_imply_far_more_directories_than_it_lists_is_refused()
    {
        // A tester's 187 KB archive: 100,000 empty files, each under a 200-level chain of its own (6 GB to check).
        var chain = string.Concat(Enumerable.Repeat("s/", 200));
        var tree = new ArchiveTree();
        var admitted = 0;

        var error = Assert.Throws<RefusedEntryException>(() =>
        {
            for (; admitted < 100_000; admitted++)
            {
                tree.Admit(new PaxTarEntry(TarEntryType.RegularFile, $"e{admitted}/{chain}f"), EntryKind.File);
            }
        });

        Assert.Contains("imply over 100000 more directories than it lists entries", error.Message, StringComparison.Ordinal);
        Assert.InRange(admitted, 400, 600);
    }

    [Fact]
    public void A_file_that_ends_early_is_padded_to_its_header_size()
    {
        using var archive = new MemoryStream();
        long read;
        using (var tar = new TarArchiveWriter(archive))
        {
            read = tar.WriteFile("f", new TarMeta(0x1A4, 0, 0, null, null, 0, 0), 1000, (buffer, offset) =>
            {
                var n = (int)Math.Min(buffer.Length, 300 - offset);
                buffer.Span[..n].Fill((byte)'x');
                return n;
            }, CancellationToken.None);
            tar.WriteDirectory("after", new TarMeta(0x1ED, 0, 0, null, null, 0, 0));
            tar.Finish();
        }
        Assert.Equal(300, read);
        archive.Position = 0;
        using var reader = new TarReader(archive);
        var file = reader.GetNextEntry()!;
        var data = new byte[1000];
        file.DataStream!.ReadExactly(data);
        Assert.Equal(new string('x', 300) + new string('\0', 700), Encoding.ASCII.GetString(data));
        Assert.Equal("after/", reader.GetNextEntry()!.Name);
    }

    [Theory]
    [InlineData("srv/app/x", "srv/app/x")]
    [InlineData("./srv//app/./x", "srv/app/x")]
    [InlineData("./", "")]
    public void Entry_names_are_made_relative(string name, string relative) => Assert.Equal(relative, ArchiveEntries.RelativePath(name));

    [Theory]
    [InlineData("/etc/passwd")]
    [InlineData("../x")]
    [InlineData("a/../../x")]
    [InlineData("a/..")]
    [InlineData("")]
    public void Entry_names_that_could_leave_the_target_are_refused(string name) =>
        Assert.Throws<RefusedEntryException>(() => ArchiveEntries.RelativePath(name));

    [Theory]
    [InlineData("1700000000", 1_700_000_000L, 0u)]
    [InlineData("1700000000.5", 1_700_000_000L, 500_000_000u)]
    [InlineData("1700000000.123456789123", 1_700_000_000L, 123_456_789u)]
    [InlineData("-1.25", -2L, 750_000_000u)]
    [InlineData("-100", -100L, 0u)]
    public void Pax_times_parse_to_the_nanosecond(string text, long seconds, uint nanos)
    {
        Assert.True(ArchiveEntries.TryParsePaxTime(text, out var time));
        Assert.Equal((seconds, nanos), time);
    }

    [Fact]
    public void Entry_counts_name_what_differs_from_the_manifest()
    {
        var counts = new EntryCounts { Files = 3, Directories = 2, Symlinks = 1, HardLinks = 0, TotalBytes = 10 };
        var recorded = new FilesSummary { Paths = ["/srv"], Files = 4, Directories = 2, Symlinks = 1, HardLinks = 0, TotalBytes = 10 };
        Assert.Equal(["3 files in the archive, the manifest recorded 4"], counts.CompareWith(recorded));
    }
}
