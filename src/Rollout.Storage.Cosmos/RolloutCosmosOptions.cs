using System.ComponentModel.DataAnnotations;
using System.Net;
using Azure.Core;
using Rollout.Core.Spec;

namespace Rollout.Storage.Cosmos;

/// <summary>
/// Settings of the Cosmos DB target (configuration section <c>Rollout:Cosmos</c>). Authentication is one of: a
/// connection string, an endpoint with an account key (the emulator), or an endpoint with a
/// <see cref="TokenCredential"/> (managed identity through Azure.Identity when <see cref="UseManagedIdentity"/> is set).
/// Secrets (<see cref="ConnectionString"/>, <see cref="Key"/>) are never logged and not part of <see cref="ToString"/>.
/// </summary>
public sealed class RolloutCosmosOptions : IValidatableObject
{
    /// <summary>Configuration section.</summary>
    public const string Section = "Rollout:Cosmos";

    /// <summary>Account endpoint, e.g. <c>https://myaccount.documents.azure.com:443/</c>.</summary>
    public Uri? Endpoint { get; set; }

    /// <summary>Account connection string (secret); alternative to <see cref="Endpoint"/> with a key or a credential.</summary>
    public string? ConnectionString { get; set; }

    /// <summary>Account key (secret), for the emulator or key-based accounts.</summary>
    public string? Key { get; set; }

    /// <summary>Authenticate with a managed identity (<c>ManagedIdentityCredential</c>) when no key or credential is given.</summary>
    public bool UseManagedIdentity { get; set; }

    /// <summary>Client id of a user-assigned managed identity; null for the system-assigned one.</summary>
    public string? ManagedIdentityClientId { get; set; }

    /// <summary>A credential set in code (not bound from configuration); wins over <see cref="UseManagedIdentity"/>.</summary>
    public TokenCredential? Credential { get; set; }

    /// <summary>Database name.</summary>
    [Required(AllowEmptyStrings = false)]
    [RegularExpression("^[A-Za-z0-9][A-Za-z0-9_-]{0,254}$")]
    public string Database { get; set; } = CosmosDefaults.Database;

    /// <summary>Container name; null takes the spec's <c>target.container</c>.</summary>
    public string? Container { get; set; }

    /// <summary>Partition key path; null takes the spec's <c>target.partitionKey</c>.</summary>
    public string? PartitionKeyPath { get; set; }

    /// <summary>Create the database and container when they do not exist (at start-up, through <see cref="CosmosTargetStore.InitializeAsync"/>).</summary>
    public bool CreateIfNotExists { get; set; }

    /// <summary>Throughput (RU/s) of a container created by <see cref="CreateIfNotExists"/>; null for none (serverless or database throughput).</summary>
    [Range(400, 1_000_000)]
    public int? ContainerThroughput { get; set; }

    /// <summary>
    /// SDK bulk execution: concurrent point operations are grouped into batches per partition. The local
    /// Cosmos-compatible server cannot do bulk; the store's code path is the same with it off.
    /// </summary>
    public bool AllowBulkExecution { get; set; } = true;

    /// <summary>SDK retries of a request the service throttled (429), honouring its retry-after.</summary>
    [Range(0, 1000)]
    public int MaxRetryAttemptsOnRateLimitedRequests { get; set; } = CosmosDefaults.MaxRetryAttemptsOnRateLimitedRequests;

    /// <summary>Longest total wait of the SDK's 429 retries of one request.</summary>
    public TimeSpan MaxRetryWaitTimeOnRateLimitedRequests { get; set; } = CosmosDefaults.MaxRetryWaitTimeOnRateLimitedRequests;

    /// <summary>Writes of one batch in flight at once.</summary>
    [Range(1, 1024)]
    public int MaxConcurrency { get; set; } = CosmosDefaults.MaxConcurrency;

    /// <summary>Times one write re-reads and re-decides after losing an optimistic-concurrency race (412/409).</summary>
    [Range(1, 1000)]
    public int MaxConcurrencyRetries { get; set; } = CosmosDefaults.MaxConcurrencyRetries;

    /// <summary>
    /// Accept the self-signed certificate of a local emulator. Allowed only for a loopback <see cref="Endpoint"/>,
    /// and then only for that endpoint (gateway mode, limited to the endpoint).
    /// </summary>
    public bool AcceptLocalEmulatorCertificate { get; set; }

