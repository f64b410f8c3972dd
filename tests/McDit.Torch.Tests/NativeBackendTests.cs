using McDit.Torch.Runtime;
using TorchSharp;
using Xunit;

namespace McDit.Torch.Tests;

public class NativeBackendTests
{
    [Fact]
    public void NativeBackendLoadsAndComputes()
    {
        TorchBackend.EnsureInitialized();
        using var a = torch.arange(6, dtype: torch.float32).reshape(2, 3);
        using var b = torch.ones(3, 2);
        using var c = a.matmul(b);
        Assert.Equal(new[] { 3f, 3f, 12f, 12f }, c.data<float>().ToArray());
        using var x = torch.randn(2, 4, 8, 16, requires_grad: true);
        using var att = torch.nn.functional.scaled_dot_product_attention(x, x, x);
        using var loss = att.sum();
        loss.backward();
        Assert.Equal(new long[] { 2, 4, 8, 16 }, x.grad!.shape);
    }

    [Theory]
    [InlineData("cpu")]
    [InlineData("CPU")]
    [InlineData(" auto ")]
    [InlineData(null)]
    public void CpuAndAutoResolveWithoutAGpu(string? name)
    {
        if (TorchBackend.CudaAvailable) return; // this test describes a machine without a GPU
        Assert.Equal(DeviceType.CPU, TorchBackend.ResolveDevice(name).type);
    }

    [Theory]
    [InlineData("cuda")]
    [InlineData("cuda:1")]
    public void CudaWithoutAGpuSaysHowToGetIt(string name)
    {
        if (TorchBackend.CudaAvailable) return;
        var e = Assert.Throws<InvalidOperationException>(() => TorchBackend.ResolveDevice(name));
        Assert.Contains("LIBTORCH_DIR", e.Message);
        Assert.Contains(name, e.Message);
    }

    [Theory]
    [InlineData("gpu")]
    [InlineData("cuda:x")]
    [InlineData("cuda:-1")]
    public void BadDeviceNamesAreRejected(string name)
    {
        var e = Assert.Throws<ArgumentException>(() => TorchBackend.ResolveDevice(name));
        Assert.Contains("cpu, cuda, cuda:N", e.Message);
    }
}
