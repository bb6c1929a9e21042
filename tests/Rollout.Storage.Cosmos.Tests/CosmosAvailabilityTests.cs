using System.Net;

namespace Rollout.Storage.Cosmos.Tests;

/// <summary>Which Cosmos DB answers make the target unavailable (waited for, never dead-lettered) rather than refuse a document.</summary>
public sealed class CosmosAvailabilityTests
{
    [Theory]
    [InlineData(HttpStatusCode.Unauthorized, 0, true)]
    [InlineData(HttpStatusCode.Forbidden, 0, true)]
    [InlineData(HttpStatusCode.Forbidden, 5301, true)] // the identity lacks the data role
    [InlineData(HttpStatusCode.Forbidden, 1014, false)] // the document's logical partition is full: refused every time
    [InlineData(HttpStatusCode.RequestTimeout, 0, true)]
    [InlineData(HttpStatusCode.Gone, 1002, true)]
    [InlineData(HttpStatusCode.TooManyRequests, 3200, true)]
    [InlineData((HttpStatusCode)449, 0, true)]
    [InlineData(HttpStatusCode.InternalServerError, 0, true)]
    [InlineData(HttpStatusCode.ServiceUnavailable, 0, true)]
    [InlineData(HttpStatusCode.NotFound, 1003, true)] // the database or container is missing
    [InlineData(HttpStatusCode.NotFound, 0, false)]
    [InlineData(HttpStatusCode.BadRequest, 0, false)]
    [InlineData(HttpStatusCode.Conflict, 0, false)]
    [InlineData(HttpStatusCode.RequestEntityTooLarge, 0, false)]
    public void Throttling_timeouts_outages_missing_containers_and_refused_credentials_are_unavailability_not_a_bad_document(HttpStatusCode status, int subStatus, bool unavailable) =>
        Assert.Equal(unavailable, Rollout.Storage.Cosmos.CosmosTargetStore.IsUnavailable(status, subStatus));
}
