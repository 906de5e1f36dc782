using System.Net.Http.Json;
using System.Text.Json.Nodes;
using StratusLab.Server.Tests.Support;

namespace StratusLab.Server.Tests.Modules.Ec2;

/// <summary>
/// Security groups, the default VPC, subnets and account attributes through the EC2 door, driven by Debian's boto3 against
/// the simulated-driver server; REST reads check that both doors share Networking's service.
/// </summary>
public class Ec2SecurityGroupTests
{
    TestServer _server = null!;
    HttpClient _alice = null!;
    HttpClient _bob = null!;
    Ec2Key _aliceKey = null!;
    Ec2Key _bobKey = null!;

    /// <summary>A second boto3 client that skips botocore's own parameter validation, so the server's answer to bad input is what the test sees.</summary>
    const string Raw = """
        raw = boto3.client('ec2', endpoint_url=os.environ['EC2_ENDPOINT'], region_name=os.environ['EC2_REGION'],
                           aws_access_key_id=os.environ['EC2_KEY'], aws_secret_access_key=os.environ['EC2_SECRET'],
                           config=Config(retries={'max_attempts': 1, 'mode': 'standard'}, parameter_validation=False))

        """;

    [OneTimeSetUp]
    public async Task Start()
    {
        _server = await TestServer.StartAsync();
        _alice = _server.Client(await _server.CreateUserAsync("sgalice"));
        _bob = _server.Client(await _server.CreateUserAsync("sgbob"));
        _aliceKey = await Ec2Key.CreateAsync(_alice, "sgalice");
        _bobKey = await Ec2Key.CreateAsync(_bob, "sgbob");
    }

    [OneTimeTearDown]
    public async Task Stop()
    {
        _alice.Dispose();
        _bob.Dispose();
        await _server.DisposeAsync();
    }

    static string Unique(string prefix) => prefix + Guid.NewGuid().ToString("N")[..6];

    static string Code(JsonNode? error) => error?["code"]?.GetValue<string>() ?? "(no error)";

