# The front door. `make` lists the targets; `make demo` and `make test` need nothing else.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cksum < pyproject.toml | cut -d' ' -f1)
# With a wheelhouse/ folder of packages (make wheelhouse), every install takes them from it, and from
# nowhere else: no index, no network.
WHEELHOUSE ?= wheelhouse
PIP_FROM := $(if $(wildcard $(WHEELHOUSE)/*.whl),--no-index --find-links $(abspath $(WHEELHOUSE)),)
DEMO_ARGS ?=
BENCH_ARGS ?=
PYTEST_ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help install demo dashboard docs test test-unit test-e2e test-reliability test-wheelhouse engines lint bench bench-backtest emulator init teardown status doctor alerts query wheelhouse clean

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z0-9-]+:.*## / {printf "  make %-10s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "stockpipe needs Python 3.11 or newer (PYTHON=python3.11 make ...)")'
	$(PYTHON) -m venv $(VENV)
	$(if $(PIP_FROM),@echo "install: from $(WHEELHOUSE)/ only (no index)")
	$(BIN)/python -m pip install --quiet $(PIP_FROM) --upgrade pip
	$(BIN)/python -m pip install --quiet $(PIP_FROM) -e '.[dev]'
	@rm -f $(VENV)/.installed-* && touch $@

install: $(STAMP) ## create .venv and install stockpipe with everything (idempotent; from wheelhouse/ when there)

wheelhouse: ## every package make install installs (dev and docs tools too) into wheelhouse/, for a room without internet
	@mkdir -p $(WHEELHOUSE)
	$(PYTHON) services/requirements.py pyproject.toml build-system project dev > $(WHEELHOUSE)/requirements.txt
	$(PYTHON) -m pip wheel --quiet --wheel-dir $(WHEELHOUSE) pip wheel -r $(WHEELHOUSE)/requirements.txt
	@echo "wheelhouse: $$(ls $(WHEELHOUSE)/*.whl | wc -l) packages, $$(du -sh $(WHEELHOUSE) | cut -f1), for $$($(PYTHON) -c 'import sys, sysconfig; print(f"Python {sys.version_info[0]}.{sys.version_info[1]} on {sysconfig.get_platform()}")')"

demo: $(STAMP) ## embedded engine + init + synthetic producer + live dashboard (Ctrl-C stops)
	$(BIN)/stockpipe demo $(DEMO_ARGS)

dashboard: $(STAMP) ## the pipeline live in a browser at http://127.0.0.1:8000, wherever AWS_ENDPOINT_URL points
	$(BIN)/stockpipe dashboard

# make test: four processes (pytest-xdist), a test file each at a time, each with its own engine and its
# own deployed pipeline. The tests wait on engines, functions and the engine's once-a-minute TTL reaper
# much of the time, so four fit on 2 cores: 945 tests in 206 s against 264 s with three (an idle
# 2-core machine with 24 GB, 2026-12-07). TEST_WORKERS=0 runs everything in one process, as plain `pytest` does.
TEST_WORKERS ?= 4
test: $(STAMP) ## unit, end-to-end and the fast reliability tests (they start their own engine)
	$(BIN)/pytest -m "not slow" -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

test-unit: $(STAMP) ## unit tests only (no network)
	$(BIN)/pytest tests/unit $(PYTEST_ARGS)

test-e2e: $(STAMP) ## end-to-end tests only
	$(BIN)/pytest tests/e2e -m "not slow" $(PYTEST_ARGS)

test-reliability: $(STAMP) ## the whole fault suite on the embedded engine, ending with its table of figures
	$(BIN)/pytest tests/reliability $(PYTEST_ARGS)

test-wheelhouse: $(STAMP) ## a fresh copy installed from a wheelhouse with the network cut off, to a first alert (slow)
	$(BIN)/pytest tests/e2e/test_wheelhouse.py -m slow $(PYTEST_ARGS)

# make engines: the probes (tests/probes.py) on each engine of ENGINES that can run here (one that cannot
# is skipped and keeps its last results), the slow ones too, then docs/engines.md from the results.
# Real AWS costs money: only when asked, ENGINES="embedded aws".
ENGINES ?= embedded compose localstack
engines: $(STAMP) ## probe the engines' failure behaviours (ENGINES='embedded compose localstack'; add aws) and write docs/engines.md
	@rm -rf build/probes
	@for engine in $(ENGINES); do \
	  STOCKPIPE_PROBE_RESULTS=build/probes $(BIN)/pytest tests/e2e/test_engine_probes.py --engine $$engine \
	    -n $(TEST_WORKERS) -q $(PYTEST_ARGS) || exit 1; \
	done
	$(BIN)/python scripts/engines.py --merge build/probes

lint: $(STAMP) ## ruff, mypy --strict ([tool.mypy] in pyproject.toml), cfn-lint on the templates, the docs site with --strict
	$(BIN)/ruff check stockpipe services init lambdas bench tests scripts
	$(BIN)/mypy --strict
	$(BIN)/mypy --strict scripts
	@# The CloudFormation template of each transport (the e-mail subscription on in one), linted offline.
	@out=$$(mktemp -d) && trap 'rm -rf "$$out"' EXIT && \
	  INGEST=kinesis $(BIN)/stockpipe template --out "$$out/kinesis" >/dev/null && \
	  INGEST=sqs ALERT_EMAIL=ops@example.com $(BIN)/stockpipe template --out "$$out/sqs" >/dev/null && \
	  $(BIN)/cfn-lint "$$out/kinesis/template.yaml" "$$out/sqs/template.yaml" && echo "cfn-lint: both templates clean"
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet

DOCS_PORT ?= 8001
docs: $(STAMP) ## the documentation site on http://127.0.0.1:8001 (a free port when taken); works offline
	@port=$$($(BIN)/python -c 'from stockpipe.engine import free_port, port_in_use; p = $(DOCS_PORT); print(free_port() if port_in_use(p) else p)'); \
	  echo "docs: http://127.0.0.1:$$port  (Ctrl-C stops)"; \
	  NO_MKDOCS_2_WARNING=1 exec $(BIN)/mkdocs serve --dev-addr 127.0.0.1:$$port

# bench/ is a development tool of this repository, not part of the installed package: run from here.
bench: $(STAMP) ## measure the flow on a fresh embedded engine against its ceiling (BENCH_ARGS='--ticks 100000'; '--help')
	$(BIN)/python -m bench $(BENCH_ARGS)

BACKTEST_ARGS ?=
bench-backtest: $(STAMP) ## time stockpipe backtest over 1,000,000 archived ticks on a fresh engine (BACKTEST_ARGS='--help')
	$(BIN)/python -m bench.backtest $(BACKTEST_ARGS)

emulator: $(STAMP) ## run the embedded engine in the foreground on ENGINE_PORT (4566)
	$(BIN)/stockpipe emulator

init: $(STAMP) ## create every resource where AWS_ENDPOINT_URL points (unset: real AWS)
	$(BIN)/stockpipe init

teardown: $(STAMP) ## remove every resource
	$(BIN)/stockpipe init --teardown

status: $(STAMP) ## counts at every stage
	$(BIN)/stockpipe status

doctor: $(STAMP) ## check the configuration and the deployment for the usual mistakes, one line each (changes nothing)
	$(BIN)/stockpipe doctor

alerts: $(STAMP) ## follow the alerts
	$(BIN)/stockpipe alerts --follow

query: $(STAMP) ## one of the seeds' queries over the raw archive (QUERY=name; stockpipe query --list names all seven)
	$(BIN)/stockpipe query $(or $(QUERY),top-movers)

clean: ## remove .venv and caches
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info

# --- docker compose: the same pipeline in containers (docker-compose.yml, docs/compose.md) ------
# scripts/compose.py checks .env first (ENGINE, the pipeline's settings by the CLI's rules, ports, Docker,
# socket, LocalStack token, images): one line saying what to do instead of a compose stack trace.
# Plain `docker compose up` runs the same stack without these checks. ENGINE, PYTHON_IMAGE and the rest come from
# .env or the environment; `make up PYTHON_IMAGE=local/python:3.11-bookworm` works too.
# Exit codes: GNU make exits 2 whenever a recipe fails, whatever the recipe returned (make allows only
# 0, 1 and 2), so the script's own code (2 = fix .env, 3 = this machine cannot run it) is the N of
# make's last line, `make: *** [Makefile:..: up] Error N`; a caller that needs it runs the script:
# `python3 scripts/compose.py up -d --build` exits with exactly that code.
PYTHON_IMAGE ?=
COMPOSE := $(if $(PYTHON_IMAGE),PYTHON_IMAGE='$(PYTHON_IMAGE)') $(PYTHON) scripts/compose.py
.PHONY: up down logs

up: ## docker compose: engine, init, producer, alerts, dashboard in the background (checks .env first)
	$(COMPOSE) up -d --build
	@echo "up: 'make logs' follows the flow, 'make alerts' prints the alerts here, 'make down' removes it all"

down: ## remove the compose project: containers (LocalStack's Lambdas too) and network; keeps the cache volume
	$(COMPOSE) down --remove-orphans

logs: ## follow the compose project: init's resources, the producer's ticks, the alerts
	$(COMPOSE) logs -f
