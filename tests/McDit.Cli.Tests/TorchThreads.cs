using System.Runtime.CompilerServices;

namespace McDit.Cli.Tests;

internal static class TorchThreads
{
    /// <summary>
    /// Test classes run in parallel (and the test projects side by side): one intra-op thread each keeps libtorch's
    /// thread pools from oversubscribing the cores, which slows tiny tensor work many times over.
    /// </summary>
    [ModuleInitializer]
    internal static void OneThreadPerTestWorker()
    {
        // OMP_NUM_THREADS also reaches the thread policy of in-process CLI runs and trainers, and child processes.
        Environment.SetEnvironmentVariable("OMP_NUM_THREADS", "1");
        McDit.Torch.Runtime.TorchThreadPolicy.Apply(1);
    }
}
