using VyaBackupDb.Catalog;
using VyaBackupDb.Operations;
using VyaBackupDb.Storage.Local;

namespace VyaBackupDb.Tests.Unit;

public sealed class InventoryComparisonTests
{
    private static readonly ObjectCounts Objects = new(1, 2, 3, 0);

    private static DatabaseInventory Inventory(long rows, bool exact, long sequence) =>
        new([new TableRows("public.t", rows, exact)], [new SequenceValue("public.t_id_seq", sequence)], Objects);

    [Fact]
    public void Equal_counts_match()
    {
        var comparison = InventoryComparison.Compare(Inventory(10, true, 10), Inventory(10, true, 10));
        Assert.True(comparison.Matches);
        Assert.Empty(comparison.Warnings);
    }

    [Fact]
    public void Fewer_rows_than_an_exact_count_is_a_mismatch_but_an_estimate_only_warns()
    {
        Assert.False(InventoryComparison.Compare(Inventory(10, true, 10), Inventory(9, true, 10)).Matches);
        var estimate = InventoryComparison.Compare(Inventory(10, false, 10), Inventory(9, true, 10));
        Assert.True(estimate.Matches);
        Assert.Single(estimate.Warnings);
    }

    [Fact]
    public void A_sequence_ahead_of_an_older_manifest_warns_and_one_behind_it_is_a_mismatch()
    {
        // Older manifests read PostgreSQL's sequences before pg_dump did: a nextval in between moved them ahead, never back.
        var ahead = InventoryComparison.Compare(Inventory(10, true, 10), Inventory(10, true, 12));
        Assert.True(ahead.Matches);
        Assert.Single(ahead.Warnings);
        Assert.False(InventoryComparison.Compare(Inventory(10, true, 10), Inventory(10, true, 9)).Matches);
    }

    [Fact]
    public void A_sequence_read_off_the_dump_must_come_back_with_exactly_that_value()
    {
        var expected = Inventory(10, true, 10) with { Sequences = [new SequenceValue("public.t_id_seq", 10, Exact: true)] };
        Assert.True(InventoryComparison.Compare(expected, Inventory(10, true, 10)).Matches);
        var ahead = InventoryComparison.Compare(expected, Inventory(10, true, 12));
        Assert.Equal(["sequence public.t_id_seq: 10 in the backup, 12 restored"], ahead.Mismatches);
        Assert.False(InventoryComparison.Compare(expected, Inventory(10, true, 9)).Matches);
    }

    [Fact]
    public void A_missing_or_extra_table_and_a_changed_object_count_are_mismatches()
    {
        var expected = Inventory(1, true, 1);
        var missing = new DatabaseInventory([], expected.Sequences, Objects);
        Assert.Contains("table public.t is missing", InventoryComparison.Compare(expected, missing).Mismatches);
        var fewerViews = expected with { Objects = Objects with { Views = 0 } };
        Assert.False(InventoryComparison.Compare(expected, fewerViews).Matches);
    }

    [Fact]
    public async Task Local_backup_files_are_private_to_their_owner()
    {
        if (OperatingSystem.IsWindows())
        {
            return;
        }
        var dir = Directory.CreateTempSubdirectory();
        try
        {
            var storage = new LocalStorage(dir.FullName);
            await using (var write = await storage.CreateAsync("i/backup.sql", CancellationToken.None))
            {
                await write.Content.WriteAsync("-- dump\n"u8.ToArray());
                await write.CommitAsync(CancellationToken.None);
            }
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(Path.Combine(dir.FullName, "i", "backup.sql")));
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }
}
