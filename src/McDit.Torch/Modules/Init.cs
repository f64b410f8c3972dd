using McDit.Torch.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace McDit.Torch.Modules;

/// <summary>
/// Weight initialisations of DiT. Every parameter of a McDit module is drawn here, from the generator of the
/// innermost <see cref="Seeded"/> scope on this thread (or torch's global generator outside one), so a seeded model
/// is the same whatever other threads do with the global generator meanwhile.
/// </summary>
public static class Init
{
    [ThreadStatic] private static Generator? _generator;

    /// <summary>Draws the initial weights of the modules built on this thread inside the scope from a generator seeded with <paramref name="seed"/>.</summary>
    public static IDisposable Seeded(long seed)
    {
        TorchBackend.EnsureInitialized();
        var previous = _generator;
        _generator = new Generator(unchecked((ulong)seed), torch.CPU);
        return new Scope(previous);
    }

    private sealed class Scope(Generator? previous) : IDisposable
    {
        public void Dispose()
        {
            _generator?.Dispose();
            _generator = previous;
        }
    }

    /// <summary>Fills <paramref name="t"/> (on any device) with values drawn on the CPU from the scope's generator.</summary>
    private static void Fill(Tensor t, Func<Generator?, Tensor> draw)
    {
        using var _ = no_grad();
        using var values = draw(_generator);
        t.copy_(values);
    }
    /// <summary>Xavier-uniform with fans of the weight viewed as [out, rest] (DiT's patch-embedding init).</summary>
    internal static void XavierUniformAsLinear(Tensor weight)
    {
        long fanOut = weight.shape[0], fanIn = weight.numel() / fanOut;
        double bound = Math.Sqrt(6.0 / (fanIn + fanOut));
        // Scalars held (and freed) here, not implicitly converted: TorchSharp's implicit Scalar has only a finalizer,
        // which can free it on the finalizer thread while the native call still reads it ("Unknown scalar type" under
        // load, seen in CI while building a model from a checkpoint).
        using var width = (2 * bound).ToScalar();
        using var shift = bound.ToScalar();
        Fill(weight, g => torch.rand(weight.shape, dtype: ScalarType.Float32, generator: g).mul_(width).sub_(shift));
    }

    /// <summary>Xavier-uniform weight and zero bias, as DiT's _basic_init does for every Linear.</summary>
    internal static void Linear(nn.Module<Tensor, Tensor> linear)
    {
        var l = (TorchSharp.Modules.Linear)linear;
        XavierUniformAsLinear(l.weight!);
        using var _ = no_grad();
        l.bias?.zero_();
    }

    /// <summary>Zeroes weight and bias (adaLN-Zero).</summary>
    internal static void Zero(TorchSharp.Modules.Linear linear)
    {
        using var _ = no_grad();
        linear.weight!.zero_();
        linear.bias?.zero_();
    }

    /// <summary>Zeroes weight and bias of a convolution (a residual branch that starts as the identity).</summary>
    internal static void Zero(TorchSharp.Modules.Conv2d conv)
    {
        using var _ = no_grad();
        conv.weight!.zero_();
        conv.bias?.zero_();
    }

    /// <summary>N(0, std²) in place.</summary>
    internal static void Normal(Tensor t, double std)
    {
        using var scale = std.ToScalar(); // held, not implicit: see XavierUniformAsLinear
        Fill(t, g => torch.randn(t.shape, dtype: ScalarType.Float32, generator: g).mul_(scale));
    }
}
