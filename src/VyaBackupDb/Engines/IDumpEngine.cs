using VyaBackupDb.Catalog;
using VyaBackupDb.Config;

namespace VyaBackupDb.Engines;

/// <summary>What probing a server found.</summary>
public sealed record ServerInfo(string Flavor, string Version, IReadOnlyList<string> Databases)
{
    /// <summary>Databases the server has but no one may connect to (PostgreSQL's ALLOW_CONNECTIONS false): never backed up.</summary>
    public IReadOnlyList<string> Closed { get; init; } = [];

    /// <summary>Databases whose names are not UTF-8 (PostgreSQL: created from a database in another encoding), bytes above ASCII as \xNN: never backed up.</summary>
    public IReadOnlyList<string> Unreadable { get; init; } = [];
}

/// <summary>The tool that wrote a dump, and what the database held when it was dumped.</summary>
/// <param name="Warning">Something the operator should know about how the dump was made (e.g. a newer client than the server).</param>
/// <param name="Settings">The database's own settings (character set, collation, ...), for the manifest.</param>
public sealed record DumpDetails(string Tool, string ToolVersion, DatabaseInventory Inventory, string? Warning = null, DatabaseSettings? Settings = null)
{
    /// <summary>What the backup is: "sql" (a dump), "set" (a backup set, see Sources/Sets), "tar" (a files backup).</summary>
    public string Format { get; init; } = "sql";

    /// <summary>A backup set's entries, in order (the manifest's list).</summary>
    public IReadOnlyList<Sources.Sets.SetEntry>? Entries { get; init; }

    /// <summary>The connections a backup set was written with.</summary>
    public int? Jobs { get; init; }

    /// <summary>Where the dump's snapshot stands in the server's log (binlog file:position and GTID, WAL LSN), when known.</summary>
    public string? SourcePosition { get; init; }

    /// <summary>A files backup's counts and notes (the manifest's files section).</summary>
    public FilesSummary? Files { get; init; }
}

/// <summary>A database as a restore finds it before touching it.</summary>
/// <param name="OtherObjects">Views, routines, events, sequences: a database without tables can still hold work.</param>
public sealed record TargetState(bool Exists, int TableCount, int OtherObjects = 0)
{
    /// <summary>Restoring over it would replace something: it asks first (--force).</summary>
    public bool HoldsData => TableCount > 0 || OtherObjects > 0;

    public string Contents => OtherObjects == 0 ? $"{TableCount} tables" : $"{TableCount} tables and {OtherObjects} other objects";
}

/// <summary>One database engine (MySQL/MariaDB or PostgreSQL), bound to one configured instance.</summary>
public interface IDumpEngine
{
    InstanceConfig Instance { get; }

    /// <summary>The line a complete dump ends with (checked on backup and restore).</summary>
    string CompletionTrailer { get; }

    /// <summary>Flavor, version and the user databases (system databases left out).</summary>
    Task<ServerInfo> ProbeAsync(CancellationToken cancellationToken);

    /// <summary>The database's size as the server reports it (MySQL: data + index length; PostgreSQL: pg_database_size): progress estimates only.</summary>
    Task<long?> DatabaseSizeAsync(string database, CancellationToken cancellationToken);

    /// <summary>
    /// Writes a plain SQL dump of <paramref name="database"/> that restores under any name, counts
    /// the rows it holds from the dump stream itself (exact), and records the database's settings.
    /// </summary>
    Task<DumpDetails> DumpAsync(string database, Stream output, CancellationToken cancellationToken);

    /// <summary>
    /// Writes a backup set of <paramref name="database"/> (<c>engine: parallel</c>): schema.sql, the
    /// table data in chunks read on <paramref name="jobs"/> connections sharing one snapshot,
    /// post.sql last; exact row counts from what was written. Sets <see cref="DumpDetails.SourcePosition"/>;
    /// the caller adds the format and the entries.
    /// </summary>
    Task<DumpDetails> DumpSetAsync(string database, Sources.Sets.BackupSetWriter set, int jobs, CancellationToken cancellationToken);

