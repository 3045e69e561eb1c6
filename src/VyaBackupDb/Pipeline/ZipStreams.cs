using System.IO.Compression;

namespace VyaBackupDb.Pipeline;

/// <summary>Writes one zip entry (as the old tool did); disposing writes the central directory.</summary>
internal sealed class ZipEntryWriteStream : WrapperStream
{
    private readonly ZipArchive _archive;

    public ZipEntryWriteStream(Stream stored, string entryName)
        : this(new ZipArchive(stored, ZipArchiveMode.Create, leaveOpen: true), entryName)
    {
    }

    private ZipEntryWriteStream(ZipArchive archive, string entryName)
        : base(archive.CreateEntry(entryName, CompressionLevel.Fastest).Open())
    {
        _archive = archive;
    }

    protected override void Dispose(bool disposing)
    {
        base.Dispose(disposing);
        if (disposing)
        {
            _archive.Dispose();
        }
    }

    public override async ValueTask DisposeAsync()
    {
        await base.DisposeAsync().ConfigureAwait(false);
        await _archive.DisposeAsync().ConfigureAwait(false);
    }
}

/// <summary>Reads the single entry of a zip backup.</summary>
internal sealed class ZipEntryReadStream : WrapperStream
{
    private readonly ZipArchive _archive;

    private ZipEntryReadStream(ZipArchive archive, Stream entry)
        : base(entry)
    {
        _archive = archive;
    }

    public static Stream Open(Stream stored)
    {
        ZipArchive archive;
        try
        {
            archive = new ZipArchive(stored, ZipArchiveMode.Read, leaveOpen: false);
        }
        catch (InvalidDataException e)
        {
            stored.Dispose(); // may be a temp spool of the archive: delete it now
            throw new InvalidDataException($"not a readable zip archive: {e.Message}", e);
        }
        var entries = archive.Entries.Where(e => !e.FullName.EndsWith('/')).ToList();
        if (entries.Count != 1)
        {
            archive.Dispose();
            throw new InvalidDataException($"a zip backup must hold exactly one file, this one holds {entries.Count}");
        }
        return new ZipEntryReadStream(archive, entries[0].Open());
    }

    protected override void Dispose(bool disposing)
    {
        base.Dispose(disposing);
        if (disposing)
        {
            _archive.Dispose();
        }
    }

    // Without this, `await using` closed the entry but not the archive, and the archive's stream
    // (a spool of the decrypted dump in /tmp) stayed behind.
    public override async ValueTask DisposeAsync()
    {
        await base.DisposeAsync().ConfigureAwait(false);
        await _archive.DisposeAsync().ConfigureAwait(false);
    }
}
