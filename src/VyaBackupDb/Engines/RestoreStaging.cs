using System.Security.Cryptography;
using System.Text;

namespace VyaBackupDb.Engines;

/// <summary>
/// Names of the databases a restore works in beside its target: the staging database the backup
/// is loaded into, and the one what it replaces is moved to during the swap. Both are derived from
/// the target alone, so that the next restore into the same target (which holds the same
/// server-side lock) finds what a killed or failed run left. The readable part lets an operator
/// tell which target a leftover belongs to; the hash keeps targets apart. A replaced database
/// holding anything is kept (the only copy of what a failed swap replaced), so the next swap takes
/// a numbered name beside it.
/// </summary>
public static class RestoreStaging
{
    public const string StagingPrefix = "vya_restore_";
    public const string ReplacedPrefix = "vya_replaced_";

    /// <summary>verify --restore's scratch databases: the target it restores into, dropped afterwards.</summary>
    public const string VerifyScratchPrefix = "vya_verify_";

    public static string StagingName(string target) => Name(StagingPrefix, target);

    /// <param name="number">1 for the plain name; 2, 3, ... when the ones before are taken by kept leftovers.</param>
    public static string ReplacedName(string target, int number = 1) =>
        number == 1 ? Name(ReplacedPrefix, target) : $"{Name(ReplacedPrefix, target)}_{number}";

    /// <summary>Whether <paramref name="database"/> is one of <paramref name="target"/>'s replaced databases, numbered or not.</summary>
    public static bool IsReplacedName(string database, string target)
    {
        var plain = Name(ReplacedPrefix, target);
        return database == plain || (database.StartsWith(plain + "_", StringComparison.Ordinal)
            && int.TryParse(database.AsSpan(plain.Length + 1), System.Globalization.NumberStyles.None,
                System.Globalization.CultureInfo.InvariantCulture, out var number) && number > 1);
    }

    /// <summary>
    /// Why a target planned as empty or missing is not replaced without --force: another client put data in it (or,
    /// PostgreSQL, created it with data) while the restore loaded.
    /// </summary>
    public static string FilledMeanwhile(string target, int tables, int otherObjects) =>
        $"while the restore loaded, another client put {tables} table(s) and {otherObjects} other object(s) in '{target}', "
        + "which was empty or missing when the restore began; without --force a restore replaces only a database that holds nothing";

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
        // At most 13 + 8 + 1 + 30 = 52 characters: within MySQL's 64 and PostgreSQL's 63, with room for a number.
        return $"{prefix}{hash}_{readable}";
    }
}
