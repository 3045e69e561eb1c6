namespace VyaBackupDb.Engines;

/// <summary>Finds client tools: the instance's tools_dir first, then PATH.</summary>
public static class ToolLocator
{
    public static string? Find(string? toolsDir, params string[] names)
    {
        foreach (var name in names)
        {
            if (toolsDir is not null)
            {
                var candidate = Path.Combine(toolsDir, name);
                if (File.Exists(candidate))
                {
                    return candidate;
                }
            }
        }
        if (toolsDir is not null)
        {
            return null;
        }
        var path = Environment.GetEnvironmentVariable("PATH") ?? "";
        foreach (var name in names)
        {
            foreach (var dir in path.Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries))
            {
                var candidate = Path.Combine(dir, name);
                if (File.Exists(candidate))
                {
                    return candidate;
                }
            }
        }
        return null;
    }

    /// <summary>", which does not exist" for a tools_dir that is not there; else nothing.</summary>
    public static string Missing(string toolsDir) => Directory.Exists(toolsDir) ? "" : ", which does not exist";
}
