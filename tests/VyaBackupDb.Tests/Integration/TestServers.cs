using System.Globalization;
using System.Net.Sockets;
using MySqlConnector;
using Npgsql;
using VyaBackupDb.Config;

namespace VyaBackupDb.Tests.Integration;

/// <summary>
/// The real MariaDB and PostgreSQL servers the integration tests run against (started by scripts/).
/// Reachability is checked once per run: a test skips when its server is missing, but fails when
/// CI=true, so a CI run can never pass by skipping everything.
/// </summary>
public static class TestServers
{
    public const int MySqlInstanceId = 1;
    public const int PostgresInstanceId = 2;

    public static string MySqlHost => Env("VYA_TEST_MYSQL_HOST", "127.0.0.1");

    public static int MySqlPort => int.Parse(Env("VYA_TEST_MYSQL_PORT", "13306"), CultureInfo.InvariantCulture);

    public static string MySqlUser => Env("VYA_TEST_MYSQL_USER", "vya_test");

    public static string MySqlPassword => Env("VYA_TEST_MYSQL_PASSWORD", "vya-test-pw");

    public static string PgHost => Env("VYA_TEST_PG_HOST", "127.0.0.1");

    public static int PgPort => int.Parse(Env("VYA_TEST_PG_PORT", "15432"), CultureInfo.InvariantCulture);

    public static string PgUser => Env("VYA_TEST_PG_USER", "vya_test");

    public static string PgPassword => Env("VYA_TEST_PG_PASSWORD", "vya-test-pw");

    /// <summary>The second, fresh MariaDB (same host, user and password): the "new machine" of the whole-server restore tests.</summary>
    public static int MySql2Port => int.Parse(Env("VYA_TEST_MYSQL2_PORT", "13307"), CultureInfo.InvariantCulture);

    /// <summary>The second, fresh PostgreSQL (same host, user and password).</summary>
    public static int Pg2Port => int.Parse(Env("VYA_TEST_PG2_PORT", "15433"), CultureInfo.InvariantCulture);

    public static bool IsCi => string.Equals(Environment.GetEnvironmentVariable("CI"), "true", StringComparison.OrdinalIgnoreCase);

    public static string ServersDir => Env("VYA_SERVERS_DIR", "/tmp/vya-backupdb-servers");

    public static int SftpPort => int.Parse(Env("VYA_TEST_SFTP_PORT", "12222"), CultureInfo.InvariantCulture);

    public static string SftpUser => Env("VYA_TEST_SFTP_USER", "vya_sftp");

    public static string SftpPassword => Env("VYA_TEST_SFTP_PASSWORD", "vya-sftp-pw");

    /// <summary>The private key scripts/servers authorized for the SFTP user.</summary>
    public static string SftpKeyFile => Path.Combine(ServersDir, "sftp", "client_ed25519");

    /// <summary>The SFTP user's home (its login directory) as seen from this machine.</summary>
    public static string SftpHome => Path.Combine(ServersDir, "sftp", "home");

    /// <summary>The test sshd's host key fingerprint, as scripts/servers wrote it (ssh-keygen -lf).</summary>
    public static string SftpFingerprint => File.ReadAllText(Path.Combine(ServersDir, "sftp", "host_fingerprint")).Trim();

    public static int S3Port => int.Parse(Env("VYA_TEST_S3_PORT", "17480"), CultureInfo.InvariantCulture);

    public static string S3Bucket => Env("VYA_TEST_S3_BUCKET", "vya-test");

    public static string S3Endpoint => $"http://127.0.0.1:{S3Port}";

    /// <summary>The keys of the user scripts/servers creates on the Ceph RADOS Gateway.</summary>
    public const string S3AccessKey = "vya-test-access";

    public const string S3SecretKey = "vya-test-secret";

    /// <summary>Small parts, so that a few MB already make a multipart upload (S3's minimum part size).</summary>
    public const int S3TestPartSize = 5 * 1024 * 1024;

    private static readonly Lazy<Task<string?>> MySqlProblem = new(() => CheckMySqlAsync(MySqlPort));
    private static readonly Lazy<Task<string?>> PgProblem = new(() => CheckPostgresAsync(PgPort));
    private static readonly Lazy<Task<string?>> MySql2Problem = new(() => CheckMySqlAsync(MySql2Port));
    private static readonly Lazy<Task<string?>> Pg2Problem = new(() => CheckPostgresAsync(Pg2Port));
    private static readonly Lazy<Task<string?>> SftpProblem = new(() => CheckSftpAsync());
    private static readonly Lazy<Task<string?>> S3Problem = new(() => CheckS3Async());

