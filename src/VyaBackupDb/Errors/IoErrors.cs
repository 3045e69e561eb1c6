using System.Text.RegularExpressions;

namespace VyaBackupDb.Errors;

/// <summary>How I/O errors of this host are told apart and worded.</summary>
public static partial class IoErrors
{
    /// <summary>ENOSPC on Linux; ERROR_DISK_FULL / ERROR_HANDLE_DISK_FULL on Windows (an HRESULT's low word).</summary>
    public static bool IsDiskFull(Exception e) =>
        e is IOException io && (OperatingSystem.IsWindows() ? (io.HResult & 0xFFFF) is 112 or 39 : io.HResult == 28);

    // .NET appends the path to an errno's text as "TEXT : 'PATH'".
    [GeneratedRegex(@" : '(?<path>[^'\n]*)'", RegexOptions.CultureInvariant)]
    private static partial Regex DotNetPathSuffix();

    /// <summary>
    /// A message as it is printed: .NET's "No space left on device : '/x'" reads
    /// "No space left on device (/x)". The one place this is done: where lines go out (Output).
    /// </summary>
    public static string Tidy(string message) => DotNetPathSuffix().Replace(message, " (${path})");
}
