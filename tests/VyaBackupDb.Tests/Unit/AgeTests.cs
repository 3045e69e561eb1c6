using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;
using VyaBackupDb.Errors;
using VyaBackupDb.Pipeline.Age;

namespace VyaBackupDb.Tests.Unit;

public sealed class AgeTests
{
    private const int Chunk = 64 * 1024;
    private const int SealedChunk = Chunk + 16;

    private static readonly AgeIdentity Alice = AgeIdentity.Generate();
    private static readonly AgeIdentity Bob = AgeIdentity.Generate();
    private static readonly AgeIdentity Carol = AgeIdentity.Generate();

    /// <summary>A cheap work factor, so that passphrase tests take milliseconds.</summary>
    private static AgePassphrase Passphrase(string text = "correct horse battery staple", int maxWorkFactor = 22) =>
        new(text, workFactor: 10, maxWorkFactor: maxWorkFactor);

    // --- round trips ---------------------------------------------------------

    public static TheoryData<int> Sizes => [0, 1, Chunk - 1, Chunk, Chunk + 1, 2 * Chunk, 3 * Chunk + 1234, 5 * 1024 * 1024 + 7];

    [Theory]
    [MemberData(nameof(Sizes))]
    public async Task Round_trips_to_one_recipient(int size)
    {
        var plain = RandomNumberGenerator.GetBytes(size);

        var encrypted = await EncryptAsync(plain, [Alice.Recipient]);

        Assert.Equal(ExpectedLength(encrypted, size), encrypted.Length);
        Assert.Equal(plain, await DecryptAsync(encrypted, [Alice]));
        Assert.Equal(plain, DecryptSync(encrypted, [Alice], readSize: 1000));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(Chunk)]
    [InlineData(3 * Chunk + 1234)]
    public async Task Round_trips_to_three_recipients_each_of_whom_can_decrypt(int size)
    {
        var plain = RandomNumberGenerator.GetBytes(size);

        var encrypted = await EncryptAsync(plain, [Alice.Recipient, Bob.Recipient, Carol.Recipient]);

        Assert.Equal(3, Encoding.ASCII.GetString(Header(encrypted)).Split("\n-> X25519 ").Length - 1);
        foreach (var identity in new[] { Alice, Bob, Carol })
        {
            Assert.Equal(plain, await DecryptAsync(encrypted, [identity]));
        }
        // Several identities (as in one key file): the one that fits is used.
        Assert.Equal(plain, await DecryptAsync(encrypted, [AgeIdentity.Generate(), Carol]));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(Chunk)]
    [InlineData(3 * Chunk + 1234)]
    public async Task Round_trips_with_a_passphrase(int size)
    {
        var plain = RandomNumberGenerator.GetBytes(size);

        var encrypted = await EncryptAsync(plain, Passphrase());

        var stanza = Encoding.ASCII.GetString(Header(encrypted)).Split('\n')[1];
        Assert.Matches("^-> scrypt [A-Za-z0-9+/]{22} 10$", stanza);
        Assert.Equal(plain, await DecryptAsync(encrypted, [], Passphrase()));
    }

    [Fact]
    public async Task Passphrase_encryption_uses_age_default_work_factor_18()
    {
        var encrypted = await EncryptAsync("x"u8.ToArray(), new AgePassphrase("pw"));

        Assert.EndsWith(" 18", Encoding.ASCII.GetString(Header(encrypted)).Split('\n')[1], StringComparison.Ordinal);
        Assert.Equal("x"u8.ToArray(), await DecryptAsync(encrypted, [], new AgePassphrase("pw")));
    }

    [Fact]
    public async Task Disposing_without_writing_gives_a_valid_empty_file_and_leave_open_keeps_the_output_open()
    {
        using var output = new MemoryStream();
        await using (new AgeEncryptStream(output, [Alice.Recipient], leaveOpen: true))
        {
        }
        Assert.True(output.CanWrite);
        Assert.Empty(await DecryptAsync(output.ToArray(), [Alice]));
    }

