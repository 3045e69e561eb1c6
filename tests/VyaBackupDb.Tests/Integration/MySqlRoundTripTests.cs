using System.Security.Cryptography;
using VyaBackupDb.Pipeline;

namespace VyaBackupDb.Tests.Integration;

/// <summary>
/// Back up a MariaDB database full of awkward data and objects with each codec, restore it under
/// a new (awkward) name, and require the copy to equal the source: every row's bytes, every column
/// definition, partition, routine, trigger, event and view. The source must not change.
/// </summary>
[Trait("Category", "Integration")]
public sealed class MySqlRoundTripTests : IAsyncLifetime
{
    public const string Emoji = "emoji 😀👍🏽 𝄞 ü ß 中文 ' \" \\ \0 \r\n ; -- /* */ `USE x`;";
    public const int BigRowBytes = 5 * 1024 * 1024;

    private readonly Scratch _scratch = new();

    public Task InitializeAsync() => _scratch.InitializeAsync();

    public Task DisposeAsync() => _scratch.DisposeAsync();

    public static byte[] AllBytes() => [.. Enumerable.Range(0, 256).Select(i => (byte)i)];

    /// <summary>Fills <paramref name="db"/> with the hostile fixture; returns the multi-MB payload when asked for one.</summary>
    public static async Task<byte[]?> CreateHostileAsync(string db, bool bigRow)
    {
        await MySqlTestDb.ExecAsync(db,
            """
            CREATE TABLE `hostile table` (
              id INT NOT NULL AUTO_INCREMENT PRIMARY KEY,
              vb VARBINARY(300) NULL,
              bl BLOB NULL,
              txt TEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL,
              note VARCHAR(100) NULL,
              e ENUM('a', 'b', 'c d') NULL,
              s SET('x', 'y', 'z') NULL,
              d DECIMAL(20, 6) NULL,
              dt DATETIME(6) NULL,
              bits BIT(8) NULL,
              dbl DOUBLE NULL,
              js JSON NULL
            ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci
            """,
            "CREATE TABLE audit (id INT NOT NULL AUTO_INCREMENT PRIMARY KEY, msg VARCHAR(200) NOT NULL) ENGINE=InnoDB",
            "CREATE TABLE `we``ird 'tab\"le` (`col umn` INT NOT NULL PRIMARY KEY, `qu\"ote` VARCHAR(20)) ENGINE=InnoDB",
            """
            CREATE TABLE parts (id INT NOT NULL, v VARCHAR(20) NOT NULL, PRIMARY KEY (id)) ENGINE=InnoDB
            PARTITION BY RANGE (id) (PARTITION p_low VALUES LESS THAN (100), PARTITION p_high VALUES LESS THAN MAXVALUE)
            """,
            "CREATE TABLE big (id INT NOT NULL PRIMARY KEY, payload LONGBLOB NOT NULL) ENGINE=InnoDB");

        // Routines, trigger and event bodies hold ';' (the client must not split them) and quotes.
        await MySqlTestDb.ExecAsync(db,
            """
            CREATE PROCEDURE p_semicolons(IN n INT)
            BEGIN
              DECLARE x INT DEFAULT 0;
              SET x = n + 1;
              SELECT x, 'a;b' AS t, "c;'d" AS u;
            END
            """,
            """
            CREATE FUNCTION f_semicolons(s TEXT) RETURNS TEXT CHARSET utf8mb4 DETERMINISTIC
            BEGIN
              DECLARE r TEXT;
              SET r = CONCAT(s, ';', '--', '/*');
              RETURN r;
            END
            """,
            """
            CREATE TRIGGER trg_audit AFTER INSERT ON `hostile table` FOR EACH ROW
            BEGIN
              INSERT INTO audit (msg) VALUES (CONCAT('insert;', NEW.id));
            END
            """,
            """
            CREATE EVENT ev_cleanup ON SCHEDULE EVERY 1 DAY STARTS '2030-01-01 00:00:00' DISABLE
            DO BEGIN
              DELETE FROM audit WHERE id < 0;
              UPDATE audit SET msg = msg WHERE id = 0;
            END
            """,
            "CREATE VIEW v_hostile AS SELECT id, e, f_semicolons(note) AS n FROM `hostile table` WHERE note IS NOT NULL");

        var all = AllBytes();
        var reversed = all.Reverse().ToArray();
        await MySqlTestDb.ExecWithAsync(db,
            "INSERT INTO `hostile table` (vb, bl, txt, note, e, s, d, dt, bits, dbl, js) VALUES "
            + "(@p0, @p1, @p2, 'n;1', 'c d', 'x,z', 12345678901234.123456, '2026-01-13 15:54:40.123456', b'10101010', PI(), '{\"k\": [1, \"😀\"]}')",
            all, reversed, Emoji);
        await MySqlTestDb.ExecAsync(db,
            "INSERT INTO `hostile table` (vb) VALUES (NULL)",
            "INSERT INTO `hostile table` (vb, bl, txt, note, e, s, d, dt, bits, dbl, js) VALUES ('', '', '', '', 'a', '', 0, '1000-01-01 00:00:00', b'0', -1.5e-300, '[]')",
            "INSERT INTO `we``ird 'tab\"le` VALUES (1, 'a`b'), (2, NULL), (3, 'x\"y''z')",
            "INSERT INTO parts VALUES (1, 'low'), (99, 'low;2'), (100, 'high'), (100000, 'higher')");
        // Every byte value in a row of its own too: a 1-byte value per row, NUL included.
        for (var i = 0; i < 256; i += 64)
        {
            var values = string.Join(", ", Enumerable.Range(i, 64).Select(b => $"(UNHEX('{b:X2}'), 'byte {b}')"));
            await MySqlTestDb.ExecAsync(db, $"INSERT INTO `hostile table` (vb, note) VALUES {values}");
        }

        if (!bigRow)
        {
            return null;
        }
        var payload = RandomNumberGenerator.GetBytes(BigRowBytes);
        await MySqlTestDb.ExecWithAsync(db, "INSERT INTO big VALUES (1, @p0)", payload);
        return payload;
    }

