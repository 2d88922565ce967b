"""Kinds of setting: how a value of each kind is written down, what is wrong with it, and the fix.

A :class:`Kind` owns its normalising (lower-cased names and choices, ``~``
expanded, flags as booleans) and its check, whose words follow the variable's
name in a problem line (see :meth:`tasks.settings.table.Setting.line`).
"""

import ipaddress
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlsplit

from ..core.names import dns_problem
from ..hubswarm_hub.backups import bucket_and_prefix

# How a problem line shows the value: quoted before the problem, named by the
# problem itself, or never (a secret's, or one that would not fit on the line).
QUOTED, NAMED, HIDDEN = "quoted", "named", "hidden"


@dataclass(frozen=True)
class Kind:
    """``check`` reads a normalised value and returns its problem, "" when there is none;
    ``fix`` follows every problem of the kind (after "; ")."""

    check: Callable[[Any], str]
    normalise: Callable[[Any], Any] = str
    fix: str = ""
    show: str = QUOTED
    # A blank variable means the default (a flag, the region), not an empty value.
    blank_is_unset: bool = False


def _stripped(value):
    return str(value).strip()


def _lowered(value):
    return str(value).strip().lower()


def _fine(value):
    return ""


def _matches(pattern, problem):
    def check(value):
        return "" if not value or re.fullmatch(pattern, value) else problem

    return check


def choice(*options):
    """One of ``options``, in any case."""

    def check(value):
        return "" if value in options else f"is not one of {', '.join(options)}: set it to one of them"

    return Kind(check, normalise=_lowered)


# The lab this process works on (tasks.lab): a blank one is the first.
LAB_SLOT = replace(choice(*"0123456789"), blank_is_unset=True)


# --- flags -----------------------------------------------------------------------------

TRUE_WORDS = ("1", "true", "yes", "on")
FALSE_WORDS = ("", "0", "false", "no", "off")


def as_flag(value):
    """True or False for a flag word (1/0, true/false, yes/no, on/off, empty); None otherwise."""
    if isinstance(value, bool):
        return value
    word = str(value if value is not None else "").strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    return None


def _flag(value):
    parsed = as_flag(value)
    return value if parsed is None else parsed  # a bad word stays, for its check to name


FLAG = Kind(
    lambda value: "" if as_flag(value) is not None else "is not a flag: use 1 or 0 (true/false, yes/no, on/off)",
    normalise=_flag,
    blank_is_unset=True,
)

# --- names -----------------------------------------------------------------------------


def _name(value):
    value = str(value).strip().lower()
    return value[:-1] if len(value) > 1 and value.endswith(".") else value


def _names(value):
    return ",".join(_name(name) for name in str(value).split(",") if name.strip())


def dns_list_problem(value):
    for name in value.split(","):
        problem = dns_problem(name) if name else ""
        if problem:
            return f"{name!r} is not a DNS host name: {problem}"
    return ""


DNS = Kind(
    lambda value: f"is not a DNS host name: {dns_problem(value)}" if value and dns_problem(value) else "",
    normalise=_name,
    fix="set a DNS name such as hub.example.com",
)
DNS_LIST = Kind(
    dns_list_problem,
    normalise=_names,
    fix="list DNS names (such as www.example.com) separated by commas",
    show=NAMED,
)

_EMAIL_LOCAL = re.compile(r"[A-Za-z0-9!#$%&*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&*+/=?^_`{|}~-]+)*")


def email_problem(value):
    local, at, domain = value.rpartition("@")
    if not at or not local or len(local) > 64 or not _EMAIL_LOCAL.fullmatch(local):
        return "is not an email address (name@example.com)"
    if "." not in domain or dns_problem(domain):
        return f"is not an email address: its domain {domain!r} is not a DNS name"
    return ""


EMAIL = Kind(lambda value: email_problem(value) if value else "", normalise=_stripped)


