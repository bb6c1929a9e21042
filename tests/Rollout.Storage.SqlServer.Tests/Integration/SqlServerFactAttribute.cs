namespace Rollout.Storage.SqlServer.Tests.Integration;

/// <summary>
/// A fact that needs a real SQL Server: it runs when <c>SQLSERVER_CONNECTION_STRING</c> is set (GitHub Actions starts one as
/// a service container) and is reported as skipped, with the reason, everywhere else.
/// </summary>
public sealed class SqlServerFactAttribute : FactAttribute
{
    public const string Variable = "SQLSERVER_CONNECTION_STRING";

    public SqlServerFactAttribute()
    {
        if (string.IsNullOrWhiteSpace(Environment.GetEnvironmentVariable(Variable)))
        {
            Skip = $"{Variable} is not set: these tests need a real SQL Server (CI runs them against a mssql/server:2022 service container; no SQL Server can run on this machine).";
        }
    }
}
