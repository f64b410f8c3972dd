using System.Runtime.InteropServices;
using static TorchSharp.torch;

namespace McDit.Torch.Runtime;

/// <summary>Raw memory of tensors for native code: the collective engines and the fused CPU updates (host pointers on CPU, device pointers on CUDA).</summary>
internal static class TensorMemory
{
    /// <summary>Elements per engine call: counts are C ints, so larger tensors go in pieces.</summary>
    public const long MaxElementsPerCall = 1L << 30;

    /// <summary>Address of the first element; the tensor must be contiguous (the engines write through it in place).</summary>
    public static IntPtr Pointer(Tensor tensor, string operation)
    {
        if (!tensor.is_contiguous())
            throw new ArgumentException($"{operation}: tensor of shape [{string.Join(", ", tensor.shape)}] is not contiguous; collectives need contiguous tensors.", nameof(tensor));
        // TorchSharp's own binding of at::Tensor::data_ptr() (storage<T>() would convert to T's dtype first).
        var pointer = THSTensor_data(tensor.Handle);
        if (pointer == IntPtr.Zero && tensor.numel() > 0)
            throw new InvalidOperationException($"{operation}: the tensor has no data pointer.");
        return pointer;
    }

    [DllImport("LibTorchSharp")]
    static extern IntPtr THSTensor_data(IntPtr handle);

    /// <summary>Splits [0, count) into pieces of at most <see cref="MaxElementsPerCall"/>.</summary>
    public static IEnumerable<(long Offset, int Count)> Pieces(long count)
    {
        for (long offset = 0; offset < count; offset += MaxElementsPerCall)
            yield return (offset, (int)Math.Min(MaxElementsPerCall, count - offset));
    }
}
