// Uses McDit from its packages at toy size: native backend, data, train, sample, evaluate, save, load, generate from a
// view of labels; and, given the feed, checks what the packages hold. Prints one line "check <name>: passed|failed"
// per check (.ci/run counts them) and exits 1 if any failed. Usage: dotnet run -- <output folder> [<package feed>]
using System.IO.Compression;
using McDit.MLNet.Evaluation;
using McDit.MLNet.Generation;
using McDit.MLNet.Trainers;
using McDit.Torch.Data;
using McDit.Torch.Models;
using McDit.Torch.Runtime;
using Microsoft.ML;
using Microsoft.ML.Data;

var output = Path.GetFullPath(args.Length > 0 ? args[0] : "consumer-output");
Directory.CreateDirectory(output);
int failures = 0;

void Check(string name, Func<string> run)
{
    try
    {
        Console.WriteLine($"check {name}: passed ({run()})");
    }
    catch (Exception e)
    {
        failures++;
        Console.WriteLine($"check {name}: failed ({e.GetType().Name}: {e.Message})");
    }
}

// TorchSharp's native library loads with no step of the user's (patched by the package's build step, or at load time).
Check("native-backend", () =>
{
    TorchBackend.EnsureInitialized();
    using var sum = TorchSharp.torch.ones(3).sum();
    if (sum.item<float>() != 3) throw new InvalidOperationException("ones(3).sum() is not 3");
    return TorchBackend.NativeLoadReport ?? "TorchSharp loaded its library as the build left it";
});

// The ResNet-18 behind FD-ResNet18 reached the output although only McDit.MLNet is referenced.
Check("resnet18-in-output", () =>
{
    var model = Path.Combine(AppContext.BaseDirectory, "DnnImageModels", "ResNet18Onnx", "ResNet18.onnx");
    if (!File.Exists(model)) throw new FileNotFoundException($"'{model}' is missing");
    return $"{new FileInfo(model).Length / 1_000_000} MB";
});

var ml = new MLContext(seed: 0);
var train = ml.McDit().Data.LoadFashionMnist();
var heldOut = ml.Data.TakeRows(ml.McDit().Data.LoadFashionMnist(FashionMnistSplit.HeldOut), 20);
var zip = Path.Combine(output, "mcdit.zip");
TransformerChain<McDitModel>? model = null;

Check("train", () =>
{
    var tiny = new DiffusionTransformerConfig
    {
        PatchSize = 4, HiddenSize = 32, Depth = 1, NumHeads = 2, DecoderDepth = 1, DecoderHiddenSize = 32, DecoderNumHeads = 2,
    };
    var pipeline = ml.McDit().Transforms.MaskPatches("Patches", "Image", patchSize: 4)
        .Append(ml.McDit().Trainers.DiffusionTransformer(new McDitTrainer.Options
        {
            ModelConfig = tiny, NumberOfSteps = 3, BatchSize = 8, SamplingSteps = 2, GenerationBatchSize = 20, Device = "cpu",
        }));
    model = pipeline.Fit(train);
    return $"{model.LastTransformer.TrainedSteps} steps, loss {model.LastTransformer.FinalLoss:F3}";
});

Check("sample", () =>
{
    var pixels = model!.Transform(heldOut).GetColumn<float[]>("GeneratedPixels").ToArray();
    if (pixels.Length != 20 || pixels.Any(p => p.Length != 28 * 28 || p.Any(v => v < 0 || v > 1)))
        throw new InvalidDataException("expected 20 generated images of 784 values in [0, 1]");
    var grid = Path.Combine(output, "grid.png");
    model.LastTransformer.SaveImageGrid(grid, imagesPerClass: 2);
    return $"{pixels.Length} images, grid {new FileInfo(grid).Length} bytes";
});

