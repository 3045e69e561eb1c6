using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using Spectre.Console;
using Spectre.Console.Rendering;
using VyaBackupDb.Config;
using VyaBackupDb.Errors;

namespace VyaBackupDb.Cli;

/// <summary>How log lines (stderr, --log-file) are written: <c>--log-format text|json</c>.</summary>
internal enum LogFormat
{
    Text,
    Json,
}

/// <summary>One log line in JSON (--log-format json): stable snake_case fields, absent when unknown.</summary>
internal sealed record LogRecord(DateTime Time, string Level, string Message, string? Instance = null, int? InstanceId = null, string? Database = null);

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(LogRecord))]
internal sealed partial class LogJson : JsonSerializerContext;

/// <summary>
/// Console output: results on stdout, errors and progress on stderr. Live progress lines only
/// when stderr is a terminal (and logs are text); plain log lines otherwise (cron, CI, pipes).
/// Every line goes out whole under one lock, so the lines of jobs running at once never mix.
/// </summary>
internal static class Output
{
    private static readonly Lock WriteLock = new();

    /// <summary>Messages quote names ('db', a -> b): kept readable, not \u0027-escaped (nothing here goes into HTML).</summary>
    private static readonly LogJson LogJsonContext = new(new JsonSerializerOptions(LogJson.Default.Options)
    {
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    });
    private static FileStream? _logFile;
    private static IReadOnlyList<string> _live = [];
    private static int _liveDrawn;

    public static bool IsTerminal { get; } = !Console.IsErrorRedirected;

    public static LogFormat Format { get; private set; }

    /// <summary>Progress redrawn in place: a terminal, and text logs (JSON lines stay one object per line).</summary>
    public static bool IsLive => IsTerminal && Format == LogFormat.Text;

    /// <summary>
    /// --log-format and --log-file. The file is appended to (created 0600: the lines name hosts
    /// and users) and gets every log, warning and error line, in the same format and with the same
    /// redaction as the console (messages hold no secret where they are made).
    /// </summary>
    public static void Configure(LogFormat format, string? logFile)
    {
        Format = format;
        if (logFile is null)
        {
            return;
        }
        // Unbuffered: each line goes out whole as it is written, and a failed write leaves nothing for a later flush to fail on.
        var options = new FileStreamOptions { Mode = FileMode.Append, Access = FileAccess.Write, Share = FileShare.ReadWrite | FileShare.Delete, BufferSize = 0 };
        if (!OperatingSystem.IsWindows())
        {
            options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        }
        try
        {
            _logFile = new FileStream(logFile, options);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new UsageException($"--log-file {logFile}: cannot open it for appending: {IoErrors.OpenFailureReason(e, logFile)}");
        }
    }

    /// <summary>A line of results on stdout, shown as <see cref="OneLine"/> shows it.</summary>
    public static void Line(string text) => WriteOut(OneLine(IoErrors.Tidy(text)));

    /// <summary>A JSON document on stdout (--json): its strings are escaped by JSON's rules, its lines are its own.</summary>
    public static void Json(string document) => WriteOut(IoErrors.Tidy(document));

    /// <summary>A line on stdout exactly as given: a password asked for.</summary>
    public static void Verbatim(string text) => WriteOut(text);

    private static void WriteOut(string text)
    {
        lock (WriteLock)
        {
            EraseLive();
            Console.Out.WriteLine(text);
            DrawLive();
        }
    }

    // Messages are ours; what they quote of servers and tools was redacted where it came in
    // (Redaction): redacting our own words here would make the mask an oracle.
    public static void Error(string message) => Write("error", message, null, null, logLine: false);

    public static void Warning(string message) => Write("warning", message, null, null, logLine: false);

    /// <summary>
    /// A timestamped log line, to stderr so stdout stays for results; the instance and database it
    /// is about, when there is one; <paramref name="failure"/>: level "error" (a database that failed).
    /// </summary>
    public static void Log(string text, InstanceConfig? instance = null, string? database = null, bool failure = false) =>
        Write(failure ? "error" : "info", text, instance, database, logLine: true);

    /// <summary>Replaces the live lines at the bottom of the terminal (jobs in progress); none when not <see cref="IsLive"/>.</summary>
    public static void SetLive(IReadOnlyList<string> lines)
    {
        if (!IsLive)
        {
            return;
        }
        lock (WriteLock)
        {
            EraseLive();
            _live = [.. lines.Select(OneLine)];
            DrawLive();
        }
    }

