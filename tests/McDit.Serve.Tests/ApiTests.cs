using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using McDit.Cli.Runs;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;
using Xunit;

namespace McDit.Serve.Tests;

/// <summary>The JSON API and the page's files on a test server (WebApplicationFactory), generating from a tiny trained model.</summary>
[Collection(TinyRunsCollection.Name)]
public sealed class ApiTests(TinyRuns runs)
{
    ServeOptions Options(GenerationLimits? limits = null) => new()
    {
        Generator = ServedModel.For(runs.McDiT.Path, "cpu"),
        Runs = new[] { ServedRuns.From(runs.McDiT, "mcdit") },
        Limits = limits ?? new GenerationLimits(),
        RunPollInterval = TimeSpan.FromMilliseconds(100),
    };

    static StringContent Json(string json) => new(json, Encoding.UTF8, "application/json");

    static async Task<JsonElement> ReadJson(HttpResponseMessage response) =>
        JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.Clone();

    /// <summary>Reads the job's event stream to its end: every snapshot it sent.</summary>
    static async Task<List<JsonElement>> Follow(HttpClient client, string id)
    {
        var events = new List<JsonElement>();
        using var cancel = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        using var response = await client.GetAsync($"/api/jobs/{id}/events", HttpCompletionOption.ResponseHeadersRead, cancel.Token);
        Assert.Equal("text/event-stream", response.Content.Headers.ContentType?.MediaType);
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(cancel.Token));
        while (await reader.ReadLineAsync(cancel.Token) is { } line)
            if (line.StartsWith("data: ", StringComparison.Ordinal)) events.Add(JsonDocument.Parse(line[6..]).RootElement.Clone());
        return events;
    }

    [Fact]
    public async Task ThePageAndItsFilesComeFromTheAssemblyWithNothingFromElsewhere()
    {
        using var factory = new ServeFactory(Options());
        var client = factory.CreateClient();
        var page = await client.GetAsync("/");
        Assert.Equal(HttpStatusCode.OK, page.StatusCode);
        var html = await page.Content.ReadAsStringAsync();
        Assert.Contains("<title>McDit</title>", html);
        Assert.Contains("default-src 'self'", page.Headers.GetValues("Content-Security-Policy").Single());
        foreach (var (file, type) in new[] { ("/app.js", "text/javascript"), ("/chart.js", "text/javascript"), ("/app.css", "text/css") })
        {
            var response = await client.GetAsync(file);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal(type, response.Content.Headers.ContentType?.MediaType);
            var text = await response.Content.ReadAsStringAsync();
            // No CDN, no font or script from the network: the only absolute URL is SVG's namespace name.
            Assert.DoesNotContain("https://", text);
            Assert.DoesNotContain("http://", text.Replace("http://www.w3.org/2000/svg", ""));
        }
        foreach (System.Text.RegularExpressions.Match m in System.Text.RegularExpressions.Regex.Matches(html, "(?:src|href)=\"([^\"]*)\""))
            Assert.True(m.Groups[1].Value.StartsWith('/') || m.Groups[1].Value.StartsWith('#'), $"{m.Value} is not served by the app");
        // Embedded, not loose files beside the assembly: the page works wherever the tool is installed.
        var resources = typeof(ServeApp).Assembly.GetManifestResourceNames();
        Assert.Contains(resources, r => r.EndsWith("app.js", StringComparison.Ordinal));
        Assert.False(Directory.Exists(Path.Combine(AppContext.BaseDirectory, "wwwroot")));
        Assert.Equal(HttpStatusCode.NotFound, (await client.GetAsync("/McDit.Serve.dll")).StatusCode);
    }

    [Fact]
    public async Task InfoNamesTheModelsClassesAndTheLimits()
    {
        using var factory = new ServeFactory(Options());
        var info = await ReadJson(await factory.CreateClient().GetAsync("/api/info"));
        var generator = info.GetProperty("generator");
        Assert.True(generator.GetProperty("ready").GetBoolean());
        var classes = generator.GetProperty("classes").EnumerateArray().Select(c => c.GetProperty("name").GetString()).ToList();
        Assert.Equal(10, classes.Count);
        Assert.Equal("Sneaker", classes[7]);
        Assert.Equal(64, info.GetProperty("limits").GetProperty("maxImages").GetInt32());
        Assert.Equal("mcdit", info.GetProperty("runs")[0].GetProperty("name").GetString());
    }

    [Fact]
    public async Task AJobStreamsItsImagesAsTheyAreDoneAndTheCommandItShowsDrawsTheSameGrid()
    {
        using var factory = new ServeFactory(Options());
        var client = factory.CreateClient();
        var submitted = await client.PostAsync("/api/jobs", Json("""{"classes":[0,7],"perClass":2,"seed":5,"steps":2,"guidance":2,"solver":"Euler"}"""));
        Assert.Equal(HttpStatusCode.Accepted, submitted.StatusCode);
        var job = await ReadJson(submitted);
        var id = job.GetProperty("id").GetString()!;
        Assert.Equal(4, job.GetProperty("total").GetInt32());

        var events = await Follow(client, id);
        var last = events[^1];
        Assert.Equal("Done", last.GetProperty("state").GetString());
        // Progress: the images arrived one by one, in order, before the end.
        var done = events.Select(e => e.GetProperty("done").GetInt32()).ToList();
        Assert.Equal(done.OrderBy(d => d), done);
        Assert.Contains(1, done);
        Assert.Contains(events, e => e.GetProperty("state").GetString() == "Running" && e.GetProperty("done").GetInt32() < 4);

        var images = last.GetProperty("images").EnumerateArray().ToList();
        Assert.Equal(new[] { "T-shirt/top", "T-shirt/top", "Sneaker", "Sneaker" }, images.Select(i => i.GetProperty("className").GetString()));
        Assert.Equal(new long[] { 5, 6, 7, 8 }, images.Select(i => i.GetProperty("seed").GetInt64()));
        foreach (var image in images)
        {
            var download = await client.GetAsync(image.GetProperty("url").GetString() + "?download=1");
            Assert.Equal("image/png", download.Content.Headers.ContentType?.MediaType);
            Assert.Equal(image.GetProperty("fileName").GetString(), download.Content.Headers.ContentDisposition?.FileName);
            using var png = Image.Load<Rgb24>(await download.Content.ReadAsByteArrayAsync());
            Assert.Equal((28, 28), (png.Width, png.Height));
        }
        var grid = await client.GetByteArrayAsync($"/api/jobs/{id}/grid.png");

        // The command the page shows, run as it is, writes the same picture.
        var cli = last.GetProperty("reproduce").GetProperty("cli").GetString()!;
        Assert.StartsWith("mcdit sample --from ", cli);
        Assert.Contains("--classes 0,7 --per-class 2 --seed 5 --steps 2 --solver Euler --guidance 2", cli);
        var file = Path.Combine(TinyRuns.TempFolder() + ".png");
        var args = cli.Split(' ').Skip(1).ToArray();
        args[Array.IndexOf(args, "--out") + 1] = file;
        TinyRuns.Cli(args);
        try
        {
            using var ours = Image.Load<Rgb24>(grid);
            using var theirs = Image.Load<Rgb24>(file);
            Assert.Equal((theirs.Width, theirs.Height), (ours.Width, ours.Height));
            int worst = 0;
            for (int y = 0; y < ours.Height; y++)
                for (int x = 0; x < ours.Width; x++)
                    worst = Math.Max(worst, Math.Abs(ours[x, y].R - theirs[x, y].R));
            // One image per sampler run here, a batch of four there: equal up to float rounding (at most one grey level).
            Assert.True(worst <= 1, $"the served grid differs from `{cli}` by {worst} grey levels");
        }
        finally
        {
            File.Delete(file);
        }
        var csharp = last.GetProperty("reproduce").GetProperty("csharp").GetString()!;
        Assert.Contains("WithSampling(samplingSteps: 2, solver: SamplerSolver.Euler, guidanceScale: 2)", csharp);
        Assert.Contains("generator.Generate(4, classes, seed: 5)", csharp);
        Assert.Contains(runs.McDiT.ModelFile, csharp);
    }

    [Theory]
    [InlineData("""{"classes":[0],"perClass":0}""", "perClass", "Images per class 0")]
    [InlineData("""{"classes":[0],"perClass":65}""", "perClass", "expected 1 to 64")]
    [InlineData("""{"classes":[0,1,2,3,4,5,6,7,8,9],"perClass":7}""", "perClass", "70 images is over this server's limit of 64")]
    [InlineData("""{"classes":[10]}""", "classes", "Class 10 is not a class of this model")]
    [InlineData("""{"classes":[-1]}""", "classes", "expected 0 to 9")]
    [InlineData("""{"classes":[]}""", "classes", "Pick at least one class")]
    [InlineData("""{"perClass":2}""", "classes", "Pick at least one class")]
    [InlineData("""{"classes":[0],"steps":0}""", "steps", "Sampler steps 0")]
    [InlineData("""{"classes":[0],"steps":251}""", "steps", "expected 1 to 250")]
    [InlineData("""{"classes":[0],"steps":"many"}""", "steps", "expected a whole number")]
    [InlineData("""{"classes":[0],"steps":2.5}""", "steps", "expected a whole number")]
    [InlineData("""{"classes":[0],"guidance":-1}""", "guidance", "Guidance scale -1")]
    [InlineData("""{"classes":[0],"guidance":"NaN"}""", "guidance", "Guidance scale NaN")]
    [InlineData("""{"classes":[0],"seed":9007199254740992}""", "seed", "Seed 9007199254740992")]
    [InlineData("""{"classes":[0],"seed":1e30}""", "seed", "expected a whole number")]
    [InlineData("""{"classes":[0],"solver":"DDIM"}""", "solver", "expected Heun or Euler")]
    [InlineData("""{"classes":[0],"solver":"1"}""", "solver", "expected Heun or Euler")]
    [InlineData("""{"classes":"all"}""", "classes", "expected a list of class indices")]
    [InlineData("""[1,2,3]""", null, "not a JSON object")]
    [InlineData("""{"classes":[0]""", null, "not valid JSON")]
    [InlineData("""null""", null, "The request is empty")]
    public async Task BadValuesGetAMessageNamingTheFieldNeverA500(string body, string? field, string message)
    {
        using var factory = new ServeFactory(Options());
        var response = await factory.CreateClient().PostAsync("/api/jobs", Json(body));
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var error = await ReadJson(response);
        Assert.Contains(message, error.GetProperty("error").GetString());
        Assert.Equal(field, error.GetProperty("field").GetString());
    }

    [Fact]
    public async Task RequestsAreBoundedInTypeSizeAndNumber()
    {
        using var factory = new ServeFactory(Options(new GenerationLimits { MaxQueuedJobs = 1 }));
        var client = factory.CreateClient();
        var plain = await client.PostAsync("/api/jobs", new StringContent("""{"classes":[0]}""", Encoding.UTF8, "text/plain"));
        Assert.Equal(HttpStatusCode.UnsupportedMediaType, plain.StatusCode);
        var huge = await client.PostAsync("/api/jobs", Json("{\"classes\":[" + string.Join(',', Enumerable.Repeat("0", 10_000)) + "]}"));
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, huge.StatusCode);
        Assert.Contains("16384 bytes", (await ReadJson(huge)).GetProperty("error").GetString());

        // One job runs, one waits, the next is refused: the queue is bounded and jobs run one at a time.
        var slow = """{"classes":[0,1,2,3,4,5,6,7],"perClass":8,"steps":40}""";  // 64 images: minutes, against milliseconds between the requests
        var first = await ReadJson(await client.PostAsync("/api/jobs", Json(slow)));
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while ((await ReadJson(await client.GetAsync($"/api/jobs/{first.GetProperty("id").GetString()}"))).GetProperty("state").GetString() == "Queued")
        {
            Assert.True(DateTime.UtcNow < deadline, "the first job never started");
            await Task.Delay(50);
        }
        var second = await client.PostAsync("/api/jobs", Json(slow));
        Assert.Equal(HttpStatusCode.Accepted, second.StatusCode);
        var waiting = await ReadJson(second);
        Assert.Equal("Queued", waiting.GetProperty("state").GetString());
        Assert.Equal(0, waiting.GetProperty("queuePosition").GetInt32());
        var third = await client.PostAsync("/api/jobs", Json(slow));
        Assert.Equal(HttpStatusCode.TooManyRequests, third.StatusCode);
        Assert.Contains("queue is full", (await ReadJson(third)).GetProperty("error").GetString());
        // The running job's images are there as they are finished; the server stops it when it shuts down.
    }

    [Fact]
    public async Task ImagesAreFoundByJobIdOnlyAndUnknownIdsOrPathsGiveNotFound()
    {
        using var factory = new ServeFactory(Options());
        var client = factory.CreateClient();
        foreach (var url in new[]
                 {
                     "/api/jobs/0123456789abcdef01234567", "/api/jobs/nope/images/0.png", "/api/jobs/nope/grid.png",
                     "/api/jobs/..%2F..%2Fetc%2Fpasswd/grid.png", "/api/runs/1", "/api/runs/-1/grid.png", "/api/runs/..%2Frun.json",
                     "/..%2F..%2Fetc%2Fpasswd", "/%2Fetc%2Fpasswd", "/api/jobs/x/images/-1.png",
                 })
        {
            var response = await client.GetAsync(url);
            Assert.True(response.StatusCode == HttpStatusCode.NotFound, $"{url}: {response.StatusCode}");
            Assert.DoesNotContain("root:", await response.Content.ReadAsStringAsync());
        }
    }

    [Fact]
    public async Task OnlyLoopbackNamesAreAnsweredOnALoopbackAddress()
    {
        using var factory = new ServeFactory(Options());
        var client = factory.CreateClient();
        var request = new HttpRequestMessage(HttpMethod.Get, "/api/info");
        request.Headers.Host = "attacker.example";
        Assert.Equal(HttpStatusCode.BadRequest, (await client.SendAsync(request)).StatusCode);
        request = new HttpRequestMessage(HttpMethod.Get, "/api/info");
        request.Headers.Host = "127.0.0.1:5055";
        Assert.Equal(HttpStatusCode.OK, (await client.SendAsync(request)).StatusCode);
    }

    [Fact]
    public async Task WithoutAModelThePageSaysSoAndGenerationIsRefusedWithAMessage()
    {
        using var factory = new ServeFactory(new ServeOptions { Runs = new[] { ServedRuns.From(runs.DiT, "dit") } });
        var client = factory.CreateClient();
        var info = await ReadJson(await client.GetAsync("/api/info"));
        Assert.Equal(JsonValueKind.Null, info.GetProperty("generator").ValueKind);
        var response = await client.PostAsync("/api/jobs", Json("""{"classes":[0]}"""));
        Assert.Equal(HttpStatusCode.Conflict, response.StatusCode);
        Assert.Contains("--from", (await ReadJson(response)).GetProperty("error").GetString());
    }

    [Fact]
    public async Task ARunThatHasNotWrittenACheckpointYetWaitsAndThenLoadsIt()
    {
        var folder = new RunFolder(TinyRuns.TempFolder());
        try
        {
            using var factory = new ServeFactory(new ServeOptions { Generator = ServedModel.ForRun(folder, "cpu"), Runs = new[] { ServedRuns.From(folder, "new") } });
            var client = factory.CreateClient();
            var generator = (await ReadJson(await client.GetAsync("/api/info"))).GetProperty("generator");
            Assert.False(generator.GetProperty("ready").GetBoolean());
            Assert.Contains("no checkpoint yet", generator.GetProperty("notReady").GetString());
            Assert.Equal(HttpStatusCode.Conflict, (await client.PostAsync("/api/jobs", Json("""{"classes":[0]}"""))).StatusCode);
            TinyRuns.Train(folder.Path, "--method", "DiT");
            var deadline = DateTime.UtcNow.AddSeconds(60);
            do
            {
                // Loaded in the background: a request waits a little, then is told "Loading the model…".
                generator = (await ReadJson(await client.GetAsync("/api/info"))).GetProperty("generator");
                Assert.True(DateTime.UtcNow < deadline, "the run's model was never loaded: " + generator);
            }
            while (!generator.GetProperty("ready").GetBoolean());
            Assert.Equal(2, generator.GetProperty("step").GetInt64());
        }
        finally
        {
            TinyRuns.Delete(folder.Path);
        }
    }
}