    // Globals off: tests count the databases a run backs up; the globals item has its own tests (GlobalsTests).
    public static InstanceConfig MySql(string? toolsDir = null, string? password = null, int id = MySqlInstanceId, string name = "test-mysql") =>
        new(id, name, Dbms.MySql, MySqlHost, MySqlPort, MySqlUser, PasswordSource.Literal(password ?? MySqlPassword),
            Enabled: true, Include: ["*"], Exclude: [], ToolsDir: toolsDir) { Globals = false };

    public static InstanceConfig Postgres(string? toolsDir = null, string? password = null, int id = PostgresInstanceId, string name = "test-pg") =>
        new(id, name, Dbms.PostgreSql, PgHost, PgPort, PgUser, PasswordSource.Literal(password ?? PgPassword),
            Enabled: true, Include: ["*"], Exclude: [], ToolsDir: toolsDir) { Globals = false };

    // Per dbms, for tests run on both (IntegrityTests, StagedRestoreTests: `using static TestServers`).

    /// <summary>The test server of a dbms as the CLI's test config (<see cref="Cli.WriteConfigAsync"/>) names it, so both write to the same folder.</summary>
    public static InstanceConfig Instance(Dbms dbms) => dbms == Dbms.MySql ? MySql(name: "it-mysql") : Postgres(name: "it-pg");

    /// <summary>Its id, as <c>--instance</c> takes it.</summary>
    public static string Id(Dbms dbms) => (dbms == Dbms.MySql ? MySqlInstanceId : PostgresInstanceId).ToString(CultureInfo.InvariantCulture);

    public static Task RequireAsync(Dbms dbms) => dbms == Dbms.MySql ? RequireMySqlAsync() : RequirePostgresAsync();

    /// <summary>Whether the database exists on the dbms's test server.</summary>
    public static Task<bool> ExistsAsync(Dbms dbms, string database) =>
        dbms == Dbms.MySql ? MySqlTestDb.ExistsAsync(database) : PgTestDb.ExistsAsync(database);

    public static AppConfig Config(string backupDir, params InstanceConfig[] instances) =>
        new("test-config.yaml", backupDir, Pipeline.Compression.Zstd, TimeSpan.FromMinutes(5), instances);

    /// <summary>The test bucket on the Ceph RADOS Gateway, under a key prefix.</summary>
    public static S3StorageConfig S3(string prefix, string name = "s3", int partSize = S3TestPartSize) =>
        new(name, S3Endpoint, "us-east-1", S3Bucket, Storage.StorageKey.Folder(prefix), ForcePathStyle: true,
            PasswordSource.Literal(S3AccessKey), PasswordSource.Literal(S3SecretKey), partSize);

    /// <summary>A folder (relative to the SFTP user's home) on the test sshd; by key, or by password.</summary>
    public static SftpStorageConfig Sftp(string path, string name = "sftp", bool usePassword = false, string? fingerprint = null) =>
        new(name, "127.0.0.1", SftpPort, SftpUser,
            usePassword ? PasswordSource.Literal(SftpPassword) : PasswordSource.None,
            usePassword ? null : SftpKeyFile, PasswordSource.None, fingerprint ?? SftpFingerprint, path);

    /// <summary>Skips the test (or fails it when CI=true) unless the SFTP test server answers.</summary>
    public static async Task RequireSftpAsync() =>
        Require("SFTP (sshd)", $"127.0.0.1:{SftpPort}", await SftpProblem.Value.ConfigureAwait(false));

    /// <summary>Skips the test (or fails it when CI=true) unless the S3 test server (Ceph RADOS Gateway) answers.</summary>
    public static async Task RequireS3Async() =>
        Require("S3 (Ceph RADOS Gateway)", S3Endpoint, await S3Problem.Value.ConfigureAwait(false));

    /// <summary>Skips the test (or fails it when CI=true) unless the MariaDB test server answers.</summary>
    public static async Task RequireMySqlAsync() =>
        Require("MariaDB", $"{MySqlHost}:{MySqlPort}", await MySqlProblem.Value.ConfigureAwait(false));

    /// <summary>Skips the test (or fails it when CI=true) unless the PostgreSQL test server answers.</summary>
    public static async Task RequirePostgresAsync() =>
        Require("PostgreSQL", $"{PgHost}:{PgPort}", await PgProblem.Value.ConfigureAwait(false));

