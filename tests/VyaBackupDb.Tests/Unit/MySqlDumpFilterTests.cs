using System.Text;
using System.Text.RegularExpressions;
using VyaBackupDb.Engines;
using VyaBackupDb.Engines.MySql;
using VyaBackupDb.Errors;
using static VyaBackupDb.Tests.Unit.DumpPart;

namespace VyaBackupDb.Tests.Unit;

public sealed class MySqlDumpFilterTests
{
    private const string Target = "dns_db_restored";

    /// <summary>Input, expected output, expected source database, expected dropped statement count.</summary>
    public static TheoryData<string, string, string?, int> Statements => new()
    {
        { "USE dns_db;\n", "\n", "dns_db", 1 },
        { "use `dns``db`;", "", "dns`db", 1 },
        { "USE `dns_db`", "", "dns_db", 1 },
        { "/*!40000 DROP DATABASE IF EXISTS `dns_db`*/;\nINSERT INTO t VALUES (1);\n", "\nINSERT INTO t VALUES (1);\n", "dns_db", 1 },
        { "DROP SCHEMA dns_db;", "", "dns_db", 1 },
        { "Create Schema If Not Exists dns_db;", "", "dns_db", 1 },
        { "CREATE OR REPLACE DATABASE `dns_db` CHARACTER SET utf8mb4;", "", "dns_db", 1 },
        {
            "CREATE DATABASE /*!32312 IF NOT EXISTS*/ `dns_db` /*!40100 DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_0900_ai_ci */ /*!80016 DEFAULT ENCRYPTION='N' */;\n",
            "\n", "dns_db", 1
        },
        {
            "DROP DATABASE IF EXISTS `dns_db`; CREATE DATABASE `dns_db`; USE `dns_db`; INSERT INTO t VALUES (1);",
            "   INSERT INTO t VALUES (1);", "dns_db", 3
        },
        {
            "/*!40101 ALTER DATABASE `dns_db` CHARACTER SET latin1 COLLATE latin1_swedish_ci */;\n",
            $"/*!40101 ALTER DATABASE `{Target}` CHARACTER SET latin1 COLLATE latin1_swedish_ci */;\n", "dns_db", 0
        },
        {
            "ALTER DATABASE dns_db CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci ;;",
            $"ALTER DATABASE `{Target}` CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci ;;", "dns_db", 0
        },
        {
            "ALTER /* c */ SCHEMA\n`dns_db` UPGRADE DATA DIRECTORY NAME;",
            $"ALTER /* c */ SCHEMA\n`{Target}` UPGRADE DATA DIRECTORY NAME;", "dns_db", 0
        },
        { "USE \"dns_db\";", "", "dns_db", 1 },
        { "ALTER DATABASE \"dns_db\" CHARACTER SET utf8mb4;", $"ALTER DATABASE `{Target}` CHARACTER SET utf8mb4;", "dns_db", 0 },
        { "ALTER DATABASE CHARACTER SET utf8mb4;", "ALTER DATABASE CHARACTER SET utf8mb4;", null, 0 },
        { "ALTER SCHEMA DEFAULT COLLATE utf8mb4_bin;", "ALTER SCHEMA DEFAULT COLLATE utf8mb4_bin;", null, 0 },
        { "ALTER TABLE `dns_db` DISABLE KEYS;", "ALTER TABLE `dns_db` DISABLE KEYS;", null, 0 },
        { "DROP TABLE IF EXISTS `USE`;", "DROP TABLE IF EXISTS `USE`;", null, 0 },
        { "INSERT INTO t VALUES ('USE `dns_db`;');\n", "INSERT INTO t VALUES ('USE `dns_db`;');\n", null, 0 },
        { "INSERT INTO t VALUES ('a\\';USE x;');USE y;", "INSERT INTO t VALUES ('a\\';USE x;');", "y", 1 },
        { "INSERT INTO t VALUES (\"a\\\";USE x;\");USE y;", "INSERT INTO t VALUES (\"a\\\";USE x;\");", "y", 1 },
        { "INSERT INTO t VALUES ('a'';USE x;');USE y;", "INSERT INTO t VALUES ('a'';USE x;');", "y", 1 },
        { "INSERT INTO `a``;USE x;` VALUES (1);USE y;", "INSERT INTO `a``;USE x;` VALUES (1);", "y", 1 },
        { "-- USE dns_db;\n# DROP DATABASE x;\n/* CREATE DATABASE y; */\n", "-- USE dns_db;\n# DROP DATABASE x;\n/* CREATE DATABASE y; */\n", null, 0 },
        { "INSERT INTO t VALUES (1) -- ; USE x;\n;USE y;", "INSERT INTO t VALUES (1) -- ; USE x;\n;", "y", 1 },
        { "INSERT INTO t VALUES (1) # ; USE x;\n;USE y;", "INSERT INTO t VALUES (1) # ; USE x;\n;", "y", 1 },
        { "INSERT INTO t VALUES (1) /* ; USE x; */;USE y;", "INSERT INTO t VALUES (1) /* ; USE x; */;", "y", 1 },
        { "INSERT /*+ MAX_EXECUTION_TIME(1000) ; */ INTO t VALUES (1);USE y;", "INSERT /*+ MAX_EXECUTION_TIME(1000) ; */ INTO t VALUES (1);", "y", 1 },
        { "INSERT INTO t VALUES (1--1);USE y;", "INSERT INTO t VALUES (1--1);", "y", 1 },
        { "DELIMITER ;;\nUSE dns_db;;\nDELIMITER ;\n", "DELIMITER ;;\n\nDELIMITER ;\n", "dns_db", 1 },
        { "delimiter //\nUSE dns_db; INSERT INTO t VALUES (1)//\nDELIMITER ;\nINSERT INTO t VALUES (2);", "delimiter //\n\nDELIMITER ;\nINSERT INTO t VALUES (2);", "dns_db", 1 },
        {
            "DELIMITER //\nCREATE PROCEDURE p() BEGIN SELECT 1; USE x; END//\nDELIMITER ;\nUSE dns_db;\n",
            "DELIMITER //\nCREATE PROCEDURE p() BEGIN SELECT 1; USE x; END//\nDELIMITER ;\n\n", "dns_db", 1
        },
        { "DELIMITER\nUSE dns_db;", "DELIMITER\n", "dns_db", 1 },
        { "/*M!999999\\- enable the sandbox mode */ \nCREATE DATABASE `dns_db`;\n", "/*M!999999\\- enable the sandbox mode */ \n\n", "dns_db", 1 },
        { "/*M!100101 DROP DATABASE `dns_db` */;", "", "dns_db", 1 },
        { "SET @x = 'CREATE DATABASE y';", "SET @x = 'CREATE DATABASE y';", null, 0 },
        { "  \n\t USE x ; ", "  \n\t  ", "x", 1 },
        { "USE 🦀db;", "", "🦀db", 1 },
        { "CHANGE MASTER TO MASTER_LOG_FILE='b.000001', MASTER_LOG_POS=4;\n", "\n", null, 1 },
        { "CHANGE REPLICATION SOURCE TO SOURCE_LOG_FILE='b.000001', SOURCE_LOG_POS=4;", "", null, 1 },
        { "STOP SLAVE;START SLAVE;", "", null, 2 },
        { "SET GLOBAL gtid_slave_pos='0-1-2';", "", null, 1 },
        { "SET @@GLOBAL.GTID_PURGED=/*!80000 '+'*/ 'f3a1:1-5';", "", null, 1 },
        { "", "", null, 0 },
    };

    [Theory]
    [MemberData(nameof(Statements))]
    public void Filters_statements(string input, string expected, string? source, int dropped)
    {
        AssertFilters(Utf8(input), Utf8(expected), Target, source, dropped);
    }

    [Fact]
    public void Rewrites_alter_database_with_target_quoted_by_backticks()
    {
        AssertFilters(
            Utf8("ALTER DATABASE `dns_db` COMMENT 'x';"),
            Utf8("ALTER DATABASE `we``ird ; db` COMMENT 'x';"),
            "we`ird ; db", "dns_db", 0);
    }

    [Fact]
    public void Filters_a_mysqldump_databases_add_drop_database_dump()
    {
        var (input, expected) = Join(MysqldumpParts());
        AssertFilters(input, expected, Target, "dns_db", 5);
    }

    [Fact]
    public void Filters_a_mariadb_dump()
    {
        var (input, expected) = Join(
        [
            Keep("""
                /*M!999999\- enable the sandbox mode */ 
                -- MariaDB dump 10.19-11.4.5-MariaDB, for debian-linux-gnu (x86_64)
                --
                -- Host: localhost    Database: dns_db
                -- ------------------------------------------------------
                -- Server version	11.4.5-MariaDB-deb12

                /*!40101 SET @OLD_CHARACTER_SET_CLIENT=@@CHARACTER_SET_CLIENT */;
                /*!40101 SET @OLD_CHARACTER_SET_RESULTS=@@CHARACTER_SET_RESULTS */;
                /*!40101 SET @OLD_COLLATION_CONNECTION=@@COLLATION_CONNECTION */;
                /*!40101 SET NAMES utf8mb4 */;
                /*!40103 SET @OLD_TIME_ZONE=@@TIME_ZONE */;
                /*!40103 SET TIME_ZONE='+00:00' */;
                /*!40014 SET @OLD_UNIQUE_CHECKS=@@UNIQUE_CHECKS, UNIQUE_CHECKS=0 */;
                /*!40014 SET @OLD_FOREIGN_KEY_CHECKS=@@FOREIGN_KEY_CHECKS, FOREIGN_KEY_CHECKS=0 */;
                /*!40101 SET @OLD_SQL_MODE=@@SQL_MODE, SQL_MODE='NO_AUTO_VALUE_ON_ZERO' */;
                /*M!100616 SET @OLD_NOTE_VERBOSITY=@@NOTE_VERBOSITY, NOTE_VERBOSITY=0 */;

                --
                -- Current Database: `dns_db`
                --


                """),
            Drop("/*!40000 DROP DATABASE IF EXISTS `dns_db`*/;"),
            Keep("\n\n"),
            Drop("CREATE DATABASE /*!32312 IF NOT EXISTS*/ `dns_db` /*!40100 DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_uca1400_ai_ci */;"),
            Keep("\n\n"),
            Drop("USE `dns_db`;"),
            Keep("""


                --
                -- Table structure for table `zone`
                --

                DROP TABLE IF EXISTS `zone`;
                /*!40101 SET @saved_cs_client     = @@character_set_client */;
                /*!40101 SET character_set_client = utf8mb4 */;
                CREATE TABLE `zone` (
                  `id` int(11) NOT NULL AUTO_INCREMENT,
                  `name` varchar(255) NOT NULL,
                  PRIMARY KEY (`id`)
                ) ENGINE=InnoDB AUTO_INCREMENT=3 DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_uca1400_ai_ci;
                /*!40101 SET character_set_client = @saved_cs_client */;

                --
                -- Dumping data for table `zone`
                --

                
                """),
            Drop("LOCK TABLES `zone` WRITE;"),
            Keep("""
                
                /*!40000 ALTER TABLE `zone` DISABLE KEYS */;
                INSERT INTO `zone` VALUES
                (1,'example.org; USE `dns_db`;'),
                (2,'-- /* \' \" \\ */ DROP DATABASE `dns_db`;');
                /*!40000 ALTER TABLE `zone` ENABLE KEYS */;
                
                """),
            Drop("UNLOCK TABLES;"),
            Keep("""
                
                commit;
                /*M!100616 SET NOTE_VERBOSITY=@OLD_NOTE_VERBOSITY */;

                -- Dump completed on 2025-03-01 12:00:00

                """),
        ]);
        AssertFilters(input, expected, Target, "dns_db", 5);
    }

    [Fact]
    public void Passes_all_256_byte_values_inside_strings_byte_for_byte()
    {
        static List<byte> Raw(char quote)
        {
            var raw = new List<byte>();
            for (var b = 0; b < 256; b++)
            {
                if (b == quote || b == '\\')
                {
                    raw.Add((byte)'\\');
                }

                raw.Add((byte)b);
            }

            return raw;
        }

        var insert = new List<byte>(Utf8("INSERT INTO `blobs` VALUES (1,'"));
        insert.AddRange(Raw('\''));
        insert.AddRange(Utf8("'),(2,\""));
        insert.AddRange(Raw('"'));
        insert.AddRange(Utf8("\"),(3,_binary '"));
        insert.AddRange(Raw('\''));
        insert.AddRange(Raw('\''));
        insert.AddRange(Utf8("');"));
        var comment = new List<byte>(Utf8("/* "));
        for (var b = 0; b < 256; b++)
        {
            if (b != '*')
            {
                comment.Add((byte)b);
            }
        }

        comment.AddRange(Utf8(" */"));
        var (input, expected) = Join(
        [
            Keep(insert.ToArray()),
            Keep("\n"),
            Drop("USE `dns_db`;"),
            Keep("\n"),
            Keep(comment.ToArray()),
            Keep("\n"),
            Keep(insert.ToArray()),
            Drop("DROP DATABASE `dns_db`;"),
        ]);
        AssertFilters(input, expected, Target, "dns_db", 2);
    }

    [Fact]
    public void Follows_no_backslash_escapes_set_around_routines()
    {
        // Under NO_BACKSLASH_ESCAPES, 'C:\' is a whole string; misreading it would hide the USE.
        var (input, expected) = Join(
        [
            Keep("""
                /*!40101 SET @OLD_SQL_MODE=@@SQL_MODE, SQL_MODE='NO_AUTO_VALUE_ON_ZERO' */;
                /*!50003 SET @saved_sql_mode       = @@sql_mode */ ;
                /*!50003 SET sql_mode              = 'NO_BACKSLASH_ESCAPES,STRICT_TRANS_TABLES' */ ;
                DELIMITER ;;
                CREATE DEFINER=`root`@`localhost` PROCEDURE `p2`()
                BEGIN
                  SELECT 'C:\';
                  SELECT "D:\";
                END ;;
                DELIMITER ;
                /*!50003 SET sql_mode              = @saved_sql_mode */ ;

                """),
            Drop("USE `dns_db`;"),
            Keep("\nINSERT INTO t VALUES ('it\\'s; USE x;');\n"),
            Keep("/*!40101 SET SQL_MODE=@OLD_SQL_MODE */;\n"),
            Drop("USE `dns_db`;"),
            Keep("\n"),
        ]);
        AssertFilters(input, expected, Target, "dns_db", 2);
    }

    [Fact]
    public void Throws_for_a_dump_of_two_databases()
    {
        var input = Utf8("""
            CREATE DATABASE /*!32312 IF NOT EXISTS*/ `a` /*!40100 DEFAULT CHARACTER SET utf8mb4 */;

            USE `a`;
            CREATE TABLE t (x int);

            CREATE DATABASE /*!32312 IF NOT EXISTS*/ `b` /*!40100 DEFAULT CHARACTER SET utf8mb4 */;

            USE `b`;

            """);
        foreach (var pattern in DumpFilterRunner.ReadPatterns(input.Length))
        {
            var filter = new MySqlDumpFilter(Target);
            var e = Assert.Throws<DumpFilterException>(() => DumpFilterRunner.Run(filter.CopyAsync, input, pattern));
            Assert.Equal("the dump holds more than one database (a, b); restore them one at a time", e.Message);
            Assert.Equal(ExitCode.Failed, e.ExitCode);
        }
    }

