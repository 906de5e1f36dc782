using StratusLab.Server.Modules.Marketplace.Contracts;
using StratusLab.Server.Modules.Marketplace.Metadata;
using StratusLab.Server.Modules.Marketplace.Policy;

namespace StratusLab.Server.Tests.Modules.Marketplace;

public class PolicyRulesTests
{
    const string Sha1 = "c319bbd5afc0a22ba3eaed0507c39383ec28eeff";
    const string Image = "MMZu9WvwKIro-rtBQfDk4PsKO7_";
    const string Md5 = "900150983cd24fb0d6963f7d28e17f72";
    static readonly DateTimeOffset Now = new(2026, 6, 1, 12, 0, 0, TimeSpan.Zero);

    static MetadataEntry Entry(string email, EntryStatus status = EntryStatus.Valid, int ageDays = 1) => new()
    {
        Identifier = Image,
        Sha1 = Sha1,
        Checksums = [new("SHA-1", Sha1), new("MD5", Md5)],
        Endorser = new Endorser(email, "CN=x", "CN=x"),
        Created = Now.AddDays(-ageDays),
        Valid = status == EntryStatus.Expired ? Now.AddDays(-1) : Now.AddDays(30),
        Type = "machine",
        Status = status,
        Deprecated = status == EntryStatus.Deprecated ? "vulnerable" : null,
        DeprecatedBy = status == EntryStatus.Deprecated ? "endorser" : null,
    };

    /// <summary>"config:BE=a@x;WI=ID site:BC=hex" → the two rule sets. Keys: W/B (white/black) + E/I/C (endorser/image/checksum).</summary>
    static PolicyRuleSet Rules(string spec)
    {
        PolicyLists Parse(string part)
        {
            var lists = new Dictionary<string, List<string>> { ["WE"] = [], ["BE"] = [], ["WI"] = [], ["BI"] = [], ["WC"] = [], ["BC"] = [] };
            foreach (var rule in part.Split(';', StringSplitOptions.RemoveEmptyEntries))
            {
                var (key, value) = (rule[..2], rule[3..]);
                lists[key].Add(value switch { "IMAGE" => Image, "SHA1" => Sha1, "MD5" => Md5, _ => value });
            }
            return new PolicyLists(lists["WE"], lists["BE"], lists["WI"], lists["BI"], lists["WC"], lists["BC"]);
        }
        string Part(string name) => spec.Split(' ', StringSplitOptions.RemoveEmptyEntries).FirstOrDefault(p => p.StartsWith(name + ":"))?[(name.Length + 1)..] ?? "";
        return new PolicyRuleSet(Parse(Part("config")), Parse(Part("site")));
    }

    [TestCase("", true, "default-allow", "default")]
    [TestCase("config:BE=alice@example.org", false, "blacklist-endorser", "config")]
    [TestCase("site:BE=ALICE@example.org", false, "blacklist-endorser", "site")]
    [TestCase("site:BI=IMAGE", false, "blacklist-image", "site")]
    [TestCase("config:BC=SHA1", false, "blacklist-checksum", "config")]
    [TestCase("config:BC=MD5", false, "blacklist-checksum", "config")]
    [TestCase("config:WE=alice@example.org", true, "whitelist-endorser", "config")]
    [TestCase("site:WE=bob@example.org", false, "whitelist-endorser", "site")]
    [TestCase("config:WE=bob@example.org site:WE=alice@example.org", true, "whitelist-endorser", "site")]
    [TestCase("site:WI=IMAGE", true, "whitelist-image", "site")]
    [TestCase("site:WI=AAAAAAAAAAAAAAAAAAAAAAAAAAA", false, "whitelist-image", "site")]
    [TestCase("site:WC=MD5", true, "whitelist-checksum", "site")]
    [TestCase("site:WC=00112233445566778899aabbccddeeff", false, "whitelist-checksum", "site")]
    [TestCase("config:WI=IMAGE;WE=bob@example.org", false, "whitelist-endorser", "config")]
    [TestCase("config:WE=alice@example.org;BC=SHA1", false, "blacklist-checksum", "config")]
    public void One_valid_entry_by_alice_is_judged_by_the_lists(string rules, bool accepted, string rule, string source)
    {
        var decision = PolicyRules.Evaluate(Image, [Entry("alice@example.org")], Rules(rules), Now);
        Assert.That(decision.Accepted, Is.EqualTo(accepted), decision.Reason);
        Assert.That(decision.Rule, Is.EqualTo(rule), decision.Reason);
        Assert.That(decision.Source, Is.EqualTo(source), decision.Reason);
        Assert.That(decision.Entry?.Endorser.Email, Is.EqualTo("alice@example.org"));
        Assert.That(decision.Reason, Does.StartWith(accepted ? "Accepted" : "Refused"));
    }

