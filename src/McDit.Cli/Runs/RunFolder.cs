using System.Globalization;
using System.Text.Json;
using McDit.Torch.IO;
using McDit.Torch.Training;

namespace McDit.Cli.Runs;

/// <summary>
/// The files of a training run: run.json (settings), checkpoints/step-NNNNNNN/ with a <c>latest</c> pointer,
/// metrics.jsonl (one line per step), samples/step-NNNNNNN.png grids, and at the end model.zip (the ML.NET model),
/// samples/final.png and loss.png.
/// </summary>
public sealed class RunFolder
{
    /// <summary>Number of checkpoints kept (older ones are deleted after a newer one is complete).</summary>
    public const int CheckpointsKept = 2;

    /// <summary>The folder.</summary>
    public string Path { get; }

    /// <summary>Opens (without creating) a run folder.</summary>
    public RunFolder(string path) => Path = System.IO.Path.GetFullPath(path);

    /// <summary>run.json.</summary>
    public string SettingsFile => System.IO.Path.Combine(Path, "run.json");
    /// <summary>metrics.jsonl.</summary>
    public string MetricsFile => System.IO.Path.Combine(Path, "metrics.jsonl");
    /// <summary>loss.png.</summary>
    public string LossCurveFile => System.IO.Path.Combine(Path, "loss.png");
    /// <summary>checkpoints/: step-N/ folders and a latest pointer.</summary>
    public CheckpointSeries Checkpoints => new(System.IO.Path.Combine(Path, "checkpoints"), CheckpointsKept);
    /// <summary>model.zip: the trained ML.NET model (MLContext.Model.Load reads it).</summary>
    public string ModelFile => System.IO.Path.Combine(Path, "model.zip");
    /// <summary>evaluations.jsonl: one FD-ResNet18 measurement per line.</summary>
    public string EvaluationsFile => System.IO.Path.Combine(Path, "evaluations.jsonl");
    /// <summary>samples/.</summary>
    public string SamplesFolder => System.IO.Path.Combine(Path, "samples");

    /// <summary>The sample grid for a step.</summary>
    public string SamplesFor(long step) =>
        System.IO.Path.Combine(SamplesFolder, "step-" + step.ToString("D7", CultureInfo.InvariantCulture) + ".png");

    /// <summary>True when the folder holds a run (run.json).</summary>
    public bool HasRun => File.Exists(SettingsFile);

    /// <summary>Writes run.json atomically.</summary>
    public void SaveSettings(TrainSettings settings)
    {
        Directory.CreateDirectory(Path);
        AtomicFile.WriteAllText(SettingsFile, JsonSerializer.Serialize(settings, Checkpoint.Json));
    }

    /// <summary>Reads and checks run.json.</summary>
    /// <exception cref="FileNotFoundException">The folder holds no run.</exception>
    /// <exception cref="InvalidDataException">run.json is malformed or holds an invalid setting.</exception>
    public TrainSettings LoadSettings()
    {
        if (!HasRun) throw new FileNotFoundException($"'{Path}' is not a run folder: it has no run.json. Start a run with `mcdit train --out {Path}`.", SettingsFile);
        var settings = JsonFile.Read<TrainSettings>(SettingsFile, Checkpoint.Json);
        try { return settings.Validated(); }
        catch (ArgumentException e) { throw new InvalidDataException($"{SettingsFile}: {e.Message}", e); }
    }

    /// <summary>
    /// Removes the temporary files an interrupted run leaves (<c>.NAME.*.tmp</c> of atomic writes, here and in samples/);
    /// only the writer of the run (a resuming trainer) may call it. Returns the files removed.
    /// </summary>
    public IReadOnlyList<string> RemoveStaleFiles()
    {
        var removed = new List<string>();
        foreach (var folder in new[] { Path, SamplesFolder })
        {
            if (!Directory.Exists(folder)) continue;
            foreach (var file in Directory.GetFiles(folder, ".*.tmp"))
            {
                File.Delete(file);
                removed.Add(file);
            }
        }
        return removed;
    }
}
