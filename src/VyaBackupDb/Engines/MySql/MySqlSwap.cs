using System.Net.Sockets;
using MySqlConnector;
using VyaBackupDb.Errors;

namespace VyaBackupDb.Engines.MySql;

/// <summary>
/// Puts a complete, checked staging database in the place of the target. MySQL cannot rename a
/// database, so the tables move: one RENAME TABLE statement (atomic) moves the target's old tables
/// out to the "replaced" database and the staging tables in. The old leave first: InnoDB names a
/// foreign key "database/name" and renames it only with a move to another database, so the new
/// tables' keys, named alike, can come in. A table with triggers cannot move to another database:
/// the staging tables' triggers and views are read and dropped before, and created again in the
/// target with the staging name pointed at it (with the routines and events); an old table with
/// triggers is renamed aside within the target and moves out once they are dropped, after the
/// RENAME; the old objects' definitions, recorded before the RENAME, move with it to the
/// "replaced" database. Column defaults naming the staging database (a sequence's
/// nextval) are pointed at the target, as the objects are. What can be known to fail after the
/// RENAME (a default over a sequence that is gone, a definition the target's name cannot be
/// written into, a view that cannot be read, a foreign key from another database that InnoDB would
/// carry along) is tried before it, so that it fails with the target unchanged. A new key named as
/// a key of an old table aside comes in under a name of the swap's and gets its own back once that table has left.
/// </summary>
/// <remarks>
/// Until the RENAME the target is unchanged, triggers included; after it the target holds the new
/// tables. The server finishes a RENAME whose client died (or gives up after its 2 s attempt): a
/// process killed while it waits leaves either the old target whole or the new tables. Killed
/// after it, the new objects may be missing, a new key still under the swap's name, and the old tables with triggers still aside in the target (the
/// next restore puts them back under their own names, from the record of them), or in the
/// "replaced" database, which later restores into the same target keep and report.
/// </remarks>
/// <param name="lockWaitSeconds">How long the RENAME waits, in attempts, for sessions that hold the target's tables.</param>
/// <param name="mariaDb">MariaDB, whose SHOW GRANTS lists the roles' grants too: the privileges the steps after the RENAME need are checked before it.</param>
internal sealed partial class MySqlSwap(MySqlConnection connection, string staging, string target, int lockWaitSeconds, bool mariaDb)
{
    private enum Kind { Function, Procedure, View, Trigger, Event }

    /// <summary>What old tables with triggers are renamed within the target while the RENAME runs: the plain replaced name and a number.</summary>
    private readonly string asidePrefix = RestoreStaging.ReplacedName(target) + "_";

    /// <summary>
    /// A table recording the aside name of each old table. Created in staging and moved to the
    /// replaced database by the RENAME itself, so that tables a killed swap left aside in the target
    /// can be put back under their own names; moved out again by the statement that moves them out.
    /// </summary>
    private readonly string asideNamesTable = RestoreStaging.ReplacedName(target) + "_names";

    /// <summary>
    /// A table holding the old target's views, routines, triggers and events as SHOW CREATE gave
    /// them. Moved to the replaced database by the RENAME, like the aside names: once the old
    /// objects are dropped from the target, this is where they are.
    /// </summary>
    private readonly string oldObjectsTable = RestoreStaging.ReplacedName(target) + "_objects";

    /// <param name="SqlMode">The sql_mode it was created under (null for views).</param>
    /// <param name="Charset">The character_set_client it was created under: how the server read its text.</param>
    /// <param name="Collation">The collation_connection it was created under: how its literals compare.</param>
    /// <param name="DatabaseCollation">The database's collation when it was created (null for views, which record none).</param>
    /// <param name="TimeZone">An event's time zone.</param>
    private sealed record SchemaObject(Kind Kind, string Name, string Create, string? SqlMode, string Charset, string Collation,
        string? DatabaseCollation, string? TimeZone = null);

