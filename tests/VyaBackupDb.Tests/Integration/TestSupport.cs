using System.Diagnostics;
using System.Security.Cryptography;
using VyaBackupDb.Config;
using VyaBackupDb.Operations;
using VyaBackupDb.Pipeline;
using VyaBackupDb.Storage.Local;

namespace VyaBackupDb.Tests.Integration;

/// <summary>Records what a backup reports.</summary>
public sealed class TestBackupObserver : IBackupObserver
{
    public List<BackupItem> Planned { get; } = [];

    public List<BackupItemResult> Finished { get; } = [];

    public List<string> Warnings { get; } = [];

    void IBackupObserver.Planned(BackupItem item) => Planned.Add(item);

    void IBackupObserver.Started(BackupItem item, Func<long> storedBytesSoFar, Func<long> plainBytesSoFar)
    {
    }

    void IBackupObserver.Finished(BackupItemResult result) => Finished.Add(result);

    void IBackupObserver.Warning(string message) => Warnings.Add(message);
}

/// <summary>Records what a restore reports; answers confirmations with <see cref="Answer"/>.</summary>
public sealed class TestRestoreObserver(bool answer = false) : IRestoreObserver
{
    public bool Answer { get; } = answer;

    public List<RestorePlan> Plans { get; } = [];

    public List<string> Questions { get; } = [];

    public List<string> Warnings { get; } = [];

    public List<InventoryComparison> Comparisons { get; } = [];

    void IRestoreObserver.Planned(RestorePlan plan) => Plans.Add(plan);

    void IRestoreObserver.Compared(InventoryComparison comparison) => Comparisons.Add(comparison);

    bool IRestoreObserver.Confirm(string question)
    {
        Questions.Add(question);
        return Answer;
    }

    void IRestoreObserver.Started(long fileBytes, Func<long> fileBytesRead)
    {
    }

    void IRestoreObserver.Warning(string message) => Warnings.Add(message);
}

/// <summary>A clock that always says the same time (to aim a second backup at the first one's file name).</summary>
public sealed class FixedTime(DateTimeOffset now) : TimeProvider
{
    public override DateTimeOffset GetUtcNow() => now;
}

/// <summary>Runs backups and restores in-process through the library, as the CLI does.</summary>
public static class Ops
{
    /// <summary>A loopback port nothing listens on (bound, then closed).</summary>
    public static int DeadPort()
    {
        using var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        return ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
    }

    /// <summary>A cell of a database row as the tests compare it: NULL as "NULL", binary as hex, times ISO 8601.</summary>
    public static string Cell(object value) => value switch
    {
        DBNull => "NULL",
        byte[] bytes => Convert.ToHexString(bytes),
        DateTime time => time.ToString("O", System.Globalization.CultureInfo.InvariantCulture),
        _ => Convert.ToString(value, System.Globalization.CultureInfo.InvariantCulture) ?? "",
    };

    public static async Task<BackupItemResult> BackupAsync(
        InstanceConfig instance, string database, Compression compression, string backupDir, TimeProvider? time = null)
    {
        var config = TestServers.Config(backupDir, instance);
        var observer = new TestBackupObserver();
        var operation = new BackupOperation(config, new LocalStorage(backupDir), time ?? TimeProvider.System, observer);
        var report = await operation.RunAsync(new BackupRequest([instance], database, compression, DryRun: false), CancellationToken.None);
        return Assert.Single(report.Results);
    }

    /// <summary>Backs up and requires success; returns the backup file's path.</summary>
    public static async Task<string> BackupOkAsync(InstanceConfig instance, string database, Compression compression, string backupDir)
    {
        var result = await BackupAsync(instance, database, compression, backupDir);
        Assert.True(result.Succeeded, $"backup of {database} ({compression}) failed: {result.Error}");
        Assert.NotNull(result.Location);
        Assert.True(File.Exists(result.Location), $"backup reported {result.Location} but it does not exist");
        return result.Location;
    }

    public static Task<RestoreResult?> RestoreAsync(
        InstanceConfig instance, string file, string? target, bool force = false, bool dryRun = false, TestRestoreObserver? observer = null,
        bool trustBackup = false)
    {
        var config = TestServers.Config(Path.GetDirectoryName(file)!, instance);
        var operation = new RestoreOperation(config, observer ?? new TestRestoreObserver());
        return operation.RunAsync(new RestoreRequest(file, instance, target, dryRun, force, TrustBackup: trustBackup), CancellationToken.None);
    }

