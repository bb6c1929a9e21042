using Microsoft.Data.SqlClient;

namespace Rollout.Storage.SqlServer;

/// <summary>
/// Opens connections to one database and makes commands with the configured timeout. Authentication is whatever the
/// connection string says: SQL logins, or Entra ID without a secret (<c>Authentication=Active Directory Managed Identity</c>
/// in Azure, <c>Authentication=Active Directory Default</c> for a developer signed in with the Azure CLI). The connection
/// string is never logged and never appears in an exception message from this class.
/// </summary>
public sealed class SqlServerConnectionFactory
{
    private readonly string _connectionString;

    /// <summary>Creates the factory.</summary>
    /// <param name="connectionString">ADO.NET connection string.</param>
    /// <param name="commandTimeoutSeconds">Timeout of every command (seconds).</param>
    /// <exception cref="ArgumentException">The connection string cannot be parsed (the message does not repeat it).</exception>
    public SqlServerConnectionFactory(string connectionString, int commandTimeoutSeconds = 30)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(connectionString);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(commandTimeoutSeconds);
        try
        {
            var builder = new SqlConnectionStringBuilder(connectionString);
            Description = $"{builder.DataSource}/{builder.InitialCatalog}";
        }
        catch (Exception e) when (e is ArgumentException or FormatException or KeyNotFoundException)
        {
            throw new ArgumentException("The SQL Server connection string cannot be parsed (its text is not shown, as it may hold a secret).", nameof(connectionString));
        }

        _connectionString = connectionString;
        CommandTimeoutSeconds = commandTimeoutSeconds;
    }

    /// <summary>Server and database, for messages (no credentials).</summary>
    public string Description { get; }

    /// <summary>Timeout of every command, in seconds.</summary>
    public int CommandTimeoutSeconds { get; }

    /// <summary>Opens a connection.</summary>
    /// <param name="cancellationToken">Cancellation.</param>
    public async Task<SqlConnection> OpenAsync(CancellationToken cancellationToken)
    {
        var connection = new SqlConnection(_connectionString);
        try
        {
            await connection.OpenAsync(cancellationToken).ConfigureAwait(false);
            return connection;
        }
        catch
        {
            await connection.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>A command on a connection (and transaction) with the configured timeout.</summary>
    /// <param name="connection">Open connection.</param>
    /// <param name="sql">Statement text (no values: values are parameters).</param>
    /// <param name="transaction">Transaction, if any.</param>
    public SqlCommand Command(SqlConnection connection, string sql, SqlTransaction? transaction = null)
    {
        ArgumentNullException.ThrowIfNull(connection);
#pragma warning disable CA2100 // The text is generated from validated, quoted identifiers; every value is a parameter.
        return new SqlCommand(sql, connection, transaction) { CommandTimeout = CommandTimeoutSeconds };
#pragma warning restore CA2100
    }

    /// <summary>A command for a generated statement, its parameters attached.</summary>
    internal SqlCommand Command(SqlConnection connection, SqlStatement statement, SqlTransaction? transaction = null)
    {
        var command = Command(connection, statement.Text, transaction);
        command.Parameters.AddRange(statement.Parameters.ToArray());
        return command;
    }

    /// <summary>Runs a statement on a connection of its own and returns the first value.</summary>
    internal async Task<object?> ScalarAsync(SqlStatement statement, CancellationToken cancellationToken)
    {
        var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using (connection.ConfigureAwait(false))
        {
            await using var command = Command(connection, statement);
            return await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Runs a statement on a connection of its own.</summary>
    internal async Task ExecuteAsync(SqlStatement statement, CancellationToken cancellationToken)
    {
        var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using (connection.ConfigureAwait(false))
        {
            await using var command = Command(connection, statement);
            await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    /// <inheritdoc />
    public override string ToString() => Description;
}
