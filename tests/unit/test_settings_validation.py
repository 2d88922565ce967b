"""Every setting declared once and checked before any host is touched; the lab's settings
for lab hosts only; known_hosts made and kept by HUBSWARM_ACCEPT_NEW_HOST_KEYS=1."""

import contextlib
import os
import socket
import stat
import threading
from types import SimpleNamespace

import paramiko
import pytest
import yaml
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from fabric import Config, Connection
from hypothesis import example, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from invoke.exceptions import Exit

from fakehost import ROOT, run_fab
from tasks import settings
from tasks.cli import inventory, invocation
from tasks.cli.invocation import HOSTS_ATTRIBUTE, hosts_for, run_of
from tasks.core import HubswarmError
from tasks.core.host import Host
from tasks.core.recap import Recap
from tasks.core.run import Run
from tasks.settings import docs, profiles, validate
from tasks.settings.kinds import HIDDEN
from tasks.settings.table import SETTING, SETTINGS, Derived


def problems(**env):
    return validate.problems(section(**env))


def section(**env):
    """The defaults for ``env``, the hub's DNS name set unless ``env`` sets it."""
    return settings.defaults({"HUBSWARM_DOMAIN": "hub.example.com", **env})["hubswarm"]


# --- one line per bad setting ---------------------------------------------------------


def test_the_defaults_have_no_problem():
    assert problems() == []


def test_users_servers_need_the_hubs_dns_name_unless_one_origin_is_accepted():
    [line] = problems(HUBSWARM_DOMAIN="")
    assert line.startswith("HUBSWARM_DOMAIN is not set") and "HUBSWARM_SINGLE_ORIGIN=1" in line
    assert problems(HUBSWARM_DOMAIN="", HUBSWARM_SINGLE_ORIGIN="1") == []


def test_the_records_route53_keeps_are_the_hubs_dns_names():
    [line] = problems(HUBSWARM_DOMAIN="", HUBSWARM_SINGLE_ORIGIN="1", HUBSWARM_ROUTE53_ZONE="example.com")
    assert line.startswith("HUBSWARM_ROUTE53_ZONE: the records it keeps are HUBSWARM_DOMAIN's, which is not set")


@pytest.mark.parametrize(
    "given, kept",
    [
        ("Z0123ABC", "Z0123ABC"),
        (" /hostedzone/z0123abc ", "Z0123ABC"),  # as Route53 writes ids, in any case
        ("Example.COM.", "example.com"),
        ("example.com", "example.com"),
    ],
)
def test_a_zone_is_an_id_or_a_name(given, kept):
    assert section(HUBSWARM_ROUTE53_ZONE=given)["route53_zone"] == kept
    assert validate.normalise({"route53_zone": kept})["route53_zone"] == kept  # normalised once for all


@pytest.mark.parametrize(
    "given, kept",
    [
        ("my-bucket", "my-bucket"),
        (" s3://my-bucket/ ", "my-bucket"),
        ("my-bucket/Term-1/hub/", "my-bucket/Term-1/hub"),
        ("", ""),
    ],
)
def test_a_backup_bucket_is_a_bucket_and_maybe_a_prefix(given, kept):
    assert section(HUBSWARM_BACKUP_BUCKET=given)["backup_bucket"] == kept
    assert problems(HUBSWARM_BACKUP_BUCKET=given) == []


