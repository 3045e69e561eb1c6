using System.Text;
using VyaBackupDb.Engines;
using VyaBackupDb.Engines.Postgres;
using VyaBackupDb.Errors;
using static VyaBackupDb.Tests.Unit.DumpPart;

namespace VyaBackupDb.Tests.Unit;

public sealed class PostgresDumpFilterTests
{
    private const string Target = "dns_db_restored";
    private const string QuotedTarget = "\"dns_db_restored\"";

    /// <summary>A PostgreSQL 15 server: knows what pg_dump 17 writes except transaction_timeout.</summary>
    private static bool KnownOnPostgres15(string name) => name != "transaction_timeout";

    private static bool KnownOnPostgres17(string name) => true;

    /// <summary>Input, expected output, expected source database, expected dropped statement count.</summary>
    public static TheoryData<string, string, string?, int> Statements => new()
    {
        { "DROP DATABASE IF EXISTS dns_db;\n", "\n", "dns_db", 1 },
        { "DROP DATABASE dns_db WITH (FORCE);", "", "dns_db", 1 },
        {
            "CREATE DATABASE dns_db WITH TEMPLATE = template0 ENCODING = 'UTF8' LOCALE_PROVIDER = libc LOCALE = 'en_US.UTF-8';\n",
            "\n", "dns_db", 1
        },
        { "CREATE DATABASE \"DNS\"\"db\";", "", "DNS\"db", 1 },
        { "create database DnsDb;", "", "dnsdb", 1 },
        // owners: false (the default): the database's owner is left out with every other owner.
        { "ALTER DATABASE dns_db OWNER TO postgres;", "", "dns_db", 1 },
        { "ALTER DATABASE \"DNS db\" SET search_path TO public;", $"ALTER DATABASE {QuotedTarget} SET search_path TO public;", "DNS db", 0 },
        // What pg_dump --create writes of a template or a limited database is no property of a restored target.
        { "ALTER DATABASE dns_db IS_TEMPLATE = true;", "", "dns_db", 1 },
        { "ALTER DATABASE dns_db CONNECTION LIMIT = 3;\n", "\n", "dns_db", 1 },
        { "ALTER DATABASE \"dns_db\" IS_TEMPLATE true;\n\nALTER DATABASE \"dns_db\" WITH CONNECTION LIMIT 1;", "\n\n", "dns_db", 2 },
        { "ALTER DATABASE dns_db WITH ALLOW_CONNECTIONS false IS_TEMPLATE true;", "", "dns_db", 1 },
        { "ALTER DATABASE dns_db ALLOW_CONNECTIONS false;", "", "dns_db", 1 },
        { "COMMENT ON DATABASE dns_db IS 'DNS; records';", $"COMMENT ON DATABASE {QuotedTarget} IS 'DNS; records';", "dns_db", 0 },
        { "GRANT CONNECT,TEMPORARY ON DATABASE dns_db TO app;", $"GRANT CONNECT,TEMPORARY ON DATABASE {QuotedTarget} TO app;", "dns_db", 0 },
        { "REVOKE ALL ON DATABASE dns_db FROM PUBLIC;", $"REVOKE ALL ON DATABASE {QuotedTarget} FROM PUBLIC;", "dns_db", 0 },
        {
            "SECURITY LABEL FOR selinux ON DATABASE dns_db IS 'system_u:object_r:sepgsql_db_t:s0';",
            $"SECURITY LABEL FOR selinux ON DATABASE {QuotedTarget} IS 'system_u:object_r:sepgsql_db_t:s0';", "dns_db", 0
        },
        { "ALTER ROLE app IN DATABASE dns_db SET work_mem TO '64MB';", $"ALTER ROLE app IN DATABASE {QuotedTarget} SET work_mem TO '64MB';", "dns_db", 0 },
        { "GRANT SELECT (a, b) ON TABLE public.t TO app;", "GRANT SELECT (a, b) ON TABLE public.t TO app;", null, 0 },
        { "COMMENT ON TABLE public.t IS 'ALTER DATABASE x';", "COMMENT ON TABLE public.t IS 'ALTER DATABASE x';", null, 0 },
        { "\\connect dns_db\n", "\n", "dns_db", 1 },
        { "\\connect -reuse-previous=on \"dbname='dns db'\"\n", "\n", "dns db", 1 },
        { "\\connect -reuse-previous=on \"dbname='it\\'s' host=x\"\n", "\n", "it's", 1 },
        { "\\c \"Dns\"\"Db\"\nCREATE VIEW v AS SELECT 1;\n", "\nCREATE VIEW v AS SELECT 1;\n", "Dns\"Db", 1 },
        { "\\connect postgresql://localhost:5432/dns%20db?sslmode=disable\n", "\n", "dns db", 1 },
        { "\\connect\n", "\n", null, 1 },
        { "\\restrict Xr4nd0mK3y\n\\unrestrict Xr4nd0mK3y\n", "\\restrict Xr4nd0mK3y\n\\unrestrict Xr4nd0mK3y\n", null, 0 },
        { "SET transaction_timeout = 0;\nSET statement_timeout = 0;\n", "\nSET statement_timeout = 0;\n", null, 1 },
        { "SET transaction_timeout TO 0;", "", null, 1 },
        { "SET SESSION transaction_timeout = 0;", "", null, 1 },
        { "SET \"transaction_timeout\" = 0;", "", null, 1 },
        { "SET Transaction_Timeout = DEFAULT;", "", null, 1 },
        { "SELECT pg_catalog.set_config('transaction_timeout', '0', false);", "", null, 1 },
        { "SELECT pg_catalog.set_config('search_path', '', false);", "SELECT pg_catalog.set_config('search_path', '', false);", null, 0 },
        { "SET search_path = public, pg_catalog;", "SET search_path = public, pg_catalog;", null, 0 },
        { "SET SESSION AUTHORIZATION 'transaction_timeout';", "SET SESSION AUTHORIZATION 'transaction_timeout';", null, 0 },
        { "CREATE VIEW v AS SELECT 'DROP DATABASE dns_db;';", "CREATE VIEW v AS SELECT 'DROP DATABASE dns_db;';", null, 0 },
        { "CREATE VIEW v AS SELECT $$;DROP DATABASE x;$$;", "CREATE VIEW v AS SELECT $$;DROP DATABASE x;$$;", null, 0 },
        { "CREATE VIEW v AS SELECT $a$ $$ ; ' $a$;DROP DATABASE y;", "CREATE VIEW v AS SELECT $a$ $$ ; ' $a$;", "y", 1 },
        { "CREATE VIEW v AS SELECT $$a$$$$b;$$;DROP DATABASE y;", "CREATE VIEW v AS SELECT $$a$$$$b;$$;", "y", 1 },
        { "CREATE FUNCTION f(int) RETURNS int AS $1;\nDROP DATABASE y;", "CREATE FUNCTION f(int) RETURNS int AS $1;\n", "y", 1 },
        { "CREATE VIEW v AS SELECT e'\\\\';DROP DATABASE y;", "CREATE VIEW v AS SELECT e'\\\\';", "y", 1 },
        { "CREATE VIEW v AS SELECT 1, E'it\\'s; DROP DATABASE x;', 2;\nDROP DATABASE y;", "CREATE VIEW v AS SELECT 1, E'it\\'s; DROP DATABASE x;', 2;\n", "y", 1 },
        { "CREATE VIEW v AS SELECT 'it''s; x';DROP DATABASE y;", "CREATE VIEW v AS SELECT 'it''s; x';", "y", 1 },
        { "CREATE VIEW v AS SELECT \"a\"\";b\";DROP DATABASE y;", "CREATE VIEW v AS SELECT \"a\"\";b\";", "y", 1 },
        { "/* nested /* comment; */ still; */ CREATE VIEW v AS SELECT 1;", "/* nested /* comment; */ still; */ CREATE VIEW v AS SELECT 1;", null, 0 },
        { "CREATE VIEW v AS SELECT 1 /* a /* b */ ; */ ;DROP DATABASE y;", "CREATE VIEW v AS SELECT 1 /* a /* b */ ; */ ;", "y", 1 },
        { "-- DROP DATABASE dns_db;\nCREATE VIEW v AS SELECT 1 --;\n;DROP DATABASE y;", "-- DROP DATABASE dns_db;\nCREATE VIEW v AS SELECT 1 --;\n;", "y", 1 },
        { "CREATE VIEW v AS SELECT f('a', (SELECT 1; DROP DATABASE x));", "CREATE VIEW v AS SELECT f('a', (SELECT 1; DROP DATABASE x));", null, 0 },
        {
            "CREATE OR REPLACE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; SELECT CASE WHEN true THEN 1 END; DROP DATABASE x; END;\nDROP DATABASE y;\n",
            "CREATE OR REPLACE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; SELECT CASE WHEN true THEN 1 END; DROP DATABASE x; END;\n\n",
            "y", 1
        },
        {
            "CREATE PROCEDURE p() LANGUAGE sql BEGIN ATOMIC INSERT INTO t VALUES (1); END;DROP DATABASE y;",
            "CREATE PROCEDURE p() LANGUAGE sql BEGIN ATOMIC INSERT INTO t VALUES (1); END;", "y", 1
        },
        { "CREATE TABLE begin (x int);DROP DATABASE y;", "CREATE TABLE begin (x int);", "y", 1 },
        // SQL-standard bodies as pg_dump writes them: psql's BEGIN/CASE/END count ends them where the server does.
        {
            "CREATE FUNCTION public.f(begin integer) RETURNS text\n    LANGUAGE sql\n    BEGIN ATOMIC\n SELECT CASE\n   WHEN (f.begin > 0) THEN 'end;'::text\n   ELSE (SELECT CASE WHEN true THEN 'x' END)\n  END AS c; -- end;\n /* end; */ SELECT 'a' || $$end;$$;\n SELECT CASE WHEN true THEN 1 END AS \"end\";\nend;\nDROP DATABASE y;\n",
            "CREATE FUNCTION public.f(begin integer) RETURNS text\n    LANGUAGE sql\n    BEGIN ATOMIC\n SELECT CASE\n   WHEN (f.begin > 0) THEN 'end;'::text\n   ELSE (SELECT CASE WHEN true THEN 'x' END)\n  END AS c; -- end;\n /* end; */ SELECT 'a' || $$end;$$;\n SELECT CASE WHEN true THEN 1 END AS \"end\";\nend;\n\n",
            "y", 1
        },
        { "CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC\nEND;DROP DATABASE y;", "CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC\nEND;", "y", 1 },
        { "CREATE FUNCTION f() RETURNS int LANGUAGE sql RETURN CASE WHEN true THEN 1 END;DROP DATABASE y;", "CREATE FUNCTION f() RETURNS int LANGUAGE sql RETURN CASE WHEN true THEN 1 END;", "y", 1 },
        {
            "COPY public.t (a, b) FROM stdin;\n\\connect dns_db\nDROP DATABASE dns_db;\t'\n\\.x\n$$ /* \" ;\n\\.\nDROP DATABASE y;\n",
            "COPY public.t (a, b) FROM stdin;\n\\connect dns_db\nDROP DATABASE dns_db;\t'\n\\.x\n$$ /* \" ;\n\\.\n\n", "y", 1
        },
        { "COPY t FROM STDIN ;  \r\nDROP DATABASE x;\r\n\\.\r\nDROP DATABASE y;", "COPY t FROM STDIN ;  \r\nDROP DATABASE x;\r\n\\.\r\n", "y", 1 },
        { "COPY t FROM stdin; -- data follows\nDROP DATABASE x;\n\\.", "COPY t FROM stdin; -- data follows\nDROP DATABASE x;\n\\.", null, 0 },
        // pg_dump with standard_conforming_strings off doubles backslashes and quotes: both readings agree.
        { "SET standard_conforming_strings = off;\nCREATE VIEW v AS SELECT 'it''s C:\\\\ ; DROP DATABASE x;';\nSET standard_conforming_strings = on;\nCREATE VIEW v AS SELECT 'C:\\x', E'it\\'s';\nDROP DATABASE y;",
            "SET standard_conforming_strings = off;\nCREATE VIEW v AS SELECT 'it''s C:\\\\ ; DROP DATABASE x;';\nSET standard_conforming_strings = on;\nCREATE VIEW v AS SELECT 'C:\\x', E'it\\'s';\n", "y", 1 },
        { "SET standard_conforming_strings = off;\nCREATE VIEW v AS SELECT 1, 'a\\\\', E'b\\\\';\nSET standard_conforming_strings TO 'on';\nCREATE VIEW v AS SELECT 1, 'c\\\\';DROP DATABASE y;",
            "SET standard_conforming_strings = off;\nCREATE VIEW v AS SELECT 1, 'a\\\\', E'b\\\\';\nSET standard_conforming_strings TO 'on';\nCREATE VIEW v AS SELECT 1, 'c\\\\';", "y", 1 },
        { "CREATE VIEW v AS SELECT E'it\\'s; DROP DATABASE x;', U&'d\\0061t\\', B'01', X'1F''', 'x';\nDROP DATABASE y;\n", "CREATE VIEW v AS SELECT E'it\\'s; DROP DATABASE x;', U&'d\\0061t\\', B'01', X'1F''', 'x';\n\n", "y", 1 },
        { "CREATE VIEW v AS SELECT 'a'\n'b', 'c' -- x\n'd';DROP DATABASE y;", "CREATE VIEW v AS SELECT 'a'\n'b', 'c' -- x\n'd';", "y", 1 },
        { "CREATE VIEW v AS SELECT x::text, a[1:n], f(a := 1), ':DBNAME', $1::int;DROP DATABASE y;", "CREATE VIEW v AS SELECT x::text, a[1:n], f(a := 1), ':DBNAME', $1::int;", "y", 1 },
        { "CREATE VIEW v AS SELECT $$a$$||$b$ \\! $b$;DROP DATABASE y;", "CREATE VIEW v AS SELECT $$a$$||$b$ \\! $b$;", "y", 1 },
        { "  \n DROP  DATABASE  y ;  ", "  \n   ", "y", 1 },
        { "DROP DATABASE \"🦀\";", "", "🦀", 1 },
        { "", "", null, 0 },
    };

