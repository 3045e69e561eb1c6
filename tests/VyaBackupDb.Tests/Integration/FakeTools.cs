namespace VyaBackupDb.Tests.Integration;

/// <summary>How a fake dump tool misbehaves.</summary>
public enum FakeDump
{
    /// <summary>Writes ~5 MB of dump, then reports an error and exits 2.</summary>
    FailsMidStream,
    /// <summary>Writes part of a dump and exits 0 without the completion trailer.</summary>
    ExitsZeroWithoutTrailer,
    /// <summary>Writes ~5 MB of dump, then dies by SIGKILL.</summary>
    KilledMidStream,
    /// <summary>Writes a little, then hangs (a child `sleep` holds its stdout open); its own pid and the sleep's go to pids.</summary>
    Hangs,
    /// <summary>Writes a small but complete dump slowly: 3 s pass before the completion trailer, and more while a file <c>hold</c> is in the tools dir (60 s at most); exits 0.</summary>
    SlowButComplete,
    /// <summary>Writes ~12 MB of dump (enough for parts of an upload to leave), then hangs like <see cref="Hangs"/>.</summary>
    StallsMidStream,
}

/// <summary>
/// A tools_dir of shell scripts standing in for the dump tools. Each answers --version like the
/// real one (the engines ask), records its argv, the credentials file it was given and that
/// file's mode to calls.log, then misbehaves as told.
/// </summary>
public static class FakeTools
{
    public static string Create(string dir, FakeDump mode, bool postgres)
    {
        var (versionLine, header) = postgres
            ? ("pg_dump (PostgreSQL) 15.0", "--\\n-- PostgreSQL database dump\\n--\\n")
            : ("mariadb-dump  Ver 10.19 Distrib 10.11.19-MariaDB, for debian-linux-gnu (x86_64)", "-- MariaDB dump 10.19  Distrib 10.11.19-MariaDB\\n");
        var tool = postgres ? "pg_dump" : "mariadb-dump";
        var trailer = postgres ? "--\\n-- PostgreSQL database dump complete\\n--\\n" : "-- Dump completed on 2026-01-13 15:54:40\\n";
        var failure = mode switch
        {
            FakeDump.FailsMidStream => $"""
                yes "INSERT INTO t VALUES (1,'0123456789012345678901234567890123456789');" | head -c 5000000
                echo
                echo "{tool}: error: Lost connection to server during query (2013) at row 77777" >&2
                exit 2
                """,
            FakeDump.ExitsZeroWithoutTrailer => """
                yes "INSERT INTO t VALUES (2,'cut short');" | head -c 200000
                echo
                exit 0
                """,
            FakeDump.KilledMidStream => """
                yes "INSERT INTO t VALUES (3,'killed');" | head -c 5000000
                echo
                kill -9 $$
                """,
            FakeDump.Hangs => """
                echo "INSERT INTO t VALUES (4,'hanging');"
                sleep 300 &
                echo "$$ $!" > "$here/pids"
                wait
                """,
            FakeDump.SlowButComplete => $"""
                echo "CREATE TABLE slow_t (id INT);"
                sleep 3
                i=0; while [ -e "$here/hold" ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done
                printf '%b' '{trailer}'
                exit 0
                """,
            FakeDump.StallsMidStream => """
                sleep 300 &
                echo "$$ $!" > "$here/pids"
                head -c 12000000 /dev/urandom | od -A n -t x1 | head -c 12000000
                echo
                wait
                """,
            _ => throw new ArgumentOutOfRangeException(nameof(mode)),
        };
        var script = $$"""
            #!/bin/sh
            here=$(dirname "$0")
            if [ "$1" = "--version" ]; then
              echo "{{versionLine}}"
              exit 0
            fi
            {
              echo "argv: $*"
              for a in "$@"; do
                case "$a" in --defaults-file=*) f="${a#--defaults-file=}"; echo "credentials: $f mode $(stat -c %a "$f")";; esac
              done
              if [ -n "$PGPASSFILE" ]; then echo "credentials: $PGPASSFILE mode $(stat -c %a "$PGPASSFILE")"; fi
            } >> "$here/calls.log"
            printf '%b' '{{header}}'
            {{failure}}

            """.Replace("\r\n", "\n", StringComparison.Ordinal);

        var toolsDir = Path.Combine(dir, "tools");
        Directory.CreateDirectory(toolsDir);
        var names = postgres ? new[] { "pg_dump", "psql" } : ["mariadb-dump", "mysqldump", "mariadb", "mysql"];
        foreach (var name in names)
        {
            var path = Path.Combine(toolsDir, name);
            File.WriteAllText(path, script);
            if (OperatingSystem.IsWindows())
            {
                throw new PlatformNotSupportedException("fake dump tools are shell scripts");
            }
            File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }
        return toolsDir;
    }

