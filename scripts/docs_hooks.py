"""MkDocs hooks (mkdocs.yml `hooks:`): the two reference pages are generated, never written by hand.

- `<!-- generated: commands -->` in a page becomes every `stockpipe` command with its options, read from
  the CLI's own parser (stockpipe.cli.build_parser).
- `<!-- generated: configuration -->` becomes every variable, section by section, with its default, its
  meaning and who reads it, rendered from the one declaration of each (stockpipe.settings) by
  stockpipe.configuration, which renders `.env.example` from the same declarations.
- `<!-- generated: template parameters -->` becomes the CloudFormation template's parameters, from the
  declaration `stockpipe template` writes them with (stockpipe.provision.template.parameters).
"""

from __future__ import annotations

import argparse
from typing import Any

COMMANDS_MARKER = "<!-- generated: commands -->"
CONFIGURATION_MARKER = "<!-- generated: configuration -->"
PARAMETERS_MARKER = "<!-- generated: template parameters -->"


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


def parameters_markdown() -> str:
    """The template's parameters: name, the setting whose value is the default, what it accepts."""
    from stockpipe.aws.context import EngineInfo
    from stockpipe.provision.template import parameters
    from stockpipe.settings import Settings

    out = ["| parameter | default: the setting | accepts | meaning |", "|---|---|---|---|"]
    for p in parameters(Settings(), EngineInfo("AWS", honours_stream_failures=True)):
        accepts = p.allowed or " or ".join(f"`{v}`" for v in p.values)
        default = f"`{p.variable}`" + (f" (`{p.default}`)" if p.default else " (empty)")
        out.append(f"| `{p.name}` | {default} | {_cell(accepts)} | {_cell(p.description)} |")
    return "\n".join(out)


def on_page_markdown(markdown: str, **_: Any) -> str:
    if COMMANDS_MARKER in markdown:
        from stockpipe.cli import build_parser

        markdown = markdown.replace(COMMANDS_MARKER, commands_markdown(build_parser()))
    if CONFIGURATION_MARKER in markdown:
        from stockpipe.configuration import markdown as configuration_markdown

        markdown = markdown.replace(CONFIGURATION_MARKER, configuration_markdown())
    if PARAMETERS_MARKER in markdown:
        markdown = markdown.replace(PARAMETERS_MARKER, parameters_markdown())
    return markdown
