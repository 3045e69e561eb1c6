namespace VyaBackupDb.Errors;

/// <summary>
/// The secrets this process has used (passwords as they are resolved, the vault passphrase), so
/// that text from outside (a dump tool's stderr, a server's or a library's message) is scrubbed of
/// them before it is shown. Only outside text: our own words never hold a secret, and masking
/// them would tell a reader the secret ("database" as a password turned "database 'x' does not
/// exist" into "*** 'x' does not exist"). Defence in depth: secrets are never put into messages.
/// </summary>
public static class Redaction
{
    public const string Mask = "***";

    /// <summary>Shorter values would mask ordinary words and digits everywhere.</summary>
    private const int MinimumLength = 3;

    private static readonly Lock Lock = new();
    private static string[] _secrets = [];

    public static void Remember(string? secret)
    {
        if (secret is null)
        {
            return;
        }
        // Also each line of a multi-line secret: a tool may echo only part of it.
        var parts = secret.Split('\n', '\r').Append(secret).Where(p => p.Length >= MinimumLength);
        lock (Lock)
        {
            _secrets = [.. _secrets.Union(parts, StringComparer.Ordinal).OrderByDescending(s => s.Length)];
        }
    }

    /// <summary>
    /// Outside <paramref name="text"/> with every remembered secret replaced by ***, wherever it
    /// occurs (also inside a word: a tool may echo it escaped, as in <c>"...\nsecond-line"</c>).
    /// </summary>
    public static string Redact(string text)
    {
        foreach (var secret in _secrets)
        {
            text = text.Replace(secret, Mask, StringComparison.Ordinal);
        }
        return text;
    }

    /// <summary>
    /// <paramref name="message"/> (ours) with the outside text it quotes redacted: the messages of
    /// <paramref name="inner"/> and its causes that are not ours (a server's, a driver's, an SSH or
    /// S3 library's), where <paramref name="message"/> holds them (whole, or line by line).
    /// </summary>
    public static string RedactOutside(string message, Exception? inner)
    {
        for (var e = inner; e is not null && _secrets.Length > 0; e = e.InnerException)
        {
            if (e is VyaException)
            {
                continue; // ours: built the same way, already scrubbed
            }
            foreach (var part in e.Message.Split('\n').Append(e.Message).Where(p => p.Trim().Length >= MinimumLength).Distinct())
            {
                if (message.Contains(part, StringComparison.Ordinal))
                {
                    message = message.Replace(part, Redact(part), StringComparison.Ordinal);
                }
            }
        }
        return message;
    }
}
