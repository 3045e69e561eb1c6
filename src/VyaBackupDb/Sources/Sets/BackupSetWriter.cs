using System.Security.Cryptography;
using VyaBackupDb.Sources.Files;

namespace VyaBackupDb.Sources.Sets;

/// <summary>
/// Writes a backup set (see <see cref="BackupSet"/>) into one plain stream. Any number of
/// producers may write data chunks at once: each chunk goes into the tar whole, in the order the
/// calls get in, and is numbered then. Each entry's SHA-256 is taken as it is written.
/// </summary>
public sealed class BackupSetWriter : IDisposable
{
    private readonly TarArchiveWriter _tar;
    private readonly SemaphoreSlim _gate = new(1, 1);
    private readonly List<SetEntry> _entries = [];
    private readonly TarMeta _meta;
    private bool _schemaWritten;
    private int _dataChunks;
    private bool _finished;

    public BackupSetWriter(Stream output, TimeProvider time)
    {
        _tar = new TarArchiveWriter(output);
        _meta = new TarMeta(Mode: 0b110_100_100, Uid: 0, Gid: 0, UserName: null, GroupName: null,
            MtimeSeconds: time.GetUtcNow().ToUnixTimeSeconds(), MtimeNanos: 0);
    }

    /// <summary>The entries written so far, in order (the manifest's list once the set is finished).</summary>
    public IReadOnlyList<SetEntry> Entries
    {
        get
        {
            lock (_entries)
            {
                return [.. _entries];
            }
        }
    }

    /// <summary>Writes schema.sql: <paramref name="length"/> bytes of <paramref name="content"/>. First.</summary>
    public Task WriteSchemaAsync(Stream content, long length, CancellationToken cancellationToken) =>
        WriteAsync(SetEntryKind.Schema, table: null, rows: null, length, (buffer, _) => content.Read(buffer.Span), cancellationToken);

    /// <summary>Writes keys.sql: <paramref name="length"/> bytes of <paramref name="content"/>. Right after schema.sql, if at all.</summary>
    public Task WriteKeysAsync(Stream content, long length, CancellationToken cancellationToken) =>
        WriteAsync(SetEntryKind.Keys, table: null, rows: null, length, (buffer, _) => content.Read(buffer.Span), cancellationToken);

    /// <summary>Writes one data chunk of <paramref name="table"/> holding <paramref name="rows"/> rows.</summary>
    public Task WriteDataAsync(string table, long rows, ReadOnlyMemory<byte> content, CancellationToken cancellationToken) =>
        WriteAsync(SetEntryKind.Data, table, rows, content.Length, (buffer, offset) =>
        {
            var n = (int)Math.Min(buffer.Length, content.Length - offset);
            content.Slice((int)offset, n).CopyTo(buffer);
            return n;
        }, cancellationToken);

    /// <summary>Writes post.sql and ends the archive: nothing can be written after it.</summary>
    public async Task WritePostAsync(Stream content, long length, CancellationToken cancellationToken)
    {
        await WriteAsync(SetEntryKind.Post, table: null, rows: null, length, (buffer, _) => content.Read(buffer.Span), cancellationToken)
            .ConfigureAwait(false);
    }

    private async Task WriteAsync(
        SetEntryKind kind, string? table, long? rows, long length, Func<Memory<byte>, long, int> read, CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (_finished || (kind == SetEntryKind.Schema) == _schemaWritten || (kind == SetEntryKind.Keys && _entries.Count != 1))
            {
                throw new InvalidOperationException($"a backup set's {kind} entry written out of order");
            }
            var name = kind switch
            {
                SetEntryKind.Schema => BackupSet.SchemaEntry,
                SetEntryKind.Keys => BackupSet.KeysEntry,
                SetEntryKind.Post => BackupSet.PostEntry,
                _ => BackupSet.DataEntry(++_dataChunks),
            };
            using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            var written = _tar.WriteFile(name, _meta, length, (buffer, offset) =>
            {
                var n = read(buffer, offset);
                sha.AppendData(buffer.Span[..n]);
                return n;
            }, cancellationToken);
            if (written != length)
            {
                throw new IOException($"{name} ended after {written} of its {length} bytes");
            }
            lock (_entries)
            {
                _entries.Add(new SetEntry(name, length, Convert.ToHexStringLower(sha.GetHashAndReset()), table, rows));
            }
            _schemaWritten = true;
            if (kind == SetEntryKind.Post)
            {
                _tar.Finish();
                _finished = true;
            }
            else
            {
                _tar.Flush();
            }
        }
        finally
        {
            _gate.Release();
        }
    }

    public void Dispose()
    {
        _tar.Dispose();
        _gate.Dispose();
    }
}
