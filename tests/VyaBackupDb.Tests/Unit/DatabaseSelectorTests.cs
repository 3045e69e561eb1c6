using VyaBackupDb.Config;
using VyaBackupDb.Operations;

namespace VyaBackupDb.Tests.Unit;

public sealed class DatabaseSelectorTests
{
    private static InstanceConfig Instance(Dbms dbms, string[] include, string[] exclude) =>
        new(1, "i", dbms, "h", 1, "u", PasswordSource.None, true, include, exclude, null);

    [Theory]
    [InlineData("*", "anything", true)]
    [InlineData("dns_*", "dns_db", true)]
    [InlineData("dns_*", "web_dns_db", false)]
    [InlineData("db?", "db1", true)]
    [InlineData("db?", "db12", false)]
    [InlineData("db[12]", "db2", true)]
    [InlineData("db[!12]", "db2", false)]
    [InlineData("a.b", "axb", false)]
    [InlineData("tmp_*", "TMP_x", false)]
    [InlineData("db", "db\n", false)]
    [InlineData("db*", "db\n", true)]
    [InlineData("q?", "q\U0001F600", true)]
    [InlineData("q?", "q\u00e9", true)]
    public void Globs_match_whole_names(string pattern, string name, bool matches) =>
        Assert.Equal(matches, DatabaseSelector.GlobMatches(pattern, name));

    /// <summary>A pattern no name could match sensibly is the config's error (it crashed a backup run with a stack trace).</summary>
    [Theory]
    [InlineData("db_[z-a]*", "a range in its [...] set is reversed")]
    [InlineData("[]", "its [...] set is not valid")]
    [InlineData("db_[!]x", "its [...] set is not valid")]
    public void A_pattern_with_a_bad_set_is_a_config_error(string pattern, string problem)
    {
        var error = Assert.Throws<VyaBackupDb.Errors.ConfigException>(() => ConfigLoader.Parse($"""
            backup_dir: /var/backups/vya
            instances:
              - id: 1
                name: main
                dbms: postgresql
                user: vya
                exclude: ["{pattern}"]
            """, "/etc/vya/config.yaml"));
        Assert.Equal($"/etc/vya/config.yaml:7: instances[0].exclude: '{pattern}' is not a valid pattern: {problem}", error.Message);
    }

    [Fact]
    public void System_databases_are_never_selected_even_by_star()
    {
        var mysql = DatabaseSelector.Select(Instance(Dbms.MySql, ["*"], []),
            ["information_schema", "performance_schema", "mysql", "sys", "dns_db"]);
        Assert.Equal(["dns_db"], mysql);
        var pg = DatabaseSelector.Select(Instance(Dbms.PostgreSql, ["*"], []), ["template0", "template1", "postgres", "shop"]);
        Assert.Equal(["postgres", "shop"], pg);
    }

    /// <summary>Found by a tester: a nightly glob backup during a restore backed up its half-loaded staging database (or failed on it once gone).</summary>
    [Fact]
    public void Databases_a_restore_or_verify_is_loading_are_never_selected_by_a_glob()
    {
        var selected = DatabaseSelector.Select(Instance(Dbms.PostgreSql, ["*"], []),
            ["shop", "vya_restore_5dc0fa40_shop", "vya_verify_1a2b3c4d_shop", "vya_replaced_5dc0fa40_shop"]);
        // What a failed swap replaced is kept, the only copy of it: backed up as any database.
        Assert.Equal(["shop", "vya_replaced_5dc0fa40_shop"], selected);
    }

    [Fact]
    public void Exclude_wins_over_include()
    {
        var selected = DatabaseSelector.Select(Instance(Dbms.MySql, ["dns_*", "web"], ["dns_tmp*"]),
            ["dns_a", "dns_tmp1", "web", "other"]);
        Assert.Equal(["dns_a", "web"], selected);
    }
}
