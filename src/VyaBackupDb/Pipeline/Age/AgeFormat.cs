using System.Security.Cryptography;
using System.Text;

namespace VyaBackupDb.Pipeline.Age;

/// <summary>Constants and primitives of the age v1 format (https://age-encryption.org/v1).</summary>
internal static class AgeFormat
{
    public const string VersionLine = "age-encryption.org/v1";
    public const int FileKeySize = 16;
    public const int NonceSize = 16;
    public const int TagSize = 16;
    public const int ChunkSize = 64 * 1024;
    public const int EncryptedChunkSize = ChunkSize + TagSize;

    /// <summary>A header larger than this is refused (X25519 stanzas are about 100 bytes each).</summary>
    public const int MaxHeaderSize = 1024 * 1024;

    public static void RequireChaCha20Poly1305()
    {
        if (!ChaCha20Poly1305.IsSupported)
        {
            throw new AgeException(
                "ChaCha20-Poly1305 is not available on this system (it needs OpenSSL 1.1 or later); age encryption cannot be used",
                Errors.ExitCode.Failed);
        }
    }

    /// <summary>HKDF-SHA-256 with an ASCII info string.</summary>
    public static byte[] Hkdf(ReadOnlySpan<byte> key, ReadOnlySpan<byte> salt, string info, int length = 32)
    {
        var output = new byte[length];
        HKDF.DeriveKey(HashAlgorithmName.SHA256, key, output, salt, Encoding.ASCII.GetBytes(info));
        return output;
    }

    /// <summary>Wraps a file key (ChaCha20-Poly1305, zero nonce: each wrapping key is used once).</summary>
    public static byte[] WrapFileKey(ReadOnlySpan<byte> wrappingKey, ReadOnlySpan<byte> fileKey)
    {
        var body = new byte[fileKey.Length + TagSize];
        using var aead = new ChaCha20Poly1305(wrappingKey);
        aead.Encrypt(stackalloc byte[12], fileKey, body.AsSpan(0, fileKey.Length), body.AsSpan(fileKey.Length));
        return body;
    }

    /// <summary>The file key in a stanza body, or null when the wrapping key is not the right one.</summary>
    public static byte[]? UnwrapFileKey(ReadOnlySpan<byte> wrappingKey, ReadOnlySpan<byte> body)
    {
        if (body.Length != FileKeySize + TagSize)
        {
            return null;
        }
        var fileKey = new byte[FileKeySize];
        using var aead = new ChaCha20Poly1305(wrappingKey);
        try
        {
            aead.Decrypt(stackalloc byte[12], body[..FileKeySize], body[FileKeySize..], fileKey);
            return fileKey;
        }
        catch (CryptographicException)
        {
            return null;
        }
    }

    /// <summary>Standard base64 without padding, as age writes it.</summary>
    public static string ToBase64(ReadOnlySpan<byte> data) => Convert.ToBase64String(data).TrimEnd('=');

    /// <summary>Strict decoding of unpadded base64: no padding, no whitespace, canonical trailing bits.</summary>
    public static byte[]? FromBase64(string text)
    {
        if (text.Length % 4 == 1 || text.AsSpan().ContainsAnyExcept(Base64Chars))
        {
            return null;
        }
        var data = Convert.FromBase64String(text + new string('=', (4 - text.Length % 4) % 4));
        return ToBase64(data) == text ? data : null;
    }

    private static readonly System.Buffers.SearchValues<char> Base64Chars =
        System.Buffers.SearchValues.Create("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/");
}
