using System.Globalization;
using McDit.Torch.IO;

namespace McDit.Torch.Training;

/// <summary>
/// A folder of checkpoints of one run: <c>step-NNNNNNN/</c> folders, a <c>latest</c> file naming the newest one written
/// (for people; never trusted over what is on disk), and pruning of older ones.
/// </summary>
/// <remarks>
/// The newest checkpoint is found by looking at the folders themselves: each candidate's manifest, config and state are
/// verified (<see cref="Checkpoint.Verify"/>), and a damaged one is reported and skipped. The writer of the series (the
/// trainer) also repairs what a crash can leave behind (<see cref="Recover"/>): half-written <c>.step-N.*.tmp</c> folders
/// are removed, and a checkpoint moved aside as <c>.step-N.*.old</c> while it was being replaced is put back.
/// </remarks>
public sealed class CheckpointSeries
{
    const string Prefix = "step-";

    /// <summary>The folder holding the checkpoints.</summary>
    public string Folder { get; }
    /// <summary>How many checkpoints are kept (older ones are deleted after a newer one is complete).</summary>
    public int Keep { get; }

    /// <summary>A checkpoint folder that did not check out.</summary>
    /// <param name="Folder">Its path.</param>
    /// <param name="Problem">What is wrong with it (names the file).</param>
    public sealed record Damaged(string Folder, string Problem);

    /// <summary>Opens (without creating) a checkpoint folder.</summary>
    public CheckpointSeries(string folder, int keep = 2)
    {
        if (keep < 1) throw new ArgumentOutOfRangeException(nameof(keep), keep, "Keep at least one checkpoint.");
        Folder = Path.GetFullPath(folder);
        Keep = keep;
    }

    /// <summary>The checkpoint folder for a step.</summary>
    public string For(long step) => Path.Combine(Folder, Prefix + step.ToString("D7", CultureInfo.InvariantCulture));

    /// <summary>Parses a checkpoint folder name (<c>step-N</c>) into its step.</summary>
    public static bool TryParseStep(string name, out long step)
    {
        step = 0;
        return name.StartsWith(Prefix, StringComparison.Ordinal) && name.Length > Prefix.Length && name.Length <= Prefix.Length + 19
            && name.AsSpan(Prefix.Length).IndexOfAnyExceptInRange('0', '9') < 0
            && long.TryParse(name.AsSpan(Prefix.Length), NumberStyles.None, CultureInfo.InvariantCulture, out step);
    }

    /// <summary>The <c>step-N</c> folders on disk, newest (highest step) first, unverified.</summary>
    public IReadOnlyList<(long Step, string Folder)> Candidates()
    {
        if (!Directory.Exists(Folder)) return Array.Empty<(long, string)>();
        return Directory.GetDirectories(Folder, Prefix + "*")
            .Select(d => (Ok: TryParseStep(Path.GetFileName(d), out var s), Step: s, Folder: d))
            .Where(c => c.Ok).OrderByDescending(c => c.Step).Select(c => (c.Step, c.Folder)).ToList();
    }

    /// <summary>The newest checkpoint that verifies, or null when there is none (read-only: changes nothing on disk).</summary>
    public string? Latest => FindLatest().Folder;

    /// <summary>
    /// The newest checkpoint whose manifest, config and state verify, and every newer one that did not (with what is wrong).
    /// Read-only: changes nothing on disk, so it is safe while a trainer writes the series.
    /// </summary>
    public (string? Folder, IReadOnlyList<Damaged> Skipped) FindLatest()
    {
        var skipped = new List<Damaged>();
        foreach (var (_, folder) in Candidates())
        {
            try
            {
                Checkpoint.Verify(folder);
                return (folder, skipped);
            }
            catch (Exception e) when (IsDamage(e))
            {
                skipped.Add(new Damaged(folder, e.Message));
            }
        }
        return (null, skipped);
    }

