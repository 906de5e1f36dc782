using System.IO.Compression;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text.Json.Nodes;
using StratusLab.Server.Modules.Pdisk.Contracts;
using StratusLab.Server.Tests.Modules.Compute;
using StratusLab.Server.Tests.Support;

namespace StratusLab.Server.Tests.Modules.Pdisk;

/// <summary>The volumes API over HTTP: file backend with real qemu-img, local sharing, simulated VMs.</summary>
public class VolumeApiTests
{
    TestServer _server = null!;
    HttpClient _admin = null!;
    FileHttpServer _files = null!;

    [OneTimeSetUp]
    public async Task Start()
    {
        _server = await TestServer.StartAsync(new Dictionary<string, string?> { ["Pdisk:MaxVolumeGiB"] = "64" });
        await TestImages.RegisterDefaultAsync(_server);
        _admin = _server.Client();
        _files = await FileHttpServer.StartAsync();
    }

    [OneTimeTearDown]
    public async Task Stop()
    {
        _admin?.Dispose();
        if (_files is not null) await _files.DisposeAsync();
        if (_server is not null) await _server.DisposeAsync();
    }

    static string Unique(string prefix) => prefix + Guid.NewGuid().ToString("N")[..8];

    async Task<(string Name, HttpClient Http)> UserAsync(string prefix = "vol")
    {
        var name = Unique(prefix);
        return (name, _server.Client(await _server.CreateUserAsync(name)));
    }

    string PathOf(JsonNode volume) => new Uri(volume["turl"]!.GetValue<string>()).LocalPath;

    [Test]
    public async Task An_empty_volume_is_a_sparse_file_charged_to_its_owners_storage_quota_until_deleted()
    {
        var (user, http) = await UserAsync();
        var volume = await Volumes.CreateAsync(http, new { size = 2, tag = "scratch-1" });
        Assert.Multiple(() =>
        {
            Assert.That(volume["type"]!.GetValue<string>(), Is.EqualTo("DATA_IMAGE_RAW_READ_WRITE"));
            Assert.That(volume["state"]!.GetValue<string>(), Is.EqualTo("READY"));
            Assert.That(volume["owner"]!.GetValue<string>(), Is.EqualTo(user));
            Assert.That(volume["size"]!.GetValue<long>(), Is.EqualTo(2));
            Assert.That(volume["bytes"]!.GetValue<long>(), Is.EqualTo(2L << 30));
            Assert.That(volume["visibility"]!.GetValue<string>(), Is.EqualTo("private"));
            Assert.That(volume["sharing"]!.GetValue<string>(), Is.EqualTo("local"));
            Assert.That(volume["count"]!.GetValue<long>(), Is.Zero);
            Assert.That(volume["turl"]!.GetValue<string>(), Does.StartWith("file:///"));
        });
        var path = PathOf(volume);
        Assert.That(new FileInfo(path).Length, Is.EqualTo(2L << 30));
        Assert.That(await Volumes.StorageUsedAsync(_admin, user), Is.EqualTo(2));

        var turl = await (await http.GetAsync($"/api/v1/volumes/{Volumes.Uuid(volume)}/turl")).Json(200);
        Assert.That(turl["format"]!.GetValue<string>(), Is.EqualTo("raw"));

        await (await http.DeleteAsync($"/api/v1/volumes/{Volumes.Uuid(volume)}")).Json(204);
        Assert.That(File.Exists(path), Is.False);
        Assert.That(await Volumes.StorageUsedAsync(_admin, user), Is.Zero);
        await (await http.GetAsync($"/api/v1/volumes/{Volumes.Uuid(volume)}")).Problem(404);
    }

    [Test]
    public async Task Only_owners_admins_and_for_reading_everyone_on_public_volumes_see_a_volume()
    {
        var (owner, ownerHttp) = await UserAsync("own");
        var (_, otherHttp) = await UserAsync("oth");
        var tag = Unique("t");
        var hidden = Volumes.Uuid(await Volumes.CreateAsync(ownerHttp, new { size = 1, tag }));
        var shown = Volumes.Uuid(await Volumes.CreateAsync(ownerHttp, new { size = 1, tag, visibility = "public" }));

        await (await otherHttp.GetAsync($"/api/v1/volumes/{hidden}")).Problem(404);
        var visible = await (await otherHttp.GetAsync($"/api/v1/volumes?tag={tag}")).Json(200);
        Assert.That(visible.AsArray().Select(v => Volumes.Uuid(v!)), Is.EqualTo(new[] { shown }));
        var all = await (await _admin.GetAsync($"/api/v1/volumes?tag={tag}&owner={owner}")).Json(200);
        Assert.That(all.AsArray(), Has.Count.EqualTo(2), "admins see everything");

        var forbidden = await (await otherHttp.PutAsJsonAsync($"/api/v1/volumes/{shown}", new { tag = "mine" })).Problem(403);
        Assert.That(forbidden["detail"]!.GetValue<string>(), Does.Contain("only its owner"));
        await (await otherHttp.DeleteAsync($"/api/v1/volumes/{shown}")).Problem(403);
        await (await otherHttp.DeleteAsync($"/api/v1/volumes/{hidden}")).Problem(404);

        var updated = await (await ownerHttp.PutAsJsonAsync($"/api/v1/volumes/{hidden}", new { visibility = "public", tag = "renamed" })).Json(200);
        Assert.That(updated["visibility"]!.GetValue<string>(), Is.EqualTo("public"));
        Assert.That(updated["tag"]!.GetValue<string>(), Is.EqualTo("renamed"));
        await (await otherHttp.GetAsync($"/api/v1/volumes/{hidden}")).Json(200);
    }

