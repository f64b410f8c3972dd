using System.Text.Json;
using McDit.Torch.IO;
using McDit.Torch.Runtime;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace McDit.Torch.Tests.IO;

/// <summary>Reads the DiT golden fixture written by PyTorch's safetensors (see /work/shared/fixtures/README.md).</summary>
public class SafeTensorsGoldenFixtureTests
{
    static readonly string FixturePath = Path.Combine(AppContext.BaseDirectory, "Fixtures", "dit_tiny_golden.safetensors");

    public SafeTensorsGoldenFixtureTests() => TorchBackend.EnsureInitialized();

    [Fact]
    public void TheDitFixtureHasTheExpectedEntries()
    {
        var header = SafeTensors.ReadHeader(FixturePath);
        Assert.True(header.TryGetTensor("x_embedder.proj.weight", out var w));
        Assert.Equal("F32", w!.DType);
        Assert.Equal(new long[] { 64, 4, 2, 2 }, w.Shape);
        Assert.True(header.TryGetTensor("input.y", out var y));
        Assert.Equal("I64", y!.DType);
        Assert.Equal(new long[] { 3 }, y.Shape);
        Assert.True(header.Metadata.ContainsKey("config"));
        using var config = JsonDocument.Parse(header.Metadata["config"]);
        Assert.Equal(64, config.RootElement.GetProperty("hidden_size").GetInt32());
    }

    [Fact]
    public void TheDitFixtureValuesMatchAnIndependentPythonReading()
    {
        using var content = SafeTensors.Load(FixturePath);
        var output = content.Tensors["output"];
        Assert.Equal(ScalarType.Float32, output.dtype);
        Assert.Equal(new long[] { 3, 8, 8, 8 }, output.shape);

        // Reference values computed with Python's standard library only (numpy is not installed here):
        //   b = open('dit_tiny_golden.safetensors','rb').read(); n = struct.unpack('<Q', b[:8])[0]
        //   h = json.loads(b[8:8+n]); s, e = h['output']['data_offsets']
        //   o = struct.unpack('<1536f', b[8+n+s:8+n+e]); math.fsum(o), math.fsum(map(abs, o)), o[0], o[-1]
        // and likewise struct '<3q' for input.y and '<256f' for x_embedder.proj.weight.
        using var o64 = output.to(ScalarType.Float64);
        Assert.Equal(126.23310951690655, o64.sum().item<double>(), 1e-9);
        Assert.Equal(537.3435017276788, o64.abs().sum().item<double>(), 1e-9);
        var flat = output.reshape(-1);
        Assert.Equal(-0.08443670719861984f, flat[0].item<float>());
        Assert.Equal(0.7421512007713318f, flat[-1].item<float>());
        Assert.Equal(new long[] { 0, 3, 10 }, content.Tensors["input.y"].data<long>().ToArray());
        using var w64 = content.Tensors["x_embedder.proj.weight"].to(ScalarType.Float64);
        Assert.Equal(-1.8310325910535994, w64.sum().item<double>(), 1e-9);
        Assert.Equal(-0.008271525613963604f, content.Tensors["x_embedder.proj.weight"].reshape(-1)[0].item<float>());
    }

    [Fact]
    public void TheDitFixtureSurvivesARoundTrip()
    {
        using var content = SafeTensors.Load(FixturePath);
        var bytes = SafeTensors.ToBytes(content.Tensors, content.Metadata);
        using var again = SafeTensors.Load(bytes, "fixture copy");
        Assert.Equal(content.Tensors.Keys, again.Tensors.Keys);
        foreach (var (name, t) in content.Tensors)
        {
            Assert.Equal(t.shape, again.Tensors[name].shape);
            Assert.True(t.eq(again.Tensors[name]).all().item<bool>(), name);
        }
        Assert.Equal(content.Metadata.OrderBy(kv => kv.Key), again.Metadata.OrderBy(kv => kv.Key));
    }
}