def _bad_characters(value):
    return any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 or ch in "\"'`\\<>" for ch in value)


def https_url_problem(value):
    return url_problem(value, ("https",))


def url_problem(value, schemes):
    """Why ``value`` is not a URL of one of ``schemes`` on a host (a name or an address), or ""."""
    if _bad_characters(value):
        return "has whitespace, quotes or control characters"
    try:
        parts = urlsplit(value)
    except ValueError as exc:
        return f"is not a URL ({exc})"
    if parts.scheme not in schemes:
        return f"is not an {' or '.join(f'{scheme}://' for scheme in schemes)} URL"
    try:
        _ = parts.port  # raises on a bad port
    except ValueError:
        return "has a bad port"
    host = parts.hostname or ""
    if not host:
        return "has no host name"
    try:
        ipaddress.ip_address(host)
        return ""
    except ValueError:
        problem = dns_problem(host)
        return f"host {host!r}: {problem}" if problem else ""


HTTPS_URL = Kind(https_url_problem, normalise=_stripped)
# Unset: the hub's own name (auth.callback_url).
CALLBACK_URL = Kind(
    lambda value: https_url_problem(value) if value else "",
    normalise=_stripped,
    fix="set it to the OAuth client's redirect URI (https://HUB/hub/oauth_callback), or leave it unset",
)

# Where the hub's own AWS clients go: one URL for every service, or SERVICE=URL for one (SERVICE
# as boto3 names it in AWS_ENDPOINT_URL_<SERVICE>: s3, route_53, ec2...).
_ENDPOINT_SERVICE = re.compile(r"[a-z0-9]+(?:_[a-z0-9]+)*")


def aws_endpoints(value):
    """[(service, URL)] of a HUBSWARM_HUB_AWS_ENDPOINTS, in its order; service "" for every service."""
    endpoints = []
    for entry in str(value).split(","):
        service, equals, url = entry.partition("=")
        if not equals or "://" in service:  # a URL of every service (its query may hold a "=")
            service, url = "", entry
        if entry.strip():
            endpoints.append((service.strip().lower(), url.strip()))
    return endpoints


def _aws_endpoints(value):
    return ",".join(f"{service}={url}" if service else url for service, url in aws_endpoints(value))


def aws_endpoints_problem(value):
    seen = set()
    for service, url in aws_endpoints(value):
        if service and not _ENDPOINT_SERVICE.fullmatch(service):
            return f"{service!r} is not a service as boto3 names it in AWS_ENDPOINT_URL_<SERVICE> (s3, route_53...)"
        if service in seen:
            return f"gives {service or 'every service'} two URLs"
        seen.add(service)
        problem = url_problem(url, ("http", "https"))
        if problem:
            return f"{url!r} {problem}"
    return ""


AWS_ENDPOINTS = Kind(
    aws_endpoints_problem,
    normalise=_aws_endpoints,
    fix="give a URL for every service, or SERVICE=URL pairs, separated by commas (or leave it unset: AWS's own)",
    show=NAMED,
)

# S3's rules for a new bucket's name; a key prefix of the characters S3 calls safe, none a
# wildcard of the policy that limits the hub to it.
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_KEY_PREFIX = re.compile(r"[A-Za-z0-9!_.'()-]+(?:/[A-Za-z0-9!_.'()-]+)*/")


def _backup_bucket(value):
    bucket, prefix = bucket_and_prefix(str(value))
    return f"{bucket}/{prefix}".rstrip("/") if bucket else ""


def backup_bucket_problem(value):
    if not value:
        return ""
    bucket, prefix = bucket_and_prefix(value)
    if not _BUCKET.fullmatch(bucket) or ".." in bucket or re.fullmatch(r"[0-9.]+", bucket):
        return f"{bucket!r} is not an S3 bucket name (3 to 63 lowercase letters, digits, dots and hyphens)"
    if prefix and not _KEY_PREFIX.fullmatch(prefix):
        return f"the prefix {prefix!r} may hold only letters, digits, / and !_.'()- (no empty part)"
    return ""


