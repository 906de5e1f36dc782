using System.Data;
using System.Globalization;
using Dapper;

namespace StratusLab.Server.Platform.Data;

/// <summary>SQLite has no date type: times are stored as ISO-8601 UTC text and read back as DateTimeOffset.</summary>
public static class DapperTypes
{
    static int _registered;

    public static void Register()
    {
        if (Interlocked.Exchange(ref _registered, 1) == 1) return;
        SqlMapper.AddTypeHandler(new DateTimeOffsetHandler());
        SqlMapper.AddTypeHandler(new GuidHandler());
        // List columns of any module are JSON arrays (ssh keys, networks, DNS servers...).
        AddJson<IReadOnlyList<string>>();
        AddJson<IReadOnlyList<int>>();
        SqlMapper.RemoveTypeMap(typeof(DateTimeOffset));
        SqlMapper.RemoveTypeMap(typeof(DateTimeOffset?));
        SqlMapper.AddTypeHandler(new DateTimeOffsetHandler());
    }

    /// <summary>
    /// Stores values of <typeparamref name="T"/> as JSON text (camelCase) and reads them back typed. Register collection
    /// columns by their read-only interface (IReadOnlyList&lt;string&gt;): a handler for List&lt;T&gt; or T[] would stop
    /// Dapper expanding such parameters in "IN @list".
    /// </summary>
    public static void AddJson<T>() => SqlMapper.AddTypeHandler(new JsonHandler<T>());

    public static string Format(DateTimeOffset value) =>
        value.ToUniversalTime().ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture);

    sealed class DateTimeOffsetHandler : SqlMapper.TypeHandler<DateTimeOffset>
    {
        public override void SetValue(IDbDataParameter parameter, DateTimeOffset value)
        {
            parameter.DbType = DbType.String;
            parameter.Value = Format(value);
        }

        public override DateTimeOffset Parse(object value) => value switch
        {
            string s => DateTimeOffset.Parse(s, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal),
            DateTime d => new DateTimeOffset(DateTime.SpecifyKind(d, DateTimeKind.Utc)),
            _ => throw new DataException($"cannot read {value.GetType().Name} as a time"),
        };
    }

    sealed class JsonHandler<T> : SqlMapper.TypeHandler<T>
    {
        static readonly System.Text.Json.JsonSerializerOptions Options = new(System.Text.Json.JsonSerializerDefaults.Web);

        public override void SetValue(IDbDataParameter parameter, T? value)
        {
            parameter.DbType = DbType.String;
            parameter.Value = value is null ? DBNull.Value : System.Text.Json.JsonSerializer.Serialize(value, Options);
        }

        public override T? Parse(object value) => value is string s
            ? System.Text.Json.JsonSerializer.Deserialize<T>(s, Options)
            : throw new DataException($"cannot read {value.GetType().Name} as JSON");
    }

    sealed class GuidHandler : SqlMapper.TypeHandler<Guid>
    {
        public override void SetValue(IDbDataParameter parameter, Guid value)
        {
            parameter.DbType = DbType.String;
            parameter.Value = value.ToString("D");
        }

        public override Guid Parse(object value) => value is string s ? Guid.Parse(s) : (Guid)value;
    }
}
