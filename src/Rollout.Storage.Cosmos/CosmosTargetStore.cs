using System.Collections.Concurrent;
using System.Net;
using System.Text.Json;
using Microsoft.Azure.Cosmos;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Rollout.Core.DataPath;
using Rollout.Core.Reconciliation;
using Rollout.Core.Spec;

namespace Rollout.Storage.Cosmos;

/// <summary>
/// The target document store on a Cosmos DB container. Each write is version-guarded and idempotent: the store
/// reads what the container holds for the source key, decides (apply only a newer version; a repair also at an
/// equal one; never over a newer one), then writes conditionally — a replace with <c>IfMatchEtag</c> of the item it
/// read, or a create where there was none — and on a lost race (412 or 409) reads again and decides again. Deletes
/// replace the item with a tombstone that keeps the version, so a late older upsert cannot resurrect the row.
/// Document id and partition key come from the translated document; the pipeline's fields (key, sort form,
/// version, content hash, tombstone) live in the item's <c>_rollout</c> property (see <see cref="CosmosDocuments"/>),
/// and reconciliation reads query by its sort form, in key order, and compute the digests in C# with the same
/// functions as the SQLite store (<see cref="RowDigest"/>, <see cref="QuickDigest"/>), so that both targets report
/// the same digests for the same content.
/// </summary>
/// <remarks>
/// <para>
/// Key-list reads (<see cref="ReadKeysAsync"/>) use the places (id and partition key) of the items this instance last saw for
/// each key in a range or key-list read (and moved itself): one <c>ReadMany</c> for the keys whose place it knows, and one
/// query on the sort form for the rest (keys it has not seen, or whose item is no longer at the place). A key moved to another
/// partition by another instance since its place was seen is found by that query once the move's delete of the older item has
/// happened; until then the older item is read (see the README).
/// </para>
/// There is no transaction across items: <see cref="ApplyAsync"/> applies each write on its own. A batch that fails
/// part-way is retried by the dual-write processor (the checkpoint moves only after a batch succeeded), and the
/// writes already applied are then stale no-ops. When a key's partition key changes between versions, the newer
/// item is written first and the older one deleted after; should the delete not happen (a crash in between), reads
/// take the item of the highest version for the key, and the key's next delete (or next move) removes the other one.
/// </remarks>
public sealed class CosmosTargetStore : ITargetStore, IReconcileTarget
{
    private const int PageSize = 1000;

    /// <summary>
    /// Distinct keys per round of <see cref="ReadKeysAsync"/>: one <c>ReadMany</c> (which the SDK sends as one query per partition
    /// key range, up to 1,000 items each) and at most one <c>IN</c> query with a parameter per key.
    /// </summary>
    internal const int KeysPerRead = 256;

    /// <summary>Places remembered at most; past this the memory starts again (a forgotten place costs a query, never a wrong answer).</summary>
    private const int MaxKnownPlaces = 65_536;

    /// <summary>Where the newest item of a key was seen, by the key's sort text.</summary>
    private readonly ConcurrentDictionary<string, ItemPlace> _places = new(StringComparer.Ordinal);

    private readonly Container _container;
    private readonly string _partitionKeyPath;
    private readonly string[] _partitionPath;
    private readonly int _maxConcurrency;
    private readonly int _maxRetries;
    private readonly ILogger _logger;

