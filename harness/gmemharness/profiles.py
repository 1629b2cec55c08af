"""The series UAPI profiles the suite knows (--series-profile=NAME), read from the repository:
the profile headers fixtures/series.cc includes (fixtures/uapi/series/*.h), so the harness never
keeps its own copy of the list."""
import re
from pathlib import Path

from .kbuild import REPO_ROOT

FIXTURES = REPO_ROOT / "fixtures"
_INCLUDE = re.compile(r'^#include "fixtures/(uapi/series/\w+\.h)"', re.M)
_PROFILE = re.compile(r"\bProfile\s+kProfile\s*\{\s*\"([^\"]+)\"")


def known_profiles(fixtures: Path = FIXTURES) -> list[str]:
    names = []
    for header in _INCLUDE.findall((fixtures / "series.cc").read_text()):
        names += _PROFILE.findall((fixtures / header).read_text(errors="replace"))
    return names


def split_names(values: list[str]) -> list[str]:
    """`--profile a,b --profile c` -> [a, b, c], first mention of each kept."""
    names = []
    for value in values:
        names += [n.strip() for n in value.split(",") if n.strip() and n.strip() not in names]
    return names


def unknown(names: list[str], fixtures: Path = FIXTURES) -> list[str]:
    known = known_profiles(fixtures)
    return [n for n in names if n not in known]


def suite_argument(names: list[str]) -> list[str]:
    return [f"--series-profile={','.join(names)}"] if names else []
