namespace McDit.Serve;

/// <summary>
/// A training run folder the page shows: where its files are. Files that do not exist yet (a run that has not started,
/// no evaluation yet) are waited for; lines are read as they are appended.
/// </summary>
/// <param name="Name">Shown on the page (the folder's name).</param>
/// <param name="Folder">The run folder.</param>
/// <param name="SettingsFile">run.json: the run's settings.</param>
/// <param name="MetricsFile">metrics.jsonl: one JSON object per step (step, stage, loss, learning_rate, elapsed_seconds, …).</param>
/// <param name="EvaluationsFile">evaluations.jsonl: one JSON object per evaluation (step, frechet_distance, and accuracy fields when present).</param>
/// <param name="SamplesFolder">samples/: step-NNNNNNN.png grids and final.png.</param>
public sealed record ServedRun(string Name, string Folder, string SettingsFile, string MetricsFile, string EvaluationsFile, string SamplesFolder);
