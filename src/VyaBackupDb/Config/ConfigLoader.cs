using System.Globalization;
using VyaBackupDb.Config.Vault;
using VyaBackupDb.Errors;
using VyaBackupDb.Pipeline;
using VyaBackupDb.Pipeline.Age;
using VyaBackupDb.Retention;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace VyaBackupDb.Config;

/// <summary>
/// Loads config.yaml. Walks the YAML node tree by hand (rather than deserialising) so that every
/// error names the file, the line and the key, and unknown keys (typos) are errors, not ignored.
/// </summary>
public static partial class ConfigLoader
{
    public const string EnvVar = "VYA_BACKUPDB_CONFIG";
    public const string DefaultPath = "config.yaml";

    /// <summary>The most connections <c>jobs:</c> / <c>--jobs</c> may ask for.</summary>
    public const int MaxJobs = 64;

    /// <summary>
    /// Connections when neither <c>jobs:</c> nor <c>--jobs</c> says: one per core, at most 8. Each
    /// job holds a chunk or two in memory (3-7 MB measured); up to 8 the peak stays under 200 MB.
    /// </summary>
    public static int DefaultJobs => Math.Min(Environment.ProcessorCount, 8);

    /// <summary>--config, else $VYA_BACKUPDB_CONFIG, else ./config.yaml.</summary>
    public static string ResolvePath(string? fromCommandLine)
    {
        if (fromCommandLine is not null)
        {
            // Empty: a script's unset variable (--config "$CFG"); falling back would run another config.
            return fromCommandLine.Length > 0 ? fromCommandLine : throw new UsageException("--config: an empty file name");
        }
        var fromEnv = Environment.GetEnvironmentVariable(EnvVar);
        return string.IsNullOrEmpty(fromEnv) ? DefaultPath : fromEnv;
    }

    /// <summary>
    /// Loads and checks the config. <paramref name="prompt"/> asks for the vault passphrase if a
    /// vault entry is needed and neither the environment nor a key file gives it.
    /// </summary>
    public static AppConfig Load(string path, SecretPrompt? prompt = null)
    {
        string text;
        try
        {
            text = BoundedRead.Text(path, "a config file");
        }
        // Too many open files is this host's limit, not a config error (exit 2): it goes up as it is.
        catch (Exception e) when (e is IOException or UnauthorizedAccessException && !IoErrors.IsTooManyOpenFiles(e))
        {
            throw new ConfigException($"cannot read config file {path}: {IoErrors.OpenFailureReason(e, path)}");
        }
        var config = Parse(text, path, prompt);
        return config with { Warnings = [.. config.Warnings, .. PermissionWarnings(path, config)] };
    }

    /// <summary>A config that every local user can read must not hold a password in plain text.</summary>
    private static IEnumerable<string> PermissionWarnings(string path, AppConfig config)
    {
        if (OperatingSystem.IsWindows())
        {
            yield break;
        }
        var mode = File.GetUnixFileMode(path);
        List<string> literal =
        [
            .. config.Instances.Where(i => i.Password.IsLiteral).Select(i => $"instance {i.Id.ToString(CultureInfo.InvariantCulture)}"),
            // A destination's secrets as much as a database's password.
            .. config.StorageConfigs.SelectMany(s => s switch
            {
                S3StorageConfig s3 when s3.SecretAccessKey.IsLiteral => [$"storage '{s3.Name}' secret_access_key"],
                SftpStorageConfig sftp => new[] { (sftp.Password, "password"), (sftp.PrivateKeyPassphrase, "private_key_passphrase") }
                    .Where(p => p.Item1.IsLiteral).Select(p => $"storage '{sftp.Name}' {p.Item2}"),
                _ => [],
            }),
            .. config.Notifiers.SelectMany(NotifierLiterals),
        ];
        if ((mode & UnixFileMode.OtherRead) != 0 && literal.Count > 0)
        {
            yield return $"{path} is readable by every user (mode {Convert.ToString((int)mode, 8)}) and holds secrets in plain text "
                + $"({string.Join(", ", literal)}): chmod 600 it, or use the _env or _file forms (or the vault for passwords)";
        }
    }

    /// <summary>The line of the first alias (<c>*name</c>) that no anchor before it defines.</summary>
    private static long UnknownAliasLine(string yaml)
    {
        var anchors = new HashSet<string>(StringComparer.Ordinal);
        var parser = new Parser(new StringReader(yaml));
        while (parser.MoveNext())
        {
            switch (parser.Current)
            {
                case YamlDotNet.Core.Events.AnchorAlias alias when !anchors.Contains(alias.Value.Value):
                    return alias.Start.Line;
                case YamlDotNet.Core.Events.NodeEvent { Anchor.IsEmpty: false } node:
                    anchors.Add(node.Anchor.Value);
                    break;
            }
        }
        return 1;
    }

    public static AppConfig Parse(string yaml, string path, SecretPrompt? prompt = null)
    {
        var stream = new YamlStream();
        try
        {
            stream.Load(new StringReader(yaml));
        }
        catch (YamlException e)
        {
            var cause = e.InnerException as YamlException ?? e;
            // An alias's message quotes the text after the '*' (often a password pasted unquoted) and its line is the document's.
            if (cause is AnchorNotFoundException)
            {
                throw new ConfigException($"{path}:{UnknownAliasLine(yaml)}: invalid YAML: "
                    + "a value starting with '*' is read as an alias to an anchor that does not exist: quote the value");
            }
            throw new ConfigException($"{path}:{cause.Start.Line}: invalid YAML: {FirstLine(cause.Message)}");
        }
        if (stream.Documents.Count == 0)
        {
            throw new ConfigException($"{path}: the config file is empty");
        }
        if (stream.Documents.Count > 1)
        {
            // Files joined with `cat`, each starting with ---: only the first would be read, the rest never backed up.
            throw new ConfigException($"{path}:{stream.Documents[1].RootNode.Start.Line}: a second YAML document (after ---): "
                + "a config is one document; join the parts under one instances: list");
        }
        var reader = new Reader(path, prompt);
        var root = reader.Mapping(stream.Documents[0].RootNode, "top level");
        return reader.ReadConfig(root);
    }

