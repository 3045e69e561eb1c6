using System.Text;
using VyaBackupDb.Errors;

namespace VyaBackupDb.Cli;

/// <summary>A writer over a standard stream whose every write goes through <see cref="Guard"/>, which says what a failed one means.</summary>
internal abstract class GuardedWriter(TextWriter inner) : TextWriter
{
    public override Encoding Encoding => inner.Encoding;

    public override void Write(char value) => Guard(() => inner.Write(value));

    public override void Write(char[] buffer, int index, int count) => Guard(() => inner.Write(buffer, index, count));

    public override void Write(string? value) => Guard(() => inner.Write(value));

    public override void WriteLine(string? value) => Guard(() => inner.WriteLine(value));

    public override void Flush() => Guard(inner.Flush);

    protected abstract void Guard(Action write);
}

/// <summary>
/// Stdout (results, tables, --json) as a writer whose failure says it is the standard output's: closed (`>&-`)
/// or on a full disk (`>/dev/full`), .NET's own words ("Access to the path is denied", "No space left on
/// device") name no file. What the command did stands (a backup is stored); its report is lost: exit 1.
/// </summary>
internal sealed class StandardOutput(TextWriter inner) : GuardedWriter(inner)
{
    protected override void Guard(Action write)
    {
        try
        {
            write();
        }
        catch (Exception e) when (IoErrors.IsWriteFault(e) && !IoErrors.IsTooManyOpenFiles(e))
        {
            var reason = e is UnauthorizedAccessException ? "it is closed or not open for writing" : IoErrors.Tidy(IoErrors.WriteFaultReason(e));
            throw new OperationFailedException($"cannot write to the standard output: {reason}", e);
        }
    }
}

/// <summary>
/// Stderr (log lines, warnings, errors) as a writer that never fails the command: closed (`2>&-`), on a full disk
/// (a cron job's `2>>/var/log/...`), its lines are lost from the first failed write on, and the command goes on
/// as it would have: a prune that stopped at its first "deleted" line, or a restore that took the failed write for
/// its backup file's, did harm. The exit code still says how the run went; --log-file keeps its own copy.
/// </summary>
internal sealed class StandardError(TextWriter inner) : GuardedWriter(inner)
{
    private bool _lost;

    protected override void Guard(Action write)
    {
        if (_lost)
        {
            return;
        }
        try
        {
            write();
        }
        catch (Exception e) when (IoErrors.IsWriteFault(e))
        {
            _lost = true;
        }
    }
}
