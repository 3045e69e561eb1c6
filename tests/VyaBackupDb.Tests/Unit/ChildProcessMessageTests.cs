using VyaBackupDb.Engines;
using Xunit;

namespace VyaBackupDb.Tests.Unit;

/// <summary>What a failed dump or load tool's stderr comes down to in the one-line error.</summary>
public sealed class ChildProcessMessageTests
{
    /// <summary>
    /// pg_dump's error line comes before the query's text and its detail: a tester's failed backup said
    /// only "LINE 1: SELECT last_value ... | ^ | pg_dump: detail: Query was: ...", never what was wrong.
    /// </summary>
    [Fact]
    public void A_tools_error_line_is_kept_when_lines_follow_it()
    {
        var stderr = "pg_dump: error: query failed: ERROR:  relation \"public.t_id_seq\" does not exist\n"
            + "LINE 1: SELECT last_value, is_called FROM \"public\".\"t_id_seq\"\n"
            + "                                          ^\n"
            + "pg_dump: detail: Query was: SELECT last_value, is_called FROM \"public\".\"t_id_seq\"\n";

        var summary = ChildProcess.SummarizeStderr(stderr);

        Assert.StartsWith("pg_dump: error: query failed: ERROR:  relation \"public.t_id_seq\" does not exist | LINE 1:", summary, StringComparison.Ordinal);
    }

    [Fact]
    public void Without_an_error_line_the_last_lines_are_kept()
    {
        Assert.Equal("three | four | five", ChildProcess.SummarizeStderr("one\ntwo\nthree\nfour\nfive\n"));
    }
}
