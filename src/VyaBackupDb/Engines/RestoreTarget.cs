using System.Text;
using VyaBackupDb.Config;

namespace VyaBackupDb.Engines;

/// <summary>
/// Which names a restore may write into. A restore replaces its target whole, so a system database
/// is never one (it may still be backed up); nor is a name the tool gives its own working databases,
/// which other restores and verifies drop or replace as theirs; and a name the server would refuse
/// or change is caught before anything runs, not by the server's error half way through (or,
/// PostgreSQL, by a database silently created under a shorter name).
/// </summary>
public static class RestoreTarget
{
    private static readonly string[] MySqlSystem = ["mysql", "information_schema", "performance_schema", "sys"];
    private static readonly string[] PostgresSystem = ["template0", "template1", "postgres"];
    private static readonly string[] OwnPrefixes = [RestoreStaging.StagingPrefix, RestoreStaging.ReplacedPrefix, RestoreStaging.VerifyScratchPrefix];

    /// <summary>MySQL/MariaDB: the longest database name, in characters.</summary>
    public const int MySqlMaxChars = 64;

    /// <summary>PostgreSQL: the longest name (NAMEDATALEN - 1), in bytes; a longer one is cut with only a NOTICE.</summary>
    public const int PostgresMaxBytes = 63;

    /// <summary>Why <paramref name="target"/> cannot be restored into on <paramref name="instance"/>, or null when it can.</summary>
    /// <param name="verifyScratch">verify --restore restoring into its own scratch database (vya_verify_...).</param>
    public static string? Problem(InstanceConfig instance, string target, bool verifyScratch = false)
    {
        if (target.Length == 0)
        {
            return "the target database name is empty";
        }
        // Another restore's staging or replaced database, or a verify's scratch one: theirs to drop.
        // In any case: a MySQL server with lower_case_table_names takes 'VYA_RESTORE_x' for 'vya_restore_x'.
        if (!verifyScratch && OwnPrefixes.FirstOrDefault(p => target.StartsWith(p, StringComparison.OrdinalIgnoreCase)) is { } prefix)
        {
            return $"'{target}' is a name vya-backupdb gives its own working databases ({prefix}...), which other restores and "
                + "verifies drop or replace: a restore never writes into it; give another --target";
        }
        if (target == Globals.ItemName)
        {
            // A database so named would be in no backup: `--database _globals` is the accounts item.
            return $"'{target}' is the name of an instance's users, roles and grants in its backups, never of a database: give another --target";
        }
        if (target.Contains('\uFFFD', StringComparison.Ordinal))
        {
            // What the command line holds for bytes that are not UTF-8: two such names would be one database.
            return $"'{target}' has bytes that are not UTF-8 (shown as \uFFFD): give the name in UTF-8";
        }
        return instance.Dbms switch
        {
            Dbms.MySql => MySqlProblem(target),
            Dbms.PostgreSql => PostgresProblem(target, instance.MaintenanceDatabase),
            _ => null,
        };
    }

    private static string? MySqlProblem(string target)
    {
        // In any case: a server with lower_case_table_names (or on Windows/macOS) takes 'MySQL' for 'mysql'.
        if (MySqlSystem.Contains(target, StringComparer.OrdinalIgnoreCase))
        {
            return $"'{target}' is a system database of the MySQL/MariaDB server: a restore never replaces it; give another --target";
        }
        var name = $"'{target}' cannot be a MySQL/MariaDB database name";
        // Database names are stored as utf8mb3: nothing beyond U+FFFF (emoji and the like).
        if (target.Any(char.IsSurrogate))
        {
            return $"{name}: it has a character outside the Basic Multilingual Plane (e.g. an emoji)";
        }
        if (target[^1] is ' ' or '\t' or '\n' or '\r' or '\v' or '\f')
        {
            return $"{name}: it ends with a space";
        }
        return target.Length > MySqlMaxChars ? $"{name}: it is longer than {MySqlMaxChars} characters ({target.Length})" : null;
    }

    private static string? PostgresProblem(string target, string maintenanceDatabase)
    {
        // Quoted names are case-sensitive: 'Postgres' is another database.
        if (PostgresSystem.Contains(target, StringComparer.Ordinal))
        {
            return $"'{target}' is a system database of the PostgreSQL server: a restore never replaces it; give another --target";
        }
        if (target == maintenanceDatabase)
        {
            return $"'{target}' is the instance's maintenance_database (the one the tool connects to): a restore never replaces it; give another --target";
        }
        // Counted in UTF-8; a server encoding with fewer bytes per character would take a little more.
        var bytes = Encoding.UTF8.GetByteCount(target);
        return bytes > PostgresMaxBytes
            ? $"'{target}' cannot be a PostgreSQL database name: it is {bytes} bytes long, and the server would cut it to {PostgresMaxBytes}"
            : null;
    }
}
