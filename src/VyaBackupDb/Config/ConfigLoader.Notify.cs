using System.Text.RegularExpressions;
using VyaBackupDb.Config.Vault;
using VyaBackupDb.Retention;
using YamlDotNet.RepresentationModel;

namespace VyaBackupDb.Config;

/// <summary>The notify: section and an instance's expect_every: (unattended operation).</summary>
public static partial class ConfigLoader
{
    private sealed partial class Reader
    {
        private static readonly string[] WebhookKeys =
            ["name", "type", "on", "timeout_seconds", "url", "url_env", "url_file", "retries", "headers"];

        private static readonly string[] WebhookHeaderKeys = ["name", "value", "value_env", "value_file"];

        private static readonly string[] EmailKeys =
        [
            "name", "type", "on", "timeout_seconds", "host", "port", "starttls", "tls_fingerprint", "from", "to",
            "user", "password", "password_env", "password_file",
        ];

        [GeneratedRegex("^[!#$%&'*+.^_`|~0-9A-Za-z-]+$", RegexOptions.CultureInvariant)]
        private static partial Regex HeaderName();

        private List<NotifierConfig> ReadNotifiers(YamlMappingNode root, string baseDir, CredentialVault vault)
        {
            var notifiers = new List<NotifierConfig>();
            if (Get(root, "notify") is not { } node)
            {
                return notifiers;
            }
            if (node is not YamlSequenceNode list)
            {
                throw Error(node, "notify", "expected a list of notifiers (type: webhook or email)");
            }
            for (var i = 0; i < list.Children.Count; i++)
            {
                var prefix = $"notify[{i}].";
                var item = Mapping(list.Children[i], $"notify[{i}]");
                var type = OptionalString(item, "type", prefix) ?? throw Error(item, prefix + "type", "is required (webhook or email)");
                var name = OptionalString(item, "name", prefix) ?? $"{type}[{i}]";
                if (notifiers.Any(n => n.Name == name))
                {
                    throw Error(item, prefix + "name", $"'{name}' is used twice");
                }
                var on = OptionalString(item, "on", prefix) switch
                {
                    null or "failure" => NotifyOn.Failure,
                    "always" => NotifyOn.Always,
                    var text => throw Error(Get(item, "on")!, prefix + "on", $"'{text}' is not one of failure, always"),
                };
                notifiers.Add(type switch
                {
                    "webhook" => ReadWebhook(item, prefix, baseDir, vault, name, on),
                    "email" => ReadEmail(item, prefix, baseDir, vault, name, on),
                    _ => throw Error(Get(item, "type")!, prefix + "type", $"'{type}' is not one of webhook, email"),
                });
            }
            return notifiers;
        }

        private WebhookNotifierConfig ReadWebhook(
            YamlMappingNode node, string prefix, string baseDir, CredentialVault vault, string name, NotifyOn on)
        {
            CheckKeys(node, WebhookKeys, prefix);
            if (!new[] { "url", "url_env", "url_file" }.Any(k => Get(node, k) is not null))
            {
                throw Error(node, prefix + "url", "is required (or url_env, url_file: a webhook URL often holds its token)");
            }
            // A literal URL is checked now; one from the environment or a file when it is sent.
            if (OptionalString(node, "url", prefix) is { } literal && !IsHttpUrl(literal))
            {
                throw Error(Get(node, "url")!, prefix + "url", "is not an http:// or https:// URL");
            }
            var retries = OptionalInt(node, "retries", prefix) ?? 3;
            if (retries is < 0 or > 10)
            {
                throw Error(Get(node, "retries")!, prefix + "retries", "must be between 0 and 10");
            }
            var headers = new List<WebhookHeader>();
            if (Get(node, "headers") is { } headersNode)
            {
                if (headersNode is not YamlSequenceNode headerList)
                {
                    throw Error(headersNode, prefix + "headers", "expected a list of {name, value | value_env | value_file}");
                }
                for (var i = 0; i < headerList.Children.Count; i++)
                {
                    var headerPrefix = $"{prefix}headers[{i}].";
                    var header = Mapping(headerList.Children[i], $"{prefix}headers[{i}]");
                    CheckKeys(header, WebhookHeaderKeys, headerPrefix);
                    var headerName = OptionalString(header, "name", headerPrefix) ?? throw Error(header, headerPrefix + "name", "is required");
                    if (!HeaderName().IsMatch(headerName))
                    {
                        throw Error(Get(header, "name")!, headerPrefix + "name", $"'{headerName}' is not an HTTP header name");
                    }
                    var value = ReadSecretOrVault(header, headerPrefix, baseDir, "value", vault);
                    if (value == PasswordSource.None)
                    {
                        throw Error(header, headerPrefix + "value", "is required (value, value_env or value_file)");
                    }
                    headers.Add(new WebhookHeader(headerName, value));
                }
            }
            return new WebhookNotifierConfig(
                name, on, NotifyTimeout(node, prefix, 10), ReadSecretOrVault(node, prefix, baseDir, "url", vault), retries, headers);
        }