BACKUP_BUCKET = Kind(
    backup_bucket_problem,
    normalise=_backup_bucket,
    fix="name an S3 bucket, with a prefix after a / if you like (my-bucket or my-bucket/hubswarm)",
    show=NAMED,
)

# --- the cluster on EC2 ----------------------------------------------------------------

# The longest cluster name that still fits a security group name: hubswarm-<cluster>-internal.
SECURITY_GROUP_NAME_MAX = 255
_TAG_TEXT = re.compile(r"[\w .:/=+\-@]*")


def tag_text_problem(value, limit, what):
    if len(value) > limit:
        return f"is {len(value)} characters, more than the {limit} EC2 allows for a tag {what}"
    if not _TAG_TEXT.fullmatch(value):
        return f"may hold only letters, digits, spaces and _ . : / = + - @ (EC2 tag {what})"
    if value != value.strip():
        return "starts or ends with a space"
    return ""


def tag_key_problem(value):
    if not value:
        return "is empty: name the EC2 tag key"
    if value.lower().startswith("aws:"):
        return "starts with 'aws:', which AWS reserves: use your own prefix (e.g. hubswarm:)"
    if value == "Name":
        return "'Name' is the instances' name tag: use another key"
    return tag_text_problem(value, 128, "key")


def cluster_problem(value):
    if not value:
        return "is empty: name the cluster (its instances' tag value)"
    longest = SECURITY_GROUP_NAME_MAX - len("hubswarm--internal")
    if len(value) > longest:
        return f"is {len(value)} characters: at most {longest}, as it names the security groups"
    return tag_text_problem(value, 256, "value")


def _aws_id(prefix, what, example):
    return Kind(
        _matches(rf"{prefix}-(?:[0-9a-f]{{8}}|[0-9a-f]{{17}})", f"is not {what} id (e.g. {example})"),
        normalise=_lowered,
    )


CLUSTER = Kind(cluster_problem)
TAG_KEY = Kind(tag_key_problem)
REGION = Kind(
    _matches(r"[a-z]{2}(?:-[a-z]+)+-[0-9]{1,2}", "is not an AWS region name (e.g. us-west-2)"),
    normalise=_lowered,
    blank_is_unset=True,
)
VPC = _aws_id("vpc", "a VPC", "vpc-0123456789abcdef0")
SUBNET = _aws_id("subnet", "a subnet", "subnet-0123456789abcdef0")
AMI = _aws_id("ami", "an AMI", "ami-0123456789abcdef0")
INSTANCE_TYPE = Kind(
    _matches(r"[a-z0-9]+(?:-[a-z0-9]+)*\.[a-z0-9]+", "is not an EC2 instance type (e.g. t3.medium)"),
    normalise=_lowered,
)
KEY_NAME = Kind(
    _matches(
        r"[\x21-\x7e](?:[\x20-\x7e]{0,253}[\x21-\x7e])?", "is not an EC2 key pair name (printable ASCII, up to 255)"
    )
)
# Anything goes: boto3 names a profile it does not know.
TEXT = Kind(_fine)
# A folder's name in nbgrader's exchange and the course directory's, and a word of its config.
COURSE_ID = Kind(
    _matches(
        r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}",
        "is not a course id (letters, digits, '-' and '_', from a letter or digit, at most 64)",
    ),
    normalise=_stripped,
    fix="set the course's short name, e.g. cs101-fall",
)


def zone_by_name(zone):
    """Whether a HUBSWARM_ROUTE53_ZONE names its hosted zone by name (it has a dot), not by id."""
    return "." in zone


