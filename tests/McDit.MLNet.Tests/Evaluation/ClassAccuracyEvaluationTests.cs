using McDit.MLNet.Evaluation;
using McDit.Torch.Data;
using McDit.Torch.Metrics;
using Microsoft.ML;
using Microsoft.ML.Data;
using Xunit;
using static TorchSharp.torch;

namespace McDit.MLNet.Tests.Evaluation;

/// <summary>Evaluate with a label column: class accuracy of generated images beside the real images' ceiling.</summary>
public class ClassAccuracyEvaluationTests : IDisposable
{
    /// <summary>Features = per-channel mean and pixel std: keeps the FD part cheap.</summary>
    sealed class ToyExtractor : IFeatureExtractor
    {
        public string Id => "toy/v1";
        public int Dimension => 4;
        public Tensor Extract(Tensor images)
        {
            using var scope = NewDisposeScope();
            var x = images.to(float64).expand(-1, 3, -1, -1);
            return cat(new[] { x.mean(new long[] { 2, 3 }), x.flatten(1).std(1).unsqueeze(1) }, 1).MoveToOuterDisposeScope();
        }
        public void Dispose() { }
    }

    sealed class Row
    {
        [VectorType(1, 28, 28)] public float[] Pixels { get; set; } = Array.Empty<float>();
        public int Label { get; set; } // a plain 0-based class index
    }

    readonly string _cache = Path.Combine(Path.GetTempPath(), $"mcdit-cls-{Guid.NewGuid():N}.safetensors");

    [Fact]
    public void RealImagesScoreNearTheCeilingAndNoiseFarBelow()
    {
        var ml = new MLContext(seed: 0);
        var train = ml.McDit().Data.LoadFashionMnist();
        var heldOut = ml.McDit().Data.LoadFashionMnist(FashionMnistSplit.HeldOut);
        using var classifier = ml.McDit().TrainClassifier(train, cachePath: _cache);
        var options = new FrechetEvaluationOptions { FeatureExtractor = new ToyExtractor(), Classifier = classifier };

        // "Generated" = the real held-out images under another column name: their accuracy is the ceiling itself.
        var copied = ml.Transforms.CopyColumns("GeneratedPixels", "Image").Fit(heldOut).Transform(heldOut);
        var real = ml.McDit().Evaluate(copied, heldOut, "GeneratedPixels", "Image", options: options);
        Assert.NotNull(real.ClassAccuracy);
        Assert.Equal(real.RealClassAccuracy!.Overall, real.ClassAccuracy!.Overall);
        Assert.True(real.ClassAccuracy.Overall > 0.8, real.ToString());
        Assert.Equal("T-shirt/top", real.ClassNames![0]);
        Assert.Equal(1000, real.ClassAccuracy.Count);

        // Noise with the same labels: about chance.
        var random = new Random(1);
        var labels = heldOut.GetColumn<uint>("Label").ToArray();
        var noise = ml.Data.LoadFromEnumerable(labels.Select(l => new Row
        {
            Label = (int)l - 1, Pixels = Enumerable.Range(0, 784).Select(_ => (float)random.NextDouble()).ToArray(),
        }).ToList());
        var scored = ml.McDit().Evaluate(noise, heldOut, "Pixels", "Image", options: options);
        Assert.True(scored.ClassAccuracy!.Overall < 0.25, scored.ToString());
        Assert.True(scored.RealClassAccuracy!.Overall - scored.ClassAccuracy.Overall > 0.6);
        Assert.True(scored.FrechetDistance > real.FrechetDistance);

        // Without a classifier: FD only; with a missing label column: an error that names it.
        var fdOnly = ml.McDit().Evaluate(copied, heldOut, "GeneratedPixels", "Image", options: new FrechetEvaluationOptions { FeatureExtractor = new ToyExtractor() });
        Assert.Null(fdOnly.ClassAccuracy);
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => ml.McDit().Evaluate(copied, heldOut, "GeneratedPixels", "Image", "Class", options));
        Assert.Contains("'Class'", e.Message);

        // The classifier is cached: a second call reads it (same predictions).
        using var again = ml.McDit().TrainClassifier(train, cachePath: _cache);
        using var scope = NewDisposeScope();
        var x = FashionMnist.LoadEmbedded(FashionMnistSplit.HeldOut).ToTensor();
        Assert.True(classifier.Predict(x).equal(again.Predict(x)).all().item<bool>());
    }

    public void Dispose()
    {
        if (File.Exists(_cache)) File.Delete(_cache);
    }
}
