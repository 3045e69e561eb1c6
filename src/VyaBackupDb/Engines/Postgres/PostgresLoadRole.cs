using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using Npgsql;
using VyaBackupDb.Errors;

namespace VyaBackupDb.Engines.Postgres;

/// <summary>
/// The load as an unprivileged role. What a dump defines runs as the account that loads it (a
/// CHECK constraint on every copied row, a column default, an index expression, a trigger): as a
/// superuser, a planted backup's function could create roles, read any table of the server or run
/// programs on its host. So when the instance's account is a superuser, the staging database is
/// loaded by a role made for it: LOGIN and nothing else, the owner of the staging database while the
/// load runs, named like it (a later restore into the same target, under the same lock, finds a
/// leftover of a killed run) and able to log in only while the load's own sessions log in. Every session of the load connects as
/// it: psql, the COPY connections, index builds and ANALYZE. What only a superuser may do and runs
/// no code (the dump's <c>OWNER TO</c>, ...: <see cref="PostgresFilterOptions.HoldBackOwnerStatements"/>)
/// the filter holds back; the instance's account runs it after the load, on what the load created
/// only, takes over what the role still owns, and drops it. <c>--trust-backup</c> loads as the
/// instance's account, as restores did before.
/// </summary>
public sealed partial class PostgresEngine
{
    /// <summary>The role the current load runs as, and what its filters held back (null: the instance's account loads).</summary>
    private LoadRole? _loadRole;

    /// <summary>
    /// How long the load role may log in once a login window opens, if the run dies before closing
    /// it: a login (psql's start included) must come within it on a busy machine.
    /// </summary>
    internal const int LoginWindowSeconds = 10;

