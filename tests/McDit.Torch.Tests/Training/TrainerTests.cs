using McDit.Torch.Diffusion;
using McDit.Torch.Models;
using McDit.Torch.Training;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace McDit.Torch.Tests.Training;

public class TrainerTests
{
    [Theory]
    [MemberData(nameof(TinySetup.AllMethods), MemberType = typeof(TinySetup))]
    public void EveryMethodTrainsAndSamplesWithTheRightShapes(string name, MethodOptions method)
    {
        var (images, labels) = TinySetup.Data(8);
        using var trainer = new DiffusionTrainer(TinySetup.BackboneFor(method.Method), TinySetup.Options(method));
        var loss = trainer.Step(images, labels);
        Assert.True(double.IsFinite(loss.Total) && loss.Total > 0, $"{name}: loss {loss.Total}");
        Assert.Equal(method.UsesBranches && method.NoisyBranch, trainer.NoisyBranch is not null);
        using var samples = trainer.Generate(new[] { 0, 1, 2 }, 3, seed: 1, new SamplerOptions { Steps = 3 });
        Assert.Equal(new long[] { 3, 2, 8, 8 }, samples.shape);
        Assert.False(samples.isnan().any().item<bool>());
        images.Dispose(); labels.Dispose();
    }

    [Fact]
    public void McDiTsTwoBranchesAreOneModuleAndOneBatchedDecoderCallGivesEachBranchsLoss()
    {
        var method = MethodOptions.For(TrainingMethod.McDiT);
        var objective = new DiffusionObjective(method);
        var (trainerAfterSteps, images, labels, draws) = AfterThreeSteps(objective);
        using var trainer = trainerAfterSteps;
        Assert.Same(trainer.NoisyBranch, trainer.CleanBranch);
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        // Two separate copies of the branch take the unbatched path: one decoder call per branch.
        using var copies = new BranchCopies(trainer, method);
        var (noisy, clean) = (copies.Noisy, copies.Clean);
        var shared = objective.Loss(trainer.Model, images, draws, trainer.NoisyBranch, trainer.CleanBranch);
        var separate = objective.Loss(trainer.Model, images, draws, noisy, clean);
        Assert.True(shared.Breakdown.NoisyBranch > 0 && shared.Breakdown.CleanBranch > 0);
        Assert.Equal(separate.Breakdown.NoisyBranch, shared.Breakdown.NoisyBranch, 5);
        Assert.Equal(separate.Breakdown.CleanBranch, shared.Breakdown.CleanBranch, 5);
        Assert.True(torch.allclose(shared.PerSample, separate.PerSample, rtol: 1e-5, atol: 1e-6));
        draws.Mask?.Dispose();
        images.Dispose(); labels.Dispose();
    }

    [Theory]
    [InlineData(true)]  // one module for both branches: the batched [noisy; clean] path
    [InlineData(false)] // separate copies: one encoder and decoder call per branch
    public void ACleanBranchFractionRunsTheCleanBranchOnTheFirstRowsOnlyWithAnUnbiasedScale(bool shared)
    {
        var method = MethodOptions.For(TrainingMethod.McDiT);
        var full = new DiffusionObjective(method);
        var (trainerAfterSteps, images, labels, draws) = AfterThreeSteps(full);
        using var trainer = trainerAfterSteps;
        var quarter = new DiffusionObjective(method with { CleanBranchFraction = 0.25 });
        var withoutClean = new DiffusionObjective(method with { CleanBranch = false });
        Assert.Equal(2, quarter.CleanRows(8));
        Assert.Equal(1, quarter.CleanRows(1));
        Assert.Equal(8, full.CleanRows(8));
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        using var copies = new BranchCopies(trainer, method);
        var (noisyBranch, cleanBranch) = shared ? (trainer.NoisyBranch!, trainer.CleanBranch!) : (copies.Noisy, copies.Clean);

        var all = full.Loss(trainer.Model, images, draws, noisyBranch, cleanBranch).PerSample;
        var none = withoutClean.Loss(trainer.Model, images, draws, noisyBranch, cleanBranch).PerSample;
        var cleanTerm = all - none; // each row's clean-branch term
        Assert.True(cleanTerm.min().item<float>() > 0);
        var expected = cat(new[] { none[..2] + cleanTerm[..2] * 4.0, none[2..] }, 0);
        var result = quarter.Loss(trainer.Model, images, draws, noisyBranch, cleanBranch);
        Assert.True(torch.allclose(result.PerSample, expected, rtol: 1e-4, atol: 1e-5),
            $"per-sample loss {string.Join(", ", result.PerSample.data<float>())} against {string.Join(", ", expected.data<float>())}");
        Assert.Equal(cleanTerm[..2].mean().item<float>(), result.Breakdown.CleanBranch, 4);
        draws.Mask?.Dispose();
        images.Dispose(); labels.Dispose();
    }

