using McDit.Serve.Internal;

namespace McDit.Serve.Training;

/// <summary>Looks at every served run folder every <see cref="ServeOptions.RunPollInterval"/> and wakes the pages' event streams when one changed.</summary>
internal sealed class RunMonitor : IDisposable
{
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _loop;

    public RunMonitor(ServeOptions options)
    {
        Runs = options.Runs.Select((r, i) => new RunWatcher(i, r)).ToArray();
        RefreshAll();
        _loop = Loop(options.RunPollInterval);
    }

    public IReadOnlyList<RunWatcher> Runs { get; }

    /// <summary>Pulsed when any run changed.</summary>
    public ChangeSignal Changed { get; } = new();

    public void RefreshAll()
    {
        bool changed = false;
        foreach (var run in Runs)
        {
            try { changed |= run.Refresh(); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { /* looked at again next time */ }
        }
        if (changed) Changed.Pulse();
    }

    async Task Loop(TimeSpan interval)
    {
        if (Runs.Count == 0) return;
        using var timer = new PeriodicTimer(interval);
        try
        {
            while (await timer.WaitForNextTickAsync(_stop.Token).ConfigureAwait(false)) RefreshAll();
        }
        catch (OperationCanceledException)
        {
        }
    }

    /// <summary>Every run's version (the page fetches the ones that changed).</summary>
    public object Versions() => new { runs = Runs.Select(r => new { index = r.Index, version = r.Version }).ToArray() };

    public void Dispose()
    {
        _stop.Cancel();
        try { _loop.Wait(TimeSpan.FromSeconds(5)); } catch (AggregateException) { }
        _stop.Dispose();
    }
}
