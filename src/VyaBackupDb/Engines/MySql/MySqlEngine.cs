using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using MySqlConnector;
using VyaBackupDb.Catalog;
using VyaBackupDb.Config;
using VyaBackupDb.Errors;

namespace VyaBackupDb.Engines.MySql;

/// <summary>MySQL and MariaDB: mysqldump/mariadb-dump to back up, the mysql/mariadb client to restore.</summary>
public sealed partial class MySqlEngine(InstanceConfig instance) : IDumpEngine
{
    private ServerInfo? _server;

    /// <summary>The sql_mode a new session starts with (a set's schema.sql and post.sql both need it).</summary>
    private string? _sessionSqlMode;

    /// <summary>The server's max_allowed_packet, read with <see cref="_sessionSqlMode"/>.</summary>
    private long _maxAllowedPacket;

    public InstanceConfig Instance { get; } = instance;

    public string CompletionTrailer => DumpEngines.CompletionTrailer(Dbms.MySql);

    public Task<DumpDetails> DumpSetAsync(string database, Sources.Sets.BackupSetWriter set, int jobs, CancellationToken cancellationToken) =>
        DumpSetCoreAsync(database, set, jobs, cancellationToken);

    public Task<LoadResult> RestoreSetAsync(
        string database, Sources.Sets.BackupSetReader set, RestoreOptions options, int jobs, CancellationToken cancellationToken) =>
        RestoreSetCoreAsync(database, set, options, jobs, cancellationToken);

