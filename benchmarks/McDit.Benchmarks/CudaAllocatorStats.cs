using System.Runtime.InteropServices;
using TorchSharp;

/// <summary>
/// libtorch's CUDA caching-allocator statistics (what <c>torch.cuda.max_memory_allocated</c> reads in Python), for the
/// GPU benchmark's memory comparison. TorchSharp 0.107 does not expose them, and libtorch has no C entry point for them:
/// they are a virtual method of <c>c10::DeviceAllocator</c> (<c>getDeviceStats</c>), reached here through the
/// allocator's vtable. That is only safe if the vtable has the layout this class assumes, so <see cref="Open"/> checks
/// it first (the allocator's type derives from <c>c10::DeviceAllocator</c>; that class's vtable has the pure-virtual
/// pattern of libtorch 2.8–2.11) and <see cref="SelfTest"/> checks the figures against a known allocation. The GPU
/// script runs the self-test in a process of its own and only uses these figures when it passes (a wrong layout could
/// crash the process); otherwise it falls back to the per-process memory nvidia-smi reports.
/// </summary>
sealed class CudaAllocatorStats
{
    // Itanium C++ ABI names, exported by libc10.so and libstdc++.so.6.
    const string GetAllocatorSymbol = "_ZN3c1012GetAllocatorERKNS_10DeviceTypeE";          // c10::GetAllocator(const DeviceType&)
    const string CudaAllocatorPointerSymbol = "_ZN3c104cuda20CUDACachingAllocator9allocatorE";  // c10::cuda::CUDACachingAllocator::allocator
    const string DeviceAllocatorVtableSymbol = "_ZTVN3c1015DeviceAllocatorE";             // vtable for c10::DeviceAllocator
    const string IsSimpleDataPtrSymbol = "_ZNK3c109Allocator18is_simple_data_ptrERKNS_7DataPtrE";
    const string SingleInheritanceTypeInfoVtable = "_ZTVN10__cxxabiv120__si_class_type_infoE";
    const string DeviceAllocatorTypeName = "N3c1015DeviceAllocatorE";

    // c10::DeviceAllocator's virtual slots in libtorch 2.8-2.11 (checked against libc10.so 2.10's exported vtable):
    // 0-1 destructors, 2 allocate, 3 is_simple_data_ptr, 4 raw_deleter, 5 copy_data, 6 initialized, 7 emptyCache,
    // 8 recordStream, 9 getDeviceStats, 10 resetAccumulatedStats, 11 resetPeakStats, 12 getMemoryInfo.
    const int IsSimpleDataPtrSlot = 3, FirstPureSlot = 5, GetDeviceStatsSlot = 9, ResetPeakStatsSlot = 11, GetMemoryInfoSlot = 12;

    // c10::CachingDeviceAllocator::DeviceStats: nine StatArrays (3 Stats of 4 int64: current, peak, allocated, freed),
    // then counters (976 bytes in 2.10). allocated_bytes is the fifth array, reserved_bytes the sixth; [0] is the aggregate.
    const int StatArrayBytes = 3 * 4 * 8, AllocatedBytesOffset = 4 * StatArrayBytes, ReservedBytesOffset = 5 * StatArrayBytes;
    const int DeviceStatsBufferBytes = 4096;

