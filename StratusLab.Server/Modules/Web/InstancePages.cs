using System.Globalization;
using System.Text.Json;
using StratusLab.Server.Modules.Compute.Contracts;
using StratusLab.Server.Modules.Identity.Contracts;
using StratusLab.Server.Modules.Images.Contracts;
using StratusLab.Server.Modules.Marketplace.Contracts;
using StratusLab.Server.Modules.Networking.Contracts;
using StratusLab.Server.Modules.Pdisk.Contracts;
using static StratusLab.Server.Modules.Web.Html;

namespace StratusLab.Server.Modules.Web;

/// <summary>Instances: the list (live through server-sent events), the launch form, an instance's page with its console and actions.</summary>
internal static class InstancePages
{
    static readonly string[] States = ["PENDING", "PROLOG", "BOOT", "RUNNING", "SHUTDOWN", "STOPPED", "SUSPENDED", "EPILOG", "DONE", "FAILED", "UNKNOWN"];

    public static void Map(RouteGroupBuilder pages)
    {
        pages.MapGet("/instances", ListInstances);
        pages.MapGet("/events", StreamEvents);
        pages.MapGet("/instances/new", LaunchForm);
        pages.MapPost("/instances", Launch).DisableAntiforgery();
        pages.MapGet("/instances/{id:long}", ShowInstance);
        pages.MapPost("/instances/{id:long}/actions/{action}", ActOnInstance).DisableAntiforgery();
        pages.MapPost("/instances/{id:long}/volumes", AttachVolume).DisableAntiforgery();
        pages.MapPost("/instances/{id:long}/volumes/{uuid:guid}/detach", DetachVolume).DisableAntiforgery();
    }

    // ---- the list ----

    internal static async Task<IResult> ListInstances(HttpContext http, IInstances instances, string? state, string? q, CancellationToken ct)
    {
        var caller = http.User.ToCaller();
        var filter = string.IsNullOrEmpty(state) ? "active" : state.ToUpperInvariant() is var s && States.Contains(s) ? s : state.ToLowerInvariant() == "all" ? "all" : "active";
        IReadOnlyList<string>? states = filter switch { "active" => States.Where(x => x != "DONE").ToList(), "all" => null, _ => [filter] };
        var list = await instances.ListAsync(caller, new InstanceQuery(states, Limit: 1000), ct);
        if (!string.IsNullOrWhiteSpace(q))
            list = list.Where(i => i.Name.Contains(q.Trim(), StringComparison.OrdinalIgnoreCase) || i.Image.Contains(q.Trim(), StringComparison.OrdinalIgnoreCase)).ToList();
        Markup Option(string value, string label) => filter == value
            ? H($"<option value=\"{value}\" selected>{label}</option>") : H($"<option value=\"{value}\">{label}</option>");
        var body = H($"""
            <div class="toolbar"><a class="button" href="/ui/instances/new">Launch instances</a></div>
            <form class="search" method="get" action="/ui/instances" role="search">
            <label for="q" class="visually-hidden">Name or image</label><input id="q" name="q" value="{q}" placeholder="name or image">
            <label for="state" class="visually-hidden">State</label><select id="state" name="state">{Option("active", "all but DONE")}{Option("all", "all, with DONE")}{Each(States, x => Option(x, x))}</select>
            <button type="submit">Filter</button></form>
            <p class="hint" id="live-status" aria-live="polite">{list.Count} instance(s). States change live.</p>
            <table id="instances" data-filter="{filter}" data-q="{q}"><caption class="visually-hidden">Your instances</caption>
            <thead><tr><th scope="col">Name</th><th scope="col">Id</th><th scope="col">State</th><th scope="col">Image</th><th scope="col">Type</th><th scope="col">Host</th><th scope="col">Created</th></tr></thead>
            <tbody>{Each(list, Row)}</tbody></table>
            {If(list.Count == 0, H($"<p id=\"no-instances\">No instance here yet. <a href=\"/ui/instances/new\">Launch one</a>.</p>"))}
            """);
        return Layout.Page(http, "Instances", body, current: "instances");
    }

