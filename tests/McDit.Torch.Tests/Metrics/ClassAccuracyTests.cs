using System.Diagnostics;
using McDit.Torch.Data;
using McDit.Torch.Metrics;
using Xunit;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace McDit.Torch.Tests.Metrics;

public class ClassAccuracyTests(ITestOutputHelper log)
{
    [Fact]
    public void ClassifierTrainedOnRealImagesScoresHeldOutImagesFarAboveNoise()
    {
        using var scope = NewDisposeScope();
        var train = FashionMnist.LoadEmbedded();
        var heldOut = FashionMnist.LoadEmbedded(FashionMnistSplit.HeldOut);
        var clock = Stopwatch.StartNew();
        using var classifier = ImageClassifierTraining.Train(train.ToTensor(), train.LabelsToTensor(), train.ClassCount);
        log.WriteLine($"trained on {train.Count} images in {clock.Elapsed.TotalSeconds:F1} s");

        var real = ClassAccuracy.Compute(classifier, heldOut.ToTensor(), heldOut.LabelsToTensor());
        var generator = new Generator(7);
        var noise = ClassAccuracy.Compute(classifier, (rand(new long[] { 1000, 1, 28, 28 }, generator: generator) * 2 - 1), heldOut.LabelsToTensor());
        log.WriteLine($"held-out: {real}; noise: {noise}; per class {string.Join(", ", real.ByName(train.ClassNames))}");
        Assert.Equal(1000, real.Count);
        Assert.True(real.Overall > 0.8, $"held-out accuracy {real.Overall:P1}");
        Assert.True(real.Worst > 0.4, $"worst class {real.Worst:P1}");
        Assert.True(noise.Overall < 0.25, $"noise accuracy {noise.Overall:P1}");
        Assert.True(real.Overall - noise.Overall > 0.6);
    }

    [Fact]
    public void TrainingIsDeterministicAndTheCacheIsReusedOnlyForTheSameData()
    {
        using var scope = NewDisposeScope();
        var data = FashionMnist.LoadEmbedded(FashionMnistSplit.HeldOut);
        var images = data.ToTensor();
        var labels = data.LabelsToTensor();
        var options = new ImageClassifierOptions { Epochs = 1, Seed = 3 };
        using var a = ImageClassifierTraining.Train(images, labels, 10, options);
        using var b = ImageClassifierTraining.Train(images, labels, 10, options);
        foreach (var ((name, pa), (_, pb)) in a.named_parameters().Zip(b.named_parameters()))
            Assert.True(pa.equal(pb).all().item<bool>(), $"{name} differs between two trainings with one seed");

        var folder = Directory.CreateTempSubdirectory("mcdit-classifier-");
        try
        {
            var path = Path.Combine(folder.FullName, "c.safetensors");
            using var first = ImageClassifierTraining.GetOrTrain(path, images, labels, 10, options, out bool trained1);
            using var second = ImageClassifierTraining.GetOrTrain(path, images, labels, 10, options, out bool trained2);
            Assert.True(trained1);
            Assert.False(trained2);
            Assert.True(first.Predict(images).equal(second.Predict(images)).all().item<bool>());
            // Other labels: another fingerprint, so the stale file is replaced by a new training.
            using var other = ImageClassifierTraining.GetOrTrain(path, images, (labels + 1) % 10, 10, options, out bool trained3);
            Assert.True(trained3);
        }
        finally
        {
            folder.Delete(recursive: true);
        }
    }

    [Fact]
    public void WrongShapesAndLabelsAreNamed()
    {
        using var scope = NewDisposeScope();
        using var classifier = new ImageClassifier(1, 28, 28, 10);
        var e = Assert.Throws<ArgumentException>(() => ClassAccuracy.Compute(classifier, zeros(2, 3, 28, 28), zeros(2, dtype: int64)));
        Assert.Contains("[N, 1, 28, 28]", e.Message);
        e = Assert.Throws<ArgumentException>(() => ClassAccuracy.Compute(classifier, zeros(2, 1, 28, 28), tensor(new long[] { 0, 12 })));
        Assert.Contains("labels[1] = 12", e.Message);
        e = Assert.Throws<ArgumentException>(() => ImageClassifierTraining.Train(zeros(2, 1, 28, 28), tensor(new long[] { 0, 10 }), 10));
        Assert.Contains("0..9", e.Message);
    }

    [Fact]
    public void PerClassAccuracyCountsEachClass()
    {
        var result = new ClassAccuracy(new long[] { 1, 0, 3 }, new long[] { 2, 0, 4 });
        Assert.Equal(4 / 6.0, result.Overall, 12);
        Assert.Equal(0.5, result.PerClass[0]);
        Assert.True(double.IsNaN(result.PerClass[1]));
        Assert.Equal(0.5, result.Worst);
        Assert.Equal(new[] { "a", "2" }, result.ByName(new[] { "a", "b" }).Keys);
    }
}
