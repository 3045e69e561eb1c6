using VyaBackupDb.Config.Vault;
using VyaBackupDb.Pipeline;
using VyaBackupDb.Retention;

namespace VyaBackupDb.Config;

public enum Dbms
{
    MySql,
    PostgreSql,

    /// <summary>Not a database: directories backed up as one tar per instance (<c>dbms: files</c>).</summary>
    Files,
}

public static class DbmsNames
{
    /// <summary>The name used in config files and backup file names.</summary>
    public static string ToName(this Dbms dbms) => dbms switch
    {
        Dbms.MySql => "mysql",
        Dbms.PostgreSql => "postgresql",
        _ => "files",
    };

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
            case "files":
                dbms = Dbms.Files;
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
    RetentionPolicy? Retention = null,
    IReadOnlyList<StorageConfig>? Storages = null)
{
    /// <summary>The credential vault (<c>vault_file:</c>, default vault.enc beside the config); opened only when used.</summary>
    public CredentialVault Vault { get; init; } =
        new(Path.Combine(Path.GetDirectoryName(Path.GetFullPath(SourcePath)) ?? ".", CredentialVault.DefaultFileName));

    /// <summary>The configured codec's level (<c>compression_level:</c>); null means its fast default (zstd 3, gzip 1). A <c>--compression</c> naming another codec uses that one's default.</summary>
    public int? CompressionLevel { get; init; }

    /// <summary>How long a server may take to answer a backup's first contact (connect, log in, list databases): a dead one fails fast (<c>connect_timeout_seconds</c>).</summary>
    public TimeSpan ConnectTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>The encryption: section (age recipients / passphrase / identity files).</summary>
    public EncryptionSettings Encryption { get; init; } = EncryptionSettings.None;

    /// <summary>Things worth telling the operator about the config itself (e.g. a world-readable file holding a password).</summary>
    public IReadOnlyList<string> Warnings { get; init; } = [];

    /// <summary>The time zone of instances' schedules that name none (<c>time_zone:</c>, default UTC).</summary>
    public TimeZoneInfo TimeZone { get; init; } = TimeZoneInfo.Utc;

    /// <summary>How long a storage lock lasts unless renewed (<c>lock_lease_seconds:</c>): a dead runner's lock clears after it.</summary>
    public TimeSpan LockLease { get; init; } = Operations.StorageLock.DefaultLease;

    /// <summary>schedule: how long a running backup may go on after SIGTERM before it is cancelled (<c>stop_grace_seconds:</c>).</summary>
    public TimeSpan StopGrace { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>The notify: section: who is told about each backup run (one message per run).</summary>
    public IReadOnlyList<NotifierConfig> Notifiers { get; init; } = [];

    public InstanceConfig GetInstance(int id) =>
        Instances.FirstOrDefault(i => i.Id == id)
        ?? throw new Errors.UsageException($"instance {id} is not defined in {SourcePath}");

    /// <summary>The instance's own retention policy, else the top-level one; null (or empty) means keep everything.</summary>
    public RetentionPolicy? RetentionFor(InstanceConfig instance) => instance.Retention ?? Retention;
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
    RetentionPolicy? Retention = null,
    IReadOnlyList<string>? Storage = null)
{
    private readonly string _user = User;

    /// <summary>Encrypt this instance's backups by default (<c>encrypt: true</c>; <c>backup --encrypt</c> does it for one run).</summary>
    public bool Encrypt { get; init; }

    /// <summary>The server as a manifest records it: host:port; null for a files instance.</summary>
    public string? Server => Dbms == Dbms.Files ? null : $"{Host}:{Port.ToString(System.Globalization.CultureInfo.InvariantCulture)}";

    /// <summary>A files instance's directories (absolute, normalised); include/exclude match paths relative to each.</summary>
    public IReadOnlyList<string> Paths { get; init; } = [];

    /// <summary>A files instance skips what it cannot read (and says so) instead of failing (<c>skip_unreadable: true</c>).</summary>
    public bool SkipUnreadable { get; init; }

    /// <summary>PostgreSQL: the database to connect to when working on others (create, rename, drop, lock).</summary>
    public string MaintenanceDatabase { get; init; } = "postgres";

    /// <summary>
    /// PostgreSQL: keep owners and privileges in the dump (<c>owners: true</c>); a restore then
    /// needs the roles they name (listed in the manifest) to exist on the target server.
    /// </summary>
    public bool Owners { get; init; }

    /// <summary>
    /// PostgreSQL: restores load as the instance's account even when it is a superuser
    /// (<c>trust_backups: true</c>, as <c>--trust-backup</c> on every restore and test restore).
    /// </summary>
    public bool TrustBackups { get; init; }

    /// <summary>Back up the server's roles/accounts and grants as the item <c>_globals</c> (<c>globals:</c>, default true).</summary>
    public bool Globals { get; init; } = true;

    /// <summary>The globals item keeps role passwords (PostgreSQL) / password hashes (MySQL) (<c>globals_passwords: true</c>).</summary>
    public bool GlobalsPasswords { get; init; }

    /// <summary>PostgreSQL: the globals item includes tablespaces (<c>globals_tablespaces: true</c>).</summary>
    public bool GlobalsTablespaces { get; init; }

    /// <summary>How databases are dumped (<c>engine:</c>): one stream from the server's dump tool, or a parallel backup set.</summary>
    public BackupEngine Engine { get; init; } = BackupEngine.Dump;

    /// <summary>Connections a parallel backup or restore uses (<c>jobs:</c>; <c>--jobs</c> for one run); null: <see cref="ConfigLoader.DefaultJobs"/>.</summary>
    public int? Jobs { get; init; }

    /// <summary>
    /// MySQL: a parallel restore may load rows with <c>LOAD DATA LOCAL</c> where the server allows it
    /// (<c>load_data_local: false</c>: always INSERTs, for hosts whose policy forbids the client side of it).
    /// </summary>
    public bool LoadDataLocal { get; init; } = true;

    /// <summary>
    /// How long a parallel backup waits for the locks it needs (<c>lock_wait_seconds:</c>): MySQL's
    /// backup lock, which another session's long statement or LOCK TABLES may hold up; PostgreSQL's
    /// share locks on the tables, which a session holding or awaiting one exclusively holds up.
    /// </summary>
    public int LockWaitSeconds { get; init; } = 60;

    /// <summary>MySQL: what a restore does with DEFINER clauses (<c>definer:</c>; <c>restore --definer</c> for one run).</summary>
    public Engines.MySql.DefinerMode Definer { get; init; }

    /// <summary>The user to log in as: from the config, or from the vault (<c>credentials: vault:NAME</c>), read when first needed.</summary>
    public string User
    {
        get => Password.ResolveUser() ?? _user;
        init => _user = value;
    }

    /// <summary>When the schedule command backs this instance up (<c>schedule:</c>); null: never.</summary>
    public ScheduleConfig? Schedule { get; init; }

    /// <summary>
    /// How often a backup of each database is expected (<c>expect_every:</c>); null: from the
    /// instance's schedule, else a day. `status` reports what is overdue against it.
    /// </summary>
    public TimeSpan? ExpectEvery { get; init; }

    /// <summary>Where this instance's backups go, in order: the first gets the dump, the others a verified copy.</summary>
    public IReadOnlyList<string> StorageNames => Storage is { Count: > 0 } names ? names : [StorageConfig.LocalName];
}

/// <summary>An instance's schedule: a cron expression in a time zone, and what follows each run.</summary>
/// <param name="Expression">As written in the config (for messages).</param>
/// <param name="Verify">Check each new backup's digests after the run (<c>schedule_verify:</c>).</param>
/// <param name="Prune">Apply retention after the run, to what succeeded (<c>schedule_prune:</c>).</param>
public sealed record ScheduleConfig(string Expression, Cronos.CronExpression Cron, TimeZoneInfo TimeZone, bool Verify, bool Prune)
{
    /// <summary>The first time this schedule fires strictly after <paramref name="after"/>; null if never.</summary>
    public DateTimeOffset? NextAfter(DateTimeOffset after) => Cron.GetNextOccurrence(after, TimeZone);
}

/// <summary>How a database instance is dumped (<c>engine:</c>).</summary>
public enum BackupEngine
{
    /// <summary>One SQL stream from mariadb-dump / pg_dump: a .sql file any client restores.</summary>
    Dump,

    /// <summary>A backup set: schema, table data read and loaded on several connections at once, post-data.</summary>
    Parallel,
}
