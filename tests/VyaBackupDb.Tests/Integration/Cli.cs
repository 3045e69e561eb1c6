using System.Globalization;

namespace VyaBackupDb.Tests.Integration;

/// <summary>Config files for runs of the real CLI.</summary>
public static class Cli
{
    /// <summary>
    /// A config.yaml with instance 1 = the MariaDB test server and 2 = the PostgreSQL one;
    /// passwords default to the right ones. <paramref name="toolsDir"/> (e.g. fake dump tools)
    /// becomes both instances' tools_dir. Returns its path.
    /// </summary>
    public static async Task<string> WriteConfigAsync(
        string dir, string backupDir, string? mySqlPassword = null, string? pgPassword = null, string compression = "zstd",
        string? toolsDir = null)
    {
        var path = Path.Combine(dir, "config.yaml");
        var tools = toolsDir is null ? "" : $"\n    tools_dir: {Yaml(toolsDir)}";
        var yaml = string.Create(CultureInfo.InvariantCulture, $"""
            backup_dir: {Yaml(backupDir)}
            compression: {compression}
            timeout_seconds: 300
            instances:
              - id: 1
                name: it-mysql
                dbms: mysql
                host: {Yaml(TestServers.MySqlHost)}
                port: {TestServers.MySqlPort}
                user: {Yaml(TestServers.MySqlUser)}
                password: {Yaml(mySqlPassword ?? TestServers.MySqlPassword)}
                include: ["vt_*"]
                globals: false{tools}
              - id: 2
                name: it-pg
                dbms: postgresql
                host: {Yaml(TestServers.PgHost)}
                port: {TestServers.PgPort}
                user: {Yaml(TestServers.PgUser)}
                password: {Yaml(pgPassword ?? TestServers.PgPassword)}
                include: ["vt_*"]
                globals: false{tools}

            """);
        await File.WriteAllTextAsync(path, yaml);
        if (!OperatingSystem.IsWindows())
        {
            // It holds passwords: readable by all, it would draw a warning on every run.
            File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        }
        return path;
    }

    /// <summary>A YAML single-quoted scalar.</summary>
    private static string Yaml(string value) => "'" + value.Replace("'", "''", StringComparison.Ordinal) + "'";

    /// <summary>The error lines a run printed: stderr lines that say "error".</summary>
    public static List<string> ErrorLines(ProcessResult run) =>
        [.. run.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries).Where(l => l.Contains("error", StringComparison.OrdinalIgnoreCase))];
}
