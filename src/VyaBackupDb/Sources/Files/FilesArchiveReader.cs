using System.Formats.Tar;

namespace VyaBackupDb.Sources.Files;

/// <summary>
/// An archive a restore cannot read: damaged (a bad checksum, a number out of range, truncated
/// inside an entry) or holding what it does not read (GNU sparse files). Said in one line.
/// </summary>
internal sealed class UnreadableArchiveException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>
/// The entries of a files archive, for restore and verify alike: read through
/// <see cref="TarMetadataLimit"/>, and whatever System.Formats.Tar throws on what it reads comes
/// out as an <see cref="UnreadableArchiveException"/> (its own exceptions name .NET types, and
/// some are not the ones a caller expects, e.g. an overflow from a base-256 mode). A failure of
/// the stream under it (decoding, decryption, storage), a refusal or a cancellation passes as it is.
/// </summary>
internal sealed class FilesArchiveReader : IDisposable, IAsyncDisposable
{
    private readonly TarMetadataLimit _limit;
    private readonly TarReader _reader;

    public FilesArchiveReader(Stream plain)
    {
        _limit = new TarMetadataLimit(plain);
        _reader = new TarReader(_limit);
    }

    /// <summary>The next entry (its data read from the archive as it is read); null at the end.</summary>
    public TarEntry? Next()
    {
        try
        {
            return Checked(_reader.GetNextEntry(copyData: false));
        }
        catch (Exception e) when (Unreadable(e) is { } unreadable)
        {
            throw unreadable;
        }
    }

    public async ValueTask<TarEntry?> NextAsync(CancellationToken cancellationToken)
    {
        try
        {
            return Checked(await _reader.GetNextEntryAsync(copyData: false, cancellationToken).ConfigureAwait(false));
        }
        catch (Exception e) when (Unreadable(e) is { } unreadable)
        {
            throw unreadable;
        }
    }

    /// <summary>
    /// A pax header comes out as an entry of its own only after a GNU long name, where GNU tar takes the pax
    /// header's name and this reader the long name: the two would restore different trees.
    /// </summary>
    private static TarEntry? Checked(TarEntry? entry) =>
        entry?.EntryType is TarEntryType.ExtendedAttributes
            ? throw new UnreadableArchiveException($"a GNU long name ('{entry.Name[..Math.Min(entry.Name.Length, 200)]}') is followed by a pax header, "
                + "which GNU tar and this restore read as different names; refused")
            : entry;

    public void Dispose() => _reader.Dispose();

    public ValueTask DisposeAsync() => _reader.DisposeAsync();

    /// <summary>The tar reader's failure said in a line; null for what passes as it is.</summary>
    private UnreadableArchiveException? Unreadable(Exception e) =>
        _limit.StreamFailed || e is OperationCanceledException or RefusedEntryException or UnreadableArchiveException
            ? null
            : new UnreadableArchiveException(
                e switch
                {
                    EndOfStreamException => "the archive is truncated (it ends inside an entry)",
                    OverflowException or FormatException or ArgumentException => "a tar header or pax record has a number out of range or malformed",
                    InvalidDataException => $"the archive is damaged: {e.Message}",
                    NotSupportedException => $"the archive has an entry the tar reader does not read: {e.Message}",
                    _ => $"the archive cannot be read as tar: {e.Message}",
                },
                e);
}
