using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using Spectre.Console;
using Spectre.Console.Rendering;
using VyaBackupDb.Catalog;
using VyaBackupDb.Config;
using VyaBackupDb.Errors;
using VyaBackupDb.Operations;
using VyaBackupDb.Storage;
using VyaBackupDb.Pipeline;

namespace VyaBackupDb.Cli.Commands;

/// <summary>One row of `list`; also its --json shape (snake_case names, stable: scripts read them).</summary>
internal sealed record ListedBackup(
    int InstanceId,
    string Instance,
    string Database,
    DateTime TimeUtc,
    long SizeBytes,
    string Compression,
    string? Encryption,
    bool Complete,
    bool Verified,
    string Status,
    string? Problem,
    string Storage,
    string Key,
    string Location,
    DateTime? DigestCheckedUtc)
{
    /// <summary>What restore --file and verify --file take for this backup: STORAGE:KEY.</summary>
    public string Id => $"{Storage}:{Key}";
}

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower, WriteIndented = true)]
[JsonSerializable(typeof(List<ListedBackup>))]
internal sealed partial class ListJson : JsonSerializerContext;

internal static class ListCommand
{
    public static Command Create()
    {
        var instance = new Option<int?>("--instance", "-i") { Description = "Only the backups of this instance (its id in the config)" };
        var database = new Option<string?>("--database", "-d") { Description = "Only the backups of this database" };
        var json = new Option<bool>("--json") { Description = "Print a JSON array (for scripts)" };
        var all = new Option<bool>("--all", "-a") { Description = "Also list incomplete backups (data files without a manifest)" };
        var storageName = new Option<string?>("--storage", "-s") { Description = "Only this destination (a name from the config's storage:, or local)" };

        var command = new Command("list", "List backups, newest first") { instance, database, storageName, json, all };
        command.SetAction((parseResult, cancellationToken) => CommonOptions.RunAsync(async () =>
        {
            var config = CommonOptions.LoadConfig(parseResult);
            if (parseResult.GetValue(storageName) is { } only)
            {
                config.GetStorage(only); // an unknown name is a usage error, not an empty list
            }
            IReadOnlyList<InstanceConfig> instances = parseResult.GetValue(instance) is { } id ? [config.GetInstance(id)] : config.Instances;
            var databaseName = parseResult.GetValue(database);
            var includeIncomplete = parseResult.GetValue(all);

            var rows = new List<ListedBackup>();
            using var storages = new StorageSet(config);
            // A destination that is down is named once and skipped; a folder that cannot be listed fails
            // only its instance. The others are still listed.
            var down = new HashSet<string>(StringComparer.Ordinal);
            var failures = 0;
            foreach (var inst in instances)
            {
                foreach (var name in inst.StorageNames.Where(s => parseResult.GetValue(storageName) is not { } only || s == only))
                {
                    if (down.Contains(name))
                    {
                        continue;
                    }
                    IReadOnlyList<CatalogBackup> backups;
                    try
                    {
                        backups = await BackupCatalog.InspectAsync(storages.Get(name), inst, cancellationToken).ConfigureAwait(false);
                    }
                    catch (Exception e) when (StorageSet.IsStorageFault(e, cancellationToken))
                    {
                        failures++;
                        // The reason last: .NET's texts end in a full stop.
                        if (StorageSet.IsDestinationDown(e))
                        {
                            down.Add(name);
                            Output.Error($"storage '{name}' cannot be listed, its backups are not shown: {IoErrors.Describe(e)}");
                        }
                        else
                        {
                            Output.Error($"instance {inst.Id} ({inst.Name}): storage '{name}' cannot be listed, its backups there are not shown: {IoErrors.Describe(e)}");
                        }
                        continue;
                    }
                    foreach (var backup in backups)
                    {
                        if ((databaseName is null || backup.Entry.Name.Database == databaseName)
                            && (includeIncomplete || backup.Status != BackupStatus.Incomplete))
                        {
                            rows.Add(Row(backup, name, storages.Get(name).Describe(backup.Entry.Key)));
                        }
                    }
                }
            }
            rows = [.. rows
                .OrderByDescending(r => r.TimeUtc)
                .ThenBy(r => r.InstanceId)
                .ThenBy(r => r.Database, StringComparer.Ordinal)
                .ThenBy(r => r.Key, StringComparer.Ordinal)];

            if (parseResult.GetValue(json))
            {
                Output.Json(JsonSerializer.Serialize(rows, ListJson.Default.ListListedBackup));
            }
            else if (rows.Count == 0)
            {
                Output.Line((includeIncomplete ? "no backups found" : "no backups found (--all also lists incomplete ones)")
                    + (failures == 0 ? "" : " in the destinations that could be listed"));
            }
            else
            {
                Output.Table(Headers, [.. rows.Select(Cells)]);
            }
            // The lines above named each destination or folder that could not be listed.
            return failures > 0 ? Errors.ExitCode.Failed : Errors.ExitCode.Success;
        }, cancellationToken));
        return command;
    }

    private static ListedBackup Row(CatalogBackup backup, string storage, string location)
    {
        var entry = backup.Entry;
        var compression = backup.Manifest?.Compression ?? entry.Name.Compression.ToName();
        return new ListedBackup(
            backup.Instance.Id,
            backup.Instance.Name,
            entry.Name.Database,
            DateTime.SpecifyKind(entry.Name.TimestampUtc, DateTimeKind.Utc),
            entry.Size,
            compression,
            backup.Manifest?.Encryption,
            backup.IsComplete,
            // Verified: verify read the file and its SHA-256 matched; the catalog itself compares sizes only.
            backup.DigestCheckedUtc is not null,
            backup.Status switch
            {
                BackupStatus.Verified => backup.DigestCheckedUtc is null ? "size_ok" : "verified",
                BackupStatus.VerifyFailed => "verify_failed",
                BackupStatus.SizeMismatch => "size_mismatch",
                BackupStatus.Incomplete => "incomplete",
                BackupStatus.MissingData => "missing_data",
                _ => "bad_manifest",
            },
            backup.Problem,
            storage,
            entry.Key,
            location,
            backup.DigestCheckedUtc?.UtcDateTime);
    }

    private static readonly string[] Headers = ["INSTANCE", "DATABASE", "TIME (UTC)", "SIZE", "COMPRESSION", "ENCRYPTION", "VERIFIED", "STORAGE"];

    private static string[] Cells(ListedBackup row) =>
    [
        $"{row.Instance} ({row.InstanceId.ToString(CultureInfo.InvariantCulture)})",
        row.Database,
        row.TimeUtc.ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture),
        Output.Size(row.SizeBytes),
        row.Compression,
        row.Encryption ?? "-",
        row.Status switch
        {
            // What was checked, and when: list itself compares sizes only; verify (or prune) reads the digest.
            "verified" => $"sha256 ok {row.DigestCheckedUtc!.Value.ToString("yyyy-MM-dd HH:mm", CultureInfo.InvariantCulture)}",
            "size_ok" => "size ok",
            "size_mismatch" => "NO: size differs from the manifest",
            "incomplete" => "incomplete (no manifest)",
            "missing_data" => "NO: data file missing (only its manifest is there)",
            // What is wrong with it: unreadable, or a manifest of another file or database.
            _ => $"NO: {row.Problem}",
        },
        row.Storage,
    ];
}
