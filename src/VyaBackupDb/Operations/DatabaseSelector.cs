using System.Text;
using System.Text.RegularExpressions;
using VyaBackupDb.Config;
using VyaBackupDb.Engines;

namespace VyaBackupDb.Operations;

/// <summary>Which databases of an instance a backup without --database takes: include/exclude globs, never system databases.</summary>
public static class DatabaseSelector
{
    public static IReadOnlyList<string> Select(InstanceConfig instance, IEnumerable<string> databases) =>
        databases
            .Where(db => !DumpEngines.IsSystemDatabase(instance.Dbms, db))
            .Where(db => instance.Include.Any(p => GlobMatches(p, db)))
            .Where(db => !instance.Exclude.Any(p => GlobMatches(p, db)))
            .ToList();

    /// <summary>Shell-style glob: * any run, ? one character, [abc] a set; the whole name must match.</summary>
    public static bool GlobMatches(string pattern, string name)
    {
        var regex = new StringBuilder("^");
        for (var i = 0; i < pattern.Length; i++)
        {
            var c = pattern[i];
            switch (c)
            {
                case '*':
                    regex.Append(".*");
                    break;
                case '?':
                    regex.Append('.');
                    break;
                case '[' when pattern.IndexOf(']', i + 1) is var end and > 0:
                    var set = pattern[(i + 1)..end];
                    regex.Append('[').Append(set.StartsWith('!') ? "^" + Regex.Escape(set[1..]) : Regex.Escape(set)).Append(']');
                    i = end;
                    break;
                default:
                    regex.Append(Regex.Escape(c.ToString()));
                    break;
            }
        }
        regex.Append('$');
        return Regex.IsMatch(name, regex.ToString(), RegexOptions.Singleline | RegexOptions.CultureInvariant);
    }
}
