using McDit.Torch.Runtime;
using System.Diagnostics;
using TorchSharp;
using static TorchSharp.torch;

namespace McDit.Torch.Distributed;

/// <summary>
/// Data-parallel collectives over NCCL (libnccl.so.2, as shipped with CUDA builds of PyTorch) for CUDA tensors of one
/// device per rank. Rank 0's ncclUniqueId reaches the others through MPI when mpirun started the job, otherwise
/// through <see cref="TcpRendezvous"/> at MASTER_ADDR:MASTER_PORT.
/// </summary>
/// <remarks>
/// <para>Stream: TorchSharp 0.107 exposes no CUDA stream API, and every kernel it launches runs on the device's default
/// (legacy NULL) stream, so the collectives are issued on that stream too: they start after the backward pass that
/// made the gradients and finish before the optimizer reads them, with no extra synchronisation. Completion is polled
/// with cudaStreamQuery and ncclCommGetAsyncError; past <see cref="Timeout"/> the communicator is aborted and a
/// <see cref="DistributedException"/> is thrown.</para>
/// <para>ncclCommInitRank itself blocks until all ranks have joined; the id exchange before it is bounded by the timeout.</para>
/// <para>Not run on a GPU in the session that wrote it (no GPU there): it compiles, and the id exchange, the search for
/// the library and the errors without it are tested on CPU.</para>
/// </remarks>
public sealed class NcclProcessGroup : IProcessGroup
{
    static readonly IntPtr DefaultStream = IntPtr.Zero;
    readonly object _callGate = new();
    readonly int _deviceIndex;
    IntPtr _comm;
    bool _failed;

    /// <inheritdoc />
    public int Rank { get; }
    /// <inheritdoc />
    public int WorldSize { get; }
    /// <inheritdoc />
    public int LocalRank { get; }
    /// <inheritdoc />
    public string Backend => "nccl";
    /// <inheritdoc />
    public TimeSpan Timeout { get; }
    /// <inheritdoc />
    public Device Device => new(DeviceType.CUDA, _deviceIndex);
    /// <summary>NCCL's version code (e.g. 22703 for 2.27.3).</summary>
    public int NcclVersion => NcclNative.Version;

    NcclProcessGroup(IntPtr comm, int rank, int size, int localRank, int deviceIndex, TimeSpan timeout)
    {
        _comm = comm; Rank = rank; WorldSize = size; LocalRank = localRank; _deviceIndex = deviceIndex; Timeout = timeout;
    }

    /// <summary>Creates this rank's NCCL communicator on <paramref name="device"/> (a CUDA device, one per rank).</summary>
    /// <exception cref="DistributedException">libnccl or the CUDA runtime is missing, or the id exchange failed.</exception>
    public static NcclProcessGroup Create(WorldInfo world, Device device, TimeSpan timeout)
    {
        if (device.type != DeviceType.CUDA)
            throw new DistributedException($"The NCCL backend works on CUDA tensors; this rank's device is {device}. Use the MPI backend for CPU training.");
        if (timeout <= TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(timeout), timeout, "The collective timeout must be positive.");
        NcclNative.Load();
        int index = device.index < 0 ? 0 : device.index;
        NcclNative.CheckCuda(NcclNative.CudaSetDevice(index), $"cudaSetDevice({index})");
        var id = ExchangeUniqueId(world, timeout);
        NcclNative.Check(NcclNative.CommInitRank(out var comm, world.WorldSize, id, world.Rank), $"ncclCommInitRank(rank {world.Rank} of {world.WorldSize})");
        return new NcclProcessGroup(comm, world.Rank, world.WorldSize, world.LocalRank, index, timeout);
    }

    /// <summary>Rank 0 makes the id; it reaches the others through MPI (under mpirun) or TCP (MASTER_ADDR/MASTER_PORT).</summary>
    static NcclUniqueId ExchangeUniqueId(WorldInfo world, TimeSpan timeout)
    {
        var id = new NcclUniqueId();
        if (world.Rank == 0) NcclNative.Check(NcclNative.GetUniqueId(out id), "ncclGetUniqueId");
        byte[] bytes = new byte[NcclUniqueId.Size];
        ((ReadOnlySpan<byte>)id).CopyTo(bytes);
        if (world.WorldSize == 1) return id;
        if (world.IsMpiLaunch)
        {
            using var mpi = MpiProcessGroup.Create(world, timeout);
            using var buffer = torch.tensor(bytes, dtype: ScalarType.Byte);
            mpi.Broadcast(new[] { buffer });
            bytes = buffer.data<byte>().ToArray();
        }
        else
            bytes = TcpRendezvous.Exchange(world.Rank == 0 ? bytes : null, world, timeout);
        if (bytes.Length != NcclUniqueId.Size)
            throw new DistributedException($"Rank {world.Rank}: the NCCL id from rank 0 has {bytes.Length} bytes; expected {NcclUniqueId.Size}.");
        bytes.CopyTo((Span<byte>)id);
        return id;
    }

