"""The Ray and Optuna versions raygex's contract tests (``tests/tune_compat/``) passed on.

raygex reads and rewrites Ray Tune's and Optuna's saved state (this package): those formats are private and may
change in any release, so ``pyproject.toml`` allows only the range below, ``cluster/requirements.txt`` pins a
version inside it (a test checks all three agree), and a Ray or Optuna outside it is one warning line when the CLI
starts (:func:`untested_versions`).
"""

from __future__ import annotations

import re
from importlib import metadata

# distribution -> (lowest version, first version not tested): [lower, upper)
TESTED = {"ray": ("2.60", "2.61"), "optuna": ("5.1", "5.2")}


def version_tuple(text: str) -> tuple[int, ...]:
    """``"2.60.0rc1"`` -> ``(2, 60, 0)``: the release numbers, enough to compare with :data:`TESTED`."""
    match = re.match(r"\d+(\.\d+)*", text.strip())
    return tuple(int(part) for part in match.group(0).split(".")) if match else ()


def in_range(version: str, lower: str, upper: str) -> bool:
    return version_tuple(lower) <= version_tuple(version) < version_tuple(upper)


def untested_versions(installed: dict[str, str | None] | None = None) -> list[str]:
    """One line for each of Ray and Optuna whose installed version (``installed``: name -> version, else read
    from the environment) lies outside :data:`TESTED`."""
    lines = []
    for name, (lower, upper) in TESTED.items():
        if installed is not None:
            version = installed.get(name)
        else:
            try:
                version = metadata.version(name)
            except metadata.PackageNotFoundError:
                version = None
        if version is not None and not in_range(version, lower, upper):
            lines.append(f"{name} {version} is outside the versions raygex is tested with (>={lower},<{upper}); "
                         f"it reads {name}'s saved sweep state, which may have changed: resuming a sweep may fail")
    return lines
