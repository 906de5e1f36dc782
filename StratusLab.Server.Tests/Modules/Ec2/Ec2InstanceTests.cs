using System.Net.Http.Json;
using StratusLab.Server.Tests.Support;

namespace StratusLab.Server.Tests.Modules.Ec2;

/// <summary>Instances, types, images and tags through the EC2 door with the real clients, on the simulated driver.</summary>
public class Ec2InstanceTests
{
    TestServer _server = null!;
    HttpClient _admin = null!;
    Ec2Key _key = null!;

    [OneTimeSetUp]
    public async Task Start()
    {
        _server = await TestServer.StartAsync();
        _admin = _server.Client();
        await TestImages.RegisterDefaultAsync(_server);
        await (await _admin.PostAsJsonAsync("/api/v1/hosts", new { name = "sim-ec2", driver = "simulated", cpus = 64, memoryMiB = 65536 })).Json(201);
        await (await _admin.PutAsJsonAsync("/api/v1/quotas/admin", new { vms = 1000, cpus = 1000, memoryMiB = 1_000_000 })).Json(200);
        _key = await Ec2Key.CreateAsync(_admin);
    }

    [OneTimeTearDown]
    public async Task Stop()
    {
        _admin.Dispose();
        await _server.DisposeAsync();
    }

    [Test, CancelAfter(180_000)]
    public async Task Awscli_runs_waits_reads_the_console_and_terminates_an_instance()
    {
        var (exit, ami, err) = await Ec2Clients.AwsCliAsync(_server, _key, ["describe-images", "--query", "Images[0].ImageId", "--output", "text"]);
        Assert.That(exit, Is.EqualTo(0), err);
        ami = ami.Trim();
        Assert.That(ami, Does.Match("^ami-[0-9a-f]{17}$"));
        (exit, var id, err) = await Ec2Clients.AwsCliAsync(_server, _key, ["run-instances", "--image-id", ami, "--count", "1", "--instance-type", "t1.tiny",
            "--user-data", "echo marker", "--query", "Instances[0].InstanceId", "--output", "text"]);
        Assert.That(exit, Is.EqualTo(0), err);
        id = id.Trim();
        Assert.That(id, Does.Match("^i-[0-9a-f]{17}$"));
        (exit, _, err) = await Ec2Clients.AwsCliAsync(_server, _key, ["wait", "instance-running", "--instance-ids", id]);
        Assert.That(exit, Is.EqualTo(0), err);
        (exit, var console, err) = await Ec2Clients.AwsCliAsync(_server, _key, ["get-console-output", "--instance-id", id, "--output", "text"]);
        Assert.That(exit, Is.EqualTo(0), err);
        Assert.That(console, Does.Contain("booted"), "the simulated VM's console log, base64-decoded by the client");
        (exit, var stopped, err) = await Ec2Clients.AwsCliAsync(_server, _key, ["stop-instances", "--instance-ids", id]);
        Assert.That(stopped, Does.Contain("\"stopping\"").Or.Contain("\"stopped\""), err);
        (exit, _, err) = await Ec2Clients.AwsCliAsync(_server, _key, ["wait", "instance-stopped", "--instance-ids", id]);
        Assert.That(exit, Is.EqualTo(0), err);
        (exit, _, err) = await Ec2Clients.AwsCliAsync(_server, _key, ["terminate-instances", "--instance-ids", id]);
        Assert.That(exit, Is.EqualTo(0), err);
        (exit, _, err) = await Ec2Clients.AwsCliAsync(_server, _key, ["wait", "instance-terminated", "--instance-ids", id]);
        Assert.That(exit, Is.EqualTo(0), err);
        var rest = (await (await _admin.GetAsync("/api/v1/instances?state=DONE")).Json(200)).AsArray();
        Assert.That(rest, Has.Count.GreaterThanOrEqualTo(1), "the same instance, seen through REST");
    }

