using System.Threading.Channels;
using Npgsql;
using VyaBackupDb.Errors;
using VyaBackupDb.Sources.Sets;

namespace VyaBackupDb.Engines.Postgres;

/// <summary>
/// Loading a backup set: schema.sql and post.sql through the statement filter and psql (as a plain
/// dump), the data chunks on several connections, each by a <c>COPY ... FROM STDIN</c> of our own
/// making for a table the schema created: a chunk's bytes only ever reach the server as COPY rows.
/// </summary>
public sealed partial class PostgresEngine
{
    /// <summary>Chunks up to this size are read into memory and loaded by the next free connection; larger ones are streamed (tests lower it).</summary>
    internal static int BufferedChunkBytes { get; set; } = 16 << 20;

    /// <summary>The most of post.sql's head (settings) repeated before each part when its indexes are built in parallel.</summary>
    private const int PreambleBytes = 16 << 10;

    /// <summary>A chunk on its way to a loader: in memory, or (a big one) its stream, with the reader waiting for it.</summary>
    private sealed record LoadItem(string Name, byte[]? Buffer, int Length, Stream? Stream, long StreamLength, TaskCompletionSource? Done);

    /// <summary>
    /// The buffers chunks are read into, reused: at most one per chunk in flight (the queue's
    /// capacity, the loaders, the reader), so memory stays flat whatever the set's size.
    /// </summary>
    private sealed class ChunkPool(int keep)
    {
        private readonly System.Collections.Concurrent.ConcurrentBag<byte[]> _free = [];

        public byte[] Rent(int length)
        {
            var misfit = new List<byte[]>();
            try
            {
                while (_free.TryTake(out var buffer))
                {
                    if (buffer.Length >= length)
                    {
                        return buffer;
                    }
                    misfit.Add(buffer);
                }
                return GC.AllocateUninitializedArray<byte>(Math.Max(length, ChunkBytes + (1 << 20)));
            }
            finally
            {
                foreach (var buffer in misfit)
                {
                    Return(buffer);
                }
            }
        }

        public void Return(byte[] buffer)
        {
            // A buffer grown for one long row is not kept.
            if (_free.Count < keep && buffer.Length <= ChunkBytes + (1 << 20))
            {
                _free.Add(buffer);
            }
        }
    }

    /// <summary>
    /// A table the schema created: its name as quote_ident writes it (the manifest's), its columns that COPY may fill,
    /// and whether other tables inherit from it (its ANALYZE then reads and locks those too).
    /// </summary>
    private sealed record LoadTable(string Name, HashSet<string> Columns, bool HasChildren);

