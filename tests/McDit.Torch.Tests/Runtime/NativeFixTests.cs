using System.Reflection;
using System.Runtime.InteropServices;
using McDit.Torch.Runtime;
using Xunit;

namespace McDit.Torch.Tests.Runtime;

/// <summary>
/// The GLIBCXX fix-up's ELF editing, on TorchSharp's own libLibTorchSharp.so as its package ships it (read from the
/// NuGet packages folder, never written) and on this machine's libstdc++. Linux x64 only.
/// </summary>
public class NativeFixTests
{
    static bool LinuxX64 => OperatingSystem.IsLinux() && RuntimeInformation.ProcessArchitecture == Architecture.X64;

    static byte[] ShippedLibrary()
    {
        var folder = typeof(NativeFixTests).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>()
            .Single(a => a.Key == "TorchSharpPackageFolder").Value!;
        return File.ReadAllBytes(Path.Combine(folder, "runtimes", "linux-x64", "native", ElfVersionPatch.LibraryFileName));
    }

    [Fact]
    public void TheShippedLibraryRequiresGlibcxx3432_AndWeakeningSetsOnlyThatFlag()
    {
        if (!LinuxX64) return;
        var original = ShippedLibrary();
        var required = ElfVersionPatch.RequiredVersions(original);
        Assert.Contains(("libstdc++.so.6", "GLIBCXX_3.4.32", false), required);
        Assert.Contains(required, r => r.File == "libc.so.6" && r.Version.StartsWith("GLIBC_2.", StringComparison.Ordinal));

        var patched = (byte[])original.Clone();
        Assert.Equal(1, ElfVersionPatch.Weaken(patched, ElfVersionPatch.SafeToWeaken));
        Assert.Contains(("libstdc++.so.6", "GLIBCXX_3.4.32", true), ElfVersionPatch.RequiredVersions(patched));
        var changed = Enumerable.Range(0, original.Length).Where(i => original[i] != patched[i]).ToArray();
        Assert.Single(changed); // one byte of one vna_flags field: VER_FLG_WEAK (0x2)
        Assert.Equal(original[changed[0]] | 0x2, patched[changed[0]]);
        Assert.Equal(0, ElfVersionPatch.Weaken(patched, ElfVersionPatch.SafeToWeaken)); // already weak
    }

    [Fact]
    public void TheSystemLibStdCxxIsReadAndTheMissingVersionsFollowFromIt()
    {
        if (!LinuxX64) return;
        var path = ElfVersionPatch.FindLibStdCxx();
        Assert.NotNull(path);
        var libStdCxx = File.ReadAllBytes(path!);
        var defined = ElfVersionPatch.DefinedVersions(libStdCxx);
        Assert.Contains("GLIBCXX_3.4", defined);
        Assert.Contains("CXXABI_1.3", defined);
        var missing = ElfVersionPatch.MissingLibStdCxxVersions(ShippedLibrary(), libStdCxx);
        Assert.Equal(defined.Contains("GLIBCXX_3.4.32") ? Array.Empty<string>() : new[] { "GLIBCXX_3.4.32" }, missing);
    }

    [Fact]
    public void TheBuildOutputCopyLoadsOnThisSystem()
    {
        if (!LinuxX64) return;
        var copy = Directory.GetFiles(AppContext.BaseDirectory, ElfVersionPatch.LibraryFileName, SearchOption.AllDirectories);
        Assert.NotEmpty(copy);
        var libStdCxx = File.ReadAllBytes(ElfVersionPatch.FindLibStdCxx()!);
        Assert.All(copy, c => Assert.Empty(ElfVersionPatch.MissingLibStdCxxVersions(File.ReadAllBytes(c), libStdCxx)));
    }

    [Fact]
    public void FilesThatAreNotElf64AreLeftAlone()
    {
        var notElf = new byte[200];
        Assert.Empty(ElfVersionPatch.RequiredVersions(notElf));
        Assert.Empty(ElfVersionPatch.DefinedVersions(notElf));
        Assert.Equal(0, ElfVersionPatch.Weaken(notElf, ElfVersionPatch.SafeToWeaken));
        Assert.All(notElf, b => Assert.Equal(0, b));
    }
}
