using McDit.MLNet.Trainers;
using Microsoft.ML;
using Xunit;
using static McDit.MLNet.Tests.Trainers.McDitTestData;

namespace McDit.MLNet.Tests.Trainers;

/// <summary>Bad input fails before any training step, with a message naming the column or value and what was expected.</summary>
public class McDitTrainerInputTests
{
    static TException FitFails<TException>(Func<MLContext, IDataView> data, Action<McDitTrainer.Options>? configure = null)
        where TException : Exception
    {
        var ml = new MLContext(seed: 1);
        var steps = new List<string>();
        ml.Log += (_, e) => { if (e.Message.Contains("McDit: step")) lock (steps) steps.Add(e.Message); };
        var options = Options(steps: 2);
        configure?.Invoke(options);
        var view = data(ml);
        var e = Assert.Throws<TException>(() => ml.McDit().Trainers.DiffusionTransformer(options).Fit(view));
        Assert.Empty(steps);
        return e;
    }

    static IDataView WithImage(MLContext ml, int bad, Func<float[], float[]> edit)
    {
        var random = new Random(1);
        return ml.Data.LoadFromEnumerable(Enumerable.Range(0, 10).Select(i => new KeyRow
        {
            Image = i == bad ? edit(Pattern(0, random)) : Pattern(i % Classes, random),
            Label = 1,
        }).ToList());
    }

    [Fact]
    public void MissingImageColumn()
    {
        var e = FitFails<ArgumentOutOfRangeException>(KeyDataDefault, o => o.ImageColumnName = "Pixels");
        Assert.Contains("Image column 'Pixels' was not found", e.Message);
        Assert.Contains("'Image'", e.Message); // lists what the data has
    }

    [Fact]
    public void MissingLabelColumn()
    {
        var e = FitFails<ArgumentOutOfRangeException>(KeyDataDefault, o => o.LabelColumnName = "Category");
        Assert.Contains("Label column 'Category' was not found", e.Message);
        Assert.Contains("null", e.Message); // says how to train unconditionally
    }

    [Fact]
    public void WrongVectorSize()
    {
        var e = FitFails<ArgumentOutOfRangeException>(KeyDataDefault, o => (o.Channels, o.Height, o.Width) = (1, 4, 4));
        Assert.Contains("Image column 'Image' has vectors of 64 values; expected C·H·W = 1·4·4 = 16", e.Message);
    }

    [Fact]
    public void NonSquareOrUnpatchableImages()
    {
        var e = FitFails<ArgumentOutOfRangeException>(KeyDataDefault, o => (o.Channels, o.Height, o.Width) = (1, 4, 16));
        Assert.Contains("square", e.Message);
        var p = FitFails<ArgumentOutOfRangeException>(KeyDataDefault, o => o.ModelConfig = TinyNetwork with { PatchSize = 3 });
        Assert.Contains("patch size 3", p.Message);
    }

    [Fact]
    public void LabelOutOfRange()
    {
        var e = FitFails<InvalidOperationException>(ml => IntData(ml, label: i => i == 7 ? 5 : i % Classes), o => o.NumberOfClasses = Classes);
        Assert.Contains("Label column 'Label', row 7: class 5 is out of range; expected a class in 0..2", e.Message);
        var negative = FitFails<InvalidOperationException>(ml => IntData(ml, label: i => i == 2 ? -1 : 0), o => o.NumberOfClasses = Classes);
        Assert.Contains("row 2: class -1", negative.Message);
    }

    [Fact]
    public void MissingKeyLabel()
    {
        var e = FitFails<InvalidOperationException>(ml => ml.Data.LoadFromEnumerable(new[]
        {
            new KeyRow { Image = new float[64], Label = 1 }, new KeyRow { Image = new float[64], Label = 7 }, // 7 ≥ 3 classes: stored as key 0, missing
        }));
        Assert.Contains("Label column 'Label', row 1: the label is missing", e.Message);
        Assert.Contains("key values 1..3", e.Message);
    }

    [Fact]
    public void EmptyDataView()
    {
        var e = FitFails<InvalidOperationException>(ml => KeyData(ml, rows: 0));
        Assert.Contains("no rows", e.Message);
        Assert.Contains("'Image'", e.Message);
        var unchecked_ = FitFails<InvalidOperationException>(ml => KeyData(ml, rows: 0), o => o.ValidateDataBeforeTraining = false);
        Assert.Contains("no rows", unchecked_.Message);
    }

    [Fact]
    public void NaNPixels_FailBeforeTraining_EvenInTheLastRow()
    {
        var e = FitFails<InvalidOperationException>(ml => WithImage(ml, bad: 9, img => { img[10] = float.NaN; return img; }));
        Assert.Contains("Image column 'Image', row 9: value 10 (channel 0) is NaN; expected finite pixel values", e.Message);
    }

    [Fact]
    public void UnscaledPixels_AreRejectedWithAHint()
    {
        var e = FitFails<InvalidOperationException>(ml => WithImage(ml, bad: 3, img => img.Select(v => v * 255).ToArray()));
        Assert.Contains("Image column 'Image', row 3", e.Message);
        Assert.Contains("InputMinimum/InputMaximum", e.Message);
    }

    [Fact]
    public void WrongColumnTypes()
    {
        var ml = new MLContext();
        var text = ml.Data.LoadFromEnumerable(new[] { new TextRow { Image = "a", Label = "b" } });
        var image = Assert.Throws<ArgumentOutOfRangeException>(() => ml.McDit().Trainers.DiffusionTransformer(Options()).Fit(text));
        Assert.Contains("Image column 'Image' has type String", image.Message);
        var options = Options();
        options.ImageColumnName = "Pixels";
        var data = ml.Data.LoadFromEnumerable(new[] { new TextLabelRow { Pixels = new float[64], Label = "b" } });
        var label = Assert.Throws<ArgumentOutOfRangeException>(() => ml.McDit().Trainers.DiffusionTransformer(options).Fit(data));
        Assert.Contains("Label column 'Label' has type String", label.Message);
    }

    [Fact]
    public void BadOptions_FailWhenTheTrainerIsMade()
    {
        var ml = new MLContext();
        var o = Options();
        o.BatchSize = 0;
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => ml.McDit().Trainers.DiffusionTransformer(o));
        Assert.Contains("BatchSize", e.Message);
        Assert.Throws<ArgumentException>(() => ml.McDit().Trainers.DiffusionTransformer(model: "Huge/2"));
    }

    static IDataView KeyDataDefault(MLContext ml) => KeyData(ml);

    public sealed class TextRow
    {
        public string Image { get; set; } = "";
        public string Label { get; set; } = "";
    }

    public sealed class TextLabelRow
    {
        [Microsoft.ML.Data.VectorType(1, Side, Side)] public float[] Pixels { get; set; } = Array.Empty<float>();
        public string Label { get; set; } = "";
    }
}