    [Theory]
    [MemberData(nameof(Statements))]
    public void Filters_statements(string input, string expected, string? source, int dropped)
    {
        AssertFilters(Utf8(input), Utf8(expected), KnownOnPostgres15, source, dropped);
    }

    [Fact]
    public void Quotes_the_target_by_doubling_double_quotes()
    {
        foreach (var pattern in DumpFilterRunner.ReadPatterns(40))
        {
            var filter = new PostgresDumpFilter("we\"ird ; db", KnownOnPostgres17, new PostgresFilterOptions(DatabaseOwner: true));
            var output = DumpFilterRunner.Run(filter.CopyAsync, Utf8("ALTER DATABASE dns_db OWNER TO x;"), pattern);
            Assert.Equal("ALTER DATABASE \"we\"\"ird ; db\" OWNER TO x;", Encoding.UTF8.GetString(output));
        }
    }

    [Fact]
    public void Passes_the_database_owner_only_for_an_instance_that_keeps_owners()
    {
        foreach (var pattern in DumpFilterRunner.ReadPatterns(40))
        {
            var filter = new PostgresDumpFilter(Target, KnownOnPostgres17, new PostgresFilterOptions(DatabaseOwner: true));
            var output = DumpFilterRunner.Run(filter.CopyAsync,
                Utf8("ALTER DATABASE dns_db OWNER TO app;\nALTER DATABASE dns_db IS_TEMPLATE = true;\nALTER DATABASE dns_db SET work_mem TO '8MB';\n"), pattern);
            Assert.Equal($"ALTER DATABASE {QuotedTarget} OWNER TO app;\n\nALTER DATABASE {QuotedTarget} SET work_mem TO '8MB';\n", Encoding.UTF8.GetString(output));
            Assert.Equal(1, filter.DroppedStatements);
        }
    }

    /// <summary>
    /// A load as an unprivileged role: what only a superuser may run and runs no code is left out
    /// and kept, in order, with the client encoding, standard_conforming_strings and search_path
    /// statement the dump had set before it; every other statement passes, whatever its shape.
    /// </summary>
    [Fact]
    public void Holds_back_owner_statements_for_the_instance_account()
    {
        const string input =
            "SET client_encoding = 'LATIN1';\n"
            + "SET search_path = s, pg_catalog;\n"
            + "CREATE TABLE t (a int CHECK (a > 0));\n"
            + "ALTER TABLE t OWNER TO app;\n"
            + "ALTER FUNCTION public.f(a integer, OUT b text[]) OWNER TO \"App Owner\";\n"
            + "ALTER LARGE OBJECT 16400 OWNER TO app;\n"
            + "ALTER TABLE ONLY t ADD CONSTRAINT c CHECK (a > 1), OWNER TO app;\n"
            + "ALTER TABLE t OWNER TO app, ADD CHECK (a > 2);\n"
            + "ALTER FUNCTION pg_catalog.plpgsql_inline_handler(internal) SECURITY DEFINER SET x.owner TO app;\n"
            + "ALTER OPERATOR public.=== (integer, integer) OWNER TO app;\n"
            + "ALTER OPERATOR CLASS public.c USING btree OWNER TO app;\n"
            + "SET standard_conforming_strings = off;\n"
            + "SELECT pg_catalog.set_config('search_path', '', false);\n"
            + "ALTER DEFAULT PRIVILEGES FOR ROLE app IN SCHEMA s GRANT SELECT ON TABLES  TO reader;\n"
            + "ALTER DEFAULT PRIVILEGES GRANT SELECT ON TABLES TO reader;\n"
            + "COMMENT ON EXTENSION plpgsql IS 'PL/pgSQL procedural language';\n"
            + "COMMENT ON EXTENSION plpgsql IS 'a' || 'b';\n"
            + "ALTER DATABASE dns_db OWNER TO app;\n"
            + "ALTER ROLE app IN DATABASE dns_db SET work_mem TO '64MB';\n"
            + "COMMENT ON DATABASE dns_db IS 'x';\n";
        foreach (var pattern in DumpFilterRunner.ReadPatterns(40))
        {
            var filter = new PostgresDumpFilter(Target, KnownOnPostgres17, new PostgresFilterOptions(HoldBackOwnerStatements: true));
            var output = Encoding.UTF8.GetString(DumpFilterRunner.Run(filter.CopyAsync, Utf8(input), pattern));

            Assert.Equal(
                "SET client_encoding = 'LATIN1';\nSET search_path = s, pg_catalog;\nCREATE TABLE t (a int CHECK (a > 0));\n\n\n\n"
                + "ALTER TABLE ONLY t ADD CONSTRAINT c CHECK (a > 1), OWNER TO app;\n"
                + "ALTER TABLE t OWNER TO app, ADD CHECK (a > 2);\n"
                + "ALTER FUNCTION pg_catalog.plpgsql_inline_handler(internal) SECURITY DEFINER SET x.owner TO app;\n\n\n"
                + "SET standard_conforming_strings = off;\nSELECT pg_catalog.set_config('search_path', '', false);\n\n"
                + "ALTER DEFAULT PRIVILEGES GRANT SELECT ON TABLES TO reader;\n\n"
                + "COMMENT ON EXTENSION plpgsql IS 'a' || 'b';\n\n\n"
                + $"COMMENT ON DATABASE {QuotedTarget} IS 'x';\n",
                output);
            var held = filter.HeldBack;
            Assert.Equal(
                [
                    "ALTER TABLE t OWNER TO app;",
                    "ALTER FUNCTION public.f(a integer, OUT b text[]) OWNER TO \"App Owner\";",
                    "ALTER LARGE OBJECT 16400 OWNER TO app;",
                    "ALTER OPERATOR public.=== (integer, integer) OWNER TO app;",
                    "ALTER OPERATOR CLASS public.c USING btree OWNER TO app;",
                    "ALTER DEFAULT PRIVILEGES FOR ROLE app IN SCHEMA s GRANT SELECT ON TABLES  TO reader;",
                    "COMMENT ON EXTENSION plpgsql IS 'PL/pgSQL procedural language';",
                    $"ALTER ROLE app IN DATABASE {QuotedTarget} SET work_mem TO '64MB';",
                ],
                held.Select(h => Encoding.UTF8.GetString(h.Sql)));
            Assert.All(held, h => Assert.Equal("latin1", h.ClientEncoding));
            Assert.Equal([true, true, true, true, true, false, false, false], held.Select(h => h.StandardConformingStrings));
            Assert.Equal(
                ["SET search_path = s, pg_catalog;", "SET search_path = s, pg_catalog;", "SET search_path = s, pg_catalog;",
                    "SET search_path = s, pg_catalog;", "SET search_path = s, pg_catalog;",
                    "SELECT pg_catalog.set_config('search_path', '', false);", "SELECT pg_catalog.set_config('search_path', '', false);",
                    "SELECT pg_catalog.set_config('search_path', '', false);"],
                held.Select(h => Encoding.UTF8.GetString(h.SearchPath!.Sql)));
            // Each search_path statement with what the filter read it under: standard_conforming_strings went off between them.
            Assert.Equal([true, true, true, true, true, false, false, false], held.Select(h => h.SearchPath!.StandardConformingStrings));
        }
    }

    /// <summary>
    /// Also held back whole: ALTER DATABASE ... SET/OWNER TO (pointed at the target), a grant by a
    /// grantee under pg_dump's SET SESSION AUTHORIZATION (kept with it; the SET and RESET left out)
    /// and a publication FOR ALL TABLES; a publication of named tables passes.
    /// </summary>
    [Fact]
    public void Holds_back_database_settings_grants_by_a_grantee_and_publications_of_all_tables()
    {
        const string input =
            "ALTER DATABASE dns_db SET log_min_duration_statement TO '1s';\n"
            + "ALTER DATABASE dns_db OWNER TO app;\n"
            + "SET SESSION AUTHORIZATION reader;\n"
            + "GRANT SELECT ON TABLE public.t TO other;\n"
            + "RESET SESSION AUTHORIZATION;\n"
            + "CREATE PUBLICATION p FOR ALL TABLES WITH (publish = 'insert');\n"
            + "CREATE PUBLICATION q FOR TABLE ONLY public.t;\n"
            + "GRANT SELECT ON TABLE public.t TO another;\n";
        foreach (var pattern in DumpFilterRunner.ReadPatterns(40))
        {
            var filter = new PostgresDumpFilter(Target, KnownOnPostgres17,
                new PostgresFilterOptions(DatabaseOwner: true, HoldBackOwnerStatements: true));
            var output = Encoding.UTF8.GetString(DumpFilterRunner.Run(filter.CopyAsync, Utf8(input), pattern));

            Assert.Equal("\n\n\n\n\n\nCREATE PUBLICATION q FOR TABLE ONLY public.t;\nGRANT SELECT ON TABLE public.t TO another;\n", output);
            Assert.Equal(
                [
                    $"ALTER DATABASE {QuotedTarget} SET log_min_duration_statement TO '1s';",
                    $"ALTER DATABASE {QuotedTarget} OWNER TO app;",
                    "GRANT SELECT ON TABLE public.t TO other;",
                    "CREATE PUBLICATION p FOR ALL TABLES WITH (publish = 'insert');",
                ],
                filter.HeldBack.Select(h => Encoding.UTF8.GetString(h.Sql)));
            Assert.Equal(
                [null, null, "SET SESSION AUTHORIZATION reader;", null],
                filter.HeldBack.Select(h => h.SessionAuthorization is { } a ? Encoding.UTF8.GetString(a.Sql) : null));
        }
    }

    /// <summary>The role a held-back statement acts as or sets for is kept (decoded as the server reads it), for the replay to refuse a superuser.</summary>
    [Fact]
    public void Keeps_the_role_a_held_back_statement_acts_as()
    {
        var filter = new PostgresDumpFilter(Target, KnownOnPostgres17, new PostgresFilterOptions(HoldBackOwnerStatements: true));
        DumpFilterRunner.Run(filter.CopyAsync, Utf8(
            "SET SESSION AUTHORIZATION \"Grant Or\";\nGRANT SELECT ON TABLE public.t TO x;\nRESET SESSION AUTHORIZATION;\n"
            + "ALTER ROLE App IN DATABASE dns_db SET work_mem TO '8MB';\n"), [4096]);
        Assert.Equal(["Grant Or", "app"], filter.HeldBack.Select(h => h.ActsAs ?? h.SessionAuthorization?.ActsAs));
    }

    /// <summary>What pg_dump --use-set-session-authorization creates under another role needs a superuser's load: refused, naming --trust-backup.</summary>
    [Fact]
    public void Refuses_objects_created_under_a_session_authorization_when_holding_back()
    {
        var filter = new PostgresDumpFilter(Target, KnownOnPostgres17, new PostgresFilterOptions(HoldBackOwnerStatements: true));
        var (_, refusal) = DumpFilterRunner.RunUntilRefused(filter.CopyAsync,
            Utf8("SET SESSION AUTHORIZATION alice;\nCREATE TABLE public.t (a int);\n"), [4096]);
        Assert.NotNull(refusal);
        Assert.Equal("line 2: statement CREATE under SET SESSION AUTHORIZATION (pg_dump --use-set-session-authorization) sets an owner "
            + "only a superuser's load can: give --trust-backup; refused", refusal.Message);
    }

    [Fact]
    public void Holds_back_nothing_unless_asked()
    {
        const string input = "ALTER TABLE t OWNER TO app;\nCOMMENT ON EXTENSION plpgsql IS 'x';\n";
        var filter = new PostgresDumpFilter(Target, KnownOnPostgres17);
        Assert.Equal(input, Encoding.UTF8.GetString(DumpFilterRunner.Run(filter.CopyAsync, Utf8(input), [4096])));
        Assert.Empty(filter.HeldBack);
    }

    [Fact]
    public void Filters_a_pg_dump_clean_create_if_exists_dump_for_postgres_15()
    {
        var (input, expected) = Join(PgDumpParts(transactionTimeoutKnown: false));
        AssertFilters(input, expected, KnownOnPostgres15, "dns_db", 6);
    }

    [Fact]
    public void Keeps_set_transaction_timeout_when_the_target_knows_it()
    {
        var (input, expected) = Join(PgDumpParts(transactionTimeoutKnown: true));
        AssertFilters(input, expected, KnownOnPostgres17, "dns_db", 4);
    }

    [Fact]
    public void Passes_every_byte_value_but_nul_in_copy_data_and_strings_byte_for_byte()
    {
        // Every byte but NUL, which PostgreSQL text cannot hold (pg_dump writes bytea escaped) and psql would cut a line at.
        var data = new List<byte>(Utf8("COPY public.blobs (id, data) FROM stdin;\n1\t"));
        for (var b = 1; b < 256; b++)
        {
            if (b != '\n')
            {
                data.Add((byte)b);
            }
        }

        data.AddRange(Utf8("\n\\connect dns_db\n\\.\nCREATE VIEW v AS SELECT '"));
        for (var b = 1; b < 256; b++)
        {
            data.Add((byte)b);
            if (b == '\'')
            {
                data.Add((byte)b);
            }
        }

        data.AddRange(Utf8("';\n"));
        var (input, expected) = Join(
        [
            Keep(data.ToArray()),
            Drop("\\connect dns_db"),
            Keep("\n"),
            Keep(data.ToArray()),
        ]);
        AssertFilters(input, expected, KnownOnPostgres15, "dns_db", 1);
    }

