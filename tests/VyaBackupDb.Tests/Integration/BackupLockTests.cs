using System.Globalization;
using MySqlConnector;
using VyaBackupDb.Pipeline;

namespace VyaBackupDb.Tests.Integration;

/// <summary>
/// Alone: a session here holds LOCK TABLES, which keeps every parallel MySQL backup on the server
/// from taking its lock (other tests' backups would wait, and their waiting would hold up this
/// test's DDL), or blocks every commit with a short innodb_lock_wait_timeout. PostgreSQL's table
/// locks touch one database only: those tests are PostgresLockTests, run beside the others.
/// </summary>
[CollectionDefinition(nameof(BackupLockTests), DisableParallelization = true)]
public sealed class BackupLockCollection;

/// <summary>How MariaDB backups and restores wait for the locks they need (lock_wait_seconds).</summary>
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
