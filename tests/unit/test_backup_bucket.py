"""The hub's backups in S3 (HUBSWARM_BACKUP_BUCKET): the uploader against moto's in-process S3,
the backup tool's call of it, and what this machine reads of the bucket (list, restore, status)."""

import shlex
import subprocess
from datetime import datetime, timezone

import boto3
import pytest
from moto import mock_aws

from fakehost import hub_config
from tasks.hubswarm_hub import backups
from tasks.ops import backup, status

BUCKET = "class-backups"


def name(stamp, cluster="c1"):
    return backups.archive_name(cluster, f"20260101T0{stamp}Z")


@pytest.fixture
def s3(monkeypatch):
    for variable in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_PROFILE"):
        monkeypatch.delenv(variable, raising=False)
    with mock_aws():
        client = boto3.client(
            "s3", region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing"
        )
        client.create_bucket(Bucket=BUCKET)
        yield client


def keys(s3):
    return sorted(each["Key"] for each in s3.list_objects_v2(Bucket=BUCKET).get("Contents", []))


def upload(s3, tmp_path, stamp, setting=BUCKET + "/term", keep=2):
    path = tmp_path / name(stamp)
    path.write_bytes(f"archive {stamp}".encode())
    return backups.upload(s3, path, setting, "c1", keep)


@pytest.mark.parametrize(
    "setting, bucket, prefix",
    [("b-1", "b-1", ""), ("b-1/term", "b-1", "term/"), ("s3://b-1/a/b/", "b-1", "a/b/")],
)
def test_a_setting_is_a_bucket_and_a_key_prefix(setting, bucket, prefix):
    assert backups.bucket_and_prefix(setting) == (bucket, prefix)
    assert backups.archives_prefix(setting, "c1") == f"{prefix}hubswarm-c1-"


def test_an_archive_goes_in_encrypted_and_only_the_newest_of_the_clusters_stay(s3, tmp_path):
    # What the hub must never touch: another cluster's archives, another prefix, other objects.
    others = [f"term/{name('00100', 'c2')}", f"other/{name('00100')}", "term/notes.txt", name("00100")]
    for key in others:
        s3.put_object(Bucket=BUCKET, Key=key, Body=b"x")

    assert upload(s3, tmp_path, "00100") == []
    assert upload(s3, tmp_path, "00200") == []
    assert upload(s3, tmp_path, "00300") == [name("00100")]

    assert keys(s3) == sorted([*others, f"term/{name('00200')}", f"term/{name('00300')}"])
    head = s3.head_object(Bucket=BUCKET, Key=f"term/{name('00300')}")
    assert head["ServerSideEncryption"] == "AES256"
    listed = backups.bucket_archives(s3, f"{BUCKET}/term", "c1")
    assert [(each[0], each[1]) for each in listed] == [(name("00200"), 13), (name("00300"), 13)]
    assert backups.read_archive(s3, f"{BUCKET}/term", name("00300")) == b"archive 00300"


def test_without_a_prefix_the_archives_are_at_the_top(s3, tmp_path):
    upload(s3, tmp_path, "00100", setting=BUCKET, keep=1)
    upload(s3, tmp_path, "00200", setting=BUCKET, keep=1)
    assert keys(s3) == [name("00200")]


def test_only_an_archive_of_the_cluster_goes_up(s3, tmp_path):
    path = tmp_path / "secrets.txt"
    path.write_text("x")
    with pytest.raises(ValueError, match="is not an archive of cluster c1"):
        backups.upload(s3, path, BUCKET, "c1", 2)
    assert keys(s3) == []


def test_the_tool_says_what_it_did_and_fails_in_one_line(s3, tmp_path, monkeypatch, capsys):
    path = tmp_path / name("00100")
    path.write_bytes(b"tar")
    monkeypatch.setattr(boto3, "client", lambda service: s3)
    assert backups.main(["upload", str(path), "--bucket", f"{BUCKET}/term", "--cluster", "c1", "--keep", "2"]) == 0
    assert capsys.readouterr().out == f"hubswarm-backup: {path.name} in s3://{BUCKET}/term/ (encrypted: AES256)\n"
    assert backups.main(["upload", str(path), "--bucket", "no-such-bucket", "--cluster", "c1", "--keep", "2"]) == 1
    error = capsys.readouterr().err
    assert (
        error.startswith(f"hubswarm-backup: could not put {path} into s3://no-such-bucket/: ")
        and "NoSuchBucket" in error
    )
    assert error.count("\n") == 1


def test_the_backup_tool_puts_each_archive_into_the_bucket_with_the_hubs_venv():
    config = hub_config(backup_bucket="b-1/it's here", cluster="c 1", backup_keep="5")
    tool = backup.backup_tool(config)
    expected = (
        "/opt/jupyterhub/bin/python -m hubswarm_hub.backups upload \"$archive\" --bucket 'b-1/it'\"'\"'s here' "
        "--cluster 'c 1' --keep 5\n"
    )
    assert tool.endswith(expected)
    assert shlex.split(expected)[-6:] == ["--bucket", "b-1/it's here", "--cluster", "c 1", "--keep", "5"]
    assert subprocess.run(["bash", "-n"], input=tool, text=True).returncode == 0
    assert "hubswarm_hub.backups" not in backup.backup_tool(hub_config())  # no bucket, no upload


def test_the_backup_service_reads_the_hubs_aws_settings():
    files = backup.backup_files(hub_config(backup_bucket="b-1/term"))
    service = files[f"{backup.UNIT_DIR}/{backup.BACKUP_SERVICE}"][0]
    assert "\nEnvironmentFile=/etc/hubswarm/aws.env\n" in service
    assert "Description=hubswarm: back the hub's state up into the shared storage and s3://b-1/term/\n" in service


NOW = int(datetime(2026, 1, 1, 1, 0, tzinfo=timezone.utc).timestamp())


def test_status_shows_the_buckets_newest_and_fails_when_it_is_old(s3, tmp_path, monkeypatch):
    config = hub_config(backup_bucket=f"{BUCKET}/term", cluster="c1")
    monkeypatch.setattr(backup.inventory, "aws_client", lambda config, service: s3)
    url = f"s3://{BUCKET}/term/"
    assert status.bucket_rows(config, NOW) == [status.Row("backup", url, "none yet", "no archive of cluster c1")]
    upload(s3, tmp_path, "00100")
    [row] = status.bucket_rows(config, NOW)
    taken = int(s3.head_object(Bucket=BUCKET, Key=f"term/{name('00100')}")["LastModified"].timestamp())
    assert row[:3] == ("backup", url, f"{status.age(NOW - taken)} old") and row.detail.endswith("1 backup kept")
    [row] = status.bucket_rows(config, taken + 7201)
    assert row.problem == "older than twice HUBSWARM_BACKUP_EVERY (3600 s)"
    assert status.bucket_rows(hub_config(), NOW) == []  # no bucket
    assert status.bucket_rows(hub_config(backup_bucket=BUCKET, backup_every="0"), NOW) == []


def test_status_says_when_this_machine_cannot_list_the_bucket(s3, monkeypatch):
    monkeypatch.setattr(backup.inventory, "aws_client", lambda config, service: s3)
    [row] = status.bucket_rows(hub_config(backup_bucket="no-such-bucket"), NOW)
    assert row.state == "unknown" and row.problem.startswith("cannot list it: ") and "NoSuchBucket" in row.problem
