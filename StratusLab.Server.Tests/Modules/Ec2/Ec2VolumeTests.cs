using System.Net.Http.Json;
using StratusLab.Server.Tests.Support;

namespace StratusLab.Server.Tests.Modules.Ec2;

/// <summary>Volumes and snapshots through the EC2 door with boto3, over Pdisk on the file backend, instances on the simulated driver.</summary>
public class Ec2VolumeTests
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
        await (await _admin.PostAsJsonAsync("/api/v1/hosts", new { name = "sim-ec2vol", driver = "simulated", cpus = 64, memoryMiB = 65536 })).Json(201);
        await (await _admin.PutAsJsonAsync("/api/v1/quotas/admin", new { vms = 1000, cpus = 1000, memoryMiB = 1_000_000, storageGiB = 1000 })).Json(200);
        _key = await Ec2Key.CreateAsync(_admin);
    }

    [OneTimeTearDown]
    public async Task Stop()
    {
        _admin.Dispose();
        await _server.DisposeAsync();
    }

    async Task<HashSet<string>> RestVolumeUuidsAsync() =>
        (await (await _admin.GetAsync("/api/v1/volumes?limit=1000")).Json(200)).AsArray().Select(n => n!["uuid"]!.GetValue<string>()).ToHashSet();

    [Test, CancelAfter(240_000)]
    public async Task Boto3_creates_attaches_detaches_and_deletes_a_volume_that_rest_also_sees()
    {
        var before = await RestVolumeUuidsAsync();
        var created = await Ec2Clients.Boto3Async(_server, _key, """
            v = ec2.create_volume(Size=2, AvailabilityZone='stratuslab-1a',
                TagSpecifications=[{'ResourceType': 'volume', 'Tags': [{'Key': 'Name', 'Value': 'data'}]}])
            ec2.get_waiter('volume_available').wait(VolumeIds=[v['VolumeId']], WaiterConfig={'Delay': 1, 'MaxAttempts': 60})
            d = ec2.describe_volumes(VolumeIds=[v['VolumeId']])['Volumes'][0]
            print(json.dumps({'id': v['VolumeId'], 'size': v['Size'], 'state': d['State'], 'tags': d['Tags'], 'zone': d['AvailabilityZone']}, default=str))
            """);
        var id = created["id"]!.GetValue<string>();
        Assert.That(id, Does.Match("^vol-[0-9a-f]{17}$"));
        Assert.That(created["size"]!.GetValue<int>(), Is.EqualTo(2));
        Assert.That(created["state"]!.GetValue<string>(), Is.EqualTo("available"));
        Assert.That(created["zone"]!.GetValue<string>(), Is.EqualTo("stratuslab-1a"));
        Assert.That(created["tags"]![0]!["Value"]!.GetValue<string>(), Is.EqualTo("data"));

        var added = (await RestVolumeUuidsAsync()).Except(before).ToList();
        Assert.That(added, Has.Count.EqualTo(1), "the EC2 volume is a Pdisk volume, listed by REST");
        var rest = await (await _admin.GetAsync($"/api/v1/volumes/{added[0]}")).Json(200);
        Assert.That(rest["size"]!.GetValue<long>(), Is.EqualTo(2));
        Assert.That(rest["type"]!.GetValue<string>(), Is.EqualTo("DATA_IMAGE_RAW_READ_WRITE"));

        // The simulated driver supports hot-plug on a RUNNING instance, so attach is tested for real through Compute.
        var result = await Ec2Clients.Boto3Async(_server, _key, $$"""
            vol = '{{id}}'
            ami = ec2.describe_images()['Images'][0]['ImageId']
            inst = ec2.run_instances(ImageId=ami, MinCount=1, MaxCount=1, InstanceType='t1.tiny')['Instances'][0]['InstanceId']
            ec2.get_waiter('instance_running').wait(InstanceIds=[inst], WaiterConfig={'Delay': 1, 'MaxAttempts': 90})
            a = ec2.attach_volume(VolumeId=vol, InstanceId=inst, Device='/dev/sdf')
            ec2.get_waiter('volume_in_use').wait(VolumeIds=[vol], WaiterConfig={'Delay': 1, 'MaxAttempts': 60})
            inuse = ec2.describe_volumes(VolumeIds=[vol])['Volumes'][0]
            byinst = ec2.describe_volumes(Filters=[{'Name': 'attachment.instance-id', 'Values': [inst]}])['Volumes']
            busy = error(lambda: ec2.delete_volume(VolumeId=vol))
            dt = ec2.detach_volume(VolumeId=vol)
            ec2.get_waiter('volume_available').wait(VolumeIds=[vol], WaiterConfig={'Delay': 1, 'MaxAttempts': 60})
            ec2.delete_volume(VolumeId=vol)
            gone = error(lambda: ec2.describe_volumes(VolumeIds=[vol]))
            ec2.terminate_instances(InstanceIds=[inst])
            print(json.dumps({'inst': inst, 'attach': a['State'], 'device': a['Device'], 'inuse': inuse['State'],
                'att': inuse['Attachments'], 'byinst': [v['VolumeId'] for v in byinst], 'busy': busy, 'detach': dt['State'],
                'detach_inst': dt['InstanceId'], 'gone': gone}, default=str))
            """);
        Assert.That(result["attach"]!.GetValue<string>(), Is.EqualTo("attached"));
        Assert.That(result["device"]!.GetValue<string>(), Is.EqualTo("/dev/sdf"), "the device asked for is accepted and echoed");
        Assert.That(result["inuse"]!.GetValue<string>(), Is.EqualTo("in-use"));
        Assert.That(result["att"]![0]!["InstanceId"]!.GetValue<string>(), Is.EqualTo(result["inst"]!.GetValue<string>()));
        Assert.That(result["byinst"]!.AsArray().Select(n => n!.GetValue<string>()), Is.EqualTo(new[] { id }));
        Assert.That(result["busy"]!["code"]!.GetValue<string>(), Is.EqualTo("VolumeInUse"));
        Assert.That(result["detach"]!.GetValue<string>(), Is.EqualTo("detaching"));
        Assert.That(result["detach_inst"]!.GetValue<string>(), Is.EqualTo(result["inst"]!.GetValue<string>()));
        Assert.That(result["gone"]!["code"]!.GetValue<string>(), Is.EqualTo("InvalidVolume.NotFound"));
        Assert.That(await RestVolumeUuidsAsync(), Does.Not.Contain(added[0]), "DeleteVolume removed the Pdisk volume");
    }

    [Test, CancelAfter(240_000)]
    public async Task A_raw_volume_is_snapshotted_as_a_point_in_time_copy_whose_volumes_hold_its_data()
    {
        var before = await RestVolumeUuidsAsync();
        var result = await Ec2Clients.Boto3Async(_server, _key, """
            ami = ec2.describe_images()['Images'][0]['ImageId']
            inst = ec2.run_instances(ImageId=ami, MinCount=1, MaxCount=1, InstanceType='t1.tiny')['Instances'][0]['InstanceId']
            ec2.get_waiter('instance_running').wait(InstanceIds=[inst], WaiterConfig={'Delay': 1, 'MaxAttempts': 90})
            print(json.dumps({'vols': [v['VolumeId'] for v in ec2.describe_volumes()['Volumes']], 'inst': inst}))
            """);
        var (data, sha1) = Volumes.DiskBytes(2, seed: 7);
        var uploaded = await (await _admin.PostAsync("/api/v1/volumes/upload?tag=ec2-raw", new ByteArrayContent(data))).Json(201);
        var rawUuid = uploaded["uuid"]!.GetValue<string>();
        await (await _admin.PutAsJsonAsync($"/api/v1/volumes/{rawUuid}", new { type = "DATA_IMAGE_RAW_READ_WRITE" })).Json(200);
        var known = string.Join(",", result["vols"]!.AsArray().Select(v => $"'{v}'"));
        var snap = await Ec2Clients.Boto3Async(_server, _key, $$"""
            new = [v['VolumeId'] for v in ec2.describe_volumes()['Volumes'] if v['VolumeId'] not in [{{known}}]]
            s = ec2.create_snapshot(VolumeId=new[0], Description='raw copy')
            print(json.dumps({'snaps': [(v, s['SnapshotId'], s['VolumeId'], s['State']) for v in new]}, default=str))
            """);
        var after = await RestVolumeUuidsAsync();
        var made = after.Except(before).Where(u => u != rawUuid).ToList();
        Assert.That(snap["snaps"]!.AsArray(), Has.Count.EqualTo(1), "the uploaded RAW volume is the caller's one new volume");
        var row = snap["snaps"]!.AsArray()[0]!.AsArray();
        var (vol, snapId) = (row[0]!.GetValue<string>(), row[1]!.GetValue<string>());
        Assert.That(snapId, Does.Match("^snap-[0-9a-f]{17}$"));
        Assert.That(row[2]!.GetValue<string>(), Is.EqualTo(vol), "the snapshot names the RAW volume it was taken from");
        Assert.That(row[3]!.GetValue<string>(), Is.EqualTo("completed"));
        var copy = made.Single();
        var copyRest = await (await _admin.GetAsync($"/api/v1/volumes/{copy}")).Json(200);
        Assert.That(copyRest["type"]!.GetValue<string>(), Is.EqualTo("DATA_IMAGE_ORIGIN"), "the copy is immutable, so volumes made from it are copy-on-write");
        Assert.That(await DownloadSha1Async(copy), Is.EqualTo(sha1), "the snapshot holds the RAW volume's data");

        var second = await Ec2Clients.Boto3Async(_server, _key, $$"""
            vol, snap, inst = '{{vol}}', '{{snapId}}', '{{result["inst"]}}'
            listed = ec2.describe_snapshots(Filters=[{'Name': 'volume-id', 'Values': [vol]}])['Snapshots']
            v2 = ec2.create_volume(SnapshotId=snap, AvailabilityZone='stratuslab-1a')['VolumeId']
            ec2.get_waiter('volume_available').wait(VolumeIds=[v2], WaiterConfig={'Delay': 1, 'MaxAttempts': 60})
            ec2.attach_volume(VolumeId=vol, InstanceId=inst, Device='/dev/sdf')
            ec2.get_waiter('volume_in_use').wait(VolumeIds=[vol], WaiterConfig={'Delay': 1, 'MaxAttempts': 60})
            busy = error(lambda: ec2.create_snapshot(VolumeId=vol))
            ec2.detach_volume(VolumeId=vol)
            ec2.get_waiter('volume_available').wait(VolumeIds=[vol], WaiterConfig={'Delay': 1, 'MaxAttempts': 60})
            print(json.dumps({'listed': [s['SnapshotId'] for s in listed], 'v2': v2, 'busy': busy}))
            """);
        Assert.That(second["listed"]!.AsArray().Select(n => n!.GetValue<string>()), Is.EqualTo(new[] { snapId }));
        Assert.That(second["busy"]!["code"]!.GetValue<string>(), Is.EqualTo("IncorrectState"));
        Assert.That(second["busy"]!["message"]!.GetValue<string>(), Does.Contain("attached read-write").And.Contain("detach"));
        var v2Uuid = (await RestVolumeUuidsAsync()).Except(after).Single();
        Assert.That(await DownloadSha1Async(v2Uuid), Is.EqualTo(sha1), "a volume made from the snapshot has the data");

        await Ec2Clients.Boto3Async(_server, _key, $$"""
            ec2.delete_volume(VolumeId='{{second["v2"]}}')
            ec2.delete_snapshot(SnapshotId='{{snapId}}')
            ec2.delete_volume(VolumeId='{{vol}}')
            ec2.terminate_instances(InstanceIds=['{{result["inst"]}}'])
            print('{}')
            """);
        Assert.That((await RestVolumeUuidsAsync()).Except(before), Is.Empty, "everything made here was deleted");
    }

    async Task<string> DownloadSha1Async(string uuid)
    {
        using var response = await _admin.GetAsync($"/api/v1/volumes/{uuid}/content?format=raw", HttpCompletionOption.ResponseHeadersRead);
        Assert.That((int)response.StatusCode, Is.EqualTo(200), await response.Content.ReadAsStringAsync());
        await using var body = await response.Content.ReadAsStreamAsync();
        await using var gunzip = new System.IO.Compression.GZipStream(body, System.IO.Compression.CompressionMode.Decompress);
        return Convert.ToHexStringLower(await System.Security.Cryptography.SHA1.HashDataAsync(gunzip));
    }

    [Test, CancelAfter(240_000)]
    public async Task Boto3_snapshots_an_origin_volume_and_makes_a_volume_from_the_snapshot()
    {
        var before = await RestVolumeUuidsAsync();
        var made = await Ec2Clients.Boto3Async(_server, _key, """
            raw = ec2.create_volume(Size=1, AvailabilityZone='stratuslab-1a')['VolumeId']
            print(json.dumps({'id': raw}))
            """);
        var id = made["id"]!.GetValue<string>();
        var uuid = (await RestVolumeUuidsAsync()).Except(before).Single();
        await (await _admin.PutAsJsonAsync($"/api/v1/volumes/{uuid}", new { type = "DATA_IMAGE_ORIGIN" })).Json(200);

        var result = await Ec2Clients.Boto3Async(_server, _key, $$"""
            vol = '{{id}}'
            s = ec2.create_snapshot(VolumeId=vol, Description='before the upgrade',
                TagSpecifications=[{'ResourceType': 'snapshot', 'Tags': [{'Key': 'keep', 'Value': 'yes'}]}])
            ec2.get_waiter('snapshot_completed').wait(SnapshotIds=[s['SnapshotId']], WaiterConfig={'Delay': 1, 'MaxAttempts': 60})
            mine = ec2.describe_snapshots(OwnerIds=['self'])['Snapshots']
            tagged = ec2.describe_snapshots(Filters=[{'Name': 'tag:keep', 'Values': ['yes']}, {'Name': 'volume-id', 'Values': [vol]}])['Snapshots']
            v2 = ec2.create_volume(SnapshotId=s['SnapshotId'], AvailabilityZone='stratuslab-1a')
            ec2.get_waiter('volume_available').wait(VolumeIds=[v2['VolumeId']], WaiterConfig={'Delay': 1, 'MaxAttempts': 60})
            listed = [v['VolumeId'] for v in ec2.describe_volumes()['Volumes']]
            origin_busy = error(lambda: ec2.delete_volume(VolumeId=vol))
            ec2.create_tags(Resources=[v2['VolumeId'], s['SnapshotId']], Tags=[{'Key': 'team', 'Value': 'b'}])
            tags = ec2.describe_tags(Filters=[{'Name': 'key', 'Values': ['team']}])['Tags']
            ec2.delete_volume(VolumeId=v2['VolumeId'])
            ec2.delete_snapshot(SnapshotId=s['SnapshotId'])
            snap_gone = error(lambda: ec2.describe_snapshots(SnapshotIds=[s['SnapshotId']]))
            ec2.delete_volume(VolumeId=vol)
            print(json.dumps({'snap': s['SnapshotId'], 'state': s['State'], 'volume': s['VolumeId'], 'size': s['VolumeSize'],
                'mine': [x['SnapshotId'] for x in mine], 'desc': mine[0]['Description'], 'tagged': [x['SnapshotId'] for x in tagged],
                'v2': v2['VolumeId'], 'v2size': v2['Size'], 'listed': listed, 'origin_busy': origin_busy,
                'tags': sorted((t['ResourceId'], t['ResourceType']) for t in tags), 'snap_gone': snap_gone}, default=str))
            """);
        var snap = result["snap"]!.GetValue<string>();
        Assert.That(snap, Does.Match("^snap-[0-9a-f]{17}$"));
        Assert.That(result["state"]!.GetValue<string>(), Is.EqualTo("completed"));
        Assert.That(result["volume"]!.GetValue<string>(), Is.EqualTo(id));
        Assert.That(result["size"]!.GetValue<int>(), Is.EqualTo(1));
        Assert.That(result["mine"]!.AsArray().Select(n => n!.GetValue<string>()), Is.EqualTo(new[] { snap }));
        Assert.That(result["desc"]!.GetValue<string>(), Is.EqualTo("before the upgrade"));
        Assert.That(result["tagged"]!.AsArray().Select(n => n!.GetValue<string>()), Is.EqualTo(new[] { snap }));
        var v2 = result["v2"]!.GetValue<string>();
        Assert.That(v2, Does.Match("^vol-[0-9a-f]{17}$"));
        Assert.That(result["v2size"]!.GetValue<int>(), Is.EqualTo(1));
        var listed = result["listed"]!.AsArray().Select(n => n!.GetValue<string>()).ToList();
        Assert.That(listed, Does.Contain(id).And.Contain(v2), "volumes, not the snapshot, are listed as volumes");
        Assert.That(listed, Has.None.StartsWith("snap-"));
        Assert.That(result["origin_busy"]!["code"]!.GetValue<string>(), Is.EqualTo("IncorrectState"), "a volume with snapshots is not deleted");
        var tags = result["tags"]!.AsArray().Select(t => (t![0]!.GetValue<string>(), t[1]!.GetValue<string>())).ToList();
        Assert.That(tags, Is.EquivalentTo(new[] { (snap, "snapshot"), (v2, "volume") }));
        Assert.That(result["snap_gone"]!["code"]!.GetValue<string>(), Is.EqualTo("InvalidSnapshot.NotFound"));
        Assert.That((await RestVolumeUuidsAsync()).Except(before), Is.Empty, "everything made here was deleted");
    }

    [Test, CancelAfter(240_000)]
    public async Task Boto3_pages_and_filters_volumes()
    {
        var result = await Ec2Clients.Boto3Async(_server, _key, """
            ids = [ec2.create_volume(Size=1 + (i % 2), AvailabilityZone='stratuslab-1a',
                TagSpecifications=[{'ResourceType': 'volume', 'Tags': [{'Key': 'batch', 'Value': 'paging'}]}])['VolumeId'] for i in range(7)]
            pages = list(ec2.get_paginator('describe_volumes').paginate(
                Filters=[{'Name': 'tag:batch', 'Values': ['paging']}], PaginationConfig={'PageSize': 5}))
            paged = [v['VolumeId'] for p in pages for v in p['Volumes']]
            big = ec2.describe_volumes(Filters=[{'Name': 'tag-key', 'Values': ['batch']}, {'Name': 'size', 'Values': ['2']}])['Volumes']
            avail = ec2.describe_volumes(Filters=[{'Name': 'volume-id', 'Values': ids[:2]}, {'Name': 'status', 'Values': ['available']}])['Volumes']
            badfilter = error(lambda: ec2.describe_volumes(Filters=[{'Name': 'nope', 'Values': ['x']}]))
            for v in ids: ec2.delete_volume(VolumeId=v)
            print(json.dumps({'ids': ids, 'pages': len(pages), 'paged': paged, 'big': sorted(v['VolumeId'] for v in big),
                'avail': sorted(v['VolumeId'] for v in avail), 'badfilter': badfilter}))
            """);
        var ids = result["ids"]!.AsArray().Select(n => n!.GetValue<string>()).ToList();
        Assert.That(result["pages"]!.GetValue<int>(), Is.EqualTo(2), "7 volumes in pages of 5");
        Assert.That(result["paged"]!.AsArray().Select(n => n!.GetValue<string>()), Is.EquivalentTo(ids));
        Assert.That(result["big"]!.AsArray().Select(n => n!.GetValue<string>()), Is.EqualTo(new[] { ids[1], ids[3], ids[5] }.Order(StringComparer.Ordinal)));
        Assert.That(result["avail"]!.AsArray().Select(n => n!.GetValue<string>()), Is.EqualTo(ids.Take(2).Order(StringComparer.Ordinal)));
        Assert.That(result["badfilter"]!["code"]!.GetValue<string>(), Is.EqualTo("InvalidParameterValue"));
    }

    [Test, CancelAfter(240_000)]
    public async Task Other_users_ids_bad_sizes_and_quota_get_the_aws_error_codes_and_leave_nothing()
    {
        var mine = await Ec2Clients.Boto3Async(_server, _key, """
            v = ec2.create_volume(Size=1, AvailabilityZone='stratuslab-1a')['VolumeId']
            print(json.dumps({'id': v}))
            """);
        var id = mine["id"]!.GetValue<string>();
        var token = await _server.CreateUserAsync("ec2volother");
        using var other = _server.Client(token);
        await (await _admin.PostAsJsonAsync("/api/v1/quotas/ec2volother", new { storageGiB = 1 })).Json(200);
        var otherKey = await Ec2Key.CreateAsync(other, "ec2volother");
        var before = await RestVolumeUuidsAsync();
        var result = await Ec2Clients.Boto3Async(_server, otherKey, $$"""
            vol = '{{id}}'
            out = {
              'describe': error(lambda: ec2.describe_volumes(VolumeIds=[vol])),
              'delete': error(lambda: ec2.delete_volume(VolumeId=vol)),
              'snapshot': error(lambda: ec2.create_snapshot(VolumeId=vol)),
              'tag': error(lambda: ec2.create_tags(Resources=[vol], Tags=[{'Key': 'k', 'Value': 'v'}])),
              'fromsnap': error(lambda: ec2.create_volume(SnapshotId='snap-0123456789abcdef0', AvailabilityZone='stratuslab-1a')),
              'delsnap': error(lambda: ec2.delete_snapshot(SnapshotId='snap-0123456789abcdef0')),
              'list': [v['VolumeId'] for v in ec2.describe_volumes()['Volumes']],
              'minus': error(lambda: ec2.create_volume(Size=-1, AvailabilityZone='stratuslab-1a')),
              'zero': error(lambda: ec2.create_volume(Size=0, AvailabilityZone='stratuslab-1a')),
              'zone': error(lambda: ec2.create_volume(Size=1, AvailabilityZone='us-east-1a')),
              'quota': error(lambda: ec2.create_volume(Size=2, AvailabilityZone='stratuslab-1a')),
              'malformed': error(lambda: ec2.describe_volumes(VolumeIds=['vol-xyz'])),
              'malformed_delete': error(lambda: ec2.delete_volume(VolumeId='vol-xyz')),
            }
            print(json.dumps(out))
            """);
        foreach (var op in new[] { "describe", "delete", "snapshot", "tag" })
            Assert.That(result[op]!["code"]!.GetValue<string>(), Is.EqualTo("InvalidVolume.NotFound"), op);
        foreach (var op in new[] { "fromsnap", "delsnap" })
            Assert.That(result[op]!["code"]!.GetValue<string>(), Is.EqualTo("InvalidSnapshot.NotFound"), op);
        Assert.That(result["list"]!.AsArray(), Is.Empty, "another user's volumes are never listed");
        foreach (var op in new[] { "minus", "zero", "zone" })
            Assert.That(result[op]!["code"]!.GetValue<string>(), Is.EqualTo("InvalidParameterValue"), op);
        Assert.That(result["quota"]!["code"]!.GetValue<string>(), Is.EqualTo("VolumeLimitExceeded"));
        Assert.That(result["malformed"]!["code"]!.GetValue<string>(), Is.EqualTo("InvalidVolumeID.Malformed"));
        Assert.That(result["malformed_delete"]!["code"]!.GetValue<string>(), Is.EqualTo("InvalidVolumeID.Malformed"));
        Assert.That(await RestVolumeUuidsAsync(), Is.EquivalentTo(before), "no refused request left a volume behind");
        await Ec2Clients.Boto3Async(_server, _key, $$"""
            ec2.delete_volume(VolumeId='{{id}}')
            print(json.dumps({}))
            """);
    }
}
