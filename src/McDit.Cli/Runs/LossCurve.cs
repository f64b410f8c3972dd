using McDit.MLNet.Imaging;
using SixLabors.ImageSharp.PixelFormats;

namespace McDit.Cli.Runs;

/// <summary>Draws the training loss of a run (per step and smoothed) as a PNG.</summary>
public static class LossCurve
{
    /// <summary>Writes the curve of <paramref name="entries"/> to <paramref name="path"/>; does nothing without entries.</summary>
    public static void Save(IReadOnlyList<MetricsLog.Entry> entries, string path, string title)
    {
        if (entries.Count == 0) return;
        var steps = entries.Select(e => (double)e.Step).ToArray();
        var loss = entries.Select(e => e.Loss).ToArray();
        var smoothed = Smooth(entries);
        var stage2 = entries.FirstOrDefault(e => e.Stage == 2);
        LineChart.SavePng(path, title + ": training loss", "step", new[]
        {
            new ChartSeries("loss per step", steps, loss, new Rgb24(170, 190, 225)),
            new ChartSeries("smoothed", steps, smoothed, new Rgb24(20, 40, 140), 2),
        }, stage2 is null ? null : new[] { ((double)stage2.Step, "unmasking tuning") });
    }

    /// <summary>The smoothed loss of <paramref name="entries"/>, started again at the unmasking stage (<see cref="LossSmoothing"/>).</summary>
    public static double[] Smooth(IReadOnlyList<MetricsLog.Entry> entries) =>
        LossSmoothing.Smooth(entries.Select(e => e.Loss).ToArray(), entries.ToList().FindIndex(e => e.Stage == 2));
}