    private sealed class LoadRole(
        string database, string name, string password, string verifier, string databaseOwner, NpgsqlConnection control, NpgsqlConnection door)
        : IAsyncDisposable
    {
        /// <summary>One login window at a time, on <see cref="control"/> and <see cref="door"/>.</summary>
        private readonly SemaphoreSlim _windows = new(1, 1);

        public string Database => database;

        public string Name => name;

        public string Password => password;

        /// <summary>Who owned the staging database before the load: its owner again after it.</summary>
        public string DatabaseOwner => databaseOwner;

        public List<HeldBackStatement> HeldBack { get; } = [];

        /// <summary>While a window is open: the transaction holding pg_authid (rolled back or committed when it closes).</summary>
        private NpgsqlTransaction? _guard;

        /// <summary>
        /// Lets the role log in until the window closes: its VALID UNTIL, in the past otherwise,
        /// <see cref="LoginWindowSeconds"/> ahead of the server's clock (a run killed meanwhile leaves a
        /// login for those seconds at most, maybe with a password the backup's code queued). A role
        /// may change its own password, never its VALID UNTIL: the backup's code could give it a
        /// password someone knows, but never while a window is open: the window holds pg_authid in
        /// SHARE ROW EXCLUSIVE mode (no ALTER ROLE commits anywhere; logins go on; another restore's
        /// window waits), taken without a gap: <see cref="control"/> asks for it while
        /// <see cref="door"/>'s transaction, which opens the door, holds pg_authid, so the request is
        /// queued first and granted as the door opens, before any other change. The password is
        /// checked under it. A window that fails ends every session of the role.
        /// </summary>
        public async Task<LoginWindow> OpenLoginWindowAsync(CancellationToken cancellationToken)
        {
            await _windows.WaitAsync(cancellationToken).ConfigureAwait(false);
            try
            {
                for (var clock = System.Diagnostics.Stopwatch.StartNew(); ;)
                {
                    await WaitForNoRoleChangeAsync(clock, cancellationToken).ConfigureAwait(false);
                    await RequireOwnPasswordAsync(cancellationToken).ConfigureAwait(false);
                    if (await TryOpenDoorAsync(cancellationToken).ConfigureAwait(false))
                    {
                        // Nothing could change the password since the check above; checked again all the same.
                        await RequireOwnPasswordAsync(cancellationToken).ConfigureAwait(false);
                        return new LoginWindow(this);
                    }
                    await Task.Delay(20, cancellationToken).ConfigureAwait(false);
                }
            }
            catch
            {
                await ShutAfterFailureAsync().ConfigureAwait(false);
                _windows.Release();
                throw;
            }
        }

        /// <summary>
        /// Opens the door with pg_authid held (true), or gives up when another session was granted
        /// pg_authid for a change before the request was queued (false: nothing changed, to try again).
        /// </summary>
        private async Task<bool> TryOpenDoorAsync(CancellationToken cancellationToken)
        {
            var until = (DateTime)(await Scalar(control, $"SELECT pg_catalog.now() + interval '{LoginWindowSeconds} seconds'", cancellationToken).ConfigureAwait(false))!;
            var pid = control.ProcessID.ToString(CultureInfo.InvariantCulture);
            await using var opening = await door.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
            await Execute(door, $"SET LOCAL lock_timeout = '10s'; ALTER ROLE {QuoteIdentifier(name)} VALID UNTIL "
                + $"'{until.ToString("yyyy-MM-dd HH:mm:ss.ffffff", CultureInfo.InvariantCulture)}+00'", cancellationToken).ConfigureAwait(false);
            _guard = await control.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
            using var stopLocking = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            var locking = Execute(control, "SET LOCAL lock_timeout = '30s'; LOCK TABLE pg_catalog.pg_authid IN SHARE ROW EXCLUSIVE MODE",
                stopLocking.Token);
            var opened = false;
            try
            {
                // Until the request waits behind the door's transaction: from then on any other
                // request for pg_authid but a read queues behind it.
                while (await Scalar(door, $"SELECT count(*) FROM pg_catalog.pg_locks l WHERE {OnAuthId} AND l.pid = {pid} AND NOT l.granted", cancellationToken)
                        .ConfigureAwait(false) is not > 0L)
                {
                    if (locking.IsCompleted)
                    {
                        await locking.ConfigureAwait(false); // it cannot be granted before the door's transaction ends: a failure
                    }
                    await Task.Delay(1, cancellationToken).ConfigureAwait(false);
                }
                // Granted to someone else before that (a role change, another restore's window): the door stays shut.
                if (await Scalar(door, $"SELECT count(*) FROM pg_catalog.pg_locks l WHERE {OnAuthId} AND l.granted AND l.mode IN ({ChangeModes}) "
                        + $"AND l.pid NOT IN ({pid}, pg_catalog.pg_backend_pid())", cancellationToken).ConfigureAwait(false) is > 0L)
                {
                    return false;
                }
                await opening.CommitAsync(cancellationToken).ConfigureAwait(false);
                opened = true;
                await locking.ConfigureAwait(false);
                return true;
            }
            finally
            {
                if (!opened)
                {
                    // The door's transaction rolls back as it is disposed: the door never opened.
                    await stopLocking.CancelAsync().ConfigureAwait(false);
                    await locking.ContinueWith(_ => { }, TaskScheduler.Default).ConfigureAwait(false);
                    await _guard.DisposeAsync().ConfigureAwait(false);
                    _guard = null;
                }
            }
        }

        /// <summary>
        /// The locks on pg_authid of a session that may commit a change to it (or holds it as a
        /// window does); not a reader's, nor autovacuum's (SHARE UPDATE EXCLUSIVE, which a window's
        /// lock request makes it give up).
        /// </summary>
        private const string ChangeModes = "'RowExclusiveLock', 'ShareLock', 'ShareRowExclusiveLock', 'ExclusiveLock', 'AccessExclusiveLock'";

        /// <summary>A pg_locks row (l) that is a lock on pg_authid, a shared catalog (database 0).</summary>
        private const string OnAuthId =
            "l.locktype = 'relation' AND l.database = 0 AND l.relation = 'pg_catalog.pg_authid'::pg_catalog.regclass";

        /// <summary>
        /// Waits, the door shut, until no other session holds pg_authid for a change (a CREATE or
        /// ALTER ROLE not committed yet, another restore's window), at most a minute from <paramref name="clock"/>'s
        /// start. One of the load role's own sessions doing so is the backup's code changing its password: refused.
        /// </summary>
        private async Task WaitForNoRoleChangeAsync(System.Diagnostics.Stopwatch clock, CancellationToken cancellationToken)
        {
            await using var command = new NpgsqlCommand(
                $"SELECT DISTINCT l.pid, a.usename FROM pg_catalog.pg_locks l LEFT JOIN pg_catalog.pg_stat_activity a ON a.pid = l.pid "
                + $"WHERE {OnAuthId} AND l.mode IN ({ChangeModes}) AND l.pid <> pg_catalog.pg_backend_pid()", control);
            while (true)
            {
                var changers = new List<string>();
                await using (var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false))
                {
                    while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                    {
                        var user = reader.IsDBNull(1) ? null : reader.GetString(1);
                        if (user == name)
                        {
                            PasswordChanged = true;
                            throw new OperationFailedException(PasswordChangedMessage);
                        }
                        changers.Add($"pid {reader.GetInt32(0)}" + (user is null ? "" : $" ({user})"));
                    }
                }
                if (changers.Count == 0)
                {
                    return;
                }
                if (clock.Elapsed > TimeSpan.FromMinutes(1))
                {
                    throw new OperationFailedException(
                        $"the load role could not log in: other sessions have been changing roles for over a minute ({string.Join(", ", changers)}: "
                        + "a CREATE or ALTER ROLE not committed); try again once they are done");
                }
                await Task.Delay(20, cancellationToken).ConfigureAwait(false);
            }
        }

        private async Task CloseLoginWindowAsync(CancellationToken cancellationToken)
        {
            try
            {
                await SetValidUntilAsync("-infinity", cancellationToken).ConfigureAwait(false);
                await _guard!.CommitAsync(cancellationToken).ConfigureAwait(false);
                await _guard.DisposeAsync().ConfigureAwait(false);
                _guard = null;
            }
            catch
            {
                await ShutAfterFailureAsync().ConfigureAwait(false);
                throw;
            }
            finally
            {
                _windows.Release();
            }
        }

