using VyaBackupDb.Config;
using VyaBackupDb.Engines;
using VyaBackupDb.Engines.Postgres;

namespace VyaBackupDb.Tests.Unit;

/// <summary>What a globals file's reader accepts from formats the test servers do not write (PostgreSQL 16+, tablespaces).</summary>
[Trait("Category", "Unit")]
public sealed class GlobalsParseTests
{
    private static readonly PostgresEngine Pg = new(new InstanceConfig(
        1, "pg", Dbms.PostgreSql, "localhost", 5432, "restorer", PasswordSource.Literal("x"), Enabled: true, Include: ["*"], Exclude: [], ToolsDir: null));

    [Fact]
    public void PostgreSql_16_membership_options_and_tablespaces_are_read_and_tablespaces_left_out_with_a_warning()
    {
        var warnings = new List<string>();
        var accounts = Pg.ParseGlobals("""
            CREATE ROLE "g";
            CREATE ROLE "app";
            ALTER ROLE "app" WITH LOGIN;
            GRANT "g" TO "app" WITH ADMIN OPTION, INHERIT FALSE, SET TRUE GRANTED BY "restorer";
            CREATE TABLESPACE "fast" OWNER "app" LOCATION '/srv/fast';
            GRANT ALL ON TABLESPACE "fast" TO "app";
            """, warnings.Add);
        Assert.Equal(["g", "app"], accounts.Select(a => a.Key));
        Assert.Equal(2, accounts[1].Create.Count);
        Assert.Single(accounts[1].Grants);
        Assert.Contains("fast", Assert.Single(warnings), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("GRANT \"g\" TO \"app\", \"other\";")]
    [InlineData("GRANT \"g\" TO \"app\" WITH ADMIN OPTION; DROP ROLE \"other\";")]
    [InlineData("ALTER ROLE \"other\" WITH SUPERUSER;")]
    [InlineData("COMMENT ON ROLE \"app\" IS E'\\\\x';")]
    [InlineData("ALTER ROLE \"app\" WITH LOGIN -- hidden\n;")]
    public void PostgreSql_statements_about_other_roles_or_unclear_ones_are_refused_naming_the_line(string statement)
    {
        var error = Assert.Throws<DumpFilterException>(() => Pg.ParseGlobals($"CREATE ROLE \"g\";\nCREATE ROLE \"app\";\n{statement}\n", _ => { }));
        Assert.StartsWith("line 3: ", error.Message, StringComparison.Ordinal);
    }
}
