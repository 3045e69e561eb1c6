namespace VyaBackupDb.Tests.Integration;

/// <summary>
/// What a backed-up database holds never runs with the rights of the account that backs it up or
/// restores it: the tool's own queries on the source and on the staging database call only the
/// catalog's functions and operators, whatever the database defines in public.
/// </summary>
[Trait("Category", "Integration")]
public sealed class PostgresCatalogSafetyTests : IAsyncLifetime
{
    private readonly Scratch _scratch = new();
    private readonly List<string> _roles = [];

    public Task InitializeAsync() => _scratch.InitializeAsync();

    public async Task DisposeAsync()
    {
        await _scratch.DisposeAsync();
        foreach (var role in _roles)
        {
            await PgTestDb.ExecAsync("postgres", $"DROP ROLE IF EXISTS {role}");
        }
    }

    private async Task<bool> RoleExistsAsync(string role) =>
        Convert.ToInt64(await PgTestDb.ScalarAsync("postgres", "SELECT count(*) FROM pg_roles WHERE rolname = $1", role)) > 0;

    /// <summary>
    /// README: a backup file touches only its target. A database owned by an ordinary role defines
    /// public.quote_ident(name) and an = operator on (oid, regclass), both better matches than the
    /// catalog's for the tool's queries, and both creating a superuser role when called by a
    /// superuser. A genuine backup of it and its restore (as the superuser the instance names) call
    /// neither: no role appears, and the copy equals the source.
    /// </summary>
    [SkippableTheory]
    [MemberData(nameof(PgEngines.All), MemberType = typeof(PgEngines))]
    public async Task Functions_and_operators_the_database_defines_never_run_in_the_tools_own_queries(string engine)
    {
        await TestServers.RequirePostgresAsync();
        var instance = PgEngines.Instance(engine);
        var owner = "vt_owner_" + Guid.NewGuid().ToString("N")[..8];
        var marker = "vt_escalated_" + Guid.NewGuid().ToString("N")[..8];
        _roles.Add(marker);
        _roles.Add(owner);
        await PgTestDb.ExecAsync("postgres", $"CREATE ROLE {owner} LOGIN");
        var source = await _scratch.NewPostgresDatabaseAsync();
        await PgTestDb.ExecAsync("postgres", $"ALTER DATABASE {source} OWNER TO {owner}");
        var escalate = $"IF pg_catalog.current_setting('is_superuser') = 'on' AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = '{marker}') "
            + $"THEN EXECUTE 'CREATE ROLE {marker} SUPERUSER'; END IF;";
        await PgTestDb.ExecAsync(source,
            $"SET ROLE {owner}",
            "CREATE TABLE t (id int PRIMARY KEY, v text)",
            "INSERT INTO t SELECT g, 'row ' || g FROM generate_series(1, 50) g",
            $"CREATE FUNCTION public.quote_ident(n name) RETURNS text LANGUAGE plpgsql AS $$ BEGIN {escalate} RETURN pg_catalog.quote_ident(n::text); END $$",
            $"CREATE FUNCTION public.oid_is(a oid, b regclass) RETURNS boolean LANGUAGE plpgsql AS $$ BEGIN {escalate} RETURN a OPERATOR(pg_catalog.=) b::oid; END $$",
            "CREATE OPERATOR public.= (LEFTARG = oid, RIGHTARG = regclass, FUNCTION = public.oid_is)");
        var before = await PgTestDb.FingerprintAsync(source);

        var file = await Ops.BackupOkAsync(instance, source, Pipeline.Compression.Zstd, _scratch.TempDir("backups"));
        Assert.False(await RoleExistsAsync(marker), $"the backup ({engine}) ran a function of the database as superuser");
        var target = _scratch.PostgresName();
        var result = await Ops.RestoreAsync(instance, file, target);

        Assert.False(await RoleExistsAsync(marker), $"the restore ({engine}) ran a function of the database as superuser");
        Assert.True(result?.Comparison?.Matches, string.Join("; ", result?.Comparison?.Mismatches ?? []));
        DbFingerprint.AssertSame(before, await PgTestDb.FingerprintAsync(target), $"restored copy ({engine})");
    }

