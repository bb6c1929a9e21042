using System.Text.Json.Nodes;

namespace Rollout.Infra.Tests;

/// <summary>No secret anywhere, least-privilege role assignments, TLS 1.2, HTTPS only, no FTP, Entra ID only.</summary>
[Collection(InfraCollection.Name)]
public sealed class SecurityTests(InfraFixture infra)
{
    // Built-in role definition ids (the same in every tenant).
    private const string StorageBlobDataOwner = "b7e6dc6d-f1e8-4753-8033-0f276bb0955b";
    private const string StorageQueueDataContributor = "974c5e8b-45b9-4653-ba55-5f855dd0fb88";
    private const string StorageTableDataContributor = "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3";
    private const string StorageBlobDataContributor = "ba92f5b4-2d11-453d-a403-e96b0029c9fe";
    private const string MonitoringMetricsPublisher = "3913510d-42f4-4e42-8a64-420c390055eb";
    private const string LogAnalyticsReader = "73c42c96-874c-492b-b04d-ab87d138a893";
    private const string CosmosBuiltInDataContributor = "00000000-0000-0000-0000-000000000002";

    private static readonly string[] SecretMarkers =
        ["AccountKey", "SharedAccessSignature", "SharedAccessKey", "Password", "Pwd=", "sig=", "Secret", "listKeys", "listConnectionStrings", "PrimaryKey", "MasterKey", "AccessKey"];

    private ArmTemplate Main => infra.Main;

    [Fact]
    public void No_app_setting_holds_a_key_a_password_or_a_sas()
    {
        var settings = AppSettings();
        settings.Count.ShouldBeGreaterThan(10);
        foreach (var (name, value) in settings)
        {
            foreach (var marker in SecretMarkers)
            {
                value.ShouldNotContain(marker, Case.Insensitive, $"app setting {name}");
            }
        }

        // A storage connection string (it would need a key) and the Azure Files content share (key only) are absent.
        settings.Keys.ShouldNotContain("AzureWebJobsStorage");
        settings.Keys.ShouldNotContain("WEBSITE_CONTENTAZUREFILECONNECTIONSTRING");
    }

    [Fact]
    public void Nothing_in_the_deployment_reads_a_key()
    {
        var json = Main.Root.ToJsonString();
        foreach (var function in new[] { "listKeys(", "listConnectionStrings(", "listAccountSas(", "listServiceSas(", "listCredentials(", "listSecrets(" })
        {
            json.ShouldNotContain(function, Case.Insensitive);
        }
    }

    [Fact]
    public void Storage_Cosmos_SQL_and_monitoring_are_reached_with_the_managed_identity()
    {
        var settings = AppSettings();
        settings["AzureWebJobsStorage__accountName"].ShouldBe("[parameters('storageAccountName')]");
        settings["AzureWebJobsStorage__credential"].ShouldBe("managedidentity");
        settings["AzureWebJobsStorage__clientId"].ShouldBe("[parameters('identityClientId')]");
        settings["Rollout__Cosmos__ManagedIdentityClientId"].ShouldBe("[parameters('identityClientId')]");
        settings["Rollout__AzureMonitor__ManagedIdentityClientId"].ShouldBe("[parameters('identityClientId')]");
        settings["Rollout__AzureMonitor__WorkspaceId"].ShouldBe("[parameters('workspaceCustomerId')]");
        Main.Module("monitoring")["outputs"]!["workspaceCustomerId"]!["value"]!.GetValue<string>().ShouldContain(".customerId");
        settings["APPLICATIONINSIGHTS_AUTHENTICATION_STRING"].ShouldContain("Authorization=AAD");
        var sql = settings["Rollout__SqlServer__ConnectionString"];
        sql.ShouldContain("Authentication=Active Directory Managed Identity");
        sql.ShouldContain("User Id={");
        sql.ShouldContain("Encrypt=True");
    }

    [Theory]
    [InlineData("RolloutChangeFeedSchedule")]
    [InlineData("RolloutReconcileSchedule")]
    [InlineData("RolloutHealthMonitorSchedule")]
    [InlineData("Rollout__Timers__ChangeFeedBudget")]
    [InlineData("Rollout__Timers__HealthWindow")]
    [InlineData("APPLICATIONINSIGHTS_CONNECTION_STRING")]
    [InlineData("Rollout__AzureMonitor__WorkspaceId")]
    [InlineData("Rollout__Cosmos__Endpoint")]
    [InlineData("Rollout__Cosmos__Database")]
    [InlineData("Rollout__Cosmos__Container")]
    [InlineData("Rollout__SqlServer__ConnectionString")]
    public void The_app_gets_every_setting_it_reads(string name) => AppSettings().Keys.ShouldContain(name);