    public static string CallsLog(string toolsDir) =>
        File.Exists(Path.Combine(toolsDir, "calls.log")) ? File.ReadAllText(Path.Combine(toolsDir, "calls.log")) : "";
}

/// <summary>
/// A tools_dir of wrappers around the real client tools that pause the data midway (after the
/// first 4 MB, for a minute), so that a test can interrupt or kill a run while data is in flight
/// however fast the machine is. The pause ends early once vya-backupdb is gone, so that a client it
/// left behind sees the end of its input then, as a real one would, and does not hold its locks
/// (mariadb-dump's output loads under LOCK TABLES) against other tests for the rest of the minute.
/// </summary>
public static class StallingTools
{
    /// <param name="only">Stall only the dump whose arguments hold this (a database's name); the others run as they are.</param>
    public static string Create(string dir, bool postgres, string? only = null)
    {
        var bin = postgres ? Directory.GetDirectories("/usr/lib/postgresql").Order().Last() + "/bin" : "/usr/bin";
        var (dump, client) = postgres ? ("pg_dump", "psql") : ("mariadb-dump", "mariadb");
        // dd, not head: head may read past its count and drop the rest; dd reads exactly 4 MiB.
        const string stall = "{ dd bs=1048576 count=4 iflag=fullblock status=none; "
            + "i=0; while [ $i -lt 600 ] && kill -0 $PPID 2>/dev/null; do sleep 0.1; i=$((i+1)); done; cat; }";
        WrappedTool.Write(dir, bin, dump, only is null
            ? $"\"{bin}/{dump}\" \"$@\" | {stall}"
            : $"case \"$*\" in *'{only}'*) \"{bin}/{dump}\" \"$@\" | {stall} ;; *) exec \"{bin}/{dump}\" \"$@\" ;; esac");
        WrappedTool.Write(dir, bin, client, $"{stall} | \"{bin}/{client}\" \"$@\"");
        return dir;
    }
}

/// <summary>
/// A tools_dir whose pg_dump waits before the real one dumps, having first created the file
/// <c>started</c> in the directory (psql and pg_restore as they are: the tool locator wants psql,
/// a set's post-data pg_restore).
/// </summary>
public static class SlowDumpTools
{
    public static string Create(string dir, int seconds)
    {
        var bin = Directory.GetDirectories("/usr/lib/postgresql").Order().Last() + "/bin";
        WrappedTool.Write(dir, bin, "pg_dump", $"touch '{Path.Combine(dir, "started")}'\nsleep {seconds}\nexec \"{bin}/pg_dump\" \"$@\"");
        foreach (var tool in new[] { "psql", "pg_restore" })
        {
            WrappedTool.Write(dir, bin, tool, $"exec \"{bin}/{tool}\" \"$@\"");
        }
        return dir;
    }
}

/// <summary>
/// A tools_dir whose mariadb-dump dumps as the real one, then creates the file <c>dumped</c> in
/// the directory and holds its exit for <paramref name="seconds"/> (less once vya-backupdb is gone).
/// </summary>
public static class HoldingDumpTools
{
    public static string Create(string dir, int seconds) =>
        WrappedTool.Write(dir, "/usr/bin", "mariadb-dump",
            $"\"/usr/bin/mariadb-dump\" \"$@\"; status=$?\ntouch '{Path.Combine(dir, "dumped")}'\n"
            + $"i=0; while [ $i -lt {seconds * 10} ] && kill -0 $PPID 2>/dev/null; do sleep 0.1; i=$((i+1)); done\nexit $status");
}

/// <summary>A shell script standing in for a client tool: --version goes to the real one in <c>bin</c>, anything else to the script's body.</summary>
public static class WrappedTool
{
    /// <returns>The tools_dir.</returns>
    public static string Write(string dir, string bin, string tool, string body)
    {
        var path = Path.Combine(dir, tool);
        File.WriteAllText(path, $"#!/bin/sh\nif [ \"$1\" = \"--version\" ]; then exec \"{bin}/{tool}\" \"$@\"; fi\n{body}\n");
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }
        return dir;
    }
}
