using System.Security.Cryptography;
using VyaBackupDb.Catalog;
using VyaBackupDb.Config;
using VyaBackupDb.Engines;
using VyaBackupDb.Errors;
using VyaBackupDb.Pipeline;
using VyaBackupDb.Pipeline.Age;
using VyaBackupDb.Storage;

namespace VyaBackupDb.Operations;

/// <summary>The outcome of checking one backup file: empty <see cref="Problems"/> means OK.</summary>
public sealed record FileCheck(
    string File, BackupManifest? Manifest, IReadOnlyList<string> Problems, IReadOnlyList<string> Notes, BackupLocation? Location = null)
{
    public bool Ok => Problems.Count == 0;

    /// <summary>The file could not be decrypted (wrong key, tampered or truncated): its own exit code.</summary>
    public bool DecryptionFailed { get; init; }

    /// <summary>The file (or its storage) could not be read at all: nothing is known about it, which is not a verification failure.</summary>
    public bool Unreachable { get; init; }
}

/// <summary>How a backup file is stored: its codec, and whether it is age-encrypted.</summary>
/// <param name="NotAsNamed">Why the file's first bytes are not the codec its name says (<see cref="Codec.NotAsNamed"/>), or null.</param>
public sealed record StoredFormat(Compression Compression, bool Encrypted, string? NotAsNamed = null);

/// <summary>
/// Checks a backup file without a database: the stored digest and size against the manifest,
/// then the whole codec chain decoded, the plain digest, and the dump's completion trailer.
/// Works on any storage (a local path is a <see cref="BackupLocation"/> too).
/// </summary>
public static class BackupFileChecker
{
    /// <summary>
    /// Whether the file is still as <paramref name="before"/> (its size and time when a check began): only then may the
    /// check be recorded beside it. Not knowing (a storage that does not answer) is a no.
    /// </summary>
    public static async Task<bool> UnchangedAsync(BackupLocation location, StorageEntry? before, CancellationToken cancellationToken)
    {
        try
        {
            return before is not null && await location.Storage.StatAsync(location.Key, cancellationToken).ConfigureAwait(false) == before;
        }
        catch (Exception e) when (Storage.StorageSet.IsStorageFault(e, cancellationToken))
        {
            return false;
        }
    }

    /// <summary>Reads the stored file once: a problem (size or digest differs from the manifest), or null.</summary>
    public static async Task<string?> CheckStoredAsync(BackupLocation location, BackupManifest manifest, CancellationToken cancellationToken)
    {
        if (SizeProblem(await location.SizeAsync(cancellationToken).ConfigureAwait(false), manifest) is { } problem)
        {
            return problem;
        }
        var (bytes, digest) = await DigestAsync(location, cancellationToken).ConfigureAwait(false);
        return StoredProblem(bytes, digest, manifest);
    }

    /// <summary>
    /// What is wrong with the .sha256 beside a backup (what `sha256sum -c` checks, as the recovery docs tell operators to):
    /// anything but exactly the manifest's checksum line (another digest, another file's name, garbage). Null when it is
    /// the backup's own, or when there is none.
    /// </summary>
    public static async Task<string?> ChecksumFileProblemAsync(
        IReadOnlyStorage storage, string key, BackupManifest manifest, CancellationToken cancellationToken)
    {
        var checksumKey = key + BackupManifest.ChecksumSuffix;
        var want = System.Text.Encoding.UTF8.GetBytes(manifest.ChecksumLine);
        // Read no further than the line, plus one byte: a longer file is not it either.
        var buffer = new byte[want.Length + 1];
        int read;
        try
        {
            await using var stream = await storage.OpenReadAsync(checksumKey, cancellationToken).ConfigureAwait(false);
            read = await stream.ReadAtLeastAsync(buffer, buffer.Length, throwOnEndOfStream: false, cancellationToken).ConfigureAwait(false);
        }
        catch (FileNotFoundException)
        {
            return null;
        }
        return buffer.AsSpan(0, read).SequenceEqual(want)
            ? null
            : $"{storage.Describe(checksumKey)} is not this backup's checksum line (the manifest's is \"{manifest.ChecksumLine.TrimEnd('\n')}\")";
    }

