using System.Runtime.CompilerServices;

namespace McDit.Torch.Tests;

internal static class TorchThreads
{
    /// <summary>
    /// Test classes run in parallel (and the test projects side by side): one intra-op thread each keeps libtorch's
    /// thread pools from oversubscribing the cores, which slows tiny tensor work many times over.
    /// </summary>
    [ModuleInitializer]
    internal static void OneThreadPerTestWorker() => TorchSharp.torch.set_num_threads(1);
}
