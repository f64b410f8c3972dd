using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using McDit.MLNet.Imaging;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;
using SixLabors.ImageSharp.Processing;

namespace McDit.MLNet.Comparison;

/// <summary>Writes the files of a <see cref="ComparisonResult"/>: tables (markdown, CSV, JSON), curves (PNG) and the grids side by side.</summary>
public static class ComparisonReport
{
    private static readonly Rgb24[] Palette =
    {
        new(31, 119, 180), new(214, 39, 40), new(44, 160, 44), new(148, 103, 189), new(255, 127, 14),
        new(140, 86, 75), new(227, 119, 194), new(127, 127, 127), new(188, 189, 34), new(23, 190, 207),
    };

    private static string F(double x, string format) => double.IsFinite(x) ? x.ToString(format, CultureInfo.InvariantCulture) : "-";

    private static string Schedule(Trainers.McDitTrainer.Options t) =>
        (t.LearningRateWarmupSteps > 0 ? $" after {t.LearningRateWarmupSteps} warm-up steps" : "")
        + (t.LearningRateDecay == McDit.Torch.Training.LearningRateDecay.Cosine ? ", cosine decay to 0" : "");

    private static string Spread(SeedSpread s, string format, double scale = 1) =>
        s.Count == 0 ? "-" : s.Count == 1 ? F(scale * s.Mean, format) : $"{F(scale * s.Mean, format)} ± {F(scale * s.StandardDeviation, format)}";

    /// <summary>Writes every file of the comparison into its folder.</summary>
    /// <param name="result">What the comparison found.</param>
    /// <param name="options">Its settings (for the report's header).</param>
    /// <param name="dataDescription">The data, as the report names it.</param>
    public static void Write(ComparisonResult result, ComparisonOptions options, string dataDescription)
    {
        WriteJson(result, options, dataDescription);
        McDit.Torch.IO.AtomicFile.WriteAllText(result.TableFile, Markdown(result, options, dataDescription));
        McDit.Torch.IO.AtomicFile.WriteAllText(result.CsvFile, Csv(result));
        WriteCharts(result);
        WriteGrids(result);
    }

