using McDit.MLNet.Evaluation;
using Microsoft.ML;

// In the global namespace, so top-level programs see the extension method without a using directive.
/// <summary>
/// TEMPORARY, until issue 10's <c>Evaluate(generated, real, generatedColumnName, realColumnName)</c> is on main: the same
/// call through today's <c>Evaluate(generated, reference, imageColumnName)</c>, by copying both columns to one name.
/// Once the catalog has that overload, C# picks it over this extension method and this file can be deleted (the README
/// test adds this file to the README example only while the overload is missing).
/// </summary>
static class EvaluateBridge
{
    public static FrechetDistanceMetrics Evaluate(this McDitCatalog catalog, IDataView generated, IDataView real,
        string generatedColumnName, string realColumnName)
    {
        const string column = "McDitEvaluatedImage";
        var ml = new MLContext();
        IDataView Copy(IDataView view, string source) => ml.Transforms.CopyColumns(column, source).Fit(view).Transform(view);
        return catalog.Evaluate(Copy(generated, generatedColumnName), Copy(real, realColumnName), column);
    }
}
