using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using VyaBackupDb.Config;
using VyaBackupDb.Pipeline;

namespace VyaBackupDb.Catalog;

/// <summary>What a backup file's name says about it.</summary>
/// <param name="Encrypted">The file is age-encrypted: its name ends in <see cref="EncryptedSuffix"/>.</param>
/// <param name="Set">A database backup written as a backup set (a tar: .tar.zst and the like), not one dump (.sql.zst).</param>
public sealed record BackupName(DateTime TimestampUtc, Dbms? Dbms, string Database, Compression Compression, bool Encrypted = false, bool Set = false)
{
    public const string EncryptedSuffix = ".age";

    private const string TimeFormat = "yyyyMMdd_HHmmss";

    /// <summary>
    /// The longest file name a backup may have: its manifest's name, written as a temp file
    /// (".vya-tmp-" + 12 hex + "-" + name) on a local disk or SFTP, must fit a file name's 255 bytes.
    /// The same for S3, so that every backup can be copied to any destination.
    /// </summary>
    public static readonly int MaxFileNameLength = 255 - (Storage.Local.LocalStorage.TempMarker.Length + 13) - BackupManifest.Suffix.Length;

    // 20260113_155440_mysql_dns_db.sql.zst (ours and the old tool's current format); backup sets: 20260113_155440_mysql_dns_db.tar.zst;
    // files backups: 20260113_155440_files_etc.tar.zst
    private static readonly Regex Current = new(
        @"^(?<time>\d{8}_\d{6})_(?<dbms>mysql|postgresql|files)_(?<db>.+)$", RegexOptions.CultureInvariant);

    // dns_db_20260110_020000.sql.gz (the old tool's first format)
    private static readonly Regex Legacy = new(
        @"^(?<db>.+)_(?<time>\d{8}_\d{6})$", RegexOptions.CultureInvariant);

    /// <summary>The file name this tool writes: YYYYMMDD_HHMMSS_dbms_database.ext, the database name encoded.</summary>
    public string FileName => $"{Stem}{Extension}{(Encrypted ? EncryptedSuffix : "")}";

    /// <summary>The name of the plain content (a zip backup's one entry): the stem and .sql, or .tar for a files backup or a backup set.</summary>
    public string PlainFileName => Stem + (IsTar ? Compression.None.TarExtension() : Compression.None.Extension());

    /// <summary>.sql.zst and the like; a files backup (the instance's name in place of a database) or a backup set: .tar.zst and the like.</summary>
    private string Extension => IsTar ? Compression.TarExtension() : Compression.Extension();

    private bool IsTar => Set || Dbms == Config.Dbms.Files;

    private string Stem => $"{TimestampUtc.ToString(TimeFormat, CultureInfo.InvariantCulture)}_{Dbms!.Value.ToName()}_{Encode(Database)}";

    /// <summary>
    /// A key of this tool's backup up to its extension, with the dot ("main/20260113_155440_mysql_dns_db."): what every
    /// backup of that database at that second starts with (the name is encoded: it holds no dot).
    /// </summary>
    public static string KeyStem(string key) => key[..(key.IndexOf('.', key.LastIndexOf('/') + 1) + 1)];

    /// <summary>Parses either format; null when the name is not a backup file name.</summary>
    public static BackupName? TryParse(string fileName)
    {
        var encrypted = fileName.EndsWith(EncryptedSuffix, StringComparison.OrdinalIgnoreCase);
        if (encrypted)
        {
            fileName = fileName[..^EncryptedSuffix.Length];
        }
        var compression = CompressionNames.FromFileName(fileName);
        if (compression is null)
        {
            return null;
        }
        // A tar is a files backup or a backup set, anything else a dump.
        var tar = fileName.EndsWith(compression.Value.TarExtension(), StringComparison.OrdinalIgnoreCase);
        var stem = fileName[..^(tar ? compression.Value.TarExtension() : compression.Value.Extension()).Length];

        var current = Current.Match(stem);
        if (current.Success && TryTime(current.Groups["time"].Value, out var time)
            && DbmsNames.TryParse(current.Groups["dbms"].Value, out var dbms)
            && (tar || dbms != Config.Dbms.Files))
        {
            return new BackupName(time, dbms, NameIn(current.Groups["db"].Value), compression.Value, encrypted, Set: tar && dbms != Config.Dbms.Files);
        }
        if (tar)
        {
            return null;
        }

        // Only the old tool wrote this format, and it wrote names as they are.
        var legacy = Legacy.Match(stem);
        if (legacy.Success && TryTime(legacy.Groups["time"].Value, out time))
        {
            return new BackupName(time, null, legacy.Groups["db"].Value, compression.Value, encrypted);
        }
        return null;
    }

    /// <summary>
    /// The database a file name's part names: decoded when it is exactly what <see cref="Encode"/> writes (this
    /// tool's names), else taken as it is: the old tool wrote names unencoded, so its "a%41" is database "a%41", not "aA".
    /// </summary>
    private static string NameIn(string text) => TryDecode(text, out var decoded) && Encode(decoded) == text ? decoded : text;

    private static bool TryTime(string text, out DateTime time) =>
        DateTime.TryParseExact(text, TimeFormat, CultureInfo.InvariantCulture,
            DateTimeStyles.AdjustToUniversal | DateTimeStyles.AssumeUniversal, out time);

    /// <summary>
    /// Makes a database name safe as (part of) a file name: letters, digits, '_' and '-' stay, every
    /// other byte of its UTF-8 form becomes %XX. No '/', no '.', so the path stays in its folder, and
    /// the name decodes back exactly. Plain names (the old tool's) are unchanged.
    /// </summary>
    public static string Encode(string name)
    {
        var builder = new StringBuilder(name.Length);
        foreach (var b in Encoding.UTF8.GetBytes(name))
        {
            if (b is (>= (byte)'a' and <= (byte)'z') or (>= (byte)'A' and <= (byte)'Z') or (>= (byte)'0' and <= (byte)'9')
                or (byte)'_' or (byte)'-')
            {
                builder.Append((char)b);
            }
            else
            {
                builder.Append('%').Append(b.ToString("X2", CultureInfo.InvariantCulture));
            }
        }
        return builder.ToString();
    }

    private static bool TryDecode(string encoded, out string name)
    {
        name = "";
        if (encoded.Length == 0)
        {
            return false;
        }
        var bytes = new List<byte>(encoded.Length);
        for (var i = 0; i < encoded.Length; i++)
        {
            var c = encoded[i];
            if (c == '%')
            {
                if (i + 2 >= encoded.Length
                    || !byte.TryParse(encoded.AsSpan(i + 1, 2), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var b))
                {
                    return false;
                }
                bytes.Add(b);
                i += 2;
            }
            else
            {
                // Old tool's names may hold '.', non-ASCII and other characters unencoded.
                var end = encoded.IndexOf('%', i);
                end = end < 0 ? encoded.Length : end;
                bytes.AddRange(Encoding.UTF8.GetBytes(encoded[i..end]));
                i = end - 1;
            }
        }
        var decoded = StrictUtf8.Decode(bytes.ToArray());
        name = decoded ?? "";
        return decoded is not null;
    }
}
