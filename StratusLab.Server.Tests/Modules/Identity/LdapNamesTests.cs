using StratusLab.Server.Modules.Identity;

namespace StratusLab.Server.Tests.Modules.Identity;

public class LdapNamesTests
{
    [Test]
    public void A_filter_injection_attempt_is_escaped_into_a_literal_value()
    {
        Assert.That(LdapNames.EscapeFilterValue("*)(uid=*"), Is.EqualTo(@"\2a\29\28uid=\2a"));
    }

    [Test]
    public void Backslash_nul_and_non_ascii_are_hex_escaped_in_filters()
    {
        Assert.That(LdapNames.EscapeFilterValue("a\\b\0é"), Is.EqualTo(@"a\5cb\00\c3\a9"));
    }

    [Test]
    public void Dn_special_characters_and_edge_spaces_are_escaped()
    {
        Assert.That(LdapNames.EscapeDnValue(" #a,b+c=d\\e;\"<>"), Is.EqualTo(@"\ #a\,b\+c\=d\\e\;\""\<\>"));
        Assert.That(LdapNames.EscapeDnValue("#x y "), Is.EqualTo(@"\#x y\ "));
        Assert.That(LdapNames.EscapeDnValue("plain.user"), Is.EqualTo("plain.user"));
    }

    [Test]
    public void Names_with_control_characters_or_empty_are_refused()
    {
        Assert.That(LdapNames.IsAcceptableUserName("alice"), Is.True);
        Assert.That(LdapNames.IsAcceptableUserName("al\nice"), Is.False);
        Assert.That(LdapNames.IsAcceptableUserName("a\u0000"), Is.False);
        Assert.That(LdapNames.IsAcceptableUserName(""), Is.False);
    }
}
