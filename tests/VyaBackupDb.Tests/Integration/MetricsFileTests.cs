using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace VyaBackupDb.Tests.Integration;

/// <summary>
/// backup --metrics-file: the file parses under the Prometheus text format's rules, is replaced
/// whole, and keeps the series of instances a run did not back up (their values come from the storage).
/// </summary>
[Trait("Category", "Integration")]
[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
public sealed partial class MetricsFileTests : IAsyncLifetime
{
    private readonly Scratch _scratch = new();

    public Task InitializeAsync() => _scratch.InitializeAsync();

    public Task DisposeAsync() => _scratch.DisposeAsync();

    [SkippableFact]
    public async Task Metrics_file_parses_strictly_and_keeps_other_instances_series_across_runs()
    {
        await TestServers.RequireMySqlAsync();
        await TestServers.RequirePostgresAsync();
        var mysqlDb = await _scratch.NewMySqlDatabaseAsync();
        await MySqlTestDb.ExecAsync(mysqlDb, "CREATE TABLE t (id INT PRIMARY KEY)", "INSERT INTO t VALUES (1), (2)");
        var pgDb = await _scratch.NewPostgresDatabaseAsync();
        var backupDir = Path.Combine(_scratch.TempDir("metrics-store"), "store");
        var config = await Cli.WriteConfigAsync(_scratch.TempDir("metrics-cfg"), backupDir);
        var metricsDir = _scratch.TempDir("metrics-out");
        var file = Path.Combine(metricsDir, "vya-backupdb.prom");

        var first = await Run.CliAsync("backup", "--instance", "1", "--database", mysqlDb, "--config", config, "--metrics-file", file);
        Assert.True(first.ExitCode == 0, first.ToString());
        var afterFirst = PromText.Parse(await File.ReadAllTextAsync(file));
        var mysqlLabels = Labels("1", "it-mysql", mysqlDb);
        var lastSuccess = afterFirst.Value("vya_backupdb_last_success_timestamp_seconds", mysqlLabels);
        Assert.InRange(lastSuccess, DateTimeOffset.UtcNow.AddMinutes(-5).ToUnixTimeSeconds(), DateTimeOffset.UtcNow.ToUnixTimeSeconds() + 1);
        Assert.Equal(1, afterFirst.Value("vya_backupdb_last_status", mysqlLabels));
        Assert.Equal(0, afterFirst.Value("vya_backupdb_failures_total", mysqlLabels));
        Assert.Equal(1, afterFirst.Value("vya_backupdb_backups", mysqlLabels));
        var backupFile = Assert.Single(Ops.DataFilesUnder(backupDir));
        Assert.Equal(new FileInfo(Path.Combine(backupDir, backupFile)).Length, afterFirst.Value("vya_backupdb_last_success_size_bytes", mysqlLabels));
        Assert.True(afterFirst.Value("vya_backupdb_last_success_duration_seconds", mysqlLabels) > 0);
        Assert.Equal(1, afterFirst.Value("vya_backupdb_runs_total", ""));

        // A run of the other instance only: the first instance's series stay as they were.
        var second = await Run.CliAsync("backup", "--instance", "2", "--database", pgDb, "--config", config, "--metrics-file", file);
        Assert.True(second.ExitCode == 0, second.ToString());
        var afterSecond = PromText.Parse(await File.ReadAllTextAsync(file));
        var pgLabels = Labels("2", "it-pg", pgDb);
        Assert.Equal(lastSuccess, afterSecond.Value("vya_backupdb_last_success_timestamp_seconds", mysqlLabels));
        Assert.Equal(1, afterSecond.Value("vya_backupdb_last_status", mysqlLabels));
        Assert.Equal(1, afterSecond.Value("vya_backupdb_last_status", pgLabels));
        Assert.True(afterSecond.Value("vya_backupdb_last_success_timestamp_seconds", pgLabels) >= lastSuccess);
        Assert.Equal(2, afterSecond.Value("vya_backupdb_runs_total", ""));

        // Another runner sharing the storage backs up the first instance's database; this runner's
        // next run (of the other instance, and failing) shows that backup, read from the storage.
        var elsewhere = DateTime.UtcNow.AddMinutes(2);
        elsewhere = elsewhere.AddTicks(-(elsewhere.Ticks % TimeSpan.TicksPerSecond));
        FabricatedBackups.Create(backupDir, TestServers.MySql(name: "it-mysql"), mysqlDb, elsewhere);
        var missing = _scratch.PostgresName("vt_missing_");
        var third = await Run.CliAsync("backup", "--instance", "2", "--database", missing, "--config", config, "--metrics-file", file);
        Assert.True(third.ExitCode == 1, third.ToString());
        var text = await File.ReadAllTextAsync(file);
        var afterThird = PromText.Parse(text);
        Assert.Equal(new DateTimeOffset(elsewhere, TimeSpan.Zero).AddSeconds(1).ToUnixTimeSeconds(),
            afterThird.Value("vya_backupdb_last_success_timestamp_seconds", mysqlLabels));
        Assert.Equal(2, afterThird.Value("vya_backupdb_backups", mysqlLabels));
        var missingLabels = Labels("2", "it-pg", missing);
        Assert.Equal(0, afterThird.Value("vya_backupdb_last_status", missingLabels));
        Assert.Equal(1, afterThird.Value("vya_backupdb_failures_total", missingLabels));
        Assert.False(afterThird.Has("vya_backupdb_last_success_timestamp_seconds", missingLabels), "a database never backed up has no last success");
        Assert.Equal(1, afterThird.Value("vya_backupdb_last_status", pgLabels));
        Assert.Equal(1, afterThird.Value("vya_backupdb_run_exit_code", ""));
        Assert.Equal(1, afterThird.Value("vya_backupdb_run_databases", "{result=\"failed\"}"));
        Assert.Equal(0, afterThird.Value("vya_backupdb_run_databases", "{result=\"ok\"}"));
        Assert.Equal(3, afterThird.Value("vya_backupdb_runs_total", ""));
        Assert.Equal(PromText.Families, afterThird.Types.Keys.Order(StringComparer.Ordinal));

        // Found by a tester: with a destination that cannot be listed, the backups gauge dropped to the count of the
        // others alone (the warning said the last values were kept). The last count stands where it is higher.
        File.Delete(Path.Combine(backupDir, backupFile));
        var yaml = await File.ReadAllTextAsync(config);
        await File.WriteAllTextAsync(config, yaml
            .Replace("timeout_seconds: 300\n", $"timeout_seconds: 300\nstorage:\n  - name: dead\n    type: sftp\n    host: 127.0.0.1\n    port: {Ops.DeadPort()}\n"
                + "    user: nobody\n    password: unused-sftp-pw\n    host_fingerprint: SHA256:T1xBiwSzij0MU+GuugxdpklHowP/H4tDAN5It89LR20\n    path: backups\n",
                StringComparison.Ordinal)
            .Replace("include: [\"vt_*\"]\n    globals: false\n  - id: 2", "include: [\"vt_*\"]\n    globals: false\n    storage: [local, dead]\n  - id: 2",
                StringComparison.Ordinal));
        // Found by a tester too: a backup dated after now (a runner whose clock was ahead) was taken as the last success,
        // and the staleness alert could not fire until that date. As in status, it is not, and a warning names it.
        FabricatedBackups.Create(backupDir, TestServers.MySql(name: "it-mysql"), mysqlDb, new DateTime(2099, 12, 31, 0, 0, 0, DateTimeKind.Utc));
        var fourth = await Run.CliAsync("backup", "--instance", "2", "--database", pgDb, "--config", config, "--metrics-file", file);
        Assert.True(fourth.ExitCode == 0, fourth.ToString());
        Assert.Contains("storage 'dead' cannot be listed", fourth.Stderr, StringComparison.Ordinal);
        Assert.Contains("is dated 2099-12-31", fourth.Stderr, StringComparison.Ordinal);
        var afterFourth = PromText.Parse(await File.ReadAllTextAsync(file));
        Assert.Equal(2, afterFourth.Value("vya_backupdb_backups", mysqlLabels));
        Assert.Equal(new DateTimeOffset(elsewhere, TimeSpan.Zero).AddSeconds(1).ToUnixTimeSeconds(),
            afterFourth.Value("vya_backupdb_last_success_timestamp_seconds", mysqlLabels));

        // Written whole, by rename: no temp file left beside it (its lock file stays).
        Assert.Equal(new[] { ".vya-backupdb.prom.lock", "vya-backupdb.prom" },
            Directory.EnumerateFileSystemEntries(metricsDir).Select(Path.GetFileName).Order(StringComparer.Ordinal));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(Path.Combine(metricsDir, ".vya-backupdb.prom.lock")));
    }

    /// <summary>
    /// Found by a tester (tr107): two runs sharing the file each read it, updated it and renamed theirs over it, and the
    /// last one dropped what the other had written meanwhile (a failed backup's last_status 0 and failures_total: the
    /// alert never fired). The test is the other run: it holds the file's lock from reading the file (none yet) to
    /// writing its result; the run under test waits for it, then reads that and adds its own.
    /// </summary>
    [Fact]
    public async Task A_run_waits_for_another_run_updating_the_file_and_keeps_what_it_wrote()
    {
        var dir = _scratch.TempDir("metrics-lock");
        var source = Path.Combine(dir, "src");
        Directory.CreateDirectory(source);
        await File.WriteAllTextAsync(Path.Combine(source, "f"), "x\n");
        // Instance 1 fails: its include matches nothing.
        var config = Path.Combine(dir, "config.yaml");
        await File.WriteAllTextAsync(config, $$"""
            backup_dir: backups
            instances:
              - {id: 1, name: failing, dbms: files, include: ["nothing/**"], paths: ['{{source}}']}
              - {id: 2, name: other, dbms: files, paths: ['{{source}}']}
            """);
        var metricsDir = _scratch.TempDir("metrics-lock-out");
        var file = Path.Combine(metricsDir, "vya.prom");
        var others = new Reporting.DatabaseMetrics(2, "other", "other", LastStatus: 0, LastRunUtc: DateTimeOffset.UtcNow, Failures: 1);

        Task<ProcessResult> run;
        using (new FileStream(Path.Combine(metricsDir, ".vya.prom.lock"), FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None))
        {
            run = Run.CliAsync("backup", "--instance", "1", "--config", config, "--metrics-file", file);
            // Time for the run to end and write the file, had it not waited.
            await Task.WhenAny(run, Task.Delay(TimeSpan.FromSeconds(5)));
            await File.WriteAllTextAsync(file, Reporting.Metrics.Render(new Reporting.MetricsSnapshot([others], null)));
        }
        var result = await run;

        Assert.True(result.ExitCode == 1, result.ToString());
        var prom = PromText.Parse(await File.ReadAllTextAsync(file));
        Assert.Equal(0, prom.Value("vya_backupdb_last_status", Labels("2", "other", "other")));
        Assert.Equal(1, prom.Value("vya_backupdb_failures_total", Labels("2", "other", "other")));
        Assert.Equal(0, prom.Value("vya_backupdb_last_status", Labels("1", "failing", "failing")));
        Assert.Equal(1, prom.Value("vya_backupdb_failures_total", Labels("1", "failing", "failing")));
        Assert.Equal(1, prom.Value("vya_backupdb_runs_total", ""));
        // Left in the list (tr107): the lock file was 0644, and any local user could flock it and hold every run's update
        // back for 5 minutes. One an earlier version left open to others (as this test's was) is made 0600.
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(Path.Combine(metricsDir, ".vya.prom.lock")));
    }

    private static string Labels(string id, string instance, string database) =>
        $"{{database=\"{database}\",instance_id=\"{id}\",instance_name=\"{instance}\"}}";

    [Fact]
    public void Hostile_names_are_escaped_and_the_counters_come_back_from_the_file()
    {
        var hostile = "we\"ird\\name\nwith {braces}, commas=and \u00e9";
        var snapshot = new Reporting.MetricsSnapshot(
        [
            new Reporting.DatabaseMetrics(7, "inst \"q\"", hostile, DateTimeOffset.FromUnixTimeSeconds(1_790_000_000), 12.5, 4096, 3, 0,
                DateTimeOffset.FromUnixTimeSeconds(1_790_000_100), 4),
        ], new Reporting.RunMetrics(DateTimeOffset.FromUnixTimeSeconds(1_790_000_100), 20, 0, 1, 0, 1, 9));

        var text = Reporting.Metrics.Render(snapshot);
        var parsed = PromText.Parse(text);
        var back = Reporting.Metrics.Parse(text);

        var labels = "{database=\"we\\\"ird\\\\name\\nwith {braces}, commas=and \u00e9\",instance_id=\"7\",instance_name=\"inst \\\"q\\\"\"}";
        Assert.Equal(0, parsed.Value("vya_backupdb_last_status", labels));
        Assert.Equal(4, parsed.Value("vya_backupdb_failures_total", labels));
        Assert.Equal(1_790_000_000, parsed.Value("vya_backupdb_last_success_timestamp_seconds", labels));
        Assert.Equal(snapshot.Databases[0], Assert.Single(back.Databases));
        Assert.Equal(snapshot.LastRun, back.LastRun);
    }

    [Fact]
    public void The_strict_parser_refuses_what_Prometheus_refuses()
    {
        string[] bad =
        [
            "metric 1",                                              // no TYPE before the sample
            "# TYPE m gauge\nm{a=\"x\"} 1\nm{a=\"x\"} 2\n",          // the same series twice
            "# TYPE m gauge\nm{a=\"x\\q\"} 1\n",                     // an escape the format does not know
            "# TYPE 1m gauge\n1m 1\n",                               // a name that starts with a digit
            "# TYPE m gauge\nm{a=\"x\"} one\n",                      // not a number
            "# TYPE m gauge\nm 1\n# TYPE n gauge\nn 1\nm 2\n",       // a family split in two
            "# TYPE m gauge\nm 1",                                   // no final line feed
            "# TYPE m gauge\nm{__a=\"x\"} 1\n",                      // a reserved label name
        ];
        foreach (var text in bad)
        {
            Assert.ThrowsAny<FormatException>(() => PromText.Parse(text));
        }
        var good = PromText.Parse("# HELP m a \\\\ help\n# TYPE m gauge\nm{a=\"q\\\"uo\\\\te\\nnl\",b=\"\"} 1.5e3\nm{a=\"y\"} -Inf\n");
        Assert.Equal(1500, good.Value("m", "{a=\"q\\\"uo\\\\te\\nnl\",b=\"\"}"));
    }
}

