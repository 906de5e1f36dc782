using System.Text.Json;
using System.Text.RegularExpressions;
using StratusLab.Server.Modules.Compute.Contracts;
using StratusLab.Server.Modules.Context.Contracts;
using StratusLab.Server.Modules.Identity.Contracts;
using StratusLab.Server.Platform.Configuration;
using StratusLab.Server.Platform.Http;

using StratusLab.Server.Platform.Contracts;

namespace StratusLab.Server.Modules.Compute;

/// <summary>Validates and admits instance requests: nothing is written until every check passed and the quota is reserved.</summary>
internal sealed partial class InstanceRequests(ComputeStore store, Images.Contracts.IImageCache images, IQuotaLedger quotas, ComputeOptions options, Scheduling.Contracts.IPlacementRules placement, Marketplace.Contracts.IImagePolicy imagePolicy,
    Networking.Contracts.IInstanceNetworking networking, Pdisk.Contracts.IVolumes volumes, Marketplace.Contracts.IMarketplaceCatalog catalog, IKeyPairs keyPairs)
{
    public const int MaxCount = 1000;

    public async Task<IReadOnlyList<InstanceRow>> AdmitAsync(CreateInstanceRequest r, Caller caller, LaunchRecord? record = null)
    {
        var name = r.Name is null ? null : Validate.Name(r.Name, "name");
        var count = r.Count ?? 1;
        if (count is < 1 or > MaxCount) throw new InvalidInputException("count", $"'count' = {count} is out of range; accepted: 1..{MaxCount} per request.");

        var restricted = new List<string>();
        if (r.RawQemuArguments is { Count: > 0 }) restricted.Add("rawQemuArguments");
        if (r.Mac is not null) restricted.Add("mac");
        if (r.Requirements is not null) restricted.Add("requirements");
        if (r.Policy is not null) restricted.Add("policy");
        foreach (var key in r.Context?.Keys ?? []) if (ContextVariables.AdminOnly.Contains(key)) restricted.Add($"context.{key}");
        if (!caller.IsAdmin && restricted.Count > 0)
            throw new DomainException(Rejection.Forbidden, $"Only administrators may set {string.Join(", ", restricted)}; remove {(restricted.Count == 1 ? "it" : "them")} from the request.",
                restricted[0]) { Title = "Restricted attribute" };
        placement.Validate(r.Requirements, r.Policy);
        await networking.ValidateAsync(r.Networks ?? [], r.ForwardPorts ?? [], count, caller);
        var attached = await VolumesAsync(r, count, caller);
        if (r.Mac is not null && !MacPattern().IsMatch(r.Mac))
            throw new InvalidInputException("mac", $"'mac' = '{Validate.Trim(r.Mac)}' is not a MAC address like 02:00:0a:00:00:05.");
        foreach (var arg in r.RawQemuArguments ?? [])
            if (arg.Length is 0 or > 4096 || arg.Contains('\0'))
                throw new InvalidInputException("rawQemuArguments", "each raw QEMU argument must be 1-4096 characters without NUL.");

        var context = new Dictionary<string, string>(StringComparer.Ordinal);
        var contextBytes = 0;
        foreach (var (key, value) in r.Context ?? new Dictionary<string, string>())
        {
            if (!ContextVariables.IsValidName(key))
                throw new InvalidInputException($"context.{key}", $"context variable '{Validate.Trim(key)}' is not a valid name: use A-Z, 0-9 and '_', starting with a letter (like MY_SETTING).");
            if (NicVariable().IsMatch(key))
                throw new InvalidInputException($"context.{key}", $"context variable '{key}' is set by the server from the NIC's lease; choose the NIC's network with 'networks' instead.");
            if (ContextVariables.Reserved.Contains(key) && !ContextVariables.AdminOnly.Contains(key))
                throw new InvalidInputException($"context.{key}", $"context variable '{key}' is set by the server; use the request's own field (name, sshKeys) instead.");
            if (value.Contains('\0')) throw new InvalidInputException($"context.{key}", $"context variable '{key}' contains a NUL character.");
            contextBytes += key.Length + value.Length;
            context[key] = value;
        }
        if (contextBytes > 64 * 1024) throw new InvalidInputException("context", "the context is larger than 64 KiB; put large data in userData or on a volume.");
        var sshKeys = new List<string>();
        foreach (var key in r.SshKeys ?? [])
        {
            var trimmed = key.Trim();
            if (!SshKeyPattern().IsMatch(trimmed))
                throw new InvalidInputException("sshKeys", $"'{Validate.Trim(trimmed)}' is not an SSH public key; give one line like 'ssh-ed25519 AAAA... user@host'.");
            sshKeys.Add(trimmed);
        }
        UserDataRules.Check(r.UserData);
        var guest = await GuestOptionsAsync(r, sshKeys, caller);

        var (reference, imageIdentifier) = await images.ResolveAsync(r.Image);
        var imageRef = $"{reference.Kind.ToString().ToLowerInvariant()}:{reference.Value}";
        var imageName = string.IsNullOrWhiteSpace(r.Image) ? Platform.Configuration.Appliance.Name : r.Image;

        if (imageIdentifier is { } identifier)
        {
            // Refuse at once what the policy refuses now (audited); PROLOG checks again, since the policy may change meanwhile.
            var decision = await imagePolicy.EvaluateAsync(identifier);
            if (!decision.Accepted)
            {
                await imagePolicy.CheckLaunchAsync(identifier, caller, null);
                var refused = new DomainException(Rejection.Forbidden, $"The site image policy refuses image '{imageName}' ({identifier}): rule {decision.Rule} ({decision.Source}): {decision.Reason}. Ask an administrator, or choose another image.",
                    "image") { Title = "Refused by the site image policy" };
                refused.Extensions["rule"] = decision.Rule;
                throw refused;
            }
        }

        if (SourceOf(reference.Kind) is { } source)
        {
            // URL images and boot volumes pass the site's switch for them, audited like Marketplace images; PROLOG checks again.
            var decision = imagePolicy.EvaluateSource(source, reference.Value, caller);
            if (!decision.Accepted)
            {
                await imagePolicy.CheckSourceLaunchAsync(source, reference.Value, caller, null);
                var refused = new DomainException(Rejection.Forbidden, $"The site image policy refuses image '{Validate.Trim(imageName)}': rule {decision.Rule} ({decision.Source}): {decision.Reason}.",
                    "image") { Title = "Refused by the site image policy" };
                refused.Extensions["rule"] = decision.Rule;
                throw refused;
            }
        }

        var needs = imageIdentifier is { } entryId && await catalog.FindLatestValidAsync(entryId) is { } entry
            ? Marketplace.Contracts.ImageRequirements.Of(entry) : null;
        var (typeName, cpu, memory) = await SizeAsync(r, needs, imageName);
        // With no method in the request, the image's own (its entry's context-method) decides; else the default.
        if (guest.ContextMethod is null && needs?.ContextMethod is { } imageMethod && ContextMethods.Parse(imageMethod) is { } parsed)
            guest = guest with { ContextMethod = ContextMethods.Name(parsed) };
        if (r.ReadyTimeoutSeconds is { } rt) Validate.Range(rt, "readyTimeoutSeconds", 0, 86_400);
        var readyTimeout = r.ReadyTimeoutSeconds ?? options.ReadyTimeoutSeconds;
        if (await placement.WhyNeverFitsAsync(cpu, memory, count) is { } never)
        {
            var field = never.Resource switch
            {
                "count" => "count",
                _ when r.InstanceType is not null || r.Cpu is null => "instanceType",
                "memory" => "memoryMiB",
                _ => "cpu",
            };
            throw new InvalidInputException(field, "This request can never be placed: " + never.Reason, unprocessable: true);
        }

        var admin = new AdminAttributes(r.RawQemuArguments, r.Mac?.ToLowerInvariant(), r.Requirements, r.Policy);
        var rows = Enumerable.Range(0, count).Select(_ => new NewInstance(
            name, caller.UserId, caller.PrimaryGroupId, Permissions.Private.Bits, imageName, imageRef, typeName, cpu, memory,
            options.Driver, context, sshKeys, r.UserData, admin, r.Networks?.ToList() ?? [], r.ForwardPorts?.ToList() ?? [], r.Save)
            { Volumes = attached, Guest = guest, LoginUser = needs?.DefaultUser, ReadyTimeoutSeconds = readyTimeout > 0 ? readyTimeout : null }).ToList();
        // The quota and the rows that hold it are written in one transaction: a crash leaves both or neither.
        return await store.InsertInstancesAsync(rows,
            tx => quotas.ReserveAsync(tx, caller.UserId, new ResourceAmount(count, cpu * count, memory * count, 0)), record);
    }

    /// <summary>The policy's name for a launch source that is not a Marketplace entry; null for Marketplace and named images.</summary>
    internal static Marketplace.Contracts.LaunchSource? SourceOf(Images.Contracts.ImageSourceKind kind) => kind switch
    {
        Images.Contracts.ImageSourceKind.Url => Marketplace.Contracts.LaunchSource.Url,
        Images.Contracts.ImageSourceKind.Volume => Marketplace.Contracts.LaunchSource.Volume,
        _ => null,
    };

    /// <summary>
    /// The volumes to attach at boot: the caller's own (admins: any) existing volumes, each once, for one instance only (a
    /// read-write disk is written by one VM at a time). Whether each can be mounted is checked again in PROLOG.
    /// </summary>
    async Task<IReadOnlyList<string>> VolumesAsync(CreateInstanceRequest r, int count, Caller caller)
    {
        if (r.Volumes is not { Count: > 0 } requested) return [];
        if (requested.Count > MaxVolumes)
            throw new InvalidInputException("volumes", $"at most {MaxVolumes} volumes can be attached at boot; attach more later with POST /api/v1/volumes/{{uuid}}/mounts.");
        if (count > 1)
            throw new InvalidInputException("volumes", "'volumes' needs 'count' = 1: a volume is attached read-write to one instance at a time.");
        var uuids = new List<string>();
        for (var i = 0; i < requested.Count; i++)
        {
            var field = $"volumes[{i}]";
            if (!Guid.TryParse(requested[i], out var uuid))
                throw new InvalidInputException(field, $"'{Validate.Trim(requested[i])}' is not a volume uuid (like 4f6c0d2e-...); see 'stratuslab describe-volumes'.");
            if (uuids.Contains(uuid.ToString()))
                throw new InvalidInputException(field, $"volume {uuid} is listed twice.");
            if (Guid.TryParse(r.Image, out var boot) && boot == uuid)
                throw new InvalidInputException(field, $"volume {uuid} is already the boot disk ('image'); list only the extra disks in 'volumes'.");
            var volume = await volumes.FindAsync(uuid);
            if (volume is null || (volume.OwnerId != caller.UserId && !caller.IsAdmin))
                throw new InvalidInputException(field, $"Volume {uuid} does not exist, or it is not yours.", unprocessable: true);
            uuids.Add(uuid.ToString());
        }
        return uuids;
    }

    const int MaxVolumes = 8;

    /// <summary>The size asked for, checked against what the image needs; with no size given, the smallest type that fits the image.</summary>
    async Task<(string? Type, long Cpu, long Memory)> SizeAsync(CreateInstanceRequest r, Marketplace.Contracts.ImageRequirements? needs, string imageName)
    {
        var size = await AskedSizeAsync(r);
        var minMemory = needs?.MinMemoryMiB ?? 0;
        var minCpu = needs?.MinCpu ?? 0;
        if (size is { } asked)
        {
            var what = asked.Type is null ? "The request" : $"Instance type '{asked.Type}'";
            if (asked.Memory < minMemory)
                throw new InvalidInputException(asked.Type is null ? "memoryMiB" : "instanceType",
                    $"{what} has {asked.Memory} MiB of memory, but image '{imageName}' needs at least {minMemory} MiB (its minMemoryMiB). {await SuggestAsync(minMemory, minCpu)}");
            if (asked.Cpu < minCpu)
                throw new InvalidInputException(asked.Type is null ? "cpu" : "instanceType",
                    $"{what} has {asked.Cpu} CPU(s), but image '{imageName}' needs at least {minCpu} (its minCpu). {await SuggestAsync(minMemory, minCpu)}");
            return asked;
        }
        var types = await store.ListTypesAsync();
        if (needs is null || (minMemory == 0 && minCpu == 0))
        {
            var fallback = types.First(t => t.Name == "t1.tiny");
            return (fallback.Name, fallback.Cpu, fallback.MemoryMib);
        }
        // Types come ordered by memory, then CPUs: the first that fits is the smallest.
        var fits = types.FirstOrDefault(t => t.MemoryMib >= minMemory && t.Cpu >= minCpu)
            ?? throw new InvalidInputException("instanceType",
                $"Image '{imageName}' needs at least {minMemory} MiB and {Math.Max(minCpu, 1)} CPU(s); no instance type is that large. Give 'cpu' and 'memoryMiB', or ask an administrator for a larger type.", unprocessable: true);
        return (fits.Name, fits.Cpu, fits.MemoryMib);
    }

    async Task<string> SuggestAsync(long minMemory, long minCpu)
    {
        var fits = (await store.ListTypesAsync()).FirstOrDefault(t => t.MemoryMib >= minMemory && t.Cpu >= minCpu);
        return fits is null ? "Give 'cpu' and 'memoryMiB' large enough." : $"Choose a larger type, like '{fits.Name}' ({fits.Cpu} CPU, {fits.MemoryMib} MiB), or leave the type out to get the smallest that fits.";
    }


    /// <summary>
    /// Context method, hostname and ready port as given; the key pair named by keyName (or, with no key at all in the
    /// request, the caller's default key pair) joins sshKeys.
    /// </summary>
    async Task<GuestOptions> GuestOptionsAsync(CreateInstanceRequest r, List<string> sshKeys, Caller caller)
    {
        if (r.ContextMethod is not null && ContextMethods.Parse(r.ContextMethod) is null)
            throw new InvalidInputException("contextMethod", $"'contextMethod' = '{Validate.Trim(r.ContextMethod)}' is unknown; use '{ContextMethods.OpenNebula}' (a CONTEXT CD with context.sh) or '{ContextMethods.NoCloud}' (a cidata seed).");
        if (r.Hostname is { } hostname && !HostnamePattern().IsMatch(hostname))
            throw new InvalidInputException("hostname", $"'hostname' = '{Validate.Trim(hostname)}' is not a host name: letters, digits and '-' in dot-separated labels of 1-63 characters, not starting or ending with '-' (like web-1 or web-1.lab.example).");
        if (r.ReadyPort is { } port) Validate.Range(port, "readyPort", 1, 65535);
        string? keyName = null;
        if (r.KeyName is { } name)
        {
            var key = await keyPairs.FindAsync(caller.UserId, name)
                ?? throw new InvalidInputException("keyName", $"You have no key pair named '{Validate.Trim(name)}'; import one with 'stratuslab key-import {Validate.Trim(name)} ~/.ssh/id_ed25519.pub' (POST /api/v1/keys) or list yours with 'stratuslab describe-keys'.");
            if (!sshKeys.Contains(key.PublicKey)) sshKeys.Add(key.PublicKey);
            keyName = key.Name;
        }
        else if (sshKeys.Count == 0 && await keyPairs.DefaultOfAsync(caller.UserId) is { } fallback)
        {
            sshKeys.Add(fallback.PublicKey);
            keyName = fallback.Name;
        }
        var method = r.ContextMethod is null ? null : ContextMethods.Name(ContextMethods.Parse(r.ContextMethod)!.Value);
        return new GuestOptions(method, r.Hostname?.ToLowerInvariant(), keyName, r.ReadyPort);
    }

    [GeneratedRegex(@"^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$")]
    private static partial Regex HostnamePattern();


    async Task<(string? Type, long Cpu, long Memory)?> AskedSizeAsync(CreateInstanceRequest r)
    {
        if (r.InstanceType is not null)
        {
            if (r.Cpu is not null || r.MemoryMiB is not null)
                throw new InvalidInputException("instanceType", "Give either 'instanceType' or 'cpu' + 'memoryMiB', not both.");
            var type = (await store.ListTypesAsync()).FirstOrDefault(t => string.Equals(t.Name, r.InstanceType, StringComparison.OrdinalIgnoreCase))
                ?? throw new InvalidInputException("instanceType", $"Unknown instance type '{Validate.Trim(r.InstanceType)}'; known types: {string.Join(", ", (await store.ListTypesAsync()).Select(t => t.Name))}.", unprocessable: true);
            return (type.Name, type.Cpu, type.MemoryMib);
        }
        if (r.Cpu is null != r.MemoryMiB is null)
            throw new InvalidInputException(r.Cpu is null ? "cpu" : "memoryMiB", "Give both 'cpu' and 'memoryMiB', or an 'instanceType'.");
        if (r.Cpu is { } cpu && r.MemoryMiB is { } memory)
        {
            Validate.Range(cpu, "cpu", 1, 256);
            Validate.Range(memory, "memoryMiB", 32, 4L * 1024 * 1024);
            return (null, cpu, memory);
        }
        return null;
    }

    [GeneratedRegex("^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$")]
    private static partial Regex MacPattern();

    [GeneratedRegex(@"^ETH\d+_(IP|MASK|GATEWAY|DNS|MAC|MTU)$")]
    private static partial Regex NicVariable();

    [GeneratedRegex(@"^(ssh-(rsa|ed25519|dss)|ecdsa-sha2-nistp(256|384|521)|sk-(ssh-ed25519|ecdsa-sha2-nistp256)@openssh\.com) [A-Za-z0-9+/=]+( [^\r\n]*)?$")]
    private static partial Regex SshKeyPattern();
}
