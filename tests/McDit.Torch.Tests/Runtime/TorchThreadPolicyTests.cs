using System.Runtime.InteropServices;
using McDit.Torch.Runtime;
using Xunit;

namespace McDit.Torch.Tests.Runtime;

public class TorchThreadPolicyTests
{
    [Theory]
    [InlineData(2, 0.0, 2)]   // idle: every core
    [InlineData(2, 0.3, 2)]
    [InlineData(2, 0.7, 1)]
    [InlineData(2, 4.0, 1)]   // 4 busy processes on 2 cores: one thread, never zero
    [InlineData(16, 3.4, 13)]
    [InlineData(16, 0.0, 16)]
    [InlineData(4, double.NaN, 4)]
    public void TheThreadCountIsTheFreeCores(int cores, double busy, int expected) =>
        Assert.Equal(expected, TorchThreadPolicy.ForLoad(cores, busy));

    [Theory]
    [InlineData(2, 4.0, 2)]   // 4 busy processes on 2 cores: two single-thread halves, not one thread
    [InlineData(2, 0.7, 2)]
    [InlineData(2, 0.0, 2)]
    [InlineData(1, 3.0, 1)]   // one core: nothing to split
    [InlineData(16, 15.0, 2)]
    [InlineData(16, 3.4, 13)] // more free cores than 2: the free cores, as without halves
    public void WithBatchHalvesTheThreadCountIsTheFreeCoresButAtLeastTwo(int cores, double busy, int expected) =>
        Assert.Equal(expected, TorchThreadPolicy.ForLoad(cores, busy, batchHalves: true));

    [Fact]
    public void AnExplicitCountAndOmpNumThreadsWinOverTheMeasurement()
    {
        var explicitChoice = TorchThreadPolicy.Choose(3);
        Assert.Equal(3, explicitChoice.Threads);
        Assert.Equal("--threads 3", explicitChoice.Reason);
        Assert.Throws<ArgumentOutOfRangeException>(() => TorchThreadPolicy.Choose(0));
        // The test projects set OMP_NUM_THREADS=1 (TorchThreads.cs).
        Assert.Equal(new TorchThreadChoice(1, "OMP_NUM_THREADS=1"), TorchThreadPolicy.Choose());
    }

    [Fact]
    public void TheLoadIsMeasuredOnLinux()
    {
        if (!OperatingSystem.IsLinux()) return;
        var busy = TorchThreadPolicy.MeasureBusyCores(TimeSpan.FromMilliseconds(100));
        Assert.NotNull(busy);
        Assert.InRange(busy!.Value, 0, Environment.ProcessorCount + 1e-9);
    }

    [Fact]
    public void ThisProcesssOwnWorkIsNotCountedAsLoad()
    {
        if (!OperatingSystem.IsLinux()) return;
        // A thread of this process spins through the window: it shows in this process's own CPU time (which the
        // measurement subtracts), so the start-up work of mcdit itself never costs it a thread.
        var before = TorchThreadPolicy.ReadOwnCpuTime();
        using var stop = new CancellationTokenSource();
        var spinner = new Thread(() => { while (!stop.IsCancellationRequested) Thread.SpinWait(1000); });
        spinner.Start();
        var load = TorchThreadPolicy.MeasureLoad(TimeSpan.FromMilliseconds(300));
        stop.Cancel();
        spinner.Join();
        var after = TorchThreadPolicy.ReadOwnCpuTime();
        Assert.NotNull(before);
        Assert.NotNull(after);
        Assert.True(after - before >= 3, $"300 ms of spinning should add clock ticks of own CPU time; got {after - before}.");
        Assert.NotNull(load);
        var (all, others) = load!.Value;
        // Without the subtraction the two would be equal; loose bounds, because on a loaded machine the spinner gets a small share.
        Assert.True(all - others >= 0.05, $"this process's spinning thread should be taken out of the load; all {all:F2}, others {others:F2}.");
        Assert.InRange(others, 0, Environment.ProcessorCount + 1e-9);
    }

    [DllImport("libc", EntryPoint = "getenv")]
    static extern IntPtr getenv([MarshalAs(UnmanagedType.LPUTF8Str)] string name);

    [Fact]
    public void OpenMpIsToldToSleepInTheNativeEnvironment()
    {
        if (OperatingSystem.IsWindows()) return;
        TorchBackend.EnsureInitialized();
        foreach (var (name, value) in new[] { ("OMP_WAIT_POLICY", "PASSIVE"), ("KMP_BLOCKTIME", "0") })
        {
            // What native code (libgomp) reads; the user's own setting would be kept.
            var native = Marshal.PtrToStringUTF8(getenv(name));
            Assert.Equal(Environment.GetEnvironmentVariable(name), native);
            Assert.NotNull(native);
            if (name == "OMP_WAIT_POLICY" && native != value) Assert.Equal("ACTIVE", native?.ToUpperInvariant()); // only a user's own choice differs
        }
    }
}
