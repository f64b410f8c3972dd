using System.Buffers.Binary;
using System.Globalization;
using System.Numerics;
using System.Text;
using TorchSharp;

namespace McDit.Torch.Interop;

/// <summary>
/// Reads a Python pickle (protocols 0 to 5) as PyTorch checkpoints hold it, without running anything from it. It builds
/// only dicts (<see cref="PickleDict"/>), OrderedDicts, lists, tuples (<see cref="PickleTuple"/>), strings, bytes, whole
/// numbers (<see cref="long"/>, or <see cref="BigInteger"/> beyond 64 bits), floats, booleans, None (null), tensors and
/// storages (<see cref="TorchTensorRef"/>, <see cref="TorchStorageRef"/>) and <c>argparse.Namespace</c> objects as inert
/// data (<see cref="PickleObject"/>). Every other global is refused with <see cref="UnsafePickleException"/> the moment it
/// is named, before anything could call it.
/// </summary>
/// <remarks>
/// The allowed globals are data constructors only: <c>collections.OrderedDict</c>, <c>torch._utils._rebuild_tensor</c>,
/// <c>_rebuild_tensor_v2</c>, <c>_rebuild_parameter</c>, <c>_rebuild_parameter_with_state</c>, the typed storage classes
/// (<c>torch.FloatStorage</c>, …), <c>torch.device</c> (becomes its string), <c>_codecs.encode</c> (latin-1 text to
/// bytes, how protocol 2 writes bytes) and <c>argparse.Namespace</c>. Memory is bounded by the input: nothing is
/// allocated in proportion to a number read from the pickle.
/// </remarks>
internal sealed class RestrictedUnpickler
{
    readonly byte[] _data;
    readonly string _source;
    int _pos;
    readonly List<object?> _stack = new();
    readonly Stack<int> _marks = new();
    readonly Dictionary<long, object?> _memo = new();

    /// <summary>A reference to an allowed global, pushed by GLOBAL / STACK_GLOBAL.</summary>
    sealed record Global(string Module, string Name)
    {
        public string FullName => $"{Module}.{Name}";
    }

    static readonly Dictionary<string, torch.ScalarType> StorageTypes = new(StringComparer.Ordinal)
    {
        ["FloatStorage"] = torch.ScalarType.Float32,
        ["DoubleStorage"] = torch.ScalarType.Float64,
        ["HalfStorage"] = torch.ScalarType.Float16,
        ["BFloat16Storage"] = torch.ScalarType.BFloat16,
        ["LongStorage"] = torch.ScalarType.Int64,
        ["IntStorage"] = torch.ScalarType.Int32,
        ["ShortStorage"] = torch.ScalarType.Int16,
        ["CharStorage"] = torch.ScalarType.Int8,
        ["ByteStorage"] = torch.ScalarType.Byte,
        ["BoolStorage"] = torch.ScalarType.Bool,
    };

    static readonly HashSet<string> Allowed = new(StringComparer.Ordinal)
    {
        "collections.OrderedDict", "torch._utils._rebuild_tensor", "torch._utils._rebuild_tensor_v2",
        "torch._utils._rebuild_parameter", "torch._utils._rebuild_parameter_with_state", "torch.device",
        "_codecs.encode", "argparse.Namespace",
    };

    RestrictedUnpickler(byte[] data, string source)
    {
        _data = data;
        _source = source;
    }

    /// <summary>Reads the pickle in <paramref name="data"/> and returns its object.</summary>
    /// <param name="data">The pickle bytes (for example <c>archive/data.pkl</c>).</param>
    /// <param name="source">Names the data in error messages (file and entry).</param>
    /// <exception cref="UnsafePickleException">The pickle names a global that is not allowed.</exception>
    /// <exception cref="TorchFormatException">The pickle is truncated or malformed.</exception>
    public static object? Load(byte[] data, string source) => new RestrictedUnpickler(data, source).Run();

    TorchFormatException Bad(string problem, long at) => new(_source, $"its pickle is malformed at byte {at}: {problem}");

