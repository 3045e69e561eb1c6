using System.Globalization;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using MailKit.Net.Smtp;
using MailKit.Security;
using MimeKit;
using VyaBackupDb.Config;
using VyaBackupDb.Errors;

namespace VyaBackupDb.Reporting;

/// <summary>
/// Sends a run's one message to each notifier of the config that wants it (all at once). A notifier
/// that fails is a warning (its name and why, never its URL, headers or password): it never changes
/// the run's outcome.
/// </summary>
public static class Notifiers
{
    /// <summary>The first retry of a webhook waits this long, each next one twice as long (tests shorten it).</summary>
    internal static TimeSpan WebhookBackoff { get; set; } = TimeSpan.FromSeconds(1);

    private static readonly TimeSpan MaxBackoff = TimeSpan.FromSeconds(60);

    /// <returns>How many notifiers were sent to successfully.</returns>
    /// <param name="whenCancelled">Why a notifier still sending when <paramref name="cancellationToken"/> fires gave up (its warning says it).</param>
    public static async Task<int> SendAsync(
        IReadOnlyList<NotifierConfig> notifiers, RunNotification message, Action<string> warning, string whenCancelled, CancellationToken cancellationToken)
    {
        var sends = notifiers.Where(n => message.Wanted(n.On)).Select(async notifier =>
        {
            try
            {
                await (notifier switch
                {
                    WebhookNotifierConfig webhook => SendWebhookAsync(webhook, message, cancellationToken),
                    EmailNotifierConfig email => SendEmailAsync(email, message, cancellationToken),
                    _ => throw new ArgumentOutOfRangeException(nameof(notifiers)),
                }).ConfigureAwait(false);
                return true;
            }
            catch (Exception e)
            {
                var why = e is OperationCanceledException && cancellationToken.IsCancellationRequested ? whenCancelled : Describe(e);
                warning($"notifier '{notifier.Name}' ({notifier.Type}) could not send the run's message: {why}");
                return false;
            }
        }).ToList();
        var sent = await Task.WhenAll(sends).ConfigureAwait(false);
        return sent.Count(s => s);
    }

    /// <summary>
    /// One line: ours as is; a library's (SMTP, TLS) redacted, with its cause when it adds something
    /// (rather than its "see inner exception").
    /// </summary>
    private static string Describe(Exception e)
    {
        if (e is VyaException)
        {
            return e.Message;
        }
        var text = FirstLine(e.Message);
        if (e.InnerException is { } inner && !string.IsNullOrWhiteSpace(inner.Message) && !text.Contains(FirstLine(inner.Message), StringComparison.Ordinal))
        {
            var seeInner = text.IndexOf(", see inner exception", StringComparison.OrdinalIgnoreCase);
            text = (seeInner >= 0 ? text[..seeInner] : text) + ": " + FirstLine(inner.Message);
        }
        return Redaction.Redact(text);
    }

    private static string FirstLine(string message) => message.Split('\n')[0].Trim().TrimEnd('.');

    /// <summary>
    /// Why a webhook request failed, in our words: the library's text names the host and port (and may
    /// hold more of the URL, which is a secret), so only the kind of failure is told, and the cause of a
    /// TLS failure when it holds no part of <paramref name="url"/>.
    /// </summary>
    private static string DescribeWebhookFailure(HttpRequestException e, Uri url)
    {
        var socket = e.InnerException as System.Net.Sockets.SocketException;
        var problem = e.HttpRequestError switch
        {
            HttpRequestError.NameResolutionError => "its host name could not be resolved",
            HttpRequestError.ConnectionError when socket?.SocketErrorCode == System.Net.Sockets.SocketError.ConnectionRefused => "the connection was refused",
            HttpRequestError.ConnectionError when socket?.SocketErrorCode == System.Net.Sockets.SocketError.TimedOut => "the connection timed out",
            HttpRequestError.ConnectionError when socket?.SocketErrorCode is System.Net.Sockets.SocketError.HostUnreachable
                or System.Net.Sockets.SocketError.NetworkUnreachable => "its host cannot be reached",
            HttpRequestError.ConnectionError => "the connection failed",
            HttpRequestError.SecureConnectionError => "the TLS connection could not be established",
            HttpRequestError.ResponseEnded => "the receiver closed the connection before it answered",
            HttpRequestError.InvalidResponse or HttpRequestError.HttpProtocolError => "the receiver's answer is not valid HTTP",
            HttpRequestError.ProxyTunnelError => "the proxy refused the connection",
            _ => "the request failed",
        };
        if (e.HttpRequestError == HttpRequestError.SecureConnectionError && e.InnerException?.Message is { Length: > 0 } cause)
        {
            cause = FirstLine(cause);
            string[] parts = [url.Host, url.Authority, url.AbsolutePath.Trim('/'), url.Query.TrimStart('?'), url.UserInfo];
            if (!parts.Any(p => p.Length > 0 && cause.Contains(p, StringComparison.OrdinalIgnoreCase)))
            {
                problem += $" ({Redaction.Redact(cause)})";
            }
        }
        return problem;
    }

