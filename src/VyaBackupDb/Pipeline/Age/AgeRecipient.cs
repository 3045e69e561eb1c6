using System.Security.Cryptography;
using Org.BouncyCastle.Math.EC.Rfc7748;
using VyaBackupDb.Errors;

namespace VyaBackupDb.Pipeline.Age;

/// <summary>An age X25519 recipient (public key), written "age1…" in lower-case Bech32.</summary>
public sealed class AgeRecipient : IEquatable<AgeRecipient>
{
    internal const string StanzaType = "X25519";
    internal const string WrapInfo = "age-encryption.org/v1/X25519";
    private const string Hrp = "age";

    private readonly byte[] _publicKey;

    internal AgeRecipient(byte[] publicKey) => _publicKey = publicKey;

    internal ReadOnlySpan<byte> PublicKey => _publicKey;

    /// <summary>Parses "age1…"; a malformed key is an <see cref="AgeException"/> (configuration error).</summary>
    public static AgeRecipient Parse(string text)
    {
        if (TryParse(text, out var recipient))
        {
            return recipient;
        }
        // Never echo a secret key that was put where a public key belongs.
        throw new AgeException(
            text.Contains("SECRET", StringComparison.OrdinalIgnoreCase)
                ? "an age secret key was given where a recipient belongs; give its public key (age1…, the '# public key:' line of the key file)"
                : $"'{text}' is not a valid age recipient (expected an X25519 public key, age1… as age-keygen prints it)",
            ExitCode.UsageOrConfig);
    }

    public static bool TryParse(string text, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out AgeRecipient? recipient)
    {
        recipient = Bech32.TryDecode(text.Trim(), out var hrp, out var key) && hrp == Hrp && key.Length == 32
            ? new AgeRecipient(key)
            : null;
        return recipient is not null;
    }

    public override string ToString() => Bech32.Encode(Hrp, _publicKey);

    public bool Equals(AgeRecipient? other) => other is not null && _publicKey.AsSpan().SequenceEqual(other._publicKey);

    public override bool Equals(object? obj) => Equals(obj as AgeRecipient);

    public override int GetHashCode() => BitConverter.ToInt32(_publicKey);

    /// <summary>
    /// "-> X25519 (ephemeral share)": a fresh ephemeral key agreed with the recipient's key, the
    /// file key wrapped under HKDF(shared secret, salt = ephemeral share ‖ recipient key).
    /// </summary>
    internal AgeStanza Wrap(ReadOnlySpan<byte> fileKey)
    {
        Span<byte> ephemeral = stackalloc byte[32];
        RandomNumberGenerator.Fill(ephemeral);
        var share = new byte[32];
        X25519.ScalarMultBase(ephemeral, share);
        Span<byte> shared = stackalloc byte[32];
        var ok = X25519.CalculateAgreement(ephemeral, _publicKey, shared);
        CryptographicOperations.ZeroMemory(ephemeral);
        if (!ok)
        {
            throw new AgeException($"the age recipient {this} is a low-order point; refusing to encrypt to it", ExitCode.UsageOrConfig);
        }
        var wrappingKey = AgeFormat.Hkdf(shared, [.. share, .. _publicKey], WrapInfo);
        CryptographicOperations.ZeroMemory(shared);
        return new AgeStanza(StanzaType, [AgeFormat.ToBase64(share)], AgeFormat.WrapFileKey(wrappingKey, fileKey));
    }
}