    /// <summary>Skips the test (or fails it when CI=true) unless the second MariaDB test server answers.</summary>
    public static async Task RequireSecondMySqlAsync() =>
        Require("Second MariaDB", $"{MySqlHost}:{MySql2Port}", await MySql2Problem.Value.ConfigureAwait(false));

    /// <summary>Skips the test (or fails it when CI=true) unless the second PostgreSQL test server answers.</summary>
    public static async Task RequireSecondPostgresAsync() =>
        Require("Second PostgreSQL", $"{PgHost}:{Pg2Port}", await Pg2Problem.Value.ConfigureAwait(false));

    /// <param name="port">Another server's port (the second one's); the first server's by default.</param>
    public static string MySqlConnectionString(string? database = null, int? port = null) => new MySqlConnectionStringBuilder
    {
        Server = MySqlHost,
        Port = (uint)(port ?? MySqlPort),
        UserID = MySqlUser,
        Password = MySqlPassword,
        Database = database ?? "",
        AllowPublicKeyRetrieval = true,
        ConnectionTimeout = 5,
        DefaultCommandTimeout = 120,
        CharacterSet = "utf8mb4",
        Pooling = false,
    }.ConnectionString;

    public static string PgConnectionString(string database = "postgres", int? port = null) => new NpgsqlConnectionStringBuilder
    {
        Host = PgHost,
        Port = port ?? PgPort,
        Username = PgUser,
        Password = PgPassword,
        Database = database,
        Timeout = 5,
        CommandTimeout = 120,
        Pooling = false,
    }.ConnectionString;

    private static void Require(string what, string where, string? problem)
    {
        if (problem is null)
        {
            return;
        }
        var message = $"{what} test server at {where} is not usable: {problem}";
        if (IsCi)
        {
            throw new InvalidOperationException(message + " (CI=true: a missing server fails the test instead of skipping it)");
        }
        Skip.If(true, message);
    }

    private static async Task<string?> CheckMySqlAsync(int port)
    {
        if (await TcpProblemAsync(MySqlHost, port).ConfigureAwait(false) is { } tcp)
        {
            return tcp;
        }
        try
        {
            await using var connection = new MySqlConnection(MySqlConnectionString(port: port));
            await connection.OpenAsync().ConfigureAwait(false);
            return null;
        }
        catch (Exception e) when (e is MySqlException or InvalidOperationException or TimeoutException)
        {
            return $"login as {MySqlUser} failed: {e.Message}";
        }
    }

    private static async Task<string?> CheckPostgresAsync(int port)
    {
        if (await TcpProblemAsync(PgHost, port).ConfigureAwait(false) is { } tcp)
        {
            return tcp;
        }
        try
        {
            await using var connection = new NpgsqlConnection(PgConnectionString(port: port));
            await connection.OpenAsync().ConfigureAwait(false);
            return null;
        }
        catch (Exception e) when (e is NpgsqlException or InvalidOperationException or TimeoutException)
        {
            return $"login as {PgUser} failed: {e.Message}";
        }
    }

    private static async Task<string?> CheckSftpAsync()
    {
        if (await TcpProblemAsync("127.0.0.1", SftpPort).ConfigureAwait(false) is { } tcp)
        {
            return tcp;
        }
        if (!File.Exists(SftpKeyFile) || !File.Exists(Path.Combine(ServersDir, "sftp", "host_fingerprint")))
        {
            return $"no client key or host fingerprint under {ServersDir}/sftp (run scripts/servers start as root)";
        }
        return null;
    }

    private static async Task<string?> CheckS3Async()
    {
        if (await TcpProblemAsync("127.0.0.1", S3Port).ConfigureAwait(false) is { } tcp)
        {
            return tcp;
        }
        // The test user lists the uploads in the test bucket (what the sweep tests need).
        using var storage = new Storage.S3.S3Storage(S3(""));
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        try
        {
            await storage.ListUploadsAsync("", timeout.Token).ConfigureAwait(false);
            return null;
        }
        catch (Exception e) when (e is IOException or OperationCanceledException)
        {
            return $"bucket {S3Bucket}: {e.Message}";
        }
    }

    private static async Task<string?> TcpProblemAsync(string host, int port)
    {
        using var client = new TcpClient();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(3));
        try
        {
            await client.ConnectAsync(host, port, timeout.Token).ConfigureAwait(false);
            return null;
        }
        catch (Exception e) when (e is SocketException or OperationCanceledException)
        {
            return $"no TCP connection: {e.Message}";
        }
    }

    private static string Env(string name, string fallback) =>
        Environment.GetEnvironmentVariable(name) is { Length: > 0 } value ? value : fallback;
}
