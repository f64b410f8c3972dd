using McDit.Serve;

namespace McDit.Cli.Runs;

/// <summary>The run folders <c>mcdit serve</c> shows: run folders, or folders of run folders (such as <c>mcdit compare</c> writes).</summary>
public static class ServedRuns
{
    /// <summary>How deep below a <c>--runs</c> folder run folders are looked for.</summary>
    public const int SearchDepth = 2;

    /// <summary>The files of a run folder, as the page reads them.</summary>
    public static ServedRun From(RunFolder run, string name) =>
        new(name, run.Path, run.SettingsFile, run.MetricsFile, run.EvaluationsFile, run.SamplesFolder);

    /// <summary>Every run folder named in <paramref name="folders"/> or found below them (sorted by path, each once).</summary>
    /// <exception cref="DirectoryNotFoundException">A folder does not exist.</exception>
    /// <exception cref="ArgumentException">A folder holds no run folder.</exception>
    public static List<ServedRun> Find(IEnumerable<string> folders)
    {
        var result = new List<ServedRun>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var folder in folders)
        {
            var root = Path.GetFullPath(folder);
            if (!Directory.Exists(root))
                throw new DirectoryNotFoundException($"--runs '{folder}' does not exist: give a run folder (with run.json) or a folder of run folders.");
            var found = new List<(string Path, string Name)>();
            if (new RunFolder(root).HasRun) found.Add((root, Path.GetFileName(root)));
            else Search(root, root, 1, found);
            if (found.Count == 0)
                throw new ArgumentException($"--runs '{folder}' holds no run folder (a folder with run.json) at most {SearchDepth} levels down.");
            foreach (var (path, name) in found.OrderBy(f => f.Path, StringComparer.Ordinal))
                if (seen.Add(path)) result.Add(From(new RunFolder(path), name));
        }
        return result;
    }

    static void Search(string root, string folder, int depth, List<(string, string)> found)
    {
        foreach (var sub in new DirectoryInfo(folder).EnumerateDirectories())
        {
            if (sub.LinkTarget is not null || sub.Name.StartsWith('.')) continue; // no symbolic links, no hidden folders
            if (new RunFolder(sub.FullName).HasRun) found.Add((sub.FullName, Path.GetRelativePath(root, sub.FullName)));
            else if (depth < SearchDepth && sub.Name != "checkpoints" && sub.Name != "samples") Search(root, sub.FullName, depth + 1, found);
        }
    }
}