    /// <summary>The markdown report: settings, the equal-steps and equal-time tables, per-class accuracy, and the files.</summary>
    public static string Markdown(ComparisonResult r, ComparisonOptions o, string dataDescription)
    {
        var t = o.Training;
        var md = new StringBuilder();
        var clockName = r.Clock == ComparisonClock.Wall ? "wall-clock" : "process CPU";
        md.AppendLine("# Method comparison").AppendLine();
        if (o.CommandLine is not null) md.AppendLine($"Command: `{o.CommandLine}`").AppendLine();
        md.AppendLine($"- data: {dataDescription}; FD-ResNet18 of {r.FdSamples} generated images (classes in turn) against {r.ReferenceCount} real held-out images");
        md.AppendLine($"- training: `{t.Model}`, {t.NumberOfSteps} masked steps + {t.UnmaskTuningSteps} unmasking-tuning steps, batch {t.BatchSize}, " +
            $"learning rate {F(t.LearningRate, "G4")}{Schedule(t)}, weight EMA {F(t.EmaDecay, "G4")}, the same seed for every arm");
        md.AppendLine($"- sampler: {o.Sampler.Steps} {o.Sampler.Solver} steps, guidance {F(o.Sampler.GuidanceScale, "G4")}");
        md.AppendLine($"- seeds: {string.Join(", ", r.Seeds)}; values are mean ± sample standard deviation over the seeds");
        md.AppendLine(string.Create(CultureInfo.InvariantCulture, $"- floor: FD of {r.FdSamples} real training images {r.RealFrechetDistance:F1}") +
            (r.RealAccuracy is { } ra ? string.Create(CultureInfo.InvariantCulture, $"; ceiling: class accuracy of the real held-out images {100 * ra:F1} %") : "; class accuracy: not measured (no classifier)"));
        md.AppendLine($"- machine: {Environment.ProcessorCount} logical CPUs, {System.Runtime.InteropServices.RuntimeInformation.OSDescription}, " +
            $"{TorchThreads()} torch thread(s), load average {LoadAverage()} when written; written {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC");
        md.AppendLine();

        var steps = r.CommonSteps;
        md.AppendLine("## Equal steps").AppendLine();
        md.Append("| arm | parameters | s/step |");
        foreach (var s in steps) md.Append($" FD @ {s} |");
        if (r.RealAccuracy is not null) foreach (var s in steps) md.Append($" accuracy @ {s} (%) |");
        md.AppendLine();
        md.Append("|---|---:|---:|").Append(string.Concat(Enumerable.Repeat("---:|", steps.Count * (r.RealAccuracy is null ? 1 : 2)))).AppendLine();
        foreach (var v in r.Variants)
        {
            var runs = r.RunsOf(v.Name);
            if (runs.Count == 0) continue;
            md.Append($"| {v.Name} | {runs[0].Parameters:N0} | {Spread(SeedSpread.Of(runs.Select(x => Seconds(x, r.Clock) / Math.Max(1, x.Steps))), "F3")} |");
            foreach (var s in steps) md.Append($" {Spread(SeedSpread.Of(runs.Select(x => At(x, s)?.FrechetDistance ?? double.NaN)), "F1")} |");
            if (r.RealAccuracy is not null)
                foreach (var s in steps) md.Append($" {Spread(SeedSpread.Of(runs.Select(x => At(x, s)?.Accuracy ?? double.NaN)), "F1", 100)} |");
            md.AppendLine();
        }
        md.AppendLine();

        md.AppendLine("## Equal training time").AppendLine();
        md.AppendLine(o.TimeBudgetSeconds is { } tb
            ? string.Create(CultureInfo.InvariantCulture, $"Every arm measured when its {clockName} training time reached {tb:F0} s (measurements excluded).")
            : $"Per seed, the budget is the {clockName} training time (measurements excluded) that {r.Variants[0].Name}, the first arm, needed for all its steps; " +
              "every other arm is measured at the first step at which its own training time reached that budget.");
        md.AppendLine();
        md.AppendLine("| arm | budget (s) | step reached | FD | accuracy (%) | note |");
        md.AppendLine("|---|---:|---:|---:|---:|---|");
        foreach (var v in r.Variants)
        {
            var runs = r.RunsOf(v.Name);
            if (runs.Count == 0) continue;
            var at = runs.Select(x => x.AtTimeBudget).ToList();
            int early = runs.Count(x => !x.ReachedTimeBudget);
            md.AppendLine($"| {v.Name} | {Spread(SeedSpread.Of(runs.Select(x => x.TimeBudgetSeconds)), "F0")} | {Spread(SeedSpread.Of(at.Select(m => (double)m.Step)), "F0")} | " +
                $"{Spread(SeedSpread.Of(at.Select(m => m.FrechetDistance)), "F1")} | {Spread(SeedSpread.Of(at.Select(m => m.Accuracy ?? double.NaN)), "F1", 100)} | " +
                (early > 0 ? $"{early} of {runs.Count} runs finished all steps before the budget (measured at their end)" : "") + " |");
        }
        md.AppendLine();

        if (r.RealAccuracy is not null && r.ClassNames is { Count: > 0 } names)
        {
            md.AppendLine($"## Class accuracy per class at step {(steps.Count > 0 ? steps[^1] : 0)} (%, mean over seeds)").AppendLine();
            md.Append("| arm |").Append(string.Concat(names.Select(n => $" {n} |"))).AppendLine();
            md.Append("|---|").Append(string.Concat(names.Select(_ => "---:|"))).AppendLine();
            foreach (var v in r.Variants)
            {
                var finals = r.RunsOf(v.Name).Select(x => x.Measurements[^1].PerClassAccuracy).Where(p => p is not null).ToList();
                if (finals.Count == 0) continue;
                md.Append($"| {v.Name} |");
                for (int c = 0; c < names.Count; c++) md.Append($" {F(100 * SeedSpread.Of(finals.Select(p => c < p!.Count ? p[c] : double.NaN)).Mean, "F0")} |");
                md.AppendLine();
            }
            md.AppendLine();
        }

        md.AppendLine("## Files").AppendLine();
        md.AppendLine("- `table.csv`: these numbers, one row per arm and checkpoint (mean, sd, min, max over seeds); `results.json`: every run and measurement");
        md.AppendLine($"- `fd-vs-steps.png`, `fd-vs-seconds.png`{(r.RealAccuracy is null ? "" : ", `accuracy-vs-steps.png`, `accuracy-vs-seconds.png`")}: mean over seeds ({clockName} seconds)");
        md.AppendLine($"- `grids.png`: the final samples of every arm side by side (seed {r.Seeds[0]}); `grids/`: every run's grid");
        return md.ToString();
    }

