namespace VyaBackupDb.Errors;

/// <summary>Process exit codes. Stable: scripts depend on them; README documents them.</summary>
public enum ExitCode
{
    Success = 0,
    /// <summary>A backup or restore failed (dump tool error, server error, timeout, I/O error).</summary>
    Failed = 1,
    /// <summary>Bad command line or configuration; nothing was done.</summary>
    UsageOrConfig = 2,
    /// <summary>Some databases were backed up, at least one failed.</summary>
    PartialFailure = 3,
    /// <summary>A backup did not match its manifest or digest.</summary>
    VerificationFailed = 4,
    /// <summary>Another run holds the lock for this database.</summary>
    Locked = 5,
    /// <summary>An encrypted file could not be decrypted: wrong key, tampered or truncated encrypted file; no plaintext written.</summary>
    DecryptionFailed = 6,
    /// <summary>
    /// The credential vault could not be used: wrong passphrase, a changed, damaged or truncated
    /// vault file, no passphrase available, or no vault file.
    /// </summary>
    VaultError = 7,
    /// <summary>`status`: a backup is overdue (older than its instance's expected interval), or an instance has none.</summary>
    Overdue = 8,
    /// <summary>Interrupted (Ctrl+C / SIGTERM); nothing partial was left visible.</summary>
    Interrupted = 130,
}
