using System.Globalization;
using System.Text;

namespace VyaBackupDb.Tests.Integration;

/// <summary>
/// A PostgreSQL restore by an instance whose account is a superuser loads the dump as a temporary
/// LOGIN role (vya_restore_..., no SUPERUSER, CREATEDB or CREATEROLE) that owns the staging
/// database for the load: code the dump defines (a CHECK constraint, a column DEFAULT, an index
/// expression) runs with that role's rights, never the superuser's. Owners, privileges and default
/// privileges still come back (the statements only a superuser may run are held back and run by
/// the instance's account after the load); the role is dropped afterwards, also after a failure.
/// A dump that needs superuser rights (an untrusted extension) fails with one line naming
/// --trust-backup, and loads as the instance's account with it.
/// All through the real CLI, against the real test server.
/// </summary>
/// <remarks>
/// Leftover roles and databases are looked for by the target's name (the role and the staging
/// database are named after the target: vya_restore_HASH_target), not by the prefix alone: other
/// test classes restore on the same server at the same time.
/// </remarks>
[Trait("Category", "Integration")]
public sealed class PostgresLoadRoleTests : IAsyncLifetime
{
    private const string Header = """
        --
        -- PostgreSQL database dump
        --

        -- Dumped from database version 15.18
        -- Dumped by pg_dump version 15.18

        SET statement_timeout = 0;
        SET lock_timeout = 0;
        SET idle_in_transaction_session_timeout = 0;
        SET client_encoding = 'UTF8';
        SET standard_conforming_strings = on;
        SELECT pg_catalog.set_config('search_path', '', false);
        SET check_function_bodies = false;
        SET xmloption = content;
        SET client_min_messages = warning;
        SET row_security = off;

        SET default_tablespace = '';

        SET default_table_access_method = heap;


        """;

    private const string Footer = """


        --
        -- PostgreSQL database dump complete
        --


        """;

    private readonly Scratch _scratch = new();
    private readonly List<string> _roles = [];
    private readonly List<string> _files = [];

    public Task InitializeAsync() => _scratch.InitializeAsync();

    public async Task DisposeAsync()
    {
        try
        {
            // First the databases: the roles own objects and hold privileges in them.
            await _scratch.DisposeAsync();
        }
        finally
        {
            foreach (var file in _files)
            {
                File.Delete(file);
            }
            foreach (var role in _roles)
            {
                await PgTestDb.ExecAsync("postgres", $"DROP ROLE IF EXISTS {PgTestDb.Quote(role)}");
            }
        }
    }

    // ---------------------------------------------------------------- 1. the load runs as another account

    /// <summary>
    /// The load runs as the temporary role, and the role is gone afterwards. A pg_dump-style file
    /// whose table takes a column's DEFAULT current_user for the rows COPY loads (COPY names only
    /// id): the restored rows name a role starting vya_restore_, not the instance's account, and
    /// that role no longer exists. What the dump gives the instance's account (OWNER TO vya_test)
    /// and what it gives no one (a sequence without OWNER TO) both end up the instance's account's,
    /// as does the database. Fails on today's main: the load runs as vya_test, so who = vya_test.
    /// </summary>
    [SkippableFact]
    public async Task The_load_runs_as_a_temporary_role_that_is_dropped_afterwards()
    {
        await TestServers.RequirePostgresAsync();
        var file = await WriteDumpAsync($"""
            CREATE TABLE public.t (
                id integer NOT NULL,
                who text DEFAULT CURRENT_USER
            );


            ALTER TABLE public.t OWNER TO {TestServers.PgUser};

            CREATE SEQUENCE public.s
                START WITH 1
                INCREMENT BY 1
                NO MINVALUE
                NO MAXVALUE
                CACHE 1;


            COPY public.t (id) FROM stdin;
            1
            2
            3
            \.


            SELECT pg_catalog.setval('public.s', 3, true);


            ALTER TABLE ONLY public.t
                ADD CONSTRAINT t_pkey PRIMARY KEY (id);
            """);
        var target = _scratch.PostgresName();

        var run = await RestoreAsync(await ConfigAsync(), file, target);

        Assert.True(run.ExitCode == 0, run.ToString());
        var who = await PgTestDb.RowsAsync(target, "SELECT DISTINCT who FROM public.t");
        var loader = Assert.Single(who);
        Assert.NotEqual(TestServers.PgUser, loader);
        Assert.StartsWith("vya_restore_", loader, StringComparison.Ordinal);
        Assert.Equal(3L, await PgTestDb.ScalarAsync(target, "SELECT count(*) FROM public.t"));
        Assert.False(await RoleExistsAsync(loader), $"the load's role {loader} is still there after the restore");
        await AssertNoLeftoversAsync(target);
        Assert.Equal(
            new[] { $"database|{TestServers.PgUser}", $"s|{TestServers.PgUser}", $"t_pkey|{TestServers.PgUser}", $"t|{TestServers.PgUser}" },
            (await PgTestDb.RowsAsync(target,
                "SELECT 'database|' || pg_get_userbyid(datdba) FROM pg_database WHERE datname = current_database() "
                + "UNION ALL SELECT c.relname || '|' || pg_get_userbyid(c.relowner) FROM pg_class c "
                + "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public' ORDER BY 1")).Order(StringComparer.Ordinal));
    }

    /// <summary>
    /// The same for genuine backups of every engine: a CHECK constraint (checked on each row COPY
    /// loads: psql's for pg_dump, the parallel engine's own connections) and an expression index
    /// (built after the data, and evaluated again by ANALYZE) call a function that raises when it
    /// runs as a superuser outside the source database. The restore succeeds and the copy equals
    /// the source. Fails on today's main: the function raises ("code of the backup ran as the
    /// superuser vya_test") and the restore fails.
    /// </summary>
    [SkippableTheory]
    [MemberData(nameof(PgEngines.All), MemberType = typeof(PgEngines))]
    public async Task A_genuine_backup_loads_as_no_superuser(string engine)
    {
        await TestServers.RequirePostgresAsync();
        var source = await _scratch.NewPostgresDatabaseAsync();
        await PgTestDb.ExecAsync(source,
            "CREATE FUNCTION public.guard(v integer) RETURNS integer LANGUAGE plpgsql IMMUTABLE AS $$ BEGIN "
            + $"IF pg_catalog.current_database() <> '{source}' AND pg_catalog.current_setting('is_superuser') = 'on' THEN "
            + "RAISE EXCEPTION 'code of the backup ran as the superuser %', current_user; END IF; RETURN v; END $$",
            "CREATE TABLE public.t (id integer PRIMARY KEY, v text, CONSTRAINT t_guard CHECK (public.guard(id) IS NOT NULL))",
            "INSERT INTO public.t SELECT g, 'row ' || g FROM generate_series(1, 200) g",
            "CREATE INDEX t_guard_idx ON public.t (public.guard(id))");
        var before = await PgTestDb.FingerprintAsync(source);
        var backupDir = _scratch.TempDir("backups");
        var config = await ConfigAsync(backupDir, engine);
        var file = await BackupAsync(config, backupDir, source);
        var target = _scratch.PostgresName();

        var run = await RestoreAsync(config, file, target);

        Assert.True(run.ExitCode == 0, $"{engine}: {run}");
        DbFingerprint.AssertSame(before, await PgTestDb.FingerprintAsync(target), $"restored copy ({engine})");
        await AssertNoLeftoversAsync(target);
    }

    /// <summary>
    /// An unlogged table with a serial column: PostgreSQL 15 makes its sequence unlogged too, and
    /// pg_dump writes CREATE UNLOGGED SEQUENCE. Both engines restore it with its rows, its
    /// sequence's value and both unlogged. Found by a tester: the backup succeeded and every
    /// restore refused it ("statement CREATE UNLOGGED is not something pg_dump writes").
    /// </summary>
    /// <summary>
    /// A database of thousands of tables (a tester's 5,000: the backup said OK and every default
    /// restore failed "out of shared memory"): REASSIGN OWNED, handing the load role's objects to
    /// the instance's account, locked them all in one transaction, past the server's lock table
    /// (max_locks_per_transaction 64). The tables now go over a few hundred at a time.
    /// </summary>
    [SkippableFact]
    public async Task A_database_of_thousands_of_tables_restores_as_no_superuser()
    {
        await TestServers.RequirePostgresAsync();
        var source = await _scratch.NewPostgresDatabaseAsync();
        // 200 tables per transaction: creating them all in one would run out of the lock table itself.
        // Each with a TOAST table and four indexes: every one of them is locked when the table changes owner.
        await PgTestDb.ExecAsync(source, [.. Enumerable.Range(0, 10).Select(b => $"DO $$ BEGIN FOR i IN {b * 200 + 1}..{b * 200 + 200} LOOP "
            + "EXECUTE format('CREATE TABLE public.t%s (id integer PRIMARY KEY, v text UNIQUE, w integer UNIQUE, x integer UNIQUE); "
            + "INSERT INTO public.t%s VALUES (%s, %L, %s, %s)', i, i, i, 'row ' || i, i, i); "
            + "END LOOP; END $$")]);
        var backupDir = _scratch.TempDir("backups");
        var config = await ConfigAsync(backupDir, PgEngines.Dump);
        var file = await BackupAsync(config, backupDir, source);
        var target = _scratch.PostgresName();

        var run = await RestoreAsync(config, file, target);

        Assert.True(run.ExitCode == 0, run.ToString());
        Assert.Equal(2000L, await PgTestDb.ScalarAsync(target,
            $"SELECT count(*) FROM pg_catalog.pg_class c WHERE c.relkind = 'r' AND c.relnamespace = 'public'::regnamespace AND c.relowner = '{TestServers.PgUser}'::regrole"));
        Assert.Equal("row 1999", await PgTestDb.ScalarAsync(target, "SELECT v FROM public.t1999"));
    }

