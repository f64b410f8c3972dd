using System.CommandLine;
using McDit.Cli.Commands;

namespace McDit.Cli;

/// <summary>The <c>mcdit</c> command line: train, sample (and, as they land, evaluate and demo).</summary>
public static class McDitCli
{
    /// <summary>Builds the command tree.</summary>
    public static RootCommand Build(TextWriter output, TextWriter error)
    {
        var root = new RootCommand(
            "McDit: train and sample masked diffusion transformers (DiT, MaskDiT, MC-DiT) with TorchSharp.");
        root.Add(DemoCommand.Create(output, error));
        root.Add(TrainCommand.Create(output, error));
        root.Add(SampleCommand.Create(output, error));
        root.Add(EvaluateCommand.Create(output, error));
        root.Add(ServeCommand.Create(output, error));
        return root;
    }

    /// <summary>Parses and runs a command line; returns the process exit code.</summary>
    public static async Task<int> RunAsync(string[] args, TextWriter output, TextWriter error)
    {
        var root = Build(output, error);
        var parsed = root.Parse(args);
        // Ctrl+C is handled by the commands themselves (they checkpoint before exiting), not by the parser.
        var config = new InvocationConfiguration { Output = output, Error = error, ProcessTerminationTimeout = null };
        try
        {
            return await parsed.InvokeAsync(config);
        }
        catch (Exception e) when (e is ArgumentException or IOException or InvalidOperationException or UnauthorizedAccessException)
        {
            error.WriteLine($"mcdit: {e.Message}");
            return 1;
        }
    }
}
