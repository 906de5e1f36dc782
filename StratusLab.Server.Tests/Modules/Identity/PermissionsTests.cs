using StratusLab.Server.Modules.Identity.Contracts;

namespace StratusLab.Server.Tests.Modules.Identity;

public class PermissionsTests
{
    static readonly Caller Owner = new(10, "owner", false, 100, []);
    static readonly Caller GroupMate = new(11, "mate", false, 100, []);
    static readonly Caller SecondaryGroupMate = new(12, "second", false, 200, [100]);
    static readonly Caller Stranger = new(13, "stranger", false, 300, []);
    static readonly Caller Admin = new(1, "admin", true, 0, []);

    [TestCase("um-------", "600")]
    [TestCase("um-u-----", "640")]
    [TestCase("uma---u--", "704")]
    [TestCase("---------", "000")]
    [TestCase("umaumauma", "777")]
    public void Symbolic_and_octal_forms_are_the_same_bits(string symbolic, string octal)
    {
        Assert.That(Permissions.Parse(symbolic), Is.EqualTo(Permissions.Parse(octal)));
        Assert.That(Permissions.Parse(octal).ToString(), Is.EqualTo(symbolic));
    }

    [TestCase("um")]
    [TestCase("xm-------")]
    [TestCase("mu-------")]
    [TestCase("800")]
    public void Malformed_permission_strings_are_rejected(string text) =>
        Assert.Throws<FormatException>(() => Permissions.Parse(text));

    [TestCase("um-------", "owner", Operation.Use, true)]
    [TestCase("um-------", "owner", Operation.Admin, false)]
    [TestCase("um-------", "mate", Operation.Use, false)]
    [TestCase("um-u-----", "mate", Operation.Use, true)]
    [TestCase("um-u-----", "mate", Operation.Manage, false)]
    [TestCase("um-u-----", "second", Operation.Use, true)]
    [TestCase("um-u-----", "stranger", Operation.Use, false)]
    [TestCase("um-u--u--", "stranger", Operation.Use, true)]
    [TestCase("um-u--u--", "stranger", Operation.Manage, false)]
    [TestCase("---------", "owner", Operation.Use, false)]
    [TestCase("---------", "admin", Operation.Admin, true)]
    public void Access_follows_owner_group_other_bits(string bits, string who, Operation operation, bool allowed)
    {
        var caller = who switch { "owner" => Owner, "mate" => GroupMate, "second" => SecondaryGroupMate, "admin" => Admin, _ => Stranger };
        var ownership = new Ownership(Owner.UserId, 100, Permissions.Parse(bits));
        Assert.That(AccessRules.Can(caller, ownership, operation), Is.EqualTo(allowed));
    }

    [Test]
    public void A_private_object_is_invisible_to_others_but_not_to_admins()
    {
        var ownership = new Ownership(Owner.UserId, 100, Permissions.Private);
        Assert.That(AccessRules.CanSee(Stranger, ownership), Is.False);
        Assert.That(AccessRules.CanSee(GroupMate, ownership), Is.False);
        Assert.That(AccessRules.CanSee(Owner, ownership), Is.True);
        Assert.That(AccessRules.CanSee(Admin, ownership), Is.True);
    }
}
