using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Threading.Channels;
using MySqlConnector;
using VyaBackupDb.Catalog;
using VyaBackupDb.Errors;
using VyaBackupDb.Sources.Sets;

namespace VyaBackupDb.Engines.MySql;

/// <summary>The parallel dump (engine: parallel): one snapshot shared by several connections, written as a backup set.</summary>
public sealed partial class MySqlEngine
{
    /// <summary>
    /// A data chunk is handed to the set once it reaches this size, so that with its last
    /// statement (about 1 MiB) and row it stays under 8 MiB, the pool's bucket for it (a large row
    /// may make it larger): a chunk just over 8 MiB would take a 16 MiB buffer, here and in the restore.
    /// </summary>
    internal const int SetChunkBytes = (7 << 20) - (64 << 10);

    /// <summary>A table with a single-column integer primary key is read in key ranges of about this size (by the catalog's estimate); tests lower it.</summary>
    internal static long SetRangeBytes { get; set; } = 64L << 20;

    /// <summary>One table, or one primary-key range of one, read by one connection.</summary>
    private sealed record SetWorkItem(string Table, MySqlTableReader Reader, string? Where);

    /// <summary>What the parallel dump reads per table from the catalog, under the backup lock.</summary>
    /// <param name="Period">A system-versioned table's row start and end columns (MariaDB names the implicit ones row_start and row_end).</param>
    private sealed record SetTable(string Name, List<SetColumn> Columns, bool ColumnList, string? IntegerKey, long DataBytes)
    {
        public (string Start, string End) Period { get; set; } = ("row_start", "row_end");
    }