    /// <summary>
    /// README: a backup file touches only its target. The parallel restore analyzes the tables it
    /// loaded; ANALYZE of an inheritance parent or a partitioned table samples its foreign children
    /// too, which would put another database's rows (here through postgres_fdw) into the restored
    /// pg_stats. Such tables are left unanalyzed with a warning naming them; the rest are analyzed.
    /// </summary>
    [SkippableTheory]
    [InlineData(PgEngines.Parallel1)]
    [InlineData(PgEngines.Parallel4)]
    public async Task Tables_with_a_foreign_child_or_partition_are_not_analyzed_by_the_restore(string engine)
    {
        await TestServers.RequirePostgresAsync();
        var instance = PgEngines.Instance(engine);
        var other = await _scratch.NewPostgresDatabaseAsync();
        await PgTestDb.ExecAsync(other, "CREATE TABLE victim (v text)", "INSERT INTO victim SELECT 'secret-' || g FROM generate_series(1, 50) g");
        var source = await _scratch.NewPostgresDatabaseAsync();
        await PgTestDb.ExecAsync(source,
            "CREATE EXTENSION postgres_fdw",
            $"CREATE SERVER elsewhere FOREIGN DATA WRAPPER postgres_fdw OPTIONS (dbname '{other}', host '{TestServers.PgHost}', port '{TestServers.PgPort}')",
            $"CREATE USER MAPPING FOR PUBLIC SERVER elsewhere OPTIONS (\"user\" '{TestServers.PgUser}', password '{TestServers.PgPassword}')",
            "CREATE TABLE inherited (v text)",
            "INSERT INTO inherited SELECT 'own-' || g FROM generate_series(1, 50) g",
            "CREATE FOREIGN TABLE inherited_remote () INHERITS (inherited) SERVER elsewhere OPTIONS (table_name 'victim')",
            "CREATE TABLE parted (v text) PARTITION BY LIST (v)",
            "CREATE TABLE parted_local PARTITION OF parted FOR VALUES IN ('own')",
            "INSERT INTO parted SELECT 'own' FROM generate_series(1, 50)",
            "CREATE FOREIGN TABLE parted_remote PARTITION OF parted DEFAULT SERVER elsewhere OPTIONS (table_name 'victim')",
            "CREATE TABLE plain (v text)",
            "INSERT INTO plain SELECT 'plain-' || g FROM generate_series(1, 50) g");
        // The chain works: what ANALYZE of the parents would sample is there to be read.
        Assert.Equal(100L, await PgTestDb.ScalarAsync(source, "SELECT count(*) FROM inherited"));

        var file = await Ops.BackupOkAsync(instance, source, Pipeline.Compression.Zstd, _scratch.TempDir("backups"));
        var target = _scratch.PostgresName();
        var observer = new TestRestoreObserver();
        // Trusted: postgres_fdw needs a superuser's load.
        var result = await Ops.RestoreAsync(instance, file, target, observer: observer, trustBackup: true);

        Assert.True(result?.Comparison?.Matches, string.Join("; ", result?.Comparison?.Mismatches ?? []));
        Assert.Equal(0L, await PgTestDb.ScalarAsync(target,
            "SELECT count(*) FROM pg_stats WHERE coalesce(most_common_vals::text, '') || coalesce(histogram_bounds::text, '') LIKE '%secret%'"));
        Assert.Equal(1L, await PgTestDb.ScalarAsync(target, "SELECT count(*) FROM pg_stats WHERE schemaname = 'public' AND tablename = 'plain'"));
        Assert.Contains(observer.Warnings, w => w.StartsWith("public.inherited was not analyzed", StringComparison.Ordinal));
        Assert.Contains(observer.Warnings, w => w.StartsWith("public.parted was not analyzed", StringComparison.Ordinal));
    }
}