    /// <summary>
    /// Exact row and object counts of a database nobody else is writing (a restored copy). Tables in
    /// <paramref name="loadedRows"/> are not counted again: their rows are what the restore's own
    /// loads put in them, each confirmed by the server, so no second full read is needed.
    /// </summary>
    Task<DatabaseInventory> InventoryAsync(string database, IReadOnlyDictionary<TableKey, long>? loadedRows, CancellationToken cancellationToken);

    Task<TargetState> GetTargetStateAsync(string database, CancellationToken cancellationToken);

    /// <summary>
    /// Creates <paramref name="database"/> with the recorded <paramref name="settings"/> (from a
    /// manifest: untrusted, every name validated and every value quoted); null: the defaults
    /// (MySQL utf8mb4 / utf8mb4_unicode_ci, PostgreSQL UTF8 from template0). Leaves nothing behind
    /// when a setting cannot be applied. Returns what it left out with a warning (PostgreSQL: a
    /// role's setting in the database, for a role the server lacks or the account may not alter).
    /// </summary>
    /// <param name="trustBackup">--trust-backup: PostgreSQL then takes a search_path that puts pg_catalog after other schemas.</param>
    Task<IReadOnlyList<string>> CreateDatabaseAsync(string database, DatabaseSettings? settings, bool trustBackup, CancellationToken cancellationToken);

    /// <summary>Drops a database nobody should be using (a staging or scratch database); sessions are not killed.</summary>
    Task DropDatabaseAsync(string database, CancellationToken cancellationToken);

    /// <summary>
    /// Runs a plain SQL dump into <paramref name="database"/> (a fresh staging database). Statements
    /// that name another database are dropped or pointed at it; data passes through unchanged.
    /// </summary>
    Task<LoadResult> RestoreAsync(string database, Stream input, RestoreOptions options, CancellationToken cancellationToken);

    /// <summary>
    /// Loads a backup set into <paramref name="database"/> (a fresh staging database): schema.sql
    /// as <see cref="RestoreAsync"/> does, the data chunks on <paramref name="jobs"/> connections,
    /// post.sql last. Reads every entry up to and including post.sql; the caller then checks the
    /// set's end. Anything in a chunk but rows of one table of the set is refused.
    /// </summary>
    Task<LoadResult> RestoreSetAsync(
        string database, Sources.Sets.BackupSetReader set, RestoreOptions options, int jobs, CancellationToken cancellationToken);

    /// <summary>
    /// Holds the server's lock on restores into <paramref name="target"/> until disposed. The lock
    /// lives in the server session, so the server releases it when this process dies.
    /// </summary>
    /// <exception cref="Errors.LockedException">Another restore into the same target holds it.</exception>
    Task<IAsyncDisposable> LockRestoreAsync(string target, CancellationToken cancellationToken);

    /// <summary>Sessions of other clients that keep <paramref name="database"/> from being replaced (none when the engine cannot tell).</summary>
    Task<BlockingSessions> CountBlockingSessionsAsync(string database, CancellationToken cancellationToken);

    /// <summary>
    /// Puts the complete, checked <paramref name="staging"/> database in the place of
    /// <paramref name="target"/> (created when missing), then removes what it replaced. An
    /// exception's message says what state the target is in; once the target holds the new data,
    /// the rest is done whatever the token says, and what could not be cleaned up is returned as
    /// warnings.
    /// </summary>
    Task<IReadOnlyList<string>> SwapAsync(string staging, string target, SwapOptions options, CancellationToken cancellationToken);
}

