"""Every setting checked before any host is touched: one line per problem.

:func:`problems` reads the run's ``hubswarm`` config section (what
:func:`tasks.settings.defaults` made of the environment, plus any
``fabric.yaml`` override) and returns one line per bad setting, naming the
variable and the fix. :func:`tasks.core.run.configure`, which every task goes
through before it opens a connection, stops the run when there is any.

:func:`normalise` (lower-cased names and choices, ``~`` expanded, flags as
booleans) runs first, in ``settings.defaults`` and again in ``configure``.
"""

import ipaddress
import os
import re
from urllib.parse import urlsplit

from .auth import AUTHENTICATORS, PASSWORD
from .core import fail
from .names import dns_problem

TRUE_WORDS = ("1", "true", "yes", "on")
FALSE_WORDS = ("", "0", "false", "no", "off")
CHOICES = {
    "address": ("private", "public", "dns"),
    "image_source": ("push", "pull"),
    "image_pull": ("missing", "always"),
    "authenticator": AUTHENTICATORS,
}
NO_EFS = "none"
# Docker refuses a container memory limit under 6 MiB.
MEM_MINIMUM = 6 * 1024**2
MEM_UNITS = {"K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}
# The longest cluster name that still fits a security group name: hubswarm-<cluster>-internal.
SECURITY_GROUP_NAME_MAX = 255

# (config path, variable, kind): every setting a run reads from the environment.
FIELDS = [
    (("cluster",), "HUBSWARM_CLUSTER", "cluster"),
    (("region",), "AWS_DEFAULT_REGION", "region"),
    (("tags", "cluster_key"), "HUBSWARM_TAG_CLUSTER", "tag_key"),
    (("tags", "role_key"), "HUBSWARM_TAG_ROLE", "tag_key"),
    (("address",), "HUBSWARM_ADDRESS", "choice"),
    (("gateway",), "HUBSWARM_GATEWAY", "flag"),
    (("ssh", "user"), "HUBSWARM_SSH_USER", "login"),
    (("ssh", "key"), "HUBSWARM_SSH_KEY", "key_file"),
    (("ssh", "known_hosts"), "HUBSWARM_KNOWN_HOSTS", "known_hosts"),
    (("ssh", "accept_new_host_keys"), "HUBSWARM_ACCEPT_NEW_HOST_KEYS", "flag"),
    (("check",), "HUBSWARM_CHECK", "flag"),
    (("lab",), "HUBSWARM_LAB", "flag"),
    (("lab_subnet",), "HUBSWARM_LAB_SUBNET", "network"),
    (("domain",), "HUBSWARM_DOMAIN", "dns"),
    (("authenticator",), "HUBSWARM_AUTHENTICATOR", "choice"),
    (("userlist",), "HUBSWARM_USERLIST", "local_path"),
    (("image",), "HUBSWARM_IMAGE", "image"),
    (("mem_limit",), "HUBSWARM_MEM_LIMIT", "memory"),
    (("mem_guarantee",), "HUBSWARM_MEM_GUARANTEE", "memory_or_none"),
    (("cpu_limit",), "HUBSWARM_CPU_LIMIT", "cpus"),
    (("cpu_guarantee",), "HUBSWARM_CPU_GUARANTEE", "cpus"),
    (("pids_limit",), "HUBSWARM_PIDS_LIMIT", "count"),
    (("image_source",), "HUBSWARM_IMAGE_SOURCE", "choice"),
    (("image_pull",), "HUBSWARM_IMAGE_PULL", "choice"),
    (("image_base",), "HUBSWARM_IMAGE_BASE", "image"),
    (("hub_takes_notebooks",), "HUBSWARM_HUB_TAKES_NOTEBOOKS", "flag"),
    (("notebook_egress",), "HUBSWARM_NOTEBOOK_EGRESS", "egress"),
    (("security_updates",), "HUBSWARM_SECURITY_UPDATES", "flag"),
    (("homes_path",), "HUBSWARM_HOMES_PATH", "remote_path"),
    (("efs",), "HUBSWARM_EFS", "efs"),
    (("notebooks",), "HUBSWARM_NOTEBOOKS", "local_path"),
    (("config_d",), "HUBSWARM_CONFIG_D", "local_path"),
    (("cull_idle",), "HUBSWARM_CULL_IDLE", "seconds"),
    (("cull_max_age",), "HUBSWARM_CULL_MAX_AGE", "count"),
    (("concurrent_spawn_limit",), "HUBSWARM_CONCURRENT_SPAWN_LIMIT", "count"),
    (("active_server_limit",), "HUBSWARM_ACTIVE_SERVER_LIMIT", "count"),
    (("named_servers",), "HUBSWARM_NAMED_SERVERS", "flag"),
    (("letsencrypt_domains",), "HUBSWARM_LETSENCRYPT_DOMAINS", "dns_list"),
    (("letsencrypt_email",), "HUBSWARM_LETSENCRYPT_EMAIL", "email"),
    (("acme_server",), "HUBSWARM_ACME_SERVER", "https_url"),
    (("acme_ca_bundle",), "HUBSWARM_ACME_CA_BUNDLE", "ca_file"),
    (("static_domain",), "HUBSWARM_STATIC_DOMAIN", "dns"),
    (("static_root",), "HUBSWARM_STATIC_ROOT", "remote_path"),
    (("vpc_id",), "HUBSWARM_VPC_ID", "vpc"),
    (("subnet_id",), "HUBSWARM_SUBNET_ID", "subnet"),
    (("ami",), "HUBSWARM_AMI", "ami"),
    (("instance_type",), "HUBSWARM_INSTANCE_TYPE", "instance_type"),
    (("key_name",), "HUBSWARM_KEY_NAME", "key_name"),
    (("launch_timeout",), "HUBSWARM_LAUNCH_TIMEOUT", "seconds"),
]
VARIABLES = {path: name for path, name, _ in FIELDS}

_MISSING = object()


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


# --- normalising -------------------------------------------------------------


def _name(value):
    value = str(value).strip().lower()
    return value[:-1] if len(value) > 1 and value.endswith(".") else value


def _memory(value):
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value
    text = str(value).strip()
    if re.fullmatch(r"[0-9]+", text):
        return int(text)  # bytes: rendered as a number, which JupyterHub takes as bytes
    if text[-1:].lower() in ("k", "m", "g", "t"):
        return text[:-1] + text[-1].upper()
    return text


def _flag(value):
    parsed = as_flag(value)
    return value if parsed is None else parsed  # a bad word stays, for problems() to name


def _egress(value):
    words = [w.strip().lower() for w in str(value).split(",") if w.strip()]
    try:
        return ",".join(str(ipaddress.IPv4Network(w, strict=False)) for w in words)
    except ValueError:
        return ",".join(words)  # a bad word stays, for problems() to name


def home_path(value):
    """``value`` with ``~`` expanded; one expanduser cannot read (a NUL, from a .env file)
    stays as it is, for the checks to name."""
    value = str(value)
    return value if "\x00" in value else os.path.expanduser(value)


NORMALISE = {
    "choice": lambda v: str(v).strip().lower(),
    "flag": _flag,
    "dns": _name,
    "dns_list": lambda v: ",".join(_name(d) for d in str(v).split(",") if d.strip()),
    "efs": _name,
    "local_path": lambda v: home_path(v) if v else v,
    "key_file": lambda v: home_path(v) if v else v,
    "known_hosts": lambda v: home_path(v) if v else v,
    "ca_file": lambda v: home_path(v) if v else v,
    "memory": _memory,
    "memory_or_none": _memory,
    "cpus": lambda v: str(v).strip(),
    "region": lambda v: str(v).strip().lower(),
    "vpc": lambda v: str(v).strip().lower(),
    "subnet": lambda v: str(v).strip().lower(),
    "ami": lambda v: str(v).strip().lower(),
    "instance_type": lambda v: str(v).strip().lower(),
    "image": lambda v: str(v).strip(),
    "egress": _egress,
    "email": lambda v: str(v).strip(),
    "https_url": lambda v: str(v).strip(),
    "seconds": lambda v: str(v).strip(),
    "count": lambda v: str(v).strip(),
    "network": lambda v: str(v).strip(),
}


def _get(section, path):
    for key in path:
        try:
            section = section[key]
        except (KeyError, TypeError):
            return _MISSING
    return section


def normalise(section):
    """Normalise ``section`` in place (a dict or invoke's config proxy); returns it."""
    for path, _, kind in FIELDS:
        value = _get(section, path)
        if value is _MISSING or value is None or kind not in NORMALISE:
            continue
        new = NORMALISE[kind](value)
        if new != value or type(new) is not type(value):
            holder = _get(section, path[:-1]) if len(path) > 1 else section
            holder[path[-1]] = new
    return section


# --- checking ----------------------------------------------------------------


_EMAIL_LOCAL = re.compile(r"[A-Za-z0-9!#$%&*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&*+/=?^_`{|}~-]+)*")


def email_problem(value):
    local, at, domain = value.rpartition("@")
    if not at or not local or len(local) > 64 or not _EMAIL_LOCAL.fullmatch(local):
        return "is not an email address (name@example.com)"
    if "." not in domain or dns_problem(domain):
        return f"is not an email address: its domain {domain!r} is not a DNS name"
    return ""


def _bad_characters(value):
    return any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 or ch in "\"'`\\<>" for ch in value)


