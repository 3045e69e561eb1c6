using System.Reflection;

namespace VyaBackupDb;

public static class ToolInfo
{
    /// <summary>The informational version of this build (recorded in every manifest).</summary>
    public static string Version { get; } =
        typeof(ToolInfo).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split('+')[0]
        ?? "0.0.0";
}
