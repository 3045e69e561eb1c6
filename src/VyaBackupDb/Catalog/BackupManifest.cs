using System.Text.Json;
using System.Text.Json.Serialization;

namespace VyaBackupDb.Catalog;

/// <summary>Rows of one table, as counted when the backup was taken.</summary>
/// <param name="Exact">
/// True when counted from the dump itself (its stream, or its snapshot); false for a count that
/// cannot be held against the restored table (an estimate, or a table whose data the dump leaves out).
/// </param>
/// <param name="History">
/// A MariaDB system-versioned table whose history is in the dump: <paramref name="Rows"/> counts
/// every row version, current and historical (as <c>FOR SYSTEM_TIME ALL</c> does).
/// </param>
public sealed record TableRows(
    string Name,
    long Rows,
    bool Exact,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] bool? History = null);

/// <summary>A sequence's value (PostgreSQL: pg_sequences.last_value, 0 if never called; MariaDB: its next value).</summary>
/// <param name="Exact">
/// True when read off the dump itself (the value its setval sets): the restored sequence must hold
/// exactly it. Absent in older manifests (PostgreSQL's value was read before pg_dump read the
/// sequence) and for a sequence the dump does not set: then only a lower value is a mismatch.
/// </param>
public sealed record SequenceValue(
    string Name,
    long Value,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] bool? Exact = null);

/// <param name="ExtensionViews">
/// PostgreSQL: how many of the views belong to extensions (and <paramref name="ExtensionRoutines"/>, of the routines),
/// and the extensions' versions (<paramref name="Extensions"/>: "name version, ..."). pg_dump writes CREATE EXTENSION
/// without a version, so the restoring server installs its default one, which may make more or fewer: where a
/// version differs, only the others are compared. Absent in older manifests and for MySQL.
/// </param>
public sealed record ObjectCounts(
    int Views,
    int Routines,
    int Triggers,
    int Events,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] int? ExtensionViews = null,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] int? ExtensionRoutines = null,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Extensions = null);

/// <summary>A table and its storage engine.</summary>
public sealed record TableEngine(string Name, string Engine);

/// <summary>What a database held when it was dumped: compared against the restored copy.</summary>
/// <param name="OutsideSnapshot">
/// MySQL/MariaDB tables whose engine is not transactional (MyISAM, Aria, MEMORY, ...): the dump's
/// snapshot does not cover them, so their data may be from another moment than the rest.
/// </param>
public sealed record DatabaseInventory(
    IReadOnlyList<TableRows> Tables,
    IReadOnlyList<SequenceValue> Sequences,
    ObjectCounts Objects,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] IReadOnlyList<TableEngine>? OutsideSnapshot = null);

/// <summary>
/// Written last, beside the data file, after the data is committed: a backup without a manifest
/// is not a backup. Holds what is needed to check the file (digests, sizes) and the restored
/// database (row and object counts).
/// </summary>
public sealed record BackupManifest
{
    /// <summary>Version 2 adds a backup set's entries (format "set"); other backups keep writing version 1.</summary>
    public const int CurrentSchemaVersion = 2;
    public const int SqlSchemaVersion = 1;
    public const string Suffix = ".manifest.json";
    public const string ChecksumSuffix = ".sha256";

    public int SchemaVersion { get; init; } = SqlSchemaVersion;
    public required string ToolVersion { get; init; }
    public required string DataFile { get; init; }
    public required int InstanceId { get; init; }
    public required string InstanceName { get; init; }

    /// <summary>
    /// The server the instance named (host:port as configured; null for a files instance and in manifests before
    /// 2026-11-30): with the instance id, what tells a backup of another server in an instance's folder (names swapped).
    /// </summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? Server { get; init; }
    public required string Dbms { get; init; }
    public required string ServerFlavor { get; init; }
    public required string ServerVersion { get; init; }
    public required string Database { get; init; }
    public required string DumpTool { get; init; }
    public required string DumpToolVersion { get; init; }
    public string Format { get; init; } = "sql";
    public required string Compression { get; init; }
    public string? Encryption { get; init; }