        /// <summary>
        /// After a window failed (the password changed, pg_authid could not be held): the role logs
        /// in no more and every session of it ends, someone else's too. The load fails.
        /// </summary>
        private async Task ShutAfterFailureAsync()
        {
            try
            {
                if (_guard is { } guard)
                {
                    _guard = null;
                    try
                    {
                        // While pg_authid is held nobody else holds the role's row: the door shuts at once.
                        await Execute(control, ShutStatement(name), CancellationToken.None)
                            .ConfigureAwait(false);
                        await guard.CommitAsync(CancellationToken.None).ConfigureAwait(false);
                    }
                    catch (Exception e) when (e is OperationFailedException or NpgsqlException or InvalidOperationException)
                    {
                        // Not held (the lock itself failed): EndLoginsAsync below shuts it.
                    }
                    await guard.DisposeAsync().ConfigureAwait(false);
                }
                await EndLoginsAsync(control, name, CancellationToken.None).ConfigureAwait(false);
            }
            catch (Exception e) when (e is OperationFailedException or NpgsqlException or InvalidOperationException)
            {
                // The load fails with the window's error; the role is dropped after it (DropLoadRoleAsync).
            }
        }

        /// <summary>Waits for psql's session (named <paramref name="applicationName"/>) to be logged in.</summary>
        public async Task WaitForSessionAsync(string applicationName, Stream psqlInput, CancellationToken cancellationToken)
        {
            await using var command = new NpgsqlCommand(
                "SELECT count(*) FROM pg_catalog.pg_stat_activity WHERE usename = @role AND application_name = @application", control);
            command.Parameters.AddWithValue("role", name);
            command.Parameters.AddWithValue("application", applicationName);
            for (var clock = System.Diagnostics.Stopwatch.StartNew(); ;)
            {
                // A blank line, which psql skips: writing it fails at once when psql has quit (it
                // could not log in), and psql's own error then says why.
                await psqlInput.WriteAsync("\n"u8.ToArray(), cancellationToken).ConfigureAwait(false);
                await psqlInput.FlushAsync(cancellationToken).ConfigureAwait(false);
                // The window's transaction would otherwise see the activity of its first look only.
                await Execute(control, "SELECT pg_catalog.pg_stat_clear_snapshot()", cancellationToken).ConfigureAwait(false);
                if (await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) is > 0L)
                {
                    return;
                }
                if (clock.Elapsed > TimeSpan.FromSeconds(LoginWindowSeconds))
                {
                    throw new OperationFailedException($"psql did not log in to {database} as the load role within {LoginWindowSeconds} s (its login window)");
                }
                await Task.Delay(5, cancellationToken).ConfigureAwait(false);
            }
        }

        /// <summary>The role's password is still the one this run gave it (the server keeps the verifier as given).</summary>
        public async Task RequireOwnPasswordAsync(CancellationToken cancellationToken)
        {
            if (await Scalar(control, "SELECT rolpassword FROM pg_catalog.pg_authid WHERE rolname = @db", cancellationToken, name)
                    .ConfigureAwait(false) as string != verifier)
            {
                PasswordChanged = true;
                throw new OperationFailedException(PasswordChangedMessage);
            }
        }

        public bool PasswordChanged { get; private set; }

        public const string PasswordChangedMessage =
            "the backup's code changed the password of the role that loads it (a role may change its own), "
            + "so that someone else could log in as it; refused";

        private Task SetValidUntilAsync(string until, CancellationToken cancellationToken) =>
            Execute(control, $"ALTER ROLE {QuoteIdentifier(name)} VALID UNTIL '{until}'", cancellationToken);

        public async ValueTask DisposeAsync()
        {
            await control.DisposeAsync().ConfigureAwait(false);
            await door.DisposeAsync().ConfigureAwait(false);
            _windows.Dispose();
        }

        /// <summary>An open login window: closed once the session has logged in, or when disposed.</summary>
        public sealed class LoginWindow(LoadRole role) : IAsyncDisposable
        {
            private bool _open = true;

            public Task CloseAsync(CancellationToken cancellationToken)
            {
                if (!_open)
                {
                    return Task.CompletedTask;
                }
                _open = false;
                return role.CloseLoginWindowAsync(cancellationToken);
            }

            public async ValueTask DisposeAsync() => await CloseAsync(CancellationToken.None).ConfigureAwait(false);
        }
    }

    /// <summary>The role a session on <paramref name="database"/> connects as during a load, or null for the instance's account.</summary>
    private LoadRole? LoadRoleFor(string database) => _loadRole is { } role && role.Database == database ? role : null;

    /// <summary>Runs <paramref name="load"/> into <paramref name="database"/> as a load role, unless the backup is trusted or the account is no superuser.</summary>
    private async Task<LoadResult> LoadAsync(string database, RestoreOptions options, Func<Task<LoadResult>> load, CancellationToken cancellationToken)
    {
        var role = options.TrustBackup ? null : await CreateLoadRoleAsync(database, cancellationToken).ConfigureAwait(false);
        if (role is null)
        {
            return await load().ConfigureAwait(false);
        }
        _loadRole = role;
        // A run stopped (its timeout, Ctrl+C) while the server runs the backup's code (a CHECK that
        // sleeps) does not wait for that code: the role's sessions end.
        using var stop = cancellationToken.Register(() => _ = EndSessionsAsync(role.Name));
        try
        {
            LoadResult result;
            try
            {
                result = await load().ConfigureAwait(false);
            }
            catch (OperationFailedException e) when (cancellationToken.IsCancellationRequested)
            {
                // The sessions ended by the stop: the stop is what happened.
                throw new OperationCanceledException(e.Message, e, cancellationToken);
            }
            catch (OperationFailedException e) when (role.PasswordChanged)
            {
                // Its sessions were ended at once: what the load's other sessions report is that, not the cause.
                throw new OperationFailedException(LoadRole.PasswordChangedMessage, e);
            }
            catch (OperationFailedException e) when (IsPermissionFailure(e))
            {
                throw new OperationFailedException(
                    $"{e.Message} (the load runs as an unprivileged role, so that the backup's own code cannot act as {Instance.User}; "
                    + $"give --trust-backup to load it as {Instance.User})", e);
            }
            _loadRole = null;
            await HandOverAsync(role, cancellationToken).ConfigureAwait(false);
            return result;
        }
        finally
        {
            _loadRole = null;
            await DropLoadRoleAsync(role).ConfigureAwait(false);
            await role.DisposeAsync().ConfigureAwait(false);
        }
    }

    /// <summary>
    /// The role, created with a random password, owning <paramref name="database"/> (whose owner is
    /// remembered); null when the instance's account is no superuser (it loads as itself).
    /// </summary>
    private async Task<LoadRole?> CreateLoadRoleAsync(string database, CancellationToken cancellationToken)
    {
        var connection = await OpenAsync(Instance.MaintenanceDatabase, cancellationToken).ConfigureAwait(false);
        NpgsqlConnection? door = null;
        try
        {
            if (await Scalar(connection, "SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user", cancellationToken)
                    .ConfigureAwait(false) is not true)
            {
                await connection.DisposeAsync().ConfigureAwait(false);
                return null;
            }
            var owner = (string)(await Scalar(connection,
                "SELECT pg_catalog.pg_get_userbyid(datdba) FROM pg_catalog.pg_database WHERE datname = @db", cancellationToken, database)
                .ConfigureAwait(false))!;
            // A second connection, to open the role's login windows (LoadRole.OpenLoginWindowAsync).
            door = await OpenAsync(Instance.MaintenanceDatabase, cancellationToken).ConfigureAwait(false);
            var password = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(24));
            var verifier = ScramVerifier(password);
            var name = database;
            await DropRoleIfExistsAsync(connection, name, cancellationToken).ConfigureAwait(false);
            // VALID UNTIL in the past: it logs in only through a login window (LoadRole.OpenLoginWindowAsync).
            await Execute(connection, $"CREATE ROLE {QuoteIdentifier(name)} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS "
                + $"PASSWORD '{verifier}' VALID UNTIL '-infinity'", cancellationToken).ConfigureAwait(false);
            try
            {
                await Execute(connection, $"ALTER DATABASE {QuoteIdentifier(database)} OWNER TO {QuoteIdentifier(name)}", cancellationToken).ConfigureAwait(false);
            }
            catch
            {
                await DropRoleIfExistsAsync(connection, name, CancellationToken.None).ConfigureAwait(false);
                throw;
            }
            // The connections stay, to open and close the role's login windows.
            return new LoadRole(database, name, password, verifier, owner, connection, door);
        }
        catch
        {
            await connection.DisposeAsync().ConfigureAwait(false);
            if (door is not null)
            {
                await door.DisposeAsync().ConfigureAwait(false);
            }
            throw;
        }
    }

    /// <summary>
    /// The SCRAM-SHA-256 verifier of <paramref name="password"/>, as the server stores it: CREATE ROLE
    /// takes it instead of the password, so that the password never reaches the server's log
    /// (log_statement = ddl). Base64 and hex only: safe inside a literal.
    /// </summary>
    private static string ScramVerifier(string password)
    {
        const int iterations = 4096;
        var salt = RandomNumberGenerator.GetBytes(16);
        var salted = Rfc2898DeriveBytes.Pbkdf2(Encoding.UTF8.GetBytes(password), salt, iterations, HashAlgorithmName.SHA256, 32);
        var storedKey = SHA256.HashData(HMACSHA256.HashData(salted, "Client Key"u8));
        var serverKey = HMACSHA256.HashData(salted, "Server Key"u8);
        return $"SCRAM-SHA-256${iterations}:{Convert.ToBase64String(salt)}${Convert.ToBase64String(storedKey)}:{Convert.ToBase64String(serverKey)}";
    }

    /// <summary>
    /// After a complete load: the database goes back to its owner, the held-back statements run as
    /// the instance's account (checked: the roles they act as, initdb's objects, the settings they
    /// give), and what the role still owns goes to the instance's account (as a dump without owners
    /// belongs to the account that restores it).
    /// </summary>
    private async Task HandOverAsync(LoadRole role, CancellationToken cancellationToken)
    {
        await using var connection = await OpenAsync(role.Database, cancellationToken).ConfigureAwait(false);
        await EndLoginsAsync(connection, role.Name, cancellationToken).ConfigureAwait(false);
        // Nobody could log in with a password the load's code gave the role, but such a backup is not restored.
        await role.RequireOwnPasswordAsync(cancellationToken).ConfigureAwait(false);
        // Back to its owner first: the dump's own ALTER DATABASE ... OWNER TO (owners: true) comes after.
        await GiveBackDatabaseAsync(connection, role, cancellationToken).ConfigureAwait(false);
        if (role.HeldBack.Count > 0)
        {
            await RequireOrdinaryRolesAsync(connection, role.HeldBack, cancellationToken).ConfigureAwait(false);
            var before = await BuiltInObjectsAsync(connection, cancellationToken).ConfigureAwait(false);
            await RunHeldBackAsync(role.Database, role.HeldBack, cancellationToken).ConfigureAwait(false);
            if (await BuiltInObjectsAsync(connection, cancellationToken).ConfigureAwait(false) != before)
            {
                throw new OperationFailedException(
                    "the backup changes a built-in object (of pg_catalog, such as a function or pg_authid: its owner, privileges "
                    + "or definition), which only a superuser's load does; give --trust-backup to restore it as it is");
            }
        }
        await RefuseRowSecurityViewsAsync(connection, role.Name, cancellationToken).ConfigureAwait(false);
        await RefuseSuperuserSettingsAsync(connection, role.Database, cancellationToken).ConfigureAwait(false);
        await HandOverRelationsAsync(connection, role.Name, cancellationToken).ConfigureAwait(false);
        await Execute(connection, $"REASSIGN OWNED BY {QuoteIdentifier(role.Name)} TO CURRENT_USER", cancellationToken).ConfigureAwait(false);
        await Execute(connection, $"DROP OWNED BY {QuoteIdentifier(role.Name)}", cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// The role's tables, views and foreign tables (with their indexes, TOAST tables and the sequences
    /// of their columns) go to the instance's account a few hundred per transaction. REASSIGN OWNED
    /// locks every object in one: with thousands of tables that ran out of the server's lock table
    /// ("out of shared memory"), where the load, a statement at a time, did not.
    /// </summary>
    private static async Task HandOverRelationsAsync(NpgsqlConnection connection, string role, CancellationToken cancellationToken)
    {
        await using var list = new NpgsqlCommand(
            "SELECT format('ALTER %s %I.%I OWNER TO CURRENT_USER', CASE c.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW' "
            + "WHEN 'f' THEN 'FOREIGN TABLE' ELSE 'TABLE' END, n.nspname, c.relname) "
            + "FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
            + "WHERE c.relowner = (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = @role) AND c.relkind IN ('r', 'p', 'v', 'm', 'f')", connection);
        list.Parameters.AddWithValue("role", role);
        var statements = await StringsAsync(list, cancellationToken).ConfigureAwait(false);
        foreach (var batch in statements.Chunk(200))
        {
            await Execute(connection, string.Join(";\n", batch), cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// A populated materialized view the held-back OWNER TO gave to another role, whose query reads
    /// (itself or through views) a table whose row-level security limits the role the read is checked
    /// as (the view's owner; through a view, that view's owner): the load refreshed it as the load role,
    /// which owned every table then, so it holds rows its owner may not see. Refreshing it as its owner
    /// would run the backup's query as an existing role; PostgreSQL refuses that refresh anyway under a
    /// dump's row_security = off (pg_dump's own file fails on it). So refused.
    /// </summary>
    private static async Task RefuseRowSecurityViewsAsync(NpgsqlConnection connection, string loadRole, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand("""
            WITH RECURSIVE reads AS (
              SELECT DISTINCT w.ev_class AS reader, d.refobjid AS read
              FROM pg_catalog.pg_rewrite w JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_rewrite'::pg_catalog.regclass
                AND d.objid = w.oid AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.refobjid <> w.ev_class
              WHERE w.ev_type = '1'), -- the queries of views and materialized views (a table's rules may go round in a circle)
            path AS (
              SELECT c.oid AS view, c.oid AS rel, true AS onward, ARRAY[c.relowner] AS readers, ARRAY[c.oid] AS seen
              FROM pg_catalog.pg_class c JOIN pg_catalog.pg_roles o ON o.oid = c.relowner
              WHERE c.relkind = 'm' AND c.relispopulated AND o.rolname <> @role
              UNION ALL
              -- onward through views only: another materialized view's rows are stored, not read at refresh.
              -- A view reads as its owner; one that may be security_invoker also as the role reading it.
              SELECT p.view, t.oid, t.relkind = 'v',
                CASE WHEN t.relkind <> 'v' THEN p.readers
                  WHEN pg_catalog.array_to_string(t.reloptions, ',') LIKE '%security_invoker%' THEN p.readers || t.relowner
                  ELSE ARRAY[t.relowner] END,
                p.seen || t.oid
              FROM path p JOIN reads r ON r.reader = p.rel JOIN pg_catalog.pg_class t ON t.oid = r.read
              WHERE p.onward AND t.oid <> ALL (p.seen))
            SELECT pg_catalog.format('%s reads %s', p.view::pg_catalog.regclass, t.oid::pg_catalog.regclass)
            FROM path p JOIN pg_catalog.pg_class t ON t.oid = p.rel
            WHERE t.relrowsecurity AND EXISTS (
              SELECT FROM pg_catalog.unnest(p.readers) u(reader) JOIN pg_catalog.pg_roles o ON o.oid = u.reader
              WHERE NOT o.rolsuper AND NOT o.rolbypassrls
                AND (t.relforcerowsecurity OR NOT pg_catalog.pg_has_role(o.oid, t.relowner, 'USAGE')))
            ORDER BY 1 LIMIT 1
            """, connection);
        command.Parameters.AddWithValue("role", loadRole);
        if (await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) is string found)
        {
            throw new OperationFailedException(
                $"materialized view {found}, whose row-level security limits the view's owner: its rows depend on who refreshes it; "
                + "the load role would keep rows the owner may not see, and PostgreSQL refuses to refresh it as its owner under a dump's "
                + "row_security = off (pg_dump's own file and --trust-backup fail on it too)");
        }
    }

    /// <summary>
    /// The roles the held-back statements act as (a grant's SET SESSION AUTHORIZATION) or set for
    /// (ALTER ROLE ... IN DATABASE, ALTER DEFAULT PRIVILEGES FOR ROLE) must exist and be no superuser:
    /// as a superuser, a grant could give anyone pg_read_file or pg_authid, a role setting could change
    /// the superuser's later sessions, default privileges open the tables it creates later.
    /// </summary>
    private static async Task RequireOrdinaryRolesAsync(NpgsqlConnection connection, List<HeldBackStatement> statements, CancellationToken cancellationToken)
    {
        var named = statements.Select(s => s.ActsAs ?? s.SessionAuthorization?.ActsAs).OfType<string>().Distinct(StringComparer.Ordinal).ToArray();
        if (named.Length == 0)
        {
            return;
        }
        var ordinary = await ExistingRolesAsync(connection, named, ordinaryOnly: true, cancellationToken).ConfigureAwait(false);
        if (named.FirstOrDefault(r => !ordinary.Contains(r)) is { } refused)
        {
            throw new OperationFailedException(
                $"the backup acts as or sets for the role '{Catalog.DatabaseSettings.Shown(refused)}' (SET SESSION AUTHORIZATION, "
                + "ALTER ROLE ... IN DATABASE, ALTER DEFAULT PRIVILEGES FOR ROLE), "
                + "which is a superuser or not found; give --trust-backup to restore it as it is");
        }
    }

    /// <summary>
    /// The objects initdb made (oids below 16384, FirstNormalObjectId), as one digest: whole rows
    /// (a function's SECURITY DEFINER and settings too), but of relations their owner, privileges and
    /// options, not the statistics the server keeps changing. A held-back statement may only touch
    /// what the load created.
    /// </summary>
    private static async Task<string> BuiltInObjectsAsync(NpgsqlConnection connection, CancellationToken cancellationToken) =>
        (string)(await Scalar(connection, """
            SELECT pg_catalog.md5(pg_catalog.string_agg(x, ',' ORDER BY x)) FROM (
              SELECT 'c' || oid || ':' || relowner || ':' || coalesce(relacl::text, '') || ':' || coalesce(reloptions::text, '')
                || ':' || relrowsecurity || relforcerowsecurity AS x FROM pg_catalog.pg_class WHERE oid < 16384
              UNION ALL SELECT 'a' || attrelid || '.' || attnum || ':' || coalesce(attacl::text, '') || ':' || coalesce(attoptions::text, '')
                FROM pg_catalog.pg_attribute WHERE attrelid < 16384 AND (attacl IS NOT NULL OR attoptions IS NOT NULL)
              UNION ALL SELECT 'p' || p::text FROM pg_catalog.pg_proc p WHERE oid < 16384
              UNION ALL SELECT 'n' || n::text FROM pg_catalog.pg_namespace n WHERE oid < 16384 AND nspname <> 'public' -- the database's own
              UNION ALL SELECT 't' || t::text FROM pg_catalog.pg_type t WHERE oid < 16384
              UNION ALL SELECT 'l' || l::text FROM pg_catalog.pg_language l WHERE oid < 16384
              UNION ALL SELECT 'o' || o::text FROM pg_catalog.pg_operator o WHERE oid < 16384
              UNION ALL SELECT 'oc' || c::text FROM pg_catalog.pg_opclass c WHERE oid < 16384
              UNION ALL SELECT 'of' || f::text FROM pg_catalog.pg_opfamily f WHERE oid < 16384
              UNION ALL SELECT 'co' || c::text FROM pg_catalog.pg_collation c WHERE oid < 16384
              UNION ALL SELECT 'cv' || c::text FROM pg_catalog.pg_conversion c WHERE oid < 16384
              UNION ALL SELECT 'tc' || c::text FROM pg_catalog.pg_ts_config c WHERE oid < 16384
              UNION ALL SELECT 'td' || d::text FROM pg_catalog.pg_ts_dict d WHERE oid < 16384
              UNION ALL SELECT 'e' || e::text FROM pg_catalog.pg_extension e WHERE oid < 16384
            ) s
            """, cancellationToken).ConfigureAwait(false))!;

    /// <summary>
    /// The target's settings (its own and its roles' in it: from the manifest, or held back from
    /// the dump) may hold only what its owner could set, and the logging ones: a superuser-only
    /// setting (session_replication_role, which skips triggers and foreign keys for every session;
    /// session_preload_libraries, which loads a library into each) is the superuser's to give. So is
    /// one of a library this session has not loaded (pg_stat_statements.track, unknown here): one
    /// whose prefix names a library of the server's is refused; only an application's own
    /// (myapp.tenant) is not.
    /// </summary>
    private static async Task RefuseSuperuserSettingsAsync(NpgsqlConnection connection, string database, CancellationToken cancellationToken)
    {
        if (await Scalar(connection, """
                WITH given AS (
                  SELECT pg_catalog.lower(pg_catalog.split_part(c, '=', 1)) AS name
                  FROM pg_catalog.pg_db_role_setting s, pg_catalog.unnest(s.setconfig) c
                  WHERE s.setdatabase = (SELECT oid FROM pg_catalog.pg_database WHERE datname = @db))
                SELECT pg_catalog.string_agg(DISTINCT g.name, ', ' ORDER BY g.name)
                FROM given g LEFT JOIN pg_catalog.pg_settings p ON pg_catalog.lower(p.name) = g.name
                WHERE (p.context = 'superuser' AND g.name NOT LIKE 'log%')
                   OR (p.name IS NULL AND (g.name !~ '^[a-z_][a-z0-9_]*\.'
                       OR (pg_catalog.pg_stat_file((SELECT setting FROM pg_catalog.pg_config WHERE name = 'PKGLIBDIR')
                          || '/' || pg_catalog.split_part(g.name, '.', 1) || '.so', true)).size IS NOT NULL))
                """, cancellationToken, database).ConfigureAwait(false) is string names)
        {
            throw new OperationFailedException(
                $"the backup gives the database settings only a superuser may set ({names}); give --trust-backup to restore it as it is");
        }
    }

    /// <summary>
    /// The held-back statements as the instance's account, each under the settings the dump had set
    /// before it, so that psql reads it as the filter did; through the filter again (a script of ours,
    /// read as any dump: were it read otherwise, what it hid would be refused there).
    /// </summary>
    private async Task RunHeldBackAsync(string database, List<HeldBackStatement> statements, CancellationToken cancellationToken)
    {
        using var script = new MemoryStream();
        string? encoding = null;
        var standardStrings = true;
        HeldBackStatement? searchPath = null;
        foreach (var statement in statements)
        {
            // Null until the dump sets it, then never null again: a fresh session's search_path is the dump's until then.
            if (statement.SearchPath is { } path && !ReferenceEquals(path, searchPath))
            {
                searchPath = path;
                Replay(path);
            }
            if (statement.SessionAuthorization is { } authorization)
            {
                // A grant by a grantee, as pg_dump writes it: as that role, then back.
                Replay(authorization);
                Replay(statement);
                Write("RESET SESSION AUTHORIZATION;\n");
            }
            else
            {
                Replay(statement);
            }
        }
        script.Position = 0;
        await RestoreAsync(database, script, new RestoreOptions(), null, cancellationToken).ConfigureAwait(false);

        void Write(string text) => script.Write(Encoding.ASCII.GetBytes(text));

        void Replay(HeldBackStatement statement)
        {
            if (statement.ClientEncoding != encoding)
            {
                encoding = statement.ClientEncoding;
                Write($"SET client_encoding = '{encoding ?? "SQL_ASCII"}';\n");
            }
            if (statement.StandardConformingStrings != standardStrings)
            {
                standardStrings = statement.StandardConformingStrings;
                Write($"SET standard_conforming_strings = {(standardStrings ? "on" : "off")};\n");
            }
            script.Write(statement.Sql);
            Write("\n");
        }
    }

    private static Task GiveBackDatabaseAsync(NpgsqlConnection connection, LoadRole role, CancellationToken cancellationToken) =>
        Execute(connection, $"ALTER DATABASE {QuoteIdentifier(role.Database)} OWNER TO {QuoteIdentifier(role.DatabaseOwner)}", cancellationToken);

    /// <summary>Drops the role; a role left behind (the tool killed) cannot log in, and the next restore into the target drops it.</summary>
    private async Task DropLoadRoleAsync(LoadRole role)
    {
        try
        {
            await using var connection = await OpenAsync(Instance.MaintenanceDatabase, CancellationToken.None).ConfigureAwait(false);
            await EndLoginsAsync(connection, role.Name, CancellationToken.None).ConfigureAwait(false);
            if (await Scalar(connection, "SELECT pg_catalog.pg_get_userbyid(datdba) FROM pg_catalog.pg_database WHERE datname = @db",
                    CancellationToken.None, role.Database).ConfigureAwait(false) is string owner && owner == role.Name)
            {
                // A failed load: the database (dropped next) goes back to its owner so that the role owns nothing outside it.
                await GiveBackDatabaseAsync(connection, role, CancellationToken.None).ConfigureAwait(false);
            }
            await DropRoleIfExistsAsync(connection, role.Name, CancellationToken.None).ConfigureAwait(false);
        }
        catch (OperationFailedException)
        {
            // The database is dropped with its objects next; the next restore into the target drops the role.
        }
    }

    /// <summary>
    /// Drops a load role of ours: first no more logins and no sessions (the load's code may have
    /// given it a password someone knows: a role may change its own), then what it owns or was
    /// granted in every database it reached (its staging database, and any other that lets PUBLIC
    /// connect and create), then the role.
    /// </summary>
    private async Task DropRoleIfExistsAsync(NpgsqlConnection connection, string name, CancellationToken cancellationToken)
    {
        if (await Scalar(connection, "SELECT count(*) FROM pg_catalog.pg_roles WHERE rolname = @db", cancellationToken, name)
                .ConfigureAwait(false) is 0L)
        {
            return;
        }
        await EndLoginsAsync(connection, name, cancellationToken).ConfigureAwait(false);
        List<string> reached;
        await using (var command = new NpgsqlCommand(
            "SELECT DISTINCT d.datname FROM pg_catalog.pg_shdepend s JOIN pg_catalog.pg_database d ON d.oid = s.dbid "
            + "WHERE s.refclassid = 'pg_catalog.pg_authid'::pg_catalog.regclass AND s.refobjid = (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = @db)",
            connection))
        {
            command.Parameters.AddWithValue("db", name);
            reached = await StringsAsync(command, cancellationToken).ConfigureAwait(false);
        }
        foreach (var database in reached)
        {
            await using var inDatabase = await OpenAsync(database, cancellationToken).ConfigureAwait(false);
            await Execute(inDatabase, $"DROP OWNED BY {QuoteIdentifier(name)}", cancellationToken).ConfigureAwait(false);
        }
        await Execute(connection, $"DROP ROLE {QuoteIdentifier(name)}", cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// The role's sessions end and it may log in no more (NOLOGIN, VALID UNTIL in the past).
    /// Sessions first: one may hold the role's row (an ALTER ROLE not committed), which the ALTER
    /// would wait for; it waits briefly, and a session that logged in again meanwhile is ended on
    /// the next round, until the ALTER goes through.
    /// </summary>
    private static async Task EndLoginsAsync(NpgsqlConnection connection, string name, CancellationToken cancellationToken)
    {
        for (var attempt = 1; ; attempt++)
        {
            await TerminateSessionsAsync(connection, name, cancellationToken).ConfigureAwait(false);
            try
            {
                await using var transaction = await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
                await Execute(connection, "SET LOCAL lock_timeout = '100ms'; " + ShutStatement(name),
                    cancellationToken).ConfigureAwait(false);
                await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
                break;
            }
            catch (OperationFailedException e) when (attempt < 50 && e.InnerException is PostgresException { SqlState: "55P03" })
            {
                // A session that logged in again holds the row: ended on the next round.
            }
        }
        await TerminateSessionsAsync(connection, name, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Ends the role's sessions from a connection of its own (another may be busy).</summary>
    private async Task EndSessionsAsync(string name)
    {
        try
        {
            await using var connection = await OpenAsync(Instance.MaintenanceDatabase, CancellationToken.None).ConfigureAwait(false);
            await TerminateSessionsAsync(connection, name, CancellationToken.None).ConfigureAwait(false);
        }
        catch (Exception e) when (e is OperationFailedException or NpgsqlException)
        {
            // The run is stopping anyway; the role is dropped after it.
        }
    }

    /// <summary>The role may log in no more, whatever its password.</summary>
    private static string ShutStatement(string name) => $"ALTER ROLE {QuoteIdentifier(name)} NOLOGIN VALID UNTIL '-infinity'";

    private static Task TerminateSessionsAsync(NpgsqlConnection connection, string name, CancellationToken cancellationToken) =>
        Scalar(connection, "SELECT count(pg_catalog.pg_terminate_backend(pid)) FROM pg_catalog.pg_stat_activity WHERE usename = @db",
            cancellationToken, name);

    /// <summary>
    /// A failure the load role explains: its missing rights (the server's insufficient_privilege, or
    /// psql's message of it), or a server that does not let it log in (pg_hba.conf; or the backup's
    /// code changed its password).
    /// </summary>
    private static bool IsPermissionFailure(Exception e)
    {
        for (var inner = e; inner is not null; inner = inner.InnerException)
        {
            if (inner is PostgresException { SqlState: "42501" })
            {
                return true;
            }
        }
        // psql prints no SQLSTATE: its messages of insufficient_privilege (42501) are matched by their text.
        return e.Message.Contains("permission denied", StringComparison.Ordinal)
            || e.Message.Contains("must be superuser", StringComparison.Ordinal)
            || e.Message.Contains("only superuser", StringComparison.Ordinal) // can define a leakproof function, ...
            || e.Message.Contains("would be affected by row-level security policy", StringComparison.Ordinal) // a superuser's load bypasses it
            || e.Message.Contains("must be owner", StringComparison.Ordinal)
            || e.Message.Contains("must be able to SET ROLE", StringComparison.Ordinal)
            || e.Message.Contains("must be member of role", StringComparison.Ordinal)
            || e.Message.Contains("pg_hba.conf", StringComparison.Ordinal)
            || e.Message.Contains("password authentication failed", StringComparison.Ordinal);
    }
}
