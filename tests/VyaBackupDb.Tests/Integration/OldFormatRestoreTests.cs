using System.IO.Compression;
using System.Text;

namespace VyaBackupDb.Tests.Integration;

/// <summary>
/// The old tool's files, made with the real dump tools and the old tool's options: plain dumps
/// that name their database (mysqldump --databases --add-drop-database; pg_dump --clean --create
/// --if-exists), as .sql, .sql.gz under the legacy name and .zip with one entry. Restored under a
/// new name they must fill the target only: the source keeps its content (including what was
/// added after the dump), and rows whose text looks like those statements come back byte for byte.
/// These need the statement filters (MySqlDumpFilter / PostgresDumpFilter): with a pass-through
/// filter the dump's own DROP/CREATE DATABASE, USE and \connect hit the source.
/// </summary>
[Trait("Category", "Integration")]
public sealed class OldFormatRestoreTests : IAsyncLifetime
{
    private const string OldMySqlDumpOptions = "--single-transaction --routines --triggers --events --hex-blob";

    private readonly Scratch _scratch = new();

    public Task InitializeAsync() => _scratch.InitializeAsync();

    public Task DisposeAsync() => _scratch.DisposeAsync();

    /// <summary>Rows of text that look like the statements a filter must act on, around the source's name.</summary>
    private static string[] MySqlTrapRows(string src) =>
    [
        $"USE `{src}`;",
        $"\nUSE `{src}`;\n",
        $"DROP DATABASE `{src}`;",
        $"/*!40000 DROP DATABASE IF EXISTS `{src}`*/;",
        $"CREATE DATABASE /*!32312 IF NOT EXISTS*/ `{src}`;",
        $"USE {src}",
    ];

    private static string[] PostgresTrapRows(string src) =>
    [
        $"\\connect {src}",
        $"DROP DATABASE {src};",
        $"DROP DATABASE IF EXISTS {src};",
        $"CREATE DATABASE {src} WITH TEMPLATE = template0 ENCODING = 'UTF8' LOCALE_PROVIDER = libc;",
        $"\\connect -reuse-previous=on \"dbname='{src}'\"",
        $"\n\\connect {src}\n",
    ];

    /// <summary>Writes <paramref name="plain"/> as the old tool stored it; returns the file to restore.</summary>
    private static string Package(string plain, string format, string src, string dbms)
    {
        var dir = Path.GetDirectoryName(plain)!;
        switch (format)
        {
            case "sql":
                var sql = Path.Combine(dir, $"{src}_20260110_020000.sql");
                File.Move(plain, sql);
                return sql;
            case "sql.gz":
                var gz = Path.Combine(dir, $"{src}_20260110_020000.sql.gz");
                using (var input = File.OpenRead(plain))
                using (var output = new GZipStream(File.Create(gz), CompressionLevel.Optimal))
                {
                    input.CopyTo(output);
                }
                File.Delete(plain);
                return gz;
            case "zip":
                var zip = Path.Combine(dir, $"20260113_155440_{dbms}_{src}.zip");
                using (var archive = ZipFile.Open(zip, ZipArchiveMode.Create))
                {
                    archive.CreateEntryFromFile(plain, $"20260113_155440_{dbms}_{src}.sql");
                }
                File.Delete(plain);
                return zip;
            default:
                throw new ArgumentOutOfRangeException(nameof(format));
        }
    }

    private async Task<(string Source, string File, DbFingerprint Dumped, DbFingerprint SourceNow, string[] Traps)> MakeOldMySqlDumpAsync(string format)
    {
        var source = await _scratch.NewMySqlDatabaseAsync();
        await MySqlRoundTripTests.CreateHostileAsync(source, bigRow: false);
        var traps = MySqlTrapRows(source);
        await MySqlTestDb.ExecAsync(source, "CREATE TABLE notes (body TEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL)");
        foreach (var trap in traps)
        {
            await MySqlTestDb.ExecWithAsync(source, "INSERT INTO notes VALUES (@p0)", trap);
        }
        var dumped = await MySqlTestDb.FingerprintAsync(source);

        var dir = _scratch.TempDir("old");
        var plain = Path.Combine(dir, "dump.tmp");
        await Run.MySqlDumpAsync(plain, ["--databases", source, "--add-drop-database", .. OldMySqlDumpOptions.Split(' ')]);
        var text = await File.ReadAllTextAsync(plain);
        Assert.Contains($"USE `{source}`;", text, StringComparison.Ordinal);
        Assert.Contains($"DROP DATABASE IF EXISTS `{source}`", text, StringComparison.Ordinal);

        // Changed after the dump: a restore that touches the source loses or reverts these.
        await MySqlTestDb.ExecAsync(source,
            "CREATE TABLE after_dump (id INT PRIMARY KEY)",
            "INSERT INTO after_dump VALUES (1)",
            "UPDATE parts SET v = 'changed later' WHERE id = 1");
        var sourceNow = await MySqlTestDb.FingerprintAsync(source);
        return (source, Package(plain, format, source, "mysql"), dumped, sourceNow, traps);
    }

    private async Task<(string Source, string File, DbFingerprint Dumped, DbFingerprint SourceNow, string[] Traps)> MakeOldPostgresDumpAsync(string format)
    {
        var source = await _scratch.NewPostgresDatabaseAsync();
        await PostgresRoundTripTests.CreateHostileAsync(source, bigRow: false);
        var traps = PostgresTrapRows(source);
        // One text column, so that in COPY data each trap is a whole line of its own.
        await PgTestDb.ExecAsync(source, "CREATE TABLE notes (body text NOT NULL)");
        foreach (var trap in traps)
        {
            await PgTestDb.ExecWithAsync(source, "INSERT INTO notes VALUES ($1)", trap);
        }
        var dumped = await PgTestDb.FingerprintAsync(source);

        var dir = _scratch.TempDir("old");
        var plain = Path.Combine(dir, "dump.tmp");
        await Run.PgDumpAsync(plain, "--clean", "--create", "--if-exists", "--dbname", source);
        var text = await File.ReadAllTextAsync(plain);
        Assert.Contains($"\\connect {source}", text, StringComparison.Ordinal);
        Assert.Contains($"DROP DATABASE IF EXISTS {source};", text, StringComparison.Ordinal);
        Assert.Contains($"\nDROP DATABASE {source};\n", text, StringComparison.Ordinal);

        await PgTestDb.ExecAsync(source,
            "CREATE TABLE after_dump (id int PRIMARY KEY)",
            "INSERT INTO after_dump VALUES (1)",
            "UPDATE \"hostile table\" SET note = 'changed after the dump' WHERE id = 2");
        var sourceNow = await PgTestDb.FingerprintAsync(source);
        return (source, Package(plain, format, source, "postgresql"), dumped, sourceNow, traps);
    }

