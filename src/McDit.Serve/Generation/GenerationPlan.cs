using McDit.Torch.Diffusion;

namespace McDit.Serve.Generation;

/// <summary>
/// A checked request: image i has class <c>Rows[i / PerClass]</c> and starts from the noise of seed <c>Seed + i</c>,
/// exactly as <c>mcdit sample --classes ROWS --per-class PER_CLASS --seed SEED</c> numbers its images.
/// </summary>
internal sealed record GenerationPlan(int[]? Rows, int PerClass, long Seed, int Steps, SamplerSolver Solver, double Guidance,
    IReadOnlyList<string>? ClassNames)
{
    /// <summary>Number of images.</summary>
    public int Count => (Rows?.Length ?? 1) * PerClass;

    /// <summary>The class of image <paramref name="i"/>, or −1 for an unconditional model.</summary>
    public int ClassOf(int i) => Rows is null ? -1 : Rows[i / PerClass];

    /// <summary>The name of a class as <c>mcdit sample</c> labels its rows.</summary>
    public string NameOf(int c) => c < 0 ? "sample" : ClassNames is { } n && c < n.Count ? n[c] : "class " + c;

    /// <summary>The grid's row labels (null for an unconditional model).</summary>
    public IReadOnlyList<string>? RowLabels => Rows?.Select(NameOf).ToList();
}