/// <param name="SourceDatabase">The database the backup was taken of, when known: references to it are pointed at the target.</param>
/// <param name="Definer">MySQL: what happens to DEFINER clauses.</param>
/// <param name="AllowDataDirectory">MySQL: tables are created with the DATA / INDEX DIRECTORY the dump names (otherwise refused).</param>
/// <param name="TrustBackup">PostgreSQL: load as the instance's account even when it is a superuser (the backup's code then runs with its rights).</param>
/// <param name="Target">The database the restore creates or replaces (not the staging one): MySQL names it among the other databases whenever the backup does, missing or not.</param>
public sealed record RestoreOptions(string? SourceDatabase = null, MySql.DefinerMode Definer = MySql.DefinerMode.Keep, bool AllowDataDirectory = false,
    bool TrustBackup = false, string? Target = null);

/// <summary>What the restore client was fed, as the statement filter saw it.</summary>
/// <param name="EndedWithTrailer">Whether the dump ended with its completion trailer, as the filter parsed it (null: the engine cannot tell).</param>
/// <param name="EventsToEnable">MySQL events restored disabled that were enabled in the dump.</param>
/// <param name="OtherDatabases">Databases other than the source still named by views, triggers, routines, events or foreign keys.</param>
/// <param name="LoadedRows">A backup set's load: the rows loaded into each table all of whose chunks the driver loaded and counted.</param>
/// <param name="Warnings">What the restore left undone that the operator may want to do (a table not analyzed).</param>
public sealed record LoadResult(
    bool? EndedWithTrailer, IReadOnlyList<string> EventsToEnable, IReadOnlyCollection<string> OtherDatabases,
    IReadOnlyDictionary<TableKey, long>? LoadedRows = null, IReadOnlyList<string>? Warnings = null);

/// <summary>A table by its unquoted names (MySQL: Schema is empty, the table's database being the restore's).</summary>
public readonly record struct TableKey(string Schema, string Table);

/// <param name="Count">Sessions of other clients on the target.</param>
/// <param name="NotEndable">Of those, the ones this account may not end (another role's, without the right to signal it).</param>
public sealed record BlockingSessions(int Count, int NotEndable);

/// <param name="TerminateConnections">End other sessions on the target instead of failing when they block the swap.</param>
/// <param name="EventsToEnable">MySQL events to enable once in place.</param>
/// <param name="Replaced">The database what the target held moves to (a name no kept leftover has), dropped once the swap is complete.</param>
/// <param name="KeepTargetAccess">
/// PostgreSQL: the backup does not record the database's owner and privileges (no <c>owners: true</c>):
/// a replaced target's owner, privileges and connection limit go to the restored database.
/// </param>
/// <param name="ReplaceData">
/// The target may hold data (--force, or the operator confirmed). Without it the target is replaced only if it still
/// holds none when the swap begins: another client may have filled it (or, PostgreSQL, created it) since the plan.
/// </param>
public sealed record SwapOptions(bool TerminateConnections, IReadOnlyList<string> EventsToEnable, string Replaced, bool KeepTargetAccess, bool ReplaceData);

public static class DumpEngines
{
    public static IDumpEngine For(InstanceConfig instance) => instance.Dbms switch
    {
        Dbms.MySql => new MySql.MySqlEngine(instance),
        Dbms.PostgreSql => new Postgres.PostgresEngine(instance),
        _ => throw new Errors.UsageException($"instance {instance.Id} ({instance.Name}) backs up files, not databases"),
    };

    /// <summary>The line a complete dump of this DBMS ends with (before psql's \unrestrict).</summary>
    public static string CompletionTrailer(Dbms dbms) =>
        dbms == Dbms.MySql ? "-- Dump completed" : "-- PostgreSQL database dump complete";

    /// <summary>Databases no glob and no --all ever backs up.</summary>
    public static bool IsSystemDatabase(Dbms dbms, string name) => dbms switch
    {
        Dbms.MySql => name is "information_schema" or "performance_schema" or "mysql" or "sys",
        _ => name is "template0" or "template1",
    };
}
