using System.Globalization;
using Npgsql;
using VyaBackupDb.Engines.Postgres;

namespace VyaBackupDb.Tests.Integration;

/// <summary>Direct access to the PostgreSQL test server, for fixtures and checks (not through the code under test).</summary>
public static class PgTestDb
{
    private const string UserSchemas =
        "NOT IN ('pg_catalog', 'information_schema') AND {0} NOT LIKE 'pg\\_toast%' AND {0} NOT LIKE 'pg\\_temp%'";

    public static string Quote(string name) => PostgresEngine.QuoteIdentifier(name);

    public static async Task<NpgsqlConnection> OpenAsync(string database = "postgres")
    {
        var connection = new NpgsqlConnection(TestServers.PgConnectionString(database));
        await connection.OpenAsync().ConfigureAwait(false);
        return connection;
    }

    public static Task CreateAsync(string database) =>
        ExecAsync("postgres", $"CREATE DATABASE {Quote(database)} TEMPLATE template0 ENCODING 'UTF8'");

    /// <summary>Drops the database, and a staging database's load role with it (a killed restore leaves both).</summary>
    public static async Task DropIfExistsAsync(string database)
    {
        await ExecAsync("postgres", $"DROP DATABASE IF EXISTS {Quote(database)} WITH (FORCE)").ConfigureAwait(false);
        if (database.StartsWith(Engines.RestoreStaging.StagingPrefix, StringComparison.Ordinal))
        {
            await ExecAsync("postgres", $"DROP ROLE IF EXISTS {Quote(database)}").ConfigureAwait(false);
        }
    }

    /// <summary>Each row as "a|b|c" (<see cref="Ops.Cell"/>), <paramref name="parameters"/> as $1, $2, ...</summary>
    public static async Task<List<string>> RowsAsync(string database, string sql, params object[] parameters)
    {
        await using var connection = await OpenAsync(database).ConfigureAwait(false);
        await using var command = new NpgsqlCommand(sql, connection);
        foreach (var parameter in parameters)
        {
            command.Parameters.Add(new NpgsqlParameter { Value = parameter });
        }
        await using var reader = await command.ExecuteReaderAsync().ConfigureAwait(false);
        var rows = new List<string>();
        while (await reader.ReadAsync().ConfigureAwait(false))
        {
            rows.Add(string.Join('|', Enumerable.Range(0, reader.FieldCount).Select(i => Ops.Cell(reader.GetValue(i)))));
        }
        return rows;
    }

    public static async Task<bool> RoleExistsAsync(string role) =>
        Convert.ToInt64(await ScalarAsync("postgres", "SELECT COUNT(*) FROM pg_roles WHERE rolname = $1", role)
            .ConfigureAwait(false), CultureInfo.InvariantCulture) > 0;

    public static async Task<bool> ExistsAsync(string database) =>
        Convert.ToInt64(await ScalarAsync("postgres", "SELECT COUNT(*) FROM pg_database WHERE datname = $1", database)
            .ConfigureAwait(false), CultureInfo.InvariantCulture) > 0;

    /// <summary>Runs each statement in turn, each sent whole (function bodies hold ';').</summary>
    public static async Task ExecAsync(string database, params string[] statements)
    {
        await using var connection = await OpenAsync(database).ConfigureAwait(false);
        foreach (var sql in statements)
        {
            await using var command = new NpgsqlCommand(sql, connection);
            await command.ExecuteNonQueryAsync().ConfigureAwait(false);
        }
    }

    /// <summary>One statement with positional parameters $1, $2, ...</summary>
    public static async Task ExecWithAsync(string database, string sql, params object?[] parameters)
    {
        await using var connection = await OpenAsync(database).ConfigureAwait(false);
        await using var command = new NpgsqlCommand(sql, connection);
        foreach (var parameter in parameters)
        {
            command.Parameters.Add(new NpgsqlParameter { Value = parameter ?? DBNull.Value });
        }
        await command.ExecuteNonQueryAsync().ConfigureAwait(false);
    }

    public static async Task<object?> ScalarAsync(string database, string sql, params object?[] parameters)
    {
        await using var connection = await OpenAsync(database).ConfigureAwait(false);
        await using var command = new NpgsqlCommand(sql, connection);
        foreach (var parameter in parameters)
        {
            command.Parameters.Add(new NpgsqlParameter { Value = parameter ?? DBNull.Value });
        }
        var value = await command.ExecuteScalarAsync().ConfigureAwait(false);
        return value is DBNull ? null : value;
    }

    public static async Task<int> TableCountAsync(string database) =>
        Convert.ToInt32(await ScalarAsync(database,
            "SELECT COUNT(*) FROM information_schema.tables WHERE table_type = 'BASE TABLE' AND table_schema "
            + string.Format(CultureInfo.InvariantCulture, UserSchemas, "table_schema")).ConfigureAwait(false), CultureInfo.InvariantCulture);

