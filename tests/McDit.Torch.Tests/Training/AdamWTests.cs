using McDit.Torch.IO;
using McDit.Torch.Runtime;
using McDit.Torch.Training;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace McDit.Torch.Tests.Training;

public class AdamWTests
{
    [Fact]
    public void AParameterWithoutAGradientDoesNotMoveAndKeepsItsMoments()
    {
        // PyTorch's set_to_none: after ZeroGrad a parameter the backward pass does not reach has no gradient at all.
        using var used = torch.ones(3).requires_grad_(true);
        using var unused = torch.ones(3).requires_grad_(true);
        using var optimizer = new AdamW(new[] { ("used", used), ("unused", unused) }, learningRate: 0.1);
        (used * unused).sum().backward(); // step 1 reaches both
        optimizer.Step();
        var moments = optimizer.StateTensors();
        var (m, v, weight) = (moments["exp_avg.unused"].clone(), moments["exp_avg_sq.unused"].clone(), unused.detach().clone());
        for (int i = 0; i < 3; i++)
        {
            optimizer.ZeroGrad();
            Assert.Null(unused.grad);
            (used * 2).sum().backward(); // later steps reach only `used`
            optimizer.Step();
        }
        Assert.True(TestTensors.Same(weight, unused.detach()), "the unused parameter moved by momentum");
        Assert.True(TestTensors.Same(m, moments["exp_avg.unused"]), "its first moment changed");
        Assert.True(TestTensors.Same(v, moments["exp_avg_sq.unused"]), "its second moment changed");
        Assert.NotNull(used.grad);
    }

    // Sizes around the fused update's vector width and chunk: a tail after the last full vector, one chunk plus a tail,
    // a scalar-only tensor, and a 2-D weight.
    static readonly long[][] Shapes = { new[] { 3L }, new[] { 17L }, new[] { (long)CpuFusedUpdates.ChunkElements + 13 }, new[] { 37L, 129L } };

    static (string, Tensor)[] Parameters(long seed)
    {
        using var g = new Generator((ulong)seed, torch.CPU);
        return Shapes.Select((shape, i) => ($"p{i}", torch.randn(shape, generator: g).requires_grad_(true))).ToArray();
    }

    static void Backward((string Name, Tensor Param)[] parameters, int step) => Backward(parameters, step, new HashSet<int>());

    [Theory]
    [InlineData(0.0)]
    [InlineData(0.05)]
    public void TheFusedCpuUpdateAgreesWithLibtorchsElementWiseOps(double weightDecay)
    {
        var fusedParameters = Parameters(7);
        var opsParameters = Parameters(7);
        using var fused = new AdamW(fusedParameters, learningRate: 1e-2, weightDecay: weightDecay);
        using var ops = new AdamW(opsParameters, learningRate: 1e-2, weightDecay: weightDecay) { FusedCpuUpdates = false };
        for (int step = 0; step < 5; step++)
        {
            foreach (var (optimizer, parameters) in new[] { (fused, fusedParameters), (ops, opsParameters) })
            {
                optimizer.ZeroGrad();
                Backward(parameters, step);
                optimizer.Step();
            }
        }
        var (a, b) = (fused.StateTensors(), ops.StateTensors());
        foreach (var key in b.Keys)
            Assert.True(TestTensors.RelativeError(a[key], b[key]) < 1e-6, $"{key}: relative difference {TestTensors.RelativeError(a[key], b[key]):E2}");
        for (int i = 0; i < Shapes.Length; i++)
        {
            double error = TestTensors.RelativeError(fusedParameters[i].Item2.detach(), opsParameters[i].Item2.detach());
            Assert.True(error < 1e-6, $"p{i}: relative difference {error:E2} between the fused and the element-wise update");
            Assert.False(TestTensors.Same(fusedParameters[i].Item2.detach(), Parameters(7)[i].Item2.detach()), $"p{i} did not move");
        }
        foreach (var (_, p) in fusedParameters.Concat(opsParameters)) p.Dispose();
    }

    [Fact]
    public void TheFusedCpuUpdateDoesNotDependOnTheThreadCount()
    {
        int threads = torch.get_num_threads();
        var results = new List<Tensor[]>();
        try
        {
            foreach (int count in new[] { 1, 2 })
            {
                torch.set_num_threads(count);
                var parameters = Parameters(3);
                using var optimizer = new AdamW(parameters, learningRate: 1e-2);
                for (int step = 0; step < 3; step++)
                {
                    optimizer.ZeroGrad();
                    Backward(parameters, step);
                    optimizer.Step();
                }
                results.Add(parameters.Select(p => p.Item2.detach().clone()).ToArray());
                foreach (var (_, p) in parameters) p.Dispose();
            }
        }
        finally { torch.set_num_threads(threads); }
        for (int i = 0; i < Shapes.Length; i++) Assert.True(TestTensors.Same(results[0][i], results[1][i]), $"p{i} differs between 1 and 2 threads");
    }