    /// <inheritdoc />
    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        var hasConnectionString = !string.IsNullOrWhiteSpace(ConnectionString);
        if (hasConnectionString == (Endpoint is not null))
        {
            yield return new ValidationResult("Set exactly one of ConnectionString or Endpoint.", [nameof(ConnectionString), nameof(Endpoint)]);
        }

        if (Endpoint is not null)
        {
            if (!Endpoint.IsAbsoluteUri || (Endpoint.Scheme != Uri.UriSchemeHttps && !Endpoint.IsLoopback))
            {
                yield return new ValidationResult("Endpoint must be an absolute https URI (http only on loopback).", [nameof(Endpoint)]);
            }

            var credentials = (string.IsNullOrEmpty(Key) ? 0 : 1) + (Credential is null && !UseManagedIdentity ? 0 : 1);
            if (credentials != 1)
            {
                yield return new ValidationResult("With an Endpoint, set exactly one of Key, Credential or UseManagedIdentity.", [nameof(Key), nameof(Credential), nameof(UseManagedIdentity)]);
            }
        }
        else if (!string.IsNullOrEmpty(Key) || Credential is not null || UseManagedIdentity)
        {
            yield return new ValidationResult("A ConnectionString carries its own key; Key, Credential and UseManagedIdentity need an Endpoint.", [nameof(Key)]);
        }

        if (AcceptLocalEmulatorCertificate && (Endpoint is null || !IsLoopback(Endpoint)))
        {
            yield return new ValidationResult("AcceptLocalEmulatorCertificate is allowed only with a loopback Endpoint.", [nameof(AcceptLocalEmulatorCertificate)]);
        }

        if (Container is not null && !Identifiers.IsContainerName(Container))
        {
            yield return new ValidationResult($"'{Container}' is not a container name (letters, digits, _ and -, starting with a letter or digit).", [nameof(Container)]);
        }

        if (PartitionKeyPath is not null && !CosmosDocuments.IsPartitionKeyPath(PartitionKeyPath))
        {
            yield return new ValidationResult($"'{PartitionKeyPath}' is not a partition key path such as /customerId.", [nameof(PartitionKeyPath)]);
        }

        if (MaxRetryWaitTimeOnRateLimitedRequests < TimeSpan.Zero || MaxRetryWaitTimeOnRateLimitedRequests > TimeSpan.FromMinutes(10))
        {
            yield return new ValidationResult("MaxRetryWaitTimeOnRateLimitedRequests must be between 0 and 10 minutes.", [nameof(MaxRetryWaitTimeOnRateLimitedRequests)]);
        }
    }

    /// <summary>Non-secret description (endpoint, database, container, auth kind).</summary>
    public override string ToString() =>
        $"endpoint {(Endpoint?.GetLeftPart(UriPartial.Authority) ?? "(from connection string)")}, database {Database}, container {Container ?? "(spec)"}, auth {AuthKind}";

    internal string AuthKind =>
        !string.IsNullOrWhiteSpace(ConnectionString) ? "connection string"
        : !string.IsNullOrEmpty(Key) ? "key"
        : Credential is not null ? "credential"
        : UseManagedIdentity ? "managed identity" : "none";

    internal static bool IsLoopback(Uri endpoint) =>
        endpoint.IsLoopback || (IPAddress.TryParse(endpoint.Host.Trim('[', ']'), out var address) && IPAddress.IsLoopback(address));
}

/// <summary>Defaults of <see cref="RolloutCosmosOptions"/>, in one place.</summary>
public static class CosmosDefaults
{
    /// <summary>Database name.</summary>
    public const string Database = "rollout";

    /// <summary>429 retries per request.</summary>
    public const int MaxRetryAttemptsOnRateLimitedRequests = 9;

    /// <summary>Longest wait of the 429 retries of one request.</summary>
    public static readonly TimeSpan MaxRetryWaitTimeOnRateLimitedRequests = TimeSpan.FromSeconds(30);

    /// <summary>Writes in flight per batch.</summary>
    public const int MaxConcurrency = 32;

    /// <summary>Re-reads after a lost concurrency race.</summary>
    public const int MaxConcurrencyRetries = 20;
}