    /// <summary>
    /// Loads the newest checkpoint that loads: candidates are tried newest first with <paramref name="load"/> (by default
    /// <see cref="Checkpoint.Load(string, string?)"/>), and one that is damaged is reported through <paramref name="skipped"/> and passed
    /// over. With <paramref name="recover"/> (for the writer of the series only; not for the other ranks of a
    /// data-parallel job) it calls <see cref="Recover"/> first.
    /// </summary>
    /// <returns>The trainer and its folder, or (null, null) when no checkpoint loads.</returns>
    public (DiffusionTrainer? Trainer, string? Folder) ResumeLatest(Func<string, DiffusionTrainer>? load = null, Action<Damaged>? skipped = null, bool recover = true)
    {
        if (recover) Recover();
        load ??= f => Checkpoint.Load(f);
        foreach (var (_, folder) in Candidates())
        {
            try
            {
                Checkpoint.Verify(folder);
                return (load(folder), folder);
            }
            catch (Exception e) when (IsDamage(e))
            {
                skipped?.Invoke(new Damaged(folder, e.Message));
            }
        }
        return (null, null);
    }

    /// <summary>
    /// Repairs what an interrupted save leaves behind; only the writer of the series may call it. A checkpoint moved aside
    /// (<c>.step-N.*.old</c>) while being replaced is put back when <c>step-N</c> is missing and it verifies; every other
    /// temporary folder or file is removed. Returns a line per repair.
    /// </summary>
    public IReadOnlyList<string> Recover()
    {
        var done = new List<string>();
        if (!Directory.Exists(Folder)) return done;
        foreach (var old in Directory.GetDirectories(Folder, "." + Prefix + "*.old").OrderBy(d => d, StringComparer.Ordinal))
        {
            var name = Path.GetFileName(old)[1..];
            var target = Path.Combine(Folder, name[..name.IndexOf('.')]);
            if (!Directory.Exists(target) && Intact(old))
            {
                Directory.Move(old, target);
                done.Add($"restored {target} from {old} (a save was interrupted while replacing it)");
            }
            else
            {
                Directory.Delete(old, recursive: true);
                done.Add($"removed {old}");
            }
        }
        foreach (var temp in Directory.GetDirectories(Folder, "." + Prefix + "*.tmp"))
        {
            Directory.Delete(temp, recursive: true);
            done.Add($"removed the half-written {temp}");
        }
        foreach (var temp in Directory.GetFiles(Folder, ".*.tmp"))
        {
            File.Delete(temp);
            done.Add($"removed {temp}");
        }
        return done;
    }

    /// <summary>
    /// Saves the trainer's state as the checkpoint of its current step, points <c>latest</c> at it and prunes: checkpoints
    /// of later steps (left by an abandoned continuation) are deleted, older ones that are not regular (written when a run
    /// was interrupted) are deleted, and of the rest only the newest <see cref="Keep"/> stay. So a run that was interrupted
    /// and resumed ends with the same checkpoints as one that never stopped.
    /// </summary>
    /// <param name="trainer">The trainer to save.</param>
    /// <param name="isRegular">Which steps get a checkpoint in an uninterrupted run (e.g. every N steps); null: all.</param>
    public string Save(DiffusionTrainer trainer, Func<long, bool>? isRegular = null)
    {
        Recover();
        long step = trainer.State.Step;
        var folder = For(step);
        Checkpoint.Save(trainer, folder);
        AtomicFile.WriteAllText(Path.Combine(Folder, "latest"), Path.GetFileName(folder));
        int kept = 0;
        foreach (var (s, candidate) in Candidates())
        {
            if (s == step || (s < step && (isRegular?.Invoke(s) ?? true) && kept < Keep))
            {
                kept++;
                continue;
            }
            Directory.Delete(candidate, recursive: true);
        }
        return folder;
    }

    static bool Intact(string folder)
    {
        try { Checkpoint.Verify(folder); return true; }
        catch (Exception e) when (IsDamage(e)) { return false; }
    }

    /// <summary>Exceptions that mean "this checkpoint is damaged", as opposed to failures of the machine or the caller.</summary>
    public static bool IsDamage(Exception e) => e is InvalidDataException or SafeTensorsFormatException or FileNotFoundException or DirectoryNotFoundException;
}