    [Test, CancelAfter(240_000)]
    public async Task Rules_get_stable_sgr_ids_that_describe_and_revoke_them_and_other_users_cannot_use()
    {
        var name = Unique("sgr");
        var result = await Ec2Clients.Boto3Async(_server, _aliceKey, $$"""
            gid = ec2.create_security_group(GroupName='{{name}}', Description='rule ids')['GroupId']
            a = ec2.authorize_security_group_ingress(GroupId=gid, IpPermissions=[
                {'IpProtocol': 'tcp', 'FromPort': 22, 'ToPort': 22, 'IpRanges': [{'CidrIp': '192.0.2.0/24'}, {'CidrIp': '198.51.100.0/24'}]}])
            e = ec2.authorize_security_group_egress(GroupId=gid, IpPermissions=[{'IpProtocol': 'udp', 'FromPort': 53, 'ToPort': 53, 'IpRanges': [{'CidrIp': '10.0.0.0/8'}]}])
            ids = [r['SecurityGroupRuleId'] for r in a['SecurityGroupRules']]
            egress = e['SecurityGroupRules'][0]['SecurityGroupRuleId']
            listed = ec2.describe_security_group_rules(Filters=[{'Name': 'group-id', 'Values': [gid]}])['SecurityGroupRules']
            listed_again = ec2.describe_security_group_rules(Filters=[{'Name': 'group-id', 'Values': [gid]}])['SecurityGroupRules']
            one = ec2.describe_security_group_rules(SecurityGroupRuleIds=[ids[1]])['SecurityGroupRules']
            wrong_direction = error(lambda: ec2.revoke_security_group_ingress(GroupId=gid, SecurityGroupRuleIds=[egress]))
            unknown = error(lambda: ec2.revoke_security_group_ingress(GroupId=gid, SecurityGroupRuleIds=['sgr-0123456789abcdef0']))
            malformed = error(lambda: ec2.describe_security_group_rules(SecurityGroupRuleIds=['sgr-nope']))
            print(json.dumps({'gid': gid, 'added': a['SecurityGroupRules'], 'ids': ids, 'egress': egress, 'listed': listed, 'listed_again': listed_again,
                              'one': one, 'wrong_direction': wrong_direction, 'unknown': unknown, 'malformed': malformed}))
            """);
        var gid = result["gid"]!.GetValue<string>();
        var ids = result["ids"]!.AsArray().Select(i => i!.GetValue<string>()).ToList();
        var egress = result["egress"]!.GetValue<string>();
        Assert.That(ids, Has.Count.EqualTo(2), "one rule per CIDR");
        Assert.That(ids, Is.Unique, "each with its own id");
        Assert.That(ids.Append(egress), Has.All.Match("^sgr-[0-9a-f]{17}$"));
        var added = result["added"]!.AsArray();
        Assert.That(added.Select(r => (r!["CidrIpv4"]!.GetValue<string>(), r["IpProtocol"]!.GetValue<string>(), r["FromPort"]!.GetValue<int>(), r["IsEgress"]!.GetValue<bool>(), r["GroupId"]!.GetValue<string>())),
            Is.EquivalentTo(new[] { ("192.0.2.0/24", "tcp", 22, false, gid), ("198.51.100.0/24", "tcp", 22, false, gid) }));
        var listed = result["listed"]!.AsArray().Select(r => r!["SecurityGroupRuleId"]!.GetValue<string>()).ToList();
        Assert.That(listed, Is.SupersetOf(ids.Append(egress)), "the ids authorize returned are the ones listed");
        Assert.That(listed, Has.Count.EqualTo(4), "with the allow-all egress rule a group made over EC2 starts with");
        Assert.That(result["listed_again"]!.AsArray().Select(r => r!["SecurityGroupRuleId"]!.GetValue<string>()), Is.EquivalentTo(listed), "stored, not recomputed");
        Assert.That(result["one"]!.AsArray().Single()!["CidrIpv4"]!.GetValue<string>(), Is.EqualTo("198.51.100.0/24"));
        Assert.That(Code(result["wrong_direction"]), Is.EqualTo("InvalidSecurityGroupRuleId.NotFound"));
        Assert.That(result["wrong_direction"]!["message"]!.GetValue<string>(), Does.Contain("RevokeSecurityGroupEgress"));
        Assert.That(Code(result["unknown"]), Is.EqualTo("InvalidSecurityGroupRuleId.NotFound"));
        Assert.That(Code(result["malformed"]), Is.EqualTo("InvalidSecurityGroupRuleId.Malformed"));

        var bob = await Ec2Clients.Boto3Async(_server, _bobKey, $$"""
            print(json.dumps({'describe': error(lambda: ec2.describe_security_group_rules(SecurityGroupRuleIds=['{{ids[0]}}'])),
                              'revoke': error(lambda: ec2.revoke_security_group_ingress(GroupId='{{gid}}', SecurityGroupRuleIds=['{{ids[0]}}']))}))
            """);
        Assert.That(Code(bob["describe"]), Is.EqualTo("InvalidSecurityGroupRuleId.NotFound"), "another user's rule is not visible");
        Assert.That(Code(bob["revoke"]), Is.EqualTo("InvalidGroup.NotFound"));

        var after = await Ec2Clients.Boto3Async(_server, _aliceKey, $$"""
            ec2.revoke_security_group_ingress(GroupId='{{gid}}', SecurityGroupRuleIds=['{{ids[0]}}'])
            ec2.revoke_security_group_egress(GroupId='{{gid}}', SecurityGroupRuleIds=['{{egress}}'])
            left = ec2.describe_security_group_rules(Filters=[{'Name': 'group-id', 'Values': ['{{gid}}']}])['SecurityGroupRules']
            print(json.dumps({'left': [r for r in left if not r['IsEgress'] or r['CidrIpv4'] == '10.0.0.0/8']}))
            """);
        Assert.That(after["left"]!.AsArray().Select(r => r!["SecurityGroupRuleId"]!.GetValue<string>()), Is.EqualTo(new[] { ids[1] }));
        var rest = await (await _alice.GetAsync($"/api/v1/security-groups/{name}")).Json(200);
        Assert.That(rest["rules"]!.AsArray().Where(r => r!["direction"]!.GetValue<string>() == "inbound").Select(r => r!["cidr"]?.GetValue<string>()), Is.EqualTo(new[] { "198.51.100.0/24" }),
            "the revoke by id removed the rule in Networking, as REST sees it");
    }

