using McDit.Torch.Runtime;
using System.Diagnostics;
using TorchSharp;
using static TorchSharp.torch;

namespace McDit.Torch.Distributed;

/// <summary>
/// Data-parallel collectives over OpenMPI (libmpi.so.40) for CPU tensors, in MPI_COMM_WORLD: the job is whatever
/// <c>mpirun -np N</c> started. Every collective is non-blocking (MPI_Iallreduce, MPI_Ibcast, MPI_Ibarrier) and polled
/// with MPI_Test, so a rank that died or stalled makes the others fail after <see cref="Timeout"/> with a
/// <see cref="DistributedException"/> instead of hanging.
/// </summary>
/// <remarks>
/// MPI is initialised once per process (MPI_THREAD_SERIALIZED: any thread, one call at a time) and finalised at process
/// exit; after a failure (a timeout, or <see cref="Abort"/>) the process ends the whole job with MPI_Abort instead, since
/// MPI_Finalize would wait for the rank that is gone.
/// </remarks>
public sealed class MpiProcessGroup : IProcessGroup
{
    static readonly object Gate = new();
    static bool _initializedHere;
    static volatile bool _failed;

    readonly object _callGate = new();

    /// <inheritdoc />
    public int Rank { get; }
    /// <inheritdoc />
    public int WorldSize { get; }
    /// <inheritdoc />
    public int LocalRank { get; }
    /// <inheritdoc />
    public string Backend => "mpi";
    /// <inheritdoc />
    public TimeSpan Timeout { get; }
    /// <inheritdoc />
    public Device Device => torch.CPU;

    MpiProcessGroup(int rank, int size, int localRank, TimeSpan timeout)
    {
        Rank = rank; WorldSize = size; LocalRank = localRank; Timeout = timeout;
    }

    /// <summary>
    /// Joins MPI_COMM_WORLD (initialising MPI on first use). <paramref name="world"/> is what the launcher's environment
    /// says; MPI's own rank and size must agree with it.
    /// </summary>
    /// <exception cref="DistributedException">OpenMPI is missing, or MPI's world differs from <paramref name="world"/>.</exception>
    public static MpiProcessGroup Create(WorldInfo world, TimeSpan timeout)
    {
        if (timeout <= TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(timeout), timeout, "The collective timeout must be positive.");
        EnsureInitialized();
        MpiNative.Check(MpiNative.CommRank(MpiNative.CommWorld, out int rank), "MPI_Comm_rank");
        MpiNative.Check(MpiNative.CommSize(MpiNative.CommWorld, out int size), "MPI_Comm_size");
        if (rank != world.Rank || size != world.WorldSize)
            throw new DistributedException(
                $"MPI says this is rank {rank} of {size}, but the settings say rank {world.Rank} of {world.WorldSize} ({world.Launcher}). " +
                "Start the job with `mpirun -np N` and leave Rank/WorldSize unset (they come from mpirun).");
        return new MpiProcessGroup(rank, size, world.LocalRank, timeout);
    }

    static void EnsureInitialized()
    {
        lock (Gate)
        {
            MpiNative.Load();
            MpiNative.Check(MpiNative.Initialized(out int initialized), "MPI_Initialized");
            if (initialized != 0) return;
            MpiNative.Check(MpiNative.InitThread(IntPtr.Zero, IntPtr.Zero, MpiNative.ThreadSerialized, out int provided), "MPI_Init_thread");
            _initializedHere = true;
            if (provided < MpiNative.ThreadSerialized)
                throw new DistributedException($"OpenMPI provides thread level {provided}; McDit needs MPI_THREAD_SERIALIZED ({MpiNative.ThreadSerialized}).");
            AppDomain.CurrentDomain.ProcessExit += (_, _) => Shutdown();
        }
    }

    static void Shutdown()
    {
        lock (Gate)
        {
            if (!_initializedHere) return;
            _initializedHere = false;
            if (MpiNative.Finalized(out int finalized) != 0 || finalized != 0) return;
            if (_failed) MpiNative.Abort(MpiNative.CommWorld, 1); // the other ranks may be gone: Finalize would wait for them
            else MpiNative.Finalize();
        }
    }