    /// <param name="jobs">0: engine: dump; N: engine: parallel on N connections (see <see cref="MySqlTestDb.Instance"/>).</param>
    [SkippableTheory]
    [InlineData(Compression.None, 0)]
    [InlineData(Compression.Gzip, 0)]
    [InlineData(Compression.Zstd, 0)]
    [InlineData(Compression.Zip, 0)]
    [InlineData(Compression.None, 1)]
    [InlineData(Compression.Zstd, 1)]
    [InlineData(Compression.Gzip, 4)]
    [InlineData(Compression.Zstd, 4)]
    public async Task Backup_then_restore_under_a_new_name_gives_an_identical_copy(Compression compression, int jobs)
    {
        var instance = MySqlTestDb.Instance(jobs);
        await TestServers.RequireMySqlAsync();
        var source = await _scratch.NewMySqlDatabaseAsync();
        // The target's name is awkward on purpose: a space, a quote and a backtick.
        var target = _scratch.TrackMySql(_scratch.MySqlName() + " co`py'd");
        var payload = await CreateHostileAsync(source, bigRow: true);
        var before = await MySqlTestDb.FingerprintAsync(source);
        Assert.Equal(["ev_cleanup"], before.Names("event"));
        Assert.Equal(["f_semicolons", "p_semicolons"], before.Names("routine"));
        Assert.Equal(["trg_audit"], before.Names("trigger"));
        Assert.Equal(["v_hostile"], before.Names("view"));
        Assert.Equal(5, before.Names("table").Count);

        var backupDir = _scratch.TempDir("backups");
        var file = await Ops.BackupOkAsync(instance, source, compression, backupDir);
        Assert.EndsWith(jobs == 0 ? compression.Extension() : compression.TarExtension(), file, StringComparison.Ordinal);
        Assert.Equal([Path.GetRelativePath(backupDir, file)], Ops.DataFilesUnder(backupDir));

        var result = await Ops.RestoreAsync(instance, file, target);

        Assert.NotNull(result);
        Assert.Equal(5, result.TablesRestored);
        DbFingerprint.AssertSame(before, await MySqlTestDb.FingerprintAsync(target), $"restored copy ({compression}, jobs {jobs})");
        DbFingerprint.AssertSame(before, await MySqlTestDb.FingerprintAsync(source), "source after backup and restore");

        // The values themselves, read back with the driver (not only through the server's hashes).
        Assert.Equal(AllBytes(), await MySqlTestDb.ScalarAsync(target, "SELECT vb FROM `hostile table` WHERE id = 1"));
        Assert.Equal(Emoji, await MySqlTestDb.ScalarAsync(target, "SELECT txt FROM `hostile table` WHERE id = 1"));
        Assert.Null(await MySqlTestDb.ScalarAsync(target, "SELECT txt FROM `hostile table` WHERE id = 2"));
        Assert.Equal("", await MySqlTestDb.ScalarAsync(target, "SELECT txt FROM `hostile table` WHERE id = 3"));
        var restoredPayload = (byte[])(await MySqlTestDb.ScalarAsync(target, "SELECT payload FROM big WHERE id = 1"))!;
        Assert.Equal(BigRowBytes, restoredPayload.Length);
        Assert.True(payload.AsSpan().SequenceEqual(restoredPayload), "the multi-MB row came back different");
        // The routines work in the copy.
        Assert.Equal("a;--/*", await MySqlTestDb.ScalarAsync(target, "SELECT f_semicolons('a')"));
    }

