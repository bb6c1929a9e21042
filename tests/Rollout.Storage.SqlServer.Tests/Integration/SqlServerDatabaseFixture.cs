using Microsoft.Data.SqlClient;

namespace Rollout.Storage.SqlServer.Tests.Integration;

/// <summary>
/// A throwaway database on the server of <c>SQLSERVER_CONNECTION_STRING</c> (created with change tracking and snapshot
/// isolation on, dropped at the end). Does nothing when the variable is not set (every test is skipped then).
/// Change-tracking versions are database-wide, so the tests of the collection run one after another and each uses its own table.
/// </summary>
public sealed class SqlServerDatabaseFixture : IAsyncLifetime
{
    private string? _database;
    private string? _masterConnectionString;
    private int _tables;

    public SqlServerConnectionFactory Connections { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        var connectionString = Environment.GetEnvironmentVariable(SqlServerFactAttribute.Variable);
        if (string.IsNullOrWhiteSpace(connectionString))
        {
            if (SqlServerFactAttribute.IsRequired(Environment.GetEnvironmentVariable(SqlServerFactAttribute.RequireVariable)))
            {
                throw new InvalidOperationException($"{SqlServerFactAttribute.RequireVariable} is set but {SqlServerFactAttribute.Variable} is not: set it to a SQL Server the tests may create databases on (for example the CI job's service container).");
            }

            return;
        }

        _masterConnectionString = new SqlConnectionStringBuilder(connectionString) { InitialCatalog = "master" }.ConnectionString;
        _database = "rollout_it_" + Guid.NewGuid().ToString("N");
        await using (var master = new SqlConnection(_masterConnectionString))
        {
            await master.OpenAsync();
            await using var create = new SqlCommand($"CREATE DATABASE {SqlServerIdentifier.Quote(_database)}", master);
            await create.ExecuteNonQueryAsync();
        }

        Connections = new SqlServerConnectionFactory(new SqlConnectionStringBuilder(connectionString) { InitialCatalog = _database }.ConnectionString);
        await ExecuteAsync(SqlServerSchema.Database);
    }

    public async Task DisposeAsync()
    {
        if (_database is null)
        {
            return;
        }

        SqlConnection.ClearAllPools();
        await using var master = new SqlConnection(_masterConnectionString);
        await master.OpenAsync();
        var name = SqlServerIdentifier.Quote(_database);
        await using var drop = new SqlCommand($"ALTER DATABASE {name} SET SINGLE_USER WITH ROLLBACK IMMEDIATE; DROP DATABASE {name};", master);
        await drop.ExecuteNonQueryAsync();
    }

    /// <summary>A table name no other test uses.</summary>
    public string NewTableName(string prefix = "Orders") => $"{prefix}{Interlocked.Increment(ref _tables)}";

    /// <summary>Runs a batch and returns the database's change-tracking version after it committed.</summary>
    public async Task<long> ExecuteAsync(string sql)
    {
        await using var connection = await Connections.OpenAsync(CancellationToken.None);
        await using (var command = new SqlCommand(sql, connection))
        {
            await command.ExecuteNonQueryAsync();
        }

        await using var version = new SqlCommand(SourceTableSql.CurrentVersion, connection);
        return (long)(await version.ExecuteScalarAsync())!;
    }
}

[CollectionDefinition(Name)]
public sealed class SqlServerCollection : ICollectionFixture<SqlServerDatabaseFixture>
{
    public const string Name = "sqlserver";
}
