using System.Buffers;
using System.Threading.Channels;
using MySqlConnector;
using VyaBackupDb.Errors;
using VyaBackupDb.Sources.Sets;

namespace VyaBackupDb.Engines.MySql;

/// <summary>The parallel restore of a backup set: schema and post-data through the dump restore path, data on several clients at once.</summary>
public sealed partial class MySqlEngine
{
    /// <summary>
    /// Every loader's session. MariaDB loads an empty table's first rows with a table lock held until
    /// that loader commits, and a commit waits out any other session's commit block (another backup's
    /// BACKUP STAGE BLOCK_COMMIT, FLUSH TABLES WITH READ LOCK): the table's other loaders wait on the
    /// lock as long as the commit waits on the block (lock_wait_timeout), not innodb_lock_wait_timeout's 50 s.
    /// MariaDB's CHECK constraints are not checked (<see cref="NoCheckConstraints"/>).
    /// </summary>
    private const string LoaderSettings =
        $"foreign_key_checks = 0, unique_checks = 0 {NoCheckConstraints}, innodb_lock_wait_timeout = @@SESSION.lock_wait_timeout";

    /// <summary>One data chunk read out of the set (a pooled buffer), waiting for a loader.</summary>
    private sealed record LoadChunk(string Entry, byte[] Buffer, int Length);

