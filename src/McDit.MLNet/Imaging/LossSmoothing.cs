namespace McDit.MLNet.Imaging;

/// <summary>
/// The smoothed training-loss line of a run's loss.png and of its page in <c>mcdit serve</c>: one definition, so the
/// two draw the same curve.
/// </summary>
public static class LossSmoothing
{
    /// <summary>
    /// An exponential moving average over about 1/25 of <paramref name="loss"/> that starts again at
    /// <paramref name="secondStageStart"/> (the index of the first unmasking-tuning step; negative: one stage). The
    /// stages' losses are different sums (MC-DiT's masked stage adds its branch terms), and an average carried across
    /// the boundary would lag behind the new stage for a fifth of the run.
    /// </summary>
    public static double[] Smooth(IReadOnlyList<double> loss, int secondStageStart = -1)
    {
        ArgumentNullException.ThrowIfNull(loss);
        var smoothed = new double[loss.Count];
        double alpha = 1 / Math.Max(1, loss.Count / 25.0), s = 0;
        for (int i = 0; i < loss.Count; i++)
        {
            if (i == 0 || i == secondStageStart) s = loss[i];
            smoothed[i] = s = (1 - alpha) * s + alpha * loss[i];
        }
        return smoothed;
    }
}
