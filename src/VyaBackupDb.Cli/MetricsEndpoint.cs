using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using VyaBackupDb.Errors;

namespace VyaBackupDb.Cli;

/// <summary>
/// `schedule --metrics-listen [HOST:]PORT`: GET /metrics answers with the Prometheus text that
/// <paramref name="render"/> gives at that moment. A bare port listens on 127.0.0.1 only; `*:PORT`
/// (or 0.0.0.0:PORT) on every address, for a pod scraped from outside; `[::1]:PORT` on an IPv6 address.
/// A plain socket rather than HttpListener: HttpListener serves only requests whose Host header
/// spells the host as the prefix does (a scrape of localhost:PORT got 404 from 127.0.0.1:PORT),
/// and takes no IPv6 literal. Whatever reaches the socket is answered; one request per connection.
/// </summary>
internal sealed class MetricsEndpoint : IDisposable
{
    private static readonly TimeSpan RequestTimeout = TimeSpan.FromSeconds(10);
    private const int MaxRequestBytes = 16 * 1024;

    private readonly List<TcpListener> _listeners;
    private readonly Func<string> _render;
    private readonly CancellationTokenSource _closing = new();

    private MetricsEndpoint(List<TcpListener> listeners, Func<string> render)
    {
        _listeners = listeners;
        _render = render;
    }

    public static MetricsEndpoint Start(string listen, Func<string> render)
    {
        var listeners = new List<TcpListener>();
        SocketException? refused = null;
        foreach (var address in Addresses(listen, out var port))
        {
            var listener = new TcpListener(address, port);
            if (address.Equals(IPAddress.IPv6Any))
            {
                // Every address, IPv4 ones included.
                listener.Server.DualMode = true;
            }
            try
            {
                listener.Start();
                listeners.Add(listener);
            }
            catch (SocketException e) when (e.SocketErrorCode is SocketError.AddressFamilyNotSupported or SocketError.AddressNotAvailable)
            {
                // A name's address the host cannot have (localhost's ::1 where IPv6 is off): the others serve.
                listener.Dispose();
                refused ??= e;
            }
            catch (SocketException e)
            {
                listener.Dispose();
                listeners.ForEach(l => l.Dispose());
                throw new UsageException($"--metrics-listen {listen}: cannot listen there: {e.Message.TrimEnd('.')}");
            }
        }
        if (listeners.Count == 0)
        {
            throw new UsageException($"--metrics-listen {listen}: cannot listen there: {refused?.Message.TrimEnd('.')}");
        }
        var endpoint = new MetricsEndpoint(listeners, render);
        foreach (var listener in listeners)
        {
            _ = endpoint.AcceptAsync(listener);
        }
        return endpoint;
    }

    /// <summary>"9469" → 127.0.0.1; "*:9469", "+:9469" or "0.0.0.0:9469" → every address; "[::1]:9469"; "HOST:9469" → the addresses HOST has.</summary>
    private static List<IPAddress> Addresses(string listen, out int port)
    {
        var colon = listen.LastIndexOf(':');
        var host = colon < 0 ? "127.0.0.1" : listen[..colon];
        var portText = colon < 0 ? listen : listen[(colon + 1)..];
        if (host.StartsWith('[') && host.EndsWith(']'))
        {
            host = host[1..^1];
        }
        if (!int.TryParse(portText, NumberStyles.None, CultureInfo.InvariantCulture, out port) || port is < 1 or > 65535 || host.Length == 0
            || (host.Contains(':', StringComparison.Ordinal) && !listen.StartsWith('[')))
        {
            throw new UsageException($"--metrics-listen {listen}: expected PORT or HOST:PORT (e.g. 9469, 127.0.0.1:9469, *:9469, [::1]:9469)");
        }
        if (host is "*" or "+" or "0.0.0.0" or "::")
        {
            return Socket.OSSupportsIPv6 ? [IPAddress.IPv6Any] : [IPAddress.Any];
        }
        if (IPAddress.TryParse(host, out var address))
        {
            return [address];
        }
        try
        {
            var addresses = Dns.GetHostAddresses(host).Distinct().ToList();
            return addresses.Count > 0 ? addresses : throw new UsageException($"--metrics-listen {listen}: {host} has no address");
        }
        catch (SocketException e)
        {
            throw new UsageException($"--metrics-listen {listen}: {host} cannot be resolved: {e.Message.TrimEnd('.')}");
        }
    }

