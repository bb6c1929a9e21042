using System.Net;
using System.Security.Cryptography.X509Certificates;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace Rollout.Storage.Cosmos.Tests;

/// <summary>
/// A test-only HTTPS proxy (Kestrel on 127.0.0.1) in front of <c>@vercel/cosmosdb-server</c>, which it reaches over plain
/// HTTP on loopback. It fixes the two gaps of that server that the Cosmos SDK trips over, and forwards everything else
/// unchanged:
/// <list type="bullet">
/// <item>The SDK asks the gateway for a query plan (header <c>x-ms-cosmos-is-query-plan-request</c>) before any
/// cross-partition query; the server does not know that request. The proxy answers with a plan of one partition key range
/// and no client-side work (no ORDER BY merge, no aggregates), so the SDK sends the query as is to the server's single
/// range, and the server evaluates WHERE and ORDER BY itself.</item>
/// <item>A point read of a missing item answers 500 (the server dereferences the missing item); the proxy turns a 500 on
/// <c>GET …/docs/{id}</c> into the 404 <c>NotFound</c> Cosmos DB answers.</item>
/// </list>
/// It serves the certificate shipped with the server package (self-signed, for localhost), which the client accepts
/// for this loopback endpoint only.
/// </summary>
internal sealed class CosmosQueryProxy : IAsyncDisposable
{
    private const string QueryPlan = """
        {"partitionedQueryExecutionInfoVersion":2,"queryInfo":{"distinctType":"None","top":null,"offset":null,"limit":null,"orderBy":[],"orderByExpressions":[],"groupByExpressions":[],"groupByAliases":[],"aggregates":[],"groupByAliasToAggregateType":{},"rewrittenQuery":"","hasSelectValue":false,"dCountInfo":null,"hasNonStreamingOrderBy":false},"queryRanges":[{"min":"","max":"FF","isMinInclusive":true,"isMaxInclusive":false}]}
        """;

    private static readonly HashSet<string> HopHeaders = new(StringComparer.OrdinalIgnoreCase)
    {
        "Connection", "Keep-Alive", "Transfer-Encoding", "Upgrade", "Host", "Content-Length", "Content-Type", "Expect",
    };

    private readonly WebApplication _app;
    private readonly HttpClient _upstream;

    private CosmosQueryProxy(WebApplication app, HttpClient upstream, Uri endpoint)
    {
        _app = app;
        _upstream = upstream;
        Endpoint = endpoint;
    }

    public Uri Endpoint { get; }

    /// <summary>The number of query-plan requests answered (tests can tell the SDK went through the proxy).</summary>
    public int QueryPlansServed => _queryPlans;

    private int _queryPlans;

    public static async Task<CosmosQueryProxy> StartAsync(int port, Uri upstream, X509Certificate2 certificate)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, port, l => l.UseHttps(certificate)));
        var app = builder.Build();
        var client = new HttpClient(new SocketsHttpHandler { UseCookies = false, AllowAutoRedirect = false }) { BaseAddress = upstream };
        var proxy = new CosmosQueryProxy(app, client, new Uri($"https://127.0.0.1:{port}/"));
        app.Run(proxy.HandleAsync);
        await app.StartAsync();
        return proxy;
    }

    private async Task HandleAsync(HttpContext context)
    {
        var request = context.Request;
        if (HttpMethods.IsPost(request.Method) && string.Equals(request.Headers["x-ms-cosmos-is-query-plan-request"], "True", StringComparison.OrdinalIgnoreCase))
        {
            Interlocked.Increment(ref _queryPlans);
            context.Response.StatusCode = 200;
            context.Response.ContentType = "application/json";
            context.Response.Headers["x-ms-request-charge"] = "0";
            context.Response.Headers["x-ms-activity-id"] = Guid.NewGuid().ToString();
            await context.Response.WriteAsync(QueryPlan);
            return;
        }

        using var forward = new HttpRequestMessage(new HttpMethod(request.Method), request.Path + request.QueryString);
        if (request.ContentLength > 0 || request.Headers.TransferEncoding.Count > 0)
        {
            var body = new MemoryStream();
            await request.Body.CopyToAsync(body);
            body.Position = 0;
            forward.Content = new StreamContent(body);
            if (request.ContentType is { } contentType)
            {
                forward.Content.Headers.TryAddWithoutValidation("Content-Type", contentType);
            }
        }

        foreach (var header in request.Headers.Where(h => !HopHeaders.Contains(h.Key)))
        {
            forward.Headers.TryAddWithoutValidation(header.Key, header.Value.ToArray());
        }

        using var response = await _upstream.SendAsync(forward, HttpCompletionOption.ResponseContentRead, context.RequestAborted);
        var content = await response.Content.ReadAsByteArrayAsync(context.RequestAborted);
        var status = (int)response.StatusCode;
        if (status == 500 && HttpMethods.IsGet(request.Method) && IsItemPath(request.Path))
        {
            status = 404;
            content = """{"code":"NotFound","message":"Entity with the specified id does not exist in the system."}"""u8.ToArray();
        }

        context.Response.StatusCode = status;
        foreach (var header in response.Headers.Concat(response.Content.Headers).Where(h => !HopHeaders.Contains(h.Key)))
        {
            context.Response.Headers[header.Key] = header.Value.ToArray();
        }

        context.Response.ContentType = "application/json";
        context.Response.ContentLength = content.Length;
        await context.Response.Body.WriteAsync(content, context.RequestAborted);
    }

    /// <summary><c>/dbs/{db}/colls/{coll}/docs/{id}</c>.</summary>
    private static bool IsItemPath(PathString path)
    {
        var segments = (path.Value ?? string.Empty).Trim('/').Split('/');
        return segments.Length == 6 && segments[0] == "dbs" && segments[2] == "colls" && segments[4] == "docs";
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
        _upstream.Dispose();
    }
}
