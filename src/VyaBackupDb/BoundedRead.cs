using System.Text;

namespace VyaBackupDb;

/// <summary>
/// What the tool reads whole (the config, a key or password file, a password on stdin): at most a bound, so that a
/// device (`--config /dev/zero`), a backup named by mistake or an endless pipe fails in one line instead of filling
/// memory (it took 4 GB, then failed as "out of memory"). Text as File.ReadAllText gives it: UTF-8, a BOM dropped.
/// </summary>
public static class BoundedRead
{
    public const int SmallFileBytes = 4 << 20;

    public static string Text(string path, string what, int maxBytes = SmallFileBytes)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete, bufferSize: 0);
        return Text(stream, what, maxBytes);
    }

    /// <exception cref="IOException">More than <paramref name="maxBytes"/>.</exception>
    public static string Text(Stream stream, string what, int maxBytes = SmallFileBytes)
    {
        using var text = new MemoryStream();
        var buffer = new byte[64 * 1024];
        int read;
        while ((read = stream.Read(buffer, 0, (int)Math.Min(buffer.Length, maxBytes + 1L - text.Length))) > 0)
        {
            text.Write(buffer, 0, read);
            if (text.Length > maxBytes)
            {
                throw new IOException($"it is larger than {maxBytes / 1024} KiB: not {what}");
            }
        }
        var bytes = text.GetBuffer().AsSpan(0, (int)text.Length);
        return Encoding.UTF8.GetString(bytes.StartsWith(Encoding.UTF8.Preamble) ? bytes[Encoding.UTF8.Preamble.Length..] : bytes);
    }
}