        private EmailNotifierConfig ReadEmail(
            YamlMappingNode node, string prefix, string baseDir, CredentialVault vault, string name, NotifyOn on)
        {
            CheckKeys(node, EmailKeys, prefix);
            var host = OptionalString(node, "host", prefix) ?? throw Error(node, prefix + "host", "is required");
            var port = OptionalInt(node, "port", prefix) ?? 587;
            if (port is <= 0 or > 65535)
            {
                throw Error(Get(node, "port")!, prefix + "port", $"{port} is not a TCP port");
            }
            var startTls = OptionalString(node, "starttls", prefix) switch
            {
                null or "required" => true,
                "none" => false,
                var other => throw Error(Get(node, "starttls")!, prefix + "starttls", $"'{other}' is not one of required, none"),
            };
            string? fingerprint = null;
            if (OptionalString(node, "tls_fingerprint", prefix) is { } text)
            {
                fingerprint = NormalizeFingerprint(text)
                    ?? throw Error(Get(node, "tls_fingerprint")!, prefix + "tls_fingerprint",
                        "is not a SHA-256 fingerprint (64 hex digits, colons allowed, as `openssl x509 -noout -fingerprint -sha256` prints it)");
                if (!startTls)
                {
                    throw Error(Get(node, "tls_fingerprint")!, prefix + "tls_fingerprint", "needs starttls: required");
                }
            }
            var from = OptionalString(node, "from", prefix) ?? throw Error(node, prefix + "from", "is required");
            var to = StringList(node, "to", prefix) ?? throw Error(node, prefix + "to", "is required (one address or a list)");
            foreach (var address in to.Prepend(from))
            {
                if (!address.Contains('@', StringComparison.Ordinal) || address.Any(char.IsControl))
                {
                    throw Error(Get(node, address == from ? "from" : "to")!, prefix + (address == from ? "from" : "to"), $"'{address}' is not a mail address");
                }
            }
            var user = OptionalString(node, "user", prefix);
            var password = ReadPassword(node, prefix, baseDir, vault);
            if (user is null && password != PasswordSource.None)
            {
                throw Error(node, prefix + "user", "is required with a password");
            }
            if (user is not null && password != PasswordSource.None && !startTls)
            {
                // The password would cross the network in clear text.
                throw Error(Get(node, "starttls")!, prefix + "starttls", "must be required when a user and password are given");
            }
            return new EmailNotifierConfig(name, on, NotifyTimeout(node, prefix, 30), host, port, startTls, fingerprint, from, to, user, password);
        }

        private TimeSpan NotifyTimeout(YamlMappingNode node, string prefix, int defaultSeconds)
        {
            var seconds = OptionalInt(node, "timeout_seconds", prefix) ?? defaultSeconds;
            return seconds is > 0 and <= 3600
                ? TimeSpan.FromSeconds(seconds)
                : throw Error(Get(node, "timeout_seconds")!, prefix + "timeout_seconds", "must be between 1 and 3600 seconds");
        }

        /// <summary>KEY (a value, or vault:NAME for the entry's password), KEY_env or KEY_file; None when none is given.</summary>
        private PasswordSource ReadSecretOrVault(YamlMappingNode node, string prefix, string baseDir, string key, CredentialVault vault)
        {
            if (OptionalString(node, key, prefix) is { } value && VaultReference(value, Get(node, key)!, prefix + key) is { } entry)
            {
                return PasswordSource.FromVault(vault, entry, withUser: false, $"{path}:{Line(Get(node, key)!)}: {prefix}{key}");
            }
            return ReadSecret(node, prefix, baseDir, key, defaultEnv: null);
        }

        /// <summary>expect_every: a duration like 26h or 7d (how often a backup is expected); null when absent.</summary>
        private TimeSpan? ReadExpectEvery(YamlMappingNode node, string prefix)
        {
            if (OptionalString(node, "expect_every", prefix) is not { } text)
            {
                return null;
            }
            if (!RetentionDuration.TryParse(text, out var duration)
                || ToTimeSpan(duration) is not { } span || span <= TimeSpan.Zero)
            {
                throw Error(Get(node, "expect_every")!, prefix + "expect_every", $"'{text}' is not {RetentionDuration.Syntax}, more than 0");
            }
            return span;

            static TimeSpan? ToTimeSpan(RetentionDuration d)
            {
                var hours = (((long)d.Years * 365) + ((long)d.Weeks * 7) + d.Days) * 24 + d.Hours;
                return hours > 100L * 365 * 24 ? null : TimeSpan.FromHours(hours);
            }
        }
    }

    /// <summary>A notifier's secrets written in the config itself (for the warning about a world-readable config).</summary>
    private static IEnumerable<string> NotifierLiterals(NotifierConfig notifier) => notifier switch
    {
        WebhookNotifierConfig hook =>
        [
            .. hook.Url.IsLiteral ? [$"notifier '{hook.Name}' url"] : Array.Empty<string>(),
            .. hook.Headers.Where(h => h.Value.IsLiteral).Select(h => $"notifier '{hook.Name}' header {h.Name}"),
        ],
        EmailNotifierConfig mail when mail.Password.IsLiteral => [$"notifier '{mail.Name}' password"],
        _ => [],
    };

    internal static bool IsHttpUrl(string text) =>
        Uri.TryCreate(text, UriKind.Absolute, out var uri) && uri.Scheme is "http" or "https";

    /// <summary>64 hex digits in upper case from "AB:CD:..." or "abcd..." (optionally "SHA256:" or "sha256 Fingerprint=" first); null otherwise.</summary>
    public static string? NormalizeFingerprint(string text)
    {
        var hex = text.Trim();
        foreach (var prefix in new[] { "sha256 fingerprint=", "sha256:" })
        {
            if (hex.StartsWith(prefix, StringComparison.OrdinalIgnoreCase))
            {
                hex = hex[prefix.Length..];
            }
        }
        hex = hex.Replace(":", "", StringComparison.Ordinal).ToUpperInvariant();
        return hex.Length == 64 && hex.All(Uri.IsHexDigit) ? hex : null;
    }
}
