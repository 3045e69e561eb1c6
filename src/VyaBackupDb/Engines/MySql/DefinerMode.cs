namespace VyaBackupDb.Engines.MySql;

/// <summary>What a restore does with the DEFINER of views, triggers, routines and events.</summary>
public enum DefinerMode
{
    /// <summary>As dumped (restoring needs SUPER or SET_USER_ID when the definer is another account).</summary>
    Keep,

    /// <summary>The DEFINER clause is removed: the restoring account becomes the definer.</summary>
    Strip,

    /// <summary>Written as <c>DEFINER=CURRENT_USER</c>: the restoring account, said explicitly.</summary>
    CurrentUser,
}

/// <summary>The names of <see cref="DefinerMode"/> in the config (<c>definer:</c>) and on the command line (<c>--definer</c>).</summary>
public static class DefinerModes
{
    /// <summary>The accepted names, for messages.</summary>
    public const string Names = "keep, strip, current-user";

    public static bool TryParse(string? text, out DefinerMode mode)
    {
        (var known, mode) = text switch
        {
            "keep" => (true, DefinerMode.Keep),
            "strip" => (true, DefinerMode.Strip),
            "current-user" => (true, DefinerMode.CurrentUser),
            _ => (false, DefinerMode.Keep),
        };
        return known;
    }

    public static string ToName(this DefinerMode mode) => mode switch
    {
        DefinerMode.Strip => "strip",
        DefinerMode.CurrentUser => "current-user",
        _ => "keep",
    };
}