    [Test, CancelAfter(240_000)]
    public async Task A_group_is_created_described_authorized_revoked_and_deleted_and_its_rules_are_the_rest_apis()
    {
        var name = Unique("web");
        var result = await Ec2Clients.Boto3Async(_server, _aliceKey, $$"""
            g = ec2.create_security_group(GroupName='{{name}}', Description='web servers',
                TagSpecifications=[{'ResourceType': 'security-group', 'Tags': [{'Key': 'role', 'Value': 'web'}]}])
            gid = g['GroupId']
            ec2.authorize_security_group_ingress(GroupId=gid, IpPermissions=[
                {'IpProtocol': 'tcp', 'FromPort': 22, 'ToPort': 22, 'IpRanges': [{'CidrIp': '192.0.2.0/24'}, {'CidrIp': '198.51.100.0/24'}]},
                {'IpProtocol': 'icmp', 'FromPort': -1, 'ToPort': -1, 'IpRanges': [{'CidrIp': '0.0.0.0/0'}]}])
            ec2.authorize_security_group_egress(GroupId=gid, IpPermissions=[{'IpProtocol': '-1', 'IpRanges': [{'CidrIp': '10.0.0.0/8'}]}])
            ec2.authorize_security_group_ingress(GroupName='{{name}}', IpProtocol='udp', FromPort=53, ToPort=53, CidrIp='203.0.113.7/32')
            dup = error(lambda: ec2.authorize_security_group_ingress(GroupId=gid,
                IpPermissions=[{'IpProtocol': 'tcp', 'FromPort': 22, 'ToPort': 22, 'IpRanges': [{'CidrIp': '192.0.2.0/24'}]}]))
            again = error(lambda: ec2.create_security_group(GroupName='{{name}}', Description='again'))
            sg = ec2.describe_security_groups(GroupIds=[gid])['SecurityGroups'][0]
            print(json.dumps({'gid': gid, 'sg': sg, 'dup': dup, 'again': again}))
            """);
        var gid = result["gid"]!.GetValue<string>();
        Assert.That(gid, Does.Match("^sg-[0-9a-f]{17}$"));
        Assert.That(Code(result["dup"]), Is.EqualTo("InvalidPermission.Duplicate"));
        Assert.That(Code(result["again"]), Is.EqualTo("InvalidGroup.Duplicate"));
        var sg = result["sg"]!;
        Assert.That(sg["GroupName"]!.GetValue<string>(), Is.EqualTo(name));
        Assert.That(sg["Description"]!.GetValue<string>(), Is.EqualTo("web servers"));
        Assert.That(sg["VpcId"]!.GetValue<string>(), Does.Match("^vpc-[0-9a-f]{17}$"));
        Assert.That(sg["Tags"]!.AsArray().Select(t => $"{t!["Key"]}={t["Value"]}"), Is.EqualTo(new[] { "role=web" }));
        var ingress = sg["IpPermissions"]!.AsArray().Select(p =>
            $"{p!["IpProtocol"]} {p["FromPort"]?.ToString() ?? "-"}..{p["ToPort"]?.ToString() ?? "-"} {string.Join(",", p["IpRanges"]!.AsArray().Select(r => r!["CidrIp"]!.GetValue<string>()))}");
        Assert.That(ingress, Is.EquivalentTo(new[] { "tcp 22..22 192.0.2.0/24,198.51.100.0/24", "icmp -1..-1 0.0.0.0/0", "udp 53..53 203.0.113.7/32" }));
        Assert.That(sg["IpPermissionsEgress"]!.AsArray().Select(p => $"{p!["IpProtocol"]} {string.Join(",", p["IpRanges"]!.AsArray().Select(r => r!["CidrIp"]!.GetValue<string>()))}"),
            Is.EqualTo(new[] { "-1 0.0.0.0/0,10.0.0.0/8" }), "AWS's default allow-all egress rule, and the one added");

        // The same group and rules through REST: one service behind both doors.
        var rest = await (await _alice.GetAsync($"/api/v1/security-groups/{name}")).Json(200);
        var restRules = rest["rules"]!.AsArray().Select(r => $"{r!["direction"]} {r["protocol"]} {r["ports"]?.GetValue<string>() ?? "any"} {r["cidr"]?.GetValue<string>() ?? "any"} {r["action"]}");
        Assert.That(restRules, Is.EquivalentTo(new[]
        {
            "inbound tcp 22 192.0.2.0/24 accept", "inbound tcp 22 198.51.100.0/24 accept", "inbound icmp any 0.0.0.0/0 accept",
            "outbound all any 0.0.0.0/0 accept", "outbound all any 10.0.0.0/8 accept", "inbound udp 53 203.0.113.7/32 accept",
        }));
        // A rule added over REST shows through EC2 (no CIDR: 0.0.0.0/0; tcp without ports: 0-65535).
        await (await _alice.PostAsJsonAsync($"/api/v1/security-groups/{name}/rules", new { direction = "inbound", protocol = "tcp" })).Json(201);
        // A drop rule has no AWS shape (no deny in security groups): it applies, but EC2 does not list it.
        await (await _alice.PostAsJsonAsync($"/api/v1/security-groups/{name}/rules", new { direction = "inbound", protocol = "tcp", ports = "25", action = "drop" })).Json(201);

        result = await Ec2Clients.Boto3Async(_server, _aliceKey, $$"""
            gid = '{{gid}}'
            before = ec2.describe_security_groups(GroupIds=[gid])['SecurityGroups'][0]['IpPermissions']
            ec2.revoke_security_group_ingress(GroupId=gid, IpPermissions=[
                {'IpProtocol': 'tcp', 'FromPort': 22, 'ToPort': 22, 'IpRanges': [{'CidrIp': '198.51.100.0/24'}]}])
            ec2.revoke_security_group_egress(GroupId=gid, IpPermissions=[{'IpProtocol': '-1', 'IpRanges': [{'CidrIp': '10.0.0.0/8'}]}])
            # Terraform's aws_security_group revokes the default egress rule right after creating a group, in exactly this form.
            ec2.revoke_security_group_egress(GroupId=gid, IpPermissions=[{'IpProtocol': '-1', 'FromPort': 0, 'ToPort': 0, 'IpRanges': [{'CidrIp': '0.0.0.0/0'}]}])
            ec2.revoke_security_group_ingress(GroupName='{{name}}', IpProtocol='udp', FromPort=53, ToPort=53, CidrIp='203.0.113.7/32')
            missing = error(lambda: ec2.revoke_security_group_ingress(GroupId=gid, IpPermissions=[
                {'IpProtocol': 'tcp', 'FromPort': 22, 'ToPort': 22, 'IpRanges': [{'CidrIp': '192.0.2.0/24'}]},
                {'IpProtocol': 'tcp', 'FromPort': 8080, 'ToPort': 8080, 'IpRanges': [{'CidrIp': '192.0.2.0/24'}]}]))
            after = ec2.describe_security_groups(GroupIds=[gid])['SecurityGroups'][0]
            ec2.delete_security_group(GroupId=gid)
            gone = error(lambda: ec2.describe_security_groups(GroupIds=[gid]))
            print(json.dumps({'before': before, 'after': after, 'missing': missing, 'gone': gone}))
            """);
        Assert.That(result["before"]!.AsArray().Any(p => p!["IpProtocol"]!.GetValue<string>() == "tcp" && p["FromPort"]!.GetValue<int>() == 0
            && p["ToPort"]!.GetValue<int>() == 65535 && p["IpRanges"]![0]!["CidrIp"]!.GetValue<string>() == "0.0.0.0/0"), result["before"]!.ToJsonString());
        Assert.That(result["before"]!.AsArray().Any(p => p!["FromPort"]?.GetValue<int>() == 25), Is.False, "drop rules are not listed");
        Assert.That(Code(result["missing"]), Is.EqualTo("InvalidPermission.NotFound"));
        Assert.That(result["missing"]!["message"]!.GetValue<string>(), Does.Contain("8080"));
        var after = result["after"]!;
        Assert.That(after["IpPermissionsEgress"]!.AsArray(), Is.Empty);
        Assert.That(after["IpPermissions"]!.AsArray().Select(p => $"{p!["IpProtocol"]} {p["FromPort"]} {p["IpRanges"]!.AsArray().Count}"),
            Is.EquivalentTo(new[] { "tcp 22 1", "icmp -1 1", "tcp 0 1" }), "the failed revoke removed nothing");
        Assert.That(Code(result["gone"]), Is.EqualTo("InvalidGroup.NotFound"));
        await (await _alice.GetAsync($"/api/v1/security-groups/{name}")).Problem(404);
    }

