using Microsoft.Extensions.Logging;

namespace Rollout.Storage.Cosmos;

/// <summary>Log messages of the Cosmos adapter (event ids 7000–7099). None carries a key or connection string.</summary>
internal static partial class Log
{
    [LoggerMessage(7000, LogLevel.Information, "Cosmos target ready: database {Database}, container {Container}, partition key {PartitionKeyPath}")]
    public static partial void ContainerReady(ILogger logger, string database, string container, string partitionKeyPath);

    [LoggerMessage(7001, LogLevel.Debug, "Cosmos write of {SourceKey} lost a concurrency race ({Status}), attempt {Attempt}; reading again")]
    public static partial void ConcurrencyRetry(ILogger logger, string sourceKey, int status, int attempt);
}
