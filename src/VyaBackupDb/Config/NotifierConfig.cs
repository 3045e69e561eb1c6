namespace VyaBackupDb.Config;

/// <summary>When a notifier sends its one message per run.</summary>
public enum NotifyOn
{
    /// <summary>Only when at least one backup of the run failed (the default).</summary>
    Failure,

    /// <summary>After every run.</summary>
    Always,
}

/// <summary>An entry of the config's <c>notify:</c> list.</summary>
/// <param name="Name">What warnings call it (<c>name:</c>, default "TYPE[INDEX]").</param>
public abstract record NotifierConfig(string Name, NotifyOn On, TimeSpan Timeout)
{
    public abstract string Type { get; }
}

/// <summary>An HTTP header a webhook sends; its value may be a secret (from the environment, a file or the vault).</summary>
public sealed record WebhookHeader(string Name, PasswordSource Value);

/// <summary>A JSON POST to <paramref name="Url"/>; retried <paramref name="Retries"/> times with exponential backoff.</summary>
/// <param name="Url">Treated as a secret (chat webhooks carry their token in the URL): never shown.</param>
public sealed record WebhookNotifierConfig(
    string Name, NotifyOn On, TimeSpan Timeout, PasswordSource Url, int Retries, IReadOnlyList<WebhookHeader> Headers)
    : NotifierConfig(Name, On, Timeout)
{
    public override string Type => "webhook";
}

/// <summary>A mail through an SMTP server (MailKit).</summary>
/// <param name="StartTls">STARTTLS required (the default; the mail is not sent without it) or not used.</param>
/// <param name="TlsFingerprint">
/// The server certificate's SHA-256 (64 hex digits, upper case, no colons): trusted instead of the
/// system's CAs (for a self-signed certificate); null means the usual chain validation.
/// </param>
public sealed record EmailNotifierConfig(
    string Name,
    NotifyOn On,
    TimeSpan Timeout,
    string Host,
    int Port,
    bool StartTls,
    string? TlsFingerprint,
    string From,
    IReadOnlyList<string> To,
    string? User,
    PasswordSource Password)
    : NotifierConfig(Name, On, Timeout)
{
    public override string Type => "email";
}