    object? Run()
    {
        while (true)
        {
            if (_pos >= _data.Length) throw Bad("the pickle ends before its STOP opcode (the file is truncated or damaged)", _pos);
            int at = _pos;
            byte op = _data[_pos++];
            switch (op)
            {
                case 0x80: Take(1); break;                                     // PROTO
                case 0x95: Take(8); break;                                     // FRAME (framing is only a hint)
                case (byte)'.':                                                // STOP
                    if (_stack.Count != 1) throw Bad($"STOP with {_stack.Count} objects on the stack; expected 1", at);
                    return _stack[0];
                case (byte)'(': _marks.Push(_stack.Count); break;              // MARK
                case (byte)'0': Pop(at); break;                                // POP
                case (byte)'1': PopMark(at); break;                            // POP_MARK
                case (byte)'2': Push(Peek(at)); break;                         // DUP
                case (byte)'N': Push(null); break;
                case 0x88: Push(true); break;                                  // NEWTRUE
                case 0x89: Push(false); break;                                 // NEWFALSE
                case (byte)'I': Push(ParseIntLine(Line(at), at)); break;       // INT (also 00 / 01 booleans)
                case (byte)'J': Push((long)BinaryPrimitives.ReadInt32LittleEndian(Take(4))); break;
                case (byte)'K': Push((long)Take(1)[0]); break;                 // BININT1
                case (byte)'M': Push((long)BinaryPrimitives.ReadUInt16LittleEndian(Take(2))); break;
                case (byte)'L': Push(ParseLongLine(Line(at), at)); break;      // LONG
                case 0x8a: Push(Long(Take(Take(1)[0]))); break;                // LONG1
                case 0x8b: Push(Long(Take(Length32(at)))); break;              // LONG4
                case (byte)'F':                                                // FLOAT
                    if (!double.TryParse(Line(at), NumberStyles.Float, CultureInfo.InvariantCulture, out var f)) throw Bad("FLOAT is not a number", at);
                    Push(f);
                    break;
                case (byte)'G': Push(BinaryPrimitives.ReadDoubleBigEndian(Take(8))); break; // BINFLOAT
                case (byte)'S': Push(ParseQuoted(Line(at), at)); break;        // STRING
                case (byte)'T': Push(Encoding.Latin1.GetString(Take(Length32(at)))); break; // BINSTRING
                case (byte)'U': Push(Encoding.Latin1.GetString(Take(Take(1)[0]))); break;   // SHORT_BINSTRING
                case (byte)'V': Push(Line(at)); break;                         // UNICODE (raw-unicode-escape; ASCII here)
                case (byte)'X': Push(Utf8(Take(Length32(at)), at)); break;     // BINUNICODE
                case 0x8c: Push(Utf8(Take(Take(1)[0]), at)); break;            // SHORT_BINUNICODE
                case 0x8d: Push(Utf8(Take(Length64(at)), at)); break;          // BINUNICODE8
                case (byte)'B': Push(Take(Length32(at)).ToArray()); break;     // BINBYTES
                case (byte)'C': Push(Take(Take(1)[0]).ToArray()); break;       // SHORT_BINBYTES
                case 0x8e: Push(Take(Length64(at)).ToArray()); break;          // BINBYTES8
                case 0x96: Push(Take(Length64(at)).ToArray()); break;          // BYTEARRAY8
                case (byte)'}': Push(new PickleDict()); break;                 // EMPTY_DICT
                case (byte)'d': Push(DictOf(PopMark(at), at)); break;          // DICT
                case (byte)']': Push(new List<object?>()); break;              // EMPTY_LIST
                case (byte)'l': Push(new List<object?>(PopMark(at))); break;   // LIST
                case 0x8f: Push(new List<object?>()); break;                   // EMPTY_SET (as a list)
                case 0x90: AppendTo(PopMark(at), at); break;                   // ADDITEMS
                case 0x91: Push(new List<object?>(PopMark(at))); break;        // FROZENSET (as a list)
                case (byte)')': Push(new PickleTuple(Array.Empty<object?>())); break;
                case (byte)'t': Push(new PickleTuple(PopMark(at))); break;     // TUPLE
                case 0x85: Push(new PickleTuple(new[] { Pop(at) })); break;    // TUPLE1
                case 0x86: { var b = Pop(at); var a = Pop(at); Push(new PickleTuple(new[] { a, b })); break; }
                case 0x87: { var c = Pop(at); var b = Pop(at); var a = Pop(at); Push(new PickleTuple(new[] { a, b, c })); break; }
                case (byte)'a': { var v = Pop(at); AppendTo(new List<object?> { v }, at); break; } // APPEND
                case (byte)'e': AppendTo(PopMark(at), at); break;              // APPENDS
                case (byte)'s': { var v = Pop(at); var k = Pop(at); SetItems(new List<object?> { k, v }, at); break; } // SETITEM
                case (byte)'u': SetItems(PopMark(at), at); break;              // SETITEMS
                case (byte)'g': Push(MemoGet(ParseIndex(Line(at), at), at)); break;  // GET
                case (byte)'h': Push(MemoGet(Take(1)[0], at)); break;          // BINGET
                case (byte)'j': Push(MemoGet(BinaryPrimitives.ReadUInt32LittleEndian(Take(4)), at)); break; // LONG_BINGET
                case (byte)'p': _memo[ParseIndex(Line(at), at)] = Peek(at); break;   // PUT
                case (byte)'q': _memo[Take(1)[0]] = Peek(at); break;           // BINPUT
                case (byte)'r': _memo[BinaryPrimitives.ReadUInt32LittleEndian(Take(4))] = Peek(at); break; // LONG_BINPUT
                case 0x94: _memo[_memo.Count] = Peek(at); break;               // MEMOIZE
                case (byte)'c':                                                // GLOBAL
                {
                    var module = Line(at);
                    var name = Line(at);
                    Push(ResolveGlobal(module, name, at));
                    break;
                }
                case 0x93:                                                     // STACK_GLOBAL
                {
                    var name = Pop(at) as string ?? throw Bad("STACK_GLOBAL expects two strings", at);
                    var module = Pop(at) as string ?? throw Bad("STACK_GLOBAL expects two strings", at);
                    Push(ResolveGlobal(module, name, at));
                    break;
                }
                case (byte)'i':                                                // INST: names a class to instantiate
                {
                    var module = Line(at);
                    var name = Line(at);
                    var g = ResolveGlobal(module, name, at);
                    Push(Call(g, new PickleTuple(PopMark(at)), at));
                    break;
                }
                case (byte)'o':                                                // OBJ
                {
                    var items = PopMark(at);
                    if (items.Count == 0 || items[0] is not Global g) throw Bad("OBJ expects a class", at);
                    Push(Call(g, new PickleTuple(items.Skip(1).ToList()), at));
                    break;
                }
                case (byte)'R':                                                // REDUCE
                {
                    var args = Pop(at) as PickleTuple ?? throw Bad("REDUCE expects an argument tuple", at);
                    var callable = Pop(at) as Global ?? throw Bad("REDUCE expects a callable", at);
                    Push(Call(callable, args, at));
                    break;
                }
                case 0x81:                                                     // NEWOBJ: cls.__new__(cls, *args)
                {
                    var args = Pop(at) as PickleTuple ?? throw Bad("NEWOBJ expects an argument tuple", at);
                    var cls = Pop(at) as Global ?? throw Bad("NEWOBJ expects a class", at);
                    Push(New(cls, args, null, at));
                    break;
                }
                case 0x92:                                                     // NEWOBJ_EX
                {
                    var kwargs = Pop(at) as PickleDict ?? throw Bad("NEWOBJ_EX expects keyword arguments", at);
                    var args = Pop(at) as PickleTuple ?? throw Bad("NEWOBJ_EX expects an argument tuple", at);
                    var cls = Pop(at) as Global ?? throw Bad("NEWOBJ_EX expects a class", at);
                    Push(New(cls, args, kwargs, at));
                    break;
                }
                case (byte)'b':                                                // BUILD
                {
                    var state = Pop(at);
                    Build(Peek(at), state, at);
                    break;
                }
                case (byte)'P': Push(PersistentLoad(new PickleTuple(new object?[] { Line(at) }), at)); break; // PERSID
                case (byte)'Q': Push(PersistentLoad(Pop(at), at)); break;      // BINPERSID
                case 0x82: case 0x83: case 0x84:                               // EXT1/2/4: the copyreg extension registry
                    throw new UnsafePickleException(_source, "copyreg extension code", at);
                case 0x97: case 0x98:                                          // NEXT_BUFFER / READONLY_BUFFER (out-of-band)
                    throw Bad("out-of-band buffers (pickle protocol 5) are not used by torch.save", at);
                default:
                    throw Bad($"unknown pickle opcode 0x{op:x2}", at);
            }
        }
    }

