using System.Globalization;
using McDit.Torch.Diffusion;
using McDit.Torch.IO;
using McDit.Torch.Models;
using McDit.Torch.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace McDit.Torch.Interop;

/// <summary>
/// Imports the weights of the reference implementations (facebookresearch/DiT, Anima-Lab/MaskDiT) from <c>.pt</c>
/// (torch.save) and <c>.safetensors</c> files, and exports McDit networks to them under the reference parameter names.
/// </summary>
/// <remarks>
/// The reference names are McDit's except for the label embedding: MaskDiT's is a bias-free Linear over one-hot labels
/// (<c>y_embedder.embedding_table.weight</c> [D, C], the all-zero vector being the null label), which equals a table of
/// C + 1 rows whose last row is zero; import transposes it and appends that row, export drops it (folding a non-zero null
/// row into <c>t_embedder.mlp.2.bias</c>, which gives the same conditioning up to float rounding). The shape is inferred
/// from the tensors: width, patch size and input channels from <c>x_embedder.proj.weight</c>, the input size from
/// <c>pos_embed</c>, depths from the block count, the MLP ratio from <c>mlp.fc1</c>, learned sigma from
/// <c>final_layer.linear</c>, the decoder from <c>decoder_*</c>; heads, which shapes do not show, from
/// <see cref="ReferenceImportOptions"/>, the checkpoint's <c>args.model</c> (e.g. DiT-XL/2) or the DiT sizes.
/// </remarks>
public static class ReferenceCheckpoint
{
    const string LabelTable = "y_embedder.embedding_table.weight";
    const string MaskDiTPrefix = "model.";

    /// <summary>Reads and converts the weights of a reference checkpoint (see the class remarks).</summary>
    /// <param name="path">A <c>.pt</c>/<c>.pth</c> file written by torch.save, or a <c>.safetensors</c> file.</param>
    /// <param name="format">Which reference wrote it; null guesses from the names (<see cref="Detect"/>).</param>
    /// <param name="options">What to take and shape settings the tensors do not show; null for the defaults.</param>
    /// <exception cref="TorchFormatException">The file is damaged, unsafe, or not a state dict of that reference.</exception>
    /// <exception cref="IO.SafeTensorsFormatException">A .safetensors file is malformed.</exception>
    public static ReferenceModel Read(string path, ReferenceFormat? format, ReferenceImportOptions? options = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        options ??= new ReferenceImportOptions();
        TorchBackend.EnsureInitialized();
        var (config, raw, chosen, part, args, source) = ReadCore(path, format, options);
        // The network is built once (outside any dispose scope: it outlives this call): its state dict is the reference for
        // the names and shapes, then it takes the weights.
        MaskedDiffusionTransformer? network = null;
        try
        {
            network = new MaskedDiffusionTransformer(config);
            CheckAgainst(network, raw, chosen, source);
            // Labels: MaskDiT's one-hot Linear [D, C] → a table [C + 1, D] whose null row is zero.
            if (config.NumClasses > 0 && chosen == ReferenceFormat.MaskDiT)
            {
                var linear = raw[LabelTable];
                using (var scope = NewDisposeScope())
                    raw[LabelTable] = torch.cat(new[] { linear.t(), torch.zeros(1, linear.shape[0]) }, 0).contiguous().MoveToOuterDisposeScope();
                linear.Dispose();
            }
            Training.Checkpoint.LoadInto(network, raw, source);
            network.eval();
            return new ReferenceModel(config, raw, chosen, path, part, args, network);
        }
        catch
        {
            network?.Dispose();
            foreach (var t in raw.Values) t.Dispose();
            throw;
        }
    }

