namespace McDit.Serve;

/// <summary>What <see cref="ServeApp"/> serves and where: the model to generate from, the run folders to watch, the address and the limits.</summary>
public sealed class ServeOptions
{
    /// <summary>Default port of <c>mcdit serve</c>.</summary>
    public const int DefaultPort = 5055;

    /// <summary>
    /// Address to bind: "127.0.0.1" (the default), "localhost", "::1", or another IP address ("0.0.0.0" for every
    /// interface). Anything but a loopback address makes the page reachable from other machines.
    /// </summary>
    public string Host { get; init; } = "127.0.0.1";

    /// <summary>TCP port; 0 picks a free one (see <see cref="ServeHost.Address"/>).</summary>
    public int Port { get; init; } = DefaultPort;

    /// <summary>The model the generation page samples from, or null for a page of training runs only.</summary>
    public GeneratorSource? Generator { get; init; }

    /// <summary>Run folders whose training the page shows (live while they are trained); several give a comparison view.</summary>
    public IReadOnlyList<ServedRun> Runs { get; init; } = Array.Empty<ServedRun>();

    /// <summary>Bounds on what one request may ask for.</summary>
    public GenerationLimits Limits { get; init; } = new();

    /// <summary>How often the run folders' files are checked for new lines.</summary>
    public TimeSpan RunPollInterval { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>Checks the values; throws naming the bad one.</summary>
    public ServeOptions Validated()
    {
        if (Port is < 0 or > 65535) throw new ArgumentException($"--port {Port} is invalid: expected 0 to 65535 (0: any free port).");
        ServeHost.ParseHost(Host);
        if (Generator is null && Runs.Count == 0)
            throw new ArgumentException("Nothing to serve: give a model with --from RUN|MODEL.zip|CHECKPOINT, or run folders with --runs DIR.");
        if (RunPollInterval <= TimeSpan.Zero) throw new ArgumentException($"The run poll interval {RunPollInterval} must be positive.");
        Limits.Validated();
        return this;
    }
}

/// <summary>Bounds on generation requests (count and steps) and on the queue, so one page cannot tie the server up.</summary>
public sealed record GenerationLimits
{
    /// <summary>Most images of one request (classes × images per class).</summary>
    public int MaxImages { get; init; } = 64;
    /// <summary>Most sampler steps of one request.</summary>
    public int MaxSamplerSteps { get; init; } = 250;
    /// <summary>Largest classifier-free guidance scale accepted.</summary>
    public double MaxGuidance { get; init; } = 20;
    /// <summary>Jobs that may wait behind the running one; a request beyond gets "queue full".</summary>
    public int MaxQueuedJobs { get; init; } = 4;
    /// <summary>Finished jobs (their images) kept in memory; older ones are dropped.</summary>
    public int KeptJobs { get; init; } = 16;
    /// <summary>Event streams (open pages) served at once.</summary>
    public int MaxEventStreams { get; init; } = 32;

    /// <summary>Checks the values; throws naming the bad one.</summary>
    public GenerationLimits Validated()
    {
        if (MaxImages is < 1 or > 1024) throw new ArgumentException($"--max-images {MaxImages} is invalid: expected 1 to 1024.");
        if (MaxSamplerSteps is < 1 or > 10_000) throw new ArgumentException($"--max-steps {MaxSamplerSteps} is invalid: expected 1 to 10000.");
        if (!(MaxGuidance >= 1) || !double.IsFinite(MaxGuidance)) throw new ArgumentException($"The guidance limit {MaxGuidance} is invalid: expected a finite number ≥ 1.");
        if (MaxQueuedJobs < 1) throw new ArgumentException($"The queue length {MaxQueuedJobs} is invalid: expected at least 1.");
        if (KeptJobs < 1) throw new ArgumentException($"The number of kept jobs {KeptJobs} is invalid: expected at least 1.");
        if (MaxEventStreams < 1) throw new ArgumentException($"The number of event streams {MaxEventStreams} is invalid: expected at least 1.");
        return this;
    }
}
