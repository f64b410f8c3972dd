using System.Reflection;
using System.Text.RegularExpressions;
using McDit.MLNet.Generation;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.ML;
using Xunit;

namespace McDit.MLNet.Tests;

/// <summary>
/// The C# example of the README ("From C#: ML.NET") compiles as a console program with the SDK's implicit usings and
/// runs, at toy size: a few substitutions shrink the run, and each must match the README's text exactly once, so an
/// edited example fails here until the test is updated with it.
/// </summary>
public class ReadmeExampleTests : IDisposable
{
    const string Section = "## From C#: ML.NET";

    readonly string _folder = Path.Combine(Path.GetTempPath(), $"mcdit-readme-{Guid.NewGuid():N}");

    // README text → toy-size text. Only sizes and file locations change; every call stays as written.
    (string Readme, string Toy)[] ToySize() => new[]
    {
        ("var heldOut = ml.McDit().Data.LoadFashionMnist(FashionMnistSplit.HeldOut);",
         "var heldOut = ml.Data.TakeRows(ml.McDit().Data.LoadFashionMnist(FashionMnistSplit.HeldOut), 12);"),
        ("Model = \"Tiny/4\", NumberOfSteps = 320, UnmaskTuningSteps = 700, BatchSize = 32, LearningRate = 2e-3, EmaDecay = 0.99,",
         "ModelConfig = new McDit.Torch.Models.DiffusionTransformerConfig { PatchSize = 4, HiddenSize = 32, Depth = 1, NumHeads = 2, " +
         "DecoderDepth = 1, DecoderHiddenSize = 32, DecoderNumHeads = 2 }, NumberOfSteps = 2, UnmaskTuningSteps = 1, BatchSize = 8, " +
         "LearningRate = 2e-3, EmaDecay = 0.99, SamplingSteps = 2, Device = \"cpu\","),
        ("imagesPerClass: 8", "imagesPerClass: 1"),
        ("model.SaveImageGrid(\"grid.png\"", $"model.SaveImageGrid({Literal(Path.Combine(_folder, "grid.png"))}"),
        ("ml.Model.Save(model, train.Schema, \"mcdit.zip\");", $"ml.Model.Save(model, train.Schema, {Literal(Path.Combine(_folder, "mcdit.zip"))});"),
    };

    static string Literal(string path) => "@\"" + path.Replace("\"", "\"\"") + "\"";

    [Fact]
    public void TheReadmeExampleCompilesAndRuns()
    {
        Directory.CreateDirectory(_folder);
        var code = ReadmeExample();
        foreach (var (readme, toy) in ToySize())
        {
            int count = Regex.Matches(code, Regex.Escape(readme)).Count;
            Assert.True(count == 1, $"The README example should contain `{readme}` once (found {count}); update {nameof(ReadmeExampleTests)} with the README.");
            code = code.Replace(readme, toy);
        }

        var trees = new List<SyntaxTree>
        {
            CSharpSyntaxTree.ParseText(code, Parse, "Program.cs"),
            // What `dotnet new console` (ImplicitUsings) gives every file.
            CSharpSyntaxTree.ParseText(string.Join("\n", new[] { "System", "System.Collections.Generic", "System.IO", "System.Linq",
                "System.Net.Http", "System.Threading", "System.Threading.Tasks" }.Select(n => $"global using global::{n};")), Parse, "GlobalUsings.cs"),
        };
        var compilation = CSharpCompilation.Create("ReadmeExample", trees, References(),
            new CSharpCompilationOptions(OutputKind.ConsoleApplication, nullableContextOptions: NullableContextOptions.Enable));
        using var image = new MemoryStream();
        var result = compilation.Emit(image);
        var problems = result.Diagnostics.Where(d => d.Severity >= DiagnosticSeverity.Warning).Select(d => d.ToString()).ToList();
        Assert.True(result.Success && problems.Count == 0, "The README example does not compile cleanly:\n" + string.Join("\n", problems));

        var entry = Assembly.Load(image.ToArray()).EntryPoint!;
        entry.Invoke(null, entry.GetParameters().Length == 0 ? null : new object[] { Array.Empty<string>() });

        Assert.True(new FileInfo(Path.Combine(_folder, "grid.png")).Length > 0);
        var loaded = new MLContext().Model.Load(Path.Combine(_folder, "mcdit.zip"), out var schema);
        var generator = Assert.IsType<McDitModel>(loaded);
        Assert.Equal(3, generator.TrainedSteps); // 2 masked + 1 unmasking step
        Assert.Equal(10, generator.NumberOfClasses);
        Assert.NotNull(schema.GetColumnOrNull("Label"));
    }

    static readonly CSharpParseOptions Parse = new(LanguageVersion.Latest);

    /// <summary>The first C# code block under the README's ML.NET heading.</summary>
    static string ReadmeExample()
    {
        var readme = File.ReadAllText(RepositoryFiles.Path("README.md"));
        int section = readme.IndexOf(Section, StringComparison.Ordinal);
        Assert.True(section >= 0, $"README.md has no heading '{Section}'.");
        var match = Regex.Match(readme[section..], "```csharp\\n(.*?)\\n```", RegexOptions.Singleline);
        Assert.True(match.Success, $"README.md has no ```csharp block under '{Section}'.");
        return match.Groups[1].Value;
    }

    /// <summary>Every assembly of this test's application (the trusted platform assemblies): .NET, ML.NET, TorchSharp, McDit.</summary>
    static IEnumerable<MetadataReference> References() =>
        ((string)AppContext.GetData("TRUSTED_PLATFORM_ASSEMBLIES")!).Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)
            .Select(path => MetadataReference.CreateFromFile(path));

    public void Dispose()
    {
        if (Directory.Exists(_folder)) Directory.Delete(_folder, recursive: true);
    }
}
