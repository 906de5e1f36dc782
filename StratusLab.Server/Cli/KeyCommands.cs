using System.Text.Json.Nodes;
using StratusLab.Server.Modules.Identity.Contracts;

namespace StratusLab.Server.Cli;

/// <summary>Stored SSH key pairs: import, list, delete; run-instance --key-name uses one, else your default.</summary>
public static class KeyCommands
{
    public static readonly IReadOnlyList<ClientCommand> All =
    [
        new("key-import", "NAME FILE [--default]", "store an SSH public key (FILE: a .pub file, '-' for stdin); your first key is your default", ImportKey) { Example = "stratuslab key-import laptop ~/.ssh/id_ed25519.pub" },
        new("describe-keys", "", "list your stored SSH keys (name, fingerprint, default)", DescribeKeys) { Example = "stratuslab describe-keys" },
        new("delete-key", "NAME...", "delete stored SSH keys (instances that have them keep them)", DeleteKey) { Example = "stratuslab delete-key laptop" },
    ];

    static async Task<int> ImportKey(CliContext cx)
    {
        cx.Args.AllowOnly("--default");
        var name = cx.Args.Positional(0, "the key name");
        var file = cx.Args.Positional(1, "the public key file (such as ~/.ssh/id_ed25519.pub)");
        string text;
        if (file == "-") text = await Console.In.ReadToEndAsync();
        else if (File.Exists(file)) text = await File.ReadAllTextAsync(file);
        else throw new UsageException($"'{file}' does not exist; make a key with 'ssh-keygen -t ed25519' and give its .pub file.");
        var lines = text.Split('\n').Select(l => l.Trim()).Where(l => l.Length > 0 && !l.StartsWith('#')).ToList();
        if (lines.Count != 1) throw new UsageException($"'{file}' holds {lines.Count} keys; give a file with exactly one public key.");
        var key = await cx.Api.PostAsync<KeyPair>("api/v1/keys", new ImportKeyRequest(name, lines[0], cx.Args.Has("--default")));
        return cx.Print(key, k => cx.Out.WriteLine($"imported key {k.Name} {k.Fingerprint}{(k.IsDefault ? " (default)" : "")}"));
    }

    static async Task<int> DescribeKeys(CliContext cx)
    {
        cx.Args.AllowOnly();
        var keys = await cx.Api.GetAsync<List<KeyPair>>("api/v1/keys");
        return cx.Print(keys, list => cx.TableOf(list,
            ("name", k => k.Name), ("fingerprint", k => k.Fingerprint), ("default", k => k.IsDefault ? "yes" : ""), ("origin", k => k.Origin)));
    }

    static async Task<int> DeleteKey(CliContext cx)
    {
        cx.Args.AllowOnly();
        if (cx.Args.Positionals.Count == 0) throw new UsageException("give the name of at least one key; see 'stratuslab describe-keys'.");
        foreach (var name in cx.Args.Positionals) await cx.Api.DeleteAsync($"api/v1/keys/{Uri.EscapeDataString(name)}");
        return cx.Print(new JsonArray(cx.Args.Positionals.Select(n => (JsonNode)n).ToArray()),
            _ => { foreach (var n in cx.Args.Positionals) cx.Out.WriteLine($"deleted key {n}"); });
    }
}
