"""Every setting checked before any host is touched: one line per problem.

:func:`checked` normalises the run's ``hubswarm`` config section (what
:func:`tasks.settings.defaults` made of the environment, plus any
``fabric.yaml`` override) and stops the run with one line per bad setting,
naming the variable, the problem and the fix: each setting by its kind
(:mod:`tasks.settings.table`), then the rules between settings. Every task goes
through it (:func:`tasks.cli.invocation.run_of`) before it opens a connection.
"""

import ipaddress

from ..core import fail
from ..core.names import in_zone
from . import profiles
from .kinds import as_flag, cpus_over_limit, memory_over_limit, zone_by_name
from .table import CONFIG_SETTINGS, PASSWORD, SETTING

_MISSING = object()


def _get(section, path):
    for key in path:
        try:
            section = section[key]
        except (KeyError, TypeError):
            return _MISSING
    return section


def normalise(section):
    """Normalise ``section`` in place (a dict or invoke's config proxy); returns it."""
    for setting in CONFIG_SETTINGS:
        value = _get(section, setting.key)
        if value is _MISSING or value is None:
            continue
        new = setting.kind.normalise(value)
        if new != value or type(new) is not type(value):
            *holders, key = setting.key
            _get(section, holders)[key] = new
    return section


def problems(section):
    """One line per bad setting of the ``hubswarm`` config ``section`` (normalised): variable,
    problem, fix. Settings it lacks are left out, and so are the rules that read them.

    Pure apart from looking at local files (SSH key, CA bundle, known_hosts) it names.
    """
    lines = []
    for setting in CONFIG_SETTINGS:
        value = _get(section, setting.key)
        if value is not _MISSING and value is not None:
            lines.append(setting.line(value))
    for rule, variables in RULES:
        values = [_get(section, SETTING[variable].key) for variable in variables]
        if all(value is not _MISSING for value in values):
            lines.append(rule(*values))
    return [line for line in lines if line] + profile_problems(section)


def checked(section):
    """``section`` normalised (fabric.yaml's values too), or the run stopped
    with one line per problem: what every task does before it touches a host."""
    normalise(section)
    lines = problems(section)
    if lines:
        fail("\n".join(lines))
    return section


# --- rules between settings: each quiet when a setting it reads has a problem of its own ---


def _memory_guarantee_problem(limit, guarantee):
    if not memory_over_limit(limit, guarantee):
        return ""
    return f"HUBSWARM_MEM_GUARANTEE: {guarantee!r} is more than HUBSWARM_MEM_LIMIT ({limit!r}): guarantee at most the limit"


def _cpu_guarantee_problem(limit, guarantee):
    if not cpus_over_limit(limit, guarantee):
        return ""
    return f"HUBSWARM_CPU_GUARANTEE: {guarantee!r} is more than HUBSWARM_CPU_LIMIT ({limit!r}): guarantee at most the limit"


def _password_outside_the_lab(authenticator, lab):
    if authenticator == PASSWORD and as_flag(lab) is False:
        return "HUBSWARM_AUTHENTICATOR: password is for the lab only: use google or github on a real cluster"
    return ""


def _tag_keys_problem(cluster_key, role_key):
    if cluster_key and cluster_key == role_key:
        return f"HUBSWARM_TAG_ROLE: {role_key!r} is HUBSWARM_TAG_CLUSTER's key too: use two different keys"
    return ""


def _subdomains_need_a_domain(domain, single_origin):
    if domain or as_flag(single_origin) is not False:
        return ""
    return (
        "HUBSWARM_DOMAIN is not set, and each user's server needs a name of its own under the hub's: "
        "set HUBSWARM_DOMAIN (it and *.it pointing at the hub), "
        "or HUBSWARM_SINGLE_ORIGIN=1 to accept one origin for all (README: Security)"
    )


def _route53_zone_holds_the_domain(domain, zone):
    if not zone or SETTING["HUBSWARM_ROUTE53_ZONE"].line(zone) or SETTING["HUBSWARM_DOMAIN"].line(domain):
        return ""
    if not domain:
        return (
            "HUBSWARM_ROUTE53_ZONE: the records it keeps are HUBSWARM_DOMAIN's, which is not set: "
            "set HUBSWARM_DOMAIN to the hub's name in that zone, or unset HUBSWARM_ROUTE53_ZONE"
        )
    if zone_by_name(zone) and not in_zone(domain, zone):
        return (
            f"HUBSWARM_ROUTE53_ZONE: the zone {zone} does not hold HUBSWARM_DOMAIN ({domain}): "
            "set the zone that holds it"
        )
    return ""


def profile_problems(section):
    """One line per problem of the profiles file: quiet when there is none, or when the file
    itself has a problem (its setting's line names it) or a setting it reads is missing."""
    path = _get(section, SETTING["HUBSWARM_PROFILES"].key)
    if path in (_MISSING, None, "") or SETTING["HUBSWARM_PROFILES"].line(path):
        return []
    if any(_get(section, (key,)) is _MISSING for key in profiles.FROM_CLUSTER):
        return []
    return profiles.read(path, section)[1]


# (rule, the settings whose values it reads)
RULES = (
    (_memory_guarantee_problem, ("HUBSWARM_MEM_LIMIT", "HUBSWARM_MEM_GUARANTEE")),
    (_cpu_guarantee_problem, ("HUBSWARM_CPU_LIMIT", "HUBSWARM_CPU_GUARANTEE")),
    (_password_outside_the_lab, ("HUBSWARM_AUTHENTICATOR", "HUBSWARM_LAB")),
    (_tag_keys_problem, ("HUBSWARM_TAG_CLUSTER", "HUBSWARM_TAG_ROLE")),
    (_subdomains_need_a_domain, ("HUBSWARM_DOMAIN", "HUBSWARM_SINGLE_ORIGIN")),
    (_route53_zone_holds_the_domain, ("HUBSWARM_DOMAIN", "HUBSWARM_ROUTE53_ZONE")),
)


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
