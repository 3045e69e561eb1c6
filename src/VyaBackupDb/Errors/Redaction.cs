namespace VyaBackupDb.Errors;

/// <summary>
/// The secrets this process has used (passwords as they are resolved, the vault passphrase), so
/// that text from outside (a dump tool's stderr, a server's message) is scrubbed of them before it
/// is shown. Defence in depth: secrets are never put into messages in the first place.
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

    /// <summary><paramref name="text"/> with every remembered secret replaced by ***.</summary>
    public static string Redact(string text)
    {
        foreach (var secret in _secrets)
        {
            text = text.Replace(secret, Mask, StringComparison.Ordinal);
        }
        return text;
    }
}
