namespace StratusLab.Server.Modules.Compute.Contracts;

/// <summary>The lifecycle states of an instance (see API.md).</summary>
public enum InstanceState { Pending, Prolog, Boot, Running, Shutdown, Stopped, Suspended, Epilog, Done, Failed }
