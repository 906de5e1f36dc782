using StratusLab.Server.Platform.Contracts;

namespace StratusLab.Server.Platform.Http;

/// <summary>?limit=&amp;offset= for every list.</summary>
public static class Paging
{
    public const int DefaultLimit = 100;
    public const int MaxLimit = 1000;

    public static (int Limit, int Offset) Of(int? limit, int? offset)
    {
        var l = limit ?? DefaultLimit;
        var o = offset ?? 0;
        if (l is < 1 or > MaxLimit) throw new InvalidInputException("limit", $"'limit' = {l} is out of range; accepted: 1..{MaxLimit}.");
        if (o < 0) throw new InvalidInputException("offset", $"'offset' = {o} is negative; accepted: 0 or more.");
        return (l, o);
    }
}