    [Test]
    public async Task Members_of_a_volumes_groups_may_read_it()
    {
        var group = Unique("g");
        var created = await (await _admin.PostAsJsonAsync("/api/v1/groups", new { name = group })).Json(201);
        var groupId = created["id"]!.GetValue<long>();
        var (_, ownerHttp) = await UserAsync("gown");
        var member = Unique("gmem");
        await (await _admin.PostAsJsonAsync("/api/v1/users", new { name = member, password = "password-" + member, groups = new[] { group } })).Json(201);
        var token = (await (await _admin.PostAsJsonAsync("/api/v1/tokens", new { user = member })).Json(201))["token"]!.GetValue<string>();
        using var memberHttp = _server.Client(token);
        var (_, strangerHttp) = await UserAsync("gstr");

        var uuid = Volumes.Uuid(await Volumes.CreateAsync(ownerHttp, new { size = 1, groups = new[] { groupId } }));
        await (await memberHttp.GetAsync($"/api/v1/volumes/{uuid}")).Json(200);
        await (await strangerHttp.GetAsync($"/api/v1/volumes/{uuid}")).Problem(404);
    }

    [Test]
    public async Task A_snapshot_of_an_origin_is_live_and_copy_on_write_and_rebase_makes_it_an_independent_origin()
    {
        var (_, http) = await UserAsync("snap");
        var (data, sha1) = Volumes.DiskBytes(4);
        var origin = await UploadAsync(http, data, "type=MACHINE_IMAGE_ORIGIN&visibility=public");
        var originUuid = Volumes.Uuid(origin);

        var snapshot = await (await http.PostAsJsonAsync($"/api/v1/volumes/{originUuid}/snapshots", new { tag = "clone" })).Json(201);
        var snapUuid = Volumes.Uuid(snapshot);
        Assert.Multiple(() =>
        {
            Assert.That(snapshot["type"]!.GetValue<string>(), Is.EqualTo("MACHINE_IMAGE_LIVE"));
            Assert.That(snapshot["identifier"]!.GetValue<string>(), Is.EqualTo("snapshot:" + originUuid));
            Assert.That(snapshot["origin"]!.GetValue<string>(), Is.EqualTo(originUuid));
            Assert.That(snapshot["format"]!.GetValue<string>(), Is.EqualTo("qcow2"));
            Assert.That(snapshot["bytes"]!.GetValue<long>(), Is.EqualTo(data.Length));
        });
        Assert.That(new FileInfo(PathOf(snapshot)).Length, Is.LessThan(1024 * 1024), "copy-on-write: no data copied");
        Assert.That((await Volumes.GetAsync(http, originUuid))["count"]!.GetValue<long>(), Is.EqualTo(1), "an origin counts its snapshots");
        Assert.That(await DownloadSha1Async(http, snapUuid), Is.EqualTo(sha1), "the snapshot reads the origin's data");

        var conflict = await (await http.DeleteAsync($"/api/v1/volumes/{originUuid}")).Problem(409);
        Assert.That(conflict["detail"]!.GetValue<string>(), Does.Contain(snapUuid));
        Assert.That(conflict["snapshots"]!.AsArray().Select(s => s!.GetValue<string>()), Is.EqualTo(new[] { snapUuid }));

        var notOrigin = await (await http.PostAsJsonAsync($"/api/v1/volumes/{snapUuid}/snapshots", new { })).Problem(422);
        Assert.That(notOrigin["detail"]!.GetValue<string>(), Does.Contain("Rebase it first"));

        var rebased = await (await http.PostAsync($"/api/v1/volumes/{snapUuid}/rebase", null)).Json(200);
        Assert.That(rebased["type"]!.GetValue<string>(), Is.EqualTo("MACHINE_IMAGE_ORIGIN"));
        Assert.That(rebased["origin"], Is.Null);
        await (await http.DeleteAsync($"/api/v1/volumes/{originUuid}")).Json(204);
        Assert.That(await DownloadSha1Async(http, snapUuid), Is.EqualTo(sha1), "the rebased volume kept the data after its origin was deleted");
        await (await http.PostAsync($"/api/v1/volumes/{snapUuid}/rebase", null)).Problem(422);
        await (await http.DeleteAsync($"/api/v1/volumes/{snapUuid}")).Json(204);
    }

    [Test]
    public async Task Others_may_snapshot_a_public_origin_and_own_the_snapshot()
    {
        var (_, ownerHttp) = await UserAsync("puo");
        var (other, otherHttp) = await UserAsync("pus");
        var origin = Volumes.Uuid(await Volumes.CreateAsync(ownerHttp, new { size = 1, type = "DATA_IMAGE_ORIGIN", visibility = "public" }));
        var snapshot = await (await otherHttp.PostAsJsonAsync($"/api/v1/volumes/{origin}/snapshots", new { })).Json(201);
        Assert.That(snapshot["owner"]!.GetValue<string>(), Is.EqualTo(other));
        Assert.That(snapshot["type"]!.GetValue<string>(), Is.EqualTo("DATA_IMAGE_LIVE"));
        Assert.That(await Volumes.StorageUsedAsync(_admin, other), Is.EqualTo(1));
    }

