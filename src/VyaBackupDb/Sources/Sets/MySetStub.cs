// TEMPORARY stand-in for the lead's shared set types (SET.md); removed when main lands them.
namespace VyaBackupDb.Sources.Sets;

public sealed record SetEntry(string Name, long Bytes, string Sha256, string? Table = null, long? Rows = null);

public enum SetEntryKind { Schema, Data, Post }

public sealed class BackupSetWriter
{
    private readonly List<(string Name, SetEntryKind Kind, string? Table, long Rows, byte[] Content)> _all = [];

    public IReadOnlyList<(string Name, SetEntryKind Kind, string? Table, long Rows, byte[] Content)> All => _all;

    public async Task WriteSchemaAsync(Stream content, long length, CancellationToken ct) => Add("schema.sql", SetEntryKind.Schema, null, 0, await Read(content, ct));

    public Task WriteDataAsync(string table, long rows, ReadOnlyMemory<byte> content, CancellationToken ct)
    {
        lock (_all)
        {
            Add($"data/{_all.Count:D6}.sql", SetEntryKind.Data, table, rows, content.ToArray());
        }
        return Task.CompletedTask;
    }

    public async Task WritePostAsync(Stream content, long length, CancellationToken ct) => Add("post.sql", SetEntryKind.Post, null, 0, await Read(content, ct));

    private void Add(string name, SetEntryKind kind, string? table, long rows, byte[] content) => _all.Add((name, kind, table, rows, content));

    private static async Task<byte[]> Read(Stream s, CancellationToken ct)
    {
        var m = new MemoryStream();
        await s.CopyToAsync(m, ct);
        return m.ToArray();
    }

    public IReadOnlyList<SetEntry> Entries { get; } = [];
}

public sealed record SetEntryContent(string Name, SetEntryKind Kind, long Length, Stream Content);

public sealed class BackupSetReader(IEnumerable<(string Name, SetEntryKind Kind, byte[] Content)> entries)
{
    private readonly Queue<(string Name, SetEntryKind Kind, byte[] Content)> _left = new(entries);

    public Task<SetEntryContent?> NextAsync(CancellationToken ct) =>
        Task.FromResult(_left.TryDequeue(out var e) ? new SetEntryContent(e.Name, e.Kind, e.Content.Length, new MemoryStream(e.Content)) : null);
}
