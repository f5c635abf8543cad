# Two commands do everything on a fresh machine:
#   make demo   -- set up .venv, fetch Fashion-MNIST (Debian package), run the active learning demo
#                  (loss prediction, random and variation ratio side by side)
#   make test   -- set up .venv and .venv-tools, run the test suite, then the annotation tools'
#                  stage (tests_tools/: a real Label Studio server, FiftyOne's importers), each
#                  reported on its own (make test-core, make test-tools run one of them)
# and one for changes to the code:
#   make lint   -- set up .venv, then ruff (LINT_PATHS) and mypy (the core, see pyproject.toml)
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
FMNIST_DIR := /usr/share/datasets/fashion-mnist
# What ruff checks (tests/ with the per-file rules of pyproject.toml).
LINT_PATHS ?= active_learning classification segmentation object_detection human_pose_estimation \
	synthetic bench examples tests tests_tools

# The annotation tools the round trip runs against live in an environment of their own: the
# label-studio server pins packages of its own (Django, ...). sentry-sdk 3 stops label-studio
# 1.23 at start ("Unknown option 'send_default_pii'"). studio_setup.py migrates a Label Studio
# database once, so that each test session's server starts in seconds.
TOOLS_VENV ?= .venv-tools
TOOLS_PY := $(TOOLS_VENV)/bin/python
# fiftyone: its importers (its database cannot run here, and is not used); pycocotools: its COCO
# importer reads masks with it.
TOOLS_PACKAGES := "label-studio==1.23.2" "sentry-sdk<3" "label-studio-sdk>=2,<3" \
	"fiftyone==1.22.1" pycocotools

.PHONY: demo test test-core test-tools tools lint setup fashion-mnist browser floors clean

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
test: setup browser tools
	@core=0; tools=0; \
	$(MAKE) --no-print-directory test-core || core=1; \
	$(MAKE) --no-print-directory test-tools || tools=1; \
	echo "core suite: $$([ $$core = 0 ] && echo passed || echo FAILED); annotation tools' stage: $$([ $$tools = 0 ] && echo passed || echo FAILED)"; \
	[ $$core = 0 ] && [ $$tools = 0 ]

test-core: setup browser
	$(PY) -m pytest -n auto --dist loadfile

# The round trip through the real tools (tests_tools/, one process: the tests share one server).
test-tools: setup tools
	$(PY) -m pytest -p no:xdist -o addopts="-q" tests_tools

tools: $(TOOLS_VENV)/.installed

$(TOOLS_VENV)/.installed: tests_tools/studio_setup.py
	$(PYTHON) -m venv $(TOOLS_VENV)
	$(TOOLS_PY) -m pip install --upgrade pip
	$(TOOLS_PY) -m pip install $(TOOLS_PACKAGES)
	$(PYTHON) tests_tools/studio_setup.py $(TOOLS_VENV)
	touch $@

lint: setup
	$(PY) -m ruff check $(LINT_PATHS)
	$(PY) -m mypy

# The oldest versions pyproject.toml allows, each installed exactly in its own venv
# (.venv-floors/), with the tests that use them (bench/floors.sh; minutes, and downloads).
floors: fashion-mnist
	bash bench/floors.sh

clean:
	rm -rf $(VENV) $(TOOLS_VENV) .venv-floors runs
