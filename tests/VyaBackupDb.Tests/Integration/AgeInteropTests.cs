using System.Diagnostics;
using System.Security.Cryptography;
using VyaBackupDb.Pipeline.Age;

namespace VyaBackupDb.Tests.Integration;

/// <summary>
/// Interoperability with the reference tool: Debian's age (apt-get install age, which
/// scripts/servers installs). Skips when age is missing, but fails when CI=true.
/// </summary>
[Trait("Category", "Integration")]
public sealed class AgeInteropTests : IAsyncLifetime
{
    private const int Chunk = 64 * 1024;

    private readonly Scratch _scratch = new();
    private string _dir = "";

    public Task InitializeAsync()
    {
        _dir = _scratch.TempDir("age");
        return Task.CompletedTask;
    }

    public Task DisposeAsync() => _scratch.DisposeAsync();

    public static TheoryData<int> Sizes => [0, 1, Chunk, Chunk + 1, 3 * Chunk + 1234, 4 * 1024 * 1024 + 3];

    [SkippableTheory]
    [MemberData(nameof(Sizes))]
    public async Task Encrypted_by_us_decrypts_with_age(int size)
    {
        AgeTool.Require();
        var keyFile = await AgeKeygenAsync("key.txt");
        var identity = Assert.Single(AgeIdentity.ReadKeyFile(keyFile)); // age-keygen's file, read by us
        var plain = RandomNumberGenerator.GetBytes(size);
        var encrypted = Path.Combine(_dir, "data.age");
        await EncryptFileAsync(plain, encrypted, [identity.Recipient]);

        var output = Path.Combine(_dir, "data.out");
        var run = await AgeTool.RunAsync("age", ["-d", "-i", keyFile, "-o", output, encrypted]);

        Assert.True(run.ExitCode == 0, run.ToString());
        // age -o creates its output file only when it has a byte to write.
        Assert.Equal(plain, size == 0 && !File.Exists(output) ? [] : await File.ReadAllBytesAsync(output));
    }

    [SkippableFact]
    public async Task Encrypted_by_us_to_three_recipients_decrypts_with_age_for_each_of_them()
    {
        AgeTool.Require();
        var keyFiles = new[] { await AgeKeygenAsync("a.txt"), await AgeKeygenAsync("b.txt"), await AgeKeygenAsync("c.txt") };
        var recipients = keyFiles.Select(k => Assert.Single(AgeIdentity.ReadKeyFile(k)).Recipient).ToArray();
        var plain = RandomNumberGenerator.GetBytes(2 * Chunk + 77);
        var encrypted = Path.Combine(_dir, "data.age");
        await EncryptFileAsync(plain, encrypted, recipients);

        foreach (var keyFile in keyFiles)
        {
            var output = Path.Combine(_dir, Path.GetFileName(keyFile) + ".out");
            var run = await AgeTool.RunAsync("age", ["-d", "-i", keyFile, "-o", output, encrypted]);
            Assert.True(run.ExitCode == 0, run.ToString());
            Assert.Equal(plain, await File.ReadAllBytesAsync(output));
        }
    }

    [SkippableTheory]
    [MemberData(nameof(Sizes))]
    public async Task Encrypted_by_age_to_several_recipients_decrypts_with_us(int size)
    {
        AgeTool.Require();
        var ours = AgeIdentity.Generate();
        var other = AgeIdentity.Generate();
        var plain = RandomNumberGenerator.GetBytes(size);
        var input = Path.Combine(_dir, "data");
        await File.WriteAllBytesAsync(input, plain);
        var encrypted = input + ".age";

        var run = await AgeTool.RunAsync("age", ["-r", other.Recipient.ToString(), "-r", ours.Recipient.ToString(), "-o", encrypted, input]);

        Assert.True(run.ExitCode == 0, run.ToString());
        Assert.Equal(plain, await DecryptFileAsync(encrypted, [ours]));
    }

