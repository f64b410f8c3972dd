using McDit.Torch.Training;
using Xunit;

namespace McDit.Torch.Tests.Training;

public class LearningRateScheduleTests
{
    static readonly TrainerOptions Peak = new() { LearningRate = 2e-3 };

    [Fact]
    public void ConstantIsThePeakAndHalfOfItInStageTwo()
    {
        Assert.False(Peak.HasSchedule);
        Assert.Equal(2e-3, Peak.LearningRateAt(0, 1));
        Assert.Equal(2e-3, Peak.LearningRateAt(10_000, 1));
        Assert.Equal(1e-3, Peak.LearningRateAt(10_000, 2));
    }

    [Fact]
    public void WarmUpRisesLinearlyToThePeak()
    {
        var o = Peak with { WarmupSteps = 4 };
        Assert.True(o.HasSchedule);
        Assert.Equal(new[] { 0.5e-3, 1e-3, 1.5e-3, 2e-3, 2e-3 }, Enumerable.Range(0, 5).Select(s => o.LearningRateAt(s, 1)).ToArray(), new Close());
    }

    [Fact]
    public void CosineFallsFromThePeakToNearlyZeroAtTheLastStep()
    {
        var o = Peak with { Decay = LearningRateDecay.Cosine, DecaySteps = 100 };
        Assert.Equal(2e-3, o.LearningRateAt(0, 1), 12);
        Assert.Equal(1e-3, o.LearningRateAt(50, 1), 12);          // half way: half the peak
        Assert.Equal(0.5e-3, o.LearningRateAt(50, 2), 12);        // stage 2 halves it as always
        Assert.True(o.LearningRateAt(99, 1) < 2e-3 * 0.01);
        Assert.Equal(2e-6, o.LearningRateAt(100, 1), 12);         // floor: 1e-3 of the peak, never 0
        Assert.Equal(2e-6, o.LearningRateAt(500, 1), 12);         // an extended run stays at the floor
        for (int s = 1; s <= 100; s++) Assert.True(o.LearningRateAt(s, 1) <= o.LearningRateAt(s - 1, 1));
    }

    [Theory]
    [InlineData(-1, LearningRateDecay.Constant, 0, "WarmupSteps")]
    [InlineData(0, LearningRateDecay.Cosine, 0, "DecaySteps")]
    [InlineData(0, (LearningRateDecay)7, 0, "Decay")]
    public void BadSettingsNameTheOption(long warmup, LearningRateDecay decay, long decaySteps, string option)
    {
        var e = Assert.Throws<ArgumentException>(() => (Peak with { WarmupSteps = warmup, Decay = decay, DecaySteps = decaySteps }).Validated());
        Assert.Contains(option, e.Message);
    }

    [Fact]
    public void TheTrainerStepsAtTheScheduledRate()
    {
        var (images, labels) = TinySetup.Data(8);
        var options = TinySetup.Options(MethodOptions.For(TrainingMethod.MaskDiT)) with { WarmupSteps = 2, Decay = LearningRateDecay.Cosine, DecaySteps = 4 };
        using var trainer = new DiffusionTrainer(TinySetup.BackboneFor(TrainingMethod.MaskDiT), options);
        var seen = new List<double>();
        for (int s = 0; s < 4; s++)
        {
            if (s == 3) trainer.StartUnmaskTuning();
            trainer.Step(images, labels);
            seen.Add(trainer.Optimizer.LearningRate);
        }
        var expected = new[] { options.LearningRateAt(0, 1), options.LearningRateAt(1, 1), options.LearningRateAt(2, 1), options.LearningRateAt(3, 2) };
        Assert.Equal(expected, seen.ToArray(), new Close());
        Assert.True(seen[0] < seen[1], "the warm-up rises");
        images.Dispose(); labels.Dispose();
    }

    sealed class Close : IEqualityComparer<double>
    {
        public bool Equals(double a, double b) => Math.Abs(a - b) <= 1e-12;
        public int GetHashCode(double d) => 0;
    }
}
