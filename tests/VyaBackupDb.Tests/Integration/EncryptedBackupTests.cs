using VyaBackupDb.Catalog;
using VyaBackupDb.Config;
using VyaBackupDb.Operations;
using VyaBackupDb.Pipeline;
using VyaBackupDb.Pipeline.Age;
using VyaBackupDb.Storage.Local;

namespace VyaBackupDb.Tests.Integration;

/// <summary>
/// Encrypted backups end to end: written by backup --encrypt, readable by Debian's age, and the
/// other way round; a wrong key or a damaged file fails with exit code 6 before the target exists.
/// </summary>
public sealed class EncryptedBackupTests : IAsyncLifetime
{
    private readonly Scratch _scratch = new();

    public Task InitializeAsync() => _scratch.InitializeAsync();

    public Task DisposeAsync() => _scratch.DisposeAsync();

    [SkippableTheory]
    [InlineData(Dbms.MySql, "zstd")]
    [InlineData(Dbms.PostgreSql, "zip")]
    public async Task Encrypted_backup_decrypts_with_age_and_restores_with_the_identity(Dbms dbms, string compression)
    {
        AgeTool.Require();
        var (source, instance) = await SourceAsync(dbms);
        var dir = _scratch.TempDir("enc");
        var keyFile = await KeygenAsync(dir, "key.txt");
        var config = await WriteEncryptedConfigAsync(dir, keyFile, compression);

        var backup = await Run.CliAsync("backup", "--instance", instance, "--database", source, "--encrypt", "--config", config);

        Assert.True(backup.ExitCode == 0, backup.ToString());
        var file = Assert.Single(Ops.DataFilesUnder(Path.Combine(dir, "backups")));
        file = Path.Combine(dir, "backups", file);
        Assert.EndsWith(".age", file, StringComparison.Ordinal);
        var manifest = BackupManifest.FromJson(await File.ReadAllBytesAsync(file + BackupManifest.Suffix));
        Assert.Equal("age", manifest.Encryption);
        Assert.Equal([PublicKey(keyFile)], manifest.EncryptedTo);
        var stored = await File.ReadAllBytesAsync(file);
        Assert.True(stored.AsSpan().IndexOf("CREATE TABLE"u8) < 0, "plaintext on disk"); // the codec alone would not hide it for zip

        // The standard tool decrypts it, and the result is our codec's output.
        var decrypted = Path.Combine(dir, "decrypted");
        var age = await AgeTool.RunAsync("age", ["-d", "-i", keyFile, "-o", decrypted, file]);
        Assert.True(age.ExitCode == 0, age.ToString());
        Assert.Equal(compression == "zip" ? Compression.Zip : Compression.Zstd, Codec.Sniff((await File.ReadAllBytesAsync(decrypted)).AsSpan(0, 4)));

        // After a key rotation: the failure names the key the backup needs (tr98: "not encrypted to the given identity").
        var newKey = await KeygenAsync(dir, "new.txt");
        var rotated = await Run.CliAsync("verify", "--file", file, "--identity", newKey, "--config", config);
        Assert.True(rotated.ExitCode == 6, rotated.ToString());
        Assert.Contains($"it was encrypted to {PublicKey(keyFile)}", rotated.Stdout, StringComparison.Ordinal);
        var restoreRotated = await Run.CliAsync("restore", "--file", file, "--instance", instance, "--target", Track(dbms), "--identity", newKey, "--config", config);
        Assert.True(restoreRotated.ExitCode == 6, restoreRotated.ToString());
        Assert.EndsWith($"it was encrypted to {PublicKey(keyFile)}", Assert.Single(Cli.ErrorLines(restoreRotated)), StringComparison.Ordinal);

        // On a rebuilt host the config names the lost host's key file: --identity decrypts (tr103: "does not exist", exit 1).
        var rebuilt = Path.Combine(dir, "rebuilt.yml");
        await File.WriteAllTextAsync(rebuilt, await File.ReadAllTextAsync(config) + $"  identity_files: [\"{Path.Combine(dir, "lost", "key.txt")}\"]\n");
        var verifyRebuilt = await Run.CliAsync("verify", "--file", file, "--identity", keyFile, "--config", rebuilt);
        Assert.True(verifyRebuilt.ExitCode == 0, verifyRebuilt.ToString());
        var verifyNoKey = await Run.CliAsync("verify", "--file", file, "--config", rebuilt);
        Assert.True(verifyNoKey.ExitCode == 1, verifyNoKey.ToString());
        Assert.Contains($"age identity file {Path.Combine(dir, "lost", "key.txt")} does not exist", verifyNoKey.ToString(), StringComparison.Ordinal);

        var copy = Track(dbms);
        var restore = await Run.CliAsync("restore", "--file", file, "--instance", instance, "--target", copy, "--identity", keyFile, "--config", config);
        Assert.True(restore.ExitCode == 0, restore.ToString());
        await AssertSameAsync(dbms, source, copy);
    }