    /// <summary>
    /// All files under a directory, temp files included, relative paths sorted; but not the
    /// lock files in .locks/, which stay (empty, unheld) once a database has been backed up.
    /// </summary>
    public static List<string> FilesUnder(string dir) =>
        Directory.Exists(dir)
            ?
            [
                .. Directory.EnumerateFiles(dir, "*", SearchOption.AllDirectories)
                    .Select(f => Path.GetRelativePath(dir, f))
                    .Where(f => !f.StartsWith(".locks/", StringComparison.Ordinal) || f.EndsWith(".holder", StringComparison.Ordinal))
                    .Order(StringComparer.Ordinal),
            ]
            : [];

    /// <summary>The backup data files under a directory; each must have its manifest and .sha256 beside it.</summary>
    public static List<string> DataFilesUnder(string dir)
    {
        var all = FilesUnder(dir);
        var data = all.Where(f => !f.EndsWith(Catalog.BackupManifest.Suffix, StringComparison.Ordinal)
            && !f.EndsWith(Catalog.BackupManifest.ChecksumSuffix, StringComparison.Ordinal)
            && !f.EndsWith(Catalog.VerifyRecord.Suffix, StringComparison.Ordinal)).ToList();
        foreach (var file in data)
        {
            Assert.Contains(file + Catalog.BackupManifest.Suffix, all);
            Assert.Contains(file + Catalog.BackupManifest.ChecksumSuffix, all);
        }
        return data;
    }

    public static string Sha256(string file) => Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(file)));
}

public sealed record ProcessResult(int ExitCode, string Stdout, string Stderr)
{
    public override string ToString() => $"exit {ExitCode}\n--- stdout:\n{Stdout}\n--- stderr:\n{Stderr}";
}