    /// <summary>POSTs the JSON body; retries network errors, timeouts, 408, 429 and 5xx with exponential backoff.</summary>
    private static async Task SendWebhookAsync(WebhookNotifierConfig config, RunNotification message, CancellationToken cancellationToken)
    {
        var url = config.Url.Resolve() ?? throw new ConfigException($"notifier '{config.Name}': the webhook URL is empty");
        if (!ConfigLoader.IsHttpUrl(url))
        {
            throw new ConfigException($"notifier '{config.Name}': its url is not an http:// or https:// URL");
        }
        var headers = config.Headers.Select(h => (h.Name, Value: h.Value.Resolve() ?? "")).ToList();
        if (headers.FirstOrDefault(h => h.Value.Any(char.IsControl)) is { Name: { } broken })
        {
            // Sent as is, a line break would end the header and start another the config does not name.
            throw new ConfigException($"notifier '{config.Name}': the value of header {broken} holds a line break or another control character");
        }
        var body = message.ToJson();
        // A redirect would re-send the body (or drop it) to a place the config does not name.
        using var handler = new SocketsHttpHandler { AllowAutoRedirect = false, ConnectTimeout = config.Timeout };
        using var client = new HttpClient(handler) { Timeout = Timeout.InfiniteTimeSpan };
        var delay = WebhookBackoff;
        for (var attempt = 0; ; attempt++)
        {
            string problem;
            using (var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken))
            {
                timeout.CancelAfter(config.Timeout);
                using var request = new HttpRequestMessage(HttpMethod.Post, url) { Content = new ByteArrayContent(body) };
                request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/json") { CharSet = "utf-8" };
                request.Headers.UserAgent.Add(new ProductInfoHeaderValue("vya-backupdb", ToolInfo.Version));
                foreach (var (name, value) in headers)
                {
                    if (!request.Headers.TryAddWithoutValidation(name, value))
                    {
                        request.Content.Headers.TryAddWithoutValidation(name, value);
                    }
                }
                try
                {
                    using var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, timeout.Token).ConfigureAwait(false);
                    if (response.IsSuccessStatusCode)
                    {
                        return;
                    }
                    var code = (int)response.StatusCode;
                    problem = string.Create(CultureInfo.InvariantCulture, $"HTTP {code} {response.ReasonPhrase}");
                    if (code is not (408 or 429) && code < 500)
                    {
                        // The receiver refused this body (or the URL is wrong): sending it again changes nothing.
                        throw new OperationFailedException($"the webhook answered {problem}");
                    }
                }
                catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
                {
                    problem = $"no answer in {config.Timeout.TotalSeconds:0} s (timeout_seconds)";
                }
                catch (HttpRequestException e)
                {
                    problem = DescribeWebhookFailure(e, new Uri(url));
                }
            }
            if (attempt >= config.Retries)
            {
                throw new OperationFailedException(
                    $"{problem} (after {attempt + 1} attempt{(attempt == 0 ? "" : "s")})");
            }
            await Task.Delay(delay, cancellationToken).ConfigureAwait(false);
            delay = delay * 2 > MaxBackoff ? MaxBackoff : delay * 2;
        }
    }

    private static async Task SendEmailAsync(EmailNotifierConfig config, RunNotification message, CancellationToken cancellationToken)
    {
        var mail = EmailMessage(config, message);
        using var client = new SmtpClient { Timeout = (int)config.Timeout.TotalMilliseconds };
        if (config.TlsFingerprint is { } pinned)
        {
            // A pinned certificate (self-signed, or a private CA's) is trusted by its digest alone.
            client.CheckCertificateRevocation = false;
            client.ServerCertificateValidationCallback = (_, certificate, _, _) => certificate is not null && Matches(certificate, pinned);
        }
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(config.Timeout);
        try
        {
            await client.ConnectAsync(config.Host, config.Port, config.StartTls ? SecureSocketOptions.StartTls : SecureSocketOptions.None, timeout.Token)
                .ConfigureAwait(false);
            if (config.User is { } user)
            {
                await client.AuthenticateAsync(user, config.Password.Resolve() ?? "", timeout.Token).ConfigureAwait(false);
            }
            await client.SendAsync(mail, timeout.Token).ConfigureAwait(false);
            await client.DisconnectAsync(quit: true, timeout.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            throw new OperationFailedException($"the SMTP server {config.Host}:{config.Port} did not answer in {config.Timeout.TotalSeconds:0} s (timeout_seconds)");
        }
        catch (SslHandshakeException e)
        {
            throw new OperationFailedException(config.TlsFingerprint is null
                ? $"the SMTP server {config.Host}:{config.Port}'s TLS certificate is not trusted ({Describe(e)}); a self-signed one can be pinned with tls_fingerprint"
                : $"the SMTP server {config.Host}:{config.Port}'s TLS certificate does not match tls_fingerprint");
        }
        catch (AuthenticationException)
        {
            throw new OperationFailedException($"the SMTP server {config.Host}:{config.Port} refused the login of user '{config.User}'");
        }
        catch (Exception e) when (e is SmtpCommandException or SmtpProtocolException or NotSupportedException or IOException
            or System.Net.Sockets.SocketException or MailKit.ServiceNotConnectedException)
        {
            throw new OperationFailedException($"SMTP {config.Host}:{config.Port}: {Describe(e)}");
        }
    }

    private static bool Matches(X509Certificate certificate, string pinnedHex) =>
        CryptographicOperations.FixedTimeEquals(SHA256.HashData(certificate.GetRawCertData()), Convert.FromHexString(pinnedHex));

    /// <summary>The mail: a subject that says what failed, and one line per database in a plain-text body.</summary>
    internal static MimeMessage EmailMessage(EmailNotifierConfig config, RunNotification message)
    {
        var mail = new MimeMessage();
        mail.From.Add(MailboxAddress.Parse(config.From));
        foreach (var to in config.To)
        {
            mail.To.Add(MailboxAddress.Parse(to));
        }
        var failed = message.Results.Where(r => r.Status != "ok").ToList();
        mail.Subject = message.Status switch
        {
            "ok" => $"[vya-backupdb] {message.Host}: {message.Succeeded} backups OK",
            // The backups went well, a later step (verify, prune) did not: the body's first line says which.
            _ when message.Failed == 0 && message.Succeeded > 0 => $"[vya-backupdb] {message.Host}: {message.Succeeded} backups OK, but the run FAILED",
            _ => $"[vya-backupdb] {message.Host}: {(message.Failed == 0 ? "nothing was backed up" : $"{message.Failed} backup{(message.Failed == 1 ? "" : "s")} FAILED")}"
                + (failed.Count > 0 ? $" ({string.Join(", ", failed.Take(3).Select(RunNotification.Label))}{(failed.Count > 3 ? ", ..." : "")})" : ""),
        };
        var body = new StringBuilder();
        body.AppendLine(CultureInfo.InvariantCulture, $"{message.Text}.");
        body.AppendLine(CultureInfo.InvariantCulture,
            $"Run on {message.Host}, {message.StartedUtc:yyyy-MM-dd HH:mm:ss} to {message.FinishedUtc:HH:mm:ss} UTC ({message.DurationSeconds:0.0} s), exit code {message.ExitCode}.");
        body.AppendLine();
        foreach (var item in failed)
        {
            body.AppendLine(CultureInfo.InvariantCulture, $"{item.Status.ToUpperInvariant().Replace('_', ' '),-8}{RunNotification.Label(item)}: {item.Error}");
        }
        foreach (var item in message.Results.Where(r => r.Status == "ok"))
        {
            body.AppendLine(CultureInfo.InvariantCulture,
                $"{"ok",-8}{RunNotification.Label(item)}: {item.Bytes} bytes in {item.DurationSeconds:0.0} s -> {item.File}");
        }
        mail.Body = new TextPart("plain") { Text = body.ToString() };
        return mail;
    }

    /// <summary>SHA-256 of a certificate as tls_fingerprint takes it (for docs and tests).</summary>
    public static string Fingerprint(X509Certificate2 certificate) => Convert.ToHexString(SHA256.HashData(certificate.RawData));
}
