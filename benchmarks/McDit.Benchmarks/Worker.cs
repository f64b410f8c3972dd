using System.Diagnostics;
using System.Globalization;
using McDit.Torch.Runtime;
using McDit.Torch.Training;
using TorchSharp;

/// <summary>
/// The McDit side of benchmarks/pytorch/compare.py: reads one command per line on stdin and answers one line on stdout,
/// the same protocol as benchmarks/pytorch/reference.py --serve:
/// <c>setup CASE METHOD MODEL INPUT CHANNELS BATCH CLASSES</c> → <c>ok PARAMS</c>; <c>run N</c> → <c>ms T1 … TN</c> (wall clock);
/// <c>cpu</c> → <c>ms C1 … CN</c> (this process's CPU time for each step of the last run);
/// <c>mem</c> → <c>mem PEAK_KIB OTHER_KIB</c> (CPU: peak resident memory over what the process held before setup, and
/// the peak itself; CUDA with <c>--allocator-stats 1</c>: the caching allocator's peak allocated bytes since setup, as
/// <c>torch.cuda.max_memory_allocated</c>, and the peak RSS growth; CUDA without it: the peak RSS growth twice, and
/// compare.py reads the card's per-process memory); <c>allocator</c> → <c>ok pass: …</c> or <c>ok fail: …</c> (the
/// self-test of <see cref="CudaAllocatorStats"/>, run by compare.py in a process of its own before it passes
/// <c>--allocator-stats 1</c>); <c>info</c>; <c>quit</c>.
/// </summary>
static class Worker
{
    public static int Run(string[] args)
    {
        string device = "cpu";
        var precision = TrainingPrecision.Float32;
        bool allocatorStats = false;
        for (int i = 0; i + 1 < args.Length; i += 2)
        {
            if (args[i] == "--device") device = args[i + 1];
            else if (args[i] == "--precision") precision = Enum.Parse<TrainingPrecision>(args[i + 1], true);
            else if (args[i] == "--tf32")
            {
                // fp32 matrix products and convolutions on tensor cores (TF32), as torch.backends.*.allow_tf32 in Python
                bool on = args[i + 1] is "1" or "true";
                torch.backends.cuda.matmul.allow_tf32 = on;
                torch.backends.cudnn.allow_tf32 = on;
            }
            else if (args[i] == "--threads") torch.set_num_threads(int.Parse(args[i + 1], CultureInfo.InvariantCulture));
            else if (args[i] == "--allocator-stats") allocatorStats = args[i + 1] is "1" or "true";
            else { Console.Error.WriteLine($"--serve: unexpected argument '{args[i]}' (expected --device, --precision, --tf32, --threads, --allocator-stats)"); return 2; }
        }
        TorchBackend.EnsureInitialized();
        BenchmarkCase? current = null;
        CudaAllocatorStats? stats = null;
        // The allocator initialises lazily: open its statistics once a CUDA tensor exists.
        CudaAllocatorStats OpenStats()
        {
            if (stats is not null) return stats;
            var cuda = TorchBackend.ResolveDevice(device);
            if (cuda.type != DeviceType.CUDA) throw new InvalidOperationException($"allocator statistics need a CUDA device, not '{device}'");
            using (torch.zeros(1, device: cuda)) torch.cuda.synchronize();
            return stats = CudaAllocatorStats.Open(cuda.index < 0 ? 0 : cuda.index, out var why)
                           ?? throw new NotSupportedException("allocator statistics unavailable: " + why);
        }
        long baseKib = 0;
        var cpuTimes = new List<string>();
        string? line;
        while ((line = Console.In.ReadLine()) is not null)
        {
            var p = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (p.Length == 0) continue;
            try
            {
                switch (p[0])
                {
                    case "setup":
                        current?.Dispose();
                        current = null;
                        GC.Collect();
                        GC.WaitForPendingFinalizers();
                        baseKib = Status("VmRSS");
                        ResetPeak();
                        if (allocatorStats) OpenStats().ResetPeak();
                        current = new BenchmarkCase(p[1], Enum.Parse<TrainingMethod>(p[2], true), p[3], Int(p[4]), Int(p[5]), Int(p[6]), Int(p[7]), device, precision);
                        Console.WriteLine($"ok {current.Parameters}");
                        break;
                    case "run":
                        var times = new List<string>();
                        cpuTimes.Clear();
                        using (var self = Process.GetCurrentProcess())
                            for (int i = 0; i < Int(p[1]); i++)
                            {
                                self.Refresh();
                                var cpu = self.TotalProcessorTime;
                                var sw = Stopwatch.StartNew();
                                current!.Run();
                                times.Add(sw.Elapsed.TotalMilliseconds.ToString("F3", CultureInfo.InvariantCulture));
                                self.Refresh();
                                cpuTimes.Add((self.TotalProcessorTime - cpu).TotalMilliseconds.ToString("F3", CultureInfo.InvariantCulture));
                            }
                        Console.WriteLine("ms " + string.Join(" ", times));
                        break;
                    case "cpu":
                        Console.WriteLine("ms " + string.Join(" ", cpuTimes));
                        break;
                    case "mem":
                        long peak = Status("VmHWM");
                        if (allocatorStats)
                        {
                            torch.cuda.synchronize();
                            Console.WriteLine($"mem {OpenStats().Read().PeakAllocated / 1024} {peak - baseKib}");
                        }
                        else Console.WriteLine($"mem {peak - baseKib} {peak}");
                        break;
                    case "allocator":
                        var target = TorchBackend.ResolveDevice(device);
                        if (target.type != DeviceType.CUDA)
                            Console.WriteLine($"ok unavailable: device {device} is not CUDA; libtorch's c10::DeviceAllocator vtable: {CudaAllocatorStats.LayoutReport()}");
                        else Console.WriteLine("ok " + OpenStats().SelfTest(target));
                        break;
                    case "info":
                        Console.WriteLine($"info McDit on TorchSharp {typeof(torch).Assembly.GetName().Version}, libtorch {TorchBackend.ExternalLibTorchDir ?? "bundled (NuGet, CPU)"}, CUDA {TorchBackend.CudaAvailable}, " +
                                          $"threads {torch.get_num_threads()}, device {device}, precision {precision}" +
                                          (TorchBackend.MklDispatchReport is { } mkl ? $"; {mkl}" : ""));
                        break;
                    case "quit":
                        current?.Dispose();
                        return 0;
                    default:
                        Console.WriteLine($"error unknown command '{p[0]}'");
                        break;
                }
            }
            catch (Exception e)
            {
                Console.WriteLine($"error {e.GetType().Name}: {e.Message.Split('\n')[0]}");
            }
        }
        current?.Dispose();
        return 0;
    }

    static int Int(string s) => int.Parse(s, CultureInfo.InvariantCulture);

    static long Status(string field)
    {
        foreach (var l in File.ReadLines("/proc/self/status"))
            if (l.StartsWith(field + ":", StringComparison.Ordinal))
                // "VmHWM:\t  123456 kB"; from 8 digits on no space is left between the tab and the number.
                return long.Parse(l[(field.Length + 1)..].Split(new[] { ' ', '\t' }, StringSplitOptions.RemoveEmptyEntries)[0], CultureInfo.InvariantCulture);
        return 0;
    }

    // Linux ≥ 4.0: writing 5 to clear_refs resets the peak resident set size (VmHWM) to the current one.
    static void ResetPeak()
    {
        try { File.WriteAllText("/proc/self/clear_refs", "5"); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}
