using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;

namespace VyaBackupDb.Tests.Integration;

/// <summary>An HTTP endpoint on loopback that records each request and answers with the next status of a script (then 200).</summary>
public sealed class WebhookSink : IDisposable
{
    private readonly HttpListener _listener = new();
    private readonly Queue<int> _statuses;
    private readonly Task _loop;
    private readonly CancellationTokenSource _closing = new();

    public sealed record Request(DateTimeOffset At, string Method, string Path, string ContentType, IReadOnlyDictionary<string, string> Headers, byte[] Body);

    public List<Request> Requests { get; } = [];

    /// <summary>The URL to post to (its last segment plays the token a chat webhook hides in its URL).</summary>
    public string Url { get; }

    /// <summary>How long it holds each request (recorded at once) before it answers: a receiver that hangs.</summary>
    public TimeSpan AnswerAfter { get; init; }

    public WebhookSink(string pathToken, params int[] statuses)
    {
        _statuses = new Queue<int>(statuses);
        var port = FreePort();
        Url = $"http://127.0.0.1:{port}/hooks/{pathToken}";
        _listener.Prefixes.Add($"http://127.0.0.1:{port}/");
        _listener.Start();
        _loop = Task.Run(ServeAsync);
    }

    private async Task ServeAsync()
    {
        while (_listener.IsListening)
        {
            HttpListenerContext context;
            try
            {
                context = await _listener.GetContextAsync();
            }
            catch (Exception e) when (e is HttpListenerException or ObjectDisposedException or InvalidOperationException)
            {
                return;
            }
            using var body = new MemoryStream();
            await context.Request.InputStream.CopyToAsync(body);
            lock (Requests)
            {
                Requests.Add(new Request(
                    DateTimeOffset.UtcNow,
                    context.Request.HttpMethod,
                    context.Request.Url!.AbsolutePath,
                    context.Request.ContentType ?? "",
                    context.Request.Headers.AllKeys.ToDictionary(k => k!, k => context.Request.Headers[k]!, StringComparer.OrdinalIgnoreCase),
                    body.ToArray()));
                context.Response.StatusCode = _statuses.TryDequeue(out var status) ? status : 200;
            }
            if (AnswerAfter > TimeSpan.Zero)
            {
                try
                {
                    await Task.Delay(AnswerAfter, _closing.Token);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
            }
            context.Response.Close();
        }
    }

    public static int FreePort()
    {
        using var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        return ((IPEndPoint)probe.LocalEndpoint).Port;
    }

    public void Dispose()
    {
        _closing.Cancel();
        _listener.Stop();
        _listener.Close();
        _loop.Wait(TimeSpan.FromSeconds(5));
        _closing.Dispose();
    }
}

/// <summary>
/// A small SMTP server on loopback, enough for MailKit: EHLO, STARTTLS (a self-signed certificate
/// made here), AUTH PLAIN and LOGIN (offered only after STARTTLS, as real servers do), MAIL, RCPT,
/// DATA, RSET, NOOP, QUIT. Records what it was told.
/// </summary>
public sealed class SmtpSink : IDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly Task _loop;
    private readonly X509Certificate2 _certificate;

    public int Port { get; }

    /// <summary>SHA-256 of the certificate's DER, upper-case hex (what tls_fingerprint takes).</summary>
    public string Fingerprint { get; }

    public List<string> Commands { get; } = [];

    public List<string> Messages { get; } = [];

    public List<(string User, string Password)> Logins { get; } = [];

    /// <summary>Whether every AUTH came after the connection was encrypted.</summary>
    public bool AuthOnlyUnderTls { get; private set; } = true;

