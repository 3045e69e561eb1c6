using System.Security.Cryptography;
using VyaBackupDb.Catalog;
using VyaBackupDb.Config;
using VyaBackupDb.Engines;
using VyaBackupDb.Errors;
using VyaBackupDb.Pipeline;

namespace VyaBackupDb.Operations;

/// <summary>The outcome of checking one backup file: empty <see cref="Problems"/> means OK.</summary>
public sealed record FileCheck(
    string File, BackupManifest? Manifest, IReadOnlyList<string> Problems, IReadOnlyList<string> Notes, BackupLocation? Location = null)
{
    public bool Ok => Problems.Count == 0;
}

/// <summary>
/// Checks a backup file without a database: the stored digest and size against the manifest,
/// then the whole codec chain decoded, the plain digest, and the dump's completion trailer.
/// Works on any storage (a local path is a <see cref="BackupLocation"/> too).
/// </summary>
public static class BackupFileChecker
{
    /// <summary>Reads the stored file once: a problem (size or digest differs from the manifest), or null.</summary>
    public static async Task<string?> CheckStoredAsync(BackupLocation location, BackupManifest manifest, CancellationToken cancellationToken)
    {
        var size = await location.SizeAsync(cancellationToken).ConfigureAwait(false);
        if (size != manifest.StoredBytes)
        {
            return size < manifest.StoredBytes
                ? $"truncated: {size} bytes, the manifest recorded {manifest.StoredBytes}"
                : $"{size - manifest.StoredBytes} bytes appended: {size} bytes, the manifest recorded {manifest.StoredBytes}";
        }
        var (bytes, digest) = await DigestAsync(location, cancellationToken).ConfigureAwait(false);
        if (bytes != manifest.StoredBytes)
        {
            return $"read {bytes} bytes, the manifest recorded {manifest.StoredBytes}";
        }
        return digest == manifest.StoredSha256 ? null : $"digest mismatch: the stored file's SHA-256 is {digest}, the manifest recorded {manifest.StoredSha256}";
    }

    /// <summary>Size and hex SHA-256 of the stored bytes, read once.</summary>
    public static async Task<(long Bytes, string Sha256)> DigestAsync(BackupLocation location, CancellationToken cancellationToken)
    {
        await using var stream = await location.OpenReadAsync(cancellationToken).ConfigureAwait(false);
        await using var measured = new MeasuringStream(stream);
        await measured.CopyToAsync(Stream.Null, 1 << 20, cancellationToken).ConfigureAwait(false);
        return (measured.Bytes, measured.Sha256Hex());
    }

    public static async Task<FileCheck> CheckAsync(BackupLocation location, CancellationToken cancellationToken)
    {
        var problems = new List<string>();
        var notes = new List<string>();
        if (await location.StatAsync(cancellationToken).ConfigureAwait(false) is null)
        {
            throw new UsageException($"backup file not found: {location.Description}");
        }
        var manifest = await location.LoadManifestAsync(cancellationToken).ConfigureAwait(false);
        if (manifest is null)
        {
            notes.Add("no manifest: no digest was recorded; decoded and checked the trailer only");
        }
        else if (await CheckStoredAsync(location, manifest, cancellationToken).ConfigureAwait(false) is { } storedProblem)
        {
            problems.Add(storedProblem);
        }

        var compression = await CompressionOfAsync(location, cancellationToken).ConfigureAwait(false);
        var name = BackupName.TryParse(location.FileName);
        Dbms? dbms = manifest is not null && DbmsNames.TryParse(manifest.Dbms, out var fromManifest) ? fromManifest : name?.Dbms;
        try
        {
            await using var stored = await location.OpenForDecodingAsync(compression, cancellationToken).ConfigureAwait(false);
            await using var plain = new MeasuringStream(Codec.Decompress(compression, stored));
            await plain.CopyToAsync(Stream.Null, cancellationToken).ConfigureAwait(false);
            var trailers = dbms is { } known
                ? [DumpEngines.CompletionTrailer(known)]
                : new[] { DumpEngines.CompletionTrailer(Dbms.MySql), DumpEngines.CompletionTrailer(Dbms.PostgreSql) };
            if (!trailers.Any(plain.TailContains))
            {
                problems.Add("truncated: the dump ends without its completion trailer");
            }
            if (manifest is not null)
            {
                var plainDigest = plain.Sha256Hex();
                if (plain.Bytes != manifest.PlainBytes || plainDigest != manifest.PlainSha256)
                {
                    problems.Add($"the decoded dump differs from the manifest ({plain.Bytes} bytes, SHA-256 {plainDigest}; "
                        + $"recorded {manifest.PlainBytes} bytes, {manifest.PlainSha256})");
                }
            }
        }
        catch (Exception e) when (IsDecodeError(e))
        {
            problems.Add($"undecodable as {compression.ToName()}: {e.Message}");
        }
        return new FileCheck(location.Description, manifest, problems, notes, location);
    }

    /// <summary>The codec of a backup: from its name, else sniffed from its first bytes.</summary>
    public static async Task<Compression> CompressionOfAsync(BackupLocation location, CancellationToken cancellationToken)
    {
        if (CompressionNames.FromFileName(location.FileName) is { } named)
        {
            return named;
        }
        await using var stream = await location.OpenReadAsync(cancellationToken).ConfigureAwait(false);
        var magic = new byte[4];
        var n = await stream.ReadAtLeastAsync(magic, magic.Length, throwOnEndOfStream: false, cancellationToken).ConfigureAwait(false);
        return Codec.Sniff(magic.AsSpan(0, n));
    }

    /// <summary>
    /// A failure to decode the stored bytes, as opposed to a failure to reach them (a missing file,
    /// a storage that cannot be reached: <see cref="Storage.StorageException"/>).
    /// </summary>
    public static bool IsDecodeError(Exception e) =>
        e is InvalidDataException or ZstdSharp.ZstdException or EndOfStreamException
        || (e is IOException && e is not FileNotFoundException and not DirectoryNotFoundException and not Storage.StorageException);
}
