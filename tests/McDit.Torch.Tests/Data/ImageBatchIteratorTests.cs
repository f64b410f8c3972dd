using McDit.Torch.Data;
using McDit.Torch.Runtime;
using TorchSharp;
using Xunit;

namespace McDit.Torch.Tests.Data;

public class ImageBatchIteratorTests
{
    // Every image's first pixel is its own index, so batches reveal which images they hold.
    static LabeledImageSet Indexed(int count)
    {
        var pixels = new byte[count * 28 * 28];
        for (int i = 0; i < count; i++) pixels[i * 28 * 28] = (byte)i;
        return new LabeledImageSet(pixels, Enumerable.Range(0, count).Select(i => i % 10).ToArray(), 1, 28, 28,
            FashionMnist.ClassNames);
    }

    static List<int> Epoch(ImageBatchIterator it, List<long[]>? shapes = null)
    {
        var order = new List<int>();
        foreach (var (images, labels) in it.NextEpoch())
        {
            using (images)
            using (labels)
            {
                shapes?.Add(images.shape);
                Assert.Equal(torch.int64, labels.dtype);
                Assert.Equal(images.shape[0], labels.shape[0]);
                using var first = images[.., 0, it.Padding, it.Padding];
                var ids = first.data<float>().ToArray().Select(v => (int)MathF.Round((v + 1f) * 127.5f)).ToArray();
                var ls = labels.data<long>().ToArray();
                for (int k = 0; k < ids.Length; k++) Assert.Equal(ids[k] % 10, ls[k]);
                order.AddRange(ids);
            }
        }
        return order;
    }

    [Fact]
    public void CoversEveryItemOncePerEpochInThirtyTwoPixelBatches()
    {
        TorchBackend.EnsureInitialized();
        var set = Indexed(50);
        using var it = new ImageBatchIterator(set, 16, seed: 7, padding: FashionMnist.PaddingTo32);
        Assert.Equal(4, it.BatchesPerEpoch);
        var shapes = new List<long[]>();
        var order = Epoch(it, shapes);
        Assert.Equal(Enumerable.Range(0, 50), order.OrderBy(i => i));
        Assert.Equal(new long[] { 16, 1, 32, 32 }, shapes[0]);
        Assert.Equal(new long[] { 2, 1, 32, 32 }, shapes[^1]);
        Assert.Equal(1, it.EpochsStarted);
    }

    [Fact]
    public void SameSeedSameOrderAndEpochsDiffer()
    {
        TorchBackend.EnsureInitialized();
        var set = Indexed(60);
        using var a = new ImageBatchIterator(set, 8, seed: 123, padding: 2);
        using var b = new ImageBatchIterator(set, 8, seed: 123, padding: 2);
        using var c = new ImageBatchIterator(set, 8, seed: 124, padding: 2);
        var a1 = Epoch(a); var a2 = Epoch(a);
        var b1 = Epoch(b); var b2 = Epoch(b);
        var c1 = Epoch(c);
        Assert.Equal(a1, b1);
        Assert.Equal(a2, b2);
        Assert.NotEqual(a1, a2);
        Assert.NotEqual(a1, c1);
        Assert.NotEqual(Enumerable.Range(0, 60), a1);
        Assert.Equal(Enumerable.Range(0, 60), a2.OrderBy(i => i));
    }

    [Fact]
    public void SharedGeneratorAndDropLast()
    {
        TorchBackend.EnsureInitialized();
        var set = Indexed(20);
        using var g1 = new torch.Generator(5);
        using var g2 = new torch.Generator(5);
        using var it1 = new ImageBatchIterator(set, 6, g1, dropLast: true);
        using var it2 = new ImageBatchIterator(set, 6, g2, dropLast: true);
        Assert.Equal(3, it1.BatchesPerEpoch);
        var shapes = new List<long[]>();
        var o1 = Epoch(it1, shapes);
        Assert.Equal(18, o1.Count);
        Assert.Equal(18, o1.Distinct().Count());
        Assert.All(shapes, s => Assert.Equal(new long[] { 6, 1, 28, 28 }, s));
        Assert.Equal(it2.NextPermutation()[..18], o1);
    }

    [Fact]
    public void RejectsBadArguments()
    {
        var set = Indexed(4);
        Assert.Throws<ArgumentOutOfRangeException>(() => new ImageBatchIterator(set, 0, seed: 1));
        Assert.Throws<ArgumentException>(() => new ImageBatchIterator(set, 5, seed: 1, dropLast: true));
        Assert.Throws<ArgumentOutOfRangeException>(() => new ImageBatchIterator(set, 2, seed: 1, padding: -1));
    }
}
