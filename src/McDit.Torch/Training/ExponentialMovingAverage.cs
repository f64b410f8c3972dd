using TorchSharp;
using static TorchSharp.torch;

namespace McDit.Torch.Training;

/// <summary>
/// Exponential moving averages of weights, matched by parameter name: θ_ema ← m·θ_ema + (1 − m)·θ.
/// Used for the sampling EMA of the whole model and for MC-DiT's branch copies of the decoder.
/// </summary>
public static class ExponentialMovingAverage
{
    /// <summary>
    /// Updates every parameter of <paramref name="target"/> from the parameter of the same name in
    /// <paramref name="source"/>. Parameters that do not require gradients in the source (fixed position tables)
    /// are copied as they are.
    /// </summary>
    public static void Update(nn.Module target, IReadOnlyDictionary<string, Tensor> source, double decay) => Update(target, source, decay, fusedCpu: true);

    /// <summary>
    /// <see cref="Update(nn.Module, IReadOnlyDictionary{string, Tensor}, double)"/>; with <paramref name="fusedCpu"/> float32 CPU
    /// parameters take one pass over memory (<see cref="CpuFusedUpdates.Ema"/>), otherwise libtorch's <c>mul_</c> and <c>add_</c>.
    /// </summary>
    internal static void Update(nn.Module target, IReadOnlyDictionary<string, Tensor> source, double decay, bool fusedCpu)
    {
        using var _ = no_grad();
        var fused = new List<(Tensor Target, Tensor Source)>();
        var separate = new List<(Tensor Target, Tensor Source)>();
        foreach (var (name, p) in target.named_parameters())
        {
            if (!source.TryGetValue(name, out var s))
                throw new InvalidOperationException($"EMA: the source has no parameter '{name}'.");
            if (decay == 0) p.copy_(s);
            else if (fusedCpu && CpuFusedUpdates.Applies(p, s)) fused.Add((p, s));
            else separate.Add((p, s));
        }
        if (fused.Count > 0) CpuFusedUpdates.Ema(fused, decay, torch.get_num_threads());
        if (separate.Count == 0) return;
        using Scalar m = decay.ToScalar(), oneMinusM = (1 - decay).ToScalar(); // two Scalars per update, not two per parameter
        foreach (var (p, s) in separate)
        {
            if (s.dtype == p.dtype) p.mul_(m).add_(s, alpha: oneMinusM);
            else
            {
                using var converted = s.to_type(p.dtype);
                p.mul_(m).add_(converted, alpha: oneMinusM);
            }
        }
    }

    /// <summary>Copies parameters by name (EMA initialisation).</summary>
    public static void CopyInto(nn.Module target, IReadOnlyDictionary<string, Tensor> source) => Update(target, source, 0);

    /// <summary>Named parameters of a module as a dictionary.</summary>
    public static Dictionary<string, Tensor> NamedParameters(nn.Module module) =>
        module.named_parameters().ToDictionary(p => p.name, p => (Tensor)p.parameter);

    /// <summary>Freezes every parameter of a module (no gradients; EMA copies are not trained).</summary>
    public static T Frozen<T>(T module) where T : nn.Module
    {
        foreach (var p in module.parameters()) p.requires_grad = false;
        return module;
    }
}