    [SkippableTheory]
    [InlineData("sql")]
    [InlineData("sql.gz")]
    [InlineData("zip")]
    public async Task MySql_old_dump_restores_under_a_new_name_without_touching_the_source(string format)
    {
        await TestServers.RequireMySqlAsync();
        var (source, file, dumped, sourceNow, traps) = await MakeOldMySqlDumpAsync(format);
        var target = _scratch.MySqlName();

        Exception? failure = null;
        try
        {
            await Ops.RestoreAsync(TestServers.MySql(), file, target);
        }
        catch (Errors.VyaException e)
        {
            failure = e;
        }

        Assert.True(await MySqlTestDb.ExistsAsync(source), $"the source database {source} is gone after restoring into {target}");
        DbFingerprint.AssertSame(sourceNow, await MySqlTestDb.FingerprintAsync(source), "the source after a restore under a new name");
        Assert.Null(failure);
        DbFingerprint.AssertSame(dumped, await MySqlTestDb.FingerprintAsync(target), $"the restored copy ({Path.GetFileName(file)})");
        var rows = new List<string>();
        await using (var connection = await MySqlTestDb.OpenAsync(target))
        await using (var command = new MySqlConnector.MySqlCommand("SELECT CAST(body AS BINARY) FROM notes", connection))
        await using (var reader = await command.ExecuteReaderAsync())
        {
            while (await reader.ReadAsync())
            {
                rows.Add(Convert.ToHexString((byte[])reader.GetValue(0)));
            }
        }
        Assert.Equal(traps.Select(t => Convert.ToHexString(Encoding.UTF8.GetBytes(t))).Order(), rows.Order());
    }

    [SkippableTheory]
    [InlineData("sql")]
    [InlineData("sql.gz")]
    [InlineData("zip")]
    public async Task Postgres_old_dump_restores_under_a_new_name_without_touching_the_source(string format)
    {
        await TestServers.RequirePostgresAsync();
        var (source, file, dumped, sourceNow, traps) = await MakeOldPostgresDumpAsync(format);
        var target = _scratch.PostgresName();

        Exception? failure = null;
        try
        {
            await Ops.RestoreAsync(TestServers.Postgres(), file, target);
        }
        catch (Errors.VyaException e)
        {
            failure = e;
        }

        Assert.True(await PgTestDb.ExistsAsync(source), $"the source database {source} is gone after restoring into {target}");
        DbFingerprint.AssertSame(sourceNow, await PgTestDb.FingerprintAsync(source), "the source after a restore under a new name");
        Assert.Null(failure);
        DbFingerprint.AssertSame(dumped, await PgTestDb.FingerprintAsync(target), $"the restored copy ({Path.GetFileName(file)})");
        var rows = new List<string>();
        await using (var connection = await PgTestDb.OpenAsync(target))
        await using (var command = new Npgsql.NpgsqlCommand("SELECT convert_to(body, 'UTF8') FROM notes", connection))
        await using (var reader = await command.ExecuteReaderAsync())
        {
            while (await reader.ReadAsync())
            {
                rows.Add(Convert.ToHexString((byte[])reader.GetValue(0)));
            }
        }
        Assert.Equal(traps.Select(t => Convert.ToHexString(Encoding.UTF8.GetBytes(t))).Order(), rows.Order());
    }

    /// <summary>
    /// README: a backup file runs nothing on the restore host and touches only its target. An old
    /// pg_dump file with a statement planted that pg_dump never writes (a DO block running a shell
    /// command through COPY ... TO PROGRAM; a cluster-wide superuser), or hidden behind a setting
    /// the filter cannot read for certain (SJIS as a quoted identifier: psql then hides the quote
    /// after the 0x95 lead byte; "of", which the server takes for off; a function named begin, so
    /// that psql sends the statements after it with it and the server runs them), is refused with one line
    /// and exit code 1 before it reaches psql: the existing target is unchanged, the command did
    /// not run, the role does not exist.
    /// </summary>
    [SkippableTheory]
    [InlineData("DO $x$ BEGIN EXECUTE 'COPY (select 1) TO PROGRAM ''touch {marker}'''; END $x$;\n",
        "statement DO is not something pg_dump writes; refused")]
    [InlineData("CREATE ROLE {role} SUPERUSER LOGIN PASSWORD 'x';\n", "statement CREATE ROLE is not something pg_dump writes; refused")]
    [InlineData("SET client_encoding TO \"SJIS\";\nCREATE TABLE public.a (x text);\nCOMMENT ON TABLE public.a IS E'\u0095\\'; {payload} -- ';\n",
        "client_encoding set other than to a plain encoding name is not something pg_dump writes (the filter could not know how psql reads what follows); refused")]
    [InlineData("SET standard_conforming_strings = of;\nCREATE TABLE public.a (x text);\nCOMMENT ON TABLE public.a IS 'x\\' '; {payload} -- ';\n",
        "standard_conforming_strings set other than by SET to on or off is not something pg_dump writes (the filter could not know how psql reads what follows); refused")]
    [InlineData("CREATE FUNCTION public.begin() RETURNS integer LANGUAGE sql AS 'select 1';\n{payload}\nSELECT 1 AS end;\n",
        "a CREATE FUNCTION or PROCEDURE that psql and the server would end at different places is not something pg_dump writes; refused")]
    // psql reads a COPY data line as a C string: after the NUL it sees no line end, so the \. inside the comment ends its data.
    [InlineData("CREATE TABLE public.n (s text);\nCOPY public.n (s) FROM stdin;\nx\0\n\\.\nCOMMENT ON TABLE public.n IS '\n\\.\n{payload}\n-- ';\n",
        "a NUL byte in COPY data; refused")]
    public async Task Postgres_old_dump_with_a_planted_statement_is_refused_and_runs_nothing(string planted, string expected)
    {
        await TestServers.RequirePostgresAsync();
        var source = await _scratch.NewPostgresDatabaseAsync();
        await PgTestDb.ExecAsync(source, "CREATE TABLE t (id int PRIMARY KEY, v text)", "INSERT INTO t VALUES (1, 'one')");
        var dir = _scratch.TempDir("old");
        var plain = Path.Combine(dir, "dump.tmp");
        await Run.PgDumpAsync(plain, "--clean", "--create", "--if-exists", "--dbname", source);
        var marker = $"/tmp/vya-planted-{Guid.NewGuid():N}";
        var role = _scratch.PostgresName("vt_evil_");
        var payload = $"COPY (SELECT 1) TO PROGRAM 'touch {marker}'; CREATE ROLE {role} SUPERUSER LOGIN;";
        var statement = planted.Replace("{payload}", payload, StringComparison.Ordinal)
            .Replace("{marker}", marker, StringComparison.Ordinal).Replace("{role}", role, StringComparison.Ordinal);
        // Latin1: one char one byte, so U+0095 is the raw byte 0x95 and pg_dump's UTF-8 stays as it is.
        var text = await File.ReadAllTextAsync(plain, Encoding.Latin1);
        var table = text.IndexOf("CREATE TABLE public.t", StringComparison.Ordinal);
        Assert.True(table > 0, "pg_dump wrote no CREATE TABLE public.t");
        await File.WriteAllTextAsync(plain, text[..table] + statement + "\n" + text[table..], Encoding.Latin1);
        var file = Package(plain, "sql", source, "postgresql");
        var target = await _scratch.NewPostgresDatabaseAsync();
        await PgTestDb.ExecAsync(target, "CREATE TABLE precious (id int PRIMARY KEY)", "INSERT INTO precious VALUES (7)");
        var before = await PgTestDb.FingerprintAsync(target);
        var config = await Cli.WriteConfigAsync(_scratch.TempDir("cfg"), _scratch.TempDir("backups"));
        try
        {
            var run = await Run.CliAsync("restore", "--file", file, "--instance", "2", "--target", target, "--force", "--config", config);

            Assert.False(File.Exists(marker), "the planted shell command ran on the database host");
            Assert.Equal(0L, Convert.ToInt64(await PgTestDb.ScalarAsync("postgres", "SELECT count(*) FROM pg_roles WHERE rolname = $1", role),
                System.Globalization.CultureInfo.InvariantCulture));
            Assert.True(run.ExitCode == 1, run.ToString());
            var error = Assert.Single(Cli.ErrorLines(run));
            Assert.StartsWith("vya-backupdb: error: ", error, StringComparison.Ordinal);
            Assert.Contains(expected, error, StringComparison.Ordinal);
            DbFingerprint.AssertSame(before, await PgTestDb.FingerprintAsync(target), "the target after a refused restore");
        }
        finally
        {
            File.Delete(marker);
            await PgTestDb.ExecAsync("postgres", $"DROP ROLE IF EXISTS {role}");
        }
    }