    [Theory]
    [InlineData("\\connect a\nCREATE DATABASE b;")]
    [InlineData("DROP DATABASE IF EXISTS a;\nCREATE DATABASE a;\nALTER DATABASE b OWNER TO x;")]
    [InlineData("\\connect a\n\\connect -reuse-previous=on \"dbname='b'\"\n")]
    [InlineData("CREATE DATABASE a;\nCOMMENT ON DATABASE b IS 'x';")]
    public void Throws_when_a_later_statement_names_another_database(string input)
    {
        foreach (var pattern in new[] { new[] { 1 }, [3, 7], [4096] })
        {
            var filter = new PostgresDumpFilter(Target, KnownOnPostgres15);
            var e = Assert.Throws<DumpFilterException>(() => DumpFilterRunner.Run(filter.CopyAsync, Utf8(input), pattern));
            Assert.Equal("the dump holds more than one database (a, b); restore them one at a time", e.Message);
            Assert.Equal(ExitCode.Failed, e.ExitCode);
        }
    }

    [Fact]
    public void Throws_for_a_pg_dumpall_style_dump()
    {
        var input = Utf8("""
            \connect template1

            CREATE DATABASE a WITH TEMPLATE = template0 ENCODING = 'UTF8';
            \connect a
            CREATE TABLE t (x int);
            CREATE DATABASE b WITH TEMPLATE = template0 ENCODING = 'UTF8';

            """);
        var filter = new PostgresDumpFilter(Target, KnownOnPostgres15);
        Assert.Throws<DumpFilterException>(() => DumpFilterRunner.Run(filter.CopyAsync, input, [5]));
    }

    [Fact]
    public void Passes_statements_larger_than_the_classification_cap_intact()
    {
        var big = new StringBuilder("INSERT INTO public.zone VALUES ");
        for (var row = 0; row < 40_000; row++)
        {
            big.Append(row == 0 ? "" : ",").Append('(').Append(row).Append(",'\\connect dns_db; DROP DATABASE dns_db;', $$;$$)");
        }

        big.Append(';');
        var longSet = "SET /* " + new string('x', 100_000) + " */ search_path = public;";
        var (input, expected) = Join(
        [
            Keep(big.ToString()),
            Keep("\n"),
            Keep(longSet),
            Keep("\n"),
            Drop("DROP DATABASE dns_db;"),
            Keep("\n"),
        ]);
        foreach (var pattern in new[] { new[] { 1 }, [7, 3], [4096], [input.Length] })
        {
            var filter = new PostgresDumpFilter(Target, KnownOnPostgres15);
            Assert.Equal(expected, DumpFilterRunner.Run(filter.CopyAsync, input, pattern));
            Assert.Equal(1, filter.DroppedStatements);
        }
    }

    [Fact]
    public void Refuses_a_database_statement_whose_name_comes_after_the_cap()
    {
        var input = Utf8("ALTER DATABASE /* " + new string('x', 100_000) + " */ dns_db OWNER TO x;");
        var filter = new PostgresDumpFilter(Target, KnownOnPostgres15);
        Assert.Throws<DumpFilterException>(() => DumpFilterRunner.Run(filter.CopyAsync, input, [4096]));
    }

    [Fact]
    public void Passes_a_dump_without_database_statements_byte_for_byte()
    {
        var parts = PgDumpParts(transactionTimeoutKnown: true)
            .Where(part => part.Input.AsSpan().SequenceEqual(part.Output))
            .ToArray();
        var (input, expected) = Join(parts);
        Assert.Equal(input, expected);
        AssertFilters(input, input, KnownOnPostgres17, null, 0);
    }

    [Fact]
    public void Gives_the_same_outcome_for_every_read_pattern_on_random_fragment_soup()
    {
        string[] fragments =
        [
            "'", "\"", "$", "$$", "$a$", "$1", "E'", "e'", "\\", "\\'", "''", ";", "(", ")", "--", "/*", "*/", "*", "/",
            "\n", "\r\n", " ", "x", "E", "\\connect dns_db\n", "\\c dns_db", "\\.\n", "DROP DATABASE dns_db;",
            "CREATE DATABASE dns_db;", "ALTER DATABASE dns_db OWNER TO x;", "SET transaction_timeout = 0;",
            "SET standard_conforming_strings = off;", "SET standard_conforming_strings = on;", "COPY t FROM stdin;\n",
            "CREATE FUNCTION f() BEGIN ATOMIC ", "BEGIN", "END", "CASE", "\0", "\u00ff", "\\! x\n", "\\restrict k\n",
            "\r", "U&'", "B'", "X'", "N'", "$1", ":", "::", ":DBNAME", "-- PostgreSQL database dump complete\n",
            "COPY t TO '/x';", "\\\\",
        ];
        var random = new Random(20250302);
        for (var round = 0; round < 300; round++)
        {
            var text = new StringBuilder();
            var count = random.Next(1, 40);
            for (var k = 0; k < count; k++)
            {
                text.Append(fragments[random.Next(fragments.Length)]);
            }

            var input = Encoding.Latin1.GetBytes(text.ToString());
            var whole = Outcome(input, [input.Length + 1]);
            foreach (var pattern in new[] { new[] { 1 }, [2], [3], [5], [1, 2, 3, 7] })
            {
                Assert.Equal(whole, Outcome(input, pattern));
            }
        }
    }

    // ---- only the statements pg_dump writes ------------------------------------------------------

    /// <summary>Statements pg_dump writes (9.x to 18, plain, --clean/--create/--if-exists/--inserts/--column-inserts/--no-owner/--use-set-session-authorization, large objects, ...): they pass unchanged.</summary>
    public static TheoryData<string> PgDumpStatements => new()
    {
        "SET SESSION AUTHORIZATION 'app';",
        "SET client_encoding = 'UTF8';\nSET client_encoding = 'LATIN1';\nSET client_encoding = 'SQL_ASCII';\nSET client_encoding = 'EUC_JP';\nSET client_encoding = 'WIN1252';",
        "SET client_encoding TO utf8;\nSET NAMES 'ISO_8859_5';\nSET SESSION client_encoding = 'KOI8R';\nSET client_encoding = 'MULE_INTERNAL';",
        "SELECT pg_catalog.set_config('client_encoding', 'UTF8', false);",
        "SET standard_conforming_strings = on;\nSET standard_conforming_strings = off;\nSET standard_conforming_strings TO 'on';\nSET SESSION standard_conforming_strings = true;\nSET standard_conforming_strings = 0;",
        "RESET SESSION AUTHORIZATION;",
        "SET default_tablespace = '';",
        "SET default_table_access_method = heap;",
        "SET default_with_oids = false;",
        "SET escape_string_warning = off;",
        "SET search_path = public, pg_catalog;",
        "SELECT pg_catalog.set_config('search_path', 'public', false);",
        "SELECT pg_catalog.setval('public.t_id_seq', 42, true);",
        "SELECT pg_catalog.setval('\"public\".\"s\"', -9223372036854775808, false);",
        "BEGIN;\nSELECT pg_catalog.lo_create('16385');\nSELECT pg_catalog.lo_open('16385', 131072);\nSELECT pg_catalog.lowrite(0, '\\x4142');\nSELECT pg_catalog.lo_close(0);\nCOMMIT;",
        "SELECT pg_catalog.lo_open(pg_catalog.lo_create('16385'), 131072);",
        "SELECT pg_catalog.lo_unlink(oid) FROM pg_catalog.pg_largeobject_metadata WHERE oid = '16385';",
        "SELECT pg_catalog.lo_unlink('16385');",
        "ALTER LARGE OBJECT 16385 OWNER TO app;",
        "GRANT SELECT ON LARGE OBJECT 16385 TO app;",
        "COMMENT ON LARGE OBJECT 16385 IS 'x';",
        "SELECT * FROM pg_catalog.pg_restore_relation_stats(\n\t'version', '180000'::integer,\n\t'schemaname', 'public',\n\t'relname', 't',\n\t'reltuples', '-1'::real\n);",
        "SELECT * FROM pg_catalog.pg_restore_attribute_stats(\n\t'version', '180000'::integer,\n\t'relation', 'public.t'::regclass,\n\t'inherited', 'f'::boolean,\n\t'most_common_vals', '{1,2}'::text\n);",
        "CREATE EXTENSION IF NOT EXISTS dblink WITH SCHEMA public;",
        "COMMENT ON EXTENSION plpgsql IS 'PL/pgSQL procedural language';",
        "DROP EXTENSION IF EXISTS dblink;",
        "CREATE TABLE public.m (id integer, at date) PARTITION BY RANGE (at);",
        "ALTER TABLE ONLY public.m ATTACH PARTITION public.m_2024 FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');",
        "CREATE UNLOGGED TABLE public.u (x integer);",
        "CREATE PUBLICATION p FOR TABLE ONLY public.t WITH (publish = 'insert');",
        "ALTER PUBLICATION p ADD TABLE ONLY public.t;",
        "CREATE SUBSCRIPTION s CONNECTION 'dbname=x' PUBLICATION p WITH (connect = false, slot_name = 's');",
        "ALTER SUBSCRIPTION s OWNER TO app;",
        "CREATE POLICY p ON public.t USING (true);",
        "ALTER TABLE public.t ENABLE ROW LEVEL SECURITY;",
        "CREATE EVENT TRIGGER e ON ddl_command_start\n   EXECUTE FUNCTION public.f();",
        "ALTER EVENT TRIGGER e DISABLE;",
        "CREATE OR REPLACE PROCEDURAL LANGUAGE plperl;",
        "CREATE TRUSTED PROCEDURAL LANGUAGE plr HANDLER public.h;",
        "ALTER DEFAULT PRIVILEGES FOR ROLE app IN SCHEMA public GRANT SELECT ON TABLES TO reader;",
        "REVOKE ALL ON SCHEMA public FROM PUBLIC;",
        "GRANT ALL ON FUNCTION public.f() TO app WITH GRANT OPTION;",
        "GRANT USAGE ON FOREIGN SERVER srv TO app;",
        "CREATE USER MAPPING FOR app SERVER srv OPTIONS (\n    \"user\" 'x'\n);",
        "DROP USER MAPPING IF EXISTS FOR app SERVER srv;",
        "CREATE FOREIGN TABLE public.ft (x integer) SERVER srv;",
        "CREATE TEXT SEARCH CONFIGURATION public.c (\n    PARSER = pg_catalog.\"default\" );",
        "CREATE UNIQUE INDEX i ON public.t USING btree (x);",
        "CREATE CONSTRAINT TRIGGER tr AFTER INSERT ON public.t DEFERRABLE FOR EACH ROW EXECUTE FUNCTION public.f();",
        "CREATE MATERIALIZED VIEW public.mv AS\n SELECT 1 AS x\n  WITH NO DATA;",
        "REFRESH MATERIALIZED VIEW public.mv;",
        "SECURITY LABEL FOR selinux ON TABLE public.t IS 'x';",
        "CREATE DEFAULT CONVERSION public.c FOR 'LATIN1' TO 'UTF8' FROM pg_catalog.iso8859_1_to_utf8;",
        "CREATE STATISTICS public.s ON a, b FROM public.t;",
        "CREATE ACCESS METHOD heap2 TYPE TABLE HANDLER heap_tableam_handler;",
        "CREATE CAST (text AS integer) WITH INOUT;",
        "CREATE RULE r AS\n    ON INSERT TO public.t DO INSTEAD NOTHING;",
        "CREATE OPERATOR FAMILY public.f USING btree;",
        "DROP TEXT SEARCH DICTIONARY IF EXISTS public.d;",
        "INSERT INTO public.t VALUES (1, 'a', NULL, true, -2.5e-3, B'01', DEFAULT, 'NaN');",
        "INSERT INTO public.t (id, \"v\") VALUES (1, 'x'), (2, 'y');",
        "INSERT INTO public.t OVERRIDING SYSTEM VALUE VALUES (1);",
        "INSERT INTO public.t VALUES (1) ON CONFLICT DO NOTHING;",
        "ALTER TABLE ONLY public.l ATTACH PARTITION public.l_q FOR VALUES IN ('it''s', 'a\"b', 'back\\slash', NULL);",
        "ALTER TABLE ONLY public.r ATTACH PARTITION public.r_lo FOR VALUES FROM (MINVALUE) TO ('-5');",
        "ALTER TABLE ONLY public.m ATTACH PARTITION public.m2 FOR VALUES FROM ('2025-01-01', 10) TO (MAXVALUE, MAXVALUE);",
        "ALTER TABLE ONLY public.h ATTACH PARTITION public.h0 FOR VALUES WITH (modulus 2, remainder 0);",
        "ALTER TABLE ONLY public.l ATTACH PARTITION public.l_def DEFAULT;",
        "ALTER TABLE ONLY public.b ATTACH PARTITION public.b_t FOR VALUES IN (true);",
        "ALTER TABLE ONLY public.n ATTACH PARTITION public.n1 FOR VALUES FROM (1.5) TO (2.25);",
        "ALTER TABLE ONLY public.bits ATTACH PARTITION public.bits1 FOR VALUES IN (B'101', $$x$$);",
        "ALTER TABLE ONLY public.tp ATTACH PARTITION public.tp1 FOR VALUES IN ('with', 'data', 'as', 'using', 'FROM', 'TO');",
        "CREATE TABLE public.m_2024 PARTITION OF public.m\nFOR VALUES FROM ('2024-01-01') TO ('2025-01-01');",
        "CREATE TABLE public.l_def PARTITION OF public.l\nDEFAULT;",
        "CREATE TABLE public.c PARTITION OF public.p (\n    CONSTRAINT c_check CHECK ((a > 0))\n)\nFOR VALUES IN (1, 2)\nPARTITION BY LIST (b);",
        "CREATE FOREIGN TABLE public.fp PARTITION OF public.m\nFOR VALUES IN ('x')\nSERVER s\nOPTIONS (\n    table_name 'o'\n);",
        "CREATE TABLE public.t (\n    id integer NOT NULL,\n    g integer GENERATED ALWAYS AS ((id * 2)) STORED\n)\nWITH (fillfactor='50');",
        "CREATE TABLE public.typed OF public.span;",
        "ALTER TABLE public.h ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (\n    SEQUENCE NAME public.h_id_seq\n    START WITH 1\n    INCREMENT BY 1\n    NO MINVALUE\n    NO MAXVALUE\n    CACHE 1\n);",
        "ALTER TABLE ONLY public.ex\n    ADD CONSTRAINT type EXCLUDE USING gist (r WITH &&);",
        "ALTER TABLE ONLY public.ex REPLICA IDENTITY USING INDEX ex_r;",
        "ALTER TABLE ONLY public.t ALTER COLUMN type SET DEFAULT nextval('public.t_type_seq'::regclass);",
        "ALTER TABLE ONLY public.t CLUSTER ON t_pkey;",
        "CREATE MATERIALIZED VIEW public.mv2\nWITH (fillfactor='70') AS\n SELECT r.a\n   FROM public.r\n  WHERE (r.a > 100)\n  WITH NO DATA;",
        "CREATE SCHEMA app;",
    };

