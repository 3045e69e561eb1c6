using VyaBackupDb.Config;
using VyaBackupDb.Errors;

namespace VyaBackupDb.Tests.Unit;

public sealed class RedactionTests
{
    [Fact]
    public void Resolved_passwords_and_each_of_their_lines_are_masked()
    {
        var secret = "redaction-" + Guid.NewGuid().ToString("N") + "\nits-second-line";
        Assert.Equal(secret, PasswordSource.Literal(secret).Resolve());

        var text = Redaction.Redact($"tool said: password=\"{secret}\" | unknown option '--its-second-line' | ok");

        Assert.Equal("tool said: password=\"***\" | unknown option '--***' | ok", text);
    }

    [Fact]
    public void Very_short_values_are_not_masked_everywhere()
    {
        Redaction.Remember("ab");
        Assert.Equal("a table, abc", Redaction.Redact("a table, abc"));
    }
}