BAD = [
    ("HUBSWARM_ADDRESS", "bogus", "'bogus' is not one of private, public, dns"),
    ("HUBSWARM_IMAGE_SOURCE", "pul", "'pul' is not one of push, pull"),
    ("HUBSWARM_IMAGE_PULL", "sometimes", "'sometimes' is not one of missing, always"),
    ("HUBSWARM_NOTEBOOK_EGRESS", "pypi.org", "'pypi.org' is not internet, none or an IPv4 network"),
    ("HUBSWARM_NOTEBOOK_EGRESS", "10.0.0.0/8,fd00::/8", "'fd00::/8' is not internet, none or an IPv4 network"),
    ("HUBSWARM_AUTHENTICATOR", "gitlab", "'gitlab' is not one of google, github, password"),
    ("HUBSWARM_AUTHENTICATOR", "password", "password is for the lab only"),
    ("HUBSWARM_GATEWAY", "maybe", "'maybe' is not a flag"),
    ("HUBSWARM_ACCEPT_NEW_HOST_KEYS", "2", "'2' is not a flag"),
    ("HUBSWARM_CHECK", "y", "'y' is not a flag"),
    ("HUBSWARM_HUB_TAKES_NOTEBOOKS", "enabled", "'enabled' is not a flag"),
    ("HUBSWARM_SECURITY_UPDATES", "weekly", "'weekly' is not a flag"),
    ("HUBSWARM_DOMAIN", "x.example;id", "label 'example;id' may hold only a-z, 0-9 and '-'"),
    ("HUBSWARM_DOMAIN", "hub..example.com", "empty label"),
    ("HUBSWARM_DOMAIN", "-hub.example.com", "label '-hub'"),
    ("HUBSWARM_DOMAIN", "hub_1.example.com", "label 'hub_1'"),
    ("HUBSWARM_DOMAIN", "a" * 64 + ".example.com", "more than 63"),
    ("HUBSWARM_DOMAIN", ".".join(["abcdefghi"] * 26), "more than 253"),
    ("HUBSWARM_DOMAIN", "203.0.113.5", "looks like an IP address"),
    ("HUBSWARM_DOMAIN", "hub.example.com/x", "label 'com/x'"),
    ("HUBSWARM_STATIC_DOMAIN", "exa mple.com", "label 'exa mple'"),
    ("HUBSWARM_LETSENCRYPT_DOMAINS", "www.example.com, *.example.com", "'*.example.com' is not a DNS host name"),
    ("HUBSWARM_LETSENCRYPT_EMAIL", "ops", "is not an email address"),
    ("HUBSWARM_LETSENCRYPT_EMAIL", "ops@localhost", "its domain 'localhost' is not a DNS name"),
    ("HUBSWARM_LETSENCRYPT_EMAIL", "o ps@example.com", "is not an email address"),
    ("HUBSWARM_ACME_SERVER", "http://acme.example.com/dir", "is not an https:// URL"),
    ("HUBSWARM_ACME_SERVER", "acme.example.com/dir", "is not an https:// URL"),
    ("HUBSWARM_ACME_SERVER", "https://", "has no host name"),
    ("HUBSWARM_ACME_SERVER", "https://acme.example.com:99999/dir", "bad port"),
    ("HUBSWARM_ACME_SERVER", "https://acme.example.com/d ir", "whitespace, quotes or control characters"),
    ("HUBSWARM_ACME_SERVER", "https://[::1/dir", "is not a URL"),
    ("HUBSWARM_MEM_LIMIT", "lots", "is not a memory size"),
    ("HUBSWARM_MEM_LIMIT", "2GB", "is not a memory size"),
    ("HUBSWARM_MEM_LIMIT", "-1G", "is not a memory size"),
    ("HUBSWARM_MEM_LIMIT", "1e3G", "is not a memory size"),
    ("HUBSWARM_MEM_LIMIT", "inf", "is not a memory size"),
    ("HUBSWARM_MEM_LIMIT", "1K", "less than 6M"),
    ("HUBSWARM_MEM_LIMIT", "0", "less than 6M"),
    ("HUBSWARM_LAUNCH_TIMEOUT", "10m", "is not a whole number of seconds"),
    ("HUBSWARM_LAUNCH_TIMEOUT", "0", "is not a whole number of seconds above 0"),
    ("HUBSWARM_LAUNCH_TIMEOUT", "-5", "is not a whole number of seconds"),
    ("HUBSWARM_CULL_IDLE", "1h", "is not a whole number of seconds"),
    ("HUBSWARM_CULL_MAX_AGE", "-1", "is not a whole number (0 for no limit)"),
    ("HUBSWARM_ACTIVE_SERVER_LIMIT", "many", "is not a whole number (0 for no limit)"),
    ("HUBSWARM_CONCURRENT_SPAWN_LIMIT", "2.5", "is not a whole number (0 for no limit)"),
    ("HUBSWARM_NAMED_SERVERS", "maybe", "is not a flag"),
    ("HUBSWARM_IMAGE", "Hubswarm/singleuser:1", "upper case"),
    ("HUBSWARM_IMAGE", "hubswarm/SingleUser:1", "is not an image reference"),
    ("HUBSWARM_IMAGE", "hubswarm/singleuser:1;id", "is not an image reference"),
    ("HUBSWARM_IMAGE", "hubswarm//singleuser", "is not an image reference"),
    ("HUBSWARM_IMAGE", "hubswarm/singleuser:" + "t" * 129, "is not an image reference"),
    ("HUBSWARM_IMAGE", "repo@sha256:abc", "is not an image reference"),
    ("HUBSWARM_IMAGE_BASE", "debian bookworm", "is not an image reference"),
    ("HUBSWARM_TAG_CLUSTER", "aws:cluster", "starts with 'aws:'"),
    ("HUBSWARM_TAG_CLUSTER", "AWS:cluster", "starts with 'aws:'"),
    ("HUBSWARM_TAG_ROLE", "k" * 129, "more than the 128"),
    ("HUBSWARM_TAG_ROLE", "role#1", "may hold only letters, digits"),
    ("HUBSWARM_TAG_ROLE", "hubswarm:cluster", "HUBSWARM_TAG_CLUSTER's key too"),
    ("HUBSWARM_TAG_ROLE", "Name", "the instances' name tag"),
    ("HUBSWARM_CLUSTER", "prod;rm", "may hold only letters, digits"),
    ("HUBSWARM_CLUSTER", "c" * 240, "as it names the security groups"),
    ("HUBSWARM_CLUSTER", " prod", "starts or ends with a space"),
    ("HUBSWARM_HOMES_PATH", "mnt/home", "is not an absolute path"),
    ("HUBSWARM_HOMES_PATH", "/mnt/../etc", "has '..'"),
    ("HUBSWARM_HOMES_PATH", "/mnt/my home", "has ' '"),
    ("HUBSWARM_HOMES_PATH", "/mnt/home:/etc", "has ':'"),
    ("HUBSWARM_HOMES_PATH", "/", "must not be / itself"),
    ("HUBSWARM_STATIC_ROOT", "/data/www;", "has ';'"),
    ("HUBSWARM_STATIC_ROOT", "/data/'www'", 'has "\'"'),
    ("HUBSWARM_STATIC_ROOT", "/data/\x1bwww", "has '\\x1b'"),
    ("HUBSWARM_EFS", "fs-1 .efs.example.com", "is not the EFS DNS name, an IPv4 address or 'none'"),
    ("HUBSWARM_EFS", "10.0.0.300", "is not a valid IPv4 address"),
    ("HUBSWARM_MANAGERS", "hub,w1,w2,w3", "'hub,w1,w2,w3' names 4 nodes: a swarm has 1, 3 or 5 managers"),
    ("HUBSWARM_MANAGERS", "w1,w2", "names 2 nodes: a swarm has 1, 3 or 5 managers (an odd number keeps a quorum); "),
    ("HUBSWARM_MANAGERS", "hub,w1,w2,w3,w4,w5,w6", "names 7 nodes"),
    ("HUBSWARM_MANAGERS", "hub,w1,W1", "names a node twice"),
    ("HUBSWARM_MANAGERS", "hub,w_1,w2", "'w_1' is neither a node's address nor its name"),
    ("HUBSWARM_MANAGERS", "hub,10.0.0.300,w2", "'10.0.0.300' is neither a node's address nor its name"),
    ("HUBSWARM_VPC_ID", "vpc-xyz", "is not a VPC id"),
    ("HUBSWARM_SUBNET_ID", "sub-0123456789abcdef0", "is not a subnet id"),
    ("HUBSWARM_AMI", "ami-123", "is not an AMI id"),
    ("HUBSWARM_INSTANCE_TYPE", "t3 medium", "is not an EC2 instance type"),
    ("HUBSWARM_KEY_NAME", "my key\n", "is not an EC2 key pair name"),
    ("AWS_DEFAULT_REGION", "us west 2", "is not an AWS region name"),
    ("AWS_DEFAULT_REGION", "uswest2", "is not an AWS region name"),
    ("HUBSWARM_SSH_USER", "ad min", "is not a login name"),
    ("HUBSWARM_SSH_USER", "admin@host", "is not a login name"),
    ("HUBSWARM_SSH_KEY", "/nonexistent/aws.pem", "key file /nonexistent/aws.pem not found"),
    ("HUBSWARM_ACME_CA_BUNDLE", "/nonexistent/ca.pem", "CA file /nonexistent/ca.pem not found"),
    ("HUBSWARM_LAB_SUBNET", "10.213.0.0/33", "is not a network"),
    ("HUBSWARM_PROFILES", "/nonexistent/profiles.yaml", "profiles file /nonexistent/profiles.yaml not found"),
    ("HUBSWARM_PROFILES", "/", "profiles file / is not a file"),
    ("HUBSWARM_ROUTE53_ZONE", "Z12 34", "'Z12 34' is not a hosted zone id (letters and digits); set the id"),
    ("HUBSWARM_ROUTE53_ZONE", "example..com", "is not a hosted zone name: has an empty label"),
    ("HUBSWARM_ROUTE53_ZONE", "example.org", "the zone example.org does not hold HUBSWARM_DOMAIN (hub.example.com)"),
    ("HUBSWARM_ROUTE53_ZONE", "ub.example.com", "the zone ub.example.com does not hold"),
    ("HUBSWARM_HUB_AWS_ENDPOINTS", "10.213.0.1:5055", "'10.213.0.1:5055' is not an http:// or https:// URL; give"),
    ("HUBSWARM_HUB_AWS_ENDPOINTS", "s3=ftp://x.example.com", "'ftp://x.example.com' is not an http:// or https://"),
    ("HUBSWARM_HUB_AWS_ENDPOINTS", "route 53=https://x.example.com", "'route 53' is not a service as boto3 names it"),
    ("HUBSWARM_HUB_AWS_ENDPOINTS", "s3=http://a.example.com,S3=http://b.example.com", "gives s3 two URLs"),
    ("HUBSWARM_HUB_AWS_ENDPOINTS", "http://a.example.com,http://b.example.com", "gives every service two URLs"),
    ("HUBSWARM_HUB_AWS_ENDPOINTS", "s3=https://x.example.com/a b", "has whitespace, quotes or control"),
    ("HUBSWARM_BACKUP_BUCKET", "My_Bucket", "'My_Bucket' is not an S3 bucket name (3 to 63 lowercase letters,"),
    ("HUBSWARM_BACKUP_BUCKET", "ab", "'ab' is not an S3 bucket name"),
    ("HUBSWARM_BACKUP_BUCKET", "my..bucket", "'my..bucket' is not an S3 bucket name"),
    ("HUBSWARM_BACKUP_BUCKET", "10.0.0.1", "'10.0.0.1' is not an S3 bucket name"),
    ("HUBSWARM_BACKUP_BUCKET", "my-bucket/a b", "the prefix 'a b/' may hold only letters, digits"),
    ("HUBSWARM_BACKUP_BUCKET", "my-bucket/hub*", "; name an S3 bucket, with a prefix after a /"),
    ("HUBSWARM_BACKUP_BUCKET", "my-bucket/a//b", "(no empty part)"),
    ("HUBSWARM_COURSE_ID", "cs 101", "'cs 101' is not a course id (letters, digits, '-' and '_', from a letter or"),
    ("HUBSWARM_COURSE_ID", "-cs101", "'-cs101' is not a course id"),
    ("HUBSWARM_COURSE_ID", "_cs101", "'_cs101' is not a course id"),
    ("HUBSWARM_COURSE_ID", "cs.101", "'cs.101' is not a course id"),
    ("HUBSWARM_COURSE_ID", "../cs101", "is not a course id"),
    ("HUBSWARM_COURSE_ID", "c" * 65, "at most 64); set the course's short name, e.g. cs101-fall"),
]


