using System.CommandLine;
using McDit.Cli.Commands;

namespace McDit.Cli;

/// <summary>The <c>mcdit</c> command line: train, sample (and, as they land, evaluate and demo).</summary>
public static class McDitCli
{
    /// <summary>The global <c>--verbose</c> option: errors print their stack trace too.</summary>
    public static readonly Option<bool> Verbose = new("--verbose")
    {
        Description = "On an error, print the stack trace after the one-line message.", Recursive = true,
    };

    /// <summary>
    /// The global <c>--threads</c> option: libtorch's intra-op threads. Default: the cores free now (see
    /// <see cref="McDit.Torch.Runtime.TorchThreadPolicy"/>), or <c>OMP_NUM_THREADS</c> when set.
    /// </summary>
    public static readonly Option<int?> Threads = new("--threads")
    {
        Description = "CPU threads for libtorch (default: the cores not busy with other processes now, at least 2 for the two batch halves; or OMP_NUM_THREADS).", Recursive = true,
        Validators = { r => { if (r.GetValueOrDefault<int?>() is < 1 or > 1024) r.AddError("--threads must be between 1 and 1024"); } },
    };

    /// <summary>Builds the command tree.</summary>
    public static RootCommand Build(TextWriter output, TextWriter error)
    {
        var root = new RootCommand(
            "McDit: train and sample masked diffusion transformers (DiT, MaskDiT, MC-DiT) with TorchSharp.");
        root.Options.Add(Verbose);
        root.Options.Add(Threads);
        root.Add(DemoCommand.Create(output, error));
        root.Add(TrainCommand.Create(output, error));
        root.Add(SampleCommand.Create(output, error));
        root.Add(EvaluateCommand.Create(output, error));
        root.Add(CompareCommand.Create(output, error));
        root.Add(ServeCommand.Create(output, error));
        root.Add(ImportCommand.Create(output, error));
        root.Add(ExportCommand.Create(output, error));
        return root;
    }

    /// <summary>
    /// Parses and runs a command line; returns the process exit code. Every error is one line on <paramref name="error"/>
    /// (the stack trace follows only with <c>--verbose</c>): exit 2 for a bad command line (parse errors and option checks
    /// run before any work), 3 for a bad file, 1 otherwise, 130 when interrupted (see <see cref="CliErrors"/>).
    /// </summary>
    public static async Task<int> RunAsync(string[] args, TextWriter output, TextWriter error)
    {
        bool verbose = args.Contains("--verbose");
        try
        {
            var root = Build(output, error);
            var parsed = root.Parse(args);
            if (parsed.Errors.Count > 0)
            {
                var command = string.Join(' ', new[] { "mcdit" }.Concat(parsed.CommandResult.Command == root ? Array.Empty<string>() : new[] { parsed.CommandResult.Command.Name }));
                foreach (var e in parsed.Errors.Select(e => CliErrors.OneLine(e.Message)).Distinct())
                    error.WriteLine($"mcdit: {e.TrimEnd('.')}. See '{command} --help'.");
                return CliErrors.Usage;
            }
            // Ctrl+C is handled by the commands themselves (they checkpoint before exiting), not by the parser; every
            // exception comes here rather than to System.CommandLine's handler, which would print a stack trace.
            // libtorch's threads and OpenMP's wait policy, before any command touches torch.
            if (parsed.CommandResult.Command != root && !args.Contains("--help") && !args.Contains("-h"))
                McDit.Torch.Runtime.TorchThreadPolicy.Apply(parsed.GetValue(Threads));
            var config = new InvocationConfiguration
            {
                Output = output, Error = error, ProcessTerminationTimeout = null, EnableDefaultExceptionHandler = false,
            };
            return await parsed.InvokeAsync(config);
        }
        catch (Exception e)
        {
            return CliErrors.Report(e, error, verbose);
        }
    }
}
