using VyaBackupDb.Config.Vault;
using VyaBackupDb.Errors;

namespace VyaBackupDb.Config;

/// <summary>
/// Where an instance's password comes from (and, for <c>credentials: vault:NAME</c>, its user).
/// Resolved only when the instance is used, so a missing variable or a locked vault for one
/// instance does not stop backups of the others. Never prints the value.
/// </summary>
public sealed class PasswordSource
{
    private readonly string? _literal;
    private readonly string? _envVar;
    private readonly string? _file;
    private readonly string _where;
    private readonly CredentialVault? _vault;
    private readonly string? _vaultEntry;
    private readonly bool _userFromVault;

    private PasswordSource(
        string? literal, string? envVar, string? file, string where,
        CredentialVault? vault = null, string? vaultEntry = null, bool userFromVault = false)
    {
        _literal = literal;
        _envVar = envVar;
        _file = file;
        _where = where;
        _vault = vault;
        _vaultEntry = vaultEntry;
        _userFromVault = userFromVault;
    }

    public static PasswordSource None { get; } = new(null, null, null, "");

    public static PasswordSource Literal(string value) => new(value, null, null, "");

    public static PasswordSource FromEnv(string variable, string where) => new(null, variable, null, where);

    public static PasswordSource FromFile(string path, string where) => new(null, null, path, where);

    /// <summary>
    /// The vault entry <paramref name="entry"/>: its password, and with <paramref name="withUser"/>
    /// (<c>credentials: vault:NAME</c>) its user too.
    /// </summary>
    public static PasswordSource FromVault(CredentialVault vault, string entry, bool withUser, string where) =>
        new(null, null, null, where, vault, entry, withUser);

    public bool IsLiteral => _literal is not null;

    /// <summary>The user from the vault for <c>credentials: vault:NAME</c>; null when the user comes from the config.</summary>
    public string? ResolveUser()
    {
        if (!_userFromVault)
        {
            return null;
        }
        return VaultEntry().User
            ?? throw new ConfigException(
                $"{_where}: vault entry '{_vaultEntry}' has no user (set it with: vya-backupdb vault set {_vaultEntry} --user USER)");
    }

    /// <summary>The password, or null when the instance has none (e.g. peer authentication).</summary>
    public string? Resolve()
    {
        var password = ResolveUnredacted();
        Redaction.Remember(password);
        return password;
    }

    private string? ResolveUnredacted()
    {
        if (_vault is not null)
        {
            return VaultEntry().Password;
        }
        if (_literal is not null)
        {
            return _literal;
        }
        if (_envVar is not null)
        {
            return Environment.GetEnvironmentVariable(_envVar)
                ?? throw new ConfigException($"{_where}: environment variable {_envVar} is not set");
        }
        if (_file is not null)
        {
            try
            {
                // A FIFO no one writes to would hold the run at its open for ever.
                if (IoErrors.SpecialFileKind(_file) == "a FIFO")
                {
                    throw new ConfigException($"{_where}: {_file} is a FIFO, not a file");
                }
                return BoundedRead.Text(_file, "a password file", 64 * 1024).TrimEnd('\r', '\n');
            }
            // Too many open files is this host's limit, not a config error (exit 2): it goes up as it is.
            catch (Exception e) when (e is IOException or UnauthorizedAccessException && !IoErrors.IsTooManyOpenFiles(e))
            {
                throw new ConfigException($"{_where}: cannot read {_file}: {IoErrors.OpenFailureReason(e, _file)}");
            }
        }
        return null;
    }

    private VaultEntry VaultEntry()
    {
        IReadOnlyDictionary<string, VaultEntry> entries;
        try
        {
            entries = _vault!.Read();
        }
        catch (VaultException e)
        {
            throw new VaultException($"{_where}: vault:{_vaultEntry}: {e.Message}", e);
        }
        return entries.TryGetValue(_vaultEntry!, out var entry)
            ? entry
            : throw new ConfigException(
                $"{_where}: there is no entry '{_vaultEntry}' in the vault {_vault.Path} (add it with: vya-backupdb vault set {_vaultEntry})");
    }

    public override string ToString() => "***";
}