    [SkippableFact]
    public async Task A_file_encrypted_by_age_restores_and_a_wrong_key_fails_before_the_target_exists()
    {
        AgeTool.Require();
        var (source, instance) = await SourceAsync(Dbms.PostgreSql);
        var dir = _scratch.TempDir("enc");
        var keyFile = await KeygenAsync(dir, "key.txt");
        var otherKey = await KeygenAsync(dir, "other.txt");
        var plainBackup = await Ops.BackupOkAsync(TestServers.Postgres(), source, Compression.Gzip, Path.Combine(dir, "plain"));
        var config = await WriteEncryptedConfigAsync(dir, keyFile, "gzip");
        var encrypted = Path.Combine(dir, Path.GetFileName(plainBackup) + ".age");
        var age = await AgeTool.RunAsync("age", ["-r", PublicKey(keyFile), "-o", encrypted, plainBackup]);
        Assert.True(age.ExitCode == 0, age.ToString());

        var wrongTarget = Track(Dbms.PostgreSql);
        var wrong = await Run.CliAsync("restore", "--file", encrypted, "--instance", instance, "--target", wrongTarget, "--identity", otherKey, "--config", config);
        Assert.True(wrong.ExitCode == 6, wrong.ToString());
        Assert.Single(Cli.ErrorLines(wrong));
        Assert.False(await PgTestDb.ExistsAsync(wrongTarget), "a restore with the wrong key created the target");

        var copy = Track(Dbms.PostgreSql);
        var restore = await Run.CliAsync("restore", "--file", encrypted, "--instance", instance, "--target", copy, "--identity", keyFile, "--config", config);
        Assert.True(restore.ExitCode == 0, restore.ToString());
        await AssertSameAsync(Dbms.PostgreSql, source, copy);

        var verifyWrong = await Run.CliAsync("verify", "--file", encrypted, "--identity", otherKey, "--config", config);
        Assert.True(verifyWrong.ExitCode == 6, verifyWrong.ToString());

        // A directory given as the identity (tr73: .NET's "Access to the path is denied").
        var verifyDirectory = await Run.CliAsync("verify", "--file", encrypted, "--identity", dir, "--config", config);
        Assert.True(verifyDirectory.ExitCode == 1, verifyDirectory.ToString());
        Assert.EndsWith($"cannot read the age identity file {dir}: it is a directory", Assert.Single(Cli.ErrorLines(verifyDirectory)), StringComparison.Ordinal);
    }

    [SkippableTheory]
    [InlineData("flipped")]
    [InlineData("cut at a chunk boundary")]
    public async Task A_damaged_encrypted_file_fails_with_exit_6_and_leaves_no_target(string damage)
    {
        AgeTool.Require();
        var (source, instance) = await SourceAsync(Dbms.MySql, rows: 3000); // several 64 KiB chunks
        var dir = _scratch.TempDir("enc");
        var keyFile = await KeygenAsync(dir, "key.txt");
        var config = await WriteEncryptedConfigAsync(dir, keyFile, "none");
        var backup = await Run.CliAsync("backup", "--instance", instance, "--database", source, "--encrypt", "--config", config);
        Assert.True(backup.ExitCode == 0, backup.ToString());
        var file = Path.Combine(dir, "backups", Assert.Single(Ops.DataFilesUnder(Path.Combine(dir, "backups"))));
        // Without its manifest the digest check cannot catch it: the age layer must.
        File.Delete(file + BackupManifest.Suffix);
        var bytes = await File.ReadAllBytesAsync(file);
        var payloadStart = bytes.AsSpan().IndexOf("\n---"u8) + 48; // after the header line and the 16-byte nonce, roughly
        Assert.True(bytes.Length > payloadStart + 3 * (64 * 1024 + 16), "the test dump is too small to span several chunks");
        if (damage == "flipped")
        {
            bytes[payloadStart + 70_000] ^= 0x01;
        }
        else
        {
            var header = bytes.AsSpan().IndexOf("\n---"u8);
            var headerEnd = bytes.AsSpan(header + 1).IndexOf((byte)'\n') + header + 2;
            bytes = bytes[..(headerEnd + 16 + 2 * (64 * 1024 + 16))]; // nonce + exactly two full chunks
        }
        await File.WriteAllBytesAsync(file, bytes);

        var target = Track(Dbms.MySql);
        var restore = await Run.CliAsync("restore", "--file", file, "--instance", instance, "--target", target, "--identity", keyFile, "--config", config);

        Assert.True(restore.ExitCode == 6, restore.ToString());
        Assert.Single(Cli.ErrorLines(restore));
        Assert.False(await MySqlTestDb.ExistsAsync(target), "a failed encrypted restore left its target behind");
        var verify = await Run.CliAsync("verify", "--file", file, "--identity", keyFile, "--config", config);
        Assert.True(verify.ExitCode == 6, verify.ToString());
    }

