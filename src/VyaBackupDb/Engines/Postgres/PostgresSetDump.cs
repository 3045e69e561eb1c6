using System.Collections.Concurrent;
using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using System.Threading.Channels;
using Npgsql;
using VyaBackupDb.Catalog;
using VyaBackupDb.Errors;
using VyaBackupDb.Sources.Sets;

namespace VyaBackupDb.Engines.Postgres;

/// <summary>
/// The parallel backup (<c>engine: parallel</c>): one exported snapshot, schema and post-data from
/// pg_dump with <c>--snapshot</c>, the table data by <c>COPY ... TO STDOUT</c> on several
/// connections that import the snapshot, cut into chunks on row boundaries.
/// </summary>
public sealed partial class PostgresEngine
{
    /// <summary>A data chunk's target size: rows are added until it is reached (one row may be bigger).</summary>
    internal const int ChunkBytes = 8 << 20;

    /// <summary>Tables larger than this are read in page ranges on several connections (PostgreSQL 14+: TID range scans); tests lower it.</summary>
    internal static long MinSplitBytes { get; set; } = 64L << 20;

    private const int ReadBytes = 1 << 20;

    /// <summary>The driver's socket buffers on connections that move COPY data (its default, 8 KiB, means a read per row or two).</summary>
    private const int CopyBufferBytes = 1 << 20;

    /// <summary>A table whose rows go into the set as chunks.</summary>
    private sealed record CopyTable(long Oid, string Schema, string Table, string Name, IReadOnlyList<string> Columns, long Bytes)
    {
        public string Quoted => QuoteIdentifier(Schema) + "." + QuoteIdentifier(Table);

        public string ColumnList => string.Join(", ", Columns.Select(QuoteIdentifier));
    }

    /// <summary>A piece of work for a reader: a whole table, or the pages [From, To) of one (To null: to its end).</summary>
    private sealed record CopyPiece(CopyTable Table, long? FromPage, long? ToPage)
    {
        public string Command => FromPage is not { } from
            ? $"COPY {Table.Quoted}" + (Table.Columns.Count == 0 ? "" : $" ({Table.ColumnList})") + " TO STDOUT"
            : $"COPY (SELECT {Table.ColumnList} FROM ONLY {Table.Quoted} "
                + string.Create(CultureInfo.InvariantCulture, $"WHERE ctid >= '({from},0)'::pg_catalog.tid")
                + (ToPage is { } to ? string.Create(CultureInfo.InvariantCulture, $" AND ctid < '({to},0)'::pg_catalog.tid") : "")
                + ") TO STDOUT";
    }

