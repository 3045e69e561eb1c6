using System.Text.Json;
using System.Text.Json.Serialization;

namespace VyaBackupDb.Catalog;

/// <summary>Rows of one table, as counted when the backup was taken.</summary>
/// <param name="Exact">True when counted in the dump's own snapshot; false for a count taken beside it (an estimate).</param>
public sealed record TableRows(string Name, long Rows, bool Exact);

public sealed record SequenceValue(string Name, long Value);

public sealed record ObjectCounts(int Views, int Routines, int Triggers, int Events);

/// <summary>What a database held when it was dumped: compared against the restored copy.</summary>
public sealed record DatabaseInventory(IReadOnlyList<TableRows> Tables, IReadOnlyList<SequenceValue> Sequences, ObjectCounts Objects);

/// <summary>
/// Written last, beside the data file, after the data is committed: a backup without a manifest
/// is not a backup. Holds what is needed to check the file (digests, sizes) and the restored
/// database (row and object counts).
/// </summary>
public sealed record BackupManifest
{
    public const int CurrentSchemaVersion = 1;
    public const string Suffix = ".manifest.json";
    public const string ChecksumSuffix = ".sha256";

    public int SchemaVersion { get; init; } = CurrentSchemaVersion;
    public required string ToolVersion { get; init; }
    public required string DataFile { get; init; }
    public required int InstanceId { get; init; }
    public required string InstanceName { get; init; }
    public required string Dbms { get; init; }
    public required string ServerFlavor { get; init; }
    public required string ServerVersion { get; init; }
    public required string Database { get; init; }
    public required string DumpTool { get; init; }
    public required string DumpToolVersion { get; init; }
    public string Format { get; init; } = "sql";
    public required string Compression { get; init; }
    public string? Encryption { get; init; }
    public required DateTimeOffset StartedUtc { get; init; }
    public required DateTimeOffset FinishedUtc { get; init; }
    public required long PlainBytes { get; init; }
    public required long StoredBytes { get; init; }
    public required string PlainSha256 { get; init; }
    public required string StoredSha256 { get; init; }
    public required DatabaseInventory Inventory { get; init; }

    /// <summary>A files backup (format "tar"): what the archive holds; null for database backups.</summary>
    public FilesSummary? Files { get; init; }

    public static string KeyFor(string dataKey) => dataKey + Suffix;

    public byte[] ToJson() => JsonSerializer.SerializeToUtf8Bytes(this, ManifestJson.Default.BackupManifest);

    /// <summary>Parses a manifest; throws <see cref="JsonException"/> for anything malformed or of an unknown schema.</summary>
    public static BackupManifest FromJson(ReadOnlySpan<byte> json)
    {
        var manifest = JsonSerializer.Deserialize(json, ManifestJson.Default.BackupManifest)
            ?? throw new JsonException("empty manifest");
        if (manifest.SchemaVersion != CurrentSchemaVersion)
        {
            throw new JsonException($"manifest schema version {manifest.SchemaVersion} is not supported (this tool reads {CurrentSchemaVersion})");
        }
        return manifest;
    }

    /// <summary>A manifest is small; anything larger is not one (and must not fill memory).</summary>
    private const int MaxBytes = 64 << 20;

    /// <summary>
    /// Reads and parses the manifest at <paramref name="key"/>. Throws FileNotFoundException when
    /// there is none, JsonException or InvalidDataException when it is not a readable manifest.
    /// </summary>
    public static async Task<BackupManifest> ReadAsync(Storage.IReadOnlyStorage storage, string key, CancellationToken cancellationToken)
    {
        await using var stream = await storage.OpenReadAsync(key, cancellationToken).ConfigureAwait(false);
        using var buffer = new MemoryStream();
        var chunk = new byte[81920];
        int n;
        while ((n = await stream.ReadAsync(chunk, cancellationToken).ConfigureAwait(false)) > 0)
        {
            if (buffer.Length + n > MaxBytes)
            {
                throw new InvalidDataException($"larger than {MaxBytes >> 20} MiB");
            }
            buffer.Write(chunk, 0, n);
        }
        return FromJson(buffer.ToArray());
    }

    /// <summary>The `sha256sum -c` line for the data file.</summary>
    public string ChecksumLine => $"{StoredSha256}  {DataFile}\n";
}

[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower,
    WriteIndented = true,
    RespectRequiredConstructorParameters = true)]
[JsonSerializable(typeof(BackupManifest))]
internal sealed partial class ManifestJson : JsonSerializerContext;
