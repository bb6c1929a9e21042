using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Rollout.Storage.SqlServer;

namespace Rollout.Functions;

/// <summary>
/// At start-up, checks read-only that the Azure SQL database was set up for the served spec (the <c>rollout_*</c>
/// tables, change tracking, snapshot isolation: <see cref="SqlServerSchemaCheck"/>). The app's identity cannot create
/// them, so a database that was not set up stops the app at once, with every missing piece and the command that fixes
/// it, instead of failing in each timer. A database that cannot be reached is only a warning: the timers retry.
/// </summary>
/// <param name="read">Reads the database's state.</param>
/// <param name="fix">What to do when something is missing.</param>
/// <param name="logger">Logger.</param>
internal sealed partial class SqlServerStartupCheck(Func<CancellationToken, Task<SqlServerSchemaReport>> read, string fix, ILogger<SqlServerStartupCheck> logger) : IHostedService
{
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        SqlServerSchemaReport report;
        try
        {
            report = await read(cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (!(e is OperationCanceledException && cancellationToken.IsCancellationRequested))
        {
            LogCouldNotCheck(logger, e.GetType().Name, e.Message);
            return;
        }

        if (!report.IsReady)
        {
            var message = report.Describe(fix);
            LogNotSetUp(logger, message);
            throw new InvalidOperationException(message);
        }

        LogSetUp(logger, report.Database, report.Table.ToString());
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>The fix named in the message: the CLI command for the served spec, run by the database's administrator.</summary>
    /// <param name="specPath">The app's <c>Rollout:SpecPath</c>.</param>
    internal static string Fix(string specPath) =>
        $"Run the one-time set-up as the database's Entra ID administrator: `rollout sqlserver-script {specPath}` prints it (infra/README.md, \"One-time SQL set-up\"); the app's identity (db_datareader, db_datawriter) cannot create tables or turn change tracking on.";

    [LoggerMessage(4010, LogLevel.Critical, "The Azure SQL database is not set up for Rollout; the app stops: {Message}")]
    private static partial void LogNotSetUp(ILogger logger, string message);

    [LoggerMessage(4011, LogLevel.Warning, "Could not check the Azure SQL set-up at start-up ({Error}: {Detail}); starting anyway, the timers will retry")]
    private static partial void LogCouldNotCheck(ILogger logger, string error, string detail);

    [LoggerMessage(4012, LogLevel.Information, "Azure SQL set-up checked: {Database} is ready for {Table}")]
    private static partial void LogSetUp(ILogger logger, string database, string table);
}