    [SkippableFact]
    public async Task A_key_file_with_several_age_keygen_keys_is_read_and_the_matching_one_is_used()
    {
        AgeTool.Require();
        var first = await AgeKeygenAsync("1.txt");
        var second = await AgeKeygenAsync("2.txt");
        var combined = Path.Combine(_dir, "keys.txt");
        await File.WriteAllTextAsync(combined, await File.ReadAllTextAsync(first) + "\n" + await File.ReadAllTextAsync(second));
        var input = Path.Combine(_dir, "data");
        await File.WriteAllBytesAsync(input, "hello"u8.ToArray());

        // age encrypts to the second key through its identity file.
        var run = await AgeTool.RunAsync("age", ["-e", "-i", second, "-o", input + ".age", input]);

        Assert.True(run.ExitCode == 0, run.ToString());
        var identities = AgeIdentity.ReadKeyFile(combined);
        Assert.Equal(2, identities.Count);
        Assert.Equal("hello"u8.ToArray(), await DecryptFileAsync(input + ".age", identities));
    }

    [SkippableFact]
    public async Task A_key_file_from_our_keygen_works_with_age()
    {
        AgeTool.Require();
        var keyFile = Path.Combine(_dir, "ours.txt");
        var keygen = await Run.CliAsync("keygen", "--output", keyFile);
        Assert.True(keygen.ExitCode == 0, keygen.ToString());
        var publicKey = keygen.Stdout.Trim();

        var derived = await AgeTool.RunAsync("age-keygen", ["-y", keyFile]);
        Assert.True(derived.ExitCode == 0, derived.ToString());
        Assert.Equal(publicKey, derived.Stdout.Trim());

        var plain = RandomNumberGenerator.GetBytes(Chunk + 5);
        var input = Path.Combine(_dir, "data");
        await File.WriteAllBytesAsync(input, plain);
        var encrypt = await AgeTool.RunAsync("age", ["-r", publicKey, "-o", input + ".age", input]);
        var decrypt = await AgeTool.RunAsync("age", ["-d", "-i", keyFile, "-o", input + ".out", input + ".age"]);
        Assert.True(encrypt.ExitCode == 0 && decrypt.ExitCode == 0, encrypt + "\n" + decrypt);
        Assert.Equal(plain, await File.ReadAllBytesAsync(input + ".out"));
    }

    [SkippableFact]
    public async Task Files_from_age_cut_at_a_chunk_boundary_or_changed_fail_with_us()
    {
        AgeTool.Require();
        var ours = AgeIdentity.Generate();
        var input = Path.Combine(_dir, "data");
        await File.WriteAllBytesAsync(input, RandomNumberGenerator.GetBytes(3 * Chunk + 100));
        var run = await AgeTool.RunAsync("age", ["-r", ours.Recipient.ToString(), "-o", input + ".age", input]);
        Assert.True(run.ExitCode == 0, run.ToString());
        var encrypted = await File.ReadAllBytesAsync(input + ".age");
        var payload = encrypted.Length - (3 * Chunk + 100) - 4 * 16;

        var cut = Path.Combine(_dir, "cut.age");
        await File.WriteAllBytesAsync(cut, encrypted[..(payload + 2 * (Chunk + 16))]);
        var e = await Assert.ThrowsAsync<AgeException>(() => DecryptFileAsync(cut, [ours]));
        Assert.Contains("64 KiB boundary", e.Message, StringComparison.Ordinal);

        var changed = Path.Combine(_dir, "changed.age");
        encrypted[payload + Chunk] ^= 0x80;
        await File.WriteAllBytesAsync(changed, encrypted);
        await Assert.ThrowsAsync<AgeException>(() => DecryptFileAsync(changed, [ours]));
    }

