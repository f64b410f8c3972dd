using System.Buffers.Binary;
using System.Globalization;
using System.Text;
using TorchSharp;
using static TorchSharp.torch;

namespace McDit.Torch.Interop;

/// <summary>
/// Writes the pickle of a <c>torch.save</c> archive (protocol 2, as PyTorch writes it): dicts, OrderedDicts, lists,
/// tuples, strings, numbers, booleans, None, argparse Namespaces and tensors, each tensor as
/// <c>torch._utils._rebuild_tensor_v2</c> over a persistent storage id <c>('storage', torch.FloatStorage, key, 'cpu', numel)</c>.
/// Tensors that are the same object share one storage record.
/// </summary>
internal sealed class PickleWriter
{
    readonly MemoryStream _out = new();
    readonly Dictionary<Tensor, string> _keys = new(ReferenceEqualityComparer.Instance);

    /// <summary>The storages to write as <c>data/key</c>, in key order.</summary>
    public List<(string Key, Tensor Tensor)> Storages { get; } = new();

    static readonly Dictionary<ScalarType, string> StorageNames = new()
    {
        [ScalarType.Float32] = "FloatStorage", [ScalarType.Float64] = "DoubleStorage", [ScalarType.Float16] = "HalfStorage",
        [ScalarType.BFloat16] = "BFloat16Storage", [ScalarType.Int64] = "LongStorage", [ScalarType.Int32] = "IntStorage",
        [ScalarType.Int16] = "ShortStorage", [ScalarType.Int8] = "CharStorage", [ScalarType.Byte] = "ByteStorage",
        [ScalarType.Bool] = "BoolStorage",
    };

    /// <summary>Pickles <paramref name="root"/>; returns the pickle bytes (see <see cref="Storages"/> for the data records).</summary>
    public byte[] Write(object? root)
    {
        _out.WriteByte(0x80);
        _out.WriteByte(2); // PROTO 2
        Value(root, 0);
        _out.WriteByte((byte)'.');
        return _out.ToArray();
    }

    void Op(char c) => _out.WriteByte((byte)c);

    void Value(object? v, int depth)
    {
        if (depth > 100) throw new ArgumentException("The object to pickle is nested more than 100 levels deep.");
        switch (v)
        {
            case null: Op('N'); break;
            case bool b: _out.WriteByte(b ? (byte)0x88 : (byte)0x89); break;
            case int i: Int(i); break;
            case long l: Int(l); break;
            case float f: Float(f); break;
            case double d: Float(d); break;
            case string s: Str(s); break;
            case Tensor t: TensorValue(t); break;
            case PickleTuple t: Tuple(t.Items, depth); break;
            case PickleObject o:
                Global(o.Module, o.Name);
                Op(')');
                _out.WriteByte(0x81); // NEWOBJ
                Dict(o.Attributes, ordered: false, depth);
                Op('b'); // BUILD
                break;
            case PickleDict d: Dict(d, d.IsOrdered, depth); break;
            case IReadOnlyDictionary<string, Tensor> sd:
            {
                var d = new PickleDict(ordered: true);
                foreach (var (k, t) in sd) d[k] = t;
                Dict(d, ordered: true, depth);
                break;
            }
            case System.Collections.IList list:
                Op(']');
                if (list.Count > 0)
                {
                    Op('(');
                    foreach (var item in list) Value(item, depth + 1);
                    Op('e'); // APPENDS
                }
                break;
            default:
                throw new ArgumentException($"Cannot pickle a {v.GetType().Name}: expected tensors, dicts, lists, tuples, strings, numbers, booleans or None.");
        }
    }

    void Dict(PickleDict d, bool ordered, int depth)
    {
        if (ordered)
        {
            Global("collections", "OrderedDict");
            Op(')');
            Op('R');
        }
        else Op('}');
        if (d.Count == 0) return;
        Op('(');
        foreach (var (k, v) in d)
        {
            Value(k, depth + 1);
            Value(v, depth + 1);
        }
        Op('u'); // SETITEMS
    }

    void Tuple(IList<object?> items, int depth)
    {
        if (items.Count == 0) { Op(')'); return; }
        Op('(');
        foreach (var item in items) Value(item, depth + 1);
        Op('t');
    }

    void TensorValue(Tensor t)
    {
        if (!StorageNames.TryGetValue(t.dtype, out var storage))
            throw new ArgumentException($"Cannot save a tensor of dtype {t.dtype} in a .pt file; supported: {string.Join(", ", StorageNames.Keys)}.");
        if (!_keys.TryGetValue(t, out var key))
        {
            key = _keys.Count.ToString(CultureInfo.InvariantCulture);
            _keys[t] = key;
            Storages.Add((key, t));
        }
        var shape = t.shape;
        var stride = new long[shape.Length];
        long s = 1;
        for (int i = shape.Length - 1; i >= 0; i--) { stride[i] = s; s *= shape[i]; }

        Global("torch._utils", "_rebuild_tensor_v2");
        Op('(');
        // The storage, as a persistent id.
        Op('(');
        Str("storage");
        Global("torch", storage);
        Str(key);
        Str("cpu");
        Int(t.numel());
        Op('t');
        Op('Q'); // BINPERSID
        Int(0);
        Tuple(shape.Select(x => (object?)x).ToList(), 0);
        Tuple(stride.Select(x => (object?)x).ToList(), 0);
        _out.WriteByte(0x89); // requires_grad False
        Global("collections", "OrderedDict");
        Op(')');
        Op('R');
        Op('t');
        Op('R');
    }

    void Global(string module, string name)
    {
        Op('c');
        var bytes = Encoding.ASCII.GetBytes($"{module}\n{name}\n");
        _out.Write(bytes);
    }

    void Int(long v)
    {
        if (v >= 0 && v < 256) { Op('K'); _out.WriteByte((byte)v); }
        else if (v >= int.MinValue && v <= int.MaxValue)
        {
            Op('J');
            Span<byte> b = stackalloc byte[4];
            BinaryPrimitives.WriteInt32LittleEndian(b, (int)v);
            _out.Write(b);
        }
        else
        {
            _out.WriteByte(0x8a); // LONG1
            _out.WriteByte(8);
            Span<byte> b = stackalloc byte[8];
            BinaryPrimitives.WriteInt64LittleEndian(b, v);
            _out.Write(b);
        }
    }

    void Float(double v)
    {
        Op('G');
        Span<byte> b = stackalloc byte[8];
        BinaryPrimitives.WriteDoubleBigEndian(b, v);
        _out.Write(b);
    }

    void Str(string s)
    {
        var bytes = Encoding.UTF8.GetBytes(s);
        Op('X');
        Span<byte> n = stackalloc byte[4];
        BinaryPrimitives.WriteInt32LittleEndian(n, bytes.Length);
        _out.Write(n);
        _out.Write(bytes);
    }
}