    [Fact]
    public void Every_role_assignment_has_the_expected_role_at_the_narrowest_scope()
    {
        var assignments = Main.OfType("Microsoft.Authorization/roleAssignments")
            .Select(r => (Module: r.Module, Role: RoleId(r.Resolved(r.Properties!["roleDefinitionId"])), Scope: r.Resolved(r.Node["scope"])))
            .ToList();

        assignments.ShouldBe(
            [
                ("storage", StorageBlobDataOwner, "[resourceId('Microsoft.Storage/storageAccounts', parameters('name'))]"),
                ("storage", StorageQueueDataContributor, "[resourceId('Microsoft.Storage/storageAccounts', parameters('name'))]"),
                ("storage", StorageTableDataContributor, "[resourceId('Microsoft.Storage/storageAccounts', parameters('name'))]"),
                ("storage", StorageBlobDataContributor, "[resourceId('Microsoft.Storage/storageAccounts/blobServices/containers', parameters('name'), 'default', parameters('packageContainerName'))]"),
                ("monitoring", MonitoringMetricsPublisher, "[resourceId('Microsoft.Insights/components', parameters('appInsightsName'))]"),
                ("monitoring", MonitoringMetricsPublisher, "[resourceId('Microsoft.Insights/components', parameters('appInsightsName'))]"),
                ("monitoring", LogAnalyticsReader, "[resourceId('Microsoft.OperationalInsights/workspaces', parameters('workspaceName'))]"),
            ],
            ignoreOrder: true);

        foreach (var assignment in Main.OfType("Microsoft.Authorization/roleAssignments"))
        {
            assignment.Properties!["principalType"]!.GetValue<string>().ShouldBe("ServicePrincipal");
            var principal = assignment.Properties!["principalId"]!.GetValue<string>();
            if (principal.Contains("deployerPrincipalId", StringComparison.Ordinal))
            {
                assignment.Node["condition"]!.GetValue<string>().ShouldBe("[not(empty(parameters('deployerPrincipalId')))]");
                // Only a Premium deployment uploads the package itself: on Flex Consumption the deployer gets no blob role.
                Main.OfType("Microsoft.Resources/deployments").Single(r => r.Node["name"]!.GetValue<string>() == assignment.Module)
                    .Properties!["parameters"]!["deployerPrincipalId"]!.GetValue<string>()
                    .ShouldBe("[if(equals(parameters('hostingPlan'), 'Premium'), createObject('value', parameters('deployerPrincipalId')), createObject('value', ''))]");
            }
            else if (principal.Contains("telemetryPublisherPrincipalIds", StringComparison.Ordinal))
            {
                // Only the telemetry publishers a deployment names, only Monitoring Metrics Publisher on the component.
                assignment.Node["copy"]!["count"]!.GetValue<string>().ShouldBe("[length(parameters('telemetryPublisherPrincipalIds'))]");
                principal.ShouldBe("[parameters('telemetryPublisherPrincipalIds')[copyIndex()]]");
            }
            else
            {
                principal.ShouldContain("Microsoft.ManagedIdentity/userAssignedIdentities");
            }
        }
    }

    [Fact]
    public void Cosmos_data_access_is_the_built_in_data_contributor_on_the_account()
    {
        var assignment = Main.Single("Microsoft.DocumentDB/databaseAccounts/sqlRoleAssignments");
        assignment.Resolved(assignment.Properties!["roleDefinitionId"]).ShouldBe(
            $"[format('{{0}}/sqlRoleDefinitions/{{1}}', resourceId('Microsoft.DocumentDB/databaseAccounts', parameters('accountName')), '{CosmosBuiltInDataContributor}')]");
        assignment.Resolved(assignment.Properties!["scope"]).ShouldBe("[resourceId('Microsoft.DocumentDB/databaseAccounts', parameters('accountName'))]");
        assignment.Properties!["principalId"]!.GetValue<string>().ShouldContain("Microsoft.ManagedIdentity/userAssignedIdentities");
    }