    [Theory]
    [MemberData(nameof(PgDumpStatements))]
    public void Passes_the_statements_pg_dump_writes(string statement)
    {
        AssertFilters(Utf8(statement + "\n"), Utf8(statement + "\n"), KnownOnPostgres17, null, 0);
    }

    /// <summary>Statements pg_dump never writes, refused with the start of the statement (line 1).</summary>
    public static TheoryData<string, string> NotPgDumpStatements => new()
    {
        { "DO $x$ BEGIN EXECUTE 'COPY (select 1) TO PROGRAM ''id > /tmp/marker'''; END $x$;", "DO" },
        { "do $$ begin end $$", "do" },
        { "CALL public.p();", "CALL" },
        // One call per SELECT: a second set_config (of client_encoding: SJIS) would change how psql reads what follows.
        { "SELECT pg_catalog.set_config('search_path', '', false), pg_catalog.set_config('client_encoding', 'SJIS', false);", "SELECT ... set_config" },
        { "SELECT pg_catalog.setval('public.s', 1, true), pg_catalog.set_config('client_encoding', 'SJIS', false);", "SELECT ... set_config" },
        // Nor a call after it: replayed with the held-back statements under the search_path it sets, it could be the dump's own.
        { "SELECT pg_catalog.set_config('search_path', '', false), lo_create(0);", "SELECT ... lo_create" },
        { "CREATE ROLE evil SUPERUSER LOGIN PASSWORD 'x';", "CREATE ROLE" },
        { "ALTER DATABASE dns_db RENAME TO other;", "ALTER DATABASE RENAME" },
        { "ALTER DATABASE dns_db SET TABLESPACE elsewhere;", "ALTER DATABASE SET TABLESPACE" },
        { "ALTER DATABASE dns_db RESET ALL;", "ALTER DATABASE RESET" },
        { "ALTER DATABASE dns_db REFRESH COLLATION VERSION;", "ALTER DATABASE REFRESH" },
        { "CREATE USER evil;", "CREATE USER" },
        { "CREATE USER;", "CREATE USER" },
        { "CREATE GROUP g;", "CREATE GROUP" },
        { "CREATE OR REPLACE ROLE x;", "CREATE OR REPLACE ROLE" },
        { "ALTER ROLE app SUPERUSER;", "ALTER ROLE app SUPERUSER" },
        { "ALTER ROLE app SET work_mem TO '64MB';", "ALTER ROLE app SET" },
        { "ALTER USER app WITH PASSWORD 'x';", "ALTER USER app WITH" },
        { "ALTER GROUP g ADD USER app;", "ALTER GROUP" },
        { "DROP ROLE app;", "DROP ROLE" },
        { "DROP USER app;", "DROP USER" },
        { "CREATE TABLESPACE t LOCATION '/tmp';", "CREATE TABLESPACE" },
        { "ALTER TABLESPACE t OWNER TO x;", "ALTER TABLESPACE" },
        { "DROP TABLESPACE t;", "DROP TABLESPACE" },
        { "ALTER SYSTEM SET archive_command = 'id';", "ALTER SYSTEM" },
        { "SET ROLE postgres;", "SET ROLE" },
        { "SET role = 'postgres';", "SET role" },
        { "SET SESSION ROLE postgres;", "SET SESSION ROLE" },
        { "SET LOCAL session_authorization = 'postgres';", "SET LOCAL session_authorization" },
        { "SET dynamic_library_path = '/tmp';", "SET dynamic_library_path" },
        { "SET TIME ZONE 'UTC';", "SET TIME" },
        { "RESET ROLE;", "RESET ROLE" },
        { "RESET ALL;", "RESET ALL" },
        { "LOAD '/tmp/evil.so';", "LOAD" },
        { "CHECKPOINT;", "CHECKPOINT" },
        { "VACUUM;", "VACUUM" },
        { "UPDATE public.t SET x = 1;", "UPDATE" },
        { "DELETE FROM public.t;", "DELETE" },
        { "TRUNCATE public.t;", "TRUNCATE" },
        { "PREPARE p AS SELECT 1;", "PREPARE" },
        { "LISTEN x;", "LISTEN" },
        { "(SELECT 1);", "(" },
        { "\"DO\";", "DO" },
        { "COMMIT PREPARED 'x';", "COMMIT PREPARED" },
        { "SELECT 1;", "SELECT 1" },
        { "SELECT set_config('search_path', '', false);", "SELECT set_config" },
        { "SELECT public.dblink_exec('dbname=other', 'INSERT INTO o VALUES (99)');", "SELECT ... public" },
        { "SELECT pg_catalog.setval('s', 1), public.f();", "SELECT ... public" },
        { "SELECT pg_catalog.setval('s', (SELECT 1));", "SELECT ... (" },
        { "SELECT pg_catalog.setval('s', 1) FROM pg_catalog.pg_largeobject_metadata WHERE oid = (SELECT 1);", "SELECT ... (" },
        { "SELECT * FROM pg_catalog.pg_restore_relation_stats('x', current_user);", "SELECT ... current_user" },
        { "SELECT pg_catalog.setval('s', true(1));", "SELECT ... (" },
        { "SELECT pg_catalog.pg_read_file('/etc/passwd');", "SELECT ... pg_read_file" },
        { "SELECT pg_catalog.lo_export(16385, '/tmp/x');", "SELECT ... lo_export" },
        { "SELECT pg_catalog.set_config('role', 'postgres', false);", "SELECT pg_catalog.set_config('role')" },
        { "SELECT pg_catalog.setval('s', 1)::public.evil;", "SELECT ... public" },
        { "SELECT \"pg_catalog\".setval('s', 1);", "SELECT ... pg_catalog" },
        { "INSERT INTO public.t SELECT * FROM pg_authid;", "INSERT ... SELECT" },
        { "INSERT INTO public.t VALUES ((SELECT 1));", "INSERT ... SELECT" },
        { "INSERT INTO public.t VALUES (public.f(1));", "INSERT ... public" },
        { "INSERT INTO public.t VALUES (now());", "INSERT ... now" },
        { "INSERT INTO public.t VALUES (1) RETURNING 1;", "INSERT ... RETURNING" },
        { "INSERT INTO public.t TABLE public.u;", "INSERT ... TABLE" },
        { "INSERT INTO public.t;", "INSERT" },
        { "INSERT public.t VALUES (1);", "INSERT public" },
        { "GRANT pg_read_server_files TO app;", "GRANT ... TO" },
        { "REVOKE app FROM bob;", "REVOKE ... FROM" },
        { "GRANT SET ON PARAMETER log_statement TO app;", "GRANT ... ON PARAMETER" },
        { "GRANT ALL ON TABLESPACE t TO app;", "GRANT ... ON TABLESPACE" },
        { "COMMENT ON ROLE app IS 'x';", "COMMENT ON ROLE" },
        { "SECURITY LABEL ON ROLE app IS 'x';", "SECURITY LABEL ON ROLE" },
        { "REFRESH MATERIALIZED public.v;", "REFRESH MATERIALIZED public" },
        { "/* " + new string('x', 100_000) + " */ DO $$ BEGIN END $$;", "DO" },

        // Queries run at load time, as the restoring account: CREATE TABLE ... AS, SELECT ... INTO,
        // a materialized view filled as it is created, ALTER COLUMN ... TYPE ... USING, a partition bound's expression.
        { "CREATE TABLE public.t1 AS SELECT pg_catalog.pg_read_file('/etc/hostname') AS leak;", "CREATE TABLE ... AS" },
        { "CREATE TABLE public.x AS TABLE pg_catalog.pg_authid;", "CREATE TABLE ... AS" },
        { "CREATE TABLE IF NOT EXISTS public.t4 AS SELECT public.dblink_exec('dbname=other', 'UPDATE victim SET a = 1') AS r;", "CREATE TABLE ... AS" },
        { "CREATE UNLOGGED TABLE public.u (a, b) AS SELECT 1, 2 WITH NO DATA;", "CREATE UNLOGGED TABLE ... AS" },
        { "CREATE TABLE public.e AS EXECUTE p;", "CREATE TABLE ... AS" },
        { "CREATE TEMP TABLE t AS SELECT 1;", "CREATE TEMP" },
        { "CREATE TEMPORARY TABLE t AS SELECT 1;", "CREATE TEMPORARY" },
        { "SELECT * INTO public.t FROM pg_catalog.pg_authid;", "SELECT ... INTO" },
        { "SELECT pg_catalog.setval('s', 1) INTO public.t;", "SELECT ... INTO" },
        { "CREATE MATERIALIZED VIEW public.mv AS SELECT pg_catalog.lo_import('/etc/hostname', 515151) AS c;", "CREATE MATERIALIZED VIEW ... without WITH NO DATA" },
        { "CREATE MATERIALIZED VIEW public.mv AS SELECT x FROM (SELECT 1 AS x) s WITH DATA;", "CREATE MATERIALIZED VIEW ... without WITH NO DATA" },
        { "CREATE MATERIALIZED VIEW public.mv AS SELECT 1 AS x WITH NO DATA UNION SELECT 2;", "CREATE MATERIALIZED VIEW ... without WITH NO DATA" },
        { "ALTER TABLE public.t ALTER COLUMN a TYPE text USING pg_catalog.pg_read_file('/etc/hostname');", "ALTER TABLE ... ALTER ... USING" },
        { "ALTER TABLE ONLY public.t SET (fillfactor = 50), ALTER a SET DATA TYPE text USING pg_catalog.lo_export(1, '/tmp/x')::text;", "ALTER TABLE ... ALTER ... USING" },
        { "ALTER TABLE public.t ADD CONSTRAINT type EXCLUDE USING gist (r WITH &&), ALTER COLUMN type TYPE text USING 'x';", "ALTER TABLE ... ALTER ... USING" },
        { "ALTER FOREIGN TABLE public.ft ALTER COLUMN a TYPE text USING 'x';", "ALTER FOREIGN TABLE ... ALTER ... USING" },
        { "CREATE TABLE public.p1 PARTITION OF public.p FOR VALUES IN (pg_catalog.lo_export(515151, '/tmp/y'));", "CREATE TABLE ... FOR VALUES ... pg_catalog" },
        { "CREATE TABLE public.p1 PARTITION OF public.p (a) FOR VALUES FROM (MINVALUE) TO (public.f()) PARTITION BY LIST (a);", "CREATE TABLE ... FOR VALUES ... public" },
        { "CREATE FOREIGN TABLE public.p1 PARTITION OF public.p FOR VALUES IN ('1'::text) SERVER s;", "CREATE FOREIGN TABLE ... FOR VALUES ... :" },
        { "ALTER TABLE ONLY public.p ATTACH PARTITION public.p1 FOR VALUES IN ((SELECT 1));", "ALTER TABLE ... FOR VALUES ... (" },
        { "ALTER TABLE ONLY public.p ATTACH PARTITION public.p1 FOR VALUES FROM (1) TO (2 + 1);", "ALTER TABLE ... FOR VALUES ... +" },
        { "ALTER TABLE ONLY public.p ATTACH PARTITION public.p1 FOR VALUES WITH (modulus 2, remainder now());", "ALTER TABLE ... FOR VALUES ... now" },
        { "ALTER TABLE ONLY public.p ATTACH PARTITION public.p1 FOR VALUES IN (\"x\");", "ALTER TABLE ... FOR VALUES ... x" },
        { "ALTER TABLE ONLY public.p ATTACH PARTITION public.p1 FOR VALUES FROM (1) (2);", "ALTER TABLE ... FOR VALUES ... (" },
        { "CREATE SCHEMA s CREATE TABLE c PARTITION OF public.p FOR VALUES IN (pg_catalog.lo_export(1, '/tmp/y'));", "CREATE SCHEMA ... CREATE" },
        { "CREATE SCHEMA s GRANT CREATE ON DATABASE other TO PUBLIC;", "CREATE SCHEMA ... GRANT" },
    };

