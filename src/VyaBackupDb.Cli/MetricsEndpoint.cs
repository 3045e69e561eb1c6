using System.Globalization;
using System.Net;
using System.Text;
using VyaBackupDb.Errors;

namespace VyaBackupDb.Cli;

/// <summary>
/// `schedule --metrics-listen [HOST:]PORT`: GET /metrics answers with the Prometheus text that
/// <paramref name="render"/> gives at that moment. A bare port listens on 127.0.0.1 only; `*:PORT`
/// (or 0.0.0.0:PORT) on every address, for a pod scraped from outside.
/// </summary>
internal sealed class MetricsEndpoint(HttpListener listener, Func<string> render) : IDisposable
{
    public static MetricsEndpoint Start(string listen, Func<string> render)
    {
        var (host, port) = Parse(listen);
        var listener = new HttpListener();
        listener.Prefixes.Add($"http://{host}:{port.ToString(CultureInfo.InvariantCulture)}/metrics/");
        try
        {
            listener.Start();
        }
        catch (HttpListenerException e)
        {
            listener.Close();
            throw new UsageException($"--metrics-listen {listen}: cannot listen there: {e.Message}");
        }
        var endpoint = new MetricsEndpoint(listener, render);
        _ = endpoint.ServeAsync();
        return endpoint;
    }

    /// <summary>"9469" → 127.0.0.1; "*:9469" or "0.0.0.0:9469" → every address; "HOST:9469".</summary>
    private static (string Host, int Port) Parse(string listen)
    {
        var colon = listen.LastIndexOf(':');
        var host = colon < 0 ? "127.0.0.1" : listen[..colon];
        var portText = colon < 0 ? listen : listen[(colon + 1)..];
        if (!int.TryParse(portText, NumberStyles.None, CultureInfo.InvariantCulture, out var port) || port is < 1 or > 65535 || host.Length == 0)
        {
            throw new UsageException($"--metrics-listen {listen}: expected PORT or HOST:PORT (e.g. 9469, 127.0.0.1:9469, *:9469)");
        }
        return (host is "0.0.0.0" or "*" or "+" ? "*" : host, port);
    }

    private async Task ServeAsync()
    {
        while (listener.IsListening)
        {
            HttpListenerContext context;
            try
            {
                context = await listener.GetContextAsync().ConfigureAwait(false);
            }
            catch (Exception e) when (e is HttpListenerException or ObjectDisposedException or InvalidOperationException)
            {
                return;
            }
            try
            {
                var response = context.Response;
                if (context.Request.HttpMethod is not ("GET" or "HEAD") || context.Request.Url?.AbsolutePath.TrimEnd('/') != "/metrics")
                {
                    response.StatusCode = context.Request.HttpMethod is "GET" or "HEAD" ? 404 : 405;
                    response.Close();
                    continue;
                }
                var body = Encoding.UTF8.GetBytes(render());
                response.ContentType = "text/plain; version=0.0.4; charset=utf-8";
                response.ContentLength64 = body.Length;
                if (context.Request.HttpMethod == "GET")
                {
                    await response.OutputStream.WriteAsync(body).ConfigureAwait(false);
                }
                response.Close();
            }
            catch (Exception e) when (e is HttpListenerException or IOException or ObjectDisposedException or InvalidOperationException)
            {
                // The scraper went away: nothing to tell it.
            }
        }
    }

    public void Dispose() => listener.Close();
}
