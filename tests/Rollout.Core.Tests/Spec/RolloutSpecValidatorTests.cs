using System.Text.Json.Nodes;
using Rollout.Core.Spec;

namespace Rollout.Core.Tests.Spec;

public sealed class RolloutSpecValidatorTests
{
    public static TheoryData<string, string, string> Violations => new()
    {
        // rule, JSON path expected, fragment of the message
        { "feature-upper", "$.feature", "not a feature key" },
        { "feature-trailing-dash", "$.feature", "not a feature key" },
        { "table-injection", "$.source.table", "not a plain table name" },
        { "table-three-parts", "$.source.table", "not a plain table name" },
        { "table-bracketed", "$.source.table", "not a plain table name" },
        { "key-empty", "$.source.key", "No key column" },
        { "key-injection", "$.source.key[0]", "not a plain column name" },
        { "key-duplicate", "$.source.key[1]", "listed twice" },
        { "container", "$.target.container", "not a container name" },
        { "partition-path", "$.target.partitionKey", "not a partition key path" },
        { "mapping-no-id", "$.mapping", "no \"id\"" },
        { "mapping-no-partition", "$.mapping", "does not produce the partition key" },
        { "mapping-no-source", "$.mapping.total", "references no source column" },
        { "mapping-two-sources", "$.mapping.total", "more than one of" },
        { "mapping-from-injection", "$.mapping.total", "not a plain column name" },
        { "mapping-unknown-conversion", "$.mapping.total.convert", "Unknown conversion" },
        { "mapping-convert-without-from", "$.mapping.flag", "only applies to a value read with 'from'" },
        { "mapping-template-no-column", "$.mapping.id.template", "references no source column" },
        { "mapping-template-injection", "$.mapping.id.template", "not a plain column name" },
        { "mapping-bad-field", "$.mapping['total amount']", "not a field path" },
        { "mapping-leaf-and-parent", "$.mapping['total.cents']", "nested under 'total'" },
        { "mapping-const-id", "$.mapping.id", "constant" },
        { "phases-empty", "$.phases", "no phases" },
        { "phase-name", "$.phases[0].name", "not a phase name" },
        { "phase-duplicate-name", "$.phases[2].name", "already used" },
        { "exposure-negative", "$.phases[0].exposure", "outside 0..100" },
        { "exposure-over-100", "$.phases[2].exposure", "outside 0..100" },
        { "exposure-decimals", "$.phases[1].exposure", "more than three decimals" },
        { "exposure-decreasing", "$.phases[2].exposure", "lower than the previous" },
        { "live-at-zero", "$.phases[0].reads", "Live reads at 0%" },
        { "bake-not-duration", "$.phases[0].bake", "not an ISO-8601 duration" },
        { "bake-months", "$.phases[0].bake", "not an ISO-8601 duration" },
        { "approval-timeout-zero", "$.phases[1].approval.timeout", "is zero" },
        { "approval-timeout-bad", "$.phases[1].approval.timeout", "not an ISO-8601 duration" },
        { "budget-error-rate", "$.budgets.maxErrorRateIncrease", "not a fraction" },
        { "budget-drift", "$.budgets.maxDriftRate", "not a fraction" },
        { "budget-latency", "$.budgets.maxP95LatencyMs", "not a positive latency" },
        { "budget-latency-increase", "$.budgets.maxP95LatencyIncreaseMs", "not a non-negative latency" },
        { "budget-samples", "$.budgets.minSamples", "cannot support a verdict" },
        { "budget-extensions", "$.budgets.maxBakeExtensions", "negative" },
        { "budget-extend-by", "$.budgets.extendBakeBy", "not an ISO-8601 duration" },
        { "budget-evaluate-every", "$.budgets.evaluateEvery", "is zero" },
        { "reconcile-every", "$.reconciliation.every", "not an ISO-8601 duration" },
        { "reconcile-rate", "$.reconciliation.maxRowsPerSecond", "would never finish" },
        { "gate-timeout", "$.gate.timeout", "not an ISO-8601 duration" },
        { "gate-timeout-long", "$.gate.timeout", "longer than" },
        { "gate-ratio", "$.gate.shadowSampleRatio", "not a fraction" },
        { "salt-long", "$.salt", "longer than 128" },
    };

    [Theory]
    [MemberData(nameof(Violations))]
    public void Each_rule_reports_its_path_and_a_fix(string rule, string path, string message)
    {
        var result = SpecFixtures.Load(n => Break(n, rule));

        Assert.False(result.IsValid);
        var problem = Assert.Single(result.Problems, p => p.Path == path && p.Message.Contains(message, StringComparison.Ordinal));
        Assert.False(string.IsNullOrWhiteSpace(problem.Hint));
    }

    [Fact]
    public void Every_problem_is_reported_at_once()
    {
        var result = SpecFixtures.Load(n =>
        {
            Break(n, "feature-upper");
            Break(n, "table-injection");
            Break(n, "exposure-over-100");
            Break(n, "budget-drift");
            Break(n, "gate-ratio");
        });

        Assert.Equal(5, result.Problems.Count);
    }

    [Theory]
    [InlineData("dbo.Orders")]
    [InlineData("Orders")]
    [InlineData("_staging.Order_2024")]
    public void Plain_table_names_pass(string table)
    {
        var result = SpecFixtures.Load(n => n["source"]!["table"] = table);

        Assert.True(result.IsValid, string.Join("\n", result.Problems));
    }

