namespace McDit.MLNet.Comparison;

/// <summary>One measurement of one run: FD-ResNet18 (and class accuracy) of the weight EMA's samples after a step.</summary>
/// <param name="Step">Optimizer steps taken.</param>
/// <param name="Stage">1 = masked pre-training, 2 = unmasking tuning.</param>
/// <param name="WallSeconds">Wall-clock seconds of training steps so far (measurements excluded).</param>
/// <param name="CpuSeconds">CPU seconds of this process during training steps so far (measurements excluded).</param>
/// <param name="DenoisingLoss">Mean EDM denoising loss of the steps since the previous measurement.</param>
/// <param name="FrechetDistance">FD-ResNet18 against the reference images (lower is better).</param>
/// <param name="Accuracy">Class accuracy, or null without a classifier.</param>
/// <param name="PerClassAccuracy">Class accuracy per class, or null.</param>
/// <param name="Scheduled">True for a measurement at a fixed checkpoint (every EvaluateEvery steps and the last step), which every arm has.</param>
/// <param name="AtTimeBudget">True for the run's equal-time measurement.</param>
public sealed record ComparisonMeasurement(long Step, int Stage, double WallSeconds, double CpuSeconds, double DenoisingLoss,
    double FrechetDistance, double? Accuracy, IReadOnlyList<double>? PerClassAccuracy, bool Scheduled, bool AtTimeBudget)
{
    /// <summary>The seconds on the given clock.</summary>
    public double Seconds(ComparisonClock clock) => clock == ComparisonClock.Wall ? WallSeconds : CpuSeconds;
}

/// <summary>One arm trained with one seed.</summary>
/// <param name="Variant">The arm's name.</param>
/// <param name="Seed">The seed.</param>
/// <param name="Fingerprint">Hash of everything the run depends on; a saved run is reused only when it matches.</param>
/// <param name="Parameters">Trainable parameters of the network that samples (encoder and decoder; not the EMA branches).</param>
/// <param name="Steps">Steps trained.</param>
/// <param name="WallSeconds">Wall-clock seconds of all training steps.</param>
/// <param name="CpuSeconds">CPU seconds of all training steps.</param>
/// <param name="TimeBudgetSeconds">The equal-time budget this run was measured at.</param>
/// <param name="ReachedTimeBudget">False when the run finished its steps before its training time reached the budget.</param>
/// <param name="Measurements">Measurements in step order.</param>
/// <param name="GridFile">The final sample grid (relative to the comparison folder).</param>
public sealed record ComparisonRun(string Variant, int Seed, string Fingerprint, long Parameters, long Steps, double WallSeconds,
    double CpuSeconds, double TimeBudgetSeconds, bool ReachedTimeBudget, IReadOnlyList<ComparisonMeasurement> Measurements, string GridFile)
{
    /// <summary>The run's equal-time measurement (its last one when it finished before the budget).</summary>
    public ComparisonMeasurement AtTimeBudget => Measurements.LastOrDefault(m => m.AtTimeBudget) ?? Measurements[^1];
}

/// <summary>The statistic of one quantity over the seeds of an arm.</summary>
/// <param name="Mean">Mean over seeds.</param>
/// <param name="StandardDeviation">Sample standard deviation over seeds (n − 1; 0 for one seed).</param>
/// <param name="Minimum">Smallest value.</param>
/// <param name="Maximum">Largest value.</param>
/// <param name="Count">Seeds.</param>
public sealed record SeedSpread(double Mean, double StandardDeviation, double Minimum, double Maximum, int Count)
{
    /// <summary>The spread of some values (NaN values are left out; NaN mean when none is left).</summary>
    public static SeedSpread Of(IEnumerable<double> values)
    {
        var v = values.Where(double.IsFinite).ToArray();
        if (v.Length == 0) return new SeedSpread(double.NaN, double.NaN, double.NaN, double.NaN, 0);
        double mean = v.Average();
        double sd = v.Length > 1 ? Math.Sqrt(v.Sum(x => (x - mean) * (x - mean)) / (v.Length - 1)) : 0;
        return new SeedSpread(mean, sd, v.Min(), v.Max(), v.Length);
    }
}

/// <summary>What a <see cref="MethodComparison"/> found, and where it wrote it.</summary>
/// <param name="Folder">The comparison folder.</param>
/// <param name="Variants">The arms, in order.</param>
/// <param name="Seeds">The seeds.</param>
/// <param name="Runs">Every run (arm × seed).</param>
/// <param name="Clock">The clock of the equal-time comparison.</param>
/// <param name="FdSamples">Generated images per measurement.</param>
/// <param name="ReferenceCount">Real images the FD reference statistics come from.</param>
/// <param name="RealFrechetDistance">FD of as many real training images as <paramref name="FdSamples"/>: the floor at this sample size.</param>
/// <param name="RealAccuracy">Class accuracy of real held-out images: the ceiling (null without a classifier).</param>
/// <param name="ClassNames">Class names, when the data has them.</param>
public sealed record ComparisonResult(string Folder, IReadOnlyList<ComparisonVariant> Variants, IReadOnlyList<int> Seeds,
    IReadOnlyList<ComparisonRun> Runs, ComparisonClock Clock, int FdSamples, long ReferenceCount, double RealFrechetDistance,
    double? RealAccuracy, IReadOnlyList<string>? ClassNames)
{
    /// <summary>The runs of one arm.</summary>
    public IReadOnlyList<ComparisonRun> RunsOf(string variant) => Runs.Where(r => r.Variant == variant).ToList();

    /// <summary>The steps measured in every run: the fixed checkpoints of the equal-steps table.</summary>
    public IReadOnlyList<long> CommonSteps => Runs.Count == 0 ? Array.Empty<long>()
        : Runs.Select(r => r.Measurements.Where(m => m.Scheduled).Select(m => m.Step)).Aggregate((a, b) => a.Intersect(b)).Order().ToList();

    /// <summary>The markdown table (table.md).</summary>
    public string TableFile => Path.Combine(Folder, "table.md");
    /// <summary>The same numbers as CSV (table.csv), one row per arm and checkpoint.</summary>
    public string CsvFile => Path.Combine(Folder, "table.csv");
    /// <summary>Every run and measurement (results.json).</summary>
    public string JsonFile => Path.Combine(Folder, "results.json");
    /// <summary>The arms' final sample grids side by side (grids.png, first seed).</summary>
    public string GridsFile => Path.Combine(Folder, "grids.png");
    /// <summary>The PNG charts written: FD (and accuracy) against steps and against seconds.</summary>
    public IReadOnlyList<string> ChartFiles => new[] { "fd-vs-steps.png", "fd-vs-seconds.png", "accuracy-vs-steps.png", "accuracy-vs-seconds.png" }
        .Select(f => Path.Combine(Folder, f)).Where(File.Exists).ToList();
}
