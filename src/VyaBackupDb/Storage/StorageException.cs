namespace VyaBackupDb.Storage;

/// <summary>
/// A storage backend failed (server error, network, permissions, host key). An <see cref="IOException"/>,
/// so operations treat it as any other I/O failure. The message is one line, names the location and
/// never holds a secret (what it quotes of the library's or server's message is redacted).
/// </summary>
/// <param name="wholeDestination">
/// The destination itself failed (cannot connect, login refused, no such bucket), not one key or
/// folder in it: every other key there would fail the same way.
/// </param>
public sealed class StorageException(string message, Exception? inner = null, bool wholeDestination = false)
    : IOException(Errors.Redaction.RedactOutside(message, inner), inner)
{
    public bool WholeDestination { get; } = wholeDestination;
}
