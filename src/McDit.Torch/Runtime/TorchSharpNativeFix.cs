using System.Reflection;
using System.Runtime.InteropServices;
using TorchSharp;

namespace McDit.Torch.Runtime;

/// <summary>
/// Makes TorchSharp's native library load where no build step prepared it: before TorchSharp's own loader runs, finds
/// the <c>libLibTorchSharp.so</c> TorchSharp would load, and when the system's libstdc++ lacks a GLIBCXX version it
/// requires that is safe to weaken (<see cref="ElfVersionPatch.SafeToWeaken"/>), writes a patched copy into a per-user
/// cache folder and loads that copy. The NuGet cache is only read.
/// </summary>
/// <remarks>
/// How TorchSharp 0.107 loads its library: <c>torch</c>'s initialisation calls
/// <c>NativeLibrary.TryLoad("LibTorchSharp", typeof(torch).Assembly, null)</c>, which probes the host's native search
/// folders, then TorchSharp.dll's folder, then the bare name <c>libLibTorchSharp.so</c>; only if that fails does it copy
/// the package natives into a folder beside TorchSharp.dll (in the NuGet cache for a notebook) and load them from
/// there. A bare-name <c>dlopen</c> returns an already loaded library whose SONAME matches, and libLibTorchSharp.so's
/// SONAME is <c>libLibTorchSharp.so</c>: so once the patched copy is loaded (after the libtorch libraries it needs, which
/// it finds by SONAME too), TorchSharp's first step succeeds with it, and a DllImport resolver hands the same handle
/// to every P/Invoke. In the NuGet layout (libtorch in its own package folder) the same preloading is done without
/// patching where nothing needs it, so TorchSharp never copies natives into the NuGet cache.
/// </remarks>
internal static class TorchSharpNativeFix
{
    /// <summary>Environment variable that switches the load-time fix off (<c>1</c> or <c>true</c>).</summary>
    public const string SkipVariable = "MCDIT_SKIP_NATIVE_FIX";

    static readonly string[] LibTorchLoadOrder = { "libc10.so", "libtorch_cpu.so", "libtorch.so" };
    static IntPtr _handle;

    /// <summary>
    /// Prepares the native library (Linux x64 only) and returns what was done, in words, or null when nothing had to be.
    /// Never throws for a system it cannot help: TorchSharp's own error then follows, with this description beside it.
    /// </summary>
    /// <param name="libTorchPreloaded">True when libtorch was already loaded from <c>LIBTORCH_DIR</c>.</param>
    public static string? Apply(bool libTorchPreloaded)
    {
        if (!OperatingSystem.IsLinux() || RuntimeInformation.ProcessArchitecture != Architecture.X64) return null;
        if (Environment.GetEnvironmentVariable(SkipVariable) is "1" or "true")
            return $"McDit's load-time native fix-up is switched off ({SkipVariable}).";
        var torchSharpDir = Path.GetDirectoryName(typeof(torch).Assembly.Location);
        var library = LocateLibTorchSharp(torchSharpDir);
        if (library is null)
            return $"McDit found no {ElfVersionPatch.LibraryFileName} in the native search folders, beside TorchSharp.dll ('{torchSharpDir}') " +
                "or in its NuGet package folder: reference the TorchSharp-cpu package (McDit.Torch brings it) or set LIBTORCH_DIR.";
        var bytes = File.ReadAllBytes(library);
        var libStdCxx = ElfVersionPatch.FindLibStdCxx();
        var missing = libStdCxx is null ? Array.Empty<string>() : ElfVersionPatch.MissingLibStdCxxVersions(bytes, File.ReadAllBytes(libStdCxx));
        var unfixable = missing.Except(ElfVersionPatch.SafeToWeaken).ToArray();
        if (unfixable.Length > 0)
            return $"The system's libstdc++ ('{libStdCxx}') lacks {string.Join(", ", unfixable)}, which '{library}' needs and McDit cannot " +
                "work around: install a newer libstdc++6 (GCC 13 or later), or point LIBTORCH_DIR at a libtorch built for this system.";
        // TorchSharp finds the library by itself in the search folders and beside TorchSharp.dll, not in its package folder.
        bool foundByTorchSharp = CandidateDirectories(torchSharpDir)
            .Any(d => d is not null && File.Exists(Path.Combine(d, ElfVersionPatch.LibraryFileName)));
        if (missing.Length == 0 && foundByTorchSharp) return null; // TorchSharp's loader manages as it is
        var libTorchDir = libTorchPreloaded ? null : LocateLibTorch(Path.GetDirectoryName(library)!, torchSharpDir);

        if (libTorchDir is not null)
            foreach (var name in LibTorchLoadOrder)
            {
                var path = Path.Combine(libTorchDir, name);
                if (File.Exists(path)) NativeLibrary.Load(path);
            }
        string load = library, done;
        if (missing.Length > 0)
        {
            ElfVersionPatch.Weaken(bytes, missing);
            load = NativeCache.Write(bytes, ElfVersionPatch.LibraryFileName);
            done = $"McDit loaded a copy of '{library}' with {string.Join(", ", missing)} marked weak (the system's libstdc++ " +
                $"'{libStdCxx}' lacks it): '{load}'.";
        }
        else
            done = $"McDit loaded '{library}' from its package folder after the libtorch libraries of '{libTorchDir ?? "LIBTORCH_DIR"}'.";
        _handle = NativeLibrary.Load(load);
        try
        {
            NativeLibrary.SetDllImportResolver(typeof(torch).Assembly, Resolve);
        }
        catch (InvalidOperationException)
        {
            // Someone else resolves TorchSharp's imports: the bare-name lookup still finds the loaded copy by SONAME.
        }
        return done;
    }