    private async Task<LoadResult> RestoreSetCoreAsync(string database, BackupSetReader set, RestoreOptions options, int jobs, CancellationToken cancellationToken)
    {
        jobs = Math.Max(1, jobs);
        var schema = await set.NextAsync(cancellationToken).ConfigureAwait(false);
        if (schema is not { Kind: SetEntryKind.Schema })
        {
            throw new InvalidDataException("the backup set does not start with schema.sql");
        }
        // The schema (and below, the triggers) go through the same filter as a plain dump: definers,
        // qualifiers, events created disabled, no other database reachable.
        var schemaLoad = await RestoreThroughClientAsync(database, schema.Content, options, rowsFollow: true, cancellationToken).ConfigureAwait(false);
        await schema.Content.CopyToAsync(Stream.Null, cancellationToken).ConfigureAwait(false);

        var tables = await BaseTablesAsync(database, cancellationToken).ConfigureAwait(false);
        // The binary log stays on (no sql_log_bin = 0): the schema, the swap's RENAME and the triggers
        // reach replicas through it, and a replica given those without the rows would hold empty tables.
        const string preamble = $"SET SESSION {LoaderSettings};\n";

        var deferred = await DeferIndexesAsync(database, cancellationToken).ConfigureAwait(false);

        // LOAD DATA where the server takes it (MariaDB's default; MySQL 8 turns local_infile off) and the config
        // allows it, else INSERTs through clients.
        var columns = Instance.LoadDataLocal && await LoadLocalAllowedAsync(cancellationToken).ConfigureAwait(false)
            ? await InsertedColumnsAsync(database, cancellationToken).ConfigureAwait(false)
            : null;

        // Rows each LOAD DATA put in its table, as the server counted them (the INSERT path through clients counts none).
        var loaded = new System.Collections.Concurrent.ConcurrentDictionary<TableKey, long>();
        SetEntryContent? entry;
        using (var failed = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken))
        {
            // A table's indexes are built as soon as its rows are in (LOAD DATA path: the loaders count its chunks).
            var byTable = deferred.ToDictionary(d => d.Table, StringComparer.Ordinal);
            MySqlConnection? indexing = null;
            var early = columns is null ? null : TableCompletion.Start(set.Expected, byTable.Keys, async (batch, token) =>
            {
                indexing ??= await OpenAsync(token).ConfigureAwait(false);
                foreach (var table in batch)
                {
                    await AddIndexesAsync(indexing, database, byTable[table], failed).ConfigureAwait(false);
                }
            }, failed);
            // One chunk waits while each loader loads one: reading the next takes a fraction of loading one, and
            // memory stays at about jobs + 2 chunks (8 MiB each).
            var chunks = Channel.CreateBounded<LoadChunk>(new BoundedChannelOptions(1) { SingleWriter = true });
            var loaders = Enumerable.Range(0, jobs).Select(_ => Task.Run(() => columns is null
                ? LoadChunksAsync(database, chunks.Reader, tables, preamble, failed)
                : BulkLoadChunksAsync(database, chunks.Reader, tables, columns, loaded, early, failed), failed.Token)).ToList();
            try
            {
                while ((entry = await set.NextAsync(failed.Token).ConfigureAwait(false)) is { Kind: SetEntryKind.Data })
                {
                    await chunks.Writer.WriteAsync(await ReadChunkAsync(entry, failed.Token).ConfigureAwait(false), failed.Token).ConfigureAwait(false);
                }
                chunks.Writer.Complete();
                await Task.WhenAll(loaders).ConfigureAwait(false);
                if (early is not null)
                {
                    var built = await early.FinishAsync().ConfigureAwait(false);
                    deferred = [.. deferred.Where(d => !built.Contains(d.Table))];
                }
            }
            catch (Exception ours)
            {
                chunks.Writer.TryComplete();
                await failed.CancelAsync().ConfigureAwait(false);
                try
                {
                    await Task.WhenAll([.. loaders, early?.Worker ?? Task.CompletedTask]).ConfigureAwait(false);
                }
                catch (Exception) when (ours is OperationCanceledException && !cancellationToken.IsCancellationRequested)
                {
                    // The reader was cancelled because a loader (or the index builder) failed: its error is the one to report.
                    var first = loaders.Append(early?.Worker ?? Task.CompletedTask).Where(t => t.IsFaulted).Select(t => t.Exception!.InnerException!).FirstOrDefault(e => e is not OperationCanceledException);
                    if (first is not null)
                    {
                        System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(first);
                    }
                    throw;
                }
                catch (Exception)
                {
                    // Ours is the cause; the loaders only stopped because of it.
                }
                throw;
            }
            finally
            {
                if (indexing is not null)
                {
                    await indexing.DisposeAsync().ConfigureAwait(false);
                }
            }
        }
        if (entry is not { Kind: SetEntryKind.Post })
        {
            throw new InvalidDataException(entry is null ? "the backup set ends without post.sql" : $"the backup set's entry '{entry.Name}' is out of order");
        }
        await AddIndexesAsync(database, deferred, jobs, cancellationToken).ConfigureAwait(false);
        var postLoad = await RestoreThroughClientAsync(database, entry.Content, options, rowsFollow: false, cancellationToken).ConfigureAwait(false);
        await entry.Content.CopyToAsync(Stream.Null, cancellationToken).ConfigureAwait(false);
        return new LoadResult(null, [.. schemaLoad.EventsToEnable, .. postLoad.EventsToEnable],
            schemaLoad.OtherDatabases.Union(postLoad.OtherDatabases, StringComparer.Ordinal).ToList(), columns is null ? null : loaded,
            [.. (schemaLoad.Warnings ?? []).Union(postLoad.Warnings ?? [], StringComparer.Ordinal)]);
    }

    /// <summary>Reads one data entry whole (its digest is checked at its end), into a buffer from the pool.</summary>
    private static async Task<LoadChunk> ReadChunkAsync(SetEntryContent entry, CancellationToken cancellationToken)
    {
        if (entry.Length > Array.MaxLength)
        {
            throw new InvalidDataException($"backup entry {entry.Name} is larger than a data chunk can be");
        }
        var buffer = ArrayPool<byte>.Shared.Rent((int)Math.Max(1, entry.Length));
        try
        {
            var length = (int)entry.Length;
            await entry.Content.ReadExactlyAsync(buffer.AsMemory(0, length), cancellationToken).ConfigureAwait(false);
            // Reading past the end is what checks the entry's digest.
            if (await entry.Content.ReadAsync(new byte[1], cancellationToken).ConfigureAwait(false) != 0)
            {
                throw new InvalidDataException($"backup entry {entry.Name} is longer than its header says");
            }
            return new LoadChunk(entry.Name, buffer, length);
        }
        catch
        {
            ArrayPool<byte>.Shared.Return(buffer);
            throw;
        }
    }

    /// <summary>
    /// One loader: a mysql/mariadb client fed checked chunks one after the other. A client per
    /// loader rather than statements on the driver: the chunks go to the server as the bytes they
    /// are (no UTF-16 round trip of 8 MiB strings), in the client's own streaming, and the client
    /// is the restore path's tool with its safe flags.
    /// </summary>
    private async Task LoadChunksAsync(
        string database, ChannelReader<LoadChunk> chunks, IReadOnlySet<string> tables, string preamble, CancellationTokenSource failed)
    {
        var tool = await ClientToolAsync(failed.Token).ConfigureAwait(false);
        using var optionFile = OptionFile();
        var arguments = ClientArguments(optionFile, database);
        try
        {
            await ChildProcess.RunAsync(tool, arguments, null, async (stdin, ct) =>
            {
                await stdin.WriteAsync(System.Text.Encoding.UTF8.GetBytes(preamble), ct).ConfigureAwait(false);
                await foreach (var chunk in chunks.ReadAllAsync(ct).ConfigureAwait(false))
                {
                    try
                    {
                        MySqlChunkCheck.Check(chunk.Buffer.AsSpan(0, chunk.Length), tables, chunk.Entry);
                        await stdin.WriteAsync(chunk.Buffer.AsMemory(0, chunk.Length), ct).ConfigureAwait(false);
                    }
                    finally
                    {
                        ArrayPool<byte>.Shared.Return(chunk.Buffer);
                    }
                }
            }, null, failed.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is not OperationCanceledException || !failed.IsCancellationRequested)
        {
            await failed.CancelAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>
    /// One loader on the driver: each checked chunk becomes one LOAD DATA LOCAL from a stream,
    /// which must load exactly the rows the chunk holds (LOAD DATA LOCAL skips a duplicate key
    /// where an INSERT would fail: a short count is that failure).
    /// </summary>
    private async Task BulkLoadChunksAsync(
        string database, ChannelReader<LoadChunk> chunks, IReadOnlySet<string> tables,
        IReadOnlyDictionary<string, IReadOnlyList<MySqlLoadData.Column>> columns,
        System.Collections.Concurrent.ConcurrentDictionary<TableKey, long> loaded, TableCompletion? early, CancellationTokenSource failed)
    {
        try
        {
            await using var connection = await OpenAsync(failed.Token, loadLocalInfile: true).ConfigureAwait(false);
            await connection.ChangeDatabaseAsync(database, failed.Token).ConfigureAwait(false);
            // What each chunk's header sets, for the whole session.
            await Execute(connection, $"SET SESSION {LoaderSettings}, sql_mode = 'NO_AUTO_VALUE_ON_ZERO', time_zone = '+00:00'",
                failed.Token).ConfigureAwait(false);
            using var input = new ChunkBuffer(8 << 20);
            var history = false;
            await foreach (var chunk in chunks.ReadAllAsync(failed.Token).ConfigureAwait(false))
            {
                MySqlLoadData.Plan plan;
                try
                {
                    MySqlChunkCheck.Check(chunk.Buffer.AsSpan(0, chunk.Length), tables, chunk.Entry);
                    input.Clear();
                    plan = MySqlLoadData.Convert(chunk.Buffer.AsSpan(0, chunk.Length), columns, input, chunk.Entry);
                }
                finally
                {
                    ArrayPool<byte>.Shared.Return(chunk.Buffer);
                }
                if (plan.History != history)
                {
                    await Execute(connection, $"SET SESSION system_versioning_insert_history = {(plan.History ? 1 : 0)}", failed.Token).ConfigureAwait(false);
                    history = plan.History;
                }
                var rows = await LoadChunkAsync(connection, plan, input, failed.Token).ConfigureAwait(false);
                if (rows != plan.Rows)
                {
                    throw new OperationFailedException(
                        $"backup entry {chunk.Entry} loaded {rows} of its {plan.Rows} rows into {plan.Table} (a duplicate key or a value the table refused)");
                }
                loaded.AddOrUpdate(new TableKey("", plan.Table), rows, (_, sum) => sum + rows);
                early?.ChunkLoaded(plan.Table);
            }
        }
        catch (Exception e) when (e is not OperationCanceledException || !failed.IsCancellationRequested)
        {
            await failed.CancelAsync().ConfigureAwait(false);
            if (e is MySqlException error)
            {
                // No server error code: the session was lost, not a statement refused.
                var hint = error.ErrorCode is MySqlErrorCode.None or MySqlErrorCode.UnableToConnectToHost or MySqlErrorCode.PacketTooLarge
                    ? await PacketHintAsync(CancellationToken.None).ConfigureAwait(false)
                    : "";
                throw new OperationFailedException($"loading the data into {database}: {e.Message}{hint}", e);
            }
            throw;
        }
    }

    /// <summary>How many times a chunk is loaded before a deadlock fails the restore.</summary>
    private const int DeadlockAttempts = 5;

    /// <summary>
    /// Loads one chunk by LOAD DATA LOCAL, again when InnoDB picked it as a deadlock's victim (loaders
    /// filling the same empty table take its lock in bulk-insert mode): the statement, its own
    /// transaction, was rolled back whole, so loaded again its rows are in once.
    /// </summary>
    private static async Task<int> LoadChunkAsync(MySqlConnection connection, MySqlLoadData.Plan plan, ChunkBuffer input, CancellationToken cancellationToken)
    {
        for (var attempt = 1; ; attempt++)
        {
            var loader = new MySqlBulkLoader(connection)
            {
                TableName = QuoteIdentifier(plan.Table),
                CharacterSet = "utf8mb4",
                Local = true,
                Timeout = 0, // bounded by the run's timeout (the token), not the driver's 30 s
                FieldTerminator = "\t",
                LineTerminator = "\n",
                EscapeCharacter = '\\',
                SourceStream = new MemoryStream(input.Buffer, 0, input.Length, writable: false),
            };
            loader.Columns.AddRange(plan.Columns);
            loader.Expressions.AddRange(plan.Expressions);
            try
            {
                return await loader.LoadAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (MySqlException e) when (e.ErrorCode == MySqlErrorCode.LockDeadlock && attempt < DeadlockAttempts)
            {
                await Task.Delay(TimeSpan.FromMilliseconds(50 * attempt), cancellationToken).ConfigureAwait(false);
            }
        }
    }

    private async Task<bool> LoadLocalAllowedAsync(CancellationToken cancellationToken)
    {
        await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        return Convert.ToInt64(await Scalar(connection, "SELECT @@GLOBAL.local_infile", cancellationToken).ConfigureAwait(false),
            System.Globalization.CultureInfo.InvariantCulture) == 1;
    }

    /// <summary>Every column of the staging database's base tables, in order, with how the dump writes it.</summary>
    private async Task<Dictionary<string, IReadOnlyList<MySqlLoadData.Column>>> InsertedColumnsAsync(string database, CancellationToken cancellationToken)
    {
        await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var command = new MySqlCommand(
            "SELECT c.TABLE_NAME, c.COLUMN_NAME, c.DATA_TYPE, c.EXTRA, IFNULL(c.GENERATION_EXPRESSION, '') FROM information_schema.COLUMNS c "
            + "JOIN information_schema.TABLES t ON BINARY t.TABLE_SCHEMA = c.TABLE_SCHEMA AND BINARY t.TABLE_NAME = c.TABLE_NAME "
            + "WHERE c.TABLE_SCHEMA = @db AND t.TABLE_TYPE IN ('BASE TABLE', 'SYSTEM VERSIONED') ORDER BY c.TABLE_NAME, c.ORDINAL_POSITION", connection);
        command.Parameters.AddWithValue("@db", database);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        var columns = new Dictionary<string, List<MySqlLoadData.Column>>(StringComparer.Ordinal);
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            if (!columns.TryGetValue(reader.GetString(0), out var list))
            {
                columns[reader.GetString(0)] = list = [];
            }
            var extra = reader.GetString(3);
            var inserted = !extra.Contains("GENERATED", StringComparison.OrdinalIgnoreCase)
                && !extra.Contains("INVISIBLE", StringComparison.OrdinalIgnoreCase)
                && reader.GetString(4) is not ("ROW START" or "ROW END");
            list.Add(new MySqlLoadData.Column(reader.GetString(1), MySqlTableReader.KindOf(reader.GetString(2)), inserted));
        }
        return columns.ToDictionary(c => c.Key, c => (IReadOnlyList<MySqlLoadData.Column>)c.Value, StringComparer.Ordinal);
    }

    /// <summary>
    /// The tables a chunk may fill: not a view, nor a MERGE, FEDERATED, CONNECT or SPIDER table, whose rows
    /// would go to other tables, files or servers (the backup writes none for the first two, as mysqldump).
    /// </summary>
    private async Task<HashSet<string>> BaseTablesAsync(string database, CancellationToken cancellationToken)
    {
        await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var command = new MySqlCommand(
            "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = @db AND TABLE_TYPE IN ('BASE TABLE', 'SYSTEM VERSIONED') "
            + "AND ENGINE NOT IN ('MRG_MyISAM', 'MRG_ISAM', 'FEDERATED', 'CONNECT', 'SPIDER')", connection);
        command.Parameters.AddWithValue("@db", database);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        var tables = new HashSet<string>(StringComparer.Ordinal);
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            tables.Add(reader.GetString(0));
        }
        return tables;
    }

    /// <summary>Secondary indexes dropped before the load, to be added back (in their order, as the schema wrote them) after it.</summary>
    private sealed record DeferredIndexes(string Table, IReadOnlyList<string> Definitions);

    /// <summary>
    /// Drops the secondary indexes of the staging database's InnoDB tables whose secondary indexes
    /// are all plain (non-unique B-tree) and that take no part in a foreign key: InnoDB builds an
    /// index from sorted data after the load much faster than it maintains it row by row. Tables
    /// with a unique, full-text or spatial index keep theirs (the table's index order, and so its
    /// SHOW CREATE TABLE, stays the same); so do tables whose AUTO_INCREMENT column does not lead their
    /// primary key (an index it leads must stay: InnoDB refuses the table without one).
    /// </summary>
    private async Task<List<DeferredIndexes>> DeferIndexesAsync(string database, CancellationToken cancellationToken)
    {
        await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        var indexes = new Dictionary<string, List<(string Name, bool Plain)>>(StringComparer.Ordinal);
        await using (var command = new MySqlCommand(
            "SELECT MIN(s.TABLE_NAME), s.INDEX_NAME, MIN(s.NON_UNIQUE) = 1 AND MIN(s.INDEX_TYPE) = 'BTREE' AND MAX(s.INDEX_TYPE) = 'BTREE' "
            + "FROM information_schema.STATISTICS s JOIN information_schema.TABLES t ON BINARY t.TABLE_SCHEMA = s.TABLE_SCHEMA AND BINARY t.TABLE_NAME = s.TABLE_NAME "
            + "WHERE s.TABLE_SCHEMA = @db AND t.ENGINE = 'InnoDB' AND s.INDEX_NAME <> 'PRIMARY' "
            + "AND s.TABLE_NAME NOT IN (SELECT TABLE_NAME FROM information_schema.REFERENTIAL_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = @db) "
            + "AND s.TABLE_NAME NOT IN (SELECT REFERENCED_TABLE_NAME FROM information_schema.REFERENTIAL_CONSTRAINTS WHERE UNIQUE_CONSTRAINT_SCHEMA = @db) "
            + "AND s.TABLE_NAME NOT IN (SELECT c.TABLE_NAME FROM information_schema.COLUMNS c WHERE c.TABLE_SCHEMA = @db AND c.EXTRA LIKE '%auto_increment%' "
            + "AND NOT EXISTS (SELECT 1 FROM information_schema.STATISTICS p WHERE p.TABLE_SCHEMA = @db AND BINARY p.TABLE_NAME = BINARY c.TABLE_NAME "
            + "AND p.INDEX_NAME = 'PRIMARY' AND p.SEQ_IN_INDEX = 1 AND p.COLUMN_NAME = c.COLUMN_NAME)) "
            + "GROUP BY BINARY s.TABLE_NAME, s.INDEX_NAME", connection))
        {
            command.Parameters.AddWithValue("@db", database);
            await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                if (!indexes.TryGetValue(reader.GetString(0), out var list))
                {
                    indexes[reader.GetString(0)] = list = [];
                }
                list.Add((reader.GetString(1), Convert.ToInt64(reader.GetValue(2), System.Globalization.CultureInfo.InvariantCulture) == 1));
            }
        }
        var deferred = new List<DeferredIndexes>();
        foreach (var (table, list) in indexes.Where(t => t.Value.All(i => i.Plain)).OrderBy(t => t.Key, StringComparer.Ordinal))
        {
            var name = $"{QuoteIdentifier(database)}.{QuoteIdentifier(table)}";
            var create = await ShowCreateTableAsync(connection, name, cancellationToken).ConfigureAwait(false);
            var definitions = create.Split('\n')
                .Where(line => line.StartsWith("  KEY `", StringComparison.Ordinal))
                .Select(line => line.Trim().TrimEnd(','))
                .ToList();
            var names = list.Select(i => $"KEY {QuoteIdentifier(i.Name)} (").ToList();
            if (definitions.Count != list.Count || !names.All(n => definitions.Count(d => d.StartsWith(n, StringComparison.Ordinal)) == 1))
            {
                continue;
            }
            await Execute(connection, $"ALTER TABLE {name} {string.Join(", ", list.Select(i => "DROP INDEX " + QuoteIdentifier(i.Name)))}",
                cancellationToken).ConfigureAwait(false);
            deferred.Add(new DeferredIndexes(table, definitions));
        }
        return deferred;
    }

    private static async Task<string> ShowCreateTableAsync(MySqlConnection connection, string name, CancellationToken cancellationToken)
    {
        await using var command = new MySqlCommand($"SHOW CREATE TABLE {name}", connection);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        return await reader.ReadAsync(cancellationToken).ConfigureAwait(false) ? reader.GetString(1) : "";
    }

    /// <summary>Adds the deferred indexes back, one ALTER TABLE per table, tables on <paramref name="jobs"/> connections at once.</summary>
    private async Task AddIndexesAsync(string database, List<DeferredIndexes> deferred, int jobs, CancellationToken cancellationToken)
    {
        var queue = new System.Collections.Concurrent.ConcurrentQueue<DeferredIndexes>(deferred);
        using var failed = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var workers = Enumerable.Range(0, Math.Min(jobs, deferred.Count)).Select(_ => Task.Run(async () =>
        {
            await using var connection = await OpenAsync(failed.Token).ConfigureAwait(false);
            while (queue.TryDequeue(out var table))
            {
                await AddIndexesAsync(connection, database, table, failed).ConfigureAwait(false);
            }
        }, failed.Token)).ToList();
        await Task.WhenAll(workers).ConfigureAwait(false);
    }

    private static async Task AddIndexesAsync(MySqlConnection connection, string database, DeferredIndexes table, CancellationTokenSource failed)
    {
        try
        {
            await using var command = new MySqlCommand(
                $"ALTER TABLE {QuoteIdentifier(database)}.{QuoteIdentifier(table.Table)} {string.Join(", ", table.Definitions.Select(d => "ADD " + d))}",
                connection) { CommandTimeout = 0 };
            await command.ExecuteNonQueryAsync(failed.Token).ConfigureAwait(false);
        }
        catch (MySqlException e)
        {
            await failed.CancelAsync().ConfigureAwait(false);
            throw new OperationFailedException($"adding the indexes of {database} back after the load: {e.Message}", e);
        }
    }
}
