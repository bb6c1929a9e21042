using System.Globalization;
using System.Text.RegularExpressions;

namespace Rollout.Storage.SqlServer.Tests;

internal static partial class SqlAssert
{
    /// <summary>
    /// Every <c>@name</c> the text uses (other than the given local variables and procedure argument names) is supplied as a
    /// parameter, every parameter is used, and no parameter's value appears in the text.
    /// </summary>
    public static void Parameterised(SqlStatement statement, params string[] locals)
    {
        var referenced = ParameterRegex().Matches(statement.Text).Select(m => m.Groups[1].Value)
            .Where(n => !locals.Contains(n, StringComparer.OrdinalIgnoreCase)).ToHashSet(StringComparer.Ordinal);
        var supplied = statement.Parameters.Select(p => p.ParameterName).ToHashSet(StringComparer.Ordinal);
        Assert.True(referenced.SetEquals(supplied), $"referenced {string.Join(",", referenced)}; supplied {string.Join(",", supplied)}");
        foreach (var parameter in statement.Parameters.Where(p => p.Value is not null and not DBNull))
        {
            var text = parameter.Value is DateTimeOffset d ? d.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture) : Convert.ToString(parameter.Value, CultureInfo.InvariantCulture)!;
            Assert.DoesNotContain(text, statement.Text, StringComparison.Ordinal);
        }
    }

    // A parameter or variable reference: not @@ROWCOUNT, not a procedure's argument name (followed by " = @" or " = '").
    [GeneratedRegex(@"(?<![@\w])((?>@[A-Za-z_]\w*))(?!\s*=\s*[@'])")]
    private static partial Regex ParameterRegex();
}
