using System.Diagnostics;
using McDit.MLNet.Data;
using McDit.MLNet.Generation;
using McDit.Torch.IO;
using McDit.Torch.Models;
using McDit.Torch.Training;
using Microsoft.ML;
using Microsoft.ML.Data;
using TorchSharp;
using static TorchSharp.torch;

namespace McDit.Reliability.Host;

/// <summary>
/// Loads one damaged input per case, the way a user's command would, and prints a line per case:
/// <c>BEGIN i</c> before it, then <c>END i STATUS PEAK_BYTES SECONDS TYPE MESSAGE</c> where STATUS is OK (it loaded and
/// worked), ERROR (it failed with an exception, whose type and one-line message follow) or NONFINITE (it loaded but
/// produced NaN/Inf). A crash or hang shows as a BEGIN without its END.
/// </summary>
static class CaseRunner
{
    public static int Run(string casesFile, int start)
    {
        var cases = File.ReadAllLines(casesFile);
        var ml = new MLContext(seed: 0);
        for (int i = start; i < cases.Length; i++)
        {
            var parts = cases[i].Split('\t');
            Console.Out.WriteLine($"BEGIN {i}");
            Console.Out.Flush();
            GC.Collect();
            GC.WaitForPendingFinalizers();
            MemoryGuard.ResetPeak();
            long before = MemoryGuard.Resident();
            var clock = Stopwatch.StartNew();
            string status, type = "-", message = "-";
            try
            {
                status = Load(ml, parts[0], parts[1]) ? "OK" : "NONFINITE";
            }
            catch (Exception e)
            {
                status = "ERROR";
                type = e.GetType().FullName!;
                message = e.Message.ReplaceLineEndings(" ");
            }
            long peak = Math.Max(0, MemoryGuard.Peak() - before);
            Console.Out.WriteLine(FormattableString.Invariant($"END {i} {status} {peak} {clock.Elapsed.TotalSeconds:F2} {type} {message}"));
            Console.Out.Flush();
        }
        return 0;
    }

    /// <summary>Uses the input as McDit would; returns false when it loaded but its numbers are not finite.</summary>
    static bool Load(MLContext ml, string kind, string path)
    {
        using var scope = NewDisposeScope();
        switch (kind)
        {
            case "safetensors":
            {
                using var content = SafeTensors.Load(path);
                using var model = new MaskedDiffusionTransformer(Tiny.Backbone(TrainingMethod.DiT));
                Checkpoint.LoadInto(model, content.Tensors, path);
                return true;
            }
            case "checkpoint":
            {
                using var trainer = Checkpoint.Load(path, "cpu");
                Tiny.Step(trainer, 0);
                using var samples = trainer.Generate(new[] { 0 }, 1, seed: 0, new McDit.Torch.Diffusion.SamplerOptions { Steps = 1 });
                return samples.isfinite().all().item<bool>();
            }
            case "series":
            {
                // A folder of checkpoints as --resume sees it: the newest that loads, damaged ones passed over.
                var (trainer, _) = new CheckpointSeries(path).ResumeLatest();
                using (trainer)
                {
                    if (trainer is null) throw new InvalidDataException($"{path}: no checkpoint loads");
                    Tiny.Step(trainer, 0);
                }
                return true;
            }
            case "zip":
            {
                var model = McDitModel.Load(path, "cpu");
                using var samples = model.Generate(1, new[] { 0 }, seed: 0);
                return samples.isfinite().all().item<bool>();
            }
            case "images":
            {
                var view = ml.McDit().Data.LoadImageFolder(path, new ImageFolderOptions { ImageSize = 8, Channels = 3 });
                foreach (var pixels in view.GetColumn<float[]>("Image"))
                    if (pixels.Any(v => !float.IsFinite(v))) return false;
                return true;
            }
            default:
                throw new ArgumentException($"unknown case kind '{kind}'");
        }
    }
}
