using McDit.Torch.Distributed;
using McDit.Torch.Tests.Training;
using McDit.Torch.Training;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace McDit.Torch.Tests.Distributed;

/// <summary>
/// Data-parallel DiffusionTrainer with ranks as threads: N ranks × their shards of a global batch take the same steps
/// as one process with the whole batch (up to float summation order), for every method, also with uneven and empty shards.
/// </summary>
public sealed class DataParallelTrainingTests(Xunit.Abstractions.ITestOutputHelper output)
{
    // Global batches by step: sizes 5 (shards 3 + 2), 4, 1 (one rank holds nothing), 5.
    static readonly int[] BatchSizes = { 5, 4, 1, 5 };

    static Tensor Rows(int step, int size) => torch.tensor(Enumerable.Range(0, size).Select(i => (long)((step * 7 + i * 3) % 16)).ToArray());

    static DiffusionTrainer TrainAlone(MethodOptions method, Tensor images, Tensor labels, TrainerOptions options)
    {
        var trainer = new DiffusionTrainer(TinySetup.BackboneFor(method.Method), options);
        for (int s = 0; s < BatchSizes.Length; s++)
        {
            using var scope = NewDisposeScope();
            var idx = Rows(s, BatchSizes[s]);
            trainer.Step(images.index_select(0, idx), labels.index_select(0, idx));
        }
        return trainer;
    }

    static Dictionary<string, Tensor> TrainParallel(ThreadProcessGroup group, MethodOptions method, Tensor images, Tensor labels, TrainerOptions options, List<double> losses)
    {
        using var trainer = new DiffusionTrainer(TinySetup.BackboneFor(method.Method), options);
        trainer.JoinDataParallel(group);
        for (int s = 0; s < BatchSizes.Length; s++)
        {
            using var scope = NewDisposeScope();
            var shard = trainer.DataParallel!.Shard(BatchSizes[s]);
            var idx = Rows(s, BatchSizes[s]).index_select(0, shard.RowIndex());
            losses.Add(trainer.Step(images.index_select(0, idx), labels.index_select(0, idx), shard).Total);
        }
        var state = new Dictionary<string, Tensor>();
        foreach (var (k, v) in trainer.Model.state_dict()) state["model." + k] = v.detach().clone().DetachFromDisposeScope();
        foreach (var (k, v) in trainer.EmaModel.state_dict()) state["ema." + k] = v.detach().clone().DetachFromDisposeScope();
        if (trainer.NoisyBranch is { } nb) foreach (var (k, v) in nb.state_dict()) state["noisy." + k] = v.detach().clone().DetachFromDisposeScope();
        return state;
    }

    static double RelativeError(IEnumerable<(Tensor A, Tensor B)> pairs)
    {
        double diff = 0, norm = 0;
        foreach (var (a, b) in pairs)
        {
            using var scope = NewDisposeScope();
            diff += (a.to_type(ScalarType.Float64) - b.to_type(ScalarType.Float64)).square().sum().item<double>();
            norm += b.to_type(ScalarType.Float64).square().sum().item<double>();
        }
        return Math.Sqrt(diff / norm);
    }

    [Theory]
    [InlineData(TrainingMethod.DiT, 2)]
    [InlineData(TrainingMethod.MaskDiT, 2)]
    [InlineData(TrainingMethod.McDiT, 2)]
    [InlineData(TrainingMethod.McDiT, 3)]
    public void RanksTogetherTakeTheStepsOfOneProcessWithTheWholeBatch(TrainingMethod method, int ranks)
    {
        var (images, labels) = TinySetup.Data(16);
        var m = MethodOptions.For(method);
        var options = TinySetup.Options(m) with { GradClipNorm = 0.5 }; // clipping by the global norm
        using var alone = TrainAlone(m, images, labels, options);
        var losses = Enumerable.Range(0, ranks).Select(_ => new List<double>()).ToArray();
        var states = ThreadProcessGroup.Run(ThreadProcessGroup.World(ranks), g => TrainParallel(g, m, images, labels, options, losses[g.Rank]));

        var expected = new Dictionary<string, Tensor>();
        foreach (var (k, v) in alone.Model.state_dict()) expected["model." + k] = v;
        foreach (var (k, v) in alone.EmaModel.state_dict()) expected["ema." + k] = v;
        if (alone.NoisyBranch is { } nb) foreach (var (k, v) in nb.state_dict()) expected["noisy." + k] = v;
        Assert.Equal(expected.Keys.Order(), states[0].Keys.Order());
        double error = RelativeError(expected.Select(kv => (states[0][kv.Key], kv.Value)));
        output.WriteLine($"{method}, {ranks} ranks: relative weight error {error:E2}, last loss {losses[0][^1]:R} vs {alone.State.LastLoss:R}");
        Assert.True(error < 1e-6, $"{method}, {ranks} ranks: weights differ from one process by {error:E2} (relative)");
        for (int r = 1; r < ranks; r++)
            foreach (var (k, v) in states[0]) Assert.True(TestTensors.Same(v, states[r][k]), $"rank {r} holds different '{k}'");
        for (int r = 1; r < ranks; r++) Assert.Equal(losses[0], losses[r]);
        Assert.InRange(Math.Abs(losses[0][^1] - alone.State.LastLoss), 0, 1e-5 * Math.Abs(alone.State.LastLoss));
        foreach (var s in states) foreach (var t in s.Values) t.Dispose();
        images.Dispose(); labels.Dispose();
    }

