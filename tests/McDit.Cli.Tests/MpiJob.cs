using System.Diagnostics;
using System.Text;
using Xunit;

namespace McDit.Cli.Tests;

/// <summary>
/// `mpirun -np N dotnet mcdit.dll …` from the tests. Tests that need it skip only where mpirun is missing and the
/// environment variable CI is unset; under CI (which installs OpenMPI) a missing mpirun fails them.
/// </summary>
internal sealed class MpiJob : IDisposable
{
    public static string? Mpirun { get; } = (Environment.GetEnvironmentVariable("PATH") ?? "")
        .Split(':', StringSplitOptions.RemoveEmptyEntries).Select(d => Path.Combine(d, "mpirun")).FirstOrDefault(File.Exists);

    public const string SkipReason = "mpirun is not installed (apt-get install openmpi-bin libopenmpi-dev); .ci/run installs it";

    public static bool Skip => Mpirun is null && string.IsNullOrEmpty(Environment.GetEnvironmentVariable("CI"));

    readonly Process _process;
    readonly StringBuilder _output = new();

    /// <summary>A marker in every rank's environment, to find the ranks' processes.</summary>
    public string Marker { get; } = Guid.NewGuid().ToString("N");

    public MpiJob(int ranks, params string[] mcditArguments)
    {
        if (Mpirun is null) throw new InvalidOperationException(SkipReason);
        var info = new ProcessStartInfo(Mpirun)
        {
            RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
        };
        foreach (var a in new[] { "--oversubscribe", "--allow-run-as-root", "--bind-to", "none", "-np", ranks.ToString(),
                     "-x", "OMP_NUM_THREADS=1", "-x", "MCDIT_TEST_JOB=" + Marker, "dotnet", Path.Combine(AppContext.BaseDirectory, "mcdit.dll") })
            info.ArgumentList.Add(a);
        foreach (var a in mcditArguments) info.ArgumentList.Add(a);
        _process = Process.Start(info)!;
        _process.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (_output) _output.AppendLine(e.Data); };
        _process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (_output) _output.AppendLine(e.Data); };
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
    }

    public string Output { get { lock (_output) return _output.ToString(); } }

    /// <summary>Waits for mpirun to end; returns its exit code, or null when it is still running after <paramref name="timeout"/>.</summary>
    public int? Wait(TimeSpan timeout)
    {
        if (!_process.WaitForExit(timeout)) return null;
        _process.WaitForExit(); // drains the output
        return _process.ExitCode;
    }

    /// <summary>Runs a job to its end and requires exit code 0.</summary>
    public static string Run(int ranks, TimeSpan timeout, params string[] mcditArguments)
    {
        using var job = new MpiJob(ranks, mcditArguments);
        var exit = job.Wait(timeout);
        Assert.True(exit == 0, $"mpirun -np {ranks} mcdit {string.Join(' ', mcditArguments)} " +
            (exit is null ? $"did not finish within {timeout.TotalSeconds} s" : $"exited with {exit}") + ":\n" + job.Output);
        return job.Output;
    }

    /// <summary>The process id of a rank of this job (its environment holds the marker and the rank), or null.</summary>
    public int? RankProcess(int rank)
    {
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), out int pid)) continue;
            string environment;
            try { environment = File.ReadAllText(Path.Combine(dir, "environ")); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { continue; }
            var variables = environment.Split('\0');
            if (variables.Contains("MCDIT_TEST_JOB=" + Marker) && variables.Contains("OMPI_COMM_WORLD_RANK=" + rank)) return pid;
        }
        return null;
    }

    public void Dispose()
    {
        if (!_process.HasExited)
        {
            try { _process.Kill(entireProcessTree: true); } catch (InvalidOperationException) { }
            _process.WaitForExit(10_000);
        }
        _process.Dispose();
    }
}

/// <summary>A fact that needs mpirun (see <see cref="MpiJob"/>).</summary>
internal sealed class MpiFactAttribute : FactAttribute
{
    public MpiFactAttribute() { if (MpiJob.Skip) Skip = MpiJob.SkipReason; }
}

/// <summary>A theory that needs mpirun (see <see cref="MpiJob"/>).</summary>
internal sealed class MpiTheoryAttribute : TheoryAttribute
{
    public MpiTheoryAttribute() { if (MpiJob.Skip) Skip = MpiJob.SkipReason; }
}
