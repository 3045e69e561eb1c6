using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using Org.BouncyCastle.Crypto.Generators;
using VyaBackupDb.Errors;

namespace VyaBackupDb.Pipeline.Age;

/// <summary>
/// A passphrase, for age's scrypt stanza ("-> scrypt salt logN"): the file key wrapped under
/// scrypt(passphrase, "age-encryption.org/v1/scrypt" ‖ salt, N = 2^logN, r = 8, p = 1).
/// The same object encrypts (with <see cref="WorkFactor"/>) and decrypts (accepting at most
/// <see cref="MaxWorkFactor"/>, so a hostile file cannot make us spend gigabytes and minutes).
/// </summary>
public sealed class AgePassphrase
{
    internal const string StanzaType = "scrypt";
    public const int DefaultWorkFactor = 18;
    public const int DefaultMaxWorkFactor = 22;
    private const string SaltLabel = "age-encryption.org/v1/scrypt";
    private const int SaltSize = 16;

    private readonly byte[] _passphrase;

    /// <param name="passphrase">Not empty. Encoded as UTF-8, as age does.</param>
    /// <param name="workFactor">log2 of scrypt's N when encrypting (age uses 18: about 256 MiB and a second).</param>
    /// <param name="maxWorkFactor">The largest log2 N accepted when decrypting.</param>
    public AgePassphrase(string passphrase, int workFactor = DefaultWorkFactor, int maxWorkFactor = DefaultMaxWorkFactor)
    {
        if (string.IsNullOrEmpty(passphrase))
        {
            throw new AgeException("the age passphrase is empty", ExitCode.UsageOrConfig);
        }
        ArgumentOutOfRangeException.ThrowIfLessThan(workFactor, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(workFactor, 30);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxWorkFactor, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(maxWorkFactor, 30);
        _passphrase = Encoding.UTF8.GetBytes(passphrase);
        WorkFactor = workFactor;
        MaxWorkFactor = maxWorkFactor;
    }

    public int WorkFactor { get; }

    public int MaxWorkFactor { get; }

    public override string ToString() => "age passphrase (hidden)";

    internal AgeStanza Wrap(ReadOnlySpan<byte> fileKey)
    {
        var salt = RandomNumberGenerator.GetBytes(SaltSize);
        var body = AgeFormat.WrapFileKey(DeriveKey(salt, WorkFactor), fileKey);
        return new AgeStanza(StanzaType, [AgeFormat.ToBase64(salt), WorkFactor.ToString(CultureInfo.InvariantCulture)], body);
    }

    /// <summary>The file key, or null when the passphrase is wrong.</summary>
    internal byte[]? Unwrap(AgeStanza stanza)
    {
        if (stanza.Arguments is not [var encodedSalt, var encodedLogN]
            || AgeFormat.FromBase64(encodedSalt) is not { Length: SaltSize } salt
            || !IsDecimal(encodedLogN)
            || !int.TryParse(encodedLogN, NumberStyles.None, CultureInfo.InvariantCulture, out var logN)
            || stanza.Body.Length != AgeFormat.FileKeySize + AgeFormat.TagSize)
        {
            throw new AgeException("not a valid age file: malformed scrypt stanza");
        }
        if (logN > MaxWorkFactor)
        {
            throw new AgeException($"the file's scrypt work factor (2^{logN}) is above the accepted maximum (2^{MaxWorkFactor})");
        }
        return AgeFormat.UnwrapFileKey(DeriveKey(salt, logN), stanza.Body);
    }

    /// <summary>A positive decimal without leading zeros, as age requires.</summary>
    private static bool IsDecimal(string text) =>
        text.Length is > 0 and <= 2 && text[0] is >= '1' and <= '9' && text.All(char.IsAsciiDigit);

    private byte[] DeriveKey(byte[] salt, int logN) =>
        SCrypt.Generate(_passphrase, [.. Encoding.ASCII.GetBytes(SaltLabel), .. salt], 1 << logN, 8, 1, 32);
}