    /// <summary>What is wrong with stored bytes of this size and digest, or null when they match the manifest.</summary>
    public static string? StoredProblem(long bytes, string digest, BackupManifest manifest) =>
        SizeProblem(bytes, manifest)
        ?? (digest == manifest.StoredSha256 ? null : $"digest mismatch: the stored file's SHA-256 is {digest}, the manifest recorded {manifest.StoredSha256}");

    /// <summary>
    /// Stored bytes measured as they streamed through the decoder, read on to their end (bytes appended after
    /// the codec's end count too), against the manifest.
    /// </summary>
    public static async Task<string?> StoredProblemAsync(MeasuringStream measured, BackupManifest manifest, CancellationToken cancellationToken)
    {
        await measured.CopyToAsync(Stream.Null, cancellationToken).ConfigureAwait(false);
        return StoredProblem(measured.Bytes, measured.Sha256Hex(), manifest);
    }

    private static string? SizeProblem(long bytes, BackupManifest manifest) =>
        bytes == manifest.StoredBytes ? null
        : bytes < manifest.StoredBytes ? $"truncated: {bytes} bytes, the manifest recorded {manifest.StoredBytes}"
        : $"{bytes - manifest.StoredBytes} bytes appended: {bytes} bytes, the manifest recorded {manifest.StoredBytes}";

    /// <summary>Size and hex SHA-256 of the stored bytes, read once.</summary>
    public static async Task<(long Bytes, string Sha256)> DigestAsync(BackupLocation location, CancellationToken cancellationToken)
    {
        await using var stream = await location.OpenReadAsync(cancellationToken).ConfigureAwait(false);
        await using var measured = new MeasuringStream(stream);
        await measured.CopyToAsync(Stream.Null, 1 << 20, cancellationToken).ConfigureAwait(false);
        return (measured.Bytes, measured.Sha256Hex());
    }