    [SkippableFact]
    public async Task Passphrase_files_interoperate_both_ways_through_a_pseudo_terminal()
    {
        // age reads passphrases only from a terminal: run it under script(1), which gives it a
        // pty and forwards our stdin to it.
        AgeTool.Require(needScript: true);
        const string passphrase = "vya interop passphrase ação";
        var plain = RandomNumberGenerator.GetBytes(2 * Chunk + 3);

        // Ours (age's default work factor, 18) -> age -d.
        var ours = Path.Combine(_dir, "ours.age");
        await using (var file = File.Create(ours))
        await using (var encrypt = new AgeEncryptStream(file, new AgePassphrase(passphrase)))
        {
            await encrypt.WriteAsync(plain);
        }
        var decrypted = Path.Combine(_dir, "ours.out");
        var run = await AgeTool.RunInTerminalAsync($"age -d -o {Quote(decrypted)} {Quote(ours)}", passphrase + "\n");
        Assert.True(run.ExitCode == 0, run.ToString());
        Assert.Equal(plain, await File.ReadAllBytesAsync(decrypted));

        // age -p -> ours.
        var input = Path.Combine(_dir, "plain");
        await File.WriteAllBytesAsync(input, plain);
        var theirs = Path.Combine(_dir, "theirs.age");
        run = await AgeTool.RunInTerminalAsync($"age -p -o {Quote(theirs)} {Quote(input)}", passphrase + "\n" + passphrase + "\n");
        Assert.True(run.ExitCode == 0, run.ToString());
        Assert.Equal(plain, await DecryptFileAsync(theirs, [], new AgePassphrase(passphrase)));
        await Assert.ThrowsAsync<AgeException>(() => DecryptFileAsync(theirs, [], new AgePassphrase("not it")));
    }

    private async Task<string> AgeKeygenAsync(string name)
    {
        var path = Path.Combine(_dir, name);
        var run = await AgeTool.RunAsync("age-keygen", ["-o", path]);
        Assert.True(run.ExitCode == 0, run.ToString());
        return path;
    }

    private static async Task EncryptFileAsync(byte[] plain, string path, IReadOnlyCollection<AgeRecipient> recipients)
    {
        await using var file = File.Create(path);
        await using var encrypt = new AgeEncryptStream(file, recipients);
        for (var offset = 0; offset < plain.Length; offset += 100_003)
        {
            await encrypt.WriteAsync(plain.AsMemory(offset, Math.Min(100_003, plain.Length - offset)));
        }
    }

    private static async Task<byte[]> DecryptFileAsync(string path, IReadOnlyList<AgeIdentity> identities, AgePassphrase? passphrase = null)
    {
        await using var decrypt = await AgeDecryptStream.OpenAsync(File.OpenRead(path), identities, passphrase);
        using var plain = new MemoryStream();
        await decrypt.CopyToAsync(plain);
        return plain.ToArray();
    }

    private static string Quote(string path) => "'" + path.Replace("'", "'\\''", StringComparison.Ordinal) + "'";
}

/// <summary>The keygen command, run as an operator runs it.</summary>
[Trait("Category", "Integration")]
public sealed class KeygenCliTests : IAsyncLifetime
{
    private readonly Scratch _scratch = new();

    public Task InitializeAsync() => Task.CompletedTask;

    public Task DisposeAsync() => _scratch.DisposeAsync();

