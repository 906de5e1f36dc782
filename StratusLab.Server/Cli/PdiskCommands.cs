using System.Globalization;
using System.Net.Http.Headers;
using System.Text.Json;
using System.Text.Json.Nodes;
using StratusLab.Server.Modules.Pdisk.Contracts;

namespace StratusLab.Server.Cli;

/// <summary>Persistent disks: create, describe, update, delete, attach, detach, snapshot, rebase, upload, download, quarantine.</summary>
public static class PdiskCommands
{
    public static readonly IReadOnlyList<ClientCommand> All =
    [
        new("create-volume", "-s GiB [--tag TAG] [--type TYPE] [--visibility private|public] [--sharing local|iscsi] [--group ID]... | --url URL [--bytes N] [--sha1 HEX] [--identifier ID]",
            "create a persistent disk: empty, or from an image at a URL", CreateVolume) { Example = "stratuslab create-volume -s 1 --tag data\nstratuslab create-volume --url https://example.org/disk.qcow2 --tag imported" },
        new("describe-volumes", "[UUID]... [--type TYPE] [--tag TAG] [--owner USER] [--quarantined true]", "show volumes (all you may see without UUIDs)", DescribeVolumes) { Example = "stratuslab describe-volumes\nstratuslab describe-volumes 1e95 --json" },
        new("update-volume", "UUID [--tag TAG] [--visibility private|public] [--type TYPE] [--group ID]... [--identifier ID]", "change a volume's tag, visibility, groups or type", UpdateVolume) { Example = "stratuslab update-volume 1e95 --tag results --visibility public" },
        new("delete-volume", "UUID...", "delete volumes (refused while mounted or snapshotted)", DeleteVolume) { Example = "stratuslab delete-volume 1e95" },
        new("attach-volume", "-i INSTANCE UUID [--mode ro|rw]", "hot-plug a volume into a running instance", AttachVolume) { Example = "stratuslab attach-volume -i 3 1e95" },
        new("detach-volume", "-i INSTANCE UUID", "hot-unplug a volume from an instance", DetachVolume) { Example = "stratuslab detach-volume -i 3 1e95" },
        new("snapshot-volume", "UUID [--tag TAG] [--sharing local|iscsi]", "copy-on-write snapshot of an ORIGIN volume (a LIVE volume)", SnapshotVolume) { Example = "stratuslab snapshot-volume 1e95 --tag before-upgrade" },
        new("rebase-volume", "UUID", "make a LIVE volume independent of its origin (it becomes an ORIGIN)", RebaseVolume) { Example = "stratuslab rebase-volume 7c2a" },
        new("upload-image", "FILE [--tag TAG] [--type TYPE] [--visibility private|public] [--sharing local|iscsi] [--identifier ID] [--sha1 HEX]",
            "upload a raw or qcow2 image (optionally .gz) as a new volume", UploadImage) { Example = "stratuslab upload-image debian.qcow2 --tag debian -t MACHINE_IMAGE_ORIGIN" },
        new("download-volume", "UUID [-o FILE] [--format raw|qcow2]", "download a volume's content, gzip-compressed", DownloadVolume) { Example = "stratuslab download-volume 1e95 -o disk.raw.gz" },
        new("describe-quarantine", "", "list volumes in quarantine (admin)", DescribeQuarantine) { Example = "stratuslab describe-quarantine" },
        new("purge-quarantine", "[UUID]... [--all]", "remove quarantined volumes now: the given ones, those whose time is up, or --all (admin)", PurgeQuarantine) { Example = "stratuslab purge-quarantine\nstratuslab purge-quarantine --all" },
    ];

    static CliArgs Args(CliContext cx, params string[] allowed) => cx.Args;

    static async Task<int> CreateVolume(CliContext cx)
    {
        var args = Args(cx, "--size", "--tag", "--type", "--visibility", "--sharing", "--group", "--url", "--bytes", "--sha1", "--identifier");
        if (args.Positionals.Count > 0) throw new UsageException($"unexpected argument '{args.Positionals[0]}'.");
        if (args.Option("--size") is null && args.Option("--url") is null) throw new UsageException("give -s GiB (an empty volume) or --url URL (an image).");
        var body = new CreateVolumeRequest(args.LongOption("--size"), args.Option("--tag"), args.Option("--visibility"), args.Option("--type"),
            args.Option("--sharing"), args.Option("--url"), args.LongOption("--bytes"), args.Option("--sha1"), args.Option("--identifier"), Groups(args));
        var volume = await cx.Api.PostAsync<VolumeView>("api/v1/volumes", body);
        return cx.Print(volume, v => cx.Out.WriteLine(Summary(v)));
    }

