using VyaBackupDb.Errors;

namespace VyaBackupDb.Config;

/// <summary>
/// Where an instance's password comes from. Resolved only when the instance is used, so a
/// missing variable for one instance does not stop backups of the others. Never prints the value.
/// </summary>
public sealed class PasswordSource
{
    private readonly string? _literal;
    private readonly string? _envVar;
    private readonly string? _file;
    private readonly string _where;

    private PasswordSource(string? literal, string? envVar, string? file, string where)
    {
        _literal = literal;
        _envVar = envVar;
        _file = file;
        _where = where;
    }

    public static PasswordSource None { get; } = new(null, null, null, "");

    public static PasswordSource Literal(string value) => new(value, null, null, "");

    public static PasswordSource FromEnv(string variable, string where) => new(null, variable, null, where);

    public static PasswordSource FromFile(string path, string where) => new(null, null, path, where);

    public bool IsLiteral => _literal is not null;

    /// <summary>The password, or null when the instance has none (e.g. peer authentication).</summary>
    public string? Resolve()
    {
        if (_literal is not null)
        {
            return _literal;
        }
        if (_envVar is not null)
        {
            return Environment.GetEnvironmentVariable(_envVar)
                ?? throw new ConfigException($"{_where}: environment variable {_envVar} is not set");
        }
        if (_file is not null)
        {
            try
            {
                return File.ReadAllText(_file).TrimEnd('\r', '\n');
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw new ConfigException($"{_where}: cannot read {_file}: {e.Message}");
            }
        }
        return null;
    }

    public override string ToString() => "***";
}