def _route53_zone(value):
    """An id upper-cased (without the ``/hostedzone/`` Route53 puts before it), a name lower-cased
    without its final dot (``example.com.`` and ``example.com`` are the same zone)."""
    text = str(value).strip().removeprefix("/hostedzone/")
    if not zone_by_name(text):
        return text.upper()
    text = text.lower()
    return text[:-1] if text.endswith(".") and zone_by_name(text[:-1]) else text


def route53_zone_problem(value):
    if not value:
        return ""
    if not zone_by_name(value):
        return "" if re.fullmatch(r"[A-Z0-9]{1,32}", value) else "is not a hosted zone id (letters and digits)"
    problem = dns_problem(value)
    return f"is not a hosted zone name: {problem}" if problem else ""


ROUTE53_ZONE = Kind(
    route53_zone_problem,
    normalise=_route53_zone,
    fix="set the id of the hosted zone that holds HUBSWARM_DOMAIN (Z0123456789ABCDEFGHIJ) or its name (example.com)",
)

# --- SSH and local files ---------------------------------------------------------------


def home_path(value):
    """``value`` with ``~`` expanded; one expanduser cannot read (a NUL, from a .env file)
    stays as it is, for the checks to name."""
    value = str(value)
    return value if "\x00" in value else os.path.expanduser(value)


def _local_path(value):
    return home_path(value) if value else value


def shown_path(value):
    """A local path as it can be shown on one line."""
    return value if value.isprintable() else repr(value)


def _file(what, fix):
    def check(value):
        if not value:
            return ""
        if not os.path.exists(value):
            return f"{what} {shown_path(value)} not found: {fix}"
        if not os.path.isfile(value):
            return f"{what} {shown_path(value)} is not a file: {fix}"
        if not os.access(value, os.R_OK):
            return f"{what} {shown_path(value)} cannot be read: check its owner and mode"
        return ""

    return Kind(check, normalise=_local_path, show=NAMED)


def known_hosts_problem(value):
    if value and os.path.isdir(value):
        return f"{shown_path(value)} is a folder: point it at a known_hosts file"
    return ""


LOGIN = Kind(_matches(r"[A-Za-z_][A-Za-z0-9_.-]{0,31}", "is not a login name (e.g. admin, ec2-user, ubuntu)"))
KEY_FILE = _file("key file", "point it at the private key of the instances' key pair")
CA_FILE = _file("CA file", "point it at the ACME server's CA certificate")
KNOWN_HOSTS = Kind(known_hosts_problem, normalise=_local_path, show=NAMED)
# Its content is checked with the cluster's settings it falls back on (tasks.settings.profiles).
PROFILES_FILE = _file(
    "profiles file", "point it at your profiles (see profiles.example.yaml), or leave it empty for none"
)
LOCAL_PATH = Kind(_fine, normalise=_local_path)


def network_problem(value):
    if not value:
        return ""
    try:
        ipaddress.ip_network(value, strict=False)
        return ""
    except ValueError:
        return "is not a network (e.g. 10.213.0.0/24): run `fab lab.up` again to rewrite .lab/lab.env"


NETWORK = Kind(network_problem, normalise=_stripped)

# --- the nodes -------------------------------------------------------------------------


def remote_path_problem(value):
    if not value.startswith("/"):
        return "is not an absolute path (it starts with /)"
    if not value.strip("/"):
        return "must not be / itself"
    if ".." in value.split("/"):
        return "has '..' in it"
    bad = sorted({ch for ch in value if not (ch.isascii() and (ch.isalnum() or ch in "/._-+@,="))})
    if bad:
        shown = " ".join(repr(ch) for ch in bad)
        return (
            f"has {shown}: use only letters, digits and / . _ - + @ , = (no whitespace, quotes or control characters)"
        )
    return ""


REMOTE_PATH = Kind(remote_path_problem)

# Homes on the hub only, no shared file system.
NO_EFS = "none"


