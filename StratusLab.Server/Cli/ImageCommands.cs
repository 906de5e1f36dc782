using System.Text.Json.Nodes;

namespace StratusLab.Server.Cli;

/// <summary>The image cache: list, prefetch (with a progress display), evict; register a local image file.</summary>
public static class ImageCommands
{
    public static readonly IReadOnlyList<ClientCommand> All =
    [
        new("describe-images", "", "list the image cache: state, download progress, hits", DescribeImages) { Example = "stratuslab describe-images" },
        new("image-prefetch", "IMAGE", "download an image (Marketplace identifier or http(s) URL) into the cache (admin)", Prefetch) { Example = "stratuslab image-prefetch https://example.org/debian-12.qcow2" },
        new("image-evict", "IMAGE", "remove an image from the cache (admin; refused while VMs use clones of it)", Evict) { Example = "stratuslab image-evict https://example.org/debian-12.qcow2" },
        new("image-register", "NAME PATH [--default] [--min-memory MiB] [--min-cpu N] [--min-disk GiB] [--default-user USER] [--context-method opennebula|nocloud] [--os OS]",
            "give an image file on the server a name and cache it, with what it needs (admin)", Register) { Example = "stratuslab image-register debian /srv/debian.qcow2 --min-memory 512 --default-user debian --context-method nocloud --os debian" },
    ];

    static async Task<int> DescribeImages(CliContext cx)
    {
        cx.Args.AllowOnly();
        var images = await cx.Api.GetAsync("api/v1/images");
        return cx.Print(images, list => cx.Table(list.AsArray(),
            ("image", i => Short(i["image"]!.ToString())), ("names", i => string.Join(",", i["names"]!.AsArray().Select(n => n!.ToString()))),
            ("state", i => i["state"]!.ToString() + (i["isDefault"]!.GetValue<bool>() ? " (default)" : "")),
            ("progress", i => Progress(i)), ("hits", i => i["hits"]?.ToString()), ("error", i => i["error"]?.ToString())));
    }

    static async Task<int> Prefetch(CliContext cx)
    {
        cx.Args.AllowOnly();
        var image = cx.Args.Positional(0, "the image (Marketplace identifier or http(s) URL)");
        using var watch = new CancellationTokenSource();
        // The prefetch request returns when the image is cached; meanwhile show its progress on a terminal.
        var progress = !cx.Json && !Console.IsErrorRedirected ? Task.Run(() => ShowProgressAsync(cx, image, watch.Token)) : Task.CompletedTask;
        JsonNode? node;
        try { node = await cx.Api.PostAsync("api/v1/images/prefetch", new { image }); }
        finally
        {
            await watch.CancelAsync();
            await progress;
        }
        return cx.Print(node, n => cx.Out.WriteLine($"cached {n["identifier"]} ({n["sizeBytes"]} bytes)"));
    }

    static async Task ShowProgressAsync(CliContext cx, string image, CancellationToken ct)
    {
        try
        {
            while (!ct.IsCancellationRequested)
            {
                await Task.Delay(500, ct);
                var list = await cx.Api.GetAsync("api/v1/images", ct);
                var entry = list?.AsArray().FirstOrDefault(i => i!["image"]!.ToString() == image || i["identifier"]?.ToString() == image);
                if (entry is null || entry["state"]!.ToString() != "downloading") continue;
                Console.Error.Write($"\r{ProgressBar(entry)}   ");
            }
        }
        catch (OperationCanceledException) { }
        catch (CliException) { }
        Console.Error.Write("\r" + new string(' ', 60) + "\r");
    }

    static string ProgressBar(JsonNode entry)
    {
        var done = entry["bytesDone"]!.GetValue<long>();
        var total = entry["bytesTotal"]?.GetValue<long>();
        if (total is not > 0) return $"{done / 1048576.0:0.0} MiB";
        var fraction = Math.Clamp((double)done / total.Value, 0, 1);
        var filled = (int)(fraction * 30);
        return $"[{new string('#', filled)}{new string('.', 30 - filled)}] {fraction:P0} of {total.Value / 1048576.0:0.0} MiB";
    }

    static async Task<int> Evict(CliContext cx)
    {
        cx.Args.AllowOnly();
        var image = cx.Args.Positional(0, "the image to evict");
        await cx.Api.DeleteAsync($"api/v1/images/{Uri.EscapeDataString(image)}");
        return cx.Print(new JsonObject { ["evicted"] = image }, _ => cx.Out.WriteLine($"evicted {image}"));
    }

    static async Task<int> Register(CliContext cx)
    {
        cx.Args.AllowOnly("--default", "--min-memory", "--min-cpu", "--min-disk", "--default-user", "--context-method", "--os");
        var name = cx.Args.Positional(0, "the image name");
        var path = Path.GetFullPath(cx.Args.Positional(1, "the image file path (on the server)"));
        var node = await cx.Api.PostAsync("api/v1/images", new
        {
            name, path, @default = cx.Args.Has("--default"),
            minMemoryMiB = cx.Args.LongOption("--min-memory"), minCpu = cx.Args.LongOption("--min-cpu"), minDiskGiB = cx.Args.LongOption("--min-disk"),
            defaultUser = cx.Args.Option("--default-user"), contextMethod = cx.Args.Option("--context-method"), os = cx.Args.Option("--os"),
        });
        return cx.Print(node, n => cx.Out.WriteLine($"registered {name} as {n["identifier"]}"));
    }

    static string Progress(JsonNode i)
    {
        var state = i["state"]!.ToString();
        if (state == "ready") return $"{i["sizeBytes"]} bytes";
        return state == "downloading" ? ProgressBar(i) : "-";
    }

    static string Short(string image) => image.Length > 60 ? image[..57] + "..." : image;
}