    private async Task<DumpDetails> DumpSetCoreAsync(string database, BackupSetWriter set, int jobs, CancellationToken cancellationToken)
    {
        jobs = Math.Max(1, jobs);
        var server = await ServerAsync(cancellationToken).ConfigureAwait(false);
        var serverIsMariaDb = server.Flavor == "MariaDB";
        var tool = FindTool(serverIsMariaDb ? ["mariadb-dump", "mysqldump"] : ["mysqldump", "mariadb-dump"]);
        var toolVersion = (await ChildProcess.CaptureAsync(tool, ["--version"], cancellationToken).ConfigureAwait(false)).Trim();
        var toolIsMariaDb = toolVersion.Contains("MariaDB", StringComparison.OrdinalIgnoreCase);

        // Every connection is open before the lock is taken: the lock is held as briefly as can be.
        var workers = new List<MySqlConnection>();
        try
        {
            await using var control = await OpenAsync(cancellationToken).ConfigureAwait(false);
            for (var i = 0; i < jobs; i++)
            {
                var worker = await OpenAsync(cancellationToken).ConfigureAwait(false);
                workers.Add(worker);
                // sql_mode '': no PAD_CHAR_TO_FULL_LENGTH, ANSI_QUOTES or NO_BACKSLASH_ESCAPES in what the server
                // formats; UTC for TIMESTAMP values (the chunks set the same zone); no server-side timeout while
                // the set's writer makes this reader wait.
                await Execute(worker, "SET SESSION sql_mode = '', time_zone = '+00:00', net_write_timeout = 86400", cancellationToken).ConfigureAwait(false);
                await Execute(worker, "SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ", cancellationToken).ConfigureAwait(false);
            }

            SchemaRead read;
            string? position;
            try
            {
                // The schema, the triggers and the catalog are read while DDL is blocked; on MariaDB commits
                // go on meanwhile (BACKUP STAGE BLOCK_DDL) and are blocked only while the snapshots start.
                read = await LockForSnapshotAsync(control, workers, serverIsMariaDb, async giveUp =>
                {
                    var counters = serverIsMariaDb ? await ReadCountersAsync(control, database, giveUp).ConfigureAwait(false) : null;
                    var catalog = await ReadCatalogAsync(database, serverIsMariaDb, giveUp).ConfigureAwait(false);
                    var tables = await ReadSetTablesAsync(control, database, giveUp).ConfigureAwait(false);
                    var schema = new MemoryStream();
                    var post = new MemoryStream();
                    var schemaCounter = new MySqlRowCounter(schema);
                    await Task.WhenAll(
                        DumpPartAsync(schemaCounter, giveUp, "--no-data", "--skip-triggers", "--routines", "--events"),
                        DumpPartAsync(post, giveUp, "--no-data", "--no-create-info", "--triggers")).ConfigureAwait(false);
                    return new SchemaRead(catalog, tables, schema, post, schemaCounter, counters);
                }, (read, snapshots) => OpenTablesAsync(snapshots ? workers : workers[..1], snapshots, database,
                    [.. read.Tables.Keys.Where(t => read.Catalog.Engines.GetValueOrDefault(t) is not { } engine || !DataNotDumped.Contains(engine))],
                    cancellationToken), cancellationToken).ConfigureAwait(false);
                position = await ReadSourcePositionAsync(control, serverIsMariaDb, cancellationToken).ConfigureAwait(false);
                if (read.Counters is { } before)
                {
                    await WriteCounterChangesAsync(read.SchemaCounter, before,
                        await ReadCountersAsync(control, database, cancellationToken).ConfigureAwait(false), cancellationToken).ConfigureAwait(false);
                }
            }
            catch
            {
                // The failure is the one to report; closing the connection releases the lock anyway.
                await control.CloseAsync().ConfigureAwait(false);
                throw;
            }
            await UnlockSnapshotAsync(control, serverIsMariaDb, cancellationToken).ConfigureAwait(false);

            var (catalog, tables, schema, post, schemaCounter, _) = read;
            // The same rules as the dump engine's: history goes in where the server can load it back.
            var (withHistory, warnings) = CatalogWarnings(database, catalog, server, toolIsMariaDb, toolVersion);

            schema.Position = 0;
            await set.WriteSchemaAsync(schema, schema.Length, cancellationToken).ConfigureAwait(false);

            // The tables the schema creates are the backup's; the data of engines that keep it elsewhere is left out, as mysqldump does.
            var inBackup = schemaCounter.Rows.Keys.Where(catalog.Engines.ContainsKey).Order(StringComparer.Ordinal).ToList();
            var rows = inBackup.ToDictionary(t => t, _ => 0L, StringComparer.Ordinal);
            var items = new List<(IReadOnlyList<SetWorkItem> Pieces, long Bytes)>();
            foreach (var name in inBackup)
            {
                if ((catalog.Engines[name] is { } engine && DataNotDumped.Contains(engine)) || !tables.TryGetValue(name, out var table))
                {
                    continue;
                }
                var history = withHistory && catalog.Versioned.Contains(name);
                items.Add((await PlanTableAsync(workers[0], database, table, history, jobs, cancellationToken).ConfigureAwait(false), table.DataBytes));
            }
            await ReadTablesAsync(database, set, workers, ReadOrder.Of(items, jobs), rows, cancellationToken).ConfigureAwait(false);

            post.Position = 0;
            await set.WritePostAsync(post, post.Length, cancellationToken).ConfigureAwait(false);

            var inventory = new DatabaseInventory(
                [.. inBackup.Select(t => new TableRows(t, rows[t], catalog.Engines[t] is not { } e || !DataNotDumped.Contains(e),
                    withHistory && catalog.Versioned.Contains(t) ? true : null))],
                [.. schemaCounter.Sequences.OrderBy(s => s.Key, StringComparer.Ordinal).Select(s => new SequenceValue(s.Key, s.Value, Exact: true))],
                catalog.Objects,
                catalog.OutsideSnapshot.Count == 0 ? null : catalog.OutsideSnapshot);
            return new DumpDetails(Path.GetFileName(tool), toolVersion.Split('\n')[0], inventory,
                warnings.Count == 0 ? null : string.Join("; ", warnings), catalog.Settings) { SourcePosition = position };
        }
        finally
        {
            foreach (var worker in workers)
            {
                await worker.DisposeAsync().ConfigureAwait(false);
            }
        }

        async Task DumpPartAsync(Stream output, CancellationToken giveUp, params string[] what)
        {
            using var options = OptionFile();
            List<string> arguments =
            [
                $"--defaults-file={options.Path}", "--single-transaction", "--no-tablespaces", "--max-allowed-packet=1G",
                "--default-character-set=utf8mb4", .. what,
            ];
            if (!toolIsMariaDb && !serverIsMariaDb)
            {
                arguments.Add("--set-gtid-purged=OFF");
            }
            if (!toolIsMariaDb && serverIsMariaDb)
            {
                arguments.Add("--column-statistics=0");
            }
            arguments.Add("--");
            arguments.Add(database);
            var tail = new TailStream(output, 256);
            await ChildProcess.RunAsync(tool, arguments, null, null, tail, giveUp).ConfigureAwait(false);
            if (!tail.Contains(CompletionTrailer))
            {
                throw new OperationFailedException($"{Path.GetFileName(tool)} exited without its completion trailer ({CompletionTrailer})");
            }
        }
    }