    /// <summary>Creates the store over a container.</summary>
    /// <param name="container">The container (its client configured by <see cref="CosmosClientFactory"/>).</param>
    /// <param name="partitionKeyPath">The container's partition key path, such as <c>/customerId</c>.</param>
    /// <param name="maxConcurrency">Writes of a batch in flight at once.</param>
    /// <param name="maxConcurrencyRetries">Re-reads of one write after lost races.</param>
    /// <param name="logger">Logger.</param>
    public CosmosTargetStore(Container container, string partitionKeyPath, int maxConcurrency = CosmosDefaults.MaxConcurrency,
        int maxConcurrencyRetries = CosmosDefaults.MaxConcurrencyRetries, ILogger<CosmosTargetStore>? logger = null)
    {
        ArgumentNullException.ThrowIfNull(container);
        if (!Identifiers.IsContainerName(container.Id))
        {
            throw new ArgumentException($"'{container.Id}' is not a container name.", nameof(container));
        }

        if (!CosmosDocuments.IsPartitionKeyPath(partitionKeyPath))
        {
            throw new ArgumentException($"'{partitionKeyPath}' is not a partition key path such as /customerId.", nameof(partitionKeyPath));
        }

        ArgumentOutOfRangeException.ThrowIfLessThan(maxConcurrency, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxConcurrencyRetries, 1);
        _container = container;
        _partitionKeyPath = partitionKeyPath;
        _partitionPath = CosmosDocuments.PathSegments(partitionKeyPath);
        _maxConcurrency = maxConcurrency;
        _maxRetries = maxConcurrencyRetries;
        _logger = (ILogger?)logger ?? NullLogger.Instance;
    }

    /// <summary>The container.</summary>
    public Container Container => _container;

    /// <summary>Test hook: runs after a write has decided and before its conditional write (to interleave a competing writer).</summary>
    internal Func<TargetWrite, Task>? BeforeConditionalWrite { get; set; }

    /// <summary>Key lookups that needed a query on the sort form (for tests of the write path's cost).</summary>
    internal int KeyQueries => _keyQueries;

    private int _keyQueries;

    /// <summary><c>ReadMany</c> requests made (writes and key-list reads).</summary>
    internal int ReadManyRequests => _readManyRequests;

    private int _readManyRequests;

    /// <summary>Queries of a key-list read for the keys whose place was not known.</summary>
    internal int KeyListQueries => _keyListQueries;

    private int _keyListQueries;

    /// <summary>Creates the database and the container (partitioned by the store's path) when they do not exist.</summary>
    /// <param name="throughput">Throughput of a new container, or null.</param>
    /// <param name="cancellationToken">Cancellation.</param>
    public async Task InitializeAsync(int? throughput = null, CancellationToken cancellationToken = default)
    {
        var database = await _container.Database.Client.CreateDatabaseIfNotExistsAsync(_container.Database.Id, cancellationToken: cancellationToken).ConfigureAwait(false);
        var container = await database.Database.CreateContainerIfNotExistsAsync(
            new ContainerProperties(_container.Id, _partitionKeyPath), throughput, cancellationToken: cancellationToken).ConfigureAwait(false);
        var existing = container.Resource.PartitionKeyPath;
        if (existing is not null && !string.Equals(existing, _partitionKeyPath, StringComparison.Ordinal))
        {
            throw new InvalidOperationException($"Container {_container.Id} is partitioned by {existing}, but the spec says {_partitionKeyPath}.");
        }

        Log.ContainerReady(_logger, _container.Database.Id, _container.Id, _partitionKeyPath);
    }

    /// <inheritdoc />
    public async Task<ApplyResult> ApplyAsync(IReadOnlyList<TargetWrite> writes, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(writes);
        if (writes.Count == 0)
        {
            return new ApplyResult(0, 0);
        }

        var prepared = new Prepared[writes.Count];
        for (var i = 0; i < writes.Count; i++)
        {
            prepared[i] = Prepared.Of(writes[i], _partitionPath);
        }

        try
        {
            // What the batch's documents' places hold, in one ReadMany instead of a point read per write.
            var places = await ReadPlacesAsync(prepared, cancellationToken).ConfigureAwait(false);
            var applied = 0;
            // Concurrent point operations; with bulk execution on, the SDK groups them into batches per partition.
            await Parallel.ForEachAsync(prepared, new ParallelOptions { MaxDegreeOfParallelism = _maxConcurrency, CancellationToken = cancellationToken }, async (write, ct) =>
            {
                if (await ApplyOneAsync(write, places, ct).ConfigureAwait(false))
                {
                    Interlocked.Increment(ref applied);
                }
            }).ConfigureAwait(false);
            return new ApplyResult(applied, writes.Count - applied);
        }
        catch (CosmosException e) when (IsUnavailable(e.StatusCode, e.SubStatusCode))
        {
            // The account, not the documents: the feed waits for it and dead-letters nothing.
            throw new TargetUnavailableException($"Cosmos DB did not take the writes ({(int)e.StatusCode} {e.StatusCode}, sub-status {e.SubStatusCode}): {e.Message}", e);
        }
    }