    [Test, CancelAfter(180_000)]
    public async Task Boto3_pages_filters_tags_and_keeps_client_tokens()
    {
        var result = await Ec2Clients.Boto3Async(_server, _key, """
            ami = ec2.describe_images(Owners=['amazon'])['Images'][0]['ImageId']
            r = ec2.run_instances(ImageId=ami, MinCount=7, MaxCount=7, InstanceType='t1.tiny', ClientToken='tok-1',
                TagSpecifications=[{'ResourceType': 'instance', 'Tags': [{'Key': 'role', 'Value': 'worker'}]}])
            again = ec2.run_instances(ImageId=ami, MinCount=7, MaxCount=7, InstanceType='t1.tiny', ClientToken='tok-1',
                TagSpecifications=[{'ResourceType': 'instance', 'Tags': [{'Key': 'role', 'Value': 'worker'}]}])
            mismatch = error(lambda: ec2.run_instances(ImageId=ami, MinCount=1, MaxCount=1, ClientToken='tok-1'))
            ids = [i['InstanceId'] for i in r['Instances']]
            ec2.get_waiter('instance_running').wait(InstanceIds=ids, WaiterConfig={'Delay': 1, 'MaxAttempts': 60})
            pages = list(ec2.get_paginator('describe_instances').paginate(
                Filters=[{'Name': 'tag:role', 'Values': ['worker']}], PaginationConfig={'PageSize': 5}))
            paged = [i['InstanceId'] for p in pages for res in p['Reservations'] for i in res['Instances']]
            running = ec2.describe_instances(Filters=[{'Name': 'instance-state-name', 'Values': ['running']}, {'Name': 'tag-key', 'Values': ['role']}])
            ec2.create_tags(Resources=ids[:2], Tags=[{'Key': 'team', 'Value': 'a'}])
            tags = ec2.describe_tags(Filters=[{'Name': 'key', 'Values': ['team']}])['Tags']
            ec2.delete_tags(Resources=ids[:1], Tags=[{'Key': 'team'}])
            after = ec2.describe_tags(Filters=[{'Name': 'key', 'Values': ['team']}])['Tags']
            types = ec2.describe_instance_types(InstanceTypes=['t1.tiny'])['InstanceTypes']
            status = ec2.describe_instance_status(InstanceIds=ids[:1])['InstanceStatuses']
            print(json.dumps({'ids': ids, 'again': [i['InstanceId'] for i in again['Instances']], 'same_reservation': r['ReservationId'] == again['ReservationId'],
                'mismatch': mismatch, 'pages': len(pages), 'paged': paged,
                'running': sum(len(res['Instances']) for res in running['Reservations']),
                'tags': sorted(t['ResourceId'] for t in tags), 'after': [t['ResourceId'] for t in after],
                'type': types[0], 'status': status[0]['InstanceState']['Name']}, default=str))
            """);
        var ids = result["ids"]!.AsArray().Select(n => n!.GetValue<string>()).ToList();
        Assert.That(ids, Has.Count.EqualTo(7));
        Assert.That(ids, Is.All.Match("^i-[0-9a-f]{17}$"));
        Assert.That(result["again"]!.AsArray().Select(n => n!.GetValue<string>()), Is.EqualTo(ids), "the same ClientToken returns the first call's instances");
        Assert.That(result["same_reservation"]!.GetValue<bool>(), Is.True);
        Assert.That(result["mismatch"]!["code"]!.GetValue<string>(), Is.EqualTo("IdempotentParameterMismatch"));
        Assert.That(result["pages"]!.GetValue<int>(), Is.EqualTo(2), "7 instances in pages of 5");
        Assert.That(result["paged"]!.AsArray().Select(n => n!.GetValue<string>()), Is.EquivalentTo(ids));
        Assert.That(result["running"]!.GetValue<int>(), Is.EqualTo(7));
        Assert.That(result["tags"]!.AsArray().Select(n => n!.GetValue<string>()), Is.EqualTo(ids.Take(2).Order(StringComparer.Ordinal)));
        Assert.That(result["after"]!.AsArray().Select(n => n!.GetValue<string>()), Is.EqualTo(new[] { ids[1] }));
        Assert.That(result["type"]!["VCpuInfo"]!["DefaultVCpus"]!.GetValue<int>(), Is.EqualTo(1));
        Assert.That(result["type"]!["MemoryInfo"]!["SizeInMiB"]!.GetValue<int>(), Is.EqualTo(128));
        Assert.That(result["status"]!.GetValue<string>(), Is.EqualTo("running"));
        var rest = (await (await _admin.GetAsync("/api/v1/instances?state=RUNNING&limit=1000")).Json(200)).AsArray();
        Assert.That(rest.Count(n => n!["name"]!.GetValue<string>().StartsWith("vm-", StringComparison.Ordinal)), Is.GreaterThanOrEqualTo(7),
            "ClientToken launched them once: 7 instances, not 14");
        Assert.That(rest, Has.Count.LessThan(14 + 3));
    }

