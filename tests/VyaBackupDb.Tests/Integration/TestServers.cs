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

    public static bool IsCi => string.Equals(Environment.GetEnvironmentVariable("CI"), "true", StringComparison.OrdinalIgnoreCase);

    private static readonly Lazy<Task<string?>> MySqlProblem = new(() => CheckMySqlAsync());
    private static readonly Lazy<Task<string?>> PgProblem = new(() => CheckPostgresAsync());

    public static InstanceConfig MySql(string? toolsDir = null, string? password = null, int id = MySqlInstanceId, string name = "test-mysql") =>
        new(id, name, Dbms.MySql, MySqlHost, MySqlPort, MySqlUser, PasswordSource.Literal(password ?? MySqlPassword),
            Enabled: true, Include: ["*"], Exclude: [], ToolsDir: toolsDir);

    public static InstanceConfig Postgres(string? toolsDir = null, string? password = null, int id = PostgresInstanceId, string name = "test-pg") =>
        new(id, name, Dbms.PostgreSql, PgHost, PgPort, PgUser, PasswordSource.Literal(password ?? PgPassword),
            Enabled: true, Include: ["*"], Exclude: [], ToolsDir: toolsDir);

    public static AppConfig Config(string backupDir, params InstanceConfig[] instances) =>
        new("test-config.yaml", backupDir, Pipeline.Compression.Zstd, TimeSpan.FromMinutes(5), instances);

    /// <summary>Skips the test (or fails it when CI=true) unless the MariaDB test server answers.</summary>
    public static async Task RequireMySqlAsync() =>
        Require("MariaDB", $"{MySqlHost}:{MySqlPort}", await MySqlProblem.Value.ConfigureAwait(false));

    /// <summary>Skips the test (or fails it when CI=true) unless the PostgreSQL test server answers.</summary>
    public static async Task RequirePostgresAsync() =>
        Require("PostgreSQL", $"{PgHost}:{PgPort}", await PgProblem.Value.ConfigureAwait(false));

    public static string MySqlConnectionString(string? database = null) => new MySqlConnectionStringBuilder
    {
        Server = MySqlHost,
        Port = (uint)MySqlPort,
        UserID = MySqlUser,
        Password = MySqlPassword,
        Database = database ?? "",
        AllowPublicKeyRetrieval = true,
        ConnectionTimeout = 5,
        DefaultCommandTimeout = 120,
        CharacterSet = "utf8mb4",
        Pooling = false,
    }.ConnectionString;

    public static string PgConnectionString(string database = "postgres") => new NpgsqlConnectionStringBuilder
    {
        Host = PgHost,
        Port = PgPort,
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

    private static async Task<string?> CheckMySqlAsync()
    {
        if (await TcpProblemAsync(MySqlHost, MySqlPort).ConfigureAwait(false) is { } tcp)
        {
            return tcp;
        }
        try
        {
            await using var connection = new MySqlConnection(MySqlConnectionString());
            await connection.OpenAsync().ConfigureAwait(false);
            return null;
        }
        catch (Exception e) when (e is MySqlException or InvalidOperationException or TimeoutException)
        {
            return $"login as {MySqlUser} failed: {e.Message}";
        }
    }

    private static async Task<string?> CheckPostgresAsync()
    {
        if (await TcpProblemAsync(PgHost, PgPort).ConfigureAwait(false) is { } tcp)
        {
            return tcp;
        }
        try
        {
            await using var connection = new NpgsqlConnection(PgConnectionString());
            await connection.OpenAsync().ConfigureAwait(false);
            return null;
        }
        catch (Exception e) when (e is NpgsqlException or InvalidOperationException or TimeoutException)
        {
            return $"login as {PgUser} failed: {e.Message}";
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