    static async Task<int> DescribeVolumes(CliContext cx)
    {
        var args = Args(cx, "--type", "--tag", "--owner", "--quarantined");
        List<VolumeView> volumes;
        if (args.Positionals.Count == 0)
        {
            var query = new List<string>();
            foreach (var (option, name) in new[] { ("--type", "type"), ("--tag", "tag"), ("--owner", "owner") })
                if (args.Option(option) is { } v) query.Add($"{name}={Uri.EscapeDataString(v)}");
            if (args.Option("--quarantined") is { } q) query.Add($"quarantined={Uri.EscapeDataString(q)}");
            volumes = await cx.Api.GetAsync<List<VolumeView>>("api/v1/volumes" + (query.Count > 0 ? "?" + string.Join('&', query) : ""));
        }
        else
        {
            volumes = [];
            foreach (var uuid in args.Positionals) volumes.Add(await cx.Api.GetAsync<VolumeView>($"api/v1/volumes/{await Uuid(cx, uuid)}"));
            if (volumes.Count == 1) return cx.Print(volumes[0], v => Table(cx, [v]));
        }
        return cx.Print(volumes, list => Table(cx, list));
    }

    static void Table(CliContext cx, IReadOnlyList<VolumeView> rows) => cx.TableOf(rows,
        ("uuid", v => v.Uuid), ("owner", v => v.Owner), ("type", v => v.Type), ("size", v => CliTerminal.Size(v.Bytes)), ("tag", v => v.Tag),
        ("visibility", v => v.Visibility), ("state", v => v.State), ("count", v => v.Count.ToString(CultureInfo.InvariantCulture)), ("sharing", v => v.Sharing),
        ("mounts", v => string.Join(",", v.Mounts.Select(m => $"{m.InstanceId}:{m.GuestDevice}"))));

    static string Summary(VolumeView v) =>
        $"{v.Uuid}  {v.Type}  {CliTerminal.Size(v.Bytes)} ({v.Bytes} bytes)  {v.State}  {v.Sharing}  {v.Turl}" + (v.Tag is { } tag ? $"  tag {tag}" : "");

    static async Task<int> UpdateVolume(CliContext cx)
    {
        var args = Args(cx, "--tag", "--visibility", "--type", "--group", "--identifier");
        var uuid = await Uuid(cx, args.Positional(0, "the volume UUID"));
        var volume = await cx.Api.PutAsync<VolumeView>($"api/v1/volumes/{uuid}",
            new UpdateVolumeRequest(args.Option("--tag"), args.Option("--visibility"), args.Option("--type"), Groups(args), args.Option("--identifier")));
        return cx.Print(volume, v => cx.Out.WriteLine(Summary(v)));
    }

    static async Task<int> DeleteVolume(CliContext cx)
    {
        var args = Args(cx);
        if (args.Positionals.Count == 0) throw new UsageException("give at least one volume UUID.");
        var deleted = new List<string>();
        foreach (var text in args.Positionals)
        {
            var uuid = await Uuid(cx, text);
            await cx.Api.DeleteAsync($"api/v1/volumes/{uuid}");
            deleted.Add(uuid);
        }
        return cx.Print(deleted, list =>
        {
            foreach (var uuid in list) cx.Out.WriteLine($"deleted volume {uuid}");
        });
    }

    static async Task<int> AttachVolume(CliContext cx)
    {
        var args = Args(cx, "--instance", "--mode");
        var instance = Instance(args);
        var uuid = await Uuid(cx, args.Positional(0, "the volume UUID"));
        bool? readOnly = args.Option("--mode") switch
        {
            null => null,
            "ro" => true,
            "rw" => false,
            var other => throw new UsageException($"--mode '{other}' is not ro or rw."),
        };
        var mount = await cx.Api.PostAsync<MountView>($"api/v1/volumes/{uuid}/mounts", new AttachVolumeRequest(instance, readOnly));
        return cx.Print(mount, m => cx.Out.WriteLine($"volume {uuid} attached to instance {instance} as {m.GuestDevice} ({(m.ReadOnly ? "read-only" : "read-write")})"));
    }

    static async Task<int> DetachVolume(CliContext cx)
    {
        var args = Args(cx, "--instance");
        var instance = Instance(args);
        var uuid = await Uuid(cx, args.Positional(0, "the volume UUID"));
        await cx.Api.DeleteAsync($"api/v1/volumes/{uuid}/mounts/{instance}");
        return cx.Print(new JsonObject { ["uuid"] = uuid, ["instanceId"] = instance }, _ => cx.Out.WriteLine($"volume {uuid} detached from instance {instance}"));
    }