    /// <summary>
    /// Each attempt at a lock that other sessions' statements queue behind while it waits (the backup
    /// lock, a restore's RENAME) waits at most this long (the session's lock_wait_timeout).
    /// </summary>
    internal const int LockAttemptSeconds = 2;

    /// <summary>What the backup reads while DDL is blocked: the catalog, the tables, the schema and triggers, and (MariaDB) the counters they were read at.</summary>
    private sealed record SchemaRead(
        CatalogBeforeDump Catalog, Dictionary<string, SetTable> Tables, MemoryStream Schema, MemoryStream Post,
        MySqlRowCounter SchemaCounter, Dictionary<(bool Sequence, string Name), decimal>? Counters);

    /// <summary>
    /// Takes the backup lock in attempts of <see cref="LockAttemptSeconds"/> until the instance's
    /// lock_wait_seconds have passed, runs <paramref name="whileDdlBlocked"/> under it, then
    /// <paramref name="openTables"/> (see <see cref="OpenTablesAsync"/>; false: try again): on MariaDB
    /// first without snapshots, so that a table another session holds fails the attempt before commits
    /// are blocked, then, commits blocked too, in the snapshots. A waiting
    /// lock request holds up other sessions' DDL (BACKUP STAGE) or writes (FLUSH TABLES WITH READ
    /// LOCK) behind it: with short attempts, a long statement or a LOCK TABLES elsewhere stalls the
    /// server for one attempt at most, never for the whole wait. MariaDB blocks DDL first
    /// (BLOCK_DDL) and commits (BLOCK_COMMIT) only once <paramref name="whileDdlBlocked"/> is done;
    /// MySQL's FLUSH TABLES WITH READ LOCK blocks both from the start.
    /// </summary>
    private async Task<T> LockForSnapshotAsync<T>(
        MySqlConnection control, List<MySqlConnection> workers, bool mariaDb, Func<CancellationToken, Task<T>> whileDdlBlocked,
        Func<T, bool, Task<bool>> openTables, CancellationToken cancellationToken)
        where T : class
    {
        var waited = Stopwatch.StartNew();
        var deadlocked = false;
        while (true)
        {
            // The last attempt takes what is left of lock_wait_seconds (it gave up up to an attempt early).
            var attempt = Math.Clamp((int)Math.Ceiling(Instance.LockWaitSeconds - waited.Elapsed.TotalSeconds), 1, LockAttemptSeconds);
            await Execute(control, $"SET SESSION lock_wait_timeout = {attempt}", cancellationToken).ConfigureAwait(false);
            var started = false;
            bool locked;
            if (mariaDb)
            {
                started = await TakeAsync("BACKUP STAGE START").ConfigureAwait(false);
                locked = started && await TakeAsync("BACKUP STAGE BLOCK_DDL").ConfigureAwait(false);
            }
            else
            {
                locked = await TakeAsync("FLUSH TABLES WITH READ LOCK").ConfigureAwait(false);
            }
            if (locked)
            {
                // What is read under the lock may wait longer than an attempt (the catalog, the tables' key ranges).
                await Execute(control, "SET SESSION lock_wait_timeout = 300", cancellationToken).ConfigureAwait(false);
                var read = await ReadUnlessDeadlockedAsync(whileDdlBlocked, cancellationToken).ConfigureAwait(false);
                deadlocked |= read is null;
                if (read is not null && !mariaDb && await openTables(read, true).ConfigureAwait(false))
                {
                    return read;
                }
                await Execute(control, $"SET SESSION lock_wait_timeout = {LockAttemptSeconds}", cancellationToken).ConfigureAwait(false);
                if (read is not null && mariaDb && await openTables(read, false).ConfigureAwait(false)
                    && await TakeAsync("BACKUP STAGE BLOCK_COMMIT").ConfigureAwait(false))
                {
                    await Execute(control, "SET SESSION lock_wait_timeout = 300", cancellationToken).ConfigureAwait(false);
                    if (await openTables(read, true).ConfigureAwait(false))
                    {
                        return read;
                    }
                }
            }
            if (started || !mariaDb && locked)
            {
                await UnlockSnapshotAsync(control, mariaDb, cancellationToken).ConfigureAwait(false);
            }
            var left = Instance.LockWaitSeconds - waited.Elapsed.TotalSeconds;
            if (left <= 0)
            {
                var why = (deadlocked ? "the schema read kept waiting for a table behind a schema change (ALTER, RENAME, DROP) "
                    + "that waits for this backup or for another session; " : "")
                    + await DescribeLongestStatementsAsync(control, workers, cancellationToken).ConfigureAwait(false);
                throw new OperationFailedException($"could not take the backup lock for a consistent snapshot within {Instance.LockWaitSeconds} s "
                    + $"(lock_wait_seconds): {why}; try again later, or use engine: dump, which takes no lock");
            }
            await Task.Delay(TimeSpan.FromSeconds(Math.Min(1, left / 2)), cancellationToken).ConfigureAwait(false);
        }

        // True once taken; false when it waited out the attempt (another session holds it up).
        async Task<bool> TakeAsync(string statement)
        {
            try
            {
                await Execute(control, statement, cancellationToken).ConfigureAwait(false);
                return true;
            }
            catch (OperationFailedException e) when (e.InnerException is MySqlException { ErrorCode: MySqlErrorCode.LockWaitTimeout })
            {
                return false;
            }
            catch (OperationFailedException e)
            {
                throw new OperationFailedException($"cannot take the backup lock for a consistent snapshot ({e.Message}); "
                    + "the parallel engine needs the RELOAD privilege (MariaDB: or BACKUP STAGE's); engine: dump does not", e);
            }
        }
    }

