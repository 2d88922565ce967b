"""The lab's metadata stand-in (files/lab-imds/imds.py) hands a host the credentials of its
instance's role as EC2 does: real botocore, as the hub's AWS clients run it, gets them from the
stand-in serving on this machine's loopback. And what the lab writes for it (tasks/lab/imds.py)."""

import importlib.util
import json
import threading
import time
from http.server import ThreadingHTTPServer

import pytest
from botocore.credentials import InstanceMetadataProvider
from botocore.utils import InstanceMetadataFetcher

from fakehost import ROOT
from tasks.lab import imds as lab_imds

spec = importlib.util.spec_from_file_location("lab_imds_server", ROOT / "files" / "lab-imds" / "imds.py")
server = importlib.util.module_from_spec(spec)
spec.loader.exec_module(server)

HUB_INSTANCE = "i-0123456789abcdef0"
ROLE = {
    "InstanceProfileArn": "arn:aws:iam::123456789012:instance-profile/hubswarm-lab-hub",
    "InstanceProfileId": "AIPAEXAMPLEPROFILEID",
    "RoleName": "hubswarm-lab-hub",
}


@pytest.fixture
def lab_files(tmp_path, monkeypatch):
    """The lab's metadata files in a folder of the test's own, which the stand-in reads."""
    monkeypatch.setattr(lab_imds, "DATA_DIR", tmp_path)
    monkeypatch.setattr(lab_imds, "IDENTITIES_PATH", tmp_path / "identities.json")
    monkeypatch.setattr(server, "IDENTITIES", str(tmp_path / "identities.json"))
    return tmp_path


@pytest.fixture
def standin(lab_files):
    """The stand-in, answering on loopback (this machine's 127.0.0.1 is the caller): its URL."""
    listening = ThreadingHTTPServer(("127.0.0.1", 0), server.Handler)
    threading.Thread(target=listening.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{listening.server_address[1]}"
    listening.shutdown()
    listening.server_close()


def role_credentials(url):
    """What botocore's instance-role provider finds at the metadata service ``url`` (None: nothing)."""
    fetcher = InstanceMetadataFetcher(timeout=30, num_attempts=1, base_url=url, env={})
    return InstanceMetadataProvider(iam_role_fetcher=fetcher).load()


def the_fleet(instance_id=HUB_INSTANCE):
    lab_imds.write_fleet({"127.0.0.1": {"InstanceId": instance_id}})


def test_a_host_whose_instance_has_a_role_gets_its_credentials(standin):
    the_fleet()
    lab_imds.write_roles({HUB_INSTANCE: ROLE})
    credentials = role_credentials(standin)
    assert credentials.method == "iam-role"
    served = json.loads(lab_imds.identity("127.0.0.1")[f"iam/security-credentials/{ROLE['RoleName']}"])
    frozen = credentials.get_frozen_credentials()
    assert (frozen.access_key, frozen.secret_key, frozen.token) == (
        served["AccessKeyId"],
        served["SecretAccessKey"],
        served["Token"],
    )
    assert frozen.access_key.startswith("ASIA")
    # Expiring in 6 hours: botocore keeps them, without "extending" stale ones.
    assert 5.9 * 3600 < credentials._expiry_time.timestamp() - time.time() <= 6 * 3600


def test_the_role_items_read_as_ec2s(standin):
    import urllib.request

    the_fleet()
    lab_imds.write_roles({HUB_INSTANCE: ROLE})
    asked = urllib.request.Request(f"{standin}/latest/api/token", method="PUT")
    asked.add_header("X-aws-ec2-metadata-token-ttl-seconds", "60")
    token = urllib.request.urlopen(asked, timeout=30).read().decode()

    def get(item):
        request = urllib.request.Request(f"{standin}/latest/meta-data/{item}")
        request.add_header("X-aws-ec2-metadata-token", token)
        return urllib.request.urlopen(request, timeout=30).read().decode()

    assert get("iam/") == "info\nsecurity-credentials/"
    assert get("iam/security-credentials/") == "hubswarm-lab-hub"
    info = json.loads(get("iam/info"))
    assert info.pop("LastUpdated").endswith("Z")
    assert info == {"Code": "Success", **{k: ROLE[k] for k in ("InstanceProfileArn", "InstanceProfileId")}}
    credentials = json.loads(get("iam/security-credentials/hubswarm-lab-hub"))
    assert credentials.keys() == {
        "Code",
        "Type",
        "AccessKeyId",
        "SecretAccessKey",
        "Token",
        "LastUpdated",
        "Expiration",
    }
    assert credentials["Code"] == "Success"


def test_a_host_whose_instance_has_no_role_gets_none(standin):
    the_fleet()
    lab_imds.write_roles({"i-0another": ROLE})
    assert role_credentials(standin) is None


def test_the_roles_follow_moto_and_outlive_a_new_fleet_of_the_same_instances(lab_files):
    the_fleet()
    lab_imds.set_identity("10.213.0.101", {"instance-id": "i-0spare"})
    lab_imds.write_roles({HUB_INSTANCE: ROLE, "i-0spare": {**ROLE, "RoleName": "spares"}})
    assert "iam/security-credentials/spares" in lab_imds.identity("10.213.0.101")

    other = {**ROLE, "RoleName": "other"}
    lab_imds.write_roles({HUB_INSTANCE: other})
    assert sorted(item for item in lab_imds.identity("127.0.0.1") if item.startswith("iam/")) == [
        "iam/info",
        "iam/security-credentials/other",
    ]
    assert not [item for item in lab_imds.identity("10.213.0.101") if item.startswith("iam/")]

    written = lab_imds.identity("127.0.0.1")
    the_fleet()  # ensure_lab, moto's instance the same: its role stays
    assert lab_imds.identity("127.0.0.1") == written
    the_fleet("i-0new")  # moto seeded again: a new instance, no role
    assert not [item for item in lab_imds.identity("127.0.0.1") if item.startswith("iam/")]
