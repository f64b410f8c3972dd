using System.Globalization;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;

namespace McDit.MLNet.Imaging;

/// <summary>One line of a <see cref="LineChart"/>.</summary>
/// <param name="Name">Legend text (ASCII).</param>
/// <param name="X">X values, increasing.</param>
/// <param name="Y">Y values (non-finite points are skipped).</param>
/// <param name="Color">Line colour.</param>
/// <param name="Width">Line width in pixels.</param>
public sealed record ChartSeries(string Name, IReadOnlyList<double> X, IReadOnlyList<double> Y, Rgb24 Color, int Width = 1);

/// <summary>
/// Small PNG line charts (loss and FD curves) drawn with ImageSharp and the built-in 5×7 font, so they need no
/// plotting library: ScottPlot 5 requires SkiaSharp 3, which breaks ML.NET ImageAnalytics (built on SkiaSharp 2)
/// in the same process.
/// </summary>
public static class LineChart
{
    const int Left = 64, Right = 16, Top = 28, Bottom = 36;

    /// <summary>Draws the series with axes, five ticks per axis, a legend and optional vertical markers, and writes a PNG atomically.</summary>
    /// <param name="path">The PNG file.</param>
    /// <param name="title">Title above the plot (ASCII).</param>
    /// <param name="xLabel">X-axis label.</param>
    /// <param name="series">The lines, drawn in order.</param>
    /// <param name="markers">Vertical markers (x value, label), e.g. the start of unmasking tuning.</param>
    /// <param name="width">Image width.</param>
    /// <param name="height">Image height.</param>
    public static void SavePng(string path, string title, string xLabel, IReadOnlyList<ChartSeries> series,
        IReadOnlyList<(double X, string Label)>? markers = null, int width = 900, int height = 480)
    {
        using var image = Render(title, xLabel, series, markers, width, height);
        McDit.Torch.IO.AtomicFile.Write(path, stream => image.SaveAsPng(stream));
    }

    /// <summary>Renders the chart (see <see cref="SavePng"/>).</summary>
    public static Image<Rgb24> Render(string title, string xLabel, IReadOnlyList<ChartSeries> series,
        IReadOnlyList<(double X, string Label)>? markers = null, int width = 900, int height = 480)
    {
        if (width < 200 || height < 150) throw new ArgumentOutOfRangeException(nameof(width), $"{width}×{height}", "Charts must be at least 200×150 pixels.");
        var points = series.SelectMany(s => s.X.Zip(s.Y)).Where(p => double.IsFinite(p.First) && double.IsFinite(p.Second)).ToList();
        var image = new Image<Rgb24>(width, height, new Rgb24(255, 255, 255));
        var ink = new Rgb24(40, 40, 40);
        var grid = new Rgb24(225, 225, 225);
        Text(image, title, Left, 8, ink, 2);
        if (points.Count == 0) return image;

        double x0 = points.Min(p => p.First), x1 = points.Max(p => p.First);
        double y0 = points.Min(p => p.Second), y1 = points.Max(p => p.Second);
        if (x1 == x0) x1 = x0 + 1;
        if (y1 == y0) { y0 -= 0.5; y1 += 0.5; }
        double pad = (y1 - y0) * 0.05;
        y0 -= pad; y1 += pad;
        int plotW = width - Left - Right, plotH = height - Top - Bottom;
        int Px(double x) => Left + (int)Math.Round((x - x0) / (x1 - x0) * (plotW - 1));
        int Py(double y) => Top + plotH - 1 - (int)Math.Round((y - y0) / (y1 - y0) * (plotH - 1));

        for (int i = 0; i <= 4; i++)
        {
            double yv = y0 + (y1 - y0) * i / 4, xv = x0 + (x1 - x0) * i / 4;
            int py = Py(yv), px = Px(xv);
            Line(image, Left, py, Left + plotW - 1, py, grid, 1);
            Line(image, px, Top, px, Top + plotH - 1, grid, 1);
            var yText = yv.ToString(Math.Abs(y1 - y0) < 1 ? "F3" : Math.Abs(y1 - y0) < 100 ? "F2" : "F0", CultureInfo.InvariantCulture);
            Text(image, yText, Left - 6 - BitmapFont5x7.TextWidth(yText.Length, 1), py - 3, ink, 1);
            var xText = xv.ToString("F0", CultureInfo.InvariantCulture);
            Text(image, xText, px - BitmapFont5x7.TextWidth(xText.Length, 1) / 2, Top + plotH + 6, ink, 1);
        }
        Line(image, Left, Top, Left, Top + plotH - 1, ink, 1);
        Line(image, Left, Top + plotH - 1, Left + plotW - 1, Top + plotH - 1, ink, 1);
        Text(image, xLabel, Left + plotW / 2 - BitmapFont5x7.TextWidth(xLabel.Length, 1) / 2, height - 14, ink, 1);

        foreach (var (x, label) in markers ?? Array.Empty<(double, string)>())
        {
            var red = new Rgb24(220, 70, 40);
            Line(image, Px(x), Top, Px(x), Top + plotH - 1, red, 1);
            Text(image, label, Math.Min(Px(x) + 4, width - Right - BitmapFont5x7.TextWidth(label.Length, 1)), Top + 4, red, 1);
        }
        int legendY = Top + 4;
        foreach (var s in series)
        {
            int? lx = null, ly = null;
            for (int i = 0; i < Math.Min(s.X.Count, s.Y.Count); i++)
            {
                if (!double.IsFinite(s.X[i]) || !double.IsFinite(s.Y[i])) { lx = null; continue; }
                int px = Px(s.X[i]), py = Py(s.Y[i]);
                if (lx is { } a && ly is { } b) Line(image, a, b, px, py, s.Color, s.Width);
                else Dot(image, px, py, s.Color, s.Width);
                (lx, ly) = (px, py);
            }
            int textX = Left + plotW - BitmapFont5x7.TextWidth(s.Name.Length, 1) - 8;
            Line(image, textX - 22, legendY + 3, textX - 6, legendY + 3, s.Color, Math.Max(2, s.Width));
            Text(image, s.Name, textX, legendY, ink, 1);
            legendY += 12;
        }
        return image;
    }

    static void Text(Image<Rgb24> image, string text, int x, int y, Rgb24 color, int scale) =>
        BitmapFont5x7.Draw(text, x, y, scale, (px, py) => Set(image, px, py, color));

    static void Set(Image<Rgb24> image, int x, int y, Rgb24 color)
    {
        if (x >= 0 && y >= 0 && x < image.Width && y < image.Height) image[x, y] = color;
    }

    static void Dot(Image<Rgb24> image, int x, int y, Rgb24 color, int width)
    {
        for (int dy = 0; dy < width; dy++)
            for (int dx = 0; dx < width; dx++) Set(image, x + dx - width / 2, y + dy - width / 2, color);
    }

    // Bresenham, thickened by stamping a width×width square.
    static void Line(Image<Rgb24> image, int x0, int y0, int x1, int y1, Rgb24 color, int width)
    {
        int dx = Math.Abs(x1 - x0), sx = x0 < x1 ? 1 : -1, dy = -Math.Abs(y1 - y0), sy = y0 < y1 ? 1 : -1, err = dx + dy;
        while (true)
        {
            Dot(image, x0, y0, color, width);
            if (x0 == x1 && y0 == y1) break;
            int e2 = 2 * err;
            if (e2 >= dy) { err += dy; x0 += sx; }
            if (e2 <= dx) { err += dx; y0 += sy; }
        }
    }
}
