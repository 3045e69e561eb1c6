using VyaBackupDb.Catalog;
using VyaBackupDb.Errors;

namespace VyaBackupDb.Engines;

/// <summary>A server's roles/accounts and their grants: backed up as their own item, restored with restore --globals.</summary>
public interface IGlobalsEngine
{
    /// <summary>Writes the roles/accounts, memberships, settings and grants as SQL, ending with the engine's completion trailer.</summary>
    Task<DumpDetails> DumpGlobalsAsync(Stream output, CancellationToken cancellationToken);

    /// <summary>The accounts of a globals script (one group of statements each), as this engine wrote it.</summary>
    IReadOnlyList<GlobalsAccount> ParseGlobals(string script);

    /// <summary>The accounts that exist on the server now (keys as <see cref="GlobalsAccount.Key"/> spells them).</summary>
    Task<HashSet<string>> ExistingAccountsAsync(CancellationToken cancellationToken);

    /// <summary>Whether an account is the one this instance logs in as: never created, altered or dropped.</summary>
    bool IsRestoringAccount(GlobalsAccount account);

    /// <summary>The user or role name of an account (MySQL: without its host).</summary>
    string AccountName(GlobalsAccount account);

    /// <summary>The statements that put an existing account in the state the backup recorded (restore --globals --replace-existing).</summary>
    IReadOnlyList<string> ReplaceStatements(GlobalsAccount account);

    /// <summary>Runs one account's statements in order; an error names the statement's failure.</summary>
    Task ExecuteAsync(IReadOnlyList<string> statements, CancellationToken cancellationToken);
}

/// <param name="Key">The account as the server names it (a PostgreSQL role name; MySQL `user`@`host` or `role`).</param>
/// <param name="Create">Creates it and sets its attributes and settings.</param>
/// <param name="Grants">Its privileges and memberships: run once every account exists.</param>
public sealed record GlobalsAccount(string Key, List<string> Create, List<string> Grants);

/// <param name="Only">Restore only these roles/accounts (PostgreSQL role names; MySQL user or role names, any host); empty: all.</param>
public sealed record GlobalsRestoreOptions(bool DryRun, bool ReplaceExisting, IReadOnlyList<string>? Only = null);

/// <param name="Restored">Accounts created (or replaced).</param>
/// <param name="Skipped">Accounts that already existed, left as they are.</param>
/// <param name="Failed">Accounts whose statements failed, with why.</param>
public sealed record GlobalsRestoreResult(IReadOnlyList<string> Restored, IReadOnlyList<string> Skipped, IReadOnlyList<string> Failed);

public static class Globals
{
    /// <summary>The item name of a globals backup (in file names, the catalog, the manifest): never a database's.</summary>
    public const string ItemName = "_globals";

    public static IGlobalsEngine For(IDumpEngine engine) =>
        engine as IGlobalsEngine ?? throw new UsageException($"instance {engine.Instance.Id} ({engine.Instance.Name}) has no users, roles or grants to back up");

    /// <summary>The details a globals dump records: no tables, no objects.</summary>
    public static DumpDetails Details(string tool, string toolVersion, string? warning = null) =>
        new(tool, toolVersion, new DatabaseInventory([], [], new ObjectCounts(0, 0, 0, 0)), warning);

    /// <summary>
    /// Applies a globals script: every account created first (one at a time, so that a failure
    /// names it), then every account's grants. Existing accounts are skipped unless
    /// <see cref="GlobalsRestoreOptions.ReplaceExisting"/>; the restoring account never changes.
    /// A dry run prints the statements it would run and touches nothing.
    /// </summary>
    public static async Task<GlobalsRestoreResult> RestoreAsync(
        IGlobalsEngine engine, string script, GlobalsRestoreOptions options, Action<string> print, Action<string> warn, CancellationToken cancellationToken)
    {
        var accounts = engine.ParseGlobals(script)
            .Where(a => options.Only is not { Count: > 0 } only || only.Contains(engine.AccountName(a), StringComparer.Ordinal)).ToList();
        var existing = await engine.ExistingAccountsAsync(cancellationToken).ConfigureAwait(false);
        var skipped = new List<string>();
        var chosen = new List<(GlobalsAccount Account, IReadOnlyList<string> Create)>();
        foreach (var account in accounts)
        {
            if (engine.IsRestoringAccount(account))
            {
                warn($"{account.Key} is the account this restore logs in as: left unchanged");
            }
            else if (!existing.Contains(account.Key))
            {
                chosen.Add((account, account.Create));
            }
            else if (options.ReplaceExisting)
            {
                chosen.Add((account, engine.ReplaceStatements(account)));
            }
            else
            {
                skipped.Add(account.Key);
            }
        }
        if (skipped.Count > 0)
        {
            warn($"already on the server, skipped (--replace-existing to replace them): {string.Join(", ", skipped)}");
        }
        var failed = new List<string>();
        var restored = new List<string>();
        async Task RunAsync(GlobalsAccount account, IReadOnlyList<string> statements)
        {
            if (statements.Count == 0 || failed.Any(f => f.StartsWith(account.Key + ":", StringComparison.Ordinal)))
            {
                return;
            }
            if (options.DryRun)
            {
                foreach (var statement in statements)
                {
                    print(statement);
                }
                return;
            }
            try
            {
                await engine.ExecuteAsync(statements, cancellationToken).ConfigureAwait(false);
            }
            catch (OperationFailedException e)
            {
                failed.Add($"{account.Key}: {e.Message}");
                warn($"{account.Key} not restored: {e.Message}");
            }
        }
        foreach (var (account, create) in chosen)
        {
            await RunAsync(account, create).ConfigureAwait(false);
        }
        foreach (var (account, _) in chosen)
        {
            await RunAsync(account, account.Grants).ConfigureAwait(false);
            if (!failed.Any(f => f.StartsWith(account.Key + ":", StringComparison.Ordinal)))
            {
                restored.Add(account.Key);
            }
        }
        return new GlobalsRestoreResult(restored, skipped, failed);
    }

    /// <summary>SQL statements of a script, one per entry: lines up to one ending with ';' (comments and psql meta-commands left out).</summary>
    public static IEnumerable<string> Statements(string script)
    {
        var current = new System.Text.StringBuilder();
        foreach (var line in script.Split('\n'))
        {
            var trimmed = line.TrimEnd('\r');
            if (current.Length == 0 && (trimmed.Length == 0 || trimmed.StartsWith("--", StringComparison.Ordinal) || trimmed.StartsWith('\\')))
            {
                continue;
            }
            if (current.Length > 0)
            {
                current.Append('\n');
            }
            current.Append(trimmed);
            if (trimmed.EndsWith(';'))
            {
                yield return current.ToString();
                current.Clear();
            }
        }
    }
}
