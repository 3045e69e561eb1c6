using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;
using Npgsql;
using VyaBackupDb.Catalog;
using VyaBackupDb.Config;
using VyaBackupDb.Errors;

namespace VyaBackupDb.Engines.Postgres;

/// <summary>PostgreSQL: pg_dump (plain SQL) to back up, psql with ON_ERROR_STOP to restore.</summary>
public sealed partial class PostgresEngine(InstanceConfig instance) : IDumpEngine
{
    private int? _serverMajor;

    public InstanceConfig Instance { get; } = instance;

    public string CompletionTrailer => DumpEngines.CompletionTrailer(Dbms.PostgreSql);

    public Task<DumpDetails> DumpSetAsync(string database, Sources.Sets.BackupSetWriter set, int jobs, CancellationToken cancellationToken) =>
        DumpSetCoreAsync(database, set, jobs, cancellationToken);

    public Task<LoadResult> RestoreSetAsync(
        string database, Sources.Sets.BackupSetReader set, RestoreOptions options, int jobs, CancellationToken cancellationToken) =>
        LoadAsync(database, options, () => RestoreSetCoreAsync(database, set, options, jobs, cancellationToken), cancellationToken);

    /// <summary>Set when the chosen client is newer than the server (allowed, but worth saying).</summary>
    private string? _toolWarning;
    private (string BinDir, string Version)? _client;
    private HashSet<string>? _knownSettings;

