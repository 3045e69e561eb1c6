using System.Formats.Tar;
using System.Security.Cryptography;
using System.Text;
using Npgsql;
using VyaBackupDb.Catalog;
using VyaBackupDb.Engines;
using VyaBackupDb.Engines.Postgres;
using VyaBackupDb.Operations;
using VyaBackupDb.Pipeline;
using VyaBackupDb.Sources.Sets;
using VyaBackupDb.Storage.Local;

namespace VyaBackupDb.Tests.Integration;

/// <summary>
/// PostgreSQL's parallel engine (engine: parallel): what the plain dump round-trips beyond the
/// hostile data (large objects, extensions' types, partitions, generated and identity columns,
/// foreign keys, policies, materialized views, unlogged tables), one snapshot for all connections,
/// a connection killed mid-dump and mid-load, chunks planted in a set, and the restore with
/// standard tools that docs/backup-format.md describes.
/// </summary>
[Trait("Category", "Integration")]
public sealed class PostgresSetTests : IAsyncLifetime
{
    private readonly Scratch _scratch = new();

    public Task InitializeAsync() => _scratch.InitializeAsync();

    public Task DisposeAsync() => _scratch.DisposeAsync();

    /// <summary>What the fingerprint does not look at: constraints, policies, large objects, materialized views, persistence, comments.</summary>
    private const string Extras =
        "SELECT 'constraint ' || conrelid::regclass || ' ' || conname || ': ' || pg_get_constraintdef(oid) FROM pg_constraint WHERE connamespace = 'public'::regnamespace "
        + "UNION ALL SELECT 'policy ' || tablename || ' ' || policyname || ': ' || coalesce(qual, '') FROM pg_policies "
        + "UNION ALL SELECT 'rls ' || relname || ' ' || relrowsecurity::text || '/' || relforcerowsecurity::text || ' persistence ' || relpersistence::text || ' options ' || coalesce(array_to_string(reloptions, ','), '') FROM pg_class WHERE relnamespace = 'public'::regnamespace AND relkind IN ('r', 'p') "
        + "UNION ALL SELECT 'lo ' || oid || ' ' || md5(lo_get(oid)) || ' ' || coalesce(obj_description(oid, 'pg_largeobject'), '') FROM pg_largeobject_metadata "
        + "UNION ALL SELECT 'matview ' || count(*) || ' ' || sum(n) FROM mv "
        + "UNION ALL SELECT 'extension ' || extname FROM pg_extension "
        + "UNION ALL SELECT 'comment ' || coalesce(obj_description('public.g'::regclass, 'pg_class'), '') "
        + "ORDER BY 1";

    [SkippableTheory]
    [MemberData(nameof(PgEngines.All), MemberType = typeof(PgEngines))]
    public async Task Large_objects_extension_types_partitions_generated_columns_keys_and_policies_round_trip(string engine)
    {
        await TestServers.RequirePostgresAsync();
        var instance = PgEngines.Instance(engine);
        var source = await _scratch.NewPostgresDatabaseAsync();
        await PgTestDb.ExecAsync(source,
            "CREATE EXTENSION citext", "CREATE EXTENSION hstore", "CREATE EXTENSION btree_gist",
            """
            CREATE TABLE g (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY, a int NOT NULL, doubled int GENERATED ALWAYS AS (a * 2) STORED,
              name citext, h hstore, during tsrange, r regclass, EXCLUDE USING gist (a WITH =, during WITH &&))
            """,
            "COMMENT ON TABLE g IS 'a ''commented'' table'",
            "INSERT INTO g (a, name, h, during, r) SELECT i, 'Name ' || i, hstore('k', i::text), tsrange('2026-01-01', '2026-01-02'), 'g'::regclass FROM generate_series(1, 500) i",
            "CREATE TABLE parted (id int, k text, PRIMARY KEY (id, k)) PARTITION BY LIST (k)",
            "CREATE TABLE parted_a PARTITION OF parted FOR VALUES IN ('a')",
            "CREATE TABLE parted_rest PARTITION OF parted DEFAULT",
            "INSERT INTO parted SELECT i, CASE WHEN i % 3 = 0 THEN 'a' ELSE 'b' || i END FROM generate_series(1, 300) i",
            "CREATE TABLE child_fk (id int PRIMARY KEY, g_id int REFERENCES g (id), parent int REFERENCES child_fk (id))",
            "INSERT INTO child_fk VALUES (1, 1, NULL), (2, 2, 1), (3, 500, 2)",
            "CREATE UNLOGGED TABLE scratchpad (v text)",
            "INSERT INTO scratchpad VALUES ('kept in the backup')",
            // The restore pauses autovacuum on the tables it loads: a table's own setting stays as it was.
            "ALTER TABLE scratchpad SET (autovacuum_enabled = false, fillfactor = 70)",
            "ALTER TABLE g ENABLE ROW LEVEL SECURITY", "ALTER TABLE g FORCE ROW LEVEL SECURITY",
            "CREATE POLICY positive ON g USING (a > 0)",
            "CREATE MATERIALIZED VIEW mv AS SELECT k, count(*) AS n FROM parted GROUP BY k",
            "CREATE UNIQUE INDEX mv_k ON mv (k)",
            "SELECT lo_from_bytea(424242, '\\x00ff0d0a5c2e0a'::bytea)",
            "COMMENT ON LARGE OBJECT 424242 IS 'a large object'",
            "SELECT lo_from_bytea(424243, convert_to(repeat('large ', 100000), 'UTF8'))");
        var before = await PgTestDb.FingerprintAsync(source);
        var extras = await RowsAsync(source, Extras);
        Assert.Contains("lo 424242 " + Convert.ToHexStringLower(MD5.HashData([0x00, 0xff, 0x0d, 0x0a, 0x5c, 0x2e, 0x0a])) + " a large object", extras);

        var file = await Ops.BackupOkAsync(instance, source, Compression.Zstd, _scratch.TempDir("backups"));
        var target = _scratch.PostgresName();
        var previous = PostgresEngine.BufferedChunkBytes;
        // On four connections every chunk is streamed (the path of chunks too big to hold), on one held.
        PostgresEngine.BufferedChunkBytes = engine == PgEngines.Parallel4 ? 1024 : previous;
        RestoreResult? result;
        try
        {
            result = await Ops.RestoreAsync(instance, file, target);
        }
        finally
        {
            PostgresEngine.BufferedChunkBytes = previous;
        }

        Assert.True(result?.Comparison?.Matches, string.Join("; ", result?.Comparison?.Mismatches ?? []));
        DbFingerprint.AssertSame(before, await PgTestDb.FingerprintAsync(target), $"restored copy ({engine})");
        Assert.Equal(extras, await RowsAsync(target, Extras));
        // The identity continues where the source's would.
        Assert.Equal(501, await PgTestDb.ScalarAsync(target, "INSERT INTO g (a) VALUES (501) RETURNING id"));
    }

