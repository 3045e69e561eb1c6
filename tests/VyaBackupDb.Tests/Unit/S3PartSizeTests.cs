using VyaBackupDb.Storage.S3;

namespace VyaBackupDb.Tests.Unit;

/// <summary>How S3 parts grow with an upload: any object up to S3's 5 TiB fits in 10,000 parts, memory stays bounded.</summary>
public sealed class S3PartSizeTests
{
    private const long MiB = 1024 * 1024;

    [Theory]
    [InlineData(5)]       // part_size_mb's minimum
    [InlineData(16)]      // its default
    [InlineData(100)]
    [InlineData(1024)]    // its maximum
    public void Ten_thousand_parts_hold_more_than_5_TiB_with_parts_of_at_most_1_GiB(int partSizeMb)
    {
        var size = (int)(partSizeMb * MiB);
        long sent = 0;
        var largest = 0;
        for (var part = 0; part < S3Storage.MaxParts; part++)
        {
            sent += size;
            largest = Math.Max(largest, size);
            size = S3Storage.NextPartSize(size, sent, S3Storage.MaxParts);
        }

        Assert.True(sent > 5 * MiB * MiB, $"{sent / (MiB * MiB)} TiB");
        Assert.Equal(S3Storage.MaxPartSize, largest);
    }

    [Theory]
    [InlineData(1L << 30, 16)]            // 1 GiB: the configured size throughout
    [InlineData(15L << 30, 16)]           // 15 GiB: 960 parts of 16 MiB
    [InlineData(100L << 30, 128)]         // 100 GiB: 128 MiB parts by the end
    [InlineData(1L << 40, 1024)]          // 1 TiB: 1 GiB parts by the end
    public void The_part_size_is_about_a_thousandth_of_what_was_sent(long total, int lastPartMb)
    {
        var size = (int)(16 * MiB);
        long sent = 0;
        var parts = 0;
        while (sent < total)
        {
            sent += size;
            parts++;
            if (sent < total)
            {
                size = S3Storage.NextPartSize(size, sent, S3Storage.MaxParts);
            }
        }

        Assert.Equal(lastPartMb * MiB, size);
        Assert.True(parts <= S3Storage.MaxParts, $"{parts} parts");
    }
}
