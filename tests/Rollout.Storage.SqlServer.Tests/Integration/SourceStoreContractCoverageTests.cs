using System.Reflection;
using Rollout.Tests.Shared;

namespace Rollout.Storage.SqlServer.Tests.Integration;

/// <summary>
/// Runs everywhere (no server needed): a contract test that <see cref="SqlServerSourceStoreContractTests"/> did not
/// override with <see cref="SqlServerFactAttribute"/> would keep the base's plain fact, run without a server and fail
/// instead of being skipped with the reason — or, where a server is configured, silently change how it is reported.
/// </summary>
public sealed class SourceStoreContractCoverageTests
{
    [Fact]
    public void Every_contract_test_is_overridden_with_a_fact_that_needs_a_sql_server()
    {
        var contract = typeof(SourceStoreContract).GetMethods()
            .Where(m => m.DeclaringType == typeof(SourceStoreContract) && m.GetCustomAttribute<FactAttribute>(inherit: false) is not null)
            .ToArray();

        var plain = contract
            .Select(m => typeof(SqlServerSourceStoreContractTests).GetMethod(m.Name, Type.EmptyTypes))
            .Where(m => m is null || m.DeclaringType != typeof(SqlServerSourceStoreContractTests) || m.GetCustomAttribute<SqlServerFactAttribute>(inherit: false) is null)
            .Select(m => m?.Name)
            .ToArray();

        Assert.True(contract.Length >= 13, $"the contract's facts were not found ({contract.Length})");
        Assert.All(contract, m => Assert.True(m.IsVirtual, $"{m.Name} must be virtual to be overridden"));
        Assert.Empty(plain);
    }

    [Fact]
    public void Without_a_connection_string_the_sql_server_facts_are_skipped_with_the_reason()
    {
        Assert.Contains("SQLSERVER_CONNECTION_STRING is not set", SqlServerFactAttribute.SkipReason(null, null), StringComparison.Ordinal);
        Assert.Contains("SQLSERVER_CONNECTION_STRING is not set", SqlServerFactAttribute.SkipReason(" ", "0"), StringComparison.Ordinal);
        Assert.Null(SqlServerFactAttribute.SkipReason("Server=127.0.0.1,1433;Database=master", null));
    }

    [Fact]
    public void Where_a_server_is_required_the_sql_server_facts_run_and_fail_rather_than_skip()
    {
        Assert.Null(SqlServerFactAttribute.SkipReason(null, "1"));
        Assert.Null(SqlServerFactAttribute.SkipReason("", "true"));
    }

    [Fact]
    public void The_facts_of_this_run_follow_its_environment()
    {
        var expected = SqlServerFactAttribute.SkipReason(Environment.GetEnvironmentVariable(SqlServerFactAttribute.Variable), Environment.GetEnvironmentVariable(SqlServerFactAttribute.RequireVariable));

        Assert.Equal(expected, new SqlServerFactAttribute().Skip);
    }
}
