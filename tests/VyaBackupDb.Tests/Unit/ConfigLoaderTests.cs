using VyaBackupDb.Config;
using VyaBackupDb.Errors;
using VyaBackupDb.Pipeline;

namespace VyaBackupDb.Tests.Unit;

public sealed class ConfigLoaderTests
{
    private const string Path = "/etc/vya/config.yaml";

    [Fact]
    public void Reads_the_documented_shape()
    {
        var config = ConfigLoader.Parse("""
            backup_dir: /var/backups/vya-backupdb
            compression: gzip
            timeout_seconds: 120
            instances:
              - id: 1
                name: main-mysql
                dbms: mysql
                host: db1.example
                port: 3307
                user: vya
                password: secret
                enabled: false
                include: ["dns_*", "web"]
                exclude: ["tmp_*"]
              - id: 2
                dbms: postgresql
                user: postgres
                password_env: PG_PW
            """, Path);

        Assert.Equal("/var/backups/vya-backupdb", config.BackupDir);
        Assert.Equal("postgres", config.GetInstance(2).MaintenanceDatabase);
        Assert.Equal(Compression.Gzip, config.Compression);
        Assert.Equal(TimeSpan.FromSeconds(120), config.Timeout);
        Assert.Equal(TimeSpan.FromSeconds(30), config.ConnectTimeout);
        var mysql = config.GetInstance(1);
        Assert.Equal(("main-mysql", Dbms.MySql, "db1.example", 3307, "vya", false),
            (mysql.Name, mysql.Dbms, mysql.Host, mysql.Port, mysql.User, mysql.Enabled));
        Assert.Equal("secret", mysql.Password.Resolve());
        Assert.Equal(["dns_*", "web"], mysql.Include);
        Assert.Equal(["tmp_*"], mysql.Exclude);
        var pg = config.GetInstance(2);
        Assert.Equal(("postgresql-2", 5432, "127.0.0.1", true), (pg.Name, pg.Port, pg.Host, pg.Enabled));
        Assert.Equal(["*"], pg.Include);
    }

    [Fact]
    public void Globals_are_backed_up_by_default_without_passwords_and_can_be_turned_off()
    {
        var config = ConfigLoader.Parse("""
            backup_dir: /b
            instances:
              - id: 1
                dbms: mysql
                user: vya
              - id: 2
                dbms: postgresql
                user: vya
                globals: false
              - id: 3
                dbms: postgresql
                user: vya
                globals_passwords: true
                globals_tablespaces: true
            """, Path);
        Assert.Equal((true, false, false), (config.GetInstance(1).Globals, config.GetInstance(1).GlobalsPasswords, config.GetInstance(1).GlobalsTablespaces));
        Assert.False(config.GetInstance(2).Globals);
        Assert.Equal((true, true, true), (config.GetInstance(3).Globals, config.GetInstance(3).GlobalsPasswords, config.GetInstance(3).GlobalsTablespaces));
        Assert.Equal((false, false), (config.GetInstance(2).TrustBackups, config.GetInstance(3).TrustBackups));
        Assert.True(ConfigLoader.Parse("backup_dir: /b\ninstances:\n  - {id: 1, dbms: postgresql, user: u, trust_backups: true}\n", Path)
            .GetInstance(1).TrustBackups);
        var error = Assert.Throws<ConfigException>(() => ConfigLoader.Parse(
            "backup_dir: /b\ninstances:\n  - id: 1\n    dbms: mysql\n    user: vya\n    globals_tablespaces: true\n", Path));
        Assert.Contains("globals_tablespaces", error.Message, StringComparison.Ordinal);
    }

