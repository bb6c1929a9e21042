using YamlDotNet.RepresentationModel;

namespace Rollout.Infra.Tests;

/// <summary>The GitHub Actions workflows parse and have the jobs and steps the delivery relies on.</summary>
public sealed class WorkflowTests
{
    private static readonly string WorkflowDirectory = Path.Combine(Bicep.RepositoryRoot, ".github", "workflows");

    [Fact]
    public void Every_workflow_parses_as_yaml_with_triggers_and_jobs()
    {
        var files = Directory.GetFiles(WorkflowDirectory, "*.yml");
        files.Select(Path.GetFileName).ShouldBe(["ci.yml", "deploy.yml", "deploy-environment.yml"], ignoreOrder: true);
        foreach (var file in files)
        {
            var root = Load(Path.GetFileName(file));
            Map(root, "on").Children.ShouldNotBeEmpty(file);
            Map(root, "jobs").Children.ShouldNotBeEmpty(file);
        }
    }

    [Fact]
    public void No_workflow_holds_or_reads_an_azure_credential()
    {
        foreach (var file in Directory.GetFiles(WorkflowDirectory, "*.yml"))
        {
            var text = File.ReadAllText(file);
            text.ShouldNotContain("creds:", Case.Insensitive, file);
            text.ShouldNotContain("client-secret", Case.Insensitive, file);
            text.ShouldNotContain("publish-profile", Case.Insensitive, file);
            text.ShouldNotContain("AZURE_CREDENTIALS", Case.Insensitive, file);
            text.ShouldNotContain("secrets.", Case.Sensitive, file);
        }
    }

    [Fact]
    public void Deploy_runs_on_a_tag_or_by_hand_and_goes_to_dev_then_prod()
    {
        var deploy = Load("deploy.yml");
        var on = Map(deploy, "on");
        Seq(Map(on, "push"), "tags").Children.ShouldNotBeEmpty();
        on.Children.ContainsKey(new YamlScalarNode("workflow_dispatch")).ShouldBeTrue();
        Scalar(Map(deploy, "permissions"), "contents").ShouldBe("read");

        var jobs = Map(deploy, "jobs");
        var package = Map(jobs, "package");
        Steps(package).ShouldContain(s => Run(s).Contains("dotnet publish src/Rollout.Functions", StringComparison.Ordinal));
        Scalar(package, "needs").ShouldBe("test"); // a tag never deploys a commit whose tests did not pass
        Steps(Map(jobs, "test")).ShouldContain(s => Run(s).Contains("bash .ci/run", StringComparison.Ordinal));

        foreach (var (name, needs) in new[] { ("dev", "package"), ("prod", "dev") })
        {
            var job = Map(jobs, name);
            Scalar(job, "uses").ShouldBe("./.github/workflows/deploy-environment.yml");
            Scalar(Map(job, "with"), "environment").ShouldBe(name);
            Scalar(job, "needs").ShouldBe(needs);
            Scalar(Map(job, "permissions"), "id-token").ShouldBe("write");
        }
    }