def https_url_problem(value):
    if _bad_characters(value):
        return "has whitespace, quotes or control characters"
    try:
        parts = urlsplit(value)
    except ValueError as exc:
        return f"is not a URL ({exc})"
    if parts.scheme != "https":
        return "is not an https:// URL"
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


def _aws_id(prefix, what, example):
    def check(value):
        if value and not re.fullmatch(rf"{prefix}-(?:[0-9a-f]{{8}}|[0-9a-f]{{17}})", value):
            return f"is not {what} id (e.g. {example})"
        return ""

    return check


def _simple(pattern, message):
    def check(value):
        return "" if not value or re.fullmatch(pattern, value) else message

    return check


def _path(value):
    """A local path as it can be shown on one line."""
    return value if value.isprintable() else repr(value)


def _file(what, fix):
    def check(value):
        if not value:
            return ""
        if not os.path.exists(value):
            return f"{what} {_path(value)} not found: {fix}"
        if not os.path.isfile(value):
            return f"{what} {_path(value)} is not a file: {fix}"
        if not os.access(value, os.R_OK):
            return f"{what} {_path(value)} cannot be read: check its owner and mode"
        return ""

    return check


def known_hosts_problem(value):
    if value and os.path.isdir(value):
        return f"{_path(value)} is a folder: point it at a known_hosts file"
    return ""