    /// <summary>
    /// Transfers between accounts commit all through the backup (each one moves money and writes a
    /// ledger row, in two tables read by different connections): the copy holds every transfer
    /// whole or not at all, so its total is the starting total and its ledger explains every balance.
    /// </summary>
    [SkippableTheory]
    [InlineData(PgEngines.Parallel4)]
    [InlineData(PgEngines.Parallel1)]
    public async Task Transfers_committed_during_a_parallel_backup_are_wholly_in_it_or_wholly_out(string engine)
    {
        await TestServers.RequirePostgresAsync();
        var instance = PgEngines.Instance(engine);
        var source = await _scratch.NewPostgresDatabaseAsync();
        const int Accounts = 20000;
        await PgTestDb.ExecAsync(source,
            "CREATE TABLE account (id int PRIMARY KEY, balance bigint NOT NULL, pad text)",
            // Padding that does not compress: the rows stay in the table's own pages (about 10 MB of them: cut into two chunks or more).
            $"INSERT INTO account SELECT i, 1000, (SELECT string_agg(md5(i::text || j::text), '') FROM generate_series(1, 15) j) FROM generate_series(1, {Accounts}) i",
            "CREATE TABLE ledger (id bigserial PRIMARY KEY, src int NOT NULL, dst int NOT NULL, amount bigint NOT NULL)");
        var previous = PostgresEngine.MinSplitBytes;
        using var stop = new CancellationTokenSource();
        var transfers = 0;
        async Task TransferAsync(int seed)
        {
            var random = new Random(seed);
            await using var connection = await PgTestDb.OpenAsync(source);
            while (!stop.IsCancellationRequested)
            {
                var from = random.Next(1, Accounts + 1);
                var to = random.Next(1, Accounts);
                to = to >= from ? to + 1 : to;
                var amount = random.Next(1, 50);
                await using var transaction = await connection.BeginTransactionAsync();
                await using (var command = new NpgsqlCommand(
                    // One statement locks both rows in index order: two transfers never wait on each other in a circle.
                    "WITH moved AS (UPDATE account SET balance = balance + CASE WHEN id = $1 THEN -$3 ELSE $3 END WHERE id IN ($1, $2) RETURNING id) "
                    + "INSERT INTO ledger (src, dst, amount) SELECT $1, $2, $3 FROM moved WHERE id = $1", connection))
                {
                    command.Parameters.Add(new NpgsqlParameter { Value = from });
                    command.Parameters.Add(new NpgsqlParameter { Value = to });
                    command.Parameters.Add(new NpgsqlParameter { Value = (long)amount });
                    await command.ExecuteNonQueryAsync();
                }
                await transaction.CommitAsync();
                Interlocked.Increment(ref transfers);
            }
        }
        // Small page ranges: the account table is read by several connections at once.
        PostgresEngine.MinSplitBytes = 1 << 20;
        string file;
        var workload = Enumerable.Range(1, 3).Select(i => Task.Run(() => TransferAsync(i))).ToList();
        try
        {
            while (Volatile.Read(ref transfers) < 50)
            {
                await Task.Delay(20);
            }
            file = await Ops.BackupOkAsync(instance, source, Compression.Zstd, _scratch.TempDir("backups"));
        }
        finally
        {
            PostgresEngine.MinSplitBytes = previous;
            await stop.CancelAsync();
            await Task.WhenAll(workload);
        }
        var manifest = BackupManifest.FromJson(File.ReadAllBytes(file + BackupManifest.Suffix));
        Assert.Matches("^[0-9A-F]+/[0-9A-F]+$", manifest.SourcePosition);
        Assert.True(manifest.Entries!.Count(e => e.Table == "public.account") > 1, "the account table fits one chunk: no cut was made");
        if (engine == PgEngines.Parallel4)
        {
            Assert.True(manifest.Entries!.Count(e => e.Table == "public.account") > 1, "the account table was not split among connections");
        }

        var target = _scratch.PostgresName();
        var result = await Ops.RestoreAsync(instance, file, target);
        Assert.True(result?.Comparison?.Matches, string.Join("; ", result?.Comparison?.Mismatches ?? []));
        Assert.Equal((long)Accounts * 1000, Convert.ToInt64(await PgTestDb.ScalarAsync(target, "SELECT sum(balance) FROM account")));
        Assert.Equal(0L, Convert.ToInt64(await PgTestDb.ScalarAsync(target,
            "SELECT count(*) FROM account a WHERE a.balance <> 1000 - coalesce((SELECT sum(amount) FROM ledger WHERE src = a.id), 0) "
            + "+ coalesce((SELECT sum(amount) FROM ledger WHERE dst = a.id), 0)")));
        Assert.True(Convert.ToInt64(await PgTestDb.ScalarAsync(target, "SELECT count(*) FROM ledger")) >= 50);
    }

