using McDit.Torch.Distributed;
using TorchSharp;
using static TorchSharp.torch;

namespace McDit.Torch.Tests.Distributed;

/// <summary>
/// A process group whose ranks are threads of the test process (CPU tensors, sums in rank order), so data-parallel
/// training is tested without mpirun. The MPI backend itself is tested under mpirun (McDit.Cli.Tests).
/// </summary>
internal sealed class ThreadProcessGroup : IProcessGroup
{
    sealed class Shared(int size)
    {
        public readonly Barrier Barrier = new(size);
        public readonly Tensor[]?[] Slots = new Tensor[]?[size];
    }

    readonly Shared _shared;

    ThreadProcessGroup(Shared shared, int rank, int size, TimeSpan timeout)
    {
        _shared = shared; Rank = rank; WorldSize = size; Timeout = timeout;
    }

    /// <summary>The ranks of a world of <paramref name="size"/> threads.</summary>
    public static ThreadProcessGroup[] World(int size, TimeSpan? timeout = null)
    {
        var shared = new Shared(size);
        return Enumerable.Range(0, size).Select(r => new ThreadProcessGroup(shared, r, size, timeout ?? TimeSpan.FromSeconds(30))).ToArray();
    }

    /// <summary>Runs <paramref name="body"/> once per rank, each on its own thread; rethrows the first failure.</summary>
    public static T[] Run<T>(ThreadProcessGroup[] world, Func<ThreadProcessGroup, T> body)
    {
        var results = new T[world.Length];
        var errors = new Exception?[world.Length];
        var threads = world.Select(g => new Thread(() =>
        {
            try { results[g.Rank] = body(g); }
            catch (Exception e) { errors[g.Rank] = e; }
        }, 16 << 20)).ToArray();
        foreach (var t in threads) t.Start();
        foreach (var t in threads) t.Join();
        if (errors.FirstOrDefault(e => e is not null) is { } error) throw new AggregateException(errors.Where(e => e is not null)!);
        return results;
    }

    public int Rank { get; }
    public int WorldSize { get; }
    public int LocalRank => Rank;
    public string Backend => "threads";
    public TimeSpan Timeout { get; }
    public Device Device => torch.CPU;
    public int AllReduceCalls { get; private set; }

    void Sync(string what)
    {
        if (!_shared.Barrier.SignalAndWait(Timeout))
            throw new DistributedException($"Rank {Rank} of {WorldSize} (threads): {what} did not complete within {Timeout.TotalSeconds} s.");
    }

    public void AllReduceSum(IReadOnlyList<Tensor> tensors)
    {
        AllReduceCalls++;
        _shared.Slots[Rank] = tensors.Select(t => t.clone()).ToArray();
        Sync("all-reduce");
        using (no_grad())
            for (int i = 0; i < tensors.Count; i++)
            {
                var sum = _shared.Slots[0]![i].clone();
                for (int r = 1; r < WorldSize; r++) sum.add_(_shared.Slots[r]![i]);
                tensors[i].copy_(sum);
                sum.Dispose();
            }
        Sync("all-reduce");
        foreach (var t in _shared.Slots[Rank]!) t.Dispose();
        Sync("all-reduce");
    }

    public void Broadcast(IReadOnlyList<Tensor> tensors, int root = 0)
    {
        if (Rank == root) _shared.Slots[root] = tensors.Select(t => t.clone()).ToArray();
        Sync("broadcast");
        if (Rank != root)
            using (no_grad())
                for (int i = 0; i < tensors.Count; i++) tensors[i].copy_(_shared.Slots[root]![i]);
        Sync("broadcast");
        if (Rank == root) foreach (var t in _shared.Slots[root]!) t.Dispose();
    }

    public void Barrier() => Sync("barrier");

    public void Abort(string reason) => throw new DistributedException(reason);

    public void Dispose() { }
}
