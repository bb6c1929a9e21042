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
    public async Task A_parameter_file_without_the_sql_administrators_object_id_fails_and_names_the_variable()
    {
        // No placeholder id: a deployment whose environment lacks the variable must stop, not name an all-zero administrator.
        var environment = Bicep.DeployEnvironment.ToDictionary(kv => kv.Key, kv => kv.Value);
        environment["SQL_ENTRA_ADMIN_OBJECT_ID"] = null;
        var directory = Directory.CreateTempSubdirectory("rollout-bicep-params-");
        try
        {
            var (exitCode, output) = await Bicep.RunAsync(environment, Bicep.InfraDirectory, "build-params", "main.dev.bicepparam", "--outfile", Path.Combine(directory.FullName, "dev.json"));

            exitCode.ShouldNotBe(0, output);
            output.ShouldContain("SQL_ENTRA_ADMIN_OBJECT_ID");
        }
        finally
        {
            directory.Delete(recursive: true);
        }
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
        foreach (var rule in new[] { "no-hardcoded-env-urls", "outputs-should-not-contain-secrets", "secure-secrets-in-params", "use-secure-value-for-secure-inputs", "no-unused-params", "what-if-short-circuiting" })
        {
            var level = rules[rule]?["level"]?.GetValue<string>();
            level.ShouldBeOneOf(["warning", "error"], rule);
        }

        // use-recent-api-versions compares each API version's date with the day the linter runs: on, it would turn CI red
        // on a date with no change to the repository (storage's 2025-01-01 from 2027-01-01). API versions are updated on
        // purpose, with a what-if, not by the calendar.
        rules["use-recent-api-versions"]?["level"]?.GetValue<string>().ShouldBe("off");
    }

    private static void ShouldBeClean(string output)
    {
        output.ShouldNotContain(": Warning ", Case.Insensitive, output);
        output.ShouldNotContain(": Error ", Case.Insensitive, output);
    }
}