/// <summary>Runs a program to completion with stdin redirected and closed (no terminal), capturing its output.</summary>
public static class Run
{
    public static async Task<ProcessResult> ProgramAsync(
        string file, IEnumerable<string> arguments, IDictionary<string, string>? environment = null, Stream? stdoutTo = null,
        int limitMinutes = 3)
    {
        var startInfo = new ProcessStartInfo(file)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var argument in arguments)
        {
            startInfo.ArgumentList.Add(argument);
        }
        foreach (var (name, value) in environment ?? new Dictionary<string, string>())
        {
            startInfo.Environment[name] = value;
        }
        using var process = Process.Start(startInfo) ?? throw new InvalidOperationException($"cannot start {file}");
        process.StandardInput.Close();
        // The limit counts from the start: a program that hangs with its output open fails the test instead of the suite.
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(limitMinutes));
        var stderr = process.StandardError.ReadToEndAsync(timeout.Token);
        string stdout;
        try
        {
            if (stdoutTo is null)
            {
                stdout = await process.StandardOutput.ReadToEndAsync(timeout.Token);
            }
            else
            {
                await process.StandardOutput.BaseStream.CopyToAsync(stdoutTo, timeout.Token);
                stdout = "";
            }
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"{file} {string.Join(' ', startInfo.ArgumentList)} did not finish in {limitMinutes} minutes");
        }
        return new ProcessResult(process.ExitCode, stdout, await stderr);
    }

    /// <summary>
    /// The CLI the tests run: scripts/test's precompiled (ReadyToRun) publish, as users run it, when VYA_TEST_CLI names
    /// it (a third less CPU per run than the JIT's, over a suite of thousands of runs); else the build next to the tests.
    /// </summary>
    public static string CliDll { get; } = Environment.GetEnvironmentVariable("VYA_TEST_CLI") is { Length: > 0 } published
        ? published
        : Path.Combine(AppContext.BaseDirectory, "vya-backupdb.dll");

    /// <summary>The dotnet host that runs <see cref="CliDll"/>.</summary>
    public static string Dotnet { get; } =
        Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host && File.Exists(host) ? host : "dotnet";

    /// <summary>Starts the built CLI without waiting (stdin closed, output redirected): for tests that kill it midway.</summary>
    public static Process StartCli(params string[] arguments)
    {
        var dll = CliDll;
        var startInfo = new ProcessStartInfo(Dotnet)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var argument in (string[])[dll, .. arguments])
        {
            startInfo.ArgumentList.Add(argument);
        }
        startInfo.Environment["VYA_BACKUPDB_CONFIG"] = "";
        var process = Process.Start(startInfo) ?? throw new InvalidOperationException("cannot start the CLI");
        process.StandardInput.Close();
        return process;
    }

    /// <summary>Runs the built CLI (vya-backupdb.dll, copied next to the test assembly by the project reference).</summary>
    public static Task<ProcessResult> CliAsync(params string[] arguments) => CliWithEnvAsync(null, arguments);

    /// <summary>The CLI under an open files limit of <paramref name="files"/> (ulimit -n: soft and hard, so the runtime cannot raise it).</summary>
    public static Task<ProcessResult> CliUnderOpenFilesLimitAsync(int files, params string[] arguments)
    {
        var (dotnet, args, env) = CliCommand(null, arguments);
        return ProgramAsync("bash", ["-c", $"ulimit -n {files}; exec \"$@\"", "bash", dotnet, .. args], env);
    }

    /// <summary>The CLI with extra environment variables (e.g. its own TMPDIR, to see what it leaves there).</summary>
    public static Task<ProcessResult> CliWithEnvAsync(IDictionary<string, string>? environment, params string[] arguments)
    {
        var (file, args, env) = CliCommand(environment, arguments);
        return ProgramAsync(file, args, env);
    }

    /// <summary>How to start the built CLI (vya-backupdb.dll next to the test assembly): program, arguments, environment.</summary>
    public static (string File, List<string> Arguments, Dictionary<string, string> Environment) CliCommand(
        IDictionary<string, string>? environment, params string[] arguments)
    {
        var dll = CliDll;
        Assert.True(File.Exists(dll), $"the CLI is not built: {dll}");
        var dotnet = Dotnet;
        var env = new Dictionary<string, string>
        {
            // The CLI must not pick up a config from the environment of whoever runs the tests.
            ["VYA_BACKUPDB_CONFIG"] = "",
            ["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1",
            ["DOTNET_NOLOGO"] = "1",
        };
        foreach (var (name, value) in environment ?? new Dictionary<string, string>())
        {
            env[name] = value;
        }
        return (dotnet, [dll, .. arguments], env);
    }

    /// <summary>
    /// The CLI without the power to read what a file's mode forbids (root's CAP_DAC_OVERRIDE and
    /// CAP_DAC_READ_SEARCH dropped), as any other user would run it.
    /// </summary>
    public static Task<ProcessResult> CliWithoutReadOverrideAsync(params string[] arguments)
    {
        if (!Environment.IsPrivilegedProcess)
        {
            return CliAsync(arguments);
        }
        var (file, args, env) = CliCommand(null, arguments);
        return ProgramAsync("setpriv", ["--bounding-set=-dac_override,-dac_read_search", file, .. args], env);
    }

    /// <summary>The real mysqldump (MariaDB's) with the given options; its output goes to <paramref name="outputFile"/>.</summary>
    public static async Task MySqlDumpAsync(string outputFile, params string[] options)
    {
        var dir = Directory.CreateTempSubdirectory("vya-itest-cnf-");
        try
        {
            var cnf = Path.Combine(dir.FullName, "client.cnf");
            await File.WriteAllTextAsync(cnf,
                $"[client]\nhost={TestServers.MySqlHost}\nport={TestServers.MySqlPort}\nuser={TestServers.MySqlUser}\n"
                + $"password=\"{TestServers.MySqlPassword}\"\nprotocol=tcp\n");
            await using var output = File.Create(outputFile);
            var result = await ProgramAsync("mysqldump", [$"--defaults-file={cnf}", .. options], stdoutTo: output);
            Assert.True(result.ExitCode == 0, $"mysqldump failed: {result}");
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    /// <summary>The real pg_dump 15 with the given options; its output goes to <paramref name="outputFile"/>.</summary>
    public static async Task PgDumpAsync(string outputFile, params string[] options)
    {
        var pgDump = File.Exists("/usr/lib/postgresql/15/bin/pg_dump") ? "/usr/lib/postgresql/15/bin/pg_dump" : "pg_dump";
        await using var output = File.Create(outputFile);
        var result = await ProgramAsync(pgDump,
            ["--host", TestServers.PgHost, "--port", TestServers.PgPort.ToString(System.Globalization.CultureInfo.InvariantCulture),
                "--username", TestServers.PgUser, "--no-password", .. options],
            new Dictionary<string, string> { ["PGPASSWORD"] = TestServers.PgPassword }, output);
        Assert.True(result.ExitCode == 0, $"pg_dump failed: {result}");
    }
}
