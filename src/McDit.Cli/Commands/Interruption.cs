using System.Runtime.InteropServices;

namespace McDit.Cli.Commands;

/// <summary>
/// Turns Ctrl+C (SIGINT) and SIGTERM into a cancellation the training loop checks between steps, so it can write a
/// checkpoint before exiting. A second Ctrl+C ends the process at once.
/// </summary>
internal sealed class Interruption : IDisposable
{
    private readonly CancellationTokenSource _source = new();
    private readonly PosixSignalRegistration? _sigterm;

    public CancellationToken Token => _source.Token;

    public Interruption()
    {
        Console.CancelKeyPress += OnCancelKeyPress;
        if (!OperatingSystem.IsWindows())
            _sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, context => { context.Cancel = true; _source.Cancel(); });
    }

    private void OnCancelKeyPress(object? sender, ConsoleCancelEventArgs e)
    {
        if (_source.IsCancellationRequested) return; // a second Ctrl+C ends the process
        e.Cancel = true;
        _source.Cancel();
    }

    public void Dispose()
    {
        Console.CancelKeyPress -= OnCancelKeyPress;
        _sigterm?.Dispose();
        _source.Dispose();
    }
}