    private static string FirstLine(string message) => message.Split('\n')[0].Trim();

    private sealed partial class Reader(string path, SecretPrompt? prompt)
    {
        private const string VaultPrefix = "vault:";

        /// <summary>Scheduling and several runners (the schedule command, storage locks).</summary>
        private static readonly string[] ScheduleTopKeys = ["time_zone", "lock_lease_seconds", "stop_grace_seconds"];

        /// <summary>An instance's schedule (database and files instances alike).</summary>
        private static readonly string[] ScheduleInstanceKeys = ["schedule", "schedule_time_zone", "schedule_verify", "schedule_prune"];

        private static readonly string[] TopKeys =
            ["backup_dir", "compression", "compression_level", "timeout_seconds", "connect_timeout_seconds", "retention", "vault_file", "vault_key_file", "encryption", "storage", "instances", "notify",
                .. ScheduleTopKeys];

        private static readonly string[] EncryptionKeys = ["recipients", "passphrase_env", "passphrase_file", "identity_files"];

        private static readonly string[] RetentionKeys =
        [
            "keep_last", "keep_hourly", "keep_daily", "keep_weekly", "keep_monthly", "keep_yearly", "keep_within",
        ];

        private static readonly string[] LocalStorageKeys = ["name", "type", "path"];

        private static readonly string[] S3StorageKeys =
        [
            "name", "type", "endpoint", "region", "bucket", "prefix", "force_path_style",
            "access_key_id", "access_key_id_env", "access_key_id_file",
            "secret_access_key", "secret_access_key_env", "secret_access_key_file", "part_size_mb",
        ];

        private static readonly string[] SftpStorageKeys =
        [
            "name", "type", "host", "port", "user", "password", "password_env", "password_file",
            "private_key_file", "private_key_passphrase", "private_key_passphrase_env", "private_key_passphrase_file",
            "host_fingerprint", "path",
        ];

        private static readonly string[] InstanceKeys =
        [
            "id", "name", "dbms", "host", "port", "user", "password", "password_env", "password_file", "credentials",
            "enabled", "include", "exclude", "filter", "ignore", "tools_dir", "retention", "encrypt", "storage", "maintenance_database",
            "owners", "trust_backups", "definer", "globals", "globals_passwords", "globals_tablespaces", "engine", "jobs", "load_data_local", "lock_wait_seconds",
            "expect_every",
            .. ScheduleInstanceKeys,
        ];

        private static readonly string[] FilesInstanceKeys =
        [
            "id", "name", "dbms", "paths", "include", "exclude", "skip_unreadable", "enabled", "retention", "encrypt", "storage",
            "expect_every",
            .. ScheduleInstanceKeys,
        ];

