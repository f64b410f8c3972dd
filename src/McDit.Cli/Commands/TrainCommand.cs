using System.CommandLine;
using System.Globalization;
using McDit.Cli.Runs;
using McDit.Torch.Diffusion;
using McDit.Torch.Distributed;
using McDit.Torch.Training;

namespace McDit.Cli.Commands;

/// <summary><c>mcdit train</c>: trains DiT, MaskDiT or MC-DiT into a run folder.</summary>
public static class TrainCommand
{
    /// <summary>Creates the command.</summary>
    public static Command Create(TextWriter output, TextWriter error)
    {
        var defaults = new TrainSettings();
        var outDir = new Option<string>("--out") { Description = "Run folder (created; holds run.json, checkpoints/, samples/, metrics.jsonl, loss.png).", DefaultValueFactory = _ => "runs/mcdit" }.OutputFolder("a run folder");
        var data = new Option<string>("--data") { Description = "'embedded' (6,000 Fashion-MNIST images in the library), 'fashion-mnist' (/usr/share/datasets/fashion-mnist) or a folder of IDX files.", DefaultValueFactory = _ => defaults.Data }.DataSource();
        var method = new Option<TrainingMethod>("--method") { Description = "DiT, MaskDiT or McDiT.", DefaultValueFactory = _ => defaults.Method };
        var model = new Option<string>("--model") { Description = "Backbone preset: Tiny|S|B|L|XL / patch size, e.g. Tiny/4, S/2 (Micro/4: a smoke-test size).", DefaultValueFactory = _ => defaults.Model }.ModelPreset();
        var outputConv = new Option<bool>("--output-conv") { Description = "Add a learned 3×3 convolution over the output image (U-ViT's final convolution), so pixels at patch borders agree; such models do not export to DiT or MaskDiT." };
        var outputOverlap = new Option<int>("--output-overlap") { Description = "Pixels M (0..p/2) by which each token's output window reaches into its neighbours' patches on each side: windows of p+2M blend across the patch borders (overlap-add), so the patch grid shows less; 0 = DiT's plain patches; such models do not export to DiT or MaskDiT.", DefaultValueFactory = _ => 0 };
        var maskRatio = new Option<double?>("--mask-ratio") { Description = "Fraction of tokens masked (default: the method's, 0.5 for MaskDiT and MC-DiT)." }.Finite(0, 1, "a fraction of tokens", maxExclusive: true);
        var steps = new Option<long>("--steps") { Description = "Masked pre-training steps (stage 1).", DefaultValueFactory = _ => defaults.Steps }.InRange(1, int.MaxValue, "masked pre-training steps");
        var unmask = new Option<long>("--unmask-steps") { Description = "Unmasking-tuning steps after stage 1 (r = 0, lr halved).", DefaultValueFactory = _ => defaults.UnmaskSteps }.InRange(0, int.MaxValue, "unmasking-tuning steps");
        var batch = new Option<int>("--batch-size") { Description = "Images per step.", DefaultValueFactory = _ => defaults.BatchSize }.InRange(1, OptionChecks.MaxBatchSize, "images per step");
        var lr = new Option<double>("--lr") { Description = "AdamW learning rate.", DefaultValueFactory = _ => defaults.LearningRate }.Finite(0, 10, "a learning rate", minExclusive: true);
        var ema = new Option<double>("--ema-decay") { Description = "Decay of the weight EMA used for sampling.", DefaultValueFactory = _ => defaults.EmaDecay }.Finite(0, 1, "an EMA decay");
        var warmup = new Option<long>("--lr-warmup") { Description = "Steps of linear learning-rate warm-up at the start (0: none).", DefaultValueFactory = _ => defaults.LrWarmup }.InRange(0, int.MaxValue, "warm-up steps");
        var decay = new Option<LearningRateDecay>("--lr-decay") { Description = "Constant, or Cosine: the learning rate falls to 0 at the last step of both stages (worse for the demo: docs/results.md).", DefaultValueFactory = _ => defaults.LrDecay };
        var branchEma = new Option<double?>("--branch-ema-decay") { Description = "MC-DiT: decay of the two EMA decoder branches (default 0.999; 0.99 was worse for the demo: docs/results.md)." }.Finite(0, 1, "an EMA decay");
        var cleanFraction = new Option<double?>("--clean-branch-fraction") { Description = "MC-DiT: fraction of each batch that also passes the clean branch (default 1: every row, as the method specifies; 0.25 brings MC-DiT's step to about DiT's cost: docs/benchmarks.md)." }.Finite(0, 1, "a fraction of the batch", minExclusive: true);
        var pMean = new Option<double?>("--p-mean") { Description = "EDM: mean of ln σ of the training noise levels (default -1.2; higher trains more at high noise, where shapes form)." }.Finite(-20, 20, "a mean of ln σ");
        var pStd = new Option<double?>("--p-std") { Description = "EDM: standard deviation of ln σ of the training noise levels (default 1.2)." }.Finite(0, 20, "a spread of ln σ", minExclusive: true);
        var labelDropout = new Option<double?>("--label-dropout") { Description = "Probability that a training label is replaced by the null label, which classifier-free guidance needs (default 0.1)." }.Finite(0, 1, "a probability");
        var trainShift = new Option<int?>("--train-shift") { Description = "Roll half of the training images by this many pixels (both axes), so the model also knows the images that --shift shows it while sampling (half the patch size)." }.InRange(0, 64, "pixels of shift");
        var clip = new Option<double>("--grad-clip") { Description = "Clip the gradient norm to this value (0: no clipping).", DefaultValueFactory = _ => defaults.GradClip }.Finite(0, 1e9, "a gradient norm (0: no clipping)");
        var seed = new Option<long>("--seed") { Description = "Seed of initialisation, data order and every random draw.", DefaultValueFactory = _ => defaults.Seed };
        var device = new Option<string>("--device") { Description = "cpu, cuda, cuda:N or auto.", DefaultValueFactory = _ => defaults.Device }.Device();
        var precision = new Option<TrainingPrecision>("--precision") { Description = "Float32, or BFloat16 (CUDA; float32 master weights).", DefaultValueFactory = _ => defaults.Precision };
        var sampleEvery = new Option<long>("--sample-every") { Description = "Write a sample grid every N steps (0: only at the end).", DefaultValueFactory = _ => defaults.SampleEvery }.InRange(0, long.MaxValue, "steps between sample grids (0: only at the end)");
        var checkpointEvery = new Option<long>("--checkpoint-every") { Description = "Write a checkpoint every N steps (0: only at the end).", DefaultValueFactory = _ => defaults.CheckpointEvery }.InRange(0, long.MaxValue, "steps between checkpoints (0: only at the end)");
        var samplerSteps = new Option<int>("--sampler-steps") { Description = "Sampler steps for the grids.", DefaultValueFactory = _ => defaults.SamplerSteps }.InRange(1, OptionChecks.MaxSamplerSteps, "sampler steps");
        var solver = new Option<SamplerSolver>("--solver") { Description = "Heun (2nd order) or Euler.", DefaultValueFactory = _ => defaults.Solver };
        var guidance = new Option<double>("--guidance") { Description = "Classifier-free guidance scale for the grids (1: none).", DefaultValueFactory = _ => defaults.Guidance }.Finite(-1000, 1000, "a guidance scale");
        var guidanceInterval = new Option<string?>("--guidance-interval") { Description = "Guide the grids, evaluations and the trained model's sampler only at noise levels σ in (LOW, HIGH]: LOW or LOW,HIGH (e.g. 0.28); steps outside cost half (default: every step)." }.GuidanceInterval();
        var shift = new Option<int>("--shift") { Description = "The grids', evaluations' and trained model's sampler rolls the image by this many pixels at every other evaluation, so patch borders move (half the patch size; 0: none).", DefaultValueFactory = _ => defaults.SamplerShift }.InRange(0, 64, "pixels of shift");
        var shiftBelow = new Option<double?>("--shift-below") { Description = "Apply --shift only at noise levels σ up to this (default: every other evaluation)." }.Finite(0, double.MaxValue, "a noise level σ", minExclusive: true);
        var columns = new Option<int>("--grid-columns") { Description = "Samples per class row in the grids.", DefaultValueFactory = _ => defaults.GridColumns }.InRange(1, 64, "samples per grid row");
        var vae = new Option<string?>("--vae") { Description = "Train in the latent space of a Stable Diffusion VAE: a diffusers folder (config.json + diffusion_pytorch_model.safetensors, e.g. stabilityai/sd-vae-ft-mse) or a .safetensors file. Needs RGB data." }.OptionalPath(mustExist: true, "a diffusers VAE folder (config.json + diffusion_pytorch_model.safetensors) or a .safetensors file, e.g. stabilityai/sd-vae-ft-mse from the Hugging Face Hub");
        var imageSize = new Option<int>("--image-size") { Description = "Side that images from an image folder are brought to (256 with --vae gives 32×32 latents).", DefaultValueFactory = _ => defaults.ImageSize }.InRange(8, 4096, "an image side in pixels");
        var fdEvery = new Option<long>("--fd-every") { Description = "Measure FD-ResNet18 against held-out images every N steps (0: never); written to evaluations.jsonl.", DefaultValueFactory = _ => defaults.FdEvery }.InRange(0, long.MaxValue, "steps between FD measurements (0: never)");
        var fdSamples = new Option<int>("--fd-samples") { Description = "Generated images per FD measurement.", DefaultValueFactory = _ => defaults.FdSamples }.InRange(2, OptionChecks.MaxFdSamples, "generated images per FD measurement");
        var distributed = new Option<DistributedBackend>("--distributed") { Description = "Data-parallel engine: Auto (under mpirun or a torchrun-style launcher: MPI for CPU, NCCL for CUDA), None, Mpi or Nccl.", DefaultValueFactory = _ => DistributedBackend.Auto };
        var distributedTimeout = new Option<double>("--distributed-timeout") { Description = "Seconds a collective may wait for the other ranks before the job fails with an error (they also wait while rank 0 writes checkpoints and grids).", DefaultValueFactory = _ => new DistributedOptions().Timeout.TotalSeconds }.Finite(0, 1e7, "seconds", minExclusive: true);
        var serve = new Option<bool>("--serve") { Description = "Also serve the live training page (loss, FD and accuracy curves, newest samples; generation from the newest checkpoint) on --host:--port, until Ctrl+C." };
        var serveHost = ServeCommand.HostOption();
        var servePort = ServeCommand.PortOption();
        var resume = new Option<bool>("--resume") { Description = "Continue the run in --out from its latest checkpoint (exactly as if never stopped). --steps (stage 1, while in it), --unmask-steps and --device may be given to extend it or move it." };

        var command = new Command("train", "Train DiT, MaskDiT or MC-DiT on labelled images; Ctrl+C writes a checkpoint and stops.\n" +
            "Data-parallel over N processes (--batch-size is the global batch; rank 0 writes the run folder):\n" +
            "  one machine, CPU:      mpirun -np N -x OMP_NUM_THREADS=1 mcdit train --device cpu ...\n" +
            "  one machine, N GPUs:   mpirun -np N mcdit train --device cuda ...   (NCCL, GPU = local rank)\n" +
            "  several machines:      mpirun -np TOTAL --hostfile HOSTS mcdit train --device cuda --out SHARED/FOLDER ...\n" +
            "                         or per process RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT set (torchrun-style, CUDA only)\n" +
            "See docs/distributed.md.")
        {
            outDir, data, method, model, outputConv, outputOverlap, maskRatio, steps, unmask, batch, lr, warmup, decay, ema, branchEma, cleanFraction, pMean, pStd, labelDropout, trainShift, clip, seed, device, precision,
            sampleEvery, checkpointEvery, samplerSteps, solver, guidance, guidanceInterval, shift, shiftBelow, columns, vae, imageSize, fdEvery, fdSamples,
            distributed, distributedTimeout, resume, serve, serveHost, servePort,
        };
        command.SetAction(parse =>
        {
            var folder = new RunFolder(parse.GetValue(outDir)!);
            var session = new TrainingSession(output, interactive: ReferenceEquals(output, Console.Out) && !Console.IsOutputRedirected, error)
            {
                Distributed = new DistributedOptions { Backend = parse.GetValue(distributed), Timeout = TimeSpan.FromSeconds(parse.GetValue(distributedTimeout)) },
                StepDelay = TimeSpan.FromMilliseconds(int.TryParse(Environment.GetEnvironmentVariable("MCDIT_TEST_STEP_DELAY_MS"), out var ms) ? Math.Clamp(ms, 0, 60_000) : 0),
                PauseAtStep = long.TryParse(Environment.GetEnvironmentVariable("MCDIT_TEST_PAUSE_AT_STEP"), out var pause) ? pause : null,
            };
            using var interruption = new Interruption();
            // Rank 0 of a data-parallel job serves (it is the one writing the run folder).
            var server = parse.GetValue(serve) && session.IsMain
                ? ServeCommand.StartForTraining(folder, parse.GetValue(device)!, parse.GetValue(serveHost)!, parse.GetValue(servePort), output, error)
                : null;
            try
            {
                int exit = Train(parse, folder, session, interruption);
                if (server is not null && exit == 0)
                {
                    output.WriteLine($"Training finished; still serving {server.Address} (Ctrl+C stops).");
                    server.WaitAsync(interruption.Token).GetAwaiter().GetResult();
                }
                return exit;
            }
            finally
            {
                server?.DisposeAsync().AsTask().GetAwaiter().GetResult();
            }
        });
        return command;

        int Train(ParseResult parse, RunFolder folder, TrainingSession session, Interruption interruption)
        {
            TrainingSession.Summary summary;
            if (parse.GetValue(resume))
            {
                // run.json fixes everything else; silently ignoring a changed option would mislead.
                var fixedOptions = new Option[] { data, method, model, maskRatio, batch, lr, warmup, decay, ema, branchEma, cleanFraction, pMean, pStd, labelDropout, trainShift, clip, seed, precision,
                    sampleEvery, checkpointEvery, samplerSteps, solver, guidance, guidanceInterval, shift, shiftBelow, columns, vae, imageSize,
                    fdEvery, fdSamples, outputConv, outputOverlap };
                var given = fixedOptions.Where(o => parse.GetResult(o) is { Implicit: false }).Select(o => o.Name).ToList();
                if (given.Count > 0)
                    throw new ArgumentException(
                        $"{string.Join(", ", given)} cannot be changed with --resume: the run continues with the settings in its run.json. " +
                        "Only --steps (to extend stage 1), --unmask-steps (to extend the unmasking tuning) and --device may be given.");
                long? extra = parse.GetResult(steps) is { Implicit: false } ? parse.GetValue(steps) : null;
                long? extraUnmask = parse.GetResult(unmask) is { Implicit: false } ? parse.GetValue(unmask) : null;
                string? dev = parse.GetResult(device) is { Implicit: false } ? parse.GetValue(device) : null;
                summary = session.Resume(folder, extra, dev, interruption.Token, extraUnmask);
            }
            else
            {
                var interval = OptionChecks.ParseGuidanceInterval(parse.GetValue(guidanceInterval));
                var settings = new TrainSettings
                {
                    Data = parse.GetValue(data)!, Model = parse.GetValue(model)!, OutputConv = parse.GetValue(outputConv), OutputOverlap = parse.GetValue(outputOverlap), Method = parse.GetValue(method),
                    MaskRatio = parse.GetValue(maskRatio), Steps = parse.GetValue(steps), UnmaskSteps = parse.GetValue(unmask),
                    BatchSize = parse.GetValue(batch), LearningRate = parse.GetValue(lr), EmaDecay = parse.GetValue(ema),
                    LrWarmup = parse.GetValue(warmup), LrDecay = parse.GetValue(decay), BranchEmaDecay = parse.GetValue(branchEma), CleanBranchFraction = parse.GetValue(cleanFraction),
                    PMean = parse.GetValue(pMean), PStd = parse.GetValue(pStd), LabelDropout = parse.GetValue(labelDropout),
                    TrainShift = parse.GetValue(trainShift),
                    GradClip = parse.GetValue(clip), Seed = parse.GetValue(seed), Device = parse.GetValue(device)!,
                    Precision = parse.GetValue(precision), SampleEvery = parse.GetValue(sampleEvery),
                    CheckpointEvery = parse.GetValue(checkpointEvery), SamplerSteps = parse.GetValue(samplerSteps),
                    Solver = parse.GetValue(solver), Guidance = parse.GetValue(guidance),
                    GuidanceSigmaMin = interval?.Low ?? defaults.GuidanceSigmaMin,
                    GuidanceSigmaMax = interval is { } gi ? (double.IsPositiveInfinity(gi.High) ? null : gi.High) : defaults.GuidanceSigmaMax,
                    SamplerShift = parse.GetValue(shift), SamplerShiftBelow = parse.GetValue(shiftBelow) ?? defaults.SamplerShiftBelow,
                    GridColumns = parse.GetValue(columns),
                    Vae = parse.GetValue(vae), ImageSize = parse.GetValue(imageSize), FdEvery = parse.GetValue(fdEvery), FdSamples = parse.GetValue(fdSamples),
                };
                summary = session.Start(folder, settings, interruption.Token);
            }
            if (session.IsMain) PrintSummary(output, folder, summary);
            return summary.Interrupted ? CliErrors.Interrupted : 0;
        }
    }

    /// <summary>Prints the end-of-run table.</summary>
    internal static void PrintSummary(TextWriter output, RunFolder folder, TrainingSession.Summary s)
    {
        var rows = new List<(string, string)>
        {
            ("run folder", folder.Path),
            ("steps", s.Steps.ToString(CultureInfo.InvariantCulture) + (s.Interrupted ? " (interrupted)" : "")),
            ("last loss", s.FinalLoss.ToString("F4", CultureInfo.InvariantCulture)),
            ("speed", s.StepsPerSecond.ToString("F2", CultureInfo.InvariantCulture) + " steps/s"),
        };
        if (s.Checkpoint is not null) rows.Add(("checkpoint", s.Checkpoint));
        if (s.Model is not null) rows.Add(("ML.NET model", s.Model));
        if (s.SampleGrid is not null) rows.Add(("samples", s.SampleGrid));
        if (File.Exists(folder.LossCurveFile)) rows.Add(("loss curve", folder.LossCurveFile));
        int width = rows.Max(r => r.Item1.Length);
        output.WriteLine();
        foreach (var (k, v) in rows) output.WriteLine($"  {k.PadRight(width)}  {v}");
    }
}
