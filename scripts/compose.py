#!/usr/bin/env python3
"""docker compose for stockpipe, after the checks whose failures compose reports late or unclearly.

    scripts/compose.py up -d --build         # any compose command and arguments, passed through
    scripts/compose.py -p NAME down -v       # global options (-p/--project-name) go first
    scripts/compose.py check [--engine-only] # only the checks: exit 0, or one line and 2 or 3

Before `up` (and `build`, `check`) it checks, each failure one line saying what to do:
ENGINE is an engine we have, PRODUCER_SOURCE, ENGINE_PORT and DASHBOARD_PORT make sense, every pipeline
setting passes the rules the stockpipe CLI applies (a quoted trailing space, a hidden character, a name
AWS refuses: refused before any container starts, not by init after the engine did), Docker runs, the
ports are free, a LocalStack image newer than 4.14.0 has a LOCALSTACK_AUTH_TOKEN, and the images exist or
can be pulled. For LocalStack also: DOCKER_SOCKET is a Docker socket, and the Lambda runtime image
(public.ecr.aws/lambda/python:<LAMBDA_RUNTIME's version>) is here or can be pulled, since without
it LocalStack leaves every function Pending. Images build with BuildKit where Docker has it (buildx),
else with the builder docker-compose has in itself, so no deprecation notice repeats on every build.
After `up -d` it waits for the dashboard to answer and prints its address. When `up` fails anyway
(the engine rejects its token, init fails) it reads the containers' state and logs and says which and
why, and that `make down` removes what started. `down` first removes LocalStack's own Lambda containers
(not compose's; they outlive their engine and hold the network).

Exit codes: 2 = the configuration needs fixing (.env), 3 = this machine cannot run it (no Docker,
an image that is not here and cannot be pulled); otherwise compose's own. Standard library only:
`make up` needs no virtualenv. Values come from the environment first, then .env (as compose does).
"""

from __future__ import annotations

import difflib
import errno
import importlib
import os
import re
import shutil
import socket
import stat
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent  # where .env is read (the unit tests point it elsewhere)
# The repository this script belongs to, whose stockpipe package holds the settings' rules.
REPOSITORY = ROOT
# compose's --env-file, when given; else ROOT/.env.
ENV_FILE: Path | None = None
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
# Values no message prints.
SECRETS = {"LOCALSTACK_AUTH_TOKEN"}
# How long `up -d` waits for the dashboard to answer before saying where it will be.
DASHBOARD_WAIT_SECONDS = 120
TOKEN_WORDS = re.compile(r"auth[ _-]?token|licen[cs]e|LOCALSTACK_AUTH_TOKEN|api[ _-]?key|activation", re.I)


class Problem(Exception):
    """One line for the user, and the exit code: 2 = fix the configuration, 3 = cannot run here."""

    def __init__(self, message: str, code: int = 2) -> None:
        super().__init__(message)
        self.code = code


# -- configuration -----------------------------------------------------------------------------


def dotenv_path() -> Path:
    return ENV_FILE or ROOT / ".env"


def dotenv_lines(path: Path) -> dict[str, tuple[str, int]]:
    """KEY=VALUE lines as compose reads them (comments, blank lines, optional quotes), with the line
    number of each: {key: (value, line)}. Inside quotes, spaces are kept, as compose keeps them."""
    values: dict[str, tuple[str, int]] = {}
    if not path.is_file():
        return values
    text = path.read_text(encoding="utf-8", errors="replace").removeprefix("\ufeff")
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        key = key.strip().removeprefix("export ").strip()
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        values[key] = (value, number)
    return values


def read_dotenv(path: Path) -> dict[str, str]:
    return {key: value for key, (value, _) in dotenv_lines(path).items()}


def dotenv_label() -> str:
    return ".env" if ENV_FILE is None else str(ENV_FILE)


def configuration(environ: dict[str, str] | None = None) -> dict[str, str]:
    """The values compose will interpolate: the environment wins over .env; empty means default."""
    environ = dict(os.environ if environ is None else environ)
    merged = {**read_dotenv(dotenv_path()), **environ}
    return {**DEFAULTS, **{k: v for k, v in merged.items() if v != "" or k not in DEFAULTS}}


def where(variable: str, environ: Mapping[str, str] | None = None) -> str:
    environ = os.environ if environ is None else environ
    if variable in environ:
        return "in the environment"
    found = dotenv_lines(dotenv_path()).get(variable)
    return f"in {dotenv_label()} line {found[1]}" if found and found[0] else "the default"


