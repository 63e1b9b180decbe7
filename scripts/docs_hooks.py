"""MkDocs hooks (mkdocs.yml `hooks:`): the two reference pages are generated, never written by hand.

- `<!-- generated: commands -->` in a page becomes every `stockpipe` command with its options, read from
  the CLI's own parser (stockpipe.cli.build_parser).
- `<!-- generated: configuration -->` becomes every variable of `.env.example`, section by section, with
  its default and the comment above it: the same file `cp .env.example .env` starts from, which a unit
  test holds equal to the one declaration of the settings (stockpipe.settings.DEFAULTS).
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
COMMANDS_MARKER = "<!-- generated: commands -->"
CONFIGURATION_MARKER = "<!-- generated: configuration -->"
SECTION = re.compile(r"^# --- (.+?) -+$")
VARIABLE = re.compile(r"^([A-Z][A-Z0-9_]*)=(.*)$")
# A variable left out on purpose, shown commented: `# STOCKPIPE_INJECT_FAULTS=0.25` (no space, no colon).
OPTIONAL = re.compile(r"^#\s*([A-Z][A-Z0-9_]*)=([^\s:]*)$")


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ").strip()


def _option(action: argparse.Action) -> str:
    names = ", ".join(f"`{name}`" for name in action.option_strings) or f"`{action.dest}`"
    if action.option_strings and action.nargs != 0:
        shown = action.metavar or (f"{{{','.join(map(str, action.choices))}}}" if action.choices else
                                   action.dest.upper())
        names += f" `{shown}`"
    return names


def commands_markdown(parser: argparse.ArgumentParser) -> str:
    """Every subcommand, its help and a table of its options, in the parser's order."""
    sub = next(action for action in parser._actions if isinstance(action, argparse._SubParsersAction))
    helps = {choice.dest: choice.help or "" for choice in sub._choices_actions}
    out: list[str] = []
    for name, command in sub.choices.items():
        out += [f"### `stockpipe {name}`", "", _cell(helps.get(name, "")), ""]
        rows = [action for action in command._actions if not isinstance(action, argparse._HelpAction)]
        if not rows:
            out += ["No options.", ""]
            continue
        out += ["| option | what it does |", "|---|---|"]
        for action in rows:
            text = (action.help or "").replace("%(default)s", str(action.default))
            out.append(f"| {_option(action)} | {_cell(text)} |")
        out.append("")
    return "\n".join(out)


def env_example_entries(text: str) -> list[tuple[str, list[tuple[str, str, str]]]]:
    """.env.example as [(section, [(variable, default, meaning)])]: each variable's meaning is the comment
    block right above it; a commented-out assignment (`# NAME=value`) is an optional variable."""
    sections: list[tuple[str, list[tuple[str, str, str]]]] = [("Where AWS is", [])]
    comment: list[str] = []
    for line in text.splitlines():
        stripped = line.strip()
        section = SECTION.match(stripped)
        if section:
            sections.append((section.group(1).strip(), []))
            comment = []
            continue
        variable, optional = VARIABLE.match(stripped), OPTIONAL.match(stripped)
        if variable:
            sections[-1][1].append((variable.group(1), variable.group(2), " ".join(comment)))
            comment = []
            continue
        if optional:
            meaning = f"Unset unless you set it (for example `{stripped.lstrip('#').strip()}`). {' '.join(comment)}"
            sections[-1][1].append((optional.group(1), "", meaning.strip()))
            comment = []
            continue
        if stripped.startswith("#"):
            comment.append(stripped.lstrip("#").strip())
        elif not stripped:
            comment = []
    return [(title, rows) for title, rows in sections if rows]


def configuration_markdown(text: str) -> str:
    out: list[str] = []
    for title, rows in env_example_entries(text):
        out += [f"### {title}", "", "| variable | default | meaning |", "|---|---|---|"]
        out += [f"| `{name}` | {f'`{_cell(default)}`' if default else '(empty)'} | {_cell(meaning) or '(as above)'} |"
                for name, default, meaning in rows]
        out.append("")
    return "\n".join(out)


def on_page_markdown(markdown: str, **_: Any) -> str:
    if COMMANDS_MARKER in markdown:
        from stockpipe.cli import build_parser

        markdown = markdown.replace(COMMANDS_MARKER, commands_markdown(build_parser()))
    if CONFIGURATION_MARKER in markdown:
        example = (ROOT / ".env.example").read_text(encoding="utf-8")
        markdown = markdown.replace(CONFIGURATION_MARKER, configuration_markdown(example))
    return markdown
