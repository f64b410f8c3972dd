using System.CommandLine;
using McDit.Cli.Runs;
using McDit.Serve;

namespace McDit.Cli.Commands;

/// <summary>
/// <c>mcdit serve</c>: a local web page to generate images from a trained model and to watch training runs (live while
/// they train), and to compare several runs.
/// </summary>
public static class ServeCommand
{
    /// <summary>Creates the command.</summary>
    public static Command Create(TextWriter output, TextWriter error)
    {
        var from = new Option<string?>("--from") { Description = "The model to generate from: a run folder (its model.zip, or its newest checkpoint while it trains; its training is shown too), a checkpoint folder, or a saved model .zip." }.OptionalPath(mustExist: true, "a run folder, a checkpoint folder or a model .zip");
        var runs = new Option<string[]>("--runs") { Description = "Run folders to show (live while they train), or folders of run folders such as `mcdit compare` writes; several runs get a comparison view.", AllowMultipleArgumentsPerToken = true };
        var host = HostOption();
        var port = PortOption();
        var device = new Option<string>("--device") { Description = "Device to generate on: cpu, cuda, cuda:N or auto.", DefaultValueFactory = _ => "auto" }.Device();
        var limits = new GenerationLimits();
        var maxImages = new Option<int>("--max-images") { Description = "Most images one request may ask for.", DefaultValueFactory = _ => limits.MaxImages };
        var maxSteps = new Option<int>("--max-steps") { Description = "Most sampler steps one request may ask for.", DefaultValueFactory = _ => limits.MaxSamplerSteps };
        var command = new Command("serve", "Serve a local web page: generate from a trained model (pick classes, seed, guidance, steps) and watch training runs live.")
        {
            from, runs, host, port, device, maxImages, maxSteps,
        };
        command.SetAction(parse =>
        {
            var source = parse.GetValue(from);
            var served = new List<ServedRun>();
            if (source is not null && new RunFolder(source).HasRun) served.Add(ServedRuns.From(new RunFolder(source), Path.GetFileName(Path.GetFullPath(source))));
            var folders = parse.GetValue(runs) ?? Array.Empty<string>();
            if (folders.Length > 0)
                served.AddRange(ServedRuns.Find(folders).Where(r => served.All(s => s.Folder != r.Folder)));
            if (source is null && served.Count == 0)
                throw new ArgumentException("Nothing to serve: give a model with --from RUN|MODEL.zip|CHECKPOINT, or run folders with --runs DIR.");
            var options = new ServeOptions
            {
                Host = parse.GetValue(host)!, Port = parse.GetValue(port),
                Generator = source is null ? null : ServedModel.For(source, parse.GetValue(device)!),
                Runs = served,
                Limits = new GenerationLimits { MaxImages = parse.GetValue(maxImages), MaxSamplerSteps = parse.GetValue(maxSteps) },
            }.Validated();
            using var interruption = new Interruption();
            var server = ServeHost.StartAsync(options, error).GetAwaiter().GetResult();
            try
            {
                output.WriteLine($"Serving {server.Address} ({(options.Generator is null ? "" : "generation, ")}{served.Count} run(s)). Open it in a browser; Ctrl+C stops.");
                server.WaitAsync(interruption.Token).GetAwaiter().GetResult();
            }
            finally
            {
                server.DisposeAsync().AsTask().GetAwaiter().GetResult();
            }
            return 0;
        });
        return command;
    }

    /// <summary>--host: the address to bind.</summary>
    internal static Option<string> HostOption() => new("--host")
    {
        Description = "Address to serve on: 127.0.0.1 (this machine only, the default), localhost, or another address (0.0.0.0: every interface; anyone who can reach the machine can use the page).",
        DefaultValueFactory = _ => "127.0.0.1",
    };

    /// <summary>--port: the TCP port.</summary>
    internal static Option<int> PortOption() => new Option<int>("--port")
    {
        Description = "TCP port of the page (0: any free port).",
        DefaultValueFactory = _ => ServeOptions.DefaultPort,
    }.InRange(0, 65535, "a TCP port (0: any free port)");

    /// <summary>Starts the page for a run that is being trained (<c>mcdit train --serve</c>): its training view and generation from its newest checkpoint.</summary>
    public static ServeHost StartForTraining(RunFolder folder, string device, string host, int port, TextWriter output, TextWriter error)
    {
        var options = new ServeOptions
        {
            Host = host, Port = port,
            Generator = ServedModel.ForRun(folder, device),
            Runs = new[] { ServedRuns.From(folder, Path.GetFileName(folder.Path)) },
        }.Validated();
        var server = ServeHost.StartAsync(options, error).GetAwaiter().GetResult();
        output.WriteLine($"Serving {server.Address}#training: the training of {folder.Path}, live.");
        return server;
    }
}