    // ------------------------------------------------------------------ globals and calls

    Global ResolveGlobal(string module, string name, int at)
    {
        if (module == "torch" && StorageTypes.ContainsKey(name)) return new Global(module, name);
        var g = new Global(module, name);
        if (!Allowed.Contains(g.FullName)) throw new UnsafePickleException(_source, g.FullName, at);
        return g;
    }

    object? Call(Global g, PickleTuple args, int at)
    {
        var a = args.Items;
        switch (g.FullName)
        {
            case "collections.OrderedDict":
            {
                var d = new PickleDict(ordered: true);
                if (a.Count == 1 && a[0] is List<object?> pairs)
                    foreach (var p in pairs)
                    {
                        if (p is not PickleTuple { Items.Count: 2 } kv || kv.Items[0] is null) throw Bad("OrderedDict expects (key, value) pairs", at);
                        d[kv.Items[0]!] = kv.Items[1];
                    }
                else if (a.Count == 1 && a[0] is PickleDict src)
                    foreach (var (k, v) in src) d[k] = v;
                else if (a.Count != 0) throw Bad($"OrderedDict called with {a.Count} arguments", at);
                return d;
            }
            case "torch._utils._rebuild_tensor":
            case "torch._utils._rebuild_tensor_v2":
            {
                // (storage, storage_offset, size, stride[, requires_grad, backward_hooks[, metadata]])
                if (a.Count < 4 || a[0] is not TorchStorageRef storage || a[1] is not long offset)
                    throw Bad($"{g.Name} expects (storage, offset, size, stride, …)", at);
                var shape = Longs(a[2], "size", at);
                var stride = Longs(a[3], "stride", at);
                if (shape.Length != stride.Length) throw Bad($"{g.Name}: {shape.Length} sizes but {stride.Length} strides", at);
                return new TorchTensorRef(storage, offset, shape, stride);
            }
            case "torch._utils._rebuild_parameter":
            case "torch._utils._rebuild_parameter_with_state":
                if (a.Count < 1 || a[0] is not TorchTensorRef data) throw Bad($"{g.Name} expects a tensor", at);
                return data;
            case "torch.device":
                if (a.Count is < 1 or > 2 || a[0] is not string type) throw Bad("torch.device expects a device string", at);
                return a.Count == 2 && a[1] is long index ? $"{type}:{index}" : type;
            case "_codecs.encode":
                if (a.Count != 2 || a[0] is not string text || a[1] is not string encoding) throw Bad("_codecs.encode expects (text, encoding)", at);
                if (encoding is not ("latin1" or "latin-1")) throw Bad($"_codecs.encode with encoding '{encoding}'; expected latin1", at);
                return Encoding.Latin1.GetBytes(text);
            case "argparse.Namespace":
                return New(g, args, null, at);
            default:
                // Storage classes are only ever named inside persistent ids, never called.
                throw new UnsafePickleException(_source, g.FullName + "(…) as a call", at);
        }
    }

