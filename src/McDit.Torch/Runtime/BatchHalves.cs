using System.Runtime.ExceptionServices;
using TorchSharp;
using static TorchSharp.torch;

namespace McDit.Torch.Runtime;

/// <summary>
/// Runs the two halves of a CPU batch at the same time, on two dedicated threads that each have their own libtorch
/// intra-op team of half the threads (one each on 2 cores). Why: the models McDit trains on a CPU are small (the demo's
/// Tiny/4 has 64 tokens of width 192), so most of libtorch's ops are too short to share between threads, and with
/// 2 intra-op threads a training step kept only ~1.3 of 2 cores busy. Two halves with one thread each keep both busy:
/// the demo's step went from 1.55 to about 2.2 steps/s on a 2-core AMD EPYC VM (docs/benchmarks.md, "Batch halves").
/// </summary>
/// <remarks>
/// Exactly two halves, never more: the two halves' gradients meet in each parameter's <c>.grad</c> through libtorch's
/// (locked) gradient accumulation in whichever order the threads finish, and a sum of two terms is the same in either
/// order, so a run stays reproducible bit for bit (and resumes exactly); three or more terms would not be.
/// Grad mode and inference mode of the caller carry over to the halves (libtorch keeps them per thread).
/// </remarks>
public sealed class BatchHalves : IDisposable
{
    static readonly object SharedGate = new();
    static BatchHalves? _shared;

    [ThreadStatic] static bool _onHalfThread;

    readonly object _runGate = new();
    readonly Thread[] _threads = new Thread[2];
    readonly SemaphoreSlim[] _start = { new(0), new(0) };
    readonly CountdownEvent _done = new(2);
    readonly ExceptionDispatchInfo?[] _errors = new ExceptionDispatchInfo?[2];
    Action<int>? _work;
    bool _inference, _grad, _stopping;

    /// <summary>
    /// Whether batches are split at all (default true). Set false (or the environment variable
    /// <c>MCDIT_BATCH_HALVES=0</c>) to run every batch in one piece on libtorch's own threads.
    /// </summary>
    public static bool Enabled { get; set; } = Environment.GetEnvironmentVariable("MCDIT_BATCH_HALVES") != "0";

    /// <summary>Batches run in halves in this process so far (for tests and diagnostics).</summary>
    internal static long Runs;

    /// <summary>libtorch intra-op threads of each half.</summary>
    public int ThreadsPerHalf { get; }

    BatchHalves(int threadsPerHalf)
    {
        ThreadsPerHalf = threadsPerHalf;
        using var ready = new CountdownEvent(2);
        for (int i = 0; i < 2; i++)
        {
            int which = i;
            _threads[i] = new Thread(() => Loop(which, ready)) { IsBackground = true, Name = $"mcdit-batch-half-{i}" };
            _threads[i].Start();
        }
        ready.Wait();
    }

    /// <summary>
    /// The halves for a batch of <paramref name="rows"/> on <paramref name="device"/> at the calling thread's libtorch
    /// thread count, or null when the batch runs in one piece: not a CPU device, fewer than 2 rows, fewer than 2
    /// threads (<c>--threads 1</c>, <c>OMP_NUM_THREADS=1</c>, a one-core machine), <see cref="Enabled"/> false,
    /// or called from a half itself.
    /// </summary>
    public static BatchHalves? For(Device device, long rows)
    {
        if (!Enabled || _onHalfThread || device.type != DeviceType.CPU || rows < 2) return null;
        int threads = torch.get_num_threads();
        if (threads < 2) return null;
        lock (SharedGate)
        {
            int perHalf = threads / 2;
            if (_shared is { } s && s.ThreadsPerHalf == perHalf) return s;
            _shared?.Dispose();
            _shared = new BatchHalves(perHalf);
            // Giving the halves their thread count also set libtorch's default for new threads; put the caller's back.
            torch.set_num_threads(threads);
            return _shared;
        }
    }

    /// <summary>Rows [Start, Start + Count) of half <paramref name="which"/> (0 or 1) of <paramref name="rows"/>; half 0 takes the odd row.</summary>
    public static (int Start, int Count) Half(int rows, int which) =>
        which == 0 ? (0, (rows + 1) / 2) : ((rows + 1) / 2, rows / 2);

    /// <summary>
    /// Runs <paramref name="work"/>(0) and <paramref name="work"/>(1) at the same time on the two half threads and waits
    /// for both; an exception of either is rethrown (half 0's first). Each call should open its own dispose scope:
    /// scopes are per thread.
    /// </summary>
    public void Run(Action<int> work)
    {
        ArgumentNullException.ThrowIfNull(work);
        lock (_runGate)
        {
            ObjectDisposedException.ThrowIf(_stopping, this);
            Interlocked.Increment(ref Runs);
            _work = work;
            _inference = torch.is_inference_mode_enabled();
            _grad = torch.is_grad_enabled();
            _errors[0] = _errors[1] = null;
            _done.Reset(2);
            _start[0].Release();
            _start[1].Release();
            _done.Wait();
            _work = null;
            (_errors[0] ?? _errors[1])?.Throw();
        }
    }

    /// <summary>
    /// Computes <paramref name="part"/>(start, count) for the two halves of <paramref name="rows"/> rows at the same time and
    /// concatenates the results along dimension 0 (on the caller's dispose scope). The parts must not depend on each other's rows.
    /// </summary>
    public Tensor MapRows(int rows, Func<int, int, Tensor> part)
    {
        var results = new Tensor?[2];
        try
        {
            Run(which =>
            {
                var (start, count) = Half(rows, which);
                using var scope = NewDisposeScope();
                results[which] = part(start, count).MoveToOuterDisposeScope(); // out of this thread's scopes: the caller owns it
            });
            return torch.cat(new[] { results[0]!, results[1]! }, 0);
        }
        finally
        {
            results[0]?.Dispose();
            results[1]?.Dispose();
        }
    }

    void Loop(int which, CountdownEvent ready)
    {
        _onHalfThread = true;
        _ = torch.get_num_threads(); // libtorch's per-thread lazy initialisation first, or it would later undo the next line
        torch.set_num_threads(ThreadsPerHalf);
        ready.Signal();
        while (true)
        {
            _start[which].Wait();
            if (_stopping) return;
            try
            {
                using IDisposable mode = _inference ? torch.inference_mode() : torch.set_grad_enabled(_grad);
                _work!(which);
            }
            catch (Exception e)
            {
                _errors[which] = ExceptionDispatchInfo.Capture(e);
            }
            finally
            {
                _done.Signal();
            }
        }
    }

    /// <summary>Stops the two threads.</summary>
    public void Dispose()
    {
        lock (_runGate)
        {
            if (_stopping) return;
            _stopping = true;
            _start[0].Release();
            _start[1].Release();
        }
        foreach (var t in _threads) t.Join();
        foreach (var s in _start) s.Dispose();
        _done.Dispose();
    }
}
