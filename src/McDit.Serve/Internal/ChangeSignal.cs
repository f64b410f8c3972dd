namespace McDit.Serve.Internal;

/// <summary>A version number that waiters can await a change of (event streams wake up when a job or a run changes).</summary>
internal sealed class ChangeSignal
{
    private readonly object _lock = new();
    private long _version;
    private TaskCompletionSource _next = NewSource();

    private static TaskCompletionSource NewSource() => new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>The current version.</summary>
    public long Version
    {
        get { lock (_lock) return _version; }
    }

    /// <summary>Moves to the next version and wakes every waiter.</summary>
    public void Pulse()
    {
        TaskCompletionSource done;
        lock (_lock)
        {
            _version++;
            done = _next;
            _next = NewSource();
        }
        done.TrySetResult();
    }

    /// <summary>Waits until the version differs from <paramref name="known"/> or <paramref name="timeout"/> passes; returns the version then.</summary>
    public async Task<long> WaitAsync(long known, TimeSpan timeout, CancellationToken cancel)
    {
        Task next;
        lock (_lock)
        {
            if (_version != known) return _version;
            next = _next.Task;
        }
        try
        {
            await next.WaitAsync(timeout, cancel).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
        }
        return Version;
    }
}