    public async Task<ServerInfo> ProbeAsync(CancellationToken cancellationToken)
    {
        await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        var version = (string?)await Scalar(connection, "SELECT VERSION()", cancellationToken).ConfigureAwait(false) ?? "";
        var flavor = version.Contains("MariaDB", StringComparison.OrdinalIgnoreCase) ? "MariaDB" : "MySQL";
        var databases = new List<string>();
        await using (var command = new MySqlCommand("SELECT SCHEMA_NAME FROM information_schema.SCHEMATA ORDER BY SCHEMA_NAME", connection))
        await using (var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false))
        {
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                var name = reader.GetString(0);
                if (!DumpEngines.IsSystemDatabase(Dbms.MySql, name))
                {
                    databases.Add(name);
                }
            }
        }
        return new ServerInfo(flavor, version.Split('-')[0], databases);
    }

    public async Task<long?> DatabaseSizeAsync(string database, CancellationToken cancellationToken)
    {
        await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        var size = await Scalar(connection,
            "SELECT SUM(DATA_LENGTH + INDEX_LENGTH) FROM information_schema.TABLES WHERE TABLE_SCHEMA = @db", cancellationToken, database)
            .ConfigureAwait(false);
        return size is null or DBNull ? null : Convert.ToInt64(size, CultureInfo.InvariantCulture);
    }

    public async Task<DumpDetails> DumpAsync(string database, Stream output, CancellationToken cancellationToken)
    {
        var server = await ServerAsync(cancellationToken).ConfigureAwait(false);
        var serverIsMariaDb = server.Flavor == "MariaDB";
        var tool = FindTool(serverIsMariaDb ? ["mariadb-dump", "mysqldump"] : ["mysqldump", "mariadb-dump"]);
        var toolVersion = (await ChildProcess.CaptureAsync(tool, ["--version"], cancellationToken).ConfigureAwait(false)).Trim();
        var toolIsMariaDb = toolVersion.Contains("MariaDB", StringComparison.OrdinalIgnoreCase);

        using var options = OptionFile();
        List<string> arguments =
        [
            $"--defaults-file={options.Path}",
            "--single-transaction", "--routines", "--triggers", "--events", "--hex-blob",
            "--quick", "--no-tablespaces", "--max-allowed-packet=1G", "--default-character-set=utf8mb4",
        ];
        if (!toolIsMariaDb && !serverIsMariaDb)
        {
            arguments.Add("--set-gtid-purged=OFF");
        }
        if (!toolIsMariaDb && serverIsMariaDb)
        {
            // MySQL 8's mysqldump queries COLUMN_STATISTICS, which MariaDB does not have.
            arguments.Add("--column-statistics=0");
        }

        // Read first: whatever changes after it, the counts below included, is seen after the dump.
        var schema = await SchemaDigestAsync(database, cancellationToken).ConfigureAwait(false);
        // The catalog just before the dump: which tables there are and their engines (mysqldump's
        // snapshot cannot be shared). The rows are counted from the dump itself, as it streams.
        var catalog = await ReadCatalogAsync(database, serverIsMariaDb, cancellationToken).ConfigureAwait(false);
        var (withHistory, warnings) = CatalogWarnings(database, catalog, server, toolIsMariaDb, toolVersion);
        if (withHistory)
        {
            arguments.Add("--dump-history");
        }
        if (serverIsMariaDb && await RoundedFloatColumnsAsync(database, cancellationToken).ConfigureAwait(false) is { Count: > 0 } floats)
        {
            warnings.Add($"{database}: FLOAT columns {string.Join(", ", floats.Take(10))}{(floats.Count > 10 ? ", ..." : "")} are dumped as "
                + "MariaDB prints them, to 6 significant digits: a value with more comes back rounded (engine: parallel keeps them exactly)");
        }

        // "--" so that a database named like an option (-f) is taken as a name. No --databases:
        // the dump must not name the database, so it restores under any name.
        arguments.Add("--");
        arguments.Add(database);
        var counter = new MySqlRowCounter(output);
        await ChildProcess.RunAsync(tool, arguments, null, null, counter, cancellationToken).ConfigureAwait(false);
        if (await SchemaDigestAsync(database, cancellationToken).ConfigureAwait(false) != schema)
        {
            throw new OperationFailedException($"the schema of '{database}' changed while it was dumped (ALTER TABLE, or a view, routine, "
                + "trigger or event created, changed or dropped): the dump's snapshot does not hold back schema changes, so a table could be "
                + "in it with its rows of before and its columns of after; nothing was stored: back it up again when no schema change runs");
        }

        var inventory = Reconcile(database, catalog, counter, withHistory, warnings);
        return new DumpDetails(Path.GetFileName(tool), toolVersion.Split('\n')[0], inventory,
            warnings.Count == 0 ? null : string.Join("; ", warnings), catalog.Settings);
    }

    /// <summary>
    /// A digest of the database's schema, read before and after the dump: --single-transaction does not
    /// isolate DDL. A table altered in place (ALGORITHM=INSTANT or INPLACE) after the dump's snapshot is
    /// read with its new columns and its rows of before (a column dropped gone, one added at its
    /// default), without an error; views, routines, triggers and events are dumped as they are when the
    /// dump comes to them, so that one created meanwhile is in the dump but not in the counts taken
    /// before (and every restore's check would fail). Every column (name, position, type, nullability,
    /// default, extra, generation), each table's CREATE_TIME, which MariaDB sets at every ALTER (a
    /// column dropped and added back leaves the columns as they were), and each view's, routine's,
    /// trigger's and event's definition and times (a view's security, definer and character set too).
    /// </summary>
    private async Task<string> SchemaDigestAsync(string database, CancellationToken cancellationToken)
    {
        await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var command = new MySqlCommand(
            "SELECT 'column', TABLE_NAME, COLUMN_NAME, ORDINAL_POSITION, COLUMN_TYPE, IS_NULLABLE, COLUMN_DEFAULT, EXTRA, GENERATION_EXPRESSION "
            + "FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = @db AND BINARY TABLE_SCHEMA = @db "
            + "UNION ALL SELECT 'table', TABLE_NAME, NULL, NULL, NULL, NULL, NULL, NULL, CREATE_TIME "
            + "FROM information_schema.TABLES WHERE TABLE_SCHEMA = @db AND BINARY TABLE_SCHEMA = @db "
            + "UNION ALL SELECT 'view', TABLE_NAME, SECURITY_TYPE, NULL, MD5(VIEW_DEFINITION), DEFINER, CHECK_OPTION, CHARACTER_SET_CLIENT, COLLATION_CONNECTION "
            + "FROM information_schema.VIEWS WHERE TABLE_SCHEMA = @db AND BINARY TABLE_SCHEMA = @db "
            + "UNION ALL SELECT 'routine', ROUTINE_NAME, ROUTINE_TYPE, NULL, MD5(ROUTINE_DEFINITION), NULL, CREATED, LAST_ALTERED, NULL "
            + "FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = @db AND BINARY ROUTINE_SCHEMA = @db "
            + "UNION ALL SELECT 'trigger', TRIGGER_NAME, EVENT_OBJECT_TABLE, ACTION_ORDER, MD5(ACTION_STATEMENT), NULL, CREATED, NULL, NULL "
            + "FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = @db AND BINARY TRIGGER_SCHEMA = @db "
            + "UNION ALL SELECT 'event', EVENT_NAME, STATUS, NULL, MD5(EVENT_DEFINITION), NULL, CREATED, LAST_ALTERED, NULL "
            + "FROM information_schema.EVENTS WHERE EVENT_SCHEMA = @db AND BINARY EVENT_SCHEMA = @db "
            + "ORDER BY 1, BINARY 2, BINARY 3, 4", connection);
        command.Parameters.AddWithValue("@db", database);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        using var digest = System.Security.Cryptography.IncrementalHash.CreateHash(System.Security.Cryptography.HashAlgorithmName.SHA256);
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            for (var i = 0; i < reader.FieldCount; i++)
            {
                // Each field length-prefixed (NULL as -1): no two column lists give the same bytes.
                var field = reader.IsDBNull(i) ? null : Encoding.UTF8.GetBytes(Convert.ToString(reader.GetValue(i), CultureInfo.InvariantCulture)!);
                digest.AppendData(BitConverter.GetBytes(field?.Length ?? -1));
                digest.AppendData(field ?? []);
            }
        }
        return Convert.ToHexString(digest.GetHashAndReset());
    }

    /// <summary>MariaDB prints a FLOAT without a scale with 6 significant digits, and so does its dump: these columns (table.column).</summary>
    private async Task<List<string>> RoundedFloatColumnsAsync(string database, CancellationToken cancellationToken)
    {
        await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var command = new MySqlCommand(
            "SELECT CONCAT(TABLE_NAME, '.', COLUMN_NAME) FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = @db "
            + "AND DATA_TYPE = 'float' AND NUMERIC_SCALE IS NULL ORDER BY TABLE_NAME, ORDINAL_POSITION", connection);
        command.Parameters.AddWithValue("@db", database);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        var columns = new List<string>();
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            columns.Add(reader.GetString(0));
        }
        return columns;
    }

    /// <summary>What the catalog says just before the dump.</summary>
    private sealed record CatalogBeforeDump(
        Dictionary<string, string?> Engines,
        HashSet<string> Versioned,
        HashSet<string> TransactionPrecise,
        List<TableEngine> OutsideSnapshot,
        ObjectCounts Objects,
        DatabaseSettings Settings);

    /// <summary>mysqldump leaves the data of these engines out (it lives elsewhere): their rows cannot be compared.</summary>
    private static readonly HashSet<string> DataNotDumped = new(["MRG_MyISAM", "MRG_ISAM", "FEDERATED"], StringComparer.OrdinalIgnoreCase);

    private async Task<CatalogBeforeDump> ReadCatalogAsync(string database, bool mariaDb, CancellationToken cancellationToken)
    {
        await RequireWholeSelectsAsync(cancellationToken).ConfigureAwait(false);
        await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        var engines = new Dictionary<string, string?>(StringComparer.Ordinal);
        var versioned = new HashSet<string>(StringComparer.Ordinal);
        var outside = new List<TableEngine>();
        await using (var command = new MySqlCommand(
            "SELECT t.TABLE_NAME, t.TABLE_TYPE, t.ENGINE, e.TRANSACTIONS FROM information_schema.TABLES t "
            + "LEFT JOIN information_schema.ENGINES e ON e.ENGINE = t.ENGINE "
            + "WHERE t.TABLE_SCHEMA = @db AND t.TABLE_TYPE IN ('BASE TABLE', 'SYSTEM VERSIONED') ORDER BY t.TABLE_NAME", connection))
        {
            command.Parameters.AddWithValue("@db", database);
            await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                var name = reader.GetString(0);
                var engine = reader.IsDBNull(2) ? null : reader.GetString(2);
                engines[name] = engine;
                if (reader.GetString(1) == "SYSTEM VERSIONED")
                {
                    versioned.Add(name);
                }
                if (engine is not null && (reader.IsDBNull(3) || !string.Equals(reader.GetString(3), "YES", StringComparison.OrdinalIgnoreCase)))
                {
                    outside.Add(new TableEngine(name, engine));
                }
            }
        }
        await RequireReadableTablesAsync(connection, database, engines.Keys, cancellationToken).ConfigureAwait(false);
        if (mariaDb)
        {
            await RequireVisibleObjectsAsync(connection, database, engines.Keys, cancellationToken).ConfigureAwait(false);
        }
        var transactionPrecise = new HashSet<string>(StringComparer.Ordinal);
        if (mariaDb && versioned.Count > 0)
        {
            // Versioning by transaction id (a BIGINT row start) has no history mariadb-dump can write.
            await using var command = new MySqlCommand(
                "SELECT TABLE_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = @db "
                + "AND GENERATION_EXPRESSION = 'ROW START' AND DATA_TYPE = 'bigint'", connection);
            command.Parameters.AddWithValue("@db", database);
            await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                transactionPrecise.Add(reader.GetString(0));
            }
        }
        if (mariaDb)
        {
            await RefuseOracleModeObjectsAsync(connection, database, cancellationToken).ConfigureAwait(false);
        }
        await RefuseTablesOverOtherDatabasesAsync(connection, database, cancellationToken).ConfigureAwait(false);
        return new CatalogBeforeDump(engines, versioned, transactionPrecise, outside,
            await CountObjectsAsync(connection, database, cancellationToken).ConfigureAwait(false),
            await ReadSettingsAsync(connection, database, cancellationToken).ConfigureAwait(false));
    }

    /// <summary>
    /// The dump tool cannot set its sessions' sql_select_limit (no init command), so a server whose
    /// sessions start with one (its global default, or init_connect for accounts without SUPER) had
    /// it write that many rows (and columns) of each table, and leave out tables, views and routines
    /// past that many, and the backup said OK. Read from a session as the dump tool's starts.
    /// </summary>
    private async Task RequireWholeSelectsAsync(CancellationToken cancellationToken)
    {
        await using var connection = await OpenAsync(cancellationToken, sessionDefaults: false).ConfigureAwait(false);
        var limit = Convert.ToUInt64(await Scalar(connection, "SELECT @@session.sql_select_limit", cancellationToken).ConfigureAwait(false),
            CultureInfo.InvariantCulture);
        if (limit != ulong.MaxValue)
        {
            throw new OperationFailedException($"the server's sessions start with sql_select_limit = {limit} (its global default, or init_connect): "
                + $"the dump tool would write at most {limit} rows of each table and leave out tables, views and routines past {limit}; "
                + "set it back with SET GLOBAL sql_select_limit = DEFAULT, or out of init_connect");
        }
    }

    /// <summary>
    /// Every table can be read whole by this account. One it may see (through a database-level
    /// privilege such as SHOW VIEW) but not SELECT, or SELECT only some columns of, the dump tool and
    /// the parallel engine wrote without its rows or its other columns, and the backup said OK.
    /// </summary>
    private static async Task RequireReadableTablesAsync(MySqlConnection connection, string database, IEnumerable<string> tables, CancellationToken cancellationToken)
    {
        foreach (var batch in tables.Chunk(100))
        {
            try
            {
                await using var command = new MySqlCommand(
                    string.Join("; ", batch.Select(t => $"SELECT * FROM {QuoteIdentifier(database)}.{QuoteIdentifier(t)} LIMIT 0")), connection);
                await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
                while (await reader.NextResultAsync(cancellationToken).ConfigureAwait(false))
                {
                }
            }
            catch (MySqlException e) when (e.ErrorCode is MySqlErrorCode.TableAccessDenied or MySqlErrorCode.ColumnAccessDenied)
            {
                throw new OperationFailedException($"the backup's account may not read every table whole ({e.Message}): their rows would be missing; "
                    + "grant it SELECT on the database", e);
            }
        }
    }

    /// <summary>
    /// What MariaDB hides from an account is held by the backup's: SELECT on the whole database (with
    /// SELECT on some tables only, the others, which it holds nothing on, are not even listed to it),
    /// TRIGGER on every table (the server lists only the triggers of tables it holds TRIGGER on), and
    /// mysql.proc (the routines it neither defined nor holds a privilege on are not listed). Without
    /// them both engines stored the database without those tables, triggers or routines, saying OK.
    /// </summary>
    private static async Task RequireVisibleObjectsAsync(MySqlConnection connection, string database, IEnumerable<string> tables, CancellationToken cancellationToken)
    {
        var grants = await MariaDbGrants.ReadAsync(connection, cancellationToken).ConfigureAwait(false);
        if (!grants.OnDatabase("SELECT", database))
        {
            throw new OperationFailedException($"the backup's account holds SELECT on some tables of {QuoteIdentifier(database)} only (or not in every "
                + "database grant that matches its name, of which the server applies one): the server does not even list the tables it holds nothing on, "
                + "so they would be missing from the backup; grant it SELECT on the database");
        }
        if (!grants.OnDatabase("TRIGGER", database)
            && tables.Except(grants.OnTables("TRIGGER", database), StringComparer.Ordinal).FirstOrDefault() is { } missing)
        {
            throw new OperationFailedException($"the backup's account has no TRIGGER privilege on table {QuoteIdentifier(missing)}: the server hides the triggers of "
                + "such tables, so they would be missing from the backup; grant it TRIGGER on the database");
        }
        if (!await AllowedAsync(connection, MariaDbGrants.ReadRoutines, cancellationToken).ConfigureAwait(false))
        {
            throw new OperationFailedException("the backup's account may not read mysql.proc, where MariaDB keeps routines: the server does not list the "
                + "routines of other definers to it, so they would be missing from the backup; grant it SELECT on mysql.proc");
        }
    }

    /// <summary>Whether this account may run <paramref name="sql"/>: false when the server denies it access.</summary>
    internal static async Task<bool> AllowedAsync(MySqlConnection connection, string sql, CancellationToken cancellationToken)
    {
        try
        {
            await Execute(connection, sql, cancellationToken).ConfigureAwait(false);
            return true;
        }
        catch (OperationFailedException e) when (e.InnerException is MySqlException
            { ErrorCode: MySqlErrorCode.TableAccessDenied or MySqlErrorCode.DatabaseAccessDenied or MySqlErrorCode.SpecifiedAccessDeniedError })
        {
            return false;
        }
    }

    /// <summary>
    /// A routine, trigger or event created under sql_mode=ORACLE (MariaDB) has a body the restore's filter
    /// cannot follow (AS declarations before BEGIN, WHILE ... LOOP, FOR i IN 1..3 LOOP): the restore would refuse
    /// it, so it is the backup that fails, naming them, rather than one that can never be restored.
    /// </summary>
    private static async Task RefuseOracleModeObjectsAsync(MySqlConnection connection, string database, CancellationToken cancellationToken)
    {
        var names = new List<string>();
        await using var command = new MySqlCommand(
            "SELECT CONCAT(LOWER(ROUTINE_TYPE), ' ', ROUTINE_NAME) FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = @db AND FIND_IN_SET('ORACLE', SQL_MODE) "
            + "UNION ALL SELECT CONCAT('trigger ', TRIGGER_NAME) FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = @db AND BINARY TRIGGER_SCHEMA = @db AND FIND_IN_SET('ORACLE', SQL_MODE) "
            + "UNION ALL SELECT CONCAT('event ', EVENT_NAME) FROM information_schema.EVENTS WHERE EVENT_SCHEMA = @db AND BINARY EVENT_SCHEMA = @db AND FIND_IN_SET('ORACLE', SQL_MODE)",
            connection);
        command.Parameters.AddWithValue("@db", database);
        await using (var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false))
        {
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                names.Add(reader.GetString(0));
            }
        }
        if (names.Count > 0)
        {
            throw new OperationFailedException(
                $"{string.Join(", ", names.Order(StringComparer.Ordinal).Take(10))}{(names.Count > 10 ? ", ..." : "")} "
                + $"{(names.Count == 1 ? "was" : "were")} created under sql_mode=ORACLE, whose syntax a restore cannot follow safely; not backed up "
                + "(re-create them without ORACLE in sql_mode, or back the database up with mariadb-dump yourself)");
        }
    }

    /// <summary>
    /// A table whose column default draws from another database's sequence, or a MERGE table over
    /// another database's tables: the restore's filter refuses it (the copy would write there), so it
    /// is the backup that fails, naming them, as for sql_mode=ORACLE, rather than one no restore takes.
    /// </summary>
    private static async Task RefuseTablesOverOtherDatabasesAsync(MySqlConnection connection, string database, CancellationToken cancellationToken)
    {
        // The server writes a default's sequence qualified, nextval(`db`.`s`), as the dump will; a MERGE table's UNION is in its SHOW CREATE TABLE only.
        var definitions = new List<(string Table, string? Text)>();
        await using (var command = new MySqlCommand(
            "SELECT TABLE_NAME, COLUMN_DEFAULT FROM information_schema.COLUMNS "
            + "WHERE TABLE_SCHEMA = @db AND BINARY TABLE_SCHEMA = @db AND COLUMN_DEFAULT LIKE '%.%' "
            + "UNION ALL SELECT TABLE_NAME, NULL FROM information_schema.TABLES "
            + "WHERE TABLE_SCHEMA = @db AND BINARY TABLE_SCHEMA = @db AND ENGINE IN ('MRG_MyISAM', 'MRG_ISAM')", connection))
        {
            command.Parameters.AddWithValue("@db", database);
            await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                definitions.Add((reader.GetString(0), reader.IsDBNull(1) ? null : reader.GetString(1)));
            }
        }
        var tables = new SortedSet<string>(StringComparer.Ordinal);
        var others = new SortedSet<string>(StringComparer.Ordinal);
        foreach (var (table, text) in definitions)
        {
            var definition = text;
            if (definition is null)
            {
                await using var show = new MySqlCommand($"SHOW CREATE TABLE {QuoteIdentifier(database)}.{QuoteIdentifier(table)}", connection);
                await using var reader = await show.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
                definition = await reader.ReadAsync(cancellationToken).ConfigureAwait(false) ? reader.GetString(1) : "";
            }
            // As the restore's filter: its own database is the target's, a system schema's name no other database.
            foreach (var other in QualifiersOf(definition).Where(q => q != database && !MySqlDumpFilter.IsRowsOrSystemSchema(Encoding.UTF8.GetBytes(q))))
            {
                tables.Add(table);
                others.Add(other);
            }
        }
        if (tables.Count > 0)
        {
            throw new OperationFailedException(
                $"{string.Join(", ", tables.Take(10).Select(t => $"table {t}"))}{(tables.Count > 10 ? ", ..." : "")} "
                + $"{(tables.Count == 1 ? "draws a column default from, or is a MERGE table over," : "draw column defaults from, or are MERGE tables over,")} "
                + $"another database ({string.Join(", ", others.Take(10))}), which a restore refuses (the copy would write there); not backed up "
                + "(make them use this database's own sequences and tables, or back the database up with mariadb-dump yourself)");
        }
    }

    /// <summary>The quoted names a definition, as the server writes it, has before a '.' (`db`.`s`); strings skipped.</summary>
    internal static IEnumerable<string> QualifiersOf(string text)
    {
        var i = 0;
        while (i < text.Length)
        {
            var c = text[i++];
            if (c == '\'')
            {
                // The server writes a quote in a string as '' and a backslash as \\.
                while (i < text.Length)
                {
                    var s = text[i++];
                    if (s == '\\')
                    {
                        i++;
                    }
                    else if (s == '\'')
                    {
                        if (i == text.Length || text[i] != '\'')
                        {
                            break;
                        }
                        i++;
                    }
                }
            }
            else if (c is '`' or '"')
            {
                var name = new System.Text.StringBuilder();
                while (i < text.Length)
                {
                    var n = text[i++];
                    if (n == c)
                    {
                        if (i == text.Length || text[i] != c)
                        {
                            break;
                        }
                        i++;
                    }
                    name.Append(n);
                }
                if (i < text.Length && text[i] == '.')
                {
                    yield return name.ToString();
                }
            }
        }
    }

    /// <summary>
    /// Whether the backup keeps system-versioned history (where the server can load it back), and
    /// the warnings about what the catalog shows: history left out, tables outside the snapshot.
    /// </summary>
    private static (bool WithHistory, List<string> Warnings) CatalogWarnings(
        string database, CatalogBeforeDump catalog, ServerInfo server, bool toolIsMariaDb, string toolVersion)
    {
        var warnings = new List<string>();
        var withHistory = false;
        if (catalog.Versioned.Count > 0)
        {
            if (HistoryProblem(catalog, server, toolIsMariaDb, toolVersion) is { } problem)
            {
                warnings.Add($"{database}: the history of system-versioned tables {string.Join(", ", catalog.Versioned.Order(StringComparer.Ordinal))} "
                    + $"is not in the backup ({problem}); only their current rows are");
            }
            else
            {
                withHistory = true;
            }
        }
        if (catalog.OutsideSnapshot.Count > 0)
        {
            warnings.Add($"{database}: tables outside the dump's snapshot (engine not transactional; their data may be from another moment "
                + $"than the rest): {string.Join(", ", catalog.OutsideSnapshot.Select(t => $"{t.Name} ({t.Engine})"))}");
        }
        return (withHistory, warnings);
    }

    /// <summary>Why the history of system-versioned tables cannot go into this dump; null when it can.</summary>
    private static string? HistoryProblem(CatalogBeforeDump catalog, ServerInfo server, bool toolIsMariaDb, string toolVersion)
    {
        // --dump-history, and system_versioning_insert_history to load it, came with MariaDB 10.11.
        if (!toolIsMariaDb || MariaDbVersion().Match(toolVersion) is not { Success: true } tool || !AtLeast10_11(tool.Groups[1].Value, tool.Groups[2].Value))
        {
            return "the dump tool is not mariadb-dump 10.11 or newer";
        }
        var serverVersion = server.Version.Split('.');
        if (server.Flavor != "MariaDB" || serverVersion.Length < 2 || !AtLeast10_11(serverVersion[0], serverVersion[1]))
        {
            return $"the server is {server.Flavor} {server.Version}, not MariaDB 10.11 or newer";
        }
        if (catalog.TransactionPrecise.Count > 0)
        {
            return $"mariadb-dump cannot dump transaction-precise history ({string.Join(", ", catalog.TransactionPrecise.Order(StringComparer.Ordinal))})";
        }
        return null;

        static bool AtLeast10_11(string major, string minor) =>
            int.TryParse(major, CultureInfo.InvariantCulture, out var a) && int.TryParse(minor, CultureInfo.InvariantCulture, out var b)
            && (a > 10 || (a == 10 && b >= 11));
    }

    [GeneratedRegex(@"(\d+)\.(\d+)\.\d+-MariaDB")]
    private static partial Regex MariaDbVersion();

    /// <summary>
    /// The manifest's tables are the ones the dump holds (what a restore creates), with the rows
    /// counted in it. A table the catalog listed but the dump does not hold was dropped meanwhile
    /// (said in a warning); one only in the dump was created meanwhile (it is in the backup).
    /// </summary>
    private static DatabaseInventory Reconcile(string database, CatalogBeforeDump catalog, MySqlRowCounter counter, bool withHistory, List<string> warnings)
    {
        var tables = new List<TableRows>();
        foreach (var (name, rows) in counter.Rows.OrderBy(t => t.Key, StringComparer.Ordinal))
        {
            catalog.Engines.TryGetValue(name, out var engine);
            var exact = engine is null || !DataNotDumped.Contains(engine);
            tables.Add(new TableRows(name, rows, exact, withHistory && catalog.Versioned.Contains(name) ? true : null));
        }
        var gone = catalog.Engines.Keys.Where(name => !counter.Rows.ContainsKey(name)).Order(StringComparer.Ordinal).ToList();
        if (gone.Count > 0)
        {
            warnings.Add($"{database}: tables dropped while the backup ran are not in it: {string.Join(", ", gone)}");
        }
        var sequences = counter.Sequences.OrderBy(s => s.Key, StringComparer.Ordinal).Select(s => new SequenceValue(s.Key, s.Value, Exact: true)).ToList();
        var outside = catalog.OutsideSnapshot.Where(t => counter.Rows.ContainsKey(t.Name)).ToList();
        return new DatabaseInventory(tables, sequences, catalog.Objects, outside.Count == 0 ? null : outside);
    }

    /// <summary>
    /// Exact counts of a database nobody else is writing (a restored copy), as the dump counts
    /// them: every row version of a system-versioned table, each sequence's next value.
    /// </summary>
    public async Task<DatabaseInventory> InventoryAsync(
        string database, IReadOnlyDictionary<TableKey, long>? loadedRows, CancellationToken cancellationToken)
    {
        await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await Execute(connection, "START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY", cancellationToken).ConfigureAwait(false);
        var tables = new List<(string Name, string Type)>();
        await using (var command = new MySqlCommand(
            "SELECT TABLE_NAME, TABLE_TYPE FROM information_schema.TABLES WHERE TABLE_SCHEMA = @db "
            + "AND TABLE_TYPE IN ('BASE TABLE', 'SYSTEM VERSIONED', 'SEQUENCE') ORDER BY TABLE_NAME",
            connection))
        {
            command.Parameters.AddWithValue("@db", database);
            await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                tables.Add((reader.GetString(0), reader.GetString(1)));
            }
        }
        var rows = new List<TableRows>();
        var sequences = new List<SequenceValue>();
        foreach (var (table, type) in tables)
        {
            var name = $"{QuoteIdentifier(database)}.{QuoteIdentifier(table)}";
            if (type == "SEQUENCE")
            {
                var next = await Scalar(connection, $"SELECT next_not_cached_value FROM {name}", cancellationToken).ConfigureAwait(false);
                sequences.Add(new SequenceValue(table, Convert.ToInt64(next, CultureInfo.InvariantCulture)));
                continue;
            }
            // A system-versioned table's count holds its history, which the load's count does not tell apart.
            if (type == "BASE TABLE" && loadedRows is not null && loadedRows.TryGetValue(new TableKey("", table), out var loaded))
            {
                rows.Add(new TableRows(table, loaded, Exact: true));
                continue;
            }
            var count = await Scalar(connection,
                $"SELECT COUNT(*) FROM {name}{(type == "SYSTEM VERSIONED" ? " FOR SYSTEM_TIME ALL" : "")}", cancellationToken).ConfigureAwait(false);
            rows.Add(new TableRows(table, Convert.ToInt64(count, CultureInfo.InvariantCulture), Exact: true));
        }
        var objects = await CountObjectsAsync(connection, database, cancellationToken).ConfigureAwait(false);
        await Execute(connection, "COMMIT", cancellationToken).ConfigureAwait(false);
        return new DatabaseInventory(rows, sequences, objects);
    }

    private static async Task<ObjectCounts> CountObjectsAsync(MySqlConnection connection, string database, CancellationToken cancellationToken)
    {
        return new ObjectCounts(
            Views: await CountAsync("VIEWS", "TABLE_SCHEMA").ConfigureAwait(false),
            Routines: await CountAsync("ROUTINES", "ROUTINE_SCHEMA").ConfigureAwait(false),
            Triggers: await CountAsync("TRIGGERS", "TRIGGER_SCHEMA").ConfigureAwait(false),
            // A one-time event whose time has passed, kept only because it is disabled, is dropped
            // by the server as soon as a restore creates it (ON COMPLETION NOT PRESERVE): not counted.
            Events: await CountAsync("EVENTS", "EVENT_SCHEMA",
                " AND NOT (EVENT_TYPE = 'ONE TIME' AND ON_COMPLETION = 'NOT PRESERVE' AND EXECUTE_AT <= CONVERT_TZ(NOW(), @@session.time_zone, TIME_ZONE))")
                .ConfigureAwait(false));

        // Both comparisons: the first lets the server read only this database, the second (exact
        // bytes) leaves out one whose name differs only in case.
        async Task<int> CountAsync(string view, string schemaColumn, string also = "") => Convert.ToInt32(
            await Scalar(connection, $"SELECT COUNT(*) FROM information_schema.{view} WHERE {schemaColumn} = @db AND BINARY {schemaColumn} = @db{also}",
                cancellationToken, database).ConfigureAwait(false),
            CultureInfo.InvariantCulture);
    }

    /// <summary>The database's default character set and collation (and its comment, on MariaDB).</summary>
    private static async Task<DatabaseSettings> ReadSettingsAsync(MySqlConnection connection, string database, CancellationToken cancellationToken)
    {
        // SELECT *: SCHEMA_COMMENT exists on MariaDB 10.5+ only.
        await using var command = new MySqlCommand("SELECT * FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = @db", connection);
        command.Parameters.AddWithValue("@db", database);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        if (!await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            throw new OperationFailedException($"database '{database}' does not exist");
        }
        string? Column(string name)
        {
            for (var i = 0; i < reader.FieldCount; i++)
            {
                if (string.Equals(reader.GetName(i), name, StringComparison.OrdinalIgnoreCase))
                {
                    return reader.IsDBNull(i) ? null : reader.GetString(i);
                }
            }
            return null;
        }
        return new DatabaseSettings
        {
            CharacterSet = Column("DEFAULT_CHARACTER_SET_NAME"),
            Collation = Column("DEFAULT_COLLATION_NAME"),
            Comment = Column("SCHEMA_COMMENT") is { Length: > 0 } comment ? comment : null,
        };
    }

    public async Task<TargetState> GetTargetStateAsync(string database, CancellationToken cancellationToken)
    {
        await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        var exists = await Scalar(connection,
            "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = @db", cancellationToken, database).ConfigureAwait(false);
        if (Convert.ToInt64(exists, System.Globalization.CultureInfo.InvariantCulture) == 0)
        {
            return new TargetState(false, 0);
        }
        var others = await Scalar(connection,
            "SELECT (SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = @db AND TABLE_TYPE NOT IN ('BASE TABLE', 'SYSTEM VERSIONED'))"
            + " + (SELECT COUNT(*) FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = @db)"
            + " + (SELECT COUNT(*) FROM information_schema.EVENTS WHERE EVENT_SCHEMA = @db AND BINARY EVENT_SCHEMA = @db)", cancellationToken, database).ConfigureAwait(false);
        return new TargetState(true, await CountTablesAsync(connection, database, cancellationToken).ConfigureAwait(false),
            Convert.ToInt32(others, System.Globalization.CultureInfo.InvariantCulture));
    }

    public async Task<IReadOnlyList<string>> CreateDatabaseAsync(string database, DatabaseSettings? settings, bool trustBackup, CancellationToken cancellationToken)
    {
        await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        var characterSet = settings?.CharacterSet;
        var collation = settings?.Collation;
        if (characterSet is null && collation is null)
        {
            characterSet = "utf8mb4";
            collation = "utf8mb4_unicode_ci";
        }
        // Names from a manifest: spliced into the statement only once they are plain names this
        // server knows (character sets and collations cannot be bound as parameters).
        var sql = new StringBuilder($"CREATE DATABASE {QuoteIdentifier(database)}");
        if (characterSet is not null)
        {
            RequirePlainName("character set", characterSet);
            if (!await ExistsAsync("SELECT COUNT(*) FROM information_schema.CHARACTER_SETS WHERE CHARACTER_SET_NAME = @db", characterSet)
                .ConfigureAwait(false))
            {
                throw new OperationFailedException($"the backup's character set '{characterSet}' is not known to {Instance.Name}");
            }
            sql.Append(" CHARACTER SET ").Append(characterSet);
        }
        if (collation is not null)
        {
            RequirePlainName("collation", collation);
            if (!await CollationExistsAsync(connection, collation, characterSet, cancellationToken).ConfigureAwait(false))
            {
                throw new OperationFailedException(
                    $"the backup's collation '{collation}'{(characterSet is null ? "" : $" (character set {characterSet})")} is not known to {Instance.Name}");
            }
            sql.Append(" COLLATE ").Append(collation);
        }
        await using var command = new MySqlCommand { Connection = connection };
        if (settings?.Comment is { } comment && (await ServerAsync(cancellationToken).ConfigureAwait(false)).Flavor == "MariaDB")
        {
            // A parameter: the driver quotes it by the server's rules (backslashes included).
            sql.Append(" COMMENT @comment");
            command.Parameters.AddWithValue("@comment", comment);
        }
        command.CommandText = sql.ToString();
        if ((await ServerAsync(cancellationToken).ConfigureAwait(false)).Flavor == "MariaDB"
            && await MariaDbGrants.ReadAsync(connection, cancellationToken).ConfigureAwait(false) is var grants
            && grants.OnDatabase("CREATE", database) && !grants.OnDatabase("DROP", database))
        {
            // It could be created and loaded, and then not removed: every later restore into the target failed on it.
            throw new HostFaultException($"the account may not drop database '{database}' once it is done with it: a restore needs all privileges "
                + @"on the databases it stages in and moves replaced tables to, `vya\_%`");
        }
        try
        {
            await Execute(command, cancellationToken).ConfigureAwait(false);
        }
        catch (OperationFailedException e) when (e.InnerException is MySqlException { ErrorCode: MySqlErrorCode.DatabaseAccessDenied })
        {
            // The account's, not the backup's: a verify did not check the backup.
            throw new HostFaultException($"the account may not create database '{database}' ({e.Message}): a restore needs all privileges "
                + @"on the databases it stages in and moves replaced tables to, `vya\_%`", e);
        }
        return [];

        async Task<bool> ExistsAsync(string query, string name) =>
            Convert.ToInt64(await Scalar(connection, query, cancellationToken, name).ConfigureAwait(false), CultureInfo.InvariantCulture) > 0;
    }

    private static void RequirePlainName(string what, string name)
    {
        if (name.Length is 0 or > 64 || !name.All(c => char.IsAsciiLetterOrDigit(c) || c == '_'))
        {
            throw new OperationFailedException($"the backup's manifest names an invalid {what}: '{DatabaseSettings.Shown(name)}'");
        }
    }

    /// <summary>A collation of the character set (any, when null): information_schema.COLLATIONS, or MariaDB 10.10+'s full names (utf8mb4_uca1400_ai_ci).</summary>
    private static async Task<bool> CollationExistsAsync(MySqlConnection connection, string collation, string? characterSet, CancellationToken cancellationToken)
    {
        foreach (var (table, column) in new[] { ("COLLATIONS", "COLLATION_NAME"), ("COLLATION_CHARACTER_SET_APPLICABILITY", "FULL_COLLATION_NAME") })
        {
            await using var command = new MySqlCommand(
                $"SELECT COUNT(*) FROM information_schema.{table} WHERE {column} = @co AND (@cs IS NULL OR CHARACTER_SET_NAME = @cs)", connection);
            command.Parameters.AddWithValue("@co", collation);
            command.Parameters.AddWithValue("@cs", characterSet);
            try
            {
                if (Convert.ToInt64(await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false), CultureInfo.InvariantCulture) > 0)
                {
                    return true;
                }
            }
            catch (MySqlException)
            {
                // No FULL_COLLATION_NAME column (MySQL, MariaDB before 10.10): only the first list counts.
            }
        }
        return false;
    }

    public async Task DropDatabaseAsync(string database, CancellationToken cancellationToken)
    {
        // Only ever a database of ours (staging, scratch): a session still in it is a client whose
        // vya-backupdb was killed, and would hold the DROP up.
        await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await MySqlSwap.KillSessionsAsync(connection, database, cancellationToken).ConfigureAwait(false);
        // A cleanup after a failure runs without the run's token: a lock it still meets fails it after a minute.
        await Execute(connection, "SET SESSION lock_wait_timeout = 60", cancellationToken).ConfigureAwait(false);
        await Execute(connection, $"DROP DATABASE IF EXISTS {QuoteIdentifier(database)}", cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Why a load's session was closed by the server, most often: a row or statement over its
    /// max_allowed_packet (the driver and the client only say the connection was lost).
    /// </summary>
    internal async Task<string> PacketHintAsync(CancellationToken cancellationToken)
    {
        try
        {
            await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
            var limit = Convert.ToInt64(await Scalar(connection, "SELECT @@global.max_allowed_packet", cancellationToken).ConfigureAwait(false),
                CultureInfo.InvariantCulture);
            return $" (the server closed the session, as it does when sent a row or statement over its max_allowed_packet, {limit} bytes here: "
                + "raise it above the backup's largest row)";
        }
        catch (OperationFailedException)
        {
            return "";
        }
    }

    public Task<LoadResult> RestoreAsync(string database, Stream input, RestoreOptions options, CancellationToken cancellationToken) =>
        RestoreThroughClientAsync(database, input, options, rowsFollow: false, cancellationToken);

    /// <summary>A plain dump, or a backup set's schema.sql (<paramref name="rowsFollow"/>) or post.sql, through the filter into the client.</summary>
    private async Task<LoadResult> RestoreThroughClientAsync(string database, Stream input, RestoreOptions options, bool rowsFollow, CancellationToken cancellationToken)
    {
        var tool = await ClientToolAsync(cancellationToken).ConfigureAwait(false);
        using var optionFile = OptionFile();
        var arguments = ClientArguments(optionFile, database);
        // Events are created disabled in the staging database, so that none runs there; the swap
        // enables the ones asked for once they are in place. The filter reads the dump as the server
        // will, from the sql_mode the client's session starts with, and refuses an INSERT longer than the
        // server's max_allowed_packet (which the server would refuse only after the client had held it whole).
        if (_sessionSqlMode is null)
        {
            await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
            _sessionSqlMode = (string)(await Scalar(connection, "SELECT @@SESSION.sql_mode", cancellationToken).ConfigureAwait(false))!;
            _maxAllowedPacket = Convert.ToInt64(await Scalar(connection, "SELECT @@GLOBAL.max_allowed_packet", cancellationToken).ConfigureAwait(false),
                CultureInfo.InvariantCulture);
        }
        var filter = new MySqlDumpFilter(database,
            new MySqlFilterOptions(options.SourceDatabase, options.Definer, KeepEventsEnabled: false, ServerSqlMode: _sessionSqlMode, RowsFollow: rowsFollow,
                AllowDataDirectory: options.AllowDataDirectory, MaxAllowedPacket: _maxAllowedPacket,
                Server: await ServerAsync(cancellationToken).ConfigureAwait(false)));
        try
        {
            await ChildProcess.RunAsync(tool, arguments, null,
                (stdin, ct) => filter.CopyAsync(input, stdin, ct), null, cancellationToken).ConfigureAwait(false);
        }
        catch (OperationFailedException e) when (options.Definer == DefinerMode.Keep && e.Message.Contains("ERROR 1227", StringComparison.Ordinal))
        {
            throw new OperationFailedException(
                $"{e.Message}; a view, trigger, routine or event keeps the DEFINER it was dumped with, which only an account with "
                + "SUPER or SET USER may create: restore with --definer strip (or definer: strip) to make the restoring account its definer", e);
        }
        catch (OperationFailedException e) when (e.Message.Contains("ERROR 2006", StringComparison.Ordinal)
            || e.Message.Contains("ERROR 2013", StringComparison.Ordinal) || e.Message.Contains("ERROR 1153", StringComparison.Ordinal))
        {
            throw new OperationFailedException(e.Message + await PacketHintAsync(cancellationToken).ConfigureAwait(false), e);
        }
        // The filter's other qualifiers include table names and aliases (t.c): only databases count, whether
        // this server has them or not (a copy's trigger may write into one missing here), and the target always.
        var databases = (await ProbeAsync(cancellationToken).ConfigureAwait(false)).Databases;
        var usedAsDatabases = filter.DatabaseQualifiers;
        var others = filter.OtherDatabaseQualifiers
            .Where(q => q != database && q != filter.SourceDatabase
                && (q == options.Target || databases.Contains(q, StringComparer.Ordinal) || usedAsDatabases.Contains(q))).ToList();
        var table = rowsFollow ? null : await TableNamedLikeSourceAsync(database, filter.SourceDatabase, cancellationToken).ConfigureAwait(false);
        return new LoadResult(filter.EndedWithCompletionTrailer, filter.EnabledEvents, others,
            Warnings: table is not null
                ? [$"the backup has a table named like its database ('{table}'): the filter points every {table}.x in views, triggers, routines "
                    + $"and events at the restored database, {table}.column too, so those that read that table's columns by its name need checking"]
                : filter.SourceNameOfItsOwn && filter.RewrittenQualifiers > 0
                ? [$"the backup's views, triggers, routines or events use its database's name ('{filter.SourceDatabase}') as a name of their own "
                    + $"(an alias): the filter points every {filter.SourceDatabase}.x at the restored database, {filter.SourceDatabase}.column too, "
                    + "so those that qualify columns by that name need checking"]
                : null);
    }

    /// <summary>
    /// A table of the loaded database named like the backup's source: the filter cannot tell its
    /// name from the database's in source.x, and points both at the target.
    /// </summary>
    private async Task<string?> TableNamedLikeSourceAsync(string database, string? source, CancellationToken cancellationToken)
    {
        if (source is null)
        {
            return null;
        }
        await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var command = new MySqlCommand(
            "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = @db AND TABLE_NAME = @source", connection);
        command.Parameters.AddWithValue("@db", database);
        command.Parameters.AddWithValue("@source", source);
        return await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) as string;
    }

    public async Task<IAsyncDisposable> LockRestoreAsync(string target, CancellationToken cancellationToken)
    {
        // A named lock lives in its session: the server releases it when this process dies.
        var name = "vya-backupdb restore " + Convert.ToHexStringLower(RestoreStaging.LockKey(target))[..32];
        var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (Convert.ToInt64(await Scalar(connection, "SELECT GET_LOCK(@db, 0)", cancellationToken, name).ConfigureAwait(false),
                System.Globalization.CultureInfo.InvariantCulture) == 1)
            {
                return connection;
            }
            var holder = await Scalar(connection,
                "SELECT CONCAT('server connection ', ID, ' from ', HOST) FROM information_schema.PROCESSLIST WHERE ID = IS_USED_LOCK(@db)",
                cancellationToken, name).ConfigureAwait(false) as string;
            throw new LockedException($"another restore into '{target}' is running on {Instance.Name}" + (holder is null ? "" : $" ({holder})"));
        }
        catch
        {
            await connection.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>Sessions in MySQL block a swap only while they hold table locks; the swap waits for them, bounded.</summary>
    public Task<BlockingSessions> CountBlockingSessionsAsync(string database, CancellationToken cancellationToken) => Task.FromResult(new BlockingSessions(0, 0));

    public async Task<IReadOnlyList<string>> SwapAsync(string staging, string target, SwapOptions options, CancellationToken cancellationToken)
    {
        await using var connection = await OpenAsync(cancellationToken, allowUserVariables: true).ConfigureAwait(false);
        // A swap blocked by another session's open transaction fails after lock_wait_seconds, target unchanged.
        await Execute(connection, $"SET SESSION lock_wait_timeout = {Instance.LockWaitSeconds}", cancellationToken).ConfigureAwait(false);
        var mariaDb = await ProbeFlavorAsync(cancellationToken).ConfigureAwait(false) == "MariaDB";
        return await new MySqlSwap(connection, staging, target, Instance.LockWaitSeconds, mariaDb).RunAsync(options, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Backtick quoting, backticks doubled: the server's rule for identifiers.</summary>
    public static string QuoteIdentifier(string name) => "`" + name.Replace("`", "``", StringComparison.Ordinal) + "`";

    private async Task<ServerInfo> ServerAsync(CancellationToken cancellationToken) =>
        _server ??= await ProbeAsync(cancellationToken).ConfigureAwait(false);

    private async Task<string> ProbeFlavorAsync(CancellationToken cancellationToken) =>
        (await ServerAsync(cancellationToken).ConfigureAwait(false)).Flavor;

    private string FindTool(string[] names) =>
        ToolLocator.Find(Instance.ToolsDir, names)
        ?? throw new OperationFailedException(
            $"none of {string.Join(", ", names)} found in "
            + (Instance.ToolsDir is { } dir ? $"tools_dir {dir}{ToolLocator.Missing(dir)}" : "PATH; install mariadb-client or mysql-client"));

    /// <summary>The command-line client of the server's flavor, which every restore feeds.</summary>
    private async Task<string> ClientToolAsync(CancellationToken cancellationToken) =>
        FindTool((await ProbeFlavorAsync(cancellationToken).ConfigureAwait(false)) == "MariaDB" ? ["mariadb", "mysql"] : ["mysql", "mariadb"]);

    private static List<string> ClientArguments(SecretFile optionFile, string database) =>
    [
        $"--defaults-file={optionFile.Path}",
        // --binary-mode: NUL bytes and \r\n in old dumps' strings reach the server unchanged,
        // and the client's own commands (system, source, tee, ...) are not interpreted.
        // --local-infile=0: a LOAD DATA LOCAL in a planted file cannot read the host's files.
        // --comments: comments reach the server as dumped (without it the client strips them, and a
        // /* */ inside mysqldump's /*!50003 ... */ cuts a trigger or event short); MySqlDumpFilter
        // follows where this client's reading of comments and the server's differ.
        "--binary-mode", "--comments", "--local-infile=0", "--max-allowed-packet=1G", "--default-character-set=utf8mb4",
        $"--database={database}",
    ];

    private SecretFile OptionFile()
    {
        var content = new StringBuilder("[client]\n")
            .Append("host=").Append(Instance.Host).Append('\n')
            .Append("port=").Append(Instance.Port).Append('\n')
            .Append("user=").Append(OptionValue(Instance.User)).Append('\n')
            .Append("protocol=tcp\n");
        if (Instance.Password.Resolve() is { } password)
        {
            content.Append("password=").Append(OptionValue(password)).Append('\n');
        }
        // Read by the mariadb client alone (not mariadb-dump, not MySQL's client, which never echoes): a
        // statement the server refuses is not printed into the error, which may be a megabyte of rows and
        // goes to logs and notifications. loose-: a client too old to know the option goes on.
        content.Append("[mariadb-client]\nloose-skip-print-query-on-error\n");
        // Read by the command-line clients (MariaDB's and MySQL's) that restores feed; the dump tools
        // know no such option (see RequireWholeSelectsAsync).
        content.Append("[mysql]\ninit-command=").Append(OptionValue($"{SessionDefaults} {NoCheckConstraints}")).Append('\n');
        return new SecretFile("client.cnf", content.ToString());
    }

    /// <summary>
    /// Option-file value: double-quoted, backslash and quote escaped, and line breaks as \n and \r
    /// (a raw one would end the value and start a line of options of its own).
    /// </summary>
    private static string OptionValue(string value) =>
        "\"" + value.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal)
            .Replace("\n", "\\n", StringComparison.Ordinal).Replace("\r", "\\r", StringComparison.Ordinal) + "\"";

    /// <summary>
    /// What every session of ours (the driver's and the client tools') sets first: a server whose
    /// defaults say otherwise would have a restore's loads never committed (autocommit 0: rolled
    /// back when the session closes, after the swap), a listing or a dump of every table cut to N
    /// rows (sql_select_limit: mariadb-dump too), or long reads killed (MariaDB's max_statement_time). Our queries read
    /// names as SHOW GRANTS and SHOW CREATE quote them (sql_quote_show_create), and take '' for a string, not for NULL
    /// (MariaDB's EMPTY_STRING_IS_NULL).
    /// </summary>
    private const string SessionDefaults =
        "SET SESSION autocommit = 1, sql_select_limit = 18446744073709551615, sql_quote_show_create = 1, "
        + "sql_mode = TRIM(BOTH ',' FROM REPLACE(CONCAT(',', @@SESSION.sql_mode, ','), ',EMPTY_STRING_IS_NULL,', ',')) "
        + "/*M!100108 , max_statement_time = 0 */";

    /// <summary>
    /// A restore's sessions load rows as the source held them, and MariaDB keeps rows a CHECK constraint added later
    /// (under check_constraint_checks = 0) refuses: those are checked no more than foreign keys are. MySQL knows no such
    /// setting (the comment is MariaDB's alone).
    /// </summary>
    private const string NoCheckConstraints = "/*M!100201 , check_constraint_checks = 0 */";

    /// <summary>ER_MUST_CHANGE_PASSWORD: "You must SET PASSWORD before executing this statement".</summary>
    private const int MustChangePassword = 1820;

    /// <param name="sessionDefaults">Set <see cref="SessionDefaults"/> (every session of ours but the one that reads what the server's give).</param>
    private async Task<MySqlConnection> OpenAsync(
        CancellationToken cancellationToken, bool allowUserVariables = false, bool loadLocalInfile = false, bool sessionDefaults = true)
    {
        var builder = new MySqlConnectionStringBuilder
        {
            Server = Instance.Host,
            Port = (uint)Instance.Port,
            UserID = Instance.User,
            Password = Instance.Password.Resolve() ?? "",
            AllowPublicKeyRetrieval = true,
            ConnectionTimeout = 15,
            // No fixed 30 s per statement: the operation's timeout_seconds and the server's
            // lock_wait_timeout bound them, each with its own message.
            DefaultCommandTimeout = 0,
            Pooling = false,
            // Object bodies re-created by a swap may use @variables of their own.
            AllowUserVariables = allowUserVariables,
            // The parallel restore's LOAD DATA LOCAL: the driver sends only the streams it is given, never a file the server names.
            AllowLoadLocalInfile = loadLocalInfile,
        };
        var connection = new MySqlConnection(builder.ConnectionString);
        try
        {
            await connection.OpenAsync(cancellationToken).ConfigureAwait(false);
            if (sessionDefaults)
            {
                await using var command = new MySqlCommand(SessionDefaults, connection);
                await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            }
            // An account whose password expired logs in, and is refused at its first statement but SET.
            await using var probe = new MySqlCommand("DO 0", connection);
            await probe.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            return connection;
        }
        catch (MySqlException e)
        {
            await connection.DisposeAsync().ConfigureAwait(false);
            throw new OperationFailedException(
                $"cannot connect to {Instance.Name} ({Instance.Host}:{Instance.Port}) as {Instance.User}: {e.Message}"
                + (e.Number == MustChangePassword ? " (its password has expired: set a new one, ALTER USER ... IDENTIFIED BY)" : ""), e);
        }
        catch (OperationCanceledException)
        {
            await connection.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    private static async Task<int> CountTablesAsync(MySqlConnection connection, string database, CancellationToken cancellationToken)
    {
        var count = await Scalar(connection,
            "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = @db AND TABLE_TYPE IN ('BASE TABLE', 'SYSTEM VERSIONED')",
            cancellationToken, database).ConfigureAwait(false);
        return Convert.ToInt32(count, System.Globalization.CultureInfo.InvariantCulture);
    }

    internal static async Task<object?> Scalar(MySqlConnection connection, string sql, CancellationToken cancellationToken, string? database = null)
    {
        await using var command = new MySqlCommand(sql, connection);
        if (database is not null)
        {
            command.Parameters.AddWithValue("@db", database);
        }
        return await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false);
    }

    internal static async Task Execute(MySqlConnection connection, string sql, CancellationToken cancellationToken)
    {
        await using var command = new MySqlCommand(sql, connection);
        await Execute(command, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Runs a statement; the server's refusal becomes an <see cref="OperationFailedException"/> in its words.</summary>
    internal static async Task Execute(MySqlCommand command, CancellationToken cancellationToken)
    {
        try
        {
            await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (MySqlException e)
        {
            throw new OperationFailedException(e.Message, e);
        }
    }
}