    /// <summary>
    /// mysqldump writes "ALTER DATABASE `source` CHARACTER SET ..." around a routine whose
    /// database collation differs from the database's current default, even without --databases.
    /// Restored under a new name on a server without the source (the usual disaster case), that
    /// statement must not hit a database that is not the target. Needs the statement filter.
    /// </summary>
    [SkippableTheory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(4)]
    public async Task Routine_with_another_database_collation_restores_under_a_new_name_when_the_source_is_gone(int jobs)
    {
        var instance = MySqlTestDb.Instance(jobs);
        await TestServers.RequireMySqlAsync();
        var source = await _scratch.NewMySqlDatabaseAsync();
        var target = _scratch.MySqlName();
        await MySqlTestDb.ExecAsync(source,
            "CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(20))",
            "INSERT INTO t VALUES (1, 'one')",
            "CREATE FUNCTION f_one() RETURNS INT DETERMINISTIC RETURN 1");
        await MySqlTestDb.ExecAsync(null, $"ALTER DATABASE {MySqlTestDb.Quote(source)} CHARACTER SET latin1 COLLATE latin1_swedish_ci");
        var before = await MySqlTestDb.FingerprintAsync(source);
        var file = await Ops.BackupOkAsync(instance, source, Compression.Zstd, _scratch.TempDir("backups"));
        await MySqlTestDb.DropIfExistsAsync(source);

        var error = await Record.ExceptionAsync(() => Ops.RestoreAsync(instance, file, target));

        Assert.False(await MySqlTestDb.ExistsAsync(source), "the restore under a new name created the source database");
        Assert.True(error is null, $"restore failed: {error?.Message}");
        static DbFingerprint WithoutDefaults(DbFingerprint f) => new(f.Lines.Where(l => !l.StartsWith("database defaults", StringComparison.Ordinal)));
        DbFingerprint.AssertSame(WithoutDefaults(before), WithoutDefaults(await MySqlTestDb.FingerprintAsync(target)), "the restored copy");
        Assert.Equal(1, Convert.ToInt32(await MySqlTestDb.ScalarAsync(target, "SELECT f_one()"), System.Globalization.CultureInfo.InvariantCulture));
    }