    [TestCase("""{"size": 0}""", 400, "size")]
    [TestCase("""{"size": 65}""", 400, "size")]
    [TestCase("""{"size": -1}""", 400, "size")]
    [TestCase("""{"size": "big"}""", 400, "size")]
    [TestCase("""{}""", 400, "size")]
    [TestCase("""{"size": 1, "type": "FLOPPY"}""", 400, "type")]
    [TestCase("""{"size": 1, "type": "MACHINE_IMAGE_LIVE"}""", 422, "type")]
    [TestCase("""{"size": 1, "tag": "a/b"}""", 400, "tag")]
    [TestCase("""{"size": 1, "tag": "x; rm -rf /"}""", 400, "tag")]
    [TestCase("""{"size": 1, "tag": "../../etc"}""", 400, "tag")]
    [TestCase("""{"size": 1, "tag": "$(reboot)"}""", 400, "tag")]
    [TestCase("""{"size": 1, "tag": "a b"}""", 400, "tag")]
    [TestCase("""{"size": 1, "visibility": "secret"}""", 400, "visibility")]
    [TestCase("""{"size": 1, "sharing": "nfs"}""", 400, "sharing")]
    [TestCase("""{"size": 1, "identifier": "../x"}""", 400, "identifier")]
    [TestCase("""{"size": 1, "groups": [-1]}""", 400, "groups")]
    [TestCase("""{"size": 1, "sha1": "abc"}""", 400, "sha1")]
    [TestCase("""{"size": 1, "bytes": 10}""", 400, "bytes")]
    [TestCase("""{"url": "ftp://example.org/disk.img"}""", 400, "url")]
    [TestCase("""{"url": "file:///etc/passwd"}""", 400, "url")]
    [TestCase("""{"url": "not a url"}""", 400, "url")]
    [TestCase("""{"url": "http://127.0.0.1:1/x.img", "size": 1}""", 400, "size")]
    [TestCase("""{"url": "http://127.0.0.1:1/x.img", "sha1": "zz"}""", 400, "sha1")]
    [TestCase("""{"size": 1, "colour": "red"}""", 400, "colour")]
    public async Task Bad_input_is_a_problem_naming_the_field_and_leaves_nothing_behind(string json, int status, string field)
    {
        var (user, http) = await UserAsync("bad");
        var before = Volumes.FilesOf(_server);
        var problem = await (await http.PostAsync("/api/v1/volumes", Http.RawJson(json))).Problem(status);
        Assert.That(problem["field"]?.GetValue<string>(), Is.EqualTo(field), problem.ToJsonString());
        Assert.That(Volumes.FilesOf(_server), Is.EqualTo(before));
        Assert.That(await Volumes.StorageUsedAsync(_admin, user), Is.Zero);
        Assert.That((await (await http.GetAsync($"/api/v1/volumes?owner={user}")).Json(200)).AsArray(), Is.Empty);
    }

    [TestCase("GET", "/api/v1/volumes/not-a-uuid")]
    [TestCase("DELETE", "/api/v1/volumes/1234")]
    [TestCase("GET", "/api/v1/volumes/..%2F..%2Fetc%2Fpasswd/turl")]
    [TestCase("POST", "/api/v1/volumes/0f1e2d3c4b5a69788a9b0c1d2e3f4a5b/snapshots")]
    [TestCase("GET", "/api/v1/volumes/{0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b}/content")]
    public async Task Uuids_that_are_not_uuids_are_a_400(string method, string path)
    {
        var problem = await (await _admin.SendAsync(new HttpRequestMessage(new HttpMethod(method), path) { Content = method == "POST" ? Http.RawJson("{}") : null })).Problem(400);
        Assert.That(problem["field"]!.GetValue<string>(), Is.EqualTo("uuid"));
    }

    [TestCase("type=BOGUS", "type")]
    [TestCase("tag=a%2Fb", "tag")]
    [TestCase("sha1=123", "sha1")]
    [TestCase("type=DATA_IMAGE_LIVE", "type")]
    public async Task Bad_upload_parameters_are_refused_before_the_body_is_read(string query, string field)
    {
        var before = Volumes.FilesOf(_server);
        var response = await _admin.PostAsync("/api/v1/volumes/upload?" + query, new ByteArrayContent(new byte[4096]));
        var problem = await response.Problem(field == "type" && query.Contains("LIVE") ? 422 : 400);
        Assert.That(problem["field"]!.GetValue<string>(), Is.EqualTo(field));
        Assert.That(Volumes.FilesOf(_server), Is.EqualTo(before));
    }

    async Task<JsonNode> UploadAsync(HttpClient http, byte[] data, string query = "", int status = 201, bool gzip = false, string? contentType = null)
    {
        var body = gzip ? Gzip(data) : data;
        var content = new ByteArrayContent(body);
        if (contentType is not null) content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue(contentType);
        // Expect: 100-continue (as curl sends for large bodies): a refusal made before the body is read reaches the client
        // instead of a broken pipe while it is still writing.
        using var request = new HttpRequestMessage(HttpMethod.Post, "/api/v1/volumes/upload?" + query) { Content = content };
        request.Headers.ExpectContinue = true;
        var response = await http.SendAsync(request);
        return status >= 400 ? await response.Problem(status) : await response.Json(status);
    }

    static byte[] Gzip(byte[] data)
    {
        using var buffer = new MemoryStream();
        using (var gz = new GZipStream(buffer, CompressionLevel.Fastest)) gz.Write(data);
        return buffer.ToArray();
    }

    static async Task<string> DownloadSha1Async(HttpClient http, string uuid, string format = "raw")
    {
        using var response = await http.GetAsync($"/api/v1/volumes/{uuid}/content?format={format}", HttpCompletionOption.ResponseHeadersRead);
        Assert.That((int)response.StatusCode, Is.EqualTo(200), await response.Content.ReadAsStringAsync());
        Assert.That(response.Content.Headers.ContentType?.MediaType, Is.EqualTo("application/gzip"));
        Assert.That(response.Content.Headers.ContentDisposition?.FileName, Is.EqualTo($"{uuid}.{format}.gz").Or.EqualTo($"\"{uuid}.{format}.gz\""));
        await using var body = await response.Content.ReadAsStreamAsync();
        await using var gunzip = new GZipStream(body, CompressionMode.Decompress);
        return Convert.ToHexStringLower(await SHA1.HashDataAsync(gunzip));
    }