    /// <summary>A database big enough that its COPY runs for a moment: ~40 MB in two tables.</summary>
    private async Task<string> NewBulkDatabaseAsync()
    {
        var source = await _scratch.NewPostgresDatabaseAsync();
        await PgTestDb.ExecAsync(source,
            "CREATE TABLE bulk1 (id int PRIMARY KEY, body text)",
            "INSERT INTO bulk1 SELECT i, repeat(md5(i::text), 6) FROM generate_series(1, 100000) i",
            "CREATE TABLE bulk2 (id int PRIMARY KEY, body text)",
            "INSERT INTO bulk2 SELECT i, repeat(md5(i::text), 6) FROM generate_series(1, 100000) i");
        return source;
    }

    /// <summary>
    /// Ends the first session of ours on <paramref name="database"/> that runs a statement <paramref name="like"/>,
    /// or ran it and is still in its transaction (a reader whose COPY the server has sent whole into the socket
    /// buffers, which on a fast machine can be all of it), as soon as there is one; whether it found one.
    /// </summary>
    private static async Task<bool> TerminateAsync(string database, string like, Task until)
    {
        await using var connection = await PgTestDb.OpenAsync();
        while (!until.IsCompleted)
        {
            await using var command = new NpgsqlCommand(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND application_name = 'vya-backupdb' "
                + "AND query LIKE $2 AND state IN ('active', 'idle in transaction') LIMIT 1", connection);
            command.Parameters.Add(new NpgsqlParameter { Value = database });
            command.Parameters.Add(new NpgsqlParameter { Value = like });
            if (await command.ExecuteScalarAsync() is true)
            {
                return true;
            }
            await Task.Delay(5);
        }
        return false;
    }

    [SkippableFact]
    public async Task A_connection_killed_in_the_middle_of_a_parallel_dump_fails_the_backup_and_leaves_none()
    {
        await TestServers.RequirePostgresAsync();
        var source = await NewBulkDatabaseAsync();
        var backupDir = _scratch.TempDir("backups");

        // Many small pieces per reader, and zstd's slowest level holding the writer: whenever the test
        // finds a reader, it still has pieces to read, however fast the machine.
        var instance = PgEngines.Instance(PgEngines.Parallel4);
        var config = TestServers.Config(backupDir, instance) with { CompressionLevel = 19 };
        var operation = new BackupOperation(config, new LocalStorage(backupDir), TimeProvider.System, new TestBackupObserver());
        var previous = PostgresEngine.MinSplitBytes;
        PostgresEngine.MinSplitBytes = 1 << 20;
        BackupItemResult result;
        bool killed;
        try
        {
            var backup = operation.RunAsync(new BackupRequest([instance], source, Compression.Zstd, DryRun: false), CancellationToken.None);
            killed = await TerminateAsync(source, "COPY %", backup);
            result = Assert.Single((await backup).Results);
        }
        finally
        {
            PostgresEngine.MinSplitBytes = previous;
        }

        Assert.True(killed, $"no COPY was seen to kill; the backup ended with: {result.Error ?? "success"}");
        Assert.False(result.Succeeded);
        // The server's message, or (when the kill lands while the server waits on our reading) none.
        Assert.Matches("terminating connection|the server closed the connection", result.Error);
        Assert.DoesNotContain('\n', result.Error!);
        Assert.Empty(Ops.DataFilesUnder(backupDir));
        Assert.Empty(Ops.FilesUnder(backupDir));
    }

