using System.Text.Json;

namespace Rollout.Cli.Tests;

public sealed class ValidateCommandTests
{
    [Theory]
    [InlineData("orders.rollout.json", "orders-v2")]
    [InlineData("customer-profiles.rollout.json", "profiles-docstore")]
    public async Task Valid_sample_exits_zero_and_names_the_feature(string sample, string feature)
    {
        var (code, output, _) = await CliRunner.RunAsync("validate", CliRunner.Sample(sample));

        Assert.Equal(0, code);
        Assert.Contains("valid", output, StringComparison.Ordinal);
        Assert.Contains(feature, output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Invalid_spec_exits_one_and_prints_every_problem_with_path_and_fix()
    {
        var spec = CliRunner.TempSpec(File.ReadAllText(CliRunner.Sample("orders.rollout.json"))
            .Replace("\"dbo.Orders\"", "\"dbo.Orders; DROP TABLE x\"", StringComparison.Ordinal)
            .Replace("\"exposure\": 25", "\"exposure\": 250", StringComparison.Ordinal)
            .Replace("\"bake\": \"PT1H\"", "\"bake\": \"1 hour\"", StringComparison.Ordinal));

        var (code, output, _) = await CliRunner.RunAsync("validate", spec);

        Assert.Equal(1, code);
        Assert.Contains("$.source.table", output, StringComparison.Ordinal);
        Assert.Contains("$.phases[2].exposure", output, StringComparison.Ordinal);
        Assert.Contains("$.phases[2].bake", output, StringComparison.Ordinal);
        Assert.Contains("$.phases[3].bake", output, StringComparison.Ordinal);
        Assert.Contains("fix:", output, StringComparison.Ordinal);
        Assert.Contains("4 problem(s)", output, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Json_output_lists_problems_for_scripts()
    {
        var spec = CliRunner.TempSpec("""{ "feature": "x", "sorce": {} }""");

        var (code, output, _) = await CliRunner.RunAsync("validate", spec, "--json");

        Assert.Equal(1, code);
        using var document = JsonDocument.Parse(output);
        Assert.False(document.RootElement.GetProperty("valid").GetBoolean());
        var paths = document.RootElement.GetProperty("problems").EnumerateArray().Select(p => p.GetProperty("path").GetString()).ToArray();
        Assert.Contains("$.sorce", paths);
        Assert.Contains("$.source", paths);
    }

    [Fact]
    public async Task Json_output_is_one_document_even_when_a_value_is_wider_than_the_console()
    {
        var folder = Path.Combine(Path.GetTempPath(), "rollout-validate-" + new string('x', 120), Guid.NewGuid().ToString("N") + new string('y', 120));
        Directory.CreateDirectory(folder);
        var spec = Path.Combine(folder, "orders.rollout.json");
        File.Copy(CliRunner.Sample("orders.rollout.json"), spec);
        try
        {
            var (code, output, _) = await CliRunner.RunAsync("validate", spec, "--json");

            Assert.Equal(0, code);
            using var document = JsonDocument.Parse(output);
            Assert.Equal(spec, document.RootElement.GetProperty("file").GetString());
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [Fact]
    public async Task Malformed_json_gives_line_and_column_and_no_stack_trace()
    {
        var spec = CliRunner.TempSpec("{\n  \"feature\": \"x\"\n  \"source\": {}\n}");

        var (code, output, error) = await CliRunner.RunAsync("validate", spec);

        Assert.Equal(1, code);
        Assert.Contains("line 3", output, StringComparison.Ordinal);
        Assert.DoesNotContain("Exception", output + error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Missing_file_exits_two_with_a_hint()
    {
        var (code, _, error) = await CliRunner.RunAsync("validate", "no/such/spec.rollout.json");

        Assert.Equal(2, code);
        Assert.Contains("not found", error, StringComparison.Ordinal);
        Assert.Contains("samples/orders.rollout.json", error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Missing_argument_is_a_usage_error()
    {
        var (code, output, error) = await CliRunner.RunAsync("validate");

        Assert.NotEqual(0, code);
        Assert.Contains("Required argument missing", output + error, StringComparison.Ordinal);
    }
}