    static (DiffusionTransformerConfig, Dictionary<string, Tensor>, ReferenceFormat, string, PickleObject?, string) ReadCore(
        string path, ReferenceFormat? format, ReferenceImportOptions options)
    {
        using var scope = NewDisposeScope();
        Dictionary<string, Tensor> raw;
        string part;
        PickleObject? args = null;
        if (path.EndsWith(".safetensors", StringComparison.OrdinalIgnoreCase))
        {
            using var content = SafeTensors.Load(path);
            raw = content.Tensors.ToDictionary(kv => kv.Key, kv => kv.Value.alias(), StringComparer.Ordinal); // shares the memory, outlives the content
            part = "state dict";
        }
        else
        {
            using var content = TorchFile.Load(path);
            (raw, part, args) = PickStateDict(content.Root, path, options.UseEma);
            raw = raw.ToDictionary(kv => kv.Key, kv => kv.Value.alias(), StringComparer.Ordinal);
        }
        var source = $"{path} ({part})";
        // torch.compile's "_orig_mod.", DDP's "module.", MaskDiT's EDM wrapper "model." (MaskDiT's train_latent.py saves a compiled model).
        raw = StripPrefix(StripPrefix(raw, "_orig_mod."), "module.");
        raw = StripPrefix(StripPrefix(raw, MaskDiTPrefix), "_orig_mod.");
        var chosen = format ?? Detect(raw.Keys);
        foreach (var (name, t) in raw.ToList())
        {
            if (!t.is_floating_point())
                throw new TorchFormatException(path, $"tensor '{name}' ({part}) is {t.dtype}; reference weights are floating point.");
            if (t.dtype != ScalarType.Float32) raw[name] = t.to_type(ScalarType.Float32);
        }
        var config = InferConfig(raw, chosen, options, args, source);
        var result = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        foreach (var (name, t) in raw) result[name] = t.contiguous().MoveToOuterDisposeScope();
        return (config, result, chosen, part, args, source);
    }

    /// <summary>Reads a reference checkpoint (see <see cref="Read"/>) and returns the network, checked and in eval mode.</summary>
    public static MaskedDiffusionTransformer Import(string path, ReferenceFormat? format, ReferenceImportOptions? options = null)
    {
        using var model = Read(path, format, options);
        return model.CreateNetwork();
    }

    /// <summary>
    /// Guesses which reference wrote a state dict from its names: a decoder (<c>decoder_blocks.*</c>) means MaskDiT, else DiT.
    /// </summary>
    public static ReferenceFormat Detect(IEnumerable<string> names) =>
        names.Any(n => n.StartsWith("decoder_blocks.", StringComparison.Ordinal) || n.StartsWith("model.decoder_blocks.", StringComparison.Ordinal))
            ? ReferenceFormat.MaskDiT : ReferenceFormat.DiT;

    // ------------------------------------------------------------------ reading

    static (Dictionary<string, Tensor>, string, PickleObject?) PickStateDict(object? root, string path, bool useEma)
    {
        if (root is not PickleDict dict)
            throw new TorchFormatException(path, $"it holds a {Describe(root)}; expected a state dict or a training checkpoint dict (model, ema, opt, args).");
        if (dict.Count > 0 && dict.All(kv => kv.Key is string && kv.Value is Tensor))
            return (ToTensors(dict, path, "state dict"), "state dict", null);
        var args = dict.TryGetValue("args", out var a) ? a as PickleObject : null;
        var keys = string.Join(", ", dict.Keys.Select(k => k.ToString()));
        string pick = useEma ? "ema" : "model";
        if (!dict.TryGetValue(pick, out var sd))
            throw new TorchFormatException(path, useEma
                ? $"it has no 'ema' entry (its keys: {keys}); leave out --ema / UseEma to take 'model', or check the file."
                : $"it has no 'model' entry (its keys: {keys}); expected a bare state dict or a training checkpoint with 'model' and 'ema'.");
        if (sd is not PickleDict inner || !inner.All(kv => kv.Key is string && kv.Value is Tensor))
            throw new TorchFormatException(path, $"its '{pick}' entry is a {Describe(sd)}; expected a state dict of tensors.");
        return (ToTensors(inner, path, pick), pick, args);
    }

    static Dictionary<string, Tensor> ToTensors(PickleDict d, string path, string part)
    {
        var r = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        foreach (var (k, v) in d) r[(string)k] = (Tensor)v!;
        if (r.Count == 0) throw new TorchFormatException(path, $"its {part} is empty.");
        return r;
    }