    [Test, CancelAfter(180_000)]
    public async Task StopInstances_with_Force_powers_off_at_once_without_asking_the_guest()
    {
        var result = await Ec2Clients.Boto3Async(_server, _key, """
            import time
            ami = ec2.describe_images()['Images'][0]['ImageId']
            i = ec2.run_instances(ImageId=ami, MinCount=1, MaxCount=1, InstanceType='t1.tiny')['Instances'][0]['InstanceId']
            ec2.get_waiter('instance_running').wait(InstanceIds=[i], WaiterConfig={'Delay': 1, 'MaxAttempts': 60})
            stopping = ec2.stop_instances(InstanceIds=[i], Force=True)['StoppingInstances'][0]['CurrentState']['Name']
            ec2.get_waiter('instance_stopped').wait(InstanceIds=[i], WaiterConfig={'Delay': 1, 'MaxAttempts': 60})
            console = ec2.get_console_output(InstanceId=i).get('Output', '')
            ec2.terminate_instances(InstanceIds=[i])
            print(json.dumps({'stopping': stopping, 'console': console}))
            """);
        Assert.That(result["stopping"]!.GetValue<string>(), Is.AnyOf("stopping", "stopped"));
        var console = result["console"]!.GetValue<string>();
        Assert.That(console, Does.Contain("power cut: switched off at once (forced)"));
        Assert.That(console, Does.Not.Contain("ACPI power button"), "Force=true does not wait for the guest");
    }