    [SkippableFact]
    public async Task Passphrase_encrypted_backup_round_trips_in_process()
    {
        await TestServers.RequireMySqlAsync();
        var (source, _) = await SourceAsync(Dbms.MySql);
        var dir = _scratch.TempDir("enc");
        var passphrase = "correct horse battery staple " + Guid.NewGuid();
        var encryption = new EncryptionSettings([], () => passphrase, []);
        var withEncryption = TestServers.Config(dir, TestServers.MySql()) with { Encryption = encryption };
        var operation = new BackupOperation(withEncryption, new LocalStorage(dir), TimeProvider.System, new TestBackupObserver());

        var report = await operation.RunAsync(new BackupRequest([TestServers.MySql()], source, Compression.Zstd, DryRun: false, Encrypt: true), CancellationToken.None);

        var result = Assert.Single(report.Results);
        Assert.True(result.Succeeded, result.Error);
        Assert.EndsWith(".sql.zst.age", result.Location, StringComparison.Ordinal);
        var copy = Track(Dbms.MySql);
        await new RestoreOperation(withEncryption, new TestRestoreObserver())
            .RunAsync(new RestoreRequest(result.Location!, TestServers.MySql(), copy, DryRun: false, Force: false, Keys: encryption.KeysFor(null)), CancellationToken.None);
        await AssertSameAsync(Dbms.MySql, source, copy);

        var wrong = new EncryptionSettings([], () => "not the passphrase", []);
        var error = await Assert.ThrowsAsync<AgeException>(() => new RestoreOperation(withEncryption, new TestRestoreObserver())
            .RunAsync(new RestoreRequest(result.Location!, TestServers.MySql(), Track(Dbms.MySql), DryRun: false, Force: false, Keys: wrong.KeysFor(null)), CancellationToken.None));
        Assert.Equal(Errors.ExitCode.DecryptionFailed, error.ExitCode);
    }

    private async Task<(string Source, string Instance)> SourceAsync(Dbms dbms, int rows = 3)
    {
        if (dbms == Dbms.MySql)
        {
            await TestServers.RequireMySqlAsync();
            var db = await _scratch.NewMySqlDatabaseAsync();
            await MySqlTestDb.ExecAsync(db, "CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(100))",
                $"INSERT INTO t SELECT seq, CONCAT('row ', seq, ' ', SHA2(seq, 256)) FROM seq_1_to_{rows}");
            return (db, "1");
        }
        await TestServers.RequirePostgresAsync();
        var pg = await _scratch.NewPostgresDatabaseAsync();
        await PgTestDb.ExecAsync(pg, "CREATE TABLE t (id int PRIMARY KEY, v text)",
            $"INSERT INTO t SELECT g, 'row ' || g || ' ' || md5(g::text) FROM generate_series(1, {rows}) g");
        return (pg, "2");
    }

    private string Track(Dbms dbms) => dbms == Dbms.MySql ? _scratch.MySqlName() : _scratch.PostgresName();

    private static async Task AssertSameAsync(Dbms dbms, string source, string copy)
    {
        if (dbms == Dbms.MySql)
        {
            DbFingerprint.AssertSame(await MySqlTestDb.FingerprintAsync(source), await MySqlTestDb.FingerprintAsync(copy), "decrypted copy");
        }
        else
        {
            DbFingerprint.AssertSame(await PgTestDb.FingerprintAsync(source), await PgTestDb.FingerprintAsync(copy), "decrypted copy");
        }
    }

    private static async Task<string> KeygenAsync(string dir, string name)
    {
        var path = Path.Combine(dir, name);
        var run = await AgeTool.RunAsync("age-keygen", ["-o", path]);
        Assert.True(run.ExitCode == 0, run.ToString());
        return path;
    }

    private static string PublicKey(string keyFile) => AgeIdentity.ReadKeyFile(keyFile)[0].Recipient.ToString()!;

    /// <summary>The CLI test config plus an encryption: section to the key's recipient.</summary>
    private static async Task<string> WriteEncryptedConfigAsync(string dir, string keyFile, string compression)
    {
        var path = await Cli.WriteConfigAsync(dir, Path.Combine(dir, "backups"), compression: compression);
        var yaml = await File.ReadAllTextAsync(path);
        await File.WriteAllTextAsync(path, yaml + $"encryption:\n  recipients: [\"{PublicKey(keyFile)}\"]\n");
        return path;
    }
}