    /// <summary>
    /// README: a backup file runs nothing on the database host and touches only its target. An old
    /// pg_dump file with a statement planted that pg_dump never writes but that runs a query as it
    /// loads, with no function of the dump's own: CREATE TABLE ... AS (writing a file on the server
    /// with lo_export, copying pg_authid's password hashes, or writing into another database with
    /// dblink), a materialized view filled as it is created, ALTER COLUMN ... TYPE ... USING, a
    /// partition bound that is an expression. Refused with one line and exit code 1 before it
    /// reaches psql: no file written, the other database and the existing target unchanged.
    /// </summary>
    [SkippableTheory]
    [InlineData("CREATE TABLE public.loot AS SELECT pg_catalog.pg_read_file('/etc/hostname') AS leak, {export} AS o;\n",
        "statement CREATE TABLE ... AS is not something pg_dump writes; refused")]
    [InlineData("CREATE TABLE public.hashes AS TABLE pg_catalog.pg_authid;\n", "statement CREATE TABLE ... AS is not something pg_dump writes; refused")]
    [InlineData("CREATE EXTENSION IF NOT EXISTS dblink WITH SCHEMA public;\n" +
        "CREATE UNLOGGED TABLE public.r AS SELECT public.dblink_exec('{other}', 'DELETE FROM o') AS r;\n",
        "statement CREATE UNLOGGED TABLE ... AS is not something pg_dump writes; refused")]
    [InlineData("CREATE MATERIALIZED VIEW public.mv AS SELECT {export} AS o;\n",
        "statement CREATE MATERIALIZED VIEW ... without WITH NO DATA is not something pg_dump writes; refused")]
    [InlineData("CREATE TABLE public.u (v text);\nINSERT INTO public.u VALUES ('x');\nALTER TABLE public.u ALTER COLUMN v TYPE text USING {export}::text;\n",
        "statement ALTER TABLE ... ALTER ... USING is not something pg_dump writes; refused")]
    [InlineData("CREATE TABLE public.p (a integer) PARTITION BY LIST (a);\nCREATE TABLE public.p1 PARTITION OF public.p FOR VALUES IN ({export});\n",
        "statement CREATE TABLE ... FOR VALUES ... pg_catalog is not something pg_dump writes; refused")]
    [InlineData("CREATE TABLE public.p (a integer) PARTITION BY LIST (a);\nCREATE TABLE public.p1 (a integer);\n" +
        "ALTER TABLE ONLY public.p ATTACH PARTITION public.p1 FOR VALUES IN ({export});\n",
        "statement ALTER TABLE ... FOR VALUES ... pg_catalog is not something pg_dump writes; refused")]
    public async Task Postgres_old_dump_with_a_planted_query_run_at_load_time_is_refused_and_touches_nothing(string planted, string expected)
    {
        await TestServers.RequirePostgresAsync();
        var source = await _scratch.NewPostgresDatabaseAsync();
        await PgTestDb.ExecAsync(source, "CREATE TABLE t (id int PRIMARY KEY, v text)", "INSERT INTO t VALUES (1, 'one')");
        var other = await _scratch.NewPostgresDatabaseAsync();
        await PgTestDb.ExecAsync(other, "CREATE TABLE o (id int PRIMARY KEY)", "INSERT INTO o VALUES (42)");
        var dir = _scratch.TempDir("old");
        var plain = Path.Combine(dir, "dump.tmp");
        await Run.PgDumpAsync(plain, "--clean", "--create", "--if-exists", "--dbname", source);
        var marker = $"/tmp/vya-planted-{Guid.NewGuid():N}";
        var statement = planted
            .Replace("{export}", $"pg_catalog.lo_export(424242, '{marker}')", StringComparison.Ordinal)
            .Replace("{other}", $"host=127.0.0.1 port={TestServers.PgPort} dbname={other} user={TestServers.PgUser} password={TestServers.PgPassword}", StringComparison.Ordinal);
        var text = await File.ReadAllTextAsync(plain);
        var table = text.IndexOf("CREATE TABLE public.t", StringComparison.Ordinal);
        Assert.True(table > 0, "pg_dump wrote no CREATE TABLE public.t");
        // The large object lo_export writes out, made as pg_dump makes one (lo_export cannot see one made in the same statement).
        const string largeObject = "SELECT pg_catalog.lo_create('424242');\n";
        await File.WriteAllTextAsync(plain, text[..table] + largeObject + statement + "\n" + text[table..]);
        var file = Package(plain, "sql", source, "postgresql");
        var target = await _scratch.NewPostgresDatabaseAsync();
        await PgTestDb.ExecAsync(target, "CREATE TABLE precious (id int PRIMARY KEY)", "INSERT INTO precious VALUES (7)");
        var targetBefore = await PgTestDb.FingerprintAsync(target);
        var otherBefore = await PgTestDb.FingerprintAsync(other);
        var config = await Cli.WriteConfigAsync(_scratch.TempDir("cfg"), _scratch.TempDir("backups"));

        var run = await Run.CliAsync("restore", "--file", file, "--instance", "2", "--target", target, "--force", "--config", config);

        Assert.False(File.Exists(marker), "the planted query wrote a file on the database host");
        DbFingerprint.AssertSame(otherBefore, await PgTestDb.FingerprintAsync(other), "another database after a planted query");
        Assert.True(run.ExitCode == 1, run.ToString());
        var error = Assert.Single(Cli.ErrorLines(run));
        Assert.StartsWith("vya-backupdb: error: ", error, StringComparison.Ordinal);
        Assert.Contains(expected, error, StringComparison.Ordinal);
        DbFingerprint.AssertSame(targetBefore, await PgTestDb.FingerprintAsync(target), "the target after a refused restore");
    }

