using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace McDit.Torch.Distributed;

/// <summary>NCCL's unique id: 128 opaque bytes rank 0 makes and every rank passes to ncclCommInitRank by value.</summary>
[InlineArray(Size)]
internal struct NcclUniqueId
{
    public const int Size = 128;
    byte _element0;
}

/// <summary>NCCL's C API (libnccl.so.2) and the few CUDA runtime calls the NCCL group needs, bound at run time.</summary>
internal static class NcclNative
{
    public const string LibraryVariable = "MCDIT_LIBNCCL";
    public const string CudaRuntimeVariable = "MCDIT_LIBCUDART";
    public const int Success = 0, InProgress = 7, CudaSuccess = 0, CudaNotReady = 600;
    public const int Uint8 = 1, Float32 = 7, Float64 = 8, BFloat16 = 9, Sum = 0;

    [UnmanagedFunctionPointer(CallingConvention.Cdecl)] public delegate int GetVersionFn(out int version);
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)] public delegate int GetUniqueIdFn(out NcclUniqueId id);
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)] public delegate int CommInitRankFn(out IntPtr comm, int nranks, NcclUniqueId id, int rank);
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)] public delegate int CommFn(IntPtr comm);
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)] public delegate int AsyncErrorFn(IntPtr comm, out int error);
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)] public delegate int AllReduceFn(IntPtr send, IntPtr recv, nuint count, int type, int op, IntPtr comm, IntPtr stream);
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)] public delegate int BroadcastFn(IntPtr send, IntPtr recv, nuint count, int type, int root, IntPtr comm, IntPtr stream);
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)] public delegate int GroupFn();
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)] public delegate IntPtr ErrorStringFn(int code);
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)] public delegate int CudaSetDeviceFn(int device);
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)] public delegate int CudaStreamQueryFn(IntPtr stream);

    public static GetVersionFn GetVersion = null!;
    public static GetUniqueIdFn GetUniqueId = null!;
    public static CommInitRankFn CommInitRank = null!;
    public static CommFn CommDestroy = null!, CommAbort = null!;
    public static AsyncErrorFn CommGetAsyncError = null!;
    public static AllReduceFn AllReduce = null!;
    public static BroadcastFn Broadcast = null!;
    public static GroupFn GroupStart = null!, GroupEnd = null!;
    public static ErrorStringFn ErrorString = null!, CudaErrorString = null!;
    public static CudaSetDeviceFn CudaSetDevice = null!;
    public static CudaStreamQueryFn CudaStreamQuery = null!;
    public static int Version { get; private set; }

    static readonly object Gate = new();
    static bool _loaded;

    /// <summary>Binds libnccl.so.2 and the CUDA runtime once; throws a <see cref="DistributedException"/> saying where they were looked for.</summary>
    public static void Load()
    {
        lock (Gate)
        {
            if (_loaded) return;
            var tried = new List<string>();
            var nccl = NativeSearch.Find(Environment.GetEnvironmentVariable(LibraryVariable), new[] { "libnccl.so.2", "libnccl.so" }, "ncclGetUniqueId", tried);
            if (nccl == IntPtr.Zero)
                throw new DistributedException(
                    "The NCCL backend needs libnccl.so.2, which was not found (tried: " + string.Join(", ", tried) + "). It ships with CUDA " +
                    $"builds of PyTorch (pip: site-packages/nvidia/nccl/lib); set {McDit.Torch.Runtime.TorchBackend.LibTorchDirVariable} to " +
                    $"torch's lib folder, put the library on LD_LIBRARY_PATH, or set {LibraryVariable} to its path.");
            tried.Clear();
            var cudart = NativeSearch.Find(Environment.GetEnvironmentVariable(CudaRuntimeVariable),
                new[] { "libcudart.so", "libcudart.so.13", "libcudart.so.12", "libcudart.so.11.0" }, "cudaStreamQuery", tried);
            if (cudart == IntPtr.Zero)
                throw new DistributedException(
                    "The NCCL backend needs the CUDA runtime (libcudart) to wait for its collectives, which was not found (tried: " +
                    string.Join(", ", tried) + $"). Put it on LD_LIBRARY_PATH or set {CudaRuntimeVariable} to its path.");
            T Fn<T>(IntPtr library, string name) where T : Delegate => Marshal.GetDelegateForFunctionPointer<T>(NativeLibrary.GetExport(library, name));
            GetVersion = Fn<GetVersionFn>(nccl, "ncclGetVersion");
            GetUniqueId = Fn<GetUniqueIdFn>(nccl, "ncclGetUniqueId");
            CommInitRank = Fn<CommInitRankFn>(nccl, "ncclCommInitRank");
            CommDestroy = Fn<CommFn>(nccl, "ncclCommDestroy");
            CommAbort = Fn<CommFn>(nccl, "ncclCommAbort");
            CommGetAsyncError = Fn<AsyncErrorFn>(nccl, "ncclCommGetAsyncError");
            AllReduce = Fn<AllReduceFn>(nccl, "ncclAllReduce");
            Broadcast = Fn<BroadcastFn>(nccl, "ncclBroadcast");
            GroupStart = Fn<GroupFn>(nccl, "ncclGroupStart");
            GroupEnd = Fn<GroupFn>(nccl, "ncclGroupEnd");
            ErrorString = Fn<ErrorStringFn>(nccl, "ncclGetErrorString");
            CudaSetDevice = Fn<CudaSetDeviceFn>(cudart, "cudaSetDevice");
            CudaStreamQuery = Fn<CudaStreamQueryFn>(cudart, "cudaStreamQuery");
            CudaErrorString = Fn<ErrorStringFn>(cudart, "cudaGetErrorString");
            Check(GetVersion(out int version), "ncclGetVersion");
            Version = version;
            _loaded = true;
        }
    }

    /// <summary>Throws unless an NCCL call returned ncclSuccess, with NCCL's own description of the error.</summary>
    public static void Check(int code, string call)
    {
        if (code != Success)
            throw new DistributedException($"NCCL: {call} failed: {Marshal.PtrToStringUTF8(ErrorString(code))} (code {code}).");
    }

    /// <summary>Throws unless a CUDA runtime call returned cudaSuccess.</summary>
    public static void CheckCuda(int code, string call)
    {
        if (code != CudaSuccess)
            throw new DistributedException($"CUDA: {call} failed: {Marshal.PtrToStringUTF8(CudaErrorString(code))} (code {code}).");
    }
}
