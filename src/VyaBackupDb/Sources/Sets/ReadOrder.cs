namespace VyaBackupDb.Sources.Sets;

/// <summary>
/// The order in which a parallel backup's connections take the pieces (whole tables or key
/// ranges) of the tables: the largest tables first, <c>jobs</c> tables at a time, their pieces
/// taken in turn. So the connections read different tables rather than all ranges of one, and
/// the set holds those tables' chunks interleaved: a restore, which loads the chunks in the set's
/// order, then has its loaders on different tables too (two loaders filling one table get in each
/// other's way: PostgreSQL took 10-20 % longer), and each group of tables is complete, its
/// indexes built, while the next one loads.
/// </summary>
public static class ReadOrder
{
    public static List<T> Of<T>(IEnumerable<(IReadOnlyList<T> Pieces, long Bytes)> tables, int jobs)
    {
        var ordered = new List<T>();
        foreach (var group in tables.OrderByDescending(t => t.Bytes).Chunk(Math.Max(1, jobs)))
        {
            for (var i = 0; group.Any(t => i < t.Pieces.Count); i++)
            {
                ordered.AddRange(group.Where(t => i < t.Pieces.Count).Select(t => t.Pieces[i]));
            }
        }
        return ordered;
    }
}
