using System.Collections;
using TorchSharp;

namespace McDit.Torch.Interop;

/// <summary>
/// A Python dict or OrderedDict read from (or to be written to) a pickle: entries in insertion order, keys compared by
/// value (strings, whole numbers, tuples of those).
/// </summary>
public sealed class PickleDict : IEnumerable<KeyValuePair<object, object?>>
{
    readonly List<object> _keys = new();
    readonly Dictionary<object, object?> _values = new(PickleKeyComparer.Instance);

    /// <summary>Creates an empty dict.</summary>
    /// <param name="ordered">True for a <c>collections.OrderedDict</c> (what <c>state_dict()</c> returns), false for a plain dict.</param>
    public PickleDict(bool ordered = false) => IsOrdered = ordered;

    /// <summary>True for a <c>collections.OrderedDict</c>, false for a plain dict.</summary>
    public bool IsOrdered { get; }

    /// <summary>Number of entries.</summary>
    public int Count => _keys.Count;

    /// <summary>The keys in insertion order.</summary>
    public IReadOnlyList<object> Keys => _keys;

    /// <summary>Gets or sets a value; setting a new key appends it.</summary>
    public object? this[object key]
    {
        get => _values[key];
        set
        {
            ArgumentNullException.ThrowIfNull(key);
            if (!_values.ContainsKey(key)) _keys.Add(key);
            _values[key] = value;
        }
    }

    /// <summary>Looks up a key.</summary>
    public bool TryGetValue(object key, out object? value) => _values.TryGetValue(key, out value);

    /// <summary>True when the key is present.</summary>
    public bool ContainsKey(object key) => _values.ContainsKey(key);

    /// <inheritdoc />
    public IEnumerator<KeyValuePair<object, object?>> GetEnumerator()
    {
        foreach (var k in _keys) yield return new KeyValuePair<object, object?>(k, _values[k]);
    }

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    sealed class PickleKeyComparer : IEqualityComparer<object>
    {
        public static readonly PickleKeyComparer Instance = new();
        public new bool Equals(object? x, object? y) => x is PickleTuple a && y is PickleTuple b
            ? a.Items.Count == b.Items.Count && a.Items.Zip(b.Items).All(p => Equals(p.First, p.Second))
            : object.Equals(x, y);
        public int GetHashCode(object obj) => obj is PickleTuple t
            ? t.Items.Aggregate(17, (h, i) => h * 31 + (i is null ? 0 : GetHashCode(i)))
            : obj.GetHashCode();
    }
}

/// <summary>A Python tuple read from a pickle.</summary>
/// <param name="Items">The items; tensors in them are replaced in place when a file is materialised.</param>
public sealed record PickleTuple(IList<object?> Items);

/// <summary>
/// An instance of an allowed plain-data class (<c>argparse.Namespace</c>): its module, class name and attributes, as
/// data. Nothing of the class runs.
/// </summary>
public sealed class PickleObject
{
    /// <summary>Creates the object.</summary>
    public PickleObject(string module, string name)
    {
        Module = module;
        Name = name;
    }

    /// <summary>The class's module, e.g. <c>argparse</c>.</summary>
    public string Module { get; }
    /// <summary>The class's name, e.g. <c>Namespace</c>.</summary>
    public string Name { get; }
    /// <summary>The attributes set by the pickle (its BUILD state, or keyword arguments).</summary>
    public PickleDict Attributes { get; } = new();

    /// <inheritdoc />
    public override string ToString() => $"{Module}.{Name}({string.Join(", ", Attributes.Select(kv => $"{kv.Key}={kv.Value}"))})";
}

/// <summary>A storage of a <c>torch.save</c> archive: the data record <c>data/Key</c>, its element type and length.</summary>
/// <param name="Key">The record name under <c>data/</c>.</param>
/// <param name="DType">Element type, from the storage class (<c>torch.FloatStorage</c> → Float32).</param>
/// <param name="ElementCount">Elements in the storage.</param>
/// <param name="Location">Where it was saved from (<c>cpu</c>, <c>cuda:0</c>); McDit loads everything onto the CPU.</param>
public sealed record TorchStorageRef(string Key, torch.ScalarType DType, long ElementCount, string Location);

/// <summary>A tensor as the pickle describes it: a strided view of a storage. Materialised into a TorchSharp tensor on load.</summary>
/// <param name="Storage">The storage it views.</param>
/// <param name="Offset">Element offset into the storage.</param>
/// <param name="Shape">The tensor's sizes.</param>
/// <param name="Stride">The tensor's strides, in elements.</param>
public sealed record TorchTensorRef(TorchStorageRef Storage, long Offset, long[] Shape, long[] Stride);
