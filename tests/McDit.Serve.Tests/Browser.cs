using OpenQA.Selenium;
using OpenQA.Selenium.Chrome;
using OpenQA.Selenium.Support.UI;
using Xunit;

namespace McDit.Serve.Tests;

/// <summary>
/// A test that drives Debian's headless Chromium through chromedriver. It is skipped only where Chromium is missing
/// and CI is not set; under CI (set by .ci/run, which installs chromium and chromium-driver) a missing browser fails.
/// </summary>
public sealed class BrowserFactAttribute : FactAttribute
{
    public BrowserFactAttribute()
    {
        if (Browser.Missing is { } why && string.IsNullOrEmpty(Environment.GetEnvironmentVariable("CI")))
            Skip = why + " (apt-get install chromium chromium-driver); CI installs them and runs this test.";
    }
}

/// <summary>Headless Chromium with a fresh profile and a download folder of its own.</summary>
public sealed class Browser : IDisposable
{
    public static string ChromiumPath => Environment.GetEnvironmentVariable("MCDIT_CHROMIUM") ?? "/usr/bin/chromium";
    public static string DriverPath => Environment.GetEnvironmentVariable("MCDIT_CHROMEDRIVER") ?? "/usr/bin/chromedriver";

    /// <summary>Why there is no browser, or null when there is one.</summary>
    public static string? Missing =>
        !File.Exists(ChromiumPath) ? $"{ChromiumPath} is missing" : !File.Exists(DriverPath) ? $"{DriverPath} is missing" : null;

    readonly string _profile = TinyRuns.TempFolder();

    public Browser()
    {
        if (Missing is { } why) throw new InvalidOperationException(why + ": install chromium and chromium-driver (apt-get install chromium chromium-driver).");
        Downloads = Path.Combine(_profile, "downloads");
        Directory.CreateDirectory(Downloads);
        var options = new ChromeOptions { BinaryLocation = ChromiumPath };
        options.AddArguments("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage", "--window-size=1400,1000", $"--user-data-dir={Path.Combine(_profile, "profile")}");
        options.AddUserProfilePreference("download.default_directory", Downloads);
        options.AddUserProfilePreference("download.prompt_for_download", false);
        var service = ChromeDriverService.CreateDefaultService(Path.GetDirectoryName(DriverPath)!, Path.GetFileName(DriverPath));
        service.HideCommandPromptWindow = true;
        service.SuppressInitialDiagnosticInformation = true;
        Driver = new ChromeDriver(service, options, TimeSpan.FromSeconds(120));
        Driver.Manage().Timeouts().PageLoad = TimeSpan.FromSeconds(60);
    }

    public ChromeDriver Driver { get; }
    public string Downloads { get; }

    /// <summary>Waits until <paramref name="condition"/> holds (up to <paramref name="seconds"/>), failing with <paramref name="what"/>.</summary>
    public T Wait<T>(Func<IWebDriver, T> condition, string what, int seconds = 120)
    {
        var wait = new WebDriverWait(Driver, TimeSpan.FromSeconds(seconds)) { PollingInterval = TimeSpan.FromMilliseconds(100), Message = what };
        wait.IgnoreExceptionTypes(typeof(NoSuchElementException), typeof(StaleElementReferenceException));
        return wait.Until(condition);
    }

    /// <summary>Saves a screenshot of the page as PNG to artifacts/screenshots/ in the repository (or $MCDIT_SCREENSHOTS).</summary>
    public string Screenshot(string name)
    {
        var folder = Environment.GetEnvironmentVariable("MCDIT_SCREENSHOTS") ?? Path.Combine(RepositoryRoot(), "artifacts", "screenshots");
        Directory.CreateDirectory(folder);
        var file = Path.Combine(folder, name + ".png");
        // The whole page, not only the window.
        var height = Convert.ToInt32(Driver.ExecuteScript("return Math.ceil(document.documentElement.scrollHeight)"));
        Driver.Manage().Window.Size = new System.Drawing.Size(1400, Math.Clamp(height + 140, 600, 4000));
        Thread.Sleep(300);
        Driver.GetScreenshot().SaveAsFile(file);
        return file;
    }

    static string RepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "McDit.sln"))) return dir.FullName;
        return Path.GetTempPath();
    }

    public void Dispose()
    {
        Driver.Quit();
        Driver.Dispose();
        try { Directory.Delete(_profile, recursive: true); } catch (IOException) { }
    }
}
