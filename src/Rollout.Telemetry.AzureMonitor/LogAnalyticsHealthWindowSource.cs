using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using Azure.Core;
using Microsoft.Extensions.Logging;
using Rollout.Core.Health;

namespace Rollout.Telemetry.AzureMonitor;

/// <summary>
/// The health window of a feature read from the Log Analytics workspace behind Application Insights, through the
/// query HTTP API (<c>POST {endpoint}/v1/workspaces/{id}/query</c>) with an Entra ID token (the Function app's
/// managed identity in Azure; it needs the Log Analytics Reader role on the workspace). The window is shifted back by
/// <see cref="RolloutAzureMonitorOptions.IngestionDelay"/>: what the workspace holds lags the application.
/// </summary>
/// <param name="http">The HTTP client.</param>
/// <param name="credential">The credential of the token.</param>
/// <param name="options">Workspace and endpoint.</param>
/// <param name="logger">Logger.</param>
public sealed partial class LogAnalyticsHealthWindowSource(HttpClient http, TokenCredential credential, RolloutAzureMonitorOptions options, ILogger<LogAnalyticsHealthWindowSource> logger) : IHealthWindowSource
{
    /// <inheritdoc />
    /// <exception cref="LogAnalyticsQueryException">The query API refused the query or failed.</exception>
    public async Task<HealthWindow> QueryWindowAsync(string feature, DateTimeOffset from, DateTimeOffset to, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(options);
        (from, to) = (from - options.IngestionDelay, to - options.IngestionDelay);
        var query = LogAnalyticsHealthQuery.Build(feature, from, to);
        var scope = new Uri(options.QueryEndpoint, "/.default").ToString();
        var token = await credential.GetTokenAsync(new TokenRequestContext([scope]), cancellationToken).ConfigureAwait(false);
        using var request = new HttpRequestMessage(HttpMethod.Post, new Uri(options.QueryEndpoint, $"v1/workspaces/{Uri.EscapeDataString(options.WorkspaceId!)}/query"))
        {
            Content = JsonContent.Create(new { query, timespan = $"{from.UtcDateTime:O}/{to.UtcDateTime:O}" }),
        };
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token.Token);
        using var response = await http.SendAsync(request, cancellationToken).ConfigureAwait(false);
        var body = await response.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false);
        if (!response.IsSuccessStatusCode)
        {
            var message = ErrorMessage(body);
            LogQueryFailed(logger, feature, (int)response.StatusCode, message);
            throw new LogAnalyticsQueryException(
                $"The Log Analytics query for '{feature}' failed with {(int)response.StatusCode} {response.ReasonPhrase}: {message}. " +
                "Check Rollout:AzureMonitor:WorkspaceId and that the app's identity has the Log Analytics Reader role on the workspace.");
        }

        using var answer = JsonDocument.Parse(body);
        var window = LogAnalyticsHealthQuery.Read(answer.RootElement);
        LogQueried(logger, feature, window.Candidate.Count, window.Legacy.Count, window.Drift.Compared);
        return window;
    }

    private static string ErrorMessage(string body)
    {
        try
        {
            using var error = JsonDocument.Parse(body);
            if (error.RootElement.TryGetProperty("error", out var e))
            {
                var code = e.TryGetProperty("code", out var c) ? c.GetString() : null;
                var message = e.TryGetProperty("message", out var m) ? m.GetString() : null;
                var inner = e.TryGetProperty("innererror", out var i) && i.TryGetProperty("message", out var im) ? im.GetString() : null;
                return string.Join(": ", new[] { code, message, inner }.Where(s => !string.IsNullOrEmpty(s)));
            }
        }
        catch (JsonException)
        {
        }

        return body.Length > 300 ? body[..300] : body;
    }

    [LoggerMessage(1, LogLevel.Information, "Health window of {Feature} from Log Analytics: new path n={Candidate}, legacy n={Legacy}, {Compared} keys compared")]
    private static partial void LogQueried(ILogger logger, string feature, long candidate, long legacy, long compared);

    [LoggerMessage(2, LogLevel.Warning, "Log Analytics query for {Feature} failed ({Status}): {Message}")]
    private static partial void LogQueryFailed(ILogger logger, string feature, int status, string message);
}

/// <summary>The Log Analytics query API refused a query or failed.</summary>
public sealed class LogAnalyticsQueryException : Exception
{
    /// <summary>Creates the exception.</summary>
    public LogAnalyticsQueryException()
    {
    }

    /// <summary>Creates the exception.</summary>
    /// <param name="message">What went wrong and what to check.</param>
    public LogAnalyticsQueryException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception.</summary>
    /// <param name="message">What went wrong.</param>
    /// <param name="inner">The cause.</param>
    public LogAnalyticsQueryException(string message, Exception inner)
        : base(message, inner)
    {
    }
}
