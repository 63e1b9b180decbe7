#!/usr/bin/env python3
"""docker compose for stockpipe, after the checks whose failures compose reports late or unclearly.

    scripts/compose.py up -d --build         # any compose command and arguments, passed through
    scripts/compose.py -p NAME down -v       # global options (-p/--project-name) go first
    scripts/compose.py check [--engine-only] # only the checks: exit 0, or one line and 2 or 3

Before `up` (and `build`, `check`) it checks, each failure one line saying what to do:
ENGINE is an engine we have, PRODUCER_SOURCE and ENGINE_PORT make sense, Docker runs, the port is
free, a LocalStack image newer than 4.14.0 has a LOCALSTACK_AUTH_TOKEN, and the images exist or
can be pulled. When `up` fails anyway (the engine rejects its token, init fails) it reads the
containers' state and logs and says which and why.

Exit codes: 2 = the configuration needs fixing (.env), 3 = this machine cannot run it (no Docker,
an image that is not here and cannot be pulled); otherwise compose's own. Standard library only:
`make up` needs no virtualenv. Values come from the environment first, then .env (as compose does).
"""

from __future__ import annotations

import difflib
import errno
import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ENGINES = ("localstack", "ministack")
SOURCES = ("synthetic", "yfinance")
DEFAULTS = {
    "ENGINE": "localstack",
    "ENGINE_PORT": "4566",
    "PRODUCER_SOURCE": "synthetic",
    "LOCALSTACK_IMAGE": "localstack/localstack:4.14.0",
    "PYTHON_IMAGE": "python:3.11-slim-bookworm",
}
# The last LocalStack image that starts without an account; later ones exit without a token.
LAST_FREE_LOCALSTACK = (4, 14, 0)
# What our images are tagged (docker-compose.yml, docker-compose.engines.yml).
BUILT_IMAGES = {"ministack": "stockpipe-ministack:local"}
TOKEN_WORDS = re.compile(r"auth[ _-]?token|licen[cs]e|LOCALSTACK_AUTH_TOKEN|api[ _-]?key|activation", re.I)


class Problem(Exception):
    """One line for the user, and the exit code: 2 = fix the configuration, 3 = cannot run here."""

    def __init__(self, message: str, code: int = 2) -> None:
        super().__init__(message)
        self.code = code


# -- configuration -----------------------------------------------------------------------------


def read_dotenv(path: Path) -> dict[str, str]:
    """KEY=VALUE lines as compose reads them: comments, blank lines, optional quotes."""
    values: dict[str, str] = {}
    if not path.is_file():
        return values
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        key = key.strip().removeprefix("export ").strip()
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        values[key] = value
    return values


def configuration(environ: dict[str, str] | None = None) -> dict[str, str]:
    """The values compose will interpolate: the environment wins over .env; empty means default."""
    environ = dict(os.environ if environ is None else environ)
    merged = {**read_dotenv(ROOT / ".env"), **environ}
    return {**DEFAULTS, **{k: v for k, v in merged.items() if v != "" or k not in DEFAULTS}}


def where(variable: str, environ: dict[str, str] | None = None) -> str:
    environ = os.environ if environ is None else environ
    return "in the environment" if variable in environ else "in .env"


def check_choice(config: dict[str, str], variable: str, allowed: tuple[str, ...], what: str) -> None:
    value = config[variable]
    if value not in allowed:
        guess = difflib.get_close_matches(value.strip().lower(), allowed, n=1, cutoff=0.5)
        hint = f" (did you mean {guess[0]}?)" if guess else ""
        raise Problem(f"{variable}={value!r} ({where(variable)}) is not {what}: use {' or '.join(allowed)}{hint}")


def check_settings(config: dict[str, str]) -> None:
    engine = config["ENGINE"]
    check_choice(config, "ENGINE", ENGINES, "an engine")
    check_choice(config, "PRODUCER_SOURCE", SOURCES, "a source compose can run")
    port = config["ENGINE_PORT"]
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        raise Problem(f"ENGINE_PORT={port!r} ({where('ENGINE_PORT')}) is not a port number (1-65535)")
    if engine == "localstack" and localstack_needs_token(config["LOCALSTACK_IMAGE"]) \
            and not config.get("LOCALSTACK_AUTH_TOKEN", "").strip():
        raise Problem(
            f"LOCALSTACK_IMAGE={config['LOCALSTACK_IMAGE']} needs LOCALSTACK_AUTH_TOKEN: LocalStack images after "
            "4.14.0 (March 2026) do not start without an account. Set LOCALSTACK_AUTH_TOKEN in .env "
            "(app.localstack.cloud, Auth Token), or use LOCALSTACK_IMAGE=localstack/localstack:4.14.0, "
            "or ENGINE=ministack")


