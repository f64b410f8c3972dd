using System.Text.Json;
using System.Text.Json.Serialization;
using McDit.Torch.IO;
using McDit.Torch.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace McDit.Torch.Training;

/// <summary>
/// A training checkpoint folder: <c>config.json</c> (model shape and training options), <c>model.safetensors</c>,
/// <c>ema.safetensors</c>, <c>branches.safetensors</c> (MC-DiT), <c>optimizer.safetensors</c> (AdamW moments and
/// the RNG state) and <c>state.json</c> (step, stage, data position). Every file is written atomically and the
/// folder is assembled under a temporary name and renamed into place, so an interrupted save loses nothing.
/// </summary>
public static class Checkpoint
{
    /// <summary>JSON settings for every file McDit writes (indented, enums as names).</summary>
    public static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true,
        Converters = { new JsonStringEnumConverter() },
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };

    /// <summary>What config.json holds.</summary>
    public sealed record ConfigFile(DiffusionTransformerConfig Model, TrainerOptions Training, string Format = "mcdit-checkpoint-1");

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
            var branches = new Dictionary<string, Tensor>();
            if (trainer.NoisyBranch is not null)
                foreach (var (k, v) in trainer.NoisyBranch.state_dict()) branches["noisy." + k] = v;
            if (trainer.CleanBranch is not null)
                foreach (var (k, v) in trainer.CleanBranch.state_dict()) branches["clean." + k] = v;
            if (branches.Count > 0) SafeTensors.Save(Path.Combine(temp, "branches.safetensors"), branches, Metadata(trainer));
            using (var rng = trainer.Generator.get_state())
            {
                var optimizer = trainer.Optimizer.StateTensors();
                optimizer["rng.cpu"] = rng;
                SafeTensors.Save(Path.Combine(temp, "optimizer.safetensors"), optimizer, new Dictionary<string, string>
                {
                    ["step_count"] = trainer.Optimizer.StepCount.ToString(System.Globalization.CultureInfo.InvariantCulture),
                    ["learning_rate"] = trainer.Optimizer.LearningRate.ToString("R", System.Globalization.CultureInfo.InvariantCulture),
                });
            }
            AtomicFile.WriteAllText(Path.Combine(temp, "state.json"), JsonSerializer.Serialize(trainer.State, Json));

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
    /// Recreates a trainer from a checkpoint folder so that further steps equal those of the uninterrupted run.
    /// </summary>
    /// <param name="folder">The checkpoint folder.</param>
    /// <param name="device">Overrides the device stored in the checkpoint (cpu, cuda, cuda:N, auto).</param>
    public static DiffusionTrainer Load(string folder, string? device = null)
    {
        var config = ReadConfig(folder);
        var state = ReadState(folder);
        var options = device is null ? config.Training : config.Training with { Device = device };
        var trainer = new DiffusionTrainer(config.Model, options, state);
        try
        {
            using var _ = no_grad();
            using (var model = SafeTensors.Load(Require(folder, "model.safetensors")))
                LoadInto(trainer.Model, model.Tensors, Path.Combine(folder, "model.safetensors"));
            using (var ema = SafeTensors.Load(Require(folder, "ema.safetensors")))
                LoadInto(trainer.EmaModel, ema.Tensors, Path.Combine(folder, "ema.safetensors"));
            if (trainer.NoisyBranch is not null || trainer.CleanBranch is not null)
            {
                var path = Require(folder, "branches.safetensors");
                using var branches = SafeTensors.Load(path);
                if (trainer.NoisyBranch is not null) LoadInto(trainer.NoisyBranch, Prefixed(branches.Tensors, "noisy."), path);
                if (trainer.CleanBranch is not null) LoadInto(trainer.CleanBranch, Prefixed(branches.Tensors, "clean."), path);
            }
            var optimizerPath = Require(folder, "optimizer.safetensors");
            using (var optimizer = SafeTensors.Load(optimizerPath))
            {
                if (!optimizer.Metadata.TryGetValue("step_count", out var steps) || !long.TryParse(steps, out var stepCount))
                    throw new InvalidDataException($"{optimizerPath}: metadata 'step_count' is missing; the checkpoint is incomplete.");
                // The model was loaded from float32 masters: the optimizer's masters come from its own file.
                trainer.Optimizer.LoadState(optimizer.Tensors, stepCount, optimizerPath);
                if (optimizer.Metadata.TryGetValue("learning_rate", out var lr))
                    trainer.Optimizer.LearningRate = double.Parse(lr, System.Globalization.CultureInfo.InvariantCulture);
                if (!optimizer.Tensors.TryGetValue("rng.cpu", out var rng))
                    throw new InvalidDataException($"{optimizerPath}: the RNG state 'rng.cpu' is missing; the run cannot resume exactly.");
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

    /// <summary>Reads state.json of a checkpoint folder (step, stage, data position).</summary>
    public static TrainingState ReadState(string folder) => ReadJson<TrainingState>(folder, "state.json");

    /// <summary>Reads config.json of a checkpoint folder.</summary>
    public static ConfigFile ReadConfig(string folder) => ReadJson<ConfigFile>(folder, "config.json");

    /// <summary>Loads only the sampling weights (the weight EMA by default) of a checkpoint, for generation.</summary>
    public static MaskedDiffusionTransformer LoadModel(string folder, bool ema = true, Device? device = null)
    {
        var config = ReadConfig(folder);
        var model = new MaskedDiffusionTransformer(config.Model);
        var path = Require(folder, ema ? "ema.safetensors" : "model.safetensors");
        using (var weights = SafeTensors.Load(path)) LoadInto(model, weights.Tensors, path);
        if (device is not null) model.to(device);
        model.eval();
        return model;
    }

    /// <summary>Copies named tensors into a module's parameters, checking names and shapes.</summary>
    public static void LoadInto(nn.Module module, IReadOnlyDictionary<string, Tensor> tensors, string source)
    {
        using var _ = no_grad();
        var expected = module.state_dict();
        var missing = expected.Keys.Where(k => !tensors.ContainsKey(k)).ToList();
        var unexpected = tensors.Keys.Where(k => !expected.ContainsKey(k)).ToList();
        if (missing.Count > 0 || unexpected.Count > 0)
            throw new InvalidDataException(
                $"{source} does not match the model: missing [{string.Join(", ", missing.Take(5))}{(missing.Count > 5 ? ", …" : "")}], " +
                $"unexpected [{string.Join(", ", unexpected.Take(5))}{(unexpected.Count > 5 ? ", …" : "")}].");
        foreach (var (name, target) in expected)
        {
            var value = tensors[name];
            if (!value.shape.SequenceEqual(target.shape))
                throw new InvalidDataException(
                    $"{source}: tensor '{name}' has shape [{string.Join(", ", value.shape)}], the model expects [{string.Join(", ", target.shape)}].");
            target.copy_(value);
        }
    }

    private static Dictionary<string, Tensor> MasterState(DiffusionTrainer trainer)
    {
        var state = trainer.Model.state_dict();
        foreach (var (name, master) in trainer.Optimizer.MasterWeights) state[name] = master;
        return state;
    }

    private static Dictionary<string, string> Metadata(DiffusionTrainer trainer) => new()
    {
        ["format"] = "mcdit",
        ["config"] = JsonSerializer.Serialize(trainer.Config, Json),
        ["step"] = trainer.State.Step.ToString(System.Globalization.CultureInfo.InvariantCulture),
    };

    private static Dictionary<string, Tensor> Prefixed(IReadOnlyDictionary<string, Tensor> tensors, string prefix) =>
        tensors.Where(kv => kv.Key.StartsWith(prefix, StringComparison.Ordinal)).ToDictionary(kv => kv.Key[prefix.Length..], kv => kv.Value);

    private static string Require(string folder, string file)
    {
        var path = Path.Combine(folder, file);
        if (!File.Exists(path))
            throw new FileNotFoundException($"Checkpoint folder '{folder}' has no {file}; it is not a complete McDit checkpoint.", path);
        return path;
    }

    private static T ReadJson<T>(string folder, string file)
    {
        var path = Require(folder, file);
        try
        {
            return JsonSerializer.Deserialize<T>(File.ReadAllText(path), Json)
                ?? throw new InvalidDataException($"{path} is empty.");
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{path} is not valid: {e.Message}", e);
        }
    }
}