    [Test, CancelAfter(240_000)]
    public async Task Another_users_group_is_not_found_and_a_group_in_use_or_the_default_one_cannot_be_deleted()
    {
        var name = Unique("priv");
        var gid = (await Ec2Clients.Boto3Async(_server, _aliceKey, $$"""
            print(json.dumps({'gid': ec2.create_security_group(GroupName='{{name}}', Description='private')['GroupId']}))
            """))["gid"]!.GetValue<string>();
        var result = await Ec2Clients.Boto3Async(_server, _bobKey, $$"""
            gid = '{{gid}}'
            rule = [{'IpProtocol': 'tcp', 'FromPort': 22, 'ToPort': 22, 'IpRanges': [{'CidrIp': '0.0.0.0/0'}]}]
            print(json.dumps({
                'listed': [g['GroupId'] for g in ec2.describe_security_groups()['SecurityGroups']],
                'byId': error(lambda: ec2.describe_security_groups(GroupIds=[gid])),
                'byName': error(lambda: ec2.describe_security_groups(GroupNames=['{{name}}'])),
                'filtered': ec2.describe_security_groups(Filters=[{'Name': 'group-id', 'Values': [gid]}])['SecurityGroups'],
                'authorize': error(lambda: ec2.authorize_security_group_ingress(GroupId=gid, IpPermissions=rule)),
                'revoke': error(lambda: ec2.revoke_security_group_ingress(GroupId=gid, IpPermissions=rule)),
                'revokeEgress': error(lambda: ec2.revoke_security_group_egress(GroupId=gid, IpPermissions=[{'IpProtocol': '-1', 'IpRanges': [{'CidrIp': '0.0.0.0/0'}]}])),
                'delete': error(lambda: ec2.delete_security_group(GroupId=gid)),
                'deleteByName': error(lambda: ec2.delete_security_group(GroupName='{{name}}')),
            }))
            """);
        Assert.That(result["listed"]!.AsArray().Select(g => g!.GetValue<string>()), Does.Not.Contain(gid));
        Assert.That(result["filtered"]!.AsArray(), Is.Empty);
        foreach (var key in new[] { "byId", "byName", "authorize", "revoke", "revokeEgress", "delete", "deleteByName" })
        {
            Assert.That(Code(result[key]), Is.EqualTo("InvalidGroup.NotFound"), key);
            Assert.That(result[key]!["status"]!.GetValue<int>(), Is.EqualTo(400), key);
        }
        var rules = (await (await _alice.GetAsync($"/api/v1/security-groups/{name}")).Json(200))["rules"]!.AsArray();
        Assert.That(rules.Select(r => $"{r!["direction"]} {r["protocol"]} {r["cidr"]}"), Is.EqualTo(new[] { "outbound all 0.0.0.0/0" }), "bob changed nothing");

        var network = Unique("sgnet");
        await (await _alice.PostAsJsonAsync("/api/v1/networks", new { name = network, cidr = "10.231.0.0/28", securityGroups = new[] { name } })).Json(201);
        result = await Ec2Clients.Boto3Async(_server, _aliceKey, $$"""
            default = ec2.describe_security_groups(GroupNames=['default'])['SecurityGroups'][0]
            print(json.dumps({
                'inUse': error(lambda: ec2.delete_security_group(GroupId='{{gid}}')),
                'default': error(lambda: ec2.delete_security_group(GroupId=default['GroupId'])),
                'defaultGroup': default,
            }))
            """);
        Assert.That(Code(result["inUse"]), Is.EqualTo("DependencyViolation"));
        Assert.That(result["inUse"]!["message"]!.GetValue<string>(), Does.Contain(gid));
        Assert.That(Code(result["default"]), Is.EqualTo("CannotDelete"));
        Assert.That(result["defaultGroup"]!["OwnerId"]!.GetValue<string>(), Is.EqualTo("000000000000"), "the site's built-in group");
        await (await _alice.GetAsync($"/api/v1/security-groups/{name}")).Json(200);
        await (await _alice.DeleteAsync($"/api/v1/networks/{network}")).Json(204);
    }

