using System.CommandLine;
using System.CommandLine.Parsing;
using System.Globalization;
using McDit.Cli.Runs;
using McDit.MLNet.Comparison;
using McDit.Torch.Diffusion;
using McDit.Torch.Training;
using Microsoft.ML;

namespace McDit.Cli.Commands;

/// <summary>
/// <c>mcdit compare</c>: DiT vs MaskDiT vs MC-DiT (and the paper's ablations of MC-DiT) on the same data, backbone,
/// batch, learning rate, schedule and seeds, at equal steps and equal training time; a thin layer over
/// <see cref="MethodComparison"/>.
/// </summary>
public static class CompareCommand
{
    /// <summary>
    /// The comparison's guidance scale: 3, as in docs/results.md's comparisons. The demo guides at 4 since it samples with the
    /// alternating shift of a shift-trained model, which the three arms of a comparison are not.
    /// </summary>
    public const double ComparisonGuidance = 3.0;

    /// <summary>
    /// Default steps of each stage: the demo's budget split in halves. The demo itself spends two thirds on unmasking
    /// tuning, which is best for its samples but leaves the masked arms less room to differ.
    /// </summary>
    public const long ComparisonStageSteps = 475;

    /// <summary>Creates the command.</summary>
    public static Command Create(TextWriter output, TextWriter error)
    {
        var demo = DemoCommand.Settings;
        var outDir = new Option<string>("--out") { Description = "Comparison folder (table.md, table.csv, results.json, curves, grids; finished runs in runs/ are reused when started again with the same settings).", DefaultValueFactory = _ => "runs/compare" }.OutputFolder("a comparison folder");
        var data = new Option<string>("--data") { Description = "'embedded', 'fashion-mnist' or a folder of IDX files or CIFAR-10 batches (it needs a held-out split).", DefaultValueFactory = _ => demo.Data }.DataSource();
        var methods = ListOption("--methods", "Arms with their defaults: DiT, MaskDiT, McDiT (comma-separated). The first sets the time budget.", "DiT,MaskDiT,McDiT", ParseMethod);
        var seeds = ListOption("--seeds", "Seeds (comma-separated); every arm is trained once per seed.", "0,1,2", ParseSeed);
        var maskRatios = ListOption("--mask-ratio", "Ablation: mask ratios of the masked arms (MaskDiT, MC-DiT), e.g. 0.25,0.5,0.75 (default: each method's, 0.5).", null, ParseRatio);
        var branches = ListOption("--branches", "Ablation: MC-DiT's EMA branches, any of both, noisy, clean, none (e.g. both,noisy,clean,none).", null, ParseBranches);
        var targets = ListOption("--target", "Ablation: MC-DiT's reconstruction target, any of CleanOnly, AllClean, CleanAndNoisy (the default).", null, ParseTarget);
        var cleanFractions = ListOption("--clean-fraction", "Ablation: fraction of each batch that passes MC-DiT's clean branch, in (0, 1] (default 1; 0.25 costs about a DiT step).", null, ParseFraction);
        var scopes = ListOption("--branch-scope", "Ablation: what MC-DiT's branches copy, Decoder (the default) or DecoderAndEncoder.", null, ParseScope);
        var model = new Option<string>("--model") { Description = "Backbone preset shared by every arm (MaskDiT and MC-DiT add their decoder).", DefaultValueFactory = _ => demo.Model }.ModelPreset();
        var steps = new Option<long>("--steps") { Description = "Masked pre-training steps (stage 1) of every arm (default 475: half of the demo's ~1,000 steps, so that the masked arms are compared where they differ).", DefaultValueFactory = _ => ComparisonStageSteps }.InRange(1, int.MaxValue, "masked pre-training steps");
        var unmask = new Option<long>("--unmask-steps") { Description = "Unmasking-tuning steps after stage 1 (r = 0, lr halved; DiT trains on as before with lr halved).", DefaultValueFactory = _ => ComparisonStageSteps }.InRange(0, int.MaxValue, "unmasking-tuning steps");
        var batch = new Option<int>("--batch-size") { Description = "Images per step.", DefaultValueFactory = _ => demo.BatchSize }.InRange(1, OptionChecks.MaxBatchSize, "images per step");
        var lr = new Option<double>("--lr") { Description = "AdamW learning rate.", DefaultValueFactory = _ => demo.LearningRate }.Finite(0, 10, "a learning rate", minExclusive: true);
        var ema = new Option<double>("--ema-decay") { Description = "Decay of the weight EMA that samples.", DefaultValueFactory = _ => demo.EmaDecay }.Finite(0, 1, "an EMA decay");
        var warmup = new Option<long>("--lr-warmup") { Description = "Steps of linear learning-rate warm-up.", DefaultValueFactory = _ => demo.LrWarmup }.InRange(0, int.MaxValue, "warm-up steps");
        var decay = new Option<LearningRateDecay>("--lr-decay") { Description = "Constant, or Cosine (to 0 at the last step of both stages).", DefaultValueFactory = _ => demo.LrDecay };
        var evalEvery = new Option<long>("--eval-every") { Description = "Measure FD (and accuracy) every N steps and after the last (default: a quarter of all steps).", DefaultValueFactory = _ => 0 }.InRange(0, int.MaxValue, "steps between measurements (0: a quarter of all steps)");
        var fdSamples = new Option<int>("--fd-samples") { Description = "Generated images per measurement.", DefaultValueFactory = _ => 200 }.InRange(2, OptionChecks.MaxFdSamples, "generated images per measurement");
        var reference = new Option<int>("--fd-reference") { Description = "Held-out real images of the FD reference (their statistics are cached per user).", DefaultValueFactory = _ => 1000 }.InRange(2, int.MaxValue, "held-out images");
        var samplerSteps = new Option<int>("--sampler-steps") { Description = "Sampler steps of measurements and grids.", DefaultValueFactory = _ => demo.SamplerSteps }.InRange(1, OptionChecks.MaxSamplerSteps, "sampler steps");
        var guidance = new Option<double>("--guidance") { Description = "Classifier-free guidance scale of measurements and grids (1: none).", DefaultValueFactory = _ => ComparisonGuidance }.Finite(-1000, 1000, "a guidance scale");
        var seconds = new Option<double?>("--seconds") { Description = "Equal-time budget: measure every arm when its training time reaches this (default: per seed, the first arm's training time)." }.Finite(0, 1e9, "seconds", minExclusive: true);
        var clock = new Option<ComparisonClock>("--clock") { Description = "Clock of the equal-time budget and the curves: Wall, or ProcessCpu (steadier on a busy machine).", DefaultValueFactory = _ => ComparisonClock.Wall };
        var accuracy = new Option<bool>("--class-accuracy") { Description = "Also measure class accuracy (a classifier trained once on the training images, cached per user); false: FD only.", DefaultValueFactory = _ => true };
        var device = new Option<string>("--device") { Description = "cpu, cuda, cuda:N or auto.", DefaultValueFactory = _ => demo.Device }.Device();
        var command = new Command("compare",
            "Train DiT, MaskDiT and MC-DiT (and ablations of MC-DiT) on the same data, backbone, batch, learning rate, schedule and seeds;\n" +
            "measure FD-ResNet18 at fixed steps and at equal training time; write a table (markdown, CSV, JSON), curves against steps\n" +
            "and seconds (PNG) and the sample grids side by side. Ablations: --mask-ratio 0.25,0.5,0.75  --branches both,noisy,clean,none\n" +
            "--target CleanOnly,AllClean,CleanAndNoisy  --branch-scope Decoder,DecoderAndEncoder  --clean-fraction 1,0.25 (cross product; e.g. --methods McDiT --mask-ratio 0.25,0.5,0.75).")
        {
            outDir, data, methods, seeds, maskRatios, branches, targets, scopes, cleanFractions, model, steps, unmask, batch, lr, warmup, decay, ema, evalEvery,
            fdSamples, reference, samplerSteps, guidance, seconds, clock, accuracy, device,
        };
        command.SetAction(parse =>
        {
            long totalSteps = parse.GetValue(steps) + parse.GetValue(unmask);
            var settings = new TrainSettings
            {
                Data = parse.GetValue(data)!, Model = parse.GetValue(model)!, Steps = parse.GetValue(steps), UnmaskSteps = parse.GetValue(unmask),
                BatchSize = parse.GetValue(batch), LearningRate = parse.GetValue(lr), EmaDecay = parse.GetValue(ema), Device = parse.GetValue(device)!,
                LrWarmup = parse.GetValue(warmup), LrDecay = parse.GetValue(decay),
                SamplerSteps = parse.GetValue(samplerSteps), Guidance = parse.GetValue(guidance),
            }.Validated();
            var ml = new MLContext(seed: 0);
            var train = DataSources.Load(ml, settings.Data, heldOut: false);
            var heldOut = DataSources.Load(ml, settings.Data, heldOut: true);
            int referenceCount = (int)Math.Min(parse.GetValue(reference), heldOut.GetRowCount() ?? long.MaxValue);
            var referenceName = $"{settings.Data} (held-out, {referenceCount})";
            using var interruption = new Interruption();
            var options = new ComparisonOptions
            {
                Training = settings.ToTrainerOptions(),
                Variants = ComparisonVariant.Build(Values(parse, methods, ParseMethod)!, Values(parse, maskRatios, ParseRatio),
                    Values(parse, branches, ParseBranches), Values(parse, targets, ParseTarget), Values(parse, scopes, ParseScope),
                    Values(parse, cleanFractions, ParseFraction)),
                Seeds = Values(parse, seeds, ParseSeed)!,
                EvaluateEvery = (int)(parse.GetValue(evalEvery) is > 0 and var e ? e : Math.Max(1, totalSteps / 4)),
                FdSamples = parse.GetValue(fdSamples),
                Sampler = settings.ToSamplerOptions(),
                TimeBudgetSeconds = parse.GetValue(seconds),
                Clock = parse.GetValue(clock),
                MeasureClassAccuracy = parse.GetValue(accuracy),
                OutputFolder = parse.GetValue(outDir)!,
                CommandLine = "mcdit " + string.Join(' ', parse.Tokens.Select(t => t.Value.Contains(' ') ? $"'{t.Value}'" : t.Value)),
                Progress = output,
                CancellationToken = interruption.Token,
            };
            try
            {
                var result = new MethodComparison(ml, options).Run(train, ml.Data.TakeRows(heldOut, referenceCount),
                    FdEvaluation.DefaultCacheFile(referenceName), $"{settings.Data} ({train.Count:N0} training images, held-out reference {referenceCount:N0})");
                output.WriteLine();
                output.WriteLine(File.ReadAllText(result.TableFile));
                return 0;
            }
            catch (OperationCanceledException) when (interruption.Token.IsCancellationRequested)
            {
                error.WriteLine($"mcdit: compare interrupted; the finished runs are in {Path.Combine(options.OutputFolder, "runs")} and are reused when the same command is run again.");
                return CliErrors.Interrupted;
            }
        });
        return command;
    }

