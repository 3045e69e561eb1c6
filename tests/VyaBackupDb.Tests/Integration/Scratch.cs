using System.Security.Cryptography;

namespace VyaBackupDb.Tests.Integration;

/// <summary>
/// Everything one test creates: uniquely named databases on both servers and temp directories,
/// all removed when the test ends, whether it passed or not. Register a name before the code
/// under test can create it, so that even a database created by a failing restore is dropped.
/// </summary>
public sealed class Scratch : IAsyncLifetime
{
    private readonly List<string> _mySql = [];
    private readonly List<string> _postgres = [];
    private readonly List<string> _dirs = [];

    /// <summary>A fresh name like vt_k3x9q2ab (lower case, so unquoted uses in dumps match it), dropped at the end.</summary>
    public string MySqlName(string prefix = "vt_")
    {
        var name = prefix + RandomSuffix();
        _mySql.Add(name);
        return name;
    }

    public string PostgresName(string prefix = "vt_")
    {
        var name = prefix + RandomSuffix();
        _postgres.Add(name);
        return name;
    }

    /// <summary>Registers a name chosen by the test (e.g. a hostile one) for dropping at the end.</summary>
    public string TrackMySql(string name)
    {
        _mySql.Add(name);
        return name;
    }

    public string TrackPostgres(string name)
    {
        _postgres.Add(name);
        return name;
    }

    public async Task<string> NewMySqlDatabaseAsync()
    {
        var name = MySqlName();
        await MySqlTestDb.CreateAsync(name);
        return name;
    }

    public async Task<string> NewPostgresDatabaseAsync()
    {
        var name = PostgresName();
        await PgTestDb.CreateAsync(name);
        return name;
    }

    public string TempDir(string label = "dir")
    {
        var dir = Directory.CreateTempSubdirectory($"vya-itest-{label}-").FullName;
        _dirs.Add(dir);
        return dir;
    }

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        var errors = new List<Exception>();
        foreach (var name in _mySql)
        {
            try
            {
                await MySqlTestDb.DropIfExistsAsync(name);
            }
            catch (Exception e) when (e is MySqlConnector.MySqlException or InvalidOperationException)
            {
                errors.Add(e);
            }
        }
        foreach (var name in _postgres)
        {
            try
            {
                await PgTestDb.DropIfExistsAsync(name);
            }
            catch (Exception e) when (e is Npgsql.NpgsqlException or InvalidOperationException)
            {
                errors.Add(e);
            }
        }
        foreach (var dir in _dirs)
        {
            try
            {
                Directory.Delete(dir, recursive: true);
            }
            catch (DirectoryNotFoundException)
            {
            }
        }
        if (errors.Count > 0)
        {
            throw new AggregateException("cleanup of test databases failed", errors);
        }
    }

    private static string RandomSuffix()
    {
        const string alphabet = "abcdefghijklmnopqrstuvwxyz0123456789";
        return string.Create(8, 0, (span, _) =>
        {
            for (var i = 0; i < span.Length; i++)
            {
                span[i] = alphabet[RandomNumberGenerator.GetInt32(alphabet.Length)];
            }
        });
    }
}