        public AppConfig ReadConfig(YamlMappingNode root)
        {
            CheckKeys(root, TopKeys, "");
            var baseDir = Path.GetDirectoryName(Path.GetFullPath(path)) ?? ".";
            var backupDir = OptionalString(root, "backup_dir", "") ?? throw Error(root, "backup_dir", "is required");
            // "/backups/" is "/backups": one spelling of each directory (the locks tell destinations apart by it).
            backupDir = Path.TrimEndingDirectorySeparator(Path.GetFullPath(Path.Combine(baseDir, backupDir)));

            var compressionText = OptionalString(root, "compression", "") ?? "zstd";
            if (!CompressionNames.TryParse(compressionText, out var compression))
            {
                throw Error(Get(root, "compression")!, "compression", $"'{compressionText}' is not one of none, gzip, zstd, zip");
            }

            var compressionLevel = OptionalInt(root, "compression_level", "");
            if (compressionLevel is { } level)
            {
                var range = Codec.LevelRange(compression)
                    ?? throw Error(Get(root, "compression_level")!, "compression_level", $"is for gzip and zstd; {compression.ToName()} has no level to choose");
                if (level < range.Min || level > range.Max)
                {
                    throw Error(Get(root, "compression_level")!, "compression_level",
                        $"{level} is outside {compression.ToName()}'s levels {range.Min}-{range.Max}");
                }
            }

            var timeoutSeconds = OptionalInt(root, "timeout_seconds", "") ?? 3600;
            if (timeoutSeconds <= 0)
            {
                throw Error(Get(root, "timeout_seconds")!, "timeout_seconds", "must be a positive number of seconds");
            }

            var connectTimeoutSeconds = OptionalInt(root, "connect_timeout_seconds", "") ?? 30;
            if (connectTimeoutSeconds <= 0)
            {
                throw Error(Get(root, "connect_timeout_seconds")!, "connect_timeout_seconds", "must be a positive number of seconds");
            }

            var retention = ReadRetention(root, "");

            var vaultFile = OptionalString(root, "vault_file", "") ?? CredentialVault.DefaultFileName;
            var vaultKeyFile = OptionalString(root, "vault_key_file", "");
            var vault = new CredentialVault(
                Path.Combine(baseDir, vaultFile),
                vaultKeyFile is null ? null : Path.GetFullPath(Path.Combine(baseDir, vaultKeyFile)),
                prompt);

            var storages = new List<StorageConfig>();
            if (Get(root, "storage") is { } storageNode)
            {
                if (storageNode is not YamlSequenceNode storageList)
                {
                    throw new ConfigException($"{path}:{Line(storageNode)}: storage: expected a list of destinations");
                }
                for (var i = 0; i < storageList.Children.Count; i++)
                {
                    var storage = ReadStorage(Mapping(storageList.Children[i], $"storage[{i}]"), $"storage[{i}].", baseDir, vault);
                    if (storages.Any(x => x.Name == storage.Name))
                    {
                        throw new ConfigException($"{path}:{Line(storageList.Children[i])}: storage[{i}].name: '{storage.Name}' is used twice");
                    }
                    storages.Add(storage);
                }
            }

            var timeZone = ReadTimeZone(root, "time_zone", "") ?? TimeZoneInfo.Utc;
            var encryption = ReadEncryption(root, baseDir, out var canEncrypt);
            var instances = new List<InstanceConfig>();
            if (Get(root, "instances") is { } instancesNode)
            {
                if (instancesNode is not YamlSequenceNode sequence)
                {
                    throw new ConfigException($"{path}:{Line(instancesNode)}: instances: expected a list");
                }
                for (var i = 0; i < sequence.Children.Count; i++)
                {
                    var instanceNode = Mapping(sequence.Children[i], $"instances[{i}]");
                    var instance = ReadInstance(instanceNode, $"instances[{i}].", baseDir, vault, storages);
                    instance = instance with { Schedule = ReadSchedule(instanceNode, $"instances[{i}].", timeZone) };
                    var places = instance.StorageNames
                        .Select(n => (Name: n, Place: n == StorageConfig.LocalName ? LocalStorageConfig.PlaceOf(backupDir) : storages.First(s => s.Name == n).Place)).ToList();
                    if (places.GroupBy(p => p.Place).FirstOrDefault(g => g.Count() > 1) is { } samePlace)
                    {
                        // Each backup would be listed, counted and kept twice, and its copy there would fail.
                        throw Error(Get(instanceNode, "storage")!, $"instances[{i}].storage",
                            $"'{samePlace.First().Name}' and '{samePlace.Last().Name}' are the same place: name it once");
                    }
                    if (instance.Encrypt && !canEncrypt)
                    {
                        // Said by every command, not only by the backup that would fail on it.
                        throw Error(Get(instanceNode, "encrypt")!, $"instances[{i}].encrypt",
                            "is true, but the config has no encryption: section with recipients or a passphrase");
                    }
                    if (instances.Any(x => x.Id == instance.Id))
                    {
                        throw new ConfigException($"{path}:{Line(sequence.Children[i])}: instances[{i}].id: id {instance.Id} is used twice");
                    }
                    // An instance's backups are the files in the folder of its name: two instances in one folder would
                    // list and prune each other's. Case too: backup_dir may be on a case-insensitive file system.
                    if (instances.FirstOrDefault(x => string.Equals(x.Name, instance.Name, StringComparison.OrdinalIgnoreCase)) is { } other)
                    {
                        var nameNode = Get(instanceNode, "name");
                        var which = nameNode is null ? $"'{instance.Name}' (the default name of id {instance.Id})" : $"'{instance.Name}'";
                        var clash = other.Name == instance.Name
                            ? $"is also instance {other.Id}'s name"
                            : $"differs only in case from instance {other.Id}'s name '{other.Name}'";
                        throw new ConfigException(
                            $"{path}:{Line(nameNode ?? sequence.Children[i])}: instances[{i}].name: {which} {clash}; each instance needs a name (its backup folder) of its own");
                    }
                    instances.Add(instance);
                }
            }
            return new AppConfig(path, backupDir, compression, TimeSpan.FromSeconds(timeoutSeconds), instances, retention, storages)
            {
                Vault = vault,
                Encryption = encryption,
                ConnectTimeout = TimeSpan.FromSeconds(connectTimeoutSeconds),
                CompressionLevel = compressionLevel,
                TimeZone = timeZone,
                LockLease = TimeSpan.FromSeconds(Seconds(root, "lock_lease_seconds", (int)Operations.StorageLock.DefaultLease.TotalSeconds, min: 30,
                    max: (int)Operations.StorageLock.MaxLease.TotalSeconds)),
                StopGrace = TimeSpan.FromSeconds(Seconds(root, "stop_grace_seconds", 60, min: 0)),
                Notifiers = ReadNotifiers(root, baseDir, vault),
            };
        }

        /// <summary>A number of seconds (a top-level key), at least <paramref name="min"/> and at most <paramref name="max"/>.</summary>
        private int Seconds(YamlMappingNode root, string key, int fallback, int min, int max = int.MaxValue)
        {
            var value = OptionalInt(root, key, "") ?? fallback;
            return value < min ? throw Error(Get(root, key)!, key, $"{value} is less than {min} seconds")
                : value > max ? throw Error(Get(root, key)!, key, $"{value} is more than {max} seconds")
                : value;
        }

        /// <summary>An IANA time zone name (Europe/Paris, UTC), checked now so that a typo is not found at 2 a.m.</summary>
        private TimeZoneInfo? ReadTimeZone(YamlMappingNode node, string key, string prefix)
        {
            if (OptionalString(node, key, prefix) is not { } name)
            {
                return null;
            }
            try
            {
                return TimeZoneInfo.FindSystemTimeZoneById(name);
            }
            catch (Exception e) when (e is TimeZoneNotFoundException or InvalidTimeZoneException)
            {
                throw Error(Get(node, key)!, prefix + key, $"'{name}' is not a time zone known here (an IANA name such as Europe/Paris, or UTC)");
            }
        }

