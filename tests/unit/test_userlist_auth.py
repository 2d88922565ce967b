"""The userlist parser and the authenticators' local secrets."""

from types import SimpleNamespace

import pytest

from fakehost import hub_config
from tasks import settings
from tasks.core import HubswarmError
from tasks.core.secrets import MASK, mask
from tasks.hub import auth, users
from tasks.hubswarm_hub.usernames import WORDS
from tasks.settings import validate

# --- userlist ------------------------------------------------------------------------


def test_parse_userlist_valid():
    text = (
        "# the hub's users\n"
        "\n"
        "Alice@Example.com admin\n"
        "   bob@example.org    # a comment\n"
        "carol@uni.edu admin # the other admin\n"
        "\t\n"
    )
    parsed = users.parse_userlist(text, source="my-users")
    assert [(u.email, u.name, u.admin) for u in parsed] == [
        ("alice@example.com", "alice", True),
        ("bob@example.org", "bob", False),
        ("carol@uni.edu", "carol", True),
    ]


def test_render_userlist_round_trip():
    text = "a@x.io admin\nb@x.io\nc@x.io instructor group:cs101 group:lab-2\nd@x.io admin instructor\n"
    parsed = users.parse_userlist(text)
    assert users.render_userlist(parsed) == text
    assert users.parse_userlist(users.render_userlist(parsed)) == parsed
    assert parsed[2] == users.User("c@x.io", False, True, ("cs101", "lab-2"))
    # any order of the words after the email, one line in the hub's userlist
    assert users.render_userlist(users.parse_userlist("d@x.io group:z instructor admin\n")) == (
        "d@x.io admin instructor group:z\n"
    )


@pytest.mark.parametrize(
    "text, line, words",
    [
        ("a@x.io admin\nnot-an-email\n", 2, ["'not-an-email' is not an email address", WORDS]),
        ("a@x.io admin\nb@localhost\n", 2, ["'b@localhost' is not an email address"]),
        ("a@x.io admin\nadmin b@x.io\n", 2, ["'admin' is not an email address"]),
        ("# c\n\na@x.io admin extra\n", 3, ["unknown word 'extra'", WORDS]),
        ("a@x.io root\n", 1, ["unknown word 'root'", WORDS]),
        ("a@x.io Admin\n", 1, ["unknown word 'Admin'"]),
        ("a@x.io admin admin\n", 1, ["'admin' twice"]),
        ("a@x.io admin group:cs101 group:cs101\n", 1, ["'group:cs101' twice"]),
        ("a@x.io admin group:CS101\n", 1, ["'group:CS101' is no group name"]),
        ("a@x.io admin group:\n", 1, ["'group:' is no group name"]),
        ("a@x.io admin group:a;b\n", 1, ["'group:a;b' is no group name"]),
        ("a@x.io admin group:instructors\n", 1, ["the instructors group is the lines marked 'instructor'"]),
        (
            "alice@x.io admin\n# c\nALICE@y.org\n",
            3,
            ["'alice@y.org' and 'alice@x.io' on line 1 both become user 'alice'", "keep one line per person"],
        ),
    ],
)
def test_parse_userlist_errors_name_file_line_and_fix(text, line, words):
    with pytest.raises(HubswarmError) as err:
        users.parse_userlist(text, source="/home/me/userlist")
    message = str(err.value)
    assert message.startswith(f"/home/me/userlist line {line}: ")
    assert ": " in message and "\n" not in message
    for word in words:
        assert word in message


@pytest.mark.parametrize("text", ["a@x.io\nb@x.io\n", "", "# only comments\n\n"])
def test_parse_userlist_needs_an_admin(text):
    with pytest.raises(HubswarmError) as err:
        users.parse_userlist(text, source="/home/me/userlist")
    assert str(err.value) == "/home/me/userlist: no admin: add ' admin' after at least one email"


def test_read_userlist_missing_file(tmp_path):
    path = tmp_path / "userlist"
    with pytest.raises(HubswarmError) as err:
        users.read_userlist(hub_config(userlist=str(path)))
    assert str(path) in str(err.value) and "userlist.example" in str(err.value)


def test_read_userlist_names_the_file(tmp_path):
    path = tmp_path / "userlist"
    path.write_text("a@x.io admin\nb@x.io boss\n")
    with pytest.raises(HubswarmError) as err:
        users.read_userlist(hub_config(userlist=str(path)))
    assert str(err.value).startswith(f"{path} line 2: unknown word 'boss'")
    path.write_text("a@x.io admin\n")
    assert users.read_userlist(hub_config(userlist=str(path))) == [users.User("a@x.io", True)]