    static Dictionary<string, Tensor> StripPrefix(Dictionary<string, Tensor> d, string prefix) =>
        d.Keys.All(k => k.StartsWith(prefix, StringComparison.Ordinal))
            ? d.ToDictionary(kv => kv.Key[prefix.Length..], kv => kv.Value, StringComparer.Ordinal)
            : d;

    static string Describe(object? o) => o switch
    {
        null => "None",
        PickleDict => "dict",
        Tensor t => $"tensor [{string.Join(", ", t.shape)}]",
        _ => o.GetType().Name,
    };

    static DiffusionTransformerConfig InferConfig(Dictionary<string, Tensor> t, ReferenceFormat format, ReferenceImportOptions options,
        PickleObject? args, string source)
    {
        long[] Shape(string name, int rank)
        {
            if (!t.TryGetValue(name, out var v))
                throw new TorchFormatException(source, $"it has no tensor '{name}', which every {format} state dict has; is it a {format} checkpoint (--from)?");
            if (v.dim() != rank)
                throw new TorchFormatException(source, $"tensor '{name}' has shape [{string.Join(", ", v.shape)}]; expected {rank} dimensions.");
            return v.shape;
        }
        int Count(string prefix) => t.Keys.Where(k => k.StartsWith(prefix, StringComparison.Ordinal))
            .Select(k => k[prefix.Length..].Split('.')[0]).Select(s => int.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out var i) ? i + 1 : 0)
            .DefaultIfEmpty(0).Max();

        var patch = Shape("x_embedder.proj.weight", 4);
        int width = (int)patch[0], inChannels = (int)patch[1], p = (int)patch[2];
        if (patch[3] != p) throw new TorchFormatException(source, $"x_embedder.proj.weight has a {patch[2]}×{patch[3]} kernel; DiT patches are square.");
        var pos = Shape("pos_embed", 3);
        int grid = (int)Math.Round(Math.Sqrt(pos[1]));
        if (grid * grid != pos[1] || pos[2] != width)
            throw new TorchFormatException(source, $"pos_embed has shape [{string.Join(", ", pos)}]; expected [1, (size/patch)², {width}].");
        int depth = Count("blocks.");
        var fc1 = Shape("blocks.0.mlp.fc1.weight", 2);
        double mlpRatio = fc1[0] / (double)width;

        bool hasDecoder = t.ContainsKey("decoder_layer.linear.weight");
        int decoderDepth = hasDecoder ? Count("decoder_blocks.") : 0;
        int decoderWidth = hasDecoder ? (int)Shape("decoder_layer.linear.weight", 2)[0] : 0;
        if (format == ReferenceFormat.DiT && hasDecoder)
            throw new TorchFormatException(source, "it has a decoder (decoder_layer, decoder_blocks): it is a MaskDiT checkpoint; import it with --from maskdit.");
        if (format == ReferenceFormat.MaskDiT && !hasDecoder)
            throw new TorchFormatException(source, "it has no decoder (decoder_layer, decoder_blocks), which MaskDiT models have: it looks like a DiT checkpoint; import it with --from dit.");
        if (hasDecoder)
        {
            var dfc1 = Shape("decoder_blocks.0.mlp.fc1.weight", 2);
            if (Math.Abs(dfc1[0] / (double)decoderWidth - mlpRatio) > 1e-9)
                throw new TorchFormatException(source, $"the decoder's MLP ratio {dfc1[0] / (double)decoderWidth} differs from the encoder's {mlpRatio}; McDit uses one ratio for both.");
        }
        var final = Shape("final_layer.linear.weight", 2);
        long outChannels = final[0] / ((long)p * p);
        if (outChannels * p * p != final[0] || (outChannels != inChannels && outChannels != 2 * inChannels))
            throw new TorchFormatException(source, $"final_layer.linear.weight has {final[0]} outputs; expected patch² × {inChannels} or × {2 * inChannels} (learned sigma).");

