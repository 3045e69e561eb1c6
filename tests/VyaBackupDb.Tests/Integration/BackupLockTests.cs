using System.Globalization;
using MySqlConnector;
using VyaBackupDb.Pipeline;

namespace VyaBackupDb.Tests.Integration;

/// <summary>
/// Alone: a session here holds LOCK TABLES, which keeps every parallel MySQL backup on the server
/// from taking its lock (other tests' backups would wait, and their waiting would hold up this
/// test's DDL), or blocks every commit with a short innodb_lock_wait_timeout; on PostgreSQL, a
/// table locked exclusively.
/// </summary>
[CollectionDefinition(nameof(BackupLockTests), DisableParallelization = true)]
public sealed class BackupLockCollection;

/// <summary>How the parallel engines wait for the locks they need (lock_wait_seconds).</summary>
[Trait("Category", "Integration")]
[Collection(nameof(BackupLockTests))]
public sealed class BackupLockTests : IAsyncLifetime
{
    private readonly Scratch _scratch = new();

    public Task InitializeAsync() => _scratch.InitializeAsync();

    public Task DisposeAsync() => _scratch.DisposeAsync();

    /// <summary>
    /// Another session holds LOCK TABLES, so the backup lock cannot be had: the backup tries in short
    /// attempts, other sessions' DDL goes on between them, and it gives up after lock_wait_seconds with
    /// one line and no backup; once the table lock is released, a waiting backup goes on and is complete.
    /// </summary>
    [SkippableFact]
    public async Task A_backup_waiting_for_the_backup_lock_does_not_stall_the_server_and_gives_up_clearly()
    {
        await TestServers.RequireMySqlAsync();
        var source = await _scratch.NewMySqlDatabaseAsync();
        var other = await _scratch.NewMySqlDatabaseAsync();
        await MySqlTestDb.ExecAsync(source, "CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(10))", "INSERT INTO t VALUES (1, 'one'), (2, 'two')");
        await MySqlTestDb.ExecAsync(other, "CREATE TABLE locked (id INT PRIMARY KEY)");
        var backupDir = _scratch.TempDir("backups");
        await using var holder = await MySqlTestDb.OpenAsync(other);
        await using (var lockTables = new MySqlCommand("LOCK TABLES locked WRITE", holder))
        {
            await lockTables.ExecuteNonQueryAsync();
        }

        var givingUp = Ops.BackupAsync(MySqlTestDb.Instance(2) with { LockWaitSeconds = 6 }, source, Compression.Zstd, backupDir);
        for (var i = 0; i < 3 && !givingUp.IsCompleted; i++)
        {
            // Held up by one attempt (2 s) at most, never by the whole wait.
            await MySqlTestDb.ExecAsync(other, "SET SESSION lock_wait_timeout = 4", $"CREATE TABLE made_meanwhile_{i} (id INT)");
            await Task.Delay(1000);
        }
        var failed = await givingUp;
        Assert.False(failed.Succeeded, "a backup took its lock while another session held LOCK TABLES");
        Assert.Contains("could not take the backup lock for a consistent snapshot within 6 s (lock_wait_seconds)", failed.Error, StringComparison.Ordinal);
        Assert.Contains("engine: dump", failed.Error, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', failed.Error!);
        Assert.Empty(Ops.DataFilesUnder(backupDir));

        var waiting = Ops.BackupAsync(MySqlTestDb.Instance(2), source, Compression.Zstd, backupDir);
        await Task.Delay(3000);
        Assert.False(waiting.IsCompleted, "the backup did not wait for the table lock");
        await using (var unlock = new MySqlCommand("UNLOCK TABLES", holder))
        {
            await unlock.ExecuteNonQueryAsync();
        }
        var done = await waiting;
        Assert.True(done.Succeeded, done.Error);
        var target = _scratch.MySqlName();
        await Ops.RestoreAsync(MySqlTestDb.Instance(2), done.Location!, target);
        DbFingerprint.AssertSame(await MySqlTestDb.FingerprintAsync(source), await MySqlTestDb.FingerprintAsync(target), "a backup that waited for its lock");
    }

    /// <summary>
    /// Another session's DDL holds a table's metadata lock and waits for the backup lock while the
    /// schema read waits for that table (a tester's CREATE INDEX beside a backup): a deadlock the
    /// server cannot see, which held the backup and every DDL on the server until timeout_seconds.
    /// The backup gives way (releases its lock, the CREATE INDEX finishes), tries again and is
    /// complete, also when its account lacks PROCESS (it cannot see the DDL's session, only its own
    /// waiting). The fake dump tool's first run reads the table once the CREATE INDEX waits for the
    /// backup lock, so that the schema read meets it; the rest is the real dump tool. On a loaded
    /// machine the index may be built before the backup takes its lock: then the case is tried again.
    /// </summary>
    [SkippableTheory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task A_backup_whose_schema_read_waits_for_a_ddl_waiting_for_its_lock_gives_way_and_completes(bool processPrivilege)
    {
        await TestServers.RequireMySqlAsync();
        var source = await _scratch.NewMySqlDatabaseAsync();
        await MySqlTestDb.ExecAsync(source, "CREATE TABLE t (id INT PRIMARY KEY, v INT)", "INSERT INTO t SELECT seq, seq FROM seq_1_to_1000000");
        var user = "vya_bl_" + Guid.NewGuid().ToString("N")[..10];
        await MySqlTestDb.ExecAsync(null, $"CREATE USER '{user}'@'%' IDENTIFIED BY 'backup-lock-pw'",
            $"GRANT SELECT, SHOW VIEW, TRIGGER, EVENT, LOCK TABLES, RELOAD{(processPrivilege ? ", PROCESS" : "")} ON *.* TO '{user}'@'%'");
        try
        {
            for (var attempt = 1; ; attempt++)
            {
                var tools = _scratch.TempDir("tools");
                // The wait is watched as the test's own (privileged) account; the table is read as the backup's.
                await File.WriteAllTextAsync(Path.Combine(tools, "watch.cnf"),
                    $"[client]\nhost={TestServers.MySqlHost}\nport={TestServers.MySqlPort}\nuser={TestServers.MySqlUser}\n"
                    + $"password=\"{TestServers.MySqlPassword}\"\nprotocol=tcp\n");
                WrappedTool.Write(tools, "/usr/bin", "mariadb-dump", $"""
                    if mkdir '{tools}/first' 2>/dev/null; then
                      while :; do
                        state=$(/usr/bin/mariadb --defaults-file='{tools}/watch.cnf' -N -e "SELECT IF(SUM(STATE = 'Waiting for backup lock') > 0, 'met', IF(SUM(INFO LIKE 'CREATE INDEX by_v%') > 0, 'building', 'built')) FROM information_schema.PROCESSLIST")
                        [ "$state" = building ] || break
                        sleep 0.1
                      done
                      if [ "$state" = met ]; then
                        touch '{tools}/met'
                        /usr/bin/mariadb "$1" -N -e 'SELECT COUNT(*) FROM `{source}`.t' > /dev/null
                      fi
                    fi
                    exec /usr/bin/mariadb-dump "$@"
                    """);
                await using var ddl = await MySqlTestDb.OpenAsync(source);
                var createIndex = new MySqlCommand("CREATE INDEX by_v ON t (v)", ddl).ExecuteNonQueryAsync();

                var account = TestServers.MySql(password: "backup-lock-pw") with
                {
                    User = user, Engine = Config.BackupEngine.Parallel, Jobs = 2, ToolsDir = tools, LockWaitSeconds = 60,
                };
                var backup = Ops.BackupAsync(account, source, Compression.Zstd, _scratch.TempDir("backups"));
                await Task.WhenAny(backup, Task.Delay(TimeSpan.FromSeconds(150)));

                Assert.True(backup.IsCompleted, "the backup and the CREATE INDEX still wait for each other");
                var result = await backup;
                Assert.True(result.Succeeded, result.Error);
                Assert.True(createIndex.IsCompletedSuccessfully, "the backup finished before the CREATE INDEX it waited for");
                Assert.True(Directory.Exists(Path.Combine(tools, "first")), "the fake dump tool never ran");
                if (File.Exists(Path.Combine(tools, "met")))
                {
                    break;
                }
                Assert.True(attempt < 3, "the CREATE INDEX was built before the backup took its lock, 3 times");
                await MySqlTestDb.ExecAsync(source, "DROP INDEX by_v ON t");
            }
        }
        finally
        {
            await MySqlTestDb.ExecAsync(null, $"DROP USER IF EXISTS '{user}'@'%'");
        }
    }

    /// <summary>
    /// A parallel MariaDB backup blocks commits only while its connections' snapshots start, not
    /// while mariadb-dump writes the schema (here held 4 s after it has written it): the server's
    /// writes go on meanwhile, and what they moved before the snapshot is in the backup all the
    /// same: the AUTO_INCREMENT of an id given and deleted (not handed out again after a restore)
    /// and a sequence's next value that a row of the snapshot used.
    /// </summary>
    [SkippableFact]
    public async Task A_parallel_backup_lets_commits_through_while_it_dumps_the_schema_and_keeps_what_they_moved()
    {
        await TestServers.RequireMySqlAsync();
        var source = await _scratch.NewMySqlDatabaseAsync();
        await MySqlTestDb.ExecAsync(source,
            "CREATE TABLE orders (id INT AUTO_INCREMENT PRIMARY KEY, v INT NOT NULL)",
            "INSERT INTO orders (v) SELECT seq FROM seq_1_to_10",
            "CREATE SEQUENCE s NOCACHE",
            "CREATE TABLE used (n BIGINT PRIMARY KEY)",
            "INSERT INTO used VALUES (NEXTVAL(s)), (NEXTVAL(s))");
        var tools = HoldingDumpTools.Create(_scratch.TempDir("tools"), 4);
        var dumped = Path.Combine(tools, "dumped");

        var backup = Ops.BackupAsync(MySqlTestDb.Instance(2) with { ToolsDir = tools }, source, Compression.Zstd, _scratch.TempDir("backups"));
        while (!File.Exists(dumped) && !backup.IsCompleted)
        {
            await Task.Delay(10);
        }
        Assert.True(File.Exists(dumped), "the backup ended before its schema was dumped");
        var clock = System.Diagnostics.Stopwatch.StartNew();
        await MySqlTestDb.ExecAsync(source,
            "INSERT INTO orders (v) VALUES (11)", "DELETE FROM orders WHERE v = 11", "INSERT INTO used VALUES (NEXTVAL(s))");
        var writes = clock.Elapsed;
        var result = await backup;

        Assert.True(result.Succeeded, result.Error);
        Assert.True(writes < TimeSpan.FromSeconds(2), $"three commits took {writes} while the backup dumped the schema");
        var target = _scratch.MySqlName();
        await Ops.RestoreAsync(MySqlTestDb.Instance(2), result.Location!, target);
        Assert.Equal(3L, Convert.ToInt64(await MySqlTestDb.ScalarAsync(target, "SELECT COUNT(*) FROM used"), CultureInfo.InvariantCulture));
        // The next id and the next sequence value are the source's, as if no restore had happened.
        foreach (var database in new[] { source, target })
        {
            await MySqlTestDb.ExecAsync(database, "INSERT INTO orders (v) VALUES (12)", "INSERT INTO used VALUES (NEXTVAL(s))");
        }
        foreach (var next in new[] { "SELECT id FROM orders WHERE v = 12", "SELECT MAX(n) FROM used" })
        {
            Assert.Equal(await MySqlTestDb.ScalarAsync(source, next), await MySqlTestDb.ScalarAsync(target, next));
        }
    }

    /// <summary>
    /// Another session blocks every commit on the server (another backup's BACKUP STAGE
    /// BLOCK_COMMIT, or FLUSH TABLES WITH READ LOCK) while a parallel restore loads one table on four
    /// connections: MariaDB loads an empty table's first rows with a table lock (bulk insert, under
    /// unique_checks = 0) kept until that loader commits, so the other loaders of the table wait on it
    /// as long as the commit block lasts, longer than innodb_lock_wait_timeout here. They must wait
    /// as the commit does, not fail: the restore completes with the source's data once commits resume.
    /// </summary>
    [SkippableTheory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task A_parallel_restore_waits_out_a_commit_block_held_longer_than_innodb_lock_wait_timeout(bool loadDataLocal)
    {
        await TestServers.RequireMySqlAsync();
        var source = await _scratch.NewMySqlDatabaseAsync();
        await MySqlTestDb.ExecAsync(source,
            "CREATE TABLE t (id INT PRIMARY KEY, pad CHAR(200) NOT NULL) ENGINE=InnoDB",
            "INSERT INTO t SELECT seq, REPEAT(CHAR(65 + seq % 26), 200) FROM seq_1_to_150000");
        var file = await Ops.BackupOkAsync(MySqlTestDb.Instance(4), source, Compression.Zstd, _scratch.TempDir("backups"));
        var target = _scratch.MySqlName();
        var staging = Engines.RestoreStaging.StagingName(target);

        var lockWait = await MySqlTestDb.ScalarAsync(null, "SELECT @@GLOBAL.innodb_lock_wait_timeout");
        await MySqlTestDb.ExecAsync(null, "SET GLOBAL innodb_lock_wait_timeout = 1");
        try
        {
            await using var holder = await MySqlTestDb.OpenAsync();
            var restore = Ops.RestoreAsync(MySqlTestDb.Instance(4) with { LoadDataLocal = loadDataLocal }, file, target);
            // Commits are blocked once the staging table exists, before its first rows go in.
            while (!restore.IsCompleted && await MySqlTestDb.ScalarAsync(null,
                "SELECT 1 FROM information_schema.TABLES WHERE TABLE_SCHEMA = @p0 AND TABLE_NAME = 't'", staging) is null)
            {
                await Task.Delay(5);
            }
            Assert.False(restore.IsCompleted, "the restore ended before its staging table was seen");
            await using (var block = new MySqlCommand("BACKUP STAGE START; BACKUP STAGE BLOCK_DDL; BACKUP STAGE BLOCK_COMMIT", holder))
            {
                await block.ExecuteNonQueryAsync();
            }
            var loaderWaited = false;
            for (var i = 0; i < 40; i++)
            {
                loaderWaited |= Convert.ToInt64(await MySqlTestDb.ScalarAsync(null, "SELECT COUNT(*) FROM information_schema.INNODB_LOCK_WAITS"),
                    CultureInfo.InvariantCulture) > 0;
                await Task.Delay(100);
            }
            if (restore.IsCompleted)
            {
                await restore; // its error, if it failed
            }
            Assert.False(restore.IsCompleted, "the restore ended while commits were blocked");
            Assert.True(loaderWaited, "no loader waited for another's table lock while commits were blocked");
            await using (var end = new MySqlCommand("BACKUP STAGE END", holder))
            {
                await end.ExecuteNonQueryAsync();
            }
            await restore;
            DbFingerprint.AssertSame(await MySqlTestDb.FingerprintAsync(source), await MySqlTestDb.FingerprintAsync(target), "a restore that waited out a commit block");
        }
        finally
        {
            await MySqlTestDb.ExecAsync(null, $"SET GLOBAL innodb_lock_wait_timeout = {lockWait}");
        }
    }

    /// <summary>
    /// A session holds the target's table in an open transaction when a restore is ready to put
    /// the new tables in its place: the swap's RENAME waits for it, and every other query on the
    /// table would queue behind the waiting RENAME. It waits in attempts of 2 s instead, so the
    /// application's queries go on between them, and the swap goes through once the transaction ends.
    /// </summary>
    [SkippableFact]
    public async Task A_restore_waiting_to_replace_a_table_in_use_lets_other_queries_through()
    {
        await TestServers.RequireMySqlAsync();
        var source = await _scratch.NewMySqlDatabaseAsync();
        await MySqlTestDb.ExecAsync(source, "CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(10))", "INSERT INTO t VALUES (1, 'new'), (2, 'new')");
        var file = await Ops.BackupOkAsync(MySqlTestDb.Instance(2), source, Compression.Zstd, _scratch.TempDir("backups"));
        var target = await _scratch.NewMySqlDatabaseAsync();
        await MySqlTestDb.ExecAsync(target, "CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(10))", "INSERT INTO t VALUES (1, 'old')");
        await using var holder = await MySqlTestDb.OpenAsync(target);
        await using var transaction = await HoldTableAsync(holder);

        var restore = Ops.RestoreAsync(MySqlTestDb.Instance(2), file, target, force: true);
        while (!restore.IsCompleted && Convert.ToInt64(await MySqlTestDb.ScalarAsync(null,
            "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE INFO LIKE 'RENAME TABLE %' AND INSTR(INFO, @p0) > 0",
            MySqlTestDb.Quote(target)), CultureInfo.InvariantCulture) == 0)
        {
            await Task.Delay(10);
        }
        Assert.False(restore.IsCompleted, "the restore ended before its swap waited for the table");
        var slowest = TimeSpan.Zero;
        for (var i = 0; i < 6; i++)
        {
            var clock = System.Diagnostics.Stopwatch.StartNew();
            await MySqlTestDb.ScalarAsync(target, "SELECT COUNT(*) FROM t");
            slowest = clock.Elapsed > slowest ? clock.Elapsed : slowest;
            await Task.Delay(300);
        }
        Assert.True(slowest < TimeSpan.FromSeconds(3), $"a query on the table waited {slowest} behind the swap");
        Assert.False(restore.IsCompleted, "the swap did not wait for the open transaction");
        await transaction.CommitAsync();
        await restore;

        DbFingerprint.AssertSame(await MySqlTestDb.FingerprintAsync(source), await MySqlTestDb.FingerprintAsync(target), "the target replaced after the wait");
    }

    /// <summary>
    /// The transaction holding the target's table does not end: the swap gives up after
    /// lock_wait_seconds, and the target is as it was, the trigger of its other table too (each
    /// attempt drops it just before the RENAME and puts it back when the RENAME waits too long).
    /// </summary>
    [SkippableFact]
    public async Task A_restore_whose_swap_waits_out_lock_wait_seconds_leaves_the_target_unchanged()
    {
        await TestServers.RequireMySqlAsync();
        var source = await _scratch.NewMySqlDatabaseAsync();
        await MySqlTestDb.ExecAsync(source, "CREATE TABLE t (id INT PRIMARY KEY)", "INSERT INTO t VALUES (1), (2)");
        var file = await Ops.BackupOkAsync(MySqlTestDb.Instance(2), source, Compression.Zstd, _scratch.TempDir("backups"));
        var target = await _scratch.NewMySqlDatabaseAsync();
        await MySqlTestDb.ExecAsync(target,
            "CREATE TABLE t (id INT PRIMARY KEY)", "INSERT INTO t VALUES (7)",
            "CREATE TABLE audited (id INT PRIMARY KEY, n INT NOT NULL DEFAULT 0)",
            "CREATE TRIGGER count_up BEFORE INSERT ON audited FOR EACH ROW SET NEW.n = NEW.id * 10");
        var before = await MySqlTestDb.FingerprintAsync(target);
        await using var holder = await MySqlTestDb.OpenAsync(target);
        await using var transaction = await HoldTableAsync(holder);

        var error = await Assert.ThrowsAsync<Errors.OperationFailedException>(
            () => Ops.RestoreAsync(MySqlTestDb.Instance(2) with { LockWaitSeconds = 5 }, file, target, force: true));
        await transaction.RollbackAsync();

        Assert.Contains("could not be replaced (it is unchanged)", error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', error.Message);
        DbFingerprint.AssertSame(before, await MySqlTestDb.FingerprintAsync(target), "the target of a swap that gave up");
        await MySqlTestDb.ExecAsync(target, "INSERT INTO audited (id) VALUES (3)");
        Assert.Equal(30, Convert.ToInt32(await MySqlTestDb.ScalarAsync(target, "SELECT n FROM audited WHERE id = 3"), CultureInfo.InvariantCulture));
    }

    /// <summary>
    /// vya-backupdb is killed (SIGKILL) while its swap waits for a table in use. The server goes on
    /// with the dead client's RENAME: when its attempt times out, the target is as it was, with the
    /// trigger of its other table (the swap no longer drops the old tables' triggers before its
    /// RENAME, as a table with triggers cannot move to another database); when the table is
    /// released in time, the target holds the new tables, and the next restore leaves exactly the
    /// backup's content (nothing of the old tables, which the RENAME had put aside in it).
    /// </summary>
    [SkippableFact]
    public async Task A_restore_killed_while_its_swap_waits_leaves_the_old_target_whole_or_the_new_tables()
    {
        await TestServers.RequireMySqlAsync();
        var source = await _scratch.NewMySqlDatabaseAsync();
        await MySqlTestDb.ExecAsync(source,
            "CREATE TABLE t (id INT PRIMARY KEY)", "INSERT INTO t VALUES (1), (2)",
            "CREATE TABLE audited (id INT PRIMARY KEY, n INT NOT NULL DEFAULT 0)",
            "CREATE TRIGGER count_up BEFORE INSERT ON audited FOR EACH ROW SET NEW.n = NEW.id * 100");
        var backupDir = _scratch.TempDir("backups");
        var file = await Ops.BackupOkAsync(TestServers.Instance(Config.Dbms.MySql), source, Compression.Zstd, backupDir);
        var config = await Cli.WriteConfigAsync(_scratch.TempDir("cfg"), backupDir);
        var target = await _scratch.NewMySqlDatabaseAsync();
        _scratch.TrackMySql(Engines.RestoreStaging.StagingName(target));
        _scratch.TrackMySql(Engines.RestoreStaging.ReplacedName(target));
        await MySqlTestDb.ExecAsync(target,
            "CREATE TABLE t (id INT PRIMARY KEY)", "INSERT INTO t VALUES (7)",
            "CREATE TABLE audited (id INT PRIMARY KEY, n INT NOT NULL DEFAULT 0)",
            "CREATE TRIGGER count_up BEFORE INSERT ON audited FOR EACH ROW SET NEW.n = NEW.id * 10");
        var before = await MySqlTestDb.FingerprintAsync(target);
        var mySqlId = TestServers.Id(Config.Dbms.MySql);

        async Task KillWhileTheSwapWaitsAsync(bool releaseAtOnce)
        {
            await using var holder = await MySqlTestDb.OpenAsync(target);
            await using var transaction = await HoldTableAsync(holder);
            using var killed = Run.StartCli("restore", "--file", file, "--instance", mySqlId, "--target", target, "--force", "--config", config);
            var clock = System.Diagnostics.Stopwatch.StartNew();
            while (!await RenameRunsAsync())
            {
                Assert.False(killed.HasExited, "the restore ended before its swap waited for the table");
                Assert.True(clock.Elapsed < TimeSpan.FromSeconds(60), "the swap did not start within 60 s");
                await Task.Delay(10);
            }
            killed.Kill();
            await killed.WaitForExitAsync();
            if (releaseAtOnce)
            {
                await transaction.RollbackAsync();
            }
            while (await RenameRunsAsync())
            {
                await Task.Delay(10);
            }
        }

        async Task<bool> RenameRunsAsync() => Convert.ToInt64(await MySqlTestDb.ScalarAsync(null,
            "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE INFO LIKE 'RENAME TABLE %' AND INSTR(INFO, @p0) > 0",
            MySqlTestDb.Quote(target)), CultureInfo.InvariantCulture) > 0;

        await KillWhileTheSwapWaitsAsync(releaseAtOnce: false);
        DbFingerprint.AssertSame(before, await MySqlTestDb.FingerprintAsync(target), "the target of a restore killed while its swap waited");
        await MySqlTestDb.ExecAsync(target, "INSERT INTO audited (id) VALUES (3)");
        Assert.Equal(30, Convert.ToInt32(await MySqlTestDb.ScalarAsync(target, "SELECT n FROM audited WHERE id = 3"), CultureInfo.InvariantCulture));

        await KillWhileTheSwapWaitsAsync(releaseAtOnce: true);
        Assert.Equal(2L, Convert.ToInt64(await MySqlTestDb.ScalarAsync(target, "SELECT COUNT(*) FROM t"), CultureInfo.InvariantCulture));
        var next = await Run.CliAsync("restore", "--file", file, "--instance", mySqlId, "--target", target, "--force", "--config", config);
        Assert.True(next.ExitCode == 0, next.ToString());
        DbFingerprint.AssertSame(await MySqlTestDb.FingerprintAsync(source), await MySqlTestDb.FingerprintAsync(target), "the target after the next restore");
    }

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
        Assert.Equal(2L, Convert.ToInt64(await PgTestDb.ScalarAsync(source, "SELECT count(*) FROM t"), System.Globalization.CultureInfo.InvariantCulture));
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

    /// <summary>
    /// Found by a tester: mariadb-dump's --single-transaction does not isolate DDL. A table altered in place
    /// (ALGORITHM=INSTANT or INPLACE) after the dump's snapshot is read with its new columns and its rows of
    /// before, without an error: a migration that moved a column left it in neither table, and the backup
    /// said OK. The backup now compares the database's columns and its tables' CREATE_TIME before and after
    /// the dump (a column dropped and added back leaves the columns as they were, and the column's rows at
    /// its default), and fails. So does a routine or trigger created meanwhile (a tester's): the dump held it,
    /// the manifest's counts did not, and every restore failed its check.
    /// </summary>
    [SkippableTheory]
    [InlineData("ALTER TABLE b DROP COLUMN c, ALGORITHM=INSTANT")]
    [InlineData("ALTER TABLE b DROP COLUMN c, ALGORITHM=INSTANT; ALTER TABLE b ADD COLUMN c int AFTER id, ALGORITHM=INSTANT")]
    [InlineData("CREATE PROCEDURE made_meanwhile() SELECT 1")]
    [InlineData("CREATE TRIGGER made_meanwhile BEFORE INSERT ON b FOR EACH ROW SET NEW.d = 1")]
    public async Task A_mysql_dump_engine_backup_fails_when_its_schema_changes_while_it_dumps(string change)
    {
        await TestServers.RequireMySqlAsync();
        var source = await _scratch.NewMySqlDatabaseAsync();
        // a: more than the pipes hold, so that the dump waits in it with its snapshot taken; b: dumped after it.
        await MySqlTestDb.ExecAsync(source, "CREATE TABLE a (id int PRIMARY KEY, v varchar(200))",
            "INSERT INTO a SELECT seq, REPEAT('x', 200) FROM seq_1_to_20000",
            "CREATE TABLE b (id int PRIMARY KEY, c int, d int)", "INSERT INTO b VALUES (1, 10, 100)");
        var tools = _scratch.TempDir("tools");
        var go = Path.Combine(tools, "go");
        // The dump's output held back until the test says go.
        WrappedTool.Write(tools, "/usr/bin", "mariadb-dump",
            $"\"/usr/bin/mariadb-dump\" \"$@\" | {{ while [ ! -f '{go}' ]; do sleep 0.05; done; cat; }}");
        var backupDir = _scratch.TempDir("backups");
        var backup = Ops.BackupAsync(TestServers.MySql() with { ToolsDir = tools }, source, Compression.Zstd, backupDir);
        // The dump's session (the only one in the database): its output is held, so it cannot end before go.
        var readingA = "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE DB = @p0";
        var clock = System.Diagnostics.Stopwatch.StartNew();
        while (Convert.ToInt64(await MySqlTestDb.ScalarAsync(null, readingA, source), CultureInfo.InvariantCulture) == 0 && !backup.IsCompleted
            && clock.Elapsed < TimeSpan.FromSeconds(60))
        {
            await Task.Delay(20);
        }
        var waiting = !backup.IsCompleted && clock.Elapsed < TimeSpan.FromSeconds(60);
        if (waiting)
        {
            // In a later second than the backup's first look (CREATE_TIME counts whole seconds).
            await Task.Delay(1100);
            await MySqlTestDb.ExecAsync(source, change.Split("; "));
        }
        await File.WriteAllTextAsync(go, "");
        Assert.True(waiting, $"the dump did not wait in table a: {(backup.IsCompleted ? backup.Result.Error : "")}");
        var failed = await backup.WaitAsync(TimeSpan.FromSeconds(60));

        Assert.False(failed.Succeeded, "a backup during which a column was dropped said OK");
        Assert.Contains($"the schema of '{source}' changed while it was dumped (ALTER TABLE", failed.Error, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', failed.Error!);
        Assert.Empty(Ops.DataFilesUnder(backupDir));
    }

    /// <summary>
    /// Found by a tester: DDL after a parallel MariaDB backup's snapshots, on a table its readers had not come
    /// to yet, was read wrongly with no error: tables swapped by RENAME TABLE, a partition exchanged, two
    /// columns' names swapped in place. Each stored a state the source never had, with exit 0. The readers now
    /// hold every table from their snapshots on: the DDL waits for the backup, which stores the database as it
    /// was before.
    /// </summary>
    [SkippableTheory]
    [InlineData("RENAME TABLE a TO swapped, b TO a, swapped TO b")]
    [InlineData("ALTER TABLE p EXCHANGE PARTITION p0 WITH TABLE b")]
    [InlineData("ALTER TABLE c CHANGE x y int, CHANGE y x int, ALGORITHM=INSTANT")]
    public async Task A_parallel_mysql_backup_stores_the_database_as_it_was_before_ddl_issued_while_it_reads(string change)
    {
        await TestServers.RequireMySqlAsync();
        var source = await _scratch.NewMySqlDatabaseAsync();
        // big: read first (the largest), long enough for the DDL to come while it is read.
        await MySqlTestDb.ExecAsync(source, "CREATE TABLE big (id int PRIMARY KEY, v varchar(200))",
            "INSERT INTO big SELECT seq, REPEAT('x', 200) FROM seq_1_to_300000",
            "CREATE TABLE a (id int, d int, PRIMARY KEY (id, d))", "INSERT INTO a VALUES (1, 1), (2, 1), (3, 1)",
            "CREATE TABLE b LIKE a", "INSERT INTO b VALUES (100, 5), (101, 5)",
            "CREATE TABLE p (id int, d int, PRIMARY KEY (id, d)) PARTITION BY RANGE (d) (PARTITION p0 VALUES LESS THAN (10), PARTITION p1 VALUES LESS THAN MAXVALUE)",
            "INSERT INTO p SELECT seq, seq % 20 FROM seq_1_to_40",
            "CREATE TABLE c (id int PRIMARY KEY, x int, y int)", "INSERT INTO c VALUES (1, 10, 20)");
        var before = await MySqlTestDb.FingerprintAsync(source);

        var backup = Ops.BackupAsync(MySqlTestDb.Instance(1), source, Compression.Zstd, _scratch.TempDir("backups"));
        // The readers' sessions have no current database: their query names it.
        await using var watch = await MySqlTestDb.OpenAsync();
        await using var readingBig = new MySqlCommand(
            "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE INFO LIKE CONCAT('SELECT CAST(% FROM `', @db, '`.`big`%')", watch);
        readingBig.Parameters.AddWithValue("@db", source);
        while (Convert.ToInt64(await readingBig.ExecuteScalarAsync(), CultureInfo.InvariantCulture) == 0 && !backup.IsCompleted)
        {
        }
        Assert.False(backup.IsCompleted, $"the backup ended before it read table big: {(backup.IsCompleted ? backup.Result.Error : "")}");
        var ddl = MySqlTestDb.ExecAsync(source, "SET SESSION lock_wait_timeout = 60", change);
        var result = await backup.WaitAsync(TimeSpan.FromSeconds(60));
        await ddl.WaitAsync(TimeSpan.FromSeconds(60));

        Assert.True(result.Succeeded, result.Error);
        var target = _scratch.MySqlName();
        await Ops.RestoreAsync(MySqlTestDb.Instance(1), result.Location!, target);
        DbFingerprint.AssertSame(before, await MySqlTestDb.FingerprintAsync(target), "restored from a backup during which DDL was issued");
    }

    /// <summary>
    /// An ALTER TABLE asked for while a parallel backup holds its lock (here, while its schema dump is held
    /// up) waits for the lock, then for the backup's readers, which hold the table; a session that does not
    /// hold it queues behind the ALTER. The backup planning the key ranges of a large table was such a
    /// session: it waited for the ALTER, which waited for the backup.
    /// </summary>
    [SkippableFact]
    public async Task A_parallel_mysql_backup_is_not_held_up_by_an_alter_that_waits_for_it()
    {
        await TestServers.RequireMySqlAsync();
        var source = await _scratch.NewMySqlDatabaseAsync();
        await MySqlTestDb.ExecAsync(source, "CREATE TABLE big (id int PRIMARY KEY, v varchar(200))",
            "INSERT INTO big SELECT seq, REPEAT('x', 200) FROM seq_1_to_20000", "ANALYZE TABLE big");
        var before = await MySqlTestDb.FingerprintAsync(source);
        var tools = HoldingDumpTools.Create(_scratch.TempDir("tools"), 3);
        var dumped = Path.Combine(tools, "dumped");
        var previous = VyaBackupDb.Engines.MySql.MySqlEngine.SetRangeBytes;
        // big is read in key ranges.
        VyaBackupDb.Engines.MySql.MySqlEngine.SetRangeBytes = 1 << 20;
        try
        {
            var backup = Ops.BackupAsync(MySqlTestDb.Instance(2) with { ToolsDir = tools }, source, Compression.Zstd, _scratch.TempDir("backups"));
            while (!File.Exists(dumped) && !backup.IsCompleted)
            {
                await Task.Delay(10);
            }
            Assert.True(File.Exists(dumped), $"the backup ended before its schema was dumped: {(backup.IsCompleted ? backup.Result.Error : "")}");
            var alter = MySqlTestDb.ExecAsync(source, "SET SESSION lock_wait_timeout = 120", "ALTER TABLE big ADD COLUMN added int");
            var result = await backup.WaitAsync(TimeSpan.FromSeconds(60));
            await alter.WaitAsync(TimeSpan.FromSeconds(30));

            Assert.True(result.Succeeded, result.Error);
            var target = _scratch.MySqlName();
            await Ops.RestoreAsync(MySqlTestDb.Instance(2), result.Location!, target);
            DbFingerprint.AssertSame(before, await MySqlTestDb.FingerprintAsync(target), "restored from a backup that an ALTER waited for");
        }
        finally
        {
            VyaBackupDb.Engines.MySql.MySqlEngine.SetRangeBytes = previous;
        }
    }

    /// <summary>Reads table t in a transaction left open: the session holds the table (its metadata lock) until the transaction ends.</summary>
    private static async Task<MySqlTransaction> HoldTableAsync(MySqlConnection holder)
    {
        var transaction = await holder.BeginTransactionAsync();
        await using var read = new MySqlCommand("SELECT COUNT(*) FROM t", holder, transaction);
        await read.ExecuteScalarAsync();
        return transaction;
    }
}
