using VyaBackupDb.Catalog;

namespace VyaBackupDb.Operations;

/// <summary>A restored database held against the counts its manifest recorded.</summary>
public sealed record InventoryComparison(IReadOnlyList<string> Lines, IReadOnlyList<string> Mismatches, IReadOnlyList<string> Warnings)
{
    public bool Matches => Mismatches.Count == 0;

    public static InventoryComparison Compare(DatabaseInventory expected, DatabaseInventory actual)
    {
        var lines = new List<string>();
        var mismatches = new List<string>();
        var warnings = new List<string>();
        var restored = actual.Tables.ToDictionary(t => t.Name, t => t.Rows, StringComparer.Ordinal);
        foreach (var table in expected.Tables)
        {
            if (!restored.Remove(table.Name, out var rows))
            {
                mismatches.Add($"table {table.Name} is missing");
                continue;
            }
            var line = $"table {table.Name}: {table.Rows} rows in the backup{(table.Exact ? "" : " (estimate)")}, {rows} restored";
            lines.Add(line);
            if (rows != table.Rows)
            {
                // A count taken beside the dump's snapshot may differ if the database was being written.
                (table.Exact ? mismatches : warnings).Add(line);
            }
        }
        mismatches.AddRange(restored.Keys.Select(name => $"table {name} is not in the backup"));

        var sequences = actual.Sequences.ToDictionary(s => s.Name, s => s.Value, StringComparer.Ordinal);
        foreach (var sequence in expected.Sequences)
        {
            var line = sequences.TryGetValue(sequence.Name, out var value)
                ? $"sequence {sequence.Name}: {sequence.Value} in the backup, {value} restored"
                : $"sequence {sequence.Name} is missing";
            lines.Add(line);
            // A value read off the dump must come back as it is. One that is not (an older
            // manifest's, read before pg_dump read the sequence) may have moved on before the dump
            // read it: higher only warns. Lower (or missing) means something was lost.
            if (!sequences.ContainsKey(sequence.Name) || value < sequence.Value || (value > sequence.Value && sequence.Exact == true))
            {
                mismatches.Add(line);
            }
            else if (value > sequence.Value)
            {
                warnings.Add(line);
            }
        }

        // Those an extension made are the restoring server's version's (see ObjectCounts): left out where an extension's version
        // differs. Otherwise they count: one added to an extension (ALTER EXTENSION ... ADD), which pg_dump leaves out, is missing.
        var extensions = expected.Objects.ExtensionRoutines is not null && actual.Objects.ExtensionRoutines is not null
            && expected.Objects.Extensions != actual.Objects.Extensions;
        Check("views", Own(expected.Objects.Views, expected.Objects.ExtensionViews), Own(actual.Objects.Views, actual.Objects.ExtensionViews));
        Check("routines", Own(expected.Objects.Routines, expected.Objects.ExtensionRoutines), Own(actual.Objects.Routines, actual.Objects.ExtensionRoutines));
        Check("triggers", expected.Objects.Triggers, actual.Objects.Triggers);
        Check("events", expected.Objects.Events, actual.Objects.Events);
        return new InventoryComparison(lines, mismatches, warnings);

        int Own(int all, int? extensionOwned) => extensions ? all - (extensionOwned ?? 0) : all;

        void Check(string what, int inBackup, int restoredCount)
        {
            var line = $"{what}: {inBackup} in the backup, {restoredCount} restored";
            lines.Add(line);
            if (inBackup != restoredCount)
            {
                mismatches.Add(line);
            }
        }
    }
}
