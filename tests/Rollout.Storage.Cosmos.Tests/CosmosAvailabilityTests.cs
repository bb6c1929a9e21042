using System.Net;

namespace Rollout.Storage.Cosmos.Tests;

/// <summary>Which Cosmos DB answers make the target unavailable (waited for, never dead-lettered) rather than refuse a document.</summary>
public sealed class CosmosAvailabilityTests
{
    [Theory]
    [InlineData(HttpStatusCode.Unauthorized, true)]
    [InlineData(HttpStatusCode.Forbidden, true)]
    [InlineData(HttpStatusCode.RequestTimeout, true)]
    [InlineData(HttpStatusCode.Gone, true)]
    [InlineData(HttpStatusCode.TooManyRequests, true)]
    [InlineData((HttpStatusCode)449, true)]
    [InlineData(HttpStatusCode.InternalServerError, true)]
    [InlineData(HttpStatusCode.ServiceUnavailable, true)]
    [InlineData(HttpStatusCode.BadRequest, false)]
    [InlineData(HttpStatusCode.Conflict, false)]
    [InlineData(HttpStatusCode.RequestEntityTooLarge, false)]
    [InlineData(HttpStatusCode.NotFound, false)]
    public void Throttling_timeouts_outages_and_refused_credentials_are_unavailability_not_a_bad_document(HttpStatusCode status, bool unavailable) =>
        Assert.Equal(unavailable, Rollout.Storage.Cosmos.CosmosTargetStore.IsUnavailable(status));
}