    object New(Global g, PickleTuple args, PickleDict? kwargs, int at)
    {
        if (g.FullName == "collections.OrderedDict") return Call(g, args, at)!;
        if (g.FullName != "argparse.Namespace") throw new UnsafePickleException(_source, g.FullName + " (instantiated)", at);
        if (args.Items.Count != 0) throw Bad("argparse.Namespace takes keyword arguments only", at);
        var o = new PickleObject(g.Module, g.Name);
        if (kwargs is not null) foreach (var (k, v) in kwargs) o.Attributes[k] = v;
        return o;
    }

    void Build(object? target, object? state, int at)
    {
        switch (target)
        {
            case PickleObject o:
                // state is a dict of attributes, or (dict, slots dict).
                var dicts = state switch
                {
                    PickleDict d => new[] { d },
                    PickleTuple { Items.Count: 2 } t => t.Items.OfType<PickleDict>().ToArray(),
                    _ => throw Bad($"BUILD of {o.Module}.{o.Name} expects a dict of attributes", at),
                };
                foreach (var d in dicts)
                    foreach (var (k, v) in d)
                    {
                        if (k is not string) throw Bad("attribute names must be strings", at);
                        o.Attributes[k] = v;
                    }
                break;
            case TorchTensorRef:
            case PickleDict:
                // Extra Python attributes of a tensor or OrderedDict (for example _metadata of a state dict): data we do not need.
                break;
            default:
                throw Bad($"BUILD on {Describe(target)}, which has no state to set", at);
        }
    }

