using System.Globalization;
using MySqlConnector;
using VyaBackupDb.Engines.MySql;

namespace VyaBackupDb.Tests.Integration;

/// <summary>Direct access to the MariaDB test server, for fixtures and checks (not through the code under test).</summary>
public static class MySqlTestDb
{
    public static string Quote(string name) => MySqlEngine.QuoteIdentifier(name);

    /// <summary>
    /// The test instance with the engine a round-trip test runs under: 0 is engine: dump (one
    /// stream from mariadb-dump), N is engine: parallel on N connections, for backup and restore.
    /// </summary>
    public static Config.InstanceConfig Instance(int jobs) =>
        jobs == 0 ? TestServers.MySql() : TestServers.MySql() with { Engine = Config.BackupEngine.Parallel, Jobs = jobs };

    public static async Task<MySqlConnection> OpenAsync(string? database = null)
    {
        var connection = new MySqlConnection(TestServers.MySqlConnectionString(database));
        await connection.OpenAsync().ConfigureAwait(false);
        return connection;
    }

    public static async Task CreateAsync(string database)
    {
        await ExecAsync(null, $"CREATE DATABASE {Quote(database)} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci").ConfigureAwait(false);
    }

    public static Task DropIfExistsAsync(string database) => ExecAsync(null, $"DROP DATABASE IF EXISTS {Quote(database)}");

    public static async Task<bool> ExistsAsync(string database)
    {
        var count = await ScalarAsync(null, "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = @p0", database)
            .ConfigureAwait(false);
        return Convert.ToInt64(count, CultureInfo.InvariantCulture) > 0;
    }

    /// <summary>Runs each statement in turn (a statement may hold ';' in a routine body; it is sent whole).</summary>
    public static async Task ExecAsync(string? database, params string[] statements)
    {
        await using var connection = await OpenAsync(database).ConfigureAwait(false);
        foreach (var sql in statements)
        {
            await using var command = new MySqlCommand(sql, connection);
            await command.ExecuteNonQueryAsync().ConfigureAwait(false);
        }
    }

    /// <summary>One statement with positional parameters @p0, @p1, ...</summary>
    public static async Task ExecWithAsync(string database, string sql, params object?[] parameters)
    {
        await using var connection = await OpenAsync(database).ConfigureAwait(false);
        await using var command = new MySqlCommand(sql, connection);
        for (var i = 0; i < parameters.Length; i++)
        {
            command.Parameters.AddWithValue($"@p{i}", parameters[i] ?? DBNull.Value);
        }
        await command.ExecuteNonQueryAsync().ConfigureAwait(false);
    }

    public static async Task<object?> ScalarAsync(string? database, string sql, params object?[] parameters)
    {
        await using var connection = await OpenAsync(database).ConfigureAwait(false);
        await using var command = new MySqlCommand(sql, connection);
        for (var i = 0; i < parameters.Length; i++)
        {
            command.Parameters.AddWithValue($"@p{i}", parameters[i] ?? DBNull.Value);
        }
        var value = await command.ExecuteScalarAsync().ConfigureAwait(false);
        return value is DBNull ? null : value;
    }

    public static async Task<int> TableCountAsync(string database) =>
        Convert.ToInt32(await ScalarAsync(null,
            "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = @p0 AND TABLE_TYPE = 'BASE TABLE'", database)
            .ConfigureAwait(false), CultureInfo.InvariantCulture);

