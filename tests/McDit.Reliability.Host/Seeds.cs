using McDit.MLNet.Generation;
using McDit.MLNet.Trainers;
using McDit.Torch.IO;
using McDit.Torch.Training;
using Microsoft.ML;
using Microsoft.ML.Data;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;

namespace McDit.Reliability.Host;

/// <summary>Writes the intact files the fuzzer starts from: checkpoints of the three methods, a model zip, a weights file, images.</summary>
static class Seeds
{
    sealed class Row
    {
        [VectorType(1, Tiny.Side, Tiny.Side)] public float[] Image { get; set; } = Array.Empty<float>();
        [KeyType(Tiny.Classes)] public uint Label { get; set; }
    }

    public static int Write(string dir)
    {
        Directory.CreateDirectory(dir);
        foreach (var method in Enum.GetValues<TrainingMethod>())
        {
            using var trainer = new DiffusionTrainer(Tiny.Backbone(method), Tiny.Options(method));
            for (int s = 0; s < 2; s++) Tiny.Step(trainer, s);
            Checkpoint.Save(trainer, Path.Combine(dir, "checkpoint-" + method));
            if (method == TrainingMethod.DiT)
                SafeTensors.Save(Path.Combine(dir, "weights.safetensors"), trainer.EmaModel.state_dict());
        }

        var ml = new MLContext(seed: 1);
        var random = new Random(2);
        var data = ml.Data.LoadFromEnumerable(Enumerable.Range(0, 8).Select(i => new Row
        {
            Image = Enumerable.Range(0, Tiny.Side * Tiny.Side).Select(_ => (float)random.NextDouble()).ToArray(),
            Label = (uint)(i % Tiny.Classes),
        }).ToList());
        var model = ml.McDit().Trainers.DiffusionTransformer(new McDitTrainer.Options
        {
            ModelConfig = Tiny.Backbone(TrainingMethod.MaskDiT), Method = TrainingMethod.MaskDiT, NumberOfSteps = 2, BatchSize = 4,
            Seed = 1, Device = "cpu", SamplingSteps = 1, GenerationBatchSize = 4,
        }).Fit(data);
        McDitModelFile.Save(ml, model, data.Schema, Path.Combine(dir, "model.zip"));

        // An image folder: one sub-folder per class.
        var images = Path.Combine(dir, "images", "a");
        Directory.CreateDirectory(images);
        Directory.CreateDirectory(Path.Combine(dir, "images", "b"));
        foreach (var (format, save) in new (string, Action<Image, string>)[]
                 { ("png", (i, p) => i.SaveAsPng(p)), ("jpg", (i, p) => i.SaveAsJpeg(p)), ("bmp", (i, p) => i.SaveAsBmp(p)), ("gif", (i, p) => i.SaveAsGif(p)) })
        {
            using var image = new Image<Rgb24>(16, 16);
            for (int y = 0; y < 16; y++)
                for (int x = 0; x < 16; x++)
                    image[x, y] = new Rgb24((byte)random.Next(256), (byte)(x * 16), (byte)(y * 16));
            save(image, Path.Combine(images, "image." + format));
            save(image, Path.Combine(dir, "images", "b", "image." + format));
        }
        Console.WriteLine("SEEDED");
        return 0;
    }
}
