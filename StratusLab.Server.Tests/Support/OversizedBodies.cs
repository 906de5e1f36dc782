namespace StratusLab.Server.Tests.Support;

/// <summary>
/// Posts a body twice with curl: once with its Content-Length, once chunked (length unknown). curl reads a response the server
/// sends before the body is all read, as a server refusing a too-large body does (HttpClient reports a reset there instead).
/// </summary>
public static class OversizedBodies
{
    public sealed record Answer(string How, int Status, string Body);

    public static async Task<IReadOnlyList<Answer>> PostAsync(Uri url, string contentType, byte[] body, string? token = null)
    {
        var file = Path.Combine(Path.GetTempPath(), $"sl-body-{Guid.NewGuid():N}");
        await File.WriteAllBytesAsync(file, body);
        try
        {
            var answers = new List<Answer>();
            foreach (var chunked in new[] { false, true })
            {
                List<string> args = ["-sS", "--max-time", "30", "-X", "POST", "-H", "Content-Type: " + contentType, "--data-binary", "@" + file,
                    "-w", "\n%{http_code}", url.ToString()];
                if (chunked) args.InsertRange(0, ["-H", "Transfer-Encoding: chunked"]);
                if (token is not null) args.InsertRange(0, ["-H", "Authorization: Bearer " + token]);
                var run = await HostTools.RunAsync("curl", args, TimeSpan.FromSeconds(60));
                var cut = run.Out.LastIndexOf('\n');
                var status = cut >= 0 && int.TryParse(run.Out[(cut + 1)..], out var code) ? code : -1;
                answers.Add(new Answer(chunked ? "chunked" : "Content-Length", status, (cut >= 0 ? run.Out[..cut] : run.Out) + run.Err));
            }
            return answers;
        }
        finally { File.Delete(file); }
    }
}
