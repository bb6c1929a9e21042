using Rollout.Cli.Run;
using Rollout.Core.Plan;

namespace Rollout.Cli.Tests;

/// <summary>`rollout report` on recorded runs (no rollout needed): which run it picks, and where it may write.</summary>
public sealed class ReportCommandTests : IDisposable
{
    private readonly string _root = Path.Combine(Path.GetTempPath(), "rollout-report-command", Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        try
        {
            Directory.Delete(_root, recursive: true);
        }
        catch (IOException)
        {
            // Best effort.
        }
    }

    [Fact]
    public async Task Without_a_feature_it_reports_the_run_that_ended_last_although_no_run_is_live()
    {
        var older = await RecordAsync(Path.Combine(_root, ".rollout", "older-feature"), "older-feature");
        var newer = await RecordAsync(Path.Combine(_root, ".rollout", "newer-feature"), "newer-feature");
        File.SetLastWriteTimeUtc(Path.Combine(older, RunRecord.FileName), DateTime.UtcNow.AddHours(-1));
        File.SetLastWriteTimeUtc(Path.Combine(newer, RunRecord.FileName), DateTime.UtcNow.AddMinutes(-1));

        var (code, output, error) = await CliRunner.RunProcessAsync(_root, "report");

        Assert.True(code == 0, output + error);
        Assert.Contains($"report: {Path.Combine(newer, "report.html")}", output, StringComparison.Ordinal);
        Assert.Contains("Rollout report: newer-feature", await File.ReadAllTextAsync(Path.Combine(newer, "report.html")), StringComparison.Ordinal);

        File.SetLastWriteTimeUtc(Path.Combine(older, RunRecord.FileName), DateTime.UtcNow);
        var json = await CliRunner.RunProcessAsync(_root, "report", "--json");
        Assert.True(json.ExitCode == 0, json.Error);
        Assert.Equal("older-feature", System.Text.Json.JsonDocument.Parse(json.Output).RootElement.GetProperty("feature").GetString());
    }

    [Fact]
    public async Task Without_a_feature_and_without_a_finished_run_it_says_how_to_get_one()
    {
        Directory.CreateDirectory(Path.Combine(_root, ".rollout", "never-ran"));

        var (code, _, error) = await CliRunner.RunProcessAsync(_root, "report");

        Assert.Equal(1, code);
        Assert.Contains("no finished run is recorded under", error, StringComparison.Ordinal);
        Assert.Contains("run 'rollout run <spec>' first", error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Out_in_a_missing_folder_creates_the_folder()
    {
        var data = await RecordAsync(Path.Combine(_root, "data"), "e2e-orders");
        var path = Path.Combine(_root, "reports", "2026", "run.html");

        var (code, output, error) = await CliRunner.RunAsync("report", "--data", data, "--out", path);

        Assert.True(code == 0, output + error);
        Assert.Contains("Rollout report: e2e-orders", await File.ReadAllTextAsync(path), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Out_where_no_file_can_be_written_is_one_clear_error_with_exit_1()
    {
        var data = await RecordAsync(Path.Combine(_root, "data"), "e2e-orders");
        var file = Path.Combine(_root, "a-file");
        await File.WriteAllTextAsync(file, "not a folder");

        var (code, output, error) = await CliRunner.RunAsync("report", "--data", data, "--out", Path.Combine(file, "report.html"));

        Assert.Equal(1, code);
        Assert.Contains($"error: cannot write the report to {Path.Combine(file, "report.html")}: ", error, StringComparison.Ordinal);
        Assert.Contains("pass --out a file in a folder you can write to", error, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", output + error, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("run", "--rows", "10")]
    [InlineData("init")]
    [InlineData("seed", "--rows", "10")]
    public async Task A_data_folder_that_cannot_be_created_is_one_clear_error_with_exit_1(params string[] command)
    {
        var file = Path.Combine(_root, "a-file");
        Directory.CreateDirectory(_root);
        await File.WriteAllTextAsync(file, "not a folder");
        var spec = CliRunner.TempSpec(RunCommandTests.Spec);
        try
        {
            var (code, output, error) = await CliRunner.RunAsync([command[0], spec, "--data", Path.Combine(file, "data"), .. command[1..]]);

            Assert.Equal(1, code);
            Assert.Contains($"error: cannot create the data folder {Path.Combine(file, "data")}: ", error, StringComparison.Ordinal);
            Assert.Contains("pass --data a folder you can write to", error, StringComparison.Ordinal);
            Assert.DoesNotContain("   at ", output + error, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(spec);
        }
    }

    private static async Task<string> RecordAsync(string folder, string feature)
    {
        Directory.CreateDirectory(folder);
        var started = new DateTimeOffset(2026, 12, 1, 10, 0, 0, TimeSpan.Zero);
        var record = new RunRecord(
            feature, "spec.rollout.json", started, started.AddSeconds(40), "completed", [], 60, 300, 9, [],
            [new TimelinePoint(started.AddSeconds(1), "shadow", 0, "shadow", 200, 0, 0, 0, 5, null, 0, 0)],
            [new RolloutJournalEntry(feature, started, "phase", "shadow", 0, "phase 'shadow' (1 of 1)", "test")],
            [], 100, 50, 0, 0, 500, true, "deep check: 500 keys compared, 0 differ");
        await record.SaveAsync(folder, default);
        return folder;
    }
}
