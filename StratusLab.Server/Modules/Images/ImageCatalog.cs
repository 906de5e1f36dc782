using StratusLab.Server.Modules.Images.Contracts;
using StratusLab.Server.Modules.Marketplace.Contracts;

namespace StratusLab.Server.Modules.Images;

/// <summary>The launchable images: registered names and cached Marketplace images, with their entries' requirements.</summary>
internal sealed class ImageCatalog(ImagesStore store, IMarketplaceCatalog marketplace) : IImageCatalog
{
    public async Task<IReadOnlyList<CatalogImage>> ListAsync(CancellationToken ct = default)
    {
        var names = await store.NamesAsync();
        var rows = await store.ListAsync();
        var byIdentifier = rows.Where(r => r.Identifier is not null).GroupBy(r => r.Identifier!).ToDictionary(g => g.Key, g => g.First());
        var list = new List<CatalogImage>();
        foreach (var name in names.OrderByDescending(n => n.IsDefault).ThenBy(n => n.Name, StringComparer.OrdinalIgnoreCase))
        {
            byIdentifier.TryGetValue(name.Identifier, out var row);
            list.Add(new CatalogImage(name.Name, name.Identifier, name.IsDefault, row?.State ?? "NOT_CACHED", row?.SizeBytes,
                await RequirementsAsync(name.Identifier, ct), row?.CreatedAt ?? DateTimeOffset.UnixEpoch));
        }
        foreach (var row in rows.Where(r => r.Kind == "marketplace" && r.Identifier is not null && names.All(n => n.Identifier != r.Identifier)))
            list.Add(new CatalogImage(row.Identifier!, row.Identifier, false, row.State, row.SizeBytes, await RequirementsAsync(row.Identifier!, ct), row.CreatedAt));
        return list;
    }

    async Task<ImageRequirements?> RequirementsAsync(string identifier, CancellationToken ct) =>
        await marketplace.FindLatestValidAsync(identifier, ct) is { } entry ? ImageRequirements.Of(entry) : null;
}