    private async Task<LoadResult> RestoreSetCoreAsync(
        string database, BackupSetReader set, RestoreOptions options, int jobs, CancellationToken cancellationToken)
    {
        jobs = Math.Max(1, jobs);
        var schema = await set.NextAsync(cancellationToken).ConfigureAwait(false);
        if (schema is not { Kind: SetEntryKind.Schema })
        {
            throw new InvalidDataException("the backup set does not start with schema.sql");
        }
        // The set's SQL files are one dump cut in pieces: what one created (a foreign table, a view) the
        // others are refused by, as the pieces together would be.
        var facts = new PostgresDumpFacts();
        await RestoreAsync(database, schema.Content, options, facts, cancellationToken).ConfigureAwait(false);

        var tables = await ReadLoadTablesAsync(database, cancellationToken).ConfigureAwait(false);
        var first = await set.NextAsync(cancellationToken).ConfigureAwait(false);
        await using var keys = first is { Kind: SetEntryKind.Keys } ? await SpoolKeysAsync(first, tables, cancellationToken).ConfigureAwait(false) : null;
        if (keys is not null)
        {
            await CheckPostDataAsync(database, first!.Name, keys, facts, cancellationToken).ConfigureAwait(false);
            first = await set.NextAsync(cancellationToken).ConfigureAwait(false);
        }
        var paused = await PauseAutovacuumAsync(database, cancellationToken).ConfigureAwait(false);
        using var failed = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        // One chunk waits while each loader loads one: memory is jobs + 2 chunks, and a loader that
        // finishes finds the next one ready.
        var queue = Channel.CreateBounded<LoadItem>(new BoundedChannelOptions(1) { SingleWriter = true });
        var connections = new List<NpgsqlConnection>();
        var loaders = new List<Task>();
        var pool = new ChunkPool(jobs + 2);
        var loaded = new System.Collections.Concurrent.ConcurrentDictionary<TableKey, long>();
        SetEntryContent? post = null;
        // As soon as a table's rows are in, beside the loaders: its keys built, then it is analyzed; the rest after the load.
        NpgsqlConnection? analyzing = null;
        var notAnalyzed = new System.Collections.Concurrent.ConcurrentBag<string>();
        var early = TableCompletion.Start(set.Expected, tables.Values.Select(t => t.Name), async (batch, token) =>
        {
            if (keys is not null)
            {
                await RestorePartsAsync(database, keys, [.. batch.SelectMany(keys.Of)], 1, options, facts, token).ConfigureAwait(false);
            }
            analyzing ??= await OpenAsync(database, token).ConfigureAwait(false);
            foreach (var table in batch)
            {
                await AnalyzeUnlessForeignAsync(analyzing, table, notAnalyzed, token).ConfigureAwait(false);
            }
        }, failed);
        IReadOnlyCollection<string> analyzed = [];
        try
        {
            for (var i = 0; i < jobs; i++)
            {
                var connection = await OpenAsync(database, failed.Token, bufferBytes: CopyBufferBytes).ConfigureAwait(false);
                connections.Add(connection);
                // Commits need not wait for the disk: the swap's own commit does, after all of them.
                await ExecuteAsync(connection, SessionSettings + "; SET synchronous_commit = off", failed.Token).ConfigureAwait(false);
                loaders.Add(Task.Run(() => LoadChunksAsync(connection, queue.Reader, tables, pool, loaded, early, failed.Token)));
            }
            var reading = ReadChunksAsync(set, first, queue.Writer, pool, failed.Token);
            var all = new List<Task>(loaders) { reading };
            try
            {
                await FirstFailureAsync(all, failed).ConfigureAwait(false);
                post = await reading.ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (early is not null && !cancellationToken.IsCancellationRequested)
            {
                // The load was stopped from inside: if the side task (keys, ANALYZE) failed, its error is the one to report.
                try
                {
                    await early.Worker.ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                }
                throw;
            }
            // The keys of the tables not taken by the side task (completed last, without rows, or partitioned),
            // then their ANALYZE, shared among the connections beside the side task's last work. Not that of a
            // parent: it locks its children too, which the side task may be altering (a deadlock); it waits for the end.
            var taken = early?.Stop() ?? new HashSet<string>();
            var rest = keys is null ? [] : tables.Values.Where(t => !t.HasChildren && !taken.Contains(t.Name)).Select(t => t.Name).ToList();
            var building = keys is null ? Task.CompletedTask : KeysThenAnalyzeAsync(keys, taken, rest);
            await FirstFailureAsync([early?.Worker ?? Task.CompletedTask, building], failed).ConfigureAwait(false);
            analyzed = [.. early is null ? [] : await early.FinishAsync().ConfigureAwait(false), .. rest];
        }
        finally
        {
            if (early is not null)
            {
                // Done, or stopped here: its connection is closed below.
                await failed.CancelAsync().ConfigureAwait(false);
                await early.Worker.ContinueWith(_ => { }, TaskScheduler.Default).ConfigureAwait(false);
            }
            foreach (var connection in connections.Append(analyzing).OfType<NpgsqlConnection>())
            {
                await connection.DisposeAsync().ConfigureAwait(false);
            }
        }
        // Before post.sql: our ALTER TABLE must not fire the event triggers it may create (which could refuse it, or record it).
        await ResumeAutovacuumAsync(database, paused, cancellationToken).ConfigureAwait(false);
        await RestorePostAsync(database, post, options, jobs, facts, cancellationToken).ConfigureAwait(false);
        // Tables analyzed before their indexes were built lack the statistics of expression indexes.
        await AnalyzeAsync(database, jobs, analyzed, reanalyzeExpressionIndexed: keys is null, notAnalyzed, cancellationToken).ConfigureAwait(false);
        // Complete: the set reader has checked every entry up to post.sql; the caller checks its end.
        return new LoadResult(null, [], [], loaded,
            [.. notAnalyzed.Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).Select(name =>
                $"{name} was not analyzed: a foreign table inherits from it or partitions it, and ANALYZE would read that table's "
                + "rows (another server's, a file's) into the restored statistics; run ANALYZE on it yourself if that is wanted")]);

        async Task KeysThenAnalyzeAsync(PostDataFile keys, IReadOnlySet<string> taken, List<string> rest)
        {
            await RestorePartsAsync(database, keys,
                [.. keys.Entries.Where(e => e.Table is not { } table || !taken.Contains(table)).Select(e => e.Part)], jobs, options, facts, failed.Token).ConfigureAwait(false);
            await AnalyzeTablesAsync(database, jobs, rest, notAnalyzed, failed.Token).ConfigureAwait(false);
        }
    }