    [Fact]
    public void The_function_app_is_https_only_with_tls_1_2_and_no_ftp_or_basic_publishing()
    {
        var site = Main.Single("Microsoft.Web/sites");
        site.Properties!["httpsOnly"]!.GetValue<string>().ShouldBe("[parameters('httpsOnly')]");
        var config = site.Properties!["siteConfig"]!;
        config["minTlsVersion"]!.GetValue<string>().ShouldBe("[parameters('minimumTlsVersion')]");
        config["scmMinTlsVersion"]!.GetValue<string>().ShouldBe("[parameters('minimumTlsVersion')]");
        config["ftpsState"]!.GetValue<string>().ShouldBe("[parameters('ftpsState')]");
        PassedThrough("functionapp", "httpsOnly", "minimumTlsVersion", "ftpsState");
        site.Properties!["publicNetworkAccess"]!.GetValue<string>().ShouldBe("[parameters('publicNetworkAccess')]");

        var policies = Main.OfType("Microsoft.Web/sites/basicPublishingCredentialsPolicies").ToList();
        policies.Select(p => p.Node["name"]!.GetValue<string>()).ShouldBe(
            ["[format('{0}/{1}', parameters('appName'), 'ftp')]", "[format('{0}/{1}', parameters('appName'), 'scm')]"], ignoreOrder: true);
        policies.ShouldAllBe(p => p.Properties!["allow"]!.GetValue<bool>() == false);
    }

    [Fact]
    public void Storage_takes_no_shared_key_and_only_tls_1_2_over_https()
    {
        var storage = Main.Single("Microsoft.Storage/storageAccounts").Properties!;
        storage["minimumTlsVersion"]!.GetValue<string>().ShouldBe("TLS1_2");
        storage["supportsHttpsTrafficOnly"]!.GetValue<bool>().ShouldBeTrue(); // not the httpsOnly parameter: tokens travel here
        storage["allowSharedKeyAccess"]!.GetValue<bool>().ShouldBeFalse();
        storage["allowBlobPublicAccess"]!.GetValue<bool>().ShouldBeFalse();
    }

    [Fact]
    public void Cosmos_disables_keys_and_requires_tls_1_2()
    {
        var cosmos = Main.Single("Microsoft.DocumentDB/databaseAccounts").Properties!;
        cosmos["disableLocalAuth"]!.GetValue<bool>().ShouldBeTrue();
        cosmos["disableKeyBasedMetadataWriteAccess"]!.GetValue<bool>().ShouldBeTrue();
        cosmos["minimalTlsVersion"]!.GetValue<string>().ShouldBe("Tls12");
    }

    [Fact]
    public void Sql_is_entra_id_only_with_no_sql_login_and_tls_1_2()
    {
        var server = Main.Single("Microsoft.Sql/servers").Properties!.AsObject();
        server["administrators"]!["azureADOnlyAuthentication"]!.GetValue<bool>().ShouldBeTrue();
        server["administrators"]!["administratorType"]!.GetValue<string>().ShouldBe("ActiveDirectory");
        server.ContainsKey("administratorLogin").ShouldBeFalse();
        server.ContainsKey("administratorLoginPassword").ShouldBeFalse();
        server["minimalTlsVersion"]!.GetValue<string>().ShouldBe("1.2"); // not the parameter: Encrypt=True cannot log in at 1.3
        Main.Single("Microsoft.Sql/servers/azureADOnlyAuthentications").Properties!["azureADOnlyAuthentication"]!.GetValue<bool>().ShouldBeTrue();
    }

    [Fact]
    public void Monitoring_disables_local_authentication()
    {
        Main.Single("Microsoft.Insights/components").Properties!["DisableLocalAuth"]!.GetValue<bool>().ShouldBeTrue();
        Main.Single("Microsoft.OperationalInsights/workspaces").Properties!["features"]!["disableLocalAuth"]!.GetValue<bool>().ShouldBeTrue();
    }