def sources(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """{variable: ".env line 14"} for each value .env gives and the environment does not (the CLI's form)."""
    environ = os.environ if environ is None else environ
    return {key: f"{dotenv_label()} line {line}" for key, (_, line) in dotenv_lines(dotenv_path()).items()
            if key not in environ}


def check_choice(config: dict[str, str], variable: str, allowed: tuple[str, ...], what: str) -> None:
    value = config[variable]
    if value not in allowed:
        guess = difflib.get_close_matches(value.strip().lower(), allowed, n=1, cutoff=0.5)
        hint = f" (did you mean {guess[0]}?)" if guess else ""
        raise Problem(f"{variable}={value!r} ({where(variable)}) is not {what}: use {' or '.join(allowed)}{hint}")


def check_characters(config: Mapping[str, str]) -> None:
    """compose's own variables, by the CLI's rule for characters: a trailing space in a quoted value,
    or a hidden character, makes an image or a volume name nobody can see is wrong."""
    rules = pipeline_rules()
    if rules is None:
        return
    for variable in (*DEFAULTS, "COMPOSE_PROJECT_NAME", "LOCALSTACK_AUTH_TOKEN"):
        problem = rules.character_problem(config.get(variable, ""))
        if config.get(variable) and problem:
            shown = "" if variable in SECRETS else f"={config[variable]!r}"  # a token is never printed
            raise Problem(f"{variable}{shown} ({where(variable)}) {problem}")


def pipeline_rules() -> ModuleType | None:
    """stockpipe.settings, the rules the CLI applies, imported from this repository (it needs the standard
    library only); None on a Python too old to import it (the containers check again at start)."""
    return repository_module("stockpipe.settings")


def repository_module(name: str) -> ModuleType | None:
    """A module of this repository's stockpipe package that needs the standard library only, or None
    on a Python too old to import it."""
    if str(REPOSITORY) not in sys.path:
        sys.path.insert(0, str(REPOSITORY))
    try:
        return importlib.import_module(name)
    except (ImportError, SyntaxError):
        return None


def check_pipeline(config: Mapping[str, str], environ: Mapping[str, str] | None = None) -> None:
    """Every pipeline setting the containers get, read with the CLI's own Settings.from_env, so that a bad
    one stops `up` before any container starts, in the CLI's words and naming the .env line."""
    rules = pipeline_rules()
    if rules is None:
        return
    # Inside the project the containers reach the engine at http://engine:4566: an emulator.
    env = {**config, "AWS_ENDPOINT_URL": "http://engine:4566"}
    try:
        rules.Settings.from_env(env, sources=sources(environ))
    except rules.SettingsError as error:
        raise Problem(f"{error}; fix it in {dotenv_label()} (nothing was started)") from None


def check_settings(config: dict[str, str]) -> None:
    engine = config["ENGINE"]
    check_characters(config)
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
    check_pipeline(config)


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


def check_image(image: str, variable: str, advice: str | Callable[[], str], *, label: str | None = None) -> None:
    """Present, or pulled now (what compose would do next anyway). `advice` (what to do instead; worked out
    only when needed) ends the message; `label` names the image when it is not the value of `variable`."""
    if image_here(image):
        return
    hint = advice() if callable(advice) else advice
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
                lambda: f"LocalStack runs every Lambda in it and leaves them Pending without it: {bring_it_here(image)}, "
                        f"or run without LocalStack: {ministack_instead(config)}",
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


def local_python_images() -> list[str]:
    """Images on this machine whose name says Python (what PYTHON_IMAGE could be set to), newest first."""
    listed = run(["docker", "image", "ls", "--format", "{{.Repository}}:{{.Tag}}"], timeout=30).stdout.split()
    return [image for image in listed if "python" in image.split(":")[0].rsplit("/", 1)[-1] and
            not image.endswith(":<none>") and not image.startswith(LAMBDA_IMAGE_PREFIX)]


def bring_it_here(image: str) -> str:
    return (f"pull it on a machine with registry access and bring it here (docker pull {image}; "
            f"docker save -o image.tar {image}; then here: docker load -i image.tar)")


def python_image_hint() -> str:
    """What to do when PYTHON_IMAGE cannot be had: bring it, or name one this machine has."""
    here = local_python_images()
    other = f"set PYTHON_IMAGE in {dotenv_label()} to a Debian Python 3.11+ image this machine has" + \
        (f" (here: {', '.join(here[:3])})" if here else "")
    return f"{other}, or {bring_it_here(DEFAULTS['PYTHON_IMAGE'])}"


def ministack_instead(config: Mapping[str, str]) -> str:
    """One complete way to run without LocalStack: ENGINE=ministack, and a base image it can build from."""
    base = config["PYTHON_IMAGE"]
    if image_here(base):
        return f"set ENGINE=ministack in {dotenv_label()} (MiniStack, built from PYTHON_IMAGE={base}, which is here)"
    here = local_python_images()
    if here:
        return f"set ENGINE=ministack and PYTHON_IMAGE={here[0]} (an image this machine has) in {dotenv_label()}"
    return (f"set ENGINE=ministack in {dotenv_label()}; it builds from PYTHON_IMAGE={base}, which is not here "
            f"either: {bring_it_here(base)}")


def check_images(config: dict[str, str], *, engine_only: bool, building: bool) -> None:
    if config["ENGINE"] == "localstack":
        check_image(config["LOCALSTACK_IMAGE"], "LOCALSTACK_IMAGE",
                    lambda: f"{bring_it_here(config['LOCALSTACK_IMAGE'])}, or run without LocalStack: "
                            f"{ministack_instead(config)}")
        check_runtime_image(config)
        if engine_only:
            return
    needs_base = building or engine_only or any(not image_here(image) for image in built_images(config))
    if needs_base:
        check_image(config["PYTHON_IMAGE"], "PYTHON_IMAGE", python_image_hint)


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


def build_environment(compose: list[str], environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """compose's environment for building our images: BuildKit where this Docker has it (the buildx
    plugin); else the builder docker-compose v1 has in itself (the docker CLI's legacy builder prints a
    deprecation notice for every image it builds). What the caller set itself is kept."""
    env = dict(os.environ if environ is None else environ)
    if run(["docker", "buildx", "version"], timeout=30).returncode == 0:
        wanted = {"DOCKER_BUILDKIT": "1", "COMPOSE_DOCKER_CLI_BUILD": "1"}
    elif compose == ["docker-compose"]:
        wanted = {"COMPOSE_DOCKER_CLI_BUILD": "0"}
    else:
        wanted = {"DOCKER_BUILDKIT": "0"}
    return {**wanted, **env}


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

# -- after `up` --------------------------------------------------------------------------------


def dashboard_url(config: Mapping[str, str]) -> str:
    return f"http://127.0.0.1:{config['DASHBOARD_PORT']}"


def wait_for_dashboard(config: Mapping[str, str], timeout: float | None = None) -> bool:
    """Until the dashboard's API answers on the host (True), or `timeout` passes (False); with the
    project's one wait helper and health probe (stockpipe/waiting.py: standard library only)."""
    waiting = repository_module("stockpipe.waiting")
    if waiting is None:  # a Python too old for it: the dashboard is not waited for
        return False
    url = f"{dashboard_url(config)}/api/health"
    try:
        waiting.wait_until(lambda: waiting.probe(url, timeout=2) is not None, what=f"the dashboard at {url}",
                           timeout=DASHBOARD_WAIT_SECONDS if timeout is None else timeout, interval=0.5)
    except waiting.WaitTimeout:
        return False
    return True


def detached(rest: list[str]) -> bool:
    return any(option in ("-d", "--detach") for option in rest[1:])


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
            return (f"init failed (exit {code}): {last_line(logs(init[0]))[:300]}; fix {dotenv_label()}, "
                    "then up again")
    return None


# -- main --------------------------------------------------------------------------------------


def split_arguments(argv: list[str]) -> tuple[list[str], list[str]]:
    """Compose's global options (before the command) and the rest."""
    index = 0
    while index < len(argv) and argv[index].startswith("-"):
        index += 2 if argv[index] in ("-p", "--project-name", "-f", "--file", "--env-file", "--profile") else 1
    return argv[:index], argv[index:]


def env_file_option(global_options: list[str]) -> Path | None:
    """compose's --env-file, when given: the file compose reads instead of .env, so the checks read it too."""
    for index, option in enumerate(global_options):
        if option == "--env-file" and index + 1 < len(global_options):
            return Path(global_options[index + 1]).resolve()
        if option.startswith("--env-file="):
            return Path(option.split("=", 1)[1]).resolve()
    return None


def main(argv: list[str]) -> int:
    global ENV_FILE
    global_options, rest = split_arguments(argv)
    ENV_FILE = env_file_option(global_options)
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
    if command == "down":
        return down(compose, global_options, rest, project)
    env = build_environment(compose) if command in ("up", "build", "create", "run") else None
    done = subprocess.run([*compose, *global_options, *rest], cwd=ROOT, env=env)
    if command != "up":
        return done.returncode
    if done.returncode != 0:
        reason = diagnose(config, project) or f"docker compose up failed (exit {done.returncode})"
        started = containers(project, "engine") or containers(project, "init")
        cleanup = "; `make down` removes what it started" if started else ""
        print(f"compose: error: {reason}{cleanup}", file=sys.stderr)
        return done.returncode
    if detached(rest):
        if wait_for_dashboard(config):
            print(f"compose: dashboard: {dashboard_url(config)}", flush=True)
        else:
            print(f"compose: the dashboard does not answer at {dashboard_url(config)} yet "
                  "(docker compose logs dashboard says why)", file=sys.stderr, flush=True)
    return done.returncode



if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except KeyboardInterrupt:
        sys.exit(130)
