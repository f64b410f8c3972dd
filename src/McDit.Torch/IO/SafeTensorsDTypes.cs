using TorchSharp;

namespace McDit.Torch.IO;

/// <summary>The safetensors dtype names this library reads and writes, and their TorchSharp element types.</summary>
internal static class SafeTensorsDTypes
{
    static readonly (string Name, torch.ScalarType Type, int Size)[] Table =
    {
        ("F64", torch.ScalarType.Float64, 8),
        ("F32", torch.ScalarType.Float32, 4),
        ("F16", torch.ScalarType.Float16, 2),
        ("BF16", torch.ScalarType.BFloat16, 2),
        ("I64", torch.ScalarType.Int64, 8),
        ("I32", torch.ScalarType.Int32, 4),
        ("I16", torch.ScalarType.Int16, 2),
        ("I8", torch.ScalarType.Int8, 1),
        ("U8", torch.ScalarType.Byte, 1),
        ("BOOL", torch.ScalarType.Bool, 1),
    };

    /// <summary>The supported names, comma-separated, for error messages.</summary>
    public static string SupportedNames { get; } = string.Join(", ", Table.Select(t => t.Name));

    /// <summary>Looks up a safetensors dtype name (case-sensitive, as the format requires).</summary>
    public static bool TryParse(string name, out torch.ScalarType type, out int size)
    {
        foreach (var t in Table)
            if (string.Equals(t.Name, name, StringComparison.Ordinal)) { type = t.Type; size = t.Size; return true; }
        type = default; size = 0;
        return false;
    }

    /// <summary>Looks up the safetensors name of a TorchSharp element type.</summary>
    public static bool TryGetName(torch.ScalarType type, out string name, out int size)
    {
        foreach (var t in Table)
            if (t.Type == type) { name = t.Name; size = t.Size; return true; }
        name = ""; size = 0;
        return false;
    }
}
