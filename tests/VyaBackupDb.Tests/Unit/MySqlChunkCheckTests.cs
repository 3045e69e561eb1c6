using System.Text;
using VyaBackupDb.Engines;
using VyaBackupDb.Engines.MySql;

namespace VyaBackupDb.Tests.Unit;

/// <summary>
/// A MySQL set's data chunk is checked before any of it reaches the server: what the parallel
/// dump writes passes (with its row count), anything planted is refused.
/// </summary>
public sealed class MySqlChunkCheckTests
{
    private static readonly HashSet<string> Tables = new(["t", "we`ird 'n\"ame", "other"], StringComparer.Ordinal);

    private static string Header => Encoding.UTF8.GetString(MySqlTableReader.ChunkHeader);

    private static (string Table, long Rows) Check(string body) =>
        MySqlChunkCheck.Check(Encoding.UTF8.GetBytes(Header + body), Tables, "data/000001.sql");

    [Fact]
    public void What_the_dump_writes_passes_with_its_rows()
    {
        var result = Check(
            "INSERT INTO `t` VALUES (1,'a\\'b\\\\c\\0\\n',X'00FF',b'101',NULL,-1.5e-300),(2,'',X'',b'0','x;DROP TABLE t;',3);\n"
            + "INSERT INTO `t` VALUES (3,'😀 ü',NULL,NULL,NULL,12345678901234.123456);\n");
        Assert.Equal(("t", 3L), result);
        Assert.Equal(("we`ird 'n\"ame", 1L), Check("INSERT INTO `we``ird 'n\"ame` (`a`,`b``c`) VALUES (1,'2');\n"));
    }

    [Theory]
    [InlineData("DROP TABLE `t`;\n")]
    [InlineData("INSERT INTO `t` VALUES (1);\nDROP TABLE `t`;\n")]
    [InlineData("INSERT INTO `t` VALUES (1); DROP TABLE `t`;\n")]
    [InlineData("INSERT INTO `t` VALUES (1);\nINSERT INTO `other` VALUES (1);\n")]
    [InlineData("INSERT INTO `other_db`.`t` VALUES (1);\n")]
    [InlineData("INSERT INTO `missing` VALUES (1);\n")]
    [InlineData("INSERT INTO `t` VALUES (1),(2)")]
    [InlineData("INSERT INTO `t` VALUES ('unterminated);\n")]
    [InlineData("INSERT INTO `t` VALUES ((SELECT 1));\n")]
    [InlineData("INSERT INTO `t` VALUES (LOAD_FILE('/etc/passwd'));\n")]
    [InlineData("INSERT INTO `t` VALUES (1) /* c */;\n")]
    [InlineData("INSERT INTO `t` VALUES (X'0G');\n")]
    [InlineData("LOAD DATA LOCAL INFILE '/etc/passwd' INTO TABLE `t`;\n")]
    [InlineData("SELECT * FROM `t` INTO OUTFILE '/tmp/x';\n")]
    [InlineData("INSERT INTO `t` SELECT * FROM `mysql`.`user`;\n")]
    [InlineData("")]
    public void Anything_else_is_refused(string body)
    {
        var error = Assert.Throws<DumpFilterException>(() => Check(body));
        Assert.Contains("data/000001.sql", error.Message, StringComparison.Ordinal);
        Assert.Contains("refused", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_chunk_without_the_header_is_refused()
    {
        Assert.Throws<DumpFilterException>(() =>
            MySqlChunkCheck.Check("SET NAMES latin1;\nINSERT INTO `t` VALUES (1);\n"u8, Tables, "data/000002.sql"));
    }

    [Fact]
    public void Values_are_written_as_literals_that_read_back_as_the_same_bytes()
    {
        using var chunk = new ChunkBuffer(16);
        MySqlTableReader.WriteValue(chunk, ColumnKind.Text, "a'b\\c\0d\n\r\u001a😀"u8);
        MySqlTableReader.WriteValue(chunk, ColumnKind.Binary, [0x00, 0xAB, 0xFF]);
        MySqlTableReader.WriteValue(chunk, ColumnKind.Binary, []);
        MySqlTableReader.WriteValue(chunk, ColumnKind.Bit, "101"u8);
        Assert.Equal("'a\\'b\\\\c\\0d\\n\\r\\Z😀'X'00ABFF'X''b'101'", Encoding.UTF8.GetString(chunk.Memory.Span));
    }
}