    static (string, Tensor)[] Parameters(long seed, ScalarType dtype)
    {
        var parameters = Parameters(seed);
        if (dtype == ScalarType.Float32) return parameters;
        var converted = parameters.Select(p => (p.Item1, p.Item2.detach().to_type(dtype).requires_grad_(true))).ToArray();
        foreach (var (_, p) in parameters) p.Dispose();
        return converted;
    }

    // Backward through every parameter except those in skip (they get no gradient at all).
    static void Backward((string Name, Tensor Param)[] parameters, int step, ISet<int> skip)
    {
        using var scope = NewDisposeScope();
        using var g = new Generator((ulong)(100 + step), torch.CPU);
        var loss = parameters.Select((p, i) => (Term: (p.Param * torch.randn(p.Param.shape, generator: g)).square().sum() * 0.5, Index: i))
            .Where(t => !skip.Contains(t.Index)).Select(t => t.Term).Aggregate((a, b) => a + b);
        loss.backward();
    }

    [Theory]
    [InlineData(ScalarType.Float32)]
    [InlineData(ScalarType.BFloat16)]
    public void TheFlatLayoutAgreesWithThePerParameterUpdate(ScalarType dtype)
    {
        // The GPU's layout, run on the CPU: the parameters become views into one buffer, and a step updates each run of
        // parameters with gradients at once. p1 gets no gradient in steps 2 and 3 (two runs), and p0's storage is
        // replaced before step 4 (it must be linked back, keeping its values).
        var flatParameters = Parameters(11, dtype);
        var separateParameters = Parameters(11, dtype);
        using var flat = new AdamW(flatParameters, 1e-2, 0.9, 0.999, 1e-8, 0.01, AdamWLayout.Flat);
        using var separate = new AdamW(separateParameters, 1e-2, 0.9, 0.999, 1e-8, 0.01, AdamWLayout.PerParameter) { FusedCpuUpdates = false };
        Assert.Equal(AdamWLayout.Flat, flat.Layout);
        long elementSize = flatParameters[0].Item2.ElementSize;
        for (int i = 1; i < Shapes.Length; i++)
            Assert.Equal(flatParameters[i - 1].Item2.numel() * elementSize,
                TensorMemory.Pointer(flatParameters[i].Item2, "test").ToInt64() - TensorMemory.Pointer(flatParameters[i - 1].Item2, "test").ToInt64());
        for (int step = 0; step < 6; step++)
        {
            var skip = step is 2 or 3 ? new HashSet<int> { 1 } : new HashSet<int>();
            foreach (var (optimizer, parameters) in new[] { (flat, flatParameters), (separate, separateParameters) })
            {
                if (step == 4)
                    using (no_grad()) parameters[0].Item2.set_(parameters[0].Item2.detach().clone());
                optimizer.ZeroGrad();
                Backward(parameters, step, skip);
                optimizer.Step();
            }
        }
        var (a, b) = (flat.StateTensors(), separate.StateTensors());
        Assert.Equal(b.Keys.OrderBy(k => k), a.Keys.OrderBy(k => k));
        foreach (var key in b.Keys)
            Assert.True(TestTensors.RelativeError(a[key], b[key]) < 1e-6, $"{key}: relative difference {TestTensors.RelativeError(a[key], b[key]):E2}");
        for (int i = 0; i < Shapes.Length; i++)
        {
            double error = TestTensors.RelativeError(flatParameters[i].Item2.detach(), separateParameters[i].Item2.detach());
            Assert.True(error < (dtype == ScalarType.Float32 ? 1e-6 : 1e-2), $"p{i}: relative difference {error:E2} between the flat and the per-parameter layout");
        }
        Assert.Equal(TensorMemory.Pointer(flatParameters[1].Item2, "test").ToInt64() - flatParameters[0].Item2.numel() * elementSize,
            TensorMemory.Pointer(flatParameters[0].Item2, "test").ToInt64());
        foreach (var (_, p) in flatParameters.Concat(separateParameters)) p.Dispose();
    }

    [Fact]
    public void TheFlatLayoutsStateRoundTripsThroughSafetensors()
    {
        var parameters = Parameters(5);
        using var optimizer = new AdamW(parameters, 1e-2, 0.9, 0.999, 1e-8, 0, AdamWLayout.Flat);
        for (int step = 0; step < 2; step++)
        {
            optimizer.ZeroGrad();
            Backward(parameters, step);
            optimizer.Step();
        }
        var bytes = SafeTensors.ToBytes(optimizer.StateTensors());
        var copies = Parameters(5);
        using var restored = new AdamW(copies, 1e-2, 0.9, 0.999, 1e-8, 0, AdamWLayout.Flat);
        using (var content = SafeTensors.Load(bytes, "state"))
            restored.LoadState(content.Tensors, optimizer.StepCount, "state");
        foreach (var (key, value) in optimizer.StateTensors())
            Assert.True(TestTensors.Same(value, restored.StateTensors()[key]), $"{key} did not round-trip");
        foreach (var (_, p) in parameters.Concat(copies)) p.Dispose();
    }
}
