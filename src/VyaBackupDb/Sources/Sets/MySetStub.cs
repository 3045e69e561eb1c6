// TEMPORARY stand-in for the lead's shared set types (SET.md); removed when main lands them.
namespace VyaBackupDb.Sources.Sets;

public sealed record SetEntry(string Name, long Bytes, string Sha256, string? Table = null, long? Rows = null);

public enum SetEntryKind { Schema, Data, Post }

public sealed class BackupSetWriter
{
    public Task WriteSchemaAsync(Stream content, long length, CancellationToken ct) => throw new NotImplementedException();

    public Task WriteDataAsync(string table, long rows, ReadOnlyMemory<byte> content, CancellationToken ct) => throw new NotImplementedException();

    public Task WritePostAsync(Stream content, long length, CancellationToken ct) => throw new NotImplementedException();

    public IReadOnlyList<SetEntry> Entries { get; } = [];
}

public sealed record SetEntryContent(string Name, SetEntryKind Kind, long Length, Stream Content);

public sealed class BackupSetReader
{
    public Task<SetEntryContent?> NextAsync(CancellationToken ct) => throw new NotImplementedException();
}
