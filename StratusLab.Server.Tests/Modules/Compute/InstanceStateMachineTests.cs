using StratusLab.Server.Modules.Compute;
using StratusLab.Server.Modules.Compute.Contracts;

namespace StratusLab.Server.Tests.Modules.Compute;

public class InstanceStateMachineTests
{
    [TestCase(InstanceState.Pending, "terminate")]
    [TestCase(InstanceState.Prolog, "terminate")]
    [TestCase(InstanceState.Boot, "terminate")]
    [TestCase(InstanceState.Running, "stop,reboot,suspend,shutdown,terminate")]
    [TestCase(InstanceState.Shutdown, "terminate")]
    [TestCase(InstanceState.Stopped, "start,terminate")]
    [TestCase(InstanceState.Suspended, "resume,terminate")]
    [TestCase(InstanceState.Epilog, "")]
    [TestCase(InstanceState.Done, "")]
    [TestCase(InstanceState.Failed, "terminate")]
    [TestCase(InstanceState.Unknown, "terminate")]
    public void Each_state_allows_exactly_these_actions(InstanceState state, string actions) =>
        Assert.That(string.Join(",", InstanceStateMachine.AllowedActions(state).Select(InstanceStateMachine.Name)), Is.EqualTo(actions));

    [TestCase("running", true)]
    [TestCase("RUNNING", true)]
    [TestCase("Failed", true)]
    [TestCase("3", false)]
    [TestCase("exploded", false)]
    public void States_parse_by_name_only(string text, bool ok) => Assert.That(InstanceStateMachine.TryParseState(text, out _), Is.EqualTo(ok));

    [TestCase("suspend", true)]
    [TestCase("terminate", false)]
    [TestCase("destroy", false)]
    [TestCase("0", false)]
    public void Actions_in_the_url_are_the_six_named_ones(string text, bool ok) => Assert.That(InstanceStateMachine.TryParseAction(text, out _), Is.EqualTo(ok));
}