    [Test, CancelAfter(180_000)]
    public async Task Concurrent_run_instances_with_one_client_token_launch_once_with_their_tags()
    {
        // Six clients send the same request with the same token at once: one launch, and every answer is its reservation.
        var result = await Ec2Clients.Boto3Async(_server, _key, """
            import threading
            ami = ec2.describe_images()['Images'][0]['ImageId']
            clients = [boto3.client('ec2', endpoint_url=os.environ['EC2_ENDPOINT'], region_name=os.environ['EC2_REGION'],
                                    aws_access_key_id=os.environ['EC2_KEY'], aws_secret_access_key=os.environ['EC2_SECRET'],
                                    config=Config(retries={'max_attempts': 1, 'mode': 'standard'})) for _ in range(6)]
            start, answers = threading.Barrier(6), [None] * 6
            def launch(n):
                start.wait()
                try:
                    r = clients[n].run_instances(ImageId=ami, MinCount=3, MaxCount=3, InstanceType='t1.tiny', ClientToken='race-token',
                        TagSpecifications=[{'ResourceType': 'instance', 'Tags': [{'Key': 'Name', 'Value': 'racer'}, {'Key': 'batch', 'Value': 'race'}]}])
                    answers[n] = {'reservation': r['ReservationId'], 'ids': [i['InstanceId'] for i in r['Instances']],
                                  'tags': [sorted((t['Key'], t['Value']) for t in i.get('Tags', [])) for i in r['Instances']]}
                except botocore.exceptions.ClientError as e:
                    answers[n] = {'error': e.response['Error']['Code'] + ': ' + e.response['Error']['Message']}
            threads = [threading.Thread(target=launch, args=(n,)) for n in range(6)]
            for t in threads: t.start()
            for t in threads: t.join(120)
            tagged = ec2.describe_instances(Filters=[{'Name': 'tag:batch', 'Values': ['race']}])['Reservations']
            print(json.dumps({'answers': answers, 'tagged': sorted(i['InstanceId'] for r in tagged for i in r['Instances'])}))
            """);
        var answers = result["answers"]!.AsArray();
        Assert.That(answers.Select(a => a!["error"]?.GetValue<string>()), Is.All.Null, result.ToJsonString());
        var ids = answers[0]!["ids"]!.AsArray().Select(n => n!.GetValue<string>()).ToList();
        Assert.That(ids, Has.Count.EqualTo(3));
        Assert.That(answers.Select(a => a!["reservation"]!.GetValue<string>()).Distinct().Count(), Is.EqualTo(1), "one reservation for one token");
        foreach (var answer in answers)
            Assert.That(answer!["ids"]!.AsArray().Select(n => n!.GetValue<string>()), Is.EqualTo(ids));
        Assert.That(answers[0]!["tags"]!.AsArray().Select(t => t!.ToJsonString()).Distinct().Single(),
            Is.EqualTo("""[["Name","racer"],["batch","race"]]"""), "each new instance carries the TagSpecifications' tags in RunInstances' answer");
        Assert.That(result["tagged"]!.AsArray().Select(n => n!.GetValue<string>()), Is.EqualTo(ids.Order(StringComparer.Ordinal)), "the tags were stored with the ids");
        var rest = (await (await _admin.GetAsync("/api/v1/instances?limit=1000")).Json(200)).AsArray();
        Assert.That(rest.Count(n => n!["name"]!.GetValue<string>().StartsWith("racer-", StringComparison.Ordinal)), Is.EqualTo(3),
            "the token launched three instances once, not once per request");
    }

    [Test, CancelAfter(180_000)]
    public async Task Boto3_stops_starts_and_reboots_an_instance_and_refuses_a_reboot_it_cannot_do()
    {
        var result = await Ec2Clients.Boto3Async(_server, _key, """
            ami = ec2.describe_images()['Images'][0]['ImageId']
            i = ec2.run_instances(ImageId=ami, MinCount=1, MaxCount=1, InstanceType='t1.tiny')['Instances'][0]['InstanceId']
            wait = lambda name: ec2.get_waiter(name).wait(InstanceIds=[i], WaiterConfig={'Delay': 1, 'MaxAttempts': 90})
            state = lambda: ec2.describe_instances(InstanceIds=[i])['Reservations'][0]['Instances'][0]['State']['Name']
            wait('instance_running')
            ec2.stop_instances(InstanceIds=[i]); wait('instance_stopped')
            stopped_reboot = error(lambda: ec2.reboot_instances(InstanceIds=[i]))
            started = ec2.start_instances(InstanceIds=[i])['StartingInstances'][0]
            wait('instance_running')
            rebooted = ec2.reboot_instances(InstanceIds=[i])
            print(json.dumps({'started': {'current': started['CurrentState'], 'previous': started['PreviousState']},
                'stopped_reboot': stopped_reboot, 'rebooted': rebooted['ResponseMetadata']['HTTPStatusCode'], 'after_reboot': state(),
                'unknown': error(lambda: ec2.reboot_instances(InstanceIds=['i-0123456789abcdef0'])),
                'unknown_start': error(lambda: ec2.start_instances(InstanceIds=['i-0123456789abcdef0']))}))
            """);
        Assert.That(result["started"]!["previous"]!.ToJsonString(), Is.EqualTo("""{"Code":80,"Name":"stopped"}"""));
        Assert.That(result["started"]!["current"]!.ToJsonString(), Is.EqualTo("""{"Code":0,"Name":"pending"}""").Or.EqualTo("""{"Code":16,"Name":"running"}"""),
            "a start in progress is pending, as AWS shows it (running if the simulated VM was already up)");
        Assert.That(result["stopped_reboot"]!["code"]!.GetValue<string>(), Is.EqualTo("IncorrectInstanceState"));
        Assert.That(result["stopped_reboot"]!["status"]!.GetValue<int>(), Is.EqualTo(400));
        Assert.That(result["rebooted"]!.GetValue<int>(), Is.EqualTo(200));
        Assert.That(result["after_reboot"]!.GetValue<string>(), Is.EqualTo("running").Or.EqualTo("pending"));
        Assert.That(result["unknown"]!["code"]!.GetValue<string>(), Is.EqualTo("InvalidInstanceID.NotFound"));
        Assert.That(result["unknown_start"]!["code"]!.GetValue<string>(), Is.EqualTo("InvalidInstanceID.NotFound"));
    }