/// <summary>
/// A strict reader of the Prometheus text exposition format (version 0.0.4): HELP and TYPE at most
/// once per family and before its samples, a family's samples together, names and label names by
/// the format's rules, label values with only \\, \" and \n escapes, one sample per series, every
/// line ending in a line feed. Throws <see cref="FormatException"/> on anything else.
/// </summary>
public static partial class PromText
{
    /// <summary>Every family the tool writes.</summary>
    public static readonly string[] Families =
    [
        .. new[]
        {
            "backups", "failures_total", "last_run_timestamp_seconds", "last_status", "last_success_duration_seconds",
            "last_success_size_bytes", "last_success_timestamp_seconds", "overdue_timestamp_seconds", "run_databases", "run_duration_seconds", "run_exit_code",
            "run_size_bytes", "run_timestamp_seconds", "runs_total",
        }.Select(n => "vya_backupdb_" + n).Order(StringComparer.Ordinal),
    ];

    public sealed class Document
    {
        public Dictionary<string, string> Types { get; } = new(StringComparer.Ordinal);

        /// <summary>name + canonical labels ({a="x",b="y"}, sorted by name, as written) → value.</summary>
        public Dictionary<string, double> Samples { get; } = new(StringComparer.Ordinal);

        public bool Has(string name, string labels) => Samples.ContainsKey(name + labels);