    [Test]
    public async Task An_upload_and_a_download_round_trip_with_equal_checksums_raw_or_gzip()
    {
        var (user, http) = await UserAsync("up");
        var (data, sha1) = Volumes.DiskBytes(3);
        // curl --data-binary sends a form content type: any type is accepted, the bytes say what the image is.
        var raw = await UploadAsync(http, data, $"bytes={data.Length}&sha1={sha1}&tag=raw-upload", contentType: "application/x-www-form-urlencoded");
        Assert.That(raw["sha1"]!.GetValue<string>(), Is.EqualTo(sha1));
        Assert.That(raw["bytes"]!.GetValue<long>(), Is.EqualTo(data.Length));
        Assert.That(raw["format"]!.GetValue<string>(), Is.EqualTo("raw"));
        Assert.That(await DownloadSha1Async(http, Volumes.Uuid(raw)), Is.EqualTo(sha1));
        Assert.That(new FileInfo(PathOf(raw)).Length, Is.EqualTo(data.Length));

        var compressed = Gzip(data);
        var gz = await UploadAsync(http, data, $"bytes={compressed.Length}&sha1={Convert.ToHexStringLower(SHA1.HashData(compressed))}", gzip: true,
            contentType: "application/gzip");
        Assert.That(await DownloadSha1Async(http, Volumes.Uuid(gz)), Is.EqualTo(sha1), "a gzip upload is unpacked on the way in");
        Assert.That(await Volumes.StorageUsedAsync(_admin, user), Is.EqualTo(2));
    }

    [Test]
    public async Task A_qcow2_upload_stays_qcow2_and_downloads_as_raw_or_qcow2()
    {
        var (_, http) = await UserAsync("q2");
        var dir = TempDir.Create("q2");
        try
        {
            var path = TestImages.CreateQcow2(dir, "small", "8M");
            var upload = await UploadAsync(http, await File.ReadAllBytesAsync(path));
            Assert.That(upload["format"]!.GetValue<string>(), Is.EqualTo("qcow2"));
            Assert.That(upload["bytes"]!.GetValue<long>(), Is.EqualTo(8 << 20), "the size is the virtual disk size");
            var zeros = Convert.ToHexStringLower(SHA1.HashData(new byte[8 << 20]));
            Assert.That(await DownloadSha1Async(http, Volumes.Uuid(upload)), Is.EqualTo(zeros));
            await DownloadSha1Async(http, Volumes.Uuid(upload), "qcow2");
        }
        finally { TempDir.Delete(dir); }
    }

    [Test]
    public async Task An_upload_larger_than_declared_is_a_413_and_nothing_is_kept()
    {
        var (user, http) = await UserAsync("big");
        var before = Volumes.FilesOf(_server);
        var (data, _) = Volumes.DiskBytes(2);
        var declared = await UploadAsync(http, data, "bytes=1048576", 413);
        Assert.That(declared["detail"]!.GetValue<string>(), Does.Contain("1048576"));

        // Chunked (no Content-Length): the excess is found while streaming.
        var chunked = new StreamContent(new MemoryStream(data));
        chunked.Headers.ContentLength = null;
        var request = new HttpRequestMessage(HttpMethod.Post, "/api/v1/volumes/upload?bytes=1048576") { Content = chunked };
        request.Headers.TransferEncodingChunked = true;
        await (await http.SendAsync(request)).Problem(413);

        Assert.That(Volumes.FilesOf(_server), Is.EqualTo(before));
        Assert.That(await Volumes.StorageUsedAsync(_admin, user), Is.Zero);
    }

    [Test]
    public async Task An_upload_whose_checksum_or_size_does_not_match_is_refused_saying_which_check_failed()
    {
        var (_, http) = await UserAsync("sum");
        var before = Volumes.FilesOf(_server);
        var (data, _) = Volumes.DiskBytes(1);
        var sha = await UploadAsync(http, data, $"sha1={new string('0', 40)}", 422);
        Assert.That(sha["detail"]!.GetValue<string>(), Does.Contain("SHA-1 check failed"));
        var chunked = new StreamContent(new MemoryStream(data));
        var request = new HttpRequestMessage(HttpMethod.Post, $"/api/v1/volumes/upload?bytes={data.Length + 512}") { Content = chunked };
        request.Headers.TransferEncodingChunked = true;
        var size = await (await http.SendAsync(request)).Problem(422);
        Assert.That(size["detail"]!.GetValue<string>(), Does.Contain("size check failed"));
        Assert.That(Volumes.FilesOf(_server), Is.EqualTo(before));
    }

    [Test]
    public async Task Images_in_other_formats_or_with_backing_files_are_refused()
    {
        var (_, http) = await UserAsync("fmt");
        var dir = TempDir.Create("fmt");
        try
        {
            var vmdk = Path.Combine(dir, "disk.vmdk");
            Assert.That((await HostTools.RunAsync("qemu-img", ["create", "-q", "-f", "vmdk", vmdk, "1M"], TimeSpan.FromSeconds(30))).Exit, Is.Zero);
            var refused = await UploadAsync(http, await File.ReadAllBytesAsync(vmdk), "", 422);
            Assert.That(refused["detail"]!.GetValue<string>(), Does.Contain("vmdk"));

            var baseImage = TestImages.CreateQcow2(dir, "base", "1M");
            var overlay = Path.Combine(dir, "overlay.qcow2");
            Assert.That((await HostTools.RunAsync("qemu-img", ["create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", baseImage, overlay], TimeSpan.FromSeconds(30))).Exit, Is.Zero);
            var backed = await UploadAsync(http, await File.ReadAllBytesAsync(overlay), "", 422);
            Assert.That(backed["detail"]!.GetValue<string>(), Does.Contain("backing file"));
            Assert.That(Volumes.FilesOf(_server).Where(f => f.StartsWith(".staging")), Is.Empty);
        }
        finally { TempDir.Delete(dir); }
    }