    /// <summary>
    /// A tiny trainer after three steps at a high learning rate (so that its EMA branch differs from the model), and one
    /// fixed set of draws of <paramref name="objective"/> for its batch.
    /// </summary>
    static (DiffusionTrainer Trainer, Tensor Images, Tensor Labels, DiffusionObjective.Draws Draws) AfterThreeSteps(DiffusionObjective objective)
    {
        var (images, labels) = TinySetup.Data(8);
        var trainer = new DiffusionTrainer(TinySetup.Backbone(), TinySetup.Options(objective.Options, lr: 3e-3));
        for (int i = 0; i < 3; i++) trainer.Step(images, labels);
        using var g = new Generator(5, torch.CPU);
        return (trainer, images, labels, objective.Draw(trainer.Model, images, labels, g));
    }

    /// <summary>Two separate modules holding the trainer's (shared) branch weights: the unbatched path of the loss.</summary>
    sealed class BranchCopies : IDisposable
    {
        public ContextBranch Noisy { get; }
        public ContextBranch Clean { get; }

        public BranchCopies(DiffusionTrainer trainer, MethodOptions method)
        {
            Noisy = new ContextBranch(trainer.Model, method.BranchScope);
            Clean = new ContextBranch(trainer.Model, method.BranchScope);
            var branchWeights = ExponentialMovingAverage.NamedParameters(trainer.NoisyBranch!);
            ExponentialMovingAverage.CopyInto(Noisy, branchWeights);
            ExponentialMovingAverage.CopyInto(Clean, branchWeights);
        }

        public void Dispose() { Noisy.Dispose(); Clean.Dispose(); }
    }

    [Fact]
    public void ACleanBranchFractionOutsideZeroToOneIsRejectedByName()
    {
        foreach (var bad in new[] { 0.0, -0.5, 1.5, double.NaN })
        {
            var e = Assert.Throws<ArgumentException>(() => (MethodOptions.For(TrainingMethod.McDiT) with { CleanBranchFraction = bad }).Validated());
            Assert.Equal(nameof(MethodOptions.CleanBranchFraction), e.ParamName);
            Assert.Contains("(0, 1]", e.Message);
        }
    }

    [Fact]
    public void ShiftAugmentationRollsTheDrawnRowsAndLeavesTheOtherDrawsAsTheyWere()
    {
        var (images, labels) = TinySetup.Data(8);
        var method = MethodOptions.For(TrainingMethod.McDiT);
        using var trainer = new DiffusionTrainer(TinySetup.Backbone(), TinySetup.Options(method));
        var plain = new DiffusionObjective(method);
        var shifting = new DiffusionObjective(method with { ShiftAugmentation = 2 });
        using var g1 = new Generator(7, torch.CPU);
        using var g2 = new Generator(7, torch.CPU);
        var a = plain.Draw(trainer.Model, images, labels, g1);
        var b = shifting.Draw(trainer.Model, images, labels, g2);
        Assert.Null(a.Shifted);
        // The flags are drawn after everything else: σ, ε, labels and mask are those of a run without the augmentation.
        Assert.True(a.Sigma.eq(b.Sigma).all().item<bool>() && a.Noise.eq(b.Noise).all().item<bool>() && a.Labels!.eq(b.Labels!).all().item<bool>());
        Assert.True(a.Mask!.Mask.eq(b.Mask!.Mask).all().item<bool>());
        Assert.Equal(new long[] { 8 }, b.Shifted!.shape);

        // A shifted row's loss is the loss of its image rolled by 2 pixels; an unshifted row's is unchanged.
        using var _ = no_grad();
        var allShifted = b with { Shifted = torch.ones(8, dtype: ScalarType.Bool) };
        var noneShifted = b with { Shifted = torch.zeros(8, dtype: ScalarType.Bool) };
        var rolled = images.roll(new long[] { 2, 2 }, new long[] { -2, -1 });
        var expected = plain.Loss(trainer.Model, rolled, a).PerSample;
        Assert.True(torch.allclose(shifting.Loss(trainer.Model, images, allShifted).PerSample, expected, rtol: 1e-5, atol: 1e-6));
        Assert.True(torch.allclose(shifting.Loss(trainer.Model, images, noneShifted).PerSample, plain.Loss(trainer.Model, images, a).PerSample, rtol: 1e-5, atol: 1e-6));
        Assert.False(torch.allclose(expected, plain.Loss(trainer.Model, images, a).PerSample, rtol: 1e-3, atol: 1e-4));
        a.Mask.Dispose(); b.Mask.Dispose();
        images.Dispose(); labels.Dispose();
    }

