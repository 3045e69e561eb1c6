using VyaBackupDb.Catalog;
using VyaBackupDb.Errors;

namespace VyaBackupDb.Engines;

/// <summary>A server's roles/accounts and their grants: backed up as their own item, restored with restore --globals.</summary>
public interface IGlobalsEngine
{
    /// <summary>Writes the roles/accounts, memberships, settings and grants as SQL, ending with the engine's completion trailer.</summary>
    Task<DumpDetails> DumpGlobalsAsync(Stream output, CancellationToken cancellationToken);

    /// <summary>
    /// The accounts of a globals script (one group of statements each). Only the statements this
    /// engine's globals backup writes are accepted, each about the account of its group; anything
    /// else refuses the whole script (<see cref="DumpFilterException"/> naming the line), before
    /// anything runs. What is recognised but not restored is named through <paramref name="warn"/>.
    /// </summary>
    IReadOnlyList<GlobalsAccount> ParseGlobals(string script, Action<string> warn);

    /// <summary>The accounts that exist on the server now (keys as <see cref="GlobalsAccount.Key"/> spells them).</summary>
    Task<HashSet<string>> ExistingAccountsAsync(CancellationToken cancellationToken);

    /// <summary>
    /// The existing accounts that hold every right (PostgreSQL superusers): --replace-existing leaves
    /// them unchanged, so that a tampered file cannot set their password or attributes.
    /// </summary>
    Task<HashSet<string>> SuperusersAsync(CancellationToken cancellationToken);

    /// <summary>
    /// The copies of accounts a replacement set aside that an interrupted run left on the server
    /// (<paramref name="existing"/>), each with the account of <paramref name="accounts"/> it was if known.
    /// </summary>
    IReadOnlyList<string> LeftAside(HashSet<string> existing, IReadOnlyList<GlobalsAccount> accounts);

    /// <summary>
    /// The statement that puts back an account an interrupted run set aside (it is missing from
    /// <paramref name="existing"/>, its set-aside copy is there); null if there is none.
    /// </summary>
    string? PutBack(GlobalsAccount account, HashSet<string> existing);

    /// <summary>What a replaced account kept that its record does not give it (said in a warning); null if nothing.</summary>
    Task<string?> KeptBeyondRecordAsync(GlobalsAccount account, CancellationToken cancellationToken);

    /// <summary>Whether an account is the one this instance logs in as: never created, altered or dropped.</summary>
    bool IsRestoringAccount(GlobalsAccount account);

    /// <summary>The user or role name of an account (MySQL: without its host).</summary>
    string AccountName(GlobalsAccount account);

    /// <summary>
    /// How an account is put in place: created, or (<paramref name="exists"/>: restore --globals
    /// --replace-existing) an existing one replaced by the recorded one; other accounts stay as they are.
    /// </summary>
    Task<GlobalsPlan> PlanAsync(GlobalsAccount account, bool exists, CancellationToken cancellationToken);

    /// <summary>Runs one account's statements in order; an error names the statement's failure.</summary>
    Task ExecuteAsync(IReadOnlyList<string> statements, CancellationToken cancellationToken);
}

/// <param name="Key">The account as the server names it (a PostgreSQL role name; MySQL `user`@`host` or `role`).</param>
/// <param name="Create">Creates it and sets its attributes and settings.</param>
/// <param name="Grants">Its privileges and memberships: run once every account exists.</param>
public sealed record GlobalsAccount(string Key, List<string> Create, List<string> Grants)
{
    /// <summary>A MariaDB role the backup shows the instance's own account holding WITH ADMIN OPTION: creating it leaves it so.</summary>
    public bool AdministeredByRestorer { get; init; }
}

/// <summary>
/// The statements that put one account in place, in steps; each step runs as one unit (PostgreSQL:
/// one transaction), so a failed step of PostgreSQL changes nothing.
/// </summary>
/// <param name="Aside">
/// First, for an existing account: moves it out of the way (MySQL: renamed); if it fails, nothing
/// changed. An account with an Aside is put in place whole (Aside to Keep) after the others are created.
/// </param>
/// <param name="Create">Creates the account (or sets the existing one as recorded).</param>
/// <param name="Grants">Its privileges and memberships: run once every account without an Aside is created.</param>
/// <param name="Keep">If this one's grants succeeded (drops what Aside kept; takes back what creating it gave the creator, once every grant ran).</param>
/// <param name="Undo">
/// When Create or Grants failed: puts the server back as it was before the restore (a created
/// account removed, a replaced one back as it was).
/// </param>
public sealed record GlobalsPlan(
    IReadOnlyList<string> Aside, IReadOnlyList<string> Create, IReadOnlyList<string> Grants, IReadOnlyList<string> Keep, IReadOnlyList<string> Undo);

