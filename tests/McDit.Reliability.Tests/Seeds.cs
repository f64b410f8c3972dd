namespace McDit.Reliability.Tests;

/// <summary>The suite's randomness: fixed seeds, shifted by the environment variable MCDIT_RELIABILITY_SEED to try others.</summary>
internal static class Seeds
{
    public static int Offset { get; } = int.TryParse(Environment.GetEnvironmentVariable("MCDIT_RELIABILITY_SEED"), out var s) ? s : 0;

    public static Random Random(int seed) => new(unchecked(seed + 7919 * Offset));
}
