using Xunit;

namespace McDit.Cli.Tests;

public class ArgumentTests
{
    [Fact]
    public void RootHelpListsTheCommands()
    {
        var (exit, output, _) = CliRunner.Run("--help");
        Assert.Equal(0, exit);
        Assert.Contains("train", output);
        Assert.Contains("sample", output);
    }

    [Theory]
    [InlineData("train", "--steps", "--method", "--resume", "--unmask-steps", "--device")]
    [InlineData("sample", "--from", "--guidance", "--per-class", "--seed")]
    public void CommandHelpListsItsOptions(string command, params string[] options)
    {
        var (exit, output, _) = CliRunner.Run(command, "--help");
        Assert.Equal(0, exit);
        foreach (var o in options) Assert.Contains(o, output);
    }

    [Fact]
    public void AnUnknownMethodIsAParseError()
    {
        var (exit, _, error) = CliRunner.Run("train", "--method", "GAN");
        Assert.NotEqual(0, exit);
        Assert.Contains("GAN", error);
    }

    [Fact]
    public void ABadDataFolderIsNamed()
    {
        var (exit, _, error) = CliRunner.Run("train", "--out", CliRunner.TempFolder(), "--data", "/no/such/folder", "--steps", "1");
        Assert.Equal(2, exit); // a usage error
        Assert.Contains("/no/such/folder", error);
    }

    [Fact]
    public void AnUnknownModelPresetSaysWhatIsExpected()
    {
        var (exit, _, error) = CliRunner.Run("train", "--out", CliRunner.TempFolder(), "--model", "Huge/3", "--steps", "1");
        Assert.Equal(2, exit); // a usage error
        Assert.Contains("Huge/3", error);
        Assert.Contains("Tiny|S|B|L|XL", error);
    }

    [Theory]
    [InlineData("--batch-size", "0")]
    [InlineData("--lr", "-1")]
    [InlineData("--mask-ratio", "1.5")]
    public void BadNumbersNameTheOption(string option, string value)
    {
        var (exit, _, error) = CliRunner.Run("train", "--out", CliRunner.TempFolder(), option, value);
        Assert.Equal(2, exit); // a usage error
        Assert.Contains(option, error);
    }

    [Fact]
    public void SampleFromAFolderThatIsNoRunSaysSo()
    {
        var folder = CliRunner.TempFolder();
        Directory.CreateDirectory(folder);
        var (exit, _, error) = CliRunner.Run("sample", "--from", folder);
        Assert.Equal(2, exit); // a usage error
        Assert.Contains("neither a run folder", error);
        Directory.Delete(folder);
    }
}
