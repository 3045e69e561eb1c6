using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using Org.BouncyCastle.Crypto.Generators;
using VyaBackupDb.Errors;
using VyaBackupDb.Storage.Local;

namespace VyaBackupDb.Config.Vault;

/// <summary>One set of credentials in the vault. The user is optional (<c>password: vault:NAME</c> needs none).</summary>
public sealed record VaultEntry(string? User, string Password)
{
    public override string ToString() => $"VaultEntry {{ User = {User}, Password = *** }}";
}

/// <summary>scrypt cost parameters; stored in each vault file, so they can be raised without breaking old files.</summary>
public sealed record ScryptParameters(int Log2N, int R, int P)
{
    /// <summary>N = 2^17, r = 8, p = 1: 128 MiB and roughly a second per derivation.</summary>
    public static ScryptParameters Default { get; } = new(17, 8, 1);

    /// <summary>Bounds for reading: a damaged or hostile header must not make us allocate gigabytes.</summary>
    internal bool IsAcceptable =>
        Log2N is >= 1 and <= 20 && R is >= 1 and <= 32 && P is >= 1 and <= 16 && (128L << Log2N) * R <= 1L << 30;
}

/// <summary>
/// The vault file format, version 1. All integers big-endian.
/// <code>
///   magic      8 bytes  "VYAVAULT"
///   version    1 byte   1
///   kdf        1 byte length + ASCII name ("scrypt")
///   log2(N)    1 byte
///   r          4 bytes
///   p          4 bytes
///   salt       1 byte length (16) + salt
///   nonce      1 byte length (12) + nonce
///   ciphertext AES-256-GCM of the UTF-8 JSON document, then its 16-byte tag
/// </code>
/// Everything before the ciphertext is the GCM associated data, so no header byte (the KDF
/// parameters included) can be changed without the file failing to open.
/// </summary>
public static class VaultFile
{
    private const byte FormatVersion = 1;
    private const string KdfName = "scrypt";
    private const int SaltSize = 16;
    private const int NonceSize = 12;
    private const int TagSize = 16;
    private const int KeySize = 32;
    private static ReadOnlySpan<byte> Magic => "VYAVAULT"u8;

    /// <summary>Encrypts <paramref name="entries"/> under a key derived from <paramref name="passphrase"/> with a fresh salt and nonce.</summary>
    public static byte[] Seal(IReadOnlyDictionary<string, VaultEntry> entries, string passphrase, ScryptParameters kdf)
    {
        var salt = RandomNumberGenerator.GetBytes(SaltSize);
        var nonce = RandomNumberGenerator.GetBytes(NonceSize);
        var header = new List<byte>(64);
        header.AddRange(Magic);
        header.Add(FormatVersion);
        header.Add((byte)KdfName.Length);
        header.AddRange(Encoding.ASCII.GetBytes(KdfName));
        header.Add((byte)kdf.Log2N);
        header.AddRange(BigEndian(kdf.R));
        header.AddRange(BigEndian(kdf.P));
        header.Add(SaltSize);
        header.AddRange(salt);
        header.Add(NonceSize);
        header.AddRange(nonce);

        var document = new VaultDocument { Entries = new(entries, StringComparer.Ordinal) };
        var plain = JsonSerializer.SerializeToUtf8Bytes(document, VaultJsonContext.Default.VaultDocument);
        var key = DeriveKey(passphrase, salt, kdf);
        var file = new byte[header.Count + plain.Length + TagSize];
        header.CopyTo(file);
        try
        {
            using var aes = new AesGcm(key, TagSize);
            aes.Encrypt(nonce, plain, file.AsSpan(header.Count, plain.Length), file.AsSpan(header.Count + plain.Length), file.AsSpan(0, header.Count));
        }
        finally
        {
            CryptographicOperations.ZeroMemory(plain);
            CryptographicOperations.ZeroMemory(key);
        }
        return file;
    }

    /// <summary>Decrypts a vault file's bytes; <paramref name="path"/> is for messages. Throws <see cref="VaultException"/>, never returns garbage.</summary>
    public static Dictionary<string, VaultEntry> Open(ReadOnlySpan<byte> file, string passphrase, string path)
    {
        var (kdf, salt, nonce, headerLength) = ReadHeader(file, path);
        if (file.Length < headerLength + TagSize)
        {
            throw new VaultException($"vault {path} is truncated");
        }
        var cipher = file[headerLength..^TagSize];
        var plain = new byte[cipher.Length];
        var key = DeriveKey(passphrase, salt, kdf);
        try
        {
            using var aes = new AesGcm(key, TagSize);
            aes.Decrypt(nonce, cipher, file[^TagSize..], plain, file[..headerLength]);
            var document = JsonSerializer.Deserialize(plain, VaultJsonContext.Default.VaultDocument);
            if (document?.Entries is null || document.Entries.Values.Any(e => e?.Password is null))
            {
                throw new VaultException($"vault {path} holds no valid entry list");
            }
            return new Dictionary<string, VaultEntry>(document.Entries, StringComparer.Ordinal);
        }
        catch (AuthenticationTagMismatchException e)
        {
            throw new VaultException($"cannot open vault {path}: wrong passphrase, or the file was changed, damaged or truncated", e);
        }
        catch (JsonException e)
        {
            throw new VaultException($"vault {path} holds no valid entry list", e);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(plain);
            CryptographicOperations.ZeroMemory(key);
        }
    }

