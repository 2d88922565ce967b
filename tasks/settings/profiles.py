"""Profiles: the environments a user chooses from when their server starts (``HUBSWARM_PROFILES``).

The file is a YAML list of profiles, each a mapping of :data:`KEYS`; what a profile does
not say, the cluster's settings say (``HUBSWARM_IMAGE``, ``HUBSWARM_MEM_LIMIT``...), and
its values are checked and normalised by those settings' own kinds. :func:`read` checks it
before any host is touched (:mod:`.validate`) and gives every profile with all its keys:
what the hub's spawner offers (``hub-config`` writes them into hubswarm.json) and what the
image steps bring to the nodes.
"""

import re
from pathlib import Path

import yaml

from ..core import HubswarmError
from ..hubswarm_hub.profiles import NAME_PATTERN, NODE_LABEL_PATTERN
from ..hubswarm_hub.profiles import shown as _shown
from ..hubswarm_hub.usernames import GROUP_PATTERN, INSTRUCTORS
from . import kinds

NAME = re.compile(NAME_PATTERN)
NODE_LABEL = re.compile(NODE_LABEL_PATTERN)
# hubswarm's own node labels (hubswarm_hub.labels) say where notebooks may run at all.
OWN_LABELS = "hubswarm."
_GROUP = re.compile(GROUP_PATTERN)
DESCRIPTION_MAX = 200
EXAMPLE = "see profiles.example.yaml"


def name_problem(value):
    if not isinstance(value, str) or not NAME.fullmatch(value):
        return "is not a profile name: use up to 32 lowercase letters, digits and dashes (e.g. big)"
    return ""


def description_problem(value):
    if not isinstance(value, str):
        return "is not text: quote it"
    if len(value) > DESCRIPTION_MAX:
        return f"is longer than {DESCRIPTION_MAX} characters: shorten it"
    if not value.isprintable():
        return "holds control characters: write plain text"
    return ""


def node_label_problem(value):
    match = NODE_LABEL.fullmatch(value) if isinstance(value, str) else None
    if not match:
        return "is not key=value (e.g. gpu=true; letters, digits, '.', '_' and '-' on each side)"
    if match.group("key").startswith(OWN_LABELS):
        return "is one of hubswarm's own labels: use a label of your own (e.g. gpu=true)"
    return ""


def groups_problem(value):
    if not isinstance(value, list) or not value:
        return "is not a list of group names: write them as [staff, cs101], or leave groups out for everyone"
    for group in value:
        if not isinstance(group, str) or not (group == INSTRUCTORS or _GROUP.match(group)):
            return (
                f"has {_shown(group)}, which is no group name: use the userlist's group:NAME names "
                f"(lowercase letters, digits, '.', '_' and '-') or {INSTRUCTORS}"
            )
    return ""


def _as_written(value):
    return value


def _one_spaced(value):
    """Text on one line (a YAML folded block ends in a line break)."""
    return " ".join(value.split()) if isinstance(value, str) else value


#: A profile's keys and their kinds. The cluster's settings of the same names lend theirs,
#: so a profile's image, memory and CPUs are checked and normalised exactly as the cluster's.
KIND = {
    "name": kinds.Kind(name_problem, normalise=_as_written),
    "description": kinds.Kind(description_problem, normalise=_one_spaced),
    "image": kinds.IMAGE,
    "mem_limit": kinds.MEMORY,
    "mem_guarantee": kinds.MEMORY_OR_NONE,
    "cpu_limit": kinds.CPUS,
    "cpu_guarantee": kinds.CPUS,
    "node_label": kinds.Kind(node_label_problem, normalise=_as_written),
    "groups": kinds.Kind(groups_problem, normalise=_as_written),
    "default": kinds.FLAG,
}
KEYS = tuple(KIND)
#: What a profile takes from the cluster's setting of the same name when it does not say.
FROM_CLUSTER = ("image", "mem_limit", "mem_guarantee", "cpu_limit", "cpu_guarantee")
#: The other keys, where a profile does not give them: no description, any node, everyone, not the default.
UNSAID = {"name": None, "description": "", "node_label": "", "groups": None, "default": False}
# (guarantee, limit, whether the one is more than the other)
GUARANTEES = (
    ("mem_guarantee", "mem_limit", kinds.memory_over_limit),
    ("cpu_guarantee", "cpu_limit", kinds.cpus_over_limit),
)


