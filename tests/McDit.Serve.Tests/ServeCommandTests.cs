using System.Net;
using System.Text;
using McDit.Cli;
using McDit.Cli.Runs;
using Xunit;

namespace McDit.Serve.Tests;

/// <summary>The serve verb's options, finding run folders, and the real server's address and limits.</summary>
[Collection(TinyRunsCollection.Name)]
public sealed class ServeCommandTests(TinyRuns runs)
{
    static (int Exit, string Output, string Error) Run(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        int exit = McDitCli.RunAsync(args, output, error).GetAwaiter().GetResult();
        return (exit, output.ToString(), error.ToString());
    }

    [Theory]
    [InlineData(new[] { "serve" }, "Nothing to serve")]
    [InlineData(new[] { "serve", "--runs", "/nonexistent/mcdit-runs" }, "--runs '/nonexistent/mcdit-runs' does not exist")]
    [InlineData(new[] { "serve", "--from", "/nonexistent/model.zip" }, "--from '/nonexistent/model.zip' does not exist")]
    [InlineData(new[] { "serve", "--runs", "/tmp", "--host", "not-an-address" }, null)]
    public void BadOptionsAreRefusedWithAMessage(string[] args, string? message)
    {
        var (exit, _, error) = Run(args);
        Assert.NotEqual(0, exit);
        Assert.Contains(message ?? "", error);
    }

    [Fact]
    public void ABadHostOrPortNamesTheOption()
    {
        var served = ServedRuns.Find(new[] { runs.Root });
        var e = Assert.Throws<ArgumentException>(() => new ServeOptions { Runs = served, Host = "example.com" }.Validated());
        Assert.Contains("--host 'example.com' is invalid", e.Message);
        e = Assert.Throws<ArgumentException>(() => new ServeOptions { Runs = served, Port = 70000 }.Validated());
        Assert.Contains("--port 70000", e.Message);
        Assert.True(ServeHost.ParseHost("127.0.0.1").IsLoopback);
        Assert.True(ServeHost.ParseHost("::1").IsLoopback);
        Assert.True(ServeHost.ParseHost("localhost").IsLoopback);
        Assert.False(ServeHost.ParseHost("0.0.0.0").IsLoopback);
    }

    [Fact]
    public void RunFoldersAreFoundInAFolderOfRunsAsCompareWritesThem()
    {
        var found = ServedRuns.Find(new[] { runs.Root, runs.DiT.Path });
        Assert.Equal(new[] { "dit", "mcdit" }, found.Select(r => r.Name));
        Assert.Equal(runs.DiT.MetricsFile, found[0].MetricsFile);
        var e = Assert.Throws<ArgumentException>(() => ServedRuns.Find(new[] { runs.McDiT.SamplesFolder }));
        Assert.Contains("holds no run folder", e.Message);
    }

    [Fact]
    public async Task TheServerListensOnLoopbackAndBoundsTheRequestBody()
    {
        await using var server = await ServeHost.StartAsync(new ServeOptions { Port = 0, Runs = new[] { ServedRuns.From(runs.DiT, "dit") } });
        Assert.Equal("127.0.0.1", server.Address.Host);
        Assert.NotEqual(0, server.Address.Port);
        using var client = new HttpClient { BaseAddress = server.Address };
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/api/info")).StatusCode);
        var huge = new ByteArrayContent(new byte[ServeApp.MaxRequestBodyBytes + 1]);
        huge.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/json");
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, (await client.PostAsync("/api/jobs", huge)).StatusCode);
    }

    [Fact]
    public void ANonLoopbackHostIsWarnedAbout()
    {
        // (Checked without binding: a test opens no port beyond loopback.)
        Assert.Contains("is not a loopback address", ServeHost.Warning(new ServeOptions { Host = "0.0.0.0" }));
        Assert.Contains("is not a loopback address", ServeHost.Warning(new ServeOptions { Host = "192.0.2.7" }));
        Assert.Null(ServeHost.Warning(new ServeOptions { Host = "127.0.0.1" }));
        Assert.Null(ServeHost.Warning(new ServeOptions { Host = "localhost" }));
    }
}