    /// <summary>
    /// With <paramref name="snapshots"/>, starts each reader's snapshot and has it open every table it
    /// may read (a shared metadata lock, held to its transaction's end), under the backup lock; else
    /// only checks that they can be opened. DDL after the snapshots would be read
    /// wrongly, with no error: a table renamed (RENAME TABLE swaps) or altered in place (ALTER TABLE
    /// ... INSTANT) shows its rows of before under its new name or columns, a partition exchanged
    /// (EXCHANGE PARTITION) the other table's rows. It now waits for the backup's end. Every reader
    /// holds every table: a DDL waiting for one would hold up another's first read of that table.
    /// False (the transactions ended) when a table could not be opened within an attempt: another
    /// session holds it (LOCK TABLES ... WRITE).
    /// </summary>
    private static async Task<bool> OpenTablesAsync(
        List<MySqlConnection> workers, bool snapshots, string database, List<string> tables, CancellationToken cancellationToken)
    {
        var batches = tables.Select(t => $"SELECT 1 FROM {QuoteIdentifier(database)}.{QuoteIdentifier(t)} LIMIT 0;")
            .Chunk(500).Select(batch => string.Concat(batch)).ToList();
        foreach (var worker in workers)
        {
            await Execute(worker, snapshots ? "START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY" : "START TRANSACTION READ ONLY",
                cancellationToken).ConfigureAwait(false);
        }
        try
        {
            await Task.WhenAll(workers.Select(async worker =>
            {
                await Execute(worker, $"SET SESSION lock_wait_timeout = {LockAttemptSeconds}", cancellationToken).ConfigureAwait(false);
                foreach (var batch in batches)
                {
                    await Execute(worker, batch, cancellationToken).ConfigureAwait(false);
                }
                await Execute(worker, snapshots ? "SET SESSION lock_wait_timeout = DEFAULT" : "ROLLBACK; SET SESSION lock_wait_timeout = DEFAULT",
                    cancellationToken).ConfigureAwait(false);
            })).ConfigureAwait(false);
            return true;
        }
        catch (OperationFailedException e) when (e.InnerException is MySqlException { ErrorCode: MySqlErrorCode.LockWaitTimeout })
        {
            foreach (var worker in workers)
            {
                await Execute(worker, "ROLLBACK; SET SESSION lock_wait_timeout = DEFAULT", cancellationToken).ConfigureAwait(false);
            }
            return false;
        }
    }

