using System.Text;
using VyaBackupDb.Config;
using VyaBackupDb.Config.Vault;
using VyaBackupDb.Errors;

namespace VyaBackupDb.Tests.Unit;

/// <summary>
/// The credential vault file (scrypt + AES-256-GCM, header authenticated) and its use from the
/// config. Cheap scrypt parameters keep these fast; the real default is checked once.
/// </summary>
[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
public sealed class VaultTests : IDisposable
{
    private static readonly ScryptParameters Fast = new(4, 1, 1);
    private const string Passphrase = "correct horse battery staple";
    private const string SecretPassword = "pw-Ünïcødé-🔑-\"quoted\"\\";

    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("vya-vault-test-");

    public void Dispose() => _dir.Delete(recursive: true);

    private string PathOf(string name) => Path.Combine(_dir.FullName, name);

    private static Dictionary<string, VaultEntry> SampleEntries() => new()
    {
        ["db1"] = new VaultEntry("backup", SecretPassword),
        ["pw-only"] = new VaultEntry(null, "only a password"),
    };

    private string WriteKeyFile(string passphrase = Passphrase)
    {
        var path = PathOf("vault.key");
        File.WriteAllText(path, passphrase + "\n");
        return path;
    }

    /// <summary>A vault file next to a config, written with cheap parameters; returns the config's path.</summary>
    private string WriteVaultAndConfig(string instances, string topLevel = "")
    {
        var vault = new CredentialVault(PathOf("vault.enc"), WriteKeyFile()) { Kdf = Fast };
        vault.Update(entries =>
        {
            foreach (var (name, entry) in SampleEntries())
            {
                entries[name] = entry;
            }
        });
        var config = PathOf("config.yaml");
        File.WriteAllText(config, $"backup_dir: b\nvault_key_file: vault.key\n{topLevel}instances:\n{instances}");
        File.SetUnixFileMode(config, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        return config;
    }

    [Fact]
    public void Round_trip_keeps_every_entry_exactly()
    {
        var file = VaultFile.Seal(SampleEntries(), Passphrase, Fast);

        var opened = VaultFile.Open(file, Passphrase, "v");

        Assert.Equal(SampleEntries(), opened);
        Assert.DoesNotContain("backup", Encoding.UTF8.GetString(file), StringComparison.Ordinal);
        Assert.StartsWith("VYAVAULT", Encoding.ASCII.GetString(file, 0, 8), StringComparison.Ordinal);
    }

    [Fact]
    public void Sealing_twice_gives_different_files()
    {
        Assert.NotEqual(VaultFile.Seal(SampleEntries(), Passphrase, Fast), VaultFile.Seal(SampleEntries(), Passphrase, Fast));
    }

    [Fact]
    public void Wrong_passphrase_is_a_vault_error_that_shows_no_secret()
    {
        var file = VaultFile.Seal(SampleEntries(), Passphrase, Fast);

        var error = Assert.Throws<VaultException>(() => VaultFile.Open(file, "Correct horse battery staple", "/x/vault.enc"));

        Assert.Equal(ExitCode.VaultError, error.ExitCode);
        Assert.Equal(7, (int)error.ExitCode);
        Assert.Contains("/x/vault.enc", error.Message, StringComparison.Ordinal);
        Assert.Contains("wrong passphrase", error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', error.Message);
        Assert.DoesNotContain("horse", error.Message, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain(SecretPassword, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Any_changed_byte_is_a_vault_error()
    {
        var file = VaultFile.Seal(SampleEntries(), Passphrase, Fast);
        foreach (var bit in new byte[] { 0x01, 0x80 })
        {
            for (var i = 0; i < file.Length; i++)
            {
                var changed = (byte[])file.Clone();
                changed[i] ^= bit;
                var error = Record.Exception(() => VaultFile.Open(changed, Passphrase, "v"));
                Assert.True(error is VaultException, $"byte {i} ^ 0x{bit:x2}: {error?.GetType().Name ?? "opened"}");
            }
        }
    }

    [Fact]
    public void Any_truncation_is_a_vault_error()
    {
        var file = VaultFile.Seal(SampleEntries(), Passphrase, Fast);
        for (var length = 0; length < file.Length; length++)
        {
            var error = Record.Exception(() => VaultFile.Open(file.AsSpan(0, length), Passphrase, "v"));
            Assert.True(error is VaultException, $"cut to {length} bytes: {error?.GetType().Name ?? "opened"}");
        }
        Assert.Contains("truncated", Assert.Throws<VaultException>(() => VaultFile.Open(file.AsSpan(0, 30), Passphrase, "v")).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Another_file_is_not_taken_for_a_vault()
    {
        var error = Assert.Throws<VaultException>(() => VaultFile.Open("backup_dir: /b\n"u8, Passphrase, "config.yaml"));
        Assert.Contains("not a vya-backupdb vault", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Written_vault_is_mode_0600_with_no_temp_file_left_even_over_a_readable_file()
    {
        var path = PathOf("vault.enc");
        File.WriteAllText(path, "old");
        File.SetUnixFileMode(path, (UnixFileMode)Convert.ToInt32("644", 8));
        File.Delete(path);
        var vault = new CredentialVault(path, WriteKeyFile()) { Kdf = Fast };

        vault.Update(entries => entries["a"] = new VaultEntry("u", "p"));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(path));

        File.SetUnixFileMode(path, (UnixFileMode)Convert.ToInt32("644", 8));
        new CredentialVault(path, WriteKeyFile()) { Kdf = Fast }.Update(entries => entries["b"] = new VaultEntry(null, "q"));

        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(path));
        Assert.Equal(["a", "b"], new CredentialVault(path, WriteKeyFile()).Read().Keys.Order());
        // No temp file; the lock file that changes hold stays, empty and private.
        Assert.Equal(["vault.enc", "vault.enc.lock", "vault.key"], _dir.GetFiles().Select(f => f.Name).Order());
        Assert.Equal(0, new FileInfo(path + ".lock").Length);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(path + ".lock"));
    }

    [Fact]
    public void Default_parameters_are_scrypt_2_17_8_1_and_stored_in_the_file()
    {
        var path = PathOf("vault.enc");
        new CredentialVault(path, WriteKeyFile()).Update(entries => entries["a"] = new VaultEntry("u", "p"));

        var header = File.ReadAllBytes(path);

        Assert.Equal("scrypt", Encoding.ASCII.GetString(header, 10, 6));
        Assert.Equal(17, header[16]);
        Assert.Equal(new byte[] { 0, 0, 0, 8, 0, 0, 0, 1 }, header[17..25]);
        Assert.Equal("p", new CredentialVault(path, WriteKeyFile()).Find("a")?.Password);
    }

    [Fact]
    public void Without_a_passphrase_source_the_error_says_where_one_can_come_from()
    {
        Skip.If(Environment.GetEnvironmentVariable(CredentialVault.KeyEnvVar) is { Length: > 0 });
        new CredentialVault(PathOf("vault.enc"), WriteKeyFile()) { Kdf = Fast }.Update(entries => entries["a"] = new VaultEntry("u", "p"));

        var noPrompt = Assert.Throws<VaultException>(() => new CredentialVault(PathOf("vault.enc")).Read());
        var noTerminal = Assert.Throws<VaultException>(() => new CredentialVault(PathOf("vault.enc"), prompt: _ => null).Read());

        Assert.Contains(CredentialVault.KeyEnvVar, noPrompt.Message, StringComparison.Ordinal);
        Assert.Contains("vault_key_file", noTerminal.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void The_passphrase_is_asked_for_once_per_run_also_when_it_is_wrong()
    {
        Skip.If(Environment.GetEnvironmentVariable(CredentialVault.KeyEnvVar) is { Length: > 0 });
        var config = WriteVaultAndConfig("""
              - {id: 1, dbms: mysql, credentials: "vault:db1"}
              - {id: 2, dbms: mysql, user: u, password: "vault:pw-only"}

            """);
        File.Delete(PathOf("vault.key"));
        File.WriteAllText(config, File.ReadAllText(config).Replace("vault_key_file: vault.key\n", "", StringComparison.Ordinal));
        var asked = 0;

        var right = ConfigLoader.Load(config, _ => { asked++; return Passphrase; });
        Assert.Equal(("backup", "only a password"), (right.GetInstance(1).User, right.GetInstance(2).Password.Resolve()));
        Assert.Equal(1, asked);

        var wrong = ConfigLoader.Load(config, _ => { asked++; return "nope"; });
        Assert.Throws<VaultException>(() => wrong.GetInstance(1).Password.Resolve());
        Assert.Throws<VaultException>(() => wrong.GetInstance(2).Password.Resolve());
        Assert.Equal(2, asked);
    }

    [Fact]
    public void Config_takes_user_and_password_or_only_the_password_from_the_vault()
    {
        var config = ConfigLoader.Load(WriteVaultAndConfig("""
              - {id: 1, dbms: mysql, credentials: "vault:db1"}
              - {id: 2, dbms: postgresql, user: pg_user, password: "vault:db1"}

            """));

        Assert.Equal(("backup", SecretPassword), (config.GetInstance(1).User, config.GetInstance(1).Password.Resolve()));
        Assert.Equal(("pg_user", SecretPassword), (config.GetInstance(2).User, config.GetInstance(2).Password.Resolve()));
        Assert.False(config.GetInstance(2).Password.IsLiteral);
        Assert.Equal(PathOf("vault.enc"), config.Vault.Path);
        Assert.Empty(config.Warnings);
    }

    [Fact]
    public void Vault_file_key_is_relative_to_the_config()
    {
        var configPath = WriteVaultAndConfig("  - {id: 1, dbms: mysql, credentials: \"vault:db1\"}\n", "vault_file: sub/../vault.enc\n");
        var config = ConfigLoader.Load(configPath);
        Assert.Equal(PathOf("vault.enc"), config.Vault.Path);
        Assert.Equal("backup", config.GetInstance(1).User);
    }

    [Fact]
    public void Vault_problems_surface_only_when_the_instance_is_used_and_name_file_line_key_and_entry()
    {
        var configPath = WriteVaultAndConfig("""
              - {id: 1, dbms: mysql, user: u, password: x}
              - id: 2
                dbms: mysql
                credentials: vault:missing
              - id: 3
                dbms: mysql
                credentials: vault:pw-only

            """);
        File.SetUnixFileMode(configPath, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        var config = ConfigLoader.Load(configPath);

        Assert.Equal("x", config.GetInstance(1).Password.Resolve());
        var missing = Assert.Throws<ConfigException>(() => config.GetInstance(2).Password.Resolve());
        Assert.StartsWith($"{configPath}:7: instances[1].credentials: there is no entry 'missing' in the vault {PathOf("vault.enc")}", missing.Message, StringComparison.Ordinal);
        var noUser = Assert.Throws<ConfigException>(() => config.GetInstance(3).User);
        Assert.StartsWith($"{configPath}:10: instances[2].credentials: vault entry 'pw-only' has no user", noUser.Message, StringComparison.Ordinal);

        File.WriteAllText(PathOf("vault.key"), "wrong passphrase\n");
        var locked = ConfigLoader.Load(configPath);
        var wrong = Assert.Throws<VaultException>(() => locked.GetInstance(2).User);
        Assert.StartsWith($"{configPath}:7: instances[1].credentials: vault:missing: cannot open vault", wrong.Message, StringComparison.Ordinal);
        Assert.Equal("x", locked.GetInstance(1).Password.Resolve());

        File.Delete(PathOf("vault.enc"));
        var noVault = Assert.Throws<VaultException>(() => ConfigLoader.Load(configPath).GetInstance(3).Password.Resolve());
        Assert.Contains("there is no vault at", noVault.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("  - {id: 1, dbms: mysql, user: u, credentials: \"vault:a\"}\n", "instances[0].user: give either credentials or user and password")]
    [InlineData("  - {id: 1, dbms: mysql, credentials: \"vault:a\", password_env: X}\n", "instances[0].password_env: give either credentials")]
    [InlineData("  - {id: 1, dbms: mysql, credentials: plain}\n", "instances[0].credentials: expected vault:NAME")]
    [InlineData("  - {id: 1, dbms: mysql, credentials: \"vault:\"}\n", "instances[0].credentials: vault:NAME needs an entry name")]
    [InlineData("  - {id: 1, dbms: mysql, user: u, password: \"vault:a b\"}\n", "instances[0].password: vault:NAME needs an entry name")]
    public void Bad_vault_references_are_config_errors(string instances, string expected)
    {
        var error = Assert.Throws<ConfigException>(() => ConfigLoader.Parse($"backup_dir: /b\ninstances:\n{instances}", "/c.yaml"));
        Assert.StartsWith("/c.yaml:3: ", error.Message, StringComparison.Ordinal);
        Assert.Contains(expected, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void World_readable_config_with_a_plain_password_gets_a_warning_without_the_password()
    {
        var path = PathOf("config.yaml");
        File.WriteAllText(path, "backup_dir: b\ninstances:\n  - {id: 4, dbms: mysql, user: u, password: \"pw-in-plain-text\"}\n"
            + "  - {id: 5, dbms: mysql, user: u, password: \"vault:x\"}\n");

        File.SetUnixFileMode(path, (UnixFileMode)Convert.ToInt32("644", 8));
        var warning = Assert.Single(ConfigLoader.Load(path).Warnings);
        Assert.Contains("mode 644", warning, StringComparison.Ordinal);
        Assert.Contains("instance 4", warning, StringComparison.Ordinal);
        Assert.DoesNotContain("pw-in-plain-text", warning, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', warning);

        File.SetUnixFileMode(path, (UnixFileMode)Convert.ToInt32("640", 8));
        Assert.Empty(ConfigLoader.Load(path).Warnings);

        File.WriteAllText(path, "backup_dir: b\ninstances:\n  - {id: 5, dbms: mysql, user: u, password: \"vault:x\"}\n");
        File.SetUnixFileMode(path, (UnixFileMode)Convert.ToInt32("644", 8));
        Assert.Empty(ConfigLoader.Load(path).Warnings);
    }
}
