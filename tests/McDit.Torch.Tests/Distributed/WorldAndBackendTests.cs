using McDit.Torch.Distributed;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace McDit.Torch.Tests.Distributed;

/// <summary>The world from launchers' environments, the engine choice, and the NCCL backend's errors without NCCL.</summary>
public sealed class WorldAndBackendTests
{
    static Func<string, string?> Env(params (string Name, string Value)[] variables)
    {
        var map = variables.ToDictionary(v => v.Name, v => v.Value);
        return name => map.TryGetValue(name, out var v) ? v : null;
    }

    [Fact]
    public void MpirunsVariablesGiveTheWorld()
    {
        var world = WorldInfo.FromEnvironment(Env(("OMPI_COMM_WORLD_RANK", "3"), ("OMPI_COMM_WORLD_SIZE", "8"), ("OMPI_COMM_WORLD_LOCAL_RANK", "1")));
        Assert.Equal(new WorldInfo(3, 8, 1, "mpirun"), world);
        Assert.True(world.IsDistributed && world.IsMpiLaunch && !world.IsMain);
        Assert.Equal("cuda:1", world.DeviceFor("cuda"));
        Assert.Equal("cuda:0", world.DeviceFor("cuda:0"));
        Assert.Equal("cpu", world.DeviceFor("cpu"));
    }

    [Fact]
    public void TorchrunStyleVariablesGiveTheWorldAndTheRendezvous()
    {
        var world = WorldInfo.FromEnvironment(Env(("RANK", "5"), ("WORLD_SIZE", "16"), ("LOCAL_RANK", "5"), ("MASTER_ADDR", "node0"), ("MASTER_PORT", "29400")));
        Assert.Equal(new WorldInfo(5, 16, 5, "torchrun", "node0", 29400), world);
        var defaults = WorldInfo.FromEnvironment(Env(("RANK", "0"), ("WORLD_SIZE", "2")));
        Assert.Equal(("127.0.0.1", 29500, 0), (defaults.MasterAddress, defaults.MasterPort!.Value, defaults.LocalRank));
    }

    [Fact]
    public void WithoutALauncherTheProcessIsAWorldOfOne()
    {
        var world = WorldInfo.FromEnvironment(Env());
        Assert.Equal(WorldInfo.Single, world);
        Assert.Equal("cuda", world.DeviceFor("cuda"));
        Assert.Equal(DistributedBackend.None, new DistributedOptions().ResolveBackend(world, torch.CPU));
    }

    [Theory]
    [InlineData("RANK", "two", "RANK='two' is not an integer")]
    [InlineData("RANK", "4", "Rank 4 (torchrun) is invalid: expected 0..3")]
    [InlineData("MASTER_PORT", "70000", "MASTER_PORT 70000")]
    public void BadVariablesAreNamed(string name, string value, string expected)
    {
        var variables = new Dictionary<string, string> { ["RANK"] = "1", ["WORLD_SIZE"] = "4", ["MASTER_PORT"] = "29500" };
        variables[name] = value;
        var e = Assert.Throws<ArgumentException>(() => WorldInfo.FromEnvironment(n => variables.TryGetValue(n, out var v) ? v : null));
        Assert.Contains(expected, e.Message);
    }

    [Fact]
    public void AMissingRankIsNamed()
    {
        var e = Assert.Throws<ArgumentException>(() => WorldInfo.FromEnvironment(Env(("WORLD_SIZE", "2"))));
        Assert.Contains("RANK is not set", e.Message);
    }

    [Fact]
    public void OptionsOverrideTheEnvironment()
    {
        var options = new DistributedOptions { Rank = 1, WorldSize = 2, MasterPort = 1234 };
        var world = options.ResolveWorld(Env());
        Assert.Equal(new WorldInfo(1, 2, 0, "options", "127.0.0.1", 1234), world);
    }

    [Fact]
    public void AutoPicksMpiForCpuAndNcclForCuda()
    {
        var mpirun = new WorldInfo(0, 2, 0, "mpirun");
        Assert.Equal(DistributedBackend.Mpi, new DistributedOptions().ResolveBackend(mpirun, torch.CPU));
        Assert.Equal(DistributedBackend.Nccl, new DistributedOptions().ResolveBackend(mpirun, new Device(DeviceType.CUDA, 0)));
        Assert.Equal(DistributedBackend.None, new DistributedOptions { Backend = DistributedBackend.None }.ResolveBackend(mpirun, torch.CPU));
    }

    [Fact]
    public void BackendsThatDoNotFitTheDeviceOrLauncherAreErrors()
    {
        var torchrun = new WorldInfo(0, 2, 0, "torchrun", "127.0.0.1", 29500);
        var e1 = Assert.Throws<ArgumentException>(() => new DistributedOptions().ResolveBackend(torchrun, torch.CPU));
        Assert.Contains("mpirun -np N", e1.Message);
        var e2 = Assert.Throws<ArgumentException>(() => new DistributedOptions { Backend = DistributedBackend.Nccl }.ResolveBackend(torchrun, torch.CPU));
        Assert.Contains("NCCL backend sums CUDA tensors", e2.Message);
        var e3 = Assert.Throws<ArgumentException>(() => new DistributedOptions { Backend = DistributedBackend.Mpi }.ResolveBackend(new WorldInfo(0, 2, 0, "mpirun"), new Device(DeviceType.CUDA, 0)));
        Assert.Contains("MPI backend sums CPU tensors", e3.Message);
        var e4 = Assert.Throws<ArgumentException>(() => new DistributedOptions { Timeout = TimeSpan.Zero }.ResolveBackend(torchrun, torch.CPU));
        Assert.Contains("timeout", e4.Message);
    }

    [Fact]
    public void TheNcclBackendSaysWhatIsMissing()
    {
        // No GPU here: either libnccl.so.2 is absent (the usual case on CPU machines) or CUDA itself fails; both are named.
        var previous = Environment.GetEnvironmentVariable(NcclNative.LibraryVariable);
        Environment.SetEnvironmentVariable(NcclNative.LibraryVariable, "/no/such/libnccl.so.2");
        try
        {
            var e = Assert.Throws<DistributedException>(() =>
                NcclProcessGroup.Create(new WorldInfo(0, 1, 0, "options"), new Device(DeviceType.CUDA, 0), TimeSpan.FromSeconds(5)));
            if (!McDit.Torch.Runtime.TorchBackend.CudaAvailable)
                Assert.True(e.Message.Contains("libnccl.so.2") || e.Message.Contains("CUDA"), e.Message);
        }
        finally
        {
            Environment.SetEnvironmentVariable(NcclNative.LibraryVariable, previous);
        }
        var cpu = Assert.Throws<DistributedException>(() => NcclProcessGroup.Create(WorldInfo.Single, torch.CPU, TimeSpan.FromSeconds(1)));
        Assert.Contains("CUDA tensors", cpu.Message);
    }
}
