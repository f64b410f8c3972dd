using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text;

namespace McDit.Reliability.Tests;

/// <summary>A child process of one of the programs in the test output folder, with its output collected and signals sent to it.</summary>
internal sealed class ChildProcess : IDisposable
{
    readonly Process _process;
    readonly StringBuilder _output = new(), _error = new();
    readonly object _gate = new();
    public event Action<string>? Line;

    ChildProcess(Process process) => _process = process;

    /// <summary>Starts <c>dotnet DLL args</c> with one torch thread and the given extra environment.</summary>
    public static ChildProcess Start(string dll, IEnumerable<string> args, IReadOnlyDictionary<string, string>? environment = null, Action<string>? onLine = null)
    {
        // A test host started in the background by a non-interactive shell (as CI may start it) inherits an ignored
        // SIGINT, and so would mcdit: exec keeps ignored signals ignored. Ctrl+C is what these tests send, so the
        // child starts with SIGINT at its default (coreutils' env execs dotnet in place: same process id).
        var info = new ProcessStartInfo(EnvResetsSignals ? "/usr/bin/env" : "dotnet")
        {
            RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true, UseShellExecute = false,
        };
        if (EnvResetsSignals) { info.ArgumentList.Add("--default-signal=INT"); info.ArgumentList.Add("dotnet"); }
        info.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, dll));
        foreach (var a in args) info.ArgumentList.Add(a);
        info.Environment["OMP_NUM_THREADS"] = "1";
        info.Environment["MKL_NUM_THREADS"] = "1";
        info.Environment["DOTNET_gcServer"] = "0";
        if (environment is not null) foreach (var (k, v) in environment) info.Environment[k] = v;
        var process = new Process { StartInfo = info, EnableRaisingEvents = true };
        var child = new ChildProcess(process);
        if (onLine is not null) child.Line += onLine;
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) { lock (child._gate) child._output.AppendLine(e.Data); child.Line?.Invoke(e.Data); } };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (child._gate) child._error.AppendLine(e.Data); };
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return child;
    }

    /// <summary>Whether /usr/bin/env has <c>--default-signal</c> (GNU coreutils 8.31 and later).</summary>
    static readonly bool EnvResetsSignals = Probe();

    static bool Probe()
    {
        if (!File.Exists("/usr/bin/env")) return false;
        try
        {
            using var p = Process.Start(new ProcessStartInfo("/usr/bin/env", new[] { "--default-signal=INT", "true" })
            { RedirectStandardError = true, UseShellExecute = false })!;
            p.WaitForExit();
            return p.ExitCode == 0;
        }
        catch (System.ComponentModel.Win32Exception) { return false; }
    }

    public int Id => _process.Id;
    public bool HasExited => _process.HasExited;
    public string Output { get { lock (_gate) return _output.ToString(); } }
    public string Error { get { lock (_gate) return _error.ToString(); } }

    /// <summary>Waits for the exit; false after <paramref name="timeout"/>.</summary>
    public bool WaitForExit(TimeSpan timeout)
    {
        if (!_process.WaitForExit(timeout)) return false;
        _process.WaitForExit(); // drains the output events
        return true;
    }

    public int ExitCode => _process.ExitCode;

    [DllImport("libc", SetLastError = true)]
    static extern int kill(int pid, int sig);

    public const int SIGINT = 2, SIGKILL = 9, SIGTERM = 15;

    /// <summary>Sends a POSIX signal.</summary>
    public void Signal(int signal)
    {
        if (_process.HasExited) return;
        if (kill(_process.Id, signal) != 0 && !_process.HasExited)
            throw new InvalidOperationException($"kill({_process.Id}, {signal}) failed: errno {Marshal.GetLastPInvokeError()}");
    }

    public void Dispose()
    {
        try { if (!_process.HasExited) _process.Kill(entireProcessTree: true); }
        catch (InvalidOperationException) { }
        _process.Dispose();
    }
}