    [Theory]
    [MemberData(nameof(TinySetup.AllMethods), MemberType = typeof(TinySetup))]
    public void EveryMethodDrivesItsLossDownOnATinyBatch(string name, MethodOptions method)
    {
        var (images, labels) = TinySetup.Data(8);
        using var trainer = new DiffusionTrainer(TinySetup.BackboneFor(method.Method), TinySetup.Options(method, lr: 3e-3));
        // A fixed evaluation: the same σ, ε and mask before and after training.
        var objective = new DiffusionObjective(method with { LabelDropout = 0 });
        using var g = new Generator(99, torch.CPU);
        var draws = objective.Draw(trainer.Model, images, labels, g);
        double Evaluate()
        {
            using var _ = no_grad();
            using var scope = NewDisposeScope();
            return objective.Loss(trainer.Model, images, draws, trainer.NoisyBranch, trainer.CleanBranch).PerSample.mean().item<float>();
        }
        double before = Evaluate();
        for (int i = 0; i < 120; i++) trainer.Step(images, labels);
        double after = Evaluate();
        Assert.True(after < 0.85 * before, $"{name}: loss {before:F4} → {after:F4}");
        draws.Mask?.Dispose();
        images.Dispose(); labels.Dispose();
    }

    [Theory]
    [MemberData(nameof(TinySetup.AllMethods), MemberType = typeof(TinySetup))]
    public void ATrainingStepLeavesNoLiveTensorsBehind(string name, MethodOptions method)
    {
        var (images, labels) = TinySetup.Data(8);
        using var trainer = new DiffusionTrainer(TinySetup.BackboneFor(method.Method), TinySetup.Options(method));
        trainer.Step(images, labels); // gradients and optimizer state come into being here
        trainer.Step(images, labels);
        long before = DisposeScopeManager.Statistics.ThreadTotalLiveCount;
        for (int i = 0; i < 3; i++) trainer.Step(images, labels);
        long after = DisposeScopeManager.Statistics.ThreadTotalLiveCount;
        Assert.True(after == before, $"{name}: {after - before} tensors leaked over 3 steps");
        images.Dispose(); labels.Dispose();
    }

    [Fact]
    public void ATrainingStepWithTheFlatOptimizerLayoutLeavesNoLiveTensorsBehindAndTrainsTheModelsOwnParameters()
    {
        // The GPU's optimizer layout, run on the CPU: the model's parameters are views into AdamW's flat buffer.
        var (images, labels) = TinySetup.Data(8);
        var method = MethodOptions.For(TrainingMethod.McDiT);
        using var trainer = new DiffusionTrainer(TinySetup.BackboneFor(method.Method), TinySetup.Options(method) with { OptimizerLayout = AdamWLayout.Flat });
        Assert.Equal(AdamWLayout.Flat, trainer.Optimizer.Layout);
        var (weightName, weight) = trainer.Model.named_parameters().First(p => p.parameter.requires_grad && p.name.Contains("attn.qkv.weight"));
        using var before = weight.detach().clone();
        trainer.Step(images, labels);
        trainer.Step(images, labels);
        long live = DisposeScopeManager.Statistics.ThreadTotalLiveCount;
        for (int i = 0; i < 3; i++) trainer.Step(images, labels);
        Assert.True(DisposeScopeManager.Statistics.ThreadTotalLiveCount == live, $"{DisposeScopeManager.Statistics.ThreadTotalLiveCount - live} tensors leaked over 3 steps");
        Assert.False(TestTensors.Same(before, weight.detach()), $"the model's parameter {weightName} did not move");
        images.Dispose(); labels.Dispose();
    }

