using System.Buffers.Binary;
using TorchSharp;
using static TorchSharp.torch;

namespace McDit.Torch.Training;

/// <summary>
/// Checks a saved CPU random-generator state before it reaches libtorch. libtorch's <c>CPUGeneratorImpl::set_state</c>
/// rejects a bad state with a C++ exception that TorchSharp 0.107 does not catch, so a damaged state would abort the
/// process; here it is an <see cref="InvalidDataException"/> instead.
/// </summary>
/// <remarks>
/// Layout (libtorch's <c>CPUGeneratorImplState</c>, 5,056 bytes, little-endian): the initial seed (u64 @0), <c>left</c>
/// (i32 @8, 1..624), <c>seeded</c> (i32 @12, 1), <c>next</c> (u64 @16, ≤ 624), the mt19937 state (624 × u64 @24, each
/// &lt; 2³²), the cached double normal (normal_x, normal_y, normal_rho: f64 @5016, @5024, @5032; normal_is_valid: i32
/// @5040, 0 or 1), the cached float normal (f32 @5048) and its validity (bool @5052, 0 or 1).
/// </remarks>
public static class GeneratorState
{
    /// <summary>Size in bytes of the state <c>Generator.get_state()</c> returns for a CPU generator.</summary>
    public const int CpuStateBytes = 5056;
    const int MersenneN = 624;

    /// <summary>Throws <see cref="InvalidDataException"/> naming <paramref name="source"/> unless <paramref name="state"/> is a CPU generator state libtorch accepts.</summary>
    public static void CheckCpuState(Tensor state, string source)
    {
        ArgumentNullException.ThrowIfNull(state);
        if (state.dtype != ScalarType.Byte || state.dim() != 1 || state.shape[0] != CpuStateBytes || state.device_type != DeviceType.CPU)
            throw Bad(source, $"expected a CPU uint8 tensor of shape [{CpuStateBytes}], found {state.dtype} [{string.Join(", ", state.shape)}] on {state.device_type}");
        var bytes = state.contiguous().data<byte>().ToArray();
        int left = BinaryPrimitives.ReadInt32LittleEndian(bytes.AsSpan(8));
        int seeded = BinaryPrimitives.ReadInt32LittleEndian(bytes.AsSpan(12));
        ulong next = BinaryPrimitives.ReadUInt64LittleEndian(bytes.AsSpan(16));
        if (left < 1 || left > MersenneN) throw Bad(source, $"mt19937 'left' is {left}, expected 1..{MersenneN}");
        if (seeded != 1) throw Bad(source, $"mt19937 'seeded' is {seeded}, expected 1");
        if (next > MersenneN) throw Bad(source, $"mt19937 'next' is {next}, expected 0..{MersenneN}");
        for (int i = 0; i < MersenneN; i++)
            if (BinaryPrimitives.ReadUInt64LittleEndian(bytes.AsSpan(24 + 8 * i)) > uint.MaxValue)
                throw Bad(source, $"mt19937 state word {i} does not fit in 32 bits");
        int normalValid = BinaryPrimitives.ReadInt32LittleEndian(bytes.AsSpan(5040));
        if (normalValid is not (0 or 1)) throw Bad(source, $"'normal_is_valid' is {normalValid}, expected 0 or 1");
        if (normalValid == 1 && !double.IsFinite(BinaryPrimitives.ReadDoubleLittleEndian(bytes.AsSpan(5024))))
            throw Bad(source, "the cached normal sample is not finite");
        byte floatValid = bytes[5052];
        if (floatValid > 1) throw Bad(source, $"the cached float sample's flag is {floatValid}, expected 0 or 1");
        if (floatValid == 1 && !float.IsFinite(BinaryPrimitives.ReadSingleLittleEndian(bytes.AsSpan(5048))))
            throw Bad(source, "the cached float normal sample is not finite");
    }

    /// <summary>Checks <paramref name="state"/> (see <see cref="CheckCpuState"/>) and restores it into <paramref name="generator"/>.</summary>
    public static void Restore(Generator generator, Tensor state, string source)
    {
        ArgumentNullException.ThrowIfNull(generator);
        CheckCpuState(state, source);
        generator.set_state(state);
    }

    static InvalidDataException Bad(string source, string what) =>
        new($"{source}: the random-generator state 'rng.cpu' is damaged ({what}); the run cannot resume exactly from it. Resume from an older checkpoint.");
}
