using System.Numerics;
using McDit.Torch.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace McDit.Torch.Training;

/// <summary>
/// AdamW's update and the EMA update as one pass over memory per tensor, for float32 CPU tensors. Why: written as
/// libtorch ops, AdamW makes eight passes per parameter (plus a temporary for the denominator) and the EMA two, each a
/// separate call with its own thread-team start; on a CPU that is memory traffic, not arithmetic, and at the demo's
/// model it took 22–31 ms of a 222–324 ms step, 2–3 ms now (docs/benchmarks.md, "What each attempt bought"). The arithmetic is
/// libtorch's, in the same order (<c>mul_</c> then <c>add_(alpha)</c> as a fused multiply-add, <c>addcmul_</c>,
/// <c>sqrt</c>, <c>div_</c>, <c>add_</c>, <c>addcdiv_</c>), element by element; a tensor is split into fixed chunks,
/// so the result does not depend on the thread count.
/// </summary>
internal static class CpuFusedUpdates
{
    /// <summary>Elements per unit of work (256 KiB of float32): small tensors run whole, large ones spread over the threads.</summary>
    public const int ChunkElements = 1 << 16;

    /// <summary>The constants of one AdamW step, as the float32 values libtorch's kernels compute with.</summary>
    public readonly record struct AdamWConstants(
        float Decay, float Beta1, float OneMinusBeta1, float Beta2, float OneMinusBeta2, float Bias2Root, float Epsilon, float NegativeStep, bool DecayWeights);

    /// <summary>Whether <paramref name="tensors"/> can take the fused path: defined, on the CPU, float32, contiguous, one element count.</summary>
    public static bool Applies(params Tensor?[] tensors)
    {
        long count = -1;
        foreach (var t in tensors)
        {
            if (t is null || t.device_type != DeviceType.CPU || t.dtype != ScalarType.Float32 || !t.is_contiguous()) return false;
            if (count < 0) count = t.numel();
            else if (t.numel() != count) return false;
        }
        return true;
    }

    /// <summary>One AdamW update of every (master, grad, m, v) in <paramref name="slots"/>, in place; each must satisfy <see cref="Applies"/>.</summary>
    public static unsafe void AdamW(IReadOnlyList<(Tensor Master, Tensor Grad, Tensor M, Tensor V)> slots, AdamWConstants c, int threads)
    {
        var work = new List<(IntPtr P, IntPtr G, IntPtr M, IntPtr V, long Start, long Count)>();
        foreach (var (master, grad, m, v) in slots)
        {
            const string what = "AdamW (fused CPU update)";
            var (p, g, pm, pv) = (TensorMemory.Pointer(master, what), TensorMemory.Pointer(grad, what), TensorMemory.Pointer(m, what), TensorMemory.Pointer(v, what));
            foreach (var (start, count) in Chunks(master.numel())) work.Add((p, g, pm, pv, start, count));
        }
        Run(work.Count, threads, i =>
        {
            var w = work[i];
            AdamWChunk((float*)w.P + w.Start, (float*)w.G + w.Start, (float*)w.M + w.Start, (float*)w.V + w.Start, w.Count, c);
        });
    }

    /// <summary>θ_target ← m·θ_target + (1 − m)·θ_source for every pair in place (libtorch's <c>mul_(m).add_(s, 1 − m)</c>); each pair must satisfy <see cref="Applies"/>.</summary>
    public static unsafe void Ema(IReadOnlyList<(Tensor Target, Tensor Source)> pairs, double decay, int threads)
    {
        float m = (float)decay, oneMinusM = (float)(1 - decay);
        var work = new List<(IntPtr T, IntPtr S, long Start, long Count)>();
        foreach (var (target, source) in pairs)
        {
            var (t, s) = (TensorMemory.Pointer(target, "EMA (fused CPU update)"), TensorMemory.Pointer(source, "EMA (fused CPU update)"));
            foreach (var (start, count) in Chunks(target.numel())) work.Add((t, s, start, count));
        }
        Run(work.Count, threads, i =>
        {
            var w = work[i];
            EmaChunk((float*)w.T + w.Start, (float*)w.S + w.Start, w.Count, m, oneMinusM);
        });
    }

    static IEnumerable<(long Start, long Count)> Chunks(long count)
    {
        for (long start = 0; start < count; start += ChunkElements) yield return (start, Math.Min(ChunkElements, count - start));
    }

    static void Run(int items, int threads, Action<int> item)
    {
        if (threads <= 1 || items <= 1)
        {
            for (int i = 0; i < items; i++) item(i);
            return;
        }
        Parallel.For(0, items, new ParallelOptions { MaxDegreeOfParallelism = threads }, item);
    }

    static unsafe void AdamWChunk(float* p, float* g, float* m, float* v, long count, AdamWConstants c)
    {
        long i = 0;
        int width = Vector<float>.Count;
        if (Vector.IsHardwareAccelerated)
        {
            Vector<float> decay = new(c.Decay), b1 = new(c.Beta1), a1 = new(c.OneMinusBeta1), b2 = new(c.Beta2), a2 = new(c.OneMinusBeta2),
                root = new(c.Bias2Root), eps = new(c.Epsilon), step = new(c.NegativeStep);
            for (; i + width <= count; i += width)
            {
                var gi = Vector.Load(g + i);
                var pi = Vector.Load(p + i);
                if (c.DecayWeights) pi *= decay;
                var mi = Vector.FusedMultiplyAdd(gi, a1, Vector.Load(m + i) * b1);
                var vi = Vector.FusedMultiplyAdd(a2 * gi, gi, Vector.Load(v + i) * b2);
                var denominator = Vector.SquareRoot(vi) / root + eps;
                Vector.Store(mi, m + i);
                Vector.Store(vi, v + i);
                Vector.Store(pi + step * (mi / denominator), p + i);
            }
        }
        for (; i < count; i++)
        {
            float gi = g[i], pi = p[i];
            if (c.DecayWeights) pi *= c.Decay;
            float mi = MathF.FusedMultiplyAdd(gi, c.OneMinusBeta1, m[i] * c.Beta1);
            float vi = MathF.FusedMultiplyAdd(c.OneMinusBeta2 * gi, gi, v[i] * c.Beta2);
            float denominator = MathF.Sqrt(vi) / c.Bias2Root + c.Epsilon;
            m[i] = mi;
            v[i] = vi;
            p[i] = pi + c.NegativeStep * (mi / denominator);
        }
    }

    static unsafe void EmaChunk(float* target, float* source, long count, float m, float oneMinusM)
    {
        long i = 0;
        int width = Vector<float>.Count;
        if (Vector.IsHardwareAccelerated)
        {
            Vector<float> vm = new(m), va = new(oneMinusM);
            for (; i + width <= count; i += width)
                Vector.Store(Vector.FusedMultiplyAdd(Vector.Load(source + i), va, Vector.Load(target + i) * vm), target + i);
        }
        for (; i < count; i++) target[i] = MathF.FusedMultiplyAdd(source[i], oneMinusM, target[i] * m);
    }
}
