using System.Net.Sockets;
using Npgsql;

namespace VyaBackupDb.Engines.Postgres;

/// <summary>What a failed command on a COPY connection tells the operator.</summary>
internal static class PostgresFailure
{
    /// <summary>
    /// The server's own message when it sent one (one line); else what happened to the connection. A session
    /// ended while the server was blocked writing to us closes without a message, and the driver
    /// says only "Exception while reading from stream".
    /// </summary>
    public static string Describe(Exception e) => e switch
    {
        // Its text without the driver's appendix ("DETAIL: Detail redacted ... connection string", on lines of their own).
        PostgresException p => p.MessageText,
        NpgsqlException when e.GetBaseException() is SocketException socket =>
            $"the connection to the server broke ({socket.Message})",
        NpgsqlException when e.GetBaseException() is EndOfStreamException or IOException =>
            "the server closed the connection in the middle of a command (the session was terminated or the server stopped)",
        NpgsqlException when e.GetBaseException() is TimeoutException =>
            "the server did not answer in time",
        _ => e.Message,
    };
}