    /// <summary>
    /// The restored database is analyzed when it becomes visible: every table with rows, inheritance and
    /// partition parents and materialized views included, has the planner's statistics (pg_restore leaves
    /// that to autovacuum), whether a table was analyzed beside the load or after it.
    /// </summary>
    [SkippableTheory]
    [InlineData(PgEngines.Parallel1)]
    [InlineData(PgEngines.Parallel4)]
    public async Task A_parallel_restore_leaves_every_table_with_statistics(string engine)
    {
        await TestServers.RequirePostgresAsync();
        var instance = PgEngines.Instance(engine);
        var source = await NewBulkDatabaseAsync();
        await PgTestDb.ExecAsync(source,
            "CREATE TABLE plain (v int)",
            "INSERT INTO plain SELECT i FROM generate_series(1, 1000) i",
            "CREATE TABLE parent (id int PRIMARY KEY, v text)",
            "CREATE TABLE child (extra int) INHERITS (parent)",
            "INSERT INTO parent SELECT i, 'p' FROM generate_series(1, 500) i",
            "INSERT INTO child SELECT i, 'c', i FROM generate_series(501, 1500) i",
            "CREATE TABLE part (id int, v text, PRIMARY KEY (id)) PARTITION BY RANGE (id)",
            "CREATE TABLE part_low PARTITION OF part FOR VALUES FROM (0) TO (1000)",
            "CREATE TABLE part_high PARTITION OF part FOR VALUES FROM (1000) TO (3000)",
            "INSERT INTO part SELECT i, 'x' FROM generate_series(1, 2500) i",
            "CREATE MATERIALIZED VIEW totals AS SELECT id % 10 AS k, count(*) AS n FROM bulk1 GROUP BY 1");
        string[] relations = ["bulk1", "bulk2", "plain", "parent", "child", "part", "part_low", "part_high", "totals"];
        var file = await Ops.BackupOkAsync(instance, source, Compression.Zstd, _scratch.TempDir("backups"));
        var target = await _scratch.NewPostgresDatabaseAsync();

        await Ops.RestoreAsync(instance, file, target, force: true);

        var analyzed = ((string?)await PgTestDb.ScalarAsync(target,
            "SELECT string_agg(DISTINCT tablename::text, ',') FROM pg_stats WHERE schemaname = 'public'") ?? "").Split(',');
        Assert.Empty(relations.Except(analyzed));
    }

    /// <param name="statement">What is killed: a loader's COPY, or an ANALYZE (beside the loaders once a table's rows are in, or after post.sql).</param>
    [SkippableTheory]
    [InlineData("COPY %")]
    [InlineData("ANALYZE %")]
    public async Task A_connection_killed_in_the_middle_of_a_parallel_load_fails_the_restore_and_keeps_the_old_database(string statement)
    {
        await TestServers.RequirePostgresAsync();
        var instance = PgEngines.Instance(PgEngines.Parallel4);
        var source = await NewBulkDatabaseAsync();
        // The biggest statistics target: ANALYZE reads every row and sorts them, long enough to be seen.
        await PgTestDb.ExecAsync(source, "ALTER TABLE bulk1 ALTER COLUMN body SET STATISTICS 10000", "ALTER TABLE bulk2 ALTER COLUMN body SET STATISTICS 10000");
        var file = await Ops.BackupOkAsync(instance, source, Compression.Zstd, _scratch.TempDir("backups"));
        var target = await _scratch.NewPostgresDatabaseAsync();
        await PgTestDb.ExecAsync(target, "CREATE TABLE old (id int PRIMARY KEY)", "INSERT INTO old VALUES (7)");
        var before = await PgTestDb.FingerprintAsync(target);

        var restore = Ops.RestoreAsync(instance, file, target, force: true);
        var killed = await TerminateAsync(RestoreStaging.StagingName(target), statement, restore);
        var error = await Assert.ThrowsAnyAsync<Errors.VyaException>(() => restore);

        Assert.True(killed, $"no statement like {statement} was seen to kill");
        // The server's message when it is read, else the broken connection's, when the kill lands during a write.
        Assert.Matches("terminating connection|the connection to the server broke|the server closed the connection", error.Message);
        Assert.DoesNotContain('\n', error.Message);
        Assert.Contains("was not changed", error.Message, StringComparison.Ordinal);
        DbFingerprint.AssertSame(before, await PgTestDb.FingerprintAsync(target), "the old target");
        Assert.False(await PgTestDb.ExistsAsync(RestoreStaging.StagingName(target)), "the staging database was left behind");
    }

    private static readonly (string What, string Chunk)[] PlantedChunks =
    [
        ("a table the schema does not have", "COPY \"public\".\"other\" (\"id\", \"v\") FROM stdin;\n1\tx\n\\.\n"),
        ("another schema", "COPY \"pg_catalog\".\"pg_class\" (\"relname\") FROM stdin;\nx\n\\.\n"),
        ("FROM PROGRAM", "COPY \"public\".\"t\" (\"id\", \"v\") FROM PROGRAM 'touch /tmp/vya-planted-program';\n1\tx\n\\.\n"),
        ("SQL after the end of the rows", "COPY \"public\".\"t\" (\"id\", \"v\") FROM stdin;\n1\tx\n\\.\nCREATE TABLE planted (id int);\n\\.\n"),
        ("SQL after the last line", "COPY \"public\".\"t\" (\"id\", \"v\") FROM stdin;\n1\tx\n\\.\nDROP TABLE t;\n"),
        ("an unquoted name", "COPY public.t (id, v) FROM stdin;\n1\tx\n\\.\n"),
        ("a statement", "DROP TABLE \"public\".\"t\";\n"),
        ("a column the table does not have", "COPY \"public\".\"t\" (\"id\", \"v\", \"ctid\") FROM stdin;\n1\tx\t(0,1)\n\\.\n"),
        ("a second statement on the header line", "COPY \"public\".\"t\" (\"id\", \"v\") FROM stdin; DROP TABLE \"public\".\"t\";\n\\.\n"),
    ];

