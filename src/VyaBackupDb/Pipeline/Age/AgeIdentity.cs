using System.Globalization;
using System.Security.Cryptography;
using Org.BouncyCastle.Math.EC.Rfc7748;
using VyaBackupDb.Errors;

namespace VyaBackupDb.Pipeline.Age;

/// <summary>
/// An age X25519 identity (secret key), written "AGE-SECRET-KEY-1…" in upper-case Bech32.
/// <see cref="ToString"/> shows only the public key; the secret comes out only through
/// <see cref="ToSecretKeyString"/> and <see cref="ToKeyFile"/>.
/// </summary>
public sealed class AgeIdentity
{
    private const string Hrp = "AGE-SECRET-KEY-";
    private const string Expected = "expected an X25519 secret key, AGE-SECRET-KEY-1… as age-keygen writes it";

    private readonly byte[] _secretKey;

    private AgeIdentity(byte[] secretKey)
    {
        _secretKey = secretKey;
        var publicKey = new byte[32];
        X25519.ScalarMultBase(secretKey, publicKey);
        Recipient = new AgeRecipient(publicKey);
    }

    /// <summary>The public key that encrypts to this identity.</summary>
    public AgeRecipient Recipient { get; }

    public static AgeIdentity Generate() => new(RandomNumberGenerator.GetBytes(32));

    /// <summary>Parses "AGE-SECRET-KEY-1…". The error never repeats the text (it may be a secret).</summary>
    public static AgeIdentity Parse(string text) =>
        TryParse(text, out var identity)
            ? identity
            : throw new AgeException($"not a valid age identity ({Expected})", ExitCode.UsageOrConfig);

    public static bool TryParse(string text, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out AgeIdentity? identity)
    {
        identity = Bech32.TryDecode(text.Trim(), out var hrp, out var key)
            && hrp == Hrp.ToLowerInvariant() && key.Length == 32
                ? new AgeIdentity(key)
                : null;
        return identity is not null;
    }

    /// <summary>Reads an identity file as age-keygen writes it (see <see cref="ParseKeyFile"/>).</summary>
    public static IReadOnlyList<AgeIdentity> ReadKeyFile(string path)
    {
        string text;
        try
        {
            text = BoundedRead.Text(path, "an age identity file");
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            throw new AgeException($"age identity file {path} does not exist", ExitCode.UsageOrConfig);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // .NET says "access denied" for a directory.
            throw new AgeException($"cannot read the age identity file {path}: {IoErrors.OpenFailureReason(e, path)}", ExitCode.UsageOrConfig);
        }
        return ParseKeyFile(text, path);
    }

    /// <summary>
    /// Parses identity-file text: one key per line; blank lines and lines starting with '#' are
    /// skipped. A bad line is an error that names <paramref name="source"/> and the line number.
    /// </summary>
    public static IReadOnlyList<AgeIdentity> ParseKeyFile(string text, string source)
    {
        var identities = new List<AgeIdentity>();
        var lines = text.Split('\n');
        for (var i = 0; i < lines.Length; i++)
        {
            var line = lines[i].TrimEnd('\r');
            if (line.Length == 0 || line.StartsWith('#'))
            {
                continue;
            }
            if (TryParse(line, out var identity))
            {
                identities.Add(identity);
                continue;
            }
            var why = line switch
            {
                AgeFormat.VersionLine => "passphrase-protected identity files are not supported; decrypt it with age first",
                _ when line.StartsWith("AGE-PLUGIN-", StringComparison.Ordinal) => "age plugin identities are not supported",
                _ when line.StartsWith("-----BEGIN", StringComparison.Ordinal) || line.StartsWith("ssh-", StringComparison.Ordinal) =>
                    "SSH keys are not supported",
                _ => $"not a valid age identity ({Expected})",
            };
            throw new AgeException($"{source} line {i + 1}: {why}", ExitCode.UsageOrConfig);
        }
        if (identities.Count == 0)
        {
            throw new AgeException($"{source}: no age identity in the file", ExitCode.UsageOrConfig);
        }
        return identities;
    }

    /// <summary>The secret key, "AGE-SECRET-KEY-1…". Handle with care: never log it.</summary>
    public string ToSecretKeyString() => Bech32.Encode(Hrp, _secretKey);

    /// <summary>An identity file exactly as age-keygen writes one.</summary>
    public string ToKeyFile(DateTimeOffset created)
    {
        var offset = created.Offset == TimeSpan.Zero ? "Z" : created.ToString("zzz", CultureInfo.InvariantCulture);
        return $"# created: {created.ToString("yyyy-MM-dd'T'HH:mm:ss", CultureInfo.InvariantCulture)}{offset}\n"
            + $"# public key: {Recipient}\n"
            + $"{ToSecretKeyString()}\n";
    }

    public override string ToString() => $"age identity for {Recipient}";

    /// <summary>The file key in an X25519 stanza meant for this identity, or null if it is not for us.</summary>
    internal byte[]? Unwrap(AgeStanza stanza)
    {
        var share = stanza.Arguments is [var encoded] ? AgeFormat.FromBase64(encoded) : null;
        if (share is not { Length: 32 } || stanza.Body.Length != AgeFormat.FileKeySize + AgeFormat.TagSize)
        {
            throw new AgeException("not a valid age file: malformed X25519 stanza");
        }
        Span<byte> shared = stackalloc byte[32];
        if (!X25519.CalculateAgreement(_secretKey, share, shared))
        {
            throw new AgeException("not a valid age file: X25519 stanza with a low-order ephemeral share");
        }
        var wrappingKey = AgeFormat.Hkdf(shared, [.. share, .. Recipient.PublicKey], AgeRecipient.WrapInfo);
        CryptographicOperations.ZeroMemory(shared);
        return AgeFormat.UnwrapFileKey(wrappingKey, stanza.Body);
    }
}