def test_userlist_example_parses():
    from fakehost import ROOT

    assert any(u.admin for u in users.parse_userlist((ROOT / "userlist.example").read_text()))


# --- auth ---------------------------------------------------------------------------

USER_PW, ADMIN_PW = "user-pass-1234", "admin-" + "x" * 30


def cfg(authenticator="google", lab=False):
    return SimpleNamespace(authenticator=authenticator, lab=lab)


def test_oauth_secrets_are_read_and_the_secret_registered():
    env = {"OAUTH_CLIENT_ID": " id-123.apps ", "OAUTH_CLIENT_SECRET": "GOCSPX-supersecret\n"}
    values = auth.hub_secrets(cfg("google"), env)
    assert values == {"OAUTH_CLIENT_ID": "id-123.apps", "OAUTH_CLIENT_SECRET": "GOCSPX-supersecret"}
    assert mask("secret is GOCSPX-supersecret.") == f"secret is {MASK}."


def test_oauth_callback_url_is_passed_through():
    env = {"OAUTH_CLIENT_ID": "id", "OAUTH_CLIENT_SECRET": "sec-ret", "OAUTH_CALLBACK_URL": "https://h/cb"}
    assert auth.hub_secrets(cfg("github"), env)["OAUTH_CALLBACK_URL"] == "https://h/cb"


@pytest.mark.parametrize(
    "env, missing",
    [
        ({}, "OAUTH_CLIENT_ID"),
        ({"OAUTH_CLIENT_SECRET": "s3cret"}, "OAUTH_CLIENT_ID"),
        ({"OAUTH_CLIENT_ID": "id"}, "OAUTH_CLIENT_SECRET"),
        ({"OAUTH_CLIENT_ID": "id", "OAUTH_CLIENT_SECRET": "   "}, "OAUTH_CLIENT_SECRET"),
    ],
)
@pytest.mark.parametrize("name", ["google", "github"])
def test_oauth_secret_missing(env, missing, name):
    with pytest.raises(HubswarmError) as err:
        auth.hub_secrets(cfg(name), env)
    message = str(err.value)
    assert message.startswith(f"{missing} is missing: put the {name} OAuth client's {missing} in .env")
    assert ".env.example" in message


METRICS_TOKEN = "f" * 64


@pytest.mark.parametrize(
    "name, env",
    [
        ("google", {"OAUTH_CLIENT_ID": "id", "OAUTH_CLIENT_SECRET": "sec-ret"}),
        ("password", {"HUBSWARM_HUB_PASSWORD": USER_PW, "HUBSWARM_HUB_ADMIN_PASSWORD": ADMIN_PW}),
    ],
)
def test_the_metrics_token_goes_to_the_hub_as_a_secret(name, env):
    values = auth.hub_secrets(cfg(name, lab=name == "password"), {**env, "HUBSWARM_METRICS_TOKEN": METRICS_TOKEN})
    assert values["METRICS_API_TOKEN"] == METRICS_TOKEN
    assert mask(f"token {METRICS_TOKEN}") == f"token {MASK}"


@pytest.mark.parametrize("token", ["short", "x" * 40 + " y", "é" * 40, "a" * 40 + "$(id)"])
def test_a_weak_or_odd_metrics_token_is_refused(token):
    env = {"OAUTH_CLIENT_ID": "id", "OAUTH_CLIENT_SECRET": "sec-ret", "HUBSWARM_METRICS_TOKEN": token}
    with pytest.raises(HubswarmError, match="HUBSWARM_METRICS_TOKEN must be 32 or more letters, digits"):
        auth.hub_secrets(cfg("google"), env)


def test_hub_secrets_reads_the_process_environment(monkeypatch):
    monkeypatch.setenv("OAUTH_CLIENT_ID", "env-id")
    monkeypatch.setenv("OAUTH_CLIENT_SECRET", "env-secret")
    monkeypatch.delenv("OAUTH_CALLBACK_URL", raising=False)
    monkeypatch.delenv("HUBSWARM_METRICS_TOKEN", raising=False)
    assert auth.hub_secrets(cfg("google")) == {"OAUTH_CLIENT_ID": "env-id", "OAUTH_CLIENT_SECRET": "env-secret"}


