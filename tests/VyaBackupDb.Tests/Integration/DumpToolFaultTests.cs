using VyaBackupDb.Config;
using VyaBackupDb.Pipeline;

namespace VyaBackupDb.Tests.Integration;

/// <summary>
/// A dump tool that fails, is killed, or stops early must fail that backup and leave nothing that
/// looks like a backup (no file, no temp file), while an earlier good backup stays byte for byte.
/// </summary>
[Trait("Category", "Integration")]
public sealed class DumpToolFaultTests : IAsyncLifetime
{
    private static readonly DateTimeOffset GoodTime = new(2026, 1, 13, 15, 54, 40, TimeSpan.Zero);
    private static readonly DateTimeOffset FailedTime = GoodTime.AddHours(1);

    private readonly Scratch _scratch = new();

    public Task InitializeAsync() => _scratch.InitializeAsync();

    public Task DisposeAsync() => _scratch.DisposeAsync();

    [SkippableTheory]
    [InlineData(FakeDump.FailsMidStream, Compression.Zstd)]
    [InlineData(FakeDump.FailsMidStream, Compression.Zip)]
    [InlineData(FakeDump.FailsMidStream, Compression.None)]
    [InlineData(FakeDump.ExitsZeroWithoutTrailer, Compression.Gzip)]
    [InlineData(FakeDump.ExitsZeroWithoutTrailer, Compression.None)]
    [InlineData(FakeDump.KilledMidStream, Compression.Zstd)]
    public async Task MySql_failed_dump_leaves_no_file_and_keeps_the_earlier_backup(FakeDump mode, Compression compression)
    {
        await TestServers.RequireMySqlAsync();
        var db = await _scratch.NewMySqlDatabaseAsync();
        await MySqlTestDb.ExecAsync(db, "CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(100))", "INSERT INTO t VALUES (1, 'good')");
        var tools = FakeTools.Create(_scratch.TempDir("fake"), mode, postgres: false);
        await AssertFailureLeavesNothingAsync(TestServers.MySql(), TestServers.MySql(toolsDir: tools), db, mode, compression, "mariadb-dump", tools);
    }

    [SkippableTheory]
    [InlineData(FakeDump.FailsMidStream, Compression.Zstd)]
    [InlineData(FakeDump.FailsMidStream, Compression.Zip)]
    [InlineData(FakeDump.ExitsZeroWithoutTrailer, Compression.Gzip)]
    [InlineData(FakeDump.KilledMidStream, Compression.None)]
    public async Task Postgres_failed_dump_leaves_no_file_and_keeps_the_earlier_backup(FakeDump mode, Compression compression)
    {
        await TestServers.RequirePostgresAsync();
        var db = await _scratch.NewPostgresDatabaseAsync();
        await PgTestDb.ExecAsync(db, "CREATE TABLE t (id int PRIMARY KEY, v text)", "INSERT INTO t VALUES (1, 'good')");
        var tools = FakeTools.Create(_scratch.TempDir("fake"), mode, postgres: true);
        await AssertFailureLeavesNothingAsync(TestServers.Postgres(), TestServers.Postgres(toolsDir: tools), db, mode, compression, "pg_dump", tools);
    }

    /// <summary>One database the real dump tool cannot dump (a view on a dropped table) does not stop the others.</summary>
    [SkippableFact]
    public async Task MySql_one_failing_database_gives_partial_failure_and_the_others_are_backed_up()
    {
        await TestServers.RequireMySqlAsync();
        var prefix = _scratch.MySqlName("vt_pf") + "_";
        var good = _scratch.TrackMySql(prefix + "good");
        var broken = _scratch.TrackMySql(prefix + "broken");
        await MySqlTestDb.CreateAsync(good);
        await MySqlTestDb.CreateAsync(broken);
        await MySqlTestDb.ExecAsync(good, "CREATE TABLE t (id INT PRIMARY KEY)", "INSERT INTO t VALUES (1)");
        await MySqlTestDb.ExecAsync(broken, "CREATE TABLE t (id INT)", "CREATE VIEW v AS SELECT id FROM t", "DROP TABLE t");
        var instance = TestServers.MySql() with { Include = [prefix + "*"] };
        var backupDir = _scratch.TempDir("backups");
        var operation = new Operations.BackupOperation(
            TestServers.Config(backupDir, instance), new Storage.Local.LocalStorage(backupDir), TimeProvider.System, new TestBackupObserver());

        var report = await operation.RunAsync(new Operations.BackupRequest([instance], null, Compression.Zstd, DryRun: false), CancellationToken.None);

        Assert.Equal(Errors.ExitCode.PartialFailure, report.ExitCode);
        Assert.Equal([broken, good], report.Results.Select(r => r.Database).Order(StringComparer.Ordinal));
        var failed = Assert.Single(report.Results, r => !r.Succeeded);
        Assert.Equal(broken, failed.Database);
        Assert.Contains("exited with code 2", failed.Error, StringComparison.Ordinal);
        Assert.Contains("references invalid table", failed.Error, StringComparison.Ordinal);
        var file = Assert.Single(Ops.DataFilesUnder(backupDir));
        Assert.EndsWith($"_mysql_{good}.sql.zst", file, StringComparison.Ordinal);
    }

