"""The documentation site: built strictly and offline, its reference pages generated from the one
declaration of each thing (the parser, the settings through .env.example), the README a front door,
and the workshop's pages readable by the lab test."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
import yaml

from stockpipe import configuration
from stockpipe.cli import build_parser
from stockpipe.lab import LABS
from stockpipe.settings import DEFAULTS
from tests.engines import compose_checks
from tests.workshop import INSTRUCTOR, LAB_PAGES, blocks, sh_blocks

ROOT = Path(__file__).resolve().parents[2]
# Variables .env.example documents that are not the pipeline's settings, and whose they are.
NOT_SETTINGS = {
    "boto3": {"AWS_ENDPOINT_URL", "AWS_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"},
    "the embedded engine": {"ENGINE_LOG_LEVEL"},
    "docker compose": {"LOCALSTACK_AUTH_TOKEN", "LOCALSTACK_DEBUG", "COMPOSE_PROJECT_NAME"},
}


def hooks() -> ModuleType:
    spec = importlib.util.spec_from_file_location("docs_hooks", ROOT / "scripts" / "docs_hooks.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


SECTION = re.compile(r"^# --- (.+?) -+$")
VARIABLE = re.compile(r"^([A-Z][A-Z0-9_]*)=(.*)$")
# A variable left out on purpose, shown commented: `# NAME=value` (no space, no colon).
OPTIONAL = re.compile(r"^#\s*([A-Z][A-Z0-9_]*)=([^\s:]*)$")


def env_example() -> dict[str, tuple[str, str]]:
    """.env.example as a reader sees it: {variable: (its value, the comment block right above it)}; a
    commented-out assignment (`# NAME=value`) is a variable left unset."""
    entries: dict[str, tuple[str, str]] = {}
    comment: list[str] = []
    for line in (ROOT / ".env.example").read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        assignment = VARIABLE.match(stripped) or OPTIONAL.match(stripped)
        if SECTION.match(stripped) or not stripped:
            comment = []
        elif assignment:
            name, value = assignment.groups()
            entries[name] = ("" if stripped.startswith("#") else value, " ".join(comment))
            comment = []
        elif stripped.startswith("#"):
            comment.append(stripped.lstrip("#").strip())
    return entries


def test_env_example_is_rendered_from_the_declarations():
    assert (ROOT / ".env.example").read_text(encoding="utf-8") == configuration.env_example(), (
        "a declaration in stockpipe/settings.py changed: python -m stockpipe.configuration > .env.example")
    for name, (_, meaning) in env_example().items():
        assert meaning, f"{name} has no comment of its own in .env.example"


def test_env_example_holds_every_setting_with_its_declared_default_and_nothing_unknown():
    documented = env_example()
    assert {name: documented.get(name, ("(missing)", ""))[0] for name in DEFAULTS} == DEFAULTS
    compose = compose_checks().DEFAULTS
    assert {name: documented[name][0] for name in compose} == compose  # scripts/compose.py's own defaults
    others = set().union(*NOT_SETTINGS.values()) | (set(compose) - set(DEFAULTS))
    assert set(documented) - set(DEFAULTS) == others


def test_the_configuration_page_lists_every_variable_with_its_default():
    page = configuration.markdown()
    for name, (default, _) in env_example().items():
        shown = f"`{default}`" if default else "(empty)"
        assert re.search(rf"^\| `{name}` \| {re.escape(shown)} \| ", page, re.M), name
    assert "| `COMPOSE_ALERTS_QUEUE_NAME` | `stock-market-alerts-compose` | The compose project's alerts" in page
    assert "(as above)" not in page  # every variable has a comment of its own in .env.example


def test_the_commands_page_names_every_command_and_option_of_the_parser():
    page = hooks().commands_markdown(build_parser())
    sub = next(a for a in build_parser()._actions if a.__class__.__name__ == "_SubParsersAction")
    for name, command in sub.choices.items():
        assert f"### `stockpipe {name}`" in page
        for action in command._actions:
            for option in action.option_strings:
                if option not in ("-h", "--help"):
                    assert f"`{option}`" in page, (name, option)
    for marker, page_name in ((hooks().COMMANDS_MARKER, "commands.md"), (hooks().CONFIGURATION_MARKER,
                                                                          "configuration.md")):
        assert marker in (ROOT / "docs" / page_name).read_text()


def test_the_site_builds_strictly_and_loads_nothing_from_the_internet(tmp_path):
    site = tmp_path / "site"
    built = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet", "--site-dir", str(site)],
                           cwd=ROOT, capture_output=True, text=True, timeout=300,
                           env={"PATH": "/usr/bin:/bin", "NO_MKDOCS_2_WARNING": "1", "HOME": str(tmp_path)})
    assert built.returncode == 0, built.stderr
    fetched = re.compile(r"<(?:script|link|img|iframe)\b[^>]*\b(?:src|href)=\"(?:https?:)?//", re.I)
    pages = list(site.rglob("*.html"))
    assert len(pages) >= 20
    for page in pages:
        html = page.read_text(encoding="utf-8")
        found = [m.group(0) for m in fetched.finditer(html) if 'rel="canonical"' not in m.group(0)]
        assert found == [], (page, found)
        assert "fonts.googleapis" not in html and "fonts.gstatic" not in html
    css = "".join(path.read_text(errors="replace") for path in site.rglob("*.css"))
    assert not re.search(r"@import\s+url\(\s*['\"]?https?:", css)


def test_every_docs_page_is_in_the_navigation_and_every_lab_has_its_page():
    config = yaml.load((ROOT / "mkdocs.yml").read_text(), Loader=yaml.BaseLoader)  # no tags to resolve
    listed: set[str] = set()

    def walk(node: object) -> None:
        if isinstance(node, str):
            listed.add(node)
        elif isinstance(node, dict):
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(config["nav"])
    pages = {str(path.relative_to(ROOT / "docs")) for path in (ROOT / "docs").rglob("*.md")}
    assert pages == listed
    for lab in LABS.values():
        assert lab.page in listed and (ROOT / "docs" / lab.page).is_file()
    assert [path.name for path in LAB_PAGES] == [Path(lab.page).name for lab in LABS.values()]


def test_every_lab_page_ends_with_its_check_and_marks_every_command():
    for lab, page in zip(LABS.values(), LAB_PAGES, strict=True):
        found = blocks(page)  # raises on a sh block without a marker
        checks = [b for b in found if re.search(rf"^stockpipe lab check {lab.number}\b", b.text, re.M)]
        assert checks, page.name


def test_the_readme_is_a_front_door():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= 150
    for command in ("make demo", "make test", "make docs"):
        assert command in readme
    for page in re.findall(r"\]\((docs/[^)#]+)", readme):
        assert (ROOT / page).is_file(), page


@pytest.mark.parametrize("page", sorted((ROOT / "docs").rglob("*.md")), ids=lambda p: p.name)
def test_no_page_points_outside_the_repository(page):
    assert not re.search(r"\.\./shared|shared[/]tools", page.read_text(encoding="utf-8"))


def test_the_instructor_pages_commands_are_the_ones_their_tests_run():
    """make wheelhouse: tests/e2e/test_wheelhouse.py; docker save and load: tests/e2e/test_compose.py."""
    assert sh_blocks(INSTRUCTOR) == [
        "make wheelhouse",
        "docker save -o stockpipe-images.tar stockpipe:synthetic stockpipe-ministack:local",
        "docker load -i stockpipe-images.tar"]