    public async Task<IReadOnlyList<string>> RunAsync(SwapOptions swapOptions, CancellationToken cancellationToken)
    {
        var replaced = swapOptions.Replaced;
        List<SchemaObject> newObjects;
        List<(string Table, List<(string Column, string Default)> Columns)> stagingDefaults;
        var oldTables = new List<string>();
        var aside = new List<(string Table, string Aside)>();
        var homes = new Dictionary<string, (string Database, string Table)>(StringComparer.Ordinal);
        var oldObjectCount = 0;
        bool targetExists;
        var createdTarget = false;
        var renameSent = false;
        (string Clause, string? Comment) options;
        var renames = new List<string>();
        var renamedKeys = new List<(string Table, string Name, string Temporary)>();
        List<RoutineGrant>? routineGrants = [];
        try
        {
            // Until the RENAME the target's data is untouched.
            newObjects = await ReadObjectsAsync(staging, cancellationToken).ConfigureAwait(false);
            stagingDefaults = await DefaultsNamingAsync(staging, cancellationToken).ConfigureAwait(false);
            await CheckDefaultsAsync(stagingDefaults, cancellationToken).ConfigureAwait(false);
            await CheckDefinitionsAsync(newObjects, cancellationToken).ConfigureAwait(false);
            await CheckViewsReadAsync(newObjects, cancellationToken).ConfigureAwait(false);
            if (swapOptions.EventsToEnable.FirstOrDefault(name => EventNamed(newObjects, name) is null) is { } lost)
            {
                // Its name read in another character set when the dump was loaded: it could not be enabled after the RENAME.
                throw new OperationFailedException($"the backup's event {Q(lost)} is not in the restored copy under that name (created under "
                    + "another client character set?), so it cannot be enabled; nothing was changed: restore without --enable-events");
            }
            foreach (var o in newObjects.Where(o => o.Kind is Kind.Trigger or Kind.View))
            {
                await DropAsync(staging, o, cancellationToken).ConfigureAwait(false);
            }
            // What MariaDB's swap needs is checked against the account's grants, read once.
            var grants = mariaDb ? await MariaDbGrants.ReadAsync(connection, cancellationToken).ConfigureAwait(false) : null;
            if (grants is not null)
            {
                RequireCreatePrivileges(grants, newObjects);
            }
            options = await DatabaseOptionsAsync(staging, cancellationToken).ConfigureAwait(false);
            var newTables = await TablesAsync(staging, cancellationToken).ConfigureAwait(false);
            // The swap's own names for old tables and its records: a backup's table so named would collide with them after the RENAME.
            if (newTables.FirstOrDefault(t => t.StartsWith(RestoreStaging.ReplacedPrefix, StringComparison.OrdinalIgnoreCase)) is { } reserved)
            {
                throw new OperationFailedException(
                    $"the backup holds a table named '{reserved}', as the swap names the tables it replaces ({RestoreStaging.ReplacedPrefix}...); refused");
            }
            renames.AddRange(newTables.Select(t => $"{Q(staging)}.{Q(t)} TO {Q(target)}.{Q(t)}"));
            targetExists = await ExistsAsync(target, cancellationToken).ConfigureAwait(false);
            if (!targetExists)
            {
                await ExecuteWithCommentAsync($"CREATE DATABASE {Q(target)} {options.Clause}", options.Comment, cancellationToken).ConfigureAwait(false);
                createdTarget = true;
            }
            else
            {
                if (swapOptions.TerminateConnections)
                {
                    await KillSessionsAsync(connection, target, cancellationToken).ConfigureAwait(false);
                }
                oldTables = await TablesAsync(target, cancellationToken).ConfigureAwait(false);
                var oldObjects = await ReadObjectsAsync(target, cancellationToken).ConfigureAwait(false);
                if (!swapOptions.ReplaceData && (oldTables.Count > 0 || oldObjects.Count > 0))
                {
                    throw new OperationFailedException(RestoreStaging.FilledMeanwhile(target, oldTables.Count, oldObjects.Count));
                }
                if (oldTables.Count > 0)
                {
                    await CheckNoForeignKeysFromOtherDatabasesAsync(cancellationToken).ConfigureAwait(false);
                }
                oldObjectCount = oldObjects.Count;
                routineGrants = await RoutineGrantsAsync(cancellationToken).ConfigureAwait(false);
                await RequireOldObjectsVisibleAsync(oldObjects, routineGrants is not null, cancellationToken).ConfigureAwait(false);
                if (grants is not null)
                {
                    RequireGrantPrivileges(grants, RegrantedOf(routineGrants, newObjects));
                    if (oldTables.Count > 0 || oldObjects.Count > 0)
                    {
                        RequireReplacedPrivileges(grants, replaced, oldObjects);
                    }
                }
                if (oldTables.Count > 0 || oldObjects.Count > 0)
                {
                    await ExecuteAsync($"CREATE DATABASE {Q(replaced)}", cancellationToken).ConfigureAwait(false);
                }
                if (oldObjects.Count > 0)
                {
                    await RecordOldObjectsAsync(oldObjects, routineGrants ?? [], cancellationToken).ConfigureAwait(false);
                    renames.Add($"{Q(staging)}.{Q(oldObjectsTable)} TO {Q(replaced)}.{Q(oldObjectsTable)}");
                }
                if (oldTables.Count > 0)
                {
                    homes = await LeftAsideHomesAsync(oldTables, cancellationToken).ConfigureAwait(false);
                    // A table with triggers cannot leave its database (the server refuses) before they are
                    // dropped, after the RENAME: it goes aside within the target. The others leave for the
                    // replaced database in the RENAME, ahead of the new tables: InnoDB names a foreign key
                    // "database/name", and renames it with the table only when the table changes database.
                    var withTriggers = await TablesWithTriggersAsync(target, cancellationToken).ConfigureAwait(false);
                    renamedKeys = await RenameKeysNamedAsAsideOnesAsync(withTriggers, cancellationToken).ConfigureAwait(false);
                    aside.AddRange(AsideNames(oldTables, oldTables.Where(withTriggers.Contains)));
                    renames.InsertRange(0, oldTables.Where(t => !withTriggers.Contains(t)).Select(t => $"{Q(target)}.{Q(t)} TO {Home(t)}")
                        .Concat(aside.Select(a => $"{Q(target)}.{Q(a.Table)} TO {Q(target)}.{Q(a.Aside)}")));
                    if (aside.Count > 0)
                    {
                        await RecordAsideNamesAsync(aside, cancellationToken).ConfigureAwait(false);
                        renames.Add($"{Q(staging)}.{Q(asideNamesTable)} TO {Q(replaced)}.{Q(asideNamesTable)}");
                    }
                }
            }
            if (renames.Count > 0)
            {
                renameSent = true;
                await RenameInAttemptsAsync(renames, cancellationToken).ConfigureAwait(false);
            }
        }
        catch (Exception e) when (e is OperationFailedException or OperationCanceledException || IsSessionFault(e))
        {
            if (renameSent && connection.State != System.Data.ConnectionState.Open)
            {
                // The server may have run the RENAME and lost only its answer: nothing is dropped, as after a run killed there.
                throw new OperationFailedException($"the connection to the server was lost during the RENAME that replaces '{target}' ({e.Message}): "
                    + $"if it took place, '{target}' holds the restored tables and '{replaced}' the ones it replaced; if not, '{target}' is unchanged "
                    + $"and '{staging}' holds the restored tables (the next restore into '{target}' removes it); nothing was dropped", e);
            }
            // The empty target this swap created, and the one that was to take the old tables.
            foreach (var created in createdTarget ? [target, replaced] : new[] { replaced })
            {
                try
                {
                    await ExecuteAsync($"DROP DATABASE IF EXISTS {Q(created)}", CancellationToken.None).ConfigureAwait(false);
                }
                catch (Exception dropError) when (dropError is OperationFailedException || IsSessionFault(dropError))
                {
                    // Empty; the next restore into the target removes it.
                }
            }
            throw new OperationFailedException(
                $"'{target}' could not be {(createdTarget ? "created" : "replaced (it is unchanged)")}: {e.Message}"
                + (e.InnerException is MySqlException { ErrorCode: MySqlErrorCode.LockWaitTimeout }
                    ? $" (other sessions held its tables or those of '{staging}', in open transactions or LOCK TABLES, for up to "
                        + "lock_wait_seconds; --terminate-connections ends those whose current database is the target)" : ""), e);
        }

        // The target holds the new tables: the rest is done whatever the token says.
        var warnings = new List<string>();
        var oldTablesAreIn = $"'{replaced}'" + (aside.Count > 0 ? $", those with triggers still in '{target}', renamed '{asidePrefix}<n>'" : "");
        var step = "the old views, routines, triggers and events could not all be dropped";
        try
        {
            if (targetExists)
            {
                // The old objects, the triggers of the old tables aside too; then those tables can leave.
                // A session may hold a routine or view in an open transaction (one that reads no table
                // of the target, which the RENAME would have waited for): waited for in attempts.
                foreach (var o in await ReadObjectsAsync(target, CancellationToken.None).ConfigureAwait(false))
                {
                    try
                    {
                        await InAttemptsAsync(DropStatement(target, o), CancellationToken.None).ConfigureAwait(false);
                    }
                    catch (OperationFailedException e)
                    {
                        throw new OperationFailedException($"{o.Kind.ToString().ToLowerInvariant()} {Q(o.Name)}: {e.Message}"
                            + (e.InnerException is MySqlException { ErrorCode: MySqlErrorCode.LockWaitTimeout }
                                ? " (a session holds it in an open transaction; waited up to lock_wait_seconds)" : ""), e);
                    }
                }
                // Tables a killed swap left aside go back under their own names to the replaced database
                // that recorded them. The records leave in the same statement: a later kill's aside
                // tables, numbered alike, must not be taken for the ones they named.
                var moves = aside.Select(a => $"{Q(target)}.{Q(a.Aside)} TO {Home(a.Table)}")
                    .Concat(aside.Count > 0 ? [$"{Q(replaced)}.{Q(asideNamesTable)} TO {Q(staging)}.{Q(asideNamesTable)}"] : [])
                    .Concat(homes.Values.Select(h => h.Database).Distinct(StringComparer.Ordinal)
                        .Select((database, i) => $"{Q(database)}.{Q(asideNamesTable)} TO {Q(staging)}.{Q($"{asideNamesTable}_{i + 2}")}"))
                    .ToList();
                if (moves.Count > 0)
                {
                    step = "the tables it replaced could not all be moved out of it";
                    await ExecuteAsync("RENAME TABLE " + string.Join(", ", moves), CancellationToken.None).ConfigureAwait(false);
                    oldTablesAreIn = $"'{replaced}'";
                }
                step = "its character set, collation and comment could not be set";
                await ExecuteWithCommentAsync($"ALTER DATABASE {Q(target)} {options.Clause}", options.Comment, CancellationToken.None).ConfigureAwait(false);
            }
            step = "its column defaults that draw from its sequences could not all be pointed at it";
            foreach (var (table, columns) in stagingDefaults)
            {
                await SetDefaultsAsync(target, table, [.. columns.Select(c => (c.Column, c.Default.Replace(Q(staging), Q(target), StringComparison.Ordinal)))],
                    CancellationToken.None).ConfigureAwait(false);
            }
            // After the defaults: the server opens the table to change it, and cannot while a default names a sequence not where it says.
            step = $"its foreign keys {string.Join(", ", renamedKeys.Select(k => Q(k.Name)))} could not all get their names back "
                + $"(they are named {string.Join(", ", renamedKeys.Select(k => Q(k.Temporary)))})";
            foreach (var (table, name, temporary) in renamedKeys)
            {
                await RenameForeignKeyAsync(target, table, temporary, name, CancellationToken.None).ConfigureAwait(false);
            }
            step = "its views, routines, triggers or events could not all be created";
            await CreateAllAsync(newObjects, CancellationToken.None).ConfigureAwait(false);
            await GrantRoutinesAgainAsync(routineGrants, newObjects, warnings).ConfigureAwait(false);
            step = "its events could not all be enabled";
            var session = await CharsetAsync(CancellationToken.None).ConfigureAwait(false);
            foreach (var name in swapOptions.EventsToEnable)
            {
                // Under the event's own settings and naming its own definer: ALTER EVENT records the session's character
                // set (which would relabel the event's text) and makes whoever runs it the definer (the event would run
                // with the restoring account's rights).
                var ev = EventNamed(newObjects, name)!;
                await CreateAsync(ev, session, CancellationToken.None,
                    $"ALTER {(ShownDefiner().Match(ev.Create) is { Success: true } definer ? $"DEFINER = {definer.Groups["definer"].Value} " : "")}"
                    + $"EVENT {Q(ev.Name)} ENABLE").ConfigureAwait(false);
            }
        }
        catch (Exception e) when (e is OperationFailedException || IsSessionFault(e))
        {
            throw new OperationFailedException(
                $"the restored tables are in '{target}' but {step}: {e.Message}"
                + (oldTables.Count > 0 ? $"; the tables it replaced are kept in {oldTablesAreIn}" : "")
                + (oldObjectCount > 0 ? $"; {(oldTables.Count > 0 ? "their" : "its old")} views, routines (with their grants), triggers and events are recorded, as SHOW CREATE gave them, "
                    + $"in table {Q(replaced)}.{Q(oldObjectsTable)}" : "")
                + (oldTables.Count > 0 || oldObjectCount > 0 ? " (later restores keep them too): drop them once you no longer need them" : ""), e);
        }
        foreach (var home in homes.GroupBy(h => h.Value.Database, h => h.Value.Table))
        {
            warnings.Add($"the tables an interrupted or failed restore into '{target}' left aside in it are back under their own names in '{home.Key}' "
                + $"({string.Join(", ", home)})");
        }
        // Old tables an interrupted swap left aside in the target, with no record of their names, moved out with the rest: the only copy of what it replaced.
        var leftAside = oldTables.Where(t => t.StartsWith(asidePrefix, StringComparison.Ordinal) && !homes.ContainsKey(t)).ToList();
        if (leftAside.Count > 0)
        {
            warnings.Add($"'{replaced}' holds the tables a failed restore into '{target}' replaced ({string.Join(", ", leftAside)}), and what this one "
                + "replaced; drop it once you no longer need them");
        }
        foreach (var leftover in leftAside.Count > 0 ? [staging] : new[] { staging, replaced })
        {
            try
            {
                await ExecuteAsync($"DROP DATABASE IF EXISTS {Q(leftover)}", CancellationToken.None).ConfigureAwait(false);
            }
            catch (Exception e) when (e is OperationFailedException { InnerException: MySqlException { Number: 1010 } } && leftover == staging)
            {
                // "Directory not empty": InnoDB keeps a DATA DIRECTORY table's link file (.isl) in the folder of the database it was created in.
                warnings.Add($"'{leftover}' could not be dropped: the server keeps files in its folder (a table restored with DATA DIRECTORY "
                    + "keeps its link file there); leave it while such a table exists, and drop it after");
            }
            catch (Exception e) when (e is OperationFailedException || IsSessionFault(e))
            {
                warnings.Add($"'{leftover}' could not be dropped ({e.Message}); drop it once you no longer need it");
            }
        }
        return warnings;

        // Where an old table of the target goes: back under its own name to the replaced database that recorded it, if a killed swap left it aside; else to this swap's.
        string Home(string table) =>
            homes.TryGetValue(table, out var home) ? $"{Q(home.Database)}.{Q(home.Table)}" : $"{Q(replaced)}.{Q(table)}";
    }