    static async Task<int> SnapshotVolume(CliContext cx)
    {
        var args = Args(cx, "--tag", "--sharing");
        var uuid = await Uuid(cx, args.Positional(0, "the ORIGIN volume UUID"));
        var snapshot = await cx.Api.PostAsync<VolumeView>($"api/v1/volumes/{uuid}/snapshots", new CreateSnapshotRequest(args.Option("--tag"), args.Option("--sharing")));
        return cx.Print(snapshot, v => cx.Out.WriteLine(Summary(v)));
    }

    static async Task<int> RebaseVolume(CliContext cx)
    {
        var args = Args(cx);
        var uuid = await Uuid(cx, args.Positional(0, "the LIVE volume UUID"));
        var volume = await cx.Api.PostAsync<VolumeView>($"api/v1/volumes/{uuid}/rebase", null);
        return cx.Print(volume, v => cx.Out.WriteLine(Summary(v)));
    }

    static async Task<int> DescribeQuarantine(CliContext cx)
    {
        Args(cx);
        var volumes = await cx.Api.GetAsync<List<VolumeView>>("api/v1/volumes/quarantine");
        return cx.Print(volumes, list => cx.TableOf(list,
            ("uuid", v => v.Uuid), ("owner", v => v.Owner), ("type", v => v.Type), ("size", v => CliTerminal.Size(v.Bytes)),
            ("until", v => v.QuarantineUntil?.ToString("u", CultureInfo.InvariantCulture))));
    }

    static async Task<int> PurgeQuarantine(CliContext cx)
    {
        var args = Args(cx, "--all");
        PurgeResult result;
        if (args.Positionals.Count > 0)
        {
            var purged = new List<string>();
            foreach (var text in args.Positionals)
            {
                var uuid = await Uuid(cx, text, "api/v1/volumes/quarantine");
                await cx.Api.DeleteAsync($"api/v1/volumes/quarantine/{uuid}");
                purged.Add(uuid);
            }
            result = new PurgeResult(purged);
        }
        else
        {
            result = await cx.Api.DeleteAsync<PurgeResult>("api/v1/volumes/quarantine" + (args.Has("--all") ? "" : "?expired=true"));
        }
        return cx.Print(result, r => cx.Out.WriteLine(r.Purged.Count == 0 ? "nothing to purge" : "purged " + string.Join(", ", r.Purged)));
    }

    // ---- transfers: streamed, never held in memory -----------------------------------------------------

