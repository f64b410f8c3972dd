namespace McDit.Cli.Runs;

/// <summary>Draws the training loss of a run (raw per step and smoothed) as a PNG with ScottPlot.</summary>
public static class LossCurve
{
    /// <summary>Writes the curve of <paramref name="entries"/> to <paramref name="path"/>; does nothing without entries.</summary>
    public static void Save(IReadOnlyList<MetricsLog.Entry> entries, string path, string title)
    {
        if (entries.Count == 0) return;
        var steps = entries.Select(e => (double)e.Step).ToArray();
        var loss = entries.Select(e => e.Loss).ToArray();
        var smoothed = new double[loss.Length];
        double window = Math.Max(1, loss.Length / 50.0), alpha = 1 / window, s = loss[0];
        for (int i = 0; i < loss.Length; i++) smoothed[i] = s = (1 - alpha) * s + alpha * loss[i];

        var plot = new ScottPlot.Plot();
        var raw = plot.Add.Scatter(steps, loss);
        raw.MarkerSize = 0;
        raw.LineWidth = 1;
        raw.Color = ScottPlot.Colors.SteelBlue.WithAlpha(0.35);
        raw.LegendText = "loss per step";
        var line = plot.Add.Scatter(steps, smoothed);
        line.MarkerSize = 0;
        line.LineWidth = 2;
        line.Color = ScottPlot.Colors.Navy;
        line.LegendText = "smoothed";
        var stage2 = entries.FirstOrDefault(e => e.Stage == 2);
        if (stage2 is not null)
        {
            var v = plot.Add.VerticalLine(stage2.Step);
            v.LineColor = ScottPlot.Colors.OrangeRed;
            v.LegendText = "unmasking tuning";
        }
        plot.Title(title);
        plot.XLabel("step");
        plot.YLabel("training loss");
        plot.ShowLegend();
        McDit.Torch.IO.AtomicFile.WriteAllBytes(path, plot.GetImageBytes(900, 500, ScottPlot.ImageFormat.Png));
    }
}
