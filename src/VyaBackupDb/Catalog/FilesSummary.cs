namespace VyaBackupDb.Catalog;

/// <summary>A path and what happened to it during a files backup.</summary>
public sealed record FileNote(string Path, string Reason);

/// <summary>
/// What a files backup holds (the manifest's <c>files</c> section): its roots, entry counts by
/// type (verify compares them with the archive), and the files that changed, vanished or were
/// skipped while it was taken.
/// </summary>
public sealed record FilesSummary
{
    /// <summary>At most this many notes are listed; the counts are exact.</summary>
    public const int MaxNotes = 1000;

    public required IReadOnlyList<string> Paths { get; init; }

    /// <summary>Regular files stored with their content (a hard link's first name).</summary>
    public required long Files { get; init; }

    public required long Directories { get; init; }

    public required long Symlinks { get; init; }

    /// <summary>Further names of an inode already stored (tar hard-link entries).</summary>
    public required long HardLinks { get; init; }

    /// <summary>Bytes of file content stored (the sum of the regular files' sizes).</summary>
    public required long TotalBytes { get; init; }

    /// <summary>Some file changed or vanished while the backup read it: the archive is not one consistent moment.</summary>
    public bool ChangedDuringBackup => ChangedCount > 0;

    public long ChangedCount { get; init; }

    /// <summary>Files that changed or vanished while being read (the first <see cref="MaxNotes"/>).</summary>
    public IReadOnlyList<FileNote> Changed { get; init; } = [];

    public long SkippedCount { get; init; }

    /// <summary>What was not backed up: unreadable (skip_unreadable), sockets, FIFOs, devices (the first <see cref="MaxNotes"/>).</summary>
    public IReadOnlyList<FileNote> Skipped { get; init; } = [];

    /// <summary>
    /// Files and directories with POSIX ACLs or extended attributes (besides an SELinux label), which
    /// the archive does not hold; with an ACL, the group bits stored are the owning group's.
    /// </summary>
    public long XattrsNotKept { get; init; }

    /// <summary>What verify and restore say of a backup some file changed in while it was read (the backup warned), or null.</summary>
    [System.Text.Json.Serialization.JsonIgnore]
    public string? ChangedNote => ChangedCount == 0 ? null
        : $"{ChangedCount} file(s) changed or vanished while the backup read them, so it is not one moment of the tree "
            + $"({string.Join(", ", Changed.Take(3).Select(c => c.Path))}{(ChangedCount > 3 ? ", ..." : "")}; all are listed in its manifest)";

    /// <summary>Entries of the archive: every file, directory, symlink and hard link.</summary>
    [System.Text.Json.Serialization.JsonIgnore]
    public long Entries => Files + Directories + Symlinks + HardLinks;
}
