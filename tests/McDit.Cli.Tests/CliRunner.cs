namespace McDit.Cli.Tests;

/// <summary>Runs the mcdit command line in-process and captures what it prints.</summary>
internal static class CliRunner
{
    public static (int Exit, string Output, string Error) Run(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        int exit = McDitCli.RunAsync(args, output, error).GetAwaiter().GetResult();
        return (exit, output.ToString(), error.ToString());
    }

    public static string TempFolder() => Path.Combine(Path.GetTempPath(), "mcdit-cli-" + Guid.NewGuid().ToString("N"));
}
