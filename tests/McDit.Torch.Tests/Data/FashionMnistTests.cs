using McDit.Torch.Data;
using McDit.Torch.Runtime;
using TorchSharp;
using Xunit;

namespace McDit.Torch.Tests.Data;

public class FashionMnistTests
{
    [Theory]
    [InlineData(FashionMnistSplit.Train, 600)]
    [InlineData(FashionMnistSplit.HeldOut, 100)]
    public void EmbeddedSubsetIsClassBalanced(FashionMnistSplit split, int perClass)
    {
        var set = FashionMnist.LoadEmbedded(split);
        Assert.Equal(10 * perClass, set.Count);
        Assert.Equal((1, 28, 28), (set.Channels, set.Height, set.Width));
        Assert.Equal(Enumerable.Repeat(perClass, 10), set.CountPerClass());
        Assert.Equal(FashionMnist.ClassNames, set.ClassNames);
        Assert.Equal(set.Count * 28 * 28, set.Pixels.Length);
        // Real images: both black and near-white pixels occur, and images differ.
        var span = set.Pixels.Span;
        Assert.Contains((byte)0, span.ToArray());
        Assert.True(span.ToArray().Max() > 200);
        Assert.False(set.GetImage(0).SequenceEqual(set.GetImage(1)));
    }

    [Fact]
    public void EmbeddedTensorValuesAreInUnitRange()
    {
        TorchBackend.EnsureInitialized();
        var set = FashionMnist.LoadEmbedded(FashionMnistSplit.HeldOut);
        using var x = set.ToTensor();
        Assert.Equal(new long[] { 1000, 1, 28, 28 }, x.shape);
        Assert.Equal(torch.float32, x.dtype);
        Assert.Equal(-1f, x.min().item<float>());
        Assert.True(x.max().item<float>() <= 1f);
        Assert.True(x.max().item<float>() > 0.5f);
        using var labels = set.LabelsToTensor();
        Assert.Equal(torch.int64, labels.dtype);
        Assert.Equal(Enumerable.Repeat(100L, 10), labels.bincount(null).data<long>().ToArray());
    }

    [Fact]
    public void ClassNamesAreTheTenFashionMnistClasses()
    {
        Assert.Equal(new[] { "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot" },
            FashionMnist.ClassNames);
    }

    [Fact]
    public void LoadsAFolderWithGzipOrPlainNames()
    {
        var dir = Path.Combine(Path.GetTempPath(), "mcdit-fm-" + Guid.NewGuid().ToString("N"));
        try
        {
            var pixels = Enumerable.Range(0, 4 * 28 * 28).Select(i => (byte)i).ToArray();
            IdxWriter.WriteImages(Path.Combine(dir, "t10k-images-idx3-ubyte.gz"), pixels, 4, 28, 28, gzip: true);
            IdxWriter.WriteLabels(Path.Combine(dir, "t10k-labels-idx1-ubyte"), new byte[] { 9, 0, 5, 3 }, gzip: false);
            var set = FashionMnist.Load(dir, FashionMnistSplit.HeldOut);
            Assert.Equal(4, set.Count);
            Assert.Equal(new[] { 9, 0, 5, 3 }, set.Labels);
            Assert.Equal(pixels, set.Pixels.ToArray());

            var e = Assert.Throws<FileNotFoundException>(() => FashionMnist.Load(dir, FashionMnistSplit.Train));
            Assert.Contains(dir, e.Message);
            Assert.Contains("train-images-idx3-ubyte.gz", e.Message);
            Assert.Throws<DirectoryNotFoundException>(() => FashionMnist.Load(Path.Combine(dir, "missing")));
        }
        finally
        {
            if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void LoadsTheInstalledFullDataSetWhenPresent()
    {
        const string folder = "/usr/share/datasets/fashion-mnist";
        if (!File.Exists(Path.Combine(folder, "t10k-images-idx3-ubyte.gz"))) return; // package dataset-fashion-mnist not installed
        var full = FashionMnist.Load(folder, FashionMnistSplit.HeldOut);
        Assert.Equal(10_000, full.Count);
        Assert.Equal(Enumerable.Repeat(1000, 10), full.CountPerClass());
        // The embedded held-out subset is the first 100 of each class in file order.
        var sub = FashionMnist.LoadEmbedded(FashionMnistSplit.HeldOut);
        var seen = new int[10];
        int j = 0;
        for (int i = 0; i < full.Count && j < sub.Count; i++)
        {
            int c = full.Labels[i];
            if (seen[c]++ >= 100) continue;
            Assert.Equal(c, sub.Labels[j]);
            Assert.True(full.GetImage(i).SequenceEqual(sub.GetImage(j)), $"image {j} differs from source {i}");
            j++;
        }
        Assert.Equal(sub.Count, j);
    }
}
