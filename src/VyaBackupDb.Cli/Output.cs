using System.Diagnostics;
using System.Globalization;
using VyaBackupDb.Errors;

namespace VyaBackupDb.Cli;

/// <summary>
/// Console output: results on stdout, errors and progress on stderr. A live progress line only
/// when stderr is a terminal; plain log lines otherwise (cron, CI, pipes).
/// </summary>
internal static class Output
{
    public static bool IsTerminal { get; } = !Console.IsErrorRedirected;

    public static void Line(string text) => Console.Out.WriteLine(text);

    // Messages are ours; what they quote of servers and tools was redacted where it came in
    // (Redaction): redacting our own words here would make the mask an oracle.
    public static void Error(string message) => Console.Error.WriteLine($"vya-backupdb: error: {message}");

    public static void Warning(string message) => Console.Error.WriteLine($"vya-backupdb: warning: {message}");

    /// <summary>A timestamped log line (plain mode), to stderr so stdout stays for results.</summary>
    public static void Log(string text) =>
        Console.Error.WriteLine($"{DateTime.UtcNow.ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture)} {text}");

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
/// A progress line redrawn in place on a terminal (bytes, rate, elapsed), or a log line every
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
        var period = Output.IsTerminal ? TimeSpan.FromMilliseconds(250) : TimeSpan.FromSeconds(30);
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
            var text = $"{_label}: {done}, {Output.Size((long)(bytes / seconds))}/s, {Output.Duration(_clock.Elapsed)}";
            if (Output.IsTerminal)
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
            if (Output.IsTerminal)
            {
                Console.Error.Write("\r\u001b[2K");
            }
        }
    }
}