    [Fact]
    public void An_environment_deployment_logs_in_with_oidc_then_runs_what_if_deploy_publish_and_a_smoke_test_in_that_order()
    {
        var workflow = Load("deploy-environment.yml");
        Map(Map(Map(workflow, "on"), "workflow_call"), "inputs").Children.ContainsKey(new YamlScalarNode("environment")).ShouldBeTrue();
        Scalar(Map(workflow, "permissions"), "id-token").ShouldBe("write");

        var job = Map(Map(workflow, "jobs"), "deploy");
        Scalar(Map(job, "environment"), "name").ShouldBe("${{ inputs.environment }}");
        var steps = Steps(job).ToList();

        var login = steps.FindIndex(s => Uses(s).StartsWith("azure/login@", StringComparison.Ordinal));
        login.ShouldBeGreaterThanOrEqualTo(0, "an azure/login step");
        var with = Map(steps[login], "with");
        foreach (var key in new[] { "client-id", "tenant-id", "subscription-id" })
        {
            Scalar(with, key).ShouldStartWith("${{ vars.", customMessage: key);
        }

        with.Children.ContainsKey(new YamlScalarNode("creds")).ShouldBeFalse();

        var whatIf = steps.FindIndex(s => Run(s).Contains("az deployment group what-if", StringComparison.Ordinal));
        var deploy = steps.FindIndex(s => Run(s).Contains("az deployment group create", StringComparison.Ordinal));
        var flex = steps.FindIndex(s => Uses(s).StartsWith("azure/functions-action@", StringComparison.Ordinal));
        var premium = steps.FindIndex(s => Run(s).Contains("az storage blob upload --auth-mode login", StringComparison.Ordinal));
        var smoke = steps.FindIndex(s => Run(s).Contains("/api/rollouts", StringComparison.Ordinal));
        login.ShouldBeLessThan(whatIf);
        whatIf.ShouldBeLessThan(deploy);
        deploy.ShouldBeLessThan(flex);
        flex.ShouldBeLessThan(premium);
        premium.ShouldBeLessThan(smoke);

        foreach (var index in new[] { whatIf, deploy })
        {
            Run(steps[index]).ShouldContain("infra/main.bicep");
            Run(steps[index]).ShouldContain("infra/main.${{ inputs.environment }}.bicepparam");
        }

        Scalar(Map(steps[flex], "with"), "sku").ShouldBe("flexconsumption");
        var smokeTest = Run(steps[smoke]);
        smokeTest.ShouldContain("az functionapp keys list");
        smokeTest.ShouldContain("x-functions-key");
        smokeTest.ShouldContain("::add-mask::");
        // The key is read inside the retry loop: right after a deployment the host may not answer for it yet.
        smokeTest.IndexOf("az functionapp keys list", StringComparison.Ordinal).ShouldBeGreaterThan(smokeTest.IndexOf("for attempt", StringComparison.Ordinal));
        Scalar(steps[smoke], "if").ShouldBe("inputs.smoke-test");
    }

    [Fact]
    public void The_smoke_test_can_be_turned_off_by_hand_for_a_first_deployment_but_always_runs_on_a_tag()
    {
        var deploy = Load("deploy.yml");
        var input = Map(Map(Map(Map(deploy, "on"), "workflow_dispatch"), "inputs"), "smoke-test");
        Scalar(input, "type").ShouldBe("boolean");
        Scalar(input, "default").ShouldBe("true");
        foreach (var environment in new[] { "dev", "prod" })
        {
            Scalar(Map(Map(Map(deploy, "jobs"), environment), "with"), "smoke-test").ShouldBe("${{ github.event_name == 'push' || inputs.smoke-test }}");
        }

        var called = Map(Map(Map(Load("deploy-environment.yml"), "on"), "workflow_call"), "inputs");
        Scalar(Map(called, "smoke-test"), "default").ShouldBe("true");
    }

    [Fact]
    public void Ci_runs_the_test_command_that_includes_the_bicep_build_and_lint()
    {
        var ci = Load("ci.yml");
        Steps(Map(Map(ci, "jobs"), "build-and-test")).ShouldContain(s => Run(s).Contains("bash .ci/run", StringComparison.Ordinal));
        File.ReadAllText(Path.Combine(Bicep.RepositoryRoot, ".ci", "run")).ShouldContain("dotnet test Rollout.Functions.sln");
        File.ReadAllText(Path.Combine(Bicep.RepositoryRoot, "Rollout.Functions.sln")).ShouldContain(@"tests\Rollout.Infra.Tests\Rollout.Infra.Tests.csproj");
    }

    [Fact]
    public void Ci_publishes_the_test_results_and_the_rollout_report_even_when_a_test_fails()
    {
        var job = Map(Map(Load("ci.yml"), "jobs"), "build-and-test");
        var test = Steps(job).Single(s => Run(s).Contains("bash .ci/run", StringComparison.Ordinal));
        var env = Map(test, "env");
        var uploads = Steps(job).Where(s => Uses(s).StartsWith("actions/upload-artifact@", StringComparison.Ordinal)).ToArray();

        foreach (var variable in new[] { "ROLLOUT_TEST_RESULTS", "ROLLOUT_TEST_ARTIFACTS" })
        {
            var folder = Scalar(env, variable).Replace("${{ github.workspace }}/", "", StringComparison.Ordinal);
            var upload = uploads.SingleOrDefault(u => Scalar(Map(u, "with"), "path") == folder);
            upload.ShouldNotBeNull($"no upload of {folder} ({variable})");
            Scalar(upload, "if").ShouldBe("always()");
            Scalar(Map(upload, "with"), "if-no-files-found").ShouldBe("error");
        }

        File.ReadAllText(Path.Combine(Bicep.RepositoryRoot, ".ci", "run")).ShouldContain("ROLLOUT_TEST_RESULTS");
    }

