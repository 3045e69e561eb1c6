using System.Text;
using VyaBackupDb.Engines.MySql;
using VyaBackupDb.Engines.Postgres;

namespace VyaBackupDb.Tests.Unit;

/// <summary>
/// The counters that read row counts off the dump stream: every statement shape the dump tools
/// write, quotes and escapes that look like the end of a row, bodies that look like data, and
/// every split of the stream into writes.
/// </summary>
public sealed class RowCounterTests
{
    private const string MySqlDump = """
        /*M!999999\- enable the sandbox mode */
        -- MariaDB dump 10.19  Distrib 10.11.19-MariaDB, for debian-linux-gnu (x86_64)
        /*!40101 SET NAMES utf8mb4 */;

        --
        -- Sequence structure for `sq`
        --

        DROP SEQUENCE IF EXISTS `sq`;
        CREATE SEQUENCE `sq` start with 100 minvalue 1 maxvalue 9223372036854775806 increment by 1 cache 1000 nocycle ENGINE=InnoDB;
        DO SETVAL(`sq`, 1100, 0);
        SELECT SETVAL(`old``seq`, -5, 0);

        --
        -- Table structure for table `empty`
        --

        CREATE TABLE `empty` (
          `id` int(11) DEFAULT NULL
        ) ENGINE=InnoDB;

        LOCK TABLES `empty` WRITE;
        /*!40000 ALTER TABLE `empty` DISABLE KEYS */;
        /*!40000 ALTER TABLE `empty` ENABLE KEYS */;
        UNLOCK TABLES;
        CREATE TABLE `we``ird 'tab"le
        x` (
          `col umn` int(11) NOT NULL
        );
        INSERT INTO `we``ird 'tab"le
        x` VALUES (1,'a`b'),(2,NULL),(3,'x"y\'z');
        CREATE TABLE `t` (`id` int);
        INSERT INTO `t` VALUES (1,'),(;\'\\'),(2,'it''s'),(3,0x2829),(4,'\\'),(5,'(')
        ;
        INSERT INTO `t` VALUES
        (6,'a\nb'),
        (7,'-- Dump completed'),
        (8,'
        INSERT INTO `t` VALUES (99);
        ');
        INSERT INTO `v` (`id`, `a)``b`, row_start, row_end) VALUES (1,'a','2026-11-26 17:23:47.775528','2026-11-26 17:23:47.779606'),
        (1,'c','2026-11-26 17:23:47.779606','2038-01-19 03:14:07.999999');
        DELIMITER ;;
        /*!50003 CREATE*/ /*!50003 TRIGGER trg AFTER INSERT ON `t` FOR EACH ROW
        BEGIN
        INSERT INTO `t` VALUES (100),(101);
        CREATE TABLE `not_a_table` (id int);
        END */;;
        DELIMITER ;
        INSERT INTO `t` VALUES (9);
        -- Dump completed on 2026-11-26 17:23:55

        """;

    [Fact]
    public void MySql_counts_tuples_per_table_tables_without_rows_and_sequence_values()
    {
        var (rows, sequences) = CountMySql(Encoding.UTF8.GetBytes(MySqlDump), [int.MaxValue]);

        Assert.Equal(
            new Dictionary<string, long> { ["empty"] = 0, ["we`ird 'tab\"le\nx"] = 3, ["t"] = 9, ["v"] = 2 },
            rows.ToDictionary());
        Assert.Equal(new Dictionary<string, long> { ["sq"] = 1100, ["old`seq"] = -5 }, sequences.ToDictionary());
    }

    [Fact]
    public void MySql_counts_the_same_whatever_the_writes_are_cut_into()
    {
        var bytes = Encoding.UTF8.GetBytes(MySqlDump);
        var whole = CountMySql(bytes, [int.MaxValue]);
        foreach (var size in new[] { 1, 2, 3, 5, 7, 13, 64 })
        {
            var cut = CountMySql(bytes, [size]);
            Assert.Equal(whole.Rows.ToDictionary(), cut.Rows.ToDictionary());
            Assert.Equal(whole.Sequences.ToDictionary(), cut.Sequences.ToDictionary());
        }
        // Every single cut point, in two writes.
        for (var at = 1; at < bytes.Length; at++)
        {
            Assert.Equal(whole.Rows.ToDictionary(), CountMySql(bytes, [at, int.MaxValue]).Rows.ToDictionary());
        }
    }