@pytest.mark.parametrize("name, value, words", BAD, ids=[f"{n}={v[:30]!r}" for n, v, _ in BAD])
def test_a_bad_setting_is_one_line_naming_it(name, value, words):
    lines = problems(**{name: value})
    assert len(lines) == 1, lines
    line = lines[0]
    assert line.startswith(f"{name}: ") and "\n" not in line
    assert words in line


GOOD = [
    ("HUBSWARM_ADDRESS", "PUBLIC"),
    ("HUBSWARM_ADDRESS", " dns "),
    ("HUBSWARM_IMAGE_SOURCE", "Push"),
    ("HUBSWARM_AUTHENTICATOR", "GitHub"),
    ("HUBSWARM_GATEWAY", "Yes"),
    ("HUBSWARM_GATEWAY", "off"),
    ("HUBSWARM_GATEWAY", ""),
    ("HUBSWARM_DOMAIN", "Hub.Example.COM"),
    ("HUBSWARM_DOMAIN", "hub.example.com."),
    ("HUBSWARM_DOMAIN", "hub"),
    ("HUBSWARM_DOMAIN", "xn--bcher-kva.example"),
    ("HUBSWARM_DOMAIN", "a" * 63 + ".example.com"),
    ("HUBSWARM_LETSENCRYPT_DOMAINS", "www.example.com, Example.com,"),
    ("HUBSWARM_LETSENCRYPT_EMAIL", "first.last+hub@example.com"),
    ("HUBSWARM_ACME_SERVER", "https://10.213.0.1:14000/dir"),
    ("HUBSWARM_ACME_SERVER", "https://acme-staging-v02.api.letsencrypt.org/directory"),
    ("HUBSWARM_MEM_LIMIT", "2G"),
    ("HUBSWARM_MEM_LIMIT", "512m"),
    ("HUBSWARM_MEM_LIMIT", "1.5G"),
    ("HUBSWARM_MEM_LIMIT", "2147483648"),
    ("HUBSWARM_MEM_LIMIT", "6M"),
    ("HUBSWARM_LAUNCH_TIMEOUT", "900"),
    ("HUBSWARM_CULL_MAX_AGE", "0"),
    ("HUBSWARM_ACTIVE_SERVER_LIMIT", " 150 "),
    ("HUBSWARM_IMAGE", "hubswarm/singleuser:6.1.1"),
    ("HUBSWARM_IMAGE", "quay.io/jupyter/base-notebook:2024-10-07"),
    ("HUBSWARM_IMAGE", "localhost:5000/team/image"),
    ("HUBSWARM_IMAGE", "registry.example.com:443/a_b/c__d/e-f.g:Tag_1"),
    ("HUBSWARM_IMAGE", "debian@sha256:" + "a" * 64),
    ("HUBSWARM_IMAGE", "debian:12@sha256:" + "0" * 64),
    ("HUBSWARM_IMAGE_BASE", "hubswarm-lab:0123abcd"),
    ("HUBSWARM_TAG_CLUSTER", "team/cluster@x"),
    ("HUBSWARM_TAG_ROLE", "Rolle Ö"),
    ("HUBSWARM_CLUSTER", "prod-2"),
    ("HUBSWARM_CLUSTER", "c" * 237),
    ("HUBSWARM_HOMES_PATH", "/mnt/nfs/home/"),
    ("HUBSWARM_STATIC_ROOT", "/srv/www-2/site_a"),
    ("HUBSWARM_EFS", "fs-0123456789abcdef0.efs.us-west-2.amazonaws.com"),
    ("HUBSWARM_EFS", "10.0.1.20"),
    ("HUBSWARM_EFS", "None"),
    ("HUBSWARM_MANAGERS", "10.0.1.10, 10.0.1.11,10.0.1.12"),
    ("HUBSWARM_MANAGERS", "Hub,ip-10-0-1-11.us-west-2.compute.internal,abcdefghij0123456789klmno,"),
    ("HUBSWARM_MANAGERS", "hub"),
    ("HUBSWARM_MANAGERS", "hub,w1,w2,w3,w4"),
    ("HUBSWARM_VPC_ID", "vpc-0123456789abcdef0"),
    ("HUBSWARM_VPC_ID", "vpc-1a2b3c4d"),
    ("HUBSWARM_SUBNET_ID", "subnet-0123456789ABCDEF0"),
    ("HUBSWARM_AMI", "ami-12c6146b"),
    ("HUBSWARM_INSTANCE_TYPE", "c7i-flex.large"),
    ("HUBSWARM_INSTANCE_TYPE", "u-6tb1.metal"),
    ("HUBSWARM_KEY_NAME", "my key-pair_1"),
    ("AWS_DEFAULT_REGION", "us-gov-west-1"),
    ("AWS_DEFAULT_REGION", "ap-southeast-4"),
    ("HUBSWARM_SSH_USER", "ec2-user"),
    ("HUBSWARM_LAB_SUBNET", "10.213.0.0/24"),
    ("HUBSWARM_PROFILES", str(ROOT / "profiles.example.yaml")),
    ("HUBSWARM_ROUTE53_ZONE", "Z0123456789ABCDEFGHIJ"),
    ("HUBSWARM_ROUTE53_ZONE", "/hostedzone/z0123456789abcdefghij"),
    ("HUBSWARM_ROUTE53_ZONE", "Example.COM."),
    ("HUBSWARM_ROUTE53_ZONE", "hub.example.com"),
    ("HUBSWARM_HUB_AWS_ENDPOINTS", "http://10.213.0.1:5055"),
    ("HUBSWARM_HUB_AWS_ENDPOINTS", "s3=https://s3.example.com:9000/store,route_53=https://route53.example.com"),
    ("HUBSWARM_COURSE_ID", "cs101"),
    ("HUBSWARM_COURSE_ID", " CS-101_fall "),
    ("HUBSWARM_COURSE_ID", "1" + "c" * 63),
]


