using System.CommandLine;
using VyaBackupDb.Config.Vault;
using VyaBackupDb.Errors;

namespace VyaBackupDb.Cli.Commands;

/// <summary>vault set | get | list | remove: the encrypted credentials file the config points at.</summary>
internal static class VaultCommand
{
    public static Command Create()
    {
        var command = new Command("vault", $"Manage the encrypted credential vault (passphrase: ${CredentialVault.KeyEnvVar}, "
            + $"${CredentialVault.KeyFileEnvVar}, vault_key_file in the config, or a prompt)")
        {
            Set(), Get(), List(), Remove(),
        };
        return command;
    }

    private static Argument<string> NameArgument() => new("NAME") { Description = "The entry's name (letters, digits, . _ @ -)" };

    private static Command Set()
    {
        var name = NameArgument();
        var user = new Option<string?>("--user", "-u") { Description = "The user to store (default: keep the entry's user)" };
        var passwordStdin = new Option<bool>("--password-stdin") { Description = "Read the password from stdin (else: prompt on the terminal)" };
        var command = new Command("set", "Add or replace an entry") { name, user, passwordStdin };
        command.SetAction((parseResult, cancellationToken) => CommonOptions.RunAsync(() =>
        {
            var config = CommonOptions.LoadConfig(parseResult);
            var entryName = CheckedName(parseResult.GetRequiredValue(name));
            // A wrong passphrase fails before the operator types the password.
            config.Vault.Unlock();
            var password = parseResult.GetValue(passwordStdin) ? ReadPasswordFromStdin() : PromptPassword(entryName);
            var newUser = parseResult.GetValue(user);
            string? storedUser = null;
            config.Vault.Update(entries =>
            {
                storedUser = newUser ?? (entries.TryGetValue(entryName, out var old) ? old.User : null);
                entries[entryName] = new VaultEntry(storedUser, password);
            });
            Output.Line($"stored '{entryName}'{(storedUser is null ? " (no user)" : $" (user {storedUser})")} in {config.Vault.Path}");
            return Task.FromResult(ExitCode.Success);
        }));
        return command;
    }

    private static Command Get()
    {
        var name = NameArgument();
        var showPassword = new Option<bool>("--show-password") { Description = "Print the password too" };
        var command = new Command("get", "Print an entry's user (and, with --show-password, its password)") { name, showPassword };
        command.SetAction((parseResult, cancellationToken) => CommonOptions.RunAsync(() =>
        {
            var config = CommonOptions.LoadConfig(parseResult);
            var entryName = parseResult.GetRequiredValue(name);
            var entry = config.Vault.Find(entryName) ?? throw NotFound(entryName, config.Vault);
            Output.Line($"user: {entry.User ?? ""}");
            if (parseResult.GetValue(showPassword))
            {
                Output.Verbatim($"password: {entry.Password}");
            }
            return Task.FromResult(ExitCode.Success);
        }));
        return command;
    }

    private static Command List()
    {
        var command = new Command("list", "List the entries: names and users, never passwords");
        command.SetAction((parseResult, cancellationToken) => CommonOptions.RunAsync(() =>
        {
            var config = CommonOptions.LoadConfig(parseResult);
            var entries = config.Vault.Read().OrderBy(e => e.Key, StringComparer.Ordinal).ToList();
            var width = entries.Count == 0 ? 0 : entries.Max(e => e.Key.Length);
            foreach (var (entryName, entry) in entries)
            {
                Output.Line($"{entryName.PadRight(width)}  {entry.User ?? "(no user)"}");
            }
            return Task.FromResult(ExitCode.Success);
        }));
        return command;
    }

    private static Command Remove()
    {
        var name = NameArgument();
        var command = new Command("remove", "Remove an entry") { name };
        command.SetAction((parseResult, cancellationToken) => CommonOptions.RunAsync(() =>
        {
            var config = CommonOptions.LoadConfig(parseResult);
            var entryName = parseResult.GetRequiredValue(name);
            if (config.Vault.Find(entryName) is null)
            {
                throw NotFound(entryName, config.Vault);
            }
            config.Vault.Update(entries => entries.Remove(entryName));
            Output.Line($"removed '{entryName}' from {config.Vault.Path}");
            return Task.FromResult(ExitCode.Success);
        }));
        return command;
    }

    private static string CheckedName(string name) =>
        CredentialVault.IsValidName(name)
            ? name
            : throw new UsageException($"'{name}' is not a vault entry name: use letters, digits and . _ @ - (starting with a letter or digit)");

    private static UsageException NotFound(string name, CredentialVault vault) =>
        new($"there is no entry '{name}' in the vault {vault.Path}");

    /// <summary>All of stdin, less one trailing newline (echo and here-strings add one).</summary>
    private static string ReadPasswordFromStdin()
    {
        string text;
        try
        {
            text = BoundedRead.Text(Console.OpenStandardInput(), "a password", 64 * 1024);
        }
        catch (IOException e)
        {
            throw new UsageException($"--password-stdin: {e.Message}");
        }
        text = text.EndsWith("\r\n", StringComparison.Ordinal) ? text[..^2] : text.EndsWith('\n') ? text[..^1] : text;
        return text.Length > 0 ? text : throw new UsageException("--password-stdin: stdin gave an empty password");
    }

    private static string PromptPassword(string name)
    {
        var password = CommonOptions.ReadSecret($"Password for '{name}': ")
            ?? throw new UsageException("no terminal to ask for the password on: give --password-stdin and pipe it in");
        if (password.Length == 0)
        {
            throw new UsageException("the password must not be empty");
        }
        if (CommonOptions.ReadSecret("Repeat the password: ") != password)
        {
            throw new UsageException("the two passwords differ; nothing was stored");
        }
        return password;
    }
}
