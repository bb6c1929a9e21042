using System.Text.Json.Nodes;
using Rollout.Core.Spec;

namespace Rollout.Core.Tests.Spec;

public sealed class RolloutSpecLoaderTests
{
    [Theory]
    [InlineData("orders.rollout.json")]
    [InlineData("customer-profiles.rollout.json")]
    public void Shipped_samples_are_valid(string sample)
    {
        var result = RolloutSpecLoader.Load(File.ReadAllText(SpecFixtures.SamplePath(sample)));

        Assert.True(result.IsValid, string.Join("\n", result.Problems));
        Assert.NotEmpty(result.Spec!.Phases);
    }

    [Fact]
    public void Minimal_spec_takes_documented_defaults_for_omitted_sections()
    {
        var spec = SpecFixtures.Spec();

        Assert.Equal(0.005, spec.Budgets.MaxErrorRateIncrease);
        Assert.Equal(500, spec.Budgets.MinSamples);
        Assert.Equal("PT5M", spec.Budgets.ExtendBakeBy);
        Assert.Equal("PT5M", spec.Reconciliation.Every);
        Assert.Equal(RepairMode.Auto, spec.Reconciliation.Repair);
        Assert.Equal("PT2S", spec.Gate.Timeout);
        Assert.Equal(TimeoutAction.Rollback, spec.Phases[1].Approval!.OnTimeout);
    }

    [Fact]
    public void Partly_given_section_keeps_defaults_for_the_rest()
    {
        var spec = SpecFixtures.Spec(n => n["budgets"] = new JsonObject { ["minSamples"] = 50 });

        Assert.Equal(50, spec.Budgets.MinSamples);
        Assert.Equal("PT1M", spec.Budgets.EvaluateEvery);
        Assert.Equal(250, spec.Budgets.MaxP95LatencyMs);
    }

    [Fact]
    public void Malformed_json_reports_line_and_column()
    {
        var result = RolloutSpecLoader.Load("{\n  \"feature\": \"x\",\n  \"source\": { \"table\": }\n}");

        var problem = Assert.Single(result.Problems);
        Assert.Equal("$", problem.Path);
        Assert.Contains("line 3, column", problem.Message, StringComparison.Ordinal);
        Assert.Null(result.Spec);
    }

    [Fact]
    public void Duplicate_property_is_reported()
    {
        var result = RolloutSpecLoader.Load("""{ "feature": "a", "feature": "b" }""");

        var problem = Assert.Single(result.Problems);
        Assert.Contains("Duplicate", problem.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Unknown_property_is_reported_with_a_suggestion()
    {
        var result = SpecFixtures.Load(n => n["budgets"] = new JsonObject { ["maxDriftRat"] = 0.1 });

        var problem = Assert.Single(result.Problems);
        Assert.Equal("$.budgets.maxDriftRat", problem.Path);
        Assert.Contains("maxDriftRate", problem.Hint, StringComparison.Ordinal);
    }

    [Fact]
    public void Unknown_property_in_a_mapping_rule_is_reported()
    {
        var result = SpecFixtures.Load(n => n["mapping"]!["total"]!["convrt"] = "centsToDecimal");

        var problem = Assert.Single(result.Problems);
        Assert.Equal("$.mapping.total.convrt", problem.Path);
        Assert.Contains("convert", problem.Hint, StringComparison.Ordinal);
    }

    [Fact]
    public void Missing_required_properties_are_each_reported()
    {
        var result = SpecFixtures.Load(n =>
        {
            n.Remove("source");
            n["target"]!.AsObject().Remove("partitionKey");
        });

        Assert.Contains(result.Problems, p => p.Path == "$.source" && p.Message.Contains("required", StringComparison.Ordinal));
        Assert.Contains(result.Problems, p => p.Path == "$.target.partitionKey");
    }

    [Theory]
    [InlineData("exposure", "\"5\"", "Expected a number")]
    [InlineData("bake", "10", "Expected a string")]
    [InlineData("reads", "\"sideways\"", "not one of legacy, shadow, live")]
    [InlineData("allowSkipBake", "\"yes\"", "Expected true or false")]
    public void Wrong_kind_of_value_is_reported_at_its_path(string property, string json, string expected)
    {
        var result = SpecFixtures.Load(n => n["phases"]![1]![property] = JsonNode.Parse(json));

        var problem = Assert.Single(result.Problems);
        Assert.Equal($"$.phases[1].{property}", problem.Path);
        Assert.Contains(expected, problem.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Shape_problems_and_rule_problems_come_in_one_report()
    {
        var result = SpecFixtures.Load(n =>
        {
            n["unexpected"] = 1;
            n["feature"] = "Orders V2";
            n["phases"]![0]!["bake"] = "10 minutes";
        });

        Assert.Equal(3, result.Problems.Count);
        Assert.Contains(result.Problems, p => p.Path == "$.unexpected");
        Assert.Contains(result.Problems, p => p.Path == "$.feature");
        Assert.Contains(result.Problems, p => p.Path == "$.phases[0].bake");
    }

    [Fact]
    public void Null_for_a_required_value_is_reported()
    {
        var result = SpecFixtures.Load(n => n["feature"] = null);

        Assert.Contains(result.Problems, p => p.Path == "$.feature" && p.Message.Contains("null", StringComparison.Ordinal));
    }

    [Fact]
    public void Round_trip_through_the_source_generated_context_keeps_the_spec()
    {
        var spec = RolloutSpecLoader.Load(File.ReadAllText(SpecFixtures.SamplePath("customer-profiles.rollout.json"))).Spec!;

        var json = System.Text.Json.JsonSerializer.Serialize(spec, RolloutSpecJsonContext.Default.RolloutSpec);
        var again = RolloutSpecLoader.Load(json);

        Assert.True(again.IsValid, string.Join("\n", again.Problems));
        Assert.Equal(spec.Phases, again.Spec!.Phases);
        Assert.Equal(spec.Mapping.Keys.Order(StringComparer.Ordinal), again.Spec.Mapping.Keys.Order(StringComparer.Ordinal));
        Assert.Equal(spec.Mapping["id"], again.Spec.Mapping["id"]);
    }
}
