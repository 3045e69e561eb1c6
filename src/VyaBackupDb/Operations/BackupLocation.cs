using System.Text.Json;
using VyaBackupDb.Catalog;
using VyaBackupDb.Config;
using VyaBackupDb.Errors;
using VyaBackupDb.Pipeline;
using VyaBackupDb.Storage;
using VyaBackupDb.Storage.Local;
using VyaBackupDb.Storage.S3;
using VyaBackupDb.Storage.Sftp;

namespace VyaBackupDb.Operations;

/// <summary>
/// One backup file in some storage: the storage, the key, and what restore and verify need from
/// it (size, content, the manifest beside it). A local path is a key in a <see cref="LocalStorage"/>
/// rooted at its directory.
/// </summary>
public sealed class BackupLocation(IReadOnlyStorage storage, string key)
{
    public IReadOnlyStorage Storage { get; } = storage;

    public string Key { get; } = StorageKey.Validate(key);

    /// <summary>A path or URL, for messages.</summary>
    public string Description => Storage.Describe(Key);

    public string FileName => StorageKey.FileName(Key);

    public string ManifestKey => BackupManifest.KeyFor(Key);

    public override string ToString() => Description;

    /// <summary>A file on this machine; a symbolic link is taken as the file it leads to (its size, its manifest beside it).</summary>
    public static BackupLocation LocalFile(string path)
    {
        var full = Path.GetFullPath(path);
        if (File.ResolveLinkTarget(full, returnFinalTarget: true) is { } target)
        {
            full = target.FullName;
        }
        return new BackupLocation(new LocalStorage(Path.GetDirectoryName(full)!), Path.GetFileName(full));
    }

    public Task<StorageEntry?> StatAsync(CancellationToken cancellationToken) => Storage.StatAsync(Key, cancellationToken);

    public async Task<long> SizeAsync(CancellationToken cancellationToken) =>
        (await StatAsync(cancellationToken).ConfigureAwait(false))?.Size
        ?? throw new FileNotFoundException($"{Description} does not exist", Description);

    public Task<Stream> OpenReadAsync(CancellationToken cancellationToken) => Storage.OpenReadAsync(Key, cancellationToken);

