using StratusLab.Server.Tests.Host;
namespace StratusLab.Server.Tests.Support;

/// <summary>
/// Two SSH nodes (network namespaces with their own sshd) and a server whose tgtd listens on the host end of each node's
/// veth (Pdisk:Iscsi:ListenAddresses), for the iSCSI host tests on nodes. Disposing removes the server, the nodes (their
/// QEMUs die with their namespaces), the server's targets, the added portals and the keys, even after a failure.
/// </summary>
public sealed class IscsiNodePair : IAsyncDisposable
{
    public TestServer Server { get; private set; } = null!;
    public SshNode NodeA { get; private set; } = null!;
    public SshNode NodeB { get; private set; } = null!;
    public string Key { get; private set; } = "";
    public string PublicKey { get; private set; } = "";
    string _keyDir = "";

    public static async Task<IscsiNodePair> StartAsync(IReadOnlyDictionary<string, string?> settings)
    {
        var pair = new IscsiNodePair();
        try
        {
            pair._keyDir = TempDir.Create("sshkeys");
            var (key, publicKey) = await HostTools.SshKeyAsync(pair._keyDir);
            pair.Key = key;
            pair.PublicKey = publicKey;
            pair.NodeA = await SshNode.StartAsync(publicKey);
            pair.NodeB = await SshNode.StartAsync(publicKey);
            var all = new Dictionary<string, string?>(settings)
            {
                ["Pdisk:Iscsi:ListenAddresses:0"] = pair.NodeA.HostAddress,
                ["Pdisk:Iscsi:ListenAddresses:1"] = pair.NodeB.HostAddress,
            };
            pair.Server = await TestServer.StartAsync(all);
            return pair;
        }
        catch
        {
            await pair.DisposeAsync();
            throw;
        }
    }

    public async ValueTask DisposeAsync()
    {
        string? dataDir = null;
        if (Server is not null)
        {
            dataDir = Server.DataDir;
            await Server.DisposeAsync();
        }
        if (NodeA is not null) await NodeA.DisposeAsync();
        if (NodeB is not null) await NodeB.DisposeAsync();
        if (dataDir is not null) await PdiskHost.RemoveTargetsUnderAsync(dataDir);
        foreach (var node in new SshNode?[] { NodeA, NodeB }.OfType<SshNode>())
            await HostTools.RunAsync("tgtadm", ["--lld", "iscsi", "--op", "delete", "--mode", "portal", "--param", $"portal={node.HostAddress}:3260"], TimeSpan.FromSeconds(30));
        if (_keyDir.Length > 0) TempDir.Delete(_keyDir);
    }
}