    /// <summary>
    /// The age recipients (public keys) an encrypted backup was made for, or "passphrase": after a key rotation, which
    /// key decrypts it. Null in backups of earlier builds.
    /// </summary>
    public IReadOnlyList<string>? EncryptedTo { get; init; }

    /// <summary>What a failed decryption adds to its message: whose key it needs, if the manifest says.</summary>
    public string DecryptionHint => EncryptedTo is { Count: > 0 } to ? $"; it was encrypted to {string.Join(", ", to)}" : "";
    public required DateTimeOffset StartedUtc { get; init; }
    public required DateTimeOffset FinishedUtc { get; init; }
    public required long PlainBytes { get; init; }
    public required long StoredBytes { get; init; }
    public required string PlainSha256 { get; init; }
    public required string StoredSha256 { get; init; }
    public required DatabaseInventory Inventory { get; init; }

    /// <summary>A files backup (format "tar"): what the archive holds; null for database backups.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public FilesSummary? Files { get; init; }

    /// <summary>The database's own settings, re-applied when a restore creates the target; null in older manifests.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public DatabaseSettings? Settings { get; init; }

    /// <summary>A backup set's entries in order, with their digests and rows (format "set"); null for other backups.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public IReadOnlyList<Sources.Sets.SetEntry>? Entries { get; init; }

    /// <summary>The connections a backup set was written with.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public int? Jobs { get; init; }

    /// <summary>Where the snapshot stands in the server's log (MySQL binlog file:position and GTID; PostgreSQL WAL LSN), when known.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? SourcePosition { get; init; }

    public static string KeyFor(string dataKey) => dataKey + Suffix;

    public byte[] ToJson() => JsonSerializer.SerializeToUtf8Bytes(this, ManifestJson.Default.BackupManifest);

    /// <summary>Parses a manifest; throws <see cref="JsonException"/> for anything malformed or of an unknown schema.</summary>
    public static BackupManifest FromJson(ReadOnlySpan<byte> json)
    {
        BackupManifest? parsed;
        try
        {
            parsed = JsonSerializer.Deserialize(json, ManifestJson.Default.BackupManifest);
        }
        catch (JsonException e)
        {
            throw new JsonException(Describe(e), e);
        }
        var manifest = parsed ?? throw new JsonException("empty manifest");
        if (manifest.SchemaVersion is < SqlSchemaVersion or > CurrentSchemaVersion)
        {
            throw new JsonException($"manifest schema version {manifest.SchemaVersion} is not supported (this tool reads {SqlSchemaVersion} to {CurrentSchemaVersion})");
        }
        if (manifest.PlainBytes < 0 || manifest.StoredBytes < 0)
        {
            throw new JsonException("a size (plain_bytes, stored_bytes) is negative");
        }
        if ((manifest.Format == Sources.Sets.BackupSet.Format) != (manifest.Entries is not null))
        {
            throw new JsonException("a backup set's manifest lists its entries, and only a backup set's does");
        }
        return manifest;
    }

    /// <summary>
    /// What is wrong, in the manifest's own field names: System.Text.Json's messages name .NET types
    /// ("could not be converted to VyaBackupDb.Catalog.BackupManifest").
    /// </summary>
    private static string Describe(JsonException e)
    {
        // "$.inventory.tables[0].rows" -> "inventory.tables[0].rows"
        var path = e.Path is { Length: > 1 } p ? p.TrimStart('$').TrimStart('.') : null;
        var missing = e.Message.IndexOf("missing required properties including:", StringComparison.Ordinal);
        if (missing >= 0)
        {
            // The names come quoted: ... including: 'instance_id', 'dbms'.
            var names = e.Message[missing..].Split('\'').Where((_, i) => i % 2 == 1).Select(n => path is null ? n : $"{path}.{n}");
            return $"missing field(s) {string.Join(", ", names)}";
        }
        if (e.Message.StartsWith("The JSON value could not be converted", StringComparison.Ordinal) && path is not null)
        {
            return $"field {path} has the wrong type";
        }
        return e.LineNumber is { } line ? $"not valid JSON (line {line + 1})" : "not valid JSON";
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
