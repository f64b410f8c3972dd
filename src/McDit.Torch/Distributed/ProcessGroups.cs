using McDit.Torch.Runtime;
using static TorchSharp.torch;

namespace McDit.Torch.Distributed;

/// <summary>Creates the process group that <see cref="DistributedOptions"/> and the launcher's environment describe.</summary>
public static class ProcessGroups
{
    /// <summary>
    /// The group for a rank that trains on <paramref name="device"/>, or null when the process trains alone
    /// (a world of one under <see cref="DistributedBackend.Auto"/>, or <see cref="DistributedBackend.None"/>).
    /// </summary>
    /// <exception cref="ArgumentException">The options do not fit the device or launcher.</exception>
    /// <exception cref="DistributedException">The engine is missing or the ranks could not connect.</exception>
    public static IProcessGroup? Create(DistributedOptions options, Device device)
    {
        ArgumentNullException.ThrowIfNull(options);
        var world = options.ResolveWorld();
        return options.ResolveBackend(world, device) switch
        {
            DistributedBackend.None => null,
            DistributedBackend.Mpi => MpiProcessGroup.Create(world, options.Timeout),
            DistributedBackend.Nccl => NcclProcessGroup.Create(world, device, options.Timeout),
            var other => throw new ArgumentOutOfRangeException(nameof(options), other, "Unknown distributed backend."),
        };
    }

    /// <summary>The same, for a device name (cpu, cuda, cuda:N, auto): "cuda" becomes cuda:LOCAL_RANK in a distributed job.</summary>
    public static IProcessGroup? Create(DistributedOptions options, string device) =>
        Create(options, TorchBackend.ResolveDevice(options.ResolveWorld().DeviceFor(device)));
}
