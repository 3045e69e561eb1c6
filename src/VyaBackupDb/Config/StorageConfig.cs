namespace VyaBackupDb.Config;

/// <summary>A destination named in the config's <c>storage:</c> section.</summary>
public abstract record StorageConfig(string Name)
{
    /// <summary>The name of the implicit destination that is <c>backup_dir</c>.</summary>
    public const string LocalName = "local";

    public abstract string Type { get; }

    /// <summary>Where its backups are, the same for two names of one place (a trailing '/', a host's case).</summary>
    public abstract string Place { get; }
}

/// <summary>A directory on this machine (or a mounted one).</summary>
public sealed record LocalStorageConfig(string Name, string Path) : StorageConfig(Name)
{
    public override string Type => "local";

    public override string Place => PlaceOf(Path);

    /// <summary>A folder that is there by its identity (a symbolic link to it is the same place), else by its path.</summary>
    public static string PlaceOf(string path) =>
        Sources.Files.Posix.TryStat(path) is { IsDirectory: true } folder ? $"folder {folder.Device}:{folder.Inode}" : path;
}

/// <summary>An S3-compatible bucket.</summary>
/// <param name="Endpoint">Service URL (e.g. http://127.0.0.1:19000); null for AWS itself (then <paramref name="Region"/> picks it).</param>
/// <param name="Prefix">Key prefix inside the bucket: "" or a folder ending in '/'.</param>
public sealed record S3StorageConfig(
    string Name,
    string? Endpoint,
    string Region,
    string Bucket,
    string Prefix,
    bool ForcePathStyle,
    PasswordSource AccessKeyId,
    PasswordSource SecretAccessKey,
    int PartSizeBytes) : StorageConfig(Name)
{
    public const int DefaultPartSizeBytes = 16 * 1024 * 1024;

    public override string Type => "s3";

    public override string Place => $"s3 {(Endpoint is null ? Region : new Uri(Endpoint).AbsoluteUri.TrimEnd('/'))} {Bucket}/{Prefix}";
}

/// <summary>A directory on an SFTP server.</summary>
/// <param name="HostFingerprint">The server's host key as <c>ssh-keygen -lf</c> prints it: SHA256:base64.</param>
/// <param name="Path">Base directory on the server (relative paths start at the login directory).</param>
public sealed record SftpStorageConfig(
    string Name,
    string Host,
    int Port,
    string User,
    PasswordSource Password,
    string? PrivateKeyFile,
    PasswordSource PrivateKeyPassphrase,
    string HostFingerprint,
    string Path) : StorageConfig(Name)
{
    public override string Type => "sftp";

    /// <summary>
    /// The folder as the storage uses and prints it: "./x/", "x//y" written "x", "x/y"; "/" alone, or "" for the login
    /// folder. A ".." is left as written (the server resolves it).
    /// </summary>
    public string Root
    {
        get
        {
            var folder = string.Join('/', Path.Split('/').Where(part => part is not ("" or ".")));
            return Path.StartsWith('/') ? "/" + folder : folder;
        }
    }

    /// <summary>Relative to the login folder (no leading '/'): printed as sftp://HOST/~/PATH, as curl and OpenSSH read it.</summary>
    public bool IsRelative => !Path.StartsWith('/');

    // "./x", "x/", "x/y/.." and "x" are one folder (relative ones start at the login folder).
    public override string Place =>
        $"sftp {User}@{Host.ToLowerInvariant()}:{Port} {(Path.StartsWith('/') ? "" : "~")}{System.IO.Path.GetFullPath(Path, "/").TrimEnd('/')}";
}
