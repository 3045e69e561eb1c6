using System.Diagnostics;
using System.Text;
using VyaBackupDb.Errors;

namespace VyaBackupDb.Engines;

/// <summary>
/// The one place that starts processes. Always an argv list (never a shell), stdin closed unless
/// fed, stderr drained concurrently (a full pipe would hang the child), exit status checked, and
/// the child killed when the caller cancels or a stream on our side fails.
/// </summary>
public static class ChildProcess
{
    private const int CopyBufferSize = 1 << 17;
    private const int StderrKeep = 16 * 1024;

    /// <summary>Runs a short command (e.g. `--version`) and returns its stdout; throws if it fails.</summary>
    public static async Task<string> CaptureAsync(string file, IReadOnlyList<string> arguments, CancellationToken cancellationToken)
    {
        using var output = new MemoryStream();
        await RunAsync(file, arguments, null, null, output, cancellationToken).ConfigureAwait(false);
        return Encoding.UTF8.GetString(output.ToArray());
    }

    /// <summary>
    /// Runs <paramref name="file"/>; <paramref name="feedStdin"/> writes its input (null: none) and
    /// its stdout is copied into <paramref name="stdout"/> (null: discarded). Throws <see cref="OperationFailedException"/>
    /// naming the tool, its exit status and the end of its stderr when it does not exit with 0.
    /// </summary>
    public static async Task RunAsync(
        string file,
        IReadOnlyList<string> arguments,
        IReadOnlyDictionary<string, string>? environment,
        Func<Stream, CancellationToken, Task>? feedStdin,
        Stream? stdout,
        CancellationToken cancellationToken)
    {
        var tool = Path.GetFileName(file);
        var startInfo = new ProcessStartInfo(file)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            // Not ours, which may have been deleted under us (pg_dumpall then fails: "could not identify current directory");
            // every path a child is given is absolute.
            WorkingDirectory = "/",
        };
        foreach (var argument in arguments)
        {
            startInfo.ArgumentList.Add(argument);
        }
        // A child gets only what it needs (its environment is readable in /proc/PID/environ): not
        // our password_env variables, S3 keys, the vault key, nor the clients' own password
        // variables (libpq prefers PGPASSWORD to our PGPASSFILE). An allowlist, so that a secret in
        // a variable of any name stays with us; the credentials are the ones we pass.
        var inherited = startInfo.Environment.Where(v => IsInherited(v.Key)).ToList();
        startInfo.Environment.Clear();
        foreach (var (name, value) in inherited)
        {
            startInfo.Environment[name] = value;
        }
        foreach (var (name, value) in environment ?? new Dictionary<string, string>())
        {
            startInfo.Environment[name] = value;
        }

        using var process = new Process { StartInfo = startInfo };
        try
        {
            process.Start();
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            // .NET's text names the working directory too; the errno's own says why.
            throw new HostFaultException($"cannot start {file}: "
                + (IoErrors.IsTooManyOpenFiles(e) ? IoErrors.TooManyOpenFiles() : new System.ComponentModel.Win32Exception(e.NativeErrorCode).Message), e);
        }

        var stderr = DrainStderrAsync(process.StandardError.BaseStream);
        var copyOut = process.StandardOutput.BaseStream.CopyToAsync(stdout ?? Stream.Null, CopyBufferSize, cancellationToken);
        var copyIn = FeedStdinAsync(process.StandardInput.BaseStream, feedStdin, cancellationToken);

        try
        {
            await WhenAllFailFast(copyOut, copyIn).ConfigureAwait(false);
            await process.WaitForExitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (Exception)
        {
            var childQuitFirst = process.HasExited;
            Kill(process);
            var childError = await ExitErrorAsync(process, tool, stderr).ConfigureAwait(false);
            await ThrowIfInterruptedAsync(process, cancellationToken).ConfigureAwait(false);
            // Writing to the child failing (broken pipe, EPIPE: .NET leaves no code for it on the
            // exception, the pipe says so) means it quit first: its own error says why. A failure on
            // our side (a truncated input, disk full while storing its output) is ours to report:
            // the child was only killed because of it.
            var pipeBroken = process.StandardInput.BaseStream is System.IO.Pipes.PipeStream { IsConnected: false };
            if (childError is not null && copyIn.IsFaulted && !copyOut.IsFaulted && (childQuitFirst || pipeBroken))
            {
                throw childError;
            }
            throw;
        }

        var error = await ExitErrorAsync(process, tool, stderr).ConfigureAwait(false);
        if (error is not null)
        {
            await ThrowIfInterruptedAsync(process, cancellationToken).ConfigureAwait(false);
            throw error;
        }
    }