    [SkippableTheory]
    [InlineData(PgEngines.Dump)]
    [InlineData(PgEngines.Parallel4)]
    public async Task An_unlogged_table_with_a_serial_column_restores(string engine)
    {
        await TestServers.RequirePostgresAsync();
        var source = await _scratch.NewPostgresDatabaseAsync();
        await PgTestDb.ExecAsync(source, "CREATE UNLOGGED TABLE public.sessions (id serial PRIMARY KEY, v text)",
            "INSERT INTO public.sessions (v) SELECT 'row ' || g FROM generate_series(1, 5) g");
        var backupDir = _scratch.TempDir("backups");
        var config = await ConfigAsync(backupDir, engine);
        var file = await BackupAsync(config, backupDir, source);
        var target = _scratch.PostgresName();

        var run = await RestoreAsync(config, file, target);

        Assert.True(run.ExitCode == 0, $"{engine}: {run}");
        Assert.Equal(5L, await PgTestDb.ScalarAsync(target, "SELECT count(*) FROM public.sessions"));
        Assert.Equal(6L, await PgTestDb.ScalarAsync(target, "SELECT nextval('public.sessions_id_seq')"));
        Assert.Equal(["sessions|u", "sessions_id_seq|u"], await PgTestDb.RowsAsync(target,
            "SELECT relname || '|' || relpersistence::text FROM pg_class WHERE relname IN ('sessions', 'sessions_id_seq') ORDER BY relname COLLATE \"C\""));
        await AssertNoLeftoversAsync(target);
    }

    // ---------------------------------------------------------------- 2. planted code cannot act as superuser

    /// <summary>
    /// A planted dump: a plpgsql function that creates a SUPERUSER role (or runs a shell command
    /// through COPY ... TO PROGRAM, writing a file), called for the rows COPY loads by a CHECK constraint or a
    /// column DEFAULT, or by an index built after the data. The load's role may do neither: the
    /// role does not exist and the file was not written, the restore fails with one line (no stack
    /// trace), a new target is not created and an existing one keeps its content, and neither the
    /// load's role nor its staging database is left. Fails on today's main: the load runs as the
    /// superuser, the function creates the role (or the file) and the restore succeeds.
    /// </summary>
    [SkippableTheory]
    [InlineData("check", "role", false)]
    [InlineData("check", "role", true)]
    [InlineData("default", "role", false)]
    [InlineData("default", "role", true)]
    [InlineData("index", "role", false)]
    [InlineData("index", "role", true)]
    [InlineData("check", "program", true)]
    [InlineData("default", "program", false)]
    [InlineData("index", "program", true)]
    public async Task Code_a_dump_defines_cannot_act_as_superuser(string where, string payload, bool existingTarget)
    {
        await TestServers.RequirePostgresAsync();
        var marker = TrackRole("vt_escalated_");
        var touched = Path.Combine(Path.GetTempPath(), $"vya-planted-{Guid.NewGuid():N}");
        _files.Add(touched);
        var action = payload == "role"
            ? $"IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = '{marker}') THEN\n        EXECUTE 'CREATE ROLE {marker} SUPERUSER';\n    END IF;"
            // A program that reads what COPY writes (touch does not: COPY may then fail on a broken pipe after it ran).
            : $"EXECUTE 'COPY (SELECT 1) TO PROGRAM ''cat > {touched}''';";
        // The index needs an IMMUTABLE function, and a non-volatile plpgsql function may not run
        // CREATE ROLE or COPY itself ("not allowed in a non-volatile function"): it calls a volatile one that does.
        var function = $"""
            CREATE FUNCTION public.act() RETURNS void
                LANGUAGE plpgsql
                AS $$
            BEGIN
                {action}
            END
            $$;


            ALTER FUNCTION public.act() OWNER TO {TestServers.PgUser};


            CREATE FUNCTION public.planted(integer) RETURNS integer
                LANGUAGE plpgsql IMMUTABLE
                AS $$
            BEGIN
                PERFORM public.act();
                RETURN $1;
            END
            $$;


            ALTER FUNCTION public.planted(integer) OWNER TO {TestServers.PgUser};


            """;
        var table = where switch
        {
            "check" => "CREATE TABLE public.t (\n    id integer,\n    CONSTRAINT t_id_check CHECK ((public.planted(id) IS NOT NULL))\n);\n",
            "default" => "CREATE TABLE public.t (\n    id integer,\n    tag integer DEFAULT public.planted(0)\n);\n",
            _ => "CREATE TABLE public.t (\n    id integer\n);\n",
        };
        var index = where == "index" ? "\n\nCREATE INDEX t_planted_idx ON public.t USING btree (public.planted(id));\n" : "";
        var file = await WriteDumpAsync(function + table + $"""


            ALTER TABLE public.t OWNER TO {TestServers.PgUser};


            COPY public.t (id) FROM stdin;
            1
            2
            3
            \.

            """ + index);
        var target = existingTarget ? await _scratch.NewPostgresDatabaseAsync() : _scratch.PostgresName();
        DbFingerprint? before = null;
        if (existingTarget)
        {
            await PgTestDb.ExecAsync(target, "CREATE TABLE precious (id int PRIMARY KEY)", "INSERT INTO precious VALUES (7)");
            before = await PgTestDb.FingerprintAsync(target);
        }

        var run = await RestoreAsync(await ConfigAsync(), file, target);

        Assert.False(await RoleExistsAsync(marker), $"the dump's {where} created the superuser role {marker}: {run}");
        Assert.False(File.Exists(touched), $"the dump's {where} ran a shell command on the database host: {run}");
        AssertOneLineFailure(run);
        if (before is null)
        {
            Assert.False(await PgTestDb.ExistsAsync(target), $"the failed restore created {target}");
        }
        else
        {
            DbFingerprint.AssertSame(before, await PgTestDb.FingerprintAsync(target), "the existing target after a failed restore");
        }
        await AssertNoLeftoversAsync(target);

        // The control: the planted code is live and the filter passes the file; trusted, it runs as the superuser.
        var trusted = await RestoreAsync(await ConfigAsync(), file, _scratch.PostgresName(), "--trust-backup");
        Assert.True(trusted.ExitCode == 0, trusted.ToString());
        Assert.True(payload == "role" ? await RoleExistsAsync(marker) : File.Exists(touched), $"the planted {where} did not run under --trust-backup");
    }

    /// <summary>
    /// The same through genuine backups of every engine (the parallel engine loads rows on its own
    /// connections and builds indexes after them): a function that creates a SUPERUSER role when
    /// called outside the source database, in a CHECK constraint or an index expression. The role
    /// never exists, the restore fails in one line, the target is not created, nothing is left.
    /// Fails on today's main: the restore runs the function as the superuser, creating the role,
    /// and succeeds.
    /// </summary>
    [SkippableTheory]
    [MemberData(nameof(EnginesAndPlaces))]
    public async Task Code_in_a_genuine_backup_cannot_act_as_superuser(string engine, string where)
    {
        await TestServers.RequirePostgresAsync();
        var marker = TrackRole("vt_escalated_");
        var source = await _scratch.NewPostgresDatabaseAsync();
        await PgTestDb.ExecAsync(source,
            "CREATE FUNCTION public.act() RETURNS void LANGUAGE plpgsql AS $$ BEGIN "
            + $"IF pg_catalog.current_database() <> '{source}' AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = '{marker}') THEN "
            + $"EXECUTE 'CREATE ROLE {marker} SUPERUSER'; END IF; END $$",
            // IMMUTABLE for the index; it calls the volatile one (a non-volatile function may not run CREATE ROLE itself).
            "CREATE FUNCTION public.planted(v integer) RETURNS integer LANGUAGE plpgsql IMMUTABLE AS $$ BEGIN PERFORM public.act(); RETURN v; END $$",
            where == "check"
                ? "CREATE TABLE public.t (id integer PRIMARY KEY, CONSTRAINT t_planted CHECK (public.planted(id) IS NOT NULL))"
                : "CREATE TABLE public.t (id integer PRIMARY KEY)",
            "INSERT INTO public.t SELECT generate_series(1, 100)");
        if (where == "index")
        {
            await PgTestDb.ExecAsync(source, "CREATE INDEX t_planted_idx ON public.t (public.planted(id))");
        }
        Assert.False(await RoleExistsAsync(marker));
        var backupDir = _scratch.TempDir("backups");
        var config = await ConfigAsync(backupDir, engine);
        var file = await BackupAsync(config, backupDir, source);
        Assert.False(await RoleExistsAsync(marker), $"the backup ({engine}) ran the database's function");
        var target = _scratch.PostgresName();

        var run = await RestoreAsync(config, file, target);

        Assert.False(await RoleExistsAsync(marker), $"the restore ({engine}) ran the backup's {where} as superuser: {run}");
        AssertOneLineFailure(run);
        Assert.False(await PgTestDb.ExistsAsync(target), $"the failed restore created {target}");
        await AssertNoLeftoversAsync(target);

        // The control: the planted code is live; trusted, it runs as the superuser.
        var trusted = await RestoreAsync(config, file, _scratch.PostgresName(), "--trust-backup");
        Assert.True(trusted.ExitCode == 0, trusted.ToString());
        Assert.True(await RoleExistsAsync(marker), $"the planted {where} did not run under --trust-backup ({engine})");
    }