    /// <summary>
    /// Answers that say the account cannot take requests now (throttled, timed out, unavailable, a partition moving, the
    /// database or container missing) or refuses this caller (authentication, authorization): none is the fault of a
    /// document. Not 403 with sub-status 1014 (a logical partition is full): that is refused for the document's partition
    /// key every time, so it is counted and dead-lettered like any refused change.
    /// </summary>
    internal static bool IsUnavailable(HttpStatusCode status, int subStatus) => (int)status switch
    {
        403 => subStatus != PartitionKeyFull,
        404 => subStatus == ResourceNotFound,
        401 or 408 or 410 or 429 or 449 or >= 500 => true,
        _ => false,
    };

    /// <summary>403 sub-status: the logical partition has reached its maximum size.</summary>
    private const int PartitionKeyFull = 1014;

    /// <summary>404 sub-status: the database or container does not exist.</summary>
    private const int ResourceNotFound = 1003;

    /// <summary>A write with its item body and partition key worked out once.</summary>
    private sealed record Prepared(TargetWrite Write, byte[]? LiveBody, PartitionKey LivePartitionKey)
    {
        public string PlaceKey => Place(Write.Document!.Id, LivePartitionKey);

        public static Prepared Of(TargetWrite write, string[] partitionPath)
        {
            if (write.Document is null)
            {
                return new Prepared(write, null, default);
            }

            var (body, partitionKey) = CosmosDocuments.Live(write, partitionPath);
            return new Prepared(write, body, partitionKey);
        }
    }

    private static string Place(string id, PartitionKey partitionKey) => partitionKey.ToString() + "\n" + id;

    private async Task<Dictionary<string, StoredItem>> ReadPlacesAsync(Prepared[] prepared, CancellationToken cancellationToken)
    {
        var places = new Dictionary<string, StoredItem>(StringComparer.Ordinal);
        var wanted = prepared.Where(p => p.LiveBody is not null)
            .DistinctBy(p => p.PlaceKey)
            .Select(p => (p.Write.Document!.Id, p.LivePartitionKey))
            .ToList();
        if (wanted.Count == 0)
        {
            return places;
        }

        foreach (var item in await ReadManyAsync(wanted, foreignIsError: true, cancellationToken).ConfigureAwait(false))
        {
            places[Place(item.Id, item.PartitionKey)] = item;
        }

        return places;
    }

    /// <summary>The items at the given places, in one <c>ReadMany</c>; an item not written by Rollout fails or is left out.</summary>
    private async Task<List<StoredItem>> ReadManyAsync(IReadOnlyList<(string Id, PartitionKey PartitionKey)> places, bool foreignIsError, CancellationToken cancellationToken)
    {
        Interlocked.Increment(ref _readManyRequests);
        using var response = await _container.ReadManyItemsStreamAsync(places, cancellationToken: cancellationToken).ConfigureAwait(false);
        response.EnsureSuccessStatusCode();
        using var json = await JsonDocument.ParseAsync(response.Content, cancellationToken: cancellationToken).ConfigureAwait(false);
        var items = new List<StoredItem>();
        foreach (var element in json.RootElement.GetProperty("Documents").EnumerateArray())
        {
            if (CosmosDocuments.Read(element, _partitionPath) is { } item)
            {
                items.Add(item);
            }
            else if (foreignIsError)
            {
                throw NotOurs(element.GetProperty("id").GetString());
            }
        }

        return items;
    }

    private static InvalidOperationException NotOurs(string? id) =>
        new($"Item '{id}' exists but was not written by Rollout (no {CosmosDocuments.SystemProperty} property); the target container must be Rollout's alone.");