    [Theory]
    [InlineData("USE a;\nALTER DATABASE `b` CHARACTER SET utf8mb4;")]
    [InlineData("USE a;\nUSE b;")]
    [InlineData("/*!40000 DROP DATABASE IF EXISTS `a`*/;\n/*!40000 DROP DATABASE IF EXISTS `b`*/;")]
    public void Throws_when_a_later_statement_names_another_database(string input)
    {
        var filter = new MySqlDumpFilter(Target);
        var e = Assert.Throws<DumpFilterException>(() => DumpFilterRunner.Run(filter.CopyAsync, Utf8(input), [1]));
        Assert.Contains("(a, b)", e.Message, StringComparison.Ordinal);
    }

    /// <summary>
    /// A planted file: what mysqldump never writes and would reach beyond the target (other
    /// databases, accounts, server settings, files on the server, the client's charset command)
    /// refuses the file (the restore's client is then killed with its input open: nothing of the
    /// statement runs; OldFormatRestoreTests checks that on a server).
    /// </summary>
    [Theory]
    [InlineData("\\C utf8mb4\nUSE other;\n", "a client command (\\C)")]
    [InlineData("INSERT INTO t VALUES (1);\n\\C latin1\n", "a client command (\\C)")]
    [InlineData("/*M!999999\\C latin1 */\nUSE other;\n", "a client command (\\C)")]
    [InlineData("SELECT 1 \\';USE y;", "a SELECT statement other than SETVAL")]
    [InlineData("--USE dns_db;", "a statement that does not start with a keyword")]
    [InlineData("INSERT INTO other.o VALUES (99);", "an INSERT statement on a table or other object of another database (other.o")]
    [InlineData("INSERT INTO `other`.`o` VALUES (99);", "an INSERT statement on a table or other object of another database (other…")]
    [InlineData("REPLACE INTO dns_db.t VALUES (1);", "a REPLACE statement on a table or other object of another database (dns_db.t")]
    [InlineData("DROP TABLE IF EXISTS `t`, `other`.`o`;", "a DROP statement on a table or other object of another database")]
    [InlineData("CREATE TABLE other.evil (i int);", "a CREATE statement on a table or other object of another database (other.evil")]
    [InlineData("DROP FUNCTION IF EXISTS other.f;", "a DROP statement on a table or other object of another database (other.f")]
    [InlineData("ALTER TABLE t RENAME TO other.t;", "an ALTER TABLE ... RENAME statement")]
    [InlineData("PREPARE s FROM 'DROP DATABASE other'; EXECUTE s;", "a PREPARE statement")]
    [InlineData("CREATE USER evil@'%' IDENTIFIED BY 'x';", "a CREATE USER statement")]
    [InlineData("GRANT ALL ON *.* TO evil@'%';", "a GRANT statement")]
    [InlineData("SET GLOBAL max_connections = 1;", "a SET GLOBAL statement")]
    [InlineData("SET GLOBAL general_log_file = '/tmp/x';", "a SET GLOBAL statement")]
    [InlineData("SET @@global.max_connections = 1;", "a SET GLOBAL statement")]
    [InlineData("SET @a = 1, GLOBAL max_connections = 1;", "a SET GLOBAL statement")]
    [InlineData("SET PASSWORD FOR root@localhost = PASSWORD('x');", "a SET PASSWORD statement")]
    [InlineData("SET STATEMENT max_statement_time = 1 FOR DROP DATABASE other;", "a SET STATEMENT statement")]
    // The server reads a scope and its variable apart too (@@global . x, @@session/**/.x): only what mysqldump writes passes.
    [InlineData("SET @@global . max_connect_errors = 4242;", "a SET GLOBAL statement")]
    [InlineData("SET @@GLOBAL .general_log = 1;", "a SET GLOBAL statement")]
    [InlineData("SET @@global/**/.general_log_file = '/tmp/x';", "a SET GLOBAL statement")]
    [InlineData("SET @a = 1, @@global. general_log = 1;", "a SET GLOBAL statement")]
    [InlineData("SET @@SESSION .sql_mode = 'ANSI_QUOTES';\nCREATE VIEW v AS SELECT 1 AS \"a\\\";DROP TABLE other.o;DO 1 -- \";", "a SET of a variable in another form than name, @var, @@name or @@session.name")]
    [InlineData("SET @@session/**/.sql_mode = 'ANSI_QUOTES';", "a SET of a variable in another form than name, @var, @@name or @@session.name")]
    [InlineData("SET @@session . sql_mode = 'ANSI_QUOTES';", "a SET of a variable in another form than name, @var, @@name or @@session.name")]
    [InlineData("SET @@session. sql_mode = 'NO_BACKSLASH_ESCAPES';", "a SET of a variable in another form than name, @var, @@name or @@session.name")]
    [InlineData("SET @@local .sql_mode = 'ANSI';", "a SET of a variable in another form than name, @var, @@name or @@session.name")]
    [InlineData("SET @a = 1, @@session .character_set_client = 'gbk';", "a SET of a variable in another form than name, @var, @@name or @@session.name")]
    [InlineData("SET SESSION @@session.sql_mode = 'ANSI';", "a SET of a variable in another form than name, @var, @@name or @@session.name")]
    [InlineData("SET hot_cache.key_buffer_size = 1024;", "a SET of a variable in another form than name, @var, @@name or @@session.name")]
    [InlineData("SET TRANSACTION ISOLATION LEVEL READ UNCOMMITTED;", "a SET of a variable in another form than name, @var, @@name or @@session.name")]
    [InlineData("SET @a = 1, PASSWORD FOR root@localhost = '*81EEDB8F332C36DE0C01BD695EF255F904AEF934';", "a SET PASSWORD statement")]
    [InlineData("SET @a = 1, PASSWORD = '*81EEDB8F332C36DE0C01BD695EF255F904AEF934';", "a SET PASSWORD statement")]
    [InlineData("SET @a = 1, DEFAULT ROLE NONE;", "a SET DEFAULT statement")]
    [InlineData("SET @a = 1, ROLE NONE;", "a SET ROLE statement")]
    [InlineData("LOAD DATA INFILE '/etc/passwd' INTO TABLE t;", "a LOAD statement")]
    [InlineData("SELECT 1 INTO OUTFILE '/tmp/x';", "a SELECT statement other than SETVAL")]
    [InlineData("INSERT INTO t SELECT * FROM other.o;", "an INSERT that is not of VALUES")]
    [InlineData("INSERT INTO t VALUES (1, (SELECT COUNT(*) FROM other.o));", "a function call or subquery in an INSERT's rows")]
    [InlineData("INSERT INTO t VALUES (1),(load_file('/etc/passwd'));", "a name or keyword in an INSERT's rows (load_file)")]
    [InlineData("INSERT INTO t VALUES (1),(NEXT VALUE FOR other.s);", "a name or keyword in an INSERT's rows (NEXT)")]
    [InlineData("INSERT INTO t VALUES (1, @v := 'NO_BACKSLASH_ESCAPES');", "a variable in an INSERT's rows")]
    [InlineData("INSERT INTO t VALUES (1, `a`);", "a quoted name in an INSERT's rows")]
    [InlineData("INSERT INTO t VALUES (1, 10x41);", "a name or keyword in an INSERT's rows (x41)")]
    [InlineData("INSERT INTO t VALUES (0x41g);", "a name or keyword in an INSERT's rows (g)")]
    [InlineData("INSERT INTO t VALUES (1e5x);", "a name or keyword in an INSERT's rows (e5x)")]
    [InlineData("SET sql_mode = 'ANSI_QUOTES';\nINSERT INTO t VALUES (1, \"a\");", "a quoted name in an INSERT's rows")]
    [InlineData("SET sql_mode = 'ANSI';\nCREATE TABLE \"t\\\" (a int);", "a backslash in a double-quoted name under ANSI_QUOTES")]
    [InlineData("SET sql_mode = CONCAT('NO_BACKSLASH', '_ESCAPES');", "a function call or subquery in a SET statement")]
    [InlineData("SET sql_mode = @unknown;", "a SET sql_mode to a value this check cannot read")]
    [InlineData("SET @a = 'x', sql_mode = 4;", "a SET sql_mode to a value this check cannot read")]
    [InlineData("SET @x = sys_exec('touch /tmp/x');", "a function call or subquery in a SET statement")]
    [InlineData("SET sql_mode = '\\NO_BACKSLASH_ESCAPES';\nINSERT INTO t VALUES ('\\'); DROP TABLE other.o; -- ');", "a SET sql_mode to a value this check cannot read")]
    [InlineData("SET sql_mode = \"\\ANSI_QUOTES\";", "a SET sql_mode to a value this check cannot read")]
    [InlineData("SET @m = '\\NO_BACKSLASH_ESCAPES';\nSET sql_mode = @m;", "a SET sql_mode to a value this check cannot read")]
    [InlineData("SET sql_mode = _latin1'NO_BACKSLASH_ESCAPES';", "a SET sql_mode to a value this check cannot read")]
    [InlineData("SET @m = 'STRICT_ALL_TABLES';\nSET @a = @m := 'NO_BACKSLASH_ESCAPES';\nSET sql_mode = @m;", "an assignment inside a SET value")]
    // The server reads every value of a SET before it assigns any: @m and @@sql_mode as they were before it.
    [InlineData("SET @m = 'NO_BACKSLASH_ESCAPES';\nSET @m = '', sql_mode = @m;\nINSERT INTO t VALUES ('\\'); DROP TABLE other.o; -- ');", "a DROP statement on a table or other object of another database")]
    [InlineData("SET sql_mode = 'NO_BACKSLASH_ESCAPES';\nSET sql_mode = '', @m = @@sql_mode;\nSET sql_mode = @m;\nINSERT INTO t VALUES ('\\'); DROP TABLE other.o; -- ');", "a DROP statement on a table or other object of another database")]
    // The server reads 1.SELECT as the number 1. and the keyword SELECT (1e5END as 1e5 and END): no word hides a keyword.
    [InlineData("CREATE TABLE t (a int) AUTO_INCREMENT=1.SELECT s, LOAD_FILE('/etc/hostname') FROM other.v;", "a CREATE TABLE ... SELECT statement")]
    [InlineData("CREATE TABLE t (a int) AUTO_INCREMENT=1.5SELECT f() AS b;", "a CREATE TABLE ... SELECT statement")]
    [InlineData("CREATE TABLE t (a int) MAX_ROWS=1e5SELECT 1;", "a CREATE TABLE ... SELECT statement")]
    [InlineData("CREATE TABLE t (a int) MAX_ROWS=.5e+3SELECT 1;", "a CREATE TABLE ... SELECT statement")]
    [InlineData("CREATE TABLE t (a int) MAX_ROWS=0x1F SELECT 1;", "a CREATE TABLE ... SELECT statement")]
    [InlineData("/*!40101 SET @a = 1 */;\n/*!1.SELECT 1 */;", "a statement that does not start with a keyword")]
    [InlineData("CREATE TABLE t (a int) /*!4010111.SELECT 1 */;", "a /*!...*/ version number that runs into more digits")]
    [InlineData("CREATE TABLE t (a int) COMMENT=`x`.5SELECT 1;", "a number right after a quoted name")]
    [InlineData("CREATE TABLE t (a int) MAX_ROWS=1.e;", "a number with an exponent but no digits")]
    [InlineData("ALTER TABLE t AUTO_INCREMENT=1.5;", "an ALTER TABLE ... 1.5 statement")]
    [InlineData("INSERT INTO t VALUES (1e);", "a name or keyword in an INSERT's rows (e)")]
    [InlineData("INSERT INTO t VALUES (.0x5);", "a name or keyword in an INSERT's rows (x5)")]
    [InlineData("CREATE VIEW v AS SELECT a FROM other.t;\nINSERT INTO v VALUES (1);", "an INSERT into a view (v)")]
    [InlineData("/*!50001 CREATE ALGORITHM=UNDEFINED */\n/*!50001 VIEW `dns_db`.`v` AS SELECT 1 AS `a` */;\nINSERT INTO `v` VALUES (1);", "an INSERT into a view (v)")]
    [InlineData("CREATE TABLE m (a int) ENGINE=MRG_MyISAM UNION=(t) INSERT_METHOD=LAST;\nINSERT INTO m VALUES (1);", "an INSERT into a MERGE, FEDERATED, CONNECT or SPIDER table (m)")]
    [InlineData("CREATE TABLE `f` (`a` int) ENGINE=FEDERATED CONNECTION='mysql://u@h/db/t';\nINSERT INTO `f` VALUES (1);", "an INSERT into a MERGE, FEDERATED, CONNECT or SPIDER table (f)")]
    [InlineData("CREATE TABLE t (a int) SELECT a FROM other.t;", "a CREATE TABLE ... SELECT statement")]
    [InlineData("CREATE TABLE t AS SELECT a FROM other.t;", "a CREATE TABLE ... SELECT statement")]
    [InlineData("CREATE TABLE `t` (`a` int) AUTO_INCREMENT=1.SELECT s FROM other.v;", "a CREATE TABLE ... SELECT statement")]
    [InlineData("CREATE TABLE t LIKE other.t;", "a CREATE TABLE ... LIKE statement")]
    [InlineData("CREATE TABLE `x` (`a` int) --\u0001 '\n; DROP TABLE other.o; -- '\n;", "a -- comment marker before a control character")]
    [InlineData("DELIMITER ;;\nCREATE PROCEDURE `p`() BEGIN SELECT 1; END; DROP TABLE other.o ;;\nDELIMITER ;\n", "a ';' at which the server ends the CREATE statement")]
    [InlineData("DELIMITER ;;\nCREATE TRIGGER `tr` BEFORE INSERT ON `t` FOR EACH ROW SET NEW.a = 1; DROP TABLE other.o ;;\n", "a ';' at which the server ends the CREATE statement")]
    [InlineData("DELIMITER ;;\nCREATE TRIGGER `tr` BEFORE INSERT ON `t` FOR EACH ROW SET NEW.a = begin; DROP TABLE other.o; SELECT 1 AS end ;;\n", "a ';' at which the server ends the CREATE statement")]
    [InlineData("DELIMITER ;;\nCREATE FUNCTION `f`() RETURNS int RETURN begin; DROP TABLE other.o; END ;;\n", "a ';' at which the server ends the CREATE statement")]
    [InlineData("DELIMITER ;;\nCREATE PROCEDURE `p`() BEGIN DO begin; END; DROP TABLE other.o; END ;;\n", "a ';' at which the server ends the CREATE statement")]
    [InlineData("DELIMITER ;;\nCREATE PROCEDURE `p`() begin: LOOP LEAVE begin; END LOOP begin; DROP TABLE other.o; END ;;\n", "a ';' at which the server ends the CREATE statement")]
    [InlineData("DELIMITER ;;\nCREATE EVENT `e` ON SCHEDULE EVERY 1 DAY DO SELECT 1; DROP TABLE other.o ;;\n", "a ';' at which the server ends the CREATE statement")]
    [InlineData("DELIMITER //\nCREATE VIEW `v` AS SELECT 1; DROP TABLE other.o //\n", "a ';' at which the server ends the CREATE statement")]
    [InlineData("SET sql_mode = 'ORACLE';\nDELIMITER ;;\nCREATE PROCEDURE p AS BEGIN NULL; END; DROP TABLE other.o ;;\n", "a ';' at which the server ends the CREATE statement")]
    [InlineData("DELIMITER ;;\nCREATE TRIGGER `tr` BEFORE INSERT ON `t`; DROP TABLE other.o ;;\n", "a ';' at which the server ends the CREATE statement")]
    [InlineData("DELIMITER ;;\nCREATE PROCEDURE `p`() BEGIN SELECT 1; END IF; DROP TABLE other.o; END ;;\n", "an END IF that closes no block of its kind")]
    [InlineData("DELIMITER ;;\nCREATE PROCEDURE `p`() FOR i IN 1..2 DO SELECT `x` FROM `a` AS do FOR UPDATE; END FOR; DROP TABLE other.o ;;\n", "a ';' at which the server ends the CREATE statement")]
    [InlineData("DELIMITER ;;\nCREATE PROCEDURE `p`() BEGIN IF 1 THEN SELECT 1; END IF; ;;\n", "a routine body whose blocks are not all closed")]
    [InlineData("SELECT SETVAL(`s`, 5, 0), `f`();", "a SELECT SETVAL statement with more than a sequence and numbers")]
    [InlineData("SELECT SETVAL(`s`, 5, 0) INTO OUTFILE '/tmp/x';", "a SELECT SETVAL statement with more than a sequence and numbers")]
    [InlineData("SET `sql_mode` = 'NO_BACKSLASH_ESCAPES';", "a SET of a variable in another form than name, @var, @@name or @@session.name")]
    [InlineData("SET @@session.`sql_mode` = 'NO_BACKSLASH_ESCAPES';", "a SET of a variable in another form than name, @var, @@name or @@session.name")]
    [InlineData("SET @m = '';\nSET @`m` = 'NO_BACKSLASH_ESCAPES';", "a SET of a variable in another form than name, @var, @@name or @@session.name")]
    [InlineData("SET default_storage_engine = 'MRG_MyISAM';", "a SET of DEFAULT_STORAGE_ENGINE")]
    [InlineData("CREATE TABLE `t` (`a` int); DELIMITER //\nSELECT 1 //", "a DELIMITER statement")]
    [InlineData("DELIMITER '''X'\nCREATE TABLE `t2` (`a` int) 'X DROP TABLE other.o 'X", "a DROP statement on a table or other object of another database")]
    [InlineData("--\u0001 '\nDROP TABLE other.o; -- '\n", "a -- comment marker before a control character")]
    [InlineData("INSERT INTO t VALUES (1) ON DUPLICATE KEY UPDATE a = 2;", "an INSERT whose rows are not lists of values")]
    [InlineData("CREATE FUNCTION f RETURNS STRING SONAME 'evil.so';", "a CREATE FUNCTION ... SONAME statement")]
    [InlineData("CREATE PROCEDURE other.p() BEGIN END;", "a CREATE PROCEDURE statement of an object in another database (other)")]
    [InlineData("CREATE TRIGGER tr BEFORE INSERT ON t FOR EACH ROW SET NEW.a = 1;\nINSERT INTO t VALUES (1);", "an INSERT into a table whose trigger the dump created first (t)")]
    [InlineData("CHANGE USER x;", "a CHANGE USER statement")]
    [InlineData("BEGIN NOT ATOMIC DROP DATABASE other; END;", "a BEGIN statement")]
    [InlineData("CALL other.p();", "a CALL statement")]
    [InlineData("EXECUTE s;", "an EXECUTE statement")]
    [InlineData("SET @rocksdb_x = 'DROP DATABASE other';\nPREPARE s FROM @x;\nEXECUTE s;", "a PREPARE statement")]
    // Under a DELIMITER of its own the server runs each ';'-ended statement of what the client sends.
    [InlineData("DELIMITER ;;\nCREATE TABLE `t` (`a` int); DROP TABLE other.o ;;\nDELIMITER ;\n", "a ';' inside a statement under a DELIMITER of its own")]
    [InlineData("DELIMITER ;;\nDROP TABLE IF EXISTS `t`; DROP TABLE other.o ;;\nDELIMITER ;\n", "a ';' inside a statement under a DELIMITER of its own")]
    [InlineData("DELIMITER ;;\n/*!50003 SET sql_mode = '' */; DROP TABLE other.o ;;\nDELIMITER ;\n", "a ';' inside a statement under a DELIMITER of its own")]
    [InlineData("DELIMITER ;;\nINSERT INTO `t` VALUES ('a;'); DROP TABLE other.o ;;\nDELIMITER ;\n", "a ';' inside a statement under a DELIMITER of its own")]
    [InlineData("DELIMITER $$\nINSERT INTO `t` VALUES (1); DROP TABLE other.o $$\nDELIMITER ;\n", "an INSERT whose rows are not lists of values")]
    public void Refuses_statements_mysqldump_does_not_write(string input, string refusal)
    {
        foreach (var pattern in new[] { new[] { 1 }, [3], [4096] })
        {
            var filter = new MySqlDumpFilter(Target, new MySqlFilterOptions(SourceDatabase: "dns_db"));
            var (_, e) = DumpFilterRunner.RunUntilRefused(filter.CopyAsync, Utf8(input), pattern);
            Assert.NotNull(e);
            Assert.Contains(refusal, e.Message, StringComparison.Ordinal);
            Assert.EndsWith("which mysqldump does not write; refused", e.Message, StringComparison.Ordinal);
        }
    }