def seconds_problem(value):
    if not re.fullmatch(r"[0-9]+", value) or int(value) <= 0:
        return "is not a whole number of seconds above 0 (e.g. 600)"
    return ""


def memory_or_none_problem(value):
    return "" if value in (0, "0", "") else memory_problem(value)


def cpus_problem(value):
    if not re.fullmatch(r"[0-9]+(?:\.[0-9]+)?", value):
        return "is not a number of CPUs (e.g. 1.5; 0 for none)"
    return ""


def count_problem(value):
    if not re.fullmatch(r"[0-9]+", value):
        return "is not a whole number (0 for no limit)"
    return ""


def network_problem(value):
    if not value:
        return ""
    try:
        ipaddress.ip_network(value, strict=False)
        return ""
    except ValueError:
        return "is not a network (e.g. 10.213.0.0/24): run `fab lab.up` again to rewrite .lab/lab.env"


def egress_problem(value):
    if value in ("internet", "none"):
        return ""
    for word in value.split(","):
        try:
            ipaddress.IPv4Network(word, strict=False)
        except ValueError:
            return f"{word!r} is not internet, none or an IPv4 network"
    return "" if value else "is empty"


def dns_list_problem(value):
    for name in value.split(","):
        problem = dns_problem(name) if name else ""
        if problem:
            return f"{name!r} is not a DNS host name: {problem}"
    return ""


CHECKS = {
    "cluster": cluster_problem,
    "region": _simple(r"[a-z]{2}(?:-[a-z]+)+-[0-9]{1,2}", "is not an AWS region name (e.g. us-west-2)"),
    "tag_key": tag_key_problem,
    "login": _simple(r"[A-Za-z_][A-Za-z0-9_.-]{0,31}", "is not a login name (e.g. admin, ec2-user, ubuntu)"),
    "key_file": _file("key file", "point it at the private key of the instances' key pair"),
    "known_hosts": known_hosts_problem,
    "network": network_problem,
    "dns": lambda v: f"is not a DNS host name: {dns_problem(v)}" if v and dns_problem(v) else "",
    "dns_list": dns_list_problem,
    "egress": egress_problem,
    "email": lambda v: email_problem(v) if v else "",
    "https_url": https_url_problem,
    "ca_file": _file("CA file", "point it at the ACME server's CA certificate"),
    "image": image_problem,
    "memory": memory_problem,
    "memory_or_none": memory_or_none_problem,
    "cpus": cpus_problem,
    "remote_path": remote_path_problem,
    "efs": efs_problem,
    "vpc": _aws_id("vpc", "a VPC", "vpc-0123456789abcdef0"),
    "subnet": _aws_id("subnet", "a subnet", "subnet-0123456789abcdef0"),
    "ami": _aws_id("ami", "an AMI", "ami-0123456789abcdef0"),
    "instance_type": _simple(r"[a-z0-9]+(?:-[a-z0-9]+)*\.[a-z0-9]+", "is not an EC2 instance type (e.g. t3.medium)"),
    "key_name": _simple(
        r"[\x21-\x7e](?:[\x20-\x7e]{0,253}[\x21-\x7e])?", "is not an EC2 key pair name (printable ASCII, up to 255)"
    ),
    "seconds": seconds_problem,
    "count": count_problem,
}