    /// <summary>Applies one write; true when it changed the container, false when the container already held the same or a newer version.</summary>
    private async Task<bool> ApplyOneAsync(Prepared prepared, Dictionary<string, StoredItem> places, CancellationToken cancellationToken)
    {
        var (write, liveBody, livePartitionKey) = prepared;
        for (var attempt = 1; ; attempt++)
        {
            // What the container holds for the key: the item at the document's place when it is the key's (from the
            // batch's ReadMany on the first attempt, a point read after a lost race), else every item of the key (a
            // query on the sort form).
            IReadOnlyList<StoredItem> items;
            StoredItem? atPlace = null;
            if (write.Document is { } doc)
            {
                atPlace = attempt == 1
                    ? places.GetValueOrDefault(prepared.PlaceKey)
                    : await ReadItemAsync(doc.Id, livePartitionKey, cancellationToken).ConfigureAwait(false);
                if (atPlace is not null && !atPlace.Key.Equals(write.Key))
                {
                    throw new InvalidOperationException(
                        $"Item '{doc.Id}' in partition {atPlace.PartitionKeyJson} belongs to source key {atPlace.Key}, not {write.Key}: the mapping gives two rows the same id and partition key.");
                }
            }

            items = atPlace is not null ? [atPlace] : await QueryKeyAsync(write.Key, cancellationToken).ConfigureAwait(false);
            var current = Newest(items);
            if (current is not null && !(write.SourceVersion > current.Version || (write.Repair && write.SourceVersion == current.Version)))
            {
                return false;
            }

            string id;
            PartitionKey partitionKey;
            byte[] body;
            if (liveBody is not null)
            {
                id = write.Document!.Id;
                partitionKey = livePartitionKey;
                body = liveBody;
            }
            else if (current is not null)
            {
                // The tombstone takes the place of the newest item, keeping its id and partition key.
                id = current.Id;
                partitionKey = current.PartitionKey;
                body = CosmosDocuments.Tombstone(write, id, current.PartitionKeyJson, _partitionPath);
            }
            else
            {
                id = CosmosDocuments.TombstoneId(write.Key);
                partitionKey = new PartitionKey(id);
                body = CosmosDocuments.Tombstone(write, id, JsonSerializer.Serialize(id), _partitionPath);
            }

            var existing = items.FirstOrDefault(i => i.SamePlace(id, partitionKey));
            if (BeforeConditionalWrite is { } hook)
            {
                await hook(write).ConfigureAwait(false);
            }

            using var stream = new MemoryStream(body, writable: false);
            using var response = existing is null
                ? await _container.CreateItemStreamAsync(stream, partitionKey, cancellationToken: cancellationToken).ConfigureAwait(false)
                : await _container.ReplaceItemStreamAsync(stream, id, partitionKey, new ItemRequestOptions { IfMatchEtag = existing.ETag }, cancellationToken).ConfigureAwait(false);
            if (response.StatusCode is HttpStatusCode.PreconditionFailed or HttpStatusCode.Conflict)
            {
                // Someone wrote the key between the read and the write: read again and decide again.
                Log.ConcurrencyRetry(_logger, write.Key.Text, (int)response.StatusCode, attempt);
                if (attempt >= _maxRetries)
                {
                    // Counted like a refusal: contention passes, and a key that loses every time (a unique key policy's conflict
                    // looks the same) must not block the feed; after the retry limit it is dead-lettered with this reason.
                    throw new InvalidOperationException($"Write of {write.Key} lost {attempt} optimistic-concurrency races in a row; giving up (the batch is retried).");
                }

                continue;
            }

            response.EnsureSuccessStatusCode();
            var sort = CosmosDocuments.SortText(write.Key);
            if (_places.ContainsKey(sort))
            {
                // This instance moved (or re-placed) a key it had seen: its key-list reads go to the new place.
                _places[sort] = new ItemPlace(id, partitionKey);
            }

            foreach (var other in items.Where(i => !i.SamePlace(id, partitionKey)))
            {
                // The key moved to another partition (or a tombstone without a place is replaced): remove the older item.
                using var deleted = await _container.DeleteItemStreamAsync(other.Id, other.PartitionKey, new ItemRequestOptions { IfMatchEtag = other.ETag }, cancellationToken).ConfigureAwait(false);
                if (deleted.StatusCode is not (HttpStatusCode.NotFound or HttpStatusCode.PreconditionFailed))
                {
                    deleted.EnsureSuccessStatusCode();
                }
            }

            return true;
        }
    }

