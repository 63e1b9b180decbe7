#!/usr/bin/env python3
"""docker compose for stockpipe, after the checks whose failures compose reports late or unclearly.

    scripts/compose.py up -d --build         # any compose command and arguments, passed through
    scripts/compose.py -p NAME down -v       # global options (-p/--project-name) go first
    scripts/compose.py check [--engine-only] # only the checks: exit 0, or one line and 2 or 3

Before `up` (and `build`, `check`) it checks, each failure one line saying what to do:
ENGINE is an engine we have, PRODUCER_SOURCE, ENGINE_PORT and DASHBOARD_PORT make sense, Docker runs,
the ports are free, a LocalStack image newer than 4.14.0 has a LOCALSTACK_AUTH_TOKEN, and the images exist or
can be pulled. For LocalStack also: DOCKER_SOCKET is a Docker socket, and the Lambda runtime image
(public.ecr.aws/lambda/python:<LAMBDA_RUNTIME's version>) is here or can be pulled, since without
it LocalStack leaves every function Pending. `up` creates the external volume LOCALSTACK_VOLUME
(LocalStack's /var/lib/localstack, where 4.14.0 installs kinesis-mock from npm), which `down -v`
keeps. When `up` fails anyway (the engine rejects its token, init fails) it reads the containers'
state and logs and says which and why. `down` first removes LocalStack's own Lambda containers
(not compose's; they outlive their engine and hold the network).

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
import stat
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ENGINES = ("localstack", "ministack")
SOURCES = ("synthetic", "yfinance")
DEFAULTS = {
    "ENGINE": "localstack",
    "ENGINE_PORT": "4566",
    "DASHBOARD_PORT": "8000",
    "PRODUCER_SOURCE": "synthetic",
    "LOCALSTACK_IMAGE": "localstack/localstack:4.14.0",
    "PYTHON_IMAGE": "python:3.11-slim-bookworm",
    "LAMBDA_RUNTIME": "python3.12",
    "DOCKER_SOCKET": "/var/run/docker.sock",
    "LOCALSTACK_VOLUME": "stockpipe-localstack-cache",
}
# Where LocalStack (4.x) takes a function's runtime image from: public.ecr.aws/lambda/python:3.12.
LAMBDA_IMAGE_PREFIX = "public.ecr.aws/lambda/"
# The last LocalStack image that starts without an account; later ones exit without a token.
LAST_FREE_LOCALSTACK = (4, 14, 0)
# The ports the project publishes on the host (127.0.0.1 only), and the service behind each.
PORTS = {"ENGINE_PORT": "engine", "DASHBOARD_PORT": "dashboard"}
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


def where(variable: str, environ: Mapping[str, str] | None = None) -> str:
    environ = os.environ if environ is None else environ
    if variable in environ:
        return "in the environment"
    return "in .env" if read_dotenv(ROOT / ".env").get(variable) else "the default"


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
    for variable in PORTS:
        port = config[variable]
        if not port.isdigit() or not 1 <= int(port) <= 65535:
            raise Problem(f"{variable}={port!r} ({where(variable)}) is not a port number (1-65535)")
    if engine == "localstack" and localstack_needs_token(config["LOCALSTACK_IMAGE"]) \
            and not config.get("LOCALSTACK_AUTH_TOKEN", "").strip():
        raise Problem(
            f"LOCALSTACK_IMAGE={config['LOCALSTACK_IMAGE']} needs LOCALSTACK_AUTH_TOKEN: LocalStack images after "
            "4.14.0 (March 2026) do not start without an account. Set LOCALSTACK_AUTH_TOKEN in .env "
            "(app.localstack.cloud, Auth Token), or use LOCALSTACK_IMAGE=localstack/localstack:4.14.0, "
            "or ENGINE=ministack")
    if engine == "localstack":
        runtime_image(config)  # a LAMBDA_RUNTIME LocalStack has no image for: say so before any pull


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


def run(command: list[str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout)


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


def check_image(image: str, variable: str, hint: str, *, label: str | None = None) -> None:
    """Present, or pulled now (what compose would do next anyway). `label` names the image in the
    messages when it is not the value of `variable` itself."""
    if image_here(image):
        return
    what = label or f"{variable}={image}"
    print(f"compose: pulling {image} ...", file=sys.stderr, flush=True)
    try:
        pulled = run(["docker", "pull", "--quiet", image], timeout=900)
    except subprocess.TimeoutExpired:
        raise Problem(f"{what}: pulling it took over 15 minutes; {hint}", 3) from None
    if pulled.returncode != 0:
        reason = last_line(pulled.stderr).removeprefix("Error response from daemon: ")
        if re.search(r"unauthorized|denied|authentication required|token has expired", reason, re.I):
            login = ("an expired public.ecr.aws login (docker logout public.ecr.aws)"
                     if image.startswith("public.ecr.aws/") else "a login (docker login)")
            raise Problem(f"{what} cannot be pulled: the registry wants {login}, or the name is wrong "
                          f"({reason[:160]})", 2)
        reason = reason.rsplit(": ", 1)[-1]  # the cause, without the registry URL around it
        raise Problem(f"{what} is not on this machine and cannot be pulled ({reason[:120]}); {hint}", 3)


def runtime_image(config: Mapping[str, str]) -> str:
    """The image LocalStack runs a LAMBDA_RUNTIME function in (4.14.0: public.ecr.aws/lambda/ + python:3.12)."""
    runtime = config["LAMBDA_RUNTIME"]
    version = re.fullmatch(r"python(3\.\d{1,2})", runtime)
    if version is None:
        raise Problem(f"LAMBDA_RUNTIME={runtime!r} ({where('LAMBDA_RUNTIME')}) is not a Python Lambda runtime: "
                      "use one such as python3.12")
    return f"{LAMBDA_IMAGE_PREFIX}python:{version.group(1)}"


def check_runtime_image(config: Mapping[str, str]) -> None:
    """LocalStack pulls it at CreateFunction and leaves the function Pending until it has it: without
    it, init would wait minutes for nothing. Here or pulled now, or one line."""
    image = runtime_image(config)
    check_image(image, "LAMBDA_RUNTIME",
                "LocalStack runs every Lambda in it and leaves them Pending without it: pull it where a registry "
                "is reachable and bring it here (docker save | docker load), or use ENGINE=ministack",
                label=f"the Lambda runtime image {image} (LAMBDA_RUNTIME={config['LAMBDA_RUNTIME']})")


def docker_endpoint() -> str:
    """Where the docker client talks to the daemon: DOCKER_HOST, else the current context's host."""
    if os.environ.get("DOCKER_HOST"):
        return os.environ["DOCKER_HOST"]
    done = run(["docker", "context", "inspect", "--format", "{{.Endpoints.docker.Host}}"], timeout=30)
    return done.stdout.strip() if done.returncode == 0 else ""


