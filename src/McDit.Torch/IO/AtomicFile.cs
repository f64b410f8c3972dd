using System.Text;

namespace McDit.Torch.IO;

/// <summary>
/// Writes files atomically: the content goes to a temporary file in the target's folder, is flushed to disk, and
/// then replaces the target with a single rename. Readers see either the old file or the complete new one, never a
/// partial write; when writing fails the target is left as it was and the temporary file is removed.
/// </summary>
public static class AtomicFile
{
    /// <summary>
    /// Writes a file through <paramref name="write"/>, atomically. The parent folder is created when missing.
    /// </summary>
    /// <param name="path">The file to create or replace.</param>
    /// <param name="write">
    /// Writes the content to the stream it is given (a new, empty file). It must not dispose the stream. Any
    /// exception it throws propagates after the temporary file is deleted; the target is then untouched.
    /// </param>
    /// <exception cref="ArgumentException"><paramref name="path"/> is empty or names a folder.</exception>
    public static void Write(string path, Action<Stream> write)
    {
        ArgumentNullException.ThrowIfNull(write);
        Replace(path, temp =>
        {
            using var stream = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16);
            write(stream);
            stream.Flush(flushToDisk: true);
        });
    }

    /// <summary>
    /// Like <see cref="Write"/> for writers that want a file path rather than a stream (for example a library that
    /// saves to a path, with a fix-up afterwards): <paramref name="write"/> creates and completes the temporary file at
    /// the path it is given, which then replaces <paramref name="path"/> with a single rename.
    /// </summary>
    /// <param name="path">The file to create or replace.</param>
    /// <param name="write">Writes the complete content to the (not yet existing) temporary path it is given.</param>
    public static void WriteVia(string path, Action<string> write)
    {
        ArgumentNullException.ThrowIfNull(write);
        Replace(path, temp =>
        {
            write(temp);
            using var stream = new FileStream(temp, FileMode.Open, FileAccess.ReadWrite, FileShare.None);
            stream.Flush(flushToDisk: true);
        });
    }

    /// <summary>Runs <paramref name="write"/> on a hidden temporary path beside <paramref name="path"/>, then renames it into place.</summary>
    static void Replace(string path, Action<string> write)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        var full = Path.GetFullPath(path);
        var name = Path.GetFileName(full);
        if (name.Length == 0)
            throw new ArgumentException($"'{path}' names a folder; expected a file path.", nameof(path));
        var directory = Path.GetDirectoryName(full)!;
        Directory.CreateDirectory(directory);

        // Hidden, unique, and in the same folder so the final rename stays on one file system.
        var stem = name.Length > 100 ? name[..100] : name;
        var temp = Path.Combine(directory, $".{stem}.{Guid.NewGuid():N}.tmp");
        try
        {
            write(temp);
            File.Move(temp, full, overwrite: true);
        }
        catch
        {
            try { File.Delete(temp); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { /* best effort */ }
            throw;
        }
    }

    /// <summary>Writes <paramref name="bytes"/> to <paramref name="path"/>, atomically (see <see cref="Write"/>).</summary>
    /// <param name="path">The file to create or replace.</param>
    /// <param name="bytes">The complete content of the file.</param>
    public static void WriteAllBytes(string path, byte[] bytes)
    {
        ArgumentNullException.ThrowIfNull(bytes);
        Write(path, s => s.Write(bytes, 0, bytes.Length));
    }

    /// <summary>Writes <paramref name="text"/> as UTF-8 (without a byte order mark), atomically (see <see cref="Write"/>).</summary>
    /// <param name="path">The file to create or replace.</param>
    /// <param name="text">The complete content of the file.</param>
    public static void WriteAllText(string path, string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        WriteAllBytes(path, new UTF8Encoding(encoderShouldEmitUTF8Identifier: false).GetBytes(text));
    }
}
