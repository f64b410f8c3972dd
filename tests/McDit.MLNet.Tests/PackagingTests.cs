using System.Text.RegularExpressions;
using Xunit;

namespace McDit.MLNet.Tests;

/// <summary>What McDit.MLNet's package brings to the projects that reference it.</summary>
public class PackagingTests
{
    [Fact]
    public void TheTransitiveResNet18StepCopiesTheVersionMcDitDependsOn()
    {
        var central = File.ReadAllText(RepositoryFiles.Path("Directory.Packages.props"));
        var targets = File.ReadAllText(RepositoryFiles.Path("src", "McDit.MLNet", "buildTransitive", "McDit.MLNet.targets"));
        var dependedOn = Regex.Match(central, "Include=\"Microsoft.ML.DnnImageFeaturizer.ResNet18\" Version=\"([^\"]+)\"").Groups[1].Value;
        var copied = Regex.Match(targets, "<McDitResNet18PackageVersion[^>]*>([^<]+)<").Groups[1].Value;
        Assert.NotEqual("", dependedOn);
        Assert.Equal(dependedOn, copied);
    }
}