def efs_problem(value):
    if not value or value == NO_EFS:
        return ""
    try:
        ipaddress.IPv4Address(value)
        return ""
    except ValueError:
        pass
    if re.fullmatch(r"[0-9.]+", value):
        return "is not a valid IPv4 address"
    problem = dns_problem(value)
    return f"is not the EFS DNS name, an IPv4 address or 'none': {problem}" if problem else ""


EFS = Kind(efs_problem, normalise=_name)

# How many managers a swarm has: an odd number, as its quorum is a majority of them (an even
# number survives no more lost than the odd number below it), and few (each one takes every change).
MANAGER_COUNTS = (1, 3, 5)


def _node_names(value):
    return ",".join(_lowered(word) for word in str(value).split(",") if word.strip())


def _ipv4(value):
    try:
        ipaddress.IPv4Address(value)
        return True
    except ValueError:
        return False


def managers_problem(value):
    names = value.split(",") if value else []
    for name in names:
        if not _ipv4(name) and dns_problem(name):
            return f"{name!r} is neither a node's address nor its name"
    if len(set(names)) < len(names):
        return "names a node twice"
    if names and len(names) not in MANAGER_COUNTS:
        return f"names {len(names)} nodes: a swarm has 1, 3 or 5 managers (an odd number keeps a quorum)"
    return ""


MANAGERS = Kind(
    managers_problem,
    normalise=_node_names,
    fix="name the hub and 2 or 4 workers (addresses or node names, separated by commas), "
    "or none for the hub and the first 2 ready workers",
)

# --- notebooks -------------------------------------------------------------------------

# Docker's reference grammar (github.com/distribution/reference, regexp.go).
_ALNUM = r"[a-z0-9]+"
_COMPONENT = rf"{_ALNUM}(?:(?:[._]|__|-+){_ALNUM})*"
_DOMAIN_PART = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"(?:{_DOMAIN_PART}(?:\.{_DOMAIN_PART})*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
IMAGE_REFERENCE = re.compile(
    rf"(?P<name>(?:(?P<domain>{_DOMAIN})/)?{_COMPONENT}(?:/{_COMPONENT})*)(?::{_TAG})?(?:@{_DIGEST})?", re.ASCII
)


def image_problem(value):
    if not value:
        return "is empty: name an image (repository[:tag])"
    match = IMAGE_REFERENCE.fullmatch(value)
    if not match:
        return "is not an image reference (e.g. hubswarm/singleuser:6.1.1 or registry.example.com/team/image:tag)"
    domain = match.group("domain") or ""
    if domain and not re.search(r"[.:\[]", domain) and domain != "localhost" and domain != domain.lower():
        return "has upper case in its repository name: use lower case"
    if len(match.group("name")) > 255:
        return "has a name longer than 255 characters"
    return ""


IMAGE = Kind(image_problem, normalise=_stripped)