    public static TheoryData<string, string> EnginesAndPlaces()
    {
        var data = new TheoryData<string, string>();
        foreach (var engine in new[] { PgEngines.Dump, PgEngines.Parallel1, PgEngines.Parallel4 })
        {
            data.Add(engine, "check");
            data.Add(engine, "index");
        }
        return data;
    }

    /// <summary>
    /// What the instance's account runs after the load (the held-back OWNER TO, with the dump's
    /// last search_path statement before it) is read as the filter read it: a set_config of
    /// search_path written while standard_conforming_strings was off, whose string read with it
    /// on would end at its backslash and go on as statements (CREATE ROLE ... SUPERUSER, COPY ...
    /// TO PROGRAM), is one string in the replay too. Found by a tester: the replay ran it as
    /// the superuser, exit 0, and `verify --restore` said OK.
    /// </summary>
    [SkippableTheory]
    [InlineData("restore")]
    [InlineData("verify")]
    public async Task The_statements_run_after_the_load_are_read_as_the_filter_read_them(string command)
    {
        await TestServers.RequirePostgresAsync();
        var marker = TrackRole("vt_escalated_");
        var file = await WriteDumpAsync($"""
            SET standard_conforming_strings = off;
            SELECT pg_catalog.set_config('search_path', 'x\',false);CREATE/**/ROLE/**/{marker}/**/SUPERUSER;--', false);
            SET standard_conforming_strings = on;

            CREATE TABLE public.t (a integer);

            ALTER TABLE public.t OWNER TO {TestServers.PgUser};

            """);
        var config = await ConfigAsync();
        var target = _scratch.PostgresName();

        var run = command == "restore"
            ? await RestoreAsync(config, file, target)
            : await Run.CliAsync("verify", "--file", file, "--instance", "2", "--restore", "--config", config);

        Assert.False(await RoleExistsAsync(marker), $"the replay ran the planted statement as the superuser ({command}): {run}");
        Assert.True(run.ExitCode == 0, run.ToString());
    }

    /// <summary>
    /// A second set_config in one SELECT (of client_encoding, to SJIS, where 0x83 0x5C is one
    /// character to psql) is refused: the filter read only the first, so psql read what followed
    /// otherwise. Found by a tester: the SELECT also set search_path, so the replay after the load
    /// ran it as the superuser before a held-back COMMENT ON EXTENSION whose E'...' string psql
    /// then ended early: CREATE ROLE ... SUPERUSER ran, exit 0 (and without the replay, a DROP
    /// DATABASE of another database hidden the same way ran as the loading account).
    /// </summary>
    [SkippableFact]
    public async Task A_second_set_config_in_a_select_is_refused()
    {
        await TestServers.RequirePostgresAsync();
        var marker = TrackRole("vt_escalated_");
        var file = await WriteDumpAsync("""
            SELECT pg_catalog.set_config('search_path', '', false), pg_catalog.set_config('client_encoding', 'SJIS', false);
            CREATE TABLE public.t (a text);
            COMMENT ON EXTENSION plpgsql IS E'\u0083\' ; CREATE ROLE MARKER SUPERUSER; -- '
            ;
            """.Replace("MARKER", marker, StringComparison.Ordinal));
        // The byte 0x83 itself, not its UTF-8 form.
        await File.WriteAllBytesAsync(file, Encoding.Latin1.GetBytes((await File.ReadAllTextAsync(file)).Replace("\\u0083", "\u0083", StringComparison.Ordinal)));
        var target = _scratch.PostgresName();

        var run = await RestoreAsync(await ConfigAsync(), file, target);

        var error = AssertOneLineFailure(run);
        Assert.Contains("set_config is not something pg_dump writes", error, StringComparison.Ordinal);
        Assert.False(await RoleExistsAsync(marker), "the hidden CREATE ROLE ran");
        Assert.False(await PgTestDb.ExistsAsync(target), $"the refused restore created {target}");
        await AssertNoLeftoversAsync(target);
    }

    /// <summary>
    /// What the instance's account runs after the load never reaches beyond what the load created
    /// (found by a tester, each exit 0): a search_path SELECT replayed before the held-back
    /// statements called the dump's own lo_create as the superuser (set_config is now its SELECT's
    /// only call, refused otherwise); grants under SET SESSION AUTHORIZATION of a superuser gave PUBLIC pg_read_file
    /// and pg_authid (a grantee must exist and be no superuser); an OWNER TO gave a pg_catalog
    /// function and pg_catalog itself away (the built-in objects' owners and privileges are compared
    /// before and after, and the restore fails naming --trust-backup). Nothing is left.
    /// </summary>
    [SkippableTheory]
    [InlineData("search_path")]
    [InlineData("grant")]
    [InlineData("owner")]
    [InlineData("definer")]
    [InlineData("setting")]
    [InlineData("default privileges")]
    [InlineData("library setting")]
    public async Task What_runs_after_the_load_touches_only_what_the_load_created(string how)
    {
        await TestServers.RequirePostgresAsync();
        var marker = TrackRole("vt_escalated_");
        var nobody = TrackRole("vt_nobody_");
        await PgTestDb.ExecAsync("postgres", $"CREATE ROLE {nobody} NOLOGIN");
        var body = how switch
        {
            "search_path" => $"""
                CREATE SCHEMA evil;
                CREATE FUNCTION evil.lo_create(integer) RETURNS oid
                    LANGUAGE plpgsql
                    AS $_$
                BEGIN
                  IF (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user) THEN
                    EXECUTE 'CREATE ROLE {marker} SUPERUSER';
                  END IF;
                  RETURN 0;
                END
                $_$;
                CREATE TABLE evil.t (a integer);
                SET search_path = evil, pg_catalog;
                ALTER TABLE evil.t OWNER TO {TestServers.PgUser};
                SELECT pg_catalog.set_config('search_path', '', false), lo_create(0);
                ALTER SCHEMA evil OWNER TO {TestServers.PgUser};

                """,
            "grant" => $"""
                CREATE TABLE public.t (a integer);
                SET SESSION AUTHORIZATION {TestServers.PgUser};
                GRANT ALL ON FUNCTION pg_catalog.pg_read_file(text) TO PUBLIC;
                GRANT SELECT ON TABLE pg_catalog.pg_authid TO PUBLIC;
                RESET SESSION AUTHORIZATION;

                """,
            "owner" => $"""
                CREATE TABLE public.t (a integer);
                ALTER FUNCTION pg_catalog.pg_read_binary_file(text) OWNER TO {nobody};
                ALTER SCHEMA pg_catalog OWNER TO {nobody};

                """,
            // Round 4: SET x.owner TO ... read as an owner change; every DO block then ran as the bootstrap superuser.
            "definer" => $"""
                CREATE TABLE public.t (a integer);
                ALTER FUNCTION pg_catalog.plpgsql_inline_handler(internal) SECURITY DEFINER SET vt.owner TO {nobody};

                """,
            // Round 4: a superuser-only setting (every session of the copy skips triggers and foreign keys).
            "setting" => $"""
                CREATE TABLE public.t (a integer);
                ALTER DATABASE vt_planted SET session_replication_role TO replica;

                """,
            // Round 5: the tables the superuser creates later in the copy, open to PUBLIC.
            "default privileges" => $"""
                CREATE TABLE public.t (a integer);
                ALTER DEFAULT PRIVILEGES FOR ROLE {TestServers.PgUser} GRANT ALL ON TABLES TO PUBLIC;

                """,
            // Round 5: a superuser-only setting of a library this session has not loaded.
            _ => $"""
                CREATE TABLE public.t (a integer);
                ALTER DATABASE vt_planted SET pg_stat_statements.track TO 'none';

                """,
        };
        var file = await WriteDumpAsync(body);
        var target = _scratch.PostgresName();

        var run = await RestoreAsync(await ConfigAsync(), file, target);

        var error = AssertOneLineFailure(run);
        // A SELECT of set_config and another call is no pg_dump's, trusted or not.
        Assert.Contains(how == "search_path" ? "is not something pg_dump writes" : "--trust-backup", error, StringComparison.Ordinal);
        Assert.False(await RoleExistsAsync(marker), $"the dump's function ran as the superuser ({how})");
        Assert.False(await PgTestDb.ExistsAsync(target), $"the refused restore created {target}");
        await AssertNoLeftoversAsync(target);
    }

    /// <summary>
    /// The load role owns the staging database, so the dump's code may alter it where the filter
    /// cannot see (a CHECK's function running ALTER DATABASE ... IS_TEMPLATE true and CONNECTION
    /// LIMIT 0): the target is still no template and takes connections (found by a tester: the
    /// copy was a template with no connections, exit 0).
    /// </summary>
    [SkippableFact]
    public async Task The_target_is_no_template_whatever_the_loads_code_made_of_it()
    {
        await TestServers.RequirePostgresAsync();
        var file = await WriteDumpAsync("""
            CREATE FUNCTION public.f(i integer) RETURNS boolean LANGUAGE plpgsql AS $$
            BEGIN EXECUTE format('ALTER DATABASE %I IS_TEMPLATE true', current_database());
                  EXECUTE format('ALTER DATABASE %I CONNECTION LIMIT 0', current_database()); RETURN true; END $$;
            CREATE TABLE public.t (i integer CHECK (public.f(i)));
            COPY public.t (i) FROM stdin;
            1
            \.

            """);
        var target = _scratch.PostgresName();

        var run = await RestoreAsync(await ConfigAsync(), file, target);

        Assert.True(run.ExitCode == 0, run.ToString());
        Assert.Equal("false|-1|true", await PgTestDb.ScalarAsync("postgres",
            "SELECT datistemplate || '|' || datconnlimit || '|' || datallowconn FROM pg_database WHERE datname = $1", target));
        await AssertNoLeftoversAsync(target);
    }

