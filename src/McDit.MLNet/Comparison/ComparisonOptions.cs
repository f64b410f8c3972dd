using McDit.MLNet.Trainers;
using McDit.Torch.Diffusion;

namespace McDit.MLNet.Comparison;

/// <summary>Which clock "equal time" is measured on.</summary>
public enum ComparisonClock
{
    /// <summary>Wall-clock seconds of the training steps (evaluation excluded). What a user waits; noisy on a shared machine.</summary>
    Wall,
    /// <summary>CPU seconds of this process during the training steps (evaluation excluded): steadier on a busy machine.</summary>
    ProcessCpu,
}

/// <summary>
/// The settings of a <see cref="MethodComparison"/>: the training settings every arm shares, the arms, the seeds, and
/// when and how the arms are measured.
/// </summary>
public sealed class ComparisonOptions
{
    /// <summary>
    /// The training settings every arm shares (model, steps, unmasking tuning, batch, learning rate, EMA, device,
    /// columns). Its <c>Method</c>, <c>MethodOptions</c>, <c>Seed</c> and <c>StepCallback</c> are set per run.
    /// </summary>
    public McDitTrainer.Options Training { get; set; } = new();

    /// <summary>The arms, see <see cref="ComparisonVariant.Build"/>. The first arm sets the time budget (see <see cref="TimeBudgetSeconds"/>).</summary>
    public IReadOnlyList<ComparisonVariant> Variants { get; set; } = ComparisonVariant.Build(new[]
        { McDit.Torch.Training.TrainingMethod.DiT, McDit.Torch.Training.TrainingMethod.MaskDiT, McDit.Torch.Training.TrainingMethod.McDiT });

    /// <summary>Seeds; every arm is trained once per seed (initialisation, data order, noise, masks), with the same seed for every arm.</summary>
    public IReadOnlyList<int> Seeds { get; set; } = new[] { 0, 1, 2 };

    /// <summary>Measure every this many steps (and after the last step); 0 measures only after the last step.</summary>
    public int EvaluateEvery { get; set; }

    /// <summary>Generated images per measurement (classes in turn); the same classes and starting noise for every arm.</summary>
    public int FdSamples { get; set; } = 200;

    /// <summary>Sampler of the measurements and grids (steps, solver, guidance; a null <c>NullLabel</c> becomes the class count).</summary>
    public SamplerOptions Sampler { get; set; } = new() { Steps = 18 };

    /// <summary>Seed of the sampler noise of measurements (the grids use this seed + 1).</summary>
    public long SampleSeed { get; set; } = 1;

    /// <summary>Samples per class row in each arm's final grid.</summary>
    public int GridColumns { get; set; } = 8;

    /// <summary>
    /// Training seconds (on <see cref="Clock"/>) at which every arm is also measured, for the equal-time comparison. Null:
    /// per seed, the seconds the first arm needed for all its steps, so the first arm's last measurement is its
    /// equal-time measurement and every other arm is measured at the first step at which its training time reaches it
    /// (an arm that finishes sooner is measured at its end, and the table says so).
    /// </summary>
    public double? TimeBudgetSeconds { get; set; }

    /// <summary>The clock of the time budget and of the curves against seconds.</summary>
    public ComparisonClock Clock { get; set; } = ComparisonClock.Wall;

    /// <summary>
    /// Measure class accuracy beside FD: the fraction of generated images that a classifier trained on the real training
    /// images (<see cref="McDit.Torch.Metrics.ImageClassifierTraining"/>, cached per user) assigns to the class they were
    /// generated for, overall and per class; its accuracy on the real held-out images is reported as the ceiling.
    /// Ignored when <see cref="ClassAccuracy"/> is set; needs a label column.
    /// </summary>
    public bool MeasureClassAccuracy { get; set; } = true;

    /// <summary>
    /// A class-accuracy metric of your own, called with images in the model's scale ([-1, 1]) and the classes they were
    /// generated for; null uses the built-in classifier when <see cref="MeasureClassAccuracy"/> is set.
    /// </summary>
    public Func<TorchSharp.torch.Tensor, IReadOnlyList<int>, McDit.Torch.Metrics.ClassAccuracy>? ClassAccuracy { get; set; }

    /// <summary>The folder the comparison writes (created). A folder holding a finished run of the same settings is reused run by run.</summary>
    public string OutputFolder { get; set; } = "runs/compare";

    /// <summary>The command line that started the comparison, recorded in the report (null: not recorded).</summary>
    public string? CommandLine { get; set; }

    /// <summary>Progress lines (one per measurement, and a step line every <see cref="ProgressInterval"/>); null writes none.</summary>
    public TextWriter? Progress { get; set; }

    /// <summary>Wall-clock time between two progress lines while a run trains.</summary>
    public TimeSpan ProgressInterval { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Stops the comparison (between steps); finished runs stay in the folder and are reused on the next start.</summary>
    public CancellationToken CancellationToken { get; set; }

    /// <summary>Checks the values; throws naming the bad one.</summary>
    public void Validate()
    {
        if (Variants is not { Count: > 0 }) throw new ArgumentException("A comparison needs at least one arm (Variants).", nameof(Variants));
        var duplicate = Variants.GroupBy(v => v.Slug).FirstOrDefault(g => g.Count() > 1);
        if (duplicate is not null) throw new ArgumentException($"Two arms share the name '{duplicate.Key}'; expected distinct arms.", nameof(Variants));
        if (Seeds is not { Count: > 0 }) throw new ArgumentException("A comparison needs at least one seed (Seeds).", nameof(Seeds));
        if (Seeds.Distinct().Count() != Seeds.Count) throw new ArgumentException($"Seeds {string.Join(",", Seeds)} repeat a seed; expected distinct seeds.", nameof(Seeds));
        if (EvaluateEvery < 0) throw new ArgumentOutOfRangeException(nameof(EvaluateEvery), EvaluateEvery, "Expected ≥ 0 steps between measurements (0: only at the end).");
        if (FdSamples < 2) throw new ArgumentOutOfRangeException(nameof(FdSamples), FdSamples, "Expected at least 2 generated images per measurement.");
        if (GridColumns < 1 || GridColumns > 64) throw new ArgumentOutOfRangeException(nameof(GridColumns), GridColumns, "Expected 1 to 64 samples per grid row.");
        if (TimeBudgetSeconds is { } t && !(t > 0 && double.IsFinite(t))) throw new ArgumentOutOfRangeException(nameof(TimeBudgetSeconds), t, "Expected a positive number of seconds.");
        if (Training.NumberOfSteps < 1) throw new ArgumentOutOfRangeException(nameof(Training), Training.NumberOfSteps, "Expected at least one training step (Training.NumberOfSteps).");
        // The null label is the data's class count, known once training starts; any value passes this check.
        new SamplerOptions
        {
            Steps = Sampler.Steps, Solver = Sampler.Solver, SigmaMin = Sampler.SigmaMin, SigmaMax = Sampler.SigmaMax, Rho = Sampler.Rho,
            GuidanceScale = Sampler.GuidanceScale, NullLabel = Sampler.NullLabel ?? 0,
            GuidanceSigmaMin = Sampler.GuidanceSigmaMin, GuidanceSigmaMax = Sampler.GuidanceSigmaMax,
            AlternatingShift = Sampler.AlternatingShift, AlternatingShiftSigmaMax = Sampler.AlternatingShiftSigmaMax,
        }.Validate();
        if (string.IsNullOrWhiteSpace(OutputFolder)) throw new ArgumentException("OutputFolder is empty; expected a folder path.", nameof(OutputFolder));
    }
}
