using System.Globalization;
using VyaBackupDb.Pipeline;

namespace VyaBackupDb.Tests.Integration;

/// <summary>
/// How a PostgreSQL backup waits for the table locks it needs (lock_wait_seconds) and what it does about changes made
/// while it waited. A table locked here is in the test's own database: these run beside other tests.
/// </summary>
[Trait("Category", "Integration")]
public sealed class PostgresLockTests : IAsyncLifetime
{
    private readonly Scratch _scratch = new();

    public Task InitializeAsync() => _scratch.InitializeAsync();

    public Task DisposeAsync() => _scratch.DisposeAsync();

    /// <summary>
    /// An ALTER TABLE asked for just after a PostgreSQL backup locked its tables waits for the
    /// backup, and pg_dump's own lock on the table, asked for later, waits behind the ALTER: each
    /// waits on the other, which the server cannot see. The backup gives up after
    /// lock_wait_seconds with one line (before, it hung until timeout_seconds, and with it the
    /// ALTER and every query on the table queued behind it); the ALTER then goes through.
    /// </summary>
    [SkippableFact]
    public async Task A_postgres_backup_and_an_alter_waiting_on_each_other_end_after_lock_wait_seconds()
    {
        await TestServers.RequirePostgresAsync();
        var source = await _scratch.NewPostgresDatabaseAsync();
        await PgTestDb.ExecAsync(source, "CREATE TABLE t (id int PRIMARY KEY)", "INSERT INTO t SELECT generate_series(1, 1000)");
        // pg_dump starts 2 s late, once the backup's own connection has locked the tables.
        var tools = SlowDumpTools.Create(_scratch.TempDir("tools"), 2);
        var started = Path.Combine(tools, "started");
        var instance = PgEngines.Instance(PgEngines.Parallel4) with { ToolsDir = tools, LockWaitSeconds = 3 };

        var backup = Ops.BackupAsync(instance, source, Compression.Zstd, _scratch.TempDir("backups"));
        while (!File.Exists(started) && !backup.IsCompleted)
        {
            await Task.Delay(10);
        }
        Assert.True(File.Exists(started), $"the backup ended before pg_dump started: {(backup.IsCompleted ? backup.Result.Error : "")}");
        await using var alterer = await PgTestDb.OpenAsync(source);
        // Its own lock_timeout ends the ALTER if the backup hangs, so that the test reports the hang.
        var alter = new Npgsql.NpgsqlCommand("SET lock_timeout = '30s'; ALTER TABLE t ADD COLUMN added int", alterer).ExecuteNonQueryAsync();

        var failed = await backup.WaitAsync(TimeSpan.FromSeconds(40));
        Assert.False(failed.Succeeded, "the backup went through while an ALTER waited for it");
        Assert.Contains("within 3 s (lock_wait_seconds)", failed.Error, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', failed.Error!);
        await alter.WaitAsync(TimeSpan.FromSeconds(10));
    }

    /// <summary>
    /// A session holds a table exclusively (as ALTER TABLE or VACUUM FULL would): the backup
    /// (pg_dump's or the parallel engine's) waits lock_wait_seconds for it, then fails with one
    /// line and leaves no backup; the holder's work is not disturbed.
    /// </summary>
    [SkippableTheory]
    [InlineData(PgEngines.Dump)]
    [InlineData(PgEngines.Parallel4)]
    public async Task A_postgres_backup_waits_for_an_exclusive_table_lock_for_lock_wait_seconds_then_gives_up(string engine)
    {
        await TestServers.RequirePostgresAsync();
        var source = await _scratch.NewPostgresDatabaseAsync();
        await PgTestDb.ExecAsync(source, "CREATE TABLE t (id int PRIMARY KEY, v text)", "INSERT INTO t VALUES (1, 'one')");
        var backupDir = _scratch.TempDir("backups");
        await using var holder = await PgTestDb.OpenAsync(source);
        await using var transaction = await holder.BeginTransactionAsync();
        await using (var lockTable = new Npgsql.NpgsqlCommand("LOCK TABLE t IN ACCESS EXCLUSIVE MODE", holder, transaction))
        {
            await lockTable.ExecuteNonQueryAsync();
        }

        var clock = System.Diagnostics.Stopwatch.StartNew();
        var failed = await Ops.BackupAsync(PgEngines.Instance(engine) with { LockWaitSeconds = 3 }, source, Compression.Zstd, backupDir)
            .WaitAsync(TimeSpan.FromSeconds(60));

        Assert.False(failed.Succeeded, "a backup read a table another session held exclusively");
        Assert.True(clock.Elapsed >= TimeSpan.FromSeconds(3), $"the backup gave up after {clock.Elapsed}, before lock_wait_seconds");
        Assert.Contains("could not lock the tables for the backup within 3 s (lock_wait_seconds)", failed.Error, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', failed.Error!);
        Assert.Empty(Ops.DataFilesUnder(backupDir));
        await using (var insert = new Npgsql.NpgsqlCommand("INSERT INTO t VALUES (2, 'two')", holder, transaction))
        {
            await insert.ExecuteNonQueryAsync();
        }
        await transaction.CommitAsync();
        Assert.Equal(2L, Convert.ToInt64(await PgTestDb.ScalarAsync(source, "SELECT count(*) FROM t"), CultureInfo.InvariantCulture));
    }

    /// <summary>
    /// A session holds t1 exclusively when the backup starts: the backup takes its snapshot and waits
    /// for t1. The session then truncates and refills t2, or rewrites it (ALTER TABLE ... TYPE), and
    /// commits. Neither is MVCC-safe: the snapshot saw t2 empty, and the backup stored it so, with a
    /// manifest that agreed and exit 0. Now the backup sees t2's file changed under its snapshot (or t2
    /// dropped, or its name another table's) and takes another: what it stores is the database as the
    /// session left it.
    /// </summary>
    [SkippableTheory]
    [InlineData(PgEngines.Dump, "TRUNCATE t2; INSERT INTO t2 SELECT g, g * 2 FROM generate_series(1, 300) g")]
    [InlineData(PgEngines.Parallel4, "TRUNCATE t2; INSERT INTO t2 SELECT g, g * 2 FROM generate_series(1, 300) g")]
    [InlineData(PgEngines.Dump, "ALTER TABLE t2 ALTER COLUMN v TYPE bigint")]
    [InlineData(PgEngines.Parallel4, "ALTER TABLE t2 ALTER COLUMN v TYPE bigint")]
    [InlineData(PgEngines.Parallel4, "DROP TABLE t2")]
    [InlineData(PgEngines.Parallel4, "ALTER TABLE t2 RENAME TO t3; CREATE TABLE t2 (id int)")]
    [InlineData(PgEngines.Dump, Swap.Tables)]
    [InlineData(PgEngines.Parallel4, Swap.Tables)]
    [InlineData(PgEngines.Dump, Swap.Functions)]
    [InlineData(PgEngines.Parallel4, Swap.Functions)]
    [InlineData(PgEngines.Dump, Swap.Columns)]
    [InlineData(PgEngines.Parallel4, Swap.Columns)]
    [InlineData(PgEngines.Dump, Swap.EnumValue)]
    [InlineData(PgEngines.Parallel4, Swap.EnumValue)]
    [InlineData(PgEngines.Dump, Swap.CompositeType)]
    [InlineData(PgEngines.Parallel4, Swap.CompositeType)]
    [InlineData(PgEngines.Dump, Swap.ColumnAddedBack)]
    [InlineData(PgEngines.Parallel4, Swap.ColumnAddedBack)]
    [InlineData(PgEngines.Dump, Swap.IndexRecreated)]
    [InlineData(PgEngines.Parallel4, Swap.IndexRecreated)]
    [InlineData(PgEngines.Dump, Swap.TriggerDropped)]
    [InlineData(PgEngines.Parallel4, Swap.TriggerDropped)]
    [InlineData(PgEngines.Dump, Swap.FunctionReplaced)]
    [InlineData(PgEngines.Parallel4, Swap.FunctionReplaced)]
    [InlineData(PgEngines.Dump, Swap.TextSearchConfigurations)]
    [InlineData(PgEngines.Parallel4, Swap.TextSearchConfigurations)]
    public async Task A_postgres_backup_waiting_for_a_lock_stores_a_table_truncated_or_rewritten_meanwhile_whole(string engine, string change)
    {
        await TestServers.RequirePostgresAsync();
        var source = await _scratch.NewPostgresDatabaseAsync();
        await PgTestDb.ExecAsync(source, "CREATE TABLE t1 (id int PRIMARY KEY)", "INSERT INTO t1 VALUES (1)",
            "CREATE TABLE t2 (id int PRIMARY KEY, v int)", "INSERT INTO t2 SELECT g, g FROM generate_series(1, 1000) g");
        await PgTestDb.ExecAsync(source, Swap.Objects);
        var backupDir = _scratch.TempDir("backups");
        await using var holder = await PgTestDb.OpenAsync(source);
        await using var transaction = await holder.BeginTransactionAsync();
        await using (var lockTable = new Npgsql.NpgsqlCommand("LOCK TABLE t1 IN ACCESS EXCLUSIVE MODE", holder, transaction))
        {
            await lockTable.ExecuteNonQueryAsync();
        }

        var backup = Ops.BackupAsync(PgEngines.Instance(engine) with { LockWaitSeconds = 60 }, source, Compression.Zstd, backupDir);
        Assert.True(await WaitForLockWaitAsync(source, backup), $"the backup did not wait for t1: {(backup.IsCompleted ? backup.Result.Error : "")}");
        await using (var command = new Npgsql.NpgsqlCommand(change, holder, transaction))
        {
            await command.ExecuteNonQueryAsync();
        }
        await transaction.CommitAsync();
        var result = await backup.WaitAsync(TimeSpan.FromSeconds(60));

        Assert.True(result.Succeeded, result.Error);
        var target = _scratch.PostgresName();
        Assert.NotNull(await Ops.RestoreAsync(PgEngines.Instance(engine), result.Location!, target));
        DbFingerprint.AssertSame(await PgTestDb.FingerprintAsync(source), await PgTestDb.FingerprintAsync(target), "restored after the change");
    }

    /// <summary>
    /// Objects changed in one transaction: names swapped (tables, functions, columns, an enum's value), a type,
    /// a column, an index, a trigger or a function changed. COPY and pg_dump read rows and catalog in the snapshot,
    /// but find tables by their current names, print values by their types' current definitions, and take
    /// definitions (an index's, a view's call, a function's defaults) from the current catalog. Found by testers:
    /// each stored a state the source never had (a's rows as b's, the view calling the other function), with exit 0.
    /// </summary>
    private static class Swap
    {
        public const string Objects = "CREATE TABLE a (v text); INSERT INTO a VALUES ('a1'), ('a2'); CREATE TABLE b (v text); INSERT INTO b VALUES ('b1'); "
            + "CREATE TABLE c (x int, y int); INSERT INTO c VALUES (1, 2); "
            + "CREATE FUNCTION plus(int) RETURNS int LANGUAGE sql IMMUTABLE AS 'SELECT $1 + 1'; "
            + "CREATE FUNCTION minus(int) RETURNS int LANGUAGE sql IMMUTABLE AS 'SELECT $1 - 1'; CREATE VIEW called AS SELECT plus(id) AS x FROM t1; "
            + "CREATE TYPE mood AS ENUM ('sad', 'ok'); CREATE TABLE moods (v mood); INSERT INTO moods VALUES ('sad'); "
            + "CREATE TYPE comp AS (a int, b int); CREATE TABLE z (c comp); INSERT INTO z VALUES (ROW(1, 10)); "
            + "CREATE TABLE r (id int, c int); INSERT INTO r VALUES (1, 1), (2, 2); "
            + "CREATE TABLE s (id int, v int); INSERT INTO s VALUES (1, 1); CREATE INDEX s_v ON s (v); "
            + "CREATE FUNCTION noop() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN RETURN NEW; END'; "
            + "CREATE TRIGGER s_noop BEFORE INSERT ON s FOR EACH ROW EXECUTE FUNCTION noop(); "
            + "CREATE FUNCTION fb(x int DEFAULT 1) RETURNS int LANGUAGE plpgsql AS 'BEGIN RETURN x + 1; END'; "
            + "CREATE TEXT SEARCH CONFIGURATION cfg_a (COPY = english); CREATE TEXT SEARCH CONFIGURATION cfg_b (COPY = simple); "
            + "CREATE TABLE docs (body text, tsv tsvector GENERATED ALWAYS AS (to_tsvector('public.cfg_a'::regconfig, body)) STORED); "
            + "INSERT INTO docs (body) VALUES ('the dogs running')";

        public const string Tables = "INSERT INTO b VALUES ('b2'); ALTER TABLE a RENAME TO swapped; ALTER TABLE b RENAME TO a; ALTER TABLE swapped RENAME TO b";

        public const string Functions = "ALTER FUNCTION plus(int) RENAME TO swapped; ALTER FUNCTION minus(int) RENAME TO plus; ALTER FUNCTION swapped(int) RENAME TO minus";

        public const string Columns = "ALTER TABLE c RENAME x TO swapped; ALTER TABLE c RENAME y TO x; ALTER TABLE c RENAME swapped TO y";

        /// <summary>COPY writes an enum value by its current name, the schema by the snapshot's: the restore failed.</summary>
        public const string EnumValue = "ALTER TYPE mood RENAME VALUE 'sad' TO 'blue'";

        // Found by a tester, each stored wrongly with exit 0 (or a restore that failed its check).

        /// <summary>COPY printed z's values by comp's new attributes, under the old ones.</summary>
        public const string CompositeType = "ALTER TYPE comp DROP ATTRIBUTE a; ALTER TYPE comp ADD ATTRIBUTE a2 int";

        /// <summary>Row 1 back from before the change, with c's values from after it.</summary>
        public const string ColumnAddedBack = "DELETE FROM r WHERE id = 1; ALTER TABLE r DROP COLUMN c; ALTER TABLE r ADD COLUMN c int DEFAULT 42";

        /// <summary>pg_dump asked for the definition of an index gone: the backup had none.</summary>
        public const string IndexRecreated = "DROP INDEX s_v; CREATE INDEX s_v ON s (v)";

        /// <summary>The trigger was counted but not dumped: every restore failed its check.</summary>
        public const string TriggerDropped = "DROP TRIGGER s_noop ON s";

        /// <summary>pg_dump printed the generated column with the current names: the restore computed it with the other configuration.</summary>
        public const string TextSearchConfigurations = "ALTER TEXT SEARCH CONFIGURATION cfg_a RENAME TO cfg_tmp; "
            + "ALTER TEXT SEARCH CONFIGURATION cfg_b RENAME TO cfg_a; ALTER TEXT SEARCH CONFIGURATION cfg_tmp RENAME TO cfg_b";

        /// <summary>The old body with the new default.</summary>
        public const string FunctionReplaced = "CREATE OR REPLACE FUNCTION fb(x int DEFAULT 100) RETURNS int LANGUAGE plpgsql AS 'BEGIN RETURN x + 2; END'";
    }

    /// <summary>
    /// A change while the backup runs, once it holds its locks, that takes no lock on a table: a blue/green
    /// swap of two schemas (found by a tester: the parallel engine stored live.t with green.t's rows and
    /// green.t with live.t's, exit 0), a function replaced; with engine: dump, whose locks are let go before
    /// pg_dump's, an index re-created (a tester's: the backup had none). The backup fails with one line and
    /// stores nothing.
    /// </summary>
    [SkippableTheory]
    [InlineData(PgEngines.Dump, "ALTER SCHEMA live RENAME TO swapped; ALTER SCHEMA green RENAME TO live; ALTER SCHEMA swapped RENAME TO green",
        "schema live was renamed green (ALTER ... RENAME)")]
    [InlineData(PgEngines.Parallel4, "ALTER SCHEMA live RENAME TO swapped; ALTER SCHEMA green RENAME TO live; ALTER SCHEMA swapped RENAME TO green",
        "schema live was renamed green (ALTER ... RENAME)")]
    [InlineData(PgEngines.Parallel4, "CREATE OR REPLACE FUNCTION live.f() RETURNS int LANGUAGE sql AS 'SELECT 2'",
        "function live.f was changed (ALTER, CREATE OR REPLACE, GRANT, ...)")]
    [InlineData(PgEngines.Dump, "DROP INDEX live.t_v; CREATE INDEX t_v ON live.t (v)", "index live.t_v was dropped")]
    public async Task A_postgres_backup_fails_when_the_schema_changes_while_it_runs(string engine, string change, string said)
    {
        await TestServers.RequirePostgresAsync();
        var source = await _scratch.NewPostgresDatabaseAsync();
        await PgTestDb.ExecAsync(source, "CREATE SCHEMA live", "CREATE TABLE live.t (id int PRIMARY KEY, v int)",
            "INSERT INTO live.t SELECT g, g FROM generate_series(1, 100) g", "CREATE INDEX t_v ON live.t (v)",
            "CREATE FUNCTION live.f() RETURNS int LANGUAGE sql AS 'SELECT 1'",
            "CREATE SCHEMA green", "CREATE TABLE green.t (id int PRIMARY KEY, v int)", "INSERT INTO green.t VALUES (1, 1)");
        // pg_dump starts 2 s late, once the backup has taken and checked its snapshot (and, parallel, holds its locks).
        var tools = SlowDumpTools.Create(_scratch.TempDir("tools"), 2);
        var started = Path.Combine(tools, "started");
        var backupDir = _scratch.TempDir("backups");

        var backup = Ops.BackupAsync(PgEngines.Instance(engine) with { ToolsDir = tools }, source, Compression.Zstd, backupDir);
        while (!File.Exists(started) && !backup.IsCompleted)
        {
            await Task.Delay(10);
        }
        Assert.True(File.Exists(started), $"the backup ended before pg_dump started: {(backup.IsCompleted ? backup.Result.Error : "")}");
        await PgTestDb.ExecAsync(source, ["BEGIN", .. change.Split("; "), "COMMIT"]);
        var failed = await backup.WaitAsync(TimeSpan.FromSeconds(60));

        Assert.False(failed.Succeeded, "a backup whose schema changed under it said OK");
        Assert.Contains(said + " after the backup's snapshot", failed.Error, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', failed.Error!);
        Assert.Empty(Ops.DataFilesUnder(backupDir));
    }

    /// <summary>
    /// engine: dump lets its own locks go once it has checked its snapshot, before pg_dump locks the tables:
    /// a table truncated in between is read empty by pg_dump, and the backup, checking the tables again
    /// once pg_dump is done, fails with one line and stores nothing.
    /// </summary>
    [SkippableFact]
    public async Task A_postgres_dump_engine_backup_fails_when_a_table_is_truncated_before_pg_dump_locks_it()
    {
        await TestServers.RequirePostgresAsync();
        var source = await _scratch.NewPostgresDatabaseAsync();
        await PgTestDb.ExecAsync(source, "CREATE TABLE t2 (id int PRIMARY KEY, v int)", "INSERT INTO t2 SELECT g, g FROM generate_series(1, 1000) g");
        // pg_dump starts 2 s late, once the backup has taken and checked its snapshot.
        var tools = SlowDumpTools.Create(_scratch.TempDir("tools"), 2);
        var started = Path.Combine(tools, "started");
        var backupDir = _scratch.TempDir("backups");

        var backup = Ops.BackupAsync(PgEngines.Instance(PgEngines.Dump) with { ToolsDir = tools }, source, Compression.Zstd, backupDir);
        while (!File.Exists(started) && !backup.IsCompleted)
        {
            await Task.Delay(10);
        }
        Assert.True(File.Exists(started), $"the backup ended before pg_dump started: {(backup.IsCompleted ? backup.Result.Error : "")}");
        await PgTestDb.ExecAsync(source, "SET lock_timeout = '10s'", "BEGIN", "TRUNCATE t2", "INSERT INTO t2 SELECT g, g FROM generate_series(1, 10) g", "COMMIT");
        var failed = await backup.WaitAsync(TimeSpan.FromSeconds(60));

        Assert.False(failed.Succeeded, "a backup whose table was truncated before pg_dump locked it said OK");
        Assert.Contains("table public.t2 was truncated, rewritten or dropped (TRUNCATE, ALTER TABLE, VACUUM FULL) after the backup's snapshot",
            failed.Error, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', failed.Error!);
        Assert.Empty(Ops.DataFilesUnder(backupDir));
    }

    /// <summary>
    /// The session of the test above truncates t2 while the backup waits, each time the backup has
    /// taken a new snapshot: after three the backup gives up with one line and stores nothing.
    /// </summary>
    [SkippableFact]
    public async Task A_postgres_backup_whose_tables_are_truncated_under_each_snapshot_gives_up_clearly()
    {
        await TestServers.RequirePostgresAsync();
        var source = await _scratch.NewPostgresDatabaseAsync();
        await PgTestDb.ExecAsync(source, "CREATE TABLE t1 (id int PRIMARY KEY)", "CREATE TABLE t2 (id int PRIMARY KEY)",
            "INSERT INTO t2 SELECT generate_series(1, 100)");
        var backupDir = _scratch.TempDir("backups");
        await using var holder = await PgTestDb.OpenAsync(source);
        var transaction = await holder.BeginTransactionAsync();
        await new Npgsql.NpgsqlCommand("LOCK TABLE t1 IN ACCESS EXCLUSIVE MODE", holder, transaction).ExecuteNonQueryAsync();

        var backup = Ops.BackupAsync(PgEngines.Instance(PgEngines.Parallel4) with { LockWaitSeconds = 60 }, source, Compression.Zstd, backupDir);
        // The backup may wait more than once in one attempt (its size read lets go of t1): the session
        // truncates t2 at each wait, and every attempt waits at least once.
        for (var round = 1; round <= 20 && await WaitForLockWaitAsync(source, backup); round++)
        {
            await new Npgsql.NpgsqlCommand("TRUNCATE t2; INSERT INTO t2 SELECT generate_series(1, 100)", holder, transaction).ExecuteNonQueryAsync();
            await transaction.CommitAsync();
            await transaction.DisposeAsync();
            // Granted once the backup has let go of t1, to take its next snapshot or to give up.
            transaction = await holder.BeginTransactionAsync();
            await new Npgsql.NpgsqlCommand("LOCK TABLE t1 IN ACCESS EXCLUSIVE MODE", holder, transaction).ExecuteNonQueryAsync();
        }
        var failed = await backup.WaitAsync(TimeSpan.FromSeconds(60));
        await transaction.CommitAsync();

        Assert.False(failed.Succeeded, "a backup went on with a table truncated under each of its snapshots");
        Assert.Contains("changed under each of the backup's 3 snapshots (last: table public.t2 was truncated, rewritten or dropped", failed.Error, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', failed.Error!);
        Assert.Empty(Ops.DataFilesUnder(backupDir));
    }

    /// <summary>Waits until a session other than the caller's waits for a lock on the database (the backup): false if the backup ended first.</summary>
    private static async Task<bool> WaitForLockWaitAsync(string database, Task<VyaBackupDb.Operations.BackupItemResult> backup)
    {
        var waiting = "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()";
        while (Convert.ToInt64(await PgTestDb.ScalarAsync(database, waiting), CultureInfo.InvariantCulture) == 0 && !backup.IsCompleted)
        {
            await Task.Delay(20);
        }
        return !backup.IsCompleted;
    }
}
