namespace VyaBackupDb.Pipeline.Age;

/// <summary>
/// Bech32 (BIP 173) as age uses it: no 90-character limit, all upper or all lower case, the
/// checksum over the lower-case form. age keys are 32 bytes behind "age" or "AGE-SECRET-KEY-".
/// </summary>
internal static class Bech32
{
    private const string Charset = "qpzry9x8gf2tvdw0s3jn54khce6mua7l";
    private static readonly uint[] Generator = [0x3b6a57b2, 0x26508e6d, 0x1ea119fa, 0x3d4233dd, 0x2a1462b3];

    /// <summary>Encodes <paramref name="data"/>; the case of <paramref name="hrp"/> decides the case of the result.</summary>
    public static string Encode(string hrp, ReadOnlySpan<byte> data)
    {
        var upper = hrp.ToUpperInvariant() == hrp && hrp.ToLowerInvariant() != hrp;
        var lowerHrp = hrp.ToLowerInvariant();
        var values = ConvertBits(data, 8, 5, pad: true)!;
        var checksum = Checksum(lowerHrp, values);
        var text = new char[lowerHrp.Length + 1 + values.Length + checksum.Length];
        lowerHrp.CopyTo(text);
        text[lowerHrp.Length] = '1';
        var i = lowerHrp.Length + 1;
        foreach (var v in values.Concat(checksum))
        {
            text[i++] = Charset[v];
        }
        var result = new string(text);
        return upper ? result.ToUpperInvariant() : result;
    }

    /// <summary>Decodes a Bech32 string; the human-readable part comes back in lower case. False if malformed.</summary>
    public static bool TryDecode(string text, out string hrp, out byte[] data)
    {
        hrp = "";
        data = [];
        var lower = text.ToLowerInvariant();
        if (lower != text && text.ToUpperInvariant() != text)
        {
            return false; // mixed case
        }
        var separator = lower.LastIndexOf('1');
        if (separator < 1 || separator + 7 > lower.Length)
        {
            return false;
        }
        if (lower.AsSpan(0, separator).ContainsAnyExceptInRange('!', '~'))
        {
            return false;
        }
        var values = new byte[lower.Length - separator - 1];
        for (var i = 0; i < values.Length; i++)
        {
            var v = Charset.IndexOf(lower[separator + 1 + i], StringComparison.Ordinal);
            if (v < 0)
            {
                return false;
            }
            values[i] = (byte)v;
        }
        hrp = lower[..separator];
        if (Polymod(HrpExpand(hrp).Concat(values)) != 1)
        {
            return false;
        }
        var decoded = ConvertBits(values.AsSpan(0, values.Length - 6), 5, 8, pad: false);
        if (decoded is null)
        {
            return false;
        }
        data = decoded;
        return true;
    }

    private static byte[] Checksum(string lowerHrp, byte[] values)
    {
        var polymod = Polymod(HrpExpand(lowerHrp).Concat(values).Concat(new byte[6])) ^ 1;
        var checksum = new byte[6];
        for (var i = 0; i < 6; i++)
        {
            checksum[i] = (byte)((polymod >> (5 * (5 - i))) & 31);
        }
        return checksum;
    }

    private static uint Polymod(IEnumerable<byte> values)
    {
        uint chk = 1;
        foreach (var v in values)
        {
            var top = chk >> 25;
            chk = ((chk & 0x1ffffff) << 5) ^ v;
            for (var i = 0; i < 5; i++)
            {
                if (((top >> i) & 1) != 0)
                {
                    chk ^= Generator[i];
                }
            }
        }
        return chk;
    }

    private static IEnumerable<byte> HrpExpand(string hrp) =>
        hrp.Select(c => (byte)(c >> 5)).Append((byte)0).Concat(hrp.Select(c => (byte)(c & 31)));

    /// <summary>Regroups bits; without padding, leftover bits must be fewer than <paramref name="from"/> and zero.</summary>
    private static byte[]? ConvertBits(ReadOnlySpan<byte> data, int from, int to, bool pad)
    {
        var result = new List<byte>(data.Length * from / to + 1);
        int acc = 0, bits = 0, max = (1 << to) - 1, maxAcc = (1 << (from + to - 1)) - 1;
        foreach (var value in data)
        {
            acc = ((acc << from) | value) & maxAcc;
            bits += from;
            while (bits >= to)
            {
                bits -= to;
                result.Add((byte)((acc >> bits) & max));
            }
        }
        if (pad)
        {
            if (bits > 0)
            {
                result.Add((byte)((acc << (to - bits)) & max));
            }
        }
        else if (bits >= from || ((acc << (to - bits)) & max) != 0)
        {
            return null;
        }
        return [.. result];
    }
}
