# Two commands do everything on a fresh machine:
#   make demo   -- set up .venv, fetch Fashion-MNIST (Debian package), run the active learning demo
#                  (loss prediction, random and variation ratio side by side)
#   make test   -- set up .venv and run the test suite
# and one for changes to the code:
#   make lint   -- set up .venv, then ruff (LINT_PATHS) and mypy (the core, see pyproject.toml)
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
FMNIST_DIR := /usr/share/datasets/fashion-mnist
# What ruff checks (tests/ with the per-file rules of pyproject.toml).
LINT_PATHS ?= active_learning classification segmentation object_detection human_pose_estimation \
	synthetic bench examples tests

.PHONY: demo test lint setup fashion-mnist browser floors clean

setup: $(VENV)/.installed

# torch/torchvision are pinned to the builds this machine's pip serves from local disk.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install torch==2.14.1 torchvision==0.29.1
	$(PY) -m pip install -e '.[dev]'
	touch $@

fashion-mnist:
	@if [ ! -f $(FMNIST_DIR)/train-images-idx3-ubyte.gz ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist; \
	  else \
	    echo "Fashion-MNIST is missing: run 'sudo apt-get install dataset-fashion-mnist' or put the idx files under data/FashionMNIST/raw/"; exit 1; \
	  fi; \
	fi

demo: setup fashion-mnist
	$(PY) -m classification.demo

# The report's browser test (tests/test_report_browser.py) drives Debian's chromium through
# Debian's chromium-driver: no browser download. Installed here as root; where it cannot be,
# the test is skipped and says why.
browser:
	@if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver) \
	      || echo "note: chromium could not be installed; the report's browser test will be skipped"; \
	  else \
	    echo "note: chromium or chromium-driver is missing ('sudo apt-get install chromium chromium-driver'); the report's browser test will be skipped"; \
	  fi; \
	fi

# One worker per core (pytest-xdist), each test file on one worker so that its module fixtures
# (the tiny datasets) are built once: 1.5x faster than one process on this project's 2 cores.
test: setup browser
	$(PY) -m pytest -n auto --dist loadfile

lint: setup
	$(PY) -m ruff check $(LINT_PATHS)
	$(PY) -m mypy

# The oldest versions pyproject.toml allows, each installed exactly in its own venv
# (.venv-floors/), with the tests that use them (bench/floors.sh; minutes, and downloads).
floors: fashion-mnist
	bash bench/floors.sh

clean:
	rm -rf $(VENV) .venv-floors runs
