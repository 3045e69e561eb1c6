using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Nodes;
using VyaBackupDb.Catalog;
using VyaBackupDb.Config;
using VyaBackupDb.Errors;
using VyaBackupDb.Pipeline;
using ZstdSharp;
using static VyaBackupDb.Tests.Integration.TestServers;

namespace VyaBackupDb.Tests.Integration;

/// <summary>The test classes that run verify --restore, whose scratch databases (vya_verify_*) the others look for: one at a time.</summary>
[CollectionDefinition(Name)]
public sealed class VerifyScratch
{
    public const string Name = "verify --restore scratch databases";
}

/// <summary>How a stored backup file is damaged.</summary>
public enum Damage
{
    /// <summary>The byte in the middle of the file inverted.</summary>
    FlippedByte,
    /// <summary>Only the first 60% kept.</summary>
    TruncatedTo60Percent,
    /// <summary>0 bytes.</summary>
    Emptied,
    /// <summary>100 random bytes added at the end.</summary>
    Appended100Bytes,
}

/// <summary>
/// A backup is never reported good when it is not: damaged files fail verify (naming the problem)
/// and fail restore before the target exists; a file without a manifest is not a backup; the
/// manifest says what the file and the database held; test restores and post-restore checks
/// compare counts and leave no scratch database. All through the real CLI where the user sees it.
/// Tests that run verify --restore are in the <see cref="VerifyScratch"/> collection (one at a
/// time), so no other test's scratch database shows up while they look for leftovers.
/// </summary>
[Trait("Category", "Integration")]
[Collection(VerifyScratch.Name)]
public sealed class IntegrityTests : IAsyncLifetime
{
    private const int Success = 0;
    private const int Failed = 1;
    private const int VerificationFailed = 4;

    private static readonly DateTimeOffset OlderTime = new(2026, 1, 13, 15, 54, 40, TimeSpan.Zero);
    private static readonly DateTimeOffset NewerTime = OlderTime.AddHours(1);

    private readonly Scratch _scratch = new();

    public Task InitializeAsync() => _scratch.InitializeAsync();

    public Task DisposeAsync() => _scratch.DisposeAsync();

    // ---------------------------------------------------------------- 1. damaged files

    /// <summary>
    /// verify checks the stored digest as the bytes stream through the decoder: the data file is read
    /// once (from S3 or SFTP, downloaded once), also where bytes were appended after the codec's end.
    /// </summary>
    [SkippableTheory]
    [InlineData(Compression.Zstd, false)]
    [InlineData(Compression.Gzip, false)]
    [InlineData(Compression.None, false)]
    [InlineData(Compression.Zstd, true)]
    public async Task Verify_reads_the_data_file_once_and_still_finds_bytes_appended_to_it(Compression compression, bool appended)
    {
        var (instance, source) = await NewSourceAsync(Dbms.MySql);
        // Incompressible rows: a file far larger than what is read to recognise its format.
        await MySqlTestDb.ExecAsync(source, "CREATE TABLE noise (id INT PRIMARY KEY, b BLOB)", "INSERT INTO noise SELECT seq, RANDOM_BYTES(1000) FROM seq_1_to_2000");
        var file = await Ops.BackupOkAsync(instance, source, compression, _scratch.TempDir("backups"));
        if (appended)
        {
            Apply(file, Damage.Appended100Bytes);
        }
        var storage = RecordingStorage.Local(Path.GetDirectoryName(file)!);
        var location = new Operations.BackupLocation(storage, Path.GetFileName(file));

        var check = await Operations.BackupFileChecker.CheckAsync(location, DecryptionKeys.None, CancellationToken.None);

        if (appended)
        {
            Assert.Contains(check.Problems, p => p.Contains("100 bytes appended", StringComparison.Ordinal));
        }
        else
        {
            Assert.Empty(check.Problems);
            var whole = storage.Reads.Where(r => r.Key == Path.GetFileName(file) && r.Stream.Bytes >= new FileInfo(file).Length).ToList();
            Assert.True(whole.Count == 1, $"the data file was read whole {whole.Count} times");
        }
    }