def check_socket(config: Mapping[str, str]) -> None:
    """DOCKER_SOCKET must be the daemon's socket: compose would mount whatever is there (or make an empty
    directory there), LocalStack would start, and every Lambda would fail later, far from the cause."""
    path = config["DOCKER_SOCKET"]
    endpoint = docker_endpoint()
    if endpoint and not endpoint.startswith("unix://"):
        return  # a remote daemon (tcp://, ssh://): the path is on that machine, not checkable here
    try:
        mode: int | None = os.stat(path).st_mode
    except OSError:
        mode = None
    if mode is not None and stat.S_ISSOCK(mode):
        return
    if mode is None and path == DEFAULTS["DOCKER_SOCKET"] and "Docker Desktop" in run(
            ["docker", "info", "--format", "{{.OperatingSystem}}"], timeout=30).stdout:
        return  # Docker Desktop serves /var/run/docker.sock inside its VM, whatever this machine has
    state = "a directory" if mode is not None and stat.S_ISDIR(mode) else "missing" if mode is None else "not a socket"
    daemon = endpoint.removeprefix("unix://")
    listens = f" (this Docker listens on {daemon})" if daemon and daemon != path else ""
    raise Problem(f"DOCKER_SOCKET={path} ({where('DOCKER_SOCKET')}) is {state}: LocalStack needs the Docker socket "
                  f"to run Lambdas. Set DOCKER_SOCKET in .env to your Docker's socket{listens}, "
                  "or use ENGINE=ministack")


