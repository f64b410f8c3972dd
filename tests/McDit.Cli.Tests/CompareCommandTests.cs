using System.Text.Json;
using McDit.MLNet.Comparison;
using McDit.Torch.Training;
using SixLabors.ImageSharp;
using Xunit;

namespace McDit.Cli.Tests;

/// <summary><c>mcdit compare</c> on a toy configuration (Micro/4, 3 steps, 2 seeds, a few samples per measurement).</summary>
public sealed class CompareCommandTests : IDisposable
{
    readonly string _folder = CliRunner.TempFolder();

    static string[] Toy(string folder, params string[] extra) => new[]
    {
        "compare", "--out", folder, "--model", "Micro/4", "--steps", "2", "--unmask-steps", "1", "--eval-every", "2", "--seeds", "0,1",
        "--batch-size", "4", "--fd-samples", "10", "--fd-reference", "20", "--sampler-steps", "1", "--guidance", "1", "--device", "cpu",
    }.Concat(extra).ToArray();

    [Fact]
    public void AToyComparisonWritesItsTablesCurvesAndGridsAndReusesFinishedRuns()
    {
        var (exit, output, error) = CliRunner.Run(Toy(_folder));
        Assert.True(exit == 0, error + output);

        // The tables: one markdown row per arm with FD and accuracy at the fixed checkpoints (steps 2 and 3) and at equal time.
        var table = File.ReadAllText(Path.Combine(_folder, "table.md"));
        foreach (var arm in new[] { "| DiT |", "| MaskDiT |", "| MC-DiT |" }) Assert.Equal(3, table.Split(arm).Length - 1); // equal steps, equal time, per class
        Assert.Contains("FD @ 2", table);
        Assert.Contains("FD @ 3", table);
        Assert.Contains("accuracy @ 3 (%)", table);
        Assert.Contains("Equal training time", table);
        Assert.Contains("mcdit compare --out", table);
        var csv = File.ReadAllLines(Path.Combine(_folder, "table.csv"));
        Assert.Equal(1 + 3 * 3, csv.Length); // header; per arm: step 2, step 3, equal time
        Assert.All(csv.Skip(1), line => Assert.Contains(",2,", line)); // two seeds behind every number

        using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(_folder, "results.json")));
        var runs = json.RootElement.GetProperty("runs");
        Assert.Equal(6, runs.GetArrayLength());
        foreach (var run in runs.EnumerateArray())
        {
            var measurements = run.GetProperty("measurements");
            Assert.Equal(new long[] { 2, 3 }, measurements.EnumerateArray().Where(m => m.GetProperty("scheduled").GetBoolean()).Select(m => m.GetProperty("step").GetInt64()));
            foreach (var m in measurements.EnumerateArray())
            {
                Assert.True(m.GetProperty("frechet_distance").GetDouble() > 0);
                var accuracy = m.GetProperty("accuracy").GetDouble();
                Assert.InRange(accuracy, 0, 1);
                Assert.Equal(10, m.GetProperty("per_class_accuracy").GetArrayLength());
            }
        }
        // Seeds differ, arms share them: DiT's two seeds give two different FDs.
        var ditFds = runs.EnumerateArray().Where(r => r.GetProperty("variant").GetString() == "DiT")
            .Select(r => r.GetProperty("measurements")[0].GetProperty("frechet_distance").GetDouble()).ToList();
        Assert.NotEqual(ditFds[0], ditFds[1]);

        foreach (var png in new[] { "fd-vs-steps.png", "fd-vs-seconds.png", "accuracy-vs-steps.png", "accuracy-vs-seconds.png" })
            using (var chart = Image.Load(Path.Combine(_folder, png))) Assert.True(chart.Width >= 400, png);
        using (var grids = Image.Load(Path.Combine(_folder, "grids.png")))
        using (var one = Image.Load(Path.Combine(_folder, "grids", "dit-seed0.png")))
            Assert.True(grids.Width > 3 * one.Width, "three grids side by side");
        Assert.Equal(6, Directory.GetFiles(Path.Combine(_folder, "grids"), "*.png").Length);

        // Started again with the same settings, every finished run is reused and nothing is trained.
        var again = CliRunner.Run(Toy(_folder));
        Assert.True(again.Exit == 0, again.Error);
        Assert.Equal(6, again.Output.Split("reusing the finished run").Length - 1);
        Assert.Equal(table.Split('\n').Where(l => l.StartsWith("| DiT")), File.ReadAllText(Path.Combine(_folder, "table.md")).Split('\n').Where(l => l.StartsWith("| DiT")));
    }

    [Fact]
    public void AblationFlagsBecomeArmsOfTheSameComparison()
    {
        var arms = ComparisonVariant.Build(new[] { TrainingMethod.DiT, TrainingMethod.MaskDiT, TrainingMethod.McDiT }, maskRatios: new[] { 0.25, 0.5, 0.75 });
        Assert.Equal(new[] { "DiT", "MaskDiT r=0.25", "MaskDiT", "MaskDiT r=0.75", "MC-DiT r=0.25", "MC-DiT", "MC-DiT r=0.75" }, arms.Select(a => a.Name));
        Assert.Equal(0.75, arms[^1].Method.MaskRatio);
        Assert.Equal(0, arms[0].Method.MaskRatio);

        var branches = ComparisonVariant.Build(new[] { TrainingMethod.McDiT }, branches: new[] { BranchSet.Both, BranchSet.Noisy, BranchSet.Clean, BranchSet.None });
        Assert.Equal(new[] { (true, true), (true, false), (false, true), (false, false) }, branches.Select(b => (b.Method.NoisyBranch, b.Method.CleanBranch)));
        var target = ComparisonVariant.Build(new[] { TrainingMethod.McDiT }, targets: new[] { ReconstructionTarget.AllClean }, scopes: new[] { BranchScope.DecoderAndEncoder });
        Assert.Equal("MC-DiT target=AllClean scope=DecoderAndEncoder", Assert.Single(target).Name);
        Assert.Equal(BranchScope.DecoderAndEncoder, target[0].Method.BranchScope);

        var fractions = ComparisonVariant.Build(new[] { TrainingMethod.MaskDiT, TrainingMethod.McDiT }, cleanFractions: new[] { 1.0, 0.25 });
        Assert.Equal(new[] { "MaskDiT", "MC-DiT", "MC-DiT clean-fraction=0.25" }, fractions.Select(a => a.Name));
        Assert.Equal(0.25, fractions[^1].Method.CleanBranchFraction);
        var badFraction = CliRunner.Run("compare", "--clean-fraction", "0");
        Assert.Equal(2, badFraction.Exit);
        Assert.Contains("--clean-fraction '0' is invalid: expected fractions in (0, 1]", badFraction.Error);

        var bad = CliRunner.Run("compare", "--branches", "both,sideways");
        Assert.Equal(2, bad.Exit);
        Assert.Contains("--branches 'sideways' is invalid", bad.Error);
        Assert.Equal(2, CliRunner.Run("compare", "--mask-ratio", "1.5").Exit);
        Assert.Equal(2, CliRunner.Run("compare", "--methods", "GAN").Exit);
    }

    public void Dispose()
    {
        if (Directory.Exists(_folder)) Directory.Delete(_folder, recursive: true);
    }
}