    /// <summary>
    /// Under latin1 (and other one-byte sets) the server reads 0xA0 as a space: "--\xA0" starts a comment there,
    /// and "a\xA0b" is two words, where the client and this filter read code and one word (a tester ran any
    /// statement past the filter so). Raw bytes: the latin1 text below is written one byte per character.
    /// </summary>
    [Theory]
    [InlineData("/*!40101 SET NAMES latin1 */;\nCREATE TABLE `t` (`a` int --\u00A0'\n, `b` int); INSERT INTO other.t VALUES (666); #');\n",
        "a -- comment marker before a byte above ASCII")]
    [InlineData("CREATE TABLE `t` (`a` int --\u00A0'\n, `b` int); INSERT INTO other.t VALUES (666); #');\n", "a -- comment marker before a byte above ASCII")]
    [InlineData("/*!40101 SET NAMES latin1 */;\nCREATE TABLE `t` (`a` int)\u00A0ENGINE=InnoDB;\n",
        "a byte above ASCII outside a string or quoted name under a client character set other than UTF-8")]
    public void Refuses_a_byte_above_ASCII_that_the_server_may_read_as_a_space(string latin1, string refusal)
    {
        foreach (var pattern in new[] { new[] { 1 }, [3], [4096] })
        {
            var filter = new MySqlDumpFilter(Target, new MySqlFilterOptions(SourceDatabase: "dns_db"));
            var (_, e) = DumpFilterRunner.RunUntilRefused(filter.CopyAsync, Encoding.Latin1.GetBytes(latin1), pattern);
            Assert.NotNull(e);
            Assert.Contains(refusal, e.Message, StringComparison.Ordinal);
        }
    }

    /// <summary>
    /// The restore's client runs with --comments, so comments reach the server. On a line with a /*! the
    /// client takes the */ of a /* */ inside it for the /*!'s end and reads on as in a comment to the next */,
    /// where the server (and this filter) read code: a delimiter, or a */ inside a string or # / -- comment
    /// there, would make the client split or end its comment where the server does not.
    /// </summary>
    [Theory]
    [InlineData("DELIMITER ;;\n/*!50003 CREATE*/ /*!50003 TRIGGER tg BEFORE INSERT ON t FOR EACH ROW BEGIN /* c */ SET NEW.a = 1; END;; DROP TABLE other.o; */;;\n")]
    [InlineData("DELIMITER ;;\n/*!50003 CREATE*/ /*!50003 TRIGGER tg BEFORE INSERT ON t FOR EACH ROW BEGIN /* c */ SET NEW.s = '*/;; DROP TABLE other.o; -- '; END */;;\n")]
    [InlineData("DELIMITER ;;\n/*!50003 CREATE*/ /*!50003 TRIGGER tg BEFORE INSERT ON t FOR EACH ROW BEGIN /* c */ SET NEW.s = `*/`; END */;;\n")]
    [InlineData("DELIMITER ;;\n/*!50003 CREATE*/ /*!50003 TRIGGER tg BEFORE INSERT ON t FOR EACH ROW BEGIN /* c */ SET NEW.a = 1; # */;;\nEND */;;\n")]
    [InlineData("DELIMITER ;;\n/*!50003 CREATE*/ /*!50003 TRIGGER tg BEFORE INSERT ON t FOR EACH ROW BEGIN /* c */ SET NEW.a = /*!50003 1 */; END */;;\n")]
    [InlineData("/* a /*! b */ DROP TABLE other.o; */;\n")]
    [InlineData("/*!40101 SET @a = 1; /* c */ DROP TABLE other.o; */;\n")]
    public void Refuses_a_comment_the_client_and_the_server_end_apart(string input)
    {
        foreach (var pattern in new[] { new[] { 1 }, [3], [4096] })
        {
            var filter = new MySqlDumpFilter(Target, new MySqlFilterOptions(SourceDatabase: "dns_db"));
            var (_, e) = DumpFilterRunner.RunUntilRefused(filter.CopyAsync, Utf8(input), pattern);
            Assert.NotNull(e);
            Assert.Contains("a /*!...*/ comment with a /* */ comment inside on its line", e.Message, StringComparison.Ordinal);
        }
    }

    /// <summary>
    /// Between statements the client run with --comments holds a /* */ comment, a line of blanks or an indented
    /// comment in its buffer: a DELIMITER line after one is no command to it (it fails the line and goes on under the
    /// old delimiter, or sends it to the server), where this filter would read on under the new one.
    /// </summary>
    [Theory]
    [InlineData("INSERT INTO t VALUES (1);\n/* c */\nDELIMITER ;;\nINSERT INTO t VALUES (2);;\n")]
    [InlineData("INSERT INTO t VALUES (1); /* c */\nDELIMITER ;;\nINSERT INTO t VALUES (2);;\n")]
    [InlineData("INSERT INTO t VALUES (1);\n   \nDELIMITER ;;\nINSERT INTO t VALUES (2);;\n")]
    [InlineData("INSERT INTO t VALUES (1);\r\n\r\nDELIMITER ;;\r\nINSERT INTO t VALUES (2);;\r\n")]
    [InlineData("INSERT INTO t VALUES (1);\n  # c\nDELIMITER ;;\nINSERT INTO t VALUES (2);;\n")]
    [InlineData("INSERT INTO t VALUES (1); /* x */ # c\n# d\nDELIMITER ;;\nINSERT INTO t VALUES (2);;\n")]
    [InlineData("  \nDELIMITER ;;\nINSERT INTO t VALUES (2);;\n")]
    public void Refuses_a_delimiter_line_the_client_takes_for_no_command(string input)
    {
        foreach (var pattern in new[] { new[] { 1 }, [3], [4096] })
        {
            var filter = new MySqlDumpFilter(Target, new MySqlFilterOptions(SourceDatabase: "dns_db"));
            var (_, e) = DumpFilterRunner.RunUntilRefused(filter.CopyAsync, Utf8(input), pattern);
            Assert.NotNull(e);
            Assert.Contains("a DELIMITER line after a /* */ comment, a line of blanks or an indented comment", e.Message, StringComparison.Ordinal);
        }
    }

    /// <summary>What the client sends alone or with the statement before it leaves its buffer empty: the DELIMITER line is its command.</summary>
    [Theory]
    [InlineData("INSERT INTO t VALUES (1);   \n# c\n-- d\n--\n\n  DELIMITER ;;\nINSERT INTO t VALUES (2);;\n  DELIMITER ;\n\nDELIMITER ;;\nINSERT INTO t VALUES (3);;\n")]
    [InlineData("INSERT INTO t VALUES (1); -- c\nDELIMITER ;;\nINSERT INTO t VALUES (2);;\n")]
    [InlineData("INSERT INTO t VALUES (1);\r\nDELIMITER ;;\r\nINSERT INTO t VALUES (2);;\r\n")]
    [InlineData("-- MariaDB dump\n--\n\nDELIMITER ;;\nINSERT INTO t VALUES (2);;\n")]
    public void Follows_a_delimiter_line_the_client_takes_for_its_command(string input)
    {
        foreach (var pattern in DumpFilterRunner.ReadPatterns(Utf8(input).Length))
        {
            var filter = new MySqlDumpFilter(Target, new MySqlFilterOptions(SourceDatabase: "dns_db"));
            Assert.Equal(input, Encoding.UTF8.GetString(DumpFilterRunner.Run(filter.CopyAsync, Utf8(input), pattern)));
        }
    }

    /// <summary>Comments in object bodies as mariadb-dump writes them pass unchanged (the client then sends them too).</summary>
    [Theory]
    [InlineData("DELIMITER ;;\n/*!50003 CREATE*/ /*!50003 TRIGGER tg BEFORE INSERT ON t FOR EACH ROW BEGIN /* keep ids positive */ SET NEW.id = ABS(NEW.id); SET NEW.s = 'x;; y'; END */;;\nDELIMITER ;\n")]
    [InlineData("DELIMITER ;;\n/*!50003 CREATE*/ /*!50003 TRIGGER tg BEFORE INSERT ON t FOR EACH ROW BEGIN\n /* c */ SET NEW.s = '*/'; -- x */\n END */;;\nDELIMITER ;\n")]
    [InlineData("DELIMITER ;;\n/*!50106 CREATE*/ /*!50106 EVENT `ev` ON SCHEDULE EVERY 1 DAY STARTS '2026-01-01 00:00:00' ON COMPLETION NOT PRESERVE DISABLE DO BEGIN /* nightly purge */ DELETE FROM t; END */ ;;\nDELIMITER ;\n")]
    [InlineData("DELIMITER ;;\nCREATE PROCEDURE `p`()\nBEGIN\n  /* block */\n  -- line; /* keep\n  # hash */ '\n  SELECT /* inline */ id FROM t;\nEND ;;\nDELIMITER ;\n")]
    // A */ inside a string in a /*! comment, a /* inside a -- or # comment, and plain comments, which do not nest.
    [InlineData("/*!40101 SET @saved = '*/ -- #;' */;\nINSERT INTO t VALUES (1); -- /* no comment start\nINSERT INTO t VALUES (2); # /* neither\n/* a /* b */ INSERT INTO t VALUES (3);\n")]
    public void Passes_comments_in_object_bodies_unchanged(string input)
    {
        foreach (var pattern in DumpFilterRunner.ReadPatterns(Utf8(input).Length))
        {
            var filter = new MySqlDumpFilter(Target, new MySqlFilterOptions(SourceDatabase: "dns_db", KeepEventsEnabled: true));
            Assert.Equal(input, Encoding.UTF8.GetString(DumpFilterRunner.Run(filter.CopyAsync, Utf8(input), pattern)));
        }
    }

