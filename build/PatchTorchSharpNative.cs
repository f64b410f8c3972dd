// Marks the GLIBCXX symbol-version requirements of TorchSharp's libLibTorchSharp.so that the system's libstdc++ does
// not define, and that guard only link-time markers, as weak (VER_FLG_WEAK), so the library loads on Debian 12 and
// Ubuntu 22.04. One file, compiled twice:
// - as an MSBuild inline task (build/TorchSharpNativeFix.targets, shipped in McDit.Torch's buildTransitive/): patches the
//   copies in a build or publish output folder;
// - into McDit.Torch (with MCDIT_TORCH defined; Runtime/TorchSharpNativeFix.cs): patches a copy at load time, for hosts
//   that load TorchSharp from the NuGet cache (notebooks) or outputs built without the task.
// It targets netstandard2.0 APIs because the inline task compiler does.
#nullable enable
using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text;

#if !MCDIT_TORCH
/// <summary>MSBuild task: weakens the unmet GLIBCXX requirements of every libLibTorchSharp.so below a folder.</summary>
public class McDitPatchTorchSharpNative : Microsoft.Build.Utilities.Task
{
    /// <summary>The folder to search (a build or publish output).</summary>
    [Microsoft.Build.Framework.Required] public string Directory { get; set; } = "";

    /// <summary>Weaken the safe versions even where this machine's libstdc++ has them (for packages meant for other machines).</summary>
    public bool Always { get; set; }

    public override bool Execute()
    {
        if (!System.IO.Directory.Exists(Directory)) return true;
        var libs = System.IO.Directory.GetFiles(Directory, McDit.Torch.Runtime.ElfVersionPatch.LibraryFileName, SearchOption.AllDirectories);
        if (libs.Length == 0) return true;
        var libstdcxx = McDit.Torch.Runtime.ElfVersionPatch.FindLibStdCxx();
        if (libstdcxx == null && !Always) return true; // nothing to compare against (musl, unusual layout): leave as shipped
        var defined = libstdcxx == null ? new HashSet<string>() : McDit.Torch.Runtime.ElfVersionPatch.DefinedVersions(File.ReadAllBytes(libstdcxx));
        foreach (var lib in libs)
        {
            var bytes = File.ReadAllBytes(lib);
            var weaken = McDit.Torch.Runtime.ElfVersionPatch.SafeToWeaken
                .Where(v => Always || !defined.Contains(v)).ToArray();
            int changed = McDit.Torch.Runtime.ElfVersionPatch.Weaken(bytes, weaken);
            if (changed == 0) continue;
            var tmp = lib + ".patching";
            File.WriteAllBytes(tmp, bytes);
            File.Delete(lib); // netstandard2.0 has no File.Move(overwrite)
            File.Move(tmp, lib);
            Log.LogMessage(Microsoft.Build.Framework.MessageImportance.Normal,
                "McDit: marked {0} weak in {1}", string.Join(", ", weaken), lib);
        }
        return !Log.HasLoggedErrors;
    }
}
#endif

namespace McDit.Torch.Runtime
{
    /// <summary>
    /// Reads and edits the GNU symbol-version sections of ELF64 little-endian shared libraries: the versions a library
    /// defines (<c>.gnu.version_d</c>) and the versions it requires of others (<c>.gnu.version_r</c>).
    /// </summary>
    internal static class ElfVersionPatch
    {
        /// <summary>The native library TorchSharp loads on Linux.</summary>
        public const string LibraryFileName = "libLibTorchSharp.so";

        /// <summary>The shared library whose versions are checked.</summary>
        public const string LibStdCxxSoname = "libstdc++.so.6";

        /// <summary>
        /// Versions known to guard only link-time markers in libLibTorchSharp.so (checked for TorchSharp 0.107:
        /// GLIBCXX_3.4.32 covers <c>_ZSt21ios_base_library_initv</c> alone, which has no relocation), so marking them
        /// weak changes nothing at run time.
        /// </summary>
        public static readonly string[] SafeToWeaken = { "GLIBCXX_3.4.32" };

        const ushort VerFlgWeak = 0x2;
        const uint ShtGnuVerdef = 0x6ffffffd;
        const uint ShtGnuVerneed = 0x6ffffffe;

        static readonly string[] LibStdCxxCandidates =
        {
            "/usr/lib/x86_64-linux-gnu/libstdc++.so.6", "/lib/x86_64-linux-gnu/libstdc++.so.6",
            "/usr/lib64/libstdc++.so.6", "/lib64/libstdc++.so.6", "/usr/lib/libstdc++.so.6",
        };

        /// <summary>
        /// The libstdc++ this process uses (the .NET runtime loads one; /proc/self/maps names it), else the first of
        /// the usual system paths that exists; null when none is found.
        /// </summary>
        public static string? FindLibStdCxx()
        {
            try
            {
                foreach (var line in File.ReadLines("/proc/self/maps"))
                {
                    int slash = line.IndexOf('/');
                    if (slash < 0) continue;
                    var path = line.Substring(slash).Trim();
                    if (Path.GetFileName(path).StartsWith("libstdc++.so", StringComparison.Ordinal) && File.Exists(path)) return path;
                }
            }
            catch (IOException) { }
            catch (UnauthorizedAccessException) { }
            return LibStdCxxCandidates.FirstOrDefault(File.Exists);
        }

