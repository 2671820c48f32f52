# Crossfeed. `make run` and `make test` each do all of their own set-up on a fresh machine.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000
export CROSSFEED_VAR_DIR ?= $(CURDIR)/var

.PHONY: install run serve worker test test-fast lint bench messages browser postgres-binaries clean

$(STAMP): pyproject.toml constraints.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check --upgrade pip
	# constraints.txt pins every transitive package; pyproject.toml pins the direct ones.
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

# Debian's Chromium for the browser tests (Playwright cannot download its own browser here).
browser:
	@test -x /usr/bin/chromium || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

# PostgreSQL server binaries for the tests that start a private throwaway cluster.
postgres-binaries:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; } || \
		echo "PostgreSQL binaries could not be installed: the PostgreSQL tests will be skipped"

run: install
	$(PY) manage.py migrate --noinput
	$(PY) manage.py collectstatic --noinput -v0
	# The tiny model first: the demo adds a translator on it (annotation/services/demo.py).
	$(PY) manage.py build_tiny_model
	$(PY) manage.py seed_demo --if-empty
	HOST=$(HOST) PORT=$(PORT) bin/serve

# Two pytest-xdist workers (TEST_WORKERS=0: one process): the suite is mostly waiting on SQLite, Chromium and tiny
# models, so two processes halve its time on two cores. Each worker has its own test database.
TEST_WORKERS ?= 2
test: install browser postgres-binaries
	CROSSFEED_VAR_DIR=$(CURDIR)/var/test $(VENV)/bin/pytest -p no:cacheprovider -n $(TEST_WORKERS) $(PYTEST_ARGS)

test-fast: install
	CROSSFEED_VAR_DIR=$(CURDIR)/var/test $(VENV)/bin/pytest -m "not e2e and not slow and not postgres" $(PYTEST_ARGS)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(PY) manage.py check
	$(PY) manage.py makemigrations --check --dry-run

# The first run also creates var/bench/lmeval-venv (lm-evaluation-harness beside our torch, for bench/loglik_bench.py;
# a few minutes, 1.8 GiB). BENCH_ARGS: e.g. --quick, or --only loglik,evaluation.
bench: install
	$(PY) bench/run_all.py $(BENCH_ARGS)

# Interface translations (docs/translations.md): refresh every catalog in locale/ from the code, then compile the
# .mo files that are committed beside them (so that running Crossfeed needs no gettext). Needs GNU gettext.
messages: install
	$(PY) manage.py makemessages $(foreach dir,$(wildcard locale/*),-l $(notdir $(dir))) --no-obsolete \
		--ignore=.venv --ignore=var --ignore='bench/*' --ignore='tests/*'
	$(PY) manage.py compilemessages --ignore=.venv

clean:
	rm -rf $(VENV) var
