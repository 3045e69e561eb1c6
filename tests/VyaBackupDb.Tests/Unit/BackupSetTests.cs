using System.Diagnostics;
using System.Formats.Tar;
using System.Text;
using VyaBackupDb.Catalog;
using VyaBackupDb.Sources.Sets;

namespace VyaBackupDb.Tests.Unit;

public sealed class BackupSetTests
{
    private static async Task<(byte[] Bytes, IReadOnlyList<SetEntry> Entries)> WriteSetAsync(int chunks, string? keys = null)
    {
        using var output = new MemoryStream();
        using (var set = new BackupSetWriter(output, TimeProvider.System))
        {
            await WriteTextAsync(set.WriteSchemaAsync, "CREATE TABLE t (id int);\n");
            if (keys is not null)
            {
                await WriteTextAsync(set.WriteKeysAsync, keys);
            }
            // Producers on several threads: each chunk lands whole, numbered in the order it got in.
            await Parallel.ForAsync(0, chunks, async (i, ct) =>
                await set.WriteDataAsync("t", rows: i + 1, Encoding.UTF8.GetBytes($"INSERT INTO t VALUES ({i});\n"), ct));
            await WriteTextAsync(set.WritePostAsync, "CREATE INDEX i ON t (id);\n");
            return (output.ToArray(), set.Entries);
        }
    }

    private static Task WriteTextAsync(Func<Stream, long, CancellationToken, Task> write, string text)
    {
        var bytes = Encoding.UTF8.GetBytes(text);
        return write(new MemoryStream(bytes), bytes.Length, CancellationToken.None);
    }

    private static async Task<List<(string Name, SetEntryKind Kind, string Text)>> ReadSetAsync(byte[] bytes, IReadOnlyList<SetEntry>? expected)
    {
        var read = new List<(string, SetEntryKind, string)>();
        await using var set = new BackupSetReader(new MemoryStream(bytes), expected);
        while (await set.NextAsync(CancellationToken.None) is { } entry)
        {
            using var reader = new StreamReader(entry.Content, leaveOpen: true);
            read.Add((entry.Name, entry.Kind, await reader.ReadToEndAsync()));
        }
        await set.CheckEndAsync(CancellationToken.None);
        return read;
    }

    [Fact]
    public async Task A_set_round_trips_in_order_with_its_digests_and_rows()
    {
        var (bytes, entries) = await WriteSetAsync(chunks: 20);

        Assert.Equal(22, entries.Count);
        Assert.Equal(["schema.sql", .. Enumerable.Range(1, 20).Select(BackupSet.DataEntry), "post.sql"], entries.Select(e => e.Name));
        Assert.Equal(Enumerable.Range(1, 20).Sum(), entries.Sum(e => e.Rows ?? 0));
        var read = await ReadSetAsync(bytes, entries);
        Assert.Equal(entries.Select(e => e.Name), read.Select(r => r.Name));
        Assert.Equal("CREATE INDEX i ON t (id);\n", read[^1].Text);
        Assert.Equal(20, read.Count(r => r.Kind == SetEntryKind.Data && r.Text.StartsWith("INSERT INTO t VALUES (", StringComparison.Ordinal)));
    }

    [Fact]
    public async Task Keys_come_right_after_the_schema_and_the_chunks_are_still_numbered_from_one()
    {
        var (bytes, entries) = await WriteSetAsync(chunks: 3, keys: "ALTER TABLE t ADD PRIMARY KEY (id);\n");

        Assert.Equal(["schema.sql", "keys.sql", "data/000001.sql", "data/000002.sql", "data/000003.sql", "post.sql"], entries.Select(e => e.Name));
        var read = await ReadSetAsync(bytes, entries);
        Assert.Equal((SetEntryKind.Keys, "ALTER TABLE t ADD PRIMARY KEY (id);\n"), (read[1].Kind, read[1].Text));
    }

