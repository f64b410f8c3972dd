// Training-step timings of DiT, MaskDiT and MC-DiT side by side in one process (CPU or CUDA), with ratios.
// Usage: dotnet run -c Release --project benchmarks/McDit.Benchmarks -- [--model S/2] [--input 32] [--channels 4]
//        [--batch 16] [--steps 5] [--warmup 2] [--device cpu] [--precision Float32]
// With --vae first: the VAE encode/decode throughput instead (see VaeBenchmark.cs); with --distributed first: data-parallel
// step and all-reduce timings (see DistributedBenchmark.cs); with --interop first: DiT-XL/2 sampling time per image
// (see InteropBenchmark.cs); with --serve first: the worker of benchmarks/pytorch/compare.py (Worker.cs); with
// --breakdown first: where MC-DiT's step time goes (BreakdownBenchmark.cs); --allocator-abi-check LIB: see
// benchmarks/gpu/abi-check.sh (CudaAllocatorStats.cs).
using System.Diagnostics;
using System.Globalization;
using McDit.Torch.Models;
using McDit.Torch.Runtime;
using McDit.Torch.Training;
using TorchSharp;
using static TorchSharp.torch;

if (args.Length > 0 && args[0] == "--vae") return VaeBenchmark.Run(args[1..]);
if (args.Length > 0 && args[0] == "--serve") return Worker.Run(args[1..]);
if (args.Length > 0 && args[0] == "--breakdown") return BreakdownBenchmark.Run(args[1..]);
if (args.Length > 0 && args[0] == "--distributed") return DistributedBenchmark.Run(args[1..]);
if (args.Length > 0 && args[0] == "--interop") return InteropBenchmark.Run(args[1..]);
if (args.Length == 2 && args[0] == "--allocator-abi-check") return CudaAllocatorStats.AbiCheck(args[1]);

var argsMap = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
for (int i = 0; i + 1 < args.Length; i += 2)
{
    if (!args[i].StartsWith("--")) { Console.Error.WriteLine($"Unexpected argument '{args[i]}'. Options: --model --input --channels --batch --steps --warmup --device --precision"); return 2; }
    argsMap[args[i][2..]] = args[i + 1];
}
string Get(string key, string fallback) => argsMap.TryGetValue(key, out var v) ? v : fallback;
var (size, patch) = DiffusionTransformerConfig.ParseName(Get("model", "S/2"));
int input = int.Parse(Get("input", "32")), channels = int.Parse(Get("channels", "4")), batch = int.Parse(Get("batch", "16"));
int steps = int.Parse(Get("steps", "5")), warmup = int.Parse(Get("warmup", "2"));
var device = Get("device", "cpu");
var precision = Enum.Parse<TrainingPrecision>(Get("precision", "Float32"), true);

TorchBackend.EnsureInitialized();
Console.WriteLine($"McDit training-step benchmark: {size}/{patch}, {channels}×{input}×{input}, batch {batch}, {warmup} warm-up + {steps} timed steps, " +
                  $"device {device}, {precision}, torch threads {torch.get_num_threads()}");

var backbone = DiffusionTransformerConfig.Preset(size, patch, input, channels, numClasses: 1000);
var results = new List<(string Name, long Params, double[] Ms)>();
foreach (var method in new[] { TrainingMethod.DiT, TrainingMethod.MaskDiT, TrainingMethod.McDiT })
{
    var options = new TrainerOptions { Method = MethodOptions.For(method), Device = device, Precision = precision, Seed = 1 };
    using var trainer = new DiffusionTrainer(backbone, options);
    using var g = new Generator(1, torch.CPU);
    using var images = torch.randn(new long[] { batch, channels, input, input }, generator: g).clamp(-1, 1);
    using var labels = torch.randint(0, 1000, new long[] { batch }, generator: g);
    var times = new double[steps];
    for (int i = 0; i < warmup + steps; i++)
    {
        var sw = Stopwatch.StartNew();
        trainer.Step(images, labels);
        if (trainer.Device.type == DeviceType.CUDA) torch.cuda.synchronize();
        if (i >= warmup) times[i - warmup] = sw.Elapsed.TotalMilliseconds;
    }
    results.Add((method.ToString(), trainer.Model.ParameterCount(trainableOnly: true), times));
    Console.WriteLine($"  {method,-8} trainable params {trainer.Model.ParameterCount(true),12:N0}   step ms: {string.Join(" ", times.Select(t => t.ToString("F0", CultureInfo.InvariantCulture)))}");
}

static double Median(double[] v) { var s = v.OrderBy(x => x).ToArray(); return s.Length % 2 == 1 ? s[s.Length / 2] : (s[s.Length / 2 - 1] + s[s.Length / 2]) / 2; }
double dit = Median(results[0].Ms);
Console.WriteLine();
Console.WriteLine("| method | trainable params | median ms/step | ratio to DiT |");
Console.WriteLine("|---|---:|---:|---:|");
foreach (var (name, p, ms) in results)
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"| {name}-{size}/{patch} | {p:N0} | {Median(ms):F0} | {Median(ms) / dit:F2} |"));
return 0;