@pytest.mark.parametrize("name, value", GOOD, ids=[f"{n}={v[:30]!r}" for n, v in GOOD])
def test_a_good_setting_passes(name, value):
    assert problems(**{name: value}) == []


def test_the_managers_are_normalised_to_lower_case_names_without_blanks():
    assert section(HUBSWARM_MANAGERS=" Hub, 10.0.1.11,,Worker-2 ")["managers"] == "hub,10.0.1.11,worker-2"


def test_every_problem_is_listed_not_just_the_first():
    lines = problems(
        HUBSWARM_ADDRESS="bogus", HUBSWARM_MEM_LIMIT="lots", HUBSWARM_DOMAIN="x.example;id", HUBSWARM_GATEWAY="maybe"
    )
    # In the table's order, which is .env.example's.
    assert [line.split(":")[0] for line in lines] == [
        "HUBSWARM_DOMAIN",
        "HUBSWARM_ADDRESS",
        "HUBSWARM_GATEWAY",
        "HUBSWARM_MEM_LIMIT",
    ]


def test_the_lab_may_use_the_password_authenticator():
    assert problems(HUBSWARM_LAB="1") == []
    assert section(HUBSWARM_LAB="1")["authenticator"] == "password"


def test_env_example_and_the_readme_table_are_written_from_the_table():
    stale = docs.stale(ROOT)
    assert not stale, f"{', '.join(path.name for path in stale)}: run `{docs.WRITE_COMMAND}`"


