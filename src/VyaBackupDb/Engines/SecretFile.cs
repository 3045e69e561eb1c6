using System.Text;
using VyaBackupDb.Errors;

namespace VyaBackupDb.Engines;

/// <summary>
/// A credentials file for a child process (MySQL option file, PGPASSFILE): mode 0600 inside a
/// private 0700 directory, deleted on dispose. Secrets never go on a command line.
/// </summary>
public sealed class SecretFile : IDisposable
{
    private readonly DirectoryInfo _directory;

    public SecretFile(string fileName, string content)
    {
        try
        {
            // The pid in the name lets a later run remove it if this process is killed (TempFiles.RemoveStale).
            _directory = Directory.CreateTempSubdirectory(TempFiles.PrefixFor(TempFiles.Secret));
        }
        catch (Exception e) when (IoErrors.IsWriteFault(e))
        {
            throw TempFiles.Fault(e);
        }
        try
        {
            if (!OperatingSystem.IsWindows())
            {
                _directory.UnixFileMode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;
            }
            Path = System.IO.Path.Combine(_directory.FullName, fileName);
            var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write };
            if (!OperatingSystem.IsWindows())
            {
                options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
            }
            using var stream = new FileStream(Path, options);
            stream.Write(Encoding.UTF8.GetBytes(content));
        }
        catch (Exception e)
        {
            // Nobody disposes what a constructor failed to make: the folder (and what part of the file got written) goes now.
            Dispose();
            throw IoErrors.IsWriteFault(e) ? TempFiles.Fault(e) : e;
        }
    }

    public string Path { get; }

    public void Dispose()
    {
        try
        {
            _directory.Delete(recursive: true);
        }
        catch (IOException)
        {
            // Best effort: the directory is private and in the temp folder.
        }
    }
}
