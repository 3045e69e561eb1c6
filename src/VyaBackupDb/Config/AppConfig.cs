using VyaBackupDb.Pipeline;
using VyaBackupDb.Retention;

namespace VyaBackupDb.Config;

public enum Dbms
{
    MySql,
    PostgreSql,
}

public static class DbmsNames
{
    /// <summary>The name used in config files and backup file names.</summary>
    public static string ToName(this Dbms dbms) => dbms == Dbms.MySql ? "mysql" : "postgresql";

    public static bool TryParse(string text, out Dbms dbms)
    {
        switch (text.ToLowerInvariant())
        {
            case "mysql" or "mariadb":
                dbms = Dbms.MySql;
                return true;
            case "postgresql" or "postgres" or "pgsql":
                dbms = Dbms.PostgreSql;
                return true;
            default:
                dbms = default;
                return false;
        }
    }
}

public sealed record AppConfig(
    string SourcePath,
    string BackupDir,
    Compression Compression,
    TimeSpan Timeout,
    IReadOnlyList<InstanceConfig> Instances,
    RetentionPolicy? Retention = null)
{
    public InstanceConfig GetInstance(int id) =>
        Instances.FirstOrDefault(i => i.Id == id)
        ?? throw new Errors.UsageException($"instance {id} is not defined in {SourcePath}");

    /// <summary>The instance's own retention policy, else the top-level one; null (or empty) means keep everything.</summary>
    public RetentionPolicy? RetentionFor(InstanceConfig instance) => instance.Retention ?? Retention;
}

public sealed record InstanceConfig(
    int Id,
    string Name,
    Dbms Dbms,
    string Host,
    int Port,
    string User,
    PasswordSource Password,
    bool Enabled,
    IReadOnlyList<string> Include,
    IReadOnlyList<string> Exclude,
    string? ToolsDir,
    RetentionPolicy? Retention = null);
