using System.Net;
using System.Net.Sockets;

namespace VyaBackupDb.Tests.Integration;

/// <summary>
/// A TCP proxy in front of a real server (S3, SFTP) that can be told to stop passing the
/// server's bytes on after a budget while keeping every connection open: a server that hangs
/// in the middle of sending an object, as a stuck load balancer or a wedged server does.
/// </summary>
public sealed class StallingProxy : IDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly int _upstreamPort;
    private readonly List<Socket> _sockets = [];
    private readonly CancellationTokenSource _stop = new();
    private long _budget = long.MaxValue;
    private long _uploadLimit = long.MaxValue;
    private int _uploadRate;

    public StallingProxy(int upstreamPort)
    {
        _upstreamPort = upstreamPort;
        _listener.Start();
        Port = ((IPEndPoint)_listener.LocalEndpoint).Port;
        _ = Task.Run(AcceptAsync);
    }

    public int Port { get; }

    /// <summary>From now on, the server's next <paramref name="bytes"/> (over all connections) pass, then nothing more.</summary>
    public void StallAfter(long bytes) => Interlocked.Exchange(ref _budget, bytes);

    /// <summary>
    /// A connection whose client has sent more than <paramref name="bytes"/> falls silent both ways (it stays open);
    /// the others, and new ones, pass: a link that hangs in the middle of an upload.
    /// </summary>
    public void StallEachConnectionAfterUpload(long bytes) => Interlocked.Exchange(ref _uploadLimit, bytes);

    /// <summary>From now on, what clients send passes at about <paramref name="bytesPerSecond"/> per connection: a slow link.</summary>
    public void ThrottleUploads(int bytesPerSecond) => Interlocked.Exchange(ref _uploadRate, bytesPerSecond);

    /// <summary>What the two directions of one connection share.</summary>
    private sealed class Link
    {
        public long Uploaded;
        public volatile bool Stalled;
    }

    private async Task AcceptAsync()
    {
        try
        {
            while (true)
            {
                var client = await _listener.AcceptSocketAsync(_stop.Token);
                var server = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                await server.ConnectAsync(IPAddress.Loopback, _upstreamPort, _stop.Token);
                lock (_sockets)
                {
                    _sockets.Add(client);
                    _sockets.Add(server);
                }
                var link = new Link();
                _ = PumpAsync(client, server, counted: false, link);
                _ = PumpAsync(server, client, counted: true, link);
            }
        }
        catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
        {
        }
    }

    private async Task PumpAsync(Socket from, Socket to, bool counted, Link link)
    {
        var buffer = new byte[16 * 1024];
        try
        {
            while (true)
            {
                var read = await from.ReceiveAsync(buffer, _stop.Token);
                if (read == 0)
                {
                    to.Shutdown(SocketShutdown.Send);
                    return;
                }
                if (!counted && (link.Uploaded += read) > Interlocked.Read(ref _uploadLimit))
                {
                    link.Stalled = true;
                }
                if (link.Stalled)
                {
                    await Task.Delay(Timeout.Infinite, _stop.Token);
                }
                var pass = read;
                if (counted)
                {
                    var left = Interlocked.Add(ref _budget, -read) + read;
                    pass = (int)Math.Clamp(left, 0, read);
                }
                if (pass > 0)
                {
                    await to.SendAsync(buffer.AsMemory(0, pass), _stop.Token);
                }
                if (!counted && Volatile.Read(ref _uploadRate) is > 0 and var rate)
                {
                    await Task.Delay(TimeSpan.FromSeconds((double)read / rate), _stop.Token);
                }
                if (pass < read)
                {
                    await Task.Delay(Timeout.Infinite, _stop.Token);    // stalled: the connection stays open, silent
                }
            }
        }
        catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
        {
        }
    }

    public void Dispose()
    {
        _stop.Cancel();
        _listener.Stop();
        lock (_sockets)
        {
            _sockets.ForEach(s => s.Dispose());
        }
        _stop.Dispose();
    }
}
