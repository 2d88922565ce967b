"""The hub backs itself up into an S3 bucket too (HUBSWARM_BACKUP_BUCKET), against the lab's moto:
the hub reaches it on the lab network (/etc/hubswarm/aws.env) with its instance role's credentials
from the lab's metadata stand-in (fab hub-role, run by setup-hub since the bucket needs a grant).

A bucket made in the lab's moto; setup-hub with the bucket; the backup's service started by hand
(the timer's own interval is not waited for): an archive appears under the prefix, encrypted at
rest; fab backup --list lists it, fab status reports it, and fab restore with no archive picks it
when it is the newest of all (the shared storage's copies removed first).
"""

import shlex
import time

import pytest

from fabrun import fab, lab_aws
from tasks.hubswarm_hub.backups import archive_pattern
from tasks.lab import ec2 as lab_ec2
from tasks.ops.backup import BACKUP_SERVICE, BACKUPS

BUCKET = "lab-backups"
PREFIX = "term-1"
WITH_BUCKET = {"HUBSWARM_BACKUP_BUCKET": f"{BUCKET}/{PREFIX}", "HUBSWARM_BACKUP_KEEP": "2"}
FOLDER = f"/mnt/nfs/home/{BACKUPS}"


def archives_in(s3):
    found = s3.list_objects_v2(Bucket=BUCKET, Prefix=f"{PREFIX}/").get("Contents", [])
    return sorted(each["Key"] for each in found)


@pytest.fixture
def bucket(lab, deploy_run):
    """An empty bucket in the lab's moto; after the test, the hub as the lab's other tests expect
    (no bucket, so no role's policy either) and the bucket gone."""
    s3 = lab_aws(lab.env, "s3")
    s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": lab.env["AWS_DEFAULT_REGION"]})
    yield s3
    again = fab("setup-hub")
    assert again.code == 0, again.output
    for key in archives_in(s3):
        s3.delete_object(Bucket=BUCKET, Key=key)
    s3.delete_bucket(Bucket=BUCKET)
    fab("hub-role")  # the policy the bucket needed goes


def test_the_hub_backs_itself_up_into_the_bucket(lab, bucket, connect):
    hub = connect(lab.hub_ip)
    run = fab("setup-hub", env=WITH_BUCKET)
    assert run.code == 0, run.output
    assert (f"hubswarm-{lab_ec2.CLUSTER}-hub", "hub-role") in run.changed(), run.output  # the bucket's grant

    # Two backups now, by hand, as the timer would start them: the service waits for its end.
    for _ in range(2):
        started = hub.run(f"sudo -n systemctl start {shlex.quote(BACKUP_SERVICE)}", hide=True, warn=True)
        journal = hub.run(f"sudo -n journalctl -u {shlex.quote(BACKUP_SERVICE)} -n 20 --no-pager", hide=True).stdout
        assert started.ok, journal
        time.sleep(1)  # archives are named by the second
    keys = archives_in(bucket)
    pattern = archive_pattern(lab_ec2.CLUSTER)
    assert len(keys) == 2 and all(pattern.fullmatch(key.removeprefix(f"{PREFIX}/")) for key in keys), keys
    assert f"in s3://{BUCKET}/{PREFIX}/ (encrypted: AES256)" in journal
    newest = keys[-1].removeprefix(f"{PREFIX}/")
    assert bucket.head_object(Bucket=BUCKET, Key=keys[-1])["ServerSideEncryption"] == "AES256"
    # No credentials on the hub's disk: the upload took the role's from the metadata stand-in.
    written = hub.run("sudo -n cat /etc/hubswarm/aws.env /usr/local/sbin/hubswarm-backup", hide=True).stdout
    assert "KEY" not in written and "TOKEN" not in written

    listed = fab("backup", "--list", env=WITH_BUCKET)
    assert listed.code == 0, listed.output
    assert f"backup: 2 in s3://{BUCKET}/{PREFIX}/" in listed.output, listed.output
    assert any(line.startswith(f"{newest}  ") for line in listed.output.splitlines())

    status = fab("status", env=WITH_BUCKET)
    [row] = [line for line in status.output.splitlines() if line.split()[:2] == ["backup", f"s3://{BUCKET}/{PREFIX}/"]]
    assert row.split()[2:4] == ["0m", "old"] and newest in row, row
    assert f"backup s3://{BUCKET}/{PREFIX}/:" not in status.output  # no problem with it

    # A hub on new shared storage: only the bucket has its archives; restore takes the bucket's newest.
    # (root's shell expands the names: the folder is root's only)
    hub.run(f"sudo -n sh -c {shlex.quote(f'rm -f {shlex.quote(FOLDER)}/hubswarm-*')}", hide=True)
    predicted = fab("check", "restore", env=WITH_BUCKET)
    assert predicted.code == 0, predicted.output
    assert f"restore: read {newest}, the newest backup, from s3://{BUCKET}/{PREFIX}/" in predicted.output
    restored = fab("restore", env=WITH_BUCKET)
    assert restored.code == 0, restored.output
    started = fab("start-hub", env=WITH_BUCKET)
    assert started.code == 0, started.output