    /// <summary>
    /// Runs <paramref name="read"/> under the lock, watched on a connection of its own: another
    /// session's DDL may hold a table's metadata lock and wait for the backup lock while the schema
    /// read (mariadb-dump, which takes no lock_wait_timeout of ours) waits for that table, a deadlock
    /// the server cannot see since it runs through this process; all DDL on the server would queue
    /// behind it. Seen (a session of our account has waited for a table's metadata lock longer than
    /// an attempt: with DDL blocked, only a DDL can hold it up, and that DDL waits for our lock),
    /// the read is given up (null) so that the lock is released and the DDL goes on; the caller
    /// tries again. Only our own account's sessions are looked at: no PROCESS privilege needed.
    /// </summary>
    private async Task<T?> ReadUnlessDeadlockedAsync<T>(Func<CancellationToken, Task<T>> read, CancellationToken cancellationToken)
        where T : class
    {
        using var giveUp = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        await using var watch = await OpenAsync(cancellationToken).ConfigureAwait(false);
        var reading = read(giveUp.Token);
        try
        {
            while (await Task.WhenAny(reading, Task.Delay(500, cancellationToken)).ConfigureAwait(false) != reading)
            {
                cancellationToken.ThrowIfCancellationRequested();
                var deadlocked = await Scalar(watch, $"""
                    SELECT EXISTS (SELECT 1 FROM information_schema.PROCESSLIST WHERE TIME >= {LockAttemptSeconds}
                        AND STATE = 'Waiting for table metadata lock' AND USER = SUBSTRING_INDEX(USER(), '@', 1))
                    """, cancellationToken).ConfigureAwait(false);
                if (Convert.ToInt64(deadlocked, System.Globalization.CultureInfo.InvariantCulture) == 1)
                {
                    await StopReadingAsync().ConfigureAwait(false);
                    cancellationToken.ThrowIfCancellationRequested();
                    return null;
                }
            }
        }
        catch (Exception)
        {
            // Interrupted (SIGTERM) or the watch failed: the read stops before the caller closes the
            // connection it uses and the lock goes, and its dump tools are killed and their option files
            // removed before this process may exit.
            await StopReadingAsync().ConfigureAwait(false);
            throw;
        }
        return await reading.ConfigureAwait(false);

        async Task StopReadingAsync()
        {
            await giveUp.CancelAsync().ConfigureAwait(false);
            try
            {
                await reading.ConfigureAwait(false);
            }
            catch (Exception e) when (e is OperationCanceledException or VyaException)
            {
                // The read ends on the cancellation, as an error of its own or a cancelled wait.
            }
        }
    }