    /// <summary>
    /// Someone who can write to the bucket rewrites a chunk (and the manifest's digests to match):
    /// anything but rows of a table of the set is refused, and nothing is created.
    /// </summary>
    public static TheoryData<string, string, bool> PlantedChunksBufferedAndStreamed()
    {
        var data = new TheoryData<string, string, bool>();
        foreach (var (what, chunk) in PlantedChunks)
        {
            data.Add(what, chunk, false);
            data.Add(what, chunk, true);
        }
        return data;
    }

    [SkippableTheory]
    [MemberData(nameof(PlantedChunksBufferedAndStreamed))]
    public async Task A_planted_chunk_is_refused(string what, string chunk, bool streamed)
    {
        await TestServers.RequirePostgresAsync();
        var instance = PgEngines.Instance(PgEngines.Parallel4);
        var source = await _scratch.NewPostgresDatabaseAsync();
        await PgTestDb.ExecAsync(source, "CREATE TABLE t (id int PRIMARY KEY, v text)", "INSERT INTO t VALUES (1, 'one'), (2, 'two')");
        var file = await Ops.BackupOkAsync(instance, source, Compression.None, _scratch.TempDir("backups"));
        Replace(file, "data/000001.sql", Encoding.UTF8.GetBytes(chunk));
        var target = _scratch.PostgresName();

        var previous = PostgresEngine.BufferedChunkBytes;
        // Streamed: a chunk too big to hold is checked as it goes to the server.
        PostgresEngine.BufferedChunkBytes = streamed ? 8 : previous;
        Errors.VyaException error;
        try
        {
            error = await Assert.ThrowsAnyAsync<Errors.VyaException>(() => Ops.RestoreAsync(instance, file, target));
        }
        finally
        {
            PostgresEngine.BufferedChunkBytes = previous;
        }

        Assert.Contains("refused", error.Message, StringComparison.Ordinal);
        Assert.Contains("data/000001.sql", error.Message, StringComparison.Ordinal);
        Assert.False(await PgTestDb.ExistsAsync(target), $"{what}: the target was created");
        Assert.False(File.Exists("/tmp/vya-planted-program"), "a program ran");
        Assert.Equal(2L, Convert.ToInt64(await PgTestDb.ScalarAsync(source, "SELECT count(*) FROM t")));
    }

    /// <summary>Rewrites one entry of an uncompressed set and the manifest (entries, digests, sizes) to match, as a forger would.</summary>
    private static void Replace(string file, string entryName, byte[] content) =>
        Rewrite(file, entries => [.. entries.Select(e => e.Name == entryName ? (e.Name, content) : e)]);

    /// <summary>Rewrites the entries of an uncompressed set and its manifest to match.</summary>
    private static void Rewrite(string file, Func<List<(string Name, byte[] Content)>, List<(string Name, byte[] Content)>> change)
    {
        var entries = new List<(string Name, byte[] Content)>();
        using (var reader = new TarReader(new MemoryStream(File.ReadAllBytes(file))))
        {
            while (reader.GetNextEntry(copyData: true) is { } entry)
            {
                var data = new MemoryStream();
                entry.DataStream?.CopyTo(data);
                entries.Add((entry.Name, data.ToArray()));
            }
        }
        entries = change(entries);
        var rewritten = new MemoryStream();
        using (var writer = new TarWriter(rewritten, TarEntryFormat.Pax, leaveOpen: true))
        {
            foreach (var (name, content) in entries)
            {
                writer.WriteEntry(new PaxTarEntry(TarEntryType.RegularFile, name) { DataStream = new MemoryStream(content) });
            }
        }
        var bytes = rewritten.ToArray();
        File.WriteAllBytes(file, bytes);
        var sha = Convert.ToHexStringLower(SHA256.HashData(bytes));
        var manifest = BackupManifest.FromJson(File.ReadAllBytes(file + BackupManifest.Suffix));
        var listed = manifest.Entries!.ToDictionary(e => e.Name);
        manifest = manifest with
        {
            Entries = [.. entries.Select(e => (listed.GetValueOrDefault(e.Name) ?? new SetEntry(e.Name, 0, "")) with
            {
                Bytes = e.Content.Length, Sha256 = Convert.ToHexStringLower(SHA256.HashData(e.Content)),
            })],
            PlainBytes = bytes.Length,
            StoredBytes = bytes.Length,
            PlainSha256 = sha,
            StoredSha256 = sha,
        };
        File.WriteAllBytes(file + BackupManifest.Suffix, manifest.ToJson());
        File.WriteAllText(file + BackupManifest.ChecksumSuffix, $"{sha}  {Path.GetFileName(file)}\n");
    }