    static Markup Row(InstanceView i) => H($"""
        <tr data-id="{i.Id}"><td><a href="/ui/instances/{i.Id}">{i.Name}</a></td><td>{i.Id}</td><td class="state">{StateBadge(i.State, i.Ready)}</td>
        <td class="image">{i.Image}</td><td>{i.InstanceType ?? $"{i.Cpu} CPU, {i.MemoryMiB} MiB"}</td><td>{i.Host}</td><td>{Time(i.CreatedAt)}</td></tr>
        """);

    static Markup StateBadge(string state, bool ready) =>
        H($"<span class=\"state-badge {state.ToLowerInvariant()}\">{state}</span>{If(ready, H($" <span class=\"ready\">ready</span>"))}");

    static string Time(DateTimeOffset? t) => t?.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss'Z'", CultureInfo.InvariantCulture) ?? "";

    /// <summary>The lifecycle changes the caller may see, as server-sent events (the instances page and an instance's page follow it).</summary>
    static Task StreamEvents(HttpContext http, IInstances instances, CancellationToken ct) =>
        Platform.Http.ServerSentEvents.StreamAsync(http, instances.WatchAsync(http.User.ToCaller(), ct), "instance", c => c.Id,
            ": stratuslab dashboard events\nretry: 3000\n\n", ct);

    // ---- launching ----

    /// <summary>What the launch form holds, to show it again with the problem beside its field.</summary>
    internal sealed record LaunchInput(string Name = "", string Image = "", string InstanceType = "", string Count = "1", IReadOnlyList<string>? Networks = null,
        IReadOnlyList<string>? Volumes = null, string KeyName = "", string Context = "", string UserData = "");

    static Task<IResult> LaunchForm(HttpContext http, IInstances instances, IMarketplaceCatalog marketplace, IImagePolicy policy, IImageCatalog catalog,
        INetworks networks, IVolumeService volumes, IKeyPairs keys, string? q, string? image, CancellationToken ct) =>
        RenderLaunchForm(http, instances, marketplace, policy, catalog, networks, volumes, keys, q, new LaunchInput(Image: image ?? ""), null, 200, ct);

    static async Task<IResult> RenderLaunchForm(HttpContext http, IInstances instances, IMarketplaceCatalog marketplace, IImagePolicy policy, IImageCatalog catalog,
        INetworks networks, IVolumeService volumes, IKeyPairs keys, string? q, LaunchInput input, WebProblem? problem, int status, CancellationToken ct)
    {
        var caller = http.User.ToCaller();
        var types = await instances.ListTypesAsync(ct);
        var images = await catalog.ListAsync(ct);
        var found = await marketplace.SearchAsync(q, 20, ct);
        var verdicts = new Dictionary<string, PolicyDecision>();
        foreach (var e in found.DistinctBy(e => e.Identifier))
            verdicts[e.Identifier] = await policy.EvaluateAsync(e.Identifier, ct);
        var nets = (await networks.ListAsync(caller, ct)).Where(n => n.Usable).ToList();
        var vols = (await volumes.ListAsync(caller, ct: ct)).Where(v => v.OwnerId == caller.UserId && v.Mounts.Count == 0 && v.State == "READY").ToList();
        var keyPairs = await keys.ListAsync(caller, ct);
        var known = new HashSet<string?> { "name", "image", "instanceType", "count", "networks", "volumes", "keyName", "sshKeys", "context", "userData" };
        Markup ErrorFor(string field) => problem?.Field == field || (field == "keyName" && problem?.Field == "sshKeys")
            ? H($"<p class=\"field-problem\" id=\"{field}-problem\" role=\"alert\">{problem!.Detail}</p>") : Markup.Empty;
        string Described(string field) => problem?.Field == field ? $"{field}-problem" : "";
        string Checked(bool on) => on ? "checked" : "";

        Markup ImageChoice(string value, Markup label, Markup details)
        {
            var id = "image-" + Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(value)))[..10];
            return H($"""<li><input type="radio" name="image" id="{id}" value="{value}" {(input.Image == value ? new Markup("checked") : Markup.Empty)}><label for="{id}">{label}</label>{details}</li>""");
        }
        var siteImages = Each(images, i => ImageChoice(i.Image,
            H($"<strong>{i.Image}</strong>{If(i.IsDefault, new Markup(" <span class=\"tag\">default</span>"))}"),
            H($"<div class=\"hint\">cached image, {i.State}{(i.SizeBytes is { } b ? $", {b / (1024 * 1024)} MiB" : "")}</div>")));
        var marketImages = Each(found, e =>
        {
            var verdict = verdicts[e.Identifier];
            return ImageChoice(e.Identifier, H($"<strong>{e.Title ?? e.Identifier}</strong> <span class=\"id\">{e.Identifier}</span>"),
                H($"""
                  <div class="hint">{e.Os} {e.OsVersion} {e.OsArch} · endorsed by {e.Endorser.Email}{If(e.Tags.Count > 0, H($" · tags: {string.Join(", ", e.Tags)}"))}</div>
                  {(e.Description is null ? Markup.Empty : H($"<div class=\"description\">{Shorten(e.Description, 300)}</div>"))}
                  <div class="verdict {(verdict.Accepted ? "accepted" : "refused")}">{(verdict.Accepted ? "Site policy: accepted" : "Site policy: refused")} ({verdict.Rule}): {verdict.Reason}</div>
                  """));
        });
        var body = H($"""
            {(problem is not null && !known.Contains(problem.Field) ? H($"<p class=\"problem\" role=\"alert\" id=\"form-problem\">{problem.Detail}</p>") : Markup.Empty)}
            <form class="search" method="get" action="/ui/instances/new" role="search">
            <label for="appliance-q">Search the Marketplace</label><input id="appliance-q" name="q" value="{q}" placeholder="title, OS, endorser, tags, description">
            <button type="submit">Search appliances</button></form>
            <form method="post" action="/ui/instances" class="card launch">
            {Layout.CsrfField(http)}
            <fieldset aria-describedby="{Described("image")}"><legend>Appliance</legend>{ErrorFor("image")}
            <p class="hint">Leave none chosen to launch the site's default image; the site policy's verdict is shown for each Marketplace image.</p>
            <ul class="choices">{siteImages}{marketImages}</ul>
            {If(found.Count == 0 && !string.IsNullOrWhiteSpace(q), H($"<p>No valid Marketplace entry matches '{q}'.</p>"))}
            <label for="image-other">Or an image name, identifier or volume uuid</label><input id="image-other" name="imageOther" value="{(images.Any(i => i.Image == input.Image) || found.Any(f => f.Identifier == input.Image) ? "" : input.Image)}">
            </fieldset>
            <div class="grid">
            <div><label for="name">Name</label><input id="name" name="name" value="{input.Name}" aria-describedby="{Described("name")}">{ErrorFor("name")}</div>
            <div><label for="instanceType">Instance type</label><select id="instanceType" name="instanceType" aria-describedby="{Described("instanceType")}">
            {Each(types, t => H($"<option value=\"{t.Name}\" {(t.Name == input.InstanceType ? new Markup("selected") : Markup.Empty)}>{t.Name} ({t.Cpu} CPU, {t.MemoryMiB} MiB)</option>"))}</select>{ErrorFor("instanceType")}</div>
            <div><label for="count">Count</label><input id="count" name="count" type="number" min="1" value="{input.Count}" aria-describedby="{Described("count")}">{ErrorFor("count")}</div>
            <div><label for="keyName">SSH key</label><select id="keyName" name="keyName" aria-describedby="{Described("keyName")}"><option value="">my default key (if any)</option>
            {Each(keyPairs, k => H($"<option value=\"{k.Name}\" {(k.Name == input.KeyName ? new Markup("selected") : Markup.Empty)}>{k.Name} ({k.Fingerprint})</option>"))}</select>{ErrorFor("keyName")}</div>
            </div>
            <fieldset aria-describedby="{Described("networks")}"><legend>Networks</legend>{ErrorFor("networks")}<p class="hint">None chosen: one interface on the default network.</p>
            {Each(nets, n => H($"<label class=\"check\"><input type=\"checkbox\" name=\"networks\" value=\"{n.Name}\" {Checked(input.Networks?.Contains(n.Name) == true)}> {n.Name} <span class=\"hint\">{n.Kind}, {n.Cidr}, {n.Free} free</span></label>"))}</fieldset>
            <fieldset aria-describedby="{Described("volumes")}"><legend>Persistent disks to attach</legend>{ErrorFor("volumes")}
            {(vols.Count == 0 ? H($"<p class=\"hint\">You have no free volume; <a href=\"/ui/volumes\">create one</a>.</p>") : Each(vols, v => H($"<label class=\"check\"><input type=\"checkbox\" name=\"volumes\" value=\"{v.Uuid}\" {Checked(input.Volumes?.Contains(v.Uuid.ToString()) == true)}> {v.Tag ?? v.Uuid.ToString()} <span class=\"hint\">{v.SizeGiB} GiB</span></label>")))}</fieldset>
            <label for="context">Context values (one KEY=value per line)</label><textarea id="context" name="context" rows="3" aria-describedby="{Described("context")}">{input.Context}</textarea>{ErrorFor("context")}
            <label for="userData">User data (a cloud-init file or script)</label><textarea id="userData" name="userData" rows="5" aria-describedby="{Described("userData")}">{input.UserData}</textarea>{ErrorFor("userData")}
            <button type="submit">Launch</button>
            </form>
            """);
        return Layout.Page(http, "Launch instances", body, status, current: "instances");
    }

    static async Task<IResult> Launch(HttpContext http, IInstances instances, IMarketplaceCatalog marketplace, IImagePolicy policy, IImageCatalog catalog,
        INetworks networks, IVolumeService volumes, IKeyPairs keys, CancellationToken ct)
    {
        var form = await http.Request.ReadFormAsync(ct);
        var image = form["imageOther"].ToString().Trim() is { Length: > 0 } other ? other : form["image"].ToString().Trim();
        var input = new LaunchInput(form["name"].ToString().Trim(), image, form["instanceType"].ToString(), form["count"].ToString().Trim(),
            form["networks"].Select(n => n ?? "").ToList(), form["volumes"].Select(n => n ?? "").ToList(), form["keyName"].ToString(),
            form["context"].ToString(), form["userData"].ToString());
        WebProblem? problem = null;
        IReadOnlyList<InstanceView> launched = [];
        try
        {
            var request = ToRequest(input);
            launched = await instances.LaunchAsync(http.User.ToCaller(), request, ct);
        }
        catch (Exception e) when (WebProblem.From(e) is { } p) { problem = p; }
        if (problem is not null)
            return await RenderLaunchForm(http, instances, marketplace, policy, catalog, networks, volumes, keys, null, input, problem, problem.Status, ct);
        return Results.Redirect(launched.Count == 1 ? $"/ui/instances/{launched[0].Id}" : "/ui/instances");
    }

    /// <summary>The form as the API's request; malformed values are refused with the same field names the API uses.</summary>
    internal static CreateInstanceRequest ToRequest(LaunchInput input)
    {
        int? count = null;
        if (input.Count.Length > 0)
        {
            if (!int.TryParse(input.Count, NumberStyles.None, CultureInfo.InvariantCulture, out var n))
                throw new Platform.Contracts.InvalidInputException("count", $"'count' = '{Shorten(input.Count, 20)}' is not a whole number; give how many instances to launch, like 1.");
            count = n;
        }
        var context = new Dictionary<string, string>();
        foreach (var raw in input.Context.Split('\n'))
        {
            var line = raw.TrimEnd('\r');
            if (line.Trim().Length == 0) continue;
            var eq = line.IndexOf('=');
            if (eq <= 0)
                throw new Platform.Contracts.InvalidInputException("context", $"The context line '{Shorten(line, 60)}' is not KEY=value; write one KEY=value per line, like SITE=lab.");
            context[line[..eq].Trim()] = line[(eq + 1)..];
        }
        return new CreateInstanceRequest(
            Image: input.Image.Length == 0 ? null : input.Image,
            InstanceType: input.InstanceType.Length == 0 ? null : input.InstanceType,
            Name: input.Name.Length == 0 ? null : input.Name,
            Networks: input.Networks is { Count: > 0 } nets ? nets : null,
            Volumes: input.Volumes is { Count: > 0 } vols ? vols : null,
            Context: context.Count > 0 ? context : null,
            UserData: input.UserData.Length == 0 ? null : input.UserData.Replace("\r\n", "\n"),
            Count: count == 1 ? null : count,
            KeyName: input.KeyName.Length == 0 ? null : input.KeyName);
    }

    static string Shorten(string s, int max) => s.Length <= max ? s : s[..max] + "…";

    // ---- one instance ----

    static Task<IResult> ShowInstance(long id, HttpContext http, IInstances instances, IVolumeService volumes, IMarketplaceCatalog marketplace, CancellationToken ct) =>
        RenderInstance(id, http, instances, volumes, marketplace, null, 200, ct);

    static async Task<IResult> RenderInstance(long id, HttpContext http, IInstances instances, IVolumeService volumes, IMarketplaceCatalog marketplace,
        string? problem, int status, CancellationToken ct)
    {
        var caller = http.User.ToCaller();
        InstanceView i;
        try { i = await instances.GetAsync(caller, id, ct); }
        catch (Exception e) when (WebProblem.From(e) is { } p) { return Layout.Message(http, "Not found", p.Status, p.Detail); }
        var provenance = ImageIdentifiers.IsWellFormed(i.Image) ? (await marketplace.FindEntriesAsync(i.Image, ct)).FirstOrDefault() : null;
        var attached = new List<(VolumeInfo Volume, VolumeMountInfo Mount)>();
        var all = await volumes.ListAsync(caller, ct: ct);
        foreach (var v in all)
            foreach (var m in v.Mounts.Where(m => m.InstanceId == id))
                attached.Add((v, m));
        var free = all.Where(v => v.OwnerId == caller.UserId && v.Mounts.Count == 0 && v.State == "READY").ToList();
        var log = await instances.ConsoleAsync(caller, id, 200, ct);
        var live = i.Driver == "qemu" && i.State is "RUNNING" or "BOOT" or "SUSPENDED";
        var csrf = Layout.CsrfField(http);
        var actions = i.AllowedActions.Where(a => a is "shutdown" or "reboot" or "stop" or "start" or "suspend" or "resume" or "terminate").ToList();
        // Save as image: a shutdown whose powered-off disk becomes a new signed image (StratusLab's --save), where the instance has a disk.
        if (actions.Contains("shutdown") && i.Driver != "cloud") actions.Insert(actions.IndexOf("shutdown") + 1, "save");
        Markup Action(string action) => H($"""
            <form method="post" action="/ui/instances/{i.Id}/actions/{action}" class="inline">{csrf}<button type="submit" class="{(action == "terminate" ? "danger" : "")}">{ActionLabel(action)}</button></form>
            """);
        var ports = Each(i.PortForwards, p => H($"""
            <tr><td>{p.GuestPort}/{p.Protocol}</td><td>{p.HostAddress}:{p.HostPort}</td>
            <td>{(p.GuestPort == 22 ? H($"<code class=\"copy\">ssh -p {p.HostPort} {i.LoginUser ?? "root"}@{p.HostAddress}</code> <button type=\"button\" class=\"copy-button\" data-copy=\"ssh -p {p.HostPort} {i.LoginUser ?? "root"}@{p.HostAddress}\">Copy</button>") : Markup.Empty)}</td></tr>
            """));
        var body = H($"""
            {(problem is null ? Markup.Empty : H($"<p class=\"problem\" role=\"alert\">{problem}</p>"))}
            <div id="instance-details">
            <section class="card" id="instance" data-id="{i.Id}" data-state="{i.State}" data-ready="{(i.Ready ? "true" : "false")}">
            <p>{StateBadge(i.State, i.Ready)} <span class="hint" aria-live="polite" id="instance-live"></span></p>
            <div class="actions">{Each(actions, Action)}</div>
            <dl>
            {Row("Id", i.Id.ToString(CultureInfo.InvariantCulture))}{Row("Owner", i.Owner)}
            {Row("Failed step", i.FailedStep)}{Row("Failure", i.FailureReason)}{Row("Scheduling", i.State == "PENDING" ? i.SchedulingMessage ?? "waiting for a host" : null)}
            {Row("Not ready", i.NotReady ? i.NotReadyReason : null)}
            {Row("Image", i.Image)}{Row("Image title", provenance?.Title)}{Row("Endorsed by", provenance is null ? null : $"{provenance.Endorser.Email} on {Time(provenance.Created)}")}
            {Row("Saved as image", i.SavedImage)}
            {Row("Type", $"{i.InstanceType ?? "custom"}: {i.Cpu} CPU, {i.MemoryMiB} MiB")}{Row("Host", i.Host)}{Row("Driver", $"{i.Driver}{(i.Accelerator is null ? "" : $" ({i.Accelerator})")}")}
            {Row("Addresses", string.Join(", ", i.Nics.Select(n => $"{n.Network}: {n.Ip}")))}
            {Row("Key pair", i.KeyName)}{Row("Context", string.Join(", ", i.Context.Select(kv => $"{kv.Key}={kv.Value}")))}
            {Row("Created", Time(i.CreatedAt))}{Row("Running since", Time(i.StartedAt))}{Row("Ready since", Time(i.ReadyAt))}{Row("Ended", Time(i.EndedAt))}
            </dl></section>
            <h2>Ports</h2>
            {(i.PortForwards.Count == 0 ? H($"<p class=\"hint\">No forwarded port.</p>") : H($"<table><thead><tr><th scope=\"col\">Guest port</th><th scope=\"col\">Reach it at</th><th scope=\"col\">Command</th></tr></thead><tbody>{ports}</tbody></table>"))}
            <h2>Volumes</h2>
            {(attached.Count == 0 ? H($"<p class=\"hint\" id=\"no-volumes\">No volume attached.</p>") : H($"""
              <table id="attached-volumes"><thead><tr><th scope="col">Volume</th><th scope="col">Device</th><th scope="col">Size</th><th scope="col"></th></tr></thead><tbody>
              {Each(attached, a => H($"<tr><td>{a.Volume.Tag ?? a.Volume.Uuid.ToString()}<div class=\"id\">{a.Volume.Uuid}</div></td><td>{a.Mount.Device}</td><td>{a.Volume.SizeGiB} GiB</td><td><form method=\"post\" action=\"/ui/instances/{i.Id}/volumes/{a.Volume.Uuid}/detach\" class=\"inline\">{csrf}<button type=\"submit\">Detach</button></form></td></tr>"))}
              </tbody></table>
              """))}
            {If(free.Count > 0 && i.State == "RUNNING", H($"""
              <form method="post" action="/ui/instances/{i.Id}/volumes" class="search">{csrf}<label for="attach-volume">Attach a volume</label>
              <select id="attach-volume" name="volume">{Each(free, v => H($"<option value=\"{v.Uuid}\">{v.Tag ?? v.Uuid.ToString()} ({v.SizeGiB} GiB)</option>"))}</select><button type="submit">Attach</button></form>
              """))}
            <p><a href="/ui/volumes">Create a volume</a></p>
            </div>
            <div id="instance-console" data-live="{(live ? "true" : "false")}">
            {If(i.Driver != "simulated" && i.State is "RUNNING" or "BOOT" or "SUSPENDED", H($"<p><a class=\"button\" id=\"open-screen\" href=\"/ui/instances/{i.Id}/screen\">Open the graphical console</a></p>"))}
            <h2>Serial console</h2>
            {(live ? H($"""<p class="hint">Live: what you type goes to the VM's serial port.</p><div id="terminal" class="terminal" role="application" aria-label="Serial console of {i.Name}" data-ws="/api/v1/instances/{i.Id}/console/ws" data-log="/api/v1/instances/{i.Id}/console?tail=500"></div>""") : Markup.Empty)}
            <details {(live ? Markup.Empty : new Markup("open"))}><summary>Console log (last 200 lines)</summary><pre id="console-log" class="console" tabindex="0">{log}</pre></details>
            </div>
            """);
        // A QEMU instance's page always carries the console's scripts: the page updates itself in place as the state
        // changes (no reload), so the terminal may start later than the page (a PENDING instance has no driver yet).
        return i.Driver != "simulated"
            ? Layout.Page(http, $"Instance {i.Name}", body, status, "instances", "/ui/assets/vendor/xterm/xterm.css", "/ui/assets/vendor/xterm/xterm.js", "/ui/assets/vendor/xterm/addon-fit.js", "/ui/assets/console.js")
            : Layout.Page(http, $"Instance {i.Name}", body, status, "instances");
    }

    static Markup Row(string name, string? value) => string.IsNullOrEmpty(value) ? Markup.Empty : H($"<dt>{name}</dt><dd>{value}</dd>");

    static string ActionLabel(string action) => action switch
    {
        "shutdown" => "Shut down", "reboot" => "Reboot", "stop" => "Stop", "start" => "Start", "suspend" => "Suspend", "resume" => "Resume",
        "terminate" => "Terminate (kill)", "save" => "Shut down and save as image", _ => action,
    };

    static async Task<IResult> ActOnInstance(long id, string action, HttpContext http, IInstances instances, CancellationToken ct)
    {
        try
        {
            var caller = http.User.ToCaller();
            if (action == "terminate") await instances.TerminateAsync(caller, id, ct);
            else if (action == "save") await instances.ActAsync(caller, id, "shutdown", new InstanceActionOptions(Save: true), ct);
            else await instances.ActAsync(caller, id, action, ct);
        }
        catch (Exception e) when (WebProblem.From(e) is { } p)
        {
            return p.Status == 404 ? Layout.Message(http, "Not found", 404, p.Detail) : await Back(http, id, p, ct);
        }
        return Results.Redirect($"/ui/instances/{id}");
    }

    static async Task<IResult> AttachVolume(long id, HttpContext http, IVolumeService volumes, CancellationToken ct)
    {
        var form = await http.Request.ReadFormAsync(ct);
        try
        {
            if (!Guid.TryParse(form["volume"].ToString(), out var uuid))
                throw new Platform.Contracts.InvalidInputException("volume", "Choose a volume to attach.");
            await volumes.AttachAsync(http.User.ToCaller(), uuid, id, ct: ct);
        }
        catch (Exception e) when (WebProblem.From(e) is { } p) { return p.Status == 404 ? Layout.Message(http, "Not found", 404, p.Detail) : await Back(http, id, p, ct); }
        return Results.Redirect($"/ui/instances/{id}");
    }

    static async Task<IResult> DetachVolume(long id, Guid uuid, HttpContext http, IVolumeService volumes, CancellationToken ct)
    {
        try { await volumes.DetachAsync(http.User.ToCaller(), uuid, id, ct); }
        catch (Exception e) when (WebProblem.From(e) is { } p) { return p.Status == 404 ? Layout.Message(http, "Not found", 404, p.Detail) : await Back(http, id, p, ct); }
        return Results.Redirect($"/ui/instances/{id}");
    }

    /// <summary>The instance page again, with the refusal shown at its top and the refusal's status.</summary>
    static Task<IResult> Back(HttpContext http, long id, WebProblem problem, CancellationToken ct)
    {
        var services = http.RequestServices;
        return RenderInstance(id, http, services.GetRequiredService<IInstances>(), services.GetRequiredService<IVolumeService>(),
            services.GetRequiredService<IMarketplaceCatalog>(), problem.Detail, problem.Status, ct);
    }
}
