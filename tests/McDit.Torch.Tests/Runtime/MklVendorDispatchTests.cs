using System.Runtime.InteropServices;
using McDit.Torch.Runtime;
using Xunit;

namespace McDit.Torch.Tests.Runtime;

/// <summary>
/// The shared object McDit writes itself (<see cref="ElfStubLibrary"/>) and its use on AMD CPUs: oneMKL inside libtorch
/// asks the stub, not its own vendor check, whether to use the kernels it uses on Intel CPUs. Linux x64 only.
/// </summary>
public class MklVendorDispatchTests
{
    static bool LinuxX64 => OperatingSystem.IsLinux() && RuntimeInformation.ProcessArchitecture == Architecture.X64;

    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    delegate int IntFunction();

    [DllImport("libdl.so.2")]
    static extern IntPtr dlsym(IntPtr handle, [MarshalAs(UnmanagedType.LPUTF8Str)] string name);

    static int Call(IntPtr library, string name) =>
        Marshal.GetDelegateForFunctionPointer<IntFunction>(NativeLibrary.GetExport(library, name))();

    [Fact]
    public void TheStubLoadsAndEachFunctionReturnsItsValue()
    {
        if (!LinuxX64) return;
        var bytes = ElfStubLibrary.Build("libmcdit-test-stub.so",
            new[] { ("mcdit_test_seven", 7), ("mcdit_test_minus_three", -3), ("mcdit_test_big", int.MaxValue) });
        var dir = Directory.CreateTempSubdirectory("mcdit-stub-");
        try
        {
            var path = Path.Combine(dir.FullName, "libmcdit-test-stub.so");
            File.WriteAllBytes(path, bytes);
            var library = NativeLibrary.Load(path);
            Assert.Equal(7, Call(library, "mcdit_test_seven"));
            Assert.Equal(-3, Call(library, "mcdit_test_minus_three"));
            Assert.Equal(int.MaxValue, Call(library, "mcdit_test_big"));
            Assert.False(NativeLibrary.TryGetExport(library, "mcdit_test_absent", out _));
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    [Fact]
    public void TheStubIsTheSameBytesEveryTime_SoTheCacheReusesOneFile()
    {
        var a = ElfStubLibrary.Build(MklVendorDispatch.LibraryFileName, new[] { (MklVendorDispatch.InterposedFunction, 1) });
        var b = ElfStubLibrary.Build(MklVendorDispatch.LibraryFileName, new[] { (MklVendorDispatch.InterposedFunction, 1) });
        Assert.Equal(a, b);
        Assert.True(a.Length < 8192, $"{a.Length} bytes");
    }

    [Fact]
    public void TheReportSaysWhatMklChose_AndWhenTheStubCameTooLate()
    {
        const string loaded = "oneMKL picks its kernels by instruction set on this AMD CPU, as on Intel's ('x.so' answers it).";
        Assert.Equal("oneMKL picks its kernels by instruction set on this AMD CPU, as on Intel's ('x.so' answers it; MKL CPU type 7).",
            MklVendorDispatch.Verified(loaded, stubLoaded: true, type: 7));
        var late = MklVendorDispatch.Verified(loaded, stubLoaded: true, type: 0)!;
        Assert.Contains("generic code path", late);
        Assert.Contains("EnsureInitialized", late);
        Assert.Contains("no MKL", MklVendorDispatch.Verified(loaded, stubLoaded: true, type: null));
        Assert.Equal("kept", MklVendorDispatch.Verified("kept", stubLoaded: false, type: 0));
        Assert.Null(MklVendorDispatch.Verified(null, stubLoaded: false, type: null));
    }

    [Fact]
    public void TheCpuVendorIsCpuidsAsTheKernelReportsIt()
    {
        var vendor = MklVendorDispatch.CpuVendor();
        if (RuntimeInformation.ProcessArchitecture != Architecture.X64) { Assert.Null(vendor); return; }
        Assert.NotNull(vendor);
        Assert.Equal(12, vendor!.Length);
        if (!OperatingSystem.IsLinux()) return;
        var line = File.ReadLines("/proc/cpuinfo").First(l => l.StartsWith("vendor_id", StringComparison.Ordinal));
        Assert.Equal(line.Split(':', 2)[1].Trim(), vendor);
    }

    [Fact]
    public void OnAmdCpus_MklInsideLibtorchTakesTheStubsAnswer_ElsewhereNothingChanges()
    {
        TorchBackend.EnsureInitialized();
        if (!LinuxX64 || MklVendorDispatch.CpuVendor() != "AuthenticAMD")
        {
            Assert.Null(TorchBackend.MklDispatchReport);
            return;
        }
        if (Environment.GetEnvironmentVariable(MklVendorDispatch.KeepVariable) is "1" or "true")
        {
            Assert.Contains(MklVendorDispatch.KeepVariable, TorchBackend.MklDispatchReport);
            return;
        }
        Assert.Contains("by instruction set", TorchBackend.MklDispatchReport);
        Assert.Contains($"MKL CPU type {MklVendorDispatch.MklCpuType()}", TorchBackend.MklDispatchReport);
        // The stub is in the global scope, where libtorch_cpu.so's call through its procedure linkage table looks first;
        // MKL's CPU type detection then sees an Intel CPU. With MKL's own vendor check an AMD CPU gets CPU type 0 (the
        // generic code path; 7 with the stub on an AMD EPYC with AVX-512).
        var global = dlsym(IntPtr.Zero, MklVendorDispatch.InterposedFunction);
        Assert.NotEqual(IntPtr.Zero, global);
        Assert.Equal(1, Marshal.GetDelegateForFunctionPointer<IntFunction>(global)());
        Assert.True(NativeLibrary.TryLoad("libtorch_cpu.so", out var libtorch), "libtorch_cpu.so is not loaded");
        Assert.NotEqual(0, Call(libtorch, "mkl_serv_cpu_detect"));
        Assert.Equal(Call(libtorch, "mkl_serv_cpu_detect"), MklVendorDispatch.MklCpuType());
    }
}
