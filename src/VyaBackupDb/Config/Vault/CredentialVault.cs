using System.Text.RegularExpressions;
using VyaBackupDb.Errors;

namespace VyaBackupDb.Config.Vault;

/// <summary>Asks the operator for a secret without echo; returns null when there is no terminal to ask on.</summary>
public delegate string? SecretPrompt(string question);

/// <summary>
/// The credential vault a config points at (<c>vault_file:</c>, default vault.enc beside the
/// config). Nothing is read until an entry is needed; then the passphrase is taken from
/// $VYA_BACKUPDB_VAULT_KEY, a key file ($VYA_BACKUPDB_VAULT_KEY_FILE or <c>vault_key_file:</c>)
/// or a prompt, the file is decrypted once, and its entries (or the error) are kept for the run.
/// </summary>
public sealed partial class CredentialVault(string path, string? keyFile = null, SecretPrompt? prompt = null)
{
    public const string KeyEnvVar = "VYA_BACKUPDB_VAULT_KEY";
    public const string KeyFileEnvVar = "VYA_BACKUPDB_VAULT_KEY_FILE";
    public const string DefaultFileName = "vault.enc";

    private readonly Lock _lock = new();
    private string? _passphrase;
    private Dictionary<string, VaultEntry>? _entries;
    private VaultException? _openError;

    public string Path { get; } = System.IO.Path.GetFullPath(path);

    /// <summary>The key file from the config, if any (the environment's wins).</summary>
    public string? KeyFile { get; } = keyFile;

    /// <summary>The cost of the key derivation for files this writes (files keep their own when read).</summary>
    public ScryptParameters Kdf { get; init; } = ScryptParameters.Default;

    public bool Exists => File.Exists(Path);

    /// <summary>Entry names: letters, digits and . _ @ -, starting with a letter or digit.</summary>
    public static bool IsValidName(string name) => NamePattern().IsMatch(name);

    /// <summary>The decrypted entries, read once. Throws <see cref="VaultException"/>.</summary>
    public IReadOnlyDictionary<string, VaultEntry> Read()
    {
        lock (_lock)
        {
            if (_entries is not null)
            {
                return _entries;
            }
            // A wrong passphrase is reported once, not re-derived (and re-prompted) for every instance.
            if (_openError is not null)
            {
                throw _openError;
            }
            try
            {
                if (!Exists)
                {
                    throw new VaultException($"there is no vault at {Path} (create it with: vya-backupdb vault set NAME)");
                }
                _entries = VaultFile.Read(Path, Passphrase(creating: false));
                return _entries;
            }
            catch (VaultException e)
            {
                _openError = e;
                throw;
            }
        }
    }

    public VaultEntry? Find(string name) => Read().TryGetValue(name, out var entry) ? entry : null;

    /// <summary>Gets the passphrase now (and checks it, if the vault exists), before anything else is asked for.</summary>
    public void Unlock()
    {
        lock (_lock)
        {
            if (Exists)
            {
                Read();
            }
            else
            {
                Passphrase(creating: true);
            }
        }
    }

    /// <summary>Reads the vault (or starts an empty one), applies <paramref name="change"/> and writes it back atomically.</summary>
    public void Update(Action<Dictionary<string, VaultEntry>> change)
    {
        lock (_lock)
        {
            using var held = LockFile();
            _entries = null;
            var entries = Exists ? new Dictionary<string, VaultEntry>(Read(), StringComparer.Ordinal) : new(StringComparer.Ordinal);
            var passphrase = Passphrase(creating: !Exists);
            change(entries);
            VaultFile.Write(Path, entries, passphrase, Kdf);
            _entries = entries;
        }
    }

    /// <summary>
    /// The vault's lock file (`vault.enc.lock`), held while a change reads and writes the vault: two `vault set` at once
    /// would each write back what it read, and the last one would drop the other's entry. An flock, which the kernel
    /// frees if this process dies; another command's change takes milliseconds, so this one waits for it.
    /// </summary>
    private FileStream LockFile()
    {
        var path = Path + ".lock";
        var waited = System.Diagnostics.Stopwatch.StartNew();
        while (true)
        {
            try
            {
                var options = new FileStreamOptions { Mode = FileMode.OpenOrCreate, Access = FileAccess.ReadWrite, Share = FileShare.None };
                if (!OperatingSystem.IsWindows())
                {
                    options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
                }
                return new FileStream(path, options);
            }
            catch (IOException e) when (Operations.BackupLock.IsLockedByOther(e) && waited.Elapsed < TimeSpan.FromSeconds(30))
            {
                Thread.Sleep(20);
            }
            catch (IOException e) when (Operations.BackupLock.IsLockedByOther(e))
            {
                throw new OperationFailedException($"vault {Path} is being changed by another command for 30 s ({path}); try again", e);
            }
            catch (Exception e) when (IoErrors.IsWriteFault(e))
            {
                throw new OperationFailedException($"cannot write vault {Path}: {IoErrors.WriteFaultReason(e)} ({path})", e);
            }
        }
    }

    private string Passphrase(bool creating)
    {
        if (_passphrase is null)
        {
            _passphrase = FindPassphrase(creating);
            Redaction.Remember(_passphrase);
        }
        return _passphrase;
    }

    private string FindPassphrase(bool creating)
    {
        if (Environment.GetEnvironmentVariable(KeyEnvVar) is { Length: > 0 } fromEnv)
        {
            return fromEnv;
        }
        if (Environment.GetEnvironmentVariable(KeyFileEnvVar) is { Length: > 0 } envKeyFile)
        {
            return ReadKeyFile(envKeyFile, $"${KeyFileEnvVar}");
        }
        if (KeyFile is not null)
        {
            return ReadKeyFile(KeyFile, "vault_key_file");
        }
        var entered = prompt?.Invoke(creating ? $"New passphrase for the vault {Path}: " : $"Passphrase for the vault {Path}: ")
            ?? throw new VaultException(
                $"no passphrase for the vault {Path}: set ${KeyEnvVar} or ${KeyFileEnvVar}, set vault_key_file in the config, or run on a terminal");
        if (entered.Length == 0)
        {
            throw new VaultException("the vault passphrase must not be empty");
        }
        if (creating && prompt!("Repeat the passphrase: ") != entered)
        {
            throw new VaultException("the two passphrases differ; the vault was not created");
        }
        return entered;
    }

    private static string ReadKeyFile(string file, string from)
    {
        string text;
        try
        {
            text = BoundedRead.Text(file, "a vault key file", 64 * 1024).TrimEnd('\r', '\n');
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new VaultException($"cannot read the vault key file {file} ({from}): {e.Message}", e);
        }
        return text.Length > 0 ? text : throw new VaultException($"the vault key file {file} ({from}) is empty");
    }

    [GeneratedRegex(@"^[A-Za-z0-9][A-Za-z0-9._@-]{0,127}$")]
    private static partial Regex NamePattern();
}