    /// <summary>DATA / INDEX DIRECTORY (as SHOW CREATE TABLE writes them, for the table or a partition) would make the
    /// server write table files wherever the dump says: refused unless asked for, and then passed unchanged.</summary>
    [Theory]
    [InlineData("CREATE TABLE `t` (\n  `a` int(11) DEFAULT NULL\n) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 DATA DIRECTORY='/tmp/x/';\n")]
    [InlineData("CREATE TABLE `m` (\n  `a` int(11) DEFAULT NULL\n) ENGINE=MyISAM INDEX DIRECTORY='/tmp/x/';\n")]
    [InlineData("CREATE TABLE m (a int) ENGINE=MyISAM data /* c */ directory = '/tmp/x/';\n")]
    [InlineData("CREATE TABLE m (a int) ENGINE=MyISAM MAX_ROWS=1.DATA DIRECTORY='/tmp/x/';\n")]
    [InlineData("CREATE TABLE m (a int) ENGINE=MyISAM MAX_ROWS=1e5INDEX DIRECTORY='/tmp/x/';\n")]
    [InlineData("CREATE TABLE `p` (\n  `a` int(11) DEFAULT NULL\n) ENGINE=InnoDB\n PARTITION BY RANGE (`a`)\n"
        + "(PARTITION `p0` VALUES LESS THAN (10) DATA DIRECTORY = '/tmp/x' ENGINE = InnoDB,\n PARTITION `p1` VALUES LESS THAN MAXVALUE ENGINE = InnoDB);\n")]
    [InlineData("CREATE TABLE `p` (`a` int) /*!50100 PARTITION BY HASH (`a`) (PARTITION `p0` DATA DIRECTORY = '/tmp/x' ENGINE = InnoDB) */;\n")]
    [InlineData("CREATE TABLE `m` (`a` int) ENGINE=MyISAM MAX_ROWS=1.DATA DIRECTORY='/tmp/x/';\n")]
    public void Refuses_table_files_outside_the_data_directory_unless_allowed(string input)
    {
        foreach (var pattern in new[] { new[] { 1 }, [3], [4096] })
        {
            var filter = new MySqlDumpFilter(Target, new MySqlFilterOptions(SourceDatabase: "dns_db"));
            var (_, e) = DumpFilterRunner.RunUntilRefused(filter.CopyAsync, Utf8(input), pattern);
            Assert.NotNull(e);
            Assert.Contains("with a DATA or INDEX DIRECTORY at byte 0", e.Message, StringComparison.Ordinal);
            Assert.Contains("--allow-data-directory", e.Message, StringComparison.Ordinal);

            var allowing = new MySqlDumpFilter(Target, new MySqlFilterOptions(SourceDatabase: "dns_db", AllowDataDirectory: true));
            Assert.Equal(input, Encoding.UTF8.GetString(DumpFilterRunner.Run(allowing.CopyAsync, Utf8(input), pattern)));
        }
    }

    /// <summary>
    /// In a table, a qualifier naming the source (MariaDB writes a sequence default as nextval(`db`.`s`)) is pointed
    /// at the target, as in views: the copy draws from its own sequence. A foreign key may still name another database.
    /// </summary>
    [Theory]
    [InlineData("CREATE TABLE `t` (\n  `id` bigint(20) NOT NULL DEFAULT nextval(`dns_db`.`s`),\n  PRIMARY KEY (`id`)\n) ENGINE=InnoDB;\n",
        "CREATE TABLE `t` (\n  `id` bigint(20) NOT NULL DEFAULT nextval(`TARGET`.`s`),\n  PRIMARY KEY (`id`)\n) ENGINE=InnoDB;\n")]
    [InlineData("CREATE TABLE t (id bigint DEFAULT nextval(dns_db.s), n int DEFAULT 1.5e-07);\n",
        "CREATE TABLE t (id bigint DEFAULT nextval(`TARGET`.s), n int DEFAULT 1.5e-07);\n")]
    [InlineData("CREATE TABLE `c` (\n  `p` int(11),\n  CONSTRAINT `fk` FOREIGN KEY (`p`) REFERENCES `other`.`parent` (`id`) ON DELETE CASCADE\n) ENGINE=InnoDB;\n",
        "CREATE TABLE `c` (\n  `p` int(11),\n  CONSTRAINT `fk` FOREIGN KEY (`p`) REFERENCES `other`.`parent` (`id`) ON DELETE CASCADE\n) ENGINE=InnoDB;\n")]
    public void Points_a_tables_source_qualifiers_at_the_target(string input, string expected)
    {
        foreach (var pattern in new[] { new[] { 1 }, [3], [4096] })
        {
            var filter = new MySqlDumpFilter(Target, new MySqlFilterOptions(SourceDatabase: "dns_db"));
            Assert.Equal(expected.Replace("TARGET", Target, StringComparison.Ordinal),
                Encoding.UTF8.GetString(DumpFilterRunner.Run(filter.CopyAsync, Utf8(input), pattern)));
        }
    }

    /// <summary>A dump without USE (and no manifest) still names its database in its header: its names point at the target.</summary>
    [Fact]
    public void Learns_the_source_from_the_dump_header()
    {
        const string Input = "-- MariaDB dump 10.19-10.11.19-MariaDB, for debian-linux-gnu (x86_64)\n--\n-- Host: 127.0.0.1    Database: shop\r\n"
            + "-- ------------------------------------------------------\n"
            + "CREATE TABLE `r` (\n  `id` int(11) NOT NULL DEFAULT nextval(`shop`.`sq`)\n);\n";
        foreach (var pattern in new[] { new[] { 1 }, [5], [4096] })
        {
            var filter = new MySqlDumpFilter(Target);
            Assert.Equal(Input.Replace("`shop`.`sq`", $"`{Target}`.`sq`", StringComparison.Ordinal),
                Encoding.UTF8.GetString(DumpFilterRunner.Run(filter.CopyAsync, Utf8(Input), pattern)));
        }
    }

    /// <summary>A default drawing from another database's sequence, or a MERGE table over its tables, would write there.</summary>
    [Theory]
    [InlineData("CREATE TABLE `t` (`id` bigint DEFAULT nextval(`other`.`s`), `x` int);\nINSERT INTO `t` (`x`) VALUES (1);\n")]
    [InlineData("CREATE TABLE t (id bigint DEFAULT NEXT VALUE FOR other.s);\n")]
    [InlineData("CREATE TABLE `m` (`id` int) ENGINE=MRG_MyISAM UNION=(`other`.`o`) INSERT_METHOD=LAST;\n")]
    public void Refuses_a_table_over_another_databases_sequence_or_tables(string input)
    {
        foreach (var pattern in new[] { new[] { 1 }, [3], [4096] })
        {
            var filter = new MySqlDumpFilter(Target, new MySqlFilterOptions(SourceDatabase: "dns_db"));
            var (_, e) = DumpFilterRunner.RunUntilRefused(filter.CopyAsync, Utf8(input), pattern);
            Assert.NotNull(e);
            Assert.Contains("over a sequence or table of another database (other) at byte 0", e.Message, StringComparison.Ordinal);
        }
    }

    /// <summary>Columns, keys and comments named like the clause are no clause.</summary>
    [Fact]
    public void Passes_tables_that_only_name_data_or_directories()
    {
        const string input = "CREATE TABLE `t` (\n  `data` varchar(10) COMMENT 'DATA DIRECTORY',\n  `directory` int,\n"
            + "  KEY `data` (`directory`),\n  KEY `index` (`data`)\n) ENGINE=InnoDB COMMENT='index directory';\n";
        Assert.Equal(input, Encoding.UTF8.GetString(DumpFilterRunner.Run(new MySqlDumpFilter(Target).CopyAsync, Utf8(input), [3])));
    }

    /// <summary>Words in a comment the server skips are no part of the statement it reads.</summary>
    [Theory]
    [InlineData("/*!999999 DROP TABLE x */ INSERT INTO other.o SELECT 1;\n", "on a table or other object of another database")]
    [InlineData("/*!999999 SET @a = 1 */ CREATE USER evil@localhost;\n", "a CREATE USER statement")]
    [InlineData("DROP TABLE IF EXISTS other/*!999999 x*/.o;\n", "on a table or other object of another database")]
    [InlineData("CREATE TABLE `t` (`id` bigint DEFAULT nextval(other/*!999999 x*/.s));\n", "over a sequence or table of another database (other)")]
    [InlineData("CREATE TABLE `t` (`a` int) ENGINE=MyISAM DATA /*!999999 x*/ DIRECTORY='/tmp/x';\n", "with a DATA or INDEX DIRECTORY")]
    [InlineData("CREATE SEQUENCE `sq` ENGINE=InnoDB DATA DIRECTORY='/tmp/x';\n", "with a DATA or INDEX DIRECTORY")]
    public void Reads_statements_without_what_the_server_skips(string input, string refusal)
    {
        foreach (var pattern in new[] { new[] { 1 }, [3], [4096] })
        {
            var filter = new MySqlDumpFilter(Target, new MySqlFilterOptions(Server: new ServerInfo("MariaDB", "10.11.19", [])));
            var (_, e) = DumpFilterRunner.RunUntilRefused(filter.CopyAsync, Utf8(input), pattern);
            Assert.NotNull(e);
            Assert.Contains(refusal, e.Message, StringComparison.Ordinal);
        }
    }

    /// <summary>A block opener in a comment the server skips is no block: the ';' after the body's END still ends it.</summary>
    [Theory]
    [InlineData("DELIMITER ;;\nCREATE PROCEDURE `p`() BEGIN /*!99999 BEGIN */ SELECT 1; END; DROP TABLE other.o ;;\n")]
    [InlineData("DELIMITER ;;\nCREATE PROCEDURE `p`() BEGIN /*!50700 BEGIN */ SELECT 1; END; DROP TABLE other.o ;;\n")]
    public void Reads_a_routine_body_without_what_the_server_skips(string input)
    {
        var filter = new MySqlDumpFilter(Target, new MySqlFilterOptions(Server: new ServerInfo("MariaDB", "10.11.19", [])));
        var (_, e) = DumpFilterRunner.RunUntilRefused(filter.CopyAsync, Utf8(input), [4096]);
        Assert.NotNull(e);
        Assert.Contains("a ';' at which the server ends the CREATE statement", e.Message, StringComparison.Ordinal);
    }

    /// <summary>The session settings mysqldump and mariadb-dump write, and their user variables, pass unchanged.</summary>
    [Theory]
    [InlineData("/*!40101 SET @OLD_CHARACTER_SET_CLIENT=@@CHARACTER_SET_CLIENT */;\n/*!50503 SET NAMES utf8mb4 */;\n/*!40101 SET CHARACTER_SET_CLIENT=@OLD_CHARACTER_SET_CLIENT */;\n")]
    [InlineData("SET @saved_cs_client     = @@character_set_client;\nSET character_set_client = utf8mb4;\nSET character_set_client = @saved_cs_client;\n")]
    [InlineData("SET NAMES utf8mb4 COLLATE utf8mb4_unicode_ci;\nSET CHARACTER SET latin1;\nSET @@session.character_set_client = 'ujis';\n")]
    [InlineData("/*!40101 SET @OLD_SQL_MODE=@@SQL_MODE, SQL_MODE='NO_AUTO_VALUE_ON_ZERO' */;\nSET sql_mode = DEFAULT;\n/*!40101 SET SQL_MODE=@OLD_SQL_MODE */;\n")]
    [InlineData("/*!50003 SET @saved_sql_mode       = @@sql_mode */ ;\n/*!50003 SET sql_mode              = 'PIPES_AS_CONCAT,ANSI_QUOTES,ORACLE' */ ;\n/*!50003 SET sql_mode              = @saved_sql_mode */ ;\n")]
    [InlineData("SET @MYSQLDUMP_TEMP_LOG_BIN = @@SESSION.SQL_LOG_BIN;\nSET @@SESSION.SQL_LOG_BIN= 0;\nSET @@SESSION.SQL_LOG_BIN = @MYSQLDUMP_TEMP_LOG_BIN;\n")]
    [InlineData("SET SESSION time_zone = '+00:00', LOCAL autocommit := 0, @@local.unique_checks = 0, @a.b = 1;\nSET CHARSET utf8mb4;\n")]
    public void Passes_the_session_settings_mysqldump_writes(string input)
    {
        AssertFilters(Utf8(input), Utf8(input), Target, null, 0);
    }

    /// <summary>Routines, triggers and events as mysqldump writes them, with every kind of block, pass unchanged.</summary>
    [Theory]
    [InlineData("DELIMITER ;;\nCREATE DEFINER=`root`@`localhost` PROCEDURE `p`(IN x INT, OUT y VARCHAR(10))\n    MODIFIES SQL DATA\n    COMMENT 'a ; b'\nbegin_label: BEGIN\n  DECLARE done INT DEFAULT 0;\n  DECLARE c CURSOR FOR SELECT `a` FROM `t`;\n  DECLARE CONTINUE HANDLER FOR NOT FOUND SET done = 1;\n  DECLARE EXIT HANDLER FOR SQLSTATE VALUE '23000', 1062 BEGIN ROLLBACK; RESIGNAL; END;\n  IF x > 1 THEN SET y = 'a'; ELSEIF x = 1 THEN SET y = CASE x WHEN 1 THEN 'b' ELSE 'c' END; ELSE BEGIN END; END IF;\n  CASE x WHEN 1 THEN SELECT 1; ELSE SELECT 2; END CASE;\n  l: LOOP IF done THEN LEAVE l; END IF; END LOOP l;\n  WHILE x < 3 DO SET x = x + 1; END WHILE;\n  REPEAT SET x = x - 1; UNTIL x = 0 END REPEAT;\n  SELECT `begin`, (SELECT 1) FROM `t`;\nEND begin_label ;;\nDELIMITER ;\n")]
    [InlineData("DELIMITER ;;\nCREATE DEFINER=`root`@`localhost` FUNCTION `f`(x INT) RETURNS varchar(20) CHARSET utf8mb4 COLLATE utf8mb4_general_ci\n    DETERMINISTIC\nBEGIN\n  RETURN CONCAT('x', x);\nEND ;;\nCREATE FUNCTION `g`() RETURNS int(11) RETURN 1 ;;\nDELIMITER ;\n")]
    [InlineData("DELIMITER ;;\n/*!50003 CREATE*/ /*!50017 DEFINER=`root`@`localhost`*/ /*!50003 TRIGGER `tr` BEFORE INSERT ON `t` FOR EACH ROW FOLLOWS `other_tr` BEGIN IF NEW.a > 1 THEN SET NEW.a = 1; END IF; END */;;\n/*!50003 CREATE*/ /*!50003 TRIGGER `tr2` BEFORE UPDATE ON `row` FOR EACH ROW SET NEW.a = 2 */;;\nDELIMITER ;\n")]
    [InlineData("DELIMITER ;;\n/*!50106 CREATE*/ /*!50117 DEFINER=`root`@`localhost`*/ /*!50106 EVENT `e` ON SCHEDULE EVERY 1 DAY STARTS '2026-01-01 00:00:00' ON COMPLETION NOT PRESERVE DISABLE DO BEGIN DELETE FROM `t`; INSERT INTO `t` VALUES (1); END */ ;;\nDELIMITER ;\n")]
    [InlineData("DELIMITER ;;\nCREATE PROCEDURE `p`() BEGIN SELECT start, end FROM `t` WHERE end > 1 AND CASE WHEN end THEN 1 END; END ;;\nDELIMITER ;\n")]
    [InlineData("DELIMITER ;;\nCREATE FUNCTION `f`() RETURNS NATIONAL CHAR(10) BEGIN RETURN 'a'; END ;;\nCREATE FUNCTION `g`() RETURNS DOUBLE PRECISION BEGIN RETURN 1; END ;;\nCREATE FUNCTION `h`() RETURNS CHAR(3) CHARACTER SET latin1 BEGIN RETURN 'a'; END ;;\nCREATE TRIGGER `tr` BEFORE INSERT ON `t` FOR EACH ROW FOLLOWS `db`.`other` BEGIN SET @a = 1; END ;;\nDELIMITER ;\n")]
    public void Passes_routines_triggers_and_events_with_blocks(string input)
    {
        var filter = new MySqlDumpFilter(Target, new MySqlFilterOptions(Definer: DefinerMode.Keep, KeepEventsEnabled: true));
        var output = DumpFilterRunner.Run(filter.CopyAsync, Utf8(input), [7]);
        Assert.Equal(input, Encoding.UTF8.GetString(output));
    }

