using TorchSharp;
using static TorchSharp.torch;

namespace McDit.Torch.Distributed;

/// <summary>
/// How a training process joins a data-parallel job. The defaults read everything from the launcher's environment
/// (<c>mpirun</c> or torchrun-style variables, see <see cref="WorldInfo"/>) and pick the engine from the device: MPI for
/// CPU, NCCL for CUDA. A process started on its own trains alone, exactly as without these options.
/// </summary>
public sealed record DistributedOptions
{
    /// <summary>The engine; <see cref="DistributedBackend.Auto"/> by default.</summary>
    public DistributedBackend Backend { get; init; } = DistributedBackend.Auto;
    /// <summary>This process's rank; null takes it from the environment. Under mpirun it must equal MPI's.</summary>
    public int? Rank { get; init; }
    /// <summary>Number of processes; null takes it from the environment.</summary>
    public int? WorldSize { get; init; }
    /// <summary>Rank on this machine (the GPU index for "cuda"); null takes it from the environment (else 0).</summary>
    public int? LocalRank { get; init; }
    /// <summary>Rank 0's host for the NCCL id exchange over TCP; null takes MASTER_ADDR.</summary>
    public string? MasterAddress { get; init; }
    /// <summary>Rank 0's port for that exchange; null takes MASTER_PORT.</summary>
    public int? MasterPort { get; init; }
    /// <summary>
    /// How long one collective may wait for the other ranks before the job fails with a clear error (they also wait
    /// while rank 0 writes a checkpoint or a sample grid, so leave room for that). Default 5 minutes.
    /// </summary>
    public TimeSpan Timeout { get; init; } = TimeSpan.FromMinutes(5);

    /// <summary>The world: the environment's, with the values set here taking precedence.</summary>
    /// <exception cref="ArgumentException">A value is out of range (the message names it).</exception>
    public WorldInfo ResolveWorld(Func<string, string?>? variable = null)
    {
        var world = WorldInfo.FromEnvironment(variable);
        if (Rank is null && WorldSize is null && LocalRank is null && MasterAddress is null && MasterPort is null) return world;
        return (world with
        {
            Rank = Rank ?? world.Rank,
            WorldSize = WorldSize ?? world.WorldSize,
            LocalRank = LocalRank ?? world.LocalRank,
            MasterAddress = MasterAddress ?? world.MasterAddress ?? "127.0.0.1",
            MasterPort = MasterPort ?? world.MasterPort ?? 29500,
            Launcher = world.Launcher == "none" ? "options" : world.Launcher,
        }).Validated();
    }

    /// <summary>The engine these options give for a world and device: None for a single process under Auto.</summary>
    /// <exception cref="ArgumentException">The backend does not fit the device or the launcher.</exception>
    public DistributedBackend ResolveBackend(WorldInfo world, Device device)
    {
        if (Timeout <= TimeSpan.Zero)
            throw new ArgumentException($"Distributed timeout {Timeout} is invalid: expected a positive time.", nameof(Timeout));
        var backend = Backend;
        if (backend == DistributedBackend.Auto)
            backend = !world.IsDistributed ? DistributedBackend.None
                : device.type == DeviceType.CUDA ? DistributedBackend.Nccl : DistributedBackend.Mpi;
        if (backend == DistributedBackend.Mpi && device.type != DeviceType.CPU)
            throw new ArgumentException($"The MPI backend sums CPU tensors, but this rank trains on {device}; use the NCCL backend for CUDA (or Auto).");
        if (backend == DistributedBackend.Mpi && world.IsDistributed && !world.IsMpiLaunch)
            throw new ArgumentException(
                $"The MPI backend takes its world from mpirun, but this process was started by {world.Launcher} (rank {world.Rank} of {world.WorldSize}). " +
                "Start it with `mpirun -np N ...`, or train on CUDA with the NCCL backend, which also works with torchrun-style launchers.");
        if (backend == DistributedBackend.Nccl && device.type != DeviceType.CUDA)
            throw new ArgumentException($"The NCCL backend sums CUDA tensors, but this rank trains on {device}; use the MPI backend for CPU (or Auto).");
        return backend;
    }
}