    [Test, CancelAfter(240_000)]
    public async Task Groups_page_with_next_token_and_filter_by_id_name_and_tag()
    {
        var prefix = Unique("pg");
        var result = await Ec2Clients.Boto3Async(_server, _aliceKey, Raw + $$"""
            ids = [ec2.create_security_group(GroupName='{{prefix}}-%d' % i, Description='page %d' % i,
                       TagSpecifications=[{'ResourceType': 'security-group', 'Tags': [{'Key': 'parity', 'Value': 'even' if i % 2 == 0 else 'odd'}]}])['GroupId']
                   for i in range(7)]
            mine = [{'Name': 'group-name', 'Values': ['{{prefix}}-*']}]
            first = ec2.describe_security_groups(Filters=mine, MaxResults=5)
            second = ec2.describe_security_groups(Filters=mine, MaxResults=5, NextToken=first['NextToken'])
            pages = [len(p['SecurityGroups']) for p in ec2.get_paginator('describe_security_groups').paginate(Filters=mine, PaginationConfig={'PageSize': 5})]
            print(json.dumps({
                'ids': ids,
                'first': [g['GroupId'] for g in first['SecurityGroups']],
                'second': [g['GroupId'] for g in second['SecurityGroups']],
                'secondToken': second.get('NextToken'),
                'pages': pages,
                'byId': [g['GroupName'] for g in ec2.describe_security_groups(Filters=[{'Name': 'group-id', 'Values': [ids[3], ids[5]]}])['SecurityGroups']],
                'odd': sorted(g['GroupName'] for g in ec2.describe_security_groups(Filters=mine + [{'Name': 'tag:parity', 'Values': ['odd']}])['SecurityGroups']),
                'desc': [g['GroupName'] for g in ec2.describe_security_groups(Filters=[{'Name': 'description', 'Values': ['page 6']}, {'Name': 'group-name', 'Values': ['{{prefix}}-?']}])['SecurityGroups']],
                'ids2': [g['GroupName'] for g in ec2.describe_security_groups(GroupIds=[ids[1], ids[2]])['SecurityGroups']],
                'badToken': error(lambda: ec2.describe_security_groups(NextToken='garbage')),
                'smallPage': error(lambda: raw.describe_security_groups(MaxResults=2)),
                'idsAndPage': error(lambda: ec2.describe_security_groups(GroupIds=[ids[0]], MaxResults=5)),
                'badFilter': error(lambda: ec2.describe_security_groups(Filters=[{'Name': 'colour', 'Values': ['red']}])),
                'malformedId': error(lambda: ec2.describe_security_groups(GroupIds=['sg-12'])),
            }))
            """);
        var ids = result["ids"]!.AsArray().Select(i => i!.GetValue<string>()).ToList();
        Assert.That(ids.Distinct().Count(), Is.EqualTo(7));
        var paged = result["first"]!.AsArray().Concat(result["second"]!.AsArray()).Select(i => i!.GetValue<string>()).ToList();
        Assert.That(result["first"]!.AsArray(), Has.Count.EqualTo(5));
        Assert.That(paged, Is.EqualTo(ids), "two pages, in creation order, none twice");
        Assert.That(result["secondToken"], Is.Null);
        Assert.That(result["pages"]!.AsArray().Select(p => p!.GetValue<int>()), Is.EqualTo(new[] { 5, 2 }));
        Assert.That(result["byId"]!.AsArray().Select(n => n!.GetValue<string>()), Is.EqualTo(new[] { $"{prefix}-3", $"{prefix}-5" }));
        Assert.That(result["odd"]!.AsArray().Select(n => n!.GetValue<string>()), Is.EqualTo(new[] { $"{prefix}-1", $"{prefix}-3", $"{prefix}-5" }));
        Assert.That(result["desc"]!.AsArray().Select(n => n!.GetValue<string>()), Is.EqualTo(new[] { $"{prefix}-6" }));
        Assert.That(result["ids2"]!.AsArray().Select(n => n!.GetValue<string>()), Is.EqualTo(new[] { $"{prefix}-1", $"{prefix}-2" }));
        Assert.That(Code(result["badToken"]), Is.EqualTo("InvalidParameterValue"));
        Assert.That(Code(result["smallPage"]), Is.EqualTo("InvalidParameterValue"));
        Assert.That(Code(result["idsAndPage"]), Is.EqualTo("InvalidParameterCombination"));
        Assert.That(Code(result["badFilter"]), Is.EqualTo("InvalidParameterValue"));
        Assert.That(result["badFilter"]!["message"]!.GetValue<string>(), Does.Contain("colour"));
        Assert.That(Code(result["malformedId"]), Is.EqualTo("InvalidGroupId.Malformed"));
    }

