namespace Rollout.Infra.Tests;

/// <summary>Every Bicep file compiles and lints clean (no error, no linter warning), as .ci/run checks.</summary>
[Collection(InfraCollection.Name)]
public sealed class BicepBuildTests(InfraFixture infra)
{
    [Fact]
    public void Infra_has_the_main_template_its_modules_and_a_parameter_file_per_environment()
    {
        infra.BicepFiles.ShouldBe(
            ["main.bicep", "modules/alerts.bicep", "modules/cosmos.bicep", "modules/functionapp.bicep", "modules/monitoring.bicep", "modules/sql.bicep", "modules/storage.bicep"],
            ignoreOrder: true);
        infra.ParameterFiles.ShouldBe(["main.dev.bicepparam", "main.prod.bicepparam"], ignoreOrder: true);
    }

    [Fact]
    public void Every_bicep_file_builds_without_a_diagnostic()
    {
        infra.Build.ExitCode.ShouldBe(0, infra.Build.Output);
        ShouldBeClean(infra.Build.Output);
        infra.Templates.Keys.ShouldBe(infra.BicepFiles, ignoreOrder: true, "every .bicep file has its compiled ARM JSON");
    }

    [Fact]
    public void Every_parameter_file_builds_without_a_diagnostic()
    {
        infra.BuildParams.ExitCode.ShouldBe(0, infra.BuildParams.Output);
        ShouldBeClean(infra.BuildParams.Output);
        infra.Parameters.Keys.ShouldBe(infra.ParameterFiles, ignoreOrder: true);
    }

    [Fact]
    public void Every_file_lints_without_an_error_or_a_warning()
    {
        infra.LintTemplates.ExitCode.ShouldBe(0, infra.LintTemplates.Output);
        ShouldBeClean(infra.LintTemplates.Output);
        infra.LintParams.ExitCode.ShouldBe(0, infra.LintParams.Output);
        ShouldBeClean(infra.LintParams.Output);
    }

    [Fact]
    public async Task Lint_reports_a_rule_the_bicepconfig_raises_so_a_clean_lint_means_something()
    {
        // The same configuration on a file that breaks two of its rules: the pattern lint the fixture runs finds it.
        var directory = Directory.CreateTempSubdirectory("rollout-bicep-lint-");
        try
        {
            File.Copy(Path.Combine(Bicep.InfraDirectory, "bicepconfig.json"), Path.Combine(directory.FullName, "bicepconfig.json"));
            Directory.CreateDirectory(Path.Combine(directory.FullName, "modules"));
            await File.WriteAllTextAsync(Path.Combine(directory.FullName, "modules", "bad.bicep"), """
                param unused string
                output url string = 'https://management.azure.com/'
                """);

            var (exitCode, output) = await Bicep.RunAsync(directory.FullName, "lint", "--pattern", "**/*.bicep");

            exitCode.ShouldNotBe(0);
            output.ShouldContain("no-unused-params");
            output.ShouldContain("no-hardcoded-env-urls");
        }
        finally
        {
            directory.Delete(recursive: true);
        }
    }

    [Fact]
    public void Bicepconfig_raises_the_rules_these_templates_rely_on()
    {
        var config = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(Path.Combine(Bicep.InfraDirectory, "bicepconfig.json")))!;
        var rules = config["analyzers"]!["core"]!["rules"]!;
        foreach (var rule in new[] { "no-hardcoded-env-urls", "outputs-should-not-contain-secrets", "secure-secrets-in-params", "use-secure-value-for-secure-inputs", "no-unused-params", "what-if-short-circuiting", "use-recent-api-versions" })
        {
            var level = rules[rule]?["level"]?.GetValue<string>();
            level.ShouldBeOneOf(["warning", "error"], rule);
        }
    }

    private static void ShouldBeClean(string output)
    {
        output.ShouldNotContain(": Warning ", Case.Insensitive, output);
        output.ShouldNotContain(": Error ", Case.Insensitive, output);
    }
}