    [Fact]
    public async Task Keygen_writes_a_0600_identity_file_and_prints_its_public_key()
    {
        var path = Path.Combine(_scratch.TempDir("keygen"), "key.txt");

        var run = await Run.CliAsync("keygen", "--output", path);

        Assert.True(run.ExitCode == 0, run.ToString());
        if (OperatingSystem.IsWindows())
        {
            throw new PlatformNotSupportedException("key file modes are a Unix matter");
        }
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(path));
        var text = await File.ReadAllTextAsync(path);
        Assert.Matches(@"^# created: \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(Z|[+-]\d\d:\d\d)\n# public key: age1[a-z0-9]{58}\nAGE-SECRET-KEY-1[A-Z0-9]{58}\n$", text);
        var identity = Assert.Single(AgeIdentity.ReadKeyFile(path));
        Assert.Equal(identity.Recipient.ToString() + "\n", run.Stdout);
        Assert.Contains($"# public key: {identity.Recipient}\n", text, StringComparison.Ordinal);
        Assert.DoesNotContain("AGE-SECRET-KEY", run.Stdout + run.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Keygen_refuses_to_overwrite_an_existing_file()
    {
        var path = Path.Combine(_scratch.TempDir("keygen"), "key.txt");
        await File.WriteAllTextAsync(path, "precious\n");

        var run = await Run.CliAsync("keygen", "--output", path);

        Assert.True(run.ExitCode == 2, run.ToString());
        Assert.StartsWith("vya-backupdb: error: ", run.Stderr, StringComparison.Ordinal);
        Assert.Contains("already exists", run.Stderr, StringComparison.Ordinal);
        Assert.Equal("precious\n", await File.ReadAllTextAsync(path));
        Assert.Equal("", run.Stdout);
    }

    [Fact]
    public async Task Keygen_into_a_missing_folder_says_so_in_one_line()
    {
        var path = Path.Combine(_scratch.TempDir("keygen"), "keys", "key.txt");

        var run = await Run.CliAsync("keygen", "--output", path);

        Assert.True(run.ExitCode == 2, run.ToString());
        Assert.Equal($"vya-backupdb: error: cannot write {path}: its folder does not exist\n", run.Stderr);
        Assert.Equal("", run.Stdout);
    }

    [Fact]
    public async Task Keygen_without_output_prints_the_file_on_stdout_and_the_public_key_on_stderr()
    {
        var run = await Run.CliAsync("keygen");

        Assert.True(run.ExitCode == 0, run.ToString());
        var identity = Assert.Single(AgeIdentity.ParseKeyFile(run.Stdout, "stdout"));
        Assert.Equal($"Public key: {identity.Recipient}\n", run.Stderr);
        Assert.Contains($"# public key: {identity.Recipient}\n", run.Stdout, StringComparison.Ordinal);
    }
}

/// <summary>Finds and runs the age tools; a missing tool skips the test, or fails it when CI=true.</summary>
public static class AgeTool
{
    public static void Require(bool needScript = false)
    {
        string[] tools = needScript ? ["age", "age-keygen", "script"] : ["age", "age-keygen"];
        var missing = tools.Where(t => Find(t) is null).ToList();
        if (missing.Count == 0)
        {
            return;
        }
        var message = $"{string.Join(", ", missing)} not found on PATH (apt-get install age; script is in bsdutils)";
        if (TestServers.IsCi)
        {
            throw new InvalidOperationException(message + " (CI=true: a missing tool fails the test instead of skipping it)");
        }
        Skip.If(true, message);
    }

    public static Task<ProcessResult> RunAsync(string tool, IEnumerable<string> arguments) =>
        Run.ProgramAsync(Find(tool) ?? tool, arguments);

    /// <summary>Runs a shell command line under script(1), so that it has a terminal; <paramref name="input"/> is typed into it.</summary>
    public static async Task<ProcessResult> RunInTerminalAsync(string commandLine, string input)
    {
        var startInfo = new ProcessStartInfo(Find("script")!)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var argument in new[] { "--quiet", "--return", "--command", commandLine, "/dev/null" })
        {
            startInfo.ArgumentList.Add(argument);
        }
        startInfo.Environment["SHELL"] = "/bin/sh";
        using var process = Process.Start(startInfo)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        await process.StandardInput.WriteAsync(input);
        process.StandardInput.Close();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"script -c '{commandLine}' did not finish in 2 minutes");
        }
        return new ProcessResult(process.ExitCode, await stdout, await stderr);
    }

    private static string? Find(string tool) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "")
            .Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)
            .Select(dir => Path.Combine(dir, tool))
            .FirstOrDefault(File.Exists);
}
