namespace Rollout.Storage.SqlServer.Tests.Integration;

/// <summary>
/// A fact that needs a real SQL Server: skipped, with the reason, where <c>SQLSERVER_CONNECTION_STRING</c> is not set —
/// unless <c>REQUIRE_SQLSERVER=1</c> says a server must be there (CI's integration job), where it runs and fails instead,
/// so that a broken service container cannot turn the integration job green by skipping everything.
/// </summary>
public sealed class SqlServerFactAttribute : FactAttribute
{
    public const string Variable = "SQLSERVER_CONNECTION_STRING";

    public const string RequireVariable = "REQUIRE_SQLSERVER";

    public SqlServerFactAttribute()
    {
        Skip = SkipReason(Environment.GetEnvironmentVariable(Variable), Environment.GetEnvironmentVariable(RequireVariable));
    }

    /// <summary>Why the SQL Server facts are skipped, or null when they run.</summary>
    public static string? SkipReason(string? connectionString, string? require) =>
        !string.IsNullOrWhiteSpace(connectionString) || IsRequired(require)
            ? null
            : $"{Variable} is not set: these tests need a real SQL Server (CI runs them against a mssql/server:2022 service container; no SQL Server can run on this machine).";

    /// <summary>True when <c>REQUIRE_SQLSERVER</c> asks for a server (1 or true).</summary>
    public static bool IsRequired(string? require) => require?.Trim() is "1" or "true" or "True" or "TRUE";
}