    /// <summary>
    /// A role may change its own password: the load's code gives the load role one someone knows
    /// (in a genuine backup, a CHECK constraint's function on one table's first row; another
    /// table's sleeps while someone tries to log in with it and create a table in another database
    /// whose public schema PUBLIC may create in). The role can log in only while the load's own
    /// sessions log in, so nobody does; the restore fails in one line naming the changed password,
    /// the target is not created, the role is gone, and a later restore into the target works.
    /// Found by a tester: someone logged in during the load and created the table. The plain
    /// engine: its one psql session loads on, so the sleep is seconds of trying; a parallel load
    /// refuses at the next login of one of its sessions, often within
    /// milliseconds, too soon for a fixed time of trying (it made this test flaky): the parallel
    /// case is A_password_change_timed_to_a_login_window_logs_in_nowhere.
    /// </summary>
    [SkippableTheory]
    [InlineData(PgEngines.Dump)]
    public async Task A_password_the_loads_code_gives_its_role_logs_in_nowhere(string engine)
    {
        await TestServers.RequirePostgresAsync();
        const string Known = "vt-known-password";
        var other = await _scratch.NewPostgresDatabaseAsync();
        await PgTestDb.ExecAsync(other, "GRANT CREATE ON SCHEMA public TO PUBLIC");
        var source = await _scratch.NewPostgresDatabaseAsync();
        // They act only as a load role (never as the test's own account, in the source). The
        // password is changed by one table's COPY, committed with it; the other's sleeps.
        const string AsLoadRole = "current_user::text LIKE 'vya\\_restore\\_%' AND i = 1";
        await PgTestDb.ExecAsync(source,
            $"CREATE FUNCTION public.change(i integer) RETURNS boolean LANGUAGE plpgsql AS $$ BEGIN IF {AsLoadRole} THEN "
            + $"EXECUTE format('ALTER ROLE %I PASSWORD %L', current_user, '{Known}'); END IF; RETURN true; END $$",
            $"CREATE FUNCTION public.slow(i integer) RETURNS boolean LANGUAGE plpgsql AS $$ BEGIN IF {AsLoadRole} THEN "
            + "PERFORM pg_catalog.pg_sleep(5); END IF; RETURN true; END $$",
            "CREATE TABLE public.a (i integer CHECK (public.change(i)))",
            "CREATE TABLE public.b (i integer CHECK (public.slow(i)))",
            "INSERT INTO public.a SELECT generate_series(1, 100)",
            "INSERT INTO public.b SELECT generate_series(1, 100)");
        var backupDir = _scratch.TempDir("backups");
        var config = await ConfigAsync(backupDir, engine);
        var file = await BackupAsync(config, backupDir, source);
        var target = _scratch.PostgresName();
        var role = Engines.RestoreStaging.StagingName(target);

        var restore = RestoreAsync(config, file, target);
        var builder = new Npgsql.NpgsqlConnectionStringBuilder(TestServers.PgConnectionString(other)) { Username = role, Password = Known, Pooling = false };
        var planted = false;
        var attempts = 0;
        while (!planted && !restore.IsCompleted)
        {
            try
            {
                attempts++;
                await using var intruder = new Npgsql.NpgsqlConnection(builder.ConnectionString);
                await intruder.OpenAsync();
                await using var create = new Npgsql.NpgsqlCommand("CREATE TABLE public.vt_planted (a int)", intruder);
                await create.ExecuteNonQueryAsync();
                planted = true;
            }
            catch (Npgsql.PostgresException)
            {
                await Task.Delay(20);
            }
        }
        var run = await restore;

        Assert.False(planted, $"someone logged in as the load role with the password its code gave it: {run}");
        Assert.True(attempts > 10, $"the restore ended before the test could try to log in ({attempts} attempts): {run}");
        Assert.Equal(0L, await PgTestDb.ScalarAsync(other, "SELECT count(*) FROM pg_class WHERE relname = 'vt_planted'"));
        var error = AssertOneLineFailure(run);
        Assert.True(error.Contains("changed the password of the role that loads it", StringComparison.Ordinal), error);
        Assert.False(await PgTestDb.ExistsAsync(target), $"the failed restore created {target}");
        Assert.False(await RoleExistsAsync(role), $"the load role is left: {run}");
        await AssertNoLeftoversAsync(target);
        // A later restore into the same target is not blocked by anything left.
        var next = await RestoreAsync(await ConfigAsync(), await WriteDumpAsync("CREATE TABLE public.u (a integer);\n"), target);
        Assert.True(next.ExitCode == 0, next.ToString());
    }

    /// <summary>
    /// The load's code waits for another session's login window (the role's VALID UNTIL, which
    /// anyone may read, in the future), then gives the role a known password, while eight clients
    /// try to log in with it. A window holds pg_authid: the change cannot commit while the role
    /// may log in, so nobody does; the restore fails naming the changed password and leaves no role.
    /// Found by a tester: every client logged in, within the window.
    /// </summary>
    [SkippableFact]
    public async Task A_password_change_timed_to_a_login_window_logs_in_nowhere()
    {
        await TestServers.RequirePostgresAsync();
        const string Known = "vt-known-password";
        var other = await _scratch.NewPostgresDatabaseAsync();
        await PgTestDb.ExecAsync(other, "GRANT CREATE ON SCHEMA public TO PUBLIC");
        var source = await _scratch.NewPostgresDatabaseAsync();
        await PgTestDb.ExecAsync(source,
            "CREATE FUNCTION public.chk(i integer) RETURNS boolean LANGUAGE plpgsql AS $$ BEGIN "
            + "IF current_user::text LIKE 'vya\\_restore\\_%' AND i = 42 THEN "
            + "FOR n IN 1..20000 LOOP "
            + "IF EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = current_user AND rolvaliduntil > pg_catalog.now()) THEN "
            + $"EXECUTE pg_catalog.format('ALTER ROLE %I PASSWORD %L', current_user, '{Known}'); RETURN true; END IF; "
            + "PERFORM pg_catalog.pg_sleep(0.001); END LOOP; END IF; RETURN true; END $$",
            "CREATE TABLE public.a (i integer CHECK (public.chk(i)))",
            "INSERT INTO public.a VALUES (42)");
        for (var t = 1; t <= 4; t++)
        {
            await PgTestDb.ExecAsync(source, $"CREATE TABLE public.b{t} (id integer PRIMARY KEY, v text)",
                $"INSERT INTO public.b{t} SELECT g, md5(g::text) FROM generate_series(1, 20000) g");
        }
        var backupDir = _scratch.TempDir("backups");
        var config = await ConfigAsync(backupDir, PgEngines.Parallel4);
        var file = await BackupAsync(config, backupDir, source);
        var target = _scratch.PostgresName();
        var role = Engines.RestoreStaging.StagingName(target);

        var restore = RestoreAsync(config, file, target);
        var builder = new Npgsql.NpgsqlConnectionStringBuilder(TestServers.PgConnectionString(other)) { Username = role, Password = Known, Pooling = false };
        var logins = 0;
        var intruders = Enumerable.Range(0, 8).Select(_ => Task.Run(async () =>
        {
            while (!restore.IsCompleted)
            {
                try
                {
                    await using var intruder = new Npgsql.NpgsqlConnection(builder.ConnectionString);
                    await intruder.OpenAsync();
                    Interlocked.Increment(ref logins);
                    await using var create = new Npgsql.NpgsqlCommand("CREATE TABLE IF NOT EXISTS public.vt_planted (a int)", intruder);
                    await create.ExecuteNonQueryAsync();
                }
                catch (Npgsql.NpgsqlException)
                {
                }
            }
        })).ToList();
        var run = await restore;
        await Task.WhenAll(intruders);

        Assert.True(logins == 0, $"{logins} logins as the load role with the password its code gave it: {run}");
        Assert.Equal(0L, await PgTestDb.ScalarAsync(other, "SELECT count(*) FROM pg_class WHERE relname = 'vt_planted'"));
        var error = AssertOneLineFailure(run);
        Assert.True(error.Contains("changed the password of the role that loads it", StringComparison.Ordinal), error);
        Assert.False(await RoleExistsAsync(role), $"the load role is left: {run}");
        await AssertNoLeftoversAsync(target);
    }

