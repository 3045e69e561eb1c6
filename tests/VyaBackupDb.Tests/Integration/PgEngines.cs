using VyaBackupDb.Config;

namespace VyaBackupDb.Tests.Integration;

/// <summary>
/// The ways a PostgreSQL database is backed up and restored, for round-trip tests to run each of:
/// pg_dump's one stream, and the parallel engine's backup set on one connection and on four.
/// </summary>
public static class PgEngines
{
    public const string Dump = "dump";
    public const string Parallel1 = "parallel --jobs 1";
    public const string Parallel4 = "parallel --jobs 4";

    public static TheoryData<string> All => [Dump, Parallel1, Parallel4];

    /// <summary>The test instance set up for <paramref name="engine"/> (its jobs serve the backup and the restore).</summary>
    public static InstanceConfig Instance(string engine) => engine switch
    {
        Dump => TestServers.Postgres(),
        Parallel1 => TestServers.Postgres() with { Engine = BackupEngine.Parallel, Jobs = 1 },
        Parallel4 => TestServers.Postgres() with { Engine = BackupEngine.Parallel, Jobs = 4 },
        _ => throw new ArgumentOutOfRangeException(nameof(engine), engine, null),
    };
}