def localstack_needs_token(image: str) -> bool:
    """True unless the tag is a full version no newer than 4.14.0 (latest, 4.15, 2026.03... need one)."""
    name, _, digest = image.partition("@")
    repository, tag = name, "latest"
    if ":" in name.rsplit("/", 1)[-1]:
        repository, tag = name.rsplit(":", 1)
    if repository.endswith("localstack-pro"):
        return True
    if digest and tag == "latest":
        return False  # pinned by digest: we cannot tell its version; LocalStack will say
    version = re.fullmatch(r"v?(\d+)\.(\d+)\.(\d+)(-[a-z0-9]+)?", tag)
    return version is None or tuple(int(part) for part in version.groups()[:3]) > LAST_FREE_LOCALSTACK


# -- docker ------------------------------------------------------------------------------------


def run(command: list[str], timeout: float = 60, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, **kwargs)


def last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""


def check_docker() -> None:
    if shutil.which("docker") is None:
        raise Problem("Docker is not installed (no docker command): install Docker Desktop or Docker Engine", 3)
    try:
        info = run(["docker", "info", "--format", "{{.ServerVersion}}"], timeout=30)
    except subprocess.TimeoutExpired:
        raise Problem("Docker does not answer (docker info took over 30 s): restart Docker, then retry", 3) from None
    if info.returncode != 0 or not info.stdout.strip():
        reason = last_line(info.stderr) or "docker info failed"
        raise Problem(f"Docker is not running ({reason}): start Docker Desktop or the Docker service "
                      "(sudo systemctl start docker), then retry", 3)


def compose_command() -> list[str]:
    if run(["docker", "compose", "version"], timeout=30).returncode == 0:
        return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    raise Problem("Docker Compose is not installed: install the docker compose plugin (or docker-compose 1.29)", 3)


def image_here(image: str) -> bool:
    return run(["docker", "image", "inspect", image], timeout=30).returncode == 0


def check_image(image: str, variable: str, hint: str) -> None:
    """Present, or pulled now (what compose would do next anyway)."""
    if image_here(image):
        return
    print(f"compose: pulling {image} ...", file=sys.stderr, flush=True)
    try:
        pulled = run(["docker", "pull", "--quiet", image], timeout=900)
    except subprocess.TimeoutExpired:
        raise Problem(f"{variable}={image}: pulling it took over 15 minutes; {hint}", 3) from None
    if pulled.returncode != 0:
        reason = last_line(pulled.stderr).removeprefix("Error response from daemon: ")
        if re.search(r"unauthorized|denied|authentication required", reason, re.I):
            raise Problem(f"{variable}={image} cannot be pulled: the registry wants a login "
                          f"(docker login), or the name is wrong ({reason[:160]})", 2)
        reason = reason.rsplit(": ", 1)[-1]  # the cause, without the registry URL around it
        raise Problem(f"{variable}={image} is not on this machine and cannot be pulled ({reason[:120]}); {hint}", 3)


def check_images(config: dict[str, str], *, engine_only: bool, building: bool) -> None:
    base_hint = ("set PYTHON_IMAGE to a Python 3.11+ image you have; without registry access, "
                 "../shared/tools/docker-engine.sh builds local/python:3.11-bookworm")
    if config["ENGINE"] == "localstack":
        check_image(config["LOCALSTACK_IMAGE"], "LOCALSTACK_IMAGE",
                    "use MiniStack instead (ENGINE=ministack; for the tests --engine compose or embedded)")
        if engine_only:
            return
    needs_base = building or engine_only or any(not image_here(image) for image in built_images(config))
    if needs_base:
        check_image(config["PYTHON_IMAGE"], "PYTHON_IMAGE", base_hint)


def built_images(config: dict[str, str]) -> list[str]:
    images = [f"stockpipe:{config['PRODUCER_SOURCE']}"]
    if config["ENGINE"] in BUILT_IMAGES:
        images.append(BUILT_IMAGES[config["ENGINE"]])
    return images


def project_name(global_options: list[str], config: dict[str, str]) -> str:
    for index, option in enumerate(global_options):
        if option in ("-p", "--project-name") and index + 1 < len(global_options):
            return global_options[index + 1]
        if option.startswith("--project-name="):
            return option.split("=", 1)[1]
    name = config.get("COMPOSE_PROJECT_NAME") or ROOT.name
    return re.sub(r"[^a-z0-9_-]", "", name.lower())