    /// <summary>
    /// Sets written before keys.sql existed hold the indexes and key constraints in post.sql: they
    /// restore as before (built after the load, several at once).
    /// </summary>
    [SkippableFact]
    public async Task A_set_without_keys_sql_restores_its_keys_from_post_sql()
    {
        await TestServers.RequirePostgresAsync();
        var instance = PgEngines.Instance(PgEngines.Parallel4);
        var source = await _scratch.NewPostgresDatabaseAsync();
        await PgTestDb.ExecAsync(source,
            "CREATE TABLE t (id int PRIMARY KEY, v text UNIQUE, w int)", "CREATE INDEX t_lower ON t (lower(v)) WHERE w > 5",
            "CREATE TABLE c (id int PRIMARY KEY, t_id int REFERENCES t (id))",
            "INSERT INTO t SELECT i, 'v' || i, i FROM generate_series(1, 2000) i", "INSERT INTO c SELECT i, i FROM generate_series(1, 100) i");
        var before = await PgTestDb.FingerprintAsync(source);
        var extras = await RowsAsync(source, "SELECT conrelid::regclass || ' ' || conname || ': ' || pg_get_constraintdef(oid) FROM pg_constraint "
            + "WHERE connamespace = 'public'::regnamespace ORDER BY 1");
        var file = await Ops.BackupOkAsync(instance, source, Compression.None, _scratch.TempDir("backups"));
        // As the earlier layout had it: the keys at the start of post-data, in post.sql (after the rest of the data section here).
        Rewrite(file, entries =>
        {
            var keys = entries.Single(e => e.Name == "keys.sql").Content;
            return [.. entries.Where(e => e.Name != "keys.sql").Select(e => e.Name == "post.sql" ? (e.Name, [.. keys, .. e.Content]) : e)];
        });

        var target = _scratch.PostgresName();
        var result = await Ops.RestoreAsync(instance, file, target);

        Assert.True(result?.Comparison?.Matches, string.Join("; ", result?.Comparison?.Mismatches ?? []));
        DbFingerprint.AssertSame(before, await PgTestDb.FingerprintAsync(target), "restored from a set without keys.sql");
        Assert.Equal(extras, await RowsAsync(target, "SELECT conrelid::regclass || ' ' || conname || ': ' || pg_get_constraintdef(oid) FROM pg_constraint "
            + "WHERE connamespace = 'public'::regnamespace ORDER BY 1"));
    }

    /// <summary>
    /// Backs up a table, puts <paramref name="keys"/> in its set as keys.sql (the manifest made to
    /// match) and restores it over an existing database: the restore must fail in one line, leave
    /// the old database as it was and no staging database. Returns its error.
    /// </summary>
    private async Task<Errors.VyaException> RestoreWithKeysOverAnOldDatabaseAsync(string keys)
    {
        await TestServers.RequirePostgresAsync();
        var instance = PgEngines.Instance(PgEngines.Parallel4);
        var source = await _scratch.NewPostgresDatabaseAsync();
        await PgTestDb.ExecAsync(source, "CREATE TABLE t (id int PRIMARY KEY, v int)", "INSERT INTO t SELECT i, i % 10 FROM generate_series(1, 5000) i");
        var file = await Ops.BackupOkAsync(instance, source, Compression.None, _scratch.TempDir("backups"));
        Replace(file, "keys.sql", Encoding.UTF8.GetBytes(keys));
        var target = await _scratch.NewPostgresDatabaseAsync();
        await PgTestDb.ExecAsync(target, "CREATE TABLE old (id int PRIMARY KEY)", "INSERT INTO old VALUES (7)");
        var before = await PgTestDb.FingerprintAsync(target);

        var error = await Assert.ThrowsAnyAsync<Errors.VyaException>(() => Ops.RestoreAsync(instance, file, target, force: true));

        Assert.DoesNotContain('\n', error.Message);
        DbFingerprint.AssertSame(before, await PgTestDb.FingerprintAsync(target), "the old target");
        Assert.False(await PgTestDb.ExistsAsync(RestoreStaging.StagingName(target)), "the staging database was left behind");
        return error;
    }

    /// <summary>A key of keys.sql that cannot be built (here a unique constraint the rows break) fails the restore with the server's line.</summary>
    [SkippableFact]
    public async Task A_key_that_cannot_be_built_fails_the_restore_and_keeps_the_old_database()
    {
        var error = await RestoreWithKeysOverAnOldDatabaseAsync(
            "--\n-- Name: t t_v_key; Type: CONSTRAINT; Schema: public; Owner: x\n--\n\n"
            + "ALTER TABLE ONLY \"public\".\"t\"\n    ADD CONSTRAINT \"t_v_key\" UNIQUE (\"v\");\n");

        Assert.Contains("could not create unique index", error.Message, StringComparison.Ordinal);
        Assert.Contains("was not changed", error.Message, StringComparison.Ordinal);
    }