    [Test]
    public async Task A_volume_from_a_url_is_verified_against_bytes_and_sha1_and_removed_when_a_check_fails()
    {
        var (user, http) = await UserAsync("url");
        var (data, sha1) = Volumes.DiskBytes(2, seed: 7);
        var gz = Gzip(data);
        var url = _files.Serve(Unique("img") + ".img.gz", gz);
        var gzSha1 = Convert.ToHexStringLower(SHA1.HashData(gz));

        var good = await Volumes.CreateAsync(http, new { url = url.ToString(), bytes = gz.Length, sha1 = gzSha1, type = "MACHINE_IMAGE_ORIGIN" });
        Assert.That(good["sha1"]!.GetValue<string>(), Is.EqualTo(gzSha1));
        Assert.That(good["bytes"]!.GetValue<long>(), Is.EqualTo(data.Length));
        Assert.That(await DownloadSha1Async(http, Volumes.Uuid(good)), Is.EqualTo(sha1));

        var before = Volumes.FilesOf(_server);
        var badSha = await (await http.PostAsJsonAsync("/api/v1/volumes", new { url = url.ToString(), sha1 = new string('a', 40) })).Problem(422);
        Assert.That(badSha["detail"]!.GetValue<string>(), Does.Contain("SHA-1 check failed"));
        Assert.That(badSha["field"]!.GetValue<string>(), Is.EqualTo("sha1"));
        var badSize = await (await http.PostAsJsonAsync("/api/v1/volumes", new { url = url.ToString(), bytes = gz.Length - 1 })).Problem(422);
        Assert.That(badSize["detail"]!.GetValue<string>(), Does.Contain("size check failed"));
        Assert.That(badSize["field"]!.GetValue<string>(), Is.EqualTo("bytes"));
        var missing = await (await http.PostAsJsonAsync("/api/v1/volumes", new { url = new Uri(_files.BaseAddress, "nothing-here").ToString() })).Problem(422);
        Assert.That(missing["detail"]!.GetValue<string>(), Does.Contain("404"));
        var unreachable = await (await http.PostAsJsonAsync("/api/v1/volumes", new { url = "http://127.0.0.1:1/x.img" })).Problem(422);
        Assert.That(unreachable["detail"]!.GetValue<string>(), Does.Contain("Could not download"));

        Assert.That(Volumes.FilesOf(_server), Is.EqualTo(before));
        Assert.That(await Volumes.StorageUsedAsync(_admin, user), Is.EqualTo(1));
    }

    [Test]
    public async Task A_taken_marketplace_identifier_is_a_conflict()
    {
        var (_, http) = await UserAsync("ident");
        var identifier = "M" + Guid.NewGuid().ToString("N")[..26];
        var first = Volumes.Uuid(await Volumes.CreateAsync(http, new { size = 1, identifier, type = "MACHINE_IMAGE_ORIGIN" }));
        var conflict = await (await http.PostAsJsonAsync("/api/v1/volumes", new { size = 1, identifier })).Problem(409);
        Assert.That(conflict["detail"]!.GetValue<string>(), Does.Contain(first));
        var found = await (await http.GetAsync($"/api/v1/volumes?identifier={identifier}")).Json(200);
        Assert.That(found.AsArray().Select(v => Volumes.Uuid(v!)), Is.EqualTo(new[] { first }));
    }

    [Test]
    public async Task Storage_quota_is_enforced_per_user()
    {
        var (user, http) = await UserAsync("quota");
        await (await _admin.PostAsJsonAsync($"/api/v1/quotas/{user}", new { storageGiB = 3 })).Json(200);
        await Volumes.CreateAsync(http, new { size = 2 });
        var before = Volumes.FilesOf(_server);
        var refused = await (await http.PostAsJsonAsync("/api/v1/volumes", new { size = 2 })).Problem(409);
        Assert.That(refused["detail"]!.GetValue<string>(), Does.Contain("storageGiB"));
        Assert.That(Volumes.FilesOf(_server), Is.EqualTo(before));
        await Volumes.CreateAsync(http, new { size = 1 });
        Assert.That(await Volumes.StorageUsedAsync(_admin, user), Is.EqualTo(3));
    }

    async Task<long> RunningInstanceAsync(HttpClient http)
    {
        var id = (await InstanceApiTests.CreateAsync(http, new { name = "vm" }))["id"]!.GetValue<long>();
        Assert.That((await InstanceApiTests.WaitAsync(http, id, "RUNNING"))["state"]!.GetValue<string>(), Is.EqualTo("RUNNING"));
        return id;
    }

    [Test, CancelAfter(60_000)]
    public async Task Volumes_named_at_launch_are_attached_at_boot_and_released_when_the_instance_ends()
    {
        var (_, http) = await UserAsync("boot-vols");
        var data = Volumes.Uuid(await Volumes.CreateAsync(http, new { size = 1, tag = "data" }));
        var scratch = Volumes.Uuid(await Volumes.CreateAsync(http, new { size = 1, tag = "scratch" }));
        var created = await InstanceApiTests.CreateAsync(http, new { name = "with-disks", volumes = new[] { data, scratch } });
        var id = created["id"]!.GetValue<long>();
        Assert.That(created["volumes"]!.AsArray().Select(v => v!.GetValue<string>()), Is.EqualTo(new[] { data, scratch }));
        Assert.That((await InstanceApiTests.WaitAsync(http, id, "RUNNING"))["state"]!.GetValue<string>(), Is.EqualTo("RUNNING"));

        var mounts = (await Volumes.GetAsync(http, data))["mounts"]!.AsArray();
        Assert.That(mounts.Select(m => (m!["instanceId"]!.GetValue<long>(), m["device"]!.GetValue<string>())), Is.EqualTo(new[] { (id, "vdb") }));
        Assert.That((await Volumes.GetAsync(http, scratch))["mounts"]![0]!["device"]!.GetValue<string>(), Is.EqualTo("vdc"));
        // A read-write volume is written by one VM at a time: a second instance asking for it fails in PROLOG, keeping nothing.
        var second = (await InstanceApiTests.CreateAsync(http, new { volumes = new[] { data } }))["id"]!.GetValue<long>();
        var failed = await InstanceApiTests.WaitAsync(http, second, "FAILED");
        Assert.That(failed["state"]!.GetValue<string>(), Is.EqualTo("FAILED"));
        Assert.That(failed["failedStep"]!.GetValue<string>(), Is.EqualTo("PROLOG"));
        Assert.That(failed["failureReason"]!.GetValue<string>(), Does.Contain($"volume {data} could not be attached"));
        Assert.That((await Volumes.GetAsync(http, data))["mounts"]!.AsArray(), Has.Count.EqualTo(1), "the failed instance holds no mount");

        Assert.That((await http.DeleteAsync($"/api/v1/instances/{id}")).IsSuccessStatusCode);
        await InstanceApiTests.WaitAsync(http, id, "DONE");
        Assert.That((await Volumes.GetAsync(http, data))["mounts"]!.AsArray(), Is.Empty, "the instance's end releases its volumes");
    }

