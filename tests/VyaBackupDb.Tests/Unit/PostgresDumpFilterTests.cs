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
        { "ALTER DATABASE dns_db OWNER TO postgres;", $"ALTER DATABASE {QuotedTarget} OWNER TO postgres;", "dns_db", 0 },
        { "ALTER DATABASE \"DNS db\" SET search_path TO public;", $"ALTER DATABASE {QuotedTarget} SET search_path TO public;", "DNS db", 0 },
        { "ALTER DATABASE dns_db IS_TEMPLATE = true;", $"ALTER DATABASE {QuotedTarget} IS_TEMPLATE = true;", "dns_db", 0 },
        { "COMMENT ON DATABASE dns_db IS 'DNS; records';", $"COMMENT ON DATABASE {QuotedTarget} IS 'DNS; records';", "dns_db", 0 },
        { "GRANT CONNECT,TEMPORARY ON DATABASE dns_db TO app;", $"GRANT CONNECT,TEMPORARY ON DATABASE {QuotedTarget} TO app;", "dns_db", 0 },
        { "REVOKE ALL ON DATABASE dns_db FROM PUBLIC;", $"REVOKE ALL ON DATABASE {QuotedTarget} FROM PUBLIC;", "dns_db", 0 },
        {
            "SECURITY LABEL FOR selinux ON DATABASE dns_db IS 'system_u:object_r:sepgsql_db_t:s0';",
            $"SECURITY LABEL FOR selinux ON DATABASE {QuotedTarget} IS 'system_u:object_r:sepgsql_db_t:s0';", "dns_db", 0
        },
        { "ALTER ROLE app IN DATABASE dns_db SET work_mem TO '64MB';", $"ALTER ROLE app IN DATABASE {QuotedTarget} SET work_mem TO '64MB';", "dns_db", 0 },
        { "ALTER ROLE app SET work_mem TO '64MB';", "ALTER ROLE app SET work_mem TO '64MB';", null, 0 },
        { "GRANT SELECT (a, b) ON TABLE public.t TO app;", "GRANT SELECT (a, b) ON TABLE public.t TO app;", null, 0 },
        { "GRANT app TO bob;", "GRANT app TO bob;", null, 0 },
        { "COMMENT ON TABLE public.t IS 'ALTER DATABASE x';", "COMMENT ON TABLE public.t IS 'ALTER DATABASE x';", null, 0 },
        { "\\connect dns_db\n", "\n", "dns_db", 1 },
        { "\\connect -reuse-previous=on \"dbname='dns db'\"\n", "\n", "dns db", 1 },
        { "\\connect -reuse-previous=on \"dbname='it\\'s' host=x\"\n", "\n", "it's", 1 },
        { "\\c \"Dns\"\"Db\"\nSELECT 1;\n", "\nSELECT 1;\n", "Dns\"Db", 1 },
        { "\\connect postgresql://localhost:5432/dns%20db?sslmode=disable\n", "\n", "dns db", 1 },
        { "\\connect\n", "\n", null, 1 },
        { "\\restrict Xr4nd0mK3y\n\\unrestrict Xr4nd0mK3y\n", "\\restrict Xr4nd0mK3y\n\\unrestrict Xr4nd0mK3y\n", null, 0 },
        { "\\set ON_ERROR_STOP on\n\\echo 'DROP DATABASE x;'", "\\set ON_ERROR_STOP on\n\\echo 'DROP DATABASE x;'", null, 0 },
        { "SET transaction_timeout = 0;\nSET statement_timeout = 0;\n", "\nSET statement_timeout = 0;\n", null, 1 },
        { "SET transaction_timeout TO 0;", "", null, 1 },
        { "SET SESSION transaction_timeout = 0;", "", null, 1 },
        { "SET \"transaction_timeout\" = 0;", "", null, 1 },
        { "SET Transaction_Timeout = DEFAULT;", "", null, 1 },
        { "SELECT pg_catalog.set_config('transaction_timeout', '0', false);", "", null, 1 },
        { "SELECT pg_catalog.set_config('search_path', '', false);", "SELECT pg_catalog.set_config('search_path', '', false);", null, 0 },
        { "SET search_path = public, pg_catalog;", "SET search_path = public, pg_catalog;", null, 0 },
        { "SET SESSION AUTHORIZATION 'transaction_timeout';", "SET SESSION AUTHORIZATION 'transaction_timeout';", null, 0 },
        { "SELECT 'DROP DATABASE dns_db;';", "SELECT 'DROP DATABASE dns_db;';", null, 0 },
        { "SELECT $$;DROP DATABASE x;$$;", "SELECT $$;DROP DATABASE x;$$;", null, 0 },
        { "SELECT $a$ $$ ; ' $a$;DROP DATABASE y;", "SELECT $a$ $$ ; ' $a$;", "y", 1 },
        { "SELECT $$a$$$$b;$$;DROP DATABASE y;", "SELECT $$a$$$$b;$$;", "y", 1 },
        { "SELECT a$$b FROM t;DROP DATABASE y;", "SELECT a$$b FROM t;", "y", 1 },
        { "PREPARE p AS SELECT $1;\nDROP DATABASE y;", "PREPARE p AS SELECT $1;\n", "y", 1 },
        { "SELECT E'it\\'s; DROP DATABASE x;';\nDROP DATABASE y;\n", "SELECT E'it\\'s; DROP DATABASE x;';\n\n", "y", 1 },
        { "SELECT e'\\\\';DROP DATABASE y;", "SELECT e'\\\\';", "y", 1 },
        { "SELECT 1, E'it\\'s; DROP DATABASE x;', 2;\nDROP DATABASE y;", "SELECT 1, E'it\\'s; DROP DATABASE x;', 2;\n", "y", 1 },
        { "SELECT 1, xe'a\\';DROP DATABASE y;", "SELECT 1, xe'a\\';", "y", 1 },
        { "SELECT 'C:\\';DROP DATABASE y;", "SELECT 'C:\\';", "y", 1 },
        { "SELECT 'it''s; x';DROP DATABASE y;", "SELECT 'it''s; x';", "y", 1 },
        { "SELECT \"a\"\";b\";DROP DATABASE y;", "SELECT \"a\"\";b\";", "y", 1 },
        { "/* nested /* comment; */ still; */ SELECT 1;", "/* nested /* comment; */ still; */ SELECT 1;", null, 0 },
        { "SELECT 1 /* a /* b */ ; */ ;DROP DATABASE y;", "SELECT 1 /* a /* b */ ; */ ;", "y", 1 },
        { "-- DROP DATABASE dns_db;\nSELECT 1 --;\n;DROP DATABASE y;", "-- DROP DATABASE dns_db;\nSELECT 1 --;\n;", "y", 1 },
        { "SELECT f('a', (SELECT 1; DROP DATABASE x));", "SELECT f('a', (SELECT 1; DROP DATABASE x));", null, 0 },
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
        {
            "COPY public.t (a, b) FROM stdin;\n\\connect dns_db\nDROP DATABASE dns_db;\t'\n\\.x\n$$ /* \" ;\n\\.\nDROP DATABASE y;\n",
            "COPY public.t (a, b) FROM stdin;\n\\connect dns_db\nDROP DATABASE dns_db;\t'\n\\.x\n$$ /* \" ;\n\\.\n\n", "y", 1
        },
        { "COPY t FROM STDIN ;  \r\nDROP DATABASE x;\r\n\\.\r\nDROP DATABASE y;", "COPY t FROM STDIN ;  \r\nDROP DATABASE x;\r\n\\.\r\n", "y", 1 },
        { "COPY t FROM stdin; -- data follows\nDROP DATABASE x;\n\\.", "COPY t FROM stdin; -- data follows\nDROP DATABASE x;\n\\.", null, 0 },
        { "COPY (SELECT 1 FROM stdin) TO stdout;DROP DATABASE y;", "COPY (SELECT 1 FROM stdin) TO stdout;", "y", 1 },
        { "COPY t FROM '/tmp/x';DROP DATABASE y;", "COPY t FROM '/tmp/x';", "y", 1 },
        { "SELECT 1 \\gset\nDROP DATABASE y;", "SELECT 1 \\gset\n", "y", 1 },
        { "SELECT 1\n\\connect dns_db\n;", "SELECT 1\n\n;", "dns_db", 1 },
        { "SET standard_conforming_strings = off;\nSELECT 'it\\'s; DROP DATABASE x;';\nSET standard_conforming_strings = on;\nSELECT 'C:\\';\nDROP DATABASE y;",
            "SET standard_conforming_strings = off;\nSELECT 'it\\'s; DROP DATABASE x;';\nSET standard_conforming_strings = on;\nSELECT 'C:\\';\n", "y", 1 },
        { "SET standard_conforming_strings = off;\nSELECT 1, 'it\\'s; DROP DATABASE x;';\nSET standard_conforming_strings = on;\nSELECT 1, 'C:\\';\nDROP DATABASE y;",
            "SET standard_conforming_strings = off;\nSELECT 1, 'it\\'s; DROP DATABASE x;';\nSET standard_conforming_strings = on;\nSELECT 1, 'C:\\';\n", "y", 1 },
        { "SET standard_conforming_strings TO 'off';\nSELECT 'a\\'';\nRESET ALL;\nSELECT 'b\\';DROP DATABASE y;",
            "SET standard_conforming_strings TO 'off';\nSELECT 'a\\'';\nRESET ALL;\nSELECT 'b\\';", "y", 1 },
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
            var filter = new PostgresDumpFilter("we\"ird ; db", KnownOnPostgres17);
            var output = DumpFilterRunner.Run(filter.CopyAsync, Utf8("ALTER DATABASE dns_db OWNER TO x;"), pattern);
            Assert.Equal("ALTER DATABASE \"we\"\"ird ; db\" OWNER TO x;", Encoding.UTF8.GetString(output));
        }
    }

    [Fact]
    public void Filters_a_pg_dump_clean_create_if_exists_dump_for_postgres_15()
    {
        var (input, expected) = Join(PgDumpParts(transactionTimeoutKnown: false));
        AssertFilters(input, expected, KnownOnPostgres15, "dns_db", 5);
    }

    [Fact]
    public void Keeps_set_transaction_timeout_when_the_target_knows_it()
    {
        var (input, expected) = Join(PgDumpParts(transactionTimeoutKnown: true));
        AssertFilters(input, expected, KnownOnPostgres17, "dns_db", 3);
    }

    [Fact]
    public void Passes_all_256_byte_values_in_copy_data_and_strings_byte_for_byte()
    {
        var data = new List<byte>(Utf8("COPY public.blobs (id, data) FROM stdin;\n1\t"));
        for (var b = 0; b < 256; b++)
        {
            if (b != '\n')
            {
                data.Add((byte)b);
            }
        }

        data.AddRange(Utf8("\n\\connect dns_db\n\\.\nSELECT '"));
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

    [Theory]
    [InlineData("\\connect dns_db \\\\ SELECT 1;\n")]
    [InlineData("\\echo x \\\\ DROP DATABASE dns_db;\n")]
    [InlineData("\\echo x \\connect dns_db\n")]
    [InlineData("COPY t FROM stdin; SELECT 1;\n1\n\\.\n")]
    public void Refuses_psql_constructs_it_cannot_filter_safely(string input)
    {
        var filter = new PostgresDumpFilter(Target, KnownOnPostgres15);
        Assert.Throws<DumpFilterException>(() => DumpFilterRunner.Run(filter.CopyAsync, Utf8(input), [1]));
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
            "CREATE FUNCTION f() BEGIN ATOMIC ", "BEGIN", "END", "CASE", "\0", "\u00ff",
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
            var whole = DumpFilterRunner.Outcome(new PostgresDumpFilter(Target, KnownOnPostgres15).CopyAsync, input, [input.Length + 1]);
            foreach (var pattern in new[] { new[] { 1 }, [2], [3], [5], [1, 2, 3, 7] })
            {
                Assert.Equal(whole, DumpFilterRunner.Outcome(new PostgresDumpFilter(Target, KnownOnPostgres15).CopyAsync, input, pattern));
            }
        }
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
            Rewrite("ALTER DATABASE dns_db OWNER TO postgres;", $"ALTER DATABASE {QuotedTarget} OWNER TO postgres;"),
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
}
