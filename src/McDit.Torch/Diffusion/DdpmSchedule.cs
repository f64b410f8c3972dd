namespace McDit.Torch.Diffusion;

/// <summary>
/// DiT's discrete diffusion (the ADM/iDDPM <c>GaussianDiffusion</c> that facebookresearch/DiT uses): a linear β schedule
/// from 10⁻⁴ to 0.02 over 1000 steps, optionally respaced to fewer steps as <c>space_timesteps</c> and
/// <c>SpacedDiffusion</c> do, with the posterior coefficients of each kept step. All values are float64.
/// </summary>
public sealed class DdpmSchedule
{
    /// <summary>Steps of the schedule the network was trained on (1000 for DiT).</summary>
    public int TrainingSteps { get; }
    /// <summary>ᾱ of every training step t = 0 … T−1 (before respacing).</summary>
    public double[] BaseAlphasCumprod { get; }
    /// <summary>The training timesteps kept, increasing: the network is called with these.</summary>
    public int[] Timesteps { get; }
    /// <summary>β of each kept step (1 − ᾱ_i / ᾱ_{i−1} after respacing).</summary>
    public double[] Betas { get; }
    /// <summary>ᾱ of each kept step.</summary>
    public double[] AlphasCumprod { get; }
    /// <summary>Posterior variance of q(x_{i−1} | x_i, x₀) at each kept step.</summary>
    public double[] PosteriorVariance { get; }
    /// <summary>log of the posterior variance, its first entry replaced by the second (iDDPM's clipping).</summary>
    public double[] PosteriorLogVarianceClipped { get; }
    /// <summary>Coefficient of x₀ in the posterior mean.</summary>
    public double[] PosteriorMeanCoef1 { get; }
    /// <summary>Coefficient of x_i in the posterior mean.</summary>
    public double[] PosteriorMeanCoef2 { get; }

    /// <summary>The linear schedule of <paramref name="trainingSteps"/> steps respaced to <paramref name="steps"/> (DiT: 1000 → 250).</summary>
    /// <param name="steps">Sampling steps, 1 … <paramref name="trainingSteps"/>.</param>
    /// <param name="trainingSteps">Steps of the training schedule (1000 for DiT).</param>
    /// <exception cref="ArgumentOutOfRangeException">A step count is out of range.</exception>
    public DdpmSchedule(int steps, int trainingSteps = 1000)
    {
        if (trainingSteps < 2 || trainingSteps > 100_000)
            throw new ArgumentOutOfRangeException(nameof(trainingSteps), trainingSteps, "The training schedule needs 2 … 100,000 steps (DiT: 1000).");
        if (steps < 1 || steps > trainingSteps)
            throw new ArgumentOutOfRangeException(nameof(steps), steps, $"DDPM sampling steps must be in 1 … {trainingSteps} (DiT samples with 250).");
        TrainingSteps = trainingSteps;
        // get_named_beta_schedule("linear", T): β from 1e-4·(1000/T) to 0.02·(1000/T), evenly spaced.
        double scale = 1000.0 / trainingSteps, start = scale * 0.0001, end = scale * 0.02;
        var baseBetas = new double[trainingSteps];
        for (int i = 0; i < trainingSteps; i++) baseBetas[i] = start + (end - start) * i / (trainingSteps - 1);
        BaseAlphasCumprod = new double[trainingSteps];
        double product = 1;
        for (int i = 0; i < trainingSteps; i++) BaseAlphasCumprod[i] = product *= 1 - baseBetas[i];

        Timesteps = SpaceTimesteps(trainingSteps, steps);
        int n = Timesteps.Length;
        Betas = new double[n];
        AlphasCumprod = new double[n];
        double last = 1;
        for (int i = 0; i < n; i++)
        {
            double a = BaseAlphasCumprod[Timesteps[i]];
            Betas[i] = 1 - a / last;
            AlphasCumprod[i] = a;
            last = a;
        }
        PosteriorVariance = new double[n];
        PosteriorMeanCoef1 = new double[n];
        PosteriorMeanCoef2 = new double[n];
        for (int i = 0; i < n; i++)
        {
            double prev = i == 0 ? 1 : AlphasCumprod[i - 1];
            PosteriorVariance[i] = Betas[i] * (1 - prev) / (1 - AlphasCumprod[i]);
            PosteriorMeanCoef1[i] = Betas[i] * Math.Sqrt(prev) / (1 - AlphasCumprod[i]);
            PosteriorMeanCoef2[i] = (1 - prev) * Math.Sqrt(1 - Betas[i]) / (1 - AlphasCumprod[i]);
        }
        PosteriorLogVarianceClipped = new double[n];
        for (int i = 0; i < n; i++) PosteriorLogVarianceClipped[i] = Math.Log(n > 1 && i == 0 ? PosteriorVariance[1] : PosteriorVariance[i]);
    }

    /// <summary>
    /// The training timesteps <paramref name="steps"/> evenly spaced steps keep, as DiT's <c>space_timesteps(T, "N")</c>: a
    /// stride of (T − 1)/(N − 1), accumulated and rounded half to even as Python's <c>round</c> does.
    /// </summary>
    public static int[] SpaceTimesteps(int trainingSteps, int steps)
    {
        if (steps == trainingSteps) return Enumerable.Range(0, trainingSteps).ToArray();
        if (steps == 1) return new[] { 0 };
        double stride = (trainingSteps - 1) / (double)(steps - 1), current = 0;
        var taken = new SortedSet<int>();
        for (int i = 0; i < steps; i++)
        {
            taken.Add((int)Math.Round(current, MidpointRounding.ToEven));
            current += stride;
        }
        return taken.ToArray();
    }

    /// <summary>σ of an EDM-scaled sample at training timestep t: √((1 − ᾱ_t)/ᾱ_t).</summary>
    public double Sigma(int t) => Math.Sqrt((1 - BaseAlphasCumprod[t]) / BaseAlphasCumprod[t]);

    /// <summary>
    /// The (fractional) training timestep whose noise level is σ: log σ interpolated linearly between the training
    /// steps, clamped to [0, T − 1]. Lets EDM samplers call a DDPM network at any σ.
    /// </summary>
    public double TimestepOf(double sigma)
    {
        double logSigma = Math.Log(sigma);
        if (logSigma <= Math.Log(Sigma(0))) return 0;
        if (logSigma >= Math.Log(Sigma(TrainingSteps - 1))) return TrainingSteps - 1;
        int lo = 0, hi = TrainingSteps - 1;
        while (hi - lo > 1)
        {
            int mid = (lo + hi) / 2;
            if (Math.Log(Sigma(mid)) <= logSigma) lo = mid; else hi = mid;
        }
        double a = Math.Log(Sigma(lo)), b = Math.Log(Sigma(hi));
        return lo + (logSigma - a) / (b - a);
    }
}
