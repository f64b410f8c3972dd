using McDit.Cli.Runs;
using OpenQA.Selenium;
using Xunit;
using Xunit.Abstractions;

namespace McDit.Serve.Tests;

/// <summary>The page in headless Chromium against the real server (Kestrel on 127.0.0.1, a free port).</summary>
[Collection(TinyRunsCollection.Name)]
public sealed class BrowserTests(TinyRuns runs, ITestOutputHelper log)
{
    static readonly byte[] PngSignature = { 0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A };



    static async Task<ServeHost> Start(GeneratorSource? generator, params ServedRun[] served) =>
        await ServeHost.StartAsync(new ServeOptions
        {
            Port = 0, Generator = generator, Runs = served, RunPollInterval = TimeSpan.FromMilliseconds(200),
        });

    [BrowserFact]
    public async Task GeneratesTwoImagesThatAppearAndDownload()
    {
        await using var server = await Start(ServedModel.For(runs.McDiT.Path, "cpu"), ServedRuns.From(runs.McDiT, "mcdit"));
        using var browser = new Browser();
        var driver = browser.Driver;
        driver.Navigate().GoToUrl(server.Address);
        browser.Wait(d => d.FindElements(By.CssSelector("#classes input")).Count == 10, "the class list");
        Assert.Equal("Sneaker", driver.FindElements(By.CssSelector("#classes input"))[7].GetAttribute("data-name"));

        // A bad value is answered on the page, next to the field, not with a server error.
        driver.FindElement(By.Id("classes-none")).Click();
        driver.FindElement(By.Id("generate")).Click();
        var error = browser.Wait(d => d.FindElement(By.Id("generate-error")) is { Displayed: true } e ? e : null, "an error for no class")!;
        Assert.Contains("Pick at least one class", error.Text);

        // Trouser and Bag, one image each, two sampler steps.
        foreach (var c in new[] { 1, 8 }) driver.FindElements(By.CssSelector("#classes input"))[c].Click();
        Fill(driver, "per-class", "1");
        Fill(driver, "steps", "100000");
        driver.FindElement(By.Id("generate")).Click();
        browser.Wait(d => d.FindElement(By.Id("generate-error")).Text.Contains("Sampler steps 100000 is invalid"), "an error for too many steps");
        Assert.Contains("invalid", driver.FindElement(By.Id("steps")).GetAttribute("class") ?? "");
        Fill(driver, "steps", "2");
        Fill(driver, "seed", "11");
        driver.FindElement(By.Id("generate")).Click();

        browser.Wait(d => d.FindElement(By.Id("job-progress-text")).Text.StartsWith("2 images"), "the job to finish");
        Assert.False(driver.FindElement(By.Id("generate-error")).Displayed);
        var images = driver.FindElements(By.CssSelector("figure.generated img"));
        Assert.Equal(2, images.Count);
        browser.Wait(d => images.All(i => (long)((IJavaScriptExecutor)d).ExecuteScript("return arguments[0].naturalWidth", i)! == 28), "both images to load");
        Assert.Equal(new[] { "Trouser", "Bag" }, driver.FindElements(By.CssSelector(".image-row .row-label")).Select(e => e.Text));
        Assert.Contains("--classes 1,8 --per-class 1 --seed 11 --steps 2", driver.FindElement(By.Id("repro-cli")).Text);
        Assert.Contains("ml.Model.Load(", driver.FindElement(By.Id("repro-csharp")).Text);
        Assert.False(driver.FindElement(By.Id("training-view")).Displayed, "one view at a time");

        // Downloads: the first image and the grid land in the download folder as PNG files.
        driver.FindElements(By.CssSelector("a.image-download"))[0].Click();
        driver.FindElement(By.Id("grid-download")).Click();
        foreach (var name in new[] { "trouser_000.png", "grid.png" })
        {
            var file = Path.Combine(browser.Downloads, name);
            browser.Wait(_ => File.Exists(file) && new FileInfo(file).Length > 8, $"the download of {name}", seconds: 30);
            Assert.Equal(PngSignature, File.ReadAllBytes(file).Take(8));
        }
        log.WriteLine("screenshot: " + browser.Screenshot("generate"));
    }