    private async Task AcceptAsync(TcpListener listener)
    {
        while (!_closing.IsCancellationRequested)
        {
            TcpClient client;
            try
            {
                client = await listener.AcceptTcpClientAsync(_closing.Token).ConfigureAwait(false);
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException or OperationCanceledException)
            {
                return;
            }
            _ = ServeAsync(client);
        }
    }

    /// <summary>Reads one request (its line and headers) and answers it; then closes the connection.</summary>
    private async Task ServeAsync(TcpClient client)
    {
        using (client)
        using (var timeout = CancellationTokenSource.CreateLinkedTokenSource(_closing.Token))
        {
            timeout.CancelAfter(RequestTimeout);
            try
            {
                var stream = client.GetStream();
                var requestLine = await ReadHeadAsync(stream, timeout.Token).ConfigureAwait(false);
                if (requestLine is null)
                {
                    return;
                }
                var parts = requestLine.Split(' ');
                var method = parts[0];
                var target = parts.Length > 1 ? parts[1] : "";
                if (Uri.TryCreate(target, UriKind.Absolute, out var absolute) && absolute.Scheme is "http" or "https")
                {
                    // The absolute form (GET http://host/metrics), as a proxy sends it.
                    target = absolute.PathAndQuery;
                }
                var path = target.Split('?')[0].TrimEnd('/');
                var (status, body) = method is not ("GET" or "HEAD") ? ("405 Method Not Allowed", "")
                    : path != "/metrics" ? ("404 Not Found", "")
                    : ("200 OK", _render());
                var content = Encoding.UTF8.GetBytes(body);
                var head = $"HTTP/1.1 {status}\r\n"
                    + (status.StartsWith("405", StringComparison.Ordinal) ? "Allow: GET, HEAD\r\n" : "")
                    + "Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
                    + string.Create(CultureInfo.InvariantCulture, $"Content-Length: {content.Length}\r\n")
                    + "Connection: close\r\n\r\n";
                await stream.WriteAsync(Encoding.ASCII.GetBytes(head), timeout.Token).ConfigureAwait(false);
                if (method != "HEAD")
                {
                    await stream.WriteAsync(content, timeout.Token).ConfigureAwait(false);
                }
            }
            catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException or OperationCanceledException)
            {
                // The scraper went away or was too slow: nothing to tell it.
            }
        }
    }

    /// <summary>The request line, once the whole head (up to the empty line) has been read; null when the client sent none.</summary>
    private static async Task<string?> ReadHeadAsync(NetworkStream stream, CancellationToken cancellationToken)
    {
        var head = new List<byte>();
        var buffer = new byte[1024];
        while (head.Count < MaxRequestBytes)
        {
            var read = await stream.ReadAsync(buffer, cancellationToken).ConfigureAwait(false);
            if (read == 0)
            {
                break;
            }
            head.AddRange(buffer.AsSpan(0, read));
            var text = Encoding.ASCII.GetString([.. head]);
            if (text.Contains("\r\n\r\n", StringComparison.Ordinal) || text.Contains("\n\n", StringComparison.Ordinal))
            {
                return text.Split('\n')[0].TrimEnd('\r');
            }
        }
        return null;
    }

    public void Dispose()
    {
        _closing.Cancel();
        foreach (var listener in _listeners)
        {
            listener.Dispose();
        }
    }
}
