using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Threading.Channels;

namespace McDit.Serve.Generation;

/// <summary>
/// Runs generation jobs one at a time on a worker of its own (never on a request thread), from a bounded queue, and keeps
/// the last <see cref="GenerationLimits.KeptJobs"/> jobs' images in memory. The model is reloaded when its source says a
/// newer one is current.
/// </summary>
internal sealed class GenerationQueue : IDisposable
{
    private readonly GeneratorSource? _source;
    private readonly GenerationLimits _limits;
    private readonly Channel<GenerationJob> _queue;
    private readonly ConcurrentDictionary<string, GenerationJob> _jobs = new();
    private readonly ConcurrentQueue<GenerationJob> _order = new();
    private readonly CancellationTokenSource _stop = new();
    private readonly Thread _worker;
    private readonly object _loadLock = new();
    private LoadedGenerator? _current;
    private string? _currentVersion;
    private string? _loadError;
    private Task? _loading;
    private long _sequence;

    public GenerationQueue(ServeOptions options)
    {
        _source = options.Generator;
        if (_source?.Preloaded is { } preloaded) (_current, _currentVersion) = (preloaded, _source.Version);
        _limits = options.Limits;
        _queue = Channel.CreateBounded<GenerationJob>(new BoundedChannelOptions(_limits.MaxQueuedJobs) { SingleReader = true, FullMode = BoundedChannelFullMode.Wait });
        // A thread of its own: sampling blocks for seconds to minutes and must not hold a request or thread-pool thread.
        _worker = new Thread(Work) { IsBackground = true, Name = "mcdit-serve-generation" };
        _worker.Start();
    }

    /// <summary>True when a model source was given.</summary>
    public bool HasSource => _source is not null;

    /// <summary>
    /// The current model, or null (with the reason) when there is none yet. When the source has a newer one it is loaded
    /// in the background (waiting up to <see cref="LoadWait"/> for it), so a request never waits long on a large model.
    /// </summary>
    public LoadedGenerator? Current(out string? notReady)
    {
        notReady = null;
        if (_source is null)
        {
            notReady = "This server has no model to generate from: start it with --from RUN|MODEL.zip|CHECKPOINT.";
            return null;
        }
        Task? loading;
        lock (_loadLock)
        {
            var version = _source.Version;
            if (version is not null && version != _currentVersion && _loading is null)
                _loading = Task.Run(() => Load(version));
            loading = _loading;
        }
        loading?.Wait(LoadWait);
        lock (_loadLock)
        {
            if (_current is null)
                notReady = _loadError ?? (_loading is not null ? "Loading the model…" : _source.NotReadyMessage);
            return _current;
        }
    }

    /// <summary>How long a request waits for a model being loaded before it is told to come back.</summary>
    internal static readonly TimeSpan LoadWait = TimeSpan.FromSeconds(3);

    private void Load(string version)
    {
        try
        {
            var generator = _source!.Load();
            lock (_loadLock) { _current = generator; _loadError = null; }
        }
        catch (Exception e)
        {
            lock (_loadLock) _loadError = "The model could not be loaded: " + e.Message;
        }
        finally
        {
            // The same version is not tried again; a newer one is.
            lock (_loadLock) { _currentVersion = version; _loading = null; }
        }
    }

    /// <summary>Checks and queues a request; throws <see cref="GenerationRequestException"/> for bad values.</summary>
    public GenerationJob Submit(GenerationRequest request, LoadedGenerator generator)
    {
        var plan = request.Validate(generator.Model, _limits);
        var job = new GenerationJob(Convert.ToHexString(RandomNumberGenerator.GetBytes(12)).ToLowerInvariant(), Interlocked.Increment(ref _sequence), plan, generator);
        _jobs[job.Id] = job;
        if (!_queue.Writer.TryWrite(job))
        {
            _jobs.TryRemove(job.Id, out _);
            throw new QueueFullException(_limits.MaxQueuedJobs);
        }
        _order.Enqueue(job);
        Forget();
        return job;
    }

    /// <summary>A job by id (random, from a submission), or null.</summary>
    public GenerationJob? Find(string id) => _jobs.TryGetValue(id, out var job) ? job : null;

    /// <summary>Jobs ahead of <paramref name="job"/> (0 when it runs or is done).</summary>
    public int PositionOf(GenerationJob job) =>
        job.State == JobState.Queued ? _jobs.Values.Count(j => j.Sequence < job.Sequence && j.State == JobState.Queued) : 0;

    /// <summary>Drops the oldest finished jobs beyond the kept number.</summary>
    private void Forget()
    {
        while (_order.Count > _limits.KeptJobs + _limits.MaxQueuedJobs + 1 && _order.TryPeek(out var oldest) && oldest.IsFinished)
            if (_order.TryDequeue(out oldest)) _jobs.TryRemove(oldest.Id, out _);
    }

    private void Work()
    {
        try
        {
            while (_queue.Reader.WaitToReadAsync(_stop.Token).AsTask().GetAwaiter().GetResult())
                while (_queue.Reader.TryRead(out var job))
                {
                    Run(job);
                    Forget();
                }
        }
        catch (OperationCanceledException)
        {
        }
    }

    private void Run(GenerationJob job)
    {
        try
        {
            job.Start();
            var plan = job.Plan;
            var model = job.Generator.Model.WithSampling(samplingSteps: plan.Steps, solver: plan.Solver, guidanceScale: plan.Guidance, batchSize: 1);
            int channels = model.ImageChannels;
            var pixels = new List<float[]>(plan.Count);
            for (int i = 0; i < plan.Count; i++)
            {
                _stop.Token.ThrowIfCancellationRequested();
                // One sampler run per image, so each appears as soon as it is done; an image depends only on its class and seed.
                int c = plan.ClassOf(i);
                var images = model.GenerateImages(1, c < 0 ? null : new[] { c }, plan.Seed + i);
                try
                {
                    var (png, values) = PngImages.Encode(images[0], channels);
                    pixels.Add(values);
                    job.AddImage(png);
                }
                finally
                {
                    foreach (var image in images) image.Dispose();
                }
            }
            job.Complete(PngImages.Grid(pixels, channels, model.ImageHeight, model.ImageWidth, plan.PerClass, plan.RowLabels));
        }
        catch (OperationCanceledException)
        {
            job.Fail("The server is stopping.");
        }
        catch (Exception e)
        {
            job.Fail("Generation failed: " + e.Message);
        }
    }

    public void Dispose()
    {
        _stop.Cancel();
        _queue.Writer.TryComplete();
        _worker.Join(TimeSpan.FromSeconds(30));
        foreach (var job in _jobs.Values)
            if (!job.IsFinished) job.Fail("The server stopped.");
        _stop.Dispose();
    }
}

/// <summary>The queue holds <see cref="GenerationLimits.MaxQueuedJobs"/> waiting jobs already.</summary>
internal sealed class QueueFullException(int limit)
    : Exception($"The generation queue is full ({limit} jobs waiting); try again when one has finished.");
