using System.Globalization;
using static TorchSharp.torch;

namespace McDit.Torch.Metrics;

/// <summary>
/// Class accuracy of (generated or real) images under an <see cref="ImageClassifier"/> trained on real images: the
/// fraction of images whose predicted class is the class they were generated for (or labelled with), overall and per
/// class. On generated images it is the "classification accuracy score" of a class-conditional generator; on real
/// held-out images it is the ceiling the generator is measured against.
/// </summary>
public sealed class ClassAccuracy
{
    /// <summary>Creates a result from per-class counts.</summary>
    /// <param name="correct">Correctly classified images per class.</param>
    /// <param name="counts">Images per class.</param>
    public ClassAccuracy(IReadOnlyList<long> correct, IReadOnlyList<long> counts)
    {
        ArgumentNullException.ThrowIfNull(correct);
        ArgumentNullException.ThrowIfNull(counts);
        if (correct.Count != counts.Count) throw new ArgumentException("correct and counts must have one entry per class.", nameof(correct));
        Correct = correct.ToArray();
        Counts = counts.ToArray();
        Count = Counts.Sum();
        Overall = Count == 0 ? double.NaN : Correct.Sum() / (double)Count;
        PerClass = Correct.Zip(Counts, (c, n) => n == 0 ? double.NaN : c / (double)n).ToArray();
    }

    /// <summary>Correct predictions over all images (NaN when there are none).</summary>
    public double Overall { get; }
    /// <summary>Accuracy per class index (NaN for a class without images).</summary>
    public IReadOnlyList<double> PerClass { get; }
    /// <summary>Correct predictions per class.</summary>
    public IReadOnlyList<long> Correct { get; }
    /// <summary>Images per class.</summary>
    public IReadOnlyList<long> Counts { get; }
    /// <summary>All images scored.</summary>
    public long Count { get; }

    /// <summary>The lowest accuracy over the classes that have images.</summary>
    public double Worst => PerClass.Where(double.IsFinite).DefaultIfEmpty(double.NaN).Min();

    /// <summary>Scores images [N, C, H, W] in [-1, 1] against their intended classes [N].</summary>
    /// <param name="classifier">A classifier trained on real images of the same size.</param>
    /// <param name="images">The images.</param>
    /// <param name="labels">The class each image was generated for (or is labelled with), 0-based, any integer dtype.</param>
    /// <param name="batchSize">Images per forward pass.</param>
    /// <exception cref="ArgumentException">The shapes disagree or a label is outside the classifier's classes.</exception>
    public static ClassAccuracy Compute(ImageClassifier classifier, Tensor images, Tensor labels, int batchSize = 256)
    {
        ArgumentNullException.ThrowIfNull(classifier);
        ArgumentNullException.ThrowIfNull(labels);
        classifier.CheckInput(images);
        if (labels.ndim != 1 || labels.shape[0] != images.shape[0])
            throw new ArgumentException($"labels has shape [{string.Join(", ", labels.shape)}]; expected [{images.shape[0]}], one per image.", nameof(labels));
        using var scope = NewDisposeScope();
        var predicted = classifier.Predict(images, batchSize).data<long>().ToArray();
        var wanted = labels.detach().to(int64, CPU).contiguous().data<long>().ToArray();
        var correct = new long[classifier.NumClasses];
        var counts = new long[classifier.NumClasses];
        for (int i = 0; i < wanted.Length; i++)
        {
            long c = wanted[i];
            if (c < 0 || c >= classifier.NumClasses)
                throw new ArgumentException($"labels[{i}] = {c} is not a class of the classifier (0..{classifier.NumClasses - 1}).", nameof(labels));
            counts[c]++;
            if (predicted[i] == c) correct[c]++;
        }
        return new ClassAccuracy(correct, counts);
    }

    /// <summary>Per-class accuracy by class name (classes without images left out), for logs and JSON.</summary>
    /// <param name="classNames">Names by class index; missing names become the index.</param>
    public IReadOnlyDictionary<string, double> ByName(IReadOnlyList<string>? classNames)
    {
        var result = new Dictionary<string, double>();
        for (int c = 0; c < PerClass.Count; c++)
            if (Counts[c] > 0)
                result[classNames is not null && c < classNames.Count ? classNames[c] : c.ToString(CultureInfo.InvariantCulture)] = Math.Round(PerClass[c], 4);
        return result;
    }

    /// <inheritdoc/>
    public override string ToString() => string.Create(CultureInfo.InvariantCulture,
        $"class accuracy {Overall:P1} of {Count} images (worst class {Worst:P0})");
}