    public async Task<ServerInfo> ProbeAsync(CancellationToken cancellationToken)
    {
        await using var connection = await OpenAsync(Instance.MaintenanceDatabase, cancellationToken).ConfigureAwait(false);
        var versionNumber = Convert.ToInt32(
            await Scalar(connection, "SHOW server_version_num", cancellationToken).ConfigureAwait(false), CultureInfo.InvariantCulture);
        _serverMajor = versionNumber / 10000;
        var version = (string?)await Scalar(connection, "SHOW server_version", cancellationToken).ConfigureAwait(false) ?? "";
        // Templates of the operator's own are databases like any other (pg_dumpall takes them too). Names are read as
        // bytes: one created from a database in another encoding is not UTF-8, and must not fail the whole listing.
        var (databases, closed, unreadable) = (new List<string>(), new List<string>(), new List<string>());
        await using (var command = new NpgsqlCommand(
            "SELECT pg_catalog.encode(pg_catalog.textsend(datname::text), 'base64'), datallowconn FROM pg_catalog.pg_database ORDER BY datname", connection))
        await using (var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false))
        {
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                var bytes = Convert.FromBase64String(reader.GetString(0));
                if (StrictUtf8.Decode(bytes) is not { } name)
                {
                    unreadable.Add(NameOf(bytes));
                }
                else if (!DumpEngines.IsSystemDatabase(Dbms.PostgreSql, name))
                {
                    (reader.GetBoolean(1) ? databases : closed).Add(name);
                }
            }
        }
        return new ServerInfo("PostgreSQL", version.Split(' ')[0], databases) { Closed = closed, Unreadable = unreadable };
    }

    public async Task<long?> DatabaseSizeAsync(string database, CancellationToken cancellationToken)
    {
        await using var connection = await OpenAsync(Instance.MaintenanceDatabase, cancellationToken).ConfigureAwait(false);
        var size = await Scalar(connection, "SELECT pg_database_size(@db)", cancellationToken, database).ConfigureAwait(false);
        return size is null or DBNull ? null : Convert.ToInt64(size, CultureInfo.InvariantCulture);
    }

    public async Task<DumpDetails> DumpAsync(string database, Stream output, CancellationToken cancellationToken)
    {
        var client = await ChooseClientAsync(cancellationToken).ConfigureAwait(false);
        var pgDump = Path.Combine(client.BinDir, "pg_dump");

        // One snapshot for the catalog and pg_dump (--snapshot): the tables listed are the tables
        // dumped, and the rows counted from the dump's COPY blocks are the rows of that snapshot.
        var sessions = await OpenSessionsAsync(database, 2, [SessionSettings], cancellationToken).ConfigureAwait(false);
        await using var connection = sessions[0];
        await using var current = sessions[1];
        var taken = await TakeSnapshotAsync(connection, current, holdLocks: false, cancellationToken).ConfigureAwait(false);
        await using var transaction = taken.Transaction;
        var (tables, sequences, objects, settings) = await ReadDumpCatalogAsync(connection, cancellationToken).ConfigureAwait(false);

        using var passFile = PassFile();
        var counter = new PostgresRowCounter(output);
        await RunPgDumpAsync(pgDump, DumpArguments(database, taken.Name, []), Environment(passFile), counter, cancellationToken).ConfigureAwait(false);
        await RequireUnchangedSinceSnapshotAsync(connection, current, cancellationToken).ConfigureAwait(false);
        var inventory = new DatabaseInventory(await BackupRowsAsync(connection, tables, counter.Rows, cancellationToken).ConfigureAwait(false),
            AsDumped(sequences, counter.Sequences), objects);
        var warning = await WarningsAsync(connection, inventory, settings.Encoding, cancellationToken).ConfigureAwait(false);
        await transaction.RollbackAsync(cancellationToken).ConfigureAwait(false);
        return new DumpDetails("pg_dump", client.Version, inventory, warning, settings);
    }

    /// <summary>
    /// What a dump records of the database, read in its snapshot before pg_dump runs: the tables,
    /// the sequences (their values are in no snapshot: <see cref="AsDumped"/> takes them from the
    /// dump), the object counts and the database's settings (and owners, with <c>owners: true</c>).
    /// </summary>
    private async Task<(Dictionary<long, CatalogTable> Tables, List<CatalogSequence> Sequences, ObjectCounts Objects, DatabaseSettings Settings)>
        ReadDumpCatalogAsync(NpgsqlConnection connection, CancellationToken cancellationToken)
    {
        await RequireSubscriptionsDumpedAsync(connection, cancellationToken).ConfigureAwait(false);
        var tables = await ReadTablesAsync(connection, cancellationToken).ConfigureAwait(false);
        var sequences = await ReadSequencesAsync(connection, cancellationToken).ConfigureAwait(false);
        var objects = await CountObjectsAsync(connection, cancellationToken).ConfigureAwait(false);
        var settings = await ReadSettingsAsync(connection, cancellationToken).ConfigureAwait(false);
        if (Instance.Owners)
        {
            settings = await ReadOwnersAsync(connection, settings, cancellationToken).ConfigureAwait(false);
        }
        return (tables, sequences, objects, settings);
    }

    /// <summary>
    /// pg_dump writes a database's subscriptions only for a superuser: another account's backup left
    /// them out with no more than a warning on pg_dump's stderr, and said OK.
    /// </summary>
    private static async Task RequireSubscriptionsDumpedAsync(NpgsqlConnection connection, CancellationToken cancellationToken)
    {
        // subdbid and oid are the columns of pg_subscription anyone may read.
        var count = Convert.ToInt64(await Scalar(connection,
            "SELECT CASE WHEN (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user) THEN 0 ELSE "
            + "(SELECT count(s.oid) FROM pg_catalog.pg_subscription s WHERE s.subdbid = (SELECT oid FROM pg_catalog.pg_database WHERE datname = current_database())) END",
            cancellationToken).ConfigureAwait(false), CultureInfo.InvariantCulture);
        if (count > 0)
        {
            throw new OperationFailedException($"the database has {count} subscription(s), which pg_dump writes only for a superuser: "
                + "back it up with a superuser account");
        }
    }

    /// <summary>What a backup says besides its result: the client tool's, and the extensions' tables pg_dump leaves out.</summary>
    private async Task<string?> WarningsAsync(NpgsqlConnection connection, DatabaseInventory inventory, string? encoding, CancellationToken cancellationToken)
    {
        var withRows = inventory.Tables.Where(t => t.Rows > 0).Select(t => t.Name).ToHashSet(StringComparer.Ordinal);
        // An extension's tables are CREATE EXTENSION's to make, and pg_dump writes only what its configuration tables
        // (pg_extension_config_dump) hold beyond that: rows of any other (one added by ALTER EXTENSION ... ADD TABLE)
        // are in no backup, and its restore says the table is missing.
        var leftOut = new List<string>();
        await using (var command = new NpgsqlCommand(
            "SELECT pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(c.relname), pg_catalog.quote_ident(e.extname) "
            + "FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
            + "JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.objid = c.oid AND d.deptype = 'e' "
            + "JOIN pg_catalog.pg_extension e ON e.oid = d.refobjid "
            + "WHERE c.relkind IN ('r', 'p') AND NOT c.oid = ANY (coalesce(e.extconfig, '{}')) AND n.nspname "
            + string.Format(CultureInfo.InvariantCulture, UserSchemas, "n.nspname") + " ORDER BY 1", connection))
        await using (var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false))
        {
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                if (withRows.Contains(reader.GetString(0)))
                {
                    leftOut.Add($"{reader.GetString(0)} (extension {reader.GetString(1)})");
                }
            }
        }
        // pg_dump writes a user mapping's options (a remote password, say) only where this account may read them.
        var unreadMappings = Convert.ToInt64(await Scalar(connection,
            "SELECT CASE WHEN (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user) THEN 0 ELSE "
            + "(SELECT count(*) FROM pg_catalog.pg_user_mappings WHERE umoptions IS NULL) END", cancellationToken).ConfigureAwait(false),
            CultureInfo.InvariantCulture);
        string?[] warnings =
        [
            _toolWarning,
            LossyThroughUtf8(encoding),
            unreadMappings == 0 ? null : $"{unreadMappings} user mapping(s) whose options (a remote user or password) this account may not "
                + "read, or that have none: the backup holds them without options; back up as a superuser to keep them",
            leftOut.Count == 0 ? null : $"the rows of {string.Join(", ", leftOut)} are not in the backup: pg_dump leaves an extension's tables "
                + "to CREATE EXTENSION, and writes rows only of its configuration tables; a table added to it (ALTER EXTENSION ... ADD TABLE) "
                + "is lost, and a restore of this backup refused as missing it (unless --no-verify): take it out of the extension "
                + "(ALTER EXTENSION ... DROP TABLE) to back it up",
        ];
        return warnings.Any(w => w is not null) ? string.Join("; ", warnings.OfType<string>()) : null;
    }

    /// <summary>
    /// A backup reads the database as UTF-8 (pg_dump -E UTF8, COPY through the driver), and a restore writes that back:
    /// exact for every encoding but these, where two codes stand for one character and come back as one of them.
    /// </summary>
    private static string? LossyThroughUtf8(string? encoding) => encoding switch
    {
        "EUC_JP" => "NEC and IBM extension codes (0xADF0 comes back as 0xA2E2)",
        "EUC_JIS_2004" => "a few two-code sequences (0xA9DC 0xABDC comes back as 0xABC4)",
        "EUC_TW" => "the 4-byte codes of plane 1 (0x8EA1A4A1 comes back as 0xA4A1)",
        _ => null,
    } is { } codes
        ? $"the database's encoding {encoding} is backed up through UTF-8, and {codes} return as the other code of the same character "
            + "(a unique key holding both fails the restore); keep such values in bytea, or use pg_dump in the database's own encoding"
        : null;

    /// <summary>A table of the catalog, in the dump's snapshot.</summary>
    /// <param name="Name">schema.table as quote_ident writes them (the manifest's name).</param>
    /// <param name="InExtension">Created by an extension: CREATE EXTENSION brings its rows back, pg_dump at most the ones added.</param>
    /// <param name="Parents">The tables it inherits from, or its partitioned parent.</param>
    private sealed record CatalogTable(long Oid, string Schema, string Table, string Name, bool Partitioned, bool InExtension, List<long> Parents);

    private static async Task<Dictionary<long, CatalogTable>> ReadTablesAsync(NpgsqlConnection connection, CancellationToken cancellationToken)
    {
        var tables = new Dictionary<long, CatalogTable>();
        await using (var command = new NpgsqlCommand(
            "SELECT c.oid::bigint, n.nspname, c.relname, pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(c.relname), c.relkind = 'p', "
            + "EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e') "
            + "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            + "WHERE c.relkind IN ('r', 'p') AND n.nspname " + string.Format(CultureInfo.InvariantCulture, UserSchemas, "n.nspname"), connection))
        await using (var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false))
        {
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                var oid = reader.GetInt64(0);
                tables[oid] = new CatalogTable(oid, reader.GetString(1), reader.GetString(2), reader.GetString(3), reader.GetBoolean(4), reader.GetBoolean(5), []);
            }
        }
        await using (var command = new NpgsqlCommand("SELECT inhrelid::bigint, inhparent::bigint FROM pg_inherits", connection))
        await using (var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false))
        {
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                // Index partitions are in pg_inherits too: only tables are looked up.
                if (tables.TryGetValue(reader.GetInt64(0), out var table))
                {
                    table.Parents.Add(reader.GetInt64(1));
                }
            }
        }
        return tables;
    }

    /// <summary>
    /// A backup's rows per table (<see cref="CountRowsAsync"/>). Those of a partition under a table hash-partitioned on a
    /// type the database defines (an enum hashes by its values' oids, which a restore makes anew) are estimates: its
    /// rows are as many as the whole table's, but the restored copy may hold them in other partitions (pg_dump
    /// loads such tables through their root).
    /// </summary>
    private async Task<List<TableRows>> BackupRowsAsync(
        NpgsqlConnection connection, Dictionary<long, CatalogTable> tables, IReadOnlyDictionary<(string Schema, string Table), long> copied,
        CancellationToken cancellationToken)
    {
        var rows = await CountRowsAsync(connection, tables, copied, cancellationToken).ConfigureAwait(false);
        if (_serverMajor < 12)
        {
            return rows; // pg_partition_tree is 12+
        }
        var placedByHash = (await ListAsync(connection,
                "SELECT DISTINCT pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(c.relname), 0 "
                + "FROM pg_catalog.pg_partitioned_table p CROSS JOIN LATERAL pg_catalog.pg_partition_tree(p.partrelid) tree "
                + "JOIN pg_catalog.pg_class c ON c.oid = tree.relid JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
                + "WHERE p.partstrat = 'h' AND tree.relid <> p.partrelid AND EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a "
                + "WHERE a.attrelid = p.partrelid AND a.attnum = ANY (p.partattrs::pg_catalog.int2[]) AND a.atttypid >= 16384)", // FirstNormalObjectId
                cancellationToken)
            .ConfigureAwait(false)).Select(t => t.Name).ToHashSet(StringComparer.Ordinal);
        return [.. rows.Select(r => placedByHash.Contains(r.Name) ? r with { Exact = false } : r)];
    }

    /// <summary>
    /// The manifest's rows per table, as <c>SELECT count(*)</c> on the restored copy will find them:
    /// a table's own rows (the lines of its COPY block) plus those of every table inheriting from it
    /// or partitioning it. A table pg_dump wrote no COPY for (a partitioned parent: none of its own;
    /// an extension's table; anything else pg_dump left out) is counted in the same snapshot; one in
    /// the dump but not in the catalog is added with the rows the dump holds.
    /// </summary>
    private static async Task<List<TableRows>> CountRowsAsync(
        NpgsqlConnection connection, Dictionary<long, CatalogTable> tables, IReadOnlyDictionary<(string Schema, string Table), long> copied,
        CancellationToken cancellationToken)
    {
        var own = new Dictionary<long, long>();
        foreach (var table in tables.Values)
        {
            if (table.Partitioned)
            {
                own[table.Oid] = 0;
            }
            else if (!table.InExtension && copied.TryGetValue((table.Schema, table.Table), out var count))
            {
                own[table.Oid] = count;
            }
            else
            {
                // The name comes from quote_ident: already quoted by the server's own rules.
                own[table.Oid] = Convert.ToInt64(
                    await Scalar(connection, $"SELECT count(*) FROM ONLY {table.Name}", cancellationToken).ConfigureAwait(false), CultureInfo.InvariantCulture);
            }
        }
        var children = tables.Values.SelectMany(t => t.Parents.Select(p => (Parent: p, Child: t.Oid))).ToLookup(x => x.Parent, x => x.Child);
        var rows = new List<TableRows>();
        foreach (var table in tables.Values)
        {
            // Multiple inheritance can reach a table twice; count() sees each row once.
            var seen = new HashSet<long> { table.Oid };
            var pending = new Stack<long>(children[table.Oid]);
            var total = own[table.Oid];
            while (pending.TryPop(out var oid))
            {
                if (seen.Add(oid))
                {
                    total += own.GetValueOrDefault(oid);
                    foreach (var child in children[oid])
                    {
                        pending.Push(child);
                    }
                }
            }
            rows.Add(new TableRows(table.Name, total, Exact: true));
        }
        var known = tables.Values.Select(t => (t.Schema, t.Table)).ToHashSet();
        foreach (var ((schema, table), count) in copied.Where(r => !known.Contains(r.Key)))
        {
            await using var command = new NpgsqlCommand("SELECT pg_catalog.quote_ident(@s) || '.' || pg_catalog.quote_ident(@t)", connection);
            command.Parameters.AddWithValue("s", schema);
            command.Parameters.AddWithValue("t", table);
            rows.Add(new TableRows((string)(await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false))!, count, Exact: true));
        }
        rows.Sort((a, b) => string.CompareOrdinal(a.Name, b.Name));
        return rows;
    }

    public async Task<DatabaseInventory> InventoryAsync(
        string database, IReadOnlyDictionary<TableKey, long>? loadedRows, CancellationToken cancellationToken)
    {
        await using var connection = await OpenAsync(database, cancellationToken).ConfigureAwait(false);
        var tables = await ReadTablesAsync(connection, cancellationToken).ConfigureAwait(false);
        // A table's count is its own rows (loaded, else counted) plus its partitions' and children's, as count(*) sees
        // them; only for the tables that are there now (post.sql could have dropped one).
        var own = new Dictionary<(string Schema, string Table), long>();
        foreach (var table in tables.Values)
        {
            if (loadedRows?.TryGetValue(new TableKey(table.Schema, table.Table), out var loaded) == true)
            {
                own[(table.Schema, table.Table)] = loaded;
            }
        }
        await using var unforced = await LiftForcedRowSecurityAsync(connection, cancellationToken).ConfigureAwait(false);
        var rows = await CountRowsAsync(connection, tables, own, cancellationToken).ConfigureAwait(false);
        return new DatabaseInventory(rows,
            await ListSequencesAsync(connection, cancellationToken).ConfigureAwait(false),
            await CountObjectsAsync(connection, cancellationToken).ConfigureAwait(false));
    }

    /// <summary>
    /// A table that forces row security on its owner shows a restoring account that is not a superuser (its owner, or
    /// a member of it) only the rows its policies let through, and its count would not be the backup's: the force is
    /// lifted in a transaction that is rolled back when the returned one is disposed (null: no such table).
    /// </summary>
    private static async Task<NpgsqlTransaction?> LiftForcedRowSecurityAsync(NpgsqlConnection connection, CancellationToken cancellationToken)
    {
        await using var query = new NpgsqlCommand(
            "SELECT pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(c.relname) FROM pg_catalog.pg_class c "
            + "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE c.relforcerowsecurity AND c.relrowsecurity "
            + "AND NOT (SELECT rolsuper OR rolbypassrls FROM pg_catalog.pg_roles WHERE rolname = current_user)", connection);
        var forced = await StringsAsync(query, cancellationToken).ConfigureAwait(false);
        if (forced.Count == 0)
        {
            return null;
        }
        var transaction = await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
        foreach (var table in forced)
        {
            await Execute(connection, $"ALTER TABLE ONLY {table} NO FORCE ROW LEVEL SECURITY", cancellationToken).ConfigureAwait(false);
        }
        return transaction;
    }

    private const string UserSchemas = "NOT IN ('pg_catalog', 'information_schema') AND {0} NOT LIKE 'pg\\_toast%' AND {0} NOT LIKE 'pg\\_temp%'";

    /// <summary>A sequence of the catalog, in the dump's snapshot, with its value read then.</summary>
    /// <param name="Name">schema.sequence as quote_ident writes them (the manifest's name).</param>
    private sealed record CatalogSequence(string Schema, string Sequence, string Name, long Value);

    private static async Task<List<CatalogSequence>> ReadSequencesAsync(NpgsqlConnection connection, CancellationToken cancellationToken)
    {
        var sequences = new List<CatalogSequence>();
        await using var command = new NpgsqlCommand(
            "SELECT schemaname, sequencename, pg_catalog.quote_ident(schemaname) || '.' || pg_catalog.quote_ident(sequencename), coalesce(last_value, 0) "
            + "FROM pg_sequences ORDER BY 3", connection);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            sequences.Add(new CatalogSequence(reader.GetString(0), reader.GetString(1), reader.GetString(2), reader.GetInt64(3)));
        }
        return sequences;
    }

    /// <summary>
    /// The manifest's sequences: each with the value the dump's setval gives it, which is what a
    /// restore must hold (pg_dump reads sequences after the catalog, outside any snapshot, so the
    /// catalog's value may be behind). One the dump does not set (an extension's) keeps the
    /// catalog's value, not marked exact.
    /// </summary>
    private static List<SequenceValue> AsDumped(
        List<CatalogSequence> catalog, IReadOnlyDictionary<(string Schema, string Sequence), long> dumped) =>
        [
            .. catalog.Select(s => dumped.TryGetValue((s.Schema, s.Sequence), out var value)
                ? new SequenceValue(s.Name, value, Exact: true)
                : new SequenceValue(s.Name, s.Value)),
        ];

    private static async Task<List<SequenceValue>> ListSequencesAsync(NpgsqlConnection connection, CancellationToken cancellationToken) =>
        [.. (await ReadSequencesAsync(connection, cancellationToken).ConfigureAwait(false)).Select(s => new SequenceValue(s.Name, s.Value))];

    private static async Task<ObjectCounts> CountObjectsAsync(NpgsqlConnection connection, CancellationToken cancellationToken)
    {
        var views = await CountAsync("pg_class", "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind IN ('v', 'm') AND n.nspname ")
            .ConfigureAwait(false);
        var routines = await CountAsync("pg_proc", "FROM pg_proc c JOIN pg_namespace n ON n.oid = c.pronamespace WHERE n.nspname ").ConfigureAwait(false);
        return new ObjectCounts(
            Views: views.All,
            Routines: routines.All,
            Triggers: Convert.ToInt32(await Scalar(connection, "SELECT count(*) FROM pg_trigger WHERE NOT tgisinternal", cancellationToken)
                .ConfigureAwait(false), CultureInfo.InvariantCulture),
            Events: 0,
            ExtensionViews: views.OfExtensions,
            ExtensionRoutines: routines.OfExtensions,
            Extensions: (string?)await Scalar(connection,
                "SELECT coalesce(string_agg(extname || ' ' || extversion, ', ' ORDER BY extname), '') FROM pg_catalog.pg_extension", cancellationToken)
                .ConfigureAwait(false));

        // All of them, and those that belong to an extension, in one read.
        async Task<(int All, int OfExtensions)> CountAsync(string catalog, string from)
        {
            await using var command = new NpgsqlCommand(
                $"SELECT count(*), count(CASE WHEN EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = '{catalog}'::regclass AND d.objid = c.oid "
                + "AND d.deptype = 'e') THEN 1 END) " + from + string.Format(CultureInfo.InvariantCulture, UserSchemas, "n.nspname"), connection);
            await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
            return (Convert.ToInt32(reader.GetInt64(0)), Convert.ToInt32(reader.GetInt64(1)));
        }
    }

    private static async Task<List<(string Name, long Value)>> ListAsync(NpgsqlConnection connection, string sql, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand(sql, connection);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        var list = new List<(string, long)>();
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            list.Add((reader.GetString(0), Convert.ToInt64(reader.GetValue(1), CultureInfo.InvariantCulture)));
        }
        return list;
    }

    public async Task<TargetState> GetTargetStateAsync(string database, CancellationToken cancellationToken)
    {
        await using (var connection = await OpenAsync(Instance.MaintenanceDatabase, cancellationToken).ConfigureAwait(false))
        {
            var exists = await Scalar(connection, "SELECT COUNT(*) FROM pg_database WHERE datname = @db", cancellationToken, database)
                .ConfigureAwait(false);
            if (Convert.ToInt64(exists, CultureInfo.InvariantCulture) == 0)
            {
                return new TargetState(false, 0);
            }
        }
        NpgsqlConnection target;
        try
        {
            target = await OpenAsync(database, cancellationToken).ConfigureAwait(false);
        }
        catch (OperationFailedException e) when (e.InnerException is PostgresException { SqlState: PostgresErrorCodes.InvalidCatalogName })
        {
            // Dropped in between (a killed restore's DROP DATABASE still running on the server): gone.
            return new TargetState(false, 0);
        }
        await using var _ = target;
        // From the catalog, not information_schema, which lists only tables this account has a privilege on:
        // the database's owner can replace it whoever owns its tables.
        var tables = await Scalar(target,
            "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind IN ('r', 'p') AND n.nspname "
            + string.Format(CultureInfo.InvariantCulture, UserSchemas, "n.nspname"), cancellationToken).ConfigureAwait(false);
        var others = await Scalar(target,
            "SELECT (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind IN ('v', 'm', 'S') AND n.nspname "
            + string.Format(CultureInfo.InvariantCulture, UserSchemas, "n.nspname") + ")"
            + " + (SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname "
            + string.Format(CultureInfo.InvariantCulture, UserSchemas, "n.nspname") + ")"
            // Large objects are data of their own, in no table.
            + " + (SELECT count(*) FROM pg_largeobject_metadata)", cancellationToken).ConfigureAwait(false);
        return new TargetState(true, Convert.ToInt32(tables, CultureInfo.InvariantCulture), Convert.ToInt32(others, CultureInfo.InvariantCulture));
    }

    /// <summary>
    /// The database's encoding, locale (provider, ICU locale and rules where the server has them),
    /// its own <c>ALTER DATABASE ... SET</c> settings, its roles' <c>ALTER ROLE ... IN DATABASE ... SET</c>
    /// settings and its comment: what pg_dump writes only with --create, which a dump that restores
    /// under any name cannot use.
    /// </summary>
    private static async Task<DatabaseSettings> ReadSettingsAsync(NpgsqlConnection connection, CancellationToken cancellationToken)
    {
        // to_jsonb: the locale columns differ between versions (daticulocale 15-16, datlocale 17+, daticurules 16+).
        await using var command = new NpgsqlCommand(
            "SELECT pg_encoding_to_char(d.encoding), d.datcollate::text, d.datctype::text, to_jsonb(d) ->> 'datlocprovider', "
            + "coalesce(to_jsonb(d) ->> 'datlocale', to_jsonb(d) ->> 'daticulocale'), to_jsonb(d) ->> 'daticurules', "
            + "shobj_description(d.oid, 'pg_database'), "
            + "(SELECT s.setconfig FROM pg_db_role_setting s WHERE s.setdatabase = d.oid AND s.setrole = 0) "
            + "FROM pg_database d WHERE d.datname = current_database()", connection);
        DatabaseSettings settings;
        await using (var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false))
        {
            await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
            string? Text(int i) => reader.IsDBNull(i) ? null : reader.GetString(i);
            var provider = Text(3) switch
            {
                "i" => "icu",
                "b" => "builtin",
                null => null,
                _ => "libc",
            };
            var parameters = reader.IsDBNull(7) ? [] : ParseSetConfig(reader.GetFieldValue<string[]>(7)).ToList();
            settings = new DatabaseSettings
            {
                Encoding = Text(0),
                LcCollate = Text(1),
                LcCtype = Text(2),
                LocaleProvider = provider,
                Locale = provider is "icu" or "builtin" ? Text(4) : null,
                IcuRules = provider == "icu" && Text(5) is { Length: > 0 } rules ? rules : null,
                Parameters = parameters is { Count: > 0 } ? parameters : null,
                Comment = Text(6),
            };
        }

        var roleParameters = new List<RoleParameter>();
        await using (var roles = new NpgsqlCommand(
            "SELECT r.rolname, s.setconfig FROM pg_db_role_setting s JOIN pg_roles r ON r.oid = s.setrole "
            + "WHERE s.setdatabase = (SELECT oid FROM pg_database WHERE datname = current_database()) ORDER BY 1", connection))
        await using (var reader = await roles.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false))
        {
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                var role = reader.GetString(0);
                roleParameters.AddRange(ParseSetConfig(reader.GetFieldValue<string[]>(1)).Select(p => new RoleParameter(role, p.Name, p.Value)));
            }
        }
        return settings with { RoleParameters = roleParameters.Count > 0 ? roleParameters : null };
    }

    /// <summary>A pg_db_role_setting.setconfig array: "name=value" entries, the value as the server stores it.</summary>
    private static IEnumerable<DatabaseParameter> ParseSetConfig(string[] setconfig) =>
        setconfig.Select(entry => entry.Split('=', 2)).Select(pair => new DatabaseParameter(pair[0], pair.Length > 1 ? pair[1] : ""));

    /// <summary>
    /// With owners: true, the database's owner and own privileges, and every role the dump will
    /// name: owners and grantees of its objects (pg_shdepend), plus the bootstrap superuser when it
    /// owns any (dependencies on it are not recorded there).
    /// </summary>
    private static async Task<DatabaseSettings> ReadOwnersAsync(NpgsqlConnection connection, DatabaseSettings settings, CancellationToken cancellationToken)
    {
        var userObjects = string.Format(CultureInfo.InvariantCulture, UserSchemas, "n.nspname");
        var roles = (await ListAsync(connection,
            "SELECT DISTINCT r.rolname, 0 FROM pg_shdepend s JOIN pg_roles r ON r.oid = s.refobjid, pg_database d "
            + "WHERE d.datname = current_database() AND s.refclassid = 'pg_authid'::regclass "
            + "AND (s.dbid = d.oid OR (s.classid = 'pg_database'::regclass AND s.objid = d.oid)) "
            + "UNION SELECT pg_get_userbyid(d.datdba), 0 FROM pg_database d WHERE d.datname = current_database() "
            + "UNION SELECT rolname, 0 FROM pg_roles WHERE oid = 10 AND ("
            + $"EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relowner = 10 AND n.nspname {userObjects}) "
            + $"OR EXISTS (SELECT 1 FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE p.proowner = 10 AND n.nspname {userObjects}) "
            + $"OR EXISTS (SELECT 1 FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace WHERE t.typowner = 10 AND n.nspname {userObjects}) "
            + $"OR EXISTS (SELECT 1 FROM pg_namespace n WHERE n.nspowner = 10 AND n.nspname {userObjects} AND n.nspname <> 'public')) "
            + "ORDER BY 1", cancellationToken).ConfigureAwait(false)).Select(r => r.Name).ToList();
        var (owner, grants, _) = await AccessAsync(connection, connection.Database, cancellationToken).ConfigureAwait(false);
        return settings with { Owners = true, Owner = owner, Grants = grants, Roles = roles };
    }

    /// <summary>A database's owner, its own privileges (null: the defaults) and its connection limit.</summary>
    private static async Task<(string Owner, List<DatabaseGrant>? Grants, int ConnectionLimit)> AccessAsync(
        NpgsqlConnection connection, string database, CancellationToken cancellationToken)
    {
        string owner;
        int connectionLimit;
        bool defaults;
        await using (var command = new NpgsqlCommand("SELECT pg_get_userbyid(datdba), datconnlimit, datacl IS NULL FROM pg_database WHERE datname = @db", connection))
        {
            command.Parameters.AddWithValue("db", database);
            await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            if (!await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                throw new OperationFailedException($"the database '{database}' no longer exists");
            }
            (owner, connectionLimit, defaults) = (reader.GetString(0), reader.GetInt32(1), reader.GetBoolean(2));
        }
        if (defaults)
        {
            return (owner, null, connectionLimit);
        }
        var grants = new List<DatabaseGrant>();
        await using (var command = new NpgsqlCommand(
            "SELECT CASE WHEN a.grantee = 0 THEN 'public' ELSE pg_get_userbyid(a.grantee) END, a.privilege_type, a.is_grantable "
            + "FROM pg_database d, aclexplode(d.datacl) a WHERE d.datname = @db ORDER BY 1, 2", connection))
        {
            command.Parameters.AddWithValue("db", database);
            await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                grants.Add(new DatabaseGrant(reader.GetString(0), reader.GetString(1), reader.GetBoolean(2)));
            }
        }
        return (owner, grants, connectionLimit);
    }

    public async Task<IReadOnlyList<string>> CreateDatabaseAsync(string database, DatabaseSettings? settings, bool trustBackup, CancellationToken cancellationToken)
    {
        await using var connection = await OpenAsync(Instance.MaintenanceDatabase, cancellationToken).ConfigureAwait(false);
        // Literal() doubles quotes only: right with standard_conforming_strings, which we make sure of.
        await Execute(connection, "SET standard_conforming_strings = on", cancellationToken).ConfigureAwait(false);
        await RequireRolesAsync(connection, settings, cancellationToken).ConfigureAwait(false);
        var (warnings, kept) = SetAsideSessionChanging(settings);
        settings = kept;
        var create = await CreateStatementAsync(connection, database, settings, cancellationToken).ConfigureAwait(false);
        var known = await KnownSettingsAsync(connection, cancellationToken).ConfigureAwait(false);
        var after = SettingStatements(database, settings, known);
        var roleSettings = await RoleSettingStatementsAsync(connection, database, settings, known, cancellationToken).ConfigureAwait(false);
        if (!trustBackup)
        {
            RequireCatalogFirst(settings);
        }
        try
        {
            await Execute(connection, create, cancellationToken).ConfigureAwait(false);
        }
        catch (OperationFailedException e) when (e.InnerException is PostgresException { SqlState: PostgresErrorCodes.InsufficientPrivilege })
        {
            // The account's, not the backup's: a verify did not check the backup.
            throw new HostFaultException($"the account may not create database '{database}' ({e.Message}): a restore needs CREATEDB", e);
        }
        try
        {
            // From a session on the new database: the server stores a setting's or comment's text in
            // that session's encoding, and the database (LATIN1, say) reads it back in its own.
            await using var inNew = await OpenAsync(database, cancellationToken).ConfigureAwait(false);
            await Execute(inNew, "SET standard_conforming_strings = on", cancellationToken).ConfigureAwait(false);
            foreach (var statement in after)
            {
                await Execute(inNew, statement, cancellationToken).ConfigureAwait(false);
            }
            // A role's setting needs the role on this server and the right to alter it; without
            // them the database itself is still whole: warn and go on.
            foreach (var (setting, statement) in roleSettings)
            {
                var shown = $"the backup's setting {setting.Name} = '{DatabaseSettings.Shown(setting.Value)}' for the role "
                    + $"'{DatabaseSettings.Shown(setting.Role)}' in the database was not restored";
                if (statement is null)
                {
                    warnings.Add($"{shown}: {Instance.Name} has no such role");
                    continue;
                }
                try
                {
                    await Execute(inNew, statement, cancellationToken).ConfigureAwait(false);
                }
                catch (OperationFailedException e) when (e.InnerException is PostgresException { SqlState: PostgresErrorCodes.InsufficientPrivilege })
                {
                    warnings.Add($"{shown}: {Instance.Name}'s account may not alter the role ({e.Message})");
                }
            }
        }
        catch (OperationFailedException e)
        {
            // A database without its settings is not what the backup recorded: leave none behind.
            await Execute(connection, $"DROP DATABASE {QuoteIdentifier(database)}", CancellationToken.None).ConfigureAwait(false);
            throw new OperationFailedException($"cannot apply the backup's settings to '{database}': {e.Message}", e);
        }
        return warnings;
    }

    /// <summary>CREATE DATABASE from template0 with the recorded encoding and locale; UTF8 and the server's locale without them.</summary>
    private async Task<string> CreateStatementAsync(NpgsqlConnection connection, string database, DatabaseSettings? settings, CancellationToken cancellationToken)
    {
        // template0: a clean database, whatever was added to template1.
        var sql = new StringBuilder($"CREATE DATABASE {QuoteIdentifier(database)} TEMPLATE template0");
        var encoding = settings?.Encoding ?? "UTF8";
        RequireMatch("encoding", encoding, PlainName());
        if (Convert.ToInt32(await Scalar(connection, "SELECT pg_char_to_encoding(@db)", cancellationToken, encoding).ConfigureAwait(false),
                CultureInfo.InvariantCulture) < 0)
        {
            throw new OperationFailedException($"the backup's encoding '{encoding}' is not known to {Instance.Name}");
        }
        sql.Append(" ENCODING ").Append(Literal(encoding));
        if (settings?.LcCollate is { } collate)
        {
            RequireMatch("LC_COLLATE", collate, LocaleName());
            sql.Append(" LC_COLLATE ").Append(Literal(collate));
        }
        if (settings?.LcCtype is { } ctype)
        {
            RequireMatch("LC_CTYPE", ctype, LocaleName());
            sql.Append(" LC_CTYPE ").Append(Literal(ctype));
        }
        switch (settings?.LocaleProvider)
        {
            case null or "libc":
                // The default provider: not named, so that servers before 15 take the statement.
                break;
            case "icu":
                sql.Append(" LOCALE_PROVIDER icu");
                if (settings.Locale is { } icuLocale)
                {
                    RequireMatch("ICU locale", icuLocale, LocaleName());
                    sql.Append(" ICU_LOCALE ").Append(Literal(icuLocale));
                }
                if (settings.IcuRules is { } rules)
                {
                    sql.Append(" ICU_RULES ").Append(Literal(rules));
                }
                break;
            case "builtin":
                sql.Append(" LOCALE_PROVIDER builtin");
                if (settings.Locale is { } builtinLocale)
                {
                    RequireMatch("builtin locale", builtinLocale, LocaleName());
                    sql.Append(" BUILTIN_LOCALE ").Append(Literal(builtinLocale));
                }
                break;
            default:
                throw new OperationFailedException(
                    $"the backup's manifest names an unknown locale provider '{DatabaseSettings.Shown(settings.LocaleProvider)}'");
        }
        return sql.ToString();
    }

    /// <summary>The database's ALTER DATABASE ... SET settings and comment, every name checked and every value a quoted literal.</summary>
    private List<string> SettingStatements(string database, DatabaseSettings? settings, HashSet<string> known)
    {
        var statements = new List<string>();
        foreach (var (name, value) in settings?.Parameters ?? [])
        {
            statements.Add($"ALTER DATABASE {QuoteIdentifier(database)} {SetClause(name, value, known)}");
        }
        if (settings?.Comment is { } comment)
        {
            statements.Add($"COMMENT ON DATABASE {QuoteIdentifier(database)} IS {Literal(comment)}");
        }
        statements.AddRange(AccessStatements(database, settings?.Owner, settings?.Grants));
        return statements;
    }

    /// <summary>
    /// The database's owner, then its privileges in place of the defaults (PUBLIC may connect and
    /// make temporary tables; the owner may do all); nothing for what is null.
    /// </summary>
    private static IEnumerable<string> AccessStatements(string database, string? owner, IReadOnlyList<DatabaseGrant>? grants)
    {
        if (owner is not null)
        {
            yield return $"ALTER DATABASE {QuoteIdentifier(database)} OWNER TO {Role(owner)}";
        }
        if (grants is null)
        {
            yield break;
        }
        yield return $"REVOKE ALL ON DATABASE {QuoteIdentifier(database)} FROM PUBLIC";
        if (owner is not null)
        {
            yield return $"REVOKE ALL ON DATABASE {QuoteIdentifier(database)} FROM {Role(owner)}";
        }
        foreach (var (grantee, privilege, grantable) in grants)
        {
            if (privilege is not ("CONNECT" or "CREATE" or "TEMPORARY"))
            {
                throw new OperationFailedException($"the backup's manifest names an invalid database privilege: '{DatabaseSettings.Shown(privilege)}'");
            }
            yield return $"GRANT {privilege} ON DATABASE {QuoteIdentifier(database)} TO "
                + (grantee == "public" ? "PUBLIC" : Role(grantee)) + (grantable ? " WITH GRANT OPTION" : "");
        }
    }

    /// <summary>
    /// The roles' ALTER ROLE ... IN DATABASE ... SET settings, checked as the database's own are;
    /// no statement for a role this server lacks.
    /// </summary>
    private async Task<List<(RoleParameter Setting, string? Statement)>> RoleSettingStatementsAsync(
        NpgsqlConnection connection, string database, DatabaseSettings? settings, HashSet<string> known, CancellationToken cancellationToken)
    {
        var parameters = settings?.RoleParameters ?? [];
        if (parameters.Count == 0)
        {
            return [];
        }
        var roles = parameters.Select(p => p.Role).Distinct(StringComparer.Ordinal).ToArray();
        foreach (var role in roles)
        {
            Role(role);
        }
        // Every setting is checked, a missing role's too: a bad manifest is refused, not warned about.
        var clauses = parameters.Select(p => SetClause(p.Name, p.Value, known)).ToList();
        var found = await ExistingRolesAsync(connection, roles, ordinaryOnly: false, cancellationToken).ConfigureAwait(false);
        return [.. parameters.Select((p, i) => (p, found.Contains(p.Role)
            ? $"ALTER ROLE {Role(p.Role)} IN DATABASE {QuoteIdentifier(database)} {clauses[i]}"
            : (string?)null))];
    }

    /// <summary>
    /// Settings a manifest may not give the database or a role in it: set for the restoring account
    /// (a superuser, most often), the restore's next session on the database would load a library
    /// the manifest names, or act as another role.
    /// </summary>
    private static readonly HashSet<string> SessionChangingSettings =
        new(["session_preload_libraries", "local_preload_libraries", "role", "session_authorization"], StringComparer.OrdinalIgnoreCase);

    /// <summary>
    /// The settings without <see cref="SessionChangingSettings"/>, and a warning for each left out: the database is
    /// restored and the setting is the operator's to set again (tr108: a database whose sessions SET role was backed
    /// up, and every restore of it refused).
    /// </summary>
    private static (List<string> Warnings, DatabaseSettings? Kept) SetAsideSessionChanging(DatabaseSettings? settings)
    {
        if (settings is null)
        {
            return ([], null);
        }
        const string why = "was not restored: it would change the role of, or load libraries into, every session on the database "
            + "(this restore's too); set it by hand once you have checked it";
        var warnings = new List<string>();
        foreach (var (name, value) in (settings.Parameters ?? []).Where(p => SessionChangingSettings.Contains(p.Name)))
        {
            warnings.Add($"the backup's setting {name} = '{DatabaseSettings.Shown(value)}' of the database {why}");
        }
        foreach (var (role, name, value) in (settings.RoleParameters ?? []).Where(p => SessionChangingSettings.Contains(p.Name)))
        {
            warnings.Add($"the backup's setting {name} = '{DatabaseSettings.Shown(value)}' for the role '{DatabaseSettings.Shown(role)}' in the database {why}");
        }
        return (warnings, warnings.Count == 0 ? settings : settings with
        {
            Parameters = [.. (settings.Parameters ?? []).Where(p => !SessionChangingSettings.Contains(p.Name))],
            RoleParameters = [.. (settings.RoleParameters ?? []).Where(p => !SessionChangingSettings.Contains(p.Name))],
        });
    }

    /// <summary>SET name TO value from the manifest: a name this server knows (or a custom ext.name), the value quoted.</summary>
    private string SetClause(string name, string value, HashSet<string> known)
    {
        RequireMatch("setting name", name, SettingName());
        // A custom setting ("ext.name") is accepted by any server; others must exist on this one.
        if (!name.Contains('.', StringComparison.Ordinal) && !known.Contains(name))
        {
            throw new OperationFailedException($"the backup's database setting '{name}' is not known to {Instance.Name}");
        }
        var values = QuotedListSettings.Contains(name)
            ? SplitSettingList(value) ?? throw new OperationFailedException(
                $"the backup's manifest holds an unreadable value for '{name}': '{DatabaseSettings.Shown(value)}'")
            : [value];
        return "SET " + string.Join('.', name.Split('.').Select(QuoteIdentifier)) + " TO "
            + (values.Count == 0 ? "''" : string.Join(", ", values.Select(Literal)));
    }

    /// <summary>A role name from the manifest, as an identifier.</summary>
    private static string Role(string name) =>
        name.Length == 0 || name.Contains('\0', StringComparison.Ordinal)
            ? throw new OperationFailedException($"the backup's manifest names an invalid role: '{DatabaseSettings.Shown(name)}'")
            : QuoteIdentifier(name);

    /// <summary>A dump that keeps owners and privileges loads only where every role it names exists: checked before anything is created.</summary>
    private async Task RequireRolesAsync(NpgsqlConnection connection, DatabaseSettings? settings, CancellationToken cancellationToken)
    {
        var needed = (settings?.Roles ?? []).Concat(settings?.Owner is { } owner ? [owner] : [])
            .Concat((settings?.Grants ?? []).Select(g => g.Grantee).Where(g => g != "public"))
            .Distinct(StringComparer.Ordinal).ToArray();
        if (needed.Length == 0)
        {
            return;
        }
        foreach (var role in needed)
        {
            Role(role);
        }
        var found = await ExistingRolesAsync(connection, needed, ordinaryOnly: false, cancellationToken).ConfigureAwait(false);
        var missing = needed.Where(r => !found.Contains(r)).Order(StringComparer.Ordinal).ToList();
        if (missing.Count > 0)
        {
            throw new OperationFailedException(
                $"the backup keeps owners and privileges (owners: true) but {Instance.Name} lacks the roles "
                + $"{string.Join(", ", missing.Select(DatabaseSettings.Shown))}; create them (or restore the server's roles) first");
        }
        if (settings?.Owner is { } databaseOwner)
        {
            // A member without the role's privileges may give it the staging database, and then neither load into it nor drop it.
            await using var command = new NpgsqlCommand(
                "SELECT pg_catalog.pg_has_role(@owner, 'MEMBER') AND NOT pg_catalog.pg_has_role(@owner, 'USAGE')", connection);
            command.Parameters.AddWithValue("owner", databaseOwner);
            if (await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) is true)
            {
                throw new OperationFailedException($"the backup's databases and objects are owned by {DatabaseSettings.Shown(databaseOwner)}, "
                    + "of which the restoring account is a member without its privileges (NOINHERIT); let it inherit them, "
                    + "or restore as a superuser");
            }
        }
    }

    /// <summary>Which of <paramref name="names"/> are roles of the server (with <paramref name="ordinaryOnly"/>: and no superusers).</summary>
    private static async Task<HashSet<string>> ExistingRolesAsync(
        NpgsqlConnection connection, string[] names, bool ordinaryOnly, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand(
            "SELECT rolname FROM pg_catalog.pg_roles WHERE rolname = ANY(@roles)" + (ordinaryOnly ? " AND NOT rolsuper" : ""), connection);
        command.Parameters.AddWithValue("roles", names);
        return new HashSet<string>(await StringsAsync(command, cancellationToken).ConfigureAwait(false), StringComparer.Ordinal);
    }

    /// <summary>
    /// A search_path (the database's or a role's in it) that names pg_catalog after another schema makes every session
    /// in the database, a superuser's too, take the backup's functions and operators for the built-in ones: refused
    /// unless the backup is trusted. Not naming pg_catalog at all is safe: the server then searches it first.
    /// </summary>
    private static void RequireCatalogFirst(DatabaseSettings? settings)
    {
        var searchPaths = (settings?.Parameters ?? []).Select(p => (p.Name, p.Value))
            .Concat((settings?.RoleParameters ?? []).Select(p => (p.Name, p.Value)))
            .Where(p => p.Name.Equals("search_path", StringComparison.OrdinalIgnoreCase));
        foreach (var (_, value) in searchPaths)
        {
            if (SplitSettingList(value)?.FindIndex(s => s.Equals("pg_catalog", StringComparison.OrdinalIgnoreCase)) > 0)
            {
                throw new OperationFailedException($"the backup's setting search_path = '{DatabaseSettings.Shown(value)}' puts pg_catalog after "
                    + "other schemas: every session in the database, a superuser's too, would take the backup's functions and operators "
                    + "for built-in ones; give --trust-backup to restore it as it is");
            }
        }
    }

    /// <summary>Settings whose stored value is a list of quoted elements (pg_dump's variable_is_guc_list_quote).</summary>
    private static readonly HashSet<string> QuotedListSettings = new(
        ["local_preload_libraries", "search_path", "session_preload_libraries", "shared_preload_libraries", "temp_tablespaces", "unix_socket_directories"],
        StringComparer.OrdinalIgnoreCase);

    /// <summary>
    /// The elements of a stored list setting (<c>"$user", public</c>), as pg_dump's SplitGUCList
    /// reads them: comma-separated, double-quoted or bare; null when it is not such a list.
    /// </summary>
    internal static List<string>? SplitSettingList(string value)
    {
        var items = new List<string>();
        var i = 0;
        SkipSpaces();
        if (i == value.Length)
        {
            return items;
        }
        while (true)
        {
            var item = new StringBuilder();
            if (value[i] == '"')
            {
                i++;
                while (true)
                {
                    if (i == value.Length)
                    {
                        return null;
                    }
                    if (value[i] == '"')
                    {
                        if (i + 1 < value.Length && value[i + 1] == '"')
                        {
                            item.Append('"');
                            i += 2;
                            continue;
                        }
                        i++;
                        break;
                    }
                    item.Append(value[i++]);
                }
            }
            else
            {
                var start = i;
                while (i < value.Length && value[i] != ',' && !char.IsWhiteSpace(value[i]))
                {
                    i++;
                }
                if (i == start)
                {
                    return null;
                }
                item.Append(value, start, i - start);
            }
            items.Add(item.ToString());
            SkipSpaces();
            if (i == value.Length)
            {
                return items;
            }
            if (value[i] != ',')
            {
                return null;
            }
            i++;
            SkipSpaces();
        }

        void SkipSpaces()
        {
            while (i < value.Length && char.IsWhiteSpace(value[i]))
            {
                i++;
            }
        }
    }

    /// <summary>A string literal (standard_conforming_strings on): quotes doubled. NUL cannot be in a PostgreSQL string.</summary>
    private static string Literal(string value) =>
        value.Contains('\0', StringComparison.Ordinal)
            ? throw new OperationFailedException($"the backup's manifest holds a value with a NUL character: '{DatabaseSettings.Shown(value)}'")
            : "'" + value.Replace("'", "''", StringComparison.Ordinal) + "'";

    private static void RequireMatch(string what, string value, Regex pattern)
    {
        if (!pattern.IsMatch(value))
        {
            throw new OperationFailedException($"the backup's manifest names an invalid {what}: '{DatabaseSettings.Shown(value)}'");
        }
    }

    [GeneratedRegex(@"^[A-Za-z0-9_]{1,63}\z")]
    private static partial Regex PlainName();

    /// <summary>Locale names: en_US.UTF-8, C, sr_RS@latin, und-u-ks-level2, de@collation=phonebook.</summary>
    [GeneratedRegex(@"^[A-Za-z0-9_.@=;+-]{1,128}\z")]
    private static partial Regex LocaleName();

    /// <summary>Letters, digits, '_' and '.' (custom settings: ext.name).</summary>
    [GeneratedRegex(@"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*\z")]
    private static partial Regex SettingName();

    public async Task DropDatabaseAsync(string database, CancellationToken cancellationToken)
    {
        // Only ever a database of ours (staging, scratch): a session still on it is a psql whose
        // vya-backupdb was killed. Ended by hand rather than WITH (FORCE), which PostgreSQL 12 lacks.
        await using var connection = await OpenAsync(Instance.MaintenanceDatabase, cancellationToken).ConfigureAwait(false);
        // DROP DATABASE waits for a checkpoint, which on a busy server takes longer than the driver's 30 s.
        await using var drop = new NpgsqlCommand($"DROP DATABASE IF EXISTS {QuoteIdentifier(database)}", connection) { CommandTimeout = DropTimeoutSeconds };
        try
        {
            if (!database.StartsWith(RestoreStaging.ReplacedPrefix, StringComparison.Ordinal))
            {
                await DropSubscriptionsAsync(connection, database, cancellationToken).ConfigureAwait(false);
            }
            await EndSessionsAsync(connection, database, cancellationToken).ConfigureAwait(false);
            // A template cannot be dropped; one of ours is a template only by what a restore loaded into it.
            if (await Scalar(connection, "SELECT datistemplate FROM pg_catalog.pg_database WHERE datname = @db", cancellationToken, database)
                .ConfigureAwait(false) is true)
            {
                await using var plain = new NpgsqlCommand($"ALTER DATABASE {QuoteIdentifier(database)} IS_TEMPLATE false", connection);
                await plain.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            }
            await drop.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            if (database.StartsWith(RestoreStaging.StagingPrefix, StringComparison.Ordinal))
            {
                // The load role of a killed run (see PostgresLoadRole) goes with its staging database.
                await DropRoleIfExistsAsync(connection, database, cancellationToken).ConfigureAwait(false);
            }
        }
        catch (PostgresException e)
        {
            throw new OperationFailedException($"dropping '{database}': {e.MessageText}", e);
        }
        catch (NpgsqlException e)
        {
            throw new OperationFailedException($"dropping '{database}': {PostgresFailure.Describe(e)}", e);
        }
        catch (InvalidOperationException e)
        {
            // The connection broke in an earlier statement ("Connection is not open").
            throw new OperationFailedException($"dropping '{database}': {e.Message}", e);
        }
    }

    private const int DropTimeoutSeconds = 600;

    /// <summary>
    /// A database with a subscription cannot be dropped. In a staging or scratch database one comes from the backup
    /// (pg_dump creates it with connect = false, so it has no slot of its own on the publisher): it is dropped without
    /// contacting the publisher. Not in a replaced database, whose subscription was a live one: the database is kept.
    /// </summary>
    private async Task DropSubscriptionsAsync(NpgsqlConnection connection, string database, CancellationToken cancellationToken)
    {
        var names = new List<string>();
        await using (var command = new NpgsqlCommand(
            "SELECT s.subname FROM pg_catalog.pg_subscription s JOIN pg_catalog.pg_database d ON d.oid = s.subdbid WHERE d.datname = @db", connection))
        {
            command.Parameters.AddWithValue("db", database);
            await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                names.Add(reader.GetString(0));
            }
        }
        if (names.Count == 0)
        {
            return;
        }
        // A subscription is named within the database it belongs to.
        await using var inside = await OpenAsync(database, cancellationToken).ConfigureAwait(false);
        foreach (var name in names.Select(QuoteIdentifier))
        {
            foreach (var statement in (string[])[$"ALTER SUBSCRIPTION {name} DISABLE", $"ALTER SUBSCRIPTION {name} SET (slot_name = NONE)", $"DROP SUBSCRIPTION {name}"])
            {
                await using var command = new NpgsqlCommand(statement, inside);
                await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            }
        }
    }

    public Task<LoadResult> RestoreAsync(string database, Stream input, RestoreOptions options, CancellationToken cancellationToken) =>
        LoadAsync(database, options, () => RestoreAsync(database, input, options, null, cancellationToken), cancellationToken);

    /// <param name="facts">What the files of a set restored before this one created: refused by, and added to. Null: a dump alone.</param>
    private async Task<LoadResult> RestoreAsync(string database, Stream input, RestoreOptions options, PostgresDumpFacts? facts, CancellationToken cancellationToken)
    {
        var binDir = (await ChooseClientAsync(cancellationToken).ConfigureAwait(false)).BinDir;
        var filter = await NewFilterAsync(database, facts, cancellationToken).ConfigureAwait(false);
        var loadRole = LoadRoleFor(database);
        // A name of its own for a psql of the load role, whose login window closes once it is seen logged in.
        var applicationName = loadRole is null ? "vya-backupdb" : $"vya-backupdb load {Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(8))}";
        using var passFile = PassFile(database);
        // No --single-transaction: the staging database is what makes a restore all-or-nothing, and
        // one transaction would need a lock per table (thousands of tables exhaust the lock table).
        // VERBOSITY=terse: an error is the server's message alone, without the DETAIL and CONTEXT
        // lines that quote a refused row ("Failing row contains (...)") into logs and notifications.
        string[] arguments =
        [
            "--no-psqlrc", "--quiet", "--no-password", "--set=ON_ERROR_STOP=1", "--set=VERBOSITY=terse",
            $"--dbname={ConnInfo(database, applicationName)}",
        ];
        // The session starts as the filter reads the dump, whatever settings the database or role
        // carry (the manifest's, an ALTER DATABASE ... SET run by an earlier file of a set) or the
        // operator's locale: a client's own options come before them (and are what RESET goes back to).
        var environment = Environment(passFile);
        environment["PGCLIENTENCODING"] = "SQL_ASCII";
        environment["PGOPTIONS"] = "-c standard_conforming_strings=on " + environment["PGOPTIONS"];
        await using (var window = loadRole is null ? null : await loadRole.OpenLoginWindowAsync(cancellationToken).ConfigureAwait(false))
        {
            await ChildProcess.RunAsync(Path.Combine(binDir, "psql"), arguments, environment, async (stdin, ct) =>
            {
                if (window is not null)
                {
                    await loadRole!.WaitForSessionAsync(applicationName, stdin, ct).ConfigureAwait(false);
                    await window.CloseAsync(ct).ConfigureAwait(false);
                }
                await filter.CopyAsync(input, stdin, ct).ConfigureAwait(false);
            }, null, cancellationToken).ConfigureAwait(false);
        }
        if (loadRole is not null)
        {
            lock (loadRole.HeldBack)
            {
                loadRole.HeldBack.AddRange(filter.HeldBack);
            }
        }
        return new LoadResult(filter.EndedWithCompletionTrailer, [], []);
    }

    /// <summary>The statement filter for a dump restored into <paramref name="database"/> by this engine's psql.</summary>
    private async Task<PostgresDumpFilter> NewFilterAsync(string database, PostgresDumpFacts? facts, CancellationToken cancellationToken)
    {
        var client = await ChooseClientAsync(cancellationToken).ConfigureAwait(false);
        var knownSettings = await KnownSettingsAsync(database, cancellationToken).ConfigureAwait(false);
        // A custom setting ("ext.name") is accepted by any server; others must exist on this one.
        return new PostgresDumpFilter(database, name => name.Contains('.', StringComparison.Ordinal) || knownSettings.Contains(name),
            new PostgresFilterOptions(RestrictMetaCommands: PostgresDumpFilter.ClientSupportsRestrict(client.Version), Facts: facts,
                DatabaseOwner: Instance.Owners, HoldBackOwnerStatements: LoadRoleFor(database) is not null));
    }

    public async Task<IAsyncDisposable> LockRestoreAsync(string target, CancellationToken cancellationToken)
    {
        var key = BitConverter.ToInt64(RestoreStaging.LockKey(target), 0);
        var connection = await OpenAsync(Instance.MaintenanceDatabase, cancellationToken,
            applicationName: $"vya-backupdb restore (pid {System.Environment.ProcessId} on {System.Environment.MachineName})").ConfigureAwait(false);
        try
        {
            await using var command = new NpgsqlCommand("SELECT pg_try_advisory_lock(@key)", connection);
            command.Parameters.AddWithValue("key", key);
            if ((bool)(await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false))!)
            {
                return connection;
            }
            await using var holder = new NpgsqlCommand(
                "SELECT a.application_name || coalesce(' from ' || host(a.client_addr), '') || ', since ' || to_char(a.backend_start AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') || ' UTC' "
                + "FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
                + "WHERE l.locktype = 'advisory' AND l.granted AND l.classid = ((@key >> 32) & 4294967295)::oid AND l.objid = (@key & 4294967295)::oid",
                connection);
            holder.Parameters.AddWithValue("key", key);
            var who = await holder.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) as string;
            throw new LockedException($"another restore into '{target}' is running on {Instance.Name}" + (who is null ? "" : $" ({who})"));
        }
        catch
        {
            await connection.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>
    /// Other clients' sessions on a database. Only client backends: an autovacuum worker visiting
    /// it (every database, every few seconds on a busy server) is stopped by the server itself
    /// when the database is renamed or dropped; counted, it refused a restore now and then. A
    /// session of a role this account may not see the details of shows no backend type, but a
    /// user, which no background process has.
    /// </summary>
    private const string OtherClients = "FROM pg_stat_activity a WHERE a.datname = @db AND a.pid <> pg_backend_pid() "
        + "AND (a.backend_type = 'client backend' OR (a.backend_type IS NULL AND a.usesysid IS NOT NULL))";

    /// <summary>
    /// Of <see cref="OtherClients"/>, those this account may not end: a superuser ends any; another
    /// account no superuser's, and others' only as a member of their role or of pg_signal_backend.
    /// </summary>
    private const string NotEndable = "AND NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) "
        + "AND (coalesce((SELECT rolsuper FROM pg_roles r WHERE r.oid = a.usesysid), false) "
        + "OR NOT (pg_has_role(a.usesysid, 'MEMBER') OR pg_has_role('pg_signal_backend', 'MEMBER')))";

    /// <summary>Ends the sessions of other clients on <paramref name="database"/>.</summary>
    private static Task EndSessionsAsync(NpgsqlConnection connection, string database, CancellationToken cancellationToken) =>
        Scalar(connection, $"SELECT count(pg_terminate_backend(a.pid)) {OtherClients}", cancellationToken, database);

    /// <summary>Every other client's session on the database blocks its rename.</summary>
    /// <remarks>
    /// A session that is closing is given a second to go: a client's (or this restore's own look at the
    /// database) stays in pg_stat_activity until its server process has exited, which a loaded server is slow at.
    /// </remarks>
    public async Task<BlockingSessions> CountBlockingSessionsAsync(string database, CancellationToken cancellationToken)
    {
        await using var connection = await OpenAsync(Instance.MaintenanceDatabase, cancellationToken).ConfigureAwait(false);
        for (var attempt = 1; ; attempt++)
        {
            BlockingSessions sessions;
            await using (var command = new NpgsqlCommand($"SELECT count(*), count(*) FILTER (WHERE TRUE {NotEndable}) {OtherClients}", connection))
            {
                command.Parameters.AddWithValue("db", database);
                await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
                await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
                sessions = new BlockingSessions(Convert.ToInt32(reader.GetInt64(0)), Convert.ToInt32(reader.GetInt64(1)));
            }
            if (sessions.Count == 0 || attempt == 10)
            {
                return sessions;
            }
            await Task.Delay(100, cancellationToken).ConfigureAwait(false);
        }
    }

    public async Task<IReadOnlyList<string>> SwapAsync(string staging, string target, SwapOptions options, CancellationToken cancellationToken)
    {
        var replaced = options.Replaced;
        bool? found = null;     // whether the target exists, once read
        var exists = false;
        var committing = false;
        var busy = false;
        var backend = 0;
        try
        {
            await using var connection = await OpenAsync(Instance.MaintenanceDatabase, cancellationToken).ConfigureAwait(false);
            backend = connection.ProcessID;
            found = exists = Convert.ToInt64(await Scalar(connection, "SELECT count(*) FROM pg_database WHERE datname = @db", cancellationToken, target)
                .ConfigureAwait(false), CultureInfo.InvariantCulture) > 0;
            if (exists && !options.ReplaceData)
            {
                var state = await GetTargetStateAsync(target, cancellationToken).ConfigureAwait(false);
                if (state.HoldsData)
                {
                    throw new OperationFailedException(RestoreStaging.FilledMeanwhile(target, state.TableCount, state.OtherObjects));
                }
                // Our own look at it is given the time to close: a session on it keeps it from being renamed.
                await CountBlockingSessionsAsync(target, cancellationToken).ConfigureAwait(false);
            }
            // What the load's code could make of the staging database (its owner, during the load, may:
            // a CHECK's function running ALTER DATABASE ... IS_TEMPLATE true), the target is not: a
            // template no restore can replace, nor one nobody may connect to.
            await Execute(connection, $"ALTER DATABASE {QuoteIdentifier(staging)} WITH IS_TEMPLATE false ALLOW_CONNECTIONS true CONNECTION LIMIT -1",
                cancellationToken).ConfigureAwait(false);
            // A rename needs the database to be free of sessions; a client connecting in between makes
            // it fail, so ending sessions (when asked) is retried a few times.
            for (var attempt = 1; ; attempt++)
            {
                if (options.TerminateConnections)
                {
                    if (exists)
                    {
                        await EndSessionsAsync(connection, target, cancellationToken).ConfigureAwait(false);
                    }
                    await EndSessionsAsync(connection, staging, cancellationToken).ConfigureAwait(false);
                }
                try
                {
                    // One transaction: the target is the old database or the new one, never neither.
                    await using var transaction = await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
                    if (exists && options.KeepTargetAccess)
                    {
                        // The backup does not say who owns the database and who may connect to it: the
                        // target's own stay (the defaults would let every role connect).
                        var (owner, grants, connectionLimit) = await AccessAsync(connection, target, cancellationToken).ConfigureAwait(false);
                        foreach (var statement in AccessStatements(staging, owner, grants))
                        {
                            await Execute(connection, statement, cancellationToken).ConfigureAwait(false);
                        }
                        await Execute(connection, FormattableString.Invariant($"ALTER DATABASE {QuoteIdentifier(staging)} CONNECTION LIMIT {connectionLimit}"),
                            cancellationToken).ConfigureAwait(false);
                    }
                    if (exists)
                    {
                        await Execute(connection, $"ALTER DATABASE {QuoteIdentifier(target)} RENAME TO {QuoteIdentifier(replaced)}", cancellationToken)
                            .ConfigureAwait(false);
                        // Kept if this run is killed before dropping it: a template would refuse the operator's DROP DATABASE.
                        if (await Scalar(connection, "SELECT datistemplate FROM pg_catalog.pg_database WHERE datname = @db", cancellationToken, replaced)
                            .ConfigureAwait(false) is true)
                        {
                            await Execute(connection, $"ALTER DATABASE {QuoteIdentifier(replaced)} IS_TEMPLATE false", cancellationToken).ConfigureAwait(false);
                        }
                    }
                    await Execute(connection, $"ALTER DATABASE {QuoteIdentifier(staging)} RENAME TO {QuoteIdentifier(target)}", cancellationToken)
                        .ConfigureAwait(false);
                    committing = true;
                    // Not cancelled: a stop cancelling a COMMIT the server may finish anyway would report the target unchanged.
                    await transaction.CommitAsync(CancellationToken.None).ConfigureAwait(false);
                    break;
                }
                catch (OperationFailedException e) when (!committing && e.InnerException is PostgresException { SqlState: "55006" })
                {
                    if (options.TerminateConnections && attempt < 3)
                    {
                        continue;
                    }
                    var onTarget = exists ? (await CountBlockingSessionsAsync(target, cancellationToken).ConfigureAwait(false)).Count : 0;
                    var onStaging = (await CountBlockingSessionsAsync(staging, cancellationToken).ConfigureAwait(false)).Count;
                    busy = true;
                    throw new OperationFailedException(onTarget == 0 && onStaging > 0
                        ? $"the restore's staging database '{staging}' has {onStaging} open session(s) of other clients, which keep it from being "
                            + $"renamed '{target}' (--terminate-connections ends them); '{target}' is {(exists ? "unchanged" : "not created")}"
                        : $"'{target}' has {onTarget} open session(s) of other clients; it is replaced only when they are closed "
                            + "(--terminate-connections ends them); it is unchanged", e);
                }
                catch (OperationFailedException e) when (!committing && e.InnerException is PostgresException { SqlState: "42P04" or "23505" })
                {
                    // Missing when the swap looked, created by another client before the rename.
                    throw new OperationFailedException($"another client created '{target}' while the restore was putting it in place", e);
                }
            }
        }
        catch (Exception e) when (committing && e is NpgsqlException and not PostgresException or InvalidOperationException)
        {
            // The connection broke, and the server may have committed and lost only the answer: what it did decides what is said and done.
            switch (await RenamedAsync(backend, staging, exists ? replaced : target).ConfigureAwait(false))
            {
                case null:
                    throw new OperationFailedException($"the connection to the server was lost during the COMMIT that replaces '{target}' ({e.Message}): "
                        + $"if it took place, '{target}' holds the restored data" + (exists ? $" and '{replaced}' the database it replaced" : "")
                        + $"; if not, '{target}' is {(exists ? "unchanged" : "not created")}", e);
                case false:
                    throw new OperationFailedException(
                        $"{NotDone()}: the connection was lost during its COMMIT ({e.Message})", e);
            }
        }
        catch (Exception e) when (!busy && e is OperationFailedException or NpgsqlException or InvalidOperationException)
        {
            // Interrupted (Ctrl+C, SIGTERM): the driver's words are .NET's "A task was canceled."; the run says "interrupted".
            throw new OperationFailedException(cancellationToken.IsCancellationRequested ? NotDone() : $"{NotDone()}: {e.Message}", e);
        }
        if (!exists)
        {
            return [];
        }
        try
        {
            await DropDatabaseAsync(replaced, CancellationToken.None).ConfigureAwait(false);
            return [];
        }
        catch (OperationFailedException e)
        {
            return [$"the replaced database '{replaced}' could not be dropped ({e.Message}); drop it once you no longer need it"];
        }

        string NotDone() => found switch
        {
            true => $"'{target}' could not be replaced (it is unchanged)",
            false => $"'{target}' could not be created",
            null => $"'{target}' was not changed",
        };
    }

    /// <summary>
    /// Whether the swap whose COMMIT lost its connection took place: once its server session
    /// <paramref name="backend"/> has ended, the staging database is gone and <paramref name="renamedTo"/>
    /// exists, or the reverse. Null when that cannot be told (no connection, the session lingers).
    /// </summary>
    private async Task<bool?> RenamedAsync(int backend, string staging, string renamedTo)
    {
        try
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            await using var connection = await OpenAsync(Instance.MaintenanceDatabase, timeout.Token).ConfigureAwait(false);
            while (Convert.ToInt64(await Scalar(connection, FormattableString.Invariant(
                $"SELECT count(*) FROM pg_catalog.pg_stat_activity WHERE pid = {backend}"), timeout.Token).ConfigureAwait(false), CultureInfo.InvariantCulture) > 0)
            {
                await Task.Delay(100, timeout.Token).ConfigureAwait(false);
            }
            await using var command = new NpgsqlCommand(
                "SELECT count(*) FILTER (WHERE datname = @staging), count(*) FILTER (WHERE datname = @renamed) FROM pg_catalog.pg_database", connection);
            command.Parameters.AddWithValue("staging", staging);
            command.Parameters.AddWithValue("renamed", renamedTo);
            await using var reader = await command.ExecuteReaderAsync(timeout.Token).ConfigureAwait(false);
            await reader.ReadAsync(timeout.Token).ConfigureAwait(false);
            return (reader.GetInt64(0), reader.GetInt64(1)) switch
            {
                (0, 1) => true,
                (1, 0) => false,
                _ => null,
            };
        }
        catch (Exception e) when (e is OperationFailedException or NpgsqlException or InvalidOperationException or OperationCanceledException)
        {
            return null;
        }
    }

    /// <summary>Double-quote quoting, quotes doubled: the server's rule for identifiers.</summary>
    public static string QuoteIdentifier(string name) => "\"" + name.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"";

    /// <summary>
    /// The bin directory (and pg_dump's version line) of the client tools matching the server's
    /// major version; a newer client (pg_dump supports older servers) with a warning; else an
    /// error naming both versions. Chosen once per engine: every database of the run uses it.
    /// </summary>
    private async Task<(string BinDir, string Version)> ChooseClientAsync(CancellationToken cancellationToken) =>
        _client ??= await FindClientAsync(cancellationToken).ConfigureAwait(false);

    private async Task<(string BinDir, string Version)> FindClientAsync(CancellationToken cancellationToken)
    {
        if (_serverMajor is null)
        {
            await ProbeAsync(cancellationToken).ConfigureAwait(false);
        }
        var server = _serverMajor!.Value;
        var candidates = new List<(int Major, string BinDir, string Version)>();
        foreach (var dir in CandidateBinDirs(server))
        {
            var pgDump = Path.Combine(dir, "pg_dump");
            if (!File.Exists(pgDump) || !File.Exists(Path.Combine(dir, "psql")))
            {
                continue;
            }
            var versionText = await ChildProcess.CaptureAsync(pgDump, ["--version"], cancellationToken).ConfigureAwait(false);
            var match = VersionPattern().Match(versionText);
            if (match.Success)
            {
                var major = int.Parse(match.Groups[1].Value, CultureInfo.InvariantCulture);
                var version = versionText.Trim().Split('\n')[0];
                if (major == server)
                {
                    return (dir, version);
                }
                candidates.Add((major, dir, version));
            }
        }
        var newer = candidates.Where(c => c.Major > server).OrderBy(c => c.Major).FirstOrDefault();
        if (newer.BinDir is not null)
        {
            _toolWarning = $"no PostgreSQL {server} client found; using pg_dump {newer.Major} from {newer.BinDir}";
            return (newer.BinDir, newer.Version);
        }
        var found = candidates.Count == 0 ? "none found" : "found " + string.Join(", ", candidates.Select(c => c.Major).Distinct());
        throw new OperationFailedException(
            $"server {Instance.Name} runs PostgreSQL {server} but pg_dump {server} or newer is needed ({found}"
            + (Instance.ToolsDir is { } toolsDir ? $" in tools_dir {toolsDir}{ToolLocator.Missing(toolsDir)})" : $"); install postgresql-client-{server} or set tools_dir"));
    }

    /// <summary>Where client tools may be; Debian's directory of the server's major first, so that the usual case asks one pg_dump its version.</summary>
    private IEnumerable<string> CandidateBinDirs(int serverMajor)
    {
        if (Instance.ToolsDir is not null)
        {
            yield return Instance.ToolsDir;
            yield break;
        }
        const string debianRoot = "/usr/lib/postgresql";
        if (Directory.Exists(debianRoot))
        {
            var major = serverMajor.ToString(CultureInfo.InvariantCulture);
            foreach (var dir in Directory.GetDirectories(debianRoot).OrderBy(d => Path.GetFileName(d) == major ? 0 : 1))
            {
                yield return Path.Combine(dir, "bin");
            }
        }
        if (ToolLocator.Find(null, "pg_dump") is { } onPath)
        {
            yield return Path.GetDirectoryName(onPath)!;
        }
    }

    [GeneratedRegex(@"\(PostgreSQL\)\s+(\d+)")]
    private static partial Regex VersionPattern();

    /// <summary>The server's settings, read once: a set restore runs psql many times (schema, keys, post-data).</summary>
    private async Task<HashSet<string>> KnownSettingsAsync(string database, CancellationToken cancellationToken)
    {
        if (_knownSettings is { } known)
        {
            return known;
        }
        await using var connection = await OpenAsync(database, cancellationToken).ConfigureAwait(false);
        return _knownSettings = await KnownSettingsAsync(connection, cancellationToken).ConfigureAwait(false);
    }

    private static async Task<HashSet<string>> KnownSettingsAsync(NpgsqlConnection connection, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand("SELECT name FROM pg_settings", connection);
        return new HashSet<string>(await StringsAsync(command, cancellationToken).ConfigureAwait(false), StringComparer.OrdinalIgnoreCase);
    }

    /// <summary>A libpq connection string; values single-quoted so any database name is taken literally.</summary>
    private string ConnInfo(string database, string applicationName = "vya-backupdb") =>
        $"host={ConnValue(Instance.Host)} port={Instance.Port} user={ConnValue(LoadRoleFor(database)?.Name ?? Instance.User)} dbname={ConnValue(database)} application_name={ConnValue(applicationName)}";

    private static string ConnValue(string value) =>
        "'" + value.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("'", "\\'", StringComparison.Ordinal) + "'";

    /// <summary>A PGPASSFILE matching any host, port, database and user of this connection (the load role's on its database).</summary>
    private SecretFile PassFile(string? database = null)
    {
        var password = (database is null ? null : LoadRoleFor(database)?.Password) ?? Instance.Password.Resolve() ?? "";
        if (password.AsSpan().ContainsAny('\n', '\r'))
        {
            // libpq's password file holds one entry per line, with no way to write a line break in one.
            throw new OperationFailedException(
                $"the password of instance {Instance.Name} holds a line break, which cannot be given to pg_dump, pg_restore or psql "
                + "(their password file has one entry per line): change the password");
        }
        var escaped = password.Replace("\\", "\\\\", StringComparison.Ordinal).Replace(":", "\\:", StringComparison.Ordinal);
        return new SecretFile("pgpass", $"*:*:*:*:{escaped}\n");
    }

    private static Dictionary<string, string> Environment(SecretFile passFile) => new()
    {
        ["PGPASSFILE"] = passFile.Path,
        // Plain, stable messages whatever the operator's locale.
        ["LC_MESSAGES"] = "C",
        ["PGCONNECT_TIMEOUT"] = "15",
        // At login, as the tool's own sessions: pg_dump turns the timeouts off only after its first
        // statements, which a database's statement_timeout of 1 ms could cancel.
        ["PGOPTIONS"] = LoadSessionOptions,
    };

    /// <summary>
    /// Given at login, over the server's, the database's and the role's settings (the manifest's are
    /// given to the staging database before the load): a database set read-only by default still
    /// loads, as pg_dumpall's scripts turn it off, and one whose statements time out after 30 s for
    /// its applications still loads and is checked, as pg_dump's scripts turn the timeouts off. `role=none`: a
    /// database or role whose sessions `SET role` to another (`ALTER DATABASE ... SET role`) is read and loaded as
    /// the account that logged in, not as that role (tr108: "permission denied for table t" failed its backups).
    /// </summary>
    private const string LoadSessionOptions =
        "-c default_transaction_read_only=off -c statement_timeout=0 -c lock_timeout=0 -c idle_in_transaction_session_timeout=0 -c role=none";

    /// <summary>One per connection string, as the driver keeps for `new NpgsqlConnection(...)` (no pool: each opens its own).</summary>
    private static readonly System.Collections.Concurrent.ConcurrentDictionary<string, NpgsqlDataSource> DataSources = new(StringComparer.Ordinal);

    /// <summary>
    /// The driver's built-in types serve every query the tool runs (table data moves as COPY text): no query of the
    /// database's own types when a connection opens, which also failed, as "cannot connect", on an enum label the
    /// server cannot convert to UTF-8.
    /// </summary>
    private static NpgsqlDataSource WithoutTypeLoading(string connectionString) =>
        new NpgsqlDataSourceBuilder(connectionString).ConfigureTypeLoading(types => types.EnableTypeLoading(false)).Build();

    /// <param name="bufferBytes">Socket buffers of a connection that moves table data (COPY), else the driver's default.</param>
    private async Task<NpgsqlConnection> OpenAsync(string database, CancellationToken cancellationToken, string? applicationName = null, int? bufferBytes = null)
    {
        var loadRole = LoadRoleFor(database);
        var builder = new NpgsqlConnectionStringBuilder
        {
            ApplicationName = applicationName ?? "vya-backupdb",
            Host = Instance.Host,
            Port = Instance.Port,
            Username = loadRole?.Name ?? Instance.User,
            Password = loadRole?.Password ?? Instance.Password.Resolve(),
            Database = database,
            Timeout = 15,
            // No fixed 30 s per statement: a COPY, an ANALYZE or a lock wait on a big or busy server
            // takes longer; the run's own timeout (the token, which cancels it) bounds them.
            CommandTimeout = 0,
            Pooling = false,
            // Sent in the startup packet: the session's own value (over the database's and role's
            // settings, and what RESET or DISCARD ALL go back to). With only pg_catalog on the path,
            // a function, operator or cast the database defines (public.quote_ident(name)) can
            // never stand in for the catalog's in the tool's queries, which run as the instance's
            // (super)user; pg_dump's own scripts do the same.
            SearchPath = "pg_catalog",
            Options = LoadSessionOptions,
        };
        if (bufferBytes is { } bytes)
        {
            builder.ReadBufferSize = bytes;
            builder.WriteBufferSize = bytes;
        }
        var connection = DataSources.GetOrAdd(builder.ConnectionString, WithoutTypeLoading).CreateConnection();
        try
        {
            if (loadRole is null)
            {
                await connection.OpenAsync(cancellationToken).ConfigureAwait(false);
            }
            else
            {
                await using var window = await loadRole.OpenLoginWindowAsync(cancellationToken).ConfigureAwait(false);
                await connection.OpenAsync(cancellationToken).ConfigureAwait(false);
                await window.CloseAsync(cancellationToken).ConfigureAwait(false);
            }
            return connection;
        }
        catch (Exception e)
        {
            await connection.DisposeAsync().ConfigureAwait(false);
            if (e is NpgsqlException or PostgresException)
            {
                throw new OperationFailedException(
                    $"cannot connect to {Instance.Name} ({Instance.Host}:{Instance.Port}) database {database} as {builder.Username}: {(e is PostgresException p ? p.MessageText : e.Message)}", e);
            }
            throw;
        }
    }

    /// <summary>The first column of each row <paramref name="command"/> returns.</summary>
    private static async Task<List<string>> StringsAsync(NpgsqlCommand command, CancellationToken cancellationToken)
    {
        var values = new List<string>();
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            values.Add(reader.GetString(0));
        }
        return values;
    }

    private static async Task<object?> Scalar(NpgsqlConnection connection, string sql, CancellationToken cancellationToken, string? database = null)
    {
        await using var command = new NpgsqlCommand(sql, connection);
        if (database is not null)
        {
            command.Parameters.AddWithValue("db", database);
        }
        return await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false);
    }

    private static async Task Execute(NpgsqlConnection connection, string sql, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand(sql, connection);
        try
        {
            await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (PostgresException e)
        {
            throw new OperationFailedException(e.MessageText, e);
        }
    }
}
