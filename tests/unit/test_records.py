"""The hub's names pointing at it: one line naming the record to make or fix, before any change."""

import pytest

from tasks.core import HubswarmError
from tasks.hub import records

HUB = ["10.0.0.5", "54.1.2.3"]


@pytest.mark.parametrize(
    "resolved, record, problem",
    [
        (["54.1.2.3"], None, ""),
        ([], None, "hub.example.com does not resolve: point its A record at the hub (10.0.0.5, 54.1.2.3) first"),
        (
            ["9.9.9.9"],
            None,
            "hub.example.com resolves to 9.9.9.9, not to the hub (10.0.0.5, 54.1.2.3): fix its A record",
        ),
        ([], "*.example.com", "hub.example.com does not resolve: point the A record *.example.com at the hub"),
    ],
)
def test_dns_problem(resolved, record, problem):
    found = records.dns_problem("hub.example.com", resolved, HUB, record)
    assert found.startswith(problem) if problem else found == ""


UNDER = f"resolve:{records.UNDER_THE_HUB}.hub.example.com"


@pytest.mark.parametrize(
    "answers, problem",
    [
        ({"resolve:hub.example.com": "54.1.2.3", UNDER: "54.1.2.3"}, ""),
        ({"resolve:hub.example.com": "54.1.2.3", UNDER: ""}, "point the A record *.hub.example.com at the hub"),
        ({"resolve:hub.example.com": "", UNDER: "54.1.2.3"}, "hub.example.com does not resolve: point its A record"),
        ({"resolve:hub.example.com": "54.1.2.3", UNDER: "9.9.9.9"}, "fix the A record *.hub.example.com"),
    ],
)
def test_users_servers_get_names_of_their_own_only_where_they_point_at_the_hub(make_host, answers, problem):
    host, _ = make_host({"addresses": "10.0.0.5", "imds:public-ipv4": "54.1.2.3", **answers})
    assert [fact.key for fact in records.subdomain_probes(host)] == [
        "resolve:hub.example.com",
        UNDER,
        "addresses",
        "imds:public-ipv4",
    ]
    if problem:
        with pytest.raises(HubswarmError, match=problem.replace("*", r"\*")):
            records.subdomains_point_at_the_hub(host)
    else:
        records.subdomains_point_at_the_hub(host)


def test_one_origin_for_all_asks_no_name(make_host):
    host, _ = make_host({}, single_origin=True)
    assert records.subdomain_probes(host) == []
    records.subdomains_point_at_the_hub(host)


@pytest.mark.parametrize(
    "single_origin, letsencrypt, names, problem",
    [
        (
            False,
            True,
            "DNS:hub.example.com",
            "does not hold \\*.hub.example.com, the names of users' servers: with HUBSWARM_ROUTE53_ZONE",
        ),
        (False, True, "DNS:hub.example.com, DNS:*.hub.example.com", ""),  # DNS-01's wildcard: every name
        (False, False, "", ""),
        (True, True, "DNS:hub.example.com", ""),  # one origin: the hub's name is every name served
    ],
)
def test_lets_encrypts_certificate_is_never_served_to_users_servers_names(
    make_host, single_origin, letsencrypt, names, problem
):
    from fakehost import cert_info
    from tasks.hub import nginx

    answers = {
        "letsencrypt:hub.example.com": "" if letsencrypt else None,
        "cert:/etc/letsencrypt/live/hub.example.com/fullchain.pem": cert_info(names) if letsencrypt else None,
    }
    host, _ = make_host(answers, single_origin=single_origin)
    if problem:
        with pytest.raises(HubswarmError, match=problem):
            nginx.certificate_holds_every_name(host)
    else:
        nginx.certificate_holds_every_name(host)