    /// <summary>
    /// Numbers as dumps write them (in defaults, options, rows and bodies) and names that start with digits or follow
    /// a dot pass unchanged: the server's reading of them splits no statement differently.
    /// </summary>
    [Theory]
    [InlineData("CREATE TABLE `t1` (\n  `a` double DEFAULT 1.5,\n  `b` double DEFAULT -0.5,\n  `c` double DEFAULT 1.5e-07,\n  `d` double DEFAULT 1e308,\n"
        + "  `1abc` decimal(65,30) DEFAULT 12345678901234567890.123456789,\n  `e` float DEFAULT .5,\n  `f` bit(3) DEFAULT b'101',\n  `g` varbinary(2) DEFAULT 0x4142,\n"
        + "  CHECK (`a` > 1.E5)\n) ENGINE=InnoDB AUTO_INCREMENT=5 DEFAULT CHARSET=utf8mb4;\n")]
    [InlineData("INSERT INTO `t1` VALUES (1,1.5,-0.5,1.5e-07,1e308,1.E+5,.5,0x4142,b'101',NULL);\n")]
    [InlineData("ALTER TABLE `t1` AUTO_INCREMENT = 42;\nSELECT SETVAL(`s`, 1001, 0);\n")]
    [InlineData("DELIMITER ;;\nCREATE PROCEDURE `p`() BEGIN DECLARE x DOUBLE DEFAULT 1.5e-3; FOR i IN 1..10 DO SET x = x + .5; END FOR;"
        + " SELECT t.1abc, t.end, t.5, `t`.`begin` FROM `t` AS t WHERE x > 1.; SELECT CASE WHEN 1 THEN 2 ELSE 1e5END; END ;;\nDELIMITER ;\n")]
    public void Passes_numbers_and_names_that_start_with_digits(string input)
    {
        foreach (var pattern in new[] { new[] { 1 }, [3], [4096] })
        {
            var each = new MySqlDumpFilter(Target, new MySqlFilterOptions(Definer: DefinerMode.Keep, Server: new ServerInfo("MariaDB", "10.11.19", [])));
            Assert.Equal(input, Encoding.UTF8.GetString(DumpFilterRunner.Run(each.CopyAsync, Utf8(input), pattern)));
        }
    }

    /// <summary>A client character set whose characters can end in a backslash, or one the filter cannot know, is refused.</summary>
    [Theory]
    [InlineData("SET CHARACTER SET gbk;", "gbk")]
    [InlineData("SET NAMES 'sjis' COLLATE sjis_bin;", "sjis")]
    [InlineData("/*!40101 SET character_set_client = cp932 */;", "cp932")]
    [InlineData("SET @c = 'big5';\nSET character_set_client = @c;", "@c")]
    [InlineData("SET character_set_client = @never_set;", "@never_set")]
    [InlineData("SET NAMES DEFAULT;", "DEFAULT")]
    // The server decodes '\gbk' to gbk; the filter does not decode escapes or doubled quotes: not known.
    [InlineData("SET NAMES '\\gbk';\nINSERT INTO t VALUES ('\u4e01\\'); DROP TABLE other.o; -- ');", "\\gbk")]
    [InlineData("SET character_set_client = 'g''bk';", "g'bk")]
    [InlineData("SET @c = '\\gbk';\nSET character_set_client = @c;", "@c")]
    [InlineData("SET NAMES _latin1'gbk';", "a value this check cannot read")]
    [InlineData("SET NAMES X'67626b';", "a value this check cannot read")]
    [InlineData("SET NAMES 0x67626b;", "0x67626b")]
    [InlineData("SET NAMES swe7;", "swe7")]
    // The server reads every value of a SET before it assigns any: @c is still gbk where character_set_client takes it.
    [InlineData("SET @c = 'gbk';\nSET @c = 'latin1', character_set_client = @c;", "@c")]
    public void Refuses_a_client_character_set_it_cannot_read(string input, string shown)
    {
        foreach (var pattern in new[] { new[] { 1 }, [4096] })
        {
            var filter = new MySqlDumpFilter(Target);
            var (_, e) = DumpFilterRunner.RunUntilRefused(filter.CopyAsync, Utf8(input), pattern);
            Assert.NotNull(e);
            Assert.StartsWith($"the dump sets the client character set to {shown} at byte ", e.Message, StringComparison.Ordinal);
        }
    }

    /// <summary>
    /// Under a client character set other than UTF-8 or a one-byte set it reads (latin1, cp1251, ...) the server reads a
    /// name's bytes above ASCII as other characters than this filter can: a name it records or compares with such a byte
    /// is refused, as is one with a byte that is no character of its one-byte set (cp1251's 0x98), and under latin1 one
    /// it compares as UTF-8 bytes or writes back (a database, a qualifier). {E4} stands for the byte 0xE4.
    /// </summary>
    [Theory]
    [InlineData("SET CHARACTER SET armscii8;\nCREATE VIEW `{E4}` AS SELECT 1;\n")]
    [InlineData("SET CHARACTER SET cp1251;\nCREATE VIEW `{98}` AS SELECT 1;\n")]
    [InlineData("SET NAMES greek;\nCREATE VIEW `{D2}` AS SELECT 1;\n")]
    [InlineData("SET @c = 'latin1';\nSET character_set_client = @c;\nCREATE VIEW v AS SELECT a FROM `{E4}`.t;\n")]
    [InlineData("SET NAMES binary;\nCREATE VIEW v AS SELECT a FROM `ä`.t;\n")]
    [InlineData("/*!40101 SET NAMES latin1 */;\nUSE `{E4}`;\n")]
    public void Refuses_a_name_above_ascii_under_a_client_character_set_other_than_utf8(string input)
    {
        foreach (var pattern in new[] { new[] { 1 }, [3], [4096] })
        {
            var filter = new MySqlDumpFilter(Target, new MySqlFilterOptions(SourceDatabase: "dns_db"));
            var (_, e) = DumpFilterRunner.RunUntilRefused(filter.CopyAsync, WithBytes(input), pattern);
            Assert.NotNull(e);
            Assert.Contains("client character set", e.Message, StringComparison.Ordinal);
        }
    }

    /// <summary>
    /// A refused name is shown as its set reads it, or its bytes in hex, and the refusal says it is a database or
    /// qualifier (tr94: every letter above ASCII was a `?`, and the reason named only the set).
    /// </summary>
    [Theory]
    [InlineData("SET NAMES latin1;\nCREATE VIEW v AS SELECT a FROM `caf{E9}`.t;\n", "the dump names café at byte", "under client character set latin1")]
    [InlineData("SET NAMES armscii8;\nCREATE VIEW v AS SELECT a FROM `caf{E9}`.t;\n", "the dump names caf\\xE9 at byte", "as a database or the qualifier of an object")]
    public void A_refused_name_is_shown_as_the_server_reads_it(string input, string shown, string why)
    {
        var filter = new MySqlDumpFilter(Target, new MySqlFilterOptions(SourceDatabase: "dns_db"));
        var (_, e) = DumpFilterRunner.RunUntilRefused(filter.CopyAsync, WithBytes(input), [4096]);
        Assert.NotNull(e);
        Assert.Contains(shown, e.Message, StringComparison.Ordinal);
        Assert.Contains(why, e.Message, StringComparison.Ordinal);
    }

    /// <summary>
    /// Under latin1, cp1251, koi8r and the other one-byte sets a name is read as the server reads it (the table `\xE4`
    /// of latin1 is the `ä` of utf8mb4, of cp1251 the `д`): rows into a table with a trigger or into a view are refused
    /// whichever set named it, and such names pass otherwise (a view named so was refused, and with it every restore of
    /// its backup: under latin1 once, under cp1251, koi8r or greek until they were read as latin1 is).
    /// </summary>
    [Theory]
    [InlineData("SET NAMES latin1;\nCREATE TABLE `{E4}` (a int);\nDELIMITER ;;\nCREATE TRIGGER tr BEFORE INSERT ON `{E4}` FOR EACH ROW INSERT INTO other.o VALUES (77) ;;\nDELIMITER ;\nSET NAMES utf8mb4;\nINSERT INTO `ä` VALUES (1);\n",
        "an INSERT into a table whose trigger the dump created first (ä)")]
    [InlineData("SET character_set_client = latin1;\nCREATE VIEW `v{E4}` AS SELECT 1 AS a;\nSET character_set_client = utf8mb4;\nINSERT INTO `vä` VALUES (1);\n",
        "an INSERT into a view (vä)")]
    [InlineData("CREATE TABLE `ä` (a int);\nSET character_set_client = latin1;\nDELIMITER ;;\nCREATE TRIGGER tr BEFORE INSERT ON `{E4}` FOR EACH ROW SET @a = 1 ;;\nDELIMITER ;\n", null)]
    [InlineData("SET NAMES latin1;\nCREATE VIEW `v{E4}` AS SELECT 1 AS a;\nINSERT INTO `{E4}` VALUES (1);\n", null)]
    [InlineData("SET NAMES cp1251;\nCREATE TABLE `{E4}` (a int);\nDELIMITER ;;\nCREATE TRIGGER tr BEFORE INSERT ON `{E4}` FOR EACH ROW INSERT INTO other.o VALUES (77) ;;\nDELIMITER ;\nSET NAMES utf8mb4;\nINSERT INTO `д` VALUES (1);\n",
        "an INSERT into a table whose trigger the dump created first (д)")]
    [InlineData("SET character_set_client = koi8r;\nCREATE VIEW `v{C4}` AS SELECT 1 AS a;\nSET character_set_client = utf8mb4;\nINSERT INTO `vд` VALUES (1);\n",
        "an INSERT into a view (vд)")]
    [InlineData("CREATE TABLE `д` (a int);\nSET character_set_client = cp1251;\nDELIMITER ;;\nCREATE TRIGGER tr BEFORE INSERT ON `{E4}` FOR EACH ROW SET @a = 1 ;;\nDELIMITER ;\n", null)]
    [InlineData("SET NAMES greek;\nCREATE VIEW `v{E4}` AS SELECT 1 AS a;\nINSERT INTO `{E4}` VALUES (1);\n", null)]
    public void Reads_one_byte_sets_names_as_the_server_does(string input, string? refusal)
    {
        foreach (var pattern in new[] { new[] { 1 }, [3], [4096] })
        {
            var filter = new MySqlDumpFilter(Target);
            var (output, e) = DumpFilterRunner.RunUntilRefused(filter.CopyAsync, WithBytes(input), pattern);
            if (refusal is null)
            {
                Assert.Null(e);
                Assert.Equal(WithBytes(input), output);
            }
            else
            {
                Assert.Contains(refusal, e?.Message, StringComparison.Ordinal);
            }
        }
    }

    /// <summary>
    /// SHOW CREATE EVENT, and so mariadb-dump, writes an event's name and comment, and a trigger's or event's definer,
    /// in UTF-8 into the text of an object created under a one-byte set: written so, the event came back as `Ã¤v` under
    /// latin1, as other letters under koi8r, and under cp1251 and greek, where its UTF-8 bytes hold one that is no
    /// character of the set (0x98 of `И`, 0xA4 of `Τ`), not at all. They are rewritten in that set; the body, which is
    /// in it already ({E4}, a letter in each), and the same text under utf8mb4 pass unchanged. {E4} stands for the byte 0xE4.
    /// </summary>
    [Theory]
    [InlineData("latin1", "äv", "ä\\'s", "vt_dé", "{E4}v", "{E4}\\'s", "vt_d{E9}")]
    [InlineData("cp1251", "Иван", "Тест, \\'И\\'", "vt_Ив", "{C8}{E2}{E0}{ED}", "{D2}{E5}{F1}{F2}, \\'{C8}\\'", "vt_{C8}{E2}")]
    [InlineData("koi8r", "Иван", "Тест", "vt_дв", "{E9}{D7}{C1}{CE}", "{F4}{C5}{D3}{D4}", "vt_{C4}{D7}")]
    [InlineData("greek", "Τάξη", "Καλημέρα", "vt_αβ", "{D4}{DC}{EE}{E7}", "{CA}{E1}{EB}{E7}{EC}{DD}{F1}{E1}", "vt_{E1}{E2}")]
    public void Writes_a_one_byte_sets_events_name_comment_and_definer_in_that_set(string charset, string name, string comment, string definer,
        string nameBytes, string commentBytes, string definerBytes)
    {
        const string Event = "/*!50106 CREATE*/ /*!50117 DEFINER=`{definer}`@`localhost`*/ /*!50106 EVENT `{name}` ON SCHEDULE EVERY 1 DAY "
            + "STARTS '2031-01-01 00:00:00' ON COMPLETION NOT PRESERVE DISABLE COMMENT '{comment}' DO SET @a = '{E4}' */ ;;\n"
            + "/*!50003 CREATE*/ /*!50017 DEFINER=`{definer}`@`%`*/ /*!50003 TRIGGER tr BEFORE INSERT ON t FOR EACH ROW SET @a = '{E4}' */;;\n";
        string Dump(string set, string n, string c, string d) =>
            $"DELIMITER ;;\n/*!50003 SET character_set_client  = {set} */ ;;\n"
            + Event.Replace("{name}", n, StringComparison.Ordinal).Replace("{comment}", c, StringComparison.Ordinal)
                .Replace("{definer}", d, StringComparison.Ordinal)
            + "/*!50003 SET character_set_client  = utf8mb4 */ ;;\nDELIMITER ;\n";
        foreach (var pattern in new[] { new[] { 1 }, [7], [4096] })
        {
            var filter = new MySqlDumpFilter(Target, new MySqlFilterOptions(KeepEventsEnabled: true));
            Assert.Equal(WithBytes(Dump(charset, nameBytes, commentBytes, definerBytes)),
                DumpFilterRunner.Run(filter.CopyAsync, WithBytes(Dump(charset, name, comment, definer)), pattern));
            var utf8 = WithBytes(Dump("utf8mb4", name, comment, definer));
            Assert.Equal(utf8, DumpFilterRunner.Run(new MySqlDumpFilter(Target).CopyAsync, utf8, pattern));
        }
    }

