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

    [Fact]
    public void Our_own_words_are_never_masked_so_the_mask_tells_nothing()
    {
        var secret = "w" + Guid.NewGuid().ToString("N")[..12];
        Redaction.Remember(secret);

        // A message of ours that happens to hold the same word: left alone.
        Assert.Equal($"{secret} '{secret}x' does not exist", new OperationFailedException($"{secret} '{secret}x' does not exist").Message);
        // What it quotes of a server or library: masked, where the word stands whole.
        var quoted = new OperationFailedException($"{secret}: server said: bad {secret}\\n{secret}",
            new InvalidOperationException($"server said: bad {secret}\\n{secret}"));
        Assert.Equal($"{secret}: server said: bad ***\\n***", quoted.Message);
    }
}