    /// <summary>
    /// Every user table's rows hashed from their text form (exact for every type: bytea as hex,
    /// floats with full precision), plus columns, indexes, functions, triggers, views, sequences
    /// with their current values, enum types with their labels in order, and composite types with their attributes.
    /// </summary>
    public static async Task<DbFingerprint> FingerprintAsync(string database)
    {
        await using var connection = await OpenAsync(database).ConfigureAwait(false);
        var lines = new List<string>();
        string Where(string column) => column + " " + string.Format(CultureInfo.InvariantCulture, UserSchemas, column);

        var tables = new List<(string Schema, string Table)>();
        await foreach (var row in QueryAsync(connection,
            $"SELECT table_schema, table_name FROM information_schema.tables WHERE table_type = 'BASE TABLE' AND {Where("table_schema")}"))
        {
            tables.Add((row[0], row[1]));
        }
        foreach (var (schema, table) in tables)
        {
            var hashes = new List<string>();
            await foreach (var row in QueryAsync(connection, $"SELECT md5(t::text) FROM {Quote(schema)}.{Quote(table)} t"))
            {
                hashes.Add(row[0]);
            }
            lines.Add($"table {schema}.{table}: rows={hashes.Count} hash={DbFingerprint.HashRows(hashes)}");
        }

        await foreach (var row in QueryAsync(connection,
            // The column's place among the table's columns, not its number: a column dropped leaves a gap no restore keeps.
            "SELECT c.table_schema, c.table_name, c.column_name, "
            + "row_number() OVER (PARTITION BY c.table_schema, c.table_name ORDER BY c.ordinal_position), c.data_type, c.udt_name, c.is_nullable, "
            + "coalesce(c.column_default, '<none>'), coalesce(c.character_maximum_length::text, '') "
            + "FROM information_schema.columns c JOIN information_schema.tables t USING (table_schema, table_name) "
            + $"WHERE t.table_type = 'BASE TABLE' AND {Where("c.table_schema")}"))
        {
            lines.Add($"column {row[0]}.{row[1]}.{row[2]}: #{row[3]} {row[4]} {row[5]}({row[8]}) null={row[6]} default={row[7]}");
        }
        await foreach (var row in QueryAsync(connection,
            $"SELECT schemaname, indexname, indexdef FROM pg_indexes WHERE {Where("schemaname")}"))
        {
            lines.Add($"index {row[0]}.{row[1]}: {row[2]}");
        }
        await foreach (var row in QueryAsync(connection,
            "SELECT n.nspname, p.proname, pg_get_function_identity_arguments(p.oid), p.prokind, md5(p.prosrc), "
            + "pg_get_function_result(p.oid) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
            + $"WHERE {Where("n.nspname")}"))
        {
            lines.Add($"function {row[0]}.{row[1]}({row[2]}): kind={row[3]} returns={row[5]} body={row[4]}");
        }
        await foreach (var row in QueryAsync(connection,
            "SELECT n.nspname, c.relname, t.tgname, md5(pg_get_triggerdef(t.oid)) FROM pg_trigger t "
            + "JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
            + $"WHERE NOT t.tgisinternal AND {Where("n.nspname")}"))
        {
            lines.Add($"trigger {row[0]}.{row[2]}: ON {row[1]} def={row[3]}");
        }
        await foreach (var row in QueryAsync(connection,
            $"SELECT schemaname, viewname, md5(definition) FROM pg_views WHERE {Where("schemaname")}"))
        {
            lines.Add($"view {row[0]}.{row[1]}: def={row[2]}");
        }
        await foreach (var row in QueryAsync(connection,
            "SELECT schemaname, sequencename, coalesce(last_value::text, 'not called'), start_value, increment_by, max_value "
            + $"FROM pg_sequences WHERE {Where("schemaname")}"))
        {
            lines.Add($"sequence {row[0]}.{row[1]}: last={row[2]} start={row[3]} increment={row[4]} max={row[5]}");
        }
        await foreach (var row in QueryAsync(connection,
            "SELECT n.nspname, t.typname, string_agg(e.enumlabel, ',' ORDER BY e.enumsortorder) FROM pg_type t "
            + "JOIN pg_enum e ON e.enumtypid = t.oid JOIN pg_namespace n ON n.oid = t.typnamespace "
            + $"WHERE {Where("n.nspname")} GROUP BY n.nspname, t.typname"))
        {
            lines.Add($"enum {row[0]}.{row[1]}: {row[2]}");
        }
        await foreach (var row in QueryAsync(connection,
            "SELECT n.nspname, t.typname, string_agg(a.attname || ' ' || format_type(a.atttypid, a.atttypmod), ',' ORDER BY a.attnum) FROM pg_type t "
            + "JOIN pg_class c ON c.oid = t.typrelid JOIN pg_namespace n ON n.oid = t.typnamespace "
            + "JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped "
            + $"WHERE c.relkind = 'c' AND {Where("n.nspname")} GROUP BY n.nspname, t.typname"))
        {
            lines.Add($"composite type {row[0]}.{row[1]}: {row[2]}");
        }
        return new DbFingerprint(lines);
    }

    private static async IAsyncEnumerable<string[]> QueryAsync(NpgsqlConnection connection, string sql)
    {
        await using var command = new NpgsqlCommand(sql, connection);
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
