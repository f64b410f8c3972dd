using System.Diagnostics;
using McDit.Serve.Internal;

namespace McDit.Serve.Generation;

/// <summary>States of a <see cref="GenerationJob"/>.</summary>
internal enum JobState { Queued, Running, Done, Failed }

/// <summary>One generation request: its plan, the model it samples from, and the images as they are finished (PNG bytes in memory).</summary>
internal sealed class GenerationJob
{
    private readonly object _lock = new();
    private readonly List<byte[]> _images = new();
    private readonly Stopwatch _clock = new();
    private JobState _state = JobState.Queued;
    private string? _error;
    private byte[]? _grid;

    public GenerationJob(string id, long sequence, GenerationPlan plan, LoadedGenerator generator)
    {
        Id = id;
        Sequence = sequence;
        Plan = plan;
        Generator = generator;
        Cli = Reproduction.Cli(plan, generator);
        CSharp = Reproduction.CSharp(plan, generator);
    }

    public string Id { get; }
    /// <summary>Order of submission (queue position).</summary>
    public long Sequence { get; }
    public GenerationPlan Plan { get; }
    public LoadedGenerator Generator { get; }
    public string Cli { get; }
    public string CSharp { get; }
    /// <summary>Pulsed on every change (an image, the end).</summary>
    public ChangeSignal Changed { get; } = new();

    public JobState State { get { lock (_lock) return _state; } }
    public bool IsFinished => State is JobState.Done or JobState.Failed;

    public void Start()
    {
        lock (_lock) { _state = JobState.Running; _clock.Start(); }
        Changed.Pulse();
    }

    public void AddImage(byte[] png)
    {
        lock (_lock) _images.Add(png);
        Changed.Pulse();
    }

    public void Complete(byte[] grid)
    {
        lock (_lock) { _grid = grid; _state = JobState.Done; _clock.Stop(); }
        Changed.Pulse();
    }

    public void Fail(string message)
    {
        lock (_lock) { _error = message; _state = JobState.Failed; _clock.Stop(); }
        Changed.Pulse();
    }

    public byte[]? Image(int index)
    {
        lock (_lock) return index >= 0 && index < _images.Count ? _images[index] : null;
    }

    public byte[]? GridPng
    {
        get { lock (_lock) return _grid; }
    }

    /// <summary>The job as the page reads it.</summary>
    public object Snapshot(int queuePosition)
    {
        lock (_lock)
        {
            var plan = Plan;
            var model = Generator.Model;
            return new
            {
                id = Id,
                state = _state,
                queuePosition,
                done = _images.Count,
                total = plan.Count,
                error = _error,
                seconds = Math.Round(_clock.Elapsed.TotalSeconds, 2),
                images = Enumerable.Range(0, _images.Count).Select(i => new
                {
                    index = i,
                    url = $"/api/jobs/{Id}/images/{i}.png",
                    fileName = FileName(i),
                    @class = plan.ClassOf(i),
                    className = plan.NameOf(plan.ClassOf(i)),
                    seed = plan.Seed + i,
                }).ToArray(),
                gridUrl = _grid is null ? null : $"/api/jobs/{Id}/grid.png",
                columns = plan.PerClass,
                width = model.ImageWidth,
                height = model.ImageHeight,
                settings = new
                {
                    classes = plan.Rows,
                    classNames = plan.RowLabels,
                    perClass = plan.PerClass,
                    seed = plan.Seed,
                    steps = plan.Steps,
                    solver = plan.Solver,
                    guidance = plan.Guidance,
                },
                model = new { from = Generator.CliFrom, path = Generator.Origin.Path, kind = Generator.Origin.Kind, step = model.TrainedSteps },
                reproduce = new { cli = Cli, csharp = CSharp },
            };
        }
    }

    /// <summary>Download name of image i: &lt;class&gt;_&lt;index&gt;.png, the class name made file-safe.</summary>
    public string FileName(int i)
    {
        var name = new string(Plan.NameOf(Plan.ClassOf(i)).Select(c => char.IsAsciiLetterOrDigit(c) ? char.ToLowerInvariant(c) : '-').ToArray()).Trim('-');
        return $"{(name.Length == 0 ? "image" : name)}_{i:D3}.png";
    }
}
