using System.Text;
using VyaBackupDb.Catalog;
using VyaBackupDb.Config;
using VyaBackupDb.Engines.Postgres;
using VyaBackupDb.Errors;

namespace VyaBackupDb.Tests.Unit;

/// <summary>The manifest's settings and the config key that keeps owners: the pure parts.</summary>
public sealed class DatabaseSettingsTests
{
    [Fact]
    public void Stored_list_settings_are_split_as_pg_dump_splits_them()
    {
        Assert.Equal(["$user", "public", "we ird", "q\"uote"], PostgresEngine.SplitSettingList("\"$user\", public, \"we ird\", \"q\"\"uote\""));
        Assert.Equal([], PostgresEngine.SplitSettingList("  "));
        Assert.Null(PostgresEngine.SplitSettingList("\"open"));
        Assert.Null(PostgresEngine.SplitSettingList("a b"));
    }

    [Fact]
    public void A_version_1_manifest_without_settings_still_loads()
    {
        var json = """
            {"schema_version": 1, "tool_version": "0.1.0", "data_file": "f.sql", "instance_id": 1, "instance_name": "i", "dbms": "mysql",
             "server_flavor": "MariaDB", "server_version": "10.11", "database": "d", "dump_tool": "mariadb-dump", "dump_tool_version": "x",
             "compression": "none", "started_utc": "2026-01-13T15:54:40Z", "finished_utc": "2026-01-13T15:54:41Z", "plain_bytes": 1,
             "stored_bytes": 1, "plain_sha256": "a", "stored_sha256": "a",
             "inventory": {"tables": [{"name": "t", "rows": 1, "exact": false}], "sequences": [], "objects": {"views": 0, "routines": 0, "triggers": 0, "events": 0}}}
            """;
        var manifest = BackupManifest.FromJson(Encoding.UTF8.GetBytes(json));
        Assert.Null(manifest.Settings);
        Assert.Null(manifest.Inventory.OutsideSnapshot);
        Assert.Equal(new TableRows("t", 1, false), Assert.Single(manifest.Inventory.Tables));
        Assert.DoesNotContain("\"settings\"", Encoding.UTF8.GetString(manifest.ToJson()), StringComparison.Ordinal);
        Assert.DoesNotContain("\"history\"", Encoding.UTF8.GetString(manifest.ToJson()), StringComparison.Ordinal);
    }

    /// <summary>Found by a tester (tr106): a planted manifest's plain_bytes -1 was taken as a size (every read went past it).</summary>
    [Theory]
    [InlineData("\"plain_bytes\": -1, \"stored_bytes\": 1")]
    [InlineData("\"plain_bytes\": 1, \"stored_bytes\": -5")]
    public void A_manifest_with_a_negative_size_is_damaged(string sizes)
    {
        var json = """
            {"schema_version": 1, "tool_version": "0.1.0", "data_file": "f.sql", "instance_id": 1, "instance_name": "i", "dbms": "mysql",
             "server_flavor": "MariaDB", "server_version": "10.11", "database": "d", "dump_tool": "mariadb-dump", "dump_tool_version": "x",
             "compression": "none", "started_utc": "2026-01-13T15:54:40Z", "finished_utc": "2026-01-13T15:54:41Z", SIZES,
             "plain_sha256": "a", "stored_sha256": "a",
             "inventory": {"tables": [], "sequences": [], "objects": {"views": 0, "routines": 0, "triggers": 0, "events": 0}}}
            """.Replace("SIZES", sizes, StringComparison.Ordinal);
        var e = Assert.Throws<System.Text.Json.JsonException>(() => BackupManifest.FromJson(Encoding.UTF8.GetBytes(json)));
        Assert.Equal("a size (plain_bytes, stored_bytes) is negative", e.Message);
    }

    [Fact]
    public void Owners_is_read_for_postgresql_and_refused_for_mysql_naming_the_line()
    {
        const string Config = """
            backup_dir: /b
            instances:
              - {id: 1, dbms: postgresql, user: u, owners: true}
              - {id: 2, dbms: postgresql, user: u}
            """;
        var config = ConfigLoader.Parse(Config, "/etc/vya/config.yaml");
        Assert.True(config.GetInstance(1).Owners);
        Assert.False(config.GetInstance(2).Owners);

        var error = Assert.Throws<ConfigException>(() => ConfigLoader.Parse("""
            backup_dir: /b
            instances:
              - id: 1
                dbms: mysql
                user: u
                owners: true
            """, "/etc/vya/config.yaml"));
        Assert.Contains("/etc/vya/config.yaml:6", error.Message, StringComparison.Ordinal);
        Assert.Contains("owners", error.Message, StringComparison.Ordinal);
        Assert.Contains("postgresql instances only", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_value_shown_in_an_error_is_one_short_line()
    {
        Assert.Equal("a?b", DatabaseSettings.Shown("a\nb"));
        Assert.Equal(new string('x', 80) + "...", DatabaseSettings.Shown(new string('x', 200)));
    }
}
