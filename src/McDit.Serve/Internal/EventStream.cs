using System.Text.Json;
using Microsoft.AspNetCore.Http;

namespace McDit.Serve.Internal;

/// <summary>
/// Server-sent events (text/event-stream) written by hand: one JSON object per event, a comment line as keep-alive,
/// and a cap on the number of streams open at once.
/// </summary>
internal sealed class EventStream
{
    private readonly int _max;
    private int _open;

    public EventStream(int maxStreams) => _max = maxStreams;

    /// <summary>Streams open now.</summary>
    public int Open => Volatile.Read(ref _open);

    /// <summary>
    /// Sends <paramref name="snapshot"/>'s value after every change of <paramref name="signal"/> until <paramref name="done"/>
    /// says the last one was sent or the client goes away.
    /// </summary>
    public async Task<IResult> Run(HttpContext http, ChangeSignal signal, Func<object> snapshot, Func<bool> done, string eventName)
    {
        if (Interlocked.Increment(ref _open) > _max)
        {
            Interlocked.Decrement(ref _open);
            return ApiError.TooMany($"Too many pages are open ({_max} event streams); close one and reload.");
        }
        try
        {
            var response = http.Response;
            response.Headers.ContentType = "text/event-stream";
            response.Headers.CacheControl = "no-cache";
            response.Headers["X-Accel-Buffering"] = "no";
            var cancel = http.RequestAborted;
            long version = -1;
            while (!cancel.IsCancellationRequested)
            {
                long now = await signal.WaitAsync(version, TimeSpan.FromSeconds(15), cancel).ConfigureAwait(false);
                if (now == version)
                {
                    await response.WriteAsync(": keep-alive\n\n", cancel).ConfigureAwait(false);
                }
                else
                {
                    version = now;
                    bool last = done();
                    var json = JsonSerializer.Serialize(snapshot(), ServeJson.Options);
                    await response.WriteAsync($"event: {eventName}\ndata: {json}\n\n", cancel).ConfigureAwait(false);
                    if (last) break;
                }
                await response.Body.FlushAsync(cancel).ConfigureAwait(false);
            }
            await response.Body.FlushAsync(CancellationToken.None).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            // The page closed.
        }
        finally
        {
            Interlocked.Decrement(ref _open);
        }
        return Results.Empty;
    }
}
