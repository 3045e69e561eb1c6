using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using VyaBackupDb.Sources.Files;

namespace VyaBackupDb.Tests.Integration;

/// <summary>Directory trees for the files backup tests: one with every case, and a listing to compare trees by.</summary>
[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
public static class FileTrees
{
    public static bool IsRoot => Posix.IsRoot;

    /// <summary>
    /// Builds a tree with every case a files backup must keep: empty and read-only directories,
    /// sticky and setuid/setgid modes, empty and block-sized files, a multi-MB file, symlinks
    /// (relative, absolute, dangling, to a directory, with a long target), a file with three hard
    /// links, long and non-ASCII names, names with spaces, quotes, a newline and a leading dash,
    /// times to the nanosecond (also before 1970 and after 2038), and, as root, owners by number
    /// only and by name. Also a FIFO, which is not backed up (returned, to leave out of listings).
    /// </summary>
    public static async Task<string> BuildAllCasesAsync(string root)
    {
        Directory.CreateDirectory(root);
        await Write(root, "a.txt", "hello\n", 0x1A4, (981173106, 123456789));
        await Write(root, "empty-file", "", 0x180, (1_000_000_000, 1));
        await Write(root, "exactly-512", new string('x', 512), 0x1A4);
        await Write(root, "block-plus-one", new string('y', 513), 0x1A4);
        var big = new byte[3 * 1024 * 1024 + 17];
        new Random(42).NextBytes(big);
        await File.WriteAllBytesAsync(Path.Combine(root, "big.bin"), big);
        File.SetUnixFileMode(Path.Combine(root, "big.bin"), (UnixFileMode)0x1A0); // 0640
        await Write(root, "setuid", "#!/bin/sh\n", 0x9ED); // 4755
        await Write(root, "setgid", "#!/bin/sh\n", 0x5ED); // 2755
        await Write(root, "before-1970", "old\n", 0x1A4, (-100_000, 250_000_000));
        await Write(root, "after-2038", "future\n", 0x1A4, (4_102_444_800, 999_999_999));
        await Write(root, "epoch-plus-one", "one\n", 0x1A4, (1, 0));

        Directory.CreateDirectory(Path.Combine(root, "empty-dir"));
        File.SetUnixFileMode(Path.Combine(root, "empty-dir"), (UnixFileMode)0x1C0); // 0700
        Directory.CreateDirectory(Path.Combine(root, "sticky"));
        File.SetUnixFileMode(Path.Combine(root, "sticky"), (UnixFileMode)0x3FF); // 1777

        // Hard links: three names of one file, in different directories.
        Directory.CreateDirectory(Path.Combine(root, "sub", "deeper"));
        await Write(root, "hard-first", "shared content\n", 0x1A4, (1_500_000_000, 5));
        HardLink(Path.Combine(root, "hard-first"), Path.Combine(root, "sub", "hard-second"));
        HardLink(Path.Combine(root, "hard-first"), Path.Combine(root, "sub", "deeper", "hard-third"));

        File.CreateSymbolicLink(Path.Combine(root, "link-relative"), "a.txt");
        File.CreateSymbolicLink(Path.Combine(root, "link-absolute"), "/etc/hostname");
        File.CreateSymbolicLink(Path.Combine(root, "link-dangling"), "does/not/exist");
        File.CreateSymbolicLink(Path.Combine(root, "link-to-dir"), "sub");
        File.CreateSymbolicLink(Path.Combine(root, "sub", "link-long-target"), "../" + string.Join('/', Enumerable.Repeat("segment-of-a-long-link-target", 6)));
        SetTimesNoFollow(Path.Combine(root, "link-relative"), 1_234_567_890, 987_654_321);

        // Long names: a path over 255 bytes, a component of 200 bytes, and a long non-ASCII one.
        var longDir = Path.Combine(root, new string('d', 90), new string('e', 90), new string('f', 90));
        Directory.CreateDirectory(longDir);
        await Write(longDir, new string('n', 200), "long\n", 0x1A4);
        await Write(root, string.Concat(Enumerable.Repeat("ünïcødé-日本語-", 8)) + "🎉.txt", "unicode\n", 0x1A4);
        Directory.CreateDirectory(Path.Combine(root, "répertoire"));
        await Write(Path.Combine(root, "répertoire"), "fichier été.txt", "é\n", 0x1A4);
        await Write(root, "with space 'quote' \"double\" back\\slash", "q\n", 0x1A4);
        await Write(root, "line\nbreak", "n\n", 0x1A4);
        // A newline in a name too long for ustar: stored in a GNU long-name header, its time to the second.
        await Write(root, "long line\nbreak-" + new string('l', 100) + "-été", "nl\n", 0x1A4, (1_600_000_000, 0));
        File.CreateSymbolicLink(Path.Combine(root, "link-newline"), "target\nwith a newline-" + new string('t', 100));
        SetTimesNoFollow(Path.Combine(root, "link-newline"), 1_600_000_001, 0);
        await Write(root, "-rf", "dash\n", 0x1A4);

        // Read-only directory with content: a restore must write into it before making it 0555.
        Directory.CreateDirectory(Path.Combine(root, "read-only"));
        await Write(Path.Combine(root, "read-only"), "inside", "ro\n", 0x124); // 0444
        File.SetUnixFileMode(Path.Combine(root, "read-only"), (UnixFileMode)0x16D); // 0555

        if (IsRoot)
        {
            await Write(root, "owned-numeric", "n\n", 0x1A4);
            Posix.ChownNoFollow(Path.Combine(root, "owned-numeric"), 1234, 5678);
            await Write(root, "owned-daemon", "d\n", 0x1A4);
            Posix.ChownNoFollow(Path.Combine(root, "owned-daemon"), Posix.UserId("daemon") ?? 1, Posix.GroupId("daemon") ?? 1);
            Posix.ChownNoFollow(Path.Combine(root, "link-absolute"), 4321, 8765);
            Posix.ChownNoFollow(Path.Combine(root, "sub"), 2222, 3333);
            await Write(root, "setuid-owned", "s\n", 0x9ED);
            Posix.ChownNoFollow(Path.Combine(root, "setuid-owned"), 1234, 5678);
            File.SetUnixFileMode(Path.Combine(root, "setuid-owned"), (UnixFileMode)0x9ED); // chown cleared it
        }

        var fifo = Path.Combine(root, "a-fifo");
        var mkfifo = await Run.ProgramAsync("mkfifo", [fifo]);
        Assert.True(mkfifo.ExitCode == 0, mkfifo.ToString());

        // Directory times last: creating entries changed them.
        SetTimesNoFollow(Path.Combine(root, "sub"), 1_111_111_111, 111);
        SetTimesNoFollow(Path.Combine(root, "empty-dir"), 1_222_222_222, 0);
        return fifo;
    }

    /// <summary>
    /// One line per entry under <paramref name="root"/> (not the root itself): path, type, mode,
    /// size, link target, modification time to the nanosecond, owner and group, a SHA-256 of the
    /// content, and for hard links the first name of the same inode.
    /// </summary>
    public static List<string> Listing(string root, params string[] leaveOut)
    {
        var lines = new List<string>();
        var inodes = new Dictionary<(ulong, ulong), string>();
        foreach (var path in Walk(root).Order(StringComparer.Ordinal))
        {
            var relative = Path.GetRelativePath(root, path);
            if (leaveOut.Contains(path))
            {
                continue;
            }
            var stat = Posix.LStat(path);
            var type = stat.IsDirectory ? "dir" : stat.IsSymlink ? "symlink" : stat.IsRegular ? "file" : "other";
            var target = stat.IsSymlink ? new FileInfo(path).LinkTarget : "";
            var content = stat.IsRegular ? Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(path))) : "";
            var size = stat.IsDirectory || stat.IsSymlink ? 0 : stat.Size;
            var link = "";
            if (stat.IsRegular && stat.Links > 1)
            {
                link = inodes.TryGetValue((stat.Device, stat.Inode), out var first) ? "= " + first : "";
                inodes.TryAdd((stat.Device, stat.Inode), relative);
            }
            lines.Add(string.Create(CultureInfo.InvariantCulture,
                $"{Escape(relative)} {type} {Convert.ToString(stat.Permissions, 8)} {size} '{Escape(target ?? "")}' "
                + $"{stat.MtimeSeconds}.{stat.MtimeNanos:D9} {stat.Uid}:{stat.Gid} {content} {Escape(link)}"));
        }
        return lines;
    }

    private static IEnumerable<string> Walk(string dir)
    {
        foreach (var entry in Directory.EnumerateFileSystemEntries(dir))
        {
            yield return entry;
            if (Posix.LStat(entry).IsDirectory)
            {
                foreach (var below in Walk(entry))
                {
                    yield return below;
                }
            }
        }
    }

    private static string Escape(string text) => text.Replace("\n", "\\n", StringComparison.Ordinal);

    private static async Task Write(string dir, string name, string content, int mode, (long Seconds, uint Nanos)? time = null)
    {
        var path = Path.Combine(dir, name);
        await File.WriteAllTextAsync(path, content, new UTF8Encoding(false));
        File.SetUnixFileMode(path, (UnixFileMode)mode);
        if (time is { } t)
        {
            SetTimesNoFollow(path, t.Seconds, t.Nanos);
        }
    }

    /// <summary>link(2) by paths: a symlink as <paramref name="existing"/> is linked itself.</summary>
    public static void HardLink(string existing, string path) =>
        Posix.HardLinkAt(Posix.CurrentDirectory, Posix.NameBytes(existing), Posix.CurrentDirectory, Posix.NameBytes(path), path);

    /// <summary>A path's modification and access time, on a symlink the link itself.</summary>
    public static void SetTimesNoFollow(string path, long seconds, uint nanos) =>
        Posix.SetTimesAtNoFollow(Posix.CurrentDirectory, Posix.NameBytes(path), seconds, nanos, path);

    /// <summary>A chain of <paramref name="levels"/> directories 'd' under <paramref name="root"/>, a file 'leaf' ("deep\n") at its end.</summary>
    public static void BuildChain(string root, int levels)
    {
        Directory.CreateDirectory(root);
        var name = Posix.NameBytes("d");
        var fd = Posix.OpenDirectoryFdAt(Posix.CurrentDirectory, Posix.NameBytes(root), root);
        for (var level = 0; level < levels; level++)
        {
            Posix.MakeDirectoryAt(fd, name, "d");
            var next = Posix.OpenDirectoryFdAt(fd, name, "d");
            Posix.CloseFd(fd);
            fd = next;
        }
        using (var leaf = Posix.CreateFileAt(fd, Posix.NameBytes("leaf"), "leaf"))
        {
            RandomAccess.Write(leaf, "deep\n"u8, 0);
        }
        Posix.CloseFd(fd);
    }

    /// <summary>
    /// Builds, under <paramref name="root"/>, a tree deeper than PATH_MAX (the kernel's 4096 bytes
    /// for one path): 30 nested directories of 204-byte names (over 6000 bytes), a file 'leaf'
    /// (0640, a time to the nanosecond), a hard link 'hard' to it and a symlink 'link' to it at the
    /// bottom, and a read-only (0555) directory half way. Built from inside with bash (cd one
    /// name at a time); .NET's path-based calls cannot reach that deep.
    /// </summary>
    public static async Task BuildDeeperThanPathMaxAsync(string root)
    {
        Directory.CreateDirectory(root);
        var build = await Run.ProgramAsync("bash", ["-c", """
            set -e
            cd "$1"
            y=$(printf 'y%.0s' $(seq 200))
            for i in $(seq -w 0 29); do mkdir "d${i}_$y"; cd "d${i}_$y"; done
            printf 'deep\n' > leaf
            chmod 640 leaf
            touch -d @1500000000.123456789 leaf
            ln leaf hard
            ln -s leaf link
            touch -h -d @1400000000.5 link
            for i in $(seq 15); do cd -P ..; done
            touch -d @1300000000.25 .
            chmod 555 .
            """, "bash", root]);
        Assert.True(build.ExitCode == 0, build.ToString());
    }

    /// <summary>
    /// <see cref="Listing"/> for trees deeper than PATH_MAX (GNU find walks by descriptors): per
    /// entry its path, type, mode, size, link target, time to the nanosecond, link count and
    /// owner; then the SHA-256 of each file's content.
    /// </summary>
    public static async Task<string> DeepListingAsync(string root)
    {
        var list = await Run.ProgramAsync("bash", ["-c", """
            set -e -o pipefail
            cd "$1"
            find . -printf '%P %y %m %s %l %T@ %n %U:%G\n' | LC_ALL=C sort
            find . -type f -execdir sha256sum {} + | LC_ALL=C sort
            """, "bash", root]);
        Assert.True(list.ExitCode == 0, list.ToString());
        return list.Stdout;
    }

    /// <summary>Removes a tree Directory.Delete cannot reach the bottom of (rm works through descriptors).</summary>
    public static async Task RemoveDeepAsync(string root)
    {
        var rm = await Run.ProgramAsync("rm", ["-rf", root]);
        Assert.True(rm.ExitCode == 0, rm.ToString());
    }

    /// <summary>A files instance config for the CLI; returns its path.</summary>
    public static async Task<string> WriteConfigAsync(string dir, string backupDir, string instances, string compression = "zstd", string extra = "")
    {
        var path = Path.Combine(dir, "config.yaml");
        await File.WriteAllTextAsync(path, $"""
            backup_dir: '{backupDir}'
            compression: {compression}
            timeout_seconds: 300
            {extra}
            instances:
            {instances}
            """);
        return path;
    }

    /// <summary>A YAML single-quoted scalar.</summary>
    public static string Yaml(string value) => "'" + value.Replace("'", "''", StringComparison.Ordinal) + "'";
}