    /// <summary>One CSV row per arm and checkpoint: kind (step or time), step, seconds, FD and accuracy (mean, sd, min, max).</summary>
    public static string Csv(ComparisonResult r)
    {
        var csv = new StringBuilder("arm,checkpoint,step,seconds,seeds,fd_mean,fd_sd,fd_min,fd_max,accuracy_mean,accuracy_sd,accuracy_min,accuracy_max,parameters\n");
        void Row(string arm, string kind, IReadOnlyList<ComparisonMeasurement> ms, ComparisonClock clock, long parameters)
        {
            var fd = SeedSpread.Of(ms.Select(m => m.FrechetDistance));
            var acc = SeedSpread.Of(ms.Select(m => m.Accuracy ?? double.NaN));
            var step = SeedSpread.Of(ms.Select(m => (double)m.Step)).Mean;
            var sec = SeedSpread.Of(ms.Select(m => m.Seconds(clock))).Mean;
            csv.AppendLine(string.Join(',', new[]
            {
                '"' + arm.Replace("\"", "\"\"") + '"', kind, F(step, "F0"), F(sec, "F1"), fd.Count.ToString(CultureInfo.InvariantCulture),
                F(fd.Mean, "F3"), F(fd.StandardDeviation, "F3"), F(fd.Minimum, "F3"), F(fd.Maximum, "F3"),
                F(acc.Mean, "F4"), F(acc.StandardDeviation, "F4"), F(acc.Minimum, "F4"), F(acc.Maximum, "F4"), parameters.ToString(CultureInfo.InvariantCulture),
            }.Select(x => x == "-" ? "" : x)));
        }
        foreach (var v in r.Variants)
        {
            var runs = r.RunsOf(v.Name);
            if (runs.Count == 0) continue;
            foreach (var s in r.CommonSteps) Row(v.Name, "step", runs.Select(x => At(x, s)!).ToList(), r.Clock, runs[0].Parameters);
            Row(v.Name, "time", runs.Select(x => x.AtTimeBudget).ToList(), r.Clock, runs[0].Parameters);
        }
        return csv.ToString();
    }

    private static void WriteJson(ComparisonResult r, ComparisonOptions o, string data)
    {
        var json = new JsonSerializerOptions
        {
            WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
            NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals, Converters = { new JsonStringEnumConverter() },
        };
        var document = new
        {
            command = o.CommandLine, data, written_utc = DateTime.UtcNow, machine = new { logical_cpus = Environment.ProcessorCount, torch_threads = TorchThreads(), load_average = LoadAverage() },
            training = new { model = o.Training.Model, steps = o.Training.NumberOfSteps, unmask_steps = o.Training.UnmaskTuningSteps, batch_size = o.Training.BatchSize,
                learning_rate = o.Training.LearningRate, lr_warmup_steps = o.Training.LearningRateWarmupSteps, lr_decay = o.Training.LearningRateDecay.ToString(),
                ema_decay = o.Training.EmaDecay },
            sampler = new { steps = o.Sampler.Steps, solver = o.Sampler.Solver.ToString(), guidance = o.Sampler.GuidanceScale },
            clock = r.Clock, fd_samples = r.FdSamples, reference_count = r.ReferenceCount, real_fd = r.RealFrechetDistance, real_accuracy = r.RealAccuracy,
            class_names = r.ClassNames, variants = r.Variants, seeds = r.Seeds, runs = r.Runs,
        };
        McDit.Torch.IO.AtomicFile.Write(r.JsonFile, s => JsonSerializer.Serialize(s, document, json));
    }

    private static void WriteCharts(ComparisonResult r)
    {
        var clockName = r.Clock == ComparisonClock.Wall ? "wall-clock" : "CPU";
        Chart(r, "fd-vs-steps.png", $"FD-ResNet18 ({r.FdSamples} samples), mean of {r.Seeds.Count} seeds", "step", m => m.FrechetDistance, (m, _) => m.Step, r.RealFrechetDistance, "real images");
        Chart(r, "fd-vs-seconds.png", $"FD-ResNet18 ({r.FdSamples} samples), mean of {r.Seeds.Count} seeds", $"training seconds ({clockName})", m => m.FrechetDistance, (m, c) => m.Seconds(c), r.RealFrechetDistance, "real images");
        if (r.RealAccuracy is { } ceiling)
        {
            Chart(r, "accuracy-vs-steps.png", $"class accuracy (%), mean of {r.Seeds.Count} seeds", "step", m => 100 * (m.Accuracy ?? double.NaN), (m, _) => m.Step, 100 * ceiling, "real held-out");
            Chart(r, "accuracy-vs-seconds.png", $"class accuracy (%), mean of {r.Seeds.Count} seeds", $"training seconds ({clockName})", m => 100 * (m.Accuracy ?? double.NaN), (m, c) => m.Seconds(c), 100 * ceiling, "real held-out");
        }
    }