    /// <summary>
    /// A run killed (SIGKILL) while its load role may log in (psql's start held back 3 s, so that
    /// the window stays open) leaves that login for a few seconds at most: the role's VALID UNTIL.
    /// Found by a tester: a window was a minute long, and a password change the load's code had
    /// queued behind its lock committed once the killed run was gone: anyone could log in with it.
    /// </summary>
    [SkippableFact]
    public async Task A_run_killed_while_its_load_role_may_log_in_leaves_that_login_for_seconds()
    {
        await TestServers.RequirePostgresAsync();
        var source = await _scratch.NewPostgresDatabaseAsync();
        await PgTestDb.ExecAsync(source, "CREATE TABLE public.t (id integer PRIMARY KEY)", "INSERT INTO public.t SELECT generate_series(1, 10)");
        var backupDir = _scratch.TempDir("backups");
        var config = await ConfigAsync(backupDir, PgEngines.Dump);
        var file = await BackupAsync(config, backupDir, source);
        var tools = _scratch.TempDir("slow-psql");
        var bin = Directory.GetDirectories("/usr/lib/postgresql").Order().Last() + "/bin/";
        await File.WriteAllTextAsync(Path.Combine(tools, "psql"), $"#!/bin/sh\nsleep 3\nexec {bin}psql \"$@\"\n");
        await File.WriteAllTextAsync(Path.Combine(tools, "pg_dump"), $"#!/bin/sh\nexec {bin}pg_dump \"$@\"\n");
        if (!OperatingSystem.IsWindows())
        {
            foreach (var tool in Directory.GetFiles(tools))
            {
                File.SetUnixFileMode(tool, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            }
        }
        var slowConfig = await ConfigAsync(backupDir, PgEngines.Dump, toolsDir: tools);
        var target = _scratch.PostgresName();
        var role = Engines.RestoreStaging.StagingName(target);

        double validFor;
        using (var killed = Run.StartCli("restore", "--file", file, "--instance", "2", "--target", target, "--force", "--config", slowConfig))
        {
            var clock = System.Diagnostics.Stopwatch.StartNew();
            // psql's window: one still open 300 ms later (a connection's own window lasts milliseconds).
            var open = $"SELECT rolvaliduntil::text FROM pg_roles WHERE rolname = '{role}' AND rolvaliduntil > now()";
            while (await PgTestDb.ScalarAsync("postgres", open) is not string window || await DelayedAsync(300, () => PgTestDb.ScalarAsync("postgres", open)) as string != window)
            {
                Assert.False(killed.HasExited, "the restore ended before its load role could log in");
                Assert.True(clock.Elapsed < TimeSpan.FromSeconds(60), "the load role's login window did not open within 60 s");
                await Task.Delay(20);
            }
            killed.Kill();
            await killed.WaitForExitAsync();
            validFor = Convert.ToDouble(await PgTestDb.ScalarAsync("postgres",
                $"SELECT extract(epoch FROM rolvaliduntil - now()) FROM pg_roles WHERE rolname = '{role}'"), CultureInfo.InvariantCulture);
        }

        Assert.True(validFor <= Engines.Postgres.PostgresEngine.LoginWindowSeconds, $"the killed run's load role may log in for {validFor:0.0} s more");
        // The next restore into the target drops the killed run's role.
        var next = await RestoreAsync(config, file, target);
        Assert.True(next.ExitCode == 0, next.ToString());
        Assert.False(await RoleExistsAsync(role), $"the killed run's load role is left: {next}");
        await AssertNoLeftoversAsync(target);
    }

    /// <summary>
    /// Restores that run at the same time on one server (three parallel ones, twice), and one while
    /// another session has changed a role without committing for two seconds (an administrator's
    /// open ALTER ROLE): each waits for the other's login windows and all succeed. Found by a
    /// tester: two at once failed each other with "deadlock detected" half the time, and an open
    /// ALTER ROLE anywhere failed every restore with "canceling statement due to lock timeout".
    /// </summary>
    [SkippableFact]
    public async Task Restores_at_the_same_time_or_beside_a_role_change_all_succeed()
    {
        await TestServers.RequirePostgresAsync();
        var source = await _scratch.NewPostgresDatabaseAsync();
        for (var t = 1; t <= 3; t++)
        {
            await PgTestDb.ExecAsync(source, $"CREATE TABLE public.t{t} (id integer PRIMARY KEY, v text)",
                $"INSERT INTO public.t{t} SELECT g, md5(g::text) FROM generate_series(1, 5000) g");
        }
        var backupDir = _scratch.TempDir("backups");
        var config = await ConfigAsync(backupDir, PgEngines.Parallel4);
        var file = await BackupAsync(config, backupDir, source);

        for (var round = 0; round < 2; round++)
        {
            var runs = await Task.WhenAll(Enumerable.Range(0, 3).Select(_ => RestoreAsync(config, file, _scratch.PostgresName())));
            Assert.All(runs, run => Assert.True(run.ExitCode == 0, run.ToString()));
        }

        var changer = TrackRole("vt_changer_");
        await PgTestDb.ExecAsync("postgres", $"CREATE ROLE {changer} LOGIN PASSWORD 'vt-pw'");
        var holding = Task.Run(async () =>
        {
            await using var connection = new Npgsql.NpgsqlConnection(TestServers.PgConnectionString("postgres"));
            await connection.OpenAsync();
            await using var transaction = await connection.BeginTransactionAsync();
            await using var alter = new Npgsql.NpgsqlCommand($"ALTER ROLE {changer} PASSWORD 'vt-pw2'; SELECT pg_sleep(2)", connection, transaction);
            await alter.ExecuteNonQueryAsync();
            await transaction.CommitAsync();
        });
        await Task.Delay(300);
        var beside = await RestoreAsync(config, file, _scratch.PostgresName());
        await holding;
        Assert.True(beside.ExitCode == 0, beside.ToString());
    }

    /// <summary>
    /// A parallel restore whose load runs the backup's code for minutes (a CHECK that sleeps) stops
    /// at its timeout: the role's sessions end, the run fails in one line, nothing is left. Found by
    /// a tester: it said "timed out after 20 s" and exited when the server's statement ended, 60 s later.
    /// </summary>
    [SkippableFact]
    public async Task A_restore_stopped_by_its_timeout_does_not_wait_for_the_loads_code()
    {
        await TestServers.RequirePostgresAsync();
        var source = await _scratch.NewPostgresDatabaseAsync();
        await PgTestDb.ExecAsync(source,
            "CREATE FUNCTION public.slow(i integer) RETURNS boolean LANGUAGE plpgsql AS $$ BEGIN "
            + "IF current_user::text LIKE 'vya\\_restore\\_%' THEN PERFORM pg_catalog.pg_sleep(120); END IF; RETURN true; END $$",
            "CREATE TABLE public.a (i integer CHECK (public.slow(i)))",
            "INSERT INTO public.a VALUES (1)");
        var backupDir = _scratch.TempDir("backups");
        var config = await ConfigAsync(backupDir, PgEngines.Parallel4, timeoutSeconds: 15);
        var file = await BackupAsync(config, backupDir, source);
        var target = _scratch.PostgresName();
        var clock = System.Diagnostics.Stopwatch.StartNew();

        var run = await RestoreAsync(config, file, target);

        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(60), $"the restore took {clock.Elapsed} with a 15 s timeout: {run}");
        var error = AssertOneLineFailure(run);
        Assert.True(error.Contains("timed out", StringComparison.Ordinal), error);
        Assert.False(await RoleExistsAsync(Engines.RestoreStaging.StagingName(target)), $"the load role is left: {run}");
        await AssertNoLeftoversAsync(target);
    }

    /// <summary>
    /// A database set read-only by default (ALTER DATABASE ... SET default_transaction_read_only =
    /// on), whose settings the staging database gets before the load: its genuine backup restores,
    /// with the setting. Found by a tester: "cannot execute COMMENT in a read-only transaction",
    /// even with --trust-backup. With it settings any owner may set whose names pg_settings spells
    /// in mixed case (TimeZone, DateStyle), which were refused as a superuser's.
    /// </summary>
    [SkippableTheory]
    [InlineData(PgEngines.Dump)]
    [InlineData(PgEngines.Parallel4)]
    public async Task A_database_read_only_by_default_restores(string engine)
    {
        await TestServers.RequirePostgresAsync();
        var source = await _scratch.NewPostgresDatabaseAsync();
        await PgTestDb.ExecAsync(source, "CREATE TABLE public.t (id integer PRIMARY KEY)", "INSERT INTO public.t SELECT generate_series(1, 10)",
            "COMMENT ON TABLE public.t IS 'kept'", $"ALTER DATABASE {source} SET timezone = 'Europe/Paris'",
            $"ALTER DATABASE {source} SET DateStyle = 'SQL, DMY'", $"ALTER DATABASE {source} SET default_transaction_read_only = on");
        var backupDir = _scratch.TempDir("backups");
        var config = await ConfigAsync(backupDir, engine);
        var file = await BackupAsync(config, backupDir, source);
        var target = _scratch.PostgresName();

        var run = await RestoreAsync(config, file, target);

        Assert.True(run.ExitCode == 0, run.ToString());
        Assert.Equal(10L, await PgTestDb.ScalarAsync(target, "SELECT count(*) FROM public.t"));
        Assert.Equal("{TimeZone=Europe/Paris,\"DateStyle=SQL, DMY\",default_transaction_read_only=on}", await PgTestDb.ScalarAsync("postgres",
            $"SELECT s.setconfig::text FROM pg_db_role_setting s JOIN pg_database d ON d.oid = s.setdatabase WHERE d.datname = '{target}'"));
    }

    /// <summary>
    /// owners: true and pg_dump --create: the database's owner is the dump's (ALTER DATABASE ...
    /// OWNER TO, held back), not the one it had before the load (found by a tester: the hand-over
    /// set the old owner back after the replay).
    /// </summary>
    [SkippableFact]
    public async Task With_owners_a_create_dumps_database_owner_is_kept()
    {
        await TestServers.RequirePostgresAsync();
        var (owner, _) = await CreateOwnerRolesAsync();
        var source = await _scratch.NewPostgresDatabaseAsync();
        await PgTestDb.ExecAsync("postgres", $"ALTER DATABASE {source} OWNER TO {owner}");
        await PgTestDb.ExecAsync(source, "CREATE TABLE t (a int)");
        var backupDir = _scratch.TempDir("backups");
        var file = Path.Combine(backupDir, $"{source}_20260110_020000.sql");
        await Run.PgDumpAsync(file, "--create", "--dbname", source);
        var target = _scratch.PostgresName();

        var run = await RestoreAsync(await ConfigAsync(backupDir, PgEngines.Dump, owners: true), file, target);

        Assert.True(run.ExitCode == 0, run.ToString());
        Assert.Equal(owner, await PgTestDb.ScalarAsync("postgres", "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = $1", target));
        await AssertNoLeftoversAsync(target);
    }

