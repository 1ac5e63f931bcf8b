# `make run` serves the site on the embedded default; `make test` runs every check and test.
SHELL := /bin/bash
.DEFAULT_GOAL := run

VENV := .venv
BIN := $(VENV)/bin
# Django 6 needs Python 3.12 or newer. Override with `make PYTHON=/path/to/python3.12 ...`.
PYTHON ?= $(shell for c in python3.13 python3.12 python3; do \
	  $$c -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null && { command -v $$c; break; }; \
	done)
HOST ?= 127.0.0.1
PORT ?= 8000
# The second test configuration: the local PostgreSQL and Redis (database 1, the tests' own).
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/pipeline
TEST_REDIS_URL ?= redis://127.0.0.1:6379/1

.PHONY: run test lint typecheck djangocheck test-embedded test-services test-cluster bench browser clean

$(BIN)/python:
	@if [ -z "$(PYTHON)" ]; then \
	  echo "No Python 3.12 or newer found. Install one (e.g. 'apt-get install python3.12' or" \
	       "'pyenv install 3.12') and run again, or point to it: make PYTHON=/path/to/python3.12"; \
	  exit 1; fi
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.base: $(BIN)/python requirements/base.txt
	$(BIN)/pip install --quiet -r requirements/base.txt
	touch $@

$(VENV)/.dev: $(VENV)/.base requirements/dev.txt
	$(BIN)/pip install --quiet -r requirements/dev.txt
	touch $@

$(VENV)/.bench: $(VENV)/.dev requirements/bench.txt
	$(BIN)/pip install --quiet -r requirements/bench.txt
	touch $@

run: $(VENV)/.base
	$(BIN)/python manage.py migrate --no-input
	$(BIN)/python manage.py runserver $(HOST):$(PORT)

# Debian's Chromium for the Playwright tests (Playwright's own browser download is not used).
browser:
	@command -v chromium >/dev/null || { \
	  command -v apt-get >/dev/null || { echo "Install Chromium (the browser tests need it)"; exit 1; }; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

lint: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(VENV)/.dev
	$(BIN)/mypy .

djangocheck: $(VENV)/.dev
	$(BIN)/python manage.py check
	$(BIN)/python manage.py makemigrations --check --dry-run

test-embedded: $(VENV)/.dev browser
	env -u DATABASE_URL -u REDIS_URL $(BIN)/pytest

test-services: $(VENV)/.dev browser
	DATABASE_URL=$(TEST_DATABASE_URL) REDIS_URL=$(TEST_REDIS_URL) $(BIN)/pytest

test: lint typecheck djangocheck test-embedded test-services

# Several hosts under real systemd (tests/cluster/): as root, on a machine that can run
# systemd-nspawn; the Debian image is built once and cached under var/cluster/.
test-cluster: $(VENV)/.dev
	@# The image first, outside the tests' time limit (a few minutes on a fresh clone).
	$(BIN)/python -c 'from tests.cluster.bed import build_image, ensure_tools; ensure_tools(); print(build_image())'
	PIPELINE_CLUSTER=1 $(BIN)/pytest -p no:cacheprovider -s -m cluster tests/cluster

# pyvips (the upload benchmark's baseline) needs libvips from Debian.
bench: $(VENV)/.bench
	@ldconfig -p | grep -q libvips || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libvips42 >/dev/null; }
	DATABASE_URL=$(TEST_DATABASE_URL) REDIS_URL=$(TEST_REDIS_URL) $(BIN)/python -m tests.bench

clean:
	rm -rf $(VENV) var .mypy_cache .ruff_cache .pytest_cache
