using System.Security.Cryptography;
using System.Text;

namespace VyaBackupDb.Engines;

/// <summary>
/// Names of the databases a restore works in beside its target: the staging database the backup
/// is loaded into, and (MySQL) the one the replaced tables are moved to during the swap. Both are
/// derived from the target alone, so that the next restore into the same target (which holds the
/// same server-side lock) finds what a killed run left and removes it. The readable part lets an
/// operator tell which target a leftover belongs to; the hash keeps targets apart.
/// </summary>
public static class RestoreStaging
{
    public const string StagingPrefix = "vya_restore_";
    public const string ReplacedPrefix = "vya_replaced_";

    public static string StagingName(string target) => Name(StagingPrefix, target);

    public static string ReplacedName(string target) => Name(ReplacedPrefix, target);

    /// <summary>A key for the server's named/advisory lock on restores into <paramref name="target"/>.</summary>
    public static byte[] LockKey(string target) => SHA256.HashData(Encoding.UTF8.GetBytes("vya-backupdb restore\n" + target));

    private static string Name(string prefix, string target)
    {
        var hash = Convert.ToHexStringLower(LockKey(target))[..8];
        var readable = new StringBuilder();
        foreach (var c in target)
        {
            if (readable.Length == 30)
            {
                break;
            }
            readable.Append(char.IsAsciiLetterOrDigit(c) || c == '_' ? char.ToLowerInvariant(c) : '_');
        }
        // At most 13 + 8 + 1 + 30 = 52 characters: within MySQL's 64 and PostgreSQL's 63.
        return $"{prefix}{hash}_{readable}";
    }
}
