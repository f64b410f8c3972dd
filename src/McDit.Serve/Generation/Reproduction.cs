using System.Globalization;
using System.Text;
using McDit.MLNet.Generation;

namespace McDit.Serve.Generation;

/// <summary>The same images from the command line (<c>mcdit sample</c>) and from C# (McDit.MLNet), as text to copy.</summary>
internal static class Reproduction
{
    /// <summary>The <c>mcdit sample</c> command that writes the same grid.</summary>
    public static string Cli(GenerationPlan plan, LoadedGenerator generator)
    {
        var args = new List<string> { "mcdit", "sample", "--from", ShellQuote(generator.CliFrom) };
        if (plan.Rows is not null) args.AddRange(new[] { "--classes", string.Join(',', plan.Rows) });
        args.AddRange(new[]
        {
            "--per-class", Invariant(plan.PerClass), "--seed", Invariant(plan.Seed), "--steps", Invariant(plan.Steps),
            "--solver", plan.Solver.ToString(), "--guidance", Invariant(plan.Guidance),
        });
        if (!string.Equals(generator.Origin.Device, "auto", StringComparison.OrdinalIgnoreCase))
            args.AddRange(new[] { "--device", generator.Origin.Device });
        args.AddRange(new[] { "--out", "grid.png" });
        return string.Join(' ', args);
    }

    /// <summary>C# that loads the model and writes the same grid.</summary>
    public static string CSharp(GenerationPlan plan, LoadedGenerator generator)
    {
        var code = new StringBuilder();
        code.AppendLine("using McDit.MLNet.Generation;");
        code.AppendLine("using McDit.MLNet.Imaging;");
        code.AppendLine("using McDit.Torch.Diffusion;");
        code.AppendLine("using Microsoft.ML;");
        code.AppendLine("using Microsoft.ML.Data;");
        code.AppendLine();
        code.AppendLine("var ml = new MLContext(seed: 0);");
        var device = generator.Origin.Device;
        if (generator.Origin.Kind == ModelOriginKind.ModelZip)
        {
            code.AppendLine($"var loaded = ml.Model.Load({CSharpString(generator.Origin.Path)}, out _);");
            code.AppendLine("var model = loaded as McDitModel ?? (McDitModel)((TransformerChain<ITransformer>)loaded).LastTransformer;");
        }
        else
        {
            code.AppendLine($"var model = ml.McDit().LoadCheckpoint({CSharpString(generator.Origin.Path)}, device: {CSharpString(device)});");
        }
        code.AppendLine(string.Create(CultureInfo.InvariantCulture,
            $"var generator = model.WithSampling(samplingSteps: {plan.Steps}, solver: SamplerSolver.{plan.Solver}, guidanceScale: {Invariant(plan.Guidance)});"));
        var labels = plan.Rows is null ? "null" : "classes";
        if (plan.Rows is not null)
        {
            code.AppendLine($"int[] rows = {{ {string.Join(", ", plan.Rows)} }};");
            code.AppendLine($"var classes = rows.SelectMany(c => Enumerable.Repeat(c, {plan.PerClass})).ToArray();   // image i: class rows[i / {plan.PerClass}], seed {plan.Seed} + i");
        }
        if (generator.Model.Decoder is not null)
        {
            code.AppendLine($"var images = generator.GenerateImages({plan.Count}, {labels}, seed: {Invariant(plan.Seed)});   // decoded by the model's VAE");
            code.AppendLine("for (int i = 0; i < images.Length; i++) using (images[i]) images[i].Save($\"image_{i:D3}.png\");");
        }
        else
        {
            code.AppendLine($"using var images = generator.Generate({plan.Count}, {labels}, seed: {Invariant(plan.Seed)});   // [N, C, H, W] in [-1, 1]");
            var rowLabels = plan.RowLabels is { } names ? "new[] { " + string.Join(", ", names.Select(CSharpString)) + " }" : "null";
            code.AppendLine($"ImageGrid.SavePng(images, columns: {plan.PerClass}, \"grid.png\", scale: 2, rowLabels: {rowLabels});");
        }
        return code.ToString();
    }

    static string Invariant(IFormattable value) => value.ToString(null, CultureInfo.InvariantCulture);

    /// <summary>A word for a POSIX shell: as it is when it is plain, else in single quotes.</summary>
    internal static string ShellQuote(string word) =>
        word.Length > 0 && word.All(c => char.IsAsciiLetterOrDigit(c) || "/._-+:=,@".Contains(c))
            ? word
            : "'" + word.Replace("'", "'\\''") + "'";

    static string CSharpString(string text)
    {
        var s = new StringBuilder("\"");
        foreach (var c in text)
            s.Append(c switch
            {
                '"' => "\\\"",
                '\\' => "\\\\",
                '\n' => "\\n",
                '\r' => "\\r",
                '\t' => "\\t",
                _ when char.IsControl(c) => $"\\u{(int)c:x4}",
                _ => c.ToString(),
            });
        return s.Append('"').ToString();
    }
}
