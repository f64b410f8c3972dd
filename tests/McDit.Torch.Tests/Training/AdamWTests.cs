using McDit.Torch.Training;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace McDit.Torch.Tests.Training;

public class AdamWTests
{
    [Fact]
    public void AParameterWithoutAGradientDoesNotMoveAndKeepsItsMoments()
    {
        // PyTorch's set_to_none: after ZeroGrad a parameter the backward pass does not reach has no gradient at all.
        using var used = torch.ones(3).requires_grad_(true);
        using var unused = torch.ones(3).requires_grad_(true);
        using var optimizer = new AdamW(new[] { ("used", used), ("unused", unused) }, learningRate: 0.1);
        (used * unused).sum().backward(); // step 1 reaches both
        optimizer.Step();
        var moments = optimizer.StateTensors();
        var (m, v, weight) = (moments["exp_avg.unused"].clone(), moments["exp_avg_sq.unused"].clone(), unused.detach().clone());
        for (int i = 0; i < 3; i++)
        {
            optimizer.ZeroGrad();
            Assert.Null(unused.grad);
            (used * 2).sum().backward(); // later steps reach only `used`
            optimizer.Step();
        }
        Assert.True(TestTensors.Same(weight, unused.detach()), "the unused parameter moved by momentum");
        Assert.True(TestTensors.Same(m, moments["exp_avg.unused"]), "its first moment changed");
        Assert.True(TestTensors.Same(v, moments["exp_avg_sq.unused"]), "its second moment changed");
        Assert.NotNull(used.grad);
    }
}
