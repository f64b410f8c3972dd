using McDit.Torch.Training;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace McDit.Torch.Tests.Training;

public sealed class CheckpointTests : IDisposable
{
    readonly string _dir = Path.Combine(Path.GetTempPath(), "mcdit-ckpt-" + Guid.NewGuid().ToString("N"));

    static void Steps(DiffusionTrainer trainer, Tensor images, Tensor labels, int from, int count)
    {
        // Batches depend on the step only, as a resumable data feeder provides them.
        for (int s = from; s < from + count; s++)
        {
            using var scope = NewDisposeScope();
            var idx = torch.tensor(new long[] { s % 16, (s * 5 + 1) % 16, (s * 7 + 3) % 16, (s * 11 + 2) % 16 });
            trainer.Step(images.index_select(0, idx), labels.index_select(0, idx));
        }
    }

    [Theory]
    [InlineData(TrainingMethod.DiT, false, false)]
    [InlineData(TrainingMethod.MaskDiT, false, false)]
    [InlineData(TrainingMethod.McDiT, false, false)]
    [InlineData(TrainingMethod.McDiT, true, false)]
    // The optimizer layout of a GPU (flat buffers, the parameters views into them), run on the CPU.
    [InlineData(TrainingMethod.MaskDiT, false, true)]
    [InlineData(TrainingMethod.McDiT, true, true)]
    public void ResumeIsExact(TrainingMethod method, bool scheduled, bool flatOptimizer)
    {
        var (images, labels) = TinySetup.Data(16);
        var options = TinySetup.Options(MethodOptions.For(method)) with { GradClipNorm = 1.0 };
        if (flatOptimizer) options = options with { OptimizerLayout = AdamWLayout.Flat };
        // A warm-up that ends after the checkpoint and a cosine decay: the learning rate is a function of the step.
        if (scheduled) options = options with { WarmupSteps = 4, Decay = LearningRateDecay.Cosine, DecaySteps = 6 };
        const int n = 3;
        using var straight = new DiffusionTrainer(TinySetup.BackboneFor(method), options);
        Steps(straight, images, labels, 0, 2 * n);

        using (var first = new DiffusionTrainer(TinySetup.BackboneFor(method), options))
        {
            Steps(first, images, labels, 0, n);
            Checkpoint.Save(first, _dir);
        }
        torch.manual_seed(12345); // a different global RNG state must not matter
        using var resumed = Checkpoint.Load(_dir, null, o => o with { OptimizerLayout = options.OptimizerLayout });
        Assert.Equal(flatOptimizer ? AdamWLayout.Flat : AdamWLayout.PerParameter, resumed.Optimizer.Layout);
        Assert.Equal(n, resumed.State.Step);
        Steps(resumed, images, labels, n, n);

        foreach (var (a, b) in new[] { (straight.Model, resumed.Model), (straight.EmaModel, resumed.EmaModel) })
        {
            var expected = a.state_dict();
            foreach (var (name, value) in b.state_dict())
                Assert.True(TestTensors.Same(expected[name], value), $"{method}: '{name}' differs after resume");
        }
        if (straight.NoisyBranch is not null)
            foreach (var (name, value) in resumed.NoisyBranch!.state_dict())
                Assert.True(TestTensors.Same(straight.NoisyBranch.state_dict()[name], value), $"noisy branch '{name}' differs");
        Assert.Equal(straight.State.LastLoss, resumed.State.LastLoss);
        images.Dispose(); labels.Dispose();
    }

    [Fact]
    public void SavingOverAnOlderCheckpointReplacesItAndLeavesNoTemporaryFolders()
    {
        var (images, labels) = TinySetup.Data(16);
        using var trainer = new DiffusionTrainer(TinySetup.Backbone(), TinySetup.Options(MethodOptions.For(TrainingMethod.McDiT)));
        Steps(trainer, images, labels, 0, 1);
        Checkpoint.Save(trainer, _dir);
        Steps(trainer, images, labels, 1, 1);
        Checkpoint.Save(trainer, _dir);
        using var loaded = Checkpoint.Load(_dir);
        Assert.Equal(2, loaded.State.Step);
        Assert.Single(Directory.GetDirectories(Path.GetDirectoryName(_dir)!, Path.GetFileName(_dir) + "*"));
        Assert.Empty(Directory.GetDirectories(Path.GetDirectoryName(_dir)!, "." + Path.GetFileName(_dir) + "*"));
        images.Dispose(); labels.Dispose();
    }

    [Fact]
    public void AnIncompleteCheckpointNamesTheMissingFile()
    {
        var (images, labels) = TinySetup.Data(16);
        using (var trainer = new DiffusionTrainer(TinySetup.Backbone(), TinySetup.Options(MethodOptions.For(TrainingMethod.MaskDiT))))
        {
            Steps(trainer, images, labels, 0, 1);
            Checkpoint.Save(trainer, _dir);
        }
        File.Delete(Path.Combine(_dir, "optimizer.safetensors"));
        var e = Assert.Throws<InvalidDataException>(() => Checkpoint.Load(_dir));
        Assert.Contains("optimizer.safetensors", e.Message);
        images.Dispose(); labels.Dispose();
    }

    public void Dispose()
    {
        if (Directory.Exists(_dir)) Directory.Delete(_dir, true);
    }
}