def test_the_examples_of_env_example_pass():
    examples = dict(
        line.lstrip("#").split("=", 1)
        for line in (ROOT / ".env.example").read_text().splitlines()
        if line.startswith(("#HUBSWARM_", "#AWS_"))
    )
    for local_file in ("HUBSWARM_SSH_KEY", "HUBSWARM_ACME_CA_BUNDLE", "HUBSWARM_PROFILES"):
        examples.pop(local_file)
    assert len(examples) > 25
    assert problems(**examples) == []


def test_a_derived_default_has_words_and_an_example():
    derived = [s for s in SETTINGS if isinstance(s.default, Derived)]
    assert derived and all(s.default.text and s.example for s in derived)


@hypothesis_settings(max_examples=300)
@given(st.sampled_from(SETTINGS), st.text(max_size=80))
@example(SETTING["HUBSWARM_MEM_LIMIT"], "\u00b2")
@example(SETTING["HUBSWARM_LAUNCH_TIMEOUT"], "\u0663")
@example(SETTING["HUBSWARM_SSH_KEY"], "\n")
@example(SETTING["HUBSWARM_ACME_SERVER"], "https://[::1")
@example(SETTING["HUBSWARM_ACME_SERVER"], "https://[::1]:443/dir")
@example(SETTING["OAUTH_CALLBACK_URL"], "https://hub.example.com/\x7f")
@example(SETTING["HUBSWARM_HUB_PASSWORD"], "pass\nword-1")
def test_any_value_gives_lines_never_a_traceback(setting, value):
    if setting.key:
        lines = problems(**{setting.variable: value})
    else:  # the hub's env file: a value that passes is one line of text
        value = setting.kind.normalise(value)
        lines = [line for line in [setting.line(value)] if line]
        assert lines or not any(ord(c) < 32 or ord(c) == 127 for c in value)
    assert all(line.startswith((f"{setting.variable}: ", f"{setting.variable} ", "HUBSWARM_")) for line in lines)
    assert all("\n" not in line and "\r" not in line for line in lines)


# Anything a profile's key may hold in YAML: text (control characters too), numbers, lists...
YAML_VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=30)),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=6,
)
PROFILE_ENTRIES = st.one_of(
    st.dictionaries(st.sampled_from([*profiles.KEYS, "colour"]), YAML_VALUES, max_size=6),
    YAML_VALUES,
)


