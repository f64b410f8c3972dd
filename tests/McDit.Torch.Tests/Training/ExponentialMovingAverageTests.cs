using McDit.Torch.Training;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace McDit.Torch.Tests.Training;

public class ExponentialMovingAverageTests
{
    static nn.Module Seeded(long seed)
    {
        torch.manual_seed(seed);
        // 300·257 weights: more than one chunk of the fused update, with a tail after the last full vector; bias 257.
        return nn.Linear(300, 257);
    }

    [Fact]
    public void TheFusedCpuUpdateAgreesWithLibtorchsOpsAndMovesTowardsTheSource()
    {
        using var source = Seeded(1);
        using var fused = Seeded(2);
        using var ops = Seeded(2);
        using var start = Seeded(2);
        var weights = ExponentialMovingAverage.NamedParameters(source);
        for (int i = 0; i < 4; i++)
        {
            ExponentialMovingAverage.Update(fused, weights, 0.9, fusedCpu: true);
            ExponentialMovingAverage.Update(ops, weights, 0.9, fusedCpu: false);
        }
        var before = ExponentialMovingAverage.NamedParameters(start);
        foreach (var (name, p) in ExponentialMovingAverage.NamedParameters(fused))
        {
            var q = ExponentialMovingAverage.NamedParameters(ops)[name];
            double error = TestTensors.RelativeError(p.detach(), q.detach());
            Assert.True(error < 1e-6, $"{name}: relative difference {error:E2} between the fused and the element-wise EMA");
            // After 4 updates at 0.9 the EMA holds 0.9^4 of its start and 1 - 0.9^4 of the source.
            using var expected = before[name].detach() * Math.Pow(0.9, 4) + weights[name].detach() * (1 - Math.Pow(0.9, 4));
            Assert.True(TestTensors.RelativeError(p.detach(), expected) < 1e-5, $"{name} is not the moving average");
        }
    }
}
