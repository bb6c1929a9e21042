using System.Text.Json;
using Azure.Identity;
using Microsoft.Azure.Cosmos;

namespace Rollout.Storage.Cosmos;

/// <summary>Builds the <see cref="CosmosClient"/> of validated <see cref="RolloutCosmosOptions"/>.</summary>
public static class CosmosClientFactory
{
    /// <summary>
    /// Creates the client: System.Text.Json serialization, 429 retries from the options, bulk execution as configured.
    /// With <see cref="RolloutCosmosOptions.AcceptLocalEmulatorCertificate"/> (loopback endpoints only) the client uses
    /// gateway mode limited to the endpoint and accepts that endpoint's certificate, and no other.
    /// </summary>
    /// <param name="options">Validated options.</param>
    /// <param name="configure">Further client settings (applied last).</param>
    public static CosmosClient Create(RolloutCosmosOptions options, Action<CosmosClientOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        var results = new List<System.ComponentModel.DataAnnotations.ValidationResult>();
        if (!System.ComponentModel.DataAnnotations.Validator.TryValidateObject(options, new(options), results, validateAllProperties: true))
        {
            throw new ArgumentException("Invalid Cosmos options: " + string.Join(" ", results.Select(r => r.ErrorMessage)), nameof(options));
        }

        var client = new CosmosClientOptions
        {
            ApplicationName = "rollout",
            AllowBulkExecution = options.AllowBulkExecution,
            MaxRetryAttemptsOnRateLimitedRequests = options.MaxRetryAttemptsOnRateLimitedRequests,
            MaxRetryWaitTimeOnRateLimitedRequests = options.MaxRetryWaitTimeOnRateLimitedRequests,
            UseSystemTextJsonSerializerWithOptions = new JsonSerializerOptions(JsonSerializerDefaults.Web),
            EnableContentResponseOnWrite = false,
        };
        if (options.AcceptLocalEmulatorCertificate)
        {
            var endpoint = options.Endpoint!;
            client.ConnectionMode = ConnectionMode.Gateway;
            client.LimitToEndpoint = true;
            client.HttpClientFactory = () => new HttpClient(new HttpClientHandler
            {
                // Only the configured loopback endpoint's certificate is accepted without validation.
                ServerCertificateCustomValidationCallback = (request, _, _, errors) =>
                    errors == System.Net.Security.SslPolicyErrors.None
                    || (request.RequestUri is { } uri && RolloutCosmosOptions.IsLoopback(uri)
                        && string.Equals(uri.Host, endpoint.Host, StringComparison.OrdinalIgnoreCase) && uri.Port == endpoint.Port),
            });
        }

        configure?.Invoke(client);
        if (!string.IsNullOrWhiteSpace(options.ConnectionString))
        {
            return new CosmosClient(options.ConnectionString, client);
        }

        var endpointText = options.Endpoint!.ToString();
        if (!string.IsNullOrEmpty(options.Key))
        {
            return new CosmosClient(endpointText, options.Key, client);
        }

        var credential = options.Credential
            ?? (options.ManagedIdentityClientId is { Length: > 0 } clientId
                ? new ManagedIdentityCredential(ManagedIdentityId.FromUserAssignedClientId(clientId))
                : new ManagedIdentityCredential(ManagedIdentityId.SystemAssigned));
        return new CosmosClient(endpointText, credential, client);
    }
}