    /// <summary>
    /// What mysqldump writes around a routine or trigger created under latin1 passes unchanged: non-ASCII bytes in its
    /// strings and comments (not names), ASCII names, and non-ASCII names again once the saved character set is back.
    /// </summary>
    [Fact]
    public void Passes_latin1_strings_in_a_routine_and_utf8_names_around_it()
    {
        const string input = """
            /*!40101 SET NAMES utf8mb4 */;
            /*!40101 SET @saved_cs_client     = @@character_set_client */;
            /*!40101 SET character_set_client = utf8mb4 */;
            CREATE TABLE `ä` (`ö` varchar(10));
            /*!40101 SET character_set_client = @saved_cs_client */;
            INSERT INTO `ä` VALUES ('ü');
            /*!50003 SET @saved_cs_client      = @@character_set_client */ ;
            /*!50003 SET character_set_client  = latin1 */ ;
            DELIMITER ;;
            CREATE DEFINER=`root`@`localhost` PROCEDURE `p`() BEGIN SELECT '{E4}' AS `a` FROM `dns_db`.`t` /* {E4} */; END ;;
            DELIMITER ;
            /*!50003 SET character_set_client  = @saved_cs_client */ ;
            DELIMITER ;;
            CREATE TRIGGER `tr` BEFORE INSERT ON `ä` FOR EACH ROW SET NEW.`ö` = 'ä' ;;
            DELIMITER ;

            """;
        var expected = input.Replace("`dns_db`.`t`", $"`{Target}`.`t`", StringComparison.Ordinal);
        foreach (var pattern in new[] { new[] { 1 }, [3], [4096] })
        {
            var filter = new MySqlDumpFilter(Target, new MySqlFilterOptions(SourceDatabase: "dns_db", Definer: DefinerMode.Keep));
            Assert.Equal(WithBytes(expected), DumpFilterRunner.Run(filter.CopyAsync, WithBytes(input), pattern));
        }
    }

    /// <summary>UTF-8 bytes of <paramref name="text"/>, each "{E4}" in it the single byte 0xE4 (latin1's ä), and so
    /// for any two hex digits in braces.</summary>
    private static byte[] WithBytes(string text) =>
        [.. Regex.Split(text, @"\{([0-9A-F]{2})\}").SelectMany((part, k) => k % 2 == 0 ? Utf8(part) : [Convert.ToByte(part, 16)])];

    /// <summary>
    /// A conditional comment of a later version than the server's is a plain comment to it (a quote in
    /// it starts nothing), and /*M!...*/ is one to MySQL; the same comment of an earlier version is code.
    /// </summary>
    [Theory]
    [InlineData("MariaDB", "10.11.19", "CREATE TABLE t (a int) /*!999999 ' */ ; DROP TABLE other.o; -- ' */;", true)]
    [InlineData("MariaDB", "10.11.19", "CREATE TABLE t (a int) /*!101120 ' */ ;", true)]
    [InlineData("MariaDB", "10.11.19", "/*!40101 SET NAMES 'utf8mb4' */;\nCREATE TABLE t (a int) /*!101119 COMMENT 'x' */;", false)]
    [InlineData("MySQL", "8.0.35", "CREATE TABLE t (a int) /*M!100100 ' */ ;", true)]
    [InlineData("MySQL", "8.0.35", "CREATE TABLE t (a int) /*!80036 ' */ ;", true)]
    [InlineData("MySQL", "8.0.35", "SET @@SESSION.SQL_LOG_BIN= 0;\nCREATE TABLE t (a int) /*!80016 DEFAULT ENCRYPTION='N' */;", false)]
    [InlineData("MariaDB", "10.11.19", "CREATE TABLE `b` (`x` int) /*!50700 ' */; DROP TABLE other.o; -- ' */;", true)]
    [InlineData("MariaDB", "10.11.19", "CREATE TABLE `b` (`x` int) /*M!50700 COMMENT 'x' */;", false)]
    [InlineData("MariaDB", "10.11.19", "SET @@GLOBAL.GTID_PURGED=/*!80000 '+'*/ 'f3a1:1-5';", false)]
    public void Refuses_a_quote_in_a_conditional_comment_the_server_skips(string flavor, string version, string input, bool refused)
    {
        foreach (var pattern in new[] { new[] { 1 }, [5], [4096] })
        {
            var filter = new MySqlDumpFilter(Target, new MySqlFilterOptions(Server: new ServerInfo(flavor, version, [])));
            var (_, e) = DumpFilterRunner.RunUntilRefused(filter.CopyAsync, Utf8(input), pattern);
            Assert.Equal(refused, e is not null);
            if (refused)
            {
                Assert.Contains("a quote inside a /*!...*/ comment whose version this server skips", e!.Message, StringComparison.Ordinal);
            }
        }
    }

    /// <summary>Percona Server's dump switches RocksDB's bulk load on and off with PREPARE/EXECUTE: left out, the rest kept.</summary>
    [Fact]
    public void Leaves_out_percona_servers_rocksdb_bulk_load_switches()
    {
        const string Head = """
            /*!40111 SET @OLD_SQL_NOTES=@@SQL_NOTES, SQL_NOTES=0 */;
            /*!50717 SELECT COUNT(*) INTO @rocksdb_has_p_s_session_variables FROM INFORMATION_SCHEMA.TABLES WHERE TABLE_SCHEMA = 'performance_schema' AND TABLE_NAME = 'session_variables' */;
            /*!50717 SET @rocksdb_get_is_supported = IF (@rocksdb_has_p_s_session_variables, 'SELECT COUNT(*) INTO @rocksdb_is_supported FROM performance_schema.session_variables WHERE VARIABLE_NAME=\'rocksdb_bulk_load\'', 'SELECT 0') */;
            /*!50717 PREPARE s FROM @rocksdb_get_is_supported */;
            /*!50717 EXECUTE s */;
            /*!50717 DEALLOCATE PREPARE s */;

            """;
        const string Data = "LOCK TABLES `t` WRITE;\nINSERT INTO `t` VALUES (1,'a');\nUNLOCK TABLES;\n";
        const string Tail = """
            /*!50112 SET @disable_bulk_load = IF (@is_rocksdb_supported, 'SET SESSION rocksdb_bulk_load = @old_rocksdb_bulk_load', 'SET @dummy_rocksdb_bulk_load = 0') */;
            /*!50112 PREPARE s FROM @disable_bulk_load */;
            /*!50112 EXECUTE s */;
            /*!50112 DEALLOCATE PREPARE s */;

            """;
        var input = Utf8(Head + Data + Tail);
        var expected = Encoding.UTF8.GetString(input);
        foreach (var dropped in new[]
        {
            "/*!50717 SELECT COUNT(*) INTO @rocksdb_has_p_s_session_variables FROM INFORMATION_SCHEMA.TABLES WHERE TABLE_SCHEMA = 'performance_schema' AND TABLE_NAME = 'session_variables' */;",
            "/*!50717 PREPARE s FROM @rocksdb_get_is_supported */;", "/*!50717 EXECUTE s */;", "/*!50717 DEALLOCATE PREPARE s */;",
            "/*!50112 PREPARE s FROM @disable_bulk_load */;", "/*!50112 EXECUTE s */;", "/*!50112 DEALLOCATE PREPARE s */;",
            "LOCK TABLES `t` WRITE;", "UNLOCK TABLES;",
        })
        {
            Assert.Contains(dropped, expected, StringComparison.Ordinal);
            expected = expected.Replace(dropped, "", StringComparison.Ordinal);
        }
        AssertFilters(input, Utf8(expected), Target, null, 9);
    }

    [Theory]
    [InlineData("INSERT INTO t VALUES (1);\n-- Dump completed on 2026-01-10  2:00:00\n", true)]
    [InlineData("INSERT INTO t VALUES (1);\n-- Dump completed\n\n/* trailing comment */\n", true)]
    [InlineData("INSERT INTO t VALUES (1);\n-- Dump completed on 2026-01-10\nDROP TABLE t;\n", false)]
    [InlineData("-- Dump completed\nINSERT INTO t VALUES (1);\n", false)]
    [InlineData("INSERT INTO t VALUES ('-- Dump completed');\n", false)]
    public void Tells_whether_the_dump_ends_with_its_completion_trailer(string input, bool ended)
    {
        var filter = new MySqlDumpFilter(Target);
        DumpFilterRunner.Run(filter.CopyAsync, Utf8(input), [5]);
        Assert.Equal(ended, filter.EndedWithCompletionTrailer);
    }

    [Fact]
    public void Passes_statements_larger_than_the_classification_cap_intact()
    {
        var big = new StringBuilder("INSERT INTO `zone` VALUES ");
        for (var row = 0; row < 40_000; row++)
        {
            big.Append(row == 0 ? "" : ",").Append('(').Append(row).Append(",'USE `dns_db`; -- \\' /* ;;')");
        }

        big.Append(';');
        var longHeadComment = "/*!40101 SET @a = /* " + new string('x', 100_000) + " */ 1 */;";
        var (input, expected) = Join(
        [
            Keep(big.ToString()),
            Keep("\n"),
            Keep(longHeadComment),
            Keep("\n"),
            Drop("USE dns_db;"),
            Keep("\n"),
        ]);
        Assert.True(input.Length > 1_000_000);
        foreach (var pattern in new[] { new[] { 1 }, [7, 3], [4096], [input.Length] })
        {
            var filter = new MySqlDumpFilter(Target);
            Assert.Equal(expected, DumpFilterRunner.Run(filter.CopyAsync, input, pattern));
            Assert.Equal(1, filter.DroppedStatements);
        }
    }

    [Fact]
    public void Refuses_a_database_statement_whose_name_comes_after_the_cap()
    {
        var input = Utf8("CREATE /* " + new string('x', 100_000) + " */ DATABASE dns_db;");
        var filter = new MySqlDumpFilter(Target);
        Assert.Throws<DumpFilterException>(() => DumpFilterRunner.Run(filter.CopyAsync, input, [4096]));
    }

    /// <summary>
    /// Megabytes of comments or blank lines between statements (a tester's planted 4 MiB .sql.gz: a
    /// thousand comment lines of a MiB each): the client, run with --comments, kept them in memory to
    /// send with the next statement, 1 GB of it. Refused once a gap passes the cap, wherever it is;
    /// a gap just under the cap passes.
    /// </summary>
    [Theory]
    [InlineData("-- ", "\n", true)]
    [InlineData(" -- ", "\n", true)]
    [InlineData("", "\n", false)]
    [InlineData("/* ", " */\n", true)]
    public void Refuses_megabytes_of_comments_or_blanks_between_statements(string open, string close, bool comment)
    {
        var line = open + new string(comment ? 'x' : ' ', 64 * 1024) + close;
        string Dump(int lines) => "-- MariaDB dump 10.19\nCREATE TABLE t (id int);\n" + string.Concat(Enumerable.Repeat(line, lines))
            + "INSERT INTO t VALUES (1);\n-- Dump completed on 2026-11-28\n";

        var e = Assert.Throws<DumpFilterException>(() => DumpFilterRunner.Run(new MySqlDumpFilter(Target).CopyAsync, Utf8(Dump(70)), [65536]));
        Assert.Contains("more than 4 MiB of comments and blank lines between two statements at byte 46", e.Message, StringComparison.Ordinal);
        var under = Utf8(Dump(60));
        Assert.Equal(under, DumpFilterRunner.Run(new MySqlDumpFilter(Target).CopyAsync, under, [65536]));
    }

    /// <summary>
    /// The same blanks inside a statement (a tester's 10 KB .sql.zst: 300 MiB of blanks in a
    /// /*!40101 SET ... */, which the client held whole, 624 MB): a statement other than an INSERT's
    /// rows is refused past 64 MiB, where an INSERT of a row that large passes.
    /// </summary>
    [Fact]
    public void Refuses_a_statement_of_more_than_64_MiB_that_is_not_the_rows_of_an_insert()
    {
        var blanks = new string(' ', 65 * 1024 * 1024);
        var set = Utf8($"-- MariaDB dump 10.19\n/*!40101 SET @x=1 {blanks} */;\n-- Dump completed on 2026-11-28\n");
        var e = Assert.Throws<DumpFilterException>(() => DumpFilterRunner.Run(new MySqlDumpFilter(Target).CopyAsync, set, [1 << 20]));
        Assert.Contains("a statement of more than 64 MiB that is not the rows of an INSERT at byte 22", e.Message, StringComparison.Ordinal);

        var insert = Utf8($"-- MariaDB dump 10.19\nINSERT INTO `t` VALUES (1,'{blanks}');\n-- Dump completed on 2026-11-28\n");
        Assert.Equal(insert.Length, DumpFilterRunner.Run(new MySqlDumpFilter(Target).CopyAsync, insert, [1 << 20]).Length);
    }

    /// <summary>
    /// tr105: one INSERT of a 1.5 GB string (6.5 MB gzipped) passed the filter, and the client (run with
    /// --max-allowed-packet=1G) held 2.4 GB of it before the server refused it, over its max_allowed_packet. An
    /// INSERT longer than the server's max_allowed_packet is refused before its end reaches the client; one as
    /// long passes, as do INSERTs longer together.
    /// </summary>
    [Fact]
    public void Refuses_an_insert_longer_than_the_servers_max_allowed_packet()
    {
        const long packet = 4 * 1024 * 1024;
        const string head = "-- MariaDB dump 10.19\n";
        const string open = "INSERT INTO `t` VALUES (1,'";
        const string trailer = "-- Dump completed on 2026-11-28\n";
        Func<Stream, Stream, CancellationToken, Task> Filter() => new MySqlDumpFilter(Target, new MySqlFilterOptions(MaxAllowedPacket: packet)).CopyAsync;

        var (output, refusal) = DumpFilterRunner.RunGenerated(Filter(), (head, 1), (open, 1), ("A", packet - open.Length), ("');\n", 1), (trailer, 1));
        Assert.NotNull(refusal);
        Assert.Equal("the dump holds an INSERT longer than the server's max_allowed_packet (4194304 bytes) at byte 22, which the server "
            + "would refuse (raise max_allowed_packet above the backup's largest row); refused", refusal.Message);
        Assert.True(output.Written < head.Length + packet, $"{output.Written} bytes written: the statement's end among them");

        // As long as max_allowed_packet to its ';', and twice that in two INSERTs: passed whole.
        var fits = new (string, long)[] { (head, 1), (open, 1), ("A", packet - open.Length - 2), ("')", 1), (";\n", 1),
            (open, 1), ("A", packet - open.Length - 2), ("');\n", 1), (trailer, 1) };
        (output, refusal) = DumpFilterRunner.RunGenerated(Filter(), fits);
        Assert.Null(refusal);
        Assert.Equal(new RepeatedPiecesStream(fits).Total, output.Written);
    }

    /// <summary>Without the server's max_allowed_packet: an INSERT over 1 GiB (the largest there is, the client's too) is refused.</summary>
    [Fact]
    public void Refuses_an_insert_of_more_than_1_GiB_without_the_servers_max_allowed_packet()
    {
        const string open = "INSERT INTO `t` VALUES (1,'";
        var (output, refusal) = DumpFilterRunner.RunGenerated(new MySqlDumpFilter(Target).CopyAsync, ("-- MariaDB dump 10.19\n", 1), (open, 1),
            ("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", (1L << 30) / 64), ("');\n", 1));
        Assert.NotNull(refusal);
        Assert.Equal("the dump holds an INSERT longer than 1 GiB (the largest max_allowed_packet there is) at byte 22, which no server takes; refused",
            refusal.Message);
        Assert.True(output.Written < 22 + (1L << 30));
    }

