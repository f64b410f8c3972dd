using McDit.MLNet.Transforms;
using Microsoft.ML;
using Microsoft.ML.Data;
using Xunit;

namespace McDit.MLNet.Tests;

public class PatchMaskingTests
{
    const int C = 2, H = 8, W = 8, P = 2, L = H / P * (W / P); // 16 tokens

    public sealed class ImageRow
    {
        [VectorType(C, H, W)] public float[] Image { get; set; } = Array.Empty<float>();
    }

    public sealed class FlatRow
    {
        [VectorType(C * H * W)] public float[] Image { get; set; } = Array.Empty<float>();
    }

    sealed class SmallRow
    {
        [VectorType(64)] public float[] Image { get; set; } = Array.Empty<float>();
    }

    static IDataView Images(MLContext ml, int rows = 12)
    {
        var random = new Random(1234);
        var data = Enumerable.Range(0, rows).Select(_ => new ImageRow
        {
            Image = Enumerable.Range(0, C * H * W).Select(_ => (float)random.NextDouble() + 1f).ToArray(), // never 0
        }).ToList();
        return ml.Data.LoadFromEnumerable(data);
    }

    static float[][] Column(IDataView view, string name) =>
        view.GetColumn<float[]>(name).ToArray();

    static IDataView Masked(MLContext ml, IDataView data, int seed = 0, double ratio = 0.5, float fill = 0f) =>
        ml.McDit().Transforms.MaskPatches("Patches", "Image", C, H, W, P, ratio, seed, fill).Fit(data).Transform(data);

    [Theory]
    [InlineData(0.0)]
    [InlineData(0.5)]
    [InlineData(0.75)]
    public void EachRowKeepsExactlyOneMinusRatioOfTheTokens(double ratio)
    {
        var ml = new MLContext(seed: 1);
        var masks = Column(Masked(ml, Images(ml), ratio: ratio), "PatchesMask");
        int keep = (int)(L * (1 - ratio));
        Assert.All(masks, m =>
        {
            Assert.Equal(L, m.Length);
            Assert.All(m, v => Assert.True(v == 0f || v == 1f));
            Assert.Equal(keep, m.Count(v => v == 0f));
        });
    }

    [Fact]
    public void RowsGetDifferentMasks()
    {
        var ml = new MLContext(seed: 1);
        var masks = Column(Masked(ml, Images(ml)), "PatchesMask");
        Assert.True(masks.Select(m => string.Join(",", m)).Distinct().Count() > masks.Length / 2,
            "expected most rows to have their own mask");
    }

    [Fact]
    public void SameSeedGivesSameMasksAndReadingAgainToo()
    {
        var ml = new MLContext(seed: 1);
        var data = Images(ml);
        var view = Masked(ml, data, seed: 7);
        var first = Column(view, "PatchesMask");
        var again = Column(view, "PatchesMask");
        var other = Column(Masked(new MLContext(seed: 99), data, seed: 7), "PatchesMask");
        Assert.Equal(first, again);
        Assert.Equal(first, other);
    }

    [Fact]
    public void DifferentSeedGivesDifferentMasks()
    {
        var ml = new MLContext(seed: 1);
        var data = Images(ml);
        var a = Column(Masked(ml, data, seed: 1), "PatchesMask");
        var b = Column(Masked(ml, data, seed: 2), "PatchesMask");
        Assert.NotEqual(a, b);
    }

    [Fact]
    public void MaskedColumnIsInputWhereKeptAndFillWhereMasked()
    {
        var ml = new MLContext(seed: 1);
        var data = Images(ml, rows: 5);
        var view = Masked(ml, data, ratio: 0.5, fill: -3f);
        var images = Column(view, "Image");
        var masks = Column(view, "PatchesMask");
        var masked = Column(view, "PatchesMasked");
        for (int row = 0; row < images.Length; row++)
            for (int c = 0; c < C; c++)
                for (int y = 0; y < H; y++)
                    for (int x = 0; x < W; x++)
                    {
                        int i = (c * H + y) * W + x, token = y / P * (W / P) + x / P;
                        float expected = masks[row][token] == 1f ? -3f : images[row][i];
                        Assert.Equal(expected, masked[row][i]);
                    }
        var maskedType = (VectorDataViewType)view.Schema["PatchesMasked"].Type;
        Assert.Equal(new[] { C, H, W }, maskedType.Dimensions.ToArray());
    }

    [Fact]
    public void ShapeComesFromTheColumnDimensionsWhenNotGiven()
    {
        var ml = new MLContext(seed: 1);
        var data = Images(ml, rows: 3);
        var model = ml.McDit().Transforms.MaskPatches("Patches", "Image", patchSize: 4).Fit(data);
        Assert.Equal((C, H, W, 4), (model.Channels, model.Height, model.Width, model.TokenCount));
        Assert.All(Column(model.Transform(data), "PatchesMask"), m => Assert.Equal(4, m.Length));
    }

