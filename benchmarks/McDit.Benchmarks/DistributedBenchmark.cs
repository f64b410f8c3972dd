// Data-parallel step timings and all-reduce cost. Run under mpirun (or alone, for the one-process baseline):
//   mpirun -np 2 -x OMP_NUM_THREADS=1 dotnet benchmarks/McDit.Benchmarks/bin/Release/net10.0/McDit.Benchmarks.dll \
//       --distributed --model Tiny/4 --input 28 --channels 1 --batch 16 --method McDiT --steps 5 --warmup 2
// Options: --model --input --channels --batch (global) --steps --warmup --device (cpu|cuda) --method (DiT|MaskDiT|McDiT)
//          --backend (auto|none|mpi|nccl) --precision. With --count-only: the gradient bytes per step of each method at
//          --model without training (builds the models only).
using System.Diagnostics;
using System.Globalization;
using McDit.Torch.Distributed;
using McDit.Torch.Models;
using McDit.Torch.Runtime;
using McDit.Torch.Training;
using TorchSharp;
using static TorchSharp.torch;

internal static class DistributedBenchmark
{
    public static int Run(string[] args)
    {
        var map = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        bool countOnly = false;
        for (int i = 0; i < args.Length; i++)
        {
            if (args[i] == "--count-only") { countOnly = true; continue; }
            if (!args[i].StartsWith("--") || i + 1 >= args.Length) { Console.Error.WriteLine($"Unexpected argument '{args[i]}'."); return 2; }
            map[args[i][2..]] = args[++i];
        }
        string Get(string key, string fallback) => map.TryGetValue(key, out var v) ? v : fallback;
        var (size, patch) = DiffusionTransformerConfig.ParseName(Get("model", "Tiny/4"));
        int input = int.Parse(Get("input", "28")), channels = int.Parse(Get("channels", "1")), batch = int.Parse(Get("batch", "16"));
        int steps = int.Parse(Get("steps", "5")), warmup = int.Parse(Get("warmup", "2"));
        TorchBackend.EnsureInitialized();
        var backbone = DiffusionTransformerConfig.Preset(size, patch, input, channels, numClasses: 1000);
        string F(double v, string f = "F1") => v.ToString(f, CultureInfo.InvariantCulture);

        if (countOnly)
        {
            Console.WriteLine($"| method | trainable params | gradient bytes per step (float32) |");
            Console.WriteLine("|---|---:|---:|");
            foreach (var method in new[] { TrainingMethod.DiT, TrainingMethod.MaskDiT, TrainingMethod.McDiT })
            {
                using var model = new MaskedDiffusionTransformer(MethodOptions.For(method).ConfigureModel(backbone).Validated());
                long p = model.ParameterCount(trainableOnly: true);
                Console.WriteLine($"| {method}-{size}/{patch} | {p:N0} | {p * 4:N0} |");
            }
            return 0;
        }

        var methodName = Enum.Parse<TrainingMethod>(Get("method", "McDiT"), true);
        var distributed = new DistributedOptions { Backend = Enum.Parse<DistributedBackend>(Get("backend", "auto"), true) };
        var world = distributed.ResolveWorld();
        var options = new TrainerOptions
        {
            Method = MethodOptions.For(methodName), Device = world.DeviceFor(Get("device", "cpu")), Seed = 1,
            Precision = Enum.Parse<TrainingPrecision>(Get("precision", "Float32"), true),
        };
        using var trainer = new DiffusionTrainer(backbone, options);
        using var group = ProcessGroups.Create(distributed, trainer.Device);
        if (group is not null) trainer.JoinDataParallel(group);
        int rank = group?.Rank ?? 0, ranks = group?.WorldSize ?? 1;
        var shard = new BatchShard(batch, rank, ranks);
        using var g = new Generator(1, torch.CPU);
        using var images = torch.randn(new long[] { batch, channels, input, input }, generator: g).clamp(-1, 1);
        using var labels = torch.randint(0, 1000, new long[] { batch }, generator: g);
        using var rows = shard.RowIndex();
        using var mine = images.index_select(0, rows);
        using var myLabels = labels.index_select(0, rows);
        var stepMs = new List<double>();
        var reduceMs = new List<double>();
        for (int i = 0; i < warmup + steps; i++)
        {
            var sw = Stopwatch.StartNew();
            trainer.Step(mine, myLabels, group is null ? null : shard);
            if (trainer.Device.type == DeviceType.CUDA) torch.cuda.synchronize();
            if (i < warmup) continue;
            stepMs.Add(sw.Elapsed.TotalMilliseconds);
            reduceMs.Add(trainer.DataParallel?.LastAllReduceTime.TotalMilliseconds ?? 0);
        }
        long parameters = trainer.Model.ParameterCount(trainableOnly: true);
        long bytes = trainer.DataParallel?.LastGradientBytes ?? parameters * 4;

        // The collective alone, on a buffer of the gradients' size, after a barrier (no waiting for a slower rank).
        var pure = new List<double>();
        if (group is not null)
        {
            using var buffer = torch.zeros(bytes / 4, dtype: ScalarType.Float32, device: trainer.Device);
            for (int i = 0; i < 1 + steps; i++)
            {
                group.Barrier();
                var sw = Stopwatch.StartNew();
                group.AllReduceSum(new[] { buffer });
                if (i > 0) pure.Add(sw.Elapsed.TotalMilliseconds);
            }
        }
        static double Median(List<double> v) { var s = v.Order().ToList(); return s.Count == 0 ? 0 : s.Count % 2 == 1 ? s[s.Count / 2] : (s[s.Count / 2 - 1] + s[s.Count / 2]) / 2; }
        if (rank != 0) return 0;
        double load = File.Exists("/proc/loadavg") ? double.Parse(File.ReadAllText("/proc/loadavg").Split(' ')[0], CultureInfo.InvariantCulture) : double.NaN;
        Console.WriteLine($"McDit data-parallel benchmark: {methodName}-{size}/{patch}, {channels}×{input}×{input}, global batch {batch} over {ranks} rank(s) " +
            $"({group?.Backend ?? "none"}), device {trainer.Device}, torch threads {torch.get_num_threads()}, load average {F(load, "F2")}");
        Console.WriteLine($"  trainable parameters {parameters:N0}; gradient bytes all-reduced per step {bytes:N0} in {trainer.DataParallel?.LastBucketCount ?? 0} bucket(s)");
        Console.WriteLine($"  step ms (median of {steps}): {F(Median(stepMs))}   [{string.Join(" ", stepMs.Select(v => F(v, "F0")))}]");
        if (group is not null)
        {
            double pureMs = Median(pure), algorithmBandwidth = bytes / (pureMs / 1000) / 1e9;
            Console.WriteLine($"  of which gradient all-reduce (incl. waiting for the slower rank) ms: {F(Median(reduceMs))}   [{string.Join(" ", reduceMs.Select(v => F(v, "F0")))}]");
            Console.WriteLine($"  all-reduce of {bytes:N0} bytes alone, ms (median of {steps}): {F(pureMs)}; algorithm bandwidth {F(algorithmBandwidth, "F2")} GB/s, " +
                $"bus bandwidth {F(algorithmBandwidth * 2 * (ranks - 1) / ranks, "F2")} GB/s");
        }
        return 0;
    }
}