public sealed record GlobalsRestoreOptions(bool DryRun, bool ReplaceExisting);

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
    /// The accounts named by <paramref name="only"/> (user or role names; empty: all). A name that
    /// matches none of them is a usage error: a typo must not pass as "0 restored".
    /// </summary>
    public static IReadOnlyList<GlobalsAccount> Select(IGlobalsEngine engine, IReadOnlyList<GlobalsAccount> accounts, IReadOnlyList<string>? only)
    {
        if (only is not { Count: > 0 })
        {
            return accounts;
        }
        var unmatched = only.Where(name => !accounts.Any(a => engine.AccountName(a) == name)).Distinct(StringComparer.Ordinal).ToList();
        if (unmatched.Count > 0)
        {
            throw new UsageException($"--account {string.Join(", ", unmatched.Select(GlobalsSql.Show))}: not in this backup; nothing was restored");
        }
        return [.. accounts.Where(a => only.Contains(engine.AccountName(a), StringComparer.Ordinal))];
    }

    /// <summary>
    /// Applies the accounts of a globals script: every account created first (one at a time, so
    /// that a failure names it), then every account's grants; an account set aside (a replaced
    /// MySQL user) is then replaced whole, one after the other. Existing accounts are skipped unless
    /// <see cref="GlobalsRestoreOptions.ReplaceExisting"/>; the restoring account and existing
    /// superusers never change. An account whose statements fail is put back as it was (one this
    /// run created is dropped again, a replaced one is the one it replaced). What an interrupted
    /// run left aside is put back or named first. A dry run prints the statements it would run
    /// and touches nothing.
    /// </summary>
    public static async Task<GlobalsRestoreResult> RestoreAsync(
        IGlobalsEngine engine, IReadOnlyList<GlobalsAccount> accounts, GlobalsRestoreOptions options, Action<string> print, Action<string> warn,
        CancellationToken cancellationToken)
    {
        var existing = await engine.ExistingAccountsAsync(cancellationToken).ConfigureAwait(false);
        var putBack = options.DryRun ? [] : accounts.Where(a => !engine.IsRestoringAccount(a)).Select(a => (a.Key, Statement: engine.PutBack(a, existing)))
            .Where(p => p.Statement is not null).ToList();
        foreach (var (key, statement) in putBack)
        {
            await engine.ExecuteAsync([statement!], cancellationToken).ConfigureAwait(false);
            warn($"{key} is put back from where an interrupted restore --globals --replace-existing had set it aside");
        }
        if (putBack.Count > 0)
        {
            existing = await engine.ExistingAccountsAsync(cancellationToken).ConfigureAwait(false);
        }
        var superusers = await engine.SuperusersAsync(cancellationToken).ConfigureAwait(false);
        if (engine.LeftAside(existing, accounts) is { Count: > 0 } leftAside)
        {
            warn($"left aside by an interrupted restore --globals --replace-existing, each with an account's old password and grants: {string.Join(", ", leftAside)}; rename it back or drop it by hand");
        }
        var skipped = new List<string>();
        var chosen = new List<(string Key, bool Existed, GlobalsPlan Plan)>();
        foreach (var account in accounts)
        {
            var exists = existing.Contains(account.Key);
            if (engine.IsRestoringAccount(account))
            {
                warn($"{account.Key} is the account this restore logs in as: left unchanged");
            }
            else if (exists && !options.ReplaceExisting)
            {
                skipped.Add(account.Key);
            }
            else if (superusers.Contains(account.Key))
            {
                warn($"{account.Key} is a superuser on this server: left unchanged (change it by hand if need be)");
            }
            else
            {
                chosen.Add((account.Key, exists, await engine.PlanAsync(account, exists, cancellationToken).ConfigureAwait(false)));
            }
        }
        if (skipped.Count > 0)
        {
            warn($"already on the server, skipped (--replace-existing to replace them): {string.Join(", ", skipped)}");
        }
        var failed = new Dictionary<string, string>(StringComparer.Ordinal);
        async Task<bool> RunAsync(string key, IReadOnlyList<string> statements)
        {
            if (failed.ContainsKey(key))
            {
                return false;
            }
            if (options.DryRun)
            {
                foreach (var statement in statements)
                {
                    print(statement + ";");
                }
                return true;
            }
            try
            {
                await engine.ExecuteAsync(statements, cancellationToken).ConfigureAwait(false);
                return true;
            }
            catch (OperationFailedException e)
            {
                failed[key] = e.Message;
                return false;
            }
        }
        // Each statement on its own: one that fails (a grant on a table dropped since) does not keep the others from running.
        async Task UndoAsync(string key, bool existed, GlobalsPlan plan)
        {
            var undone = new List<string>();
            foreach (var statement in plan.Undo)
            {
                try
                {
                    await engine.ExecuteAsync([statement], cancellationToken).ConfigureAwait(false);
                }
                catch (OperationFailedException e)
                {
                    undone.Add($"{statement} ({e.Message})");
                }
            }
            failed[key] += undone.Count == 0 ? existed ? " (it is left as it was)" : " (it was removed again)"
                : $"; putting it back as it was, these failed: {string.Join("; ", undone)}";
        }
        async Task KeepAsync(string key, GlobalsPlan plan)
        {
            if (!await RunAsync(key, plan.Keep).ConfigureAwait(false))
            {
                failed[key] = $"it is restored, but what the restore left to tidy up was not: {failed[key]}";
            }
        }
        // First every account the others' grants may name (roles, new accounts) is created. A failed
        // CREATE made nothing: undoing it would drop an account this run did not create.
        var replacedWhole = chosen.Where(c => c.Plan.Aside.Count > 0).ToList();
        var createdFirst = chosen.Where(c => c.Plan.Aside.Count == 0).ToList();
        foreach (var step in createdFirst)
        {
            if (!await RunAsync(step.Key, step.Plan.Create).ConfigureAwait(false) && step.Existed)
            {
                await UndoAsync(step.Key, step.Existed, step.Plan).ConfigureAwait(false);
            }
        }
        foreach (var step in createdFirst)
        {
            if (!failed.ContainsKey(step.Key) && !await RunAsync(step.Key, step.Plan.Grants).ConfigureAwait(false))
            {
                await UndoAsync(step.Key, step.Existed, step.Plan).ConfigureAwait(false);
            }
        }
        // An account set aside is put in place whole (aside, create, grants, keep) before the next
        // one starts: a killed run leaves at most one account aside, not every one.
        foreach (var step in replacedWhole)
        {
            // A failed Aside changed nothing: there is nothing to put back.
            if (!await RunAsync(step.Key, step.Plan.Aside).ConfigureAwait(false))
            {
                continue;
            }
            if (!await RunAsync(step.Key, step.Plan.Create).ConfigureAwait(false) || !await RunAsync(step.Key, step.Plan.Grants).ConfigureAwait(false))
            {
                await UndoAsync(step.Key, step.Existed, step.Plan).ConfigureAwait(false);
                continue;
            }
            await KeepAsync(step.Key, step.Plan).ConfigureAwait(false);
        }
        // Last: what creating gave the restoring account (a MariaDB role, needed to grant it on above).
        foreach (var step in createdFirst.Where(c => !failed.ContainsKey(c.Key)))
        {
            await KeepAsync(step.Key, step.Plan).ConfigureAwait(false);
        }
        foreach (var step in chosen.Where(c => c.Existed && !options.DryRun && !failed.ContainsKey(c.Key)))
        {
            if (await engine.KeptBeyondRecordAsync(accounts.First(a => a.Key == step.Key), cancellationToken).ConfigureAwait(false) is { } kept)
            {
                warn($"{step.Key} restored, but {kept}");
            }
        }
        // The failures are the run's error (one line at its end), not said twice.
        var restored = chosen.Select(c => c.Key).Where(k => !failed.ContainsKey(k)).ToList();
        return new GlobalsRestoreResult(restored, skipped, [.. failed.Select(f => $"{f.Key}: {f.Value}")]);
    }

    /// <summary>
    /// The SQL statements of a script with the line each starts on: lines up to one ending with
    /// ';' (the ';' left out). Comment lines and psql meta-commands between statements are left
    /// out, but for comment lines starting with <paramref name="marker"/>, which come as their own
    /// entries.
    /// </summary>
    public static IEnumerable<(int Line, string Text)> Statements(string script, string? marker = null)
    {
        var current = new System.Text.StringBuilder();
        var start = 0;
        var number = 0;
        foreach (var line in script.Split('\n'))
        {
            number++;
            var trimmed = line.TrimEnd('\r');
            if (current.Length == 0)
            {
                if (marker is not null && trimmed.StartsWith(marker, StringComparison.Ordinal))
                {
                    yield return (number, trimmed);
                    continue;
                }
                if (trimmed.Length == 0 || trimmed.StartsWith("--", StringComparison.Ordinal) || trimmed.StartsWith('\\'))
                {
                    continue;
                }
                start = number;
            }
            else
            {
                current.Append('\n');
            }
            current.Append(trimmed);
            if (trimmed.EndsWith(';'))
            {
                yield return (start, current.ToString(0, current.Length - 1));
                current.Clear();
            }
        }
    }
}
