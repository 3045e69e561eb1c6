using VyaBackupDb.Config;
using VyaBackupDb.Errors;
using VyaBackupDb.Retention;

namespace VyaBackupDb.Tests.Unit;

public sealed class RetentionConfigTests
{
    private const string Path = "/etc/vya/config.yaml";

    [Fact]
    public void Top_level_policy_is_the_default_and_an_instance_policy_replaces_it()
    {
        var config = ConfigLoader.Parse("""
            backup_dir: /b
            retention:
              keep_last: 3
              keep_daily: 7
              keep_weekly: 4
              keep_monthly: 12
              keep_yearly: 2
              keep_hourly: 24
              keep_within: 30d
            instances:
              - {id: 1, dbms: mysql, user: u}
              - id: 2
                dbms: postgresql
                user: u
                retention:
                  keep_daily: 2
              - id: 3
                dbms: postgresql
                user: u
                retention: {}
            """, Path);

        var top = config.RetentionFor(config.GetInstance(1));
        Assert.Equal(new RetentionPolicy
        {
            KeepLast = 3, KeepDaily = 7, KeepWeekly = 4, KeepMonthly = 12, KeepYearly = 2, KeepHourly = 24,
            KeepWithin = new RetentionDuration(0, 0, 30, 0),
        }, top);
        Assert.Equal("keep_last=3, keep_hourly=24, keep_daily=7, keep_weekly=4, keep_monthly=12, keep_yearly=2, keep_within=30d", top!.Describe());
        // The instance's mapping replaces the default as a whole: no keep_last=3 inherited.
        Assert.Equal(new RetentionPolicy { KeepDaily = 2 }, config.RetentionFor(config.GetInstance(2)));
        // An empty mapping: no rule, retention off for this instance.
        Assert.True(config.RetentionFor(config.GetInstance(3))!.IsEmpty);
    }

    [Fact]
    public void Without_retention_there_is_no_policy()
    {
        var config = ConfigLoader.Parse("backup_dir: /b\ninstances:\n  - {id: 1, dbms: mysql, user: u}\n", Path);
        Assert.Null(config.RetentionFor(config.GetInstance(1)));
    }

    [Theory]
    [InlineData("30d", 0, 0, 30, 0, "30d")]
    [InlineData("12h", 0, 0, 0, 12, "12h")]
    [InlineData("2w", 0, 2, 0, 0, "2w")]
    [InlineData("1y", 1, 0, 0, 0, "1y")]
    [InlineData("1y2w3d4h", 1, 2, 3, 4, "1y2w3d4h")]
    [InlineData("3d3d", 0, 0, 6, 0, "6d")]
    [InlineData("0d", 0, 0, 0, 0, "0h")]
    public void Durations(string text, int years, int weeks, int days, int hours, string shown)
    {
        Assert.True(RetentionDuration.TryParse(text, out var duration));
        Assert.Equal(new RetentionDuration(years, weeks, days, hours), duration);
        Assert.Equal(shown, duration.ToString());
    }

    [Theory]
    [InlineData("30")]
    [InlineData("d")]
    [InlineData("30m")]
    [InlineData("30 d")]
    [InlineData("-1d")]
    [InlineData("1.5d")]
    [InlineData("99999999999d")]
    [InlineData("")]
    public void Bad_durations(string text) => Assert.False(RetentionDuration.TryParse(text, out _));

    [Fact]
    public void A_huge_duration_reaches_back_to_the_beginning_of_time()
    {
        Assert.True(RetentionDuration.TryParse("9999y", out var duration));
        Assert.Equal(DateTime.MinValue, duration.Before(new DateTime(2026, 1, 13, 0, 0, 0, DateTimeKind.Utc)));
    }

    [Theory]
    [InlineData("backup_dir: /b\nretention:\n  keep_dayly: 7\n", ":3: retention.keep_dayly: unknown key (known: keep_last, ")]
    [InlineData("backup_dir: /b\nretention:\n  keep_daily: -1\n", ":3: retention.keep_daily: -1 is negative")]
    [InlineData("backup_dir: /b\nretention:\n  keep_daily: seven\n", ":3: retention.keep_daily: 'seven' is not a whole number")]
    [InlineData("backup_dir: /b\nretention:\n  keep_within: 30\n", ":3: retention.keep_within: '30' is not a duration like 30d, 12h, 2w, 1y")]
    [InlineData("backup_dir: /b\nretention:\n  keep_within: 1 month\n", ":3: retention.keep_within: '1 month' is not a duration")]
    [InlineData("backup_dir: /b\nretention: 7\n", ":2: retention: expected a mapping")]
    [InlineData("backup_dir: /b\ninstances:\n  - id: 1\n    dbms: mysql\n    user: u\n    retention:\n      keep_last: 2\n      keep_monthly: x\n",
        ":8: instances[0].retention.keep_monthly: 'x' is not a whole number")]
    [InlineData("backup_dir: /b\ninstances:\n  - id: 1\n    dbms: mysql\n    user: u\n    retention: [1]\n", ":6: instances[0].retention: expected a mapping")]
    [InlineData("backup_dir: /b\ninstances:\n  - id: 1\n    dbms: mysql\n    user: u\n    retention: {keep: 1}\n", ":6: instances[0].retention.keep: unknown key")]
    public void Errors_name_the_file_line_and_key(string yaml, string expected)
    {
        var error = Assert.Throws<ConfigException>(() => ConfigLoader.Parse(yaml, Path));
        Assert.StartsWith(Path + ":", error.Message, StringComparison.Ordinal);
        Assert.Contains(expected, error.Message, StringComparison.Ordinal);
        Assert.Equal(ExitCode.UsageOrConfig, error.ExitCode);
    }
}
