using TorchSharp;

namespace McDit.Torch.IO;

/// <summary>One tensor's entry in a safetensors header: its name, element type, shape and place in the data buffer.</summary>
public sealed class SafeTensorsEntry
{
    readonly long[] _shape;

    internal SafeTensorsEntry(string name, string dtype, torch.ScalarType scalarType, int elementSize, long[] shape,
        long elementCount, long dataBegin, long dataEnd)
    {
        Name = name; DType = dtype; ScalarType = scalarType; ElementSize = elementSize; _shape = shape;
        ElementCount = elementCount; DataBegin = dataBegin; DataEnd = dataEnd;
    }

    /// <summary>The tensor's name (for example a state-dict key).</summary>
    public string Name { get; }

    /// <summary>The safetensors dtype name: F64, F32, F16, BF16, I64, I32, I16, I8, U8 or BOOL.</summary>
    public string DType { get; }

    /// <summary>The TorchSharp element type that <see cref="DType"/> maps to.</summary>
    public torch.ScalarType ScalarType { get; }

    /// <summary>Bytes per element.</summary>
    public int ElementSize { get; }

    /// <summary>The shape; empty for a scalar.</summary>
    public IReadOnlyList<long> Shape => _shape;

    /// <summary>Number of elements (1 for a scalar, 0 when any dimension is 0).</summary>
    public long ElementCount { get; }

    /// <summary>Number of data bytes: <see cref="ElementCount"/> × <see cref="ElementSize"/>.</summary>
    public long ByteLength => DataEnd - DataBegin;

    /// <summary>Start of the tensor's bytes, relative to the start of the data buffer (just after the header).</summary>
    public long DataBegin { get; }

    /// <summary>End (exclusive) of the tensor's bytes, relative to the start of the data buffer.</summary>
    public long DataEnd { get; }

    internal long[] ShapeArray => _shape;

    /// <inheritdoc/>
    public override string ToString() => $"{Name}: {DType} [{string.Join(", ", _shape)}] @ [{DataBegin}, {DataEnd})";
}
