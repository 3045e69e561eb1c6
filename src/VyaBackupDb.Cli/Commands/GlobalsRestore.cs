using VyaBackupDb.Catalog;
using VyaBackupDb.Config;
using VyaBackupDb.Engines;
using VyaBackupDb.Errors;
using VyaBackupDb.Operations;
using VyaBackupDb.Pipeline;

namespace VyaBackupDb.Cli.Commands;

/// <summary>restore --globals: a globals backup's roles/accounts and grants applied to the instance's server.</summary>
internal static class GlobalsRestore
{
    private const long MaxScript = 64L << 20;

    public static async Task<ExitCode> RunAsync(
        AppConfig config, InstanceConfig instance, string file, bool dryRun, bool replaceExisting, IReadOnlyList<string> only, bool verify, DecryptionKeys keys,
        CancellationToken cancellationToken)
    {
        var engine = Globals.For(DumpEngines.For(instance));
        using var storages = new Storage.StorageSet(config);
        var location = await BackupLocations.FindAsync(file, instance, config, storages, cancellationToken).ConfigureAwait(false);
        if (await location.StatAsync(cancellationToken).ConfigureAwait(false) is null)
        {
            throw new UsageException($"backup file not found: {location.Description}");
        }
        if (BackupName.TryParse(location.FileName) is { } name && name.Database != Globals.ItemName)
        {
            throw new UsageException($"{location.FileName} is a backup of database '{name.Database}', not of users and grants; restore it without --globals");
        }
        var format = await BackupFileChecker.RestorableFormatAsync(location, cancellationToken).ConfigureAwait(false);
        var manifest = verify ? await location.LoadManifestAsync(cancellationToken).ConfigureAwait(false) : null;
        string script;
        // A few kilobytes per account: read whole, to a bound (tr106: a planted 27 KB file decoding to 300 MB took 1.3 GB).
        var limit = Math.Min(manifest?.PlainBytes ?? MaxScript, MaxScript);
        await using (var plain = new MeasuringStream(await BackupFileChecker.OpenPlainAsync(location, format, keys, cancellationToken).ConfigureAwait(false))
        {
            ExpectedBytes = limit,
            BeyondExpected = _ => limit < MaxScript
                ? new VerificationFailedException($"{location.FileName} decodes past the {limit} bytes its manifest records; nothing was applied")
                : new OperationFailedException($"{location.FileName} decodes to more than {MaxScript >> 20} MiB: no globals backup is that large; nothing was applied"),
        })
        {
            using (var reader = new StreamReader(plain, leaveOpen: true))
            {
                script = await reader.ReadToEndAsync(cancellationToken).ConfigureAwait(false);
            }
            if (manifest is not null && plain.Sha256Hex() != manifest.PlainSha256)
            {
                throw new VerificationFailedException($"{location.FileName} does not match its manifest's digest; nothing was applied");
            }
        }
        var trailer = DumpEngines.CompletionTrailer(instance.Dbms);
        if (verify && !script.TrimEnd().EndsWith(trailer, StringComparison.Ordinal))
        {
            throw new VerificationFailedException($"{location.FileName} does not end with its completion trailer ('{trailer}'): it is incomplete; nothing was applied");
        }
        // Refused (a statement the backup does not write, an --account not in it) before anything is announced or run.
        var accounts = Globals.Select(engine, engine.ParseGlobals(script, Output.Warning), only);
        var verb = dryRun ? "would restore" : "restoring";
        Output.Line($"{verb} users, roles and grants from {location.Description} into instance {instance.Id} ({instance.Name})");
        var result = await Globals.RestoreAsync(engine, accounts, new GlobalsRestoreOptions(dryRun, replaceExisting),
            Output.Line, Output.Warning, cancellationToken).ConfigureAwait(false);
        if (dryRun)
        {
            return ExitCode.Success;
        }
        Output.Line($"restore summary: {result.Restored.Count} restored, {result.Skipped.Count} skipped (existing), {result.Failed.Count} failed");
        if (result.Failed.Count > 0)
        {
            throw new OperationFailedException($"not restored: {string.Join("; ", result.Failed)}");
        }
        return ExitCode.Success;
    }
}
