"""The workshop's pages as the lab test reads them: every ```sh block of a lab page, in page order,
with the role the comment right above it gives it.

    <!-- lab: run -->                                run in terminal 2; must exit 0
    <!-- lab: exits 1 -->                            run in terminal 2; must exit 1
    <!-- lab: terminal 1, keeps running -->          started in terminal 1 and left running
    <!-- lab: paste the line terminal 1 printed -->  terminal 2 runs the line terminal 1 printed

A ```sh block without one of these is a page error: every command a page shows is run.
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORKSHOP = ROOT / "docs" / "workshop"
LAB_PAGES = sorted(WORKSHOP.glob("lab[0-9]-*.md"))
ROLES = {"run": "run", "exits 1": "exits 1", "terminal 1, keeps running": "background",
         "paste the line terminal 1 printed": "paste"}
MARKER = re.compile(r"^\s*<!-- lab: (.+?) -->\s*$")
FENCE = re.compile(r"^(\s*)```(\S*)\s*$")


class PageError(Exception):
    pass


@dataclass(frozen=True)
class Block:
    page: str
    line: int
    role: str  # run, exits 1, background, paste
    text: str

    @property
    def where(self) -> str:
        return f"{self.page}:{self.line}"


def blocks(page: Path) -> list[Block]:
    lines = page.read_text(encoding="utf-8").splitlines()
    found: list[Block] = []
    marker: str | None = None
    index = 0
    while index < len(lines):
        line = lines[index]
        mark = MARKER.match(line)
        if mark:
            if mark.group(1) not in ROLES:
                raise PageError(f"{page.name}:{index + 1}: unknown lab marker {mark.group(1)!r}; one of {sorted(ROLES)}")
            marker = mark.group(1)
            index += 1
            continue
        fence = FENCE.match(line)
        if fence:
            indent, language = fence.groups()
            end = next((n for n in range(index + 1, len(lines)) if lines[n].strip() == "```"), None)
            if end is None:
                raise PageError(f"{page.name}:{index + 1}: a code block that never closes")
            body = textwrap.dedent("\n".join(lines[index + 1:end]))
            if language == "sh":
                if marker is None:
                    raise PageError(f"{page.name}:{index + 1}: a sh block without a <!-- lab: ... --> marker above it")
                found.append(Block(page.name, index + 1, ROLES[marker], body.strip() + "\n"))
            elif marker is not None:
                raise PageError(f"{page.name}:{index + 1}: a lab marker above a {language or 'plain'} block")
            marker = None
            index = end + 1
            continue
        if line.strip() and marker is not None:
            raise PageError(f"{page.name}:{index + 1}: a lab marker not right above its code block")
        index += 1
    return found


def sh_blocks(page: Path) -> list[str]:
    """Every ```sh block of a page that has no lab markers (the instructor page), dedented, in order."""
    lines = page.read_text(encoding="utf-8").splitlines()
    found, index = [], 0
    while index < len(lines):
        fence = FENCE.match(lines[index])
        if fence:
            end = next(n for n in range(index + 1, len(lines)) if lines[n].strip() == "```")
            if fence.group(2) == "sh":
                found.append(textwrap.dedent("\n".join(lines[index + 1:end])).strip())
            index = end
        index += 1
    return found


INSTRUCTOR = WORKSHOP / "instructor.md"

__all__ = ["INSTRUCTOR", "LAB_PAGES", "ROLES", "Block", "PageError", "blocks", "sh_blocks"]