    /// <summary>A spooled post-data file (keys.sql, post.sql) split into its entries; those of keys.sql with their table.</summary>
    private sealed class PostDataFile(Pipeline.SpoolFile file, long preamble, List<(PostgresPostData.Part Part, string? Table)> entries) : IAsyncDisposable
    {
        public string Path => file.Name;

        public long Length => file.Length;

        /// <summary>pg_dump's settings before the first entry, repeated before every run of some of the entries.</summary>
        public long Preamble => preamble;

        public List<(PostgresPostData.Part Part, string? Table)> Entries => entries;

        public IEnumerable<PostgresPostData.Part> Of(string table) => entries.Where(e => e.Table == table).Select(e => e.Part);

        public ValueTask DisposeAsync() => file.DisposeAsync();
    }

    /// <summary>Holds an entry in a private temp file (its digest is checked before any of it runs) and splits it.</summary>
    private static async Task<PostDataFile> SpoolAsync(
        SetEntryContent entry, Dictionary<(string Schema, string Table), LoadTable>? tables, CancellationToken cancellationToken)
    {
        var file = Pipeline.TempSpool.CreateFile();
        try
        {
            await entry.Content.CopyToAsync(file, cancellationToken).ConfigureAwait(false);
            await file.FlushAsync(cancellationToken).ConfigureAwait(false);
            var (preamble, parts) = PostgresPostData.Split(file);
            var entries = new List<(PostgresPostData.Part, string?)>();
            foreach (var part in parts)
            {
                string? table = null;
                if (tables is not null && part.Parallel && part.Length <= PreambleBytes)
                {
                    var text = new byte[part.Length];
                    file.Position = part.Start;
                    file.ReadExactly(text);
                    table = PostgresPostData.KeyTable(text) is { } key && tables.TryGetValue(key, out var found) ? found.Name : null;
                }
                entries.Add((part, table));
            }
            return new PostDataFile(file, preamble, entries);
        }
        catch
        {
            await file.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>keys.sql: only indexes and key constraints, each of a table the schema created (or of none known, built after the load).</summary>
    private static async Task<PostDataFile> SpoolKeysAsync(
        SetEntryContent entry, Dictionary<(string Schema, string Table), LoadTable> tables, CancellationToken cancellationToken)
    {
        var keys = await SpoolAsync(entry, tables, cancellationToken).ConfigureAwait(false);
        if (keys.Preamble > PreambleBytes)
        {
            await keys.DisposeAsync().ConfigureAwait(false);
            throw new InvalidDataException("the backup set's keys.sql does not start as pg_dump's post-data does");
        }
        return keys;
    }

    /// <summary>
    /// Reads a spooled post-data file whose parts run in bundles of any few (each after the preamble)
    /// through the statement filter before any of it runs, as its runs will: refused as a plain dump
    /// would be, and what it creates added to <paramref name="facts"/> (each run is filtered alone:
    /// without them a part could write into a foreign table another created). The preamble and every
    /// part must end between statements, with standard_conforming_strings as the preamble leaves it:
    /// so each part of a run is read as it is read here, after the preamble alone (the parts are cut at
    /// comment lines anyone can write, even inside a string). A file run whole, in order, is filtered
    /// as it runs, as a plain dump.
    /// </summary>
    private async Task CheckPostDataAsync(
        string database, string name, PostDataFile file, PostgresDumpFacts facts, CancellationToken cancellationToken)
    {
        var preamble = await FilterAsync([(0, file.Preamble)]).ConfigureAwait(false);
        foreach (var (part, _) in file.Entries)
        {
            var run = await FilterAsync([(0, file.Preamble), (part.Start, part.Length)]).ConfigureAwait(false);
            if (!preamble.EndedBetweenStatements || !run.EndedBetweenStatements || run.StandardConformingStrings != preamble.StandardConformingStrings)
            {
                throw new DumpFilterException(
                    $"the backup set's {name} is not pg_dump's post-data: an entry ends inside a statement, string or comment, "
                    + "or changes standard_conforming_strings; the backup was refused");
            }
        }

        async Task<PostgresDumpFilter> FilterAsync(List<(long, long)> ranges)
        {
            var filter = await NewFilterAsync(database, facts, cancellationToken).ConfigureAwait(false);
            await using var input = new PostgresPostData.Ranges(file.Path, ranges);
            await filter.CopyAsync(input, Stream.Null, cancellationToken).ConfigureAwait(false);
            return filter;
        }
    }

    /// <summary>
    /// Runs <paramref name="parts"/> of a post-data file shared among up to <paramref name="jobs"/>
    /// psql runs, each through the statement filter with the file's preamble (pg_dump's settings) first
    /// and the <paramref name="facts"/> of the set's files (its own copy: the runs are filtered side by side).
    /// </summary>
    private async Task RestorePartsAsync(
        string database, PostDataFile file, IReadOnlyList<PostgresPostData.Part> parts, int jobs, RestoreOptions options,
        PostgresDumpFacts facts, CancellationToken cancellationToken)
    {
        if (parts.Count == 0)
        {
            return;
        }
        var bundles = Math.Min(jobs, parts.Count);
        using var failed = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var runs = Enumerable.Range(0, bundles).Select(b => Task.Run(async () =>
        {
            List<(long, long)> ranges = [(0, file.Preamble), .. parts.Where((_, i) => i % bundles == b).Select(e => (e.Start, e.Length))];
            await using var input = new PostgresPostData.Ranges(file.Path, ranges);
            await RestoreAsync(database, input, options, facts.Copy(), failed.Token).ConfigureAwait(false);
        })).ToList();
        await FirstFailureAsync(runs, failed).ConfigureAwait(false);
    }

    /// <summary>
    /// post.sql: its indexes and primary-key/unique constraints (those of sets without keys.sql, and of
    /// materialized views) shared among <paramref name="jobs"/> psql runs, then the rest in order on one.
    /// </summary>
    private async Task RestorePostAsync(
        string database, SetEntryContent post, RestoreOptions options, int jobs, PostgresDumpFacts facts, CancellationToken cancellationToken)
    {
        await using var file = await SpoolAsync(post, null, cancellationToken).ConfigureAwait(false);
        var parallel = file.Entries.Select(e => e.Part).Where(e => e.Parallel).ToList();
        // The preamble is repeated before every part: only pg_dump's few settings, never anything big.
        var split = jobs > 1 && parallel.Count > 1 && file.Preamble <= PreambleBytes;
        if (split)
        {
            await CheckPostDataAsync(database, post.Name, file, facts, cancellationToken).ConfigureAwait(false);
            await RestorePartsAsync(database, file, parallel, jobs, options, facts, cancellationToken).ConfigureAwait(false);
            await RestorePartsAsync(database, file, [.. file.Entries.Select(e => e.Part).Where(e => !e.Parallel)], 1, options, facts, cancellationToken)
                .ConfigureAwait(false);
        }
        else
        {
            await using var whole = new PostgresPostData.Ranges(file.Path, [(0, file.Length)]);
            await RestoreAsync(database, whole, options, facts, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Reads the data chunks in order, from <paramref name="first"/>, and hands them to the loaders; returns post.sql, unread.</summary>
    private static async Task<SetEntryContent> ReadChunksAsync(
        BackupSetReader set, SetEntryContent? first, ChannelWriter<LoadItem> queue, ChunkPool pool, CancellationToken cancellationToken)
    {
        try
        {
            for (var entry = first; entry is not null; entry = await set.NextAsync(cancellationToken).ConfigureAwait(false))
            {
                if (entry.Kind == SetEntryKind.Post)
                {
                    return entry;
                }
                if (entry.Kind != SetEntryKind.Data)
                {
                    throw new InvalidDataException($"the backup set's entry '{entry.Name}' is out of order");
                }
                if (entry.Length <= BufferedChunkBytes)
                {
                    var buffer = pool.Rent((int)entry.Length);
                    await entry.Content.ReadExactlyAsync(buffer.AsMemory(0, (int)entry.Length), cancellationToken).ConfigureAwait(false);
                    // The read that finds the end checks the entry's digest: nothing damaged reaches a loader.
                    if (await entry.Content.ReadAsync(new byte[1], cancellationToken).ConfigureAwait(false) != 0)
                    {
                        throw new InvalidDataException($"the backup set's entry '{entry.Name}' is longer than its header says");
                    }
                    await queue.WriteAsync(new LoadItem(entry.Name, buffer, (int)entry.Length, null, 0, null), cancellationToken).ConfigureAwait(false);
                }
                else
                {
                    // Too big to hold: a loader reads it from the set while the set waits.
                    var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                    await queue.WriteAsync(new LoadItem(entry.Name, null, 0, entry.Content, entry.Length, done), cancellationToken).ConfigureAwait(false);
                    await done.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
                }
            }
            throw new InvalidDataException("the backup set ends before post.sql: it is truncated or incomplete");
        }
        finally
        {
            queue.TryComplete();
        }
    }

    /// <summary>The ordinary tables the schema step created (schema, name) with their columns but generated ones.</summary>
    private async Task<Dictionary<(string Schema, string Table), LoadTable>> ReadLoadTablesAsync(string database, CancellationToken cancellationToken)
    {
        await using var connection = await OpenAsync(database, cancellationToken).ConfigureAwait(false);
        var generated = _serverMajor >= 12 ? " AND a.attgenerated = ''" : "";
        await using var command = new NpgsqlCommand(
            "SELECT n.nspname, c.relname, pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(c.relname), "
            + "coalesce((SELECT array_agg(a.attname::text) FROM pg_catalog.pg_attribute a "
            + $"WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped{generated}), '{{}}'), c.relhassubclass "
            + "FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
            + "WHERE c.relkind = 'r' AND n.nspname " + string.Format(System.Globalization.CultureInfo.InvariantCulture, UserSchemas, "n.nspname"),
            connection);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        var tables = new Dictionary<(string, string), LoadTable>();
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            tables[(reader.GetString(0), reader.GetString(1))] = new LoadTable(
                reader.GetString(2), new HashSet<string>(reader.GetFieldValue<string[]>(3), StringComparer.Ordinal), reader.GetBoolean(4));
        }
        return tables;
    }

    private static async Task LoadChunksAsync(
        NpgsqlConnection connection, ChannelReader<LoadItem> queue, Dictionary<(string Schema, string Table), LoadTable> tables,
        ChunkPool pool, System.Collections.Concurrent.ConcurrentDictionary<TableKey, long> loaded, TableCompletion? early,
        CancellationToken cancellationToken)
    {
        while (await queue.WaitToReadAsync(cancellationToken).ConfigureAwait(false))
        {
            while (queue.TryRead(out var item))
            {
                try
                {
                    (TableKey Table, long Rows) copied;
                    if (item.Buffer is not null)
                    {
                        copied = await LoadBufferedAsync(connection, item, tables, cancellationToken).ConfigureAwait(false);
                        pool.Return(item.Buffer);
                    }
                    else
                    {
                        copied = await LoadStreamedAsync(connection, item, tables, cancellationToken).ConfigureAwait(false);
                        item.Done!.SetResult();
                    }
                    // The COPY succeeded, so each line sent is a row in the table (a line the server could not take fails it whole).
                    loaded.AddOrUpdate(copied.Table, copied.Rows, (_, sum) => sum + copied.Rows);
                    early?.ChunkLoaded(tables[(copied.Table.Schema, copied.Table.Table)].Name);
                }
                catch (Exception e)
                {
                    item.Done?.TrySetException(e);
                    if (e is NpgsqlException or PostgresException)
                    {
                        throw new OperationFailedException($"loading {item.Name} failed: {PostgresFailure.Describe(e)}", e);
                    }
                    throw;
                }
            }
        }
    }

    /// <summary>The COPY a chunk's header asks for, validated: exactly our header's shape, a table the schema created, its columns.</summary>
    private static (string Command, TableKey Table) CopyCommand(string entry, ReadOnlySpan<byte> headerLine, Dictionary<(string Schema, string Table), LoadTable> tables)
    {
        if (PostgresCopyChunk.Parse(headerLine) is not { } target)
        {
            throw new DumpFilterException($"the backup set's entry '{entry}' is not a COPY of one table's rows; the backup was refused");
        }
        if (!tables.TryGetValue((target.Schema, target.Table), out var table))
        {
            throw new DumpFilterException(
                $"the backup set's entry '{entry}' loads into {Shown(target.Schema)}.{Shown(target.Table)}, which is not a table of the backup's schema; the backup was refused");
        }
        if (target.Columns.FirstOrDefault(c => !table.Columns.Contains(c)) is { } unknown)
        {
            throw new DumpFilterException(
                $"the backup set's entry '{entry}' names a column {Shown(unknown)} that {Shown(target.Schema)}.{Shown(target.Table)} does not have; the backup was refused");
        }
        return ($"COPY {QuoteIdentifier(target.Schema)}.{QuoteIdentifier(target.Table)}"
            + (target.Columns.Count == 0 ? "" : " (" + string.Join(", ", target.Columns.Select(QuoteIdentifier)) + ")") + " FROM STDIN",
            new TableKey(target.Schema, target.Table));
    }

    private static string Shown(string name) => Catalog.DatabaseSettings.Shown(QuoteIdentifier(name));

    private static DumpFilterException Planted(string entry) =>
        new($"the backup set's entry '{entry}' holds something after its rows' end (\\.); the backup was refused");

    /// <summary>Loads a chunk held in memory; returns its table and the rows it sent.</summary>
    private static async Task<(TableKey Table, long Rows)> LoadBufferedAsync(
        NpgsqlConnection connection, LoadItem item, Dictionary<(string Schema, string Table), LoadTable> tables, CancellationToken cancellationToken)
    {
        var chunk = item.Buffer.AsMemory(0, item.Length);
        var quoted = false;
        var newline = PostgresCopyChunk.HeaderEnd(chunk.Span[..Math.Min(chunk.Length, PostgresCopyChunk.MaxHeaderBytes + 1)], ref quoted);
        if (newline < 0 || newline > PostgresCopyChunk.MaxHeaderBytes)
        {
            throw new DumpFilterException($"the backup set's entry '{item.Name}' is not a COPY of one table's rows; the backup was refused");
        }
        var (command, table) = CopyCommand(item.Name, chunk.Span[..newline], tables);
        // The rows end with the line \. and nothing after it; no row before it may start with \. either.
        var end = PostgresCopyChunk.EndLine.Length;
        if (chunk.Length - newline - 1 < end || !chunk.Span[^end..].SequenceEqual(PostgresCopyChunk.EndLine)
            || PostgresCopyChunk.HasEndMarker(chunk.Span[newline..^end]))
        {
            throw Planted(item.Name);
        }
        var rows = chunk[(newline + 1)..^end];
        await ImportAsync(connection, command, raw => raw.WriteAsync(rows, cancellationToken).AsTask(), cancellationToken).ConfigureAwait(false);
        return (table, rows.Span.Count((byte)'\n'));
    }

    /// <summary>
    /// Runs one COPY FROM STDIN, <paramref name="write"/> giving it the rows (the raw bytes under the
    /// text writer: sent as they are, never decoded). If anything fails the COPY is cancelled, so that
    /// no part of the chunk is committed, and that failure is the one thrown.
    /// </summary>
    private static async Task ImportAsync(NpgsqlConnection connection, string command, Func<Stream, Task> write, CancellationToken cancellationToken)
    {
        var import = await connection.BeginTextImportAsync(command, cancellationToken).ConfigureAwait(false);
        try
        {
            await write(((StreamWriter)import).BaseStream).ConfigureAwait(false);
        }
        catch
        {
            try
            {
                ((NpgsqlCopyTextWriter)import).Cancel();
                await import.DisposeAsync().ConfigureAwait(false);
            }
            catch (Exception e) when (e is NpgsqlException or PostgresException or ObjectDisposedException or InvalidOperationException or IOException)
            {
                // Already broken: the first failure is the one to report.
            }
            throw;
        }
        await import.DisposeAsync().ConfigureAwait(false);
    }

    /// <summary>Loads a chunk too big to hold, from the set as it is read; returns its table and the rows it sent.</summary>
    private static async Task<(TableKey Table, long Rows)> LoadStreamedAsync(
        NpgsqlConnection connection, LoadItem item, Dictionary<(string Schema, string Table), LoadTable> tables, CancellationToken cancellationToken)
    {
        var input = item.Stream!;
        var buffer = GC.AllocateUninitializedArray<byte>(1 << 20);
        // The header line, then the rows: everything up to the last three bytes, which must be \.\n.
        var header = new MemoryStream();
        int newline;
        int filled;
        var quoted = false;
        while (true)
        {
            filled = await input.ReadAsync(buffer, cancellationToken).ConfigureAwait(false);
            if (filled == 0)
            {
                throw new InvalidDataException($"the backup set's entry '{item.Name}' is truncated");
            }
            newline = PostgresCopyChunk.HeaderEnd(buffer.AsSpan(0, filled), ref quoted);
            if (newline >= 0)
            {
                header.Write(buffer, 0, newline);
                break;
            }
            header.Write(buffer, 0, filled);
            if (header.Length > PostgresCopyChunk.MaxHeaderBytes)
            {
                throw new DumpFilterException($"the backup set's entry '{item.Name}' is not a COPY of one table's rows; the backup was refused");
            }
        }
        var (command, table) = CopyCommand(item.Name, header.GetBuffer().AsSpan(0, (int)header.Length), tables);
        var end = PostgresCopyChunk.EndLine.Length;
        var rowsLength = item.StreamLength - header.Length - 1 - end;
        if (rowsLength < 0)
        {
            throw Planted(item.Name);
        }
        long lines = 0;
        await ImportAsync(connection, command, raw => SendRowsAsync(raw, buffer, filled, newline + 1), cancellationToken).ConfigureAwait(false);
        return (table, lines);

        async Task SendRowsAsync(Stream raw, byte[] buffer, int filled, int start)
        {
            var tail = new byte[end + 2];
            var tailLength = 0;
            // The last two bytes before each buffer, so that a \. line across two reads is seen: "\n" to start.
            var carry = new byte[] { 0, (byte)'\n' };
            long sent = 0;
            var scan = new byte[buffer.Length + 2];
            while (true)
            {
                var data = buffer.AsMemory(start, filled - start);
                var rows = (int)Math.Min(data.Length, rowsLength - sent);
                if (rows > 0)
                {
                    carry.CopyTo(scan, 0);
                    data.Span[..rows].CopyTo(scan.AsSpan(2));
                    if (PostgresCopyChunk.HasEndMarker(scan.AsSpan(0, rows + 2)))
                    {
                        throw Planted(item.Name);
                    }
                    scan.AsSpan(rows, 2).CopyTo(carry);
                    await raw.WriteAsync(data[..rows], cancellationToken).ConfigureAwait(false);
                    lines += data.Span[..rows].Count((byte)'\n');
                    sent += rows;
                }
                var rest = data.Span[rows..];
                if (tailLength + rest.Length > tail.Length)
                {
                    throw new InvalidDataException($"the backup set's entry '{item.Name}' is longer than its header says");
                }
                rest.CopyTo(tail.AsSpan(tailLength));
                tailLength += rest.Length;
                filled = await input.ReadAsync(buffer, cancellationToken).ConfigureAwait(false);
                start = 0;
                if (filled == 0)
                {
                    break;
                }
            }
            if (sent != rowsLength || !tail.AsSpan(0, tailLength).SequenceEqual(PostgresCopyChunk.EndLine) || carry[1] != (byte)'\n')
            {
                throw Planted(item.Name);
            }
        }
    }

    /// <summary>
    /// Keeps autovacuum off the tables while they are loaded (it would vacuum and analyze each one
    /// as its rows arrive, competing with the load, and ANALYZE runs at the end anyway): tables
    /// without a setting of their own get <c>autovacuum_enabled = false</c>, taken back by
    /// <see cref="ResumeAutovacuumAsync"/> once the rows and keys are in, before post.sql. Returns those tables (names quoted).
    /// </summary>
    private async Task<List<string>> PauseAutovacuumAsync(string database, CancellationToken cancellationToken)
    {
        await using var connection = await OpenAsync(database, cancellationToken).ConfigureAwait(false);
        var names = (await ListAsync(connection,
            "SELECT pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(c.relname), 0 FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
            + "WHERE c.relkind = 'r' AND NOT EXISTS (SELECT 1 FROM unnest(c.reloptions) o WHERE o LIKE 'autovacuum\\_enabled=%') AND n.nspname "
            + string.Format(System.Globalization.CultureInfo.InvariantCulture, UserSchemas, "n.nspname"),
            cancellationToken).ConfigureAwait(false)).Select(t => t.Name).ToList();
        foreach (var name in names)
        {
            // The name comes from quote_ident: already quoted by the server's own rules.
            await Execute(connection, $"ALTER TABLE ONLY {name} SET (autovacuum_enabled = false)", cancellationToken).ConfigureAwait(false);
        }
        return names;
    }

    private async Task ResumeAutovacuumAsync(string database, List<string> names, CancellationToken cancellationToken)
    {
        await using var connection = await OpenAsync(database, cancellationToken).ConfigureAwait(false);
        foreach (var name in names)
        {
            await Execute(connection, $"ALTER TABLE ONLY {name} RESET (autovacuum_enabled)", cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Fresh statistics for the planner, the tables shared among the connections: ANALYZE of every
    /// table and materialized view but those <paramref name="analyzed"/> during the load, unless
    /// they were analyzed before an index on an expression was built (whose statistics ANALYZE gathers).
    /// </summary>
    private async Task AnalyzeAsync(
        string database, int jobs, IReadOnlyCollection<string> analyzed, bool reanalyzeExpressionIndexed,
        System.Collections.Concurrent.ConcurrentBag<string> notAnalyzed, CancellationToken cancellationToken)
    {
        List<string> names;
        await using (var connection = await OpenAsync(database, cancellationToken).ConfigureAwait(false))
        await using (var command = new NpgsqlCommand(
            "SELECT pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(c.relname) FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
            + "WHERE c.relkind IN ('r', 'p', 'm') AND n.nspname " + string.Format(System.Globalization.CultureInfo.InvariantCulture, UserSchemas, "n.nspname")
            + " AND (NOT (pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(c.relname)) = ANY($1) "
            + "OR $2 AND EXISTS (SELECT 1 FROM pg_catalog.pg_index i WHERE i.indrelid = c.oid AND i.indexprs IS NOT NULL))", connection))
        {
            command.Parameters.Add(new NpgsqlParameter { Value = analyzed.ToArray() });
            command.Parameters.Add(new NpgsqlParameter { Value = reanalyzeExpressionIndexed });
            names = await StringsAsync(command, cancellationToken).ConfigureAwait(false);
        }
        await AnalyzeTablesAsync(database, jobs, names, notAnalyzed, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// ANALYZE of <paramref name="names"/> (quote_ident names: already quoted by the server's own rules) on
    /// <paramref name="jobs"/> connections; those with a foreign table in their tree added to <paramref name="notAnalyzed"/>.
    /// </summary>
    private async Task AnalyzeTablesAsync(
        string database, int jobs, IReadOnlyList<string> names, System.Collections.Concurrent.ConcurrentBag<string> notAnalyzed,
        CancellationToken cancellationToken)
    {
        if (names.Count == 0)
        {
            return;
        }
        var queue = Channel.CreateUnbounded<string>();
        foreach (var name in names)
        {
            queue.Writer.TryWrite(name);
        }
        queue.Writer.Complete();
        using var failed = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var workers = Enumerable.Range(0, Math.Min(jobs, names.Count)).Select(_ => Task.Run(async () =>
        {
            await using var connection = await OpenAsync(database, failed.Token).ConfigureAwait(false);
            while (queue.Reader.TryRead(out var name))
            {
                await AnalyzeUnlessForeignAsync(connection, name, notAnalyzed, failed.Token).ConfigureAwait(false);
            }
        })).ToList();
        await FirstFailureAsync(workers, failed).ConfigureAwait(false);
    }

    /// <summary>
    /// ANALYZE of a table (a quote_ident name), unless a foreign table inherits from it or is one of its
    /// partitions, at any depth: ANALYZE samples those too, so the restored statistics (pg_stats, readable
    /// by the database's users) would hold what the foreign table reads: another database's rows
    /// (postgres_fdw), a file of the server's host (file_fdw). Such a table is added to <paramref name="notAnalyzed"/>.
    /// </summary>
    private static async Task AnalyzeUnlessForeignAsync(
        NpgsqlConnection connection, string name, System.Collections.Concurrent.ConcurrentBag<string> notAnalyzed, CancellationToken cancellationToken)
    {
        await using var check = new NpgsqlCommand(
            "WITH RECURSIVE tree(oid) AS (SELECT $1::pg_catalog.regclass::pg_catalog.oid "
            + "UNION SELECT i.inhrelid FROM pg_catalog.pg_inherits i JOIN tree ON i.inhparent = tree.oid) "
            + "SELECT EXISTS (SELECT 1 FROM tree JOIN pg_catalog.pg_class c ON c.oid = tree.oid WHERE c.relkind = 'f')", connection);
        check.Parameters.Add(new NpgsqlParameter { Value = name });
        if ((bool)(await check.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false))!)
        {
            notAnalyzed.Add(name);
            return;
        }
        await Execute(connection, $"ANALYZE {name}", cancellationToken).ConfigureAwait(false);
    }
}