    [Theory]
    [MemberData(nameof(NotPgDumpStatements))]
    public void Refuses_statements_pg_dump_does_not_write(string statement, string shown)
    {
        var input = Utf8("SET client_encoding = 'UTF8';\n" + statement + "\n");
        foreach (var pattern in new[] { new[] { 1 }, [7, 3], [4096], [input.Length] })
        {
            var filter = new PostgresDumpFilter(Target, KnownOnPostgres17);
            var (written, refusal) = DumpFilterRunner.RunUntilRefused(filter.CopyAsync, input, pattern);
            Assert.NotNull(refusal);
            Assert.Equal($"line 2: statement {shown} is not something pg_dump writes; refused", refusal.Message);
            Assert.Equal(ExitCode.Failed, refusal.ExitCode);
            Assert.DoesNotContain((byte)';', written.Skip("SET client_encoding = 'UTF8';".Length));
        }
    }

    // ---- rows that would go to another database ------------------------------------------------

    private const string Fdw = "CREATE EXTENSION IF NOT EXISTS postgres_fdw WITH SCHEMA public;\n" +
        "CREATE SERVER s FOREIGN DATA WRAPPER postgres_fdw OPTIONS (dbname 'other', host '127.0.0.1');\n" +
        "CREATE USER MAPPING FOR CURRENT_USER SERVER s OPTIONS (\"user\" 'u', password 'p');\n";

    private static string Into(string verb, string what) =>
        $"{verb} into {what} is not something pg_dump writes; refused";

    private static string ForeignTable(string name) => $"foreign table {name} (its rows go to another server)";

    private static string WithForeignPartition(string name) => $"{name}, a partitioned table with a foreign partition (its rows can go to another server)";

    /// <summary>
    /// A dump whose statements are all ones pg_dump writes, but whose rows go to another database:
    /// into a foreign table (pg_dump writes no rows for one), a partitioned table with a foreign
    /// partition, or a view. Input (its last statement is the refused one), then the refusal.
    /// </summary>
    public static TheoryData<string, string> RowsForElsewhere => new()
    {
        { Fdw + "CREATE FOREIGN TABLE public.ft (\n    id integer\n)\nSERVER s\nOPTIONS (\n    table_name 'o'\n);\nCOPY public.ft (id) FROM stdin;\n1\n\\.\n", "line 11: " + Into("COPY", ForeignTable("public.ft")) },
        { Fdw + "CREATE FOREIGN TABLE public.ft (id integer) SERVER s;\nINSERT INTO public.ft VALUES (1);\n", "line 5: " + Into("INSERT", ForeignTable("public.ft")) },
        { "CREATE FOREIGN TABLE ft (id integer) SERVER s;\nCOPY public.ft FROM stdin;\n", "line 2: " + Into("COPY", ForeignTable("public.ft")) },
        { "CREATE FOREIGN TABLE public.ft (id integer) SERVER s;\nSET search_path = public;\nINSERT INTO ft VALUES (1);\n", "line 3: " + Into("INSERT", ForeignTable("ft")) },
        { "CREATE FOREIGN TABLE IF NOT EXISTS \"Remote\".\"FT\" (id integer) SERVER s;\nCOPY \"Remote\".\"FT\" FROM stdin;\n", "line 2: " + Into("COPY", ForeignTable("Remote.FT")) },
        { "CREATE FOREIGN TABLE PUBLIC.FT (id integer) SERVER s;\ninsert into \"public\".\"ft\" (id) values (1);\n", "line 2: " + Into("INSERT", ForeignTable("public.ft")) },
        { "CREATE FOREIGN TABLE x.ft (id integer) SERVER s;\nCOPY db.x.ft FROM stdin;\n", "line 2: " + Into("COPY", ForeignTable("x.ft")) },
        { "CREATE FOREIGN TABLE if (id integer) SERVER s;\nCOPY IF FROM stdin;\n", "line 2: " + Into("COPY", ForeignTable("if")) },
        {
            "CREATE TABLE public.m (id integer, at date) PARTITION BY RANGE (at);\nCREATE FOREIGN TABLE public.fp (id integer, at date) SERVER s;\n" +
            "ALTER TABLE ONLY public.m ATTACH PARTITION public.fp FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');\nCOPY public.m (id, at) FROM stdin;\n",
            "line 4: " + Into("COPY", WithForeignPartition("public.m"))
        },
        {
            "CREATE TABLE public.m (id integer, at date) PARTITION BY RANGE (at);\n" +
            "CREATE FOREIGN TABLE public.fp PARTITION OF public.m FOR VALUES FROM ('2024-01-01') TO ('2025-01-01') SERVER s;\nINSERT INTO public.m VALUES (1, '2024-03-01');\n",
            "line 3: " + Into("INSERT", WithForeignPartition("public.m"))
        },
        {
            "CREATE TABLE public.m2 PARTITION OF public.m FOR VALUES FROM ('2024-01-01') TO ('2025-01-01') PARTITION BY RANGE (at);\n" +
            "CREATE FOREIGN TABLE public.fp (id integer, at date) SERVER s;\nALTER TABLE IF EXISTS ONLY public.m2 ATTACH PARTITION public.fp DEFAULT;\nCOPY public.m FROM stdin;\n",
            "line 4: " + Into("COPY", WithForeignPartition("public.m"))
        },
        { "CREATE VIEW public.v AS\n SELECT id FROM public.ft;\nINSERT INTO public.v VALUES (1);\n", "line 3: " + Into("INSERT", "view public.v (pg_dump writes no rows into a view)") },
        { "CREATE OR REPLACE VIEW public.v AS SELECT 1 AS id;\nCOPY public.v FROM stdin;\n", "line 2: " + Into("COPY", "view public.v (pg_dump writes no rows into a view)") },
        { "CREATE FOREIGN TABLE public.ft (id integer) SERVER s;\nALTER FOREIGN TABLE public.ft RENAME TO t;\n", "line 2: statement ALTER ... RENAME is not something pg_dump writes; refused" },
        { "ALTER TABLE IF EXISTS ONLY public.ft RENAME COLUMN a TO b;\n", "line 1: statement ALTER ... RENAME is not something pg_dump writes; refused" },
        { "ALTER INDEX public.ft RENAME TO t;\n", "line 1: statement ALTER ... RENAME is not something pg_dump writes; refused" },
        { "ALTER TABLE public.ft SET SCHEMA other;\n", "line 1: statement ALTER ... SET SCHEMA is not something pg_dump writes; refused" },
        { "ALTER SCHEMA public RENAME TO other;\n", "line 1: statement ALTER ... RENAME is not something pg_dump writes; refused" },
        { "COPY U&\"f\\0074\" FROM stdin;\n", "line 1: statement COPY U& is not something pg_dump writes; refused" },
        { "CREATE FOREIGN TABLE public.ft (id integer) SERVER s;\nCOPY public.ft FROM stdin;\n", "line 2: " + Into("COPY", ForeignTable("public.ft")) },
    };

    [Theory]
    [MemberData(nameof(RowsForElsewhere))]
    public void Refuses_rows_that_would_go_to_another_database(string input, string message)
    {
        var bytes = Utf8(input);
        var refused = input.LastIndexOf('\n', input.LastIndexOf(';') - 1) + 1;
        foreach (var pattern in new[] { new[] { 1 }, [7, 3], [4096], [bytes.Length] })
        {
            var filter = new PostgresDumpFilter(Target, KnownOnPostgres17);
            var (written, refusal) = DumpFilterRunner.RunUntilRefused(filter.CopyAsync, bytes, pattern);
            Assert.Equal(message, refusal?.Message);
            Assert.True(written.Length <= refused, $"reads of [{string.Join(",", pattern)}]: the refused statement reached psql");
        }
    }

    /// <summary>
    /// A backup set's files are filtered one after the other, each with the facts of those before
    /// (<see cref="PostgresDumpFacts"/>): each dump above cut before its refused statement is refused
    /// in the second file as in one dump; without the first file's facts that statement passes.
    /// </summary>
    [Theory]
    [MemberData(nameof(RowsForElsewhere))]
    public void Refuses_rows_that_would_go_to_another_database_by_what_an_earlier_file_created(string input, string message)
    {
        var cut = input.LastIndexOf('\n', input.LastIndexOf(';') - 1) + 1;
        var facts = new PostgresDumpFacts();
        DumpFilterRunner.Run(new PostgresDumpFilter(Target, KnownOnPostgres17, new PostgresFilterOptions(Facts: facts)).CopyAsync, Utf8(input[..cut]), [4096]);
        var second = new PostgresDumpFilter(Target, KnownOnPostgres17, new PostgresFilterOptions(Facts: facts.Copy()));

        var (_, refusal) = DumpFilterRunner.RunUntilRefused(second.CopyAsync, Utf8(input[cut..]), [4096]);

        // The line is the second file's own.
        Assert.Equal(message[message.IndexOf(": ", StringComparison.Ordinal)..], refusal?.Message[refusal.Message.IndexOf(": ", StringComparison.Ordinal)..]);
        if (message.Contains(" into ", StringComparison.Ordinal))
        {
            var alone = new PostgresDumpFilter(Target, KnownOnPostgres17);
            Assert.Null(DumpFilterRunner.RunUntilRefused(alone.CopyAsync, Utf8(input[cut..]), [4096]).Refusal);
        }
    }

    /// <summary>What pg_dump writes around foreign tables, views, partitions and subscriptions passes byte for byte.</summary>
    [Theory]
    [InlineData("CREATE FOREIGN TABLE remote.orders (id integer) SERVER s;\nCOPY public.orders (id) FROM stdin;\n1\n\\.\nINSERT INTO public.orders VALUES (2);\n")]
    [InlineData("CREATE FOREIGN TABLE public.ft (id integer) SERVER s;\nCOPY public.ftx FROM stdin;\n\\.\nINSERT INTO public.\"FT\" VALUES (1);\n")]
    [InlineData("DROP FOREIGN TABLE IF EXISTS public.ft;\nCREATE FOREIGN TABLE public.ft (id integer) SERVER s;\nALTER FOREIGN TABLE public.ft OWNER TO app;\nALTER FOREIGN TABLE ONLY public.ft ALTER COLUMN id SET (n_distinct = 1);\nCOMMENT ON FOREIGN TABLE public.ft IS 'x';\n")]
    [InlineData("CREATE TABLE public.m (id integer, at date) PARTITION BY RANGE (at);\nCREATE TABLE public.m_2024 (id integer, at date);\nCREATE FOREIGN TABLE public.ft (id integer) SERVER s;\n" +
        "ALTER TABLE ONLY public.m ATTACH PARTITION public.m_2024 FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');\nCOPY public.m_2024 (id, at) FROM stdin;\n1\t2024-03-01\n\\.\nCOPY public.m FROM stdin;\n\\.\n")]
    [InlineData("CREATE TABLE public.if (id integer);\nCREATE TABLE IF NOT EXISTS public.t (id integer);\nALTER TABLE public.t SET (fillfactor = 50);\nALTER TABLE ONLY public.t SET WITHOUT CLUSTER;\nCREATE VIEW public.v AS SELECT 1;\nINSERT INTO public.t VALUES (1);\n")]
    [InlineData("DROP SUBSCRIPTION IF EXISTS s;\nCREATE SUBSCRIPTION s CONNECTION 'host=x dbname=y' PUBLICATION p, \"Q\" WITH (connect = false, slot_name = 's', binary = true, streaming = parallel);\nALTER SUBSCRIPTION s OWNER TO app;\nCOMMENT ON SUBSCRIPTION s IS 'x';\n")]
    [InlineData("CREATE SUBSCRIPTION \"S\" CONNECTION 'connect = true' PUBLICATION \"with\" WITH (connect = false, slot_name = NONE);\n")]
    public void Passes_what_pg_dump_writes_for_foreign_tables_views_partitions_and_subscriptions(string statements)
    {
        AssertFilters(Utf8(statements), Utf8(statements), KnownOnPostgres17, null, 0);
    }

    /// <summary>
    /// pg_dump writes every subscription with connect = false first: without it, CREATE SUBSCRIPTION
    /// connects to the publisher and creates a replication slot there. ALTER SUBSCRIPTION other
    /// than OWNER TO (ENABLE, REFRESH, CONNECTION) connects too, and so does a DROP of a
    /// subscription the dump made (to drop its slot).
    /// </summary>
    [Theory]
    [InlineData("CREATE SUBSCRIPTION s CONNECTION 'host=x dbname=y' PUBLICATION p;", "line 1: CREATE SUBSCRIPTION without WITH (connect = false, ...) is not something pg_dump writes (it connects to another server); refused")]
    [InlineData("CREATE SUBSCRIPTION s CONNECTION 'host=x dbname=y' PUBLICATION p WITH (connect = true, slot_name = 's');", "line 1: CREATE SUBSCRIPTION without WITH (connect = false, ...) is not something pg_dump writes (it connects to another server); refused")]
    [InlineData("CREATE SUBSCRIPTION s CONNECTION 'host=x' PUBLICATION p WITH (slot_name = 's', connect = false);", "line 1: CREATE SUBSCRIPTION without WITH (connect = false, ...) is not something pg_dump writes (it connects to another server); refused")]
    [InlineData("CREATE SUBSCRIPTION s CONNECTION 'host=x' PUBLICATION p WITH (connect = 'false');", "line 1: CREATE SUBSCRIPTION without WITH (connect = false, ...) is not something pg_dump writes (it connects to another server); refused")]
    [InlineData("ALTER SUBSCRIPTION s ENABLE;", "line 1: statement ALTER SUBSCRIPTION s ENABLE is not something pg_dump writes; refused")]
    [InlineData("ALTER SUBSCRIPTION s REFRESH PUBLICATION;", "line 1: statement ALTER SUBSCRIPTION s REFRESH is not something pg_dump writes; refused")]
    [InlineData("ALTER SUBSCRIPTION s CONNECTION 'host=y';", "line 1: statement ALTER SUBSCRIPTION s CONNECTION is not something pg_dump writes; refused")]
    [InlineData("CREATE SUBSCRIPTION s CONNECTION 'host=x' PUBLICATION p WITH (connect = false, slot_name = 'victim');\nDROP SUBSCRIPTION s;", "line 2: DROP SUBSCRIPTION of a subscription the dump created is not something pg_dump writes (it connects to another server); refused")]
    public void Refuses_subscriptions_that_connect_to_another_server(string input, string message)
    {
        var bytes = Utf8(input + "\n");
        var refused = input.LastIndexOf('\n') + 1;
        foreach (var pattern in new[] { new[] { 1 }, [7, 3], [bytes.Length] })
        {
            var filter = new PostgresDumpFilter(Target, KnownOnPostgres17);
            var (written, refusal) = DumpFilterRunner.RunUntilRefused(filter.CopyAsync, bytes, pattern);
            Assert.Equal(message, refusal?.Message);
            Assert.True(written.Length <= refused, $"reads of [{string.Join(",", pattern)}]: the refused statement reached psql");
        }
    }