@pytest.mark.parametrize("name", ["gitlab", "", "Google", "shared-password"])
def test_unknown_authenticator(name):
    """The line the settings check prints before any host is touched: one wording per rule."""
    with pytest.raises(HubswarmError) as err:
        auth.hub_secrets(cfg(name), {})
    assert str(err.value) == (
        f"HUBSWARM_AUTHENTICATOR: {name!r} is not one of google, github, password: set it to one of them"
    )
    assert [str(err.value)] == validate.problems({"authenticator": name})


def test_password_authenticator_is_lab_only():
    with pytest.raises(HubswarmError) as err:
        auth.hub_secrets(
            cfg("password", lab=False), {"HUBSWARM_HUB_PASSWORD": USER_PW, "HUBSWARM_HUB_ADMIN_PASSWORD": ADMIN_PW}
        )
    assert [str(err.value)] == validate.problems(
        settings.defaults({"HUBSWARM_AUTHENTICATOR": "password", "HUBSWARM_DOMAIN": "hub.example.com"})["hubswarm"]
    )
    assert "for the lab only: use google or github" in str(err.value)
    assert auth.checked_authenticator(cfg("password", lab=True)) == "password"


SET_IT = ": set it in .env (lab.up writes it into .lab/lab.env)"


@pytest.mark.parametrize(
    "user, admin, line",
    [
        ("", ADMIN_PW, "HUBSWARM_HUB_PASSWORD must be 8 or more characters" + SET_IT),
        ("short7!", ADMIN_PW, "HUBSWARM_HUB_PASSWORD must be 8 or more characters" + SET_IT),
        (USER_PW, "", "HUBSWARM_HUB_ADMIN_PASSWORD must be 32 or more characters" + SET_IT),
        (USER_PW, "a" * 31, "HUBSWARM_HUB_ADMIN_PASSWORD must be 32 or more characters" + SET_IT),
        ("b" * 32, "b" * 32, "HUBSWARM_HUB_ADMIN_PASSWORD is HUBSWARM_HUB_PASSWORD too: use two different passwords"),
    ],
)
def test_password_rules(user, admin, line):
    """One line naming the password at fault, never its value."""
    env = {"HUBSWARM_HUB_PASSWORD": user, "HUBSWARM_HUB_ADMIN_PASSWORD": admin}
    with pytest.raises(HubswarmError) as err:
        auth.hub_secrets(cfg("password", lab=True), env)
    assert str(err.value) == line


def test_password_secrets_at_the_minimum_lengths_are_registered():
    user, admin = "u" * 8, "A" * 32
    env = {"HUBSWARM_HUB_PASSWORD": user, "HUBSWARM_HUB_ADMIN_PASSWORD": admin}
    assert auth.hub_secrets(cfg("password", lab=True), env) == {
        "HUB_USER_PASSWORD": user,
        "HUB_ADMIN_PASSWORD": admin,
    }
    assert mask(f"{user} / {admin}") == f"{MASK} / {MASK}"


@pytest.mark.parametrize(
    "name, var",
    [
        ("google", "OAUTH_CLIENT_ID"),
        ("google", "OAUTH_CLIENT_SECRET"),
        ("password", "HUBSWARM_HUB_PASSWORD"),
        ("password", "HUBSWARM_HUB_ADMIN_PASSWORD"),
    ],
)
def test_a_value_with_a_line_break_never_reaches_the_env_file(name, var):
    environ = {
        "OAUTH_CLIENT_ID": "id",
        "OAUTH_CLIENT_SECRET": "s3cret-value",
        "HUBSWARM_HUB_PASSWORD": USER_PW,
        "HUBSWARM_HUB_ADMIN_PASSWORD": ADMIN_PW,
    }
    environ[var] += "\nHUB_EXTRA=injected"
    with pytest.raises(HubswarmError) as err:
        auth.hub_secrets(cfg(name, lab=name == "password"), environ)
    assert str(err.value) == f"{var} holds a line break or another control character: copy the value again, as one line"


def test_a_bad_oauth_callback_url_is_one_line_naming_it():
    env = {"OAUTH_CLIENT_ID": "id", "OAUTH_CLIENT_SECRET": "sec-ret", "OAUTH_CALLBACK_URL": "http://h/cb"}
    with pytest.raises(HubswarmError) as err:
        auth.hub_secrets(cfg("google"), env)
    assert str(err.value) == (
        "OAUTH_CALLBACK_URL: 'http://h/cb' is not an https:// URL; set it to the OAuth client's redirect URI "
        "(https://HUB/hub/oauth_callback), or leave it unset"
    )
