using System.Globalization;
using Xunit;
using Xunit.Abstractions;

namespace McDit.Reliability.Tests;

/// <summary>Memory stays flat over a few hundred training steps (with checkpoints and the stage switch) and generations.</summary>
public sealed class MemoryTests : IClassFixture<FuzzSeeds>
{
    readonly FuzzSeeds _seeds;
    readonly ITestOutputHelper _log;

    public MemoryTests(FuzzSeeds seeds, ITestOutputHelper log)
    {
        _seeds = seeds;
        _log = log;
    }

    [Fact]
    public void LiveTensorsAndResidentMemoryStayFlat()
    {
        var dir = Path.Combine(_seeds.Root, "memory");
        using var p = ChildProcess.Start(HostRunner.Dll, new[] { "memory", dir });
        Assert.True(p.WaitForExit(TimeSpan.FromMinutes(10)), "the memory check did not finish");
        Assert.True(p.ExitCode == 0, p.Error + p.Output);
        var lines = p.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Where(l => l.StartsWith("MEMORY ", StringComparison.Ordinal)).ToList();
        Assert.Equal(3, lines.Count);
        foreach (var line in lines)
        {
            var f = line.Split(' ');
            string what = f[1];
            long count = long.Parse(f[2], CultureInfo.InvariantCulture), live = long.Parse(f[3], CultureInfo.InvariantCulture),
                liveAfter = long.Parse(f[4], CultureInfo.InvariantCulture), rss = long.Parse(f[5], CultureInfo.InvariantCulture),
                rssAfter = long.Parse(f[6], CultureInfo.InvariantCulture);
            double growth = (rssAfter - rss) / 1048576.0;
            _log.WriteLine($"{what}: {count} times; live tensors {live} → {liveAfter}; resident {rss / 1048576.0:F1} → {rssAfter / 1048576.0:F1} MiB ({growth:+0.0;-0.0} MiB)");
            Assert.True(liveAfter <= live, $"{what}: {liveAfter - live} tensors leaked over {count} iterations");
            // Allocator caches still settle in the first window; the second window of 300 steps must be flat.
            Assert.True(growth < (what == "train" ? 24 : 8), $"{what}: resident memory grew by {growth:F1} MiB over {count} iterations");
        }
    }
}
