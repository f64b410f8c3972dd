using McDit.MLNet.Generation;
using McDit.Torch.Training;
using TorchSharp;

namespace McDit.Reliability.Host;

/// <summary>
/// Memory over a few hundred training steps (with checkpoints and the stage switch) and generations: prints
/// <c>MEMORY what steps live_before live_after rss_before rss_after</c> after a warm-up, where live counts TorchSharp
/// tensors not yet disposed on this thread.
/// </summary>
static class MemoryCheck
{
    public static int Run(string dir)
    {
        Directory.CreateDirectory(dir);
        using (var trainer = new DiffusionTrainer(Tiny.Backbone(TrainingMethod.McDiT), Tiny.Options(TrainingMethod.McDiT)))
        {
            var series = new CheckpointSeries(Path.Combine(dir, "checkpoints"));
            int step = 0;
            void Train(int n)
            {
                for (int i = 0; i < n; i++, step++)
                {
                    Tiny.Step(trainer, step);
                    if (step % 50 == 49) series.Save(trainer);
                    if (step == 200) trainer.StartUnmaskTuning(); // inside the first window: the second one is all steady state
                }
            }
            Train(50);
            Report("train", 300, () => Train(300));
            Report("train-again", 300, () => Train(300)); // a leak grows in every window; allocator warm-up only in the first
        }

        var model = McDitModel.Load(Path.Combine(dir, "..", "seeds", "model.zip"), "cpu");
        void Generate(int n)
        {
            for (int i = 0; i < n; i++)
            {
                using var images = model.Generate(2, new[] { i % Tiny.Classes, -1 }, seed: i);
            }
        }
        Generate(20);
        Report("generate", 200, () => Generate(200));
        return 0;
    }

    static void Report(string what, int count, Action work)
    {
        Settle();
        long live = DisposeScopeManager.Statistics.ThreadTotalLiveCount, rss = MemoryGuard.Resident();
        work();
        Settle();
        long liveAfter = DisposeScopeManager.Statistics.ThreadTotalLiveCount, rssAfter = MemoryGuard.Resident();
        Console.Out.WriteLine($"MEMORY {what} {count} {live} {liveAfter} {rss} {rssAfter}");
        Console.Out.Flush();
    }

    static void Settle()
    {
        for (int i = 0; i < 3; i++)
        {
            GC.Collect();
            GC.WaitForPendingFinalizers();
        }
        // glibc keeps freed native blocks mapped; hand them back so resident memory counts only what is still in use.
        if (OperatingSystem.IsLinux()) malloc_trim(0);
    }

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "malloc_trim")]
    static extern int malloc_trim(nuint pad);
}
