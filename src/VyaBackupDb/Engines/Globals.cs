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

    /// <summary>Whether an account is the one this instance logs in as: never created, altered or dropped.</summary>
    bool IsRestoringAccount(GlobalsAccount account);

    /// <summary>The user or role name of an account (MySQL: without its host).</summary>
    string AccountName(GlobalsAccount account);

    /// <summary>
    /// The statements that put an existing account in the state the backup recorded (restore
    /// --globals --replace-existing), its grants then run on it; other accounts stay as they are.
    /// </summary>
    IReadOnlyList<string> ReplaceStatements(GlobalsAccount account);

    /// <summary>Removes an account this restore created (its grants failed): a re-run then creates it whole.</summary>
    IReadOnlyList<string> DropStatements(GlobalsAccount account);

    /// <summary>
    /// Takes back what creating the account gave the restoring account, once every grant has run
    /// (MariaDB: CREATE ROLE grants the new role to its creator WITH ADMIN OPTION, which the
    /// restore needs to grant the role on).
    /// </summary>
    IReadOnlyList<string> RevokeFromCreator(GlobalsAccount created);

    /// <summary>Runs one account's statements in order; an error names the statement's failure.</summary>
    Task ExecuteAsync(IReadOnlyList<string> statements, CancellationToken cancellationToken);
}

/// <param name="Key">The account as the server names it (a PostgreSQL role name; MySQL `user`@`host` or `role`).</param>
/// <param name="Create">Creates it and sets its attributes and settings.</param>
/// <param name="Grants">Its privileges and memberships: run once every account exists.</param>
public sealed record GlobalsAccount(string Key, List<string> Create, List<string> Grants);

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
    /// that a failure names it), then every account's grants. Existing accounts are skipped unless
    /// <see cref="GlobalsRestoreOptions.ReplaceExisting"/>; the restoring account never changes.
    /// An account this run created whose grants fail is dropped again. A dry run prints the
    /// statements it would run and touches nothing.
    /// </summary>
    public static async Task<GlobalsRestoreResult> RestoreAsync(
        IGlobalsEngine engine, IReadOnlyList<GlobalsAccount> accounts, GlobalsRestoreOptions options, Action<string> print, Action<string> warn,
        CancellationToken cancellationToken)
    {
        var existing = await engine.ExistingAccountsAsync(cancellationToken).ConfigureAwait(false);
        var skipped = new List<string>();
        var chosen = new List<(GlobalsAccount Account, IReadOnlyList<string> Create, bool Created)>();
        foreach (var account in accounts)
        {
            if (engine.IsRestoringAccount(account))
            {
                warn($"{account.Key} is the account this restore logs in as: left unchanged");
            }
            else if (!existing.Contains(account.Key))
            {
                chosen.Add((account, account.Create, true));
            }
            else if (options.ReplaceExisting)
            {
                chosen.Add((account, engine.ReplaceStatements(account), false));
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
        var failed = new Dictionary<string, string>(StringComparer.Ordinal);
        async Task<bool> RunAsync(GlobalsAccount account, IReadOnlyList<string> statements)
        {
            if (failed.ContainsKey(account.Key))
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
                failed[account.Key] = e.Message;
                return false;
            }
        }
        foreach (var (account, create, _) in chosen)
        {
            await RunAsync(account, create).ConfigureAwait(false);
        }
        foreach (var (account, _, created) in chosen)
        {
            if (!failed.ContainsKey(account.Key) && !await RunAsync(account, account.Grants).ConfigureAwait(false) && created)
            {
                try
                {
                    await engine.ExecuteAsync(engine.DropStatements(account), cancellationToken).ConfigureAwait(false);
                    failed[account.Key] += " (it was removed again)";
                }
                catch (OperationFailedException e)
                {
                    failed[account.Key] += $"; it is left without its grants (removing it failed: {e.Message})";
                }
            }
        }
        foreach (var (account, _, created) in chosen)
        {
            if (created)
            {
                await RunAsync(account, engine.RevokeFromCreator(account)).ConfigureAwait(false);
            }
        }
        foreach (var (key, why) in failed)
        {
            warn($"{key} not restored: {why}");
        }
        var restored = chosen.Select(c => c.Account.Key).Where(k => !failed.ContainsKey(k)).ToList();
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