    /// <summary>keys.sql goes through the statement filter like post.sql: a planted command is refused and runs nothing.</summary>
    [SkippableFact]
    public async Task A_planted_keys_sql_is_refused()
    {
        var marker = Path.Combine(_scratch.TempDir("planted"), "ran");
        var error = await RestoreWithKeysOverAnOldDatabaseAsync(
            "--\n-- Name: t t_pkey; Type: CONSTRAINT; Schema: public; Owner: x\n--\n\n"
            + $"COPY \"public\".\"t\" (\"id\") TO PROGRAM 'touch {marker}';\n");

        Assert.Contains("COPY other than COPY ... FROM stdin", error.Message, StringComparison.Ordinal);
        Assert.False(File.Exists(marker), "the planted command ran");
    }

    /// <summary>keys.sql goes through the statement allowlist too: a DO block pg_dump never writes is refused before it runs.</summary>
    [SkippableFact]
    public async Task A_keys_sql_with_a_planted_do_block_is_refused()
    {
        var marker = $"/tmp/vya-planted-{Guid.NewGuid():N}";
        try
        {
            var error = await RestoreWithKeysOverAnOldDatabaseAsync(
                "--\n-- Name: t t_pkey; Type: CONSTRAINT; Schema: public; Owner: x\n--\n\n"
                + $"DO $x$ BEGIN EXECUTE 'COPY (select 1) TO PROGRAM ''touch {marker}'''; END $x$;\n");

            Assert.Contains("statement DO is not something pg_dump writes; refused", error.Message, StringComparison.Ordinal);
            Assert.False(File.Exists(marker), "the planted command ran");
        }
        finally
        {
            File.Delete(marker);
        }
    }

    /// <summary>
    /// A set's SQL files are one dump cut in pieces: a postgres_fdw foreign table planted in
    /// schema.sql (each statement one pg_dump writes) and rows into it planted in post.sql are
    /// refused as in one plain dump; the other database keeps its rows.
    /// </summary>
    [SkippableFact]
    public async Task Rows_in_post_sql_into_a_foreign_table_of_schema_sql_are_refused()
    {
        var error = await RestoreWritingIntoAnotherDatabaseAsync(
            ForeignServer + Entry("ft", "FOREIGN TABLE", "CREATE FOREIGN TABLE \"public\".\"ft\" (\"id\" integer) SERVER \"xs\";"),
            DataEntry);

        Assert.Contains("INSERT into foreign table public.ft (its rows go to another server) is not something pg_dump writes", error.Message, StringComparison.Ordinal);
    }

    /// <summary>
    /// post.sql's entries run in bundles of a few, cut at comment lines anyone can write: an entry that
    /// leaves standard_conforming_strings off makes the next one in the file read differently from how it
    /// runs in another bundle (here a foreign table hidden in a string, and rows into it in a third entry): refused.
    /// </summary>
    [SkippableFact]
    public async Task A_post_sql_entry_read_differently_in_another_bundle_is_refused()
    {
        var error = await RestoreWritingIntoAnotherDatabaseAsync(ForeignServer,
            Entry("t_v_idx", "INDEX", "CREATE INDEX \"t_v_idx\" ON \"public\".\"t\" USING \"btree\" (\"v\");\nSET standard_conforming_strings = off;")
            + Entry("t_id_idx", "INDEX",
                "COMMENT ON TABLE \"public\".\"t\" IS 'x\\'; CREATE FOREIGN TABLE \"public\".\"ft\" (\"id\" integer) SERVER \"xs\"; --';")
            + DataEntry);

        Assert.Contains("post.sql is not pg_dump's post-data", error.Message, StringComparison.Ordinal);
    }

    private static string Entry(string name, string type, string statement) =>
        $"--\n-- Name: {name}; Type: {type}; Schema: public; Owner: -\n--\n\n{statement}\n\n\n";

    private static readonly string DataEntry =
        "--\n-- Data for Name: ft; Type: TABLE DATA; Schema: public; Owner: -\n--\n\nINSERT INTO \"public\".\"ft\" VALUES (2);\n\n\n";

    /// <summary>A foreign server "xs" for the database named {other} (its table ft), with a user mapping that reaches it.</summary>
    private static string ForeignServer =>
        "--\n-- Name: postgres_fdw; Type: EXTENSION; Schema: -; Owner: -\n--\n\nCREATE EXTENSION IF NOT EXISTS \"postgres_fdw\" WITH SCHEMA \"public\";\n\n\n"
        + "--\n-- Name: xs; Type: SERVER; Schema: -; Owner: -\n--\n\n"
        + $"CREATE SERVER \"xs\" FOREIGN DATA WRAPPER \"postgres_fdw\" OPTIONS (\"host\" '127.0.0.1', \"port\" '{TestServers.PgPort}', \"dbname\" '{{other}}');\n\n\n"
        + "--\n-- Name: USER MAPPING public SERVER xs; Type: USER MAPPING; Schema: -; Owner: -\n--\n\n"
        + $"CREATE USER MAPPING FOR PUBLIC SERVER \"xs\" OPTIONS (\"user\" '{TestServers.PgUser}', \"password\" '{TestServers.PgPassword}');\n\n\n";

