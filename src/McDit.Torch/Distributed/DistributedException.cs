namespace McDit.Torch.Distributed;

/// <summary>
/// A collective did not complete (a rank died, stalled or disagreed) or the distributed engine could not be used.
/// The message names the rank, the operation and what to check.
/// </summary>
public sealed class DistributedException : Exception
{
    /// <summary>Creates the exception.</summary>
    public DistributedException(string message) : base(message) { }

    /// <summary>Creates the exception with its cause.</summary>
    public DistributedException(string message, Exception inner) : base(message, inner) { }
}
