using VyaBackupDb.Catalog;
using VyaBackupDb.Pipeline;

namespace VyaBackupDb.Tests.Integration;

/// <summary>
/// Database names that break naive tools (RELIABILITY row 14): each backs up and restores
/// exactly, its file stays inside backup_dir, and no other database or file is touched.
/// </summary>
public sealed class HostileNameTests : IAsyncLifetime
{
    private readonly Scratch _scratch = new();

    public static TheoryData<string> Names =>
    [
        "a`b",
        "x';DROP DATABASE y;--",
        "../../tmp/p",
        "-f",
        "white space",
        "ação",
    ];

    /// <summary>Every name under engine: dump (0) and engine: parallel on 1 and 4 connections.</summary>
    public static TheoryData<string, int> NamesWithJobs
    {
        get
        {
            var data = new TheoryData<string, int>();
            foreach (var jobs in new[] { 0, 1, 4 })
            {
                foreach (var name in Names)
                {
                    data.Add(name, jobs);
                }
            }
            return data;
        }
    }

    public Task InitializeAsync() => _scratch.InitializeAsync();

    public Task DisposeAsync() => _scratch.DisposeAsync();

    [SkippableTheory]
    [MemberData(nameof(NamesWithJobs))]
    public async Task MySql_hostile_name_round_trips_exactly(string hostile, int jobs)
    {
        var instance = MySqlTestDb.Instance(jobs);
        await TestServers.RequireMySqlAsync();
        // A unique suffix keeps parallel runs apart; the hostile part comes first, as it would in the wild.
        var source = _scratch.TrackMySql(hostile + "_" + _scratch.MySqlName(""));
        var bystander = await _scratch.NewMySqlDatabaseAsync();
        await MySqlTestDb.ExecAsync(bystander, "CREATE TABLE keep (id INT PRIMARY KEY)", "INSERT INTO keep VALUES (42)");
        await MySqlTestDb.CreateAsync(source);
        await MySqlTestDb.ExecAsync(source, "CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(50))", "INSERT INTO t VALUES (1, 'one'), (2, NULL)");
        var bystanderBefore = await MySqlTestDb.FingerprintAsync(bystander);
        var backupDir = _scratch.TempDir("backups");

        var file = await Ops.BackupOkAsync(instance, source, Compression.Zstd, backupDir);

        AssertInside(backupDir, file);
        Assert.Equal(source, BackupName.TryParse(Path.GetFileName(file))!.Database);
        var copy = _scratch.TrackMySql(hostile + "_copy_" + _scratch.MySqlName(""));
        await Ops.RestoreAsync(instance, file, copy);
        DbFingerprint.AssertSame(await MySqlTestDb.FingerprintAsync(source), await MySqlTestDb.FingerprintAsync(copy), $"copy of '{source}'");
        DbFingerprint.AssertSame(bystanderBefore, await MySqlTestDb.FingerprintAsync(bystander), "an unrelated database");

        // Without --target the name comes back from the file name, exactly: into the source itself, forced.
        await Ops.RestoreAsync(instance, file, target: null, force: true);
        Assert.Equal(2L, Convert.ToInt64(await MySqlTestDb.ScalarAsync(source, "SELECT COUNT(*) FROM t")));
    }

    public static TheoryData<string, string> NamesAndEngines()
    {
        var data = new TheoryData<string, string>();
        foreach (var name in Names)
        {
            foreach (var engine in PgEngines.All)
            {
                data.Add(name, engine);
            }
        }
        return data;
    }

    [SkippableTheory]
    [MemberData(nameof(NamesAndEngines))]
    public async Task Postgres_hostile_name_round_trips_exactly(string hostile, string engine)
    {
        await TestServers.RequirePostgresAsync();
        var instance = PgEngines.Instance(engine);
        var source = _scratch.TrackPostgres(hostile + "_" + _scratch.PostgresName(""));
        var bystander = await _scratch.NewPostgresDatabaseAsync();
        await PgTestDb.ExecAsync(bystander, "CREATE TABLE keep (id int PRIMARY KEY)", "INSERT INTO keep VALUES (42)");
        await PgTestDb.CreateAsync(source);
        await PgTestDb.ExecAsync(source, "CREATE TABLE t (id int PRIMARY KEY, v text)", "INSERT INTO t VALUES (1, 'one'), (2, NULL)");
        var bystanderBefore = await PgTestDb.FingerprintAsync(bystander);
        var backupDir = _scratch.TempDir("backups");

        var file = await Ops.BackupOkAsync(instance, source, Compression.Gzip, backupDir);

        AssertInside(backupDir, file);
        Assert.Equal(source, BackupName.TryParse(Path.GetFileName(file))!.Database);
        var copy = _scratch.TrackPostgres(hostile + "_copy_" + _scratch.PostgresName(""));
        await Ops.RestoreAsync(instance, file, copy);
        DbFingerprint.AssertSame(await PgTestDb.FingerprintAsync(source), await PgTestDb.FingerprintAsync(copy), $"copy of '{source}'");
        DbFingerprint.AssertSame(bystanderBefore, await PgTestDb.FingerprintAsync(bystander), "an unrelated database");

        await Ops.RestoreAsync(instance, file, target: null, force: true);
        Assert.Equal(2L, Convert.ToInt64(await PgTestDb.ScalarAsync(source, "SELECT count(*) FROM t")));
    }

    private static void AssertInside(string backupDir, string file)
    {
        var full = Path.GetFullPath(file);
        Assert.StartsWith(backupDir + Path.DirectorySeparatorChar, full, StringComparison.Ordinal);
        // Exactly one folder (the instance's) between backup_dir and the file.
        Assert.Equal(backupDir, Path.GetDirectoryName(Path.GetDirectoryName(full)));
        Assert.False(File.Exists("/tmp/p"), "a backup escaped into /tmp");
    }
}
