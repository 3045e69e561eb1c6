using System.Text;

namespace VyaBackupDb.Engines.MySql;

/// <summary>
/// MySQL's latin1: Windows-1252, with its five unassigned bytes (0x81, 0x8D, 0x8F, 0x90, 0x9D) standing for the
/// control characters of the same codes.
/// </summary>
/// <remarks>
/// Why it is needed: the server keeps an event's name and comment in UTF-8 but writes them, in SHOW CREATE EVENT, into
/// a text of the character set the event was created under; under latin1 they then read as other letters (`év` as
/// `Ã©v`), in mariadb-dump's output and in SHOW CREATE read by a client alike.
/// </remarks>
internal static class MySqlLatin1
{
    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>What 0x80-0x9F stand for (Windows-1252).</summary>
    private static readonly char[] High =
    [
        '\u20AC', '\u0081', '\u201A', '\u0192', '\u201E', '\u2026', '\u2020', '\u2021',
        '\u02C6', '\u2030', '\u0160', '\u2039', '\u0152', '\u008D', '\u017D', '\u008F',
        '\u0090', '\u2018', '\u2019', '\u201C', '\u201D', '\u2022', '\u2013', '\u2014',
        '\u02DC', '\u2122', '\u0161', '\u203A', '\u0153', '\u009D', '\u017E', '\u0178',
    ];

    /// <summary>latin1 bytes as text.</summary>
    public static string ToText(ReadOnlySpan<byte> latin1)
    {
        var text = new char[latin1.Length];
        for (var i = 0; i < latin1.Length; i++)
        {
            var b = latin1[i];
            text[i] = b is >= 0x80 and < 0xA0 ? High[b - 0x80] : (char)b;
        }

        return new string(text);
    }

    /// <summary>Text in latin1, or null if it holds a character latin1 has not.</summary>
    public static byte[]? FromText(string text)
    {
        var latin1 = new byte[text.Length];
        for (var i = 0; i < text.Length; i++)
        {
            var c = text[i];
            if (c is < '\u0080' or >= '\u00A0' and <= '\u00FF')
            {
                latin1[i] = (byte)c;
                continue;
            }

            var high = Array.IndexOf(High, c);
            if (high < 0)
            {
                return null;
            }

            latin1[i] = (byte)(0x80 + high);
        }

        return latin1;
    }

    /// <summary>UTF-8 text in latin1, or null if it is not UTF-8 or holds a character latin1 has not.</summary>
    public static byte[]? FromUtf8(ReadOnlySpan<byte> utf8) => Utf8Text(utf8) is { } text ? FromText(text) : null;

    /// <summary>UTF-8 text read as latin1 (`Ã©v`) as it was written (`év`), or null if it was not UTF-8.</summary>
    public static string? Unmangle(string mangled) => FromText(mangled) is { } bytes ? Utf8Text(bytes) : null;

    private static string? Utf8Text(ReadOnlySpan<byte> utf8)
    {
        try
        {
            return StrictUtf8.GetString(utf8);
        }
        catch (DecoderFallbackException)
        {
            return null;
        }
    }
}
