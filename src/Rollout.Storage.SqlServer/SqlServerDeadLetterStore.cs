using System.Data;
using System.Text.Json;
using Microsoft.Data.SqlClient;
using Rollout.Core.DataPath;
using Rollout.Core.Translation;

namespace Rollout.Storage.SqlServer;

/// <summary>Dead letters in the SQL database (as the embedded store: one open record per key, newest failure wins, a retry resolves only what it applied).</summary>
public sealed class SqlServerDeadLetterStore : IDeadLetterStore
{
    private readonly SqlServerConnectionFactory _connections;
    private readonly TimeProvider _time;

    /// <summary>Creates the store (tables from <see cref="SqlServerSchema.StateTables"/>; <see cref="SqlServerStateStore.InitializeAsync"/> creates them).</summary>
    /// <param name="connections">The database.</param>
    /// <param name="time">Clock for resolution times.</param>
    public SqlServerDeadLetterStore(SqlServerConnectionFactory connections, TimeProvider time)
    {
        ArgumentNullException.ThrowIfNull(connections);
        ArgumentNullException.ThrowIfNull(time);
        _connections = connections;
        _time = time;
    }

    /// <inheritdoc />
    public async Task AddAsync(IReadOnlyList<DeadLetter> letters, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(letters);
        if (letters.Count == 0)
        {
            return;
        }

        var connection = await _connections.OpenAsync(cancellationToken).ConfigureAwait(false);
        await using (connection.ConfigureAwait(false))
        {
            var transaction = (SqlTransaction)await connection.BeginTransactionAsync(IsolationLevel.ReadCommitted, cancellationToken).ConfigureAwait(false);
            await using (transaction.ConfigureAwait(false))
            {
                foreach (var letter in letters)
                {
                    await using var command = _connections.Command(connection, DeadLetterSql.Add(letter, Serialize(letter.Errors)), transaction);
                    await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
                }

                await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
            }
        }
    }

    /// <inheritdoc />
    public async Task<IReadOnlyList<DeadLetter>> ListAsync(string feature, bool includeResolved, CancellationToken cancellationToken)
    {
        var letters = new List<DeadLetter>();
        var connection = await _connections.OpenAsync(cancellationToken).ConfigureAwait(false);
        await using (connection.ConfigureAwait(false))
        {
            await using var command = _connections.Command(connection, DeadLetterSql.List(feature, includeResolved));
            var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            await using (reader.ConfigureAwait(false))
            {
                while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                {
                    letters.Add(new DeadLetter(
                        reader.GetInt64(0),
                        reader.GetString(1),
                        new SourceKey(reader.GetString(2)),
                        reader.GetInt64(3),
                        Deserialize(reader.GetString(4)),
                        reader.GetFieldValue<DateTimeOffset>(5),
                        reader.GetInt32(6),
                        reader.IsDBNull(7) ? null : reader.GetFieldValue<DateTimeOffset>(7)));
                }
            }
        }

        return letters;
    }

    /// <inheritdoc />
    public async Task<long> CountOpenAsync(string feature, CancellationToken cancellationToken)
    {
        var connection = await _connections.OpenAsync(cancellationToken).ConfigureAwait(false);
        await using (connection.ConfigureAwait(false))
        {
            await using var command = _connections.Command(connection, DeadLetterSql.CountOpen(feature));
            return (long)(await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false))!;
        }
    }

    /// <inheritdoc />
    public async Task RecordRetryAsync(long id, bool resolved, long appliedVersion, IReadOnlyList<TranslationError> errors, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(errors);
        var connection = await _connections.OpenAsync(cancellationToken).ConfigureAwait(false);
        await using (connection.ConfigureAwait(false))
        {
            await using var command = _connections.Command(connection, DeadLetterSql.RecordRetry(id, resolved, appliedVersion, Serialize(errors), _time.GetUtcNow()));
            await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    internal static string Serialize(IReadOnlyList<TranslationError> errors) =>
        JsonSerializer.Serialize(errors.Select(e => new StoredError(e.Field, e.Column, e.Kind.ToString(), e.Message)).ToArray(), SqlServerJsonContext.Default.StoredErrorArray);

    internal static TranslationError[] Deserialize(string json) =>
        (JsonSerializer.Deserialize(json, SqlServerJsonContext.Default.StoredErrorArray) ?? [])
            .Select(e => new TranslationError(e.Field, e.Column, Enum.Parse<TranslationErrorKind>(e.Kind), e.Message)).ToArray();

}

internal sealed record StoredError(string Field, string? Column, string Kind, string Message);

[System.Text.Json.Serialization.JsonSourceGenerationOptions(PropertyNamingPolicy = System.Text.Json.Serialization.JsonKnownNamingPolicy.CamelCase)]
[System.Text.Json.Serialization.JsonSerializable(typeof(StoredError[]))]
internal sealed partial class SqlServerJsonContext : System.Text.Json.Serialization.JsonSerializerContext;
