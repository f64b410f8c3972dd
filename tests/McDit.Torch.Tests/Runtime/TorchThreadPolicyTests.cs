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