    /// <summary>Reads and decrypts the vault at <paramref name="path"/>.</summary>
    public static Dictionary<string, VaultEntry> Read(string path, string passphrase)
    {
        byte[] bytes;
        try
        {
            bytes = File.ReadAllBytes(path);
        }
        catch (FileNotFoundException)
        {
            throw new VaultException($"there is no vault at {path} (create it with: vya-backupdb vault set NAME)");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new VaultException($"cannot read vault {path}: {e.Message}", e);
        }
        return Open(bytes, passphrase, path);
    }

    /// <summary>
    /// Encrypts and writes the vault atomically: a 0600 temp file in the same directory, fsync,
    /// rename over the old one, fsync the directory. A crash leaves the old vault or the new one.
    /// </summary>
    public static void Write(string path, IReadOnlyDictionary<string, VaultEntry> entries, string passphrase, ScryptParameters kdf)
    {
        var bytes = Seal(entries, passphrase, kdf);
        var full = Path.GetFullPath(path);
        var directory = Path.GetDirectoryName(full) ?? ".";
        var temp = Path.Combine(directory, $".{Path.GetFileName(full)}.tmp-{Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(6))}");
        const UnixFileMode Private = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        try
        {
            var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write };
            if (!OperatingSystem.IsWindows())
            {
                options.UnixCreateMode = Private;
            }
            using (var stream = new FileStream(temp, options))
            {
                if (!OperatingSystem.IsWindows())
                {
                    // The umask may only take bits away; make sure it is exactly 0600.
                    File.SetUnixFileMode(stream.SafeFileHandle, Private);
                }
                stream.Write(bytes);
                stream.Flush(flushToDisk: true);
            }
            File.Move(temp, full, overwrite: true);
            LocalStorage.SyncDirectory(directory);
        }
        catch (Exception e) when (IoErrors.IsWriteFault(e))
        {
            TryDelete(temp);
            // A full disk or a read-only folder is an I/O error (exit 1), not a problem of the vault or its passphrase (exit 7).
            throw new OperationFailedException($"cannot write vault {full}: {IoErrors.WriteFaultReason(e)}", e);
        }
    }

    private static (ScryptParameters Kdf, byte[] Salt, byte[] Nonce, int HeaderLength) ReadHeader(ReadOnlySpan<byte> file, string path)
    {
        if (file.Length < Magic.Length)
        {
            throw new VaultException(Magic.StartsWith(file)
                ? $"vault {path} is truncated"
                : $"{path} is not a vya-backupdb vault file");
        }
        if (!file.StartsWith(Magic))
        {
            throw new VaultException($"{path} is not a vya-backupdb vault file");
        }
        var at = Magic.Length;
        var version = Byte(file, ref at, path);
        if (version != FormatVersion)
        {
            throw new VaultException($"vault {path} has format version {version}, which this vya-backupdb does not read (a newer version wrote it, or the file is damaged)");
        }
        var kdfName = Encoding.ASCII.GetString(Bytes(file, ref at, Byte(file, ref at, path), path));
        if (kdfName != KdfName)
        {
            throw new VaultException($"vault {path} names an unknown key derivation; the file was changed or damaged");
        }
        var log2N = Byte(file, ref at, path);
        var r = BinaryPrimitives.ReadInt32BigEndian(Bytes(file, ref at, 4, path));
        var p = BinaryPrimitives.ReadInt32BigEndian(Bytes(file, ref at, 4, path));
        var kdf = new ScryptParameters(log2N, r, p);
        if (!kdf.IsAcceptable)
        {
            throw new VaultException($"vault {path} has scrypt parameters out of range; the file was changed or damaged");
        }
        var salt = Bytes(file, ref at, Byte(file, ref at, path), path);
        var nonceLength = Byte(file, ref at, path);
        if (salt.Length != SaltSize || nonceLength != NonceSize)
        {
            throw new VaultException($"vault {path} has a damaged header");
        }
        var nonce = Bytes(file, ref at, nonceLength, path);
        return (kdf, salt.ToArray(), nonce.ToArray(), at);
    }

    private static byte Byte(ReadOnlySpan<byte> file, ref int at, string path) => Bytes(file, ref at, 1, path)[0];

    private static ReadOnlySpan<byte> Bytes(ReadOnlySpan<byte> file, ref int at, int count, string path)
    {
        if (file.Length - at < count)
        {
            throw new VaultException($"vault {path} is truncated");
        }
        var bytes = file.Slice(at, count);
        at += count;
        return bytes;
    }

    private static byte[] DeriveKey(string passphrase, byte[] salt, ScryptParameters kdf)
    {
        var secret = Encoding.UTF8.GetBytes(passphrase);
        try
        {
            return SCrypt.Generate(secret, salt, 1 << kdf.Log2N, kdf.R, kdf.P, KeySize);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(secret);
        }
    }

    private static byte[] BigEndian(int value)
    {
        var bytes = new byte[4];
        BinaryPrimitives.WriteInt32BigEndian(bytes, value);
        return bytes;
    }

    private static void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
        }
    }
}

/// <summary>The JSON inside the encryption: <c>{"version":1,"entries":{"NAME":{"user":…,"password":…}}}</c>.</summary>
internal sealed class VaultDocument
{
    public int Version { get; set; } = 1;

    public Dictionary<string, VaultEntry> Entries { get; set; } = new(StringComparer.Ordinal);
}

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower)]
[JsonSerializable(typeof(VaultDocument))]
internal sealed partial class VaultJsonContext : JsonSerializerContext;