    [Fact]
    public void SavedModelLoadsInAFreshContextAndGivesTheSameOutputs()
    {
        var ml = new MLContext(seed: 1);
        var data = Images(ml, rows: 6);
        var pipeline = ml.Transforms.CopyColumns("Copy", "Image")
            .Append(ml.McDit().Transforms.MaskPatches("Patches", "Image", C, H, W, P, 0.75, seed: 5, fillValue: 2f));
        var model = pipeline.Fit(data);
        var path = Path.Combine(Path.GetTempPath(), $"mcdit-patchmask-{Guid.NewGuid():N}.zip");
        try
        {
            ml.Model.Save(model, data.Schema, path);
            var loaded = new MLContext().Model.Load(path, out var inputSchema);
            Assert.Equal(data.Schema["Image"].Type, inputSchema["Image"].Type);
            var before = model.Transform(data);
            var after = loaded.Transform(data);
            Assert.Equal(Column(before, "PatchesMask"), Column(after, "PatchesMask"));
            Assert.Equal(Column(before, "PatchesMasked"), Column(after, "PatchesMasked"));

            var engine = new MLContext().Model.CreatePredictionEngine<ImageRow, MaskedRow>(loaded);
            var prediction = engine.Predict(new ImageRow { Image = Enumerable.Repeat(1f, C * H * W).ToArray() });
            Assert.Equal(L - (int)(L * 0.25), prediction.PatchesMask.Count(v => v == 1f));
            Assert.Equal(C * H * W, prediction.PatchesMasked.Length);
        }
        finally
        {
            File.Delete(path);
        }
    }

    public sealed class MaskedRow
    {
        [VectorType(L)] public float[] PatchesMask { get; set; } = Array.Empty<float>();
        [VectorType(C, H, W)] public float[] PatchesMasked { get; set; } = Array.Empty<float>();
    }

    [Fact]
    public void MissingColumnIsNamedWithTheColumnsThatExist()
    {
        var ml = new MLContext(seed: 1);
        var data = Images(ml, rows: 2);
        var estimator = ml.McDit().Transforms.MaskPatches("Patches", "Pixels", C, H, W, P);
        var fit = Assert.ThrowsAny<ArgumentException>(() => estimator.Fit(data));
        Assert.Contains("'Pixels'", fit.Message);
        Assert.Contains("'Image'", fit.Message);
    }

    [Fact]
    public void WrongSizeSaysExpectedAndFound()
    {
        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromEnumerable(new[] { new SmallRow { Image = new float[64] } });
        var e = Assert.ThrowsAny<ArgumentException>(() => ml.McDit().Transforms.MaskPatches("Patches", "Image", C, H, W, P).Fit(data));
        Assert.Contains("'Image'", e.Message);
        Assert.Contains("C·H·W = 2·8·8 = 128", e.Message);
        Assert.Contains("64", e.Message);
    }

    [Fact]
    public void NotAFloatVectorIsRejected()
    {
        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromEnumerable(new[] { new { Image = "text" } });
        var e = Assert.ThrowsAny<ArgumentException>(() => ml.McDit().Transforms.MaskPatches("Patches", "Image", C, H, W, P).Fit(data));
        Assert.Contains("'Image'", e.Message);
        Assert.Contains("vector of Single", e.Message);
    }

    [Theory]
    [InlineData(1.0)]
    [InlineData(-0.1)]
    [InlineData(double.NaN)]
    public void RatioOutsideZeroToOneIsRejected(double ratio)
    {
        var ml = new MLContext(seed: 1);
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => ml.McDit().Transforms.MaskPatches("Patches", "Image", C, H, W, P, ratio));
        Assert.Equal("maskRatio", e.ParamName);
        Assert.Contains("[0, 1)", e.Message);
    }

    [Fact]
    public void SizeNotDivisibleByThePatchIsRejected()
    {
        var ml = new MLContext(seed: 1);
        var given = Assert.Throws<ArgumentOutOfRangeException>(() => ml.McDit().Transforms.MaskPatches("Patches", "Image", C, H, W, patchSize: 3));
        Assert.Contains("H=8", given.Message);
        Assert.Contains("patch size 3", given.Message);
        var fromColumn = ml.McDit().Transforms.MaskPatches("Patches", "Image", patchSize: 3);
        var e = Assert.ThrowsAny<ArgumentException>(() => fromColumn.Fit(Images(ml, rows: 1)));
        Assert.Contains("patch size 3", e.Message);
    }

    [Fact]
    public void FlatColumnWithoutDimensionsNeedsTheShape()
    {
        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromEnumerable(new[] { new FlatRow { Image = new float[C * H * W] } });
        var e = Assert.ThrowsAny<ArgumentException>(() => ml.McDit().Transforms.MaskPatches("Patches", "Image").Fit(data));
        Assert.Contains("give channels, height and width", e.Message);
        var model = ml.McDit().Transforms.MaskPatches("Patches", "Image", C, H, W).Fit(data);
        Assert.Equal(L, Column(model.Transform(data), "PatchesMask")[0].Length);
    }
}
