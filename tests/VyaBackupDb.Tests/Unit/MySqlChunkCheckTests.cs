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
    // Read apart by an INSERT and by LOAD DATA ('\%' keeps its backslash in a literal, '\N' is NULL to LOAD DATA,
    // 1e400 is refused by an INSERT and clamped by LOAD DATA); the dump writes none of them.
    [InlineData("INSERT INTO `t` VALUES (1,'\\%\\_');\n")]
    [InlineData("INSERT INTO `t` VALUES (1,'\\N');\n")]
    [InlineData("INSERT INTO `t` VALUES (1,'\\t');\n")]
    [InlineData("INSERT INTO `t` VALUES (1e400);\n")]
    [InlineData("INSERT INTO `t` VALUES (-1E+400);\n")]
    [InlineData("INSERT INTO `t` VALUES (1.2.3);\n")]
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

    [Fact]
    public void A_chunk_becomes_LOAD_DATA_input_with_the_same_values()
    {
        var columns = new Dictionary<string, IReadOnlyList<MySqlLoadData.Column>>(StringComparer.Ordinal)
        {
            ["t"] =
            [
                new("id", ColumnKind.Number, true), new("s", ColumnKind.Text, true), new("b", ColumnKind.Binary, true),
                new("bits", ColumnKind.Bit, true), new("f", ColumnKind.Float, true), new("g", ColumnKind.Number, false),
            ],
        };
        using var output = new ChunkBuffer(16);
        var chunk = Encoding.UTF8.GetBytes(Header
            + "INSERT INTO `t` VALUES (1,'a\\'b\\\\c\\0\\n\tx',X'00FF',b'101',-1.5e-300),(2,'',X'',b'0',NULL);\n"
            + "INSERT INTO `t` VALUES (3,NULL,NULL,NULL,0.10000000149011612);\n");

        var plan = MySqlLoadData.Convert(chunk, columns, output, "data/000001.sql");

        Assert.Equal(("t", 3L, false), (plan.Table, plan.Rows, plan.History));
        Assert.Equal(["`id`", "`s`", "@v2", "@v3", "`f`"], plan.Columns);
        Assert.Equal(["`b` = UNHEX(@v2)", "`bits` = CAST(CONV(@v3, 2, 10) AS UNSIGNED)"], plan.Expressions);
        Assert.Equal(
            "1\ta\\'b\\\\c\\0\\n\\tx\t00FF\t101\t-1.5e-300\n2\t\t\t0\t\\N\n3\t\\N\t\\N\t\\N\t0.10000000149011612\n",
            Encoding.UTF8.GetString(output.Memory.Span));

        // A literal of another kind than the dump writes for its column is refused.
        Assert.Throws<DumpFilterException>(() => MySqlLoadData.Convert(
            Encoding.UTF8.GetBytes(Header + "INSERT INTO `t` VALUES ('1','s',X'',b'1',1);\n"), columns, output, "data/000002.sql"));
        Assert.Throws<DumpFilterException>(() => MySqlLoadData.Convert(
            Encoding.UTF8.GetBytes(Header + "INSERT INTO `t` VALUES (1,'s',X'',b'1');\n"), columns, output, "data/000003.sql"));
    }
}
