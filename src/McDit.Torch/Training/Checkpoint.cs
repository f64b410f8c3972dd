using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using McDit.Torch.IO;
using McDit.Torch.Models;
using McDit.Torch.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace McDit.Torch.Training;

/// <summary>
/// A training checkpoint folder: <c>config.json</c> (model shape and training options), <c>model.safetensors</c>,
/// <c>ema.safetensors</c>, <c>branches.safetensors</c> (MC-DiT), <c>optimizer.safetensors</c> (AdamW moments and
/// the RNG state), <c>state.json</c> (step, stage, data position) and, written last, <c>manifest.json</c> (each file's
/// size and SHA-256). Every file is written atomically and the folder is assembled under a temporary name and renamed
/// into place, so an interrupted save loses nothing.
/// </summary>
/// <remarks>
/// Loading checks everything before it is used and before anything large is allocated: the manifest, the bounds of
/// every config and state value, that the weight files hold exactly as many elements as the config implies, every
/// tensor's name, dtype and shape, finite values, and the RNG state. Every failure is an
/// <see cref="InvalidDataException"/> (or <see cref="SafeTensorsFormatException"/>) that names the file.
/// </remarks>
public static class Checkpoint
{
    /// <summary>JSON settings for every file McDit writes (indented, enums as names).</summary>
    public static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true,
        Converters = { new JsonStringEnumConverter() },
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };

    /// <summary>The format tag of config.json.</summary>
    public const string CurrentFormat = "mcdit-checkpoint-1";

    /// <summary>The files every checkpoint has (besides the manifest); MC-DiT with branches adds <c>branches.safetensors</c>.</summary>
    public static IReadOnlyList<string> RequiredFiles { get; } =
        new[] { "config.json", "model.safetensors", "ema.safetensors", "optimizer.safetensors", "state.json" };

    /// <summary>What config.json holds.</summary>
    public sealed record ConfigFile(DiffusionTransformerConfig Model, TrainerOptions Training, string Format = CurrentFormat);

    /// <summary>Saves the trainer's complete state into <paramref name="folder"/> (replacing an older checkpoint there).</summary>
    public static void Save(DiffusionTrainer trainer, string folder)
    {
        folder = Path.GetFullPath(folder);
        var parent = Path.GetDirectoryName(folder)!;
        Directory.CreateDirectory(parent);
        var temp = Path.Combine(parent, $".{Path.GetFileName(folder)}.{Guid.NewGuid():N}.tmp");
        Directory.CreateDirectory(temp);
        try
        {
            AtomicFile.WriteAllText(Path.Combine(temp, "config.json"),
                JsonSerializer.Serialize(new ConfigFile(trainer.Config, trainer.Options), Json));
            SafeTensors.Save(Path.Combine(temp, "model.safetensors"), MasterState(trainer), Metadata(trainer));
            SafeTensors.Save(Path.Combine(temp, "ema.safetensors"), trainer.EmaModel.state_dict(), Metadata(trainer));
            var branches = BranchState(trainer);
            if (branches.Count > 0) SafeTensors.Save(Path.Combine(temp, "branches.safetensors"), branches, Metadata(trainer));
            using (var rng = trainer.Generator.get_state())
            {
                var optimizer = trainer.Optimizer.StateTensors();
                optimizer["rng.cpu"] = rng;
                SafeTensors.Save(Path.Combine(temp, "optimizer.safetensors"), optimizer, new Dictionary<string, string>
                {
                    ["step_count"] = trainer.Optimizer.StepCount.ToString(CultureInfo.InvariantCulture),
                    ["learning_rate"] = trainer.Optimizer.LearningRate.ToString("R", CultureInfo.InvariantCulture),
                });
            }
            AtomicFile.WriteAllText(Path.Combine(temp, "state.json"), JsonSerializer.Serialize(trainer.State, Json));
            CheckpointManifest.Write(temp); // last: a folder with a valid manifest is complete

            // Replacing an existing folder takes two renames; CheckpointSeries.Recover undoes a crash between them.
            string? old = null;
            if (Directory.Exists(folder))
            {
                old = Path.Combine(parent, $".{Path.GetFileName(folder)}.{Guid.NewGuid():N}.old");
                Directory.Move(folder, old);
            }
            Directory.Move(temp, folder);
            if (old is not null) Directory.Delete(old, recursive: true);
        }
        catch
        {
            if (Directory.Exists(temp)) Directory.Delete(temp, recursive: true);
            throw;
        }
    }

    /// <summary>
    /// Checks a checkpoint folder without loading its tensors: the manifest (every file's size and SHA-256), config.json
    /// and state.json (each value bounded), and that the folder's name matches its step when it is a <c>step-N</c> folder.
    /// </summary>
    /// <exception cref="InvalidDataException">Something does not check out; the message names the file.</exception>
    public static (ConfigFile Config, TrainingState State) Verify(string folder)
    {
        CheckpointManifest.Verify(folder, RequiredFiles.ToArray());
        var config = ReadConfig(folder);
        var state = ReadState(folder);
        if (CheckpointSeries.TryParseStep(Path.GetFileName(Path.GetFullPath(folder)), out var step) && step != state.Step)
            throw new InvalidDataException($"{Path.Combine(folder, "state.json")} says step {state.Step}, but the folder is named for step {step}.");
        return (config, state);
    }

    /// <summary>
    /// Recreates a trainer from a checkpoint folder so that further steps equal those of the uninterrupted run.
    /// </summary>
    /// <param name="folder">The checkpoint folder.</param>
    /// <param name="device">Overrides the device stored in the checkpoint (cpu, cuda, cuda:N, auto).</param>
    /// <exception cref="InvalidDataException">The checkpoint is incomplete or damaged; the message names the file and what is wrong.</exception>
    public static DiffusionTrainer Load(string folder, string? device = null) => Load(folder, device, null);

    /// <summary><see cref="Load(string, string?)"/> with the stored training options adjusted first (tests: the optimizer layout).</summary>
    internal static DiffusionTrainer Load(string folder, string? device, Func<TrainerOptions, TrainerOptions>? adjust)
    {
        var (config, state) = Verify(folder);
        var options = device is null ? config.Training : config.Training with { Device = device };
        if (adjust is not null) options = adjust(options);
        var modelPath = Path.Combine(folder, "model.safetensors");
        var emaPath = Path.Combine(folder, "ema.safetensors");
        var branchesPath = Path.Combine(folder, "branches.safetensors");
        var optimizerPath = Path.Combine(folder, "optimizer.safetensors");

        // Sizes first: the weight files must hold what the config implies, so a damaged config cannot allocate without bound.
        long elements = config.Model.StateElementCount();
        var modelHeader = ReadSizedHeader(modelPath, elements);
        var emaHeader = ReadSizedHeader(emaPath, elements);
        bool branches = config.Training.Method.UsesBranches;
        if (branches && !File.Exists(branchesPath))
            throw new InvalidDataException($"Checkpoint folder '{folder}' has no branches.safetensors, which its MC-DiT method needs; the checkpoint is incomplete.");
        var branchesHeader = branches ? ReadSizedHeader(branchesPath, 2 * elements, exact: false) : null;
        var optimizerHeader = ReadSizedHeader(optimizerPath, 3 * elements + GeneratorState.CpuStateBytes, exact: false);

        var trainer = new DiffusionTrainer(config.Model, options, state);
        try
        {
            using var _ = no_grad();
            // Names, dtypes and shapes from the headers, before any tensor data is read.
            var modelReference = MasterState(trainer);
            var branchReference = BranchState(trainer);
            var optimizerReference = trainer.Optimizer.StateTensors().ToDictionary(kv => kv.Key, kv => (kv.Value.dtype, kv.Value.shape));
            optimizerReference["rng.cpu"] = (ScalarType.Byte, new long[] { GeneratorState.CpuStateBytes });
            TensorChecks.CheckHeader(modelHeader, TensorChecks.Expected(modelReference), modelPath);
            TensorChecks.CheckHeader(emaHeader, TensorChecks.Expected(trainer.EmaModel.state_dict()), emaPath);
            if (branchesHeader is not null) TensorChecks.CheckHeader(branchesHeader, TensorChecks.Expected(branchReference), branchesPath);
            TensorChecks.CheckHeader(optimizerHeader, optimizerReference, optimizerPath);

            using (var model = SafeTensors.Load(modelPath))
                CopyChecked(modelReference, trainer.Model.state_dict(), model.Tensors, modelPath);
            using (var ema = SafeTensors.Load(emaPath))
                LoadInto(trainer.EmaModel, ema.Tensors, emaPath);
            if (branchesHeader is not null)
            {
                using var content = SafeTensors.Load(branchesPath);
                CopyChecked(branchReference, branchReference, content.Tensors, branchesPath);
            }
            using (var optimizer = SafeTensors.Load(optimizerPath))
            {
                long stepCount = ReadMetadataNumber(optimizer.Metadata, "step_count", optimizerPath, long.Parse);
                double lr = ReadMetadataNumber(optimizer.Metadata, "learning_rate", optimizerPath, double.Parse);
                // One AdamW update per training step.
                if (stepCount != state.Step)
                    throw new InvalidDataException($"{optimizerPath}: metadata step_count = {stepCount}, but state.json says step {state.Step}; the checkpoint is damaged.");
                if (!(lr > 0) || !double.IsFinite(lr))
                    throw new InvalidDataException($"{optimizerPath}: metadata learning_rate = {lr} is invalid: expected a positive number.");
                foreach (var (name, tensor) in optimizer.Tensors)
                {
                    using var scope = NewDisposeScope();
                    TensorChecks.CheckFinite(tensor, name, optimizerPath);
                    if (name.StartsWith("exp_avg_sq.", StringComparison.Ordinal) && tensor.lt(0).any().item<bool>())
                        throw new InvalidDataException($"{optimizerPath}: tensor '{name}' holds negative values; second moments are ≥ 0, so the file is damaged.");
                }
                var rng = optimizer.Tensors["rng.cpu"];
                GeneratorState.CheckCpuState(rng, optimizerPath);
                // The model was loaded from float32 masters: the optimizer's masters come from its own file.
                trainer.Optimizer.LoadState(optimizer.Tensors, stepCount, optimizerPath);
                trainer.Optimizer.LearningRate = lr;
                trainer.Generator.set_state(rng);
            }
            return trainer;
        }
        catch
        {
            trainer.Dispose();
            throw;
        }
    }

    /// <summary>Reads and checks state.json of a checkpoint folder (step, stage, data position).</summary>
    /// <exception cref="InvalidDataException">The file is missing, malformed or holds an out-of-range value.</exception>
    public static TrainingState ReadState(string folder)
    {
        var path = Require(folder, "state.json");
        return JsonFile.Read<TrainingState>(path, Json).Validated(path);
    }

    /// <summary>Reads and checks config.json of a checkpoint folder: every section present, every value bounded.</summary>
    /// <exception cref="InvalidDataException">The file is missing, malformed or holds an out-of-range value.</exception>
    public static ConfigFile ReadConfig(string folder)
    {
        var path = Require(folder, "config.json");
        var config = JsonFile.Read<ConfigFile>(path, Json);
        if (config.Format != CurrentFormat)
            throw new InvalidDataException($"{path} has format '{config.Format}'; this version reads '{CurrentFormat}'.");
        if (config.Model is null) throw new InvalidDataException($"{path} has no \"Model\" section; the checkpoint is damaged.");
        if (config.Training is null) throw new InvalidDataException($"{path} has no \"Training\" section; the checkpoint is damaged.");
        if (config.Training.Method is null) throw new InvalidDataException($"{path} has no \"Training.Method\" section; the checkpoint is damaged.");
        config.Model.Validated(path);
        try { config.Training.Validated(); }
        catch (ArgumentException e) { throw new InvalidDataException($"{path}: {e.Message}", e); }
        if (config.Training.Method.ConfigureModel(config.Model) != config.Model)
            throw new InvalidDataException($"{path}: the model shape does not fit the method {config.Training.Method.Method} (decoder, [MASK] token or clean inputs differ); the checkpoint is damaged.");
        if (!TorchBackend.IsDeviceName(config.Training.Device))
            throw new InvalidDataException($"{path}: Training.Device = '{config.Training.Device}' is not a device name (cpu, cuda, cuda:N or auto).");
        return config;
    }

    /// <summary>Loads only the sampling weights (the weight EMA by default) of a checkpoint, for generation.</summary>
    /// <exception cref="InvalidDataException">The checkpoint is incomplete or damaged.</exception>
    public static MaskedDiffusionTransformer LoadModel(string folder, bool ema = true, Device? device = null)
    {
        var (config, _) = Verify(folder);
        var path = Path.Combine(folder, ema ? "ema.safetensors" : "model.safetensors");
        ReadSizedHeader(path, config.Model.StateElementCount());
        var model = new MaskedDiffusionTransformer(config.Model);
        try
        {
            TensorChecks.CheckHeader(SafeTensors.ReadHeader(path), TensorChecks.Expected(model.state_dict()), path);
            using (var weights = SafeTensors.Load(path)) LoadInto(model, weights.Tensors, path);
            if (device is not null) model.to(device);
            model.eval();
            return model;
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Copies named tensors into a module's parameters and buffers after checking them against its state dict: the same
    /// names, each tensor's exact dtype and shape (no conversion), finite values.
    /// </summary>
    /// <exception cref="InvalidDataException">A tensor is missing, unexpected, of another dtype or shape, or not finite.</exception>
    public static void LoadInto(nn.Module module, IReadOnlyDictionary<string, Tensor> tensors, string source)
    {
        var targets = module.state_dict();
        CopyChecked(targets, targets, tensors, source);
    }

    /// <summary>
    /// Checks <paramref name="tensors"/> against <paramref name="reference"/> (what a save would have written: names,
    /// dtypes, shapes) and copies them into <paramref name="targets"/> (which may have another floating dtype, as a
    /// bfloat16 model loaded from float32 masters).
    /// </summary>
    static void CopyChecked(IReadOnlyDictionary<string, Tensor> reference, IReadOnlyDictionary<string, Tensor> targets,
        IReadOnlyDictionary<string, Tensor> tensors, string source)
    {
        using var _ = no_grad();
        TensorChecks.CheckAgainst(reference, tensors, source);
        foreach (var (name, target) in targets) target.copy_(tensors[name]);
    }

    static SafeTensorsHeader ReadSizedHeader(string path, long elements, bool exact = true)
    {
        if (!File.Exists(path))
            throw new InvalidDataException($"{path} is missing; the checkpoint is incomplete.");
        var header = SafeTensors.ReadHeader(path);
        long found = TensorChecks.ElementCount(header);
        if (exact ? found != elements : found > elements)
            throw new InvalidDataException(
                $"{path} holds {found:N0} elements; its config.json implies {(exact ? "" : "at most ")}{elements:N0}. The config or the file is damaged.");
        return header;
    }

    static T ReadMetadataNumber<T>(IReadOnlyDictionary<string, string> metadata, string key, string path, Func<string, IFormatProvider, T> parse)
    {
        if (!metadata.TryGetValue(key, out var text))
            throw new InvalidDataException($"{path}: metadata '{key}' is missing; the checkpoint is incomplete.");
        try { return parse(text, CultureInfo.InvariantCulture); }
        catch (Exception e) when (e is FormatException or OverflowException)
        {
            throw new InvalidDataException($"{path}: metadata '{key}' = '{(text.Length > 40 ? text[..40] + "…" : text)}' is not a number.", e);
        }
    }

    private static Dictionary<string, Tensor> MasterState(DiffusionTrainer trainer)
    {
        var state = trainer.Model.state_dict();
        foreach (var (name, master) in trainer.Optimizer.MasterWeights) state[name] = master;
        return state;
    }

    private static Dictionary<string, Tensor> BranchState(DiffusionTrainer trainer)
    {
        var branches = new Dictionary<string, Tensor>();
        if (trainer.NoisyBranch is not null)
            foreach (var (k, v) in trainer.NoisyBranch.state_dict()) branches["noisy." + k] = v;
        if (trainer.CleanBranch is not null)
            foreach (var (k, v) in trainer.CleanBranch.state_dict()) branches["clean." + k] = v;
        return branches;
    }

    private static Dictionary<string, string> Metadata(DiffusionTrainer trainer) => new()
    {
        ["format"] = "mcdit",
        ["config"] = JsonSerializer.Serialize(trainer.Config, Json),
        ["step"] = trainer.State.Step.ToString(CultureInfo.InvariantCulture),
    };

    private static string Require(string folder, string file)
    {
        var path = Path.Combine(folder, file);
        if (!File.Exists(path))
            throw new InvalidDataException($"Checkpoint folder '{folder}' has no {file}; it is not a complete McDit checkpoint.");
        return path;
    }
}