    [Test, CancelAfter(240_000)]
    public async Task Malformed_parameters_get_aws_codes_with_4xx_and_leave_nothing_behind()
    {
        var name = Unique("bad");
        var result = await Ec2Clients.Boto3Async(_server, _aliceKey, Raw + $$"""
            gid = ec2.create_security_group(GroupName='{{name}}', Description='target')['GroupId']
            def perm(proto, lo, hi, cidr='192.0.2.0/24'):
                p = {'IpProtocol': proto, 'IpRanges': [{'CidrIp': cidr}]}
                if lo is not None: p['FromPort'] = lo
                if hi is not None: p['ToPort'] = hi
                return p
            def auth(*perms): return error(lambda: raw.authorize_security_group_ingress(GroupId=gid, IpPermissions=list(perms)))
            out = {
                'noName': error(lambda: raw.create_security_group(Description='x')),
                'noDescription': error(lambda: raw.create_security_group(GroupName='{{name}}x')),
                'badName': error(lambda: raw.create_security_group(GroupName='no spaces allowed!', Description='x')),
                'badVpc': error(lambda: raw.create_security_group(GroupName='{{name}}v', Description='x', VpcId='vpc-00000000000000000')),
                'badTagType': error(lambda: raw.create_security_group(GroupName='{{name}}t', Description='x',
                    TagSpecifications=[{'ResourceType': 'instance', 'Tags': [{'Key': 'a', 'Value': 'b'}]}])),
                'protocol': auth(perm('gre', None, None)),
                'reversed': auth(perm('tcp', 80, 22)),
                'noPorts': auth(perm('tcp', None, None)),
                'bigPort': auth(perm('udp', 1, 70000)),
                'icmpType': auth(perm('icmp', 8, 0)),
                'cidrShape': auth(perm('tcp', 22, 22, 'not-a-cidr')),
                'cidrRange': auth(perm('tcp', 22, 22, '300.1.2.3/40')),
                'halfBad': auth(perm('tcp', 443, 443), perm('tcp', 22, 22, '10.0.0.0/99')),
                'noRanges': error(lambda: raw.authorize_security_group_ingress(GroupId=gid, IpPermissions=[{'IpProtocol': 'tcp', 'FromPort': 1, 'ToPort': 2}])),
                'groupRef': error(lambda: raw.authorize_security_group_ingress(GroupId=gid,
                    IpPermissions=[{'IpProtocol': 'tcp', 'FromPort': 1, 'ToPort': 2, 'UserIdGroupPairs': [{'GroupId': gid}]}])),
                'ipv6': error(lambda: raw.authorize_security_group_ingress(GroupId=gid,
                    IpPermissions=[{'IpProtocol': 'tcp', 'FromPort': 1, 'ToPort': 2, 'Ipv6Ranges': [{'CidrIpv6': '::/0'}]}])),
                'noGroup': error(lambda: raw.authorize_security_group_ingress(IpPermissions=[perm('tcp', 1, 2)])),
                'egressNoId': error(lambda: raw.authorize_security_group_egress(IpPermissions=[perm('tcp', 1, 2)])),
                'malformedId': error(lambda: raw.delete_security_group(GroupId='sg-xyz')),
                'unknownId': error(lambda: raw.delete_security_group(GroupId='sg-0123456789abcdef0')),
                'noPermissions': error(lambda: raw.authorize_security_group_ingress(GroupId=gid)),
                'left': ec2.describe_security_groups(GroupIds=[gid])['SecurityGroups'][0]['IpPermissions'],
                'made': [g['GroupName'] for g in ec2.describe_security_groups(Filters=[{'Name': 'group-name', 'Values': ['{{name}}*']}])['SecurityGroups']],
            }
            print(json.dumps(out))
            """);
        var expected = new Dictionary<string, string>
        {
            ["noName"] = "MissingParameter", ["noDescription"] = "MissingParameter", ["badName"] = "InvalidParameterValue",
            ["badVpc"] = "InvalidVpcID.NotFound", ["badTagType"] = "InvalidParameterValue",
            ["protocol"] = "InvalidParameterValue", ["reversed"] = "InvalidParameterValue", ["noPorts"] = "InvalidParameterValue",
            ["bigPort"] = "InvalidParameterValue", ["icmpType"] = "InvalidParameterValue", ["cidrShape"] = "InvalidParameterValue",
            ["cidrRange"] = "InvalidParameterValue", ["halfBad"] = "InvalidParameterValue", ["noRanges"] = "MissingParameter",
            ["groupRef"] = "InvalidParameterValue", ["ipv6"] = "InvalidParameterValue", ["noGroup"] = "MissingParameter",
            ["egressNoId"] = "MissingParameter", ["malformedId"] = "InvalidGroupId.Malformed", ["unknownId"] = "InvalidGroup.NotFound",
            ["noPermissions"] = "MissingParameter",
        };
        Assert.Multiple(() =>
        {
            foreach (var (key, code) in expected)
            {
                Assert.That(Code(result[key]), Is.EqualTo(code), $"{key}: {result[key]?.ToJsonString()}");
                Assert.That(result[key]?["status"]?.GetValue<int>(), Is.InRange(400, 499), key);
            }
        });
        Assert.That(result["left"]!.AsArray(), Is.Empty, "no rejected request added a rule");
        Assert.That(result["made"]!.AsArray().Select(n => n!.GetValue<string>()), Is.EqualTo(new[] { name }), "no rejected create made a group");
    }