    [TestCase("not-a-uuid", 400, "volumes[0]", "is not a volume uuid")]
    [TestCase("00000000-0000-0000-0000-000000000001", 422, "volumes[0]", "does not exist, or it is not yours")]
    public async Task Bad_volumes_at_launch_are_refused_naming_the_entry_and_nothing_is_made(string volume, int status, string field, string detail)
    {
        var (_, http) = await UserAsync("bad-vols");
        var before = (await (await http.GetAsync("/api/v1/instances")).Json(200)).AsArray().Count;
        var problem = await (await http.PostAsJsonAsync("/api/v1/instances", new { volumes = new[] { volume } })).Problem(status);
        Assert.That(problem["field"]!.GetValue<string>(), Is.EqualTo(field));
        Assert.That(problem["detail"]!.GetValue<string>(), Does.Contain(detail));
        Assert.That((await (await http.GetAsync("/api/v1/instances")).Json(200)).AsArray(), Has.Count.EqualTo(before));
    }

    [Test]
    public async Task Someone_elses_volume_cannot_be_attached_at_launch()
    {
        var (_, owner) = await UserAsync("vol-owner");
        var (_, other) = await UserAsync("vol-other");
        var uuid = Volumes.Uuid(await Volumes.CreateAsync(owner, new { size = 1 }));
        var problem = await (await other.PostAsJsonAsync("/api/v1/instances", new { volumes = new[] { uuid } })).Problem(422);
        Assert.That(problem["detail"]!.GetValue<string>(), Does.Contain("not yours"));
    }

    [Test]
    public async Task A_mounted_volume_cannot_be_deleted_or_written_by_two_instances_and_detaching_frees_it()
    {
        var (_, http) = await UserAsync("mnt");
        var vm1 = await RunningInstanceAsync(http);
        var vm2 = await RunningInstanceAsync(http);
        var uuid = Volumes.Uuid(await Volumes.CreateAsync(http, new { size = 1 }));

        var mount = await (await http.PostAsJsonAsync($"/api/v1/volumes/{uuid}/mounts", new { instanceId = vm1 })).Json(201);
        Assert.That(mount["readOnly"]!.GetValue<bool>(), Is.False);
        Assert.That(mount["device"]!.GetValue<string>(), Does.StartWith("vol"));
        var volume = await Volumes.GetAsync(http, uuid);
        Assert.That(volume["count"]!.GetValue<long>(), Is.EqualTo(1), "a non-origin counts its mounts");
        Assert.That(volume["mounts"]![0]!["instanceId"]!.GetValue<long>(), Is.EqualTo(vm1));

        var busy = await (await http.DeleteAsync($"/api/v1/volumes/{uuid}")).Problem(409);
        Assert.That(busy["detail"]!.GetValue<string>(), Does.Contain($"instance {vm1}"));
        Assert.That(busy["mounts"]![0]!["instanceId"]!.GetValue<long>(), Is.EqualTo(vm1));
        var twice = await (await http.PostAsJsonAsync($"/api/v1/volumes/{uuid}/mounts", new { instanceId = vm2 })).Problem(409);
        Assert.That(twice["detail"]!.GetValue<string>(), Does.Contain("one instance at a time"));
        await (await http.PostAsJsonAsync($"/api/v1/volumes/{uuid}/mounts", new { instanceId = vm1 })).Problem(409);
        await (await http.GetAsync($"/api/v1/volumes/{uuid}/content")).Problem(409);

        await (await http.DeleteAsync($"/api/v1/volumes/{uuid}/mounts/{vm1}")).Json(204);
        await (await http.DeleteAsync($"/api/v1/volumes/{uuid}/mounts/{vm1}")).Problem(404);
        await (await http.DeleteAsync($"/api/v1/volumes/{uuid}")).Json(204);
    }

    [Test]
    public async Task Read_only_volumes_mount_read_only_on_many_instances()
    {
        var (_, http) = await UserAsync("ro");
        var vm1 = await RunningInstanceAsync(http);
        var vm2 = await RunningInstanceAsync(http);
        var uuid = Volumes.Uuid(await Volumes.CreateAsync(http, new { size = 1, type = "DATA_IMAGE_RAW_READONLY" }));
        var refused = await (await http.PostAsJsonAsync($"/api/v1/volumes/{uuid}/mounts", new { instanceId = vm1, readOnly = false })).Problem(422);
        Assert.That(refused["field"]!.GetValue<string>(), Is.EqualTo("readOnly"));
        Assert.That((await (await http.PostAsJsonAsync($"/api/v1/volumes/{uuid}/mounts", new { instanceId = vm1 })).Json(201))["readOnly"]!.GetValue<bool>(), Is.True);
        await (await http.PostAsJsonAsync($"/api/v1/volumes/{uuid}/mounts", new { instanceId = vm2 })).Json(201);
        Assert.That((await (await http.GetAsync($"/api/v1/volumes/{uuid}/mounts")).Json(200)).AsArray(), Has.Count.EqualTo(2));
    }

