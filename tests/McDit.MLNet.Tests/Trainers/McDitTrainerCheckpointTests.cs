using McDit.MLNet.Trainers;
using McDit.Torch.Training;
using Microsoft.ML;
using Microsoft.ML.Data;
using Xunit;
using static McDit.MLNet.Tests.Trainers.McDitTestData;

namespace McDit.MLNet.Tests.Trainers;

public sealed class McDitTrainerCheckpointTests : IDisposable
{
    readonly string _root = Path.Combine(Path.GetTempPath(), "mcdit-trainer-ckpt-" + Guid.NewGuid().ToString("N"));

    McDitTrainer.Options Run(string name, int steps, bool resume = false, Action<McDitTrainingStep>? callback = null)
    {
        var o = Options(steps);
        o.CheckpointFolder = Path.Combine(_root, name);
        o.CheckpointInterval = 2;
        o.ResumeFromCheckpoint = resume;
        o.StepCallback = callback;
        o.EmaDecay = 0.9;
        return o;
    }

    static float[][] Generated(MLContext ml, ITransformer model, IDataView data) =>
        model.Transform(data).GetColumn<float[]>("GeneratedPixels").ToArray();

    [Fact]
    public void ResumingFromACheckpointEqualsAnUninterruptedRun()
    {
        // 12 rows, batch 4: 3 batches per epoch, so the split at step 4 falls inside the second epoch.
        var ml = new MLContext(seed: 1);
        var data = KeyData(ml);
        var straight = ml.McDit().Trainers.DiffusionTransformer(Run("straight", 7)).Fit(data);

        var losses = new List<double>();
        ml.McDit().Trainers.DiffusionTransformer(Run("split", 4, callback: s => losses.Add(s.Loss.Total))).Fit(data);
        var series = new CheckpointSeries(Path.Combine(_root, "split"));
        Assert.EndsWith("step-0000004", series.Latest);
        var resumed = ml.McDit().Trainers.DiffusionTransformer(Run("split", 7, resume: true, callback: s => losses.Add(s.Loss.Total))).Fit(data);

        Assert.Equal(7, resumed.TrainedSteps);
        Assert.Equal(7, losses.Count);
        var probe = Classes_(ml, 0, 1, 2, 0);
        Assert.Equal(Generated(ml, straight, probe), Generated(ml, resumed, probe));
        Assert.Equal(straight.FinalLoss, resumed.FinalLoss);
    }

    [Fact]
    public void CancellingWritesACheckpointFirst()
    {
        var ml = new MLContext(seed: 1);
        using var cancel = new CancellationTokenSource();
        var o = Run("cancelled", 50, callback: s => { if (s.Step == 3) cancel.Cancel(); });
        o.CancellationToken = cancel.Token;
        Assert.ThrowsAny<OperationCanceledException>(() => ml.McDit().Trainers.DiffusionTransformer(o).Fit(KeyData(ml)));
        Assert.EndsWith("step-0000003", new CheckpointSeries(o.CheckpointFolder!).Latest);
    }

    [Fact]
    public void ResumingWithAnotherModelShapeIsRefused()
    {
        var ml = new MLContext(seed: 1);
        var data = KeyData(ml);
        ml.McDit().Trainers.DiffusionTransformer(Run("shape", 2)).Fit(data);
        var o = Run("shape", 4, resume: true);
        o.ModelConfig = TinyNetwork with { HiddenSize = 64 };
        var e = Assert.Throws<InvalidOperationException>(() => ml.McDit().Trainers.DiffusionTransformer(o).Fit(data));
        Assert.Contains("Resume with the options", e.Message);
    }

    [Fact]
    public void TheStepCallbackSeesEveryStepAndCanSample()
    {
        var ml = new MLContext(seed: 1);
        var seen = new List<long>();
        long[]? shape = null;
        var o = Run("callback", 3, callback: s =>
        {
            seen.Add(s.Step);
            Assert.Equal(3, s.TotalSteps);
            Assert.Equal(Classes, s.NumberOfClasses);
            if (s.Step == 2)
            {
                using var images = s.Generate(new[] { 0, 1 }, 2, seed: 0, new McDit.Torch.Diffusion.SamplerOptions { Steps = 1 });
                shape = images.shape;
            }
        });
        ml.McDit().Trainers.DiffusionTransformer(o).Fit(KeyData(ml));
        Assert.Equal(new long[] { 1, 2, 3 }, seen);
        Assert.Equal(new long[] { 2, 1, Side, Side }, shape);
    }

    public void Dispose()
    {
        if (Directory.Exists(_root)) Directory.Delete(_root, true);
    }
}
