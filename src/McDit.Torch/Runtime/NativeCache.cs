using System.Security.Cryptography;

namespace McDit.Torch.Runtime;

/// <summary>
/// The per-user folder for native libraries McDit writes itself (a patched libLibTorchSharp.so, the MKL vendor stub):
/// <c>$MCDIT_NATIVE_CACHE</c>, else <c>$XDG_CACHE_HOME/mcdit/native</c> or <c>~/.cache/mcdit/native</c>, else the temp folder.
/// </summary>
internal static class NativeCache
{
    /// <summary>Environment variable naming the folder.</summary>
    public const string Variable = "MCDIT_NATIVE_CACHE";

    /// <summary>
    /// Writes <paramref name="bytes"/> to &lt;cache&gt;/&lt;hash of the bytes&gt;/<paramref name="fileName"/> (atomically;
    /// reused when already there with the same bytes) and returns the path. Falls back to the temp folder when the cache
    /// is not writable.
    /// </summary>
    public static string Write(byte[] bytes, string fileName)
    {
        var hash = Convert.ToHexString(SHA256.HashData(bytes), 0, 8).ToLowerInvariant();
        Exception? first = null;
        foreach (var root in Roots())
        {
            var path = Path.Combine(root, hash, fileName);
            try
            {
                if (File.Exists(path) && File.ReadAllBytes(path).AsSpan().SequenceEqual(bytes)) return path;
                Directory.CreateDirectory(Path.GetDirectoryName(path)!);
                var tmp = $"{path}.{Environment.ProcessId}.tmp";
                File.WriteAllBytes(tmp, bytes);
                File.Move(tmp, path, overwrite: true);
                return path;
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                first ??= e;
            }
        }
        throw new IOException($"McDit could not write {fileName} into '{Roots().First()}' nor the temp folder: {first?.Message} " +
            $"Set {Variable} to a writable folder.", first);
    }

    static IEnumerable<string> Roots()
    {
        var configured = Environment.GetEnvironmentVariable(Variable);
        if (!string.IsNullOrWhiteSpace(configured)) yield return configured;
        var xdg = Environment.GetEnvironmentVariable("XDG_CACHE_HOME");
        var home = Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
        if (!string.IsNullOrWhiteSpace(xdg)) yield return Path.Combine(xdg, "mcdit", "native");
        else if (!string.IsNullOrWhiteSpace(home)) yield return Path.Combine(home, ".cache", "mcdit", "native");
        yield return Path.Combine(Path.GetTempPath(), $"mcdit-native-{Environment.UserName}");
    }
}