    [SkippableTheory]
    [InlineData(Dbms.MySql, Compression.Zstd)]
    [InlineData(Dbms.MySql, Compression.Gzip)]
    [InlineData(Dbms.PostgreSql, Compression.Zstd)]
    [InlineData(Dbms.PostgreSql, Compression.Gzip)]
    public async Task Damaged_backup_fails_verify_naming_the_problem_and_restore_before_the_target_exists(Dbms dbms, Compression compression)
    {
        var (instance, source) = await NewSourceAsync(dbms);
        var original = await Ops.BackupOkAsync(instance, source, compression, _scratch.TempDir("backups"));
        var config = await ConfigAsync(_scratch.TempDir("store"));

        var cases = new List<(Damage Damage, string File, string Target, Dictionary<string, string> Hashes)>();
        foreach (var damage in Enum.GetValues<Damage>())
        {
            var file = CopyBackup(original, _scratch.TempDir(damage.ToString()));
            Apply(file, damage);
            cases.Add((damage, file, NewName(dbms), HashesUnder(Path.GetDirectoryName(file)!)));
        }

        // Every CLI run at once (each is a process of its own): the control, then a verify and a restore per damage.
        var control = Run.CliAsync("verify", "--file", original, "--config", config);
        var runs = cases.Select(c => (
            Verify: Run.CliAsync("verify", "--file", c.File, "--config", config),
            Restore: Run.CliAsync("restore", "--file", c.File, "--instance", Id(dbms), "--target", c.Target, "--config", config))).ToList();
        var controlRun = await control;
        Assert.True(controlRun.ExitCode == Success, $"the undamaged backup does not verify:\n{controlRun}");

        for (var i = 0; i < cases.Count; i++)
        {
            var (damage, file, target, hashes) = cases[i];
            var problem = ExpectedProblem(damage);
            var verify = await runs[i].Verify;
            Assert.True(verify.ExitCode == VerificationFailed, $"{damage}: verify --file should exit 4:\n{verify}");
            var failedLine = Assert.Single(verify.Stdout.Split('\n'), l => l.StartsWith("FAILED", StringComparison.Ordinal));
            Assert.Contains(file, failedLine, StringComparison.Ordinal);
            Assert.True(failedLine.Contains(problem, StringComparison.Ordinal), $"{damage}: verify should say '{problem}':\n{verify}");
            Assert.Contains("0 OK, 1 failed", verify.Stdout, StringComparison.Ordinal);

            var restore = await runs[i].Restore;
            Assert.True(restore.ExitCode == VerificationFailed, $"{damage}: restore should exit 4:\n{restore}");
            var error = Assert.Single(Cli.ErrorLines(restore));
            Assert.Contains(problem, error, StringComparison.Ordinal);
            Assert.Contains($"'{target}' was not created", error, StringComparison.Ordinal);

            // The library says the same, with the verification-failed exception.
            var thrown = await Assert.ThrowsAsync<VerificationFailedException>(() => Ops.RestoreAsync(instance, file, target));
            Assert.Contains(problem, thrown.Message, StringComparison.Ordinal);

            Assert.False(await ExistsAsync(dbms, target), $"{damage}: a restore of a damaged file created the target '{target}'");
            // Checking changed nothing; verify recorded beside the file what it found (list shows it).
            var after = HashesUnder(Path.GetDirectoryName(file)!);
            if (after.Keys.SingleOrDefault(f => f.EndsWith(VerifyRecord.Suffix, StringComparison.Ordinal)) is { } record)
            {
                after.Remove(record);
                Assert.NotNull(JsonNode.Parse(await File.ReadAllTextAsync(Path.Combine(Path.GetDirectoryName(file)!, record)))!["failure"]);
            }
            Assert.Equal(hashes, after);
        }
    }

    // ---------------------------------------------------------------- 2. cut at a zstd frame boundary

    [SkippableTheory]
    [InlineData(Dbms.MySql)]
    [InlineData(Dbms.PostgreSql)]
    public async Task Zstd_backup_cut_exactly_after_a_frame_fails_verify_and_restore(Dbms dbms)
    {
        var (instance, source) = await NewSourceAsync(dbms);
        var original = await Ops.BackupOkAsync(instance, source, Compression.Zstd, _scratch.TempDir("backups"));
        var config = await ConfigAsync(_scratch.TempDir("store"));
        var plain = Decode(original);
        var half = plain.Length / 2;
        byte[] first, second;
        using (var compressor = new Compressor(3))
        {
            first = compressor.Wrap(plain.AsSpan(0, half)).ToArray();
            second = compressor.Wrap(plain.AsSpan(half)).ToArray();
        }
        byte[] twoFrames = [.. first, .. second];

        // With a manifest that describes the two-frame file: whole, it is a good backup.
        var withManifest = CopyBackup(original, _scratch.TempDir("framed"));
        await File.WriteAllBytesAsync(withManifest, twoFrames);
        var manifest = BackupManifest.FromJson(await File.ReadAllBytesAsync(withManifest + BackupManifest.Suffix)) with
        {
            StoredBytes = twoFrames.Length,
            StoredSha256 = Convert.ToHexStringLower(SHA256.HashData(twoFrames)),
        };
        await File.WriteAllBytesAsync(withManifest + BackupManifest.Suffix, manifest.ToJson());
        await File.WriteAllTextAsync(withManifest + BackupManifest.ChecksumSuffix, manifest.ChecksumLine);
        var whole = await Run.CliAsync("verify", "--file", withManifest, "--config", config);
        Assert.True(whole.ExitCode == Success, $"the two-frame file should verify before it is cut:\n{whole}");

        // Without a manifest (an old tool's file): whole, it verifies too, with a note.
        var bare = Path.Combine(_scratch.TempDir("bare"), Path.GetFileName(original));
        await File.WriteAllBytesAsync(bare, twoFrames);
        var wholeBare = await Run.CliAsync("verify", "--file", bare, "--config", config);
        Assert.True(wholeBare.ExitCode == Success, $"the two-frame file without a manifest should verify before it is cut:\n{wholeBare}");
        Assert.Contains("no digest was recorded", wholeBare.Stdout, StringComparison.Ordinal);

        // Cut exactly after the first frame: the decoder sees valid data, the first half of the dump.
        foreach (var file in new[] { withManifest, bare })
        {
            await using var stream = new FileStream(file, FileMode.Open, FileAccess.Write);
            stream.SetLength(first.Length);
        }
        Assert.Equal(plain.AsSpan(0, half).ToArray(), Decode(bare));

        var target = NewName(dbms);
        var verify = await Run.CliAsync("verify", "--file", withManifest, "--config", config);
        var restore = await Run.CliAsync("restore", "--file", withManifest, "--instance", Id(dbms), "--target", target, "--config", config);
        Assert.True(verify.ExitCode == VerificationFailed, verify.ToString());
        Assert.Contains($"truncated: {first.Length} bytes, the manifest recorded {twoFrames.Length}", verify.Stdout, StringComparison.Ordinal);
        Assert.True(restore.ExitCode == VerificationFailed, restore.ToString());
        Assert.Contains("truncated", Assert.Single(Cli.ErrorLines(restore)), StringComparison.Ordinal);
        Assert.False(await ExistsAsync(dbms, target), "a restore that failed its digest check created the target");

        var verifyBare = await Run.CliAsync("verify", "--file", bare, "--config", config);
        var restoreBare = await Run.CliAsync("restore", "--file", bare, "--instance", Id(dbms), "--target", target, "--config", config);
        Assert.True(verifyBare.ExitCode == VerificationFailed, verifyBare.ToString());
        Assert.Contains("truncated: the dump ends without its completion trailer", verifyBare.Stdout, StringComparison.Ordinal);
        Assert.True(restoreBare.ExitCode == Failed, restoreBare.ToString());
        var error = Assert.Single(Cli.ErrorLines(restoreBare));
        Assert.Contains("completion trailer", error, StringComparison.Ordinal);
        Assert.False(await ExistsAsync(dbms, target), $"a restore of a cut file left the target '{target}'");
    }

