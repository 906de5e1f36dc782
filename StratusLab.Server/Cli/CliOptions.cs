namespace StratusLab.Server.Cli;

/// <summary>
/// One option as every command that takes it understands it: its long name, its short flag (one meaning across all
/// commands), a description, the default when it has one, and the API fields it sets (so a server error about a field
/// names the flag instead).
/// </summary>
public sealed record CliOptionInfo(string Name, string? Short, string Description, string? Default = null, params string[] Fields);

/// <summary>Every option of the client in one table, so a flag means one thing everywhere.</summary>
public static class CliOptions
{
    /// <summary>Options every command accepts, anywhere on the line.</summary>
    public static readonly IReadOnlyList<CliOptionInfo> Global =
    [
        new("--endpoint", null, "the server's URL", "STRATUSLAB_ENDPOINT, client.json, then http://127.0.0.1:8440"),
        new("--token", null, "the API token", "STRATUSLAB_TOKEN, client.json, then the local admin.token"),
        new("--ca-file", null, "a PEM file of CA certificates the https server's certificate must chain to", "STRATUSLAB_CA_FILE, client.json's caFile, then the system's CAs"),
        new("--accept-fingerprint", null, "pin the https server's certificate by its SHA-256 fingerprint on first use (the server prints it at start)", "STRATUSLAB_ACCEPT_FINGERPRINT"),
        new("--json", null, "machine-readable output: JSON only on stdout"),
        new("--verbose", "-v", "more detail: HTTP status codes in errors, progress on stderr"),
    ];