    /// <summary>
    /// A view records no sql_mode: the swap created views under the mode the routine created just
    /// before had left (NO_BACKSLASH_ESCAPES), which doubled the backslashes of their literals (the
    /// view then returned no row) or failed on a doubled quote after the swap. Both engines, over
    /// an existing target.
    /// </summary>
    [SkippableTheory]
    [InlineData(0)]
    [InlineData(4)]
    public async Task Views_mean_the_same_after_a_routine_created_under_no_backslash_escapes(int jobs)
    {
        await TestServers.RequireMySqlAsync();
        var instance = MySqlTestDb.Instance(jobs);
        var source = await _scratch.NewMySqlDatabaseAsync();
        await MySqlTestDb.ExecAsync(source,
            "CREATE TABLE t (id INT PRIMARY KEY, p VARCHAR(50))",
            "INSERT INTO t VALUES (1, 'C:\\\\dir'), (2, 'it''s'), (3, 'plain')",
            "CREATE VIEW v_path AS SELECT id, p, 'C:\\\\dir' AS lit FROM t WHERE p LIKE 'C:\\\\\\\\%'",
            "CREATE VIEW v_quote AS SELECT id FROM t WHERE p <> 'it''s'",
            "SET SESSION sql_mode = 'NO_BACKSLASH_ESCAPES'",
            "CREATE PROCEDURE p_nbe() SELECT 'x\\' AS y");
        Assert.Equal(1L, Convert.ToInt64(await MySqlTestDb.ScalarAsync(source, "SELECT COUNT(*) FROM v_path"), System.Globalization.CultureInfo.InvariantCulture));
        var before = await MySqlTestDb.FingerprintAsync(source);
        var file = await Ops.BackupOkAsync(instance, source, Compression.Zstd, _scratch.TempDir("backups"));
        var target = await _scratch.NewMySqlDatabaseAsync();
        await MySqlTestDb.ExecAsync(target, "CREATE TABLE old_t (id INT PRIMARY KEY)", "CREATE VIEW old_v AS SELECT 1 AS one");

        await Ops.RestoreAsync(instance, file, target, force: true);

        DbFingerprint.AssertSame(before, await MySqlTestDb.FingerprintAsync(target), $"the restored copy (jobs {jobs})");
        Assert.Equal(1L, Convert.ToInt64(await MySqlTestDb.ScalarAsync(target, "SELECT COUNT(*) FROM v_path"), System.Globalization.CultureInfo.InvariantCulture));
        Assert.Equal(2L, Convert.ToInt64(await MySqlTestDb.ScalarAsync(target, "SELECT COUNT(*) FROM v_quote"), System.Globalization.CultureInfo.InvariantCulture));
    }
    /// <summary>
    /// A view, routine, trigger or event reads and compares its literals under the character set
    /// and collation it was created under. The swap re-created them under its own utf8mb4 session:
    /// 'abc' = 'ABC' created under utf8mb4_bin became true, and a latin1 'é' a utf8mb4 one. The
    /// database collation each records (here not the database's own) comes back too. Both engines.
    /// </summary>
    [SkippableTheory]
    [InlineData(0)]
    [InlineData(4)]
    public async Task Objects_keep_the_character_set_and_collation_they_were_created_under(int jobs)
    {
        await TestServers.RequireMySqlAsync();
        var instance = MySqlTestDb.Instance(jobs);
        var source = await _scratch.NewMySqlDatabaseAsync();
        await MySqlTestDb.ExecAsync(source,
            "CREATE TABLE t (id INT PRIMARY KEY, s VARCHAR(10), bin_hit INT, lat VARCHAR(40))",
            "SET NAMES utf8mb4 COLLATE utf8mb4_bin",
            "CREATE FUNCTION f_bin() RETURNS INT DETERMINISTIC RETURN 'abc' = 'ABC'",
            "CREATE PROCEDURE p_bin() SELECT 'abc' = 'ABC' AS eq",
            "CREATE VIEW v_bin AS SELECT 'abc' = 'ABC' AS eq",
            "CREATE TRIGGER tr_bin BEFORE INSERT ON t FOR EACH ROW SET NEW.bin_hit = ('abc' = 'ABC')",
            "CREATE EVENT ev_bin ON SCHEDULE EVERY 1 DAY DISABLE DO SELECT 'abc' = 'ABC'");
        // This driver sends UTF-8: the server converts each statement to latin1 and runs it as a
        // latin1 client's would be ('é' is the byte E9).
        string[] latin1 =
        [
            "CREATE FUNCTION f_lat() RETURNS VARCHAR(40) DETERMINISTIC RETURN CONCAT('é', COLLATION('x'))",
            "CREATE PROCEDURE p_lat() SELECT CONCAT('é', COLLATION('x')) AS l",
            "CREATE VIEW v_lat AS SELECT CONCAT('é', COLLATION('x')) AS l",
            "CREATE TRIGGER tr_lat BEFORE INSERT ON t FOR EACH ROW SET NEW.lat = CONCAT('é', COLLATION('x'))",
            "CREATE EVENT ev_lat ON SCHEDULE EVERY 1 DAY DISABLE DO SELECT 'é'",
        ];
        await using (var connection = await MySqlTestDb.OpenAsync(source))
        {
            foreach (var sql in latin1)
            {
                await using var command = new MySqlConnector.MySqlCommand(
                    "SET NAMES latin1; EXECUTE IMMEDIATE CONVERT(CONVERT(CONVERT(@p0 USING utf8mb4) USING latin1) USING binary); SET NAMES utf8mb4", connection);
                command.Parameters.AddWithValue("@p0", System.Text.Encoding.UTF8.GetBytes(sql));
                await command.ExecuteNonQueryAsync();
            }
        }
        await MySqlTestDb.ExecAsync(null, $"ALTER DATABASE {MySqlTestDb.Quote(source)} CHARACTER SET latin1 COLLATE latin1_german1_ci");
        var results = new[]
        {
            "SELECT f_bin()", "SELECT eq FROM v_bin", "SELECT f_lat()", "SELECT l FROM v_lat",
            "INSERT INTO t (id, s) VALUES (1, 'abc')", "SELECT CONCAT(bin_hit, ' ', lat) FROM t", "DELETE FROM t",
        };
        async Task<string> ResultsAsync(string db)
        {
            var values = new List<string>();
            foreach (var sql in results)
            {
                values.Add(Convert.ToString(await MySqlTestDb.ScalarAsync(db, sql), System.Globalization.CultureInfo.InvariantCulture) ?? "<null>");
            }
            values.Add(Convert.ToString(await MySqlTestDb.ScalarAsync(db, "SELECT HEX(ROUTINE_DEFINITION) FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = @p0 AND ROUTINE_NAME = 'f_lat'", db),
                System.Globalization.CultureInfo.InvariantCulture)!);
            return string.Join(" | ", values);
        }
        var sourceResults = await ResultsAsync(source);
        Assert.Equal("0 | 0 | élatin1_swedish_ci | élatin1_swedish_ci |  | 0 élatin1_swedish_ci |  | "
            + Convert.ToHexString("RETURN CONCAT('é', COLLATION('x'))"u8), sourceResults);
        var before = await MySqlTestDb.FingerprintAsync(source);
        Assert.EndsWith("created under latin1 latin1_swedish_ci database utf8mb4_unicode_ci", before.Lines.Single(l => l.StartsWith("routine f_lat", StringComparison.Ordinal)), StringComparison.Ordinal);
        var file = await Ops.BackupOkAsync(instance, source, Compression.Zstd, _scratch.TempDir("backups"));
        var target = _scratch.MySqlName();

        await Ops.RestoreAsync(instance, file, target);

        Assert.Equal(sourceResults, await ResultsAsync(target));
        DbFingerprint.AssertSame(before, await MySqlTestDb.FingerprintAsync(target), $"the restored copy (jobs {jobs})");
    }

