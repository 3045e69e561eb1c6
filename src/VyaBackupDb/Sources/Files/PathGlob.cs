namespace VyaBackupDb.Sources.Files;

/// <summary>
/// A shell-style pattern for a path relative to a root (<c>logs/*.gz</c>): <c>*</c> and <c>?</c>
/// never match '/', <c>**</c> as a whole segment matches any number of segments (also none),
/// <c>[abc]</c>, <c>[a-z]</c> and <c>[!abc]</c> match one character of (not of) a set, and
/// <c>\</c> makes the next character literal. The whole path must match.
/// </summary>
internal sealed class PathGlob
{
    private readonly string[] _segments;

    public PathGlob(string pattern)
    {
        Pattern = pattern;
        _segments = pattern.Split('/', StringSplitOptions.RemoveEmptyEntries);
    }

    public string Pattern { get; }

    /// <summary>The pattern matches this path (its segments).</summary>
    public bool Matches(IReadOnlyList<string> path) => Match(0, path, 0);

    /// <summary>Some path below this directory could match: worth walking into.</summary>
    public bool CouldMatchBelow(IReadOnlyList<string> directory) => Prefix(0, directory, 0);

    private bool Match(int p, IReadOnlyList<string> path, int s)
    {
        while (true)
        {
            if (p == _segments.Length)
            {
                return s == path.Count;
            }
            if (_segments[p] == "**")
            {
                // Zero segments, or one more and try again.
                for (var skip = s; skip <= path.Count; skip++)
                {
                    if (Match(p + 1, path, skip))
                    {
                        return true;
                    }
                }
                return false;
            }
            if (s == path.Count || !SegmentMatches(_segments[p], path[s]))
            {
                return false;
            }
            p++;
            s++;
        }
    }

    private bool Prefix(int p, IReadOnlyList<string> directory, int s)
    {
        while (true)
        {
            if (s == directory.Count)
            {
                return p < _segments.Length;
            }
            if (p == _segments.Length)
            {
                return false;
            }
            if (_segments[p] == "**")
            {
                return true;
            }
            if (!SegmentMatches(_segments[p], directory[s]))
            {
                return false;
            }
            p++;
            s++;
        }
    }

    /// <summary>One segment against one name: *, ?, [set], \x; backtracks over the last '*' only (enough for globs).</summary>
    internal static bool SegmentMatches(string pattern, string name)
    {
        int p = 0, n = 0, starP = -1, starN = 0;
        while (n < name.Length)
        {
            if (p < pattern.Length && pattern[p] == '*')
            {
                starP = ++p;
                starN = n;
                continue;
            }
            if (p < pattern.Length && MatchOne(pattern, ref p, name[n]))
            {
                n++;
                continue;
            }
            if (starP < 0)
            {
                return false;
            }
            p = starP;
            n = ++starN;
        }
        while (p < pattern.Length && pattern[p] == '*')
        {
            p++;
        }
        return p == pattern.Length;
    }

    /// <summary>Matches one character at pattern[p] (?, [set], \x or a literal) and moves p past it on success.</summary>
    private static bool MatchOne(string pattern, ref int p, char c)
    {
        switch (pattern[p])
        {
            case '?':
                p++;
                return true;
            case '\\' when p + 1 < pattern.Length:
                if (pattern[p + 1] != c)
                {
                    return false;
                }
                p += 2;
                return true;
            case '[' when SetEnd(pattern, p) is var end and > 0:
            {
                var i = p + 1;
                var negate = pattern[i] is '!' or '^';
                if (negate)
                {
                    i++;
                }
                // Up to the closing ']' (SetEnd skips a ']' that comes first: it is a member).
                var found = false;
                for (; i < end; i++)
                {
                    if (i + 2 < end && pattern[i + 1] == '-')
                    {
                        found |= c >= pattern[i] && c <= pattern[i + 2];
                        i += 2;
                    }
                    else
                    {
                        found |= c == pattern[i];
                    }
                }
                if (found == negate)
                {
                    return false;
                }
                p = end + 1;
                return true;
            }
            default:
                if (pattern[p] != c)
                {
                    return false;
                }
                p++;
                return true;
        }
    }

    /// <summary>Index of the ']' closing the set that starts at <paramref name="open"/>; -1 when it is not a set (then '[' is literal).</summary>
    private static int SetEnd(string pattern, int open)
    {
        var i = open + 1;
        if (i < pattern.Length && pattern[i] is '!' or '^')
        {
            i++;
        }
        if (i < pattern.Length && pattern[i] == ']')
        {
            i++; // a ']' first in the set is a member
        }
        return pattern.IndexOf(']', i);
    }
}

/// <summary>Which paths under a root a files backup takes: include and exclude patterns (<see cref="PathGlob"/>).</summary>
internal sealed class FileSelection(IReadOnlyList<string> include, IReadOnlyList<string> exclude)
{
    private readonly PathGlob[] _include = [.. include.Select(p => new PathGlob(p))];
    private readonly PathGlob[] _exclude = [.. exclude.Select(p => new PathGlob(p))];

    /// <summary>Left out, with everything under it when it is a directory.</summary>
    public bool Excluded(IReadOnlyList<string> path) => path.Count > 0 && _exclude.Any(g => g.Matches(path));

    /// <summary>Only what matches include is taken.</summary>
    public bool HasInclude => _include.Length > 0;

    /// <summary>Taken, with everything under it when it is a directory.</summary>
    public bool Included(IReadOnlyList<string> path) => _include.Length == 0 || _include.Any(g => g.Matches(path));

    /// <summary>Something under this directory may be included.</summary>
    public bool MayIncludeBelow(IReadOnlyList<string> directory) => _include.Any(g => g.CouldMatchBelow(directory));
}