    public SmtpSink()
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=smtp-sink.test", key, HashAlgorithmName.SHA256);
        var names = new SubjectAlternativeNameBuilder();
        names.AddIpAddress(IPAddress.Loopback);
        names.AddDnsName("localhost");
        request.CertificateExtensions.Add(names.Build());
        using var made = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(1));
        // Through PKCS#12 so that the private key is usable by SslStream on every platform.
        _certificate = X509CertificateLoader.LoadPkcs12(made.Export(X509ContentType.Pfx), null);
        Fingerprint = Convert.ToHexString(SHA256.HashData(_certificate.RawData));
        _listener.Start();
        Port = ((IPEndPoint)_listener.LocalEndpoint).Port;
        _loop = Task.Run(AcceptAsync);
    }

    private async Task AcceptAsync()
    {
        while (true)
        {
            TcpClient client;
            try
            {
                client = await _listener.AcceptTcpClientAsync();
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException or InvalidOperationException)
            {
                return;
            }
            _ = Task.Run(async () =>
            {
                using (client)
                {
                    try
                    {
                        await ServeAsync(client.GetStream());
                    }
                    catch (Exception e) when (e is IOException or System.Security.Authentication.AuthenticationException or ObjectDisposedException)
                    {
                        // The client went away (e.g. it refused our certificate).
                    }
                }
            });
        }
    }

    private async Task ServeAsync(Stream network)
    {
        Stream stream = network;
        var tls = false;
        async Task Say(string line) => await stream.WriteAsync(Encoding.ASCII.GetBytes(line + "\r\n"));
        await Say("220 smtp-sink.test ESMTP ready");
        while (await ReadLineAsync(stream) is { } line)
        {
            lock (Commands)
            {
                Commands.Add(line.StartsWith("AUTH", StringComparison.OrdinalIgnoreCase) ? line.Split(' ')[0] + " " + line.Split(' ').ElementAtOrDefault(1) : line);
            }
            var verb = line.Split(' ')[0].ToUpperInvariant();
            switch (verb)
            {
                case "EHLO" or "HELO":
                    await Say(tls ? "250-smtp-sink.test\r\n250 AUTH PLAIN LOGIN" : "250-smtp-sink.test\r\n250 STARTTLS");
                    break;
                case "STARTTLS":
                    await Say("220 go ahead");
                    var ssl = new SslStream(network, leaveInnerStreamOpen: true);
                    await ssl.AuthenticateAsServerAsync(_certificate);
                    stream = ssl;
                    tls = true;
                    break;
                case "AUTH":
                    AuthOnlyUnderTls &= tls;
                    var parts = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
                    if (parts[1].Equals("PLAIN", StringComparison.OrdinalIgnoreCase))
                    {
                        var initial = parts.Length > 2 ? parts[2] : null;
                        if (initial is null)
                        {
                            await Say("334 ");
                            initial = await ReadLineAsync(stream) ?? "";
                        }
                        var fields = Encoding.UTF8.GetString(Convert.FromBase64String(initial)).Split('\0');
                        Logins.Add((fields[1], fields[2]));
                    }
                    else
                    {
                        await Say("334 VXNlcm5hbWU6");
                        var user = Encoding.UTF8.GetString(Convert.FromBase64String(await ReadLineAsync(stream) ?? ""));
                        await Say("334 UGFzc3dvcmQ6");
                        var password = Encoding.UTF8.GetString(Convert.FromBase64String(await ReadLineAsync(stream) ?? ""));
                        Logins.Add((user, password));
                    }
                    await Say("235 2.7.0 authenticated");
                    break;
                case "MAIL" or "RCPT" or "RSET" or "NOOP":
                    await Say("250 2.0.0 ok");
                    break;
                case "DATA":
                    await Say("354 end with <CRLF>.<CRLF>");
                    var message = new StringBuilder();
                    while (await ReadLineAsync(stream) is { } data && data != ".")
                    {
                        message.Append(data.StartsWith('.') ? data[1..] : data).Append('\n');
                    }
                    lock (Messages)
                    {
                        Messages.Add(message.ToString());
                    }
                    await Say("250 2.0.0 queued");
                    break;
                case "QUIT":
                    await Say("221 2.0.0 bye");
                    return;
                default:
                    await Say("502 5.5.2 not implemented");
                    break;
            }
        }
    }

    /// <summary>One line without its CRLF; null at the end of the stream. Byte by byte: nothing is read past the line (STARTTLS follows it).</summary>
    private static async Task<string?> ReadLineAsync(Stream stream)
    {
        var line = new List<byte>();
        var one = new byte[1];
        while (true)
        {
            if (await stream.ReadAsync(one) == 0)
            {
                return line.Count == 0 ? null : Encoding.UTF8.GetString([.. line]);
            }
            if (one[0] == '\n')
            {
                return Encoding.UTF8.GetString([.. line]).TrimEnd('\r');
            }
            line.Add(one[0]);
        }
    }

    public void Dispose()
    {
        _listener.Stop();
        _loop.Wait(TimeSpan.FromSeconds(5));
        _certificate.Dispose();
    }
}