    /// <summary>
    /// Backs up a table, puts <paramref name="schema"/> ({other}: another database, with a table ft)
    /// at the end of schema.sql's statements and <paramref name="post"/> after post.sql's settings (the
    /// manifest made to match, as a forger would) and restores the set on 4 connections: it must fail
    /// in one line, the other database keep its rows, and no target nor staging database be left. Returns its error.
    /// </summary>
    private async Task<Errors.VyaException> RestoreWritingIntoAnotherDatabaseAsync(string schema, string post)
    {
        await TestServers.RequirePostgresAsync();
        var instance = PgEngines.Instance(PgEngines.Parallel4);
        var source = await _scratch.NewPostgresDatabaseAsync();
        await PgTestDb.ExecAsync(source, "CREATE TABLE t (id int PRIMARY KEY, v text)", "INSERT INTO t SELECT i, 'v' || i FROM generate_series(1, 100) i");
        var other = await _scratch.NewPostgresDatabaseAsync();
        await PgTestDb.ExecAsync(other, "CREATE TABLE ft (id int PRIMARY KEY)", "INSERT INTO ft VALUES (42)");
        var otherBefore = await PgTestDb.FingerprintAsync(other);
        var file = await Ops.BackupOkAsync(instance, source, Compression.None, _scratch.TempDir("backups"));
        Rewrite(file, entries => [.. entries.Select(e => e.Name switch
        {
            "schema.sql" => (e.Name, BeforeTrailer(e.Content, schema.Replace("{other}", other, StringComparison.Ordinal))),
            "post.sql" => (e.Name, BeforeTrailer(e.Content, post)),
            _ => e,
        })]);
        var target = _scratch.PostgresName();

        // Trusted: postgres_fdw needs a superuser's load; the filter refuses the planted rows all the same.
        var error = await Assert.ThrowsAnyAsync<Errors.VyaException>(() => Ops.RestoreAsync(instance, file, target, trustBackup: true));

        Assert.DoesNotContain('\n', error.Message);
        DbFingerprint.AssertSame(otherBefore, await PgTestDb.FingerprintAsync(other), "another database after a planted foreign table");
        Assert.False(await PgTestDb.ExistsAsync(target), "the target was created");
        Assert.False(await PgTestDb.ExistsAsync(RestoreStaging.StagingName(target)), "the staging database was left behind");
        return error;

        static byte[] BeforeTrailer(byte[] content, string planted)
        {
            var text = Encoding.UTF8.GetString(content);
            var trailer = text.IndexOf("--\n-- PostgreSQL database dump complete", StringComparison.Ordinal);
            Assert.True(trailer > 0, "pg_dump wrote no completion trailer");
            return Encoding.UTF8.GetBytes(text[..trailer] + planted + text[trailer..]);
        }
    }

    /// <summary>docs/backup-format.md: zstd, tar and psql alone restore a set (here the hostile database with its big row).</summary>
    [SkippableFact]
    public async Task A_set_restores_with_zstd_tar_and_psql_alone_as_the_docs_say()
    {
        await TestServers.RequirePostgresAsync();
        var source = await _scratch.NewPostgresDatabaseAsync();
        await PostgresRoundTripTests.CreateHostileAsync(source, bigRow: true);
        var before = await PgTestDb.FingerprintAsync(source);
        var file = await Ops.BackupOkAsync(PgEngines.Instance(PgEngines.Parallel4), source, Compression.Zstd, _scratch.TempDir("backups"));
        var target = await _scratch.NewPostgresDatabaseAsync();
        var dir = _scratch.TempDir("extracted");
        var psql = Path.Combine(Directory.GetDirectories("/usr/lib/postgresql").Order().Last(), "bin", "psql");

        // As the docs write it, with the connection in the environment.
        var result = await Run.ProgramAsync("bash", ["-c",
            $"set -o pipefail; zstd -dc '{file}' | tar -x -C '{dir}' && cat '{dir}'/schema.sql '{dir}'/data/*.sql '{dir}'/keys.sql '{dir}'/post.sql | '{psql}' -X -q -v ON_ERROR_STOP=1 -d \"$PGDATABASE\""],
            new Dictionary<string, string>
            {
                ["PGHOST"] = TestServers.PgHost, ["PGPORT"] = TestServers.PgPort.ToString(System.Globalization.CultureInfo.InvariantCulture),
                ["PGUSER"] = TestServers.PgUser, ["PGPASSWORD"] = TestServers.PgPassword, ["PGDATABASE"] = target,
            });

        Assert.True(result.ExitCode == 0, result.ToString());
        DbFingerprint.AssertSame(before, await PgTestDb.FingerprintAsync(target), "restored with zstd, tar and psql");
    }

    private static async Task<List<string>> RowsAsync(string database, string sql)
    {
        await using var connection = await PgTestDb.OpenAsync(database);
        await using var command = new NpgsqlCommand(sql, connection);
        await using var reader = await command.ExecuteReaderAsync();
        var rows = new List<string>();
        while (await reader.ReadAsync())
        {
            rows.Add(reader.IsDBNull(0) ? "NULL" : reader.GetString(0));
        }
        return rows;
    }
}
