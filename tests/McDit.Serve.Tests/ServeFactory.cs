using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.Extensions.Hosting;

namespace McDit.Serve.Tests;

/// <summary>
/// The serve app on a test server: the same services and middleware as <see cref="ServeHost"/> (AddMcDitServe,
/// UseMcDitServe), without Kestrel. The entry point is this test assembly's (McDit.Serve is a library).
/// </summary>
public sealed class ServeFactory(ServeOptions options) : WebApplicationFactory<ServeFactory>
{
    protected override IHostBuilder CreateHostBuilder() =>
        Host.CreateDefaultBuilder().ConfigureWebHost(web => web
            .UseContentRoot(AppContext.BaseDirectory)
            .ConfigureServices(services => services.AddMcDitServe(options))
            .Configure(app => app.UseMcDitServe()));

    // After the factory's own guess (a folder named after the test project beside McDit.sln, which is not where it is).
    protected override void ConfigureWebHost(IWebHostBuilder builder) => builder.UseContentRoot(AppContext.BaseDirectory);
}