    [Fact]
    public async Task Standard_tar_extracts_a_set_and_its_entries_concatenate_to_a_dump()
    {
        var (bytes, _) = await WriteSetAsync(chunks: 3);
        var dir = Directory.CreateTempSubdirectory("vya-set-");
        try
        {
            var file = Path.Combine(dir.FullName, "set.tar");
            await File.WriteAllBytesAsync(file, bytes);
            using var tar = Process.Start(new ProcessStartInfo("tar", ["-x", "-f", file, "-C", dir.FullName]))!;
            await tar.WaitForExitAsync();
            Assert.Equal(0, tar.ExitCode);
            var data = Directory.GetFiles(Path.Combine(dir.FullName, "data")).Order(StringComparer.Ordinal).Select(File.ReadAllText);
            Assert.Equal(3, data.Count(text => text.StartsWith("INSERT INTO t VALUES", StringComparison.Ordinal)));
            Assert.StartsWith("CREATE TABLE", await File.ReadAllTextAsync(Path.Combine(dir.FullName, "schema.sql")));
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    [Fact]
    public async Task A_changed_byte_in_an_entry_is_named()
    {
        var (bytes, entries) = await WriteSetAsync(chunks: 3);
        // The chunks were written by concurrent producers: which entry holds row 1 is the order they got in.
        var changed = (await ReadSetAsync(bytes, entries)).Single(e => e.Text.Contains("VALUES (1)", StringComparison.Ordinal)).Name;
        var at = Encoding.ASCII.GetString(bytes).IndexOf("VALUES (1)", StringComparison.Ordinal);
        bytes[at + 8] = (byte)'7';

        var e = await Assert.ThrowsAsync<InvalidDataException>(() => ReadSetAsync(bytes, entries));
        Assert.Contains(changed, e.Message);
        Assert.Contains("digest", e.Message);
    }

    [Fact]
    public async Task A_set_cut_short_is_refused_even_without_a_manifest()
    {
        var (bytes, entries) = await WriteSetAsync(chunks: 3);
        // Cut right after the last data chunk: every entry read is whole, post.sql is missing.
        var cut = bytes.AsSpan(0, Encoding.ASCII.GetString(bytes).IndexOf("post.sql", StringComparison.Ordinal)).ToArray();

        var e = await Assert.ThrowsAsync<InvalidDataException>(() => ReadSetAsync(cut, null));
        Assert.Contains("truncated", e.Message);
        await Assert.ThrowsAsync<InvalidDataException>(() => ReadSetAsync(cut, entries));
    }

    [Theory]
    [InlineData("../etc/passwd")]
    [InlineData("data/000001.sh")]
    [InlineData("data/1.sql")]
    [InlineData("/schema.sql")]
    public async Task Entries_with_other_names_are_refused(string name)
    {
        using var output = new MemoryStream();
        await using (var tar = new TarWriter(output, TarEntryFormat.Pax, leaveOpen: true))
        {
            await tar.WriteEntryAsync(new PaxTarEntry(TarEntryType.RegularFile, "schema.sql") { DataStream = new MemoryStream("x"u8.ToArray()) });
            await tar.WriteEntryAsync(new PaxTarEntry(TarEntryType.RegularFile, name) { DataStream = new MemoryStream("x"u8.ToArray()) });
        }

        var e = await Assert.ThrowsAsync<InvalidDataException>(() => ReadSetAsync(output.ToArray(), null));
        Assert.Contains("unexpected entry", e.Message);
    }

    [Fact]
    public async Task Chunks_out_of_order_or_after_post_are_refused()
    {
        async Task<byte[]> TarOf(params string[] names)
        {
            using var output = new MemoryStream();
            await using (var tar = new TarWriter(output, TarEntryFormat.Pax, leaveOpen: true))
            {
                foreach (var name in names)
                {
                    await tar.WriteEntryAsync(new PaxTarEntry(TarEntryType.RegularFile, name) { DataStream = new MemoryStream("x"u8.ToArray()) });
                }
            }
            return output.ToArray();
        }

        Assert.Contains("out of order", (await Assert.ThrowsAsync<InvalidDataException>(async () =>
            await ReadSetAsync(await TarOf("schema.sql", "data/000002.sql", "post.sql"), null))).Message);
        Assert.Contains("out of order", (await Assert.ThrowsAsync<InvalidDataException>(async () =>
            await ReadSetAsync(await TarOf("data/000001.sql", "post.sql"), null))).Message);
        Assert.Contains("after post.sql", (await Assert.ThrowsAsync<InvalidDataException>(async () =>
            await ReadSetAsync(await TarOf("schema.sql", "post.sql", "data/000001.sql"), null))).Message);
        Assert.Contains("'keys.sql' is out of order", (await Assert.ThrowsAsync<InvalidDataException>(async () =>
            await ReadSetAsync(await TarOf("schema.sql", "data/000001.sql", "keys.sql", "post.sql"), null))).Message);
        Assert.Contains("'keys.sql' is out of order", (await Assert.ThrowsAsync<InvalidDataException>(async () =>
            await ReadSetAsync(await TarOf("schema.sql", "keys.sql", "keys.sql", "post.sql"), null))).Message);
        Assert.Contains("'data/000002.sql' is out of order", (await Assert.ThrowsAsync<InvalidDataException>(async () =>
            await ReadSetAsync(await TarOf("schema.sql", "keys.sql", "data/000002.sql", "post.sql"), null))).Message);
    }

    [Fact]
    public void Set_names_are_tars_of_a_database()
    {
        var name = BackupName.TryParse("20260113_155440_mysql_dns_db.tar.zst");
        Assert.NotNull(name);
        Assert.True(name.Set);
        Assert.Equal("20260113_155440_mysql_dns_db.tar.zst", name.FileName);
        Assert.Equal("20260113_155440_mysql_dns_db.tar", name.PlainFileName);
        Assert.False(BackupName.TryParse("20260113_155440_mysql_dns_db.sql.zst")!.Set);
        Assert.Null(BackupName.TryParse("20260113_155440_files_etc.sql.zst"));
    }

    [Fact]
    public void Parallel_readers_take_the_largest_tables_jobs_at_a_time_with_their_pieces_in_turn()
    {
        (IReadOnlyList<string> Pieces, long Bytes) Table(string name, int pieces, long bytes) =>
            ([.. Enumerable.Range(1, pieces).Select(i => pieces == 1 ? name : $"{name}{i}")], bytes);
        var tables = new[] { Table("b", 1, 100), Table("a", 3, 300), Table("d", 1, 50), Table("c", 2, 200) };

        Assert.Equal(["a1", "c1", "a2", "c2", "a3", "b", "d"], ReadOrder.Of(tables, jobs: 2));
        Assert.Equal(["a1", "a2", "a3", "c1", "c2", "b", "d"], ReadOrder.Of(tables, jobs: 1));
        Assert.Equal(["a1", "c1", "b", "d", "a2", "c2", "a3"], ReadOrder.Of(tables, jobs: 4));
    }
}
