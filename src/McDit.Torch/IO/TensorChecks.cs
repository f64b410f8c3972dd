using TorchSharp;
using static TorchSharp.torch;

namespace McDit.Torch.IO;

/// <summary>
/// Checks of named tensors read from a file against what a model expects: the same names, each tensor's dtype and
/// shape exactly (no silent conversion: F32 weights stored as I32 are an error), and finite values. A header can be
/// checked before any tensor data is read. Every failure is
/// an <see cref="InvalidDataException"/> naming the source and the tensor. Used for checkpoints and model zips; other
/// writers of McDit weights (importers, distributed training) can call them too.
/// </summary>
public static class TensorChecks
{
    /// <summary>
    /// Checks a safetensors header (no tensor data read yet) against expected names, dtypes and shapes, so that a file
    /// that does not fit is rejected before anything is allocated.
    /// </summary>
    /// <param name="header">The file's validated header.</param>
    /// <param name="expected">Name → (dtype, shape), for example from <see cref="Expected"/>.</param>
    /// <param name="source">The file or entry, for messages.</param>
    public static void CheckHeader(SafeTensorsHeader header, IReadOnlyDictionary<string, (ScalarType DType, long[] Shape)> expected, string source)
    {
        ArgumentNullException.ThrowIfNull(header);
        ArgumentNullException.ThrowIfNull(expected);
        CheckNames(expected.Keys, header.Tensors.Select(t => t.Name), source);
        foreach (var (name, (dtype, shape)) in expected)
        {
            header.TryGetTensor(name, out var entry);
            if (entry!.ScalarType != dtype)
                throw new InvalidDataException($"{source}: tensor '{name}' is stored as {entry.DType}; expected {Name(dtype)}. The file is damaged or was not written for this model.");
            if (!entry.Shape.SequenceEqual(shape))
                throw new InvalidDataException($"{source}: tensor '{name}' has shape [{string.Join(", ", entry.Shape)}]; the model expects [{string.Join(", ", shape)}].");
        }
    }

    /// <summary>The names, dtypes and shapes of reference tensors (a module's <c>state_dict()</c>, or what a save writes), for <see cref="CheckHeader"/>.</summary>
    public static Dictionary<string, (ScalarType DType, long[] Shape)> Expected(IReadOnlyDictionary<string, Tensor> reference)
    {
        ArgumentNullException.ThrowIfNull(reference);
        return reference.ToDictionary(kv => kv.Key, kv => (kv.Value.dtype, kv.Value.shape), StringComparer.Ordinal);
    }

    /// <summary>Total elements a header declares.</summary>
    public static long ElementCount(SafeTensorsHeader header)
    {
        ArgumentNullException.ThrowIfNull(header);
        long n = 0;
        foreach (var t in header.Tensors) n = checked(n + t.ElementCount);
        return n;
    }

    /// <summary>
    /// Checks loaded tensors against reference tensors (a module's <c>state_dict()</c>, or what a save writes): the same
    /// names, each tensor's exact dtype and shape, and finite floating values.
    /// </summary>
    public static void CheckAgainst(IReadOnlyDictionary<string, Tensor> reference, IReadOnlyDictionary<string, Tensor> tensors, string source)
    {
        ArgumentNullException.ThrowIfNull(reference);
        ArgumentNullException.ThrowIfNull(tensors);
        CheckNames(reference.Keys, tensors.Keys, source);
        foreach (var (name, target) in reference)
        {
            var value = tensors[name];
            if (value.dtype != target.dtype)
                throw new InvalidDataException($"{source}: tensor '{name}' is {Name(value.dtype)}; expected {Name(target.dtype)}. The file is damaged or was not written for this model.");
            if (!value.shape.SequenceEqual(target.shape))
                throw new InvalidDataException($"{source}: tensor '{name}' has shape [{string.Join(", ", value.shape)}]; the model expects [{string.Join(", ", target.shape)}].");
            CheckFinite(value, name, source);
        }
    }

    /// <summary>Throws when a floating tensor holds NaN or ±Inf (other dtypes pass).</summary>
    public static void CheckFinite(Tensor value, string name, string source)
    {
        ArgumentNullException.ThrowIfNull(value);
        if (!value.is_floating_point() || value.numel() == 0) return;
        using var scope = NewDisposeScope();
        long bad = value.isfinite().logical_not().sum().item<long>();
        if (bad > 0)
            throw new InvalidDataException($"{source}: tensor '{name}' holds {bad} NaN or infinite value(s) of {value.numel()}; the weights are damaged.");
    }

    static void CheckNames(IEnumerable<string> expected, IEnumerable<string> found, string source)
    {
        var e = expected.ToHashSet(StringComparer.Ordinal);
        var f = found.ToHashSet(StringComparer.Ordinal);
        var missing = e.Where(k => !f.Contains(k)).OrderBy(k => k, StringComparer.Ordinal).ToList();
        var unexpected = f.Where(k => !e.Contains(k)).OrderBy(k => k, StringComparer.Ordinal).ToList();
        if (missing.Count > 0 || unexpected.Count > 0)
            throw new InvalidDataException(
                $"{source} does not match the model: missing [{List(missing)}], unexpected [{List(unexpected)}].");
    }

    static string List(List<string> names) =>
        string.Join(", ", names.Take(5).Select(n => n.Length > 80 ? n[..77] + "..." : n)) + (names.Count > 5 ? $", … ({names.Count} in all)" : "");

    static string Name(ScalarType t) => SafeTensorsDTypes.TryGetName(t, out var name, out _) ? name : t.ToString();
}