    [Fact]
    public void JoiningCopiesRankZerosStateToEveryRank()
    {
        var m = MethodOptions.For(TrainingMethod.McDiT);
        var sums = ThreadProcessGroup.Run(ThreadProcessGroup.World(2), g =>
        {
            // Different seeds per rank: after joining, every rank holds rank 0's weights, branches and random state.
            using var trainer = new DiffusionTrainer(TinySetup.BackboneFor(m.Method), TinySetup.Options(m, seed: 10 + g.Rank));
            trainer.JoinDataParallel(g);
            using var scope = NewDisposeScope();
            double model = trainer.Model.parameters().Sum(p => p.abs().sum().item<float>());
            double branch = trainer.NoisyBranch!.parameters().Sum(p => p.abs().sum().item<float>());
            double draw = torch.rand(3, generator: trainer.Generator).sum().item<float>();
            return (model, branch, draw);
        });
        Assert.Equal(sums[0], sums[1]);
    }

    [Fact]
    public void RanksThatStandAtDifferentStepsAreAnError()
    {
        var m = MethodOptions.For(TrainingMethod.DiT);
        var (images, labels) = TinySetup.Data(4);
        var error = Assert.Throws<AggregateException>(() => ThreadProcessGroup.Run(ThreadProcessGroup.World(2), g =>
        {
            using var trainer = new DiffusionTrainer(TinySetup.BackboneFor(m.Method), TinySetup.Options(m));
            if (g.Rank == 1) trainer.Step(images, labels); // rank 1 is one step ahead
            trainer.JoinDataParallel(g);
            return 0;
        }));
        Assert.All(error.InnerExceptions, e => Assert.IsType<DistributedException>(e));
        Assert.Contains(error.InnerExceptions, e => e.Message.Contains("step 1 (rank 0: 0)"));
    }

    [Fact]
    public void AShardOfTheWrongSizeOrWithoutAJobIsAnError()
    {
        var m = MethodOptions.For(TrainingMethod.DiT);
        var (images, labels) = TinySetup.Data(4);
        using var trainer = new DiffusionTrainer(TinySetup.BackboneFor(m.Method), TinySetup.Options(m));
        var e = Assert.Throws<ArgumentException>(() => trainer.Step(images, labels, new BatchShard(8, 0, 2)));
        Assert.Contains("JoinDataParallel", e.Message);
        trainer.Step(images, labels, BatchShard.Whole(4)); // the whole batch is fine alone
        Assert.Equal(1, trainer.State.Step);
    }

    [Fact]
    public void GradientsGoInBucketsOfTheGivenSize()
    {
        var m = MethodOptions.For(TrainingMethod.DiT);
        var (images, labels) = TinySetup.Data(4);
        var result = ThreadProcessGroup.Run(ThreadProcessGroup.World(2), g =>
        {
            using var trainer = new DiffusionTrainer(TinySetup.BackboneFor(m.Method), TinySetup.Options(m));
            trainer.JoinDataParallel(g, bucketBytes: 16 << 10);
            var shard = trainer.DataParallel!.Shard(4);
            using var idx = shard.RowIndex();
            trainer.Step(images.index_select(0, idx), labels.index_select(0, idx), shard);
            return (trainer.DataParallel.LastBucketCount, trainer.DataParallel.LastGradientBytes, trainer.Model.ParameterCount(trainableOnly: true));
        });
        var (buckets, bytes, parameters) = result[0];
        Assert.Equal(parameters * 4, bytes);                    // every trainable parameter has a gradient here
        Assert.InRange(buckets, (int)(bytes / (16 << 10)), (int)(bytes / (16 << 10)) + 20);
    }
}