    [Fact]
    public void Passes_a_dump_without_database_statements_byte_for_byte()
    {
        var (input, _) = Join(MysqldumpParts(keepEvents: true));
        var text = Encoding.UTF8.GetString(input);
        foreach (var statement in new[]
        {
            "/*!40000 DROP DATABASE IF EXISTS `dns_db`*/;",
            "CREATE DATABASE /*!32312 IF NOT EXISTS*/ `dns_db` /*!40100 DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_0900_ai_ci */ /*!80016 DEFAULT ENCRYPTION='N' */;",
            "USE `dns_db`;",
            "ALTER DATABASE `dns_db` CHARACTER SET utf8mb3 COLLATE utf8mb3_general_ci ;",
            "ALTER DATABASE `dns_db` CHARACTER SET utf8mb4 COLLATE utf8mb4_0900_ai_ci ;",
            "LOCK TABLES `records` WRITE;",
            "UNLOCK TABLES;",
        })
        {
            Assert.Contains(statement, text, StringComparison.Ordinal);
            text = text.Replace(statement, "", StringComparison.Ordinal);
        }

        var plain = Utf8(text);
        // Its header still names the database (which no name in it qualifies).
        AssertFilters(plain, plain, Target, "dns_db", 0, new MySqlFilterOptions(KeepEventsEnabled: true));
    }

    [Fact]
    public void Gives_the_same_outcome_for_every_read_pattern_on_random_fragment_soup()
    {
        string[] fragments =
        [
            "'", "\"", "`", "\\", ";", ";;", "--", "-- ", "#", "/*", "*/", "/*!40000 ", "/*M!100101 ", "*", "/",
            "\n", "\r\n", " ", "x", "USE dns_db;", "DROP DATABASE dns_db;", "DELIMITER ;;\n", "DELIMITER ;\n",
            "DELIMITER //\n", "//", "ALTER DATABASE `dns_db` CHARSET x;", "CREATE DATABASE `dns_db`;", "SET sql_mode='NO_BACKSLASH_ESCAPES';",
            "SET sql_mode='';", "INSERT INTO t VALUES ('a', 1);", "\0", "\u00ff", "delimiter", "/*M!999999\\- x */",
        ];
        var random = new Random(20250301);
        for (var round = 0; round < 300; round++)
        {
            var text = new StringBuilder();
            var count = random.Next(1, 40);
            for (var k = 0; k < count; k++)
            {
                text.Append(fragments[random.Next(fragments.Length)]);
            }

            var input = Encoding.Latin1.GetBytes(text.ToString());
            var whole = DumpFilterRunner.Outcome(new MySqlDumpFilter(Target).CopyAsync, input, [input.Length + 1]);
            foreach (var pattern in new[] { new[] { 1 }, [2], [3], [5], [1, 2, 3, 7] })
            {
                Assert.Equal(whole, DumpFilterRunner.Outcome(new MySqlDumpFilter(Target).CopyAsync, input, pattern));
            }
        }
    }

    // ---- a copy is a copy: qualifiers, DEFINER, events ---------------------------------------------

    private const string Quoted = "`dns_db_restored`";

    /// <summary>Input, expected output (the source is dns_db, given by the caller).</summary>
    public static TheoryData<string, string> Qualifiers => new()
    {
        {
            "DELIMITER ;;\n/*!50003 CREATE*/ /*!50017 DEFINER=`root`@`localhost`*/ /*!50003 TRIGGER `t_ai` AFTER INSERT ON `t` FOR EACH ROW BEGIN\n  INSERT INTO `dns_db`.`audit` VALUES (NEW.id, 'dns_db.t; `dns_db`.x');\n  INSERT INTO dns_db.audit2 SELECT * FROM dns_db . t -- dns_db.t\n  ;\nEND */;;\nDELIMITER ;\n",
            $"DELIMITER ;;\n/*!50003 CREATE*/ /*!50017 DEFINER=`root`@`localhost`*/ /*!50003 TRIGGER `t_ai` AFTER INSERT ON `t` FOR EACH ROW BEGIN\n  INSERT INTO {Quoted}.`audit` VALUES (NEW.id, 'dns_db.t; `dns_db`.x');\n  INSERT INTO {Quoted}.audit2 SELECT * FROM {Quoted} . t -- dns_db.t\n  ;\nEND */;;\nDELIMITER ;\n"
        },
        {
            "/*!50001 CREATE ALGORITHM=UNDEFINED */\n/*!50013 DEFINER=`root`@`localhost` SQL SECURITY DEFINER */\n/*!50001 VIEW `v` AS select `dns_db`.`t`.`id` AS `id` from `dns_db`.`t` where `t`.`s` = \"dns_db.t\" */;\n",
            $"/*!50001 CREATE ALGORITHM=UNDEFINED */\n/*!50013 DEFINER=`root`@`localhost` SQL SECURITY DEFINER */\n/*!50001 VIEW `v` AS select {Quoted}.`t`.`id` AS `id` from {Quoted}.`t` where `t`.`s` = \"dns_db.t\" */;\n"
        },
        {
            "DELIMITER //\nCREATE DEFINER=`root`@`%` PROCEDURE `dns_db`.`p`(IN n INT)\nBEGIN\n  SET @dns_db.x = 1; SELECT @@session.sql_mode, dns_db, 1.5, `dns_db`x;\n  CALL dns_db.q(dns_db.f(n));\nEND//\nDELIMITER ;\n",
            $"DELIMITER //\nCREATE DEFINER=`root`@`%` PROCEDURE {Quoted}.`p`(IN n INT)\nBEGIN\n  SET @dns_db.x = 1; SELECT @@session.sql_mode, dns_db, 1.5, `dns_db`x;\n  CALL {Quoted}.q({Quoted}.f(n));\nEND//\nDELIMITER ;\n"
        },
        {
            "CREATE FUNCTION f() RETURNS INT RETURN (SELECT COUNT(*) FROM \"dns_db\".t, DNS_DB.t, `dns``db`.t);",
            $"CREATE FUNCTION f() RETURNS INT RETURN (SELECT COUNT(*) FROM {Quoted}.t, DNS_DB.t, `dns``db`.t);"
        },
        {
            "INSERT INTO t VALUES ('dns_db.t');\nCREATE TABLE x (a INT REFERENCES dns_db.t (a));\n",
            $"INSERT INTO t VALUES ('dns_db.t');\nCREATE TABLE x (a INT REFERENCES {Quoted}.t (a));\n"
        },
        {
            "CREATE OR REPLACE VIEW dns_db.v AS SELECT a.b.dns_db.c, x.dns_db FROM t;",
            $"CREATE OR REPLACE VIEW {Quoted}.v AS SELECT a.b.dns_db.c, x.dns_db FROM t;"
        },
        {
            // A tester's case against a reader of column positions (reverted): after SET DEFAULT the RENAME's target stayed the source.
            "CREATE PROCEDURE p() ALTER TABLE canary ALTER COLUMN v SET DEFAULT 'x', RENAME TO dns_db.moved;",
            $"CREATE PROCEDURE p() ALTER TABLE canary ALTER COLUMN v SET DEFAULT 'x', RENAME TO {Quoted}.moved;"
        },
    };

    [Theory]
    [MemberData(nameof(Qualifiers))]
    public void Points_qualifiers_naming_the_source_at_the_target_in_object_statements(string input, string expected)
    {
        AssertFilters(Utf8(input), Utf8(expected), Target, null, 0, new MySqlFilterOptions(SourceDatabase: "dns_db"));
    }

    [Fact]
    public void Learns_the_source_from_the_dump_and_lists_other_databases()
    {
        var input = """
            CREATE DATABASE /*!32312 IF NOT EXISTS*/ `shop` /*!40100 DEFAULT CHARACTER SET utf8mb4 */;
            USE `shop`;
            DELIMITER ;;
            CREATE TRIGGER t_ai AFTER INSERT ON t FOR EACH ROW BEGIN INSERT INTO shop.audit VALUES (NEW.id, OLD.id); INSERT INTO `billing`.log SELECT * FROM information_schema.tables, mysql.user, Shop.x, t.c; END;;
            """;
        var expected = $"""


            DELIMITER ;;
            CREATE TRIGGER t_ai AFTER INSERT ON t FOR EACH ROW BEGIN INSERT INTO {Quoted}.audit VALUES (NEW.id, OLD.id); INSERT INTO `billing`.log SELECT * FROM information_schema.tables, mysql.user, Shop.x, t.c; END;;
            """;
        var filter = AssertFilters(Utf8(input), Utf8(expected), Target, "shop", 2);
        Assert.Equal(["Shop", "billing", "t"], filter.OtherDatabaseQualifiers.Order(StringComparer.Ordinal));
        Assert.Equal(1, filter.RewrittenQualifiers);
    }

    /// <summary>
    /// Of the other qualifiers, which name databases whether the server has them or not (tr108: one it lacked went
    /// unnamed): a name only ever before a '.', or a foreign key's; not a table or alias, which also stands alone.
    /// </summary>
    [Fact]
    public void Tells_databases_from_tables_and_aliases_among_other_qualifiers()
    {
        var input = Utf8("""
            CREATE TABLE child (id int, pid int, CONSTRAINT fk FOREIGN KEY (pid) REFERENCES `parents`.`p` (id));
            DELIMITER ;;
            CREATE TRIGGER tg AFTER INSERT ON t FOR EACH ROW BEGIN INSERT INTO audit.log SELECT a.id, t.id, x.y.z FROM t AS a, other.t2 WHERE parents = 1; END;;
            DELIMITER ;
            """);
        var filter = AssertFilters(input, input, Target, null, 0);
        Assert.Equal(["a", "audit", "other", "parents", "t", "x"], filter.OtherDatabaseQualifiers.Order(StringComparer.Ordinal));
        Assert.Equal(["audit", "other", "parents", "x"], filter.DatabaseQualifiers.Order(StringComparer.Ordinal));
    }

    [Fact]
    public void Leaves_qualifiers_alone_when_restoring_under_the_same_name()
    {
        var input = Utf8("CREATE VIEW v AS SELECT * FROM shop.t;");
        var filter = AssertFilters(input, input, "shop", null, 0, new MySqlFilterOptions(SourceDatabase: "shop"));
        Assert.Empty(filter.OtherDatabaseQualifiers);
        Assert.Equal(0, filter.RewrittenQualifiers);
    }

    /// <summary>Input, expected output with DEFINER stripped, expected output with DEFINER=CURRENT_USER.</summary>
    public static TheoryData<string, string, string> Definers => new()
    {
        {
            "/*!50003 CREATE*/ /*!50017 DEFINER=`root`@`localhost`*/ /*!50003 TRIGGER t_ai AFTER INSERT ON t FOR EACH ROW SET @x = 1 */;",
            "/*!50003 CREATE*/ /*!50017 */ /*!50003 TRIGGER t_ai AFTER INSERT ON t FOR EACH ROW SET @x = 1 */;",
            "/*!50003 CREATE*/ /*!50017 DEFINER=CURRENT_USER*/ /*!50003 TRIGGER t_ai AFTER INSERT ON t FOR EACH ROW SET @x = 1 */;"
        },
        {
            "/*!50001 CREATE ALGORITHM=UNDEFINED */ /*!50013 DEFINER=`root`@`localhost` SQL SECURITY DEFINER */ /*!50001 VIEW `v` AS select 1 AS `definer` */;",
            "/*!50001 CREATE ALGORITHM=UNDEFINED */ /*!50013  SQL SECURITY DEFINER */ /*!50001 VIEW `v` AS select 1 AS `definer` */;",
            "/*!50001 CREATE ALGORITHM=UNDEFINED */ /*!50013 DEFINER=CURRENT_USER SQL SECURITY DEFINER */ /*!50001 VIEW `v` AS select 1 AS `definer` */;"
        },
        {
            "CREATE DEFINER='app'@'%' PROCEDURE p() SELECT definer FROM information_schema.routines;",
            "CREATE  PROCEDURE p() SELECT definer FROM information_schema.routines;",
            "CREATE DEFINER=CURRENT_USER PROCEDURE p() SELECT definer FROM information_schema.routines;"
        },
        {
            "CREATE OR REPLACE DEFINER = app@localhost FUNCTION f() RETURNS INT RETURN 1;",
            "CREATE OR REPLACE  FUNCTION f() RETURNS INT RETURN 1;",
            "CREATE OR REPLACE DEFINER=CURRENT_USER FUNCTION f() RETURNS INT RETURN 1;"
        },
        {
            "CREATE DEFINER=`app`@127.0.0.1 /* c */ EVENT e ON SCHEDULE EVERY 1 DAY DISABLE DO SELECT 1;",
            "CREATE  /* c */ EVENT e ON SCHEDULE EVERY 1 DAY DISABLE DO SELECT 1;",
            "CREATE DEFINER=CURRENT_USER /* c */ EVENT e ON SCHEDULE EVERY 1 DAY DISABLE DO SELECT 1;"
        },
        {
            "CREATE DEFINER=CURRENT_USER() VIEW v AS SELECT 1;",
            "CREATE  VIEW v AS SELECT 1;",
            "CREATE DEFINER=CURRENT_USER VIEW v AS SELECT 1;"
        },
        {
            "CREATE DEFINER=`app_role` PROCEDURE p() BEGIN END;",
            "CREATE  PROCEDURE p() BEGIN END;",
            "CREATE DEFINER=CURRENT_USER PROCEDURE p() BEGIN END;"
        },
        {
            "CREATE SQL SECURITY DEFINER VIEW v AS SELECT 1;",
            "CREATE SQL SECURITY DEFINER VIEW v AS SELECT 1;",
            "CREATE SQL SECURITY DEFINER VIEW v AS SELECT 1;"
        },
        {
            "CREATE TABLE definer (definer INT);",
            "CREATE TABLE definer (definer INT);",
            "CREATE TABLE definer (definer INT);"
        },
    };

    [Theory]
    [MemberData(nameof(Definers))]
    public void Keeps_strips_or_rewrites_definers(string input, string stripped, string currentUser)
    {
        AssertFilters(Utf8(input), Utf8(input), Target, null, 0, new MySqlFilterOptions(Definer: DefinerMode.Keep, KeepEventsEnabled: true));
        AssertFilters(Utf8(input), Utf8(stripped), Target, null, 0, new MySqlFilterOptions(Definer: DefinerMode.Strip, KeepEventsEnabled: true));
        AssertFilters(Utf8(input), Utf8(currentUser), Target, null, 0, new MySqlFilterOptions(Definer: DefinerMode.CurrentUser, KeepEventsEnabled: true));
    }

