# Two commands set everything up on a fresh machine (Python 3.11; Java for Spark):
#   make demo   creates .venv, installs the locked dependencies with the demo extra, runs `retain demo`
#   make test   the same with the dev tools, then lint, type check and the test suite
# Every install goes through uv and uv.lock, so it is reproducible and does not re-resolve.

PYTHON ?= python3.11
UV_VERSION := 0.13.9
VENV := .venv
UV := $(VENV)/bin/uv
RUN := $(VENV)/bin
PYTEST_ARGS ?=

.PHONY: demo test setup setup-dev browser lint typecheck pytest bench clean requirements

$(UV):
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

# --inexact keeps uv itself (installed by pip above) in the environment. The demo extra brings the
# CDNOW files `retain demo` reads (they ship inside lifetimes, which the core no longer depends on).
setup: $(UV)
	$(UV) sync --frozen --inexact --quiet --extra demo

setup-dev: $(UV) browser
	$(UV) sync --frozen --inexact --quiet --all-extras

# The HTML report's test opens it in headless Chromium (driven by Playwright): Debian's chromium,
# installed once (as root, as on CI) when the machine has none. Playwright's own browser download
# is not used: its host is out of reach here.
CHROMIUM ?= /usr/bin/chromium
browser:
	@test -x $(CHROMIUM) || { apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium \
		>/dev/null; }

demo: setup
	$(RUN)/retain demo

lint: setup-dev
	$(RUN)/ruff check src tests benchmarks
	$(RUN)/ruff format --check src tests benchmarks

typecheck: setup-dev
	$(RUN)/mypy

pytest: setup-dev
	$(RUN)/pytest -n 2 $(PYTEST_ARGS)

test: lint typecheck pytest

bench: setup-dev
	$(RUN)/python benchmarks/features.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache retain-demo

# The serving image's pinned requirements (bentofile.yaml), from uv.lock: the core and the serving
# extra only (no lifetimes, autograd or dill; tests/test_packaging.py checks).
requirements: $(UV)
	$(UV) export --frozen --extra serving --no-hashes --no-emit-project --no-dev --quiet \
		-o requirements/serving.txt
