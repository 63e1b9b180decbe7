"""The AWS engines the e2e suite runs on (`pytest --engine ...`), each a context manager that yields
the endpoint URL (None for real AWS) and cleans up after itself.

An engine this machine cannot run is skipped with one line saying why (pytest.skip in the session
fixture): no Docker engine, an image that is not here and cannot be pulled, no token for a newer
LocalStack, no AWS credentials. The checks are the ones `make up` makes (scripts/compose.py), so the
tests and the front door say the same thing.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

import pytest

from stockpipe.engine import EmbeddedEngine, free_port, healthy

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_SCRIPT = ROOT / "scripts" / "compose.py"
LOCALSTACK_SERVICES = ("kinesis", "dynamodb", "dynamodbstreams", "s3", "sns", "sqs", "lambda", "iam", "sts", "logs")
REGION = "us-east-1"


def compose_checks() -> ModuleType:
    """scripts/compose.py as a module: a script, not part of the package, shared with `make up`."""
    spec = importlib.util.spec_from_file_location("stockpipe_compose_script", COMPOSE_SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def engines_script() -> ModuleType:
    """scripts/engines.py as a module: the Engines page's renderer, a development tool (`make engines`)."""
    spec = importlib.util.spec_from_file_location("stockpipe_engines_script", ROOT / "scripts" / "engines.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@contextmanager
def embedded() -> Iterator[str]:
    with EmbeddedEngine(free_port(), region=REGION) as engine:
        yield engine.url


@contextmanager
def localstack() -> Iterator[str]:
    """testcontainers' LocalStack module: 4.14.0, or LOCALSTACK_IMAGE (a newer one with its token)."""
    checks = compose_checks()
    config = checks.configuration({**os.environ, "ENGINE": "localstack"})
    image, token = config["LOCALSTACK_IMAGE"], config.get("LOCALSTACK_AUTH_TOKEN", "")
    try:
        checks.check(config, "unused", engine_only=True, port=False)
    except checks.Problem as problem:
        pytest.skip(f"--engine localstack cannot run here: {problem}")

    from testcontainers.community.localstack import LocalStackContainer
    from testcontainers.core.config import testcontainers_config

    if not checks.image_here(testcontainers_config.ryuk_image):
        # The reaper only matters when a session dies hard; we stop the container ourselves.
        testcontainers_config.ryuk_disabled = True
    container = (LocalStackContainer(image=image, region_name=REGION)
                 .with_services(*LOCALSTACK_SERVICES)
                 # Lambda runs in containers of its own, started through the host's Docker.
                 .with_volume_mapping("/var/run/docker.sock", "/var/run/docker.sock", "rw"))
    if token:
        container.with_env("LOCALSTACK_AUTH_TOKEN", token)
    try:
        container.start(timeout=180)
    except Exception as error:  # testcontainers raises Docker's and its own kinds
        logs = b"".join(container.get_logs()).decode(errors="replace") if container.get_wrapped_container() else ""
        if checks.TOKEN_WORDS.search(logs):
            pytest.skip(f"--engine localstack: {image} refused its LOCALSTACK_AUTH_TOKEN (missing, invalid or expired)")
        raise RuntimeError(f"LocalStack ({image}) did not start: {error}\n{logs[-3000:]}") from error
    try:
        yield container.get_url()
    finally:
        container.stop()


@dataclass
class ComposeProject:
    """The compose project of docker-compose.yml, under a name of its own, through scripts/compose.py."""

    name: str
    env: dict[str, str] = field(repr=False)
    up_output: str = ""  # what `up` printed on stdout (the dashboard's address)

    def run(self, *args: str, timeout: float = 1200) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, str(COMPOSE_SCRIPT), "-p", self.name, *args], env=self.env, cwd=ROOT,
                              capture_output=True, text=True, timeout=timeout)

    def logs(self, service: str) -> str:
        return self.run("logs", "--no-color", service, timeout=60).stdout


@contextmanager
def compose(holder: list[ComposeProject]) -> Iterator[str]:
    """The MiniStack variant of docker-compose.yml, on a free port, removed at the end of the session.
    PYTHON_IMAGE comes from the environment (or .env), as for `make up`."""
    port = free_port()
    project = ComposeProject(
        f"stockpipe-test-{uuid.uuid4().hex[:8]}",
        # The project's own producer runs synthetic ticks whatever a developer's .env says; its cache volume
        # is its own, so that `down -v` at the end never removes a user's LocalStack cache.
        {**os.environ, "ENGINE": "ministack", "ENGINE_PORT": str(port), "DASHBOARD_PORT": str(free_port()),
         "PRODUCER_SOURCE": "synthetic", "LOCALSTACK_VOLUME": f"stockpipe-test-cache-{uuid.uuid4().hex[:8]}"},
    )
    checks = compose_checks()
    try:
        checks.check(checks.configuration(project.env), project.name)
    except checks.Problem as problem:
        if problem.code == 3:
            pytest.skip(f"--engine compose cannot run here: {problem}")
        raise
    try:
        up = project.run("up", "-d", "--build")
        if up.returncode != 0:
            raise RuntimeError(f"docker compose up failed ({up.returncode}):\n{up.stderr[-4000:]}")
        project.up_output = up.stdout
        url = f"http://127.0.0.1:{port}"
        if not healthy(url, timeout=5):
            raise RuntimeError(f"the compose engine does not answer at {url}:\n{project.logs('engine')[-3000:]}")
        holder.append(project)
        yield url
    finally:
        project.run("down", "-v", "--remove-orphans", "--timeout", "5", timeout=300)


@contextmanager
def aws() -> Iterator[None]:
    """Real AWS with the caller's usual credentials. Only when asked for by name: it costs money."""
    import boto3

    session = boto3.Session()
    if session.get_credentials() is None:
        pytest.skip("--engine aws: no AWS credentials (set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY)")
    yield None