Check("evaluate", () =>
{
    var metrics = ml.McDit().Evaluate(model!.Transform(heldOut), heldOut, "GeneratedPixels", "Image");
    if (!double.IsFinite(metrics.FrechetDistance) || metrics.FrechetDistance <= 0)
        throw new InvalidDataException($"FD-ResNet18 is {metrics.FrechetDistance}");
    // Reference statistics for the installed tool's check (.ci/run: mcdit evaluate --reference-cache).
    using var reference = ml.McDit().ComputeFeatureStatistics(heldOut, "Image",
        new FrechetEvaluationOptions { ReferenceCachePath = Path.Combine(output, "reference-stats.safetensors") });
    return $"FD-ResNet18 {metrics.FrechetDistance:F1} ({metrics.GeneratedCount} generated vs {reference.Count} real)";
});

Check("save-load-generate-from-labels", () =>
{
    ml.Model.Save(model!, train.Schema, zip);
    var loaded = new MLContext().Model.Load(zip, out _);
    // Only labels: the saved chain starts with MaskPatches, which passes such a view through.
    var labels = ml.Data.LoadFromEnumerable(Enumerable.Range(0, 10).Select(i => new LabelRow { Label = (uint)i }).ToList());
    var generated = loaded.Transform(labels);
    var pixels = generated.GetColumn<float[]>("GeneratedPixels").ToArray();
    if (pixels.Length != 10) throw new InvalidDataException($"expected 10 images, got {pixels.Length}");
    var again = model!.LastTransformer.Transform(labels).GetColumn<float[]>("GeneratedPixels").ToArray();
    if (!pixels.Zip(again).All(p => p.First.SequenceEqual(p.Second)))
        throw new InvalidDataException("the loaded model generates other images than the trained one");
    return $"{new FileInfo(zip).Length / 1000} kB zip, 10 images from labels, identical after loading";
});

// The packages: no file twice (the same content, by CRC-32 and length, in two places), no ResNet-18 copy inside
// McDit.MLNet, symbols beside the libraries.
if (args.Length > 1)
    Check("package-contents", () =>
    {
        var sizes = new List<string>();
        foreach (var package in Directory.GetFiles(args[1], "*.nupkg").Order())
        {
            using var zip = ZipFile.OpenRead(package);
            var files = zip.Entries.Where(e => e.Length > 0 && !e.FullName.StartsWith("package/", StringComparison.Ordinal)
                && !e.FullName.StartsWith("_rels/", StringComparison.Ordinal) && e.Name != "[Content_Types].xml").ToList();
            var twice = files.GroupBy(e => (e.Crc32, e.Length)).FirstOrDefault(g => g.Count() > 1);
            if (twice is not null)
                throw new InvalidDataException($"{Path.GetFileName(package)} holds the same {twice.Key.Length} bytes twice: {string.Join(", ", twice.Select(e => e.FullName))}");
            var name = Path.GetFileName(package);
            if (name.StartsWith("McDit.MLNet.", StringComparison.Ordinal) && files.Any(e => e.Name.EndsWith(".onnx", StringComparison.Ordinal)))
                throw new InvalidDataException($"{name} holds ONNX models; they come from Microsoft.ML.DnnImageFeaturizer.ResNet18");
            if (name.StartsWith("McDit.", StringComparison.Ordinal) && !File.Exists(Path.ChangeExtension(package, ".snupkg")))
                throw new FileNotFoundException($"{name} has no symbol package beside it");
            sizes.Add($"{name} {new FileInfo(package).Length / 1e6:F1} MB");
        }
        return string.Join(", ", sizes);
    });
else
    Console.WriteLine("check package-contents: skipped (no package feed given)");

Console.WriteLine(failures == 0 ? "consumer: all checks passed" : $"consumer: {failures} check(s) failed");
return failures == 0 ? 0 : 1;

/// <summary>A row of a view that holds only a class (0-based here; the key type makes it 1..10 in ML.NET).</summary>
sealed class LabelRow
{
    [KeyType(10)] public uint Label { get; set; }
}