    static async Task<int> UploadImage(CliContext cx)
    {
        var args = Args(cx, "--tag", "--type", "--visibility", "--sharing", "--identifier", "--sha1");
        var file = args.Positional(0, "the image FILE");
        if (!File.Exists(file)) throw new UsageException($"'{file}' does not exist; give a raw or qcow2 image file (optionally .gz).");
        var length = new FileInfo(file).Length;
        var query = new List<string> { "bytes=" + length.ToString(CultureInfo.InvariantCulture) };
        foreach (var (option, name) in new[] { ("--tag", "tag"), ("--type", "type"), ("--visibility", "visibility"), ("--sharing", "sharing"), ("--identifier", "identifier"), ("--sha1", "sha1") })
            if (args.Option(option) is { } v) query.Add($"{name}={Uri.EscapeDataString(v)}");
        using var http = Transfers(cx);
        await using var stream = new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 20, FileOptions.Asynchronous | FileOptions.SequentialScan);
        using var content = new StreamContent(new ProgressStream(stream, length, "upload", Console.IsErrorRedirected ? null : Console.Error), 1 << 20);
        content.Headers.ContentLength = length;
        content.Headers.ContentType = new MediaTypeHeaderValue(file.EndsWith(".gz", StringComparison.Ordinal) ? "application/gzip" : "application/octet-stream");
        using var response = await Send(http, new HttpRequestMessage(HttpMethod.Post, "api/v1/volumes/upload?" + string.Join('&', query)) { Content = content });
        var volume = JsonSerializer.Deserialize<VolumeView>(await response.Content.ReadAsStringAsync(), ApiClient.Json)
            ?? throw new CliException("the server sent no volume for the upload");
        return cx.Print(volume, v => cx.Out.WriteLine(Summary(v)));
    }

    static async Task<int> DownloadVolume(CliContext cx)
    {
        var args = Args(cx, "--output", "--format");
        var uuid = await Uuid(cx, args.Positional(0, "the volume UUID"));
        var format = args.Option("--format") ?? "raw";
        var output = args.Option("--output") ?? $"{uuid}.{format}.gz";
        using var http = Transfers(cx);
        using var response = await Send(http, new HttpRequestMessage(HttpMethod.Get, $"api/v1/volumes/{uuid}/content?format={Uri.EscapeDataString(format)}"),
            HttpCompletionOption.ResponseHeadersRead);
        var partial = output + ".partial";
        try
        {
            await using (var body = await response.Content.ReadAsStreamAsync())
            await using (var file = new FileStream(partial, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 20, FileOptions.Asynchronous))
            {
                await new ProgressStream(body, null, "download", Console.IsErrorRedirected ? null : Console.Error).CopyToAsync(file, 1 << 20);
            }
            File.Move(partial, output, overwrite: true);
        }
        finally
        {
            File.Delete(partial);
        }
        var size = new FileInfo(output).Length;
        return cx.Print(new JsonObject { ["uuid"] = uuid, ["file"] = output, ["bytes"] = size }, _ => cx.Out.WriteLine($"volume {uuid} saved to {output} ({size} bytes, gzip)"));
    }

    static HttpClient Transfers(CliContext cx)
    {
        var settings = ClientSettings.Resolve(cx.Args);
        return ApiClient.CreateRaw(settings, Timeout.InfiniteTimeSpan);
    }

    static async Task<HttpResponseMessage> Send(HttpClient http, HttpRequestMessage request, HttpCompletionOption completion = HttpCompletionOption.ResponseContentRead)
    {
        HttpResponseMessage response;
        try
        {
            response = await http.SendAsync(request, completion);
        }
        catch (HttpRequestException e)
        {
            throw new CliException($"cannot reach the StratusLab server at {http.BaseAddress}: {e.Message}");
        }
        if (response.IsSuccessStatusCode) return response;
        var text = await response.Content.ReadAsStringAsync();
        string? detail = null, field = null;
        try
        {
            var problem = JsonNode.Parse(text);
            detail = problem?["detail"]?.GetValue<string>();
            field = problem?["field"]?.GetValue<string>();
        }
        catch (JsonException) { }
        response.Dispose();
        throw new CliException(detail ?? text.Trim()) { Status = (int)response.StatusCode, Field = field };
    }

    /// <summary>Reports progress on a terminal (one line, rewritten) as bytes pass through.</summary>
    sealed class ProgressStream(Stream inner, long? total, string what, TextWriter? terminal) : Stream
    {
        long _done;
        DateTime _shown = DateTime.MinValue;

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken ct = default)
        {
            var read = await inner.ReadAsync(buffer, ct);
            _done += read;
            if (terminal is not null && (read == 0 || DateTime.UtcNow - _shown > TimeSpan.FromMilliseconds(250)))
            {
                _shown = DateTime.UtcNow;
                terminal.Write(CliTerminal.Bar(what, _done, total));
                if (read == 0) terminal.WriteLine();
            }
            return read;
        }

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken ct) => ReadAsync(buffer.AsMemory(offset, count), ct).AsTask();
        public override int Read(byte[] buffer, int offset, int count) => ReadAsync(buffer, offset, count, CancellationToken.None).GetAwaiter().GetResult();
        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => total ?? throw new NotSupportedException();
        public override long Position { get => _done; set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }

    // ---- arguments ---------------------------------------------------------------------------------

    /// <summary>A whole UUID, or a prefix that starts exactly one of the volumes the caller sees (refused with the candidates otherwise).</summary>
    internal static async Task<string> Uuid(CliContext cx, string text, string list = "api/v1/volumes")
    {
        if (Guid.TryParseExact(text, "D", out var uuid)) return uuid.ToString("D");
        var prefix = text.ToLowerInvariant();
        if (prefix.Length == 0 || !prefix.All(c => char.IsAsciiHexDigit(c) || c == '-'))
            throw new UsageException($"'{text}' is not a volume UUID or the start of one (see 'stratuslab describe-volumes').");
        var matches = (await cx.Api.GetAsync<List<VolumeView>>(list)).Select(v => v.Uuid).Where(u => u.StartsWith(prefix, StringComparison.Ordinal)).Distinct().ToList();
        return matches.Count switch
        {
            1 => matches[0],
            0 => throw new UsageException($"no volume you can see has a UUID starting with '{text}' (see 'stratuslab describe-volumes')."),
            _ => throw new UsageException($"'{text}' starts {matches.Count} volume UUIDs: {string.Join(", ", matches.Take(5))}{(matches.Count > 5 ? ", ..." : "")}; give more characters."),
        };
    }

    static long Instance(CliArgs args)
    {
        var text = args.Option("--instance") ?? throw new UsageException("give the instance with -i INSTANCE.");
        return long.TryParse(text, out var id) && id > 0 ? id : throw new UsageException($"'{text}' is not an instance ID (a positive number).");
    }

    static List<long>? Groups(CliArgs args)
    {
        var values = args.All("--group");
        if (values.Count == 0) return null;
        return values.Select(v => long.TryParse(v, out var id) && id >= 0 ? id : throw new UsageException($"--group '{v}' is not a group id (a number; see GET /api/v1/groups).")).ToList();
    }

}