    [Test, CancelAfter(240_000)]
    public async Task The_default_vpc_has_one_subnet_per_usable_network_and_the_account_attributes_name_it()
    {
        var network = Unique("subnet");
        await (await _alice.PostAsJsonAsync("/api/v1/networks", new { name = network, cidr = "10.232.0.0/28" })).Json(201);
        const string script = """
            vpcs = ec2.describe_vpcs()['Vpcs']
            attrs = {a['AttributeName']: [v['AttributeValue'] for v in a['AttributeValues']] for a in ec2.describe_account_attributes()['AccountAttributes']}
            subnets = ec2.describe_subnets()['Subnets']
            vpc = vpcs[0]['VpcId']
            default = ec2.describe_subnets(Filters=[{'Name': 'vpc-id', 'Values': [vpc]}, {'Name': 'default-for-az', 'Values': ['true']}])['Subnets']
            print(json.dumps({
                'vpcs': vpcs, 'attrs': attrs, 'subnets': subnets, 'default': default,
                'again': [s['SubnetId'] for s in ec2.describe_subnets()['Subnets']],
                'onlyPlatforms': ec2.describe_account_attributes(AttributeNames=['supported-platforms'])['AccountAttributes'],
                'badAttr': error(lambda: ec2.describe_account_attributes(AttributeNames=['max-widgets'])),
                'badVpc': error(lambda: ec2.describe_vpcs(VpcIds=['vpc-00000000000000000'])),
                'defaultVpc': [v['VpcId'] for v in ec2.describe_vpcs(Filters=[{'Name': 'is-default', 'Values': ['true']}])['Vpcs']],
                'noVpc': ec2.describe_vpcs(Filters=[{'Name': 'is-default', 'Values': ['false']}])['Vpcs'],
            }))
            """;
        var alice = await Ec2Clients.Boto3Async(_server, _aliceKey, script);
        var bob = await Ec2Clients.Boto3Async(_server, _bobKey, script);

        var vpc = alice["vpcs"]!.AsArray().Single()!;
        var vpcId = vpc["VpcId"]!.GetValue<string>();
        Assert.That(vpcId, Does.Match("^vpc-[0-9a-f]{17}$"));
        Assert.That(vpc["IsDefault"]!.GetValue<bool>(), Is.True);
        Assert.That(vpc["State"]!.GetValue<string>(), Is.EqualTo("available"));
        Assert.That(vpc["CidrBlock"]!.GetValue<string>(), Is.EqualTo("10.0.0.0/8"), "covers 10.0.2.0/24 and 10.232.0.0/28");
        Assert.That(bob["vpcs"]![0]!["VpcId"]!.GetValue<string>(), Is.EqualTo(vpcId), "one VPC per region");
        Assert.That(bob["vpcs"]![0]!["CidrBlock"]!.GetValue<string>(), Is.EqualTo("10.0.2.0/24"), "bob's networks only");
        Assert.That(alice["attrs"]!["supported-platforms"]!.AsArray().Select(v => v!.GetValue<string>()), Is.EqualTo(new[] { "VPC" }));
        Assert.That(alice["attrs"]!["default-vpc"]!.AsArray().Select(v => v!.GetValue<string>()), Is.EqualTo(new[] { vpcId }));
        Assert.That(alice["onlyPlatforms"]!.AsArray().Select(a => a!["AttributeName"]!.GetValue<string>()), Is.EqualTo(new[] { "supported-platforms" }));
        Assert.That(Code(alice["badAttr"]), Is.EqualTo("InvalidParameterValue"));
        Assert.That(Code(alice["badVpc"]), Is.EqualTo("InvalidVpcID.NotFound"));
        Assert.That(alice["defaultVpc"]!.AsArray().Select(v => v!.GetValue<string>()), Is.EqualTo(new[] { vpcId }));
        Assert.That(alice["noVpc"]!.AsArray(), Is.Empty);

        string Describe(JsonNode s) =>
            $"{s["CidrBlock"]} {s["VpcId"]!.GetValue<string>() == vpcId} {s["DefaultForAz"]} {s["AvailabilityZone"]} {s["Tags"]!.AsArray().Single(t => t!["Key"]!.GetValue<string>() == "Name")!["Value"]}";
        Assert.That(alice["subnets"]!.AsArray().Select(s => Describe(s!)), Is.EquivalentTo(new[]
        {
            "10.0.2.0/24 True true stratuslab-1a default", $"10.232.0.0/28 True false stratuslab-1a {network}",
        }));
        Assert.That(bob["subnets"]!.AsArray().Select(s => s!["CidrBlock"]!.GetValue<string>()), Is.EqualTo(new[] { "10.0.2.0/24" }), "alice's network is hers");
        var mine = alice["subnets"]!.AsArray().Single(s => s!["CidrBlock"]!.GetValue<string>() == "10.232.0.0/28")!;
        Assert.That(mine["SubnetId"]!.GetValue<string>(), Does.Match("^subnet-[0-9a-f]{17}$"));
        Assert.That(mine["AvailableIpAddressCount"]!.GetValue<int>(), Is.GreaterThan(0));
        Assert.That(alice["again"]!.AsArray().Select(s => s!.GetValue<string>()), Is.EquivalentTo(alice["subnets"]!.AsArray().Select(s => s!["SubnetId"]!.GetValue<string>())), "ids are stored");
        Assert.That(alice["default"]!.AsArray().Select(s => s!["CidrBlock"]!.GetValue<string>()), Is.EqualTo(new[] { "10.0.2.0/24" }));

        var theirs = await Ec2Clients.Boto3Async(_server, _bobKey, $$"""
            print(json.dumps({'other': error(lambda: ec2.describe_subnets(SubnetIds=['{{mine["SubnetId"]}}']))}))
            """);
        Assert.That(Code(theirs["other"]), Is.EqualTo("InvalidSubnetID.NotFound"));
        await (await _alice.DeleteAsync($"/api/v1/networks/{network}")).Json(204);
    }
}