    private const string PgDump = """
        --
        -- PostgreSQL database dump
        --

        CREATE FUNCTION "public"."f"() RETURNS "text"
            LANGUAGE "sql"
            AS $$
        COPY "public"."t" FROM stdin
        $$;

        COPY "public"."t" ("id", "v") FROM stdin;
        1	a
        2	\\.
        3	\N
        \.

        COPY "public"."empty" ("id") FROM stdin;
        \.

        COPY "we""ird.sch
        ema"."ta ble" ("a""b", "c
        d") FROM stdin;
        1	x
        \.

        COPY public.plain (id) FROM stdin;
        1
        2
        \.

        COPY "public"."t" ("id", "v") FROM stdin;
        4	b
        \.

        SELECT pg_catalog.setval('public.sq', 5400, true);
        SELECT pg_catalog.setval('"we""ird"."it''s
         seq"', -7, true);
        SELECT pg_catalog.setval('public.fresh', 1, false);
        SELECT pg_catalog.setval('public.sq', 1, true) -- not pg_dump's line

        --
        -- PostgreSQL database dump complete
        --

        """;

    [Fact]
    public void Postgres_counts_copy_lines_per_table_and_empty_tables()
    {
        Assert.Equal(
            new Dictionary<(string, string), long>
            {
                [("public", "t")] = 4,
                [("public", "empty")] = 0,
                [("we\"ird.sch\nema", "ta ble")] = 1,
                [("public", "plain")] = 2,
            },
            CountPostgres(Encoding.UTF8.GetBytes(PgDump), [int.MaxValue]).Rows.ToDictionary());
    }

    [Fact]
    public void Postgres_reads_each_sequence_as_the_dumps_setval_leaves_it()
    {
        // pg_sequences.last_value after the restore: 0 (null there) for one set as never called.
        var expected = new Dictionary<(string, string), long>
        {
            [("public", "sq")] = 5400,
            [("we\"ird", "it's\n seq")] = -7,
            [("public", "fresh")] = 0,
        };
        var bytes = Encoding.UTF8.GetBytes(PgDump);
        Assert.Equal(expected, CountPostgres(bytes, [int.MaxValue]).Sequences.ToDictionary());
        for (var at = 1; at < bytes.Length; at++)
        {
            Assert.Equal(expected, CountPostgres(bytes, [at, 1]).Sequences.ToDictionary());
        }
    }

    [Fact]
    public void Postgres_counts_the_same_whatever_the_writes_are_cut_into()
    {
        var bytes = Encoding.UTF8.GetBytes(PgDump);
        var whole = CountPostgres(bytes, [int.MaxValue]).Rows.ToDictionary();
        foreach (var size in new[] { 1, 2, 3, 4, 5, 7, 64 })
        {
            Assert.Equal(whole, CountPostgres(bytes, [size]).Rows.ToDictionary());
        }
        for (var at = 1; at < bytes.Length; at++)
        {
            Assert.Equal(whole, CountPostgres(bytes, [at, int.MaxValue]).Rows.ToDictionary());
        }
    }

    private static (IReadOnlyDictionary<string, long> Rows, IReadOnlyDictionary<string, long> Sequences) CountMySql(byte[] dump, int[] sizes)
    {
        using var sink = new MemoryStream();
        using var counter = new MySqlRowCounter(sink);
        Feed(counter, dump, sizes);
        Assert.Equal(dump, sink.ToArray());
        return (counter.Rows, counter.Sequences);
    }

    private static (IReadOnlyDictionary<(string Schema, string Table), long> Rows, IReadOnlyDictionary<(string Schema, string Sequence), long> Sequences)
        CountPostgres(byte[] dump, int[] sizes)
    {
        using var sink = new MemoryStream();
        using var counter = new PostgresRowCounter(sink);
        Feed(counter, dump, sizes);
        Assert.Equal(dump, sink.ToArray());
        return (counter.Rows, counter.Sequences);
    }

    /// <summary>Writes <paramref name="dump"/> in pieces of the given sizes (the last size repeats).</summary>
    private static void Feed(Stream counter, byte[] dump, int[] sizes)
    {
        var at = 0;
        for (var n = 0; at < dump.Length; n++)
        {
            var size = Math.Min(sizes[Math.Min(n, sizes.Length - 1)], dump.Length - at);
            counter.Write(dump, at, size);
            at += size;
        }
    }
}
