using System.Text.Json.Nodes;
using Rollout.Core.Spec;

namespace Rollout.Core.Tests;

/// <summary>A small valid spec that tests change one thing at a time.</summary>
internal static class SpecFixtures
{
    public const string MinimalJson = """
        {
          "feature": "orders-v2",
          "source": { "table": "dbo.Orders", "key": ["OrderId"] },
          "target": { "container": "orders", "partitionKey": "/customerId" },
          "mapping": {
            "id": { "from": "OrderId", "convert": "string" },
            "customerId": { "from": "CustomerId", "convert": "string" },
            "total": { "from": "TotalCents", "convert": "centsToDecimal" }
          },
          "phases": [
            { "name": "shadow", "exposure": 0, "bake": "PT10M" },
            { "name": "canary", "exposure": 1, "bake": "PT30M", "approval": { "timeout": "PT4H", "onTimeout": "rollback" } },
            { "name": "full", "exposure": 100, "bake": "PT1H" }
          ]
        }
        """;

    public static JsonObject Node() => JsonNode.Parse(MinimalJson)!.AsObject();

    public static RolloutSpec Spec() => Load(MinimalJson).Spec!;

    public static RolloutSpec Spec(Action<JsonObject> change)
    {
        var node = Node();
        change(node);
        var result = Load(node.ToJsonString());
        Assert.True(result.IsValid, string.Join("\n", result.Problems));
        return result.Spec!;
    }

    public static SpecLoadResult Load(string json) => RolloutSpecLoader.Load(json);

    public static SpecLoadResult Load(Action<JsonObject> change)
    {
        var node = Node();
        change(node);
        return Load(node.ToJsonString());
    }

    public static string SamplePath(string name) => Path.Combine(AppContext.BaseDirectory, "samples", name);
}
