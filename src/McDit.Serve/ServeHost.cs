using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace McDit.Serve;

/// <summary>The page served by Kestrel on <see cref="ServeOptions.Host"/>:<see cref="ServeOptions.Port"/> (127.0.0.1 unless told otherwise).</summary>
public sealed class ServeHost : IAsyncDisposable
{
    private readonly WebApplication _app;

    private ServeHost(WebApplication app, Uri address)
    {
        _app = app;
        Address = address;
    }

    /// <summary>The page's address, with the port actually bound.</summary>
    public Uri Address { get; }

    /// <summary>
    /// Starts serving. Writes a warning to <paramref name="warnings"/> when the address is not a loopback one.
    /// </summary>
    /// <exception cref="ArgumentException">A bad host or port, or nothing to serve.</exception>
    /// <exception cref="IOException">The port is taken.</exception>
    public static async Task<ServeHost> StartAsync(ServeOptions options, TextWriter? warnings = null, CancellationToken cancel = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validated();
        var host = ParseHost(options.Host);
        if (Warning(options) is { } warning) warnings?.WriteLine(warning);

        // Slim: no appsettings from the working folder, no command-line configuration; only what is set here.
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = Array.Empty<string>(), ContentRootPath = AppContext.BaseDirectory, EnvironmentName = Environments.Production });
        builder.Logging.ClearProviders();
        builder.Logging.AddSimpleConsole().SetMinimumLevel(LogLevel.Warning);
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.AddServerHeader = false;
            kestrel.Limits.MaxRequestBodySize = ServeApp.MaxRequestBodyBytes;
            kestrel.Limits.MaxConcurrentConnections = 100;
            kestrel.Limits.MaxRequestHeadersTotalSize = 32 * 1024;
            if (host.Address is null) kestrel.ListenLocalhost(options.Port);
            else kestrel.Listen(host.Address, options.Port);
        });
        builder.Services.AddMcDitServe(options);
        var app = builder.Build();
        app.UseMcDitServe();
        try
        {
            await app.StartAsync(cancel).ConfigureAwait(false);
        }
        catch (IOException e)
        {
            await app.DisposeAsync().ConfigureAwait(false);
            throw new IOException($"Cannot serve on {options.Host}:{options.Port}: {e.Message} Choose another --port.", e);
        }
        var bound = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()?.Addresses.FirstOrDefault()
            ?? $"http://{options.Host}:{options.Port}";
        var address = new Uri(bound.Replace("://[::]", "://localhost").Replace("://0.0.0.0", "://localhost").TrimEnd('/') + "/");
        return new ServeHost(app, address);
    }

    /// <summary>Serves until <paramref name="cancel"/> fires, then stops.</summary>
    public async Task WaitAsync(CancellationToken cancel)
    {
        try
        {
            await Task.Delay(Timeout.Infinite, cancel).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }
    }

    /// <summary>Stops serving.</summary>
    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync(CancellationToken.None).ConfigureAwait(false);
        await _app.DisposeAsync().ConfigureAwait(false);
    }

    /// <summary>The warning for an address other machines can reach, or null for a loopback address.</summary>
    public static string? Warning(ServeOptions options) =>
        ParseHost(options.Host).IsLoopback ? null
            : $"Warning: --host {options.Host} is not a loopback address: anyone who can reach this machine on port {options.Port} can use the page and its model.";

    /// <summary>What <paramref name="host"/> means: an address (null for "localhost", every loopback address) and whether it is loopback.</summary>
    internal static (IPAddress? Address, bool IsLoopback) ParseHost(string host)
    {
        if (string.Equals(host, "localhost", StringComparison.OrdinalIgnoreCase)) return (null, true);
        if (!IPAddress.TryParse(host?.Trim('[', ']'), out var address))
            throw new ArgumentException($"--host '{host}' is invalid: expected localhost or an IP address (127.0.0.1, ::1; 0.0.0.0 for every interface).");
        return (address, IPAddress.IsLoopback(address));
    }
}