    /// <summary>
    /// MariaDB writes a sequence default as nextval(`source`.`s`): the copy drew its numbers from the source's
    /// sequence (and from nowhere once the source was gone), and a dump's LOCK TABLES made the rows of such a
    /// table unloadable (the sequence was not locked), so engine: dump backups of it never restored.
    /// </summary>
    [SkippableTheory]
    [InlineData(0)]
    [InlineData(2)]
    public async Task A_copy_draws_its_defaults_from_its_own_sequence(int jobs)
    {
        await TestServers.RequireMySqlAsync();
        var instance = MySqlTestDb.Instance(jobs);
        var source = await _scratch.NewMySqlDatabaseAsync();
        await MySqlTestDb.ExecAsync(source,
            "CREATE SEQUENCE sq",
            "CREATE TABLE d (id INT PRIMARY KEY DEFAULT (NEXTVAL(sq)), n INT)",
            "INSERT INTO d (n) VALUES (1), (2)",
            "CREATE VIEW v AS SELECT id, n FROM d");
        var file = await Ops.BackupOkAsync(instance, source, Compression.Zstd, _scratch.TempDir("backups"));
        var sourceNext = await MySqlTestDb.ScalarAsync(source, "SELECT next_not_cached_value FROM sq");
        var target = _scratch.MySqlName();

        await Ops.RestoreAsync(instance, file, target);

        var create = (string)(await MySqlTestDb.ScalarAsync(target, "SELECT COLUMN_DEFAULT FROM information_schema.COLUMNS "
            + $"WHERE TABLE_SCHEMA = '{target}' AND TABLE_NAME = 'd' AND COLUMN_NAME = 'id'"))!;
        Assert.Contains($"`{target}`.`sq`", create, StringComparison.Ordinal);
        await MySqlTestDb.ExecAsync(target, "INSERT INTO d (n) VALUES (3)");
        Assert.Equal(sourceNext, await MySqlTestDb.ScalarAsync(source, "SELECT next_not_cached_value FROM sq"));
        Assert.Equal(3L, Convert.ToInt64(await MySqlTestDb.ScalarAsync(target, "SELECT COUNT(*) FROM v"), System.Globalization.CultureInfo.InvariantCulture));
    }
    /// <summary>
    /// Comments in object bodies: mariadb-dump writes a trigger or event inside /*!50003 ... */, and a client
    /// run without --comments cut it at the inner */ (the restore failed), and stripped a routine's comments
    /// (the restore passed with other bodies).
    /// </summary>
    [SkippableTheory]
    [InlineData(0, "TRIGGER tg", "CREATE TRIGGER tg BEFORE INSERT ON t FOR EACH ROW BEGIN /* keep ids positive */ SET NEW.id = ABS(NEW.id); -- why\n END")]
    [InlineData(2, "TRIGGER tg", "CREATE TRIGGER tg BEFORE INSERT ON t FOR EACH ROW BEGIN /* keep ids positive */ SET NEW.id = ABS(NEW.id); -- why\n END")]
    [InlineData(0, "EVENT ev", "CREATE EVENT ev ON SCHEDULE EVERY 1 DAY DISABLE DO BEGIN /* nightly purge */ DELETE FROM t; -- all of it\n END")]
    [InlineData(2, "EVENT ev", "CREATE EVENT ev ON SCHEDULE EVERY 1 DAY DISABLE DO BEGIN /* nightly purge */ DELETE FROM t; -- all of it\n END")]
    [InlineData(0, "PROCEDURE p", "CREATE PROCEDURE p() BEGIN\n  /* block */\n  -- line; keep in sync\n  # hash\n  SELECT /* inline */ id, 'a /* b */ -- c' FROM t;\nEND")]
    [InlineData(2, "PROCEDURE p", "CREATE PROCEDURE p() BEGIN\n  /* block */\n  -- line; keep in sync\n  # hash\n  SELECT /* inline */ id, 'a /* b */ -- c' FROM t;\nEND")]
    public async Task Comments_in_an_object_body_come_back_unchanged(int jobs, string objectName, string create)
    {
        await TestServers.RequireMySqlAsync();
        var instance = MySqlTestDb.Instance(jobs);
        var source = await _scratch.NewMySqlDatabaseAsync();
        await MySqlTestDb.ExecAsync(source, "CREATE TABLE t (id INT PRIMARY KEY)", create);
        var before = await MySqlTestDb.FingerprintAsync(source);
        var file = await Ops.BackupOkAsync(instance, source, Compression.Zstd, _scratch.TempDir("backups"));
        var target = _scratch.MySqlName();

        await Ops.RestoreAsync(instance, file, target);

        Assert.Equal(await ShowCreateAsync(source, objectName), await ShowCreateAsync(target, objectName));
        DbFingerprint.AssertSame(before, await MySqlTestDb.FingerprintAsync(target), $"the restored copy (jobs {jobs})");
    }

