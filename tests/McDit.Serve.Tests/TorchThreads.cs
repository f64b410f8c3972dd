using System.Runtime.CompilerServices;

namespace McDit.Serve.Tests;

internal static class TorchThreads
{
    /// <summary>One intra-op thread per test process: test classes and projects run side by side on two cores.</summary>
    [ModuleInitializer]
    internal static void OneThreadPerTestWorker() => TorchSharp.torch.set_num_threads(1);
}
