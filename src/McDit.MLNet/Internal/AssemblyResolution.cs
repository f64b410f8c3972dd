using System.Reflection;
using System.Runtime.CompilerServices;

namespace McDit.MLNet.Internal;

/// <summary>
/// Lets ML.NET find this library when it loads a saved model: ML.NET calls <see cref="Assembly.Load(string)"/>
/// with the loader assembly name written in the model, and hosts that load DLLs by path (a notebook's
/// <c>#r</c>, plug-in folders) do not answer such loads. The handler answers for McDit's own assemblies only,
/// from the folder that holds the loaded McDit.MLNet.dll.
/// </summary>
static class AssemblyResolution
{
    static readonly string[] OwnAssemblies = { "McDit.MLNet", "McDit.Torch" };
    static int _installed;

#pragma warning disable CA2255 // a library module initializer is the point here: it must run before ML.NET's Assembly.Load
    [ModuleInitializer]
#pragma warning restore CA2255
    internal static void Install()
    {
        if (Interlocked.Exchange(ref _installed, 1) != 0) return;
        AppDomain.CurrentDomain.AssemblyResolve += Resolve;
    }

    static Assembly? Resolve(object? sender, ResolveEventArgs args)
    {
        var name = new AssemblyName(args.Name).Name;
        if (name is null || Array.IndexOf(OwnAssemblies, name) < 0) return null;
        var self = typeof(AssemblyResolution).Assembly;
        if (string.Equals(name, self.GetName().Name, StringComparison.Ordinal)) return self;
        // An assembly of that name may already be loaded (by path, in this context): use it rather than a second copy.
        foreach (var loaded in AppDomain.CurrentDomain.GetAssemblies())
            if (string.Equals(loaded.GetName().Name, name, StringComparison.Ordinal)) return loaded;
        var folder = string.IsNullOrEmpty(self.Location) ? AppContext.BaseDirectory : Path.GetDirectoryName(self.Location);
        if (string.IsNullOrEmpty(folder)) return null;
        var path = Path.Combine(folder, name + ".dll");
        return File.Exists(path) ? Assembly.LoadFrom(path) : null;
    }
}