    [Fact]
    public void Exposure_may_repeat_and_use_three_decimals()
    {
        var result = SpecFixtures.Load(n =>
        {
            n["phases"]![1]!["exposure"] = 0.125m;
            n["phases"]!.AsArray().Insert(2, new JsonObject { ["name"] = "hold", ["exposure"] = 0.125m, ["bake"] = "PT0S" });
        });

        Assert.True(result.IsValid, string.Join("\n", result.Problems));
    }

    private static void Break(JsonObject n, string rule)
    {
        var mapping = n["mapping"]!.AsObject();
        var phases = n["phases"]!.AsArray();
        switch (rule)
        {
            case "feature-upper": n["feature"] = "Orders V2"; break;
            case "feature-trailing-dash": n["feature"] = "orders-"; break;
            case "table-injection": n["source"]!["table"] = "dbo.Orders; DROP TABLE dbo.Orders--"; break;
            case "table-three-parts": n["source"]!["table"] = "db.dbo.Orders"; break;
            case "table-bracketed": n["source"]!["table"] = "[dbo].[Orders]"; break;
            case "key-empty": n["source"]!["key"] = new JsonArray(); break;
            case "key-injection": n["source"]!["key"] = new JsonArray("Order Id"); break;
            case "key-duplicate": n["source"]!["key"] = new JsonArray("OrderId", "orderid"); break;
            case "container": n["target"]!["container"] = "orders/v2"; break;
            case "partition-path": n["target"]!["partitionKey"] = "customerId"; break;
            case "mapping-no-id": mapping.Remove("id"); break;
            case "mapping-no-partition": mapping.Remove("customerId"); break;
            case "mapping-no-source": mapping["total"] = new JsonObject { ["convert"] = "decimal" }; break;
            case "mapping-two-sources": mapping["total"] = new JsonObject { ["from"] = "TotalCents", ["const"] = 1 }; break;
            case "mapping-from-injection": mapping["total"] = "TotalCents) --"; break;
            case "mapping-unknown-conversion": mapping["total"]!["convert"] = "cents"; break;
            case "mapping-convert-without-from": mapping["flag"] = new JsonObject { ["const"] = true, ["convert"] = "boolean" }; break;
            case "mapping-template-no-column": mapping["id"] = new JsonObject { ["template"] = "fixed" }; break;
            case "mapping-template-injection": mapping["id"] = new JsonObject { ["template"] = "{Order Id}" }; break;
            case "mapping-bad-field": mapping["total amount"] = "TotalCents"; break;
            case "mapping-leaf-and-parent": mapping["total.cents"] = "TotalCents"; break;
            case "mapping-const-id": mapping["id"] = new JsonObject { ["const"] = "x" }; break;
            case "phases-empty": n["phases"] = new JsonArray(); break;
            case "phase-name": phases[0]!["name"] = "shadow phase"; break;
            case "phase-duplicate-name": phases[2]!["name"] = "SHADOW"; break;
            case "exposure-negative": phases[0]!["exposure"] = -1; break;
            case "exposure-over-100": phases[2]!["exposure"] = 120; break;
            case "exposure-decimals": phases[1]!["exposure"] = 1.0001m; break;
            case "exposure-decreasing": phases[2]!["exposure"] = 0.5m; break;
            case "live-at-zero": phases[0]!["reads"] = "live"; break;
            case "bake-not-duration": phases[0]!["bake"] = "10m"; break;
            case "bake-months": phases[0]!["bake"] = "P1M"; break;
            case "approval-timeout-zero": phases[1]!["approval"]!["timeout"] = "PT0S"; break;
            case "approval-timeout-bad": phases[1]!["approval"]!["timeout"] = "4 hours"; break;
            case "budget-error-rate": Budget(n)["maxErrorRateIncrease"] = 1.5; break;
            case "budget-drift": Budget(n)["maxDriftRate"] = -0.1; break;
            case "budget-latency": Budget(n)["maxP95LatencyMs"] = 0; break;
            case "budget-latency-increase": Budget(n)["maxP95LatencyIncreaseMs"] = -5; break;
            case "budget-samples": Budget(n)["minSamples"] = 0; break;
            case "budget-extensions": Budget(n)["maxBakeExtensions"] = -1; break;
            case "budget-extend-by": Budget(n)["extendBakeBy"] = "soon"; break;
            case "budget-evaluate-every": Budget(n)["evaluateEvery"] = "PT0S"; break;
            case "reconcile-every": n["reconciliation"] = new JsonObject { ["every"] = "5m" }; break;
            case "reconcile-rate": n["reconciliation"] = new JsonObject { ["maxRowsPerSecond"] = 0 }; break;
            case "gate-timeout": Gate(n)["timeout"] = "2s"; break;
            case "gate-timeout-long": Gate(n)["timeout"] = "PT1H"; break;
            case "gate-ratio": Gate(n)["shadowSampleRatio"] = 2; break;
            case "salt-long": n["salt"] = new string('s', 129); break;
            default: throw new ArgumentException(rule);
        }
    }

    private static JsonObject Budget(JsonObject n) => (n["budgets"] ??= new JsonObject()).AsObject();

    private static JsonObject Gate(JsonObject n) => (n["gate"] ??= new JsonObject()).AsObject();
}
