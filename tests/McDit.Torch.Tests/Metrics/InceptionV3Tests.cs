using McDit.Torch.IO;
using McDit.Torch.Metrics;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace McDit.Torch.Tests.Metrics;

public class InceptionV3Tests
{
    [Fact]
    public void RandomWeightsGiveTheDocumentedShapes()
    {
        torch.manual_seed(1);
        using var net = new InceptionV3();
        using var scope = NewDisposeScope();
        var grey = rand(2, 1, 28, 28) * 2 - 1; // grey, small: resized to 299 and repeated to 3 channels
        using var output = net.Features(grey);
        Assert.Equal(new long[] { 2, 2048 }, output.Pool.shape);
        Assert.Equal(new long[] { 2, 7 * 17 * 17 }, output.Spatial.shape);
        Assert.Equal(new long[] { 2, 1008 }, output.Logits.shape);
        Assert.True(output.Pool.isfinite().all().item<bool>());

        using var extractor = new InceptionFeatureExtractor(net);
        using var features = extractor.Extract(grey);
        Assert.Equal(float64, features.dtype);
        Assert.Equal(new long[] { 2, 2048 }, features.shape);
        Assert.True((features - output.Pool.to(float64)).abs().max().item<double>() < 1e-5);
    }

    [Fact]
    public void TorchvisionVariantHasAThousandClassesAndWeightsCopyByName()
    {
        torch.manual_seed(2);
        using var a = new InceptionV3(numClasses: 1000);
        using var b = new InceptionV3(numClasses: 1000);
        Assert.Equal(1000, a.NumClasses);
        var state = a.state_dict();
        Assert.Contains("Conv2d_1a_3x3.conv.weight", state.Keys);
        Assert.Contains("Mixed_5b.branch_pool.bn.running_var", state.Keys);
        Assert.Contains("Mixed_7c.branch3x3dbl_3b.conv.weight", state.Keys);
        Assert.Equal(new long[] { 1000, 2048 }, state["fc.weight"].shape);
        b.LoadWeights(state.Where(kv => !kv.Key.EndsWith("num_batches_tracked")).ToDictionary(kv => kv.Key, kv => kv.Value), "in-memory");
        foreach (var (name, t) in b.state_dict())
            if (!name.EndsWith("num_batches_tracked")) Assert.True(TestTensors.Same(t, state[name]), name);
    }

    [Fact]
    public void AWeightsFileWithAMissingTensorIsRefusedByName()
    {
        using var net = new InceptionV3();
        using var scope = NewDisposeScope();
        const string dropped = "Mixed_6d.branch1x1.conv.weight";
        // One-element stand-ins: the names are checked before any shape.
        var tensors = net.state_dict().Keys.Where(k => k != dropped).ToDictionary(k => k, _ => zeros(1));
        var path = Path.Combine(Path.GetTempPath(), $"mcdit-inception-{Guid.NewGuid():N}.safetensors");
        try
        {
            SafeTensors.Save(path, tensors);
            var e = Assert.Throws<InvalidDataException>(() => InceptionV3.FromFile(path));
            Assert.Contains(dropped, e.Message);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void AMissingWeightsFileSaysWhatIsNeededAndWhereItComesFrom()
    {
        var path = Path.Combine(Path.GetTempPath(), "no-such-dir", "inception.safetensors");
        var e = Assert.Throws<FileNotFoundException>(() => InceptionV3.FromFile(path));
        Assert.Contains(path, e.Message);
        Assert.Contains(InceptionV3.WeightsFileName, e.Message);
        Assert.Contains("pytorch-fid", e.Message);
        Assert.Contains("docs/evaluation.md", e.Message);
        var pth = Path.Combine(Path.GetTempPath(), $"mcdit-{Guid.NewGuid():N}.pth");
        File.WriteAllBytes(pth, new byte[] { 0x80, 0x02 });
        try
        {
            var e2 = Assert.Throws<InvalidDataException>(() => InceptionV3.FromFile(pth));
            Assert.Contains("safetensors", e2.Message);
        }
        finally
        {
            File.Delete(pth);
        }
    }
}