    /// <summary>
    /// An old tool's file (no manifest) with a statement after the dump's completion trailer: restore refused it, but
    /// verify looked for the trailer near the end only and said OK (a tester's). Both now refuse it.
    /// </summary>
    [SkippableTheory]
    [InlineData(Dbms.MySql)]
    [InlineData(Dbms.PostgreSql)]
    public async Task A_statement_after_the_completion_trailer_fails_verify_as_it_fails_restore(Dbms dbms)
    {
        var (instance, source) = await NewSourceAsync(dbms);
        var original = await Ops.BackupOkAsync(instance, source, Compression.Zstd, _scratch.TempDir("backups"));
        var config = await ConfigAsync(_scratch.TempDir("store"));
        var planted = Path.Combine(_scratch.TempDir("old"), $"{source}_20260110_020000.sql.gz");
        await using (var file = File.Create(planted))
        await using (var gzip = new System.IO.Compression.GZipStream(file, System.IO.Compression.CompressionLevel.Fastest))
        {
            gzip.Write(Decode(original));
            gzip.Write("DROP TABLE t;\n"u8);
        }
        var target = NewName(dbms);

        var verify = await Run.CliAsync("verify", "--file", planted, "--config", config);
        var restore = await Run.CliAsync("restore", "--file", planted, "--instance", Id(dbms), "--target", target, "--config", config);

        Assert.True(verify.ExitCode == VerificationFailed, verify.ToString());
        Assert.Contains("statements follow the dump's completion trailer", verify.Stdout, StringComparison.Ordinal);
        Assert.True(restore.ExitCode == Failed, restore.ToString());
        Assert.Contains("something was added after it", Assert.Single(Cli.ErrorLines(restore)), StringComparison.Ordinal);
        Assert.False(await ExistsAsync(dbms, target), "a refused restore left its target");
    }

    /// <summary>
    /// A planted file whose manifest was rewritten to match it (stored size and digest) but that decodes to far more than
    /// the manifest's plain_bytes: the restore stops as soon as the decoded dump runs past them (tr105: a few hundred KB
    /// of zstd loaded millions of rows into the staging database, for minutes, before the digest at the end refused it).
    /// </summary>
    [SkippableFact]
    public async Task A_dump_decoding_past_its_manifests_size_is_refused_as_soon_as_it_does()
    {
        var (instance, source) = await NewSourceAsync(Dbms.PostgreSql);
        var backupDir = _scratch.TempDir("backups");
        var file = await Ops.BackupOkAsync(instance, source, Compression.Zstd, backupDir);
        var original = Decode(file);
        // 8 MiB of comment lines before the dump: the manifest's plain_bytes end inside them.
        var padding = System.Text.Encoding.ASCII.GetBytes(string.Concat(Enumerable.Repeat("-- " + new string('x', 1020) + "\n", 8192)));
        await using (var stored = File.Create(file))
        await using (var zstd = Codec.Compress(Compression.Zstd, stored, "", null))
        {
            zstd.Write(padding);
            zstd.Write(original);
        }
        var manifest = System.Text.Json.Nodes.JsonNode.Parse(await File.ReadAllTextAsync(file + BackupManifest.Suffix))!;
        manifest["stored_bytes"] = new FileInfo(file).Length;
        manifest["stored_sha256"] = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(await File.ReadAllBytesAsync(file)));
        await File.WriteAllTextAsync(file + BackupManifest.Suffix, manifest.ToJsonString());
        var target = NewName(Dbms.PostgreSql);

