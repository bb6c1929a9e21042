namespace Rollout.Storage.SqlServer.Tests;

public sealed class ReadmeTests
{
    [Fact]
    public void The_readme_shows_the_set_up_script_the_adapter_generates()
    {
        var directory = new DirectoryInfo(AppContext.BaseDirectory);
        while (directory is not null && !File.Exists(Path.Combine(directory.FullName, "Rollout.Functions.sln")))
        {
            directory = directory.Parent;
        }

        Assert.NotNull(directory);
        var readme = File.ReadAllText(Path.Combine(directory.FullName, "README.md")).ReplaceLineEndings("\n");
        var script = SqlServerSchema.Script(SqlServerTableName.Parse("dbo.Orders")).ReplaceLineEndings("\n").TrimEnd('\n');

        Assert.Contains("```sql\n" + script + "\n```", readme, StringComparison.Ordinal);
    }
}