    static TrainingMethod ParseMethod(string s) => s.Replace("-", "").ToLowerInvariant() switch
    {
        "dit" => TrainingMethod.DiT,
        "maskdit" => TrainingMethod.MaskDiT,
        "mcdit" => TrainingMethod.McDiT,
        _ => throw new FormatException($"'{s}' is not a method"),
    };

    static double ParseFraction(string s)
    {
        var f = double.Parse(s, NumberStyles.Float, CultureInfo.InvariantCulture);
        if (!(f > 0 && f <= 1)) throw new FormatException($"{s} is not in (0, 1]");
        return f;
    }

    static double ParseRatio(string s)
    {
        var r = double.Parse(s, NumberStyles.Float, CultureInfo.InvariantCulture);
        if (!(r >= 0 && r < 1)) throw new FormatException($"{s} is not in [0, 1)");
        return r;
    }

    // A comma-separated list, checked while parsing (a bad item is a parse error naming it).
    static Option<string?> ListOption<T>(string name, string description, string? defaultValue, Func<string, T> parseItem)
    {
        var option = new Option<string?>(name) { Description = description };
        if (defaultValue is not null) option.DefaultValueFactory = _ => defaultValue;
        option.Validators.Add(r =>
        {
            var text = r.GetValueOrDefault<string?>();
            if (text is null) return;
            var items = Split(text);
            if (items.Length == 0) { r.AddError($"{name} '{text}' is empty: expected a comma-separated list."); return; }
            foreach (var item in items)
            {
                try { parseItem(item); }
                catch (Exception e) when (e is FormatException or ArgumentException or OverflowException)
                {
                    r.AddError($"{name} '{item}' is invalid: expected {(name switch
                    {
                        "--methods" => "DiT, MaskDiT or McDiT",
                        "--seeds" => "whole numbers",
                        "--mask-ratio" => "fractions in [0, 1)",
                        "--branches" => "both, noisy, clean or none",
                        "--target" => "CleanOnly, AllClean or CleanAndNoisy",
                        "--clean-fraction" => "fractions in (0, 1]",
                        _ => "Decoder or DecoderAndEncoder",
                    })}, comma-separated.");
                    return;
                }
            }
            if (items.Distinct(StringComparer.OrdinalIgnoreCase).Count() != items.Length) r.AddError($"{name} '{text}' repeats a value.");
        });
        return option;
    }

    static string[] Split(string text) => text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    static IReadOnlyList<T>? Values<T>(ParseResult parse, Option<string?> option, Func<string, T> parseItem) =>
        parse.GetValue(option) is { } text ? Split(text).Select(parseItem).ToArray() : null;

    static int ParseSeed(string s) => int.Parse(s, NumberStyles.Integer, CultureInfo.InvariantCulture);
    static BranchSet ParseBranches(string s) => ParseName<BranchSet>(s);
    static ReconstructionTarget ParseTarget(string s) => ParseName<ReconstructionTarget>(s);
    static BranchScope ParseScope(string s) => ParseName<BranchScope>(s);

    // An enum value by name only (Enum.Parse also takes numbers, even undefined ones).
    static T ParseName<T>(string s) where T : struct, Enum =>
        Enum.GetNames<T>().FirstOrDefault(n => string.Equals(n, s, StringComparison.OrdinalIgnoreCase)) is { } name
            ? Enum.Parse<T>(name) : throw new FormatException($"'{s}' is not a {typeof(T).Name}");
}