    [Test, CancelAfter(180_000)]
    public async Task Terraforms_reads_of_an_instance_are_answered_sts_attributes_and_credit_specifications()
    {
        var result = await Ec2Clients.Boto3Async(_server, _key, """
            import base64
            sts = boto3.client('sts', endpoint_url=os.environ['EC2_ENDPOINT'], region_name=os.environ['EC2_REGION'],
                               aws_access_key_id=os.environ['EC2_KEY'], aws_secret_access_key=os.environ['EC2_SECRET'])
            me = sts.get_caller_identity()
            ami = ec2.describe_images()['Images'][0]['ImageId']
            r = ec2.run_instances(ImageId=ami, MinCount=1, MaxCount=1, InstanceType='t1.tiny', UserData='#!/bin/sh\necho tf-marker\n')
            i = r['Instances'][0]['InstanceId']
            plain = ec2.run_instances(ImageId=ami, MinCount=1, MaxCount=1)['Instances'][0]['InstanceId']
            attr = lambda a, inst=i: ec2.describe_instance_attribute(InstanceId=inst, Attribute=a)
            out = {
              'account': me['Account'], 'arn': me['Arn'], 'userId': me['UserId'],
              'sts_other': error(lambda: sts.get_session_token()),
              'type': attr('instanceType')['InstanceType']['Value'],
              'userData': base64.b64decode(attr('userData')['UserData']['Value']).decode(),
              'noUserData': attr('userData', plain).get('UserData'),
              'termination': attr('disableApiTermination')['DisableApiTermination']['Value'],
              'stop': attr('disableApiStop')['DisableApiStop']['Value'],
              'shutdown': attr('instanceInitiatedShutdownBehavior')['InstanceInitiatedShutdownBehavior']['Value'],
              'root': attr('rootDeviceName')['RootDeviceName']['Value'],
              'badAttr': error(lambda: attr('colour')),
              'modifyNoop': error(lambda: ec2.modify_instance_attribute(InstanceId=i, DisableApiTermination={'Value': False})),
              'modifyNoop2': error(lambda: ec2.modify_instance_attribute(InstanceId=i, SourceDestCheck={'Value': True})),
              'modifyType': error(lambda: ec2.modify_instance_attribute(InstanceId=i, InstanceType={'Value': 't1.small'})),
              'modifyTermination': error(lambda: ec2.modify_instance_attribute(InstanceId=i, DisableApiTermination={'Value': True})),
              'credits': ec2.describe_instance_credit_specifications(InstanceIds=[i])['InstanceCreditSpecifications'],
              'typeInfo': ec2.describe_instance_types(InstanceTypes=['t1.tiny'])['InstanceTypes'][0]['BurstablePerformanceSupported'],
              'missing': error(lambda: ec2.describe_instance_attribute(InstanceId='i-0123456789abcdef0', Attribute='userData')),
              'id': i,
            }
            print(json.dumps(out))
            """);
        Assert.That(result["account"]!.GetValue<string>(), Does.Match("^[0-9]{12}$"));
        Assert.That(result["arn"]!.GetValue<string>(), Is.EqualTo($"arn:aws:iam::{result["account"]}:user/admin"));
        Assert.That(result["userId"]!.GetValue<string>(), Is.EqualTo(_key.AccessKeyId));
        Assert.That(result["sts_other"]!["code"]!.GetValue<string>(), Is.EqualTo("UnsupportedOperation"));
        Assert.That(result["sts_other"]!["message"]!.GetValue<string>(), Does.Contain("GetSessionToken"));
        Assert.That(result["type"]!.GetValue<string>(), Is.EqualTo("t1.tiny"));
        Assert.That(result["userData"]!.GetValue<string>(), Is.EqualTo("#!/bin/sh\necho tf-marker\n"));
        Assert.That(result["noUserData"]?.AsObject().Count ?? 0, Is.EqualTo(0), "an instance without user data has an empty UserData");
        Assert.That(result["termination"]!.GetValue<bool>(), Is.False);
        Assert.That(result["stop"]!.GetValue<bool>(), Is.False);
        Assert.That(result["shutdown"]!.GetValue<string>(), Is.EqualTo("stop"));
        Assert.That(result["root"]!.GetValue<string>(), Is.EqualTo("/dev/vda"));
        Assert.That(result["badAttr"]!["code"]!.GetValue<string>(), Is.EqualTo("InvalidParameterValue"));
        Assert.That(result["modifyNoop"], Is.Null, "setting an attribute to the value it has succeeds");
        Assert.That(result["modifyNoop2"], Is.Null);
        Assert.That(result["modifyType"]!["code"]!.GetValue<string>(), Is.EqualTo("UnsupportedOperation"));
        Assert.That(result["modifyType"]!["message"]!.GetValue<string>(), Does.Contain("instance type").And.Contain("t1.small"));
        Assert.That(result["modifyTermination"]!["code"]!.GetValue<string>(), Is.EqualTo("UnsupportedOperation"));
        Assert.That(result["modifyTermination"]!["message"]!.GetValue<string>(), Does.Contain("disableApiTermination"));
        Assert.That(result["credits"]!.AsArray().Select(c => (c!["InstanceId"]!.GetValue<string>(), c["CpuCredits"]!.GetValue<string>())),
            Is.EqualTo(new[] { (result["id"]!.GetValue<string>(), "standard") }));
        Assert.That(result["typeInfo"]!.GetValue<bool>(), Is.False, "not burstable, so Terraform skips the credit specification");
        Assert.That(result["missing"]!["code"]!.GetValue<string>(), Is.EqualTo("InvalidInstanceID.NotFound"));
    }