    /// <summary>
    /// Ctrl+C on a terminal signals the whole foreground process group: the child may die of the
    /// SIGINT a moment before our own handler cancels the run. Such a death is the interruption,
    /// not the tool's failure: wait briefly for the cancellation, then report it as one.
    /// </summary>
    private static async Task ThrowIfInterruptedAsync(Process process, CancellationToken cancellationToken)
    {
        if (process.HasExited && process.ExitCode == 128 + 2 && !cancellationToken.IsCancellationRequested)
        {
            try
            {
                await Task.Delay(TimeSpan.FromSeconds(2), cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
            }
        }
        cancellationToken.ThrowIfCancellationRequested();
    }

    /// <summary>
    /// What a dump or restore tool may inherit: where to find things and how to speak (PATH,
    /// HOME, locale, time zone, TMPDIR), and TLS settings an operator may set for libpq or
    /// OpenSSL (PGSSL*, PGGSSENCMODE, PGREQUIREAUTH, PGCHANNELBINDING, SSL_CERT_FILE/DIR).
    /// </summary>
    internal static bool IsInherited(string name) =>
        name is "PATH" or "HOME" or "USER" or "LOGNAME" or "LANG" or "LANGUAGE" or "TZ" or "TMPDIR" or "TERM"
            or "PGGSSENCMODE" or "PGREQUIREAUTH" or "PGCHANNELBINDING" or "SSL_CERT_FILE" or "SSL_CERT_DIR"
        || name.StartsWith("LC_", StringComparison.Ordinal)
        || name.StartsWith("PGSSL", StringComparison.Ordinal);

    private static async Task FeedStdinAsync(
        Stream childStdin, Func<Stream, CancellationToken, Task>? feed, CancellationToken cancellationToken)
    {
        if (feed is not null)
        {
            await feed(childStdin, cancellationToken).ConfigureAwait(false);
        }
        // Closing stdin tells the child the input is complete, so only on success: when feeding
        // fails, the child is killed with its input still open (psql must not commit a half).
        await childStdin.DisposeAsync().ConfigureAwait(false);
    }

    /// <summary>Like Task.WhenAll, but fails as soon as either task fails, so the child gets killed at once.</summary>
    private static async Task WhenAllFailFast(Task first, Task second)
    {
        var done = await Task.WhenAny(first, second).ConfigureAwait(false);
        await done.ConfigureAwait(false);
        await (done == first ? second : first).ConfigureAwait(false);
    }

    private static async Task<OperationFailedException?> ExitErrorAsync(Process process, string tool, Task<string> stderr)
    {
        if (!process.WaitForExit(10_000))
        {
            return new OperationFailedException($"{tool} did not exit after being stopped");
        }
        if (process.ExitCode == 0)
        {
            return null;
        }
        var message = SummarizeStderr(await stderr.ConfigureAwait(false));
        // .NET reports a child killed by signal N as exit code 128 + N.
        var status = process.ExitCode > 128 && process.ExitCode < 160
            ? $"was killed by signal {process.ExitCode - 128}{SignalName(process.ExitCode - 128)}"
            : $"exited with code {process.ExitCode}";
        return new OperationFailedException(message.Length == 0 ? $"{tool} {status}" : $"{tool} {status}: {message}");
    }

    private static string SignalName(int signal) => signal switch
    {
        9 => " (SIGKILL)",
        15 => " (SIGTERM)",
        6 => " (SIGABRT)",
        11 => " (SIGSEGV)",
        13 => " (SIGPIPE)",
        2 => " (SIGINT)",
        _ => "",
    };

    /// <summary>
    /// The child's stderr as one line, bounded in length: its last three lines, after its last line that says
    /// error when that comes before them (pg_dump follows its error with the query's text and a detail).
    /// </summary>
    internal static string SummarizeStderr(string stderr)
    {
        var lines = stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        var error = Array.FindLastIndex(lines, line => line.Contains("error", StringComparison.OrdinalIgnoreCase));
        string[] kept = error >= 0 && error < lines.Length - 3 ? [lines[error], .. lines[^3..]] : [.. lines.TakeLast(3)];
        // A tool may echo what it was given (a bad option-file line, say): never a password.
        var text = Redaction.Redact(string.Join(" | ", kept));
        return text.Length > 600 ? "..." + text[^600..] : text;
    }

    private static async Task<string> DrainStderrAsync(Stream stderr)
    {
        // Keep only the end: the error is there, and a chatty tool must not grow memory.
        var kept = new StringBuilder();
        using var reader = new StreamReader(stderr, Encoding.UTF8);
        var buffer = new char[4096];
        int n;
        while ((n = await reader.ReadAsync(buffer).ConfigureAwait(false)) > 0)
        {
            kept.Append(buffer, 0, n);
            if (kept.Length > 2 * StderrKeep)
            {
                kept.Remove(0, kept.Length - StderrKeep);
            }
        }
        return kept.ToString();
    }

    private static void Kill(Process process)
    {
        try
        {
            if (!process.HasExited)
            {
                process.Kill(entireProcessTree: true);
            }
        }
        catch (InvalidOperationException)
        {
            // Already gone.
        }
    }
}
