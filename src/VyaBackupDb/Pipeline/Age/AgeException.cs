using VyaBackupDb.Errors;

namespace VyaBackupDb.Pipeline.Age;

/// <summary>
/// An age file cannot be decrypted (wrong key, tampered, truncated, not an age file), or a key,
/// recipient or passphrase given to us is unusable. The message never holds a secret key or a
/// passphrase. Decryption failures exit with <see cref="ExitCode.DecryptionFailed"/>; malformed
/// keys given on the command line or in the config with <see cref="ExitCode.UsageOrConfig"/>.
/// </summary>
public sealed class AgeException(string message, ExitCode exitCode = ExitCode.DecryptionFailed)
    : VyaException(message, exitCode);
