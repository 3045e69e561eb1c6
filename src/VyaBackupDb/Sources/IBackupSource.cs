using VyaBackupDb.Config;
using VyaBackupDb.Engines;
using VyaBackupDb.Errors;
using VyaBackupDb.Operations;

namespace VyaBackupDb.Sources;

/// <summary>
/// What a backup reads: a database server (<see cref="IDumpEngine"/>) or a directory tree
/// (<see cref="Files.FilesSource"/>). The backup operation needs only this; a new kind is a new
/// folder with one of these, and one line in <see cref="BackupSources.For"/>.
/// </summary>
public interface IBackupSource
{
    /// <summary>What a complete backup set ends with (a dump's completion trailer, tar's end blocks): checked before it is committed.</summary>
    string CompletionTrailer { get; }

    /// <summary>What the source is (flavor, version) and which items it holds.</summary>
    Task<ServerInfo> ProbeAsync(CancellationToken cancellationToken);

    /// <summary>The items a run backs up, each into its own file: the instance's selection, or the one asked for (--database).</summary>
    IReadOnlyList<string> Select(ServerInfo server, string? requested);

    /// <summary>Whether <paramref name="item"/> is written as a backup set (a tar of entries, see Sets/) rather than one dump.</summary>
    bool WritesSet(string item);

    /// <summary>Writes one item's backup (plain, before compression) and says what it held.</summary>
    Task<DumpDetails> DumpAsync(string item, Stream output, CancellationToken cancellationToken);

    /// <summary>About how many plain bytes an item's backup will be (the server's own figure), for progress; null when unknown.</summary>
    Task<long?> SizeAsync(string item, CancellationToken cancellationToken);
}

public static class BackupSources
{
    /// <param name="jobs">Connections of a parallel backup (--jobs); null: the instance's <c>jobs:</c>, else <see cref="ConfigLoader.DefaultJobs"/>.</param>
    public static IBackupSource For(InstanceConfig instance, int? jobs = null) =>
        instance.Dbms == Dbms.Files
            ? new Files.FilesSource(instance)
            : new DatabaseSource(DumpEngines.For(instance), jobs ?? instance.Jobs ?? ConfigLoader.DefaultJobs);

    /// <summary>A database server: one backup per database that passes include/exclude.</summary>
    private sealed class DatabaseSource(IDumpEngine engine, int jobs) : IBackupSource
    {
        public string CompletionTrailer => engine.CompletionTrailer;

        public bool WritesSet(string item) => engine.Instance.Engine == BackupEngine.Parallel && item != Globals.ItemName;

        public Task<ServerInfo> ProbeAsync(CancellationToken cancellationToken) => engine.ProbeAsync(cancellationToken);

        public IReadOnlyList<string> Select(ServerInfo server, string? requested)
        {
            if (requested is null)
            {
                var databases = DatabaseSelector.Select(engine.Instance, server.Databases);
                // The roles/accounts and grants: their own item, after the databases.
                return engine.Instance.Globals ? [.. databases.Where(d => d != Globals.ItemName), Globals.ItemName] : databases;
            }
            if (requested == Globals.ItemName)
            {
                return [requested];
            }
            // An explicit --database is taken as asked, filters or not; it only has to exist.
            if (DumpEngines.IsSystemDatabase(engine.Instance.Dbms, requested))
            {
                throw new OperationFailedException($"'{requested}' is a system database of the server, which vya-backupdb never backs up "
                    + $"(accounts, roles and grants are the '{Globals.ItemName}' item: --database {Globals.ItemName}, or globals: true)");
            }
            if (!server.Databases.Contains(requested, StringComparer.Ordinal))
            {
                throw new OperationFailedException(DatabaseSelector.NotFound(engine.Instance, server, requested));
            }
            return [requested];
        }

        public async Task<DumpDetails> DumpAsync(string item, Stream output, CancellationToken cancellationToken)
        {
            if (item == Globals.ItemName)
            {
                return await Globals.For(engine).DumpGlobalsAsync(output, cancellationToken).ConfigureAwait(false);
            }
            if (!WritesSet(item))
            {
                return await engine.DumpAsync(item, output, cancellationToken).ConfigureAwait(false);
            }
            using var set = new Sets.BackupSetWriter(output, TimeProvider.System);
            var details = await engine.DumpSetAsync(item, set, jobs, cancellationToken).ConfigureAwait(false);
            return details with { Format = Sets.BackupSet.Format, Entries = set.Entries, Jobs = jobs };
        }

        public Task<long?> SizeAsync(string item, CancellationToken cancellationToken) =>
            item == Globals.ItemName ? Task.FromResult<long?>(null) : engine.DatabaseSizeAsync(item, cancellationToken);
    }
}