    [Fact]
    public void SamplingIsDeterministicPerSeed()
    {
        var (images, labels) = TinySetup.Data(8);
        using var trainer = new DiffusionTrainer(TinySetup.Backbone(), TinySetup.Options(MethodOptions.For(TrainingMethod.McDiT)));
        trainer.Step(images, labels);
        var sampler = new SamplerOptions { Steps = 4, GuidanceScale = 1.5 };
        using var a = trainer.Generate(new[] { 0, 1 }, 2, seed: 5, sampler);
        using var b = trainer.Generate(new[] { 0, 1 }, 2, seed: 5, sampler);
        using var c = trainer.Generate(new[] { 0, 1 }, 2, seed: 6, sampler);
        Assert.True(TestTensors.Same(a, b));
        Assert.False(TestTensors.Same(a, c));
        images.Dispose(); labels.Dispose();
    }

    [Fact]
    public void SameSeedSameRunDifferentSeedDifferentRun()
    {
        var (images, labels) = TinySetup.Data(8);
        Tensor Run(long seed)
        {
            using var trainer = new DiffusionTrainer(TinySetup.Backbone(), TinySetup.Options(MethodOptions.For(TrainingMethod.McDiT), seed));
            for (int i = 0; i < 3; i++) trainer.Step(images, labels);
            return trainer.Model.state_dict()["blocks.0.attn.qkv.weight"].clone();
        }
        using var a = Run(1);
        using var b = Run(1);
        using var c = Run(2);
        Assert.True(TestTensors.Same(a, b));
        Assert.False(TestTensors.Same(a, c));
        images.Dispose(); labels.Dispose();
    }

    [Fact]
    public void UnmaskTuningHalvesTheLearningRateAndDropsMaskingAndBranches()
    {
        var (images, labels) = TinySetup.Data(8);
        using var trainer = new DiffusionTrainer(TinySetup.Backbone(), TinySetup.Options(MethodOptions.For(TrainingMethod.McDiT)));
        trainer.Step(images, labels);
        trainer.StartUnmaskTuning();
        Assert.Equal(2, trainer.State.Stage);
        Assert.Equal(trainer.Options.LearningRate / 2, trainer.Optimizer.LearningRate);
        Assert.Equal(0, trainer.CurrentMethod.MaskRatio);
        Assert.False(trainer.CurrentMethod.UsesBranches);
        var loss = trainer.Step(images, labels);
        Assert.Equal(0, loss.NoisyBranch);
        Assert.Equal(0, loss.Masked);
        images.Dispose(); labels.Dispose();
    }

    [Fact]
    public void GradientClippingAndBFloat16Train()
    {
        var (images, labels) = TinySetup.Data(8);
        var options = TinySetup.Options(MethodOptions.For(TrainingMethod.McDiT)) with { GradClipNorm = 0.5, Precision = TrainingPrecision.BFloat16 };
        using var trainer = new DiffusionTrainer(TinySetup.Backbone(), options);
        Assert.Equal(ScalarType.BFloat16, trainer.Model.parameters().First().dtype);
        Assert.All(trainer.Optimizer.MasterWeights.Values, m => Assert.Equal(ScalarType.Float32, m.dtype));
        Assert.Equal(ScalarType.Float32, trainer.EmaModel.parameters().First().dtype);
        double first = trainer.Step(images, labels).Total;
        for (int i = 0; i < 30; i++) trainer.Step(images, labels);
        Assert.True(double.IsFinite(trainer.State.LastLoss));
        images.Dispose(); labels.Dispose();
    }

    [Fact]
    public void BadBatchesAreRejectedWithTheExpectedShape()
    {
        using var trainer = new DiffusionTrainer(TinySetup.Backbone(), TinySetup.Options(MethodOptions.For(TrainingMethod.MaskDiT)));
        using var wrong = torch.zeros(2, 3, 8, 8);
        var e = Assert.Throws<ArgumentException>(() => trainer.Step(wrong, null));
        Assert.Contains("[N, 2, 8, 8]", e.Message);
        using var images = torch.zeros(2, 2, 8, 8);
        using var labels = torch.tensor(new long[] { 0, 3 });
        var e2 = Assert.Throws<ArgumentOutOfRangeException>(() => trainer.Step(images, labels));
        Assert.Contains("0..2", e2.Message);
    }

    [Fact]
    public void DiTWithMaskingIsRejected()
    {
        var e = Assert.Throws<ArgumentException>(() => (MethodOptions.For(TrainingMethod.DiT) with { MaskRatio = 0.5 }).Validated());
        Assert.Contains("MaskRatio", e.Message);
    }
}
