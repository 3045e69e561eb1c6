using System.Security.Cryptography;
using System.Text.Json;
using VyaBackupDb.Catalog;
using VyaBackupDb.Config;
using VyaBackupDb.Engines;
using VyaBackupDb.Errors;
using VyaBackupDb.Pipeline;

namespace VyaBackupDb.Operations;

/// <summary>The outcome of checking one backup file: empty <see cref="Problems"/> means OK.</summary>
public sealed record FileCheck(string File, BackupManifest? Manifest, IReadOnlyList<string> Problems, IReadOnlyList<string> Notes)
{
    public bool Ok => Problems.Count == 0;
}

/// <summary>
/// Checks a backup file without a database: the stored digest and size against the manifest,
/// then the whole codec chain decoded, the plain digest, and the dump's completion trailer.
/// </summary>
public static class BackupFileChecker
{
    public static string ManifestPath(string file) => file + BackupManifest.Suffix;

    /// <summary>The manifest beside <paramref name="file"/>, null if there is none; a damaged one fails verification.</summary>
    public static BackupManifest? LoadManifest(string file)
    {
        var path = ManifestPath(file);
        if (!File.Exists(path))
        {
            return null;
        }
        try
        {
            return BackupManifest.FromJson(File.ReadAllBytes(path));
        }
        catch (JsonException e)
        {
            throw new VerificationFailedException($"manifest {path} is unreadable: {e.Message}", e);
        }
    }

    /// <summary>Reads the stored file once: a problem (size or digest differs from the manifest), or null.</summary>
    public static async Task<string?> CheckStoredAsync(string file, BackupManifest manifest, CancellationToken cancellationToken)
    {
        var size = new FileInfo(file).Length;
        if (size != manifest.StoredBytes)
        {
            return size < manifest.StoredBytes
                ? $"truncated: {size} bytes, the manifest recorded {manifest.StoredBytes}"
                : $"{size - manifest.StoredBytes} bytes appended: {size} bytes, the manifest recorded {manifest.StoredBytes}";
        }
        await using var stream = OpenRead(file);
        var digest = Convert.ToHexStringLower(await SHA256.HashDataAsync(stream, cancellationToken).ConfigureAwait(false));
        return digest == manifest.StoredSha256 ? null : $"digest mismatch: the stored file's SHA-256 is {digest}, the manifest recorded {manifest.StoredSha256}";
    }

    public static async Task<FileCheck> CheckAsync(string file, CancellationToken cancellationToken)
    {
        var problems = new List<string>();
        var notes = new List<string>();
        if (!File.Exists(file))
        {
            throw new UsageException($"backup file not found: {file}");
        }
        var manifest = LoadManifest(file);
        if (manifest is null)
        {
            notes.Add("no manifest: no digest was recorded; decoded and checked the trailer only");
        }
        else if (await CheckStoredAsync(file, manifest, cancellationToken).ConfigureAwait(false) is { } storedProblem)
        {
            problems.Add(storedProblem);
        }

        var compression = CompressionOf(file);
        var name = BackupName.TryParse(Path.GetFileName(file));
        Dbms? dbms = manifest is not null && DbmsNames.TryParse(manifest.Dbms, out var fromManifest) ? fromManifest : name?.Dbms;
        try
        {
            await using var stored = OpenRead(file);
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
        return new FileCheck(file, manifest, problems, notes);
    }

    public static Compression CompressionOf(string file)
    {
        if (CompressionNames.FromFileName(Path.GetFileName(file)) is { } named)
        {
            return named;
        }
        using var stream = OpenRead(file);
        Span<byte> magic = stackalloc byte[4];
        var n = stream.ReadAtLeast(magic, magic.Length, throwOnEndOfStream: false);
        return Codec.Sniff(magic[..n]);
    }

    public static bool IsDecodeError(Exception e) =>
        e is InvalidDataException or ZstdSharp.ZstdException or EndOfStreamException
        || (e is IOException && e is not FileNotFoundException and not DirectoryNotFoundException);

    public static FileStream OpenRead(string file) => new(file, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 17);
}
