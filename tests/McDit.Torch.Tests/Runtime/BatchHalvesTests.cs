using McDit.Torch.Diffusion;
using McDit.Torch.Runtime;
using McDit.Torch.Tests.Training;
using McDit.Torch.Training;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace McDit.Torch.Tests.Runtime;

// The tests of one class run one after another, so switching BatchHalves.Enabled here races with no other test of it;
// the other test classes run at one thread, where batches are never split.
public class BatchHalvesTests
{
    // Runs the body at 2 libtorch threads on this thread (the test process runs at 1), so batches split into halves.
    static T AtTwoThreads<T>(Func<T> body)
    {
        torch.set_num_threads(2);
        try { return body(); }
        finally { torch.set_num_threads(1); }
    }

    static Tensor TrainThreeSteps(MethodOptions method, bool halves)
    {
        var (images, labels) = TinySetup.Data(9); // odd: the halves hold 5 and 4 rows
        bool enabled = BatchHalves.Enabled;
        BatchHalves.Enabled = halves;
        try
        {
            using var trainer = new DiffusionTrainer(TinySetup.BackboneFor(method.Method), TinySetup.Options(method));
            for (int i = 0; i < 3; i++) trainer.Step(images, labels);
            using var _ = no_grad();
            return torch.cat(trainer.Model.parameters().Select(p => p.detach().reshape(-1)).ToArray());
        }
        finally
        {
            BatchHalves.Enabled = enabled;
            images.Dispose(); labels.Dispose();
        }
    }

    [Theory]
    [MemberData(nameof(TinySetup.AllMethods), MemberType = typeof(TinySetup))]
    public void TrainingInHalvesMatchesTheWholeBatchAndRepeatsBitForBit(string name, MethodOptions method)
    {
        long runsBefore = Interlocked.Read(ref BatchHalves.Runs);
        using var halves = AtTwoThreads(() => TrainThreeSteps(method, halves: true));
        Assert.True(Interlocked.Read(ref BatchHalves.Runs) >= runsBefore + 3, $"{name}: the steps did not run in halves");
        using var again = AtTwoThreads(() => TrainThreeSteps(method, halves: true));
        using var whole = AtTwoThreads(() => TrainThreeSteps(method, halves: false));
        Assert.True(TestTensors.Same(halves, again), $"{name}: two runs in halves differ");
        double error = TestTensors.RelativeError(halves, whole);
        Assert.True(error < 1e-5, $"{name}: weights after 3 steps in halves differ from the whole batch's by {error:E2} (relative)");
    }

    [Fact]
    public void SamplingInHalvesMatchesTheWholeBatch()
    {
        var method = MethodOptions.For(TrainingMethod.McDiT);
        var (images, labels) = TinySetup.Data(8);
        using var trainer = new DiffusionTrainer(TinySetup.Backbone(), TinySetup.Options(method));
        trainer.Step(images, labels);
        var sampler = new SamplerOptions { Steps = 4, GuidanceScale = 2 };
        int[] classes = { 0, 1, 2, 0, 1 };
        long runsBefore = Interlocked.Read(ref BatchHalves.Runs);
        using var inHalves = AtTwoThreads(() => trainer.Generate(classes, 5, seed: 3, sampler));
        Assert.True(Interlocked.Read(ref BatchHalves.Runs) > runsBefore, "sampling did not run in halves");
        BatchHalves.Enabled = false;
        Tensor whole;
        try { whole = AtTwoThreads(() => trainer.Generate(classes, 5, seed: 3, sampler)); }
        finally { BatchHalves.Enabled = true; }
        using (whole)
            Assert.True(TestTensors.RelativeError(inHalves, whole) < 1e-5, $"relative error {TestTensors.RelativeError(inHalves, whole):E2}");
        images.Dispose(); labels.Dispose();
    }

    [Fact]
    public void AStepInHalvesLeavesNoLiveTensorsOnAnyThread()
    {
        var method = MethodOptions.For(TrainingMethod.McDiT);
        var (images, labels) = TinySetup.Data(8);
        AtTwoThreads(() =>
        {
            using var trainer = new DiffusionTrainer(TinySetup.Backbone(), TinySetup.Options(method));
            trainer.Step(images, labels);
            trainer.Step(images, labels);
            var halves = BatchHalves.For(torch.CPU, 8)!;
            var before = new long[2];
            var after = new long[2];
            halves.Run(which => before[which] = DisposeScopeManager.Statistics.ThreadTotalLiveCount);
            long callerBefore = DisposeScopeManager.Statistics.ThreadTotalLiveCount;
            for (int i = 0; i < 3; i++) trainer.Step(images, labels);
            halves.Run(which => after[which] = DisposeScopeManager.Statistics.ThreadTotalLiveCount);
            Assert.Equal(callerBefore, DisposeScopeManager.Statistics.ThreadTotalLiveCount);
            Assert.Equal(before, after);
            return 0;
        });
        images.Dispose(); labels.Dispose();
    }

    [Fact]
    public void AnErrorInAHalfReachesTheCallerAndTheHalvesStayUsable()
    {
        AtTwoThreads(() =>
        {
            var halves = BatchHalves.For(torch.CPU, 4)!;
            var e = Assert.Throws<ArgumentException>(() => halves.Run(which =>
            {
                if (which == 1) throw new ArgumentException("half 1 failed");
            }));
            Assert.Equal("half 1 failed", e.Message);
            using var x = torch.arange(6, dtype: ScalarType.Float32);
            using var doubled = halves.MapRows(6, (start, count) => x.narrow(0, start, count) * 2);
            Assert.Equal(new float[] { 0, 2, 4, 6, 8, 10 }, doubled.data<float>().ToArray());
            return 0;
        });
    }

    [Fact]
    public void BatchesStayWholeAtOneThreadOnOneRowAndInsideAHalf()
    {
        Assert.Null(BatchHalves.For(torch.CPU, 16)); // the test process runs at one thread
        AtTwoThreads(() =>
        {
            Assert.Null(BatchHalves.For(torch.CPU, 1));
            var halves = BatchHalves.For(torch.CPU, 16)!;
            var nested = new BatchHalves?[2];
            halves.Run(which => nested[which] = BatchHalves.For(torch.CPU, 16));
            Assert.All(nested, Assert.Null);
            Assert.Equal((0, 3), BatchHalves.Half(5, 0));
            Assert.Equal((3, 2), BatchHalves.Half(5, 1));
            return 0;
        });
    }
}
