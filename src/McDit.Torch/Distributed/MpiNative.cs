using System.Runtime.InteropServices;

namespace McDit.Torch.Distributed;

/// <summary>
/// OpenMPI's C API (libmpi.so.40), bound at run time. OpenMPI's handles are addresses of exported objects
/// (MPI_COMM_WORLD is &amp;ompi_mpi_comm_world, MPI_FLOAT is &amp;ompi_mpi_float, …), so they are looked up with
/// <see cref="NativeLibrary.GetExport"/>; MPI_IN_PLACE is (void*)1 and MPI_STATUS_IGNORE is NULL there.
/// The library is opened RTLD_GLOBAL because OpenMPI's plug-ins resolve its symbols from the global scope.
/// </summary>
internal static class MpiNative
{
    public const string LibraryVariable = "MCDIT_LIBMPI";
    public const int ThreadSerialized = 2; // MPI_THREAD_SERIALIZED in OpenMPI's mpi.h
    public static readonly IntPtr InPlace = 1;

    [UnmanagedFunctionPointer(CallingConvention.Cdecl)] public delegate int InitThreadFn(IntPtr argc, IntPtr argv, int required, out int provided);
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)] public delegate int FlagFn(out int flag);
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)] public delegate int VoidFn();
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)] public delegate int CommIntFn(IntPtr comm, out int value);
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)] public delegate int AbortFn(IntPtr comm, int code);
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)] public delegate int IallreduceFn(IntPtr send, IntPtr recv, int count, IntPtr type, IntPtr op, IntPtr comm, out IntPtr request);
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)] public delegate int IbcastFn(IntPtr buffer, int count, IntPtr type, int root, IntPtr comm, out IntPtr request);
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)] public delegate int IbarrierFn(IntPtr comm, out IntPtr request);
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)] public delegate int TestFn(ref IntPtr request, out int flag, IntPtr status);
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)] public delegate int VersionFn(out int version, out int subversion);

    public static IntPtr Library { get; private set; }
    public static InitThreadFn InitThread = null!;
    public static FlagFn Initialized = null!, Finalized = null!;
    public static VoidFn Finalize = null!;
    public static CommIntFn CommRank = null!, CommSize = null!;
    public static AbortFn Abort = null!;
    public static IallreduceFn Iallreduce = null!;
    public static IbcastFn Ibcast = null!;
    public static IbarrierFn Ibarrier = null!;
    public static TestFn Test = null!;
    public static VersionFn GetVersion = null!;
    public static IntPtr CommWorld, Float, Double, Byte, Sum;

    static readonly object Gate = new();

    /// <summary>Opens libmpi and binds the API once; throws a <see cref="DistributedException"/> saying what to install.</summary>
    public static void Load()
    {
        lock (Gate)
        {
            if (Library != IntPtr.Zero) return;
            var names = Environment.GetEnvironmentVariable(LibraryVariable) is { Length: > 0 } explicitName
                ? new[] { explicitName }
                : new[] { "libmpi.so.40", "libmpi.so" };
            IntPtr handle = IntPtr.Zero;
            string? error = null;
            foreach (var name in names)
            {
                handle = McDit.Torch.Runtime.GlobalLibrary.Open(name, out error);
                if (handle != IntPtr.Zero) break;
            }
            if (handle == IntPtr.Zero)
                throw new DistributedException(
                    $"The MPI backend needs OpenMPI's libmpi.so.40, which could not be loaded ({error}). Install OpenMPI " +
                    $"(Debian/Ubuntu: apt-get install openmpi-bin libopenmpi-dev), or set {LibraryVariable} to the path of libmpi.so.");
            if (!NativeLibrary.TryGetExport(handle, "ompi_mpi_comm_world", out _))
                throw new DistributedException(
                    $"'{names[0]}' is not OpenMPI (it exports no ompi_mpi_comm_world); McDit's MPI backend binds OpenMPI's ABI only. " +
                    "Install OpenMPI, or point " + LibraryVariable + " at its libmpi.so.40.");
            T Fn<T>(string name) where T : Delegate => Marshal.GetDelegateForFunctionPointer<T>(NativeLibrary.GetExport(handle, name));
            InitThread = Fn<InitThreadFn>("MPI_Init_thread");
            Initialized = Fn<FlagFn>("MPI_Initialized");
            Finalized = Fn<FlagFn>("MPI_Finalized");
            Finalize = Fn<VoidFn>("MPI_Finalize");
            CommRank = Fn<CommIntFn>("MPI_Comm_rank");
            CommSize = Fn<CommIntFn>("MPI_Comm_size");
            Abort = Fn<AbortFn>("MPI_Abort");
            Iallreduce = Fn<IallreduceFn>("MPI_Iallreduce");
            Ibcast = Fn<IbcastFn>("MPI_Ibcast");
            Ibarrier = Fn<IbarrierFn>("MPI_Ibarrier");
            Test = Fn<TestFn>("MPI_Test");
            GetVersion = Fn<VersionFn>("MPI_Get_version");
            CommWorld = NativeLibrary.GetExport(handle, "ompi_mpi_comm_world");
            Float = NativeLibrary.GetExport(handle, "ompi_mpi_float");
            Double = NativeLibrary.GetExport(handle, "ompi_mpi_double");
            Byte = NativeLibrary.GetExport(handle, "ompi_mpi_byte");
            Sum = NativeLibrary.GetExport(handle, "ompi_mpi_op_sum");
            Library = handle;
        }
    }

    /// <summary>Throws unless an MPI call returned MPI_SUCCESS (0).</summary>
    public static void Check(int code, string call)
    {
        if (code != 0) throw new DistributedException($"MPI: {call} returned error code {code}.");
    }
}