    /// <summary>The statement SHOW CREATE gives for an object (the column after sql_mode and, for an event, time_zone).</summary>
    private static async Task<string> ShowCreateAsync(string database, string objectName)
    {
        await using var connection = await MySqlTestDb.OpenAsync(database);
        await using var command = new MySqlConnector.MySqlCommand($"SHOW CREATE {objectName}", connection);
        await using var reader = await command.ExecuteReaderAsync();
        Assert.True(await reader.ReadAsync());
        return reader.GetString(objectName.StartsWith("EVENT", StringComparison.Ordinal) ? 3 : 2);
    }

    /// <summary>An alias named like the database (FROM t AS db ... db.id) is pointed at the target too: the restore warns.</summary>
    [SkippableTheory]
    [InlineData(0)]
    [InlineData(4)]
    public async Task An_alias_named_like_its_database_gets_a_warning(int jobs)
    {
        await TestServers.RequireMySqlAsync();
        var instance = MySqlTestDb.Instance(jobs);
        var source = await _scratch.NewMySqlDatabaseAsync();
        var s = MySqlTestDb.Quote(source);
        await MySqlTestDb.ExecAsync(source, "CREATE TABLE t (id INT PRIMARY KEY)", "INSERT INTO t VALUES (1)",
            $"CREATE PROCEDURE p() SELECT * FROM t AS {s} WHERE {s}.id = 1");
        var file = await Ops.BackupOkAsync(instance, source, Compression.Zstd, _scratch.TempDir("backups"));
        var observer = new TestRestoreObserver();

        await Ops.RestoreAsync(instance, file, _scratch.MySqlName(), observer: observer);

        var warning = Assert.Single(observer.Warnings, w => w.Contains("database's name", StringComparison.Ordinal));
        Assert.Contains($"('{source}')", warning, StringComparison.Ordinal);
    }

