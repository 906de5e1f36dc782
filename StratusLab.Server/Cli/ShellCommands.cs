using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using StratusLab.Server.Modules.Identity.Contracts;
using StratusLab.Server.Platform.Configuration;

namespace StratusLab.Server.Cli;

/// <summary>'stratuslab serve': the server, its flags parsed like every other command's.</summary>
public static class ServerCommands
{
    public static readonly IReadOnlyList<ClientCommand> All =
    [
        new("serve", "[--data-dir DIR] [--urls URL] [--config FILE]", "run the cloud server (API, web pages, guest API, jobs) in the foreground", Serve)
            { Example = "stratuslab serve --data-dir /srv/stratuslab --urls http://0.0.0.0:8440" },
    ];

    static Task<int> Serve(CliContext cx)
    {
        var args = new List<string>();
        foreach (var name in new[] { "--data-dir", "--urls", "--config" })
            if (cx.Args.Option(name) is { } value) args.AddRange([name, value]);
        return Program.ServeAsync([.. args]);
    }
}

/// <summary>The shell side: tab completion scripts, and logging in with a password.</summary>
public static class ShellCommands
{
    public static readonly IReadOnlyList<ClientCommand> All =
    [
        new("login", "[--username NAME] [--password-stdin] [--admin-token]", "exchange your password for an API token and store it (with the endpoint) in ~/.config/stratuslab/client.json", Login)
            { Example = "stratuslab login --endpoint http://cloud.example.org:8440 --username alice\necho \"$PASSWORD\" | stratuslab login --username alice --password-stdin" },
        new("completion", "bash|zsh", "print the tab completion script for a shell", Completion)
            { Example = "stratuslab completion bash > ~/.local/share/bash-completion/completions/stratuslab\nstratuslab completion zsh > \"${fpath[1]}/_stratuslab\"     # or: source <(stratuslab completion bash)" },
        new("__complete", "INDEX [WORD]... [-- WORD...]", "the completions at a word of a command line (used by the completion scripts)", Complete),
    ];

    static async Task<int> Login(CliContext cx)
    {
        if (cx.Args.Has("--admin-token")) return await StoreAdminToken(cx);
        var user = cx.Args.Option("--username") ?? Environment.UserName;
        string password;
        if (cx.Args.Has("--password-stdin") || Console.IsInputRedirected)
            password = (await Console.In.ReadLineAsync())?.TrimEnd('\r', '\n') ?? "";
        else
        {
            cx.Err.Write($"password for {user}: ");
            var typed = new StringBuilder();
            for (var key = Console.ReadKey(intercept: true); key.Key != ConsoleKey.Enter; key = Console.ReadKey(intercept: true))
                if (key.Key == ConsoleKey.Backspace) { if (typed.Length > 0) typed.Length--; }
                else typed.Append(key.KeyChar);
            cx.Err.WriteLine();
            password = typed.ToString();
        }
        if (password.Length == 0) throw new UsageException("no password given (type it at the prompt, or pipe it with --password-stdin).");
        var settings = ClientSettings.Resolve(cx.Args) with { Token = null, Basic = (user, password) };
        using var api = new ApiClient(settings);
        var created = await api.PostAsync<TokenCreated>("api/v1/tokens", new CreateTokenRequest(Name: $"stratuslab login on {Environment.MachineName}"));
        var path = ClientSettings.SaveConfig(settings.Endpoint, created.Token);
        return cx.Print(new JsonObject { ["user"] = created.User, ["endpoint"] = settings.Endpoint, ["config"] = path, ["tokenId"] = created.Id },
            _ => cx.Out.WriteLine($"logged in to {settings.Endpoint} as {created.User}; the token is stored in {path}"));
    }

    /// <summary>The local server's admin token into the client config, checked first (scripts/run.sh, whatever --data-dir was).</summary>
    static async Task<int> StoreAdminToken(CliContext cx)
    {
        var path = Path.Combine(ServerConfiguration.ResolveDataDir(""), "admin.token");
        if (!File.Exists(path))
            throw new CliException($"there is no {path}: set STRATUSLAB_DATA to the server's --data-dir (the server writes admin.token there at its first start).");
        string token;
        try { token = (await File.ReadAllTextAsync(path)).Trim(); }
        catch (UnauthorizedAccessException) { throw new CliException($"{path} is not readable by you (it is the admin's secret, mode 0600); run this as the user who runs the server."); }
        var settings = ClientSettings.Resolve(cx.Args) with { Token = token, Basic = null };
        using (var api = new ApiClient(settings)) await api.GetAsync("api/v1/users");
        var config = ClientSettings.SaveConfig(settings.Endpoint, token);
        return cx.Print(new JsonObject { ["user"] = "admin", ["endpoint"] = settings.Endpoint, ["config"] = config },
            _ => cx.Out.WriteLine($"stored the admin token of {settings.Endpoint} (from {path}) in {config}"));
    }

    static Task<int> Completion(CliContext cx)
    {
        var shell = cx.Args.Positional(0, "the shell (bash or zsh)");
        cx.Out.Write(shell switch
        {
            "bash" => """
                # stratuslab completion for bash: source <(stratuslab completion bash)
                _stratuslab() {
                    local IFS=$'\n'
                    COMPREPLY=($(stratuslab __complete "$((COMP_CWORD - 1))" -- "${COMP_WORDS[@]:1}" 2>/dev/null))
                }
                complete -o default -F _stratuslab stratuslab

                """,
            "zsh" => """
                #compdef stratuslab
                # stratuslab completion for zsh: stratuslab completion zsh > "${fpath[1]}/_stratuslab"
                _stratuslab() {
                    local -a candidates
                    candidates=("${(@f)$(stratuslab __complete "$((CURRENT - 2))" -- "${(@)words[2,-1]}" 2>/dev/null)}")
                    compadd -a candidates
                }
                if [[ "$funcstack[1]" == "_stratuslab" ]]; then _stratuslab "$@"; else compdef _stratuslab stratuslab; fi

                """,
            _ => throw new UsageException($"'{shell}' is not a shell this knows{CommandTree.Suggest(shell, ["bash", "zsh"])}; use bash or zsh."),
        });
        return Task.FromResult(ClientCli.Ok);
    }

    static Task<int> Complete(CliContext cx)
    {
        var index = int.TryParse(cx.Args.Positional(0, "the index of the word to complete"), out var i) ? i : 0;
        foreach (var word in CommandTree.Complete(index, cx.Args.Positionals.Skip(1).ToList())) cx.Out.WriteLine(word);
        return Task.FromResult(ClientCli.Ok);
    }
}