# Docker refuses a container memory limit under 6 MiB.
MEM_MINIMUM = 6 * 1024**2
MEM_UNITS = {"K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}


def _memory(value):
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value
    text = str(value).strip()
    if re.fullmatch(r"[0-9]+", text):
        return int(text)  # bytes: rendered as a number, which JupyterHub takes as bytes
    if text[-1:].lower() in ("k", "m", "g", "t"):
        return text[:-1] + text[-1].upper()
    return text


def memory_bytes(value):
    """The size a memory setting names, in bytes; None when it names none."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return value
    match = re.fullmatch(r"([0-9]+(?:\.[0-9]+)?)([KMGT])", str(value))
    return float(match.group(1)) * MEM_UNITS[match.group(2)] if match else None


def memory_problem(value):
    if isinstance(value, bool):
        return "is not a memory size"
    size = memory_bytes(value)
    if size is None:
        return "is not a memory size: write a number with K, M, G or T (e.g. 2G), or bytes"
    if size < MEM_MINIMUM:
        return "is less than 6M, the least Docker gives a container"
    return ""


def memory_or_none_problem(value):
    return "" if value in (0, "0", "") else memory_problem(value)


def cpus_problem(value):
    if not re.fullmatch(r"[0-9]+(?:\.[0-9]+)?", value):
        return "is not a number of CPUs (e.g. 1.5; 0 for none)"
    return ""


def memory_over_limit(limit, guarantee):
    """The memory ``guarantee`` is more than ``limit``; False when either names no size of its kind."""
    if memory_problem(limit) or memory_or_none_problem(guarantee):
        return False
    return (memory_bytes(guarantee) or 0) > memory_bytes(limit)


def cpus_over_limit(limit, guarantee):
    """The CPUs ``guarantee`` are more than ``limit`` (0: none); False when either is no number of CPUs."""
    if cpus_problem(limit) or cpus_problem(guarantee):
        return False
    return float(limit) > 0 and float(guarantee) > float(limit)


def _egress(value):
    words = [w.strip().lower() for w in str(value).split(",") if w.strip()]
    try:
        return ",".join(str(ipaddress.IPv4Network(w, strict=False)) for w in words)
    except ValueError:
        return ",".join(words)  # a bad word stays, for its check to name


def egress_problem(value):
    if value in ("internet", "none"):
        return ""
    for word in value.split(","):
        try:
            ipaddress.IPv4Network(word, strict=False)
        except ValueError:
            return f"{word!r} is not internet, none or an IPv4 network"
    return "" if value else "is empty"


MEMORY = Kind(memory_problem, normalise=_memory)
MEMORY_OR_NONE = Kind(memory_or_none_problem, normalise=_memory)
CPUS = Kind(cpus_problem, normalise=_stripped)
EGRESS = Kind(
    egress_problem,
    normalise=_egress,
    fix="use internet, none, or IPv4 networks separated by commas (e.g. 198.51.100.0/24,203.0.113.7)",
)

# --- numbers ---------------------------------------------------------------------------


def seconds_problem(value):
    if not re.fullmatch(r"[0-9]+", value) or int(value) <= 0:
        return "is not a whole number of seconds above 0 (e.g. 600)"
    return ""


def count_problem(value):
    if not re.fullmatch(r"[0-9]+", value):
        return "is not a whole number (0 for no limit)"
    return ""


def seconds_or_off_problem(value):
    if not re.fullmatch(r"[0-9]+", value):
        return "is not a whole number of seconds (0: off)"
    return ""


def at_least_one_problem(value):
    if not re.fullmatch(r"[0-9]+", value) or int(value) < 1:
        return "is not a whole number above 0"
    return ""


SECONDS = Kind(seconds_problem, normalise=_stripped)
SECONDS_OR_OFF = Kind(seconds_or_off_problem, normalise=_stripped)
COUNT = Kind(count_problem, normalise=_stripped)
AT_LEAST_ONE = Kind(at_least_one_problem, normalise=_stripped)

# --- the hub's env file: one line each, secrets never shown --------------------------


def one_line_problem(value):
    """A line break would end the value's line of the hub's env file and start another variable there."""
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        return "holds a line break or another control character: copy the value again, as one line"
    return ""


def password(minimum):
    """A password of ``minimum`` characters or more, taken as it is written (spaces too)."""

    def check(value):
        if len(value) < minimum:
            return f"must be {minimum} or more characters: set it in .env (lab.up writes it into .lab/lab.env)"
        return one_line_problem(value)

    return Kind(check, show=HIDDEN)


def token(minimum):
    """A token of ``minimum`` or more letters, digits, '-', '_' or '.'; none is fine."""

    def check(value):
        if value and (len(value) < minimum or not all(c.isascii() and c.isalnum() or c in "-_." for c in value)):
            return f"must be {minimum} or more letters, digits, '-', '_' or '.': make one with `openssl rand -hex 32`"
        return ""

    return Kind(check, normalise=_stripped, show=HIDDEN)


ONE_LINE = Kind(one_line_problem, normalise=_stripped, show=HIDDEN)
