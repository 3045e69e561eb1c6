using Xunit.Abstractions;

[assembly: TestCollectionOrderer("VyaBackupDb.Tests.LongestFirst", "VyaBackupDb.Tests")]

namespace VyaBackupDb.Tests;

/// <summary>
/// Starts the test classes that take longest first (their tests run one after another): one started last ran
/// alone for minutes while the other core had nothing left to do. The names and order come from a full run's times;
/// a class not named here starts after these.
/// </summary>
public sealed class LongestFirst : ITestCollectionOrderer
{
    private static readonly string[] Longest =
    [
        "PostgresLoadRoleTests", "StagedRestoreTests", "PostgresSetTests", "HostileNameTests", "BackupInventoryTests",
        "OperatorFaultTests", "PostgresLockTests", "RemoteStorageTests", "IntegrityTests", "SecretsHygieneTests",
        "OldFormatRestoreTests", "GlobalsTests", "PostgresRoundTripTests", "FilesBackupTests", "RestoreFaultTests",
        "MySqlParallelTests", "ScheduleCliTests", "LockAndDiskFullTests",
    ];

    public IEnumerable<ITestCollection> OrderTestCollections(IEnumerable<ITestCollection> testCollections) =>
        testCollections
            .OrderBy(collection => Array.FindIndex(Longest, name => collection.DisplayName.EndsWith("." + name, StringComparison.Ordinal)) is var i and >= 0
                ? i
                : Longest.Length)
            .ThenBy(collection => collection.DisplayName, StringComparer.Ordinal);
}