def check_images(config: dict[str, str], *, engine_only: bool, building: bool) -> None:
    base_hint = ("set PYTHON_IMAGE to a Python 3.11+ image you have; without registry access, "
                 "../shared/tools/docker-engine.sh builds local/python:3.11-bookworm")
    if config["ENGINE"] == "localstack":
        check_image(config["LOCALSTACK_IMAGE"], "LOCALSTACK_IMAGE",
                    "use MiniStack instead (ENGINE=ministack; for the tests --engine compose or embedded)")
        check_runtime_image(config)
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
    """Each port the project publishes on the host is free, or held by the project's own service."""
    for variable, service in PORTS.items():
        port = int(config[variable])
        if containers(project, service, running_only=True):
            continue  # our own service holds it: `up` again is fine
        with socket.socket() as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(("127.0.0.1", port))
                continue
            except OSError as error:
                if error.errno != errno.EADDRINUSE:
                    continue
        holder = run(["docker", "ps", "--filter", f"publish={port}", "--format", "{{.Names}}"],
                     timeout=30).stdout.split()
        by = f"container {holder[0]}" if holder else "another program (stockpipe emulator? make demo?)"
        hint = " (and AWS_ENDPOINT_URL=http://localhost:<that port> for the host CLI)" if variable == "ENGINE_PORT" else ""
        raise Problem(f"port {port} is already in use by {by}: stop it, or set {variable} to a free port in .env{hint}")


def check(config: dict[str, str], project: str, *, engine_only: bool = False, building: bool = True,
          port: bool = True) -> list[str]:
    check_settings(config)
    check_docker()
    compose = compose_command()
    if config["ENGINE"] == "localstack":
        check_socket(config)
    if port:
        check_port(config, project)
    check_images(config, engine_only=engine_only, building=building)
    return compose


def ensure_volume(config: Mapping[str, str]) -> None:
    """The external volume docker-compose.yml declares (LocalStack's /var/lib/localstack): created once,
    kept by `down -v`, so kinesis-mock, which 4.14.0 installs from npm at first use, survives offline.
    Created whatever the engine: docker-compose v1 wants every declared external volume to exist."""
    name = config["LOCALSTACK_VOLUME"]
    if run(["docker", "volume", "inspect", name], timeout=30).returncode == 0:
        return
    created = run(["docker", "volume", "create", "--label", "org.stockpipe.cache=localstack", name], timeout=30)
    if created.returncode != 0:
        reason = last_line(created.stderr).removeprefix("Error response from daemon: ")
        raise Problem(f"LOCALSTACK_VOLUME={name} ({where('LOCALSTACK_VOLUME')}): docker volume create failed "
                      f"({reason[:160]}); set LOCALSTACK_VOLUME to a valid volume name in .env", 2)


def lambda_containers(project: str) -> list[tuple[str, str]]:
    """LocalStack's own Lambda containers for this project's engine, as (id, name). LocalStack 4.x names
    them <engine container>-lambda-<function>-<executor id> with every '_' made '-' (compose v2 names the
    engine stockpipe-engine-1, v1 stockpipe_engine_1: both give stockpipe-engine-1-lambda-...), sets no
    label, and starts them on the engine's networks. Compose's own containers are never among them."""
    pattern = re.compile(rf"{re.escape(project.replace('_', '-'))}-engine-\d+-lambda-")
    listed = run(["docker", "ps", "--all", "--filter", "name=-lambda-", "--format",
                  '{{.ID}}\t{{.Names}}\t{{.Label "com.docker.compose.project"}}'], timeout=30)
    found = []
    for line in listed.stdout.splitlines():
        container, name, compose_project = (line.split("\t") + ["", "", ""])[:3]
        if container and not compose_project and pattern.match(name.lstrip("/")):
            found.append((container, name))
    return found


def remove_lambda_containers(project: str) -> list[str]:
    """Remove what lambda_containers finds (they would stay up LAMBDA_KEEPALIVE_MS and keep `down` from
    removing the network). Returns their names."""
    found = lambda_containers(project)
    if not found:
        return []
    names = [name for _, name in found]
    print(f"compose: removing {len(names)} LocalStack Lambda container(s) of {project}: {', '.join(names)}",
          file=sys.stderr, flush=True)
    run(["docker", "rm", "--force", *(container for container, _ in found)], timeout=120)
    return names


def down(compose: list[str], global_options: list[str], rest: list[str], project: str) -> int:
    """`down`, with LocalStack's Lambda containers removed first; once more if the engine started new
    ones while it stopped (the network cannot go while they are on it)."""
    remove_lambda_containers(project)
    done = subprocess.run([*compose, *global_options, *rest], cwd=ROOT)
    if remove_lambda_containers(project):
        done = subprocess.run([*compose, *global_options, *rest], cwd=ROOT)
    return done.returncode

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
            if command != "build":
                ensure_volume(config)
        else:
            check_docker()
            compose = compose_command()
    except Problem as problem:
        print(f"compose: error: {problem}", file=sys.stderr)
        return problem.code
    if command == "down":
        return down(compose, global_options, rest, project)
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
