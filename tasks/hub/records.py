"""Whether the hub's DNS names point at it, as the hub itself resolves them: checked before a
certificate is asked for them, and before users' servers get names of their own under the hub's."""

import shlex

from ..core import HubswarmError, facts

PUBLIC_IPV4 = facts.instance_metadata("public-ipv4")
#: A name under the hub's: its wildcard record answers it as it answers every user's.
UNDER_THE_HUB = "hubswarm-dns-check"


def resolve_fact(domain):
    """The IPv4 addresses ``domain`` resolves to on the host."""
    return facts.Fact(
        f"resolve:{domain}",
        f"getent ahostsv4 {shlex.quote(domain)} | awk '{{print $1}}' | sort -u",
        parse=facts.words,
    )


def dns_problem(domain, resolved, hub_addresses, record=None):
    """A one-line error when ``domain`` does not point at the hub, else "". ``record``: the
    record to make or fix (``domain``'s own unless named)."""
    record = record or domain
    if not resolved:
        where = f"{record_name(record, domain)} at the hub ({', '.join(hub_addresses)})"
        return f"{domain} does not resolve: point {where} first"
    if not set(resolved) & set(hub_addresses):
        return (
            f"{domain} resolves to {', '.join(resolved)}, not to the hub ({', '.join(hub_addresses)}): "
            f"fix {record_name(record, domain)} (or wait for DNS) first"
        )
    return ""


def record_name(record, domain):
    return "its A record" if record == domain else f"the A record {record}"


def address_probes():
    return [facts.addresses(), PUBLIC_IPV4]


def hub_addresses(host):
    """Addresses the hub's names may point at: the hub's own and its EC2 public IP."""
    own = host.fact(facts.addresses()) + [host.connection.host]
    own += host.fact(PUBLIC_IPV4).split()
    return sorted(set(own))


def subdomain_names(config):
    """(name, the record that answers it) the hub resolves before its users' servers get names
    of their own under its name: none when all share the hub's origin."""
    if config.single_origin or not config.domain:
        return []
    return [(config.domain, config.domain), (f"{UNDER_THE_HUB}.{config.domain}", f"*.{config.domain}")]


def subdomain_probes(host):
    names = subdomain_names(host.config)
    return [*(resolve_fact(name) for name, _ in names), *address_probes()] if names else []


def subdomains_point_at_the_hub(host, *_):
    """Stop (one line, before any change) when the hub's name or the names under it do not
    resolve to the hub: users would reach their servers nowhere, or somewhere else. A record
    this run pointed at the hub in Route53 (dns-records) is not asked in check mode: it was not made."""
    names = subdomain_names(host.config)
    if not names:
        return
    addresses = hub_addresses(host)
    pointed = host.run.dns_pointed or {}
    for name, record in names:
        if record in pointed and host.check:
            continue
        problem = dns_problem(name, host.fact(resolve_fact(name)), addresses, record)
        if problem and record in pointed:
            problem = (
                f"{name} does not resolve to the hub yet, though this run pointed {record_name(record, name)} "
                f"at {pointed[record]} in Route53: an older answer may still be cached: run again in a few minutes"
            )
        if problem:
            raise HubswarmError(problem)
