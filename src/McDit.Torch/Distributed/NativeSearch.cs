using System.Runtime.InteropServices;

namespace McDit.Torch.Distributed;

/// <summary>
/// Finds the CUDA-side libraries a CUDA build of PyTorch ships (libnccl.so.2, libcudart): an explicit path, then
/// LIBTORCH_DIR and the pip layout beside it (site-packages/nvidia/*/lib), then the loader path, then the symbols of
/// an already loaded libtorch_cuda / libc10_cuda (dlsym on a handle also searches the libraries it depends on).
/// </summary>
internal static class NativeSearch
{
    /// <summary>Handles that may export <paramref name="probeSymbol"/>, best first; the reasons for each failure go into <paramref name="tried"/>.</summary>
    public static IntPtr Find(string? explicitPath, IEnumerable<string> fileNames, string probeSymbol, List<string> tried)
    {
        var candidates = new List<string>();
        if (!string.IsNullOrWhiteSpace(explicitPath)) candidates.Add(explicitPath);
        var names = fileNames.ToList();
        if (Environment.GetEnvironmentVariable(McDit.Torch.Runtime.TorchBackend.LibTorchDirVariable) is { Length: > 0 } dir)
        {
            var roots = new List<string> { dir };
            var sitePackages = Path.GetFullPath(Path.Combine(dir, "..", ".."));
            var nvidia = Path.Combine(sitePackages, "nvidia");
            if (Directory.Exists(nvidia))
                roots.AddRange(Directory.EnumerateDirectories(nvidia).Select(d => Path.Combine(d, "lib")).Where(Directory.Exists));
            foreach (var root in roots)
                foreach (var name in names)
                {
                    candidates.Add(Path.Combine(root, name));
                    if (Directory.Exists(root))
                        candidates.AddRange(Directory.EnumerateFiles(root, Path.GetFileNameWithoutExtension(name.Split(".so")[0]) + "-*.so*"));
                }
        }
        candidates.AddRange(names);
        foreach (var candidate in candidates.Distinct())
        {
            if (candidate.Contains('/') && !File.Exists(candidate)) continue;
            if (NativeLibrary.TryLoad(candidate, out var handle) && NativeLibrary.TryGetExport(handle, probeSymbol, out _)) return handle;
            tried.Add(candidate);
        }
        foreach (var torch in new[] { "libtorch_cuda.so", "libc10_cuda.so" })
        {
            if (NativeLibrary.TryLoad(torch, out var handle) && NativeLibrary.TryGetExport(handle, probeSymbol, out _)) return handle;
            tried.Add(torch + " (symbols)");
        }
        return IntPtr.Zero;
    }
}
