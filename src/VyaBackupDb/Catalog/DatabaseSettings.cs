using System.Text.Json.Serialization;

namespace VyaBackupDb.Catalog;

/// <summary>
/// A database's own settings as recorded at backup time, re-applied when a restore creates the
/// target. Read from a manifest, so untrusted: the engines validate every name and quote every
/// value before any of it reaches SQL. Unset fields keep the server's defaults.
/// </summary>
public sealed record DatabaseSettings
{
    /// <summary>MySQL/MariaDB: the database's default character set (e.g. latin1).</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? CharacterSet { get; init; }

    /// <summary>MySQL/MariaDB: the database's default collation (e.g. latin1_swedish_ci).</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? Collation { get; init; }

    /// <summary>PostgreSQL: the server encoding of the database (e.g. UTF8).</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? Encoding { get; init; }

    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? LcCollate { get; init; }

    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? LcCtype { get; init; }

    /// <summary>PostgreSQL 15+: libc, icu or builtin (17+).</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? LocaleProvider { get; init; }

    /// <summary>PostgreSQL 15+: the ICU (or, 17+, builtin) locale when the provider is not libc.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? Locale { get; init; }

    /// <summary>PostgreSQL 16+: ICU tailoring rules.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? IcuRules { get; init; }

    /// <summary>PostgreSQL: the database's own <c>ALTER DATABASE ... SET</c> settings (for every role), as the server stores them.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public IReadOnlyList<DatabaseParameter>? Parameters { get; init; }

    /// <summary>
    /// PostgreSQL: the roles' <c>ALTER ROLE ... IN DATABASE ... SET</c> settings in this database.
    /// Applied to the restored database where the role exists and the restoring account may alter
    /// it; otherwise the restore warns and goes on.
    /// </summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public IReadOnlyList<RoleParameter>? RoleParameters { get; init; }

    /// <summary>The database's comment (PostgreSQL; MariaDB 10.5+).</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? Comment { get; init; }

    /// <summary>PostgreSQL, <c>owners: true</c>: the dump keeps owners and privileges (restoring it needs <see cref="Roles"/>).</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public bool? Owners { get; init; }

    /// <summary>PostgreSQL, <c>owners: true</c>: the database's owner.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? Owner { get; init; }

    /// <summary>PostgreSQL, <c>owners: true</c>: the database's own privileges (GRANT ... ON DATABASE); null when they are the defaults.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public IReadOnlyList<DatabaseGrant>? Grants { get; init; }

    /// <summary>PostgreSQL, <c>owners: true</c>: every role the dump and these settings name (owners, grantees): they must exist where it is restored.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public IReadOnlyList<string>? Roles { get; init; }

    /// <summary>A value from the manifest as an error message may show it: one line, control characters as '?', at most 80 characters.</summary>
    public static string Shown(string value)
    {
        var shown = new string([.. value.Take(80).Select(c => char.IsControl(c) ? '?' : c)]);
        return value.Length > 80 ? shown + "..." : shown;
    }
}

/// <summary>One privilege on the database: <paramref name="Grantee"/> is a role, or <c>public</c> for everyone.</summary>
public sealed record DatabaseGrant(string Grantee, string Privilege, bool Grantable);

/// <summary>One <c>ALTER DATABASE ... SET name = value</c>; the value as pg_db_role_setting holds it.</summary>
public sealed record DatabaseParameter(string Name, string Value);

/// <summary>One <c>ALTER ROLE role IN DATABASE ... SET name = value</c>; the value as pg_db_role_setting holds it.</summary>
public sealed record RoleParameter(string Role, string Name, string Value);
