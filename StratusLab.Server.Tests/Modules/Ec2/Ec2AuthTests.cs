using System.Net.Http.Json;
using StratusLab.Server.Tests.Support;

namespace StratusLab.Server.Tests.Modules.Ec2;

/// <summary>The EC2 door's authentication, driven by the real clients (boto3, awscli) with access keys made over REST.</summary>
public class Ec2AuthTests
{
    TestServer _server = null!;
    HttpClient _admin = null!;
    Ec2Key _key = null!;

    [OneTimeSetUp]
    public async Task Start()
    {
        _server = await TestServer.StartAsync();
        _admin = _server.Client();
        _key = await Ec2Key.CreateAsync(_admin);
    }

    [OneTimeTearDown]
    public async Task Stop()
    {
        _admin.Dispose();
        await _server.DisposeAsync();
    }

    [Test, CancelAfter(120_000)]
    public async Task Awscli_lists_the_region_and_its_zone()
    {
        var (exit, stdout, stderr) = await Ec2Clients.AwsCliAsync(_server, _key, ["describe-regions"]);
        Assert.That(exit, Is.EqualTo(0), stderr);
        Assert.That(stdout, Does.Contain("\"RegionName\": \"stratuslab-1\""));
        (exit, stdout, stderr) = await Ec2Clients.AwsCliAsync(_server, _key, ["describe-availability-zones"]);
        Assert.That(exit, Is.EqualTo(0), stderr);
        Assert.That(stdout, Does.Contain("\"ZoneName\": \"stratuslab-1a\""));
    }

    [Test, CancelAfter(120_000)]
    public async Task Bad_credentials_clocks_and_actions_get_the_aws_error_codes()
    {
        var result = await Ec2Clients.Boto3Async(_server, _key with { Secret = "not-the-secret" }, """
            print(json.dumps({'wrong': error(ec2.describe_regions)}))
            """);
        Assert.That(result["wrong"]!["code"]!.GetValue<string>(), Is.EqualTo("SignatureDoesNotMatch"));
        Assert.That(result["wrong"]!["status"]!.GetValue<int>(), Is.EqualTo(403));

        result = await Ec2Clients.Boto3Async(_server, _key with { AccessKeyId = "SLAKUNKNOWN000000000" }, """
            print(json.dumps({'unknown': error(ec2.describe_regions)}))
            """);
        Assert.That(result["unknown"]!["code"]!.GetValue<string>(), Is.EqualTo("AuthFailure"));
        Assert.That(result["unknown"]!["status"]!.GetValue<int>(), Is.EqualTo(401));

        result = await Ec2Clients.Boto3Async(_server, _key, """
            real = botocore.auth.get_current_datetime
            botocore.auth.get_current_datetime = lambda: real() - datetime.timedelta(minutes=20)
            late = error(ec2.describe_regions)
            botocore.auth.get_current_datetime = lambda: real() + datetime.timedelta(minutes=10)
            early = error(ec2.describe_regions)
            print(json.dumps({'late': late, 'early': early}))
            """);
        Assert.That(result["late"]!["code"]!.GetValue<string>(), Is.EqualTo("RequestExpired"));
        Assert.That(result["late"]!["message"]!.GetValue<string>(), Does.Contain("20 minutes"));
        Assert.That(result["early"], Is.Null, "10 minutes of skew is within the 15 accepted");

        result = await Ec2Clients.Boto3Async(_server, _key, """
            print(json.dumps({'unsupported': error(ec2.describe_vpc_endpoints)}))
            """);
        Assert.That(result["unsupported"]!["code"]!.GetValue<string>(), Is.EqualTo("UnsupportedOperation"));
        Assert.That(result["unsupported"]!["message"]!.GetValue<string>(), Does.Contain("DescribeVpcEndpoints"));
        Assert.That(result["unsupported"]!["status"]!.GetValue<int>(), Is.EqualTo(400));

        result = await Ec2Clients.Boto3Async(_server, _key, """
            print(json.dumps({'region': error(ec2.describe_regions)}))
            """, region: "us-east-1");
        Assert.That(result["region"]!["code"]!.GetValue<string>(), Is.EqualTo("SignatureDoesNotMatch"));
        Assert.That(result["region"]!["message"]!.GetValue<string>(), Does.Contain("'stratuslab-1'"));
    }