    /// <summary>pg_dump --inserts rows are long: they go on to psql as they come, and a call after the first 64 KiB still refuses the statement before its ';'.</summary>
    [Fact]
    public void Refuses_a_call_late_in_a_long_insert()
    {
        var input = Utf8("INSERT INTO public.t VALUES ('" + new string('x', 200_000) + "', public.f());\n");
        var filter = new PostgresDumpFilter(Target, KnownOnPostgres17);
        var (written, refusal) = DumpFilterRunner.RunUntilRefused(filter.CopyAsync, input, [4096]);
        Assert.Equal("line 1: statement INSERT ... public is not something pg_dump writes; refused", refusal?.Message);
        Assert.DoesNotContain((byte)';', written);
    }

    // ---- what pg_dump does not write is refused -------------------------------------------------

    /// <summary>Input, then the refusal message. Nothing of the refused line or statement may reach psql.</summary>
    public static TheoryData<string, string> Refusals => new()
    {
        { "\\! touch /tmp/x\n", "line 1: psql meta-command \\! is not something pg_dump writes; refused" },
        { "CREATE VIEW v AS SELECT 1;\n   \\! touch /tmp/x\n", "line 2: psql meta-command \\! is not something pg_dump writes; refused" },
        { "CREATE VIEW v AS SELECT 1; \\! touch /tmp/x\n", "line 1: psql meta-command \\! is not something pg_dump writes; refused" },
        { "\\!touch /tmp/x", "line 1: psql meta-command \\!touch is not something pg_dump writes; refused" },
        { "CREATE VIEW v AS SELECT 1 \\! touch /tmp/x\n;", "line 1: psql meta-command \\! inside a statement is not something pg_dump writes; refused" },
        { "CREATE VIEW v AS SELECT 1\n\\connect dns_db\n;", "line 2: psql meta-command \\connect inside a statement is not something pg_dump writes; refused" },
        { "\\o /tmp/x\n", "line 1: psql meta-command \\o is not something pg_dump writes; refused" },
        { "\\i /etc/passwd\n", "line 1: psql meta-command \\i is not something pg_dump writes; refused" },
        { "\\ir x.sql\n", "line 1: psql meta-command \\ir is not something pg_dump writes; refused" },
        { "\\setenv PAGER 'sh -c x'\n", "line 1: psql meta-command \\setenv is not something pg_dump writes; refused" },
        { "\\copy t to '/tmp/x'\n", "line 1: psql meta-command \\copy is not something pg_dump writes; refused" },
        { "\\COPY t TO '/tmp/x'\n", "line 1: psql meta-command \\COPY is not something pg_dump writes; refused" },
        { "\\CONNECT x\n", "line 1: psql meta-command \\CONNECT is not something pg_dump writes; refused" },
        { "\\set ON_ERROR_STOP off\n", "line 1: psql meta-command \\set is not something pg_dump writes; refused" },
        { "CREATE VIEW v AS SELECT 1 \\g /tmp/x\n", "line 1: psql meta-command \\g inside a statement is not something pg_dump writes; refused" },
        { "CREATE VIEW v AS SELECT 1 \\w /tmp/x\n", "line 1: psql meta-command \\w inside a statement is not something pg_dump writes; refused" },
        { "CREATE VIEW v AS SELECT 'x' AS a \\gset\n", "line 1: psql meta-command \\gset inside a statement is not something pg_dump writes; refused" },
        { "CREATE VIEW v AS SELECT 1 \\; CREATE VIEW v AS SELECT 2;\n", "line 1: psql meta-command \\; inside a statement is not something pg_dump writes; refused" },
        { "\\\\\n", "line 1: psql meta-command \\\\ is not something pg_dump writes; refused" },
        { "\\\n", "line 1: psql meta-command \\ is not something pg_dump writes; refused" },
        { "\\.\n", "line 1: psql meta-command \\. is not something pg_dump writes; refused" },
        { "\\connect dns_db \\! touch /tmp/x\n", "line 1: psql meta-command \\! is not something pg_dump writes; refused" },
        { "\\connect dns_db \\\\ SELECT 1;\n", "line 1: psql meta-command \\\\ is not something pg_dump writes; refused" },
        { "\\echo x \\connect dns_db\n", "line 1: psql meta-command \\echo is not something pg_dump writes; refused" },
        { "\\restrict abc `touch /tmp/x`\n", "line 1: psql meta-command \\restrict is not written the way pg_dump writes it; refused" },
        { "\\restrict abc \\! touch /tmp/x\n", "line 1: psql meta-command \\restrict is not written the way pg_dump writes it; refused" },
        { "\\unrestrict :KEY\n", "line 1: psql meta-command \\unrestrict is not written the way pg_dump writes it; refused" },
        { "\\restrict\n", "line 1: psql meta-command \\restrict is not written the way pg_dump writes it; refused" },
        { "\\restrictabc\n", "line 1: psql meta-command \\restrictabc is not something pg_dump writes; refused" },
        { "COPY t (a) FROM stdin \\! touch /tmp/x\n;\n", "line 1: psql meta-command \\! inside a statement is not something pg_dump writes; refused" },
        { "COPY t FROM stdin; \\! touch /tmp/x\n1\n\\.\n", "line 1: psql meta-command \\! inside a statement is not something pg_dump writes; refused" },
        { "COPY t FROM stdin; -- c\r\\! touch /tmp/x\n1\n\\.\n", "line 1: psql meta-command \\! inside a statement is not something pg_dump writes; refused" },
        { "COPY t FROM stdin; CREATE VIEW v AS SELECT 1;\n1\n\\.\n", "line 1: text after 'COPY ... FROM stdin;' on its line (psql runs it after the data); refused" },
        { "COPY t FROM stdin;\n1\n\\.\n\\! touch /tmp/x\n", "line 4: psql meta-command \\! is not something pg_dump writes; refused" },
        { "COPY t FROM stdin;\n1\n\\.\n   \\! touch /tmp/x", "line 4: psql meta-command \\! is not something pg_dump writes; refused" },
        { "COPY t TO PROGRAM 'touch /tmp/x';\n", CopyRefusal(1) },
        { "copy t from program 'id';", CopyRefusal(1) },
        { "CREATE VIEW v AS SELECT 1;\nCOPY t FROM '/etc/passwd';\n", CopyRefusal(2) },
        { "COPY (SELECT 1 FROM stdin) TO '/tmp/x';", CopyRefusal(1) },
        { "COPY t TO STDOUT;", CopyRefusal(1) },
        { "COPY t FROM \"stdin\";", CopyRefusal(1) },
        { "COPY t TO PROGRAM 'touch /tmp/x'", CopyRefusal(1) },
        { "CREATE VIEW v AS SELECT :DBNAME;\n", "line 1: psql variable :DBNAME is not something pg_dump writes; refused" },
        { "CREATE VIEW v AS SELECT x:::USER;\n", "line 1: psql variable :USER is not something pg_dump writes; refused" },
        { "CREATE VIEW v AS SELECT 1\0;\n", "line 1: a NUL byte in SQL text; refused" },
        { "CREATE VIEW v AS SELECT 1;\n-- c\0\n", "line 2: a NUL byte in SQL text; refused" },
        { "CREATE VIEW v AS SELECT '\0';\n", "line 1: a NUL byte in SQL text; refused" },
        { "CREATE VIEW v AS SELECT $$\0$$;\n", "line 1: a NUL byte in SQL text; refused" },
        // psql would not see this data line's end: the first \. is data to it, the one in the "comment" its end.
        { "CREATE TABLE public.t (s text);\nCOPY public.t (s) FROM stdin;\nx\0\n\\.\nCOMMENT ON TABLE public.t IS '\n\\.\nCREATE ROLE r;\n';\n", "line 3: a NUL byte in COPY data; refused" },
        { "CREATE VIEW v AS SELECT 1$$ \\! x $$;\n", "line 1: a dollar quote glued to the word before it (psql versions read it differently); refused" },
        { "CREATE VIEW v AS SELECT a$b$ x $b$;\n", "line 1: a dollar quote glued to the word before it (psql versions read it differently); refused" },
        { "CREATE VIEW v AS SELECT $1$$ x $$;\n", "line 1: a dollar quote glued to the word before it (psql versions read it differently); refused" },
        { "CREATE VIEW v AS SELECT E'a'\r'b';\n", "line 1: a string literal continued across a carriage return (psql and the server could read it differently); refused" },
        { "CREATE VIEW v AS SELECT E'a'\n \r'b';\n", "line 2: a string literal continued across a carriage return (psql and the server could read it differently); refused" },
        { "CREATE VIEW v AS SELECT xe'a\\';\n", Divergent(1) },
        { "CREATE VIEW v AS SELECT 1; CREATE VIEW v AS SELECT 'C:\\';\n", Divergent(1) },
        { "CREATE VIEW v AS SELECT 1;\nCREATE VIEW v AS SELECT 2; CREATE VIEW v AS SELECT 3,\n 'C:\\';\n", Divergent(3) },
        { "SET client_encoding = 'SJIS';\n", Unreadable(1, "client encoding SJIS") },
        { "SET NAMES 'big5';\n", Unreadable(1, "client encoding big5") },
        { "SET client_encoding TO gbk;\n", Unreadable(1, "client encoding gbk") },
        { "SELECT pg_catalog.set_config('client_encoding', 'Shift_JIS', false);\n", Unreadable(1, "client encoding Shift_JIS") },
        { "SET client_encoding = DEFAULT;\n", Unreadable(1, "client encoding DEFAULT") },
        { "SET client_encoding = 'KOI8';\n", Unreadable(1, "client encoding KOI8") },
        // Only a plain name or '...' string is read for certain: anything else names what the filter cannot check.
        { "SET client_encoding TO \"SJIS\";\nCOPY t TO PROGRAM 'x';\n", Unreadable(1, NotPlainEncoding) },
        { "SET client_encoding = U&'SJI\\0053';\n", Unreadable(1, "client encoding U") },
        { "SET client_encoding = U&'UTF\\0038';\n", Unreadable(1, "client encoding U") },
        { "SET client_encoding = $$SJIS$$;\n", Unreadable(1, NotPlainEncoding) },
        { "SET client_encoding = E'SJIS';\n", Unreadable(1, NotPlainEncoding) },
        { "SET client_encoding = 'UTF8', 'SJIS';\n", Unreadable(1, NotPlainEncoding) },
        { "SET client_encoding = pg_catalog.utf8;\n", Unreadable(1, "client encoding pg_catalog") },
        { "SET LOCAL client_encoding = 'UTF8';\n", Unreadable(1, NotPlainEncoding) },
        { "SELECT pg_catalog.set_config('client_encoding', $$SJIS$$, false);\n", Unreadable(1, NotPlainEncoding) },
        { "SELECT pg_catalog.set_config('client_encoding', 'UTF8' || '', false);\n", Unreadable(1, NotPlainEncoding) },
        // standard_conforming_strings: only SET (SESSION) to on/off (true/false, yes/no, 1/0) as a plain word or string.
        { "SET standard_conforming_strings = of;\nCREATE VIEW v AS SELECT 'x\\' ';\n", UnreadableStandardStrings(1) },
        { "SET standard_conforming_strings = \"off\";\n", UnreadableStandardStrings(1) },
        { "SET standard_conforming_strings = $$off$$;\n", UnreadableStandardStrings(1) },
        { "SET standard_conforming_strings = E'off';\n", UnreadableStandardStrings(1) },
        { "SET standard_conforming_strings = DEFAULT;\n", UnreadableStandardStrings(1) },
        { "SET standard_conforming_strings TO DEFAULT;\n", UnreadableStandardStrings(1) },
        { "SET standard_conforming_strings = on, off;\n", UnreadableStandardStrings(1) },
        { "SET LOCAL standard_conforming_strings = off;\n", UnreadableStandardStrings(1) },
        { "BEGIN;\nSET LOCAL standard_conforming_strings = on;\nCOMMIT;\n", UnreadableStandardStrings(2) },
        { "SELECT pg_catalog.set_config('standard_conforming_strings', 'off', false);\n", UnreadableStandardStrings(1) },
        // psql counts BEGIN/CASE/END in a CREATE FUNCTION to find its end; the server ends it at every ';' outside a BEGIN ATOMIC body.
        { "CREATE FUNCTION public.begin() RETURNS integer LANGUAGE sql AS 'select 1';\nCOPY (SELECT 1) TO PROGRAM 'touch /tmp/x';\nCREATE ROLE x SUPERUSER LOGIN;\nSELECT 1 AS end;\n", EndsElsewhere(1) },
        { "CREATE FUNCTION public.begin() RETURNS integer LANGUAGE sql AS 'select 1';\nCOPY (SELECT 1) TO PROGRAM 'touch /tmp/x';\n", EndsElsewhere(1) },
        { "\nCREATE OR REPLACE PROCEDURE p(int) LANGUAGE sql AS 'select 1' SET search_path = begin;\nCOPY (SELECT 1) TO PROGRAM 'touch /tmp/x';\n", EndsElsewhere(2) },
        { "CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1 AS begin; END; COPY (SELECT 1) TO PROGRAM 'touch /tmp/x'; SELECT 1 AS end;", EndsElsewhere(1) },
        { "CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1 AS end; COPY (SELECT 1) TO PROGRAM 'touch /tmp/x'; END;", EndsElsewhere(1) },
        { "CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT CASE WHEN true THEN 1 END AS x, 1 AS begin; END", EndsElsewhere(1) },
    };

