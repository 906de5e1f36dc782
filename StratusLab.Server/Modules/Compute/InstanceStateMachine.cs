using StratusLab.Server.Modules.Compute.Contracts;

namespace StratusLab.Server.Modules.Compute;

/// <summary>The user actions on an instance.</summary>
internal enum InstanceAction { Stop, Start, Reboot, Suspend, Resume, Shutdown, Terminate }

/// <summary>Which actions each state allows (pure; the table the API enforces and tests check).</summary>
internal static class InstanceStateMachine
{
    static readonly Dictionary<InstanceState, InstanceAction[]> Allowed = new()
    {
        [InstanceState.Pending] = [InstanceAction.Terminate],
        [InstanceState.Prolog] = [InstanceAction.Terminate],
        [InstanceState.Boot] = [InstanceAction.Terminate],
        [InstanceState.Running] = [InstanceAction.Stop, InstanceAction.Reboot, InstanceAction.Suspend, InstanceAction.Shutdown, InstanceAction.Terminate],
        [InstanceState.Shutdown] = [InstanceAction.Terminate],
        [InstanceState.Stopped] = [InstanceAction.Start, InstanceAction.Terminate],
        [InstanceState.Suspended] = [InstanceAction.Resume, InstanceAction.Terminate],
        [InstanceState.Epilog] = [],
        [InstanceState.Done] = [],
        [InstanceState.Failed] = [InstanceAction.Terminate],
        // Nothing can reach the VM; only terminate (or wait, or evacuate the host) makes sense.
        [InstanceState.Unknown] = [InstanceAction.Terminate],
    };

    public static IReadOnlyList<InstanceAction> AllowedActions(InstanceState state) => Allowed[state];

    public static bool IsAllowed(InstanceState state, InstanceAction action) => Allowed[state].Contains(action);

    /// <summary>States in which the hypervisor may have a VM for the instance.</summary>
    public static bool MayHaveVm(InstanceState state) =>
        state is InstanceState.Boot or InstanceState.Running or InstanceState.Shutdown or InstanceState.Suspended or InstanceState.Unknown;

    public static bool IsFinal(InstanceState state) => state is InstanceState.Done;

    public static string Name(InstanceState state) => state.ToString().ToUpperInvariant();

    public static string Name(InstanceAction action) => action.ToString().ToLowerInvariant();

    public static bool TryParseState(string text, out InstanceState state) =>
        Enum.TryParse(text, ignoreCase: true, out state) && Enum.IsDefined(state) && !int.TryParse(text, out _);

    public static bool TryParseAction(string text, out InstanceAction action) =>
        Enum.TryParse(text, ignoreCase: true, out action) && Enum.IsDefined(action) && !int.TryParse(text, out _) && action != InstanceAction.Terminate;
}
