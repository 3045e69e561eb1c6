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
    /// <summary>Classes, and the named collections whose classes run one after another (<see cref="Integration.VerifyScratch"/>: three).</summary>
    private static readonly string[] Longest =
    [
        Integration.VerifyScratch.Name, "PostgresLoadRoleTests", "PostgresSetTests", "HostileNameTests", "BackupInventoryTests",
        "OperatorFaultTests", "PostgresLockTests", "RemoteStorageTests", "SecretsHygieneTests",
        "OldFormatRestoreTests", "GlobalsTests", "PostgresRoundTripTests", "FilesBackupTests", "RestoreFaultTests",
        "MySqlParallelTests", "ScheduleCliTests", "LockAndDiskFullTests",
    ];

    public IEnumerable<ITestCollection> OrderTestCollections(IEnumerable<ITestCollection> testCollections) =>
        testCollections
            .OrderBy(collection => Array.FindIndex(Longest, name => collection.DisplayName == name
                    || collection.DisplayName.EndsWith("." + name, StringComparison.Ordinal)) is var i and >= 0
                ? i
                : Longest.Length)
            .ThenBy(collection => collection.DisplayName, StringComparer.Ordinal);
}