    static IntPtr Resolve(string name, Assembly assembly, DllImportSearchPath? searchPath) =>
        name is "LibTorchSharp" or "libLibTorchSharp" or ElfVersionPatch.LibraryFileName ? _handle : IntPtr.Zero;

    /// <summary>The file TorchSharp's loader would open first: the host's native search folders, TorchSharp.dll's folder, its NuGet package.</summary>
    static string? LocateLibTorchSharp(string? torchSharpDir) =>
        CandidateDirectories(torchSharpDir)
            .Append(torchSharpDir is null ? null : Path.Combine(torchSharpDir, "..", "..", "runtimes", "linux-x64", "native"))
            .Where(d => d is not null)
            .Select(d => Path.GetFullPath(Path.Combine(d!, ElfVersionPatch.LibraryFileName)))
            .FirstOrDefault(File.Exists);

    /// <summary>
    /// The folder of libtorch_cpu.so: beside the library, in the host's search folders or TorchSharp's folder, or (NuGet
    /// layout: ../packages/torchsharp/V/lib/TFM/TorchSharp.dll) the highest libtorch-cpu-linux-x64 package version.
    /// </summary>
    static string? LocateLibTorch(string libraryDir, string? torchSharpDir)
    {
        static bool Has(string? dir) => dir is not null && File.Exists(Path.Combine(dir, "libtorch_cpu.so"));
        if (Has(libraryDir)) return libraryDir;
        var near = CandidateDirectories(torchSharpDir).FirstOrDefault(Has);
        if (near is not null) return near;
        if (torchSharpDir is null) return null;
        var packages = Path.GetFullPath(Path.Combine(torchSharpDir, "..", "..", "..", ".."));
        var libtorch = Path.Combine(packages, "libtorch-cpu-linux-x64");
        if (!Directory.Exists(libtorch)) return null;
        return Directory.GetDirectories(libtorch)
            .Select(d => (Dir: Path.Combine(d, "runtimes", "linux-x64", "native"), Version: Version.TryParse(Path.GetFileName(d), out var v) ? v : null))
            .Where(x => x.Version is not null && Has(x.Dir))
            .OrderByDescending(x => x.Version)
            .Select(x => x.Dir)
            .FirstOrDefault();
    }

    static IEnumerable<string?> CandidateDirectories(string? torchSharpDir)
    {
        var search = AppContext.GetData("NATIVE_DLL_SEARCH_DIRECTORIES") as string ?? "";
        foreach (var dir in search.Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)) yield return dir;
        yield return torchSharpDir;
    }
}
