using VyaBackupDb.Catalog;
using VyaBackupDb.Config;
using VyaBackupDb.Pipeline;

namespace VyaBackupDb.Tests.Unit;

public sealed class BackupNameTests
{
    [Theory]
    [InlineData("20260113_155440_mysql_dns_db.zip", "dns_db", Dbms.MySql, Compression.Zip)]
    [InlineData("20260113_155440_mysql_dns_db.sql.zst", "dns_db", Dbms.MySql, Compression.Zstd)]
    [InlineData("20260113_155440_postgresql_shop.sql", "shop", Dbms.PostgreSql, Compression.None)]
    [InlineData("20260113_155440_postgresql_my.db.sql.gz", "my.db", Dbms.PostgreSql, Compression.Gzip)]
    [InlineData("20260113_155440_mysql_a%60b.sql.zst", "a`b", Dbms.MySql, Compression.Zstd)]
    // The old tool wrote names as they are: a '%' that is not how this tool encodes a name is the name's own.
    [InlineData("20260113_155440_mysql_lp%41.zip", "lp%41", Dbms.MySql, Compression.Zip)]
    [InlineData("20260113_155440_mysql_lp%zz.zip", "lp%zz", Dbms.MySql, Compression.Zip)]
    [InlineData("20260113_155440_mysql_100%.sql.gz", "100%", Dbms.MySql, Compression.Gzip)]
    public void Parses_the_current_format(string fileName, string database, Dbms dbms, Compression compression)
    {
        var name = BackupName.TryParse(fileName);
        Assert.NotNull(name);
        Assert.Equal(new DateTime(2026, 1, 13, 15, 54, 40, DateTimeKind.Utc), name.TimestampUtc);
        Assert.Equal((database, dbms, compression), (name.Database, name.Dbms, name.Compression));
    }

    [Theory]
    [InlineData("dns_db_20260110_020000.sql.gz", "dns_db", Compression.Gzip)]
    [InlineData("dns_db_20260110_020000.sql", "dns_db", Compression.None)]
    [InlineData("a_b_c_20260110_020000.zip", "a_b_c", Compression.Zip)]
    [InlineData("lp%41_20260110_020000.sql.gz", "lp%41", Compression.Gzip)]
    [InlineData("a%60b_20260110_020000.sql.gz", "a%60b", Compression.Gzip)]
    public void Parses_the_old_format_without_a_dbms(string fileName, string database, Compression compression)
    {
        var name = BackupName.TryParse(fileName);
        Assert.NotNull(name);
        Assert.Equal(new DateTime(2026, 1, 10, 2, 0, 0, DateTimeKind.Utc), name.TimestampUtc);
        Assert.Equal((database, (Dbms?)null, compression), (name.Database, name.Dbms, name.Compression));
    }

    [Theory]
    [InlineData("notes.txt")]
    [InlineData("dump.sql")]
    [InlineData("20261399_155440_mysql_x.sql")]
    [InlineData("20260113_155440_mysql_.sql")]
    [InlineData(".vya-tmp-0123456789ab-20260113_155440_mysql_x")]
    public void Rejects_what_is_not_a_backup_name(string fileName) => Assert.Null(BackupName.TryParse(fileName));

    [Theory]
    [InlineData("dns_db")]
    [InlineData("a`b")]
    [InlineData("x';DROP DATABASE y;--")]
    [InlineData("../../tmp/p")]
    [InlineData("-f")]
    [InlineData("white space")]
    [InlineData("ação")]
    [InlineData("emoji 😀 db")]
    [InlineData("100%")]
    [InlineData("my.db")]
    public void Hostile_names_round_trip_and_stay_one_plain_file_name(string database)
    {
        var name = new BackupName(new DateTime(2026, 1, 13, 15, 54, 40, DateTimeKind.Utc), Dbms.MySql, database, Compression.Zstd);
        var fileName = name.FileName;
        Assert.Matches("^[A-Za-z0-9_%.-]+$", fileName);
        Assert.DoesNotContain("..", fileName, StringComparison.Ordinal);
        Assert.DoesNotContain('/', fileName);
        Assert.Equal(name, BackupName.TryParse(fileName));
    }

    [Fact]
    public void Encrypted_backups_carry_an_extra_age_extension()
    {
        var name = new BackupName(new DateTime(2026, 1, 13, 15, 54, 40, DateTimeKind.Utc), Dbms.PostgreSql, "shop", Compression.Zstd, Encrypted: true);
        Assert.Equal("20260113_155440_postgresql_shop.sql.zst.age", name.FileName);
        Assert.Equal(name, BackupName.TryParse(name.FileName));
        Assert.Equal(new BackupName(new DateTime(2026, 1, 10, 2, 0, 0, DateTimeKind.Utc), null, "dns_db", Compression.Gzip, Encrypted: true),
            BackupName.TryParse("dns_db_20260110_020000.sql.gz.age"));
        Assert.False(BackupName.TryParse("20260113_155440_postgresql_shop.sql.zst")!.Encrypted);
    }

    [Fact]
    public void Plain_names_are_written_as_the_old_tool_wrote_them()
    {
        var name = new BackupName(new DateTime(2026, 1, 13, 15, 54, 40, DateTimeKind.Utc), Dbms.MySql, "dns_db", Compression.Zip);
        Assert.Equal("20260113_155440_mysql_dns_db.zip", name.FileName);
    }

    /// <summary>
    /// Which DBMS made an old file is read from the dump tool's header lines only: a MariaDB dump whose
    /// row held the line "-- PostgreSQL database dump" was called a PostgreSQL dump (a tester's find).
    /// </summary>
    [Theory]
    [InlineData("/*M!999999\\- enable the sandbox mode */ \n-- MariaDB dump 10.19  Distrib 10.11.6-MariaDB\n--\n-- Host: 127.0.0.1\n"
        + "INSERT INTO `t` VALUES (1,'\n-- PostgreSQL database dump\n');\n", Dbms.MySql)]
    [InlineData("-- MySQL dump 10.13  Distrib 8.0.36\n", Dbms.MySql)]
    [InlineData("--\n-- PostgreSQL database dump\n--\n\n-- Dumped from database version 15.18\n"
        + "COPY public.t (v) FROM stdin;\n-- MariaDB dump 10.19\n", Dbms.PostgreSql)]
    [InlineData("CREATE TABLE t (v text);\nINSERT INTO t VALUES\n('a'),\n('b');\n-- PostgreSQL database dump\n", null)]
    public void The_dbms_of_an_old_dump_comes_from_its_header_lines(string head, Dbms? expected) =>
        Assert.Equal(expected, VyaBackupDb.Operations.RestoreOperation.DbmsFromContent(head));
}
