using VyaBackupDb.Errors;

namespace VyaBackupDb.Engines;

/// <summary>
/// A plain SQL dump cannot be restored under a new name safely: it holds more than one database,
/// or a construct the statement filter refuses to guess about. Nothing after the offending
/// statement has been written to the database client.
/// </summary>
public sealed class DumpFilterException(string message) : VyaException(message, ExitCode.Failed);