    [Fact]
    public void The_sql_server_integration_job_runs_the_sql_server_tests_against_a_service_container_and_cannot_skip_them()
    {
        var job = Map(Map(Load("ci.yml"), "jobs"), "sqlserver-integration");
        var mssql = Map(Map(job, "services"), "mssql");
        Scalar(mssql, "image").ShouldStartWith("mcr.microsoft.com/mssql/server:");
        var test = Steps(job).Single(s => Run(s).Contains("dotnet test tests/Rollout.Storage.SqlServer.Tests", StringComparison.Ordinal));
        var env = Map(test, "env");

        Scalar(env, "REQUIRE_SQLSERVER").ShouldBe("1");
        Scalar(env, "SQLSERVER_CONNECTION_STRING").ShouldContain("Server=127.0.0.1,1433");
        Run(test).ShouldContain("Rollout.Storage.SqlServer.Tests.Integration");
        // The filter names the namespace the SQL Server facts live in.
        Directory.GetFiles(Path.Combine(Bicep.RepositoryRoot, "tests", "Rollout.Storage.SqlServer.Tests", "Integration"), "*.cs")
            .ShouldContain(f => File.ReadAllText(f).Contains("namespace Rollout.Storage.SqlServer.Tests.Integration;", StringComparison.Ordinal));
    }

    [Fact]
    public void The_readme_documents_the_oidc_set_up_and_the_prod_reviewers()
    {
        var readme = File.ReadAllText(Path.Combine(Bicep.RepositoryRoot, "README.md"));
        var start = readme.IndexOf("## Deploy to Azure", StringComparison.Ordinal);
        start.ShouldBeGreaterThanOrEqualTo(0);
        var section = readme[start..readme.IndexOf("\n## ", start + 1, StringComparison.Ordinal)];
        section.ShouldContain("az ad app federated-credential create");
        section.ShouldContain("repo:$REPO:environment:$ENV");
        section.ShouldContain("required reviewers are a GitHub setting");
        foreach (var variable in new[] { "AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_SUBSCRIPTION_ID", "AZURE_RESOURCE_GROUP", "SQL_ENTRA_ADMIN_OBJECT_ID" })
        {
            section.ShouldContain(variable);
            File.ReadAllText(Path.Combine(WorkflowDirectory, "deploy-environment.yml")).ShouldContain($"vars.{variable}");
        }
    }

    internal static YamlMappingNode Load(string fileName)
    {
        var yaml = new YamlStream();
        using var reader = new StreamReader(Path.Combine(WorkflowDirectory, fileName));
        yaml.Load(reader);
        return (YamlMappingNode)yaml.Documents.ShouldHaveSingleItem().RootNode;
    }

    private static YamlMappingNode Map(YamlMappingNode node, string key) =>
        node.Children.TryGetValue(new YamlScalarNode(key), out var child) && child is YamlMappingNode map ? map : throw new ShouldAssertException($"no mapping '{key}' at line {node.Start.Line}");

    private static YamlSequenceNode Seq(YamlMappingNode node, string key) =>
        node.Children.TryGetValue(new YamlScalarNode(key), out var child) && child is YamlSequenceNode seq ? seq : throw new ShouldAssertException($"no sequence '{key}' at line {node.Start.Line}");

    private static string Scalar(YamlMappingNode node, string key) =>
        node.Children.TryGetValue(new YamlScalarNode(key), out var child) && child is YamlScalarNode scalar ? scalar.Value ?? "" : throw new ShouldAssertException($"no scalar '{key}' at line {node.Start.Line}");

    private static IEnumerable<YamlMappingNode> Steps(YamlMappingNode job) => Seq(job, "steps").Children.Cast<YamlMappingNode>();

    private static string Run(YamlMappingNode step) =>
        step.Children.TryGetValue(new YamlScalarNode("run"), out var run) && run is YamlScalarNode s ? s.Value ?? "" : "";

    private static string Uses(YamlMappingNode step) =>
        step.Children.TryGetValue(new YamlScalarNode("uses"), out var uses) && uses is YamlScalarNode s ? s.Value ?? "" : "";
}
