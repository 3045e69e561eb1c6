using VyaBackupDb.Pipeline;

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
    IReadOnlyList<StorageConfig>? Storages = null)
{
    public InstanceConfig GetInstance(int id) =>
        Instances.FirstOrDefault(i => i.Id == id)
        ?? throw new Errors.UsageException($"instance {id} is not defined in {SourcePath}");

    /// <summary>The destinations of the <c>storage:</c> section (<c>local</c>, which is backup_dir, is implicit).</summary>
    public IReadOnlyList<StorageConfig> StorageConfigs => Storages ?? [];

    /// <summary>A destination by name: <c>local</c> is backup_dir.</summary>
    public StorageConfig GetStorage(string name) =>
        name == StorageConfig.LocalName && StorageConfigs.All(s => s.Name != name)
            ? new LocalStorageConfig(StorageConfig.LocalName, BackupDir)
            : StorageConfigs.FirstOrDefault(s => s.Name == name)
              ?? throw new Errors.UsageException($"storage '{name}' is not defined in {SourcePath}");
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
    IReadOnlyList<string>? Storage = null)
{
    /// <summary>Where this instance's backups go, in order: the first gets the dump, the others a verified copy.</summary>
    public IReadOnlyList<string> StorageNames => Storage is { Count: > 0 } names ? names : [StorageConfig.LocalName];
}
