using VyaBackupDb.Catalog;
using VyaBackupDb.Config;
using VyaBackupDb.Engines;
using VyaBackupDb.Errors;
using VyaBackupDb.Operations;
using VyaBackupDb.Pipeline;

namespace VyaBackupDb.Tests.Integration;

/// <summary>
/// Damaged backups fail the restore with a clear error and leave no half-restored target; and a
/// hostile database name survives the trip through a file name.
/// </summary>
[Trait("Category", "Integration")]
public sealed class RestoreFaultTests : IAsyncLifetime
{
    private readonly Scratch _scratch = new();

    public Task InitializeAsync() => _scratch.InitializeAsync();

    public Task DisposeAsync() => _scratch.DisposeAsync();

    /// <summary>Keeps the first <paramref name="fraction"/> of a file.</summary>
    private static void Truncate(string file, double fraction)
    {
        using var stream = new FileStream(file, FileMode.Open, FileAccess.ReadWrite);
        stream.SetLength((long)(stream.Length * fraction));
    }

    [SkippableTheory]
    [InlineData(Compression.None)]
    [InlineData(Compression.Gzip)]
    [InlineData(Compression.Zstd)]
    public async Task MySql_truncated_backup_fails_and_leaves_no_target(Compression compression)
    {
        await TestServers.RequireMySqlAsync();
        var source = await _scratch.NewMySqlDatabaseAsync();
        await MySqlRoundTripTests.CreateHostileAsync(source, bigRow: false);
        var file = await Ops.BackupOkAsync(TestServers.MySql(), source, compression, _scratch.TempDir("backups"));
        Truncate(file, 0.6);
        var target = _scratch.MySqlName();

        // With its manifest: caught by the digest check before the target is created.
        var mismatch = await Assert.ThrowsAsync<VerificationFailedException>(() => Ops.RestoreAsync(TestServers.MySql(), file, target));
        Assert.Contains("truncated", mismatch.Message, StringComparison.Ordinal);
        Assert.False(await MySqlTestDb.ExistsAsync(target), "a restore that failed its digest check created the target");

        // Without one (an old tool's file): caught by the missing completion trailer, and the target is removed.
        File.Delete(file + BackupManifest.Suffix);
        var error = await Assert.ThrowsAsync<OperationFailedException>(() => Ops.RestoreAsync(TestServers.MySql(), file, target));

        Assert.Contains(Path.GetFileName(file), error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', error.Message);
        Assert.False(await MySqlTestDb.ExistsAsync(target), $"a failed restore left a half database '{target}'");
    }

    [SkippableTheory]
    [InlineData(Compression.None)]
    [InlineData(Compression.Zip)]
    public async Task Postgres_truncated_backup_fails_and_leaves_no_target(Compression compression)
    {
        await TestServers.RequirePostgresAsync();
        var source = await _scratch.NewPostgresDatabaseAsync();
        await PostgresRoundTripTests.CreateHostileAsync(source, bigRow: false);
        var file = await Ops.BackupOkAsync(TestServers.Postgres(), source, compression, _scratch.TempDir("backups"));
        Truncate(file, 0.6);
        var target = _scratch.PostgresName();

        var mismatch = await Assert.ThrowsAsync<VerificationFailedException>(() => Ops.RestoreAsync(TestServers.Postgres(), file, target));
        Assert.Contains("truncated", mismatch.Message, StringComparison.Ordinal);
        Assert.False(await PgTestDb.ExistsAsync(target), "a restore that failed its digest check created the target");

        File.Delete(file + BackupManifest.Suffix);
        var error = await Assert.ThrowsAsync<OperationFailedException>(() => Ops.RestoreAsync(TestServers.Postgres(), file, target));

        Assert.DoesNotContain('\n', error.Message);
        Assert.False(await PgTestDb.ExistsAsync(target), $"a failed restore left a half database '{target}'");
    }

    [SkippableFact]
    public async Task A_target_with_no_tables_but_a_routine_is_not_replaced_without_force()
    {
        await TestServers.RequireMySqlAsync();
        var source = await _scratch.NewMySqlDatabaseAsync();
        await MySqlTestDb.ExecAsync(source, "CREATE TABLE t (id INT PRIMARY KEY)");
        var file = await Ops.BackupOkAsync(TestServers.MySql(), source, Compression.Zstd, _scratch.TempDir("backups"));
        var target = await _scratch.NewMySqlDatabaseAsync();
        await MySqlTestDb.ExecAsync(target, "CREATE FUNCTION answer() RETURNS INT DETERMINISTIC RETURN 42");

        var error = await Assert.ThrowsAsync<UsageException>(() => Ops.RestoreAsync(TestServers.MySql(), file, target));

        Assert.Contains("0 tables and 1 other objects", error.Message, StringComparison.Ordinal);
        Assert.Equal(42, Convert.ToInt32(await MySqlTestDb.ScalarAsync(target, "SELECT answer()")));
        Assert.Equal(0, await MySqlTestDb.TableCountAsync(target));
    }

    [SkippableFact]
    public async Task A_file_that_is_not_a_dump_is_refused_before_the_target_is_replaced()
    {
        await TestServers.RequireMySqlAsync();
        var target = await _scratch.NewMySqlDatabaseAsync();
        await MySqlTestDb.ExecAsync(target, "CREATE TABLE keep (id INT PRIMARY KEY)", "INSERT INTO keep VALUES (7)");
        var before = await MySqlTestDb.FingerprintAsync(target);
        var file = Path.Combine(_scratch.TempDir("files"), "20260113_155440_mysql_dns_db.sql.zst.manifest.json");
        await File.WriteAllTextAsync(file, "{ \"schema_version\": 1 }\n");

        // Even with --force: the operator named the wrong file, and the target must survive it.
        var error = await Assert.ThrowsAsync<UsageException>(() => Ops.RestoreAsync(TestServers.MySql(), file, target, force: true));

        Assert.Contains("does not look like a backup", error.Message, StringComparison.Ordinal);
        DbFingerprint.AssertSame(before, await MySqlTestDb.FingerprintAsync(target), "the target of a refused restore");
    }

    /// <summary>
    /// A statement the server refuses is named by the server's error, not echoed whole: the
    /// mariadb client would print the failed INSERT (up to a megabyte of rows) into the message
    /// that goes to logs and notifications.
    /// </summary>
    [SkippableTheory]
    [InlineData(0)]
    [InlineData(2)]
    public async Task A_refused_statement_leaves_its_rows_out_of_the_error(int jobs)
    {
        await TestServers.RequireMySqlAsync();
        var source = await _scratch.NewMySqlDatabaseAsync();
        await MySqlTestDb.ExecAsync(source,
            "CREATE TABLE t (id INT PRIMARY KEY, note VARCHAR(64) NOT NULL)",
            "INSERT INTO t VALUES (1, 'row-content-one'), (2, 'row-content-two')");
        var file = await Ops.BackupOkAsync(MySqlTestDb.Instance(jobs), source, Compression.None, _scratch.TempDir("backups"));
        // The restoring account may not insert: every row of the backup is refused.
        var user = "vt_noinsert_" + jobs;
        await MySqlTestDb.ExecAsync(null, $"DROP USER IF EXISTS '{user}'@'%'", $"CREATE USER '{user}'@'%' IDENTIFIED BY 'pw-{user}'",
            $"GRANT ALL ON *.* TO '{user}'@'%'", $"REVOKE INSERT ON *.* FROM '{user}'@'%'");
        try
        {
            var instance = MySqlTestDb.Instance(jobs) with { User = user, Password = Config.PasswordSource.Literal($"pw-{user}"), LoadDataLocal = false };
            var error = await Assert.ThrowsAsync<OperationFailedException>(() => Ops.RestoreAsync(instance, file, _scratch.MySqlName()));

            Assert.Contains("INSERT command denied", error.Message, StringComparison.Ordinal);
            Assert.DoesNotContain("row-content", error.Message, StringComparison.Ordinal);
        }
        finally
        {
            await MySqlTestDb.ExecAsync(null, $"DROP USER IF EXISTS '{user}'@'%'");
        }
    }

    [SkippableFact]
    public async Task Postgres_restore_stops_at_the_first_failing_statement()
    {
        await TestServers.RequirePostgresAsync();
        var dir = _scratch.TempDir("files");
        var file = Path.Combine(dir, "20260113_155440_postgresql_vt_broken.sql");
        await File.WriteAllTextAsync(file,
            "--\n-- PostgreSQL database dump\n--\n"
            + "CREATE TABLE good (id int);\n"
            + "INSERT INTO missing_table VALUES (1);\n"
            + "CREATE TABLE after_error (id int);\n"
            + "--\n-- PostgreSQL database dump complete\n--\n");
        var target = _scratch.PostgresName();

        var error = await Assert.ThrowsAsync<OperationFailedException>(() => Ops.RestoreAsync(TestServers.Postgres(), file, target));

        Assert.Contains("missing_table", error.Message, StringComparison.Ordinal);
        Assert.False(await PgTestDb.ExistsAsync(target), $"a failed restore left a half database '{target}'");
    }

    /// <summary>
    /// A row the server refuses stays out of the error, as with MySQL: psql's default verbosity
    /// adds "DETAIL: Failing row contains (...)" and the COPY line itself.
    /// </summary>
    [SkippableFact]
    public async Task A_postgres_row_the_server_refuses_stays_out_of_the_error()
    {
        await TestServers.RequirePostgresAsync();
        var file = Path.Combine(_scratch.TempDir("files"), "20260113_155440_postgresql_vt_refused.sql");
        await File.WriteAllTextAsync(file,
            "--\n-- PostgreSQL database dump\n--\n"
            + "CREATE TABLE t (id int PRIMARY KEY, note text, CHECK (id > 0));\n"
            + "COPY t (id, note) FROM stdin;\n1\tfine-row\n-1\trow-content-refused\n\\.\n"
            + "--\n-- PostgreSQL database dump complete\n--\n");
        var target = _scratch.PostgresName();

        var error = await Assert.ThrowsAsync<OperationFailedException>(() => Ops.RestoreAsync(TestServers.Postgres(), file, target));

        Assert.Contains("violates check constraint", error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("row-content", error.Message, StringComparison.Ordinal);
        Assert.False(await PgTestDb.ExistsAsync(target), $"a failed restore left a half database '{target}'");
    }

    private const int Success = 0;
    private const int UsageOrConfig = 2;
    private const int VerificationFailed = 4;

    /// <summary>
    /// A restore replaces its target whole: a system database is refused, dry run or --force, with
    /// one line and exit 2, before any connection could change it (it may still be backed up).
    /// </summary>
    [SkippableTheory]
    [InlineData(Dbms.MySql, "mysql")]
    [InlineData(Dbms.MySql, "sys")]
    [InlineData(Dbms.MySql, "information_schema")]
    [InlineData(Dbms.MySql, "performance_schema")]
    [InlineData(Dbms.MySql, "MySQL")]
    [InlineData(Dbms.PostgreSql, "template0")]
    [InlineData(Dbms.PostgreSql, "template1")]
    [InlineData(Dbms.PostgreSql, "postgres")]
    public async Task A_system_database_is_never_a_restore_target(Dbms dbms, string system)
    {
        // Never tracked for dropping: on a case-insensitive server even 'MySQL' is the system database.
        var mysql = dbms == Dbms.MySql;
        await TestServers.RequireAsync(dbms);
        var source = mysql ? await _scratch.NewMySqlDatabaseAsync() : await _scratch.NewPostgresDatabaseAsync();
        await (mysql ? MySqlTestDb.ExecAsync(source, "CREATE TABLE t (id INT PRIMARY KEY)") : PgTestDb.ExecAsync(source, "CREATE TABLE t (id int PRIMARY KEY)"));
        var backupDir = _scratch.TempDir("backups");
        var file = await Ops.BackupOkAsync(mysql ? TestServers.MySql() : TestServers.Postgres(), source, Compression.Gzip, backupDir);
        var config = await Cli.WriteConfigAsync(_scratch.TempDir("cfg"), backupDir);
        var before = await SystemDatabaseStateAsync(dbms, system);

        foreach (var dryRun in new[] { true, false })
        {
            string[] arguments = ["restore", "-f", file, "-i", mysql ? "1" : "2", "-t", system, "--force", "--config", config];
            var run = await Run.CliAsync(dryRun ? [.. arguments, "--dry-run"] : arguments);

            Assert.True(run.ExitCode == UsageOrConfig, run.ToString());
            var error = Assert.Single(Cli.ErrorLines(run));
            Assert.Contains($"'{system}' is a system database", error, StringComparison.Ordinal);
            Assert.DoesNotContain("restor", run.Stdout, StringComparison.Ordinal);
            Assert.Equal(before, await SystemDatabaseStateAsync(dbms, system));
        }
    }

    /// <summary>
    /// Nor is a name the tool gives its own working databases: a database restored under another
    /// target's staging name was dropped as a leftover by the next restore into that target, and a
    /// restore --force into a running restore's staging database wrecked both.
    /// </summary>
    [SkippableTheory]
    [InlineData(Dbms.MySql)]
    [InlineData(Dbms.PostgreSql)]
    public async Task The_tools_own_database_names_are_never_a_restore_target(Dbms dbms)
    {
        var mysql = dbms == Dbms.MySql;
        await TestServers.RequireAsync(dbms);
        var source = mysql ? await _scratch.NewMySqlDatabaseAsync() : await _scratch.NewPostgresDatabaseAsync();
        await (mysql ? MySqlTestDb.ExecAsync(source, "CREATE TABLE t (id INT PRIMARY KEY)") : PgTestDb.ExecAsync(source, "CREATE TABLE t (id int PRIMARY KEY)"));
        var backupDir = _scratch.TempDir("backups");
        var file = await Ops.BackupOkAsync(mysql ? TestServers.MySql() : TestServers.Postgres(), source, Compression.Gzip, backupDir);
        var config = await Cli.WriteConfigAsync(_scratch.TempDir("cfg"), backupDir);

        string[] names = [RestoreStaging.StagingName(source), RestoreStaging.ReplacedName(source), RestoreStaging.ReplacedName(source, 2),
            "vya_verify_" + Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(8)), "VYA_Restore_x"];
        foreach (var name in names)
        {
            var target = mysql ? _scratch.TrackMySql(name) : _scratch.TrackPostgres(name);
            var run = await Run.CliAsync("restore", "-f", file, "-i", mysql ? "1" : "2", "-t", target, "--force", "--config", config);

            Assert.True(run.ExitCode == UsageOrConfig, $"{target}: {run}");
            var error = Assert.Single(Cli.ErrorLines(run));
            Assert.Contains($"'{target}' is a name vya-backupdb gives its own working databases", error, StringComparison.Ordinal);
            Assert.False(await (mysql ? MySqlTestDb.ExistsAsync(target) : PgTestDb.ExistsAsync(target)), $"a refused restore created '{target}'");
        }
    }

    /// <summary>The database the tool connects to (maintenance_database) is no restore's target either.</summary>
    [SkippableFact]
    public async Task Postgres_maintenance_database_is_never_a_restore_target()
    {
        await TestServers.RequirePostgresAsync();
        var source = await _scratch.NewPostgresDatabaseAsync();
        await PgTestDb.ExecAsync(source, "CREATE TABLE t (id int PRIMARY KEY)");
        var file = await Ops.BackupOkAsync(TestServers.Postgres(), source, Compression.Gzip, _scratch.TempDir("backups"));
        var maintenance = await _scratch.NewPostgresDatabaseAsync();
        await PgTestDb.ExecAsync(maintenance, "CREATE TABLE keep (id int PRIMARY KEY)", "INSERT INTO keep VALUES (7)");
        var before = await PgTestDb.FingerprintAsync(maintenance);
        var instance = TestServers.Postgres() with { MaintenanceDatabase = maintenance };

        foreach (var dryRun in new[] { true, false })
        {
            var error = await Assert.ThrowsAsync<UsageException>(() => Ops.RestoreAsync(instance, file, maintenance, force: true, dryRun: dryRun));

            Assert.Contains($"'{maintenance}' is the instance's maintenance_database", error.Message, StringComparison.Ordinal);
            DbFingerprint.AssertSame(before, await PgTestDb.FingerprintAsync(maintenance), "the maintenance database after a refused restore");
        }
    }

    /// <summary>What a refused restore must leave as it was: the database's tables (its OID too, on PostgreSQL), and no staging database for it.</summary>
    private static async Task<string> SystemDatabaseStateAsync(Dbms dbms, string database)
    {
        var staging = RestoreStaging.StagingName(database);
        if (dbms == Dbms.MySql)
        {
            var tables = await MySqlTestDb.ScalarAsync(null,
                "SELECT GROUP_CONCAT(TABLE_NAME ORDER BY TABLE_NAME) FROM information_schema.TABLES WHERE TABLE_SCHEMA = @p0", database);
            return $"tables: {tables}; staging exists: {await MySqlTestDb.ExistsAsync(staging)}";
        }
        var oid = await PgTestDb.ScalarAsync("postgres", "SELECT oid::text FROM pg_database WHERE datname = $1", database);
        var tableCount = database == "template0" ? 0 : await PgTestDb.TableCountAsync(database);
        return $"oid: {oid}; tables: {tableCount}; staging exists: {await PgTestDb.ExistsAsync(staging)}";
    }

    /// <summary>
    /// A name the server would refuse is refused at the plan, naming the target and why, before
    /// the staging database is loaded (a trailing space failed only at the swap).
    /// </summary>
    [SkippableTheory]
    [InlineData("vt_xpa_\U0001F600", "a character outside the Basic Multilingual Plane")]
    [InlineData("vt_x ", "ends with a space")]
    [InlineData("vt_x\t", "ends with a space")]
    [InlineData("vt_65", "longer than 64 characters")]
    public async Task A_mysql_target_name_the_server_would_refuse_is_refused_before_the_load(string target, string why)
    {
        await TestServers.RequireMySqlAsync();
        target = target == "vt_65" ? "vt_" + new string('a', 62) : target;
        _scratch.TrackMySql(RestoreStaging.StagingName(target));
        var source = await _scratch.NewMySqlDatabaseAsync();
        await MySqlTestDb.ExecAsync(source, "CREATE TABLE t (id INT PRIMARY KEY)", "INSERT INTO t VALUES (1)");
        var backupDir = _scratch.TempDir("backups");
        var file = await Ops.BackupOkAsync(TestServers.MySql(), source, Compression.Gzip, backupDir);
        var config = await Cli.WriteConfigAsync(_scratch.TempDir("cfg"), backupDir);

        var run = await Run.CliAsync("restore", "-f", file, "-i", "1", "-t", target, "--config", config);

        Assert.True(run.ExitCode == UsageOrConfig, run.ToString());
        var error = Assert.Single(Cli.ErrorLines(run));
        Assert.Contains($"'{target}' cannot be a MySQL/MariaDB database name: it", error, StringComparison.Ordinal);
        Assert.Contains(why, error, StringComparison.Ordinal);
        Assert.DoesNotContain("restoring", run.Stdout, StringComparison.Ordinal);
        Assert.False(await MySqlTestDb.ExistsAsync(RestoreStaging.StagingName(target)), "a refused restore left a staging database");
    }

    /// <summary>64 characters, none beyond U+FFFF: the longest name MySQL takes restores under exactly that name.</summary>
    [SkippableFact]
    public async Task A_mysql_target_of_64_characters_restores_under_that_name()
    {
        await TestServers.RequireMySqlAsync();
        var source = await _scratch.NewMySqlDatabaseAsync();
        await MySqlTestDb.ExecAsync(source, "CREATE TABLE t (id INT PRIMARY KEY)", "INSERT INTO t VALUES (1)");
        var file = await Ops.BackupOkAsync(TestServers.MySql(), source, Compression.Gzip, _scratch.TempDir("backups"));
        var target = _scratch.TrackMySql("vt_" + new string('\u00e9', 57) + " ..1");

        await Ops.RestoreAsync(TestServers.MySql(), file, target);

        DbFingerprint.AssertSame(await MySqlTestDb.FingerprintAsync(source), await MySqlTestDb.FingerprintAsync(target), "the 64-character target");
    }

    /// <summary>
    /// PostgreSQL cuts a name longer than 63 bytes with only a NOTICE: such a target is refused
    /// rather than restored into a database of another name; one of exactly 63 bytes is restored as given.
    /// </summary>
    [SkippableFact]
    public async Task A_postgres_target_longer_than_63_bytes_is_refused_not_cut()
    {
        await TestServers.RequirePostgresAsync();
        var source = await _scratch.NewPostgresDatabaseAsync();
        await PgTestDb.ExecAsync(source, "CREATE TABLE t (id int PRIMARY KEY)", "INSERT INTO t VALUES (1)");
        var backupDir = _scratch.TempDir("backups");
        var file = await Ops.BackupOkAsync(TestServers.Postgres(), source, Compression.Gzip, backupDir);
        var config = await Cli.WriteConfigAsync(_scratch.TempDir("cfg"), backupDir);
        var cut = _scratch.TrackPostgres("vt_" + new string('\u00e9', 30)); // 63 bytes: what the server would make of the name below
        var tooLong = _scratch.TrackPostgres(cut + "\u00e9"); // 65 bytes, 34 characters

        var run = await Run.CliAsync("restore", "-f", file, "-i", "2", "-t", tooLong, "--config", config);

        Assert.True(run.ExitCode == UsageOrConfig, run.ToString());
        var error = Assert.Single(Cli.ErrorLines(run));
        Assert.Contains($"'{tooLong}' cannot be a PostgreSQL database name: it is 65 bytes long", error, StringComparison.Ordinal);
        Assert.False(await PgTestDb.ExistsAsync(cut), $"a restore into a 65-byte name created '{cut}'");

        var exact = await Run.CliAsync("restore", "-f", file, "-i", "2", "-t", cut, "--config", config);

        Assert.True(exact.ExitCode == Success, exact.ToString());
        DbFingerprint.AssertSame(await PgTestDb.FingerprintAsync(source), await PgTestDb.FingerprintAsync(cut), "the 63-byte target");
    }

    /// <summary>
    /// A file whose bytes are not what its name says (a plain dump renamed .sql.gz, zstd data in a
    /// .sql.gz, ...) is refused before anything runs, in one line that says what it holds: restore
    /// exits 2, as for a file that is no backup at all; verify reports it as the file's problem (4).
    /// </summary>
    [SkippableTheory]
    [InlineData(".sql.gz", Compression.None, "is not gzip data, as its name says, but plain text")]
    [InlineData(".sql.gz", Compression.Zstd, "is not gzip data, as its name says, but zstd data")]
    [InlineData(".sql.gz", Compression.Zip, "is not gzip data, as its name says, but a zip archive")]
    [InlineData(".sql.zst", Compression.Gzip, "is not zstd data, as its name says, but gzip data")]
    [InlineData(".zip", Compression.None, "is not a zip archive, as its name says, but plain text")]
    [InlineData(".sql", Compression.Gzip, "is not uncompressed data, as its name says, but gzip data")]
    public async Task A_file_that_is_not_what_its_name_says_is_refused_saying_what_it_holds(string extension, Compression content, string expected)
    {
        await TestServers.RequireMySqlAsync();
        var source = await _scratch.NewMySqlDatabaseAsync();
        await MySqlTestDb.ExecAsync(source, "CREATE TABLE t (id INT PRIMARY KEY)", "INSERT INTO t VALUES (1)");
        var plain = await File.ReadAllBytesAsync(await Ops.BackupOkAsync(TestServers.MySql(), source, Compression.None, _scratch.TempDir("backups")));
        var dir = _scratch.TempDir("odd");
        var file = Path.Combine(dir, $"20260110_020000_mysql_{source}{extension}");
        await using (var stored = File.Create(file))
        await using (var writer = Codec.Compress(content, stored, "dump.sql"))
        {
            await writer.WriteAsync(plain);
        }
        var config = await Cli.WriteConfigAsync(_scratch.TempDir("cfg"), dir);
        var target = _scratch.MySqlName();

        var restore = await Run.CliAsync("restore", "-f", file, "-i", "1", "-t", target, "--config", config);

        Assert.True(restore.ExitCode == UsageOrConfig, restore.ToString());
        Assert.Contains($"{file} {expected}", Assert.Single(Cli.ErrorLines(restore)), StringComparison.Ordinal);
        Assert.False(await MySqlTestDb.ExistsAsync(target), "a refused restore created its target");

        var verify = await Run.CliAsync("verify", "-f", file, "--config", config);

        Assert.True(verify.ExitCode == VerificationFailed, verify.ToString());
        Assert.Contains($"{file}: {expected["is ".Length..]}", verify.Stdout + verify.Stderr, StringComparison.Ordinal);
    }

    [SkippableFact]
    public async Task Hostile_database_name_stays_inside_backup_dir_and_comes_back_exactly()
    {
        await TestServers.RequireMySqlAsync();
        var name = _scratch.TrackMySql(_scratch.MySqlName() + " ../../é'\"`;-f");
        await MySqlTestDb.CreateAsync(name);
        await MySqlTestDb.ExecAsync(name, "CREATE TABLE t (id INT PRIMARY KEY)", "INSERT INTO t VALUES (1)");
        var backupDir = _scratch.TempDir("backups");

        var file = await Ops.BackupOkAsync(TestServers.MySql(), name, Compression.Zstd, backupDir);

        Assert.StartsWith(backupDir + Path.DirectorySeparatorChar, Path.GetFullPath(file), StringComparison.Ordinal);
        Assert.Single(Ops.DataFilesUnder(backupDir));
        var plan = await RestoreOperation.PlanAsync(new RestoreRequest(file, TestServers.MySql(), null, DryRun: true, Force: false), CancellationToken.None);
        Assert.Equal(name, plan.SourceDatabase);
        Assert.Equal(name, plan.Target);
        Assert.Equal(Dbms.MySql, plan.FileDbms);
        Assert.Equal(new Engines.TargetState(true, 1), plan.TargetState);

        var copy = _scratch.MySqlName() + " ../é'`";
        _scratch.TrackMySql(copy);
        await Ops.RestoreAsync(TestServers.MySql(), file, copy);
        DbFingerprint.AssertSame(await MySqlTestDb.FingerprintAsync(name), await MySqlTestDb.FingerprintAsync(copy), "copy of the hostile-named database");
    }

    [SkippableFact]
    public async Task Hostile_postgres_database_name_stays_inside_backup_dir_and_comes_back_exactly()
    {
        await TestServers.RequirePostgresAsync();
        var name = _scratch.TrackPostgres(_scratch.PostgresName() + " ../../É'\"\\ -f");
        await PgTestDb.CreateAsync(name);
        await PgTestDb.ExecAsync(name, "CREATE TABLE t (id int PRIMARY KEY)", "INSERT INTO t VALUES (1)");
        var backupDir = _scratch.TempDir("backups");

        var file = await Ops.BackupOkAsync(TestServers.Postgres(), name, Compression.Gzip, backupDir);

        Assert.StartsWith(backupDir + Path.DirectorySeparatorChar, Path.GetFullPath(file), StringComparison.Ordinal);
        Assert.Single(Ops.DataFilesUnder(backupDir));
        var plan = await RestoreOperation.PlanAsync(new RestoreRequest(file, TestServers.Postgres(), null, DryRun: true, Force: false), CancellationToken.None);
        Assert.Equal(name, plan.SourceDatabase);
        Assert.Equal(Dbms.PostgreSql, plan.FileDbms);
        Assert.Equal(new Engines.TargetState(true, 1), plan.TargetState);

        var copy = _scratch.TrackPostgres(_scratch.PostgresName() + " ../'\\\"");
        await Ops.RestoreAsync(TestServers.Postgres(), file, copy);
        DbFingerprint.AssertSame(await PgTestDb.FingerprintAsync(name), await PgTestDb.FingerprintAsync(copy), "copy of the hostile-named database");
    }
}
