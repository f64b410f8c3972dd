namespace McDit.Torch.Distributed;

/// <summary>Which engine carries the collectives of a data-parallel job.</summary>
public enum DistributedBackend
{
    /// <summary>Distributed when the launcher's environment says the world has more than one process: MPI for CPU, NCCL for CUDA.</summary>
    Auto,
    /// <summary>Never distributed: each process trains on its own.</summary>
    None,
    /// <summary>OpenMPI (libmpi.so.40) for CPU tensors; the job is started with mpirun.</summary>
    Mpi,
    /// <summary>NCCL (libnccl.so.2) for CUDA tensors; started with mpirun or a torchrun-style launcher.</summary>
    Nccl,
}
