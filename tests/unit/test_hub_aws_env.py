"""aws-env on a fake host: /etc/hubswarm/aws.env, where the hub's AWS clients read their region and
endpoints (never credentials), as systemd's EnvironmentFile= and a shell read it."""

import hashlib
import subprocess

import pytest

from fakehost import hub_config
from tasks.hub import aws_env

HEADER = "# The hub's AWS clients' region and endpoints, written by hubswarm (setup-hub); no credentials here.\n"


@pytest.mark.parametrize(
    "endpoints, lines",
    [
        ("", ""),
        ("http://10.213.0.1:5055", "AWS_ENDPOINT_URL=http://10.213.0.1:5055\n"),
        (
            "s3=https://s3.example.com:9000,route_53=https://r53.example.com",
            "AWS_ENDPOINT_URL_S3=https://s3.example.com:9000\nAWS_ENDPOINT_URL_ROUTE_53=https://r53.example.com\n",
        ),
    ],
    ids=["AWS's own", "one URL for every service", "one per service"],
)
def test_the_file_holds_the_region_and_boto3s_endpoint_variables(endpoints, lines):
    text = aws_env.aws_env_text(hub_config(region="eu-west-1", hub_aws_endpoints=endpoints))
    assert text == f"{HEADER}AWS_DEFAULT_REGION=eu-west-1\n{lines}"


def test_a_shell_reads_what_it_says_whatever_the_url_holds(tmp_path):
    url = "https://s3.example.com/a;b&c=$(id)"
    path = tmp_path / "aws.env"
    path.write_text(aws_env.aws_env_text(hub_config(hub_aws_endpoints=f"s3={url}")))
    shown = subprocess.run(
        ["bash", "-c", 'set -a; . "$1"; printf %s "$AWS_ENDPOINT_URL_S3"', "-", str(path)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert shown.stdout == url


def test_written_once_then_left_alone(make_host):
    text = aws_env.aws_env_text(hub_config(hub_aws_endpoints="http://10.213.0.1:5055"))
    host, runner = make_host(hub_aws_endpoints="http://10.213.0.1:5055")
    aws_env.aws_env(host)
    assert host.record.changes == [
        "make directory /etc/hubswarm (700 root:root)",
        "write /etc/hubswarm/aws.env (644 root:root)",
    ]
    assert [call.stdin for call in runner.calls] == [None, text]

    done = {
        "dir:/etc/hubswarm": "700 root root",
        "file:/etc/hubswarm/aws.env": f"{hashlib.sha256(text.encode()).hexdigest()} 644 root root",
    }
    host, runner = make_host(done, hub_aws_endpoints="http://10.213.0.1:5055")
    aws_env.aws_env(host)
    assert host.record.changes == [] and runner.calls == []