    private static void Write(string level, string message, InstanceConfig? instance, string? database, bool logLine)
    {
        message = OneLine(IoErrors.Tidy(message));
        var now = DateTime.UtcNow;
        var json = Format == LogFormat.Json || _logFile is not null
            ? JsonSerializer.Serialize(
                new LogRecord(now, level, message, instance?.Name, instance?.Id, instance?.Dbms == Dbms.Files ? null : database), LogJsonContext.LogRecord)
            : null;
        var text = logLine ? $"{Stamp(now)} {message}" : $"vya-backupdb: {level}: {message}";
        lock (WriteLock)
        {
            EraseLive();
            Console.Error.WriteLine(Format == LogFormat.Json ? json : text);
            DrawLive();
            if (_logFile is not null)
            {
                // Text files get the time on every line, errors and warnings too.
                WriteToLogFile(Format == LogFormat.Json ? json! : logLine ? text : $"{Stamp(now)} {text}");
            }
        }
    }

    /// <summary>
    /// Appends one line to --log-file. A full disk (or any other failure) under the log must not fail
    /// the backup: one warning on the console, then no more logging there. Never throws.
    /// </summary>
    private static void WriteToLogFile(string line)
    {
        try
        {
            // At the end even if another process appended meanwhile (FileMode.Append is no O_APPEND).
            _logFile!.Seek(0, SeekOrigin.End);
            _logFile.Write(Encoding.UTF8.GetBytes(line + "\n"));
        }
        catch (Exception e) when (IoErrors.IsWriteFault(e) || e is NotSupportedException)
        {
            // Unbuffered (bufferSize 0): closing has nothing left to write, so it cannot fail the same way again.
            var file = _logFile!;
            _logFile = null;
            try
            {
                file.Dispose();
            }
            catch (IOException)
            {
            }
            var warning = $"--log-file: {IoErrors.Tidy(IoErrors.WriteFaultReason(e))}; no longer writing to it";
            Console.Error.WriteLine(Format == LogFormat.Json
                ? JsonSerializer.Serialize(new LogRecord(DateTime.UtcNow, "warning", warning), LogJsonContext.LogRecord)
                : $"vya-backupdb: warning: {warning}");
        }
    }

    /// <summary>
    /// A message as one line: what it quotes (a file name, an archive's entry, a database's name) may hold a
    /// newline that would forge a line of its own, an escape sequence for the terminal, or a bidirectional
    /// control that shows the rest of the line reversed; such characters are shown escaped (\n, \x1b, \u202e).
    /// </summary>
    internal static string OneLine(string message)
    {
        static bool IsControl(char c) => char.IsControl(c) && c != '\t';
        static bool IsBidiControl(char c) => c is '\u061c' or '\u200e' or '\u200f' or (>= '\u202a' and <= '\u202e') or (>= '\u2066' and <= '\u2069');
        if (!message.Any(c => IsControl(c) || IsBidiControl(c)))
        {
            return message;
        }
        var line = new StringBuilder(message.Length + 16);
        foreach (var c in message)
        {
            line.Append(c switch
            {
                '\n' => "\\n",
                '\r' => "\\r",
                _ when IsControl(c) => $"\\x{(int)c:x2}",
                _ when IsBidiControl(c) => $"\\u{(int)c:x4}",
                _ => c.ToString(),
            });
        }
        return line.ToString();
    }

    /// <summary>
    /// A table on stdout: boxed on a terminal, else aligned columns two spaces apart (pipes, cron mail). Cells are
    /// shown as <see cref="OneLine"/> shows them; <paramref name="style"/> of a cell by its row and column.
    /// </summary>
    public static void Table(string[] headers, IReadOnlyList<string[]> rows, Func<int, int, Style>? style = null)
    {
        var cells = rows.Select(row => row.Select(OneLine).ToArray()).ToList();
        if (Console.IsOutputRedirected)
        {
            var lines = cells.Prepend(headers).ToList();
            var widths = Enumerable.Range(0, headers.Length).Select(i => lines.Max(l => l[i].Length)).ToArray();
            foreach (var line in lines)
            {
                Line(string.Join("  ", line.Select((cell, i) => i == line.Length - 1 ? cell : cell.PadRight(widths[i]))).TrimEnd());
            }
            return;
        }
        var table = new Table().Border(TableBorder.Rounded);
        foreach (var header in headers)
        {
            table.AddColumn(new TableColumn(new Text(header)));
        }
        for (var r = 0; r < cells.Count; r++)
        {
            var row = r;
            // Text, not markup: a database name may hold '[' and ']'.
            table.AddRow(cells[row].Select((c, column) => (IRenderable)new Text(c, style?.Invoke(row, column) ?? Style.Plain)));
        }
        lock (WriteLock)
        {
            EraseLive();
            AnsiConsole.Write(table);
            DrawLive();
        }
    }

