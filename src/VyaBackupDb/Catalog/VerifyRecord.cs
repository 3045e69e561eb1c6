using System.Text.Json;
using System.Text.Json.Serialization;
using VyaBackupDb.Storage;

namespace VyaBackupDb.Catalog;

/// <summary>
/// That a backup's stored bytes were read and matched its manifest's SHA-256, and when: written
/// beside the manifest (<c>&lt;file&gt;.verify.json</c>) by `verify` and by `prune` after a check
/// that passed, in the same destination as the file it is about (each copy has its own). It
/// counts only while it is newer than the data file (in that storage's own clock: a file changed
/// since is checked again) and names the manifest's digest (a record of another file with the same
/// name does not count). `verify` also records a check of the file that failed (<see cref="Failure"/>),
/// so that `list` says what it found until the file changes or is checked again.
/// </summary>
public sealed record VerifyRecord
{
    public const string Suffix = ".verify.json";

    public required string DataFile { get; init; }
    public required long StoredBytes { get; init; }
    public required string StoredSha256 { get; init; }
    public required DateTimeOffset CheckedUtc { get; init; }

    /// <summary>"verify" or "prune".</summary>
    public required string CheckedBy { get; init; }
    public required string ToolVersion { get; init; }

    /// <summary>
    /// What the check found wrong with the file; null when it passed. A failed check's <see cref="StoredSha256"/> is
    /// empty, so that no build (earlier ones know no failures) takes it for a pass; <see cref="ManifestSha256"/> names
    /// the manifest it was checked against.
    /// </summary>
    public string? Failure { get; init; }

    public string? ManifestSha256 { get; init; }

    public static string KeyFor(string dataKey) => dataKey + Suffix;

    /// <summary>
    /// Whether the record vouches for the file now: it matches the manifest, and it was written
    /// after the file's last change (<paramref name="recordModified"/> and <paramref name="dataModified"/>
    /// are the storage's times).
    /// </summary>
    public bool Covers(BackupManifest manifest, DateTimeOffset recordModified, DateTimeOffset dataModified) =>
        Failure is null && DataFile == manifest.DataFile && StoredBytes == manifest.StoredBytes && StoredSha256 == manifest.StoredSha256
        && recordModified > dataModified;

    /// <summary>Whether the record is of a failed check of the file as it is now, against this manifest.</summary>
    public bool Condemns(BackupManifest manifest, DateTimeOffset recordModified, DateTimeOffset dataModified) =>
        Failure is not null && DataFile == manifest.DataFile && StoredBytes == manifest.StoredBytes && ManifestSha256 == manifest.StoredSha256
        && recordModified > dataModified;

    /// <summary>The record, or null when it is missing or unreadable (then it vouches for nothing).</summary>
    public static async Task<VerifyRecord?> ReadAsync(IReadOnlyStorage storage, string dataKey, CancellationToken cancellationToken)
    {
        try
        {
            await using var stream = await storage.OpenReadAsync(KeyFor(dataKey), cancellationToken).ConfigureAwait(false);
            var buffer = new byte[64 * 1024];
            var n = await stream.ReadAtLeastAsync(buffer, buffer.Length, throwOnEndOfStream: false, cancellationToken).ConfigureAwait(false);
            return JsonSerializer.Deserialize(buffer.AsSpan(0, n), VerifyRecordJson.Default.VerifyRecord);
        }
        catch (Exception e) when (e is FileNotFoundException or JsonException)
        {
            return null;
        }
    }

    /// <summary>
    /// Writes the record of a check made just now, which passed (<paramref name="failure"/> null) or found that;
    /// <paramref name="replace"/>: there is one already (null: look).
    /// </summary>
    public static async Task WriteAsync(
        IStorage storage, string dataKey, BackupManifest manifest, string checkedBy, DateTimeOffset now, bool? replace,
        CancellationToken cancellationToken, string? failure = null)
    {
        var record = new VerifyRecord
        {
            DataFile = manifest.DataFile,
            StoredBytes = manifest.StoredBytes,
            StoredSha256 = failure is null ? manifest.StoredSha256 : "",
            CheckedUtc = now,
            CheckedBy = checkedBy,
            ToolVersion = ToolInfo.Version,
            Failure = failure,
            ManifestSha256 = failure is null ? null : manifest.StoredSha256,
        };
        var key = KeyFor(dataKey);
        // Writes never overwrite: the old record goes first (without one, the next prune just checks again).
        if (replace ?? await storage.StatAsync(key, cancellationToken).ConfigureAwait(false) is not null)
        {
            await storage.DeleteAsync(key, cancellationToken).ConfigureAwait(false);
        }
        await using var write = await storage.CreateAsync(key, cancellationToken).ConfigureAwait(false);
        await write.Content.WriteAsync(JsonSerializer.SerializeToUtf8Bytes(record, VerifyRecordJson.Default.VerifyRecord), cancellationToken)
            .ConfigureAwait(false);
        await write.CommitAsync(cancellationToken).ConfigureAwait(false);
    }
}

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower, WriteIndented = true,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(VerifyRecord))]
internal sealed partial class VerifyRecordJson : JsonSerializerContext;
