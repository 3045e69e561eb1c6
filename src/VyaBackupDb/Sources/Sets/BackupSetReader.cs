using System.Formats.Tar;
using System.Security.Cryptography;

namespace VyaBackupDb.Sources.Sets;

/// <summary>
/// Reads a backup set from its plain stream, entry by entry (the tar is one stream). The set is
/// untrusted: entries must come in the set's order with the set's names only (schema.sql, keys.sql
/// or not, data chunks numbered from 1 without gaps, post.sql, the end of the archive), and when the manifest's
/// list is given, each entry must be the one it lists, with its size and digest. Anything else is
/// an <see cref="InvalidDataException"/> naming the entry.
/// </summary>
public sealed class BackupSetReader(Stream plain, IReadOnlyList<SetEntry>? expected) : IAsyncDisposable
{
    private readonly TarReader _tar = new(plain, leaveOpen: true);
    private CheckedContent? _current;
    private int _index;
    private int _dataChunks;
    private bool _ended;

    /// <summary>The manifest's list of entries this set is held to, or null when it is read unchecked.</summary>
    public IReadOnlyList<SetEntry>? Expected => expected;

    /// <summary>The next entry, or null once post.sql was read and the archive ended there.</summary>
    public async Task<SetEntryContent?> NextAsync(CancellationToken cancellationToken)
    {
        if (_current is not null)
        {
            // Whatever the engine left unread is read here: every byte is checked against the manifest.
            await _current.CopyToAsync(Stream.Null, cancellationToken).ConfigureAwait(false);
            _current = null;
        }
        if (_ended)
        {
            return null;
        }
        var entry = await _tar.GetNextEntryAsync(copyData: false, cancellationToken).ConfigureAwait(false);
        if (entry is null)
        {
            throw new InvalidDataException(_index == 0
                ? "the backup set holds no entries"
                : "the backup set ends before post.sql: it is truncated or incomplete");
        }
        var parsed = BackupSet.Parse(entry.Name);
        if (entry.EntryType is not (TarEntryType.RegularFile or TarEntryType.V7RegularFile) || parsed is not { } kind)
        {
            throw new InvalidDataException($"the backup set holds an unexpected entry '{Printable(entry.Name)}'");
        }
        var inOrder = kind.Kind switch
        {
            SetEntryKind.Schema => _index == 0,
            SetEntryKind.Keys => _index == 1,
            SetEntryKind.Data => _index > 0 && kind.Number == _dataChunks + 1,
            _ => _index > 0,
        };
        if (!inOrder)
        {
            throw new InvalidDataException($"the backup set's entry '{entry.Name}' is out of order");
        }
        SetEntry? listed = null;
        if (expected is not null)
        {
            listed = _index < expected.Count ? expected[_index] : null;
            if (listed is null || listed.Name != entry.Name)
            {
                throw new InvalidDataException($"the backup set's entry '{entry.Name}' is not the one its manifest lists ({listed?.Name ?? "none"})");
            }
            if (listed.Bytes != entry.Length)
            {
                throw new InvalidDataException($"the backup set's entry '{entry.Name}' holds {entry.Length} bytes, its manifest {listed.Bytes}");
            }
        }
        _index++;
        if (kind.Kind == SetEntryKind.Data)
        {
            _dataChunks++;
        }
        _current = new CheckedContent(entry.DataStream ?? Stream.Null, entry.Name, entry.Length, listed?.Sha256);
        if (kind.Kind == SetEntryKind.Post)
        {
            _ended = true;
        }
        return new SetEntryContent(entry.Name, kind.Kind, entry.Length, _current);
    }

    /// <summary>
    /// After post.sql: the archive must end there (its end blocks), and the manifest must list
    /// nothing more. Reads the plain stream to its end, so that its digest covers every byte.
    /// </summary>
    public async Task CheckEndAsync(CancellationToken cancellationToken)
    {
        if (await NextAsync(cancellationToken).ConfigureAwait(false) is not null || !_ended)
        {
            throw new InvalidDataException("the backup set ends before post.sql: it is truncated or incomplete");
        }
        if (await _tar.GetNextEntryAsync(copyData: false, cancellationToken).ConfigureAwait(false) is { } extra)
        {
            throw new InvalidDataException($"the backup set holds an entry after post.sql ('{Printable(extra.Name)}')");
        }
        if (expected is not null && expected.Count != _index)
        {
            throw new InvalidDataException($"the manifest lists {expected.Count} entries, the backup set holds {_index}");
        }
        await plain.CopyToAsync(Stream.Null, cancellationToken).ConfigureAwait(false);
    }

    public ValueTask DisposeAsync() => _tar.DisposeAsync();

    private static string Printable(string name) =>
        new([.. name.Take(200).Select(c => char.IsControl(c) ? '?' : c)]);

    /// <summary>An entry's content; at its end, its size and (when the manifest gives it) its SHA-256 are checked.</summary>
    private sealed class CheckedContent(Stream inner, string name, long length, string? sha256) : Pipeline.ReadOnlyStream
    {
        private readonly IncrementalHash _hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        private long _read;
        private bool _checked;

        public override long Length => length;
        public override long Position { get => _read; set => throw new NotSupportedException(); }

        public override int Read(Span<byte> buffer)
        {
            var n = inner.Read(buffer);
            return Account(buffer[..n]);
        }

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            var n = await inner.ReadAsync(buffer, cancellationToken).ConfigureAwait(false);
            return Account(buffer.Span[..n]);
        }

        private int Account(ReadOnlySpan<byte> data)
        {
            _hash.AppendData(data);
            _read += data.Length;
            if (data.Length == 0 && !_checked)
            {
                _checked = true;
                if (_read != length)
                {
                    throw new InvalidDataException($"the backup set's entry '{name}' is truncated ({_read} of {length} bytes)");
                }
                if (sha256 is not null && Convert.ToHexStringLower(_hash.GetHashAndReset()) != sha256)
                {
                    throw new InvalidDataException($"the backup set's entry '{name}' differs from its manifest's digest");
                }
            }
            return data.Length;
        }

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                _hash.Dispose();
            }
            base.Dispose(disposing);
        }
    }
}
