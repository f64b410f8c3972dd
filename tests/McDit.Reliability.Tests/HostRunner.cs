using System.Collections.Concurrent;
using System.Globalization;

namespace McDit.Reliability.Tests;

/// <summary>
/// Runs fuzz cases in the reliability host, a child process, one after another. A case that crashes the child (a native
/// abort, the memory guard) or outlives its timeout is recorded as CRASH or HANG, and the child is restarted after it.
/// </summary>
internal static class HostRunner
{
    public const string Dll = "mcdit-reliability-host.dll";

    public static void Seed(string folder)
    {
        using var p = ChildProcess.Start(Dll, new[] { "seed", folder });
        if (!p.WaitForExit(TimeSpan.FromMinutes(5)) || p.ExitCode != 0)
            throw new InvalidOperationException($"seeding failed: {p.Error}{p.Output}");
    }

    public static List<FuzzResult> Run(IReadOnlyList<FuzzCase> cases, string workFolder, TimeSpan perCase)
    {
        var file = Path.Combine(workFolder, $"cases-{Guid.NewGuid():N}.tsv");
        File.WriteAllLines(file, cases.Select(c => $"{c.Kind}\t{c.Path}"));
        var results = new FuzzResult?[cases.Count];
        int next = 0;
        while (next < cases.Count)
        {
            var lines = new BlockingCollection<string>();
            using var child = ChildProcess.Start(Dll, new[] { "run", file, next.ToString(CultureInfo.InvariantCulture) }, onLine: lines.Add);
            int current = -1;
            var since = System.Diagnostics.Stopwatch.StartNew();
            while (next < cases.Count)
            {
                if (lines.TryTake(out var line, TimeSpan.FromMilliseconds(200)))
                {
                    if (line.StartsWith("BEGIN ", StringComparison.Ordinal))
                    {
                        current = int.Parse(line[6..], CultureInfo.InvariantCulture);
                        since.Restart();
                    }
                    else if (line.StartsWith("END ", StringComparison.Ordinal))
                    {
                        var parts = line.Split(' ', 7);
                        int i = int.Parse(parts[1], CultureInfo.InvariantCulture);
                        results[i] = new FuzzResult(cases[i], parts[2], long.Parse(parts[3], CultureInfo.InvariantCulture),
                            double.Parse(parts[4], CultureInfo.InvariantCulture), parts[5], parts[6]);
                        next = i + 1;
                        current = -1;
                    }
                    else if (line.StartsWith("ABORT ", StringComparison.Ordinal) && current >= 0)
                    {
                        results[current] = new FuzzResult(cases[current], "MEMORY", 0, since.Elapsed.TotalSeconds, "-", line);
                        next = current + 1;
                        break; // the child ends itself; a new one goes on after the case
                    }
                    continue;
                }
                int at = current >= 0 ? current : next;
                if (child.HasExited && lines.Count == 0)
                {
                    // A native abort, or any death, in the middle of a case.
                    child.WaitForExit(TimeSpan.FromSeconds(5));
                    if (lines.Count > 0) continue;
                    results[at] = new FuzzResult(cases[at], "CRASH", 0, since.Elapsed.TotalSeconds, $"exit {child.ExitCode}", Tail(child.Error));
                    next = at + 1;
                    break;
                }
                if (since.Elapsed > perCase)
                {
                    results[at] = new FuzzResult(cases[at], "HANG", 0, since.Elapsed.TotalSeconds, "-", Tail(child.Error));
                    next = at + 1;
                    break; // disposing the child kills it
                }
            }
        }
        return results.Select((r, i) => r ?? new FuzzResult(cases[i], "MISSING", 0, 0, "-", "-")).ToList();
    }

    static string Tail(string text) => text.Length <= 400 ? text.Trim() : text[^400..].Trim();
}
