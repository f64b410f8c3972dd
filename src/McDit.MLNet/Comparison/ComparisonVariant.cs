using System.Globalization;
using McDit.Torch.Training;

namespace McDit.MLNet.Comparison;

/// <summary>Which of MC-DiT's two EMA branches a variant trains with (the paper's noisy × clean branch ablation).</summary>
public enum BranchSet
{
    /// <summary>Both branches (MC-DiT's default).</summary>
    Both,
    /// <summary>Only the noisy branch.</summary>
    Noisy,
    /// <summary>Only the clean branch.</summary>
    Clean,
    /// <summary>Neither branch (clean inputs without the guard against the shortcut).</summary>
    None,
}

/// <summary>
/// One arm of a <see cref="MethodComparison"/>: a display name and the complete objective it trains with. Everything
/// else (data, backbone, batch, learning rate, schedule, seeds) is shared by every arm of a comparison.
/// </summary>
/// <param name="Name">Display name, e.g. "MC-DiT" or "MC-DiT r=0.25" (ASCII; used in tables, legends and file names).</param>
/// <param name="Method">The objective's switches.</param>
public sealed record ComparisonVariant(string Name, MethodOptions Method)
{
    /// <summary>A file-name-safe form of <see cref="Name"/> (letters, digits and '-').</summary>
    public string Slug => string.Concat(Name.Select(c => char.IsAsciiLetterOrDigit(c) ? char.ToLowerInvariant(c) : c == '.' ? 'p' : '-')).Trim('-');

    /// <summary>The method's display name: DiT, MaskDiT or MC-DiT.</summary>
    public static string DisplayName(TrainingMethod method) => method switch
    {
        TrainingMethod.DiT => "DiT",
        TrainingMethod.MaskDiT => "MaskDiT",
        TrainingMethod.McDiT => "MC-DiT",
        _ => method.ToString(),
    };

    /// <summary>
    /// The arms of a comparison: every method in <paramref name="methods"/> with its defaults (method.md), and the
    /// paper's ablations as the cross product of the lists given. Mask ratios apply to the masked methods (MaskDiT and
    /// MC-DiT; DiT has none); branches, reconstruction targets, branch scopes and clean-branch fractions
    /// (<see cref="MethodOptions.CleanBranchFraction"/>) apply to MC-DiT. A null or empty list
    /// keeps that switch at the method's default, and a value equal to the default adds nothing to the name, so
    /// <c>Build([DiT, MaskDiT, McDiT])</c> gives the three plain arms "DiT", "MaskDiT" and "MC-DiT".
    /// </summary>
    public static IReadOnlyList<ComparisonVariant> Build(IReadOnlyList<TrainingMethod> methods, IReadOnlyList<double>? maskRatios = null,
        IReadOnlyList<BranchSet>? branches = null, IReadOnlyList<ReconstructionTarget>? targets = null, IReadOnlyList<BranchScope>? scopes = null,
        IReadOnlyList<double>? cleanFractions = null)
    {
        if (methods.Count == 0) throw new ArgumentException("A comparison needs at least one method: DiT, MaskDiT or McDiT.", nameof(methods));
        var variants = new List<ComparisonVariant>();
        foreach (var method in methods.Distinct())
        {
            var defaults = MethodOptions.For(method);
            var ratios = method == TrainingMethod.DiT || maskRatios is not { Count: > 0 } ? new[] { defaults.MaskRatio } : maskRatios.Distinct().ToArray();
            bool mc = method == TrainingMethod.McDiT;
            var branchSets = mc && branches is { Count: > 0 } ? branches.Distinct().ToArray() : new[] { BranchSet.Both };
            var targetSet = mc && targets is { Count: > 0 } ? targets.Distinct().ToArray() : new[] { defaults.ReconstructionTarget };
            var scopeSet = mc && scopes is { Count: > 0 } ? scopes.Distinct().ToArray() : new[] { defaults.BranchScope };
            var fractionSet = mc && cleanFractions is { Count: > 0 } ? cleanFractions.Distinct().ToArray() : new[] { defaults.CleanBranchFraction };
            foreach (var r in ratios)
                foreach (var b in branchSets)
                    foreach (var t in targetSet)
                        foreach (var s in scopeSet)
                        foreach (var f in fractionSet)
                        {
                            var options = defaults with { MaskRatio = r };
                            var name = new List<string> { DisplayName(method) };
                            if (r != defaults.MaskRatio) name.Add("r=" + r.ToString("0.###", CultureInfo.InvariantCulture));
                            if (mc)
                            {
                                options = options with
                                {
                                    NoisyBranch = b is BranchSet.Both or BranchSet.Noisy, CleanBranch = b is BranchSet.Both or BranchSet.Clean,
                                    ReconstructionTarget = t, BranchScope = s, CleanBranchFraction = f,
                                };
                                if (b != BranchSet.Both) name.Add(b switch { BranchSet.Noisy => "noisy-branch-only", BranchSet.Clean => "clean-branch-only", _ => "no-branches" });
                                if (t != defaults.ReconstructionTarget) name.Add("target=" + t);
                                if (s != defaults.BranchScope) name.Add("scope=" + s);
                                if (f != defaults.CleanBranchFraction) name.Add("clean-fraction=" + f.ToString("0.###", CultureInfo.InvariantCulture));
                            }
                            variants.Add(new ComparisonVariant(string.Join(' ', name), options.Validated()));
                        }
        }
        return variants;
    }
}
