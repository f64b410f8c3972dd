using System.Globalization;
using McDit.Torch.IO;

namespace McDit.Torch.Training;

/// <summary>
/// A folder of checkpoints of one run: <c>step-NNNNNNN/</c> folders, a <c>latest</c> file naming the newest complete
/// one, and pruning of older ones. Each checkpoint is complete before <c>latest</c> points at it.
/// </summary>
public sealed class CheckpointSeries
{
    /// <summary>The folder holding the checkpoints.</summary>
    public string Folder { get; }
    /// <summary>How many checkpoints are kept (older ones are deleted after a newer one is complete).</summary>
    public int Keep { get; }

    /// <summary>Opens (without creating) a checkpoint folder.</summary>
    public CheckpointSeries(string folder, int keep = 2)
    {
        if (keep < 1) throw new ArgumentOutOfRangeException(nameof(keep), keep, "Keep at least one checkpoint.");
        Folder = Path.GetFullPath(folder);
        Keep = keep;
    }

    /// <summary>The checkpoint folder for a step.</summary>
    public string For(long step) => Path.Combine(Folder, "step-" + step.ToString("D7", CultureInfo.InvariantCulture));

    /// <summary>The newest complete checkpoint, or null when there is none.</summary>
    public string? Latest
    {
        get
        {
            var pointer = Path.Combine(Folder, "latest");
            if (!File.Exists(pointer)) return null;
            var folder = Path.Combine(Folder, File.ReadAllText(pointer).Trim());
            return Directory.Exists(folder) ? folder : null;
        }
    }

    /// <summary>Saves the trainer's state as the checkpoint of its current step, points <c>latest</c> at it and prunes old ones.</summary>
    public string Save(DiffusionTrainer trainer)
    {
        var folder = For(trainer.State.Step);
        Checkpoint.Save(trainer, folder);
        AtomicFile.WriteAllText(Path.Combine(Folder, "latest"), Path.GetFileName(folder));
        foreach (var old in Directory.GetDirectories(Folder, "step-*").OrderByDescending(d => d, StringComparer.Ordinal).Skip(Keep))
            Directory.Delete(old, recursive: true);
        return folder;
    }
}