        /// <summary>schedule: a cron expression (minute hour day-of-month month day-of-week, or @daily...; a leading seconds field allowed) in a time zone.</summary>
        private ScheduleConfig? ReadSchedule(YamlMappingNode node, string prefix, TimeZoneInfo defaultZone)
        {
            var zone = ReadTimeZone(node, "schedule_time_zone", prefix);
            var verify = OptionalBool(node, "schedule_verify", prefix);
            var prune = OptionalBool(node, "schedule_prune", prefix);
            if (OptionalString(node, "schedule", prefix) is not { } text)
            {
                var orphan = new[] { "schedule_time_zone", "schedule_verify", "schedule_prune" }.FirstOrDefault(k => Get(node, k) is not null);
                return orphan is null ? null : throw Error(Get(node, orphan)!, prefix + orphan, "needs a schedule: (a cron expression)");
            }
            Cronos.CronExpression cron;
            try
            {
                // Six fields: seconds first (for tests and short intervals); five: standard cron.
                var seconds = text.Split(' ', StringSplitOptions.RemoveEmptyEntries).Length == 6;
                cron = Cronos.CronExpression.Parse(text, seconds ? Cronos.CronFormat.IncludeSeconds : Cronos.CronFormat.Standard);
            }
            catch (Cronos.CronFormatException e)
            {
                throw Error(Get(node, "schedule")!, prefix + "schedule",
                    $"'{text}' is not a cron expression (minute hour day-of-month month day-of-week, e.g. \"0 2 * * *\", or @daily): {FirstLine(e.Message)}");
            }
            if (cron.GetNextOccurrence(DateTime.UtcNow) is null)
            {
                // Accepted, the service ran for ever and backed nothing up.
                throw Error(Get(node, "schedule")!, prefix + "schedule", $"'{text}' never fires (a day no month has, such as the 31st of February)");
            }
            return new ScheduleConfig(text, cron, zone ?? defaultZone, verify ?? false, prune ?? false);
        }

        /// <summary>The encryption: section: age recipients or one passphrase to encrypt; identity files (and the passphrase) to decrypt.</summary>
        /// <param name="canEncrypt">Whether the section names recipients or a passphrase (read only when a backup needs it).</param>
        private EncryptionSettings ReadEncryption(YamlMappingNode root, string baseDir, out bool canEncrypt)
        {
            canEncrypt = false;
            if (Get(root, "encryption") is not { } node)
            {
                return EncryptionSettings.None;
            }
            var section = Mapping(node, "encryption");
            CheckKeys(section, EncryptionKeys, "encryption.");
            var recipients = new List<AgeRecipient>();
            foreach (var text in StringList(section, "recipients", "encryption.") ?? [])
            {
                if (!AgeRecipient.TryParse(text, out var recipient))
                {
                    throw Error(Get(section, "recipients")!, "encryption.recipients", $"'{text}' is not an age public key (age1...)");
                }
                recipients.Add(recipient);
            }
            var passphraseEnv = OptionalString(section, "passphrase_env", "encryption.");
            var passphraseFile = OptionalString(section, "passphrase_file", "encryption.");
            if (passphraseEnv is not null && passphraseFile is not null)
            {
                throw Error(Get(section, "passphrase_file")!, "encryption.passphrase_file", "give only one of passphrase_env, passphrase_file");
            }
            var passphraseKey = passphraseEnv is not null ? "passphrase_env" : "passphrase_file";
            if (recipients.Count > 0 && (passphraseEnv ?? passphraseFile) is not null)
            {
                // age allows a passphrase only as the file's single key.
                throw Error(Get(section, passphraseKey)!, "encryption." + passphraseKey, "give recipients or a passphrase, not both");
            }
            var where = Get(section, passphraseKey) is { } at ? $"{path}:{Line(at)}: encryption.{passphraseKey}" : "";
            var passphrase = passphraseEnv is not null ? PasswordSource.FromEnv(passphraseEnv, where)
                : passphraseFile is not null ? PasswordSource.FromFile(Path.GetFullPath(Path.Combine(baseDir, passphraseFile)), where)
                : PasswordSource.None;
            canEncrypt = recipients.Count > 0 || (passphraseEnv ?? passphraseFile) is not null;
            var identities = (StringList(section, "identity_files", "encryption.") ?? [])
                .Select(file => Path.GetFullPath(Path.Combine(baseDir, file))).ToList();
            return new EncryptionSettings(recipients, passphrase.Resolve, identities);
        }


