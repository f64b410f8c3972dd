// Time per image of sampling DiT-XL/2 256×256 (random weights of the released model's shape; the architecture sets the
// cost) with DiT's DDPM sampler and with EDM Heun, both with classifier-free guidance (each evaluation runs the
// conditional and the unconditional batch together, as DiT's sample.py does). It times network evaluations on the
// doubled batch and multiplies by the evaluations each sampler makes: DDPM 250 steps = 250, Heun 40 steps = 79.
// Usage: dotnet run -c Release --project benchmarks/McDit.Benchmarks -- --interop [--images 1] [--evaluations 3]
//        [--warmup 1] [--device cpu] [--threads N]
using System.Diagnostics;
using System.Globalization;
using McDit.Torch.Diffusion;
using McDit.Torch.Models;
using McDit.Torch.Runtime;
using TorchSharp;
using static TorchSharp.torch;

internal static class InteropBenchmark
{
    public static int Run(string[] args)
    {
        var options = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        for (int i = 0; i < args.Length; i += 2)
        {
            if (!args[i].StartsWith("--") || i + 1 >= args.Length)
            {
                Console.Error.WriteLine($"Unexpected argument '{args[i]}'. Options after --interop: --images --evaluations --warmup --device --threads");
                return 2;
            }
            options[args[i][2..]] = args[i + 1];
        }
        string Get(string key, string fallback) => options.TryGetValue(key, out var v) ? v : fallback;
        int images = int.Parse(Get("images", "1"), CultureInfo.InvariantCulture);
        int evaluations = int.Parse(Get("evaluations", "3"), CultureInfo.InvariantCulture);
        int warmup = int.Parse(Get("warmup", "1"), CultureInfo.InvariantCulture);
        var device = TorchBackend.ResolveDevice(Get("device", "cpu"));
        TorchBackend.EnsureInitialized();
        if (options.TryGetValue("threads", out var threads)) torch.set_num_threads(int.Parse(threads, CultureInfo.InvariantCulture));

        torch.manual_seed(0);
        var config = DiffusionTransformerConfig.Preset(ModelSize.XL, 2, 32, 4, 1000) with { LearnSigma = true, Formulation = DiffusionFormulation.VpEpsilon };
        using var model = new MaskedDiffusionTransformer(config);
        model.to(device);
        model.eval();
        Console.WriteLine($"McDit interop benchmark: DiT-XL/2 256×256 ({model.ParameterCount():N0} params, random weights), {images} image(s) with guidance " +
                          $"(network batch {2 * images}), float32, device {device}, torch threads {torch.get_num_threads()}");
        var network = ModelDenoiser.CreateDdpm(model);
        using var g = new Generator(0, torch.CPU);
        using var x = torch.randn(new long[] { images, 4, 32, 32 }, generator: g).to(device);
        using var y = torch.tensor(Enumerable.Range(0, images).Select(i => 207L + i).ToArray()).to(device);
        using var t = torch.full(new long[] { images }, 999f).to(device);
        var times = new List<double>();
        for (int i = 0; i < warmup + evaluations; i++)
        {
            var sw = Stopwatch.StartNew();
            using (var scope = NewDisposeScope()) DdpmSampler.GuidedOutput(network, x, t, y, 4.0, 1000, 3);
            if (device.type == DeviceType.CUDA) torch.cuda.synchronize();
            if (i >= warmup) times.Add(sw.Elapsed.TotalSeconds);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  evaluation {i + 1}{(i < warmup ? " (warm-up)" : "")}: {sw.Elapsed.TotalSeconds:F2} s"));
        }
        var sorted = times.OrderBy(v => v).ToArray();
        double median = sorted.Length % 2 == 1 ? sorted[sorted.Length / 2] : (sorted[sorted.Length / 2 - 1] + sorted[sorted.Length / 2]) / 2;
        Console.WriteLine();
        Console.WriteLine("| sampler | network evaluations | s per evaluation (median) | s per image |");
        Console.WriteLine("|---|---:|---:|---:|");
        foreach (var (name, n) in new[] { ("DDPM 250 (DiT's)", 250), ("EDM Heun 40", 79) })
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"| {name} | {n} | {median:F2} | {median * n / images:F0} |"));
        return 0;
    }
}