    // ---------------------------------------------------------------- 3. owners kept

    /// <summary>
    /// Compatibility: a plain pg_dump file with owners and privileges (the server's own pg_dump,
    /// no --no-owner / --no-privileges) of a database where a NOLOGIN role owns a schema, a table
    /// with rows, a sequence, a view, a function and a large object, with a GRANT and default
    /// privileges for another role, comes back with the same owners (pg_class, pg_namespace,
    /// pg_proc, pg_largeobject_metadata), ACLs, default privileges, rows, sequence value and large
    /// object content; the database itself is the instance account's. Passes on today's main (the
    /// superuser load runs OWNER TO, GRANT and ALTER DEFAULT PRIVILEGES as written); it guards that
    /// a load as a role that may not give objects away still ends the same.
    /// </summary>
    [SkippableFact]
    public async Task A_pg_dump_file_with_owners_and_privileges_keeps_them()
    {
        await TestServers.RequirePostgresAsync();
        var (owner, reader) = await CreateOwnerRolesAsync();
        var source = await _scratch.NewPostgresDatabaseAsync();
        await FillOwnedAsync(source, owner, reader);
        var expected = await OwnershipAsync(source);
        var dir = _scratch.TempDir("dump");
        var file = Path.Combine(dir, $"{source}_20260110_020000.sql");
        await Run.PgDumpAsync(file, "--dbname", source);
        var text = await File.ReadAllTextAsync(file);
        Assert.Contains("ALTER LARGE OBJECT ", text, StringComparison.Ordinal);
        Assert.Contains($"ALTER DEFAULT PRIVILEGES FOR ROLE {owner} IN SCHEMA s GRANT SELECT ON TABLES  TO {reader};", text, StringComparison.Ordinal);
        var target = _scratch.PostgresName();

        var run = await RestoreAsync(await ConfigAsync(), file, target);

        Assert.True(run.ExitCode == 0, run.ToString());
        Assert.Equal(expected, await OwnershipAsync(target));
        DbFingerprint.AssertSame(await PgTestDb.FingerprintAsync(source), await PgTestDb.FingerprintAsync(target), "the restored copy");
        Assert.Equal(TestServers.PgUser,
            await PgTestDb.ScalarAsync("postgres", "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = $1", target));
        await AssertNoLeftoversAsync(target);
    }

    /// <summary>
    /// Compatibility: the old tool's pg_dump --clean --create --if-exists file of a database with
    /// what only a superuser may restore though it runs no code: a role's setting in it (ALTER ROLE
    /// ... IN DATABASE ... SET), a superuser-only database setting (log_min_duration_statement), a
    /// grant by a grantee WITH GRANT OPTION (pg_dump wraps it in SET SESSION AUTHORIZATION) and a
    /// publication FOR ALL TABLES. It restores with all of them, owners and ACLs as the source's.
    /// Each failed the restore before it was held back for the instance's account (found by a tester).
    /// </summary>
    [SkippableFact]
    public async Task An_old_tools_create_dump_keeps_a_roles_setting_in_the_database()
    {
        await TestServers.RequirePostgresAsync();
        var (owner, reader) = await CreateOwnerRolesAsync();
        var source = await _scratch.NewPostgresDatabaseAsync();
        await FillOwnedAsync(source, owner, reader);
        var other = TrackRole("vt_other_");
        await PgTestDb.ExecAsync("postgres", $"CREATE ROLE {other} NOLOGIN",
            $"ALTER ROLE {reader} IN DATABASE {source} SET work_mem = '7MB'",
            $"ALTER DATABASE {source} SET statement_timeout = '42s'", $"ALTER DATABASE {source} SET log_min_duration_statement = '1s'");
        await PgTestDb.ExecAsync(source, $"GRANT USAGE ON SCHEMA s TO {reader}", $"GRANT SELECT ON s.t TO {reader} WITH GRANT OPTION", $"SET ROLE {reader}", $"GRANT SELECT ON s.t TO {other}",
            "RESET ROLE", "CREATE PUBLICATION vt_pub FOR ALL TABLES");
        var expected = await OwnershipAsync(source);
        var file = Path.Combine(_scratch.TempDir("dump"), $"{source}_20260110_020000.sql");
        await Run.PgDumpAsync(file, "--clean", "--create", "--if-exists", "--dbname", source);
        var text = await File.ReadAllTextAsync(file);
        Assert.Contains($"ALTER ROLE {reader} IN DATABASE {source} SET work_mem TO '7MB';", text, StringComparison.Ordinal);
        Assert.Contains($"SET SESSION AUTHORIZATION {reader};", text, StringComparison.Ordinal);
        var target = _scratch.PostgresName();

        var run = await RestoreAsync(await ConfigAsync(), file, target);

        Assert.True(run.ExitCode == 0, run.ToString());
        Assert.Equal(expected, await OwnershipAsync(target));
        Assert.Equal(1L, await PgTestDb.ScalarAsync(target, "SELECT count(*) FROM pg_publication WHERE pubname = 'vt_pub' AND puballtables"));
        Assert.Equal(
            [$"{reader}|work_mem=7MB", "-|statement_timeout=42s,log_min_duration_statement=1s"],
            await PgTestDb.RowsAsync("postgres",
                "SELECT coalesce(r.rolname, '-') || '|' || array_to_string(s.setconfig, ',') FROM pg_db_role_setting s "
                + "JOIN pg_database d ON d.oid = s.setdatabase LEFT JOIN pg_roles r ON r.oid = s.setrole WHERE d.datname = $1 ORDER BY 1 DESC",
                target));
        await AssertNoLeftoversAsync(target);
    }

    /// <summary>
    /// Compatibility: an instance with owners: true backs up and restores the same database with
    /// every engine, owners, ACLs, default privileges, rows and the large object equal. Passes on
    /// today's main.
    /// </summary>
    [SkippableTheory]
    [MemberData(nameof(PgEngines.All), MemberType = typeof(PgEngines))]
    public async Task An_owners_instance_round_trip_keeps_owners_and_privileges(string engine)
    {
        await TestServers.RequirePostgresAsync();
        var (owner, reader) = await CreateOwnerRolesAsync();
        var source = await _scratch.NewPostgresDatabaseAsync();
        await FillOwnedAsync(source, owner, reader);
        var expected = await OwnershipAsync(source);
        var backupDir = _scratch.TempDir("backups");
        var config = await ConfigAsync(backupDir, engine, owners: true);
        var file = await BackupAsync(config, backupDir, source);
        var target = _scratch.PostgresName();

        var run = await RestoreAsync(config, file, target);

        Assert.True(run.ExitCode == 0, $"{engine}: {run}");
        Assert.Equal(expected, await OwnershipAsync(target));
        DbFingerprint.AssertSame(await PgTestDb.FingerprintAsync(source), await PgTestDb.FingerprintAsync(target), $"restored copy ({engine})");
        await AssertNoLeftoversAsync(target);
    }

    /// <summary>
    /// <summary>
    /// owners: true, a materialized view owned by a plain role over a table (of another role) whose
    /// row-level security policy lets each role see its own rows, read directly or through a view.
    /// The load refreshes it as the load role (owner of every table then: every row); refreshing it
    /// as its owner would run the backup's query as an existing role. So the restore is refused in one
    /// line naming the view and the table, before the swap: the old target is unchanged. With
    /// --trust-backup PostgreSQL itself refuses the refresh (as it does pg_dump's own file: its
    /// row_security = off): never the rows the owner may not see. Found by a tester: the restore
    /// succeeded with rows the view's owner may not read. Fails on today's main.
    /// </summary>
    [SkippableTheory]
    [InlineData("directly")]
    [InlineData("through a view")]
    public async Task A_materialized_view_over_row_level_security_is_refused_without_trust_backup(string how)
    {
        await TestServers.RequirePostgresAsync();
        var (owner, reader) = await CreateOwnerRolesAsync();
        var source = await _scratch.NewPostgresDatabaseAsync();
        await PgTestDb.ExecAsync(source,
            "CREATE TABLE public.acct (id integer PRIMARY KEY, holder name)",
            $"INSERT INTO public.acct VALUES (1, '{reader}'), (2, 'alice'), (3, 'bob')",
            $"ALTER TABLE public.acct OWNER TO {owner}",
            "ALTER TABLE public.acct ENABLE ROW LEVEL SECURITY",
            "CREATE POLICY own ON public.acct USING (holder = current_user)",
            $"GRANT SELECT ON public.acct TO {reader}",
            "CREATE VIEW public.acct_view AS SELECT id, holder FROM public.acct",
            $"ALTER VIEW public.acct_view OWNER TO {reader}",
            $"CREATE MATERIALIZED VIEW public.mine AS SELECT id, holder FROM {(how == "directly" ? "public.acct" : "public.acct_view")} WITH NO DATA",
            $"ALTER MATERIALIZED VIEW public.mine OWNER TO {reader}",
            "REFRESH MATERIALIZED VIEW public.mine");
        const string Mine = "SELECT id || ' ' || holder FROM public.mine ORDER BY id";
        var expected = await PgTestDb.RowsAsync(source, Mine);
        Assert.Equal([$"1 {reader}"], expected);
        var backupDir = _scratch.TempDir("backups");
        var config = await ConfigAsync(backupDir, PgEngines.Dump, owners: true);
        var file = await BackupAsync(config, backupDir, source);
        var target = _scratch.PostgresName();
        await PgTestDb.ExecAsync("postgres", $"CREATE DATABASE {target}");
        await PgTestDb.ExecAsync(target, "CREATE TABLE public.old (v text)", "INSERT INTO public.old VALUES ('old target')");

        var refused = await RestoreAsync(config, file, target);

        var error = AssertOneLineFailure(refused);
        Assert.Contains("public.mine", error, StringComparison.Ordinal);
        Assert.Contains("public.acct", error, StringComparison.Ordinal);
        Assert.Equal(["old target"], await PgTestDb.RowsAsync(target, "SELECT v FROM public.old"));
        await AssertNoLeftoversAsync(target);

        var trusted = await RestoreAsync(config, file, target, "--trust-backup");

        if (trusted.ExitCode == 0)
        {
            Assert.Equal(expected, await PgTestDb.RowsAsync(target, Mine));
        }
        else
        {
            AssertOneLineFailure(trusted);
            Assert.Equal(["old target"], await PgTestDb.RowsAsync(target, "SELECT v FROM public.old"));
        }
    }