    [BrowserFact]
    public async Task TheTrainingViewUpdatesLiveAsTheRunAdvances()
    {
        var folder = new RunFolder(TinyRuns.TempFolder());
        try
        {
            TinyRuns.Train(folder.Path, "--method", "MaskDiT");
            // What `mcdit train --serve` starts beside the training.
            await using var server = McDit.Cli.Commands.ServeCommand.StartForTraining(folder, "cpu", "127.0.0.1", 0, TextWriter.Null, TextWriter.Null);
            using var browser = new Browser();
            var driver = browser.Driver;
            driver.Navigate().GoToUrl(new Uri(server.Address, "#training"));
            browser.Wait(d => d.FindElement(By.Id("run-status")).GetAttribute("data-step") == "2", "step 2 on the page");
            Assert.StartsWith("step 2 of 2", driver.FindElement(By.Id("run-status")).Text);
            Assert.False(driver.FindElement(By.Id("generate-view")).Displayed, "one view at a time");
            Assert.NotEmpty(driver.FindElements(By.CssSelector("#loss-chart svg path")));
            Assert.Contains("(final)", driver.FindElement(By.Id("run-grid-caption")).Text);
            var firstGrid = driver.FindElement(By.Id("run-grid")).GetAttribute("src");
            Assert.Contains(driver.FindElements(By.CssSelector("#run-settings td")), td => td.Text == "MaskDiT");

            // The run goes on (resumed to 5 steps) while the page stays open: it follows without a reload. The tiny
            // steps take milliseconds, so each is held for 3 s (what `mcdit train --resume` does, with the step pause
            // the kill-and-resume tests use): steps 3 and 4 then stay on disk for several of the server's 1 s looks
            // instead of racing them on a busy machine.
            var session = new TrainingSession(TextWriter.Null, interactive: false) { StepDelay = TimeSpan.FromSeconds(3) };
            var training = Task.Run(() => session.Resume(folder, steps: 5, device: null, CancellationToken.None));
            browser.Wait(d => d.FindElement(By.Id("run-status")).GetAttribute("data-step") is "3" or "4", "a step between 2 and 5 while training", seconds: 120);
            await training;
            browser.Wait(d => d.FindElement(By.Id("run-status")).GetAttribute("data-step") == "5", "step 5 on the page");
            browser.Wait(d => d.FindElement(By.Id("run-grid")).GetAttribute("src") != firstGrid, "the new final grid");
            browser.Wait(d => (long)((IJavaScriptExecutor)d).ExecuteScript("return document.getElementById('run-grid').naturalWidth")! > 0, "the grid image to load");
            Assert.StartsWith("step 5 of 5", driver.FindElement(By.Id("run-status")).Text);
            log.WriteLine("screenshot: " + browser.Screenshot("training"));
        }
        finally
        {
            TinyRuns.Delete(folder.Path);
        }
    }

    [BrowserFact]
    public async Task TheComparisonViewShowsEveryRunOfAFolder()
    {
        await using var server = await Start(null, ServedRuns.Find(new[] { runs.Root }).ToArray());
        using var browser = new Browser();
        var driver = browser.Driver;
        driver.Navigate().GoToUrl(server.Address);
        browser.Wait(d => d.FindElement(By.Id("compare-view")).Displayed, "the comparison view");
        browser.Wait(d => d.FindElements(By.CssSelector("#compare-table tr")).Count == 3, "a row per run");
        var rows = driver.FindElements(By.CssSelector("#compare-table tr")).Skip(1).Select(r => r.Text).ToList();
        Assert.Contains(rows, r => r.StartsWith("dit DiT Tiny/4 2"));
        Assert.Contains(rows, r => r.StartsWith("mcdit McDiT Tiny/4 2"));
        browser.Wait(d => d.FindElements(By.CssSelector("#compare-loss svg path")).Count >= 2, "a loss curve per run");
        browser.Wait(d => d.FindElements(By.CssSelector("#compare-grids img")).All(i => (long)((IJavaScriptExecutor)d).ExecuteScript("return arguments[0].naturalWidth", i)! > 0), "the runs' grids");
        Assert.False(driver.FindElement(By.Id("tab-generate")).Displayed, "no generation without --from");
        Assert.False(driver.FindElement(By.Id("generate-view")).Displayed);
        Assert.False(driver.FindElement(By.Id("training-view")).Displayed);
        log.WriteLine("screenshot: " + browser.Screenshot("compare"));
    }

    static void Fill(IWebDriver driver, string id, string value)
    {
        var input = driver.FindElement(By.Id(id));
        input.Clear();
        input.SendKeys(value);
    }
}