    private static string Stamp(DateTime utc) => utc.ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture);

    private static void EraseLive()
    {
        if (_liveDrawn > 0)
        {
            // Up to the first live line, and clear from there to the end of the screen.
            Console.Error.Write($"\u001b[{_liveDrawn}A\r\u001b[J");
            _liveDrawn = 0;
        }
    }

    private static void DrawLive()
    {
        if (_live.Count == 0)
        {
            return;
        }
        var width = Width();
        var text = new StringBuilder();
        foreach (var line in _live)
        {
            // Never wider than the terminal: a wrapped line would throw the erase count off.
            text.Append(line.Length < width ? line : line[..Math.Max(0, width - 1)]).Append('\n');
        }
        Console.Error.Write(text.ToString());
        _liveDrawn = _live.Count;
    }

    private static int Width()
    {
        try
        {
            return Console.WindowWidth > 0 ? Console.WindowWidth : 120;
        }
        catch (IOException)
        {
            return 120;
        }
    }

    public static string Size(long bytes)
    {
        string[] units = ["B", "KiB", "MiB", "GiB", "TiB"];
        double value = bytes;
        var unit = 0;
        while (value >= 1024 && unit < units.Length - 1)
        {
            value /= 1024;
            unit++;
        }
        return unit == 0
            ? $"{bytes} B"
            : value.ToString("0.0", CultureInfo.InvariantCulture) + " " + units[unit];
    }

    public static string Duration(TimeSpan duration) =>
        duration.TotalSeconds < 60
            ? duration.TotalSeconds.ToString("0.0", CultureInfo.InvariantCulture) + " s"
            : duration.ToString(duration.TotalHours >= 1 ? @"h\:mm\:ss" : @"m\:ss", CultureInfo.InvariantCulture);
}

/// <summary>
/// A restore's plan line ("restoring FILE into TARGET; target ..."), said once and only when the
/// restore is going to happen: before the question on a terminal, when the data starts to flow,
/// or at the end of a dry run. A file refused (not a backup, --force missing) is never first
/// announced as "restoring".
/// </summary>
internal sealed class PlanLine
{
    private string? _line;

    public void Set(string line) => _line = line;

    public void Say()
    {
        if (_line is { } line)
        {
            _line = null;
            Output.Line(line);
        }
    }

    /// <summary>Asks on a terminal, after the plan line; without one the answer is no, and nothing is said.</summary>
    public bool Confirm(string question)
    {
        if (Console.IsInputRedirected || !Output.IsTerminal)
        {
            return false;
        }
        Say();
        return Spectre.Console.AnsiConsole.Confirm(question, defaultValue: false);
    }
}

/// <summary>
/// A progress line redrawn in place on a terminal (bytes, rate, elapsed; with a total, the percentage and time left), or a log line every
/// 30 s when not on a terminal, so long dumps still show signs of life in cron mail.
/// </summary>
internal sealed class ProgressLine : IDisposable
{
    private readonly string _label;
    private readonly Func<long> _bytes;
    private readonly long? _total;
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private readonly Timer _timer;
    private readonly Lock _lock = new();
    private bool _stopped;

    public ProgressLine(string label, Func<long> bytes, long? total = null)
    {
        _label = label;
        _bytes = bytes;
        _total = total;
        var period = Output.IsLive ? TimeSpan.FromMilliseconds(250) : TimeSpan.FromSeconds(30);
        _timer = new Timer(_ => Render(), null, period, period);
    }

    private void Render()
    {
        lock (_lock)
        {
            if (_stopped)
            {
                return;
            }
            long bytes;
            try
            {
                bytes = _bytes();
            }
            catch (Exception e) when (e is ObjectDisposedException or NotSupportedException or InvalidOperationException or IOException)
            {
                // The stream it measures is gone (the run failed or was interrupted): a timer
                // callback must never throw, it would take the whole process down.
                _stopped = true;
                return;
            }
            var seconds = Math.Max(_clock.Elapsed.TotalSeconds, 0.001);
            var done = _total is > 0 ? $"{Output.Size(bytes)} of {Output.Size(_total.Value)} ({100.0 * bytes / _total.Value:0}%)" : Output.Size(bytes);
            var rate = bytes / seconds;
            var left = _total is > 0 && bytes > 0 && bytes < _total && seconds > 2
                ? $", ~{Output.Duration(TimeSpan.FromSeconds((_total.Value - bytes) / rate))} left"
                : "";
            var text = $"{_label}: {done}, {Output.Size((long)rate)}/s, {Output.Duration(_clock.Elapsed)}{left}";
            if (Output.IsLive)
            {
                Console.Error.Write("\r\u001b[2K" + text);
            }
            else
            {
                Output.Log(text);
            }
        }
    }

    public void Dispose()
    {
        lock (_lock)
        {
            _stopped = true;
            _timer.Dispose();
            if (Output.IsLive)
            {
                Console.Error.Write("\r\u001b[2K");
            }
        }
    }
}
