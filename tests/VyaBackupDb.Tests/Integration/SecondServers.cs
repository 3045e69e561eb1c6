using MySqlConnector;
using Npgsql;

namespace VyaBackupDb.Tests.Integration;

/// <summary>
/// The second, fresh MariaDB and PostgreSQL that scripts/servers starts: the new machine a whole
/// server is restored onto. Whoever uses them holds <see cref="LockAsync"/> (the test runs of
/// several checkouts share them; scripts/runbook takes the same lock) and leaves them as fresh as
/// scripts/servers made them: <see cref="ResetMySqlAsync"/>, <see cref="ResetPostgresAsync"/>.
/// </summary>
public static class SecondServers
{
    /// <summary>The lock file, beside the servers' data (scripts/runbook: flock on the same file).</summary>
    public static string LockFile => Path.Combine(TestServers.ServersDir, "second-servers.lock");

    /// <summary>Waits (up to 10 minutes) for the exclusive use of the second servers; dispose to release.</summary>
    public static async Task<IDisposable> LockAsync()
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromMinutes(10);
        while (true)
        {
            try
            {
                // On Linux, FileShare.None takes an exclusive flock(2): the lock flock(1) takes in scripts/runbook.
                return new FileStream(LockFile, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
            }
            catch (IOException) when (DateTime.UtcNow < deadline)
            {
                await Task.Delay(TimeSpan.FromMilliseconds(500)).ConfigureAwait(false);
            }
        }
    }

    /// <summary>Drops every database, user and role of the second MariaDB but the ones it started with.</summary>
    public static async Task ResetMySqlAsync()
    {
        await using var connection = new MySqlConnection(TestServers.MySqlConnectionString(port: TestServers.MySql2Port));
        await connection.OpenAsync().ConfigureAwait(false);
        var drops = new List<string>();
        await using (var command = new MySqlCommand(
            "SELECT schema_name FROM information_schema.schemata WHERE schema_name NOT IN ('mysql', 'information_schema', 'performance_schema', 'sys')", connection))
        await using (var reader = await command.ExecuteReaderAsync().ConfigureAwait(false))
        {
            while (await reader.ReadAsync().ConfigureAwait(false))
            {
                drops.Add($"DROP DATABASE {MySqlTestDb.Quote(reader.GetString(0))}");
            }
        }
        await using (var command = new MySqlCommand("SELECT User, Host, is_role = 'Y' FROM mysql.user", connection))
        await using (var reader = await command.ExecuteReaderAsync().ConfigureAwait(false))
        {
            while (await reader.ReadAsync().ConfigureAwait(false))
            {
                var (user, host) = (reader.GetString(0), reader.GetString(1));
                // What mariadb-install-db and scripts/servers create.
                if (user is "root" or "mysql" or "mariadb.sys" or "PUBLIC" || user == TestServers.MySqlUser)
                {
                    continue;
                }
                drops.Add(reader.GetBoolean(2) ? $"DROP ROLE {MySqlTestDb.Quote(user)}" : $"DROP USER {MySqlTestDb.Quote(user)}@{MySqlTestDb.Quote(host)}");
            }
        }
        foreach (var drop in drops)
        {
            await using var command = new MySqlCommand(drop, connection);
            await command.ExecuteNonQueryAsync().ConfigureAwait(false);
        }
    }

    /// <summary>Drops every database and role of the second PostgreSQL but the ones initdb and scripts/servers made.</summary>
    public static async Task ResetPostgresAsync()
    {
        await using var connection = new NpgsqlConnection(TestServers.PgConnectionString(port: TestServers.Pg2Port));
        await connection.OpenAsync().ConfigureAwait(false);
        var drops = new List<string>();
        await using (var command = new NpgsqlCommand("SELECT datname FROM pg_database WHERE datname NOT IN ('postgres', 'template0', 'template1')", connection))
        await using (var reader = await command.ExecuteReaderAsync().ConfigureAwait(false))
        {
            while (await reader.ReadAsync().ConfigureAwait(false))
            {
                drops.Add($"DROP DATABASE {PgTestDb.Quote(reader.GetString(0))} WITH (FORCE)");
            }
        }
        var roles = new List<string>();
        await using (var command = new NpgsqlCommand("SELECT rolname FROM pg_roles WHERE rolname !~ '^pg_' AND rolname NOT IN ('postgres', $1)", connection))
        {
            command.Parameters.Add(new NpgsqlParameter { Value = TestServers.PgUser });
            await using var reader = await command.ExecuteReaderAsync().ConfigureAwait(false);
            while (await reader.ReadAsync().ConfigureAwait(false))
            {
                roles.Add(PgTestDb.Quote(reader.GetString(0)));
            }
        }
        if (roles.Count > 0)
        {
            // What they own or were granted in the maintenance database goes with them (their databases went first).
            drops.Add($"DROP OWNED BY {string.Join(", ", roles)}");
            drops.Add($"DROP ROLE {string.Join(", ", roles)}");
        }
        foreach (var drop in drops)
        {
            await using var command = new NpgsqlCommand(drop, connection);
            await command.ExecuteNonQueryAsync().ConfigureAwait(false);
        }
    }
}
