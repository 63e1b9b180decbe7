"""scripts/compose.py (`make up` / `down` / `logs`) without Docker: every docker call goes to a fake that
answers as Docker would, so the checks, their one-line messages and the exit codes are proven here."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from tests.engines import compose_checks

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "compose.py"
RUNTIME_IMAGE = "public.ecr.aws/lambda/python:3.12"
NO_HOST = ('Error response from daemon: Get "https://public.ecr.aws/v2/": dial tcp: lookup public.ecr.aws '
           "on 127.0.0.53:53: no such host")
# What compose.py reads; a developer's environment must not leak into these tests.
VARIABLES = ("ENGINE", "ENGINE_PORT", "DASHBOARD_PORT", "PRODUCER_SOURCE", "LOCALSTACK_IMAGE", "LOCALSTACK_AUTH_TOKEN", "PYTHON_IMAGE",
             "LAMBDA_RUNTIME", "DOCKER_SOCKET", "LOCALSTACK_VOLUME", "COMPOSE_PROJECT_NAME", "DOCKER_HOST")


def done(command: list[str], code: int = 0, stdout: str = "", stderr: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.CompletedProcess(command, code, stdout, stderr)


class FakeDocker:
    """The docker CLI as compose.py calls it through `run`, and compose itself through subprocess.run."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []
        self.images = {"localstack/localstack:4.14.0", RUNTIME_IMAGE, "python:3.11-slim-bookworm",
                       "stockpipe:synthetic", "stockpipe-ministack:local"}
        self.pull_error = NO_HOST
        self.endpoint = "unix:///var/run/docker.sock"
        self.volumes: set[str] = set()
        self.lambda_listings: list[list[str]] = []  # what each `docker ps --filter name=-lambda-` answers
        self.compose_code = 0
        self.buildx = False

    def __call__(self, command: list[str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
        self.calls.append(command)
        match command:
            case ["docker", "info", *_]:
                return done(command, stdout="20.10.24\n")
            case ["docker", "compose", "version"]:
                return done(command, stdout="Docker Compose version v2.29.0\n")
            case ["docker", "context", "inspect", *_]:
                return done(command, stdout=self.endpoint + "\n")
            case ["docker", "image", "inspect", image]:
                return done(command, 0 if image in self.images else 1)
            case ["docker", "image", "ls", "--format", _]:
                return done(command, stdout="".join(f"{image}\n" for image in sorted(self.images)))
            case ["docker", "buildx", "version"]:
                return done(command, 0 if self.buildx else 1, "github.com/docker/buildx v0.17.1\n" if self.buildx else "")
            case ["docker", "pull", "--quiet", image]:
                return done(command, 1, stderr=self.pull_error + "\n")
            case ["docker", "volume", "inspect", name]:
                return done(command, 0 if name in self.volumes else 1)
            case ["docker", "volume", "create", *_, name]:
                self.volumes.add(name)
                return done(command, stdout=name)
            case ["docker", "ps", "--all", "--filter", "name=-lambda-", *_]:
                lines = self.lambda_listings.pop(0) if self.lambda_listings else []
                return done(command, stdout="".join(line + "\n" for line in lines))
            case ["docker", "ps", *_] | ["docker", "rm", *_]:
                return done(command)
        raise AssertionError(f"unexpected docker call: {command}")

    def compose(self, command: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
        """subprocess.run for compose itself (main passes cwd=ROOT)."""
        self.calls.append(command)
        return done(command, self.compose_code)

    def named(self, *prefix: str) -> list[list[str]]:
        return [call for call in self.calls if call[:len(prefix)] == list(prefix)]


@pytest.fixture
def compose(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[ModuleType]:
    module = compose_checks()
    monkeypatch.setattr(module, "ROOT", tmp_path)  # no .env of a developer's
    for variable in VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("COMPOSE_PROJECT_NAME", "stockpipe")
    monkeypatch.setenv("DASHBOARD_PORT", free_port())  # a dashboard (make demo) on 8000 must not matter here
    monkeypatch.setattr(module.shutil, "which", lambda name: f"/usr/bin/{name}")
    monkeypatch.setattr(module, "ENV_FILE", None)
    # Unit tests have no network: the dashboard "answers" when the test says so.
    monkeypatch.setattr(module, "wait_for_dashboard", lambda config, timeout=None: module.DASHBOARD_ANSWERS)
    monkeypatch.setattr(module, "DASHBOARD_ANSWERS", True, raising=False)
    yield module


@pytest.fixture
def docker(compose: ModuleType, monkeypatch: pytest.MonkeyPatch) -> FakeDocker:
    fake = FakeDocker()
    monkeypatch.setattr(compose, "run", fake)
    monkeypatch.setattr(compose.subprocess, "run", fake.compose)
    return fake


@pytest.fixture
def docker_socket(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A real unix socket (bound, never connected), short enough a path for AF_UNIX."""
    directory = tempfile.mkdtemp(prefix="sp-")
    path = f"{directory}/docker.sock"
    server = socket.socket(socket.AF_UNIX)
    server.bind(path)
    monkeypatch.setenv("DOCKER_SOCKET", path)
    yield path
    server.close()
    shutil.rmtree(directory, ignore_errors=True)


def free_port() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return str(probe.getsockname()[1])


def error_lines(captured: pytest.CaptureFixture[str]) -> list[str]:
    return [line for line in captured.readouterr().err.splitlines() if line.startswith("compose: error:")]


# -- DOCKER_SOCKET -----------------------------------------------------------------------------


def test_missing_socket_is_one_line_with_the_fix(compose, docker, monkeypatch, capsys, tmp_path):
    missing = str(tmp_path / "nowhere.sock")
    docker.endpoint = "unix:///run/user/1000/docker.sock"
    monkeypatch.setenv("DOCKER_SOCKET", missing)

    assert compose.main(["up", "-d", "--build"]) == 2
    errors = error_lines(capsys)
    assert errors == [
        f"compose: error: DOCKER_SOCKET={missing} (in the environment) is missing: LocalStack needs the Docker "
        "socket to run Lambdas. Set DOCKER_SOCKET in .env to your Docker's socket (this Docker listens on "
        "/run/user/1000/docker.sock), or use ENGINE=ministack"]
    assert not docker.named("docker", "compose", "up"), "compose must not start with a broken socket"


def test_a_directory_where_the_socket_should_be_is_named(compose, docker, monkeypatch, tmp_path):
    monkeypatch.setenv("DOCKER_SOCKET", str(tmp_path))  # what a bind mount of a missing path leaves behind
    with pytest.raises(compose.Problem, match=r"is a directory: LocalStack needs the Docker socket") as raised:
        compose.check_socket(compose.configuration())
    assert raised.value.code == 2


def test_socket_present_or_remote_daemon_passes(compose, docker, docker_socket, monkeypatch, tmp_path):
    compose.check_socket(compose.configuration())
    monkeypatch.setenv("DOCKER_SOCKET", str(tmp_path / "absent.sock"))
    docker.endpoint = "tcp://build-host:2376"  # the path is on that host: nothing to check here
    compose.check_socket(compose.configuration())


def test_ministack_needs_no_socket(compose, docker, monkeypatch, tmp_path):
    monkeypatch.setenv("ENGINE", "ministack")
    monkeypatch.setenv("DOCKER_SOCKET", str(tmp_path / "absent.sock"))
    compose.check(compose.configuration(), "stockpipe", port=False)
    assert not docker.named("docker", "context")


# -- the Lambda runtime image ------------------------------------------------------------------


def test_runtime_image_missing_is_one_line_naming_it(compose, docker, docker_socket, capsys):
    docker.images.discard(RUNTIME_IMAGE)

    assert compose.main(["up", "-d", "--build"]) == 3
    assert ["docker", "image", "inspect", RUNTIME_IMAGE] in docker.calls
    assert ["docker", "pull", "--quiet", RUNTIME_IMAGE] in docker.calls
    assert error_lines(capsys) == [
        f"compose: error: the Lambda runtime image {RUNTIME_IMAGE} (LAMBDA_RUNTIME=python3.12) is not on this "
        "machine and cannot be pulled (no such host); LocalStack runs every Lambda in it and leaves them Pending "
        f"without it: pull it on a machine with registry access and bring it here (docker pull {RUNTIME_IMAGE}; "
        f"docker save -o image.tar {RUNTIME_IMAGE}; then here: docker load -i image.tar), or run without "
        "LocalStack: set ENGINE=ministack in .env (MiniStack, built from PYTHON_IMAGE=python:3.11-slim-bookworm, "
        "which is here)"]
    assert not docker.named("docker", "compose", "up")


def test_runtime_image_follows_lambda_runtime(compose, docker, docker_socket, monkeypatch):
    monkeypatch.setenv("LAMBDA_RUNTIME", "python3.11")
    docker.images.add("public.ecr.aws/lambda/python:3.11")
    compose.check(compose.configuration(), "unused", engine_only=True, port=False)
    assert ["docker", "image", "inspect", "public.ecr.aws/lambda/python:3.11"] in docker.calls
    assert not docker.named("docker", "pull")

    monkeypatch.setenv("LAMBDA_RUNTIME", "nodejs20.x")
    with pytest.raises(compose.Problem, match=r"LAMBDA_RUNTIME='nodejs20.x' \(in the environment\) is not a Python"):
        compose.check(compose.configuration(), "unused", engine_only=True, port=False)


def test_expired_ecr_login_says_logout(compose, docker, docker_socket):
    docker.images.discard(RUNTIME_IMAGE)
    docker.pull_error = "Error response from daemon: denied: Your authorization token has expired."
    with pytest.raises(compose.Problem, match=r"docker logout public\.ecr\.aws") as raised:
        compose.check_runtime_image(compose.configuration())
    assert raised.value.code == 2


def test_ministack_does_not_ask_for_the_runtime_image(compose, docker, monkeypatch):
    monkeypatch.setenv("ENGINE", "ministack")
    docker.images.discard(RUNTIME_IMAGE)
    compose.check(compose.configuration(), "stockpipe", port=False)
    assert not [call for call in docker.calls if RUNTIME_IMAGE in call]


# -- exit codes --------------------------------------------------------------------------------


@pytest.mark.parametrize("argv", [["up", "-d", "--build"], ["down", "-v", "--remove-orphans"], ["logs", "-f"]])
def test_compose_exit_code_is_the_script_exit_code(compose, docker, docker_socket, monkeypatch, argv):
    monkeypatch.setenv("ENGINE_PORT", free_port())
    docker.compose_code = 17
    assert compose.main(argv) == 17
    docker.compose_code = 0
    assert compose.main(argv) == 0


def test_script_exit_codes_reach_the_shell(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "ENGINE": "ministak", "HOME": str(tmp_path)}
    bad = subprocess.run([sys.executable, str(SCRIPT), "up", "-d"], env=env, cwd=tmp_path,
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines() == [
        "compose: error: ENGINE='ministak' (in the environment) is not an engine: use localstack or ministack "
        "(did you mean ministack?)"]


@pytest.mark.skipif(shutil.which("make") is None, reason="no make here")
@pytest.mark.parametrize("target", ["up", "down", "logs"])
def test_make_reports_the_script_exit_code(tmp_path, target):
    """GNU make itself always exits 2 on a failed recipe; the script's code must reach its last line,
    not be hidden by a recipe that runs something after it."""
    fake_python = tmp_path / "python"
    fake_python.write_text("#!/bin/sh\necho \"$@\" >> \"$(dirname \"$0\")/argv\"\nexit 3\n")
    fake_python.chmod(0o755)
    made = subprocess.run(["make", "--no-print-directory", "-C", str(ROOT), target, f"PYTHON={fake_python}"],
                          capture_output=True, text=True, timeout=60)
    assert made.returncode == 2
    assert made.stderr.strip().splitlines()[-1].endswith(f"{target}] Error 3")
    assert (tmp_path / "argv").read_text().startswith(f"scripts/compose.py {target}")


# -- the LocalStack cache volume ---------------------------------------------------------------


def compose_files() -> tuple[dict, dict]:
    yaml = pytest.importorskip("yaml")
    return (yaml.safe_load((ROOT / "docker-compose.yml").read_text()),
            yaml.safe_load((ROOT / "docker-compose.engines.yml").read_text()))


def test_localstack_mounts_a_cache_volume_that_compose_makes_and_down_keeps():
    main, engines = compose_files()
    localstack = engines["services"]["localstack"]
    assert "localstack-cache:/var/lib/localstack" in localstack["volumes"]
    assert "${DOCKER_SOCKET:-/var/run/docker.sock}:/var/run/docker.sock" in localstack["volumes"]
    assert localstack["environment"]["DEBUG"] == "${LOCALSTACK_DEBUG:-0}"
    assert "volumes" not in engines["services"]["ministack"]
    for declared in (main["volumes"]["localstack-cache"], engines["volumes"]["localstack-cache"]):
        # not external: plain `docker compose up` creates it; `down` keeps it, only `down -v` removes it
        assert declared == {"name": "${LOCALSTACK_VOLUME:-stockpipe-localstack-cache}"}
    assert compose_checks().DEFAULTS["LOCALSTACK_VOLUME"] == "stockpipe-localstack-cache"
    makefile = (ROOT / "Makefile").read_text()
    assert "\t$(COMPOSE) down --remove-orphans\n" in makefile and "down -v" not in makefile


def test_env_example_documents_the_compose_variables():
    example = (ROOT / ".env.example").read_text()
    compose_section = example[example.index("# --- docker compose"):]
    for line in ("DOCKER_SOCKET=/var/run/docker.sock", "LOCALSTACK_DEBUG=0",
                 "LOCALSTACK_VOLUME=stockpipe-localstack-cache"):
        assert f"\n{line}\n" in compose_section


def test_up_leaves_volumes_to_compose_and_prints_the_dashboard_once_it_answers(compose, docker, docker_socket,
                                                                               monkeypatch, capsys):
    monkeypatch.setenv("ENGINE_PORT", free_port())
    monkeypatch.setenv("DASHBOARD_PORT", "8123")
    assert compose.main(["up", "-d"]) == 0
    assert not docker.named("docker", "volume")
    assert capsys.readouterr().out == "compose: dashboard: http://127.0.0.1:8123\n"
    compose.DASHBOARD_ANSWERS = False
    assert compose.main(["up", "-d"]) == 0
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.endswith("compose: the dashboard does not answer at http://127.0.0.1:8123 yet "
                                 "(docker compose logs dashboard says why)\n")
    assert compose.main(["up"]) == 0  # in the foreground, compose's own output is the story
    assert capsys.readouterr().out == ""


def test_images_build_with_buildkit_where_docker_has_it_else_without_the_legacy_notice(compose, docker):
    docker.buildx = True
    assert compose.build_environment(["docker", "compose"], {}) == {"DOCKER_BUILDKIT": "1",
                                                                     "COMPOSE_DOCKER_CLI_BUILD": "1"}
    docker.buildx = False
    assert compose.build_environment(["docker-compose"], {}) == {"COMPOSE_DOCKER_CLI_BUILD": "0"}
    assert compose.build_environment(["docker", "compose"], {}) == {"DOCKER_BUILDKIT": "0"}
    assert compose.build_environment(["docker-compose"], {"COMPOSE_DOCKER_CLI_BUILD": "1"}) == {
        "COMPOSE_DOCKER_CLI_BUILD": "1"}  # the user's own choice stays


# -- LocalStack's Lambda containers at `down` --------------------------------------------------

LEFTOVERS = [
    "a1\tstockpipe-engine-1-lambda-process-ticks-4f1c2e\t",      # LocalStack's, compose v2 engine name
    "a2\tstockpipe-engine-1-lambda-trend-alerts-77aa01\t",       # LocalStack's
    "b1\tstockpipe-engine-1\tstockpipe",                         # compose's own (no -lambda- anyway)
    "b2\tstockpipe-engine-1-lambda-x-1\tstockpipe",              # has a compose label: not LocalStack's
    "c1\tother-engine-1-lambda-process-ticks-0b0b0b\t",          # another project's
    "c2\tstockpipe-test-1a2b-engine-1-lambda-process-ticks-1\t",  # another project's, same prefix
]


def test_lambda_containers_are_this_projects_localstack_ones(compose, docker):
    docker.lambda_listings = [LEFTOVERS]
    assert compose.lambda_containers("stockpipe") == [
        ("a1", "stockpipe-engine-1-lambda-process-ticks-4f1c2e"), ("a2", "stockpipe-engine-1-lambda-trend-alerts-77aa01")]
    # docker-compose v1 names the engine my_proj_engine_1; LocalStack turns every '_' into '-'
    docker.lambda_listings = [["d1\tmy-proj-engine-1-lambda-process-ticks-9\t"]]
    assert compose.lambda_containers("my_proj") == [("d1", "my-proj-engine-1-lambda-process-ticks-9")]


def test_down_removes_leftover_lambda_containers_before_compose_down(compose, docker, capsys):
    docker.lambda_listings = [LEFTOVERS, []]
    assert compose.main(["down", "-v", "--remove-orphans"]) == 0
    removed = docker.named("docker", "rm")
    assert removed == [["docker", "rm", "--force", "a1", "a2"]]
    assert docker.calls.index(removed[0]) < docker.calls.index(["docker", "compose", "down", "-v", "--remove-orphans"])
    assert len(docker.named("docker", "compose", "down")) == 1
    assert ("compose: removing 2 LocalStack Lambda container(s) of stockpipe: stockpipe-engine-1-lambda-process-ticks-"
            "4f1c2e, stockpipe-engine-1-lambda-trend-alerts-77aa01") in capsys.readouterr().err


def test_down_again_when_the_engine_started_more_while_stopping(compose, docker, monkeypatch):
    late = ["e1\tstockpipe-engine-1-lambda-process-ticks-late01\t"]
    docker.lambda_listings = [[], late]
    compose_calls = []  # the first down fails: a Lambda container was still on the network

    def compose_run(command, **kwargs):
        compose_calls.append(command)
        return done(command, 1 if len(compose_calls) == 1 else 0)

    monkeypatch.setattr(compose.subprocess, "run", compose_run)
    assert compose.main(["-p", "stockpipe", "down", "-v"]) == 0
    assert docker.named("docker", "rm") == [["docker", "rm", "--force", "e1"]]
    assert compose_calls == [["docker", "compose", "-p", "stockpipe", "down", "-v"]] * 2


# -- the published ports -----------------------------------------------------------------------


def test_a_taken_dashboard_port_is_one_line_naming_its_variable(compose, docker, docker_socket, monkeypatch, capsys):
    monkeypatch.setenv("ENGINE_PORT", free_port())
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        monkeypatch.setenv("DASHBOARD_PORT", str(port))
        assert compose.main(["up", "-d"]) == 2
    assert error_lines(capsys) == [f"compose: error: port {port} is already in use by another "
                                   "program (stockpipe emulator? make demo?): stop it, or set DASHBOARD_PORT to a "
                                   "free port in .env"]
    monkeypatch.setenv("DASHBOARD_PORT", "80a")
    assert compose.main(["up", "-d"]) == 2
    assert error_lines(capsys) == ["compose: error: DASHBOARD_PORT='80a' (in the environment) is not a port number "
                                   "(1-65535)"]


def test_the_dashboard_service_is_built_like_the_others_and_published_on_loopback_only():
    main, _ = compose_files()
    dashboard, init = main["services"]["dashboard"], main["services"]["init"]
    assert dashboard["build"] == init["build"] and dashboard["build"]["args"]["PYTHON_IMAGE"] == \
        "${PYTHON_IMAGE:-python:3.11-slim-bookworm}"
    # the same port inside and out: the address it prints and the Host it is sent are the ones it serves
    assert dashboard["ports"] == ["127.0.0.1:${DASHBOARD_PORT:-8000}:${DASHBOARD_PORT:-8000}"]
    assert dashboard["command"] == ["dashboard", "--host", "0.0.0.0"]
    assert dashboard["environment"]["DASHBOARD_PORT"] == "${DASHBOARD_PORT:-8000}"
    assert "os.environ['DASHBOARD_PORT']" in dashboard["healthcheck"]["test"][-1]
    assert dashboard["depends_on"] == {"init": {"condition": "service_completed_successfully"}}
    assert compose_checks().DEFAULTS["DASHBOARD_PORT"] == "8000"


# Settings the containers do without: where the host's engine and dashboard listen, the embedded
# engine's folder (compose publishes its own ports; the dashboard container listens on all interfaces),
# the host's folder of the readers' memories (the containers keep theirs in their own working folder)
# and the host's folder of raw objects already read by in-process queries.
HOST_ONLY = {"ENGINE_PORT", "ENGINE_DATA_DIR", "DASHBOARD_HOST", "READER_STATE_DIR", "QUERY_CACHE_DIR"}


def test_every_pipeline_setting_reaches_the_containers():
    from stockpipe.settings import DEFAULTS

    main, _ = compose_files()
    environment = main["x-stockpipe"]["environment"]
    for variable in sorted(set(DEFAULTS) - HOST_ONLY - {"DASHBOARD_PORT"}):
        assert environment.get(variable) == f"${{{variable}:-}}", variable
    assert HOST_ONLY.isdisjoint(environment)


def test_the_alerts_container_reads_a_queue_of_its_own():
    main, _ = compose_files()
    assert main["services"]["alerts"]["command"] == ["alerts", "--follow", "--inbox", "compose"]


# -- .env, by the CLI's rules, before anything starts ------------------------------------------


def refused(compose, docker, capsys, tmp_path, line: str) -> list[str]:
    env_file = tmp_path / "my.env"
    env_file.write_text(f"ENGINE=ministack\n{line}\n", encoding="utf-8")
    assert compose.main(["--env-file", str(env_file), "-p", "stockpipe", "up", "-d", "--build"]) == 2
    assert docker.calls == []  # not even `docker info`: nothing started
    return error_lines(capsys)


def test_a_quoted_trailing_space_is_refused_before_any_container_starts(compose, docker, capsys, tmp_path):
    assert refused(compose, docker, capsys, tmp_path, 'STREAM_NAME="stock-market-stream "') == [
        "compose: error: STREAM_NAME='stock-market-stream ' has leading or trailing whitespace (U+0020); remove it "
        f"(set in {tmp_path / 'my.env'} line 2); fix it in {tmp_path / 'my.env'} (nothing was started)"]


@pytest.mark.parametrize(("line", "message"), [
    ("TOPIC_NAME=Stock_Trend\u200bAlerts", "TOPIC_NAME='Stock_Trend\u200bAlerts' contains the hidden character "
                                          "U+200B; retype it"),
    ("TABLE_NAME=stock market data", "TABLE_NAME='stock market data' is not a valid name: AWS allows letters, "
                                     "digits, _ . - (3-255)"),
    ("SMA_SHORT=30", "SMA_SHORT=30 must be smaller than SMA_LONG=20"),
    ("COMPOSE_ALERTS_QUEUE_NAME=stock-market-alerts-inbox", "ALERTS_QUEUE_NAME='stock-market-alerts-inbox' is also "
     "ALERTS_QUEUE_NAME"),
])
def test_settings_the_cli_refuses_are_refused_before_up(compose, docker, capsys, tmp_path, line, message):
    lines = refused(compose, docker, capsys, tmp_path, line)
    assert len(lines) == 1 and lines[0].startswith("compose: error: "), lines
    assert lines[0].endswith(f"; fix it in {tmp_path / 'my.env'} (nothing was started)")


def test_an_invisible_character_in_a_compose_variable_is_named(compose, docker, capsys, tmp_path):
    assert refused(compose, docker, capsys, tmp_path, 'PYTHON_IMAGE="local/python:3.11-bookworm\u00a0"') == [
        "compose: error: PYTHON_IMAGE='local/python:3.11-bookworm\\xa0' (in " + str(tmp_path / "my.env") + " line 2) "
        "has leading or trailing whitespace (U+00A0); remove it"]


# -- messages a user can follow ------------------------------------------------------------------


def test_a_missing_localstack_image_names_one_whole_alternative(compose, docker, docker_socket, capsys):
    docker.images -= {"localstack/localstack:4.14.0", "python:3.11-slim-bookworm"}
    docker.images.add("local/python:3.11-bookworm")
    assert compose.main(["up", "-d"]) == 3
    assert error_lines(capsys) == [
        "compose: error: LOCALSTACK_IMAGE=localstack/localstack:4.14.0 is not on this machine and cannot be pulled "
        "(no such host); pull it on a machine with registry access and bring it here (docker pull "
        "localstack/localstack:4.14.0; docker save -o image.tar localstack/localstack:4.14.0; then here: docker load "
        "-i image.tar), or run without LocalStack: set ENGINE=ministack and PYTHON_IMAGE=local/python:3.11-bookworm "
        "(an image this machine has) in .env"]


def test_a_missing_python_image_says_how_to_bring_one_or_use_one_here(compose, docker, monkeypatch, capsys):
    monkeypatch.setenv("ENGINE", "ministack")
    docker.images = {"local/python:3.11-bookworm", "public.ecr.aws/lambda/python:3.12"}
    assert compose.main(["up", "-d", "--build"]) == 3
    assert error_lines(capsys) == [
        "compose: error: PYTHON_IMAGE=python:3.11-slim-bookworm is not on this machine and cannot be pulled "
        "(no such host); set PYTHON_IMAGE in .env to a Debian Python 3.11+ image this machine has (here: "
        "local/python:3.11-bookworm), or pull it on a machine with registry access and bring it here (docker pull "
        "python:3.11-slim-bookworm; docker save -o image.tar python:3.11-slim-bookworm; then here: docker load -i "
        "image.tar)"]


def test_a_failed_up_says_make_down_removes_what_started(compose, docker, docker_socket, monkeypatch, capsys):
    monkeypatch.setenv("ENGINE_PORT", free_port())
    docker.compose_code = 1
    monkeypatch.setattr(compose, "containers", lambda project, service, running_only=False: ["c0ffee"])
    monkeypatch.setattr(compose, "inspect", lambda container: ("exited", "1", ""))
    monkeypatch.setattr(compose, "logs", lambda container, tail=60: "error: STREAM_NAME='x ' has trailing space\n")
    monkeypatch.setattr(compose, "check_pipeline", lambda config, environ=None: None)
    assert compose.main(["up", "-d"]) == 1
    assert error_lines(capsys) == [
        "compose: error: the engine (localstack) exited with code 1: error: STREAM_NAME='x ' has trailing space "
        "(full log: docker logs c0ffee); `make down` removes what it started"]


# -- what tests/engines.py uses ----------------------------------------------------------------


def test_engines_interface_still_there(compose, docker, docker_socket):
    for name in ("configuration", "check", "Problem", "image_here", "TOKEN_WORDS"):
        assert hasattr(compose, name), name
    config = compose.configuration({"ENGINE": "localstack", "DOCKER_SOCKET": docker_socket})
    assert compose.check(config, "unused", engine_only=True, port=False) == ["docker", "compose"]
    assert compose.image_here(RUNTIME_IMAGE)


def test_a_token_with_a_stray_character_is_named_but_never_printed(compose, docker, capsys, tmp_path):
    lines = refused(compose, docker, capsys, tmp_path, 'LOCALSTACK_AUTH_TOKEN="ls-SeCrEt-1234 "')
    assert lines == [f"compose: error: LOCALSTACK_AUTH_TOKEN (in {tmp_path / 'my.env'} line 2) has leading or "
                     "trailing whitespace (U+0020); remove it"]