    private static string EndsElsewhere(int line) =>
        $"line {line}: a CREATE FUNCTION or PROCEDURE that psql and the server would end at different places is not something pg_dump writes; refused";

    private const string NotPlainEncoding = "client_encoding set other than to a plain encoding name";

    /// <summary>A setting that changes how psql lexes the dump, to a value the filter cannot be sure of.</summary>
    private static string Unreadable(int line, string what) =>
        $"line {line}: {what} is not something pg_dump writes (the filter could not know how psql reads what follows); refused";

    private static string UnreadableStandardStrings(int line) =>
        Unreadable(line, "standard_conforming_strings set other than by SET to on or off");

    private static string CopyRefusal(int line) =>
        $"line {line}: COPY other than COPY ... FROM stdin (a server file or program) is not something pg_dump writes; refused";

    private static string Divergent(int line) =>
        $"line {line}: a string literal whose end depends on standard_conforming_strings (a quote after an odd number of backslashes; psql could read it differently); refused";

    /// <summary>A plain string whose end depends on standard_conforming_strings gets the setting pinned right before its statement.</summary>
    [Theory]
    [InlineData("CREATE VIEW v AS SELECT 'C:\\';\n", "SET standard_conforming_strings = on;\nCREATE VIEW v AS SELECT 'C:\\';\n")]
    [InlineData("CREATE VIEW v AS SELECT 1;\n  CREATE VIEW v AS SELECT 1,\n'it\\''s', 'x\\';\n", "CREATE VIEW v AS SELECT 1;\n  SET standard_conforming_strings = on;\nCREATE VIEW v AS SELECT 1,\n'it\\''s', 'x\\';\n")]
    [InlineData("CREATE VIEW v AS SELECT n'\\';", "SET standard_conforming_strings = on;\nCREATE VIEW v AS SELECT n'\\';")]
    [InlineData("/* c\n */ CREATE VIEW v AS SELECT 'C:\\';", "/* c\n */ SET standard_conforming_strings = on;\nCREATE VIEW v AS SELECT 'C:\\';")]
    [InlineData("SET standard_conforming_strings = off;\nCREATE VIEW v AS SELECT 'it\\'s';\n", "SET standard_conforming_strings = off;\nSET standard_conforming_strings = off;\nCREATE VIEW v AS SELECT 'it\\'s';\n")]
    [InlineData("COPY t FROM stdin;\n1\n\\.\nINSERT INTO t VALUES ('a\\'), ('b\\');\nINSERT INTO t VALUES ('c\\');\n",
        "COPY t FROM stdin;\n1\n\\.\nSET standard_conforming_strings = on;\nINSERT INTO t VALUES ('a\\'), ('b\\');\nSET standard_conforming_strings = on;\nINSERT INTO t VALUES ('c\\');\n")]
    [InlineData("DROP DATABASE x; DROP DATABASE 'C:\\';\n", " \n")]
    public void Pins_standard_conforming_strings_before_a_string_whose_end_depends_on_it(string input, string expected)
    {
        AssertFilters(Utf8(input), Utf8(expected), KnownOnPostgres17, expected == " \n" ? "x" : null, expected == " \n" ? 2 : 0);
    }

    /// <summary>\restrict stops meta-commands, not SQL misread: code the dump runs (an index expression) can change the setting unseen.</summary>
    [Fact]
    public void Pins_standard_conforming_strings_in_restricted_output_too()
    {
        var filter = new PostgresDumpFilter(Target, KnownOnPostgres17, new PostgresFilterOptions(RestrictMetaCommands: true));
        var output = Encoding.UTF8.GetString(DumpFilterRunner.Run(filter.CopyAsync, Utf8("CREATE VIEW v AS SELECT 'x\\' ';\n"), [4096]));
        Assert.StartsWith("\\restrict ", output);
        Assert.EndsWith("\nSET standard_conforming_strings = on;\nCREATE VIEW v AS SELECT 'x\\' ';\n", output);
    }

    [Fact]
    public void Refuses_such_a_string_when_its_statement_was_already_partly_sent()
    {
        var input = Utf8("INSERT INTO t VALUES ('" + new string('x', 100_000) + "', 'C:\\');\n");
        var filter = new PostgresDumpFilter(Target, KnownOnPostgres17);
        var (_, refusal) = DumpFilterRunner.RunUntilRefused(filter.CopyAsync, input, [4096]);
        Assert.Equal(Divergent(1), refusal?.Message);
    }

    [Theory]
    [MemberData(nameof(Refusals))]
    public void Refuses_what_pg_dump_does_not_write(string input, string message)
    {
        var bytes = Utf8(input);
        foreach (var pattern in DumpFilterRunner.ReadPatterns(bytes.Length))
        {
            var filter = new PostgresDumpFilter(Target, KnownOnPostgres17);
            var (written, refusal) = DumpFilterRunner.RunUntilRefused(filter.CopyAsync, bytes, pattern);
            Assert.NotNull(refusal);
            Assert.Equal(message, refusal.Message);
            Assert.Equal(ExitCode.Failed, refusal.ExitCode);
            Assert.Empty(written);
        }
    }

    [Theory]
    [InlineData("\\! touch /tmp/x\n")]
    [InlineData("   \\! touch /tmp/x\n")]
    [InlineData("CREATE VIEW v AS SELECT 1; \\! touch /tmp/x\n")]
    [InlineData("CREATE VIEW v AS SELECT 1,\n  2 \\g /tmp/x\n")]
    [InlineData("COPY t FROM stdin; \\! touch /tmp/x\n1\n\\.\n")]
    [InlineData("CREATE VIEW v AS SELECT 'C:\\' \\! touch /tmp/x '\n;\n")]
    [InlineData("COPY t TO PROGRAM 'touch /tmp/x';\n")]
    [InlineData("DO $$ BEGIN PERFORM 1; END $$;\n")]
    [InlineData("CREATE ROLE x SUPERUSER;\n")]
    [InlineData("CREATE FUNCTION public.begin() RETURNS integer LANGUAGE sql AS 'select 1';\nCOPY (SELECT 1) TO PROGRAM 'touch /tmp/x';\nSELECT 1 AS end;\n")]
    public void Writes_nothing_of_the_refused_line_or_statement_after_a_large_dump(string offending)
    {
        // A COPY block big enough to be flushed to psql before the refusal.
        var head = new StringBuilder("SET client_encoding = 'UTF8';\nCOPY public.t (a) FROM stdin;\n");
        for (var row = 0; head.Length < 300_000; row++)
        {
            head.Append(row).Append("\tsome data \\\\! not a command\n");
        }

        head.Append("\\.\n\nCREATE VIEW v AS SELECT 1;\n");
        var prefix = Utf8(head.ToString());
        var input = prefix.Concat(Utf8(offending)).ToArray();
        foreach (var pattern in new[] { new[] { 1 }, [7, 3], [4096], [65536], [input.Length] })
        {
            var filter = new PostgresDumpFilter(Target, KnownOnPostgres17);
            var (written, refusal) = DumpFilterRunner.RunUntilRefused(filter.CopyAsync, input, pattern);
            Assert.NotNull(refusal);
            Assert.True(written.Length > 100_000, $"only {written.Length} bytes written before the refusal");
            Assert.True(written.Length <= prefix.Length && prefix.AsSpan(0, written.Length).SequenceEqual(written),
                $"reads of [{string.Join(",", pattern)}]: wrote past the last line break before the refused statement");
        }
    }

    [Fact]
    public void Passes_what_pg_dump_writes_around_meta_commands()
    {
        var (input, expected) = Join(
        [
            Keep("\\restrict Xr4nd0mK3y\r\n\\unrestrict Xr4nd0mK3y  \n"),
            Drop("\\connect -reuse-previous=on \"dbname='dns_db'\""),
            Keep("\nCOPY t (a, \"b\\c\") FROM stdin;\n\\! data\n\\.x\n\\.\r\nCREATE VIEW v AS SELECT 'a\\b', $$\\!$$, \"x\\\"\", E'\\\\'; -- \\! comment\n/* \\! */\n"),
        ]);
        AssertFilters(input, expected, KnownOnPostgres17, "dns_db", 1);
    }

    // ---- the completion trailer ------------------------------------------------------------------

    [Theory]
    [InlineData("CREATE VIEW v AS SELECT 1;\n\n--\n-- PostgreSQL database dump complete\n--\n\n\\unrestrict abc\n\n", true)]
    [InlineData("CREATE VIEW v AS SELECT 1;\r\n--\r\n-- PostgreSQL database dump complete\r\n--\r\n", true)]
    [InlineData("-- PostgreSQL database dump complete", true)]
    [InlineData("-- PostgreSQL database dump complete\n/* a comment */\n-- another\n", true)]
    [InlineData("CREATE VIEW v AS SELECT 1;\n", false)]
    [InlineData("", false)]
    [InlineData("-- PostgreSQL database dump complete\nCREATE VIEW v AS SELECT 1;\n", false)]
    [InlineData("-- PostgreSQL database dump complete\n\\restrict abc\n", false)]
    [InlineData("-- PostgreSQL database dump complete\n\\connect x\n", false)]
    [InlineData("COPY t FROM stdin;\n-- PostgreSQL database dump complete\n", false)]
    [InlineData("COPY t FROM stdin;\n-- PostgreSQL database dump complete\n\\.\n", false)]
    [InlineData("CREATE VIEW v AS SELECT '\n-- PostgreSQL database dump complete\n", false)]
    [InlineData("CREATE VIEW v AS SELECT 1\n-- PostgreSQL database dump complete\n", false)]
    [InlineData("/*\n-- PostgreSQL database dump complete\n*/\n", false)]
    [InlineData("CREATE VIEW v AS SELECT 1; -- PostgreSQL database dump complete\n", false)]
    [InlineData("-- PostgreSQL database dump completed\n", false)]
    [InlineData(" -- PostgreSQL database dump complete\n", false)]
    public void Finds_the_completion_trailer_only_where_pg_dump_writes_it(string input, bool complete)
    {
        var bytes = Utf8(input);
        foreach (var pattern in DumpFilterRunner.ReadPatterns(bytes.Length))
        {
            var filter = new PostgresDumpFilter(Target, KnownOnPostgres17);
            DumpFilterRunner.Run(filter.CopyAsync, bytes, pattern);
            Assert.Equal(complete, filter.EndedWithCompletionTrailer);
        }
    }

    [Fact]
    public void Finds_the_trailer_of_a_whole_pg_dump_file_and_not_of_a_truncated_one()
    {
        var parts = PgDumpParts(transactionTimeoutKnown: true);
        var (whole, _) = Join(parts);
        var filter = new PostgresDumpFilter(Target, KnownOnPostgres17);
        DumpFilterRunner.Run(filter.CopyAsync, whole, [4096]);
        Assert.True(filter.EndedWithCompletionTrailer);

        // A table whose data holds the trailer line, cut off right after it.
        var cut = Utf8("COPY public.notes (body) FROM stdin;\n-- PostgreSQL database dump complete\n");
        var truncated = new PostgresDumpFilter(Target, KnownOnPostgres17);
        var copyStart = Encoding.UTF8.GetString(whole).IndexOf("COPY public.records", StringComparison.Ordinal);
        DumpFilterRunner.Run(truncated.CopyAsync, whole.Take(copyStart).Concat(cut).ToArray(), [4096]);
        Assert.False(truncated.EndedWithCompletionTrailer);
    }

    // ---- \restrict: psql itself refuses meta-commands ---------------------------------------------

    [Fact]
    public void Restricted_output_starts_with_its_own_restrict_key_and_drops_the_dumps_keys()
    {
        var input = Utf8("\\restrict AAA\nCREATE VIEW v AS SELECT 'C:\\';\n\\unrestrict AAA\n-- PostgreSQL database dump complete\n\\unrestrict AAA\n");
        foreach (var pattern in DumpFilterRunner.ReadPatterns(input.Length))
        {
            var filter = new PostgresDumpFilter(Target, KnownOnPostgres17, new PostgresFilterOptions(RestrictMetaCommands: true));
            var output = Encoding.UTF8.GetString(DumpFilterRunner.Run(filter.CopyAsync, input, pattern));
            Assert.Matches("^\\\\restrict [A-Za-z0-9]{32}\n\nSET standard_conforming_strings = on;\nCREATE VIEW v AS SELECT 'C:\\\\';\n\n-- PostgreSQL database dump complete\n\n$", output);
            Assert.Equal(3, filter.DroppedStatements);
            Assert.True(filter.EndedWithCompletionTrailer);
        }

        var first = Encoding.UTF8.GetString(DumpFilterRunner.Run(new PostgresDumpFilter(Target, KnownOnPostgres17, new PostgresFilterOptions(true)).CopyAsync, input, [64]));
        var second = Encoding.UTF8.GetString(DumpFilterRunner.Run(new PostgresDumpFilter(Target, KnownOnPostgres17, new PostgresFilterOptions(true)).CopyAsync, input, [64]));
        Assert.NotEqual(first.Split('\n')[0], second.Split('\n')[0]);
    }