    [SkippableFact]
    public async Task MySql_hanging_dump_times_out_is_killed_and_leaves_no_file()
    {
        await TestServers.RequireMySqlAsync();
        var db = await _scratch.NewMySqlDatabaseAsync();
        await MySqlTestDb.ExecAsync(db, "CREATE TABLE t (id INT PRIMARY KEY)");
        var tools = FakeTools.Create(_scratch.TempDir("fake"), FakeDump.Hangs, postgres: false);
        var instance = TestServers.MySql(toolsDir: tools);
        var backupDir = _scratch.TempDir("backups");
        var config = TestServers.Config(backupDir, instance) with { Timeout = TimeSpan.FromSeconds(2) };
        var operation = new Operations.BackupOperation(config, new Storage.Local.LocalStorage(backupDir), TimeProvider.System, new TestBackupObserver());

        var report = await operation.RunAsync(new Operations.BackupRequest([instance], db, Compression.Zstd, DryRun: false), CancellationToken.None);

        var result = Assert.Single(report.Results);
        Assert.False(result.Succeeded);
        Assert.Contains("timed out", result.Error, StringComparison.Ordinal);
        Assert.Equal(Errors.ExitCode.Failed, report.ExitCode);
        Assert.Empty(Ops.FilesUnder(backupDir));
        // The tool and its own child are killed, not left running after the backup gave up on them.
        var pids = File.ReadAllText(Path.Combine(tools, "pids")).Split(' ', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(p => int.Parse(p, System.Globalization.CultureInfo.InvariantCulture)).ToList();
        Assert.Equal(2, pids.Count);
        foreach (var pid in pids)
        {
            Assert.False(await StillAliveAfterAWhileAsync(pid), $"process {pid} of the fake dump tool is still running");
        }
    }

    /// <summary>
    /// Whether a process is still alive (a zombie awaiting its reaper counts as dead). A SIGKILL takes
    /// effect asynchronously, so allow it up to 10 s; a process that survives that long was not killed.
    /// </summary>
    private static async Task<bool> StillAliveAfterAWhileAsync(int pid)
    {
        for (var i = 0; i < 100; i++)
        {
            string stat;
            try
            {
                stat = await File.ReadAllTextAsync($"/proc/{pid}/stat");
            }
            catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException or IOException)
            {
                return false;
            }
            var state = stat[(stat.LastIndexOf(')') + 2)..].Split(' ')[0];
            if (state is "Z" or "X")
            {
                return false;
            }
            await Task.Delay(100);
        }
        return true;
    }

    private async Task AssertFailureLeavesNothingAsync(
        InstanceConfig real, InstanceConfig fake, string db, FakeDump mode, Compression compression, string tool, string toolsDir)
    {
        var backupDir = _scratch.TempDir("backups");
        var good = await Ops.BackupAsync(real, db, compression, backupDir, new FixedTime(GoodTime));
        Assert.True(good.Succeeded, good.Error);
        var goodHash = Ops.Sha256(good.Location!);
        var filesBefore = Ops.FilesUnder(backupDir);
        Assert.Single(Ops.DataFilesUnder(backupDir));

        var failed = await Ops.BackupAsync(fake, db, compression, backupDir, new FixedTime(FailedTime));

        Assert.False(failed.Succeeded, "a backup whose dump tool misbehaved was reported as a success");
        Assert.Null(failed.Location);
        var expected = mode switch
        {
            FakeDump.FailsMidStream => new[] { tool, "exited with code 2", "Lost connection to server during query" },
            FakeDump.ExitsZeroWithoutTrailer => ["completion trailer"],
            _ => [tool, "killed by signal 9"],
        };
        foreach (var text in expected)
        {
            Assert.Contains(text, failed.Error, StringComparison.Ordinal);
        }
        Assert.DoesNotContain('\n', failed.Error!);
        // Nothing new: no backup file, no temp file, anywhere under backup_dir.
        Assert.Equal(filesBefore, Ops.FilesUnder(backupDir));
        Assert.Equal(goodHash, Ops.Sha256(good.Location!));

        // The fake saw its credentials in a private file, never on its command line, and the file is gone now.
        var calls = FakeTools.CallsLog(toolsDir);
        Assert.Contains("credentials: ", calls, StringComparison.Ordinal);
        Assert.DoesNotContain(fake.Password.Resolve()!, calls, StringComparison.Ordinal);
        foreach (var line in calls.Split('\n').Where(l => l.StartsWith("credentials: ", StringComparison.Ordinal)))
        {
            var path = line["credentials: ".Length..line.LastIndexOf(" mode ", StringComparison.Ordinal)];
            Assert.EndsWith(" mode 600", line, StringComparison.Ordinal);
            Assert.False(File.Exists(path), $"the credentials file {path} was left behind");
        }
    }
}
