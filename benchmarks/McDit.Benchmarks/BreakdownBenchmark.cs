using System.Diagnostics;
using System.Globalization;
using McDit.Torch.Models;
using McDit.Torch.Runtime;
using McDit.Torch.Training;
using TorchSharp;
using static TorchSharp.torch;

/// <summary>
/// Where a training step's time goes: DiT, MaskDiT and MC-DiT with its parts switched on one at a time (main branch only,
/// + noisy branch, + clean branch, both, and both with the clean branch on part of the batch), all built in one process and stepped round-robin (one step each per round, so
/// every variant sees the same load; wall clock and this process's CPU time, steadier on a shared machine with one thread),
/// then AdamW's update and the EMA updates timed on their own.
/// Usage: --breakdown [--model S/2] [--input 32] [--channels 4] [--batch 16] [--classes 1000] [--rounds 5] [--warmup 1]
/// </summary>
static class BreakdownBenchmark
{
    public static int Run(string[] args)
    {
        var map = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        for (int i = 0; i + 1 < args.Length; i += 2) map[args[i].TrimStart('-')] = args[i + 1];
        string Get(string k, string d) => map.TryGetValue(k, out var v) ? v : d;
        int Int(string k, string d) => int.Parse(Get(k, d), CultureInfo.InvariantCulture);
        var (size, patch) = DiffusionTransformerConfig.ParseName(Get("model", "S/2"));
        int input = Int("input", "32"), channels = Int("channels", "4"), batch = Int("batch", "16"), classes = Int("classes", "1000");
        int rounds = Int("rounds", "5"), warmup = Int("warmup", "1");
        TorchBackend.EnsureInitialized();
        var backbone = DiffusionTransformerConfig.Preset(size, patch, input, channels, classes);
        var mc = MethodOptions.For(TrainingMethod.McDiT);
        var variants = new (string Name, MethodOptions Method)[]
        {
            ("DiT", MethodOptions.For(TrainingMethod.DiT)),
            ("MaskDiT", MethodOptions.For(TrainingMethod.MaskDiT)),
            ("MC-DiT main branch only", mc with { NoisyBranch = false, CleanBranch = false }),
            ("MC-DiT + noisy branch", mc with { CleanBranch = false }),
            ("MC-DiT + clean branch", mc with { NoisyBranch = false }),
            ("MC-DiT (both branches)", mc),
            ("MC-DiT, clean branch on 1/2 of the batch", mc with { CleanBranchFraction = 0.5 }),
            ("MC-DiT, clean branch on 1/4 of the batch", mc with { CleanBranchFraction = 0.25 }),
        };
        Console.WriteLine($"Step breakdown: {size}/{patch}, {channels}×{input}×{input}, batch {batch}, {classes} classes, {warmup} warm-up + {rounds} " +
                          $"round-robin rounds, torch threads {torch.get_num_threads()}, load average {File.ReadAllText("/proc/loadavg").Split(' ')[0]}");
        using var g = new Generator(1, torch.CPU);
        using var images = torch.randn(new long[] { batch, channels, input, input }, generator: g).clamp(-1, 1);
        using var labels = torch.randint(0, classes, new long[] { batch }, generator: g);
        var trainers = variants.Select(v => new DiffusionTrainer(backbone, new TrainerOptions { Method = v.Method, Device = "cpu", Seed = 1 })).ToList();
        try
        {
            var times = variants.Select(_ => new List<double>()).ToList();
            var cpuTimes = variants.Select(_ => new List<double>()).ToList();
            using var self = Process.GetCurrentProcess();
            for (int r = 0; r < warmup + rounds; r++)
                for (int i = 0; i < trainers.Count; i++)
                {
                    self.Refresh();
                    var cpu = self.TotalProcessorTime;
                    var sw = Stopwatch.StartNew();
                    trainers[i].Step(images, labels);
                    double wall = sw.Elapsed.TotalMilliseconds;
                    self.Refresh();
                    if (r < warmup) continue;
                    times[i].Add(wall);
                    cpuTimes[i].Add((self.TotalProcessorTime - cpu).TotalMilliseconds);
                }
            // The parts after backward, on their own (the gradients of the last step are still there).
            var adam = new List<double>[trainers.Count];
            var ema = new List<double>[trainers.Count];
            for (int i = 0; i < trainers.Count; i++)
            {
                adam[i] = new(); ema[i] = new();
                var t = trainers[i];
                var source = ExponentialMovingAverage.NamedParameters(t.Model);
                for (int r = 0; r < rounds; r++)
                {
                    var sw = Stopwatch.StartNew();
                    t.Optimizer.Step();
                    adam[i].Add(sw.Elapsed.TotalMilliseconds);
                    sw.Restart();
                    ExponentialMovingAverage.Update(t.EmaModel, source, 0.999);
                    if (t.NoisyBranch is not null) ExponentialMovingAverage.Update(t.NoisyBranch, source, 0.999);
                    else if (t.CleanBranch is not null) ExponentialMovingAverage.Update(t.CleanBranch, source, 0.999);
                    ema[i].Add(sw.Elapsed.TotalMilliseconds);
                }
            }
            double dit = Median(times[0]), ditCpu = Median(cpuTimes[0]);
            Console.WriteLine();
            Console.WriteLine("| variant | median ms/step (wall) | ratio to DiT | median CPU ms/step | ratio to DiT (CPU) | AdamW ms | EMA updates ms | wall ms, all rounds |");
            Console.WriteLine("|---|---:|---:|---:|---:|---:|---:|---|");
            for (int i = 0; i < trainers.Count; i++)
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"| {variants[i].Name} | {Median(times[i]):F0} | {Median(times[i]) / dit:F2} | {Median(cpuTimes[i]):F0} | {Median(cpuTimes[i]) / ditCpu:F2} | {Median(adam[i]):F0} | {Median(ema[i]):F0} | {string.Join(" ", times[i].Select(x => x.ToString("F0", CultureInfo.InvariantCulture)))} |"));
        }
        finally
        {
            foreach (var t in trainers) t.Dispose();
        }
        return 0;
    }

    static double Median(List<double> v)
    {
        var s = v.OrderBy(x => x).ToArray();
        return s.Length % 2 == 1 ? s[s.Length / 2] : (s[s.Length / 2 - 1] + s[s.Length / 2]) / 2;
    }
}
