using System.Net;
using System.Net.Sockets;
using System.Text;

namespace VyaBackupDb.Tests.Integration;

/// <summary>
/// A TCP proxy in front of a real server that resets each connection whose client sends
/// <c>on</c> after it has sent <c>after</c> (e.g. the COMMIT of a transaction that renamed a
/// database; with no <c>after</c>, any request holding <c>on</c>): either before passing that
/// message on (the server never gets it) or once the server has answered it, without passing
/// that answer back (the client never learns it ran). Every other connection passes untouched.
/// </summary>
public sealed class CuttingProxy : IDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly int _upstreamPort;
    private readonly byte[]? _after;
    private readonly byte[] _on;
    private readonly bool _serverGetsIt;
    private readonly List<Socket> _sockets = [];
    private readonly CancellationTokenSource _stop = new();
    private readonly byte[] _startingWith;
    private readonly int _maxCuts;
    private int _cuts;

    /// <param name="startingWith">Only a message that starts with this is cut (an HTTP method: "PUT ").</param>
    /// <param name="maxCuts">Cut this many connections, then let everything pass (a fault that happens once).</param>
    public CuttingProxy(int upstreamPort, string? after, string on, bool serverGetsIt, string startingWith = "", int maxCuts = int.MaxValue)
    {
        _upstreamPort = upstreamPort;
        _startingWith = Encoding.UTF8.GetBytes(startingWith);
        _maxCuts = maxCuts;
        _after = after is null ? null : Encoding.UTF8.GetBytes(after);
        _on = Encoding.UTF8.GetBytes(on);
        _serverGetsIt = serverGetsIt;
        _listener.Start();
        Port = ((IPEndPoint)_listener.LocalEndpoint).Port;
        _ = Task.Run(AcceptAsync);
    }

    public int Port { get; }

    /// <summary>How many connections were cut.</summary>
    public int Cuts => Math.Min(Volatile.Read(ref _cuts), _maxCuts);

    private sealed class Pair(Socket client, Socket server)
    {
        public Socket Client { get; } = client;
        public Socket Server { get; } = server;
        public bool SawAfter { get; set; }
        public volatile bool Cut;

        /// <summary>The server answered the message the cut is on (it ran it): the answer is held back.</summary>
        public TaskCompletionSource Answered { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
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
                var pair = new Pair(client, server) { SawAfter = _after is null };
                _ = ClientToServerAsync(pair);
                _ = ServerToClientAsync(pair);
            }
        }
        catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
        {
        }
    }

    private async Task ClientToServerAsync(Pair pair)
    {
        var buffer = new byte[64 * 1024];
        try
        {
            while (true)
            {
                var read = await pair.Client.ReceiveAsync(buffer, _stop.Token);
                if (read == 0)
                {
                    pair.Server.Shutdown(SocketShutdown.Send);
                    return;
                }
                var chunk = buffer.AsSpan(0, read);
                if (pair.SawAfter && chunk.IndexOf(_on) >= 0 && chunk.StartsWith(_startingWith) && Interlocked.Increment(ref _cuts) <= _maxCuts)
                {
                    pair.Cut = true;
                    if (_serverGetsIt)
                    {
                        // The rest of the message too (an HTTP body sent after "100 Continue"), until the server answers.
                        await pair.Server.SendAsync(buffer.AsMemory(0, read), _stop.Token);
                        var answered = pair.Answered.Task.WaitAsync(TimeSpan.FromSeconds(60), _stop.Token);
                        while (true)
                        {
                            var more = pair.Client.ReceiveAsync(buffer, _stop.Token).AsTask();
                            if (await Task.WhenAny(more, answered) == answered || await more == 0)
                            {
                                break;
                            }
                            await pair.Server.SendAsync(buffer.AsMemory(0, more.Result), _stop.Token);
                        }
                        await answered;
                    }
                    Reset(pair.Server);
                    Reset(pair.Client);
                    return;
                }
                pair.SawAfter |= _after is not null && chunk.IndexOf(_after) >= 0;
                await pair.Server.SendAsync(buffer.AsMemory(0, read), _stop.Token);
            }
        }
        catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
        {
        }
    }

    private async Task ServerToClientAsync(Pair pair)
    {
        var buffer = new byte[64 * 1024];
        try
        {
            while (true)
            {
                var read = await pair.Server.ReceiveAsync(buffer, _stop.Token);
                if (read == 0)
                {
                    pair.Client.Shutdown(SocketShutdown.Send);
                    return;
                }
                if (pair.Cut && !buffer.AsSpan(0, read).StartsWith("HTTP/1.1 100 "u8))
                {
                    pair.Answered.TrySetResult();
                    return;
                }
                await pair.Client.SendAsync(buffer.AsMemory(0, read), _stop.Token);
            }
        }
        catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
        {
        }
    }

    /// <summary>Closes with a reset (RST), as a dropped link or a firewall does.</summary>
    private static void Reset(Socket socket)
    {
        try
        {
            socket.LingerState = new LingerOption(true, 0);
            socket.Close();
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
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