    /// <inheritdoc />
    public async Task<TargetDocument?> GetAsync(SourceKey key, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(key);
        return Newest(await QueryKeyAsync(key, cancellationToken).ConfigureAwait(false))?.ToDocument();
    }

    /// <inheritdoc />
    public async Task<IReadOnlyList<TargetEntry>> ReadRangeAsync(SourceKey? after, SourceKey? upTo, bool withHashes, CancellationToken cancellationToken)
    {
        var items = await ReadRangeItemsAsync(after, upTo, cancellationToken).ConfigureAwait(false);
        // The reconciler reads a range's entries to classify them, and then may read the drifted keys again (ReadKeysAsync).
        Remember(items);
        return items.Select(i => i.ToEntry(withHashes)).ToList();
    }

    /// <summary>
    /// None: a container has no triggers that run on every write (Cosmos DB runs a trigger only when the writer asks for
    /// it), so a write that bypassed the pipeline would not update a bucket. Quick reconciliation computes range digests.
    /// </summary>
    /// <param name="maxBuckets">Unused.</param>
    /// <param name="cancellationToken">Unused.</param>
    public Task<QuickBuckets?> QuickBucketsAsync(int maxBuckets, CancellationToken cancellationToken) => Task.FromResult<QuickBuckets?>(null);

    /// <inheritdoc />
    public async Task<RangeDigest> QuickDigestAsync(SourceKey? after, SourceKey? upTo, CancellationToken cancellationToken) =>
        Sum(await ReadRangeItemsAsync(after, upTo, cancellationToken).ConfigureAwait(false), i => i.Quick);

    /// <inheritdoc />
    public async Task<RangeDigest> DigestAsync(SourceKey? after, SourceKey? upTo, CancellationToken cancellationToken) =>
        Sum(await ReadRangeItemsAsync(after, upTo, cancellationToken).ConfigureAwait(false), i => i.Digest);

    /// <inheritdoc />
    public async Task<UnmatchedEntries> ReadUnmatchedAsync(SourceKey? after, SourceKey? upTo, IReadOnlyList<ExpectedDigest> expected, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(expected);
        var items = await ReadRangeItemsAsync(after, upTo, cancellationToken).ConfigureAwait(false);
        var matched = new bool[expected.Count];
        var entries = new List<TargetEntry>();
        var unmatched = new List<StoredItem>();
        var next = 0;
        foreach (var item in items)
        {
            var sort = item.Key.Sort;
            while (next < expected.Count && SortKey.Compare(expected[next].Sort, sort) < 0)
            {
                next++;
            }

            if (next < expected.Count && SortKey.Compare(expected[next].Sort, sort) == 0)
            {
                if (!item.IsTombstone && !item.Tampered && item.Digest == expected[next].Digest)
                {
                    matched[next++] = true;
                    continue;
                }

                next++;
            }

            entries.Add(item.ToEntry(withHash: true));
            unmatched.Add(item);
        }

        Remember(unmatched);
        return new UnmatchedEntries(matched, entries, items.Count);
    }

