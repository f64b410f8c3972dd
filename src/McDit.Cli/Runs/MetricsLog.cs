using System.Globalization;
using System.Text.Json;
using McDit.MLNet.Trainers;

namespace McDit.Cli.Runs;

/// <summary>metrics.jsonl: one JSON object per training step, appended as the run goes.</summary>
public sealed class MetricsLog : IDisposable
{
    private readonly StreamWriter _writer;

    /// <summary>One line of the log.</summary>
    public sealed record Entry(long Step, int Stage, long Epoch, double Loss, double Denoising, double Masked,
        double NoisyBranch, double CleanBranch, double LearningRate, double ElapsedSeconds);

    /// <summary>Opens the log for appending, first dropping lines past <paramref name="keepUpToStep"/> (a resumed run repeats them).</summary>
    public MetricsLog(string path, long keepUpToStep)
    {
        if (File.Exists(path))
        {
            var kept = ReadAll(path).Where(e => e.Step <= keepUpToStep).Select(e => JsonSerializer.Serialize(e, Options)).ToList();
            McDit.Torch.IO.AtomicFile.WriteAllText(path, kept.Count == 0 ? "" : string.Join('\n', kept) + "\n");
        }
        _writer = new StreamWriter(new FileStream(path, FileMode.Append, FileAccess.Write, FileShare.Read)) { AutoFlush = true };
    }

    private static readonly JsonSerializerOptions Options = new() { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };

    /// <summary>Appends a step.</summary>
    public void Add(McDitTrainingStep step) =>
        _writer.WriteLine(JsonSerializer.Serialize(new Entry(step.Step, step.Stage, step.Epoch,
            step.Loss.Total, step.Loss.Denoising, step.Loss.Masked, step.Loss.NoisyBranch, step.Loss.CleanBranch, step.LearningRate,
            Math.Round(step.Elapsed.TotalSeconds, 3)), Options));

    /// <summary>Reads every entry of a log (skipping a torn last line).</summary>
    public static List<Entry> ReadAll(string path)
    {
        var entries = new List<Entry>();
        if (!File.Exists(path)) return entries;
        foreach (var line in File.ReadLines(path))
        {
            if (string.IsNullOrWhiteSpace(line)) continue;
            try { if (JsonSerializer.Deserialize<Entry>(line, Options) is { } e) entries.Add(e); }
            catch (JsonException) { /* a line cut by a crash */ }
        }
        return entries;
    }

    /// <inheritdoc />
    public void Dispose() => _writer.Dispose();
}
