"""The one email -> user name rule (tasks/hubswarm_hub/usernames.py): what it accepts, what it refuses,
and that every name it gives is one the home tool and a swarm service accept."""

import re
import subprocess

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fakehost import ROOT
from tasks.hubswarm_hub import usernames
from tasks.hubswarm_hub.usernames import UserlistError

HOME_TOOL = ROOT / "files" / "hubswarm-home"


@pytest.mark.parametrize(
    "email, name",
    [
        ("alice@x.io", "alice"),
        ("Alice.Smith@Example.COM", "alice.smith"),
        ("first.last+cs101@school.edu", "first.last-cs101"),
        ("o'brien@school.edu", "o-brien"),
        ("rené@school.edu", "rene"),
        ("RENÉ@school.edu", "rene"),
        ("josé.núñez@school.edu", "jose.nunez"),
        ("a_b-c@x.io", "a_b-c"),
        ("-lead@x.io", "lead"),
        ("x..y@x.io", "x..y"),
        ('"quoted me"@x.io', "quoted-me"),
        ("a$(id)b@x.io", "a-id-b"),
        ("7@x.io", "7"),
    ],
)
def test_username(email, name):
    assert usernames.username(usernames.check_email(email)) == name


@pytest.mark.parametrize(
    "email, words",
    [
        ("..@x.io", "gives no usable user name"),
        (".@x.io", "gives no usable user name"),
        ("+++@x.io", "gives no usable user name"),
        ("张伟@x.io", "gives no usable user name"),
        ("a" * 60 + "@x.io", "too long for a notebook service"),
        ("not-an-email", "is not an email address"),
        ("a@localhost", "is not an email address"),
        ("a@exa mple.com", "is not an email address"),
        ("a@bücher.de", "xn-- form"),
        ("a@-x.io", "is not an email address"),
        ("@x.io", "is not an email address"),
    ],
)
def test_refused(email, words):
    with pytest.raises(UserlistError) as err:
        usernames.username(usernames.check_email(email))
    assert words in str(err.value) and "\n" not in str(err.value)


def test_parse_userlist_reports_every_bad_line_and_both_lines_of_a_clash():
    users, problems = usernames.parse_userlist(
        "a@x.io admin\n..@x.io\no'brien@x.io\n# c\no.brien@x.io\nO-Brien@y.org\n"
    )
    assert [(line.number, line.name) for line in users] == [(1, "a"), (3, "o-brien"), (5, "o.brien")]
    assert [n for n, _ in problems] == [2, 6]
    assert "'o-brien@y.org' and \"o'brien@x.io\" on line 3 both become user 'o-brien'" in problems[1][1]


def test_service_name_is_dockerspawners_escaping():
    assert usernames.service_name("first.last-cs101") == "jupyter-first-2elast-2dcs101"


def test_home_tool_checks_names_with_the_same_pattern():
    assert f"NAME_PATTERN='{usernames.NAME_PATTERN}'" in HOME_TOOL.read_text()


def home_tool_accepts(names):
    """Which of ``names`` `hubswarm-home ensure` would take, asked of the real script's check."""
    pattern = re.search(r"^NAME_PATTERN=(.*)$", HOME_TOOL.read_text(), re.M).group(1)
    script = f'NAME_PATTERN={pattern}\nfor n in "$@"; do [[ $n =~ $NAME_PATTERN ]] && echo yes || echo no; done'
    out = subprocess.run(["bash", "-c", script, "check", *names], capture_output=True, text=True, check=True)
    return [answer == "yes" for answer in out.stdout.split()]


@settings(max_examples=300)
@given(local=st.text(min_size=1, max_size=40).filter(lambda s: "@" not in s and not any(c.isspace() for c in s)))
def test_every_name_given_is_safe_for_home_and_service(local):
    try:
        name = usernames.username(usernames.check_email(f"{local}@school.edu"))
    except UserlistError:
        return
    assert re.fullmatch(usernames.NAME_PATTERN, name) and name not in (".", "..")
    assert "/" not in name and not name.startswith("-")
    assert len(usernames.service_name(name)) <= usernames.SERVICE_NAME_MAX
    assert home_tool_accepts([name]) == [True]


def test_home_tool_refuses_what_the_rule_never_makes():
    assert home_tool_accepts(["..", ".", "-x", "a/b", "A", "x.", "a b"]) == [False] * 7