        // Classes.
        int numClasses = 0;
        bool hasNull = true;
        if (t.TryGetValue(LabelTable, out var table))
        {
            if (table.dim() != 2) throw new TorchFormatException(source, $"{LabelTable} has {table.dim()} dimensions; expected 2.");
            int? requested = options.NumClasses ?? ArgInt(args, "num_classes");
            if (format == ReferenceFormat.MaskDiT)
            {
                if (table.shape[0] != width)
                    throw new TorchFormatException(source, $"{LabelTable} has shape [{string.Join(", ", table.shape)}]; MaskDiT's one-hot label Linear is [{width}, C].");
                numClasses = (int)table.shape[1];
                if (requested is { } c && c != numClasses)
                    throw new TorchFormatException(source, $"its label Linear has {numClasses} classes, not the {c} asked for.");
            }
            else
            {
                if (table.shape[1] != width)
                    throw new TorchFormatException(source, $"{LabelTable} has shape [{string.Join(", ", table.shape)}]; DiT's table is [C + 1, {width}] (or [C, {width}] without label dropout).");
                int rows = (int)table.shape[0];
                if (requested is { } c)
                {
                    if (rows == c + 1) numClasses = c;
                    else if (rows == c) { numClasses = c; hasNull = false; }
                    else throw new TorchFormatException(source, $"its label table has {rows} rows, which fits neither {c} classes with the null label ({c + 1} rows) nor without ({c}).");
                }
                else
                {
                    if (rows < 2) throw new TorchFormatException(source, $"its label table has {rows} row(s); with the null label that leaves no class. Give the number of classes.");
                    numClasses = rows - 1;
                }
            }
        }

        int heads = options.NumHeads ?? HeadsFromArgs(args) ?? EncoderHeads(width)
            ?? throw new TorchFormatException(source, $"the encoder width {width} is not one of the DiT sizes, and the number of attention heads cannot be read from tensor shapes: give it (--heads N / NumHeads).");
        int decoderHeads = 0;
        if (hasDecoder)
            decoderHeads = options.DecoderNumHeads ?? DecoderHeads(decoderWidth)
                ?? throw new TorchFormatException(source, $"the decoder width {decoderWidth} is not MaskDiT's (512), and the decoder's attention heads cannot be read from tensor shapes: give them (--decoder-heads N / DecoderNumHeads).");