    // One line per arm: the mean over seeds at each fixed checkpoint (x: mean step or mean seconds there), and a dashed-looking reference line.
    private static void Chart(ComparisonResult r, string file, string title, string xLabel, Func<ComparisonMeasurement, double> y,
        Func<ComparisonMeasurement, ComparisonClock, double> x, double reference, string referenceName)
    {
        var series = new List<ChartSeries>();
        var steps = r.CommonSteps;
        double xMin = double.MaxValue, xMax = double.MinValue;
        for (int i = 0; i < r.Variants.Count; i++)
        {
            var runs = r.RunsOf(r.Variants[i].Name);
            if (runs.Count == 0 || steps.Count == 0) continue;
            var xs = steps.Select(s => runs.Average(run => x(At(run, s)!, r.Clock))).ToArray();
            var ys = steps.Select(s => SeedSpread.Of(runs.Select(run => y(At(run, s)!))).Mean).ToArray();
            xMin = Math.Min(xMin, xs.Min());
            xMax = Math.Max(xMax, xs.Max());
            series.Add(new ChartSeries(r.Variants[i].Name, xs, ys, Palette[i % Palette.Length], 2));
        }
        if (series.Count == 0) return;
        if (double.IsFinite(reference)) series.Add(new ChartSeries(referenceName, new[] { xMin, xMax }, new[] { reference, reference }, new Rgb24(0, 0, 0)));
        LineChart.SavePng(Path.Combine(r.Folder, file), title, xLabel, series);
    }

    private static void WriteGrids(ComparisonResult r)
    {
        var seed = r.Seeds[0];
        var grids = r.Variants.Select(v => (v.Name, Run: r.Runs.FirstOrDefault(x => x.Variant == v.Name && x.Seed == seed)))
            .Where(g => g.Run is not null && File.Exists(Path.Combine(r.Folder, g.Run.GridFile)))
            .Select(g => (g.Name, Image: Image.Load<Rgb24>(Path.Combine(r.Folder, g.Run!.GridFile)))).ToList();
        if (grids.Count == 0) return;
        try
        {
            const int gap = 16, titleHeight = 24;
            int width = grids.Sum(g => g.Image.Width) + gap * (grids.Count - 1), height = titleHeight + grids.Max(g => g.Image.Height);
            using var canvas = new Image<Rgb24>(width, height, new Rgb24(255, 255, 255));
            int left = 0;
            foreach (var (name, image) in grids)
            {
                var (img, at) = (image, left);
                canvas.Mutate(c => c.DrawImage(img, new Point(at, titleHeight), 1f));
                BitmapFont5x7.Draw(name, left + 4, 6, 2, (px, py) =>
                {
                    if (px >= 0 && py >= 0 && px < canvas.Width && py < canvas.Height) canvas[px, py] = new Rgb24(0, 0, 0);
                });
                left += image.Width + gap;
            }
            McDit.Torch.IO.AtomicFile.Write(r.GridsFile, s => canvas.SaveAsPng(s));
        }
        finally
        {
            foreach (var g in grids) g.Image.Dispose();
        }
    }

    private static ComparisonMeasurement? At(ComparisonRun run, long step) => run.Measurements.LastOrDefault(m => m.Step == step && m.Scheduled);

    private static double Seconds(ComparisonRun run, ComparisonClock clock) => clock == ComparisonClock.Wall ? run.WallSeconds : run.CpuSeconds;

    private static int TorchThreads()
    {
        McDit.Torch.Runtime.TorchBackend.EnsureInitialized();
        return TorchSharp.torch.get_num_threads();
    }

    private static string LoadAverage()
    {
        try
        {
            return File.Exists("/proc/loadavg") ? string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3)) : "unknown";
        }
        catch (IOException)
        {
            return "unknown";
        }
    }
}
