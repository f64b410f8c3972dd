using System.Text.Json;
using McDit.Serve.Generation;
using McDit.Serve.Internal;
using McDit.Serve.Training;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;

namespace McDit.Serve;

/// <summary>
/// The page and its JSON API. Images are served by job id and index from memory, or as the newest grid of a served run
/// (by index); no part of a request is ever used as a path.
/// </summary>
internal static class ServeEndpoints
{
    public static void Map(IEndpointRouteBuilder app)
    {
        app.MapGet("/", () => Page("index.html", "text/html; charset=utf-8"));

        app.MapGet("/api/info", (ServeOptions options, GenerationQueue queue, RunMonitor runs) => Results.Json(Info(options, queue, runs), ServeJson.Options));

        app.MapPost("/api/jobs", SubmitAsync);
        app.MapGet("/api/jobs/{id}", (string id, GenerationQueue queue) =>
            queue.Find(id) is { } job ? Results.Json(job.Snapshot(queue.PositionOf(job)), ServeJson.Options) : UnknownJob(id));
        app.MapGet("/api/jobs/{id}/events", (string id, HttpContext http, GenerationQueue queue, EventStream events) =>
            queue.Find(id) is { } job
                ? events.Run(http, job.Changed, () => job.Snapshot(queue.PositionOf(job)), () => job.IsFinished, "job")
                : Task.FromResult(UnknownJob(id)));
        app.MapGet("/api/jobs/{id}/images/{index:int}.png", (string id, int index, string? download, GenerationQueue queue) =>
        {
            if (queue.Find(id) is not { } job) return UnknownJob(id);
            return job.Image(index) is { } png
                ? Results.File(png, "image/png", download is not null ? job.FileName(index) : null)
                : ApiError.NotFound($"Job {id} has no image {index} (yet).");
        });
        app.MapGet("/api/jobs/{id}/grid.png", (string id, string? download, GenerationQueue queue) =>
        {
            if (queue.Find(id) is not { } job) return UnknownJob(id);
            return job.GridPng is { } png
                ? Results.File(png, "image/png", download is not null ? "grid.png" : null)
                : ApiError.NotFound($"Job {id} has no grid yet: it is made when the last image is done.");
        });

        app.MapGet("/api/runs", (RunMonitor runs) => Results.Json(runs.Versions(), ServeJson.Options));
        app.MapGet("/api/runs/events", (HttpContext http, RunMonitor runs, EventStream events) =>
            events.Run(http, runs.Changed, runs.Versions, () => false, "runs"));
        app.MapGet("/api/runs/{index:int}", (int index, RunMonitor runs) =>
            Run(runs, index) is { } run ? Results.Json(run.Snapshot(), ServeJson.Options) : UnknownRun(index, runs));
        app.MapGet("/api/runs/{index:int}/grid.png", (int index, RunMonitor runs) =>
        {
            if (Run(runs, index) is not { } run) return UnknownRun(index, runs);
            return run.GridPng() is { } png ? Results.File(png, "image/png") : ApiError.NotFound($"Run {run.Run.Name} has no sample grid yet.");
        });
    }

    static IResult Page(string name, string contentType)
    {
        var file = ServeApp.PageFiles.GetFileInfo(name);
        return file.Exists ? Results.Stream(file.CreateReadStream(), contentType) : Results.NotFound();
    }

    static object Info(ServeOptions options, GenerationQueue queue, RunMonitor runs)
    {
        object? generator = null;
        if (queue.HasSource)
        {
            var current = queue.Current(out var notReady);
            var m = current?.Model;
            generator = new
            {
                ready = m is not null,
                notReady,
                from = current?.CliFrom,
                path = current?.Origin.Path,
                kind = current?.Origin.Kind,
                step = m?.TrainedSteps,
                method = m?.Method,
                channels = m?.ImageChannels,
                width = m?.ImageWidth,
                height = m?.ImageHeight,
                classes = m is null ? null : Enumerable.Range(0, m.NumberOfClasses)
                    .Select(c => new { index = c, name = m.ClassNames is { } n && c < n.Count ? n[c] : "class " + c }).ToArray(),
                defaults = new { perClass = 4, seed = 0, steps = 18, solver = "Heun", guidance = 1.5 },
            };
        }
        return new
        {
            version = ServeApp.Version,
            generator,
            limits = options.Limits,
            runs = runs.Runs.Select(r => new { index = r.Index, name = r.Run.Name }).ToArray(),
        };
    }

