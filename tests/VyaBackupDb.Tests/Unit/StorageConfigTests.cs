using VyaBackupDb.Catalog;
using VyaBackupDb.Config;
using VyaBackupDb.Errors;
using VyaBackupDb.Operations;
using VyaBackupDb.Storage;
using VyaBackupDb.Storage.Local;

namespace VyaBackupDb.Tests.Unit;

/// <summary>The storage: section, instances' destinations, and how --file names a backup in a storage.</summary>
public sealed class StorageConfigTests
{
    private const string Path = "/etc/vya/config.yaml";
    private const string Fingerprint = "SHA256:T1xBiwSzij0MU+GuugxdpklHowP/H4tDAN5It89LR20";

    private const string Full = $"""
        backup_dir: /var/backups/vya
        storage:
          - name: offsite
            type: s3
            endpoint: http://127.0.0.1:19000
            region: eu-west-1
            bucket: backups
            prefix: nightly/db
            access_key_id_env: OFFSITE_KEY
            secret_access_key_file: secrets/offsite
            part_size_mb: 32
          - name: aws
            type: s3
            bucket: backups
            prefix: nightly/db/old
          - name: box
            type: sftp
            host: sftp.example
            port: 2222
            user: backup
            private_key_file: keys/id_ed25519
            private_key_passphrase_env: BOX_PASSPHRASE
            host_fingerprint: {Fingerprint}
            path: /srv/backups
          - name: nas
            type: local
            path: ../nas
        instances:
          - id: 1
            dbms: mysql
            user: vya
            storage: [offsite, local, box]
          - id: 2
            dbms: postgresql
            user: vya
        """;

    [Fact]
    public void Reads_every_storage_type_and_the_instances_destinations()
    {
        var config = ConfigLoader.Parse(Full, Path);

        var offsite = Assert.IsType<S3StorageConfig>(config.GetStorage("offsite"));
        Assert.Equal(("http://127.0.0.1:19000", "eu-west-1", "backups", "nightly/db/", true, 32 * 1024 * 1024),
            (offsite.Endpoint, offsite.Region, offsite.Bucket, offsite.Prefix, offsite.ForcePathStyle, offsite.PartSizeBytes));
        Assert.Equal("***", offsite.AccessKeyId.ToString());
        var aws = Assert.IsType<S3StorageConfig>(config.GetStorage("aws"));
        Assert.Equal((null, "us-east-1", false, S3StorageConfig.DefaultPartSizeBytes), (aws.Endpoint, aws.Region, aws.ForcePathStyle, aws.PartSizeBytes));
        var box = Assert.IsType<SftpStorageConfig>(config.GetStorage("box"));
        Assert.Equal(("sftp.example", 2222, "backup", "/etc/vya/keys/id_ed25519", Fingerprint, "/srv/backups"),
            (box.Host, box.Port, box.User, box.PrivateKeyFile, box.HostFingerprint, box.Path));
        Assert.Equal("/etc/nas", Assert.IsType<LocalStorageConfig>(config.GetStorage("nas")).Path);
        Assert.Equal("/var/backups/vya", Assert.IsType<LocalStorageConfig>(config.GetStorage("local")).Path);

        Assert.Equal(["offsite", "local", "box"], config.GetInstance(1).StorageNames);
        Assert.Equal(["local"], config.GetInstance(2).StorageNames);
    }

