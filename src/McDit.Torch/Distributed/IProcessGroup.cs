using TorchSharp;
using static TorchSharp.torch;

namespace McDit.Torch.Distributed;

/// <summary>
/// The ranks of one data-parallel job and the three collectives data parallelism needs. Every collective is issued
/// by every rank in the same order; none waits longer than <see cref="Timeout"/>: a rank that died or stalled makes
/// the others fail with a <see cref="DistributedException"/> naming the operation, instead of hanging.
/// </summary>
/// <remarks>
/// Implementations: <see cref="MpiProcessGroup"/> (OpenMPI, CPU tensors) and <see cref="NcclProcessGroup"/>
/// (NCCL, CUDA tensors). Tensors must be contiguous and live on the group's kind of device; they are changed in place.
/// </remarks>
public interface IProcessGroup : IDisposable
{
    /// <summary>This process's rank, 0 … <see cref="WorldSize"/> − 1. Rank 0 writes checkpoints, grids and metrics.</summary>
    int Rank { get; }
    /// <summary>Number of processes in the job.</summary>
    int WorldSize { get; }
    /// <summary>This process's rank among those on its machine (picks its GPU).</summary>
    int LocalRank { get; }
    /// <summary>"mpi" or "nccl".</summary>
    string Backend { get; }
    /// <summary>How long one collective may take before it fails.</summary>
    TimeSpan Timeout { get; }
    /// <summary>The device whose tensors the collectives take (cpu for MPI, this rank's GPU for NCCL).</summary>
    Device Device { get; }

    /// <summary>
    /// Sums each tensor over all ranks, in place (float32 or float64). All tensors of the call are in flight at once
    /// (one collective each: callers pass buckets, not thousands of small tensors).
    /// </summary>
    void AllReduceSum(IReadOnlyList<Tensor> tensors);

    /// <summary>Copies each tensor of rank <paramref name="root"/> into the same tensor of every other rank (any dtype).</summary>
    void Broadcast(IReadOnlyList<Tensor> tensors, int root = 0);

    /// <summary>Returns when every rank has called it.</summary>
    void Barrier();

    /// <summary>
    /// Ends this rank's part of the job after a failure it cannot recover from, so that the other ranks stop instead of
    /// waiting for it: prints <paramref name="reason"/> on stderr, then MPI aborts the whole job (mpirun stops every rank;
    /// the call does not return) and NCCL aborts its communicator (the launcher stops the others when this process exits).
    /// </summary>
    void Abort(string reason);
}
