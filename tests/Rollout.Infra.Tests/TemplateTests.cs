using System.Text.Json.Nodes;

namespace Rollout.Infra.Tests;

/// <summary>Assertions on the compiled ARM JSON of main.bicep (with its modules): resources, identity, settings.</summary>
[Collection(InfraCollection.Name)]
public sealed class TemplateTests(InfraFixture infra)
{
    private ArmTemplate Main => infra.Main;

    [Theory]
    [InlineData("Microsoft.ManagedIdentity/userAssignedIdentities")]
    [InlineData("Microsoft.Storage/storageAccounts")]
    [InlineData("Microsoft.Storage/storageAccounts/blobServices/containers")]
    [InlineData("Microsoft.OperationalInsights/workspaces")]
    [InlineData("Microsoft.Insights/components")]
    [InlineData("Microsoft.DocumentDB/databaseAccounts")]
    [InlineData("Microsoft.DocumentDB/databaseAccounts/sqlDatabases")]
    [InlineData("Microsoft.DocumentDB/databaseAccounts/sqlRoleAssignments")]
    [InlineData("Microsoft.Sql/servers")]
    [InlineData("Microsoft.Sql/servers/databases")]
    [InlineData("Microsoft.Web/serverfarms")]
    [InlineData("Microsoft.Web/sites")]
    [InlineData("Microsoft.Insights/workbooks")]
    public void Main_deploys_the_resource(string type) => Main.OfType(type).ShouldNotBeEmpty();

    [Fact]
    public void Cosmos_has_the_target_container_with_its_partition_key_and_nothing_else()
    {
        var containers = Main.OfType("Microsoft.DocumentDB/databaseAccounts/sqlDatabases/containers")
            .Select(c => (Id: c.Resolved(c.Properties!["resource"]!["id"]), Key: c.Resolved(c.Properties!["resource"]!["partitionKey"]!["paths"]![0])))
            .ToList();
        containers.ShouldBe(
            [("[parameters('targetContainerName')]", "[parameters('targetPartitionKeyPath')]")],
            ignoreOrder: true);
        Param("cosmosTargetPartitionKeyPath")["defaultValue"]!.GetValue<string>().ShouldBe("/customerId");
    }

    [Fact]
    public void Three_scheduled_query_rules_alert_on_rollback_dead_letters_and_feed_lag()
    {
        var rules = Main.OfType("Microsoft.Insights/scheduledQueryRules").ToList();
        rules.Count.ShouldBe(3);
        var names = rules.Select(r => r.Node["name"]!.GetValue<string>()).ToList();
        names.ShouldContain(n => n.Contains("rollback", StringComparison.Ordinal));
        names.ShouldContain(n => n.Contains("dead-letters", StringComparison.Ordinal));
        names.ShouldContain(n => n.Contains("feed-lag", StringComparison.Ordinal));
        foreach (var rule in rules)
        {
            rule.Properties!["scopes"]![0]!.GetValue<string>().ShouldBe("[parameters('workspaceId')]");
            var criterion = rule.Properties!["criteria"]!["allOf"]![0]!;
            criterion["dimensions"]!.GetValue<string>().ShouldBe("[variables('featureDimension')]");
            rule.Template["variables"]!["featureDimension"]![0]!["name"]!.GetValue<string>().ShouldBe("feature");
        }
    }

    [Fact]
    public void Outputs_name_the_host_the_cosmos_endpoint_and_the_sql_server()
    {
        var outputs = Main.Root["outputs"]!.AsObject();
        outputs["functionAppHostName"]!["value"]!.GetValue<string>().ShouldContain("defaultHostName");
        outputs["cosmosEndpoint"]!["value"]!.GetValue<string>().ShouldContain("outputs.endpoint");
        outputs["sqlServerName"]!["value"]!.GetValue<string>().ShouldContain("outputs.serverName");
        Main.Module("cosmos")["outputs"]!["endpoint"]!["value"]!.GetValue<string>().ShouldContain("documentEndpoint");
    }

    [Fact]
    public void Flex_Consumption_with_dotnet_isolated_10_is_the_default_and_Premium_a_parameter()
    {
        Param("hostingPlan")["defaultValue"]!.GetValue<string>().ShouldBe("FlexConsumption");
        Param("hostingPlan")["allowedValues"]!.AsArray().Select(v => v!.GetValue<string>()).ShouldBe(["FlexConsumption", "Premium"]);
        Param("dotnetVersion")["defaultValue"]!.GetValue<string>().ShouldBe("10.0");
        var plan = Main.Single("Microsoft.Web/serverfarms");
        plan.Node["sku"]!.ToJsonString().ShouldContain("FlexConsumption");
        plan.Node["sku"]!.ToJsonString().ShouldContain("ElasticPremium");
        var site = Main.Single("Microsoft.Web/sites");
        var config = site.Properties!["functionAppConfig"]!.GetValue<string>();
        config.ShouldContain("'runtime', createObject('name', 'dotnet-isolated', 'version', parameters('dotnetVersion'))");
        config.ShouldContain("'UserAssignedIdentity'");
    }

    [Fact]
    public void The_app_runs_as_the_user_assigned_identity_only()
    {
        var site = Main.Single("Microsoft.Web/sites");
        site.Node["identity"]!["type"]!.GetValue<string>().ShouldBe("UserAssigned");
    }

    [Fact]
    public void Parameter_files_choose_the_environment_and_its_shape()
    {
        var dev = infra.Parameters["main.dev.bicepparam"];
        var prod = infra.Parameters["main.prod.bicepparam"];
        dev["environmentName"]!["value"]!.GetValue<string>().ShouldBe("dev");
        prod["environmentName"]!["value"]!.GetValue<string>().ShouldBe("prod");
        dev["cosmosServerless"]!["value"]!.GetValue<bool>().ShouldBeTrue();
        prod["cosmosServerless"]!["value"]!.GetValue<bool>().ShouldBeFalse();
        foreach (var parameters in new[] { dev, prod })
        {
            parameters["hostingPlan"]!["value"]!.GetValue<string>().ShouldBeOneOf("FlexConsumption", "Premium");
            parameters.ContainsKey("sqlEntraAdminObjectId").ShouldBeTrue();
        }
    }

    private JsonObject Param(string name) => Main.Root["parameters"]![name]!.AsObject();
}
