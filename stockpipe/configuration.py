""".env.example and the docs' configuration page, both rendered from the declarations in stockpipe.settings.

.env.example is a file users copy and read (`cp .env.example .env`), so it is kept in the repository;
a unit test holds it equal to ``env_example()``. After changing a declaration:

    python -m stockpipe.configuration > .env.example
"""

from __future__ import annotations

import re
import textwrap

from stockpipe.settings import FUNCTION_GIVEN, FUNCTION_VARIABLES, SETTINGS, VARIABLES, Section, Variable

# Comment lines wrap at this width; section rules are drawn to it.
WIDTH = 100
INTRO = ("stockpipe configuration. Every name, region and knob comes from here (or the environment); nothing "
         "else in the code names a resource. `cp .env.example .env`: the CLI and docker compose read .env; "
         "variables already set in the environment win.")


def comment(text: str) -> list[str]:
    """Text as comment lines: each paragraph ("\\n") wrapped, one that starts with a space kept as written."""
    lines: list[str] = []
    for paragraph in text.split("\n"):
        if paragraph.startswith(" "):
            lines.append(f"# {paragraph}".rstrip())
        else:  # a `code span` is not broken across lines
            kept = re.sub(r"`[^`]*`", lambda code: code.group().replace(" ", "\0"), paragraph)
            lines += [line.replace("\0", " ") for line in textwrap.wrap(
                kept, WIDTH, initial_indent="# ", subsequent_indent="# ", break_long_words=False,
                break_on_hyphens=False)]
    return lines


def sections() -> list[tuple[Section, list[Variable]]]:
    """Every documented variable, section by section: the settings in their order, then the others."""
    return [(section, [v for v in VARIABLES.values() if v.section is section]) for section in Section]


def _written_by_init() -> list[str]:
    """The variables of the functions' environment that are not settings: init resolves them."""
    settings = {v.name for v in SETTINGS}
    return [v.name for v in FUNCTION_VARIABLES if v.name not in settings and v.name not in FUNCTION_GIVEN]


def env_example() -> str:
    lines = comment(INTRO)
    for section, variables in sections():
        rule = f"# --- {section.title} "
        lines += ["", rule + "-" * (WIDTH - len(rule))]
        if section.intro:
            lines += [*comment(section.intro), ""]
        for variable in variables:
            lines += comment(variable.meaning)
            lines.append(f"{'# ' if variable.commented else ''}{variable.name}={variable.shown}")
    *first, last = _written_by_init()
    lines += ["", *comment(f"({', '.join(first)} and {last} also appear in the functions' environment: init "
                           "resolves them from the names above and from the engine it finds. You never set them "
                           "yourself.)")]
    return "\n".join(lines) + "\n"


def _cell(text: str) -> str:
    return " ".join(text.replace("|", "\\|").split())


def _row(variable: Variable) -> str:
    shown = variable.shown
    default = f"`{_cell(shown)}`" if shown and not variable.commented else "(empty)"
    meaning = variable.meaning
    if variable.commented:
        meaning = f"Unset unless you set it (for example `{variable.name}={shown}`). {meaning}"
    readers = ", ".join(reader.value for reader in variable.readers)
    return f"| `{variable.name}` | {default} | {_cell(meaning)} | {readers} |"


def markdown() -> str:
    """The configuration page's tables: every variable of .env.example, section by section, with its
    value there, its meaning and who reads it; then what init adds to the functions' environment."""
    out: list[str] = []
    for section, variables in sections():
        out += [f"### {section.title}", ""]
        if section.intro:
            out += [_cell(section.intro), ""]
        out += ["| variable | default | meaning | read by |", "|---|---|---|---|"]
        out += [_row(variable) for variable in variables]
        out.append("")
    settings = {v.name for v in SETTINGS}
    written = [f"`{v.name}`" for v in FUNCTION_VARIABLES if v.name in settings and v.name not in FUNCTION_GIVEN]
    given = [f"`{v.name}`" for v in FUNCTION_VARIABLES if v.name in settings and v.name in FUNCTION_GIVEN]
    out += ["### The functions' environment", "",
            "What each handler parses once at its cold start (`FunctionEnvironment` in `stockpipe/settings.py`): "
            f"the settings above that a function reads, which init writes in its environment ({', '.join(written)}), "
            f"those Lambda and the engine set ({', '.join(given)}), and these:", "",
            "| variable | meaning | read by |", "|---|---|---|"]
    out += [f"| `{v.name}` | {_cell(v.meaning)} | {', '.join(r.value for r in v.readers)} |"
            for v in FUNCTION_VARIABLES if v.name not in settings]
    out.append("")
    return "\n".join(out)


if __name__ == "__main__":
    print(env_example(), end="")