    [Fact]
    public void Public_network_access_is_a_parameter_on_every_data_service()
    {
        foreach (var type in new[] { "Microsoft.Storage/storageAccounts", "Microsoft.DocumentDB/databaseAccounts", "Microsoft.Sql/servers", "Microsoft.Web/sites" })
        {
            Main.Single(type).Properties!["publicNetworkAccess"]!.GetValue<string>().ShouldBe("[parameters('publicNetworkAccess')]", type);
        }

        Main.Root["parameters"]!["publicNetworkAccess"]!["allowedValues"]!.AsArray().Count.ShouldBe(2);
    }

    [Fact]
    public void Tls_ftps_and_https_are_parameters_whose_defaults_are_the_safe_settings_and_that_allow_nothing_weaker()
    {
        var parameters = Main.Root["parameters"]!;

        parameters["minimumTlsVersion"]!["defaultValue"]!.GetValue<string>().ShouldBe("1.2");
        parameters["minimumTlsVersion"]!["allowedValues"]!.AsArray().Select(v => v!.GetValue<string>()).ShouldBe(["1.2", "1.3"]);
        parameters["ftpsState"]!["defaultValue"]!.GetValue<string>().ShouldBe("Disabled");
        parameters["ftpsState"]!["allowedValues"]!.AsArray().Select(v => v!.GetValue<string>()).ShouldBe(["Disabled", "FtpsOnly"]);
        parameters["httpsOnly"]!["defaultValue"]!.GetValue<bool>().ShouldBeTrue();
        foreach (var file in new[] { "main.dev.bicepparam", "main.prod.bicepparam" })
        {
            // The environments keep the defaults: a weaker setting would have to be written here, in review.
            var text = File.ReadAllText(Path.Combine(Bicep.InfraDirectory, file));
            text.ShouldNotContain("param httpsOnly = false");
            text.ShouldNotContain("param ftpsState = 'FtpsOnly'");
        }
    }

    [Fact]
    public void The_deployers_role_assignment_rights_in_the_readme_cover_exactly_the_roles_the_template_assigns()
    {
        var readme = File.ReadAllText(Path.Combine(Bicep.RepositoryRoot, "README.md"));
        var match = System.Text.RegularExpressions.Regex.Match(readme, "ROLES=\"(?<ids>[^\"]+)\"");
        match.Success.ShouldBeTrue("the README's one-time set-up names no ROLES for the deployer's condition");
        var documented = match.Groups["ids"].Value.Split(',', StringSplitOptions.TrimEntries);

        // Azure RBAC assignments of the template (Cosmos DB's data role is Cosmos's own RBAC, not Microsoft.Authorization).
        var assigned = Main.OfType("Microsoft.Authorization/roleAssignments")
            .Select(a => a.Resolved(a.Properties!["roleDefinitionId"]))
            .Select(id => System.Text.RegularExpressions.Regex.Match(id, "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}").Value)
            .Distinct();

        documented.ShouldBe(assigned, ignoreOrder: true);
        readme.ShouldContain("--condition-version 2.0");
    }

    /// <summary>Each named parameter of the module is main's parameter of the same name, passed unchanged.</summary>
    private void PassedThrough(string module, params string[] names)
    {
        var deployment = Main.OfType("Microsoft.Resources/deployments").Single(r => r.Node["name"]!.GetValue<string>() == module);
        foreach (var name in names)
        {
            deployment.Properties!["parameters"]![name]!["value"]!.GetValue<string>().ShouldBe($"[parameters('{name}')]", $"{module}.{name}");
        }
    }

    /// <summary>The app settings of both plans (the site's appSettings picks variables of the function app module).</summary>
    private Dictionary<string, string> AppSettings()
    {
        var site = Main.Single("Microsoft.Web/sites");
        site.Properties!["siteConfig"]!["appSettings"]!.GetValue<string>()
            .ShouldBe("[if(variables('isFlex'), variables('commonSettings'), concat(variables('commonSettings'), variables('premiumSettings')))]");
        var variables = site.Template["variables"]!;
        return variables["commonSettings"]!.AsArray().Concat(variables["premiumSettings"]!.AsArray())
            .ToDictionary(s => s!["name"]!.GetValue<string>(), s => s!["value"]!.GetValue<string>());
    }

    private static string RoleId(string roleDefinitionId)
    {
        const string prefix = "[subscriptionResourceId('Microsoft.Authorization/roleDefinitions', '";
        roleDefinitionId.ShouldStartWith(prefix);
        roleDefinitionId.ShouldEndWith("')]");
        return roleDefinitionId[prefix.Length..^3];
    }
}