        public double Value(string name, string labels) =>
            Samples.TryGetValue(name + labels, out var value) ? value : throw new KeyNotFoundException($"no sample {name}{labels} in:\n{string.Join('\n', Samples.Keys)}");
    }

    [GeneratedRegex("^[a-zA-Z_:][a-zA-Z0-9_:]*$")]
    private static partial Regex MetricName();

    [GeneratedRegex("^[a-zA-Z_][a-zA-Z0-9_]*$")]
    private static partial Regex LabelName();

    public static Document Parse(string text)
    {
        if (text.Length > 0 && !text.EndsWith('\n'))
        {
            throw new FormatException("the last line does not end with a line feed");
        }
        var document = new Document();
        var help = new HashSet<string>(StringComparer.Ordinal);
        var done = new HashSet<string>(StringComparer.Ordinal);
        string? current = null;
        var lines = text.Split('\n');
        for (var i = 0; i < lines.Length - 1; i++)
        {
            var line = lines[i];
            if (line.Length == 0)
            {
                continue;
            }
            if (line.StartsWith('#'))
            {
                var parts = line.Split(' ', 4);
                if (parts.Length >= 3 && parts[1] is "HELP" or "TYPE")
                {
                    var name = parts[2];
                    if (!MetricName().IsMatch(name))
                    {
                        throw new FormatException($"line {i + 1}: bad metric name '{name}'");
                    }
                    if (parts[1] == "TYPE")
                    {
                        if (parts.Length != 4 || parts[3] is not ("counter" or "gauge" or "histogram" or "summary" or "untyped"))
                        {
                            throw new FormatException($"line {i + 1}: bad TYPE line");
                        }
                        if (!document.Types.TryAdd(name, parts[3]) || done.Contains(name) || document.Samples.Keys.Any(k => Family(k) == name))
                        {
                            throw new FormatException($"line {i + 1}: TYPE of {name} twice, or after its samples");
                        }
                        if (parts[3] == "counter" && !name.EndsWith("_total", StringComparison.Ordinal))
                        {
                            throw new FormatException($"line {i + 1}: counter {name} does not end in _total");
                        }
                    }
                    else if (!help.Add(name))
                    {
                        throw new FormatException($"line {i + 1}: HELP of {name} twice");
                    }
                    else if (parts.Length == 4 && !HelpEscapesOk(parts[3]))
                    {
                        throw new FormatException($"line {i + 1}: bad escape in HELP");
                    }
                }
                continue;
            }
            string metric, labels;
            double value;
            try
            {
                (metric, labels, value) = Sample(line, i + 1);
            }
            catch (IndexOutOfRangeException)
            {
                throw new FormatException($"line {i + 1}: cut short");
            }
            if (!document.Types.ContainsKey(metric))
            {
                throw new FormatException($"line {i + 1}: sample of {metric} without its TYPE before it");
            }
            if (current != metric)
            {
                if (current is not null)
                {
                    done.Add(current);
                }
                if (done.Contains(metric))
                {
                    throw new FormatException($"line {i + 1}: the samples of {metric} are not together");
                }
                current = metric;
            }
            if (!document.Samples.TryAdd(metric + labels, value))
            {
                throw new FormatException($"line {i + 1}: {metric}{labels} twice");
            }
        }
        return document;

        static string Family(string key) => key.Split('{')[0];
    }