    /// <summary>
    /// README: a backup file touches only its target. An old pg_dump file with a postgres_fdw
    /// chain planted (every statement one pg_dump writes) whose rows go through a foreign table
    /// into another database: refused with one line and exit code 1, the other database keeps its
    /// rows, the existing target is unchanged.
    /// </summary>
    [SkippableTheory]
    [InlineData("COPY public.ft (id) FROM stdin;\n99\n\\.\n", "COPY into foreign table public.ft")]
    [InlineData("INSERT INTO public.ft VALUES (99);\n", "INSERT into foreign table public.ft")]
    public async Task Postgres_old_dump_writing_into_another_database_through_a_foreign_table_is_refused(string rows, string expected)
    {
        await TestServers.RequirePostgresAsync();
        var source = await _scratch.NewPostgresDatabaseAsync();
        await PgTestDb.ExecAsync(source, "CREATE TABLE t (id int PRIMARY KEY, v text)", "INSERT INTO t VALUES (1, 'one')");
        var other = await _scratch.NewPostgresDatabaseAsync();
        await PgTestDb.ExecAsync(other, "CREATE TABLE o (id int PRIMARY KEY)", "INSERT INTO o VALUES (42)");
        var dir = _scratch.TempDir("old");
        var plain = Path.Combine(dir, "dump.tmp");
        await Run.PgDumpAsync(plain, "--clean", "--create", "--if-exists", "--dbname", source);
        var planted =
            "CREATE EXTENSION IF NOT EXISTS postgres_fdw WITH SCHEMA public;\n" +
            $"CREATE SERVER s FOREIGN DATA WRAPPER postgres_fdw OPTIONS (dbname '{other}', host '127.0.0.1', port '{TestServers.PgPort}');\n" +
            $"CREATE USER MAPPING FOR CURRENT_USER SERVER s OPTIONS (\"user\" '{TestServers.PgUser}', password '{TestServers.PgPassword}');\n" +
            "CREATE FOREIGN TABLE public.ft (id integer) SERVER s OPTIONS (table_name 'o');\n" + rows + "\n";
        var text = await File.ReadAllTextAsync(plain);
        var table = text.IndexOf("CREATE TABLE public.t", StringComparison.Ordinal);
        Assert.True(table > 0, "pg_dump wrote no CREATE TABLE public.t");
        await File.WriteAllTextAsync(plain, text[..table] + planted + text[table..]);
        var file = Package(plain, "sql", source, "postgresql");
        var target = await _scratch.NewPostgresDatabaseAsync();
        await PgTestDb.ExecAsync(target, "CREATE TABLE precious (id int PRIMARY KEY)", "INSERT INTO precious VALUES (7)");
        var targetBefore = await PgTestDb.FingerprintAsync(target);
        var otherBefore = await PgTestDb.FingerprintAsync(other);
        var config = await Cli.WriteConfigAsync(_scratch.TempDir("cfg"), _scratch.TempDir("backups"));

        var run = await Run.CliAsync("restore", "--file", file, "--instance", "2", "--target", target, "--force", "--config", config);

        DbFingerprint.AssertSame(otherBefore, await PgTestDb.FingerprintAsync(other), "another database after a planted foreign table");
        Assert.True(run.ExitCode == 1, run.ToString());
        var error = Assert.Single(Cli.ErrorLines(run));
        Assert.Contains(expected, error, StringComparison.Ordinal);
        DbFingerprint.AssertSame(targetBefore, await PgTestDb.FingerprintAsync(target), "the target after a refused restore");
    }