def _value_problem(key, value):
    """(``value`` of ``key`` normalised, "key value problem; fix" or "")."""
    kind = KIND[key]
    # The cluster's settings come as a variable's text: so does the profile's value.
    normalised = kind.normalise(str(value) if key in FROM_CLUSTER else value)
    problem = kind.check(normalised)
    if not problem:
        return normalised, ""
    fix = f"; {kind.fix}" if kind.fix else ""
    return normalised, f"{key} {_shown(value)} {problem}{fix}"


def _guarantee_problems(profile, said):
    """A guarantee more than its limit, once both are filled in (the cluster's named when they are its)."""
    lines = []
    for guarantee, limit, over in GUARANTEES:
        if over(profile[limit], profile[guarantee]):
            shown = {
                key: _shown(profile[key]) + ("" if key in said else f" (HUBSWARM_{key.upper()})")
                for key in (guarantee, limit)
            }
            lines.append(
                f"{guarantee} {shown[guarantee]} is more than {limit} {shown[limit]}: guarantee at most the limit"
            )
    return lines


def _profile(entry, cluster):
    """(the profile ``entry`` makes, every key filled; its problems, each "key value problem; fix")."""
    if not isinstance(entry, dict):
        return None, [f"is not a mapping of keys: write 'name: ...' and its other keys ({EXAMPLE})"]
    problems = [f"unknown key {_shown(key)}: use {', '.join(KEYS)}" for key in entry if key not in KIND]
    # An empty key (`description:`) says nothing, like an absent one.
    said = {key: value for key, value in entry.items() if key in KIND and value is not None}
    profile = {key: cluster[key] if key in FROM_CLUSTER else UNSAID[key] for key in KEYS}
    for key, value in said.items():
        profile[key], problem = _value_problem(key, value)
        problems.append(problem)
    if "name" not in said:
        problems.append("name is missing: give every profile one (lowercase letters, digits and dashes, e.g. big)")
    problems += _guarantee_problems(profile, said)
    return profile, [problem for problem in problems if problem]


def _entries(path):
    """(the list of profiles the file at ``path`` holds, "") or (None, what is wrong with the file)."""
    try:
        entries = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        return None, f"cannot be read ({exc.strerror}): check its owner and mode"
    except UnicodeDecodeError:
        return None, "is not UTF-8 text: save it as UTF-8"
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = " ".join(str(getattr(exc, "problem", None) or exc).split())
        return None, f"is not YAML ({at}{problem}): fix it ({EXAMPLE})"
    if not isinstance(entries, list) or not entries:
        return None, f"holds no list of profiles: write one '- name: ...' entry per profile ({EXAMPLE})"
    return entries, ""


def read(path, cluster):
    """(profiles, problems) of the profiles file at ``path``: each profile with every key of
    :data:`KEYS`, the ``cluster``'s settings (its ``hubswarm`` config section) where it says
    nothing, exactly one the default (the first when none says it is); one line per problem,
    naming the file, the profile and the key, and the fix."""
    where = f"HUBSWARM_PROFILES: {kinds.shown_path(str(path))}"
    entries, problem = _entries(path)
    if problem:
        return [], [f"{where} {problem}"]
    profiles, lines, numbers, default = [], [], {}, None
    for number, entry in enumerate(entries, start=1):
        profile, problems = _profile(entry, cluster)
        label = f"profile {number}"
        if profile and not name_problem(profile["name"]):
            name = profile["name"]
            if name in numbers:
                problems.append(f"name {name!r} is profile {numbers[name]}'s too: give each profile a name of its own")
            else:
                numbers[name], label = number, f"profile {name!r}"
            if profile["default"] is True:
                if default:
                    problems.append(f"default true: profile {default!r} is the default already: mark one only")
                default = default or name
        lines += [f"{where}, {label}: {problem}" for problem in problems]
        profiles.append(profile)
    if not lines and default is None:
        profiles[0]["default"] = True
    return profiles, lines


def resolved(config):
    """The profiles of the file ``config`` (a ``hubswarm`` config section, checked) names, every
    key filled; none when it names none."""
    if not config.profiles:
        return []
    profiles, problems = read(config.profiles, config)
    if problems:  # the file changed since the run checked it
        raise HubswarmError(problems[0])
    return profiles
