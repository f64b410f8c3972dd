using System.Globalization;
using System.Runtime.InteropServices;
using TorchSharp;

namespace McDit.Torch.Runtime;

/// <summary>How many intra-op threads libtorch was given, and why.</summary>
/// <param name="Threads">The thread count set with <c>torch.set_num_threads</c>.</param>
/// <param name="Reason">In words: "--threads 3", "OMP_NUM_THREADS=1", "2 cores, 0.1 busy with other processes; …".</param>
public sealed record TorchThreadChoice(int Threads, string Reason);

/// <summary>
/// libtorch's CPU threading on a shared machine. OpenMP's default wait policy spins a thread for a while after each
/// parallel region; with more runnable threads than cores the spinning threads steal the cores from the ones doing
/// work, and small-tensor training slows down many times over (0.03 instead of 1.75 steps/s was seen). So McDit
/// (1) asks OpenMP to sleep instead of spinning (<c>OMP_WAIT_POLICY=PASSIVE</c>, <c>KMP_BLOCKTIME=0</c>,
/// <c>GOMP_SPINCOUNT=0</c>), in the native environment before libtorch loads, unless the user set them; and (2)
/// gives libtorch only the cores that other processes leave free: cores − busy cores, rounded, at least 1 (at least 2
/// with <see cref="BatchHalves"/>, whose single-thread halves do not wait for each other op by op). The busy
/// cores are measured without the CPU time of this process (its start-up JIT) and of its parent (<c>dotnet run</c> keeps
/// a core busy for seconds after starting the program it built), and are the least of up to three short windows, so a
/// burst that ends at once does not cost a thread while a steady load does. <c>OMP_NUM_THREADS</c>, when set, and an
/// explicit count win.
/// </summary>
public static class TorchThreadPolicy
{
    static readonly (string Name, string Value)[] WaitPolicy =
        { ("OMP_WAIT_POLICY", "PASSIVE"), ("KMP_BLOCKTIME", "0"), ("GOMP_SPINCOUNT", "0") };

    static readonly object Gate = new();
    static bool _environmentPrepared;

    /// <summary>The last choice applied in this process (null before the first).</summary>
    public static TorchThreadChoice? Current { get; private set; }

