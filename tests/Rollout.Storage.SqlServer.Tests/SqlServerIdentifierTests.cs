namespace Rollout.Storage.SqlServer.Tests;

public sealed class SqlServerIdentifierTests
{
    [Theory]
    [InlineData("Orders", "[Orders]")]
    [InlineData("a]b", "[a]]b]")]
    [InlineData("]]", "[]]]]]")]
    [InlineData("x[y", "[x[y]")]
    [InlineData("a]; DROP TABLE t;--", "[a]]; DROP TABLE t;--]")]
    public void Quote_brackets_the_name_and_doubles_every_closing_bracket(string name, string expected) =>
        Assert.Equal(expected, SqlServerIdentifier.Quote(name));

    [Fact]
    public void Quote_rejects_empty_and_overlong_names()
    {
        Assert.Throws<ArgumentException>(() => SqlServerIdentifier.Quote(string.Empty));
        Assert.Throws<ArgumentException>(() => SqlServerIdentifier.Quote(new string('a', 129)));
    }

    [Theory]
    [InlineData("a]b")]
    [InlineData("Total Cents")]
    [InlineData("x;--")]
    [InlineData("[Id]")]
    public void A_column_name_from_a_spec_must_be_a_plain_identifier(string name) =>
        Assert.Throws<ArgumentException>(() => SqlServerIdentifier.Column(name));

    [Theory]
    [InlineData("Orders", "dbo", "Orders", "[dbo].[Orders]")]
    [InlineData("sales.Orders", "sales", "Orders", "[sales].[Orders]")]
    public void A_table_name_is_schema_and_table_defaulting_to_dbo(string name, string schema, string table, string quoted)
    {
        var parsed = SqlServerTableName.Parse(name);
        Assert.Equal((schema, table, quoted), (parsed.Schema, parsed.Table, parsed.Quoted));
    }

    [Theory]
    [InlineData("dbo.a]b")]
    [InlineData("a]b")]
    [InlineData("db.dbo.Orders")]
    [InlineData("dbo.")]
    [InlineData("dbo.Orders; DROP TABLE x")]
    public void A_hostile_or_malformed_table_name_is_rejected(string name) =>
        Assert.Throws<ArgumentException>(() => SqlServerTableName.Parse(name));

    [Fact]
    public void The_source_store_validates_every_name_before_any_connection()
    {
        var connections = new SqlServerConnectionFactory("Server=127.0.0.1,1;Database=none");
        Assert.Throws<ArgumentException>(() => new SqlServerSourceStore(connections, "dbo.a]b", ["Id"], []));
        Assert.Throws<ArgumentException>(() => new SqlServerSourceStore(connections, "Orders", ["a]b"], []));
        Assert.Throws<ArgumentException>(() => new SqlServerSourceStore(connections, "Orders", ["Id"], ["Total]Cents"]));
        Assert.Throws<ArgumentException>(() => new SqlServerSourceStore(connections, "Orders", [], []));
    }

    [Fact]
    public void A_connection_string_that_cannot_be_parsed_is_not_repeated_in_the_error()
    {
        var error = Assert.Throws<ArgumentException>(() => new SqlServerConnectionFactory("Server=db;Password=hunter2;NoSuchKeyword=1"));
        Assert.DoesNotContain("hunter2", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void The_factory_describes_itself_by_server_and_database_only()
    {
        var factory = new SqlServerConnectionFactory("Server=tcp:db.example.net,1433;Database=orders;User ID=app;Password=hunter2");
        Assert.Equal("tcp:db.example.net,1433/orders", factory.ToString());
        Assert.DoesNotContain("hunter2", factory.Description, StringComparison.Ordinal);
    }
}
