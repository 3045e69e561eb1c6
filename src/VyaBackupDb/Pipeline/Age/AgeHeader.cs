using System.Buffers;
using System.Security.Cryptography;
using System.Text;

namespace VyaBackupDb.Pipeline.Age;

/// <summary>One recipient stanza: "-> type args…" and a body (the wrapped file key).</summary>
internal sealed record AgeStanza(string Type, IReadOnlyList<string> Arguments, byte[] Body);

/// <summary>
/// The age header: the version line, one stanza per recipient, and "--- " with an HMAC-SHA-256
/// of everything before the space, keyed with HKDF(file key, info "header").
/// </summary>
internal sealed class AgeHeader
{
    private const int ColumnsPerLine = 64;
    private const int BytesPerLine = ColumnsPerLine / 4 * 3;

    /// <summary>A header is printable ASCII and newlines.</summary>
    private static readonly SearchValues<byte> HeaderBytes =
        SearchValues.Create([(byte)'\n', .. Enumerable.Range(' ', '~' - ' ' + 1).Select(b => (byte)b)]);

    private AgeHeader(IReadOnlyList<AgeStanza> stanzas, byte[] macInput, byte[] mac)
    {
        Stanzas = stanzas;
        _macInput = macInput;
        _mac = mac;
    }

    private readonly byte[] _macInput;
    private readonly byte[] _mac;

    public IReadOnlyList<AgeStanza> Stanzas { get; }

    /// <summary>The complete header, MAC line included.</summary>
    public static byte[] Encode(IReadOnlyList<AgeStanza> stanzas, ReadOnlySpan<byte> fileKey)
    {
        var text = new StringBuilder(AgeFormat.VersionLine).Append('\n');
        foreach (var stanza in stanzas)
        {
            text.Append("-> ").AppendJoin(' ', stanza.Arguments.Prepend(stanza.Type)).Append('\n');
            var body = AgeFormat.ToBase64(stanza.Body);
            // Wrapped at 64 columns; the last line is always shorter (so possibly empty).
            for (var i = 0; ; i += ColumnsPerLine)
            {
                var line = body[i..Math.Min(body.Length, i + ColumnsPerLine)];
                text.Append(line).Append('\n');
                if (line.Length < ColumnsPerLine)
                {
                    break;
                }
            }
        }
        text.Append("---");
        var macInput = Encoding.ASCII.GetBytes(text.ToString());
        var mac = HMACSHA256.HashData(MacKey(fileKey), macInput);
        return [.. macInput, .. Encoding.ASCII.GetBytes(" " + AgeFormat.ToBase64(mac) + "\n")];
    }

    /// <summary>
    /// Parses a header (from the version line to the MAC line and its newline). The MAC is checked
    /// later, with <see cref="VerifyMac"/>, once a file key is unwrapped.
    /// </summary>
    public static AgeHeader Parse(ReadOnlySpan<byte> header)
    {
        if (header.ContainsAnyExcept(HeaderBytes))
        {
            throw Malformed("a byte that is not printable ASCII");
        }
        var lines = Encoding.ASCII.GetString(header).Split('\n');
        if (lines[0] != AgeFormat.VersionLine || lines[^1] != "")
        {
            throw Malformed("bad version line or missing final newline");
        }
        var stanzas = new List<AgeStanza>();
        var offset = lines[0].Length + 1;
        for (var i = 1; i < lines.Length - 1; i++)
        {
            var line = lines[i];
            var parts = line.Split(' ');
            if (line.StartsWith("---", StringComparison.Ordinal))
            {
                var mac = parts is ["---", var encoded] ? AgeFormat.FromBase64(encoded) : null;
                if (mac is not { Length: 32 } || i != lines.Length - 2)
                {
                    throw Malformed("bad MAC line");
                }
                return new AgeHeader(stanzas, header[..(offset + 3)].ToArray(), mac);
            }
            if (parts[0] != "->" || parts.Length < 2 || parts.Skip(1).Any(a => a.Length == 0))
            {
                throw Malformed($"line {i + 1} is neither a stanza nor the MAC line");
            }
            offset += line.Length + 1;
            var body = new List<byte>();
            while (true)
            {
                i++;
                if (i >= lines.Length - 1)
                {
                    throw Malformed("a stanza body runs to the end of the header");
                }
                var chunk = lines[i].Length <= ColumnsPerLine ? AgeFormat.FromBase64(lines[i]) : null;
                if (chunk is null)
                {
                    throw Malformed($"line {i + 1} is not a valid stanza body line");
                }
                body.AddRange(chunk);
                offset += lines[i].Length + 1;
                if (chunk.Length < BytesPerLine)
                {
                    break;
                }
            }
            stanzas.Add(new AgeStanza(parts[1], parts[2..], [.. body]));
        }
        throw Malformed("no MAC line");
    }

    /// <summary>Checks the header MAC with the unwrapped file key.</summary>
    public void VerifyMac(ReadOnlySpan<byte> fileKey)
    {
        var expected = HMACSHA256.HashData(MacKey(fileKey), _macInput);
        if (!CryptographicOperations.FixedTimeEquals(expected, _mac))
        {
            throw new AgeException("the age header was changed (its MAC does not match): the file is damaged or was tampered with");
        }
    }

    private static byte[] MacKey(ReadOnlySpan<byte> fileKey) => AgeFormat.Hkdf(fileKey, [], "header");

    private static AgeException Malformed(string what) => new($"not a valid age file: malformed header ({what})");
}
