using System.Runtime.InteropServices;
using TorchSharp;
using static TorchSharp.torch;

namespace McDit.Torch.Runtime;

/// <summary>
/// Loads the native libtorch backend once per process and turns device names into TorchSharp devices.
/// </summary>
/// <remarks>
/// By default the CPU libtorch shipped with the TorchSharp-cpu package is used. When the environment variable
/// <c>LIBTORCH_DIR</c> names a folder holding an existing libtorch (for example a PyTorch install's
/// <c>torch/lib</c>), its libraries are loaded first, so a CUDA build of PyTorch gives TorchSharp CUDA without
/// the multi-GB CUDA NuGet packages. Publish such an app without the CPU libtorch natives (see the README).
/// </remarks>
public static class TorchBackend
{
    /// <summary>Name of the environment variable that points at an existing libtorch folder.</summary>
    public const string LibTorchDirVariable = "LIBTORCH_DIR";

    // Dependency order: each library's needs are loaded before it.
    static readonly string[] LibTorchLoadOrder =
        { "libc10.so", "libc10_cuda.so", "libtorch_cpu.so", "libtorch_cuda.so", "libtorch.so" };

    static readonly object Gate = new();
    static bool _initialized;
    static bool _cudaTried;
    static string? _libTorchDir;
    static string? _nativeLoadReport;
    static string? _mklDispatchReport;

    /// <summary>The libtorch folder in use when <c>LIBTORCH_DIR</c> was honoured; otherwise null.</summary>
    public static string? ExternalLibTorchDir { get { EnsureInitialized(); return _libTorchDir; } }

    /// <summary>
    /// What McDit did before TorchSharp loaded its native library, in words (on Debian 12 / Ubuntu 22.04: loaded a copy
    /// of <c>libLibTorchSharp.so</c> patched for the system's older libstdc++, from a per-user cache folder), or null
    /// when TorchSharp could load it as it is, for example from a build output the build step already patched.
    /// </summary>
    public static string? NativeLoadReport { get { EnsureInitialized(); return _nativeLoadReport; } }

    /// <summary>
    /// How libtorch's oneMKL picks its kernels on this CPU, in words, where McDit changed it (on AMD CPUs: by instruction
    /// set, as on Intel's, rather than by vendor; see the README's "Speed on AMD CPUs"), or null where nothing applies.
    /// </summary>
    public static string? MklDispatchReport { get { EnsureInitialized(); return _mklDispatchReport; } }

    /// <summary>
    /// Loads the native backend (once). Throws <see cref="InvalidOperationException"/> with the loader's
    /// explanation when libtorch cannot be loaded.
    /// </summary>
    public static void EnsureInitialized()
    {
        if (_initialized) return;
        lock (Gate)
        {
            if (_initialized) return;
            // OpenMP reads its wait policy when libtorch loads it: sleep, do not spin (see TorchThreadPolicy).
            TorchThreadPolicy.PrepareEnvironment();
            // Before libtorch_cpu.so binds MKL's vendor check: on AMD CPUs, MKL's Intel kernels (see MklVendorDispatch).
            _mklDispatchReport = MklVendorDispatch.Apply(out bool mklStubLoaded);
            PreloadExternalLibTorch();
            // Before TorchSharp's loader: on systems with an older libstdc++, load a patched copy of its library.
            try
            {
                _nativeLoadReport = TorchSharpNativeFix.Apply(libTorchPreloaded: _libTorchDir is not null);
            }
            catch (DllNotFoundException e)
            {
                throw new InvalidOperationException(
                    $"McDit could not load TorchSharp's native library before TorchSharp did (set {TorchSharpNativeFix.SkipVariable}=1 " +
                    "to leave it to TorchSharp). Loader said: " + e.Message, e);
            }
            try
            {
                // Touching the torch type runs TorchSharp's own native loader.
                using var probe = torch.zeros(1);
            }
            catch (Exception e) when (e is TypeInitializationException or NotSupportedException or DllNotFoundException)
            {
                throw new InvalidOperationException(
                    "The native libtorch backend (TorchSharp's libLibTorchSharp and libtorch) could not be loaded. " +
                    (_nativeLoadReport ?? "McDit saw nothing to fix in TorchSharp's native library.") + " " +
                    (_libTorchDir is null
                        ? $"To use an existing libtorch instead, set {LibTorchDirVariable} to its lib folder. "
                        : $"{LibTorchDirVariable}='{_libTorchDir}': check that it is the lib folder of a PyTorch whose version matches TorchSharp's libtorch. ") +
                    "Loader said: " + (e.InnerException?.Message ?? e.Message), e);
            }
            _mklDispatchReport = MklVendorDispatch.Verified(_mklDispatchReport, mklStubLoaded,
                mklStubLoaded ? MklVendorDispatch.MklCpuType() : null);
            _initialized = true;
        }
    }

