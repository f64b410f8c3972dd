// Encode/decode throughput of the Stable Diffusion KL-f8 VAE (random weights; the architecture sets the cost).
// Usage: dotnet run -c Release --project benchmarks/McDit.Benchmarks -- --vae [--size 256] [--batches 1,4]
//        [--repeats 3] [--warmup 1] [--device cpu] [--threads N]
using System.Diagnostics;
using System.Globalization;
using McDit.Torch.Runtime;
using McDit.Torch.Vae;
using TorchSharp;
using static TorchSharp.torch;

internal static class VaeBenchmark
{
    public static int Run(string[] args)
    {
        var options = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        for (int i = 0; i < args.Length; i += 2)
        {
            if (!args[i].StartsWith("--") || i + 1 >= args.Length)
            {
                Console.Error.WriteLine($"Unexpected argument '{args[i]}'. Options after --vae: --size --batches --repeats --warmup --device --threads");
                return 2;
            }
            options[args[i][2..]] = args[i + 1];
        }
        string Get(string key, string fallback) => options.TryGetValue(key, out var v) ? v : fallback;
        int size = int.Parse(Get("size", "256"), CultureInfo.InvariantCulture);
        int[] batches = Get("batches", "1,4").Split(',').Select(s => int.Parse(s, CultureInfo.InvariantCulture)).ToArray();
        int repeats = int.Parse(Get("repeats", "3"), CultureInfo.InvariantCulture);
        int warmup = int.Parse(Get("warmup", "1"), CultureInfo.InvariantCulture);
        var device = torch.device(Get("device", "cpu"));

        TorchBackend.EnsureInitialized();
        if (options.TryGetValue("threads", out var threads)) torch.set_num_threads(int.Parse(threads, CultureInfo.InvariantCulture));
        torch.manual_seed(0);
        using var vae = new AutoencoderKL(AutoencoderKLConfig.StableDiffusion);
        vae.to(device);
        vae.eval();
        int f = vae.Config.DownsamplingFactor;
        Console.WriteLine($"McDit VAE benchmark: AutoencoderKL SD KL-f8 ({vae.ParameterCount():N0} params, random weights), {size}×{size} px → " +
                          $"{vae.Config.LatentChannels}×{size / f}×{size / f}, float32, device {device}, torch threads {torch.get_num_threads()}, " +
                          $"{warmup} warm-up + {repeats} timed repetitions, median");
        Console.WriteLine();
        Console.WriteLine("| batch | encode median s | encode images/s | decode median s | decode images/s |");
        Console.WriteLine("|---:|---:|---:|---:|---:|");
        using var noGrad = no_grad();
        foreach (var batch in batches)
        {
            using var g = new Generator(1, torch.CPU);
            using var images = (torch.rand(new long[] { batch, 3, size, size }, generator: g) * 2 - 1).to(device);
            using var latents = torch.randn(new long[] { batch, vae.Config.LatentChannels, size / f, size / f }, generator: g).to(device);
            double encode = Median(Time(() => { var (m, l) = vae.Encode(images); m.Dispose(); l.Dispose(); }, warmup, repeats, device));
            double decode = Median(Time(() => vae.Decode(latents).Dispose(), warmup, repeats, device));
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"| {batch} | {encode:F2} | {batch / encode:F3} | {decode:F2} | {batch / decode:F3} |"));
        }
        return 0;
    }

    static double[] Time(Action action, int warmup, int repeats, Device device)
    {
        var seconds = new double[repeats];
        for (int i = 0; i < warmup + repeats; i++)
        {
            using var scope = NewDisposeScope();
            var sw = Stopwatch.StartNew();
            action();
            if (device.type == DeviceType.CUDA) torch.cuda.synchronize();
            if (i >= warmup) seconds[i - warmup] = sw.Elapsed.TotalSeconds;
        }
        return seconds;
    }

    static double Median(double[] v)
    {
        var s = v.OrderBy(x => x).ToArray();
        return s.Length % 2 == 1 ? s[s.Length / 2] : (s[s.Length / 2 - 1] + s[s.Length / 2]) / 2;
    }
}