    [Fact]
    public void Synchronous_write_and_open_work_too()
    {
        var plain = RandomNumberGenerator.GetBytes(2 * Chunk + 5);
        using var output = new MemoryStream();
        using (var encrypt = new AgeEncryptStream(output, [Alice.Recipient], leaveOpen: true))
        {
            encrypt.Write(plain, 0, 100);
            encrypt.Write(plain.AsSpan(100));
        }
        Assert.Equal(plain, DecryptSync(output.ToArray(), [Alice], readSize: 65_536));
        Assert.Throws<AgeException>(() => DecryptSync(output.ToArray(), [Bob], readSize: 65_536));
        Assert.Throws<AgeException>(() => DecryptSync(output.ToArray()[..^1], [Alice], readSize: 65_536));
    }

    // --- keys ----------------------------------------------------------------

    [Fact]
    public void Identities_and_recipients_round_trip_through_their_text_forms()
    {
        var identity = AgeIdentity.Generate();
        var secret = identity.ToSecretKeyString();
        var recipient = identity.Recipient.ToString();

        Assert.Matches("^AGE-SECRET-KEY-1[QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L]{58}$", secret);
        Assert.Matches("^age1[qpzry9x8gf2tvdw0s3jn54khce6mua7l]{58}$", recipient);
        Assert.Equal(recipient, AgeIdentity.Parse(secret).Recipient.ToString());
        Assert.Equal(identity.Recipient, AgeRecipient.Parse(recipient));
        Assert.DoesNotContain(secret, identity.ToString(), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("")]
    [InlineData("age1")]
    [InlineData("age1qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq")] // bad checksum
    [InlineData("AGE1QEWHNPGTS94A9FTQSL2TV09QFU5R4DFKPZSDT0V77AFJ94T8DA3sfxq87x")] // mixed case
    public void Malformed_recipients_are_configuration_errors(string text)
    {
        var e = Assert.Throws<AgeException>(() => AgeRecipient.Parse(text));
        Assert.Equal(ExitCode.UsageOrConfig, e.ExitCode);
    }

    [Fact]
    public void A_recipient_with_one_changed_character_is_rejected()
    {
        var text = Alice.Recipient.ToString();
        var changed = text[..10] + (text[10] == 'q' ? 'p' : 'q') + text[11..];

        Assert.False(AgeRecipient.TryParse(changed, out _));
    }

    [Fact]
    public void A_secret_key_given_as_a_recipient_is_rejected_without_echoing_it()
    {
        var secret = Alice.ToSecretKeyString();

        var e = Assert.Throws<AgeException>(() => AgeRecipient.Parse(secret));

        Assert.DoesNotContain(secret, e.Message, StringComparison.Ordinal);
        Assert.Contains("secret key", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Bech32_accepts_the_BIP173_test_vectors()
    {
        Assert.True(Bech32.TryDecode("A12UEL5L", out var hrp, out var data));
        Assert.Equal("a", hrp);
        Assert.Empty(data);
        Assert.True(Bech32.TryDecode("abcdef1qpzry9x8gf2tvdw0s3jn54khce6mua7lmqqqxw", out hrp, out _));
        Assert.Equal("abcdef", hrp);
        Assert.False(Bech32.TryDecode("A12UEL5l", out _, out _));
        Assert.False(Bech32.TryDecode("a12uel5m", out _, out _));
    }

    [Fact]
    public void Key_files_as_age_keygen_writes_them_are_read_with_comments_blank_lines_and_several_keys()
    {
        var text = Alice.ToKeyFile(new DateTimeOffset(2026, 1, 13, 15, 54, 40, TimeSpan.FromHours(1)))
            + "\r\n"
            + "# another one, with CRLF\r\n"
            + Bob.ToSecretKeyString() + "\r\n";

        var identities = AgeIdentity.ParseKeyFile(text, "keys.txt");

        Assert.Equal([Alice.Recipient, Bob.Recipient], identities.Select(i => i.Recipient));
        Assert.StartsWith("# created: 2026-01-13T15:54:40+01:00\n# public key: age1", text, StringComparison.Ordinal);
        Assert.StartsWith("# created: 2026-01-13T15:54:40Z\n",
            Alice.ToKeyFile(new DateTimeOffset(2026, 1, 13, 15, 54, 40, TimeSpan.Zero)), StringComparison.Ordinal);
    }

    [Fact]
    public void A_malformed_key_in_a_key_file_names_the_line_but_not_the_key()
    {
        var secret = Alice.ToSecretKeyString();
        var damaged = secret[..^1] + (secret[^1] == 'Q' ? 'P' : 'Q');
        var text = $"# created: 2026-01-13T15:54:40Z\n\n{Bob.ToSecretKeyString()}\n{damaged}\n";

        var e = Assert.Throws<AgeException>(() => AgeIdentity.ParseKeyFile(text, "/etc/vya/key.txt"));

        Assert.Contains("/etc/vya/key.txt line 4", e.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(damaged[16..], e.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(Bob.ToSecretKeyString()[16..], e.Message, StringComparison.Ordinal);
        Assert.Equal(ExitCode.UsageOrConfig, e.ExitCode);
    }

    [Theory]
    [InlineData("")]
    [InlineData("# only a comment\n\n")]
    [InlineData("AGE-PLUGIN-YUBIKEY-1QQQQQQ\n")]
    [InlineData("age-encryption.org/v1\n-> scrypt abc 18\n")]
    public void Key_files_without_a_usable_identity_are_rejected(string text) =>
        Assert.Throws<AgeException>(() => AgeIdentity.ParseKeyFile(text, "k.txt"));

    [Fact]
    public void Passphrase_and_identity_ToString_hide_the_secret()
    {
        Assert.DoesNotContain("hunter2", new AgePassphrase("hunter2").ToString(), StringComparison.Ordinal);
        Assert.Throws<AgeException>(() => new AgePassphrase(""));
    }

    // --- wrong keys ----------------------------------------------------------

    [Fact]
    public async Task A_wrong_identity_fails_with_the_decryption_exit_code()
    {
        var encrypted = await EncryptAsync(RandomNumberGenerator.GetBytes(1000), [Alice.Recipient, Bob.Recipient]);

        var e = await Assert.ThrowsAsync<AgeException>(() => DecryptAsync(encrypted, [Carol]));

        Assert.Equal(ExitCode.DecryptionFailed, e.ExitCode);
        Assert.Contains("not encrypted to the given identity", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_wrong_passphrase_fails()
    {
        var encrypted = await EncryptAsync(RandomNumberGenerator.GetBytes(1000), Passphrase("right"));

        var e = await Assert.ThrowsAsync<AgeException>(() => DecryptAsync(encrypted, [], Passphrase("wrong")));

        Assert.Contains("wrong passphrase", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_wrong_kind_of_key_is_a_clear_error()
    {
        var withPassphrase = await EncryptAsync([1, 2, 3], Passphrase());
        var toRecipient = await EncryptAsync([1, 2, 3], [Alice.Recipient]);

        var e1 = await Assert.ThrowsAsync<AgeException>(() => DecryptAsync(withPassphrase, [Alice]));
        var e2 = await Assert.ThrowsAsync<AgeException>(() => DecryptAsync(toRecipient, [], Passphrase()));

        Assert.Contains("passphrase", e1.Message, StringComparison.Ordinal);
        Assert.Contains("identity", e2.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_scrypt_work_factor_above_the_limit_is_refused_before_any_work()
    {
        var encrypted = await EncryptAsync([1, 2, 3], new AgePassphrase("pw", workFactor: 14));

        var e = await Assert.ThrowsAsync<AgeException>(() => DecryptAsync(encrypted, [], new AgePassphrase("pw", maxWorkFactor: 12)));

        Assert.Contains("2^14", e.Message, StringComparison.Ordinal);
    }

    // --- tampering and truncation --------------------------------------------

    [Theory]
    [InlineData("version")]
    [InlineData("stanza argument")]
    [InlineData("stanza body")]
    [InlineData("mac")]
    [InlineData("extra stanza")]
    public async Task A_changed_header_fails_at_open(string where)
    {
        var encrypted = await EncryptAsync(RandomNumberGenerator.GetBytes(3 * Chunk), [Alice.Recipient, Bob.Recipient]);
        var header = Encoding.ASCII.GetString(Header(encrypted));
        var lines = header.Split('\n');
        byte[] damaged;
        if (where == "extra stanza")
        {
            // A valid-looking stanza added by an attacker: only the MAC can notice.
            var extra = "-> X25519 " + Convert.ToBase64String(new byte[32]).TrimEnd('=') + "\n" + Convert.ToBase64String(new byte[32]).TrimEnd('=') + "\n";
            var at = header.IndexOf("---", StringComparison.Ordinal);
            damaged = [.. Encoding.ASCII.GetBytes(header[..at] + extra + header[at..]), .. encrypted.AsSpan(header.Length)];
        }
        else
        {
            var offset = where switch
            {
                "version" => 3,
                "stanza argument" => lines[0].Length + 1 + 15,
                "stanza body" => lines[0].Length + lines[1].Length + 2 + 5,
                _ => header.Length - 5,
            };
            damaged = Flip(encrypted, offset);
        }

        var e = await Assert.ThrowsAsync<AgeException>(() => DecryptAsync(damaged, [Alice]));
        Assert.Equal(ExitCode.DecryptionFailed, e.ExitCode);
    }

    [Fact]
    public async Task The_MAC_catches_a_header_change_that_leaves_our_stanza_intact()
    {
        var encrypted = await EncryptAsync(RandomNumberGenerator.GetBytes(100), [Alice.Recipient, Bob.Recipient]);
        var header = Encoding.ASCII.GetString(Header(encrypted));
        var bobStanza = header.IndexOf("-> X25519 ", header.IndexOf("-> X25519 ", StringComparison.Ordinal) + 1, StringComparison.Ordinal);

        // Change Bob's stanza, decrypt as Alice: her stanza still unwraps, the MAC must fail.
        var e = await Assert.ThrowsAsync<AgeException>(() => DecryptAsync(Flip(encrypted, bobStanza + 12), [Alice]));

        Assert.Contains("MAC", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_changed_byte_in_a_middle_chunk_fails_and_no_byte_of_that_chunk_comes_out()
    {
        var plain = RandomNumberGenerator.GetBytes(3 * Chunk + 1234);
        var encrypted = await EncryptAsync(plain, [Alice.Recipient]);
        var payload = PayloadStart(encrypted);

        var (read, error) = await ReadUntilFailureAsync(Flip(encrypted, payload + SealedChunk + 777), [Alice]);

        Assert.NotNull(error);
        Assert.Equal(plain[..Chunk], read); // chunk 0 exactly, nothing of chunk 1
    }

    [Fact]
    public async Task A_changed_byte_in_the_last_tag_fails_and_no_byte_of_the_last_chunk_comes_out()
    {
        var plain = RandomNumberGenerator.GetBytes(2 * Chunk + 500);
        var encrypted = await EncryptAsync(plain, [Alice.Recipient]);

        var (read, error) = await ReadUntilFailureAsync(Flip(encrypted, encrypted.Length - 1), [Alice]);

        Assert.NotNull(error);
        Assert.Equal(plain[..(2 * Chunk)], read);
    }

    [Fact]
    public async Task A_changed_nonce_fails_the_first_chunk()
    {
        var encrypted = await EncryptAsync(RandomNumberGenerator.GetBytes(100), [Alice.Recipient]);

        var (read, error) = await ReadUntilFailureAsync(Flip(encrypted, PayloadStart(encrypted) - 3), [Alice]);

        Assert.NotNull(error);
        Assert.Empty(read);
    }

    [Fact]
    public async Task A_file_cut_in_the_middle_of_a_chunk_fails_after_the_whole_chunks_before_it()
    {
        var plain = RandomNumberGenerator.GetBytes(3 * Chunk + 1234);
        var encrypted = await EncryptAsync(plain, [Alice.Recipient]);

        var (read, error) = await ReadUntilFailureAsync(encrypted[..(PayloadStart(encrypted) + 2 * SealedChunk + 4000)], [Alice]);

        Assert.NotNull(error);
        Assert.Equal(plain[..(2 * Chunk)], read);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public async Task A_file_cut_exactly_at_a_chunk_boundary_fails(int chunksKept)
    {
        var plain = RandomNumberGenerator.GetBytes(3 * Chunk + 1234);
        var encrypted = await EncryptAsync(plain, [Alice.Recipient]);

        var (read, error) = await ReadUntilFailureAsync(encrypted[..(PayloadStart(encrypted) + chunksKept * SealedChunk)], [Alice]);

        Assert.NotNull(error);
        Assert.Contains("64 KiB boundary", error.Message, StringComparison.Ordinal);
        Assert.Equal(plain[..((chunksKept - 1) * Chunk)], read);
    }

    [Fact]
    public async Task A_file_of_whole_chunks_cut_at_a_boundary_fails_too()
    {
        // 2 full chunks, the second one final; keep only the first.
        var plain = RandomNumberGenerator.GetBytes(2 * Chunk);
        var encrypted = await EncryptAsync(plain, [Alice.Recipient]);

        var (_, error) = await ReadUntilFailureAsync(encrypted[..(PayloadStart(encrypted) + SealedChunk)], [Alice]);

        Assert.NotNull(error);
    }

    [Fact]
    public async Task A_file_cut_after_the_header_fails()
    {
        var encrypted = await EncryptAsync(RandomNumberGenerator.GetBytes(100), [Alice.Recipient]);
        var headerLength = PayloadStart(encrypted) - 16;

        await Assert.ThrowsAsync<AgeException>(() => DecryptAsync(encrypted[..headerLength], [Alice]));
        await Assert.ThrowsAsync<AgeException>(() => DecryptAsync(encrypted[..(headerLength - 10)], [Alice]));
        await Assert.ThrowsAsync<AgeException>(() => DecryptAsync(encrypted[..(headerLength + 16)], [Alice])); // nonce, no chunk
        await Assert.ThrowsAsync<AgeException>(() => DecryptAsync(encrypted[..(headerLength + 16 + 15)], [Alice])); // less than a tag
    }

    [Theory]
    [InlineData(500, 1)]
    [InlineData(2 * Chunk, 1)]
    [InlineData(2 * Chunk, 20)]
    [InlineData(Chunk + 10, SealedChunk)]
    public async Task Bytes_appended_after_the_final_chunk_fail(int size, int extra)
    {
        var plain = RandomNumberGenerator.GetBytes(size);
        var encrypted = await EncryptAsync(plain, [Alice.Recipient]);

        var (read, error) = await ReadUntilFailureAsync([.. encrypted, .. new byte[extra]], [Alice]);

        Assert.NotNull(error);
        Assert.True(read.Length <= size - (size % Chunk == 0 ? Chunk : size % Chunk), "the final chunk must not come out");
    }

    [Fact]
    public async Task An_empty_final_chunk_is_refused_unless_the_whole_payload_is_empty()
    {
        var fileKey = RandomNumberGenerator.GetBytes(16);

        var valid = Craft(fileKey, (new byte[Chunk], false), (new byte[1], true));
        var emptyFinal = Craft(fileKey, (new byte[Chunk], false), ([], true));
        var emptyOnly = Craft(fileKey, ([], true));
        var noFinalFlag = Craft(fileKey, (new byte[10], false));
        var finalInTheMiddle = Craft(fileKey, (new byte[Chunk], true), (new byte[1], true));

        Assert.Equal(Chunk + 1, (await DecryptAsync(valid, [Alice])).Length);
        Assert.Empty(await DecryptAsync(emptyOnly, [Alice]));
        var e = await Assert.ThrowsAsync<AgeException>(() => DecryptAsync(emptyFinal, [Alice]));
        Assert.Contains("empty final chunk", e.Message, StringComparison.Ordinal);
        await Assert.ThrowsAsync<AgeException>(() => DecryptAsync(noFinalFlag, [Alice]));
        await Assert.ThrowsAsync<AgeException>(() => DecryptAsync(finalInTheMiddle, [Alice]));
    }

    [Fact]
    public async Task An_scrypt_stanza_next_to_another_stanza_is_refused()
    {
        var fileKey = RandomNumberGenerator.GetBytes(16);
        var stanzas = new[] { Passphrase().Wrap(fileKey), Alice.Recipient.Wrap(fileKey) };
        var file = Craft(fileKey, stanzas, ([1], true));

        var e = await Assert.ThrowsAsync<AgeException>(() => DecryptAsync(file, [Alice], Passphrase()));

        Assert.Contains("scrypt", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("")]
    [InlineData("hello, world\n")]
    [InlineData("age-encryption.org/v2\n")]
    [InlineData("-----BEGIN AGE ENCRYPTED FILE-----\n")]
    public async Task Input_that_is_not_an_age_file_is_refused(string text)
    {
        var e = await Assert.ThrowsAsync<AgeException>(() => DecryptAsync(Encoding.ASCII.GetBytes(text), [Alice]));
        Assert.Equal(ExitCode.DecryptionFailed, e.ExitCode);
    }

    [Theory]
    [InlineData("age-encryption.org/v1\n-> X25519 AAAA\nAAAA\n--- AAAA\n")] // MAC too short
    [InlineData("age-encryption.org/v1\n->  X25519\nAA\n--- AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n")] // empty argument
    [InlineData("age-encryption.org/v1\n-> X25519 x\nAB\n--- AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n")] // non-canonical base64 body
    [InlineData("age-encryption.org/v1\n-> X25519 x\nAA==\n--- AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n")] // padding
    [InlineData("age-encryption.org/v1\nhello\n--- AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n")]
    public void Malformed_headers_are_refused(string header) =>
        Assert.Throws<AgeException>(() => AgeHeader.Parse(Encoding.ASCII.GetBytes(header)));

    [Fact]
    public async Task Every_read_after_a_failure_fails_again()
    {
        var encrypted = await EncryptAsync(RandomNumberGenerator.GetBytes(2 * Chunk + 1), [Alice.Recipient]);
        await using var decrypt = await AgeDecryptStream.OpenAsync(new MemoryStream(Flip(encrypted, encrypted.Length - 1)), [Alice]);
        var buffer = new byte[3 * Chunk];

        await Assert.ThrowsAsync<AgeException>(async () =>
        {
            while (await decrypt.ReadAsync(buffer) > 0)
            {
            }
        });
        await Assert.ThrowsAsync<AgeException>(async () => Assert.Equal(0, await decrypt.ReadAsync(buffer)));
        Assert.Throws<AgeException>(() => decrypt.Read(buffer));
    }

    // --- helpers -------------------------------------------------------------

    private static Task<byte[]> EncryptAsync(byte[] plain, IReadOnlyCollection<AgeRecipient> recipients) =>
        EncryptAsync(plain, output => new AgeEncryptStream(output, recipients, leaveOpen: true));

    private static Task<byte[]> EncryptAsync(byte[] plain, AgePassphrase passphrase) =>
        EncryptAsync(plain, output => new AgeEncryptStream(output, passphrase, leaveOpen: true));

    private static async Task<byte[]> EncryptAsync(byte[] plain, Func<Stream, AgeEncryptStream> create)
    {
        using var output = new MemoryStream();
        await using (var encrypt = create(output))
        {
            // Odd-sized writes, as a dump tool's pipe delivers them.
            for (var offset = 0; offset < plain.Length; offset += 40_009)
            {
                await encrypt.WriteAsync(plain.AsMemory(offset, Math.Min(40_009, plain.Length - offset)));
            }
        }
        return output.ToArray();
    }

    private static async Task<byte[]> DecryptAsync(byte[] encrypted, IReadOnlyList<AgeIdentity> identities, AgePassphrase? passphrase = null)
    {
        await using var decrypt = await AgeDecryptStream.OpenAsync(new MemoryStream(encrypted), identities, passphrase);
        using var plain = new MemoryStream();
        await decrypt.CopyToAsync(plain);
        return plain.ToArray();
    }

    private static byte[] DecryptSync(byte[] encrypted, IReadOnlyList<AgeIdentity> identities, int readSize)
    {
        using var decrypt = AgeDecryptStream.Open(new MemoryStream(encrypted), identities);
        using var plain = new MemoryStream();
        var buffer = new byte[readSize];
        int n;
        while ((n = decrypt.Read(buffer, 0, buffer.Length)) > 0)
        {
            plain.Write(buffer, 0, n);
        }
        return plain.ToArray();
    }

    /// <summary>Reads through a small buffer until the end or an error; returns what came out and the error.</summary>
    private static async Task<(byte[] Read, AgeException? Error)> ReadUntilFailureAsync(byte[] encrypted, IReadOnlyList<AgeIdentity> identities)
    {
        using var plain = new MemoryStream();
        try
        {
            await using var decrypt = await AgeDecryptStream.OpenAsync(new MemoryStream(encrypted), identities);
            var buffer = new byte[1000];
            int n;
            while ((n = await decrypt.ReadAsync(buffer)) > 0)
            {
                plain.Write(buffer, 0, n);
            }
            return (plain.ToArray(), null);
        }
        catch (AgeException e)
        {
            return (plain.ToArray(), e);
        }
    }

    private static byte[] Header(byte[] encrypted) => encrypted[..(PayloadStart(encrypted) - 16)];

    /// <summary>Offset of the first chunk: after the MAC line and the 16-byte nonce.</summary>
    private static int PayloadStart(byte[] encrypted)
    {
        var mac = encrypted.AsSpan().IndexOf("\n--- "u8);
        return mac + 1 + encrypted.AsSpan(mac + 1).IndexOf((byte)'\n') + 1 + 16;
    }

    private static int ExpectedLength(byte[] encrypted, int size) =>
        PayloadStart(encrypted) + size + 16 * Math.Max(1, (size + Chunk - 1) / Chunk);

    private static byte[] Flip(byte[] data, int offset)
    {
        var copy = data.ToArray();
        copy[offset] ^= 0x01;
        return copy;
    }

    private static byte[] Craft(byte[] fileKey, params (byte[] Plain, bool Last)[] chunks) =>
        Craft(fileKey, [Alice.Recipient.Wrap(fileKey)], chunks);

    /// <summary>An age file with chosen stanzas and chunks (flags as given), to test the decoder's rules.</summary>
    private static byte[] Craft(byte[] fileKey, AgeStanza[] stanzas, params (byte[] Plain, bool Last)[] chunks)
    {
        var nonce = RandomNumberGenerator.GetBytes(16);
        var payloadKey = new byte[32];
        HKDF.DeriveKey(HashAlgorithmName.SHA256, fileKey, payloadKey, nonce, "payload"u8);
        using var aead = new ChaCha20Poly1305(payloadKey);
        var file = new List<byte>(AgeHeader.Encode(stanzas, fileKey));
        file.AddRange(nonce);
        for (var i = 0; i < chunks.Length; i++)
        {
            var chunkNonce = new byte[12];
            BinaryPrimitives.WriteUInt64BigEndian(chunkNonce.AsSpan(3), (ulong)i);
            chunkNonce[11] = chunks[i].Last ? (byte)1 : (byte)0;
            var sealedChunk = new byte[chunks[i].Plain.Length + 16];
            aead.Encrypt(chunkNonce, chunks[i].Plain, sealedChunk.AsSpan(0, chunks[i].Plain.Length), sealedChunk.AsSpan(chunks[i].Plain.Length));
            file.AddRange(sealedChunk);
        }
        return [.. file];
    }
}