    /// <summary>HELP text may escape only backslash and line feed.</summary>
    private static bool HelpEscapesOk(string help)
    {
        for (var i = 0; i < help.Length; i++)
        {
            if (help[i] == '\\')
            {
                if (i + 1 >= help.Length || help[i + 1] is not ('\\' or 'n'))
                {
                    return false;
                }
                i++;
            }
        }
        return true;
    }

    /// <summary>name, canonical labels, value of one sample line (an optional timestamp after the value is allowed).</summary>
    private static (string Name, string Labels, double Value) Sample(string line, int number)
    {
        var position = 0;
        while (position < line.Length && line[position] is not ('{' or ' '))
        {
            position++;
        }
        var name = line[..position];
        if (!MetricName().IsMatch(name))
        {
            throw new FormatException($"line {number}: bad metric name '{name}'");
        }
        var labels = new SortedDictionary<string, string>(StringComparer.Ordinal);
        if (position < line.Length && line[position] == '{')
        {
            position++;
            while (line[position] != '}')
            {
                var equals = line.IndexOf('=', position);
                var labelName = equals < 0 ? "" : line[position..equals];
                if (!LabelName().IsMatch(labelName) || labelName.StartsWith("__", StringComparison.Ordinal))
                {
                    throw new FormatException($"line {number}: bad label name '{labelName}'");
                }
                position = equals + 1;
                if (line[position] != '"')
                {
                    throw new FormatException($"line {number}: label value not quoted");
                }
                position++;
                var value = new StringBuilder();
                while (line[position] != '"')
                {
                    if (line[position] == '\\')
                    {
                        position++;
                        value.Append(line[position] switch
                        {
                            '\\' => '\\',
                            '"' => '"',
                            'n' => '\n',
                            var other => throw new FormatException($"line {number}: bad escape \\{other}"),
                        });
                    }
                    else
                    {
                        value.Append(line[position]);
                    }
                    position++;
                }
                position++;
                if (!labels.TryAdd(labelName, value.ToString()))
                {
                    throw new FormatException($"line {number}: label {labelName} twice");
                }
                if (line[position] == ',')
                {
                    position++;
                }
                else if (line[position] != '}')
                {
                    throw new FormatException($"line {number}: expected , or }} after a label");
                }
            }
            position++;
        }
        if (position >= line.Length || line[position] != ' ')
        {
            throw new FormatException($"line {number}: no value");
        }
        var rest = line[(position + 1)..].Split(' ');
        if (rest.Length is < 1 or > 2 || (rest.Length == 2 && !long.TryParse(rest[1], NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out _)))
        {
            throw new FormatException($"line {number}: expected a value and an optional timestamp");
        }
        var number0 = rest[0] switch
        {
            "+Inf" or "Inf" => double.PositiveInfinity,
            "-Inf" => double.NegativeInfinity,
            "NaN" => double.NaN,
            var v when double.TryParse(v, NumberStyles.Float, CultureInfo.InvariantCulture, out var parsed) => parsed,
            _ => throw new FormatException($"line {number}: '{rest[0]}' is not a number"),
        };
        var canonical = labels.Count == 0 ? "" : "{" + string.Join(",", labels.Select(l =>
            $"{l.Key}=\"{l.Value.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal).Replace("\n", "\\n", StringComparison.Ordinal)}\"")) + "}";
        return (name, canonical, number0);
    }
}
