namespace VyaBackupDb.Errors;

/// <summary>
/// Base of every expected failure. The message is one line, safe to print (never holds a secret:
/// what it quotes of <c>inner</c>, a server's or library's text, is redacted), and the exit code
/// says which class of failure it is.
/// </summary>
public abstract class VyaException(string message, ExitCode exitCode, Exception? inner = null)
    : Exception(Redaction.RedactOutside(message, inner), inner)
{
    public ExitCode ExitCode { get; } = exitCode;
}

/// <summary>Invalid configuration: the message names the file, line and key.</summary>
public sealed class ConfigException(string message) : VyaException(message, ExitCode.UsageOrConfig);

/// <summary>Invalid use of the command line (bad combination, unknown instance, bad file name).</summary>
public sealed class UsageException(string message) : VyaException(message, ExitCode.UsageOrConfig);

/// <summary>A backup or restore could not be completed.</summary>
public sealed class OperationFailedException(string message, Exception? inner = null)
    : VyaException(message, ExitCode.Failed, inner);

/// <summary>A backup does not match its manifest or digest, or a restored database does not match its backup.</summary>
public sealed class VerificationFailedException(string message, Exception? inner = null)
    : VyaException(message, ExitCode.VerificationFailed, inner);

/// <summary>Another run holds the lock for this instance and database.</summary>
public sealed class LockedException(string message) : VyaException(message, ExitCode.Locked);

/// <summary>The credential vault cannot be opened or written (wrong passphrase, changed or damaged file, no passphrase).</summary>
public sealed class VaultException(string message, Exception? inner = null) : VyaException(message, ExitCode.VaultError, inner);

/// <summary>
/// This host or the server could not do the work, whatever the backup holds: a temp file (in TMPDIR:
/// credential files, spools) could not be made or written, a client tool could not be started, a
/// restore could not create or lock its database. Never a fault of the backup: verify says it was
/// not checked and keeps its earlier record.
/// </summary>
public sealed class HostFaultException(string message, Exception? inner = null) : VyaException(message, ExitCode.Failed, inner);