        private StorageConfig ReadStorage(YamlMappingNode node, string prefix, string baseDir, CredentialVault vault)
        {
            var name = OptionalString(node, "name", prefix) ?? throw Error(node, prefix + "name", "is required");
            if (!System.Text.RegularExpressions.Regex.IsMatch(name, "^[A-Za-z0-9][A-Za-z0-9_.-]*$"))
            {
                throw Error(Get(node, "name")!, prefix + "name", $"'{name}' is not a storage name (letters, digits, '_', '.', '-')");
            }
            if (name == StorageConfig.LocalName)
            {
                throw Error(Get(node, "name")!, prefix + "name", $"'{StorageConfig.LocalName}' is reserved for backup_dir");
            }
            var type = OptionalString(node, "type", prefix) ?? throw Error(node, prefix + "type", "is required");
            switch (type)
            {
                case "local":
                {
                    CheckKeys(node, LocalStorageKeys, prefix);
                    var dir = OptionalString(node, "path", prefix) ?? throw Error(node, prefix + "path", "is required");
                    return new LocalStorageConfig(name, Path.TrimEndingDirectorySeparator(Path.GetFullPath(Path.Combine(baseDir, dir))));
                }
                case "s3":
                {
                    CheckKeys(node, S3StorageKeys, prefix);
                    var endpoint = OptionalString(node, "endpoint", prefix);
                    if (endpoint is not null
                        && (!Uri.TryCreate(endpoint, UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https")))
                    {
                        throw Error(Get(node, "endpoint")!, prefix + "endpoint", $"'{endpoint}' is not an http:// or https:// URL");
                    }
                    var bucket = OptionalString(node, "bucket", prefix) ?? throw Error(node, prefix + "bucket", "is required");
                    var keyPrefix = OptionalString(node, "prefix", prefix) ?? "";
                    try
                    {
                        keyPrefix = Storage.StorageKey.Folder(keyPrefix);
                    }
                    catch (ArgumentException)
                    {
                        throw Error(Get(node, "prefix")!, prefix + "prefix", $"'{keyPrefix}' is not a folder (no empty, '.' or '..' segments)");
                    }
                    var partSizeMb = OptionalInt(node, "part_size_mb", prefix) ?? S3StorageConfig.DefaultPartSizeBytes / (1024 * 1024);
                    if (partSizeMb is < 5 or > Storage.S3.S3Storage.MaxPartSize / (1024 * 1024))
                    {
                        throw Error(Get(node, "part_size_mb")!, prefix + "part_size_mb",
                            $"{partSizeMb} is not between 5 (S3's smallest part) and {Storage.S3.S3Storage.MaxPartSize / (1024 * 1024)} (the most a part holds in memory)");
                    }
                    return new S3StorageConfig(
                        name,
                        endpoint,
                        OptionalString(node, "region", prefix) ?? "us-east-1",
                        bucket,
                        keyPrefix,
                        OptionalBool(node, "force_path_style", prefix) ?? endpoint is not null,
                        ReadSecret(node, prefix, baseDir, "access_key_id", "AWS_ACCESS_KEY_ID"),
                        ReadSecret(node, prefix, baseDir, "secret_access_key", "AWS_SECRET_ACCESS_KEY"),
                        partSizeMb * 1024 * 1024);
                }
                case "sftp":
                {
                    CheckKeys(node, SftpStorageKeys, prefix);
                    var host = OptionalString(node, "host", prefix) ?? throw Error(node, prefix + "host", "is required");
                    var port = OptionalInt(node, "port", prefix) ?? 22;
                    if (port is <= 0 or > 65535)
                    {
                        throw Error(Get(node, "port")!, prefix + "port", $"{port} is not a TCP port");
                    }
                    var user = OptionalString(node, "user", prefix) ?? throw Error(node, prefix + "user", "is required");
                    var fingerprint = OptionalString(node, "host_fingerprint", prefix)
                        ?? throw Error(node, prefix + "host_fingerprint", "is required (the server's host key, as `ssh-keygen -lf KEY.pub` prints it: SHA256:...)");
                    if (!System.Text.RegularExpressions.Regex.IsMatch(fingerprint, "^SHA256:[A-Za-z0-9+/]{43}=?$"))
                    {
                        throw Error(Get(node, "host_fingerprint")!, prefix + "host_fingerprint",
                            $"'{fingerprint}' is not a SHA256 fingerprint (SHA256: and 43 base64 characters, as `ssh-keygen -lf` prints it)");
                    }
                    var keyFile = OptionalString(node, "private_key_file", prefix);
                    var password = ReadPassword(node, prefix, baseDir, vault);
                    if (keyFile is null && password == PasswordSource.None)
                    {
                        throw Error(node, prefix + "password", "give password, password_env, password_file or private_key_file");
                    }
                    return new SftpStorageConfig(
                        name,
                        host,
                        port,
                        user,
                        password,
                        keyFile is null ? null : Path.GetFullPath(Path.Combine(baseDir, keyFile)),
                        ReadSecret(node, prefix, baseDir, "private_key_passphrase", defaultEnv: null),
                        fingerprint,
                        OptionalString(node, "path", prefix) ?? "");
                }
                default:
                    throw Error(Get(node, "type")!, prefix + "type", $"'{type}' is not one of local, s3, sftp");
            }
        }

        /// <summary>A secret given as KEY (the value), KEY_env (a variable's name) or KEY_file (a file); else from <paramref name="defaultEnv"/>.</summary>
        private PasswordSource ReadSecret(YamlMappingNode node, string prefix, string baseDir, string key, string? defaultEnv)
        {
            var keys = new[] { key, key + "_env", key + "_file" };
            var given = keys.Where(k => Get(node, k) is not null).ToList();
            if (given.Count > 1)
            {
                throw Error(Get(node, given[1])!, prefix + given[1], $"give only one of {string.Join(", ", keys)}");
            }
            if (given.Count == 0)
            {
                return defaultEnv is null ? PasswordSource.None : PasswordSource.FromEnv(defaultEnv, $"{path}:{Line(node)}: {prefix}{key}_env (default)");
            }
            var chosen = given[0];
            var value = OptionalString(node, chosen, prefix)!;
            var where = $"{path}:{Line(Get(node, chosen)!)}: {prefix}{chosen}";
            return chosen.EndsWith("_env", StringComparison.Ordinal) ? PasswordSource.FromEnv(value, where)
                : chosen.EndsWith("_file", StringComparison.Ordinal) ? PasswordSource.FromFile(Path.GetFullPath(Path.Combine(baseDir, value)), where)
                : PasswordSource.Literal(value);
        }

        private InstanceConfig ReadInstance(YamlMappingNode node, string prefix, string baseDir, CredentialVault vault, List<StorageConfig> storages)
        {
            if (Get(node, "dbms") is YamlScalarNode { Value: { } kind } && DbmsNames.TryParse(kind, out var files) && files == Dbms.Files)
            {
                return ReadFilesInstance(node, prefix, storages);
            }
            CheckKeys(node, InstanceKeys, prefix);
            var id = OptionalInt(node, "id", prefix) ?? throw Error(node, prefix + "id", "is required");
            if (id < 0)
            {
                throw Error(node, prefix + "id", "must not be negative");
            }

            var dbmsText = OptionalString(node, "dbms", prefix) ?? throw Error(node, prefix + "dbms", "is required");
            if (!DbmsNames.TryParse(dbmsText, out var dbms))
            {
                throw Error(Get(node, "dbms")!, prefix + "dbms", $"'{dbmsText}' is not one of mysql, postgresql, files");
            }

            var name = OptionalString(node, "name", prefix) ?? $"{dbms.ToName()}-{id}";
            var host = OptionalString(node, "host", prefix) ?? "127.0.0.1";
            var port = OptionalInt(node, "port", prefix) ?? (dbms == Dbms.MySql ? 3306 : 5432);
            if (port is <= 0 or > 65535)
            {
                throw Error(Get(node, "port")!, prefix + "port", $"{port} is not a TCP port");
            }

            string user;
            PasswordSource password;
            if (Get(node, "credentials") is { } credentialsNode)
            {
                // User and password both from the vault entry.
                var other = new[] { "user", "password", "password_env", "password_file" }.FirstOrDefault(k => Get(node, k) is not null);
                if (other is not null)
                {
                    throw Error(Get(node, other)!, prefix + other, "give either credentials or user and password, not both");
                }
                var entry = VaultReference(OptionalString(node, "credentials", prefix)!, credentialsNode, prefix + "credentials")
                    ?? throw Error(credentialsNode, prefix + "credentials", "expected vault:NAME");
                user = "";
                password = PasswordSource.FromVault(vault, entry, withUser: true, $"{path}:{Line(credentialsNode)}: {prefix}credentials");
            }
            else
            {
                user = OptionalString(node, "user", prefix) ?? throw Error(node, prefix + "user", "is required (or credentials: vault:NAME)");
                password = ReadPassword(node, prefix, baseDir, vault);
            }
            var enabled = OptionalBool(node, "enabled", prefix) ?? true;
            // The old tool's names, or ours: not both (one would be ignored).
            foreach (var (key, oldKey) in new[] { ("include", "filter"), ("exclude", "ignore") })
            {
                if (Get(node, key) is not null && Get(node, oldKey) is { } both)
                {
                    throw Error(both, prefix + oldKey, $"is the old name of {key}: give one of them");
                }
            }
            var include = DatabasePatterns(node, "include", prefix) ?? DatabasePatterns(node, "filter", prefix) ?? ["*"];
            var exclude = DatabasePatterns(node, "exclude", prefix) ?? DatabasePatterns(node, "ignore", prefix) ?? [];
            var toolsDir = OptionalString(node, "tools_dir", prefix);
            var retention = ReadRetention(node, prefix);
            var storage = StorageNames(node, prefix, storages);
            var owners = OptionalBool(node, "owners", prefix) ?? false;
            var trustBackups = OptionalBool(node, "trust_backups", prefix) ?? false;
            if (dbms != Dbms.PostgreSql && Get(node, "trust_backups") is { } trustNode)
            {
                throw Error(trustNode, prefix + "trust_backups", "applies to postgresql instances only");
            }
            if (owners && dbms != Dbms.PostgreSql)
            {
                throw Error(Get(node, "owners")!, prefix + "owners", "applies to postgresql instances only");
            }
            if (dbms != Dbms.PostgreSql && Get(node, "maintenance_database") is { } maintenanceNode)
            {
                throw Error(maintenanceNode, prefix + "maintenance_database", "applies to postgresql instances only");
            }
            if (dbms != Dbms.PostgreSql && Get(node, "globals_tablespaces") is { } tablespacesNode)
            {
                throw Error(tablespacesNode, prefix + "globals_tablespaces", "applies to postgresql instances only");
            }
            if (dbms != Dbms.MySql && Get(node, "load_data_local") is { } loadDataNode)
            {
                throw Error(loadDataNode, prefix + "load_data_local", "applies to mysql instances only");
            }
            var lockWaitSeconds = OptionalInt(node, "lock_wait_seconds", prefix) ?? 60;
            if (lockWaitSeconds is < 1 or > 86400)
            {
                throw Error(Get(node, "lock_wait_seconds")!, prefix + "lock_wait_seconds", "must be between 1 and 86400 seconds");
            }
            var instance = new InstanceConfig(id, name, dbms, host, port, user, password, enabled, include, exclude, toolsDir, retention, storage)
            {
                Encrypt = OptionalBool(node, "encrypt", prefix) ?? false,
                Owners = owners,
                TrustBackups = trustBackups,
                Definer = ReadDefiner(node, prefix, dbms),
                Globals = OptionalBool(node, "globals", prefix) ?? true,
                GlobalsPasswords = OptionalBool(node, "globals_passwords", prefix) ?? false,
                GlobalsTablespaces = OptionalBool(node, "globals_tablespaces", prefix) ?? false,
                Engine = ReadEngine(node, prefix),
                Jobs = ReadJobs(node, prefix),
                LoadDataLocal = OptionalBool(node, "load_data_local", prefix) ?? true,
                LockWaitSeconds = lockWaitSeconds,
                ExpectEvery = ReadExpectEvery(node, prefix),
            };
            return OptionalString(node, "maintenance_database", prefix) is { } maintenance ? instance with { MaintenanceDatabase = maintenance } : instance;
        }

        /// <summary>An instance's storage: list (null when absent): names of the storage section, or local, each once.</summary>
        private List<string>? StorageNames(YamlMappingNode node, string prefix, List<StorageConfig> storages)
        {
            var storage = StringList(node, "storage", prefix);
            foreach (var storageName in storage ?? [])
            {
                if (storageName != StorageConfig.LocalName && storages.All(s => s.Name != storageName))
                {
                    throw Error(Get(node, "storage")!, prefix + "storage",
                        $"'{storageName}' is not defined in the storage section (known: {string.Join(", ", storages.Select(s => s.Name).Prepend(StorageConfig.LocalName))})");
                }
            }
            if (storage is not null && storage.Distinct().Count() != storage.Count)
            {
                throw Error(Get(node, "storage")!, prefix + "storage", "names a destination twice");
            }
            return storage;
        }

        /// <summary>
        /// A files instance: <c>paths</c> (absolute directories, none inside another) and the
        /// include/exclude patterns matched against paths relative to each; no server, no credentials.
        /// </summary>
        private InstanceConfig ReadFilesInstance(YamlMappingNode node, string prefix, List<StorageConfig> storages)
        {
            CheckKeys(node, FilesInstanceKeys, prefix);
            var id = OptionalInt(node, "id", prefix) ?? throw Error(node, prefix + "id", "is required");
            if (id < 0)
            {
                throw Error(node, prefix + "id", "must not be negative");
            }
            var paths = ReadPaths(node, prefix);
            var include = ReadPatterns(node, "include", prefix);
            var exclude = ReadPatterns(node, "exclude", prefix);
            return new InstanceConfig(
                id, OptionalString(node, "name", prefix) ?? $"{Dbms.Files.ToName()}-{id}", Dbms.Files, "", 0, "", PasswordSource.None,
                OptionalBool(node, "enabled", prefix) ?? true, include, exclude, null, ReadRetention(node, prefix), StorageNames(node, prefix, storages))
            {
                Encrypt = OptionalBool(node, "encrypt", prefix) ?? false,
                Paths = paths,
                SkipUnreadable = OptionalBool(node, "skip_unreadable", prefix) ?? false,
                ExpectEvery = ReadExpectEvery(node, prefix),
            };
        }

        private List<string> ReadPaths(YamlMappingNode node, string prefix)
        {
            var key = prefix + "paths";
            if (Get(node, "paths") is not { } value)
            {
                throw Error(node, key, "is required: the directories to back up (absolute paths)");
            }
            var items = value is YamlSequenceNode sequence ? sequence.Children.ToList() : [value];
            var paths = new List<string>();
            foreach (var item in items)
            {
                if (item is not YamlScalarNode { Value: { Length: > 0 } text })
                {
                    throw Error(item, key, "expected a list of absolute paths");
                }
                var segments = text.Split('/', StringSplitOptions.RemoveEmptyEntries);
                if (!text.StartsWith('/') || segments.Any(s => s is "." or "..") || text.Contains('\0', StringComparison.Ordinal))
                {
                    throw Error(item, key, $"'{text}' is not an absolute path without '.' or '..' (e.g. /srv/app)");
                }
                var path = "/" + string.Join('/', segments);
                foreach (var other in paths)
                {
                    if (other == path || Inside(path, other) || Inside(other, path))
                    {
                        throw Error(item, key, other == path ? $"'{path}' is listed twice" : $"'{path}' and '{other}' overlap (one is inside the other): list only the outer one");
                    }
                }
                paths.Add(path);
            }
            if (paths.Count == 0)
            {
                throw Error(value, key, "is empty: list the directories to back up");
            }
            return paths;

            static bool Inside(string path, string root) => root == "/" || path.StartsWith(root + "/", StringComparison.Ordinal);
        }

        /// <summary>A files instance's include/exclude: patterns relative to each root (empty: include everything, exclude nothing).</summary>
        private List<string> ReadPatterns(YamlMappingNode node, string key, string prefix)
        {
            var patterns = StringList(node, key, prefix) ?? [];
            foreach (var pattern in patterns)
            {
                if (pattern.StartsWith('/') || pattern.Split('/').Any(s => s is "." or ".."))
                {
                    throw Error(Get(node, key)!, prefix + key,
                        $"'{pattern}' must be relative to each path, without '.' or '..' (e.g. 'logs/**' or '**/*.tmp', not '/srv/app/logs')");
                }
            }
            return patterns;
        }

        /// <summary>engine: dump | parallel.</summary>
        private BackupEngine ReadEngine(YamlMappingNode node, string prefix) => OptionalString(node, "engine", prefix) switch
        {
            null or "dump" => BackupEngine.Dump,
            "parallel" => BackupEngine.Parallel,
            var text => throw Error(Get(node, "engine")!, prefix + "engine", $"'{text}' is not one of dump, parallel"),
        };

        /// <summary>jobs: 1 to 64 connections.</summary>
        private int? ReadJobs(YamlMappingNode node, string prefix)
        {
            var jobs = OptionalInt(node, "jobs", prefix);
            if (jobs is < 1 or > MaxJobs)
            {
                throw Error(Get(node, "jobs")!, prefix + "jobs", $"must be between 1 and {MaxJobs}");
            }
            return jobs;
        }

        /// <summary>definer: keep | strip | current-user (MySQL instances only).</summary>
        private Engines.MySql.DefinerMode ReadDefiner(YamlMappingNode node, string prefix, Dbms dbms)
        {
            if (OptionalString(node, "definer", prefix) is not { } text)
            {
                return Engines.MySql.DefinerMode.Keep;
            }
            if (dbms != Dbms.MySql)
            {
                throw Error(Get(node, "definer")!, prefix + "definer", "applies to mysql instances only");
            }
            if (!Engines.MySql.DefinerModes.TryParse(text, out var mode))
            {
                throw Error(Get(node, "definer")!, prefix + "definer", $"'{text}' is not one of {Engines.MySql.DefinerModes.Names}");
            }
            return mode;
        }

        /// <summary>A retention: mapping (null when absent). An empty mapping is a policy with no rule: keep everything.</summary>
        private RetentionPolicy? ReadRetention(YamlMappingNode parent, string prefix)
        {
            if (Get(parent, "retention") is not { } value)
            {
                return null;
            }
            var node = Mapping(value, prefix + "retention");
            prefix += "retention.";
            CheckKeys(node, RetentionKeys, prefix);
            int? Count(string key)
            {
                var n = OptionalInt(node, key, prefix);
                if (n < 0)
                {
                    throw Error(Get(node, key)!, prefix + key, $"{n} is negative (give 0 or more)");
                }
                return n;
            }
            RetentionDuration? within = null;
            if (OptionalString(node, "keep_within", prefix) is { } text)
            {
                if (!RetentionDuration.TryParse(text, out var parsed))
                {
                    throw Error(Get(node, "keep_within")!, prefix + "keep_within", $"'{text}' is not {RetentionDuration.Syntax}");
                }
                within = parsed;
            }
            return new RetentionPolicy
            {
                KeepLast = Count("keep_last"),
                KeepHourly = Count("keep_hourly"),
                KeepDaily = Count("keep_daily"),
                KeepWeekly = Count("keep_weekly"),
                KeepMonthly = Count("keep_monthly"),
                KeepYearly = Count("keep_yearly"),
                KeepWithin = within,
            };
        }

        private PasswordSource ReadPassword(YamlMappingNode node, string prefix, string baseDir, CredentialVault vault)
        {
            var given = new[] { "password", "password_env", "password_file" }.Where(k => Get(node, k) is not null).ToList();
            if (given.Count > 1)
            {
                throw Error(Get(node, given[1])!, prefix + given[1], $"give only one of password, password_env, password_file");
            }
            if (given.Count == 0)
            {
                return PasswordSource.None;
            }
            var key = given[0];
            var value = OptionalString(node, key, prefix)!;
            var where = $"{path}:{Line(Get(node, key)!)}: {prefix}{key}";
            if (key == "password" && VaultReference(value, Get(node, key)!, prefix + key) is { } entry)
            {
                return PasswordSource.FromVault(vault, entry, withUser: false, where);
            }
            return key switch
            {
                "password" => PasswordSource.Literal(value),
                "password_env" => PasswordSource.FromEnv(value, where),
                _ => PasswordSource.FromFile(Path.GetFullPath(Path.Combine(baseDir, value)), where),
            };
        }

        /// <summary>The entry name of "vault:NAME"; null when the value does not start with "vault:".</summary>
        private string? VaultReference(string value, YamlNode node, string key)
        {
            if (!value.StartsWith(VaultPrefix, StringComparison.Ordinal))
            {
                return null;
            }
            var name = value[VaultPrefix.Length..];
            return CredentialVault.IsValidName(name)
                ? name
                : throw Error(node, key, "vault:NAME needs an entry name of letters, digits and . _ @ - (starting with a letter or digit)");
        }

        public YamlMappingNode Mapping(YamlNode node, string what) =>
            node as YamlMappingNode ?? throw new ConfigException($"{path}:{Line(node)}: {what}: expected a mapping of keys to values");

        private void CheckKeys(YamlMappingNode node, string[] allowed, string prefix)
        {
            foreach (var key in node.Children.Keys)
            {
                var name = (key as YamlScalarNode)?.Value ?? "";
                if (!allowed.Contains(name))
                {
                    throw new ConfigException($"{path}:{Line(key)}: {prefix}{name}: unknown key (known: {string.Join(", ", allowed)})");
                }
            }
        }

        private static YamlNode? Get(YamlMappingNode node, string key) =>
            node.Children.TryGetValue(new YamlScalarNode(key), out var value) ? value : null;

        private string? OptionalString(YamlMappingNode node, string key, string prefix)
        {
            var value = Get(node, key);
            if (value is null)
            {
                return null;
            }
            if (value is not YamlScalarNode scalar || scalar.Value is null or "")
            {
                throw new ConfigException($"{path}:{Line(value)}: {prefix}{key}: expected a text value");
            }
            return scalar.Value;
        }

        private int? OptionalInt(YamlMappingNode node, string key, string prefix)
        {
            var text = OptionalString(node, key, prefix);
            if (text is null)
            {
                return null;
            }
            if (!int.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var value))
            {
                var why = System.Numerics.BigInteger.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var number)
                    ? (number.Sign < 0 ? $"is too small (at least {int.MinValue})" : $"is too large (at most {int.MaxValue})") : "is not a whole number";
                throw new ConfigException($"{path}:{Line(Get(node, key)!)}: {prefix}{key}: '{text}' {why}");
            }
            return value;
        }

        private bool? OptionalBool(YamlMappingNode node, string key, string prefix)
        {
            var text = OptionalString(node, key, prefix);
            return text?.ToLowerInvariant() switch
            {
                null => null,
                "true" or "yes" or "on" => true,
                "false" or "no" or "off" => false,
                _ => throw new ConfigException($"{path}:{Line(Get(node, key)!)}: {prefix}{key}: '{text}' is not true or false"),
            };
        }

        private List<string>? DatabasePatterns(YamlMappingNode node, string key, string prefix)
        {
            var patterns = StringList(node, key, prefix);
            if (patterns?.Select(p => (Pattern: p, Problem: Operations.DatabaseSelector.GlobProblem(p))).FirstOrDefault(p => p.Problem is not null)
                is { Problem: { } problem } bad)
            {
                throw new ConfigException($"{path}:{Line(Get(node, key)!)}: {prefix}{key}: '{bad.Pattern}' is not a valid pattern: {problem}");
            }
            return patterns;
        }

        private List<string>? StringList(YamlMappingNode node, string key, string prefix)
        {
            var value = Get(node, key);
            switch (value)
            {
                case null:
                    return null;
                case YamlScalarNode { Value: { Length: > 0 } single }:
                    return [single];
                case YamlSequenceNode sequence:
                    var list = new List<string>();
                    foreach (var item in sequence.Children)
                    {
                        if (item is not YamlScalarNode { Value: { Length: > 0 } text })
                        {
                            throw new ConfigException($"{path}:{Line(item)}: {prefix}{key}: "
                                + (item is YamlScalarNode ? "an empty entry" : "expected a list of text patterns"));
                        }
                        list.Add(text);
                    }
                    return list;
                default:
                    throw new ConfigException($"{path}:{Line(value)}: {prefix}{key}: expected a list of text patterns");
            }
        }

        private ConfigException Error(YamlNode near, string key, string problem) =>
            new($"{path}:{Line(near)}: {key}: {problem}");

        private static long Line(YamlNode node) => node.Start.Line;
    }
}
