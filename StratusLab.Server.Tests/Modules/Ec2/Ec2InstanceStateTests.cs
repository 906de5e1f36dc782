using StratusLab.Server.Modules.Ec2;

namespace StratusLab.Server.Tests.Modules.Ec2;

/// <summary>Our instance states as EC2 names them (the codes are EC2's own).</summary>
public class Ec2InstanceStateTests
{
    [TestCase("PENDING", 0, "pending")]
    [TestCase("BOOT", 0, "pending")]
    [TestCase("RUNNING", 16, "running")]
    [TestCase("UNKNOWN", 16, "running")]
    [TestCase("SHUTDOWN", 32, "shutting-down")]
    [TestCase("FAILED", 48, "terminated")]
    [TestCase("STOPPED", 80, "stopped")]
    public void Each_state_has_its_EC2_code_and_name_and_UNKNOWN_stays_running(string state, int code, string name) =>
        Assert.That(Ec2Actions.StateOf(state), Is.EqualTo((code, name)));
}