    [Test, CancelAfter(180_000)]
    public async Task Bad_parameters_and_other_users_ids_get_the_aws_error_codes_and_leave_nothing()
    {
        var before = (await (await _admin.GetAsync("/api/v1/instances?limit=1000")).Json(200)).AsArray().Count;
        var mine = await Ec2Clients.Boto3Async(_server, _key, """
            ami = ec2.describe_images()['Images'][0]['ImageId']
            r = ec2.run_instances(ImageId=ami, MinCount=1, MaxCount=1)
            print(json.dumps({'id': r['Instances'][0]['InstanceId'], 'ami': ami}))
            """);
        var id = mine["id"]!.GetValue<string>();
        var ami = mine["ami"]!.GetValue<string>();

        var token = await _server.CreateUserAsync("ec2other");
        using var other = _server.Client(token);
        var otherKey = await Ec2Key.CreateAsync(other, "ec2other");
        var result = await Ec2Clients.Boto3Async(_server, otherKey, $$"""
            id, ami = '{{id}}', '{{ami}}'
            out = {
              'describe': error(lambda: ec2.describe_instances(InstanceIds=[id])),
              'terminate': error(lambda: ec2.terminate_instances(InstanceIds=[id])),
              'stop': error(lambda: ec2.stop_instances(InstanceIds=[id])),
              'console': error(lambda: ec2.get_console_output(InstanceId=id)),
              'tag': error(lambda: ec2.create_tags(Resources=[id], Tags=[{'Key': 'k', 'Value': 'v'}])),
              'list': sum(len(r['Instances']) for r in ec2.describe_instances()['Reservations']),
              'maxcount0': error(lambda: ec2.run_instances(ImageId=ami, MinCount=1, MaxCount=0)),
              'minmax': error(lambda: ec2.run_instances(ImageId=ami, MinCount=3, MaxCount=2)),
              'type': error(lambda: ec2.run_instances(ImageId=ami, MinCount=1, MaxCount=1, InstanceType='nope')),
              'ami': error(lambda: ec2.run_instances(ImageId='ami-0123456789abcdef0', MinCount=1, MaxCount=1)),
              'malformed': error(lambda: ec2.describe_instances(InstanceIds=['i-xyz'])),
              'userdata': error(lambda: ec2.run_instances(ImageId=ami, MinCount=1, MaxCount=1, UserData='x' * 70000)),
              'key': error(lambda: ec2.run_instances(ImageId=ami, MinCount=1, MaxCount=1, KeyName='nokey')),
              'zone': error(lambda: ec2.run_instances(ImageId=ami, MinCount=1, MaxCount=1, Placement={'AvailabilityZone': 'us-east-1a'})),
              'types': error(lambda: ec2.describe_instance_types(InstanceTypes=['nope.large'])),
            }
            print(json.dumps(out))
            """);
        foreach (var op in new[] { "describe", "terminate", "stop", "console", "tag" })
            Assert.That(result[op]!["code"]!.GetValue<string>(), Is.EqualTo("InvalidInstanceID.NotFound"), op);
        Assert.That(result["list"]!.GetValue<int>(), Is.EqualTo(0), "another user's instances are never listed");
        Assert.That(result["maxcount0"]!["code"]!.GetValue<string>(), Is.EqualTo("InvalidParameterValue"));
        Assert.That(result["minmax"]!["code"]!.GetValue<string>(), Is.EqualTo("InvalidParameterValue"));
        Assert.That(result["type"]!["code"]!.GetValue<string>(), Is.EqualTo("InvalidParameterValue"));
        Assert.That(result["type"]!["message"]!.GetValue<string>(), Does.Contain("nope"));
        Assert.That(result["ami"]!["code"]!.GetValue<string>(), Is.EqualTo("InvalidAMIID.NotFound"));
        Assert.That(result["malformed"]!["code"]!.GetValue<string>(), Is.EqualTo("InvalidInstanceID.Malformed"));
        Assert.That(result["userdata"]!["code"]!.GetValue<string>(), Is.EqualTo("InvalidParameterValue"));
        Assert.That(result["key"]!["code"]!.GetValue<string>(), Is.EqualTo("InvalidKeyPair.NotFound"));
        Assert.That(result["zone"]!["code"]!.GetValue<string>(), Is.EqualTo("InvalidParameterValue"));
        Assert.That(result["types"]!["code"]!.GetValue<string>(), Is.EqualTo("InvalidInstanceType"));
        foreach (var op in new[] { "describe", "maxcount0", "type", "ami", "userdata", "key" })
            Assert.That(result[op]!["status"]!.GetValue<int>(), Is.InRange(400, 499), op);

        var after = (await (await _admin.GetAsync("/api/v1/instances?limit=1000")).Json(200)).AsArray().Count;
        Assert.That(after, Is.EqualTo(before + 1), "no refused request left an instance behind");
        var state = (await (await _admin.GetAsync("/api/v1/instances?limit=1000")).Json(200)).AsArray().Last()!["state"]!.GetValue<string>();
        Assert.That(state, Is.Not.EqualTo("DONE"), "the other user's terminate changed nothing");
    }

