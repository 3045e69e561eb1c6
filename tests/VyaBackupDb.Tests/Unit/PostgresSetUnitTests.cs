using System.Text;
using VyaBackupDb.Engines.Postgres;

namespace VyaBackupDb.Tests.Unit;

/// <summary>The parallel engine's chunk headers (written and read back strictly) and the split of post-data.</summary>
[Trait("Category", "Unit")]
public sealed class PostgresSetUnitTests
{
    [Theory]
    [InlineData("public", "t", new[] { "id", "v" })]
    [InlineData("we\"ird", "Ta\nble", new[] { "co\"l", "a b", "😀" })]
    [InlineData("s", "nocols", new string[0])]
    public void A_header_reads_back_as_written(string schema, string table, string[] columns)
    {
        var header = PostgresCopyChunk.Header(schema, table, columns);
        var quoted = false;
        var end = PostgresCopyChunk.HeaderEnd(header, ref quoted);
        Assert.Equal(header.Length - 1, end);

        var parsed = PostgresCopyChunk.Parse(header.AsSpan(0, end));

        Assert.NotNull(parsed);
        Assert.Equal(schema, parsed.Schema);
        Assert.Equal(table, parsed.Table);
        Assert.Equal(columns, parsed.Columns);
    }

    [Theory]
    [InlineData("COPY public.t (id) FROM stdin;")]
    [InlineData("COPY \"public\".\"t\" (\"id\") FROM PROGRAM 'id';")]
    [InlineData("COPY \"public\".\"t\" (\"id\") FROM '/etc/passwd';")]
    [InlineData("COPY \"public\".\"t\" (\"id\") FROM stdin WITH (FORMAT csv);")]
    [InlineData("COPY \"public\".\"t\" (\"id\") FROM stdin; DROP TABLE x;")]
    [InlineData("COPY \"public\".\"t\" (\"id\", \"id\") FROM stdin;")]
    [InlineData("COPY \"public\".\"t\" () FROM stdin;")]
    [InlineData("COPY \"\".\"t\" FROM stdin;")]
    [InlineData("COPY \"public\".\"t\"  FROM stdin;")]
    [InlineData("COPY \"public\".\"t\" (\"id\" FROM stdin;")]
    [InlineData("COPY \"public\" FROM stdin;")]
    [InlineData("copy \"public\".\"t\" FROM stdin;")]
    [InlineData("COPY \"public\".\"t\" TO stdout;")]
    [InlineData("COPY \"public\".\"t\u0000\" FROM stdin;")]
    [InlineData("DROP TABLE \"public\".\"t\";")]
    public void Anything_but_our_own_header_is_refused(string line) =>
        Assert.Null(PostgresCopyChunk.Parse(Encoding.UTF8.GetBytes(line)));

    [Fact]
    public void Bytes_that_are_not_UTF8_are_refused() =>
        Assert.Null(PostgresCopyChunk.Parse([.. "COPY \"public\".\""u8, 0xff, .. "\" FROM stdin;"u8]));

    [Theory]
    [InlineData("\n1\tx\n2\ty\n", false)]
    [InlineData("\n1\t\\\\.\n", false)]
    [InlineData("\n1\tx\n\\.\n", true)]
    [InlineData("\n\\.", true)]
    [InlineData("\n1\ta\\.\n", false)]
    public void An_end_marker_is_found_only_at_a_line_start(string rows, bool found) =>
        Assert.Equal(found, PostgresCopyChunk.HasEndMarker(Encoding.UTF8.GetBytes(rows)));

    [Fact]
    public void Post_data_splits_into_its_preamble_and_entries_with_indexes_and_constraints_marked_parallel()
    {
        const string Post = """
            --
            -- PostgreSQL database dump
            --

            SET statement_timeout = 0;

            --
            -- Data for Name: BLOBS; Type: BLOBS; Schema: -; Owner: -
            --

            SELECT pg_catalog.lo_open('1', 131072);

            --
            -- Name: t t_pkey; Type: CONSTRAINT; Schema: public; Owner: -
            --

            ALTER TABLE ONLY "public"."t" ADD CONSTRAINT "t_pkey" PRIMARY KEY ("id");

            --
            -- Name: t_v_idx; Type: INDEX; Schema: public; Owner: -
            --

            CREATE INDEX "t_v_idx" ON "public"."t" USING "btree" ("v") WHERE v <> '
            --
            -- Name: x; Type: INDEX; Schema: public; Owner: -
            --x';

            --
            -- Name: u u_t_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
            --

            ALTER TABLE ONLY "public"."u" ADD CONSTRAINT "u_t_fkey" FOREIGN KEY ("t") REFERENCES "public"."t"("id");

            --
            -- PostgreSQL database dump complete
            --

            """;
        var bytes = Encoding.UTF8.GetBytes(Post);
        var (preamble, entries) = PostgresPostData.Split(new MemoryStream(bytes));

        string Text(long start, long length) => Encoding.UTF8.GetString(bytes, (int)start, (int)length);
        Assert.EndsWith("SET statement_timeout = 0;\n\n", Text(0, preamble), StringComparison.Ordinal);
        Assert.Equal([false, true, true, false, false], entries.Select(e => e.Parallel));
        Assert.Contains("BLOBS", Text(entries[0].Start, entries[0].Length), StringComparison.Ordinal);
        // A header-looking text not followed by "--" on a line of its own stays inside its entry.
        Assert.Contains("--x';", Text(entries[2].Start, entries[2].Length), StringComparison.Ordinal);
        Assert.Equal(bytes.Length, preamble + entries.Sum(e => e.Length));
    }

    /// <summary>keys.sql's entries name their table as pg_dump writes it: the restore builds them once its rows are in.</summary>
    [Theory]
    [InlineData("--\n-- Name: t t_pkey; Type: CONSTRAINT; Schema: public; Owner: o\n--\n\nALTER TABLE ONLY \"public\".\"t\"\n    ADD CONSTRAINT \"t_pkey\" PRIMARY KEY (\"id\");\n", "public", "t")]
    [InlineData("--\n-- Name: i; Type: INDEX; Schema: s; Owner: o\n--\n\nCREATE UNIQUE INDEX \"i\" ON \"we\"\"ird s\".\"a.b\" USING \"btree\" (\"k\");\n", "we\"ird s", "a.b")]
    [InlineData("--\n-- Name: p_k; Type: INDEX; Schema: public; Owner: o\n--\n\nCREATE INDEX \"p \"\" ON x\" ON ONLY \"public\".\"p\" USING \"btree\" (\"k\");\n", "public", "p")]
    [InlineData("--\n-- Name: t t_pkey; Type: CONSTRAINT; Schema: public; Owner: o\n--\n\nCOPY \"public\".\"t\" TO PROGRAM 'x';\n", null, null)]
    [InlineData("ALTER TABLE ONLY public.t ADD CONSTRAINT t_pkey PRIMARY KEY (id);\n", null, null)]
    public void A_key_entry_names_its_table(string entry, string? schema, string? table)
    {
        var found = PostgresPostData.KeyTable(Encoding.UTF8.GetBytes(entry));

        Assert.Equal(schema is null ? null : (schema, table!), found);
    }
}