    /// <summary>
    /// Sets the OpenMP wait-policy variables in the process's native environment (libc <c>setenv</c>; .NET's own
    /// <see cref="Environment.SetEnvironmentVariable(string, string)"/> does not reach native code on Unix) where the
    /// user has not set them. Only effective before libtorch's OpenMP runtime loads; <see cref="TorchBackend.EnsureInitialized"/>
    /// calls it first.
    /// </summary>
    public static void PrepareEnvironment()
    {
        lock (Gate)
        {
            if (_environmentPrepared) return;
            _environmentPrepared = true;
            foreach (var (name, value) in WaitPolicy)
            {
                if (!string.IsNullOrEmpty(Environment.GetEnvironmentVariable(name))) continue;
                Environment.SetEnvironmentVariable(name, value);
                if (!OperatingSystem.IsWindows())
                {
                    try { _ = setenv(name, value, 0); }
                    catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException) { }
                }
            }
        }
    }

    [DllImport("libc", EntryPoint = "setenv")]
    static extern int setenv([MarshalAs(UnmanagedType.LPUTF8Str)] string name, [MarshalAs(UnmanagedType.LPUTF8Str)] string value, int overwrite);

    /// <summary>
    /// The thread count for <paramref name="requested"/> threads (null: automatic). Automatic is
    /// <c>OMP_NUM_THREADS</c> when set to a positive number, else <see cref="ForLoad"/> of the measured load.
    /// </summary>
    public static TorchThreadChoice Choose(int? requested = null)
    {
        if (requested is { } r)
        {
            ArgumentOutOfRangeException.ThrowIfLessThan(r, 1, nameof(requested));
            return new TorchThreadChoice(r, string.Create(CultureInfo.InvariantCulture, $"--threads {r}"));
        }
        var env = Environment.GetEnvironmentVariable("OMP_NUM_THREADS");
        if (int.TryParse(env, NumberStyles.None, CultureInfo.InvariantCulture, out int fromEnv) && fromEnv >= 1)
            return new TorchThreadChoice(fromEnv, $"OMP_NUM_THREADS={fromEnv}");
        int cores = Environment.ProcessorCount;
        double? busy = MeasureSteadyLoad(cores);
        bool halves = BatchHalves.Enabled;
        int threads = ForLoad(cores, busy ?? 0, halves);
        bool keptForHalves = halves && threads > ForLoad(cores, busy ?? 0);
        return new TorchThreadChoice(threads, busy is { } b
            ? string.Create(CultureInfo.InvariantCulture,
                $"{cores} cores, {b:F1} busy with other processes{(keptForHalves ? ", 2 kept for the batch halves" : "")}; --threads N overrides")
            : string.Create(CultureInfo.InvariantCulture, $"{cores} cores"));
    }

    /// <summary>
    /// The rule: the free cores, rounded, between 1 and <paramref name="cores"/>, so that an OpenMP team never waits at
    /// every barrier for a thread that is not running. With <paramref name="batchHalves"/> (the default on a CPU) at least
    /// 2 on a machine of 2 or more cores: then each half of a batch runs on its own single-thread team, which has no
    /// barrier to wait at, and two such threads get twice one thread's share of a loaded machine (beside 4 busy
    /// processes on 2 cores the demo trained 1.55× faster than with 1 thread; docs/results.md, "Threads under load").
    /// </summary>
    /// <param name="cores">Cores available to this process.</param>
    /// <param name="busyCores">Cores other processes keep busy (0 to <paramref name="cores"/> or more).</param>
    /// <param name="batchHalves">Whether CPU batches run in two halves (<see cref="BatchHalves.Enabled"/>).</param>
    public static int ForLoad(int cores, double busyCores, bool batchHalves = false)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(cores, 1);
        if (!double.IsFinite(busyCores) || busyCores < 0) busyCores = 0;
        int free = Math.Clamp((int)Math.Round(cores - busyCores, MidpointRounding.AwayFromZero), 1, cores);
        return batchHalves ? Math.Max(free, Math.Min(2, cores)) : free;
    }

    /// <summary>
    /// Applies <see cref="Choose"/>: prepares the environment, loads libtorch and sets its intra-op thread count.
    /// </summary>
    public static TorchThreadChoice Apply(int? requested = null)
    {
        PrepareEnvironment();
        var choice = Choose(requested);
        TorchBackend.EnsureInitialized();
        torch.set_num_threads(choice.Threads);
        Current = choice;
        return choice;
    }

    /// <summary>Applies the automatic choice only when nothing was applied yet in this process (the trainer's default).</summary>
    public static TorchThreadChoice ApplyOnce(int? requested = null)
    {
        if (requested is null && Current is { } current) return current;
        return Apply(requested);
    }

    /// <summary>Windows of the load measurement, and how many are taken at most.</summary>
    static readonly TimeSpan LoadWindow = TimeSpan.FromMilliseconds(200);
    const int LoadWindows = 3;

    // The least busy of up to LoadWindows windows; stops as soon as one leaves every core free (the idle case costs one window).
    static double? MeasureSteadyLoad(int cores)
    {
        double? least = null;
        for (int i = 0; i < LoadWindows; i++)
        {
            var busy = MeasureBusyCores(LoadWindow);
            if (busy is null) return least;
            least = least is { } l ? Math.Min(l, busy.Value) : busy.Value;
            if (ForLoad(cores, least.Value) == cores) break;
        }
        return least;
    }

    /// <summary>
    /// Cores that other processes kept busy (user, nice, system, irq time) over <paramref name="window"/>, from
    /// <c>/proc/stat</c> less the time of this process and of its parent (which waits for it) from <c>/proc/PID/stat</c>;
    /// null where they cannot be read (not Linux).
    /// </summary>
    public static double? MeasureBusyCores(TimeSpan window) => MeasureLoad(window)?.Others;

    // Busy cores over the window: all of them, and those of other processes (all less this process's and its parent's time).
    internal static (double All, double Others)? MeasureLoad(TimeSpan window)
    {
        var first = ReadCpuTimes();
        var selfFirst = ReadOwnAndParentCpuTime();
        if (first is null) return null;
        Thread.Sleep(window);
        var second = ReadCpuTimes();
        var selfSecond = ReadOwnAndParentCpuTime();
        if (second is null) return null;
        double total = second.Value.Total - first.Value.Total, idle = second.Value.Idle - first.Value.Idle;
        if (total <= 0) return null;
        double own = selfFirst is { } a && selfSecond is { } b ? Math.Max(0, b - a) : 0;
        int cores = Environment.ProcessorCount;
        return (Math.Max(0, (total - idle) / total) * cores, Math.Max(0, (total - idle - own) / total) * cores);
    }

    // This process's user + system time in clock ticks (fields 14 and 15 of /proc/self/stat; the same unit as /proc/stat).
    internal static double? ReadOwnCpuTime() => ReadProcessCpuTime("self").Ticks;

    // User + system ticks of a process (a pid or "self") and its parent's pid (field 4).
    static (double? Ticks, int? Parent) ReadProcessCpuTime(string process)
    {
        try
        {
            var path = $"/proc/{process}/stat";
            if (!File.Exists(path)) return (null, null);
            var line = File.ReadAllText(path);
            int close = line.LastIndexOf(')'); // the command name may hold spaces and parentheses
            if (close < 0) return (null, null);
            var fields = line[(close + 1)..].Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (fields.Length < 13) return (null, null);
            return (double.Parse(fields[11], CultureInfo.InvariantCulture) + double.Parse(fields[12], CultureInfo.InvariantCulture),
                int.TryParse(fields[1], NumberStyles.None, CultureInfo.InvariantCulture, out int parent) ? parent : null);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException)
        {
            return (null, null);
        }
    }

    // This process's time plus its parent's: the parent waits for it (a shell, or `dotnet run`, which keeps a core busy
    // for seconds after it starts the program it just built, and would otherwise cost that program a thread).
    static double? ReadOwnAndParentCpuTime()
    {
        var (own, parent) = ReadProcessCpuTime("self");
        if (own is null) return null;
        if (parent is not { } ppid || ppid <= 1) return own;
        return own + (ReadProcessCpuTime(ppid.ToString(CultureInfo.InvariantCulture)).Ticks ?? 0);
    }

    static (double Total, double Idle)? ReadCpuTimes()
    {
        try
        {
            if (!File.Exists("/proc/stat")) return null;
            using var reader = new StreamReader("/proc/stat");
            var line = reader.ReadLine();
            if (line is null || !line.StartsWith("cpu ", StringComparison.Ordinal)) return null;
            var values = line.Split(' ', StringSplitOptions.RemoveEmptyEntries).Skip(1).Take(8)
                .Select(v => double.Parse(v, CultureInfo.InvariantCulture)).ToArray();
            if (values.Length < 5) return null;
            return (values.Sum(), values[3] + values[4]); // idle + iowait
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException)
        {
            return null;
        }
    }
}