    [Fact]
    public void Restricted_output_still_refuses_meta_commands()
    {
        var filter = new PostgresDumpFilter(Target, KnownOnPostgres17, new PostgresFilterOptions(RestrictMetaCommands: true));
        var (written, refusal) = DumpFilterRunner.RunUntilRefused(filter.CopyAsync, Utf8("CREATE VIEW v AS SELECT 1;\n\\! touch /tmp/x\n"), [3]);
        Assert.Equal("line 2: psql meta-command \\! is not something pg_dump writes; refused", refusal?.Message);
        Assert.Empty(written);
    }

    [Theory]
    [InlineData("psql (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)", true)]
    [InlineData("pg_dump (PostgreSQL) 15.14", true)]
    [InlineData("pg_dump (PostgreSQL) 15.13", false)]
    [InlineData("pg_dump (PostgreSQL) 17.6 (Ubuntu 17.6-1.pgdg24.04+1)", true)]
    [InlineData("pg_dump (PostgreSQL) 17.5", false)]
    [InlineData("pg_dump (PostgreSQL) 16.10", true)]
    [InlineData("pg_dump (PostgreSQL) 16.9", false)]
    [InlineData("pg_dump (PostgreSQL) 14.19", true)]
    [InlineData("pg_dump (PostgreSQL) 13.22", true)]
    [InlineData("pg_dump (PostgreSQL) 13.21", false)]
    [InlineData("pg_dump (PostgreSQL) 12.22", false)]
    [InlineData("pg_dump (PostgreSQL) 18.0", true)]
    [InlineData("pg_dump (PostgreSQL) 18beta3", false)]
    [InlineData("pg_dump (PostgreSQL) 19devel", true)]
    [InlineData("something else", false)]
    public void Knows_which_clients_have_restrict(string versionLine, bool supported)
    {
        Assert.Equal(supported, PostgresDumpFilter.ClientSupportsRestrict(versionLine));
    }

    private static string Outcome(byte[] input, int[] pattern)
    {
        var filter = new PostgresDumpFilter(Target, KnownOnPostgres15);
        var (written, refusal) = DumpFilterRunner.RunUntilRefused(filter.CopyAsync, input, pattern);
        return refusal is null
            ? $"ok:{Convert.ToHexString(written)}:{filter.EndedWithCompletionTrailer}:{filter.DroppedStatements}"
            : $"refused:{refusal.Message}";
    }

    private static void AssertFilters(byte[] input, byte[] expected, Func<string, bool> known, string? source, int dropped)
    {
        foreach (var pattern in DumpFilterRunner.ReadPatterns(input.Length))
        {
            var filter = new PostgresDumpFilter(Target, known);
            var output = DumpFilterRunner.Run(filter.CopyAsync, input, pattern);
            Assert.True(
                expected.AsSpan().SequenceEqual(output),
                $"reads of [{string.Join(",", pattern)}]:\nexpected: {DumpFilterRunner.Show(expected)}\nactual:   {DumpFilterRunner.Show(output)}");
            Assert.Equal(source, filter.SourceDatabase);
            Assert.Equal(dropped, filter.DroppedStatements);
        }
    }

    /// <summary>pg_dump 17.6 --clean --create --if-exists dns_db (plain format).</summary>
    private static DumpPart[] PgDumpParts(bool transactionTimeoutKnown)
    {
        DumpPart TransactionTimeout() =>
            transactionTimeoutKnown ? Keep("SET transaction_timeout = 0;") : Drop("SET transaction_timeout = 0;");

        return
        [
            Keep("""
                --
                -- PostgreSQL database dump
                --

                \restrict Xr4nd0mK3yXr4nd0mK3y

                -- Dumped from database version 17.6 (Debian 17.6-1.pgdg120+1)
                -- Dumped by pg_dump version 17.6 (Debian 17.6-1.pgdg120+1)

                SET statement_timeout = 0;
                SET lock_timeout = 0;
                SET idle_in_transaction_session_timeout = 0;

                """),
            TransactionTimeout(),
            Keep("""

                SET client_encoding = 'UTF8';
                SET standard_conforming_strings = on;
                SELECT pg_catalog.set_config('search_path', '', false);
                SET check_function_bodies = false;
                SET xmloption = content;
                SET client_min_messages = warning;
                SET row_security = off;


                """),
            Drop("DROP DATABASE IF EXISTS dns_db;"),
            Keep("""

                --
                -- Name: dns_db; Type: DATABASE; Schema: -; Owner: postgres
                --


                """),
            Drop("CREATE DATABASE dns_db WITH TEMPLATE = template0 ENCODING = 'UTF8' LOCALE_PROVIDER = libc LOCALE = 'en_US.UTF-8';"),
            Keep("\n\n\n"),
            Drop("ALTER DATABASE dns_db OWNER TO postgres;"),
            Keep("\n\n\\unrestrict Xr4nd0mK3yXr4nd0mK3y\n"),
            Drop("\\connect dns_db"),
            Keep("""

                \restrict Xr4nd0mK3yXr4nd0mK3y

                SET statement_timeout = 0;
                SET lock_timeout = 0;
                SET idle_in_transaction_session_timeout = 0;

                """),
            TransactionTimeout(),
            Keep("""

                SET client_encoding = 'UTF8';
                SET standard_conforming_strings = on;
                SELECT pg_catalog.set_config('search_path', '', false);
                SET check_function_bodies = false;
                SET xmloption = content;
                SET client_min_messages = warning;
                SET row_security = off;

                --
                -- Name: DATABASE dns_db; Type: COMMENT; Schema: -; Owner: postgres
                --


                """),
            Rewrite("COMMENT ON DATABASE dns_db IS 'DNS zones; ''primary''';", $"COMMENT ON DATABASE {QuotedTarget} IS 'DNS zones; ''primary''';"),
            Keep("""


                --
                -- Name: dns_db; Type: DATABASE PROPERTIES; Schema: -; Owner: postgres
                --


                """),
            Rewrite("ALTER DATABASE dns_db SET search_path TO 'public', 'dns';", $"ALTER DATABASE {QuotedTarget} SET search_path TO 'public', 'dns';"),
            Keep("\n"),
            Rewrite("ALTER ROLE dns_app IN DATABASE dns_db SET statement_timeout TO '5s';", $"ALTER ROLE dns_app IN DATABASE {QuotedTarget} SET statement_timeout TO '5s';"),
            Keep("""


                SET default_tablespace = '';

                SET default_table_access_method = heap;

                --
                -- Name: add_record(text); Type: FUNCTION; Schema: public; Owner: postgres
                --

                CREATE FUNCTION public.add_record(n text) RETURNS integer
                    LANGUAGE plpgsql
                    AS $_$
                DECLARE
                  r integer;
                BEGIN
                  -- DROP DATABASE dns_db;
                  INSERT INTO public.records (name) VALUES (n || ';' || $$it's$$) RETURNING id INTO r;
                  RETURN r;
                END;
                $_$;


                ALTER FUNCTION public.add_record(n text) OWNER TO postgres;

                --
                -- Name: two(); Type: FUNCTION; Schema: public; Owner: postgres
                --

                CREATE FUNCTION public.two() RETURNS integer
                    LANGUAGE sql
                    BEGIN ATOMIC
                 SELECT 1;
                 SELECT 2;
                END;


                ALTER FUNCTION public.two() OWNER TO postgres;

                --
                -- Name: records; Type: TABLE; Schema: public; Owner: postgres
                --

                CREATE TABLE public.records (
                    id integer NOT NULL,
                    name text,
                    "DROP DATABASE dns_db;" text
                );


                ALTER TABLE public.records OWNER TO postgres;

                --
                -- Data for Name: records; Type: TABLE DATA; Schema: public; Owner: postgres
                --

                COPY public.records (id, name, "DROP DATABASE dns_db;") FROM stdin;
                1	\connect dns_db	;
                2	DROP DATABASE dns_db;	'"$$
                3	it\\'s	\N
                \connect dns_db
                \.


                --
                -- Name: records records_pkey; Type: CONSTRAINT; Schema: public; Owner: postgres
                --

                ALTER TABLE ONLY public.records
                    ADD CONSTRAINT records_pkey PRIMARY KEY (id);


                --
                -- Name: DATABASE dns_db; Type: ACL; Schema: -; Owner: postgres
                --


                """),
            Rewrite("GRANT CONNECT ON DATABASE dns_db TO PUBLIC;", $"GRANT CONNECT ON DATABASE {QuotedTarget} TO PUBLIC;"),
            Keep("""


                --
                -- PostgreSQL database dump complete
                --

                \unrestrict Xr4nd0mK3yXr4nd0mK3y


                """),
        ];
    }

    // ---- what psql holds in memory (tr105) ----------------------------------------------------------

    private const long Cap = 64L * 1024 * 1024;

    private static Func<Stream, Stream, CancellationToken, Task> NewFilter() => new PostgresDumpFilter(Target, KnownOnPostgres15).CopyAsync;

    private const string CapHead = "--\n-- PostgreSQL database dump\n--\n\nSET standard_conforming_strings = on;\n\n";
    private const string CapTrailer = "\n--\n-- PostgreSQL database dump complete\n--\n\n";

    /// <summary>
    /// tr105: an old-tool dump holding <c>COMMENT ON TABLE ... IS '900 MB of A'</c> (3.7 MB gzipped) passed the filter,
    /// and psql, which holds a statement whole, grew to 5 GB before the server refused it. A statement of more than
    /// 64 MiB is refused before its end reaches psql (which is then stopped, never having run it); one of 64 MiB passes.
    /// </summary>
    [Fact]
    public void Refuses_a_statement_of_more_than_64_MiB()
    {
        const string open = "COMMENT ON TABLE \"public\".\"t\" IS '";
        const string close = "';\n";
        var (output, refusal) = DumpFilterRunner.RunGenerated(NewFilter(), (CapHead, 1), (open, 1), ("A", Cap - open.Length), (close, 1), (CapTrailer, 1));
        Assert.NotNull(refusal);
        Assert.Equal("line 7: a statement of more than 64 MiB (psql would hold it whole in memory; only COPY data may be longer); refused", refusal.Message);
        Assert.True(output.Written <= CapHead.Length + Cap, $"{output.Written} bytes written: the statement's closing quote among them");

        // 64 MiB to its ';' (the ';' and the line break after it aside) passes whole.
        var fits = new (string, long)[] { (CapHead, 1), (open, 1), ("A", Cap - open.Length - 1), ("'", 1), (";\n", 1), (CapTrailer, 1) };
        (output, refusal) = DumpFilterRunner.RunGenerated(NewFilter(), fits);
        Assert.Null(refusal);
        Assert.Equal(new RepeatedPiecesStream(fits).Total, output.Written);
        Assert.EndsWith(CapTrailer, output.Tail, StringComparison.Ordinal);
    }

    /// <summary>
    /// psql holds a block comment between statements with the next statement, and a comment line whole: more than
    /// 64 MiB of comments and blank lines between two statements is refused too.
    /// </summary>
    [Theory]
    [InlineData("/* ", " */\n")]
    [InlineData("-- ", "\n")]
    public void Refuses_more_than_64_MiB_of_comments_between_statements(string open, string close)
    {
        var (_, refusal) = DumpFilterRunner.RunGenerated(NewFilter(), (CapHead, 1), ("CREATE TABLE public.t (id integer);\n", 1), (open, 1),
            ("x", Cap), (close, 1), ("CREATE TABLE public.u (id integer);\n", 1), (CapTrailer, 1));
        Assert.NotNull(refusal);
        Assert.Equal("line 8: more than 64 MiB of comments and blank lines between two statements; refused", refusal.Message);
    }

    /// <summary>
    /// What may be large stays unlimited: COPY data (psql streams it; many lines or one line of 100 MiB, with
    /// statements before and after), a large object as pg_dump writes it (many lowrite() calls, 96 MiB in all),
    /// and an INSERT of pg_dump --inserts below 64 MiB.
    /// </summary>
    [Theory]
    [InlineData("copy lines")]
    [InlineData("copy line")]
    [InlineData("large object")]
    [InlineData("insert")]
    public void Passes_large_copy_data_large_objects_and_rows_under_the_cap(string what)
    {
        var pieces = new List<(string, long)> { (CapHead, 1), ("CREATE TABLE public.t (id integer, v text);\n\n", 1) };
        switch (what)
        {
            case "copy lines":
                pieces.AddRange([("COPY public.t (id, v) FROM stdin;\n", 1), ("1\t" + new string('x', 1021) + "\n", 100 * 1024), ("\\.\n", 1)]);
                break;
            case "copy line":
                pieces.AddRange([("COPY public.t (id, v) FROM stdin;\n1\t", 1), ("x", 100L * 1024 * 1024), ("\n\\.\n", 1)]);
                break;
            case "large object":
                pieces.AddRange([("BEGIN;\nSELECT pg_catalog.lo_open('16385', 131072);\n", 1),
                    ("SELECT pg_catalog.lowrite(0, '\\x" + new string('4', 32 * 1024) + "');\n", 3 * 1024),
                    ("SELECT pg_catalog.lo_close(0);\nCOMMIT;\n", 1)]);
                break;
            default:
                pieces.AddRange([("INSERT INTO public.t VALUES (1, '", 1), ("x", Cap - 1024), ("');\n", 1)]);
                break;
        }

        pieces.AddRange([("\nCREATE TABLE public.u (id integer);\n", 1), (CapTrailer, 1)]);
        var (output, refusal) = DumpFilterRunner.RunGenerated(NewFilter(), [.. pieces]);
        Assert.Null(refusal);
        Assert.Equal(new RepeatedPiecesStream([.. pieces]).Total, output.Written);
        Assert.EndsWith(CapTrailer, output.Tail, StringComparison.Ordinal);
    }
}
