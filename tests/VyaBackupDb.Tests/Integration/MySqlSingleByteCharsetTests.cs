using System.Text;
using VyaBackupDb.Engines.MySql;

namespace VyaBackupDb.Tests.Integration;

/// <summary>
/// Each one-byte set the restore reads as MariaDB does: its 256 bytes are the characters the server converts them to,
/// those it converts to '?' (or, in tis620, to U+FFFD) none, and the server writes each character back as its byte.
/// </summary>
[Trait("Category", "Integration")]
public sealed class MySqlSingleByteCharsetTests
{
    [SkippableFact]
    public async Task Reads_every_byte_as_the_server_does()
    {
        await TestServers.RequireMySqlAsync();
        var sets = MySqlSingleByteCharset.All.ToList();
        Assert.Equal(18, sets.Count);
        foreach (var set in sets)
        {
            var q = set.Name; // a name of ours, a word
            var server = ((string)(await MySqlTestDb.ScalarAsync(null,
                $"SELECT GROUP_CONCAT(HEX(CONVERT(CONVERT(UNHEX(LPAD(HEX(seq), 2, '0')) USING {q}) USING utf8mb4)) ORDER BY seq) FROM mysql.seq_0_to_255"))!)
                .Split(',');
            var text = new StringBuilder();
            for (var b = 0; b < 256; b++)
            {
                var ours = set.ToText([(byte)b]);
                if (ours is null)
                {
                    Assert.True(server[b] is "3F" or "EFBFBD", $"{set.Name} 0x{b:X2}: no character to us, {server[b]} to the server");
                    continue;
                }

                Assert.True(Convert.ToHexString(Encoding.UTF8.GetBytes(ours)) == server[b], $"{set.Name} 0x{b:X2}: {ours} to us, {server[b]} to the server");
                text.Append(ours);
            }

            // And back: each character as its byte.
            Assert.Equal(Convert.ToHexString(set.FromText(text.ToString())!),
                (string?)await MySqlTestDb.ScalarAsync(null, $"SELECT HEX(CONVERT(@p0 USING {q}))", text.ToString()));
        }
    }
}