    /// <summary>
    /// pg_dump --create of a template database with a connection limit writes ALTER DATABASE ...
    /// IS_TEMPLATE = true and CONNECTION LIMIT = 1 (planted, the same): the restored target is neither,
    /// so the next restore replaces it; a leftover of ours made a template by an earlier restore is
    /// removed all the same.
    /// </summary>
    [SkippableFact]
    public async Task Postgres_dump_of_a_template_database_restores_into_a_target_later_restores_replace()
    {
        await TestServers.RequirePostgresAsync();
        var source = await _scratch.NewPostgresDatabaseAsync();
        await PgTestDb.ExecAsync(source, "CREATE TABLE t (id int PRIMARY KEY, v text)", "INSERT INTO t VALUES (1, 'one')");
        await PgTestDb.ExecAsync("postgres", $"ALTER DATABASE {source} IS_TEMPLATE true CONNECTION LIMIT 1");
        var dir = _scratch.TempDir("old");
        var plain = Path.Combine(dir, "dump.tmp");
        try
        {
            // Not --clean: for a template it writes UPDATE pg_catalog.pg_database ..., which the filter refuses.
            await Run.PgDumpAsync(plain, "--create", "--dbname", source);
        }
        finally
        {
            await PgTestDb.ExecAsync("postgres", $"ALTER DATABASE {source} IS_TEMPLATE false CONNECTION LIMIT -1");
        }
        var text = await File.ReadAllTextAsync(plain);
        Assert.Contains($"ALTER DATABASE {source} IS_TEMPLATE = true;", text, StringComparison.Ordinal);
        Assert.Contains($"ALTER DATABASE {source} CONNECTION LIMIT = 1;", text, StringComparison.Ordinal);
        var file = Package(plain, "sql", source, "postgresql");
        var target = _scratch.PostgresName();
        var config = await Cli.WriteConfigAsync(_scratch.TempDir("cfg"), _scratch.TempDir("backups"));

        for (var round = 1; round <= 2; round++)
        {
            var run = await Run.CliAsync("restore", "--file", file, "--instance", "2", "--target", target, "--force", "--config", config);

            Assert.True(run.ExitCode == 0, $"restore {round}: {run}");
            Assert.Equal("False -1", await PgTestDb.ScalarAsync("postgres",
                "SELECT datistemplate::text || ' ' || datconnlimit FROM pg_database WHERE datname = $1", target) is string state
                ? state.Replace("false", "False", StringComparison.Ordinal) : null);
            Assert.Equal(1L, await PgTestDb.ScalarAsync(target, "SELECT count(*) FROM t"));
        }

        // A template left by an older restore where the replaced target waits to be dropped.
        var replaced = _scratch.TrackPostgres(VyaBackupDb.Engines.RestoreStaging.ReplacedName(target));
        await PgTestDb.CreateAsync(replaced);
        await PgTestDb.ExecAsync("postgres", $"ALTER DATABASE {PgTestDb.Quote(replaced)} IS_TEMPLATE true");
        var again = await Run.CliAsync("restore", "--file", file, "--instance", "2", "--target", target, "--force", "--config", config);
        Assert.True(again.ExitCode == 0, again.ToString());
        Assert.False(await PgTestDb.ExistsAsync(replaced), $"{replaced} is still there");
    }

    /// <summary>
    /// The statement filter accepts only what pg_dump writes: every kind of object pg_dump dumps
    /// (extensions, partitions, publications, policies, event triggers, large objects, foreign
    /// tables, ...), dumped with each of the old tool's and pg_dump's output options, passes it
    /// whole; the --inserts dump restores to the same database.
    /// </summary>
    [SkippableFact]
    public async Task Postgres_plain_dumps_of_every_kind_of_object_and_option_pass_the_statement_filter()
    {
        await TestServers.RequirePostgresAsync();
        var source = await _scratch.NewPostgresDatabaseAsync();
        await PostgresRoundTripTests.CreateHostileAsync(source, bigRow: false);
        await PgTestDb.ExecAsync(source,
            "CREATE EXTENSION IF NOT EXISTS pg_trgm",
            "CREATE EXTENSION IF NOT EXISTS postgres_fdw",
            "CREATE SCHEMA app",
            "CREATE TABLE app.parted (id int GENERATED ALWAYS AS IDENTITY, at date NOT NULL, doubled int GENERATED ALWAYS AS (id * 2) STORED, PRIMARY KEY (id, at)) PARTITION BY RANGE (at)",
            "CREATE TABLE app.parted_2024 PARTITION OF app.parted FOR VALUES FROM ('2024-01-01') TO ('2025-01-01')",
            "INSERT INTO app.parted (at) VALUES ('2024-03-01'), ('2024-04-01')",
            "CREATE UNLOGGED TABLE app.scratch (v text)",
            "CREATE FUNCTION app.audit() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$",
            "CREATE TRIGGER audited BEFORE INSERT ON app.scratch FOR EACH ROW EXECUTE FUNCTION app.audit()",
            "CREATE FUNCTION app.on_ddl() RETURNS event_trigger LANGUAGE plpgsql AS $$ BEGIN END $$",
            "CREATE EVENT TRIGGER vt_ddl_" + source + " ON ddl_command_end EXECUTE FUNCTION app.on_ddl()",
            "ALTER EVENT TRIGGER vt_ddl_" + source + " DISABLE",
            "CREATE PROCEDURE app.noop() LANGUAGE sql AS $$ SELECT 1 $$",
            "CREATE AGGREGATE app.total(int) (SFUNC = int4pl, STYPE = int)",
            "CREATE DOMAIN app.positive AS int CHECK (VALUE > 0)",
            "CREATE TYPE app.span AS RANGE (SUBTYPE = int)",
            "CREATE COLLATION app.german (provider = libc, locale = 'C')",
            "CREATE TEXT SEARCH CONFIGURATION app.simple2 (COPY = pg_catalog.simple)",
            "CREATE MATERIALIZED VIEW app.counts AS SELECT count(*) AS n FROM app.parted",
            "CREATE VIEW app.recent AS SELECT * FROM app.parted WHERE at > '2024-01-01'",
            "CREATE RULE keep AS ON DELETE TO app.recent DO INSTEAD NOTHING",
            "CREATE STATISTICS app.corr ON id, at FROM app.parted_2024",
            "CREATE PUBLICATION vt_pub_" + source + " FOR TABLE app.parted_2024",
            "ALTER TABLE app.scratch ENABLE ROW LEVEL SECURITY",
            "CREATE POLICY mine ON app.scratch USING (v <> 'hidden')",
            "CREATE SERVER elsewhere FOREIGN DATA WRAPPER postgres_fdw OPTIONS (dbname 'nowhere')",
            "CREATE USER MAPPING FOR CURRENT_USER SERVER elsewhere OPTIONS (user 'nobody')",
            "CREATE FOREIGN TABLE app.remote (id int) SERVER elsewhere",
            "GRANT USAGE ON SCHEMA app TO PUBLIC",
            "GRANT SELECT (id) ON app.parted TO PUBLIC",
            "ALTER DEFAULT PRIVILEGES IN SCHEMA app GRANT SELECT ON TABLES TO PUBLIC",
            "COMMENT ON TABLE app.parted IS 'it''s; \\connect x'",
            "SELECT lo_from_bytea(0, '\\x00ff0d0a5c2e0a'::bytea)",
            "SELECT lo_from_bytea(0, convert_to(repeat('large ', 10000), 'UTF8'))",
            "SELECT setval('ticket_seq', 4242)");
        await PgTestDb.ExecAsync(source, "COMMENT ON LARGE OBJECT " + await PgTestDb.ScalarAsync(source, "SELECT min(oid) FROM pg_largeobject_metadata") + " IS 'blob'");
        string[][] optionSets =
        [
            [],
            ["--clean", "--create", "--if-exists"],
            ["--clean", "--if-exists", "--inserts", "--use-set-session-authorization"],
            ["--column-inserts", "--rows-per-insert=3", "--on-conflict-do-nothing", "--no-owner", "--no-privileges"],
            ["--create", "--blobs", "--quote-all-identifiers", "--disable-dollar-quoting"],
        ];
        var dir = _scratch.TempDir("dumps");
        foreach (var options in optionSets)
        {
            var plain = Path.Combine(dir, "dump.sql");
            await Run.PgDumpAsync(plain, [.. options, "--dbname", source]);
            var text = await File.ReadAllTextAsync(plain);
            foreach (var written in new[] { "CREATE EXTENSION", "ATTACH PARTITION", "CREATE PUBLICATION", "CREATE POLICY", "CREATE EVENT TRIGGER",
                "CREATE FOREIGN TABLE", "CREATE USER MAPPING", "lo_open", "lowrite", "setval", "REFRESH MATERIALIZED VIEW" })
            {
                Assert.True(text.Contains(written, StringComparison.OrdinalIgnoreCase), $"pg_dump {string.Join(' ', options)} wrote no {written}");
            }

            var filter = new VyaBackupDb.Engines.Postgres.PostgresDumpFilter("vt_filtered", _ => true);
            await using var input = File.OpenRead(plain);
            using var output = new MemoryStream();
            var refused = await Record.ExceptionAsync(() => filter.CopyAsync(input, output, CancellationToken.None));
            Assert.True(refused is null, $"pg_dump {string.Join(' ', options)}: {refused?.Message}");
            Assert.True(filter.EndedWithCompletionTrailer, $"pg_dump {string.Join(' ', options)}: no completion trailer");
        }

        var inserts = Path.Combine(dir, $"{source}_20260110_020000.sql");
        await Run.PgDumpAsync(inserts, "--inserts", "--use-set-session-authorization", "--dbname", source);
        var target = _scratch.PostgresName();
        // Trusted: SET SESSION AUTHORIZATION needs a superuser's load.
        await Ops.RestoreAsync(TestServers.Postgres(), inserts, target, trustBackup: true);
        DbFingerprint.AssertSame(await PgTestDb.FingerprintAsync(source), await PgTestDb.FingerprintAsync(target), "restored from pg_dump --inserts");
    }