    [Test, CancelAfter(180_000)]
    public async Task Key_pairs_are_the_same_as_the_rest_apis_and_a_launch_gets_the_named_one()
    {
        var (_, publicKey) = await HostTools.SshKeyAsync(_server.DataDir);
        var result = await Ec2Clients.Boto3Async(_server, _key, $$"""
            made = ec2.create_key_pair(KeyName='ec2-made')
            imported = ec2.import_key_pair(KeyName='ec2-imported', PublicKeyMaterial='{{publicKey}}'.encode())
            dup = error(lambda: ec2.create_key_pair(KeyName='ec2-made'))
            bad = error(lambda: ec2.import_key_pair(KeyName='bad', PublicKeyMaterial=b'not a key'))
            listed = ec2.describe_key_pairs(KeyNames=['ec2-made', 'ec2-imported'])['KeyPairs']
            missing = error(lambda: ec2.describe_key_pairs(KeyNames=['nope']))
            ami = ec2.describe_images()['Images'][0]['ImageId']
            run = ec2.run_instances(ImageId=ami, MinCount=1, MaxCount=1, KeyName='ec2-imported')
            ec2.delete_key_pair(KeyName='ec2-made')
            gone = error(lambda: ec2.describe_key_pairs(KeyNames=['ec2-made']))
            again = ec2.delete_key_pair(KeyName='ec2-made')
            print(json.dumps({'material': made['KeyMaterial'], 'made_id': made['KeyPairId'], 'imported_fp': imported['KeyFingerprint'],
                'dup': dup, 'bad': bad, 'listed': sorted(k['KeyName'] for k in listed), 'missing': missing, 'gone': gone,
                'again': again['ResponseMetadata']['HTTPStatusCode'], 'instance_key': run['Instances'][0].get('KeyName')}))
            """);
        Assert.That(result["material"]!.GetValue<string>(), Does.StartWith("-----BEGIN RSA PRIVATE KEY-----"));
        Assert.That(result["made_id"]!.GetValue<string>(), Does.Match("^key-[0-9a-f]{17}$"));
        Assert.That(result["imported_fp"]!.GetValue<string>(), Does.StartWith("SHA256:"));
        Assert.That(result["dup"]!["code"]!.GetValue<string>(), Is.EqualTo("InvalidKeyPair.Duplicate"));
        Assert.That(result["bad"]!["code"]!.GetValue<string>(), Is.EqualTo("InvalidKey.Format"));
        Assert.That(result["listed"]!.AsArray().Select(n => n!.GetValue<string>()), Is.EqualTo(new[] { "ec2-imported", "ec2-made" }));
        Assert.That(result["missing"]!["code"]!.GetValue<string>(), Is.EqualTo("InvalidKeyPair.NotFound"));
        Assert.That(result["gone"]!["code"]!.GetValue<string>(), Is.EqualTo("InvalidKeyPair.NotFound"));
        Assert.That(result["again"]!.GetValue<int>(), Is.EqualTo(200), "deleting a missing key pair succeeds, as in AWS");
        Assert.That(result["instance_key"]!.GetValue<string>(), Is.EqualTo("ec2-imported"));
        var rest = (await (await _admin.GetAsync("/api/v1/keys")).Json(200)).AsArray();
        Assert.That(rest.Select(k => k!["name"]!.GetValue<string>()), Does.Contain("ec2-imported").And.Not.Contain("ec2-made"));
        Assert.That(rest.Single(k => k!["name"]!.GetValue<string>() == "ec2-imported")!["publicKey"]!.GetValue<string>(), Is.EqualTo(publicKey.Split(' ', 3)[0] + " " + publicKey.Split(' ', 3)[1] + " " + publicKey.Split(' ', 3)[2]));
    }
}