    /// <inheritdoc />
    /// <remarks>
    /// Per <see cref="KeysPerRead"/> distinct keys: one <c>ReadMany</c> of the places where this instance last saw the keys' items,
    /// then one query on the sort form (<c>_rollout.sort IN (@k0, …)</c>, the lookup the write path uses for a key without a
    /// place, for all of them at once) for the keys whose place it does not know or whose item is no longer there.
    /// </remarks>
    public async Task<IReadOnlyList<TargetEntry?>> ReadKeysAsync(IReadOnlyList<SourceKey> keys, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(keys);
        var sorts = keys.Select(CosmosDocuments.SortText).ToArray();
        var found = new Dictionary<string, StoredItem>(StringComparer.Ordinal);
        foreach (var chunk in sorts.Distinct(StringComparer.Ordinal).Chunk(KeysPerRead))
        {
            var known = new Dictionary<string, string>(StringComparer.Ordinal); // place -> sort text of the key seen there
            var places = new List<(string, PartitionKey)>();
            foreach (var sort in chunk)
            {
                if (_places.TryGetValue(sort, out var place) && known.TryAdd(Place(place.Id, place.PartitionKey), sort))
                {
                    places.Add((place.Id, place.PartitionKey));
                }
            }

            if (places.Count > 0)
            {
                foreach (var item in await ReadManyAsync(places, foreignIsError: false, cancellationToken).ConfigureAwait(false))
                {
                    // Only the key's own item counts: a place can have been taken by another key since it was seen.
                    var sort = CosmosDocuments.SortText(item.Key);
                    if (known.TryGetValue(Place(item.Id, item.PartitionKey), out var expected) && string.Equals(expected, sort, StringComparison.Ordinal))
                    {
                        found[sort] = item;
                    }
                }
            }

            var unknown = chunk.Where(sort => !found.ContainsKey(sort)).ToArray();
            if (unknown.Length > 0)
            {
                foreach (var item in await QueryKeysAsync(unknown, cancellationToken).ConfigureAwait(false))
                {
                    // A key can have two items after a partition key move whose delete was lost: the newest is the key's.
                    var sort = CosmosDocuments.SortText(item.Key);
                    if (!found.TryGetValue(sort, out var other) || item.Version > other.Version)
                    {
                        found[sort] = item;
                    }
                }

                foreach (var sort in unknown.Where(sort => !found.ContainsKey(sort)))
                {
                    _places.TryRemove(sort, out _);
                }
            }

            Remember(chunk.Select(sort => found.GetValueOrDefault(sort)).OfType<StoredItem>().ToList());
        }

        var result = new TargetEntry?[keys.Count];
        for (var i = 0; i < sorts.Length; i++)
        {
            result[i] = found.TryGetValue(sorts[i], out var item) ? item.ToEntry(withHash: true) : null;
        }

        return result;
    }

    /// <summary>Keeps the places of items read, for later key-list reads (bounded: the memory starts again when full).</summary>
    private void Remember(IReadOnlyList<StoredItem> items)
    {
        if (items.Count == 0)
        {
            return;
        }

        if (_places.Count + items.Count > MaxKnownPlaces)
        {
            _places.Clear();
        }

        foreach (var item in items.Take(MaxKnownPlaces))
        {
            _places[CosmosDocuments.SortText(item.Key)] = new ItemPlace(item.Id, item.PartitionKey);
        }
    }

    private Task<List<StoredItem>> QueryKeysAsync(string[] sorts, CancellationToken cancellationToken)
    {
        Interlocked.Increment(ref _keyListQueries);
        var names = sorts.Select((_, i) => "@k" + i.ToString(System.Globalization.CultureInfo.InvariantCulture)).ToArray();
        var query = new QueryDefinition($"SELECT * FROM c WHERE c.{CosmosDocuments.SystemProperty}.sort IN ({string.Join(", ", names)})");
        for (var i = 0; i < names.Length; i++)
        {
            query = query.WithParameter(names[i], sorts[i]);
        }

        return QueryAsync(query, cancellationToken);
    }

    private readonly record struct ItemPlace(string Id, PartitionKey PartitionKey);

    private static RangeDigest Sum(IReadOnlyList<StoredItem> items, Func<StoredItem, long> digest)
    {
        long count = 0, sum = 0, tampered = 0;
        foreach (var item in items.Where(i => !i.IsTombstone))
        {
            count++;
            sum += digest(item);
            tampered += item.Tampered ? 1 : 0;
        }

        return new RangeDigest(count, sum, tampered);
    }

