using Microsoft.ML;
using Microsoft.ML.Data;

namespace McDit.MLNet.Internal;

/// <summary>
/// Reads a column of whole numbers (a class label or a seed) as <see cref="long"/>, whatever its ML.NET type: a key
/// type (1-based raw values, 0 = missing), a signed or unsigned integer, or a float/double holding whole numbers.
/// </summary>
static class IndexColumn
{
    /// <summary>A value that reads as "missing": key 0, NaN, or a non-whole float.</summary>
    public const long Missing = long.MinValue;

    /// <summary>True when <paramref name="type"/> can be read by <see cref="CreateGetter"/>.</summary>
    public static bool IsSupported(DataViewType type) => type switch
    {
        KeyDataViewType => true,
        NumberDataViewType n => n.RawType != typeof(decimal),
        _ => false,
    };

    /// <summary>A description of the accepted types, for error messages.</summary>
    public const string Expected = "a key type (for example from MapValueToKey) or a number holding a whole class index";

    /// <summary>
    /// A reader of the current row's value as a 0-based index: key values become raw − 1, numbers are taken as they
    /// are. Missing keys, NaN and non-whole floats read as <see cref="Missing"/>.
    /// </summary>
    public static Func<long> CreateGetter(DataViewRow row, DataViewSchema.Column column)
    {
        var type = column.Type;
        if (type is KeyDataViewType key)
        {
            return key.RawType switch
            {
                var t when t == typeof(uint) => Make<uint>(row, column, v => v == 0 ? Missing : v - 1L),
                var t when t == typeof(ulong) => Make<ulong>(row, column, v => v == 0 || v > long.MaxValue ? Missing : (long)v - 1),
                var t when t == typeof(ushort) => Make<ushort>(row, column, v => v == 0 ? Missing : v - 1L),
                var t when t == typeof(byte) => Make<byte>(row, column, v => v == 0 ? Missing : v - 1L),
                _ => throw new ArgumentOutOfRangeException(nameof(column), $"Column '{column.Name}' has an unsupported key type {type}."),
            };
        }
        var raw = type.RawType;
        if (raw == typeof(int)) return Make<int>(row, column, v => v);
        if (raw == typeof(long)) return Make<long>(row, column, v => v);
        if (raw == typeof(short)) return Make<short>(row, column, v => v);
        if (raw == typeof(sbyte)) return Make<sbyte>(row, column, v => v);
        if (raw == typeof(uint)) return Make<uint>(row, column, v => v);
        if (raw == typeof(ulong)) return Make<ulong>(row, column, v => v > long.MaxValue ? Missing : (long)v);
        if (raw == typeof(ushort)) return Make<ushort>(row, column, v => v);
        if (raw == typeof(byte)) return Make<byte>(row, column, v => v);
        if (raw == typeof(float)) return Make<float>(row, column, v => Whole(v));
        if (raw == typeof(double)) return Make<double>(row, column, Whole);
        throw new ArgumentOutOfRangeException(nameof(column), $"Column '{column.Name}' has type {type}; expected {Expected}.");
    }

    static long Whole(double v) =>
        double.IsFinite(v) && Math.Floor(v) == v && Math.Abs(v) < 9e15 ? (long)v : Missing;

    static Func<long> Make<T>(DataViewRow row, DataViewSchema.Column column, Func<T, long> convert)
    {
        var getter = row.GetGetter<T>(column);
        T value = default!;
        return () =>
        {
            getter(ref value);
            return convert(value);
        };
    }
}
