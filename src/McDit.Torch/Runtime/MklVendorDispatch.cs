using System.Runtime.InteropServices;
using System.Runtime.Intrinsics.X86;
using System.Text;

namespace McDit.Torch.Runtime;

/// <summary>
/// Lets the oneMKL inside libtorch choose its kernels by the CPU's instruction sets rather than by its vendor. MKL asks
/// <c>mkl_serv_intel_cpu_true()</c> whether the CPU is an Intel one, and on any other (AMD's EPYC and Ryzen) it takes
/// slower code paths even where the CPU has AVX2 or AVX-512: on a 2-core AMD EPYC (Zen 4) McDit's DiT-Tiny/4 training
/// step took 1.3× the time it takes with MKL's Intel kernels (docs/benchmarks.md). libtorch_cpu.so calls that function
/// through its procedure linkage table, so a library loaded into the global symbol scope beforehand, exporting the
/// same name and returning 1, is the one it calls. McDit writes that library itself (<see cref="ElfStubLibrary"/>: one
/// function, <c>mov eax, 1; ret</c>) into its native cache folder and loads it on AMD CPUs, before libtorch loads.
/// MKL still checks which instruction sets the CPU has, so nothing runs that the CPU cannot execute. Set
/// <see cref="KeepVariable"/>=1 to keep MKL's own vendor check.
/// </summary>
internal static class MklVendorDispatch
{
    /// <summary>Environment variable that keeps MKL's vendor check (<c>1</c> or <c>true</c>).</summary>
    public const string KeepVariable = "MCDIT_KEEP_MKL_VENDOR_CHECK";

    /// <summary>The function MKL asks; see the class remarks.</summary>
    public const string InterposedFunction = "mkl_serv_intel_cpu_true";

    /// <summary>The file name of the interposing library in the native cache folder.</summary>
    public const string LibraryFileName = "libmcdit-mkl-vendor.so";

    /// <summary>The CPU vendor string from <c>cpuid</c> ("GenuineIntel", "AuthenticAMD"), or null off x86.</summary>
    public static string? CpuVendor()
    {
        if (!X86Base.IsSupported) return null;
        var (_, ebx, ecx, edx) = X86Base.CpuId(0, 0);
        Span<byte> vendor = stackalloc byte[12];
        BitConverter.TryWriteBytes(vendor[0..], ebx);
        BitConverter.TryWriteBytes(vendor[4..], edx);
        BitConverter.TryWriteBytes(vendor[8..], ecx);
        return Encoding.ASCII.GetString(vendor);
    }

    /// <summary>
    /// On Linux x64 with an AMD CPU, loads the interposing library (once, before libtorch) and returns what was done, in
    /// words; null where nothing applies (an Intel CPU, another system). Never throws: MKL's own choice then stands, and
    /// the returned sentence says why.
    /// </summary>
    /// <param name="stubLoaded">True when the interposing library was loaded.</param>
    public static string? Apply(out bool stubLoaded)
    {
        stubLoaded = false;
        if (!OperatingSystem.IsLinux() || RuntimeInformation.ProcessArchitecture != Architecture.X64) return null;
        var vendor = CpuVendor();
        if (vendor != "AuthenticAMD") return null;
        if (Environment.GetEnvironmentVariable(KeepVariable) is "1" or "true")
            return $"oneMKL picks its kernels by CPU vendor on this AMD CPU ({KeepVariable} is set).";
        try
        {
            var bytes = ElfStubLibrary.Build(LibraryFileName, new[] { (InterposedFunction, 1) });
            var path = NativeCache.Write(bytes, LibraryFileName);
            if (GlobalLibrary.Open(path, out var error) == IntPtr.Zero)
                return $"oneMKL picks its kernels by CPU vendor on this AMD CPU: loading '{path}' failed ({error}).";
            stubLoaded = true;
            return $"oneMKL picks its kernels by instruction set on this AMD CPU, as on Intel's ('{path}' answers {InterposedFunction}; " +
                $"{KeepVariable}=1 keeps MKL's vendor check).";
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or DllNotFoundException or EntryPointNotFoundException)
        {
            return $"oneMKL picks its kernels by CPU vendor on this AMD CPU: {e.Message}";
        }
    }

    /// <summary>
    /// After libtorch has loaded: MKL's CPU type as libtorch_cpu.so's <c>mkl_serv_cpu_detect()</c> reports it (0 is its
    /// generic code path, which its vendor check gives AMD CPUs; 7 its AVX-512 path), or null where libtorch has no MKL.
    /// </summary>
    public static int? MklCpuType()
    {
        if (!OperatingSystem.IsLinux() || !NativeLibrary.TryLoad("libtorch_cpu.so", out var libtorch)) return null;
        if (!NativeLibrary.TryGetExport(libtorch, "mkl_serv_cpu_detect", out var detect)) return null;
        return Marshal.GetDelegateForFunctionPointer<CpuDetect>(detect)();
    }

    /// <summary>
    /// <paramref name="report"/> from <see cref="Apply"/>, checked against what MKL chose once libtorch has loaded: where
    /// the stub was loaded but MKL still takes its generic path (libtorch was loaded and MKL initialised before McDit's
    /// <see cref="TorchBackend.EnsureInitialized"/>, or the CPU has neither AVX2 nor AVX-512), the report says so.
    /// </summary>
    /// <param name="report">What <see cref="Apply"/> returned.</param>
    /// <param name="stubLoaded">What <see cref="Apply"/> said of the stub.</param>
    /// <param name="type">MKL's CPU type now (<see cref="MklCpuType"/>).</param>
    public static string? Verified(string? report, bool stubLoaded, int? type)
    {
        if (!stubLoaded || report is null) return report;
        if (type is null) return report + " (This libtorch has no MKL CPU detection to check.)";
        if (type != 0) return report.TrimEnd(')', '.') + $"; MKL CPU type {type}).";
        return $"McDit loaded its MKL vendor stub, but oneMKL reports its generic code path (CPU type 0): libtorch was loaded " +
            "and MKL initialised before McDit's TorchBackend.EnsureInitialized (call it before any TorchSharp code), or this CPU has " +
            "neither AVX2 nor AVX-512.";
    }

    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    delegate int CpuDetect();
}
