// The server drives Linux tools (QEMU, tgtd, iproute2, nftables) and Unix file modes; it runs on Linux only.
[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")]