    [TestCase(EntryStatus.Deprecated, "deprecated")]
    [TestCase(EntryStatus.Expired, "expired")]
    public void An_entry_that_is_not_valid_never_runs_even_when_whitelisted(EntryStatus status, string rule)
    {
        var decision = PolicyRules.Evaluate(Image, [Entry("alice@example.org", status)], Rules("site:WE=alice@example.org;WI=IMAGE"), Now);
        Assert.That(decision.Accepted, Is.False);
        Assert.That(decision.Rule, Is.EqualTo(rule));
        Assert.That(decision.Source, Is.EqualTo("marketplace"));
    }

    [Test]
    public void The_newest_surviving_entry_is_chosen_among_endorsers()
    {
        var entries = new[] { Entry("old@example.org", ageDays: 10), Entry("blocked@example.org", ageDays: 1), Entry("mid@example.org", ageDays: 5) };
        var decision = PolicyRules.Evaluate(Image, entries, Rules("site:BE=blocked@example.org"), Now);
        Assert.That(decision.Accepted, Is.True);
        Assert.That(decision.Entry!.Endorser.Email, Is.EqualTo("mid@example.org"));
        Assert.That(decision.Candidates.Select(c => (c.Endorser, c.Accepted)), Is.EqualTo(new[]
        {
            ("blocked@example.org", false), ("mid@example.org", true), ("old@example.org", true),
        }));
    }

    [Test]
    public void When_every_entry_is_refused_the_newest_ones_rule_is_reported()
    {
        var entries = new[] { Entry("a@example.org", EntryStatus.Expired, ageDays: 10), Entry("b@example.org", EntryStatus.Deprecated, ageDays: 2) };
        var decision = PolicyRules.Evaluate(Image, entries, Rules(""), Now);
        Assert.That(decision.Accepted, Is.False);
        Assert.That(decision.Rule, Is.EqualTo("deprecated"));
        Assert.That(decision.Reason, Does.Contain("none of the 2"));
    }

    [Test]
    public void An_image_without_entries_or_a_malformed_identifier_is_refused()
    {
        Assert.That(PolicyRules.Evaluate(Image, [], Rules(""), Now).Rule, Is.EqualTo("no-entry"));
        Assert.That(PolicyRules.Evaluate("../etc/passwd", [], Rules(""), Now).Rule, Is.EqualTo("invalid-identifier"));
        Assert.That(PolicyRules.Evaluate(Image, [], Rules("config:BI=IMAGE"), Now).Rule, Is.EqualTo("blacklist-image"));
    }

    [Test]
    public void Image_identifiers_match_exactly_but_emails_and_checksums_ignore_case()
    {
        var lower = Image.ToLowerInvariant();
        Assert.That(PolicyRules.Evaluate(Image, [Entry("alice@example.org")], new PolicyRuleSet(PolicyLists.Empty,
            PolicyLists.Empty with { BlacklistImages = [lower] }), Now).Accepted, Is.True);
        Assert.That(PolicyRules.Evaluate(Image, [Entry("alice@example.org")], new PolicyRuleSet(PolicyLists.Empty,
            PolicyLists.Empty with { BlacklistChecksums = [Sha1.ToUpperInvariant()] }), Now).Accepted, Is.False);
        Assert.That(ImageIdentifier.IsWellFormed(Image), Is.True);
    }
}
