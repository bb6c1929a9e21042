using Rollout.Storage.SqlServer;

namespace Rollout.Cli.Tests;

public sealed class SqlServerScriptCommandTests
{
    [Fact]
    public async Task The_printed_script_is_the_adapters_set_up_for_the_specs_table_and_the_one_the_readme_documents()
    {
        var (code, output, _) = await CliRunner.RunAsync("sqlserver-script", CliRunner.Sample("orders.rollout.json"));

        Assert.Equal(0, code);
        Assert.Equal(SqlServerSchema.Script(SqlServerTableName.Parse("dbo.Orders")), output);
        var readme = File.ReadAllText(Path.Combine(RepositoryRoot(), "README.md")).ReplaceLineEndings("\n");
        Assert.Contains("```sql\n" + output.ReplaceLineEndings("\n").TrimEnd('\n') + "\n```", readme, StringComparison.Ordinal);
        Assert.Contains("sqlserver-script samples/orders.rollout.json > rollout-setup.sql", File.ReadAllText(Path.Combine(RepositoryRoot(), "infra", "README.md")), StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_invalid_spec_prints_no_script()
    {
        var spec = CliRunner.TempSpec(File.ReadAllText(CliRunner.Sample("orders.rollout.json")).Replace("\"dbo.Orders\"", "\"dbo.Orders; DROP TABLE x\"", StringComparison.Ordinal));

        var (code, output, error) = await CliRunner.RunAsync("sqlserver-script", spec);

        Assert.Equal(1, code);
        Assert.Equal(string.Empty, output);
        Assert.Contains("is not valid", error, StringComparison.Ordinal);
    }

    private static string RepositoryRoot()
    {
        var directory = new DirectoryInfo(AppContext.BaseDirectory);
        while (directory is not null && !File.Exists(Path.Combine(directory.FullName, "Rollout.Functions.sln")))
        {
            directory = directory.Parent;
        }

        return directory?.FullName ?? throw new InvalidOperationException("repository root not found");
    }
}