    static readonly CliOptionInfo[] All =
    [
        .. Global,
        // instances
        new("--type", "-t", "the type: an instance type for instances (see describe-instance-types), a volume type for volumes, machine|disk for metadata", null, "instanceType", "type"),
        new("--count", "-n", "how many to start", "1", "count"),
        new("--name", null, "a name (free text)", null, "name"),
        new("--cpu", null, "virtual CPUs (with --memory, instead of --type)", null, "cpu"),
        new("--memory", null, "memory in MiB", null, "memoryMiB", "memory"),
        new("--context", null, "a context variable KEY=VALUE given to the guest (repeatable)", null, "context"),
        new("--key", "-k", "an SSH public key file to put in the guest (repeatable)", "~/.ssh/id_ed25519.pub (or id_ecdsa, id_rsa) unless you have a default stored key", "sshKeys"),
        new("--key-name", null, "a stored key pair (see describe-keys) whose public key the guest gets", "your default key pair", "keyName"),
        new("--user-data", null, "a cloud-init user-data file (#cloud-config, a #! script, MIME multipart), '-' for stdin", null, "userData"),
        new("--hostname", null, "the guest's host name", "the instance name", "hostname"),
        new("--context-method", null, "how the guest is contextualised: opennebula (CONTEXT CD) or nocloud (cidata seed)", "the image's, else opennebula", "contextMethod"),
        new("--ready-port", null, "a guest TCP port whose answer marks the instance ready", null, "readyPort"),
        new("--ready-timeout", null, "seconds after RUNNING within which the guest must become ready", "the server's Compute:ReadyTimeoutSeconds", "readyTimeoutSeconds"),
        new("--network", null, "a network: one NIC on it per --network (repeatable); for create-network: the network address", "one NIC on the 'default' user-mode network", "networks", "network"),
        new("--port", null, "a guest TCP port to forward to the host besides the site's (repeatable)", null, "forwardPorts"),
        new("--persistent-disk", null, "a volume UUID (or unique prefix) attached at boot as vdb, vdc... (repeatable)", null, "volumes"),
        new("--wait", "-w", "wait until the instances are ready, showing each state change"),
        new("--force", null, "stop: power off at once, without waiting for the guest (the disk is kept); reboot: a hardware reset; host-delete: also drop the terminations a peer cloud is still owed", null, "force"),
        new("--save", null, "shutdown-instance: the powered-off disk becomes a new signed image (its identifier is shown as savedImage)", null, "save"),
        new("--graceful", null, "reboot: the guest powers off (ACPI), then the VM boots again, instead of a hardware reset", null, "graceful"),
        new("--timeout", null, "seconds to wait with --wait", "300"),
        new("--state", null, "only those in this state"),
        new("--all", "-a", "all of them: with describe-instance, DONE instances too; with purge-quarantine, those whose time is not up"),
        new("--identity", null, "the SSH private key file to log in with (ssh -i)", null, "keyFile"),
        new("--ssh-port", null, "the SSH port of a node", "22", "port"),
        new("--node-root", null, "the directory on an SSH node that holds its VMs and image cache", "the server's Scheduling default for nodes", "root"),
        new("--boot", null, "how an SSH node gets boot disks: cache (copied to the node once per image, an overlay per VM) or iscsi (opened over iSCSI from the front-end)", "cache", "bootDisks"),
        new("--cloud", null, "the base URL of a peer cloud (host driver cloud)", null, "url"),
        new("--peer-token", null, "an API token of the account on a StratusLab peer cloud (stored encrypted)", null, "token"),
        new("--access-key-id", null, "the EC2 access key id on an EC2 peer cloud", null, "accessKeyId"),
        new("--secret-access-key", null, "the EC2 secret access key on an EC2 peer cloud (stored encrypted)", null, "secretAccessKey"),
        new("--region", null, "the EC2 region of an EC2 peer cloud", "us-east-1", "region"),
        new("--burst", null, "the peer cloud takes instances when no local host has room", null, "burst"),
        new("--until", null, "only until this time (ISO-8601, or an age such as 30m, 2h, 7d)", "now", "until"),
        new("--from", null, "the start of the window (ISO-8601 time or date)", null, "from"),
        new("--to", null, "the end of the window (ISO-8601 time or date)", null, "to"),
        new("--by", null, "sum the records by user, group, image or day", null, "by"),
        new("--resolution", null, "raw samples, hourly rollups, or auto (raw when the window starts within the raw retention)", "auto", "resolution"),
        new("--user", "-u", "a user name (for connect-instance: the guest login, default the image's default user, else root)", null, "user", "owner"),
        new("--ssh", null, "run ssh instead of printing the command", null, "ssh"),
        new("--console", null, "open the interactive serial console instead (Ctrl-] quits)"),
        new("--tail", null, "only the last N lines"),
        new("--follow", "-f", "keep printing new lines until the instance ends"),
        // identity
        new("--password", null, "a password (user-add: the user's; metadata commands: the private key's, or STRATUSLAB_KEY_PASSWORD)", null, "password"),
        new("--role", null, "admin or user", "user", "role"),
        new("--group", null, "a group (repeatable)", null, "groups", "group"),
        new("--expires", null, "when the token stops working (ISO-8601 time or a duration such as 30d)", "never", "expires", "expiresAt"),
        new("--vms", null, "quota: instances, -1 = unlimited", null, "vms"),
        new("--cpus", null, "CPUs (quota-set: the quota, -1 = unlimited; host-add: the host's)", null, "cpus"),
        new("--storage", null, "quota: storage in GiB, -1 = unlimited", null, "storageGiB", "storage"),
        // images
        new("--default", null, "make it the default (image-register: the default image; key-import: your default key)", null, "default", "isDefault"),
        new("--min-memory", null, "the least memory (MiB) the image needs", null, "minMemoryMiB"),
        new("--min-cpu", null, "the fewest CPUs the image needs", null, "minCpu"),
        new("--min-disk", null, "the least disk (GiB) the image needs", null, "minDiskGiB"),
        new("--default-user", null, "the user to log in as in the image", "root", "defaultUser"),
        new("--os", null, "the operating system (e.g. debian, linux)", null, "os"),
        // volumes
        new("--size", "-s", "the size in GiB", null, "size", "sizeGiB"),
        new("--tag", null, "a tag (a short label)", null, "tag"),
        new("--visibility", null, "private or public", "private", "visibility"),
        new("--sharing", null, "how hosts reach it: local or iscsi", "the server's Pdisk:DefaultSharing", "sharing"),
        new("--url", null, "an http(s) URL to fill the volume from", null, "url"),
        new("--bytes", null, "the expected size in bytes of what the URL gives", null, "bytes"),
        new("--sha1", null, "the expected SHA-1 (hex) of the content", null, "sha1"),
        new("--identifier", null, "a Marketplace identifier to record", null, "identifier"),
        new("--owner", null, "only those of this user", null, "owner"),
        new("--quarantined", null, "true: only quarantined volumes", null, "quarantined"),
        new("--instance", "-i", "the instance ID", null, "instanceId"),
        new("--mode", null, "ro or rw", "rw", "readOnly"),
        new("--output", "-o", "the file to write", null),
        new("--format", null, "the format (download-volume: raw|qcow2; show-image: json|xml; build-metadata: the image format)", null, "format"),
        // networks
        new("--cidr", null, "an address range (CIDR), e.g. 10.77.0.0/24", null, "cidr"),
        new("--first", null, "the first address of the range", null, "first", "firstIp"),
        new("--last", null, "the last address of the range", null, "last", "lastIp"),
        new("--mask", null, "the network mask", null, "mask"),
        new("--kind", null, "the kind (networks: public|local|private; metadata: the image kind)", null, "kind"),
        new("--driver", null, "the driver (networks: user|bridge; hosts: simulated)", null, "driver"),
        new("--gateway", null, "the gateway address", null, "gateway"),
        new("--dns", null, "a DNS server address (repeatable)", null, "dns"),
        new("--mtu", null, "the MTU", null, "mtu"),
        new("--vlan", null, "an 802.1Q VLAN ID (with --uplink)", null, "vlan"),
        new("--uplink", null, "the host device the VLAN rides on", null, "uplink"),
        new("--security-group", null, "a security group applied to the network's NICs (repeatable)", null, "securityGroups"),
        new("--description", null, "a description", null, "description"),
        new("--direction", null, "inbound or outbound", null, "direction"),
        new("--protocol", null, "all, tcp, udp or icmp", "all", "protocol"),
        new("--ports", null, "a port or range, e.g. 22 or 1000-2000", "all", "ports", "fromPort", "toPort"),
        new("--action", null, "accept or drop", "accept", "action"),
        // marketplace
        new("--title", null, "the image's title", null, "title"),
        new("--os-version", null, "the OS version", null, "osVersion"),
        new("--os-arch", null, "the OS architecture", null, "osArch"),
        new("--version", null, "the image's version", null, "version"),
        new("--compression", null, "the compression of the published file (gz, bz2, none)", null, "compression"),
        new("--location", null, "a URL where the image can be downloaded (repeatable)", null, "location"),
        new("--valid-days", null, "days the entry stays valid", "180", "valid"),
        new("--valid", null, "the time the entry stops being valid (ISO-8601)", null, "valid"),
        new("--creator", null, "the image's creator", null, "creator"),
        new("--publisher", null, "the image's publisher", null, "publisher"),
        new("--hypervisor", null, "the hypervisor the image is made for", null, "hypervisor"),
        new("--disks-bus", null, "the disk bus the image expects (virtio, ide, scsi)", null, "disksBus"),
        new("--inbound-port", null, "an inbound port the image serves (repeatable)", null, "inboundPorts"),
        new("--outbound-port", null, "an outbound port the image uses (repeatable)", null, "outboundPorts"),
        new("--p12", null, "a PKCS#12 file with your certificate and key"),
        new("--cert", null, "your PEM certificate (with --private-key)"),
        new("--private-key", null, "your PEM private key (with --cert)"),
        new("--email", null, "the endorser's e-mail address", null, "email"),
        new("--algorithm", null, "rsa-sha256 or rsa-sha1", "rsa-sha256", "algorithm"),
        new("--reason", null, "why", null, "reason"),
        new("--arch", null, "the architecture", null, "arch"),
        new("--status", null, "valid, expired, deprecated or all", "valid", "status"),
        new("--limit", null, "at most this many", null, "limit"),
        new("--offset", null, "skip this many", "0", "offset"),
        new("--whitelist-endorser", null, "an endorser whose images may run (repeatable)", null, "whitelistEndorsers"),
        new("--blacklist-endorser", null, "an endorser whose images may not run (repeatable)", null, "blacklistEndorsers"),
        new("--whitelist-image", null, "an image that may run (repeatable)", null, "whitelistImages"),
        new("--blacklist-image", null, "an image that may not run (repeatable)", null, "blacklistImages"),
        new("--whitelist-checksum", null, "a checksum whose images may run (repeatable)", null, "whitelistChecksums"),
        new("--blacklist-checksum", null, "a checksum whose images may not run (repeatable)", null, "blacklistChecksums"),
        new("--image", null, "only this image", null, "image"),
        new("--result", null, "accepted or refused", null, "result"),
        new("--since", null, "only since this time (ISO-8601)", null, "since"),
        // admin, serve
        new("--data-dir", null, "the server's data directory", "STRATUSLAB_DATA, else ~/.local/share/stratuslab (root: /var/lib/stratuslab)"),
        new("--repair", null, "recompute drifted quota usage (server stopped)"),
        new("--urls", null, "where to listen, e.g. http://127.0.0.1:8440", "http://127.0.0.1:8440"),
        new("--config", null, "a JSON configuration file layered over the embedded defaults"),
        // login
        new("--username", null, "the user to log in as", "the current login name"),
        new("--password-stdin", null, "read the password from stdin instead of asking"),
        new("--admin-token", null, "store the local server's admin token (<data dir>/admin.token; STRATUSLAB_DATA names the data dir) instead of asking for a password"),
    ];

    static readonly Dictionary<string, CliOptionInfo> ByName = All.ToDictionary(o => o.Name);

    /// <summary>The table entry of a long option; unknown names are a programming error a test catches.</summary>
    public static CliOptionInfo Get(string name) =>
        ByName.TryGetValue(name, out var info) ? info : throw new InvalidOperationException($"option {name} is not in CliOptions; add it there with a description");

    public static bool Exists(string name) => ByName.ContainsKey(name);

    public static IEnumerable<CliOptionInfo> Table => All;
}