    object PersistentLoad(object? pid, int at)
    {
        // torch.save: ('storage', storage_type, key, location, numel)
        if (pid is not PickleTuple t || t.Items.Count != 5 || t.Items[0] is not "storage")
            throw Bad($"a persistent id must be ('storage', type, key, location, numel); found {Describe(pid)}", at);
        if (t.Items[1] is not Global { Module: "torch" } type || !StorageTypes.TryGetValue(type.Name, out var dtype))
            throw Bad($"the storage type must be a torch storage class such as torch.FloatStorage; found {Describe(t.Items[1])}", at);
        var key = t.Items[2] switch { string s => s, long l => l.ToString(CultureInfo.InvariantCulture), _ => null }
            ?? throw Bad("the storage key must be a string", at);
        if (key.Length == 0 || key.Length > 64 || key.Any(c => !char.IsAsciiLetterOrDigit(c) && c != '_'))
            throw Bad($"storage key '{key}' is not a record name", at);
        var location = t.Items[3] as string ?? throw Bad("the storage location must be a string", at);
        if (t.Items[4] is not long numel || numel < 0) throw Bad("the storage size must be a whole number ≥ 0", at);
        return new TorchStorageRef(key, dtype, numel, location);
    }

    // ------------------------------------------------------------------ containers

    void AppendTo(List<object?> items, int at)
    {
        if (Peek(at) is not List<object?> list) throw Bad($"APPEND(S) on {Describe(Peek(at))}; expected a list", at);
        list.AddRange(items);
    }

    void SetItems(List<object?> items, int at)
    {
        if (items.Count % 2 != 0) throw Bad("SETITEMS with an odd number of items", at);
        switch (Peek(at))
        {
            case PickleDict d:
                for (int i = 0; i < items.Count; i += 2) d[Key(items[i], at)] = items[i + 1];
                break;
            case PickleObject o:
                for (int i = 0; i < items.Count; i += 2) o.Attributes[items[i] ?? throw Bad("an attribute name is None", at)] = items[i + 1];
                break;
            default:
                throw Bad($"SETITEM(S) on {Describe(Peek(at))}; expected a dict", at);
        }
    }

    // Dict keys are plain values (or flat tuples of them), so comparing and hashing them never recurses deeply.
    object Key(object? k, int at) => k switch
    {
        string or long or bool or double or System.Numerics.BigInteger => k,
        PickleTuple t when t.Items.All(i => i is string or long or bool or double or null) => t,
        _ => throw Bad($"a dict key is {Describe(k)}; expected a string, a number or a flat tuple", at),
    };

    PickleDict DictOf(List<object?> items, int at)
    {
        var d = new PickleDict();
        _stack.Add(d);
        SetItems(items, at);
        _stack.RemoveAt(_stack.Count - 1);
        return d;
    }

    long[] Longs(object? value, string what, int at)
    {
        if (value is not PickleTuple t) throw Bad($"the tensor's {what} must be a tuple of whole numbers", at);
        var r = new long[t.Items.Count];
        for (int i = 0; i < r.Length; i++)
            r[i] = t.Items[i] is long v && v >= 0 ? v : throw Bad($"the tensor's {what} holds {Describe(t.Items[i])}; expected whole numbers ≥ 0", at);
        return r;
    }