    /// <inheritdoc />
    public void AllReduceSum(IReadOnlyList<Tensor> tensors) =>
        Collective(tensors, "all-reduce", t =>
        {
            int type = t.dtype switch
            {
                ScalarType.Float32 => NcclNative.Float32,
                ScalarType.Float64 => NcclNative.Float64,
                ScalarType.BFloat16 => NcclNative.BFloat16,
                _ => throw new ArgumentException($"NCCL all-reduce sums float32, float64 or bfloat16 tensors; got {t.dtype}.", nameof(tensors)),
            };
            var p = TensorMemory.Pointer(t, "NCCL all-reduce");
            NcclNative.Check(NcclNative.AllReduce(p, p, (nuint)t.numel(), type, NcclNative.Sum, _comm, DefaultStream), "ncclAllReduce");
        });

    /// <inheritdoc />
    public void Broadcast(IReadOnlyList<Tensor> tensors, int root = 0)
    {
        if (root < 0 || root >= WorldSize) throw new ArgumentOutOfRangeException(nameof(root), root, $"The root must be a rank in 0..{WorldSize - 1}.");
        Collective(tensors, $"broadcast from rank {root}", t =>
        {
            var p = TensorMemory.Pointer(t, "NCCL broadcast");
            NcclNative.Check(NcclNative.Broadcast(p, p, (nuint)(t.numel() * t.element_size()), NcclNative.Uint8, root, _comm, DefaultStream), "ncclBroadcast");
        });
    }

    // One NCCL group call per collective (every tensor queued at once), then a bounded wait for the stream.
    void Collective(IReadOnlyList<Tensor> tensors, string operation, Action<Tensor> enqueue)
    {
        lock (_callGate)
        {
            Prepare(operation);
            NcclNative.Check(NcclNative.GroupStart(), "ncclGroupStart");
            try
            {
                foreach (var t in tensors)
                {
                    CheckDevice(t, operation);
                    enqueue(t);
                }
            }
            finally
            {
                NcclNative.Check(NcclNative.GroupEnd(), "ncclGroupEnd");
            }
            Wait($"{operation} of {tensors.Count} tensor(s), {tensors.Sum(t => t.numel() * t.element_size()):N0} bytes");
        }
    }

    /// <inheritdoc />
    public void Barrier()
    {
        using var one = torch.ones(1, dtype: ScalarType.Float32, device: new Device(DeviceType.CUDA, _deviceIndex));
        AllReduceSum(new[] { one });
    }

    /// <inheritdoc />
    public void Abort(string reason)
    {
        Console.Error.WriteLine($"McDit rank {Rank} of {WorldSize} (nccl): {reason}");
        Console.Error.Flush();
        lock (_callGate) AbortCommunicator();
    }

    void Prepare(string operation)
    {
        if (_failed || _comm == IntPtr.Zero)
            throw new DistributedException($"Rank {Rank} of {WorldSize} (nccl): cannot {operation}: the communicator failed earlier or was disposed.");
        NcclNative.CheckCuda(NcclNative.CudaSetDevice(_deviceIndex), $"cudaSetDevice({_deviceIndex})");
    }

    void CheckDevice(Tensor t, string operation)
    {
        if (t.device_type != DeviceType.CUDA || (t.device_index < 0 ? 0 : t.device_index) != _deviceIndex)
            throw new ArgumentException($"The NCCL backend's {operation} takes tensors on cuda:{_deviceIndex}; got one on {t.device}.");
    }

    // Polls the stream the collectives were queued on; NCCL's asynchronous errors (a peer that vanished) end the wait too.
    void Wait(string what)
    {
        var clock = Stopwatch.StartNew();
        while (true)
        {
            int status = NcclNative.CudaStreamQuery(DefaultStream);
            if (status == NcclNative.CudaSuccess) return;
            if (status != NcclNative.CudaNotReady) { _failed = true; NcclNative.CheckCuda(status, $"cudaStreamQuery after {what}"); }
            NcclNative.Check(NcclNative.CommGetAsyncError(_comm, out int asyncError), "ncclCommGetAsyncError");
            if (asyncError != NcclNative.Success && asyncError != NcclNative.InProgress)
            {
                AbortCommunicator();
                NcclNative.Check(asyncError, $"{what} (asynchronous error)");
            }
            if (clock.Elapsed > Timeout)
            {
                AbortCommunicator();
                throw new DistributedException(
                    $"Rank {Rank} of {WorldSize} (nccl): {what} did not complete within {Timeout.TotalSeconds:0.#} s. Another rank has died, " +
                    "stalled or issued different collectives (check its output); the communicator was aborted. Raise the timeout " +
                    "(--distributed-timeout, DistributedOptions.Timeout) if a rank is legitimately slow.");
            }
            if (clock.Elapsed < TimeSpan.FromMilliseconds(20)) Thread.Yield();
            else Thread.Sleep(1);
        }
    }

    void AbortCommunicator()
    {
        _failed = true;
        if (_comm == IntPtr.Zero) return;
        NcclNative.CommAbort(_comm);
        _comm = IntPtr.Zero;
    }

    /// <summary>Destroys the communicator (waiting for queued work); after a failure it was already aborted.</summary>
    public void Dispose()
    {
        lock (_callGate)
        {
            if (_comm == IntPtr.Zero) return;
            NcclNative.CommDestroy(_comm);
            _comm = IntPtr.Zero;
        }
    }
}
