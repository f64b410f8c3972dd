namespace McDit.MLNet.Imaging;

/// <summary>
/// The smoothed training-loss line of a run's loss.png and of its page in <c>mcdit serve</c>: one definition, so the
/// two draw the same curve.
/// </summary>
public static class LossSmoothing
{
    /// <summary>
    /// A centred moving average over about 1/25 of <paramref name="loss"/>, computed within each stage: the window never
    /// reaches across <paramref name="secondStageStart"/> (the index of the first unmasking-tuning step; negative: one
    /// stage) and narrows at the ends. Centred, so a falling loss is not drawn above its points (an exponential average
    /// lags behind by its length), and per stage, since the stages' losses are different sums (MC-DiT's masked stage adds
    /// its branch terms).
    /// </summary>
    public static double[] Smooth(IReadOnlyList<double> loss, int secondStageStart = -1)
    {
        ArgumentNullException.ThrowIfNull(loss);
        var smoothed = new double[loss.Count];
        int halfWindow = Math.Max(1, (int)Math.Round(loss.Count / 50.0));
        bool twoStages = secondStageStart > 0 && secondStageStart < loss.Count;
        SmoothSegment(loss, 0, twoStages ? secondStageStart : loss.Count, halfWindow, smoothed);
        if (twoStages) SmoothSegment(loss, secondStageStart, loss.Count, halfWindow, smoothed);
        return smoothed;
    }

    // Mean of loss[i - h .. i + h] clipped to [start, end), from running sums.
    static void SmoothSegment(IReadOnlyList<double> loss, int start, int end, int halfWindow, double[] smoothed)
    {
        var prefix = new double[end - start + 1];
        for (int i = start; i < end; i++) prefix[i - start + 1] = prefix[i - start] + loss[i];
        for (int i = start; i < end; i++)
        {
            int from = Math.Max(start, i - halfWindow), to = Math.Min(end, i + halfWindow + 1);
            smoothed[i] = (prefix[to - start] - prefix[from - start]) / (to - from);
        }
    }
}
