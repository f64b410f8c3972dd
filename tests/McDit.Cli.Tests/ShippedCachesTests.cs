using McDit.Cli.Runs;
using McDit.MLNet;
using McDit.MLNet.Evaluation;
using McDit.Torch.IO;
using McDit.Torch.Metrics;
using McDit.Torch.Runtime;
using Microsoft.ML;
using Xunit;
using static TorchSharp.torch;

namespace McDit.Cli.Tests;

/// <summary>
/// What mcdit ships so that a first demo on a new machine skips two one-off computations: the ResNet-18 features of the
/// embedded held-out images (the FD reference) and the class-accuracy classifier of the embedded training images. Each
/// is checked against what the machine computes; <c>MCDIT_UPDATE_SHIPPED=1</c> rewrites both source files first (then
/// rebuild and run the tests again: the build embeds them).
/// </summary>
public sealed class ShippedCachesTests : IDisposable
{
    static readonly bool Update = Environment.GetEnvironmentVariable("MCDIT_UPDATE_SHIPPED") == "1";
    readonly string _dir = CliRunner.TempFolder();

    public ShippedCachesTests()
    {
        Directory.CreateDirectory(_dir);
        TorchBackend.EnsureInitialized();
    }

    public void Dispose()
    {
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
    }

    static string RepositoryFile(string relative)
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "McDit.sln"))) return Path.Combine(dir.FullName, relative);
        throw new InvalidOperationException("MCDIT_UPDATE_SHIPPED=1 needs the tests to run from a clone (no McDit.sln above them).");
    }

    [Fact]
    public void TheShippedHeldOutFeaturesAreTheResNet18FeaturesOfTheEmbeddedHeldOutImages()
    {
        var ml = new MLContext(0);
        using var scope = NewDisposeScope();
        var (images, _, _) = FdEvaluation.ReadLabeled(DataSources.Load(ml, "embedded", heldOut: true));
        using var extractor = ml.McDit().ResNet18Featurizer();
        if (Update)
        {
            var batches = new List<Tensor>();
            for (long i = 0; i < images.shape[0]; i += 100)
                batches.Add(extractor.Extract(images.slice(0, i, Math.Min(i + 100, images.shape[0]), 1)));
            SafeTensors.Save(RepositoryFile(ShippedReferences.SourcePath), new Dictionary<string, Tensor> { ["features"] = cat(batches.ToArray(), 0).to(float32) },
                new Dictionary<string, string> { [GaussianStatistics.ExtractorIdKey] = ResNet18FeatureExtractor.ExtractorId });
            return;
        }
        using var shipped = ShippedReferences.Load();
        Assert.NotNull(shipped);
        Assert.Equal(new[] { images.shape[0], (long)ResNet18FeatureExtractor.FeatureDimension }, shipped!.shape);
        // The first images, two in the middle and the last: the rows are the held-out images in order, as this machine computes them.
        long n = images.shape[0];
        var rows = tensor(new long[] { 0, 1, 2, n / 2, n / 2 + 1, n - 1 });
        var computed = extractor.Extract(images.index_select(0, rows)).to(float64);
        var expected = shipped.index_select(0, rows).to(float64);
        double worst = (computed - expected).abs().max().item<double>(), scale = expected.abs().max().item<double>();
        Assert.True(worst <= 1e-3 * scale, $"shipped features differ from this machine's by up to {worst} (features up to {scale})");
    }

    [Fact]
    public void TheShippedClassifierIsTheOneTheEmbeddedTrainingImagesTrain()
    {
        var ml = new MLContext(0);
        using var scope = NewDisposeScope();
        var training = DataSources.Load(ml, "embedded", heldOut: false);
        var (images, labels, names) = FdEvaluation.ReadLabeled(training);
        var options = new ImageClassifierOptions();
        var fingerprint = ImageClassifierTraining.Fingerprint(images, labels, names!.Count, options);
        if (Update)
        {
            var folder = RepositoryFile("src/McDit.Torch/Data/Embedded");
            foreach (var old in Directory.GetFiles(folder, "classifier-*.safetensors")) File.Delete(old);
            using var trained = ImageClassifierTraining.TrainFingerprinted(images, labels, names.Count, options);
            trained.Save(Path.Combine(folder, ImageClassifierTraining.ShippedFileName(fingerprint)));
            return;
        }
        using var shipped = ImageClassifierTraining.LoadShipped(fingerprint);
        Assert.True(shipped is not null, $"no classifier ships for the embedded training images (fingerprint {fingerprint}); rerun with MCDIT_UPDATE_SHIPPED=1");
        var (heldOut, heldOutLabels, _) = FdEvaluation.ReadLabeled(DataSources.Load(ml, "embedded", heldOut: true));
        var accuracy = ClassAccuracy.Compute(shipped!, heldOut, heldOutLabels);
        Assert.True(accuracy.Overall >= 0.85, $"the shipped classifier recognises {accuracy.Overall:P1} of the held-out images");

        // A first evaluation finds it for that fingerprint without training, and leaves it in the cache.
        var cache = Path.Combine(_dir, "classifier.safetensors");
        using var found = ImageClassifierTraining.GetOrTrain(cache, images, labels, names.Count, options, out bool wasTrained);
        Assert.False(wasTrained);
        Assert.True(File.Exists(cache));
        // Other images have no shipped classifier.
        Assert.Null(ImageClassifierTraining.LoadShipped(ImageClassifierTraining.Fingerprint(images.slice(0, 0, 100, 1), labels.slice(0, 0, 100, 1), names.Count, options)));
    }

    [Theory]
    [InlineData("embedded (held-out)", true, null)]
    [InlineData("embedded (held-out, 500)", true, 500)]
    [InlineData("embedded (held-out, 1,000)", true, 1000)]
    [InlineData("fashion-mnist (held-out)", false, null)]
    [InlineData("embedded", false, null)]
    public void ReferenceNamesOfTheEmbeddedHeldOutImages(string name, bool embedded, int? count)
    {
        Assert.Equal(embedded, ShippedReferences.IsEmbedded(name, out int? n));
        Assert.Equal(count, n);
    }

    [Fact]
    public void TheDemosReferenceStatisticsComeFromTheFirstShippedRows()
    {
        using var scope = NewDisposeScope();
        var file = Path.Combine(_dir, "reference.safetensors");
        Assert.True(ShippedReferences.TryInstall("embedded (held-out, 500)", file));
        using var installed = GaussianStatistics.Load(file, ResNet18FeatureExtractor.ExtractorId);
        using var features = ShippedReferences.Load()!;
        using var expected = GaussianStatistics.FromFeatures(features.slice(0, 0, 500, 1));
        Assert.Equal(500, installed.Count);
        Assert.True(installed.Mean.allclose(expected.Mean) && installed.Covariance.allclose(expected.Covariance));

        Assert.False(ShippedReferences.TryInstall("embedded (held-out, 5000)", Path.Combine(_dir, "too-many.safetensors")));
        Assert.False(ShippedReferences.TryInstall("fashion-mnist (held-out)", Path.Combine(_dir, "other.safetensors")));
        Assert.False(File.Exists(Path.Combine(_dir, "too-many.safetensors")) || File.Exists(Path.Combine(_dir, "other.safetensors")));
    }
}
