namespace VyaBackupDb.Engines.Postgres;

/// <summary>
/// pg_dump's post-data output (post.sql, keys.sql) split at its entry headers (<c>--\n-- Name: ...; Type: INDEX; ...\n--</c>),
/// so that indexes and primary-key/unique constraints can be built on several connections at once
/// (each such statement locks one table; nothing else in post-data comes before them) and the rest
/// (foreign keys, triggers, rules, comments, materialized view data, ...) runs after them in order.
/// </summary>
/// <remarks>
/// A header is recognised only at the start of a line; a string in an index predicate that looked
/// like one could only cut a statement in two, which psql then rejects (ON_ERROR_STOP): the restore
/// fails, it cannot come out different. Every part still goes through the statement filter.
/// </remarks>
public static partial class PostgresPostData
{
    /// <summary>A byte range of the file; <paramref name="Parallel"/>: an INDEX or CONSTRAINT entry.</summary>
    public sealed record Part(long Start, long Length, bool Parallel);

    private static readonly byte[] NamePrefix = "-- Name: "u8.ToArray();
    private static readonly byte[] DataPrefix = "-- Data for Name: "u8.ToArray();
    private static readonly byte[] TypeMark = "; Type: "u8.ToArray();
    private static readonly byte[] DumpComplete = "-- PostgreSQL database dump complete"u8.ToArray();

    /// <summary>The preamble (settings before the first entry, repeated before every part), then the entries in file order.</summary>
    public static (long PreambleLength, List<Part> Entries) Split(Stream file)
    {
        var starts = new List<(long Offset, bool Parallel)>();
        // The three most recent lines: "--", "-- Name: ...", "--" make a header starting at the first.
        var lines = new (long Offset, byte[] Text)[3];
        var count = 0;
        file.Position = 0;
        foreach (var (offset, text) in Lines(file))
        {
            lines[0] = lines[1];
            lines[1] = lines[2];
            lines[2] = (offset, text);
            count++;
            if (count >= 3 && IsDashes(lines[0].Text) && IsDashes(lines[2].Text))
            {
                var middle = lines[1].Text.AsSpan();
                if ((middle.StartsWith(NamePrefix) || middle.StartsWith(DataPrefix)) && middle.IndexOf(TypeMark) is var at and >= 0)
                {
                    var type = middle[(at + TypeMark.Length)..];
                    var end = type.IndexOf("; "u8);
                    type = end < 0 ? type : type[..end];
                    starts.Add((lines[0].Offset, middle.StartsWith(NamePrefix) && (type.SequenceEqual("INDEX"u8) || type.SequenceEqual("CONSTRAINT"u8))));
                }
                else if (middle.SequenceEqual(DumpComplete))
                {
                    starts.Add((lines[0].Offset, false));
                }
            }
        }
        var length = file.Length;
        if (starts.Count == 0)
        {
            return (length, []);
        }
        var entries = new List<Part>();
        for (var i = 0; i < starts.Count; i++)
        {
            var next = i + 1 < starts.Count ? starts[i + 1].Offset : length;
            entries.Add(new Part(starts[i].Offset, next - starts[i].Offset, starts[i].Parallel));
        }
        return (starts[0].Offset, entries);
    }

    private static bool IsDashes(byte[] line) => line is [(byte)'-', (byte)'-'];

    /// <summary>
    /// The table an entry of keys.sql builds a key on, from its statement as pg_dump writes it
    /// (<c>ALTER TABLE ONLY "s"."t" ADD CONSTRAINT ...</c>, <c>CREATE [UNIQUE] INDEX "i" ON [ONLY] "s"."t" ...</c>);
    /// null for anything else. It only says when the entry runs (the statement itself goes through
    /// the filter like any other): a wrong answer could only build a key while rows still load.
    /// </summary>
    public static (string Schema, string Table)? KeyTable(ReadOnlySpan<byte> entry)
    {
        // The statement starts after the header's comment lines and the blank lines.
        while (entry.Length > 0 && (entry[0] == (byte)'\n' || entry.StartsWith("--"u8)))
        {
            var newline = entry.IndexOf((byte)'\n');
            entry = newline < 0 ? [] : entry[(newline + 1)..];
        }
        var text = System.Text.Encoding.UTF8.GetString(entry[..Math.Min(entry.Length, 4096)]);
        var match = KeyStatement().Match(text);
        return match.Success ? (Unquote(match.Groups["schema"].Value), Unquote(match.Groups["table"].Value)) : null;
    }

    private static string Unquote(string quoted) => quoted[1..^1].Replace("\"\"", "\"", StringComparison.Ordinal);

    [System.Text.RegularExpressions.GeneratedRegex(
        @"\A(?:ALTER TABLE (?:ONLY )?|CREATE (?:UNIQUE )?INDEX ""(?:[^""]|"""")+"" ON (?:ONLY )?)(?<schema>""(?:[^""]|"""")+"")\.(?<table>""(?:[^""]|"""")+"")\s")]
    private static partial System.Text.RegularExpressions.Regex KeyStatement();

    /// <summary>The file's lines (without their newline) and where each starts; long lines are cut short (only short ones matter here).</summary>
    private static IEnumerable<(long Offset, byte[] Text)> Lines(Stream file)
    {
        const int Keep = 4096;
        var buffer = new byte[1 << 16];
        var line = new List<byte>();
        long position = 0;
        long lineStart = 0;
        int n;
        while ((n = file.Read(buffer, 0, buffer.Length)) > 0)
        {
            var i = 0;
            while (i < n)
            {
                var newline = Array.IndexOf(buffer, (byte)'\n', i, n - i);
                var take = newline < 0 ? n - i : newline - i;
                if (line.Count < Keep)
                {
                    line.AddRange(new ArraySegment<byte>(buffer, i, Math.Min(take, Keep - line.Count)));
                }
                if (newline < 0)
                {
                    break;
                }
                yield return (lineStart, [.. line]);
                line.Clear();
                i = newline + 1;
                lineStart = position + i;
            }
            position += n;
        }
        if (position > lineStart)
        {
            yield return (lineStart, [.. line]);
        }
    }

    /// <summary>Reads the given byte ranges of a file one after the other, as one stream.</summary>
    public sealed class Ranges(string path, IReadOnlyList<(long Start, long Length)> ranges) : Pipeline.ReadOnlyStream
    {
        private readonly FileStream _file = new(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete, 1 << 16);
        private int _range;
        private long _done;

        public override int Read(Span<byte> buffer)
        {
            while (_range < ranges.Count)
            {
                var (start, length) = ranges[_range];
                if (_done == length)
                {
                    _range++;
                    _done = 0;
                    continue;
                }
                _file.Position = start + _done;
                var n = _file.Read(buffer[..(int)Math.Min(buffer.Length, length - _done)]);
                if (n == 0)
                {
                    throw new EndOfStreamException("a spooled entry of the backup set ended early");
                }
                _done += n;
                return n;
            }
            return 0;
        }

        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
            new(Read(buffer.Span));

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                _file.Dispose();
            }
            base.Dispose(disposing);
        }
    }

}