    /// <summary>
    /// Loads the backend and returns <paramref name="moduleName"/>: for module constructors, whose base constructor
    /// runs before their body (<c>: base(TorchBackend.Loaded(nameof(X)))</c>).
    /// </summary>
    internal static string Loaded(string moduleName)
    {
        EnsureInitialized();
        return moduleName;
    }

    static void PreloadExternalLibTorch()
    {
        var dir = Environment.GetEnvironmentVariable(LibTorchDirVariable);
        if (string.IsNullOrWhiteSpace(dir)) return;
        if (!Directory.Exists(dir))
            throw new DirectoryNotFoundException(
                $"{LibTorchDirVariable}='{dir}' does not exist. Point it at a folder that holds libtorch.so, " +
                "for example the output of: python3 -c 'import torch,os;print(os.path.dirname(torch.__file__)+\"/lib\")'");
        if (!File.Exists(Path.Combine(dir, "libtorch.so")) && !File.Exists(Path.Combine(dir, "torch.dll")))
            throw new FileNotFoundException(
                $"{LibTorchDirVariable}='{dir}' holds no libtorch.so. Point it at libtorch's lib folder.",
                Path.Combine(dir, "libtorch.so"));
        foreach (var name in LibTorchLoadOrder)
        {
            var path = Path.Combine(dir, name);
            if (File.Exists(path)) NativeLibrary.Load(path);
        }
        _libTorchDir = dir;
    }

    /// <summary>True when a CUDA device can be used (loads the CUDA backend on first call if present).</summary>
    public static bool CudaAvailable
    {
        get
        {
            EnsureInitialized();
            lock (Gate)
            {
                if (!_cudaTried)
                {
                    _cudaTried = true;
                    try { torch.InitializeDeviceType(DeviceType.CUDA); } catch (Exception) { /* no CUDA backend */ }
                }
            }
            return torch.cuda.is_available();
        }
    }

    /// <summary>
    /// True when <paramref name="name"/> is spelled like a device name (cpu, cuda, cuda:N, auto; case-insensitive; null
    /// or empty means auto), whether or not that device exists here. Loads nothing.
    /// </summary>
    public static bool IsDeviceName(string? name)
    {
        var n = string.IsNullOrWhiteSpace(name) ? "auto" : name.Trim().ToLowerInvariant();
        return n is "cpu" or "auto" or "cuda"
            || (n.StartsWith("cuda:", StringComparison.Ordinal) && int.TryParse(n.AsSpan(5), System.Globalization.NumberStyles.None, null, out _));
    }

    /// <summary>
    /// Resolves a device name: <c>cpu</c>, <c>cuda</c>, <c>cuda:N</c> or <c>auto</c> (CUDA when available,
    /// else CPU). Asking for CUDA where none is available throws an error that says how to get it.
    /// </summary>
    /// <param name="name">The device name, case-insensitive; null or empty means <c>auto</c>.</param>
    public static Device ResolveDevice(string? name)
    {
        EnsureInitialized();
        var n = string.IsNullOrWhiteSpace(name) ? "auto" : name.Trim().ToLowerInvariant();
        if (n == "cpu") return torch.CPU;
        if (n == "auto") return CudaAvailable ? new Device(DeviceType.CUDA, 0) : torch.CPU;
        if (n == "cuda" || n.StartsWith("cuda:", StringComparison.Ordinal))
        {
            int index = 0;
            if (n.Length > 4 && (!int.TryParse(n.AsSpan(5), out index) || index < 0))
                throw new ArgumentException($"Device '{name}' is not valid: expected cpu, cuda, cuda:N (N ≥ 0) or auto.", nameof(name));
            if (!CudaAvailable)
                throw new InvalidOperationException(
                    $"Device '{name}' was requested but CUDA is not available: this process uses " +
                    (_libTorchDir is null ? "the CPU libtorch from the TorchSharp-cpu package" : $"the libtorch in {_libTorchDir}, which found no GPU") +
                    $". Set {LibTorchDirVariable} to the lib folder of a CUDA build of PyTorch (and use a machine with a GPU), or use --device cpu.");
            int count = (int)torch.cuda.device_count();
            if (index >= count)
                throw new ArgumentException($"Device '{name}' does not exist: {count} CUDA device(s) found (cuda:0..cuda:{count - 1}).", nameof(name));
            return new Device(DeviceType.CUDA, index);
        }
        throw new ArgumentException($"Device '{name}' is not valid: expected cpu, cuda, cuda:N (N ≥ 0) or auto.", nameof(name));
    }
}