    /// <summary>
    /// Each table's AUTO_INCREMENT and each sequence's next value (what mariadb-dump writes into the
    /// schema). DDL is blocked, so they only grow: read before the schema is dumped and again once
    /// the snapshots have started, an unchanged one is what the schema holds. Decimal: an AUTO_INCREMENT is
    /// unsigned, up to 2^64 - 1.
    /// </summary>
    private static async Task<Dictionary<(bool Sequence, string Name), decimal>> ReadCountersAsync(
        MySqlConnection control, string database, CancellationToken cancellationToken)
    {
        var counters = new Dictionary<(bool Sequence, string Name), decimal>();
        var sequences = new List<string>();
        await using (var command = new MySqlCommand(
            "SELECT TABLE_NAME, TABLE_TYPE, AUTO_INCREMENT FROM information_schema.TABLES WHERE TABLE_SCHEMA = @db "
            + "AND (AUTO_INCREMENT IS NOT NULL OR TABLE_TYPE = 'SEQUENCE')", control))
        {
            command.Parameters.AddWithValue("@db", database);
            await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                if (reader.GetString(1) == "SEQUENCE")
                {
                    sequences.Add(reader.GetString(0));
                }
                else
                {
                    counters[(false, reader.GetString(0))] = Convert.ToDecimal(reader.GetValue(2), CultureInfo.InvariantCulture);
                }
            }
        }
        foreach (var sequence in sequences)
        {
            counters[(true, sequence)] = Convert.ToDecimal(await Scalar(control,
                $"SELECT next_not_cached_value FROM {QuoteIdentifier(database)}.{QuoteIdentifier(sequence)}", cancellationToken).ConfigureAwait(false),
                CultureInfo.InvariantCulture);
        }
        return counters;
    }

    /// <summary>
    /// Appends to the schema what moved on while it was dumped, before the snapshots started: a
    /// table's AUTO_INCREMENT (so that a restored table does not hand out again ids the source
    /// already gave) and a sequence's next value (which rows of the snapshot may have used).
    /// </summary>
    private static async Task WriteCounterChangesAsync(
        Stream schema, Dictionary<(bool Sequence, string Name), decimal> before, Dictionary<(bool Sequence, string Name), decimal> after,
        CancellationToken cancellationToken)
    {
        var changes = new StringBuilder();
        foreach (var ((sequence, name), value) in after.OrderBy(c => c.Key.Name, StringComparer.Ordinal))
        {
            if (before.TryGetValue((sequence, name), out var dumped) && dumped == value)
            {
                continue;
            }
            changes.Append(sequence
                ? FormattableString.Invariant($"DO SETVAL({QuoteIdentifier(name)}, {value}, 0);\n")
                : FormattableString.Invariant($"ALTER TABLE {QuoteIdentifier(name)} AUTO_INCREMENT = {value};\n"));
        }
        if (changes.Length > 0)
        {
            await schema.WriteAsync(Encoding.UTF8.GetBytes(changes.ToString()), cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// The server's longest-running statements other than this backup's, by connection id, user,
    /// command, state and time: never the statement's text, which may hold a password (CREATE USER …
    /// IDENTIFIED BY). Idle sessions are left out: every connection pool has them, and the one that
    /// holds LOCK TABLES cannot be told from the rest.
    /// </summary>
    private static async Task<string> DescribeLongestStatementsAsync(MySqlConnection control, List<MySqlConnection> workers, CancellationToken cancellationToken)
    {
        var statements = new List<string>();
        var ours = string.Join(", ", workers.Select(w => w.ServerThread).Append(control.ServerThread));
        await using var command = new MySqlCommand(
            "SELECT ID, USER, COMMAND, STATE, TIME FROM information_schema.PROCESSLIST "
            + $"WHERE ID NOT IN ({ours}) AND COMMAND NOT IN ('Sleep', 'Daemon', 'Binlog Dump') AND TIME >= 1 ORDER BY TIME DESC LIMIT 3", control);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            var state = reader.IsDBNull(3) || reader.GetString(3).Length == 0 ? "" : $", '{reader.GetString(3)}'";
            statements.Add($"connection {reader.GetValue(0)} ({reader.GetString(1)}, {reader.GetString(2)}{state}) for {reader.GetValue(4)} s");
        }
        return statements.Count == 0
            ? "no statement has run for long, so an idle session holds a table lock (LOCK TABLES) or a transaction"
            : "the longest-running statements: " + string.Join(", ", statements);
    }

    private static Task UnlockSnapshotAsync(MySqlConnection control, bool mariaDb, CancellationToken cancellationToken) =>
        Execute(control, mariaDb ? "BACKUP STAGE END" : "UNLOCK TABLES", cancellationToken);

    /// <summary>"file:position" of the binlog (and the GTID position, when there is one), or null when binary logging is off.</summary>
    private static async Task<string?> ReadSourcePositionAsync(MySqlConnection control, bool mariaDb, CancellationToken cancellationToken)
    {
        string? file = null, offset = null, gtid = null;
        foreach (var sql in new[] { "SHOW MASTER STATUS", "SHOW BINARY LOG STATUS" })
        {
            try
            {
                await using var command = new MySqlCommand(sql, control);
                await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
                if (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                {
                    file = reader.GetString(0);
                    offset = Convert.ToString(reader.GetValue(1), CultureInfo.InvariantCulture);
                    if (!mariaDb && reader.FieldCount > 4 && !reader.IsDBNull(4))
                    {
                        gtid = reader.GetString(4);
                    }
                }
                break;
            }
            catch (MySqlException)
            {
                // MySQL 8.4 knows only the second statement.
            }
        }
        if (file is null)
        {
            return null;
        }
        if (mariaDb)
        {
            gtid = await Scalar(control, "SELECT @@gtid_binlog_pos", cancellationToken).ConfigureAwait(false) as string;
        }
        return string.IsNullOrWhiteSpace(gtid) ? $"{file}:{offset}" : $"{file}:{offset} gtid {gtid.Replace("\n", "", StringComparison.Ordinal)}";
    }

    /// <summary>Columns, single-column integer primary keys and data sizes of the database's base tables.</summary>
    private static async Task<Dictionary<string, SetTable>> ReadSetTablesAsync(MySqlConnection connection, string database, CancellationToken cancellationToken)
    {
        var tables = new Dictionary<string, SetTable>(StringComparer.Ordinal);
        await using (var command = new MySqlCommand(
            "SELECT c.TABLE_NAME, c.COLUMN_NAME, c.DATA_TYPE, c.EXTRA, IFNULL(c.GENERATION_EXPRESSION, ''), IFNULL(t.DATA_LENGTH, 0), "
            + "IFNULL(c.CHARACTER_SET_NAME, '') FROM information_schema.COLUMNS c JOIN information_schema.TABLES t ON BINARY t.TABLE_SCHEMA = c.TABLE_SCHEMA AND BINARY t.TABLE_NAME = c.TABLE_NAME "
            + "WHERE c.TABLE_SCHEMA = @db AND t.TABLE_TYPE IN ('BASE TABLE', 'SYSTEM VERSIONED') ORDER BY c.TABLE_NAME, c.ORDINAL_POSITION", connection))
        {
            command.Parameters.AddWithValue("@db", database);
            await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                var name = reader.GetString(0);
                if (!tables.TryGetValue(name, out var table))
                {
                    tables[name] = table = new SetTable(name, [], false, null, Convert.ToInt64(reader.GetValue(5), CultureInfo.InvariantCulture));
                }
                var extra = reader.GetString(3);
                var generation = reader.GetString(4);
                // Generated columns (and explicit row start/end columns of system versioning) are computed by
                // the server: they are left out, and the INSERT then names the columns it gives.
                if (generation is "ROW START")
                {
                    table.Period = (reader.GetString(1), table.Period.End);
                }
                else if (generation is "ROW END")
                {
                    table.Period = (table.Period.Start, reader.GetString(1));
                }
                if (extra.Contains("GENERATED", StringComparison.OrdinalIgnoreCase) || generation is "ROW START" or "ROW END")
                {
                    tables[name] = table with { ColumnList = true };
                    continue;
                }
                var invisible = extra.Contains("INVISIBLE", StringComparison.OrdinalIgnoreCase);
                table.Columns.Add(new SetColumn(reader.GetString(1), MySqlTableReader.KindOf(reader.GetString(2)), invisible, SetColumn.IsUtf8(reader.GetString(2), reader.GetString(6))));
                if (invisible)
                {
                    tables[name] = table with { ColumnList = true };
                }
            }
        }
        await using (var command = new MySqlCommand(
            "SELECT MIN(s.TABLE_NAME), MIN(s.COLUMN_NAME) FROM information_schema.STATISTICS s JOIN information_schema.COLUMNS c "
            + "ON BINARY c.TABLE_SCHEMA = s.TABLE_SCHEMA AND BINARY c.TABLE_NAME = s.TABLE_NAME AND c.COLUMN_NAME = s.COLUMN_NAME "
            + "WHERE s.TABLE_SCHEMA = @db AND s.INDEX_NAME = 'PRIMARY' "
            + "GROUP BY BINARY s.TABLE_NAME HAVING COUNT(*) = 1 AND MIN(c.DATA_TYPE) IN ('tinyint', 'smallint', 'mediumint', 'int', 'bigint')", connection))
        {
            command.Parameters.AddWithValue("@db", database);
            await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                if (tables.TryGetValue(reader.GetString(0), out var table))
                {
                    tables[table.Name] = table with { IntegerKey = reader.GetString(1) };
                }
            }
        }
        return tables;
    }

    /// <summary>A table as one work item, or, when it is large and has an integer key, as key ranges that together cover every value.</summary>
    /// <remarks>
    /// On a reader's connection, in its snapshot: it holds the table (see <see cref="OpenTablesAsync"/>), where
    /// another session would wait behind a DDL that waits for the backup.
    /// </remarks>
    private static async Task<List<SetWorkItem>> PlanTableAsync(
        MySqlConnection connection, string database, SetTable table, bool history, int jobs, CancellationToken cancellationToken)
    {
        var reader = history
            ? new MySqlTableReader(table.Name,
                [.. table.Columns, new SetColumn(table.Period.Start, ColumnKind.Text, true), new SetColumn(table.Period.End, ColumnKind.Text, true)],
                columnList: true, history: true)
            : new MySqlTableReader(table.Name, table.Columns, table.ColumnList);
        var pieces = (int)Math.Min(64, (table.DataBytes + SetRangeBytes - 1) / SetRangeBytes);
        if (jobs == 1 || table.IntegerKey is not { } key || pieces < 2)
        {
            return [new SetWorkItem(table.Name, reader, null)];
        }
        var quotedKey = QuoteIdentifier(key);
        await using var command = new MySqlCommand(
            $"SELECT MIN({quotedKey}), MAX({quotedKey}) FROM {QuoteIdentifier(database)}.{QuoteIdentifier(table.Name)}", connection);
        await using var result = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        if (!await result.ReadAsync(cancellationToken).ConfigureAwait(false) || result.IsDBNull(0))
        {
            return [new SetWorkItem(table.Name, reader, null)];
        }
        // The first and last ranges are open: every key value is in one of them.
        var low = Convert.ToDecimal(result.GetValue(0), CultureInfo.InvariantCulture);
        var high = Convert.ToDecimal(result.GetValue(1), CultureInfo.InvariantCulture);
        var step = Math.Ceiling((high - low + 1) / pieces);
        var items = new List<SetWorkItem>();
        string? previous = null;
        for (var i = 1; i <= pieces; i++)
        {
            var bound = i == pieces ? null : (low + (step * i)).ToString(CultureInfo.InvariantCulture);
            var where = (previous, bound) switch
            {
                (null, not null) => $"{quotedKey} < {bound}",
                (not null, not null) => $"{quotedKey} >= {previous} AND {quotedKey} < {bound}",
                _ => $"{quotedKey} >= {previous}",
            };
            items.Add(new SetWorkItem(table.Name, reader, where));
            previous = bound;
        }
        return items;
    }

    /// <summary>Reads the work items on the workers' connections (in <see cref="ReadOrder"/>), each into chunks of its own.</summary>
    private static async Task ReadTablesAsync(
        string database, BackupSetWriter set, List<MySqlConnection> workers, List<SetWorkItem> items, Dictionary<string, long> rows,
        CancellationToken cancellationToken)
    {
        var queue = Channel.CreateUnbounded<SetWorkItem>();
        foreach (var item in items)
        {
            queue.Writer.TryWrite(item);
        }
        queue.Writer.Complete();
        using var failed = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var tasks = workers.Select(worker => Task.Run(() => WorkAsync(worker), failed.Token)).ToList();
        try
        {
            await Task.WhenAll(tasks).ConfigureAwait(false);
        }
        catch
        {
            // The first failure, not the cancellations it caused in the other workers.
            var first = tasks.Where(t => t.IsFaulted).Select(t => t.Exception!.InnerException!)
                .FirstOrDefault(e => e is not OperationCanceledException);
            if (first is not null && !cancellationToken.IsCancellationRequested)
            {
                System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(first);
            }
            throw;
        }

        async Task WorkAsync(MySqlConnection worker)
        {
            using var chunk = new ChunkBuffer(8 << 20);
            try
            {
                while (queue.Reader.TryRead(out var item))
                {
                    await item.Reader.ReadAsync(worker, item.Reader.Select(database, item.Where), chunk, async (full, count, ct) =>
                    {
                        await set.WriteDataAsync(item.Table, count, full.Memory, ct).ConfigureAwait(false);
                        full.Clear();
                        lock (rows)
                        {
                            rows[item.Table] += count;
                        }
                    }, SetChunkBytes, failed.Token).ConfigureAwait(false);
                }
            }
            catch (Exception e) when (e is MySqlException or InvalidOperationException && !failed.IsCancellationRequested)
            {
                await failed.CancelAsync().ConfigureAwait(false);
                throw new OperationFailedException($"reading the data of {database}: {e.Message}", e);
            }
            catch
            {
                await failed.CancelAsync().ConfigureAwait(false);
                throw;
            }
        }
    }

    /// <summary>Passes writes through and keeps the last bytes (to find a dump's completion trailer).</summary>
    private sealed class TailStream(Stream inner, int keep) : Pipeline.ObservingStream(inner)
    {
        private readonly byte[] _tail = new byte[keep];
        private int _length;

        protected override void Observe(ReadOnlySpan<byte> data)
        {
            if (data.Length >= _tail.Length)
            {
                data[^_tail.Length..].CopyTo(_tail);
                _length = _tail.Length;
                return;
            }
            var kept = Math.Min(_length, _tail.Length - data.Length);
            _tail.AsSpan(_length - kept, kept).CopyTo(_tail);
            data.CopyTo(_tail.AsSpan(kept));
            _length = kept + data.Length;
        }

        public bool Contains(string text) => Encoding.UTF8.GetString(_tail, 0, _length).Contains(text, StringComparison.Ordinal);
    }
}
