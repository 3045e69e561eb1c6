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
