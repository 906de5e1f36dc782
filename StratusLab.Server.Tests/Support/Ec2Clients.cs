using System.Net.Http.Json;
using System.Text.Json.Nodes;

namespace StratusLab.Server.Tests.Support;

/// <summary>A user's access key, and the real EC2 clients from Debian (python3-boto3, awscli) pointed at a test server.</summary>
public sealed record Ec2Key(string AccessKeyId, string Secret)
{
    /// <summary>Creates an access key for <paramref name="user"/> through the REST API.</summary>
    public static async Task<Ec2Key> CreateAsync(HttpClient http, string user = "admin")
    {
        var created = await (await http.PostAsJsonAsync($"/api/v1/users/{user}/access-keys", new { })).Json(201);
        return new Ec2Key(created["accessKeyId"]!.GetValue<string>(), created["secretAccessKey"]!.GetValue<string>());
    }
}

public static class Ec2Clients
{
    /// <summary>
    /// Python that defines 'ec2' (a boto3 client for the server, no retries) and 'error(fn)' (None, or the AWS error
    /// code, HTTP status and message of a ClientError); the test's script follows and prints JSON.
    /// </summary>
    const string Prelude = """
        import boto3, botocore, botocore.auth, datetime, json, os, sys, urllib.request, urllib.error
        from botocore.config import Config
        ec2 = boto3.client('ec2', endpoint_url=os.environ['EC2_ENDPOINT'], region_name=os.environ['EC2_REGION'],
                           aws_access_key_id=os.environ['EC2_KEY'], aws_secret_access_key=os.environ['EC2_SECRET'],
                           config=Config(retries={'max_attempts': 1, 'mode': 'standard'}))
        def error(fn):
            try:
                fn()
                return None
            except botocore.exceptions.ClientError as e:
                return {'code': e.response['Error']['Code'], 'status': e.response['ResponseMetadata']['HTTPStatusCode'],
                        'message': e.response['Error']['Message']}

        """;

    /// <summary>Runs a boto3 script against the server and parses its printed JSON (the test fails on a non-zero exit).</summary>
    public static async Task<JsonNode> Boto3Async(TestServer server, Ec2Key key, string script, string region = "stratuslab-1")
    {
        var file = Path.Combine(server.DataDir, $"boto3-{Guid.NewGuid():N}.py");
        await File.WriteAllTextAsync(file, Prelude + script);
        var (exit, stdout, stderr) = await HostTools.RunAsync("env",
            [$"EC2_ENDPOINT={server.BaseAddress}ec2/", $"EC2_REGION={region}", $"EC2_KEY={key.AccessKeyId}", $"EC2_SECRET={key.Secret}",
             "AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null", "python3", file], TimeSpan.FromSeconds(120));
        File.Delete(file);
        Assert.That(exit, Is.EqualTo(0), $"boto3 script failed:\n{stderr}\n{stdout}");
        return JsonNode.Parse(stdout.Trim().Split('\n')[^1])!;
    }

    /// <summary>Runs 'aws ec2 ARGS' against the server; returns (exit code, stdout, stderr).</summary>
    public static Task<(int Exit, string Out, string Err)> AwsCliAsync(TestServer server, Ec2Key key, IEnumerable<string> args, int timeoutSeconds = 120) =>
        HostTools.RunAsync("env",
            new[] { $"AWS_ACCESS_KEY_ID={key.AccessKeyId}", $"AWS_SECRET_ACCESS_KEY={key.Secret}", "AWS_DEFAULT_REGION=stratuslab-1",
                    "AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null", "AWS_MAX_ATTEMPTS=1",
                    "aws", "--endpoint-url", $"{server.BaseAddress}ec2/", "--output", "json", "ec2" }.Concat(args),
            TimeSpan.FromSeconds(timeoutSeconds));
}