    [SkippableFact]
    public async Task MySql_legacy_file_name_without_target_names_the_source_database()
    {
        await TestServers.RequireMySqlAsync();
        var (source, file, _, sourceNow, _) = await MakeOldMySqlDumpAsync("sql.gz");
        Assert.Equal($"{source}_20260110_020000.sql.gz", Path.GetFileName(file));
        var config = await Cli.WriteConfigAsync(_scratch.TempDir("cfg"), _scratch.TempDir("backups"));

        var run = await Run.CliAsync("restore", "--file", file, "--instance", "1", "--dry-run", "--config", config);

        Assert.True(run.ExitCode == 0, run.ToString());
        Assert.Contains($"of '{source}' taken 2026-01-10 02:00:00 UTC", run.Stdout, StringComparison.Ordinal);
        Assert.Contains($"into '{source}' on instance 1", run.Stdout, StringComparison.Ordinal);
        DbFingerprint.AssertSame(sourceNow, await MySqlTestDb.FingerprintAsync(source), "the source after a dry run");
    }

    /// <summary>
    /// An old tool's zip named as a PostgreSQL backup that holds a complete MySQL dump (found by a
    /// tester: verify called it truncated, and restore began loading it into PostgreSQL): both say
    /// what the name and the content say, restore exits 2 before any connection is used, verify 4.
    /// </summary>
    [SkippableFact]
    public async Task An_old_file_named_for_one_dbms_holding_the_others_dump_is_refused_saying_so()
    {
        await TestServers.RequireMySqlAsync();
        var (source, mysqlZip, _, _, _) = await MakeOldMySqlDumpAsync("zip");
        var misnamed = Path.Combine(Path.GetDirectoryName(mysqlZip)!, $"20260113_155440_postgresql_{source}.zip");
        File.Move(mysqlZip, misnamed);
        var config = await Cli.WriteConfigAsync(_scratch.TempDir("cfg"), _scratch.TempDir("backups"));
        var target = _scratch.PostgresName();

        var restore = await Run.CliAsync("restore", "--file", misnamed, "--instance", "2", "--target", target, "--force", "--config", config);
        var verify = await Run.CliAsync("verify", "--file", misnamed, "--config", config);

        Assert.True(restore.ExitCode == 2, restore.ToString());
        Assert.Contains("its name says postgresql, but it holds a mysql dump", Assert.Single(Cli.ErrorLines(restore)), StringComparison.Ordinal);
        Assert.False(await TestServers.ExistsAsync(Config.Dbms.PostgreSql, target), "a refused restore created its target");
        Assert.True(verify.ExitCode == 4, verify.ToString());
        Assert.Contains("its name says postgresql, but it holds a complete mysql dump", verify.Stdout + verify.Stderr, StringComparison.Ordinal);
    }

    /// <summary>
    /// A dump of two databases cannot be restored into one target: the restore must fail, write
    /// into neither of the two, and leave no target behind.
    /// </summary>
    [SkippableFact]
    public async Task MySql_dump_of_two_databases_restored_under_a_new_name_fails_and_touches_neither()
    {
        await TestServers.RequireMySqlAsync();
        var a = await _scratch.NewMySqlDatabaseAsync();
        var b = await _scratch.NewMySqlDatabaseAsync();
        foreach (var db in new[] { a, b })
        {
            await MySqlTestDb.ExecAsync(db,
                "CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(50))",
                $"INSERT INTO t VALUES (1, 'in {db}'), (2, 'two')");
        }
        var dir = _scratch.TempDir("old");
        var plain = Path.Combine(dir, "dump.tmp");
        await Run.MySqlDumpAsync(plain, ["--databases", a, b, "--add-drop-database", .. OldMySqlDumpOptions.Split(' ')]);
        var file = Package(plain, "sql.gz", a, "mysql");
        foreach (var db in new[] { a, b })
        {
            await MySqlTestDb.ExecAsync(db, "UPDATE t SET v = 'changed after the dump' WHERE id = 2", "CREATE TABLE after_dump (id INT)");
        }
        var aNow = await MySqlTestDb.FingerprintAsync(a);
        var bNow = await MySqlTestDb.FingerprintAsync(b);
        var target = _scratch.MySqlName();

        var error = await Record.ExceptionAsync(() => Ops.RestoreAsync(TestServers.MySql(), file, target));

        Assert.True(await MySqlTestDb.ExistsAsync(a) && await MySqlTestDb.ExistsAsync(b), "a source database is gone");
        DbFingerprint.AssertSame(aNow, await MySqlTestDb.FingerprintAsync(a), $"database {a} after the restore");
        DbFingerprint.AssertSame(bNow, await MySqlTestDb.FingerprintAsync(b), $"database {b} after the restore");
        Assert.True(error is Errors.VyaException, $"the restore of a two-database dump into one target did not fail cleanly: {error?.ToString() ?? "it succeeded"}");
        Assert.False(await MySqlTestDb.ExistsAsync(target), $"the failed restore left the target {target} behind");
    }