    /// <summary>Input, expected output (events disabled), events that were enabled.</summary>
    public static TheoryData<string, string, string[]> Events => new()
    {
        {
            "/*!50106 CREATE*/ /*!50117 DEFINER=`root`@`localhost`*/ /*!50106 EVENT `ev_purge` ON SCHEDULE EVERY 1 DAY STARTS '2026-11-26 18:12:57' ON COMPLETION NOT PRESERVE ENABLE DO DELETE FROM shop.audit WHERE id < 0 */ ;;",
            $"/*!50106 CREATE*/ /*!50117 DEFINER=`root`@`localhost`*/ /*!50106 EVENT `ev_purge` ON SCHEDULE EVERY 1 DAY STARTS '2026-11-26 18:12:57' ON COMPLETION NOT PRESERVE DISABLE DO DELETE FROM {Quoted}.audit WHERE id < 0 */ ;;",
            ["ev_purge"]
        },
        {
            "CREATE EVENT IF NOT EXISTS shop.`e``1` ON SCHEDULE AT '2030-01-01' DO INSERT INTO t VALUES ('ENABLE DO');\nCREATE EVENT e2 ON SCHEDULE EVERY 1 HOUR DISABLE ON SLAVE COMMENT 'ENABLE' DO SELECT 1;\nCREATE EVENT e3 ON SCHEDULE EVERY 1 HOUR DISABLE DO SELECT 1;\n",
            $"CREATE EVENT IF NOT EXISTS {Quoted}.`e``1` ON SCHEDULE AT '2030-01-01' DISABLE DO INSERT INTO t VALUES ('ENABLE DO');\nCREATE EVENT e2 ON SCHEDULE EVERY 1 HOUR DISABLE ON SLAVE COMMENT 'ENABLE' DO SELECT 1;\nCREATE EVENT e3 ON SCHEDULE EVERY 1 HOUR DISABLE DO SELECT 1;\n",
            ["e`1"]
        },
        {
            "create event do_it on schedule every 1 day enable comment 'x' do select 'DISABLE';",
            "create event do_it on schedule every 1 day DISABLE comment 'x' do select 'DISABLE';",
            ["do_it"]
        },
    };

    [Theory]
    [MemberData(nameof(Events))]
    public void Creates_events_disabled_and_lists_the_enabled_ones(string input, string disabled, string[] enabled)
    {
        var options = new MySqlFilterOptions(SourceDatabase: "shop");
        var filter = AssertFilters(Utf8(input), Utf8(disabled), Target, null, 0, options);
        Assert.Equal(enabled, filter.EnabledEvents);

        var keep = AssertFilters(Utf8(input), Utf8(disabled.Replace("DISABLE DO INSERT", "DO INSERT", StringComparison.Ordinal)
            .Replace("day DISABLE comment", "day enable comment", StringComparison.Ordinal)
            .Replace("PRESERVE DISABLE DO", "PRESERVE ENABLE DO", StringComparison.Ordinal)), Target, null, 0, options with { KeepEventsEnabled = true });
        Assert.Equal(enabled, keep.EnabledEvents);
    }

    [Fact]
    public void Streams_a_large_routine_body_rewriting_all_along()
    {
        var body = new StringBuilder("DELIMITER ;;\nCREATE PROCEDURE p()\nBEGIN\n");
        var expected = new StringBuilder("DELIMITER ;;\nCREATE PROCEDURE p()\nBEGIN\n");
        for (var k = 0; body.Length < 2_000_000; k++)
        {
            var line = $"  INSERT INTO shop.t{k} VALUES ('{new string('s', 300)} shop.x', \"shop\".y, /* shop.z */ 1);\n";
            body.Append(line);
            expected.Append(line.Replace("INTO shop.", $"INTO {Quoted}.", StringComparison.Ordinal)
                .Replace("\"shop\".y", $"{Quoted}.y", StringComparison.Ordinal));
        }

        body.Append("END;;\nDELIMITER ;\n");
        expected.Append("END;;\nDELIMITER ;\n");
        var input = Utf8(body.ToString());
        foreach (var pattern in new[] { new[] { 1 }, [7, 3], [4096], [input.Length] })
        {
            var filter = new MySqlDumpFilter(Target, new MySqlFilterOptions(SourceDatabase: "shop"));
            Assert.Equal(expected.ToString(), Encoding.UTF8.GetString(DumpFilterRunner.Run(filter.CopyAsync, input, pattern)));
        }
    }

    [Fact]
    public void Refuses_to_guess_when_a_source_qualifier_is_followed_by_a_huge_comment()
    {
        var input = Utf8("CREATE VIEW v AS SELECT * FROM shop /* " + new string('x', 100_000) + " */ .t;");
        var filter = new MySqlDumpFilter(Target, new MySqlFilterOptions(SourceDatabase: "shop"));
        Assert.Throws<DumpFilterException>(() => DumpFilterRunner.Run(filter.CopyAsync, input, [4096]));
    }

    [Fact]
    public void Gives_the_same_outcome_for_every_read_pattern_on_object_statement_soup()
    {
        string[] fragments =
        [
            "CREATE ", "DEFINER", "=", "`root`", "@", "'h'", "CURRENT_USER", "()", " TRIGGER ", " VIEW ", " EVENT ", " PROCEDURE ",
            "shop", "`shop`", "\"shop\"", ".", " . ", "x", "ENABLE", " DISABLE ", " DO ", "ON SCHEDULE", "/*!50003 ", "*/", ";",
            ";;", "DELIMITER ;;\n", "DELIMITER ;\n", "'str.shop'", "-- c\n", "/* c */", "@shop.x", "NEW", ".", "1.5", " ", "\n",
            "USE shop;", "SQL SECURITY DEFINER", "OR REPLACE", "ALGORITHM=MERGE",
        ];
        var random = new Random(20261126);
        for (var round = 0; round < 400; round++)
        {
            var text = new StringBuilder();
            var count = random.Next(1, 30);
            for (var k = 0; k < count; k++)
            {
                text.Append(fragments[random.Next(fragments.Length)]);
            }

            var input = Encoding.Latin1.GetBytes(text.ToString());
            var whole = Outcome(input, [input.Length + 1], (DefinerMode)(round % 3));
            foreach (var pattern in new[] { new[] { 1 }, [2], [3], [5], [1, 2, 3, 7] })
            {
                Assert.Equal(whole, Outcome(input, pattern, (DefinerMode)(round % 3)));
            }
        }
    }

    private static string Outcome(byte[] input, int[] pattern, DefinerMode definer)
    {
        var filter = new MySqlDumpFilter(Target, new MySqlFilterOptions(SourceDatabase: "shop", Definer: definer));
        var (written, refusal) = DumpFilterRunner.RunUntilRefused(filter.CopyAsync, input, pattern);
        return refusal is null
            ? $"ok:{Convert.ToHexString(written)}:{string.Join(",", filter.EnabledEvents)}:{string.Join(",", filter.OtherDatabaseQualifiers.Order(StringComparer.Ordinal))}:{filter.RewrittenQualifiers}"
            : $"refused:{refusal.Message}";
    }

    [Fact]
    public void Rejects_a_bad_target_name()
    {
        Assert.Throws<ArgumentException>(() => new MySqlDumpFilter(""));
        Assert.Throws<ArgumentException>(() => new MySqlDumpFilter("a\0b"));
    }

    private static MySqlDumpFilter AssertFilters(
        byte[] input, byte[] expected, string target, string? source, int dropped, MySqlFilterOptions? options = null)
    {
        MySqlDumpFilter? last = null;
        foreach (var pattern in DumpFilterRunner.ReadPatterns(input.Length))
        {
            var filter = options is null ? new MySqlDumpFilter(target) : new MySqlDumpFilter(target, options);
            last = filter;
            var output = DumpFilterRunner.Run(filter.CopyAsync, input, pattern);
            Assert.True(
                expected.AsSpan().SequenceEqual(output),
                $"reads of [{string.Join(",", pattern)}]:\nexpected: {DumpFilterRunner.Show(expected)}\nactual:   {DumpFilterRunner.Show(output)}");
            Assert.Equal(source, filter.SourceDatabase);
            Assert.Equal(dropped, filter.DroppedStatements);
        }

        return last!;
    }

    /// <summary>mysqldump 8.0 --databases dns_db --add-drop-database --routines --triggers --events.</summary>
    private static DumpPart[] MysqldumpParts(bool keepEvents = false) =>
    [
        Keep("""
            -- MySQL dump 10.13  Distrib 8.0.36, for Linux (x86_64)
            --
            -- Host: localhost    Database: dns_db
            -- ------------------------------------------------------
            -- Server version	8.0.36

            /*!40101 SET @OLD_CHARACTER_SET_CLIENT=@@CHARACTER_SET_CLIENT */;
            /*!40101 SET @OLD_CHARACTER_SET_RESULTS=@@CHARACTER_SET_RESULTS */;
            /*!40101 SET @OLD_COLLATION_CONNECTION=@@COLLATION_CONNECTION */;
            /*!50503 SET NAMES utf8mb4 */;
            /*!40103 SET @OLD_TIME_ZONE=@@TIME_ZONE */;
            /*!40103 SET TIME_ZONE='+00:00' */;
            /*!40014 SET @OLD_UNIQUE_CHECKS=@@UNIQUE_CHECKS, UNIQUE_CHECKS=0 */;
            /*!40014 SET @OLD_FOREIGN_KEY_CHECKS=@@FOREIGN_KEY_CHECKS, FOREIGN_KEY_CHECKS=0 */;
            /*!40101 SET @OLD_SQL_MODE=@@SQL_MODE, SQL_MODE='NO_AUTO_VALUE_ON_ZERO' */;
            /*!40111 SET @OLD_SQL_NOTES=@@SQL_NOTES, SQL_NOTES=0 */;

            --
            -- Current Database: `dns_db`
            --


            """),
        Drop("/*!40000 DROP DATABASE IF EXISTS `dns_db`*/;"),
        Keep("\n\n"),
        Drop("CREATE DATABASE /*!32312 IF NOT EXISTS*/ `dns_db` /*!40100 DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_0900_ai_ci */ /*!80016 DEFAULT ENCRYPTION='N' */;"),
        Keep("\n\n"),
        Drop("USE `dns_db`;"),
        Keep("""


            --
            -- Table structure for table `records`
            --

            DROP TABLE IF EXISTS `records`;
            /*!40101 SET @saved_cs_client     = @@character_set_client */;
            /*!50503 SET character_set_client = utf8mb4 */;
            CREATE TABLE `records` (
              `id` int NOT NULL AUTO_INCREMENT,
              `name` varchar(255) NOT NULL,
              `data` blob,
              PRIMARY KEY (`id`)
            ) ENGINE=InnoDB AUTO_INCREMENT=5 DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_0900_ai_ci;
            /*!40101 SET character_set_client = @saved_cs_client */;

            --
            -- Dumping data for table `records`
            --

            
            """),
        Drop("LOCK TABLES `records` WRITE;"),
        Keep("""
            
            /*!40000 ALTER TABLE `records` DISABLE KEYS */;
            INSERT INTO `records` VALUES (1,'USE `dns_db`;','-- not a comment'),(2,'it\'s /* not */ a \"quote\"\\','DROP DATABASE `dns_db`;'),(3,'x''y # no',NULL),(4,'emoji 🦀 ; \n\r\0\Z',0x00FF27);
            /*!40000 ALTER TABLE `records` ENABLE KEYS */;
            
            """),
        Drop("UNLOCK TABLES;"),
        Keep("""
            
            /*!50003 SET @saved_cs_client      = @@character_set_client */ ;
            /*!50003 SET @saved_cs_results     = @@character_set_results */ ;
            /*!50003 SET @saved_col_connection = @@collation_connection */ ;
            /*!50003 SET character_set_client  = utf8mb4 */ ;
            /*!50003 SET character_set_results = utf8mb4 */ ;
            /*!50003 SET collation_connection  = utf8mb4_0900_ai_ci */ ;
            /*!50003 SET @saved_sql_mode       = @@sql_mode */ ;
            /*!50003 SET sql_mode              = 'ONLY_FULL_GROUP_BY,STRICT_TRANS_TABLES,NO_ZERO_IN_DATE,NO_ZERO_DATE,ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION' */ ;
            DELIMITER ;;
            /*!50003 CREATE*/ /*!50017 DEFINER=`root`@`localhost`*/ /*!50003 TRIGGER `records_bi` BEFORE INSERT ON `records` FOR EACH ROW BEGIN
              SET NEW.name = CONCAT(NEW.name, ';');
              IF NEW.name = 'USE `dns_db`;' THEN SET NEW.name = 'x'; END IF; -- USE dns_db;
            END */;;
            DELIMITER ;
            /*!50003 SET sql_mode              = @saved_sql_mode */ ;
            /*!50003 SET character_set_client  = @saved_cs_client */ ;
            /*!50003 SET character_set_results = @saved_cs_results */ ;
            /*!50003 SET collation_connection  = @saved_col_connection */ ;

            --
            -- Dumping events for database 'dns_db'
            --
            /*!50106 SET @save_time_zone= @@TIME_ZONE */ ;
            /*!50106 DROP EVENT IF EXISTS `purge` */;
            DELIMITER ;;
            /*!50003 SET @saved_cs_client      = @@character_set_client */ ;;
            /*!50003 SET time_zone             = 'SYSTEM' */ ;;
            /*!50106 CREATE*/ /*!50117 DEFINER=`root`@`localhost`*/ /*!50106 EVENT `purge` ON SCHEDULE EVERY 1 DAY STARTS '2024-01-01 00:00:00' ON COMPLETION NOT PRESERVE 
            """),
        Rewrite("ENABLE", keepEvents ? "ENABLE" : "DISABLE"),
        Keep("""
             DO DELETE FROM records WHERE name = ';;' */ ;;
            /*!50003 SET time_zone             = @saved_time_zone */ ;;
            DELIMITER ;
            /*!50106 SET TIME_ZONE= @save_time_zone */ ;

            --
            -- Dumping routines for database 'dns_db'
            --
            /*!50003 DROP PROCEDURE IF EXISTS `add_record` */;
            /*!50003 SET @saved_cs_client      = @@character_set_client */ ;
            /*!50003 SET sql_mode              = 'STRICT_TRANS_TABLES' */ ;

            """),
        Rewrite(
            "ALTER DATABASE `dns_db` CHARACTER SET utf8mb3 COLLATE utf8mb3_general_ci ;",
            $"ALTER DATABASE `{Target}` CHARACTER SET utf8mb3 COLLATE utf8mb3_general_ci ;"),
        Keep("""

            DELIMITER ;;
            CREATE DEFINER=`root`@`localhost` PROCEDURE `add_record`(IN n VARCHAR(255))
            BEGIN
              /* a comment; with USE dns_db; */
              INSERT INTO records (name) VALUES (CONCAT(n, '; DROP DATABASE dns_db;'));
              # USE other;
              SELECT "double ""quoted"" ;" AS x;
            END ;;
            DELIMITER ;

            """),
        Rewrite(
            "ALTER DATABASE `dns_db` CHARACTER SET utf8mb4 COLLATE utf8mb4_0900_ai_ci ;",
            $"ALTER DATABASE `{Target}` CHARACTER SET utf8mb4 COLLATE utf8mb4_0900_ai_ci ;"),
        Keep("""

            /*!50003 SET sql_mode              = @saved_sql_mode */ ;
            /*!50003 SET character_set_client  = @saved_cs_client */ ;
            /*!40103 SET TIME_ZONE=@OLD_TIME_ZONE */;

            /*!40101 SET SQL_MODE=@OLD_SQL_MODE */;
            /*!40014 SET FOREIGN_KEY_CHECKS=@OLD_FOREIGN_KEY_CHECKS */;
            /*!40014 SET UNIQUE_CHECKS=@OLD_UNIQUE_CHECKS */;
            /*!40101 SET CHARACTER_SET_CLIENT=@OLD_CHARACTER_SET_CLIENT */;
            /*!40101 SET CHARACTER_SET_RESULTS=@OLD_CHARACTER_SET_RESULTS */;
            /*!40101 SET COLLATION_CONNECTION=@OLD_COLLATION_CONNECTION */;
            /*!40111 SET SQL_NOTES=@OLD_SQL_NOTES */;

            -- Dump completed on 2025-03-01 12:00:00

            """),
    ];
}