    [Test]
    public async Task Volumes_attach_only_to_running_instances_of_the_caller()
    {
        var (_, http) = await UserAsync("att");
        var (_, otherHttp) = await UserAsync("att2");
        var theirs = await RunningInstanceAsync(otherHttp);
        var uuid = Volumes.Uuid(await Volumes.CreateAsync(http, new { size = 1 }));
        await (await http.PostAsJsonAsync($"/api/v1/volumes/{uuid}/mounts", new { instanceId = theirs })).Problem(404);
        await (await http.PostAsJsonAsync($"/api/v1/volumes/{uuid}/mounts", new { instanceId = 999999 })).Problem(404);

        var mine = await RunningInstanceAsync(http);
        await (await http.PostAsync($"/api/v1/instances/{mine}/actions/stop", null)).Json(202);
        await InstanceApiTests.WaitAsync(http, mine, "STOPPED");
        var stopped = await (await http.PostAsJsonAsync($"/api/v1/volumes/{uuid}/mounts", new { instanceId = mine })).Problem(409);
        Assert.That(stopped["detail"]!.GetValue<string>(), Does.Contain("RUNNING"));
        Assert.That((await Volumes.GetAsync(http, uuid))["mounts"]!.AsArray(), Is.Empty, "a refused attach leaves no mount");
    }

    [Test]
    public async Task Killing_an_instance_releases_its_volumes_so_they_can_be_deleted_at_once()
    {
        var (_, http) = await UserAsync("kill");
        var vm = await RunningInstanceAsync(http);
        var uuid = Volumes.Uuid(await Volumes.CreateAsync(http, new { size = 1 }));
        await (await http.PostAsJsonAsync($"/api/v1/volumes/{uuid}/mounts", new { instanceId = vm })).Json(201);
        await (await http.DeleteAsync($"/api/v1/instances/{vm}")).Json(202);
        Assert.That((await InstanceApiTests.WaitAsync(http, vm, "DONE"))["state"]!.GetValue<string>(), Is.EqualTo("DONE"));
        await (await http.DeleteAsync($"/api/v1/volumes/{uuid}")).Json(204);
    }

    [Test]
    public async Task A_released_live_disk_waits_in_quarantine_that_admins_list_and_purge()
    {
        var (user, http) = await UserAsync("qua");
        var origin = Volumes.Uuid(await Volumes.CreateAsync(http, new { size = 1, type = "MACHINE_IMAGE_ORIGIN" }));
        var live = Volumes.Uuid(await (await http.PostAsJsonAsync($"/api/v1/volumes/{origin}/snapshots", new { })).Json(201));
        var volumes = _server.App.Services.GetRequiredService<IVolumes>();
        await volumes.QuarantineAsync(Guid.Parse(live));

        var quarantined = await Volumes.GetAsync(http, live);
        Assert.That(quarantined["state"]!.GetValue<string>(), Is.EqualTo("QUARANTINED"));
        var until = quarantined["quarantineUntil"]!.GetValue<DateTimeOffset>() - quarantined["quarantinedAt"]!.GetValue<DateTimeOffset>();
        Assert.That(until, Is.EqualTo(TimeSpan.FromMinutes(15)), "Pdisk:QuarantineMinutes defaults to 15");
        Assert.That((await (await http.GetAsync("/api/v1/volumes")).Json(200)).AsArray().Select(v => Volumes.Uuid(v!)), Does.Not.Contain(live));
        Assert.That((await (await http.GetAsync("/api/v1/volumes?quarantined=true")).Json(200)).AsArray().Select(v => Volumes.Uuid(v!)), Does.Contain(live));
        await (await http.GetAsync("/api/v1/volumes/quarantine")).Problem(403);
        Assert.That((await (await _admin.GetAsync("/api/v1/volumes/quarantine")).Json(200)).AsArray().Select(v => Volumes.Uuid(v!)), Does.Contain(live));
        await (await http.PostAsJsonAsync($"/api/v1/volumes/{live}/mounts", new { instanceId = 1 })).Problem(404);
        await (await http.DeleteAsync($"/api/v1/volumes/{live}")).Problem(409);
        await (await http.DeleteAsync($"/api/v1/volumes/{origin}")).Problem(409);
        Assert.That(await Volumes.StorageUsedAsync(_admin, user), Is.EqualTo(2), "a quarantined volume still counts");

        await (await _admin.DeleteAsync($"/api/v1/volumes/quarantine/{live}")).Json(204);
        await (await http.GetAsync($"/api/v1/volumes/{live}")).Problem(404);
        Assert.That(await Volumes.StorageUsedAsync(_admin, user), Is.EqualTo(1));
        await (await http.DeleteAsync($"/api/v1/volumes/{origin}")).Json(204);
    }