    /// <summary>
    /// Every base table's rows hashed from their exact bytes (SHA2 of each value, NULL marked
    /// apart from any value), plus columns, partitions, routines, triggers, events and views (with
    /// the character set, collation and database collation each was created under).
    /// </summary>
    public static async Task<DbFingerprint> FingerprintAsync(string database)
    {
        await using var connection = await OpenAsync().ConfigureAwait(false);
        var lines = new List<string>();

        await foreach (var row in QueryAsync(connection,
            "SELECT DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = @p0", database))
        {
            lines.Add($"database defaults: charset={row[0]} collation={row[1]}");
        }

        var columns = new Dictionary<string, List<string>>(StringComparer.Ordinal);
        await foreach (var row in QueryAsync(connection,
            "SELECT c.TABLE_NAME, c.COLUMN_NAME, c.ORDINAL_POSITION, c.COLUMN_TYPE, c.IS_NULLABLE, IFNULL(c.COLUMN_DEFAULT, '<none>'), "
            + "IFNULL(c.COLLATION_NAME, '-'), c.EXTRA, c.COLUMN_KEY "
            + "FROM information_schema.COLUMNS c JOIN information_schema.TABLES t "
            + "ON BINARY t.TABLE_SCHEMA = c.TABLE_SCHEMA AND BINARY t.TABLE_NAME = c.TABLE_NAME "
            + "WHERE c.TABLE_SCHEMA = @p0 AND t.TABLE_TYPE = 'BASE TABLE' ORDER BY c.TABLE_NAME, c.ORDINAL_POSITION", database))
        {
            lines.Add($"column {row[0]}.{row[1]}: #{row[2]} {row[3]} null={row[4]} default={row[5]} collation={row[6]} extra={row[7]} key={row[8]}");
            if (!columns.TryGetValue(row[0], out var list))
            {
                columns[row[0]] = list = [];
            }
            list.Add(row[1]);
        }

        foreach (var (table, names) in columns)
        {
            var values = string.Join(", ", names.Select(c => $"IFNULL(CONCAT('v', SHA2({Quote(c)}, 256)), 'NULL')"));
            var sql = $"SELECT SHA2(CONCAT_WS('|', {values}), 256) FROM {Quote(database)}.{Quote(table)}";
            var hashes = new List<string>();
            await foreach (var row in QueryAsync(connection, sql))
            {
                hashes.Add(row[0]);
            }
            lines.Add($"table {table}: rows={hashes.Count} hash={DbFingerprint.HashRows(hashes)}");
        }
        await foreach (var row in QueryAsync(connection,
            "SELECT TABLE_NAME, IFNULL(AUTO_INCREMENT, '-'), ENGINE, TABLE_COLLATION FROM information_schema.TABLES "
            + "WHERE TABLE_SCHEMA = @p0 AND TABLE_TYPE = 'BASE TABLE'", database))
        {
            lines.Add($"table-options {row[0]}: auto_increment={row[1]} engine={row[2]} collation={row[3]}");
        }

        await foreach (var row in QueryAsync(connection,
            "SELECT TABLE_NAME, PARTITION_NAME, PARTITION_METHOD, IFNULL(PARTITION_EXPRESSION, ''), IFNULL(PARTITION_DESCRIPTION, '') "
            + "FROM information_schema.PARTITIONS WHERE TABLE_SCHEMA = @p0 AND PARTITION_NAME IS NOT NULL", database))
        {
            lines.Add($"partition {row[0]}.{row[1]}: {row[2]} {row[3]} {row[4]}");
        }
        await foreach (var row in QueryAsync(connection,
            "SELECT ROUTINE_NAME, ROUTINE_TYPE, IFNULL(DTD_IDENTIFIER, ''), SHA2(ROUTINE_DEFINITION, 256), CHARACTER_SET_CLIENT, COLLATION_CONNECTION, DATABASE_COLLATION "
            + "FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = @p0", database))
        {
            lines.Add($"routine {row[0]}: {row[1]} returns={row[2]} body={row[3]} created under {row[4]} {row[5]} database {row[6]}");
        }
        await foreach (var row in QueryAsync(connection,
            "SELECT TRIGGER_NAME, ACTION_TIMING, EVENT_MANIPULATION, EVENT_OBJECT_TABLE, SHA2(ACTION_STATEMENT, 256), CHARACTER_SET_CLIENT, COLLATION_CONNECTION, DATABASE_COLLATION "
            + "FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = @p0 AND BINARY TRIGGER_SCHEMA = @p0", database))
        {
            lines.Add($"trigger {row[0]}: {row[1]} {row[2]} ON {row[3]} body={row[4]} created under {row[5]} {row[6]} database {row[7]}");
        }
        await foreach (var row in QueryAsync(connection,
            "SELECT EVENT_NAME, STATUS, EVENT_TYPE, IFNULL(INTERVAL_VALUE, ''), IFNULL(INTERVAL_FIELD, ''), SHA2(EVENT_DEFINITION, 256), CHARACTER_SET_CLIENT, COLLATION_CONNECTION, DATABASE_COLLATION "
            + "FROM information_schema.EVENTS WHERE EVENT_SCHEMA = @p0 AND BINARY EVENT_SCHEMA = @p0", database))
        {
            lines.Add($"event {row[0]}: {row[1]} {row[2]} every {row[3]} {row[4]} body={row[5]} created under {row[6]} {row[7]} database {row[8]}");
        }
        await foreach (var row in QueryAsync(connection,
            "SELECT TABLE_NAME, VIEW_DEFINITION, CHARACTER_SET_CLIENT, COLLATION_CONNECTION FROM information_schema.VIEWS WHERE TABLE_SCHEMA = @p0", database))
        {
            // The server writes the view's own database into its definition; leave it out.
            var definition = row[1].Replace(Quote(database) + ".", "", StringComparison.Ordinal);
            lines.Add($"view {row[0]}: {definition} created under {row[2]} {row[3]}");
        }
        return new DbFingerprint(lines);
    }

    private static async IAsyncEnumerable<string[]> QueryAsync(MySqlConnection connection, string sql, params object[] parameters)
    {
        await using var command = new MySqlCommand(sql, connection);
        for (var i = 0; i < parameters.Length; i++)
        {
            command.Parameters.AddWithValue($"@p{i}", parameters[i]);
        }
        await using var reader = await command.ExecuteReaderAsync().ConfigureAwait(false);
        while (await reader.ReadAsync().ConfigureAwait(false))
        {
            var row = new string[reader.FieldCount];
            for (var i = 0; i < row.Length; i++)
            {
                row[i] = reader.IsDBNull(i) ? "<null>" : Convert.ToString(reader.GetValue(i), CultureInfo.InvariantCulture) ?? "";
            }
            yield return row;
        }
    }
}
