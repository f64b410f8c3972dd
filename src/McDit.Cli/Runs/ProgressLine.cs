using System.Diagnostics;
using System.Globalization;

namespace McDit.Cli.Runs;

/// <summary>
/// Progress of a long loop: step, loss, steps/s and ETA, redrawn in place on a terminal and printed every
/// few percent when the output is redirected (CI logs, files).
/// </summary>
public sealed class ProgressLine
{
    private readonly TextWriter _out;
    private readonly long _total;
    private readonly bool _interactive;
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private readonly long _startStep;
    private double _smoothedLoss = double.NaN;
    private long _lastPrinted = -1;
    private TimeSpan _lastDraw = TimeSpan.Zero;
    private readonly int _threads = TorchSharp.torch.get_num_threads();

    /// <summary>Starts reporting toward <paramref name="total"/> steps, counting from <paramref name="startStep"/>.</summary>
    public ProgressLine(TextWriter output, long total, long startStep, bool interactive)
    {
        _out = output; _total = total; _startStep = startStep; _interactive = interactive;
    }

    /// <summary>Steps per second since the start.</summary>
    public double StepsPerSecond(long step) => (step - _startStep) / Math.Max(_clock.Elapsed.TotalSeconds, 1e-9);

    /// <summary>Reports a finished step.</summary>
    public void Report(long step, double loss, string? note = null)
    {
        _smoothedLoss = double.IsNaN(_smoothedLoss) ? loss : 0.95 * _smoothedLoss + 0.05 * loss;
        double rate = StepsPerSecond(step);
        var eta = rate > 0 ? TimeSpan.FromSeconds((_total - step) / rate) : TimeSpan.Zero;
        int width = 24, filled = (int)(width * step / Math.Max(1, _total));
        var line = string.Create(CultureInfo.InvariantCulture,
            $"[{new string('#', filled)}{new string('.', width - filled)}] step {step}/{_total}  loss {_smoothedLoss:F4}  {rate:F2} steps/s  {_threads} thread{(_threads == 1 ? "" : "s")}  ETA {eta:hh\\:mm\\:ss}{(note is null ? "" : "  " + note)}");
        if (_interactive)
        {
            if (step != _total && _clock.Elapsed - _lastDraw < TimeSpan.FromMilliseconds(200)) return;
            _lastDraw = _clock.Elapsed;
            _out.Write("\r" + line.PadRight(100));
            if (step == _total) _out.WriteLine();
        }
        else
        {
            long every = Math.Max(1, _total / 20);
            if (step == _total || step - _lastPrinted >= every || _lastPrinted < 0)
            {
                _out.WriteLine(line);
                _lastPrinted = step;
            }
        }
    }

    /// <summary>Ends an in-place line before other output.</summary>
    public void Break()
    {
        if (_interactive) _out.WriteLine();
    }
}