    // ---------------------------------------------------------------- 4. an untrusted extension

    /// <summary>
    /// A dump that creates postgres_fdw (an untrusted extension: only a superuser may create it,
    /// and with it a database reaches other servers): without --trust-backup the restore fails in
    /// one line naming --trust-backup, creating nothing and leaving nothing; with --trust-backup
    /// it loads as the instance's account and the extension and rows are there. Fails on today's
    /// main: the first restore succeeds (the superuser creates the extension), and --trust-backup
    /// is not an option.
    /// </summary>
    [SkippableFact]
    public async Task An_untrusted_extension_needs_trust_backup()
    {
        await TestServers.RequirePostgresAsync();
        await RequireExtensionAsync("postgres_fdw");
        var file = await WriteDumpAsync("""
            CREATE EXTENSION IF NOT EXISTS postgres_fdw WITH SCHEMA public;


            COMMENT ON EXTENSION postgres_fdw IS 'foreign-data wrapper for remote PostgreSQL servers';


            CREATE TABLE public.t (
                id integer
            );


            COPY public.t (id) FROM stdin;
            1
            2
            \.

            """);
        var config = await ConfigAsync();
        var target = _scratch.PostgresName();

        var refused = await RestoreAsync(config, file, target);

        var error = AssertOneLineFailure(refused);
        Assert.Contains("--trust-backup", error, StringComparison.Ordinal);
        Assert.False(await PgTestDb.ExistsAsync(target), $"the refused restore created {target}");
        await AssertNoLeftoversAsync(target);

        var trusted = await RestoreAsync(config, file, target, "--trust-backup");

        Assert.True(trusted.ExitCode == 0, trusted.ToString());
        Assert.Equal(1L, await PgTestDb.ScalarAsync(target, "SELECT count(*) FROM pg_extension WHERE extname = 'postgres_fdw'"));
        Assert.Equal(2L, await PgTestDb.ScalarAsync(target, "SELECT count(*) FROM public.t"));
        await AssertNoLeftoversAsync(target);

        // trust_backups: true on the instance does what --trust-backup does, for every restore.
        var trustingConfig = Path.Combine(_scratch.TempDir("cfg-trusting"), "config.yaml");
        await File.WriteAllTextAsync(trustingConfig, (await File.ReadAllTextAsync(config))
            .Replace("dbms: postgresql\n", "dbms: postgresql\n    trust_backups: true\n", StringComparison.Ordinal));
        var second = _scratch.PostgresName();
        var byConfig = await RestoreAsync(trustingConfig, file, second);
        Assert.True(byConfig.ExitCode == 0, byConfig.ToString());
        Assert.Equal(2L, await PgTestDb.ScalarAsync(second, "SELECT count(*) FROM public.t"));
    }

    /// <summary>
    /// A trusted backup set with the database's event triggers (only a superuser creates them): one
    /// that refuses every DDL command, one that records each in a table. The parallel engine
    /// restores it as pg_dump's file restores (event triggers come last): no DDL of the tool's own
    /// fires them, the restore succeeds and the record table holds the source's rows. Found by a
    /// tester: the tool's ALTER TABLE ... RESET (autovacuum_enabled), run after post.sql, failed the
    /// restore, or added a row to the record and the check called the good backup different (exit 4).
    /// Fails on today's main.
    /// </summary>
    [SkippableTheory]
    [InlineData("refuses")]
    [InlineData("records")]
    public async Task A_backup_sets_event_triggers_do_not_see_the_tools_own_ddl(string trigger)
    {
        await TestServers.RequirePostgresAsync();
        var source = await _scratch.NewPostgresDatabaseAsync();
        await PgTestDb.ExecAsync(source,
            "CREATE TABLE public.t (i integer)", "INSERT INTO public.t SELECT generate_series(1, 10)",
            "CREATE TABLE public.ddl_log (tag text)",
            trigger == "refuses"
                ? "CREATE FUNCTION public.on_ddl() RETURNS event_trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'schema changes are blocked (%)', tg_tag; END $$"
                : "CREATE FUNCTION public.on_ddl() RETURNS event_trigger LANGUAGE plpgsql AS $$ BEGIN INSERT INTO public.ddl_log VALUES (tg_tag); END $$",
            $"CREATE EVENT TRIGGER {source}_ddl ON {(trigger == "refuses" ? "ddl_command_start" : "ddl_command_end")} EXECUTE FUNCTION public.on_ddl()");
        var backupDir = _scratch.TempDir("backups");
        var config = await ConfigAsync(backupDir, PgEngines.Parallel4);
        var file = await BackupAsync(config, backupDir, source);
        var target = _scratch.PostgresName();

        var run = await RestoreAsync(config, file, target, "--trust-backup");

        Assert.True(run.ExitCode == 0, run.ToString());
        Assert.Equal(10L, await PgTestDb.ScalarAsync(target, "SELECT count(*) FROM public.t"));
        Assert.Equal(0L, await PgTestDb.ScalarAsync(target, "SELECT count(*) FROM public.ddl_log"));
    }

    // ---------------------------------------------------------------- 5. a dump that only worked as superuser

    /// <summary>
    /// A planted dump that only ever loaded through superuser rights: a CHECK constraint's function
    /// reads pg_authid (the password hashes) for each row COPY loads. It fails in one line without
    /// --trust-backup (the load's role may not read pg_authid), leaving no target and nothing else;
    /// with --trust-backup it loads. Fails on today's main: the superuser load reads pg_authid and
    /// the restore succeeds.
    /// </summary>
    [SkippableFact]
    public async Task A_dump_that_needs_superuser_rights_fails_without_trust_backup()
    {
        await TestServers.RequirePostgresAsync();
        var file = await WriteDumpAsync($"""
            CREATE FUNCTION public.peek(integer) RETURNS boolean
                LANGUAGE plpgsql
                AS $$
            BEGIN
                PERFORM count(*) FROM pg_catalog.pg_authid;
                RETURN true;
            END
            $$;


            ALTER FUNCTION public.peek(integer) OWNER TO {TestServers.PgUser};


            CREATE TABLE public.t (
                id integer,
                CONSTRAINT t_peek CHECK (public.peek(id))
            );


            ALTER TABLE public.t OWNER TO {TestServers.PgUser};


            COPY public.t (id) FROM stdin;
            1
            2
            \.

            """);
        var config = await ConfigAsync();
        var target = _scratch.PostgresName();

        var refused = await RestoreAsync(config, file, target);

        AssertOneLineFailure(refused);
        Assert.False(await PgTestDb.ExistsAsync(target), $"the failed restore created {target}");
        await AssertNoLeftoversAsync(target);

        var trusted = await RestoreAsync(config, file, target, "--trust-backup");

        Assert.True(trusted.ExitCode == 0, trusted.ToString());
        Assert.Equal(2L, await PgTestDb.ScalarAsync(target, "SELECT count(*) FROM public.t"));
        await AssertNoLeftoversAsync(target);
    }

    /// <summary>
    /// Genuine backups that load only with a superuser's rights, refused by the server in words other
    /// than "permission denied": a LEAKPROOF function ("only superuser can define a leakproof
    /// function") and a materialized view over a table with FORCE ROW LEVEL SECURITY, whose policy
    /// the load role is subject to and a superuser is not ("query would be affected by row-level
    /// security policy"). Each fails in one line naming --trust-backup, and restores with it.
    /// Found by a tester: the line did not say how to restore them. Fails on today's main.
    /// </summary>
    [SkippableTheory]
    [InlineData("leakproof")]
    [InlineData("force-rls")]
    public async Task A_backup_refused_for_a_superusers_right_names_trust_backup(string what)
    {
        await TestServers.RequirePostgresAsync();
        var source = await _scratch.NewPostgresDatabaseAsync();
        await PgTestDb.ExecAsync(source, what == "leakproof"
            ? ["CREATE FUNCTION public.leak(integer) RETURNS integer LANGUAGE sql IMMUTABLE LEAKPROOF AS 'SELECT 1'"]
            : ["CREATE TABLE public.acct (id integer PRIMARY KEY, holder name, amount integer)",
                $"INSERT INTO public.acct VALUES (1, '{TestServers.PgUser}', 10), (2, 'alice', 20)",
                "ALTER TABLE public.acct ENABLE ROW LEVEL SECURITY", "ALTER TABLE public.acct FORCE ROW LEVEL SECURITY",
                "CREATE POLICY own ON public.acct USING (holder = current_user)",
                "CREATE MATERIALIZED VIEW public.total AS SELECT sum(amount) AS total FROM public.acct"]);
        var backupDir = _scratch.TempDir("backups");
        var config = await ConfigAsync(backupDir, PgEngines.Dump);
        var file = await BackupAsync(config, backupDir, source);
        var target = _scratch.PostgresName();

        var refused = await RestoreAsync(config, file, target);

        Assert.Contains("--trust-backup", AssertOneLineFailure(refused), StringComparison.Ordinal);
        Assert.False(await PgTestDb.ExistsAsync(target), $"the refused restore created {target}");
        await AssertNoLeftoversAsync(target);

        var trusted = await RestoreAsync(config, file, target, "--trust-backup");

        Assert.True(trusted.ExitCode == 0, trusted.ToString());
    }