    [Test]
    public async Task A_boot_disk_mount_recorded_by_compute_goes_to_quarantine_when_its_instance_ends()
    {
        var (user, http) = await UserAsync("boot");
        var vm = await RunningInstanceAsync(http);
        var users = _server.App.Services.GetRequiredService<StratusLab.Server.Modules.Identity.Contracts.IUserDirectory>();
        var owner = (await users.FindByNameAsync(user))!.Id;
        var volumes = _server.App.Services.GetRequiredService<IVolumes>();
        var origin = Volumes.Uuid(await Volumes.CreateAsync(_admin, new { size = 1, type = "MACHINE_IMAGE_ORIGIN", visibility = "public" }));

        var root = await volumes.CreateSnapshotAsync(Guid.Parse(origin), owner, tag: "root");
        Assert.That(root.Type, Is.EqualTo(VolumeType.MachineImageLive));
        Assert.That(root.OwnerId, Is.EqualTo(owner));
        Assert.That(root.Turl, Does.StartWith("file:///"));
        var mount = await volumes.MountAsync(new VolumeMountRequest(root.Uuid, vm, "localhost", "vda", ReadOnly: false, QuarantineWhenReleased: true));
        Assert.That(mount.Format, Is.EqualTo("qcow2"));
        Assert.That((await volumes.MountsOfAsync(vm)).Select(m => m.Uuid), Is.EqualTo(new[] { root.Uuid }));

        await (await http.DeleteAsync($"/api/v1/instances/{vm}")).Json(202);
        await InstanceApiTests.WaitAsync(http, vm, "DONE");
        var after = await volumes.FindAsync(root.Uuid);
        Assert.That(after!.State, Is.EqualTo("QUARANTINED"));
        Assert.That(await volumes.MountsOfAsync(vm), Is.Empty);
    }

    [Test]
    public async Task An_image_file_on_the_host_is_taken_over_as_a_volume_and_consumed()
    {
        var volumes = _server.App.Services.GetRequiredService<IVolumes>();
        var dir = Path.Combine(_server.DataDir, "image-cache-test");
        var path = TestImages.CreateQcow2(dir, "cached", "4M");
        var identifier = "C" + Guid.NewGuid().ToString("N")[..26];
        var origin = await volumes.ImportFileAsync(new VolumeFromFile(1, path, "qcow2", VolumeType.MachineImageOrigin, "public", identifier, Tag: "cached"));
        Assert.That(origin.Type, Is.EqualTo(VolumeType.MachineImageOrigin));
        Assert.That(origin.Format, Is.EqualTo("qcow2"));
        Assert.That(origin.SizeBytes, Is.EqualTo(4 << 20));
        Assert.That(File.Exists(path), Is.False, "the file was moved into place");
        Assert.That((await volumes.FindByIdentifierAsync(identifier))!.Uuid, Is.EqualTo(origin.Uuid));

        var other = TestImages.CreateQcow2(dir, "again", "4M");
        var taken = Assert.ThrowsAsync<StratusLab.Server.Platform.Contracts.ConflictException>(() =>
            volumes.ImportFileAsync(new VolumeFromFile(1, other, "qcow2", VolumeType.MachineImageOrigin, "public", identifier)));
        Assert.That(taken!.Extensions["volume"], Is.EqualTo(origin.Uuid.ToString()));
        var wrong = TestImages.CreateQcow2(dir, "wrong", "4M");
        var mismatch = Assert.ThrowsAsync<StratusLab.Server.Platform.Contracts.InvalidInputException>(() =>
            volumes.ImportFileAsync(new VolumeFromFile(1, wrong, "raw", VolumeType.MachineImageOrigin)));
        Assert.That(mismatch!.Kind, Is.EqualTo(StratusLab.Server.Platform.Contracts.Rejection.Unprocessable));
        Assert.That(File.Exists(wrong), Is.False, "the file is consumed on failure too");
        Assert.That(Volumes.FilesOf(_server).Where(f => f.StartsWith(".staging")), Is.Empty);
        await volumes.DeleteAsync(origin.Uuid);
    }

    [Test]
    public async Task The_quarantine_job_removes_volumes_whose_time_is_up()
    {
        await using var server = await TestServer.StartAsync(new Dictionary<string, string?> { ["Pdisk:QuarantineMinutes"] = "0" });
        using var admin = server.Client();
        var before = Volumes.FilesOf(server);
        var uuid = Volumes.Uuid(await Volumes.CreateAsync(admin, new { size = 1 }));
        await server.App.Services.GetRequiredService<IVolumes>().QuarantineAsync(Guid.Parse(uuid));
        var scheduler = await server.App.Services.GetRequiredService<Quartz.ISchedulerFactory>().GetScheduler();
        await scheduler.TriggerJob(StratusLab.Server.Modules.Pdisk.Jobs.QuarantineJob.Key);
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        while (DateTime.UtcNow < deadline && (await admin.GetAsync($"/api/v1/volumes/{uuid}")).IsSuccessStatusCode) await Task.Delay(100);
        await (await admin.GetAsync($"/api/v1/volumes/{uuid}")).Problem(404);
        Assert.That(Volumes.FilesOf(server), Is.EqualTo(before));
    }

    [Test]
    public async Task Type_changes_respect_origins_snapshots_and_live_volumes()
    {
        var (_, http) = await UserAsync("typ");
        var uuid = Volumes.Uuid(await Volumes.CreateAsync(http, new { size = 1 }));
        var origin = await (await http.PutAsJsonAsync($"/api/v1/volumes/{uuid}", new { type = "DATA_IMAGE_ORIGIN" })).Json(200);
        Assert.That(origin["type"]!.GetValue<string>(), Is.EqualTo("DATA_IMAGE_ORIGIN"));
        var live = Volumes.Uuid(await (await http.PostAsJsonAsync($"/api/v1/volumes/{uuid}/snapshots", new { })).Json(201));
        var back = await (await http.PutAsJsonAsync($"/api/v1/volumes/{uuid}", new { type = "DATA_IMAGE_RAW_READ_WRITE" })).Problem(409);
        Assert.That(back["detail"]!.GetValue<string>(), Does.Contain(live));
        await (await http.PutAsJsonAsync($"/api/v1/volumes/{live}", new { type = "DATA_IMAGE_ORIGIN" })).Problem(422);
        await (await http.PutAsJsonAsync($"/api/v1/volumes/{uuid}", new { type = "NOPE" })).Problem(400);
    }
}