    /// <summary>
    /// What the driver throws for the server's errors and a lost session: some calls (ChangeDatabase)
    /// let the socket's own error through, a reset as SocketException, an end of stream as IOException.
    /// </summary>
    private static bool IsSessionFault(Exception e) => e is MySqlException or InvalidOperationException or IOException or SocketException;

    /// <summary>
    /// The RENAME, in attempts of <see cref="MySqlEngine.LockAttemptSeconds"/> until lock_wait_seconds have passed.
    /// Every other query on the tables queues behind a waiting RENAME: short attempts let them through between.
    /// </summary>
    private Task RenameInAttemptsAsync(List<string> renames, CancellationToken cancellationToken) =>
        // Never cancelled once sent: the server's undo of a RENAME cut short over tables with
        // triggers loses a trigger and can leave a table under its aside name (MariaDB 10.11).
        InAttemptsAsync("RENAME TABLE " + string.Join(", ", renames), cancellationToken);

    /// <summary>
    /// <paramref name="sql"/> (never cancelled once sent), in attempts of <see cref="MySqlEngine.LockAttemptSeconds"/>
    /// until lock_wait_seconds have passed: a statement waiting for a lock holds up every other query on what it waits for.
    /// </summary>
    private async Task InAttemptsAsync(string sql, CancellationToken cancellationToken)
    {
        var waited = System.Diagnostics.Stopwatch.StartNew();
        while (true)
        {
            await ExecuteAsync($"SET SESSION lock_wait_timeout = {MySqlEngine.LockAttemptSeconds}", cancellationToken).ConfigureAwait(false);
            try
            {
                await ExecuteAsync(sql, CancellationToken.None).ConfigureAwait(false);
                break;
            }
            catch (OperationFailedException e) when (e.InnerException is MySqlException { ErrorCode: MySqlErrorCode.LockWaitTimeout }
                && waited.Elapsed.TotalSeconds + MySqlEngine.LockAttemptSeconds < lockWaitSeconds)
            {
                await Task.Delay(TimeSpan.FromSeconds(1), cancellationToken).ConfigureAwait(false);
            }
            finally
            {
                // What follows (the old tables out, the new objects in) may wait longer than an attempt.
                await ExecuteAsync($"SET SESSION lock_wait_timeout = {lockWaitSeconds}", CancellationToken.None).ConfigureAwait(false);
            }
        }
    }

    /// <summary>
    /// A name in the target for each old table while the RENAME puts the new one in its place:
    /// the plain replaced name (up to 52 characters, unique to this target) and a number no
    /// table there has (one an interrupted swap left aside is moved out with the rest).
    /// </summary>
    /// <param name="oldTables">All the target's tables: no aside name is one of them.</param>
    private IEnumerable<(string Table, string Aside)> AsideNames(List<string> oldTables, IEnumerable<string> tables)
    {
        var taken = new HashSet<string>(oldTables, StringComparer.OrdinalIgnoreCase);
        var number = 0;
        foreach (var table in tables)
        {
            string name;
            do
            {
                name = $"{asidePrefix}{++number}";
            }
            while (taken.Contains(name));
            yield return (table, name);
        }
    }

    /// <summary>A grant on a routine of the target (a row of mysql.procs_priv); <paramref name="Privileges"/> as that table writes them.</summary>
    private sealed record RoutineGrant(string User, string Host, string Routine, string Type, string Privileges)
    {
        /// <summary>No host: a role.</summary>
        public string Account => Literal(User) + (Host.Length > 0 ? "@" + Literal(Host) : "");

        /// <summary>The GRANT that gives it, on the routine of <paramref name="database"/>; run without NO_BACKSLASH_ESCAPES.</summary>
        public string Statement(string database)
        {
            var privileges = Privileges.Split(',', StringSplitOptions.RemoveEmptyEntries);
            var granted = privileges.Where(p => p != "Grant").Select(p => p.ToUpperInvariant()).DefaultIfEmpty("USAGE");
            return $"GRANT {string.Join(", ", granted)} ON {Type} {Q(database)}.{Q(Routine)} TO {Account}"
                + (privileges.Contains("Grant") ? " WITH GRANT OPTION" : "");
        }

        private static string Literal(string text) => "'" + text.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("'", "''", StringComparison.Ordinal) + "'";
    }

    /// <summary>Grants are given under it: a GRANT to an account dropped meanwhile fails rather than create it without a password.</summary>
    private const string GrantSqlMode = "NO_AUTO_CREATE_USER";