    /// <summary>
    /// A MariaDB procedure created under sql_mode=ORACLE (declarations after AS, WHILE ... LOOP) backed up and
    /// verified OK, yet every restore refused it: the backup must fail instead, saying why, and leave no file.
    /// </summary>
    [SkippableTheory]
    [InlineData(0)]
    [InlineData(4)]
    public async Task A_database_with_an_oracle_mode_routine_is_not_backed_up_unrestorable(int jobs)
    {
        await TestServers.RequireMySqlAsync();
        var instance = MySqlTestDb.Instance(jobs);
        var source = await _scratch.NewMySqlDatabaseAsync();
        await MySqlTestDb.ExecAsync(source,
            "CREATE TABLE t (id INT PRIMARY KEY)",
            "SET sql_mode = ORACLE",
            "CREATE PROCEDURE p_while AS i INT := 0; BEGIN WHILE i < 3 LOOP i := i + 1; END LOOP; END");
        var backups = _scratch.TempDir("backups");

        var result = await Ops.BackupAsync(instance, source, Compression.Zstd, backups);

        Assert.False(result.Succeeded);
        Assert.StartsWith("procedure p_while was created under sql_mode=ORACLE", result.Error, StringComparison.Ordinal);
        Assert.Empty(Directory.EnumerateFiles(backups, "*.zst", SearchOption.AllDirectories));
    }

    /// <summary>
    /// A table whose default draws from another database's sequence, or a MERGE table over another database's
    /// table, backed up OK, yet every restore refused it (tr108). The backup fails instead, naming the table and
    /// that database, and stores nothing, as for sql_mode=ORACLE; a default over the database's own sequence is no such table.
    /// </summary>
    [SkippableTheory]
    [InlineData(0, "CREATE TABLE orders (id INT PRIMARY KEY DEFAULT NEXTVAL({other}.ids), v INT)", "orders")]
    [InlineData(4, "CREATE TABLE orders (id INT PRIMARY KEY DEFAULT NEXTVAL({other}.ids), v INT)", "orders")]
    [InlineData(0, "CREATE TABLE m (id INT) ENGINE=MRG_MyISAM UNION=({other}.part) INSERT_METHOD=LAST", "m")]
    public async Task A_database_with_a_table_over_another_database_is_not_backed_up_unrestorable(int jobs, string create, string table)
    {
        await TestServers.RequireMySqlAsync();
        var other = await _scratch.NewMySqlDatabaseAsync();
        await MySqlTestDb.ExecAsync(other, "CREATE SEQUENCE ids", "CREATE TABLE part (id INT) ENGINE=MyISAM");
        var source = await _scratch.NewMySqlDatabaseAsync();
        await MySqlTestDb.ExecAsync(source, "CREATE SEQUENCE own", "CREATE TABLE numbered (id INT PRIMARY KEY DEFAULT NEXTVAL(own))",
            create.Replace("{other}", MySqlTestDb.Quote(other), StringComparison.Ordinal));
        var backups = _scratch.TempDir("backups");

        var result = await Ops.BackupAsync(MySqlTestDb.Instance(jobs), source, Compression.Zstd, backups);

        Assert.False(result.Succeeded);
        Assert.StartsWith($"table {table} draws a column default from, or is a MERGE table over, another database ({other}), which a restore refuses",
            result.Error, StringComparison.Ordinal);
        Assert.Empty(Directory.EnumerateFiles(backups, "*.zst", SearchOption.AllDirectories));
    }
}