    [Test, CancelAfter(60_000)]
    public async Task A_body_over_one_MiB_is_refused_with_RequestEntityTooLarge_whether_its_length_is_declared_or_streamed()
    {
        var big = new byte[(1 << 20) + 1];
        Array.Fill(big, (byte)'a');
        foreach (var answer in await OversizedBodies.PostAsync(new Uri(_server.BaseAddress, "/ec2/"), "application/x-www-form-urlencoded", big))
        {
            Assert.That(answer.Status, Is.EqualTo(413), answer.How + ": " + answer.Body);
            Assert.That(answer.Body, Does.Contain("<Code>RequestEntityTooLarge</Code>"), answer.How);
        }
    }

    [Test, CancelAfter(120_000)]
    public async Task A_presigned_url_works_and_an_unsigned_request_is_refused()
    {
        var result = await Ec2Clients.Boto3Async(_server, _key, """
            # botocore signs an EC2 presigned URL with the operation's method, POST (and an empty body).
            url = ec2.generate_presigned_url('describe_regions', Params={}, ExpiresIn=300)
            body = urllib.request.urlopen(urllib.request.Request(url, data=b'', method='POST'), timeout=30).read().decode()
            try:
                urllib.request.urlopen(os.environ['EC2_ENDPOINT'] + '?Action=DescribeRegions', timeout=30)
                unsigned = None
            except urllib.error.HTTPError as e:
                unsigned = {'status': e.code, 'body': e.read().decode()}
            print(json.dumps({'presigned': body, 'unsigned': unsigned}))
            """);
        Assert.That(result["presigned"]!.GetValue<string>(), Does.Contain("<regionName>stratuslab-1</regionName>"));
        Assert.That(result["unsigned"]!["status"]!.GetValue<int>(), Is.EqualTo(401));
        Assert.That(result["unsigned"]!["body"]!.GetValue<string>(), Does.Contain("<Code>MissingAuthenticationToken</Code>"));
    }

    [Test]
    public async Task An_access_key_secret_is_shown_once_and_sealed_at_rest_and_other_users_keys_are_not_found()
    {
        var token = await _server.CreateUserAsync("keyuser");
        using var user = _server.Client(token);
        var created = await (await user.PostAsJsonAsync("/api/v1/users/keyuser/access-keys", new { })).Json(201);
        var id = created["accessKeyId"]!.GetValue<string>();
        var secret = created["secretAccessKey"]!.GetValue<string>();
        Assert.That(id, Does.Match("^SLAK[A-Z2-7]{16}$"));
        Assert.That(secret, Has.Length.EqualTo(40));

        var listed = (await (await user.GetAsync("/api/v1/users/keyuser/access-keys")).Json(200)).AsArray();
        Assert.That(listed.Select(k => k!["accessKeyId"]!.GetValue<string>()), Is.EqualTo(new[] { id }));
        Assert.That(listed.ToJsonString(), Does.Not.Contain(secret));
        var store = await File.ReadAllBytesAsync(Path.Combine(_server.DataDir, "stratuslab.db"));
        Assert.That(System.Text.Encoding.ASCII.GetString(store), Does.Not.Contain(secret), "the secret is sealed in the store");

        await (await user.GetAsync("/api/v1/users/admin/access-keys")).Problem(404);
        await (await user.PostAsJsonAsync("/api/v1/users/admin/access-keys", new { })).Problem(404);
        Assert.That((await (await _admin.GetAsync("/api/v1/users/keyuser/access-keys")).Json(200)).AsArray(), Has.Count.EqualTo(1), "admins see anyone's");

        Assert.That((await (await user.DeleteAsync($"/api/v1/users/keyuser/access-keys/{id}")).Content.ReadAsStringAsync()), Is.Empty);
        var gone = await Ec2Clients.Boto3Async(_server, new Ec2Key(id, secret), """
            print(json.dumps({'deleted': error(ec2.describe_regions)}))
            """);
        Assert.That(gone["deleted"]!["code"]!.GetValue<string>(), Is.EqualTo("AuthFailure"));
        await (await user.DeleteAsync($"/api/v1/users/keyuser/access-keys/{id}")).Problem(404);
    }
}
