namespace McDit.MLNet.Comparison;

/// <summary>Class accuracy of a set of generated images: overall and per class (NaN for a class without samples).</summary>
/// <param name="Overall">Fraction of all images classified as their class.</param>
/// <param name="PerClass">Fraction per class.</param>
public sealed record ComparisonAccuracy(double Overall, IReadOnlyList<double> PerClass);