    public static async Task<FileCheck> CheckAsync(BackupLocation location, DecryptionKeys keys, CancellationToken cancellationToken)
    {
        var problems = new List<string>();
        var notes = new List<string>();
        var decryptionFailed = false;
        if (await location.StatAsync(cancellationToken).ConfigureAwait(false) is null)
        {
            throw new UsageException($"backup file not found: {location.Description}");
        }
        BackupManifest? manifest;
        try
        {
            manifest = await location.LoadManifestAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (VerificationFailedException e)
        {
            // A manifest that was read and is damaged, or is another backup's, fails the backup; only a storage fault leaves it unchecked.
            return new FileCheck(location.Description, null, [e.Message], notes, location);
        }
        var name = BackupName.TryParse(location.FileName);
        // The size first (no read); then the digest, taken as the stored bytes stream through the decoder.
        var storedProblem = manifest is null ? null : SizeProblem(await location.SizeAsync(cancellationToken).ConfigureAwait(false), manifest);
        var storedChecked = storedProblem is not null;
        if (manifest is null)
        {
            notes.Add("no manifest: no digest was recorded; decoded and checked the trailer only");
        }

        var format = await FormatOfAsync(location, cancellationToken).ConfigureAwait(false);
        var compression = format.Compression;
        var dbms = DbmsOf(manifest, name);
        if (format.NotAsNamed is { } notAsNamed)
        {
            // Said as it is, rather than as the decoder's complaint about an unknown method.
            problems.Add(notAsNamed);
        }
        else
        {
            try
            {
                var opened = await OpenStoredAsync(location, format, cancellationToken).ConfigureAwait(false);
                // A zip is decoded from a seekable (or spooled) file: its digest is taken by a read of its own, below.
                var stored = manifest is not null && !storedChecked && compression != Compression.Zip ? new MeasuringStream(opened) : null;
                await using var plain = new MeasuringStream(await BackupChain.OpenReadAsync(
                    stored ?? opened, compression, format.Encrypted, keys, cancellationToken).ConfigureAwait(false));
                if (dbms == Dbms.Files)
                {
                    // Every entry read and its name checked, the end blocks, the counts against the manifest.
                    problems.AddRange(await Sources.Files.FilesArchiveCheck.ReadAsync(plain, manifest?.Files, cancellationToken).ConfigureAwait(false));
                }
                var set = manifest is not null ? manifest.Format == Sources.Sets.BackupSet.Format : name?.Set == true;
                if (set && await SetProblemAsync(plain, manifest?.Entries, cancellationToken).ConfigureAwait(false) is { } setProblem)
                {
                    problems.Add(setProblem);
                }
                await plain.CopyToAsync(Stream.Null, cancellationToken).ConfigureAwait(false);
                var trailers = dbms is { } known
                    ? [DumpEngines.CompletionTrailer(known)]
                    : new[] { DumpEngines.CompletionTrailer(Dbms.MySql), DumpEngines.CompletionTrailer(Dbms.PostgreSql) };
                // A set's completeness is its entries (read above); files backups check their own end.
                if (!set && dbms != Dbms.Files && !trailers.Any(plain.EndsWithTrailer))
                {
                    // An old file (no manifest) named for one DBMS holding the other's complete dump.
                    var other = dbms == Dbms.MySql ? Dbms.PostgreSql : Dbms.MySql;
                    problems.Add(trailers.Any(plain.TailContains) ? "statements follow the dump's completion trailer: something was added after it"
                        : manifest is null && dbms is not null && plain.EndsWithTrailer(DumpEngines.CompletionTrailer(other))
                        ? $"its name says {dbms.Value.ToName()}, but it holds a complete {other.ToName()} dump"
                        : manifest is null && dbms is null
                        // Renamed, and its manifest left behind: what it is cannot be told (a files backup reads as a cut dump).
                        ? "no manifest beside it and a name that is no backup's (YYYYMMDD_HHMMSS_<dbms>_<name>): read as a dump, it ends "
                            + "without a completion trailer; give it back its name (a files backup's has _files_)"
                        : "truncated: the dump ends without its completion trailer");
                }
                if (manifest is not null)
                {
                    var plainDigest = plain.Sha256Hex();
                    if (plain.Bytes != manifest.PlainBytes || plainDigest != manifest.PlainSha256)
                    {
                        problems.Add($"the decoded dump differs from the manifest ({plain.Bytes} bytes, SHA-256 {plainDigest}; "
                            + $"recorded {manifest.PlainBytes} bytes, {manifest.PlainSha256})");
                    }
                }
                if (stored is not null)
                {
                    storedProblem = await StoredProblemAsync(stored, manifest!, cancellationToken).ConfigureAwait(false);
                    storedChecked = true;
                }
            }
            catch (AgeException e) when (e.ExitCode == ExitCode.DecryptionFailed)
            {
                problems.Add($"cannot decrypt: {e.Message}{manifest?.DecryptionHint}");
                decryptionFailed = true;
            }
            catch (Exception e) when (IsDecodeError(e))
            {
                problems.Add($"undecodable as {compression.ToName()}: {e.Message}");
            }
        }
        if (manifest is not null && !storedChecked)
        {
            // A zip, or decoding that stopped before the end: the stored file read once more.
            storedProblem = await CheckStoredAsync(location, manifest, cancellationToken).ConfigureAwait(false);
        }
        if (storedProblem is not null)
        {
            problems.Insert(0, storedProblem);
        }
        if (manifest is not null
            && await ChecksumFileProblemAsync(location.Storage, location.Key, manifest, cancellationToken).ConfigureAwait(false) is { } checksumProblem)
        {
            problems.Add(checksumProblem);
        }
        return new FileCheck(location.Description, manifest, problems, notes, location) { DecryptionFailed = decryptionFailed };
    }

    /// <summary>Reads every entry of a backup set, in order and against the manifest's list; what is wrong, or null.</summary>
    private static async Task<string?> SetProblemAsync(Stream plain, IReadOnlyList<Sources.Sets.SetEntry>? entries, CancellationToken cancellationToken)
    {
        try
        {
            await using var set = new Sources.Sets.BackupSetReader(plain, entries);
            while (await set.NextAsync(cancellationToken).ConfigureAwait(false) is not null)
            {
            }
            await set.CheckEndAsync(cancellationToken).ConfigureAwait(false);
            return null;
        }
        catch (InvalidDataException e)
        {
            return e.Message;
        }
    }

    /// <summary>
    /// How a backup is stored: encrypted when its name ends in .age or it starts with age's header;
    /// the codec from its name, else sniffed from its first bytes.
    /// </summary>
    public static async Task<StoredFormat> FormatOfAsync(BackupLocation location, CancellationToken cancellationToken)
    {
        var name = location.FileName;
        var encryptedByName = name.EndsWith(BackupName.EncryptedSuffix, StringComparison.OrdinalIgnoreCase);
        var named = CompressionNames.FromFileName(encryptedByName ? name[..^BackupName.EncryptedSuffix.Length] : name);
        if (encryptedByName && named is { } codec)
        {
            return new StoredFormat(codec, Encrypted: true);
        }
        await using var stream = await location.OpenReadAsync(cancellationToken).ConfigureAwait(false);
        var buffer = new byte[Codec.DescribeBytes];
        var head = buffer.AsSpan(0, await stream.ReadAtLeastAsync(buffer, buffer.Length, throwOnEndOfStream: false, cancellationToken).ConfigureAwait(false));
        if (head.StartsWith(AgeHeaderStart))
        {
            return new StoredFormat(named ?? Compression.None, Encrypted: true);
        }
        return named is { } stated
            ? new StoredFormat(stated, Encrypted: false, Codec.NotAsNamed(stated, head))
            : new StoredFormat(Codec.Sniff(head), Encrypted: false);
    }

    /// <summary>
    /// <see cref="FormatOfAsync"/> for a restore: a file whose bytes are not what its name says
    /// (a plain dump renamed .sql.gz) is refused, saying what it holds, before anything runs. A
    /// backup damaged since its manifest was written (emptied, overwritten) is left to the
    /// restore's digest check, which reports the damage (exit 4).
    /// </summary>
    public static async Task<StoredFormat> RestorableFormatAsync(BackupLocation location, CancellationToken cancellationToken)
    {
        var format = await FormatOfAsync(location, cancellationToken).ConfigureAwait(false);
        if (format.NotAsNamed is not { } problem
            || (await location.LoadManifestAsync(cancellationToken).ConfigureAwait(false) is { } manifest
                && await CheckStoredAsync(location, manifest, cancellationToken).ConfigureAwait(false) is not null))
        {
            return format;
        }
        throw new UsageException($"{location.Description} is {problem}");
    }

    private static readonly byte[] AgeHeaderStart = "age-encryption.org/v1\n"u8.ToArray();

    /// <summary>Which DBMS made a backup, as its manifest, else its name, says; null when neither does.</summary>
    public static Dbms? DbmsOf(BackupManifest? manifest, BackupName? name) =>
        manifest is not null && DbmsNames.TryParse(manifest.Dbms, out var recorded) ? recorded : name?.Dbms;

    /// <summary>
    /// The stored bytes, ready for <see cref="BackupChain.OpenReadAsync"/>: an encrypted zip is
    /// spooled after decryption, a plain one from a streaming backend before.
    /// </summary>
    public static async Task<Stream> OpenStoredAsync(BackupLocation location, StoredFormat format, CancellationToken cancellationToken) =>
        format.Encrypted
            ? await location.OpenReadAsync(cancellationToken).ConfigureAwait(false)
            : await location.OpenForDecodingAsync(format.Compression, cancellationToken).ConfigureAwait(false);

    /// <summary>The plain dump inside a backup: decrypted when encrypted, then decompressed.</summary>
    public static async Task<Stream> OpenPlainAsync(
        BackupLocation location, StoredFormat format, DecryptionKeys keys, CancellationToken cancellationToken)
    {
        var stored = await OpenStoredAsync(location, format, cancellationToken).ConfigureAwait(false);
        return await BackupChain.OpenReadAsync(stored, format.Compression, format.Encrypted, keys, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// After a restore failed reading it: why the stored file does not match its manifest (size, digest), or null; a
    /// read error is not this file's fault. The damage, not what it made a decoder or client say, is the failure.
    /// </summary>
    public static async Task<string?> DamageAsync(BackupLocation location, BackupManifest manifest)
    {
        try
        {
            return await CheckStoredAsync(location, manifest, CancellationToken.None).ConfigureAwait(false);
        }
        catch (Exception e) when (e is VyaException or IOException)
        {
            return null;
        }
    }

    /// <summary>
    /// A failure to decode the stored bytes, as opposed to a failure to reach them (a missing file,
    /// a storage that cannot be reached: <see cref="Storage.StorageException"/>).
    /// </summary>
    public static bool IsDecodeError(Exception e) =>
        e is InvalidDataException or ZstdSharp.ZstdException or EndOfStreamException
        || (e is IOException && e is not FileNotFoundException and not DirectoryNotFoundException and not Storage.StorageException);
}