# What each kind of problem says to do, after the problem.
FIXES = {
    "dns": "set a DNS name such as hub.example.com",
    "dns_list": "list DNS names (such as www.example.com) separated by commas",
    "egress": "use internet, none, or IPv4 networks separated by commas (e.g. 198.51.100.0/24,203.0.113.7)",
}
# Kinds whose problem line names the value itself.
VALUE_IN_PROBLEM = ("key_file", "ca_file", "known_hosts", "dns_list")


def problems(section):
    """One line per bad setting of the ``hubswarm`` config ``section``: variable, problem, fix.

    Pure apart from looking at local files (SSH key, CA bundle, known_hosts) it names.
    """
    lines = []
    for path, name, kind in FIELDS:
        value = _get(section, path)
        if value is _MISSING or value is None:
            continue
        if kind == "flag":
            if as_flag(value) is None:
                lines.append(f"{name}: {value!r} is not a flag: use 1 or 0 (true/false, yes/no, on/off)")
            continue
        if kind == "choice":
            choices = CHOICES[path[-1]]
            if value not in choices:
                lines.append(f"{name}: {value!r} is not one of {', '.join(choices)}: set it to one of them")
            continue
        if kind not in CHECKS:
            continue
        problem = CHECKS[kind](value if kind.startswith("memory") else str(value))
        if problem:
            shown = "" if kind in VALUE_IN_PROBLEM else f"{value!r} "
            fix = f"; {FIXES[kind]}" if kind in FIXES else ""
            lines.append(f"{name}: {shown}{problem}{fix}")
    lines += _combinations(section)
    return lines


def checked(section):
    """``section`` normalised (fabric.yaml's values too), or the run stopped
    with one line per problem: what every task does before it touches a host."""
    normalise(section)
    lines = problems(section)
    if lines:
        fail("\n".join(lines))
    return section


def _combinations(section):
    lines = []
    limit, guarantee = _get(section, ("mem_limit",)), _get(section, ("mem_guarantee",))
    valid = limit is not _MISSING and not memory_problem(limit) and not memory_or_none_problem(guarantee)
    if valid and (memory_bytes(guarantee) or 0) > memory_bytes(limit):
        lines.append(
            f"HUBSWARM_MEM_GUARANTEE: {guarantee!r} is more than HUBSWARM_MEM_LIMIT ({limit!r}): "
            "guarantee at most the limit"
        )
    cpu_limit, cpu_guarantee = _get(section, ("cpu_limit",)), _get(section, ("cpu_guarantee",))
    if not cpus_problem(str(cpu_limit)) and not cpus_problem(str(cpu_guarantee)):
        if float(cpu_limit) and float(cpu_guarantee) > float(cpu_limit):
            lines.append(
                f"HUBSWARM_CPU_GUARANTEE: {cpu_guarantee!r} is more than HUBSWARM_CPU_LIMIT ({cpu_limit!r}): "
                "guarantee at most the limit"
            )
    if _get(section, ("authenticator",)) == PASSWORD and as_flag(_get(section, ("lab",))) is False:
        lines.append("HUBSWARM_AUTHENTICATOR: password is for the lab only: use google or github on a real cluster")
    cluster_key, role_key = _get(section, ("tags", "cluster_key")), _get(section, ("tags", "role_key"))
    if cluster_key is not _MISSING and cluster_key and cluster_key == role_key:
        lines.append(f"HUBSWARM_TAG_ROLE: {role_key!r} is HUBSWARM_TAG_CLUSTER's key too: use two different keys")
    return lines


# --- the lab's hosts ---------------------------------------------------------


def lab_problem(section, addresses):
    """One line when a running lab's settings are in force and an address is not a lab host, else ""."""
    subnet = _get(section, ("lab_subnet",))
    if subnet is _MISSING or not subnet:
        return ""
    network = ipaddress.ip_network(subnet, strict=False)
    outside = []
    for address in dict.fromkeys(addresses):
        try:
            inside = ipaddress.ip_address(address) in network
        except ValueError:  # a name: the lab's hosts are reached by address only
            inside = False
        if not inside:
            outside.append(address)
    if not outside:
        return ""
    which = f"{outside[0]} is not a lab host" if len(outside) == 1 else f"{', '.join(outside)} are not lab hosts"
    return (
        f"the lab is up (.lab/lab.env) and its settings apply to lab hosts only: {which} ({subnet}); "
        "run `fab lab.down`, or set HUBSWARM_LAB=0 to ignore the lab"
    )


def connection_addresses(connections):
    """Every address ``connections`` reach: each host and its gateway's."""
    for connection in connections:
        yield connection.host
        gateway = getattr(connection, "gateway", None)
        if gateway is not None and hasattr(gateway, "host"):
            yield gateway.host
