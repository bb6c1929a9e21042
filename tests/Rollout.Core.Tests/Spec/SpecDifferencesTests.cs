using System.Text.Json.Nodes;
using Rollout.Core.Spec;

namespace Rollout.Core.Tests.Spec;

public sealed class SpecDifferencesTests
{
    [Fact]
    public void The_same_data_path_with_other_phases_budgets_field_order_and_column_case_has_no_difference()
    {
        var other = SpecFixtures.Spec(n =>
        {
            n["phases"] = JsonNode.Parse("""[ { "name": "all", "exposure": 100, "bake": "PT1M" } ]""");
            n["budgets"] = JsonNode.Parse("""{ "minSamples": 10 }""");
            n["source"]!["key"] = JsonNode.Parse("""["orderid"]""");
            n["mapping"] = JsonNode.Parse("""
                {
                  "total": { "from": "totalcents", "convert": "centsToDecimal" },
                  "customerId": { "from": "CustomerId", "convert": "string" },
                  "id": { "from": "OrderId", "convert": "string" }
                }
                """);
        });

        Assert.Empty(SpecDifferences.DataPath(SpecFixtures.Spec(), other));
    }

    [Fact]
    public void Every_data_path_difference_is_named_with_both_values()
    {
        var other = SpecFixtures.Spec(n =>
        {
            n["feature"] = "orders-v3";
            n["salt"] = "pepper";
            n["source"]!["table"] = "dbo.OrdersArchive";
            n["target"]!["partitionKey"] = "/id";
            n["mapping"]!["total"] = JsonNode.Parse("""{ "from": "TotalCents", "convert": "string" }""");
            n["mapping"]!["note"] = JsonNode.Parse("""{ "const": 1 }""");
            n["mapping"]!.AsObject().Remove("customerId");
        });

        var differences = SpecDifferences.DataPath(SpecFixtures.Spec(), other);

        Assert.Equal(
            [
                new SpecDifference("$.feature", "\"orders-v2\"", "\"orders-v3\""),
                new SpecDifference("$.salt", "(none)", "\"pepper\""),
                new SpecDifference("$.source.table", "\"dbo.Orders\"", "\"dbo.OrdersArchive\""),
                new SpecDifference("$.target.partitionKey", "\"/customerId\"", "\"/id\""),
                new SpecDifference("$.mapping.customerId", """{"from":"CustomerId","convert":"string"}""", "(none)"),
                new SpecDifference("$.mapping.note", "(none)", """{"const":1}"""),
                new SpecDifference("$.mapping.total", """{"from":"TotalCents","convert":"centsToDecimal"}""", """{"from":"TotalCents","convert":"string"}"""),
            ],
            differences);
    }

    [Fact]
    public void Two_spellings_of_one_source_table_are_the_same_table_when_the_store_says_so()
    {
        var unqualified = SpecFixtures.Spec(n => n["source"]!["table"] = "ORDERS");
        static string DefaultSchema(string table) => table.Contains('.', StringComparison.Ordinal) ? table : "dbo." + table;

        Assert.Equal("$.source.table", Assert.Single(SpecDifferences.DataPath(SpecFixtures.Spec(), unqualified)).Path);
        Assert.Empty(SpecDifferences.DataPath(SpecFixtures.Spec(), unqualified, DefaultSchema));
        var other = SpecFixtures.Spec(n => n["source"]!["table"] = "sales.Orders");
        var difference = Assert.Single(SpecDifferences.DataPath(SpecFixtures.Spec(), other, DefaultSchema));
        Assert.Equal(("\"dbo.Orders\"", "\"sales.Orders\""), (difference.Served, difference.Other)); // as written, not as normalised
    }
}