    /// <summary>
    /// An old-tool dump someone planted a statement in (anyone who can write to the bucket can):
    /// the client's charset command hiding a USE of another database, a write into another
    /// database, a file written on the server, statements after the completion trailer. Each is
    /// refused with one line and exit code 1; the target keeps its data, the other database its
    /// rows, and no file appears.
    /// </summary>
    [SkippableTheory]
    [InlineData("\\C utf8mb4\nUSE `{other}`;\n", "a client command (\\C)")]
    [InlineData("INSERT INTO `{other}`.`o` VALUES (99);\n", "another database")]
    [InlineData("SELECT 1 INTO OUTFILE '{marker}';\n", "a SELECT statement other than SETVAL")]
    [InlineData("PREPARE s FROM 'DROP TABLE `{other}`.`o`';\nEXECUTE s;\n", "a PREPARE statement")]
    [InlineData("after the trailer: DROP TABLE `t`;\n", "does not end with the dump's completion trailer")]
    // The server reads gbk's 0x81 0x5c as one character (the filter an escaped quote), "b\" under
    // ANSI_QUOTES as a name, -- before a control character and a comment of a later version as
    // comments: each time the DROP would ride in what looks like one statement.
    [InlineData("/*!40101 SET NAMES gbk */;\nCREATE TABLE `x` (`a` varbinary(10));\nINSERT INTO `x` VALUES ('\u4e01\\'); DROP TABLE `{other}`.`o`; -- ');\n",
        "sets the client character set to gbk")]
    [InlineData("/*!40101 SET SQL_MODE='ANSI_QUOTES' */;\nCREATE TABLE `x` (`a` int, `b\\` int);\nINSERT INTO `x` VALUES (1, \"b\\\"); DROP TABLE `{other}`.`o`; -- \");\n",
        "a quoted name in an INSERT's rows")]
    [InlineData("CREATE TABLE `x` (`a` int) --\u0001 '\n; DROP TABLE `{other}`.`o`; -- '\n;\n", "a -- comment marker before a control character")]
    [InlineData("CREATE TABLE `x` (`a` int) /*!999999 ' */ ; DROP TABLE `{other}`.`o`; -- ' */;\n", "a quote inside a /*!...*/ comment whose version this server skips")]
    [InlineData("DELIMITER ;;\nCREATE PROCEDURE `p`() BEGIN SELECT 1; END; DROP TABLE `{other}`.`o` ;;\nDELIMITER ;\n",
        "a ';' at which the server ends the CREATE statement")]
    [InlineData("DELIMITER ;;\nCREATE TABLE `x` (`a` int); DROP TABLE `{other}`.`o` ;;\nDELIMITER ;\n", "a ';' inside a statement under a DELIMITER of its own")]
    [InlineData("CREATE VIEW `vv` AS SELECT `id` FROM `{other}`.`o`;\nINSERT INTO `vv` VALUES (7);\n", "an INSERT into a view (vv)")]
    [InlineData("CREATE TABLE `m` (`id` int) ENGINE=MRG_MyISAM UNION=(`{other}`.`o`) INSERT_METHOD=LAST;\nINSERT INTO `m` VALUES (7);\n",
        "creates table m over a sequence or table of another database")]
    // The server decodes '\gbk' to gbk (then 0x81 0x5c is one character); 1.SELECT is the number 1. and the keyword SELECT.
    [InlineData("SET NAMES '\\gbk';\nCREATE TABLE `x` (`a` varbinary(10));\nINSERT INTO `x` VALUES ('\u4e01\\'); DROP TABLE `{other}`.`o`; -- ');\n",
        "sets the client character set to \\gbk")]
    [InlineData("SET sql_mode = '\\NO_BACKSLASH_ESCAPES';\nCREATE TABLE `x` (`a` varbinary(10));\nINSERT INTO `x` VALUES ('\\'); DROP TABLE `{other}`.`o`; -- ');\n",
        "a SET sql_mode to a value this check cannot read")]
    [InlineData("CREATE TABLE `x` (`a` int) AUTO_INCREMENT=1.SELECT `id` AS `b` FROM `{other}`.`o`;\n", "a CREATE TABLE ... SELECT statement")]
    // The server skips a comment of a later version: the statement it reads is the INSERT, not the DROP.
    [InlineData("/*!999999 DROP TABLE x */ INSERT INTO `{other}`.`o` SELECT 43;\n", "on a table or other object of another database")]
    // The server reads @@global . x and @@session/**/.x as a scope and its variable: a general log written on the server,
    // ANSI_QUOTES on (then "a\" ends a name where the client reads on in a string).
    [InlineData("SET @@global . general_log_file = '{marker}';\nSET @@global/**/.general_log = 1;\nCREATE TABLE `x` (`a` int);\nSET @@GLOBAL .general_log = 0;\n",
        "a SET GLOBAL statement")]
    [InlineData("SET @@SESSION .sql_mode = 'ANSI_QUOTES';\nCREATE VIEW `vv` AS SELECT 1 AS \"a\\\";INSERT INTO `{other}`.`o` VALUES (99);DO 1 -- \";\n",
        "a SET of a variable in another form than name, @var, @@name or @@session.name")]
    // Under latin1 the byte 0xE4 ({E4}) is the ä of utf8mb4: one table to the server, whose trigger the INSERT fires.
    [InlineData("SET NAMES latin1;\nCREATE TABLE `{E4}` (`a` int);\nDELIMITER ;;\nCREATE TRIGGER `tr` BEFORE INSERT ON `{E4}` FOR EACH ROW INSERT INTO `{other}`.`o` VALUES (77) ;;\nDELIMITER ;\nSET NAMES utf8mb4;\nINSERT INTO `ä` VALUES (1);\n",
        "an INSERT into a table whose trigger the dump created first (ä)")]
    public async Task A_planted_mysql_dump_is_refused_and_touches_neither_its_target_nor_another_database(string payload, string expected)
    {
        await TestServers.RequireMySqlAsync();
        var source = await _scratch.NewMySqlDatabaseAsync();
        await MySqlTestDb.ExecAsync(source, "CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(20))", "INSERT INTO t VALUES (1, 'backup')");
        var other = await _scratch.NewMySqlDatabaseAsync();
        // MyISAM: a MERGE table over it would take rows
        await MySqlTestDb.ExecAsync(other, "CREATE TABLE o (id INT PRIMARY KEY) ENGINE=MyISAM", "INSERT INTO o VALUES (42)");
        var target = await _scratch.NewMySqlDatabaseAsync();
        await MySqlTestDb.ExecAsync(target, "CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(20))", "INSERT INTO t VALUES (1, 'old'), (2, 'old')");
        var otherBefore = await MySqlTestDb.FingerprintAsync(other);
        var targetBefore = await MySqlTestDb.FingerprintAsync(target);
        var marker = Path.Combine(Path.GetTempPath(), $"vya-itest-outfile-{Guid.NewGuid():N}");

        var dir = _scratch.TempDir("old");
        var plain = Path.Combine(dir, "dump.tmp");
        await Run.MySqlDumpAsync(plain, [source, .. OldMySqlDumpOptions.Split(' ')]);
        var text = await File.ReadAllTextAsync(plain);
        var planted = payload.Replace("{other}", other, StringComparison.Ordinal).Replace("{marker}", marker, StringComparison.Ordinal);
        const string afterTrailer = "after the trailer: ";
        text = planted.StartsWith(afterTrailer, StringComparison.Ordinal)
            ? text + planted[afterTrailer.Length..]
            : text.Replace("DROP TABLE IF EXISTS `t`;", planted + "DROP TABLE IF EXISTS `t`;", StringComparison.Ordinal);
        Assert.Contains(planted.Replace(afterTrailer, "", StringComparison.Ordinal), text, StringComparison.Ordinal);
        // {E4}: the single byte 0xE4, latin1's ä (not UTF-8).
        await File.WriteAllBytesAsync(plain, [.. text.Split("{E4}").SelectMany((part, k) => k == 0 ? Encoding.UTF8.GetBytes(part) : [0xE4, .. Encoding.UTF8.GetBytes(part)])]);
        var file = Package(plain, "sql", source, "mysql");
        var config = await Cli.WriteConfigAsync(_scratch.TempDir("cfg"), _scratch.TempDir("backups"));

        var run = await Run.CliAsync("restore", "--file", file, "--instance", "1", "--target", target, "--force", "--config", config);

        Assert.True(run.ExitCode == 1, run.ToString());
        Assert.Contains(expected, Assert.Single(Cli.ErrorLines(run)), StringComparison.Ordinal);
        DbFingerprint.AssertSame(targetBefore, await MySqlTestDb.FingerprintAsync(target), "the target of a refused planted dump");
        DbFingerprint.AssertSame(otherBefore, await MySqlTestDb.FingerprintAsync(other), "another database after a planted dump");
        Assert.False(File.Exists(marker), "a planted dump wrote a file on the server");
    }

