using System.Reflection;
using McDit.Serve.Generation;
using McDit.Serve.Internal;
using McDit.Serve.Training;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.HostFiltering;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.FileProviders;

namespace McDit.Serve;

/// <summary>
/// The web app of <c>mcdit serve</c> as services and middleware, so that it runs on Kestrel (<see cref="ServeHost"/>)
/// and on a test server alike. The page's HTML, script and style are embedded in this assembly; nothing is read from
/// a path a request names.
/// </summary>
public static class ServeApp
{
    /// <summary>Largest request body accepted (a generation request is a few hundred bytes).</summary>
    public const int MaxRequestBodyBytes = 16 * 1024;

    /// <summary>The page's files (index.html, app.js, app.css, chart.js), from this assembly's embedded resources.</summary>
    public static IFileProvider PageFiles { get; } = new ManifestEmbeddedFileProvider(typeof(ServeApp).Assembly, "wwwroot");

    /// <summary>Registers the generation queue, the run monitor and the options.</summary>
    public static IServiceCollection AddMcDitServe(this IServiceCollection services, ServeOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validated();
        services.AddSingleton(options);
        services.AddSingleton(_ => new GenerationQueue(options));
        services.AddSingleton(_ => new RunMonitor(options));
        services.AddSingleton(_ => new EventStream(options.Limits.MaxEventStreams));
        services.AddRouting();
        services.Configure<HostFilteringOptions>(filter =>
        {
            // On a loopback address only loopback names are answered: a web page elsewhere cannot reach the server
            // through a name of its own that resolves to 127.0.0.1 (DNS rebinding).
            filter.AllowedHosts = ServeHost.ParseHost(options.Host).IsLoopback ? new[] { "localhost", "127.0.0.1", "[::1]" } : new[] { "*" };
            filter.AllowEmptyHosts = false;
        });
        services.ConfigureHttpJsonOptions(json =>
        {
            foreach (var c in ServeJson.Options.Converters) json.SerializerOptions.Converters.Add(c);
        });
        return services;
    }

    /// <summary>Adds the page's middleware and endpoints.</summary>
    public static IApplicationBuilder UseMcDitServe(this IApplicationBuilder app)
    {
        app.UseHostFiltering();
        app.Use(async (http, next) =>
        {
            var headers = http.Response.Headers;
            // Everything comes from this server: no CDN, no inline script.
            headers.ContentSecurityPolicy = "default-src 'self'; img-src 'self' blob: data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'";
            headers.XContentTypeOptions = "nosniff";
            headers["Referrer-Policy"] = "no-referrer";
            headers.XFrameOptions = "DENY";
            await next(http);
        });
        app.UseExceptionHandler(new ExceptionHandlerOptions
        {
            ExceptionHandler = http =>
            {
                var error = http.Features.Get<Microsoft.AspNetCore.Diagnostics.IExceptionHandlerFeature>()?.Error;
                return ApiError.Json(StatusCodes.Status500InternalServerError, "The server failed: " + (error?.Message ?? "unknown error")).ExecuteAsync(http);
            },
        });
        app.UseStaticFiles(new StaticFileOptions
        {
            FileProvider = PageFiles,
            OnPrepareResponse = file => file.Context.Response.Headers.CacheControl = "no-cache",
        });
        app.UseRouting();
        app.UseEndpoints(endpoints => ServeEndpoints.Map(endpoints));
        return app;
    }

    /// <summary>The version of this assembly (shown on the page).</summary>
    internal static string Version =>
        typeof(ServeApp).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "?";
}