    /// <summary>
    /// The grants on the target's routines. The server deletes them when the old routines are dropped,
    /// where grants on tables and columns, kept by name, stay for the new ones; null when this account
    /// may not read them.
    /// </summary>
    private async Task<List<RoutineGrant>?> RoutineGrantsAsync(CancellationToken cancellationToken)
    {
        var grants = new List<RoutineGrant>();
        try
        {
            await using var command = new MySqlCommand(
                "SELECT User, Host, Routine_name, Routine_type, Proc_priv FROM mysql.procs_priv WHERE Db = @db AND BINARY Db = @db", connection);
            command.Parameters.AddWithValue("@db", target);
            await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                grants.Add(new RoutineGrant(reader.GetString(0), reader.GetString(1), reader.GetString(2), reader.GetString(3), reader.GetString(4)));
            }
        }
        catch (MySqlException e) when (e.ErrorCode is MySqlErrorCode.TableAccessDenied or MySqlErrorCode.DatabaseAccessDenied)
        {
            return null;
        }
        return grants;
    }

    /// <summary>
    /// Before the RENAME: the restoring account sees every old object it must drop, and every grant the
    /// server drops with them. The server does not list to an account the routines of other definers
    /// it holds no privilege on (unless it reads mysql.proc), nor events without EVENT: they stayed in
    /// the target beside the restored tables, at exit 0; routines' grants it could not read were lost.
    /// </summary>
    private async Task RequireOldObjectsVisibleAsync(List<SchemaObject> oldObjects, bool grantsRead, CancellationToken cancellationToken)
    {
        if (!grantsRead && oldObjects.Any(o => o.Kind is Kind.Function or Kind.Procedure))
        {
            throw new OperationFailedException("the grants on its routines cannot be read (no SELECT on mysql.procs_priv), and the server drops them with "
                + "the old routines; grant the restoring account SELECT on mysql.procs_priv, or restore into another name");
        }
        if (mariaDb && !await MySqlEngine.AllowedAsync(connection, MariaDbGrants.ReadRoutines, cancellationToken).ConfigureAwait(false))
        {
            throw new OperationFailedException("the restoring account may not read mysql.proc, so the routines of other definers in it are not listed "
                + "to it and would stay beside the restored tables; grant it SELECT on mysql.proc");
        }
        if (!await MySqlEngine.AllowedAsync(connection, $"SHOW EVENTS FROM {Q(target)}", cancellationToken).ConfigureAwait(false))
        {
            throw new OperationFailedException("the restoring account has no EVENT privilege on it, so its events are not listed to it and would stay "
                + "beside the restored tables; grant it EVENT");
        }
    }

    /// <summary>
    /// Before the RENAME: the restoring account may create in the target what the backup holds there
    /// (it may in the staging database, whose name other grants may cover): found after it, the
    /// target was left with the new tables and without the views, routines, triggers or events.
    /// </summary>
    private void RequireCreatePrivileges(MariaDbGrants grants, List<SchemaObject> newObjects)
    {
        foreach (var (kind, privilege) in new[] { (Kind.Function, "CREATE ROUTINE"), (Kind.Procedure, "CREATE ROUTINE"), (Kind.View, "CREATE VIEW"),
            (Kind.Trigger, "TRIGGER"), (Kind.Event, "EVENT") })
        {
            if (newObjects.Any(o => o.Kind == kind) && !grants.OnDatabase(privilege, target))
            {
                throw new OperationFailedException($"the restoring account holds no {privilege} privilege on it, which the backup's "
                    + $"{kind.ToString().ToLowerInvariant()}s need; grant it {privilege} on the database");
            }
        }
    }

    /// <summary>
    /// Before the RENAME: the restoring account may move the old tables into the replaced database and out of the target
    /// (a table with triggers goes aside within the target first), and drop the swap's own records there. Found after
    /// it, the target was left with the new tables and without its views, routines and triggers.
    /// </summary>
    private void RequireReplacedPrivileges(MariaDbGrants grants, string replaced, List<SchemaObject> oldObjects)
    {
        var missing = new[] { "CREATE", "DROP", "ALTER", "INSERT" }.Select(p => (Privilege: p, On: $"'{replaced}'", Held: grants.OnDatabase(p, replaced)))
            .Concat(new[] { "DROP", "ALTER" }.Select(p => (Privilege: p, On: $"'{target}'", Held: grants.OnDatabase(p, target))))
            // An old routine is dropped with ALTER ROUTINE (its creator holds that on it alone).
            .Concat(oldObjects.Where(o => o.Kind is Kind.Function or Kind.Procedure).Select(o => (Privilege: "ALTER ROUTINE",
                On: $"{o.Kind.ToString().ToLowerInvariant()} {Q(o.Name)}", Held: grants.OnRoutine("ALTER ROUTINE", target, o.Kind.ToString(), o.Name))))
            .Where(m => !m.Held).ToList();
        if (missing.Count > 0)
        {
            throw new OperationFailedException($"the restoring account may not move the old tables and objects aside (it lacks "
                + $"{string.Join(", ", missing.Select(m => $"{m.Privilege} on {m.On}"))}); grant it all privileges on the target and on `vya\\_%`");
        }
    }

    /// <summary>The grants on old routines that go to the new routines of the same name and type.</summary>
    private static List<RoutineGrant> RegrantedOf(List<RoutineGrant>? grants, List<SchemaObject> newObjects) =>
        [.. (grants ?? []).Where(g => newObjects.Any(o => o.Kind.ToString().Equals(g.Type, StringComparison.OrdinalIgnoreCase)
            && o.Name.Equals(g.Routine, StringComparison.OrdinalIgnoreCase)))];

    /// <summary>
    /// Before the RENAME: the restoring account may give the old routines' grants again (GRANT OPTION and the
    /// privileges granted, on the target). The server drops them with the old routines: found after it, they were lost.
    /// </summary>
    private void RequireGrantPrivileges(MariaDbGrants grants, List<RoutineGrant> regranted)
    {
        if (regranted.Count == 0)
        {
            return;
        }
        var needed = regranted.SelectMany(g => g.Privileges.Split(',', StringSplitOptions.RemoveEmptyEntries))
            .Select(p => p == "Grant" ? MariaDbGrants.GrantOption : p.ToUpperInvariant()).Append(MariaDbGrants.GrantOption).ToHashSet();
        if (needed.Where(p => !grants.OnDatabase(p, target)).Order(StringComparer.Ordinal).ToList() is { Count: > 0 } missing)
        {
            var first = regranted[0];
            throw new OperationFailedException($"the grants on its routines ({first.Type.ToLowerInvariant()} {Q(first.Routine)} to {first.Account}"
                + $"{(regranted.Count > 1 ? ", ..." : "")}) are dropped with the old routines and the restoring account could not give them again: "
                + $"grant it {string.Join(", ", missing)} on the database, or restore into another name");
        }
    }

    /// <summary>
    /// Gives the old routines' grants back to the new routines of the same name and type; one that
    /// cannot be given (an account gone, no GRANT OPTION) is a warning: the restored data is in place.
    /// </summary>
    private async Task GrantRoutinesAgainAsync(List<RoutineGrant>? grants, List<SchemaObject> newObjects, List<string> warnings)
    {
        if (grants is null)
        {
            return; // the old target had no routines (RequireOldObjectsVisibleAsync)
        }
        await SetSqlModeAsync(GrantSqlMode, CancellationToken.None).ConfigureAwait(false);
        foreach (var grant in RegrantedOf(grants, newObjects))
        {
            try
            {
                await ExecuteAsync(grant.Statement(target), CancellationToken.None).ConfigureAwait(false);
            }
            catch (OperationFailedException e)
            {
                warnings.Add($"{grant.Type.ToLowerInvariant()} {Q(grant.Routine)} of '{target}' is restored without its grant to {grant.Account} ({e.Message})");
            }
        }
    }

    /// <summary>
    /// In staging, the old target's objects as read, and the grants on its routines (kind GRANT: the
    /// server drops them with the routines): the RENAME moves this record to the replaced database.
    /// </summary>
    private async Task RecordOldObjectsAsync(List<SchemaObject> objects, List<RoutineGrant> grants, CancellationToken cancellationToken)
    {
        await ExecuteAsync($"CREATE TABLE {Q(staging)}.{Q(oldObjectsTable)} (kind VARCHAR(16) NOT NULL, name VARCHAR(64) NOT NULL, "
            + "definition LONGTEXT NOT NULL, sql_mode TEXT, character_set_client VARCHAR(64) NOT NULL, collation_connection VARCHAR(64) NOT NULL, "
            + "database_collation VARCHAR(64), time_zone VARCHAR(64)) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin", cancellationToken).ConfigureAwait(false);
        foreach (var o in objects)
        {
            await InsertAsync(o.Kind.ToString().ToUpperInvariant(), o.Name, o.Create, o.SqlMode, o.Charset, o.Collation, o.DatabaseCollation, o.TimeZone)
                .ConfigureAwait(false);
        }
        foreach (var grant in grants)
        {
            await InsertAsync("GRANT", grant.Routine, grant.Statement(target), GrantSqlMode, "utf8mb4", "utf8mb4_bin", null, null).ConfigureAwait(false);
        }

        async Task InsertAsync(string kind, string name, string definition, string? sqlMode, string charset, string collation, string? databaseCollation, string? zone)
        {
            await using var insert = new MySqlCommand($"INSERT INTO {Q(staging)}.{Q(oldObjectsTable)} VALUES (@kind, @name, @definition, @mode, @charset, @collation, "
                + "@databaseCollation, @zone)", connection);
            insert.Parameters.AddWithValue("@kind", kind);
            insert.Parameters.AddWithValue("@name", name);
            insert.Parameters.AddWithValue("@definition", definition);
            insert.Parameters.AddWithValue("@mode", sqlMode);
            insert.Parameters.AddWithValue("@charset", charset);
            insert.Parameters.AddWithValue("@collation", collation);
            insert.Parameters.AddWithValue("@databaseCollation", databaseCollation);
            insert.Parameters.AddWithValue("@zone", zone);
            await MySqlEngine.Execute(insert, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>In staging, the aside name of each old table: the RENAME moves this record to the replaced database.</summary>
    private async Task RecordAsideNamesAsync(List<(string Table, string Aside)> aside, CancellationToken cancellationToken)
    {
        await ExecuteAsync($"CREATE TABLE {Q(staging)}.{Q(asideNamesTable)} (aside VARCHAR(64) PRIMARY KEY, original VARCHAR(64) NOT NULL) "
            + "CHARACTER SET utf8mb4 COLLATE utf8mb4_bin", cancellationToken).ConfigureAwait(false);
        foreach (var (table, asideName) in aside)
        {
            await using var insert = new MySqlCommand($"INSERT INTO {Q(staging)}.{Q(asideNamesTable)} VALUES (@aside, @original)", connection);
            insert.Parameters.AddWithValue("@aside", asideName);
            insert.Parameters.AddWithValue("@original", table);
            await MySqlEngine.Execute(insert, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Where each old table a killed swap left aside in the target belongs: its own name in the
    /// replaced database whose record of aside names lists it (unless a table there has that name).
    /// </summary>
    private async Task<Dictionary<string, (string Database, string Table)>> LeftAsideHomesAsync(List<string> oldTables, CancellationToken cancellationToken)
    {
        var homes = new Dictionary<string, (string Database, string Table)>(StringComparer.Ordinal);
        var records = await NamesAsync("SELECT '', TABLE_SCHEMA FROM information_schema.TABLES WHERE TABLE_NAME = @db AND BINARY TABLE_NAME = @db",
            asideNamesTable, cancellationToken).ConfigureAwait(false);
        foreach (var (_, database) in records.Where(r => RestoreStaging.IsReplacedName(r.Name, target)))
        {
            var taken = new HashSet<string>(await TablesAsync(database, cancellationToken).ConfigureAwait(false), StringComparer.OrdinalIgnoreCase);
            foreach (var (asideName, table) in await NamesAsync($"SELECT aside, original FROM {Q(database)}.{Q(asideNamesTable)}",
                database, cancellationToken).ConfigureAwait(false))
            {
                if (oldTables.Contains(asideName, StringComparer.Ordinal) && taken.Add(table))
                {
                    homes.TryAdd(asideName, (database, table));
                }
            }
        }
        return homes;
    }

    /// <summary>Creates in the target routines, then views (in an order their dependencies allow), triggers and events.</summary>
    private async Task CreateAllAsync(IReadOnlyList<SchemaObject> objects, CancellationToken cancellationToken)
    {
        await connection.ChangeDatabaseAsync(target, cancellationToken).ConfigureAwait(false);
        var session = await CharsetAsync(cancellationToken).ConfigureAwait(false);
        var pending = objects.OrderBy(o => o.Kind).ToList();
        while (pending.Count > 0)
        {
            var failed = new List<SchemaObject>();
            OperationFailedException? lastError = null;
            foreach (var o in pending)
            {
                try
                {
                    await CreateAsync(o, session, cancellationToken).ConfigureAwait(false);
                }
                catch (OperationFailedException e) when (o.Kind == Kind.View)
                {
                    // A view over a view not created yet: tried again in the next round.
                    failed.Add(o);
                    lastError = e;
                }
            }
            if (failed.Count == pending.Count)
            {
                throw lastError!; // it names the view
            }
            pending = failed;
        }
    }

    /// <summary>Creates <paramref name="o"/> in the target (or runs <paramref name="statement"/> on it) under the settings it was created under.</summary>
    /// <param name="session">The session's own character set and collations, set back after each object.</param>
    private async Task CreateAsync(SchemaObject o, SessionCharset session, CancellationToken cancellationToken, string? statement = null)
    {
        await SetSqlModeAsync(o.SqlMode ?? ShowCreateSqlMode, cancellationToken).ConfigureAwait(false);
        if (o.TimeZone is not null)
        {
            await using var zone = new MySqlCommand("SET SESSION time_zone = @zone", connection);
            zone.Parameters.AddWithValue("@zone", o.TimeZone);
            await zone.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }
        var sql = statement ?? Definition(o);
        try
        {
            // The character set and collation it was created under decide what its literals are and
            // how they compare; a routine, trigger or event also keeps the database collation then.
            var otherCollation = o.DatabaseCollation is not null && o.DatabaseCollation != session.DatabaseCollation;
            if (otherCollation)
            {
                await SetDatabaseCollationAsync(o.DatabaseCollation!, cancellationToken).ConfigureAwait(false);
            }
            try
            {
                await ExecuteUnderAsync(sql, o.Charset, o.Collation, session, cancellationToken).ConfigureAwait(false);
            }
            finally
            {
                if (otherCollation)
                {
                    await SetDatabaseCollationAsync(session.DatabaseCollation, CancellationToken.None).ConfigureAwait(false);
                }
            }
        }
        catch (OperationFailedException e)
        {
            throw new OperationFailedException($"{o.Kind.ToString().ToLowerInvariant()} {Q(o.Name)}: {e.Message}", e);
        }
        catch (MySqlException e)
        {
            throw new OperationFailedException($"{o.Kind.ToString().ToLowerInvariant()} {Q(o.Name)}: {e.Message}", e);
        }
    }

    /// <summary>
    /// An object's definition as it is created in the target. The staging name only ever appears
    /// quoted: SHOW CREATE quotes it, and so does the dump filter where it pointed the source's name
    /// at it. It is long and unique, so this replaces nothing else.
    /// </summary>
    private string Definition(SchemaObject o) => o.Create.Replace(Q(staging), Q(target), StringComparison.Ordinal);

    /// <summary>Text that is ASCII, or in a UTF-8 character set, is the same bytes in this session's UTF-8.</summary>
    private static bool SameBytes(string sql, string charset) => sql.All(char.IsAscii) || charset.StartsWith("utf8", StringComparison.OrdinalIgnoreCase);

    /// <summary>
    /// Before the RENAME: each definition, with the target's name in it, can be written in the
    /// character set it was created under (a character it cannot hold, in the target's name say,
    /// would become '?').
    /// </summary>
    private async Task CheckDefinitionsAsync(List<SchemaObject> objects, CancellationToken cancellationToken)
    {
        foreach (var o in objects.Where(o => !SameBytes(Definition(o), o.Charset)))
        {
            await using var text = new MySqlCommand(
                $"SELECT BINARY CONVERT(CONVERT(@text USING {Q(o.Charset)}) USING utf8mb4) = BINARY @text", connection);
            text.Parameters.AddWithValue("@text", Definition(o));
            if (Convert.ToInt64(await text.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false), System.Globalization.CultureInfo.InvariantCulture) != 1)
            {
                throw new OperationFailedException(
                    $"{o.Kind.ToString().ToLowerInvariant()} {Q(o.Name)}: its definition in '{target}' has characters its character set {o.Charset} cannot hold");
            }
        }
    }

    /// <summary>
    /// Before the RENAME: each view of staging can be read. One the server cannot read (over a table
    /// the dump dropped) it would not create in the target either. A definer that does not exist
    /// is no such failure: the server creates the view all the same. SHOW COLUMNS opens the view
    /// without running it: even a SELECT ... LIMIT 0 runs the stored functions it calls, code of the
    /// backup's that would run as this account (a planted one emptied another database's table).
    /// </summary>
    private async Task CheckViewsReadAsync(List<SchemaObject> objects, CancellationToken cancellationToken)
    {
        foreach (var o in objects.Where(o => o.Kind == Kind.View))
        {
            try
            {
                await ExecuteAsync($"SHOW COLUMNS FROM {Q(staging)}.{Q(o.Name)}", cancellationToken).ConfigureAwait(false);
            }
            catch (OperationFailedException e) when (e.InnerException is MySqlException m)
            {
                // A view whose definer is missing (its account not restored yet) is created all the same: it restores as dumped.
                if (m.ErrorCode != MySqlErrorCode.NoSuchUser)
                {
                    throw new OperationFailedException($"view {Q(o.Name)} cannot be read, so it could not be created in '{target}': {e.Message}", e);
                }
            }
        }
    }

    /// <summary>The tables of <paramref name="database"/> that have triggers.</summary>
    private async Task<HashSet<string>> TablesWithTriggersAsync(string database, CancellationToken cancellationToken) =>
        new((await NamesAsync("SELECT '', EVENT_OBJECT_TABLE FROM information_schema.TRIGGERS WHERE EVENT_OBJECT_SCHEMA = @db AND BINARY EVENT_OBJECT_SCHEMA = @db",
            database, cancellationToken).ConfigureAwait(false)).Select(n => n.Name), StringComparer.Ordinal);

    /// <summary>
    /// Before the RENAME: a foreign key of the backup's named as one of an old table that goes aside
    /// within the target (it has triggers) is renamed in staging, to a name of this swap's. The old
    /// table keeps its keys' names in the target until it can leave, after the RENAME (InnoDB renames
    /// a table's keys within a database only when they carry the generated name, table_ibfk_n), and a
    /// key's name is unique within a database: the new key could not come in beside it. Returned, to
    /// get their names back once the old tables have left.
    /// </summary>
    private async Task<List<(string Table, string Name, string Temporary)>> RenameKeysNamedAsAsideOnesAsync(
        HashSet<string> withTriggers, CancellationToken cancellationToken)
    {
        var renamed = new List<(string Table, string Name, string Temporary)>();
        if (withTriggers.Count == 0)
        {
            return renamed;
        }
        var asideKeys = new HashSet<string>((await ForeignKeysAsync(target, cancellationToken).ConfigureAwait(false))
            .Where(k => withTriggers.Contains(k.Table) && !k.Name.StartsWith(k.Table + "_ibfk_", StringComparison.Ordinal))
            .Select(k => k.Name), StringComparer.OrdinalIgnoreCase);
        foreach (var (table, name) in (await ForeignKeysAsync(staging, cancellationToken).ConfigureAwait(false)).Where(k => asideKeys.Contains(k.Name)))
        {
            var temporary = $"{asidePrefix}fk{renamed.Count + 1}";
            await RenameForeignKeyAsync(staging, table, name, temporary, cancellationToken).ConfigureAwait(false);
            renamed.Add((table, name, temporary));
        }
        return renamed;
    }

    private async Task<List<(string Table, string Name)>> ForeignKeysAsync(string database, CancellationToken cancellationToken) =>
        [.. await NamesAsync("SELECT TABLE_NAME, CONSTRAINT_NAME FROM information_schema.REFERENTIAL_CONSTRAINTS "
            + "WHERE CONSTRAINT_SCHEMA = @db AND BINARY CONSTRAINT_SCHEMA = @db ORDER BY TABLE_NAME, CONSTRAINT_NAME", database, cancellationToken).ConfigureAwait(false)];

    /// <summary>
    /// Gives a foreign key another name, its definition as SHOW CREATE TABLE writes it (the rules as
    /// written; the referenced table, unqualified there, is in the table's database). Without
    /// checks the server changes only the table's definition, not its rows; the key's index keeps its name.
    /// </summary>
    private async Task RenameForeignKeyAsync(string database, string table, string name, string newName, CancellationToken cancellationToken)
    {
        string create;
        await using (var show = new MySqlCommand($"SHOW CREATE TABLE {Q(database)}.{Q(table)}", connection))
        await using (var reader = await show.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false))
        {
            await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
            create = reader.GetString(1);
        }
        var head = $"  CONSTRAINT {Q(name)} FOREIGN KEY ";
        var line = create.Split('\n').SingleOrDefault(l => l.StartsWith(head, StringComparison.Ordinal))
            ?? throw new OperationFailedException($"the definition of foreign key {Q(name)} of table {Q(table)} cannot be read from SHOW CREATE TABLE");
        var definition = line[$"  CONSTRAINT {Q(name)}".Length..].TrimEnd(',');
        await ExecuteAsync("SET @vya_foreign_key_checks = @@foreign_key_checks, SESSION foreign_key_checks = 0", cancellationToken).ConfigureAwait(false);
        try
        {
            // After the RENAME the application may hold the table: waited for in attempts, as the drops are.
            await InAttemptsAsync($"ALTER TABLE {Q(database)}.{Q(table)} DROP FOREIGN KEY {Q(name)}, ADD CONSTRAINT {Q(newName)}{definition}",
                cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            await ExecuteAsync("SET SESSION foreign_key_checks = @vya_foreign_key_checks", CancellationToken.None).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Before the RENAME: no table of another database has a foreign key to the target's tables.
    /// InnoDB would carry it along with the old table to the replaced database, changing that other database.
    /// Read from InnoDB's own list (PROCESS privilege): REFERENTIAL_CONSTRAINTS hides the keys of tables the
    /// account holds nothing on. The list names tables "database/table" as their files are named (`my-db`
    /// is my@002ddb): the server's filename character set encodes and decodes them.
    /// </summary>
    private async Task CheckNoForeignKeysFromOtherDatabasesAsync(CancellationToken cancellationToken)
    {
        var list = mariaDb ? "INNODB_SYS_FOREIGN" : "INNODB_FOREIGN";
        const string Encoded = "CONVERT(CONVERT(@db USING filename) USING binary)";
        static string Decoded(int part) => $"CONVERT(CONVERT(CONVERT(SUBSTRING_INDEX(FOR_NAME, '/', {part}) USING binary) USING filename) USING utf8mb4)";
        List<(string Type, string Name)> keys;
        try
        {
            keys = await NamesAsync($"SELECT DISTINCT {Decoded(1)}, {Decoded(-1)} FROM information_schema.{list} "
                + $"WHERE BINARY SUBSTRING_INDEX(REF_NAME, '/', 1) = {Encoded} AND BINARY SUBSTRING_INDEX(FOR_NAME, '/', 1) <> {Encoded} ORDER BY 1, 2",
                target, cancellationToken).ConfigureAwait(false);
        }
        catch (MySqlException e)
        {
            // Not read: a key the swap would carry along may be there.
            throw new OperationFailedException(e.ErrorCode == MySqlErrorCode.SpecifiedAccessDeniedError
                ? "the swap cannot see every foreign key of another database's tables to its tables, which it would move to the replaced "
                    + $"database: the restoring account needs the PROCESS privilege to read them (information_schema.{list}); "
                    + "grant it PROCESS, or restore into another name"
                : $"InnoDB's list of foreign keys (information_schema.{list}) could not be read, to make sure no table of another database "
                    + $"has one to its tables: {e.Message}", e);
        }
        // Not from a replaced database of this target: an old table a killed swap moved there can reference one it left aside in the target.
        var referencing = keys.Where(r => !RestoreStaging.IsReplacedName(r.Type, target)).ToList();
        if (referencing.Count > 0)
        {
            throw new OperationFailedException(
                $"{string.Join(", ", referencing.Select(r => $"{Q(r.Type)}.{Q(r.Name)}"))} of another database "
                + $"{(referencing.Count == 1 ? "has a foreign key" : "have foreign keys")} to its tables, which the swap would move to the replaced database "
                + "with the old tables; drop those keys first, or restore into another name");
        }
    }

    /// <summary>
    /// Before the RENAME: the defaults that name the staging database are set again, unchanged,
    /// in staging, by the statement that points them at the target after it. The server checks
    /// them as it will then (MariaDB: that the sequence of a nextval is there).
    /// </summary>
    private async Task CheckDefaultsAsync(List<(string Table, List<(string Column, string Default)> Columns)> defaults, CancellationToken cancellationToken)
    {
        foreach (var (table, columns) in defaults)
        {
            try
            {
                await SetDefaultsAsync(staging, table, columns, cancellationToken).ConfigureAwait(false);
            }
            catch (OperationFailedException e)
            {
                throw new OperationFailedException(
                    $"the {(columns.Count == 1 ? "default of column" : "defaults of columns")} {string.Join(", ", columns.Select(c => Q(c.Column)))} "
                    + $"of table {Q(table)} cannot be kept: {e.Message}", e);
            }
        }
    }

    /// <summary>
    /// All of a table's defaults in one statement: the server opens the table to change one, and
    /// cannot while another still names a sequence that is not where it says.
    /// </summary>
    private Task SetDefaultsAsync(string database, string table, List<(string Column, string Default)> columns, CancellationToken cancellationToken) =>
        ExecuteAsync($"ALTER TABLE {Q(database)}.{Q(table)} "
            + string.Join(", ", columns.Select(c => $"ALTER COLUMN {Q(c.Column)} SET DEFAULT ({c.Default})")), cancellationToken);

    /// <param name="DatabaseCollation">The target's default collation.</param>
    private sealed record SessionCharset(string Client, string Connection, string DatabaseCollation);

    private async Task<SessionCharset> CharsetAsync(CancellationToken cancellationToken)
    {
        await using var command = new MySqlCommand(
            "SELECT @@character_set_client, @@collation_connection, DEFAULT_COLLATION_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = DATABASE()",
            connection);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
        return new SessionCharset(reader.GetString(0), reader.GetString(1), reader.GetString(2));
    }

    private async Task SetDatabaseCollationAsync(string collation, CancellationToken cancellationToken) =>
        // A collation name the server itself reported; quoted anyway.
        await ExecuteAsync($"ALTER DATABASE {Q(target)} COLLATE {Q(collation)}", cancellationToken).ConfigureAwait(false);

    /// <summary>
    /// Runs <paramref name="sql"/> with character_set_client and collation_connection as given, as a
    /// client of that character set would have sent it. This session sends UTF-8: text that is
    /// ASCII, or in a UTF-8 character set, is the same bytes; other text the server converts to
    /// <paramref name="charset"/> and runs as a prepared statement (MariaDB prepares any CREATE;
    /// MySQL no routine, trigger or event, which then fails rather than change its literals).
    /// </summary>
    private async Task ExecuteUnderAsync(string sql, string charset, string collation, SessionCharset session, CancellationToken cancellationToken)
    {
        var sameBytes = SameBytes(sql, charset);
        if (!sameBytes)
        {
            // Still on this session's UTF-8; binary, so that PREPARE takes the bytes as they are
            // (CheckDefinitionsAsync made sure before the RENAME that the set holds them all).
            // A hex literal, not a parameter: sql_mode is already the object's, and the connector would escape a
            // backslash in a parameter (\\) even under NO_BACKSLASH_ESCAPES, which reads that as two.
            await ExecuteAsync($"SET @vya_definition = CONVERT(CONVERT(_utf8mb4 X'{Convert.ToHexString(System.Text.Encoding.UTF8.GetBytes(sql))}' "
                + $"USING {Q(charset)}) USING binary)", cancellationToken).ConfigureAwait(false);
        }
        await SetCharsetAsync(charset, collation, cancellationToken).ConfigureAwait(false);
        try
        {
            if (sameBytes)
            {
                await ExecuteAsync(sql, cancellationToken).ConfigureAwait(false);
            }
            else
            {
                await ExecuteAsync("PREPARE vya_definition FROM @vya_definition", cancellationToken).ConfigureAwait(false);
                await ExecuteAsync("EXECUTE vya_definition", cancellationToken).ConfigureAwait(false);
                await ExecuteAsync("DEALLOCATE PREPARE vya_definition", cancellationToken).ConfigureAwait(false);
            }
        }
        finally
        {
            await SetCharsetAsync(session.Client, session.Connection, CancellationToken.None).ConfigureAwait(false);
        }
    }

    private async Task SetCharsetAsync(string charset, string collation, CancellationToken cancellationToken)
    {
        await using var command = new MySqlCommand("SET SESSION character_set_client = @charset, collation_connection = @collation", connection);
        command.Parameters.AddWithValue("@charset", charset);
        command.Parameters.AddWithValue("@collation", collation);
        await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// The sql_mode definitions are read under, and a view (which records none) is created under:
    /// SHOW CREATE writes a view's text for it (backslashes escaped, backticks), whereas a mode left
    /// by the routine created before (NO_BACKSLASH_ESCAPES, ANSI_QUOTES) would read it otherwise.
    /// </summary>
    private const string ShowCreateSqlMode = "";

    private async Task SetSqlModeAsync(string sqlMode, CancellationToken cancellationToken)
    {
        await using var command = new MySqlCommand("SET SESSION sql_mode = @mode", connection);
        command.Parameters.AddWithValue("@mode", sqlMode);
        await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    private async Task<List<SchemaObject>> ReadObjectsAsync(string database, CancellationToken cancellationToken)
    {
        await SetSqlModeAsync(ShowCreateSqlMode, cancellationToken).ConfigureAwait(false);
        var objects = new List<SchemaObject>();
        foreach (var (type, name) in await NamesAsync(
            "SELECT ROUTINE_TYPE, ROUTINE_NAME FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = @db AND ROUTINE_TYPE IN ('FUNCTION', 'PROCEDURE')",
            database, cancellationToken).ConfigureAwait(false))
        {
            var kind = type == "FUNCTION" ? Kind.Function : Kind.Procedure;
            objects.Add(await ShowCreateAsync(kind, database, name, $"Create {(kind == Kind.Function ? "Function" : "Procedure")}", cancellationToken).ConfigureAwait(false));
        }
        foreach (var (_, name) in await NamesAsync(
            "SELECT '', TABLE_NAME FROM information_schema.VIEWS WHERE TABLE_SCHEMA = @db", database, cancellationToken).ConfigureAwait(false))
        {
            objects.Add(await ShowCreateAsync(Kind.View, database, name, "Create View", cancellationToken).ConfigureAwait(false));
        }
        foreach (var (_, name) in await NamesAsync(
            "SELECT '', TRIGGER_NAME FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = @db AND BINARY TRIGGER_SCHEMA = @db ORDER BY EVENT_OBJECT_TABLE, ACTION_ORDER",
            database, cancellationToken).ConfigureAwait(false))
        {
            objects.Add(await ShowCreateAsync(Kind.Trigger, database, name, "SQL Original Statement", cancellationToken).ConfigureAwait(false));
        }
        foreach (var (_, name) in await NamesAsync(
            "SELECT '', EVENT_NAME FROM information_schema.EVENTS WHERE EVENT_SCHEMA = @db AND BINARY EVENT_SCHEMA = @db", database, cancellationToken).ConfigureAwait(false))
        {
            objects.Add(await ShowCreateAsync(Kind.Event, database, name, "Create Event", cancellationToken).ConfigureAwait(false));
        }
        return objects;
    }

    private Task DropAsync(string database, SchemaObject o, CancellationToken cancellationToken) =>
        ExecuteAsync(DropStatement(database, o), cancellationToken);

    private static string DropStatement(string database, SchemaObject o) => $"DROP {o.Kind.ToString().ToUpperInvariant()} IF EXISTS {Q(database)}.{Q(o.Name)}";

    /// <summary>Base tables, system-versioned tables and sequences: everything RENAME TABLE moves.</summary>
    private async Task<List<string>> TablesAsync(string database, CancellationToken cancellationToken) =>
        [.. (await NamesAsync("SELECT '', TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = @db AND TABLE_TYPE <> 'VIEW'",
            database, cancellationToken).ConfigureAwait(false)).Select(n => n.Name)];

    /// <summary>
    /// Column defaults that name the staging database (MariaDB's nextval(`db`.`sequence`), which the dump filter
    /// points at it): RENAME TABLE keeps them, so they are pointed at the target once the tables are there.
    /// </summary>
    private async Task<List<(string Table, List<(string Column, string Default)> Columns)>> DefaultsNamingAsync(string database, CancellationToken cancellationToken)
    {
        await using var command = new MySqlCommand(
            // Not a view's columns: they show the defaults of the table they read.
            "SELECT c.TABLE_NAME, c.COLUMN_NAME, c.COLUMN_DEFAULT FROM information_schema.COLUMNS c JOIN information_schema.TABLES t "
            + "ON BINARY t.TABLE_SCHEMA = c.TABLE_SCHEMA AND BINARY t.TABLE_NAME = c.TABLE_NAME "
            + "WHERE c.TABLE_SCHEMA = @db AND t.TABLE_TYPE <> 'VIEW' AND LOCATE(@quoted, c.COLUMN_DEFAULT) > 0",
            connection);
        command.Parameters.AddWithValue("@db", database);
        command.Parameters.AddWithValue("@quoted", Q(database));
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        var defaults = new List<(string Table, string Column, string Default)>();
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            defaults.Add((reader.GetString(0), reader.GetString(1), reader.GetString(2)));
        }
        return [.. defaults.GroupBy(d => d.Table, StringComparer.Ordinal).Select(g => (g.Key, g.Select(d => (d.Column, d.Default)).ToList()))];
    }

    private async Task<bool> ExistsAsync(string database, CancellationToken cancellationToken) =>
        (await NamesAsync("SELECT '', SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = @db", database, cancellationToken)
            .ConfigureAwait(false)).Count > 0;

    /// <summary>
    /// The staging database's own options (character set, collation, MariaDB's comment) as a
    /// CREATE/ALTER DATABASE clause; the comment is a parameter (@comment) of that statement.
    /// </summary>
    private async Task<(string Clause, string? Comment)> DatabaseOptionsAsync(string database, CancellationToken cancellationToken)
    {
        await using var command = new MySqlCommand("SELECT * FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = @db", connection);
        command.Parameters.AddWithValue("@db", database);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
        // Names the server itself reported; quoted anyway.
        var clause = $"CHARACTER SET {Q(reader.GetString(reader.GetOrdinal("DEFAULT_CHARACTER_SET_NAME")))} "
            + $"COLLATE {Q(reader.GetString(reader.GetOrdinal("DEFAULT_COLLATION_NAME")))}";
        var comment = Enumerable.Range(0, reader.FieldCount).Any(i => reader.GetName(i) == "SCHEMA_COMMENT")
            ? reader["SCHEMA_COMMENT"] as string : null;
        return comment is null ? (clause, null) : (clause + " COMMENT @comment", comment);
    }

    private async Task ExecuteWithCommentAsync(string sql, string? comment, CancellationToken cancellationToken)
    {
        await using var command = new MySqlCommand(sql, connection);
        command.Parameters.AddWithValue("@comment", comment ?? "");
        await MySqlEngine.Execute(command, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Ends the sessions of other clients whose current database is <paramref name="database"/>.</summary>
    public static async Task KillSessionsAsync(MySqlConnection connection, string database, CancellationToken cancellationToken)
    {
        var ids = new List<long>();
        await using (var command = new MySqlCommand("SELECT ID FROM information_schema.PROCESSLIST WHERE BINARY DB = @db AND ID <> CONNECTION_ID()", connection))
        {
            command.Parameters.AddWithValue("@db", database);
            await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                ids.Add(Convert.ToInt64(reader.GetValue(0), System.Globalization.CultureInfo.InvariantCulture));
            }
        }
        foreach (var id in ids)
        {
            try
            {
                await MySqlEngine.Execute(connection, $"KILL CONNECTION {id}", cancellationToken).ConfigureAwait(false);
            }
            catch (OperationFailedException)
            {
                // Gone meanwhile.
            }
        }
    }

    private async Task<List<(string Type, string Name)>> NamesAsync(string sql, string database, CancellationToken cancellationToken)
    {
        await using var command = new MySqlCommand(sql, connection);
        command.Parameters.AddWithValue("@db", database);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        var names = new List<(string, string)>();
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            names.Add((reader.GetString(0), reader.GetString(1)));
        }
        return names;
    }

    /// <summary>An object's definition and what it was created under, from SHOW CREATE (its column <paramref name="textColumn"/> holds the text).</summary>
    private async Task<SchemaObject> ShowCreateAsync(Kind kind, string database, string name, string textColumn, CancellationToken cancellationToken)
    {
        var sql = $"SHOW CREATE {kind.ToString().ToUpperInvariant()} {Q(database)}.{Q(name)}";
        var shown = await ShowCreateTextAsync(kind, sql, name, textColumn, cancellationToken).ConfigureAwait(false);
        if (kind is Kind.Event or Kind.Trigger && MySqlSingleByteCharset.Named(shown.Charset) is { } set)
        {
            var bytes = await ShowCreateBytesAsync(sql, textColumn, cancellationToken).ConfigureAwait(false);
            shown = shown with { Create = AsCreatedUnder(set, kind, bytes, name) ?? shown.Create };
        }
        return kind == Kind.Event ? shown with { Create = CommentUnderSqlMode(shown.Create, name, shown.SqlMode) } : shown;
    }

    /// <summary>
    /// SHOW CREATE EVENT writes the comment with backslash escapes (\\, \n, \r, \0) whatever the event's sql_mode: under
    /// NO_BACKSLASH_ESCAPES, which it is created under again, they would be read as written (each backslash doubled
    /// once more). There they are undone; the rest, and the comment under other modes, is as shown.
    /// </summary>
    private static string CommentUnderSqlMode(string create, string name, string? sqlMode)
    {
        var header = $" EVENT {Q(name)} ";
        var at = create.IndexOf(header, StringComparison.Ordinal);
        if (sqlMode?.Contains("NO_BACKSLASH_ESCAPES", StringComparison.OrdinalIgnoreCase) != true || at < 0)
        {
            return create;
        }
        var comment = create.IndexOf(" COMMENT '", at + header.Length - 1, StringComparison.Ordinal);
        var body = create.IndexOf(" DO ", at + header.Length - 1, StringComparison.Ordinal);
        if (comment < 0 || (body >= 0 && body < comment))
        {
            return create;
        }
        var start = comment + " COMMENT '".Length;
        var text = new System.Text.StringBuilder(create, 0, start, create.Length);
        for (var i = start; i < create.Length; i++)
        {
            if (create[i] == '\\' && i + 1 < create.Length)
            {
                text.Append(create[++i] switch { 'n' => '\n', 'r' => '\r', '0' => '\0', var c => c });
            }
            else if (create[i] == '\'' && i + 1 < create.Length && create[i + 1] == '\'')
            {
                text.Append("''");
                i++;
            }
            else if (create[i] == '\'')
            {
                return text.Append(create, i, create.Length - i).ToString();
            }
            else
            {
                text.Append(create[i]);
            }
        }
        return create; // no end: as shown
    }

    /// <summary>SHOW CREATE as this session reads it (its text converted to UTF-8).</summary>
    private async Task<SchemaObject> ShowCreateTextAsync(Kind kind, string sql, string name, string textColumn, CancellationToken cancellationToken)
    {
        await using var command = new MySqlCommand(sql, connection);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        if (!await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            throw new OperationFailedException($"{sql}: no definition returned");
        }
        string? Column(string column)
        {
            var i = Enumerable.Range(0, reader.FieldCount).FirstOrDefault(i => reader.GetName(i) == column, -1);
            return i < 0 || reader.IsDBNull(i) ? null
                : reader.GetValue(i) is byte[] bytes ? System.Text.Encoding.UTF8.GetString(bytes) : Convert.ToString(reader.GetValue(i), System.Globalization.CultureInfo.InvariantCulture);
        }
        var text = Column(textColumn)
            ?? throw new OperationFailedException($"cannot read the definition of {kind.ToString().ToLowerInvariant()} {Q(name)}: the restoring account "
                + (kind is Kind.Function or Kind.Procedure ? "needs SELECT on mysql.proc (MariaDB) or SHOW_ROUTINE (MySQL) to read other definers' routines"
                    : "lacks a privilege on it (SHOW VIEW, TRIGGER or EVENT)"));
        var charset = Column("character_set_client") ?? throw new OperationFailedException($"{sql}: no character_set_client returned");
        return new SchemaObject(kind, name, text, Column("sql_mode"), charset,
            Column("collation_connection") ?? throw new OperationFailedException($"{sql}: no collation_connection returned"),
            Column("Database Collation"), Column("time_zone"));
    }

    /// <summary>
    /// SHOW CREATE's text as the server keeps it (character_set_results binary): converted to this session's UTF-8, a
    /// byte that is no character of the object's set would read as '?' (cp1251's 0x98, which UTF-8 writes in `И`).
    /// </summary>
    private async Task<byte[]> ShowCreateBytesAsync(string sql, string textColumn, CancellationToken cancellationToken)
    {
        await ExecuteAsync("SET @vya_results = @@character_set_results, character_set_results = binary", cancellationToken).ConfigureAwait(false);
        try
        {
            await using var command = new MySqlCommand(sql, connection);
            await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            return await reader.ReadAsync(cancellationToken).ConfigureAwait(false) && reader.GetValue(reader.GetOrdinal(textColumn)) is byte[] bytes ? bytes
                : throw new OperationFailedException($"{sql}: no definition returned");
        }
        finally
        {
            await ExecuteAsync("SET character_set_results = @vya_results", CancellationToken.None).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// SHOW CREATE of a trigger or event created under a one-byte set (latin1, cp1251, ...) writes its definer, and an
    /// event's name and comment, (kept in UTF-8) into a text of that set (see <see cref="MySqlSingleByteCharset"/>):
    /// read in the set, they are other letters (`Ã©v`), and would be created so. Here the bytes <paramref name="shown"/>
    /// are read as the server wrote them: those parts in UTF-8, the rest in <paramref name="set"/>.
    /// </summary>
    /// <returns>The text as created, or null if a byte outside those parts is no character of the set.</returns>
    private static string? AsCreatedUnder(MySqlSingleByteCharset set, Kind kind, byte[] shown, string name)
    {
        // The parts are found on the byteText, a char each: ASCII is ASCII in UTF-8 and these sets alike.
        var byteText = System.Text.Encoding.Latin1.GetString(shown);
        var inUtf8 = new List<Range>();
        if (ShownDefiner().Match(byteText) is { Success: true } definer)
        {
            inUtf8.AddRange(new[] { definer.Groups["user"], definer.Groups["host"] }.Select(part => new Range(part.Index, part.Index + part.Length)));
        }
        var header = $" EVENT {Q(System.Text.Encoding.Latin1.GetString(System.Text.Encoding.UTF8.GetBytes(name)))} ";
        var at = kind == Kind.Event ? byteText.IndexOf(header, StringComparison.Ordinal) : -1;
        if (at >= 0)
        {
            inUtf8.Add(new Range(at + " EVENT ".Length, at + header.Length - 1));
            // The comment, if the header has one (before the body's DO; the body is as created).
            var comment = byteText.IndexOf(" COMMENT '", at, StringComparison.Ordinal);
            var body = byteText.IndexOf(" DO ", at, StringComparison.Ordinal);
            if (comment >= 0 && (body < 0 || comment < body))
            {
                var start = comment + " COMMENT '".Length;
                var end = start;
                while (end < byteText.Length && !(byteText[end] == '\'' && (end + 1 == byteText.Length || byteText[end + 1] != '\'')))
                {
                    end += byteText[end] is '\\' or '\'' ? 2 : 1; // an escape, or a doubled quote
                }
                if (end < byteText.Length)
                {
                    inUtf8.Add(new Range(start, end));
                }
            }
        }
        var text = new System.Text.StringBuilder();
        var from = 0;
        foreach (var part in inUtf8) // in the order they stand
        {
            var written = shown.AsSpan(part);
            if (set.ToText(shown.AsSpan(from..part.Start.Value)) is not { } before
                || (StrictUtf8.Decode(written) ?? set.ToText(written)) is not { } asCreated)
            {
                return null;
            }
            text.Append(before).Append(asCreated);
            from = part.End.Value;
        }
        return set.ToText(shown.AsSpan(from)) is { } rest ? text.Append(rest).ToString() : null;
    }

    /// <summary>The definer SHOW CREATE TRIGGER and EVENT write first: CREATE DEFINER=`user`@`host` ...; a trigger
    /// created under ANSI_QUOTES keeps it as "user"@"host" (then left in UTF-8 it came back as another, missing, account).</summary>
    [System.Text.RegularExpressions.GeneratedRegex(@"\ACREATE DEFINER=(?<definer>(?<q>[`""])(?<user>(?:(?!\k<q>)[\s\S]|\k<q>\k<q>)*)\k<q>@\k<q>(?<host>(?:(?!\k<q>)[\s\S]|\k<q>\k<q>)*)\k<q>) ")]
    private static partial System.Text.RegularExpressions.Regex ShownDefiner();

    private Task ExecuteAsync(string sql, CancellationToken cancellationToken) => MySqlEngine.Execute(connection, sql, cancellationToken);

    /// <summary>The event of <paramref name="objects"/> named <paramref name="name"/> (event names compare without case), or null.</summary>
    private static SchemaObject? EventNamed(List<SchemaObject> objects, string name) =>
        objects.FirstOrDefault(o => o.Kind == Kind.Event && string.Equals(o.Name, name, StringComparison.OrdinalIgnoreCase));

    private static string Q(string name) => MySqlEngine.QuoteIdentifier(name);
}