    private async Task<DumpDetails> DumpSetCoreAsync(string database, BackupSetWriter set, int jobs, CancellationToken cancellationToken)
    {
        jobs = Math.Max(1, jobs);
        var client = await ChooseClientAsync(cancellationToken).ConfigureAwait(false);
        var sessions = await OpenSessionsAsync(database, 2, [SessionSettings], cancellationToken).ConfigureAwait(false);
        await using var connection = sessions[0];
        await using var current = sessions[1];
        // The snapshot every reader and both pg_dump runs share.
        var taken = await TakeSnapshotAsync(connection, current, holdLocks: true, cancellationToken).ConfigureAwait(false);
        await using var transaction = taken.Transaction;
        var (snapshot, copyTables) = (taken.Name, taken.Tables);
        var (tables, sequences, objects, settings) = await ReadDumpCatalogAsync(connection, cancellationToken).ConfigureAwait(false);
        var blockSize = Convert.ToInt64(await Scalar(connection, "SELECT current_setting('block_size')::bigint", cancellationToken).ConfigureAwait(false),
            CultureInfo.InvariantCulture);

        using var passFile = PassFile();
        var pgDump = Path.Combine(client.BinDir, "pg_dump");
        using var failed = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        // Spooled: a set entry's size must be known before it is stored.
        await using var schema = Pipeline.TempSpool.CreateFile();
        await using var keys = Pipeline.TempSpool.CreateFile();
        await using var post = Pipeline.TempSpool.CreateFile();
        // Post-data as an archive (pg_dump's custom format), whose list of entries says which are the
        // tables' keys: those go into keys.sql before the data, so that a restore can build each table's
        // as soon as its rows are in; the rest into post.sql, after the rest of the data section
        // (sequences, large objects, extensions' configuration tables; the data of the tables copied
        // here left out, each by its exact name), which is dumped while the data is read.
        var postData = DumpPostDataAsync(pgDump, database, snapshot, connection, passFile, failed.Token);
        // The sequences' values as the data section sets them (see AsDumped).
        var dataCounter = new PostgresRowCounter(post);
        var postDump = Task.Run(async () =>
        {
            var archive = await postData.ConfigureAwait(false);
            await RunPgDumpAsync(pgDump,
                DumpArguments(database, snapshot, ["--section=data", .. copyTables.Select(t => "--exclude-table-data=" + ExactPattern(t))]),
                Environment(passFile), dataCounter, failed.Token).ConfigureAwait(false);
            await archive.WriteAsync(archive.Rest, post, failed.Token).ConfigureAwait(false);
        });
        _ = postDump.ContinueWith(_ => failed.Cancel(), CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted, TaskScheduler.Default);
        // The readers log in while pg_dump writes the schema. Every one imports the snapshot before any reads: the
        // exporting transaction is open until all have.
        var readers = OpenSessionsAsync(database, Math.Min(jobs, copyTables.Count),
            [SessionSettings, "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY", $"SET TRANSACTION SNAPSHOT '{snapshot}'"], failed.Token,
            CopyBufferBytes);
        try
        {
            await RunPgDumpAsync(pgDump, DumpArguments(database, snapshot, ["--section=pre-data"]), Environment(passFile), schema, failed.Token)
                .ConfigureAwait(false);
            schema.Position = 0;
            await set.WriteSchemaAsync(schema, schema.Length, failed.Token).ConfigureAwait(false);
            var archive = await postData.ConfigureAwait(false);
            if (archive.Keys.Count > 0)
            {
                await archive.WriteAsync(archive.Keys, keys, failed.Token).ConfigureAwait(false);
                keys.Position = 0;
                await set.WriteKeysAsync(keys, keys.Length, failed.Token).ConfigureAwait(false);
            }

            var rows = await CopyAllAsync(await readers.ConfigureAwait(false), copyTables, blockSize, set, jobs, failed).ConfigureAwait(false);
            await postDump.ConfigureAwait(false);
            await RequireUnchangedSinceSnapshotAsync(connection, current, cancellationToken).ConfigureAwait(false);
            post.Position = 0;
            await set.WritePostAsync(post, post.Length, cancellationToken).ConfigureAwait(false);

            var inventory = new DatabaseInventory(await BackupRowsAsync(connection, tables, rows, cancellationToken).ConfigureAwait(false),
                AsDumped(sequences, dataCounter.Sequences), objects);
            var warning = await WarningsAsync(connection, inventory, settings.Encoding, cancellationToken).ConfigureAwait(false);
            await transaction.RollbackAsync(cancellationToken).ConfigureAwait(false);
            return new DumpDetails("pg_dump+copy", client.Version, inventory, warning, settings) { SourcePosition = taken.Position };
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested && postDump.IsFaulted)
        {
            // pg_dump failed first (cancelling the rest): its error is the one to report.
            await postDump.ConfigureAwait(false);
            throw;
        }
        catch
        {
            await failed.CancelAsync().ConfigureAwait(false);
            try
            {
                await postDump.ConfigureAwait(false);
            }
            catch (Exception e) when (e is VyaException or OperationCanceledException or IOException)
            {
                // The first failure is the one reported.
            }
            throw;
        }
        finally
        {
            if (postData.IsCompletedSuccessfully)
            {
                await postData.Result.DisposeAsync().ConfigureAwait(false);
            }
            await CloseAllAsync(readers).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// pg_dump's post-data section in its custom format (a private temp file), with its list of
    /// entries (<c>pg_restore --list</c>) parted into the tables' keys and the rest. Each part is
    /// written out as SQL by <c>pg_restore --use-list</c>, exactly as pg_dump's plain format has it.
    /// </summary>
    private sealed class PostDataArchive(Pipeline.SpoolFile file, string pgRestore, string[] ownership, IReadOnlyDictionary<string, string> environment)
        : IAsyncDisposable
    {
        /// <summary>The primary-key, unique and exclusion constraints and the indexes of tables (not of materialized views).</summary>
        public List<string> Keys { get; } = [];

        public List<string> Rest { get; } = [];

        public string Path => file.Name;

        /// <summary>Appends the SQL of <paramref name="entries"/> (lines of the archive's list) to <paramref name="output"/>.</summary>
        public async Task WriteAsync(IReadOnlyList<string> entries, Stream output, CancellationToken cancellationToken)
        {
            await using var list = Pipeline.TempSpool.CreateFile(".list");
            await list.WriteAsync(Encoding.UTF8.GetBytes(string.Join('\n', entries) + "\n"), cancellationToken).ConfigureAwait(false);
            await list.FlushAsync(cancellationToken).ConfigureAwait(false);
            await ChildProcess.RunAsync(pgRestore, [.. ownership, $"--use-list={list.Name}", "--file=-", file.Name], environment, null, output,
                cancellationToken).ConfigureAwait(false);
        }

        public ValueTask DisposeAsync() => file.DisposeAsync();
    }

    /// <summary>
    /// Dumps post-data (<see cref="PostDataArchive"/>) and parts its entries: an INDEX (pg_class's
    /// oid 1259 in the list line) or CONSTRAINT (pg_constraint's, 2606: primary key, unique,
    /// exclusion; foreign keys and checks have other types) is a key when the snapshot's catalog says
    /// its table is an ordinary or partitioned table.
    /// </summary>
    private async Task<PostDataArchive> DumpPostDataAsync(
        string pgDump, string database, string snapshot, NpgsqlConnection connection, SecretFile passFile, CancellationToken cancellationToken)
    {
        var pgRestore = Path.Combine(Path.GetDirectoryName(pgDump)!, "pg_restore");
        var environment = Environment(passFile);
        var archive = new PostDataArchive(Pipeline.TempSpool.CreateFile(".dump"), pgRestore, OwnershipArguments, environment);
        try
        {
            await RunPgDumpAsync(pgDump, DumpArguments(database, snapshot, ["--section=post-data", "--compress=0", $"--file={archive.Path}"], "custom"),
                environment, null, cancellationToken).ConfigureAwait(false);
            using var listing = new MemoryStream();
            await ChildProcess.RunAsync(pgRestore, ["--list", archive.Path], environment, null, listing, cancellationToken).ConfigureAwait(false);
            // Each entry with, for an index or a constraint, its catalog's oid and its own.
            var entries = Encoding.UTF8.GetString(listing.GetBuffer(), 0, (int)listing.Length).Split('\n')
                .Where(line => line.Length > 0 && !line.StartsWith(';'))
                .Select(line => (Line: line, Key: KeyEntry().Match(line) is { Success: true } m
                    ? (m.Groups["catalog"].Value, long.Parse(m.Groups["oid"].Value, CultureInfo.InvariantCulture))
                    : ((string Catalog, long Oid)?)null))
                .ToList();
            var candidates = entries.Select(e => e.Key).OfType<(string Catalog, long Oid)>().ToList();
            var keys = new HashSet<(string, long)>();
            if (candidates.Count > 0)
            {
                await using var command = new NpgsqlCommand(
                    "SELECT '1259', i.indexrelid::bigint FROM pg_catalog.pg_index i JOIN pg_catalog.pg_class t ON t.oid = i.indrelid "
                    + "WHERE i.indexrelid::bigint = ANY($1) AND t.relkind IN ('r', 'p') "
                    + "UNION ALL SELECT '2606', c.oid::bigint FROM pg_catalog.pg_constraint c JOIN pg_catalog.pg_class t ON t.oid = c.conrelid "
                    + "WHERE c.oid::bigint = ANY($2) AND t.relkind IN ('r', 'p')", connection);
                command.Parameters.Add(new NpgsqlParameter { Value = candidates.Where(c => c.Catalog == "1259").Select(c => c.Oid).ToArray() });
                command.Parameters.Add(new NpgsqlParameter { Value = candidates.Where(c => c.Catalog == "2606").Select(c => c.Oid).ToArray() });
                await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
                while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                {
                    keys.Add((reader.GetString(0), reader.GetInt64(1)));
                }
            }
            foreach (var (line, key) in entries)
            {
                (key is { } k && keys.Contains(k) ? archive.Keys : archive.Rest).Add(line);
            }
            return archive;
        }
        catch
        {
            await archive.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>A line of <c>pg_restore --list</c> for an index or a (key) constraint: "dump id; catalog oid TYPE ...".</summary>
    [GeneratedRegex(@"^[0-9]+; (?<catalog>1259) (?<oid>[0-9]+) INDEX |^[0-9]+; (?<catalog>2606) (?<oid>[0-9]+) CONSTRAINT ")]
    private static partial Regex KeyEntry();

    /// <summary>What pg_dump is run with (the plain dump and the parts of a set): the same flags, owners and snapshot.</summary>
    /// <remarks>
    /// --lock-wait-timeout: pg_dump locks every table it dumps, and waits behind a session queued
    /// for one exclusively (an ALTER TABLE asked for after the backup's own connection locked the
    /// tables), which waits for the backup: neither would ever go on.
    /// </remarks>
    private string[] DumpArguments(string database, string snapshot, IReadOnlyList<string> extra, string format = "plain") =>
        [
            $"--format={format}", .. OwnershipArguments, "--no-password", "--encoding=UTF8",
            string.Create(CultureInfo.InvariantCulture, $"--lock-wait-timeout={Instance.LockWaitSeconds}s"),
            "--quote-all-identifiers", $"--snapshot={snapshot}", .. extra,
            $"--dbname={ConnInfo(database)}",
        ];

    /// <summary>For pg_dump and pg_restore alike: owners: true keeps OWNER TO and GRANT/REVOKE (the restore then needs those roles).</summary>
    private string[] OwnershipArguments => Instance.Owners ? [] : ["--no-owner", "--no-privileges"];

    /// <summary>
    /// Settings of every session that reads or loads a set, as pg_dump's: nothing times out, output
    /// in the formats any server reads back, names qualified (search_path empty), row security an
    /// error rather than a filter.
    /// </summary>
    private const string SessionSettings =
        "SET statement_timeout = 0; SET lock_timeout = 0; SET idle_in_transaction_session_timeout = 0; "
        + "SET DateStyle = ISO; SET IntervalStyle = postgres; SET extra_float_digits = 3; SET xmloption = content; "
        + "SET row_security = off; SELECT pg_catalog.set_config('search_path', '', false)";

    /// <summary>A pg_dump pattern matching exactly this table: both names double-quoted (where nothing is a wildcard), quotes doubled.</summary>
    private static string ExactPattern(CopyTable table) => QuoteIdentifier(table.Schema) + "." + QuoteIdentifier(table.Table);

    [GeneratedRegex(@"^[0-9A-Fa-f-]{1,64}\z")]
    private static partial Regex SnapshotName();

    /// <summary>A backup's snapshot (see <see cref="TakeSnapshotAsync"/>) and where it stands in the WAL.</summary>
    private sealed record BackupSnapshot(NpgsqlTransaction Transaction, string Name, string? Position, List<CopyTable> Tables);

    /// <summary>How many snapshots a backup takes before it gives up on tables changed under it.</summary>
    private const int SnapshotAttempts = 3;

    /// <summary>
    /// Exports the snapshot a backup reads, in a repeatable-read transaction on <paramref name="connection"/>,
    /// and share-locks its tables, waiting lock_wait_seconds at most for a session that holds one
    /// exclusively. pg_dump and COPY read rows and catalog in the snapshot, but much of what they write
    /// comes from the current catalog: the table a name stands for, how a row's values are printed
    /// (a column's or a composite type's current definition, an enum value's current name), and the
    /// definitions pg_dump asks the server for (pg_get_indexdef, pg_get_viewdef, pg_get_triggerdef, a
    /// function's defaults, a default's sequence). TRUNCATE and table rewrites (ALTER TABLE ... TYPE,
    /// VACUUM FULL, CLUSTER) are not MVCC-safe either: they show the table empty to the snapshot. So
    /// an object of the snapshot changed, renamed or dropped since it was taken, as <paramref name="current"/>
    /// (a session outside it) sees once the locks are held, makes the backup take the snapshot again.
    /// </summary>
    /// <param name="holdLocks">
    /// Hold the locks to the transaction's end (engine: parallel, whose readers lock each table only as they
    /// come to it). Else they are let go once checked (engine: dump): pg_dump takes its own, and ours would
    /// double what the server's lock table must hold and keep pg_dump's waiting behind any ALTER queued
    /// behind them. Both engines end with <see cref="RequireUnchangedSinceSnapshotAsync"/>: most DDL
    /// (a function or a type changed, a schema renamed, an index re-created) takes no lock a table's
    /// share lock holds off.
    /// </param>
    private async Task<BackupSnapshot> TakeSnapshotAsync(
        NpgsqlConnection connection, NpgsqlConnection current, bool holdLocks, CancellationToken cancellationToken)
    {
        for (var attempt = 1; ; attempt++)
        {
            var transaction = await connection.BeginTransactionAsync(System.Data.IsolationLevel.RepeatableRead, cancellationToken)
                .ConfigureAwait(false);
            string? changed;
            try
            {
                // Where the snapshot stands in the WAL is read just after it was taken, so every transaction
                // it sees committed before that position.
                string snapshot;
                string? position;
                await using (var command = new NpgsqlCommand(
                    "SELECT pg_catalog.pg_export_snapshot(), CASE WHEN pg_catalog.pg_is_in_recovery() THEN pg_catalog.pg_last_wal_replay_lsn() "
                    + "ELSE pg_catalog.pg_current_wal_lsn() END::text", connection))
                await using (var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false))
                {
                    await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
                    snapshot = reader.GetString(0);
                    position = reader.IsDBNull(1) ? null : reader.GetString(1);
                }
                if (!SnapshotName().IsMatch(snapshot))
                {
                    throw new OperationFailedException($"the server exported an unexpected snapshot name '{snapshot}'");
                }
                if (!holdLocks)
                {
                    await ExecuteAsync(connection, "SAVEPOINT locks", cancellationToken).ConfigureAwait(false);
                }
                var tables = await WithLockTimeoutAsync(connection, Instance.LockWaitSeconds, async () =>
                {
                    var found = await ReadCopyTablesAsync(connection, cancellationToken).ConfigureAwait(false);
                    await LockAsync(connection, found, cancellationToken).ConfigureAwait(false);
                    return found;
                }, cancellationToken).ConfigureAwait(false);
                changed = await ChangedSinceSnapshotAsync(connection, current, cancellationToken).ConfigureAwait(false);
                if (changed is null)
                {
                    if (!holdLocks)
                    {
                        // Locks taken in a savepoint go with it.
                        await ExecuteAsync(connection, "ROLLBACK TO SAVEPOINT locks", cancellationToken).ConfigureAwait(false);
                    }
                    return new BackupSnapshot(transaction, snapshot, position, tables);
                }
            }
            // A table dropped or renamed since the snapshot: its name locks nothing.
            catch (OperationFailedException e) when ((e.InnerException as PostgresException)?.SqlState == PostgresErrorCodes.UndefinedTable)
            {
                changed = e.Message;
            }
            catch
            {
                await transaction.DisposeAsync().ConfigureAwait(false);
                throw;
            }
            await transaction.DisposeAsync().ConfigureAwait(false);
            if (attempt == SnapshotAttempts)
            {
                throw new OperationFailedException($"the database changed under each of the backup's {SnapshotAttempts} snapshots "
                    + $"(last: {changed}); nothing was stored: try again when no schema change, TRUNCATE or VACUUM FULL runs");
            }
        }
    }

    /// <summary>
    /// Once the data is read: a change the locks did not hold off (see <see cref="TakeSnapshotAsync"/>) fails the
    /// backup. engine: dump let its locks go before pg_dump took its own.
    /// </summary>
    private async Task RequireUnchangedSinceSnapshotAsync(NpgsqlConnection connection, NpgsqlConnection current, CancellationToken cancellationToken)
    {
        if (await ChangedSinceSnapshotAsync(connection, current, cancellationToken).ConfigureAwait(false) is { } changed)
        {
            throw new OperationFailedException($"{changed} after the backup's snapshot, while the backup ran, so the dump could hold it "
                + "wrongly; nothing was stored: run the backup again");
        }
    }

    /// <summary>
    /// The catalog rows that define the database's own objects, each with its version (xmin: a row changed
    /// is a new row version), its object's name and, for a relation, its file; and the roles' names. Rows only in-place updates
    /// touch (statistics, VACUUM's bookkeeping, an index's creation) keep their version.
    /// </summary>
    /// <remarks>Columns: rank (the catalog, schemas first), kind, oid, number (a column's), version, name, file.</remarks>
    private string CatalogRowsSql()
    {
        const string Relation = "pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(c.relname)";
        const string Of = "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname {0}";
        var sql = new List<string>
        {
            "SELECT 1, 'schema', n.oid::bigint, 0, n.xmin::text, pg_catalog.quote_ident(n.nspname), NULL::bigint FROM pg_catalog.pg_namespace n WHERE n.nspname {0}",
            "SELECT 2, CASE WHEN c.relkind IN ('r', 'p') THEN 'table' WHEN c.relkind = 'v' THEN 'view' WHEN c.relkind = 'm' THEN 'materialized view' "
                + "WHEN c.relkind = 'S' THEN 'sequence' WHEN c.relkind IN ('i', 'I') THEN 'index' WHEN c.relkind = 'c' THEN 'type' ELSE 'relation' END, "
                // An index's own row changes with its file (REINDEX), which pg_dump, asking for its definition, does not mind.
                + $"c.oid::bigint, 0, CASE WHEN c.relkind IN ('i', 'I') THEN '' ELSE c.xmin::text END, {Relation}, "
                + $"CASE WHEN c.relkind IN ('i', 'I') THEN NULL ELSE c.relfilenode::bigint END FROM pg_catalog.pg_class c {Of}",
            $"SELECT 3, 'column', a.attrelid::bigint, a.attnum::integer, a.xmin::text, {Relation} || '.' || pg_catalog.quote_ident(a.attname), NULL "
                + $"FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_class c ON c.oid = a.attrelid {Of} AND a.attnum > 0",
            $"SELECT 4, 'default of column', d.oid::bigint, 0, d.xmin::text, {Relation} || '.' || pg_catalog.quote_ident(a.attname), NULL "
                + "FROM pg_catalog.pg_attrdef d JOIN pg_catalog.pg_attribute a ON a.attrelid = d.adrelid AND a.attnum = d.adnum "
                + $"JOIN pg_catalog.pg_class c ON c.oid = d.adrelid {Of}",
            $"SELECT 5, 'index', i.indexrelid::bigint, 0, i.xmin::text, {Relation}, NULL FROM pg_catalog.pg_index i "
                + $"JOIN pg_catalog.pg_class c ON c.oid = i.indexrelid {Of}",
            $"SELECT 7, 'trigger', t.oid::bigint, 0, t.xmin::text, pg_catalog.quote_ident(t.tgname) || ' on ' || {Relation}, NULL "
                + $"FROM pg_catalog.pg_trigger t JOIN pg_catalog.pg_class c ON c.oid = t.tgrelid {Of}",
            $"SELECT 8, 'rule', r.oid::bigint, 0, r.xmin::text, pg_catalog.quote_ident(r.rulename) || ' on ' || {Relation}, NULL "
                + $"FROM pg_catalog.pg_rewrite r JOIN pg_catalog.pg_class c ON c.oid = r.ev_class {Of}",
            $"SELECT 9, 'policy', p.oid::bigint, 0, p.xmin::text, pg_catalog.quote_ident(p.polname) || ' on ' || {Relation}, NULL "
                + $"FROM pg_catalog.pg_policy p JOIN pg_catalog.pg_class c ON c.oid = p.polrelid {Of}",
            "SELECT 12, 'enum value', e.oid::bigint, 0, e.xmin::text, "
                + "pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(t.typname) || '.' || pg_catalog.quote_literal(e.enumlabel), NULL "
                + "FROM pg_catalog.pg_enum e JOIN pg_catalog.pg_type t ON t.oid = e.enumtypid JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace "
                + "WHERE n.nspname {0}",
        };
        // Objects of a schema, by name: the text search configurations, collations, operators and operator
        // classes are named in expressions and definitions (a generated column's, a view's, an index's).
        foreach (var (rank, kind, catalog, name, schema) in new[]
        {
            (6, "constraint", "pg_constraint", "conname", "connamespace"),
            (10, "function", "pg_proc", "proname", "pronamespace"),
            (11, "type", "pg_type", "typname", "typnamespace"),
            (14, "statistics", "pg_statistic_ext", "stxname", "stxnamespace"),
            (15, "text search configuration", "pg_ts_config", "cfgname", "cfgnamespace"),
            (16, "text search dictionary", "pg_ts_dict", "dictname", "dictnamespace"),
            (17, "collation", "pg_collation", "collname", "collnamespace"),
            (18, "operator", "pg_operator", "oprname", "oprnamespace"),
            (19, "operator class", "pg_opclass", "opcname", "opcnamespace"),
            (20, "operator family", "pg_opfamily", "opfname", "opfnamespace"),
        }.Where(o => o.Item3 != "pg_statistic_ext" || _serverMajor >= 10)) // PostgreSQL 10+
        {
            sql.Add($"SELECT {rank}, '{kind}', x.oid::bigint, 0, x.xmin::text, pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(x.{name}), NULL "
                + $"FROM pg_catalog.{catalog} x JOIN pg_catalog.pg_namespace n ON n.oid = x.{schema} WHERE n.nspname {{0}}");
        }
        sql.Add("SELECT 21, 'text search mapping', m.mapcfg::bigint, m.maptokentype * 1000 + m.mapseqno, m.xmin::text, "
            + "pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(x.cfgname), NULL FROM pg_catalog.pg_ts_config_map m "
            + "JOIN pg_catalog.pg_ts_config x ON x.oid = m.mapcfg JOIN pg_catalog.pg_namespace n ON n.oid = x.cfgnamespace WHERE n.nspname {0}");
        // Roles are named in grants and policies. Their names are the server's, in the bytes of the database they were
        // created from (not always UTF-8): read as bytes, so that one unreadable role fails no database's backup.
        sql.Add($"SELECT {RoleRank}, 'role', r.oid::bigint, 0, '', pg_catalog.encode(pg_catalog.textsend(pg_catalog.quote_ident(r.rolname)), 'base64'), NULL "
            + "FROM pg_catalog.pg_roles r");
        if (_serverMajor >= 10)
        {
            sql.Add($"SELECT 13, 'sequence', q.seqrelid::bigint, 0, q.xmin::text, {Relation}, NULL FROM pg_catalog.pg_sequence q "
                + $"JOIN pg_catalog.pg_class c ON c.oid = q.seqrelid {Of}");
        }
        return string.Format(CultureInfo.InvariantCulture, string.Join(" UNION ALL ", sql) + " ORDER BY 1, 3, 4",
            string.Format(CultureInfo.InvariantCulture, UserSchemas, "n.nspname"));
    }

    private const int RoleRank = 22;

    /// <summary>A name the server sent as bytes, as text; one that is not UTF-8 with its bytes above ASCII as \xNN.</summary>
    private static string NameOf(byte[] bytes) =>
        StrictUtf8.Decode(bytes) ?? string.Concat(bytes.Select(b => b < 0x80 ? ((char)b).ToString() : $"\\x{b:X2}"));

    /// <summary>A catalog row of <see cref="CatalogRowsSql"/>.</summary>
    private sealed record CatalogRow(string Kind, string Version, string Name, long? File);

    /// <summary>
    /// The first object of the snapshot (on <paramref name="snapshot"/>) changed, renamed or dropped since, as
    /// <paramref name="current"/> (a session outside it) sees it, in words; null if none. Objects created since are
    /// not in the snapshot, and nothing of the backup reads them.
    /// </summary>
    private async Task<string?> ChangedSinceSnapshotAsync(NpgsqlConnection snapshot, NpgsqlConnection current, CancellationToken cancellationToken)
    {
        var now = new Dictionary<(int Rank, long Oid, int Number), CatalogRow>();
        await foreach (var (key, row) in CatalogRowsAsync(current, cancellationToken).ConfigureAwait(false))
        {
            now[key] = row;
        }
        await foreach (var (key, then) in CatalogRowsAsync(snapshot, cancellationToken).ConfigureAwait(false))
        {
            if (!now.TryGetValue(key, out var row))
            {
                // Roles are the server's: others come and go (a restore's own), and one still named by an
                // object of the database cannot be dropped without changing that object.
                if (key.Rank == RoleRank)
                {
                    continue;
                }
                return $"{then.Kind} {then.Name} was dropped";
            }
            if (row.Name != then.Name)
            {
                return $"{then.Kind} {then.Name} was renamed {row.Name} (ALTER ... RENAME)";
            }
            if (row.File != then.File)
            {
                return $"{then.Kind} {then.Name} was truncated, rewritten or dropped (TRUNCATE, ALTER TABLE, VACUUM FULL)";
            }
            if (row.Version != then.Version)
            {
                return $"{then.Kind} {then.Name} was changed (ALTER, CREATE OR REPLACE, GRANT, ...)";
            }
        }
        return null;
    }

    private async IAsyncEnumerable<((int Rank, long Oid, int Number) Key, CatalogRow Row)> CatalogRowsAsync(
        NpgsqlConnection connection, [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand(CatalogRowsSql(), connection);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            var rank = reader.GetInt32(0);
            var name = rank == RoleRank ? NameOf(Convert.FromBase64String(reader.GetString(5))) : reader.GetString(5);
            yield return ((rank, reader.GetInt64(2), reader.GetInt32(3)),
                new CatalogRow(reader.GetString(1), reader.GetString(4), name, reader.IsDBNull(6) ? null : reader.GetInt64(6)));
        }
    }

    /// <summary>
    /// The tables whose rows are copied: ordinary tables (leaf partitions included, each with its own
    /// rows) that are not an extension's (pg_dump writes what an extension's configuration tables
    /// hold beyond what CREATE EXTENSION puts there); every column but generated ones.
    /// </summary>
    private async Task<List<CopyTable>> ReadCopyTablesAsync(NpgsqlConnection connection, CancellationToken cancellationToken)
    {
        var generated = _serverMajor >= 12 ? " AND a.attgenerated = ''" : "";
        var sql =
            "SELECT c.oid::bigint, n.nspname, c.relname, pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(c.relname), "
            + "coalesce((SELECT array_agg(a.attname::text ORDER BY a.attnum) FROM pg_catalog.pg_attribute a "
            + $"WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped{generated}), '{{}}'), "
            + "coalesce(pg_catalog.pg_relation_size(c.oid), 0) "
            + "FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
            + "WHERE c.relkind = 'r' AND n.nspname " + string.Format(CultureInfo.InvariantCulture, UserSchemas, "n.nspname")
            + " AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.objid = c.oid AND d.deptype = 'e')";
        var list = new List<CopyTable>();
        await using var command = new NpgsqlCommand(sql, connection);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            list.Add(new CopyTable(reader.GetInt64(0), reader.GetString(1), reader.GetString(2), reader.GetString(3),
                reader.GetFieldValue<string[]>(4), reader.GetInt64(5)));
        }
        return list;
    }

    private static async Task LockAsync(NpgsqlConnection connection, List<CopyTable> tables, CancellationToken cancellationToken)
    {
        foreach (var batch in tables.Chunk(500))
        {
            await Execute(connection, "LOCK TABLE " + string.Join(", ", batch.Select(t => "ONLY " + t.Quoted)) + " IN ACCESS SHARE MODE",
                cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Runs <paramref name="work"/> with the session's lock_timeout at <paramref name="waitSeconds"/>; a lock it waited for longer fails the backup, saying why.</summary>
    private static async Task<T> WithLockTimeoutAsync<T>(NpgsqlConnection connection, int waitSeconds, Func<Task<T>> work, CancellationToken cancellationToken)
    {
        await ExecuteAsync(connection, $"SET lock_timeout = '{waitSeconds}s'", cancellationToken).ConfigureAwait(false);
        try
        {
            var result = await work().ConfigureAwait(false);
            await ExecuteAsync(connection, "SET lock_timeout = 0", cancellationToken).ConfigureAwait(false);
            return result;
        }
        // The lock timeout as the server reports it, or as Execute wraps it.
        catch (Exception e) when ((e as PostgresException ?? e.InnerException as PostgresException)?.SqlState == "55P03")
        {
            throw LockWaitFailure(waitSeconds, e);
        }
    }

    private static OperationFailedException LockWaitFailure(int waitSeconds, Exception e) =>
        new($"could not lock the tables for the backup within {waitSeconds} s (lock_wait_seconds): "
            + "another session holds one of them exclusively or waits to (ALTER TABLE, VACUUM FULL, LOCK TABLE, ...); try again later", e);

    /// <summary>
    /// Runs pg_dump (with <see cref="DumpArguments"/>); its giving up on a table lock after
    /// --lock-wait-timeout (its messages with LC_MESSAGES=C) is reported as the backup's lock wait.
    /// </summary>
    private async Task RunPgDumpAsync(
        string pgDump, string[] arguments, IReadOnlyDictionary<string, string> environment, Stream? output, CancellationToken cancellationToken)
    {
        try
        {
            await ChildProcess.RunAsync(pgDump, arguments, environment, null, output, cancellationToken).ConfigureAwait(false);
        }
        catch (OperationFailedException e) when (e.Message.Contains("canceling statement due to statement timeout", StringComparison.Ordinal)
            && e.Message.Contains("Query was: LOCK TABLE", StringComparison.Ordinal))
        {
            throw LockWaitFailure(Instance.LockWaitSeconds, e);
        }
    }

    /// <summary>The pieces in <see cref="ReadOrder"/>: a table over <see cref="MinSplitBytes"/> is cut in page ranges (the last one open-ended) when the server scans TID ranges.</summary>
    private List<CopyPiece> Plan(List<CopyTable> tables, int jobs, long blockSize)
    {
        var total = tables.Sum(t => t.Bytes);
        var pieceBytes = Math.Max(MinSplitBytes / 2, total / (jobs * 4L));
        var planned = new List<(IReadOnlyList<CopyPiece> Pieces, long Bytes)>();
        foreach (var table in tables)
        {
            if (jobs == 1 || _serverMajor < 14 || table.Bytes < Math.Max(MinSplitBytes, 2 * pieceBytes))
            {
                planned.Add(([new CopyPiece(table, null, null)], table.Bytes));
                continue;
            }
            var pages = table.Bytes / blockSize;
            var step = Math.Max(1, pieceBytes / blockSize);
            var pieces = new List<CopyPiece>();
            for (long from = 0; from < pages; from += step)
            {
                pieces.Add(new CopyPiece(table, from, from + step >= pages ? null : from + step));
            }
            planned.Add((pieces, table.Bytes));
        }
        return ReadOrder.Of(planned, jobs);
    }

    /// <summary>
    /// Reads every table on the <paramref name="readers"/> (in the snapshot) and writes the chunks into the set;
    /// returns the rows written per table. The first failure cancels the rest.
    /// </summary>
    private async Task<Dictionary<(string Schema, string Table), long>> CopyAllAsync(
        NpgsqlConnection[] readers, List<CopyTable> tables, long blockSize, BackupSetWriter set, int jobs, CancellationTokenSource failed)
    {
        var rows = new ConcurrentDictionary<(string Schema, string Table), long>();
        foreach (var table in tables)
        {
            rows[(table.Schema, table.Table)] = 0;
        }
        var queue = Channel.CreateUnbounded<CopyPiece>();
        foreach (var piece in Plan(tables, jobs, blockSize))
        {
            queue.Writer.TryWrite(piece);
        }
        queue.Writer.Complete();
        await FirstFailureAsync([.. readers.Select(reader => Task.Run(() => ReadPiecesAsync(reader, queue.Reader, set, rows, failed.Token)))], failed)
            .ConfigureAwait(false);
        return new Dictionary<(string, string), long>(rows);
    }

    /// <summary>
    /// Logs in <paramref name="count"/> sessions at once (each login is a process on the server and a few round trips)
    /// and runs <paramref name="setup"/> on each, one statement after the other; on a failure, closes those that opened.
    /// </summary>
    private async Task<NpgsqlConnection[]> OpenSessionsAsync(
        string database, int count, string[] setup, CancellationToken cancellationToken, int? bufferBytes = null)
    {
        var opening = Enumerable.Range(0, count).Select(_ => Task.Run(async () =>
        {
            var session = await OpenAsync(database, cancellationToken, bufferBytes: bufferBytes).ConfigureAwait(false);
            try
            {
                foreach (var statement in setup)
                {
                    await ExecuteAsync(session, statement, cancellationToken).ConfigureAwait(false);
                }
                return session;
            }
            catch
            {
                await session.DisposeAsync().ConfigureAwait(false);
                throw;
            }
        }, CancellationToken.None)).ToList();
        try
        {
            return await Task.WhenAll(opening).ConfigureAwait(false);
        }
        catch
        {
            foreach (var opened in opening.Where(t => t.IsCompletedSuccessfully))
            {
                await opened.Result.DisposeAsync().ConfigureAwait(false);
            }
            throw;
        }
    }

    /// <summary>Closes the sessions <paramref name="opening"/> opened, if it did (its failure was reported where it was awaited).</summary>
    private static async Task CloseAllAsync(Task<NpgsqlConnection[]> opening)
    {
        try
        {
            await opening.ConfigureAwait(false);
        }
        catch (Exception)
        {
            return;
        }
        foreach (var session in opening.Result)
        {
            await session.DisposeAsync().ConfigureAwait(false);
        }
    }

    /// <summary>Waits for all; on the first failure cancels the others and throws that failure (not the cancellations it caused).</summary>
    private static async Task FirstFailureAsync(List<Task> tasks, CancellationTokenSource failed)
    {
        var pending = new List<Task>(tasks);
        Exception? first = null;
        while (pending.Count > 0)
        {
            var done = await Task.WhenAny(pending).ConfigureAwait(false);
            pending.Remove(done);
            if (done.Exception is { } e && first is null)
            {
                first = e.InnerException ?? e;
                await failed.CancelAsync().ConfigureAwait(false);
            }
            else if (done.IsCanceled && first is null && !failed.IsCancellationRequested)
            {
                first = new OperationCanceledException();
            }
        }
        if (first is not null)
        {
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(first);
        }
        foreach (var task in tasks)
        {
            await task.ConfigureAwait(false);
        }
    }

    private static async Task ReadPiecesAsync(
        NpgsqlConnection connection, ChannelReader<CopyPiece> queue, BackupSetWriter set,
        ConcurrentDictionary<(string Schema, string Table), long> rows, CancellationToken cancellationToken)
    {
        var locked = new HashSet<long>();
        var buffers = new ChunkBuffers();
        while (await queue.WaitToReadAsync(cancellationToken).ConfigureAwait(false))
        {
            while (queue.TryRead(out var piece))
            {
                try
                {
                    if (locked.Add(piece.Table.Oid))
                    {
                        // NOWAIT: a session queued for an exclusive lock behind the main connection's
                        // would make this one wait forever (what pg_dump's workers do too).
                        await ExecuteAsync(connection, $"LOCK TABLE ONLY {piece.Table.Quoted} IN ACCESS SHARE MODE NOWAIT", cancellationToken)
                            .ConfigureAwait(false);
                    }
                    var count = await CopyPieceAsync(connection, piece, set, buffers, cancellationToken).ConfigureAwait(false);
                    rows.AddOrUpdate((piece.Table.Schema, piece.Table.Table), count, (_, sum) => sum + count);
                }
                catch (PostgresException e) when (e.SqlState == "55P03")
                {
                    throw new OperationFailedException(
                        $"table {piece.Table.Name} is waiting to be changed by another session (ALTER, DROP, TRUNCATE, ...); "
                        + "the backup stopped rather than wait on it; run it again", e);
                }
                catch (Exception e) when (e is NpgsqlException or PostgresException)
                {
                    throw new OperationFailedException($"reading table {piece.Table.Name} failed: {PostgresFailure.Describe(e)}", e);
                }
            }
        }
    }

    /// <summary>A worker's one buffer: the chunk being filled, from its header on.</summary>
    private sealed class ChunkBuffers
    {
        private const int Size = ChunkBytes + ReadBytes + 4;

        public byte[] Current = GC.AllocateUninitializedArray<byte>(Size);

        /// <summary>A row longer than the buffer: doubled.</summary>
        public void Grow(int keep)
        {
            if ((long)Current.Length * 2 > Array.MaxLength)
            {
                throw new OperationFailedException("a row is too long to be held in one chunk (over 1 GiB of COPY text)");
            }
            var bigger = GC.AllocateUninitializedArray<byte>(Current.Length * 2);
            Current.AsSpan(0, keep).CopyTo(bigger);
            Current = bigger;
        }

        /// <summary>After a long row: back to the usual size once what is kept fits.</summary>
        public void Shrink(int keep)
        {
            if (Current.Length > Size && keep <= ChunkBytes)
            {
                var usual = GC.AllocateUninitializedArray<byte>(Size);
                Current.AsSpan(0, keep).CopyTo(usual);
                Current = usual;
            }
        }
    }

    /// <summary>Copies one piece into chunks of about <see cref="ChunkBytes"/>, each cut after a row; returns the rows.</summary>
    private static async Task<long> CopyPieceAsync(
        NpgsqlConnection connection, CopyPiece piece, BackupSetWriter set, ChunkBuffers buffers, CancellationToken cancellationToken)
    {
        var table = piece.Table;
        var header = PostgresCopyChunk.Header(table.Schema, table.Table, table.Columns);
        long total = 0;
        using var export = await connection.BeginTextExportAsync(piece.Command, cancellationToken).ConfigureAwait(false);
        // The reads below are synchronous: a cancelled run (or another worker's failure) cancels the COPY on the server.
        await using var cancel = cancellationToken.Register(() =>
        {
            try
            {
                ((NpgsqlCopyTextReader)export).Cancel();
            }
            catch (Exception e) when (e is NpgsqlException or ObjectDisposedException or InvalidOperationException or IOException)
            {
                // The COPY ended or broke meanwhile.
            }
        });
        // The raw bytes under the text reader: COPY's text is passed on as the server sent it, never decoded.
        var raw = ((StreamReader)export).BaseStream;
        header.CopyTo(buffers.Current, 0);
        var fill = header.Length;
        var saved = new byte[PostgresCopyChunk.EndLine.Length];
        while (true)
        {
            if (buffers.Current.Length - fill - PostgresCopyChunk.EndLine.Length < ReadBytes / 4)
            {
                buffers.Grow(fill);
            }
            // A read returns one row (one CopyData message) at most: synchronous reads, on this worker's own thread, cost least.
            cancellationToken.ThrowIfCancellationRequested();
            var read = raw.Read(buffers.Current.AsSpan(fill, buffers.Current.Length - fill - PostgresCopyChunk.EndLine.Length));
            if (read == 0)
            {
                if (fill > header.Length)
                {
                    if (buffers.Current[fill - 1] != (byte)'\n')
                    {
                        throw new OperationFailedException($"reading table {table.Name}: the server's COPY data ended inside a row");
                    }
                    total += await EmitAsync(fill).ConfigureAwait(false);
                }
                return total;
            }
            fill += read;
            if (fill - header.Length < ChunkBytes)
            {
                continue;
            }
            var cut = buffers.Current.AsSpan(header.Length, fill - header.Length).LastIndexOf((byte)'\n');
            if (cut < 0)
            {
                continue;
            }
            cut += header.Length + 1;
            // The start of the next row is overwritten by the chunk's end line while it is written: kept aside, then moved up.
            var rest = fill - cut;
            var kept = Math.Min(rest, saved.Length);
            buffers.Current.AsSpan(cut, kept).CopyTo(saved);
            total += await EmitAsync(cut).ConfigureAwait(false);
            saved.AsSpan(0, kept).CopyTo(buffers.Current.AsSpan(cut));
            buffers.Current.AsSpan(cut, rest).CopyTo(buffers.Current.AsSpan(header.Length));
            fill = header.Length + rest;
            buffers.Shrink(fill);
        }

        async Task<long> EmitAsync(int end)
        {
            var chunk = buffers.Current;
            var count = chunk.AsSpan(header.Length, end - header.Length).Count((byte)'\n');
            PostgresCopyChunk.EndLine.CopyTo(chunk.AsSpan(end));
            await set.WriteDataAsync(table.Name, count, chunk.AsMemory(0, end + PostgresCopyChunk.EndLine.Length), cancellationToken)
                .ConfigureAwait(false);
            return count;
        }
    }

    /// <summary>Runs statements whose failure is a server error (wrapped by the caller).</summary>
    private static async Task ExecuteAsync(NpgsqlConnection connection, string sql, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }
}