        var config = new DiffusionTransformerConfig
        {
            InputSize = grid * p, InChannels = inChannels, PatchSize = p, HiddenSize = width, Depth = depth, NumHeads = heads,
            MlpRatio = mlpRatio, NumClasses = numClasses, LearnSigma = outChannels == 2 * inChannels,
            DecoderDepth = decoderDepth, DecoderHiddenSize = decoderWidth, DecoderNumHeads = decoderHeads,
            UseMaskToken = t.ContainsKey("mask_token"), HasNullLabel = hasNull,
            Formulation = format == ReferenceFormat.DiT ? DiffusionFormulation.VpEpsilon : DiffusionFormulation.Edm,
        };
        try { config.Validated(); }
        catch (ArgumentException e) { throw new TorchFormatException(source, $"the shape inferred from its tensors is invalid: {e.Message}", e); }
        return config;
    }

    /// <summary>Every name and shape must be what the network of the inferred config has (MaskDiT's label Linear: [D, C]).</summary>
    static void CheckAgainst(MaskedDiffusionTransformer reference, Dictionary<string, Tensor> t, ReferenceFormat format, string source)
    {
        var config = reference.Config;
        var expected = reference.state_dict();
        var names = t.Keys.ToHashSet(StringComparer.Ordinal);
        var missing = expected.Keys.Where(k => !names.Contains(k)).ToList();
        var unexpected = names.Where(k => !expected.ContainsKey(k)).ToList();
        if (missing.Count > 0 || unexpected.Count > 0)
            throw new TorchFormatException(source,
                $"its tensors do not form a {format} network of the inferred shape (width {config.HiddenSize}, depth {config.Depth}, patch {config.PatchSize}): missing [{string.Join(", ", missing.Take(5))}], unexpected [{string.Join(", ", unexpected.Take(5))}].");
        foreach (var (name, target) in expected)
        {
            var shape = name == LabelTable && format == ReferenceFormat.MaskDiT ? new[] { target.shape[1], target.shape[0] - 1 } : target.shape;
            if (!t[name].shape.SequenceEqual(shape))
                throw new TorchFormatException(source, $"tensor '{name}' has shape [{string.Join(", ", t[name].shape)}]; the inferred network expects [{string.Join(", ", shape)}].");
        }
    }

    static int? ArgInt(PickleObject? args, string name) =>
        args is not null && args.Attributes.TryGetValue(name, out var v) && v is long l && l is > 0 and < int.MaxValue ? (int)l : null;

    static int? HeadsFromArgs(PickleObject? args)
    {
        if (args is null || !args.Attributes.TryGetValue("model", out var v) || v is not string name) return null;
        try { return DiffusionTransformerConfig.Preset(DiffusionTransformerConfig.ParseName(name).Size, 2, 32, 4, 0).NumHeads; }
        catch (ArgumentException) { return null; }
    }

    /// <summary>Heads of the DiT sizes (and McDit's Micro and Tiny) by width.</summary>
    static int? EncoderHeads(int width) => width switch { 64 => 4, 192 => 6, 384 => 6, 768 => 12, 1024 => 16, 1152 => 16, _ => null };

    /// <summary>Heads of MaskDiT's decoder (512 wide, 16 heads) and of McDit's smaller defaults.</summary>
    static int? DecoderHeads(int width) => width switch { 64 => 4, 128 => 4, 256 => 8, 512 => 16, _ => null };

    // ------------------------------------------------------------------ writing

    /// <summary>
    /// The network's weights under the reference's names, as the reference's module holds them (MaskDiT: the label table
    /// as the one-hot Linear [D, C]). Training-only parts that neither reference has (MC-DiT's clean-token embedding and
    /// clean/noisy type embedding, which the all-token forward pass does not use) are left out.
    /// </summary>
    /// <param name="model">The network.</param>
    /// <param name="format">The reference to write for.</param>
    /// <param name="notes">What the conversion did that a user should know (a folded null label, a formulation the reference samples differently).</param>
    /// <returns>New CPU float32 tensors; the caller disposes them.</returns>
    /// <exception cref="ArgumentException">The network has no counterpart in that reference (a DiT with a decoder, a MaskDiT without).</exception>
    public static Dictionary<string, Tensor> ToReference(MaskedDiffusionTransformer model, ReferenceFormat format, out List<string> notes)
    {
        ArgumentNullException.ThrowIfNull(model);
        var config = model.Config;
        notes = new List<string>();
        if (format == ReferenceFormat.DiT && config.HasDecoder)
            throw new ArgumentException("This network has a MaskDiT decoder, which DiT's model has not: export it --to maskdit.", nameof(format));
        if (format == ReferenceFormat.MaskDiT && (!config.HasDecoder || !config.UseMaskToken))
            throw new ArgumentException("This network has no MaskDiT decoder with a [MASK] token (it is a DiT): export it --to dit.", nameof(format));
        if (config.OutputConvolution)
            throw new ArgumentException("This network has an output convolution (trained with --output-conv), which neither DiT's nor MaskDiT's model has; it cannot be exported to them.", nameof(model));
        if (config.OutputOverlap > 0)
            throw new ArgumentException("This network predicts overlapping output windows (trained with --output-overlap N), which neither DiT's nor MaskDiT's model has; it cannot be exported to them.", nameof(model));
        if (format == ReferenceFormat.MaskDiT && config.Formulation != DiffusionFormulation.Edm)
            throw new ArgumentException("This network predicts DDPM noise (DiT's formulation); MaskDiT's EDM code would misread it. Export it --to dit.", nameof(format));
        if (format == ReferenceFormat.DiT && config.Formulation == DiffusionFormulation.Edm)
            notes.Add("The network was trained with EDM preconditioning (McDit, MaskDiT); DiT's own sampler assumes DDPM ε-prediction, so sample it with EDM preconditioning (c_in, c_noise = ln σ / 4).");
        if (config.CleanDecoderInput || config.CleanEncoderInput)
            notes.Add("MC-DiT's training-only clean-token inputs (clean_embedder, type_embed) are left out; sampling does not use them.");

        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var result = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        foreach (var (name, t) in model.state_dict())
        {
            if (name.StartsWith("clean_embedder.", StringComparison.Ordinal) || name == "type_embed") continue;
            result[name] = t.detach().cpu().to_type(ScalarType.Float32).clone();
        }
        if (format == ReferenceFormat.MaskDiT && config.NumClasses > 0)
        {
            var table = result[LabelTable];
            var rows = table[..config.NumClasses];
            if (config.HasNullLabel)
            {
                var nullRow = table[config.NumClasses];
                if (nullRow.abs().max().item<float>() != 0)
                {
                    // c = t_embedder(t) + table[y]: moving the null row r into the last bias keeps every class's c (up to rounding).
                    result["t_embedder.mlp.2.bias"] = result["t_embedder.mlp.2.bias"] + nullRow;
                    rows = rows - nullRow;
                    notes.Add("The null label's embedding was not zero; MaskDiT's null label is the zero vector, so it was folded into t_embedder.mlp.2.bias (the same conditioning up to float rounding).");
                }
            }
            result[LabelTable] = rows.t().contiguous();
        }
        foreach (var key in result.Keys.ToList()) result[key] = result[key].contiguous().MoveToOuterDisposeScope();
        return result;
    }

    /// <summary>
    /// Exports a network for a reference implementation: <c>.safetensors</c> (a bare state dict) or <c>.pt</c> in torch.save's
    /// format (<paramref name="layout"/>: bare for DiT, <c>{"model", "ema"}</c> with MaskDiT's <c>model.</c> prefix by default),
    /// readable by <c>torch.load(path, weights_only=True)</c>. The file is replaced atomically.
    /// </summary>
    /// <param name="model">The weights to export (the EMA of a McDit run, typically).</param>
    /// <param name="format">The reference.</param>
    /// <param name="path">A <c>.pt</c>, <c>.pth</c> or <c>.safetensors</c> file.</param>
    /// <param name="layout">How a .pt file is laid out.</param>
    /// <param name="trained">For the checkpoint layout: the trained weights to store as <c>model</c> (null: <paramref name="model"/> is both).</param>
    /// <returns>Notes on what the conversion did (see <see cref="ToReference"/>).</returns>
    public static List<string> Export(MaskedDiffusionTransformer model, ReferenceFormat format, string path,
        ReferenceLayout layout = ReferenceLayout.Default, MaskedDiffusionTransformer? trained = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        var ema = ToReference(model, format, out var notes);
        Dictionary<string, Tensor>? weights = null;
        try
        {
            if (trained is not null) weights = ToReference(trained, format, out _);
            if (layout == ReferenceLayout.Default) layout = format == ReferenceFormat.DiT ? ReferenceLayout.Bare : ReferenceLayout.Checkpoint;
            if (path.EndsWith(".safetensors", StringComparison.OrdinalIgnoreCase))
            {
                if (layout == ReferenceLayout.Checkpoint)
                    throw new ArgumentException("A .safetensors file holds one state dict: use the bare layout, or write a .pt file for the checkpoint layout.", nameof(layout));
                SafeTensors.Save(path, ema, new Dictionary<string, string> { ["format"] = "pt", ["mcdit_reference"] = format.ToString() });
            }
            else if (layout == ReferenceLayout.Bare) TorchFile.Save(path, ema);
            else
            {
                string prefix = format == ReferenceFormat.MaskDiT ? MaskDiTPrefix : "";
                PickleDict Prefixed(Dictionary<string, Tensor> d)
                {
                    var r = new PickleDict(ordered: true);
                    foreach (var (k, v) in d) r[prefix + k] = v;
                    return r;
                }
                var root = new PickleDict();
                root["model"] = Prefixed(weights ?? ema);
                root["ema"] = Prefixed(ema);
                TorchFile.Save(path, root);
            }
            return notes;
        }
        finally
        {
            foreach (var t in ema.Values) t.Dispose();
            if (weights is not null) foreach (var t in weights.Values) t.Dispose();
        }
    }
}
