"""Test tiers: tests/unit (no network) and tests/e2e (the whole flow on a real engine).

The e2e engine is chosen with --engine (tests/engines.py). Every resource a test touches is named
uniquely for the run and removed by it, so any engine, even a shared AWS account, works: a test of
the deployed pipeline runs on the session's deployment, emptied before it (``shared_stacks``, see
tests/flow_fixtures.py); a test of init or of a configuration of its own makes its own stack.
"""

from __future__ import annotations

import inspect
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from tests.engines import ComposeProject
    from tests.flow_fixtures import SharedStack
    from tests.reliability.figures import Row

FIGURES: list[Row] = []  # the fault suite's rows, from the reports of this run (tests/reliability/figures.py)

ENGINES = ("embedded", "localstack", "compose", "aws")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--engine",
        choices=ENGINES,
        default=os.environ.get("STOCKPIPE_TEST_ENGINE", "embedded"),
        help="AWS engine for the e2e tests: embedded = MiniStack in a child process on a free port "
        "(default); localstack = testcontainers' LocalStack (LOCALSTACK_IMAGE, default 4.14.0); "
        "compose = the docker-compose.yml project with MiniStack (PYTHON_IMAGE); aws = real AWS "
        "(your credentials, costs money). One that cannot run here is skipped with the reason.",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/e2e/" in item.nodeid or "tests/reliability/" in item.nodeid:
            item.add_marker(pytest.mark.e2e)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    """An engine that cannot run skips every e2e test for one reason: report it at one place, so
    `-ra` folds it into one summary line instead of one per test (pytest 8 shows the test's)."""
    outcome = yield
    report = outcome.get_result()
    if report.skipped and isinstance(report.longrepr, tuple) \
            and str(report.longrepr[2]).removeprefix("Skipped: ").startswith("--engine "):
        report.longrepr = (str(Path(__file__)), _ENGINE_FIXTURE_LINE, report.longrepr[2])


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when == "call" and report.user_properties:
        from tests.reliability.figures import rows_of

        FIGURES.extend(rows_of(report))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if FIGURES:
        from tests.reliability.figures import print_table

        print_table(terminalreporter, FIGURES)


@dataclass(frozen=True)
class Engine:
    name: str
    url: str | None  # None: real AWS
    compose: ComposeProject | None = None  # --engine compose: the project, for its logs


@pytest.fixture(scope="session")
def engine(request: pytest.FixtureRequest) -> Iterator[Engine]:
    from tests import engines

    name = request.config.getoption("--engine")
    with pytest.MonkeyPatch.context() as patch:
        if name == "aws":
            # The caller's own credentials, profile and region; only an emulator endpoint must go.
            for variable in list(os.environ):
                if variable.startswith("AWS_ENDPOINT_URL"):
                    patch.delenv(variable)
            if not (os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")):
                import boto3

                patch.setenv("AWS_REGION", boto3.Session().region_name or "us-east-1")
            with engines.aws():
                yield Engine(name, None)
            return
        # The tests own the AWS environment: nothing from the user's shell leaks in.
        for variable in list(os.environ):
            if variable.startswith("AWS_"):
                patch.delenv(variable)
        patch.setenv("AWS_REGION", "us-east-1")
        patch.setenv("AWS_ACCESS_KEY_ID", "test")
        patch.setenv("AWS_SECRET_ACCESS_KEY", "test")
        projects: list[ComposeProject] = []
        start = {"embedded": engines.embedded, "localstack": engines.localstack,
                 "compose": lambda: engines.compose(projects)}[name]
        with start() as url:
            patch.setenv("AWS_ENDPOINT_URL", url)
            yield Engine(name, url, projects[0] if projects else None)


_ENGINE_FIXTURE_LINE = inspect.getsourcelines(engine)[1]


@pytest.fixture(scope="session")
def shared_stacks(engine: Engine) -> Iterator[dict[str, SharedStack]]:
    """The session's deployments, one per transport (INGEST), each made when a test first asks for it
    and removed at the end: e2e and reliability tests share them."""
    from tests.flow_fixtures import SharedStack

    stacks = {ingest: SharedStack(ingest) for ingest in ("kinesis", "sqs")}
    yield stacks
    for stack in stacks.values():
        stack.remove()


@pytest.fixture(autouse=True)
def reader_state(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test's readers of the alerts remember what they showed in a folder of its own
    (READER_STATE_DIR): the shared stacks' queues and ledger keep their names from test to test, and
    tests publish the same alerts again, which a reader that remembered them would not show."""
    folder = tmp_path_factory.mktemp("readers")
    monkeypatch.setenv("READER_STATE_DIR", str(folder))
    return folder


@pytest.fixture
def names() -> dict[str, str]:
    """Resource names unique to one test, so tests never share state (and could share an account)."""
    from stockpipe.settings import unique_names

    return unique_names(f"sp{uuid.uuid4().hex[:8]}")
