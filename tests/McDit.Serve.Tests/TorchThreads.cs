using System.Runtime.CompilerServices;

namespace McDit.Serve.Tests;

internal static class TorchThreads
{
    /// <summary>One intra-op thread per test process: test classes and projects run side by side on two cores.</summary>
    [ModuleInitializer]
    internal static void OneThreadPerTestWorker()
    {
        // OMP_NUM_THREADS also reaches the thread policy of in-process CLI runs and trainers, and child processes.
        Environment.SetEnvironmentVariable("OMP_NUM_THREADS", "1");
        McDit.Torch.Runtime.TorchThreadPolicy.Apply(1);
    }
}
