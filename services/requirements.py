"""Print requirement lines from pyproject.toml, so images install exactly what it pins.

    python3 requirements.py pyproject.toml project             # the package's own dependencies
    python3 requirements.py pyproject.toml project:boto3 engine  # one of them, plus an extra
    python3 requirements.py pyproject.toml build-system      # what building the package needs
    python3 requirements.py pyproject.toml build-system project dev  # everything make install installs

Used by the Dockerfiles for their dependency layer, before any code is copied: the versions
live in one place and an image rebuilds its dependencies only when pyproject.toml changes; and by
`make wheelhouse`, which fetches all of them for a room without internet. An extra that names the
package itself (dev = stockpipe[yfinance,engine,...]) stands for those extras' requirements.
Standard library only (tomllib, Python 3.11+).
"""

from __future__ import annotations

import re
import sys
import tomllib


def requirements(pyproject: dict, groups: list[str]) -> list[str]:
    project = pyproject["project"]
    lines: list[str] = []
    for group in groups:
        if group in project.get("optional-dependencies", {}):
            own = [r for r in project["optional-dependencies"][group]
                   if r.lower().startswith(project["name"].lower() + "[")]
            for requirement in own:
                extras = requirement[requirement.index("[") + 1:requirement.index("]")].split(",")
                lines += [line for line in requirements(pyproject, [e.strip() for e in extras]) if line not in lines]
        name, _, only = group.partition(":")
        if name == "project":
            found = project["dependencies"]
        elif name == "build-system":
            found = pyproject["build-system"]["requires"]
        elif name in project.get("optional-dependencies", {}):
            found = project["optional-dependencies"][name]
        else:
            raise SystemExit(f"requirements.py: no dependency group {name!r} in pyproject.toml")
        if only:
            found = [r for r in found if re.split(r"[\s<>=!~\[;]", r, maxsplit=1)[0].lower() == only.lower()]
            if not found:
                raise SystemExit(f"requirements.py: {only!r} is not among the {name} dependencies")
        # An extra that names the package itself (stockpipe[...]) is expanded by pip, not here.
        lines += [r for r in found if not r.lower().startswith(project["name"].lower() + "[") and r not in lines]
    return lines


if __name__ == "__main__":
    if len(sys.argv) < 3:
        raise SystemExit(__doc__)
    with open(sys.argv[1], "rb") as file:
        print("\n".join(requirements(tomllib.load(file), sys.argv[2:])))