    // ---------------------------------------------------------------- helpers

    /// <summary>A pg_dump-style plain file (pg_dump 15's header and footer around <paramref name="body"/>), named as pg_dump files are.</summary>
    private async Task<string> WriteDumpAsync(string body)
    {
        var file = Path.Combine(_scratch.TempDir("dump"), "vt_planted_20260110_020000.sql");
        await File.WriteAllTextAsync(file, (Header + body + Footer).ReplaceLineEndings("\n"));
        return file;
    }

    private async Task<string> ConfigAsync() => await Cli.WriteConfigAsync(_scratch.TempDir("cfg"), _scratch.TempDir("backups"));

    private static async Task<object?> DelayedAsync(int milliseconds, Func<Task<object?>> read)
    {
        await Task.Delay(milliseconds);
        return await read();
    }

    /// <summary>A config whose instance 2 is the PostgreSQL test server with <paramref name="engine"/> (a PgEngines name) and owners.</summary>
    private async Task<string> ConfigAsync(string backupDir, string engine, bool owners = false, int timeoutSeconds = 300, string? toolsDir = null)
    {
        var engineYaml = engine switch
        {
            PgEngines.Dump => "engine: dump",
            PgEngines.Parallel1 => "engine: parallel\n    jobs: 1",
            PgEngines.Parallel4 => "engine: parallel\n    jobs: 4",
            _ => throw new ArgumentOutOfRangeException(nameof(engine), engine, null),
        };
        var path = Path.Combine(_scratch.TempDir("cfg"), "config.yaml");
        await File.WriteAllTextAsync(path, string.Create(CultureInfo.InvariantCulture, $"""
            backup_dir: '{backupDir}'
            compression: zstd
            timeout_seconds: {timeoutSeconds}
            instances:
              - id: 2
                name: it-pg
                dbms: postgresql
                host: '{TestServers.PgHost}'
                port: {TestServers.PgPort}
                user: '{TestServers.PgUser}'
                password: '{TestServers.PgPassword}'
                include: ["vt_*"]
                globals: false
                owners: {(owners ? "true" : "false")}
                {engineYaml}{(toolsDir is null ? "" : $"\n    tools_dir: '{toolsDir}'")}

            """));
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        }
        return path;
    }

    /// <summary>Backs <paramref name="database"/> up through the CLI; returns the backup file.</summary>
    private static async Task<string> BackupAsync(string config, string backupDir, string database)
    {
        var run = await Run.CliAsync("backup", "--instance", "2", "--database", database, "--config", config);
        Assert.True(run.ExitCode == 0, run.ToString());
        return Path.Combine(backupDir, Assert.Single(Ops.DataFilesUnder(backupDir)));
    }

    private static Task<ProcessResult> RestoreAsync(string config, string file, string target, params string[] extra) =>
        Run.CliAsync(["restore", "--file", file, "--instance", "2", "--target", target, "--force", "--config", config, .. extra]);

    /// <summary>A failed run: non-zero exit code, one error line, no stack trace. Returns the line.</summary>
    private static string AssertOneLineFailure(ProcessResult run)
    {
        Assert.True(run.ExitCode != 0, $"the restore succeeded: {run}");
        var error = Assert.Single(Cli.ErrorLines(run));
        Assert.StartsWith("vya-backupdb: error: ", error, StringComparison.Ordinal);
        Assert.DoesNotContain("Exception", run.Stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", run.Stderr, StringComparison.Ordinal);
        return error;
    }

    /// <summary>No load role and no staging database of <paramref name="target"/> is left on the server.</summary>
    private static async Task AssertNoLeftoversAsync(string target)
    {
        const string Like = "LIKE 'vya\\_restore\\_%' AND strpos({0}, $1) > 0";
        var roles = await PgTestDb.RowsAsync("postgres", "SELECT rolname FROM pg_roles WHERE rolname " + string.Format(CultureInfo.InvariantCulture, Like, "rolname"), target);
        Assert.True(roles.Count == 0, $"load roles left behind: {string.Join(", ", roles)}");
        var databases = await PgTestDb.RowsAsync("postgres", "SELECT datname FROM pg_database WHERE datname " + string.Format(CultureInfo.InvariantCulture, Like, "datname"), target);
        Assert.True(databases.Count == 0, $"staging databases left behind: {string.Join(", ", databases)}");
    }

    private static async Task<bool> RoleExistsAsync(string role) =>
        Convert.ToInt64(await PgTestDb.ScalarAsync("postgres", "SELECT count(*) FROM pg_roles WHERE rolname = $1", role), CultureInfo.InvariantCulture) > 0;

    /// <summary>A unique role name, dropped at the end if it exists.</summary>
    private string TrackRole(string prefix)
    {
        var role = prefix + Guid.NewGuid().ToString("N")[..8];
        _roles.Add(role);
        return role;
    }


    private static async Task RequireExtensionAsync(string name)
    {
        var available = Convert.ToInt64(await PgTestDb.ScalarAsync("postgres",
            "SELECT count(*) FROM pg_available_extensions WHERE name = $1", name), CultureInfo.InvariantCulture) > 0;
        if (!available && TestServers.IsCi)
        {
            throw new InvalidOperationException($"the extension {name} is not available on the PostgreSQL test server (CI=true: this fails instead of skipping)");
        }
        Skip.IfNot(available, $"the extension {name} is not available on the PostgreSQL test server");
    }

    /// <summary>app_owner (NOLOGIN) and app_reader, unique names, dropped at the end.</summary>
    private async Task<(string Owner, string Reader)> CreateOwnerRolesAsync()
    {
        var owner = TrackRole("vt_app_owner_");
        var reader = TrackRole("vt_app_reader_");
        await PgTestDb.ExecAsync("postgres", $"CREATE ROLE {owner} NOLOGIN", $"CREATE ROLE {reader}");
        return (owner, reader);
    }

    /// <summary>
    /// A schema s owned by <paramref name="owner"/>, with its table (rows; SELECT granted to
    /// <paramref name="reader"/>), sequence, view and function, a large object of its own, and
    /// default privileges for it in s.
    /// </summary>
    private static async Task FillOwnedAsync(string database, string owner, string reader)
    {
        await PgTestDb.ExecAsync(database,
            $"CREATE SCHEMA s AUTHORIZATION {owner}",
            "CREATE TABLE s.t (id integer PRIMARY KEY, v text)",
            "INSERT INTO s.t SELECT g, 'row ' || g FROM generate_series(1, 20) g",
            $"ALTER TABLE s.t OWNER TO {owner}",
            "CREATE SEQUENCE s.q",
            "SELECT setval('s.q', 42)",
            $"ALTER SEQUENCE s.q OWNER TO {owner}",
            "CREATE VIEW s.v AS SELECT id, v FROM s.t WHERE id > 10",
            $"ALTER VIEW s.v OWNER TO {owner}",
            "CREATE FUNCTION s.f() RETURNS integer LANGUAGE sql AS 'SELECT 1'",
            $"ALTER FUNCTION s.f() OWNER TO {owner}",
            "SELECT lo_from_bytea(0, '\\x68656c6c6f206c6f'::bytea)",
            $"DO $$ BEGIN EXECUTE format('ALTER LARGE OBJECT %s OWNER TO {owner}', (SELECT max(oid) FROM pg_largeobject_metadata)); END $$",
            $"GRANT SELECT ON s.t TO {reader}",
            $"ALTER DEFAULT PRIVILEGES FOR ROLE {owner} IN SCHEMA s GRANT SELECT ON TABLES TO {reader}");
    }

    /// <summary>Owners and ACLs of schema s and what is in it, the large objects (with a digest of their content) and the default privileges.</summary>
    private static Task<List<string>> OwnershipAsync(string database) => PgTestDb.RowsAsync(database, """
        SELECT 'relation ' || c.relname || ' ' || c.relkind::text || ' ' || pg_get_userbyid(c.relowner) || ' ' || coalesce(c.relacl::text, '-')
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 's'
        UNION ALL SELECT 'schema ' || nspname || ' ' || pg_get_userbyid(nspowner) || ' ' || coalesce(nspacl::text, '-')
        FROM pg_namespace WHERE nspname = 's'
        UNION ALL SELECT 'function ' || p.proname || ' ' || pg_get_userbyid(p.proowner) || ' ' || coalesce(p.proacl::text, '-')
        FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 's'
        UNION ALL SELECT 'large object ' || oid || ' ' || pg_get_userbyid(lomowner) || ' ' || coalesce(lomacl::text, '-') || ' ' || md5(lo_get(oid))
        FROM pg_largeobject_metadata
        UNION ALL SELECT 'default ' || pg_get_userbyid(d.defaclrole) || ' ' || coalesce(n.nspname, '-') || ' ' || d.defaclobjtype::text || ' ' || d.defaclacl::text
        FROM pg_default_acl d LEFT JOIN pg_namespace n ON n.oid = d.defaclnamespace
        ORDER BY 1
        """);
}
