namespace StratusLab.Server.Platform.Configuration;

/// <summary>The data dir cannot be created or is already used by another server.</summary>
public sealed class DataDirectoryException(string message) : Exception(message);

/// <summary>Creates the data dir (0700) and holds an exclusive lock on it while a server runs.</summary>
public static class DataDirectory
{
    public static void Prepare(ServerOptions options)
    {
        try
        {
            Directory.CreateDirectory(options.DataDir, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new DataDirectoryException($"cannot create the data dir {options.DataDir}: {e.Message}. Choose another with --data-dir or STRATUSLAB_DATA.");
        }
    }

    /// <summary>An exclusive lock on &lt;data-dir&gt;/server.lock (flock under .NET on Linux); released when disposed or when the process dies.</summary>
    public static FileStream Lock(ServerOptions options)
    {
        var path = Path.Combine(options.DataDir, "server.lock");
        try
        {
            var stream = new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
            stream.SetLength(0);
            var pid = System.Text.Encoding.ASCII.GetBytes(Environment.ProcessId + "\n");
            stream.Write(pid);
            stream.Flush();
            return stream;
        }
        catch (IOException)
        {
            throw new DataDirectoryException($"another 'stratuslab serve' is already using the data dir {options.DataDir}; stop it, or use another --data-dir.");
        }
    }
}
