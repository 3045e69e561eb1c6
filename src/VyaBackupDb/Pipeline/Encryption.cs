using VyaBackupDb.Errors;
using VyaBackupDb.Pipeline.Age;

namespace VyaBackupDb.Pipeline;

/// <summary>
/// The config's `encryption:` section: whom backups are encrypted to (age X25519 recipients, or
/// one passphrase: age allows a passphrase only alone) and what decrypts them (identity files,
/// the passphrase). Secrets are read when first needed, never printed.
/// </summary>
public sealed class EncryptionSettings(
    IReadOnlyList<AgeRecipient> recipients,
    Func<string?> passphrase,
    IReadOnlyList<string> identityFiles)
{
    /// <summary>What a manifest records for an encrypted backup.</summary>
    public const string AgeName = "age";

    private AgePassphrase? _passphrase;

    public static EncryptionSettings None { get; } = new([], () => null, []);

    public IReadOnlyList<AgeRecipient> Recipients { get; } = recipients;

    public IReadOnlyList<string> IdentityFiles { get; } = identityFiles;

    public bool CanEncrypt => Recipients.Count > 0 || Passphrase() is not null;

    public AgePassphrase? Passphrase()
    {
        if (_passphrase is null && passphrase() is { } text)
        {
            Redaction.Remember(text);
            _passphrase = new AgePassphrase(text);
        }
        return _passphrase;
    }

    /// <summary>What decrypts: the configured identity files plus <paramref name="extraIdentityFile"/> (--identity), and the passphrase.</summary>
    public DecryptionKeys KeysFor(string? extraIdentityFile)
    {
        if (extraIdentityFile is { Length: 0 })
        {
            throw new UsageException("--identity: an empty file name");
        }
        return new DecryptionKeys(() => ReadIdentities(extraIdentityFile), Passphrase);
    }

    /// <summary>
    /// The --identity file's keys and the configured files'. A configured file that does not exist is passed over
    /// while another key is there: on a host rebuilt after a disaster the config names the old host's key file, and
    /// --identity gives the key kept elsewhere (tr103: the missing file failed every restore).
    /// </summary>
    private List<AgeIdentity> ReadIdentities(string? extraIdentityFile)
    {
        var identities = extraIdentityFile is null ? [] : AgeIdentity.ReadKeyFile(extraIdentityFile).ToList();
        AgeException? missing = null;
        foreach (var file in IdentityFiles)
        {
            try
            {
                identities.AddRange(AgeIdentity.ReadKeyFile(file));
            }
            catch (AgeException e) when (!File.Exists(file) && !Directory.Exists(file))
            {
                missing ??= e;
            }
        }
        return missing is not null && identities.Count == 0 && Passphrase() is null ? throw missing : identities;
    }
}

/// <summary>Keys for decrypting, read only when an encrypted backup is opened.</summary>
public sealed record DecryptionKeys(Func<IReadOnlyList<AgeIdentity>> Identities, Func<AgePassphrase?> Passphrase)
{
    public static DecryptionKeys None { get; } = new(() => [], () => null);
}

/// <summary>The codec chains: plain ⇄ compression ⇄ (age encryption) ⇄ stored bytes.</summary>
public static class BackupChain
{
    /// <summary>
    /// Wraps <paramref name="stored"/> (left open) so that what is written is compressed and, when
    /// <paramref name="encryption"/> is given, encrypted. Disposing finishes both formats.
    /// </summary>
    public static Stream OpenWrite(Stream stored, Compression compression, int? level, string zipEntryName, EncryptionSettings? encryption)
    {
        if (encryption is null)
        {
            return Codec.Compress(compression, stored, zipEntryName, level);
        }
        if (!encryption.CanEncrypt)
        {
            throw new UsageException("encryption asked for, but the config's encryption: section has no recipients and no passphrase");
        }
        Stream encrypt = encryption.Recipients.Count > 0
            ? new AgeEncryptStream(stored, encryption.Recipients, leaveOpen: true)
            : new AgeEncryptStream(stored, encryption.Passphrase()!, leaveOpen: true);
        return new Layered(Codec.Compress(compression, encrypt, zipEntryName, level), encrypt);
    }

    /// <summary>
    /// The plain dump read out of <paramref name="stored"/> (which it takes over). An encrypted
    /// input is authenticated chunk by chunk before any of its bytes come out.
    /// </summary>
    public static async Task<Stream> OpenReadAsync(
        Stream stored, Compression compression, bool encrypted, DecryptionKeys keys, CancellationToken cancellationToken)
    {
        if (!encrypted)
        {
            return Codec.Decompress(compression, stored);
        }
        var decrypted = await DecryptAsync(stored, keys, cancellationToken).ConfigureAwait(false);
        return Codec.Decompress(compression, compression == Compression.Zip ? await TempSpool.CopyAsync(decrypted, cancellationToken).ConfigureAwait(false) : decrypted);
    }

    /// <summary>Fails (AgeException) unless <paramref name="keys"/> open the age header of <paramref name="stored"/>; reads the header only.</summary>
    public static async Task CheckKeysAsync(Stream stored, DecryptionKeys keys, CancellationToken cancellationToken)
    {
        await using var decrypted = await DecryptAsync(stored, keys, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Opens the age header of <paramref name="stored"/> (which it takes over) with <paramref name="keys"/>.</summary>
    private static async Task<AgeDecryptStream> DecryptAsync(Stream stored, DecryptionKeys keys, CancellationToken cancellationToken)
    {
        var identities = keys.Identities();
        var passphrase = keys.Passphrase();
        if (identities.Count == 0 && passphrase is null)
        {
            await stored.DisposeAsync().ConfigureAwait(false);
            throw new AgeException("the backup is encrypted: give --identity FILE, or identity_files / a passphrase in the config's encryption: section",
                ExitCode.UsageOrConfig);
        }
        return await AgeDecryptStream.OpenAsync(stored, identities, passphrase, leaveOpen: false, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>A codec over an encryption stream: disposing finishes the codec, then the encryption.</summary>
    private sealed class Layered(Stream codec, Stream encryption) : WrapperStream(codec)
    {
        protected override void Dispose(bool disposing)
        {
            base.Dispose(disposing);
            if (disposing)
            {
                encryption.Dispose();
            }
        }

        public override async ValueTask DisposeAsync()
        {
            await base.DisposeAsync().ConfigureAwait(false);
            await encryption.DisposeAsync().ConfigureAwait(false);
        }
    }
}
