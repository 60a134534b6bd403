# Two set-up commands work on a fresh machine: `make demo` and `make test`.
# Both create .venv when missing; nothing needs to be installed by hand.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.classgap-installed
FMNIST_DIR := /usr/share/datasets/fashion-mnist
TORCH_CPU := torch==2.13.0

.PHONY: demo test test-fast test-precisions bench lint data clean-venv

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	@# No torch yet and no CUDA driver: take the CPU build that lies on this disk, so the
	@# dependency resolver never pulls a multi-GB CUDA wheel.
	@if ! $(BIN)/python -c "import torch" 2>/dev/null && ! command -v nvidia-smi >/dev/null 2>&1; then \
		echo "installing $(TORCH_CPU) (CPU build)"; \
		$(BIN)/python -m pip install -q $(TORCH_CPU); \
	fi
	$(BIN)/python -m pip install -q -e ".[dev,ray,lightning,hf]"
	@touch $(STAMP)

# Fashion-MNIST from Debian when we are root with apt and the files are missing. Best effort:
# everything that needs it skips or says how to get it when it is absent.
data:
	@if [ ! -e $(FMNIST_DIR)/train-images-idx3-ubyte.gz ] && [ ! -e $(FMNIST_DIR)/train-images-idx3-ubyte ] \
		&& [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing dataset-fashion-mnist (apt)"; \
		(apt-get install -y -qq dataset-fashion-mnist >/dev/null 2>&1 \
		 || (apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq dataset-fashion-mnist >/dev/null 2>&1)) \
		 || echo "warning: could not install dataset-fashion-mnist; tests that need it are skipped"; \
	fi

# The main job: the default study (Fashion-MNIST 5k images, MLP, label smoothing 0/0.1/0.3,
# 12 seeds, then the class-conditional refit; its time is in bench/RESULTS.md). Rerunning
# resumes: finished runs are not trained again.
demo: $(STAMP) data
	$(BIN)/classgap study

test: $(STAMP) data
	$(BIN)/python -m pytest -q

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow"

# The suite once per numeric path: train.precision=auto forced to fp32, then to bf16
# (classgap.train.precision), so a test that only passes on the path this CPU happens to
# measure fastest shows up here. bf16 is emulated, and slow, on CPUs without AVX512-BF16/AMX.
test-precisions: $(STAMP) data
	CLASSGAP_PRECISION=fp32 $(BIN)/python -m pytest -q
	CLASSGAP_PRECISION=bf16 $(BIN)/python -m pytest -q

# The quick benchmarks; bench/train_speed.py (the 5-epoch throughput mode about 6 minutes on
# 2 cores; `--side-by-side --models mlp,cnn_small,cnn --repeats 3`, whole processes round-robin,
# about half an hour) and bench/ensemble_speed.py (for a GPU) are run by hand: see
# bench/RESULTS.md.
bench: $(STAMP) data
	$(BIN)/python bench/audit_speed.py
	$(BIN)/python bench/step_speed.py

lint: $(STAMP)
	$(BIN)/ruff check src tests bench

clean-venv:
	rm -rf $(VENV)
