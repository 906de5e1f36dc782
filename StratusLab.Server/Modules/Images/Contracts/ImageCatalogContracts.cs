using StratusLab.Server.Modules.Marketplace.Contracts;

namespace StratusLab.Server.Modules.Images.Contracts;

/// <summary>
/// An image a user can launch by name: <see cref="Image"/> is what a request's <c>image</c> takes (a registered name, or
/// the Marketplace identifier of a cached image); <see cref="Requirements"/> is what its signed entry declares.
/// </summary>
public sealed record CatalogImage(string Image, string? Identifier, bool IsDefault, string State, long? SizeBytes,
    ImageRequirements? Requirements, DateTimeOffset CreatedAt);

/// <summary>The images this site offers by name (front doors list them: EC2 DescribeImages, OCCI os_tpl).</summary>
public interface IImageCatalog
{
    /// <summary>Registered names first (the default one marked), then cached Marketplace images that have no name.</summary>
    Task<IReadOnlyList<CatalogImage>> ListAsync(CancellationToken ct = default);
}
