using System.Text;

namespace VyaBackupDb;

/// <summary>Bytes read as UTF-8 only if they are: never with replacement characters standing for what they are not.</summary>
internal static class StrictUtf8
{
    private static readonly UTF8Encoding Encoding = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>The text, or null if the bytes are not UTF-8.</summary>
    public static string? Decode(ReadOnlySpan<byte> bytes)
    {
        try
        {
            return Encoding.GetString(bytes);
        }
        catch (DecoderFallbackException)
        {
            return null;
        }
    }
}
