using System.Globalization;
using McDit.MLNet.Generation;
using McDit.Torch.Diffusion;

namespace McDit.Serve.Generation;

/// <summary>
/// The body of <c>POST /api/jobs</c>, as the page sends it: which classes (one grid row each), how many images per
/// class, and the sampler settings. Missing values take the defaults of <c>mcdit sample</c>.
/// </summary>
internal sealed record GenerationRequest
{
    /// <summary>Class indices, one grid row each (the page shows their names); empty for an unconditional model.</summary>
    public int[]? Classes { get; init; }
    /// <summary>Images per class (grid columns).</summary>
    public int? PerClass { get; init; }
    /// <summary>Seed of the first image; image i starts from the noise of seed + i.</summary>
    public long? Seed { get; init; }
    /// <summary>Classifier-free guidance scale (1: none).</summary>
    public double? Guidance { get; init; }
    /// <summary>Sampler steps.</summary>
    public int? Steps { get; init; }
    /// <summary>"Heun" or "Euler".</summary>
    public string? Solver { get; init; }

    /// <summary>The largest seed accepted: a JavaScript number holds whole numbers exactly up to 2^53 − 1.</summary>
    public const long MaxSeed = (1L << 53) - 1;

    /// <summary>Checks the request against the model and the limits; the error names the field and what it accepts.</summary>
    internal GenerationPlan Validate(McDitModel model, GenerationLimits limits)
    {
        static GenerationRequestException Bad(string field, string message) => new(field, message);
        int perClass = PerClass ?? 8;
        if (perClass < 1 || perClass > limits.MaxImages)
            throw Bad("perClass", $"Images per class {perClass} is invalid: expected 1 to {limits.MaxImages}.");
        int steps = Steps ?? 18;
        if (steps < 1 || steps > limits.MaxSamplerSteps)
            throw Bad("steps", $"Sampler steps {steps} is invalid: expected 1 to {limits.MaxSamplerSteps} (this server's limit).");
        double guidance = Guidance ?? 1.5;
        if (!double.IsFinite(guidance) || guidance < 0 || guidance > limits.MaxGuidance)
            throw Bad("guidance", string.Create(CultureInfo.InvariantCulture,
                $"Guidance scale {guidance} is invalid: expected a number from 0 to {limits.MaxGuidance} (1: no guidance)."));
        long seed = Seed ?? 0;
        if (seed < -MaxSeed || seed > MaxSeed)
            throw Bad("seed", $"Seed {seed} is invalid: expected a whole number from {-MaxSeed} to {MaxSeed}.");
        var solverText = Solver ?? nameof(SamplerSolver.Heun);
        if (!Enum.TryParse<SamplerSolver>(solverText, ignoreCase: true, out var solver) || !Enum.IsDefined(solver) || int.TryParse(solverText, out _))
            throw Bad("solver", $"Solver '{solverText}' is invalid: expected Heun or Euler.");

        int[]? rows;
        if (model.NumberOfClasses == 0)
        {
            if (Classes is { Length: > 0 })
                throw Bad("classes", "This model is unconditional: it has no classes to pick.");
            rows = null;
        }
        else
        {
            if (Classes is null || Classes.Length == 0)
                throw Bad("classes", "Pick at least one class.");
            if (Classes.Length > limits.MaxImages)
                throw Bad("classes", $"{Classes.Length} classes were picked; at most {limits.MaxImages} fit in one request.");
            foreach (var c in Classes)
                if (c < 0 || c >= model.NumberOfClasses)
                    throw Bad("classes", $"Class {c} is not a class of this model: expected 0 to {model.NumberOfClasses - 1}.");
            rows = Classes.ToArray();
        }
        long count = (long)(rows?.Length ?? 1) * perClass;
        if (count > limits.MaxImages)
            throw Bad("perClass", $"{rows?.Length ?? 1} classes × {perClass} images = {count} images is over this server's limit of {limits.MaxImages} per request.");
        return new GenerationPlan(rows, perClass, seed, steps, solver, guidance, model.ClassNames);
    }
}

/// <summary>A request the server refuses: <see cref="Field"/> names the bad value.</summary>
internal sealed class GenerationRequestException : ArgumentException
{
    /// <summary>Creates the exception.</summary>
    public GenerationRequestException(string field, string message) : base(message) => Field = field;

    /// <summary>The request field that was wrong.</summary>
    public string Field { get; }
}