    private static StoredItem? Newest(IReadOnlyList<StoredItem> items) => items.Count == 0 ? null : items.MaxBy(i => i.Version);

    /// <summary>The items of a key range in key order, one per key (the newest, should a key have two; see the remarks).</summary>
    private async Task<IReadOnlyList<StoredItem>> ReadRangeItemsAsync(SourceKey? after, SourceKey? upTo, CancellationToken cancellationToken)
    {
        var conditions = new List<string>(2) { $"IS_DEFINED(c.{CosmosDocuments.SystemProperty}.sort)" };
        if (after is not null)
        {
            conditions.Add($"c.{CosmosDocuments.SystemProperty}.sort > @after");
        }

        if (upTo is not null)
        {
            conditions.Add($"c.{CosmosDocuments.SystemProperty}.sort <= @upTo");
        }

        var query = new QueryDefinition($"SELECT * FROM c WHERE {string.Join(" AND ", conditions)} ORDER BY c.{CosmosDocuments.SystemProperty}.sort");
        if (after is not null)
        {
            query = query.WithParameter("@after", CosmosDocuments.SortText(after));
        }

        if (upTo is not null)
        {
            query = query.WithParameter("@upTo", CosmosDocuments.SortText(upTo));
        }

        var items = await QueryAsync(query, cancellationToken).ConfigureAwait(false);
        var result = new List<StoredItem>(items.Count);
        foreach (var item in items)
        {
            if (result.Count > 0 && SortKey.Compare(result[^1].Key.Sort, item.Key.Sort) == 0)
            {
                if (item.Version > result[^1].Version)
                {
                    result[^1] = item;
                }

                continue;
            }

            if (result.Count > 0 && SortKey.Compare(result[^1].Key.Sort, item.Key.Sort) > 0)
            {
                throw new InvalidOperationException("The container returned items out of key order.");
            }

            result.Add(item);
        }

        return result;
    }

    private Task<List<StoredItem>> QueryKeyAsync(SourceKey key, CancellationToken cancellationToken)
    {
        Interlocked.Increment(ref _keyQueries);
        return QueryAsync(
            new QueryDefinition($"SELECT * FROM c WHERE c.{CosmosDocuments.SystemProperty}.sort = @sort").WithParameter("@sort", CosmosDocuments.SortText(key)),
            cancellationToken);
    }

    private async Task<List<StoredItem>> QueryAsync(QueryDefinition query, CancellationToken cancellationToken)
    {
        var items = new List<StoredItem>();
        using var iterator = _container.GetItemQueryStreamIterator(query, requestOptions: new QueryRequestOptions { MaxItemCount = PageSize });
        while (iterator.HasMoreResults)
        {
            using var page = await iterator.ReadNextAsync(cancellationToken).ConfigureAwait(false);
            page.EnsureSuccessStatusCode();
            using var json = await JsonDocument.ParseAsync(page.Content, cancellationToken: cancellationToken).ConfigureAwait(false);
            foreach (var element in json.RootElement.GetProperty("Documents").EnumerateArray())
            {
                if (CosmosDocuments.Read(element, _partitionPath) is { } item)
                {
                    items.Add(item);
                }
            }
        }

        return items;
    }

    private async Task<StoredItem?> ReadItemAsync(string id, PartitionKey partitionKey, CancellationToken cancellationToken)
    {
        using var response = await _container.ReadItemStreamAsync(id, partitionKey, cancellationToken: cancellationToken).ConfigureAwait(false);
        if (response.StatusCode == HttpStatusCode.NotFound)
        {
            return null;
        }

        response.EnsureSuccessStatusCode();
        using var json = await JsonDocument.ParseAsync(response.Content, cancellationToken: cancellationToken).ConfigureAwait(false);
        return CosmosDocuments.Read(json.RootElement, _partitionPath) ?? throw NotOurs(id);
    }
}
