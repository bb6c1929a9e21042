using System.CommandLine;
using Rollout.Storage.SqlServer;
using Spectre.Console;

namespace Rollout.Cli.Commands;

/// <summary>
/// <c>rollout sqlserver-script &lt;spec&gt;</c>: the one-time, idempotent Azure SQL / SQL Server set-up of a spec (change
/// tracking on the database and the source table, snapshot isolation, the <c>rollout_*</c> tables), for an administrator
/// to run: the application's identity cannot (it has only db_datareader and db_datawriter).
/// </summary>
internal static class SqlServerScriptCommand
{
    public static Command Create(IAnsiConsole console)
    {
        var spec = new Argument<FileInfo>("spec") { Description = "Path to a *.rollout.json file." };
        var command = new Command("sqlserver-script", "Print the one-time SQL Server / Azure SQL set-up script of a spec (idempotent; run it as the database's administrator, e.g. with sqlcmd).") { spec };
        command.SetAction(parse =>
        {
            var (loaded, code) = SpecFile.LoadValid(parse.GetValue(spec)!, parse.InvocationConfiguration.Error);
            if (loaded is null)
            {
                return code;
            }

            // Written as is, not rendered: a console renderer would wrap long lines, and the output is meant for a file.
            console.Profile.Out.Writer.Write(SqlServerSchema.Script(SqlServerTableName.Parse(loaded.Source.Table)));
            console.Profile.Out.Writer.Flush();
            return ExitCodes.Ok;
        });
        return command;
    }
}