        var restore = await Run.CliAsync("restore", "--file", file, "--instance", Id(Dbms.PostgreSql), "--target", target, "--config", await ConfigAsync(backupDir));

        Assert.True(restore.ExitCode == VerificationFailed, restore.ToString());
        Assert.Contains($"the decoded dump runs past the {original.Length} bytes its manifest records", Assert.Single(Cli.ErrorLines(restore)), StringComparison.Ordinal);
        Assert.False(await ExistsAsync(Dbms.PostgreSql, target), "a refused restore left its target");
    }

    // ---------------------------------------------------------------- 3. manifest deleted

    [SkippableTheory]
    [InlineData(Dbms.MySql)]
    [InlineData(Dbms.PostgreSql)]
    public async Task Backup_whose_manifest_is_deleted_is_skipped_as_incomplete_and_the_good_one_beside_it_verifies(Dbms dbms)
    {
        var (instance, source) = await NewSourceAsync(dbms);
        var backupDir = _scratch.TempDir("backups");
        var config = await ConfigAsync(backupDir);
        var good = await Ops.BackupAsync(instance, source, Compression.Zstd, backupDir, new FixedTime(OlderTime));
        var orphan = await Ops.BackupAsync(instance, source, Compression.Zstd, backupDir, new FixedTime(NewerTime));
        // One older than the good one too: --latest does not speak of it (it is not the latest of anything).
        var stale = await Ops.BackupAsync(instance, source, Compression.Zstd, backupDir, new FixedTime(OlderTime.AddHours(-1)));
        Assert.True(good.Succeeded && orphan.Succeeded && stale.Succeeded, $"{good.Error} {orphan.Error} {stale.Error}");
        File.Delete(orphan.Location + BackupManifest.Suffix);
        File.Delete(stale.Location + BackupManifest.Suffix);

        var all = await Run.CliAsync("verify", "--instance", Id(dbms), "--config", config);
        var latest = await Run.CliAsync("verify", "--instance", Id(dbms), "--database", source, "--latest", "--config", config);

        foreach (var run in new[] { all, latest })
        {
            Assert.True(run.ExitCode == Success, run.ToString());
            Assert.Contains($"SKIP   {orphan.Location}: incomplete: no manifest, not a backup", run.Stdout, StringComparison.Ordinal);
            Assert.Contains($"OK     {good.Location}", run.Stdout, StringComparison.Ordinal);
            Assert.DoesNotContain($"OK     {orphan.Location}", run.Stdout, StringComparison.Ordinal);
            Assert.Contains("verify summary: 1 OK, 0 failed", run.Stdout, StringComparison.Ordinal);
        }
        Assert.Contains($"SKIP   {stale.Location}: incomplete", all.Stdout, StringComparison.Ordinal);
        Assert.DoesNotContain(stale.Location!, latest.Stdout, StringComparison.Ordinal);
        // What restore-by-name and retention will go by: the file without a manifest is not complete.
        var entries = await BackupCatalog.ListAsync(new Storage.Local.LocalStorage(backupDir), instance, CancellationToken.None);
        Assert.Equal(
            [(Path.GetFileName(orphan.Location!), false), (Path.GetFileName(good.Location!), true), (Path.GetFileName(stale.Location!), false)],
            entries.Select(e => (Path.GetFileName(e.Key), e.HasManifest)));
    }

    // ---------------------------------------------------------------- 4. manifest content

    [SkippableTheory]
    [InlineData(Dbms.MySql, "zstd")]
    [InlineData(Dbms.PostgreSql, "gzip")]
    public async Task Manifest_records_the_file_and_the_database_and_sha256sum_accepts_the_checksum_file(Dbms dbms, string compression)
    {
        var (instance, source) = await NewSourceAsync(dbms);
        var backupDir = _scratch.TempDir("backups");
        var config = await ConfigAsync(backupDir);
        var backup = await Run.CliAsync("backup", "--instance", Id(dbms), "--database", source, "--compression", compression, "--config", config);
        Assert.True(backup.ExitCode == Success, backup.ToString());
        var file = Path.Combine(backupDir, Assert.Single(Ops.DataFilesUnder(backupDir)));

        var json = await File.ReadAllBytesAsync(file + BackupManifest.Suffix);
        using (var document = JsonDocument.Parse(json))
        {
            Assert.Equal(1, document.RootElement.GetProperty("schema_version").GetInt32());
        }
        var manifest = BackupManifest.FromJson(json);
        Assert.Equal(1, manifest.SchemaVersion);
        Assert.Equal(instance.Id, manifest.InstanceId);
        Assert.Equal(instance.Name, manifest.InstanceName);
        Assert.Equal(dbms.ToName(), manifest.Dbms);
        Assert.Equal(source, manifest.Database);
        Assert.Equal(compression, manifest.Compression);
        Assert.Equal(Path.GetFileName(file), manifest.DataFile);
        Assert.Equal(dbms == Dbms.MySql ? "MariaDB" : "PostgreSQL", manifest.ServerFlavor);
        Assert.Equal(dbms == Dbms.MySql ? "mariadb-dump" : "pg_dump", manifest.DumpTool);
        Assert.False(string.IsNullOrWhiteSpace(manifest.DumpToolVersion));
        Assert.False(string.IsNullOrWhiteSpace(manifest.ToolVersion));
        Assert.True(manifest.StartedUtc <= manifest.FinishedUtc);
        Assert.Equal(new FileInfo(file).Length, manifest.StoredBytes);
        Assert.Equal(Ops.Sha256(file), manifest.StoredSha256);
        var plain = Decode(file);
        Assert.Equal(plain.LongLength, manifest.PlainBytes);
        Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(plain)), manifest.PlainSha256);

        // Row counts as the source holds them, exact: read off the dump stream.
        const bool exact = true;
        var prefix = dbms == Dbms.PostgreSql ? "public." : "";
        Assert.Equal(
            [new TableRows(prefix + "t", await CountAsync(dbms, source, "t"), exact), new TableRows(prefix + "u", await CountAsync(dbms, source, "u"), exact)],
            manifest.Inventory.Tables);
        Assert.Equal(2000, manifest.Inventory.Tables[0].Rows);
        Assert.Equal(dbms == Dbms.PostgreSql
            ? new ObjectCounts(Views: 1, Routines: 1, Triggers: 1, Events: 0, ExtensionViews: 0, ExtensionRoutines: 0, Extensions: "plpgsql 1.0")
            : new ObjectCounts(Views: 1, Routines: 1, Triggers: 1, Events: 0), manifest.Inventory.Objects);
        if (dbms == Dbms.PostgreSql)
        {
            Assert.Equal([new SequenceValue("public.t_id_seq", 2000, Exact: true)], manifest.Inventory.Sequences);
        }

        // An operator can check the file with standard tools.
        var checksum = await SumCheckAsync(file);
        Assert.True(checksum.ExitCode == 0, checksum.ToString());
        Assert.Equal($"{Path.GetFileName(file)}: OK", checksum.Stdout.Trim());
        Apply(file, Damage.FlippedByte);
        var damaged = await SumCheckAsync(file);
        Assert.True(damaged.ExitCode != 0, $"sha256sum -c accepted a damaged file:\n{damaged}");
    }

    // ---------------------------------------------------------------- 7. verify --restore

    [SkippableTheory]
    [InlineData(Dbms.MySql)]
    [InlineData(Dbms.PostgreSql)]
    public async Task Verify_restore_of_a_good_backup_matches_and_leaves_no_scratch_database(Dbms dbms)
    {
        var (instance, source) = await NewSourceAsync(dbms);
        var backupDir = _scratch.TempDir("backups");
        var config = await ConfigAsync(backupDir);
        var file = await Ops.BackupOkAsync(instance, source, Compression.Zstd, backupDir);
        var scratchBefore = await VerifyScratchDatabasesAsync(dbms);
        try
        {
            var run = await Run.CliAsync("verify", "--instance", Id(dbms), "--database", source, "--restore", "--config", config);

            Assert.True(run.ExitCode == Success, run.ToString());
            Assert.Contains($"OK     {file}, test restore matches the manifest", run.Stdout, StringComparison.Ordinal);
            Assert.Contains("verify summary: 1 OK, 0 failed", run.Stdout, StringComparison.Ordinal);
            Assert.Equal(scratchBefore, await VerifyScratchDatabasesAsync(dbms));
        }
        finally
        {
            await DropNewScratchDatabasesAsync(dbms, scratchBefore);
        }
    }

    /// <summary>
    /// A backup pruned by another run between verify's digest pass and its test restore is an unchecked one (exit 1),
    /// not a damaged one (tr104: FAILED, exit 4, a corruption alarm for a backup removed on purpose); nor a good one when
    /// it was removed after the test restore had read it (tr106: S3 served the deleted object, and verify said OK).
    /// </summary>
    [SkippableTheory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Verify_restore_of_a_backup_removed_meanwhile_says_it_was_not_checked(bool afterTheTestRestore)
    {
        var (instance, source) = await NewSourceAsync(Dbms.PostgreSql);
        var backupDir = _scratch.TempDir("backups");
        var config = ConfigLoader.Load(await ConfigAsync(backupDir));
        var file = await Ops.BackupOkAsync(instance, source, Compression.Zstd, backupDir);

        var results = await new Operations.VerifyOperation(config, new PruningObserver(file, afterTheTestRestore))
            .RunAsync(new Operations.VerifyRequest(file, null, null, Latest: false, Restore: true), CancellationToken.None);

        var check = Assert.Single(results).Check;
        Assert.True(check.Unreachable, string.Join("; ", check.Problems));
        Assert.Equal(["not checked: it was removed while it was checked (by another run's prune?)"], check.Problems);
    }

    /// <summary>Deletes the backup (and its manifest) once the test restore has planned, or compared, as a concurrent prune would.</summary>
    private sealed class PruningObserver(string file, bool afterTheTestRestore) : Operations.IVerifyObserver
    {
        public void Planned(Operations.RestorePlan plan)
        {
            if (!afterTheTestRestore)
            {
                Prune();
            }
        }

        public bool Confirm(string question) => false;

        public void Started(long fileBytes, Func<long> fileBytesRead)
        {
        }

        public void Compared(Operations.InventoryComparison comparison)
        {
            if (afterTheTestRestore)
            {
                Prune();
            }
        }

        private void Prune()
        {
            File.Delete(file);
            File.Delete(file + BackupManifest.Suffix);
        }

        public void Warning(string message)
        {
        }

        public void Checked(Operations.VerifyResult result)
        {
        }

        public void Skipped(string file, string reason)
        {
        }
    }

    [SkippableFact]
    public async Task Verify_restore_fails_naming_the_table_when_the_manifest_row_count_is_wrong_and_leaves_no_scratch_database()
    {
        var (instance, source) = await NewSourceAsync(Dbms.PostgreSql);
        var backupDir = _scratch.TempDir("backups");
        var config = await ConfigAsync(backupDir);
        var file = await Ops.BackupOkAsync(instance, source, Compression.Zstd, backupDir);
        await TamperRowCountAsync(file, "public.t", 2001);
        var scratchBefore = await VerifyScratchDatabasesAsync(Dbms.PostgreSql);
        try
        {
            // The digests still match: only a test restore can tell.
            var plainVerify = await Run.CliAsync("verify", "--file", file, "--config", config);
            Assert.True(plainVerify.ExitCode == Success, plainVerify.ToString());

            var run = await Run.CliAsync("verify", "--instance", "2", "--database", source, "--restore", "--config", config);

            Assert.True(run.ExitCode == VerificationFailed, run.ToString());
            var failedLine = Assert.Single(run.Stdout.Split('\n'), l => l.StartsWith("FAILED", StringComparison.Ordinal));
            Assert.Contains("test restore failed", failedLine, StringComparison.Ordinal);
            Assert.Contains("table public.t: 2001 rows in the backup, 2000 restored", failedLine, StringComparison.Ordinal);
            // Other tests' verify runs come and go meanwhile: only this run's scratch database must be gone.
            Assert.Empty((await VerifyScratchDatabasesAsync(Dbms.PostgreSql)).Except(scratchBefore));
        }
        finally
        {
            await DropNewScratchDatabasesAsync(Dbms.PostgreSql, scratchBefore);
        }
    }

    /// <summary>
    /// MySQL's counts are exact (read off the dump stream): a difference fails the test restore,
    /// naming the table. A count marked as an estimate (manifests of earlier versions) only warns.
    /// </summary>
    [SkippableFact]
    public async Task Verify_restore_fails_naming_the_table_when_a_mysql_row_count_differs_and_only_warns_for_an_estimate()
    {
        var (instance, source) = await NewSourceAsync(Dbms.MySql);
        var backupDir = _scratch.TempDir("backups");
        var config = await ConfigAsync(backupDir);
        var file = await Ops.BackupOkAsync(instance, source, Compression.Zstd, backupDir);
        await TamperRowCountAsync(file, "t", 2001);
        var scratchBefore = await VerifyScratchDatabasesAsync(Dbms.MySql);
        try
        {
            var run = await Run.CliAsync("verify", "--instance", "1", "--database", source, "--restore", "--config", config);

            Assert.True(run.ExitCode == VerificationFailed, run.ToString());
            var failedLine = Assert.Single(run.Stdout.Split('\n'), l => l.StartsWith("FAILED", StringComparison.Ordinal));
            Assert.Contains("table t: 2001 rows in the backup, 2000 restored", failedLine, StringComparison.Ordinal);

            var path = file + BackupManifest.Suffix;
            var json = JsonNode.Parse(await File.ReadAllBytesAsync(path))!;
            json["inventory"]!["tables"]!.AsArray().Single(t => (string?)t!["name"] == "t")!["exact"] = false;
            await File.WriteAllTextAsync(path, json.ToJsonString());
            var estimate = await Run.CliAsync("verify", "--instance", "1", "--database", source, "--restore", "--config", config);

            Assert.True(estimate.ExitCode == Success, estimate.ToString());
            Assert.Contains($"OK     {file}, test restore matches the manifest", estimate.Stdout, StringComparison.Ordinal);
            Assert.Contains("vya-backupdb: warning: table t: 2001 rows in the backup (estimate), 2000 restored", estimate.Stderr, StringComparison.Ordinal);
            Assert.Empty((await VerifyScratchDatabasesAsync(Dbms.MySql)).Except(scratchBefore));
        }
        finally
        {
            await DropNewScratchDatabasesAsync(Dbms.MySql, scratchBefore);
        }
    }

    // ---------------------------------------------------------------- 8. restore post-check

    [SkippableTheory]
    [InlineData(Dbms.MySql)]
    [InlineData(Dbms.PostgreSql)]
    public async Task Restore_of_a_good_backup_reports_a_comparison_that_matches(Dbms dbms)
    {
        var (instance, source) = await NewSourceAsync(dbms);
        var backupDir = _scratch.TempDir("backups");
        var config = await ConfigAsync(backupDir);
        var file = await Ops.BackupOkAsync(instance, source, Compression.Zstd, backupDir);
        var table = dbms == Dbms.PostgreSql ? "public.t" : "t";

        var observer = new TestRestoreObserver();
        var result = await Ops.RestoreAsync(instance, file, NewName(dbms), observer: observer);
        var comparison = Assert.Single(observer.Comparisons);
        Assert.True(comparison.Matches, string.Join("; ", comparison.Mismatches));
        Assert.Empty(comparison.Warnings);
        Assert.Contains($"table {table}: 2000 rows in the backup, 2000 restored", comparison.Lines);
        Assert.Same(comparison, result!.Comparison);

        var target = NewName(dbms);
        var run = await Run.CliAsync("restore", "--file", file, "--instance", Id(dbms), "--target", target, "--config", config);
        Assert.True(run.ExitCode == Success, run.ToString());
        Assert.Contains($"ok       table {table}: 2000 rows in the backup", run.Stdout, StringComparison.Ordinal);
        Assert.Contains("ok       views: 1 in the backup, 1 restored", run.Stdout, StringComparison.Ordinal);
        Assert.DoesNotContain("MISMATCH", run.Stdout, StringComparison.Ordinal);
    }

    [SkippableFact]
    public async Task Restore_fails_naming_the_table_when_an_exact_row_count_differs_and_no_verify_restores_with_a_warning()
    {
        var (instance, source) = await NewSourceAsync(Dbms.PostgreSql);
        var backupDir = _scratch.TempDir("backups");
        var config = await ConfigAsync(backupDir);
        var file = await Ops.BackupOkAsync(instance, source, Compression.Gzip, backupDir);
        await TamperRowCountAsync(file, "public.t", 1999);
        var filesBefore = HashesUnder(backupDir);

        var target = NewName(Dbms.PostgreSql);
        var run = await Run.CliAsync("restore", "--file", file, "--instance", "2", "--target", target, "--config", config);

        Assert.True(run.ExitCode == VerificationFailed, run.ToString());
        var error = Assert.Single(Cli.ErrorLines(run));
        // Checked in the staging database: the target is never created from data that does not match.
        Assert.Contains("the restored data differs from the backup's manifest", error, StringComparison.Ordinal);
        Assert.Contains($"'{target}' was not created", error, StringComparison.Ordinal);
        Assert.Contains("table public.t: 1999 rows in the backup, 2000 restored", error, StringComparison.Ordinal);
        Assert.Contains("MISMATCH table public.t", run.Stdout, StringComparison.Ordinal);

        // --no-verify: no digest, trailer or count check, and it says so.
        var unverified = NewName(Dbms.PostgreSql);
        var noVerify = await Run.CliAsync("restore", "--file", file, "--instance", "2", "--target", unverified, "--no-verify", "--config", config);

        Assert.True(noVerify.ExitCode == Success, noVerify.ToString());
        Assert.Contains("warning: --no-verify", noVerify.Stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("MISMATCH", noVerify.Stdout, StringComparison.Ordinal);
        DbFingerprint.AssertSame(await PgTestDb.FingerprintAsync(source), await PgTestDb.FingerprintAsync(unverified), "restore with --no-verify");
        Assert.Equal(filesBefore, HashesUnder(backupDir));
    }

    // ---------------------------------------------------------------- helpers

    private async Task<string> ConfigAsync(string backupDir) => await Cli.WriteConfigAsync(_scratch.TempDir("cfg"), backupDir);

    private string NewName(Dbms dbms) => dbms == Dbms.MySql ? _scratch.MySqlName() : _scratch.PostgresName();

    /// <summary>
    /// A database with table t (2000 rows; in PostgreSQL a serial id), table u (3 rows), a view,
    /// a routine and a trigger: enough that the compressed file has a middle worth damaging.
    /// </summary>
    private async Task<(InstanceConfig Instance, string Database)> NewSourceAsync(Dbms dbms)
    {
        if (dbms == Dbms.MySql)
        {
            await TestServers.RequireMySqlAsync();
            var db = await _scratch.NewMySqlDatabaseAsync();
            await MySqlTestDb.ExecAsync(db,
                "CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(100))",
                "INSERT INTO t SELECT seq, CONCAT('row ', seq, ' ', MD5(seq)) FROM mysql.seq_1_to_2000",
                "CREATE TABLE u (id INT PRIMARY KEY)",
                "INSERT INTO u VALUES (1), (2), (3)",
                "CREATE VIEW vw AS SELECT id FROM t WHERE id < 10",
                "CREATE PROCEDURE p() SELECT COUNT(*) FROM t",
                "CREATE TRIGGER trg BEFORE INSERT ON u FOR EACH ROW SET NEW.id = NEW.id");
            return (Instance(dbms), db);
        }
        await TestServers.RequirePostgresAsync();
        var pg = await _scratch.NewPostgresDatabaseAsync();
        await PgTestDb.ExecAsync(pg,
            "CREATE TABLE t (id serial PRIMARY KEY, v text)",
            "INSERT INTO t (v) SELECT 'row ' || g || ' ' || md5(g::text) FROM generate_series(1, 2000) g",
            "CREATE TABLE u (id int PRIMARY KEY)",
            "INSERT INTO u VALUES (1), (2), (3)",
            "CREATE VIEW vw AS SELECT id FROM t WHERE id < 10",
            "CREATE FUNCTION trg_fn() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$",
            "CREATE TRIGGER trg BEFORE INSERT ON u FOR EACH ROW EXECUTE FUNCTION trg_fn()");
        return (Instance(dbms), pg);
    }

    private static async Task<long> CountAsync(Dbms dbms, string database, string table) =>
        Convert.ToInt64(dbms == Dbms.MySql
            ? await MySqlTestDb.ScalarAsync(database, $"SELECT COUNT(*) FROM {MySqlTestDb.Quote(table)}")
            : await PgTestDb.ScalarAsync(database, $"SELECT count(*) FROM {PgTestDb.Quote(table)}"),
            System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>Copies a backup file with its manifest and .sha256 into <paramref name="dir"/>; returns the copy's path.</summary>
    private static string CopyBackup(string file, string dir)
    {
        var copy = Path.Combine(dir, Path.GetFileName(file));
        foreach (var suffix in new[] { "", BackupManifest.Suffix, BackupManifest.ChecksumSuffix })
        {
            File.Copy(file + suffix, copy + suffix);
        }
        return copy;
    }

    private static void Apply(string file, Damage damage)
    {
        switch (damage)
        {
            case Damage.FlippedByte:
                var bytes = File.ReadAllBytes(file);
                bytes[bytes.Length / 2] ^= 0xFF;
                File.WriteAllBytes(file, bytes);
                break;
            case Damage.TruncatedTo60Percent:
                using (var stream = new FileStream(file, FileMode.Open, FileAccess.Write))
                {
                    stream.SetLength(stream.Length * 6 / 10);
                }
                break;
            case Damage.Emptied:
                File.WriteAllBytes(file, []);
                break;
            case Damage.Appended100Bytes:
                using (var stream = new FileStream(file, FileMode.Append, FileAccess.Write))
                {
                    stream.Write(RandomNumberGenerator.GetBytes(100));
                }
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(damage));
        }
    }

    /// <summary>What verify and restore must say about each damage.</summary>
    private static string ExpectedProblem(Damage damage) => damage switch
    {
        Damage.FlippedByte => "digest mismatch",
        Damage.TruncatedTo60Percent or Damage.Emptied => "truncated",
        Damage.Appended100Bytes => "100 bytes appended",
        _ => throw new ArgumentOutOfRangeException(nameof(damage)),
    };

    /// <summary>Every file under a directory (temp files included) with its SHA-256.</summary>
    private static Dictionary<string, string> HashesUnder(string dir) =>
        Ops.FilesUnder(dir).ToDictionary(f => f, f => Ops.Sha256(Path.Combine(dir, f)));

    /// <summary>The plain dump inside a backup file, decoded by the file's compression.</summary>
    private static byte[] Decode(string file)
    {
        using var stored = File.OpenRead(file);
        using var plain = Codec.Decompress(CompressionNames.FromFileName(Path.GetFileName(file))!.Value, stored);
        using var buffer = new MemoryStream();
        plain.CopyTo(buffer);
        return buffer.ToArray();
    }

    /// <summary>Edits the manifest's JSON: one table's row count changed, everything else (digests too) kept.</summary>
    private static async Task TamperRowCountAsync(string file, string table, long rows)
    {
        var path = file + BackupManifest.Suffix;
        var json = JsonNode.Parse(await File.ReadAllBytesAsync(path))!;
        var entry = json["inventory"]!["tables"]!.AsArray().Single(t => (string?)t!["name"] == table)!;
        Assert.NotEqual(rows, (long)entry["rows"]!);
        entry["rows"] = rows;
        await File.WriteAllTextAsync(path, json.ToJsonString());
    }

    /// <summary>The real `sha256sum -c` run in the file's directory, on its .sha256 file.</summary>
    private static Task<ProcessResult> SumCheckAsync(string file) =>
        Run.ProgramAsync("sh", ["-c", "cd \"$1\" && sha256sum -c \"$2\"", "sh",
            Path.GetDirectoryName(file)!, Path.GetFileName(file) + BackupManifest.ChecksumSuffix]);

    /// <summary>The test-restore databases (vya_verify_*) on a server now.</summary>
    private static async Task<List<string>> VerifyScratchDatabasesAsync(Dbms dbms)
    {
        var names = new List<string>();
        if (dbms == Dbms.MySql)
        {
            await using var connection = await MySqlTestDb.OpenAsync();
            await using var command = new MySqlConnector.MySqlCommand(
                "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE 'vya\\_verify\\_%' ORDER BY 1", connection);
            await using var reader = await command.ExecuteReaderAsync();
            while (await reader.ReadAsync())
            {
                names.Add(reader.GetString(0));
            }
        }
        else
        {
            await using var connection = await PgTestDb.OpenAsync();
            await using var command = new Npgsql.NpgsqlCommand(
                "SELECT datname FROM pg_database WHERE datname LIKE 'vya\\_verify\\_%' ORDER BY 1", connection);
            await using var reader = await command.ExecuteReaderAsync();
            while (await reader.ReadAsync())
            {
                names.Add(reader.GetString(0));
            }
        }
        return names;
    }

    /// <summary>Drops test-restore databases that appeared during a test (only when verify failed to), so one failure does not leak into the next run.</summary>
    private static async Task DropNewScratchDatabasesAsync(Dbms dbms, List<string> before)
    {
        foreach (var name in (await VerifyScratchDatabasesAsync(dbms)).Except(before))
        {
            await (dbms == Dbms.MySql ? MySqlTestDb.DropIfExistsAsync(name) : PgTestDb.DropIfExistsAsync(name));
        }
    }
}
