using McDit.Torch.IO;
using TorchSharp;
using static TorchSharp.torch;

namespace McDit.Torch.Tests;

/// <summary>Helpers shared by the tests.</summary>
internal static class TestTensors
{
    /// <summary>Loads a golden fixture copied from the public reference implementations (see Fixtures/README.md).</summary>
    public static SafeTensorsContent Fixture(string name) =>
        SafeTensors.Load(Path.Combine(AppContext.BaseDirectory, "Fixtures", name));

    static readonly string[] DataPrefixes = { "input.", "output", "cfg.", "train.", "eval.", "sample.", "mask." };

    /// <summary>The model weights of a fixture, without its recorded inputs and outputs.</summary>
    public static Dictionary<string, Tensor> WeightsOnly(IReadOnlyDictionary<string, Tensor> fixture) =>
        fixture.Where(kv => !DataPrefixes.Any(p => kv.Key.StartsWith(p, StringComparison.Ordinal)))
            .ToDictionary(kv => kv.Key, kv => kv.Value);

    /// <summary>True when both tensors have the same shape and equal values everywhere.</summary>
    public static bool Same(Tensor a, Tensor b)
    {
        if (!a.shape.SequenceEqual(b.shape)) return false;
        using var eq = a.eq(b);
        using var all = eq.all();
        return all.item<bool>();
    }

    /// <summary>‖a − b‖ / ‖b‖.</summary>
    public static double RelativeError(Tensor actual, Tensor expected)
    {
        using var scope = NewDisposeScope();
        var a = actual.to_type(ScalarType.Float64).cpu();
        var b = expected.to_type(ScalarType.Float64).cpu();
        return (a - b).norm().item<double>() / b.norm().item<double>();
    }
}