    static async Task<IResult> SubmitAsync(HttpContext http, GenerationQueue queue)
    {
        if (!(http.Request.ContentType ?? "").StartsWith("application/json", StringComparison.OrdinalIgnoreCase))
            return ApiError.Unsupported("Send the generation request as JSON (Content-Type: application/json).");
        if (http.Request.ContentLength > ServeApp.MaxRequestBodyBytes)
            return ApiError.TooLarge($"The request is larger than {ServeApp.MaxRequestBodyBytes} bytes.");
        // Read at most the limit (also where the server itself does not bound the body, as on a test server).
        var body = new MemoryStream();
        var buffer = new byte[4096];
        int read;
        while ((read = await http.Request.Body.ReadAsync(buffer, http.RequestAborted)) > 0)
        {
            body.Write(buffer, 0, read);
            if (body.Length > ServeApp.MaxRequestBodyBytes)
                return ApiError.TooLarge($"The request is larger than {ServeApp.MaxRequestBodyBytes} bytes.");
        }
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(body.ToArray());
        }
        catch (JsonException)
        {
            return ApiError.BadRequest("The request is not valid JSON: send the generation settings as a JSON object.");
        }
        GenerationRequest? request;
        using (document)
        {
            if (document.RootElement.ValueKind == JsonValueKind.Null)
                return ApiError.BadRequest("The request is empty: send the generation settings as a JSON object.");
            if (document.RootElement.ValueKind != JsonValueKind.Object)
                return ApiError.BadRequest("The request is not a JSON object of generation settings.");
            try
            {
                request = document.RootElement.Deserialize<GenerationRequest>(ServeJson.Options)!;
            }
            catch (JsonException e)
            {
                var field = e.Path is { Length: > 2 } path ? path.TrimStart('$', '.').Split('.', '[')[0] : "";
                return ApiError.BadRequest($"{field}: {ExpectedOf(field)}", field.Length > 0 ? field : null);
            }
        }

        var generator = queue.Current(out var notReady);
        if (generator is null) return ApiError.Conflict(notReady ?? "There is no model to generate from.");
        try
        {
            var job = queue.Submit(request, generator);
            return Results.Json(job.Snapshot(queue.PositionOf(job)), ServeJson.Options, statusCode: StatusCodes.Status202Accepted);
        }
        catch (GenerationRequestException e)
        {
            return ApiError.BadRequest(e.Message, e.Field);
        }
        catch (QueueFullException e)
        {
            return ApiError.TooMany(e.Message);
        }
    }

    static string ExpectedOf(string field) => field.ToLowerInvariant() switch
    {
        "classes" => "expected a list of class indices, e.g. [0, 7].",
        "perclass" => "expected a whole number of images per class.",
        "seed" => "expected a whole number.",
        "steps" => "expected a whole number of sampler steps.",
        "guidance" => "expected a number (1: no guidance).",
        "solver" => "expected \"Heun\" or \"Euler\".",
        _ => "this value is not of the expected type.",
    };

    static RunWatcher? Run(RunMonitor runs, int index) => index >= 0 && index < runs.Runs.Count ? runs.Runs[index] : null;

    static IResult UnknownJob(string id) =>
        ApiError.NotFound($"There is no job '{(id.Length > 40 ? id[..40] + "…" : id)}': it never existed or was dropped to make room for newer ones.");

    static IResult UnknownRun(int index, RunMonitor runs) =>
        ApiError.NotFound($"There is no run {index}: this server shows {runs.Runs.Count} run(s), numbered from 0.");
}