        /// <summary>The version names a library defines (for libstdc++: GLIBCXX_3.4, …, CXXABI_1.3, …).</summary>
        public static HashSet<string> DefinedVersions(byte[] elf)
        {
            var names = new HashSet<string>(StringComparer.Ordinal);
            foreach (var (offset, count, strtab) in Sections(elf, ShtGnuVerdef))
            {
                long vd = offset;
                for (int i = 0; i < count && InRange(elf, vd, 20); i++)
                {
                    int auxCount = U16(elf, vd + 6);
                    long aux = vd + U32(elf, vd + 12);
                    // The first auxiliary entry names the version itself; the others name its parents.
                    if (auxCount > 0 && InRange(elf, aux, 8)) names.Add(CString(elf, strtab + U32(elf, aux)));
                    uint next = U32(elf, vd + 16);
                    if (next == 0) break;
                    vd += next;
                }
            }
            return names;
        }

        /// <summary>Every version requirement of a library: the needed file, the version name and whether it is weak.</summary>
        public static List<(string File, string Version, bool Weak)> RequiredVersions(byte[] elf)
        {
            var result = new List<(string, string, bool)>();
            ForEachRequirement(elf, (file, version, flagsAt) => result.Add((file, version, (U16(elf, flagsAt) & VerFlgWeak) != 0)));
            return result;
        }

        /// <summary>The non-weak versions <paramref name="library"/> requires of libstdc++ that <paramref name="libStdCxx"/> does not define.</summary>
        public static string[] MissingLibStdCxxVersions(byte[] library, byte[] libStdCxx)
        {
            var defined = DefinedVersions(libStdCxx);
            return RequiredVersions(library)
                .Where(r => r.File == LibStdCxxSoname && !r.Weak && !defined.Contains(r.Version))
                .Select(r => r.Version).Distinct().ToArray();
        }

        /// <summary>Marks the requirements of the named versions weak, in place; returns how many entries changed.</summary>
        public static int Weaken(byte[] elf, IEnumerable<string> versions)
        {
            var set = new HashSet<string>(versions, StringComparer.Ordinal);
            int changed = 0;
            if (set.Count == 0) return 0;
            ForEachRequirement(elf, (file, version, flagsAt) =>
            {
                ushort flags = U16(elf, flagsAt);
                if (!set.Contains(version) || (flags & VerFlgWeak) != 0) return;
                BitConverter.GetBytes((ushort)(flags | VerFlgWeak)).CopyTo(elf, flagsAt);
                changed++;
            });
            return changed;
        }

        // Calls back with (needed file, version name, offset of vna_flags) for every auxiliary entry of .gnu.version_r.
        static void ForEachRequirement(byte[] elf, Action<string, string, int> visit)
        {
            foreach (var (offset, count, strtab) in Sections(elf, ShtGnuVerneed))
            {
                long vn = offset;
                for (int n = 0; n < count && InRange(elf, vn, 16); n++)
                {
                    string file = CString(elf, strtab + U32(elf, vn + 4));
                    int auxCount = U16(elf, vn + 2);
                    long aux = vn + U32(elf, vn + 8);
                    for (int a = 0; a < auxCount && InRange(elf, aux, 16); a++)
                    {
                        visit(file, CString(elf, strtab + U32(elf, aux + 8)), (int)(aux + 4));
                        uint nextAux = U32(elf, aux + 12);
                        if (nextAux == 0) break;
                        aux += nextAux;
                    }
                    uint next = U32(elf, vn + 12);
                    if (next == 0) break;
                    vn += next;
                }
            }
        }

        // (file offset, entry count from sh_info, file offset of the linked string table) of every section of a type.
        static IEnumerable<(long Offset, int Count, long StringTable)> Sections(byte[] elf, uint type)
        {
            if (elf.Length < 64 || elf[0] != 0x7f || elf[1] != (byte)'E' || elf[2] != (byte)'L' || elf[3] != (byte)'F'
                || elf[4] != 2 || elf[5] != 1) yield break; // ELF64 little-endian only
            long shoff = (long)BitConverter.ToUInt64(elf, 0x28);
            int shentsize = U16(elf, 0x3A), shnum = U16(elf, 0x3C);
            if (shentsize < 64) yield break;
            for (int i = 0; i < shnum; i++)
            {
                long sh = shoff + (long)i * shentsize;
                if (!InRange(elf, sh, 64) || U32(elf, sh + 4) != type) continue;
                long offset = (long)BitConverter.ToUInt64(elf, (int)(sh + 24));
                uint link = U32(elf, sh + 40), count = U32(elf, sh + 44);
                long linked = shoff + (long)link * shentsize;
                if (!InRange(elf, linked, 64)) continue;
                yield return (offset, (int)count, (long)BitConverter.ToUInt64(elf, (int)(linked + 24)));
            }
        }

        static bool InRange(byte[] b, long at, int length) => at >= 0 && at + length <= b.Length;
        static ushort U16(byte[] b, long at) => BitConverter.ToUInt16(b, (int)at);
        static uint U32(byte[] b, long at) => BitConverter.ToUInt32(b, (int)at);

        static string CString(byte[] b, long at)
        {
            if (at < 0 || at >= b.Length) return "";
            int end = (int)at;
            while (end < b.Length && b[end] != 0) end++;
            return Encoding.ASCII.GetString(b, (int)at, end - (int)at);
        }
    }
}
