using System.Collections.Frozen;
using System.Text;

namespace VyaBackupDb.Engines.MySql;

/// <summary>
/// One of MariaDB's one-byte client character sets (latin1, cp1251, greek, koi8r, ...), each byte read as the server
/// reads it: its ASCII bytes are ASCII, and above them .NET's code page of the set where the server reads a byte alike.
/// </summary>
/// <remarks>
/// Why it is needed: the server keeps an event's name and comment, and a trigger's or event's definer, in UTF-8 but
/// writes them, in SHOW CREATE, into a text of the character set the object was created under; under such a set they
/// then read as other letters (`év` as `Ã©v` in latin1), in mariadb-dump's output and in SHOW CREATE alike.
/// Sets without a .NET code page (dec8, hp8, keybcs2, armscii8, geostd8), swe7 (whose ASCII bytes are other letters)
/// and the multi-byte sets are none of these.
/// </remarks>
internal sealed class MySqlSingleByteCharset
{
    /// <summary>Stands in <see cref="high"/> for a byte the server reads as no character (converting it, it writes '?').</summary>
    private const char NoCharacter = '\uFFFF';

    /// <summary>
    /// Each set's code page, and the bytes MariaDB reads otherwise than .NET does (compared byte by byte with
    /// <c>CONVERT(CONVERT(UNHEX('98') USING cp1251) USING utf8mb4)</c> on MariaDB 10.11; a test keeps them so).
    /// </summary>
    private static readonly FrozenDictionary<string, MySqlSingleByteCharset> Sets = new[]
    {
        Set("latin1", 1252), // 0x81, 0x8D, 0x8F, 0x90 and 0x9D are the control characters of the same codes to both
        Set("cp1250", 1250, none: [0x81, 0x83, 0x88, 0x90, 0x98]),
        Set("cp1251", 1251, none: [0x98]),
        Set("cp1256", 1256, none: [0x8A, 0x8F, 0x98, 0x9A, 0x9F, 0xAA, 0xC0, 0xFF]),
        Set("cp1257", 1257, none: [0x81, 0x83, 0x88, 0x8A, 0x8C, 0x90, 0x98, 0x9A, 0x9C, 0x9F, 0xA1, 0xA5]),
        Set("latin2", 28592),
        Set("greek", 28597, none: [0xA4, 0xA5, 0xAA, 0xAE, 0xD2, 0xFF]),
        Set("hebrew", 28598, none: [0xA1, .. Range(0xBF, 0xDE), 0xFB, 0xFC, 0xFF], other: [(0xFD, '\u200E'), (0xFE, '\u200F')]),
        Set("latin5", 28599),
        Set("latin7", 28603),
        Set("koi8r", 20866),
        Set("koi8u", 21866, other: [(0x95, '\u2022'), (0xAE, '\u255D'), (0xBE, '\u256C')]),
        Set("cp866", 866, other: [(0xFC, '\u207F'), (0xFD, '\u00B2')]),
        Set("cp852", 852),
        Set("cp850", 850),
        Set("macroman", 10000, other: [(0xBD, '\u03A9')]),
        Set("macce", 10029),
        // MariaDB reads 0x80-0x9F as the control characters of the same codes, and 0xA0, 0xDB-0xDE, 0xFC-0xFF as U+FFFD.
        Set("tis620", 874, none: [0xA0, .. Range(0xDB, 0xDE), .. Range(0xFC, 0xFF)],
            other: [.. Range(0x80, 0x9F).Select(b => (b, (char)b))]),
    }.ToFrozenDictionary(set => set.Name, StringComparer.OrdinalIgnoreCase);

    /// <summary>What 0x80-0xFF stand for (<see cref="NoCharacter"/> for none).</summary>
    private readonly char[] high;

    private readonly FrozenDictionary<char, byte> highBytes;

    private MySqlSingleByteCharset(string name, char[] high)
    {
        Name = name;
        this.high = high;
        highBytes = Enumerable.Range(0, high.Length).Where(i => high[i] != NoCharacter)
            .ToFrozenDictionary(i => high[i], i => (byte)(0x80 + i));
        if (highBytes.Count != high.Count(c => c != NoCharacter) || highBytes.Keys.Any(char.IsAscii))
        {
            throw new InvalidOperationException($"{name}: two bytes stand for one character, or one for an ASCII one");
        }
    }

    /// <summary>The server's name of the set (latin1, cp1251, ...).</summary>
    public string Name { get; }

    /// <summary>All the sets, for tests.</summary>
    internal static IEnumerable<MySqlSingleByteCharset> All => Sets.Values;

    /// <summary>The set of this name (as the server names it, any case), or null if it is none of these.</summary>
    public static MySqlSingleByteCharset? Named(string name) => Sets.GetValueOrDefault(name);

    /// <summary>Bytes of this set as text, or null if one stands for no character.</summary>
    public string? ToText(ReadOnlySpan<byte> bytes)
    {
        var text = new char[bytes.Length];
        for (var i = 0; i < bytes.Length; i++)
        {
            var c = bytes[i] < 0x80 ? (char)bytes[i] : high[bytes[i] - 0x80];
            if (c == NoCharacter)
            {
                return null;
            }

            text[i] = c;
        }

        return new string(text);
    }

    /// <summary>Text in this set, or null if it holds a character the set has not.</summary>
    public byte[]? FromText(string text)
    {
        var bytes = new byte[text.Length];
        for (var i = 0; i < text.Length; i++)
        {
            var c = text[i];
            if (char.IsAscii(c))
            {
                bytes[i] = (byte)c;
            }
            else if (highBytes.TryGetValue(c, out var b))
            {
                bytes[i] = b;
            }
            else
            {
                return null;
            }
        }

        return bytes;
    }

    /// <summary>UTF-8 text in this set, or null if it is not UTF-8 or holds a character the set has not.</summary>
    public byte[]? FromUtf8(ReadOnlySpan<byte> utf8) => StrictUtf8.Decode(utf8) is { } text ? FromText(text) : null;

    private static MySqlSingleByteCharset Set(string name, int codePage, byte[]? none = null, (byte Byte, char Char)[]? other = null)
    {
        Encoding.RegisterProvider(CodePagesEncodingProvider.Instance); // once is enough; again is nothing
        var high = new char[0x80];
        var decoder = Encoding.GetEncoding(codePage, EncoderFallback.ExceptionFallback, DecoderFallback.ExceptionFallback);
        for (var b = 0x80; b <= 0xFF; b++)
        {
            try
            {
                var text = decoder.GetString([(byte)b]);
                high[b - 0x80] = text.Length == 1 ? text[0] : NoCharacter;
            }
            catch (DecoderFallbackException)
            {
                high[b - 0x80] = NoCharacter;
            }
        }

        foreach (var b in none ?? [])
        {
            high[b - 0x80] = NoCharacter;
        }

        foreach (var (b, c) in other ?? [])
        {
            high[b - 0x80] = c;
        }

        return new MySqlSingleByteCharset(name, high);
    }

    private static IEnumerable<byte> Range(byte first, byte last) => Enumerable.Range(first, last - first + 1).Select(b => (byte)b);
}