    /// <inheritdoc />
    public void AllReduceSum(IReadOnlyList<Tensor> tensors)
    {
        var pending = new List<IntPtr>();
        lock (_callGate)
        {
            CheckUsable("all-reduce");
            foreach (var t in tensors)
            {
                CheckCpu(t, "all-reduce");
                var type = t.dtype switch
                {
                    ScalarType.Float32 => MpiNative.Float,
                    ScalarType.Float64 => MpiNative.Double,
                    _ => throw new ArgumentException($"MPI all-reduce sums float32 or float64 tensors; got {t.dtype}.", nameof(tensors)),
                };
                var start = TensorMemory.Pointer(t, "MPI all-reduce");
                foreach (var (offset, count) in TensorMemory.Pieces(t.numel()))
                {
                    MpiNative.Check(MpiNative.Iallreduce(MpiNative.InPlace, start + (nint)(offset * t.element_size()), count, type, MpiNative.Sum,
                        MpiNative.CommWorld, out var request), "MPI_Iallreduce");
                    pending.Add(request);
                }
            }
            Wait(pending, $"all-reduce of {tensors.Count} tensor(s), {tensors.Sum(t => t.numel() * t.element_size()):N0} bytes");
        }
    }

    /// <inheritdoc />
    public void Broadcast(IReadOnlyList<Tensor> tensors, int root = 0)
    {
        if (root < 0 || root >= WorldSize) throw new ArgumentOutOfRangeException(nameof(root), root, $"The root must be a rank in 0..{WorldSize - 1}.");
        var pending = new List<IntPtr>();
        lock (_callGate)
        {
            CheckUsable("broadcast");
            foreach (var t in tensors)
            {
                CheckCpu(t, "broadcast");
                var start = TensorMemory.Pointer(t, "MPI broadcast");
                foreach (var (offset, count) in TensorMemory.Pieces(t.numel() * t.element_size()))
                {
                    MpiNative.Check(MpiNative.Ibcast(start + (nint)offset, count, MpiNative.Byte, root, MpiNative.CommWorld, out var request), "MPI_Ibcast");
                    pending.Add(request);
                }
            }
            Wait(pending, $"broadcast from rank {root} of {tensors.Count} tensor(s), {tensors.Sum(t => t.numel() * t.element_size()):N0} bytes");
        }
    }

    /// <inheritdoc />
    public void Barrier()
    {
        lock (_callGate)
        {
            CheckUsable("barrier");
            MpiNative.Check(MpiNative.Ibarrier(MpiNative.CommWorld, out var request), "MPI_Ibarrier");
            Wait(new List<IntPtr> { request }, "barrier");
        }
    }

    /// <summary>
    /// Ends the whole job because this rank cannot go on: prints <paramref name="reason"/> on stderr and calls MPI_Abort,
    /// which makes mpirun stop every rank (the others would otherwise wait for this one until their timeout).
    /// </summary>
    public void Abort(string reason)
    {
        _failed = true;
        Console.Error.WriteLine($"McDit rank {Rank} of {WorldSize} (mpi): {reason}");
        Console.Error.WriteLine($"McDit rank {Rank}: aborting the MPI job.");
        Console.Error.Flush();
        MpiNative.Abort(MpiNative.CommWorld, 1);
    }

    // Polls the requests: MPI_Test drives OpenMPI's progress. It spins (yielding the core) while data is likely in
    // motion, then sleeps a millisecond between tests, so a rank waiting for a slower one leaves the CPU to it.
    void Wait(List<IntPtr> requests, string what)
    {
        var clock = Stopwatch.StartNew();
        var spinUntil = TimeSpan.FromMilliseconds(20);
        for (int i = 0; i < requests.Count;)
        {
            var request = requests[i];
            MpiNative.Check(MpiNative.Test(ref request, out int done, IntPtr.Zero), "MPI_Test");
            requests[i] = request;
            if (done != 0) { i++; continue; }
            if (clock.Elapsed > Timeout)
            {
                _failed = true;
                throw new DistributedException(
                    $"Rank {Rank} of {WorldSize} (mpi): {what} did not complete within {Timeout.TotalSeconds:0.#} s. Another rank has died, " +
                    "stalled or issued different collectives (check its output); the job cannot continue. Raise the timeout " +
                    "(--distributed-timeout, DistributedOptions.Timeout) if a rank is legitimately slow, e.g. while writing a large checkpoint.");
            }
            if (clock.Elapsed < spinUntil) Thread.Yield();
            else Thread.Sleep(1);
        }
    }

    void CheckUsable(string operation)
    {
        if (_failed)
            throw new DistributedException($"Rank {Rank} of {WorldSize} (mpi): cannot {operation}: an earlier collective of this job failed.");
    }

    static void CheckCpu(Tensor t, string operation)
    {
        if (t.device_type != DeviceType.CPU)
            throw new ArgumentException($"The MPI backend's {operation} takes CPU tensors; got one on {t.device}. Use the NCCL backend for CUDA tensors.");
    }

    /// <summary>Leaves MPI initialised (it is finalised at process exit, so later groups can join the same world).</summary>
    public void Dispose() { }
}