    /// <summary>
    /// A table created with DATA DIRECTORY (planted, or as a real table on another disk is dumped) would have the
    /// server write its files in that directory: refused with one line, target and directory unchanged; with
    /// --allow-data-directory the same backup restores, its table file where the dump says.
    /// </summary>
    [SkippableFact]
    public async Task A_mysql_table_with_a_data_directory_is_restored_there_only_when_allowed()
    {
        await TestServers.RequireMySqlAsync();
        var source = await _scratch.NewMySqlDatabaseAsync();
        await MySqlTestDb.ExecAsync(source, "CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(20)) ENGINE=InnoDB", "INSERT INTO t VALUES (1, 'backup')");
        var target = await _scratch.NewMySqlDatabaseAsync();
        await MySqlTestDb.ExecAsync(target, "CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(20))", "INSERT INTO t VALUES (1, 'old'), (2, 'old')");
        var targetBefore = await MySqlTestDb.FingerprintAsync(target);
        // The server's account must be able to write there.
        var tableFiles = _scratch.TempDir("table-files");
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(tableFiles, (UnixFileMode)Convert.ToInt32("777", 8));
        }

        var dir = _scratch.TempDir("old");
        var plain = Path.Combine(dir, "dump.tmp");
        await Run.MySqlDumpAsync(plain, [source, .. OldMySqlDumpOptions.Split(' ')]);
        var text = await File.ReadAllTextAsync(plain);
        Assert.Contains(") ENGINE=InnoDB", text, StringComparison.Ordinal);
        await File.WriteAllTextAsync(plain, text.Replace(") ENGINE=InnoDB", $") ENGINE=InnoDB DATA DIRECTORY='{tableFiles}'", StringComparison.Ordinal));
        var file = Package(plain, "sql", source, "mysql");
        var config = await Cli.WriteConfigAsync(_scratch.TempDir("cfg"), _scratch.TempDir("backups"));

        var refused = await Run.CliAsync("restore", "--file", file, "--instance", "1", "--target", target, "--force", "--config", config);

        Assert.True(refused.ExitCode == 1, refused.ToString());
        Assert.Contains("creates table t with a DATA or INDEX DIRECTORY", Assert.Single(Cli.ErrorLines(refused)), StringComparison.Ordinal);
        DbFingerprint.AssertSame(targetBefore, await MySqlTestDb.FingerprintAsync(target), "the target of a refused restore");
        Assert.Empty(Directory.EnumerateFileSystemEntries(tableFiles));

        var allowed = await Run.CliAsync("restore", "--file", file, "--instance", "1", "--target", target, "--force", "--allow-data-directory", "--config", config);

        Assert.True(allowed.ExitCode == 0, allowed.ToString());
        DbFingerprint.AssertSame(await MySqlTestDb.FingerprintAsync(source), await MySqlTestDb.FingerprintAsync(target), "the restored target");
        // InnoDB keeps the file in a folder named after the database it was created in (the restore's staging one),
        // and the table's link file in that database's folder, which then cannot be dropped before the table.
        Assert.Single(Directory.EnumerateFiles(tableFiles, "t.ibd", SearchOption.AllDirectories));
        var kept = Assert.Single(allowed.Stderr.Split('\n'), l => l.Contains("could not be dropped", StringComparison.Ordinal));
        Assert.Contains("keeps its link file there); leave it while such a table exists", kept, StringComparison.Ordinal);
        _scratch.TrackMySql(System.Text.RegularExpressions.Regex.Match(kept, "'(vya_restore_[^']+)'").Groups[1].Value);
    }
}
