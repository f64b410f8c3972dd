using McDit.Cli;
using McDit.Cli.Runs;
using Xunit;

namespace McDit.Serve.Tests;

/// <summary>
/// Two tiny real runs on the embedded data (Tiny/4, batch 4, 2 steps, a sample grid at every step), trained once for
/// every test of the collection: an MC-DiT run whose model.zip the generation tests sample from, and a DiT run for
/// the comparison view.
/// </summary>
public sealed class TinyRuns : IDisposable
{
    public TinyRuns()
    {
        Root = Path.Combine(Path.GetTempPath(), "mcdit-serve-" + Guid.NewGuid().ToString("N"));
        McDiT = new RunFolder(Path.Combine(Root, "mcdit"));
        DiT = new RunFolder(Path.Combine(Root, "dit"));
        Train(McDiT.Path, "--method", "McDiT");
        Train(DiT.Path, "--method", "DiT");
    }

    /// <summary>The folder holding both runs (what <c>serve --runs</c> is given for a comparison).</summary>
    public string Root { get; }
    public RunFolder McDiT { get; }
    public RunFolder DiT { get; }

    /// <summary>The arguments of a tiny run into <paramref name="folder"/>.</summary>
    public static string[] TinyTrain(string folder, params string[] extra) => new[]
    {
        "train", "--out", folder, "--steps", "2", "--batch-size", "4", "--sampler-steps", "1", "--grid-columns", "2", "--device", "cpu",
        "--sample-every", "1", "--checkpoint-every", "1",
    }.Concat(extra).ToArray();

    public static void Train(string folder, params string[] extra) => Cli(TinyTrain(folder, extra));

    /// <summary>Runs the mcdit command line in-process; fails the test on a non-zero exit.</summary>
    public static string Cli(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        int exit = McDitCli.RunAsync(args, output, error).GetAwaiter().GetResult();
        Assert.True(exit == 0, $"mcdit {string.Join(' ', args)} exited {exit}: {error}");
        return output.ToString();
    }

    /// <summary>Deletes a folder a test made, if it is there.</summary>
    public static void Delete(string folder)
    {
        try { if (Directory.Exists(folder)) Directory.Delete(folder, recursive: true); } catch (IOException) { }
    }

    public static string TempFolder() => Path.Combine(Path.GetTempPath(), "mcdit-serve-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        Delete(Root);
    }
}

[CollectionDefinition(Name)]
public sealed class TinyRunsCollection : ICollectionFixture<TinyRuns>
{
    public const string Name = "tiny runs";
}
