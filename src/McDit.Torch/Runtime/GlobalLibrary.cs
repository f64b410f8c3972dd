using System.Runtime.InteropServices;

namespace McDit.Torch.Runtime;

/// <summary>
/// <c>dlopen(RTLD_NOW | RTLD_GLOBAL)</c>: for libraries whose symbols other libraries resolve from the global scope
/// (OpenMPI's plug-ins, libtorch's calls into the MKL vendor stub). .NET's <see cref="NativeLibrary.Load(string)"/>
/// cannot ask for RTLD_GLOBAL. Linux only.
/// </summary>
internal static class GlobalLibrary
{
    const int RtldNow = 0x2, RtldGlobal = 0x100;

    /// <summary>
    /// The handle of <paramref name="file"/> (a path, or a name the loader searches for), or <see cref="IntPtr.Zero"/>
    /// with the loader's reason in <paramref name="error"/>.
    /// </summary>
    /// <exception cref="DllNotFoundException">The system has no libdl (not glibc).</exception>
    public static IntPtr Open(string file, out string? error)
    {
        var handle = dlopen(file, RtldNow | RtldGlobal);
        error = handle == IntPtr.Zero ? Marshal.PtrToStringUTF8(dlerror()) ?? "no reason given" : null;
        return handle;
    }

    // libdl.so.2 exists on every glibc (since 2.34 a stub whose dlopen is libc's).
    [DllImport("libdl.so.2", EntryPoint = "dlopen")]
    static extern IntPtr dlopen([MarshalAs(UnmanagedType.LPUTF8Str)] string file, int flags);

    [DllImport("libdl.so.2", EntryPoint = "dlerror")]
    static extern IntPtr dlerror();
}