@hypothesis_settings(max_examples=300)
@given(st.one_of(st.lists(PROFILE_ENTRIES, max_size=4), YAML_VALUES).map(yaml.safe_dump) | st.text(max_size=80))
@example('- name: a\n  description: "\\u2028\\x1b[31m"\n  node_label: "gpu=true\\nx=y"\n')
def test_any_profiles_file_gives_lines_never_a_traceback(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("profiles") / "profiles.yaml"
    path.write_text(text)
    config = section(HUBSWARM_PROFILES=str(path))
    lines = validate.problems(config)
    assert all(line.startswith(f"HUBSWARM_PROFILES: {path}") and line.isprintable() for line in lines)
    if not lines:  # every key filled, exactly one the default
        found, _ = profiles.read(path, config)
        assert all(tuple(profile) == profiles.KEYS for profile in found)
        assert [profile["default"] for profile in found].count(True) == 1


@hypothesis_settings(max_examples=100)
@given(st.sampled_from([s for s in SETTINGS if s.kind.show == HIDDEN]), st.text(max_size=40), st.text(max_size=40))
def test_a_hidden_value_never_shows_in_its_line(setting, before, after):
    value = setting.kind.normalise(f"{before}SeCrEt§{after}")
    assert "SeCrEt§" not in setting.line(value)


def test_every_secret_goes_to_the_hub_env_file_only():
    secrets = [s.variable for s in SETTINGS if s.secret]
    assert secrets == [
        "OAUTH_CLIENT_SECRET",
        "HUBSWARM_METRICS_TOKEN",
        "HUBSWARM_HUB_PASSWORD",
        "HUBSWARM_HUB_ADMIN_PASSWORD",
    ]
    assert all(SETTING[v].hub_env and not SETTING[v].key and SETTING[v].kind.show == HIDDEN for v in secrets)


# --- normalised values ------------------------------------------------------------------


def test_names_and_choices_are_lower_cased_flags_are_booleans():
    values = section(
        HUBSWARM_ADDRESS="Public",
        HUBSWARM_IMAGE_SOURCE="PUSH",
        HUBSWARM_AUTHENTICATOR="GitHub",
        HUBSWARM_DOMAIN="Hub.Example.COM.",
        HUBSWARM_STATIC_DOMAIN="Example.com",
        HUBSWARM_LETSENCRYPT_DOMAINS=" WWW.example.com ,, Other.example.org ",
        HUBSWARM_EFS="NONE",
        HUBSWARM_GATEWAY="Yes",
        HUBSWARM_CHECK="off",
        HUBSWARM_MEM_LIMIT="512m",
    )
    assert (values["address"], values["image_source"], values["authenticator"]) == ("public", "push", "github")
    assert (values["domain"], values["static_domain"]) == ("hub.example.com", "example.com")
    assert values["letsencrypt_domains"] == "www.example.com,other.example.org"
    assert values["efs"] == "none"
    assert values["gateway"] is True and values["check"] is False
    assert values["mem_limit"] == "512M"


@pytest.mark.parametrize(
    "given, kept",
    [("Internet", "internet"), (" NONE ", "none"), ("198.51.100.7, 10.1.0.0/16,", "198.51.100.7/32,10.1.0.0/16")],
)
def test_notebook_egress_is_a_word_or_networks(given, kept):
    assert section(HUBSWARM_NOTEBOOK_EGRESS=given)["notebook_egress"] == kept


@pytest.mark.parametrize(
    "given, kept",
    [
        ("", ""),
        (" http://10.213.0.1:5055 ", "http://10.213.0.1:5055"),
        ("S3 = https://s3.example.com, http://10.0.0.1,", "s3=https://s3.example.com,http://10.0.0.1"),
        ("https://api.example.com/?a=b", "https://api.example.com/?a=b"),  # a "=" of the URL's own
    ],
)
def test_the_hubs_aws_endpoints_are_urls_and_service_url_pairs(given, kept):
    assert section(HUBSWARM_HUB_AWS_ENDPOINTS=given)["hub_aws_endpoints"] == kept


@pytest.mark.parametrize(
    "value, on", [(None, True), ("", True), (" ", True), ("1", True), ("Off", False), ("0", False)]
)
def test_security_updates_are_on_unless_turned_off(value, on):
    env = {} if value is None else {"HUBSWARM_SECURITY_UPDATES": value}
    assert section(**env)["security_updates"] is on
    assert problems(**env) == []


def test_a_memory_size_in_bytes_becomes_a_number_jupyterhub_takes_as_bytes():
    # A string needs a K/M/G/T suffix in JupyterHub's ByteSpecification; a number is bytes.
    assert section(HUBSWARM_MEM_LIMIT="2147483648")["mem_limit"] == 2147483648


def test_home_is_expanded_in_every_local_path():
    home = os.path.expanduser("~")
    config = settings.defaults(
        {
            "HUBSWARM_SSH_KEY": "~/.ssh/aws.pem",
            "HUBSWARM_KNOWN_HOSTS": "~/.ssh/kh",
            "HUBSWARM_USERLIST": "~/userlist",
            "HUBSWARM_NOTEBOOKS": "~/nb",
            "HUBSWARM_ACME_CA_BUNDLE": "~/ca.pem",
        }
    )
    values = config["hubswarm"]
    assert config["connect_kwargs"]["key_filename"] == [f"{home}/.ssh/aws.pem"]
    assert values["ssh"]["key"] == f"{home}/.ssh/aws.pem"
    assert values["ssh"]["known_hosts"] == f"{home}/.ssh/kh"
    assert (values["userlist"], values["notebooks"], values["acme_ca_bundle"]) == (
        f"{home}/userlist",
        f"{home}/nb",
        f"{home}/ca.pem",
    )


def test_an_existing_key_file_passes(tmp_path):
    key = tmp_path / "aws.pem"
    key.write_text("key")
    assert problems(HUBSWARM_SSH_KEY=str(key)) == []
    assert problems(HUBSWARM_SSH_KEY=str(tmp_path)) == [
        f"HUBSWARM_SSH_KEY: key file {tmp_path} is not a file: point it at the private key of the instances' key pair"
    ]


def test_known_hosts_must_not_be_a_folder(tmp_path):
    assert problems(HUBSWARM_KNOWN_HOSTS=str(tmp_path / "missing")) == []
    [line] = problems(HUBSWARM_KNOWN_HOSTS=str(tmp_path))
    assert line.startswith("HUBSWARM_KNOWN_HOSTS: ") and "is a folder" in line


# --- run_of: the one place every task goes through ---------------------------------


def fab_config(**env):
    return Config(
        overrides={"hubswarm": section(**env), **{k: v for k, v in settings.defaults({}).items() if k != "hubswarm"}}
    )


def configure(config):
    """The first task of an invocation with ``config``: its run."""
    return run_of(SimpleNamespace(config=config))


def named(config, *hosts):
    """A task's context in ``fab -H HOSTS``, as the Executor hands it ``config``."""
    object.__setattr__(config, HOSTS_ATTRIBUTE, hosts)
    return SimpleNamespace(config=config)


class NoConnection(Connection):
    def open(self):
        raise AssertionError("a connection was opened")


def test_configure_stops_with_every_line_and_exit_1():
    with pytest.raises(Exit) as stop:
        configure(fab_config(HUBSWARM_ADDRESS="bogus", HUBSWARM_MEM_LIMIT="lots"))
    assert stop.value.code == 1
    assert stop.value.message.splitlines() == [
        "HUBSWARM_ADDRESS: 'bogus' is not one of private, public, dns: set it to one of them",
        "HUBSWARM_MEM_LIMIT: 'lots' is not a memory size: write a number with K, M, G or T (e.g. 2G), or bytes",
    ]


def test_configure_normalises_and_checks_fabric_yaml_values_too():
    config = fab_config()
    config.hubswarm.address = "PUBLIC"  # as fabric.yaml's hubswarm: section would set it
    config.hubswarm.ssh.accept_new_host_keys = "yes"
    configure(config)
    assert config.hubswarm.address == "public" and config.hubswarm.ssh.accept_new_host_keys is True
    config = fab_config()
    config.hubswarm.image_source = "registry"
    with pytest.raises(Exit, match="HUBSWARM_IMAGE_SOURCE: 'registry' is not one of push, pull"):
        configure(config)


@pytest.fixture
def no_connection(monkeypatch):
    """-H hosts become connections that must not be opened."""
    monkeypatch.setattr(invocation, "Connection", NoConnection)


def test_a_host_task_with_bad_settings_opens_no_connection(no_connection):
    c = named(fab_config(HUBSWARM_DOMAIN="x.example;id"), "203.0.113.5")
    with pytest.raises(Exit, match="^HUBSWARM_DOMAIN: 'x.example;id' is not a DNS host name"):
        hosts_for(c, "hub")


def test_a_task_chain_shares_one_run_and_check_mode_holds_for_it_only():
    from tasks.ops import workflows

    config = fab_config(HUBSWARM_KNOWN_HOSTS="/tmp/kh")
    workflows.check.body(SimpleNamespace(config=config))  # fab check setup-hub: one config, two tasks
    run = configure(config)
    assert run.check is True and run is configure(config)
    assert run.known_hosts == "/tmp/kh" and run.connection_config is config
    assert configure(fab_config()).check is False  # the next invocation starts afresh
    assert configure(fab_config(HUBSWARM_CHECK="1")).check is True


# --- the lab's settings apply to lab hosts only ---------------------------------------

LAB = {"HUBSWARM_LAB": "1", "HUBSWARM_LAB_SUBNET": "10.213.0.0/24"}


@pytest.mark.parametrize(
    "addresses, outside",
    [
        (["10.213.0.10", "10.213.0.11"], ""),
        (["203.0.113.5"], "203.0.113.5 is not a lab host"),
        (["10.213.0.10", "hub.example.com", "10.213.1.5"], "hub.example.com, 10.213.1.5 are not lab hosts"),
        (["localhost"], "localhost is not a lab host"),
    ],
)
def test_lab_problem(addresses, outside):
    line = validate.lab_problem(section(**LAB), addresses)
    if not outside:
        assert line == ""
        return
    assert line == (
        f"the lab is up (.lab/lab.env) and its settings apply to lab hosts only: {outside} (10.213.0.0/24); "
        "run `fab lab.down`, or set HUBSWARM_LAB=0 to ignore the lab"
    )


def test_without_a_lab_any_host_is_fine():
    assert validate.lab_problem(section(), ["203.0.113.5"]) == ""


def test_a_real_host_with_the_lab_up_stops_before_connecting(no_connection):
    c = named(fab_config(**LAB), "10.213.0.10", "203.0.113.5")
    with pytest.raises(Exit, match=r"^the lab is up .*: 203\.0\.113\.5 is not a lab host") as stop:
        hosts_for(c, "hub")
    assert stop.value.code == 1


def test_a_gateway_outside_the_lab_is_refused_too(monkeypatch):
    config = fab_config(**LAB)
    gateway = NoConnection("198.51.100.7", config=config)
    found = NoConnection("10.213.0.11", config=config, gateway=gateway)
    monkeypatch.setattr(inventory, "connections", lambda run, role: [found])
    with pytest.raises(Exit, match="198.51.100.7 is not a lab host"):
        hosts_for(SimpleNamespace(config=config), "worker")


def test_lab_hosts_are_targets(no_connection):
    hosts = hosts_for(named(fab_config(**LAB), "10.213.0.10", "admin@10.213.0.11:2222"), "hub")
    assert [h.name for h in hosts] == ["10.213.0.10", "10.213.0.11:2222"]
    assert hosts[1].connection.user == "admin"


def test_the_gateway_is_checked_before_it_is_opened(monkeypatch):
    hub = inventory.Instance("hub", "i-1", "hub", "172.31.0.5", "203.0.113.9", "", "running")
    monkeypatch.setattr(inventory, "found", lambda run, role: [hub])
    monkeypatch.setattr(Host, "open", lambda self: pytest.fail("opened"))
    with pytest.raises(HubswarmError, match="172.31.0.5 is not a lab host"):
        inventory.gateway_for(configure(fab_config(**LAB)))


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


@pytest.fixture
def project(tmp_path):
    write(
        tmp_path / ".lab" / "lab.env",
        'HUBSWARM_LAB="1"\nHUBSWARM_LAB_SUBNET="10.213.0.0/24"\nHUBSWARM_SSH_USER="admin"\n',
    )
    write(tmp_path / ".env", "HUBSWARM_SSH_USER=ec2-user\nHUBSWARM_DOMAIN=hub.example.com\n")
    return tmp_path


def test_a_running_lab_wins_over_dotenv(project):
    environ = {}
    assert settings.load_environment(project, environ) == project / ".lab" / "lab.env"
    assert environ["HUBSWARM_SSH_USER"] == "admin" and environ["HUBSWARM_LAB_SUBNET"] == "10.213.0.0/24"
    assert environ["HUBSWARM_DOMAIN"] == "hub.example.com"


@pytest.mark.parametrize("where", ["environment", ".env"])
def test_hubswarm_lab_0_ignores_the_lab(project, where):
    environ = {}
    if where == "environment":
        environ["HUBSWARM_LAB"] = "0"
    else:
        write(project / ".env", "HUBSWARM_LAB=off\nHUBSWARM_SSH_USER=ec2-user\n")
    assert settings.load_environment(project, environ) is None
    assert environ["HUBSWARM_SSH_USER"] == "ec2-user" and "HUBSWARM_LAB_SUBNET" not in environ
    assert validate.lab_problem(settings.defaults(environ)["hubswarm"], ["203.0.113.5"]) == ""


def test_the_environment_wins_over_both(project):
    environ = {"HUBSWARM_SSH_USER": "me"}
    settings.load_environment(project, environ)
    assert environ["HUBSWARM_SSH_USER"] == "me"


# --- fab itself: one line per problem, exit 1 -------------------------------------------


@pytest.mark.parametrize(
    "task",
    [
        ["-H", "203.0.113.5", "install-nodejs"],
        ["join-workers"],
        ["hosts"],
        ["launch"],
        ["security-groups"],
        ["dns-records"],
        ["harden-metadata"],
        ["deploy"],
        ["push-image"],
        ["remove-worker", "--name", "w1"],
    ],
)
def test_fab_prints_one_line_per_problem_and_exits_1(task):
    run = run_fab(*task, HUBSWARM_ADDRESS="bogus", HUBSWARM_MEM_LIMIT="lots", HUBSWARM_SSH_KEY="/nonexistent.pem")
    assert run.returncode == 1, run.stderr
    assert run.stderr.splitlines() == [
        "HUBSWARM_ADDRESS: 'bogus' is not one of private, public, dns: set it to one of them",
        "HUBSWARM_SSH_KEY: key file /nonexistent.pem not found: point it at the private key of the instances' key pair",
        "HUBSWARM_MEM_LIMIT: 'lots' is not a memory size: write a number with K, M, G or T (e.g. 2G), or bytes",
    ]


# --- known_hosts with HUBSWARM_ACCEPT_NEW_HOST_KEYS=1 -----------------------------------


class SSHServer:
    """A local SSH server that lets any public key in and does nothing else; its host key can change."""

    def __init__(self):
        self.host_key = paramiko.ECDSAKey.generate()
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.transports = []
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        class Allow(paramiko.ServerInterface):
            def get_allowed_auths(self, username):
                return "publickey"

            def check_auth_publickey(self, username, key):
                return paramiko.AUTH_SUCCESSFUL

        while True:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            transport = paramiko.Transport(client)
            transport.add_server_key(self.host_key)
            self.transports.append(transport)
            with contextlib.suppress(Exception):  # the client refused the key: fine
                transport.start_server(server=Allow())

    def close(self):
        self.sock.close()
        for transport in self.transports:
            transport.close()


@pytest.fixture
def servers():
    made = []

    def factory():
        made.append(SSHServer())
        return made[-1]

    yield factory
    for server in made:
        server.close()


@pytest.fixture
def client_key(tmp_path):
    path = tmp_path / "id_ecdsa"
    paramiko.ECDSAKey.generate().write_private_key_file(str(path))
    return str(path)


def open_host(server, known_hosts, accept, client_key):
    config = Config(
        overrides={
            "connect_kwargs": {"key_filename": [client_key], "look_for_keys": False, "allow_agent": False},
            "timeouts": {"connect": 5},
        }
    )
    connection = Connection("127.0.0.1", port=server.port, user="admin", config=config)
    run_settings = Run(None, known_hosts=str(known_hosts), accept_new_host_keys=accept, recap=Recap(stream=None))
    host = Host(connection, f"127.0.0.1:{server.port}", run_settings)
    try:
        host.open()
    finally:
        connection.close()
    return host


def test_accept_new_host_keys_makes_known_hosts_and_saves_the_key(tmp_path, servers, client_key):
    server = servers()
    known = tmp_path / "new" / "ssh" / "known_hosts"
    open_host(server, known, True, client_key)
    assert stat.S_IMODE(known.stat().st_mode) == 0o600
    assert stat.S_IMODE(known.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(known.parent.parent.stat().st_mode) == 0o700
    saved = paramiko.HostKeys(str(known)).lookup(f"[127.0.0.1]:{server.port}")
    assert saved[server.host_key.get_name()] == server.host_key
    # The next run checks the saved key: no new-key trust needed...
    open_host(server, known, False, client_key)
    # ...and a changed key is refused.
    server.host_key = paramiko.ECDSAKey.generate()
    with pytest.raises(HubswarmError, match="has CHANGED since it was recorded"):
        open_host(server, known, True, client_key)


def test_without_accept_new_an_unknown_key_is_refused_and_nothing_is_written(tmp_path, servers, client_key):
    known = tmp_path / "known_hosts"
    with pytest.raises(HubswarmError, match="is unknown .*HUBSWARM_ACCEPT_NEW_HOST_KEYS=1"):
        open_host(servers(), known, False, client_key)
    assert not known.exists()


def test_unknown_host_key_is_rejected(tmp_path, servers, client_key):
    """Host.open's own policy decides (no fixture's): a known_hosts that lists other
    hosts only refuses this one, and a recorded key that differs is refused too."""
    server = servers()
    known = tmp_path / "known_hosts"
    other = Ed25519PrivateKey.generate().public_key().public_bytes(Encoding.OpenSSH, PublicFormat.OpenSSH).decode()
    kept = f"other.example.com {other}\n"
    known.write_text(kept)
    with pytest.raises(HubswarmError, match=f"host key of 127.0.0.1 is unknown \\(not in {known}\\)"):
        open_host(server, known, False, client_key)
    assert known.read_text() == kept
    recorded = paramiko.HostKeys()
    recorded.add(f"[127.0.0.1]:{server.port}", "ecdsa-sha2-nistp256", paramiko.ECDSAKey.generate())
    recorded.save(str(known))
    with pytest.raises(HubswarmError, match="has CHANGED since it was recorded"):
        open_host(server, known, False, client_key)


def test_keys_accepted_in_parallel_are_all_saved_and_other_lines_kept(tmp_path, servers, client_key):
    known = tmp_path / "known_hosts"
    other = Ed25519PrivateKey.generate().public_key().public_bytes(Encoding.OpenSSH, PublicFormat.OpenSSH).decode()
    kept = f"# my hosts\nother.example.com {other}"
    known.write_text(kept)  # no newline at the end
    many = [servers() for _ in range(6)]
    threads = [threading.Thread(target=open_host, args=(s, known, True, client_key)) for s in many]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    text = known.read_text()
    assert text.startswith(kept + "\n") and text.count("\n") == 1 + len(many) + 1
    keys = paramiko.HostKeys(str(known))
    for server in many:
        assert keys.lookup(f"[127.0.0.1]:{server.port}")[server.host_key.get_name()] == server.host_key


def test_a_missing_key_file_is_named_not_an_unreachable_host(tmp_path):
    connection = SimpleNamespace(
        host="203.0.113.5",
        port=22,
        client=paramiko.SSHClient(),
        connect_kwargs={"key_filename": [str(tmp_path / "aws.pem")]},
        open=lambda: pytest.fail("opened"),
    )
    host = Host(connection, "203.0.113.5", Run(None, recap=Recap(stream=None)))
    with pytest.raises(HubswarmError) as err:
        host.open()
    assert str(err.value) == (
        f"HUBSWARM_SSH_KEY: key file {tmp_path / 'aws.pem'} not found: point it at the private key of the "
        "instances' key pair"
    )
