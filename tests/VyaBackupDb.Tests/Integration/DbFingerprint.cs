using System.Security.Cryptography;
using System.Text;

namespace VyaBackupDb.Tests.Integration;

/// <summary>
/// What a database holds, as sorted lines "kind name: detail": one line per table with its row
/// count and a hash over the exact bytes of every row, one per column definition, and one per
/// routine, trigger, event, view, partition, sequence (with its current value), enum type.
/// Nothing in it depends on the database's own name, so a copy under another name compares equal.
/// </summary>
public sealed class DbFingerprint(IEnumerable<string> lines)
{
    public IReadOnlyList<string> Lines { get; } = [.. lines.Order(StringComparer.Ordinal)];

    /// <summary>The names of one kind of object ("table", "routine", "trigger", "event", "view", "sequence", ...).</summary>
    public IReadOnlyList<string> Names(string kind) =>
        [.. Lines.Where(l => l.StartsWith(kind + " ", StringComparison.Ordinal))
            .Select(l => l[(kind.Length + 1)..])
            .Select(l => l[..l.IndexOf(": ", StringComparison.Ordinal)])
            .Distinct()];

    public override string ToString() => string.Join("\n", Lines);

    /// <summary>Fails with the lines only one side has, which says exactly what differs.</summary>
    public static void AssertSame(DbFingerprint expected, DbFingerprint actual, string what)
    {
        var missing = expected.Lines.Except(actual.Lines).ToList();
        var extra = actual.Lines.Except(expected.Lines).ToList();
        if (missing.Count == 0 && extra.Count == 0)
        {
            return;
        }
        var message = new StringBuilder($"{what}: the databases differ.\n");
        foreach (var line in missing.Take(30))
        {
            message.Append("  only in expected: ").Append(line).Append('\n');
        }
        foreach (var line in extra.Take(30))
        {
            message.Append("  only in actual:   ").Append(line).Append('\n');
        }
        Assert.Fail(message.ToString());
    }

    /// <summary>An order-independent hash of a table's rows: the sorted per-row hashes, hashed.</summary>
    public static string HashRows(List<string> rowHashes)
    {
        rowHashes.Sort(StringComparer.Ordinal);
        return Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(string.Join("\n", rowHashes))))[..32];
    }
}
