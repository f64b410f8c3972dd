using System.Globalization;

namespace McDit.Torch.Distributed;

/// <summary>
/// Where this process stands in a job, as its launcher says: <c>mpirun</c> sets OMPI_COMM_WORLD_RANK, _SIZE and
/// _LOCAL_RANK; torchrun-style launchers set RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT. Without either
/// the process is a world of one.
/// </summary>
/// <param name="Rank">This process's rank in the job.</param>
/// <param name="WorldSize">Number of processes in the job.</param>
/// <param name="LocalRank">Rank among the processes on this machine (selects the GPU).</param>
/// <param name="Launcher">"mpirun", "torchrun" (the RANK/WORLD_SIZE convention), "options" or "none".</param>
/// <param name="MasterAddress">Host of rank 0 for the NCCL id exchange over TCP (MASTER_ADDR).</param>
/// <param name="MasterPort">Port of rank 0 for that exchange (MASTER_PORT).</param>
public sealed record WorldInfo(int Rank, int WorldSize, int LocalRank, string Launcher, string? MasterAddress = null, int? MasterPort = null)
{
    /// <summary>A single process.</summary>
    public static WorldInfo Single { get; } = new(0, 1, 0, "none");

    /// <summary>True when the job has more than one process.</summary>
    public bool IsDistributed => WorldSize > 1;

    /// <summary>True for rank 0, the one that writes checkpoints, grids, metrics and models.</summary>
    public bool IsMain => Rank == 0;

    /// <summary>True when mpirun started the job (OpenMPI's variables are set).</summary>
    public bool IsMpiLaunch => Launcher == "mpirun";

    /// <summary>Reads the launcher's variables (from <paramref name="variable"/>, by default the process environment).</summary>
    /// <exception cref="ArgumentException">A variable is not an integer or is out of range; the message names it.</exception>
    public static WorldInfo FromEnvironment(Func<string, string?>? variable = null)
    {
        variable ??= Environment.GetEnvironmentVariable;
        WorldInfo world;
        if (variable("OMPI_COMM_WORLD_SIZE") is not null)
            world = new WorldInfo(
                Integer(variable, "OMPI_COMM_WORLD_RANK", null), Integer(variable, "OMPI_COMM_WORLD_SIZE", null),
                Integer(variable, "OMPI_COMM_WORLD_LOCAL_RANK", 0), "mpirun",
                variable("MASTER_ADDR"), variable("MASTER_PORT") is null ? null : Integer(variable, "MASTER_PORT", null));
        else if (variable("WORLD_SIZE") is not null)
            world = new WorldInfo(
                Integer(variable, "RANK", null), Integer(variable, "WORLD_SIZE", null), Integer(variable, "LOCAL_RANK", 0), "torchrun",
                variable("MASTER_ADDR") ?? "127.0.0.1", Integer(variable, "MASTER_PORT", 29500));
        else
            return Single;
        return world.Validated();
    }

    /// <summary>Checks rank, size and port; throws naming the bad value.</summary>
    public WorldInfo Validated()
    {
        if (WorldSize < 1) throw new ArgumentException($"World size {WorldSize} ({Launcher}) is invalid: expected at least 1 process.");
        if (Rank < 0 || Rank >= WorldSize) throw new ArgumentException($"Rank {Rank} ({Launcher}) is invalid: expected 0..{WorldSize - 1} for a world of {WorldSize}.");
        if (LocalRank < 0) throw new ArgumentException($"Local rank {LocalRank} ({Launcher}) is invalid: expected ≥ 0.");
        if (MasterPort is { } port && (port < 1 || port > 65535)) throw new ArgumentException($"MASTER_PORT {port} ({Launcher}) is invalid: expected 1..65535.");
        return this;
    }

    /// <summary>
    /// The device this rank trains on: "cuda" and "auto" (when CUDA is used) become cuda:LOCAL_RANK in a distributed job,
    /// so the processes of one machine take one GPU each; an explicit index is kept.
    /// </summary>
    public string DeviceFor(string device)
    {
        if (!IsDistributed) return device;
        var d = device.Trim().ToLowerInvariant();
        return d == "cuda" || (d == "auto" && McDit.Torch.Runtime.TorchBackend.CudaAvailable) ? $"cuda:{LocalRank}" : device;
    }

    static int Integer(Func<string, string?> variable, string name, int? fallback)
    {
        var text = variable(name);
        if (text is null)
            return fallback ?? throw new ArgumentException($"Environment variable {name} is not set; the launcher sets it with the others of its kind (mpirun: OMPI_COMM_WORLD_*, torchrun: RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT).");
        if (!int.TryParse(text.Trim(), NumberStyles.Integer, CultureInfo.InvariantCulture, out int value))
            throw new ArgumentException($"Environment variable {name}='{text}' is not an integer.");
        return value;
    }
}
