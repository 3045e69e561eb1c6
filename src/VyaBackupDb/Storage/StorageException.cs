namespace VyaBackupDb.Storage;

/// <summary>
/// A storage backend failed (server error, network, permissions, host key). An <see cref="IOException"/>,
/// so operations treat it as any other I/O failure. The message is one line, names the location and
/// never holds a secret (what it quotes of the library's or server's message is redacted).
/// </summary>
public sealed class StorageException(string message, Exception? inner = null)
    : IOException(Errors.Redaction.RedactOutside(message, inner), inner);
