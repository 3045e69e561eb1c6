using System.Globalization;
using System.Text.RegularExpressions;

namespace VyaBackupDb.Sources.Sets;

/// <summary>One entry of a backup set, as the manifest lists it.</summary>
/// <param name="Bytes">The entry's plain size.</param>
/// <param name="Table">A data chunk's table, as the inventory spells it; null for the other entries.</param>
/// <param name="Rows">The rows the chunk holds; null for the other entries.</param>
public sealed record SetEntry(string Name, long Bytes, string Sha256, string? Table = null, long? Rows = null);

public enum SetEntryKind
{
    Schema,
    Keys,
    Data,
    Post,
}

/// <summary>An entry being read: <paramref name="Content"/> is checked against the manifest when read to its end.</summary>
public sealed record SetEntryContent(string Name, SetEntryKind Kind, long Length, Stream Content);

/// <summary>
/// The layout of a backup set: a pax tar holding <c>schema.sql</c>, optionally <c>keys.sql</c>
/// (PostgreSQL: the tables' indexes and key constraints, which a restore builds as each table's rows
/// are in), then the data chunks <c>data/000001.sql</c>, <c>data/000002.sql</c>, ... in the order
/// they were written, then <c>post.sql</c>, which marks the set complete. Concatenated in that order,
/// they are a dump.
/// </summary>
public static class BackupSet
{
    public const string Format = "set";
    public const string SchemaEntry = "schema.sql";
    public const string KeysEntry = "keys.sql";
    public const string PostEntry = "post.sql";

    /// <summary>What a complete set's plain stream ends with: tar's end blocks.</summary>
    public static string EndOfArchive => Files.FilesArchiveCheck.EndOfArchive;

    private static readonly Regex DataName = new(@"^data/(?<n>[0-9]{6})\.sql$", RegexOptions.CultureInvariant);

    public static string DataEntry(int number) => string.Create(CultureInfo.InvariantCulture, $"data/{number:D6}.sql");

    /// <summary>The kind and (for data) the number of an entry name; null for any other name.</summary>
    public static (SetEntryKind Kind, int Number)? Parse(string name)
    {
        if (name == SchemaEntry)
        {
            return (SetEntryKind.Schema, 0);
        }
        if (name == KeysEntry)
        {
            return (SetEntryKind.Keys, 0);
        }
        if (name == PostEntry)
        {
            return (SetEntryKind.Post, 0);
        }
        var match = DataName.Match(name);
        return match.Success ? (SetEntryKind.Data, int.Parse(match.Groups["n"].Value, CultureInfo.InvariantCulture)) : null;
    }
}