    /// <summary>A local destination that is a link to backup_dir is the same place (tr102: every backup failed as "locked" by itself).</summary>
    [Fact]
    public void A_destination_linked_to_backup_dir_is_the_same_place()
    {
        var dir = Directory.CreateTempSubdirectory("vya-place-").FullName;
        try
        {
            File.CreateSymbolicLink(System.IO.Path.Combine(dir, "link"), dir);
            var error = Assert.Throws<ConfigException>(() => ConfigLoader.Parse(
                $"backup_dir: {dir}\nstorage: [{{name: nas, type: local, path: {dir}/link}}]\ninstances:\n  - {{id: 1, dbms: mysql, user: u, storage: [local, nas]}}\n", Path));
            Assert.Contains("'local' and 'nas' are the same place", error.Message, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void Defaults_to_zstd_and_one_hour()
    {
        var config = ConfigLoader.Parse("backup_dir: backups\n", Path);
        Assert.Equal(Compression.Zstd, config.Compression);
        Assert.Equal(TimeSpan.FromHours(1), config.Timeout);
        Assert.Equal("/etc/vya/backups", config.BackupDir); // relative to the config file
    }

    [Fact]
    public void Accepts_the_old_tools_filter_and_ignore_keys()
    {
        var config = ConfigLoader.Parse("""
            backup_dir: /b
            instances:
              - {id: 3, dbms: mysql, user: u, filter: ["a*"], ignore: ["ab"]}
            """, Path);
        Assert.Equal(["a*"], config.GetInstance(3).Include);
        Assert.Equal(["ab"], config.GetInstance(3).Exclude);
    }

    [Theory]
    [InlineData("backup_dir: /b\ncompression: lz4\n", ":2: compression: 'lz4' is not one of")]
    [InlineData("backup_dir: /b\ninstances:\n  - id: 1\n    dbms: oracle\n    user: u\n", ":4: instances[0].dbms: 'oracle' is not one of")]
    [InlineData("backup_dir: /b\ninstances:\n  - id: 1\n    dbms: mysql\n    user: u\n    pasword: x\n", ":6: instances[0].pasword: unknown key")]
    [InlineData("backup_dir: /b\ninstances:\n  - id: 1\n    dbms: mysql\n    user: u\n    port: http\n", ":6: instances[0].port: 'http' is not a whole number")]
    [InlineData("backup_dir: /b\ninstances:\n  - id: 1\n    dbms: mysql\n    user: u\n    lock_wait_seconds: 99999999999\n",
        ":6: instances[0].lock_wait_seconds: '99999999999' is too large (at most 2147483647)")]
    [InlineData("backup_dir: /b\ninstances:\n  - id: 1\n    dbms: mysql\n", "instances[0].user: is required")]
    [InlineData("backup_dir: /b\ninstances:\n  - {id: 1, dbms: mysql, user: u}\n  - {id: 1, dbms: mysql, user: v}\n", ":4: instances[1].id: id 1 is used twice")]
    [InlineData("backup_dir: /b\ninstances:\n  - {id: 1, dbms: mysql, user: u, password: a, password_env: B}\n", "give only one of password")]
    [InlineData("compression: zstd\n", "backup_dir: is required")]
    [InlineData("backup_dir: [unclosed\n", "invalid YAML")]
    [InlineData("backup_dir: /b\ninstances:\n  - id: 1\n    dbms: mysql\n    user: u\n    password: *Sup3rS3cretPw\n",
        ":6: invalid YAML: a value starting with '*' is read as an alias to an anchor that does not exist: quote the value")]
    [InlineData("backup_dir: /b\ntimeout_seconds: 0\n", ":2: timeout_seconds: must be a positive")]
    [InlineData("backup_dir: /b\ncompression_level: 20\n", ":2: compression_level: 20 is outside zstd's levels 1-19")]
    [InlineData("backup_dir: /b\ncompression: gzip\ncompression_level: 12\n", ":3: compression_level: 12 is outside gzip's levels 1-9")]
    [InlineData("backup_dir: /b\ncompression: zip\ncompression_level: 5\n", ":3: compression_level: is for gzip and zstd; zip has no level")]
    [InlineData("backup_dir: /b\ninstances:\n  - {id: 1, dbms: postgresql, user: u, load_data_local: false}\n", ":3: instances[0].load_data_local: applies to mysql instances only")]
    [InlineData("backup_dir: /b\ninstances:\n  - {id: 1, dbms: mysql, user: u, trust_backups: true}\n", ":3: instances[0].trust_backups: applies to postgresql instances only")]
    [InlineData("backup_dir: /b\ninstances:\n  - {id: 1, dbms: mysql, user: u, maintenance_database: x}\n", ":3: instances[0].maintenance_database: applies to postgresql instances only")]
    [InlineData("backup_dir: /b\ninstances:\n  - id: 1\n    dbms: mysql\n    user: u\n    include: [a]\n    filter: [b]\n", ":7: instances[0].filter: is the old name of include: give one of them")]
    [InlineData("backup_dir: /b\nconnect_timeout_seconds: -1\n", ":2: connect_timeout_seconds: must be a positive")]
    [InlineData("backup_dir: /b\nencryption:\n  recipients: [\"\"]\n", ":3: encryption.recipients: an empty entry")]
    [InlineData("backup_dir: /b\nencryption:\n  recipients: [age1notakey]\n", ":3: encryption.recipients: 'age1notakey' is not an age public key")]
    [InlineData("backup_dir: /b\nencryption:\n  recipients: [age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p]\n  passphrase_env: P\n", ":4: encryption.passphrase_env: give recipients or a passphrase, not both")]
    [InlineData("backup_dir: /b\nencryption:\n  recipient: x\n", ":3: encryption.recipient: unknown key")]
    [InlineData("backup_dir: /b\nstorage: [{name: nas, type: local, path: /b/}]\ninstances:\n  - {id: 1, dbms: mysql, user: u, storage: [local, nas]}\n",
        ":4: instances[0].storage: 'local' and 'nas' are the same place: name it once")]
    [InlineData("backup_dir: /b\nstorage:\n  - {name: a, type: sftp, host: h, user: u, password: p, host_fingerprint: 'SHA256:T1xBiwSzij0MU+GuugxdpklHowP/H4tDAN5It89LR20', path: './d'}\n"
        + "  - {name: b, type: sftp, host: H, user: u, password: p, host_fingerprint: 'SHA256:T1xBiwSzij0MU+GuugxdpklHowP/H4tDAN5It89LR20', path: 'd/e/..'}\n"
        + "instances:\n  - {id: 1, dbms: mysql, user: u, storage: [a, b]}\n", ":6: instances[0].storage: 'a' and 'b' are the same place")]
    [InlineData("backup_dir: /b\nstorage:\n  - {name: a, type: s3, endpoint: 'http://h:1', bucket: k, prefix: p, access_key_id: x, secret_access_key: y}\n"
        + "  - {name: b, type: s3, endpoint: 'http://H:1/', bucket: k, prefix: p/, access_key_id: x, secret_access_key: y}\n"
        + "instances:\n  - {id: 1, dbms: mysql, user: u, storage: [a, b]}\n", ":6: instances[0].storage: 'a' and 'b' are the same place")]
    [InlineData("backup_dir: /b\ninstances:\n  - {id: 1, dbms: mysql, user: u}\n---\ninstances:\n  - {id: 2, dbms: mysql, user: v}\n", ":5: a second YAML document")]
    [InlineData("backup_dir: /b\ninstances:\n  - id: 1\n    dbms: mysql\n    user: u\n    encrypt: true\n", ":6: instances[0].encrypt: is true, but the config has no encryption:")]
    [InlineData("backup_dir: /b\nencryption:\n  identity_files: [k]\ninstances:\n  - {id: 1, dbms: files, paths: [/x], encrypt: true}\n", ":5: instances[0].encrypt: is true")]
    public void Errors_name_the_file_line_and_key(string yaml, string expected)
    {
        var error = Assert.Throws<ConfigException>(() => ConfigLoader.Parse(yaml, Path));
        Assert.StartsWith(Path + ":", error.Message, StringComparison.Ordinal);
        Assert.Contains(expected, error.Message, StringComparison.Ordinal);
        Assert.Equal(ExitCode.UsageOrConfig, error.ExitCode);
        Assert.DoesNotContain('\n', error.Message);
        Assert.DoesNotContain("Sup3rS3cretPw", error.Message, StringComparison.Ordinal);
    }

    // One folder per instance name: two instances in one folder would list, and prune, each other's backups.
    [Theory]
    [InlineData("  - {id: 1, name: web, dbms: mysql, user: u}\n  - {id: 2, name: web, dbms: postgresql, user: u}\n",
        ":4: instances[1].name: 'web' is also instance 1's name; each instance needs a name (its backup folder) of its own")]
    [InlineData("  - {id: 1, name: mysql-2, dbms: mysql, user: u}\n  - {id: 2, dbms: mysql, user: u}\n",
        ":4: instances[1].name: 'mysql-2' (the default name of id 2) is also instance 1's name")]
    [InlineData("  - {id: 1, name: Web, dbms: mysql, user: u}\n  - {id: 2, name: web, dbms: mysql, user: u}\n",
        ":4: instances[1].name: 'web' differs only in case from instance 1's name 'Web'")]
    [InlineData("  - {id: 1, name: files-3, dbms: mysql, user: u}\n  - {id: 3, dbms: files, paths: [/etc]}\n",
        ":4: instances[1].name: 'files-3' (the default name of id 3) is also instance 1's name")]
    public void Two_instances_cannot_share_a_name(string instances, string expected)
    {
        var error = Assert.Throws<ConfigException>(() => ConfigLoader.Parse("backup_dir: /b\ninstances:\n" + instances, Path));
        Assert.Contains(expected, error.Message, StringComparison.Ordinal);
        Assert.Equal(ExitCode.UsageOrConfig, error.ExitCode);
    }

    [Fact]
    public void A_missing_password_variable_is_reported_when_used_and_never_shows_a_value()
    {
        var config = ConfigLoader.Parse("""
            backup_dir: /b
            instances:
              - id: 1
                dbms: mysql
                user: u
                password_env: VYA_TEST_SURELY_UNSET_VARIABLE
            """, Path);
        var error = Assert.Throws<ConfigException>(() => config.GetInstance(1).Password.Resolve());
        Assert.Equal($"{Path}:6: instances[0].password_env: environment variable VYA_TEST_SURELY_UNSET_VARIABLE is not set", error.Message);
    }

    [Fact]
    public void Password_file_is_read_without_its_trailing_newline()
    {
        var dir = Directory.CreateTempSubdirectory();
        try
        {
            File.WriteAllText(System.IO.Path.Combine(dir.FullName, "pw"), "s3cret\n");
            File.WriteAllText(System.IO.Path.Combine(dir.FullName, "config.yaml"),
                "backup_dir: b\ninstances:\n  - {id: 1, dbms: postgresql, user: u, password_file: pw}\n");
            var config = ConfigLoader.Load(System.IO.Path.Combine(dir.FullName, "config.yaml"));
            Assert.Equal("s3cret", config.GetInstance(1).Password.Resolve());
            Assert.Equal("***", config.GetInstance(1).Password.ToString());
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    [Fact]
    public void Config_path_comes_from_the_option_then_the_environment_then_the_working_directory()
    {
        Assert.Equal("/x.yaml", ConfigLoader.ResolvePath("/x.yaml"));
        var saved = Environment.GetEnvironmentVariable(ConfigLoader.EnvVar);
        try
        {
            Environment.SetEnvironmentVariable(ConfigLoader.EnvVar, "/from-env.yaml");
            Assert.Equal("/from-env.yaml", ConfigLoader.ResolvePath(null));
            Environment.SetEnvironmentVariable(ConfigLoader.EnvVar, null);
            Assert.Equal("config.yaml", ConfigLoader.ResolvePath(null));
        }
        finally
        {
            Environment.SetEnvironmentVariable(ConfigLoader.EnvVar, saved);
        }
    }

    [Fact]
    public void Encryption_section_and_per_instance_encrypt()
    {
        var config = ConfigLoader.Parse("""
            backup_dir: /b
            encryption:
              recipients: ["age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p"]
              identity_files: [keys/backup.txt]
            instances:
              - {id: 1, dbms: mysql, user: u, encrypt: true}
              - {id: 2, dbms: mysql, user: u}
            """, Path);
        Assert.True(config.Encryption.CanEncrypt);
        Assert.Equal("age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p", config.Encryption.Recipients.Single().ToString());
        Assert.Equal(["/etc/vya/keys/backup.txt"], config.Encryption.IdentityFiles);
        Assert.True(config.GetInstance(1).Encrypt);
        Assert.False(config.GetInstance(2).Encrypt);
        Assert.False(ConfigLoader.Parse("backup_dir: /b\n", Path).Encryption.CanEncrypt);
    }

    [Fact]
    public void Unknown_instance_is_a_usage_error()
    {
        var config = ConfigLoader.Parse("backup_dir: /b\n", Path);
        Assert.Equal(ExitCode.UsageOrConfig, Assert.Throws<UsageException>(() => config.GetInstance(9)).ExitCode);
    }

    [Fact]
    public void Reads_the_definer_mode_of_mysql_instances()
    {
        var config = ConfigLoader.Parse("""
            backup_dir: /b
            instances:
              - {id: 1, dbms: mysql, user: u, definer: strip}
              - {id: 2, dbms: mysql, user: u, definer: current-user}
              - {id: 3, dbms: mysql, user: u}
            """, Path);
        Assert.Equal(
            [Engines.MySql.DefinerMode.Strip, Engines.MySql.DefinerMode.CurrentUser, Engines.MySql.DefinerMode.Keep],
            [config.GetInstance(1).Definer, config.GetInstance(2).Definer, config.GetInstance(3).Definer]);
    }

    [Theory]
    [InlineData("backup_dir: /b\ninstances:\n  - id: 1\n    dbms: mysql\n    user: u\n    definer: root\n",
        ":6: instances[0].definer: 'root' is not one of keep, strip, current-user")]
    [InlineData("backup_dir: /b\ninstances:\n  - id: 1\n    dbms: postgresql\n    user: u\n    definer: strip\n",
        ":6: instances[0].definer: applies to mysql instances only")]
    public void Rejects_a_bad_definer_mode_naming_the_line(string yaml, string expected)
    {
        var error = Assert.Throws<ConfigException>(() => ConfigLoader.Parse(yaml, Path));
        Assert.Equal(Path + expected, error.Message);
    }

    [Fact]
    public void Reads_the_engine_and_jobs_of_database_instances()
    {
        var config = ConfigLoader.Parse("""
            backup_dir: /b
            instances:
              - {id: 1, dbms: mysql, user: u, engine: parallel, jobs: 4, lock_wait_seconds: 600}
              - {id: 2, dbms: postgresql, user: u}
              - {id: 3, dbms: postgresql, user: u, lock_wait_seconds: 5}
            """, Path);
        Assert.Equal(5, config.GetInstance(3).LockWaitSeconds);
        Assert.Equal((BackupEngine.Parallel, 4, 600), (config.GetInstance(1).Engine, config.GetInstance(1).Jobs, config.GetInstance(1).LockWaitSeconds));
        Assert.Equal((BackupEngine.Dump, (int?)null, 60), (config.GetInstance(2).Engine, config.GetInstance(2).Jobs, config.GetInstance(2).LockWaitSeconds));
    }

    [Theory]
    [InlineData("backup_dir: /b\ninstances:\n  - id: 1\n    dbms: mysql\n    user: u\n    engine: mydumper\n",
        ":6: instances[0].engine: 'mydumper' is not one of dump, parallel")]
    [InlineData("backup_dir: /b\ninstances:\n  - id: 1\n    dbms: postgresql\n    user: u\n    jobs: 0\n",
        ":6: instances[0].jobs: must be between 1 and 64")]
    [InlineData("backup_dir: /b\ninstances:\n  - id: 1\n    dbms: mysql\n    user: u\n    lock_wait_seconds: 0\n",
        ":6: instances[0].lock_wait_seconds: must be between 1 and 86400 seconds")]
    public void Rejects_a_bad_engine_or_jobs_naming_the_line(string yaml, string expected)
    {
        var error = Assert.Throws<ConfigException>(() => ConfigLoader.Parse(yaml, Path));
        Assert.Equal(Path + expected, error.Message);
    }
}