    static string Describe(object? o) => o switch
    {
        null => "None",
        string s => $"'{(s.Length > 40 ? s[..40] + "…" : s)}'",
        Global g => g.FullName,
        _ => o.GetType().Name,
    };

    // ------------------------------------------------------------------ stack and memo

    void Push(object? o) => _stack.Add(o);

    object? Pop(int at)
    {
        if (_stack.Count == 0 || (_marks.Count > 0 && _stack.Count <= _marks.Peek())) throw Bad("pop from an empty stack", at);
        var o = _stack[^1];
        _stack.RemoveAt(_stack.Count - 1);
        return o;
    }

    object? Peek(int at)
    {
        if (_stack.Count == 0) throw Bad("the stack is empty", at);
        return _stack[^1];
    }

    List<object?> PopMark(int at)
    {
        if (_marks.Count == 0) throw Bad("no MARK to pop to", at);
        int m = _marks.Pop();
        if (m > _stack.Count) throw Bad("the MARK lies beyond the stack", at);
        var items = _stack.GetRange(m, _stack.Count - m);
        _stack.RemoveRange(m, _stack.Count - m);
        return items;
    }

    object? MemoGet(long index, int at) =>
        _memo.TryGetValue(index, out var v) ? v : throw Bad($"memo entry {index} was never stored", at);

    // ------------------------------------------------------------------ bytes

    ReadOnlySpan<byte> Take(long n)
    {
        if (n < 0 || n > _data.Length - _pos)
            throw Bad($"expected {n} more bytes, but the pickle ends after {_data.Length - _pos} (the file is truncated or damaged)", _pos);
        var span = _data.AsSpan(_pos, (int)n);
        _pos += (int)n;
        return span;
    }

    long Length32(int at)
    {
        long n = BinaryPrimitives.ReadUInt32LittleEndian(Take(4));
        return n <= _data.Length - _pos ? n : throw Bad($"a length of {n} bytes runs past the end of the pickle", at);
    }

    long Length64(int at)
    {
        ulong n = BinaryPrimitives.ReadUInt64LittleEndian(Take(8));
        return n <= (ulong)(_data.Length - _pos) ? (long)n : throw Bad($"a length of {n} bytes runs past the end of the pickle", at);
    }

    string Line(int at)
    {
        int end = Array.IndexOf(_data, (byte)'\n', _pos);
        if (end < 0) throw Bad("a text argument has no end of line", at);
        var s = Encoding.ASCII.GetString(_data, _pos, end - _pos);
        _pos = end + 1;
        return s;
    }

    string Utf8(ReadOnlySpan<byte> bytes, int at)
    {
        try { return new UTF8Encoding(false, true).GetString(bytes); }
        catch (DecoderFallbackException) { throw Bad("a string is not valid UTF-8", at); }
    }

    static object Long(ReadOnlySpan<byte> bytes)
    {
        if (bytes.Length == 0) return 0L;
        var big = new BigInteger(bytes, isUnsigned: false, isBigEndian: false);
        return big >= long.MinValue && big <= long.MaxValue ? (object)(long)big : big;
    }

    object ParseIntLine(string s, int at)
    {
        if (s == "00") return false;
        if (s == "01") return true;
        return ParseLongLine(s, at);
    }

    object ParseLongLine(string s, int at)
    {
        s = s.TrimEnd('L');
        if (BigInteger.TryParse(s, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var v))
            return v >= long.MinValue && v <= long.MaxValue ? (object)(long)v : v;
        throw Bad($"'{s}' is not a whole number", at);
    }

    long ParseIndex(string s, int at) =>
        long.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out var v) ? v : throw Bad($"memo index '{s}' is not a number", at);

    string ParseQuoted(string s, int at)
    {
        if (s.Length >= 2 && (s[0] == '\'' || s[0] == '"') && s[^1] == s[0]) return s[1..^1];
        throw Bad("STRING is not quoted", at);
    }
}