def containers(project: str, service: str, *, running_only: bool = False) -> list[str]:
    command = ["docker", "ps", "--quiet", "--filter", f"label=com.docker.compose.project={project}",
               "--filter", f"label=com.docker.compose.service={service}"]
    if not running_only:
        command.insert(2, "--all")
    return run(command, timeout=30).stdout.split()


def check_port(config: dict[str, str], project: str) -> None:
    port = int(config["ENGINE_PORT"])
    if containers(project, "engine", running_only=True):
        return  # our own engine holds it: `up` again is fine
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
            return
        except OSError as error:
            if error.errno != errno.EADDRINUSE:
                return
    holder = run(["docker", "ps", "--filter", f"publish={port}", "--format", "{{.Names}}"], timeout=30).stdout.split()
    by = f"container {holder[0]}" if holder else "another program (stockpipe emulator? make demo?)"
    raise Problem(f"port {port} is already in use by {by}: stop it, or set ENGINE_PORT to a free port in .env "
                  f"(and AWS_ENDPOINT_URL=http://localhost:<that port> for the host CLI)")


def check(config: dict[str, str], project: str, *, engine_only: bool = False, building: bool = True,
          port: bool = True) -> list[str]:
    check_settings(config)
    check_docker()
    compose = compose_command()
    if port:
        check_port(config, project)
    check_images(config, engine_only=engine_only, building=building)
    return compose


# -- after a failed `up` -----------------------------------------------------------------------


def inspect(container: str) -> tuple[str, str, str]:
    state = run(["docker", "inspect", "--format",
                 "{{.State.Status}}|{{.State.ExitCode}}|{{if .State.Health}}{{.State.Health.Status}}{{end}}",
                 container], timeout=30).stdout.strip()
    status, code, health = (state.split("|") + ["", "", ""])[:3]
    return status, code, health


def logs(container: str, tail: int = 60) -> str:
    done = run(["docker", "logs", "--tail", str(tail), container], timeout=30)
    return done.stdout + done.stderr


def diagnose(config: dict[str, str], project: str) -> str | None:
    """Why `up` failed, from the containers themselves; None when compose's own message is all we know."""
    engine = containers(project, "engine")
    if engine:
        status, code, health = inspect(engine[0])
        if status != "running" or health not in ("healthy", ""):
            text = logs(engine[0])
            if config["ENGINE"] == "localstack" and TOKEN_WORDS.search(text):
                line = next((ln.strip() for ln in reversed(text.splitlines()) if TOKEN_WORDS.search(ln)), "")
                return (f"LocalStack refused to start ({line[:160]}): its LOCALSTACK_AUTH_TOKEN is missing, invalid "
                        "or expired. Renew it at app.localstack.cloud and set it in .env, or use "
                        "LOCALSTACK_IMAGE=localstack/localstack:4.14.0, or ENGINE=ministack")
            what = f"exited with code {code}" if status != "running" else f"is {health or 'not healthy'}"
            return (f"the engine ({config['ENGINE']}) {what}: {last_line(text)[:200] or 'no log'} "
                    f"(full log: docker logs {engine[0][:12]})")
    init = containers(project, "init")
    if init:
        status, code, _ = inspect(init[0])
        if status == "exited" and code not in ("0", ""):
            return f"init failed (exit {code}): {last_line(logs(init[0]))[:300]}"
    return None


# -- main --------------------------------------------------------------------------------------


def split_arguments(argv: list[str]) -> tuple[list[str], list[str]]:
    """Compose's global options (before the command) and the rest."""
    index = 0
    while index < len(argv) and argv[index].startswith("-"):
        index += 2 if argv[index] in ("-p", "--project-name", "-f", "--file", "--env-file", "--profile") else 1
    return argv[:index], argv[index:]


def main(argv: list[str]) -> int:
    global_options, rest = split_arguments(argv)
    if not rest:
        print(__doc__, file=sys.stderr)
        return 2
    command = rest[0]
    config = configuration()
    project = project_name(global_options, config)
    try:
        if command == "check":
            check(config, project, engine_only="--engine-only" in rest, port="--no-port" not in rest)
            return 0
        if command in ("up", "build", "create", "run"):
            compose = check(config, project, building=command == "build" or "--build" in rest,
                            port=command == "up")
        else:
            check_docker()
            compose = compose_command()
    except Problem as problem:
        print(f"compose: error: {problem}", file=sys.stderr)
        return problem.code
    done = subprocess.run([*compose, *global_options, *rest], cwd=ROOT)
    if done.returncode != 0 and command == "up":
        reason = diagnose(config, project)
        if reason:
            print(f"compose: error: {reason}", file=sys.stderr)
    return done.returncode


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except KeyboardInterrupt:
        sys.exit(130)
