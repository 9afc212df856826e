# Everyday commands. Each one creates .venv and installs the project (with the dev extra) when
# missing or when pyproject.toml changed since the last install.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Touched after a successful install: pip runs again only when pyproject.toml is newer.
STAMP := $(VENV)/.installed
# `make test` also installs the train extra (torch, transformers, TRL) for the export tests.
TRAIN_STAMP := $(VENV)/.installed-train
PIP_FLAGS := --quiet --disable-pip-version-check

.DEFAULT_GOAL := help
.PHONY: help install run test lint bench-assign deps-browser clean

help:
	@echo "make run            start everything (embedded PostgreSQL/Valkey unless TANDEM_*_URL are set)"
	@echo "make test           run the test suite; pass options with PYTEST_ARGS='-k assign -x'"
	@echo "make lint           ruff check, ruff format --check, mypy"
	@echo "make bench-assign   assignment throughput benchmark (bench/assign.py; BENCH_ARGS=...)"
	@echo "make clean          remove caches and build outputs (keeps .venv and var/)"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install $(PIP_FLAGS) -e '.[dev]'
	@touch $@

# torch first, pinned to the CPU wheel: through the extra alone pip would fetch a CUDA build.
$(TRAIN_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install $(PIP_FLAGS) torch==2.13.0
	$(BIN)/python -m pip install $(PIP_FLAGS) -e '.[dev,train]'
	@touch $(STAMP) $@

install: $(STAMP)

run: $(STAMP)
	$(BIN)/tandem up $(RUN_ARGS)

test: $(TRAIN_STAMP) deps-browser
	$(BIN)/pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

bench-assign: $(STAMP)
	$(BIN)/python bench/assign.py $(BENCH_ARGS)

# Browser tests drive Debian's chromium. Installed when missing and we are root (or in CI with
# passwordless sudo); a non-root developer machine outside CI skips this silently. The emoji and
# CJK fonts only make the screenshots (test-artifacts/screenshots) legible.
deps-browser:
	@if [ -x /usr/bin/chromium ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ]; then sudo=""; \
	elif [ "$${CI:-}" = true ] && sudo -n true 2>/dev/null; then sudo="sudo -n"; \
	elif [ "$${CI:-}" = true ]; then \
		echo "deps-browser: /usr/bin/chromium is missing and installing it needs root" >&2; exit 1; \
	else exit 0; fi; \
	if ! command -v apt-get >/dev/null 2>&1; then \
		echo "deps-browser: no apt-get here; install chromium at /usr/bin/chromium" >&2; \
		if [ "$${CI:-}" = true ]; then exit 1; fi; exit 0; \
	fi; \
	echo "deps-browser: installing chromium with apt-get"; \
	$$sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	$$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium \
		fonts-noto-color-emoji fonts-wqy-zenhei >/dev/null

clean:
	rm -rf build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache test-artifacts
	find . -path ./$(VENV) -prune -o -path ./var -prune -o -name __pycache__ -type d -prune \
		-exec rm -rf {} +
