using McDit.Serve.Generation;
using Xunit;

namespace McDit.Serve.Tests;

public sealed class ReproductionTests
{
    [Theory]
    [InlineData("/runs/demo", "/runs/demo")]
    [InlineData("runs/my run", "'runs/my run'")]
    [InlineData("it's", "'it'\\''s'")]
    [InlineData("$(rm -rf ~)", "'$(rm -rf ~)'")]
    [InlineData("", "''")]
    public void PathsAreQuotedForAShellWhenTheyNeedIt(string path, string quoted) => Assert.Equal(quoted, Reproduction.ShellQuote(path));
}