    /// <summary>
    /// Opens the file for <see cref="Codec.Decompress"/>. A zip needs a seekable stream (its
    /// directory is at the end): from a backend that streams (S3), it is first copied to a private
    /// temp file (0600, deleted when the stream is closed).
    /// </summary>
    public async Task<Stream> OpenForDecodingAsync(Compression compression, CancellationToken cancellationToken)
    {
        var stream = await OpenReadAsync(cancellationToken).ConfigureAwait(false);
        if (compression != Compression.Zip || stream.CanSeek)
        {
            return stream;
        }
        return await TempSpool.CopyAsync(stream, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// The manifest beside the file, null if there is none. A damaged one, or one describing another
    /// file, database or dbms (list's check, <see cref="BackupCatalog.Mismatch"/>), fails verification:
    /// restore and verify never take another backup's manifest for this file's.
    /// </summary>
    public async Task<BackupManifest?> LoadManifestAsync(CancellationToken cancellationToken)
    {
        BackupManifest manifest;
        try
        {
            manifest = await BackupManifest.ReadAsync(Storage, ManifestKey, cancellationToken).ConfigureAwait(false);
        }
        catch (FileNotFoundException)
        {
            return null;
        }
        catch (Exception e) when (e is JsonException or InvalidDataException)
        {
            throw new VerificationFailedException($"manifest {Storage.Describe(ManifestKey)} is unreadable: {e.Message}", e);
        }
        var name = BackupName.TryParse(FileName);
        if (BackupCatalog.Mismatch(manifest, FileName, name, name?.Dbms) is { } mismatch)
        {
            throw new VerificationFailedException($"{mismatch} (manifest {Storage.Describe(ManifestKey)})");
        }
        return manifest;
    }
}

/// <summary>
/// Turns what the user gave to --file into a <see cref="BackupLocation"/>:
/// <list type="bullet">
/// <item><c>NAME:KEY</c>: key KEY in the storage NAME of the config (<c>local</c> is backup_dir),
/// e.g. <c>offsite:main-mysql/20260113_155440_mysql_dns_db.sql.zst</c>;</item>
/// <item><c>s3://BUCKET/OBJECT-KEY</c>: the configured S3 storage of that bucket whose prefix the
/// object key starts with (the longest one);</item>
/// <item><c>sftp://[USER@]HOST[:PORT]/PATH</c>: the configured SFTP storage of that host and port whose
/// path PATH is inside (as <c>Describe</c> prints it);</item>
/// <item>anything else: a path on this machine.</item>
/// </list>
/// </summary>
public static class BackupLocations
{
    public static BackupLocation Resolve(string text, AppConfig? config, StorageSet? storages)
    {
        RefusePassword(text);
        if (text.StartsWith("s3://", StringComparison.Ordinal))
        {
            return ResolveS3(text, config, storages);
        }
        if (text.StartsWith("sftp://", StringComparison.Ordinal))
        {
            return ResolveSftp(text, config, storages);
        }
        var colon = text.IndexOf(':', StringComparison.Ordinal);
        if (colon > 0 && config is not null && storages is not null)
        {
            var name = text[..colon];
            if (name == StorageConfig.LocalName || config.StorageConfigs.Any(s => s.Name == name))
            {
                var key = text[(colon + 1)..].TrimStart('/');
                return new BackupLocation(storages.Get(name), CheckKey(key, text));
            }
        }
        if (text.Length == 0)
        {
            // A script's "$(newest ...)" that found nothing.
            throw new UsageException("no backup file named (--file is empty)");
        }
        if (Directory.Exists(text))
        {
            throw new UsageException($"{text} is a folder: --file names one backup file (list shows them)");
        }
        if (!File.Exists(text))
        {
            throw new UsageException($"backup file not found: {text}");
        }
        try
        {
            return BackupLocation.LocalFile(text);
        }
        catch (ArgumentException)
        {
            throw new UsageException($"cannot use '{text}' as a backup file: its name holds a backslash or a control character");
        }
    }

    /// <summary>
    /// What the user gave to --file, resolved: a bare backup file name (as `list` shows it) that is
    /// not a file in the current directory is looked up in the instance's folder of each of the
    /// instance's destinations, in order (no <paramref name="instance"/>: of every instance of
    /// its dbms): the first copy with its manifest beside it, else the first found. Anything else
    /// as <see cref="Resolve"/> does. A destination that cannot be reached is passed over.
    /// </summary>
    public static async Task<BackupLocation> FindAsync(
        string text, InstanceConfig? instance, AppConfig config, StorageSet storages, CancellationToken cancellationToken)
    {
        if (text.Contains('/', StringComparison.Ordinal) || text.Contains(':', StringComparison.Ordinal) || File.Exists(text)
            || BackupName.TryParse(text) is not { } name)
        {
            return Resolve(text, config, storages);
        }
        var instances = instance is not null ? [instance] : config.Instances.Where(i => name.Dbms is null || i.Dbms == name.Dbms).ToList();
        var searched = new List<string>();
        BackupLocation? withoutManifest = null;
        foreach (var candidate in instances)
        {
            foreach (var (storageName, storage) in storages.For(candidate))
            {
                var key = BackupCatalog.InstancePrefix(candidate) + text;
                searched.Add(storage.Describe(key));
                try
                {
                    if (await storage.StatAsync(key, cancellationToken).ConfigureAwait(false) is null)
                    {
                        continue;
                    }
                    var found = new BackupLocation(storage, key);
                    // A copy with its manifest (digests, counts) before one without, whose checks are the trailer alone (tr103).
                    if (await storage.StatAsync(found.ManifestKey, cancellationToken).ConfigureAwait(false) is not null)
                    {
                        return found;
                    }
                    withoutManifest ??= found;
                }
                catch (Exception e) when (StorageSet.IsStorageFault(e, cancellationToken))
                {
                    searched[^1] += $" (storage '{storageName}' cannot be reached)";
                }
            }
        }
        return withoutManifest
            ?? throw new UsageException($"backup file not found: {text} is neither here nor at {string.Join(", ", searched)}");
    }

    /// <summary>
    /// A URL with USER:PASSWORD@ in it is refused without being quoted: the password would go on to
    /// error lines and log files. A destination's credentials come from its storage: section.
    /// </summary>
    private static void RefusePassword(string text)
    {
        var scheme = text.IndexOf("://", StringComparison.Ordinal);
        if (scheme <= 0)
        {
            return;
        }
        var authority = text[(scheme + 3)..];
        authority = authority[..(authority.IndexOf('/', StringComparison.Ordinal) is var slash and >= 0 ? slash : authority.Length)];
        if (authority.LastIndexOf('@') is var at and > 0 && authority[..at].Contains(':', StringComparison.Ordinal))
        {
            throw new UsageException($"a --file location holding a password ({text[..scheme]}://USER:PASSWORD@...) is refused and not shown: "
                + "a destination's credentials come from its storage: section; give NAME:KEY or the location list prints");
        }
    }

    private static BackupLocation ResolveS3(string text, AppConfig? config, StorageSet? storages)
    {
        var rest = text["s3://".Length..];
        var slash = rest.IndexOf('/', StringComparison.Ordinal);
        if (slash <= 0 || slash == rest.Length - 1)
        {
            throw new UsageException($"'{text}' is not an S3 location (s3://BUCKET/KEY)");
        }
        var bucket = rest[..slash];
        var objectKey = rest[(slash + 1)..];
        var match = (config?.StorageConfigs ?? []).OfType<S3StorageConfig>()
            .Where(s => s.Bucket == bucket && objectKey.StartsWith(s.Prefix, StringComparison.Ordinal) && objectKey.Length > s.Prefix.Length)
            .OrderByDescending(s => s.Prefix.Length)
            .FirstOrDefault()
            ?? throw new UsageException(
                $"no S3 storage in {config?.SourcePath ?? "the config"} holds {text}: add one for bucket '{bucket}' to its storage: section "
                + "(its endpoint and credentials are needed), or use NAME:KEY");
        return new BackupLocation(storages!.Get(match.Name), CheckKey(objectKey[match.Prefix.Length..], text));
    }

    /// <summary>
    /// sftp://[USER@]HOST[:PORT]/[~/]PATH, read literally as SftpStorage.Describe prints it: a '%' is part of
    /// the name (database names are %-encoded into file names), so nothing is decoded.
    /// </summary>
    private static BackupLocation ResolveSftp(string text, AppConfig? config, StorageSet? storages)
    {
        var rest = text["sftp://".Length..];
        var slash = rest.IndexOf('/', StringComparison.Ordinal);
        var at = slash < 0 ? -1 : rest.LastIndexOf('@', slash);
        var hostPort = slash < 0 ? "" : rest[(at + 1)..slash];
        var colon = hostPort.LastIndexOf(':');
        var port = 22;
        if (slash <= 0 || slash == rest.Length - 1 || hostPort.Length == 0
            || (colon >= 0 && !hostPort.EndsWith(']') && !int.TryParse(hostPort[(colon + 1)..], System.Globalization.NumberStyles.None,
                System.Globalization.CultureInfo.InvariantCulture, out port)))
        {
            throw new UsageException($"'{text}' is not an SFTP location (sftp://[USER@]HOST[:PORT]/PATH)");
        }
        var host = (colon >= 0 && !hostPort.EndsWith(']') ? hostPort[..colon] : hostPort).Trim('[', ']');
        var user = at < 0 ? null : rest[..at];
        // "~/" (as Describe prints a folder relative to the login folder) or not: both name the folder the config gives.
        var path = rest[(slash + 1)..].TrimStart('/');
        path = path.StartsWith("~/", StringComparison.Ordinal) ? path[2..].TrimStart('/') : path;
        foreach (var sftp in (config?.StorageConfigs ?? []).OfType<SftpStorageConfig>()
            .Where(s => string.Equals(s.Host, host, StringComparison.OrdinalIgnoreCase) && s.Port == port && (user is null || s.User == user))
            .OrderByDescending(s => s.Path.Trim('/').Length))
        {
            var root = sftp.Root.TrimStart('/');
            if (root.Length == 0)
            {
                return new BackupLocation(storages!.Get(sftp.Name), CheckKey(path, text));
            }
            if (path.StartsWith(root + "/", StringComparison.Ordinal))
            {
                return new BackupLocation(storages!.Get(sftp.Name), CheckKey(path[(root.Length + 1)..], text));
            }
        }
        throw new UsageException(
            $"no SFTP storage in {config?.SourcePath ?? "the config"} holds {text}: add one for {host}:{port} to its storage: section "
            + "(its credentials and host_fingerprint are needed), or use NAME:KEY");
    }

    private static string CheckKey(string key, string text)
    {
        try
        {
            return StorageKey.Validate(key);
        }
        catch (ArgumentException)
        {
            throw new UsageException($"'{text}' does not name a file in its storage (an empty, '.' or '..' segment?)");
        }
    }

    /// <summary>How a location is written for <see cref="Resolve"/>: NAME:KEY.</summary>
    public static string Format(string storageName, string key) => $"{storageName}:{key}";
}