    [Fact]
    public void Secrets_come_from_the_named_variable_or_file_and_default_to_the_AWS_variables()
    {
        var dir = Directory.CreateTempSubdirectory("vya-unit-secrets-").FullName;
        try
        {
            File.WriteAllText(System.IO.Path.Combine(dir, "secret"), "from-the-file\n");
            var variable = "VYA_UNIT_KEY_" + Guid.NewGuid().ToString("N")[..8];
            Environment.SetEnvironmentVariable(variable, "from-the-env");
            var config = ConfigLoader.Parse($"""
                backup_dir: b
                storage:
                  - name: one
                    type: s3
                    bucket: x
                    access_key_id_env: {variable}
                    secret_access_key_file: secret
                  - name: two
                    type: s3
                    bucket: x
                """, System.IO.Path.Combine(dir, "config.yaml"));

            var one = (S3StorageConfig)config.GetStorage("one");
            Assert.Equal("from-the-env", one.AccessKeyId.Resolve());
            Assert.Equal("from-the-file", one.SecretAccessKey.Resolve());
            var two = (S3StorageConfig)config.GetStorage("two");
            if (Environment.GetEnvironmentVariable("AWS_ACCESS_KEY_ID") is null)
            {
                var error = Assert.Throws<ConfigException>(() => two.AccessKeyId.Resolve());
                Assert.Contains("AWS_ACCESS_KEY_ID", error.Message, StringComparison.Ordinal);
                Assert.Contains("config.yaml:8: storage[1].access_key_id_env (default)", error.Message, StringComparison.Ordinal);
            }
            Environment.SetEnvironmentVariable(variable, null);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Theory]
    [InlineData("storage:\n  - name: x\n    type: s3\n    bucket: b\n    bukket: c\n", "config.yaml:5: storage[0].bukket: unknown key")]
    [InlineData("storage:\n  - name: x\n    type: ftp\n", "config.yaml:3: storage[0].type: 'ftp' is not one of local, s3, sftp")]
    [InlineData("storage:\n  - type: s3\n    bucket: b\n", "storage[0].name: is required")]
    [InlineData("storage:\n  - name: local\n    type: local\n    path: /x\n", "storage[0].name: 'local' is reserved for backup_dir")]
    [InlineData("storage:\n  - name: a b\n    type: local\n    path: /x\n", "storage[0].name: 'a b' is not a storage name")]
    [InlineData("storage:\n  - name: x\n    type: local\n    path: /x\n  - name: x\n    type: local\n    path: /y\n", "storage[1].name: 'x' is used twice")]
    [InlineData("storage:\n  - name: x\n    type: s3\n", "storage[0].bucket: is required")]
    [InlineData("storage:\n  - name: x\n    type: s3\n    bucket: b\n    endpoint: ftp://h\n", "storage[0].endpoint: 'ftp://h' is not an http:// or https:// URL")]
    [InlineData("storage:\n  - name: x\n    type: s3\n    bucket: b\n    prefix: a/../b\n", "storage[0].prefix: 'a/../b' is not a folder")]
    [InlineData("storage:\n  - name: x\n    type: s3\n    bucket: b\n    part_size_mb: 4\n", "storage[0].part_size_mb: 4 is not between 5 (S3's smallest part) and 1024")]
    [InlineData("storage:\n  - name: x\n    type: s3\n    bucket: b\n    part_size_mb: 2048\n", "storage[0].part_size_mb: 2048 is not between 5 (S3's smallest part) and 1024")]
    [InlineData("storage:\n  - name: x\n    type: s3\n    bucket: b\n    access_key_id: k\n    access_key_id_env: K\n", "storage[0].access_key_id_env: give only one of")]
    [InlineData("storage:\n  - name: x\n    type: sftp\n    host: h\n    user: u\n    password: p\n", "storage[0].host_fingerprint: is required")]
    [InlineData("storage:\n  - name: x\n    type: sftp\n    host: h\n    user: u\n    password: p\n    host_fingerprint: MD5:aa\n", "storage[0].host_fingerprint: 'MD5:aa' is not a SHA256 fingerprint")]
    [InlineData($"storage:\n  - name: x\n    type: sftp\n    host: h\n    user: u\n    host_fingerprint: {Fingerprint}\n", "give password, password_env, password_file or private_key_file")]
    [InlineData("storage:\n  - name: x\n    type: local\n", "storage[0].path: is required")]
    [InlineData("storage: x\n", "config.yaml:1: storage: expected a list of destinations")]
    [InlineData("instances:\n  - id: 1\n    dbms: mysql\n    user: u\n    storage: [nowhere]\n", "config.yaml:5: instances[0].storage: 'nowhere' is not defined in the storage section (known: local)")]
    [InlineData("instances:\n  - id: 1\n    dbms: mysql\n    user: u\n    storage: [local, local]\n", "instances[0].storage: names a destination twice")]
    public void Storage_errors_name_the_file_line_and_key(string yaml, string expected)
    {
        var error = Assert.Throws<ConfigException>(() => ConfigLoader.Parse("backup_dir: /b\n" + yaml, "config.yaml"));
        Assert.Contains(expected, ShiftLines(error.Message), StringComparison.Ordinal);
    }

    /// <summary>The cases count lines without the backup_dir line the test puts first.</summary>
    private static string ShiftLines(string message)
    {
        var match = System.Text.RegularExpressions.Regex.Match(message, @"^config\.yaml:(\d+)");
        return match.Success ? $"config.yaml:{int.Parse(match.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture) - 1}" + message[match.Length..] : message;
    }

    [Fact]
    public void A_secret_is_never_in_an_error_message()
    {
        var error = Assert.Throws<ConfigException>(() => ConfigLoader.Parse(
            "backup_dir: /b\nstorage:\n  - name: x\n    type: s3\n    bucket: b\n    secret_access_key: Very-Secret-9\n    secret_access_key_file: f\n", Path));
        Assert.DoesNotContain("Very-Secret-9", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_location_names_a_storage_and_key_an_s3_url_or_an_sftp_url()
    {
        var config = ConfigLoader.Parse(Full, Path);
        using var storages = new StorageSet(config);

        var named = BackupLocations.Resolve("box:main/20260113_155440_mysql_db.sql.zst", config, storages);
        Assert.Same(storages.Get("box"), named.Storage);
        Assert.Equal("main/20260113_155440_mysql_db.sql.zst", named.Key);
        Assert.Equal("sftp://backup@sftp.example:2222/srv/backups/main/20260113_155440_mysql_db.sql.zst", named.Description);

        var local = BackupLocations.Resolve("local:main/x.sql", config, storages);
        Assert.Equal("/var/backups/vya/main/x.sql", local.Description);

        // The longest matching prefix wins: nightly/db/old/... is in 'aws', nightly/db/... in 'offsite'.
        var s3 = BackupLocations.Resolve("s3://backups/nightly/db/main/20260113_155440_mysql_db.sql.zst", config, storages);
        Assert.Same(storages.Get("offsite"), s3.Storage);
        Assert.Equal("main/20260113_155440_mysql_db.sql.zst", s3.Key);
        Assert.Equal("s3://backups/nightly/db/main/20260113_155440_mysql_db.sql.zst", s3.Description);
        var old = BackupLocations.Resolve("s3://backups/nightly/db/old/main/x.sql", config, storages);
        Assert.Same(storages.Get("aws"), old.Storage);
        Assert.Equal("main/x.sql", old.Key);

        // What Describe prints resolves back to the same place.
        var sftp = BackupLocations.Resolve(named.Description, config, storages);
        Assert.Same(named.Storage, sftp.Storage);
        Assert.Equal(named.Key, sftp.Key);
    }

    /// <summary>
    /// A folder relative to the login folder is printed with "~/" (tr100: `path: ./tr100` printed as the absolute
    /// sftp://HOST/./tr100/..., which --file then refused), written without "./" or doubled slashes, and what is printed
    /// resolves back; the form without "~/" that earlier versions printed still does.
    /// </summary>
    [Theory]
    [InlineData("./tr100/sub/", "sftp://backup@sftp.example:2222/~/tr100/sub/main/x.sql")]
    [InlineData("tr100//sub", "sftp://backup@sftp.example:2222/~/tr100/sub/main/x.sql")]
    [InlineData(".", "sftp://backup@sftp.example:2222/~/main/x.sql")]
    [InlineData("/srv//backups/./", "sftp://backup@sftp.example:2222/srv/backups/main/x.sql")]
    public void An_sftp_folder_is_printed_as_one_location_that_resolves_back(string folder, string expected)
    {
        var config = ConfigLoader.Parse(
            $"backup_dir: /b\nstorage:\n  - name: box\n    type: sftp\n    host: sftp.example\n    port: 2222\n    user: backup\n"
            + $"    password: pw\n    host_fingerprint: {Fingerprint}\n    path: \"{folder}\"\n", Path);
        using var storages = new StorageSet(config);

        Assert.Equal(expected, storages.Get("box").Describe("main/x.sql"));
        foreach (var printed in new[] { expected, expected.Replace("/~/", "/", StringComparison.Ordinal) })
        {
            var location = BackupLocations.Resolve(printed, config, storages);
            Assert.Same(storages.Get("box"), location.Storage);
            Assert.Equal("main/x.sql", location.Key);
        }
    }

    /// <summary>
    /// A database name with a space, a '%' or a '#' is %-encoded into its file name: the location backup and list print
    /// for it, in any destination, names exactly that file (never the file named by its decoded form).
    /// </summary>
    [Theory]
    [InlineData("box")]
    [InlineData("offsite")]
    public void What_describe_prints_for_an_encoded_name_resolves_to_exactly_that_key(string storage)
    {
        var config = ConfigLoader.Parse(Full, Path);
        using var storages = new StorageSet(config);
        foreach (var database in new[] { "tr12 b", "50%off", "a#b?c" })
        {
            var key = $"main/20260113_155440_mysql_{BackupName.Encode(database)}.sql.zst";
            var printed = storages.Get(storage).Describe(key);

            var location = BackupLocations.Resolve(printed, config, storages);

            Assert.Same(storages.Get(storage), location.Storage);
            Assert.Equal(key, location.Key);
            Assert.Equal(printed, location.Description);
        }
    }

    [Theory]
    [InlineData("s3://elsewhere/nightly/db/x.sql", "no S3 storage")]
    [InlineData("s3://backups/other/x.sql", "no S3 storage")]
    [InlineData("s3://backups", "is not an S3 location")]
    [InlineData("sftp://other.example/srv/backups/x.sql", "no SFTP storage")]
    [InlineData("sftp://sftp.example:2222/elsewhere/x.sql", "no SFTP storage")]
    [InlineData("box:../etc/passwd", "does not name a file")]
    [InlineData("/nonexistent/dir/20260113_155440_mysql_db.sql", "backup file not found: /nonexistent/dir/20260113_155440_mysql_db.sql")]
    [InlineData("unknown:thing", "backup file not found: unknown:thing")]
    [InlineData("", "no backup file named (--file is empty)")]
    [InlineData("sftp://backup:UiSecret1@sftp.example:2222/srv/backups/x.sql", "a --file location holding a password (sftp://USER:PASSWORD@...) is refused")]
    [InlineData("s3://AK:UiSecret1@backups/nightly/x.sql", "a --file location holding a password (s3://USER:PASSWORD@...) is refused")]
    [InlineData("http://u:UiSecret1@host/x.sql", "a --file location holding a password (http://USER:PASSWORD@...) is refused")]
    public void A_location_that_names_nothing_is_a_usage_error(string text, string expected)
    {
        var config = ConfigLoader.Parse(Full, Path);
        using var storages = new StorageSet(config);

        var error = Assert.Throws<UsageException>(() => BackupLocations.Resolve(text, config, storages));

        Assert.Contains(expected, error.Message, StringComparison.Ordinal);
        // A password typed into a location is never repeated (found by a tester: quoted whole on stderr and in the log file).
        Assert.DoesNotContain("UiSecret1", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_local_path_is_a_key_in_its_directory()
    {
        var dir = Directory.CreateTempSubdirectory("vya-unit-loc-").FullName;
        try
        {
            var file = System.IO.Path.Combine(dir, "20260113_155440_mysql_db.sql");
            File.WriteAllText(file, "x");

            var location = BackupLocations.Resolve(file, null, null);

            Assert.IsType<LocalStorage>(location.Storage);
            Assert.Equal("20260113_155440_mysql_db.sql", location.Key);
            Assert.Equal(file, location.Description);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