    [UnmanagedFunctionPointer(CallingConvention.Cdecl)] delegate IntPtr GetAllocatorFn(ref sbyte deviceType);
    // A member function returning a class in memory: the hidden result pointer comes first, then 'this'.
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)] delegate IntPtr GetDeviceStatsFn(IntPtr result, IntPtr self, sbyte device);
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)] delegate void ResetPeakStatsFn(IntPtr self, sbyte device);

    readonly IntPtr _allocator;
    readonly GetDeviceStatsFn _getDeviceStats;
    readonly ResetPeakStatsFn _resetPeakStats;
    readonly sbyte _device;

    CudaAllocatorStats(IntPtr allocator, IntPtr vtable, sbyte device)
    {
        _allocator = allocator;
        _device = device;
        _getDeviceStats = Marshal.GetDelegateForFunctionPointer<GetDeviceStatsFn>(Marshal.ReadIntPtr(vtable, GetDeviceStatsSlot * IntPtr.Size));
        _resetPeakStats = Marshal.GetDelegateForFunctionPointer<ResetPeakStatsFn>(Marshal.ReadIntPtr(vtable, ResetPeakStatsSlot * IntPtr.Size));
    }

    /// <summary>The allocator's figures for the device, in bytes.</summary>
    public readonly record struct Figures(long Allocated, long PeakAllocated, long Reserved, long PeakReserved);

    /// <summary>
    /// Checks the layout and returns the CUDA allocator's statistics for <paramref name="device"/>, or null with the
    /// reason in <paramref name="why"/>. Call it after a CUDA tensor exists (the allocator initialises lazily).
    /// </summary>
    public static CudaAllocatorStats? Open(int device, out string why)
    {
        if (!OperatingSystem.IsLinux() || RuntimeInformation.ProcessArchitecture != Architecture.X64) { why = "only on Linux x64 (Itanium C++ ABI)"; return null; }
        if (!CheckDeviceAllocatorLayout(out why, out var c10, out var stdcxx)) return null;
        if (!NativeLibrary.TryGetExport(c10, GetAllocatorSymbol, out var getAllocator)) { why = $"libc10.so exports no {GetAllocatorSymbol}"; return null; }
        sbyte cuda = (sbyte)DeviceType.CUDA;
        var allocator = Marshal.GetDelegateForFunctionPointer<GetAllocatorFn>(getAllocator)(ref cuda);
        // Where none is registered for the device type: c10_cuda's own pointer (std::atomic<CUDAAllocator*>, a plain load on x64).
        if (allocator == IntPtr.Zero && NativeLibrary.TryLoad("libc10_cuda.so", out var c10Cuda)
            && NativeLibrary.TryGetExport(c10Cuda, CudaAllocatorPointerSymbol, out var pointer))
            allocator = Marshal.ReadIntPtr(pointer);
        if (allocator == IntPtr.Zero) { why = "no CUDA allocator is registered (is this libtorch built with CUDA?)"; return null; }
        var vtable = Marshal.ReadIntPtr(allocator);
        if (!DerivesFromDeviceAllocator(Marshal.ReadIntPtr(vtable, -IntPtr.Size), stdcxx, out var chain))
        {
            why = $"the CUDA allocator's type ({chain}) does not derive from c10::DeviceAllocator by single inheritance";
            return null;
        }
        why = $"allocator type {chain}";
        return new CudaAllocatorStats(allocator, vtable, checked((sbyte)device));
    }

    /// <summary>
    /// <c>--allocator-abi-check LIB</c>: calls a C++ object of the assumed shape (benchmarks/gpu/abi, compiled by
    /// benchmarks/gpu/abi-check.sh) through the same vtable slots and offsets as on libtorch; prints the figures and
    /// returns 0 when they are the ones it set.
    /// </summary>
    public static int AbiCheck(string library)
    {
        var lib = NativeLibrary.Load(library);
        var make = Marshal.GetDelegateForFunctionPointer<MakeFn>(NativeLibrary.GetExport(lib, "mcdit_fake_device_allocator"));
        int size = Marshal.GetDelegateForFunctionPointer<SizeFn>(NativeLibrary.GetExport(lib, "mcdit_fake_device_stats_size"))();
        var fake = make();
        var stats = new CudaAllocatorStats(fake, Marshal.ReadIntPtr(fake), device: 2);
        var before = stats.Read();
        stats.ResetPeak();
        var after = stats.Read();
        bool pass = size <= DeviceStatsBufferBytes && before == new Figures(1002, 5002, 8002, 9002) && after == new Figures(1002, 1002, 8002, 9002);
        Console.WriteLine($"{(pass ? "pass" : "fail")}: DeviceStats {size} bytes (buffer {DeviceStatsBufferBytes}); read {before}, after the peak reset {after} " +
                          "(expected 1002, 5002, 8002, 9002, then peak 1002)");
        return pass ? 0 : 1;
    }

    [UnmanagedFunctionPointer(CallingConvention.Cdecl)] delegate IntPtr MakeFn();
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)] delegate int SizeFn();

    /// <summary>The current figures (one call into the allocator, which takes its lock).</summary>
    public Figures Read()
    {
        var buffer = Marshal.AllocHGlobal(DeviceStatsBufferBytes);
        try
        {
            for (int i = 0; i < DeviceStatsBufferBytes; i += 8) Marshal.WriteInt64(buffer, i, 0);
            _getDeviceStats(buffer, _allocator, _device);
            return new Figures(Marshal.ReadInt64(buffer, AllocatedBytesOffset), Marshal.ReadInt64(buffer, AllocatedBytesOffset + 8),
                               Marshal.ReadInt64(buffer, ReservedBytesOffset), Marshal.ReadInt64(buffer, ReservedBytesOffset + 8));
        }
        finally { Marshal.FreeHGlobal(buffer); }
    }

    /// <summary>Sets the peaks to the current figures (<c>torch.cuda.reset_peak_memory_stats</c>).</summary>
    public void ResetPeak() => _resetPeakStats(_allocator, _device);

    /// <summary>
    /// Checks the figures against a known allocation: 64 MiB more allocated while a 64 MiB tensor lives, the same as
    /// before once it is freed, peaks at least the current figures, reserved at least allocated, and the peak equal to
    /// the current figure after <see cref="ResetPeak"/>. Returns a line
    /// that starts with "pass" or "fail".
    /// </summary>
    public string SelfTest(torch.Device device)
    {
        const long Bytes = 64L << 20;
        torch.cuda.synchronize();
        var before = Read();
        Figures during;
        using (var block = torch.empty(new long[] { Bytes / 4 }, torch.float32, device))
        {
            torch.cuda.synchronize();
            during = Read();
        }
        torch.cuda.synchronize();
        var after = Read();
        ResetPeak();
        var reset = Read();
        bool pass = during.Allocated - before.Allocated == Bytes && after.Allocated == before.Allocated
                    && during.PeakAllocated >= during.Allocated && during.Reserved >= during.Allocated
                    && during.PeakReserved >= during.Reserved && before.Allocated >= 0
                    && after.PeakAllocated >= during.Allocated && reset.PeakAllocated == reset.Allocated;
        return $"{(pass ? "pass" : "fail")}: allocated {before.Allocated} -> {during.Allocated} -> {after.Allocated} bytes around a {Bytes}-byte tensor, " +
               $"peak {during.PeakAllocated} (after reset {reset.PeakAllocated}), reserved {during.Reserved}, peak reserved {during.PeakReserved}";
    }

    /// <summary>Whether this process's libtorch has the c10::DeviceAllocator vtable layout assumed here (any device).</summary>
    public static string LayoutReport() => CheckDeviceAllocatorLayout(out var why, out _, out _) ? "the layout assumed (getDeviceStats at slot 9)" : why;

    // c10::DeviceAllocator's own vtable (exported): the slots assumed above must be the pure virtuals (copy_data,
    // initialized … resetPeakStats), is_simple_data_ptr at slot 3 and getMemoryInfo (implemented) after them. A libtorch
    // that added or moved a virtual method fails here instead of calling the wrong one.
    static bool CheckDeviceAllocatorLayout(out string why, out IntPtr c10, out IntPtr stdcxx)
    {
        stdcxx = IntPtr.Zero;
        // By soname: the copy TorchSharp (or LIBTORCH_DIR) already loaded.
        if (!NativeLibrary.TryLoad("libc10.so", out c10)) { why = "libc10.so is not loaded"; return false; }
        if (!NativeLibrary.TryLoad("libstdc++.so.6", out stdcxx)) { why = "libstdc++.so.6 is not loaded"; return false; }
        if (!NativeLibrary.TryGetExport(stdcxx, "__cxa_pure_virtual", out var pure)
            || !NativeLibrary.TryGetExport(c10, DeviceAllocatorVtableSymbol, out var vtableSymbol)
            || !NativeLibrary.TryGetExport(c10, IsSimpleDataPtrSymbol, out var isSimpleDataPtr))
        {
            why = "libc10.so lacks c10::DeviceAllocator (libtorch older than 2.8?)";
            return false;
        }
        var slots = vtableSymbol + 2 * IntPtr.Size;  // past offset-to-top and the type_info pointer
        IntPtr Slot(int i) => Marshal.ReadIntPtr(slots, i * IntPtr.Size);
        for (int i = FirstPureSlot; i <= ResetPeakStatsSlot; i++)
            if (Slot(i) != pure) { why = $"c10::DeviceAllocator's slot {i} is not pure virtual: an unknown vtable layout"; return false; }
        if (Slot(IsSimpleDataPtrSlot) != isSimpleDataPtr || Slot(GetMemoryInfoSlot) == pure || Slot(GetMemoryInfoSlot) == IntPtr.Zero)
        {
            why = "c10::DeviceAllocator's vtable has an unknown layout";
            return false;
        }
        why = "";
        return true;
    }

    // Walks the type_info chain (__si_class_type_info: vptr, name, base) from the allocator's dynamic type upwards.
    static bool DerivesFromDeviceAllocator(IntPtr typeInfo, IntPtr stdcxx, out string chain)
    {
        var names = new List<string>();
        bool found = false;
        if (NativeLibrary.TryGetExport(stdcxx, SingleInheritanceTypeInfoVtable, out var siVtable))
            for (int depth = 0; typeInfo != IntPtr.Zero && depth < 8; depth++)
            {
                var name = (Marshal.PtrToStringAnsi(Marshal.ReadIntPtr(typeInfo, IntPtr.Size)) ?? "?").TrimStart('*');
                names.Add(name);
                if (name == DeviceAllocatorTypeName) { found = true; break; }
                if (Marshal.ReadIntPtr(typeInfo) != siVtable + 2 * IntPtr.Size) break;  // not single inheritance: stop
                typeInfo = Marshal.ReadIntPtr(typeInfo, 2 * IntPtr.Size);
            }
        chain = names.Count == 0 ? "unknown" : string.Join(" : ", names);
        return found;
    }
}
